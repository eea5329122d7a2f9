"""The tests every ``tests/test_hostile_<assignment>.py`` runs on its assignment's corpus.

Each test module grades its corpus once (a module-scoped fixture) and checks, per entry, what
:func:`hostile.harness.verdict` lists; plus the baselines and what no entry may do to the
machine. Entries of the corpus marked ``known_hole`` are strict xfails: when a fix lands they
XPASS and fail the suite until the mark is removed.
"""

from __future__ import annotations

import pytest

from autograder import sandbox

from .catalogue import Hostile
from .corpus import Assignment
from .harness import Run, verdict

#: Most resident memory the grading processes (outside the sandbox) may need, in bytes.
GRADER_RSS_LIMIT = 1536 << 20

MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sandbox.bubblewrap_available(),
        reason="hostile submissions are graded only inside the bubblewrap sandbox (Debian package 'bubblewrap')",
    ),
]


#: Entries seen to fail now and then, not yet understood (a non-strict xfail, reported in the
#: session note). Empty: the 04 styles that lost a point built np.eye(C) for 16384 classes (2 GiB,
#: past the run's memory limit); they now build their one-hot in place.
FLAKY: dict[str, str] = {}


def _marks(entry) -> list:
    if entry.known_hole:
        return [pytest.mark.xfail(strict=True, reason=entry.known_hole)]
    if entry.name in FLAKY:
        return [pytest.mark.xfail(strict=False, reason=FLAKY[entry.name])]
    return []


def params(assignment: Assignment) -> list:
    """One pytest param per entry, a strict xfail for the known holes (non-strict for FLAKY)."""
    return [pytest.param(e, id=e.name, marks=_marks(e)) for e in assignment.entries]


def check_corpus(assignment: Assignment) -> None:
    names = [e.name for e in assignment.entries]
    assert len(names) == len(set(names)), "entry names must be unique"
    assert any(e.expect == "full" for e in assignment.entries), "no style entries"
    assert sum(e.expect != "full" for e in assignment.entries) >= 10, "fewer than 10 attacks"


def check_baselines(run: Run, assignment: Assignment) -> None:
    assert run.score("perfect") == run.max_score > 0, run.rows["perfect"]
    # The answers graded by hand are left to the instructor, and counted as such.
    perfect = run.rows["perfect"]
    assert float(perfect["to_grade_by_hand"]) == run.manual_points, perfect
    assert float(perfect["max_score"]) == run.max_score + run.manual_points, perfect
    # The honest wrong answers change every graded output: no check can pass.
    assert run.score("honest_wrong") == 0.0, run.rows["honest_wrong"]


def check_entry(run: Run, entry: Hostile, assignment: Assignment) -> None:
    problems = verdict(run, entry)
    assert not problems, f"{entry.name} ({entry.what}):\n  " + "\n  ".join(problems)


def check_no_damage(run: Run) -> None:
    assert not run.leftovers, f"processes of the sandbox uids outlive grading: {run.leftovers}"
    assert not run.canaries, f"files written by submissions outside the output: {run.canaries}"
    assert not run.clone_changed, "the other clone on the machine was changed"


def check_grader_memory(run: Run) -> None:
    assert run.grader_peak_rss < GRADER_RSS_LIMIT, f"a grading process used {run.grader_peak_rss >> 20} MB"
