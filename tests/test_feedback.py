"""Feedback a student can act on, and the class's mistakes in the report.

- a graded test cell is named by its exercises, in the page's contents and above the cell;
- a failed visible check shows its gradient-check picture, a hidden one never does, and no
  failure message shows an expected value;
- no ``In [ ]:`` prompts; tracebacks keep the student's own frames, not the library's;
- the grading record carries each exercise's recognised mistakes to the host, and
  :mod:`autograder.host.mistakes` turns a class's records into shares of the failing submissions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import nbgrader
import numpy as np
import pytest
import test_exercises_layers as layers
from nbconvert import HTMLExporter
from traitlets.config import PyFileConfigLoader

from autograder import sandbox
from autograder.host import mistakes
from autograder.host.pipeline import Settings, grade
from autograder.integration.preprocessors import FeedbackCells, graded_cell_title, student_traceback
from autograder.sample_class import make_sample_class as sample
from autograder.verdicts import engine
from course.exercises import get
from course.exercises.base import _seed, judge_case, run_case

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = sample.HERE / sample.ASSIGNMENT


def _verdicts(name: str, impl, hidden: bool) -> list:
    exercise = get(name)
    rng = np.random.default_rng(_seed(name, hidden))
    return [judge_case(exercise, c, *run_case(exercise, impl, c)) for c in exercise.cases(rng, hidden)]


def _graded_cell(source: str, grade_id: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": grade_id, "points": 1}
    return cell


# ----------------------------------------------------------------------------------------
# The graded cell's outputs
# ----------------------------------------------------------------------------------------


def test_a_failed_visible_check_shows_its_picture():
    verdicts = _verdicts("layers.Linear.backward", layers.LinearBiasNotSummed, hidden=False)
    cell = _graded_cell('check("layers.Linear.backward", Linear)', "test_linear")
    engine._write_cell(cell, engine._cell_verdict("test_linear", verdicts), verdicts, verdicts)
    kinds = [o.output_type for o in cell.outputs]
    assert kinds[0] == "error"
    pictures = [o for o in cell.outputs if o.output_type == "display_data"]
    assert len(pictures) == 1 and pictures[0].data["image/png"].startswith("iVBOR")  # a PNG, base64


def test_a_hidden_check_gets_no_picture_and_no_expected_values():
    verdicts = _verdicts("layers.Linear.backward", layers.LinearBiasNotSummed, hidden=True)
    cell = _graded_cell('check("layers.Linear.backward", Linear, hidden=True)', "hidden_linear")
    engine._write_cell(cell, engine._cell_verdict("hidden_linear", verdicts), verdicts, [])
    assert [o.output_type for o in cell.outputs] == ["error"]
    assert cell.metadata["backprop_title"] == "Linear.backward (hidden checks)"  # its name in the feedback
    text = cell.outputs[0].evalue
    assert "FAILED" in text and "expected" not in text and "yours" not in text


def test_the_record_carries_each_exercises_mistakes():
    verdicts = _verdicts("layers.Linear.backward", layers.LinearBiasNotSummed, hidden=False)
    cell_verdict = engine._cell_verdict("test_linear", verdicts)
    run = engine.GradingRun({"test_linear": cell_verdict}, "ok", True)
    outcomes = mistakes.read_record(run.record())
    assert [(o.exercise, o.passed) for o in outcomes] == [("Linear.backward", False)]
    assert "not summed over the batch" in outcomes[0].mistakes


# ----------------------------------------------------------------------------------------
# The feedback page
# ----------------------------------------------------------------------------------------


def test_a_test_cell_is_named_by_its_exercises():
    assert graded_cell_title('check("layers.Linear.backward", Linear)') == "Linear.backward"
    hidden = '### BEGIN HIDDEN TESTS\ncheck("layers.ReLU.backward", ReLU, hidden=True)\n### END HIDDEN TESTS'
    assert graded_cell_title(hidden) == "ReLU.backward (hidden checks)"
    assert graded_cell_title("print('not a check')") == ""


def test_library_frames_are_left_out_of_tracebacks():
    traceback = [
        "\x1b[0;31m-----\x1b[0m\n\x1b[0;31mValueError\x1b[0m   Traceback (most recent call last)",
        "Cell \x1b[0;32mIn[4], line 2\x1b[0m\n----> 2 layer.backward(g)",
        "File \x1b[0;32m/work/main/course/layers.py:88\x1b[0m, in \x1b[0;36mLinear.backward\x1b[0m",
        "File \x1b[0;32m/usr/lib/python3/numpy/core/fromnumeric.py:12\x1b[0m, in \x1b[0;36msum\x1b[0m",
        "\x1b[0;31mValueError\x1b[0m: shapes (3,4) and (5,) not aligned",
    ]
    kept = student_traceback(traceback)
    assert kept[0] == traceback[0] and kept[1] == traceback[1] and kept[-1] == traceback[-1]
    assert not any("course/layers.py" in k or "numpy" in k for k in kept)
    assert "2 frames inside the library left out" in kept[2]


def _feedback_html(nb: nbformat.NotebookNode) -> str:
    """The page as the course's GenerateFeedback configuration renders it (template and prompts)."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "autograder")).load_config()
    # as nbgrader's GenerateFeedback adds them: its template and where that finds bootstrap's CSS
    formgrader = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_basedirs = [str(formgrader / "templates")]
    css = formgrader / "static" / "node_modules" / "bootstrap" / "dist" / "css"
    config.HTMLExporter.extra_template_paths = [str(css)]
    exporter = config.GenerateFeedback.exporter_class(config=config)
    nb, _ = FeedbackCells().preprocess(nb, {})
    resources = {"nbgrader": {"notebook": "layers", "score": 0.0, "max_score": 1.0, "late_penalty": 0}}
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    return html


def test_the_feedback_page_names_test_cells_and_shows_no_prompts():
    nb = nbformat.v4.new_notebook()
    student = nbformat.v4.new_code_cell("x = 1")
    student.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello")]
    graded = _graded_cell('check("layers.Linear.backward", Linear)', "test_linear")
    graded.metadata.nbgrader.update(score=0.0)
    nb.cells = [student, graded]
    html = _feedback_html(nb)
    assert ">Linear.backward</a>" in html  # the contents list
    assert "Check of Linear.backward" in html  # above the cell
    assert ">Test cell<" not in html
    assert "In&nbsp;[" not in html and "In [" not in html


# ----------------------------------------------------------------------------------------
# The class's mistakes
# ----------------------------------------------------------------------------------------


def _record(student: str, *outcomes: tuple[str, bool, tuple[str, ...]]) -> mistakes.SubmissionRecord:
    return mistakes.SubmissionRecord(student, tuple(mistakes.Outcome(*o) for o in outcomes))


def test_shares_are_of_the_failing_submissions_per_exercise():
    records = [
        _record("a", ("Linear.backward", False, ("not summed over the batch",))),
        _record("b", ("Linear.backward", False, ("not summed over the batch", "wrong sign"))),
        _record("c", ("Linear.backward", False, ())),
        _record("d", ("Linear.backward", True, ())),
        # two cells of one exercise count once: failed if either failed
        _record("e", ("Linear.backward", True, ()), ("Linear.backward", False, ("wrong sign",))),
    ]
    (linear,) = mistakes.class_mistakes(records)
    assert (linear.submissions, linear.failing, linear.unrecognised) == (5, 4, 1)
    shares = {s.mistake: (s.count, s.share) for s in linear.shares}
    assert shares == {"not summed over the batch": (2, 0.5), "wrong sign": (2, 0.5)}
    page = mistakes.render([linear])
    assert "50 % not summed over the batch (2)" in page and "25 % not recognised (1)" in page


def test_a_malformed_record_is_skipped_not_raised():
    assert mistakes.read_record(None) == []
    assert mistakes.read_record({"cells": {"x": {"outcomes": [{"exercise": 3}, "junk", {"exercise": "E"}]}}}) == [
        mistakes.Outcome("E", False, ())
    ]


def test_the_report_section_escapes_names():
    summary = mistakes.class_mistakes([_record("a", ("<b>x</b>", False, ("<script>",)))])
    page = mistakes.render(summary)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_read_class_reads_the_autograded_notebooks(tmp_path):
    for student, failed in (("s1", True), ("s2", False)):
        folder = tmp_path / student / "03_layers"
        folder.mkdir(parents=True)
        nb = nbformat.v4.new_notebook()
        outcome = engine.ExerciseOutcome("ReLU.backward", not failed, ["wrong sign"] if failed else [])
        run = engine.GradingRun({"c": engine.CellVerdict("c", not failed, [], [outcome])}, "ok", True)
        nb.metadata[engine.RECORD_KEY] = run.record()
        nbformat.write(nb, str(folder / "layers.ipynb"))
    (relu,) = mistakes.class_mistakes(mistakes.read_class(tmp_path, "03_layers"))
    assert (relu.submissions, relu.failing, [s.mistake for s in relu.shares]) == (2, 1, ["wrong sign"])


# ----------------------------------------------------------------------------------------
# End to end: the sample class graded by `python -m autograder grade`
# ----------------------------------------------------------------------------------------

needs_sandbox = pytest.mark.skipif(not sandbox.bubblewrap_available(), reason="grading needs the bubblewrap sandbox")


@pytest.fixture(scope="module")
def graded_sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("feedback") / "out"
    students = tmp_path_factory.mktemp("submissions")
    for student in ("perfect", "buggy"):
        shutil.copytree(SAMPLE / student, students / student)
    grade(Settings(sample.ASSIGNMENT, students, out, workers=2, progress=None))
    return out


@pytest.mark.slow
@needs_sandbox
def test_the_buggy_students_feedback_and_the_class_report(graded_sample):
    out = graded_sample
    (page,) = (out / "feedback" / "buggy").glob("*.html")
    text = page.read_text()
    assert ">Test cell<" not in text and "Check of Linear.backward" in text
    assert "In&nbsp;[" not in text
    assert "data:image/png;base64" in text  # a failed visible check's picture
    assert "not summed over the batch" in text or "sum of their gradients" in text
    report = (out / "report.html").read_text()
    assert "<h2>Mistakes</h2>" in report
    assert "% not summed over the batch" in report


def test_the_formgrader_keeps_its_own_template():
    """The course's page is the feedback exporter's alone: set on HTMLExporter it replaced the
    formgrader's template as well, and opening a submission there failed with an error 500."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "autograder")).load_config()
    feedback = config.GenerateFeedback.exporter_class(config=config)
    assert feedback.template_file and feedback.template_file.endswith("feedback.html.j2")
    formgrader = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    config.HTMLExporter.template_name = "formgrade"  # what the formgrader sets, then renders with
    config.HTMLExporter.extra_template_basedirs = [str(formgrader / "templates")]
    assert not (HTMLExporter(config=config).template_file or "").endswith("feedback.html.j2")
