"""Staging: each student's notebooks into ``submitted/``, and the :class:`Task` that grades them.

Only the expected notebooks are copied (files submitted beside them are ignored and flagged,
so a package cannot shadow the course library), read again without following a link: a file
that changed since it was collected into something else is rejected then, and one that grew
too large is not graded. The task names what the sandboxed student code must not see: OUT,
the submissions, and the gradebook wherever it is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from autograder.host import student_files
from autograder.host.collect import Submission
from autograder.host.course_setup import SOURCE
from autograder.host.database import sqlite_path
from autograder.host.flags import Flag
from autograder.host.private_files import private_umask, write_private
from autograder.host.sanitize import printable
from autograder.host.settings import Settings
from autograder.host.student_files import NotAFile, read_regular
from autograder.host.task import Task

__all__ = ["clear_outputs", "side_by_side", "sqlite_path", "stage"]


def stage(settings: Settings, s: Submission, config_file: Path, template: Path, db_url: str) -> Task:
    """Copy the student's notebooks (only those) into ``submitted/``; the grader's task.
    What goes wrong on the way is added to ``s.noticed``."""
    assignment, out = settings.assignment, settings.out
    course = out / "course"
    staged = course / "submitted" / s.student / assignment
    shutil.rmtree(staged, ignore_errors=True)
    with private_umask():
        staged.mkdir(parents=True)
    limit = student_files.MAX_NOTEBOOK_BYTES
    for name, path in list(s.notebooks.items()):
        shown = printable(path.name)
        try:
            data = read_regular(path, settings.submissions, limit + 1)
        except (NotAFile, OSError) as exc:  # changed since it was collected: still never followed
            what = exc.what if isinstance(exc, NotAFile) else "not readable"
            s.noticed.append(Flag("rejected", f"rejected {shown}: {what} (0 points for it)", shown))
            continue
        if len(data) > limit:
            text = f"{shown} grew beyond {limit >> 20} MB and was not graded (0 points for it)"
            s.noticed.append(Flag("rejected", text, shown))
            continue
        write_private(staged / f"{name}.ipynb", data)
    # Student code must not see this run's files, other students' submissions or the gradebook.
    hidden = [out, settings.submissions]
    main_db = sqlite_path(db_url)
    if main_db is not None and not main_db.resolve().is_relative_to(out):
        hidden.append(main_db.resolve())
    overrides: dict[str, dict[str, Any]] = {"TrustedExecute": {}, "Execute": {}}
    if settings.cell_timeout is not None:
        overrides["TrustedExecute"]["timeout"] = overrides["Execute"]["timeout"] = settings.cell_timeout
    if settings.cpu_seconds is not None:
        overrides["TrustedExecute"]["cpu_seconds"] = settings.cpu_seconds
    if settings.require_sandbox:
        overrides["TrustedExecute"]["require_sandbox"] = True
    overrides["TrustedExecute"]["side_by_side"] = side_by_side(settings)
    return Task(
        student=s.student,
        assignment=assignment,
        course_root=str(course),
        config_file=str(config_file),
        template_db=str(template),
        work_dir=str(out / "work"),
        feedback_dir=str(out / "feedback"),
        source_dir=str(SOURCE / assignment),
        hidden_paths=tuple(str(p) for p in hidden),
        notebooks=tuple(sorted(s.notebooks)),
        hardened=settings.hardened,
        overrides=overrides,
        first_uid=settings.first_uid,
        flags=tuple(s.noticed),  # for the student's feedback
    )


def side_by_side(settings: Settings) -> bool:
    """Whether a notebook's two sandboxed runs go at the same time: as asked, else when the
    workers leave cores idle."""
    if settings.side_by_side is not None:
        return settings.side_by_side
    return settings.workers < (os.cpu_count() or 1)


def clear_outputs(settings: Settings, student: str) -> None:
    """Remove what an earlier run left for ``student`` (staged notebook, feedback), as a grader does."""
    course = settings.out / "course"
    for d in ("submitted", "autograded", "feedback"):
        shutil.rmtree(course / d / student / settings.assignment, ignore_errors=True)
    shutil.rmtree(settings.out / "feedback" / student, ignore_errors=True)
