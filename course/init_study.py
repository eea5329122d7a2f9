"""Weight initialisation, watched layer by layer on a deep stack of fully connected layers.

:func:`deep_stack` builds ``depth`` blocks of ``Linear(width, width)`` followed by ``Tanh`` or
``ReLU``, with every weight matrix drawn by one of the :data:`SCHEMES`; :func:`layer_statistics`
pushes a batch of random inputs through it, sends a random upstream gradient back, and records
for every block the spread of its activations and of the gradients flowing through it. The
schemes:

- ``zero``: every weight 0 (all units of a layer stay identical: nothing breaks the symmetry);
- ``small``: N(0, 0.01²) (activations and gradients shrink towards 0 layer after layer);
- ``large``: N(0, 1) (tanh saturates at ±1, its local gradients vanish; ReLU explodes);
- ``xavier``: N(0, 1/fan_in) (Glorot & Bengio, 2010: keeps tanh activations O(1));
- ``he``: N(0, 2/fan_in) (He et al., 2015: the factor 2 makes up for ReLU zeroing half its inputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import NDArray

from .layers import Linear, ReLU, Sequential, Tanh

__all__ = ["SCHEMES", "LayerStats", "deep_stack", "init_std", "layer_statistics"]

SCHEMES: tuple[str, ...] = ("zero", "small", "large", "xavier", "he")
ACTIVATIONS = {"tanh": Tanh, "relu": ReLU}


def init_std(scheme: str, fan_in: int) -> float:
    """The standard deviation of a weight matrix with ``fan_in`` inputs under ``scheme``."""
    stds = {"zero": 0.0, "small": 0.01, "large": 1.0, "xavier": np.sqrt(1.0 / fan_in), "he": np.sqrt(2.0 / fan_in)}
    if scheme not in stds:
        raise ValueError(f"unknown initialisation {scheme!r}: choose one of {', '.join(SCHEMES)}")
    return float(stds[scheme])


def deep_stack(
    scheme: str, depth: int = 10, width: int = 256, activation: str = "tanh", rng: int | None = 0
) -> Sequential:
    """``depth`` blocks of Linear(width, width) + activation, weights drawn by ``scheme``, biases 0."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose 'tanh' or 'relu'")
    gen = np.random.default_rng(rng)
    layers = []
    for _ in range(depth):
        linear = Linear(width, width, rng=gen)
        linear.W.data[...] = init_std(scheme, width) * gen.standard_normal((width, width))
        layers += [linear, ACTIVATIONS[activation]()]
    return Sequential(*layers)


@dataclass(frozen=True)
class LayerStats:
    """What one block of a deep stack does to a batch, forward and backward.

    ``act_std`` is the standard deviation of the block's output (after the activation),
    ``grad_std`` that of dL/d(block output), and ``weight_grad_std`` that of dL/dW of its
    Linear layer, for a random upstream gradient dL/d(last output) ~ N(0, 1).
    """

    layer: int
    act_mean: float
    act_std: float
    grad_std: float
    weight_grad_std: float


def layer_statistics(
    scheme: str, depth: int = 10, width: int = 256, activation: str = "tanh", n: int = 500, rng: int | None = 0
) -> list[LayerStats]:
    """Per-block activation and gradient statistics of :func:`deep_stack` on N(0, 1) inputs (n, width)."""
    net = deep_stack(scheme, depth, width, activation, rng)
    gen = np.random.default_rng(None if rng is None else rng + 1)
    outputs: list[NDArray[np.float64]] = []
    h = gen.standard_normal((n, width))
    for i in range(depth):
        h = net[2 * i + 1].forward(net[2 * i].forward(h))
        outputs.append(h)
    grads: list[NDArray[np.float64]] = [np.empty(0)] * depth
    g = gen.standard_normal((n, width))
    for i in reversed(range(depth)):
        grads[i] = g
        g = net[2 * i].backward(net[2 * i + 1].backward(g))
    return [
        LayerStats(
            layer=i + 1,
            act_mean=float(outputs[i].mean()),
            act_std=float(outputs[i].std()),
            grad_std=float(grads[i].std()),
            weight_grad_std=float(cast(Linear, net[2 * i]).W.grad.std()),
        )
        for i in range(depth)
    ]
