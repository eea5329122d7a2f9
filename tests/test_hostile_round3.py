"""Round 3 of the red team (issue 9): hostile submissions of ``03_layers`` that get around the
per-case CPU limit from inside the checking run earn nothing; correct answers that fork or
ignore SIGXCPU keep full marks (tests/hostile/round3.py). One grading run for all of them."""

from __future__ import annotations

import os
import subprocess
import time

import psutil
import pytest
from hostile import suite
from hostile.harness import grade_corpus, planted
from hostile.round3 import ASSIGNMENT

from autograder.verdicts import engine

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
    """The large Linear cases of a slow attack did not finish (they used more than a case's CPU
    time; on a loaded machine the case's wall clock may stop them first), and say so."""
    text = "".join(p.read_text(errors="replace") for p in (run.out / "feedback" / entry.name).rglob("*.html"))
    assert "a large batch (64 x 32768 -&gt; 32): FAILED" in text or "a large batch (64 x 32768 -> 32): FAILED" in text
    assert "this check did not finish" in text, entry.name


def test_no_damage(run):
    suite.check_no_damage(run)


@pytest.mark.skipif(os.getuid() != 0, reason="the grader sets limits on other uids' processes only as root")
def test_case_watch_limits_processes_from_outside():
    """The grader's watch over a case (no control group here: the per-process fallback) puts the
    case's CPU limit on a process of the run's uid that set none, which that uid cannot raise
    again (where the grader has CAP_SYS_RESOURCE), and kills it once its CPU time passes the
    budget."""
    uid = 31999

    def as_uid():
        os.setgid(uid)
        os.setuid(uid)

    # Programs of /usr: the interpreter may sit in a folder only root can enter.
    sleeper = subprocess.Popen(["sleep", "120"], preexec_fn=as_uid, cwd="/")
    burner = subprocess.Popen(["sh", "-c", "while :; do :; done"], preexec_fn=as_uid, cwd="/")
    try:
        watch = engine._CaseWatch(1, psutil.Process(sleeper.pid), uid, None)
        watch._processes = lambda: [psutil.Process(burner.pid)]  # the run: the sleeper and the burner
        deadline = time.monotonic() + 60
        while not watch.over() and time.monotonic() < deadline:
            time.sleep(0.05)
            try:  # set from outside where the grader may (CAP_SYS_RESOURCE), else measured
                assert psutil.Process(burner.pid).rlimit(psutil.RLIMIT_CPU) == (1, 2)
            except psutil.AccessDenied:
                pass
        assert watch.exceeded
        assert not psutil.pid_exists(burner.pid)  # killed (and reaped by the watch's wait)
        assert watch.over()  # and stays over: its result would not count
    finally:
        for proc in (sleeper, burner):
            proc.kill()
            proc.wait()
