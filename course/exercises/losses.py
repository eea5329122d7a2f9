"""Exercises of the losses assignment: the backward of each loss and the gradients of the
regularisers.

Both are judged against centred differences of the *reference* value computed one example
(or one weight) at a time. A loss is the mean of per-example terms, so dL/dpred[n, j] is the
derivative of example n's loss alone, divided by N; a penalty is a sum of per-weight terms.
Differencing the whole batch instead would bury gradients of size ~1/N under the round-off
of a sum over N examples: for N = 2048 a correct gradient would show a relative error of
about 1e-5. The differences are extrapolated (:func:`.layers.extrapolated_gradient`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import losses as F
from .exercise import Exercise, judge_rng
from .kinds import LossExercise, away_from
from .layers import compare_scaled, extrapolated_gradient
from .records import Case, KnownBug, Verdict
from .registry import get, register
from .transport import fingerprint, modified

__all__ = ["BatchLossExercise", "RegularizerExercise", "away_from_hinge"]

Index = tuple[int, ...]


def _describe(config: dict[str, Any], hidden: bool, what: str) -> str:
    label = config.get("label") or f"{what} of shape {tuple(config['shape'])}"
    return f"{'a hidden case: ' if hidden else ''}{label}"


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape)


def _sample(shape: tuple[int, ...], max_entries: int | None, rng: np.random.Generator) -> list[Index] | None:
    """``max_entries`` random entries of a tensor of ``shape`` (None: check every entry)."""
    size = int(np.prod(shape))
    if max_entries is None or size <= max_entries:
        return None
    flat = rng.choice(size, size=max_entries, replace=False)
    return [tuple(int(i) for i in np.unravel_index(k, shape)) for k in flat]


class BatchLossExercise(LossExercise):
    """Check ``backward()`` of a :class:`~course.losses.Loss` (and the value its forward returns).

    Settings dicts as for :class:`~course.exercises.kinds.LossExercise` (``shape``, ``target``,
    ``pred``, ``scale``, ``kwargs``, ``label``), plus ``max_entries`` to check a large batch on a
    sample of entries, and the target kind ``"soft"`` (uniform in [0, 1]). For integer labels half
    of the sample sits on the correct classes, where a forgotten "−1" would show.

    ``repair(pred, target, rng)`` may move a drawn case away from a kink (the SVM's hinge), and
    ``valid(pred, target)`` rejects it otherwise; ``h`` is the difference step.
    """

    def __init__(
        self,
        name: str,
        title: str,
        reference: type,
        settings: Callable[[np.random.Generator, bool], list[dict[str, Any]]],
        *,
        valid: Callable[[np.ndarray, np.ndarray], bool] | None = None,
        repair: Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray] | None = None,
        traps: list[tuple[Any, str]] | None = None,
        h: float = 1e-3,
    ) -> None:
        super().__init__(name, title, reference, settings, valid=valid, traps=traps)
        self.repair, self.h = repair, h

    def _draw(self, rng: np.random.Generator, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        shape = tuple(config["shape"])
        if config.get("pred") == "probabilities":
            pred = rng.uniform(0.05, 0.95, shape)
        else:
            pred = rng.standard_normal(shape) * config.get("scale", 1.0)
        kind = config.get("target", "real")
        if kind == "labels":
            target = rng.integers(0, shape[1], shape[0])
        elif kind == "binary":
            target = rng.integers(0, 2, shape).astype(np.float64)
        elif kind == "soft":
            target = rng.uniform(0.0, 1.0, shape)
        else:
            target = rng.standard_normal(shape)
        if self.repair is not None:
            pred = self.repair(pred, target, rng)
        return pred, target

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = []
        for config in self.settings(rng, hidden):
            for _attempt in range(100):
                pred, target = self._draw(rng, config)
                if self.valid is None or self.valid(pred, target):
                    break
            else:
                raise RuntimeError(f"{self.name}: no valid case in 100 draws for {config}")
            what = "probabilities" if config.get("pred") == "probabilities" else "predictions"
            if config.get("target") == "labels":
                what = "scores"
            cases.append(Case(_describe(config, hidden, what), {"pred": pred, "target": target}, config))
        return cases

    def _entries(self, case: Case) -> list[Index] | None:
        pred, target = case.arrays["pred"], case.arrays["target"]
        rng = judge_rng()
        indices = _sample(pred.shape, case.config.get("max_entries"), rng)
        if indices is not None and case.config.get("target") == "labels":
            rows = rng.choice(pred.shape[0], size=len(indices) // 2, replace=False)
            indices = indices[: len(indices) - len(rows)] + [(int(n), int(target[n])) for n in rows]
            indices = sorted(set(indices))
        return indices

    def _numerical(self, ref: Any, case: Case, indices: list[Index] | None) -> np.ndarray:
        """dL/dpred by centred differences of the reference loss of one example at a time."""
        pred, target = case.arrays["pred"], case.arrays["target"]
        n_examples = pred.shape[0]
        numeric = np.full(pred.shape, np.nan)
        wanted: dict[int, list[Index] | None] = {}
        if indices is None:
            wanted = dict.fromkeys(range(n_examples))
        else:
            picked: dict[int, list[Index]] = {}
            for ix in indices:
                picked.setdefault(ix[0], []).append((0, *ix[1:]))
            wanted.update(picked)
        for n, local in wanted.items():
            row, row_target = pred[n : n + 1].copy(), target[n : n + 1]

            def loss_of_row(r: np.ndarray, t: np.ndarray = row_target) -> Any:
                return ref.forward(r, t)

            grad = extrapolated_gradient(loss_of_row, row, h=self.h, indices=local)
            if local is None:
                numeric[n] = grad[0] / n_examples
            else:
                for ix in local:
                    at = (n, *ix[1:])
                    numeric[at] = grad[ix] / n_examples
        return numeric

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        pred, target = case.arrays["pred"].copy(), case.arrays["target"]
        ref = self.reference(**case.config.get("kwargs", {}))
        value = self.expect_array(v, outputs, "value", (), "the loss forward returns")
        self.compare_values(v, "loss value", value, ref.forward(pred, target))
        grad = self.expect_array(v, outputs, "grad", pred.shape, "the gradient backward returns (dL/dpred)")
        if grad is not None:
            indices = self._entries(case)
            numeric = self._numerical(ref, case, indices)
            v.checks.append(compare_scaled("dL/dpred", grad, numeric, indices=indices, batch=pred.shape[0]))
        if modified(outputs, "pred_after", pred):
            v.problems.append("pred was modified in place; compute into a new array instead")
        return v


class RegularizerExercise(Exercise):
    """Check ``grad(w)`` of a :class:`~course.losses.Regularizer` against centred differences
    of the reference ``value``, one weight at a time.

    Settings dicts: ``kwargs`` for the constructor (strength, beta), ``shape`` of w, optional
    ``max_entries`` and ``label``. ``sampler`` draws w (keep L1's kink at 0 away).
    """

    def __init__(
        self,
        name: str,
        title: str,
        reference: type,
        settings: Callable[[np.random.Generator, bool], list[dict[str, Any]]],
        *,
        sampler: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray] = _normal,
        traps: list[tuple[Any, str]] | None = None,
        h: float = 1e-4,
    ) -> None:
        super().__init__(name, title, traps if traps is not None else [(reference, "grad")])
        self.reference, self.settings, self.sampler, self.h = reference, settings, sampler, h

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        return [
            Case(_describe(cfg, hidden, "weights"), {"w": self.sampler(rng, tuple(cfg["shape"]))}, cfg)
            for cfg in self.settings(rng, hidden)
        ]

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        reg = student(**case.config.get("kwargs", {}))
        w = case.arrays["w"].copy()
        return {"grad": reg.grad(w), "w_after": fingerprint(w)}

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        w = case.arrays["w"]
        ref = self.reference(**case.config.get("kwargs", {}))
        grad = self.expect_array(v, outputs, "grad", w.shape, "the gradient grad(w) returns")
        if grad is not None:
            indices = _sample(w.shape, case.config.get("max_entries"), judge_rng())
            numeric = np.full(w.shape, np.nan)
            for ix in indices if indices is not None else np.ndindex(w.shape):
                numeric[ix] = extrapolated_gradient(ref.value, np.array([w[ix]]), h=self.h)[0]
            v.checks.append(compare_scaled("dR/dw", grad, numeric, indices=indices))
        if modified(outputs, "w_after", w):
            v.problems.append("w was modified in place; compute into a new array instead")
        return v


# ----------------------------------------------------------------------------------------
# Kinks
# ----------------------------------------------------------------------------------------


def _hinge_margins(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """s_j − s_y + 1 for every class, with the correct class itself set to +inf (no hinge)."""
    rows = np.arange(len(labels))
    margins = scores - scores[rows, labels][:, None] + 1.0
    margins[rows, labels] = np.inf
    return margins


def away_from_hinge(scores: np.ndarray, labels: np.ndarray, rng: np.random.Generator, gap: float = 1e-3) -> np.ndarray:
    """Move every wrong-class score whose margin s_j − s_y + 1 lies within ``gap`` of 0 to a
    margin of ±(gap + U(0, 0.5)); a wrong class's score enters only its own margin."""
    scores = scores.copy()
    margins = _hinge_margins(scores, labels)
    close = np.abs(margins) < gap
    side = np.where(margins[close] >= 0, 1.0, -1.0)
    rows = np.nonzero(close)[0]
    scores[close] = scores[rows, labels[rows]] - 1.0 + side * (gap + rng.uniform(0, 0.5, close.sum()))
    return scores


def _svm_valid(scores: np.ndarray, labels: np.ndarray) -> bool:
    """No margin within 1e-3 of the hinge, so the differences (steps up to 2e-4) never cross it."""
    return bool(np.all(np.abs(_hinge_margins(scores, labels)) >= 1e-3))


# ----------------------------------------------------------------------------------------
# Settings: visible checks use a small case, then a large one; hidden checks use random
# shapes, a batch of one, and the same large case. For the cross-entropy and the SVM the large
# case is one that a finite-difference "backward" cannot finish under the grader's CPU limit
# (20 s per check), even one that perturbs class j of every example at once (a per-example
# loss: C + 1 passes over the batch, benchmarks/README.md). So visible points too need a real
# backward pass. MSE, binary cross-entropy and the penalties are elementwise: one pass over a
# perturbed copy gives every entry, so no size protects them; the checking run looks for it
# instead (course.exercises.numerical). Large cases are checked on a sample of entries.
# ----------------------------------------------------------------------------------------


def _class_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """Visible: five examples of four classes, then a large batch; hidden: random shapes, a
    batch of one, and the large batch."""
    large = {"shape": [256, 16384], "target": "labels", "max_entries": 60}
    large["label"] = "a large batch (256 examples, 16384 classes)"
    if not hidden:
        return [{"shape": [5, 4], "target": "labels"}, large]
    n, c, c1 = (int(k) for k in rng.integers([2, 2, 2], [17, 11, 11]))
    return [
        {"shape": [n, c], "target": "labels"},
        {"shape": [1, c1], "target": "labels", "label": "a batch of one example"},
        large,
    ]


def _binary_settings(rng: np.random.Generator, hidden: bool, **pred: Any) -> list[dict]:
    """Visible: six examples, then a large batch; hidden: random sizes, soft targets, and the
    large batch. ``pred`` goes into every case (``pred="probabilities"``, ``scale``)."""
    large = {"shape": [262144], "target": "binary", "max_entries": 60, "label": "a large batch (262,144 examples)"}
    large.update(pred)
    if not hidden:
        return [{"shape": [6], "target": "binary", **pred}, large]
    n, m = (int(k) for k in rng.integers(1, 17, 2))
    return [
        {"shape": [n], "target": "binary", **pred},
        {"shape": [m, 1], "target": "soft", "label": f"soft targets, shape ({m}, 1)", **pred},
        large,
    ]


def _logit_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """As :func:`_binary_settings` with logits of scale 2 (visible: six examples and the large
    batch); hidden cases also get confident logits, just before the large batch."""
    settings = _binary_settings(rng, hidden, scale=2.0)
    if hidden:
        n = int(rng.integers(2, 17))
        confident = {"shape": [n], "target": "binary", "scale": 6.0, "label": "confident logits (|z| up to ~20)"}
        settings.insert(2, confident)
    return settings


def _regression_settings(rng: np.random.Generator, hidden: bool) -> list[dict]:
    """Visible: a 5 x 3 batch, then a large one; hidden: a vector, a random matrix, and the
    large batch."""
    large = {"shape": [2048, 128], "target": "real", "max_entries": 60, "label": "a large batch (2048 x 128)"}
    if not hidden:
        return [{"shape": [5, 3], "target": "real"}, large]
    n, m, d = (int(k) for k in rng.integers(1, 13, 3))
    return [
        {"shape": [n], "target": "real"},
        {"shape": [m, d], "target": "real"},
        large,
    ]


def _penalty_settings(rng: np.random.Generator, hidden: bool, beta: bool = False) -> list[dict]:
    """Visible: a 4 x 3 matrix, then a large one, with the strength 0.1 (and beta 0.5); hidden:
    a random matrix, a vector, and the large matrix, each with a random strength (and beta)."""

    def kwargs() -> dict[str, float]:
        k = {"strength": round(float(rng.uniform(0.01, 2.0)), 4)}
        if beta:
            k["beta"] = round(float(rng.uniform(0.1, 3.0)), 4)
        return k

    def large(kw: dict[str, float]) -> dict:
        return {"kwargs": kw, "shape": [1024, 512], "max_entries": 60, "label": "a large weight matrix (1024 x 512)"}

    if not hidden:
        fixed = {"strength": 0.1, **({"beta": 0.5} if beta else {})}
        return [{"kwargs": fixed, "shape": [4, 3]}, large(dict(fixed))]
    d, m = (int(k) for k in rng.integers(1, 9, 2))
    # kwargs() is called in list order, as before, so the hidden draw is unchanged
    return [
        {"kwargs": kwargs(), "shape": [d, m]},
        {"kwargs": kwargs(), "shape": [m]},
        large(kwargs()),
    ]


# ----------------------------------------------------------------------------------------
# The catalogue
# ----------------------------------------------------------------------------------------

register(
    BatchLossExercise(
        "losses.SoftmaxCrossEntropy.backward", "SoftmaxCrossEntropy.backward", F.SoftmaxCrossEntropy, _class_settings
    )
)
register(
    BatchLossExercise(
        "losses.MulticlassSVM.backward",
        "MulticlassSVM.backward",
        F.MulticlassSVM,
        _class_settings,
        valid=_svm_valid,
        repair=away_from_hinge,
        h=1e-4,
    )
)
register(
    BatchLossExercise(
        "losses.BinaryCrossEntropy.backward",
        "BinaryCrossEntropy.backward",
        F.BinaryCrossEntropy,
        lambda rng, hidden: _binary_settings(rng, hidden, pred="probabilities"),
        h=1e-4,  # log p has large high derivatives near p = 0.05: a smaller step keeps truncation down
    )
)
register(
    BatchLossExercise(
        "losses.BinaryCrossEntropyWithLogits.backward",
        "BinaryCrossEntropyWithLogits.backward",
        F.BinaryCrossEntropyWithLogits,
        _logit_settings,
    )
)
# A quadratic's centred difference is exact for any step: a large one leaves no round-off.
register(BatchLossExercise("losses.MSE.backward", "MSE.backward", F.MSE, _regression_settings, h=0.1))

register(RegularizerExercise("losses.L2.grad", "L2.grad", F.L2, _penalty_settings))
register(RegularizerExercise("losses.L1.grad", "L1.grad", F.L1, _penalty_settings, sampler=away_from(0.0)))
register(
    RegularizerExercise(
        "losses.ElasticNet.grad",
        "ElasticNet.grad",
        F.ElasticNet,
        lambda rng, hidden: _penalty_settings(rng, hidden, beta=True),
        sampler=away_from(0.0),
        # composing the reference L1 and L2 would be delegation too
        traps=[(F.ElasticNet, "grad"), (F.L1, "grad"), (F.L2, "grad")],
    )
)


# ----------------------------------------------------------------------------------------
# Known mistakes, recognised by running them (base.KnownBug)
# ----------------------------------------------------------------------------------------


class _SoftmaxWithoutOneHot(F.SoftmaxCrossEntropy):
    def backward(self) -> np.ndarray:
        probs, labels = self._saved("probs", "labels")
        return probs / len(labels)


class _SVMWithoutCorrectClass(F.MulticlassSVM):
    def backward(self) -> np.ndarray:
        violated, labels = self._saved("violated", "labels")
        return violated / len(labels)


class _BinaryCrossEntropyOneBranch(F.BinaryCrossEntropy):
    def backward(self) -> np.ndarray:
        (p,) = self._saved("p")
        return -1.0 / p / len(p)


class _MSEMeanOverEntries(F.MSE):
    def backward(self) -> np.ndarray:
        (diff,) = self._saved("diff")
        return super().backward() * len(diff) / diff.size


class _L1AsL2(F.L1):
    def grad(self, w: ArrayLike) -> np.ndarray:
        return self.strength * np.asarray(w, dtype=np.float64)


class _L2WithoutTwo(F.L2):
    def grad(self, w: ArrayLike) -> np.ndarray:
        return super().grad(w) / 2.0


class _ElasticNetWithoutBeta(F.ElasticNet):
    def grad(self, w: ArrayLike) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        return self.strength * (2.0 * w + np.sign(w))


get("losses.SoftmaxCrossEntropy.backward").known_bugs = (
    KnownBug(
        "no −1 at the correct class",
        "your dL/dscores is the softmax probabilities alone (over N): the loss is −log p of the correct class, "
        "so each example's correct class also gets a −1 (the probabilities minus the one-hot labels)",
        _SoftmaxWithoutOneHot,
    ),
)
get("losses.MulticlassSVM.backward").known_bugs = (
    KnownBug(
        "nothing at the correct class",
        "your gradient is 1/N at every violated margin and 0 at the correct class: the correct class's score "
        "s_y is in every margin s_j − s_y + 1, so it gets −1/N for each margin of its example that is violated",
        _SVMWithoutCorrectClass,
    ),
)
get("losses.BinaryCrossEntropy.backward").known_bugs = (
    KnownBug(
        "the y = 1 branch only",
        "your gradient is that of −log p for every entry, as if every target were 1: where the target is 0 "
        "the loss is −log(1 − p): differentiate that branch too, and weight each branch by its target",
        _BinaryCrossEntropyOneBranch,
    ),
)
get("losses.MSE.backward").known_bugs = (
    KnownBug(
        "divided by N·D, not N",
        "your gradient is D times too small (D = the number of outputs per example): the loss is a mean over "
        "the N examples of a sum over their outputs, so its gradient is divided by N only",
        _MSEMeanOverEntries,
    ),
)
get("losses.L1.grad").known_bugs = (
    KnownBug(
        "L2's gradient for L1",
        "your gradient grows with w, as an L2 penalty's does: the derivative of strength · |w| is strength "
        "times the sign of w, the same size for every non-zero weight",
        _L1AsL2,
    ),
)
get("losses.L2.grad").known_bugs = (
    KnownBug(
        "the 2 of d(w²)/dw missing",
        "your gradient is half the right one: the derivative of strength · w² is 2 · strength · w",
        _L2WithoutTwo,
    ),
)
get("losses.ElasticNet.grad").known_bugs = (
    KnownBug(
        "β missing",
        "your gradient's L2 part is not weighted by beta: the penalty is strength · (β w² + |w|), so its "
        "derivative's first term carries β",
        _ElasticNetWithoutBeta,
    ),
)
