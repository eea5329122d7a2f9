"""Tests for course.layers: Parameter, every layer's forward against an independent numpy
expression and its backward against centred differences, gradient accumulation, and the
error messages a student sees when shapes do not fit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from course.gradcheck import numerical_gradient
from course.layers import (
    ELU,
    LeakyReLU,
    Linear,
    LinearSigmoid,
    Maxout,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def affine(x, W, b=None):
    """Σ_d x[n, d] W[d, m] (+ b[m]), written as an einsum rather than the library's @."""
    z = np.einsum("nd,dm->nm", x, W)
    return z if b is None else z + b[None, :]


# name -> (make(D, M, rng), reference(layer, x)): one catalogue drives every test below.
# Elementwise layers ignore M (their output has the input's shape).
CATALOGUE = {
    "Linear": (
        lambda d, m, rng: Linear(d, m, rng=rng),
        lambda layer, x: affine(x, layer.W.data, layer.b.data),
    ),
    "Sigmoid": (lambda d, m, rng: Sigmoid(), lambda layer, x: sigmoid(x)),
    "Tanh": (
        lambda d, m, rng: Tanh(),
        lambda layer, x: (np.exp(2 * x) - 1) / (np.exp(2 * x) + 1),
    ),
    "ReLU": (lambda d, m, rng: ReLU(), lambda layer, x: x * (x > 0)),
    "LeakyReLU": (lambda d, m, rng: LeakyReLU(), lambda layer, x: np.maximum(0.1 * x, x)),
    "LeakyReLU(0.25)": (lambda d, m, rng: LeakyReLU(0.25), lambda layer, x: np.maximum(0.25 * x, x)),
    "ELU": (lambda d, m, rng: ELU(), lambda layer, x: np.where(x > 0, x, np.exp(x) - 1)),
    "ELU(0.7)": (lambda d, m, rng: ELU(0.7), lambda layer, x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1))),
    # The lecture's max(w1ᵀx + b1, w2ᵀx + b2), with k pieces.
    "Maxout(k=2)": (
        lambda d, m, rng: Maxout(d, m, k=2, rng=rng),
        lambda layer, x: np.maximum(
            affine(x, layer.W.data[0], layer.b.data[0]), affine(x, layer.W.data[1], layer.b.data[1])
        ),
    ),
    "Maxout(k=3)": (
        lambda d, m, rng: Maxout(d, m, k=3, rng=rng),
        lambda layer, x: np.max([affine(x, W, b) for W, b in zip(layer.W.data, layer.b.data, strict=True)], 0),
    ),
    "LinearSigmoid": (
        lambda d, m, rng: LinearSigmoid(d, m, rng=rng),
        lambda layer, x: sigmoid(affine(x, layer.W.data)),
    ),
    "LinearSigmoid(bias)": (
        lambda d, m, rng: LinearSigmoid(d, m, bias=True, rng=rng),
        lambda layer, x: sigmoid(affine(x, layer.W.data, layer.b.data)),
    ),
    "Sequential": (
        lambda d, m, rng: Sequential(Linear(d, 3, rng=rng), Tanh(), Linear(3, m, rng=rng), Sigmoid()),
        lambda net, x: sigmoid(affine(np.tanh(affine(x, net[0].W.data, net[0].b.data)), net[2].W.data, net[2].b.data)),
    ),
}
NAMES = list(CATALOGUE)
WITH_PARAMETERS = [n for n in NAMES if n.startswith(("Linear", "Maxout", "Sequential"))]


def build(name: str, d: int, m: int, rng: np.random.Generator):
    """The layer, with every parameter (biases too) set to random values so that all count.

    N(0, 0.5²) keeps sigmoid and tanh out of saturation, where gradients of 1e-6 would drown
    in the round-off of the centred difference.
    """
    layer = CATALOGUE[name][0](d, m, rng)
    for p in layer.parameters():
        p.data[...] = rng.normal(0.0, 0.5, size=p.shape)
    return layer


def draw_input(layer, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """An (n, d) input with 0.05 <= |x| <= 1.5, so that no ReLU-family input sits near its kink;
    for Maxout, redrawn until the best piece beats the runner-up by more than 1e-3 everywhere,
    so that a step of 1e-5 never changes which piece wins."""
    while True:
        x = rng.uniform(0.05, 1.5, (n, d)) * rng.choice([-1.0, 1.0], (n, d))
        if not isinstance(layer, Maxout):
            return x
        z = np.sort(np.einsum("nd,kdm->nkm", x, layer.W.data) + layer.b.data, axis=1)
        if np.min(z[:, -1] - z[:, -2]) > 1e-3:
            return x


sizes = st.integers(1, 4)


@pytest.mark.parametrize("name", NAMES)
@given(n=sizes, d=sizes, m=sizes, seed=st.integers(0, 2**32 - 1))
def test_forward_matches_independent_numpy_expression(name, n, d, m, seed):
    """Check the forward pass against the formula written independently with numpy."""
    rng = np.random.default_rng(seed)
    layer = build(name, d, m, rng)
    x = draw_input(layer, n, d, rng)
    y = layer.forward(x)
    expected = CATALOGUE[name][1](layer, x)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(layer(x), y)  # calling the layer is forward


@pytest.mark.parametrize("name", NAMES)
@given(n=sizes, d=sizes, m=sizes, seed=st.integers(0, 2**32 - 1))
def test_backward_matches_centred_differences(name, n, d, m, seed, assert_gradients_match, well_conditioned):
    """Check dL/dx and every dL/dp against centred differences of sum(forward(x) * grad_out)."""
    rng = np.random.default_rng(seed)
    layer = build(name, d, m, rng)
    x = draw_input(layer, n, d, rng)
    grad_out = rng.normal(size=layer.forward(x).shape)

    numeric_x = numerical_gradient(layer.forward, x.copy(), grad_out)
    numeric_p = [numerical_gradient(lambda _: layer.forward(x), p.data, grad_out) for p in layer.parameters()]
    assume(all(well_conditioned(g) for g in [numeric_x, *numeric_p]))

    layer.zero_grad()
    layer.forward(x)
    grad_x = layer.backward(grad_out)
    assert_gradients_match(grad_x, numeric_x, f"{name}: dL/dx")
    for i, (p, numeric) in enumerate(zip(layer.parameters(), numeric_p, strict=True)):
        assert_gradients_match(p.grad, numeric, f"{name}: dL/d{p.name or i}")


@pytest.mark.parametrize("name", WITH_PARAMETERS)
def test_parameter_gradients_accumulate_until_zero_grad(name, rng):
    """Check that two backward calls add up to twice the gradient and zero_grad() clears it."""
    layer = build(name, 3, 2, rng)
    x = draw_input(layer, 4, 3, rng)
    grad_out = rng.normal(size=layer.forward(x).shape)
    layer.zero_grad()
    dx1 = layer.backward(grad_out)
    once = [p.grad.copy() for p in layer.parameters()]
    assert all(np.any(g != 0) for g in once)
    dx2 = layer.backward(grad_out)
    np.testing.assert_array_equal(dx2, dx1)  # the input gradient is returned, not accumulated
    for p, g in zip(layer.parameters(), once, strict=True):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-14, atol=0, err_msg=f"{name}.{p.name}")
    layer.zero_grad()
    for p in layer.parameters():
        np.testing.assert_array_equal(p.grad, np.zeros(p.shape))


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_leave_their_arguments_unchanged(name, rng):
    """Check that neither x nor grad_out is modified in place."""
    layer = build(name, 3, 2, rng)
    x = draw_input(layer, 4, 3, rng)
    x_before = x.copy()
    grad_out = rng.normal(size=layer.forward(x).shape)
    grad_out_before = grad_out.copy()
    layer.backward(grad_out)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(grad_out, grad_out_before)


@pytest.mark.parametrize("name", NAMES)
def test_backward_before_forward_raises_runtime_error(name, rng):
    """Check that backward() on a fresh layer says to run forward first."""
    layer = build(name, 3, 2, rng)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones((4, 2)))


@pytest.mark.parametrize("name", NAMES)
def test_grad_out_of_the_wrong_shape_raises_value_error(name, rng):
    """Check that grad_out must have exactly the output's shape: no broadcasting."""
    layer = build(name, 3, 2, rng)
    out_shape = layer.forward(draw_input(layer, 4, 3, rng)).shape
    n, m = out_shape
    for bad in [(n, m + 1), (n + 1, m), (m, n) if m != n else (n * m,), (n * m,), (1, m)]:
        if bad == out_shape:
            continue
        with pytest.raises(ValueError, match=r"grad_out") as info:
            layer.backward(np.ones(bad))
        assert str(out_shape) in str(info.value) and str(bad) in str(info.value)


@pytest.mark.parametrize("layer_cls", [Sigmoid, Tanh, ReLU, LeakyReLU, ELU])
def test_elementwise_layers_accept_any_input_shape(layer_cls, rng, assert_gradients_match):
    """Check activations on a 3-d input: same shape out, backward against centred differences."""
    layer = layer_cls()
    x = rng.uniform(0.05, 2.0, (2, 3, 4)) * rng.choice([-1.0, 1.0], (2, 3, 4))
    grad_out = rng.normal(size=x.shape)
    assert layer.forward(x).shape == x.shape
    numeric = numerical_gradient(layer.forward, x.copy(), grad_out)
    layer.forward(x)
    assert_gradients_match(layer.backward(grad_out), numeric, f"{layer_cls.__name__}: dL/dx")


# -- Parameter ----------------------------------------------------------------------------


def test_parameter_holds_a_float64_copy_and_a_zero_gradient_of_its_shape():
    """Check .data is a float64 copy (not a view of the caller's array) and .grad zeros."""
    source = np.array([[1, 2, 3], [4, 5, 6]])
    p = Parameter(source, name="W")
    assert p.data.dtype == np.float64 and p.grad.dtype == np.float64
    assert p.shape == (2, 3) and p.grad.shape == (2, 3) and p.name == "W"
    np.testing.assert_array_equal(p.data, source)
    np.testing.assert_array_equal(p.grad, np.zeros((2, 3)))
    source[0, 0] = 100
    assert p.data[0, 0] == 1.0
    floats = np.ones(3)
    assert not np.shares_memory(Parameter(floats).data, floats)


def test_parameter_zero_grad_clears_in_place():
    """Check zero_grad() zeroes the existing .grad array, which others may hold a reference to."""
    p = Parameter(np.ones(4))
    grad = p.grad
    grad += 3.0
    p.zero_grad()
    assert p.grad is grad
    np.testing.assert_array_equal(grad, np.zeros(4))


# -- shapes, initialisation and parameters --------------------------------------------------


def test_linear_has_weights_in_by_out_and_a_zero_bias():
    """Check W has shape (in, out), b shape (out,) starting at 0, in that parameter order."""
    layer = Linear(3, 5, rng=0)
    assert layer.W.shape == (3, 5) and layer.b.shape == (5,)
    np.testing.assert_array_equal(layer.b.data, np.zeros(5))
    assert layer.parameters() == [layer.W, layer.b]
    assert layer.forward(np.ones((7, 3))).shape == (7, 5)


def test_linear_weights_are_he_initialised():
    """Check W ~ N(0, 2/D): on 200 × 500 draws the sample std is within 2% of sqrt(2/D)."""
    W = Linear(200, 500, rng=1).W.data
    assert abs(W.std() - np.sqrt(2 / 200)) < 0.02 * np.sqrt(2 / 200)
    assert abs(W.mean()) < 0.01 * np.sqrt(2 / 200)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: Linear(3, 4, rng=rng),
        lambda rng: Maxout(3, 4, k=2, rng=rng),
        lambda rng: LinearSigmoid(3, 4, rng=rng),
    ],
    ids=["Linear", "Maxout", "LinearSigmoid"],
)
def test_rng_seeds_the_initial_weights_reproducibly(make):
    """Check the same seed gives the same weights, another seed or a shared Generator others."""
    np.testing.assert_array_equal(make(7).W.data, make(7).W.data)
    assert not np.array_equal(make(7).W.data, make(8).W.data)
    np.testing.assert_array_equal(make(np.random.default_rng(7)).W.data, make(7).W.data)
    shared = np.random.default_rng(7)
    assert not np.array_equal(make(shared).W.data, make(shared).W.data)


def test_maxout_has_one_weight_matrix_and_bias_per_piece():
    """Check W (k, D, M) and b (k, M)."""
    layer = Maxout(3, 4, k=5, rng=0)
    assert layer.W.shape == (5, 3, 4) and layer.b.shape == (5, 4)
    assert layer.parameters() == [layer.W, layer.b]


def test_linear_sigmoid_has_a_bias_only_when_asked():
    """Check LinearSigmoid without bias is the lecture's layer: W (D, M) is its only parameter."""
    plain, biased = LinearSigmoid(2, 3, rng=0), LinearSigmoid(2, 3, bias=True, rng=0)
    assert plain.parameters() == [plain.W] and plain.W.shape == (2, 3)
    assert biased.parameters() == [biased.W, biased.b] and biased.b.shape == (3,)


def test_sequential_parameters_come_in_layer_order():
    """Check parameters() lists each layer's parameters, first layer first, the objects themselves."""
    a, b = Linear(2, 3, rng=0), Linear(3, 1, rng=1)
    net = Sequential(a, ReLU(), b)
    params = net.parameters()
    assert len(params) == 4
    assert all(p is q for p, q in zip(params, [a.W, a.b, b.W, b.b], strict=True))
    assert len(net) == 3 and net[0] is a and list(net)[2] is b


def test_sequential_zero_grad_reaches_every_layer(rng):
    """Check that zero_grad on the container clears the gradients of the layers inside it."""
    net = Sequential(Linear(2, 3, rng=0), Tanh(), Linear(3, 1, rng=1))
    net.forward(rng.normal(size=(4, 2)))
    net.backward(np.ones((4, 1)))
    assert all(np.any(p.grad != 0) for p in net.parameters())
    net.zero_grad()
    assert all(np.all(p.grad == 0) for p in net.parameters())


def test_sequential_rejects_something_that_is_not_a_layer():
    """Check Sequential(Linear, a function) raises TypeError naming the item."""
    with pytest.raises(TypeError, match="item 1"):
        Sequential(Linear(2, 2), np.tanh)


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda: Linear(0, 3), "positive"), (lambda: Linear(3, 0), "positive"), (lambda: Maxout(3, 2, k=0), "k=0")],
)
def test_impossible_sizes_raise_value_error(make, message):
    """Check that a layer with no inputs, no outputs or no pieces is refused at construction."""
    with pytest.raises(ValueError, match=message):
        make()


# -- error messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "name"),
    [
        (Linear(3, 4, rng=0), "Linear(3, 4)"),
        (LinearSigmoid(3, 4, rng=0), "LinearSigmoid(3, 4)"),
        (Maxout(3, 4, k=2, rng=0), "Maxout(3, 4, k=2)"),
    ],
)
@pytest.mark.parametrize("shape", [(5, 2), (5, 4), (3,), (2, 5, 3), (3, 5)])
def test_input_of_the_wrong_shape_names_the_layer_and_both_shapes(layer, name, shape):
    """Check the ValueError names the layer, the expected (N, 3) and the shape it was given.

    (3,) is the silent-broadcasting trap: one example without its batch axis.
    """
    with pytest.raises(ValueError) as info:
        layer.forward(np.ones(shape))
    message = str(info.value)
    assert name in message and "(N, 3)" in message and str(shape) in message


def test_sequential_shape_error_names_the_inner_layer_that_failed():
    """Check that a mismatch between two layers points at the second layer and its input."""
    net = Sequential(Linear(3, 4, rng=0), ReLU(), Linear(5, 2, rng=1))
    with pytest.raises(ValueError) as info:
        net.forward(np.ones((2, 3)))
    message = str(info.value)
    assert "Linear(5, 2)" in message and "(N, 5)" in message and "(2, 4)" in message


def test_linear_without_input_grad_skips_dx_but_keeps_parameter_gradients(rng):
    """Check Linear(..., input_grad=False): backward returns None, W.grad and b.grad unchanged."""
    x, grad_out = rng.normal(size=(5, 3)), rng.normal(size=(5, 4))
    full, first = Linear(3, 4, rng=7), Linear(3, 4, rng=7, input_grad=False)
    full.forward(x)
    first.forward(x)
    assert full.backward(grad_out) is not None
    assert first.backward(grad_out) is None
    np.testing.assert_array_equal(first.W.grad, full.W.grad)
    np.testing.assert_array_equal(first.b.grad, full.b.grad)
    np.testing.assert_allclose(first.W.grad, x.T @ grad_out, rtol=1e-12)
