"""The lectures' questions with one right answer (``course/exercises/questions.py``).

- each question's exercise is registered and its expected value is the instructor's solution
  cell's, read from ``solutions/`` only (never stored in the library);
- the visible check judges the form of an answer alone: a right and a wrong answer of the
  right form both pass it, a wrong form fails it with a message saying which form is wanted;
- the hidden check passes the right answer and fails plausible wrong ones with a message that
  does not contain the right answer;
- the notebooks hold each question as a solution cell, a visible cell and a hidden cell with
  nbgrader's metadata; the release stubs the answer and holds no hidden check, and neither
  the release nor the student bundle holds an expected value.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.verdicts.cells import graded_cells
from course.exercises import REGISTRY, check, get
from course.exercises.base import NotImplementedYet, decode_outputs, encode_outputs, judge_case, run_case
from course.exercises.questions import Choice, Integer, QuestionExercise, expected_answer
from course.gradcheck import GradCheckError

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Asked:
    """One question: its exercise, the notebook, the right answer, and plausible wrong ones."""

    exercise: str
    notebook: str  # under solutions/ and notebooks/
    right: object
    wrong: tuple[object, ...]
    #: Points of its hidden cell (its visible cell has none: the form alone earns nothing).
    points: float = 1


QUESTIONS = [
    Asked("questions.xor", "01_neurons/neurons.ipynb", "c", ("a", "b", "d")),
    Asked("questions.one_pass", "02_graphs/graphs.ipynb", "b", ("a", "c")),
    # 4096 (one row), 8192 (counted the inputs and outputs), 4096**3
    Asked("questions.jacobian_entries", "02_graphs/graphs.ipynb", 4096 * 4096, (4096, 8192, 4096**3)),
    # all entries, none, a bidiagonal band
    Asked("questions.jacobian_nonzero", "02_graphs/graphs.ipynb", 4096, (4096 * 4096, 0, 2 * 4096 - 1)),
    Asked("questions.svm_scaled", "04_losses/losses.ipynb", "a", ("b", "c", "d")),
    Asked("questions.linear_stack", "07_mlp/mlp.ipynb", "c", ("a", "b", "d")),
]
IDS = [q.exercise for q in QUESTIONS]


def _variable(q: Asked) -> str:
    return get(q.exercise).question.variable


def _fails(name: str, answer: object, hidden: bool) -> str:
    with pytest.raises(GradCheckError) as info:
        check(name, answer, hidden=hidden, quiet=True)
    return str(info.value)


def _reveals(message: str, right: object) -> bool:
    """Whether ``message`` names the right answer: the quoted letter, or the number in any spelling."""
    if isinstance(right, str):
        return bool(re.search(rf"""["']{re.escape(right)}["']""", message))
    digits = re.sub(r"[,_ ]", "", message)
    return str(right) in digits or f"{right:.2e}" in message or f"{right:,}" in message


# ----------------------------------------------------------------------------------------
# The exercises
# ----------------------------------------------------------------------------------------


def test_every_question_exercise_is_listed_here():
    registered = {n for n, e in REGISTRY.items() if isinstance(e, QuestionExercise)}
    assert registered == set(IDS)
    assert all(n.startswith("questions.") for n in registered)


@pytest.mark.parametrize("q", QUESTIONS, ids=IDS)
def test_the_expected_value_is_the_instructors_solution_cell(q):
    assert expected_answer(get(q.exercise).question) == q.right


@pytest.mark.parametrize("q", QUESTIONS, ids=IDS)
def test_the_right_answer_passes_visible_and_hidden(q):
    for hidden in (False, True):
        verdicts = check(q.exercise, q.right, hidden=hidden, quiet=True)
        assert len(verdicts) == 1 and verdicts[0].passed


def test_a_choice_ignores_case_and_surrounding_spaces_and_numpy_ints_count():
    check("questions.xor", " C ", hidden=True, quiet=True)
    check("questions.jacobian_nonzero", np.int64(4096), hidden=True, quiet=True)


@pytest.mark.parametrize("q", QUESTIONS, ids=IDS)
def test_a_wrong_answer_of_the_right_form_passes_the_visible_check(q):
    """The visible check must not tell a right answer from a wrong one: that would give it away."""
    for wrong in q.wrong:
        assert check(q.exercise, wrong, quiet=True)[0].passed


@pytest.mark.parametrize("q", QUESTIONS, ids=IDS)
def test_a_plausible_wrong_answer_fails_the_hidden_check_without_naming_the_right_one(q):
    variable = _variable(q)
    for wrong in q.wrong:
        message = _fails(q.exercise, wrong, hidden=True)
        assert f"{variable} = {wrong!r} is not the right answer" in message
        assert get(q.exercise).hint in message
        assert not _reveals(message, q.right), message


@pytest.mark.parametrize("q", QUESTIONS, ids=IDS)
def test_no_hint_gives_the_answer_away(q):
    assert len(get(q.exercise).hint) > 40
    assert not _reveals(get(q.exercise).hint, q.right)


@pytest.mark.parametrize(
    ("name", "answer", "says"),
    [
        ("questions.xor", 3, 'should be one of "a", "b", "c", "d" (a string), got 3'),
        ("questions.xor", "XOR", "write just the letter of your choice"),
        ("questions.xor", ["c"], "got something else"),
        ("questions.xor", True, "got a bool"),
        ("questions.one_pass", "d", 'one of "a", "b", "c"'),
        ("questions.jacobian_entries", "16777216", "should be a whole number (an int), got '16777216'"),
        ("questions.jacobian_entries", 4096.0, "write 4096 rather than 4096.0"),
        ("questions.jacobian_entries", 2.5, "got 2.5"),
        ("questions.jacobian_entries", True, "got a bool"),
        ("questions.jacobian_nonzero", 2**70, "got something else"),
    ],
)
def test_a_wrong_form_fails_visible_and_hidden_with_the_form_wanted(name, answer, says):
    for hidden in (False, True):
        assert says in _fails(name, answer, hidden)


def test_an_answer_left_as_none_is_not_implemented_yet():
    for hidden in (False, True):
        with pytest.raises(NotImplementedYet, match="answer_xor is not implemented yet"):
            check("questions.xor", None, hidden=hidden)


def test_the_case_sent_to_the_students_process_carries_no_answer():
    """``cases`` crosses to the sandbox (arrays and config): nothing of the answer may be in it."""
    for q in QUESTIONS:
        for hidden in (False, True):
            (case,) = get(q.exercise).cases(np.random.default_rng(0), hidden)
            assert case.arrays == {} and case.config == {"hidden": hidden}


def test_the_answer_crosses_the_process_boundary_as_plain_numbers():
    """What ``run`` returns survives the grader's encoding (numeric .npy only) and is judged there."""
    exercise = get("questions.xor")
    (case,) = exercise.cases(np.random.default_rng(0), True)
    for answer, passed in [("c", True), ("a", False)]:
        encoded, problems = run_case(exercise, answer, case)
        assert not problems and all(not raw.startswith(b"!") for raw in encoded.values())
        assert judge_case(exercise, case, encoded, problems).passed is passed
    forged = decode_outputs(encode_outputs({"kind": np.array([1, 2])}))  # not what run writes
    assert not exercise.judge(case, forged).passed


def test_without_the_instructors_notebooks_the_value_cannot_be_found(tmp_path, monkeypatch):
    """The student edition has no solutions/: the library alone cannot say what is right."""
    monkeypatch.setenv("BACKPROP_SOLUTIONS", str(tmp_path))
    with pytest.raises(LookupError, match="checked when your work is graded"):
        check("questions.xor", "c", hidden=True)
    assert check("questions.xor", "c", quiet=True)[0].passed  # the visible check needs no answer


def test_the_library_holds_no_expected_value():
    exercises = [get(q.exercise) for q in QUESTIONS]
    for q, exercise in zip(QUESTIONS, exercises, strict=True):
        state = repr(vars(exercise))
        if isinstance(q.right, int):
            assert str(q.right) not in state
        else:
            assert isinstance(exercise.form, Choice) and q.right in exercise.form.options  # every option is there
    source = (ROOT / "course" / "exercises" / "questions.py").read_text()
    assert "16777216" not in source and "4096 * 4096" not in source
    # no answer line anywhere in the library, docstrings included (the student edition keeps them)
    library = {p: re.sub(r"\s+", "", p.read_text()) for p in (ROOT / "course").rglob("*.py")}
    for q in QUESTIONS:
        for line in answer_lines(q):
            squeezed = re.sub(r"\s+", "", line.split("#")[0])
            assert not [p for p, text in library.items() if squeezed in text], f"{line} is in the library"
    assert all(isinstance(get(q.exercise).form, Integer) == isinstance(q.right, int) for q in QUESTIONS)


# ----------------------------------------------------------------------------------------
# The notebooks
# ----------------------------------------------------------------------------------------


def _cells(folder: str, notebook: str) -> dict[str, nbformat.NotebookNode]:
    nb = nbformat.read(str(ROOT / folder / notebook), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


@pytest.mark.parametrize("q", QUESTIONS, ids=IDS)
def test_each_question_has_an_answer_cell_a_visible_and_a_hidden_check(q):
    variable = _variable(q)
    cells = _cells("solutions", q.notebook)
    answer = next(c for c in cells.values() if re.search(rf"^{variable} = None$", c.source, re.M))
    assert answer.cell_type == "code"
    meta = answer.metadata["nbgrader"]
    assert meta["solution"] and not meta["grade"] and not meta["locked"] and meta["schema_version"] == 3
    assert "### BEGIN SOLUTION" in answer.source and "### END SOLUTION" in answer.source
    graded = {g.grade_id: g for g in graded_cells(ROOT / "solutions" / q.notebook)}
    visible = [g for g in graded.values() if any(c.symbol == variable and not c.hidden for c in g.calls)]
    hidden = [g for g in graded.values() if any(c.symbol == variable and c.hidden for c in g.calls)]
    assert len(visible) == 1 and visible[0].points == 0, "the form alone earns nothing"
    assert hidden == [graded[f"hidden_{variable}"]] and hidden[0].points == q.points
    assert all(c.exercise == q.exercise for g in visible + hidden for c in g.calls if c.symbol == variable)
    for gid in (visible[0].grade_id, hidden[0].grade_id):
        meta = cells[gid].metadata["nbgrader"]
        assert meta["grade"] and meta["locked"] and not meta["solution"]
        assert cells[gid].source.startswith('"""Check')
    # the question is asked above, with the variable named and the form to write
    nb = nbformat.read(str(ROOT / "solutions" / q.notebook), as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c is answer or c.get("id") == answer.get("id"))
    assert nb.cells[at - 1].cell_type == "markdown" and f"`{variable}`" in nb.cells[at - 1].source


@pytest.mark.parametrize("q", QUESTIONS, ids=IDS)
def test_the_release_stubs_the_answer_and_runs_no_hidden_check(q):
    variable = _variable(q)
    released = _cells("notebooks", q.notebook)
    answer = next(c for c in released.values() if re.search(rf"^{variable} = None$", c.source, re.M))
    assert "raise NotImplementedError()" in answer.source
    assert len(re.findall(rf"^{variable} = ", answer.source, re.M)) == 1  # only the stub's None
    assert "check(" not in released[f"hidden_{variable}"].source
    text = (ROOT / "notebooks" / q.notebook).read_text()
    assert "hidden=True" not in text
    for line in answer_lines(q):
        assert line not in text, f"the answer leaked into notebooks/{q.notebook}: {line}"


def answer_lines(q: Asked) -> list[str]:
    """The instructor's answer as the solution cell writes it (what must never be released)."""
    source = next(
        c.source
        for c in _cells("solutions", q.notebook).values()
        if "### BEGIN SOLUTION" in c.source and re.search(rf"^{_variable(q)} = None$", c.source, re.M)
    )
    region = source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
    return [line.strip() for line in region.splitlines() if line.strip()]


def test_the_student_bundle_holds_no_expected_value():
    """``dist/student`` (``make release`` / ``make student``): no answer line in its notebooks, and
    the compiled library holds no expected number (tests/test_student_bundle.py builds it afresh
    and checks for solution regions in general)."""
    bundle = ROOT / "dist" / "student"
    wheels = list(bundle.glob("*.whl"))
    if not wheels:
        pytest.skip("no student bundle: run make release")
    for q in QUESTIONS:
        text = (bundle / q.notebook).read_text()
        for line in answer_lines(q):
            assert line not in text, f"dist/student/{q.notebook}: {line}"
    with zipfile.ZipFile(wheels[0]) as z:
        names = [n for n in z.namelist() if n.startswith("course/exercises/questions")]
        assert names and all(n.endswith(".so") for n in names), names
        blob = b"".join(z.read(n) for n in z.namelist())
    for q in QUESTIONS:
        if isinstance(q.right, int) and q.right > 9999:
            assert str(q.right).encode() not in blob  # as Cython would store a literal
