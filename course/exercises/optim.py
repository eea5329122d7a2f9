"""Exercises of the optimisation assignment: the ``step()`` of SGD, Momentum (both
formulations), RMSProp and Adam, and the step and cosine learning-rate schedules."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import optim as O
from ..layers import Parameter
from .kinds import FunctionExercise, OptimizerExercise
from .records import Case, KnownBug, Verdict
from .registry import get, register

__all__ = ["MomentumExercise", "ScheduleExercise"]


def _shape(rng: np.random.Generator) -> list[int]:
    ndim = int(rng.integers(1, 4))
    return [int(n) for n in rng.integers(1, 7, ndim)]


def _optimizer_settings(
    visible: dict[str, Any], hidden: Callable[[np.random.Generator], dict[str, Any]]
) -> Callable[[np.random.Generator, bool], list[dict]]:
    """Visible: 3 steps on a matrix and a vector. Hidden: 10 steps on several parameters of
    random shapes, a single step, and a large parameter."""

    def settings(rng: np.random.Generator, is_hidden: bool) -> list[dict]:
        if not is_hidden:
            return [{"shapes": [[3, 2], [2]], "steps": 3, "kwargs": visible}]
        k = int(rng.integers(2, 5))
        return [
            {"shapes": [_shape(rng) for _ in range(k)], "steps": 10, "kwargs": hidden(rng)},
            {"shapes": [_shape(rng)], "steps": 1, "kwargs": hidden(rng), "label": "a single step"},
            {
                "shapes": [[400, 250], [250]],
                "steps": 4,
                "kwargs": hidden(rng),
                "label": "4 steps on a large parameter (400 x 250) and a vector",
            },
        ]

    return settings


def _swap_betas(kwargs: dict) -> dict:
    """Adam's settings with beta1 and beta2 exchanged (the defaults filled in first)."""
    return dict(kwargs, beta1=kwargs.get("beta2", 0.999), beta2=kwargs.get("beta1", 0.9))


def _rmsprop_without_one_minus_decay(kwargs: dict) -> dict:
    """RMSProp's settings that give the steps of s ← decay·s + g² (no 1 − decay weight): that s is
    the right one divided by (1 − decay), so the step is the right one with lr and eps times √(1 − decay)."""
    scale = math.sqrt(1.0 - kwargs.get("decay", 0.99))
    return dict(kwargs, lr=kwargs["lr"] * scale, eps=kwargs.get("eps", 1e-8) * scale)


# Known mistakes, recognised by running them (base.KnownBug): each is the reference's step,
# then the weights moved again from where they were, as the mistake moves them.


def _weights_before(opt: O.Optimizer) -> list[np.ndarray]:
    return [np.array(p.data, copy=True) for p in opt.params]


class _MomentumStaleVelocity(O.Momentum):
    def step(self) -> None:
        before, old = _weights_before(self), [np.array(v, copy=True) for v in self.velocity]
        super().step()
        for p, w, v in zip(self.params, before, old, strict=True):
            p.data[...] = w - self.lr * v if self.formulation == "gradient" else w + v


class _RMSPropNoSqrt(O.RMSProp):
    def step(self) -> None:
        before = _weights_before(self)
        super().step()
        for p, w, s in zip(self.params, before, self.square_avg, strict=True):
            p.data[...] = w - self.lr * p.grad / (s + self.eps)


class _AdamNoBiasCorrection(O.Adam):
    def step(self) -> None:
        before = _weights_before(self)
        super().step()
        for p, w, m, v in zip(self.params, before, self.m, self.v, strict=True):
            p.data[...] = w - self.lr * m / (np.sqrt(v) + self.eps)


class _MomentumWithoutVelocity(O.Momentum):
    def step(self) -> None:
        for p in self.params:
            p.data -= self.lr * p.grad


FORGETS_VELOCITY = KnownBug(
    "velocity not kept",
    "self.velocity stays zero and every step is plain SGD: the velocity must be kept from one step to the "
    "next (update self.velocity[i] in place, or assign the new one back), so that past gradients add up",
    _MomentumWithoutVelocity,
)

STALE_VELOCITY = KnownBug(
    "stale velocity",
    "your weights move with the velocity of the previous step (at the first step they do not move at all): "
    "update the velocity with this step's gradient first, then move the weights with the new velocity",
    _MomentumStaleVelocity,
)


def _lr(rng: np.random.Generator) -> float:
    return float(10.0 ** rng.uniform(-3, -0.5))


register(
    OptimizerExercise(
        "optim.SGD.step",
        "SGD.step",
        O.SGD,
        _optimizer_settings({"lr": 0.1}, lambda rng: {"lr": _lr(rng)}),
    )
)


class MomentumExercise(OptimizerExercise):
    """An :class:`OptimizerExercise` that also compares ``velocity`` after every step.

    The two formulations give the same weights, so only the velocity tells them apart:
    ρv + g in the "gradient" formulation, ρv − lr·g (−lr times it) in the "step" one.
    """

    def _trajectory(self, cls: Any, case: Case) -> dict[str, Any]:
        shapes = case.config["shapes"]
        params = [Parameter(case.arrays[f"param{i}"]) for i in range(len(shapes))]
        opt = cls(params, **case.config.get("kwargs", {}))
        record: dict[str, list[np.ndarray]] = {}
        for t in range(case.config["steps"]):
            for i, p in enumerate(params):
                p.grad[...] = case.arrays[f"grad{t}_{i}"]
            opt.step()
            for i, p in enumerate(params):
                record.setdefault(f"traj{i}", []).append(np.array(p.data, copy=True))
                record.setdefault(f"velocity{i}", []).append(np.array(opt.velocity[i], copy=True))
        return {key: np.stack(values) for key, values in record.items()}

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        for key, want in self._trajectory(self.reference, case).items():
            kind, i = ("traj", key[4:]) if key.startswith("traj") else ("velocity", key[8:])
            what = f"parameter {i} after each step" if kind == "traj" else f"self.velocity[{i}] after each step"
            got = self.expect_array(v, outputs, key, want.shape, f"the {what}")
            self.compare_values(v, what, got, want, tol=1e-7)
            if kind == "traj":
                self.recognise_step(v, case, int(i), got, want)
        return v


register(
    MomentumExercise(
        "optim.Momentum.step",
        "Momentum.step",
        O.Momentum,
        _optimizer_settings(
            {"lr": 0.1, "rho": 0.9}, lambda rng: {"lr": _lr(rng), "rho": float(rng.choice([0.5, 0.9, 0.99]))}
        ),
    )
)
register(
    MomentumExercise(
        "optim.Momentum.step_formulation",
        "Momentum.step (formulation='step')",
        O.Momentum,
        _optimizer_settings(
            {"lr": 0.1, "rho": 0.9, "formulation": "step"},
            lambda rng: {"lr": _lr(rng), "rho": float(rng.choice([0.5, 0.9, 0.99])), "formulation": "step"},
        ),
    )
)
register(
    OptimizerExercise(
        "optim.RMSProp.step",
        "RMSProp.step",
        O.RMSProp,
        _optimizer_settings(
            {"lr": 0.01, "decay": 0.9},
            lambda rng: {
                "lr": _lr(rng),
                "decay": float(rng.choice([0.9, 0.99])),
                "eps": float(rng.choice([1e-8, 1e-6])),
            },
        ),
        variants=(
            (
                "no (1 − decay) weight",
                "your running average of the squared gradients grows too large: weight the new g² by "
                "(1 − decay), so that the old average's weight (decay) and the new one's add up to 1",
                _rmsprop_without_one_minus_decay,
            ),
        ),
    )
)
register(
    OptimizerExercise(
        "optim.Adam.step",
        "Adam.step",
        O.Adam,
        _optimizer_settings(
            {"lr": 0.01},
            lambda rng: {
                "lr": _lr(rng),
                "beta1": float(rng.choice([0.8, 0.9])),
                "beta2": float(rng.choice([0.99, 0.999])),
                "eps": float(rng.choice([1e-8, 1e-6])),
            },
        ),
        variants=(
            (
                "betas swapped",
                "beta1 is the decay of the mean of the gradients (m), beta2 that of the "
                "mean of their squares (v): you swapped them",
                _swap_betas,
            ),
        ),
    )
)


# ----------------------------------------------------------------------------------------
# Learning-rate schedules: scalar arguments, one case is a whole curve
# ----------------------------------------------------------------------------------------


class ScheduleExercise(FunctionExercise):
    """A schedule ``f(lr0, t, length, extra)`` of plain numbers, checked over a whole curve.

    Settings dicts: ``args`` (lr0, then the schedule's length: step_size or T, then gamma or
    lr_min; the last may be omitted to test the default) and ``ts``, the iterations at which
    the learning rate is compared. ``FunctionExercise`` passes arrays; here every call gets
    Python numbers, an int t among them.
    """

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = []
        for cfg in self.settings(rng, hidden):
            label = cfg.get("label") or f"lr0 = {cfg['args'][0]:g}, t = {cfg['ts'][0]}..{cfg['ts'][-1]}"
            cases.append(Case(("a hidden case: " if hidden else "") + label, {}, dict(cfg)))
        return cases

    def _call(self, fn: Callable, case: Case) -> Any:
        lr0, length, *extra = case.config["args"]
        return [fn(float(lr0), int(t), int(length), *(float(e) for e in extra)) for t in case.config["ts"]]

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        return {"lrs": self._call(student, case)}

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        want = np.array(self._call(self.reference, case), dtype=np.float64)
        got = self.expect_array(v, outputs, "lrs", want.shape, "the learning rates, one per t")
        self.compare_values(v, "learning rate at each t", got, want, tol=self.tol)
        if v.checks and not v.checks[-1].passed:
            t = case.config["ts"][v.checks[-1].worst_index[0]]
            v.checks[-1].hint = f"look at t = {t}"
        return v


def _step_decay_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    if not hidden:
        return [{"args": [0.1, 10], "ts": list(range(35)), "label": "lr0 = 0.1, step_size = 10, default gamma"}]
    step_size = int(rng.integers(2, 30))
    gamma = float(rng.uniform(0.1, 0.9))
    return [
        {"args": [float(rng.uniform(0.01, 1.0)), step_size, gamma], "ts": list(range(5 * step_size + 3))},
        {"args": [0.5, 1, 0.5], "ts": list(range(12)), "label": "step_size = 1 (decay every iteration)"},
        {"args": [1.0, 1000, 0.3], "ts": [0, 1, 999, 1000, 1001, 2999, 3000, 10_000], "label": "a long run"},
    ]


def _cosine_decay_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    if not hidden:
        return [{"args": [0.1, 20], "ts": list(range(21)), "label": "lr0 = 0.1, T = 20, t = 0..T"}]
    T = int(rng.integers(3, 60))
    lr0 = float(rng.uniform(0.01, 1.0))
    return [
        {"args": [lr0, T], "ts": list(range(T + 1))},
        {"args": [lr0, T, lr0 / 10], "ts": list(range(T + 1)), "label": f"lr_min = lr0 / 10, T = {T}"},
        {"args": [0.3, 10, 0.01], "ts": list(range(25)), "label": "beyond T (held at lr_min)"},
        {"args": [0.3, 1], "ts": [0, 1, 2], "label": "T = 1"},
    ]


register(ScheduleExercise("optim.step_decay", "step_decay", O.step_decay, _step_decay_settings, tol=1e-9))
register(ScheduleExercise("optim.cosine_decay", "cosine_decay", O.cosine_decay, _cosine_decay_settings, tol=1e-9))


def _step_decay_without_floor(lr0: float, t: int, step_size: int, gamma: float = 0.1) -> float:
    return lr0 * gamma ** (t / step_size)


def _step_decay_early(lr0: float, t: int, step_size: int, gamma: float = 0.1) -> float:
    return O.step_decay(lr0, t + 1, step_size, gamma)


def _cosine_decay_without_pi(lr0: float, t: int, T: int, lr_min: float = 0.0) -> float:
    return lr_min + 0.5 * (lr0 - lr_min) * (1.0 + math.cos(min(t, T) / T))


def _cosine_decay_full_period(lr0: float, t: int, T: int, lr_min: float = 0.0) -> float:
    return lr_min + 0.5 * (lr0 - lr_min) * (1.0 + math.cos(2 * math.pi * min(t, T) / T))


# The mistakes recognised by running them (base.KnownBug), per exercise.
get("optim.Momentum.step").known_bugs = (STALE_VELOCITY, FORGETS_VELOCITY)
get("optim.Momentum.step_formulation").known_bugs = (STALE_VELOCITY, FORGETS_VELOCITY)
get("optim.RMSProp.step").known_bugs = (
    KnownBug(
        "no square root",
        "you divide by the running average of g² itself: divide by its square root (plus eps), so that "
        "each weight's step is about lr whatever the gradient's scale",
        _RMSPropNoSqrt,
    ),
)
get("optim.Adam.step").known_bugs = (
    KnownBug(
        "no bias correction",
        "your steps are too small at first: m and v start at zero, so in early steps they are biased "
        "towards zero; divide them by (1 − β1ᵗ) and (1 − β2ᵗ) before the update (the bias correction)",
        _AdamNoBiasCorrection,
    ),
)
get("optim.step_decay").known_bugs = (
    KnownBug(
        "no floor",
        "your learning rate decays smoothly between the steps: step decay holds it constant for step_size "
        "iterations, so its exponent counts the completed periods, a whole number (floor division)",
        _step_decay_without_floor,
    ),
    KnownBug(
        "decays one step early",
        "your learning rate drops one iteration too early: the first decay comes at t = step_size, "
        "after step_size whole iterations at lr0",
        _step_decay_early,
    ),
)
get("optim.cosine_decay").known_bugs = (
    KnownBug(
        "no π",
        "the angle of your cosine goes from 0 to 1 radian instead of from 0 to π, so at t = T the "
        "learning rate has not come down to lr_min",
        _cosine_decay_without_pi,
    ),
    KnownBug(
        "a full period",
        "your cosine makes a full period and climbs back to lr0 at t = T: the angle should go from 0 to π "
        "(half a period), so that the learning rate ends at lr_min",
        _cosine_decay_full_period,
    ),
)
