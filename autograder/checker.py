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

Some checks build their cases from reference code that other checks of the assignment grade
(the layers of a Sequential network): those come last (``later`` in ``job.json``). When the
first checks are done, this program says so on a pipe to the grader (``BACKPROP_GRADER_FDS``),
which reads their results there and then, and sends back the source of the functions the
later checks need (``given_back``); their withheld bodies are then restored in place.

Usage (the grader copies this file into the work folder): ``python checker.py``. Reads
``cells.json``, ``job.json`` and ``cases/<key>.npz``; writes ``status.json``,
``results/<key>.json`` and ``results/<key>/<n>.bin``.
"""

from __future__ import annotations

import json
import os
import resource
import select
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


def run_checks(namespace: dict, job: dict, checks: list[dict]) -> None:
    """Each case in a forked child with its own CPU limit; the child writes results/<key>.json."""
    from course.exercises.base import Case, get, run_case

    os.makedirs("results", exist_ok=True)
    for check in checks:
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
        if not _wait(pid, job["case_wall_seconds"]):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _wait(pid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for the child ``pid`` to end (without reaping it); True if it did."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3: look every 5 ms
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
            time.sleep(0.005)
        return False
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def _resolve(module: str, qualname: str):
    """The function ``module.qualname`` (a method of a class, say) as it is now."""
    import importlib

    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = vars(obj)[part]
    return getattr(obj, "__func__", obj)


def find_given_back(given_back: list[dict]) -> dict[tuple[str, str], tuple[object, str, int]]:
    """The withheld functions the grader may give back, found before any student code runs:
    (function, name, first line) by (module, qualified name)."""
    found = {}
    for item in given_back:
        function = _resolve(item["module"], item["qualname"])
        code = function.__code__
        found[item["module"], item["qualname"]] = (function, code.co_name, code.co_firstlineno)
    return found


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            yield from _code_objects(const)


def take_back(functions: dict[tuple[str, str], tuple[object, str, int]], fds: str) -> str | None:
    """Tell the grader the first checks are done, receive the sources of ``functions`` and
    restore their bodies (in the functions found at the start, and in those the names lead to
    now, should the notebook have reloaded a module); returns what went wrong, if anything."""
    to_grader, from_grader = (int(fd) for fd in fds.split(","))
    os.write(to_grader, b"first checks done\n")
    os.close(to_grader)
    chunks = []
    while chunk := os.read(from_grader, 1 << 16):
        chunks.append(chunk)
    os.close(from_grader)
    try:
        sources = json.loads(b"".join(chunks))["sources"]
        for (module, qualname), (function, name, line) in functions.items():
            entry = sources[module]
            [code] = [
                c for c in _code_objects(compile(entry["source"], entry["file"], "exec"))
                if c.co_name == name and c.co_firstlineno == line
            ]
            function.__code__ = code
            try:
                now = _resolve(module, qualname)
                if now is not function:
                    now.__code__ = code
            except (ImportError, KeyError, TypeError, AttributeError, ValueError):
                pass  # whatever the notebook put there instead is its own
    except Exception as exc:  # noqa: BLE001 - reported; the later checks then do not run
        return f"the grader could not give back the library code these checks use ({type(exc).__name__}: {exc})"
    return None


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
    fds = os.environ.get("BACKPROP_GRADER_FDS")
    given_back = find_given_back(job["given_back"]) if job.get("later") and fds else {}
    notes = run_cells(shell, cells, job)
    # The student's cells may have written here: the trusted grader reads only results/.
    Path("status.json").write_text(json.dumps({"status": "ok", "notes": notes}))
    run_checks(shell.user_ns, job, job["checks"])
    if job.get("later") and fds:
        # The grader has now read every result so far; what it gives back cannot change them.
        problem = take_back(given_back, fds)
        if problem is not None:
            Path("status.json").write_text(json.dumps({"status": problem, "notes": notes}))
            return
        run_checks(shell.user_ns, job, job["later"])


if __name__ == "__main__":
    sys.exit(main())
