"""The class's mistakes: per exercise, the share of failing submissions that made each mistake.

Every failing check whose mistake a hint recognises carries that mistake's stable name
(:class:`course.gradcheck.Mistake`: "wrong sign", "missing 1/N", "not summed over the batch",
..., or an exercise's own, such as "x(1 − x) instead of σ(x)(1 − σ(x))"). The grading run
stores, per graded cell, each exercise's outcome and those names in the autograded notebook's
metadata (:meth:`autograder.verdicts.engine.GradingRun.record`, written by
:class:`autograder.integration.preprocessors.TrustedExecute`). :func:`read_class` reads them back for a
whole class, :func:`class_mistakes` counts them, and :func:`render` gives the report's section,
so the instructor reads "41 % not summed over the batch" under ``Linear.backward``.

A submission counts once per exercise, however many cells and cases check it: it *fails* the
exercise when any of its checks failed, and *made* a mistake when any failing check named it.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.integration.metadata import RECORD_KEY

__all__ = [
    "ExerciseMistakes",
    "MistakeShare",
    "Outcome",
    "SubmissionRecord",
    "class_mistakes",
    "read_class",
    "read_record",
    "render",
]


@dataclass(frozen=True)
class Outcome:
    """One exercise in one submission: whether every check of it passed, and the mistakes named."""

    exercise: str
    passed: bool
    mistakes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubmissionRecord:
    """One student's outcomes, one per exercise (merged over cells and notebooks)."""

    student: str
    outcomes: tuple[Outcome, ...] = ()


@dataclass(frozen=True)
class MistakeShare:
    """How many of an exercise's failing submissions made one mistake."""

    mistake: str
    count: int
    failing: int

    @property
    def share(self) -> float:
        return self.count / self.failing if self.failing else 0.0


@dataclass(frozen=True)
class ExerciseMistakes:
    """One exercise across the class: the submissions that checked it, those that failed it,
    each recognised mistake's share of the failing ones (largest first), and how many failing
    submissions no hint recognised."""

    exercise: str
    submissions: int
    failing: int
    shares: tuple[MistakeShare, ...] = field(default_factory=tuple)
    unrecognised: int = 0


def _merge(outcomes: Iterable[Outcome]) -> tuple[Outcome, ...]:
    merged: dict[str, Outcome] = {}
    for o in outcomes:
        before = merged.get(o.exercise)
        if before is None:
            merged[o.exercise] = Outcome(o.exercise, o.passed, tuple(dict.fromkeys(o.mistakes)))
        else:
            names = tuple(dict.fromkeys(before.mistakes + o.mistakes))
            merged[o.exercise] = Outcome(o.exercise, before.passed and o.passed, names)
    return tuple(merged.values())


def read_record(record: object) -> list[Outcome]:
    """The outcomes in one notebook's record (:meth:`autograder.verdicts.engine.GradingRun.record`;
    versions 1 and 2 hold the cells alike; its flags: :func:`autograder.host.flags.read_flags`);
    anything malformed is skipped, never raised (a record is data, not trusted structure)."""
    outcomes: list[Outcome] = []
    cells = record.get("cells") if isinstance(record, dict) else None
    if not isinstance(cells, dict):
        return outcomes
    for cell in cells.values():
        entries = cell.get("outcomes") if isinstance(cell, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("exercise"), str):
                continue
            names = entry.get("mistakes")
            names = tuple(str(n) for n in names if isinstance(n, str)) if isinstance(names, list) else ()
            outcomes.append(Outcome(entry["exercise"], entry.get("passed") is True, names))
    return outcomes


def read_class(autograded: Path, assignment: str) -> list[SubmissionRecord]:
    """Every student's record under nbgrader's ``autograded/<student>/<assignment>/*.ipynb``.

    A notebook without a record (graded by stock nbgrader, or unreadable) adds nothing.
    """
    records = []
    for folder in sorted(p for p in Path(autograded).glob(f"*/{assignment}") if p.is_dir()):
        outcomes: list[Outcome] = []
        for path in sorted(folder.glob("*.ipynb")):
            try:
                nb = nbformat.read(str(path), as_version=4)
            except Exception:  # noqa: BLE001 - an unreadable notebook has no record to count
                continue
            outcomes += read_record(nb.metadata.get(RECORD_KEY))
        if outcomes:
            records.append(SubmissionRecord(folder.parent.name, _merge(outcomes)))
    return records


def class_mistakes(records: Iterable[SubmissionRecord]) -> list[ExerciseMistakes]:
    """Per exercise (in the order first met), the share of failing submissions per mistake."""
    by_exercise: dict[str, list[Outcome]] = {}
    for record in records:
        for outcome in _merge(record.outcomes):
            by_exercise.setdefault(outcome.exercise, []).append(outcome)
    result = []
    for exercise, outcomes in by_exercise.items():
        failing = [o for o in outcomes if not o.passed]
        counts: dict[str, int] = {}
        for o in failing:
            for name in o.mistakes:
                counts[name] = counts.get(name, 0) + 1
        shares = tuple(
            MistakeShare(name, n, len(failing)) for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        unrecognised = sum(1 for o in failing if not o.mistakes)
        result.append(ExerciseMistakes(exercise, len(outcomes), len(failing), shares, unrecognised))
    return result


def render(summary: list[ExerciseMistakes], escape: Callable[[object], str] = lambda x: html.escape(str(x))) -> str:
    """The report's section: a table per exercise that someone failed, hardest first."""
    parts = ["<h2>Mistakes</h2>"]
    failed = sorted((e for e in summary if e.failing), key=lambda e: (-e.failing / e.submissions, e.exercise))
    if not failed:
        parts.append("<p>No failing checks, or none graded with the trusted grader.</p>")
        return "".join(parts)
    parts.append(
        "<p>For each exercise, the share of the submissions failing it whose failure a hint recognised as "
        "each mistake (a submission may make several).</p><table><tr><th class='name'>exercise</th>"
        "<th>failing</th><th class='name'>mistakes</th></tr>"
    )
    for e in failed:
        items = [f"{100 * s.share:.0f} % {escape(s.mistake)} ({s.count})" for s in e.shares]
        if e.unrecognised:
            items.append(f"{100 * e.unrecognised / e.failing:.0f} % not recognised ({e.unrecognised})")
        parts.append(
            f"<tr><td class='name'>{escape(e.exercise)}</td><td>{e.failing} of {e.submissions}</td>"
            f"<td class='name'>{'<br>'.join(items)}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)
