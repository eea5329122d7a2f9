"""Numerical differentiation earns nothing: what case sizes protect, what the checking run
detects (course.exercises.numerical), and that no correct analytic answer is ever flagged.

Two corpora drive the tests: correct answers written in many styles (every one must pass
every visible case with no flag) and numerical schemes (every one must be flagged on every
case it gets through). Dense exercises, whose large cases no scheme can finish under the CPU
budget, are covered by the arithmetic test at the end (no timing: pass counts and sizes).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import nbformat
import numpy as np
import pytest

import course.activations as A
import course.graph as G
import course.layers as L
import course.losses as F
from course.exercises import get
from course.exercises import numerical as N
from course.exercises.base import Verdict, judge_case, run_case
from course.exercises.gradients import Swish


def verdicts(name: str, student, *, hidden: bool = False, small_only: bool = False) -> list[Verdict]:
    """Every case of exercise ``name`` through run_case and judge_case, as the grader does."""
    exercise = get(name)
    cases = exercise.cases(np.random.default_rng(7), hidden)
    if small_only:
        cases = cases[:1]
    results = []
    for case in cases:
        encoded, problems = run_case(exercise, student, case)
        results.append(judge_case(exercise, case, encoded, problems))
    return results


# ----------------------------------------------------------------------------------------
# Correct answers in many styles
# ----------------------------------------------------------------------------------------


def _own_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_grad_helper(x):
    s = _own_sigmoid(x)
    return s * (1.0 - s)


def sigmoid_grad_library_forward(x):
    s = A.sigmoid(x)  # the forward is no answer: calling it at x itself is fine
    return s - s * s


def sigmoid_grad_stable_where(x):
    e = np.exp(-np.abs(x))
    s = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return s * (1.0 - s)


def sigmoid_grad_out(x):
    s = A.sigmoid(x)
    out = np.empty_like(s)
    np.multiply(s, 1.0 - s, out=out)
    return out


def sigmoid_grad_loops(x):
    g = np.empty(x.shape)
    for ix in np.ndindex(x.shape):
        s = 1.0 / (1.0 + math.exp(-float(x[ix])))
        g[ix] = s * (1.0 - s)
    return g


def tanh_grad_cosh(x):
    return 1.0 / np.cosh(x) ** 2


def tanh_grad_einsum(x):
    t = np.tanh(x)
    return 1.0 - np.einsum("...,...->...", t, t)


def relu_grad_astype(x):
    return (x > 0).astype(np.float64)


def relu_grad_heaviside(x):
    return np.heaviside(x, 0.0)


def elu_grad_minimum(x, alpha=1.0):
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


def leaky_relu_grad_where(x, alpha=0.1):
    return np.where(x > 0, 1.0, alpha)


class SigmoidRecomputed(L.Sigmoid):
    """Recomputes its output with the own forward at the saved input: no perturbation."""

    def forward(self, x):
        self.x = x
        return super().forward(x)

    def backward(self, grad_out):
        y = self.forward(self.x)
        return grad_out * y * (1.0 - y)


class SigmoidClipped(L.Sigmoid):
    def backward(self, grad_out):
        y = np.clip(self.y, 1e-12, 1 - 1e-12)
        return np.asarray(grad_out) * (y - y**2)


class TanhTransposed(L.Tanh):
    """A non-contiguous result (the transpose of a transpose)."""

    def backward(self, grad_out):
        return (grad_out.T * (1.0 - self.y.T**2)).T


class ReLUCachedMask(L.ReLU):
    def forward(self, x):
        self.mask = np.asarray(x) > 0
        return super().forward(x)

    def backward(self, grad_out):
        return np.where(self.mask, grad_out, 0.0)


class ReLUInPlace(L.ReLU):
    def backward(self, grad_out):
        g = np.array(grad_out, copy=True)
        g[self.x <= 0] = 0.0
        return g


class SwishHelper(Swish):
    def backward(self, grad_out):
        x, s = self.x, self.s
        slope = _slope(s)
        self.beta.grad += np.einsum("nd,nd->d", grad_out * x, x * slope)
        return grad_out * (s + self.beta.data * x * slope)


def _slope(s):
    return s * (1.0 - s)


class SwishRecompute(Swish):
    def backward(self, grad_out):
        s = A.sigmoid(self.beta.data * self.x)  # the own sigmoid again, at the same point
        slope = s * (1 - s)
        self.beta.grad += (grad_out * self.x**2 * slope).sum(axis=0)
        return grad_out * (s + self.beta.data * self.x * slope)


class CrossEntropyShifted(F.SoftmaxCrossEntropy):
    def backward(self):
        n = self.probs.shape[0]
        grad = self.probs.copy()
        grad[np.arange(n), self.labels] -= 1.0
        return grad / n


class CrossEntropyLogSumExp(F.SoftmaxCrossEntropy):
    def forward(self, scores, labels):
        self.scores = np.asarray(scores)
        return super().forward(scores, labels)

    def backward(self):
        z = self.scores - self.scores.max(axis=1, keepdims=True)
        p = np.exp(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))
        onehot = np.zeros_like(p)
        onehot[np.arange(len(self.labels)), self.labels] = 1.0
        return (p - onehot) / len(self.labels)


class CrossEntropyHelperShift(F.SoftmaxCrossEntropy):
    """The shifted scores handed to a helper: x − max(x) is no step."""

    def forward(self, scores, labels):
        self.scores = np.asarray(scores)
        return super().forward(scores, labels)

    def backward(self):
        p = _softmax_of_shifted(self.scores - self.scores.max(axis=1, keepdims=True))
        p[np.arange(len(self.labels)), self.labels] -= 1.0
        return p / len(self.labels)


def _softmax_of_shifted(z):
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class BCEWithEps(F.BinaryCrossEntropy):
    def forward(self, p, y):
        self.p_in, self.y_in = np.asarray(p), np.asarray(y)
        return super().forward(p, y)

    def backward(self):
        p, y = self.p_in, self.y_in
        return (p - y) / (p * (1.0 - p) + 1e-12) / p.size


class MSEHalf(F.MSE):
    def forward(self, pred, target):
        self.d = np.asarray(pred) - np.asarray(target)
        return super().forward(pred, target)

    def backward(self):
        return self.d / self.d.shape[0]


class L2Helper(F.L2):
    def grad(self, w):
        return _twice(self.strength, w)


def _twice(strength, w):
    return 2.0 * strength * w


class L1Sign(F.L1):
    def grad(self, w):
        return self.strength * np.sign(w)


class MulGateRight(G.MulGate):
    def backward(self, dz):
        return [self.y * dz, self.x * dz]


class MaxGateRight(G.MaxGate):
    def backward(self, dz):
        return [dz, 0.0] if self.x >= self.y else [0.0, dz]


class ValueMath(G.Value):
    """The notebook's style: closures, math on floats, the library's sigmoid on a float."""

    @staticmethod
    def _lift(other):
        return other if isinstance(other, G.Value) else ValueMath(other)

    def __add__(self, other):
        other = self._lift(other)
        out = ValueMath(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._lift(other)
        out = ValueMath(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other):
        other = self._lift(other)
        out = ValueMath(self.data**other.data, (self, other), "**")

        def _backward():
            self.grad += other.data * self.data ** (other.data - 1) * out.grad

        out._backward = _backward
        return out

    def exp(self):
        out = ValueMath(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        out = ValueMath(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1.0 - math.tanh(self.data) ** 2) * out.grad  # recomputed at the same point

        out._backward = _backward
        return out

    def sigmoid(self):
        out = ValueMath(A.sigmoid(self.data), (self,), "σ")

        def _backward():
            s = A.sigmoid(self.data)
            self.grad += s * (1.0 - s) * out.grad

        out._backward = _backward
        return out


class ValueRecursive(G.Value):
    """Value.backward by a recursive topological sort."""

    def backward(self):
        order, seen = [], set()

        def visit(node):
            if node not in seen:
                seen.add(node)
                for child in node._prev:
                    visit(child)
                order.append(node)

        import sys

        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20_000))
        try:
            visit(self)
        finally:
            sys.setrecursionlimit(limit)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


HONEST = [
    ("neurons.sigmoid_grad", sigmoid_grad_helper),
    ("neurons.sigmoid_grad", sigmoid_grad_library_forward),
    ("neurons.sigmoid_grad", sigmoid_grad_stable_where),
    ("neurons.sigmoid_grad", sigmoid_grad_out),
    ("neurons.sigmoid_grad", sigmoid_grad_loops),
    ("neurons.tanh_grad", tanh_grad_cosh),
    ("neurons.tanh_grad", tanh_grad_einsum),
    ("neurons.relu_grad", relu_grad_astype),
    ("neurons.relu_grad", relu_grad_heaviside),
    ("neurons.elu_grad", elu_grad_minimum),
    ("neurons.leaky_relu_grad", leaky_relu_grad_where),
    ("layers.Sigmoid.backward", SigmoidRecomputed),
    ("layers.Sigmoid.backward", SigmoidClipped),
    ("layers.Tanh.backward", TanhTransposed),
    ("layers.ReLU.backward", ReLUCachedMask),
    ("layers.ReLU.backward", ReLUInPlace),
    ("gradients.Swish.backward", SwishHelper),
    ("gradients.Swish.backward", SwishRecompute),
    ("losses.SoftmaxCrossEntropy.backward", CrossEntropyShifted),
    ("losses.SoftmaxCrossEntropy.backward", CrossEntropyLogSumExp),
    ("losses.SoftmaxCrossEntropy.backward", CrossEntropyHelperShift),
    ("losses.BinaryCrossEntropy.backward", BCEWithEps),
    ("losses.MSE.backward", MSEHalf),
    ("losses.L2.grad", L2Helper),
    ("losses.L1.grad", L1Sign),
    ("graphs.MulGate.backward", MulGateRight),
    ("graphs.MaxGate.backward", MaxGateRight),
    ("graphs.Value.ops", ValueMath),
    ("graphs.Value.backward", ValueRecursive),
]


@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "hidden"])
@pytest.mark.parametrize(("name", "student"), HONEST, ids=[f"{n}-{getattr(s, '__name__', s)}" for n, s in HONEST])
def test_a_correct_answer_in_any_style_passes_without_a_flag(name, student, hidden):
    results = verdicts(name, student, hidden=hidden)
    assert all(v.passed for v in results), "\n".join(v.message() for v in results if not v.passed)
    assert not any(v.flags for v in results)


# ----------------------------------------------------------------------------------------
# Numerical schemes
# ----------------------------------------------------------------------------------------


def centred(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def sigmoid_grad_centred_library(x):
    return centred(A.sigmoid, x, 1e-5)


def sigmoid_grad_forward_lambda(x):
    f = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    h = 1e-8
    return (f(x + h) - f(x)) / h


def sigmoid_grad_complex_step(x):
    h = 1e-20
    return np.imag(1.0 / (1.0 + np.exp(-(x + 1j * h)))) / h


def tanh_grad_complex_attribute(x):
    h = 1e-30
    return np.tanh(x + 1j * h).imag / h


def tanh_grad_ufunc_quotient(x):
    h = 1e-4
    return (np.tanh(x + h) - np.tanh(x - h)) / (2 * h)


def relu_grad_own_forward(x):
    def relu(z):
        return np.maximum(z, 0.0)

    return (relu(x + 1e-3) - relu(x)) / 1e-3


def elu_grad_centred_library(x, alpha=1.0):
    return centred(lambda z: A.elu(z, alpha), x, 1e-6)


class SigmoidFromLogit(L.Sigmoid):
    """x recovered from the saved output, then centred differences of the library forward."""

    def backward(self, grad_out):
        x = np.log(self.y / (1.0 - self.y))
        return grad_out * centred(A.sigmoid, x, 1e-5)


class TanhOwnForward(L.Tanh):
    def forward(self, x):
        self.x = x
        return super().forward(x)

    def backward(self, grad_out):
        h = 1e-6
        return grad_out * (self.forward(self.x + h) - self.forward(self.x - h)) / (2 * h)


class TanhMultiplyByInverse(L.Tanh):
    def forward(self, x):
        self.x = x
        return super().forward(x)

    def backward(self, grad_out):
        h = 1e-5
        return grad_out * (np.tanh(self.x + h) - np.tanh(self.x - h)) * (1 / (2 * h))


class ReLUComplex(L.ReLU):
    def backward(self, grad_out):
        h = 1e-20
        z = self.x + 1j * h
        return grad_out * np.imag(np.where(z.real > 0, z, 0)) / h


class SwishNumerical(Swish):
    def backward(self, grad_out):
        x, h = self.x, 1e-5
        beta = self.beta.data.copy()
        dx = (self.forward(x + h) - self.forward(x - h)) / (2 * h)
        self.beta.data[...] = beta + h
        plus = self.forward(x)
        self.beta.data[...] = beta - h
        minus = self.forward(x)
        self.beta.data[...] = beta
        self.forward(x)
        self.beta.grad += (grad_out * (plus - minus) / (2 * h)).sum(axis=0)
        return grad_out * dx


class SwishNumericalBeta(Swish):
    """dL/dx by the formula, dL/dβ by moving the layer's own β in place (one pass: each β_d
    reaches only column d)."""

    def backward(self, grad_out):
        x, s, beta, h = self.x, self.s, self.beta.data.copy(), 1e-6
        self.beta.data[...] = beta + h
        plus = self.forward(x)
        self.beta.data[...] = beta
        base = self.forward(x)
        self.beta.grad += (grad_out * (plus - base) / h).sum(axis=0)
        return grad_out * (s + beta * x * s * (1 - s))


class LinearMovesItsInput(L.Linear):
    """Moves the saved input in place and calls the forward on it again."""

    def backward(self, grad_out):
        x, base, h = self.x, self.x @ self.W.data + self.b.data, 1e-5
        dx = np.empty_like(x)
        for d in range(x.shape[1]):
            x[:, d] += h
            dx[:, d] = ((self.forward(x) - base) * grad_out).sum(axis=1) / h
            x[:, d] -= h
        self.forward(x)
        self.W.grad += x.T @ grad_out
        self.b.grad += grad_out.sum(axis=0)
        return dx


class MSENumerical(F.MSE):
    def forward(self, pred, target):
        self.p, self.t = np.asarray(pred), np.asarray(target)
        return super().forward(pred, target)

    def backward(self):
        def terms(p):  # the per-entry terms whose batch mean is the loss
            return 0.5 * (p - self.t) ** 2 / self.p.shape[0]

        return centred(terms, self.p, 1e-3)


class BCEComplex(F.BinaryCrossEntropy):
    def forward(self, p, y):
        self.p, self.t = np.asarray(p), np.asarray(y)
        return super().forward(p, y)

    def backward(self):
        h = 1e-20
        z = self.p + 1j * h
        terms = -(self.t * np.log(z) + (1 - self.t) * np.log(1 - z)) / self.p.size
        return np.imag(terms) / h


class L2Numerical(F.L2):
    def grad(self, w):
        per_weight = lambda v: self.strength * v**2  # noqa: E731
        return (per_weight(w + 1e-4) - per_weight(w - 1e-4)) / 2e-4


class CrossEntropyPerClass(F.SoftmaxCrossEntropy):
    """Class j of every example at once: one pass per class (a per-example loss)."""

    def forward(self, scores, labels):
        self.s, self.lab = np.asarray(scores), np.asarray(labels)
        return super().forward(scores, labels)

    def backward(self):
        rows = np.arange(len(self.lab))

        def per_example(s):
            return -A.log_softmax(s, axis=1)[rows, self.lab] / len(self.lab)

        grad = np.zeros_like(self.s)
        base = per_example(self.s)
        for j in range(self.s.shape[1]):
            moved = self.s.copy()
            moved[:, j] += 1e-6
            grad[:, j] = (per_example(moved) - base) / 1e-6
        return grad


class MulGateLambda(G.MulGate):
    def backward(self, dz):
        f = lambda a, b: a * b  # noqa: E731
        h = 1e-5
        return [
            dz * (f(self.x + h, self.y) - f(self.x - h, self.y)) / (2 * h),
            dz * (f(self.x, self.y + h) - f(self.x, self.y - h)) / (2 * h),
        ]


class MulGateOwnForward(G.MulGate):
    def backward(self, dz):
        h = 1e-6
        x, y = self.x, self.y
        dx = (self.forward(x + h, y) - self.forward(x, y)) / h
        dy = (self.forward(x, y + h) - self.forward(x, y)) / h
        self.forward(x, y)
        return [dz * dx, dz * dy]


class ValueNumericalSigmoid(ValueMath):
    def sigmoid(self):
        out = ValueNumericalSigmoid(A.sigmoid(self.data), (self,), "σ")

        def _backward():
            h = 1e-5
            self.grad += (A.sigmoid(self.data + h) - A.sigmoid(self.data - h)) / (2 * h) * out.grad

        out._backward = _backward
        return out

    @staticmethod
    def _lift(other):
        return other if isinstance(other, G.Value) else ValueNumericalSigmoid(other)


class ValueComplexTanh(ValueMath):
    def tanh(self):
        import cmath

        out = ValueComplexTanh(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += cmath.tanh(complex(self.data, 1e-20)).imag / 1e-20 * out.grad

        out._backward = _backward
        return out

    @staticmethod
    def _lift(other):
        return other if isinstance(other, G.Value) else ValueComplexTanh(other)


class LinearColoured(L.Linear):
    """One pass per column of x, one per row of W, one for b, through the own forward."""

    def forward(self, x):
        self.x_in = np.asarray(x)
        return super().forward(x)

    def backward(self, grad_out):
        x, W, b = self.x_in, self.W.data, self.b.data

        def f(x_, W_, b_):
            return x_ @ W_ + b_

        base = f(x, W, b)
        h = 1.0  # exact: the layer is linear in each argument
        dx = np.empty_like(x)
        for d in range(x.shape[1]):
            moved = x.copy()
            moved[:, d] += h
            dx[:, d] = ((f(moved, W, b) - base) * grad_out).sum(axis=1) / h
        for d in range(W.shape[0]):
            moved = W.copy()
            moved[d] += h
            self.W.grad[d] += ((f(x, moved, b) - base) * grad_out).sum(axis=0) / h
        self.b.grad += ((f(x, W, b + h) - base) * grad_out).sum(axis=0) / h
        return dx


SCHEMES = [
    ("neurons.sigmoid_grad", sigmoid_grad_centred_library),
    ("neurons.sigmoid_grad", sigmoid_grad_forward_lambda),
    ("neurons.sigmoid_grad", sigmoid_grad_complex_step),
    ("neurons.tanh_grad", tanh_grad_complex_attribute),
    ("neurons.tanh_grad", tanh_grad_ufunc_quotient),
    ("neurons.relu_grad", relu_grad_own_forward),
    ("neurons.elu_grad", elu_grad_centred_library),
    ("layers.Sigmoid.backward", SigmoidFromLogit),
    ("layers.Tanh.backward", TanhOwnForward),
    ("layers.Tanh.backward", TanhMultiplyByInverse),
    ("layers.ReLU.backward", ReLUComplex),
    ("gradients.Swish.backward", SwishNumerical),
    ("gradients.Swish.backward", SwishNumericalBeta),
    ("losses.MSE.backward", MSENumerical),
    ("losses.BinaryCrossEntropy.backward", BCEComplex),
    ("losses.L2.grad", L2Numerical),
    ("graphs.MulGate.backward", MulGateLambda),
    ("graphs.MulGate.backward", MulGateOwnForward),
    ("graphs.Value.ops", ValueNumericalSigmoid),
    ("graphs.Value.ops", ValueComplexTanh),
]


@pytest.mark.parametrize(("name", "student"), SCHEMES, ids=[f"{n}-{getattr(s, '__name__', s)}" for n, s in SCHEMES])
def test_a_numerical_scheme_is_flagged_and_earns_nothing(name, student):
    results = verdicts(name, student)
    only = {ValueNumericalSigmoid: "sigmoid", ValueComplexTanh: "tanh"}.get(student, "")
    relevant = [v for v in results if only in v.case]  # a Value scheme: the graphs of its operation
    assert relevant
    for v in relevant:
        assert not v.passed, v.message()
        assert v.flags and v.flags[0].startswith(f"computed numerically: {name} ("), v.flags
        assert "computed numerically" in v.message() and "good faith" in v.message()


@pytest.mark.parametrize(
    ("name", "student"),
    [
        ("layers.Linear.backward", LinearColoured),
        ("layers.Linear.backward", LinearMovesItsInput),
        ("losses.SoftmaxCrossEntropy.backward", CrossEntropyPerClass),
    ],
)
def test_a_coloured_scheme_is_flagged_on_the_small_case(name, student):
    """The large case is out of its CPU budget (see the arithmetic below); the small one is
    flagged, so the check earns nothing either way."""
    (v,) = verdicts(name, student, small_only=True)
    assert not v.passed and v.flags, v.message()


def test_numerical_gradient_itself_is_not_watched():
    """In the gradient-checking assignment differences are the exercise."""

    def own_numerical_gradient(f, x, grad_out=None, h=1e-5):
        weight = 1.0 if grad_out is None else grad_out
        grad = np.zeros_like(x)
        for ix in np.ndindex(x.shape):
            old = x[ix]
            x[ix] = old + h
            plus = np.sum(np.asarray(f(x)) * weight)
            x[ix] = old - h
            minus = np.sum(np.asarray(f(x)) * weight)
            x[ix] = old
            grad[ix] = (plus - minus) / (2 * h)
        return grad

    results = verdicts("gradients.numerical_gradient", own_numerical_gradient)
    assert all(v.passed and not v.flags for v in results), "\n".join(v.message() for v in results)


# ----------------------------------------------------------------------------------------
# The detector's rules, one at a time
# ----------------------------------------------------------------------------------------


def test_a_stability_epsilon_is_not_a_step():
    detector = N.Detector({"x": np.linspace(-2, 2, 12).reshape(3, 4)})
    tracked = N.tracked_arrays({"x": np.linspace(-2, 2, 12).reshape(3, 4)})["x"]
    with N.watching(detector):
        y = np.log(np.abs(tracked) + 1e-12) - (tracked - tracked.max()) / 3.0
        _ = np.clip(tracked, 1e-12, 1 - 1e-12) * y
    assert detector.findings == []
    with N.watching(detector):
        _ = (np.sin(tracked + 1e-3) - np.sin(tracked)) / 1e-3
    assert len(detector.findings) == 1 and "1e-03" in detector.findings[0]


def test_the_flag_is_read_back_from_the_problem_only():
    text = N.problem("a lambda evaluated at perturbed copies of x")
    assert N.flag_of("layers.Tanh.backward", text) == (
        "computed numerically: layers.Tanh.backward (a lambda evaluated at perturbed copies of x)"
    )
    assert N.flag_of("layers.Tanh.backward", "raised ValueError: computed numerically (x)") is None


def test_tracked_inputs_behave_like_arrays():
    a = N.tracked_arrays({"x": np.arange(6.0).reshape(2, 3), "labels": np.arange(2)})
    x = a["x"]
    assert isinstance(x, np.ndarray) and x.dtype == np.float64 and a["labels"].dtype.kind == "i"
    out = np.empty((2, 3))
    np.add(x, 1.0, out=out)
    assert type(out) is np.ndarray and np.array_equal(out, np.arange(6.0).reshape(2, 3) + 1)
    plain = np.arange(6.0).reshape(2, 3)
    assert float(x.sum()) == 15.0 and np.array_equal(x.T @ x, plain.T @ plain)
    assert isinstance(x[0], N.Tracked) and x[0]._case_input == "x"  # a row is the input
    assert (x + 1.0)._case_input is None  # a result is not
    assert type(np.array(x)) is np.ndarray  # what crosses to the grader is a plain array


# ----------------------------------------------------------------------------------------
# float32
# ----------------------------------------------------------------------------------------


class TanhFloat32(L.Tanh):
    def backward(self, grad_out):
        return (grad_out * (1.0 - self.y**2)).astype(np.float32)


class TanhThroughFloat32(L.Tanh):
    def backward(self, grad_out):
        y = self.y.astype(np.float32)
        return (grad_out.astype(np.float32) * (1 - y * y)).astype(np.float64)


@pytest.mark.parametrize("student", [TanhFloat32, TanhThroughFloat32])
def test_a_float32_answer_is_told_so(student):
    results = verdicts("layers.Tanh.backward", student)
    assert not all(v.passed for v in results)
    messages = "\n".join(v.message() for v in results if not v.passed)
    assert "float32 arithmetic" in messages and "float64" in messages
    assert not any(v.flags for v in results)


def test_a_plain_mistake_gets_no_float32_hint():
    class Wrong(L.Tanh):
        def backward(self, grad_out):
            return grad_out * (1.0 - self.y)

    messages = "\n".join(v.message() for v in verdicts("layers.Tanh.backward", Wrong))
    assert "float32" not in messages


# ----------------------------------------------------------------------------------------
# Size: the arithmetic of benchmarks/README.md, as pass counts (no timing)
# ----------------------------------------------------------------------------------------

#: Multiply-adds per CPU second a forward pass reaches at best on this machine: single-threaded
#: BLAS (as in the checking run) measured 13e9 to 22e9 on these shapes (benchmarks/README.md).
FASTEST = 2.5e10
BUDGET = 20.0


def _large(name: str):
    return get(name).cases(np.random.default_rng(0), False)[-1]


@pytest.mark.parametrize("hidden", [False, True])
def test_dense_large_cases_need_more_than_five_budgets_of_coloured_passes(hidden):
    """Fewest passes a colouring of each Jacobian needs times the multiply-adds per pass."""
    rng = np.random.default_rng(1)
    linear = get("layers.Linear.backward").cases(rng, hidden)[-1]
    n, d = linear.config["input_shape"]
    m = linear.config["args"][1]
    assert (2 * d + 2) * n * d * m / FASTEST > 5 * BUDGET
    maxout = get("neurons.Maxout.backward").cases(rng, hidden)[-1]
    n, d = maxout.config["input_shape"]
    m, k = maxout.config["args"][1], maxout.config["kwargs"]["k"]
    assert ((k + 1) * d + k + 1) * n * d * m * k / FASTEST > 5 * BUDGET
    mlp = get("mlp.TwoLayerNet.grads").cases(rng, hidden)[-1]
    n, d, h, _ = mlp.config["sizes"]
    assert (d + 1) * n * d * h / FASTEST > 5 * BUDGET
    loss = get("losses.SoftmaxCrossEntropy.backward").cases(rng, hidden)[-1]
    n, c = loss.config["shape"]
    assert (c + 1) * n * c * 2.5e-9 > 5 * BUDGET  # ~2.5 ns per entry of the cheapest (SVM) forward


def test_visible_large_cases_stay_small_in_memory():
    for name in [
        "layers.Linear.backward",
        "neurons.Maxout.backward",
        "mlp.TwoLayerNet.grads",
        "losses.SoftmaxCrossEntropy.backward",
    ]:
        case = _large(name)
        assert sum(a.nbytes for a in case.arrays.values()) < 64 * 2**20, name


# ----------------------------------------------------------------------------------------
# Through the real grader: a notebook graded in the sandbox
# ----------------------------------------------------------------------------------------


def _sigmoid_notebook(body: str) -> nbformat.NotebookNode:
    def cell(source, **meta):
        c = nbformat.v4.new_code_cell(source)
        if meta:
            c.metadata["nbgrader"] = {"schema_version": 3, **meta}
        return c

    cells = [
        cell("import numpy as np\nimport course\nfrom course.exercises import check"),
        cell(
            f"class Sigmoid(course.layers.Sigmoid):\n    def backward(self, grad_out):\n{body}",
            grade=False,
            solution=True,
            locked=False,
            grade_id="sigmoid",
        ),
        cell(
            '"""Check Sigmoid.backward."""\ncheck("layers.Sigmoid.backward", Sigmoid)',
            grade=True,
            solution=False,
            locked=True,
            points=1,
            grade_id="test_sigmoid",
        ),
        cell(
            '"""Hidden."""\n### BEGIN HIDDEN TESTS\ncheck("layers.Sigmoid.backward", Sigmoid, hidden=True)\n'
            "### END HIDDEN TESTS",
            grade=True,
            solution=False,
            locked=True,
            points=2,
            grade_id="hidden_sigmoid",
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


GRADED = {
    "analytic": ("        return grad_out * self.y * (1.0 - self.y)", True),
    "analytic, own forward again": (
        "        y = course.activations.sigmoid(np.log(self.y / (1 - self.y)))\n        return grad_out * y * (1 - y)",
        True,
    ),
    "centred, library forward": (
        "        x = np.log(self.y / (1 - self.y))\n"
        "        f = course.activations.sigmoid\n"
        "        return grad_out * (f(x + 1e-5) - f(x - 1e-5)) / 2e-5",
        False,
    ),
    "complex step": (
        "        x = np.log(self.y / (1 - self.y))\n"
        "        return grad_out * np.imag(1 / (1 + np.exp(-(x + 1e-20j)))) / 1e-20",
        False,
    ),
}


@pytest.mark.slow
@pytest.mark.skipif(os.getuid() != 0, reason="grading runs student code in the sandbox as root")
@pytest.mark.parametrize("style", list(GRADED))
def test_the_grader_flags_numerical_answers_and_keeps_analytic_ones(style, tmp_path):
    from autograder import sandbox
    from autograder.verdicts import engine

    if not sandbox.bubblewrap_available():
        pytest.skip("bubblewrap is not installed")
    body, correct = GRADED[style]
    workdir = tmp_path / "work"
    workdir.mkdir()
    os.chmod(workdir, 0o755)
    run = engine.grade(_sigmoid_notebook(body), workdir=workdir, cell_timeout=20, cpu_seconds=10)
    assert run.status == "ok"
    passed = {g: v.passed for g, v in run.verdicts.items()}
    assert passed == {"test_sigmoid": correct, "hidden_sigmoid": correct}
    messages = "\n".join(m for v in run.verdicts.values() for m in v.messages)
    assert ("computed numerically" in messages) == (not correct), messages


# ----------------------------------------------------------------------------------------
# The activation layers' judge: dL/dx to machine precision (trusted, no detector involved)
# ----------------------------------------------------------------------------------------


class TanhFromArctanh(L.Tanh):
    """x recovered from the saved output, then np.tanh differenced: no Python call, no
    tracked array, so the detector sees nothing; the judge's exactness check does."""

    def backward(self, grad_out):
        x, h = np.arctanh(self.y), 1e-6
        return grad_out * (np.tanh(x + h) - np.tanh(x - h)) / (2 * h)


class ReLUByDifferences(L.ReLU):
    def backward(self, grad_out):
        x, h = np.asarray(self.x), 1e-4
        return grad_out * (np.maximum(x + h, 0) - np.maximum(x - h, 0)) / (2 * h)


class SigmoidFourPoints(L.Sigmoid):
    """A fourth-order stencil, error O(h⁴), inline: still far above round-off."""

    def backward(self, grad_out):
        y = self.y
        x, h = np.log(y / (1 - y)), 1e-3
        p1, m1 = 1 / (1 + np.exp(-(x + h))), 1 / (1 + np.exp(-(x - h)))
        p2, m2 = 1 / (1 + np.exp(-(x + 2 * h))), 1 / (1 + np.exp(-(x - 2 * h)))
        return grad_out * (8 * (p1 - m1) - (p2 - m2)) / (12 * h)


@pytest.mark.parametrize(
    ("name", "student"),
    [
        ("layers.Tanh.backward", TanhFromArctanh),
        ("layers.ReLU.backward", ReLUByDifferences),
        ("layers.Sigmoid.backward", SigmoidFourPoints),
    ],
)
def test_a_difference_quotient_the_detector_misses_fails_the_exactness_check(name, student):
    results = verdicts(name, student)
    assert not all(v.passed for v in results)  # the check cell earns nothing
    large = results[-1]
    assert not large.passed and "to machine precision" in large.message()
    assert "difference quotient" in large.message()


@pytest.mark.parametrize(
    "notebook", ["01_neurons/neurons", "03_layers/layers", "04_losses/losses", "05_gradcheck/gradcheck"]
)
def test_the_instructors_own_answers_are_never_flagged(notebook):
    """The solutions, on many draws of every watched exercise's small cases (hidden ones too):
    a mask that zeroes a small entry (Maxout's with a batch of one), a sigmoid of a logit near
    its target, numpy's helpers handed the inputs, must not look like a difference quotient."""
    import nbformat

    from course.exercises import REGISTRY
    from course.exercises.base import run_case

    root = Path(__file__).resolve().parent.parent
    nb = nbformat.read(str(root / "solutions" / f"{notebook}.ipynb"), as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        imports = cell.source.lstrip().startswith(("import", "from")) and "get_ipython()" not in cell.source
        if cell.cell_type == "code" and (meta.get("solution") or imports):  # not the figure set-up
            exec(cell.source, namespace)
    checked = 0
    for name, exercise in REGISTRY.items():
        symbol = name.split(".")[1]
        if not exercise.watch_numerical or symbol not in namespace or not callable(namespace[symbol]):
            continue
        for seed in range(25):
            for hidden in (False, True):
                for case in exercise.cases(np.random.default_rng(seed), hidden):
                    if "large" in case.label:
                        continue
                    problems = run_case(exercise, namespace[symbol], case)[1]
                    assert not any("computed numerically" in p for p in problems), (name, seed, case.label, problems)
                    checked += 1
    assert checked > 50


def test_an_all_zero_gradient_is_exact():
    """A ReLU whose inputs are all negative has dL/dx = 0 everywhere: the exactness check's
    relative error is 0 / 0 there, which must count as exact (it failed correct answers on
    hidden cases of shape (2, 1) now and then)."""
    exercise = get("layers.ReLU.backward")
    case = exercise.cases(np.random.default_rng(3), True)[0]
    case.arrays["x"] = -np.abs(case.arrays["x"]) - 0.5
    honest = type("ReLUHonest", (L.ReLU,), {"backward": lambda self, g: g * (self.x > 0)})
    encoded, problems = run_case(exercise, honest, case)
    verdict = judge_case(exercise, case, encoded, problems)
    assert verdict.passed, verdict.message()
    assert any("machine precision" in c.name for c in verdict.checks)
    wrong = type("ReLUWrong", (L.ReLU,), {"backward": lambda self, g: g * (self.x > 0) + 1e-9})
    encoded, problems = run_case(exercise, wrong, case)
    assert not judge_case(exercise, case, encoded, problems).passed
