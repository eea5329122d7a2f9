"""The losses assignment (course/exercises/losses.py): its catalogue of student
implementations, which tests/test_exercises_contract.py holds to the contract of every
exercise; the checks only this topic has; its cases; and the worked numbers its notebook
shows.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_exercises_contract import Contract, Correct, Delegation, Mistake, Stub, delegating_to, stub_of

import course
from course.exercises import check
from course.exercises.losses import away_from_hinge
from course.gradcheck import GradCheckError, compare, numerical_gradient

# ----------------------------------------------------------------------------------------
# Correct implementations, in another style than the notebook's
# ----------------------------------------------------------------------------------------


class SoftmaxCrossEntropyOneHot(course.losses.SoftmaxCrossEntropy):
    def backward(self):
        n, c = self.probs.shape
        return (self.probs - np.eye(c)[self.labels]) / n


class MulticlassSVMLoop(course.losses.MulticlassSVM):
    def backward(self):
        n, c = self.violated.shape
        grad = np.zeros((n, c))
        for i in range(n):
            for j in range(c):
                if self.violated[i, j]:
                    grad[i, j] += 1.0 / n
                    grad[i, self.labels[i]] -= 1.0 / n
        return grad


class BinaryCrossEntropyTwoTerms(course.losses.BinaryCrossEntropy):
    def backward(self):
        p, y = self.p, self.target
        return (-y / p + (1.0 - y) / (1.0 - p)) / len(p)


class BinaryCrossEntropyWithLogitsTanh(course.losses.BinaryCrossEntropyWithLogits):
    def backward(self):
        sigma = 0.5 * (1.0 + np.tanh(0.5 * self.z))  # σ(z) written with tanh
        return (sigma - self.target) / len(self.z)


class MSEDivide(course.losses.MSE):
    def backward(self):
        return np.divide(self.diff, len(self.diff))


class L2Multiply(course.losses.L2):
    def grad(self, w):
        return np.multiply(w, 2.0 * self.strength)


class L1Where(course.losses.L1):
    def grad(self, w):
        return np.where(w > 0, self.strength, np.where(w < 0, -self.strength, 0.0))


class ElasticNetCopysign(course.losses.ElasticNet):
    def grad(self, w):
        return 2.0 * self.strength * self.beta * w + np.copysign(self.strength, w)


# ----------------------------------------------------------------------------------------
# Plausible mistakes
# ----------------------------------------------------------------------------------------


class SoftmaxCrossEntropyNoMean(course.losses.SoftmaxCrossEntropy):
    def backward(self):
        grad = self.probs.copy()
        grad[np.arange(len(self.labels)), self.labels] -= 1.0
        return grad  # forgot the 1/N of the mean


class SoftmaxCrossEntropyNoOneHot(course.losses.SoftmaxCrossEntropy):
    def backward(self):
        return self.probs / len(self.labels)  # forgot the −1 at the correct class


class MulticlassSVMNoCorrectClass(course.losses.MulticlassSVM):
    def backward(self):
        return self.violated / len(self.labels)  # forgot −(count) at the correct class


class BinaryCrossEntropyOneBranch(course.losses.BinaryCrossEntropy):
    def backward(self):
        return -1.0 / self.p / len(self.p)  # the y = 1 branch only


class BinaryCrossEntropyWithLogitsSign(course.losses.BinaryCrossEntropyWithLogits):
    def backward(self):
        return (self.target - course.activations.sigmoid(self.z)) / len(self.z)  # sign error


class MSEMeanOverEntries(course.losses.MSE):
    def backward(self):
        return self.diff / self.diff.size  # np.mean-style: divides by N·D, not N


class L2NoTwo(course.losses.L2):
    def grad(self, w):
        return self.strength * w  # forgot the 2 of d(w²)/dw


class L1Linear(course.losses.L1):
    def grad(self, w):
        return self.strength * w  # the derivative of a different penalty


class ElasticNetNoBeta(course.losses.ElasticNet):
    def grad(self, w):
        return self.strength * (2.0 * w + np.sign(w))  # forgot β


# ----------------------------------------------------------------------------------------
# The catalogue (tests/test_exercises_contract.py runs the contract over it)
# ----------------------------------------------------------------------------------------

# exercise -> (the reference class, the method the student writes, a correct implementation,
#              [(a mistake, the gradient its message names)])
EXERCISES = {
    "losses.SoftmaxCrossEntropy.backward": (
        course.losses.SoftmaxCrossEntropy,
        "backward",
        SoftmaxCrossEntropyOneHot,
        [(SoftmaxCrossEntropyNoMean, "dL/dpred"), (SoftmaxCrossEntropyNoOneHot, "dL/dpred")],
    ),
    "losses.MulticlassSVM.backward": (
        course.losses.MulticlassSVM,
        "backward",
        MulticlassSVMLoop,
        [(MulticlassSVMNoCorrectClass, "dL/dpred")],
    ),
    "losses.BinaryCrossEntropy.backward": (
        course.losses.BinaryCrossEntropy,
        "backward",
        BinaryCrossEntropyTwoTerms,
        [(BinaryCrossEntropyOneBranch, "dL/dpred")],
    ),
    "losses.BinaryCrossEntropyWithLogits.backward": (
        course.losses.BinaryCrossEntropyWithLogits,
        "backward",
        BinaryCrossEntropyWithLogitsTanh,
        [(BinaryCrossEntropyWithLogitsSign, "dL/dpred")],
    ),
    "losses.MSE.backward": (course.losses.MSE, "backward", MSEDivide, [(MSEMeanOverEntries, "dL/dpred")]),
    "losses.L2.grad": (course.losses.L2, "grad", L2Multiply, [(L2NoTwo, "dR/dw")]),
    "losses.L1.grad": (course.losses.L1, "grad", L1Where, [(L1Linear, "dR/dw")]),
    "losses.ElasticNet.grad": (course.losses.ElasticNet, "grad", ElasticNetCopysign, [(ElasticNetNoBeta, "dR/dw")]),
}
NAMES = sorted(EXERCISES)

CONTRACT = Contract(
    topic="losses",
    correct=[Correct(name, correct) for name, (_, _, correct, _) in EXERCISES.items()],
    stubs=[Stub(name, stub_of(reference, method)) for name, (reference, method, _, _) in EXERCISES.items()],
    mistakes=[
        Mistake(name, mistake, says=(f"{tensor} ",))
        for name, (_, _, _, mistakes) in EXERCISES.items()
        for mistake, tensor in mistakes
    ],
    delegations=[
        Delegation(name, delegating_to(reference, method)) for name, (reference, method, _, _) in EXERCISES.items()
    ],
)


# ----------------------------------------------------------------------------------------
# Beyond the contract
# ----------------------------------------------------------------------------------------


def test_forgetting_the_mean_gets_a_hint():
    with pytest.raises(GradCheckError, match=r"5× too large, exactly the batch size"):
        check("losses.SoftmaxCrossEntropy.backward", SoftmaxCrossEntropyNoMean, quiet=True)


def test_composing_the_reference_penalties_is_delegation_too():
    class ComposedElasticNet(course.losses.ElasticNet):
        def grad(self, w):
            return course.L2(self.strength * self.beta).grad(w) + course.L1(self.strength).grad(w)

    with pytest.raises(GradCheckError, match="called the reference implementation"):
        check("losses.ElasticNet.grad", ComposedElasticNet, quiet=True)


def test_modifying_the_weights_in_place_is_reported():
    class InPlaceL2(course.losses.L2):
        def grad(self, w):
            w *= 2.0 * self.strength
            return w

    with pytest.raises(GradCheckError, match="w was modified in place"):
        check("losses.L2.grad", InPlaceL2, quiet=True)


def test_returning_a_wrong_shape_is_reported():
    class FlatMSE(course.losses.MSE):
        def backward(self):
            return (self.diff / len(self.diff)).ravel()

    with pytest.raises(GradCheckError, match=r"has shape \(15,\), expected \(5, 3\)"):
        check("losses.MSE.backward", FlatMSE, quiet=True)


# ----------------------------------------------------------------------------------------
# The cases
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_hidden_cases_include_random_shapes_and_a_large_sampled_case(name):
    exercise = course.exercises.get(name)
    a = exercise.cases(np.random.default_rng(1), hidden=True)
    b = exercise.cases(np.random.default_rng(2), hidden=True)
    key = "w" if name.endswith(".grad") else "pred"
    assert [c.arrays[key].shape for c in a] != [c.arrays[key].shape for c in b]
    large = [c for c in a if c.config.get("max_entries")]
    assert large and max(c.arrays[key].size for c in large) >= 50_000


def test_svm_cases_keep_every_margin_away_from_the_hinge():
    exercise = course.exercises.get("losses.MulticlassSVM.backward")
    for seed in range(30):
        for hidden in (False, True):
            for case in exercise.cases(np.random.default_rng(seed), hidden):
                scores, labels = case.arrays["pred"], case.arrays["target"]
                margins = scores - scores[np.arange(len(labels)), labels][:, None] + 1.0
                margins[np.arange(len(labels)), labels] = np.inf
                assert np.min(np.abs(margins)) >= 1e-3


def test_away_from_hinge_moves_only_the_scores_that_are_too_close():
    rng = np.random.default_rng(0)
    scores = np.array([[0.0, -1.0005, 0.5, -0.9999], [0.0004, 1.0, 0.5, 3.0]])
    labels = np.array([0, 1])
    repaired = away_from_hinge(scores, labels, rng)
    moved = repaired != scores
    np.testing.assert_array_equal(moved, [[False, True, False, True], [True, False, False, False]])
    margins = repaired - repaired[[0, 1], labels][:, None] + 1.0
    assert np.all(np.abs(margins[moved]) >= 1e-3)


def test_large_label_cases_sample_the_correct_classes():
    exercise = course.exercises.get("losses.SoftmaxCrossEntropy.backward")
    case = [c for c in exercise.cases(np.random.default_rng(0), True) if c.config.get("max_entries")][0]
    entries = exercise._entries(case)
    on_label = [ix for ix in entries if case.arrays["target"][ix[0]] == ix[1]]
    assert len(on_label) >= 25 and len(entries) <= 60


def test_whole_batch_differences_would_fail_a_correct_gradient():
    """Why the oracle differences one example at a time: for N = 2048 the batch mean's
    round-off is far above the 1e-7 tolerance, on the *reference's own* gradient."""
    rng = np.random.default_rng(0)
    scores, labels = rng.standard_normal((2048, 100)), rng.integers(0, 100, 2048)
    ref = course.SoftmaxCrossEntropy()
    ref.forward(scores, labels)
    grad = ref.backward()
    entries = [(int(n), int(j)) for n, j in zip(rng.integers(0, 2048, 40), rng.integers(0, 100, 40), strict=True)]
    whole = numerical_gradient(lambda s: ref.forward(s, labels), scores, indices=entries)
    assert not compare("dL/dpred", grad, whole, indices=entries).passed
    assert check("losses.SoftmaxCrossEntropy.backward", SoftmaxCrossEntropyOneHot, hidden=True, quiet=True)


# ----------------------------------------------------------------------------------------
# The worked examples of the lectures, as the notebook shows them
# ----------------------------------------------------------------------------------------

CAT_CAR_FROG = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])  # one row per image


def test_softmax_cross_entropy_of_the_cat():
    scores = CAT_CAR_FROG[:1]
    np.testing.assert_allclose(np.exp(scores[0]), [24.5, 164.0, 0.18], atol=0.05)
    ce = course.SoftmaxCrossEntropy()
    assert ce.forward(scores, np.array([0])) == pytest.approx(2.04, abs=5e-3)
    np.testing.assert_allclose(ce.probs[0], [0.13, 0.87, 0.00], atol=5e-3)
    np.testing.assert_allclose(ce.backward()[0], [0.13 - 1, 0.87, 0.00097], atol=5e-3)


def test_multiclass_svm_of_the_three_images():
    svm = course.MulticlassSVM()
    per_image = [svm.forward(CAT_CAR_FROG[i : i + 1], np.array([i])) for i in range(3)]
    np.testing.assert_allclose(per_image, [2.9, 0.0, 12.9], atol=1e-12)
    assert svm.forward(CAT_CAR_FROG, np.array([0, 1, 2])) == pytest.approx(15.8 / 3)


def cross_entropy_small(s: np.ndarray, y: int) -> float:
    return float(np.log1p(np.exp(np.delete(s, y) - s[y]).sum()))


def test_cross_entropy_versus_svm_questions():
    svm = course.MulticlassSVM()
    for s in ([10.0, -2.0, 3.0], [10.0, 9.0, 9.0], [10.0, -100.0, -100.0]):
        s = np.array(s)
        doubled = np.concatenate([[20.0], s[1:]])
        assert svm.forward(s[None, :], np.array([0])) == 0.0
        assert svm.forward(doubled[None, :], np.array([0])) == 0.0
        assert cross_entropy_small(s, 0) > 0
        assert cross_entropy_small(doubled, 0) < cross_entropy_small(s, 0)
    last = np.array([10.0, -100.0, -100.0])
    jiggled = last + np.array([0.1, 0.3, -0.2])
    assert svm.forward(jiggled[None, :], np.array([0])) == 0.0
    assert cross_entropy_small(jiggled, 0) != cross_entropy_small(last, 0)
    assert cross_entropy_small(last, 0) == pytest.approx(2 * np.exp(-110.0), rel=1e-12)
    tiny = course.SoftmaxCrossEntropy().forward(last[None, :], np.array([0]))
    assert tiny == pytest.approx(2 * np.exp(-110.0), rel=1e-9)  # log1p keeps the 3e-48 that log(1 + ...) loses


def test_hinge_loss_is_not_unique_and_l2_picks_the_smallest_scale():
    svm, car = course.MulticlassSVM(), np.array([1])
    scores = np.array([[1.3, 2.5, 2.0]])
    assert svm.forward(scores, car) == pytest.approx(0.5)
    assert svm.forward(2 * scores, car) == 0.0
    W, x = np.array([[0.5, 0.8], [1.0, 1.5], [0.9, 1.1]]), np.array([1.0, 1.0])
    np.testing.assert_allclose(W @ x, scores[0])
    l2, c = course.L2(0.01), np.linspace(0.0, 4.0, 401)
    total = [svm.forward((ci * W @ x)[None, :], car) + l2.value(ci * W) for ci in c]
    assert c[int(np.argmin(total))] == pytest.approx(2.0)
    assert min(total) == pytest.approx(0.01 * 4 * 6.16)


def test_binary_cross_entropy_at_huge_logits():
    for z, y in [(-1000.0, 1.0), (1000.0, 0.0)]:
        logits = course.BinaryCrossEntropyWithLogits()
        assert logits.forward(np.array([z]), np.array([y])) == 1000.0
        np.testing.assert_allclose(logits.backward(), [1.0 - 2 * y])
        p = course.activations.sigmoid(np.array([z]))
        clipped = course.BinaryCrossEntropy().forward(p, np.array([y]))
        assert clipped == pytest.approx(-np.log(1e-12), rel=1e-6)  # finite, but not 1000
    lecture = course.BinaryCrossEntropy()
    assert lecture.forward(np.array([0.590378]), np.array([1.0])) == pytest.approx(0.5270, abs=1e-4)
    assert lecture.backward()[0] == pytest.approx(-1.6938, abs=1e-4)


def test_mse_example():
    pred = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    target = np.array([[1.5, 2.0], [0.0, -1.0], [2.0, 1.0]])
    mse = course.MSE()
    assert mse.forward(pred, target) == pytest.approx(2.5 / 2 / 3)
    np.testing.assert_allclose(mse.backward(), (pred - target) / 3)


def test_regularisers_on_the_small_matrix():
    W = np.array([[0.5, -1.0], [0.0, 2.0]])
    expected = {
        course.L2(0.1): (0.525, [0.1, -0.2, 0.0, 0.4]),
        course.L1(0.1): (0.35, [0.1, -0.1, 0.0, 0.1]),
        course.ElasticNet(0.1, beta=0.5): (0.6125, [0.15, -0.2, 0.0, 0.3]),
    }
    for reg, (value, grad) in expected.items():
        assert reg.value(W) == pytest.approx(value)
        np.testing.assert_allclose(reg.grad(W).ravel(), grad, atol=1e-15)
