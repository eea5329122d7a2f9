"""The trusted engine in modules of one concept each (issue 14): the old names in
:mod:`autograder.verdicts.engine` are the objects at their new places, each module imports on
its own (no import cycle), and the plan of a grading run is made without a sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from test_engine import CORRECT, notebook

from autograder.verdicts import channel, checking, engine, plan, processes, record, render, runs, watch
from course.exercises import get

VERDICTS = Path(__file__).resolve().parent.parent / "autograder" / "verdicts"

#: The names engine.py had before the split, where they are now. The tests patch class
#: attributes through the old names (``engine._CheckRun.CELLS_CPU``): only the same object
#: makes such a patch reach the run that grade() starts.
OLD_NAMES = {
    "_Group": plan.Group,
    "_groups": plan.groups,
    "_CaseWatch": watch.CaseWatch,
    "WATCH_SECONDS": watch.WATCH_SECONDS,
    "_NotebookRun": runs.NotebookRun,
    "_private_dir": runs.private_dir,
    "INSIDE": runs.INSIDE,
    "_CheckRun": checking.CheckRun,
    "_json_default": channel.json_default,
    "_read_bytes": channel.read_bytes,
    "_read_json": channel.read_json,
    "_send": channel.send,
    "_receive": channel.receive,
    "_read_pipe": channel.read_pipe,
    "MAX_RESULT_BYTES": channel.MAX_RESULT_BYTES,
    "_holds": processes.holds,
    "_pid_namespace": processes.pid_namespace,
    "ExerciseOutcome": record.ExerciseOutcome,
    "CellVerdict": record.CellVerdict,
    "GradingRun": record.GradingRun,
    "flag_records": record.flag_records,
    "run_flags": record.run_flags,
    "_cell_verdict": record.cell_verdict,
    "DELEGATION": record.DELEGATION,
    "RECORD_KEY": record.RECORD_KEY,
    "RECORD_VERSION": record.RECORD_VERSION,
    "strip_hidden_tests": render.strip_hidden_tests,
    "_safe_outputs": render.safe_outputs,
    "_copy_outputs": render.copy_outputs,
    "_write_cell": render.write_cell,
    "_picture": render.picture,
    "OUTPUT_TYPES": render.OUTPUT_TYPES,
}


@pytest.mark.parametrize("name", sorted(OLD_NAMES))
def test_an_old_engine_name_is_the_object_at_its_new_place(name: str) -> None:
    assert getattr(engine, name) is OLD_NAMES[name]


def test_the_engine_grades_with_the_runs_of_its_modules() -> None:
    assert issubclass(checking.CheckRun, runs.NotebookRun)
    assert engine.grade.__globals__["CheckRun"] is engine._CheckRun
    assert engine.grade.__globals__["NotebookRun"] is engine._NotebookRun


def _verdicts_imports(path: Path) -> set[str]:
    """The modules of autograder/verdicts that ``path`` imports (anywhere in it)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "autograder.verdicts":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("autograder.verdicts."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("autograder.verdicts."))
    return found


def test_the_modules_of_the_engine_import_one_another_without_a_cycle() -> None:
    """A cycle breaks the import of whichever of its modules happens to come first."""
    graph = {p.stem: _verdicts_imports(p) for p in VERDICTS.glob("*.py") if p.stem != "__init__"}
    assert graph["engine"] >= {"plan", "runs", "checking", "render", "record"}, graph["engine"]
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for imported in sorted(graph.get(name, ())):
                visit(imported, (*path, name))
            done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_the_plan_draws_the_cases_of_each_graded_cell_and_refuses_the_cells_it_cannot_grade() -> None:
    nb = notebook(CORRECT)
    nb.cells[2].source = "x = 1"  # test_linear: not a check() call
    planned = plan.plan_checks(nb, np.random.default_rng(0))
    assert list(planned.refused) == ["test_linear"]
    assert planned.refused["test_linear"].startswith("this test cell cannot be graded: line 1")
    [cell] = planned.cells
    assert (cell.index, cell.grade_id) == (3, "hidden_linear")
    expected = get("layers.Linear.backward").cases(np.random.default_rng(0), True)
    assert [c.key for c in cell.checks] == [f"c3_0_{i}" for i in range(len(expected))]
    assert all(c.hidden and c.exercise is get("layers.Linear.backward") for c in cell.checks)
    assert [c.case.label for c in cell.checks] == [c.label for c in expected]
    assert [job["key"] for job, _ in planned.jobs] == [c.key for c in cell.checks]
    assert {job["symbol"] for job, _ in planned.jobs} == {"Linear"}


def test_an_unknown_exercise_is_refused_and_a_fault_of_the_grader_is_reported_as_such(monkeypatch) -> None:
    nb = notebook(CORRECT)
    nb.cells[2].source = 'check("layers.NoSuchLayer.backward", Linear)'
    exercise = get("layers.Linear.backward")

    def broken(rng, hidden):
        raise RuntimeError("no cases")

    monkeypatch.setattr(exercise, "cases", broken)
    planned = plan.plan_checks(nb, np.random.default_rng(0))
    assert planned.cells == [] and planned.jobs == []
    assert "cannot be graded" in planned.refused["test_linear"]
    assert planned.refused["hidden_linear"] == (
        "grader error while preparing this cell's checks (RuntimeError: no cases); please tell your instructor"
    )
