"""Gradient checking: compare an analytic gradient with centred differences in float64.

The centred difference (f(x + h) − f(x − h)) / 2h has error O(h²), against O(h) for the
forward difference, and h = 1e-5 balances that truncation error against float64 round-off.
Errors are reported as relative errors |a − n| / max(|a| + |n|, 1e-8): below 1e-7 is right,
above 1e-2 is almost certainly a bug (near a kink, numbers in between need a closer look).

:func:`check_layer` and :func:`check_loss` check every gradient a layer or loss produces and
return a :class:`GradCheckReport` that says, for each tensor, how far off it is, where, and
(when it recognises the pattern) what the mistake probably is.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10 has no StrEnum: the same by hand, members are their strings for str() too
    from enum import Enum

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)


__all__ = [
    "GradCheckError",
    "Mistake",
    "GradCheckReport",
    "TensorCheck",
    "check_elementwise",
    "check_layer",
    "check_loss",
    "compare",
    "diagnose",
    "diagnosis",
    "numerical_gradient",
    "relative_error",
]

Array = NDArray[np.float64]
Index = tuple[int, ...]

#: Default pass threshold for the maximum relative error in float64.
TOLERANCE = 1e-7
#: Tensors larger than this are checked on a random sample of this many entries.
MAX_ENTRIES = 300


class GradCheckError(AssertionError):
    """Raised by :meth:`GradCheckReport.assert_ok`; its message is the student-facing report."""


class Mistake(StrEnum):
    """Stable names of the mistakes a hint recognises, whatever the exercise.

    A :class:`TensorCheck` carries one in ``mistake`` (a plain string: exercises add names of
    their own, such as "σ(x) instead of σ(x)(1 − σ(x))"), so that the grader can count, per
    exercise, how many failing submissions made each mistake.
    """

    WRONG_SIGN = "wrong sign"
    MISSING_MEAN = "missing 1/N"
    DOUBLED_MEAN = "doubled 1/N"
    NOT_SUMMED = "not summed over the batch"
    TRANSPOSED = "transposed"
    OVERWRITTEN = "overwritten instead of added into .grad"
    SWAPPED = "swapped inputs"
    ALL_ZEROS = "all zeros"
    INVERTED_MASK = "zero where it should not be (a mask or branch inverted)"
    NOT_ZERO = "not zero where the gradient is"
    CONSTANT_FACTOR = "a constant factor off"
    WRONG_SHAPE = "wrong shape"
    NOT_FINITE = "NaN or inf"


def _float64_array(x: ArrayLike, what: str) -> Array:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a numpy array (it is perturbed in place), got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(
            f"{what} must have dtype float64 for a reliable gradient check, got {x.dtype}; "
            "convert it with x.astype(np.float64)"
        )
    return x


def _entries(x: Array, indices: Sequence[Index] | None) -> list[Index]:
    if indices is not None:
        return [tuple(int(i) for i in np.atleast_1d(ix)) for ix in indices]
    return list(itertools.product(*(range(n) for n in x.shape)))


def numerical_gradient(
    f: Callable[[Array], ArrayLike],
    x: Array,
    grad_out: ArrayLike | None = None,
    h: float = 1e-5,
    *,
    indices: Sequence[Index] | None = None,
) -> Array:
    """Centred-difference gradient of ``sum(f(x) * grad_out)`` with respect to ``x``.

    Parameters
    ----------
    f : callable
        Takes ``x`` (the same array object, perturbed in place) and returns a number or an
        array. ``f`` may read ``x`` through a reference it already holds, as a layer reads
        its own ``W.data``.
    x : ndarray of float64, any shape
        Restored exactly, entry by entry, before this function returns (even on error).
    grad_out : array of f(x)'s shape, optional
        The upstream gradient. Defaults to 1, so for a scalar ``f`` this is df/dx and for an
        array ``f`` the gradient of ``f(x).sum()``.
    h : float
        The step.
    indices : sequence of index tuples, optional
        Compute only these entries (the rest of the result is NaN); used to sample large tensors.

    Returns
    -------
    ndarray of x's shape
    """
    x = _float64_array(x, "x")
    if h <= 0:
        raise ValueError(f"h must be positive, got {h}")
    weight = None if grad_out is None else np.asarray(grad_out, dtype=np.float64)

    def evaluate() -> Array:
        out = np.array(f(x), dtype=np.float64)
        if weight is not None and out.shape != weight.shape:
            raise ValueError(f"grad_out has shape {weight.shape} but f(x) returned shape {out.shape}")
        return out

    grad = np.full(x.shape, np.nan) if indices is not None else np.zeros(x.shape)
    for ix in _entries(x, indices):
        old = x[ix]
        try:
            x[ix] = old + h
            plus = evaluate()
            x[ix] = old - h
            minus = evaluate()
        finally:
            x[ix] = old
        # Difference the outputs before weighting and summing: entries that x[ix] does not
        # affect cancel exactly, instead of drowning the signal in a large sum's round-off.
        change = plus - minus
        total = np.sum(change) if weight is None else np.sum(change * weight)
        grad[ix] = total / (2.0 * h)
    return grad


def relative_error(a: ArrayLike, b: ArrayLike) -> float:
    """max over entries of |a − b| / max(|a| + |b|, 1e-8); 0.0 for empty arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(_elementwise_error(a, b)))


def _elementwise_error(a: Array, b: Array) -> Array:
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: reported as inf below
        err = np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)
    return np.where(np.isfinite(err), err, np.inf)  # NaN or inf anywhere is a failure


# ----------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------


@dataclass
class TensorCheck:
    """The verdict on one gradient tensor."""

    name: str
    shape: tuple[int, ...]
    max_rel_error: float
    worst_index: Index
    analytic_value: float
    numeric_value: float
    passed: bool
    n_checked: int
    hint: str = ""
    analytic: Array | None = field(default=None, repr=False)
    numeric: Array | None = field(default=None, repr=False)
    #: The recognised mistake's stable name (a :class:`Mistake` or an exercise's own), "" if none.
    mistake: str = ""

    def describe(self) -> str:
        where = f"at index {self.worst_index}" if self.shape else ""
        sampled = "" if self.n_checked == int(np.prod(self.shape)) else f", {self.n_checked} entries sampled"
        if self.passed:
            return f"ok    {self.name} {self.shape}: max relative error {self.max_rel_error:.1e}{sampled}"
        text = (
            f"WRONG {self.name} {self.shape}: max relative error {self.max_rel_error:.1e} {where}"
            f"{sampled}: your gradient is {self.analytic_value:.6g}, centred differences give "
            f"{self.numeric_value:.6g}"
        )
        return text + (f"\n      hint: {self.hint}" if self.hint else "")


@dataclass
class GradCheckReport:
    """Every tensor checked for one layer or loss, in a readable order."""

    subject: str
    checks: list[TensorCheck]
    problems: list[str] = field(default_factory=list)
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.passed for c in self.checks)

    def __getitem__(self, name: str) -> TensorCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no gradient named {name!r} in this report; have {[c.name for c in self.checks]}")

    def __str__(self) -> str:
        head = f"Gradient check of {self.subject}: {'all gradients match' if self.passed else 'FAILED'}"
        lines = [head] + [f"  {c.describe()}" for c in self.checks]
        lines += [f"  WRONG {p}" for p in self.problems]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle: bool) -> None:  # IPython display
        p.text(str(self))

    def assert_ok(self) -> GradCheckReport:
        """Raise :class:`GradCheckError` with the full report unless every check passed."""
        if not self.passed:
            raise GradCheckError(str(self))
        return self


def diagnose(
    analytic: ArrayLike, numeric: ArrayLike, *, batch: int | None = None, noun: str = "gradient", averaged: bool = True
) -> str:
    """Name the likely mistake when ``analytic`` is a recognisable distortion of ``numeric``.

    Returns "" when nothing is recognised (the hint of :func:`diagnosis`).
    """
    return diagnosis(analytic, numeric, batch=batch, noun=noun, averaged=averaged)[1]


def diagnosis(
    analytic: ArrayLike, numeric: ArrayLike, *, batch: int | None = None, noun: str = "gradient", averaged: bool = True
) -> tuple[str, str]:
    """The recognised mistake as (its :class:`Mistake` name, the student's hint); ("", "") if none.

    Only entries where the numerical gradient is clearly non-zero are used to estimate the
    ratio between the two. ``noun`` names what is compared in the hint ("gradient", or
    "result" for forward values). ``batch`` is the batch size N; ``averaged`` says whether the
    quantity differentiated is a mean over the batch (a loss) or not (a layer's output, whose
    parameter gradients are sums over the batch): N× too small is then a doubled 1/N, or an
    average where a sum belongs.
    """
    name, hint = _diagnose(analytic, numeric, batch, averaged)
    return name, hint.replace("gradient", noun)


def _diagnose(analytic: ArrayLike, numeric: ArrayLike, batch: int | None, averaged: bool) -> tuple[str, str]:
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        return Mistake.WRONG_SHAPE, f"your gradient has shape {a.shape} but should have shape {n.shape}"
    if not np.all(np.isfinite(a)):
        return Mistake.NOT_FINITE, (
            "your gradient contains NaN or inf: look for a division by zero or an overflowing exp"
        )
    scale = np.max(np.abs(n)) if n.size else 0.0
    if scale == 0:
        if np.allclose(a, 0):
            return "", ""
        return Mistake.NOT_ZERO, "the true gradient is zero here but yours is not"
    if np.allclose(a, 0, atol=1e-12):
        return Mistake.ALL_ZEROS, "your gradient is all zeros: was it computed but never added into .grad or returned?"
    if a.ndim == 2 and a.shape[0] == a.shape[1] and relative_error(a, n.T) < 1e-6:
        return Mistake.TRANSPOSED, (
            "your gradient is the transpose of the right one: check the order of the matrix product"
        )
    mask = np.abs(n) > 1e-3 * scale
    ratio = a[mask] / n[mask]
    if np.allclose(ratio, ratio[0], rtol=1e-4, atol=1e-12):
        r = float(ratio[0])
        if abs(r + 1) < 1e-4:
            return Mistake.WRONG_SIGN, "your gradient has the wrong sign everywhere"
        if abs(r) < 1e-9:  # zero wherever the true gradient is not (and so not all zeros)
            return Mistake.INVERTED_MASK, (
                "your gradient is zero exactly where the true one is not, and nonzero where it is zero: "
                "a mask or a branch (x > 0, the larger input, the correct class) is the wrong way round"
            )
        if abs(r - 1) < 1e-3:
            return "", ""  # right up to round-off: not a recognisable mistake
        if batch and batch > 1 and abs(r - batch) < 1e-3 * batch:
            if averaged:
                return Mistake.MISSING_MEAN, (
                    f"your gradient is {batch}× too large, exactly the batch size: the loss is a mean over the batch, "
                    "so its gradient has a factor 1/N; did you forget to divide by N?"
                )
            return Mistake.CONSTANT_FACTOR, (
                f"your gradient is {batch}× too large, exactly the batch size: nothing here is divided by N, "
                "so nothing should be multiplied by it either"
            )
        if batch and batch > 1 and abs(r - 1 / batch) < 1e-3 / batch:
            if averaged:
                return Mistake.DOUBLED_MEAN, (
                    f"your gradient is {batch}× too small, exactly the batch size: the 1/N of the mean is "
                    "applied once, where the loss is computed; did you divide by N a second time?"
                )
            return Mistake.NOT_SUMMED, (
                f"your gradient is {batch}× too small, exactly the batch size: a parameter used by every example "
                "gets the sum of their gradients over the batch (axis 0), not their mean"
            )
        if np.count_nonzero(mask) < 2:  # any wrong number is a multiple of the right one: no evidence
            return "", ""
        return Mistake.CONSTANT_FACTOR, f"your gradient is the right one times {r:.6g}: a constant factor is off"
    return "", ""


def compare(
    name: str,
    analytic: ArrayLike,
    numeric: ArrayLike,
    *,
    tol: float = TOLERANCE,
    indices: Sequence[Index] | None = None,
    batch: int | None = None,
    noun: str = "gradient",
    averaged: bool = True,
) -> TensorCheck:
    """Compare an analytic gradient with a numerical one (on ``indices`` only, if given).

    ``batch`` and ``averaged`` are passed to :func:`diagnosis` for the hint of a failure.
    """
    numeric = np.asarray(numeric, dtype=np.float64)
    try:
        analytic = np.asarray(analytic, dtype=np.float64)
    except (TypeError, ValueError):
        analytic = np.full(numeric.shape, np.nan)
    if analytic.shape != numeric.shape:
        return TensorCheck(
            name,
            numeric.shape,
            np.inf,
            (),
            np.nan,
            np.nan,
            False,
            0,
            hint=f"your {noun} has shape {analytic.shape} but should have shape {numeric.shape}",
            analytic=analytic,
            numeric=numeric,
            mistake=Mistake.WRONG_SHAPE,
        )
    if indices is None:
        a_vals, n_vals = analytic, numeric
        positions = list(np.ndindex(numeric.shape)) if numeric.size <= MAX_ENTRIES else None
    else:
        rows = tuple(np.array(ix) for ix in zip(*indices, strict=True)) if indices else ()
        a_vals, n_vals = (analytic[rows], numeric[rows]) if indices else (np.zeros(0), np.zeros(0))
        positions = list(indices)
    err = _elementwise_error(np.ravel(a_vals), np.ravel(n_vals))
    if err.size == 0:
        return TensorCheck(name, numeric.shape, 0.0, (), 0.0, 0.0, True, 0, analytic=analytic, numeric=numeric)
    k = int(np.argmax(err))
    worst = positions[k] if positions is not None else np.unravel_index(k, numeric.shape)
    worst = tuple(int(i) for i in worst)
    max_err = float(err[k])
    passed = max_err < tol
    mistake, hint = ("", "") if passed else diagnosis(a_vals, n_vals, batch=batch, noun=noun, averaged=averaged)
    return TensorCheck(
        name,
        numeric.shape,
        max_err,
        worst,
        float(analytic[worst]),
        float(numeric[worst]),
        passed,
        int(err.size),
        hint,
        analytic=analytic,
        numeric=numeric,
        mistake=mistake,
    )


def _sample(shape: tuple[int, ...], rng: np.random.Generator, max_entries: int) -> list[Index] | None:
    size = int(np.prod(shape))
    if size <= max_entries:
        return None
    flat = rng.choice(size, size=max_entries, replace=False)
    return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in np.sort(flat)]


def check_layer(
    layer,
    x: ArrayLike,
    *,
    grad_out: ArrayLike | None = None,
    rng: int | np.random.Generator | None = 0,
    h: float = 1e-5,
    tol: float = TOLERANCE,
    max_entries: int = MAX_ENTRIES,
) -> GradCheckReport:
    """Check a layer's input gradient and every parameter gradient against centred differences.

    The check also catches the two classic protocol mistakes: parameter gradients are
    pre-filled with random values before ``backward`` so that *overwriting* ``p.grad``
    instead of adding into it is caught, and ``grad_out`` and ``x`` must come back unchanged.

    Parameters
    ----------
    layer : Layer
        Anything with ``forward``, ``backward`` and ``parameters()``.
    x : array (N, ...)
        The input; converted to a float64 copy.
    grad_out : array of the output's shape, optional
        Random N(0, 1) when omitted.
    rng : seed or Generator
        Draws grad_out, the pre-filled gradients and the sampled entries.
    max_entries : int
        Tensors with more entries are checked on a random sample of this many.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    name = type(layer).__name__
    x = np.array(x, dtype=np.float64)
    x_before = x.copy()
    out = np.asarray(layer.forward(x), dtype=np.float64)
    upstream = rng.standard_normal(out.shape) if grad_out is None else np.array(grad_out, dtype=np.float64)
    upstream_sent = upstream.copy()
    params = list(layer.parameters())
    prefill = [rng.standard_normal(p.data.shape) for p in params]
    for p, g0 in zip(params, prefill, strict=True):
        p.grad[...] = g0
    problems: list[str] = []
    grad_x = layer.backward(upstream_sent)
    if not np.array_equal(upstream_sent, upstream):
        problems.append("grad_out was modified in place by backward(); compute into a new array instead")
    if not np.array_equal(x, x_before):
        problems.append("the input x was modified in place by forward() or backward()")
        x = x_before.copy()
    added = [p.grad - g0 for p, g0 in zip(params, prefill, strict=True)]
    batch = x.shape[0] if x.ndim else None

    checks = []
    idx = _sample(x.shape, rng, max_entries)
    num_x = numerical_gradient(layer.forward, x, upstream, h, indices=idx)
    checks.append(compare("dL/dx", grad_x, num_x, tol=tol, indices=idx, batch=batch, averaged=False))
    for i, (p, grad_p) in enumerate(zip(params, added, strict=True)):
        label = f"dL/d{p.name or f'param{i}'}"
        idx = _sample(p.data.shape, rng, max_entries)
        num_p = numerical_gradient(lambda _: layer.forward(x), p.data, upstream, h, indices=idx)
        check = compare(label, grad_p, num_p, tol=tol, indices=idx, batch=batch, averaged=False)
        if not check.passed and compare(label, p.grad, num_p, tol=tol, indices=idx).passed:
            check.hint = f"{p.name}.grad was overwritten (=) instead of accumulated (+=)"
            check.mistake = Mistake.OVERWRITTEN
        checks.append(check)
    layer.forward(x)  # leave the layer's cache consistent with x
    return GradCheckReport(repr(layer) if hasattr(layer, "__repr__") else name, checks, problems, tol)


def check_loss(
    loss,
    pred: ArrayLike,
    target: ArrayLike,
    *,
    h: float = 1e-5,
    tol: float = TOLERANCE,
    rng: int | np.random.Generator | None = 0,
    max_entries: int = MAX_ENTRIES,
) -> GradCheckReport:
    """Check ``loss.backward()`` (dL/dpred) against centred differences of ``loss.forward``."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pred = np.array(pred, dtype=np.float64)
    value = loss.forward(pred, target)
    problems = []
    if not isinstance(value, float | np.floating) or np.ndim(value) != 0:
        problems.append(f"forward() should return a float, got {type(value).__name__}")
    grad = loss.backward()
    idx = _sample(pred.shape, rng, max_entries)
    num = numerical_gradient(lambda p: loss.forward(p, target), pred, None, h, indices=idx)
    batch = pred.shape[0] if pred.ndim else None
    loss.forward(pred, target)
    check = compare("dL/dpred", grad, num, tol=tol, indices=idx, batch=batch)
    return GradCheckReport(repr(loss), [check], problems, tol)


def check_elementwise(
    f: Callable[[Array], ArrayLike],
    f_grad: Callable[[Array], ArrayLike],
    x: ArrayLike,
    *,
    name: str | None = None,
    h: float = 1e-5,
    tol: float = TOLERANCE,
) -> GradCheckReport:
    """Check an elementwise derivative ``f_grad(x)`` (= f'(x) per entry) against ``f``."""
    x = np.array(x, dtype=np.float64)
    num = numerical_gradient(f, x, None, h)
    label = name or getattr(f, "__name__", "f")
    return GradCheckReport(f"{label}'", [compare(f"d{label}/dx", f_grad(x.copy()), num, tol=tol)], [], tol)
