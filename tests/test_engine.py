"""The trusted grading engine, on a small notebook built here (one Linear.backward exercise)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import psutil
import pytest

from autograder import sandbox
from autograder.verdicts import engine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sandbox.bubblewrap_available() or os.getuid() != 0,
        reason="grading runs student code in the bubblewrap sandbox (CI installs the 'bubblewrap' package)",
    ),
]

HEADER = "import numpy as np\nimport course\nfrom course.exercises import check"
CORRECT = (
    "        self.W.grad += self.x.T @ grad_out\n"
    "        self.b.grad += grad_out.sum(axis=0)\n"
    "        return grad_out @ self.W.data.T"
)
VISIBLE = '"""Check that Linear.backward matches centred differences."""\ncheck("layers.Linear.backward", Linear)'
HIDDEN = (
    '"""Check Linear.backward on hidden cases."""\n'
    "### BEGIN HIDDEN TESTS\n"
    'check("layers.Linear.backward", Linear, hidden=True)\n'
    "### END HIDDEN TESTS"
)


def notebook(body: str, extra: str = "") -> nbformat.NotebookNode:
    def cell(source, **meta):
        c = nbformat.v4.new_code_cell(source)
        if meta:
            c.metadata["nbgrader"] = {"schema_version": 3, **meta}
        return c

    solution = f"class Linear(course.layers.Linear):\n    def backward(self, grad_out):\n{body}"
    cells = [
        cell(HEADER),
        cell(solution, grade=False, solution=True, locked=False, grade_id="linear"),
        cell(VISIBLE, grade=True, solution=False, locked=True, points=1, grade_id="test_linear"),
        cell(HIDDEN, grade=True, solution=False, locked=True, points=2, grade_id="hidden_linear"),
    ]
    if extra:
        cells.insert(2, cell(extra))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def grade(nb, tmp_path, **kwargs):
    workdir = tmp_path / "work"
    workdir.mkdir()
    os.chmod(workdir, 0o755)
    return engine.grade(nb, workdir=workdir, cell_timeout=20, cpu_seconds=10, **kwargs), workdir


def scores(run) -> dict[str, bool]:
    return {g: v.passed for g, v in run.verdicts.items()}


def test_a_correct_solution_earns_every_cell_and_hidden_tests_are_stripped(tmp_path):
    nb = notebook(CORRECT)
    run, workdir = grade(nb, tmp_path)
    assert run.status == "ok" and run.sandboxed and run.flags == []
    assert scores(run) == {"test_linear": True, "hidden_linear": True}
    sent = nbformat.read(str(workdir / "run" / "notebook.ipynb"), as_version=4)
    assert "hidden=True" not in json.dumps(sent), "hidden tests must never reach the student's kernel"
    assert "hidden=True" not in (workdir / "check1" / "cells.json").read_text()
    assert "BEGIN HIDDEN TESTS" not in nb.cells[3].source and "hidden=True" not in nb.cells[3].source
    assert nb.cells[3].outputs[0]["output_type"] == "stream"


def test_a_stub_and_a_bug_fail_with_safe_messages(tmp_path):
    run, _ = grade(notebook("        raise NotImplementedError()"), tmp_path)
    assert scores(run) == {"test_linear": False, "hidden_linear": False}
    assert "not implemented" in run.verdicts["test_linear"].messages[0]

    buggy = CORRECT.replace("grad_out.sum(axis=0)", "grad_out[0]")
    nb = notebook(buggy)
    (tmp_path / "b").mkdir()
    run, _ = grade(nb, tmp_path / "b")
    assert scores(run) == {"test_linear": False, "hidden_linear": False}
    message = run.verdicts["hidden_linear"].messages[0]
    assert "dL/db" in message and "max relative error" in message and "expected" not in message
    error = nb.cells[3].outputs[0]
    assert error["output_type"] == "error" and error["ename"] == "GradCheckError"


@pytest.mark.parametrize(
    "extra",
    [
        # Rebinding the checker and the comparison: the kernel's verdict is ignored anyway.
        "import course.exercises as E\nE.check = lambda *a, **k: print('✓ passed')\ncheck = E.check\n"
        "np.allclose = lambda *a, **k: True",
        # A display formatter that prints a score.
        "get_ipython().display_formatter.formatters['text/plain'].for_type(int, lambda *a: print('10/10'))",
        # An input transformer that strips every check() call from later cells.
        "get_ipython().input_transformers_cleanup.append(lambda lines: [l for l in lines if 'check' not in l])",
    ],
    ids=["rebinds-checker", "display-formatter", "input-transformer"],
)
def test_tampering_with_the_kernel_earns_nothing(tmp_path, extra):
    run, _ = grade(notebook("        raise NotImplementedError()", extra), tmp_path)
    assert scores(run) == {"test_linear": False, "hidden_linear": False}


UNTRAP = (
    "import contextlib, sys\nimport course.exercises.running as running\n"  # where run_case looks up its trap
    "running.trapped = contextlib.contextmanager(lambda exercise, *watch: (yield []))\nsys.setprofile = lambda *a: None"
)


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        ("        return super().backward(grad_out)", UNTRAP),
        (
            "        return types.FunctionType(_CODE, vars(course.layers))(self, grad_out)",
            "import types\n_CODE = course.layers.Linear.backward.__code__",
        ),
        (
            "        return _COPY.Linear.backward(self, grad_out)",
            "import importlib.util\n"
            "_spec = importlib.util.spec_from_file_location('course.layers_copy', course.layers.__file__)\n"
            "_COPY = importlib.util.module_from_spec(_spec)\n_spec.loader.exec_module(_COPY)",
        ),
    ],
    ids=["super-with-the-trap-removed", "copied-code-object", "module-reloaded-from-source"],
)
def test_delegating_to_the_library_earns_nothing_however_it_is_reached(tmp_path, body, extra):
    nb = notebook(body, extra)
    run, workdir = grade(nb, tmp_path)
    assert scores(run) == {"test_linear": False, "hidden_linear": False}
    message = run.verdicts["test_linear"].messages[0]
    assert "course.layers.Linear.backward" in message and "leaves out" in message
    assert "line 3: " in message  # the student's line that made the call
    assert run.flags == ["called the library's answer: Linear.backward"]  # for grades.csv and the report
    # The notebook run, for feedback, has the whole library: the student's cells ran as usual.
    assert run.status == "ok" and not any(o.get("output_type") == "error" for o in nb.cells[2].outputs)


def test_cells_that_use_the_library_still_show_their_outputs(tmp_path):
    demo = (
        "layer = course.layers.Linear(3, 2, rng=0)\nlayer.forward(np.ones((4, 3)))\n"
        "print('grad_x', layer.backward(np.ones((4, 2))).shape)"
    )
    nb = notebook(CORRECT, demo)
    run, _ = grade(nb, tmp_path)
    assert scores(run) == {"test_linear": True, "hidden_linear": True}
    assert [o.get("text") for o in nb.cells[2].outputs] == ["grad_x (4, 3)\n"]


def test_magics_and_a_slow_cell_do_not_stop_the_checking_run(tmp_path):
    nb = notebook(CORRECT, "import time\nwhile True:\n    time.sleep(0) or sum(range(1000))")
    nb.cells[0].source = "%matplotlib inline\n%config InlineBackend.figure_format = 'png'\n" + HEADER
    run, _ = grade(nb, tmp_path)
    assert scores(run) == {"test_linear": True, "hidden_linear": True}


def test_a_kernel_that_exits_is_graded_alone_with_a_clear_status(tmp_path):
    """The exit ends the notebook run (the status says so) and, in a cell the checks need,
    the checking run too: the checks did not finish."""
    exits = "import os\nos._exit(3)\nLinear = None"  # rebinds the checked name: the checks need it
    run, _ = grade(notebook(CORRECT, exits), tmp_path)
    assert "kernel died" in run.status
    assert scores(run) == {"test_linear": False, "hidden_linear": False}
    assert "did not finish" in run.verdicts["test_linear"].messages[0]


def test_a_cell_the_checks_do_not_need_is_not_run_again(tmp_path):
    """An experiment that ends the kernel costs the notebook's outputs, not the checks: the
    checking run leaves out cells that define nothing the checks use."""
    run, _ = grade(notebook(CORRECT, "import os\nos._exit(3)"), tmp_path)
    assert "kernel died" in run.status
    assert scores(run) == {"test_linear": True, "hidden_linear": True}


#: A "backward" by centred differences written out by hand, entry by entry.
OWN_FINITE_DIFFERENCES = (
    "        def numeric(f, a, h=1e-6):\n"
    "            g = np.zeros_like(a)\n"
    "            for i in np.ndindex(a.shape):\n"
    "                old = a[i]\n"
    "                a[i] = old + h\n"
    "                up = np.sum(f() * grad_out)\n"
    "                a[i] = old - h\n"
    "                down = np.sum(f() * grad_out)\n"
    "                a[i] = old\n"
    "                g[i] = (up - down) / (2 * h)\n"
    "            return g\n"
    "        x = self.x.copy()\n"
    "        forward = lambda: x @ self.W.data + self.b.data\n"
    "        self.W.grad += numeric(forward, self.W.data)\n"
    "        self.b.grad += numeric(forward, self.b.data)\n"
    "        return numeric(forward, x)"
)


def test_a_finite_difference_backward_earns_nothing(tmp_path):
    run, _ = grade(notebook(OWN_FINITE_DIFFERENCES), tmp_path)
    # Right on small cases, but visible and hidden checks both end with a large batch, which
    # runs out of CPU time.
    assert scores(run) == {"test_linear": False, "hidden_linear": False}
    for grade_id in scores(run):
        messages = run.verdicts[grade_id].messages
        assert len(messages) == 1 and "large batch" in messages[0] and "did not finish" in messages[0]


def test_the_librarys_numerical_gradient_is_not_there_to_call(tmp_path):
    library = (
        "        from course.gradcheck import numerical_gradient\n"
        "        x = self.x\n"
        "        f = lambda _: self.forward(x)\n"
        "        self.W.grad += numerical_gradient(f, self.W.data, grad_out)\n"
        "        self.b.grad += numerical_gradient(f, self.b.data, grad_out)\n"
        "        return numerical_gradient(self.forward, x.copy(), grad_out)"
    )
    run, _ = grade(notebook(library), tmp_path)
    assert scores(run) == {"test_linear": False, "hidden_linear": False}
    for verdict in run.verdicts.values():
        assert all("called course.gradcheck.numerical_gradient" in m for m in verdict.messages)


def test_an_ungradable_test_cell_is_refused(tmp_path):
    nb = notebook(CORRECT)
    nb.cells[2].source = VISIBLE + "\nassert True"
    run, _ = grade(nb, tmp_path)
    assert not run.verdicts["test_linear"].passed and run.verdicts["hidden_linear"].passed
    assert "cannot be graded" in run.verdicts["test_linear"].messages[0]


# ----------------------------------------------------------------------------------------
# Checks that come last, with reference code given back (the Sequential network's layers)
# ----------------------------------------------------------------------------------------

# Calls the library's answer, with the in-kernel watch for such calls switched off first.
DELEGATING_LINEAR = (
    UNTRAP + "\n\n\nclass Linear(course.layers.Linear):\n"
    "    def backward(self, grad_out):\n        return super().backward(grad_out)"
)
SEQUENTIAL_LOOP = (
    "class Sequential(course.layers.Sequential):\n"
    "    def backward(self, grad_out):\n"
    "        for layer in reversed(self.layers):\n"
    "            grad_out = layer.backward(grad_out)\n"
    "{attack}"
    "        return grad_out\n"
)
# Run once the reference layers are back: grade Linear's cases again with them, over the
# results the first checks left (the checking run's own code, found beside it).
REWRITE_LINEAR_RESULTS = """\
        import json, os, shutil, checker
        job = json.load(open("job.json"))
        mine = [c for c in job["checks"] if c["exercise"] == "layers.Linear.backward"]
        for c in mine:
            shutil.rmtree(f"results/{c['key']}", ignore_errors=True)
            if os.path.exists(f"results/{c['key']}.json"):
                os.remove(f"results/{c['key']}.json")
        checker.run_checks({"Linear": Linear}, job, mine)
"""


def layers_notebook(attack: str = "") -> nbformat.NotebookNode:
    def cell(source, **meta):
        c = nbformat.v4.new_code_cell(source)
        if meta:
            c.metadata["nbgrader"] = {"schema_version": 3, **meta}
        return c

    cells = [
        cell(HEADER),
        cell(DELEGATING_LINEAR, grade=False, solution=True, locked=False, grade_id="linear"),
        cell(VISIBLE, grade=True, solution=False, locked=True, points=1, grade_id="test_linear"),
        cell(SEQUENTIAL_LOOP.format(attack=attack), grade=False, solution=True, locked=False, grade_id="seq"),
        cell(
            'check("layers.Sequential.backward", Sequential)',
            grade=True,
            solution=False,
            locked=True,
            points=1,
            grade_id="test_seq",
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_sequential_checks_run_last_in_the_same_run_with_the_layers_given_back(tmp_path):
    run, workdir = grade(layers_notebook(), tmp_path)
    assert scores(run) == {"test_linear": False, "test_seq": True}
    assert "the library's own answer" in run.verdicts["test_linear"].messages[0]
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith("check")) == ["check1"]


FORGED_RESULT_FILES = """\
import json, os
for key in ["c3_0_0", "c3_0_1", "c4_0_0", "c4_0_1"]:
    os.makedirs(f"results/{key}", exist_ok=True)
    json.dump({"problems": [], "outputs": {}}, open(f"results/{key}.json", "w"))
"""


def test_results_left_by_the_cells_are_never_read(tmp_path):
    """Results travel only on each case's own pipe, opened after the cells are done: files that
    the cells wrote where results used to be read earn nothing."""
    run, _ = grade(notebook("        raise NotImplementedError()", FORGED_RESULT_FILES), tmp_path)
    assert scores(run) == {"test_linear": False, "hidden_linear": False}


def test_a_thread_left_running_by_a_cell_stops_the_checks(tmp_path):
    thread = (
        "import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
        "Linear.started = True  # touches the checked name: the checking run needs this cell"
    )
    run, _ = grade(notebook(CORRECT, thread), tmp_path)
    assert scores(run) == {"test_linear": False, "hidden_linear": False}
    assert all("left a thread running" in m for v in run.verdicts.values() for m in v.messages)


@pytest.mark.skipif(os.getuid() != 0, reason="each run has a uid of its own only when grading as root")
def test_a_process_left_running_by_a_cell_is_stopped_before_the_cases(tmp_path, monkeypatch):
    daemon = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    open('daemon.pid', 'w').write(str(os.getpid()))\n"
        "    time.sleep(600)\n"
        "    os._exit(0)\n"
        "Linear.forked = True  # touches the checked name: the checking run needs this cell"
    )
    seen = []
    original = engine._CheckRun._stop_strays

    def alive(uid):  # a killed child its parent has not reaped is a zombie: gone all the same
        procs = psutil.process_iter(["uids", "status"])
        return [p for p in procs if p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE]

    def watch(self):
        before = alive(self.uid)
        outcome = original(self)
        seen.append((len(before), len(alive(self.uid))))
        return outcome

    monkeypatch.setattr(engine._CheckRun, "_stop_strays", watch)
    run, _ = grade(notebook(CORRECT, daemon), tmp_path, uid=40001)  # a uid no other test uses
    assert scores(run) == {"test_linear": True, "hidden_linear": True}
    assert seen[0][0] >= 2 and seen[0][1] == 1  # the daemon was there when the cells were done, then gone


def test_when_the_code_cannot_be_given_back_the_later_checks_say_so(tmp_path, monkeypatch):
    """A fault on the grader's side is reported as such, not blamed on the student."""
    monkeypatch.setattr(engine._CheckRun, "_sources", lambda self: {})
    run, _ = grade(layers_notebook(), tmp_path)
    assert scores(run) == {"test_linear": False, "test_seq": False}
    messages = run.verdicts["test_seq"].messages
    assert messages and all("did not finish" in m and "could not give back the library code" in m for m in messages)


def test_the_code_is_given_back_where_the_names_lead_after_a_reload(tmp_path):
    """A notebook that reloads course.layers has new layer classes: the Sequential check's
    network is built from them, and they get the code back too."""
    nb = layers_notebook()
    nb.cells[3].source = "import importlib\nimportlib.reload(course.layers)\n\n" + nb.cells[3].source
    run, _ = grade(nb, tmp_path)
    assert scores(run) == {"test_linear": False, "test_seq": True}, run.verdicts["test_seq"].messages


def test_the_checking_process_cpu_limit_does_not_grow_with_the_number_of_checks():
    """A cell can switch its own timer off; what it can then spend is the checking process's
    CPU limit, the same for 2 checks or 40 (cases run in children with limits of their own)."""

    def limit(n_jobs: int, cpu: int) -> int:
        group = engine._Group([], [({"key": f"k{i}"}, None) for i in range(n_jobs)])
        return engine._CheckRun(Path("w"), None, group, 60, cpu, 0).limits().cpu_seconds

    assert limit(2, 20) == limit(40, 20) == engine._CheckRun.CELLS_CPU + engine._CheckRun.MARGIN_CPU
    assert limit(40, 200) == 205  # never below what a case child sets for itself


def test_a_cell_that_switches_off_its_timer_is_stopped_by_the_process_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(engine._CheckRun, "CELLS_CPU", 3)
    monkeypatch.setattr(engine._CheckRun, "MARGIN_CPU", 2)
    spin = (
        "import signal\nsignal.setitimer(signal.ITIMER_PROF, 0)\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\n"
        "signal.setitimer(signal.ITIMER_REAL, 0)\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "while True:\n    pass\nLinear = Linear  # binds the checked name: the checking run needs this cell"
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    os.chmod(workdir, 0o755)
    run = engine.grade(notebook(CORRECT, spin), workdir=workdir, cell_timeout=3, cpu_seconds=2)
    assert scores(run) == {"test_linear": False, "hidden_linear": False}
    assert "this check did not finish" in run.verdicts["test_linear"].messages[0]


def test_sleeping_cells_together_get_a_fixed_wall_clock_budget_in_the_checking_run(tmp_path, monkeypatch):
    """Each cell has the cell timeout, and all of them together CELLS_WALL: many sleeping cells
    (each within its own timeout) cannot hold the checking run for their sum."""
    monkeypatch.setattr(engine._CheckRun, "CELLS_WALL", 4)
    nb = notebook(CORRECT)
    sleeper = "import time\ntime.sleep(3)\ncourse.slept = True  # touches a needed name: the checking run keeps it"
    for _ in range(3):
        nb.cells.insert(1, nbformat.v4.new_code_cell(sleeper))
    run, workdir = grade(nb, tmp_path)
    assert scores(run) == {"test_linear": False, "hidden_linear": False}  # the answer came after them
    assert "the checking run's time for cells was used up" in " ".join(run.verdicts["test_linear"].messages)


#: Takes over the checking process's own per-case function (found through the garbage
#: collector) and answers every case in that process, by centred differences, bypassing the
#: case's child, its CPU limit and the detector; it writes on each case's pipe.
TAKE_OVER_THE_CHECKER = """
import __main__, os, io, json
import numpy as np
from course.exercises.base import pack_result, encode_outputs
def numeric(f, a, g, h=1e-6):
    out = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]; a[i] = old + h; up = np.sum(f() * g); a[i] = old - h; down = np.sum(f() * g); a[i] = old
        out[i] = (up - down) / (2 * h)
    return out
def forged(namespace, job, check, payload, fd):
    from course.exercises.base import Case, get
    with np.load(io.BytesIO(payload)) as d:
        arrays = {k: d[k] for k in d.files}
    case = Case(check["label"], arrays, check["config"])
    class FD(course.layers.Linear):
        def backward(self, g):
            f = lambda: self.x @ self.W.data + self.b.data
            self.W.grad += numeric(f, self.W.data, g)
            self.b.grad += numeric(f, self.b.data, g)
            return numeric(f, self.x, g)
    outputs = get(check["exercise"]).run(FD, case)  # no detector, no traps: straight in the parent
    os.write(fd, pack_result(encode_outputs(outputs), []))
    os.close(fd)
import gc
checker = [g for g in gc.get_objects() if isinstance(g, dict) and "run_case_in_child" in g and "serve" in g][0]
checker["run_case_in_child"] = forged
Linear.patched = True
"""


def test_a_cell_that_takes_over_the_checker_cannot_finish_the_large_case(tmp_path, monkeypatch):
    """The limit the README states: code a cell leaves in the checking process can answer a
    case on its pipe, but then within the process's CPU limit, which the large cases (sized
    beyond any finite-difference scheme) exceed; the cell's small case alone earns nothing."""
    monkeypatch.setattr(engine._CheckRun, "CELLS_CPU", 5)
    monkeypatch.setattr(engine._CheckRun, "MARGIN_CPU", 5)
    run, _ = grade(notebook("        raise NotImplementedError()", TAKE_OVER_THE_CHECKER), tmp_path)
    assert scores(run) == {"test_linear": False, "hidden_linear": False}
    messages = run.verdicts["test_linear"].messages
    assert len(messages) == 1 and "large batch" in messages[0]  # the forged small case "passed"
