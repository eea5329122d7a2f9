"""Exercises of the neurons assignment: the derivatives of the activation functions, Maxout's
backward, a layer of neurons as one matrix product and the lecture's 3-layer forward pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import activations as A
from .. import layers as L
from .. import neuron as N
from ..gradcheck import TensorCheck
from ..network import TwoLayerNet
from .exercise import judge_rng
from .kinds import ElementwiseExercise, FunctionExercise, LayerExercise, away_from
from .known_bugs import recognise
from .records import Case, KnownBug, KnownMistake, Verdict
from .registry import register

# ----------------------------------------------------------------------------------------
# Derivatives of the activation functions
# ----------------------------------------------------------------------------------------

#: A derivative this far (absolutely) from the exact one was not computed from a formula:
#: legitimate formulas agree to a few 1e-16, a vectorised centred difference is ~1e-11 off.
EXACT_TOL = 1e-13


class DerivativeExercise(ElementwiseExercise):
    """An :class:`ElementwiseExercise` that samples large inputs in its numerical check and
    also asks for the derivative to machine precision.

    Settings dicts may carry ``max_entries``. Besides centred differences of the reference
    forward ``f`` (the check the student reads), the trusted judge compares the answer with
    the reference derivative entry by entry, absolutely within :data:`EXACT_TOL`: a formula
    passes easily, while a derivative approximated by differences of ``f`` does not.
    ``also_traps`` lists further reference code the student must not call (the layers).
    """

    def __init__(
        self,
        name: str,
        title: str,
        f: Callable[..., np.ndarray],
        reference_grad: Callable[..., np.ndarray],
        settings: Callable[[np.random.Generator, bool], list[dict[str, Any]]],
        *,
        sampler: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray] | None = None,
        also_traps: list[tuple[Any, str]] | None = None,
        known: list[KnownMistake] | None = None,
    ) -> None:
        kwargs = {} if sampler is None else {"sampler": sampler}
        super().__init__(name, title, f, settings, reference_grad=reference_grad, **kwargs)
        self.reference_grad = reference_grad
        self.traps += also_traps or []
        #: Mistakes recognised by their wrong answer, each ``answer(x, **kwargs)``.
        self.known = known or []

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        x, kwargs = case.arrays["x"].copy(), case.config.get("kwargs", {})
        grad = self.expect_array(v, outputs, "grad", x.shape, "the derivative")
        sample: dict[str, Any] = {"max_entries": case.config.get("max_entries"), "rng": judge_rng()}
        check = self.compare_gradient(v, "derivative", grad, lambda z: self.f(z, **kwargs), x, None, **sample)
        recognise(check, [(m.name, m.hint, m.answer(x.copy(), **kwargs)) for m in self.known])
        if check is not None and check.passed and grad is not None:
            v.checks.append(_exact(grad, self.reference_grad(x, **kwargs)))
        return v


def _exact(grad: np.ndarray, exact: np.ndarray) -> TensorCheck:
    """Absolute agreement with the exact derivative (only judged once centred differences pass)."""
    err = np.abs(grad - exact)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape)) if err.size else ()
    max_err = float(err[worst]) if err.size else 0.0
    passed = max_err < EXACT_TOL
    hint = (
        ""
        if passed
        else (
            f"your derivative is off by {max_err:.1e} at index {worst}, far more than round-off: it looks like "
            "a numerical approximation (a difference quotient of f); write the derivative's formula instead"
        )
    )
    # n_checked = 0 on failure makes the message show the hint alone (this is no relative error).
    return TensorCheck(
        "derivative (to machine precision)",
        exact.shape,
        max_err,
        worst,
        float(grad[worst]) if err.size else 0.0,
        float(exact[worst]) if err.size else 0.0,
        passed,
        int(err.size) if passed else 0,
        hint,
        analytic=grad,
        numeric=exact,
    )


def _derivative_settings(alphas: Callable[[np.random.Generator, bool], float] | None = None):
    """Visible: one small matrix. Hidden: a random matrix, a vector, a 3-D tensor and a large
    input (sampled in the numerical check). With ``alphas``, every case gets ``alpha``."""

    def settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
        configs: list[dict[str, Any]]
        if not hidden:
            configs = [{"shape": [4, 5]}]
        else:
            n, d = (int(k) for k in rng.integers(1, 9, 2))
            configs = [
                {"shape": [n, d]},
                {"shape": [int(rng.integers(1, 12))], "label": "a vector"},
                {"shape": [2, 3, int(rng.integers(2, 5))], "label": "a 3-D input"},
                {"shape": [250, 240], "max_entries": 60, "label": "a large input (250 x 240)"},
            ]
        if alphas is not None:
            for config in configs:
                config["kwargs"] = {"alpha": alphas(rng, hidden)}
        return configs

    return settings


def _alpha(visible: float, low: float, high: float) -> Callable[[np.random.Generator, bool], float]:
    """The lecture's α in the visible case, a random α in [low, high) in hidden ones."""
    return lambda rng, hidden: round(float(rng.uniform(low, high)), 3) if hidden else visible


def _sigmoid_on_x(x: np.ndarray) -> np.ndarray:
    return x * (1.0 - x)


def _tanh_on_x(x: np.ndarray) -> np.ndarray:
    return 1.0 - x**2


def _relu_itself(x: np.ndarray) -> np.ndarray:
    return A.relu(x)


def _leaky_alpha_x(x: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    return np.where(x > 0, 1.0, alpha * x)


def _elu_itself(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, 1.0, A.elu(x, alpha))


#: The hint for a derivative written in terms of the output but applied to the input.
ON_THE_INPUT = (
    "you applied the formula in terms of the output to the input x: {formula} uses the activation's "
    "value, so compute that first ({first}) and put it in the formula"
)


_kink = away_from(0.0)
register(
    DerivativeExercise(
        "neurons.sigmoid_grad",
        "sigmoid_grad",
        A.sigmoid,
        A.sigmoid_grad,
        _derivative_settings(),
        also_traps=[(L.Sigmoid, "backward")],
        known=[
            KnownMistake(
                "x(1 − x) instead of σ(x)(1 − σ(x))",
                ON_THE_INPUT.format(formula="σ(x)(1 − σ(x))", first="s = sigmoid(x)"),
                _sigmoid_on_x,
            )
        ],
    )
)
register(
    DerivativeExercise(
        "neurons.tanh_grad",
        "tanh_grad",
        A.tanh,
        A.tanh_grad,
        _derivative_settings(),
        also_traps=[(L.Tanh, "backward")],
        known=[
            KnownMistake(
                "1 − x² instead of 1 − tanh²(x)",
                ON_THE_INPUT.format(formula="1 − tanh²(x)", first="t = tanh(x)"),
                _tanh_on_x,
            )
        ],
    )
)
register(
    DerivativeExercise(
        "neurons.relu_grad",
        "relu_grad",
        A.relu,
        A.relu_grad,
        _derivative_settings(),
        sampler=_kink,
        also_traps=[(L.ReLU, "backward")],
        known=[
            KnownMistake(
                "the function instead of its derivative",
                "this is ReLU itself; its derivative is 1 where x > 0 and 0 elsewhere",
                _relu_itself,
            )
        ],
    )
)
register(
    DerivativeExercise(
        "neurons.leaky_relu_grad",
        "leaky_relu_grad",
        A.leaky_relu,
        A.leaky_relu_grad,
        _derivative_settings(_alpha(0.1, 0.01, 0.5)),
        sampler=_kink,
        also_traps=[(L.LeakyReLU, "backward")],
        known=[
            KnownMistake("αx instead of α", "on the negative side the derivative of αx is α, not αx", _leaky_alpha_x)
        ],
    )
)
register(
    DerivativeExercise(
        "neurons.elu_grad",
        "elu_grad",
        A.elu,
        A.elu_grad,
        _derivative_settings(_alpha(1.0, 0.3, 2.0)),
        sampler=_kink,
        also_traps=[(L.ELU, "backward")],
        known=[
            KnownMistake(
                "the function instead of its derivative",
                "on the negative side this is ELU itself, α(eˣ − 1); its derivative is α·eˣ",
                _elu_itself,
            )
        ],
    )
)

# ----------------------------------------------------------------------------------------
# Maxout: the gradient flows through the winning piece only
# ----------------------------------------------------------------------------------------

#: The step of the centred differences for Maxout. Maxout is piecewise *linear*, so centred
#: differences have no truncation error as long as no perturbation changes a winner; a step
#: larger than the default 1e-5 then only shrinks the round-off (which, on the large case,
#: would otherwise now and then exceed the tolerance on an entry whose gradient is small).
MAXOUT_H = 1e-3


def _no_near_tie(layer: L.Maxout, x: np.ndarray) -> bool:
    """True when no perturbation of one entry by MAXOUT_H can change a winning piece.

    Moving x[n, d] by h moves the gap between two pieces by at most 2h max|W|; moving one
    entry of W or b moves it by at most h max|x| or h. The top two pieces of every unit must
    be twice that far apart.
    """
    if layer.k < 2:
        return True
    z = np.einsum("nd,kdm->nkm", x, layer.W.data) + layer.b.data
    top = np.sort(z, axis=1)
    reach = 2 * MAXOUT_H * max(1.0, float(np.abs(layer.W.data).max()), float(np.abs(x).max()))
    return bool(np.all(top[:, -1, :] - top[:, -2, :] > 2 * reach))


class MaxoutExercise(LayerExercise):
    """A :class:`LayerExercise` whose numerical checks use the step :data:`MAXOUT_H`."""

    h = MAXOUT_H


def _maxout_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """Visible: the lecture's two pieces on a small batch, then a large batch. Hidden: random
    sizes and k, a batch of one, and the large batch. The large case is one that a
    finite-difference "backward" cannot get through under the grader's CPU limit, so visible
    points too need a real backward pass: colouring the Jacobian still takes (k + 1) D + k + 1 =
    49,155 forward passes of about 5 ms (benchmarks/README.md), against 20 s per case. The
    judge's own forward (an einsum) is slower: 8 entries per tensor keep its check near 3 s."""
    large = {"args": [16384, 16], "kwargs": {"k": 2}, "input_shape": [128, 16384], "max_entries": 8}
    large["label"] = "a large batch (128 x 16384 -> 16, k = 2)"
    if not hidden:
        return [{"args": [3, 4], "kwargs": {"k": 2}, "input_shape": [5, 3]}, large]
    d, m, n = (int(i) for i in rng.integers(2, 8, 3))
    k = int(rng.integers(2, 5))
    return [
        {"args": [d, m], "kwargs": {"k": k}, "input_shape": [n, d], "label": f"input ({n}, {d}), {m} units, k = {k}"},
        {"args": [m, d], "kwargs": {"k": 3}, "input_shape": [1, m], "label": "a batch of one example, k = 3"},
        large,
    ]


class _MaxoutToEveryPiece(L.Maxout):
    """The upstream gradient sent to every piece: the reference's backward once per piece, as if it had won."""

    def backward(self, grad_out: ArrayLike) -> np.ndarray:
        winner, grad_x = self.winner, 0.0
        try:
            for j in range(self.k):
                self.winner = np.full_like(winner, j)
                grad_x = grad_x + super().backward(grad_out)
        finally:
            self.winner = winner
        return grad_x  # type: ignore[return-value]  # a sum of k >= 2 arrays


_maxout = register(
    MaxoutExercise("neurons.Maxout.backward", "Maxout.backward", L.Maxout, _maxout_settings, valid=_no_near_tie)
)
_maxout.known_bugs = (
    KnownBug(
        "gradient to every piece",
        "every piece got the upstream gradient: a maximum passes it only to the piece that won (the largest "
        "wᵢ·x + bᵢ of each unit and example, which forward found); the others did not affect the output",
        _MaxoutToEveryPiece,
    ),
)

# ----------------------------------------------------------------------------------------
# Forward passes: a layer of neurons, and the lecture's 3-layer network
# ----------------------------------------------------------------------------------------


class ActivationFunctionExercise(FunctionExercise):
    """A :class:`FunctionExercise` whose cases name an activation (a key of
    :data:`course.activations.ACTIVATIONS`, JSON-able) that is passed as a function."""

    def _call(self, fn: Callable, case: Case) -> Any:
        args = [case.arrays[k].copy() for k in case.config["order"]]
        activation = A.ACTIVATIONS[case.config["activation"]][0]
        return fn(*args, activation=activation)


def _layer_case(n: int, d: int, m: int, activation: str, label: str) -> dict:
    return {"arrays": {"X": [n, d], "W": [d, m], "b": [m]}, "activation": activation, "label": label}


def _layer_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """Visible: the lecture's first layer (3 inputs, 4 neurons). Hidden: random sizes with
    each smooth activation (no step: a rounding difference must not flip a neuron) and a large
    batch."""
    if not hidden:
        return [_layer_case(5, 3, 4, "sigmoid", "5 examples, 3 -> 4, sigmoid")]
    configs = []
    for name in ["sigmoid", "tanh", "ReLU"]:
        n, d, m = (int(i) for i in rng.integers(1, 9, 3))
        configs.append(_layer_case(n, d, m, name, f"{n} examples, {d} -> {m}, {name}"))
    configs.append(_layer_case(512, 128, 96, "sigmoid", "a large batch (512 x 128 -> 96), sigmoid"))
    return configs


#: Library code that computes a layer of neurons, or a network of them, as a whole: the forward
#: exercises' checking runs leave it out (a LinearSigmoid's forward is layer_forward itself).
#: The activations stay: applying g is part of the answer, not all of it.
_FORWARD_BLOCKS = [
    (L.Linear, "forward"),
    (L.LinearSigmoid, "forward"),
    (L.Sequential, "forward"),
    (N.Neuron, "forward"),
    (N.Perceptron, "forward"),
    (N.LogisticRegression, "predict_proba"),
    (TwoLayerNet, "forward"),
    (TwoLayerNet, "loss"),
]

_layer_forward = register(
    ActivationFunctionExercise("neurons.layer_forward", "layer_forward", N.layer_forward, _layer_settings)
)
_layer_forward.withheld = _layer_forward.traps + _FORWARD_BLOCKS


def _bias_after_activation(X: np.ndarray, W: np.ndarray, b: np.ndarray, activation: Callable) -> np.ndarray:
    return N.layer_forward(X, W, np.zeros_like(b), activation) + b


_layer_forward.known_bugs = (
    KnownBug(
        "bias added after the activation",
        "your result is g(X @ W) + b: the bias is part of each neuron's weighted sum, so it is added before "
        "the activation is applied",
        _bias_after_activation,
    ),
)


def _network_arrays(n: int, d: int, h1: int, h2: int, c: int) -> dict[str, list[int]]:
    return {"X": [n, d], "W1": [d, h1], "b1": [h1], "W2": [h1, h2], "b2": [h2], "W3": [h2, c], "b3": [c]}


def _network_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """Visible: the lecture's 3 -> 4 -> 4 -> 1 on a small batch. Hidden: random sizes, one
    example, and the lecture's sizes on a large batch."""
    if not hidden:
        return [{"arrays": _network_arrays(5, 3, 4, 4, 1), "label": "5 examples, 3 -> 4 -> 4 -> 1"}]
    n, d, h1, h2, c = (int(i) for i in rng.integers(1, 9, 5))
    return [
        {"arrays": _network_arrays(n, d, h1, h2, c), "label": f"{n} examples, {d} -> {h1} -> {h2} -> {c}"},
        {"arrays": _network_arrays(1, 3, 4, 4, 1), "label": "one example, 3 -> 4 -> 4 -> 1"},
        {"arrays": _network_arrays(20000, 3, 4, 4, 1), "label": "a large batch (20000 examples, 3 -> 4 -> 4 -> 1)"},
    ]


_three_layer_forward = register(
    FunctionExercise(
        "neurons.three_layer_forward",
        "three_layer_forward",
        N.three_layer_forward,
        _network_settings,
        traps=[(N, "three_layer_forward"), (N, "layer_forward")],
    )
)
_three_layer_forward.withheld = _three_layer_forward.traps + _FORWARD_BLOCKS


def _sigmoid_on_output(*arrays: np.ndarray) -> np.ndarray:
    return A.sigmoid(N.three_layer_forward(*arrays))


_three_layer_forward.known_bugs = (
    KnownBug(
        "a sigmoid on the output layer",
        "your outputs are squashed into (0, 1): the hidden layers apply the sigmoid, but the output layer is "
        "linear (h2 @ W3 + b3, with no activation)",
        _sigmoid_on_output,
    ),
)
