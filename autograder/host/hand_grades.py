"""What the instructor graded by hand survives a regrade.

The grader replaces a student's submission in the gradebook each time it grades them again
(``--force``, a resubmission, a fixed test). Before it does, :func:`take` reads what only the
instructor can have written there, in the formgrader or with nbgrader's ``Gradebook`` API: every
manual score and extra credit, and every manual comment. :func:`put_back` writes them into the
new submission, cell by cell:

- a cell whose answer is the same as when it was graded keeps its score as it was;
- a cell whose answer changed since keeps the old score too, where the formgrader shows it, but
  is marked ``needs_manual_grade`` again (as stock ``nbgrader autograde`` marks every cell that
  had a manual score), so the formgrader lists it; saving a score there clears the mark.
  ``grades.csv`` does not count such a score (see :func:`standing`): its points are in
  ``to_grade_by_hand`` until the instructor has looked again, however often it is regraded;
- manual comments are always kept.

"The answer" is what the student wrote that the score judged: for an answer graded by hand (a
derivation, a question), the source of that cell; for a test cell whose automatic score the
instructor overrode, the sources of every answer cell of the notebook. The grader keeps a digest
of each (:func:`answer_digests`) with the student's state; where no digest of the earlier answer
is known, the answer counts as changed: a score is never kept as current on a guess.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.integration.metadata import nbgrader_meta

__all__ = ["HandGrades", "Restored", "answer_digests", "notebook_answers", "put_back", "stale", "standing", "take"]

#: The digests of one student's answers: notebook -> grade_id -> digest.
Answers = dict[str, dict[str, str]]


@dataclass(frozen=True)
class HandGrade:
    """A score the instructor gave one graded cell."""

    notebook: str
    cell: str
    manual_score: float | None
    extra_credit: float | None
    #: Already left to grade again (its answer changed after it was given): it stays so.
    stale: bool = False


@dataclass
class HandGrades:
    """Everything written by hand in one student's submission."""

    grades: list[HandGrade]
    #: (notebook, cell) -> manual comment
    comments: dict[tuple[str, str], str]


def answer_digests(path: Path) -> dict[str, str]:
    """grade_id -> digest of the cell's type and source, for each answer (solution) cell of the
    notebook at ``path``; {} when it cannot be read. Cells sharing an id share one digest."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return {}
    parts: dict[str, list[str]] = {}
    for cell in cells if isinstance(cells, list) else []:
        meta = nbgrader_meta(cell)
        if not isinstance(meta, dict) or not meta.get("solution") or not isinstance(meta.get("grade_id"), str):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        parts.setdefault(meta["grade_id"], []).append(json.dumps([cell.get("cell_type"), source]))
    return {gid: hashlib.sha256("\n".join(p).encode()).hexdigest() for gid, p in parts.items()}


def notebook_answers(folder: Path, notebooks: list[str]) -> Answers:
    """The digests of the answers in ``folder/<notebook>.ipynb``, for each notebook that exists."""
    return {nb: answer_digests(folder / f"{nb}.ipynb") for nb in notebooks if (folder / f"{nb}.ipynb").is_file()}


def take(gb: Any, assignment: str, student: str) -> HandGrades:
    """What was written by hand in the student's submission (nothing, if there is none)."""
    from nbgrader.api import MissingEntry

    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        return HandGrades([], {})
    grades = [
        HandGrade(nb.name, g.name, g.manual_score, g.extra_credit, stale(g))
        for nb in submission.notebooks
        for g in nb.grades
        if g.manual_score is not None or g.extra_credit is not None
    ]
    comments = {
        (nb.name, c.name): c.manual_comment for nb in submission.notebooks for c in nb.comments if c.manual_comment
    }
    return HandGrades(grades, comments)


def _unchanged(notebook: str, cell: str, manual: set[str], answers: Answers, before: Answers | None) -> bool:
    if before is None or notebook not in answers or notebook not in before:
        return False
    if cell in manual:
        return answers[notebook].get(cell) is not None and answers[notebook].get(cell) == before[notebook].get(cell)
    return answers[notebook] == before[notebook]


@dataclass
class Restored:
    """What :func:`put_back` did with the hand grades, by cell (``notebook/cell``)."""

    #: Kept, but left to grade again: the answer changed since.
    again: list[str]
    #: Not kept: the cell is no longer part of the assignment (with the score it had).
    dropped: list[str]


def put_back(submission: Any, hand: HandGrades, manual: set[str], answers: Answers, before: Answers | None) -> Restored:
    """Write ``hand`` into the new ``submission`` (its automatic scores already set): see the
    module docstring. ``answers`` are the digests of the answers just graded, ``before`` those
    of the answers the hand grades were given to (None: unknown)."""
    grades = {(nb.name, g.name): g for nb in submission.notebooks for g in nb.grades}
    comments = {(nb.name, c.name): c for nb in submission.notebooks for c in nb.comments}
    again, dropped = [], []
    for h in hand.grades:
        grade = grades.get((h.notebook, h.cell))
        if grade is None:  # the cell is no longer part of the assignment: say so
            dropped.append(f"{h.notebook}/{h.cell} ({h.manual_score} points by hand)")
            continue
        grade.manual_score, grade.extra_credit = h.manual_score, h.extra_credit
        if not h.stale and _unchanged(h.notebook, h.cell, manual, answers, before):
            grade.needs_manual_grade = h.manual_score is None and grade.auto_score is None
        else:
            grade.needs_manual_grade = True
            again.append(f"{h.notebook}/{h.cell}")
    for key, text in hand.comments.items():
        if key in comments:
            comments[key].manual_comment = text
        else:
            dropped.append(f"{key[0]}/{key[1]} (a comment)")
    return Restored(again, dropped)


def stale(grade: Any) -> bool:
    """Whether a gradebook Grade holds a hand grade given to an answer that changed since."""
    return bool(grade.needs_manual_grade) and grade.manual_score is not None


def standing(grade: Any) -> tuple[float, bool]:
    """(points that stand, whether the cell waits for a grade by hand) for a gradebook Grade.

    A :func:`stale` hand grade does not stand: the cell counts its automatic score (none for an
    answer graded by hand) until it is graded again.
    """
    if stale(grade):
        return float(grade.auto_score or 0.0), grade.auto_score is None
    return float(grade.score), bool(grade.needs_manual_grade and grade.manual_score is None)
