"""The machinery behind graded exercises, split so that grading can cross a process boundary.

An :class:`~course.exercises.exercise.Exercise` is checked in three steps: ``cases`` draws
concrete cases (trusted), ``run`` calls the student's code on one (untrusted), ``judge``
decides (trusted). In a notebook, :func:`~course.exercises.checking.check` runs all three in
the student's kernel and explains failures. The autograder runs step 2 in a sandboxed process,
sends the outputs back as plain ``.npy`` bytes (no pickle), and runs steps 1 and 3 in the
trusted grading process, so nothing the student's code does to its own process can change a
verdict.

This module is where those names have always been imported from (notebooks, the grader and
outside code do ``from course.exercises.base import check, Case, ...``); each concept has a
module of its own, and this one only re-exports them:

=================  ==========================================================================
``records``        ``Case``, ``Verdict``, ``KnownMistake``, ``KnownBug``, the shared messages
``transport``      the outputs as ``.npy`` bytes: ``encode_outputs``, ``pack_result``, ...
``exercise``       the ``Exercise`` base class and the helpers of its judges; ``judge_rng``
``known_bugs``     naming a failing answer's mistake: ``recognise``, ``recognise_known_bug``
``registry``       ``REGISTRY``, ``register``, ``get``
``traps``          watching for delegation to the reference: ``trapped``, ``reference_function``
``running``        one case run (``run_case``, untrusted) and judged (``judge_case``, trusted)
``checking``       the student-facing ``check()`` and how its failures are shown
=================  ==========================================================================
"""

from __future__ import annotations

# Every name this module held before the split, private ones included (tests and the grader
# import some), is importable from here still: `__all__` keeps naming only the public ones.
# ruff: noqa: F401
from .checking import CheckFailed, NotImplementedYet, Verdicts, _seed, _show_picture, _wrapped, check
from .exercise import Exercise, judge_rng
from .known_bugs import _same_outputs, recognise, recognise_known_bug
from .records import (
    FLOAT32_ADVICE,
    FLOAT32_ERRORS,
    FLOAT32_HINT,
    NOT_IMPLEMENTED,
    PROBLEM_MISTAKES,
    Arrays,
    Case,
    KnownBug,
    KnownMistake,
    Verdict,
    float32_values,
)
from .registry import REGISTRY, get, register
from .running import judge_case, run_case
from .transport import decode_outputs, encode_outputs, fingerprint, modified, pack_result, unpack_result
from .traps import (
    _MACHINERY,
    PROFILER_REMOVED,
    WITHHELD,
    WITHHELD_MESSAGE,
    _code_key,
    _reference_codes,
    reference_function,
    trapped,
)

__all__ = [
    "REGISTRY",
    "Case",
    "Exercise",
    "KnownBug",
    "KnownMistake",
    "Verdict",
    "check",
    "decode_outputs",
    "encode_outputs",
    "fingerprint",
    "get",
    "judge_rng",
    "modified",
    "recognise",
    "register",
    "trapped",
]
