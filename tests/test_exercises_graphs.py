"""The graphs assignment (course/exercises/graphs.py): its catalogue of student
implementations, which tests/test_exercises_contract.py holds to the contract of every
exercise; the checks only this topic has; the random graph descriptions; and the lecture's
numbers the notebook shows.
"""

from __future__ import annotations

import json
import math
import sys
from collections import deque

import numpy as np
import pytest
from test_exercises_contract import Contract, Correct, Delegation, Mistake, Stub, delegating_to, stub_of

import course
from course.exercises import check, decode_outputs, encode_outputs, get
from course.exercises import graphs as X
from course.gradcheck import GradCheckError

GATES = ["graphs.MulGate.backward", "graphs.AddGate.backward", "graphs.MaxGate.backward"]
GATE_CLASSES = [course.graph.MulGate, course.graph.AddGate, course.graph.MaxGate]
EXERCISES = [*GATES, "graphs.Value.ops", "graphs.Value.backward"]


# ----------------------------------------------------------------------------------------
# Gates
# ----------------------------------------------------------------------------------------


class MulGate(course.graph.MulGate):
    def backward(self, dz):
        x, y = self.x, self.y
        return (dz * y, dz * x)


class AddGate(course.graph.AddGate):
    def backward(self, dz):
        return [1.0 * dz, 1.0 * dz]


class MaxGate(course.graph.MaxGate):
    def backward(self, dz):
        x_wins = float(self.x >= self.y)
        return [x_wins * dz, (1.0 - x_wins) * dz]


class MulGateUnswitched(course.graph.MulGate):
    def backward(self, dz):
        return [self.x * dz, self.y * dz]  # each input gets its own value, not the other's


class MulGateSign(course.graph.MulGate):
    def backward(self, dz):
        return [-self.y * dz, -self.x * dz]


class AddGateNoUpstream(course.graph.AddGate):
    def backward(self, dz):
        return [1.0, 1.0]  # the local derivative, not multiplied by dz


class MaxGateToSmaller(course.graph.MaxGate):
    def backward(self, dz):
        return [0.0, dz] if self.x >= self.y else [dz, 0.0]


class MaxGateBoth(course.graph.MaxGate):
    def backward(self, dz):
        return [dz, dz]  # distributes like add instead of routing


# ----------------------------------------------------------------------------------------
# Value: operations. Results are made with type(self), so one-method variants can subclass.
# ----------------------------------------------------------------------------------------


class OpsValue(course.graph.Value):
    def _lift(self, other):
        return other if isinstance(other, course.graph.Value) else type(self)(other)

    def _make(self, data, children, op, local):
        """out with a backward that adds local[k] * out.grad into children[k]."""
        out = type(self)(data, children, op)

        def _backward():
            for child, d in zip(children, local(out), strict=True):
                child.grad += d * out.grad

        out._backward = _backward
        return out

    def __add__(self, other):
        other = self._lift(other)
        return self._make(self.data + other.data, (self, other), "+", lambda out: (1.0, 1.0))

    def __mul__(self, other):
        other = self._lift(other)
        return self._make(self.data * other.data, (self, other), "*", lambda out: (other.data, self.data))

    def __pow__(self, other):
        other = self._lift(other)
        k = other.data
        # k x^(k-1) = k x^k / x; the graphs keep |x| >= 0.5 under **
        return self._make(self.data**k, (self, other), "**", lambda out: (k * out.data / self.data, 0.0))

    def exp(self):
        return self._make(math.exp(self.data), (self,), "exp", lambda out: (math.exp(self.data),))

    def tanh(self):
        return self._make(math.tanh(self.data), (self,), "tanh", lambda out: (1.0 / math.cosh(self.data) ** 2,))

    def sigmoid(self):
        s = 1.0 / (1.0 + math.exp(-self.data))
        return self._make(s, (self,), "σ", lambda out: (s * (1.0 - s),))


class OpsAddOverwrites(OpsValue):
    def __add__(self, other):
        other = self._lift(other)
        out = type(self)(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad = out.grad  # = instead of +=: a second use of self is lost
            other.grad = out.grad

        out._backward = _backward
        return out


class OpsTanhWrong(OpsValue):
    def tanh(self):
        return self._make(math.tanh(self.data), (self,), "tanh", lambda out: (1.0 - out.data,))  # not 1 - t²


class OpsSigmoidWrong(OpsValue):
    def sigmoid(self):
        s = 1.0 / (1.0 + math.exp(-self.data))
        return self._make(s, (self,), "σ", lambda out: (s,))  # σ, not σ(1 − σ)


class OpsPowOffByOne(OpsValue):
    def __pow__(self, other):
        other = self._lift(other)
        k = other.data
        return self._make(self.data**k, (self, other), "**", lambda out: (k * self.data**k, 0.0))  # x^k, not x^(k-1)


class OpsMulForgetsUpstream(OpsValue):
    def __mul__(self, other):
        other = self._lift(other)
        out = type(self)(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data  # forgot * out.grad
            other.grad += self.data

        out._backward = _backward
        return out


class OpsStub(OpsValue):
    def _make(self, data, children, op, local):
        out = type(self)(data, children, op)

        def _backward():
            raise NotImplementedError()

        out._backward = _backward
        return out


class OpsNotOverridden(course.graph.Value):
    """Only _lift: every operation is the library's."""

    @staticmethod
    def _lift(other):
        return other if isinstance(other, course.graph.Value) else OpsNotOverridden(other)


class OpsDelegating(OpsValue):
    def exp(self):
        return course.graph.Value.exp(self)


# ----------------------------------------------------------------------------------------
# Value.backward
# ----------------------------------------------------------------------------------------


class RecursiveBackward(course.graph.Value):
    def backward(self):
        order, visited = [], set()

        def visit(node):
            if id(node) in visited:
                return
            visited.add(id(node))
            for child in node._prev:
                visit(child)
            order.append(node)

        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 10_000))
        try:
            visit(self)
        finally:
            sys.setrecursionlimit(limit)
        self.grad = 1.0
        for node in order[::-1]:
            node._backward()


class KahnBackward(course.graph.Value):
    """Consumers counted first; a node runs once every consumer has run (Kahn's algorithm)."""

    def backward(self):
        consumers, seen, stack = {id(self): 0}, {id(self)}, [self]
        while stack:
            for child in stack.pop()._prev:
                consumers[id(child)] = consumers.get(id(child), 0) + 1
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append(child)
        self.grad = 1.0
        ready = deque([self])
        while ready:
            node = ready.popleft()
            node._backward()
            for child in node._prev:
                consumers[id(child)] -= 1
                if consumers[id(child)] == 0:
                    ready.append(child)


def _topological(root):
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in node._prev)
    return order


class BackwardNotReversed(course.graph.Value):
    def backward(self):
        self.grad = 1.0
        for node in _topological(self):  # inputs first: their gradients are not complete yet
            node._backward()


class BackwardBreadthFirst(course.graph.Value):
    def backward(self):
        order, seen, queue = [], {id(self)}, deque([self])
        while queue:  # level by level from the output: not a topological order
            node = queue.popleft()
            order.append(node)
            for child in node._prev:
                if id(child) not in seen:
                    seen.add(id(child))
                    queue.append(child)
        self.grad = 1.0
        for node in order:
            node._backward()


class BackwardNoSeed(course.graph.Value):
    def backward(self):
        for node in reversed(_topological(self)):
            node._backward()


class BackwardPlainRecursion(course.graph.Value):
    def backward(self):
        order, visited = [], set()

        def visit(node):  # recursion without raising the limit: too deep for 1,200-node chains
            if id(node) not in visited:
                visited.add(id(node))
                for child in node._prev:
                    visit(child)
                order.append(node)

        visit(self)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


class BackwardStub(course.graph.Value):
    def backward(self):
        raise NotImplementedError()


class BackwardDelegating(course.graph.Value):
    def backward(self):
        course.graph.Value.backward(self)


class BackwardLibraryOrder(course.graph.Value):
    def backward(self):
        self.grad = 1.0
        for node in reversed(self.topological_order()):  # the library does the graded part
            node._backward()


# ----------------------------------------------------------------------------------------
# The catalogue (tests/test_exercises_contract.py runs the contract over it)
# ----------------------------------------------------------------------------------------

D_LEAVES = "d(output)/d(leaves)"


CONTRACT = Contract(
    topic="graphs",
    correct=[
        Correct(name, student, seeds=range(20), slow=True)
        for name, student in [
            ("graphs.MulGate.backward", MulGate),
            ("graphs.AddGate.backward", AddGate),
            ("graphs.MaxGate.backward", MaxGate),
            ("graphs.Value.ops", OpsValue),
            ("graphs.Value.backward", RecursiveBackward),
            ("graphs.Value.backward", KahnBackward),
        ]
    ],
    stubs=[
        *(Stub(name, stub_of(gate)) for name, gate in zip(GATES, GATE_CLASSES, strict=True)),
        Stub("graphs.Value.ops", OpsStub),
        Stub("graphs.Value.backward", BackwardStub),
    ],
    # says: in the visible message; hidden_says: in the hidden one
    mistakes=[
        Mistake(
            "graphs.MulGate.backward",
            MulGateUnswitched,
            says=("dx (= dz · ∂z/∂x)", "dy (= dz · ∂z/∂y)"),
            hidden_says=("dx", "dy"),
        ),
        Mistake("graphs.MulGate.backward", MulGateSign, says=("dx", "wrong sign"), hidden_says=("dx",)),
        Mistake("graphs.AddGate.backward", AddGateNoUpstream, says=("dx (= dz · ∂z/∂x)", "dy"), hidden_says=("dx",)),
        Mistake("graphs.MaxGate.backward", MaxGateToSmaller, says=("dx (= dz · ∂z/∂x)", "dy"), hidden_says=("dx",)),
        Mistake("graphs.MaxGate.backward", MaxGateBoth, says=("dx", "dy"), hidden_says=("dx",)),
        Mistake("graphs.Value.ops", OpsAddOverwrites, says=(D_LEAVES, "a graph of + only"), hidden_says=(D_LEAVES,)),
        Mistake("graphs.Value.ops", OpsTanhWrong, says=(D_LEAVES, "a chain of tanh"), hidden_says=(D_LEAVES,)),
        Mistake("graphs.Value.ops", OpsSigmoidWrong, says=(D_LEAVES, "a chain of sigmoid"), hidden_says=(D_LEAVES,)),
        Mistake("graphs.Value.ops", OpsPowOffByOne, says=(D_LEAVES, "a chain of **"), hidden_says=(D_LEAVES,)),
        Mistake(
            "graphs.Value.ops", OpsMulForgetsUpstream, says=(D_LEAVES, "a graph of * only"), hidden_says=(D_LEAVES,)
        ),
        Mistake("graphs.Value.backward", BackwardNotReversed, says=(D_LEAVES, "all zeros"), hidden_says=(D_LEAVES,)),
        Mistake(
            "graphs.Value.backward", BackwardBreadthFirst, says=(D_LEAVES, "shared nodes"), hidden_says=(D_LEAVES,)
        ),
        Mistake("graphs.Value.backward", BackwardNoSeed, says=(D_LEAVES, "all zeros"), hidden_says=(D_LEAVES,)),
        Mistake(
            "graphs.Value.backward",
            BackwardPlainRecursion,
            says=("RecursionError", "deep"),
            hidden_says=("RecursionError", "large graph"),
            shows_expected=False,
        ),
    ],
    # says: the reference the message names
    delegations=[
        *(
            Delegation(name, delegating_to(gate), says=(f"{gate.__name__}.backward",))
            for name, gate in zip(GATES, GATE_CLASSES, strict=True)
        ),
        Delegation("graphs.Value.ops", OpsNotOverridden, says=("Value.__add__",)),
        Delegation("graphs.Value.ops", OpsDelegating, says=("Value.exp",)),
        Delegation("graphs.Value.backward", BackwardDelegating, says=("Value.backward",)),
        Delegation("graphs.Value.backward", BackwardLibraryOrder, says=("Value.topological_order",)),
    ],
)


# ----------------------------------------------------------------------------------------
# Beyond the contract
# ----------------------------------------------------------------------------------------


def test_too_deep_recursion_is_explained_not_taken_for_delegation():
    with pytest.raises(GradCheckError) as failure:
        check("graphs.Value.backward", BackwardPlainRecursion, quiet=True)
    assert "sys.setrecursionlimit" in str(failure.value)
    assert "reference implementation" not in str(failure.value)


def _transported(outputs):
    """Outputs as judge() receives them from the sandbox."""
    return decode_outputs(encode_outputs(outputs))


def test_ops_judge_names_an_operation_the_class_does_not_define():
    """Without traps (as if the profiler were gone), the report of overridden methods still fails."""
    ex = get("graphs.Value.ops")
    for case in ex.cases(np.random.default_rng(0), hidden=False):
        verdict = ex.judge(case, _transported(ex.run(OpsNotOverridden, case)))
        assert not verdict.passed
        assert any("does not define" in p for p in verdict.problems)
    partial = type("OnlyAdd", (OpsNotOverridden,), {"__add__": OpsValue.__add__, "_make": OpsValue._make})
    plus_only = ex.cases(np.random.default_rng(0), hidden=False)[0]
    assert ex.judge(plus_only, _transported(ex.run(partial, plus_only))).passed


def test_backward_exercise_uses_the_library_operations():
    """A Value whose operations are stubs still passes the backward check: the exercises are independent."""
    student = type("BackwardOnly", (OpsStub,), {"backward": KahnBackward.backward})
    check("graphs.Value.backward", student, quiet=True)


def test_ops_exercise_uses_the_library_sweep():
    student = type("OpsOnly", (OpsValue,), {"backward": BackwardStub.backward})
    check("graphs.Value.ops", student, quiet=True)


# ----------------------------------------------------------------------------------------
# Graph descriptions
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXERCISES)
@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "hidden"])
def test_cases_are_plain_data(name, hidden):
    for case in get(name).cases(np.random.default_rng(1), hidden):
        json.dumps(case.config)
        assert all(a.dtype == np.float64 for a in case.arrays.values())


def test_graphs_reuse_nodes_and_reach_every_leaf():
    rng = np.random.default_rng(2)
    leaves, ops = X.random_graph(rng, 4, 30)
    uses = np.zeros(len(leaves) + len(ops), dtype=int)
    for name, i, *rest in ops:
        uses[i] += 1
        if name in X.BINARY:
            uses[rest[0]] += 1
    assert np.all(uses[:-1] >= 1), "every node but the output feeds some operation"
    assert np.any(uses >= 2), "some node is shared"
    root = X.evaluate(ops, leaves, make=course.Value)[-1]
    root.backward()
    assert math.isclose(root.data, X.evaluate(ops, leaves)[-1], rel_tol=1e-12)


def test_float_batch_and_value_evaluations_agree():
    rng = np.random.default_rng(3)
    leaves, ops = X.random_graph(rng, 5, 60)
    on_floats = X.evaluate(ops, leaves)[-1]
    on_values = X.evaluate(ops, leaves, make=course.Value)[-1].data
    batch = X.evaluate_batch(ops, np.stack([leaves, leaves]))
    assert math.isclose(on_floats, on_values, rel_tol=1e-12)
    np.testing.assert_allclose(batch, on_floats, rtol=1e-12)


def test_deep_cases_exceed_the_default_recursion_limit_but_stay_fair():
    visible = get("graphs.Value.backward").cases(np.random.default_rng(4), hidden=False)
    hidden = get("graphs.Value.backward").cases(np.random.default_rng(4), hidden=True)
    chain, large = visible[-1], hidden[-1]
    assert 1000 < X.depth_of(chain.config["ops"], chain.config["n_leaves"]) <= 2000
    assert 1000 < X.depth_of(large.config["ops"], large.config["n_leaves"]) <= 2000
    root = X.evaluate(large.config["ops"], large.arrays["leaves"], make=course.Value)[-1]
    assert len(root.topological_order()) > 15_000


def test_lecture_case_is_the_lectures_graph():
    case = get("graphs.Value.backward").cases(np.random.default_rng(0), hidden=False)[0]
    value, numeric = X.centred_differences(case.config["ops"], case.arrays["leaves"], [0, 1])
    assert value == pytest.approx(6.0)
    np.testing.assert_allclose(numeric, [2.0, 5.0], rtol=1e-9)


# ----------------------------------------------------------------------------------------
# The lecture's numbers, as the notebook shows them (computed with the library)
# ----------------------------------------------------------------------------------------


def test_x_plus_y_times_z_gate_by_gate():
    add, mul = course.graph.AddGate(), course.graph.MulGate()
    q = add.forward(-2.0, 5.0)
    f = mul.forward(q, -4.0)
    dq, dz = mul.backward(1.0)
    dx, dy = add.backward(dq)
    assert (q, f, dq, dz, dx, dy) == (3.0, -12.0, -4.0, 3.0, -4.0, -4.0)


def test_x_plus_y_times_z_with_value():
    x, y, z = course.Value(-2.0), course.Value(5.0), course.Value(-4.0)
    f = (x + y) * z
    f.backward()
    assert (f.data, x.grad, y.grad, z.grad) == (-12.0, -4.0, -4.0, 3.0)


def test_gradients_add_at_branches():
    a, b = course.Value(2.0), course.Value(1.0)
    c, d = a + b, b + 1
    e = c * d
    e.backward()
    assert (c.data, d.data, e.data) == (3.0, 2.0, 6.0)
    assert (a.grad, b.grad) == (2.0, 5.0)
    assert b.grad == d.data * 1 + c.data * 1  # the sum over the two paths


def _neuron_grads(f, w, x):
    f.backward()
    return f.data, [v.grad for v in w], [v.grad for v in x]


@pytest.mark.parametrize("gates", ["primitive", "sigmoid"])
def test_sigmoid_neuron(gates):
    w = [course.Value(v) for v in (2.0, -3.0, -3.0)]
    x = [course.Value(v) for v in (-1.0, -2.0)]
    z = w[0] * x[0] + w[1] * x[1] + w[2]
    f = (1 + (-z).exp()) ** -1 if gates == "primitive" else z.sigmoid()
    out, gw, gx = _neuron_grads(f, w, x)
    assert round(out, 2) == 0.73
    np.testing.assert_allclose(np.round(gw, 2), [-0.20, -0.39, 0.20])
    np.testing.assert_allclose(np.round(gx, 2), [0.39, -0.59])
    s = 1.0 / (1.0 + math.exp(-1.0))  # z = 1 at these numbers
    np.testing.assert_allclose(gw, [-s * (1 - s), -2 * s * (1 - s), s * (1 - s)], rtol=1e-12)
    if gates == "primitive":  # the notebook's count of multiply-adds: one per edge
        assert sum(len(v._prev) for v in f.topological_order()) == 15


def test_sigmoid_neuron_with_gates():
    mul0, mul1, add0, add1 = (
        course.graph.MulGate(),
        course.graph.MulGate(),
        course.graph.AddGate(),
        course.graph.AddGate(),
    )
    neg, exp, plus1, recip = (
        course.graph.ScaleGate(-1.0),
        course.graph.ExpGate(),
        course.graph.AddConstGate(1.0),
        course.graph.ReciprocalGate(),
    )
    z = add1.forward(add0.forward(mul0.forward(2.0, -1.0), mul1.forward(-3.0, -2.0)), -3.0)
    out = recip.forward(plus1.forward(exp.forward(neg.forward(z))))
    d_z = neg.backward(exp.backward(plus1.backward(recip.backward(1.0))))
    sigmoid = course.graph.SigmoidGate()
    assert sigmoid.forward(z) == pytest.approx(out, rel=1e-15)
    assert sigmoid.backward(1.0) == pytest.approx(d_z, rel=1e-12)
    assert (round(recip.backward(1.0), 2), round(d_z, 2)) == (-0.53, 0.20)
    d_sum, d_w2 = add1.backward(d_z)
    d_w0, d_x0 = mul0.backward(add0.backward(d_sum)[0])
    d_w1, d_x1 = mul1.backward(add0.backward(d_sum)[1])
    np.testing.assert_allclose(np.round([d_w0, d_w1, d_w2, d_x0, d_x1], 2), [-0.20, -0.39, 0.20, 0.39, -0.59])


def test_backward_flow_patterns():
    """f = 2 (x y + max(z, w)) at x = 3, y = -4, z = 2, w = -1: add distributes, max routes,
    mul switches."""
    mul, mx = course.graph.MulGate(), course.graph.MaxGate()
    add, scale = course.graph.AddGate(), course.graph.ScaleGate(2.0)
    f = scale.forward(add.forward(mul.forward(3.0, -4.0), mx.forward(2.0, -1.0)))
    d_sum = scale.backward(1.0)
    d_q, d_m = add.backward(d_sum)
    assert (f, d_q, d_m) == (-20.0, 2.0, 2.0)
    assert mx.backward(d_m) == [2.0, 0.0]
    assert mul.backward(d_q) == [-8.0, 6.0]
