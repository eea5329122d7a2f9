"""The mlp assignment: the reference network (course/network.py); the catalogue of student
implementations of its exercises (course/exercises/mlp.py), which
tests/test_exercises_contract.py holds to the contract of every exercise; the checks only
this topic has; and the worked numbers the notebook shows.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_exercises_contract import Contract, Correct, Delegation, Mistake, Stub

import course
from course import data
from course.exercises import check, get
from course.exercises.mlp import KINK_GAP, STEP, loss_terms, valid
from course.gradcheck import GradCheckError, numerical_gradient
from course.network import TwoLayerNet

NAMES = ["mlp.TwoLayerNet.scores", "mlp.TwoLayerNet.loss", "mlp.TwoLayerNet.grads"]
KEYS = ("W1", "b1", "W2", "b2")


def random_net(rng: np.random.Generator, d: int, h: int, c: int) -> TwoLayerNet:
    net = TwoLayerNet(d, h, c, rng=rng)
    net.params["b1"] = 0.5 * rng.standard_normal(h)
    net.params["b2"] = 0.5 * rng.standard_normal(c)
    return net


def kink_free_input(rng: np.random.Generator, net: TwoLayerNet, n: int) -> np.ndarray:
    """An (n, D) input whose hidden pre-activations all stay 1e-3 away from ReLU's kink."""
    while True:
        X = rng.standard_normal((n, net.params["W1"].shape[0]))
        if np.min(np.abs(X @ net.params["W1"] + net.params["b1"])) > 1e-3:
            return X


# ----------------------------------------------------------------------------------------
# The reference network
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reg", [0.0, 0.3])
@pytest.mark.parametrize(("n", "d", "h", "c"), [(1, 2, 3, 2), (5, 4, 6, 3), (8, 3, 7, 5)])
def test_reference_gradients_match_centred_differences(n, d, h, c, reg, rng, assert_gradients_match):
    net = random_net(rng, d, h, c)
    X = kink_free_input(rng, net, n)
    y = rng.integers(0, c, n)
    _, grads = net.loss(X, y, reg=reg)
    for k in KEYS:
        numeric = numerical_gradient(lambda _: net.loss(X, y, reg=reg)[0], net.params[k])
        assert grads[k].shape == net.params[k].shape
        assert_gradients_match(grads[k], numeric, f"TwoLayerNet: dL/d{k}")


def test_reference_matches_course_layers_and_losses(rng):
    """Scores = Linear -> ReLU -> Linear with the same weights; loss = softmax CE + L2 on W1, W2."""
    net = random_net(rng, 4, 6, 3)
    X, y = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    first, second = course.Linear(4, 6), course.Linear(6, 3)
    first.W.data[...], first.b.data[...] = net.params["W1"], net.params["b1"]
    second.W.data[...], second.b.data[...] = net.params["W2"], net.params["b2"]
    scores = course.Sequential(first, course.ReLU(), second).forward(X)
    np.testing.assert_allclose(net.loss(X), scores, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.forward(X), scores, rtol=1e-12, atol=1e-14)
    expected = course.SoftmaxCrossEntropy().forward(scores, y) + course.L2(0.2)([first.W, second.W])
    assert net.loss(X, y, reg=0.2)[0] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(net.predict(X), scores.argmax(axis=1))


def test_loss_terms_sum_to_the_reference_loss(rng):
    net = random_net(rng, 5, 4, 3)
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    terms = loss_terms(net, X, y, 0.1)
    assert terms.shape == (6 + 5 * 4 + 4 * 3,)
    assert terms.sum() == pytest.approx(net.loss(X, y, reg=0.1)[0], rel=1e-12)


def test_constructor_shapes_dtypes_and_scales():
    net = TwoLayerNet(64, 100, 10, rng=0)
    assert {k: v.shape for k, v in net.params.items()} == {"W1": (64, 100), "b1": (100,), "W2": (100, 10), "b2": (10,)}
    assert all(v.dtype == np.float64 for v in net.params.values())
    assert np.all(net.params["b1"] == 0) and np.all(net.params["b2"] == 0)
    assert net.params["W1"].std() == pytest.approx(np.sqrt(2 / 64), rel=0.1)  # He by default
    assert TwoLayerNet(64, 100, 10, std=1e-4, rng=0).params["W1"].std() == pytest.approx(1e-4, rel=0.1)
    np.testing.assert_array_equal(TwoLayerNet(3, 4, 2, rng=5).params["W1"], TwoLayerNet(3, 4, 2, rng=5).params["W1"])
    assert repr(net) == "TwoLayerNet(64, 100, 10)"


@pytest.mark.parametrize("sizes", [(0, 3, 2), (3, -1, 2), (3, 4, 2.5)])
def test_constructor_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="positive integer"):
        TwoLayerNet(*sizes)


def test_bad_inputs_get_clear_errors():
    net = TwoLayerNet(3, 4, 2, rng=0)
    with pytest.raises(ValueError, match=r"expected X of shape \(N, 3\), got \(5, 2\)"):
        net.loss(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="integer labels"):
        net.loss(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        net.loss(np.zeros((2, 3)), np.array([0, 2]))


def test_train_records_history_and_is_deterministic():
    X, y = data.blobs(20, rng=0)
    histories = []
    for _ in range(2):
        net = TwoLayerNet(2, 10, 3, rng=0)
        h = net.train(X, y, X[:10], y[:10], lr=0.1, reg=1e-3, epochs=4, batch_size=16, lr_decay=0.5, rng=0)
        histories.append((h, net.params["W1"].copy()))
    (h, W1), (h2, W1b) = histories
    assert len(h.loss) == 4 * 4  # ceil(60 / 16) steps per epoch
    assert len(h.train_acc) == len(h.val_acc) == 4
    assert h.lr == [0.1, 0.05, 0.025, 0.0125]
    assert h.loss == h2.loss
    np.testing.assert_array_equal(W1, W1b)
    assert h.loss[-1] < h.loss[0]
    assert h.train_acc[-1] == 1.0


def test_train_reports_divergence_and_prints_progress(capsys):
    X, y = data.blobs(10, rng=0)
    TwoLayerNet(2, 5, 3, rng=0).train(X, y, epochs=1, verbose=True)
    assert "epoch   1/1" in capsys.readouterr().err
    with pytest.raises(FloatingPointError, match="learning rate"), np.errstate(all="ignore"):
        TwoLayerNet(2, 5, 3, rng=0).train(100 * X, y, lr=1e12, epochs=5, batch_size=5)
    with pytest.raises(ValueError, match="learning rate"):
        TwoLayerNet(2, 5, 3, rng=0).train(X, y, lr=0.0)


# ----------------------------------------------------------------------------------------
# Student implementations: correct ones in other styles than the notebook's
# ----------------------------------------------------------------------------------------


class EinsumNet(course.network.TwoLayerNet):
    """Einsum everywhere, a log-sum-exp softmax, gradients through a one-hot matrix."""

    def loss(self, X, y=None, reg=0.0):
        W1, b1, W2, b2 = (self.params[k] for k in KEYS)
        z1 = np.einsum("nd,dh->nh", X, W1) + b1[None, :]
        h1 = np.where(z1 > 0, z1, 0.0)
        scores = np.einsum("nh,hc->nc", h1, W2) + b2[None, :]
        if y is None:
            return scores
        m = scores.max(axis=1, keepdims=True)
        log_p = scores - m - np.log(np.exp(scores - m).sum(axis=1, keepdims=True))
        onehot = np.eye(scores.shape[1])[y]
        penalty = np.einsum("ij,ij->", W1, W1) + np.einsum("ij,ij->", W2, W2)
        loss = -np.einsum("nc,nc->", onehot, log_p) / len(y) + reg * penalty
        ds = (np.exp(log_p) - onehot) / len(y)
        dz1 = np.einsum("nc,hc->nh", ds, W2) * (z1 > 0)
        return loss, {
            "W1": np.einsum("nd,nh->dh", X, dz1) + 2 * reg * W1,
            "b1": np.einsum("nh->h", dz1),
            "W2": np.einsum("nh,nc->hc", h1, ds) + 2 * reg * W2,
            "b2": np.einsum("nc->c", ds),
        }


class LoopNet(course.network.TwoLayerNet):
    """One example at a time: per-example forward, loss and outer-product gradients."""

    def loss(self, X, y=None, reg=0.0):
        W1, b1, W2, b2 = (self.params[k] for k in KEYS)
        n = X.shape[0]
        rows = []
        for i in range(n):
            rows.append(np.maximum(X[i] @ W1 + b1, 0.0) @ W2 + b2)
        scores = np.array(rows)
        if y is None:
            return scores
        grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        data_loss = 0.0
        for i in range(n):
            z = X[i] @ W1 + b1
            h = np.maximum(z, 0.0)
            s = scores[i] - scores[i].max()
            p = np.exp(s) / np.exp(s).sum()
            data_loss -= np.log(p[y[i]])
            ds = p.copy()
            ds[y[i]] -= 1.0
            ds /= n
            grads["W2"] += np.outer(h, ds)
            grads["b2"] += ds
            dz = (W2 @ ds) * (z > 0)
            grads["W1"] += np.outer(X[i], dz)
            grads["b1"] += dz
        grads["W1"] += 2 * reg * W1
        grads["W2"] += 2 * reg * W2
        return data_loss / n + reg * (np.sum(W1 * W1) + np.sum(W2 * W2)), grads


class InPlaceNet(course.network.TwoLayerNet):
    """In-place numpy operations (out=, -=, *=) and a probability matrix updated in place."""

    def loss(self, X, y=None, reg=0.0):
        W1, b1, W2, b2 = (self.params[k] for k in KEYS)
        z1 = X @ W1
        z1 += b1
        h1 = np.maximum(z1, 0.0)
        scores = h1 @ W2
        scores += b2
        if y is None:
            return scores
        n = len(y)
        p = scores - scores.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(n), y]).sum() / n
        loss += reg * float((W1**2).sum() + (W2**2).sum())
        p[np.arange(n), y] -= 1.0
        p /= n
        dh1 = p @ W2.T
        dh1 *= z1 > 0
        dW1 = X.T @ dh1
        dW1 += 2 * reg * W1
        dW2 = h1.T @ p
        dW2 += 2 * reg * W2
        return loss, {"W1": dW1, "b1": dh1.sum(axis=0), "W2": dW2, "b2": p.sum(axis=0)}


# ----------------------------------------------------------------------------------------
# Stubs and partial work
# ----------------------------------------------------------------------------------------


def staged(forward=True, loss=True, backward=True):
    """A correct network whose later stages raise NotImplementedError, as the release stubs do."""

    class Staged(course.network.TwoLayerNet):
        def loss(self, X, y=None, reg=0.0):
            if not forward:
                raise NotImplementedError()
            scores = EinsumNet.loss(self, X)
            if y is None:
                return scores
            if not loss:
                raise NotImplementedError()
            value, grads = EinsumNet.loss(self, X, y, reg)
            if backward is None:
                return value, {}  # the notebook's tip: grads = {} while working on the loss
            if not backward:
                raise NotImplementedError()
            return value, grads

    return Staged


StubNet = staged(forward=False)


# ----------------------------------------------------------------------------------------
# Plausible mistakes
# ----------------------------------------------------------------------------------------


def variant(**changes):
    """EinsumNet's computation written out with switches for the classic mistakes."""
    opts = dict(relu=True, b2=True, mean=True, reg_loss=1.0, reg_grad=2.0, mask=True, bias_sum=True, sign=1.0)
    opts.update(changes)

    class Variant(course.network.TwoLayerNet):
        def loss(self, X, y=None, reg=0.0):
            W1, b1, W2, b2 = (self.params[k] for k in KEYS)
            z1 = X @ W1 + b1
            h1 = np.maximum(z1, 0.0) if opts["relu"] else z1
            scores = h1 @ W2 + (b2 if opts["b2"] else 0.0)
            if y is None:
                return scores
            n = len(y)
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            data_loss = -np.log(p[np.arange(n), y]).sum() / (n if opts["mean"] else 1)
            loss = data_loss + opts["reg_loss"] * reg * (np.sum(W1**2) + np.sum(W2**2))
            ds = p.copy()
            ds[np.arange(n), y] -= 1.0
            ds /= n if opts["mean"] else 1
            dz1 = (ds @ W2.T) * (z1 > 0 if opts["mask"] else 1.0)
            bias = (lambda g: g.sum(axis=0)) if opts["bias_sum"] else (lambda g: g.mean(axis=0))
            return loss, {
                "W1": X.T @ dz1 + opts["reg_grad"] * reg * W1,
                "b1": bias(dz1),
                "W2": opts["sign"] * h1.T @ ds + opts["reg_grad"] * reg * W2,
                "b2": bias(ds),
            }

    return Variant


# ----------------------------------------------------------------------------------------
# Delegations: the reference does the graded part
# ----------------------------------------------------------------------------------------


class CallsSuper(course.network.TwoLayerNet):
    def loss(self, X, y=None, reg=0.0):
        return super().loss(X, y, reg)


class CapturedReference(course.network.TwoLayerNet):
    reference = course.network.TwoLayerNet.loss  # captured before the check

    def loss(self, X, y=None, reg=0.0):
        return CapturedReference.reference(self, X, y, reg)


class WithCourseLayers(course.network.TwoLayerNet):
    """Forward and backward through course.layers and course.losses."""

    def loss(self, X, y=None, reg=0.0):
        first, second = course.Linear(*self.params["W1"].shape), course.Linear(*self.params["W2"].shape)
        first.W.data[...], first.b.data[...] = self.params["W1"], self.params["b1"]
        second.W.data[...], second.b.data[...] = self.params["W2"], self.params["b2"]
        net = course.Sequential(first, course.ReLU(), second)
        scores = net.forward(X)
        if y is None:
            return scores
        ce = course.SoftmaxCrossEntropy()
        value = ce.forward(scores, y) + reg * (np.sum(first.W.data**2) + np.sum(second.W.data**2))
        net.backward(ce.backward())
        return value, {
            "W1": first.W.grad + 2 * reg * first.W.data,
            "b1": first.b.grad,
            "W2": second.W.grad + 2 * reg * second.W.data,
            "b2": second.b.grad,
        }


class WithCourseLossOnly(EinsumNet):
    """Its own forward pass, but the loss and its gradient from course.losses."""

    def loss(self, X, y=None, reg=0.0):
        scores = super().loss(X)
        if y is None:
            return scores
        ce = course.SoftmaxCrossEntropy()
        value = ce.forward(scores, y) + reg * (np.sum(self.params["W1"] ** 2) + np.sum(self.params["W2"] ** 2))
        ce.backward()
        return value, super().loss(X, y, reg)[1]


# ----------------------------------------------------------------------------------------
# The catalogue (tests/test_exercises_contract.py runs the contract over it)
# ----------------------------------------------------------------------------------------

SCORES, LOSS, GRADS = NAMES


def _mistake(name, label, impl, named, not_named=(), hint=""):
    """A mistake whose message names the tensor `named` (and gives the hint), and none of `not_named`."""
    says = (f"- {named} ", hint) if hint else (f"- {named} ",)
    return Mistake(name, impl, label, says, never_says=tuple(f"- {tensor} " for tensor in not_named))


CONTRACT = Contract(
    topic="mlp",
    correct=[
        entry
        for name in NAMES
        for entry in (
            Correct(name, EinsumNet, seeds=range(6), seeded_checks=("visible",)),
            Correct(name, LoopNet),
            Correct(name, InPlaceNet, seeds=range(6), seeded_checks=("hidden",)),
        )
    ],
    stubs=[Stub(name, StubNet) for name in NAMES],
    mistakes=[
        _mistake(SCORES, "no ReLU", variant(relu=False), "scores"),
        _mistake(SCORES, "b2 forgotten", variant(b2=False), "scores"),
        _mistake(LOSS, "no penalty", variant(reg_loss=0.0), "loss value", hint="is missing"),
        _mistake(LOSS, "half the penalty", variant(reg_loss=0.5), "loss value", hint="factor 1/2"),
        _mistake(LOSS, "sum, not mean", variant(mean=False), "loss value", hint="not the sum"),
        _mistake(GRADS, "missing 1/N", variant(mean=False), "dL/db2"),
        _mistake(GRADS, "no ReLU mask", variant(mask=False), "dL/dW1", ["dL/dW2", "dL/db2"]),
        _mistake(
            GRADS,
            "no penalty gradient",
            variant(reg_grad=0.0),
            "dL/dW1",
            ["dL/db1", "dL/db2"],
            hint="2 * reg * W is missing",
        ),
        _mistake(GRADS, "penalty gradient reg W", variant(reg_grad=1.0), "dL/dW2", ["dL/db1"], hint="not reg * W"),
        _mistake(GRADS, "bias gradient averaged", variant(bias_sum=False), "dL/db1", ["dL/dW1", "dL/dW2"]),
        _mistake(GRADS, "sign error in dW2", variant(sign=-1.0), "dL/dW2", ["dL/dW1", "dL/db1"]),
    ],
    delegations=[
        Delegation(name, impl) for name in NAMES for impl in (CallsSuper, CapturedReference, WithCourseLayers)
    ],
)


# ----------------------------------------------------------------------------------------
# Beyond the contract
# ----------------------------------------------------------------------------------------


def test_each_stage_earns_its_own_credit():
    forward_only = staged(loss=False)
    check("mlp.TwoLayerNet.scores", forward_only, hidden=True, quiet=True)
    for name in NAMES[1:]:
        with pytest.raises(NotImplementedError):
            check(name, forward_only, quiet=True)
    empty_grads = staged(backward=None)
    check("mlp.TwoLayerNet.loss", empty_grads, hidden=True, quiet=True)
    with pytest.raises(GradCheckError, match=r"grads\['W1'\]: nothing was returned"):
        check("mlp.TwoLayerNet.grads", empty_grads, quiet=True)
    with pytest.raises(NotImplementedError):
        check("mlp.TwoLayerNet.grads", staged(backward=False), quiet=True)


def test_a_mistake_in_one_stage_leaves_the_earlier_stages_passing():
    for name in NAMES[:2]:
        check(name, variant(mask=False), hidden=True, quiet=True)
    check("mlp.TwoLayerNet.scores", variant(reg_loss=0.0), hidden=True, quiet=True)


def test_modifying_X_in_place_is_reported():
    class Scribbles(EinsumNet):
        def loss(self, X, y=None, reg=0.0):
            out = super().loss(X, y, reg)
            X *= 2.0
            return out

    with pytest.raises(GradCheckError, match="X was modified in place"):
        check("mlp.TwoLayerNet.scores", Scribbles, quiet=True)


def test_wrong_return_types_are_explained():
    class ReturnsLossOnly(EinsumNet):
        def loss(self, X, y=None, reg=0.0):
            return super().loss(X) if y is None else super().loss(X, y, reg)[0]

    class GradsAsList(EinsumNet):
        def loss(self, X, y=None, reg=0.0):
            out = super().loss(X, y, reg)
            return out if y is None else (out[0], list(out[1].values()))

    with pytest.raises(GradCheckError, match=r"should return the pair \(loss, grads\)"):
        check("mlp.TwoLayerNet.loss", ReturnsLossOnly, quiet=True)
    with pytest.raises(GradCheckError, match="grads should be a dict"):
        check("mlp.TwoLayerNet.grads", GradsAsList, quiet=True)


def test_using_the_course_loss_costs_only_the_loss_and_gradient_credit():
    check("mlp.TwoLayerNet.scores", WithCourseLossOnly, quiet=True)
    for name in NAMES[1:]:
        with pytest.raises(GradCheckError, match=r"SoftmaxCrossEntropy\.forward"):
            check(name, WithCourseLossOnly, quiet=True)


# ----------------------------------------------------------------------------------------
# The cases: random shapes, a large sampled case, kink-free
# ----------------------------------------------------------------------------------------


def test_hidden_cases_include_random_shapes_and_a_large_sampled_case():
    for name in NAMES:
        exercise = get(name)
        a = exercise.cases(np.random.default_rng(1), hidden=True)
        b = exercise.cases(np.random.default_rng(2), hidden=True)
        assert [c.arrays["W1"].shape for c in a] != [c.arrays["W1"].shape for c in b]
        assert any(c.arrays["X"].shape[0] == 1 for c in a), "no batch of one"
        large = [c for c in a if c.config.get("max_entries")]
        assert large and large[0].arrays["W1"].size >= 50_000
        assert all(c.config["reg"] > 0 for c in a)


@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "hidden"])
def test_cases_keep_hidden_pre_activations_away_from_the_kink(hidden):
    exercise = get("mlp.TwoLayerNet.grads")
    for seed in range(30):
        for case in exercise.cases(np.random.default_rng(seed), hidden):
            assert valid(case.arrays)
            z = case.arrays["X"] @ case.arrays["W1"] + case.arrays["b1"]
            assert np.min(np.abs(z)) >= KINK_GAP
            assert 2 * STEP * np.max(np.abs(case.arrays["X"])) < KINK_GAP  # the largest step moves z less


def test_visible_case_is_the_same_every_time():
    first = get("mlp.TwoLayerNet.grads").cases(np.random.default_rng(3), hidden=False)[0]
    second = get("mlp.TwoLayerNet.grads").cases(np.random.default_rng(3), hidden=False)[0]
    for key, value in first.arrays.items():
        np.testing.assert_array_equal(value, second.arrays[key])


# ----------------------------------------------------------------------------------------
# The worked numbers of the notebook
# ----------------------------------------------------------------------------------------


def eleven_line_network(seed: int = 1, steps: int = 10_000):
    X_xor, y_xor = data.xor()
    X = np.column_stack([X_xor, np.ones(4)])
    y = y_xor.reshape(-1, 1).astype(np.float64)
    rng = np.random.default_rng(seed)
    syn0 = 2 * rng.random((3, 4)) - 1
    syn1 = 2 * rng.random((4, 1)) - 1
    for _ in range(steps):
        l1 = 1 / (1 + np.exp(-(X @ syn0)))
        l2 = 1 / (1 + np.exp(-(l1 @ syn1)))
        l2_delta = (y - l2) * (l2 * (1 - l2))
        l1_delta = (l2_delta @ syn1.T) * (l1 * (1 - l1))
        syn1 += l1.T @ l2_delta
        syn0 += X.T @ l1_delta
    return X, y, syn0, syn1, l2


def test_the_eleven_line_network_learns_xor():
    *_, out = eleven_line_network()
    assert np.round(out.ravel(), 2).tolist() == [0.01, 0.99, 0.99, 0.01]


def test_the_eleven_line_update_is_a_gradient_step_of_the_course_layers():
    X, y, syn0, syn1, _ = eleven_line_network(steps=50)
    net = course.Sequential(course.LinearSigmoid(3, 4), course.LinearSigmoid(4, 1))
    net[0].W.data[...], net[1].W.data[...] = syn0, syn1
    out = net.forward(X)
    net.backward(out - y)
    l1 = 1 / (1 + np.exp(-(X @ syn0)))
    l2_delta = (y - out) * out * (1 - out)
    np.testing.assert_allclose(-net[1].W.grad, l1.T @ l2_delta, rtol=1e-12)
    np.testing.assert_allclose(-net[0].W.grad, X.T @ ((l2_delta @ syn1.T) * l1 * (1 - l1)), rtol=1e-12)


def test_the_first_loss_is_ln_c_and_regularisation_raises_it():
    X, y = data.spirals(100, 3, noise=0.2, rng=0)
    tiny = TwoLayerNet(2, 100, 3, std=1e-4, rng=0)
    assert round(tiny.loss(X, y)[0], 4) == round(np.log(3), 4) == 1.0986
    probe = TwoLayerNet(2, 100, 3, rng=0)
    values = [probe.loss(X, y, reg=reg)[0] for reg in (0.0, 0.1, 1.0)]
    assert values[0] < values[1] < values[2]


def test_the_digits_network_reaches_the_stated_test_accuracy():
    X, y = data.load_digits()
    X_rest, X_test, y_rest, y_test = data.train_test_split(X, y, test_fraction=0.2, rng=0)
    X_fit, X_check, y_fit, y_check = data.train_test_split(X_rest, y_rest, test_fraction=0.15, rng=1)
    net = TwoLayerNet(64, 100, 10, std=1e-2, rng=0)
    history = net.train(
        X_fit, y_fit, X_check, y_check, lr=0.5, reg=1e-3, epochs=30, batch_size=64, lr_decay=0.95, rng=0
    )
    assert round(history.loss[0], 2) == round(np.log(10), 2) == 2.30
    assert round(float(np.mean(net.predict(X_test) == y_test)), 2) == 0.97
