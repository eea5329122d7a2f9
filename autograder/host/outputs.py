"""What a run shows the instructor: ``grades.csv``, the grade table, and their short forms.

A :class:`Row` is one student's line, read back from the gradebook
(:func:`autograder.host.gradebook.read_rows`); its flags are sentences here, the edge where
:class:`~autograder.host.flags.Flag` records become text. Student text (file names in flags)
is bounded and escaped (:func:`autograder.host.sanitize.printable`) wherever it is shown.
"""

from __future__ import annotations

import csv
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from autograder.host.private_files import private_opener
from autograder.host.sanitize import printable

__all__ = ["MAX_FLAG", "Row", "duration", "format_table", "name_list", "num", "write_csv"]

#: A flag is cut to this many characters in grades.csv and the report.
MAX_FLAG = 300


@dataclass
class Row:
    """One line of ``grades.csv``."""

    student: str
    score: float
    max_score: float
    cells: dict[str, float]
    flags: list[str]
    #: Points of manually graded answer cells (derivations, questions) not yet graded by hand,
    #: or changed since they were.
    to_grade_by_hand: float = 0.0
    #: The cells (``notebook/cell``) graded by hand whose answer changed since: left to grade again.
    regrade_by_hand: list[str] = field(default_factory=list)


def num(x: float) -> str:
    """A number as grades.csv writes it: ``18``, ``2.5``."""
    return f"{x:g}"


def name_list(names: list[str], limit: int = 5) -> str:
    """``names`` for a flag: the first ``limit``, printable, and how many more."""
    shown = ", ".join(printable(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``: for the progress line's ETA."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def write_csv(path: Path, assignment: str, cell_ids: list[str], rows: list[Row]) -> None:
    """``grades.csv`` (0600, replaced whole): one line per row, the points of each cell in ``cell_ids``."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", opener=private_opener) as f:
        w = csv.writer(f)
        w.writerow(["student_id", "assignment", "score", "max_score", "to_grade_by_hand", *cell_ids, "flags"])
        for r in rows:
            cells = [num(r.cells.get(c, 0.0)) for c in cell_ids]
            flags = "; ".join(printable(f, MAX_FLAG) for f in r.flags)
            w.writerow([r.student, assignment, num(r.score), num(r.max_score), num(r.to_grade_by_hand), *cells, flags])
    os.replace(tmp, path)


def format_table(rows: list[Row]) -> str:
    """The grade table printed at the end of a run."""
    width = max([len("student"), *(len(r.student) for r in rows)])
    lines = [f"{'student':<{width}}  {'score':>11}  flags"]
    for r in rows:
        score = f"{num(r.score)} / {num(r.max_score)}"
        lines.append(f"{r.student:<{width}}  {score:>11}  {printable('; '.join(r.flags), 103)}")
    if rows:
        scores = [r.score for r in rows]
        lines.append(
            f"{len(rows)} students: mean {statistics.mean(scores):.1f}, median {num(statistics.median(scores))} "
            f"of {num(rows[0].max_score)}"
        )
    return "\n".join(lines)
