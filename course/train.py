"""A small, seeded training loop: minibatches, fit, accuracy."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .layers import Layer, Parameter
from .losses import Loss, Regularizer
from .optim import Optimizer

__all__ = ["History", "accuracy", "fit", "minibatches", "predict", "weights"]


def minibatches(
    X: ArrayLike,
    y: ArrayLike,
    batch_size: int,
    *,
    rng: int | np.random.Generator | None = 0,
    shuffle: bool = True,
) -> Iterator[tuple[NDArray, NDArray]]:
    """Yield (X_batch, y_batch) covering every example once; the last batch may be smaller.

    The order is drawn from ``rng``, so the same seed gives the same batches.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} examples but y has {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    order = rng.permutation(len(X)) if shuffle else np.arange(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start : start + batch_size]
        yield X[idx], y[idx]


def predict(model: Layer, X: ArrayLike) -> NDArray:
    """Class predictions: argmax of the scores, or score > 0 for a single output column."""
    scores = model.forward(X)
    if scores.ndim == 1 or scores.shape[1] == 1:
        return (scores.reshape(-1) > 0).astype(np.int64)
    return scores.argmax(axis=1)


def accuracy(model_or_scores: Layer | ArrayLike, X_or_y: ArrayLike, y: ArrayLike | None = None) -> float:
    """Fraction of correct predictions: ``accuracy(model, X, y)`` or ``accuracy(scores, y)``."""
    if y is None:
        scores, y = np.asarray(model_or_scores), np.asarray(X_or_y)
        pred = scores.argmax(axis=1) if scores.ndim == 2 and scores.shape[1] > 1 else (scores.reshape(-1) > 0)
    else:
        pred = predict(model_or_scores, X_or_y)  # type: ignore[arg-type]  # with y given, the first is the model
    y = np.asarray(y).reshape(-1)
    return float(np.mean(np.asarray(pred).reshape(-1) == y))


def weights(model: Layer) -> list[Parameter]:
    """The parameters a regulariser should act on: the weight matrices, not the biases."""
    return [p for p in model.parameters() if p.data.ndim >= 2]


def _is_classification(y: NDArray) -> bool:
    """Integer class labels, or one column of 0/1 targets; anything else is regression."""
    if np.issubdtype(y.dtype, np.integer):
        return True
    return (y.ndim == 1 or y.shape[1:] == (1,)) and bool(np.all((y == 0) | (y == 1)))


@dataclass
class History:
    """What ``fit`` records: the loss of every step, and accuracies (for classification) and
    the learning rate once per epoch."""

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: float = 0.0


def fit(
    model: Layer,
    loss: Loss,
    optimizer: Optimizer,
    X: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    reg: Regularizer | None = None,
    X_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
    scheduler=None,
    rng: int | np.random.Generator | None = 0,
    verbose: bool = False,
) -> History:
    """Minibatch training: forward, loss (+ λR on the weights), backward, step.

    ``scheduler`` (if any) is stepped once per iteration. With ``verbose=True`` a line per
    epoch goes to stderr, so long runs show their progress.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    classifying = _is_classification(y)
    history = History()
    start = time.perf_counter()
    # A diverging run overflows inside the layers; it is reported once, below, by the check on
    # the loss, instead of as a stream of numpy warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, epochs + 1):
            for xb, yb in minibatches(X, y, batch_size, rng=rng):
                optimizer.zero_grad()
                value = loss.forward(model.forward(xb), yb)
                if reg is not None:
                    value += reg(weights(model))
                if not np.isfinite(value):  # before the step, so the weights stay finite
                    raise FloatingPointError(
                        f"the loss became {value} at epoch {epoch}: the learning rate "
                        f"({optimizer.lr:g}) is probably too large"
                    )
                if reg is not None:
                    reg.backward(weights(model))
                model.backward(loss.backward())
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                history.loss.append(float(value))
            history.lr.append(optimizer.lr)
            if classifying:
                history.train_acc.append(accuracy(model, X, y))
                if X_val is not None and y_val is not None:
                    history.val_acc.append(accuracy(model, X_val, y_val))
            if verbose:
                acc = f", train acc {history.train_acc[-1]:.3f}" if history.train_acc else ""
                val = f", val acc {history.val_acc[-1]:.3f}" if history.val_acc else ""
                print(f"epoch {epoch:3d}/{epochs}: loss {history.loss[-1]:.4f}{acc}{val}", file=sys.stderr)
    history.seconds = time.perf_counter() - start
    return history
