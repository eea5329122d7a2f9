"""The optimisation landscape: local minima, saddle points and plateaus on small 2-D surfaces.

Each surface comes with its gradient and with a start, a learning rate and a number of steps
at which plain gradient descent gets stuck while momentum gets through:

- :func:`double_well`: a shallow local minimum next to a deeper one;
- :func:`saddle`: a saddle point at the origin between two minima;
- :func:`plateau`: a Gaussian bowl whose far-away floor is almost flat.

:func:`heavy_ball` runs gradient descent with momentum as the lecture writes it
(``v = rho * v + dw; w -= lr * v``; ``rho = 0`` is plain gradient descent), and
:func:`fraction_of_minima` is the random-matrix experiment behind "in high dimension most
critical points are saddles".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "SURFACES",
    "Surface",
    "double_well",
    "double_well_grad",
    "fraction_of_minima",
    "heavy_ball",
    "plateau",
    "plateau_grad",
    "saddle",
    "saddle_grad",
]

Array = NDArray[np.float64]


def _xy(w: ArrayLike) -> tuple[Array, Array]:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 0 or w.shape[-1] != 2:
        raise ValueError(f"the surfaces take points of shape (..., 2) with w[..., 0] = x, w[..., 1] = y, got {w.shape}")
    return w[..., 0], w[..., 1]


def double_well(w: ArrayLike) -> float | Array:
    """f(x, y) = (x² − 1)² + 0.4x + y²: a local minimum near (0.95, 0), the global one near (−1.05, 0)."""
    x, y = _xy(w)
    return (x**2 - 1) ** 2 + 0.4 * x + y**2


def double_well_grad(w: ArrayLike) -> Array:
    """∇f of :func:`double_well`, the shape of ``w`` (..., 2)."""
    x, y = _xy(w)
    return np.stack([4 * x * (x**2 - 1) + 0.4, 2 * y], axis=-1)


def saddle(w: ArrayLike) -> float | Array:
    """f(x, y) = x² + (y² − 1)²: a saddle point at (0, 0), minima at (0, ±1)."""
    x, y = _xy(w)
    return x**2 + (y**2 - 1) ** 2


def saddle_grad(w: ArrayLike) -> Array:
    """∇f of :func:`saddle`, the shape of ``w`` (..., 2)."""
    x, y = _xy(w)
    return np.stack([2 * x, 4 * y * (y**2 - 1)], axis=-1)


def plateau(w: ArrayLike) -> float | Array:
    """f(x, y) = −exp(−(x² + y²)/2): a bowl at the origin, nearly flat a few units away."""
    x, y = _xy(w)
    return -np.exp(-(x**2 + y**2) / 2)


def plateau_grad(w: ArrayLike) -> Array:
    """∇f of :func:`plateau`, the shape of ``w`` (..., 2)."""
    x, y = _xy(w)
    return np.exp(-(x**2 + y**2) / 2)[..., None] * np.stack([x, y], axis=-1)


def heavy_ball(grad: Callable[[Array], ArrayLike], w0: ArrayLike, lr: float, steps: int, rho: float = 0.0) -> Array:
    """The path of gradient descent with momentum, shape (steps + 1, D), starting at ``w0``.

    Each step is ``v = rho * v + grad(w)`` then ``w = w - lr * v``, with ``v`` starting at 0;
    ``rho = 0`` is plain gradient descent.
    """
    w = np.array(w0, dtype=np.float64)
    v = np.zeros_like(w)
    path = [w.copy()]
    for _ in range(steps):
        v = rho * v + np.asarray(grad(w), dtype=np.float64)
        w = w - lr * v
        path.append(w.copy())
    return np.array(path)


@dataclass(frozen=True)
class Surface:
    """A 2-D test surface with a start and settings at which plain gradient descent stalls."""

    name: str
    f: Callable[[ArrayLike], float | Array]
    grad: Callable[[ArrayLike], Array]
    start: tuple[float, float]
    lr: float
    steps: int
    xlim: tuple[float, float]
    ylim: tuple[float, float]


SURFACES: tuple[Surface, ...] = (
    Surface("local minimum", double_well, double_well_grad, (2.0, 1.0), 0.02, 300, (-2.0, 2.2), (-1.2, 1.2)),
    Surface("saddle point", saddle, saddle_grad, (1.5, 1e-3), 0.02, 60, (-1.6, 1.6), (-1.4, 1.4)),
    Surface("plateau", plateau, plateau_grad, (3.5, 0.5), 0.5, 60, (-1.5, 4.0), (-1.5, 1.5)),
)


def fraction_of_minima(dim: int, samples: int = 2000, rng: int | np.random.Generator | None = 0) -> float:
    """The fraction of random symmetric (dim, dim) matrices whose eigenvalues are all positive.

    Read each matrix as the Hessian at a critical point of a random landscape: a critical point
    is a minimum only if the surface curves up in every one of the ``dim`` directions, which for
    random curvatures becomes very unlikely as ``dim`` grows; the rest are saddles (or maxima).
    The entries are Gaussian, symmetrised (the Gaussian orthogonal ensemble).
    """
    if isinstance(dim, bool) or int(dim) != dim or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    a = gen.standard_normal((samples, dim, dim))
    hessians = (a + np.swapaxes(a, 1, 2)) / 2
    return float(np.mean(np.all(np.linalg.eigvalsh(hessians) > 0, axis=1)))
