"""Hints name the mistake the catalogue's planted bugs make, by a stable name the class report counts.

The buggy implementations are the catalogue's own (tests/test_exercises_<topic>.py); each is
checked on its visible cases in this process (no sandbox) and the names of the recognised
mistakes (``Verdict.mistakes``) are compared with the one the bug makes.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import test_exercises_gradients as gradients
import test_exercises_graphs as graphs
import test_exercises_layers as layers
import test_exercises_losses as losses
import test_exercises_mlp as mlp
import test_exercises_neurons as neurons
import test_exercises_optim as optim
from test_exercises_contract import TOPICS

from autograder.host import mistakes as class_report
from autograder.verdicts import engine
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


# ----------------------------------------------------------------------------------------
# Every planted bug of the catalogue, enumerated from the topics' CONTRACTs
# ----------------------------------------------------------------------------------------

_CONTRACTS = [importlib.import_module(f"test_exercises_{topic}").CONTRACT for topic in TOPICS]

#: Planted bugs named by their failure, but whose text is not a "hint:" line: the problem line
#: says what to do. Each with the reason.
NO_HINT_LINE = {
    "graphs.Value.backward-BackwardPlainRecursion": (
        "it raises RecursionError on the deep chain; the problem line names the depth and says to walk the "
        "graph with an explicit stack (named 'raised an error')"
    ),
}


def _verdicts(name: str, impl, hidden: bool) -> list:
    exercise = get(name)
    rng = np.random.default_rng(_seed(name, hidden))
    return [judge_case(exercise, case, *run_case(exercise, impl, case)) for case in exercise.cases(rng, hidden)]


def _hints(verdict) -> list[str]:
    return [c.hint for c in verdict.checks if not c.passed and c.hint] + [h for _, h in verdict.recognised if h]


@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "hidden"])
@pytest.mark.parametrize("mistake", [pytest.param(m, id=m.id) for c in _CONTRACTS for m in c.mistakes])
def test_every_planted_bug_gets_a_named_mistake_and_a_hint(mistake, hidden):
    """Each failing case of each planted bug names a mistake (the class report counts it) and
    its message gives a hint; a bug added to a catalogue without one fails here."""
    failing = [v for v in _verdicts(mistake.exercise, mistake.impl, hidden) if not v.passed]
    assert failing, "the planted bug passes"
    for v in failing:
        message = v.message(reveal=not hidden)
        assert v.mistakes, f"no mistake named for:\n{message}"
        if mistake.id in NO_HINT_LINE:
            continue
        assert _hints(v) and "    hint: " in message, f"no hint in:\n{message}"


def test_the_listed_exceptions_are_planted_bugs():
    ids = {m.id for c in _CONTRACTS for m in c.mistakes}
    assert set(NO_HINT_LINE) <= ids


@pytest.mark.parametrize("correct", [pytest.param(e, id=e.id) for c in _CONTRACTS for e in c.correct])
def test_a_correct_implementation_in_another_style_names_no_mistake(correct):
    """(On the visible cases: test_exercises_contract.py runs the hidden ones, which must pass.)"""
    verdicts = _verdicts(correct.exercise, correct.impl, False)
    assert verdicts and all(v.passed for v in verdicts)
    assert not any(v.mistakes or v.recognised for v in verdicts)
    assert not any(c.mistake or c.hint for v in verdicts for c in v.checks)


#: Planted bugs whose named mistake is specific to them, by the name the class report counts
#: (besides PLANTED's): one per way of recognising (a known bug run on the case, a candidate
#: answer, a named problem).
NAMED = [
    ("optim.Momentum.step", optim.MomentumStaleVelocity, "stale velocity"),
    ("optim.Momentum.step", optim.MomentumForgetful, "velocity not kept"),
    ("optim.RMSProp.step", optim.RMSPropNoAverage, "no (1 − decay) weight"),
    ("optim.RMSProp.step", optim.RMSPropNoSqrt, "no square root"),
    ("optim.Adam.step", optim.AdamNoCorrection, "no bias correction"),
    ("optim.step_decay", optim.step_decay_no_floor, "no floor"),
    ("optim.step_decay", optim.step_decay_early, "decays one step early"),
    ("optim.cosine_decay", optim.cosine_decay_no_pi, "no π"),
    ("optim.cosine_decay", optim.cosine_decay_full_period, "a full period"),
    ("layers.Sequential.backward", layers.SequentialSkipsLastLayer, "a layer skipped"),
    ("layers.Sigmoid.backward", layers.SigmoidWrongDerivative, "1 − σ instead of σ(1 − σ)"),
    ("layers.Tanh.backward", layers.TanhWrongDerivative, "1 − y instead of 1 − y²"),
    ("layers.LinearSigmoid.backward", layers.LinearSigmoidNoLocalGradient, "σ' missing in dW"),
    ("losses.SoftmaxCrossEntropy.backward", losses.SoftmaxCrossEntropyNoOneHot, "no −1 at the correct class"),
    ("losses.MulticlassSVM.backward", losses.MulticlassSVMNoCorrectClass, "nothing at the correct class"),
    ("losses.BinaryCrossEntropy.backward", losses.BinaryCrossEntropyOneBranch, "the y = 1 branch only"),
    ("losses.MSE.backward", losses.MSEMeanOverEntries, "divided by N·D, not N"),
    ("losses.L1.grad", losses.L1Linear, "L2's gradient for L1"),
    ("losses.L2.grad", losses.L2NoTwo, "the 2 of d(w²)/dw missing"),
    ("losses.ElasticNet.grad", losses.ElasticNetNoBeta, "β missing"),
    ("graphs.Value.ops", graphs.OpsAddOverwrites, "+ overwrites .grad"),
    ("graphs.Value.ops", graphs.OpsMulForgetsUpstream, "* not times out.grad"),
    ("graphs.Value.ops", graphs.OpsPowOffByOne, "xᵏ instead of xᵏ⁻¹"),
    ("graphs.Value.ops", graphs.OpsTanhWrong, "1 − t instead of 1 − t²"),
    ("graphs.Value.ops", graphs.OpsSigmoidWrong, "σ instead of σ(1 − σ)"),
    ("graphs.Value.backward", graphs.BackwardBreadthFirst, "breadth-first, not topological"),
    ("graphs.MaxGate.backward", graphs.MaxGateToSmaller, Mistake.SWAPPED),
    ("gradients.Swish.backward", gradients.SwishPlanted, "x missing in dβ"),
    ("gradients.Swish.backward", gradients.SwishForgetsBeta, "β missing in dx"),
    ("gradients.relative_error", gradients.relative_error_no_floor, "no floor"),
    ("gradients.relative_error", gradients.relative_error_larger_of_two, "max(|a|, |b|) in the denominator"),
    ("gradients.relative_error", gradients.relative_error_mean, "mean, not max"),
    ("gradients.numerical_gradient", gradients._ng(gradients._restores_by_arithmetic), "x restored by arithmetic"),
    ("gradients.numerical_gradient", gradients._ng(gradients._never_restores), "x not restored"),
    ("mlp.TwoLayerNet.scores", mlp.variant(relu=False), "no ReLU"),
    ("mlp.TwoLayerNet.scores", mlp.variant(b2=False), "b2 forgotten"),
    ("mlp.TwoLayerNet.grads", mlp.variant(mask=False), "no ReLU mask"),
    ("mlp.TwoLayerNet.grads", mlp.variant(sign=-1.0), "sign error in dW2"),
]


@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "hidden"])
@pytest.mark.parametrize(("name", "impl", "mistake"), [pytest.param(*p, id=f"{p[0]}-{p[2]}") for p in NAMED])
def test_a_planted_bug_gets_its_own_name_and_no_other(name, impl, mistake, hidden):
    """The bug is named by its own mistake in every failing case, and by no other (a generic
    name beside it would count the submission twice in the class report)."""
    failing = [v for v in _verdicts(name, impl, hidden) if not v.passed]
    assert failing
    for v in failing:
        assert v.mistakes == [mistake], v.message()


def test_a_right_dx_beside_a_wrong_dy_is_not_called_swapped():
    """A max gate that sends dz to both inputs, on a case where x wins: dx is right and dy is dz,
    which is also the other input's gradient; only both wrong would be an exchange."""
    for hidden in (False, True):
        for v in _verdicts("graphs.MaxGate.backward", graphs.MaxGateBoth, hidden):
            assert Mistake.SWAPPED not in v.mistakes, v.message()


def test_one_wrong_number_is_not_a_constant_factor():
    assert diagnosis(np.array([1.37]), np.array([1.0])) == ("", "")
    assert diagnosis(np.array(2.0), np.array(1.0)) == ("", "")
    assert diagnosis(np.array([-1.0]), np.array([1.0]))[0] == Mistake.WRONG_SIGN  # a sign is still a sign
    assert diagnosis(np.array([1.37, 2.74]), np.array([1.0, 2.0]))[0] == Mistake.CONSTANT_FACTOR


def test_an_unrestored_x_is_told_whether_it_moved_by_round_off_or_by_h():
    arithmetic = _verdicts("gradients.numerical_gradient", gradients._ng(gradients._restores_by_arithmetic), False)
    never = _verdicts("gradients.numerical_gradient", gradients._ng(gradients._never_restores), False)
    arithmetic_text = "\n".join(v.message() for v in arithmetic)
    never_text = "\n".join(v.message() for v in never)
    assert "last bits" in arithmetic_text and "moved by" not in arithmetic_text
    assert "moved by -1e-05" in never_text and "last bits" not in never_text


def test_a_new_mistake_name_reaches_the_class_report():
    """A name recognised by running a known bug (and one recognised on a problem only) goes into
    the grading record and is counted in the report's section."""
    cells = {
        "test_adam": engine._cell_verdict("test_adam", _verdicts("optim.Adam.step", optim.AdamNoCorrection, True)),
        "test_ng": engine._cell_verdict(
            "test_ng",
            _verdicts("gradients.numerical_gradient", gradients._ng(gradients._restores_by_arithmetic), True),
        ),
    }
    outcomes = class_report.read_record(engine.GradingRun(cells, "ok", True).record())
    named = {o.exercise: o.mistakes for o in outcomes}
    assert "no bias correction" in named["Adam.step"]
    assert "x restored by arithmetic" in named["numerical_gradient"]
    summary = class_report.class_mistakes([class_report.SubmissionRecord("s1", tuple(outcomes))])
    html = class_report.render(summary)
    assert "100 % no bias correction (1)" in html and "100 % x restored by arithmetic (1)" in html
