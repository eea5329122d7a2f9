"""Where students are graded: the seam between the pipeline and the processes that grade.

The pipeline (:func:`autograder.host.pipeline.grade`) stages one task per student, hands the
tasks to an :class:`Engine` and merges each result into the gradebook as it arrives: it is
the gradebook's only writer, whichever engine graded. Two engines implement the seam:

- :class:`LocalEngine`, the default: a pool of grading processes on this machine
  (:mod:`autograder.host.pool`); nothing to start.
- :class:`autograder.host.cluster.DaskEngine`: the workers of a Dask cluster, an existing one
  (``--scheduler tcp://HOST:PORT``) or one started for the run (``--cluster slurm``). Dask is
  an extra (``pip install -e '.[cluster]'``), imported only when a cluster is asked for.

An engine yields ``(task, outcome)`` in completion order, one per task and never two: the
outcome is the student's :class:`~autograder.host.submission.StudentResult`, or a
:class:`~autograder.host.pool.Failure` saying why no result came back.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

from autograder import sandbox
from autograder.host.pool import Failure, run_tasks
from autograder.host.settings import Settings, UsageError
from autograder.host.submission import StudentResult, grade_student
from autograder.host.task import Task

__all__ = ["SINGLE_BLAS_THREAD", "Engine", "LocalEngine", "Outcome", "Task", "make_engine"]

# Task: a staged student, as :func:`autograder.host.submission.grade_student` takes it
# (autograder.host.task; named here too, where engines are written against it).
#: What grading one student gave back.
Outcome = StudentResult | Failure
#: One BLAS thread per grading process: the grading processes themselves use the cores.
SINGLE_BLAS_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


class Engine(Protocol):
    """Grades staged students somewhere and gives their outcomes back to the pipeline."""

    #: Whether student code runs in the bubblewrap sandbox where this engine grades.
    sandboxed: bool

    def start(self, students: int) -> str:
        """Get ready to grade ``students`` (connect, prove the workers can grade); raise
        :class:`autograder.host.settings.UsageError` with a clear message if it cannot. Returns what
        grades, for the progress line ("2 worker(s) on this machine")."""
        ...

    def grade(self, tasks: list[Task]) -> Generator[tuple[Task, Outcome], None, None]:
        """``(task, outcome)`` for every task, in completion order. Closing the iterator (or
        Ctrl-C while iterating) stops every grading still under way."""
        ...

    def close(self) -> None:
        """Release what :meth:`start` acquired (connections, a cluster started for the run)."""
        ...


class LocalEngine:
    """``workers`` grading processes on this machine (:func:`autograder.host.pool.run_tasks`)."""

    def __init__(self, workers: int, timeout: float, log_dir: str, hardened: bool = True) -> None:
        self.workers, self.timeout, self.log_dir = workers, timeout, log_dir
        self.sandboxed = hardened and sandbox.bubblewrap_available()

    def start(self, students: int) -> str:
        return f"{min(self.workers, students)} worker(s) on this machine"

    def grade(self, tasks: list[Task]) -> Generator[tuple[Task, Outcome], None, None]:
        # run_tasks starts nothing before it is iterated.
        return run_tasks(
            grade_student, tasks, workers=self.workers, timeout=self.timeout, log_dir=self.log_dir,
            env=SINGLE_BLAS_THREAD,
        )  # fmt: skip

    def close(self) -> None:
        pass


def make_engine(settings: Settings) -> Engine:
    """The engine the settings ask for: a Dask cluster with ``scheduler`` or ``cluster``, else
    this machine."""
    if settings.scheduler is not None or settings.cluster is not None:
        try:
            from autograder.host.cluster import DaskEngine
        except ImportError as exc:
            if exc.name not in ("dask", "distributed"):
                raise
            raise UsageError("grading on a Dask cluster needs the cluster extra: "
                             ".venv/bin/pip install -e '.[cluster]'") from None  # fmt: skip
        return DaskEngine.from_settings(settings)
    return LocalEngine(settings.workers, settings.student_timeout, str(settings.out / "work"), settings.hardened)
