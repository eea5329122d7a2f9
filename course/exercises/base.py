"""The machinery behind graded exercises, split so that grading can cross a process boundary.

An :class:`Exercise` is checked in three steps:

1. ``cases(rng, hidden)`` (trusted): draw concrete test cases, as plain arrays and JSON-able
   settings (a :class:`Case`);
2. ``run(student, case)`` (untrusted: this is where the student's code executes): call the
   student's class or function on the case and collect what it returns, as a dict of arrays;
3. ``judge(case, outputs)`` (trusted): validate the outputs (type, dtype, shape, finiteness)
   and compare them with numerical gradients of the *reference* forward, in float64.

In a notebook, :func:`check` runs all three in the student's kernel and explains failures.
The autograder runs step 2 in a sandboxed process, sends the outputs back as plain ``.npy``
bytes (no pickle), and runs steps 1 and 3 in the trusted grading process, so nothing the
student's code does to its own process can change a verdict.

While ``run`` executes, calls to the reference implementation of the graded method are
watched for (:func:`trapped`): a submission that delegates to it gets no credit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import secrets
import sys
import textwrap
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..gradcheck import TOLERANCE, GradCheckError, TensorCheck, compare, numerical_gradient
from . import numerical

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

Arrays = dict[str, np.ndarray]
NOT_IMPLEMENTED = "not implemented yet: replace `raise NotImplementedError()` with your code"
PROFILER_REMOVED = "the profiler that watches for delegation (it was removed)"
#: What a withheld reference implementation raises in the autograder (see autograder.verdicts.withhold).
WITHHELD = "is not available while your notebook is autograded"
WITHHELD_MESSAGE = (
    "{name} " + WITHHELD + ": it is the library's answer to an exercise of this assignment, so the "
    "grader's copy of the library leaves it out. Use your own implementation."
)

#: Problems that are mistakes of their own, by name (for the class report's counts).
PROBLEM_MISTAKES = {NOT_IMPLEMENTED: "not implemented"}

FLOAT32_ADVICE = (
    "the checks need float64 (an array made with dtype=np.float32, or .astype(np.float32), loses about "
    "half the digits): use float64 throughout"
)
#: Relative errors at float32's precision (its machine epsilon is 1.2e-7): just above the
#: tolerance, far below any real mistake.
FLOAT32_ERRORS = (1e-7, 1e-5)
FLOAT32_HINT = "an error this small looks like float32 arithmetic somewhere; " + FLOAT32_ADVICE


def float32_values(a: np.ndarray) -> bool:
    """Whether every entry of ``a`` is a float32 number widened back (a float32 result cast to float64)."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore"):
        return bool(a.size) and bool(np.array_equal(a.astype(np.float32).astype(np.float64), a))


@dataclass
class Case:
    """One concrete test. ``arrays`` and ``config`` are all that crosses to the student's process."""

    label: str
    arrays: Arrays
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """The result of one exercise on one case."""

    exercise: str
    case: str
    checks: list[TensorCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Short texts, safe to show the student, naming what was caught (e.g. a gradient computed
    #: numerically); the grader carries them to grades.csv, the report and the feedback.
    flags: list[str] = field(default_factory=list)
    #: Mistakes recognised in the case as a whole rather than in one failing check, as
    #: (stable name, hint): a :class:`KnownBug` whose failure is a problem only (x not restored).
    recognised: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.passed for c in self.checks)

    @property
    def mistakes(self) -> list[str]:
        """The stable names of the mistakes recognised in the failing checks (see
        :class:`course.gradcheck.Mistake`), each once, in the order of the checks."""
        names = [PROBLEM_MISTAKES[p] for p in self.problems if p in PROBLEM_MISTAKES]
        names += [name for name, _ in self.recognised]
        names += [c.mistake for c in self.checks if not c.passed and c.mistake]
        names += [f for f in ("raised an error",) if any(p.startswith("raised ") for p in self.problems)]
        return list(dict.fromkeys(names))

    def message(self, reveal: bool = True) -> str:
        """Student-facing text. With ``reveal=False`` (hidden tests) no expected value is shown."""
        status = "passed" if self.passed else "FAILED"
        lines = [f"{self.exercise} on {self.case}: {status}"]
        for p in self.problems:
            lines.append(f"  - {p}")
        lines += [f"    hint: {hint}" for _, hint in self.recognised if hint]
        if self.flags:
            lines.append(
                "  (many people reach for finite differences in good faith, and they are the right tool for "
                "checking a gradient; this exercise asks for the derivative itself, which is what "
                "backpropagation computes)"
            )
        for c in self.checks:
            if c.passed:
                continue
            where = f" at index {c.worst_index}" if c.worst_index else ""
            if c.n_checked == 0 and c.hint:
                lines.append(f"  - {c.name}: {c.hint}")
                continue
            line = f"  - {c.name} {c.shape} is wrong: max relative error {c.max_rel_error:.2e}{where}"
            if reveal:
                line += f" (yours {c.analytic_value:.6g}, expected {c.numeric_value:.6g})"
            lines.append(line)
            hint = c.hint or (FLOAT32_HINT if FLOAT32_ERRORS[0] <= c.max_rel_error <= FLOAT32_ERRORS[1] else "")
            if hint:
                lines.append(f"    hint: {hint}")
        return "\n".join(lines)


@dataclass(frozen=True)
class KnownMistake:
    """A mistake an exercise recognises by computing its wrong answer on the case's inputs.

    ``name`` is the stable name the class report counts (see :class:`course.gradcheck.Mistake`),
    ``hint`` what the student reads; ``answer`` is called by the exercise's judge (in the
    trusted process) with the exercise's own arguments and returns what that mistake gives.
    """

    name: str
    hint: str
    answer: Callable[..., Any]


@dataclass(frozen=True)
class KnownBug:
    """A mistake an exercise recognises by running it: ``impl`` is trusted code that makes the
    mistake, and a student's outputs that equal what the exercise's ``run`` gets from ``impl``
    on the same case made it (see :func:`recognise_known_bug`).

    For mistakes that are a whole implementation's (a sweep in the wrong order, a stale
    velocity) rather than one gradient's recognisable distortion. ``name`` is the stable name
    the class report counts, ``hint`` what the student reads.
    """

    name: str
    hint: str
    impl: Any


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


# ----------------------------------------------------------------------------------------
# Output transport: the same encoding in the notebook and across the sandbox boundary
# ----------------------------------------------------------------------------------------


def fingerprint(array: np.ndarray) -> np.ndarray:
    """A digest (32 bytes) of an input array as the student's code left it, for ``judge`` to
    tell whether the code modified its input in place. Sending the digest instead of the array
    saves megabytes on large cases and loses nothing: untrusted code that could forge one could
    forge the other."""
    a = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    digest.update(a.tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8).copy()


def modified(outputs: dict, key: str, original: np.ndarray) -> bool:
    """Whether the :func:`fingerprint` in ``outputs[key]`` says the input was changed."""
    after = outputs.get(key)
    return isinstance(after, np.ndarray) and after.shape == (32,) and not np.array_equal(after, fingerprint(original))


def encode_outputs(outputs: dict[str, Any]) -> dict[str, bytes]:
    """Each output as ``.npy`` bytes; values that are not plain numeric arrays become a note."""
    encoded = {}
    for name, value in outputs.items():
        try:
            arr = np.array(value)  # a plain ndarray copy: subclasses and their methods are dropped
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                raise TypeError(f"dtype {arr.dtype}")
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            encoded[name] = buf.getvalue()
        except Exception as exc:  # noqa: BLE001 - any failure means "not an array of numbers"
            encoded[name] = f"!{type(value).__name__}: {exc}"[:300].encode()
    return encoded


def pack_result(outputs: dict[str, bytes], problems: list[str]) -> bytes:
    """One case's encoded outputs and problems as bytes: a JSON line naming each output and its
    size, then the outputs one after another (what the checking run sends the grader)."""
    head = {"problems": problems, "outputs": [[name, len(raw)] for name, raw in outputs.items()]}
    return json.dumps(head).encode() + b"\n" + b"".join(outputs.values())


def unpack_result(data: bytes, max_names: int = 64) -> tuple[dict[str, bytes], list[str]] | None:
    """Inverse of :func:`pack_result` for untrusted bytes: None unless they are exactly one
    well-formed result with at most ``max_names`` outputs (names of at most 100 characters)."""
    line, _, body = data.partition(b"\n")
    try:
        head = json.loads(line)
        problems, listed = head["problems"], head["outputs"]
        if not (isinstance(problems, list) and isinstance(listed, list) and len(listed) <= max_names):
            return None
        outputs, at = {}, 0
        for name, size in listed:
            if not (isinstance(name, str) and len(name) <= 100 and isinstance(size, int) and size >= 0):
                return None
            if name in outputs:
                return None
            outputs[name], at = body[at : at + size], at + size
        if at != len(body):
            return None
        return outputs, [str(p)[:500] for p in problems[:20]]
    except (ValueError, TypeError, KeyError):
        return None


def decode_outputs(encoded: dict[str, bytes]) -> dict[str, np.ndarray | str]:
    """Inverse of :func:`encode_outputs`, loading with ``allow_pickle=False``."""
    decoded: dict[str, np.ndarray | str] = {}
    for name, raw in encoded.items():
        if raw[:1] == b"!":
            decoded[name] = raw[1:].decode(errors="replace")
            continue
        try:
            decoded[name] = np.load(io.BytesIO(raw), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            decoded[name] = f"unreadable output ({exc})"
    return decoded


# ----------------------------------------------------------------------------------------
# Exercises
# ----------------------------------------------------------------------------------------


class Exercise:
    """Base class. Subclasses implement ``cases``, ``run`` and ``judge``.

    Parameters
    ----------
    name : str
        Catalogue key, e.g. ``"layers.Linear.backward"``.
    title : str
        What the student sees, e.g. ``"Linear.backward"``.
    traps : list of (owner, attribute)
        Reference implementations the student's code must not call while it is checked.

    Attributes
    ----------
    withheld : list of (owner, attribute)
        What the autograder's checking run removes from its copy of the library
        (:mod:`autograder.verdicts.withhold`), so that no way of calling it exists: by default the traps.
    needs : list of (owner, attribute)
        Reference code that ``run`` itself calls (the layers of a network whose
        ``Sequential.backward`` is checked): kept in the library copy of this exercise's
        checks even when another exercise of the assignment withholds it.
    """

    def __init__(self, name: str, title: str, traps: list[tuple[Any, str]] | None = None) -> None:
        self.name, self.title = name, title
        self.traps = traps or []
        self._withheld: list[tuple[Any, str]] | None = None
        self.needs: list[tuple[Any, str]] = []

    @property
    def withheld(self) -> list[tuple[Any, str]]:
        return list(self.traps) if self._withheld is None else list(self._withheld)

    @withheld.setter
    def withheld(self, functions: list[tuple[Any, str]]) -> None:
        self._withheld = list(functions)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        raise NotImplementedError

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        raise NotImplementedError

    def judge(self, case: Case, outputs: dict[str, np.ndarray | str]) -> Verdict:
        raise NotImplementedError

    # -- helpers for judge() ----------------------------------------------------------------

    def verdict(self, case: Case) -> Verdict:
        return Verdict(self.title, case.label)

    @staticmethod
    def expect_array(verdict: Verdict, outputs: dict, key: str, shape: tuple[int, ...], what: str) -> np.ndarray | None:
        """The output ``key`` if it is a finite float64 array of ``shape``; else note why not."""
        value = outputs.get(key)
        if value is None:
            verdict.problems.append(f"{what}: nothing was returned")
            return None
        if isinstance(value, str):
            verdict.problems.append(f"{what} is not an array of numbers ({value})")
            return None
        if value.shape != tuple(shape):
            verdict.problems.append(f"{what} has shape {value.shape}, expected {tuple(shape)}")
            return None
        if value.dtype != np.float64:
            note = f"{what} has dtype {value.dtype}, expected float64"
            if value.dtype in (np.float32, np.float16):
                note += f": it looks like {value.dtype} arithmetic; {FLOAT32_ADVICE}"
            verdict.problems.append(note)
            return None
        if not np.all(np.isfinite(value)):
            bad = int(np.sum(~np.isfinite(value)))
            verdict.problems.append(f"{what} contains {bad} NaN or infinite entries")
            return None
        return value

    #: Mistakes recognised by running them (:class:`KnownBug`), tried in order on a failing case.
    known_bugs: tuple[KnownBug, ...] = ()
    #: Outputs of ``run`` that :func:`recognise_known_bug` does not compare (bookkeeping, not answers).
    known_bug_ignores: tuple[str, ...] = ()

    #: The centred-difference step of this exercise's numerical checks.
    h: float = 1e-5
    #: Whether the checking run looks for numerical differentiation in the student's code
    #: (:mod:`course.exercises.numerical`): not where none is wanted (a forward pass, an
    #: optimiser's step) or where it is the exercise (``numerical_gradient``).
    watch_numerical: bool = True

    def numerical(
        self,
        f: Callable[[np.ndarray], Any],
        x: np.ndarray,
        grad_out: np.ndarray | None,
        indices: list[tuple[int, ...]] | None,
    ) -> np.ndarray:
        """The numerical gradient the student's is compared with (override for another method)."""
        return numerical_gradient(f, x, grad_out, h=self.h, indices=indices)

    def compare(self, name: str, analytic: np.ndarray, numeric: np.ndarray, **kwargs: Any) -> TensorCheck:
        """How an analytic gradient is judged against the numerical one (override to rescale)."""
        return compare(name, analytic, numeric, **kwargs)

    def compare_gradient(
        self,
        verdict: Verdict,
        name: str,
        analytic: np.ndarray | None,
        f: Callable[[np.ndarray], Any],
        x: np.ndarray,
        grad_out: np.ndarray | None,
        *,
        batch: int | None = None,
        max_entries: int | None = None,
        rng: np.random.Generator | None = None,
        tol: float = TOLERANCE,
        elementwise: bool = False,
        averaged: bool = True,
    ) -> TensorCheck | None:
        """Compare ``analytic`` with the numerical gradient of ``sum(f(x) * grad_out)``, on a
        random sample of ``max_entries`` entries when ``x`` is larger.

        ``elementwise=True`` says that entry i of ``f(x)`` depends on ``x[i]`` alone (an
        activation): the sampled entries are then differenced on an array of just those
        entries, which gives the same numbers without a forward pass over the whole tensor
        for every step.
        """
        if analytic is None:
            return None
        if not (isinstance(x, np.ndarray) and x.dtype == np.float64):
            x = np.array(x, dtype=np.float64)  # perturbed in place: pass the live array to keep f in sync
        indices = None
        if max_entries is not None and x.size > max_entries:
            rng = rng or judge_rng()
            flat = np.sort(rng.choice(x.size, size=max_entries, replace=False))
            indices = [tuple(int(i) for i in np.unravel_index(k, x.shape)) for k in flat]
        if elementwise and indices is not None:
            rows = tuple(np.array(ix) for ix in zip(*indices, strict=True))
            weight = None if grad_out is None else np.asarray(grad_out, dtype=np.float64)[rows]
            numeric = np.full(x.shape, np.nan)
            numeric[rows] = self.numerical(f, x[rows].copy(), weight, None)
        else:
            numeric = self.numerical(f, x, grad_out, indices)
        result = self.compare(name, analytic, numeric, tol=tol, indices=indices, batch=batch, averaged=averaged)
        verdict.checks.append(result)
        return result

    @staticmethod
    def compare_values(
        verdict: Verdict, name: str, got: np.ndarray | None, expected: ArrayLike, tol: float = 1e-9
    ) -> None:
        """Compare two computed values (not gradients) entry by entry."""
        if got is None:
            return
        verdict.checks.append(compare(name, got, np.asarray(expected, dtype=np.float64), tol=tol, noun="result"))


def judge_rng() -> np.random.Generator:
    """A generator seeded from fresh entropy, for the entries a judge samples from a large
    tensor: were they predictable, a submission could compute just those by finite differences."""
    return np.random.default_rng(secrets.randbits(64))


REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    if exercise.name in REGISTRY:
        raise ValueError(f"exercise {exercise.name!r} is registered twice")
    REGISTRY[exercise.name] = exercise
    return exercise


def get(name: str) -> Exercise:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no exercise named {name!r}; known: {sorted(REGISTRY)}") from None


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


#: Files whose functions the detector ignores: the machinery that calls the student's code
#: (it hands the case's own inputs around) and the detector itself.
_MACHINERY = frozenset({__file__, numerical.__file__})


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
