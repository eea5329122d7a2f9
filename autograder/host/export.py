"""Grades out: the import files of Canvas's and Moodle's gradebooks, from nbgrader's gradebook.

Three formats, each as its LMS documents the file it imports:

``canvas``
    Canvas's gradebook import CSV (Grades > Import), laid out as Canvas's own export: the header
    ``Student, ID, SIS User ID, SIS Login ID, Section, <assignment>``, then the
    ``Points Possible`` row, then one row per student. Canvas matches students by ``ID`` (its user
    id, the number in the download's file names), else by the SIS ids; it matches the
    assignment by the ``(id)`` in its column's header (``Layers (98765)``), else it creates an
    assignment of that name.
``moodle``
    Moodle's offline grading worksheet (Assignment > Upload grading worksheet): ``Identifier``
    (``Participant 1001``, the number in the download's folder names), ``Full name``,
    ``Email address``, ``Grade``, ``Maximum Grade``, ``Feedback comments``.
``moodle-gradebook``
    Moodle's gradebook CSV import (Grades > Import > CSV file): ``Email address``,
    ``ID number``, ``Full name`` and a column named after the grade item; map ``Email address``
    to ``useremail`` (or ``ID number`` to ``useridnumber``) there.

Each is an nbgrader export plugin (``nbgrader export --exporter=autograder.host.export.CanvasExport
--to FILE``) and ``python -m autograder export --to canvas|moodle|moodle-gradebook``. Every
student of the gradebook's students table gets a row (0 without a submission). The students'
LMS numbers come from ``lms_students.csv`` (written by ``grade``) or the table's ``lms_user_id``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin
from traitlets import Unicode

from autograder.host.hand_grades import standing
from autograder.host.lms import read_students

__all__ = ["CanvasExport", "ExportLine", "MoodleExport", "MoodleGradebookExport", "gather", "write"]

FORMATS = ("canvas", "moodle", "moodle-gradebook")
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
#: Canvas's export puts this, indented so, in the first column of its second row.
CANVAS_POINTS = "    Points Possible"
MOODLE_COLUMNS = ["Identifier", "Full name", "Email address", "Grade", "Maximum Grade", "Feedback comments"]


@dataclass(frozen=True)
class ExportLine:
    """One student's grade for one assignment, with what the LMS knows them by."""

    student_id: str
    assignment: str
    score: float
    max_score: float
    submitted: bool
    name: str = ""  # "Jane Doe"
    email: str = ""
    lms: str = ""  # "canvas", "moodle", "blackboard", or "" when unknown
    lms_number: str = ""


def _num(x: float) -> str:
    return f"{round(x, 4):g}"


def gather(gradebook: Gradebook, assignments: list[str], lms_students: Path | None = None) -> list[ExportLine]:
    """Every student of the gradebook's students table, for each of ``assignments`` (all when
    empty): their score (0 without a submission) and their LMS name and number."""
    mapping = read_students(lms_students) if lms_students else {}
    names = assignments or [a.name for a in gradebook.assignments]
    lines = []
    for name in names:
        assignment = gradebook.find_assignment(name)
        for student in gradebook.students:
            try:
                sub = gradebook.find_submission(name, student.id)
                # A score given by hand to an answer that changed since does not count (hand_grades).
                score, submitted = sum(standing(g)[0] for nb in sub.notebooks for g in nb.grades), True
            except MissingEntry:
                score, submitted = 0.0, False
            known = mapping.get(student.id)
            full = " ".join(p for p in (student.first_name, student.last_name) if p)
            lines.append(
                ExportLine(
                    student.id,
                    name,
                    score,
                    float(assignment.max_score),
                    submitted,
                    name=full or (known.lms_name if known else ""),
                    email=student.email or "",
                    lms=known.lms if known else ("" if not student.lms_user_id else "lms"),
                    lms_number=(known.lms_number if known else "") or (student.lms_user_id or ""),
                )
            )
    return lines


def _canvas(lines: list[ExportLine], columns: dict[str, str]) -> list[list[str]]:
    assignments = list(dict.fromkeys(line.assignment for line in lines))
    header = [*CANVAS_COLUMNS, *(columns.get(a, a) for a in assignments)]
    points = {line.assignment: line.max_score for line in lines}
    rows = [header, [CANVAS_POINTS, "", "", "", "", *(_num(points[a]) for a in assignments)]]
    by_student: dict[str, dict[str, ExportLine]] = {}
    for line in lines:
        by_student.setdefault(line.student_id, {})[line.assignment] = line
    for sid, mine in sorted(by_student.items()):
        first = next(iter(mine.values()))
        canvas_id = first.lms_number if first.lms in ("canvas", "lms") else ""
        sis = "" if canvas_id else sid
        rows.append([first.name or sid, canvas_id, sis, "", "", *(_num(mine[a].score) for a in assignments)])
    return rows


def _moodle(lines: list[ExportLine]) -> tuple[list[list[str]], list[str]]:
    rows, missing = [MOODLE_COLUMNS], []
    for line in sorted(lines, key=lambda x: x.student_id):
        if line.lms not in ("moodle", "lms") or not line.lms_number.isdigit():
            missing.append(line.student_id)
            continue
        comment = "" if line.submitted else "no submission"
        rows.append(
            [f"Participant {line.lms_number}", line.name, line.email, _num(line.score), _num(line.max_score), comment]
        )
    return rows, missing


def _moodle_gradebook(lines: list[ExportLine], item: str) -> list[list[str]]:
    rows = [["Email address", "ID number", "Full name", item]]
    for line in sorted(lines, key=lambda x: x.student_id):
        rows.append([line.email, line.student_id, line.name, _num(line.score)])
    return rows


def write(fmt: str, path: Path, lines: list[ExportLine], column: str = "") -> list[str]:
    """Write ``lines`` in the format ``fmt`` (one of :data:`FORMATS`) to ``path``; returns the
    students left out (Moodle's worksheet: those with no participant number)."""
    assignments = list(dict.fromkeys(line.assignment for line in lines))
    if fmt != "canvas" and len(assignments) > 1:
        raise ValueError(f"the {fmt} file holds one assignment; name it (--assignment)")
    left_out: list[str] = []
    if fmt == "canvas":
        rows = _canvas(lines, {assignments[0]: column} if column and len(assignments) == 1 else {})
    elif fmt == "moodle":
        rows, left_out = _moodle(lines)
    elif fmt == "moodle-gradebook":
        rows = _moodle_gradebook(lines, column or (assignments[0] if assignments else "grade"))
    else:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return left_out


class _LmsExport(ExportPlugin):
    """An nbgrader export plugin writing one of :data:`FORMATS`."""

    fmt = ""
    column = Unicode(
        "",
        help="The assignment's column header: for Canvas 'Name (id)' as Canvas's own export heads it "
        "(default: the assignment's name); for moodle-gradebook the grade item's name.",
    ).tag(config=True)
    lms_students = Unicode(
        "lms_students.csv", help="The students' LMS names and numbers, as `python -m autograder grade` writes them."
    ).tag(config=True)

    def export(self, gradebook: Gradebook) -> None:
        dest = Path(self.to or f"{self.fmt}_grades.csv")
        lines = gather(gradebook, [str(a) for a in self.assignment], Path(self.lms_students))
        if self.student:
            wanted = {str(s) for s in self.student}
            lines = [line for line in lines if line.student_id in wanted]
        left_out = write(self.fmt, dest, lines, self.column)
        self.log.info("Exported %d grade(s) to %s (%s)", len(lines) - len(left_out), dest, self.fmt)
        if left_out:
            self.log.warning("Left out, with no LMS number for this format: %s", ", ".join(left_out))


class CanvasExport(_LmsExport):
    """Canvas's gradebook import CSV."""

    fmt = "canvas"


class MoodleExport(_LmsExport):
    """Moodle's offline grading worksheet."""

    fmt = "moodle"


class MoodleGradebookExport(_LmsExport):
    """Moodle's gradebook CSV import."""

    fmt = "moodle-gradebook"


PLUGINS = {"canvas": CanvasExport, "moodle": MoodleExport, "moodle-gradebook": MoodleGradebookExport}
