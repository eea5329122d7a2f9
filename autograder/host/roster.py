"""The class list: every student on it gets a row in grades.csv, submitted or not.

A roster is a CSV file or nbgrader's students table. The CSV has a header row naming at least
the student id, as ``student_id`` or as nbgrader's ``id`` (so the file that ``nbgrader db
student import`` reads works as it is); optional columns: ``first_name``, ``last_name``,
``name``, ``email`` and ``lms_user_id`` (or ``lms_id``: the LMS's number for the student, as the
download names them: Canvas's user id, Moodle's participant number, Blackboard's username).
A download's student whose LMS number or full name (Canvas's "lastfirst" too) is on the roster
is graded under the roster's id.

Moodle numbers the participants of each assignment anew (a student is 1001 in one assignment
and 2077 in the next, and 1001 may then be someone else), so a Moodle download is matched by
the student's full name first; its participant number counts only where the download names no
one (blind marking: "Participant") or the roster gives that student no name, and then only for
the assignment whose numbers the roster holds. Canvas's user id and Blackboard's username are the
same in every assignment and are matched first.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RosterError", "RosterStudent", "from_gradebook", "read_roster"]

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")


class RosterError(Exception):
    """A roster that cannot be read (the message says which line and why)."""


@dataclass(frozen=True)
class RosterStudent:
    """One student of the class list."""

    student_id: str
    name: str = ""  # "Jane Doe"
    email: str = ""
    lms_id: str = ""


def _name(row: dict[str, str]) -> str:
    if row.get("name"):
        return row["name"].strip()
    return " ".join(p for p in (row.get("first_name", "").strip(), row.get("last_name", "").strip()) if p)


def read_roster(path: Path) -> list[RosterStudent]:
    """The students of the CSV file ``path`` (see the module docstring)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [h.strip().lower() for h in (reader.fieldnames or [])]
            id_column = "student_id" if "student_id" in fields else "id" if "id" in fields else None
            if id_column is None:
                raise RosterError(f"{path}: the header names no student_id (or id) column")
            students, seen = [], set()
            for line, raw in enumerate(reader, start=2):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
                sid = row.get(id_column, "")
                if not sid:
                    continue
                if not STUDENT_ID.match(sid):
                    raise RosterError(
                        f"{path}, line {line}: {sid[:80]!r} is no student id (letters, digits and _.@+- only)"
                    )
                if sid in seen:
                    raise RosterError(f"{path}, line {line}: {sid!r} is on the roster twice")
                seen.add(sid)
                lms_id = row.get("lms_user_id") or row.get("lms_id", "")
                students.append(RosterStudent(sid, _name(row), row.get("email", ""), lms_id))
    except OSError as exc:
        raise RosterError(f"cannot read the roster {path}: {exc.strerror or exc}") from None
    return students


def from_gradebook(db_url: str, course_id: str) -> list[RosterStudent]:
    """The students of nbgrader's students table in the gradebook ``db_url``."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id) as gb:
        return [
            RosterStudent(
                s.id,
                _name({"first_name": s.first_name or "", "last_name": s.last_name or ""}),
                s.email or "",
                s.lms_user_id or "",
            )
            for s in gb.students
        ]


def match(roster: list[RosterStudent], lms_number: str, lms_name: str, lms: str = "") -> RosterStudent | None:
    """The roster's student with this LMS number, or else with this full name (one only); for
    ``lms == "moodle"`` the full name first (see the module docstring)."""
    by_number = [r for r in roster if lms_number and r.lms_id and r.lms_id == lms_number][:1]
    if lms != "moodle" and by_number:
        return by_number[0]
    by_name = _by_name(roster, lms_name)
    if by_name is not None:
        return by_name
    if by_number and (lms_name.casefold() in BLIND_NAMES or not by_number[0].name):
        return by_number[0]
    return None


#: The name Moodle gives every student of a blind-marked assignment (English; the site's language).
BLIND_NAMES = {"", "participant"}


def _by_name(roster: list[RosterStudent], lms_name: str) -> RosterStudent | None:
    if lms_name and lms_name.casefold() not in BLIND_NAMES:
        named = [r for r in roster if r.name and r.name.casefold() == lms_name.casefold()]
        if not named:  # Canvas names files "lastfirst": doejane, or doe_jane
            named = [r for r in roster if r.name and _last_first(r.name) == _squash(lms_name)]
        if len(named) == 1:
            return named[0]
    return None


def _squash(text: str) -> str:
    """Letters only, lower case, accents dropped: "López" -> "lopez"."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return re.sub(r"[\W_\d]", "", plain.casefold())


def _last_first(name: str) -> str:
    """ "Jane Doe" -> "doejane", as Canvas writes it in a download's file names."""
    parts = name.split()
    return _squash("".join(parts[-1:] + parts[:-1]))
