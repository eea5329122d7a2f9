"""The plan of a grading run: which checks, on which fresh cases, in which checking runs.

:func:`plan_checks` reads each graded test cell's ``check()`` calls (:mod:`autograder.verdicts.cells`)
and draws fresh cases for them from the run's random generator (visible checks too: outputs
hard-coded for the seeds a student saw earn nothing). :func:`groups` then splits those checks
into as few checking runs as what their exercises withhold allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat
import numpy as np

from autograder.integration.metadata import grade_id as grade_id_of
from autograder.integration.metadata import is_test_cell
from autograder.verdicts import withhold
from autograder.verdicts.cells import parse_test_cell
from course.exercises import get
from course.exercises.base import Case, Exercise

__all__ = ["CellPlan", "Check", "Group", "Plan", "cell_grade_id", "groups", "plan_checks"]


@dataclass(frozen=True)
class Check:
    """One case of one ``check()`` call in a graded cell: what the grader judges on its own."""

    #: ``c<cell index>_<call>_<case>``: names the case to the checking run and its result.
    key: str
    exercise: Exercise
    case: Case
    #: A hidden check (``hidden=True``): its feedback never gets a picture of expected values.
    hidden: bool


@dataclass
class CellPlan:
    """The checks of one graded test cell, in the order its calls and their cases come."""

    index: int
    grade_id: str
    checks: list[Check]


@dataclass
class Plan:
    """Every graded test cell of a notebook, planned or refused."""

    cells: list[CellPlan] = field(default_factory=list)
    #: What the checking runs are sent, one per case: a JSON-able description and the case.
    jobs: list[tuple[dict, Case]] = field(default_factory=list)
    #: Grade id -> why that test cell cannot be graded (shown to the student as its verdict).
    refused: dict[str, str] = field(default_factory=dict)


def cell_grade_id(cell: nbformat.NotebookNode, index: int) -> str:
    """The grade id of the test cell at ``index``, or ``cell-<index>`` where it has none."""
    return grade_id_of(cell) or f"cell-{index}"


def plan_checks(nb: nbformat.NotebookNode, rng: np.random.Generator) -> Plan:
    """The checks of every graded test cell of ``nb``, each with fresh cases drawn from ``rng``.

    A cell that holds anything but ``check()`` calls, or names an unknown exercise, is refused
    with the reason; a fault of the grader's while drawing the cases too, loudly ("please tell
    your instructor"), so that no cell is ever silently left ungraded.
    """
    plan = Plan()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not is_test_cell(cell):
            continue
        grade_id = cell_grade_id(cell, index)
        try:
            checks, jobs = [], []
            for k, call in enumerate(parse_test_cell(cell.source)):
                exercise = get(call.exercise)
                for i, case in enumerate(exercise.cases(rng, call.hidden)):
                    key = f"c{index}_{k}_{i}"
                    job = {
                        "key": key,
                        "exercise": call.exercise,
                        "symbol": call.symbol,
                        "label": case.label,
                        "config": case.config,
                    }
                    jobs.append((job, case))
                    checks.append(Check(key, exercise, case, call.hidden))
        except (SyntaxError, ValueError, KeyError) as exc:
            plan.refused[grade_id] = f"this test cell cannot be graded: {exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - a fault of the grader's, reported loudly, never silent
            plan.refused[grade_id] = (
                f"grader error while preparing this cell's checks ({type(exc).__name__}: {exc}); "
                "please tell your instructor"
            )
            continue
        plan.jobs += jobs
        plan.cells.append(CellPlan(index, grade_id, checks))
    return plan


@dataclass
class Group:
    """The checks of one checking run: ``first`` with ``withheld`` withheld; then, once the
    grader has read their results, ``later`` with ``given_back`` restored (the reference code
    their cases are built from)."""

    withheld: list[withhold.Ref]
    first: list[tuple[dict, Case]]
    given_back: list[withhold.Ref] = field(default_factory=list)
    later: list[tuple[dict, Case]] = field(default_factory=list)


def groups(jobs: list[tuple[dict, Case]]) -> list[Group]:
    """Split the checks into as few checking runs as the exercises allow.

    Every run withholds all the library outside the allow-list and all that the assignment's
    exercises withhold (:func:`autograder.verdicts.withhold.checking_withheld`). An exercise whose cases
    are built from reference code that is withheld (the layers of a Sequential network, say:
    ``Exercise.needs``, with the functions nested in them) has its checks run after the others:
    the grader reads the results of the first checks, then gives the needed functions back to
    the run, so that nothing the first checks produced can have seen them. One such group of
    checks fits in a run this way; each further group (needing other functions) gets a run of
    its own that withholds all but what it needs. A check never runs beside what its own
    exercise withholds.
    """
    exercises = {job["exercise"]: get(job["exercise"]) for job, _ in jobs}
    withheld = withhold.checking_withheld(exercises.values())
    held = set(withheld)
    needed = {n: [r for f in e.needs for r in withhold.with_nested(withhold.ref(*f))] for n, e in exercises.items()}
    needs = {name: frozenset(r for r in refs if r in held) for name, refs in needed.items()}
    plain = [(job, case) for job, case in jobs if not needs[job["exercise"]]]
    by_key: dict[frozenset, list[tuple[dict, Case]]] = {}
    for job, case in jobs:
        if needs[job["exercise"]]:
            by_key.setdefault(needs[job["exercise"]], []).append((job, case))

    def without(key: frozenset) -> list[withhold.Ref]:
        return [r for r in withheld if r not in key]

    keys = list(by_key)
    if not plain:
        return [Group(without(key), by_key[key]) for key in keys]
    first = keys[0] if keys else frozenset()
    runs = [Group(withheld, plain, sorted(first), by_key.get(first, []))]
    return runs + [Group(without(key), by_key[key]) for key in keys[1:]]
