"""The trusted half of grading: every verdict is decided here, never in the student's kernel.

:func:`grade` takes an nbgrader notebook whose graded test cells hold the instructor's source
(after nbgrader's ``OverwriteCells``), and

1. reads each graded test cell's ``check()`` calls (:mod:`autograder.verdicts.cells`) and draws fresh
   cases for them from a secret seed (visible checks too: outputs hard-coded for the seeds a
   student saw earn nothing);
2. runs the student's notebook, with the graded test cells blanked, twice (side by side or one
   after the other), in sandboxes that share nothing: the *notebook run*
   (:mod:`autograder.inside.worker`) executes it in a Jupyter kernel with the full library, for the
   outputs feedback shows; the *checking run* (:mod:`autograder.inside.checker`) runs again the cells
   its checks need (:mod:`autograder.verdicts.slicing`) with a copy of the library from which every
   reference implementation graded in the assignment is withheld (:mod:`autograder.verdicts.withhold`),
   then each case, as plain arrays, under a CPU limit of its own. A submission that calls the
   library's answer finds nothing there to call, however it reaches for it. (Checks whose cases
   are built from reference code other checks grade, such as the layers of a Sequential
   network, come last: the grader reads the other results first, then gives that code back.)
3. reads back only JSON and ``.npy`` bytes (never pickle), with size limits, and judges them
   in this process against numerical gradients of the reference implementation
   (:func:`course.exercises.base.judge_case`: type, dtype, shape, finiteness, values);
4. writes each graded cell's outcome as its outputs: a stream when every check passed, an
   error output with a student-safe message (which gradient, how far off, never the expected
   values) when one failed, so nbgrader's ``SaveAutoGrades`` scores the cell from this
   verdict alone; and removes the hidden-test regions from the cells' source, so feedback
   never shows hidden tests (nbgrader issue 917).
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import select
import shutil
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import psutil

from autograder import sandbox
from autograder.host.flags import MAX_TEXT, Flag, texts
from autograder.host.pool import kill_processes
from autograder.integration.metadata import RECORD_KEY, RECORD_VERSION, is_solution, is_test_cell
from autograder.integration.metadata import grade_id as grade_id_of
from autograder.sandbox import cgroup
from autograder.verdicts import withhold
from autograder.verdicts.cells import MARKERS, parse_test_cell
from autograder.verdicts.slicing import needed_cells
from course.exercises import get
from course.exercises.base import Case, Exercise, Verdict, judge_case, unpack_result

__all__ = [
    "CHECK_UID_OFFSET",
    "RECORD_KEY",
    "RECORD_VERSION",
    "CellVerdict",
    "ExerciseOutcome",
    "GradingRun",
    "flag_records",
    "grade",
    "run_flags",
    "strip_hidden_tests",
]

#: Where TrustedExecute stores :meth:`GradingRun.record` in the autograded notebook's metadata.
#: The scripts that run inside the sandbox, copied into each run's work folder.
INSIDE = Path(__file__).resolve().parents[1] / "inside"

#: The version of :meth:`GradingRun.record` (2: typed flags).

#: The checking runs of a notebook run as ``uid + CHECK_UID_OFFSET * k`` (k = 1, 2, ...).
CHECK_UID_OFFSET = 100_000

#: The largest file read back from the sandbox.
MAX_RESULT_BYTES = 64 * 2**20
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}
#: How often the grader looks at a running case's processes and CPU time.
WATCH_SECONDS = 0.05


@dataclass
class ExerciseOutcome:
    """How one exercise checked in a graded cell went, over all its cases: what the class
    report counts (:mod:`autograder.host.mistakes`). Names only, never values: safe to store."""

    exercise: str
    passed: bool
    #: The stable names of the mistakes its failing checks recognised (course.gradcheck.Mistake).
    mistakes: list[str] = field(default_factory=list)


@dataclass
class CellVerdict:
    """The trusted outcome of one graded test cell."""

    grade_id: str
    passed: bool
    messages: list[str] = field(default_factory=list)
    outcomes: list[ExerciseOutcome] = field(default_factory=list)


@dataclass
class GradingRun:
    verdicts: dict[str, CellVerdict]
    status: str
    sandboxed: bool
    notes: list[str] = field(default_factory=list)
    #: What the instructor should see (grades.csv ``flags``, the report): a check answered by
    #: numerical differentiation, or by calling the library's own answer. Student-safe texts.
    flag_records: list[Flag] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        """The sentences of :attr:`flag_records`."""
        return texts(self.flag_records)

    def all_flags(self) -> list[Flag]:
        """Every flag of the run: no sandbox, how the notebook run ended (its first line: the
        status can quote the student's code), then :attr:`flag_records`."""
        flags = [] if self.sandboxed else [Flag("grader", "sandbox unavailable")]
        first = self.status.splitlines()[0] if self.status.splitlines() else ""
        if self.status != "ok" and first:
            flags.append(Flag("other", f"notebook: {first}"[:MAX_TEXT]))
        return [*flags, *(f for f in self.flag_records if f not in flags)]

    def record(self) -> dict:
        """The run as plain JSON data, for the host (stored by TrustedExecute in the autograded
        notebook's metadata under :data:`RECORD_KEY`): status, every flag
        (:func:`autograder.host.flags.read_flags` reads them) and, per graded cell, each exercise's
        outcome and recognised mistakes. Version 2: flags are ``{"kind", "subject", "text"}``
        (version 1 had the verdicts' flags as sentences)."""
        return {
            "version": RECORD_VERSION,
            "status": self.status,
            "sandboxed": self.sandboxed,
            "flags": [f.as_dict() for f in self.all_flags()],
            "cells": {
                grade_id: {"passed": v.passed, "outcomes": [asdict(o) for o in v.outcomes]}
                for grade_id, v in self.verdicts.items()
            },
        }


#: Problems of a check that mean its answer was the library's (see course.exercises.base.run_case).
DELEGATION = ("the library's own answer", "called the reference implementation")


def flag_records(verdicts: list[Verdict]) -> list[Flag]:
    """The flags of a notebook's verdicts, once each: each verdict's own (numerical
    differentiation), and delegation to the library, by exercise."""
    flags: list[Flag] = []
    for verdict in verdicts:
        flags += [Flag("numerical", text, verdict.exercise) for text in verdict.flags]
        if any(marker in p for p in verdict.problems for marker in DELEGATION):
            flags.append(Flag("delegation", f"called the library's answer: {verdict.exercise}", verdict.exercise))
    return list(dict.fromkeys(flags))


def run_flags(verdicts: list[Verdict]) -> list[str]:
    """The sentences of :func:`flag_records`."""
    return texts(flag_records(verdicts))


def strip_hidden_tests(source: str) -> str:
    """Remove every region between the hidden-test markers, markers included."""
    kept, hidden = [], False
    for line in source.splitlines():
        if line.strip() == MARKERS[0]:
            hidden = True
        elif line.strip() == MARKERS[1]:
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept).rstrip()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot send {type(value).__name__} to the sandbox")


def _read_bytes(path: Path, limit: int = MAX_RESULT_BYTES) -> bytes | None:
    """The bytes of a regular file the sandbox wrote, if it holds at most ``limit`` of them.

    Not following symbolic links and never blocking: the student's code could have put a link
    to another file, a FIFO or a device in its place.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_json(path: Path) -> dict | None:
    raw = _read_bytes(path)
    try:
        data = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _send(sock: socket.socket, header: dict, payload: bytes = b"", fds: list[int] | None = None) -> None:
    """One message to a checking run: 8 bytes of sizes, a JSON header, a payload (and ``fds``)."""
    data = json.dumps(header, default=_json_default).encode()
    head = len(data).to_bytes(4, "big") + len(payload).to_bytes(4, "big")
    if fds:
        socket.send_fds(sock, [head], fds)
        sock.sendall(data + payload)
    else:
        sock.sendall(head + data + payload)


def _receive(sock: socket.socket, deadline: float, limit: int = 1 << 16) -> dict:
    """One message from a checking run (a JSON header of at most ``limit`` bytes, no payload)."""

    def exactly(n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(n - got)
            if not chunk:
                raise EOFError("the checking run closed its channel")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    head = exactly(8)
    size, payload = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")
    if size > limit or payload:
        raise ValueError("a message from the checking run was not of the expected form")
    message = json.loads(exactly(size))
    if not isinstance(message, dict):
        raise ValueError("a message from the checking run was not of the expected form")
    return message


def _holds(pid: int, link: str) -> bool:
    """Whether process ``pid`` has a file descriptor open on ``link`` (``socket:[inode]``)."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == link for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _read_pipe(fd: int, limit: int, deadline: float, over: Callable[[], bool] | None = None) -> bytes | None:
    """What comes through the read end ``fd`` until every writer has closed it (b"" if nothing),
    None past ``limit`` bytes; gives up at ``deadline``, or as soon as ``over()`` (asked every
    :data:`WATCH_SECONDS` while it waits) says so. Closes ``fd``."""
    chunks: list[bytes] = []
    got = 0
    try:
        while True:
            left = max(0.0, deadline - time.monotonic())
            ready = select.select([fd], [], [], left if over is None else min(left, WATCH_SECONDS))[0]
            if not ready and over is not None and left > WATCH_SECONDS and not over():
                continue
            if not ready:
                return b""  # the case did not finish in time: nothing it wrote counts
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            got += len(chunk)
            if got > limit:
                return None
            chunks.append(chunk)
    finally:
        os.close(fd)


def _safe_outputs(outputs) -> list:
    """Only well-formed output records of the known types are copied back into the notebook,
    with nothing that could run in a browser (:func:`autograder.host.sanitize.clean_outputs`)."""
    from autograder.host.sanitize import clean_outputs

    safe = []
    for out in outputs if isinstance(outputs, list) else []:
        if isinstance(out, dict) and out.get("output_type") in OUTPUT_TYPES:
            try:
                node = nbformat.from_dict(out)
                nbformat.validator.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[node])]))
                safe.append(node)
            except Exception:  # noqa: BLE001 - a malformed output is dropped, not trusted
                continue
    return clean_outputs(safe)


def grade(
    nb: nbformat.NotebookNode,
    *,
    workdir: str | Path,
    seed: int | None = None,
    cell_timeout: int = 60,
    cpu_seconds: int = 20,
    uid: int = sandbox.NOBODY,
    require_sandbox: bool = False,
    hidden_paths: tuple[str | Path, ...] = (),
    side_by_side: bool = True,
    notebook_run_seconds: float | None = None,
    checking_run_seconds: float | None = None,
) -> GradingRun:
    """Grade ``nb`` in place (see the module docstring); returns the verdict of every graded cell.

    ``side_by_side`` runs the notebook run and the checking runs at the same time, which is
    quicker when cores are idle; with False they run one after another, the better choice when
    other graders keep every core busy.

    ``notebook_run_seconds`` and ``checking_run_seconds`` cap each run's wall clock and its
    processes' CPU time together, however many cells the notebook has (defaults:
    ``_NotebookRun.RUN_SECONDS``, ``_CheckRun.RUN_SECONDS``).

    The notebook run uses ``uid``; the checking runs use ``uid + CHECK_UID_OFFSET * k``, so that
    the runs of one notebook, which go on at the same time, never share a process limit.
    """
    workdir = Path(workdir)
    rng = np.random.default_rng(secrets.randbits(64) if seed is None else seed)
    verdicts: dict[str, CellVerdict] = {}
    plan: list[tuple[int, str, list[tuple[str, Exercise, Case, str]]]] = []  # cell index, grade id, checks
    jobs: list[tuple[dict, Case]] = []
    hidden_of: dict[str, bool] = {}  # check key -> whether it is a hidden check (no picture)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not is_test_cell(cell):
            continue
        grade_id = grade_id_of(cell) or f"cell-{index}"
        try:
            calls = parse_test_cell(cell.source)
            checks, cell_jobs = [], []
            for k, call in enumerate(calls):
                exercise = get(call.exercise)
                for i, case in enumerate(exercise.cases(rng, call.hidden)):
                    key = f"c{index}_{k}_{i}"
                    cell_jobs.append(
                        (
                            {
                                "key": key,
                                "exercise": call.exercise,
                                "symbol": call.symbol,
                                "label": case.label,
                                "config": case.config,
                            },
                            case,
                        )
                    )
                    checks.append((key, exercise, case, call.symbol))
                    hidden_of[key] = call.hidden
        except (SyntaxError, ValueError, KeyError) as exc:
            verdicts[grade_id] = CellVerdict(grade_id, False, [f"this test cell cannot be graded: {exc}"])
            continue
        except Exception as exc:  # noqa: BLE001 - a fault of the grader's, reported loudly, never silent
            verdicts[grade_id] = CellVerdict(
                grade_id,
                False,
                [
                    f"grader error while preparing this cell's checks ({type(exc).__name__}: {exc}); "
                    "please tell your instructor"
                ],
            )
            continue
        jobs += cell_jobs
        plan.append((index, grade_id, checks))

    student = nbformat.from_dict(json.loads(json.dumps(nb)))  # a deep copy to send out
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if is_test_cell(cell):
                cell.source = ""  # hidden tests never reach the student's code
    notebook_run = _NotebookRun(workdir / "run", student, cell_timeout, uid, notebook_run_seconds)
    check_runs: list[_CheckRun] = []
    for k, group in enumerate(_groups(jobs), start=1):
        check_uid = uid + CHECK_UID_OFFSET * k
        check_runs.append(
            _CheckRun(workdir / f"check{k}", student, group, cell_timeout, cpu_seconds, check_uid, checking_run_seconds)
        )
    runs = [notebook_run, *check_runs]
    for run in runs:
        run.prepare()
    # The runs share nothing: they may go on side by side (on cores no other grader uses).
    with ThreadPoolExecutor(len(runs) if side_by_side else 1) as pool:
        results = list(pool.map(lambda r: r.start(require_sandbox, hidden_paths), runs))

    status = notebook_run.status(results[0])
    _copy_outputs(nb, notebook_run.workdir / "executed.ipynb")
    where = {
        job["key"]: (run, result) for run, result in zip(check_runs, results[1:], strict=True) for job, _ in run.jobs
    }
    every: list[Verdict] = []
    for index, grade_id, checks in plan:
        cell_verdicts: list[Verdict] = []
        for key, exercise, case, _symbol in checks:
            run, result = where[key]
            decoded = run.result(key)
            if decoded is None:
                verdict = exercise.verdict(case)
                verdict.problems.append(f"this check did not finish: {run.reason(result, key)}")
                cell_verdicts.append(verdict)
            else:
                encoded, problems = decoded
                if any(p.startswith("no `") for p in problems):
                    problems += run.notes()
                cell_verdicts.append(judge_case(exercise, case, encoded, problems))
        verdicts[grade_id] = _cell_verdict(grade_id, cell_verdicts)
        visible = [v for (key, *_), v in zip(checks, cell_verdicts, strict=True) if not hidden_of[key]]
        _write_cell(nb.cells[index], verdicts[grade_id], cell_verdicts, visible)
        every += cell_verdicts
    flags = flag_records(every)
    planned = {index for index, _, _ in plan}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and is_test_cell(cell):
            cell.source = strip_hidden_tests(cell.source)
            grade_id = grade_id_of(cell) or f"cell-{index}"
            if index not in planned and grade_id in verdicts:  # a cell that could not be parsed
                _write_cell(cell, verdicts[grade_id], [])
    notes = [n for r in results for n in r.notes]
    return GradingRun(verdicts, status, all(r.sandboxed for r in results), list(dict.fromkeys(notes)), flags)


@dataclass
class _Group:
    """The checks of one checking run: ``first`` with ``withheld`` withheld; then, once the
    grader has read their results, ``later`` with ``given_back`` restored (the reference code
    their cases are built from)."""

    withheld: list[withhold.Ref]
    first: list[tuple[dict, Case]]
    given_back: list[withhold.Ref] = field(default_factory=list)
    later: list[tuple[dict, Case]] = field(default_factory=list)


def _groups(jobs: list[tuple[dict, Case]]) -> list[_Group]:
    """Split the checks into as few checking runs as the exercises allow.

    Every run withholds all the library outside the allow-list and all that the assignment's
    exercises withhold (:func:`autograder.verdicts.withhold.checking_withheld`). An exercise whose cases
    are built from reference code that is withheld (the layers of a Sequential network, say:
    ``Exercise.needs``, with the functions nested in them) has its checks run after the others:
    the grader reads the results of the first checks, then gives the needed functions back to
    the run, so that nothing the first checks produced can have seen them. One such group of
    checks fits in a run this way; each further group (needing other functions) gets a run of
    its own that withholds all but what it needs. A check never runs beside what its own
    exercise withholds.
    """
    exercises = {job["exercise"]: get(job["exercise"]) for job, _ in jobs}
    withheld = withhold.checking_withheld(exercises.values())
    held = set(withheld)
    needed = {n: [r for f in e.needs for r in withhold.with_nested(withhold.ref(*f))] for n, e in exercises.items()}
    needs = {name: frozenset(r for r in refs if r in held) for name, refs in needed.items()}
    plain = [(job, case) for job, case in jobs if not needs[job["exercise"]]]
    by_key: dict[frozenset, list[tuple[dict, Case]]] = {}
    for job, case in jobs:
        if needs[job["exercise"]]:
            by_key.setdefault(needs[job["exercise"]], []).append((job, case))

    def without(key: frozenset) -> list[withhold.Ref]:
        return [r for r in withheld if r not in key]

    keys = list(by_key)
    if not plain:
        return [_Group(without(key), by_key[key]) for key in keys]
    first = keys[0] if keys else frozenset()
    groups = [_Group(withheld, plain, sorted(first), by_key.get(first, []))]
    return groups + [_Group(without(key), by_key[key]) for key in keys[1:]]


class _CaseWatch:
    """Holds one case to its CPU budget from outside the sandbox, whatever the notebook's code
    did to the checking process (patched ``resource.setrlimit``, ``os.fork``, SIGXCPU ignored):
    every process of the run but the checking process itself (the case's child and whatever it
    forks) gets the case's CPU limit set on it by the grader (``prlimit``, which the sandbox's
    uid cannot raise again; it counts from the process's start, so setting it a moment late
    loses nothing; where the grader lacks ``CAP_SYS_RESOURCE``, as in some containers, each
    process's CPU time is read instead, every :data:`WATCH_SECONDS`, and the case stopped past
    the budget); and the CPU time of the whole run while the case goes on, the checking
    process included, may not pass the case's budget (the run's control group counts it, exited
    processes too; without one, the live processes and what the checking process reaped).
    Past it, the case's processes are killed and its result does not count.

    Only when grading as root with a uid per run (:meth:`_CheckRun._stop_strays` found the
    checking process); otherwise the child's own rlimit and the run's totals hold alone."""

    #: CPU seconds beyond the budget for starting the case (fork, loading its arrays).
    SLACK = 1.0

    def __init__(
        self, cpu_seconds: float, checker: psutil.Process | None, uid: int, group: cgroup.Cgroup | None
    ) -> None:
        self.cpu, self.checker, self.uid, self.group = float(cpu_seconds), checker, uid, group
        self.limited: set[tuple[int, float]] = set()
        self.exceeded = False
        self.start = self._used([]) if checker is not None else 0.0
        self.own_start = self._own() if checker is not None else 0.0

    def _own(self) -> float:
        """The checking process's own CPU seconds (not its children's)."""
        if self.checker is None:  # never asked then: every caller checks first
            return 0.0
        try:
            times = self.checker.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system

    def _processes(self) -> list[psutil.Process]:
        """The run's processes but the checking process: those of its control group, or of its
        uid in its PID namespace."""
        assert self.checker is not None
        if self.group is not None:
            pids = self.group.pids()
        else:
            namespace = _pid_namespace(self.checker.pid)
            pids = [pid for pid in psutil.pids() if _pid_namespace(pid) == namespace]
        found = []
        for pid in pids:
            if pid == self.checker.pid:
                continue
            try:
                proc = psutil.Process(pid)
                if proc.uids().real == self.uid and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def _used(self, procs: list[psutil.Process]) -> float:
        if self.group is not None:
            return self.group.cpu_seconds()
        total = 0.0
        for proc in [self.checker, *procs] if self.checker is not None else procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                continue
        return total

    def spent(self) -> float:
        """The CPU seconds the run has used since the case began (as :meth:`over` counts them)."""
        if self.checker is None:
            return 0.0
        try:
            return self._used(self._processes()) - self.start
        except psutil.Error:
            return 0.0

    def over(self) -> bool:
        """Limit the case's processes; True (and they are killed) once the case is over budget."""
        if self.checker is None or self.exceeded:
            return self.exceeded
        try:
            procs = self._processes()
        except psutil.Error:
            return False
        limit = max(1, int(self.cpu))
        for proc in procs:
            try:
                times = proc.cpu_times()
                if times.user + times.system > self.cpu + self.SLACK:
                    self.exceeded = True  # measured: where the grader may not set limits (below)
                key = (proc.pid, proc.create_time())
                if key not in self.limited:
                    self.limited.add(key)
                    proc.rlimit(psutil.RLIMIT_CPU, (limit, limit + 1))
            except psutil.AccessDenied:
                continue  # no CAP_SYS_RESOURCE (some containers): the measure above holds alone
            except psutil.Error:
                continue
        if self.exceeded or self._used(procs) - self.start > self.cpu + self.SLACK:
            self.exceeded = True
            # A checking process that spent the time itself ran the case in its own process (the
            # notebook patched it): nothing it does from here on counts, so the run ends.
            spent_itself = self._own() - self.own_start > self.SLACK
            kill_processes([*procs, self.checker] if spent_itself else procs, timeout=5)
        return self.exceeded


def _private_dir(path: Path, uid: int) -> Path:
    """A fresh folder only ``uid`` can enter (when grading as root), so that one run of a
    notebook cannot read another's work."""
    path.mkdir(mode=0o700)
    if os.getuid() == 0:
        os.chown(path, uid, uid)
    return path


class _NotebookRun:
    """The notebook run (:mod:`autograder.inside.worker`): outputs for feedback, with the full library."""

    #: Wall-clock seconds the whole run may take, and CPU seconds all its processes together.
    RUN_SECONDS = 600.0

    def __init__(
        self,
        workdir: Path,
        student: nbformat.NotebookNode,
        cell_timeout: int,
        uid: int,
        run_seconds: float | None = None,
    ) -> None:
        self.workdir, self.student, self.cell_timeout, self.uid = workdir, student, cell_timeout, uid
        self.run_seconds = self.RUN_SECONDS if run_seconds is None else run_seconds

    def prepare(self) -> None:
        _private_dir(self.workdir, self.uid)
        nbformat.write(self.student, str(self.workdir / "notebook.ipynb"))
        (self.workdir / "job.json").write_text(json.dumps({"cell_timeout": self.cell_timeout}))
        shutil.copy(INSIDE / "worker.py", self.workdir / "worker.py")

    def limits(self) -> sandbox.Limits:
        """A fixed cap, whatever the number of cells: each cell has nbclient's timeout
        (:mod:`autograder.inside.worker`), and the run as a whole ``run_seconds`` of wall clock and of
        CPU time (all its processes together where a control group counts them)."""
        return sandbox.Limits(
            cpu_seconds=self.run_seconds, total_cpu_seconds=self.run_seconds, wall_seconds=self.run_seconds
        )

    def start(self, require_sandbox: bool, hidden_paths: tuple[str | Path, ...]) -> sandbox.Result:
        return sandbox.run(
            [sys.executable, self.script()],
            workdir=self.workdir,
            limits=self.limits(),
            uid=self.uid,
            require_sandbox=require_sandbox,
            hidden=hidden_paths,
            **self.library(),
        )

    def script(self) -> str:
        return "worker.py"

    def library(self) -> dict:
        return {}

    def status(self, result: sandbox.Result) -> str:
        status = (_read_json(self.workdir / "status.json") or {}).get("status")
        if isinstance(status, str):
            return status[:500]
        return (
            "the sandbox was stopped (time or memory limit)"
            if result.timed_out or result.signal
            else ("the notebook could not be run")
        )


class _CheckRun(_NotebookRun):
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
        self, workdir: Path, student, group: _Group, cell_timeout, cpu_seconds, uid, run_seconds: float | None = None
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
        _private_dir(self.workdir, self.uid)
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
        (self.workdir / "job.json").write_text(json.dumps(job, default=_json_default))
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
            return sandbox.run(
                [sys.executable, self.script()],
                workdir=self.workdir,
                limits=self.limits(),
                uid=self.uid,
                require_sandbox=require_sandbox,
                hidden=hidden_paths,
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
                if _receive(sock, deadline).get("op") != "cells":
                    return
                self.started.wait(10)  # the sandbox has told this run its control group
                problem = self._stop_strays()
                if problem is not None:
                    self.why.update({job["key"]: problem for job, _ in self.jobs})
                    return
                for job, case in self.group.first:
                    self._case(sock, job, case, deadline)
                if self.group.later:
                    _send(sock, {"op": "give_back", "sources": self.sources})
                    answer = _receive(sock, deadline)
                    if answer.get("op") != "given" or answer.get("problem"):
                        problem = str(answer.get("problem") or "the run did not take the code back")[:300]
                        self.why.update({job["key"]: problem for job, _ in self.group.later})
                        return
                    for job, case in self.group.later:
                        self._case(sock, job, case, deadline)
                _send(sock, {"op": "end"})
        except (OSError, EOFError, ValueError, TimeoutError):
            pass  # the run ended or broke the protocol: the checks not yet read did not finish

    def _case(self, sock: socket.socket, job: dict, case: Case, deadline: float) -> None:
        """Send one case with the write end of its own pipe; read its result from that pipe."""
        buffer = io.BytesIO()
        np.savez(buffer, **case.arrays)  # type: ignore[arg-type]  # numpy types a ** of arrays as allow_pickle too
        read_end, write_end = os.pipe()
        watch = _CaseWatch(self.cpu_seconds, self.checker, self.uid, self.cgroup)  # before the case exists
        try:
            _send(sock, {"op": "case", "check": job}, buffer.getvalue(), fds=[write_end])
        finally:
            os.close(write_end)
        budget = 4 * sum(a.nbytes for a in case.arrays.values()) + self.RESULT_MARGIN_BYTES
        case_deadline = min(deadline, time.monotonic() + 3 * self.cpu_seconds + 10)
        data = _read_pipe(read_end, min(budget, MAX_RESULT_BYTES), case_deadline, watch.over)
        if watch.exceeded or (not data and watch.spent() >= self.cpu_seconds):
            self.why[job["key"]] = (  # said before the run may end (it does when it ran the case itself)
                f"it used more than the {self.cpu_seconds} s of CPU time a case may use "
                "(is it computed numerically, or in a slow way?)"
            )
        if _receive(sock, deadline).get("op") != "done":
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
        holders = [p for p in mine if _holds(p.pid, channel)]
        if not holders:  # not run as that uid (no sandbox, and the interpreter is only root's)
            return None
        checker = min(holders, key=lambda p: (p.info["create_time"], p.pid))
        self.checker = checker
        namespace = _pid_namespace(checker.pid)
        if namespace is not None and namespace != _pid_namespace(os.getpid()):
            strays = [p for p in mine if p.pid != checker.pid and _pid_namespace(p.pid) == namespace]
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
        case to that budget from outside whatever the child does (:class:`_CaseWatch`). So the
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
        record = _read_json(self.workdir / "status.json") or {}
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
        notes = (_read_json(self.workdir / "status.json") or {}).get("notes")
        if not isinstance(notes, list):
            return []
        return [f"in the checking run, {str(n)[:300]}" for n in notes[:5]]


def _copy_outputs(nb: nbformat.NotebookNode, executed_path: Path) -> None:
    """Copy the outputs of the student's own cells from the executed copy, if it is sane."""
    try:
        if executed_path.stat().st_size > MAX_RESULT_BYTES:
            return
        executed = nbformat.read(str(executed_path), as_version=4)
    except Exception:  # noqa: BLE001 - no outputs is the safe answer
        return
    if len(executed.cells) != len(nb.cells):
        return
    for cell, ran in zip(nb.cells, executed.cells, strict=True):
        if cell.cell_type == "code" and not is_test_cell(cell):
            cell.outputs = _safe_outputs(ran.get("outputs"))


def _cell_verdict(grade_id: str, verdicts: list[Verdict]) -> CellVerdict:
    failed = [v for v in verdicts if not v.passed]
    outcomes: dict[str, ExerciseOutcome] = {}
    for v in verdicts:
        outcome = outcomes.setdefault(v.exercise, ExerciseOutcome(v.exercise, True))
        outcome.passed = outcome.passed and v.passed
        outcome.mistakes += [m for m in v.mistakes if m not in outcome.mistakes]
    return CellVerdict(grade_id, not failed, [v.message(reveal=False) for v in failed], list(outcomes.values()))


def _write_cell(cell, verdict: CellVerdict, verdicts: list[Verdict], visible: list[Verdict] | None = None) -> None:
    """Write a graded test cell's outputs: one line per exercise when it passed; otherwise the
    failure messages (never an expected value: :meth:`Verdict.message` with ``reveal=False``)
    and, for the first wrong gradient of a *visible* check, its gradient-check picture (the
    picture shows expected values, so hidden checks never get one)."""
    cell.execution_count = None
    names = list(dict.fromkeys(v.exercise for v in verdicts))
    if names:  # what the feedback calls the cell (autograder.integration.preprocessors.FeedbackCells)
        hidden = len(visible or []) < len(verdicts)
        cell.metadata["backprop_title"] = ", ".join(names) + (" (hidden checks)" if hidden else "")
    if verdict.passed:
        titles = sorted({v.exercise for v in verdicts})
        text = "".join(f"✓ {t}: all checks passed\n" for t in titles) or "✓ passed\n"
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        return
    cell.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="GradCheckError",
            evalue="\n".join(verdict.messages),
            traceback=[
                "GradCheckError: some checks failed",
                *verdict.messages,
            ],
        )
    ]
    picture = _picture([v for v in visible or [] if not v.passed])
    if picture is not None:
        cell.outputs.append(picture)


def _picture(failed: list[Verdict]) -> nbformat.NotebookNode | None:
    """The gradient-check picture of the first wrong gradient among ``failed``, as a PNG output."""
    wrong = [c for v in failed for c in v.checks if not c.passed and c.n_checked > 0 and c.analytic is not None]
    if not wrong:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from course import plot

        fig = plot.gradient_check(wrong[0])
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
    except Exception:  # noqa: BLE001 - a picture is a help, never a reason to fail grading
        return None
    data = {
        "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
        "text/plain": f"<gradient check of {wrong[0].name}: analytic against numerical, entry by entry>",
    }
    return nbformat.v4.new_output("display_data", data=data)
