"""Hostile corpus of ``07_mlp``: a two-layer network's scores, loss and gradients, staged."""

from __future__ import annotations

from .catalogue import Hostile
from .corpus import Assignment, bundle, common_attacks, known_holes, on_wrong, style

#: The three regions of TwoLayerNet.loss: forward, loss, backward.
HONEST_WRONG = {
    "TwoLayerNet_loss": [
        "z1 = X @ W1 + b1\nh1 = np.maximum(0.0, z1)\nscores = h1 @ W2",  # b2 forgotten
        """
        shifted = scores - np.max(scores, axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= np.sum(probs, axis=1, keepdims=True)
        data_loss = -np.mean(np.log(probs[np.arange(N), y]))
        loss = data_loss + 0.5 * reg * (np.sum(W1**2) + np.sum(W2**2))
        """,
        """
        dscores = probs.copy()
        dscores[np.arange(N), y] -= 1.0
        dW2 = h1.T @ dscores
        db2 = np.sum(dscores, axis=0)
        dz1 = (dscores @ W2.T) * (z1 > 0)
        dW1 = X.T @ dz1
        db1 = np.sum(dz1, axis=0)
        grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
        """,
    ],
}

#: The network from the library's building blocks (course.layers, course.losses, course.activations).
_BLOCKS = """
lin1, relu, lin2 = course.layers.Linear(W1.shape[0], W1.shape[1], rng=0), course.layers.ReLU(), \\
    course.layers.Linear(W2.shape[0], W2.shape[1], rng=0)
lin1.W.data, lin1.b.data, lin2.W.data, lin2.b.data = W1, b1, W2, b2
scores = lin2.forward(relu.forward(lin1.forward(X)))
"""
_BLOCKS_LOSS = """
ce = course.losses.SoftmaxCrossEntropy()
l2 = course.losses.L2(reg)
loss = ce.forward(scores, y) + l2.value(W1) + l2.value(W2)
"""
_BLOCKS_BACKWARD = """
lin1.zero_grad(); lin2.zero_grad()
lin1.backward(relu.backward(lin2.backward(ce.backward())))
grads = {"W1": lin1.W.grad + l2.grad(W1), "b1": lin1.b.grad.copy(),
         "W2": lin2.W.grad + l2.grad(W2), "b2": lin2.b.grad.copy()}
"""


def _unwatched(code: str, how: str) -> str:
    """``code`` run with the profile hook that watches for delegation switched off ``how``."""
    if how == "setprofile":
        head = "import sys\n_hook = sys.getprofile()\nsys.setprofile(None)\n"
        return f"{head}try:\n{_indent(code)}\nfinally:\n    sys.setprofile(_hook)"
    return code


def _indent(code: str) -> str:
    import textwrap

    return textwrap.indent(textwrap.dedent(code).strip("\n"), "    ")


_IN_THREAD = """
import _thread, threading
_box, _done = dict(locals()), threading.Event()
def _work():
    try:
        exec(_BODY, globals(), _box)
    finally:
        _done.set()
_thread.start_new_thread(_work, ())  # a raw thread: threading.setprofile never reaches it
_done.wait()
scores = _box["scores"]
"""

DELEGATION = [
    Hostile(
        "delegate_blocks_profile_off",
        "the network from course.layers/losses blocks with sys.setprofile(None)",
        on_wrong(
            HONEST_WRONG,
            TwoLayerNet_loss=[
                _unwatched(_BLOCKS, "setprofile"),
                _unwatched(_BLOCKS_LOSS, "setprofile"),
                _unwatched(_BLOCKS_BACKWARD, "setprofile"),
            ],
        ),
    ),
    Hostile(
        "delegate_blocks_watched",
        "the network from course.layers/losses blocks, hook left on",
        on_wrong(HONEST_WRONG, TwoLayerNet_loss=[_BLOCKS, _BLOCKS_LOSS, _BLOCKS_BACKWARD]),
    ),
    Hostile(
        "delegate_blocks_raw_thread",
        "the scores from the blocks in a _thread the profile hook never sees",
        on_wrong(
            HONEST_WRONG,
            TwoLayerNet_loss=[
                "_BODY = " + repr(_BLOCKS) + "\n" + _IN_THREAD,
                HONEST_WRONG["TwoLayerNet_loss"][1],
                HONEST_WRONG["TwoLayerNet_loss"][2],
            ],
        ),
    ),
    Hostile(
        "delegate_network_saved_code",
        "TwoLayerNet.loss from a copy of the reference's __code__",
        on_wrong(HONEST_WRONG, TwoLayerNet_loss=["return _SAVED(self, X, y, reg)", None, None]),
        [
            (
                "start",
                """
                import types
                import course.network
                _SAVED = types.FunctionType(course.network.TwoLayerNet.loss.__code__, vars(course.network))
            """,
            )
        ],
    ),
    Hostile(
        "delegate_judge_loss_terms",
        "the loss value from the judge's course.exercises.mlp.loss_terms",
        on_wrong(
            HONEST_WRONG,
            TwoLayerNet_loss=[
                HONEST_WRONG["TwoLayerNet_loss"][0].replace("h1 @ W2", "h1 @ W2 + b2"),
                "import course.exercises.mlp as M\nloss = float(np.sum(M.loss_terms(self, X, y, reg)))\nprobs = None",
                "raise NotImplementedError()",
            ],
        ),
        allowance=3.0,  # its forward is written by hand: the scores' 3 points are its own
    ),
    Hostile(
        "delegate_ce_helper_in_network",
        "dscores from course.exercises.gradients._ce_grad, the rest by hand",
        on_wrong(
            HONEST_WRONG,
            TwoLayerNet_loss=[
                "z1 = X @ W1 + b1\nh1 = np.maximum(0.0, z1)\nscores = h1 @ W2 + b2",
                "loss = course.exercises.gradients._ce(scores, y) + reg * (np.sum(W1**2) + np.sum(W2**2))",
                """
                dscores = course.exercises.gradients._ce_grad(scores, y)
                dW2 = h1.T @ dscores + 2 * reg * W2
                db2 = np.sum(dscores, axis=0)
                dz1 = (dscores @ W2.T) * (z1 > 0)
                grads = {"W1": X.T @ dz1 + 2 * reg * W1, "b1": dz1.sum(axis=0), "W2": dW2, "b2": db2}
                """,
            ],
        ),
        allowance=3.0,  # its forward is written by hand: the scores' 3 points are its own
    ),
]

NUMERICAL = [
    Hostile(
        "numdiff_complex_step_grads",
        "all four gradients by complex-step differentiation, one pass per entry",
        on_wrong(
            HONEST_WRONG,
            TwoLayerNet_loss=[
                "z1 = X @ W1 + b1\nh1 = np.maximum(0.0, z1)\nscores = h1 @ W2 + b2",
                """
                shifted = scores - np.max(scores, axis=1, keepdims=True)
                data_loss = -np.mean(shifted[np.arange(N), y] - np.log(np.sum(np.exp(shifted), axis=1)))
                loss = data_loss + reg * (np.sum(W1**2) + np.sum(W2**2))
                """,
                """
                def _loss(P):
                    z = X @ P["W1"] + P["b1"]
                    h = z * (z.real > 0)
                    s = h @ P["W2"] + P["b2"]
                    s = s - s.real.max(axis=1, keepdims=True)
                    lse = np.log(np.sum(np.exp(s), axis=1))
                    return -np.mean(s[np.arange(N), y] - lse) + reg * (np.sum(P["W1"] ** 2) + np.sum(P["W2"] ** 2))
                step = 1e-30
                base = {k: self.params[k].astype(complex) for k in ("W1", "b1", "W2", "b2")}
                grads = {}
                for k, v in base.items():
                    g = np.zeros(v.shape)
                    for ix in np.ndindex(v.shape):
                        v[ix] += 1j * step
                        g[ix] = np.imag(_loss(base)) / step
                        v[ix] -= 1j * step
                    grads[k] = g
                """,
            ],
        ),
        allowance=3.0,  # its forward is written by hand: the scores' 3 points are its own
    ),
]

STYLES = [
    style(
        "style_einsum_helpers",
        "einsum, np.logaddexp.reduce, a helper cell, in-place updates",
        {
            "TwoLayerNet_loss": [
                'z1 = np.einsum("nd,dh->nh", X, W1) + b1\nh1 = np.clip(z1, 0.0, None)\nscores = h1 @ W2 + b2',
                """
            logp = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
            loss = -logp[np.arange(N), y].mean() + reg * (np.vdot(W1, W1) + np.vdot(W2, W2))
            probs = np.exp(logp)
            """,
                """
            dscores = _dscores(probs, y)
            grads = {"W2": h1.T @ dscores + 2 * reg * W2, "b2": dscores.sum(0)}
            dz1 = dscores @ W2.T
            dz1[z1 <= 0] = 0.0
            grads["W1"] = np.einsum("nd,nh->dh", X, dz1) + 2 * reg * W1
            grads["b1"] = dz1.sum(0)
            """,
            ],
        },
        [
            (
                "start",
                """
        def _dscores(probs, y):
            d = probs.copy()
            d[np.arange(len(y)), y] -= 1.0
            d /= len(y)
            return d
    """,
            )
        ],
    ),
    style(
        "style_state_cells",
        "np.seterr, warnings filters, set_printoptions and a seed, each in a cell of its own",
        {},
        [
            ("start", 'np.seterr(divide="raise", invalid="raise")'),
            ("start", 'import warnings\nwarnings.filterwarnings("ignore", category=RuntimeWarning)'),
            ("start", "np.set_printoptions(precision=5, suppress=True)"),
            ("start", "np.random.seed(42)"),
        ],
    ),
]

ASSIGNMENT = Assignment("07_mlp", "mlp", HONEST_WRONG)
ASSIGNMENT.entries = [
    *DELEGATION,
    *NUMERICAL,
    *STYLES,
    *common_attacks(
        HONEST_WRONG,
        which={
            "forge_results_before_cases",
            "sees_cases",
            "read_other_clone",
            "many_sleeping_cells",
        },
    ),
]
# forge_results_daemon is 02's, disk_fill 04's. Graded together: the cells that read what the
# sandbox hides. (Every other entry answers the one cell TwoLayerNet.loss.)
bundle(ASSIGNMENT.entries, "bundle_styles", "style_einsum_helpers", "style_state_cells")
bundle(ASSIGNMENT.entries, "bundle_machine", "forge_results_before_cases", "sees_cases", "read_other_clone")

#: Entries that the grader of today loses to (strict xfails), by the part of issue 9 they wait for.
#: Classified against the working tree of 2026-12-01 ~17:00 UTC; an XPASS means: remove the entry here.
KNOWN_HOLES: dict[str, str] = {}
known_holes(ASSIGNMENT.entries, KNOWN_HOLES)
