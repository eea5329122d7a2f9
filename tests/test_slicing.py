"""Which cells a checking run runs again (autograder.verdicts.slicing): every cell the checks could
depend on, none of the notebook's experiments."""

from __future__ import annotations

import glob
import os

import nbformat
import pytest

from autograder.verdicts.cells import parse_test_cell
from autograder.verdicts.engine import is_test_cell
from autograder.verdicts.slicing import needed_cells

IMPORTS = "import numpy as np\nimport matplotlib.pyplot as plt\nimport course"
CLASS = "class Linear(course.layers.Linear):\n    def backward(self, g):\n"
ANSWER = CLASS + "        return g @ self.W.data.T"
PLOT = "fig, ax = plt.subplots()\nax.plot(np.arange(3))\nplt.show()"


def kept(*cells: str, answers: tuple[int, ...] = (1,), symbols: tuple[str, ...] = ("Linear",)) -> list[int]:
    flags = needed_cells(list(cells), [i in answers for i in range(len(cells))], symbols)
    return [i for i, keep in enumerate(flags) if keep]


def test_experiments_are_left_out_and_definitions_kept():
    assert kept(IMPORTS, ANSWER, PLOT, "losses = [np.sin(k) for k in range(100)]") == [0, 1]


def test_a_helper_the_answer_uses_is_kept_with_what_the_helper_uses():
    helper = "def transpose(a):\n    return a.T * SCALE"
    answer = CLASS + "        return g @ transpose(self.W.data)"
    assert kept(IMPORTS, "SCALE = 1.0", helper, answer, PLOT, answers=(3,)) == [0, 1, 2, 3]


def test_a_cell_after_the_answer_that_rebinds_or_patches_the_checked_name_is_kept():
    assert kept(IMPORTS, ANSWER, PLOT, "Linear = course.layers.Linear") == [0, 1, 3]
    assert kept(IMPORTS, ANSWER, "Linear.backward = lambda self, g: g") == [0, 1, 2]
    assert kept(IMPORTS, ANSWER, "setattr(Linear, 'backward', None)") == [0, 1, 2]
    assert kept(IMPORTS, ANSWER, "course.layers.Linear.forward = None") == [0, 1, 2]


def test_a_value_the_answer_reads_is_kept_with_every_cell_that_touches_it():
    answer = CLASS + "        return g * scale[0]"
    cells = (IMPORTS, "scale = [1.0]", answer, "scale.append(2.0)", "print(scale)", PLOT)
    assert kept(*cells, answers=(2,)) == [0, 1, 2, 3, 4]


def test_names_local_to_a_function_do_not_pull_in_cells():
    """`x` inside the answer's method is its own: a cell that plots some global `x` is not needed."""
    answer = CLASS + "        x = self.x\n        return g"
    assert kept(IMPORTS, answer, "x = np.linspace(0, 1)\nplt.plot(x, x)") == [0, 1]


def test_a_global_assigned_inside_a_function_binds_it_when_called():
    setter = "def configure():\n    global scale\n    scale = 2.0"
    answer = CLASS + "        return g * scale"
    assert kept(IMPORTS, setter, "configure()", answer, answers=(3,)) == [0, 1, 3]


@pytest.mark.parametrize(
    "source",
    [
        "exec('Linear = None')",
        "globals()['Linear'] = None",
        "from math import *",
        "!echo hello",
        "%run helpers.py",
        "def broken(:\n    pass",
    ],
)
def test_a_cell_whose_effect_cannot_be_read_is_kept(source):
    assert kept(IMPORTS, ANSWER, source) == [0, 1, 2]


def test_matplotlib_magic_alone_does_not_keep_a_cell():
    assert kept("%matplotlib inline\n" + IMPORTS, ANSWER, "%matplotlib inline") == [0, 1]


def test_every_solution_notebook_keeps_its_imports_and_answers_and_leaves_out_experiments():
    """The course's own notebooks: each checking run runs the first cell and the answer cells."""
    root = os.path.join(os.path.dirname(__file__), "..", "solutions")
    for path in sorted(glob.glob(os.path.join(root, "*", "*.ipynb"))):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        symbols = {call.symbol for c in code if is_test_cell(c) for call in parse_test_cell(c.source)}
        sources = ["" if is_test_cell(c) else c.source for c in code]
        answers = [bool(c.metadata.get("nbgrader", {}).get("solution")) for c in code]
        keep = needed_cells(sources, answers, symbols)
        extra = [i for i, (k, a, s) in enumerate(zip(keep, answers, sources, strict=True)) if k and not a and s.strip()]
        # The imports, and the figure set-up cell that follows them in some notebooks (it imports too).
        setup = [i for i in extra if i > 0 and "display_formatter" in sources[i]]
        assert extra == [0, *setup] and len(setup) <= 1, (path, extra)
        assert sum(1 for k, s in zip(keep, sources, strict=True) if not k and s.strip()) >= 10, path


@pytest.mark.parametrize(
    "state",
    [
        "import sys\nsys.setrecursionlimit(10_000)",
        "from sys import setrecursionlimit\nsetrecursionlimit(10_000)",
        "np.seterr(all='raise')",
        "np.set_printoptions(precision=3)",
        "import warnings\nwarnings.filterwarnings('error')",
        "import warnings\nwarnings.simplefilter('ignore')",
        "np.random.seed(0)",
        "import random\nrandom.seed(1)",
    ],
)
def test_a_cell_that_sets_the_interpreters_state_is_kept(state):
    # A correct recursive answer may depend on it (issue 9: marked down when it was left out).
    assert kept(IMPORTS, ANSWER, state, PLOT) == [0, 1, 2]


def test_state_set_inside_a_function_that_is_never_called_does_not_keep_a_cell():
    assert kept(IMPORTS, ANSWER, "def later():\n    np.random.seed(0)", PLOT) == [0, 1]
