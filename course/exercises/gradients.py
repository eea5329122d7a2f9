"""Exercises of the gradient-checking assignment: a centred-difference ``numerical_gradient``,
the ``relative_error`` that reads it, and the corrected backward of a ``Swish`` layer whose
first version had a planted bug.

:class:`Swish` lives here rather than in :mod:`course.layers`: it is the layer of this
assignment's debugging story, not a building block the later assignments need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import gradcheck
from ..activations import log_softmax, sigmoid, softmax
from ..gradcheck import TOLERANCE, TensorCheck
from ..layers import Layer, Parameter
from .exercise import Exercise
from .kinds import FunctionExercise, LayerExercise
from .records import Case, KnownBug, Verdict
from .registry import get, register

__all__ = ["NumericalGradientExercise", "RelativeErrorExercise", "Swish", "TEST_FUNCTIONS"]

Array = NDArray[np.float64]


# ----------------------------------------------------------------------------------------
# The layer of the debugging exercise
# ----------------------------------------------------------------------------------------


class Swish(Layer):
    """y = x · σ(βx), elementwise, with one learnable β per feature (β = 1 is SiLU).

    x: (N, D) -> y: (N, D); beta: (D,), starting at ``beta``. Ramachandran, Zoph and Le,
    "Searching for activation functions" (2017).
    """

    def __init__(self, features: int, beta: float = 1.0) -> None:
        if features < 1:
            raise ValueError(f"Swish needs a positive number of features, got {features}")
        self.features = features
        self.beta = Parameter(np.full(features, float(beta)), "beta")
        self.x: Array | None = None
        self.s: Array | None = None

    def __repr__(self) -> str:
        return f"Swish({self.features})"

    def forward(self, x: ArrayLike) -> Array:
        """x: (N, D) -> y = x σ(βx): (N, D); saves x and s = σ(βx)."""
        self.x = self._input(x, self.features)
        self.s = sigmoid(self.beta.data * self.x)
        return self.x * self.s

    def backward(self, grad_out: ArrayLike) -> Array:
        """grad_out: (N, D) -> dL/dx: (N, D); adds dL/dβ (D,) into self.beta.grad.

        With s = σ(βx) and σ' = s(1 − s): dy/dx = s + βx s(1 − s) and dy/dβ = x² s(1 − s).
        """
        x, s = self._saved("x"), self._saved("s")
        grad_out = self._grad_out(grad_out, x.shape)
        slope = s * (1.0 - s)
        self.beta.grad += (grad_out * x * x * slope).sum(axis=0)
        return grad_out * (s + self.beta.data * x * slope)


# ----------------------------------------------------------------------------------------
# numerical_gradient: the student's checker, run on a small table of functions
# ----------------------------------------------------------------------------------------

# name -> (description, make(x, arrays) -> f, exact(x, arrays, grad_out) -> df/dx).
# ``make`` receives the live x the student will perturb; "held" builds an f that ignores its
# argument and reads that array through the reference it holds, as a layer reads W.data.
FunctionSpec = tuple[str, Callable[[Array, dict], Callable], Callable[[Array, dict, Any], Array]]


def _ce(scores: Array, labels: Array) -> float:
    rows = np.arange(scores.shape[0])
    return float(-np.mean(log_softmax(scores, axis=1)[rows, labels.astype(np.int64)]))


def _ce_grad(scores: Array, labels: Array) -> Array:
    grad = softmax(scores, axis=1)
    grad[np.arange(scores.shape[0]), labels.astype(np.int64)] -= 1.0
    return grad / scores.shape[0]


def _weighted(g: Array, grad_out: Array | None) -> Array:
    return g if grad_out is None else g * grad_out


# The exact gradients are functions, not lambdas, so that checking runs can withhold them
# (autograder.verdicts.withhold): a submission's numerical_gradient must not look its answer up here.
def _quadratic_grad(x: Array, a: dict, g: Array | None) -> Array:
    return (a["A"] + a["A"].T) @ x


def _sin_times_x_grad(x: Array, a: dict, g: Array | None) -> Array:
    return _weighted(np.sin(x) + x * np.cos(x), g)


def _cross_entropy_grad(x: Array, a: dict, g: Array | None) -> Array:
    return _ce_grad(x, a["labels"])


def _held_grad(x: Array, a: dict, g: Array | None) -> Array:
    return (g * (1.0 - np.tanh(x @ a["W"]) ** 2)) @ a["W"].T


TEST_FUNCTIONS: dict[str, FunctionSpec] = {
    "quadratic": ("the quadratic form xᵀAx", lambda x, a: lambda z: z @ a["A"] @ z, _quadratic_grad),
    "sin_times_x": ("sin(x)·x, elementwise", lambda x, a: lambda z: np.sin(z) * z, _sin_times_x_grad),
    "softmax_cross_entropy": (
        "the softmax cross-entropy of a matrix of scores",
        lambda x, a: lambda z: _ce(z, a["labels"]),
        _cross_entropy_grad,
    ),
    "held": (
        "tanh(x @ W), where f reads x through a reference it holds (as a layer reads W.data)",
        lambda x, a: lambda _ignored: np.tanh(x @ a["W"]),
        _held_grad,
    ),
}


class NumericalGradientExercise(Exercise):
    """Check a student's ``numerical_gradient(f, x, grad_out=None, h=1e-5)``.

    Each case names a function of :data:`TEST_FUNCTIONS` in ``config["function"]``; ``run``
    builds it around a fresh copy of x and calls the student's function on it. ``judge``
    compares the result with :func:`course.gradcheck.numerical_gradient` and with the exact
    derivative, and checks that x came back exactly as it was.
    """

    watch_numerical = False  # see Exercise.watch_numerical

    #: A correct centred difference that weights and sums the outputs before differencing
    #: (the obvious way to write it) carries a round-off of about 1e-11 · Σ|f(x) · grad_out|.
    #: Entries are judged relative to max(|a| + |n|, FLOOR · Σ|f(x) · grad_out|), so that this
    #: round-off never fails a correct function, while a forward difference (error about
    #: 1e-5 · |f''|) or any real mistake is still far beyond the tolerance.
    FLOOR = 3e-4

    def __init__(self, name: str, title: str, settings: Callable[[np.random.Generator, bool], list[dict]]) -> None:
        super().__init__(name, title, [(gradcheck, "numerical_gradient")])
        self.settings = settings

    def _draw(self, rng: np.random.Generator, cfg: dict) -> dict[str, Array]:
        shape = tuple(cfg["shape"])
        arrays = {"x": rng.standard_normal(shape)}
        kind = cfg["function"]
        if kind == "quadratic":
            arrays["A"] = rng.standard_normal((shape[0], shape[0]))
        elif kind == "softmax_cross_entropy":
            arrays["labels"] = rng.integers(0, shape[1], shape[0]).astype(np.float64)
        elif kind == "held":
            arrays["W"] = rng.standard_normal((shape[1], cfg["outputs"])) / np.sqrt(shape[1])
        if cfg.get("upstream"):
            out = TEST_FUNCTIONS[kind][1](arrays["x"], arrays)(arrays["x"])
            arrays["grad_out"] = rng.standard_normal(np.shape(out))
        return arrays

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = []
        for cfg in self.settings(rng, hidden):
            arrays = self._draw(rng, cfg)
            description = TEST_FUNCTIONS[cfg["function"]][0]
            upstream = " with grad_out" if cfg.get("upstream") else ""
            label = f"{description}{upstream}, x of shape {tuple(cfg['shape'])}"
            cases.append(Case(("a hidden case: " if hidden else "") + label, arrays, dict(cfg)))
        return cases

    @staticmethod
    def _exact(arrays: dict, cfg: dict) -> Array:
        return TEST_FUNCTIONS[cfg["function"]][2](arrays["x"], arrays, arrays.get("grad_out"))

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        x = case.arrays["x"].copy()
        f = TEST_FUNCTIONS[case.config["function"]][1](x, case.arrays)
        if "grad_out" in case.arrays:
            grad = student(f, x, case.arrays["grad_out"].copy())
        else:
            grad = student(f, x)
        return {"grad": grad, "x_after": x}

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        arrays, cfg = case.arrays, case.config
        x = arrays["x"]
        grad_out = arrays.get("grad_out")
        after = outputs.get("x_after")
        if isinstance(after, np.ndarray) and after.shape == x.shape and not np.array_equal(after, x):
            k = tuple(int(i) for i in np.argwhere(after != x)[0])
            roundoff = np.all(np.abs(after - x) <= 1e-12 * np.maximum(np.abs(x), 1.0))
            if roundoff:
                hint = (
                    "save the old value and assign it back (adding h and subtracting it again can change the last "
                    "bits, and the next check's x is then not quite the one it was given)"
                )
                v.recognised.append(("x restored by arithmetic", hint))
            else:
                hint = (
                    f"x[{', '.join(map(str, k))}] moved by {after[k] - x[k]:.3g}: after its two evaluations, put each "
                    "entry back to its old value (save it, assign it back); otherwise every later entry is "
                    "differentiated at a moved point"
                )
                v.recognised.append(("x not restored", hint))
            v.problems.append(f"x was not restored exactly: x{list(k)} is {after[k]!r} afterwards, it was {x[k]!r}")
        grad = self.expect_array(v, outputs, "grad", x.shape, "the gradient your function returns")
        if grad is None:
            return v
        live = x.copy()
        f = TEST_FUNCTIONS[cfg["function"]][1](live, arrays)
        reference = gradcheck.numerical_gradient(f, live, grad_out)
        weight = 1.0 if grad_out is None else grad_out
        floor = self.FLOOR * float(np.sum(np.abs(np.asarray(f(live), dtype=np.float64) * weight)))
        check = _compare(v, "gradient", grad, reference, floor)
        exact = _compare(v, "gradient (against the exact derivative)", grad, self._exact(arrays, cfg), floor)
        if not check.passed:
            name, hint = self._hint(grad, f, live, grad_out, cfg)
            if hint:
                check.hint, check.mistake = hint, name
                if not exact.passed:  # the same mistake: its generic hint ("times 2") would name it twice
                    exact.hint, exact.mistake = "", name
        return v

    @staticmethod
    def _hint(grad: Array, f: Callable, x: Array, grad_out: Array | None, cfg: dict) -> tuple[str, str]:
        """Recognise the usual mistakes by recomputing what they would give: (the name, the hint)."""
        h = 1e-5
        if cfg["function"] == "held" and np.allclose(grad, 0.0):
            return "perturbs a copy", (
                "f reads x through a reference it holds: perturb x itself, in place, not a copy of it"
            )
        forward = np.zeros_like(x)
        base = np.asarray(f(x), dtype=np.float64)
        weight = 1.0 if grad_out is None else grad_out
        for ix in np.ndindex(x.shape):
            old = x[ix]
            x[ix] = old + h
            forward[ix] = np.sum((np.asarray(f(x)) - base) * weight) / h
            x[ix] = old
        if gradcheck.relative_error(grad, forward) < 1e-7:
            return "forward difference", (
                "this is the forward difference (f(x + h) − f(x)) / h: use the centred one, error O(h²)"
            )
        centred = gradcheck.numerical_gradient(f, x, grad_out, h)
        if gradcheck.relative_error(grad, 2 * centred) < 1e-6:
            return "divides by h, not 2h", (
                "exactly twice the right value: divide by 2h, the distance between x − h and x + h"
            )
        if grad_out is not None and gradcheck.relative_error(grad, gradcheck.numerical_gradient(f, x, None, h)) < 1e-6:
            return "ignores grad_out", "grad_out was ignored: the quantity to differentiate is sum(f(x) * grad_out)"
        return "", ""


def _compare(v: Verdict, name: str, got: Array, want: Array, floor: float) -> TensorCheck:
    """Like :func:`course.gradcheck.compare`, with the relative error's floor set to ``floor``."""
    err = np.abs(got - want) / np.maximum(np.abs(got) + np.abs(want), max(floor, 1e-8))
    err = np.where(np.isfinite(err), err, np.inf)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape)) if err.size else ()
    max_err = float(err[worst]) if err.size else 0.0
    passed = max_err < TOLERANCE
    mistake, hint = ("", "") if passed else gradcheck.diagnosis(got, want)
    check = TensorCheck(
        name,
        got.shape,
        max_err,
        worst,
        float(got[worst]) if err.size else 0.0,
        float(want[worst]) if err.size else 0.0,
        passed,
        int(err.size),
        hint,
        analytic=got,
        numeric=want,
        mistake=mistake,
    )
    v.checks.append(check)
    return check


def _numerical_gradient_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    if not hidden:
        return [
            {"function": "quadratic", "shape": [4]},
            {"function": "sin_times_x", "shape": [3, 4], "upstream": True},
            {"function": "softmax_cross_entropy", "shape": [4, 3]},
            {"function": "held", "shape": [3, 2], "outputs": 2, "upstream": True},
        ]
    d, n, c, m = (int(k) for k in rng.integers(2, 9, 4))
    return [
        {"function": "quadratic", "shape": [d]},
        {"function": "sin_times_x", "shape": [n, d], "upstream": True},
        {"function": "sin_times_x", "shape": [2, n, 3]},
        {"function": "softmax_cross_entropy", "shape": [n, c]},
        {"function": "held", "shape": [n, d], "outputs": m, "upstream": True},
        {"function": "held", "shape": [12, 10], "outputs": 8, "upstream": True},
    ]


register(NumericalGradientExercise("gradients.numerical_gradient", "numerical_gradient", _numerical_gradient_settings))


# ----------------------------------------------------------------------------------------
# relative_error
# ----------------------------------------------------------------------------------------


class RelativeErrorExercise(FunctionExercise):
    """``relative_error(a, b)`` against :func:`course.gradcheck.relative_error`.

    Each settings dict has a ``shape`` and a ``mix`` of entry kinds: "close" (b = a(1 + δ)
    with |δ| between 1e-9 and 1e-4), "zeros" (a = b = 0, where only the floor avoids 0/0),
    "tiny" (|a| + |b| below the floor 1e-8, where the floor decides the value) and "far"
    (unrelated a and b).
    """

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = []
        for cfg in self.settings(rng, hidden):
            shape = tuple(cfg["shape"])
            a = np.array(rng.standard_normal(shape))
            delta = 10.0 ** rng.uniform(-9, -4, shape) * rng.choice([-1.0, 1.0], shape)
            b = np.array(a * (1.0 + delta))
            kinds = np.asarray(rng.choice(cfg["mix"], size=shape))
            zeros, tiny, far = kinds == "zeros", kinds == "tiny", kinds == "far"
            a[zeros] = b[zeros] = 0.0
            a[tiny] = 1e-9 * rng.standard_normal(int(tiny.sum()))
            b[tiny] = 1e-9 * rng.standard_normal(int(tiny.sum()))
            b[far] = rng.standard_normal(int(far.sum()))
            label = cfg.get("label") or f"arrays of shape {shape}"
            config = dict(cfg, order=["a", "b"])
            cases.append(Case(("a hidden case: " if hidden else "") + label, {"a": a, "b": b}, config))
        return cases


def _relative_error_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    if not hidden:
        return [
            {"shape": [3, 4], "mix": ["close"], "label": "nearly equal arrays (3, 4)"},
            {"shape": [6], "mix": ["close", "zeros"], "label": "a vector with entries where both are 0"},
            {"shape": [2, 5], "mix": ["close", "tiny"], "label": "entries smaller than the floor 1e-8"},
        ]
    n, d, k = (int(s) for s in rng.integers(1, 9, 3))
    return [
        {"shape": [n, d], "mix": ["close", "zeros", "tiny"]},
        {"shape": [k, n, d], "mix": ["close", "far"]},
        {"shape": [], "mix": ["close"], "label": "two single numbers (0-d arrays)"},
        {"shape": [d], "mix": ["zeros"], "label": "two arrays of zeros"},
        {"shape": [400, 250], "mix": ["close", "zeros", "tiny"], "label": "a large pair of arrays (400 x 250)"},
    ]


register(
    RelativeErrorExercise(
        "gradients.relative_error", "relative_error", gradcheck.relative_error, _relative_error_settings, tol=1e-9
    )
)


# ----------------------------------------------------------------------------------------
# The corrected Swish.backward
# ----------------------------------------------------------------------------------------


def _swish_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """Visible: a small batch, then a large one; hidden: random shapes, a batch of one, and the
    large batch. The large case is one that a finite-difference "backward" cannot finish under
    the grader's CPU limit, so visible points too need a real backward pass."""
    large = {"args": [384], "input_shape": [160, 384], "max_entries": 40, "label": "a large batch (160 x 384)"}
    if not hidden:
        return [{"args": [3], "input_shape": [4, 3]}, large]
    n, d = (int(k) for k in rng.integers(2, 9, 2))
    return [
        {"args": [d], "input_shape": [n, d]},
        {"args": [d], "input_shape": [1, d], "label": "a batch of one example"},
        large,
    ]


#: Where Swish is flat: d/du [u σ(u)] = σ(u)(1 + u(1 − σ(u))) vanishes only at u ≈ −1.2785.
SWISH_STATIONARY = -1.278464542761074


class SwishExercise(LayerExercise):
    """A :class:`LayerExercise` whose cases keep every gradient entry clear of zero.

    A centred difference of an entry near 0 is all round-off, so a correct backward could
    fail by bad luck. Inputs are therefore moved away from x = 0 (where dy/dβ = x² σ' vanishes)
    and from βx ≈ −1.2785 (where dy/dx vanishes), and grad_out is redrawn until no sum
    dL/dβ_d = Σ_n grad_out x² σ' comes close to 0 by cancellation.
    """

    GAP = 0.02

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = super().cases(rng, hidden)
        for case in cases:
            a = case.arrays
            beta, x = a["param0"], a["x"]
            near_zero = np.abs(x) < self.GAP
            x[near_zero] = np.where(x[near_zero] >= 0, 1.0, -1.0) * rng.uniform(self.GAP, 2 * self.GAP, near_zero.sum())
            u = beta * x
            flat = np.abs(u - SWISH_STATIONARY) < self.GAP
            side = np.where(u[flat] >= SWISH_STATIONARY, 1.0, -1.0)
            u_new = SWISH_STATIONARY + side * rng.uniform(self.GAP, 2 * self.GAP, flat.sum())
            x[flat] = u_new / np.broadcast_to(beta, x.shape)[flat]
            slope = x * x * sigmoid(beta * x) * (1.0 - sigmoid(beta * x))
            for _attempt in range(100):
                if np.min(np.abs((a["grad_out"] * slope).sum(axis=0))) > 1e-3 * np.sqrt(x.shape[0]):
                    break
                a["grad_out"] = rng.standard_normal(x.shape)
        return cases


register(SwishExercise("gradients.Swish.backward", "Swish.backward", Swish, _swish_settings))


# ----------------------------------------------------------------------------------------
# Known mistakes, recognised by running them (base.KnownBug)
# ----------------------------------------------------------------------------------------


def _relative_error_without_floor(a: Array, b: Array) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.max(np.abs(a - b) / (np.abs(a) + np.abs(b)))


def _relative_error_larger_of_two(a: Array, b: Array) -> float:
    return np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-8))


def _relative_error_mean(a: Array, b: Array) -> float:
    return float(np.mean(gradcheck._elementwise_error(np.asarray(a), np.asarray(b))))


get("gradients.relative_error").known_bugs = (
    KnownBug(
        "no floor",
        "where a and b are both 0 (or tiny), |a − b| / (|a| + |b|) divides 0 by 0: the denominator has a floor, "
        "max(|a| + |b|, 1e-8), which keeps it away from zero",
        _relative_error_without_floor,
    ),
    KnownBug(
        "max(|a|, |b|) in the denominator",
        "your denominator is the larger of |a| and |b|: the course's relative error divides by their sum, "
        "|a| + |b| (floored at 1e-8), which makes it at most 1",
        _relative_error_larger_of_two,
    ),
    KnownBug(
        "mean, not max",
        "your result is the mean of the entries' relative errors: a gradient check reports the worst entry, "
        "the maximum, since one wrong entry is enough to make a gradient wrong",
        _relative_error_mean,
    ),
)


class _SwishWithoutXInBeta(Swish):
    def backward(self, grad_out: ArrayLike) -> Array:
        x, s = self._saved("x"), self._saved("s")
        grad_out = self._grad_out(grad_out, x.shape)
        slope = s * (1.0 - s)
        self.beta.grad += (grad_out * x * slope).sum(axis=0)
        return grad_out * (s + self.beta.data * x * slope)


class _SwishWithoutBetaInX(Swish):
    def backward(self, grad_out: ArrayLike) -> Array:
        x, s = self._saved("x"), self._saved("s")
        grad_out = self._grad_out(grad_out, x.shape)
        slope = s * (1.0 - s)
        self.beta.grad += (grad_out * x * x * slope).sum(axis=0)
        return grad_out * (s + x * slope)


get("gradients.Swish.backward").known_bugs = (
    KnownBug(
        "x missing in dβ",
        "dL/dβ is missing a factor x: β enters through βx, so the chain rule through σ(βx) brings out one x, "
        "and the x in front of σ another, x² s(1 − s) in all",
        _SwishWithoutXInBeta,
    ),
    KnownBug(
        "β missing in dx",
        "dL/dx is missing a factor β: x enters σ(βx) multiplied by β, so the chain rule through the sigmoid "
        "brings out β (the term β x s(1 − s))",
        _SwishWithoutBetaInX,
    ),
)
