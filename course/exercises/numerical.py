"""Spotting a "backward" that is computed by numerical differentiation (best effort).

A derivative of an elementwise function (an activation, an elementwise loss, a penalty, a
``Value`` operation) costs one forward pass by finite differences or by the complex step
``imag(f(x + ih)) / h``, whatever the size of the case, so no case size keeps such a
"backward" from earning points. :func:`watching` looks for the traces such code leaves while
the student's code runs on a case:

* **complex numbers**: a complex array or number handed to any Python-level function (the
  library's forward, the student's own, a lambda, ``np.imag``), a ``cmath`` function called,
  or a ufunc (``+``, ``np.exp``, ...) on the case's input with a complex operand;
* **a forward at perturbed inputs**: a Python-level function (or method: the arrays its
  object holds count, ``self.x``, ``self.W.data``) called with a copy of an input
  of the case that differs by a small step (1e-7 ≤ max|a − x| / (1 + max|x|) ≤ 0.1), or by a
  smaller one (down to 1e-10) when the same function is also called with the input itself or
  with another such copy: ``f(x + h)`` and ``f(x)`` or ``f(x − h)``;
* **a difference quotient**: a small step added to an input of the case (in place too), then
  a result divided by that step or by twice it;
* **scalar steps**: a Python-level function called on consecutive scalar arguments that differ
  by the same small round step (h or 2h, h = 10⁻ᵏ) again and again (``g(x + h)``, ``g(x − h)``
  at every node or gate).

The inputs of the case reach the student's code as :class:`Tracked` arrays (an ``ndarray``
subclass that watches ufuncs) and a profile hook inspects the arguments of every Python-level
call. Honest code is not flagged: a stability epsilon (``p + 1e-12``, ``np.clip(p, eps, 1 −
eps)``, ``x − x.max()``) is no small step, or is never followed by a division by it, and
recomputing a value with the own forward passes the same input, not a perturbed one.

This runs in the untrusted process, so a determined cheater can evade it (``np.asarray`` of
the input before perturbing it, finite differences written inline without any function call,
a step far from the ones above); it is there to tell students who did this in good faith that
it earns nothing, while the case sizes (see ``benchmarks/README.md``) protect what size can.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PREFIX", "Detector", "Tracked", "flag_of", "problem", "tracked_arrays", "watching"]

#: A step is at most this fraction of (1 + max|x|) (a function linear in x is differenced
#: exactly with any step: h = 1 is a natural choice there) ...
LARGEST_STEP = 1.0
#: ... and a step added by a ufunc before a division by it at most this one (``x + 1`` and
#: ``/ 2`` both occur in honest code).
LARGEST_UFUNC_STEP = 0.1
#: ... and at least this one: stability epsilons (1e-12, 1e-15) are smaller.
SMALLEST_STEP = 1e-10
#: A function called once at a copy moved this far (or more) is flagged; a smaller step only
#: when the same function is also called at the input itself or at another copy.
SINGLE_STEP = 1e-7
#: Consecutive scalar arguments this close (relative to 1 + |a|) count as a step ...
SCALAR_STEP = 1e-3
#: ... once the same step has been seen this many times.
SCALAR_REPEATS = 3

PREFIX = "computed numerically ("
_SUFFIX = (
    "): a derivative obtained by evaluating a function at nearby or complex points earns no credit "
    "here, even when it is accurate: work the derivative out by hand and write the derivative's formula instead"
)

_ACTIVE: Detector | None = None


def problem(detail: str) -> str:
    """The student-facing problem of a check caught computing numerically."""
    return f"{PREFIX}{detail}{_SUFFIX}"


def flag_of(exercise: str, text: str) -> str | None:
    """The short flag for a problem made by :func:`problem` (None for any other problem): the
    exercise and the first trace found."""
    if not text.startswith(PREFIX) or _SUFFIX not in text:
        return None
    first = text[len(PREFIX) : text.index(_SUFFIX)].split("; ")[0]
    return f"computed numerically: {exercise} ({first})"


def _is_complex(value: Any) -> bool:
    if isinstance(value, complex | np.complexfloating):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind == "c"


def _name(code: Any) -> str:
    name = getattr(code, "co_qualname", code.co_name)
    return "a lambda" if name.endswith("<lambda>") else name


#: Where numpy's Python code lives: calls into it are numpy's machinery, not the function a
#: finite difference evaluates (that one is the student's or the library's).
_NUMPY = str(Path(np.__file__).parent)


class Detector:
    """What the student's code did on one case that looks like numerical differentiation.

    ``arrays`` are the case's inputs (the originals, which the student's code never sees).
    ``findings`` holds a short description of each trace found (the first few only).
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.inputs = [
            (name, a, 1.0 + float(np.max(np.abs(a))))
            for name, a in arrays.items()
            if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size > 0 and np.all(np.isfinite(a))
        ]
        self._findings: dict[str, str] = {}
        self.steps: set[float] = set()
        self._seen: dict[tuple[Any, str], set[float]] = {}  # (code, input) -> max|a − x| of each call
        self._last: dict[Any, float] = {}
        self._gaps: Counter[tuple[Any, float]] = Counter()

    @property
    def findings(self) -> list[str]:
        """One short description per kind of trace found, in the order found."""
        return list(self._findings.values())

    def note(self, kind: str, finding: str) -> None:
        self._findings.setdefault(kind, finding)

    # -- the profile hook's view: Python-level calls --------------------------------------

    def call(self, frame: Any) -> None:
        """Inspect the arguments of a Python-level call (a profile hook's "call" event), with
        numpy's error settings of its own: a notebook's ``np.seterr(all="raise")`` is for its
        arithmetic, not the detector's."""
        with np.errstate(all="ignore"):
            self._call(frame)

    def _call(self, frame: Any) -> None:
        code = frame.f_code
        # numpy's own Python-level helpers (np.sum's dispatcher) are not the function a finite
        # difference evaluates: only complex numbers handed to them count (np.where(x + 1j*h ...)).
        machinery = code.co_filename.startswith(_NUMPY)
        count = code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & 4) + bool(code.co_flags & 8)
        if count == 0:
            return
        local = frame.f_locals
        values: list[Any] = []
        for var in code.co_varnames[:count]:
            value = local.get(var)
            if isinstance(value, tuple | list) and len(value) <= 8:
                values.extend(value)
            elif isinstance(value, dict) and len(value) <= 8:
                values.extend(value.values())
            else:
                values.append(value)
        if code.co_varnames[0] == "self":
            values.extend(_held_arrays(local.get("self")))
        scalar = None
        for value in values:
            if _is_complex(value):
                self.note("complex", f"{_name(code)} called with complex numbers: the complex step")
                return
            if machinery:
                continue
            if isinstance(value, np.ndarray) and value.ndim > 0 and value.dtype.kind == "f":
                self._array_argument(code, value)
            elif scalar is None and isinstance(value, float | np.floating) and math.isfinite(value):
                scalar = float(value)
        if scalar is not None and not machinery:
            self._scalar_argument(code, scalar)

    def c_call(self, function: Any) -> None:
        """A builtin called (a profile hook's "c_call" event): ``cmath`` is complex math."""
        if getattr(function, "__module__", None) == "cmath":
            self.note("complex", f"cmath.{function.__name__} used: the complex step")

    def _array_argument(self, code: Any, value: np.ndarray) -> None:
        if value.size < 2:
            # One number near an input's is no sign of anything (an honest sigmoid of a logit
            # near its target, say); a difference quotient is still caught on the larger cases
            # that every check also has.
            return
        for name, original, scale in self.inputs:
            if value.shape != original.shape:
                continue
            difference = value - original
            step = float(np.max(np.abs(difference)))
            if step > LARGEST_STEP * scale:
                continue
            # the input itself (or within round-off of it) is version 0; a perturbed copy is
            # known by its step and the sum of its changes (x + h and x − h differ in sign)
            if step > SMALLEST_STEP * scale and not _is_step(original, difference, step, scale):
                continue  # not x + h (somewhere), or x − max(x), the log-sum-exp shift
            if np.all(value[difference != 0] == 0):
                continue  # entries set to zero (a mask: ReLU's, Maxout's), not moved by a step
            version = 0.0 if step <= SMALLEST_STEP * scale else float(f"{float(np.sum(difference)) or step:.6g}")
            seen = self._seen.setdefault((code, name), set())
            seen.add(version)
            if version != 0.0 and (step >= SINGLE_STEP * scale or len(seen) > 1):
                self.note("perturbed", f"{_name(code)} evaluated at perturbed copies of {name}")

    def _scalar_argument(self, code: Any, a: float) -> None:
        last = self._last.get(code)
        self._last[code] = a
        if last is None:
            return
        gap = abs(a - last)
        if gap == 0.0 or gap > SCALAR_STEP * (1.0 + abs(a)) or not _round_step(gap):
            return
        key = (code, float(f"{gap:.6g}"))
        self._gaps[key] += 1
        if self._gaps[key] >= SCALAR_REPEATS:
            self.note("steps", f"{_name(code)} evaluated again and again a step {gap:.0e} apart")

    # -- the tracked inputs' view: ufuncs -------------------------------------------------

    def ufunc(self, ufunc: np.ufunc, inputs: tuple, result: Any) -> None:
        """Inspect one ufunc on tracked arrays (``inputs`` as the student passed them)."""
        with np.errstate(all="ignore"):
            self._ufunc(ufunc, inputs, result)

    def _ufunc(self, ufunc: np.ufunc, inputs: tuple, result: Any) -> None:
        if any(_is_complex(i) for i in inputs) or any(_is_complex(r) for r in _results(result)):
            self.note("complex", f"np.{ufunc.__name__} applied to the input with complex numbers: the complex step")
            return
        if ufunc in (np.add, np.subtract) and len(inputs) == 2:
            self._perturbation(inputs)
        elif ufunc in (np.divide, np.multiply) and len(inputs) == 2 and self.steps:
            self._quotient(ufunc, inputs)

    def _perturbation(self, inputs: tuple) -> None:
        for mine, other in (inputs, inputs[::-1]):
            name = getattr(mine, "_case_input", None)
            if name is None or isinstance(other, Tracked):
                continue
            scale = next((s for n, _, s in self.inputs if n == name), None)
            try:
                step = float(np.max(np.abs(np.asarray(other, dtype=np.float64))))
            except (TypeError, ValueError):
                continue
            if scale is not None and SMALLEST_STEP * scale < step <= LARGEST_UFUNC_STEP * scale:
                self.steps.add(step)

    def _quotient(self, ufunc: np.ufunc, inputs: tuple) -> None:
        numerator, by = inputs
        if ufunc is np.multiply and not isinstance(numerator, Tracked):
            numerator, by = by, numerator
        if not isinstance(numerator, Tracked) or isinstance(by, np.ndarray) and by.ndim > 0:
            return
        try:
            d = abs(float(by))
        except (TypeError, ValueError):
            return
        if d == 0.0 or not math.isfinite(d):
            return
        if ufunc is np.multiply:
            d = 1.0 / d
        for h in self.steps:
            if any(abs(d - k * h) <= 1e-9 * k * h for k in (1.0, 2.0)):
                self.note("quotient", f"a difference divided by the step {h:.0e} added to the input")
                return


def _round_step(gap: float) -> bool:
    """Whether ``gap`` is h or 2h for a step h = 10⁻ᵏ, up to the round-off of x ± h: the steps
    people choose. Values of an honest graph repeat (a node reused), and so do the gaps between
    them, but they are not round numbers."""
    power = 10.0 ** math.floor(math.log10(gap))
    return any(abs(gap - k * power) <= 1e-6 * gap for k in (1.0, 2.0, 10.0))


def _held_arrays(obj: Any) -> list[np.ndarray]:
    """The arrays an object holds (``self.x``, ``self.W.data``, ``self.params["W1"]``): a
    method called after one of them was moved by a step is a forward at a perturbed point."""
    held = getattr(obj, "__dict__", None)
    if not isinstance(held, dict) or len(held) > 32:
        return []
    arrays: list[np.ndarray] = []
    for value in held.values():
        value = getattr(value, "data", value) if not isinstance(value, np.ndarray) else value
        if isinstance(value, dict) and len(value) <= 16:
            arrays.extend(v for v in value.values() if isinstance(v, np.ndarray))
        elif isinstance(value, np.ndarray):
            arrays.append(value)
    return arrays


def _is_step(original: np.ndarray, difference: np.ndarray, step: float, scale: float) -> bool:
    """Whether ``difference`` (a copy minus ``original``) is one step h added to some entries
    and nothing to the others; 2x or x² change entries by many amounts, and x − max(x) (the
    log-sum-exp shift) moves every entry by minus the largest entry."""
    tiny = 8 * np.finfo(np.float64).eps * scale
    moved = difference[np.abs(difference) > SMALLEST_STEP * scale]
    if moved.size == 0 or np.ptp(moved) > 1e-6 * step + tiny:
        return False
    shift = float(moved[0])
    everywhere = moved.size == difference.size
    return not (everywhere and min(abs(shift + original.max()), abs(shift + original.min())) <= 1e-9 * scale)


def _results(result: Any) -> tuple:
    return result if isinstance(result, tuple) else (result,)


class Tracked(np.ndarray):
    """An input of a case as the student's code receives it: an ordinary float64 array whose
    ufuncs are shown to the active :class:`Detector` (results are Tracked too)."""

    _case_input: str | None = None

    def __array_finalize__(self, obj: Any) -> None:
        # copies, views and slices of an input are that input; ufunc results are set below
        self._case_input = getattr(obj, "_case_input", None)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        raw = tuple(i.view(np.ndarray) if isinstance(i, Tracked) else i for i in inputs)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Tracked) else o for o in out)
        result = getattr(ufunc, method)(*raw, **kwargs)
        detector = _ACTIVE
        if detector is not None and method == "__call__":
            try:
                detector.ufunc(ufunc, inputs, result)
            except Exception:  # noqa: BLE001 - watching must never break the student's code
                pass
        if method == "at" or result is None:
            return None
        if out is not None:
            return out[0] if len(out) == 1 else out
        return tuple(_wrap(r) for r in result) if isinstance(result, tuple) else _wrap(result)


def _wrap(value: Any) -> Any:
    if type(value) is not np.ndarray:
        return value
    wrapped = value.view(Tracked)
    wrapped._case_input = None
    return wrapped


def tracked_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each float array of ``arrays`` as a :class:`Tracked` copy named after its key."""
    result = {}
    for name, a in arrays.items():
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            t = a.copy().view(Tracked)
            t._case_input = name
            result[name] = t
        else:
            result[name] = a
    return result


@contextlib.contextmanager
def watching(detector: Detector) -> Iterator[Detector]:
    """Make ``detector`` the one :class:`Tracked` arrays report to, for the duration."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, detector
    try:
        yield detector
    finally:
        _ACTIVE = previous
