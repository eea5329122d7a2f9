"""Reusable kinds of exercise: a layer's backward, a loss's backward, an elementwise
derivative, a plain function, an optimiser's step.

Each kind draws its cases from settings (a dict per case, JSON-able) supplied by the topic
module that registers the exercise, so the topic modules stay short declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..gradcheck import Mistake
from ..layers import Parameter
from .exercise import Exercise, judge_rng
from .known_bugs import recognise
from .records import Case, Verdict
from .transport import fingerprint, modified

__all__ = [
    "ElementwiseExercise",
    "FunctionExercise",
    "LayerExercise",
    "LossExercise",
    "OptimizerExercise",
    "away_from",
]

Settings = Callable[[np.random.Generator, bool], list[dict[str, Any]]]
Sampler = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def away_from(*kinks: float, gap: float = 1e-3) -> Sampler:
    """A sampler of N(0, 1) entries kept at least ``gap`` from every kink (say 0 for ReLU),
    so that centred differences never straddle one."""

    def sample(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        x = rng.standard_normal(shape)
        for k in kinks:
            close = np.abs(x - k) < gap
            x[close] = k + np.where(x[close] >= k, 1, -1) * (gap + rng.uniform(0, 0.5, close.sum()))
        return x

    return sample


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape)


def _describe(config: dict[str, Any], hidden: bool) -> str:
    shape = config.get("input_shape") or config.get("shape")
    label = config.get("label") or (f"input of shape {tuple(shape)}" if shape else "a case")
    return f"{'a hidden case: ' if hidden else ''}{label}"


class LayerExercise(Exercise):
    """Check ``backward`` (and the forward output) of a :class:`~course.layers.Layer` class.

    Each settings dict has ``args``/``kwargs`` for the constructor and ``input_shape``; the
    optional ``max_entries`` samples large tensors in the numerical check. ``build(cls, config)``
    makes the layer (default ``cls(*args, **kwargs)``), for containers built around reference
    layers. ``valid(layer, x)`` may reject a drawn case (e.g. a Maxout near-tie) to redraw it.
    ``elementwise=True`` (an activation without parameters) lets the numerical check of a
    large input difference only the sampled entries.
    """

    def __init__(
        self,
        name: str,
        title: str,
        reference: type,
        settings: Settings,
        *,
        build: Callable[[Any, dict], Any] | None = None,
        sampler: Sampler = _normal,
        valid: Callable[[Any, np.ndarray], bool] | None = None,
        traps: list[tuple[Any, str]] | None = None,
        elementwise: bool = False,
    ) -> None:
        super().__init__(name, title, traps if traps is not None else [(reference, "backward")])
        self.reference, self.settings = reference, settings
        self.build = build or (lambda cls, cfg: cls(*cfg.get("args", ()), **cfg.get("kwargs", {})))
        self.sampler, self.valid = sampler, valid
        self.elementwise = elementwise

    def _layer(self, cls: Any, case: Case) -> Any:
        layer = self.build(cls, case.config)
        params = layer.parameters()
        n = case.config["n_params"]
        if len(params) != n:
            raise ValueError(f"parameters() returned {len(params)} parameters, expected {n}")
        for i, p in enumerate(params):
            p.data[...] = case.arrays[f"param{i}"]
        return layer

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = []
        for config in self.settings(rng, hidden):
            for _attempt in range(100):
                layer = self.build(self.reference, config)
                params = layer.parameters()
                arrays = {f"param{i}": self.sampler(rng, p.data.shape) for i, p in enumerate(params)}
                for i, p in enumerate(params):
                    p.data[...] = arrays[f"param{i}"]
                x = self.sampler(rng, tuple(config["input_shape"]))
                if self.valid is None or self.valid(layer, x):
                    break
            out = layer.forward(x)
            arrays.update(x=x, grad_out=rng.standard_normal(out.shape))
            arrays.update({f"prefill{i}": rng.standard_normal(p.data.shape) for i, p in enumerate(params)})
            config = dict(config, n_params=len(params))
            cases.append(Case(_describe(config, hidden), arrays, config))
        return cases

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        layer = self._layer(student, case)
        x = case.arrays["x"].copy()
        out = layer.forward(x)
        for i, p in enumerate(layer.parameters()):
            p.grad[...] = case.arrays[f"prefill{i}"]
        grad_out = case.arrays["grad_out"].copy()
        grad_x = layer.backward(grad_out)
        outputs = {"out": out, "grad_x": grad_x, "x_after": fingerprint(x), "grad_out_after": fingerprint(grad_out)}
        outputs.update({f"grad{i}": p.grad for i, p in enumerate(layer.parameters())})
        return outputs

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        a, cfg = case.arrays, case.config
        ref = self._layer(self.reference, case)
        x, grad_out = a["x"].copy(), a["grad_out"]
        batch = x.shape[0] if x.ndim > 1 else None
        sample: dict[str, Any] = {
            "max_entries": cfg.get("max_entries"),
            "rng": judge_rng(),
            "batch": batch,
            "averaged": False,
        }
        out = self.expect_array(v, outputs, "out", grad_out.shape, "the forward output")
        self.compare_values(v, "forward output", out, ref.forward(x))
        grad_x = self.expect_array(v, outputs, "grad_x", x.shape, "the gradient backward returns (dL/dx)")
        self.compare_gradient(v, "dL/dx", grad_x, ref.forward, x, grad_out, elementwise=self.elementwise, **sample)
        params = ref.parameters()
        names = [p.name for p in params]
        for i, p in enumerate(params):
            label = p.name or f"parameter {i}"
            if names.count(p.name) > 1:  # e.g. the W of each Linear in a Sequential
                label = f"{p.name} no. {names[: i + 1].count(p.name)}"  # dL/dW no. 2: the second layer's W
            total = self.expect_array(v, outputs, f"grad{i}", p.data.shape, f"{label}.grad")
            if total is None:
                continue
            added = total - a[f"prefill{i}"]
            check = self.compare_gradient(
                v, f"dL/d{label}", added, lambda _: ref.forward(x), p.data, grad_out, **sample
            )
            overwritten = False
            if check is not None and check.numeric is not None:
                sampled = ~np.isnan(check.numeric)  # unsampled entries of a large tensor are NaN
                overwritten = np.allclose(total[sampled], check.numeric[sampled], rtol=1e-6, atol=1e-12)
            if check is not None and overwritten and not check.passed:
                check.hint = f"{label}.grad was overwritten (=) instead of accumulated (+=)"
                check.mistake = Mistake.OVERWRITTEN
        for key, original, what in [("x_after", x, "the input x"), ("grad_out_after", grad_out, "grad_out")]:
            if modified(outputs, key, original):
                v.problems.append(f"{what} was modified in place; compute into a new array instead")
        return v


class LossExercise(Exercise):
    """Check ``forward`` (value) and ``backward`` (dL/dpred) of a :class:`~course.losses.Loss`.

    Settings dicts: ``kwargs`` for the constructor, ``shape`` of pred, and ``target``: one of
    ``"labels"`` (integer classes in [0, C)), ``"binary"`` ({0, 1} floats), ``"real"`` (normal).
    ``pred``: ``"scores"`` (normal, default) or ``"probabilities"`` (uniform in [0.05, 0.95]).
    ``valid(pred, target)`` may reject a case near a kink (the SVM's hinge).
    """

    def __init__(
        self,
        name: str,
        title: str,
        reference: type,
        settings: Settings,
        *,
        valid: Callable[[np.ndarray, np.ndarray], bool] | None = None,
        traps: list[tuple[Any, str]] | None = None,
    ) -> None:
        super().__init__(name, title, traps if traps is not None else [(reference, "backward")])
        self.reference, self.settings, self.valid = reference, settings, valid

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = []
        for config in self.settings(rng, hidden):
            shape = tuple(config["shape"])
            for _attempt in range(100):
                if config.get("pred") == "probabilities":
                    pred = rng.uniform(0.05, 0.95, shape)
                else:
                    pred = rng.standard_normal(shape) * config.get("scale", 1.0)
                kind = config.get("target", "real")
                if kind == "labels":
                    target = rng.integers(0, shape[1], shape[0])
                elif kind == "binary":
                    target = rng.integers(0, 2, shape).astype(np.float64)
                else:
                    target = rng.standard_normal(shape)
                if self.valid is None or self.valid(pred, target):
                    break
            cases.append(Case(_describe(config, hidden), {"pred": pred, "target": target}, config))
        return cases

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        loss = student(**case.config.get("kwargs", {}))
        pred = case.arrays["pred"].copy()
        value = loss.forward(pred, case.arrays["target"].copy())
        return {"value": value, "grad": loss.backward(), "pred_after": fingerprint(pred)}

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        pred, target = case.arrays["pred"].copy(), case.arrays["target"]
        ref = self.reference(**case.config.get("kwargs", {}))
        value = self.expect_array(v, outputs, "value", (), "the loss forward returns")
        self.compare_values(v, "loss value", value, ref.forward(pred, target))
        grad = self.expect_array(v, outputs, "grad", pred.shape, "the gradient backward returns (dL/dpred)")
        self.compare_gradient(v, "dL/dpred", grad, lambda p: ref.forward(p, target), pred, None, batch=pred.shape[0])
        if modified(outputs, "pred_after", pred):
            v.problems.append("pred was modified in place; compute into a new array instead")
        return v


class ElementwiseExercise(Exercise):
    """Check a derivative function ``f_grad(x, **kwargs)`` against centred differences of ``f``.

    Settings dicts: ``shape`` and optional ``kwargs`` (e.g. ``{"alpha": 0.1}``).
    """

    def __init__(
        self,
        name: str,
        title: str,
        f: Callable[..., np.ndarray],
        settings: Settings,
        *,
        reference_grad: Callable[..., np.ndarray] | None = None,
        sampler: Sampler = _normal,
    ) -> None:
        traps = [] if reference_grad is None else [(_module_of(reference_grad), reference_grad.__name__)]
        super().__init__(name, title, traps)
        self.f, self.settings, self.sampler = f, settings, sampler

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        return [
            Case(_describe(cfg, hidden), {"x": self.sampler(rng, tuple(cfg["shape"]))}, cfg)
            for cfg in self.settings(rng, hidden)
        ]

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        return {"grad": student(case.arrays["x"].copy(), **case.config.get("kwargs", {}))}

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        x, kwargs = case.arrays["x"].copy(), case.config.get("kwargs", {})
        grad = self.expect_array(v, outputs, "grad", x.shape, "the derivative")
        self.compare_gradient(v, "derivative", grad, lambda z: self.f(z, **kwargs), x, None)
        return v


def _module_of(fn: Callable) -> Any:
    import sys

    return sys.modules[fn.__module__]


class FunctionExercise(Exercise):
    """Check a plain function against the reference function on the same inputs.

    ``settings`` dicts carry ``arrays`` (name -> shape or a literal list) and ``kwargs``; the
    function is called as ``f(*positional arrays in order, **kwargs)``. Every returned value
    (a tuple is split into out0, out1, ...) must match the reference's within ``tol``.
    """

    watch_numerical = False  # see Exercise.watch_numerical

    def __init__(
        self,
        name: str,
        title: str,
        reference: Callable[..., Any],
        settings: Settings,
        *,
        sampler: Sampler = _normal,
        tol: float = 1e-7,
        traps: list[tuple[Any, str]] | None = None,
    ) -> None:
        super().__init__(name, title, traps if traps is not None else [(_module_of(reference), reference.__name__)])
        self.reference, self.settings, self.sampler, self.tol = reference, settings, sampler, tol

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = []
        for cfg in self.settings(rng, hidden):
            arrays = {}
            for key, spec in cfg["arrays"].items():
                is_shape = isinstance(spec, list | tuple) and all(isinstance(n, int) for n in spec)
                arrays[key] = self.sampler(rng, tuple(spec)) if is_shape else np.asarray(spec, dtype=np.float64)
            cfg = dict(cfg, order=list(cfg["arrays"]))
            cases.append(Case(_describe(cfg, hidden), arrays, cfg))
        return cases

    @staticmethod
    def _split(result: Any) -> dict[str, Any]:
        if isinstance(result, tuple):
            return {f"out{i}": r for i, r in enumerate(result)}
        return {"out0": result}

    def _call(self, fn: Callable, case: Case) -> Any:
        args = [case.arrays[k].copy() for k in case.config["order"]]
        return fn(*args, **case.config.get("kwargs", {}))

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        return self._split(self._call(student, case))

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        expected = self._split(self._call(self.reference, case))
        for key, want in expected.items():
            want = np.asarray(want, dtype=np.float64)
            what = "the result" if len(expected) == 1 else f"result {key[3:]}"
            got = self.expect_array(v, outputs, key, want.shape, what)
            self.compare_values(v, what, got, want, tol=self.tol)
        return v


class OptimizerExercise(Exercise):
    """Check an optimiser's ``step()``: a few steps on given gradients must reproduce the
    reference's sequence of weights. Settings dicts: ``shapes`` (one per parameter),
    ``steps`` and ``kwargs`` (lr, rho, ...)."""

    watch_numerical = False  # see Exercise.watch_numerical

    def __init__(
        self,
        name: str,
        title: str,
        reference: type,
        settings: Settings,
        *,
        variants: tuple[tuple[str, str, Callable[[dict], dict]], ...] = (),
    ) -> None:
        super().__init__(name, title, [(reference, "step")])
        self.reference, self.settings = reference, settings
        #: Mistakes that are the reference run with other settings: (name, hint, kwargs -> kwargs).
        self.variants = variants

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = []
        for cfg in self.settings(rng, hidden):
            arrays = {f"param{i}": rng.standard_normal(s) for i, s in enumerate(cfg["shapes"])}
            for t in range(cfg["steps"]):
                for i, s in enumerate(cfg["shapes"]):
                    arrays[f"grad{t}_{i}"] = rng.standard_normal(s)
            label = cfg.get("label") or f"{cfg['steps']} steps on {len(cfg['shapes'])} parameter(s)"
            cases.append(Case(("a hidden case: " if hidden else "") + label, arrays, cfg))
        return cases

    def _trajectory(self, cls: Any, case: Case) -> dict[str, Any]:
        shapes = case.config["shapes"]
        params = [Parameter(case.arrays[f"param{i}"]) for i in range(len(shapes))]
        opt = cls(params, **case.config.get("kwargs", {}))
        steps: list[list[np.ndarray]] = [[] for _ in shapes]
        for t in range(case.config["steps"]):
            for i, p in enumerate(params):
                p.grad[...] = case.arrays[f"grad{t}_{i}"]
            opt.step()
            for i, p in enumerate(params):
                steps[i].append(np.array(p.data, copy=True))
        return {f"traj{i}": np.stack(s) for i, s in enumerate(steps)}

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        return self._trajectory(student, case)

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        expected = self._trajectory(self.reference, case)
        for i, want in enumerate(expected.values()):
            got = self.expect_array(v, outputs, f"traj{i}", want.shape, f"the weights of parameter {i} after each step")
            self.compare_values(v, f"parameter {i} after each step", got, want, tol=1e-7)
            self.recognise_step(v, case, i, got, want)
        return v

    def recognise_step(self, v: Verdict, case: Case, i: int, got: np.ndarray | None, want: np.ndarray) -> None:
        """Name the mistake of a wrong trajectory from its *updates* (the change at each step),
        which a wrong sign or a missing learning rate scales exactly."""
        check = v.checks[-1] if v.checks and got is not None else None
        if check is None or check.passed:
            return
        start = case.arrays[f"param{i}"][None]
        mine, right = np.diff(np.concatenate([start, got]), axis=0), np.diff(np.concatenate([start, want]), axis=0)
        lr = float(case.config.get("kwargs", {}).get("lr", 0.0))
        candidates: list[tuple[str, str, np.ndarray]] = [
            (
                Mistake.WRONG_SIGN,
                "your step moves the weights uphill, along the gradient: subtract the update "
                "(p.data -= ...), do not add it",
                -right,
            ),
        ]
        if lr:
            candidates.append(
                (
                    "missing learning rate",
                    f"every update is 1/lr = {1 / lr:.6g} times too large: multiply the update by self.lr",
                    right / lr,
                )
            )
        for name, hint, transform in self.variants:
            kwargs = transform(dict(case.config.get("kwargs", {})))
            alt = self._trajectory(self.reference, Case(case.label, case.arrays, dict(case.config, kwargs=kwargs)))
            candidates.append((name, hint, np.diff(np.concatenate([start, alt[f"traj{i}"]]), axis=0)))
        updates = replace(check, analytic=mine, numeric=right)
        if recognise(updates, candidates):
            check.hint, check.mistake = updates.hint, updates.mistake
