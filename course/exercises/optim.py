"""Exercises of the optimisation assignment: the ``step()`` of SGD, Momentum (both
formulations), RMSProp and Adam, and the step and cosine learning-rate schedules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import optim as O
from ..layers import Parameter
from .base import Case, Verdict, register
from .kinds import FunctionExercise, OptimizerExercise

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
