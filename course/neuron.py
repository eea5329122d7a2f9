"""A single artificial neuron, and the two classic models that are one neuron each.

A neuron computes a weighted sum of its inputs plus a bias, then an activation:
f(x) = g(w·x + b). With a step activation it is the perceptron; with the sigmoid it is
logistic regression.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .activations import binary_step, sigmoid

__all__ = ["LogisticRegression", "Neuron", "Perceptron", "layer_forward", "three_layer_forward"]

Array = NDArray[np.float64]


class Neuron:
    """g(w·x + b) for one input x of shape (D,) or a batch X of shape (N, D)."""

    def __init__(self, weights: ArrayLike, bias: float = 0.0, activation: Callable[[Array], Array] = sigmoid) -> None:
        self.weights = np.array(weights, dtype=np.float64)
        if self.weights.ndim != 1:
            raise ValueError(f"Neuron: weights must be a vector (D,), got shape {self.weights.shape}")
        self.bias = float(bias)
        self.activation = activation

    def __repr__(self) -> str:
        return f"{type(self).__name__}(D={self.weights.size})"

    def pre_activation(self, x: ArrayLike) -> Array:
        """The cell body's sum w·x + b: a number for x (D,), an array (N,) for X (N, D)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != self.weights.shape:
            raise ValueError(f"{self!r}: expected input with {self.weights.size} features, got shape {x.shape}")
        return x @ self.weights + self.bias

    def forward(self, x: ArrayLike) -> Array:
        """The firing rate g(w·x + b)."""
        return self.activation(self.pre_activation(x))

    __call__ = forward


class Perceptron(Neuron):
    """A neuron with a step activation: fires (1) when w·x + b > 0, else 0.

    ``fit`` runs Rosenblatt's rule: for every misclassified example, w ← w + lr (y − ŷ) x.
    It converges when the two classes are linearly separable (so AND, not XOR).
    """

    def __init__(self, weights: ArrayLike, bias: float = 0.0) -> None:
        super().__init__(weights, bias, activation=binary_step)

    def forward(self, x: ArrayLike) -> Array:
        return (self.pre_activation(x) > 0).astype(np.float64)

    __call__ = forward

    def fit(self, X: ArrayLike, y: ArrayLike, epochs: int = 20, lr: float = 1.0) -> list[int]:
        """Returns the number of mistakes in each epoch (0 once every example is right)."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        mistakes = []
        for _ in range(epochs):
            errors = 0
            for xi, yi in zip(X, y, strict=True):
                update = lr * (yi - self.forward(xi))
                if update:
                    self.weights += update * xi
                    self.bias += float(update)
                    errors += 1
            mistakes.append(errors)
            if errors == 0:
                break
        return mistakes


class LogisticRegression(Neuron):
    """A sigmoid neuron, p(y = 1 | x) = σ(w·x + b), trained by gradient descent on the
    mean binary cross-entropy, whose gradient is remarkably simple: X.T (p − y) / N."""

    def __init__(self, weights: ArrayLike, bias: float = 0.0) -> None:
        super().__init__(weights, bias, activation=sigmoid)

    def predict_proba(self, X: ArrayLike) -> Array:
        return self.forward(X)

    def predict(self, X: ArrayLike) -> Array:
        return (self.forward(X) >= 0.5).astype(np.float64)

    def fit(self, X: ArrayLike, y: ArrayLike, epochs: int = 500, lr: float = 0.5) -> list[float]:
        """Full-batch gradient descent; returns the loss before each step."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        losses = []
        for _ in range(epochs):
            z = self.pre_activation(X)
            p = sigmoid(z)
            losses.append(float(np.mean(np.logaddexp(0, z) - y * z)))  # stable BCE on logits
            err = (p - y) / len(y)
            self.weights -= lr * (X.T @ err)
            self.bias -= lr * float(err.sum())
        return losses


# ----------------------------------------------------------------------------------------
# Many neurons at once: a layer is one matrix product
# ----------------------------------------------------------------------------------------


def layer_forward(X: ArrayLike, W: ArrayLike, b: ArrayLike, activation: Callable[[Array], Array] = sigmoid) -> Array:
    """M neurons applied to N examples at once: g(X @ W + b).

    Column m of W (D, M) and entry m of b (M,) are the weights and bias of neuron m, so
    entry (n, m) of the result is neuron m's firing rate on example n.

    Parameters
    ----------
    X : array (N, D)
    W : array (D, M)
    b : array (M,)
    activation : elementwise function, the sigmoid by default

    Returns
    -------
    ndarray (N, M)
    """
    X, W, b = (np.asarray(a, dtype=np.float64) for a in (X, W, b))
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[0] or b.shape != W.shape[1:]:
        raise ValueError(
            f"layer_forward: expected X (N, D), W (D, M) and b (M,), got {X.shape}, {W.shape} and {b.shape}"
        )
    return activation(X @ W + b)


def three_layer_forward(
    X: ArrayLike, W1: ArrayLike, b1: ArrayLike, W2: ArrayLike, b2: ArrayLike, W3: ArrayLike, b3: ArrayLike
) -> Array:
    """The lecture's 3-layer network with sigmoid hidden layers and a linear output, batch first.

    h1 = σ(X W1 + b1), h2 = σ(h1 W2 + b2), out = h2 W3 + b3; the lecture's sizes are
    3 -> 4 -> 4 -> 1, i.e. W1 (3, 4), W2 (4, 4), W3 (4, 1).

    Parameters
    ----------
    X : array (N, D)
    W1, b1 : arrays (D, H1), (H1,)
    W2, b2 : arrays (H1, H2), (H2,)
    W3, b3 : arrays (H2, C), (C,)

    Returns
    -------
    ndarray (N, C): the output scores (no activation on the last layer)
    """
    h1 = layer_forward(X, W1, b1, sigmoid)
    h2 = layer_forward(h1, W2, b2, sigmoid)
    return layer_forward(h2, W3, b3, _identity)


def _identity(z: Array) -> Array:
    return z
