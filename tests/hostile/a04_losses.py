"""Hostile corpus of ``04_losses``: loss backwards and penalty gradients."""

from __future__ import annotations

from .catalogue import Hostile
from .corpus import Assignment, bundle, common_attacks, known_holes, on_wrong, style

HONEST_WRONG = {
    # the gradient of the log-likelihood, not of the loss: the sign flipped
    "losses_SoftmaxCrossEntropy_backward": """
        n = len(self.labels)
        grad = -self.probs.copy()
        grad[np.arange(n), self.labels] += 1.0
        return grad / n
    """,
    # the correct class's entry set to -1 instead of minus the number of violations
    "losses_MulticlassSVM_backward": """
        n = len(self.labels)
        grad = self.violated.astype(np.float64)
        grad[np.arange(n), self.labels] = -1.0 - self.violated.sum(axis=1)
        return grad / n
    """,
    "losses_BinaryCrossEntropy_backward": "p, y = self.p, self.target\nreturn (y - p) / (p * (1.0 - p)) / p.shape[0]",
    "losses_BinaryCrossEntropyWithLogits_backward": "return (self.z - self.target) / self.z.shape[0]",  # no σ
    "losses_MSE_backward": "return 2.0 * self.diff / self.diff.shape[0] + 1.0",
    "losses_L2_grad": "return self.strength * w",  # the 2 forgotten
    "losses_L1_grad": "return self.strength * np.abs(w)",
    "losses_ElasticNet_grad": "return self.strength * (self.beta * w + np.sign(w))",  # the 2 forgotten
}

_CE_VIA_NETWORK = """
# TwoLayerNet with X = I, W1 = I, b1 = 0 (so h1 = I) and W2 = the scores: its dW2 is dL/dscores
n, c = self.probs.shape
scores = np.log(self.probs)
net = course.network.TwoLayerNet(n, n, c, rng=0)
net.params["W1"][...] = np.eye(n)
net.params["b1"][...] = 0.0
net.params["W2"][...] = scores
net.params["b2"][...] = 0.0
_, grads = net.loss(np.eye(n), self.labels, reg=0.0)
return grads["W2"]
"""

DELEGATION = [
    Hostile(
        "delegate_ce_private_helper",
        "softmax cross-entropy gradient from course.exercises.gradients._ce_grad",
        on_wrong(
            HONEST_WRONG,
            losses_SoftmaxCrossEntropy_backward=(
                "return course.exercises.gradients._ce_grad(np.log(self.probs), self.labels)"
            ),
        ),
    ),
    Hostile(
        "delegate_ce_exercise_reference",
        "the exercise catalogue's exact gradients (TEST_FUNCTIONS)",
        on_wrong(
            HONEST_WRONG,
            losses_SoftmaxCrossEntropy_backward="""
                import course.exercises.gradients as G
                _, _, grad = G.TEST_FUNCTIONS["softmax_cross_entropy"]
                return grad(np.log(self.probs), {"labels": self.labels}, None)
            """,
        ),
    ),
    Hostile(
        "delegate_ce_via_network",
        "softmax cross-entropy gradient from TwoLayerNet.loss's dW2",
        on_wrong(HONEST_WRONG, losses_SoftmaxCrossEntropy_backward=_CE_VIA_NETWORK),
    ),
    Hostile(
        "delegate_penalties_via_network",
        "L2 and ElasticNet from TwoLayerNet.loss's 2 * reg * W term",
        on_wrong(
            HONEST_WRONG,
            losses_L2_grad="return _reg_grad(w, self.strength)",
            losses_ElasticNet_grad="return _reg_grad(w, self.strength * self.beta) + self.strength * np.sign(w)",
        ),
        [
            (
                "start",
                """
                def _reg_grad(w, reg):
                    W = np.asarray(w, dtype=float).reshape(1, -1) if np.ndim(w) < 2 else np.asarray(w, dtype=float)
                    d, h = W.shape
                    net = course.network.TwoLayerNet(d, h, 2, rng=0)
                    net.params["W1"][...] = W
                    net.params["b1"][...] = -1.0  # every hidden unit off: only the penalty remains
                    _, grads = net.loss(np.zeros((1, d)), np.zeros(1, dtype=int), reg=reg)
                    return grads["W1"].reshape(np.shape(w))
            """,
            )
        ],
    ),
    Hostile(
        "delegate_losses_to_each_other",
        "MSE as L2.grad, BCE via BCEWithLogits, ElasticNet as L1 + L2",
        on_wrong(
            HONEST_WRONG,
            losses_MSE_backward="return course.losses.L2(0.5 / self.diff.shape[0]).grad(self.diff)",
            losses_BinaryCrossEntropy_backward="""
                         z = np.log(self.p) - np.log1p(-self.p)
                         other = course.losses.BinaryCrossEntropyWithLogits()
                         other.forward(z, self.target)
                         return other.backward() / (self.p * (1 - self.p))
                     """,
            losses_ElasticNet_grad=(
                "return course.losses.L1(self.strength).grad(w) + course.losses.L2(self.strength * self.beta).grad(w)"
            ),
        ),
    ),
    Hostile(
        "delegate_bce_via_gates",
        "BCE's gradient from course.graph.ReciprocalGate, vectorised",
        on_wrong(
            HONEST_WRONG,
            losses_BinaryCrossEntropy_backward="""
                p, y = self.p, self.target
                inv, inv_c = course.graph.ReciprocalGate(), course.graph.ReciprocalGate()
                inv.forward(p)
                inv_c.forward(1.0 - p)
                return (inv.backward(y * p) - inv_c.backward((1.0 - y) * (1.0 - p))) / p.shape[0]
            """,
        ),
    ),
    Hostile(
        "delegate_svm_super_saved",
        "SVM and CE from references saved before the checks, via __code__",
        on_wrong(
            HONEST_WRONG,
            losses_MulticlassSVM_backward="return _SAVED['MulticlassSVM'](self)",
            losses_SoftmaxCrossEntropy_backward="return _SAVED['SoftmaxCrossEntropy'](self)",
        ),
        [
            (
                "start",
                """
                import types
                _SAVED = {n: types.FunctionType(getattr(course.losses, n).backward.__code__, vars(course.losses))
                          for n in ("MulticlassSVM", "SoftmaxCrossEntropy")}
            """,
            )
        ],
    ),
    Hostile(
        "delegate_reload_losses",
        "course.losses reloaded with importlib.reload",
        on_wrong(
            HONEST_WRONG,
            **{
                f"losses_{n}_grad": f"return importlib.reload(course.losses).{n}.grad(self, w)"
                for n in ("L2", "L1", "ElasticNet")
            },
        ),
        [("start", "import importlib")],
    ),
]

NUMERICAL = [
    Hostile(
        "numdiff_per_column_losses",
        "CE and SVM by centred differences of per-example losses, one pass per class",
        on_wrong(
            HONEST_WRONG,
            losses_SoftmaxCrossEntropy_backward="""
                         h = 1e-6
                         s = np.log(self.probs)
                         n, c = s.shape
                         rows = np.arange(n)
                         def per_example(v):
                             return -course.activations.log_softmax(v, axis=1)[rows, self.labels] / n
                         grad = np.empty_like(s)
                         for j in range(c):
                             e = np.zeros_like(s); e[:, j] = h
                             grad[:, j] = (per_example(s + e) - per_example(s - e)) / (2 * h)
                         return grad
                     """,
            losses_MulticlassSVM_backward="""
                         raise NotImplementedError()  # the scores are not saved
                     """,
        ),
    ),
    Hostile(
        "numdiff_complex_step_penalties",
        "the penalties and MSE by complex-step differentiation",
        on_wrong(
            HONEST_WRONG,
            losses_L2_grad="h = 1e-30\nreturn np.imag(self.strength * (w + 1j * h) ** 2) / h",
            losses_ElasticNet_grad=(
                "h = 1e-30\nz = w + 1j * h\n"
                "return np.imag(self.strength * self.beta * z**2) / h + self.strength * np.sign(w)"
            ),
            losses_MSE_backward=(
                "h = 1e-30\nz = self.diff + 1j * h\nreturn np.imag(0.5 * z**2 / self.diff.shape[0]) / h"
            ),
            losses_BinaryCrossEntropyWithLogits_backward="""
                         h = 1e-30
                         z = self.z + 1j * h
                         y = self.target
                         per = np.log(1 + np.exp(-np.abs(z.real))) * 0 + np.logaddexp(0, -self.z) * 0
                         loss = (1 - y) * z + np.log(1 + np.exp(-z))
                         return np.imag(loss) / h / self.z.shape[0]
                     """,
        ),
    ),
]

STYLES = [
    style(
        "style_logits_via_sigmoid_layer",
        "BCE with logits: sigma(z) from the Sigmoid layer's forward (not its backward), then (s - y) / N",
        {
            "losses_BinaryCrossEntropyWithLogits_backward": """
                layer = course.layers.Sigmoid()
                s = layer.forward(self.z)
                return (s - self.target) / self.z.shape[0]
            """,
        },
    ),
    style(
        "style_einsum_inplace",
        "einsum, in-place arithmetic, np.put_along_axis, out=",
        {
            "losses_SoftmaxCrossEntropy_backward": """
            grad = np.array(self.probs, copy=True)
            np.put_along_axis(grad, self.labels[:, None], np.take_along_axis(grad, self.labels[:, None], 1) - 1, 1)
            grad /= grad.shape[0]
            return grad
        """,
            "losses_MulticlassSVM_backward": """
            n, c = self.violated.shape
            onehot = np.zeros((n, c))
            np.put_along_axis(onehot, self.labels[:, None], 1.0, 1)
            v = self.violated.astype(float)
            return (v - np.einsum("n,nc->nc", v.sum(axis=1), onehot)) / n
        """,
            "losses_MSE_backward": (
                "out = np.empty_like(self.diff)\nnp.divide(self.diff, len(self.diff), out=out)\nreturn out"
            ),
            "losses_L1_grad": "return self.strength * ((w > 0).astype(float) - (w < 0))",
        },
    ),
    style(
        "style_helpers_and_state",
        "helpers and np.seterr/warnings in cells of their own",
        {
            "losses_BinaryCrossEntropy_backward": "return _bce_grad(self.p, self.target)",
            "losses_BinaryCrossEntropyWithLogits_backward": "return (_sig(self.z) - self.target) / len(self.z)",
        },
        [
            ("start", 'np.seterr(divide="raise", invalid="raise", over="ignore", under="ignore")'),
            ("start", 'import warnings\nwarnings.simplefilter("ignore")'),
            (
                "start",
                """
            def _bce_grad(p, y):
                return (p - y) / (p * (1.0 - p)) / len(p)

            def _sig(z):
                return 0.5 * (1.0 + np.tanh(0.5 * z))
        """,
            ),
        ],
    ),
]

ASSIGNMENT = Assignment("04_losses", "losses", HONEST_WRONG)
ASSIGNMENT.entries = [
    *DELEGATION,
    *NUMERICAL,
    *STYLES,
    *common_attacks(HONEST_WRONG, which={"sees_job", "disk_fill", "read_other_clone"}),
]
# forge_results_daemon is 02's, forge_huge_result 03's. Graded together: each answers its own
# losses' cells (separate classes).
bundle(
    ASSIGNMENT.entries,
    "bundle_delegate_a",
    "delegate_ce_private_helper",
    "delegate_penalties_via_network",
    "delegate_bce_via_gates",
)
bundle(ASSIGNMENT.entries, "bundle_delegate_b", "delegate_ce_exercise_reference", "delegate_losses_to_each_other")
bundle(ASSIGNMENT.entries, "bundle_delegate_c", "delegate_ce_via_network", "numdiff_complex_step_penalties")
bundle(ASSIGNMENT.entries, "bundle_styles", "style_einsum_inplace", "style_helpers_and_state")
bundle(ASSIGNMENT.entries, "bundle_machine", "sees_job", "read_other_clone")

#: Entries that the grader of today loses to (strict xfails), by the part of issue 9 they wait for.
#: Classified against the working tree of 2026-12-01 ~17:00 UTC; an XPASS means: remove the entry here.
KNOWN_HOLES: dict[str, str] = {}
known_holes(ASSIGNMENT.entries, KNOWN_HOLES)
