"""The course notebooks: the instructor sources in solutions/ and the student release in notebooks/.

nbval runs every solution notebook and compares its outputs (``make test``); these tests
cover the rest: the release is generated, up to date and clean, the student copy fails only at
its stubs, and every graded test cell is a check the autograder can re-run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.preprocessors import ClearSolutions

from autograder.verdicts.cells import graded_cells
from course.exercises import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted(ROOT.glob("solutions/[0-9]*/*.ipynb"))
ASSIGNMENTS = [p.parent.name for p in SOLUTIONS]
STUB = "raise NotImplementedError()"
NBGRADER = str(Path(sys.executable).with_name("nbgrader"))


def release_of(source: Path) -> Path:
    return ROOT / "notebooks" / source.parent.name / source.name


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


def errors(nb: nbformat.NotebookNode) -> list[tuple[int, str, str]]:
    """(cell index, exception name, message) for every cell that raised."""
    return [
        (i, out.get("ename", ""), out.get("evalue", ""))
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


def test_there_are_seven_assignments_in_lecture_order():
    assert ASSIGNMENTS == [
        "01_neurons",
        "02_graphs",
        "03_layers",
        "04_losses",
        "05_gradcheck",
        "06_optim",
        "07_mlp",
    ]


@pytest.mark.parametrize("source", SOLUTIONS, ids=ASSIGNMENTS)
def test_graded_cells_are_rerunnable_checks(source):
    """Check that every graded test cell only calls check() on catalogue exercises, each
    exercise has a visible and a hidden cell, and grade ids are unique."""
    nb = read(source)
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c).get("grade_id")]
    assert len(ids) == len(set(ids)), f"duplicate grade ids in {source.name}"
    cells = graded_cells(nb)
    assert cells, f"{source.name} has no graded cells"
    seen: dict[str, set[bool]] = {}
    for cell in cells:
        form_only = all(c.exercise.startswith("questions.") and not c.hidden for c in cell.calls)
        assert cell.points > 0 or form_only, f"{cell.grade_id} carries no points"  # a question's form earns none
        for call in cell.calls:
            assert call.exercise in REGISTRY, f"{cell.grade_id} checks unknown exercise {call.exercise!r}"
            seen.setdefault(call.exercise, set()).add(call.hidden)
    for exercise, kinds in seen.items():
        assert kinds == {False, True}, f"{exercise} needs both a visible and a hidden check in {source.name}"


def test_at_least_twenty_graded_backward_style_exercises():
    used = {call.exercise for source in SOLUTIONS for cell in graded_cells(source) for call in cell.calls}
    assert used <= set(REGISTRY)
    assert len(used) >= 20, sorted(used)
    assert set(REGISTRY) <= used, f"registered but never graded: {sorted(set(REGISTRY) - used)}"


@pytest.mark.parametrize("source", SOLUTIONS, ids=ASSIGNMENTS)
def test_release_holds_no_solutions_hidden_tests_or_outputs(source):
    release = read(release_of(source))
    text = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True"):
        assert marker not in text, f"{marker!r} leaked into the student release"
    for cell in release.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "the release must hold no outputs"
        if nbgrader_meta(cell).get("solution") and cell.cell_type == "code":
            assert STUB in cell.source
    # No solution body survives: every line between the markers in the source is gone.
    solution_lines, given_lines = set(), set()
    for cell in read(source).cells:
        inside = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, flags=re.S)
        solution_lines |= {ln.strip() for block in inside for ln in block.splitlines() if len(ln.strip()) > 12}
        outside = re.sub(r"### BEGIN SOLUTION\n.*?### END SOLUTION", "", cell.source, flags=re.S)
        given_lines |= {ln.strip() for ln in outside.splitlines()}
    solution_lines -= given_lines  # a line the notebook also gives away elsewhere is no leak
    release_lines = {ln.strip() for c in release.cells for ln in c.source.splitlines()}
    assert not (solution_lines & release_lines), sorted(solution_lines & release_lines)[:3]


@pytest.mark.slow
def test_release_is_up_to_date(tmp_path):
    """Check that notebooks/ is exactly what `make release` generates from solutions/."""
    for name in ASSIGNMENTS:
        subprocess.run(
            [
                NBGRADER,
                "generate_assignment",
                name,
                "--force",
                "--no-db",
                "--log-level=ERROR",
                f"--CourseDirectory.root={tmp_path}",
                f"--CourseDirectory.source_directory={ROOT / 'solutions'}",
                "--CourseDirectory.release_directory=release",
            ],
            cwd=ROOT / "autograder",
            check=True,
            capture_output=True,
            timeout=300,
        )
    for source in SOLUTIONS:
        fresh = read(tmp_path / "release" / source.parent.name / source.name)
        committed = read(release_of(source))
        assert [(c.cell_type, c.source, c.metadata) for c in fresh.cells] == [
            (c.cell_type, c.source, c.metadata) for c in committed.cells
        ], f"notebooks/{source.parent.name} is out of date: run `make release`"


@pytest.mark.slow
@pytest.mark.parametrize("source", SOLUTIONS, ids=ASSIGNMENTS)
def test_student_notebook_fails_only_at_its_stubs(source):
    """Check that the student copy runs top to bottom and every failure is NotImplementedError."""
    release = release_of(source)
    nb = execute(read(release), release.parent)
    found = errors(nb)
    assert found, "the student notebook should fail at its stubs"
    # NotImplementedYet: a check() of an exercise whose stub is still there (a NotImplementedError).
    others = [(i, name, msg) for i, name, msg in found if name not in ("NotImplementedError", "NotImplementedYet")]
    assert not others, f"failures other than NotImplementedError: {others}"
    failed_cells = {i for i, _, _ in found}
    for i, cell in enumerate(nb.cells):
        if nbgrader_meta(cell).get("grade") and cell.cell_type == "code" and "check(" in cell.source:
            assert i in failed_cells, f"visible test {nbgrader_meta(cell)['grade_id']} passes on a stub"


@pytest.mark.slow
@pytest.mark.parametrize("source", SOLUTIONS, ids=ASSIGNMENTS)
def test_every_visible_and_hidden_test_fails_on_stubs(source):
    """Check that with the solutions cleared but the hidden tests kept, every graded cell fails."""
    nb = read(source)
    for cell in nb.cells:
        cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs")
    clear = ClearSolutions(code_stub={"python": f"# YOUR CODE HERE\n{STUB}"}, enforce_metadata=True)
    nb, _ = clear.preprocess(nb, {"language": "python"})
    nb = execute(nb, source.parent)
    failed = {i for i, _, _ in errors(nb)}
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            assert i in failed, f"graded cell {meta['grade_id']} passes with the solutions removed"
