"""Content added to 01_neurons, 02_graphs and 03_layers for issue 12: feature transforms, the
binary step's convention, ELU's smoothness, the questions students answer, hints, and size."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course import activations as A
from course.features import polar, rings
from course.neuron import LogisticRegression, Perceptron

ROOT = Path(__file__).resolve().parent.parent
MINE = {
    "01_neurons": "neurons.ipynb",
    "02_graphs": "graphs.ipynb",
    "03_layers": "layers.ipynb",
}
#: grade_id of every question answered in words, per assignment.
ANSWERS = {
    "01_neurons": {"answer_perceptron"},
    "02_graphs": {"answer_why_backward"},
    "03_layers": {"derivation_linear", "answer_jacobian", "answer_no_activation", "derivation_sequential"},
}


def solution(name: str) -> nbformat.NotebookNode:
    return nbformat.read(str(ROOT / "solutions" / name / MINE[name]), as_version=4)


def release(name: str) -> nbformat.NotebookNode:
    return nbformat.read(str(ROOT / "notebooks" / name / MINE[name]), as_version=4)


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


# ----------------------------------------------------------------------------------------
# course.features
# ----------------------------------------------------------------------------------------


def test_rings_are_two_labelled_rings_around_the_origin():
    X, y = rings(50, radii=(1.0, 3.0), noise=0.05, rng=1)
    assert X.shape == (100, 2) and y.shape == (100,)
    assert list(np.bincount(y)) == [50, 50]
    radius = np.hypot(X[:, 0], X[:, 1])
    assert np.abs(radius[y == 0] - 1.0).max() < 0.3
    assert np.abs(radius[y == 1] - 3.0).max() < 0.3
    # the points go all the way round: every quadrant holds points of both rings
    for label in (0, 1):
        quadrants = {(bool(a > 0), bool(b > 0)) for a, b in X[y == label]}
        assert len(quadrants) == 4


def test_rings_are_seeded_and_check_their_arguments():
    np.testing.assert_array_equal(rings(10, rng=4)[0], rings(10, rng=4)[0])
    assert not np.array_equal(rings(10, rng=4)[0], rings(10, rng=5)[0])
    with pytest.raises(ValueError, match="n_per_ring"):
        rings(0)
    with pytest.raises(ValueError, match="noise"):
        rings(5, noise=-1.0)


def test_polar_gives_radius_and_angle():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, -1.0]])
    np.testing.assert_allclose(polar(X), [[1, 0], [2, np.pi / 2], [3, np.pi], [np.sqrt(2), -np.pi / 4]])
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        polar(np.zeros((3, 3)))


def test_polar_features_make_the_rings_linearly_separable():
    """A linear classifier fails on the raw rings and succeeds on their polar coordinates."""
    X, y = rings(100, rng=0)
    raw = LogisticRegression(np.zeros(2), 0.0)
    raw.fit(X, y, epochs=300, lr=0.5)
    assert np.mean(raw.predict(X) == y) < 0.7
    P = polar(X)
    on_polar = LogisticRegression(np.zeros(2), 0.0)
    on_polar.fit(P, y, epochs=2000, lr=0.5)
    assert np.mean(on_polar.predict(P) == y) > 0.97
    assert 1.0 < -on_polar.bias / on_polar.weights[0] < 2.5  # a threshold between the radii


# ----------------------------------------------------------------------------------------
# Errata in course.activations
# ----------------------------------------------------------------------------------------


def test_binary_step_agrees_with_the_perceptron_and_relu_grad_everywhere():
    z = np.array([-1.0, -1e-12, 0.0, 1e-12, 2.0])
    perceptron = Perceptron(np.array([1.0]), 0.0)
    np.testing.assert_array_equal(A.binary_step(z), perceptron(z[:, None]))
    np.testing.assert_array_equal(A.binary_step(z), A.relu_grad(z))
    assert A.binary_step(0.0) == 0.0


def test_elu_with_alpha_one_is_smooth_at_zero_and_kinked_otherwise():
    h = 1e-7
    for alpha, left in [(1.0, 1.0), (0.5, 0.5)]:
        slope_left = (A.elu(0.0, alpha) - A.elu(-h, alpha)) / h
        slope_right = (A.elu(h, alpha) - A.elu(0.0, alpha)) / h
        assert slope_left == pytest.approx(left, abs=1e-6)
        assert slope_right == pytest.approx(1.0, abs=1e-6)
        assert A.elu_grad(0.0, alpha) == pytest.approx(left)


# ----------------------------------------------------------------------------------------
# The notebooks
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MINE)
def test_solution_notebook_is_under_300_kb(name):
    size = (ROOT / "solutions" / name / MINE[name]).stat().st_size
    assert size < 300_000, f"solutions/{name} is {size / 1000:.0f} KB"


@pytest.mark.parametrize("name", MINE)
def test_questions_are_manually_graded_answer_cells_without_automatic_points(name):
    """Each question has a markdown answer cell the instructor grades; the cells carry 0 points so
    the automatic totals the grader tests assume (18 for 03_layers) stay as they are."""
    nb = solution(name)
    cells = {meta(c)["grade_id"]: c for c in nb.cells if meta(c).get("grade_id") in ANSWERS[name]}
    assert set(cells) == ANSWERS[name]
    for gid, cell in cells.items():
        assert cell.cell_type == "markdown", gid
        assert meta(cell)["grade"] and meta(cell)["solution"] and meta(cell)["points"] == 0, gid
        assert len(cell.source) > 100, f"{gid} holds no model answer"
        before = nb.cells[nb.cells.index(cell) - 1]
        assert before.cell_type == "markdown" and ("Question" in before.source or "Derivation" in before.source)


@pytest.mark.parametrize("name", MINE)
def test_release_stubs_the_answers_and_leaks_no_model_answer(name):
    answers = [c.source for c in solution(name).cells if meta(c).get("grade_id") in ANSWERS[name]]
    stubbed = [c for c in release(name).cells if meta(c).get("grade_id") in ANSWERS[name]]
    assert len(stubbed) == len(ANSWERS[name])
    assert all(c.source.strip() == "YOUR ANSWER HERE" for c in stubbed)
    text = "\n".join(c.source for c in release(name).cells)
    for answer in answers:
        for line in answer.splitlines():
            if len(line.strip()) > 40:
                assert line.strip() not in text, f"model answer leaked into notebooks/{name}: {line[:60]}"


def test_automatic_points_of_03_are_unchanged():
    points = sum(meta(c).get("points", 0) for c in solution("03_layers").cells if meta(c).get("grade"))
    assert points == 18


def test_each_03_exercise_hides_its_formulas_in_a_hint_before_the_stub():
    """Between one stub and the next there is a collapsed <details> hint, and the Linear stub is
    preceded by the derivation the student writes."""
    nb = solution("03_layers")
    stubs = [
        i
        for i, c in enumerate(nb.cells)
        if meta(c).get("solution") and c.cell_type == "code" and c.source.startswith("class ")
    ]
    previous = 0
    for i in stubs:
        before = "\n".join(c.source for c in nb.cells[previous:i] if c.cell_type == "markdown")
        if any(f"course.layers.{name})" in nb.cells[i].source for name in ("Sigmoid", "Tanh", "ReLU")):
            before = "\n".join(c.source for c in nb.cells[:i] if c.cell_type == "markdown")  # one hint for the three
        assert "<details>" in before, f"no hint before {meta(nb.cells[i])['grade_id']}"
        previous = i + 1
    linear = next(i for i in stubs if "course.layers.Linear)" in nb.cells[i].source)
    assert any(meta(c).get("grade_id") == "derivation_linear" for c in nb.cells[:linear])


def test_the_sequential_exercise_asks_for_the_derivation_before_the_hint_and_the_stub():
    """The student writes the key step (reverse order, each backward fed the next one's dL/d(input))
    in a manually graded cell; the explanation follows in a collapsed hint, then the stub."""
    nb = solution("03_layers")
    ids = [meta(c).get("grade_id") for c in nb.cells]
    at, stub = ids.index("derivation_sequential"), ids.index("layers_Sequential_backward")
    cell = nb.cells[at]
    assert cell.cell_type == "markdown" and at < stub
    assert meta(cell) == {
        "grade": True,
        "grade_id": "derivation_sequential",
        "locked": False,
        "points": 0,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    assert "reverse" in cell.source and "reversed(self.layers)" in cell.source
    asked = nb.cells[at - 1].source
    assert "**Derivation" in asked and "<details>" not in asked
    between = "\n".join(c.source for c in nb.cells[at + 1 : stub])
    assert "<details>" in between and "</details>" in between
    assert "reverse" not in asked.lower(), "the question gives the answer away"


def test_errata_are_fixed_in_the_text():
    text01 = "\n".join(c.source for c in solution("01_neurons").cells)
    assert "ReLU, Leaky ReLU and ELU have a kink" not in text01
    assert "$1$ if $x \\ge 0$" not in text01  # the step fires for x > 0
    text02 = "\n".join(c.source for c in solution("02_graphs").cells)
    assert "so\n  only `self` needs a gradient" not in text02
    assert "x^k \\ln x" in text02
    assert "\\frac{dy}{du}\\,\\frac{du}{dx}" in text02
    text03 = "\n".join(c.source for c in solution("03_layers").cells)
    for erratum in ("W_{21}", "-4.1 \\times 10^{-6}", "-3.42 \\times 10^{-6}", "w_{lk}^\\top y_{l-1}"):
        assert erratum in text03, erratum


def test_stored_figures_are_small():
    """Figures are stored as palette PNGs (the notebooks' compact formatter), not full RGBA."""
    import base64
    import io

    from PIL import Image

    for name in MINE:
        nb = json.loads((ROOT / "solutions" / name / MINE[name]).read_text())
        images = [
            o["data"]["image/png"]
            for c in nb["cells"]
            for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        assert images, name
        for png in images:
            assert Image.open(io.BytesIO(base64.b64decode(png))).mode == "P", name
