"""Where the grader reads and writes notebook metadata: nbgrader's per-cell fields and the
grading record this project adds to a graded notebook.

Every module that asks "is this a graded test cell?", "what is its grade id?" or "what did the
trusted run record?" asks here, so that the format nbgrader defines is read in one place.
Cells may be nbformat nodes or plain dicts from ``json.loads`` (a submission's file read
without nbformat): both work, and a malformed field reads as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["RECORD_KEY", "RECORD_VERSION", "grade_id", "is_graded", "is_solution", "is_test_cell", "nbgrader_meta"]

#: The notebook-level metadata key under which the trusted run records its outcome.
RECORD_KEY = "backprop_grading"
#: Version of that record (version 1, before typed flags, still reads).
RECORD_VERSION = 2


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    """The cell's ``metadata.nbgrader`` (empty when missing or not a mapping)."""
    metadata = cell.get("metadata", {}) if isinstance(cell, Mapping) else {}
    meta = metadata.get("nbgrader", {}) if isinstance(metadata, Mapping) else {}
    return meta if isinstance(meta, dict) else {}


def grade_id(cell: Any) -> str | None:
    """The cell's nbgrader ``grade_id``, if it has one (a string)."""
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def is_graded(cell: Any) -> bool:
    """Whether nbgrader gives the cell points (an autograded test or a manually graded answer)."""
    return bool(nbgrader_meta(cell).get("grade"))


def is_solution(cell: Any) -> bool:
    """Whether the cell is an answer cell (nbgrader ``solution``)."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_test_cell(cell: Any) -> bool:
    """A graded cell that is not an answer: an autograded test cell."""
    return is_graded(cell) and not is_solution(cell)
