"""Tests for course.losses: each loss against an independent implementation and its backward
against centred differences; stability at extreme inputs; the input checks; regularisers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from course.gradcheck import numerical_gradient
from course.layers import Parameter
from course.losses import (
    L1,
    L2,
    MSE,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    ElasticNet,
    MulticlassSVM,
    SoftmaxCrossEntropy,
)

# -- independent implementations, one example at a time, with the math module ---------------


def mse_reference(pred, target):
    """(1/N) Σ_n ½ ‖ŷ_n − y_n‖²."""
    rows = [np.atleast_1d(p - t) for p, t in zip(pred, target, strict=True)]
    return sum(0.5 * sum(float(v) ** 2 for v in r) for r in rows) / len(rows)


def bce_reference(p, y):
    """−(1/N) Σ [y log p + (1 − y) log(1 − p)] on probabilities."""
    pairs = list(zip(np.ravel(p), np.ravel(y), strict=True))
    return -sum(t * math.log(q) + (1 - t) * math.log(1 - q) for q, t in pairs) / len(pairs)


def bce_logits_reference(z, y):
    """The same with p = 1 / (1 + e^{−z}), written naively (fine for moderate z)."""
    return bce_reference([1.0 / (1.0 + math.exp(-v)) for v in np.ravel(z)], y)


def softmax_ce_reference(scores, labels):
    """(1/N) Σ_n −log(exp(s_{y_n}) / Σ_j exp(s_j))."""
    total = 0.0
    for s, y in zip(scores, labels, strict=True):
        total -= math.log(math.exp(s[y]) / sum(math.exp(v) for v in s))
    return total / len(labels)


def svm_reference(scores, labels, margin=1.0):
    """(1/N) Σ_n Σ_{j ≠ y_n} max(0, s_j − s_{y_n} + margin)."""
    total = 0.0
    for s, y in zip(scores, labels, strict=True):
        total += sum(max(0.0, s[j] - s[y] + margin) for j in range(len(s)) if j != y)
    return total / len(labels)


# -- inputs ---------------------------------------------------------------------------------


def probabilities(rng, shape):
    """In [0.1, 0.9]: away from the clipping at 0 and 1."""
    return rng.uniform(0.1, 0.9, shape)


def targets_apart_from(rng, p):
    """Soft targets in [0, 1], each at least 0.05 from its prediction p, so that no gradient
    entry (p − y)/… cancels to a size the centred difference cannot resolve."""
    y = rng.uniform(0.0, 1.0, np.shape(p))
    while np.any(close := np.abs(y - p) < 0.05):
        y[close] = rng.uniform(0.0, 1.0, np.count_nonzero(close))
    return y


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def labels_away_from_hinges(rng, n, c, margin):
    """Scores and labels with every s_j − s_y + margin at least 1e-3 away from the hinge at 0."""
    while True:
        scores, labels = rng.normal(0.0, 2.0, (n, c)), rng.integers(0, c, n)
        m = scores - scores[np.arange(n), labels][:, None] + margin
        m[np.arange(n), labels] = 1.0
        if np.min(np.abs(m)) > 1e-3:
            return scores, labels


# name -> (make loss, draw (pred, target) for N examples and C classes/outputs, reference)
CATALOGUE = {
    "MSE (N,)": (MSE, lambda rng, n, c: (p := rng.uniform(0, 1, n), targets_apart_from(rng, p)), mse_reference),
    "MSE (N, D)": (
        MSE,
        lambda rng, n, c: (p := rng.uniform(0, 1, (n, c)), targets_apart_from(rng, p)),
        mse_reference,
    ),
    "BCE (N,)": (
        BinaryCrossEntropy,
        lambda rng, n, c: (probabilities(rng, n), rng.integers(0, 2, n).astype(float)),
        bce_reference,
    ),
    "BCE (N, 1) soft targets": (
        BinaryCrossEntropy,
        lambda rng, n, c: (p := probabilities(rng, (n, 1)), targets_apart_from(rng, p)),
        bce_reference,
    ),
    "BCE with logits (N,)": (
        BinaryCrossEntropyWithLogits,
        lambda rng, n, c: (rng.uniform(-3, 3, n), rng.integers(0, 2, n).astype(float)),
        bce_logits_reference,
    ),
    "BCE with logits (N, 1)": (
        BinaryCrossEntropyWithLogits,
        lambda rng, n, c: (z := rng.uniform(-3, 3, (n, 1)), targets_apart_from(rng, sigmoid(z))),
        bce_logits_reference,
    ),
    "softmax cross-entropy": (
        SoftmaxCrossEntropy,
        # Scores in [-1, 1] keep every probability above 1.5%: no gradient entry is tiny.
        lambda rng, n, c: (rng.uniform(-1, 1, (n, c)), rng.integers(0, c, n)),
        softmax_ce_reference,
    ),
    "multiclass SVM": (
        MulticlassSVM,
        lambda rng, n, c: labels_away_from_hinges(rng, n, c, 1.0),
        svm_reference,
    ),
    "multiclass SVM margin 0.5": (
        lambda: MulticlassSVM(margin=0.5),
        lambda rng, n, c: labels_away_from_hinges(rng, n, c, 0.5),
        lambda s, y: svm_reference(s, y, margin=0.5),
    ),
}
NAMES = list(CATALOGUE)

cases = st.tuples(st.integers(1, 5), st.integers(2, 5), st.integers(0, 2**32 - 1))


def draw(name, n, c, seed):
    make, sample, reference = CATALOGUE[name]
    pred, target = sample(np.random.default_rng(seed), n, c)
    return make(), pred, target, reference


@pytest.mark.parametrize("name", NAMES)
@given(case=cases)
def test_value_matches_independent_implementation(name, case):
    """Check forward() against a loop over examples written with the math module."""
    loss, pred, target, reference = draw(name, *case)
    value = loss.forward(pred, target)
    assert type(value) is float
    assert value == pytest.approx(reference(pred, target), rel=1e-12, abs=1e-14)
    assert loss(pred, target) == value


@pytest.mark.parametrize("name", NAMES)
@given(case=cases)
def test_backward_matches_centred_differences(name, case, assert_gradients_match, well_conditioned):
    """Check backward() = dL/dpred, of pred's shape, against centred differences of forward."""
    loss, pred, target, _ = draw(name, *case)
    numeric = numerical_gradient(lambda p: loss.forward(p, target), pred.copy())
    assume(well_conditioned(numeric))
    loss.forward(pred, target)
    assert_gradients_match(loss.backward(), numeric, f"{name}: dL/dpred")


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_a_mean_over_the_batch(name):
    """Check that a batch repeated twice has the same loss and half the gradient per example."""
    loss, pred, target, _ = draw(name, 3, 4, seed=5)
    value, grad = loss.forward(pred, target), loss.backward()
    twice = loss.forward(np.concatenate([pred, pred]), np.concatenate([target, target]))
    assert twice == pytest.approx(value, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), np.concatenate([grad, grad]) / 2, rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_backward_before_forward_raises_runtime_error(name):
    """Check that a fresh loss refuses backward() and says forward() must come first."""
    make = CATALOGUE[name][0]
    with pytest.raises(RuntimeError, match="forward"):
        make().backward()


@pytest.mark.parametrize("loss_cls", [BinaryCrossEntropy, BinaryCrossEntropyWithLogits])
def test_bce_gives_the_same_value_for_shapes_n_and_n_by_1(loss_cls):
    """Check (N,) and (N, 1) are the same batch; the gradient keeps the shape it was given."""
    p, y = np.array([0.2, 0.7, 0.9]), np.array([0.0, 1.0, 1.0])
    loss = loss_cls()
    flat = loss.forward(p, y)
    assert loss.backward().shape == (3,)
    column = loss.forward(p[:, None], y[:, None])
    assert loss.backward().shape == (3, 1)
    assert column == pytest.approx(flat, rel=1e-15)


def test_mse_of_one_number_is_half_the_squared_error():
    """Check lecture 4's regression loss E = ½ (y − ŷ)², and its gradient ŷ − y."""
    loss = MSE()
    assert loss.forward(np.array([[3.0]]), np.array([[1.0]])) == 2.0
    np.testing.assert_array_equal(loss.backward(), [[2.0]])


def test_bce_gradient_is_the_lectures_formula():
    """Check dE/dŷ = (ŷ − y) / (ŷ (1 − ŷ)) for one example (lecture 4)."""
    loss = BinaryCrossEntropy()
    for p, y in [(0.3, 1.0), (0.3, 0.0), (0.8, 0.25)]:
        loss.forward(np.array([p]), np.array([y]))
        assert loss.backward()[0] == pytest.approx((p - y) / (p * (1 - p)), rel=1e-14)


# -- stability --------------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")
def test_bce_with_logits_is_exact_at_plus_and_minus_1000():
    """Check the log-sum-exp form: per-example losses 0 or 1000, gradients (σ(z) − y)/N exact."""
    loss = BinaryCrossEntropyWithLogits()
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    assert loss.forward(z, y) == 500.0  # (0 + 0 + 1000 + 1000) / 4
    np.testing.assert_array_equal(loss.backward(), [0.0, 0.0, 0.25, -0.25])


@pytest.mark.filterwarnings("error")
def test_softmax_cross_entropy_is_exact_at_plus_and_minus_1000():
    """Check −log softmax at scores [1000, 0, −1000]: 0, 1000 and 2000 for the three labels."""
    loss = SoftmaxCrossEntropy()
    scores = np.array([[1000.0, 0.0, -1000.0]] * 3)
    assert loss.forward(scores, np.array([0, 1, 2])) == 1000.0  # (0 + 1000 + 2000) / 3
    grad = loss.backward()
    np.testing.assert_array_equal(grad, [[0.0, 0.0, 0.0], [1 / 3, -1 / 3, 0.0], [1 / 3, 0.0, -1 / 3]])


@pytest.mark.filterwarnings("error")
def test_bce_on_probabilities_is_finite_at_0_and_1():
    """Check that p = 0 or 1 gives a large finite loss and gradient, never inf or NaN."""
    loss = BinaryCrossEntropy()
    value = loss.forward(np.array([0.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0]))
    grad = loss.backward()
    assert math.isfinite(value) and np.all(np.isfinite(grad))
    assert value > 10.0  # two confident mistakes cost about −log(1e-12) = 27.6 each
    assert grad[0] < 0 < grad[1]  # push p up where y = 1, down where y = 0


# -- input checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("loss_cls", [SoftmaxCrossEntropy, MulticlassSVM])
@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0.0, 1.0, 2.0]), "integers"),
        (np.array([0, 1, 3]), r"\[0, 2\]"),
        (np.array([-1, 1, 2]), r"\[0, 2\]"),
        (np.array([0, 1]), r"\(3,\)"),
        (np.array([[0], [1], [2]]), r"\(3,\)"),
    ],
    ids=["float labels", "label too large", "negative label", "too few labels", "labels (N, 1)"],
)
def test_bad_labels_raise_value_error(loss_cls, labels, match):
    """Check that labels must be N integers in [0, C − 1], with a message that says so."""
    with pytest.raises(ValueError, match=match):
        loss_cls().forward(np.zeros((3, 3)), labels)


@pytest.mark.parametrize("loss_cls", [SoftmaxCrossEntropy, MulticlassSVM])
def test_scores_must_be_a_matrix(loss_cls):
    """Check that a single score vector (C,) is refused rather than read as N examples."""
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        loss_cls().forward(np.zeros(3), np.array([0, 1, 2]))


@pytest.mark.parametrize("loss_cls", [MSE, BinaryCrossEntropy, BinaryCrossEntropyWithLogits])
@pytest.mark.parametrize(("pred_shape", "target_shape"), [((4,), (4, 1)), ((4, 1), (4,)), ((4,), (3,)), ((), ())])
def test_mismatched_shapes_raise_value_error(loss_cls, pred_shape, target_shape):
    """Check no broadcasting: (4,) against (4, 1) would silently make a 4 × 4 loss."""
    with pytest.raises(ValueError, match="shape|scalar"):
        loss_cls().forward(np.full(pred_shape, 0.5), np.full(target_shape, 0.5))


def test_bce_refuses_scores_where_probabilities_belong():
    """Check p outside [0, 1] raises and points to the logits version."""
    with pytest.raises(ValueError, match="WithLogits"):
        BinaryCrossEntropy().forward(np.array([0.5, 1.5]), np.array([0.0, 1.0]))


@pytest.mark.parametrize("loss_cls", [BinaryCrossEntropy, BinaryCrossEntropyWithLogits])
def test_bce_targets_must_lie_in_0_1(loss_cls):
    """Check that a target of 2 or −1 (a class index by mistake) is refused."""
    for bad in ([0.0, 2.0], [-1.0, 1.0]):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            loss_cls().forward(np.array([0.5, 0.5]), np.array(bad))


# -- regularisers ---------------------------------------------------------------------------

# name -> (make, the lecture's R(W) times the strength, written per entry)
REGULARISERS = {
    "L2": (lambda: L2(0.3), lambda w: 0.3 * sum(v * v for v in w.ravel())),
    "L1": (lambda: L1(0.3), lambda w: 0.3 * sum(abs(v) for v in w.ravel())),
    "ElasticNet": (lambda: ElasticNet(0.3, beta=0.5), lambda w: 0.3 * sum(0.5 * v * v + abs(v) for v in w.ravel())),
    "ElasticNet β=1": (lambda: ElasticNet(0.3), lambda w: 0.3 * sum(v * v + abs(v) for v in w.ravel())),
}
REG_NAMES = list(REGULARISERS)

# |w| >= 0.05: away from the kink of |w| at 0, and every gradient entry well above round-off.
away_from_zero = st.floats(0.05, 2.0).flatmap(lambda m: st.sampled_from([m, -m]))
weights = arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=3), elements=away_from_zero)


@pytest.mark.parametrize("name", REG_NAMES)
@given(w=weights)
def test_regulariser_value_is_the_lecture_formula(name, w):
    """Check λ R(W): L2 ΣW², L1 Σ|W|, elastic net Σ βW² + |W|."""
    make, formula = REGULARISERS[name]
    assert make().value(w) == pytest.approx(formula(w), rel=1e-12)


@pytest.mark.parametrize("name", REG_NAMES)
@given(w=weights)
def test_regulariser_gradient_matches_centred_differences(name, w, assert_gradients_match):
    """Check grad(w) away from 0, where |w| has no derivative."""
    reg = REGULARISERS[name][0]()
    assert_gradients_match(reg.grad(w), numerical_gradient(reg.value, w.copy()), f"{name}: dR/dW")


@pytest.mark.parametrize("name", REG_NAMES)
def test_regulariser_over_parameters_sums_and_adds_into_grad(name, rng):
    """Check reg(params) sums the penalty and reg.backward(params) adds into p.grad."""
    make, formula = REGULARISERS[name]
    reg = make()
    params = [Parameter(rng.normal(size=(2, 3))), Parameter(rng.normal(size=4))]
    before = [rng.normal(size=p.shape) for p in params]
    for p, g in zip(params, before, strict=True):
        p.grad[...] = g
    assert reg(params) == pytest.approx(sum(formula(p.data) for p in params), rel=1e-12)
    reg.backward(params)
    for p, g in zip(params, before, strict=True):
        np.testing.assert_allclose(p.grad, g + reg.grad(p.data), rtol=1e-14)


def test_regulariser_strength_scales_and_must_not_be_negative():
    """Check λ = 0 switches the penalty off and λ < 0 is refused."""
    w = np.array([1.0, -2.0])
    assert L2(0.0).value(w) == 0.0 and L1(2.0).value(w) == 6.0 and L2(2.0).value(w) == 10.0
    np.testing.assert_array_equal(L1(2.0).grad(np.array([3.0, 0.0, -1.0])), [2.0, 0.0, -2.0])
    for make in (L1, L2, ElasticNet):
        with pytest.raises(ValueError, match="strength"):
            make(-0.1)
