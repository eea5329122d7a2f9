"""Feature transforms: data that no line separates, and a change of coordinates that makes it
separable.

Two concentric rings are the classic example. In the plane no line splits the inner ring
from the outer one; in polar coordinates (radius, angle) the radius alone does, with a
threshold. A linear classifier on :func:`polar` features therefore succeeds where one on the
raw coordinates fails; a network with a hidden layer learns a transform of this kind from
the raw coordinates by itself.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["polar", "rings"]

Array = NDArray[np.float64]
Labels = NDArray[np.int64]


def rings(
    n_per_ring: int = 100,
    radii: tuple[float, float] = (1.0, 2.5),
    noise: float = 0.2,
    rng: int | np.random.Generator | None = 0,
) -> tuple[Array, Labels]:
    """Two noisy concentric rings in the plane: class 0 inside, class 1 outside.

    Ring k has points at uniformly random angles and radius ``radii[k] + noise · N(0, 1)``.

    Parameters
    ----------
    n_per_ring : int
        Points per ring.
    radii : (float, float)
        The radii of the inner and the outer ring.
    noise : float
        Standard deviation of the radial noise.
    rng : int seed or Generator

    Returns
    -------
    X : ndarray of float64, shape (2 · n_per_ring, 2)
        Grouped by class: the inner ring first.
    y : ndarray of int64, shape (2 · n_per_ring,)
        0 for the inner ring, 1 for the outer ring.
    """
    if int(n_per_ring) != n_per_ring or n_per_ring < 1:
        raise ValueError(f"n_per_ring must be a positive integer, got {n_per_ring!r}")
    if not noise >= 0:
        raise ValueError(f"noise is a standard deviation and must be >= 0, got {noise!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = int(n_per_ring)
    parts = []
    for radius in radii:
        angle = gen.uniform(0.0, 2.0 * np.pi, n)
        r = radius + noise * gen.standard_normal(n)
        parts.append(np.column_stack([r * np.cos(angle), r * np.sin(angle)]))
    return np.vstack(parts), np.repeat(np.arange(2, dtype=np.int64), n)


def polar(X: ArrayLike) -> Array:
    """Polar coordinates of points in the plane: X (N, 2) -> (N, 2) of (radius, angle).

    The radius is sqrt(x₁² + x₂²); the angle is atan2(x₂, x₁), in (−π, π].
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"polar: expected points of shape (N, 2), got {X.shape}")
    return np.column_stack([np.hypot(X[:, 0], X[:, 1]), np.arctan2(X[:, 1], X[:, 0])])
