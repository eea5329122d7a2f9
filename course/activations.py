"""Activation functions and their derivatives, as plain array functions.

Each ``f`` has a partner ``f_grad`` that returns the elementwise derivative
``df/dx`` evaluated at ``x``; the layers in :mod:`course.layers` multiply it by the
upstream gradient. At a kink (ReLU and Leaky ReLU at 0, ELU at 0 when α ≠ 1, the step at 0)
the derivative of the left piece is returned, as PyTorch does; gradient checks avoid kinks.
ELU with α = 1 has no kink: both one-sided derivatives at 0 are 1.

The binary step follows the perceptron's convention, firing for x > 0 only (step(0) = 0), so
it agrees with :class:`course.neuron.Perceptron` and with ReLU'(x) = step(x) everywhere.

Every function accepts anything :func:`numpy.asarray` accepts and computes in float64.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ACTIVATIONS",
    "binary_step",
    "binary_step_grad",
    "elu",
    "elu_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "log_softmax",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "tanh",
    "tanh_grad",
]

Array = NDArray[np.float64]


def _as_float(x: ArrayLike) -> Array:
    return np.asarray(x, dtype=np.float64)


def binary_step(x: ArrayLike) -> Array:
    """The perceptron's activation: 1 where x > 0, else 0 (so step(0) = 0, as the perceptron fires for z > 0)."""
    return (_as_float(x) > 0).astype(np.float64)


def binary_step_grad(x: ArrayLike) -> Array:
    """Zero everywhere (undefined at 0): why a step cannot be trained by gradient descent."""
    return np.zeros_like(_as_float(x))


def sigmoid(x: ArrayLike) -> Array:
    """σ(x) = 1 / (1 + e^{-x}), computed without overflow for any |x|.

    For x >= 0 we use 1 / (1 + e^{-x}); for x < 0 the algebraically equal
    e^{x} / (1 + e^{x}). Either way the exponent is never positive.
    """
    x = _as_float(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(x: ArrayLike) -> Array:
    """σ'(x) = σ(x) (1 − σ(x))."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x: ArrayLike) -> Array:
    """tanh(x) = 2σ(2x) − 1."""
    return np.tanh(_as_float(x))


def tanh_grad(x: ArrayLike) -> Array:
    """tanh'(x) = 1 − tanh(x)²."""
    t = np.tanh(_as_float(x))
    return 1.0 - t * t


def relu(x: ArrayLike) -> Array:
    """max(0, x)."""
    return np.maximum(_as_float(x), 0.0)


def relu_grad(x: ArrayLike) -> Array:
    """1 where x > 0, else 0."""
    return (_as_float(x) > 0).astype(np.float64)


def leaky_relu(x: ArrayLike, alpha: float = 0.1) -> Array:
    """max(αx, x) for 0 < α < 1: negative inputs keep a small slope α."""
    x = _as_float(x)
    return np.where(x > 0, x, alpha * x)


def leaky_relu_grad(x: ArrayLike, alpha: float = 0.1) -> Array:
    """1 where x > 0, else α."""
    x = _as_float(x)
    return np.where(x > 0, 1.0, alpha)


def elu(x: ArrayLike, alpha: float = 1.0) -> Array:
    """x for x > 0, α (eˣ − 1) otherwise."""
    x = _as_float(x)
    # expm1 of min(x, 0) never overflows and is accurate near 0.
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def elu_grad(x: ArrayLike, alpha: float = 1.0) -> Array:
    """1 for x > 0, α eˣ otherwise (at 0 the left piece's α; with α = 1 both sides agree)."""
    x = _as_float(x)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


def log_softmax(scores: ArrayLike, axis: int = -1) -> Array:
    """log softmax via log-sum-exp: s − max(s) − log Σ exp(s − max(s)).

    The largest score contributes exactly e⁰ = 1 to the sum, so the log is taken as
    log1p(sum of the others): a confident prediction keeps its tiny, positive loss (such as
    log(1 + 2e⁻¹¹⁰)) instead of rounding to zero.
    """
    s = _as_float(scores)
    winner = np.expand_dims(np.argmax(s, axis=axis), axis)
    shifted = s - np.take_along_axis(s, winner, axis=axis)
    others = np.exp(shifted)
    np.put_along_axis(others, winner, 0.0, axis=axis)
    return shifted - np.log1p(others.sum(axis=axis, keepdims=True))


def softmax(scores: ArrayLike, axis: int = -1) -> Array:
    """p_i = exp(s_i) / Σ_j exp(s_j), shifted by the maximum so nothing overflows."""
    return np.exp(log_softmax(scores, axis=axis))


#: name -> (function, derivative), in the order the lectures introduce them.
ACTIVATIONS = {
    "binary step": (binary_step, binary_step_grad),
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "ReLU": (relu, relu_grad),
    "Leaky ReLU": (leaky_relu, leaky_relu_grad),
    "ELU": (elu, elu_grad),
}
