"""Questions with one right answer: a number or a choice, written into a variable.

The lectures ask a few questions whose answer is a single value: how many entries the
Jacobian of a 4096-wide ReLU layer has, which Boolean function one perceptron cannot learn.
The student writes the answer into a variable (``answer_xor = "<letter>"``) and the check is an
:class:`Exercise` like every other:

- the visible check looks only at the *form* of the answer (an int; one of ``"a"``..``"d"``),
  so that a typo is caught before grading without giving the answer away;
- the hidden check also compares the value with the instructor's, and a wrong answer gets a
  hint that does not name the right one.

The expected values are **not** in this module, nor anywhere in the library: the student
edition of ``course`` ships every module compiled, and module data is readable from it. They
are read, in the trusted grading process only, from the instructor's solution cell that binds
the variable (``solutions/<assignment>/<notebook>.ipynb``, inside nbgrader's solution
markers, which the release replaces by a stub). The release, the student bundle and the
sandbox of the grader's checking run hold no copy of them.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .exercise import Exercise
from .records import Case, Verdict
from .registry import register

__all__ = ["Choice", "Integer", "QuestionExercise", "expected_answer", "solutions_folder"]

#: What :meth:`QuestionExercise.run` reports the student's value to be (sent as a number).
KIND_MISSING, KIND_BOOL, KIND_INT, KIND_FLOAT, KIND_STR, KIND_OTHER = range(6)
#: The longest string answer sent back (the options are single letters).
MAX_TEXT = 200
#: Where the instructor's notebooks are, if not in ``solutions/`` beside the package.
SOLUTIONS_ENV = "BACKPROP_SOLUTIONS"


@dataclass(frozen=True)
class Integer:
    """The answer is a whole number (a Python ``int`` or a NumPy integer, not a bool)."""

    def describe(self) -> str:
        return "a whole number (an int)"


@dataclass(frozen=True)
class Choice:
    """The answer is the letter of one option, e.g. ``"b"`` (case and surrounding spaces ignored)."""

    options: tuple[str, ...] = ("a", "b", "c", "d")

    def describe(self) -> str:
        return "one of " + ", ".join(f'"{o}"' for o in self.options) + " (a string)"


@dataclass(frozen=True)
class Question:
    """Where the instructor's answer is: the solution cell of ``notebook`` that binds ``variable``."""

    notebook: str  # "01_neurons/neurons.ipynb", under the solutions folder
    variable: str  # "answer_xor"


def solutions_folder() -> Path:
    """The instructor's notebooks: ``$BACKPROP_SOLUTIONS``, else ``solutions/`` beside the package."""
    env = os.environ.get(SOLUTIONS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "solutions"


def expected_answer(question: Question) -> Any:
    """The value the instructor's solution cell binds to ``question.variable`` (the last binding
    of a solution cell, a literal). LookupError when the instructor's notebook is not here (in
    the student edition of the library it never is)."""
    path = solutions_folder() / question.notebook
    if not path.is_file():
        raise LookupError(
            f"the expected value of {question.variable} is the instructor's, read from solutions/"
            f"{question.notebook}, which is not in this copy of the course (it is checked when your work is graded)"
        )
    found: list[Any] = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not meta.get("solution"):
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for stmt in ast.parse(source).body:
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == question.variable for t in stmt.targets
            ):
                found.append(ast.literal_eval(stmt.value))
    found = [v for v in found if v is not None]  # the stub's `answer = None` before the markers
    if not found:
        raise LookupError(f"no solution cell of solutions/{question.notebook} binds {question.variable}")
    return found[-1]


def _shown(kind: int, value: Any) -> str:
    """The student's answer as they wrote it, for a message (it is theirs: safe to show)."""
    if kind in (KIND_STR, KIND_INT, KIND_FLOAT):
        return repr(value)
    return {KIND_BOOL: "a bool", KIND_OTHER: "something else"}.get(kind, "nothing")


class QuestionExercise(Exercise):
    """Check the answer to one question, held in a variable of the student's notebook.

    ``check("questions.xor", answer_xor)`` checks the form (visible); with ``hidden=True`` also
    the value, against :func:`expected_answer`. ``hint`` is what a wrong value is told: it must
    not give the answer away (``tests/test_questions.py`` checks that it does not contain it).
    """

    watch_numerical = False  # nothing to differentiate

    def __init__(self, name: str, question: Question, form: Integer | Choice, hint: str) -> None:
        super().__init__(name, question.variable)
        self.question, self.form, self.hint = question, form, hint

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        label = "your answer" if hidden else "the form of your answer (its value is checked when your work is graded)"
        return [Case(label, {}, {"hidden": hidden})]

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        """Untrusted side: report the student's value as numbers (its kind, then the value)."""
        if student is None:
            raise NotImplementedError
        if isinstance(student, bool | np.bool_):
            return {"kind": np.array(KIND_BOOL)}
        if isinstance(student, int | np.integer):
            number = int(student)
            if abs(number) >= 2**62:
                return {"kind": np.array(KIND_OTHER)}
            return {"kind": np.array(KIND_INT), "value": np.array(number, dtype=np.int64)}
        if isinstance(student, float | np.floating):
            return {"kind": np.array(KIND_FLOAT), "value": np.array(float(student), dtype=np.float64)}
        if isinstance(student, str):
            text = student.encode("utf-8")[:MAX_TEXT]
            return {"kind": np.array(KIND_STR), "value": np.frombuffer(text, dtype=np.uint8).copy()}
        return {"kind": np.array(KIND_OTHER)}

    def _read(self, outputs: dict) -> tuple[int, Any]:
        kind = outputs.get("kind")
        if not (isinstance(kind, np.ndarray) and kind.shape == () and kind.dtype.kind in "iu"):
            return KIND_MISSING, None
        kind, value = int(kind), outputs.get("value")
        if kind == KIND_INT and isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
            return kind, int(value)
        if kind == KIND_FLOAT and isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind == "f":
            return kind, float(value)
        if kind == KIND_STR and isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype == np.uint8:
            return kind, value.tobytes().decode("utf-8", errors="replace")
        if kind in (KIND_BOOL, KIND_OTHER):
            return kind, None
        return KIND_MISSING, None

    def _form_problem(self, kind: int, value: Any) -> str | None:
        """What is wrong with the answer's form, or None; says what form is wanted."""
        want = f"{self.title} should be {self.form.describe()}"
        if isinstance(self.form, Integer):
            if kind == KIND_INT:
                return None
            if kind == KIND_FLOAT and float(value).is_integer():
                return f"{want}: write {int(value)} rather than {value!r}"
            return f"{want}, got {_shown(kind, value)}"
        if kind == KIND_STR and value.strip().lower() in self.form.options:
            return None
        if kind == KIND_STR:
            return f"{want}, got {value!r}: write just the letter of your choice, in quotes"
        return f'{want}, got {_shown(kind, value)}: write the letter in quotes, as in {self.title} = "<letter>"'

    def _normalised(self, value: Any) -> Any:
        return value.strip().lower() if isinstance(self.form, Choice) else value

    def judge(self, case: Case, outputs: dict) -> Verdict:
        verdict = self.verdict(case)
        kind, value = self._read(outputs)
        problem = self._form_problem(kind, value)
        if problem is not None:
            verdict.problems.append(problem)
        elif case.config.get("hidden"):
            expected = self._normalised(expected_answer(self.question))
            if self._normalised(value) != expected:
                verdict.problems.append(f"{self.title} = {value!r} is not the right answer. {self.hint}")
        return verdict


@dataclass(frozen=True)
class _Entry:
    name: str
    question: Question
    form: Integer | Choice
    hint: str = field(default="")


CATALOGUE = (
    _Entry(
        "questions.xor",
        Question("01_neurons/neurons.ipynb", "answer_xor"),
        Choice(),
        "For each option, mark its four inputs (0,0), (0,1), (1,0), (1,1) on a square and ask whether "
        "one straight line can put every input that gives 1 on one side and every input that gives 0 "
        "on the other.",
    ),
    _Entry(
        "questions.one_pass",
        Question("02_graphs/graphs.ipynb", "answer_one_pass"),
        Choice(("a", "b", "c")),
        "Ask what one sweep of each mode delivers: the derivative of every node with respect to one "
        "input, or the derivative of one output with respect to every node. Training has one output, "
        "the loss, and many parameters.",
    ),
    _Entry(
        "questions.jacobian_entries",
        Question("02_graphs/graphs.ipynb", "answer_jacobian_entries"),
        Integer(),
        "The Jacobian has one entry for each pair (output i, input j); count the pairs.",
    ),
    _Entry(
        "questions.jacobian_nonzero",
        Question("02_graphs/graphs.ipynb", "answer_jacobian_nonzero"),
        Integer(),
        "Output i of an elementwise layer is computed from which inputs? An entry J_ij can be non-zero "
        "only if y_i depends on x_j; count those pairs, for the luckiest input x.",
    ),
    _Entry(
        "questions.svm_scaled",
        Question("04_losses/losses.ipynb", "answer_svm_scaled"),
        Choice(),
        "Write one term of the loss, max(0, s_j - s_y + 1), with every score doubled, and ask what "
        "happens to a term that was already 0 (its margin satisfied).",
    ),
    _Entry(
        "questions.linear_stack",
        Question("07_mlp/mlp.ipynb", "answer_linear_stack"),
        Choice(),
        "Multiply out (x W1 + b1) W2 + b2 and look at what multiplies x and what is left over.",
    ),
)

for _entry in CATALOGUE:
    register(QuestionExercise(_entry.name, _entry.question, _entry.form, _entry.hint))
