"""Exercises of the layers assignment: backward of Linear, the activations, the lecture's
LinearSigmoid layer, and Sequential."""

from __future__ import annotations

import numpy as np

from .. import layers as L
from .base import register
from .kinds import LayerExercise, away_from


def _dense_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """Small visible shapes; hidden: random shapes, a batch of one, and a large case that a
    finite-difference "backward" cannot finish under the grader's CPU limit."""
    if not hidden:
        return [{"args": [3, 4], "input_shape": [5, 3]}]
    d, m, n = (int(k) for k in rng.integers(2, 9, 3))
    return [
        {"args": [d, m], "input_shape": [n, d]},
        {"args": [m, d], "input_shape": [1, m], "label": "a batch of one example"},
        {"args": [256, 192], "input_shape": [128, 256], "max_entries": 40, "label": "a large batch (128 x 256 -> 192)"},
    ]


def _elementwise_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    if not hidden:
        return [{"input_shape": [4, 3]}]
    n, d = (int(k) for k in rng.integers(1, 9, 2))
    return [{"input_shape": [n, d]}, {"input_shape": [256, 512], "max_entries": 60, "label": "a large input (256 x 512)"}]


register(LayerExercise("layers.Linear.backward", "Linear.backward", L.Linear, _dense_settings))
register(LayerExercise("layers.Sigmoid.backward", "Sigmoid.backward", L.Sigmoid, _elementwise_settings))
register(LayerExercise("layers.Tanh.backward", "Tanh.backward", L.Tanh, _elementwise_settings))
register(
    LayerExercise("layers.ReLU.backward", "ReLU.backward", L.ReLU, _elementwise_settings, sampler=away_from(0.0))
)
register(
    LayerExercise(
        "layers.LinearSigmoid.backward",
        "LinearSigmoid.backward",
        L.LinearSigmoid,
        lambda rng, hidden: [
            dict(s, kwargs={"bias": b}) for s, b in zip(_dense_settings(rng, hidden), [False, True, False], strict=False)
        ],
    )
)


def _mlp(cls, cfg: dict) -> L.Layer:
    """A Sequential of *reference* layers: only Sequential.backward is the student's."""
    d, h, c = cfg["sizes"]
    return cls(L.Linear(d, h), L.Tanh(), L.Linear(h, c), L.Sigmoid())


def _sequential_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    if not hidden:
        return [{"sizes": [3, 5, 2], "input_shape": [4, 3]}]
    d, h, c, n = (int(k) for k in rng.integers(2, 9, 4))
    return [
        {"sizes": [d, h, c], "input_shape": [n, d]},
        {"sizes": [128, 96, 10], "input_shape": [64, 128], "max_entries": 30, "label": "a large network (128-96-10)"},
    ]


register(
    LayerExercise("layers.Sequential.backward", "Sequential.backward", L.Sequential, _sequential_settings, build=_mlp)
)
