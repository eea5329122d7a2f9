"""Reading graded test cells: which exercise checks does a cell run, on which student name?

A graded test cell in an instructor's notebook holds a docstring and nothing but calls
``check("<exercise>", <Name>)`` / ``check("<exercise>", <Name>, hidden=True)``, possibly
between nbgrader's hidden-test markers. :func:`parse_test_cell` turns such a cell into a list
of :class:`CheckCall` and rejects anything else, because a statement the grader cannot
re-run outside the student's kernel could only be judged by that kernel.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from autograder.integration.metadata import nbgrader_meta

__all__ = ["CheckCall", "GradedCell", "graded_cells", "parse_test_cell"]

MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


@dataclass(frozen=True)
class CheckCall:
    exercise: str
    symbol: str
    hidden: bool


@dataclass(frozen=True)
class GradedCell:
    grade_id: str
    points: float
    calls: tuple[CheckCall, ...]


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if line.strip() not in MARKERS)


def _is_literal(node: ast.AST, kind: type) -> bool:
    value = getattr(node, "value", None)
    return isinstance(value, ast.Constant) and isinstance(value.value, kind)


def parse_test_cell(source: str) -> list[CheckCall]:
    """The check() calls of a graded test cell; ValueError for any other statement."""
    tree = ast.parse(_strip_markers(source))
    body = tree.body
    if body and _is_literal(body[0], str):
        body = body[1:]  # the "Check that ..." docstring
    calls = []
    for stmt in body:
        # Any: the shape of the call is checked node by node just below (ok).
        call: Any = stmt.value if isinstance(stmt, ast.Expr) else None
        ok = (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name | ast.Attribute)
            and (call.func.id if isinstance(call.func, ast.Name) else call.func.attr) == "check"
            and len(call.args) == 2
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
            and isinstance(call.args[1], ast.Name)
            and all(k.arg == "hidden" and _is_literal(k, bool) for k in call.keywords)
        )
        if not ok:
            raise ValueError(
                f"line {stmt.lineno}: a graded test cell may contain only a docstring and "
                f'check("<exercise>", <Name>[, hidden=True]) calls, got: {ast.unparse(stmt)[:80]}'
            )
        hidden = any(k.value.value for k in call.keywords)
        calls.append(CheckCall(call.args[0].value, call.args[1].id, hidden))
    if not calls:
        raise ValueError("a graded test cell must call check() at least once")
    return calls


def graded_cells(notebook: str | Path | nbformat.NotebookNode) -> list[GradedCell]:
    """Every graded test cell of an instructor notebook, in order, with its check() calls."""
    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(str(notebook), as_version=4)
    cells = []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        try:
            calls = parse_test_cell(cell.source)
        except (SyntaxError, ValueError) as exc:
            raise ValueError(f"graded cell {meta.get('grade_id')!r}: {exc}") from None
        cells.append(GradedCell(meta["grade_id"], float(meta.get("points", 0)), tuple(calls)))
    return cells
