"""The course's nbgrader configuration (autograder/nbgrader_config.py) with nbgrader's own commands.

No student code runs here: the feedback test writes the autograded notebook itself, as nbgrader's
autograde leaves it (the instructor's test cells in full, hidden tests included).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.host.pipeline import COURSE_CONFIG
from autograder.host.submission import leaks_hidden_tests

SECRET = "assert double(21) + 0 == 42  # the-secret-hidden-check"


def _meta(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False, points=None):
    meta = {"grade_id": grade_id, "grade": grade, "solution": solution, "locked": locked, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _source_notebook() -> nbformat.NotebookNode:
    answer = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    test = f"assert double(2) == 4\n### BEGIN HIDDEN TESTS\n{SECRET}\n### END HIDDEN TESTS\n"
    return new_notebook(
        cells=[
            new_markdown_cell("Write `double`.", metadata=_meta("intro", locked=True)),
            new_code_cell(answer, metadata=_meta("double", solution=True)),
            new_code_cell(test, metadata=_meta("test_double", grade=True, locked=True, points=1)),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


def _api(root: Path):
    """nbgrader's API on a course in ``root``, configured by the course's nbgrader_config.py
    exactly as `cd autograder && nbgrader ...` would be, but with its folders under ``root``."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader(COURSE_CONFIG.name, path=str(COURSE_CONFIG.parent)).load_config()
    over = Config()
    over.CourseDirectory.root = str(root)
    over.CourseDirectory.source_directory = "source"
    over.CourseDirectory.release_directory = "release"
    over.CourseDirectory.autograded_directory = "autograded"
    over.CourseDirectory.feedback_directory = "feedback"
    over.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    cfg.merge(over)
    return NbGraderAPI(CourseDirectory(config=cfg), config=cfg), cfg


def test_stock_generate_feedback_shows_no_hidden_tests(tmp_path):
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    api, cfg = _api(tmp_path)
    source = _source_notebook()
    (tmp_path / "source" / "ps1").mkdir(parents=True)
    nbformat.write(source, str(tmp_path / "source" / "ps1" / "double.ipynb"))
    generated = api.generate_assignment("ps1", force=True, create=True)
    assert generated["success"], generated.get("error") or generated.get("log")
    release = (tmp_path / "release" / "ps1" / "double.ipynb").read_text()
    assert "the-secret-hidden-check" not in release and "assert double(2) == 4" in release

    # What autograde leaves: the instructor's test cell restored in full, and the grades in the gradebook.
    autograded = tmp_path / "autograded" / "alice" / "ps1"
    autograded.mkdir(parents=True)
    nbformat.write(source, str(autograded / "double.ipynb"))
    with Gradebook(cfg.CourseDirectory.db_url, "backprop") as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's add_submission, under SQLAlchemy 2
        gb.update_or_create_student("alice")
        submission = gb.add_submission("ps1", "alice")
        for nb in submission.notebooks:
            for grade in nb.grades:
                grade.auto_score, grade.needs_manual_grade = 1.0, False
        gb.db.commit()

    feedback = api.generate_feedback("ps1", "alice", force=True)
    assert feedback["success"], feedback.get("error") or feedback.get("log")
    page = (tmp_path / "feedback" / "alice" / "ps1" / "double.html").read_text()
    assert "double" in page and "test_double" in page  # the graded cell is there ...
    assert "the-secret-hidden-check" not in page  # ... its hidden tests are not
    assert leaks_hidden_tests(page, ["BEGIN HIDDEN TESTS", "END HIDDEN TESTS", SECRET]) is None


def test_feedback_preprocessors_keep_nbgraders_defaults_in_order():
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import GenerateFeedback
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades

    _, cfg = _api(Path("/nonexistent"))
    default = GenerateFeedback.class_traits()["preprocessors"].default()
    assert default == [GetGrades, CSSHTMLHeaderPreprocessor]
    from autograder.host.sanitize import SanitizeNotebook
    from autograder.integration.preprocessors import FeedbackCells

    configured = cfg.GenerateFeedback.preprocessors
    assert configured == [FeedbackCells, GetGrades, ClearHiddenTests, SanitizeNotebook, CSSHTMLHeaderPreprocessor]
    assert [p for p in configured if p in default] == default


def test_a_deleted_graded_cell_is_not_put_back():
    """nbgrader's OverwriteCells.add_missing_cells would restore a deleted test cell and run it,
    so the student would earn its points; the course grades it 0 (and the grader flags it)."""
    from nbgrader.preprocessors import OverwriteCells

    _, cfg = _api(Path("/nonexistent"))
    assert OverwriteCells(config=cfg).add_missing_cells is False
