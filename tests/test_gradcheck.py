"""Tests for course.gradcheck: centred differences on functions whose gradient is known by
hand, relative_error's properties, and check_layer / check_loss catching planted bugs and
naming them the way a student needs to hear it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course.activations import sigmoid, sigmoid_grad
from course.gradcheck import (
    GradCheckError,
    check_elementwise,
    check_layer,
    check_loss,
    diagnose,
    numerical_gradient,
    relative_error,
)
from course.layers import Linear, LinearSigmoid, ReLU, Sequential, Tanh
from course.losses import MSE

# -- numerical_gradient -------------------------------------------------------------------


def test_numerical_gradient_of_a_quadratic_form(rng, assert_gradients_match):
    """Check ∇(xᵀAx) = (A + Aᵀ)x for a non-symmetric A (a forward difference fails this)."""
    A = rng.normal(size=(4, 4))
    x = rng.normal(size=4)
    numeric = numerical_gradient(lambda v: v @ A @ v, x)
    assert_gradients_match(numeric, (A + A.T) @ x, "∇ xᵀAx")


def test_numerical_gradient_of_sin_with_and_without_grad_out(rng, assert_gradients_match):
    """Check sum(sin(x)) gives cos(x), and sum(sin(x) * G) gives G cos(x), on a (2, 3) array."""
    x = rng.uniform(-1.2, 1.2, (2, 3))  # cos stays above 0.36: no tiny entries
    G = rng.uniform(0.5, 2.0, (2, 3)) * rng.choice([-1.0, 1.0], (2, 3))
    assert_gradients_match(numerical_gradient(np.sin, x), np.cos(x), "d sum(sin x)/dx")
    assert_gradients_match(numerical_gradient(np.sin, x, G), G * np.cos(x), "d sum(G sin x)/dx")


def test_numerical_gradient_sees_a_function_that_reads_x_by_reference(assert_gradients_match):
    """Check the documented contract: x is perturbed in place, so a closure over it works."""
    w = np.array([1.5, -2.0])
    numeric = numerical_gradient(lambda _: float(np.sum(w**3)), w)
    assert_gradients_match(numeric, 3 * np.array([1.5, -2.0]) ** 2, "d Σw³/dw")


# Values for which x + h - h != x in float64: restoring by arithmetic would change them.
AWKWARD = np.array([0.1, 1 / 3, 1e10, 1e-20, -7.77, 2.0 / 3.0])


def test_x_is_restored_exactly_afterwards():
    """Check x is the same object with bit-identical values after the gradient is computed."""
    x = AWKWARD.copy()
    numerical_gradient(lambda v: np.sum(np.sin(v)), x)
    np.testing.assert_array_equal(x, AWKWARD)


def test_x_is_restored_exactly_when_f_raises():
    """Check that an exception in the middle of the perturbations still leaves x untouched."""
    x = AWKWARD.copy()
    calls = 0

    def f(v):
        nonlocal calls
        calls += 1
        if calls == 4:  # on x[1] + h, after x[0] has been perturbed and restored
            raise ZeroDivisionError("boom")
        return float(np.sum(v))

    with pytest.raises(ZeroDivisionError):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, AWKWARD)


@pytest.mark.parametrize(
    "x",
    [np.ones(3, dtype=np.float32), np.ones(3, dtype=np.int64), [1.0, 2.0, 3.0]],
    ids=["float32", "int64", "list"],
)
def test_numerical_gradient_rejects_anything_but_a_float64_array(x):
    """Check TypeError for float32 (too coarse for h = 1e-5), ints and plain lists."""
    with pytest.raises(TypeError, match="float64|numpy array"):
        numerical_gradient(np.sum, x)


def test_numerical_gradient_checks_h_and_grad_out_shape():
    """Check h <= 0 and a grad_out that does not match f(x) are refused."""
    with pytest.raises(ValueError, match="h"):
        numerical_gradient(np.sum, np.ones(2), h=0.0)
    with pytest.raises(ValueError, match="grad_out"):
        numerical_gradient(lambda v: v * 2, np.ones(3), grad_out=np.ones(2))


def test_numerical_gradient_on_selected_indices_leaves_the_rest_nan():
    """Check indices= computes only those entries (used to sample large tensors)."""
    x = np.arange(6.0).reshape(2, 3)
    numeric = numerical_gradient(lambda v: np.sum(v**2), x, indices=[(0, 1), (1, 2)])
    assert numeric[0, 1] == pytest.approx(2.0, rel=1e-9) and numeric[1, 2] == pytest.approx(10.0, rel=1e-9)
    assert np.isnan(numeric).sum() == 4


# -- relative_error -------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6)
pairs = st.integers(1, 6).flatmap(
    lambda n: st.tuples(arrays(np.float64, n, elements=finite), arrays(np.float64, n, elements=finite))
)


@given(pair=pairs)
def test_relative_error_is_symmetric_and_zero_for_equal_arrays(pair):
    """Check err(a, b) = err(b, a), err(a, a) = 0 and 0 <= err <= 1."""
    a, b = pair
    assert relative_error(a, b) == relative_error(b, a)
    assert relative_error(a, a) == 0.0
    assert 0.0 <= relative_error(a, b) <= 1.0


def test_relative_error_values_by_hand():
    """Check |a − b| / max(|a| + |b|, 1e-8), the maximum over entries, on hand-worked numbers."""
    assert relative_error([1.0], [3.0]) == 0.5
    assert relative_error([1.0, 10.0], [1.0, -10.0]) == 1.0
    assert relative_error([0.0], [0.0]) == 0.0
    assert relative_error([1e-9], [0.0]) == pytest.approx(0.1)  # the 1e-8 floor
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0


def test_relative_error_reports_nan_and_inf_as_infinite():
    """Check that a NaN or inf in either array can never pass a threshold."""
    assert relative_error([1.0, np.nan], [1.0, 2.0]) == np.inf
    assert relative_error([1.0, 2.0], [np.inf, 2.0]) == np.inf


def test_relative_error_refuses_different_shapes():
    """Check (3,) against (3, 1) raises instead of broadcasting to 3 × 3."""
    with pytest.raises(ValueError, match="shape"):
        relative_error(np.ones(3), np.ones((3, 1)))


# -- diagnose -------------------------------------------------------------------------------


@pytest.fixture
def true_grad(rng):
    """A square, non-symmetric gradient with no entry near 0."""
    return rng.uniform(0.5, 2.0, (4, 4)) * rng.choice([-1.0, 1.0], (4, 4))


def test_diagnose_recognises_the_classic_mistakes(true_grad):
    """Check the hint for sign, ×N, ÷N, transpose, zeros, shape, NaN and a constant factor."""
    n = true_grad
    assert "sign" in diagnose(-n, n)
    assert "4×" in diagnose(4 * n, n, batch=4) and "divide by N" in diagnose(4 * n, n, batch=4)
    assert "4×" in diagnose(n / 4, n, batch=4) and "too small" in diagnose(n / 4, n, batch=4)
    assert "transpose" in diagnose(n.T, n)
    assert "all zeros" in diagnose(np.zeros_like(n), n)
    assert "shape" in diagnose(n[:, :3], n)
    assert "NaN" in diagnose(np.where(n > 0, np.nan, n), n)
    assert "3" in diagnose(3 * n, n)
    assert diagnose(-n, n, noun="result") == "your result has the wrong sign everywhere"


def test_diagnose_says_nothing_about_an_unrecognisable_error(true_grad, rng):
    """Check that random noise gets no made-up explanation."""
    assert diagnose(true_grad + rng.normal(size=true_grad.shape), true_grad) == ""


# -- check_layer on correct layers ----------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Linear(3, 2, rng=0),
        lambda: LinearSigmoid(3, 2, bias=True, rng=0),
        lambda: Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 2, rng=1)),
    ],
    ids=["Linear", "LinearSigmoid", "Sequential"],
)
def test_check_layer_passes_correct_layers(make, rng):
    """Check that a correct layer passes, every tensor is listed, and assert_ok returns it."""
    layer = make()
    report = check_layer(layer, rng.normal(size=(4, 3)))
    assert report.passed, str(report)
    assert [c.name for c in report.checks] == ["dL/dx"] + [f"dL/d{p.name}" for p in layer.parameters()]
    assert report.assert_ok() is report
    assert "all gradients match" in str(report)


def test_check_layer_does_not_change_the_callers_x(rng):
    """Check x is copied: the caller's array is not perturbed or converted."""
    x = rng.normal(size=(4, 3))
    before = x.copy()
    check_layer(Linear(3, 2, rng=0), x)
    np.testing.assert_array_equal(x, before)


# -- check_layer on planted bugs --------------------------------------------------------------


class PlantedLinear(Linear):
    """A Linear layer whose backward is a student's, with one mistake chosen by ``bug``."""

    def __init__(self, bug: str, d: int = 3, m: int = 3) -> None:
        super().__init__(d, m, rng=1)
        self.b.data[...] = np.arange(m) * 0.5
        self.bug = bug

    def backward(self, grad_out):
        x, W, bug = self.x, self.W.data, self.bug
        dW, db, dx = x.T @ grad_out, grad_out.sum(axis=0), grad_out @ W.T
        if bug == "transposed dW":
            dW = grad_out.T @ x  # wrong order of the matrix product
        elif bug == "bias not summed":
            db = grad_out[0]  # only the first example of the batch
        elif bug == "bias averaged":
            db = grad_out.mean(axis=0)
        elif bug == "sign":
            dx = -(grad_out @ W.T)
        elif bug == "dW times 2 everywhere":
            dW = 2 * dW
        elif bug == "one wrong entry":
            dW = dW.copy()
            dW[1, 2] += 1.0
        if bug == "overwrites W.grad":
            self.W.grad = dW
        elif bug != "forgets dW":
            self.W.grad += dW
        self.b.grad += db
        return dx


@pytest.mark.parametrize(
    ("bug", "wrong", "hint"),
    [
        ("transposed dW", "dL/dW", "transpose"),
        ("bias not summed", "dL/db", ""),
        ("bias averaged", "dL/db", "4× too small"),
        ("sign", "dL/dx", "wrong sign"),
        ("overwrites W.grad", "dL/dW", "overwritten"),
        ("forgets dW", "dL/dW", "all zeros"),
        ("dW times 2 everywhere", "dL/dW", "times 2"),
    ],
)
def test_check_layer_catches_a_planted_bug_and_names_it(bug, wrong, hint, rng):
    """Check that exactly the broken tensor fails, with the hint a student needs."""
    report = check_layer(PlantedLinear(bug), rng.normal(size=(4, 3)))
    assert not report.passed
    failed = [c.name for c in report.checks if not c.passed]
    assert failed == [wrong], str(report)
    assert hint in report[wrong].hint
    assert report[wrong].max_rel_error > 1e-2  # not borderline: clearly a bug
    with pytest.raises(GradCheckError, match=wrong):
        report.assert_ok()


def test_check_layer_reports_a_backward_that_modifies_grad_out(rng):
    """Check the classic ReLU mistake: zeroing grad_out in place and returning it."""

    class InPlaceReLU(ReLU):
        def backward(self, grad_out):
            grad_out[self.x <= 0] = 0.0
            return grad_out

    x = rng.uniform(0.1, 1.0, (4, 3)) * np.where(rng.random((4, 3)) < 0.5, -1.0, 1.0)
    report = check_layer(InPlaceReLU(), x)
    assert report["dL/dx"].passed  # the numbers are right ...
    assert not report.passed  # ... but the caller's grad_out was destroyed
    assert any("grad_out" in p and "in place" in p for p in report.problems)
    assert "in place" in str(report)


def test_assert_ok_message_names_the_tensor_error_and_worst_index(rng):
    """Check the GradCheckError text: which gradient, how far off, and where."""
    report = check_layer(PlantedLinear("one wrong entry"), rng.normal(size=(4, 3)))
    check = report["dL/dW"]
    assert check.worst_index == (1, 2)
    assert check.analytic_value == pytest.approx(check.numeric_value + 1.0, rel=1e-6)
    with pytest.raises(GradCheckError) as info:
        report.assert_ok()
    message = str(info.value)
    assert "dL/dW" in message and f"{check.max_rel_error:.1e}" in message and "(1, 2)" in message
    assert isinstance(info.value, AssertionError)  # so pytest shows it as a failed assertion


def test_report_lookup_by_name_and_unknown_name():
    """Check report['dL/dW'] finds a check and an unknown name lists the ones there are."""
    report = check_layer(Linear(2, 2, rng=0), np.ones((3, 2)))
    assert report["dL/db"].shape == (2,)
    with pytest.raises(KeyError, match="dL/dW"):
        report["dL/dV"]


# -- sampling large tensors -------------------------------------------------------------------


def test_large_tensors_are_checked_on_a_sample(rng):
    """Check a 600-entry W is checked on max_entries of them and a correct layer passes."""
    report = check_layer(Linear(30, 20, rng=0), rng.normal(size=(2, 30)), max_entries=50)
    assert report.passed, str(report)
    assert report["dL/dW"].n_checked == 50
    assert report["dL/dx"].n_checked == 50
    assert report["dL/db"].n_checked == 20  # small enough to check whole
    assert "50 entries sampled" in report["dL/dW"].describe()
    default = check_layer(Linear(30, 20, rng=0), rng.normal(size=(2, 30)))
    assert default["dL/dW"].n_checked == 300


def test_a_sampled_check_still_finds_an_error_in_every_entry(rng):
    """Check a bug that affects all entries is found from the sample alone."""
    report = check_layer(PlantedLinear("dW times 2 everywhere", d=30, m=20), rng.normal(size=(3, 30)), max_entries=40)
    assert report["dL/dW"].n_checked == 40
    assert not report["dL/dW"].passed and "times 2" in report["dL/dW"].hint
    assert report["dL/dx"].passed and report["dL/db"].passed


# -- check_loss and check_elementwise --------------------------------------------------------


class MSEWithoutMean(MSE):
    """A student's MSE backward that forgets the 1/N of the mean."""

    def backward(self):
        return self.diff


def test_check_loss_passes_a_correct_loss_and_catches_a_forgotten_1_over_n(rng):
    """Check the hint names the batch size when dL/dpred is exactly N times too large."""
    pred, target = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    assert check_loss(MSE(), pred, target).passed
    report = check_loss(MSEWithoutMean(), pred, target)
    assert not report.passed
    hint = report["dL/dpred"].hint
    assert "5×" in hint and "batch size" in hint and "divide by N" in hint


def test_check_loss_complains_when_forward_does_not_return_a_float(rng):
    """Check a forward returning an array (not the mean) is reported as a problem."""

    class ArrayMSE(MSE):
        def forward(self, pred, target):
            super().forward(pred, target)
            return 0.5 * self.diff**2 / len(self.diff)

    report = check_loss(ArrayMSE(), rng.normal(size=3), rng.normal(size=3))
    assert any("float" in p for p in report.problems)


def test_check_elementwise_accepts_sigmoid_and_rejects_a_wrong_derivative(rng):
    """Check σ' = σ(1 − σ) passes and σ(1 + σ) does not."""
    x = rng.uniform(-3, 3, 10)
    assert check_elementwise(sigmoid, sigmoid_grad, x).passed
    assert not check_elementwise(sigmoid, lambda v: sigmoid(v) * (1 + sigmoid(v)), x).passed
