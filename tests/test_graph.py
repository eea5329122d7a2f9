"""Tests for course.graph: every Value operation's value and gradient against the same
expression on floats and its centred differences; gradients adding at branches; deep graphs;
and the gates' forward/backward against the lectures' table of local derivatives."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from course.gradcheck import numerical_gradient
from course.graph import (
    AddConstGate,
    AddGate,
    ExpGate,
    MaxGate,
    MulGate,
    ReciprocalGate,
    ScaleGate,
    SigmoidGate,
    Value,
)


def magnitudes(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high).flatmap(lambda m: st.sampled_from([m, -m]))


# Domains: everything stays where the derivative exists and is well above round-off. Exact 0
# is kept, but not 1e-300: a derivative proportional to an input that small is lost in the
# rounding of x ± h (2 ** (1 ± h) - 1 rounds to 0 for tiny exponents, for instance).
anywhere = st.just(0.0) | magnitudes(1e-3, 3.0)
away_from_zero = magnitudes(0.5, 3.0)
positive = st.floats(0.1, 5.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# name -> (operation on a Value, the same operation on a float, domain of the input).
# For the arithmetic operators one lambda serves both, as in minitorch's test catalogue.
UNARY = {
    "-a": (lambda a: -a, None, anywhere),
    "a + 3": (lambda a: a + 3, None, anywhere),
    "3 + a": (lambda a: 3 + a, None, anywhere),
    "a - 2.5": (lambda a: a - 2.5, None, anywhere),
    "2.5 - a": (lambda a: 2.5 - a, None, anywhere),
    "a * 1.5": (lambda a: a * 1.5, None, anywhere),
    "-1.5 * a": (lambda a: -1.5 * a, None, anywhere),
    "a / 4": (lambda a: a / 4, None, anywhere),
    "4 / a": (lambda a: 4 / a, None, away_from_zero),
    "a ** 3": (lambda a: a**3, None, away_from_zero),
    "a ** -2": (lambda a: a**-2, None, away_from_zero),
    "2 ** a": (lambda a: 2**a, None, anywhere),
    "exp": (lambda a: a.exp(), math.exp, anywhere),
    "log": (lambda a: a.log(), math.log, positive),
    "tanh": (lambda a: a.tanh(), math.tanh, anywhere),
    "sigmoid": (lambda a: a.sigmoid(), _sigmoid, anywhere),
    "relu": (lambda a: a.relu(), lambda a: max(a, 0.0), away_from_zero),
    "a * a (a used twice)": (lambda a: a * a, None, anywhere),
    "a + a (a used twice)": (lambda a: a + a, None, anywhere),
    "a * a * a": (lambda a: a * a * a, None, away_from_zero),
}

BINARY = {
    "a + b": (lambda a, b: a + b, None, anywhere, anywhere),
    "a - b": (lambda a, b: a - b, None, anywhere, anywhere),
    "a * b": (lambda a, b: a * b, None, anywhere, anywhere),
    "a / b": (lambda a, b: a / b, None, anywhere, away_from_zero),
    "a ** b": (lambda a, b: a**b, None, positive, st.just(0.0) | magnitudes(1e-3, 2.0)),
    # The lecture's toy graph: c = a + b, d = b + 1, e = c·d; b reaches e along two paths.
    "(a + b)(b + 1)": (lambda a, b: (a + b) * (b + 1), None, anywhere, anywhere),
    "tanh(a·b + exp(a)) / (1 + b²)": (
        lambda a, b: (a * b + a.exp()).tanh() / (1 + b**2),
        lambda a, b: math.tanh(a * b + math.exp(a)) / (1 + b**2),
        st.just(0.0) | st.floats(-2.0, -1e-3) | st.floats(1e-3, 0.5),
        anywhere,
    ),
}


def check_against_floats(op, float_op, inputs: list[float], assert_gradients_match, well_conditioned) -> None:
    float_op = float_op or op
    numeric = numerical_gradient(lambda v: float_op(*v), np.array(inputs, dtype=np.float64))
    assume(well_conditioned(numeric))
    values = [Value(v) for v in inputs]
    out = op(*values)
    assert isinstance(out, Value)
    assert out.data == pytest.approx(float_op(*inputs), rel=1e-12, abs=1e-12)
    out.backward()
    assert_gradients_match(np.array([v.grad for v in values]), numeric, "d out / d inputs")


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_operation_value_and_gradient(name, data, assert_gradients_match, well_conditioned):
    """Check the value against the float expression and .grad against its centred difference."""
    op, float_op, domain = UNARY[name]
    check_against_floats(op, float_op, [data.draw(domain, label="a")], assert_gradients_match, well_conditioned)


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_operation_value_and_gradients(name, data, assert_gradients_match, well_conditioned):
    """Check both inputs' gradients, including a Value on both sides of each operator."""
    op, float_op, domain_a, domain_b = BINARY[name]
    inputs = [data.draw(domain_a, label="a"), data.draw(domain_b, label="b")]
    check_against_floats(op, float_op, inputs, assert_gradients_match, well_conditioned)


def test_gradients_add_at_branches_in_the_lecture_graph():
    """Check e = (a + b)(b + 1) at a = 2, b = 1: de/da = d = 2, de/db = d + c = 2 + 3."""
    a, b = Value(2.0), Value(1.0)
    c, d = a + b, b + 1
    e = c * d
    e.backward()
    assert (e.data, a.grad, b.grad, c.grad, d.grad) == (6.0, 2.0, 5.0, 2.0, 3.0)


def test_a_deep_chain_does_not_hit_the_recursion_limit():
    """Check backward through 5000+ nodes (more than the recursion limit) is exact."""
    depth = max(5000, 2 * sys.getrecursionlimit())
    x = Value(0.5)
    y = x
    for _ in range(depth):
        y = y + 0.001
    y.backward()
    assert x.grad == 1.0
    assert y.data == pytest.approx(0.5 + depth * 0.001, rel=1e-12)
    assert len(y.topological_order()) == 2 * depth + 1  # x, and a constant and a sum per step


def test_topological_order_puts_every_input_before_its_outputs():
    """Check each node appears once, after the nodes it was computed from, the output last."""
    a, b = Value(2.0, label="a"), Value(1.0, label="b")
    c = a + b
    d = b + 1
    e = c * d
    order = e.topological_order()
    position = {id(node): i for i, node in enumerate(order)}
    assert len(order) == len(position) == 6  # a, b, c, the constant 1, d, e
    assert order[-1] is e
    for before, after in [(a, c), (b, c), (b, d), (c, e), (d, e)]:
        assert position[id(before)] < position[id(after)]


def test_zero_grad_clears_every_node_and_backward_can_start_over():
    """Check zero_grad() zeroes the whole graph, after which backward gives the same gradients."""
    a, b = Value(-1.5), Value(0.5)
    c = (a * b).tanh() + a
    c.backward()
    first = (a.grad, b.grad)
    c.zero_grad()
    assert all(node.grad == 0.0 for node in c.topological_order())
    c.backward()
    assert (a.grad, b.grad) == first


def test_a_second_backward_accumulates_into_the_inputs_only():
    """Check the documented accumulation, as in PyTorch: two backward() calls leave twice
    de/da in the inputs, while an intermediate node gets its gradient afresh."""
    a, b = Value(2.0), Value(1.0)
    c = a + b
    e = c * (b + 1)
    e.backward()
    e.backward()
    assert (a.grad, b.grad) == (4.0, 10.0)
    assert c.grad == 2.0


def test_value_refuses_to_wrap_a_value_and_log_of_non_positive():
    """Check the two guards: Value(Value(1)) and log(0)."""
    with pytest.raises(TypeError):
        Value(Value(1.0))
    with pytest.raises(ValueError, match="positive"):
        Value(0.0).log()


def test_numpy_scalars_combine_with_values():
    """Check np.float64 * Value is a Value in the graph (numpy defers to Value's operators)."""
    a = Value(3.0)
    out = np.float64(2.0) * a + np.float64(1.0)
    assert isinstance(out, Value) and out.data == 7.0
    out.backward()
    assert a.grad == 2.0


# -- gates -----------------------------------------------------------------------------------

# name -> (make, forward formula, local derivatives ∂z/∂input, one per input): the table
# of lecture 2 (e^x, a, −1/x², 1) plus add, mul, max and σ.
GATES = {
    "AddGate": (AddGate, lambda x, y: x + y, lambda x, y: [1.0, 1.0]),
    "MulGate": (MulGate, lambda x, y: x * y, lambda x, y: [y, x]),
    "MaxGate": (MaxGate, max, lambda x, y: [float(x >= y), float(x < y)]),
    "ExpGate": (ExpGate, math.exp, lambda x: [math.exp(x)]),
    "ScaleGate(-1)": (lambda: ScaleGate(-1.0), lambda x: -x, lambda x: [-1.0]),
    "ScaleGate(2.5)": (lambda: ScaleGate(2.5), lambda x: 2.5 * x, lambda x: [2.5]),
    "AddConstGate(1)": (lambda: AddConstGate(1.0), lambda x: 1.0 + x, lambda x: [1.0]),
    "ReciprocalGate": (ReciprocalGate, lambda x: 1.0 / x, lambda x: [-1.0 / x**2]),
    "SigmoidGate": (SigmoidGate, _sigmoid, lambda x: [_sigmoid(x) * (1 - _sigmoid(x))]),
}


def arity(name: str) -> int:
    return 2 if name in ("AddGate", "MulGate", "MaxGate") else 1


def as_list(grads) -> list[float]:
    return list(grads) if isinstance(grads, list) else [grads]


@pytest.mark.parametrize("name", list(GATES))
@given(inputs=st.lists(away_from_zero, min_size=2, max_size=2), dz=st.floats(-3.0, 3.0))
def test_gate_forward_and_backward_follow_the_local_derivative_table(name, inputs, dz, assert_gradients_match):
    """Check z = f(inputs) and backward(dz) = dz · ∂z/∂input, also against centred differences."""
    make, formula, local = GATES[name]
    inputs = inputs[: arity(name)]
    if name == "MaxGate" and abs(inputs[0] - inputs[1]) < 1e-3:
        inputs[1] = inputs[0] + 0.5  # keep away from the tie, where max has no derivative
    gate = make()
    assert gate.forward(*inputs) == pytest.approx(formula(*inputs), rel=1e-15)
    grads = as_list(gate.backward(dz))
    assert len(grads) == len(inputs)
    for got, d in zip(grads, local(*inputs), strict=True):
        assert got == pytest.approx(dz * d, rel=1e-14, abs=1e-300)
    numeric = numerical_gradient(lambda v: make().forward(*v), np.array(inputs), grad_out=dz)
    assert_gradients_match(np.array(as_list(gate.backward(1.0))) * dz, numeric, f"{name} backward")


@pytest.mark.parametrize("name", list(GATES))
def test_gate_backward_uses_the_latest_forward(name):
    """Check that a gate reused for a second forward differentiates at the second input."""
    make, _, local = GATES[name]
    first, second = [0.7, -1.3][: arity(name)], [-2.0, 1.5][: arity(name)]
    gate = make()
    gate.forward(*first)
    gate.forward(*second)
    assert as_list(gate.backward(1.0)) == pytest.approx(local(*second), rel=1e-14)


@pytest.mark.parametrize("name", list(GATES))
def test_gate_backward_before_forward_raises_runtime_error(name):
    """Check a fresh gate refuses backward() and says forward() must come first."""
    with pytest.raises(RuntimeError, match="forward"):
        GATES[name][0]().backward(1.0)


def test_max_gate_routes_a_tie_to_x():
    """Check the gradient router: on x == y all of dz goes to x, none to y."""
    gate = MaxGate()
    assert gate.forward(2.0, 2.0) == 2.0
    assert gate.backward(5.0) == [5.0, 0.0]
    gate.forward(1.0, 3.0)
    assert gate.backward(5.0) == [0.0, 5.0]
