"""Grading on a Dask cluster: the :class:`DaskEngine` behind ``--scheduler`` and ``--cluster``.

A Dask task grades one student: on its worker it runs the same grading process as on this
machine (:func:`autograder.host.pool.run_tasks` with one worker, so the task has its deadline and
its process tree is killed with it) and returns a :class:`WorkerResult`. The client (this
process) merges each result into the gradebook: it stays the gradebook's only writer.

What the workers need: this repository and its virtual environment, and ``OUT``, at the same
paths as the client (a shared filesystem, as on most SLURM clusters; a ReadWriteMany volume
on Kubernetes); bubblewrap, and root for the sandbox's control groups, as on one machine.

**Each worker proves it can grade** before it gets a student. A worker plugin
(:class:`GradingPreflight`, also run on workers that join or restart later) checks on the
worker that bubblewrap can create its namespaces there, that the course library, the grader
and the assignment it has hash the same as the client's, and that it sees this run's ``OUT``
(it reads a file the client has just written there). A worker that passes is given the
resource ``backprop-<run>``; grading tasks ask for that resource, so a worker that failed
never gets one, and the client names it and says why. With no worker passing, the run stops
before it grades anyone.

**A worker that dies mid-task loses nothing.** The scheduler sends its student to another
worker; the client merges whichever attempt finishes, once. A student whose grading has
taken down ``distributed.scheduler.allowed-failures`` + 1 workers (a setting of the scheduler,
3 by default: 4 workers) is not tried again: Dask gives up with ``KilledWorker``. Dask blames
every student a dying worker held, those waiting their turn on it too, so each student it gave
up on is graded again alone, one after another; one whose grading kills its workers again gets
a row of 0 points, flagged, and the others their grades. So a submission that kills every
worker it runs on takes down at most 2 × (allowed-failures + 1) workers, then is flagged.

**Workers that do not come back** (no nanny to start them again, or a nanny that gave up): with
no worker that can grade for :data:`NO_WORKER_SECONDS`, the students left are flagged as not
graded, with a message saying so, and the run ends; the same command grades them later.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import hashlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from distributed import Client, KilledWorker, WorkerPlugin, as_completed

from autograder import sandbox
from autograder.host.engines import SINGLE_BLAS_THREAD, Outcome, Task
from autograder.host.pool import Failure, kill_processes, run_tasks
from autograder.host.settings import Settings, UsageError, say
from autograder.host.submission import grade_student

__all__ = [
    "DaskEngine",
    "Fingerprint",
    "GradingPreflight",
    "NoWorkerLeft",
    "WorkerCheck",
    "WorkerResult",
    "fingerprint",
    "preflight",
]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
#: Grading processes started by a Dask task carry this in their environment: the run's OUT.
OUT_VARIABLE = "BACKPROP_CLUSTER_OUT"
#: Cluster graders use sandbox slots (uids) from here on, apart from a local run's 0, 1, ...
FIRST_CLUSTER_SLOT = 100
MAX_SLOTS = 256
#: Seconds to wait for a scheduler to answer, and for ``--workers N`` workers to join it.
CONNECT_SECONDS = 30.0
JOIN_SECONDS = 120.0
#: With no result for this long, the client checks that some worker can still grade.
QUIET_SECONDS = 60.0
POLL_SECONDS = 0.2
#: While nothing finishes, how often the scheduler is asked to look at tasks waiting for a worker.
NUDGE_SECONDS = 5.0
#: With no worker that can grade for this long (``--scheduler``), the students left are given up
#: on: a cluster whose workers are all gone (killed by a submission, and not started again)
#: ends the run, with those students flagged, instead of stalling it. A SLURM cluster's workers
#: may wait in the queue for hours: there the run waits.
NO_WORKER_SECONDS = 600.0


# ----------------------------------------------------------------------------------------
# What a worker must have: the same files as the client
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fingerprint:
    """Digests of what decides a grade: the course library, the grader and the assignment."""

    library: str
    grader: str
    assignment: str

    def differences(self, other: Fingerprint) -> list[str]:
        """What differs from ``other``, in words."""
        names = {"library": "the course library (course/)", "grader": "the grader (autograder/)",
                 "assignment": "the assignment (solutions/)"}  # fmt: skip
        return [names[k] for k in names if getattr(self, k) != getattr(other, k)]

    @property
    def short(self) -> str:
        return hashlib.sha256(f"{self.library}{self.grader}{self.assignment}".encode()).hexdigest()[:12]


def _tree_digest(folder: Path, pattern: str = "*") -> str:
    """sha256 of the names and contents of the files under ``folder`` (bytecode caches left out)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob(pattern)):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def fingerprint(assignment: str) -> Fingerprint:
    """The fingerprint of the files this process grades with (the ``course`` it imports)."""
    import course

    return Fingerprint(
        library=_tree_digest(Path(course.__file__).resolve().parent),
        grader=_tree_digest(ROOT / "autograder", "*.py"),
        assignment=_tree_digest(ROOT / "solutions" / assignment),
    )


@dataclass(frozen=True)
class WorkerCheck:
    """What :func:`preflight` found on one worker: it can grade when ``problems`` is empty."""

    host: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def preflight(expected: Fingerprint, assignment: str, probe: str, token: str, hardened: bool) -> WorkerCheck:
    """Check, on a worker, that it can grade this run (see the module docstring). ``probe`` is
    a file under the run's OUT holding ``token``."""
    problems = []
    if hardened and not sandbox.backend().available():
        problems.append(f"{sandbox.backend().why_unavailable()} on the worker")
    try:
        differs = expected.differences(fingerprint(assignment))
    except (OSError, ImportError) as exc:
        differs = [f"the course files ({type(exc).__name__}: {exc})"]
    if differs:
        verb = "differ" if len(differs) > 1 else "differs"
        problems.append(f"{' and '.join(differs)} {verb} from the client's: install the same version there")
    try:
        seen = Path(probe).read_text()
    except OSError:
        seen = None
    if seen != token:
        problems.append(f"it does not see this run's output folder {Path(probe).parent.parent} "
                        "(OUT must be on a filesystem shared with the client, at the same path)")  # fmt: skip
    return WorkerCheck(socket.gethostname(), tuple(problems))


class GradingPreflight(WorkerPlugin):
    """A Dask worker plugin: :func:`preflight` on every worker, now and as workers join; a
    worker that passes gets the resource ``resource`` (one per thread), the only way to
    grading tasks. Also stops what an earlier, interrupted run on the same OUT left running."""

    def __init__(self, name: str, resource: str, out: str, check: Callable[[], WorkerCheck]) -> None:
        self.name, self.resource, self.out, self.check = name, resource, out, check
        self.found: WorkerCheck | None = None

    async def setup(self, worker: Any) -> None:
        stop_grading(self.out)
        self.found = await asyncio.to_thread(self.check)
        if self.found.ok:
            await worker.set_resources(**{self.resource: worker.state.nthreads})
            _reconsider_waiting_tasks(worker)
        else:
            logger.error("this worker cannot grade, refused: %s", "; ".join(self.found.problems))

    async def teardown(self, worker: Any) -> None:
        if self.resource in worker.state.total_resources:
            await worker.set_resources(**{self.resource: 0})


def _reconsider_waiting_tasks(worker: Any) -> None:
    """Have the scheduler look again at the tasks no worker could run, now that ``worker`` has
    the grading resource.

    The scheduler matches waiting ("no-worker") tasks with a worker when the worker joins or
    changes status, not when its resources change (``Scheduler.add_resources``, distributed
    2024-2026). A worker that restarts after a student's grading killed it joins first and
    passes the preflight after, so without this the students it should grade next would wait
    for ever. A pause and resume is a status change the scheduler acts on; at set-up the worker
    runs nothing, so it costs nothing.
    """
    from distributed.core import Status

    if worker.status == Status.running:
        worker.status = Status.paused
        worker.status = Status.running


def _found(name: str, dask_worker: Any) -> WorkerCheck | None:
    """What the plugin ``name`` found on this worker (run with ``client.run``)."""
    plugin = dask_worker.plugins.get(name)
    return None if plugin is None else plugin.found


def stop_grading(out: str) -> int:
    """Kill the grading processes (and all they started) that this process started for ``out``;
    returns how many there were."""
    mine = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.environ().get(OUT_VARIABLE) == out:
                mine.append(proc)
        except psutil.Error:
            continue
    family = {p.pid: p for top in mine for p in [top, *_descendants(top)]}
    kill_processes(list(family.values()), timeout=10)
    return len(mine)


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


# ----------------------------------------------------------------------------------------
# The task: one student, on a worker
# ----------------------------------------------------------------------------------------


@dataclass
class WorkerResult:
    """What a grading task returns to the client."""

    student: str
    outcome: Outcome
    host: str = field(default_factory=socket.gethostname)


@contextmanager
def _slot() -> Iterator[int]:
    """A sandbox slot of this host no other grading task holds (a lock file under /tmp)."""
    for k in range(FIRST_CLUSTER_SLOT, FIRST_CLUSTER_SLOT + MAX_SLOTS):
        fd = os.open(f"/tmp/backprop-grader-slot-{k}.lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield k
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"all {MAX_SLOTS} grading slots of this host are taken")


def grade_on_worker(task: Task, timeout: float) -> WorkerResult:
    """The Dask task: grade one student in a grading process of its own (deadline ``timeout``)."""
    os.environ.update(SINGLE_BLAS_THREAD)  # for the grading process; a grading worker's setting
    log_dir = Path(task.work_dir) / "hosts" / socket.gethostname()
    log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {OUT_VARIABLE: str(Path(task.work_dir).parent)}
    with _slot() as slot:
        for _, outcome in run_tasks(
            grade_student, [task], workers=1, timeout=timeout, log_dir=log_dir, env=env, first_slot=slot
        ):
            return WorkerResult(task.student, outcome)
    raise AssertionError("run_tasks gave no result")  # pragma: no cover - it yields one per task


# ----------------------------------------------------------------------------------------
# The engine (client side)
# ----------------------------------------------------------------------------------------


class NoWorkerLeft(Exception):
    """No worker that can grade has been connected for ``seconds``: the students left cannot be graded."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no Dask worker that can grade has been connected for {seconds:g} s (the workers died: "
                         "killed, or out of memory, and were not started again); start workers and run the same "
                         "command again to grade the students left")  # fmt: skip
        self.seconds = seconds


class DaskEngine:
    """Grades on the workers of a Dask cluster (see the module docstring).

    ``scheduler``: the address of a running scheduler; or ``cluster``: ``"slurm"`` starts one
    for the run with dask-jobqueue (``workers`` jobs, configured in Dask's ``jobqueue.slurm``
    settings: queue, account, walltime). ``workers``: grading starts once that many workers
    have joined (or after :data:`JOIN_SECONDS` with fewer). ``task``: the function a task runs
    (tests replace it).
    """

    sandboxed = True  # a worker without a working bubblewrap is refused (when hardened)

    def __init__(
        self,
        *,
        assignment: str,
        out: Path,
        workers: int,
        timeout: float,
        hardened: bool = True,
        scheduler: str | None = None,
        cluster: str | None = None,
        say: Callable[[str], None] = print,
        task: Callable[[Task, float], WorkerResult] = grade_on_worker,
    ) -> None:
        if (scheduler is None) == (cluster is None):
            raise ValueError("give one of scheduler and cluster")
        self.assignment, self.out, self.workers, self.timeout = assignment, out, workers, timeout
        self.hardened, self.scheduler, self.cluster_kind, self.say, self.task = hardened, scheduler, cluster, say, task
        self.sandboxed = hardened
        self.client: Any = None
        self.cluster: Any = None
        self.token = secrets.token_hex(8)
        self.plugin_name = f"backprop-preflight-{self.token}"
        self.resource = ""
        self.refused: dict[str, WorkerCheck] = {}
        self.probe: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DaskEngine:
        return cls(
            assignment=settings.assignment, out=settings.out, workers=settings.workers,
            timeout=settings.student_timeout, hardened=settings.hardened, scheduler=settings.scheduler,
            cluster=settings.cluster, say=lambda message: say(settings, message),
        )  # fmt: skip

    # -- starting -----------------------------------------------------------------------

    def start(self, students: int) -> str:
        where = self._connect(UsageError)
        self._wait_for_workers(UsageError)
        expected = fingerprint(self.assignment)
        self.resource = f"backprop-{expected.short}-{self.token}"
        # Kept for the whole run: a worker that joins or restarts later proves itself the same way.
        self.probe = self.out / "work" / f".cluster-probe-{self.token}"
        with open(self.probe, "w", opener=_private) as f:
            f.write(self.token)
        args = (expected, self.assignment, str(self.probe), self.token, self.hardened)
        check = functools.partial(preflight, *args)
        plugin = GradingPreflight(self.plugin_name, self.resource, str(self.out), check)
        self.client.register_plugin(plugin, name=self.plugin_name)
        found = self.client.run(_found, self.plugin_name)
        good = [a for a, c in found.items() if c is not None and c.ok]
        self.refused = {a: c for a, c in found.items() if c is not None and not c.ok}
        for address, check in sorted(self.refused.items()):
            self.say(f"refused Dask worker {address} ({check.host}): {'; '.join(check.problems)}")
        if not good:
            reasons = "; ".join(sorted({p for c in self.refused.values() for p in c.problems})) or "no worker answered"
            raise UsageError(f"no Dask worker at {where} can grade: {reasons}")
        return f"{len(good)} Dask worker(s) at {where}"

    def _connect(self, UsageError: type[Exception]) -> str:
        if self.cluster_kind is not None:
            if self.cluster_kind != "slurm":
                raise UsageError(f"unknown --cluster {self.cluster_kind!r}: only 'slurm' (see README, 'Grading on a "
                                 "cluster', for Kubernetes: start the cluster, then --scheduler)")  # fmt: skip
            try:
                from dask_jobqueue import SLURMCluster
            except ImportError:
                raise UsageError(
                    "--cluster slurm needs dask-jobqueue: install the cluster extra "
                    "(.venv/bin/pip install -e '.[cluster]')"
                ) from None
            self.cluster = SLURMCluster(**_slurm_defaults())
            self.cluster.scale(jobs=self.workers)
            address = self.cluster.scheduler_address
            self.say(f"submitted {self.workers} SLURM job(s) for Dask workers (scheduler {address})")
        else:
            address = self.scheduler
        try:
            self.client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        return str(address)

    def _wait_for_workers(self, UsageError: type[Exception]) -> None:
        wanted = self.workers
        if len(self.client.scheduler_info(n_workers=-1)["workers"]) < wanted:
            self.say(f"waiting for {wanted} Dask worker(s) to join")
        try:
            self.client.wait_for_workers(wanted, timeout=None if self.cluster is not None else JOIN_SECONDS)
        except TimeoutError:
            if not self.client.scheduler_info(n_workers=-1)["workers"]:
                raise UsageError(f"no Dask worker joined the scheduler within {JOIN_SECONDS:g} s") from None

    # -- grading ------------------------------------------------------------------------

    def grade(self, tasks: list[Task]) -> Generator[tuple[Task, Outcome], None, None]:
        if not tasks:  # a rerun that skips everyone: no cluster was started
            return
        # Dask blames every task a dying worker held, the ones waiting their turn on it too:
        # those students are graded again one at a time, so that only the one whose grading
        # kills its worker again is given up on.
        left = {task.student: task for task in tasks}  # not given an outcome yet
        suspects: list[Task] = []
        try:
            with closing(self._wait({self._submit(task): task for task in tasks})) as finished:
                for task, future in finished:
                    if future.status == "error" and isinstance(future.exception(), KilledWorker):
                        suspects.append(task)
                        continue
                    outcome = self._outcome(future)
                    del left[task.student]
                    yield task, outcome
            for task in suspects:
                with closing(self._wait({self._submit(task, "alone"): task})) as finished:
                    for _, future in finished:
                        outcome = self._outcome(future)
                        del left[task.student]
                        yield task, outcome
        except NoWorkerLeft as stop:
            self.say(f"stopped waiting: {stop}")
            for task in left.values():
                yield task, Failure(str(stop))

    def _submit(self, task: Task, attempt: str = "") -> Any:
        key = f"grade-{task.student}-{self.token}" + (f"-{attempt}" if attempt else "")
        return self.client.submit(self.task, task, self.timeout, key=key, pure=False, resources={self.resource: 1})

    def _wait(self, by_future: dict[Any, Task]) -> Generator[tuple[Task, Any], None, None]:
        """Each future of ``by_future`` as it finishes, once, with its task; whatever is left
        unfinished when the caller stops (Ctrl-C, an error) is cancelled and its grading stopped."""
        remaining = set(by_future)
        pending = as_completed(list(by_future), loop=self.client.loop)
        heard = nudged = time.monotonic()
        orphaned: float | None = None
        try:
            while remaining:
                finished = pending.next_batch(block=False)
                if not finished:
                    time.sleep(POLL_SECONDS)
                    if time.monotonic() - nudged > NUDGE_SECONDS:
                        nudged = time.monotonic()
                        self._schedule_waiting()
                    if time.monotonic() - heard > QUIET_SECONDS:
                        heard = time.monotonic()
                        orphaned = self._check_workers(orphaned)
                    continue
                heard = time.monotonic()
                for future in finished:
                    remaining.discard(future)  # a future finishes once: its student is merged once
                    yield by_future.pop(future), future
                    # Released, so that the scheduler does not grade the student again if the
                    # worker holding this result dies later.
                    future.release()
        finally:
            if remaining:
                self.client.cancel(list(remaining), force=True)
                self.client.run(stop_grading, str(self.out))

    def _schedule_waiting(self) -> None:
        """Have the scheduler match the tasks no worker could run with the workers that can
        grade now (see :func:`_reconsider_waiting_tasks`: a task can also come back to the
        scheduler after the worker's set-up, when a result it had fetched is lost)."""

        def schedule(dask_scheduler: Any) -> int:  # nested: sent by value, the scheduler needs no autograder
            recommendations: dict[str, str] = {}
            for ws in list(dask_scheduler.running):
                recommendations.update(dask_scheduler.bulk_schedule_unrunnable_after_adding_worker(ws))
            if recommendations:
                dask_scheduler.transitions(recommendations, stimulus_id=f"backprop-schedule-{time.time()}")
            return len(recommendations)

        try:
            self.client.run_on_scheduler(schedule)
        except Exception as exc:  # noqa: BLE001 - an older or locked-down scheduler: the setup's nudge remains
            logger.debug("could not ask the scheduler to look at waiting tasks: %s", exc)

    def _able_workers(self) -> list[str]:
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return [a for a, w in info.items() if w.get("resources", {}).get(self.resource, 0) > 0]

    def _check_workers(self, orphaned: float | None) -> float | None:
        """Called while nothing finishes: since when no worker that can grade has been
        connected (``orphaned``: the last answer, None while some is). Says that the run
        waits; raises :class:`NoWorkerLeft` once that has lasted :data:`NO_WORKER_SECONDS`
        (except on a SLURM cluster of the run's own, whose workers may wait in the queue)."""
        if self._able_workers():
            return None
        now = time.monotonic()
        orphaned = now if orphaned is None else orphaned
        if self.cluster is None and now - orphaned >= NO_WORKER_SECONDS:
            raise NoWorkerLeft(NO_WORKER_SECONDS)
        self.say("waiting: no Dask worker that can grade is connected (start one, or Ctrl-C)")
        return orphaned

    def _outcome(self, future: Any) -> Outcome:
        try:
            result = self._result(future)
        except NoWorkerLeft:
            raise
        except KilledWorker as exc:
            failures = exc.allowed_failures + 1
            return Failure(f"its grading, tried alone, ended {failures} Dask worker(s) (killed, or out of memory): "
                           "not tried again (distributed.scheduler.allowed-failures)")  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the student is recorded as not graded, the run goes on
            return Failure(f"the Dask task failed ({type(exc).__name__}: {exc})")
        return result.outcome

    def _result(self, future: Any) -> Any:
        """``future.result()``, watched like :meth:`_wait`: a finished result is fetched from the
        worker that holds it, and when that worker has died since, Dask grades the student again,
        on a worker that may be long in coming, or never come."""
        orphaned: float | None = None
        while True:
            try:
                return future.result(timeout=QUIET_SECONDS)
            except TimeoutError:
                orphaned = self._check_workers(orphaned)

    def close(self) -> None:
        if self.probe is not None:
            self.probe.unlink(missing_ok=True)
            self.probe = None
        if self.client is not None:
            try:
                self.client.unregister_worker_plugin(self.plugin_name)
            except Exception:  # noqa: BLE001 - not registered, or the scheduler is gone
                pass
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def _slurm_defaults() -> dict[str, Any]:
    """Keyword arguments of ``SLURMCluster`` that Dask's ``jobqueue.slurm`` configuration does
    not set: one core per job (one student at a time), memory for both sandboxed runs."""
    import dask

    kwargs: dict[str, Any] = {}
    if dask.config.get("jobqueue.slurm.cores", None) is None:
        kwargs["cores"] = 1
    if dask.config.get("jobqueue.slurm.memory", None) is None:
        kwargs["memory"] = "8GiB"
    return kwargs


def _private(path: str, flags: int) -> int:
    """An ``open(..., opener=)`` for a file only this user may read."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o600)
