"""``OUT/state.json``: who has been merged into the gradebook, from which files.

A rerun skips a student whose record here has the digest of the same files (and the gradebook
still holds their submission), so an interrupted run resumes where it stopped. The file is
read into typed records (:class:`RunState`, a :class:`StudentState` per student) and its
version checked: a file of an earlier version is set aside (its grading is out of date: those
students are graded again), one of a newer grader or one that is not a state file at all is a
:class:`StateFileError` that says what to do, never silently overwritten.

:func:`lock` makes this process the only one grading into OUT.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.host.hand_grades import Answers
from autograder.host.private_files import private_opener, write_private
from autograder.host.settings import UsageError

__all__ = ["STATE_VERSION", "RunState", "StateFileError", "StudentState", "lock"]

#: Bump when grading changes in a way that should invalidate earlier results.
STATE_VERSION = 1


class StateFileError(UsageError):
    """A state file this grader cannot read: of a newer grader, or not a state file at all."""


@dataclass(frozen=True)
class StudentState:
    """One student merged into the gradebook: from which files, with which flags."""

    #: :attr:`autograder.host.collect.Submission.digest` of the files graded.
    digest: str
    #: The sentences recorded beside the grade (grades.csv's ``flags``).
    flags: tuple[str, ...] = ()
    seconds: float = 0.0
    #: Digests of the answers graded (:func:`autograder.host.hand_grades.notebook_answers`);
    #: None: not recorded.
    answers: Answers | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"digest": self.digest, "flags": list(self.flags), "seconds": self.seconds}
        if self.answers is not None:
            data["answers"] = self.answers
        return data

    @classmethod
    def from_json(cls, data: object, where: str) -> StudentState:
        """The record ``data`` read from the file; ``where`` names it in the error."""
        if not isinstance(data, dict):
            raise ValueError(f"{where} is not an object")
        digest, flags = data.get("digest"), data.get("flags", [])
        seconds, answers = data.get("seconds", 0.0), data.get("answers")
        if not isinstance(digest, str):
            raise ValueError(f"{where}: its digest is not a string")
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise ValueError(f"{where}: its flags are not a list of sentences")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError(f"{where}: its seconds are not a number")
        if answers is not None and not _is_answers(answers):
            raise ValueError(f"{where}: its answers are not digests by notebook and cell")
        return cls(digest, tuple(flags), float(seconds), answers)


def _is_answers(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(nb, str) and isinstance(cells, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                                 for k, v in cells.items())
        for nb, cells in value.items()
    )  # fmt: skip


@dataclass
class RunState:
    """The state file of OUT, for one assignment (the other assignments' records are kept)."""

    path: Path
    assignment: str
    #: Every assignment's students by id; :attr:`students` is this assignment's.
    assignments: dict[str, dict[str, StudentState]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, assignment: str) -> RunState:
        """The state file ``path`` as read (none yet: nobody merged); see the module docstring."""
        state = cls(path, assignment, _read(path))
        state.assignments.setdefault(assignment, {})
        return state

    @property
    def students(self) -> dict[str, StudentState]:
        """This assignment's students by id: record one with ``state.students[id] = ...``."""
        return self.assignments.setdefault(self.assignment, {})

    def save(self) -> None:
        """Write the file whole (0600, by way of a temporary file: never half written)."""
        assignments = {a: {s: r.as_json() for s, r in by_id.items()} for a, by_id in self.assignments.items()}
        data = {"version": STATE_VERSION, "assignments": assignments}
        write_private(self.path, json.dumps(data, indent=1, sort_keys=True))


def _read(path: Path) -> dict[str, dict[str, StudentState]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StateFileError(f"{path} cannot be read ({exc.strerror})") from None
    fix = "move it away to grade everyone again (the gradebook keeps what was graded by hand)"
    try:
        data = json.loads(text)
    except ValueError:
        raise StateFileError(f"{path} is not a state file of this grader (not JSON): {fix}") from None
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, bool) or not isinstance(version, int):
        raise StateFileError(f"{path} is not a state file of this grader (no version): {fix}")
    if version > STATE_VERSION:
        raise StateFileError(
            f"{path} was written by a newer grader (state version {version}; this one reads {STATE_VERSION}): "
            f"grade with that grader, or {fix}"
        )
    if version < STATE_VERSION:
        return {}  # graded by a grader whose results are out of date: everyone is graded again
    assignments = data.get("assignments")
    if not isinstance(assignments, dict) or not all(isinstance(v, dict) for v in assignments.values()):
        raise StateFileError(f"{path} is not a state file of this grader (no assignments): {fix}")
    try:
        return {
            a: {s: StudentState.from_json(r, f"the record of {s} for {a}") for s, r in students.items()}
            for a, students in assignments.items()
        }
    except ValueError as exc:
        raise StateFileError(f"{path} is garbled ({exc}): {fix}") from None


@contextmanager
def lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.lock`` for the run: a second run on the same OUT is a usage error."""
    with open(out / ".lock", "w", opener=private_opener) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another grading run is using {out}") from None
        yield
