"""Hostile submissions of 02_graphs earn nothing and harm no one (tests/hostile/a02_graphs.py)."""

from __future__ import annotations

import pytest
from hostile import suite
from hostile.a02_graphs import ASSIGNMENT
from hostile.harness import grade_corpus, planted

pytestmark = suite.MARKS


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with planted() as plant:
        yield grade_corpus(ASSIGNMENT, tmp_path_factory.mktemp("hostile02"), plant, first_uid=24001)


def test_corpus():
    suite.check_corpus(ASSIGNMENT)


def test_baselines(run):
    suite.check_baselines(run, ASSIGNMENT)


@pytest.mark.parametrize("entry", suite.params(ASSIGNMENT))
def test_entry(entry, run):
    suite.check_entry(run, entry, ASSIGNMENT)


def test_no_damage(run):
    suite.check_no_damage(run)


def test_grader_memory(run):
    suite.check_grader_memory(run)
