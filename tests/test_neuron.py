"""Tests for course.neuron: the lecture's neuron_tick, the perceptron on AND and XOR, and
logistic regression's gradient X.T (p − y) / N."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.activations import relu, tanh
from course.gradcheck import numerical_gradient
from course.neuron import LogisticRegression, Neuron, Perceptron, layer_forward, three_layer_forward


def neuron_tick(inputs: np.ndarray, weights: np.ndarray, bias: float) -> float:
    """The lecture's code, transcribed: sigmoid of the cell body's sum."""
    cell_body_sum = np.sum(inputs * weights) + bias
    return 1.0 / (1.0 + math.exp(-cell_body_sum))


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6), n=st.integers(1, 5))
def test_neuron_is_the_lectures_neuron_tick_for_one_input_and_a_batch(seed, d, n):
    """Check g(w·x + b) for x (D,) (a number) and X (N, D) (one firing rate per row)."""
    rng = np.random.default_rng(seed)
    w, b, X = rng.normal(size=d), float(rng.normal()), rng.normal(size=(n, d))
    neuron = Neuron(w, b)
    single = neuron(X[0])
    assert np.ndim(single) == 0
    assert float(single) == pytest.approx(neuron_tick(X[0], w, b), rel=1e-12)
    batch = neuron.forward(X)
    assert batch.shape == (n,)
    np.testing.assert_allclose(batch, [neuron_tick(x, w, b) for x in X], rtol=1e-12)


@pytest.mark.parametrize("activation", [relu, tanh], ids=["ReLU", "tanh"])
def test_neuron_applies_the_activation_it_is_given(activation):
    """Check the activation argument replaces the sigmoid."""
    neuron = Neuron([1.0, -2.0], bias=0.5, activation=activation)
    x = np.array([[1.0, 1.0], [3.0, 0.0]])  # sums −0.5 and 3.5
    np.testing.assert_allclose(neuron(x), activation(np.array([-0.5, 3.5])), rtol=1e-15)
    np.testing.assert_array_equal(neuron.pre_activation(x), [-0.5, 3.5])


@pytest.mark.parametrize("shape", [(3,), (2, 3), (5, 1)])
def test_neuron_refuses_the_wrong_number_of_features(shape):
    """Check a neuron with 2 weights refuses inputs with another number of features."""
    with pytest.raises(ValueError, match="2 features") as info:
        Neuron([1.0, 2.0])(np.ones(shape))
    assert str(shape) in str(info.value)


def test_neuron_weights_must_be_a_vector():
    """Check a weight matrix is refused: one neuron has one weight per input."""
    with pytest.raises(ValueError, match=r"\(D,\)"):
        Neuron(np.ones((2, 2)))


def test_neuron_keeps_its_own_copy_of_the_weights():
    """Check that changing the caller's array afterwards does not change the neuron."""
    w = np.array([1.0, 2.0])
    neuron = Neuron(w)
    w[0] = 100.0
    assert neuron.weights[0] == 1.0


# -- a layer: many neurons at once ------------------------------------------------------------


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), d=st.integers(1, 4), m=st.integers(1, 4))
def test_layer_forward_is_one_neuron_per_column(seed, n, d, m):
    """Check entry (n, m) of g(XW + b) is neuron m (weights W[:, m], bias b[m]) on example n."""
    rng = np.random.default_rng(seed)
    X, W, b = rng.normal(size=(n, d)), rng.normal(size=(d, m)), rng.normal(size=m)
    out = layer_forward(X, W, b)
    assert out.shape == (n, m)
    expected = [[neuron_tick(X[i], W[:, j], b[j]) for j in range(m)] for i in range(n)]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(layer_forward(X, W, b, tanh), np.tanh(X @ W + b), rtol=1e-12)


@pytest.mark.parametrize(
    ("X", "W", "b"),
    [((3,), (3, 2), (2,)), ((4, 3), (2, 2), (2,)), ((4, 3), (3, 2), (3,)), ((4, 3), (3, 2), (1, 2))],
    ids=["one example without batch axis", "W rows != features", "b too long", "b as a row"],
)
def test_layer_forward_refuses_shapes_that_do_not_fit(X, W, b):
    """Check X (N, D), W (D, M), b (M,) are required, and the message shows all three shapes."""
    with pytest.raises(ValueError) as info:
        layer_forward(np.ones(X), np.ones(W), np.ones(b))
    assert all(str(shape) in str(info.value) for shape in (X, W, b))


def test_three_layer_forward_is_two_sigmoid_layers_and_a_linear_output(rng):
    """Check out = σ(σ(X W1 + b1) W2 + b2) W3 + b3, with no activation on the output."""
    X = rng.normal(size=(5, 3))
    W1, W2, W3 = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)), rng.normal(size=(4, 1))
    b1, b2, b3 = rng.normal(size=4), rng.normal(size=4), np.array([-10.0])
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    out = three_layer_forward(X, W1, b1, W2, b2, W3, b3)
    np.testing.assert_allclose(out, sig(sig(X @ W1 + b1) @ W2 + b2) @ W3 + b3, rtol=1e-12)
    assert np.all(out < 0)  # a bias of −10 shows the output is not squashed into (0, 1)


# -- the perceptron ---------------------------------------------------------------------------

X_BOOL = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
AND = np.array([0.0, 0.0, 0.0, 1.0])
XOR = np.array([0.0, 1.0, 1.0, 0.0])


def test_perceptron_fires_only_strictly_above_zero():
    """Check the lecture's step: 1 if wᵀx > 0, otherwise 0 (so 0 at exactly 0)."""
    p = Perceptron([1.0, 1.0], bias=-1.0)
    np.testing.assert_array_equal(p(np.array([[0.5, 0.5], [0.6, 0.5], [0.4, 0.5]])), [0.0, 1.0, 0.0])


def test_perceptron_first_epoch_on_and_by_hand():
    """Check Rosenblatt's rule from w = 0, b = 0: only (1, 1) is wrong, so w = (1, 1), b = 1."""
    p = Perceptron([0.0, 0.0])
    assert p.fit(X_BOOL, AND, epochs=1) == [1]
    np.testing.assert_array_equal(p.weights, [1.0, 1.0])
    assert p.bias == 1.0


def test_perceptron_learns_and():
    """Check AND is learnt: the last epoch has no mistakes and every prediction is right."""
    p = Perceptron([0.0, 0.0])
    mistakes = p.fit(X_BOOL, AND, epochs=50)
    assert mistakes[-1] == 0 and len(mistakes) < 50
    np.testing.assert_array_equal(p(X_BOOL), AND)


def test_perceptron_cannot_learn_xor():
    """Check XOR (not linearly separable) never reaches an epoch without mistakes."""
    p = Perceptron([0.0, 0.0])
    mistakes = p.fit(X_BOOL, XOR, epochs=100)
    assert len(mistakes) == 100 and min(mistakes) > 0
    assert np.any(p(X_BOOL) != XOR)


# -- logistic regression ----------------------------------------------------------------------


def mean_bce(w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> float:
    """The mean binary cross-entropy of σ(Xw + b), written from the definition."""
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_logistic_regression_step_is_the_gradient_of_the_mean_bce(rng, assert_gradients_match):
    """Check one step of fit moves w and b by −lr × the numerical gradient of the mean BCE."""
    X, y = rng.normal(size=(8, 3)), rng.integers(0, 2, 8).astype(float)
    w0, b0, lr = rng.normal(size=3), 0.3, 0.1
    model = LogisticRegression(w0, b0)
    losses = model.fit(X, y, epochs=1, lr=lr)
    assert losses[0] == pytest.approx(mean_bce(w0, b0, X, y), rel=1e-12)
    grad_w = (w0 - model.weights) / lr
    grad_b = (b0 - model.bias) / lr
    numeric_w = numerical_gradient(lambda w: mean_bce(w, b0, X, y), w0.copy())
    numeric_b = numerical_gradient(lambda b: mean_bce(w0, b[0], X, y), np.array([b0]))
    assert_gradients_match(grad_w, numeric_w, "dL/dw")
    assert_gradients_match(np.array([grad_b]), numeric_b, "dL/db")
    p = 1.0 / (1.0 + np.exp(-(X @ w0 + b0)))
    np.testing.assert_allclose(grad_w, X.T @ (p - y) / len(y), rtol=1e-10)  # the docstring's formula


def test_logistic_regression_fit_reduces_the_loss_and_separates_the_classes(rng):
    """Check on two separated blobs: the loss falls every step and all predictions are right."""
    X = np.vstack([rng.normal(-2.0, 0.5, (20, 2)), rng.normal(2.0, 0.5, (20, 2))])
    y = np.repeat([0.0, 1.0], 20)
    model = LogisticRegression([0.0, 0.0])
    losses = model.fit(X, y, epochs=200, lr=0.5)
    assert losses[0] == pytest.approx(math.log(2.0), rel=1e-12)  # σ(0) = ½ for every example
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < 0.05
    np.testing.assert_array_equal(model.predict(X), y)
    np.testing.assert_allclose(model.predict_proba(X), model(X))


@pytest.mark.filterwarnings("error")
def test_logistic_regression_loss_is_finite_for_huge_logits():
    """Check the loss uses a stable form: a logit of ±1000 costs 1000, not inf, no warning."""
    model = LogisticRegression([1.0])
    losses = model.fit(np.array([[1000.0], [-1000.0]]), np.array([0.0, 1.0]), epochs=1, lr=1e-6)
    assert losses[0] == 1000.0
