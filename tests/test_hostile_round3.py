"""Round 3 of the red team (issue 9): hostile submissions of ``03_layers`` that get around the
per-case CPU limit from inside the checking run earn nothing; correct answers that fork or
ignore SIGXCPU keep full marks (tests/hostile/round3.py). One grading run for all of them."""

from __future__ import annotations

import pytest
from hostile import suite
from hostile.harness import grade_corpus, planted
from hostile.round3 import ASSIGNMENT

pytestmark = suite.MARKS


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with planted() as plant:
        yield grade_corpus(ASSIGNMENT, tmp_path_factory.mktemp("hostile_round3"), plant, first_uid=30001)


def test_baselines(run):
    suite.check_baselines(run, ASSIGNMENT)


@pytest.mark.parametrize("entry", suite.params(ASSIGNMENT))
def test_entry(entry, run):
    suite.check_entry(run, entry, ASSIGNMENT)


@pytest.mark.parametrize("entry", [e for e in ASSIGNMENT.entries if e.expect != "full"], ids=lambda e: e.name)
def test_slow_case_is_stopped(entry, run):
    """The large Linear cases of a slow attack say that they used more than a case's CPU time."""
    text = "".join(p.read_text(errors="replace") for p in (run.out / "feedback" / entry.name).rglob("*.html"))
    assert "of CPU time a case may use" in text or "stopped at its time" in text, entry.name


def test_no_damage(run):
    suite.check_no_damage(run)
