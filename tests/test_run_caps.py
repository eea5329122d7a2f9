"""Wall-clock and CPU caps of the grader's runs: fixed per run, whatever the number of cells;
a sleeping cell is stopped by the cell timeout, a cell that ignores the interrupt ends the
notebook run, and the run's cap stops whatever is left."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from autograder import sandbox
from autograder.verdicts import engine

needs_bwrap = pytest.mark.skipif(
    not sandbox.bubblewrap_available() or os.getuid() != 0,
    reason="the notebook run needs the bubblewrap sandbox (the 'bubblewrap' package) and root",
)


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def notebook_run(tmp_path: Path, nb, cell_timeout: int, run_seconds: float):
    run = engine._NotebookRun(tmp_path / "run", nb, cell_timeout, sandbox.NOBODY, run_seconds)
    run.prepare()
    result = run.start(False, ())
    executed = (
        nbformat.read(str(run.workdir / "executed.ipynb"), as_version=4)
        if (run.workdir / "executed.ipynb").exists()
        else None
    )
    return result, run.status(result), executed


def test_the_notebook_runs_caps_do_not_grow_with_the_number_of_cells():
    def limits(n_cells: int) -> sandbox.Limits:
        return engine._NotebookRun(Path("w"), notebook(*["pass"] * n_cells), 60, 0).limits()

    assert limits(1) == limits(2000)
    assert limits(2000).wall_seconds == engine._NotebookRun.RUN_SECONDS
    assert limits(2000).total_cpu == engine._NotebookRun.RUN_SECONDS
    assert engine._NotebookRun(Path("w"), notebook("pass"), 60, 0, 42).limits().wall_seconds == 42


def test_the_checking_runs_caps_are_fixed_and_bound_the_total_cpu():
    def limits(n_jobs: int, run_seconds=None) -> sandbox.Limits:
        group = engine._Group([], [({"key": f"k{i}"}, None) for i in range(n_jobs)])
        return engine._CheckRun(Path("w"), None, group, 60, 20, 0, run_seconds).limits()

    assert limits(2).wall_seconds == limits(400).wall_seconds == engine._CheckRun.RUN_SECONDS
    assert limits(2).total_cpu == engine._CheckRun.CELLS_CPU + engine._CheckRun.MARGIN_CPU + 2 * 20
    assert limits(400).total_cpu == engine._CheckRun.RUN_SECONDS  # never beyond the run's cap
    assert limits(400, 90).wall_seconds == limits(400, 90).total_cpu == 90


@pytest.mark.slow
@needs_bwrap
def test_a_sleeping_cell_is_interrupted_and_the_run_goes_on(tmp_path):
    nb = notebook("import time\ntime.sleep(600)", "print('after the sleeper')")
    result, status, executed = notebook_run(tmp_path, nb, cell_timeout=3, run_seconds=300)
    assert not result.timed_out and status == "ok"
    assert executed.cells[0].outputs[0].ename == "KeyboardInterrupt"
    assert executed.cells[1].outputs[0].text == "after the sleeper\n"


@pytest.mark.slow
@needs_bwrap
def test_a_cell_that_ignores_the_interrupt_ends_the_notebook_run(tmp_path):
    blocked = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(600)"
    nb = notebook(blocked, "print('never')")
    result, status, executed = notebook_run(tmp_path, nb, cell_timeout=3, run_seconds=300)
    assert not result.timed_out  # ended by the worker, well before the run's cap
    assert status == "a cell ran past its time limit and could not be interrupted"
    assert executed.cells[1].outputs == []


@pytest.mark.slow
@needs_bwrap
def test_the_run_cap_stops_a_notebook_of_sleepers_whatever_the_cell_timeout(tmp_path):
    """Cells each under a long cell timeout, 50 of them: the run's fixed cap ends it."""
    nb = notebook(*["import time\ntime.sleep(100)"] * 50)
    result, status, _ = notebook_run(tmp_path, nb, cell_timeout=1000, run_seconds=15)
    assert result.timed_out
    assert status == "the sandbox was stopped (time or memory limit)"


@pytest.mark.slow
@needs_bwrap
def test_a_cell_that_forks_busy_children_is_stopped_at_the_runs_total_cpu(tmp_path):
    """Four spinning children of a cell: their CPU time counts toward the run's total, so the
    run ends near its cap (CPU seconds of all processes), not beyond."""
    spin = "import os\nfor _ in range(4):\n    if os.fork() == 0:\n        while True:\n            pass\nos.wait()"
    result, status, _ = notebook_run(tmp_path, notebook(spin), cell_timeout=1000, run_seconds=12)
    if result.cpu_used is None:
        pytest.skip("no control group here: CPU time is limited per process only")
    assert result.cpu_exceeded or result.timed_out
    assert result.cpu_used <= 12 + 0.2 * (os.cpu_count() or 1) + 1.0
    assert json.dumps(status)
