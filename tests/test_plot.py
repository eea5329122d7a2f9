"""Tests for course.plot: each picture is checked for what it shows, not only that it draws."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from course import Linear, Value, check_layer, data, plot  # noqa: E402
from course.activations import ACTIVATIONS  # noqa: E402
from course.gradcheck import GradCheckReport, compare  # noqa: E402
from course.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _save(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 2000
    return path


def _lines_by_label(ax, labels):
    return [line for line in ax.lines if line.get_label() in labels]


# ----------------------------------------------------------------------------------------
# activations and loss_curve
# ----------------------------------------------------------------------------------------


def test_activations_panels_show_f_and_its_derivative(tmp_path):
    """Check six panels, each with exactly f (solid) and f' (dashed) evaluated on x."""
    x = np.linspace(-3, 3, 61)
    fig = plot.activations(x=x)
    panels = [ax for ax in fig.axes if ax.lines]
    assert [ax.get_title() for ax in panels] == list(ACTIVATIONS)
    for ax in panels:
        f, f_grad = ACTIVATIONS[ax.get_title()]
        assert len(ax.lines) == 2
        solid, dashed = ax.lines
        np.testing.assert_array_equal(solid.get_xdata(), x)
        np.testing.assert_allclose(solid.get_ydata(), f(x))
        np.testing.assert_allclose(dashed.get_ydata(), f_grad(x))
        assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
        assert ax.get_legend() is not None
    _save(fig, tmp_path, "activations")


def test_activations_subset_and_unknown_name():
    """Check that names picks the panels and an unknown name is refused with the choices."""
    fig = plot.activations(["tanh", "ReLU"])
    assert [ax.get_title() for ax in fig.axes] == ["tanh", "ReLU"]
    with pytest.raises(ValueError, match="swish"):
        plot.activations(["swish"])


def test_loss_curve_plots_every_step():
    """Check that the line's data are the losses against the step index."""
    losses = [3.0, 2.0, 2.5, 1.0, 0.5]
    ax = plot.loss_curve(losses)
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_xdata(), np.arange(5))
    np.testing.assert_array_equal(line.get_ydata(), losses)
    assert ax.get_yscale() == "linear"


def test_loss_curve_smoothing_is_a_trailing_moving_average(tmp_path):
    """Check the smoothed line: mean of each window of 3, placed at the window's last step."""
    history = History(loss=[1.0, 2.0, 3.0, 4.0, 5.0, 9.0])
    ax = plot.loss_curve(history, smooth=3)
    raw, smoothed = ax.lines
    np.testing.assert_array_equal(raw.get_ydata(), history.loss)
    np.testing.assert_array_equal(smoothed.get_xdata(), [2, 3, 4, 5])
    np.testing.assert_allclose(smoothed.get_ydata(), [2.0, 3.0, 4.0, 6.0])
    _save(ax.figure, tmp_path, "loss")


def test_loss_curve_log_scale_only_beyond_two_decades():
    """Check log-y for losses spanning more than 100x, linear otherwise."""
    assert plot.loss_curve(np.geomspace(10.0, 0.01, 50)).get_yscale() == "log"
    assert plot.loss_curve(np.linspace(5.0, 0.1, 50)).get_yscale() == "linear"
    with pytest.raises(ValueError):
        plot.loss_curve([])


# ----------------------------------------------------------------------------------------
# decision_boundary and contour_path
# ----------------------------------------------------------------------------------------


def _regions(ax):
    (cs,) = [c for c in ax.collections if isinstance(c, ContourSet)]
    return cs.get_paths()


def test_decision_boundary_regions_match_the_model(tmp_path):
    """Check that every point well inside a class region lies in that class's filled contour."""
    model = Linear(2, 3, rng=0)
    X, y = data.blobs(n_per_class=20, rng=0)
    ax = plot.decision_boundary(model, X, y, resolution=150, title="blobs")
    regions = _regions(ax)
    assert len(regions) == 3
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(*ax.get_xlim(), 3000), rng.uniform(*ax.get_ylim(), 3000)])
    scores = np.sort(model.forward(points), axis=1)
    clear = scores[:, -1] - scores[:, -2] > 0.2  # away from the boundaries, where the grid blurs
    expected = model.forward(points).argmax(axis=1)[clear]
    inside = np.column_stack([path.contains_points(points[clear]) for path in regions])
    np.testing.assert_array_equal(inside.sum(axis=1), 1)
    np.testing.assert_array_equal(inside.argmax(axis=1), expected)
    # the data are drawn on top, coloured by class, and the window covers them
    (dots,) = [c for c in ax.collections if not isinstance(c, ContourSet)]
    np.testing.assert_array_equal(dots.get_offsets(), X)
    np.testing.assert_array_equal(dots.get_array(), y)
    assert ax.get_xlim()[0] < X[:, 0].min() and ax.get_ylim()[1] > X[:, 1].max()
    assert ax.get_title() == "blobs"
    _save(ax.figure, tmp_path, "decision_boundary")


def test_decision_boundary_single_output_thresholds_the_score():
    """Check a one-output model: class 1 where the score is above the threshold."""
    model = Linear(2, 1)
    model.W.data[:] = [[1.0], [0.0]]
    model.b.data[:] = [-0.3]  # score > 0  <=>  x1 > 0.3
    X, y = data.xor()
    ax = plot.decision_boundary(model, X, y, resolution=101)
    regions = _regions(ax)
    probe = np.array([[0.0, 0.5], [0.2, 0.9], [0.5, 0.1], [1.1, 0.7]])
    np.testing.assert_array_equal(regions[0].contains_points(probe), [True, True, False, False])
    np.testing.assert_array_equal(regions[1].contains_points(probe), [False, False, True, True])
    # with threshold 0.5 (a probability) the boundary moves to x1 = 0.8
    ax = plot.decision_boundary(model, X, y, resolution=101, threshold=0.5)
    np.testing.assert_array_equal(_regions(ax)[1].contains_points(probe), [False, False, False, True])


def test_contour_path_draws_one_line_per_path(tmp_path):
    """Check one line per path with its points, the clipped diverging run, and the minimum."""
    paths = {
        f"lr = {lr}": data.gradient_descent(data.booth_grad, (-8.0, 8.0), lr, 40) for lr in (0.01, 0.10, 0.11, 0.12)
    }
    ax = plot.contour_path(data.booth, paths, minimum=data.BOOTH_MINIMUM)
    lines = _lines_by_label(ax, paths)
    assert [line.get_label() for line in lines] == list(paths)
    assert len(ax.lines) == len(paths)
    np.testing.assert_allclose(np.column_stack(lines[1].get_data()), paths["lr = 0.1"])
    diverged = np.column_stack(lines[3].get_data())
    assert len(diverged) == 41 and np.isfinite(diverged).all()
    assert np.abs(paths["lr = 0.12"]).max() > 500 > 100 > np.abs(diverged).max()  # clipped, still drawn
    inside = (np.abs(paths["lr = 0.12"]) <= 10).all(axis=1)
    np.testing.assert_allclose(diverged[inside], paths["lr = 0.12"][inside])
    assert ax.get_xlim() == (-10.0, 10.0) and ax.get_ylim() == (-10.0, 10.0)
    (contours,) = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert len(contours.levels) == 30
    star = [c for c in ax.collections if c.get_label() == "minimum"]
    np.testing.assert_array_equal(star[0].get_offsets(), [[1.0, 3.0]])
    _save(ax.figure, tmp_path, "contour_path")


def test_contour_path_survives_overflowing_runs():
    """Check that a run that overflowed (NaN rows) draws its finite part only."""
    path = data.gradient_descent(data.booth_grad, (-8.0, 8.0), 0.5, 2000)
    n_done = int(np.isfinite(path).all(axis=1).sum())
    ax = plot.contour_path(data.booth, {"lr = 0.5": path})
    (line,) = ax.lines
    assert len(line.get_xdata()) == n_done and np.isfinite(line.get_xydata()).all()
    ax.figure.canvas.draw()


# ----------------------------------------------------------------------------------------
# draw_graph
# ----------------------------------------------------------------------------------------


def _by_gid(ax, gid):
    return [t for t in ax.texts if t.get_gid() == gid]


def _lecture_example():
    x, y, z = Value(-2.0, label="x"), Value(5.0, label="y"), Value(-4.0, label="z")
    q = x + y
    q.label = "q"
    f = q * z
    f.label = "f"
    f.backward()
    return f


def test_draw_graph_lecture_example(tmp_path):
    """Check (x + y) z at x=-2, y=5, z=-4: five boxes with data and grads, two ops, six arrows."""
    ax = plot.draw_graph(_lecture_example())
    boxes = {t.get_text() for t in _by_gid(ax, "value")}
    assert boxes == {
        "x\n-2.00\ngrad -4.00",
        "y\n5.00\ngrad -4.00",
        "z\n-4.00\ngrad 3.00",
        "q\n3.00\ngrad -4.00",
        "f\n-12.00\ngrad 1.00",
    }
    assert sorted(t.get_text() for t in _by_gid(ax, "op")) == ["*", "+"]
    assert len([p for p in ax.patches if p.get_gid() == "edge"]) == 6
    _save(ax.figure, tmp_path, "graph")


def test_draw_graph_layout_runs_left_to_right():
    """Check inputs in the first column, the output last, each op between inputs and result."""
    ax = plot.draw_graph(_lecture_example())
    at = {t.get_text().split("\n")[0]: t.get_position() for t in _by_gid(ax, "value") + _by_gid(ax, "op")}
    assert at["x"][0] == at["y"][0] == at["z"][0]
    assert at["x"][0] < at["+"][0] < at["q"][0] < at["*"][0] < at["f"][0]
    assert at["x"][1] > at["y"][1] > at["z"][1]  # inputs top to bottom in reading order


def test_draw_graph_without_grads():
    """Check that show_grad=False leaves the grads out."""
    ax = plot.draw_graph(_lecture_example(), show_grad=False)
    texts = [t.get_text() for t in _by_gid(ax, "value")]
    assert "f\n-12.00" in texts and not any("grad" in t for t in texts)


def test_draw_graph_shared_node_is_drawn_once():
    """Check b = a*a + a: one box for a with three arrows out (two into *, one into +)."""
    a = Value(3.0, label="a")
    b = a * a + a
    b.label = "b"
    b.backward()
    ax = plot.draw_graph(b)
    boxes = [t.get_text() for t in _by_gid(ax, "value")]
    assert len(boxes) == 3
    assert boxes.count("a\n3.00\ngrad 7.00") == 1  # db/da = 2a + 1
    assert len([p for p in ax.patches if p.get_gid() == "edge"]) == 6


def test_draw_graph_constants_and_boxes_do_not_overlap(tmp_path):
    """Check the lecture's sigmoid neuron: constants get their own box and no two nodes overlap."""
    w0, x0, w1, x1, w2 = (Value(v, label=n) for v, n in [(2, "w0"), (-1, "x0"), (-3, "w1"), (-2, "x1"), (-3, "w2")])
    f = 1 / (1 + (-(w0 * x0 + w1 * x1 + w2)).exp())
    f.label = "f"
    f.backward()
    ax = plot.draw_graph(f)
    boxes = [t.get_text() for t in _by_gid(ax, "value")]
    assert len(boxes) == len(f.topological_order())
    assert "w0\n2.00\ngrad -0.20" in boxes and "x1\n-2.00\ngrad -0.59" in boxes
    assert "f\n0.73\ngrad 1.00" in boxes
    ax.figure.canvas.draw()
    extents = [t.get_bbox_patch().get_window_extent() for t in ax.texts]
    for i, a in enumerate(extents):
        for b in extents[:i]:
            assert not a.overlaps(b)
    _save(ax.figure, tmp_path, "graph_neuron")


def test_draw_graph_of_a_single_value():
    """Check that a lone leaf is one box and nothing else."""
    ax = plot.draw_graph(Value(1.5, label="w"))
    assert [t.get_text() for t in ax.texts] == ["w\n1.50\ngrad 0.00"]
    assert not ax.patches


# ----------------------------------------------------------------------------------------
# gradient_check and digits
# ----------------------------------------------------------------------------------------


def _worst_artists(fig):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == "worst"]


def test_gradient_check_marks_the_worst_entry_of_a_matrix(tmp_path):
    """Check both panels for a 2-D gradient wrong at (1, 2): the image and the ring mark it."""
    numeric = np.random.default_rng(0).standard_normal((4, 5))
    analytic = numeric.copy()
    analytic[1, 2] += 0.5
    check = compare("dL/dW", analytic, numeric)
    assert check.worst_index == (1, 2)
    fig = plot.gradient_check(check)
    assert f"{check.max_rel_error:.1e}" in fig.get_suptitle()
    (image,) = [a for ax in fig.axes for a in ax.images if isinstance(a, AxesImage)]
    np.testing.assert_allclose(image.get_array(), analytic - numeric)
    marks = _worst_artists(fig)
    (box,) = [m for m in marks if isinstance(m, Rectangle)]
    assert box.get_xy() == (2 - 0.5, 1 - 0.5)
    (ring,) = [m for m in marks if not isinstance(m, Rectangle)]
    np.testing.assert_allclose(np.ravel(ring.get_data()), [numeric[1, 2], analytic[1, 2]])
    _save(fig, tmp_path, "gradient_check")


def test_gradient_check_picks_the_failing_tensor_of_a_report():
    """Check that a report is drawn through its first failing check, stems for a vector."""

    class WrongBias(Linear):
        def backward(self, grad_out):
            grad_x = super().backward(grad_out)
            self.b.grad[3] *= 2.0
            return grad_x

    report = check_layer(WrongBias(3, 5, rng=0), np.random.default_rng(0).standard_normal((4, 3)))
    assert isinstance(report, GradCheckReport) and [c.passed for c in report.checks] == [True, True, False]
    fig = plot.gradient_check(report)
    assert "dL/db" in fig.get_suptitle() and "WRONG" in fig.get_suptitle()
    rings = _worst_artists(fig)
    assert len(rings) == 2
    stem_ring = [r for r in rings if r.axes is fig.axes[1]][0]
    assert stem_ring.get_xdata()[0] == 3


def test_digits_grid_shows_the_images_and_labels(tmp_path):
    """Check that the mosaic holds each image in its tile and each label is printed."""
    X, y = data.load_digits()
    ax = plot.digits(X, y, n=10)
    (image,) = ax.images
    mosaic = np.ma.filled(image.get_array(), np.nan)
    tile = mosaic[3:11, 0:8]  # the first tile sits under a 3-pixel label strip
    np.testing.assert_array_equal(tile, X[0].reshape(8, 8))
    np.testing.assert_array_equal(mosaic[3:11, 9:17], X[1].reshape(8, 8))
    assert [t.get_text() for t in ax.texts] == [str(d) for d in y[:10]]
    _save(ax.figure, tmp_path, "digits")


def test_digits_n_larger_than_the_data_shows_all():
    """Check that asking for more images than there are shows them all, and n < 1 is refused."""
    X, y = data.load_digits()
    ax = plot.digits(X[:5], y[:5], n=16)
    assert len(ax.texts) == 5
    with pytest.raises(ValueError):
        plot.digits(X, y, n=0)
