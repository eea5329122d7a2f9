"""Generate the bundled sample class from the student release.

    python autograder/sample_class/make_sample_class.py           # rewrite the sample class
    python autograder/sample_class/make_sample_class.py --check   # exit 1 if it is out of date

Six students hand in ``notebooks/03_layers/layers.ipynb``:

``perfect``         every solution filled in (the instructor's);
``blank``           the release as it is;
``partial``         Linear, Sigmoid and Tanh right, the rest untouched;
``buggy``           honest, plausible mistakes: a 1/N that does not belong in dL/dW, a sign
                    error, ``W.grad =`` instead of ``+=``, a Sequential that runs forwards;
                    Tanh and ReLU right;
``cheater_rebind``  wrong answers, plus a cell that rebinds ``check``, ``np.allclose`` and
                    the checker's judge so that every test cell prints "passed";
``cheater_snoop``   looks for the instructor's solutions and the gradebook (copies the one,
                    writes ``extra_credit`` into the other) and otherwise delegates to the
                    library's ``backward`` with ``super()``.

With stock nbgrader both cheaters earn full marks; graded by ``python -m autograder`` they
must earn no more than ``buggy``. The helpers here (:func:`solution_bodies`, :func:`fill`,
:func:`make_notebook`, :func:`exercises_only`) also build the hostile submissions of the test suite.
"""

from __future__ import annotations

import argparse
import copy
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ASSIGNMENT = "03_layers"
NOTEBOOK = "layers"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"

#: An answer for a solution cell: "solution" (the instructor's), None (leave the stub), a
#: body for its one region, or a list with one entry per region (None keeps that stub).
Answer = str | None | Sequence[str | None]


def solution_bodies(source: str) -> list[str]:
    """The dedented code between each BEGIN/END SOLUTION pair of an instructor's cell."""
    bodies: list[str] = []
    current: list[str] | None = None
    for line in source.splitlines():
        if line.strip() == BEGIN:
            current = []
        elif line.strip() == END and current is not None:
            bodies.append(textwrap.dedent("\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return bodies


def fill(release_source: str, bodies: Sequence[str | None]) -> str:
    """Replace the i-th ``# YOUR CODE HERE / raise NotImplementedError()`` stub by ``bodies[i]``,
    indented like the stub (``None`` keeps the stub)."""
    lines, out, k, i = release_source.splitlines(), [], 0, 0
    while i < len(lines):
        line = lines[i]
        is_stub = line.strip() == STUB[0] and i + 1 < len(lines) and lines[i + 1].strip() == STUB[1]
        if is_stub:
            body = bodies[k] if k < len(bodies) else None
            k += 1
            if body is not None:
                indent = line[: len(line) - len(line.lstrip())]
                out.extend(textwrap.indent(textwrap.dedent(body).strip("\n"), indent, lambda _: True).splitlines())
                i += 2
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def make_notebook(
    release: nbformat.NotebookNode,
    source: nbformat.NotebookNode,
    answers: Mapping[str, Answer],
    *,
    extra_cells: Sequence[tuple[str, str]] = (),
) -> nbformat.NotebookNode:
    """A student's notebook: the release with ``answers`` (grade id -> :data:`Answer`) filled
    into the solution cells, and ``extra_cells`` ((where, code)) inserted as new code cells.
    ``where`` is ``"start"`` (after the first code cell, the imports), ``"end"``, or a grade id
    (after that cell)."""
    nb = copy.deepcopy(release)
    instructor = {_grade_id(c): c for c in source.cells if _grade_id(c)}
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid is None or gid not in answers:
            continue
        answer = answers[gid]
        if answer == "solution":
            bodies: Sequence[str | None] = solution_bodies(instructor[gid].source)
        elif answer is None or isinstance(answer, str):
            bodies = [answer]
        else:
            bodies = answer
        cell.source = fill(cell.source, bodies)
    for k, (where, code) in enumerate(extra_cells):
        new = nbformat.v4.new_code_cell(textwrap.dedent(code).strip("\n"))
        new.id = f"student-cell-{k}"  # stable, so that regenerating changes nothing
        if where == "end":
            nb.cells.append(new)
            continue
        if where == "start":
            index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        else:
            index = next(i for i, c in enumerate(nb.cells) if _grade_id(c) == where)
        nb.cells.insert(index + 1, new)
    return nb


def exercises_only(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook cut down to its first code cell (the imports) and its nbgrader cells: what
    is graded, without the lecture's demonstrations (quicker to grade, for tests)."""
    nb = copy.deepcopy(nb)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = [c for i, c in enumerate(nb.cells) if i == first or c.get("metadata", {}).get("nbgrader")]
    return nb


# ----------------------------------------------------------------------------------------
# The six students of 03_layers
# ----------------------------------------------------------------------------------------

EXERCISES = ["Linear", "Sigmoid", "Tanh", "ReLU", "LinearSigmoid", "Sequential"]
ALL: dict[str, Answer] = {f"layers_{name}_backward": "solution" for name in EXERCISES}

BUGGY: dict[str, Answer] = {
    # dL/dW divided by the batch size, as if the layer averaged over the batch
    "layers_Linear_backward": """
        self.W.grad += self.x.T @ grad_out / len(self.x)
        self.b.grad += grad_out.sum(axis=0)
        return grad_out @ self.W.data.T
    """,
    # sign error: sigma' = sigma (1 - sigma), not sigma (sigma - 1)
    "layers_Sigmoid_backward": "return grad_out * self.y * (self.y - 1.0)",
    "layers_Tanh_backward": "return grad_out * (1.0 - self.y**2)",
    "layers_ReLU_backward": "return np.where(self.x > 0, grad_out, 0.0)",
    # W.grad overwritten instead of accumulated
    "layers_LinearSigmoid_backward": """
        dz = grad_out * self.y * (1.0 - self.y)
        self.W.grad = self.x.T @ dz
        if self.b is not None:
            self.b.grad += dz.sum(axis=0)
        return dz @ self.W.data.T
    """,
    # the layers walked in forward order
    "layers_Sequential_backward": """
        for layer in self.layers:
            grad_out = layer.backward(grad_out)
        return grad_out
    """,
}

WRONG: dict[str, Answer] = {f"layers_{name}_backward": "return grad_out" for name in EXERCISES}

REBIND = """
# Make every check pass, whatever the code does.
import builtins

import numpy as np

import course.exercises
import course.exercises.base

np.allclose = lambda *args, **kwargs: True
course.exercises.base.judge_case = lambda exercise, case, *args: exercise.verdict(case)


def check(name, student, *, hidden=False, **kwargs):
    print(f"✓ {name}: all {'hidden ' if hidden else ''}case(s) passed")


course.exercises.check = course.exercises.base.check = builtins.check = check
"""

SNOOP = """
# Look for the instructor's solutions and the gradebook next to the course library.
import json
import pathlib
import sqlite3

import course

places = [pathlib.Path(course.__file__).resolve().parents[1], pathlib.Path.cwd(), *pathlib.Path.cwd().parents]
stolen = 0
for place in places[:6]:
    for path in list(place.glob("solutions/03_layers/*.ipynb")) + list(place.glob("*/source/03_layers/*.ipynb")):
        try:
            cells = json.loads(path.read_text())["cells"]
        except (OSError, ValueError):
            continue
        for cell in cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution") and cell["cell_type"] == "code":
                exec("".join(cell["source"]), globals())
                stolen += 1
    for db in place.glob("**/gradebook.db"):
        try:
            with sqlite3.connect(db) as con:
                con.execute("UPDATE grade SET extra_credit = 100")
        except sqlite3.Error:
            pass
print(f"solution cells found: {stolen}")
"""

DELEGATE: dict[str, Answer] = {f"layers_{name}_backward": "return super().backward(grad_out)" for name in EXERCISES}


def students() -> dict[str, tuple[dict[str, Answer], list[tuple[str, str]]]]:
    """student id -> (answers, extra cells)."""
    return {
        "perfect": (ALL, []),
        "blank": ({}, []),
        "partial": ({k: v for k, v in ALL.items() if k.split("_")[1] in {"Linear", "Sigmoid", "Tanh"}}, []),
        "buggy": (BUGGY, []),
        "cheater_rebind": (WRONG, [("start", REBIND)]),
        # after the last solution cell, so that stolen solutions replace the delegating ones
        "cheater_snoop": (DELEGATE, [("hidden_layers_Sequential_backward", SNOOP)]),
    }


def build(release_dir: Path, dest: Path) -> list[Path]:
    """Write the sample class for the release notebooks in ``release_dir`` into ``dest``."""
    release = nbformat.read(str(release_dir / f"{NOTEBOOK}.ipynb"), as_version=4)
    source = nbformat.read(str(ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"), as_version=4)
    written = []
    for student, (answers, extra) in students().items():
        nb = make_notebook(release, source, answers, extra_cells=extra)
        path = dest / student / f"{NOTEBOOK}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the bundled class is out of date")
    parser.add_argument(
        "--release",
        type=Path,
        default=ROOT / "notebooks" / ASSIGNMENT,
        help=f"folder of the release notebooks (default: notebooks/{ASSIGNMENT})",
    )
    args = parser.parse_args(argv)
    dest = HERE / ASSIGNMENT
    if not args.check:
        for path in build(args.release, dest):
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        stale = [
            p.relative_to(tmp)
            for p in build(args.release, Path(tmp))
            if not (dest / p.relative_to(tmp)).is_file() or (dest / p.relative_to(tmp)).read_text() != p.read_text()
        ]
    for p in stale:
        print(f"out of date: {ASSIGNMENT}/{p} (run {Path(__file__).relative_to(ROOT)})", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
