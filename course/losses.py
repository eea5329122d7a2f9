"""Loss functions and regularisers.

A loss's ``forward(pred, target)`` returns the mean over the N examples of the batch as a
float and saves what ``backward()`` needs; ``backward()`` returns dL/d(pred), an array of
pred's shape. Because the loss is a mean, every gradient carries a factor 1/N.

A regulariser's ``value(w)`` is λ·R(w) and ``grad(w)`` its gradient; the total loss of the
lectures is data loss + λ R(W).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import activations as A
from .layers import Parameter

__all__ = [
    "L1",
    "L2",
    "MSE",
    "BinaryCrossEntropy",
    "BinaryCrossEntropyWithLogits",
    "ElasticNet",
    "Loss",
    "MulticlassSVM",
    "Regularizer",
    "SoftmaxCrossEntropy",
]

Array = NDArray[np.float64]


class Loss:
    """Base class: ``forward(pred, target) -> float`` then ``backward() -> dL/dpred``."""

    def __call__(self, pred: ArrayLike, target: ArrayLike) -> float:
        return self.forward(pred, target)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self) -> Array:
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- input checks shared by the losses ------------------------------------------------

    def _same_shape(self, pred: ArrayLike, target: ArrayLike) -> tuple[Array, Array]:
        pred = np.asarray(pred, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        if pred.shape != target.shape:
            raise ValueError(
                f"{self!r}: pred and target must have the same shape (no broadcasting), "
                f"got pred {pred.shape} and target {target.shape}"
            )
        if pred.ndim == 0:
            raise ValueError(f"{self!r}: expected a batch of shape (N,) or (N, D), got a scalar")
        return pred, target

    def _scores_and_labels(self, scores: ArrayLike, labels: ArrayLike) -> tuple[Array, NDArray]:
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels)
        if scores.ndim != 2:
            raise ValueError(f"{self!r}: expected scores of shape (N, C), got {scores.shape}")
        n, c = scores.shape
        if labels.shape != (n,):
            raise ValueError(f"{self!r}: expected one integer label per example, shape ({n},), got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{self!r}: labels must be integers (class indices), got dtype {labels.dtype}")
        if n and (labels.min() < 0 or labels.max() >= c):
            raise ValueError(
                f"{self!r}: labels must lie in [0, {c - 1}] for {c} classes, "
                f"got values from {labels.min()} to {labels.max()}"
            )
        return scores, labels

    def _saved(self, *names: str) -> tuple:
        values = tuple(getattr(self, name, None) for name in names)
        if any(v is None for v in values):
            raise RuntimeError(f"{self!r}: backward() was called before forward()")
        return values


class MSE(Loss):
    """L = (1/N) Σ_n ½‖ŷ_n − y_n‖²; dL/dŷ = (ŷ − y) / N. pred and target: (N,) or (N, D)."""

    def __init__(self) -> None:
        self.diff: Array | None = None

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        pred, target = self._same_shape(pred, target)
        self.diff = pred - target
        return float(0.5 * np.sum(self.diff**2) / pred.shape[0])

    def backward(self) -> Array:
        (diff,) = self._saved("diff")
        return diff / diff.shape[0]


def _check_binary_targets(loss: Loss, target: Array) -> None:
    if np.any((target < 0) | (target > 1)):
        raise ValueError(f"{loss!r}: targets must lie in [0, 1], got values outside that range")


class BinaryCrossEntropy(Loss):
    """L = −(1/N) Σ [y log p + (1 − y) log(1 − p)] on probabilities p, shape (N,) or (N, 1).

    p is clipped to [eps, 1 − eps] so that a saturated sigmoid gives a large finite loss
    instead of inf; prefer :class:`BinaryCrossEntropyWithLogits` after a final linear layer.
    """

    def __init__(self, eps: float = 1e-12) -> None:
        self.eps = eps
        self.p: Array | None = None
        self.target: Array | None = None

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        p, target = self._same_shape(pred, target)
        if np.any((p < 0) | (p > 1)):
            raise ValueError(
                f"{self!r}: pred must be probabilities in [0, 1]; for raw scores use BinaryCrossEntropyWithLogits"
            )
        _check_binary_targets(self, target)
        self.p, self.target = np.clip(p, self.eps, 1.0 - self.eps), target
        n = p.shape[0]
        return float(-np.sum(target * np.log(self.p) + (1 - target) * np.log1p(-self.p)) / n)

    def backward(self) -> Array:
        p, target = self._saved("p", "target")
        return (p - target) / (p * (1.0 - p)) / p.shape[0]


class BinaryCrossEntropyWithLogits(Loss):
    """Binary cross-entropy on logits z (p = σ(z)), stable for any |z|.

    L = (1/N) Σ [max(z, 0) − z y + log(1 + e^{−|z|})]; dL/dz = (σ(z) − y) / N.
    """

    def __init__(self) -> None:
        self.z: Array | None = None
        self.target: Array | None = None

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        z, target = self._same_shape(pred, target)
        _check_binary_targets(self, target)
        self.z, self.target = z, target
        per_example = np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z)))
        return float(np.sum(per_example) / z.shape[0])

    def backward(self) -> Array:
        z, target = self._saved("z", "target")
        return (A.sigmoid(z) - target) / z.shape[0]


class SoftmaxCrossEntropy(Loss):
    """L = (1/N) Σ_n −log softmax(s_n)[y_n] for scores (N, C) and integer labels (N,).

    dL/ds = (softmax(s) − onehot(y)) / N.
    """

    def __init__(self) -> None:
        self.probs: Array | None = None
        self.labels: NDArray | None = None

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        scores, labels = self._scores_and_labels(pred, target)
        log_p = A.log_softmax(scores, axis=1)
        self.probs, self.labels = np.exp(log_p), labels
        return float(-np.mean(log_p[np.arange(len(labels)), labels]))

    def backward(self) -> Array:
        probs, labels = self._saved("probs", "labels")
        grad = probs.copy()
        grad[np.arange(len(labels)), labels] -= 1.0
        return grad / len(labels)


class MulticlassSVM(Loss):
    """L = (1/N) Σ_n Σ_{j≠y_n} max(0, s_j − s_{y_n} + margin) for scores (N, C), labels (N,).

    Each class j whose margin is violated adds +1 to ds_j and −1 to ds_{y_n}, over N.
    """

    def __init__(self, margin: float = 1.0) -> None:
        self.margin = margin
        self.violated: NDArray | None = None
        self.labels: NDArray | None = None

    def __repr__(self) -> str:
        return f"MulticlassSVM(margin={self.margin})"

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        scores, labels = self._scores_and_labels(pred, target)
        rows = np.arange(len(labels))
        margins = scores - scores[rows, labels][:, None] + self.margin
        margins[rows, labels] = 0.0  # the correct class never competes with itself
        self.violated, self.labels = margins > 0, labels
        return float(np.sum(np.maximum(margins, 0.0)) / len(labels))

    def backward(self) -> Array:
        violated, labels = self._saved("violated", "labels")
        grad = violated.astype(np.float64)
        grad[np.arange(len(labels)), labels] = -violated.sum(axis=1)
        return grad / len(labels)


# ----------------------------------------------------------------------------------------
# Regularisers
# ----------------------------------------------------------------------------------------


class Regularizer:
    """λ R(w): ``value(w)`` and ``grad(w)`` for one array; over parameters with
    ``__call__(params)`` (the summed penalty) and ``backward(params)`` (adds into p.grad).
    """

    def __init__(self, strength: float) -> None:
        if strength < 0:
            raise ValueError(f"{type(self).__name__}: strength must be >= 0, got {strength}")
        self.strength = strength

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strength={self.strength})"

    def value(self, w: ArrayLike) -> float:
        raise NotImplementedError

    def grad(self, w: ArrayLike) -> Array:
        raise NotImplementedError

    def __call__(self, params: Iterable[Parameter]) -> float:
        return float(sum(self.value(p.data) for p in params))

    def backward(self, params: Iterable[Parameter]) -> None:
        for p in params:
            p.grad += self.grad(p.data)


class L2(Regularizer):
    """λ Σ w²; gradient 2λw."""

    def value(self, w: ArrayLike) -> float:
        w = np.asarray(w, dtype=np.float64)
        return float(self.strength * np.sum(w * w))

    def grad(self, w: ArrayLike) -> Array:
        return 2.0 * self.strength * np.asarray(w, dtype=np.float64)


class L1(Regularizer):
    """λ Σ |w|; (sub)gradient λ sign(w), 0 at w = 0."""

    def value(self, w: ArrayLike) -> float:
        return float(self.strength * np.sum(np.abs(np.asarray(w, dtype=np.float64))))

    def grad(self, w: ArrayLike) -> Array:
        return self.strength * np.sign(np.asarray(w, dtype=np.float64))


class ElasticNet(Regularizer):
    """λ Σ (β w² + |w|), the lecture's elastic net; gradient λ (2βw + sign(w))."""

    def __init__(self, strength: float, beta: float = 1.0) -> None:
        super().__init__(strength)
        self.beta = beta

    def __repr__(self) -> str:
        return f"ElasticNet(strength={self.strength}, beta={self.beta})"

    def value(self, w: ArrayLike) -> float:
        w = np.asarray(w, dtype=np.float64)
        return float(self.strength * np.sum(self.beta * w * w + np.abs(w)))

    def grad(self, w: ArrayLike) -> Array:
        w = np.asarray(w, dtype=np.float64)
        return self.strength * (2.0 * self.beta * w + np.sign(w))
