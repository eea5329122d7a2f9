"""Traps: watching for calls to the library's own answer while the student's code runs.

An exercise names the reference implementations its student must not delegate to
(``Exercise.traps``); :func:`trapped` notes every call to one of them, however it was reached.
This explains delegation to honest students in their own kernel. It cannot stop a determined
one (the kernel is theirs), which is why the autograder's checking run also sees a copy of the
library without those functions: a withheld function raises :data:`WITHHELD_MESSAGE`
(:mod:`autograder.verdicts.withhold`).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

from . import exercise as exercise_module
from . import known_bugs, numerical, records, registry, transport
from .exercise import Exercise

__all__ = ["PROFILER_REMOVED", "WITHHELD", "WITHHELD_MESSAGE", "reference_function", "trapped"]

PROFILER_REMOVED = "the profiler that watches for delegation (it was removed)"
#: What a withheld reference implementation raises in the autograder (see autograder.verdicts.withhold).
WITHHELD = "is not available while your notebook is autograded"
WITHHELD_MESSAGE = (
    "{name} " + WITHHELD + ": it is the library's answer to an exercise of this assignment, so the "
    "grader's copy of the library leaves it out. Use your own implementation."
)


def _code_key(code) -> tuple[str, str, int]:
    return (code.co_filename, code.co_name, code.co_firstlineno)


def reference_function(owner: Any, attr: str) -> Any:
    """The function behind ``owner.attr`` (a module's function, or a class's method: the class's
    own definition, else the inherited one), unwrapped from staticmethod / classmethod; None if
    there is no such attribute."""
    fn = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
    if fn is None and isinstance(owner, type):
        fn = getattr(owner, attr, None)
    return getattr(fn, "__func__", fn)


def _reference_codes(exercise: Exercise) -> dict[tuple[str, str, int], str]:
    codes = {}
    for owner, attr in exercise.traps:
        fn = reference_function(owner, attr)
        code = getattr(fn, "__code__", None)
        if code is not None:
            codes[_code_key(code)] = f"{getattr(owner, '__name__', owner)}.{attr}"
    return codes


@contextlib.contextmanager
def trapped(exercise: Exercise, detector: numerical.Detector | None = None) -> Iterator[list[str]]:
    """Watch for calls to the reference implementations named in ``exercise.traps``.

    A profile hook notes every call whose code is the reference's (same file, name and first
    line), so delegation is caught however the function was reached: ``super()``, a reference
    captured before the check, or a reloaded module. Yields the list of such calls; removing
    the hook counts as a call. With a ``detector`` the same hook shows it every Python-level
    call and every builtin called (:mod:`course.exercises.numerical`).
    """
    codes = _reference_codes(exercise)
    calls: list[str] = []

    def hook(frame, event, arg):
        if event == "call":
            name = codes.get(_code_key(frame.f_code))
            if name is not None:
                calls.append(name)
            if detector is not None and frame.f_code.co_filename not in _MACHINERY:
                detector.call(frame)
        elif event == "c_call" and detector is not None:
            detector.c_call(arg)

    previous = sys.getprofile()
    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        yield calls
    finally:
        if sys.getprofile() is not hook:
            calls.append(PROFILER_REMOVED)
        sys.setprofile(previous)
        threading.setprofile(None)


#: Files whose functions the detector ignores: the machinery that calls the student's code (it
#: hands the case's own inputs around: ``fingerprint``, the exercise's helpers) and the detector
#: itself. (:func:`~course.exercises.running.run_case` and ``check()`` call into the watched
#: region, never from inside it.)
_MACHINERY = frozenset(
    {__file__, *(m.__file__ for m in (records, transport, exercise_module, registry, known_bugs, numerical))}
)
