"""Exercises of the layers assignment: backward of Linear, the activations, the lecture's
LinearSigmoid layer, and Sequential.

Two refinements of the plain centred-difference check keep a correct solution from failing
by bad luck on random cases (with plain differences about one hidden Linear check in forty
failed):

* :func:`extrapolated_gradient` has a hundred times less round-off, which matters where a true
  gradient entry is a sum that nearly cancels;
* :func:`compare_scaled` judges an entry smaller than 1e-4 times the tensor's largest on
  that scale, since no finite difference resolves it to a relative 1e-7 (a saturated tanh
  unit gives such entries).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .. import layers as L
from ..gradcheck import TOLERANCE, TensorCheck, compare, numerical_gradient
from .kinds import LayerExercise, away_from
from .records import FLOAT32_HINT, KnownBug, float32_values
from .registry import get, register

__all__ = ["ExtrapolatedGradients", "compare_scaled", "extrapolated_gradient"]

#: Entries below this fraction of the largest |numerical| entry are judged on that scale.
FLOOR = 1e-4


def extrapolated_gradient(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    grad_out: np.ndarray | None = None,
    *,
    h: float = 1e-3,
    indices: list[tuple[int, ...]] | None = None,
) -> np.ndarray:
    """Centred differences at steps h and 2h combined as (4 D(h) − D(2h)) / 3 (Richardson).

    D(h) = f' + h² f'''/6 + O(h⁴) carries round-off of order ε|f|/h. Cancelling the h² term
    allows a step 100 times larger than the usual 1e-5 for the same truncation error, and so
    100 times less round-off. Kinks must stay more than 2h away (ReLU, hinge: use h = 1e-4 with
    a gap of 1e-3). Same arguments and result as :func:`course.gradcheck.numerical_gradient`.
    """
    fine = numerical_gradient(f, x, grad_out, h, indices=indices)
    coarse = numerical_gradient(f, x, grad_out, 2.0 * h, indices=indices)
    return (4.0 * fine - coarse) / 3.0


def compare_scaled(
    name: str,
    analytic: np.ndarray,
    numeric: np.ndarray,
    *,
    tol: float = TOLERANCE,
    indices: list[tuple[int, ...]] | None = None,
    batch: int | None = None,
    averaged: bool = True,
) -> TensorCheck:
    """:func:`course.gradcheck.compare`, with |a − n| / max(|a| + |n|, FLOOR · max|n|) as the
    error of each entry, so that entries far below the tensor's scale are not held to a
    relative accuracy that finite differences cannot reach.

    The verdict, the error reported and the worst entry (the one the message names and the
    picture rings) all come from that measure; the hint and mistake from ``compare``.
    """
    check = compare(name, analytic, numeric, tol=tol, indices=indices, batch=batch, averaged=averaged)
    if check.passed or check.n_checked == 0:
        return check
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if indices is not None:
        rows = tuple(np.array(ix) for ix in zip(*indices, strict=True))
        a, n, positions = a[rows], n[rows], list(indices)
    else:
        a, n, positions = a.ravel(), n.ravel(), list(np.ndindex(n.shape))
    floor = max(FLOOR * float(np.max(np.abs(n))), 1e-8)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)
    err = np.where(np.isfinite(err), err, np.inf)
    k = int(np.argmax(err))
    passed = bool(err[k] < tol)
    return replace(
        check,
        max_rel_error=float(err[k]),
        worst_index=tuple(int(i) for i in positions[k]),
        analytic_value=float(a[k]),
        numeric_value=float(n[k]),
        passed=passed,
        hint="" if passed else check.hint,
        mistake="" if passed else check.mistake,
    )


class ExtrapolatedGradients:
    """Mixin for an :class:`~course.exercises.exercise.Exercise`: its numerical checks use
    :func:`extrapolated_gradient` with the step ``self.h``, judged by :func:`compare_scaled`."""

    h: float = 1e-3

    def numerical(self, f, x, grad_out, indices):
        return extrapolated_gradient(f, x, grad_out, h=self.h, indices=indices)

    def compare(self, name, analytic, numeric, **kwargs):
        return compare_scaled(name, analytic, numeric, **kwargs)


class _LayerExercise(ExtrapolatedGradients, LayerExercise):
    def __init__(self, *args: Any, h: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h = h


class _AffineLayerExercise(_LayerExercise):
    """Linear: affine in x, W and b, so plain centred differences are exact for any step, and
    a step of 1 leaves almost no round-off. Half the forward passes of the extrapolated check,
    which matters on the large case (each pass is about 5 ms)."""

    def numerical(self, f, x, grad_out, indices):
        return numerical_gradient(f, x, grad_out, 1.0, indices=indices)


#: An activation layer's dL/dx computed from a formula agrees with the reference's to a few
#: units in the last place; a difference quotient (forward, centred, extrapolated) is 1e-11
#: or further off, whatever its step. Relative, on the scale of the tensor's largest entry.
EXACT_TOL = 1e-12


class _ActivationLayerExercise(_LayerExercise):
    """Sigmoid, Tanh, ReLU: the judge also compares dL/dx with the reference backward's entry
    by entry (only once centred differences pass), to :data:`EXACT_TOL`. One pass over a
    perturbed copy differences every entry of an elementwise layer at once, so no case size
    protects it; this does, for any real-valued difference quotient (the complex step is exact
    and left to the checking run's detector, course.exercises.numerical). ``exact_tol``:
    ReLU's derivative is 0 or 1, so a formula matches it exactly."""

    def __init__(self, *args: Any, exact_tol: float = EXACT_TOL, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exact_tol = exact_tol

    def judge(self, case, outputs):
        v = super().judge(case, outputs)
        if not v.checks or not all(c.passed for c in v.checks):
            return v
        grad_x = outputs.get("grad_x")
        layer = self._layer(self.reference, case)
        layer.forward(case.arrays["x"].copy())
        exact = np.asarray(layer.backward(case.arrays["grad_out"].copy()), dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.maximum(np.abs(grad_x) + np.abs(exact), 1e-12 * float(np.max(np.abs(exact))))
            err = np.abs(grad_x - exact) / scale
        # Equal entries are exact, zeros included (a ReLU whose inputs are all negative: 0 / 0).
        err = np.where(grad_x == exact, 0.0, np.where(np.isfinite(err), err, np.inf))
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape))
        passed = bool(err[worst] < self.exact_tol)
        hint = (
            ""
            if passed
            else FLOAT32_HINT
            if float32_values(grad_x)
            else (
                f"your dL/dx is off by a relative {err[worst]:.1e} at index {worst}: right to many digits, but far "
                "more than round-off, as a numerical approximation (a difference quotient of the forward) is; "
                "write the derivative's formula instead"
            )
        )
        v.checks.append(
            TensorCheck(
                "dL/dx (to machine precision)",
                exact.shape,
                float(err[worst]),
                worst,
                float(grad_x[worst]),
                float(exact[worst]),
                passed,
                int(err.size) if passed else 0,
                hint,
                analytic=grad_x,
                numeric=exact,
            )
        )
        return v


def _dense_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """Visible: a small batch, then a large one; hidden: random shapes, a batch of one, and the
    large batch. The large case is one that a finite-difference "backward" cannot finish under
    the grader's CPU limit, so visible points too need a real backward pass: even colouring the
    Jacobian (one pass per column of x for dL/dx, one per row of W for dL/dW) takes 2D + 2 =
    65,538 forward passes of about 5 ms (benchmarks/README.md), against 20 s per case."""
    large = {"args": [32768, 32], "input_shape": [64, 32768], "max_entries": 20}
    large["label"] = "a large batch (64 x 32768 -> 32)"
    if not hidden:
        return [{"args": [3, 4], "input_shape": [5, 3]}, large]
    d, m, n = (int(k) for k in rng.integers(2, 9, 3))
    return [
        {"args": [d, m], "input_shape": [n, d]},
        {"args": [m, d], "input_shape": [1, m], "label": "a batch of one example"},
        large,
    ]


def _elementwise_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """Activations accept any shape: hidden cases include a 3-D input. Visible and hidden cases
    end with a large input: ReLU's forward is so cheap that a finite-difference backward must
    face 524,288 entries to be out of time."""
    large = {"input_shape": [512, 1024], "max_entries": 20, "label": "a large input (512 x 1024)"}
    if not hidden:
        return [{"input_shape": [4, 3]}, large]
    n, d, k = (int(k) for k in rng.integers(1, 9, 3))
    return [{"input_shape": [n, d]}, {"input_shape": [n, d, k]}, large]


register(_AffineLayerExercise("layers.Linear.backward", "Linear.backward", L.Linear, _dense_settings))
register(
    _ActivationLayerExercise(
        "layers.Sigmoid.backward", "Sigmoid.backward", L.Sigmoid, _elementwise_settings, elementwise=True
    )
)
register(
    _ActivationLayerExercise("layers.Tanh.backward", "Tanh.backward", L.Tanh, _elementwise_settings, elementwise=True)
)
register(
    # Inputs stay 1e-3 from the kink at 0, so both difference steps (h and 2h) stay on one side.
    _ActivationLayerExercise(
        "layers.ReLU.backward",
        "ReLU.backward",
        L.ReLU,
        _elementwise_settings,
        sampler=away_from(0.0),
        h=1e-4,
        elementwise=True,
        exact_tol=1e-15,
    )
)
register(
    _LayerExercise(
        "layers.LinearSigmoid.backward",
        "LinearSigmoid.backward",
        L.LinearSigmoid,
        lambda rng, hidden: [
            dict(s, kwargs={"bias": b})
            for s, b in zip(_dense_settings(rng, hidden), [False, True, False], strict=False)
        ],
    )
)


def _mlp(cls, cfg: dict) -> L.Layer:
    """A Sequential of *reference* layers: only Sequential.backward is the student's."""
    d, h, c = cfg["sizes"]
    return cls(L.Linear(d, h), L.Tanh(), L.Linear(h, c), L.Sigmoid())


def _sequential_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """A small network, then a large one (visible and hidden alike)."""
    large = {"sizes": [256, 192, 10], "input_shape": [128, 256], "max_entries": 20}
    large["label"] = "a large network (256-192-10)"
    if not hidden:
        return [{"sizes": [3, 5, 2], "input_shape": [4, 3]}, large]
    d, h, c, n = (int(k) for k in rng.integers(2, 9, 4))
    return [{"sizes": [d, h, c], "input_shape": [n, d]}, large]


_sequential = register(
    _LayerExercise("layers.Sequential.backward", "Sequential.backward", L.Sequential, _sequential_settings, build=_mlp)
)
# The network of a case is made of reference layers: the checks of Sequential.backward keep
# their backward even though the assignment's other exercises withhold it.
_sequential.needs = [(L.Linear, "backward"), (L.Tanh, "backward"), (L.Sigmoid, "backward")]


# ----------------------------------------------------------------------------------------
# Known mistakes, recognised by running them (base.KnownBug)
# ----------------------------------------------------------------------------------------


# The known bugs are run on arrays only, so their backward takes an array, not any ArrayLike.
class _SigmoidWithoutY(L.Sigmoid):
    def backward(self, grad_out: np.ndarray) -> np.ndarray:  # type: ignore[override]
        return grad_out * (1.0 - self._saved("y"))


class _TanhWithoutSquare(L.Tanh):
    def backward(self, grad_out: np.ndarray) -> np.ndarray:  # type: ignore[override]
        return grad_out * (1.0 - self._saved("y"))


class _LinearSigmoidWithoutLocalInW(L.LinearSigmoid):
    def backward(self, grad_out: np.ndarray) -> np.ndarray:  # type: ignore[override]
        before = self.W.grad.copy()
        grad_x = super().backward(grad_out)
        self.W.grad[...] = before + self._saved("x").T @ grad_out
        return grad_x


class _SequentialSkipsLast(L.Sequential):
    def backward(self, grad_out: np.ndarray) -> np.ndarray:  # type: ignore[override]
        return L.Sequential(*self.layers[:-1]).backward(grad_out)


get("layers.Sigmoid.backward").known_bugs = (
    KnownBug(
        "1 − σ instead of σ(1 − σ)",
        "your dL/dx is grad_out times (1 − y): the derivative of the sigmoid is y (1 − y), with y = σ(x) "
        "its output; a factor y is missing",
        _SigmoidWithoutY,
    ),
)
get("layers.Tanh.backward").known_bugs = (
    KnownBug(
        "1 − y instead of 1 − y²",
        "your dL/dx is grad_out times (1 − y): the derivative of tanh is 1 − y², with y = tanh(x) its "
        "output; the y is not squared",
        _TanhWithoutSquare,
    ),
)
get("layers.LinearSigmoid.backward").known_bugs = (
    KnownBug(
        "σ' missing in dW",
        "dL/dW uses grad_out as it comes in: the weights act through the sigmoid, so the gradient at z = xW + b "
        "(grad_out times σ'(z)) is what multiplies x, as it already does for db and dx",
        _LinearSigmoidWithoutLocalInW,
    ),
)
get("layers.Sequential.backward").known_bugs = (
    KnownBug(
        "a layer skipped",
        "the last layer's backward never ran: grad_out is the gradient at the network's output, so the "
        "backward pass starts with the last layer and goes through every layer, in reverse order",
        _SequentialSkipsLast,
    ),
)
