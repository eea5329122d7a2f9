"""Layers with a forward and a backward pass.

One protocol everywhere (as in CS231n and PyTorch):

* ``forward(x)`` computes the output and saves what ``backward`` will need;
* ``backward(grad_out)`` receives dL/d(output), *adds* dL/dp into ``p.grad`` for every
  parameter ``p`` (gradients accumulate until :meth:`Layer.zero_grad`) and returns
  dL/dx, the gradient for the input.

Shapes: N is the batch size, D the number of input features, M the number of outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import activations as A

__all__ = [
    "ELU",
    "Layer",
    "LeakyReLU",
    "Linear",
    "LinearSigmoid",
    "Maxout",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
]

Array = NDArray[np.float64]


def _rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Parameter:
    """A learnable array: ``.data`` holds the values, ``.grad`` the accumulated dL/d(data).

    ``.data`` is always float64 and ``.grad`` has its shape. Optimisers update ``.data``
    in place, so a layer and its optimiser always see the same numbers.
    """

    def __init__(self, data: ArrayLike, name: str = "") -> None:
        self.data = np.array(data, dtype=np.float64)  # a copy, never a view of the caller's array
        self.grad = np.zeros_like(self.data)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def zero_grad(self) -> None:
        self.grad[...] = 0.0

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.data.shape})"


class Layer:
    """Base class: subclasses implement ``forward`` and ``backward``."""

    def __call__(self, x: ArrayLike) -> Array:
        return self.forward(x)

    def forward(self, x: ArrayLike) -> Array:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, grad_out: ArrayLike) -> Array:
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def parameters(self) -> list[Parameter]:
        """The layer's parameters, in the order they were created."""
        return [v for v in vars(self).values() if isinstance(v, Parameter)]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- helpers shared by all layers: clear errors instead of silent broadcasting --------

    def _input(self, x: ArrayLike, features: int | None = None) -> Array:
        """x as float64; when ``features`` is given it must have shape (N, features)."""
        x = np.asarray(x, dtype=np.float64)
        if features is not None and (x.ndim != 2 or x.shape[1] != features):
            raise ValueError(f"{self!r}: expected input of shape (N, {features}), got {x.shape}")
        return x

    def _grad_out(self, grad_out: ArrayLike, expected: tuple[int, ...]) -> Array:
        grad_out = np.asarray(grad_out, dtype=np.float64)
        if grad_out.shape != expected:
            raise ValueError(
                f"{self!r}: backward expected grad_out of shape {expected} (the shape of the "
                f"forward output), got {grad_out.shape}"
            )
        return grad_out

    def _saved(self, name: str) -> NDArray[Any]:
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(
                f"{self!r}: backward() was called before forward(); run forward(x) first so "
                "the layer can save what backward needs"
            )
        return value


# ----------------------------------------------------------------------------------------
# Affine layers
# ----------------------------------------------------------------------------------------


class Linear(Layer):
    """y = x @ W + b, with W of shape (D, M) and b of shape (M,).

    Weights start as N(0, 2/D) (He initialisation), biases at zero. ``input_grad=False``
    makes ``backward`` skip dL/dx (for a first layer fed with data).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: int | np.random.Generator | None = None,
        input_grad: bool = True,
    ) -> None:
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear needs positive sizes, got in_features={in_features}, out_features={out_features}")
        self.in_features, self.out_features = in_features, out_features
        scale = np.sqrt(2.0 / in_features)
        self.W = Parameter(_rng(rng).normal(0.0, scale, (in_features, out_features)), "W")
        self.b = Parameter(np.zeros(out_features), "b")
        self.input_grad = input_grad
        self.x: Array | None = None

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"

    def forward(self, x: ArrayLike) -> Array:
        """x: (N, D) -> y: (N, M)."""
        self.x = self._input(x, self.in_features)
        return self.x @ self.W.data + self.b.data

    def backward(self, grad_out: ArrayLike) -> Array:
        """grad_out: (N, M) -> dL/dx: (N, D); adds dL/dW (D, M) and dL/db (M,).

        With ``input_grad=False`` (a first layer, whose input is data) it returns None and
        skips the matmul that dL/dx would cost, as frameworks do for inputs that need no grad.
        """
        x = self._saved("x")
        grad_out = self._grad_out(grad_out, (x.shape[0], self.out_features))
        self.W.grad += x.T @ grad_out
        self.b.grad += grad_out.sum(axis=0)
        # None only with input_grad=False: a first layer, whose dL/dx nobody reads.
        return grad_out @ self.W.data.T if self.input_grad else None  # type: ignore[return-value]


class LinearSigmoid(Layer):
    """The lecture's fused layer: y = σ(x @ W) (+ b when ``bias=True``).

    Without a bias it is exactly the ``LinearSigmoidLayer`` of the backpropagation lecture,
    so the two-layer network worked by hand there is ``Sequential(LinearSigmoid(2, 3),
    LinearSigmoid(3, 1))`` with W and V copied in.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = False,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        self.in_features, self.out_features = in_features, out_features
        self.W = Parameter(_rng(rng).normal(0.0, 1.0, (in_features, out_features)), "W")
        self.b = Parameter(np.zeros(out_features), "b") if bias else None
        self.x: Array | None = None
        self.y: Array | None = None

    def __repr__(self) -> str:
        return f"LinearSigmoid({self.in_features}, {self.out_features})"

    def forward(self, x: ArrayLike) -> Array:
        """x: (N, D) -> y = σ(xW + b): (N, M)."""
        self.x = self._input(x, self.in_features)
        z = self.x @ self.W.data
        if self.b is not None:
            z = z + self.b.data
        self.y = A.sigmoid(z)
        return self.y

    def backward(self, grad_out: ArrayLike) -> Array:
        """grad_out: (N, M) -> dL/dx: (N, D); adds dL/dW and, with a bias, dL/db."""
        x, y = self._saved("x"), self._saved("y")
        grad_out = self._grad_out(grad_out, y.shape)
        dz = grad_out * y * (1.0 - y)  # σ' = σ(1 − σ), read off the saved output
        self.W.grad += x.T @ dz
        if self.b is not None:
            self.b.grad += dz.sum(axis=0)
        return dz @ self.W.data.T


class Maxout(Layer):
    """max over k linear pieces: y_m = max_j (x @ W[j] + b[j])_m.

    W has shape (k, D, M), b has shape (k, M). The gradient flows only through the piece
    that won the max, as through a max gate.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        k: int = 2,
        *,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"Maxout needs at least one linear piece, got k={k}")
        self.in_features, self.out_features, self.k = in_features, out_features, k
        scale = np.sqrt(2.0 / in_features)
        self.W = Parameter(_rng(rng).normal(0.0, scale, (k, in_features, out_features)), "W")
        self.b = Parameter(np.zeros((k, out_features)), "b")
        self.x: Array | None = None
        self.winner: NDArray[np.intp] | None = None

    def __repr__(self) -> str:
        return f"Maxout({self.in_features}, {self.out_features}, k={self.k})"

    def forward(self, x: ArrayLike) -> Array:
        """x: (N, D) -> y: (N, M)."""
        self.x = self._input(x, self.in_features)
        z = np.einsum("nd,kdm->nkm", self.x, self.W.data) + self.b.data  # (N, k, M)
        self.winner = z.argmax(axis=1)  # (N, M)
        return np.take_along_axis(z, self.winner[:, None, :], axis=1)[:, 0, :]

    def backward(self, grad_out: ArrayLike) -> Array:
        """grad_out: (N, M) -> dL/dx: (N, D); adds dL/dW (k, D, M) and dL/db (k, M)."""
        x, winner = self._saved("x"), self._saved("winner")
        grad_out = self._grad_out(grad_out, winner.shape)
        dz = np.zeros((x.shape[0], self.k, self.out_features))
        np.put_along_axis(dz, winner[:, None, :], grad_out[:, None, :], axis=1)
        self.W.grad += np.einsum("nd,nkm->kdm", x, dz)
        self.b.grad += dz.sum(axis=0)
        return np.einsum("nkm,kdm->nd", dz, self.W.data)


# ----------------------------------------------------------------------------------------
# Elementwise activations: any input shape, grad_out must match it exactly.
# ----------------------------------------------------------------------------------------


class Sigmoid(Layer):
    """y = σ(x), elementwise. backward uses the saved output: σ' = y (1 − y)."""

    def __init__(self) -> None:
        self.y: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        self.y = A.sigmoid(self._input(x))
        return self.y

    def backward(self, grad_out: ArrayLike) -> Array:
        y = self._saved("y")
        return self._grad_out(grad_out, y.shape) * y * (1.0 - y)


class Tanh(Layer):
    """y = tanh(x), elementwise; tanh' = 1 − y²."""

    def __init__(self) -> None:
        self.y: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        self.y = A.tanh(self._input(x))
        return self.y

    def backward(self, grad_out: ArrayLike) -> Array:
        y = self._saved("y")
        return self._grad_out(grad_out, y.shape) * (1.0 - y * y)


class ReLU(Layer):
    """y = max(0, x), elementwise; the gradient passes where x > 0."""

    def __init__(self) -> None:
        self.x: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        self.x = self._input(x)
        return A.relu(self.x)

    def backward(self, grad_out: ArrayLike) -> Array:
        x = self._saved("x")
        return self._grad_out(grad_out, x.shape) * (x > 0)


class LeakyReLU(Layer):
    """y = x for x > 0, αx otherwise (α = 0.1 as in the lecture)."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.x: Array | None = None

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"

    def forward(self, x: ArrayLike) -> Array:
        self.x = self._input(x)
        return A.leaky_relu(self.x, self.alpha)

    def backward(self, grad_out: ArrayLike) -> Array:
        x = self._saved("x")
        return self._grad_out(grad_out, x.shape) * A.leaky_relu_grad(x, self.alpha)


class ELU(Layer):
    """y = x for x > 0, α(eˣ − 1) otherwise."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha
        self.x: Array | None = None

    def __repr__(self) -> str:
        return f"ELU(alpha={self.alpha})"

    def forward(self, x: ArrayLike) -> Array:
        self.x = self._input(x)
        return A.elu(self.x, self.alpha)

    def backward(self, grad_out: ArrayLike) -> Array:
        x = self._saved("x")
        return self._grad_out(grad_out, x.shape) * A.elu_grad(x, self.alpha)


# ----------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------


class Sequential(Layer):
    """Layers applied one after another; backward runs them in reverse order."""

    def __init__(self, *layers: Layer) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Layer")
        self.layers = list(layers)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def forward(self, x: ArrayLike) -> Array:
        for layer in self.layers:
            x = layer.forward(x)
        return x  # type: ignore[return-value]  # the last layer's output (x itself with no layers)

    def backward(self, grad_out: ArrayLike) -> Array:
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out  # type: ignore[return-value]  # the first layer's dL/dx (as given with no layers)

    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]
