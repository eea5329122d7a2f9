"""One case, run and judged: the two halves that the autograder puts on either side of the
sandbox's boundary.

:func:`run_case` runs the student's code on a case (untrusted: in the notebook's kernel, or in
the checking run's sandbox) with the traps set and the detector of numerical differentiation
watching, and returns the encoded outputs and any problems. :func:`judge_case` turns them into
a :class:`~course.exercises.records.Verdict` in the trusted process; nothing the student's code
did to its own process can reach it, only the bytes it returned.
"""

from __future__ import annotations

import traceback
from typing import Any

from . import numerical
from .exercise import Exercise
from .known_bugs import recognise_known_bug
from .records import NOT_IMPLEMENTED, Case, Verdict
from .transport import decode_outputs, encode_outputs
from .traps import PROFILER_REMOVED, WITHHELD, trapped

__all__ = ["judge_case", "run_case"]


def run_case(exercise: Exercise, student: Any, case: Case) -> tuple[dict[str, bytes], list[str]]:
    """Run the student's code on one case with traps set; return encoded outputs and problems.

    The case's inputs reach the student's code as :class:`~course.exercises.numerical.Tracked`
    arrays and every call is shown to a :class:`~course.exercises.numerical.Detector`: a check
    whose answer looks computed by numerical differentiation gets a problem (no credit) made
    by :func:`~course.exercises.numerical.problem`, which :func:`judge_case` turns into a flag.
    """
    problems: list[str] = []
    outputs: dict[str, Any] = {}
    recursion = False
    detector = numerical.Detector(case.arrays if exercise.watch_numerical else {})
    arrays = numerical.tracked_arrays(case.arrays) if exercise.watch_numerical else case.arrays
    watched = Case(case.label, arrays, case.config)
    with trapped(exercise, detector if exercise.watch_numerical else None) as calls, numerical.watching(detector):
        try:
            outputs = exercise.run(student, watched)
        except NotImplementedError:
            problems.append(NOT_IMPLEMENTED)
        except RecursionError:
            recursion = True
            problems.append(
                "raised RecursionError: the graph is deeper than Python's recursion limit; walk it "
                "with an explicit stack (or raise the limit with sys.setrecursionlimit)"
            )
        except Exception as exc:  # noqa: BLE001 - the student's error is reported, not raised
            frames = traceback.extract_tb(exc.__traceback__)
            if WITHHELD in str(exc):  # a stub of the autograder's library copy: delegation
                name = str(exc).split(WITHHELD)[0].strip()
                where = f" (line {frames[-2].lineno}: {frames[-2].line})" if len(frames) > 1 else ""
                problems.append(
                    f"called {name}, the library's own answer, which the grader leaves out{where}: no credit"
                )
            else:
                where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
                problems.append(f"raised {type(exc).__name__}: {exc}{where}")
    if recursion:  # Python drops a profile hook that overflows the stack: not tampering
        calls[:] = [c for c in calls if c != PROFILER_REMOVED]
    if calls:
        problems.append(f"called the reference implementation ({', '.join(sorted(set(calls)))}): no credit")
    if detector.findings:
        problems.append(numerical.problem("; ".join(detector.findings)))
    return encode_outputs(outputs), problems


def judge_case(exercise: Exercise, case: Case, encoded: dict[str, bytes], problems: list[str]) -> Verdict:
    """Judge encoded outputs; problems found while running the student's code fail the case."""
    if problems:
        verdict = exercise.verdict(case)
        verdict.problems.extend(problems)
        verdict.flags.extend(f for f in (numerical.flag_of(exercise.name, p) for p in problems) if f)
        return verdict
    outputs = decode_outputs(encoded)
    verdict = exercise.judge(case, outputs)
    recognise_known_bug(exercise, case, outputs, verdict)
    return verdict
