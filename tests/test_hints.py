"""Hints name the mistake the catalogue's planted bugs make, by a stable name the class report counts.

The buggy implementations are the catalogue's own (tests/test_exercises_<topic>.py); each is
checked on its visible cases in this process (no sandbox) and the names of the recognised
mistakes (``Verdict.mistakes``) are compared with the one the bug makes.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_exercises_gradients as gradients
import test_exercises_graphs as graphs
import test_exercises_layers as layers
import test_exercises_losses as losses
import test_exercises_mlp as mlp
import test_exercises_neurons as neurons
import test_exercises_optim as optim

from course.exercises import get
from course.exercises.base import _seed, judge_case, run_case
from course.exercises.layers import compare_scaled
from course.gradcheck import Mistake, compare, diagnosis


def _mistakes(name: str, impl, hidden: bool = False) -> tuple[set[str], list[str]]:
    """The mistake names and the hints of the failing checks of ``impl`` on the exercise's cases."""
    exercise = get(name)
    rng = np.random.default_rng(_seed(name, hidden))
    names: set[str] = set()
    hints: list[str] = []
    for case in exercise.cases(rng, hidden):
        verdict = judge_case(exercise, case, *run_case(exercise, impl, case))
        names.update(verdict.mistakes)
        hints += [c.hint for c in verdict.checks if not c.passed and c.hint]
    return names, hints


_NEURON_MISTAKES = {m.label: m for m in neurons.CONTRACT.mistakes}
_LEAKY = _NEURON_MISTAKES["αx instead of α on the negative side"].impl

PLANTED = [
    ("graphs.MulGate.backward", graphs.MulGateUnswitched, Mistake.SWAPPED),
    ("graphs.MulGate.backward", graphs.MulGateSign, Mistake.WRONG_SIGN),
    ("graphs.AddGate.backward", graphs.AddGateNoUpstream, "local derivative not times dz"),
    ("graphs.MaxGate.backward", graphs.MaxGateBoth, "dz to both inputs"),
    ("graphs.Value.backward", graphs.BackwardNoSeed, Mistake.ALL_ZEROS),
    ("optim.SGD.step", optim.SGDAscends, Mistake.WRONG_SIGN),
    ("optim.SGD.step", optim.SGDNoLR, "missing learning rate"),
    ("optim.Momentum.step", optim.MomentumWrongSign, Mistake.WRONG_SIGN),
    ("optim.Adam.step", optim.AdamSwapsBetas, "betas swapped"),
    ("layers.Linear.backward", layers.LinearBiasNotSummed, Mistake.NOT_SUMMED),
    ("layers.Linear.backward", layers.LinearOverwrites, Mistake.OVERWRITTEN),
    ("layers.ReLU.backward", layers.ReLUWrongBranch, Mistake.INVERTED_MASK),
    ("losses.SoftmaxCrossEntropy.backward", losses.SoftmaxCrossEntropyNoMean, Mistake.MISSING_MEAN),
    ("losses.BinaryCrossEntropyWithLogits.backward", losses.BinaryCrossEntropyWithLogitsSign, Mistake.WRONG_SIGN),
    ("mlp.TwoLayerNet.grads", mlp.variant(bias_sum=False), Mistake.DOUBLED_MEAN),
    ("mlp.TwoLayerNet.grads", mlp.variant(mean=False), Mistake.MISSING_MEAN),
    ("mlp.TwoLayerNet.grads", mlp.variant(reg_grad=0.0), "no penalty gradient"),
    (
        "neurons.sigmoid_grad",
        _NEURON_MISTAKES["x (1 − x) instead of σ(x)(1 − σ(x))"].impl,
        "x(1 − x) instead of σ(x)(1 − σ(x))",
    ),
    ("neurons.relu_grad", _NEURON_MISTAKES["returns ReLU itself"].impl, "the function instead of its derivative"),
    ("neurons.leaky_relu_grad", _LEAKY, "αx instead of α"),
    ("neurons.Maxout.backward", neurons.MaxoutOverwrites, Mistake.OVERWRITTEN),
    ("gradients.Swish.backward", gradients.SwishOverwrites, Mistake.OVERWRITTEN),
]


@pytest.mark.parametrize(("name", "impl", "mistake"), [pytest.param(*p, id=f"{p[0]}-{p[2]}") for p in PLANTED])
def test_a_planted_bug_is_named(name, impl, mistake):
    names, hints = _mistakes(name, impl)
    assert mistake in names, (names, hints)
    assert hints  # and the student reads a hint for it


def test_an_averaged_bias_gradient_in_a_layer_is_not_said_to_divide_by_n_twice():
    names, hints = _mistakes("layers.Linear.backward", layers.LinearBiasNotSummed)
    assert Mistake.DOUBLED_MEAN not in names
    assert not any("twice" in h for h in hints)
    assert any("sum of their gradients over the batch" in h for h in hints)


def test_the_batch_factor_depends_on_whether_the_quantity_is_a_mean():
    rng = np.random.default_rng(0)
    right = rng.standard_normal((4, 3))
    assert diagnosis(right * 4, right, batch=4)[0] == Mistake.MISSING_MEAN
    assert diagnosis(right / 4, right, batch=4)[0] == Mistake.DOUBLED_MEAN
    assert diagnosis(right / 4, right, batch=4, averaged=False)[0] == Mistake.NOT_SUMMED
    assert diagnosis(right * 4, right, batch=4, averaged=False)[0] == Mistake.CONSTANT_FACTOR
    square = rng.standard_normal((3, 3))
    assert diagnosis(square.T, square, batch=3)[0] == Mistake.TRANSPOSED


def test_a_correct_gradient_names_no_mistake():
    right = np.random.default_rng(1).standard_normal((5, 2))
    check = compare("dL/dW", right.copy(), right, batch=5)
    assert check.passed and check.mistake == "" and check.hint == ""


def test_the_worst_entry_is_the_worst_by_the_measure_the_message_reports():
    """A tiny entry off by round-off would be the worst by plain relative error, though it
    looks right; the real mistake (1 % off everywhere else) is where the ring must go."""
    numeric = np.array([[1.0, 2.0, -1.5], [0.8, 1e-9, 3.0]])
    analytic = numeric * 1.01
    analytic[1, 1] = -1e-9  # a sign flip of an entry far below the tensor's scale
    plain = compare("dL/dW", analytic, numeric)
    assert plain.worst_index == (1, 1)  # the plain measure picks the entry that looks right
    scaled = compare_scaled("dL/dW", analytic, numeric)
    assert not scaled.passed
    errors = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-4 * 3.0)
    assert scaled.worst_index == np.unravel_index(int(np.argmax(errors)), errors.shape)
    assert scaled.worst_index != (1, 1)
    assert scaled.max_rel_error == pytest.approx(errors.max())
    assert scaled.analytic_value == analytic[scaled.worst_index]
