"""Scalar computational graphs: gates with forward/backward, and an autograd ``Value``.

``Value`` records every operation that produced it; ``backward()`` visits the graph in
reverse topological order and applies the chain rule at each node. Each operation's
forward and its local backward sit side by side, a few lines each (as in micrograd).
Gradients are *added* (``+=``), so a value used twice receives both contributions:
gradients add at branches.

The gates reproduce the lecture's ``forward(x, y)`` / ``backward(dz)`` API for single
operations, so the (x + y) z example can be worked gate by gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = [
    "AddConstGate",
    "AddGate",
    "ExpGate",
    "Gate",
    "MaxGate",
    "MulGate",
    "ReciprocalGate",
    "ScaleGate",
    "SigmoidGate",
    "Value",
]

Number = int | float


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class Value:
    """A scalar in a computational graph.

    ``data`` is the number computed by the forward pass, ``grad`` is dL/d(this value)
    after ``L.backward()``. ``label`` names the node in drawings (:func:`course.plot.draw_graph`).
    """

    __array_priority__ = 1000  # make ``ndarray * Value`` defer to Value's reflected ops

    def __init__(self, data: Number, _children: tuple[Value, ...] = (), _op: str = "", label: str = "") -> None:
        if isinstance(data, Value):
            raise TypeError("Value(...) takes a number; the argument is already a Value")
        self.data = float(data)
        self.grad = 0.0
        self._prev = tuple(_children)
        self._op = _op
        self.label = label
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"

    @staticmethod
    def _lift(other: Value | Number) -> Value:
        return other if isinstance(other, Value) else Value(other)

    # -- binary operations ----------------------------------------------------------------

    def __add__(self, other: Value | Number) -> Value:
        other = self._lift(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward() -> None:  # add distributes the upstream gradient unchanged
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: Value | Number) -> Value:
        other = self._lift(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward() -> None:  # mul switches: each input gets the other's value
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other: Value | Number) -> Value:
        other = self._lift(other)
        out = Value(self.data**other.data, (self, other), "**")

        def _backward() -> None:
            self.grad += other.data * self.data ** (other.data - 1) * out.grad
            if self.data > 0:  # d/dy x^y = x^y ln x, defined for x > 0
                other.grad += out.data * math.log(self.data) * out.grad

        out._backward = _backward
        return out

    def __rpow__(self, other: Number) -> Value:
        return self._lift(other) ** self

    def __neg__(self) -> Value:
        return self * -1

    def __radd__(self, other: Number) -> Value:
        return self + other

    def __sub__(self, other: Value | Number) -> Value:
        return self + (-self._lift(other))

    def __rsub__(self, other: Number) -> Value:
        return self._lift(other) - self

    def __rmul__(self, other: Number) -> Value:
        return self * other

    def __truediv__(self, other: Value | Number) -> Value:
        return self * self._lift(other) ** -1

    def __rtruediv__(self, other: Number) -> Value:
        return self._lift(other) * self**-1

    # -- unary operations -----------------------------------------------------------------

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward() -> None:  # (e^x)' = e^x, which is the output itself
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log is defined for positive numbers, got {self.data}")
        out = Value(math.log(self.data), (self,), "log")

        def _backward() -> None:
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward() -> None:
            self.grad += (1.0 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        out = Value(_sigmoid(self.data), (self,), "σ")

        def _backward() -> None:  # σ' = σ (1 − σ): a whole sub-graph collapsed into one gate
            self.grad += out.data * (1.0 - out.data) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(max(self.data, 0.0), (self,), "ReLU")

        def _backward() -> None:
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    # -- the backward pass ----------------------------------------------------------------

    def topological_order(self) -> list[Value]:
        """Every node this value depends on, each after all of its inputs (self last)."""
        order: list[Value] = []
        seen: set[int] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:  # iterative depth-first search: deep graphs do not hit the recursion limit
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev if id(child) not in seen)
        return order

    def backward(self) -> None:
        """Fill ``.grad`` of every node with d(self)/d(node).

        Seeds d(self)/d(self) = 1 and runs each node's local backward in reverse
        topological order, so a node's gradient is complete before it is passed on.
        As in PyTorch, the gradients of the inputs (leaves) accumulate across calls until
        ``zero_grad()``, while intermediate nodes get their gradient afresh each time.
        """
        order = self.topological_order()
        for node in order:
            if node._prev:  # an intermediate result: its gradient is recomputed, not accumulated
                node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    def zero_grad(self) -> None:
        """Set ``.grad`` to 0 on this node and everything it depends on."""
        for node in self.topological_order():
            node.grad = 0.0


# ----------------------------------------------------------------------------------------
# Gates: the lecture's forward/backward API, one operation each.
# ----------------------------------------------------------------------------------------


class Gate:
    """A node that saves its inputs in ``forward`` and applies the chain rule in ``backward``."""

    def _saved(self, *names: str) -> tuple:
        values = tuple(getattr(self, name, None) for name in names)
        if any(v is None for v in values):
            raise RuntimeError(f"{type(self).__name__}: backward() was called before forward()")
        return values

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AddGate(Gate):
    """z = x + y. Backward distributes: dx = dz, dy = dz."""

    def forward(self, x: float, y: float) -> float:
        self.x, self.y = x, y
        return x + y

    def backward(self, dz: float) -> list[float]:
        self._saved("x", "y")
        return [dz, dz]


class MulGate(Gate):
    """z = x · y. Backward switches: dx = y · dz, dy = x · dz."""

    def forward(self, x: float, y: float) -> float:
        self.x, self.y = x, y
        return x * y

    def backward(self, dz: float) -> list[float]:
        x, y = self._saved("x", "y")
        return [y * dz, x * dz]


class MaxGate(Gate):
    """z = max(x, y). Backward routes dz to the larger input (to x on a tie), 0 to the other."""

    def forward(self, x: float, y: float) -> float:
        self.x, self.y = x, y
        return max(x, y)

    def backward(self, dz: float) -> list[float]:
        x, y = self._saved("x", "y")
        return [dz, 0.0] if x >= y else [0.0, dz]


class ExpGate(Gate):
    """z = eˣ; dz/dx = eˣ."""

    def forward(self, x: float) -> float:
        self.z = math.exp(x)
        return self.z

    def backward(self, dz: float) -> float:
        (z,) = self._saved("z")
        return z * dz


class ScaleGate(Gate):
    """z = a·x for a constant a; dz/dx = a."""

    def __init__(self, a: float) -> None:
        self.a = a

    def forward(self, x: float) -> float:
        self.x = x
        return self.a * x

    def backward(self, dz: float) -> float:
        self._saved("x")
        return self.a * dz


class AddConstGate(Gate):
    """z = c + x for a constant c; dz/dx = 1."""

    def __init__(self, c: float) -> None:
        self.c = c

    def forward(self, x: float) -> float:
        self.x = x
        return self.c + x

    def backward(self, dz: float) -> float:
        self._saved("x")
        return dz


class ReciprocalGate(Gate):
    """z = 1/x; dz/dx = −1/x²."""

    def forward(self, x: float) -> float:
        self.x = x
        return 1.0 / x

    def backward(self, dz: float) -> float:
        (x,) = self._saved("x")
        return -dz / (x * x)


class SigmoidGate(Gate):
    """z = σ(x); dz/dx = σ(x)(1 − σ(x)), read off the saved output."""

    def forward(self, x: float) -> float:
        self.z = _sigmoid(x)
        return self.z

    def backward(self, dz: float) -> float:
        (z,) = self._saved("z")
        return z * (1.0 - z) * dz
