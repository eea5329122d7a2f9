"""Every worked example of the lectures (shared/lectures/*.txt), with the lectures' numbers.

Where a lecture rounds (0.73, −0.20, 2.04) the check allows half a unit in its last digit;
where it prints a computer's output (0.52699227, −3.42057777e−06) the check is that tight.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course import activations as A
from course.gradcheck import numerical_gradient
from course.graph import (
    AddConstGate,
    AddGate,
    ExpGate,
    MulGate,
    ReciprocalGate,
    ScaleGate,
    Value,
)
from course.layers import Linear, LinearSigmoid, ReLU, Sequential, Sigmoid
from course.losses import MSE, BinaryCrossEntropy, MulticlassSVM, SoftmaxCrossEntropy
from course.neuron import Neuron, three_layer_forward
from course.optim import SGD


def rounded(value: float, decimals: int):
    """Equal to ``value`` as the lecture prints it, rounded to ``decimals`` decimals."""
    return pytest.approx(value, abs=0.5 * 10.0**-decimals)


def truncated(value: float, decimals: int):
    """Equal to the positive ``value`` as the lecture prints it, cut after ``decimals`` decimals
    (σ(11) = 0.99998… is printed 0.9999)."""
    step = 10.0**-decimals
    return pytest.approx(value + step / 2, abs=step / 2)


# -- f(x, y, z) = (x + y) z at x = −2, y = 5, z = −4 (lectures 2 and 4) --------------------------


def test_x_plus_y_times_z_with_value():
    """Check f = −12, df/dx = df/dy = z = −4, df/dz = q = 3, and df/dq = −4."""
    x, y, z = Value(-2.0), Value(5.0), Value(-4.0)
    q = x + y
    f = q * z
    f.backward()
    assert (f.data, q.data) == (-12.0, 3.0)
    assert (x.grad, y.grad, z.grad, q.grad) == (-4.0, -4.0, 3.0, -4.0)


def test_x_plus_y_times_z_gate_by_gate():
    """Check the same numbers with an add gate feeding a multiply gate, backward by hand."""
    add, mul = AddGate(), MulGate()
    q = add.forward(-2.0, 5.0)
    f = mul.forward(q, -4.0)
    dq, dz = mul.backward(1.0)
    dx, dy = add.backward(dq)
    assert (q, f) == (3.0, -12.0)
    assert (dq, dz, dx, dy) == (-4.0, 3.0, -4.0, -4.0)


def test_increasing_x_by_one_decreases_f_by_four():
    """Check lecture 4's reading of df/dx = −4: f is linear in x, so the step is exact."""
    f = lambda x: (x + 5.0) * -4.0  # noqa: E731
    assert f(-1.0) - f(-2.0) == -4.0


# -- c = a + b, d = b + 1, e = c·d at a = 2, b = 1 (lecture 16) ------------------------------------


def test_toy_graph_with_value():
    """Check e = 6, de/da = 2·1 and de/db = 2·1 + 3·1 = 5 (the paths to b add up)."""
    a, b = Value(2.0), Value(1.0)
    c, d = a + b, b + 1
    e = c * d
    e.backward()
    assert (c.data, d.data, e.data) == (3.0, 2.0, 6.0)
    assert (a.grad, b.grad) == (2.0, 5.0)


def test_toy_graph_gate_by_gate():
    """Check the same graph with gates: b's two contributions are summed by hand."""
    add, plus_one, mul = AddGate(), AddConstGate(1.0), MulGate()
    c = add.forward(2.0, 1.0)
    d = plus_one.forward(1.0)
    e = mul.forward(c, d)
    dc, dd = mul.backward(1.0)
    da, db_via_c = add.backward(dc)
    db_via_d = plus_one.backward(dd)
    assert (e, dc, dd) == (6.0, 2.0, 3.0)
    assert (da, db_via_c + db_via_d) == (2.0, 5.0)


# -- the local-derivative table and the MultiplyGate (lecture 2) ---------------------------------


def test_local_derivative_table_with_gates_and_values():
    """Check e^x → e^x, ax → a, 1/x → −1/x², c + x → 1, at x = 2 (a = 3, c = 5)."""
    exp, scale, reciprocal, add_c = ExpGate(), ScaleGate(3.0), ReciprocalGate(), AddConstGate(5.0)
    assert exp.forward(2.0) == math.exp(2.0) and exp.backward(1.0) == math.exp(2.0)
    assert scale.forward(2.0) == 6.0 and scale.backward(1.0) == 3.0
    assert reciprocal.forward(2.0) == 0.5 and reciprocal.backward(1.0) == -0.25
    assert add_c.forward(2.0) == 7.0 and add_c.backward(1.0) == 1.0
    for op, expected in [
        (lambda x: x.exp(), math.exp(2.0)),
        (lambda x: 3 * x, 3.0),
        (lambda x: 1 / x, -0.25),
        (lambda x: 5 + x, 1.0),
    ]:
        x = Value(2.0)
        op(x).backward()
        assert x.grad == pytest.approx(expected, rel=1e-15)


def test_multiply_gate_keeps_its_inputs_and_switches_them():
    """Check the lecture's MultiplyGate: dx = y·dz, dy = x·dz."""
    gate = MulGate()
    assert gate.forward(3.0, -4.0) == -12.0
    assert gate.backward(2.0) == [-8.0, 6.0]


# -- the sigmoid neuron f(w, x) = σ(w0 x0 + w1 x1 + w2) at w = [2, −3, −3], x = [−1, −2] -----------

W_NEURON, X_NEURON = [2.0, -3.0, -3.0], [-1.0, -2.0]


def neuron_values(expanded: bool):
    w = [Value(v) for v in W_NEURON]
    x = [Value(v) for v in X_NEURON]
    s = w[0] * x[0] + w[1] * x[1] + w[2]
    f = 1 / (1 + (-s).exp()) if expanded else s.sigmoid()
    f.backward()
    return f, w, x


@pytest.mark.parametrize("expanded", [False, True], ids=["Value.sigmoid", "1/(1+exp(-s))"])
def test_sigmoid_neuron_with_values(expanded):
    """Check f ≈ 0.73, ∂f/∂w ≈ [−0.20, −0.39, 0.20], ∂f/∂x ≈ [0.39, −0.59]."""
    f, w, x = neuron_values(expanded)
    assert f.data == rounded(0.73, 2)
    assert [v.grad for v in w] == [rounded(-0.20, 2), rounded(-0.39, 2), rounded(0.20, 2)]
    assert [v.grad for v in x] == [rounded(0.39, 2), rounded(-0.59, 2)]


def test_sigmoid_neuron_collapsed_and_expanded_graphs_agree():
    """Check the σ gate gives the expanded graph's value and gradients (σ' = (1 − σ)σ)."""
    f1, w1, x1 = neuron_values(expanded=False)
    f2, w2, x2 = neuron_values(expanded=True)
    assert f1.data == pytest.approx(f2.data, rel=1e-15)
    for a, b in zip(w1 + x1, w2 + x2, strict=True):
        assert a.grad == pytest.approx(b.grad, rel=1e-14)


def test_sigmoid_neuron_gate_by_gate():
    """Check the lecture's circuit: ×, +, ×−1, exp, +1, 1/x, and the gradients along it."""
    mul0, mul1, add0, add1 = MulGate(), MulGate(), AddGate(), AddGate()
    neg, exp, plus_one, inv = ScaleGate(-1.0), ExpGate(), AddConstGate(1.0), ReciprocalGate()
    s = add1.forward(add0.forward(mul0.forward(2.0, -1.0), mul1.forward(-3.0, -2.0)), -3.0)
    e = exp.forward(neg.forward(s))
    f = inv.forward(plus_one.forward(e))
    assert (s, f) == (1.0, rounded(0.73, 2))
    assert e == rounded(0.37, 2)
    d_plus_one = inv.backward(1.0)
    assert d_plus_one == rounded(-0.53, 2)
    d_exp = plus_one.backward(d_plus_one)
    d_neg = exp.backward(d_exp)
    assert d_neg == rounded(-0.20, 2)
    ds = neg.backward(d_neg)
    assert ds == rounded(0.20, 2)
    d_sum, dw2 = add1.backward(ds)
    d_m0, d_m1 = add0.backward(d_sum)
    dw0, dx0 = mul0.backward(d_m0)
    dw1, dx1 = mul1.backward(d_m1)
    assert [dw0, dw1, dw2] == [rounded(-0.20, 2), rounded(-0.39, 2), rounded(0.20, 2)]
    assert [dx0, dx1] == [rounded(0.39, 2), rounded(-0.59, 2)]


def test_sigmoid_neuron_with_the_neuron_class():
    """Check neuron_tick on the same numbers: weights w0, w1 and bias w2 give 0.73."""
    assert float(Neuron(W_NEURON[:2], bias=W_NEURON[2])(X_NEURON)) == rounded(0.73, 2)


def test_sigmoid_derivative_identity():
    """Check dσ/dx = e^{−x}/(1 + e^{−x})² = (1 − σ(x)) σ(x)."""
    x = np.linspace(-4, 4, 9)
    np.testing.assert_allclose(A.sigmoid_grad(x), np.exp(-x) / (1 + np.exp(-x)) ** 2, rtol=1e-12)


# -- backpropagation by hand: the two-layer sigmoid network (lecture 16) -----------------------------


def lecture_network() -> Sequential:
    net = Sequential(LinearSigmoid(2, 3), LinearSigmoid(3, 1))
    net[0].W.data[...] = [[1.0, -1.0, 3.0], [2.0, 2.0, -1.0]]
    net[1].W.data[...] = [[0.1], [0.5], [-0.1]]
    return net


X_HAND, LABEL = np.array([[5.0, 3.0]]), np.array([[1.0]])


def test_two_layer_network_forward_by_hand():
    """Check h = [0.9999…, 0.7310…, 0.9999…], y ≈ 0.590378, loss −log y ≈ 0.52699227."""
    net = lecture_network()
    y = net.forward(X_HAND)
    h = net[0].forward(X_HAND)
    assert list(h[0]) == [truncated(0.9999, 4), truncated(0.7310, 4), truncated(0.9999, 4)]
    assert y[0, 0] == rounded(0.590378, 6)
    assert BinaryCrossEntropy().forward(y, LABEL) == rounded(0.52699227, 8)


def test_two_layer_network_backward_by_hand():
    """Check dJ/dy = −1/y ≈ −1.6938, dJ/dh ≈ [−0.04096, −0.2048, 0.04096], and the printed
    V grad and W grad of the lecture's numpy implementation."""
    net = lecture_network()
    loss = BinaryCrossEntropy()
    loss.forward(net.forward(X_HAND), LABEL)
    dJ_dy = loss.backward()
    assert dJ_dy[0, 0] == rounded(-1.6938, 4)
    dJ_dh = net[1].backward(dJ_dy)
    assert list(dJ_dh[0]) == [rounded(-0.04096, 5), rounded(-0.2048, 4), rounded(0.04096, 5)]
    net[0].backward(dJ_dh)
    np.testing.assert_allclose(net[1].W.grad[:, 0], [-0.40961516, -0.29945768, -0.40961948], rtol=0, atol=5e-9)
    np.testing.assert_allclose(
        net[0].W.grad,
        [[-3.42057777e-06, -2.01341432e-01, 1.25838681e-06], [-2.05234666e-06, -1.20804859e-01, 7.55032084e-07]],
        rtol=5e-9,  # the lecture prints nine significant digits
    )


def test_two_layer_network_hand_formulas_for_v():
    """Check ∂J/∂V_i = dJ/dy · y(1 − y) · h_i, the lecture's formula, against backward."""
    net = lecture_network()
    loss = BinaryCrossEntropy()
    y = net.forward(X_HAND)[0, 0]
    h = net[0].y[0]
    loss.forward(net[1].y, LABEL)
    net.backward(loss.backward())
    np.testing.assert_allclose(net[1].W.grad[:, 0], (-1 / y) * y * (1 - y) * h, rtol=1e-12)


def test_gradient_descent_on_one_example_drives_the_loss_down():
    """Check 100 steps with lr = 0.1 on (x, label 1): the loss falls at every step."""
    net = lecture_network()
    loss = BinaryCrossEntropy()
    opt = SGD(net.parameters(), lr=0.1)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        losses.append(loss.forward(net.forward(X_HAND), LABEL))
        net.backward(loss.backward())
        opt.step()
    assert losses[0] == rounded(0.52699227, 8)
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < 0.5 * losses[0]


def test_one_hidden_layer_chain_rule_of_lecture_4(rng):
    """Check ∂E/∂w2 = (ŷ − y) h1 and ∂E/∂W1 = (ŷ − y) w2 h1(1 − h1) x for BCE on σ(w2ᵀσ(W1ᵀx))."""
    net = Sequential(LinearSigmoid(3, 4, rng=0), LinearSigmoid(4, 1, rng=1))
    x, label = rng.normal(size=(1, 3)), np.array([[0.0]])
    loss = BinaryCrossEntropy()
    y_hat = net.forward(x)[0, 0]
    h1, w2 = net[0].y[0], net[1].W.data[:, 0]
    loss.forward(net[1].y, label)
    net.backward(loss.backward())
    np.testing.assert_allclose(net[1].W.grad[:, 0], (y_hat - 0.0) * h1, rtol=1e-10)
    np.testing.assert_allclose(net[0].W.grad, np.outer(x[0], (y_hat - 0.0) * w2 * h1 * (1 - h1)), rtol=1e-10)


# -- softmax cross-entropy and the multiclass SVM on cat / car / frog (lecture CS5330) ------------------

CAT_IMAGE = [3.2, 5.1, -1.7]  # scores for cat, car, frog; the true class is cat
CAR_IMAGE, FROG_IMAGE = [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]


def test_softmax_cross_entropy_on_the_cat_image():
    """Check exp ≈ [24.5, 164, 0.18], probabilities ≈ [0.13, 0.87, 0.00], L = −log 0.13 ≈ 2.04."""
    scores = np.array([CAT_IMAGE])
    assert [math.exp(s) for s in CAT_IMAGE] == [rounded(24.5, 1), rounded(164, 0), rounded(0.18, 2)]
    assert list(A.softmax(scores)[0]) == [rounded(0.13, 2), rounded(0.87, 2), rounded(0.00, 2)]
    assert SoftmaxCrossEntropy().forward(scores, np.array([0])) == rounded(2.04, 2)


@pytest.mark.parametrize(
    ("scores", "label", "loss"),
    [(CAT_IMAGE, 0, 2.9), (CAR_IMAGE, 1, 0.0), (FROG_IMAGE, 2, 12.9)],
    ids=["cat", "car", "frog"],
)
def test_multiclass_svm_on_each_image(scores, label, loss):
    """Check Σ_{j≠y} max(0, s_j − s_y + 1): 2.9 + 0, 0, and 6.3 + 6.6 = 12.9."""
    assert MulticlassSVM().forward(np.array([scores]), np.array([label])) == pytest.approx(loss, abs=1e-12)


def test_multiclass_svm_over_the_three_images_is_the_mean():
    """Check L = (2.9 + 0 + 12.9) / 3 for the batch of three."""
    scores = np.array([CAT_IMAGE, CAR_IMAGE, FROG_IMAGE])
    assert MulticlassSVM().forward(scores, np.array([0, 1, 2])) == pytest.approx(15.8 / 3, rel=1e-12)


CE_VS_SVM = [
    pytest.param([10.0, -2.0, 3.0], id="[10, -2, 3]"),
    pytest.param([10.0, 9.0, 9.0], id="[10, 9, 9]"),
    pytest.param([10.0, -100.0, -100.0], id="[10, -100, -100]"),
]


def ce_and_svm(scores):
    s, y = np.array([scores]), np.array([0])
    return SoftmaxCrossEntropy().forward(s, y), MulticlassSVM().forward(s, y)


@pytest.mark.parametrize("scores", CE_VS_SVM)
def test_cross_entropy_is_positive_where_the_svm_loss_is_zero(scores):
    """Check the lecture's answer for y = 0: SVM loss = 0, cross-entropy > 0."""
    ce, svm = ce_and_svm(scores)
    assert svm == 0.0
    assert ce > 0.0


@pytest.mark.parametrize("scores", CE_VS_SVM)
def test_a_slight_change_of_scores_moves_cross_entropy_but_not_svm(scores):
    """Check: nudging the incorrect scores changes CE; the SVM loss stays 0.

    The nudge lowers them: [10, 9, 9] sits exactly on the hinge, where raising would cost."""
    ce, svm = ce_and_svm(scores)
    ce2, svm2 = ce_and_svm([scores[0], scores[1] - 0.1, scores[2] - 0.2])
    assert svm == svm2 == 0.0
    assert ce2 != ce


@pytest.mark.parametrize("scores", CE_VS_SVM)
def test_doubling_the_correct_score_lowers_cross_entropy_svm_stays_zero(scores):
    """Check 10 → 20 for the correct class: CE decreases, SVM still 0."""
    ce, _ = ce_and_svm(scores)
    ce2, svm2 = ce_and_svm([20.0, *scores[1:]])
    assert ce2 < ce and svm2 == 0.0


def test_hinge_loss_bug_doubling_w_removes_the_loss():
    """Check the lecture's 'bug': scores [1.3, 2.5, 2.0] (label car) cost 0.5; 2W costs 0."""
    layer = Linear(1, 3)
    layer.W.data[...] = [[1.3, 2.5, 2.0]]  # s = Wx with x = 1 gives the lecture's column
    x, label, svm = np.array([[1.0]]), np.array([1]), MulticlassSVM()
    assert svm.forward(layer.forward(x), label) == pytest.approx(0.5, abs=1e-12)
    layer.W.data *= 2
    np.testing.assert_allclose(layer.forward(x), [[2.6, 5.0, 4.0]])
    assert svm.forward(layer.forward(x), label) == 0.0


# -- vectorised operations: the Jacobian of an elementwise ReLU (lecture 2) -------------------------


def test_relu_jacobian_is_diagonal_and_backward_never_builds_it(rng):
    """Check the 4096-d question on d = 12: J = diag(x > 0), built by centred differences,
    and ReLU.backward(g) = Jᵀ g without forming J."""
    d = 12
    x = rng.uniform(0.1, 1.0, d) * np.where(np.arange(d) % 3 == 0, -1.0, 1.0)
    relu = ReLU()
    jacobian = np.array([numerical_gradient(relu.forward, x.copy(), np.eye(d)[i]) for i in range(d)])
    assert jacobian.shape == (d, d)
    np.testing.assert_array_equal(jacobian - np.diag(np.diag(jacobian)), np.zeros((d, d)))
    np.testing.assert_allclose(np.diag(jacobian), (x > 0).astype(float), rtol=1e-9)
    g = rng.normal(size=d)
    relu.forward(x)
    np.testing.assert_allclose(relu.backward(g), jacobian.T @ g, rtol=1e-9)


# -- code from the slides -------------------------------------------------------------------------


def test_neural_net_in_20_lines_gradients_match_course_layers():
    """Check the lecture's dw1, dw2 (loss Σ(y_pred − y)²) are 2N times course's gradients
    for Sequential(Linear, Sigmoid, Linear) with zero biases and MSE ((1/N) Σ ½‖·‖²)."""
    rng = np.random.default_rng(0)
    N, Din, H, Dout = 64, 1000, 100, 10
    x, y = rng.standard_normal((N, Din)), rng.standard_normal((N, Dout))
    w1, w2 = rng.standard_normal((Din, H)), rng.standard_normal((H, Dout))
    # One iteration of the lecture's loop, lines 8-14, verbatim.
    h = 1.0 / (1.0 + np.exp(-x.dot(w1)))
    y_pred = h.dot(w2)
    loss = np.square(y_pred - y).sum()
    dy_pred = 2.0 * (y_pred - y)
    dw2 = h.T.dot(dy_pred)
    dh = dy_pred.dot(w2.T)
    dw1 = x.T.dot(dh * h * (1 - h))

    net = Sequential(Linear(Din, H), Sigmoid(), Linear(H, Dout))
    net[0].W.data[...], net[2].W.data[...] = w1, w2
    mse = MSE()
    assert 2 * N * mse.forward(net.forward(x), y) == pytest.approx(loss, rel=1e-12)
    net.backward(mse.backward())
    np.testing.assert_allclose(2 * N * net[2].W.grad, dw2, rtol=1e-10)
    np.testing.assert_allclose(2 * N * net[0].W.grad, dw1, rtol=1e-8, atol=1e-10 * np.abs(dw1).max())


def test_eleven_line_network_updates_are_minus_n_times_course_gradients():
    """Check the @iamtrask loop's syn0/syn1 updates = −N × the MSE gradients of
    Sequential(LinearSigmoid(3, 4), LinearSigmoid(4, 1)): it descends Σ ½ (y − l2)²."""
    X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    y = np.array([[0, 1, 1, 0]], dtype=float).T
    rng = np.random.default_rng(1)
    syn0, syn1 = 2 * rng.random((3, 4)) - 1, 2 * rng.random((4, 1)) - 1
    l1 = 1 / (1 + np.exp(-(np.dot(X, syn0))))
    l2 = 1 / (1 + np.exp(-(np.dot(l1, syn1))))
    l2_delta = (y - l2) * (l2 * (1 - l2))
    l1_delta = l2_delta.dot(syn1.T) * (l1 * (1 - l1))
    update1, update0 = l1.T.dot(l2_delta), X.T.dot(l1_delta)

    net = Sequential(LinearSigmoid(3, 4), LinearSigmoid(4, 1))
    net[0].W.data[...], net[1].W.data[...] = syn0, syn1
    mse = MSE()
    mse.forward(net.forward(X), y)
    net.backward(mse.backward())
    np.testing.assert_allclose(update1, -4 * net[1].W.grad, rtol=1e-12)
    np.testing.assert_allclose(update0, -4 * net[0].W.grad, rtol=1e-12)


def test_three_layer_forward_pass_with_column_vectors(rng):
    """Check the slide's h1 = f(W1 x + b1), h2 = f(W2 h1 + b2), out = W3 h2 + b3 (x: 3 × 1)
    against course's batch-first versions, which hold each Wᵀ."""
    W1, W2, W3 = rng.normal(size=(4, 3)), rng.normal(size=(4, 4)), rng.normal(size=(1, 4))
    b1, b2, b3 = rng.normal(size=(4, 1)), rng.normal(size=(4, 1)), rng.normal(size=(1, 1))
    x = rng.normal(size=(3, 1))
    f = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    h1 = f(np.dot(W1, x) + b1)
    h2 = f(np.dot(W2, h1) + b2)
    out = np.dot(W3, h2) + b3

    batch_first = three_layer_forward(x.T, W1.T, b1[:, 0], W2.T, b2[:, 0], W3.T, b3[:, 0])
    np.testing.assert_allclose(batch_first, out.T, rtol=1e-12)
    net = Sequential(Linear(3, 4), Sigmoid(), Linear(4, 4), Sigmoid(), Linear(4, 1))
    for layer, W, b in zip(net[::2], (W1, W2, W3), (b1, b2, b3), strict=True):
        layer.W.data[...], layer.b.data[...] = W.T, b[:, 0]
    np.testing.assert_allclose(net.forward(x.T), out.T, rtol=1e-12)


def test_without_an_activation_two_layers_are_one_linear_layer(rng):
    """Check s = W2 W1 x: two stacked Linear layers equal one with W = W1 W2, b = b1 W2 + b2."""
    first, second = Linear(5, 4, rng=0), Linear(4, 3, rng=1)
    first.b.data[...], second.b.data[...] = rng.normal(size=4), rng.normal(size=3)
    merged = Linear(5, 3)
    merged.W.data[...] = first.W.data @ second.W.data
    merged.b.data[...] = first.b.data @ second.W.data + second.b.data
    x = rng.normal(size=(6, 5))
    np.testing.assert_allclose(Sequential(first, second).forward(x), merged.forward(x), rtol=1e-12)


# ----------------------------------------------------------------------------------------
# Lecture errata and examples read in 01_neurons, 02_graphs and 03_layers (issue 12)
# ----------------------------------------------------------------------------------------


def test_the_slides_rounded_product_is_not_the_exact_weight_gradient():
    """−0.041 × 0.99998 × (1 − 0.99998) × 5 is −4.1e−6 with those digits (the slide prints −3e−6);
    the exact ∂J/∂W₁₁ of the lecture's network is −3.42057777e−06."""
    assert -0.041 * 0.99998 * (1 - 0.99998) * 5 == pytest.approx(-4.1e-6, rel=1e-3)
    net = Sequential(LinearSigmoid(2, 3), LinearSigmoid(3, 1))
    net[0].W.data[...] = [[1.0, -1.0, 3.0], [2.0, 2.0, -1.0]]
    net[1].W.data[...] = [[0.1], [0.5], [-0.1]]
    bce = BinaryCrossEntropy()
    bce.forward(net.forward(np.array([[5.0, 3.0]])), np.array([[1.0]]))
    net.backward(bce.backward())
    assert net[0].W.grad[0, 0] == pytest.approx(-3.42057777e-06, rel=1e-8)
    # the slide's "W12" (x2 -> h1, times x2 = 3) is W[1, 0] by its own h = σ(Wᵀx)
    assert net[0].W.grad[1, 0] == pytest.approx(-2.05234666e-06, rel=1e-8)
    assert net[0].W.grad[1, 0] == pytest.approx(net[0].W.grad[0, 0] * 3 / 5, rel=1e-12)


def test_chain_rule_is_dy_du_times_du_dx():
    """The slide's dy/dx = dy/dx · du/dx is a typo for dy/du · du/dx: y = σ(u), u = x²."""
    x = Value(0.7)
    y = (x**2).sigmoid()
    y.backward()
    u = 0.7**2
    assert x.grad == pytest.approx(A.sigmoid_grad(u) * 2 * 0.7, rel=1e-12)


def test_perceptron_step_of_the_lecture_is_the_course_step():
    """step_fn = lambda z: 1 if z > 0 else 0, the lecture's perceptron activation."""
    step_fn = lambda z: 1 if z > 0 else 0  # noqa: E731
    z = np.linspace(-5, 5, 101)  # includes 0
    np.testing.assert_array_equal(A.binary_step(z), [step_fn(zi) for zi in z])


def test_torch_mulconstant_and_caffe_sigmoid_backward_are_the_course_protocol(rng):
    """Torch's MulConstant: gradInput = a · gradOutput; Caffe's sigmoid:
    bottom_diff = top_diff · s (1 − s) with s the saved output: both as course layers."""
    x, top_diff = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    a = 2.5
    numeric = numerical_gradient(lambda v: a * v, x.copy(), top_diff)
    np.testing.assert_allclose(numeric, a * top_diff, rtol=1e-7)
    sigmoid = Sigmoid()
    top_data = sigmoid.forward(x)
    bottom_diff = np.array([t * s * (1.0 - s) for t, s in zip(top_diff.ravel(), top_data.ravel(), strict=True)])
    np.testing.assert_allclose(sigmoid.backward(top_diff), bottom_diff.reshape(x.shape), rtol=1e-12)


# -- lectures 3 and 4, as notebooks 04-07 use them (issue 12) ----------------------------------------


def test_hog_of_a_320_by_240_image_has_10800_numbers_with_9_bins():
    """30 · 40 cells of 8×8 pixels and 9 direction bins (the slide says "8 directions", but counts 9)."""
    from course.image_features import hog_length

    assert hog_length(240, 320, cell=8, bins=9) == 30 * 40 * 9 == 10_800


def test_neural_net_in_20_lines_trains_identically_as_course_layers():
    """The slide's loop (N, Din, H, Dout = 64, 1000, 100, 10; lr 1e-4 on Σ(y_pred − y)²) and
    Sequential(Linear, Sigmoid, Linear) + MSE + SGD with lr · 2N give the same losses and weights."""
    from numpy.random import RandomState

    from course.layers import Linear, Sequential, Sigmoid
    from course.losses import MSE
    from course.optim import SGD

    randn = RandomState(0).randn
    N, Din, H, Dout = 64, 1000, 100, 10
    x, y = randn(N, Din), randn(N, Dout)
    w1, w2 = randn(Din, H), randn(H, Dout)
    net = Sequential(Linear(Din, H), Sigmoid(), Linear(H, Dout))
    net[0].W.data[...], net[2].W.data[...] = w1, w2
    mse, sgd = MSE(), SGD([net[0].W, net[2].W], lr=1e-4 * 2 * N)
    slide, ours = [], []
    for _ in range(5):
        h = 1.0 / (1.0 + np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        slide.append(np.square(y_pred - y).sum())
        dy_pred = 2.0 * (y_pred - y)
        dw2 = h.T.dot(dy_pred)
        dh = dy_pred.dot(w2.T)
        dw1 = x.T.dot(dh * h * (1 - h))
        w1 -= 1e-4 * dw1
        w2 -= 1e-4 * dw2
        sgd.zero_grad()
        ours.append(2 * N * mse.forward(net.forward(x), y))
        net.backward(mse.backward())
        sgd.step()
    assert slide[-1] < slide[0]
    np.testing.assert_allclose(ours, slide, rtol=1e-10)
    np.testing.assert_allclose(net[0].W.data, w1, rtol=1e-10, atol=1e-12)


def test_momentum_gets_past_a_local_minimum_where_sgd_stops():
    """Lecture 3's picture (SGD vs SGD+Momentum at a local minimum), on course.landscape's double well."""
    from course import landscape

    sgd = landscape.heavy_ball(landscape.double_well_grad, [2.0, 1.0], 0.02, 300, rho=0.0)[-1]
    momentum = landscape.heavy_ball(landscape.double_well_grad, [2.0, 1.0], 0.02, 300, rho=0.9)[-1]
    assert sgd[0] > 0 > momentum[0]
    assert landscape.double_well(momentum) < landscape.double_well(sgd)
