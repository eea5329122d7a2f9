"""Exercises of the mlp assignment: the staged ``TwoLayerNet.loss``, graded in three parts.

The student writes one method, ``loss(X, y=None, reg=0.0)``, in three stages, and each stage
is its own exercise so that partial work earns partial credit:

* ``mlp.TwoLayerNet.scores``: the forward pass, ``loss(X)`` returns the scores (N, C);
* ``mlp.TwoLayerNet.loss``: the loss value, mean softmax cross-entropy + reg (ΣW1² + ΣW2²);
* ``mlp.TwoLayerNet.grads``: all four gradients, against centred differences of the
  reference loss.

A case carries X, y, the four parameters and reg. ``run`` copies the parameters into the
student's network and returns only arrays; ``judge`` compares them with the reference
:class:`course.network.TwoLayerNet`. Hidden pre-activations are kept at least ``KINK_GAP``
away from ReLU's kink, so a centred difference never straddles it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import layers as L
from .. import losses
from ..activations import log_softmax
from ..gradcheck import Mistake
from ..network import PARAMETER_NAMES, TwoLayerNet
from .exercise import Exercise
from .known_bugs import recognise
from .layers import compare_scaled, extrapolated_gradient
from .records import Case, Verdict
from .registry import register
from .transport import fingerprint, modified

__all__ = ["KINK_GAP", "STEP", "TwoLayerNetExercise", "loss_terms", "valid"]

#: The step of the numerical check: centred differences at h and 2h, extrapolated (see
#: :func:`course.exercises.layers.extrapolated_gradient`), so that round-off (of order
#: ε · loss / h) stays far below the smallest entries the check resolves.
STEP = 1e-3
#: Every hidden pre-activation X W1 + b1 of a case is at least this far from 0. A step of 2h
#: in W1[d, j] moves column j of it by 2h · |X[n, d]| < 1e-2 (|X| < 5), so none crosses 0.
KINK_GAP = 1.5e-2

# Reference code a submission must not call, per stage (each stage also runs the ones before).
_FORWARD_TRAPS = [
    (TwoLayerNet, "loss"),
    (TwoLayerNet, "forward"),
    (TwoLayerNet, "predict"),
    (L.Linear, "forward"),
    (L.ReLU, "forward"),
]
_LOSS_TRAPS = [(losses.SoftmaxCrossEntropy, "forward"), (losses.L2, "value"), (losses.Regularizer, "__call__")]
_BACKWARD_TRAPS = [
    (L.Linear, "backward"),
    (L.ReLU, "backward"),
    (losses.SoftmaxCrossEntropy, "backward"),
    (losses.L2, "grad"),
    (losses.Regularizer, "backward"),
]


def loss_terms(net: TwoLayerNet, X: np.ndarray, y: np.ndarray, reg: float) -> np.ndarray:
    """The reference loss as a vector of terms that sum to it: −log p[n, y_n] / N for every
    example, then reg · w² for every weight of W1 and W2.

    The numerical check differences each term before summing, so the terms a step leaves
    unchanged cancel exactly; differencing the summed loss instead would leave round-off of
    the order of ε·L / h, which rivals the smallest gradient entries of a large case (and
    entries where the data and penalty gradients nearly cancel).
    """
    log_p = log_softmax(net.loss(X), axis=1)  # type: ignore[arg-type]  # without y, loss gives the scores
    per_example = -log_p[np.arange(len(y)), y] / len(y)
    return np.concatenate([per_example, reg * np.ravel(net.params["W1"]) ** 2, reg * np.ravel(net.params["W2"]) ** 2])


def _settings(rng: np.random.Generator, hidden: bool) -> list[dict[str, Any]]:
    """Sizes (N, D, H, C) and reg per case. Visible: a small case and the large one. Hidden:
    random sizes, a batch of one, and the large case, whose W1 (32768 x 32) a finite-difference
    "backward" could not finish under the grader's CPU limit, even layer by layer with the
    Jacobian of X W1 coloured (one pass per row of W1: D + 1 = 32,769 passes of about 7 ms,
    benchmarks/README.md); its numerical check samples 10 entries per tensor."""
    large = {
        "sizes": [96, 32768, 32, 10],
        "reg": 0.02,
        "max_entries": 10,
        "label": "a large network (N=96, D=32768, H=32, C=10)",
    }
    if not hidden:  # the large case too: visible points also need a real backward pass
        return [{"sizes": [5, 4, 6, 3], "reg": 0.05}, large]
    n, d, h, c = (int(k) for k in rng.integers(2, 10, 4))
    return [
        {"sizes": [n, d, h, c], "reg": round(float(rng.uniform(0.01, 0.5)), 3)},
        {"sizes": [1, d, h, c], "reg": 0.1, "label": "a batch of one example"},
        large,
    ]


def _draw(rng: np.random.Generator, n: int, d: int, h: int, c: int) -> dict[str, np.ndarray]:
    """X, y and parameters scaled so that pre-activations and scores are O(1).

    b1 is redrawn column by column until no hidden pre-activation lies within KINK_GAP of 0
    (each column has only N entries, so a few redraws suffice even for a large batch).
    """
    X = rng.standard_normal((n, d))
    W1 = rng.standard_normal((d, h)) / np.sqrt(d)
    W2 = rng.standard_normal((h, c)) / np.sqrt(h)
    b2 = 0.5 * rng.standard_normal(c)
    y = rng.integers(0, c, n)
    z = X @ W1
    b1 = 0.5 * rng.standard_normal(h)
    for _attempt in range(1000):
        near = np.any(np.abs(z + b1) < KINK_GAP, axis=0)
        if not near.any():
            break
        b1[near] = 0.5 * rng.standard_normal(int(near.sum()))
    else:  # pragma: no cover - would take astronomically bad luck
        raise RuntimeError("could not draw a case away from ReLU's kink")
    return {"X": X, "y": y, "W1": W1, "b1": b1, "W2": W2, "b2": b2}


def valid(arrays: dict[str, np.ndarray]) -> bool:
    """Whether every hidden pre-activation of a case is at least KINK_GAP away from 0."""
    z = arrays["X"] @ arrays["W1"] + arrays["b1"]
    return bool(np.all(np.abs(z) >= KINK_GAP))


class TwoLayerNetExercise(Exercise):
    """One stage of ``TwoLayerNet.loss``: ``part`` is "scores", "loss" or "grads"."""

    def __init__(self, name: str, title: str, part: str, traps: list[tuple[Any, str]]) -> None:
        if part not in ("scores", "loss", "grads"):
            raise ValueError(f"part must be 'scores', 'loss' or 'grads', got {part!r}")
        super().__init__(name, title, traps)
        self.part = part

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = []
        for cfg in _settings(rng, hidden):
            arrays = _draw(rng, *cfg["sizes"])
            if not valid(arrays):  # pragma: no cover - _draw guarantees it
                raise RuntimeError("a drawn case lies too close to ReLU's kink")
            n, d, h, c = cfg["sizes"]
            label = cfg.get("label") or f"N={n}, D={d}, H={h}, C={c}, reg={cfg['reg']}"
            cases.append(Case(("a hidden case: " if hidden else "") + label, arrays, cfg))
        return cases

    @staticmethod
    def _network(cls: Any, arrays: dict[str, np.ndarray]) -> Any:
        (d, h), c = arrays["W1"].shape, arrays["W2"].shape[1]
        net = cls(d, h, c, rng=0)
        for k in PARAMETER_NAMES:
            net.params[k] = arrays[k].copy()
        return net

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        a = case.arrays
        net = self._network(student, a)
        X = a["X"].copy()
        if self.part == "scores":
            scores = net.loss(X)
            return {"scores": scores, "X_after": fingerprint(X)}
        result = net.loss(X, a["y"].copy(), reg=case.config["reg"])
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"loss(X, y, reg) should return the pair (loss, grads), got {type(result).__name__}")
        value, grads = result
        outputs: dict[str, Any] = {"X_after": fingerprint(X)}
        if self.part == "loss":
            outputs["loss"] = value
            return outputs
        if not isinstance(grads, dict):
            keys = ", ".join(PARAMETER_NAMES)
            raise TypeError(f"grads should be a dict with keys {keys}, got {type(grads).__name__}")
        outputs.update({f"d{k}": grads[k] for k in PARAMETER_NAMES if k in grads})
        return outputs

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        a, cfg = case.arrays, case.config
        X, y, reg = a["X"].copy(), a["y"], cfg["reg"]
        ref = self._network(TwoLayerNet, a)
        n, c = X.shape[0], a["W2"].shape[1]
        if self.part == "scores":
            scores = self.expect_array(v, outputs, "scores", (n, c), "the scores loss(X) returns")
            if scores is not None:  # judged on the scale of all scores: entries near 0 differ by round-off
                v.checks.append(compare_scaled("scores", scores, ref.loss(X)))
                recognise(v.checks[-1], _scores_mistakes(ref, X))
        elif self.part == "loss":
            value = self.expect_array(v, outputs, "loss", (), "the loss value loss(X, y, reg) returns")
            self.compare_values(v, "loss value", value, ref.loss(X, y, reg=reg)[0])
            if value is not None and v.checks and not v.checks[-1].passed:
                name, hint = self._loss_hint(float(value), ref, X, y, reg)
                if hint:
                    v.checks[-1].hint, v.checks[-1].mistake = hint, name
        else:
            self._judge_grads(v, outputs, ref, X, y, reg, cfg.get("max_entries"))
        if modified(outputs, "X_after", X):
            v.problems.append("X was modified in place; compute into new arrays instead")
        return v

    def _judge_grads(
        self, v: Verdict, outputs: dict, ref: TwoLayerNet, X, y, reg: float, max_entries: int | None
    ) -> None:
        def f(_: np.ndarray) -> np.ndarray:
            return loss_terms(ref, X, y, reg)

        # Entries of large tensors are sampled with fresh entropy: the cases cross to the
        # student's process, so indices derived from them (or from a fixed seed) could be
        # predicted and computed by finite differences alone.
        sampler = np.random.default_rng()
        known = _grads_mistakes(ref, X, y, reg)
        for k in PARAMETER_NAMES:
            p = ref.params[k]  # the live array: the numerical check perturbs it in place
            grad = self.expect_array(v, outputs, f"d{k}", p.shape, f"grads['{k}']")
            if grad is None:
                continue
            indices = None
            if max_entries is not None and p.size > max_entries:
                flat = np.sort(sampler.choice(p.size, size=max_entries, replace=False))
                indices = [tuple(int(i) for i in np.unravel_index(j, p.shape)) for j in flat]
            numeric = extrapolated_gradient(f, p, None, h=STEP, indices=indices)
            check = compare_scaled(f"dL/d{k}", grad, numeric, indices=indices, batch=X.shape[0])
            if not check.passed and k.startswith("W") and not check.hint:
                check.mistake, check.hint = _reg_hint(grad, numeric, p, reg)
            if not check.mistake:
                recognise(check, known.get(k, []))
            v.checks.append(check)

    def _loss_hint(self, value: float, ref: TwoLayerNet, X, y, reg: float) -> tuple[str, str]:
        """(the mistake's name, its hint) when the loss value is what a known mistake gives, else ("", "")."""
        penalty = reg * float(np.sum(ref.params["W1"] ** 2) + np.sum(ref.params["W2"] ** 2))
        biases = reg * float(np.sum(ref.params["b1"] ** 2) + np.sum(ref.params["b2"] ** 2))
        data = ref.loss(X, y, reg=0.0)[0]
        guesses = [
            (data, "no penalty", "the regularisation term reg * (ΣW1² + ΣW2²) is missing"),
            (data + 0.5 * penalty, "half the penalty", "the penalty is reg * (ΣW1² + ΣW2²), without a factor 1/2"),
            (
                data + penalty + biases,
                "biases regularised",
                "only the weight matrices W1 and W2 are regularised, not the biases",
            ),
            (
                data * X.shape[0] + penalty,
                Mistake.MISSING_MEAN,
                "the data loss should be the mean over the batch, not the sum",
            ),
        ]
        for guess, name, hint in guesses:
            if abs(value - guess) <= 1e-9 * max(abs(guess), 1.0):
                return name, hint
        return "", ""


def _scores_mistakes(ref: TwoLayerNet, X: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """The scores the usual forward mistakes give, as ``recognise`` candidates."""
    W1, b1, W2, b2 = (ref.params[k] for k in PARAMETER_NAMES)
    return [
        (
            "no ReLU",
            "your scores are those of a network without its ReLU: the hidden layer is max(0, X W1 + b1), "
            "and that is what W2 multiplies",
            (X @ W1 + b1) @ W2 + b2,
        ),
        ("b2 forgotten", "your scores are missing the output layer's bias: add b2 to each row", ref.loss(X) - b2),  # type: ignore[operator]
    ]


def _grads_mistakes(ref: TwoLayerNet, X: np.ndarray, y: np.ndarray, reg: float) -> dict[str, list]:
    """Per parameter, the gradients the usual backward mistakes give, as ``recognise`` candidates."""
    W1, b1, W2, b2 = (ref.params[k] for k in PARAMETER_NAMES)
    loss = losses.SoftmaxCrossEntropy()
    loss.forward(np.maximum(X @ W1 + b1, 0.0) @ W2 + b2, y)
    upstream = loss.backward() @ W2.T  # the gradient arriving at the hidden layer's output
    right = ref.loss(X, y, reg=reg)[1]
    mask = (
        "no ReLU mask",
        "the gradient reaching the hidden layer went through the ReLU unchanged: ReLU's derivative is 0 where "
        "its input X W1 + b1 was negative, so the gradient is kept only where that input was positive",
    )
    return {
        "W1": [(*mask, X.T @ upstream + 2.0 * reg * W1)],
        "b1": [(*mask, upstream.sum(axis=0))],
        "W2": [
            (
                "sign error in dW2",
                "dL/dW2's data part (h1ᵀ times the gradient of the scores) has the wrong sign; its penalty part "
                "2 · reg · W2 is right",
                4.0 * reg * W2 - right["W2"],
            )
        ],
    }


def _reg_hint(analytic: np.ndarray, numeric: np.ndarray, W: np.ndarray, reg: float) -> tuple[str, str]:
    """Recognise a wrong or missing regularisation gradient on the checked entries: (its name, its hint)."""
    checked = np.isfinite(numeric)
    a, n, w = analytic[checked], numeric[checked], W[checked]
    for factor, name, hint in [
        (0.0, "no penalty gradient", "the regularisation gradient 2 * reg * W is missing"),
        (1.0, "penalty gradient reg W, not 2 reg W", "the derivative of reg * ΣW² is 2 * reg * W, not reg * W"),
    ]:
        if np.allclose(a, n - (2.0 - factor) * reg * w, rtol=1e-5, atol=1e-10):
            return name, hint
    return "", ""


_STAGES = [
    ("scores", "TwoLayerNet.loss (scores)", _FORWARD_TRAPS),
    ("loss", "TwoLayerNet.loss (loss value)", _FORWARD_TRAPS + _LOSS_TRAPS),
    ("grads", "TwoLayerNet.loss (gradients)", _FORWARD_TRAPS + _LOSS_TRAPS + _BACKWARD_TRAPS),
]
for _part, _title, _traps in _STAGES:
    # The autograder's checking run withholds what it traps (the default): the network's loss,
    # forward and predict, and the building blocks of course.layers and course.losses, forwards
    # included, that a two-layer network is made of. The notebook's demos still use them: they
    # run in the notebook run, with the whole library.
    register(TwoLayerNetExercise(f"mlp.TwoLayerNet.{_part}", _title, _part, _traps))
