"""Tests for course.activations: each f against an independent formula, each f_grad against
centred differences, and the numerically delicate ones (sigmoid, softmax) at |x| = 1000."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from course import activations as A
from course.gradcheck import numerical_gradient

# name -> (f, f_grad, the same function written independently for one float).
# The independent formulas are the lectures' definitions, not the library's rewrites.
CATALOGUE = {
    "binary step": (A.binary_step, A.binary_step_grad, lambda x: 1.0 if x > 0 else 0.0),
    "sigmoid": (A.sigmoid, A.sigmoid_grad, lambda x: 1.0 / (1.0 + math.exp(-x))),
    # Lecture 4's table writes tanh as 2 / (1 + e^{-2x}) - 1.
    "tanh": (A.tanh, A.tanh_grad, lambda x: 2.0 / (1.0 + math.exp(-2.0 * x)) - 1.0),
    "ReLU": (A.relu, A.relu_grad, lambda x: max(0.0, x)),
    # The lectures' Leaky ReLU is max(0.1x, x).
    "Leaky ReLU": (A.leaky_relu, A.leaky_relu_grad, lambda x: max(0.1 * x, x)),
    "Leaky ReLU α=0.3": (
        partial(A.leaky_relu, alpha=0.3),
        partial(A.leaky_relu_grad, alpha=0.3),
        lambda x: max(0.3 * x, x),
    ),
    "ELU": (A.elu, A.elu_grad, lambda x: x if x >= 0 else math.exp(x) - 1.0),
    "ELU α=0.5": (
        partial(A.elu, alpha=0.5),
        partial(A.elu_grad, alpha=0.5),
        lambda x: x if x >= 0 else 0.5 * (math.exp(x) - 1.0),
    ),
}
NAMES = list(CATALOGUE)

# Away from the kink at 0 by far more than the step h = 1e-5, and small enough that
# sigmoid' and tanh' stay well above the round-off of the centred difference.
away_from_kink = st.floats(1e-3, 3.0).flatmap(lambda m: st.sampled_from([m, -m]))
inputs = arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=4), elements=away_from_kink)


def reference(formula, x: np.ndarray) -> np.ndarray:
    return np.array([formula(float(v)) for v in x.ravel()]).reshape(x.shape)


@pytest.mark.parametrize("name", NAMES)
@given(x=inputs)
def test_value_matches_independent_formula(name, x):
    """Check that f(x) equals the lecture's formula entry by entry, in float64."""
    f, _, formula = CATALOGUE[name]
    y = f(x)
    assert y.dtype == np.float64 and y.shape == x.shape
    np.testing.assert_allclose(y, reference(formula, x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
@given(x=inputs)
def test_derivative_matches_centred_differences(name, x, assert_gradients_match):
    """Check that f_grad(x) is f'(x): for an elementwise f, the gradient of sum(f(x))."""
    f, f_grad, _ = CATALOGUE[name]
    numeric = numerical_gradient(f, x.copy())
    assert_gradients_match(f_grad(x), numeric, f"{name}'")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ReLU", 0.0), ("Leaky ReLU", 0.1), ("ELU", 1.0), ("binary step", 0.0)],
)
def test_derivative_at_the_kink_is_the_left_piece(name, expected):
    """Check the documented convention at x = 0: the derivative of the left piece."""
    _, f_grad, _ = CATALOGUE[name]
    assert f_grad(np.array([0.0]))[0] == expected


def test_registry_pairs_each_function_with_its_derivative():
    """Check that ACTIVATIONS lists the lectures' activations, each with its own derivative."""
    assert A.ACTIVATIONS == {
        "binary step": (A.binary_step, A.binary_step_grad),
        "sigmoid": (A.sigmoid, A.sigmoid_grad),
        "tanh": (A.tanh, A.tanh_grad),
        "ReLU": (A.relu, A.relu_grad),
        "Leaky ReLU": (A.leaky_relu, A.leaky_relu_grad),
        "ELU": (A.elu, A.elu_grad),
    }


def test_binary_step_fires_above_zero():
    """Check the step: 1 for x > 0 (the perceptron's convention), 0 at 0 and below, derivative 0 everywhere."""
    x = np.array([-2.0, -1e-300, 0.0, 1e-300, 3.0])
    np.testing.assert_array_equal(A.binary_step(x), [0.0, 0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(A.binary_step_grad(x), np.zeros(5))


def test_functions_accept_lists_and_integers_and_compute_in_float64():
    """Check that plain lists of integers come back as float64 arrays with the right values."""
    np.testing.assert_array_equal(A.relu([-2, 0, 3]), [0.0, 0.0, 3.0])
    assert A.relu([-2, 0, 3]).dtype == np.float64
    assert A.sigmoid([0])[0] == 0.5
    np.testing.assert_array_equal(A.leaky_relu([-10, 10]), [-1.0, 10.0])


# -- stability at |x| = 1000 -------------------------------------------------------------


# Every warning is an error here, as under warnings.simplefilter("error").
warnings_are_errors = pytest.mark.filterwarnings("error")


@warnings_are_errors
def test_sigmoid_is_stable_at_plus_and_minus_1000():
    """Check σ(±1000) is exactly 1 and 0 (e^-1000 underflows) with no overflow warning."""
    x = np.array([-1000.0, -745.0, 0.0, 745.0, 1000.0])
    y = A.sigmoid(x)
    assert y[0] == 0.0 and y[2] == 0.5 and y[3] == 1.0 and y[4] == 1.0
    assert 0.0 <= y[1] < 1e-300  # e^-745 is the smallest subnormal, not 0 and not NaN
    g = A.sigmoid_grad(x)
    assert np.all(np.isfinite(g)) and g[0] == 0.0 and g[4] == 0.0 and g[2] == 0.25


@warnings_are_errors
def test_softmax_and_log_softmax_are_stable_at_plus_and_minus_1000():
    """Check the log-sum-exp shift: no overflow, no 0/0, and exact hand-derived values."""
    s = np.array(
        [
            [1000.0, 0.0, -1000.0],  # log-sum-exp is 1000 to the last bit
            [1000.0, 1000.0, 1000.0],  # naive exp overflows: inf/inf
            [-1000.0, -1000.0, -1000.0],  # naive exp underflows: 0/0
        ]
    )
    np.testing.assert_array_equal(A.log_softmax(s)[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(A.log_softmax(s)[1:], -math.log(3.0), rtol=1e-15)
    p = A.softmax(s)
    np.testing.assert_array_equal(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[1:], 1.0 / 3.0, rtol=1e-15)


@warnings_are_errors
def test_elu_and_tanh_are_finite_at_plus_and_minus_1000():
    """Check that ELU saturates at −α and tanh at ±1, their derivatives finite, no warning."""
    x = np.array([-1000.0, 1000.0])
    np.testing.assert_array_equal(A.elu(x, alpha=2.0), [-2.0, 1000.0])
    np.testing.assert_array_equal(A.elu_grad(x, alpha=2.0), [0.0, 1.0])
    np.testing.assert_array_equal(A.tanh(x), [-1.0, 1.0])
    np.testing.assert_array_equal(A.tanh_grad(x), [0.0, 0.0])


# -- softmax ---------------------------------------------------------------------------

scores = arrays(
    np.float64,
    array_shapes(min_dims=2, max_dims=2, max_side=5),
    elements=st.floats(-30.0, 30.0),
)


@given(s=scores)
def test_softmax_matches_its_definition_and_rows_sum_to_one(s):
    """Check p_i = exp(s_i) / Σ_j exp(s_j) per row, p >= 0, rows summing to 1."""
    p = A.softmax(s)
    expected = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-300)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(A.log_softmax(s), np.log(expected), rtol=1e-12, atol=1e-12)


@given(s=scores, shift=st.floats(-500.0, 500.0))
def test_softmax_ignores_a_constant_added_to_every_score(s, shift):
    """Check softmax(s + c) = softmax(s): the property that makes the max shift legal."""
    np.testing.assert_allclose(A.softmax(s + shift), A.softmax(s), rtol=1e-9, atol=1e-300)


def test_softmax_axis_argument_normalises_columns():
    """Check that axis=0 normalises each column, not each row."""
    s = np.array([[1.0, 2.0], [3.0, 2.0]])
    p = A.softmax(s, axis=0)
    np.testing.assert_allclose(p.sum(axis=0), [1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(p[:, 1], [0.5, 0.5], rtol=1e-15)
    e = 1.0 / (1.0 + math.exp(2.0))  # e^1 / (e^1 + e^3)
    np.testing.assert_allclose(p[:, 0], [e, 1 - e], rtol=1e-14)
