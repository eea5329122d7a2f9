"""Tests for course.train: minibatches, the fit loop (against a hand-written step), History,
accuracy, and the error a student gets when the learning rate is too large."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.layers import Linear, ReLU, Sequential
from course.losses import L2, MSE, BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy
from course.optim import SGD, StepDecay
from course.train import accuracy, fit, minibatches, predict, weights

# -- minibatches ------------------------------------------------------------------------------


@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_minibatches_cover_every_example_exactly_once(n, batch_size, seed):
    """Check the batches partition the data, keep rows paired, and all but the last are full."""
    X = np.arange(n)[:, None] * np.array([1.0, 10.0])
    y = np.arange(n)
    batches = list(minibatches(X, y, batch_size, rng=seed))
    assert len(batches) == math.ceil(n / batch_size)
    seen = np.concatenate([yb for _, yb in batches])
    np.testing.assert_array_equal(np.sort(seen), np.arange(n))
    for xb, yb in batches:
        np.testing.assert_array_equal(xb[:, 0], yb)  # each x still sits next to its own y
    assert [len(yb) for _, yb in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert len(batches[-1][1]) == n - batch_size * (len(batches) - 1)


def test_minibatches_are_reproducible_by_seed():
    """Check same seed → same batches (int or Generator), other seed → another order."""
    X, y = np.arange(20.0)[:, None], np.arange(20)

    def order(rng):
        return np.concatenate([yb for _, yb in minibatches(X, y, 6, rng=rng)])

    np.testing.assert_array_equal(order(3), order(3))
    np.testing.assert_array_equal(order(np.random.default_rng(3)), order(3))
    assert not np.array_equal(order(3), order(4))
    assert not np.array_equal(order(3), np.arange(20))  # shuffled by default
    unshuffled = np.concatenate([yb for _, yb in minibatches(X, y, 6, shuffle=False)])
    np.testing.assert_array_equal(unshuffled, np.arange(20))


def test_minibatches_refuse_bad_arguments():
    """Check mismatched X and y, and a batch size below 1, are refused."""
    with pytest.raises(ValueError, match="5 examples but y has 4"):
        list(minibatches(np.ones((5, 2)), np.ones(4), 2))
    with pytest.raises(ValueError, match="batch_size"):
        list(minibatches(np.ones((5, 2)), np.ones(5), 0))


# -- fit --------------------------------------------------------------------------------------


def blobs(rng, n_per_class=20):
    """Two well separated clusters in 2-d, labels 0 and 1."""
    X = np.vstack([rng.normal(-2.0, 0.5, (n_per_class, 2)), rng.normal(2.0, 0.5, (n_per_class, 2))])
    return X, np.repeat([0, 1], n_per_class)


def test_fit_reaches_full_accuracy_on_a_separable_problem(rng):
    """Check softmax classification of two blobs and the lengths of everything History records."""
    X, y = blobs(rng)
    model = Sequential(Linear(2, 2, rng=0))
    history = fit(
        model,
        SoftmaxCrossEntropy(),
        SGD(model.parameters(), lr=0.5),
        X,
        y,
        epochs=15,
        batch_size=8,
        X_val=X[::2],
        y_val=y[::2],
    )
    assert history.train_acc[-1] == 1.0 and history.val_acc[-1] == 1.0
    assert len(history.loss) == 15 * 5  # 40 examples in batches of 8: 5 steps per epoch
    assert len(history.train_acc) == len(history.val_acc) == len(history.lr) == 15
    assert history.lr == [0.5] * 15
    assert history.loss[-1] < history.loss[0]
    assert history.seconds > 0
    assert accuracy(model, X, y) == 1.0


def test_fit_with_one_output_column_and_logits(rng):
    """Check binary classification with a single score per example (score > 0 means class 1)."""
    X, y = blobs(rng)
    model = Sequential(Linear(2, 4, rng=0), ReLU(), Linear(4, 1, rng=1))
    history = fit(
        model,
        BinaryCrossEntropyWithLogits(),
        SGD(model.parameters(), lr=0.2),
        X,
        y[:, None].astype(float),
        epochs=20,
        batch_size=10,
    )
    assert history.train_acc[-1] == 1.0
    assert history.val_acc == []  # no validation data given
    assert len(history.loss) == 20 * 4


def test_one_full_batch_epoch_is_one_hand_written_step_with_l2(rng):
    """Check fit = forward, loss + λΣW², backward, SGD step; the bias is not regularised."""
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    model = Sequential(Linear(3, 1, rng=0))
    model[0].b.data[...] = [0.1]
    W, b = model[0].W.data.copy(), model[0].b.data.copy()
    lam, lr = 0.05, 0.1
    history = fit(model, MSE(), SGD(model.parameters(), lr=lr), X, Y, epochs=1, batch_size=6, reg=L2(lam))

    diff = X @ W + b - Y
    assert history.loss[0] == pytest.approx(0.5 * np.sum(diff**2) / 6 + lam * np.sum(W**2), rel=1e-12)
    np.testing.assert_allclose(model[0].W.data, W - lr * (X.T @ diff / 6 + 2 * lam * W), rtol=1e-12)
    np.testing.assert_allclose(model[0].b.data, b - lr * diff.sum(axis=0) / 6, rtol=1e-12)


def test_fit_trains_a_regression_with_several_outputs(rng):
    """Check MSE regression onto (N, 2) targets, as in the lecture's 20-line network."""
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    model = Sequential(Linear(3, 2, rng=0))
    history = fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, Y, epochs=3, batch_size=6)
    assert history.loss[-1] < history.loss[0]


def test_fit_clears_the_gradients_before_every_step(rng):
    """Check two full-batch epochs equal two hand-written steps (not accumulated gradients)."""
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    model = Sequential(Linear(2, 1, rng=0))
    W, b = model[0].W.data.copy(), model[0].b.data.copy()
    fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, Y, epochs=2, batch_size=5)
    for _ in range(2):
        diff = X @ W + b - Y
        W, b = W - 0.1 * X.T @ diff / 5, b - 0.1 * diff.sum(axis=0) / 5
    np.testing.assert_allclose(model[0].W.data, W, rtol=1e-12)
    np.testing.assert_allclose(model[0].b.data, b, rtol=1e-12)


def test_fit_steps_the_scheduler_once_per_iteration(rng):
    """Check History.lr: halving every 5 iterations = every epoch of 5 batches."""
    X, y = blobs(rng)
    model = Sequential(Linear(2, 2, rng=0))
    opt = SGD(model.parameters(), lr=0.4)
    history = fit(model, SoftmaxCrossEntropy(), opt, X, y, epochs=4, batch_size=8, scheduler=StepDecay(opt, 5, 0.5))
    np.testing.assert_allclose(history.lr, [0.2, 0.1, 0.05, 0.025], rtol=1e-14)


def test_fit_is_reproducible_by_seed(rng):
    """Check the same seed gives the same losses, another seed other minibatches."""
    X, y = blobs(rng)

    def run(seed):
        model = Sequential(Linear(2, 2, rng=0))
        return fit(
            model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1), X, y, epochs=2, rng=seed, batch_size=8
        ).loss

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_fit_prints_one_line_per_epoch_when_verbose(rng, capsys):
    """Check verbose=True writes progress to stderr, one line per epoch."""
    X, y = blobs(rng, 5)
    model = Sequential(Linear(2, 2, rng=0))
    fit(model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1), X, y, epochs=3, verbose=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("epoch   3/3")


def diverging_fit():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    model = Sequential(Linear(3, 8, rng=0), Linear(8, 1, rng=1))
    fit(model, MSE(), SGD(model.parameters(), lr=10.0), X, Y, epochs=50, batch_size=5)


def test_fit_raises_floating_point_error_naming_the_learning_rate():
    """Check that a loss that overflows stops training with a message about the learning rate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warnings on the way
        with pytest.raises(FloatingPointError, match=r"learning rate \(10\) is probably too large"):
            diverging_fit()


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_fit_reports_divergence_only_through_floating_point_error():
    """Check the student sees one clear error, not numpy's overflow warnings first."""
    with pytest.raises(FloatingPointError):
        diverging_fit()


# -- accuracy, predict, weights ----------------------------------------------------------------


def test_accuracy_from_scores_by_hand():
    """Check argmax for (N, C) scores, score > 0 for (N,) or (N, 1); labels (N,) or (N, 1)."""
    scores = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]])  # predicts 1, 0, 1
    assert accuracy(scores, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert accuracy(np.array([0.5, -1.0, 2.0, -0.1]), np.array([1, 0, 0, 1])) == 0.5
    assert accuracy(np.array([[0.5], [-1.0]]), np.array([[1], [0]])) == 1.0


def test_accuracy_of_a_model_equals_accuracy_of_its_scores(rng):
    """Check accuracy(model, X, y) and accuracy(model.forward(X), y) agree."""
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    model = Sequential(Linear(4, 3, rng=0))
    expected = np.mean(np.argmax(X @ model[0].W.data, axis=1) == y)
    assert accuracy(model, X, y) == pytest.approx(expected)
    assert accuracy(model.forward(X), y) == pytest.approx(expected)
    np.testing.assert_array_equal(predict(model, X), np.argmax(X @ model[0].W.data, axis=1))


def test_weights_are_the_matrices_not_the_biases():
    """Check the regulariser's targets: every W, no b."""
    model = Sequential(Linear(2, 3, rng=0), ReLU(), Linear(3, 1, rng=1))
    got = weights(model)
    assert len(got) == 2 and got[0] is model[0].W and got[1] is model[2].W
