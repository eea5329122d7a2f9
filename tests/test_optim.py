"""Tests for course.optim: each update rule against a hand-written closed form or reference
loop, the two momentum formulations, learning-rate schedules, and the lecture's learning-rate
regimes on the Booth function."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.gradcheck import numerical_gradient
from course.layers import Linear, Parameter
from course.optim import SGD, Adam, CosineDecay, Momentum, RMSProp, StepDecay, cosine_decay, step_decay

G = np.array([0.5, -2.0, 3.0])  # a constant gradient
W0 = np.array([1.0, 2.0, -1.0])


def run_constant_gradient(optimizer_cls, steps: int, **kwargs) -> list[np.ndarray]:
    """Weights after each of ``steps`` updates with the gradient held at G."""
    p = Parameter(W0)
    opt = optimizer_cls([p], **kwargs)
    history = []
    for _ in range(steps):
        p.grad[...] = G
        opt.step()
        history.append(p.data.copy())
    return history


def test_sgd_steps_against_the_gradient():
    """Check w_t = w_0 − t · lr · g for a constant gradient."""
    for t, w in enumerate(run_constant_gradient(SGD, 4, lr=0.1), start=1):
        np.testing.assert_allclose(w, W0 - t * 0.1 * G, rtol=1e-14)


@pytest.mark.parametrize("formulation", ["gradient", "step"])
def test_momentum_matches_its_closed_form_for_a_constant_gradient(formulation):
    """Check v_t = Σ_{k<=t} ρ^{t−k} g = g (1 − ρ^t)/(1 − ρ), and w_t = w_0 − lr Σ_{s<=t} v_s."""
    rho, lr = 0.9, 0.1
    history = run_constant_gradient(Momentum, 6, lr=lr, rho=rho, formulation=formulation)
    for t, w in enumerate(history, start=1):
        v = [G * sum(rho ** (s - k) for k in range(1, s + 1)) for s in range(1, t + 1)]
        np.testing.assert_allclose(v[-1], G * (1 - rho**t) / (1 - rho), rtol=1e-13)
        np.testing.assert_allclose(w, W0 - lr * np.sum(v, axis=0), rtol=1e-13)


@given(seed=st.integers(0, 2**32 - 1), rho=st.floats(0.0, 0.99), lr=st.floats(1e-3, 0.1))
def test_both_momentum_formulations_give_the_same_weights(seed, rho, lr):
    """Check the lecture's claim: v ← ρv + g, w −= lr v and v ← ρv − lr g, w += v agree."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 3))
    A = A @ A.T + np.eye(3)  # a convex quadratic ½ wᵀAw, so the gradient depends on w
    params = [Parameter(np.ones(3)), Parameter(np.ones(3))]
    opts = [Momentum([p], lr=lr, rho=rho, formulation=f) for p, f in zip(params, ["gradient", "step"], strict=True)]
    for _ in range(10):
        for p, opt in zip(params, opts, strict=True):
            p.grad[...] = A @ p.data
            opt.step()
        np.testing.assert_allclose(params[0].data, params[1].data, rtol=1e-10, atol=1e-12)


def test_rmsprop_matches_its_closed_form_for_a_constant_gradient():
    """Check s_t = (1 − d^t) g² and w_t = w_{t−1} − lr g / (√s_t + eps)."""
    decay, lr, eps = 0.9, 0.01, 1e-8
    w = W0.copy()
    for t, got in enumerate(run_constant_gradient(RMSProp, 5, lr=lr, decay=decay, eps=eps), start=1):
        w = w - lr * G / (np.abs(G) * math.sqrt(1 - decay**t) + eps)
        np.testing.assert_allclose(got, w, rtol=1e-13)


def test_adam_bias_correction_makes_every_step_lr_for_a_constant_gradient():
    """Check m̂_t = g and v̂_t = g² exactly, so each step is lr · g / (|g| + eps), from t = 1."""
    lr, eps = 0.01, 1e-8
    for t, w in enumerate(run_constant_gradient(Adam, 5, lr=lr, eps=eps), start=1):
        np.testing.assert_allclose(w, W0 - t * lr * G / (np.abs(G) + eps), rtol=1e-12)


def reference_updates(rule: str, w0: np.ndarray, a: np.ndarray, steps: int, lr: float) -> list[np.ndarray]:
    """The lecture's update rules written out on plain floats for f(w) = Σ ½ a_i w_i²."""
    out = []
    w = [float(v) for v in w0]
    state = [dict(v=0.0, s=0.0, m=0.0) for _ in w]
    for t in range(1, steps + 1):
        for i in range(len(w)):
            g, st_ = a[i] * w[i], state[i]
            if rule == "SGD":
                w[i] -= lr * g
            elif rule == "Momentum":
                st_["v"] = 0.9 * st_["v"] + g
                w[i] -= lr * st_["v"]
            elif rule == "RMSProp":
                st_["s"] = 0.99 * st_["s"] + 0.01 * g * g
                w[i] -= lr * g / (math.sqrt(st_["s"]) + 1e-8)
            elif rule == "Adam":
                st_["m"] = 0.9 * st_["m"] + 0.1 * g
                st_["v"] = 0.999 * st_["v"] + 0.001 * g * g
                m_hat, v_hat = st_["m"] / (1 - 0.9**t), st_["v"] / (1 - 0.999**t)
                w[i] -= lr * m_hat / (math.sqrt(v_hat) + 1e-8)
        out.append(np.array(w))
    return out


@pytest.mark.parametrize(("rule", "cls"), [("SGD", SGD), ("Momentum", Momentum), ("RMSProp", RMSProp), ("Adam", Adam)])
def test_a_few_steps_on_a_quadratic_match_the_reference_loop(rule, cls):
    """Check five steps on Σ ½ a_i w_i², where the gradient changes every step."""
    a, w0, lr = np.array([1.0, 4.0, 0.25]), np.array([1.0, -0.7, 2.0]), 0.01
    p = Parameter(w0)
    opt = cls([p], lr=lr)
    for expected in reference_updates(rule, w0, a, 5, lr):
        p.grad[...] = a * p.data
        opt.step()
        np.testing.assert_allclose(p.data, expected, rtol=1e-12)


def test_adam_converges_on_a_quadratic():
    """Check Adam reaches the minimum of Σ a_i (w_i − c_i)² to 1e-3 in 1000 steps."""
    a, c = np.array([1.0, 10.0, 0.1]), np.array([3.0, -1.0, 0.5])
    p = Parameter(np.zeros(3))
    opt = Adam([p], lr=0.05)
    for _ in range(1000):
        opt.zero_grad()
        p.grad += 2 * a * (p.data - c)
        opt.step()
    np.testing.assert_allclose(p.data, c, atol=1e-3)


def test_optimisers_update_the_layers_own_arrays():
    """Check step() changes W.data in place, so the layer sees the new weights."""
    layer = Linear(2, 2, rng=0)
    W = layer.W.data
    before = W.copy()
    layer.W.grad[...] = 1.0
    SGD(layer.parameters(), lr=0.5).step()
    assert layer.W.data is W
    np.testing.assert_allclose(W, before - 0.5)


@pytest.mark.parametrize("cls", [SGD, Momentum, RMSProp, Adam])
def test_zero_grad_clears_every_parameter(cls):
    """Check zero_grad() zeroes each parameter's .grad."""
    params = [Parameter(np.ones((2, 2))), Parameter(np.ones(3))]
    for p in params:
        p.grad += 5.0
    cls(params, lr=0.1).zero_grad()
    assert all(np.all(p.grad == 0) for p in params)


@pytest.mark.parametrize("cls", [SGD, Momentum, RMSProp, Adam])
def test_bad_arguments_raise(cls):
    """Check: no parameters, lr <= 0 and something that is not a Parameter are all refused."""
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="no parameters"):
        cls([], lr=0.1)
    for lr in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="learning rate"):
            cls([p], lr=lr)
    with pytest.raises(TypeError, match="not a Parameter"):
        cls([p, np.ones(2)], lr=0.1)


def test_optimiser_accepts_a_generator_of_parameters():
    """Check an iterable is read once and kept: step() still reaches every parameter."""
    layer = Linear(2, 1, rng=0)
    opt = SGD((p for p in layer.parameters()), lr=1.0)
    for p in layer.parameters():
        p.grad += 1.0
    before = [p.data.copy() for p in layer.parameters()]
    opt.step()
    for p, b in zip(layer.parameters(), before, strict=True):
        np.testing.assert_allclose(p.data, b - 1.0)


def test_momentum_rejects_bad_rho_and_formulation():
    """Check ρ must lie in [0, 1) and the formulation be one of the two in the lecture."""
    p = Parameter(np.ones(2))
    for rho in (1.0, -0.1):
        with pytest.raises(ValueError, match="rho"):
            Momentum([p], lr=0.1, rho=rho)
    with pytest.raises(ValueError, match="formulation"):
        Momentum([p], lr=0.1, formulation="nesterov")


# -- schedules --------------------------------------------------------------------------------


def test_step_decay_values_by_hand():
    """Check lr0 · γ^⌊t / step⌋ at and around the step boundaries."""
    assert step_decay(1.0, 0, 10) == 1.0
    assert step_decay(1.0, 9, 10) == 1.0
    assert step_decay(1.0, 10, 10) == pytest.approx(0.1)
    assert step_decay(0.8, 25, 10, gamma=0.5) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="step_size"):
        step_decay(1.0, 3, 0)


@given(t=st.integers(0, 100), T=st.integers(1, 100), lr0=st.floats(1e-4, 1.0))
def test_cosine_decay_is_the_lecture_formula(t, T, lr0):
    """Check α_t = ½ α0 (1 + cos(tπ/T)) for t <= T, held at 0 after T."""
    expected = 0.5 * lr0 * (1 + math.cos(min(t, T) * math.pi / T))
    assert cosine_decay(lr0, t, T) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_cosine_decay_landmarks_and_floor():
    """Check α_0 = α0, α_{T/2} = α0/2, α_T = lr_min, and T < 1 refused."""
    assert cosine_decay(0.4, 0, 10) == 0.4
    assert cosine_decay(0.4, 5, 10) == pytest.approx(0.2)
    assert cosine_decay(0.4, 10, 10) == pytest.approx(0.0, abs=1e-16)
    assert cosine_decay(0.4, 10, 10, lr_min=0.1) == pytest.approx(0.1)
    assert cosine_decay(0.4, 5, 10, lr_min=0.1) == pytest.approx(0.25)
    assert cosine_decay(0.4, 50, 10, lr_min=0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="T"):
        cosine_decay(0.4, 1, 0)


@pytest.mark.parametrize(
    ("make", "formula"),
    [
        (lambda opt: StepDecay(opt, step_size=3, gamma=0.5), lambda t: step_decay(0.2, t, 3, 0.5)),
        (lambda opt: CosineDecay(opt, T=8), lambda t: cosine_decay(0.2, t, 8)),
        (lambda opt: CosineDecay(opt, T=8, lr_min=0.01), lambda t: cosine_decay(0.2, t, 8, 0.01)),
    ],
    ids=["StepDecay", "CosineDecay", "CosineDecay lr_min"],
)
def test_schedulers_set_the_optimizers_learning_rate(make, formula):
    """Check each scheduler.step() sets optimizer.lr to the schedule at the next iteration."""
    opt = SGD([Parameter(np.ones(1))], lr=0.2)
    scheduler = make(opt)
    for t in range(1, 12):
        assert scheduler.step() == pytest.approx(formula(t), rel=1e-12, abs=1e-15)
        assert opt.lr == pytest.approx(formula(t), rel=1e-12, abs=1e-15)


def test_scheduled_learning_rate_is_used_by_the_next_step():
    """Check the optimiser really steps with the decayed rate."""
    p = Parameter(np.zeros(1))
    opt = SGD([p], lr=1.0)
    scheduler = StepDecay(opt, step_size=1, gamma=0.5)
    scheduler.step()
    p.grad[...] = 1.0
    opt.step()
    assert p.data[0] == -0.5


# -- the Booth function: learning-rate regimes of plain gradient descent ------------------------

BOOTH_MIN = np.array([1.0, 3.0])
STEPS = 100


def booth(w: np.ndarray) -> float:
    """The lecture's f(x, y) = (x + 2y − 7)² + (2x + y − 5)², minimum 0 at (1, 3)."""
    x, y = w
    return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2


def booth_grad(w: np.ndarray) -> np.ndarray:
    x, y = w
    a, b = x + 2 * y - 7, 2 * x + y - 5
    return np.array([2 * a + 4 * b, 4 * a + 2 * b])


# Its Hessian [[10, 8], [8, 10]] has eigenvalues 18 along (1, 1) and 2 along (1, −1): gradient
# descent multiplies those error components by 1 − 18 lr and 1 − 2 lr each step.
TOP = np.array([1.0, 1.0]) / math.sqrt(2)


def descend(lr: float) -> list[np.ndarray]:
    """Iterates of plain gradient descent (course.optim.SGD) from (−4, 6)."""
    p = Parameter([-4.0, 6.0])
    opt = SGD([p], lr=lr)
    path = [p.data.copy()]
    for _ in range(STEPS):
        opt.zero_grad()
        p.grad += booth_grad(p.data)
        opt.step()
        path.append(p.data.copy())
    return path


def test_booth_gradient_is_right(assert_gradients_match):
    """Check the test's own hand-written gradient against centred differences."""
    for w in ([-4.0, 6.0], [0.3, -2.0], [1.0, 3.0]):
        w = np.array(w)
        assert_gradients_match(booth_grad(w), numerical_gradient(booth, w.copy()), f"∇booth{tuple(w)}")
    assert booth(BOOTH_MIN) == 0.0


def test_booth_lr_0_01_falls_short():
    """Check lr = 1e-2 goes steadily downhill but is still far from (1, 3) after 100 steps."""
    path = descend(0.01)
    values = [booth(w) for w in path]
    assert all(b < a for a, b in zip(values, values[1:], strict=False))
    # The slow direction shrinks by 0.98 per step: 0.98^100 ≈ 0.13 of the way is left.
    assert np.linalg.norm(path[-1] - BOOTH_MIN) > 0.1 * np.linalg.norm(path[0] - BOOTH_MIN)


def test_booth_lr_0_1_converges():
    """Check lr = 0.1 reaches (1, 3): both error components shrink by 0.8 per step."""
    path = descend(0.1)
    np.testing.assert_allclose(path[-1], BOOTH_MIN, atol=1e-6)


def test_booth_lr_0_11_oscillates():
    """Check lr = 0.11: along the top eigenvector the error flips sign every step (× −0.98),
    shrinking slowly, so after 100 steps it is still more than a tenth of where it started."""
    errors = [float((w - BOOTH_MIN) @ TOP) for w in descend(0.11)]
    assert all(a * b < 0 for a, b in zip(errors, errors[1:], strict=False))
    assert all(abs(b) < abs(a) for a, b in zip(errors, errors[1:], strict=False))
    assert abs(errors[-1]) > 0.1 * abs(errors[0])
    assert abs(errors[1] / errors[0]) == pytest.approx(0.98, rel=1e-9)


def test_booth_lr_0_12_diverges():
    """Check lr = 0.12: the top component grows by 1.16 per step, the loss explodes."""
    path = descend(0.12)
    values = [booth(w) for w in path]
    assert values[-1] > 1e6 * values[0]
    errors = [float((w - BOOTH_MIN) @ TOP) for w in path]
    assert abs(errors[1] / errors[0]) == pytest.approx(1.16, rel=1e-9)
