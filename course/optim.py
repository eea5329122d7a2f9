"""Optimisers and learning-rate schedules.

Every optimiser takes an iterable of :class:`~course.layers.Parameter` and a learning rate,
keeps whatever state its update rule needs (one array per parameter), and offers ``step()``
(update every ``p.data`` in place from ``p.grad``) and ``zero_grad()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .layers import Parameter

__all__ = [
    "SGD",
    "Adam",
    "CosineDecay",
    "Momentum",
    "Optimizer",
    "RMSProp",
    "StepDecay",
    "cosine_decay",
    "step_decay",
]


class Optimizer:
    """Base class: stores the parameters and the learning rate ``lr``."""

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} received no parameters to optimise")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"{type(self).__name__}: item {i} is a {type(p).__name__}, not a Parameter; pass model.parameters()"
                )
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: the learning rate must be positive, got {lr}")
        self.lr = float(lr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr:g})"

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__}.step is not implemented")

    def _zeros(self) -> list[np.ndarray]:
        return [np.zeros_like(p.data) for p in self.params]


class SGD(Optimizer):
    """w ← w − lr · g."""

    def step(self) -> None:
        for p in self.params:
            p.data -= self.lr * p.grad


class Momentum(Optimizer):
    """SGD with momentum: a velocity that is a running sum of gradients.

    ``formulation="gradient"`` (the default, as in the lecture): v ← ρv + g; w ← w − lr·v.
    ``formulation="step"``: v ← ρv − lr·g; w ← w + v. With a constant learning rate both give
    the same sequence of weights (the second velocity is −lr times the first).
    """

    def __init__(self, params: Iterable[Parameter], lr: float, rho: float = 0.9, formulation: str = "gradient") -> None:
        super().__init__(params, lr)
        if formulation not in ("gradient", "step"):
            raise ValueError(f"Momentum: formulation must be 'gradient' or 'step', got {formulation!r}")
        if not 0 <= rho < 1:
            raise ValueError(f"Momentum: rho must be in [0, 1), got {rho}")
        self.rho, self.formulation = rho, formulation
        self.velocity = self._zeros()

    def step(self) -> None:
        for p, v in zip(self.params, self.velocity, strict=True):
            if self.formulation == "gradient":
                v *= self.rho
                v += p.grad
                p.data -= self.lr * v
            else:
                v *= self.rho
                v -= self.lr * p.grad
                p.data += v


class RMSProp(Optimizer):
    """s ← decay·s + (1 − decay)·g²; w ← w − lr · g / (√s + eps)."""

    def __init__(self, params: Iterable[Parameter], lr: float, decay: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.decay, self.eps = decay, eps
        self.square_avg = self._zeros()

    def step(self) -> None:
        for p, s in zip(self.params, self.square_avg, strict=True):
            s *= self.decay
            s += (1.0 - self.decay) * p.grad**2
            p.data -= self.lr * p.grad / (np.sqrt(s) + self.eps)


class Adam(Optimizer):
    """Momentum and RMSProp together, with bias correction for the zero initial moments.

    m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;  m̂ = m / (1 − β1ᵗ);  v̂ = v / (1 − β2ᵗ);
    w ← w − lr · m̂ / (√v̂ + eps).
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m, self.v = self._zeros(), self._zeros()
        self.t = 0

    def step(self) -> None:
        self.t += 1
        correction1 = 1.0 - self.beta1**self.t
        correction2 = 1.0 - self.beta2**self.t
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            m *= self.beta1
            m += (1.0 - self.beta1) * p.grad
            v *= self.beta2
            v += (1.0 - self.beta2) * p.grad**2
            p.data -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)


# ----------------------------------------------------------------------------------------
# Learning-rate schedules
# ----------------------------------------------------------------------------------------


def step_decay(lr0: float, t: int, step_size: int, gamma: float = 0.1) -> float:
    """lr0 · gamma^⌊t / step_size⌋: multiply by gamma every ``step_size`` iterations."""
    if step_size < 1:
        raise ValueError(f"step_size must be a positive number of iterations, got {step_size}")
    return lr0 * gamma ** (t // step_size)


def cosine_decay(lr0: float, t: int, T: int, lr_min: float = 0.0) -> float:
    """lr_min + ½ (lr0 − lr_min)(1 + cos(π t / T)), held at lr_min after T iterations."""
    if T < 1:
        raise ValueError(f"T must be a positive number of iterations, got {T}")
    t = min(t, T)
    return lr_min + 0.5 * (lr0 - lr_min) * (1.0 + math.cos(math.pi * t / T))


class _Schedule:
    """Sets ``optimizer.lr`` from the iteration count; call ``step()`` once per iteration."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.lr0 = optimizer.lr
        self.t = 0

    def lr_at(self, t: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        self.t += 1
        self.optimizer.lr = self.lr_at(self.t)
        return self.optimizer.lr


class StepDecay(_Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` iterations."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, t: int) -> float:
        return step_decay(self.lr0, t, self.step_size, self.gamma)


class CosineDecay(_Schedule):
    """Cosine decay from the optimiser's initial learning rate to ``lr_min`` over ``T`` iterations."""

    def __init__(self, optimizer: Optimizer, T: int, lr_min: float = 0.0) -> None:
        super().__init__(optimizer)
        self.T, self.lr_min = T, lr_min

    def lr_at(self, t: int) -> float:
        return cosine_decay(self.lr0, t, self.T, self.lr_min)
