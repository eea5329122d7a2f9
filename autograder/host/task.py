"""One staged student, as the pipeline hands it to a grading process.

:func:`autograder.host.staging.stage` makes a :class:`Task` once a student's notebooks are in
``submitted/``; an engine (:mod:`autograder.host.engines`) sends it to
:func:`autograder.host.submission.grade_student`, in a pool process on this machine or on a
Dask worker. It crosses those boundaries by pickle, so it holds plain data only: strings,
numbers, tuples, :class:`~autograder.host.flags.Flag` records and the traitlets overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autograder.host.flags import Flag

__all__ = ["FIRST_UID", "Task"]

#: Worker ``k`` runs student code as uid ``FIRST_UID + k``: concurrent sandboxes never share a
#: process limit.
FIRST_UID = 20001


@dataclass(frozen=True)
class Task:
    """Where one student's grading reads and writes, and how it runs (all paths absolute)."""

    student: str
    assignment: str
    #: The nbgrader course under OUT (``release/``, ``submitted/``, ``autograded/``, ``feedback/``).
    course_root: str
    #: The course's ``nbgrader_config.py`` under OUT.
    config_file: str
    #: The gradebook holding only the assignment, which the grader copies for itself.
    template_db: str
    #: ``OUT/work``: the private gradebook copy and the logs.
    work_dir: str
    #: ``OUT/feedback``: where the student's feedback pages are published.
    feedback_dir: str
    #: The instructor's notebooks of the assignment (their hidden tests never reach feedback).
    source_dir: str
    #: Paths the sandboxed student code must not see (OUT, the submissions, the gradebook).
    hidden_paths: tuple[str, ...]
    #: The notebooks to grade, by name without ``.ipynb``.
    notebooks: tuple[str, ...]
    #: False: nbgrader's own Execute (no sandbox, no trusted verdicts), for the benchmark.
    hardened: bool = True
    #: Traitlets settings by section: ``{"TrustedExecute": {"timeout": 10}}``.
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False)
    #: The sandbox uid of slot 0.
    first_uid: int = FIRST_UID
    #: What collecting and staging the submission noticed, for the student's feedback.
    flags: tuple[Flag, ...] = ()
