"""Hidden test cells in the student release: a comment, not a bare docstring.

A hidden test cell of the instructor's notebook is a one-line docstring followed by the hidden
region::

    \"\"\"Check Linear.backward on random shapes and a large batch.\"\"\"
    ### BEGIN HIDDEN TESTS
    check("layers.Linear.backward", Linear, hidden=True)
    ### END HIDDEN TESTS

nbgrader's ``ClearHiddenTests`` leaves the docstring alone in the release, and a cell whose last
line is a string shows that string as its value. ``nbgrader validate`` then reads the value as a
partial grade and warns, for every such cell, that it "cannot be converted to a float". Here the
release cell says the same thing as a comment, which has no value::

    # Check Linear.backward on random shapes and a large batch.
    # (hidden tests: they run when your work is graded)

Only the release changes: the gradebook keeps the instructor's cell (``SaveCells`` runs before),
and autograding puts it back in place of the student's copy.
"""

from __future__ import annotations

import ast

from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

__all__ = ["ClearHiddenTestsToComment", "as_comment"]

NOTE = "# (hidden tests: they run when your work is graded)"


def as_comment(source: str) -> str | None:
    """``source`` as comment lines if it is nothing but a string expression (a docstring), else None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], ast.Expr):
        return None
    value = body[0].value
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
        return None
    text = [line.strip() for line in value.value.strip().splitlines()]
    return "\n".join([*(f"# {line}".rstrip() for line in text), NOTE])


class ClearHiddenTestsToComment(ClearHiddenTests):
    """``ClearHiddenTests`` that turns a test cell left with only its docstring into a comment."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict, cell_index: int) -> tuple[NotebookNode, dict]:
        had_hidden = self.begin_test_delimeter in cell.source
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if had_hidden and cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            comment = as_comment(cell.source)
            if comment is not None:
                cell.source = comment
        return cell, resources
