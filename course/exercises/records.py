"""The records an exercise is checked with: a :class:`Case` in, a :class:`Verdict` out, and the
known mistakes (:class:`KnownMistake`, :class:`KnownBug`) a judge can name.

They are plain data, shared by the trusted side (which draws cases and judges) and the
untrusted side (which only ever sees a case's arrays and settings), so they import nothing of
the check machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..gradcheck import TensorCheck

__all__ = [
    "FLOAT32_ADVICE",
    "FLOAT32_ERRORS",
    "FLOAT32_HINT",
    "NOT_IMPLEMENTED",
    "PROBLEM_MISTAKES",
    "Arrays",
    "Case",
    "KnownBug",
    "KnownMistake",
    "Verdict",
    "float32_values",
]

Arrays = dict[str, np.ndarray]
NOT_IMPLEMENTED = "not implemented yet: replace `raise NotImplementedError()` with your code"

#: Problems that are mistakes of their own, by name (for the class report's counts).
PROBLEM_MISTAKES = {NOT_IMPLEMENTED: "not implemented"}

FLOAT32_ADVICE = (
    "the checks need float64 (an array made with dtype=np.float32, or .astype(np.float32), loses about "
    "half the digits): use float64 throughout"
)
#: Relative errors at float32's precision (its machine epsilon is 1.2e-7): just above the
#: tolerance, far below any real mistake.
FLOAT32_ERRORS = (1e-7, 1e-5)
FLOAT32_HINT = "an error this small looks like float32 arithmetic somewhere; " + FLOAT32_ADVICE


def float32_values(a: np.ndarray) -> bool:
    """Whether every entry of ``a`` is a float32 number widened back (a float32 result cast to float64)."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore"):
        return bool(a.size) and bool(np.array_equal(a.astype(np.float32).astype(np.float64), a))


@dataclass
class Case:
    """One concrete test. ``arrays`` and ``config`` are all that crosses to the student's process."""

    label: str
    arrays: Arrays
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """The result of one exercise on one case."""

    exercise: str
    case: str
    checks: list[TensorCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Short texts, safe to show the student, naming what was caught (e.g. a gradient computed
    #: numerically); the grader carries them to grades.csv, the report and the feedback.
    flags: list[str] = field(default_factory=list)
    #: Mistakes recognised in the case as a whole rather than in one failing check, as
    #: (stable name, hint): a :class:`KnownBug` whose failure is a problem only (x not restored).
    recognised: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.passed for c in self.checks)

    @property
    def mistakes(self) -> list[str]:
        """The stable names of the mistakes recognised in the failing checks (see
        :class:`course.gradcheck.Mistake`), each once, in the order of the checks."""
        names = [PROBLEM_MISTAKES[p] for p in self.problems if p in PROBLEM_MISTAKES]
        names += [name for name, _ in self.recognised]
        names += [c.mistake for c in self.checks if not c.passed and c.mistake]
        names += [f for f in ("raised an error",) if any(p.startswith("raised ") for p in self.problems)]
        return list(dict.fromkeys(names))

    def message(self, reveal: bool = True) -> str:
        """Student-facing text. With ``reveal=False`` (hidden tests) no expected value is shown."""
        status = "passed" if self.passed else "FAILED"
        lines = [f"{self.exercise} on {self.case}: {status}"]
        for p in self.problems:
            lines.append(f"  - {p}")
        lines += [f"    hint: {hint}" for _, hint in self.recognised if hint]
        if self.flags:
            lines.append(
                "  (many people reach for finite differences in good faith, and they are the right tool for "
                "checking a gradient; this exercise asks for the derivative itself, which is what "
                "backpropagation computes)"
            )
        for c in self.checks:
            if c.passed:
                continue
            where = f" at index {c.worst_index}" if c.worst_index else ""
            if c.n_checked == 0 and c.hint:
                lines.append(f"  - {c.name}: {c.hint}")
                continue
            line = f"  - {c.name} {c.shape} is wrong: max relative error {c.max_rel_error:.2e}{where}"
            if reveal:
                line += f" (yours {c.analytic_value:.6g}, expected {c.numeric_value:.6g})"
            lines.append(line)
            hint = c.hint or (FLOAT32_HINT if FLOAT32_ERRORS[0] <= c.max_rel_error <= FLOAT32_ERRORS[1] else "")
            if hint:
                lines.append(f"    hint: {hint}")
        return "\n".join(lines)


@dataclass(frozen=True)
class KnownMistake:
    """A mistake an exercise recognises by computing its wrong answer on the case's inputs.

    ``name`` is the stable name the class report counts (see :class:`course.gradcheck.Mistake`),
    ``hint`` what the student reads; ``answer`` is called by the exercise's judge (in the
    trusted process) with the exercise's own arguments and returns what that mistake gives.
    """

    name: str
    hint: str
    answer: Callable[..., Any]


@dataclass(frozen=True)
class KnownBug:
    """A mistake an exercise recognises by running it: ``impl`` is trusted code that makes the
    mistake, and a student's outputs that equal what the exercise's ``run`` gets from ``impl``
    on the same case made it (see :func:`course.exercises.known_bugs.recognise_known_bug`).

    For mistakes that are a whole implementation's (a sweep in the wrong order, a stale
    velocity) rather than one gradient's recognisable distortion. ``name`` is the stable name
    the class report counts, ``hint`` what the student reads.
    """

    name: str
    hint: str
    impl: Any
