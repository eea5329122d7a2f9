"""What a grading run decided, as records: per exercise, per graded cell, per notebook.

:func:`autograder.verdicts.engine.grade` returns a :class:`GradingRun`; its :meth:`~GradingRun.record`
is plain JSON data that TrustedExecute stores in the autograded notebook's metadata, where the
host reads the flags (:mod:`autograder.host.flags`) and the class report the outcomes
(:mod:`autograder.host.mistakes`). Everything here is names and student-safe sentences, never
an expected value, so it is safe to store and to show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from autograder.host.flags import MAX_TEXT, Flag, texts
from autograder.integration.metadata import RECORD_KEY, RECORD_VERSION
from course.exercises.base import Verdict

__all__ = [
    "DELEGATION",
    "RECORD_KEY",
    "RECORD_VERSION",
    "CellVerdict",
    "ExerciseOutcome",
    "GradingRun",
    "cell_verdict",
    "flag_records",
    "run_flags",
]


@dataclass
class ExerciseOutcome:
    """How one exercise checked in a graded cell went, over all its cases: what the class
    report counts (:mod:`autograder.host.mistakes`). Names only, never values: safe to store."""

    exercise: str
    passed: bool
    #: The stable names of the mistakes its failing checks recognised (course.gradcheck.Mistake).
    mistakes: list[str] = field(default_factory=list)


@dataclass
class CellVerdict:
    """The trusted outcome of one graded test cell."""

    grade_id: str
    passed: bool
    messages: list[str] = field(default_factory=list)
    outcomes: list[ExerciseOutcome] = field(default_factory=list)


@dataclass
class GradingRun:
    verdicts: dict[str, CellVerdict]
    status: str
    sandboxed: bool
    notes: list[str] = field(default_factory=list)
    #: What the instructor should see (grades.csv ``flags``, the report): a check answered by
    #: numerical differentiation, or by calling the library's own answer. Student-safe texts.
    flag_records: list[Flag] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        """The sentences of :attr:`flag_records`."""
        return texts(self.flag_records)

    def all_flags(self) -> list[Flag]:
        """Every flag of the run: no sandbox, how the notebook run ended (its first line: the
        status can quote the student's code), then :attr:`flag_records`."""
        flags = [] if self.sandboxed else [Flag("grader", "sandbox unavailable")]
        first = self.status.splitlines()[0] if self.status.splitlines() else ""
        if self.status != "ok" and first:
            flags.append(Flag("other", f"notebook: {first}"[:MAX_TEXT]))
        return [*flags, *(f for f in self.flag_records if f not in flags)]

    def record(self) -> dict:
        """The run as plain JSON data, for the host (stored by TrustedExecute in the autograded
        notebook's metadata under :data:`RECORD_KEY`): status, every flag
        (:func:`autograder.host.flags.read_flags` reads them) and, per graded cell, each exercise's
        outcome and recognised mistakes. Version 2: flags are ``{"kind", "subject", "text"}``
        (version 1 had the verdicts' flags as sentences)."""
        return {
            "version": RECORD_VERSION,
            "status": self.status,
            "sandboxed": self.sandboxed,
            "flags": [f.as_dict() for f in self.all_flags()],
            "cells": {
                grade_id: {"passed": v.passed, "outcomes": [asdict(o) for o in v.outcomes]}
                for grade_id, v in self.verdicts.items()
            },
        }


def cell_verdict(grade_id: str, verdicts: list[Verdict]) -> CellVerdict:
    """One graded cell's verdict from those of its checks: passed when every check passed, with
    the failures' student-safe messages (:meth:`Verdict.message` with ``reveal=False``) and one
    outcome per exercise (its recognised mistakes once each)."""
    failed = [v for v in verdicts if not v.passed]
    outcomes: dict[str, ExerciseOutcome] = {}
    for v in verdicts:
        outcome = outcomes.setdefault(v.exercise, ExerciseOutcome(v.exercise, True))
        outcome.passed = outcome.passed and v.passed
        outcome.mistakes += [m for m in v.mistakes if m not in outcome.mistakes]
    return CellVerdict(grade_id, not failed, [v.message(reveal=False) for v in failed], list(outcomes.values()))


#: Problems of a check that mean its answer was the library's (see course.exercises.base.run_case).
DELEGATION = ("the library's own answer", "called the reference implementation")


def flag_records(verdicts: list[Verdict]) -> list[Flag]:
    """The flags of a notebook's verdicts, once each: each verdict's own (numerical
    differentiation), and delegation to the library, by exercise."""
    flags: list[Flag] = []
    for verdict in verdicts:
        flags += [Flag("numerical", text, verdict.exercise) for text in verdict.flags]
        if any(marker in p for p in verdict.problems for marker in DELEGATION):
            flags.append(Flag("delegation", f"called the library's answer: {verdict.exercise}", verdict.exercise))
    return list(dict.fromkeys(flags))


def run_flags(verdicts: list[Verdict]) -> list[str]:
    """The sentences of :func:`flag_records`."""
    return texts(flag_records(verdicts))
