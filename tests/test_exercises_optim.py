"""The optimisation assignment (course/exercises/optim.py): its catalogue of student
implementations, which tests/test_exercises_contract.py holds to the contract of every
exercise; the checks only this topic has; and the worked numbers the notebook shows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_exercises_contract import Contract, Correct, Delegation, Mistake, Stub, delegating_to, stub_of

import course.optim as O
from course.data import BOOTH_MINIMUM, booth, booth_grad, gradient_descent
from course.exercises import check
from course.gradcheck import GradCheckError, numerical_gradient
from course.layers import Parameter

# ----------------------------------------------------------------------------------------
# Correct implementations, in a style unlike the notebook's (new arrays, explicit indices)
# ----------------------------------------------------------------------------------------


class SGDGood(O.SGD):
    def step(self):
        for i in range(len(self.params)):
            p = self.params[i]
            p.data = p.data - self.lr * p.grad


class MomentumGood(O.Momentum):
    def step(self):
        for i, p in enumerate(self.params):
            if self.formulation == "gradient":
                self.velocity[i] = self.rho * self.velocity[i] + p.grad
                p.data = p.data - self.lr * self.velocity[i]
            else:
                self.velocity[i] = self.rho * self.velocity[i] - self.lr * p.grad
                p.data = p.data + self.velocity[i]


class RMSPropGood(O.RMSProp):
    def step(self):
        for i, p in enumerate(self.params):
            self.square_avg[i] = self.decay * self.square_avg[i] + (1 - self.decay) * np.square(p.grad)
            p.data = p.data - self.lr * p.grad / (np.sqrt(self.square_avg[i]) + self.eps)


class AdamGood(O.Adam):
    def step(self):
        self.t = self.t + 1
        for i, p in enumerate(self.params):
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * p.grad
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * np.square(p.grad)
            m_hat = self.m[i] / (1 - self.beta1**self.t)
            v_hat = self.v[i] / (1 - self.beta2**self.t)
            p.data = p.data - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def step_decay_loop(lr0, t, step_size, gamma=0.1):
    """Correct: count the completed periods one by one."""
    lr = lr0
    for boundary in range(step_size, t + 1, step_size):
        del boundary
        lr *= gamma
    return lr


def cosine_decay_sq(lr0, t, T, lr_min=0.0):
    """Correct: ½(1 + cos θ) = cos²(θ/2)."""
    return lr_min + (lr0 - lr_min) * math.cos(math.pi * min(t, T) / (2 * T)) ** 2


# ----------------------------------------------------------------------------------------
# Mistakes
# ----------------------------------------------------------------------------------------


class SGDAscends(O.SGD):
    def step(self):
        for p in self.params:
            p.data += self.lr * p.grad


class SGDNoLR(O.SGD):
    def step(self):
        for p in self.params:
            p.data -= p.grad


class MomentumStaleVelocity(O.Momentum):
    """Moves with the previous velocity, then updates it: one step behind."""

    def step(self):
        for p, v in zip(self.params, self.velocity, strict=True):
            if self.formulation == "gradient":
                p.data -= self.lr * v
                v *= self.rho
                v += p.grad
            else:
                p.data += v
                v *= self.rho
                v -= self.lr * p.grad


class MomentumForgetful(O.Momentum):
    """A fresh local velocity every step: plain SGD in disguise."""

    def step(self):
        for p in self.params:
            if self.formulation == "gradient":
                v = self.rho * np.zeros_like(p.data) + p.grad
                p.data -= self.lr * v
            else:
                v = self.rho * np.zeros_like(p.data) - self.lr * p.grad
                p.data += v


class MomentumWrongSign(O.Momentum):
    def step(self):
        for p, v in zip(self.params, self.velocity, strict=True):
            v *= self.rho
            if self.formulation == "gradient":
                v += p.grad
                p.data += self.lr * v
            else:
                v += self.lr * p.grad
                p.data += v


class RMSPropNoAverage(O.RMSProp):
    """Forgets the (1 − decay) weight on the new squared gradient."""

    def step(self):
        for p, s in zip(self.params, self.square_avg, strict=True):
            s *= self.decay
            s += p.grad**2
            p.data -= self.lr * p.grad / (np.sqrt(s) + self.eps)


class RMSPropNoSqrt(O.RMSProp):
    def step(self):
        for p, s in zip(self.params, self.square_avg, strict=True):
            s *= self.decay
            s += (1 - self.decay) * p.grad**2
            p.data -= self.lr * p.grad / (s + self.eps)


class AdamNoCorrection(O.Adam):
    def step(self):
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            m *= self.beta1
            m += (1 - self.beta1) * p.grad
            v *= self.beta2
            v += (1 - self.beta2) * p.grad**2
            p.data -= self.lr * m / (np.sqrt(v) + self.eps)


class AdamSwapsBetas(O.Adam):
    def step(self):
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            m *= self.beta2
            m += (1 - self.beta2) * p.grad
            v *= self.beta1
            v += (1 - self.beta1) * p.grad**2
            m_hat, v_hat = m / (1 - self.beta2**self.t), v / (1 - self.beta1**self.t)
            p.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def step_decay_no_floor(lr0, t, step_size, gamma=0.1):
    return lr0 * gamma ** (t / step_size)


def step_decay_early(lr0, t, step_size, gamma=0.1):
    return lr0 * gamma ** ((t + 1) // step_size)


def cosine_decay_no_pi(lr0, t, T, lr_min=0.0):
    return lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(min(t, T) / T))


def cosine_decay_full_period(lr0, t, T, lr_min=0.0):
    return lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(2 * math.pi * min(t, T) / T))


def cosine_decay_ignores_lr_min(lr0, t, T, lr_min=0.0):
    return 0.5 * lr0 * (1 + math.cos(math.pi * min(t, T) / T))


def cosine_decay_not_held(lr0, t, T, lr_min=0.0):
    return lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(math.pi * t / T))


def schedule_stub(lr0, t, length, extra=None):
    raise NotImplementedError()


# ----------------------------------------------------------------------------------------
# The catalogue (tests/test_exercises_contract.py runs the contract over it)
# ----------------------------------------------------------------------------------------

# exercise -> (reference class, a correct implementation)
OPTIMIZERS = {
    "optim.SGD.step": (O.SGD, SGDGood),
    "optim.Momentum.step": (O.Momentum, MomentumGood),
    "optim.Momentum.step_formulation": (O.Momentum, MomentumGood),
    "optim.RMSProp.step": (O.RMSProp, RMSPropGood),
    "optim.Adam.step": (O.Adam, AdamGood),
}
# what the visible message names
WEIGHTS, LEARNING_RATE = "parameter 0 after each step", "learning rate at each t"

CONTRACT = Contract(
    topic="optim",
    correct=[
        *(Correct(name, good, seeds=range(8)) for name, (_, good) in OPTIMIZERS.items()),
        Correct("optim.step_decay", step_decay_loop, seeds=range(8)),
        Correct("optim.cosine_decay", cosine_decay_sq, seeds=range(8)),
    ],
    stubs=[
        *(Stub(name, stub_of(base, "step")) for name, (base, _) in OPTIMIZERS.items()),
        Stub("optim.step_decay", schedule_stub),
        Stub("optim.cosine_decay", schedule_stub),
    ],
    mistakes=[
        Mistake("optim.SGD.step", SGDAscends, "ascends", (WEIGHTS,)),
        Mistake("optim.SGD.step", SGDNoLR, "no learning rate", (WEIGHTS,)),
        *(
            Mistake(name, impl, label, (WEIGHTS,))
            for name in ("optim.Momentum.step", "optim.Momentum.step_formulation")
            for impl, label in [
                (MomentumStaleVelocity, "stale velocity"),
                (MomentumForgetful, "forgets the velocity"),
                (MomentumWrongSign, "wrong sign"),
            ]
        ),
        Mistake("optim.RMSProp.step", RMSPropNoAverage, "no (1 - decay)", (WEIGHTS,)),
        Mistake("optim.RMSProp.step", RMSPropNoSqrt, "no square root", (WEIGHTS,)),
        Mistake("optim.Adam.step", AdamNoCorrection, "no bias correction", (WEIGHTS,)),
        Mistake("optim.Adam.step", AdamSwapsBetas, "betas swapped", (WEIGHTS,)),
        Mistake("optim.step_decay", step_decay_no_floor, "no floor", (LEARNING_RATE,)),
        Mistake("optim.step_decay", step_decay_early, "decays one step early", (LEARNING_RATE,)),
        Mistake("optim.cosine_decay", cosine_decay_no_pi, "no π", (LEARNING_RATE,)),
        Mistake("optim.cosine_decay", cosine_decay_full_period, "a full period", (LEARNING_RATE,)),
    ],
    delegations=[
        *(Delegation(name, delegating_to(base, "step")) for name, (base, _) in OPTIMIZERS.items()),
        Delegation(
            "optim.step_decay",
            lambda lr0, t, step_size, gamma=0.1: O.StepDecay(O.SGD([Parameter(0.0)], lr0), step_size, gamma).lr_at(t),
            "StepDecay.lr_at",
        ),
        Delegation(
            "optim.cosine_decay", lambda lr0, t, T, lr_min=0.0: O.cosine_decay(lr0, t, T, lr_min), "cosine_decay"
        ),
    ],
)


# ----------------------------------------------------------------------------------------
# Beyond the contract
# ----------------------------------------------------------------------------------------

# Mistakes only the hidden cases can see (the visible case has lr_min = 0 and t <= T).
HIDDEN_ONLY = [
    ("optim.cosine_decay", "ignores lr_min", cosine_decay_ignores_lr_min),
    ("optim.cosine_decay", "not held after T", cosine_decay_not_held),
]


@pytest.mark.parametrize(("name", "mistake", "impl"), HIDDEN_ONLY, ids=[m for _, m, _ in HIDDEN_ONLY])
def test_a_subtler_mistake_fails_the_hidden_cases(name, mistake, impl):
    with pytest.raises(GradCheckError, match="look at t = "):
        check(name, impl, hidden=True, quiet=True)


def test_momentum_checks_tell_the_formulations_apart():
    """The two formulations give the same weights; the velocity check tells them apart."""

    class GradientOnly(O.Momentum):
        def step(self):
            for p, v in zip(self.params, self.velocity, strict=True):
                v *= self.rho
                v += p.grad
                p.data -= self.lr * v

    check("optim.Momentum.step", GradientOnly, quiet=True)
    with pytest.raises(GradCheckError, match=r"self.velocity\[0\] after each step") as info:
        check("optim.Momentum.step_formulation", GradientOnly, quiet=True)
    assert "parameter 0 after each step" not in str(info.value)


# ----------------------------------------------------------------------------------------
# The worked numbers of the notebook
# ----------------------------------------------------------------------------------------

START = np.array([-6.0, 8.0])  # the notebook's starting point on Booth's function


def test_booth_hessian_eigenvalues_are_2_and_18():
    w = np.array([0.3, -1.2])
    H = np.stack([numerical_gradient(lambda v, i=i: booth_grad(v)[i], w.copy()) for i in range(2)])
    np.testing.assert_allclose(H, [[10, 8], [8, 10]], atol=1e-6)
    np.testing.assert_allclose(np.linalg.eigvalsh(H), [2, 18], atol=1e-6)
    assert f"{2 / 18:.3f}" == "0.111"


@pytest.mark.parametrize(
    ("lr", "regime", "printed"),
    [
        (0.01, "falls short", "5.12"),
        (0.10, "converges", "0.0325"),
        (0.11, "oscillates", "0.854"),
        (0.12, "diverges", "57.8"),
    ],
)
def test_the_four_learning_rate_regimes_on_booth(lr, regime, printed):
    """The notebook's 25 steps from (-6, 8), and the distance to the minimum it prints."""
    path = gradient_descent(booth_grad, START, lr, 25)
    distance = np.linalg.norm(path - BOOTH_MINIMUM, axis=1)
    assert f"{distance[-1]:.3g}" == printed
    across = (path - BOOTH_MINIMUM) @ np.array([1.0, 1.0])  # the steep direction (eigenvalue 18)
    if regime == "falls short":
        assert distance[-1] > 2.0 and np.all(np.diff(distance) < 0)
    elif regime == "converges":
        assert distance[-1] < 0.05
    elif regime == "oscillates":
        assert np.all(np.sign(across[1:]) != np.sign(across[:-1]))  # crosses the valley every step
        assert 0.5 < distance[-1] < distance[0]
    else:
        assert distance[-1] > 5 * distance[0]
    factor = 1 - lr * 18
    assert (regime == "diverges") == (abs(factor) > 1)


def test_grid_search_on_booth_finds_the_printed_point():
    axis = np.linspace(-10, 10, 5)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    values = booth(grid)
    np.testing.assert_allclose(grid[np.argmin(values)], [0.0, 5.0])
    assert values.min() == 9.0


def _descend(optimizer_class, steps, **kwargs):
    w = Parameter(START)
    opt = optimizer_class([w], **kwargs)
    path = [w.data.copy()]
    for _ in range(steps):
        w.grad[...] = booth_grad(w.data)
        opt.step()
        path.append(w.data.copy())
    return np.array(path)


def test_momentum_beats_gradient_descent_at_the_same_learning_rate():
    printed = {0.5: "0.686", 0.9: "0.029"}
    assert f"{np.linalg.norm(gradient_descent(booth_grad, START, 0.01, 60)[-1] - BOOTH_MINIMUM):.3f}" == "2.525"
    for rho, text in printed.items():
        path = _descend(O.Momentum, 60, lr=0.01, rho=rho)
        assert f"{np.linalg.norm(path[-1] - BOOTH_MINIMUM):.3f}" == text


def test_momentum_formulations_give_the_same_weights():
    paths = []
    for formulation in ("gradient", "step"):
        p = Parameter(START)
        opt = O.Momentum([p], lr=0.01, rho=0.9, formulation=formulation)
        path = []
        for _ in range(50):
            p.grad[...] = booth_grad(p.data)
            opt.step()
            path.append(p.data.copy())
        paths.append(np.array(path))
    np.testing.assert_allclose(paths[0], paths[1], rtol=0, atol=1e-12)


def test_adam_first_step_is_lr_in_every_coordinate():
    p = Parameter(START)
    opt = O.Adam([p], lr=0.5)
    p.grad[...] = booth_grad(p.data)
    opt.step()
    np.testing.assert_allclose(np.abs(p.data - START), 0.5, rtol=1e-7)


def test_uncorrected_adam_step_multiplier():
    """Without bias correction the step is scaled by (1 − β1ᵗ) / √(1 − β2ᵗ): 3.16 at t = 1."""
    t = np.arange(1, 5001)
    ratio = (1 - 0.9**t) / np.sqrt(1 - 0.999**t)
    assert f"{ratio[0]:.2f}" == "3.16"
    assert f"{ratio.max():.2f}" == "6.57" and t[np.argmax(ratio)] == 12
    assert f"{ratio[999]:.2f}" == "1.26"
    assert ratio[-1] == pytest.approx(1.0, abs=0.01)
    # With beta2 = beta1 the uncorrected steps are too small instead: sqrt(1 − β1ᵗ) < 1.
    same = (1 - 0.9**t) / np.sqrt(1 - 0.9**t)
    assert np.all(same < 1.0 + 1e-12) and same[0] == pytest.approx(math.sqrt(0.1))


def test_schedules_worked_values():
    assert [round(O.cosine_decay(0.5, t, 300), 4) for t in (0, 75, 150, 300)] == [0.5, 0.4268, 0.25, 0.0]
    assert O.cosine_decay(0.1, 50, 100) == pytest.approx(0.05)
    assert O.cosine_decay(0.1, 100, 100) == 0.0
    assert O.cosine_decay(0.1, 25, 100) == pytest.approx(0.05 * (1 + math.sqrt(0.5)))
    assert [O.step_decay(0.1, t, 30) for t in (0, 29, 30, 60, 90)] == pytest.approx([0.1, 0.1, 0.01, 1e-3, 1e-4])
    assert booth(BOOTH_MINIMUM) == 0.0
