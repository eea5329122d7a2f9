"""A two-layer network written out by hand: forward, softmax loss and backward in one method.

The CS231n ``TwoLayerNet``: scores = ReLU(X W1 + b1) W2 + b2, trained with the mean softmax
cross-entropy plus an L2 penalty reg · (ΣW1² + ΣW2²) (the biases are not penalised). Plain
numpy on purpose, without :mod:`course.layers`, so that the whole chain rule of one network
sits in one screen of code, staged as the lecture recommends::

    forward:  X -> z1 = X W1 + b1 -> h1 = ReLU(z1) -> scores = h1 W2 + b2 -> loss
    backward: dscores -> dW2, db2, dh1 -> dz1 -> dW1, db1

Shapes: N examples, D input features, H hidden units, C classes.
"""

from __future__ import annotations

import sys

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .train import History, minibatches

__all__ = ["TwoLayerNet"]

Array = NDArray[np.float64]
PARAMETER_NAMES = ("W1", "b1", "W2", "b2")


class TwoLayerNet:
    """Input (D) -> fully connected -> ReLU -> fully connected -> softmax over C classes.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        D, H and C.
    std : float, optional
        Weights are drawn from N(0, std²). By default each matrix gets He's scale
        sqrt(2 / fan_in), which keeps the ReLU activations O(1) at the start; a tiny std such
        as 1e-4 makes the first loss exactly ln C (every class equally likely).
    rng : int seed or Generator, optional

    Attributes
    ----------
    params : dict of float64 arrays
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,); biases start at zero.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        std: float | None = None,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        sizes = {"input_size": input_size, "hidden_size": hidden_size, "output_size": output_size}
        for name, n in sizes.items():
            if isinstance(n, bool) or int(n) != n or n < 1:
                raise ValueError(f"TwoLayerNet: {name} must be a positive integer, got {n!r}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        s1 = np.sqrt(2.0 / input_size) if std is None else std
        s2 = np.sqrt(2.0 / hidden_size) if std is None else std
        self.params: dict[str, Array] = {
            "W1": s1 * gen.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": s2 * gen.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }

    def __repr__(self) -> str:
        (d, h), c = self.params["W1"].shape, self.params["W2"].shape[1]
        return f"TwoLayerNet({d}, {h}, {c})"

    def loss(
        self, X: ArrayLike, y: ArrayLike | None = None, reg: float = 0.0
    ) -> Array | tuple[float, dict[str, Array]]:
        """The scores, or the loss and its gradient with respect to every parameter.

        Parameters
        ----------
        X : array (N, D)
        y : int array (N,), optional
            The labels, in [0, C).
        reg : float
            λ in  L = (1/N) Σ_n −log softmax(s_n)[y_n] + λ (ΣW1² + ΣW2²).

        Returns
        -------
        scores : ndarray (N, C)
            When ``y`` is None.
        loss, grads : float and dict
            Otherwise; ``grads[k]`` has the shape of ``params[k]``.
        """
        W1, b1, W2, b2 = (self.params[k] for k in PARAMETER_NAMES)
        X = self._input(X)
        n = X.shape[0]

        # forward pass
        z1 = X @ W1 + b1  # (N, H)
        h1 = np.maximum(z1, 0.0)
        scores = h1 @ W2 + b2  # (N, C)
        if y is None:
            return scores

        # loss: a stable log-softmax (shifting each row leaves softmax unchanged)
        y = self._labels(y, n, scores.shape[1])
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(n)
        loss = -log_probs[rows, y].mean() + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))

        # backward pass, one stage per line of the forward pass
        dscores = np.exp(log_probs)
        dscores[rows, y] -= 1.0
        dscores /= n  # (N, C)
        dW2 = h1.T @ dscores + 2.0 * reg * W2
        db2 = dscores.sum(axis=0)
        dh1 = dscores @ W2.T  # (N, H)
        dz1 = dh1 * (z1 > 0)
        dW1 = X.T @ dz1 + 2.0 * reg * W1
        db1 = dz1.sum(axis=0)
        return float(loss), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    def forward(self, X: ArrayLike) -> Array:
        """The scores (N, C), as ``loss(X)``: the interface of a layer, for plotting helpers."""
        return self.loss(X)  # type: ignore[return-value]  # without y, loss returns the scores

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """The class with the highest score for each row of X (N, D): an int array (N,)."""
        return np.argmax(self.loss(X), axis=1)  # type: ignore[arg-type]  # without y, the scores

    def train(
        self,
        X: ArrayLike,
        y: ArrayLike,
        X_val: ArrayLike | None = None,
        y_val: ArrayLike | None = None,
        *,
        lr: float = 1e-1,
        reg: float = 0.0,
        epochs: int = 10,
        batch_size: int = 200,
        lr_decay: float = 1.0,
        rng: int | np.random.Generator | None = 0,
        verbose: bool = False,
    ) -> History:
        """Minibatch stochastic gradient descent on ``loss``: p ← p − lr · dL/dp.

        Parameters
        ----------
        X, y : arrays (N, D) and (N,)
            The training set.
        X_val, y_val : arrays, optional
            A validation set, scored after every epoch.
        lr, reg : float
            The learning rate and the regularisation strength λ.
        epochs : int
            Passes over the training set; each pass visits every example once, in an order
            drawn from ``rng``.
        batch_size : int
            Examples per step (``batch_size >= N`` gives full-batch gradient descent).
        lr_decay : float
            The learning rate is multiplied by this after every epoch.
        verbose : bool
            Print a line per epoch to stderr.

        Returns
        -------
        History
            ``loss`` at every step; ``train_acc``, ``val_acc`` and ``lr`` once per epoch.
        """
        if not lr > 0:
            raise ValueError(f"TwoLayerNet.train: the learning rate must be positive, got {lr!r}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        X, y = self._input(X), np.asarray(y)
        history = History()
        for epoch in range(1, epochs + 1):
            for xb, yb in minibatches(X, y, batch_size, rng=gen):
                value, grads = self.loss(xb, yb, reg=reg)
                if not np.isfinite(value):
                    raise FloatingPointError(
                        f"the loss became {value} at epoch {epoch}: the learning rate ({lr:g}) is probably too large"
                    )
                for k in PARAMETER_NAMES:
                    self.params[k] -= lr * grads[k]
                history.loss.append(value)
            history.lr.append(lr)
            history.train_acc.append(float(np.mean(self.predict(X) == y)))
            if X_val is not None and y_val is not None:
                history.val_acc.append(float(np.mean(self.predict(X_val) == np.asarray(y_val))))
            if verbose:
                val = f", val acc {history.val_acc[-1]:.3f}" if history.val_acc else ""
                print(
                    f"epoch {epoch:3d}/{epochs}: loss {history.loss[-1]:.4f}, "
                    f"train acc {history.train_acc[-1]:.3f}{val}",
                    file=sys.stderr,
                )
            lr *= lr_decay
        return history

    # -- input checks: clear errors instead of silent broadcasting ------------------------

    def _input(self, X: ArrayLike) -> Array:
        X = np.asarray(X, dtype=np.float64)
        d = self.params["W1"].shape[0]
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(f"{self!r}: expected X of shape (N, {d}), got {X.shape}")
        return X

    def _labels(self, y: ArrayLike, n: int, c: int) -> NDArray:
        y = np.asarray(y)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{self!r}: expected y as {n} integer labels, shape ({n},), got {y.dtype} {y.shape}")
        if n and (y.min() < 0 or y.max() >= c):
            raise ValueError(f"{self!r}: labels must lie in [0, {c - 1}], got {y.min()} ... {y.max()}")
        return y
