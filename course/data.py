"""Small datasets for the lectures, all generated or shipped inside the package.

* :func:`xor`, :func:`spirals`, :func:`blobs`: 2-D classification toys (X (N, 2), y (N,));
* :func:`booth` and :func:`booth_grad`: the lecture's sample function for gradient descent,
  with :func:`gradient_descent` to trace the path of plain GD on it;
* :func:`load_digits`: the UCI 8x8 handwritten digits, shipped as ``course/_data/digits.npz``;
* :func:`train_test_split`: a seeded random split.

Every random function takes ``rng``, an int seed or a :class:`numpy.random.Generator`, so the
same seed always gives the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "BOOTH_MINIMUM",
    "DIGITS_ATTRIBUTION",
    "blobs",
    "booth",
    "booth_grad",
    "gradient_descent",
    "load_digits",
    "spirals",
    "train_test_split",
    "xor",
]

Array = NDArray[np.float64]
Labels = NDArray[np.int64]
Seed = int | np.random.Generator | None


def _rng(rng: Seed) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------------------
# Toy classification problems
# ----------------------------------------------------------------------------------------


def xor() -> tuple[Array, Labels]:
    """The four XOR points: not linearly separable, so a single neuron cannot fit them.

    Returns
    -------
    X : ndarray of float64, shape (4, 2)
        [[0, 0], [0, 1], [1, 0], [1, 1]].
    y : ndarray of int64, shape (4,)
        [0, 1, 1, 0].
    """
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return X, y


def spirals(n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, rng: Seed = 0) -> tuple[Array, Labels]:
    """The CS231n spiral: ``n_classes`` interleaved arms that no linear classifier separates.

    Arm k has radii r = linspace(0, 1, n_per_class) and angles
    t = linspace(4k, 4(k + 1), n_per_class) + noise · N(0, 1); the point is (r sin t, r cos t).
    The noise moves points along their circle only, so every radius stays in [0, 1].

    Parameters
    ----------
    n_per_class : int
        Points per arm.
    n_classes : int
        Number of arms (classes), K.
    noise : float
        Standard deviation of the angle noise, in radians.
    rng : int seed or Generator

    Returns
    -------
    X : ndarray of float64, shape (N, 2), N = n_per_class · K
        Grouped by class: rows k·n_per_class ... (k + 1)·n_per_class − 1 belong to class k.
    y : ndarray of int64, shape (N,)
        Labels 0 ... K − 1.
    """
    n_per_class = _positive_int(n_per_class, "n_per_class")
    n_classes = _positive_int(n_classes, "n_classes")
    if not noise >= 0:
        raise ValueError(f"noise is a standard deviation and must be >= 0, got {noise!r}")
    gen = _rng(rng)
    radius = np.linspace(0.0, 1.0, n_per_class)
    X = np.empty((n_per_class * n_classes, 2))
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    for k in range(n_classes):
        t = np.linspace(4.0 * k, 4.0 * (k + 1), n_per_class) + noise * gen.standard_normal(n_per_class)
        rows = slice(k * n_per_class, (k + 1) * n_per_class)
        X[rows, 0] = radius * np.sin(t)
        X[rows, 1] = radius * np.cos(t)
    return X, y


#: The default centres of :func:`blobs`: three clusters on a triangle.
_BLOB_CENTERS = np.array([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]])


def blobs(
    n_per_class: int = 100, centers: ArrayLike | None = None, std: float = 0.5, rng: Seed = 0
) -> tuple[Array, Labels]:
    """Gaussian clusters in 2-D: class k is N(centers[k], std² I).

    Parameters
    ----------
    n_per_class : int
        Points per cluster.
    centers : array (K, 2), optional
        The cluster means; by default three on a triangle, (−2, −1), (2, −1) and (0, 2).
    std : float
        Standard deviation of every coordinate.
    rng : int seed or Generator

    Returns
    -------
    X : ndarray of float64, shape (N, 2), N = n_per_class · K, grouped by class
    y : ndarray of int64, shape (N,)
    """
    n_per_class = _positive_int(n_per_class, "n_per_class")
    centers = _BLOB_CENTERS if centers is None else np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[0] < 1 or centers.shape[1] != 2:
        raise ValueError(f"centers must have shape (K, 2) with K >= 1, got {centers.shape}")
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    n_classes = centers.shape[0]
    gen = _rng(rng)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    X = centers[y] + std * gen.standard_normal((y.size, 2))
    return X, y


# ----------------------------------------------------------------------------------------
# Booth's function and gradient descent on it
# ----------------------------------------------------------------------------------------

#: Where Booth's function reaches its minimum, f(1, 3) = 0.
BOOTH_MINIMUM = np.array([1.0, 3.0])


def _xy(w: ArrayLike) -> tuple[Array, Array]:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 0 or w.shape[-1] != 2:
        raise ValueError(
            f"Booth's function takes points w of shape (..., 2) with w[..., 0] = x and "
            f"w[..., 1] = y, got shape {w.shape}"
        )
    return w[..., 0], w[..., 1]


def booth(w: ArrayLike) -> float | Array:
    """Booth's function f(x, y) = (x + 2y − 7)² + (2x + y − 5)², minimum f(1, 3) = 0.

    Computed as a sum of squares, so it is exactly 0 at the minimum and never negative
    (the expanded quadratic 5x² + 8xy + 5y² − 34x − 38y + 74 loses that to cancellation).

    Parameters
    ----------
    w : array (..., 2)
        Points with w[..., 0] = x and w[..., 1] = y. A meshgrid stacked on the last axis,
        ``np.stack([xx, yy], axis=-1)``, gives the grid of a contour plot.

    Returns
    -------
    float for a single point of shape (2,), else ndarray of shape w.shape[:-1]
    """
    x, y = _xy(w)
    value = (x + 2.0 * y - 7.0) ** 2 + (2.0 * x + y - 5.0) ** 2
    return float(value) if np.ndim(value) == 0 else value


def booth_grad(w: ArrayLike) -> Array:
    """The gradient of :func:`booth`: (2r₁ + 4r₂, 4r₁ + 2r₂) with r₁ = x + 2y − 7, r₂ = 2x + y − 5.

    Booth's function is quadratic with Hessian [[10, 8], [8, 10]], whose eigenvalues are 18
    (direction (1, 1)) and 2 (direction (1, −1)).

    Parameters
    ----------
    w : array (..., 2)

    Returns
    -------
    ndarray of float64, shape (..., 2)
        [..., 0] is df/dx and [..., 1] is df/dy.
    """
    x, y = _xy(w)
    r1 = x + 2.0 * y - 7.0
    r2 = 2.0 * x + y - 5.0
    return np.stack([2.0 * r1 + 4.0 * r2, 4.0 * r1 + 2.0 * r2], axis=-1)


def gradient_descent(grad: Callable[[Array], ArrayLike], w0: ArrayLike, lr: float, steps: int) -> Array:
    """The path of plain gradient descent, w ← w − lr · grad(w).

    On Booth's function the learning rate decides everything (the Hessian's eigenvalues are
    2 and 18, so GD is stable only for lr < 2/18 ≈ 0.111): lr = 0.01 crawls and falls short,
    0.10 converges, 0.11 oscillates across the valley and closes in only slowly, and 0.12
    diverges.

    A diverging run is not an error. If an iterate overflows to inf or NaN, the descent stops
    there, without a RuntimeWarning, and that row and every later row of the path are NaN;
    ``np.isfinite(path).all(axis=1)`` tells which steps were completed.

    Parameters
    ----------
    grad : callable
        Takes w (D,) and returns the gradient (D,), e.g. :func:`booth_grad`.
    w0 : array (D,)
        The starting point (D = 2 for Booth).
    lr : float
        The learning rate, > 0.
    steps : int
        Number of updates, >= 0.

    Returns
    -------
    ndarray of float64, shape (steps + 1, D)
        Row t is w after t updates; row 0 is w0.
    """
    w = np.array(w0, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"w0 must be a 1-D point such as (x, y), got shape {w.shape}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"the learning rate lr must be a positive number, got {lr!r}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    path = np.full((int(steps) + 1, w.size), np.nan)
    path[0] = w
    # A diverging run overflows on purpose; the NaN rows report it, not a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, int(steps) + 1):
            g = np.asarray(grad(w), dtype=np.float64)
            if g.shape != w.shape:
                raise ValueError(f"grad(w) returned shape {g.shape}, expected {w.shape} like w0")
            w = w - lr * g
            if not np.all(np.isfinite(w)):
                break
            path[t] = w
    return path


# ----------------------------------------------------------------------------------------
# Handwritten digits
# ----------------------------------------------------------------------------------------

DIGITS_ATTRIBUTION = (
    "Optical Recognition of Handwritten Digits, by E. Alpaydin and C. Kaynak (1998). "
    "UCI Machine Learning Repository, https://doi.org/10.24432/C50P49. "
    "Licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). "
    "The 1797-image copy distributed with scikit-learn, values unchanged."
)

_DIGITS_SHAPE = (1797, 64)


def load_digits() -> tuple[Array, Labels]:
    """The UCI handwritten digits: 1797 images of 8x8 pixels, 10 classes.

    Each pixel counts the "on" pixels in a 4x4 block of the original 32x32 bitmap (0..16);
    here it is divided by 16. The data ship inside the package, so no download is needed.
    See :data:`DIGITS_ATTRIBUTION` for the source and license (CC BY 4.0).

    Returns
    -------
    X : ndarray of float64, shape (1797, 64), values in [0, 1]
        One image per row, row by row: ``X[i].reshape(8, 8)`` is the picture.
    y : ndarray of int64, shape (1797,)
        The digit 0..9.
    """
    source = resources.files("course") / "_data" / "digits.npz"
    with source.open("rb") as f, np.load(f, allow_pickle=False) as archive:
        pixels, labels = archive["X"], archive["y"]
    if pixels.shape != _DIGITS_SHAPE or labels.shape != _DIGITS_SHAPE[:1]:
        raise RuntimeError(
            f"course/_data/digits.npz is damaged: X has shape {pixels.shape} and y {labels.shape}, "
            f"expected {_DIGITS_SHAPE} and {_DIGITS_SHAPE[:1]}; reinstall the package"
        )
    return pixels.astype(np.float64) / 16.0, labels.astype(np.int64)


# ----------------------------------------------------------------------------------------
# Splitting
# ----------------------------------------------------------------------------------------


def train_test_split(
    X: ArrayLike, y: ArrayLike, test_fraction: float = 0.2, rng: Seed = 0
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Shuffle the examples and hold out a fraction of them for testing (not stratified).

    The test set has round(test_fraction · N) examples (at least one); the training set
    must not come out empty.

    Parameters
    ----------
    X : array (N, ...)
    y : array (N, ...)
    test_fraction : float in (0, 1)
    rng : int seed or Generator

    Returns
    -------
    X_train : (N − n_test, ...), X_test : (n_test, ...), y_train, y_test
        Rows in shuffled order, with the dtypes of X and y.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(f"X and y must have one row per example, got X of shape {X.shape} and y of shape {y.shape}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
    n = len(X)
    n_test = max(1, round(test_fraction * n))
    if n_test >= n:
        raise ValueError(f"test_fraction={test_fraction} of {n} examples leaves nothing to train on")
    order = _rng(rng).permutation(n)
    train, test = order[n_test:], order[:n_test]
    return X[train], X[test], y[train], y[test]
