"""The neurons assignment (course/exercises/neurons.py): its catalogue of student
implementations, which tests/test_exercises_contract.py holds to the contract of every
exercise (correct ones pass, stubs are not implemented, mistakes fail naming the wrong
result, calling the reference gets no credit); the checks only this topic has; and the
worked numbers the notebook shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_exercises_contract import Contract, Correct, Delegation, Mistake, Stub, delegating_to, stub_of

import course
from course import activations as A
from course.exercises import REGISTRY, check
from course.exercises.neurons import MAXOUT_H, _no_near_tie
from course.gradcheck import GradCheckError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "solutions" / "01_neurons" / "neurons.ipynb"

# ----------------------------------------------------------------------------------------
# Implementations
# ----------------------------------------------------------------------------------------


def sigmoid_grad(x):
    # σ'(x) = σ(x) σ(−x), each factor as exp(−log(1 + e^∓x)) so nothing overflows
    return np.exp(-np.logaddexp(0.0, -x) - np.logaddexp(0.0, x))


def tanh_grad(x):
    return 1.0 / np.cosh(x) ** 2


def relu_grad(x):
    return np.heaviside(x, 0.0)


def leaky_relu_grad(x, alpha=0.1):
    return alpha + (1.0 - alpha) * (x > 0)


def elu_grad(x, alpha=1.0):
    # on the negative side, f' = α eˣ = f + α
    out = A.elu(x, alpha) + alpha
    out[x > 0] = 1.0
    return out


class LoopMaxout(course.layers.Maxout):
    """Maxout's backward one example and one unit at a time."""

    def backward(self, grad_out):
        grad_x = np.zeros_like(self.x)
        n_examples, n_units = grad_out.shape
        for n in range(n_examples):
            for m in range(n_units):
                j = self.winner[n, m]
                g = grad_out[n, m]
                self.W.grad[j, :, m] += g * self.x[n]
                self.b.grad[j, m] += g
                grad_x[n] += g * self.W.data[j, :, m]
        return grad_x


def layer_forward(X, W, b, activation=A.sigmoid):
    return activation(np.einsum("nd,dm->nm", X, W) + b[None, :])


def three_layer_forward(X, W1, b1, W2, b2, W3, b3):
    h = X
    for W, b in [(W1, b1), (W2, b2)]:
        h = A.sigmoid(np.einsum("nd,dm->nm", h, W) + b)
    return np.einsum("nd,dm->nm", h, W3) + b3


CORRECT = {
    "neurons.sigmoid_grad": sigmoid_grad,
    "neurons.tanh_grad": tanh_grad,
    "neurons.relu_grad": relu_grad,
    "neurons.leaky_relu_grad": leaky_relu_grad,
    "neurons.elu_grad": elu_grad,
    "neurons.Maxout.backward": LoopMaxout,
    "neurons.layer_forward": layer_forward,
    "neurons.three_layer_forward": three_layer_forward,
}


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


class MaxoutToEveryPiece(course.layers.Maxout):
    """Bug: the upstream gradient reaches every piece, not only the winner."""

    def backward(self, grad_out):
        grad_x = np.zeros_like(self.x)
        for j in range(self.k):
            self.W.grad[j] += self.x.T @ grad_out
            self.b.grad[j] += grad_out.sum(axis=0)
            grad_x += grad_out @ self.W.data[j].T
        return grad_x


class MaxoutOverwrites(course.layers.Maxout):
    """Bug: W.grad is overwritten (=) instead of accumulated (+=)."""

    def backward(self, grad_out):
        grad_x = np.zeros_like(self.x)
        for j in range(self.k):
            delta = grad_out * (self.winner == j)
            self.W.grad[j] = self.x.T @ delta
            self.b.grad[j] += delta.sum(axis=0)
            grad_x += delta @ self.W.data[j].T
        return grad_x


def _layer_derivative(layer_cls):
    """A derivative obtained from the reference layer's backward (with grad_out = 1)."""

    def grad(x, **kwargs):
        layer = layer_cls(**kwargs)
        layer.forward(x)
        return layer.backward(np.ones_like(x))

    return grad


def _three_layer_forward_by_the_library(X, W1, b1, W2, b2, W3, b3):
    h = course.neuron.layer_forward(course.neuron.layer_forward(X, W1, b1), W2, b2)
    return course.neuron.layer_forward(h, W3, b3, lambda z: z)


# ----------------------------------------------------------------------------------------
# The catalogue (tests/test_exercises_contract.py runs the contract over it)
# ----------------------------------------------------------------------------------------

CONTRACT = Contract(
    topic="neurons",
    correct=[Correct(name, impl, seeds=range(5), seeded_checks=("hidden",)) for name, impl in CORRECT.items()],
    stubs=[Stub(name, not_implemented) for name in CORRECT if name != "neurons.Maxout.backward"]
    + [Stub("neurons.Maxout.backward", stub_of(course.layers.Maxout))],
    # each mistake fails both checks with a message containing `says`
    mistakes=[
        Mistake("neurons.sigmoid_grad", lambda x: x * (1 - x), "x (1 − x) instead of σ(x)(1 − σ(x))", ("derivative",)),
        Mistake("neurons.tanh_grad", lambda x: 1 - x**2, "1 − x² instead of 1 − tanh²(x)", ("derivative",)),
        Mistake("neurons.relu_grad", lambda x: np.maximum(x, 0.0), "returns ReLU itself", ("derivative",)),
        Mistake(
            "neurons.leaky_relu_grad",
            lambda x, alpha=0.1: np.where(x > 0, 1.0, alpha * x),
            "αx instead of α on the negative side",
            ("derivative",),
        ),
        Mistake(
            "neurons.elu_grad",
            lambda x, alpha=1.0: np.where(x > 0, 1.0, alpha * np.expm1(np.minimum(x, 0))),
            "f instead of f' on the negative side",
            ("derivative",),
        ),
        Mistake("neurons.Maxout.backward", MaxoutToEveryPiece, "gradient to every piece", ("dL/dW",)),
        Mistake("neurons.Maxout.backward", MaxoutOverwrites, "W.grad overwritten", ("overwritten",)),
        Mistake(
            "neurons.layer_forward",
            lambda X, W, b, activation=A.sigmoid: activation(X @ W) + b,
            "bias added after the activation",
            ("the result",),
        ),
        Mistake(
            "neurons.three_layer_forward",
            lambda X, W1, b1, W2, b2, W3, b3: A.sigmoid(A.sigmoid(A.sigmoid(X @ W1 + b1) @ W2 + b2) @ W3 + b3),
            "a sigmoid on the output layer",
            ("the result",),
        ),
    ],
    # each calls reference code the student must write
    delegations=[
        Delegation("neurons.sigmoid_grad", A.sigmoid_grad, "activations"),
        Delegation("neurons.sigmoid_grad", _layer_derivative(course.layers.Sigmoid), "layer"),
        Delegation("neurons.tanh_grad", A.tanh_grad, "activations"),
        Delegation("neurons.tanh_grad", _layer_derivative(course.layers.Tanh), "layer"),
        Delegation("neurons.relu_grad", A.relu_grad, "activations"),
        Delegation("neurons.relu_grad", _layer_derivative(course.layers.ReLU), "layer"),
        Delegation("neurons.leaky_relu_grad", lambda x, alpha=0.1: A.leaky_relu_grad(x, alpha=alpha), "activations"),
        Delegation("neurons.leaky_relu_grad", _layer_derivative(course.layers.LeakyReLU), "layer"),
        Delegation("neurons.elu_grad", lambda x, alpha=1.0: A.elu_grad(x, alpha=alpha), "activations"),
        Delegation("neurons.elu_grad", _layer_derivative(course.layers.ELU), "layer"),
        Delegation("neurons.Maxout.backward", delegating_to(course.layers.Maxout), "super().backward"),
        Delegation("neurons.layer_forward", course.neuron.layer_forward, "neuron.layer_forward"),
        Delegation("neurons.three_layer_forward", course.neuron.three_layer_forward, "neuron.three_layer_forward"),
        Delegation(
            "neurons.three_layer_forward", _three_layer_forward_by_the_library, "neuron.layer_forward three times"
        ),
    ],
)

DERIVATIVES = {
    "neurons.sigmoid_grad": A.sigmoid,
    "neurons.tanh_grad": A.tanh,
    "neurons.relu_grad": A.relu,
    "neurons.leaky_relu_grad": A.leaky_relu,
    "neurons.elu_grad": A.elu,
}


def _centred_difference(f):
    """The shortcut the derivative exercises must refuse: a vectorised difference quotient."""

    def grad(x, **kwargs):
        h = 1e-5
        return (f(x + h, **kwargs) - f(x - h, **kwargs)) / (2 * h)

    return grad


# ----------------------------------------------------------------------------------------
# Beyond the contract
# ----------------------------------------------------------------------------------------


def test_the_notebook_checks_every_exercise_visibly_and_hidden():
    from autograder.verdicts.cells import graded_cells

    calls = {(c.exercise, c.hidden): cell.points for cell in graded_cells(NOTEBOOK) for c in cell.calls}
    for name in CORRECT:
        assert calls.get((name, False)) == 1, f"{name}: no visible check worth 1 point"
        assert calls.get((name, True), 0) >= 2, f"{name}: no hidden check worth at least 2 points"


@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "hidden"])
@pytest.mark.parametrize("name", list(DERIVATIVES))
def test_a_numerical_derivative_is_refused(name, hidden):
    with pytest.raises(GradCheckError, match="write the derivative's formula") as failure:
        check(name, _centred_difference(DERIVATIVES[name]), hidden=hidden, quiet=True)
    # caught by the checking run's detector (a forward at perturbed inputs) or by the exactness check
    assert "machine precision" in str(failure.value) or "computed numerically" in str(failure.value)


def test_leaky_relu_grad_must_use_alpha():
    ignores_alpha = lambda x, alpha=0.1: np.where(x > 0, 1.0, 0.1)  # noqa: E731
    check("neurons.leaky_relu_grad", ignores_alpha, quiet=True)  # the lecture's α = 0.1: fine
    with pytest.raises(GradCheckError, match="derivative"):
        check("neurons.leaky_relu_grad", ignores_alpha, hidden=True, quiet=True)


def test_the_hidden_cases_include_a_large_input():
    rng = np.random.default_rng(0)
    for name in CORRECT:
        cases = REGISTRY[name].cases(rng, hidden=True)
        assert max(max(a.size for a in case.arrays.values()) for case in cases) >= 50_000, name


def test_maxout_cases_have_no_near_ties():
    exercise = REGISTRY["neurons.Maxout.backward"]
    for seed in range(10):
        for case in exercise.cases(np.random.default_rng(seed), hidden=seed % 2 == 1):
            layer = course.layers.Maxout(*case.config["args"], **case.config["kwargs"])
            layer.W.data[...], layer.b.data[...] = case.arrays["param0"], case.arrays["param1"]
            assert _no_near_tie(layer, case.arrays["x"]), case.label
            # and indeed no single perturbation of x by the check's step changes a winner
            x = case.arrays["x"].copy()
            layer.forward(x)
            winner = layer.winner.copy()
            x[0, 0] += MAXOUT_H
            layer.forward(x)
            assert np.array_equal(layer.winner, winner)


# ----------------------------------------------------------------------------------------
# The worked numbers the notebook shows
# ----------------------------------------------------------------------------------------


def test_one_neuron_by_hand():
    neuron = course.Neuron([0.4, 0.3, -0.2], 0.1)
    x = np.array([1.0, -2.0, 0.5])
    assert neuron.pre_activation(x) == pytest.approx(-0.2)
    assert neuron(x) == pytest.approx(0.450166, abs=1e-6)


def test_the_perceptron_learns_and_but_not_xor():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    p = course.Perceptron(np.zeros(2), 0.0)
    assert p.fit(X, [0, 0, 0, 1], epochs=20) == [1, 3, 3, 2, 1, 0]
    np.testing.assert_array_equal(p.weights, [2.0, 1.0])
    assert p.bias == -2.0
    X_xor, y_xor = course.data.xor()
    q = course.Perceptron(np.zeros(2), 0.0)
    mistakes = q.fit(X_xor, y_xor, epochs=20)
    assert len(mistakes) == 20 and min(mistakes) > 0


def test_logistic_regression_on_two_blobs():
    X, y = course.data.blobs(50, centers=[[-1.5, -1.0], [1.5, 1.0]], std=0.8, rng=0)
    model = course.LogisticRegression(np.zeros(2), 0.0)
    losses = model.fit(X, y, epochs=300, lr=0.5)
    assert losses[0] == pytest.approx(np.log(2))
    assert losses[-1] == pytest.approx(0.0435, abs=1e-4)
    assert np.mean(model.predict(X) == y) == 0.99


def test_gradient_descent_cannot_move_a_step_neuron():
    X, y = course.data.blobs(50, centers=[[-1.5, -1.0], [1.5, 1.0]], std=0.8, rng=0)
    w = np.array([0.5, -0.5])
    z = X @ w
    delta = (A.binary_step(z) - y) * A.binary_step_grad(z)
    assert np.all(X.T @ delta == 0)
    delta = (A.sigmoid(z) - y) * A.sigmoid_grad(z)
    assert np.linalg.norm(X.T @ delta) > 1


def test_derivative_values():
    assert A.sigmoid_grad(0.0) == 0.25
    assert A.tanh_grad(0.0) == 1.0
    points = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_allclose(A.sigmoid_grad(points), [0.104994, 0.235004, 0.235004, 0.104994], atol=1e-6)
    np.testing.assert_allclose(A.tanh_grad(points), [0.070651, 0.786448, 0.786448, 0.070651], atol=1e-6)
    np.testing.assert_array_equal(A.leaky_relu_grad(points), [0.1, 0.1, 1.0, 1.0])
    np.testing.assert_allclose(A.elu_grad(points), [np.exp(-2), np.exp(-0.5), 1.0, 1.0])


def test_a_layer_is_its_neurons_side_by_side():
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    one_by_one = np.column_stack([course.Neuron(W[:, m], b[m])(X) for m in range(4)])
    np.testing.assert_allclose(course.neuron.layer_forward(X, W, b), one_by_one, rtol=1e-14)


def test_three_layer_forward_is_the_lectures_column_vector_code_transposed():
    rng = np.random.default_rng(1)
    W1, b1 = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))  # the lecture's shapes
    W2, b2 = rng.standard_normal((4, 4)), rng.standard_normal((4, 1))
    W3, b3 = rng.standard_normal((1, 4)), rng.standard_normal((1, 1))
    x = rng.standard_normal((3, 1))
    f = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    h1 = f(np.dot(W1, x) + b1)
    h2 = f(np.dot(W2, h1) + b2)
    out = np.dot(W3, h2) + b3
    batch_first = course.neuron.three_layer_forward(x.T, W1.T, b1[:, 0], W2.T, b2[:, 0], W3.T, b3[:, 0])
    assert batch_first.shape == (1, 1)
    np.testing.assert_allclose(batch_first, out.T, rtol=1e-12)


def test_the_maxout_picture():
    unit = course.layers.Maxout(1, 1, k=3)
    unit.W.data[:, 0, 0] = [-1.0, 0.3, 1.5]
    unit.b.data[:, 0] = [-1.0, 0.0, -2.0]
    y = unit.forward(np.array([[-3.0], [0.0], [3.0]]))
    np.testing.assert_array_equal(unit.winner[:, 0], [0, 1, 2])
    np.testing.assert_allclose(y[:, 0], [2.0, 0.0, 2.5])
