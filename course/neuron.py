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

__all__ = ["LogisticRegression", "Neuron", "Perceptron"]

Array = NDArray[np.float64]


class Neuron:
    """g(w·x + b) for one input x of shape (D,) or a batch X of shape (N, D)."""

    def __init__(
        self, weights: ArrayLike, bias: float = 0.0, activation: Callable[[Array], Array] = sigmoid
    ) -> None:
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
            raise ValueError(
                f"{self!r}: expected input with {self.weights.size} features, got shape {x.shape}"
            )
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
