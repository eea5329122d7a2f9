"""Naming a failing answer's mistake, by recomputing what that mistake gives.

A hint that guesses at a cause from an error's size misleads as often as it helps; a hint
given because the student's answer *equals* a known wrong answer on the same inputs does not.
Two ways: :func:`recognise` compares one failing check with candidate wrong arrays (a
:class:`~course.exercises.records.KnownMistake`'s answer), :func:`recognise_known_bug` runs
whole wrong implementations (:class:`~course.exercises.records.KnownBug`) and compares every
output. Both run in the trusted process, after the student's code has finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..gradcheck import TensorCheck
from .exercise import Exercise
from .records import Case, Verdict
from .transport import decode_outputs, encode_outputs

__all__ = ["recognise", "recognise_known_bug"]


def _same_outputs(got: dict, wrong: dict, ignore: tuple[str, ...]) -> bool:
    keys = [k for k in wrong if k not in ignore]
    if not keys:
        return False
    for key in keys:
        a, b = got.get(key), wrong[key]
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.shape != b.shape:
            return False
        a, b = a.astype(np.float64), b.astype(np.float64)
        scale = float(np.max(np.abs(b[np.isfinite(b)]), initial=0.0))
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12 * max(scale, 1.0), equal_nan=True):
            return False
    return True


def recognise_known_bug(exercise: Exercise, case: Case, outputs: dict, verdict: Verdict) -> bool:
    """Name the failing ``verdict``'s mistake when the outputs are exactly those of one of
    ``exercise.known_bugs``; True if one matched.

    The first failing check gets the bug's hint (the others its name, and no hint of their
    own, which would guess at a cause the whole output already shows); a verdict that failed
    on problems only gets it in ``verdict.recognised``.
    """
    if verdict.passed or not exercise.known_bugs:
        return False
    for bug in exercise.known_bugs:
        try:
            wrong = decode_outputs(encode_outputs(exercise.run(bug.impl, case)))
        except Exception:  # noqa: BLE001 - a bug that cannot run on this case is not this one
            continue
        if not _same_outputs(outputs, wrong, exercise.known_bug_ignores):
            continue
        failing = [c for c in verdict.checks if not c.passed]
        for i, c in enumerate(failing):
            c.mistake, c.hint = bug.name, bug.hint if i == 0 else ""
        if not failing:
            verdict.recognised.append((bug.name, bug.hint))
        return True
    return False


def recognise(check: TensorCheck | None, candidates: Sequence[tuple[str, str, Any]], rtol: float = 1e-6) -> bool:
    """Name the mistake of a failing ``check`` whose answer equals one of ``candidates``,
    given as (name, hint, the wrong answer's array); True if one matched.

    Only entries the check compared count (a sampled check leaves the others NaN in
    ``check.numeric``).
    """
    if check is None or check.passed or check.analytic is None or check.numeric is None:
        return False
    got = np.asarray(check.analytic, dtype=np.float64)
    compared = ~np.isnan(np.asarray(check.numeric, dtype=np.float64))
    for name, hint, wrong in candidates:
        wrong = np.asarray(wrong, dtype=np.float64)
        if wrong.shape != got.shape or not compared.any():
            continue
        scale = float(np.max(np.abs(wrong[compared]))) if wrong.size else 0.0
        if np.allclose(got[compared], wrong[compared], rtol=rtol, atol=1e-12 * max(scale, 1.0)):
            check.hint, check.mistake = hint, name
            return True
    return False
