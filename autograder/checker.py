"""Runs INSIDE the sandbox: the checking run of a student's notebook.

The grader executes a notebook twice, in two sandboxes that share nothing:

* the *notebook run* (:mod:`autograder.worker`) executes it in a Jupyter kernel with the full
  course library, for the outputs that feedback shows;
* the *checking run* (this program) sees a copy of the library from which the reference
  implementations graded in the assignment are withheld (:mod:`autograder.withhold`). It runs
  the notebook's code cells again in a plain IPython shell (the graded test cells arrive empty),
  then each check case in a forked child under a CPU limit of its own, and leaves the student's
  outputs as ``.npy`` files (``results/<key>/<n>.bin``, listed in ``results/<key>.json``) for the
  trusted grader to judge.

Answer cells (nbgrader solution cells) may use ``answer_cpu_seconds`` of CPU each, other cells
``other_cpu_seconds``: this run needs the notebook's definitions, not its experiments, and the
cases (in ``cases/``) must not be precomputable by a slow method. A cell stopped at its budget is
reported in ``status.json``.

Usage (the grader copies this file into the work folder): ``python checker.py``. Reads
``cells.json``, ``job.json`` and ``cases/<key>.npz``; writes ``status.json``,
``results/<key>.json`` and ``results/<key>/<n>.bin``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

#: Most cells reported as stopped or failed in status.json.
MAX_REPORTED = 20


def _interrupt(signum, frame):
    raise KeyboardInterrupt("CPU budget of the cell used up")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_cells(shell, cells: list[dict], job: dict) -> list[str]:
    """Run every cell with its CPU budget; returns notes on cells that failed or were stopped."""
    notes: list[str] = []
    total_left = float(job["cells_cpu_seconds"])
    devnull = open(os.devnull, "w")  # noqa: SIM115 - open for the life of the process
    for number, cell in enumerate(cells, start=1):
        if not cell["source"].strip():
            continue
        budget = min(job["answer_cpu_seconds"] if cell["answer"] else job["other_cpu_seconds"], total_left)
        if budget <= 0:
            notes.append(f"cell {number} was not run: the checking run's CPU budget for cells was used up")
            continue
        start = _cpu()
        signal.signal(signal.SIGPROF, _interrupt)
        signal.setitimer(signal.ITIMER_PROF, budget)
        sys.stdout = sys.stderr = devnull
        try:
            result = shell.run_cell(cell["source"], store_history=False, silent=True)
        except BaseException as exc:  # noqa: BLE001 - nothing a cell raises may stop the run
            result, error = None, exc
        else:
            error = result.error_before_exec or result.error_in_exec
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        total_left -= _cpu() - start
        if isinstance(error, KeyboardInterrupt):
            notes.append(f"cell {number} was stopped after {budget:g} s of CPU")
        elif error is not None and cell["answer"]:
            notes.append(f"answer cell {number} raised {type(error).__name__}: {error}"[:300])
        _close_figures()
    return notes[:MAX_REPORTED]


def _close_figures() -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        try:
            pyplot.close("all")
        except Exception:  # noqa: BLE001 - the student's pyplot may be broken; nothing to free then
            pass


def run_checks(namespace: dict, job: dict) -> None:
    """Each case in a forked child with its own CPU limit; the child writes results/<key>.json."""
    from course.exercises.base import Case, get, run_case

    os.makedirs("results", exist_ok=True)
    for check in job["checks"]:
        key = check["key"]
        pid = os.fork()
        if pid == 0:
            try:
                devnull = open(os.devnull, "w")  # noqa: SIM115
                sys.stdout = sys.stderr = devnull
                resource.setrlimit(resource.RLIMIT_CPU, (job["cpu_seconds"], job["cpu_seconds"] + 1))
                import numpy as np

                with np.load(f"cases/{key}.npz", allow_pickle=False) as data:
                    arrays = {name: data[name] for name in data.files}
                case = Case(check["label"], arrays, check["config"])
                student = namespace.get(check["symbol"])
                if student is None:
                    outputs, problems = {}, [f"no `{check['symbol']}` is defined at the top level of the notebook"]
                else:
                    outputs, problems = run_case(get(check["exercise"]), student, case)
                os.makedirs(f"results/{key}")
                names = {}
                for i, (name, raw) in enumerate(outputs.items()):
                    with open(f"results/{key}/{i}.bin", "wb") as f:
                        f.write(raw)
                    names[name] = f"{i}.bin"
                with open(f"results/{key}.json", "w") as f:  # last: a case without it did not finish
                    json.dump({"problems": problems, "outputs": names}, f)
            finally:
                os._exit(0)
        deadline = time.monotonic() + job["case_wall_seconds"]
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.005)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def main() -> None:
    job = json.loads(Path("job.json").read_text())
    cells = json.loads(Path("cells.json").read_text())
    Path("status.json").write_text(json.dumps({
        "status": "the checking run stopped while running the notebook's cells (does a cell end the process, "
        "with os._exit or by running out of memory?)"
    }))
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    # Figures are never drawn here: `%matplotlib inline` (common in a first cell) must not stop
    # the rest of its cell, the imports, from running, as it would without a kernel.
    shell.register_magic_function(lambda line="": None, "line", "matplotlib")
    notes = run_cells(shell, cells, job)
    # The student's cells may have written here: the trusted grader reads only results/.
    Path("status.json").write_text(json.dumps({"status": "ok", "notes": notes}))
    run_checks(shell.user_ns, job)


if __name__ == "__main__":
    sys.exit(main())
