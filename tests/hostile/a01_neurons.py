"""Hostile corpus of ``01_neurons``: activation derivatives, the layer forward passes, Maxout."""

from __future__ import annotations

from .catalogue import Hostile
from .corpus import Assignment, bundle, common_attacks, known_holes, on_wrong, style

HONEST_WRONG = {
    "sigmoid_grad": "s = sigmoid(x)\nreturn s * s",  # σ² instead of σ(1 − σ)
    "tanh_grad": "return 1.0 - tanh(x)",  # 1 − tanh instead of 1 − tanh²
    "relu_grad": "return np.where(x > 0, 0.0, 1.0)",  # the two sides swapped
    "leaky_relu_grad": "return np.where(x > 0, alpha, 1.0)",  # the two sides swapped
    "elu_grad": "return np.where(x > 0, 0.0, alpha * np.exp(np.minimum(x, 0.0)))",  # 0 on the right side
    "layer_forward": "return activation(X @ W) + b",  # the bias after the activation
    "three_layer_forward": """
        h1 = sigmoid(X @ W1 + b1)
        h2 = sigmoid(h1 @ W2 + b2)
        return sigmoid(h2 @ W3 + b3)
    """,  # a sigmoid on the linear output
    "Maxout_backward": """
        grad_x = np.zeros_like(self.x)
        for j in range(self.k):  # every piece gets the gradient, winner or not
            self.W.grad[j] += self.x.T @ grad_out
            self.b.grad[j] += grad_out.sum(axis=0)
            grad_x += grad_out @ self.W.data[j].T
        return grad_x
    """,
}

ACTIVATIONS = ["sigmoid_grad", "tanh_grad", "relu_grad", "leaky_relu_grad", "elu_grad"]
_ALPHA = {name: ", alpha" if name in ("leaky_relu_grad", "elu_grad") else "" for name in ACTIVATIONS}

_MAXOUT_VIA_LINEAR = """
grad_x = np.zeros_like(self.x)
for j in range(self.k):
    piece = course.layers.Linear(self.x.shape[1], self.W.data.shape[2], rng=0)
    piece.W.data[...] = self.W.data[j]
    piece.b.data[...] = self.b.data[j]
    piece.forward(self.x)
    grad_x += piece.backward(grad_out * (self.winner == j))
    self.W.grad[j] += piece.W.grad
    self.b.grad[j] += piece.b.grad
return grad_x
"""

DELEGATION = [
    Hostile(
        "delegate_activations_grad",
        "every derivative from course.activations.*_grad",
        on_wrong(
            HONEST_WRONG,
            sigmoid_grad="return course.activations.sigmoid_grad(x)",
            tanh_grad="return course.activations.tanh_grad(x)",
            relu_grad="return course.activations.relu_grad(x)",
            leaky_relu_grad="return course.activations.leaky_relu_grad(x, alpha)",
            elu_grad="return course.activations.elu_grad(x, alpha)",
        ),
    ),
    Hostile(
        "delegate_layer_backwards",
        "derivatives from the layers' backward (Sigmoid, Tanh, ReLU, LeakyReLU, ELU)",
        on_wrong(
            HONEST_WRONG,
            **{
                name: f"layer = course.layers.{cls}({arg})\nlayer.forward(np.asarray(x, dtype=float))\n"
                "return layer.backward(np.ones(np.shape(x)))"
                for name, cls, arg in [
                    ("sigmoid_grad", "Sigmoid", ""),
                    ("tanh_grad", "Tanh", ""),
                    ("relu_grad", "ReLU", ""),
                    ("leaky_relu_grad", "LeakyReLU", "alpha"),
                    ("elu_grad", "ELU", "alpha"),
                ]
            },
        ),
    ),
    Hostile(
        "delegate_linear_sigmoid",
        "σ' from LinearSigmoid.backward with a 1 x 1 identity weight",
        on_wrong(
            HONEST_WRONG,
            sigmoid_grad="""
            x = np.asarray(x, dtype=float)
            layer = course.layers.LinearSigmoid(1, 1, rng=0)
            layer.W.data[...] = 1.0
            if layer.b is not None:
                layer.b.data[...] = 0.0
            layer.forward(x.reshape(-1, 1))
            return layer.backward(np.ones((x.size, 1))).reshape(x.shape)
        """,
        ),
    ),
    Hostile(
        "delegate_graph_value",
        "σ', tanh' and ReLU' from course.graph.Value, one node per entry",
        on_wrong(
            HONEST_WRONG,
            **{
                name: f"""
                x = np.asarray(x, dtype=float)
                out = np.empty(x.shape)
                for i in np.ndindex(x.shape):
                    v = course.graph.Value(float(x[i]))
                    y = v.{op}()
                    y.backward()
                    out[i] = v.grad
                return out
            """
                for name, op in [("sigmoid_grad", "sigmoid"), ("tanh_grad", "tanh"), ("relu_grad", "relu")]
            },
        ),
    ),
    Hostile(
        "delegate_gates",
        "σ' from course.graph.SigmoidGate, ReLU' from MaxGate, one gate per entry",
        on_wrong(
            HONEST_WRONG,
            sigmoid_grad="""
            x = np.asarray(x, dtype=float)
            out = np.empty(x.shape)
            for i in np.ndindex(x.shape):
                gate = course.graph.SigmoidGate()
                gate.forward(float(x[i]))
                out[i] = gate.backward(1.0)
            return out
        """,
            relu_grad="""
            x = np.asarray(x, dtype=float)
            out = np.empty(x.shape)
            for i in np.ndindex(x.shape):
                gate = course.graph.MaxGate()
                gate.forward(float(x[i]), 0.0)
                out[i] = gate.backward(1.0)[0] if x[i] != 0 else 0.0
            return out
        """,
        ),
    ),
    Hostile(
        "delegate_neuron_forward",
        "the forward passes from course.neuron's layer_forward, three_layer_forward",
        on_wrong(
            HONEST_WRONG,
            layer_forward="return course.neuron.layer_forward(X, W, b, activation)",
            three_layer_forward="return course.neuron.three_layer_forward(X, W1, b1, W2, b2, W3, b3)",
        ),
    ),
    Hostile(
        "delegate_layers_forward",
        "the forward passes from course.layers.Linear and Sigmoid",
        on_wrong(
            HONEST_WRONG,
            layer_forward="""
            layer = course.layers.Linear(W.shape[0], W.shape[1], rng=0)
            layer.W.data[...], layer.b.data[...] = W, b
            return activation(layer.forward(X))
        """,
            three_layer_forward="""
            net = course.layers.Sequential(
                course.layers.Linear(W1.shape[0], W1.shape[1], rng=0), course.layers.Sigmoid(),
                course.layers.Linear(W2.shape[0], W2.shape[1], rng=0), course.layers.Sigmoid(),
                course.layers.Linear(W3.shape[0], W3.shape[1], rng=0))
            for layer, (W, b) in zip([net[0], net[2], net[4]], [(W1, b1), (W2, b2), (W3, b3)]):
                layer.W.data[...], layer.b.data[...] = W, b
            return net.forward(X)
        """,
        ),
    ),
    Hostile(
        "delegate_maxout_via_linear",
        "Maxout.backward as one course.layers.Linear.backward per piece",
        on_wrong(HONEST_WRONG, Maxout_backward=_MAXOUT_VIA_LINEAR),
    ),
    Hostile(
        "delegate_maxout_super",
        "Maxout.backward by super()",
        on_wrong(HONEST_WRONG, Maxout_backward="return super().backward(grad_out)"),
    ),
    Hostile(
        "delegate_gc_objects",
        "reference functions found with gc.get_objects() (by name, in any module)",
        on_wrong(HONEST_WRONG, **{name: f"return _FOUND['{name}'](x{_ALPHA[name]})" for name in ACTIVATIONS}),
        [
            (
                "start",
                """
                import gc, types
                _FOUND = {}
                for obj in gc.get_objects():
                    if isinstance(obj, types.FunctionType) and obj.__name__ in (
                            "sigmoid_grad", "tanh_grad", "relu_grad", "leaky_relu_grad", "elu_grad"):
                        if getattr(obj, "__module__", "").startswith("course"):
                            _FOUND.setdefault(obj.__name__, obj)
            """,
            )
        ],
    ),
    Hostile(
        "delegate_reload_and_exec_source",
        "course.activations reloaded, and its source file exec'd afresh",
        on_wrong(
            HONEST_WRONG,
            sigmoid_grad="return _RELOADED.sigmoid_grad(x)",
            tanh_grad="return _EXECD['tanh_grad'](x)",
            relu_grad="return _EXECD['relu_grad'](x)",
        ),
        [
            (
                "start",
                """
                import importlib, pathlib
                import course.activations
                _RELOADED = importlib.reload(course.activations)
                _EXECD = {"__name__": "course.activations_copy"}
                exec(compile(pathlib.Path(course.activations.__file__).read_text(), "copy", "exec"), _EXECD)
            """,
            )
        ],
    ),
    Hostile(
        "delegate_other_clone_library",
        "derivatives from another clone's course/ on the machine",
        on_wrong(HONEST_WRONG, **{name: f"return _CLONE.{name}(x{_ALPHA[name]})" for name in ACTIVATIONS}),
        [
            (
                "start",
                """
                import importlib.util, sys
                _spec = importlib.util.spec_from_file_location(
                    "clonecourse", "@@CLONE@@/course/__init__.py", submodule_search_locations=["@@CLONE@@/course"])
                _pkg = importlib.util.module_from_spec(_spec)
                sys.modules["clonecourse"] = _pkg
                _spec.loader.exec_module(_pkg)
                import clonecourse.activations as _CLONE
            """,
            )
        ],
    ),
]

NUMERICAL = [
    Hostile(
        "numdiff_centred_vectorised",
        "every derivative by one vectorised centred difference of the forward",
        on_wrong(
            HONEST_WRONG,
            **{
                name: f"h = 1e-6\nx = np.asarray(x, dtype=float)\nreturn ({fn}(x + h{a}) - {fn}(x - h{a})) / (2 * h)"
                for name, fn, a in [
                    ("sigmoid_grad", "sigmoid", ""),
                    ("tanh_grad", "tanh", ""),
                    ("relu_grad", "relu", ""),
                    ("leaky_relu_grad", "leaky_relu", ", alpha"),
                    ("elu_grad", "elu", ", alpha"),
                ]
            },
        ),
    ),
    Hostile(
        "numdiff_complex_step",
        "σ', tanh' and ELU' by complex-step differentiation (exact to 1e-15)",
        on_wrong(
            HONEST_WRONG,
            sigmoid_grad="h = 1e-30\nz = np.asarray(x, dtype=float) + 1j * h\nreturn np.imag(1 / (1 + np.exp(-z))) / h",
            tanh_grad="h = 1e-30\nreturn np.imag(np.tanh(np.asarray(x, dtype=float) + 1j * h)) / h",
            elu_grad="""
            h = 1e-30
            x = np.asarray(x, dtype=float)
            z = x + 1j * h
            return np.where(x > 0, 1.0, np.imag(alpha * (np.exp(np.minimum(x, 0.0) + 1j * h) - 1)) / h)
        """,
        ),
    ),
    Hostile(
        "numdiff_maxout_columns",
        "Maxout.backward by centred differences, one pass per input column",
        on_wrong(
            HONEST_WRONG,
            Maxout_backward="""
                h = 1e-6
                x = self.x.copy()
                def loss(xv, W, b):
                    z = np.einsum("nd,kdm->knm", xv, W) + b[:, None, :]
                    return (z.max(axis=0) * grad_out).sum(axis=1)  # one loss per example
                W, b = self.W.data, self.b.data
                grad_x = np.zeros_like(x)
                for d in range(x.shape[1]):
                    e = np.zeros_like(x); e[:, d] = h
                    grad_x[:, d] = (loss(x + e, W, b) - loss(x - e, W, b)) / (2 * h)
                for j in range(W.shape[0]):
                    for d in range(W.shape[1]):
                        E = np.zeros_like(W); E[j, d, :] = h
                        # columns of W[j, d, :] act on separate outputs: the per-output losses separate
                        zp = np.einsum("nd,kdm->knm", x, W + E) + b[:, None, :]
                        zm = np.einsum("nd,kdm->knm", x, W - E) + b[:, None, :]
                        self.W.grad[j, d] += ((zp.max(axis=0) - zm.max(axis=0)) * grad_out).sum(axis=0) / (2 * h)
                    E = np.zeros_like(b); E[j] = h
                    zp = np.einsum("nd,kdm->knm", x, W) + (b + E)[:, None, :]
                    zm = np.einsum("nd,kdm->knm", x, W) + (b - E)[:, None, :]
                    self.b.grad[j] += ((zp.max(axis=0) - zm.max(axis=0)) * grad_out).sum(axis=0) / (2 * h)
                return grad_x
            """,
        ),
    ),
]

STYLES = [
    # Not an attack (the lead's call): the unit step IS ReLU's derivative, as np.heaviside is.
    style(
        "style_relu_via_binary_step",
        "ReLU' and Leaky ReLU' from course.activations.binary_step, the unit step",
        {
            "relu_grad": "return course.activations.binary_step(x)",
            "leaky_relu_grad": "return alpha + (1.0 - alpha) * course.activations.binary_step(x)",
        },
    ),
    style(
        "style_functions_and_where",
        "np.where, np.exp(-|x|), out=, 0-d arrays and lists accepted",
        {
            "sigmoid_grad": """
            x = np.asarray(x, dtype=np.float64)
            e = np.exp(-np.abs(x))
            s = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
            out = np.empty_like(s)
            np.multiply(s, 1.0 - s, out=out)
            return out
        """,
            "tanh_grad": "t = np.tanh(np.asarray(x, dtype=float))\nreturn np.subtract(1.0, np.square(t))",
            "relu_grad": "return (np.asarray(x) > 0).astype(np.float64)",
            "leaky_relu_grad": "g = np.ones(np.shape(x))\ng[np.asarray(x) <= 0] = alpha\nreturn g",
            "elu_grad": (
                "x = np.asarray(x, dtype=float)\nreturn np.where(x > 0, 1.0, alpha * np.exp(np.clip(x, None, 0.0)))"
            ),
            "layer_forward": 'return activation(np.einsum("nd,dm->nm", X, W) + b)',
            "three_layer_forward": """
            h = X
            for W, b, f in [(W1, b1, sigmoid), (W2, b2, sigmoid), (W3, b3, lambda z: z)]:
                h = f(h @ W + b)
            return h
        """,
        },
    ),
    style(
        "style_maxout_einsum_helper",
        "Maxout.backward with einsum through a helper in a cell of its own",
        {
            "Maxout_backward": "return _maxout_backward(self, grad_out)",
        },
        [
            (
                "start",
                """
        def _maxout_backward(layer, grad_out):
            mask = layer.winner[None, :, :] == np.arange(layer.k)[:, None, None]  # (k, N, M)
            delta = grad_out[None] * mask
            layer.W.grad += np.einsum("nd,knm->kdm", layer.x, delta)
            layer.b.grad += delta.sum(axis=1)
            return np.einsum("knm,kdm->nd", delta, layer.W.data)
    """,
            )
        ],
    ),
    style(
        "style_state_cells",
        "np.seterr, set_printoptions, warnings filters and a seed, each in a cell of its own",
        {},
        [
            ("start", 'np.seterr(divide="raise", invalid="raise")'),
            ("start", "np.set_printoptions(precision=17, floatmode='unique', legacy='1.25')"),
            ("start", 'import warnings\nwarnings.filterwarnings("error", category=DeprecationWarning)'),
            ("start", "np.random.seed(1234)"),
        ],
    ),
]

ASSIGNMENT = Assignment("01_neurons", "neurons", HONEST_WRONG)
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
            "read_root",
            "active_content",
        },
    ),
]
# Graded together: each answers its own cells (activations, neuron forwards, Maxout), or only
# appends cells that read what the sandbox hides. forge_results_thread is 03's and 06's.
bundle(
    ASSIGNMENT.entries,
    "bundle_delegate_a",
    "delegate_activations_grad",
    "delegate_neuron_forward",
    "delegate_maxout_via_linear",
)
bundle(
    ASSIGNMENT.entries,
    "bundle_delegate_b",
    "delegate_layer_backwards",
    "delegate_layers_forward",
    "delegate_maxout_super",
)
bundle(ASSIGNMENT.entries, "bundle_delegate_c", "delegate_linear_sigmoid", "numdiff_maxout_columns")
bundle(
    ASSIGNMENT.entries, "bundle_styles", "style_relu_via_binary_step", "style_maxout_einsum_helper", "style_state_cells"
)
bundle(
    ASSIGNMENT.entries, "bundle_machine", "forge_results_before_cases", "sees_cases", "read_other_clone", "read_root"
)

#: Entries that the grader of today loses to (strict xfails), by the part of issue 9 they wait for.
#: Classified against the working tree of 2026-12-01 ~17:00 UTC; an XPASS means: remove the entry here.
KNOWN_HOLES: dict[str, str] = {}
known_holes(ASSIGNMENT.entries, KNOWN_HOLES)
