"""The lecture content added to notebooks 04-07 (issue 12): the modules behind the new sections
(course.landscape, course.init_study, course.image_features, course.plot.templates/show) and
the notebooks' own promises (manually graded answer cells, hints, errata, size)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course import data, image_features, init_study, landscape, plot  # noqa: E402
from course.gradcheck import numerical_gradient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MINE = ["04_losses/losses", "05_gradcheck/gradcheck", "06_optim/optim", "07_mlp/mlp"]


def _nb(name: str, where: str = "solutions") -> nbformat.NotebookNode:
    return nbformat.read(str(ROOT / where / f"{name}.ipynb"), as_version=4)


# -- course.landscape ----------------------------------------------------------------------------


@pytest.mark.parametrize("surface", landscape.SURFACES, ids=lambda s: s.name)
def test_each_surface_gradient_matches_centred_differences(surface):
    rng = np.random.default_rng(0)
    for _ in range(5):
        w = rng.uniform(-1.5, 1.5, 2)
        numeric = numerical_gradient(lambda v: surface.f(v), w.copy())
        np.testing.assert_allclose(surface.grad(w), numeric, rtol=1e-6, atol=1e-9)
    grid = rng.uniform(-1, 1, (4, 3, 2))  # the (..., 2) convention of the contour plots
    assert surface.grad(grid).shape == grid.shape and np.shape(surface.f(grid)) == (4, 3)


def test_heavy_ball_with_rho_zero_is_plain_gradient_descent():
    path = landscape.heavy_ball(data.booth_grad, [-6.0, 8.0], 0.05, 20, rho=0.0)
    np.testing.assert_allclose(path, data.gradient_descent(data.booth_grad, [-6.0, 8.0], 0.05, 20))


def test_heavy_ball_is_the_lectures_momentum_update():
    """v = rho v + dw; w -= lr v, written out for three steps on f(w) = w² (dw = 2w)."""
    w, v, expected = 1.0, 0.0, [1.0]
    for _ in range(3):
        v = 0.9 * v + 2 * w
        w -= 0.1 * v
        expected.append(w)
    path = landscape.heavy_ball(lambda x: 2 * x, np.array([1.0]), 0.1, 3, rho=0.9)
    np.testing.assert_allclose(path[:, 0], expected)


@pytest.mark.parametrize("surface", landscape.SURFACES, ids=lambda s: s.name)
def test_plain_descent_stalls_where_momentum_gets_through(surface):
    stuck = landscape.heavy_ball(surface.grad, surface.start, surface.lr, surface.steps, 0.0)[-1]
    through = landscape.heavy_ball(surface.grad, surface.start, surface.lr, surface.steps, 0.9)[-1]
    assert surface.f(through) < surface.f(stuck) - 0.5, (surface.name, stuck, through)
    settled = landscape.heavy_ball(surface.grad, surface.start, surface.lr, 20 * surface.steps, 0.9)[-1]
    assert np.linalg.norm(surface.grad(settled)) < 1e-6  # the valley momentum reached is a minimum
    assert surface.f(through) < surface.f(settled) + 0.05  # and it is nearly at its bottom already


def test_the_double_well_has_a_worse_local_minimum_where_descent_stops():
    stuck = landscape.heavy_ball(landscape.double_well_grad, [2.0, 1.0], 0.02, 300)[-1]
    assert np.linalg.norm(landscape.double_well_grad(stuck)) < 1e-4  # a true critical point
    assert stuck[0] > 0 and landscape.double_well(stuck) > landscape.double_well(np.array([-1.05, 0.0]))


def test_the_saddle_is_a_critical_point_with_curvature_of_both_signs():
    assert np.allclose(landscape.saddle_grad(np.zeros(2)), 0)
    H = np.stack([numerical_gradient(lambda w, i=i: landscape.saddle_grad(w)[i], np.zeros(2)) for i in range(2)])
    eig = np.linalg.eigvalsh((H + H.T) / 2)
    assert eig[0] < 0 < eig[1]


def test_fraction_of_minima_falls_with_dimension():
    shares = [landscape.fraction_of_minima(d, samples=4000, rng=1) for d in (1, 2, 3, 6)]
    assert shares[0] == pytest.approx(0.5, abs=0.03)  # one random curvature: up or down
    assert shares[0] > shares[1] > shares[2] > shares[3]
    assert shares[3] < 0.005
    with pytest.raises(ValueError, match="dim"):
        landscape.fraction_of_minima(0)


# -- course.init_study ---------------------------------------------------------------------------


def test_init_std_of_each_scheme():
    assert init_study.init_std("zero", 256) == 0.0
    assert init_study.init_std("xavier", 100) == pytest.approx(0.1)
    assert init_study.init_std("he", 50) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="unknown initialisation"):
        init_study.init_std("glorot", 10)


def test_deep_stack_weights_follow_the_scheme():
    net = init_study.deep_stack("he", depth=3, width=400, activation="relu", rng=0)
    assert len(net) == 6
    for linear in net.layers[::2]:
        assert linear.W.data.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
        assert not linear.b.data.any()


def test_layer_statistics_gradients_match_a_hand_written_backward():
    """The recorded grad_std is the spread of dL/dh, checked against numpy written out by hand."""
    depth, width, n = 3, 16, 20
    stats = init_study.layer_statistics("xavier", depth, width, "tanh", n=n, rng=5)
    net = init_study.deep_stack("xavier", depth, width, "tanh", rng=5)
    gen = np.random.default_rng(6)
    h, hs = gen.standard_normal((n, width)), []
    for linear in net.layers[::2]:
        h = np.tanh(h @ linear.W.data)
        hs.append(h)
    g = gen.standard_normal((n, width))
    for i in reversed(range(depth)):
        assert stats[i].grad_std == pytest.approx(g.std(), rel=1e-10)
        assert stats[i].act_std == pytest.approx(hs[i].std(), rel=1e-10)
        g = (g * (1 - hs[i] ** 2)) @ net.layers[2 * i].W.data.T


def test_the_lessons_of_the_initialisation_section():
    def spread(scheme, activation):
        return init_study.layer_statistics(scheme, depth=10, width=128, activation=activation, n=128)

    zero = spread("zero", "tanh")
    assert all(s.act_std == 0 for s in zero) and all(s.grad_std == 0 for s in zero[:-1])
    small = spread("small", "tanh")
    assert small[-1].act_std < 1e-6 and small[0].grad_std < 1e-5
    large = spread("large", "tanh")
    assert all(s.act_std > 0.9 for s in large)  # saturated at ±1
    he = spread("he", "relu")
    assert 0.5 < he[-1].act_std / he[0].act_std < 2 and 0.3 < he[0].grad_std / he[-1].grad_std < 3
    assert spread("xavier", "relu")[-1].act_std < 0.2 * he[-1].act_std


# -- course.image_features -----------------------------------------------------------------------


def test_intensity_histogram_counts_pixels_and_ignores_their_position():
    img = np.zeros((1, 8, 8))
    img[0, :2] = 1.0  # 16 bright pixels at the top
    hist = image_features.intensity_histogram(img, bins=4)
    np.testing.assert_allclose(hist, [[48 / 64, 0, 0, 16 / 64]])
    moved = np.roll(img, 5, axis=1)
    np.testing.assert_allclose(image_features.intensity_histogram(moved, bins=4), hist)


def test_hog_puts_a_vertical_edge_in_the_horizontal_gradient_bin_of_its_cell():
    img = np.zeros((8, 8))
    img[:, 2:] = 1.0  # a vertical edge in the left cells: the gradient points along x (0°)
    feats = image_features.hog(img[None], cell=4, bins=9).reshape(2, 2, 9)
    assert feats[:, 0, 0].min() > 0 and feats[:, 0, 1:].sum() == 0
    assert feats[:, 1].sum() == 0  # the right cells are flat
    rotated = image_features.hog(img.T[None], cell=4, bins=9).reshape(2, 2, 9)
    assert rotated[0, :, 4].min() > 0  # 90° lands in bin 4 of [0°, 180°)


def test_hog_length_is_the_lectures_10800():
    assert image_features.hog_length(240, 320, cell=8, bins=9) == 40 * 30 * 9 == 10_800
    assert image_features.hog_length(240, 320, cell=8, bins=8) == 9_600  # the slide's "8 directions"
    assert image_features.hog(np.zeros((3, 64)), cell=4).shape == (3, image_features.hog_length(8, 8, cell=4))


def test_hog_beats_the_histogram_on_digits():
    """Position matters: a linear classifier on HoG separates digits that a histogram cannot."""
    import course

    X, y = data.load_digits()
    X_tr, X_te, y_tr, y_te = data.train_test_split(X, y, test_fraction=0.3, rng=0)

    def accuracy(f):
        a, b = f(X_tr), f(X_te)
        mean, std = a.mean(0), a.std(0) + 1e-8
        model = course.Linear(a.shape[1], 10, rng=0)
        course.fit(
            model,
            course.SoftmaxCrossEntropy(),
            course.SGD(model.parameters(), lr=0.1),
            (a - mean) / std,
            y_tr,
            epochs=10,
            batch_size=32,
            rng=0,
        )
        return course.accuracy(model, (b - mean) / std, y_te)

    assert accuracy(image_features.intensity_histogram) < 0.4 < 0.8 < accuracy(image_features.hog)


# -- course.plot ---------------------------------------------------------------------------------


def test_templates_draws_each_column_as_an_8x8_image_with_a_symmetric_scale():
    W = np.arange(64 * 3, dtype=float).reshape(64, 3) - 50
    fig = plot.templates(W, titles=["a", "b", "c"], ncols=2)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3
    np.testing.assert_array_equal(images[1].get_array(), W[:, 1].reshape(8, 8))
    lo, hi = images[0].get_clim()
    assert lo == -hi == -np.abs(W[:, 0]).max()
    with pytest.raises(ValueError, match="64"):
        plot.templates(np.zeros((10, 2)))
    plt.close(fig)


def test_show_outside_ipython_closes_nothing_and_does_not_fail():
    fig = plt.figure()
    plot.show(fig)  # plain plt.show() under Agg
    plt.close(fig)


# -- the notebooks --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MINE)
def test_solution_notebooks_stay_under_300_kb(name):
    assert (ROOT / "solutions" / f"{name}.ipynb").stat().st_size < 300_000


def _manual(nb):
    return [
        c
        for c in nb.cells
        if c.cell_type == "markdown"
        and c.metadata.get("nbgrader", {}).get("grade")
        and c.metadata["nbgrader"].get("solution")
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "04_losses/losses",
            {
                "derivation_SoftmaxCrossEntropy",
                "derivation_MulticlassSVM",
                "derivation_BinaryCrossEntropy",
                "question_ce_versus_svm",
                "question_svm_scaled_w",
            },
        ),
        ("07_mlp/mlp", {"question_no_activation"}),
    ],
)
def test_the_lectures_questions_are_manually_graded_answer_cells(name, expected):
    cells = _manual(_nb(name))
    assert {c.metadata["nbgrader"]["grade_id"] for c in cells} == expected
    assert all(c.metadata["nbgrader"]["points"] > 0 for c in cells)
    release = _manual(_nb(name, "notebooks"))
    assert len(release) == len(expected)
    assert all(c.source.strip() == "YOUR ANSWER HERE" for c in release), "an instructor answer leaked"


def test_the_04_derivations_sit_in_collapsed_hints_not_above_the_stubs():
    nb = _nb("04_losses/losses")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert text.count("<details>") >= 3
    for formula in [r"p_j - \mathbb{1}[j = y]", r"\frac{p - y}{p\,(1 - p)}"]:
        at = text.index(formula)
        assert text.rfind("<details>", 0, at) > text.rfind("</details>", 0, at), formula


def test_the_errata():
    losses = "\n".join(c.source for c in _nb("04_losses/losses").cells)
    assert "is exactly zero:" not in losses
    assert "(1 - \\hat y)(1 - \\log y)" in losses and "$\\lambda R(W)$" in losses
    gradcheck = "\n".join(c.source for c in _nb("05_gradcheck/gradcheck").cells)
    assert "must be double precision" not in gradcheck and "insists on double" not in gradcheck
    assert gradcheck.count("warns") >= 2
    mlp = "\n".join(c.source for c in _nb("07_mlp/mlp").cells)
    assert "8 directions per bin" in mlp and "10{,}800" in mlp and "9,600" in mlp


@pytest.mark.parametrize("name", MINE)
def test_the_new_experiments_stay_out_of_the_checking_runs_slice(name):
    """The checking run re-runs only the cells its checks need, each non-answer cell on 2 s of CPU:
    none of the new sections' experiments may be pulled in (by rebinding a name the answers use)."""
    from autograder.verdicts.cells import graded_cells
    from autograder.verdicts.slicing import needed_cells

    nb = _nb(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    answers = [bool(c.metadata.get("nbgrader", {}).get("solution")) for c in code]
    symbols = {call.symbol for cell in graded_cells(nb) for call in cell.calls}
    kept = [
        c.source
        for c, keep, a in zip(code, needed_cells([c.source for c in code], answers, symbols), answers, strict=True)
        if keep and not a
    ]
    experiments = (
        "heavy_ball",
        "fraction_of_minima",
        "layer_statistics",
        "intensity_histogram",
        "RandomState",
        "plot.templates",
        "spiral_net",
    )
    assert not [s for s in kept if any(e in s for e in experiments)]
