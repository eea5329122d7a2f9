"""Grades given by hand survive a regrade (``autograder/host/hand_grades.py``, ``pipeline._merge``).

The instructor's scores are set as the formgrader sets them, with nbgrader's ``Gradebook``
API (a manual score clears ``needs_manual_grade``). Most tests merge made-up automatic results
into a real course gradebook of ``04_losses`` (whose derivations and questions are worth points);
one slow test grades for real, with ``--force`` and after resubmissions.
"""

from __future__ import annotations

import copy
import csv
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import sandbox
from autograder.host import hand_grades, pipeline
from autograder.host.pipeline import Settings, grade
from autograder.host.submission import COURSE_ID, StudentResult
from autograder.sample_class import make_sample_class as sample

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT, NOTEBOOK = "04_losses", "losses"
RELEASE = ROOT / "notebooks" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
DERIVATION = "derivation_SoftmaxCrossEntropy"  # an answer graded by hand, 1 point
TEST_CELL = "test_losses_SoftmaxCrossEntropy_backward"  # an automatically graded test cell

needs_sandbox = pytest.mark.skipif(
    not sandbox.bubblewrap_available(),
    reason="grading needs the bubblewrap sandbox (Debian package 'bubblewrap'; CI installs it)",
)


def _on_path() -> None:
    # nbgrader's gradebook runs the `alembic` command installed beside this interpreter.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> Path:
    """A course gradebook with 04_losses in it and no submission."""
    _on_path()
    out = tmp_path_factory.mktemp("course") / "out"
    db = out / "gradebook.db"
    pipeline._prepare_course(Settings(ASSIGNMENT, out.parent, out, progress=None), f"sqlite:///{db}")
    return db


@pytest.fixture
def db_url(empty_gradebook, tmp_path) -> str:
    db = tmp_path / "gradebook.db"
    shutil.copyfile(empty_gradebook, db)
    return f"sqlite:///{db}"


def _release() -> nbformat.NotebookNode:
    return nbformat.read(str(RELEASE), as_version=4)


def _edited(nb: nbformat.NotebookNode, grade_id: str, text: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source += text
    return nb


def _answers(nb: nbformat.NotebookNode, tmp_path: Path) -> hand_grades.Answers:
    path = tmp_path / f"{NOTEBOOK}.ipynb"
    nbformat.write(nb, str(path))
    return {NOTEBOOK: hand_grades.answer_digests(path)}


def _result(points: float) -> StudentResult:
    """Every automatically graded cell scored ``points``."""
    cells = [m["grade_id"] for m in pipeline._graded_cells(ASSIGNMENT) if not m.get("solution")]
    return StudentResult("ann", graded=True, grades={NOTEBOOK: dict.fromkeys(cells, points)})


def _merge(db_url: str, answers, before, points: float = 0.0) -> list[str]:
    """Merge a made-up result; the cells whose hand grade is left to grade again."""
    manual = pipeline.manual_cells(ASSIGNMENT)
    restored = pipeline._merge(db_url, ASSIGNMENT, _result(points), [], manual, answers, before)
    assert restored.dropped == []
    return restored.again


def _grade_by_hand(db_url: str, cell: str, score: float, extra: float | None = None, comment: str | None = None):
    """What the formgrader does when the instructor saves a score (its GradeHandler.put)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, COURSE_ID) as gb:
        grade = gb.find_grade(cell, NOTEBOOK, ASSIGNMENT, "ann")
        grade.manual_score, grade.extra_credit = score, extra
        grade.needs_manual_grade = False
        if comment is not None:
            gb.find_comment(cell, NOTEBOOK, ASSIGNMENT, "ann").manual_comment = comment
        gb.db.commit()


def _grade(db_url: str, cell: str):
    from nbgrader.api import Gradebook

    with Gradebook(db_url, COURSE_ID) as gb:
        g = gb.find_grade(cell, NOTEBOOK, ASSIGNMENT, "ann")
        comment = gb.find_comment(cell, NOTEBOOK, ASSIGNMENT, "ann").manual_comment if cell in manual() else None
        return g.manual_score, g.extra_credit, g.needs_manual_grade, comment


def manual() -> set[str]:
    return pipeline.manual_cells(ASSIGNMENT)


def _row(db_url: str) -> pipeline.Row:
    state = pipeline._State(Path(db_url[len("sqlite:///") :]).parent / "state.json", ASSIGNMENT)
    _, rows = pipeline._read_rows(db_url, ASSIGNMENT, ["ann"], state)
    return rows[0]


def _manual_points() -> float:
    return sum(float(m["points"]) for m in pipeline._graded_cells(ASSIGNMENT) if m.get("solution"))


def test_a_regrade_of_the_same_answers_keeps_scores_extra_credit_and_comments(db_url, tmp_path):
    answers = _answers(_release(), tmp_path)
    _merge(db_url, answers, None, points=0.5)
    first = _row(db_url)
    assert first.to_grade_by_hand == _manual_points() > 1  # nothing graded by hand yet
    _grade_by_hand(db_url, DERIVATION, 1.0, extra=0.5, comment="Right, and neatly argued.")

    assert _merge(db_url, answers, answers, points=0.5) == []  # --force: the same answers
    assert _grade(db_url, DERIVATION) == (1.0, 0.5, False, "Right, and neatly argued.")
    row = _row(db_url)
    assert row.score == pytest.approx(first.score + 1.5)
    assert row.cells[DERIVATION] == 1.5
    assert row.to_grade_by_hand == _manual_points() - 1
    assert row.regrade_by_hand == [] and not row.flags


def test_an_answer_changed_since_keeps_its_old_score_visible_but_not_counted(db_url, tmp_path):
    before = _answers(_release(), tmp_path)
    _merge(db_url, before, None)
    _grade_by_hand(db_url, DERIVATION, 1.0, comment="Good.")
    counted = _row(db_url).score

    changed = _answers(_edited(_release(), DERIVATION, "\nOn second thoughts, dz = p - y."), tmp_path)
    assert changed[NOTEBOOK][DERIVATION] != before[NOTEBOOK][DERIVATION]
    assert _merge(db_url, changed, before) == [f"{NOTEBOOK}/{DERIVATION}"]
    assert _grade(db_url, DERIVATION) == (1.0, None, True, "Good.")  # kept, and listed by the formgrader
    row = _row(db_url)
    assert row.score == pytest.approx(counted - 1)  # not counted as if it were the new answer's
    assert row.cells[DERIVATION] == 0
    assert row.to_grade_by_hand == _manual_points()
    assert row.regrade_by_hand == [f"{NOTEBOOK}/{DERIVATION}"]
    assert row.flags == [f"graded by hand, changed since: {NOTEBOOK}/{DERIVATION} (left to grade again)"]

    # Regraded once more from the same (new) answer: still not graded for it, still listed.
    _merge(db_url, changed, changed)
    assert _grade(db_url, DERIVATION)[2] is True
    # The instructor grades it again in the formgrader: it counts, and a regrade keeps it.
    _grade_by_hand(db_url, DERIVATION, 0.5)
    _merge(db_url, changed, changed)
    assert _grade(db_url, DERIVATION) == (0.5, None, False, "Good.")
    assert _row(db_url).score == pytest.approx(counted - 0.5)


def test_a_changed_code_cell_elsewhere_keeps_the_hand_grade(db_url, tmp_path):
    release = _release()
    before = _answers(release, tmp_path)
    _merge(db_url, before, None)
    _grade_by_hand(db_url, DERIVATION, 1.0)
    code = _answers(_edited(release, "losses_SoftmaxCrossEntropy_backward", "\n# try again"), tmp_path)
    assert code != before
    assert _merge(db_url, code, before, points=1.0) == []
    assert _grade(db_url, DERIVATION)[:3] == (1.0, None, False)
    assert _row(db_url).cells[DERIVATION] == 1.0


def test_an_overridden_test_cell_is_kept_only_while_the_code_is_the_same(db_url, tmp_path):
    release = _release()
    before = _answers(release, tmp_path)
    _merge(db_url, before, None, points=0.0)
    _grade_by_hand(db_url, TEST_CELL, 1.0)  # the instructor gave the point the test did not
    assert _merge(db_url, before, before) == []
    assert _row(db_url).cells[TEST_CELL] == 1.0
    code = _answers(_edited(release, "losses_SoftmaxCrossEntropy_backward", "\n# try again"), tmp_path)
    assert _merge(db_url, code, before, points=0.0) == [f"{NOTEBOOK}/{TEST_CELL}"]
    row = _row(db_url)
    assert _grade(db_url, TEST_CELL)[:3] == (1.0, None, True)
    assert row.cells[TEST_CELL] == 0.0  # the automatic score of the new code stands
    assert row.to_grade_by_hand == _manual_points()  # an overridden test cell is no answer in words


def test_unknown_earlier_answers_count_as_changed(db_url, tmp_path):
    answers = _answers(_release(), tmp_path)
    _merge(db_url, answers, None)
    _grade_by_hand(db_url, DERIVATION, 1.0)
    assert _merge(db_url, answers, None) == [f"{NOTEBOOK}/{DERIVATION}"]
    assert _merge(db_url, {}, answers) == [f"{NOTEBOOK}/{DERIVATION}"]  # no notebook this time
    assert _grade(db_url, DERIVATION)[:3] == (1.0, None, True)


def test_answer_digests_follow_the_answers_not_the_outputs(tmp_path):
    nb = _release()
    path = tmp_path / "a.ipynb"
    nbformat.write(nb, str(path))
    digests = hand_grades.answer_digests(path)
    solutions = {c.metadata.nbgrader["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}
    assert set(digests) == solutions and manual() < solutions  # answers in words and code
    ran = copy.deepcopy(nb)
    for c in ran.cells:
        if c.cell_type == "code":
            c.execution_count, c.outputs = 7, [nbformat.v4.new_output("stream", text="hi\n")]
    nbformat.write(ran, str(path))
    assert hand_grades.answer_digests(path) == digests
    nbformat.write(_edited(nb, DERIVATION, " "), str(path))
    changed = hand_grades.answer_digests(path)
    assert [k for k in digests if changed[k] != digests[k]] == [DERIVATION]
    path.write_text("{not json")
    assert hand_grades.answer_digests(path) == {}


def test_the_run_summary_says_how_many_answers_to_grade_again():
    rows = [
        pipeline.Row("ann", 1, 5, {}, [], 2, ["losses/a", "losses/b"]),
        pipeline.Row("ben", 1, 5, {}, [], 0),
    ]
    text = pipeline.describe(pipeline.Summary(rows, [], Path("g.csv"), Path("r.html"), Path("fb"), 2, 0))
    assert "2 answers graded by hand changed since: left to grade again" in text
    assert "  ann: losses/a, losses/b" in text and "ben:" not in text
    quiet = pipeline.describe(pipeline.Summary(rows[1:], [], Path("g.csv"), Path("r.html"), Path("fb"), 1, 0))
    assert "graded by hand" not in quiet


# ----------------------------------------------------------------------------------------
# For real: grade, grade by hand, regrade with --force, resubmit
# ----------------------------------------------------------------------------------------


def _read(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


@pytest.mark.slow
@needs_sandbox
def test_grade_by_hand_then_regrade_for_real(tmp_path, capsys):
    from nbgrader.api import Gradebook

    subs, out = tmp_path / "submissions", tmp_path / "out"
    blank = sample.exercises_only(_release())
    for student in ("ann", "ben", "cat"):
        (subs / student).mkdir(parents=True)
        nbformat.write(blank, str(subs / student / f"{NOTEBOOK}.ipynb"))
    settings = Settings(ASSIGNMENT, subs, out, workers=2, progress=None)
    grade(settings)
    first = _read(out / "grades.csv")
    url = f"sqlite:///{out / 'gradebook.db'}"
    with Gradebook(url, COURSE_ID) as gb:
        for student in ("ann", "ben", "cat"):
            g = gb.find_grade(DERIVATION, NOTEBOOK, ASSIGNMENT, student)
            g.manual_score, g.needs_manual_grade = 1.0, False
        gb.db.commit()

    forced = grade(Settings(ASSIGNMENT, subs, out, workers=2, force=True, progress=None))
    assert forced.graded == 3
    again = _read(out / "grades.csv")
    for student in ("ann", "ben", "cat"):
        assert float(again[student]["score"]) == float(first[student]["score"]) + 1
        assert float(again[student][DERIVATION]) == 1
        assert float(again[student]["to_grade_by_hand"]) == float(first[student]["to_grade_by_hand"]) - 1

    # ben rewrites the derivation, cat only a code cell: only ben's is left to grade again.
    nbformat.write(_edited(blank, DERIVATION, "\nSee my notes."), str(subs / "ben" / f"{NOTEBOOK}.ipynb"))
    nbformat.write(
        _edited(blank, "losses_SoftmaxCrossEntropy_backward", "\n# later"), str(subs / "cat" / f"{NOTEBOOK}.ipynb")
    )
    resubmitted = grade(Settings(ASSIGNMENT, subs, out, workers=2, progress=None))
    assert resubmitted.graded >= 2  # ann too if the assignment's source changed meanwhile
    rows = _read(out / "grades.csv")
    for student in ("ann", "cat"):
        assert float(rows[student]["score"]) == float(again[student]["score"])
        assert float(rows[student][DERIVATION]) == 1 and "changed since" not in rows[student]["flags"]
    assert float(rows["ben"]["score"]) == float(first["ben"]["score"])
    assert float(rows["ben"]["to_grade_by_hand"]) == float(first["ben"]["to_grade_by_hand"])
    assert f"graded by hand, changed since: {NOTEBOOK}/{DERIVATION}" in rows["ben"]["flags"]
    text = pipeline.describe(resubmitted)
    assert "1 answer graded by hand changed since: left to grade again" in text
    assert f"  ben: {NOTEBOOK}/{DERIVATION}" in text
    with Gradebook(url, COURSE_ID) as gb:
        g = gb.find_grade(DERIVATION, NOTEBOOK, ASSIGNMENT, "ben")
        assert (g.manual_score, g.needs_manual_grade) == (1.0, True)  # kept for the formgrader


def test_exports_count_what_grades_csv_counts(db_url, tmp_path):
    from nbgrader.api import Gradebook

    from autograder.host.export import gather

    before = _answers(_release(), tmp_path)
    _merge(db_url, before, None, points=1.0)
    _grade_by_hand(db_url, DERIVATION, 1.0)
    with Gradebook(db_url, COURSE_ID) as gb:
        assert [line.score for line in gather(gb, [ASSIGNMENT])] == [_row(db_url).score]
    changed = _answers(_edited(_release(), DERIVATION, "\nNew idea."), tmp_path)
    _merge(db_url, changed, before, points=1.0)
    with Gradebook(db_url, COURSE_ID) as gb:
        assert [line.score for line in gather(gb, [ASSIGNMENT])] == [_row(db_url).score]
        assert gb.find_submission(ASSIGNMENT, "ann").score == _row(db_url).score + 1  # nbgrader's own sum


def test_a_hand_grade_in_a_cell_the_assignment_no_longer_has_is_named(db_url, tmp_path):
    from nbgrader.api import Gradebook

    answers = _answers(_release(), tmp_path)
    _merge(db_url, answers, None)
    _grade_by_hand(db_url, DERIVATION, 1.0, comment="Good.")
    with Gradebook(db_url, COURSE_ID) as gb:
        hand = hand_grades.take(gb, ASSIGNMENT, "ann")
        sub = gb.find_submission(ASSIGNMENT, "ann")
        renamed = hand_grades.HandGrades(
            [hand_grades.HandGrade(NOTEBOOK, "gone", 1.0, None)], {(NOTEBOOK, "gone"): "Good."}
        )
        restored = hand_grades.put_back(sub, renamed, manual(), answers, answers)
        gb.db.rollback()
    assert restored.again == []
    assert restored.dropped == [f"{NOTEBOOK}/gone (1.0 points by hand)", f"{NOTEBOOK}/gone (a comment)"]
    assert [g.cell for g in hand.grades] == [DERIVATION]
