"""The gradient-checking assignment (course/exercises/gradients.py): its catalogue of student
implementations, which tests/test_exercises_contract.py holds to the contract of every
exercise; the checks only this topic has; the exercises' own pieces; and the worked numbers
the notebook shows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_exercises_contract import Contract, Correct, Delegation, Mistake, Stub, delegating_to, stub_of

import course
import course.gradcheck as gc
from course.activations import sigmoid
from course.exercises import check, get
from course.exercises.gradients import SWISH_STATIONARY, TEST_FUNCTIONS, Swish
from course.gradcheck import GradCheckError

# ----------------------------------------------------------------------------------------
# numerical_gradient
# ----------------------------------------------------------------------------------------


def ng_flat_loop(f, x, grad_out=None, h=1e-5):
    """Correct, written differently from the notebook: a flat index, weighting before the
    difference (the round-off this leaves must still pass)."""
    weight = 1.0 if grad_out is None else grad_out
    grad = np.zeros_like(x)
    for k in range(x.size):
        ix = np.unravel_index(k, x.shape)
        old = x[ix]
        x[ix] = old + h
        plus = np.sum(np.asarray(f(x)) * weight)
        x[ix] = old - h
        minus = np.sum(np.asarray(f(x)) * weight)
        x[ix] = old
        grad[ix] = (plus - minus) / (2 * h)
    return grad


def _ng(step):
    """A numerical gradient whose per-entry estimate is step(f, x, ix, old, weight, h)."""

    def numerical_gradient(f, x, grad_out=None, h=1e-5):
        weight = 1.0 if grad_out is None else grad_out
        grad = np.zeros_like(x)
        for ix in np.ndindex(x.shape):
            grad[ix] = step(f, x, ix, x[ix], weight, h)
        return grad

    return numerical_gradient


def _forward(f, x, ix, old, weight, h):
    base = np.sum(np.asarray(f(x)) * weight)
    x[ix] = old + h
    plus = np.sum(np.asarray(f(x)) * weight)
    x[ix] = old
    return (plus - base) / h


def _centred(f, x, ix, old, weight, h, divide=2.0):
    x[ix] = old + h
    plus = np.sum(np.asarray(f(x)) * weight)
    x[ix] = old - h
    minus = np.sum(np.asarray(f(x)) * weight)
    x[ix] = old
    return (plus - minus) / (divide * h)


def _ignores_grad_out(f, x, ix, old, weight, h):
    return _centred(f, x, ix, old, 1.0, h)


def _on_a_copy(f, x, ix, old, weight, h):
    plus, minus = x.copy(), x.copy()
    plus[ix] += h
    minus[ix] -= h
    return (np.sum(np.asarray(f(plus)) * weight) - np.sum(np.asarray(f(minus)) * weight)) / (2 * h)


def _restores_by_arithmetic(f, x, ix, old, weight, h):
    x[ix] += h
    plus = np.sum(np.asarray(f(x)) * weight)
    x[ix] -= 2 * h
    minus = np.sum(np.asarray(f(x)) * weight)
    x[ix] += h  # not always the original float
    return (plus - minus) / (2 * h)


def _never_restores(f, x, ix, old, weight, h):
    x[ix] = old + h
    plus = np.sum(np.asarray(f(x)) * weight)
    x[ix] = old - h
    minus = np.sum(np.asarray(f(x)) * weight)
    return (plus - minus) / (2 * h)


def ng_stub(f, x, grad_out=None, h=1e-5):
    raise NotImplementedError()


def ng_delegating(f, x, grad_out=None, h=1e-5):
    return course.numerical_gradient(f, x, grad_out, h)


# ----------------------------------------------------------------------------------------
# relative_error
# ----------------------------------------------------------------------------------------


def relative_error_loop(a, b):
    """Correct: an explicit loop over the entries."""
    worst = 0.0
    for u, v in zip(np.ravel(a), np.ravel(b), strict=True):
        worst = max(worst, abs(u - v) / max(abs(u) + abs(v), 1e-8))
    return worst


def relative_error_no_floor(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.max(np.abs(a - b) / (np.abs(a) + np.abs(b)))


def relative_error_larger_of_two(a, b):
    return np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-8))


def relative_error_mean(a, b):
    return np.mean(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8))


def relative_error_stub(a, b):
    raise NotImplementedError()


def relative_error_delegating(a, b):
    return gc.relative_error(a, b)


# ----------------------------------------------------------------------------------------
# Swish.backward
# ----------------------------------------------------------------------------------------


class SwishEinsum(Swish):
    """Correct: einsums, dβ without the saved s(1 − s) shortcut."""

    def backward(self, grad_out):
        s = sigmoid(self.beta.data * self.x)
        ds = s - s * s
        np.add(self.beta.grad, np.einsum("nd,nd,nd,nd->d", grad_out, self.x, self.x, ds), out=self.beta.grad)
        return np.einsum("nd,nd->nd", grad_out, s + np.einsum("d,nd,nd->nd", self.beta.data, self.x, ds))


class SwishPlanted(Swish):
    """The notebook's planted bug: one factor x missing from dL/dβ."""

    def backward(self, grad_out):
        ds = self.s * (1 - self.s)
        self.beta.grad += (grad_out * self.x * ds).sum(axis=0)
        return grad_out * (self.s + self.beta.data * self.x * ds)


class SwishForgetsBeta(Swish):
    def backward(self, grad_out):
        ds = self.s * (1 - self.s)
        self.beta.grad += (grad_out * self.x**2 * ds).sum(axis=0)
        return grad_out * (self.s + self.x * ds)


class SwishOverwrites(Swish):
    def backward(self, grad_out):
        ds = self.s * (1 - self.s)
        self.beta.grad = (grad_out * self.x**2 * ds).sum(axis=0)
        return grad_out * (self.s + self.beta.data * self.x * ds)


# ----------------------------------------------------------------------------------------
# The catalogue (tests/test_exercises_contract.py runs the contract over it)
# ----------------------------------------------------------------------------------------

CONTRACT = Contract(
    topic="gradients",
    correct=[
        Correct("gradients.numerical_gradient", ng_flat_loop, seeds=range(12)),
        Correct("gradients.relative_error", relative_error_loop, seeds=range(12)),
        Correct("gradients.Swish.backward", SwishEinsum, seeds=range(12)),
    ],
    stubs=[
        Stub("gradients.numerical_gradient", ng_stub),
        Stub("gradients.relative_error", relative_error_stub),
        Stub("gradients.Swish.backward", stub_of(Swish)),
    ],
    # says: what the message names
    mistakes=[
        Mistake("gradients.numerical_gradient", _ng(_forward), "forward difference", ("forward difference",)),
        Mistake(
            "gradients.numerical_gradient", _ng(lambda *a: _centred(*a, divide=1.0)), "divides by h", ("divide by 2h",)
        ),
        Mistake("gradients.numerical_gradient", _ng(_ignores_grad_out), "ignores grad_out", ("grad_out was ignored",)),
        Mistake("gradients.numerical_gradient", _ng(_on_a_copy), "perturbs a copy", ("perturb x itself",)),
        Mistake(
            "gradients.numerical_gradient",
            _ng(_restores_by_arithmetic),
            "restores x by arithmetic",
            ("not restored exactly",),
            shows_expected=False,
        ),
        Mistake("gradients.numerical_gradient", _ng(_never_restores), "never restores x", ("not restored exactly",)),
        Mistake("gradients.relative_error", relative_error_no_floor, "no floor", ("NaN",)),
        Mistake("gradients.relative_error", relative_error_larger_of_two, "max(|a|, |b|)", ("the result",)),
        Mistake("gradients.relative_error", relative_error_mean, "mean, not max", ("the result",)),
        Mistake("gradients.Swish.backward", SwishPlanted, "planted bug: x missing in dβ", ("dL/dbeta",)),
        Mistake("gradients.Swish.backward", SwishForgetsBeta, "β missing in dx", ("dL/dx",)),
        Mistake(
            "gradients.Swish.backward",
            SwishOverwrites,
            "β.grad overwritten",
            ("overwritten (=) instead of accumulated",),
        ),
    ],
    delegations=[
        Delegation("gradients.numerical_gradient", ng_delegating),
        Delegation("gradients.relative_error", relative_error_delegating),
        Delegation("gradients.Swish.backward", delegating_to(Swish)),
    ],
)


# ----------------------------------------------------------------------------------------
# Beyond the contract
# ----------------------------------------------------------------------------------------


def test_hidden_messages_reveal_no_expected_values():
    with pytest.raises(GradCheckError) as info:
        check("gradients.Swish.backward", SwishPlanted, hidden=True, quiet=True)
    assert "expected" not in str(info.value).replace("expected float64", "")


# ----------------------------------------------------------------------------------------
# The exercises' own pieces
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TEST_FUNCTIONS)
def test_the_exact_derivatives_of_the_test_functions(kind, rng):
    """The table's exact gradients agree with the reference centred differences."""
    x = rng.standard_normal((4, 3))
    arrays = {
        "x": x,
        "A": rng.standard_normal((4, 4)),
        "labels": rng.integers(0, 3, 4).astype(float),
        "W": rng.standard_normal((3, 2)),
    }
    if kind == "quadratic":
        x = arrays["x"] = x[:, 0].copy()
    f = TEST_FUNCTIONS[kind][1](x, arrays)
    out = np.asarray(f(x))
    grad_out = rng.standard_normal(out.shape) if out.ndim else None
    exact = TEST_FUNCTIONS[kind][2](x, arrays, grad_out)
    assert gc.relative_error(exact, gc.numerical_gradient(f, x, grad_out)) < 1e-7


def test_swish_reference_matches_its_formula_and_centred_differences(rng):
    layer = Swish(5)
    layer.beta.data[...] = rng.standard_normal(5)
    x = rng.standard_normal((6, 5))
    np.testing.assert_allclose(layer.forward(x), x / (1 + np.exp(-layer.beta.data * x)), rtol=1e-12)
    assert gc.check_layer(layer, x, rng=1).passed


def test_swish_is_silu_with_beta_one():
    x = np.linspace(-3, 3, 7)[None, :]
    np.testing.assert_allclose(Swish(7).forward(x), x * sigmoid(x), rtol=1e-12)


def test_swish_stationary_point():
    u = SWISH_STATIONARY
    assert abs(1 + u * (1 - sigmoid(u))) < 1e-12


def test_swish_cases_stay_clear_of_zero_gradients():
    ex = get("gradients.Swish.backward")
    for seed in range(20):
        for case in ex.cases(np.random.default_rng(seed), hidden=True):
            x, beta = case.arrays["x"], case.arrays["param0"]
            assert np.min(np.abs(x)) >= ex.GAP
            assert np.min(np.abs(beta * x - SWISH_STATIONARY)) >= ex.GAP * 0.999


def test_restoring_by_arithmetic_really_changes_x_sometimes():
    """Why the exercise insists on saving the old value (the notebook says so)."""
    x = np.array([0.1, 0.7, 1.3, -2.9, 3.3])
    h = 1e-5
    changed = [v for v in x if ((v + h) - 2 * h) + h != v]
    assert changed


# ----------------------------------------------------------------------------------------
# The worked numbers of the notebook
# ----------------------------------------------------------------------------------------


def test_centred_difference_straddling_the_relu_kink_gives_one_half():
    relu = course.activations.relu
    assert gc.numerical_gradient(relu, np.array([0.0]))[0] == pytest.approx(0.5)
    # Inside the step, the estimate ramps from 0 to 1: at x = h/2 it is 3/4.
    assert gc.numerical_gradient(relu, np.array([0.5e-5]))[0] == pytest.approx(0.75)
    assert gc.numerical_gradient(relu, np.array([2e-5]))[0] == pytest.approx(1.0)


def test_forward_and_centred_difference_errors_at_h_1e_2():
    """On sin at x = 1: forward error ≈ h/2 · sin(1), centred error ≈ h²/6 · cos(1)."""
    x, h = 1.0, 1e-2
    forward = abs((math.sin(x + h) - math.sin(x)) / h - math.cos(x))
    centred = abs((math.sin(x + h) - math.sin(x - h)) / (2 * h) - math.cos(x))
    assert forward == pytest.approx(h / 2 * math.sin(x), rel=0.01)
    assert centred == pytest.approx(h**2 / 6 * math.cos(x), rel=0.01)
    assert f"{forward:.1e}" == "4.2e-03" and f"{centred:.1e}" == "9.0e-06"


def test_the_best_steps_balance_truncation_and_round_off():
    eps64, eps32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps
    assert f"{eps64**0.5:.1e}" == "1.5e-08"
    assert f"{eps64 ** (1 / 3):.1e}" == "6.1e-06"
    assert f"{eps32 ** (1 / 3):.1e}" == "4.9e-03"
    assert f"{eps32 ** (2 / 3):.1e}" == "2.4e-05"


def test_relative_error_reading_examples():
    assert gc.relative_error(np.array([1.0]), np.array([1.0 + 2e-7])) == pytest.approx(1e-7, rel=1e-6)
    assert gc.relative_error(np.array([0.0]), np.array([0.0])) == 0.0
    assert gc.relative_error(np.array([1e-10]), np.array([-1e-10])) == pytest.approx(0.02)


def test_relative_error_of_the_notebook_pairs():
    pairs = [
        ([1.0], [1.0 + 2e-7], "1e-07"),
        ([0.0], [0.0], "0"),
        ([1e-10], [-1e-10], "0.02"),
        ([2.0], [1.0], "0.33"),
        ([-0.3], [0.3], "1"),
    ]
    for a, n, printed in pairs:
        assert f"{gc.relative_error(np.array(a), np.array(n)):.2g}" == printed


def test_a_correct_relu_fails_its_check_on_the_kink_and_passes_away_from_it():
    from course.exercises.kinds import away_from

    x = np.random.default_rng(0).standard_normal((4, 5))
    x[0, :3] = [0.0, 3e-6, -4e-6]
    report = gc.check_layer(course.ReLU(), x, rng=0)
    assert not report.passed and f"{report['dL/dx'].max_rel_error:.2g}" == "1"
    assert gc.check_layer(course.ReLU(), away_from(0.0)(np.random.default_rng(1), (4, 5)), rng=0).passed


def test_allclose_misses_a_factor_of_two_on_tiny_gradients():
    numerical = 1e-7 * np.random.default_rng(3).standard_normal(6)
    analytic = 2 * numerical
    assert np.allclose(analytic, numerical, atol=1e-5, rtol=1e-3)
    assert f"{gc.relative_error(analytic, numerical):.2f}" == "0.33"


def test_the_planted_bug_misses_exactly_one_factor_x():
    """With a batch of one, numerical / analytic dL/dβ is x itself, as the notebook shows."""
    rng = np.random.default_rng(5)
    layer = SwishPlanted(6)
    layer.beta.data[...] = rng.uniform(0.5, 2.0, 6)
    x = rng.standard_normal((1, 6))
    layer.forward(x)
    layer.backward(np.ones((1, 6)))
    numeric = gc.numerical_gradient(lambda _: layer.forward(x), layer.beta.data, np.ones((1, 6)))
    np.testing.assert_allclose(numeric / layer.beta.grad, x[0], rtol=1e-6)
    report = gc.check_layer(layer, rng.standard_normal((5, 6)), rng=0)
    assert report["dL/dx"].passed and not report["dL/dbeta"].passed
