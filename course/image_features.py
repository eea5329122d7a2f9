"""Hand-made image features, the way vision worked before networks learned their own.

- :func:`intensity_histogram`: how much of the image is dark, mid-grey, bright (the grey-level
  version of a colour histogram): it ignores where anything is, and so all shape;
- :func:`hog`: histograms of oriented gradients (Dalal & Triggs, 2005): the edge direction
  and strength at every pixel, pooled into one histogram of directions per cell of the image;
- :func:`hog_length`: how many numbers that makes (the lecture's 320×240 image, 8×8 cells and
  9 bins: 40 · 30 · 9 = 10,800).

Bag of words, the third classic, needs a vocabulary of patches learned from many images and is
described in the MLP notebook rather than computed here. (:mod:`course.features` is about
feature *transforms* of points in the plane.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["hog", "hog_length", "intensity_histogram"]

Array = NDArray[np.float64]


def _images(images: ArrayLike, side: int) -> Array:
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == side * side:
        x = x.reshape(-1, side, side)
    if x.ndim != 3:
        raise ValueError(
            f"expected images (N, H, W) or flattened {side}x{side} images (N, {side * side}), got {x.shape}"
        )
    return x


def intensity_histogram(images: ArrayLike, bins: int = 8, side: int = 8) -> Array:
    """(N, bins): the fraction of each image's pixels in each of ``bins`` equal grey-level bins of [0, 1].

    ``images`` is (N, H, W), or (N, side²) flattened square images.
    """
    x = _images(images, side)
    x = x.reshape(len(x), -1)
    which = np.clip((np.clip(x, 0.0, 1.0) * bins).astype(int), 0, bins - 1)
    counts = np.stack([(which == b).sum(axis=1) for b in range(bins)], axis=1)
    return counts / x.shape[1]


def hog(images: ArrayLike, cell: int = 4, bins: int = 9, side: int = 8) -> Array:
    """(N, (H/cell)·(W/cell)·bins): one histogram of unsigned gradient directions per cell.

    At every pixel the gradient (centred differences inside the image, one-sided at its border)
    gives a strength ``sqrt(gx² + gy²)`` and a direction in [0°, 180°); each pixel adds its
    strength to the bin of its direction, in its cell. ``H`` and ``W`` must be multiples of ``cell``.
    """
    x = _images(images, side)
    n, h, w = x.shape
    if h % cell or w % cell:
        raise ValueError(f"image size {h}x{w} is not a multiple of the cell size {cell}")
    gy, gx = np.gradient(x, axis=(1, 2))
    strength = np.hypot(gx, gy)
    angle = np.degrees(np.arctan2(gy, gx)) % 180.0
    which = np.minimum((angle / (180.0 / bins)).astype(int), bins - 1)
    onehot = (which[..., None] == np.arange(bins)) * strength[..., None]  # (N, H, W, bins)
    cells = onehot.reshape(n, h // cell, cell, w // cell, cell, bins).sum(axis=(2, 4))
    return cells.reshape(n, -1)


def hog_length(height: int, width: int, cell: int = 8, bins: int = 9) -> int:
    """The number of HoG features of a height × width image: (height/cell) · (width/cell) · bins."""
    if height % cell or width % cell:
        raise ValueError(f"image size {height}x{width} is not a multiple of the cell size {cell}")
    return (height // cell) * (width // cell) * bins
