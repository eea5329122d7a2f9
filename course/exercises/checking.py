"""``check()``: what a notebook's test cell calls, and how its failures read to the student.

It runs every case of an exercise in the student's kernel (drawn, run and judged as the grader
does, :mod:`course.exercises.running`), prints one line when all pass, and otherwise raises an
error whose message names the wrong gradient: IPython shows it without the checker's frames,
wrapped to the width nbgrader keeps, and with a picture of the first wrong gradient.
"""

from __future__ import annotations

import sys
import textwrap
from typing import Any

import numpy as np

from ..gradcheck import GradCheckError
from .records import NOT_IMPLEMENTED, Verdict
from .registry import get
from .running import judge_case, run_case

__all__ = ["CheckFailed", "NotImplementedYet", "Verdicts", "check"]


def _seed(name: str, hidden: bool) -> int:
    # A stable per-exercise seed (Python's hash() is salted per process).
    return int.from_bytes(name.encode(), "little") % (2**31) + (7919 if hidden else 0)


class Verdicts(list):
    """The verdicts of one ``check()``; a one-line repr keeps notebook outputs short and stable."""

    def __repr__(self) -> str:
        passed = sum(v.passed for v in self)
        return f"<{passed} of {len(self)} case(s) passed>"

    def _ipython_display_(self) -> None:
        # Shown as a cell's value, nothing: check() has printed its line already, and an
        # `execute_result` in a test cell is read by nbgrader as a partial grade (a warning each).
        pass


class CheckFailed(GradCheckError):
    """A ``check()`` that failed: IPython shows its message alone, without a traceback.

    The message says everything the student can act on; the frames of the checker are noise
    (and `nbgrader validate` prints them all for each failing cell).
    """

    def _render_traceback_(self) -> list[str]:
        return _wrapped(f"GradCheckError: {self}")


class NotImplementedYet(NotImplementedError):
    """A ``check()`` of an exercise whose stub is still there; shown like :class:`CheckFailed`."""

    def _render_traceback_(self) -> list[str]:
        return _wrapped(f"NotImplementedError: {self}")


def _wrapped(message: str, width: int = 80) -> list[str]:
    """The lines of ``message`` wrapped at ``width``, each keeping its indentation (nbgrader cuts longer ones)."""
    lines = []
    for line in message.splitlines():
        indent = " " * (len(line) - len(line.lstrip()))
        lines.extend(textwrap.wrap(line, width, subsequent_indent=indent + "  ", break_on_hyphens=False) or [""])
    return lines


def check(name: str, student: Any, *, hidden: bool = False, seed: int | None = None, quiet: bool = False) -> Verdicts:
    """Check a student's implementation of exercise ``name`` and explain any failure.

    Prints one line when everything passes; raises :class:`~course.gradcheck.GradCheckError`
    (an ``AssertionError``) with a message naming the wrong gradient, its relative error and
    the worst entry when anything fails. With ``hidden=True`` the cases are larger and more
    varied (in the autograder they are also drawn from a secret seed) and expected values are
    not shown.
    """
    exercise = get(name)
    rng = np.random.default_rng(_seed(name, hidden) if seed is None else seed)
    verdicts = Verdicts()
    for case in exercise.cases(rng, hidden):
        encoded, problems = run_case(exercise, student, case)
        verdicts.append(judge_case(exercise, case, encoded, problems))
    failed = [v for v in verdicts if not v.passed]
    if failed and all(v.problems == [NOT_IMPLEMENTED] and not v.checks for v in failed):
        raise NotImplementedYet(f"{exercise.title} is {NOT_IMPLEMENTED}")
    if failed:
        if not hidden:
            _show_picture(failed)
        raise CheckFailed("\n".join(v.message(reveal=not hidden) for v in failed))
    if not quiet:
        kind = "hidden " if hidden else ""
        print(f"✓ {exercise.title}: all {len(verdicts)} {kind}case(s) passed")
    return verdicts


def _show_picture(failed: list[Verdict]) -> None:
    """In a notebook, draw the first wrong gradient: analytic against numerical, entry by entry.

    Only for visible checks (the picture shows expected values) and only inside a kernel.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or "ipykernel" not in sys.modules:
        return
    wrong = [c for v in failed for c in v.checks if not c.passed and c.n_checked > 0 and c.analytic is not None]
    if not wrong:
        return
    import matplotlib.pyplot as plt
    from IPython.display import display

    from .. import plot

    fig = plot.gradient_check(wrong[0])
    display(fig)
    plt.close(fig)
