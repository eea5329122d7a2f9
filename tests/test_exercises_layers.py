"""The layers assignment (course/exercises/layers.py): its catalogue of student
implementations, which tests/test_exercises_contract.py holds to the contract of every
exercise; the checks only this topic has; the numerical oracle; and the worked numbers its
notebook shows.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_exercises_contract import Contract, Correct, Delegation, Mistake, Stub, delegating_to, stub_of

import course
from course.exercises import check, get
from course.exercises.layers import compare_scaled, extrapolated_gradient
from course.gradcheck import GradCheckError

# ----------------------------------------------------------------------------------------
# Correct implementations, in another style than the notebook's (einsum, loops, in-place)
# ----------------------------------------------------------------------------------------


class LinearEinsum(course.layers.Linear):
    def backward(self, grad_out):
        self.W.grad += np.einsum("nd,nm->dm", self.x, grad_out)
        np.add(self.b.grad, np.einsum("nm->m", grad_out), out=self.b.grad)
        return np.einsum("nm,dm->nd", grad_out, self.W.data)


class SigmoidFromOutput(course.layers.Sigmoid):
    def backward(self, grad_out):
        local = self.y - np.square(self.y)  # y (1 − y), expanded
        return np.multiply(grad_out, local)


class TanhLoop(course.layers.Tanh):
    def backward(self, grad_out):
        grad_in = np.empty_like(self.y)
        for ix in np.ndindex(self.y.shape):
            grad_in[ix] = grad_out[ix] * (1.0 - self.y[ix] ** 2)
        return grad_in


class ReLUWhere(course.layers.ReLU):
    def backward(self, grad_out):
        return np.where(self.x > 0, grad_out, 0.0)


class LinearSigmoidEinsum(course.layers.LinearSigmoid):
    def backward(self, grad_out):
        dz = grad_out * self.y * (1.0 - self.y)
        self.W.grad += np.einsum("nd,nm->dm", self.x, dz)
        if self.b is not None:
            self.b.grad += np.einsum("nm->m", dz)
        return np.einsum("nm,dm->nd", dz, self.W.data)


class SequentialIndexLoop(course.layers.Sequential):
    def backward(self, grad_out):
        for i in range(len(self.layers) - 1, -1, -1):
            grad_out = self.layers[i].backward(grad_out)
        return grad_out


# ----------------------------------------------------------------------------------------
# Plausible mistakes
# ----------------------------------------------------------------------------------------


class LinearOverwrites(course.layers.Linear):
    def backward(self, grad_out):
        self.W.grad = self.x.T @ grad_out  # = instead of +=: earlier gradients are lost
        self.b.grad += grad_out.sum(axis=0)
        return grad_out @ self.W.data.T


class LinearBiasNotSummed(course.layers.Linear):
    def backward(self, grad_out):
        self.W.grad += self.x.T @ grad_out
        self.b.grad += grad_out.mean(axis=0)  # the mean, not the sum over the batch
        return grad_out @ self.W.data.T


class SigmoidWrongDerivative(course.layers.Sigmoid):
    def backward(self, grad_out):
        return grad_out * (1.0 - self.y)  # forgot the factor y


class TanhWrongDerivative(course.layers.Tanh):
    def backward(self, grad_out):
        return grad_out * (1.0 - self.y)  # 1 − y instead of 1 − y²


class ReLUWrongBranch(course.layers.ReLU):
    def backward(self, grad_out):
        return grad_out * (self.x < 0)  # passes the gradient on the wrong side


class LinearSigmoidNoLocalGradient(course.layers.LinearSigmoid):
    def backward(self, grad_out):
        dz = grad_out * self.y * (1.0 - self.y)
        self.W.grad += self.x.T @ grad_out  # forgot σ' in the weight gradient
        if self.b is not None:
            self.b.grad += dz.sum(axis=0)
        return dz @ self.W.data.T


class SequentialSkipsLastLayer(course.layers.Sequential):
    def backward(self, grad_out):
        for layer in reversed(self.layers[:-1]):  # off by one: the output layer is skipped
            grad_out = layer.backward(grad_out)
        return grad_out


# ----------------------------------------------------------------------------------------
# The catalogue (tests/test_exercises_contract.py runs the contract over it)
# ----------------------------------------------------------------------------------------

# exercise -> (the reference class, a correct implementation, [(a mistake, the gradient its message names)])
EXERCISES = {
    "layers.Linear.backward": (
        course.layers.Linear,
        LinearEinsum,
        [(LinearOverwrites, "dL/dW"), (LinearBiasNotSummed, "dL/db")],
    ),
    "layers.Sigmoid.backward": (course.layers.Sigmoid, SigmoidFromOutput, [(SigmoidWrongDerivative, "dL/dx")]),
    "layers.Tanh.backward": (course.layers.Tanh, TanhLoop, [(TanhWrongDerivative, "dL/dx")]),
    "layers.ReLU.backward": (course.layers.ReLU, ReLUWhere, [(ReLUWrongBranch, "dL/dx")]),
    "layers.LinearSigmoid.backward": (
        course.layers.LinearSigmoid,
        LinearSigmoidEinsum,
        [(LinearSigmoidNoLocalGradient, "dL/dW")],
    ),
    "layers.Sequential.backward": (
        course.layers.Sequential,
        SequentialIndexLoop,
        [(SequentialSkipsLastLayer, "dL/dx")],
    ),
}
NAMES = sorted(EXERCISES)

CONTRACT = Contract(
    topic="layers",
    correct=[Correct(name, correct) for name, (_, correct, _) in EXERCISES.items()],
    stubs=[Stub(name, stub_of(reference)) for name, (reference, _, _) in EXERCISES.items()],
    mistakes=[
        Mistake(name, mistake, says=(f"{tensor} ",))
        for name, (_, _, mistakes) in EXERCISES.items()
        for mistake, tensor in mistakes
    ],
    delegations=[Delegation(name, delegating_to(reference)) for name, (reference, _, _) in EXERCISES.items()],
)


# ----------------------------------------------------------------------------------------
# Beyond the contract
# ----------------------------------------------------------------------------------------


def test_hidden_cases_include_random_shapes_and_a_large_sampled_case():
    for name in NAMES:
        exercise = course.exercises.get(name)
        a = exercise.cases(np.random.default_rng(1), hidden=True)
        b = exercise.cases(np.random.default_rng(2), hidden=True)
        assert [c.arrays["x"].shape for c in a] != [c.arrays["x"].shape for c in b], name
        large = [c for c in a if c.config.get("max_entries")]
        assert large, f"{name} has no large hidden case"
        biggest = max(max(arr.size for arr in c.arrays.values()) for c in large)
        assert biggest >= 32_768, f"{name}: the large case has only {biggest} entries"


def test_overwriting_a_gradient_gets_a_hint():
    with pytest.raises(GradCheckError, match=r"W.grad was overwritten \(=\) instead of accumulated"):
        check("layers.Linear.backward", LinearOverwrites, quiet=True)


def test_cases_are_reproducible_and_kept_away_from_the_relu_kink():
    exercise = course.exercises.get("layers.ReLU.backward")
    for seed in range(20):
        for hidden in (False, True):
            a = exercise.cases(np.random.default_rng(seed), hidden)
            b = exercise.cases(np.random.default_rng(seed), hidden)
            for ca, cb in zip(a, b, strict=True):
                np.testing.assert_array_equal(ca.arrays["x"], cb.arrays["x"])
                assert np.min(np.abs(ca.arrays["x"])) >= 1e-3


# ----------------------------------------------------------------------------------------
# The numerical oracle
# ----------------------------------------------------------------------------------------


def test_extrapolated_gradient_is_more_accurate_than_plain_differences():
    x = np.linspace(-2.0, 2.0, 9)
    exact = np.cos(x)
    plain = course.gradcheck.numerical_gradient(np.sin, x.copy(), None, 1e-3)
    extrapolated = extrapolated_gradient(np.sin, x.copy(), h=1e-3)
    assert np.max(np.abs(plain - exact)) > 1e-8
    assert np.max(np.abs(extrapolated - exact)) < 1e-11


def test_compare_scaled_only_relaxes_entries_far_below_the_tensor_scale():
    numeric = np.array([1.0, 1e-7, 0.5])
    tiny_off = numeric + np.array([0.0, 1e-12, 0.0])  # off by 1e-12 where the entry is 1e-7
    assert not course.gradcheck.compare("g", tiny_off, numeric).passed
    assert compare_scaled("g", tiny_off, numeric).passed
    for wrong in (2 * numeric, numeric + np.array([0, 0, 1e-3]), -numeric):
        assert not compare_scaled("g", wrong, numeric).passed


# ----------------------------------------------------------------------------------------
# The worked example of the lecture, as the notebook shows it
# ----------------------------------------------------------------------------------------


def lecture_network() -> course.Sequential:
    net = course.Sequential(course.LinearSigmoid(2, 3), course.LinearSigmoid(3, 1))
    net[0].W.data[...] = [[1.0, -1.0, 3.0], [2.0, 2.0, -1.0]]
    net[1].W.data[...] = [[0.1], [0.5], [-0.1]]
    return net


X, LABEL = np.array([[5.0, 3.0]]), np.array([[1.0]])


def test_lecture_two_layer_network_forward_and_backward():
    net, bce = lecture_network(), course.BinaryCrossEntropy()
    y = net.forward(X)
    np.testing.assert_allclose(net[0].y, [[0.9999833, 0.7310586, 0.9999939]], atol=1e-7)
    assert y.item() == pytest.approx(0.590378, abs=1e-6)
    assert bce.forward(y, LABEL) == pytest.approx(0.5269923, abs=1e-7)
    grad_y = bce.backward()
    assert grad_y.item() == pytest.approx(-1 / y.item()) == pytest.approx(-1.6938, abs=1e-4)
    grad_h = net[1].backward(grad_y)
    np.testing.assert_allclose(net[1].W.grad.ravel(), [-0.40961516, -0.29945768, -0.40961948], rtol=1e-7)
    np.testing.assert_allclose(grad_h.ravel(), [-0.0409622, -0.204811, 0.0409622], rtol=1e-5)
    net[0].backward(grad_h)
    lecture_w_grad = [
        [-3.42057777e-06, -2.01341432e-01, 1.25838681e-06],
        [-2.05234666e-06, -1.20804859e-01, 7.55032084e-07],
    ]
    np.testing.assert_allclose(net[0].W.grad, lecture_w_grad, rtol=1e-7)


def test_lecture_gradient_descent_drives_the_loss_down():
    net, bce = lecture_network(), course.BinaryCrossEntropy()
    opt = course.SGD(net.parameters(), lr=0.1)
    losses = []
    for _ in range(100):
        losses.append(bce.forward(net.forward(X), LABEL))
        opt.zero_grad()
        net.backward(bce.backward())
        opt.step()
    assert losses[0] == pytest.approx(0.5269923, abs=1e-7)
    assert losses[-1] == pytest.approx(0.0344851, abs=1e-7)
    assert np.all(np.diff(losses) < 0)
    assert net.forward(X).item() > 0.966


def test_relu_jacobian_is_diagonal_and_its_size():
    rng = np.random.default_rng(0)
    x, grad_out = rng.standard_normal(6), rng.standard_normal(6)
    jacobian = np.diag((x > 0).astype(float))
    relu = course.ReLU()
    relu.forward(x)
    np.testing.assert_array_equal(relu.backward(grad_out), jacobian.T @ grad_out)
    assert 4096**2 * 8 == 134_217_728  # bytes for one example: 134 MB
    assert (100 * 4096) ** 2 == 409_600**2 == 167_772_160_000  # entries for a minibatch of 100
    assert 409_600**2 * 8 / 1e12 == pytest.approx(1.342, abs=1e-3)  # terabytes


def test_minibatch_backward_is_the_sum_of_per_example_backwards():
    rng = np.random.default_rng(3)
    x, grad_out = rng.standard_normal((7, 4)), rng.standard_normal((7, 2))
    batch = course.Linear(4, 2, rng=0)
    batch.forward(x)
    grad_x = batch.backward(grad_out)
    single = course.Linear(4, 2, rng=0)
    rows = []
    for n in range(7):
        single.forward(x[n : n + 1])
        rows.append(single.backward(grad_out[n : n + 1]))
    np.testing.assert_allclose(np.vstack(rows), grad_x, rtol=1e-12)
    np.testing.assert_allclose(single.W.grad, batch.W.grad, rtol=1e-12)
    np.testing.assert_allclose(single.b.grad, batch.b.grad, rtol=1e-12)


@pytest.mark.parametrize("name", ["layers.Sigmoid.backward", "layers.Tanh.backward", "layers.ReLU.backward"])
def test_differencing_only_the_sampled_entries_of_an_activation_gives_the_same_numbers(name):
    exercise = get(name)
    case = exercise.cases(np.random.default_rng(3), hidden=True)[-1]  # the 512 x 1024 input
    ref = exercise._layer(exercise.reference, case)
    x, grad_out = case.arrays["x"].copy(), case.arrays["grad_out"]
    ref.forward(x)
    analytic = ref.backward(grad_out)
    checks = [
        exercise.compare_gradient(
            exercise.verdict(case),
            "dL/dx",
            analytic,
            ref.forward,
            x,
            grad_out,
            max_entries=20,
            rng=np.random.default_rng(0),
            elementwise=elementwise,
        )
        for elementwise in (False, True)
    ]
    assert np.isfinite(checks[0].numeric).sum() == 20
    np.testing.assert_allclose(checks[1].numeric, checks[0].numeric, rtol=1e-13, atol=0)
    assert all(c.passed for c in checks) and exercise.elementwise
