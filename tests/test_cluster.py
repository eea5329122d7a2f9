"""Grading on a Dask cluster (``--scheduler``), with a real cluster on localhost.

A scheduler and three workers are started as separate processes with Dask's own command-line
tools (``dask scheduler``, ``dask worker``): two that can grade and one whose PATH has no
bubblewrap, which must be refused before it gets a student. A small class of 03_layers is
graded there and must give the same ``grades.csv`` as on this machine; then again with a
worker killed in the middle of grading a student, which must lose and duplicate nothing.
A submission that kills every worker it runs on is given up on after a bounded number of
deaths and flagged; when the workers do not come back at all, the run ends instead of stalling.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import psutil
import pytest

distributed = pytest.importorskip("distributed", reason="the cluster extra (Dask) is not installed")

from autograder import sandbox  # noqa: E402
from autograder.host import cluster  # noqa: E402
from autograder.host.cluster import OUT_VARIABLE, DaskEngine, Fingerprint, WorkerResult  # noqa: E402
from autograder.host.pipeline import Settings, UsageError, grade  # noqa: E402
from autograder.host.pool import Failure  # noqa: E402
from autograder.host.submission import StudentResult  # noqa: E402
from autograder.host.task import Task  # noqa: E402
from autograder.sample_class import make_sample_class as sample  # noqa: E402
from autograder.sandbox import bubblewrap  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"
SAMPLE = sample.HERE / sample.ASSIGNMENT
STUDENTS = ("perfect", "blank", "buggy")

needs_sandbox = pytest.mark.skipif(
    not sandbox.bubblewrap_available(),
    reason="grading needs the bubblewrap sandbox (Debian package 'bubblewrap'; CI installs it)",
)


def _by_student(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def _gradebook_counts(db: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db) as con:
        return {
            table: con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("student", "submitted_assignment", "submitted_notebook", "grade")
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A ``dask scheduler`` and ``dask worker`` processes on localhost, each in a session of its
    own (so that a worker can be killed with everything it started)."""

    def __init__(self, logs: Path, scheduler_env: dict[str, str] | None = None) -> None:
        self.logs = logs
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self._start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard",
                    env=scheduler_env)  # fmt: skip

    def _start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process's output
        self.procs[name] = subprocess.Popen(
            [str(DASK), *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.logs,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        log.close()

    def worker(self, name: str, *options: str, env: dict[str, str] | None = None) -> None:
        self._start(name, "worker", self.address, "--nthreads", "1", "--name", name, "--no-dashboard", *options,
                    env=env)  # fmt: skip

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def wait_for(self, n: int) -> None:
        with distributed.Client(self.address, timeout=60) as client:
            client.wait_for_workers(n, timeout=180)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def close(self) -> None:
        for name in [n for n in self.procs if n != "scheduler"] + ["scheduler"]:
            if name in self.procs:
                self.kill(name)


@pytest.fixture(scope="module")
def small_class(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cluster") / "submissions"
    for student in STUDENTS:
        nb = sample.exercises_only(nbformat.read(str(SAMPLE / student / "layers.ipynb"), as_version=4))
        (root / student).mkdir(parents=True)
        nbformat.write(nb, str(root / student / "layers.ipynb"))
    return root


@pytest.fixture(scope="module")
def local_run(small_class, tmp_path_factory) -> Path:
    """The class graded on this machine, the reference: its OUT."""
    out = tmp_path_factory.mktemp("local") / "out"
    grade(Settings("03_layers", small_class, out, workers=2, progress=None))
    return out


@pytest.fixture(scope="module")
def local_grades(local_run) -> dict[str, dict[str, str]]:
    return _by_student(local_run / "grades.csv")


@pytest.fixture(scope="module")
def local_counts(local_run) -> dict[str, int]:
    """Rows of the local run's gradebook: one student, submission and notebook each, one grade per cell."""
    counts = _gradebook_counts(local_run / "gradebook.db")
    assert counts["student"] == counts["submitted_assignment"] == counts["submitted_notebook"] == len(STUDENTS)
    return counts


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory) -> Iterator[LocalCluster]:
    """Two workers that can grade and one that cannot (no bubblewrap on its PATH)."""
    c = LocalCluster(tmp_path_factory.mktemp("dask"))
    try:
        c.worker("good-1")
        c.worker("good-2")
        c.worker("no-bwrap", env={"PATH": str(Path(sys.executable).parent)})
        c.wait_for(3)
        yield c
    finally:
        c.close()


# ----------------------------------------------------------------------------------------
# The whole run, on a real cluster
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_sandbox
def test_a_class_graded_on_the_cluster_gets_the_same_grades_and_reruns(
    small_class, local_grades, local_counts, dask_cluster, tmp_path
):
    out, progress = tmp_path / "out", io.StringIO()
    summary = grade(Settings("03_layers", small_class, out, workers=2, scheduler=dask_cluster.address,
                             progress=progress))  # fmt: skip
    said = progress.getvalue()
    assert summary.graded == len(STUDENTS)
    assert _by_student(out / "grades.csv") == local_grades
    assert float(local_grades["perfect"]["score"]) == 18 and float(local_grades["blank"]["score"]) == 0
    assert "grading 3 student(s) with 2 Dask worker(s)" in said
    refused = [line for line in said.splitlines() if line.startswith("refused Dask worker")]
    assert len(refused) == 1 and "bubblewrap is not installed" in refused[0], said
    assert _gradebook_counts(out / "gradebook.db") == local_counts

    again = grade(Settings("03_layers", small_class, out, workers=2, scheduler=dask_cluster.address, progress=None))
    assert (again.graded, again.skipped) == (0, len(STUDENTS))
    assert _by_student(out / "grades.csv") == local_grades


def _grading_in(proc: subprocess.Popen, out: Path) -> bool:
    """Whether a grading process for ``out`` runs under the (``dask worker``) process ``proc``."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        return False
    for p in family:
        try:
            if p.environ().get(OUT_VARIABLE) == str(out) and "autograder.host.pool" in " ".join(p.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


@pytest.mark.slow
@needs_sandbox
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    small_class, local_grades, local_counts, dask_cluster, tmp_path
):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "autograder", "grade", "--assignment", "03_layers", "--submissions",
               str(small_class), "--out", str(out), "--workers", "2", "--scheduler", dask_cluster.address]  # fmt: skip
    with open(tmp_path / "progress.log", "w") as log:
        run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
    killed = None
    try:
        deadline = time.monotonic() + 600
        while killed is None and time.monotonic() < deadline and run.poll() is None:
            for name in ("good-1", "good-2"):
                if _grading_in(dask_cluster.procs[name], out.resolve()):
                    time.sleep(3)  # well into the student's notebook run
                    dask_cluster.kill(name)
                    killed = name
                    break
            time.sleep(0.5)
        assert killed is not None, "no worker was seen grading"
        assert run.wait(timeout=900) == 0, (tmp_path / "progress.log").read_text()
    finally:
        if run.poll() is None:
            run.kill()
    said = (tmp_path / "progress.log").read_text()
    assert _by_student(out / "grades.csv") == local_grades
    for student in STUDENTS:  # each merged once
        assert sum(f"] {student}:" in line for line in said.splitlines()) == 1, said
    assert _gradebook_counts(out / "gradebook.db") == local_counts


# ----------------------------------------------------------------------------------------
# Refused up front
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_cluster_without_a_worker_that_can_grade_is_refused_before_grading(small_class, tmp_path):
    c = LocalCluster(tmp_path)
    try:
        c.worker("no-bwrap", env={"PATH": str(Path(sys.executable).parent)})
        c.wait_for(1)
        out = tmp_path / "out"
        with pytest.raises(UsageError, match="no Dask worker at .* can grade: bubblewrap is not installed"):
            grade(Settings("03_layers", small_class, out, workers=1, scheduler=c.address, progress=None))
        assert not (out / "grades.csv").exists()
        assert not list((out / "course" / "autograded").glob("*"))
    finally:
        c.close()


def test_an_unreachable_scheduler_is_a_usage_error(small_class, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    engine = DaskEngine(assignment="03_layers", out=tmp_path, workers=1, timeout=60, scheduler=address)
    with pytest.raises(UsageError, match=f"cannot reach the Dask scheduler at {address}"):
        engine.start(1)
    engine.close()


def test_preflight_names_each_difference(tmp_path, monkeypatch):
    probe = tmp_path / "work" / ".probe"
    probe.parent.mkdir()
    probe.write_text("token")
    mine = cluster.fingerprint("03_layers")
    assert cluster.preflight(mine, "03_layers", str(probe), "token", hardened=False).ok
    other = Fingerprint(mine.library, "0" * 64, "1" * 64)
    found = cluster.preflight(other, "03_layers", str(probe), "other-run", hardened=False)
    assert not found.ok
    assert "the grader (autograder/) and the assignment (solutions/) differ" in found.problems[0]
    assert "does not see this run's output folder" in found.problems[1]
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    # Asked once per process (cached): ask again, with this PATH.
    monkeypatch.setattr(bubblewrap, "bubblewrap_available", bubblewrap.bubblewrap_available.__wrapped__)
    refused = cluster.preflight(mine, "03_layers", str(probe), "token", hardened=True)
    assert refused.problems == ("bubblewrap is not installed (or not on PATH): install the Debian package "
                                "'bubblewrap' on the worker",)  # fmt: skip


# ----------------------------------------------------------------------------------------
# A submission that kills its worker every time: flagged, not retried forever
# ----------------------------------------------------------------------------------------

#: The scheduler and the workers import kill_own_worker from this file (by name: ``test_cluster``).
_PATH = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
TESTS_ON_PATH = {"PYTHONPATH": os.pathsep.join(p for p in _PATH if p)}
#: The scheduler gives a task up once it has ended 2 workers (1 more than allowed).
ONE_FAILURE_ALLOWED = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1", **TESTS_ON_PATH}


def kill_own_worker(task: Task, timeout: float) -> WorkerResult:
    """A grading task that takes its Dask worker down (as a submission that exhausts its memory)."""
    if task.student == "killer":
        os.kill(os.getpid(), signal.SIGKILL)
    return WorkerResult(task.student, StudentResult(task.student, graded=True))


def _task(student: str, out: Path) -> Task:
    """A task that names ``out`` for every folder (kill_own_worker reads only the student)."""
    where = str(out)
    return Task(
        student=student,
        assignment="03_layers",
        course_root=where,
        config_file=where,
        template_db=where,
        work_dir=str(out / "work"),
        feedback_dir=where,
        source_dir=where,
        hidden_paths=(),
        notebooks=(),
    )


@contextmanager
def _within(seconds: int) -> Iterator[None]:
    """Fail the test, rather than hang it, when the block has not finished after ``seconds``."""

    def stalled(signum: int, frame: object) -> None:
        pytest.fail(f"the run stalled: no outcome for every student after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stalled)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _grade_with_killer(address: str, out: Path, seconds: int) -> dict[str, list]:
    """Grade "before", "killer" and "after" with kill_own_worker on the cluster at ``address``,
    within ``seconds``: each student's outcomes, in the order they came."""
    (out / "work").mkdir(parents=True)
    engine = DaskEngine(assignment="03_layers", out=out, workers=1, timeout=60, hardened=False, scheduler=address,
                        say=lambda _: None, task=kill_own_worker)  # fmt: skip
    outcomes: dict[str, list] = {}
    try:
        with _within(seconds):
            engine.start(1)
            for task, outcome in engine.grade([_task(s, out) for s in ("before", "killer", "after")]):
                outcomes.setdefault(task.student, []).append(outcome)
    finally:
        engine.close()
    return outcomes


@pytest.mark.slow
def test_a_submission_that_kills_its_worker_repeatedly_is_given_up_on(tmp_path, monkeypatch):
    # One worker under a nanny (``dask worker``'s default), which starts it again after each death.
    # Were it not started again, the run would end after NO_WORKER_SECONDS with the students left
    # flagged, and the assertions below say so.
    monkeypatch.setattr(cluster, "NO_WORKER_SECONDS", 120.0)
    c = LocalCluster(tmp_path, scheduler_env=ONE_FAILURE_ALLOWED)
    try:
        c.worker("nannied", env=TESTS_ON_PATH)
        c.wait_for(1)
        outcomes = _grade_with_killer(c.address, tmp_path / "out", seconds=400)
        worker_log = c.log("nannied")
    finally:
        c.close()
    assert sorted(outcomes) == ["after", "before", "killer"] and all(len(o) == 1 for o in outcomes.values()), outcomes
    (before,), (killer,), (after,) = outcomes["before"], outcomes["killer"], outcomes["after"]
    assert isinstance(before, StudentResult) and before.graded, before
    assert isinstance(after, StudentResult) and after.graded, after
    assert isinstance(killer, Failure), killer
    assert "tried alone, ended 2 Dask worker(s)" in killer.reason and "allowed-failures" in killer.reason
    # Bounded: 2 workers with the others (Dask gives up), 2 more alone (given up for good).
    assert worker_log.count("was killed by signal 9") == 4, worker_log
    assert worker_log.count("Restarting worker") == 4, worker_log


@pytest.mark.slow
def test_workers_that_do_not_come_back_end_the_run_with_the_students_left_flagged(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "QUIET_SECONDS", 1.0)
    monkeypatch.setattr(cluster, "NO_WORKER_SECONDS", 5.0)
    c = LocalCluster(tmp_path, scheduler_env=ONE_FAILURE_ALLOWED)
    try:
        c.worker("unnannied", "--no-nanny", env=TESTS_ON_PATH)  # nothing starts it again
        c.wait_for(1)
        outcomes = _grade_with_killer(c.address, tmp_path / "out", seconds=120)
    finally:
        c.close()
    assert sorted(outcomes) == ["after", "before", "killer"] and all(len(o) == 1 for o in outcomes.values()), outcomes
    given_up = [s for s, (outcome,) in outcomes.items() if isinstance(outcome, Failure)]
    # "before" too when its result was lost with the worker before the client fetched it.
    assert given_up in (["killer", "after"], ["before", "killer", "after"]), outcomes
    for student in given_up:
        (outcome,) = outcomes[student]
        assert outcome.reason.startswith("no Dask worker that can grade has been connected for 5 s"), outcome
        assert "run the same command again" in outcome.reason
