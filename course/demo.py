"""The main job: train a small MLP on the shipped handwritten digits and report its accuracy.

Run with ``python -m course.demo`` (``make demo`` does this after installing).
"""

from __future__ import annotations

import numpy as np

from . import data
from .layers import Linear, ReLU, Sequential
from .losses import L2, SoftmaxCrossEntropy
from .optim import Adam
from .train import accuracy, fit


def train_digits(epochs: int = 15, seed: int = 0, verbose: bool = True) -> tuple[Sequential, float]:
    """A 64-64-10 ReLU network trained with Adam; returns the model and its test accuracy."""
    X, y = data.load_digits()
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, test_fraction=0.2, rng=seed)
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(64, 64, rng=rng), ReLU(), Linear(64, 10, rng=rng))
    fit(
        model,
        SoftmaxCrossEntropy(),
        Adam(model.parameters(), lr=1e-2),
        X_train,
        y_train,
        epochs=epochs,
        batch_size=64,
        reg=L2(1e-4),
        rng=rng,
        verbose=verbose,
    )
    return model, accuracy(model, X_test, y_test)


def main() -> None:
    print("Training a 64-64-10 MLP on the 8x8 handwritten digits shipped with the course ...")
    _, test_acc = train_digits()
    print(f"test accuracy: {test_acc:.1%}")
    print(data.DIGITS_ATTRIBUTION)


if __name__ == "__main__":
    main()
