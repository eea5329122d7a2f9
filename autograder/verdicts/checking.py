"""A checking run: the notebook's cells again, then each case, with the library's answers withheld.

The grader prepares the run (only the cells its checks need, :mod:`autograder.verdicts.slicing`;
a copy of the library without the answers, :mod:`autograder.verdicts.withhold`), runs
:mod:`autograder.inside.checker` in the sandbox, and serves it over the channel
(:mod:`autograder.verdicts.channel`) from a thread: the cases go out one at a time, each
result comes back through the case's own pipe while the CPU watch
(:mod:`autograder.verdicts.watch`) holds the case to its budget.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from autograder import sandbox
from autograder.host.pool import kill_processes
from autograder.integration.metadata import is_solution
from autograder.sandbox import cgroup
from autograder.verdicts import withhold
from autograder.verdicts.channel import MAX_RESULT_BYTES, json_default, read_json, read_pipe, receive, send
from autograder.verdicts.plan import Group
from autograder.verdicts.processes import holds, pid_namespace
from autograder.verdicts.runs import INSIDE, NotebookRun, private_dir
from autograder.verdicts.slicing import needed_cells
from autograder.verdicts.watch import CaseWatch
from course.exercises.base import Case, unpack_result

__all__ = ["CheckRun"]


class CheckRun(NotebookRun):
    """A checking run (:mod:`autograder.inside.checker`): the notebook's cells again, then the cases,
    with the library's answers to the assignment withheld.

    The grader talks to the run over a socket (:meth:`_serve`): when the run says its cells are
    done, the grader stops every other process of the run, then sends the cases one at a time,
    each with the write end of a pipe that only the case's own process keeps, and reads the
    case's result from that pipe alone, within a byte budget. When the group has ``later``
    checks, it sends the source of the ``given_back`` functions after every first result is in.
    """

    #: CPU seconds for each answer cell, each other cell, and all cells together; wall-clock
    #: seconds for all cells together (each has the notebook's cell timeout).
    ANSWER_CPU, OTHER_CPU, CELLS_CPU, CELLS_WALL = 10, 2, 40, 80
    #: CPU seconds the checking process may use beyond its cells (start-up, starting the cases).
    MARGIN_CPU = 30
    #: Most outputs one case may return, and the bytes beyond four times its inputs' size it may.
    MAX_NAMES, RESULT_MARGIN_BYTES = 64, 1 << 20
    #: Wall-clock seconds the whole checking run may take (and at most its CPU time in total).
    RUN_SECONDS = 300.0

    def __init__(
        self, workdir: Path, student, group: Group, cell_timeout, cpu_seconds, uid, run_seconds: float | None = None
    ) -> None:
        super().__init__(workdir, student, cell_timeout, uid, run_seconds)
        self.group, self.cpu_seconds = group, cpu_seconds
        self.jobs = group.first + group.later
        self.library_dir = Path()  # set by prepare()
        self.given_back: list[withhold.Ref] = []
        self.sources: dict[str, dict[str, str]] = {}
        #: Each case's decoded result, as read from its own pipe; why a case has none, if known.
        self.results: dict[str, tuple[dict[str, bytes], list[str]]] = {}
        self.why: dict[str, str] = {}
        self.socket_inode: int | None = None  # the run's end of its channel: tells its processes apart
        #: The checking process (found once its cells are done) and the run's control group.
        self.checker: psutil.Process | None = None
        self.cgroup: cgroup.Cgroup | None = None
        self.started = threading.Event()

    def _started(self, group: cgroup.Cgroup | None) -> None:
        self.cgroup = group
        self.started.set()

    def prepare(self) -> None:
        private_dir(self.workdir, self.uid)
        code = [c for c in self.student.cells if c.cell_type == "code"]
        answers = [is_solution(c) for c in code]
        # Only the cells the checks need: the notebook's experiments are the notebook run's.
        needed = needed_cells([c.source for c in code], answers, {job["symbol"] for job, _ in self.jobs})
        cells = [
            {"source": c.source if run else "", "answer": answer}
            for c, answer, run in zip(code, answers, needed, strict=True)
        ]
        (self.workdir / "cells.json").write_text(json.dumps(cells))
        self.given_back = list(self.group.given_back)
        self.sources = self._sources()  # made now: a fault here is the grader's, and loud
        job = {  # the cases themselves are sent only once the cells are done
            # What the run restores: the module- or class-level function each given-back one is
            # (or is nested in), whose code then comes from the given-back source.
            "given_back": [
                {"module": module, "qualname": qualname}
                for module, qualname in sorted({(r.module, r.outermost) for r in self.given_back})
            ],
            "cpu_seconds": self.cpu_seconds,
            "case_wall_seconds": 3 * self.cpu_seconds,
            "answer_cpu_seconds": self.ANSWER_CPU,
            "other_cpu_seconds": self.OTHER_CPU,
            "cells_cpu_seconds": self.CELLS_CPU,
            "cell_wall_seconds": float(self.cell_timeout),
            "cells_wall_seconds": float(self.CELLS_WALL),
        }
        (self.workdir / "job.json").write_text(json.dumps(job, default=json_default))
        shutil.copy(INSIDE / "checker.py", self.workdir / "checker.py")
        self.library_dir = withhold.shared_copy(self.group.withheld)

    def start(self, require_sandbox: bool, hidden_paths: tuple[str | Path, ...]) -> sandbox.Result:
        ours, theirs = socket.socketpair()
        self.socket_inode = os.fstat(theirs.fileno()).st_ino
        serve = threading.Thread(target=self._serve, args=(ours,), daemon=True)
        serve.start()
        library = self.library()
        env = dict(library.pop("env"), BACKPROP_GRADER_FD=str(theirs.fileno()))
        try:
            return self._run(
                require_sandbox,
                hidden_paths,
                env=env,
                pass_fds=(theirs.detach(),),
                on_start=self._started,
                **library,
            )
        finally:
            self.started.set()
            serve.join()  # the run is over: its end of the socket is closed, so this returns

    def _serve(self, sock: socket.socket) -> None:
        """The grader's side of the channel (in a thread while the run goes on)."""
        deadline = time.monotonic() + self.limits().wall_seconds
        try:
            with sock:
                if receive(sock, deadline).get("op") != "cells":
                    return
                self.started.wait(10)  # the sandbox has told this run its control group
                problem = self._stop_strays()
                if problem is not None:
                    self.why.update({job["key"]: problem for job, _ in self.jobs})
                    return
                for job, case in self.group.first:
                    self._case(sock, job, case, deadline)
                if self.group.later:
                    send(sock, {"op": "give_back", "sources": self.sources})
                    answer = receive(sock, deadline)
                    if answer.get("op") != "given" or answer.get("problem"):
                        problem = str(answer.get("problem") or "the run did not take the code back")[:300]
                        self.why.update({job["key"]: problem for job, _ in self.group.later})
                        return
                    for job, case in self.group.later:
                        self._case(sock, job, case, deadline)
                send(sock, {"op": "end"})
        except (OSError, EOFError, ValueError, TimeoutError):
            pass  # the run ended or broke the protocol: the checks not yet read did not finish

    def _case(self, sock: socket.socket, job: dict, case: Case, deadline: float) -> None:
        """Send one case with the write end of its own pipe; read its result from that pipe."""
        buffer = io.BytesIO()
        np.savez(buffer, **case.arrays)  # type: ignore[arg-type]  # numpy types a ** of arrays as allow_pickle too
        read_end, write_end = os.pipe()
        watch = CaseWatch(self.cpu_seconds, self.checker, self.uid, self.cgroup)  # before the case exists
        try:
            send(sock, {"op": "case", "check": job}, buffer.getvalue(), fds=[write_end])
        finally:
            os.close(write_end)
        budget = 4 * sum(a.nbytes for a in case.arrays.values()) + self.RESULT_MARGIN_BYTES
        case_deadline = min(deadline, time.monotonic() + 3 * self.cpu_seconds + 10)
        data = read_pipe(read_end, min(budget, MAX_RESULT_BYTES), case_deadline, watch.over)
        if watch.exceeded or (not data and watch.spent() >= self.cpu_seconds):
            self.why[job["key"]] = (  # said before the run may end (it does when it ran the case itself)
                f"it used more than the {self.cpu_seconds} s of CPU time a case may use "
                "(is it computed numerically, or in a slow way?)"
            )
        if receive(sock, deadline).get("op") != "done":
            raise ValueError("the run broke the protocol")
        if job["key"] in self.why:
            pass
        elif data is None:
            self.why[job["key"]] = f"its result was larger than the {budget} bytes a result of this case may have"
        elif data:
            decoded = unpack_result(data, self.MAX_NAMES)
            if decoded is None:
                self.why[job["key"]] = "its result was not well formed"
            else:
                self.results[job["key"]] = decoded
        problem = self._stop_strays()
        if problem is not None:
            raise ValueError(problem)

    def _stop_strays(self) -> str | None:
        """Kill every process of this run but the checking process itself (what a cell or a case
        left running), and refuse to go on if that process runs more than one thread.

        The checking process is the oldest process of the run's uid that holds the run's end of
        the channel; the run's other processes are those of its uid in its PID namespace (or,
        without one, those holding the channel). Only when grading as root, where each run has a
        uid of its own."""
        if os.getuid() != 0 or self.uid == 0 or self.socket_inode is None:
            return None
        channel = f"socket:[{self.socket_inode}]"
        procs = psutil.process_iter(["uids", "create_time", "status"])
        # A zombie (killed, its parent has not reaped it) runs nothing and holds nothing.
        mine = [
            p
            for p in procs
            if p.info["uids"] and p.info["uids"].real == self.uid and p.info["status"] != psutil.STATUS_ZOMBIE
        ]
        holders = [p for p in mine if holds(p.pid, channel)]
        if not holders:  # not run as that uid (no sandbox, and the interpreter is only root's)
            return None
        checker = min(holders, key=lambda p: (p.info["create_time"], p.pid))
        self.checker = checker
        namespace = pid_namespace(checker.pid)
        if namespace is not None and namespace != pid_namespace(os.getpid()):
            strays = [p for p in mine if p.pid != checker.pid and pid_namespace(p.pid) == namespace]
        else:
            strays = [p for p in holders if p.pid != checker.pid]
        kill_processes(strays, timeout=5)
        try:
            if checker.num_threads() > 1:
                return "a cell left a thread running in the checking run, so its checks were not run"
        except psutil.Error:
            return "the checking run ended early"
        return None

    def _sources(self) -> dict[str, dict[str, str]]:
        """For each module of a given-back function: its source, in which every function this
        run withholds except the given-back ones is still withheld."""
        giving = set(self.given_back)
        modules = {r.path: r.module for r in self.given_back}
        stubs: dict[Path, dict[str, str]] = {path: {} for path in modules}
        for r in self.group.withheld:
            if r.path in stubs and r not in giving:
                stubs[r.path][r.qualname] = r.display
        return {
            module: {"file": str(path), "source": withhold.redact_source(path.read_text(), stubs[path], str(path))}
            for path, module in modules.items()
        }

    def result(self, key: str) -> tuple[dict[str, bytes], list[str]] | None:
        """The decoded result of the check ``key``, as its own pipe brought it (None: none came)."""
        return self.results.get(key)

    def limits(self) -> sandbox.Limits:
        """The checking process runs the cells and starts the cases; each case is a child that
        sets a CPU limit of its own (a new process counts from 0), and the grader holds every
        case to that budget from outside whatever the child does (:class:`CaseWatch`). So the
        per-process limit bounds what a cell that switches off its timer can spend. All processes together
        (cells, cases, anything they fork) get the cells' budget, the margin and each case's
        budget, never more than the run's fixed cap ``run_seconds``, which is also its wall
        clock, whatever the number of cells or checks."""
        total = self.CELLS_CPU + self.MARGIN_CPU + self.cpu_seconds * len(self.jobs)
        return sandbox.Limits(
            cpu_seconds=max(self.CELLS_CPU + self.MARGIN_CPU, self.cpu_seconds + 5),
            total_cpu_seconds=min(total, self.run_seconds),
            wall_seconds=self.run_seconds,
        )

    def script(self) -> str:
        return "checker.py"

    def library(self) -> dict:
        copy = self.library_dir / "course"
        return {"binds": [(copy, withhold.package_dir)], "env": {"PYTHONPATH": str(self.library_dir)}}

    def reason(self, result: sandbox.Result, key: str = "") -> str:
        if key in self.why:
            return self.why[key]
        record = read_json(self.workdir / "status.json") or {}
        status = record.get("status")
        if result.out_of_memory:
            return (
                "the checking run ran out of memory: does the code build an array far larger than its inputs "
                "(np.eye of the number of classes, say)?"
            )
        if result.timed_out or result.signal in ("SIGKILL", "SIGXCPU"):
            return "the checking run was stopped at its time or memory limit"
        if isinstance(status, str) and status != "ok":
            return status[:300]
        return "it ran past its CPU time limit or crashed"

    def notes(self) -> list[str]:
        """What went wrong in the student's cells during this run (untrusted text, cut short)."""
        notes = (read_json(self.workdir / "status.json") or {}).get("notes")
        if not isinstance(notes, list):
            return []
        return [f"in the checking run, {str(n)[:300]}" for n in notes[:5]]
