"""Runs INSIDE the sandbox: the checking run of a student's notebook.

The grader executes a notebook twice, in two sandboxes that share nothing:

* the *notebook run* (:mod:`autograder.inside.worker`) executes it in a Jupyter kernel with the full
  course library, for the outputs that feedback shows;
* the *checking run* (this program) sees a copy of the library from which the reference
  implementations graded in the assignment are withheld (:mod:`autograder.verdicts.withhold`). It runs
  the notebook's code cells again in a plain IPython shell (the graded test cells arrive empty),
  then each check case in a forked child under a CPU limit of its own, and sends the student's
  outputs as ``.npy`` bytes to the trusted grader, which judges them.

Answer cells (nbgrader solution cells) may use ``answer_cpu_seconds`` of CPU each, other cells
``other_cpu_seconds``, and each ``cell_wall_seconds`` of wall-clock time (all of them together
``cells_cpu_seconds`` and ``cells_wall_seconds``): this run needs the
notebook's definitions, not its experiments. A cell stopped at its budget is reported in
``status.json``.

The cases never touch the disk and exist nowhere before the cells are done. Then this program
says ``cells`` on its channel to the grader (a socket, ``BACKPROP_GRADER_FD``); the grader stops
every other process of the run and sends the cases one at a time, each with the write end of a
pipe of its own. The case runs in a forked child, the only process that keeps that end: the
child writes its result there (:func:`course.exercises.base.pack_result`) and exits, and the
grader reads it, within a byte budget, as the result of that case and of no other. The
child lowers its own CPU limit, but nothing here is relied on for it: the notebook's code runs
in this process and may have patched anything, so the grader holds each case to its budget
from outside (``autograder.verdicts.engine._CaseWatch``).

Some checks build their cases from reference code that other checks of the assignment grade
(the layers of a Sequential network): the grader sends them last, after it has read every
other result, preceded by the source of the functions they need (``given_back`` in
``job.json``), whose withheld bodies are then restored in place.

Usage (the grader copies this file into the work folder): ``python checker.py``. Reads
``cells.json`` and ``job.json``; writes ``status.json``.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import socket
import sys
import time
from pathlib import Path
from types import FunctionType

#: Most cells reported as stopped or failed in status.json.
MAX_REPORTED = 20


def _interrupt(signum, frame):
    raise KeyboardInterrupt("CPU budget of the cell used up")


def _wall(signum, frame):
    raise KeyboardInterrupt("wall-clock budget of the cell used up")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_cells(shell, cells: list[dict], job: dict) -> list[str]:
    """Run every cell with its CPU budget; returns notes on cells that failed or were stopped."""
    notes: list[str] = []
    total_left = float(job["cells_cpu_seconds"])
    wall_left = float(job.get("cells_wall_seconds", 2 * total_left))  # many sleeping cells, together
    devnull = open(os.devnull, "w")  # noqa: SIM115 - open for the life of the process
    for number, cell in enumerate(cells, start=1):
        if not cell["source"].strip():
            continue
        budget = min(job["answer_cpu_seconds"] if cell["answer"] else job["other_cpu_seconds"], total_left)
        wall = min(job.get("cell_wall_seconds", 3 * budget), wall_left)
        if budget <= 0 or wall <= 0:
            notes.append(f"cell {number} was not run: the checking run's time for cells was used up")
            continue
        start, started = _cpu(), time.monotonic()
        signal.signal(signal.SIGPROF, _interrupt)
        signal.signal(signal.SIGALRM, _wall)
        signal.setitimer(signal.ITIMER_PROF, budget)
        signal.setitimer(signal.ITIMER_REAL, wall)  # a sleeping or blocked cell uses no CPU
        sys.stdout = sys.stderr = devnull
        try:
            result = shell.run_cell(cell["source"], store_history=False, silent=True)
        except BaseException as exc:  # noqa: BLE001 - nothing a cell raises may stop the run
            result, error = None, exc
        else:
            error = result.error_before_exec or result.error_in_exec
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        total_left -= _cpu() - start
        wall_left -= time.monotonic() - started
        if isinstance(error, KeyboardInterrupt) and time.monotonic() - started >= wall:
            notes.append(f"cell {number} was stopped after {wall:g} s of wall-clock time (is it waiting or sleeping?)")
        elif isinstance(error, KeyboardInterrupt):
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


def _read_exactly(sock: socket.socket, n: int, fds: list[int] | None = None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if fds is not None and not fds:
            data, new_fds, _, _ = socket.recv_fds(sock, n - got, 4)
            fds.extend(new_fds)
        else:
            data = sock.recv(min(n - got, 1 << 20))
        if not data:
            raise EOFError("the grader closed the channel")
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def receive(sock: socket.socket) -> tuple[dict, bytes, list[int]]:
    """One message from the grader: (header, payload, file descriptors passed with it)."""
    fds: list[int] = []
    head = _read_exactly(sock, 8, fds)
    size, payload_size = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")
    header = json.loads(_read_exactly(sock, size))
    return header, _read_exactly(sock, payload_size), fds


def send(sock: socket.socket, header: dict) -> None:
    data = json.dumps(header).encode()
    sock.sendall(len(data).to_bytes(4, "big") + (0).to_bytes(4, "big") + data)


def run_case_in_child(namespace: dict, job: dict, check: dict, payload: bytes, result_fd: int) -> None:
    """Run one case in a forked child with its own CPU limit. Only the child keeps ``result_fd``,
    the write end of this case's pipe to the grader: it writes the result there and exits."""
    pid = os.fork()
    if pid == 0:
        try:
            devnull = open(os.devnull, "w")  # noqa: SIM115
            sys.stdout = sys.stderr = devnull
            resource.setrlimit(resource.RLIMIT_CPU, (job["cpu_seconds"], job["cpu_seconds"] + 1))
            import io

            import numpy as np

            from course.exercises.base import Case, get, pack_result, run_case

            with np.load(io.BytesIO(payload), allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            case = Case(check["label"], arrays, check["config"])
            student = namespace.get(check["symbol"])
            outputs: dict[str, bytes]
            if student is None:
                outputs, problems = {}, [f"no `{check['symbol']}` is defined at the top level of the notebook"]
            else:
                try:
                    outputs, problems = run_case(get(check["exercise"]), student, case)
                except Exception as exc:  # noqa: BLE001 - the notebook broke the check machinery itself
                    outputs, problems = {}, [f"the check could not run ({type(exc).__name__}: {exc})"[:300]]
            with os.fdopen(result_fd, "wb") as out:
                out.write(pack_result(outputs, problems))
        finally:
            os._exit(0)
    os.close(result_fd)  # the parent, where the notebook's cells ran, keeps no way to write a result
    if not _wait(pid, job["case_wall_seconds"]):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def serve(sock: socket.socket, namespace: dict, job: dict, given_back: dict) -> None:
    """Answer the grader until it says ``end``: each ``case`` runs in a child (and is answered
    ``done``); ``give_back`` restores the library code the later checks need."""
    while True:
        header, payload, fds = receive(sock)
        if header["op"] == "case" and len(fds) == 1:
            run_case_in_child(namespace, job, header["check"], payload, fds[0])
            send(sock, {"op": "done"})
        elif header["op"] == "give_back":
            for fd in fds:
                os.close(fd)
            send(sock, {"op": "given", "problem": take_back(given_back, header["sources"])})
        else:
            for fd in fds:
                os.close(fd)
            return


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


def find_given_back(given_back: list[dict]) -> dict[tuple[str, str], tuple[FunctionType, str, int]]:
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


def take_back(functions: dict[tuple[str, str], tuple[FunctionType, str, int]], sources: dict) -> str | None:
    """Restore the bodies of ``functions`` from the grader's ``sources`` (in the functions found at
    the start, and in those the names lead to now, should the notebook have reloaded a module);
    returns what went wrong, if anything."""
    try:
        for (module, qualname), (function, name, line) in functions.items():
            entry = sources[module]
            [code] = [
                c
                for c in _code_objects(compile(entry["source"], entry["file"], "exec"))
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
    Path("status.json").write_text(
        json.dumps(
            {
                "status": "the checking run stopped while running the notebook's cells (does a cell end the process, "
                "with os._exit or by running out of memory?)"
            }
        )
    )
    sock = socket.socket(fileno=int(os.environ["BACKPROP_GRADER_FD"]))
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    # Figures are never drawn here: `%matplotlib inline` (common in a first cell) must not stop
    # the rest of its cell, the imports, from running, as it would without a kernel.
    # IPython's decorator on register_magic_function types its first argument as the shell.
    shell.register_magic_function(lambda line="": None, "line", "matplotlib")  # type: ignore[arg-type]
    given_back = find_given_back(job["given_back"])
    notes = run_cells(shell, cells, job)
    Path("status.json").write_text(json.dumps({"status": "ok", "notes": notes}))
    # Only now does the grader send the cases, one at a time, once it has stopped every other
    # process of this run.
    send(sock, {"op": "cells"})
    try:
        serve(sock, shell.user_ns, job, given_back)
    except (EOFError, OSError):
        pass  # the grader is gone or refused to go on: nothing more to do


if __name__ == "__main__":
    try:
        main()
    except BaseException:  # noqa: BLE001 - shown in the run's stderr, then the same ending
        import traceback

        traceback.print_exc()
        code = 1
    else:
        code = 0
    # Not sys.exit: the interpreter would wait for any thread a cell left running (and rewrites
    # results with) until the run's wall-clock cap; nothing of this process is needed any more.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
