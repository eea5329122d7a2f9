"""What one grading run is asked to do (:class:`Settings`), and how a bad ask is reported.

The command line (``python -m autograder grade``) fills in a :class:`Settings`; every stage of
the run (:mod:`.collect`, :mod:`.course_setup`, :mod:`.staging`, :mod:`.pipeline`) reads it.
A mistake the instructor can put right (a folder not found, a state file of a newer grader)
is a :class:`UsageError`: one line, exit status 2, no traceback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from autograder.host.task import FIRST_UID

__all__ = ["Settings", "UsageError", "say"]


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


@dataclass
class Settings:
    """Everything one grading run needs. Paths may be relative to the working directory."""

    assignment: str
    submissions: Path
    out: Path
    workers: int = 1
    db_url: str | None = None
    #: Wall-clock seconds one student may take in total before their grading is stopped.
    student_timeout: float = 1800.0
    #: Overrides of TrustedExecute.timeout (per cell) and .cpu_seconds (per check), if set.
    cell_timeout: int | None = None
    cpu_seconds: int | None = None
    #: Refuse to run student code without bubblewrap (instead of grading with a loud warning).
    require_sandbox: bool = False
    #: False grades with nbgrader's own Execute (no sandbox, no trusted verdicts): benchmarks only.
    hardened: bool = True
    force: bool = False
    #: Grader k runs student code as uid first_uid + k (distinct uids: separate process limits).
    first_uid: int = FIRST_UID
    #: Run the two sandboxed runs of a notebook at the same time (TrustedExecute.side_by_side).
    #: None: when there are fewer workers than cores, so that the runs use cores that would idle.
    side_by_side: bool | None = None
    progress: TextIO | None = field(default=sys.stderr, repr=False)
    #: Grade on the Dask cluster of this scheduler (tcp://HOST:PORT), or on one started for the
    #: run ("slurm"), instead of on this machine (:mod:`autograder.host.cluster`).
    scheduler: str | None = None
    cluster: str | None = None
    #: The class list (a CSV file, or Path("gradebook") for the gradebook's students table):
    #: every student on it gets a row. None: the students of the download only.
    roster: Path | None = None

    def gradebook_url(self) -> str:
        """The course's gradebook: ``db_url``, else ``OUT/gradebook.db``."""
        return self.db_url or f"sqlite:///{self.out / 'gradebook.db'}"


def say(settings: Settings, message: str) -> None:
    """One line of progress, if the run reports progress."""
    if settings.progress is not None:
        print(message, file=settings.progress, flush=True)
