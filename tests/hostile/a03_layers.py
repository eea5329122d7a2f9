"""Hostile corpus of ``03_layers`` beyond the original catalogue (tests/test_hostile.py grades
that one): delegation to other library code, numerical differentiation per column and by
complex step, forged results, styles that set interpreter state."""

from __future__ import annotations

from .catalogue import HONEST_WRONG, Hostile, cell_id
from .corpus import Assignment, bundle, common_attacks, known_holes, on_wrong, style

_LINEAR_VIA_MAXOUT = """
piece = course.layers.Maxout(self.W.data.shape[0], self.W.data.shape[1], k=1, rng=0)
piece.W.data[0] = self.W.data
piece.b.data[0] = self.b.data
piece.forward(self.x)
grad_x = piece.backward(grad_out)
self.W.grad += piece.W.grad[0]
self.b.grad += piece.b.grad[0]
return grad_x
"""

DELEGATION = [
    Hostile(
        "delegate_linear_via_maxout",
        "Linear.backward via Maxout with one piece (Maxout is not graded here)",
        on_wrong(HONEST_WRONG, **{cell_id("Linear"): _LINEAR_VIA_MAXOUT}),
    ),
    Hostile(
        "delegate_activations_grad",
        "activation backwards from course.activations.*_grad",
        on_wrong(
            HONEST_WRONG,
            **{
                cell_id("Sigmoid"): "return grad_out * course.activations.sigmoid_grad(self.x)",
                cell_id("Tanh"): "return grad_out * course.activations.tanh_grad(self.x)",
                cell_id("ReLU"): "return grad_out * course.activations.relu_grad(self.x)",
            },
        ),
    ),
    Hostile(
        "delegate_other_layers",
        "ReLU via LeakyReLU(0), Sigmoid via a 1 x 1 LinearSigmoid",
        on_wrong(
            HONEST_WRONG,
            **{
                cell_id(
                    "ReLU"
                ): "other = course.layers.LeakyReLU(0.0)\nother.forward(self.x)\nreturn other.backward(grad_out)",
                cell_id("Sigmoid"): """
                x = self.x.reshape(-1, 1)
                piece = course.layers.LinearSigmoid(1, 1, rng=0)
                piece.W.data[...] = 1.0
                if piece.b is not None:
                    piece.b.data[...] = 0.0
                piece.forward(x)
                return piece.backward(grad_out.reshape(-1, 1)).reshape(self.x.shape)
            """,
            },
        ),
    ),
    Hostile(
        "delegate_graph_value",
        "Tanh' and Sigmoid' from course.graph.Value, one node per entry",
        on_wrong(
            HONEST_WRONG,
            **{
                cell_id(name): f"""
                out = np.empty(self.x.shape)
                for i in np.ndindex(self.x.shape):
                    v = course.graph.Value(float(self.x[i]))
                    v.{op}().backward()
                    out[i] = v.grad
                return grad_out * out
            """
                for name, op in [("Tanh", "tanh"), ("Sigmoid", "sigmoid")]
            },
        ),
    ),
    Hostile(
        "delegate_linear_sigmoid_via_linear",
        "LinearSigmoid via course.network's and Maxout's code",
        on_wrong(
            HONEST_WRONG,
            **{
                cell_id("LinearSigmoid"): """
            z = self.x @ self.W.data + (0 if self.b is None else self.b.data)
            dz = grad_out * course.activations.sigmoid_grad(z)
            piece = course.layers.Maxout(self.W.data.shape[0], self.W.data.shape[1], k=1, rng=0)
            piece.W.data[0] = self.W.data
            piece.forward(self.x)
            grad_x = piece.backward(dz)
            self.W.grad += piece.W.grad[0]
            if self.b is not None:
                self.b.grad += piece.b.grad[0]
            return grad_x
        """
            },
        ),
    ),
    Hostile(
        "delegate_code_copy_and_gc",
        "reference code from __code__ copies of other classes and gc.get_objects()",
        on_wrong(
            HONEST_WRONG,
            **{
                cell_id(name): f"return _FROM_GC['{name}'](self, grad_out)"
                for name in ("Linear", "Sigmoid", "Tanh", "ReLU", "LinearSigmoid")
            },
        ),
        [
            (
                "start",
                """
                import gc, types
                _FROM_GC = {}
                for obj in gc.get_objects():
                    if isinstance(obj, types.FunctionType) and obj.__name__ == "backward":
                        owner = obj.__qualname__.split(".")[0]
                        if obj.__module__.startswith("course") and owner not in _FROM_GC:
                            _FROM_GC[owner] = obj
            """,
            )
        ],
    ),
    Hostile(
        "delegate_exec_library_source",
        "the library's layers.py read from the bound copy and exec'd",
        on_wrong(
            HONEST_WRONG,
            **{
                cell_id(name): f"return _SRC['{name}'].backward(self, grad_out)"
                for name in ("Linear", "Sigmoid", "Tanh", "ReLU", "LinearSigmoid", "Sequential")
            },
        ),
        [
            (
                "start",
                """
                import pathlib
                import course.layers
                _SRC = {"__name__": "course.layers_exec"}
                exec(compile(pathlib.Path(course.layers.__file__).read_text(), "layers-copy", "exec"), _SRC)
            """,
            )
        ],
    ),
]

NUMERICAL = [
    Hostile(
        "numdiff_linear_per_column",
        "Linear.backward by centred differences, one pass per column (2D + 1)",
        on_wrong(
            HONEST_WRONG,
            **{
                cell_id("Linear"): """
                h = 1e-5
                x, W, b = self.x, self.W.data, self.b.data
                def out(xv, Wv, bv):
                    return xv @ Wv + bv
                grad_x = np.empty_like(x)
                for d in range(x.shape[1]):  # column d of x acts on every output of its row
                    e = np.zeros_like(x); e[:, d] = h
                    grad_x[:, d] = ((out(x + e, W, b) - out(x - e, W, b)) * grad_out).sum(axis=1) / (2 * h)
                for d in range(W.shape[0]):  # row d of W: each entry acts on its own output column
                    E = np.zeros_like(W); E[d, :] = h
                    self.W.grad[d] += ((out(x, W + E, b) - out(x, W - E, b)) * grad_out).sum(axis=0) / (2 * h)
                self.b.grad += ((out(x, W, b + h) - out(x, W, b - h)) * grad_out).sum(axis=0) / (2 * h)
                return grad_x
            """
            },
        ),
    ),
    Hostile(
        "numdiff_complex_step",
        "Sigmoid and Tanh by complex-step differentiation of their forward",
        on_wrong(
            HONEST_WRONG,
            **{
                cell_id(
                    "Sigmoid"
                ): "h = 1e-30\nz = self.x + 1j * h\nreturn grad_out * np.imag(1 / (1 + np.exp(-z))) / h",
                cell_id("Tanh"): "h = 1e-30\nreturn grad_out * np.imag(np.tanh(self.x + 1j * h)) / h",
            },
        ),
    ),
    Hostile(
        "numdiff_vectorised_elementwise",
        "ReLU, Sigmoid and Tanh by one vectorised centred difference",
        on_wrong(
            HONEST_WRONG,
            **{
                cell_id(name): f"h = 1e-6\nreturn grad_out * ({fn}(self.x + h) - {fn}(self.x - h)) / (2 * h)"
                for name, fn in [
                    ("Sigmoid", "course.activations.sigmoid"),
                    ("Tanh", "np.tanh"),
                    ("ReLU", "course.activations.relu"),
                ]
            },
        ),
    ),
]

STYLES = [
    style(
        "style_noncontiguous_and_out",
        "results that are transposed views, Fortran order, written with out=",
        {
            cell_id("Linear"): """
            np.add(self.W.grad, (grad_out.T @ self.x).T, out=self.W.grad)
            np.add(self.b.grad, grad_out.T.sum(axis=1), out=self.b.grad)
            return np.asfortranarray((self.W.data @ grad_out.T).T)
        """,
            cell_id(
                "Sigmoid"
            ): "g = np.empty_like(self.y.T)\nnp.multiply(self.y.T, 1 - self.y.T, out=g)\nreturn (g * grad_out.T).T",
            cell_id("ReLU"): "return np.where(self.x > 0, grad_out, 0.0)[..., ::-1][..., ::-1]",
        },
    ),
    style(
        "style_recursive_sequential",
        "Sequential.backward by recursion, with a helper cell",
        {
            cell_id("Sequential"): "return _back_through(list(self.layers), grad_out)",
        },
        [
            (
                "start",
                """
        def _back_through(layers, g):
            if not layers:
                return g
            return _back_through(layers[:-1], layers[-1].backward(g))
    """,
            )
        ],
    ),
    style(
        "style_state_cells",
        "np.seterr, warnings filters, set_printoptions and a seed, each in a cell of its own",
        {},
        [
            ("start", 'np.seterr(divide="raise", invalid="raise", over="ignore")'),
            ("start", 'import warnings\nwarnings.filterwarnings("ignore")'),
            ("start", "np.set_printoptions(threshold=5, edgeitems=1)"),
            ("start", "np.random.seed(3)"),
        ],
    ),
]

ASSIGNMENT = Assignment("03_layers", "layers", dict(HONEST_WRONG))
ASSIGNMENT.entries = [
    *DELEGATION,
    *NUMERICAL,
    *STYLES,
    *common_attacks(
        HONEST_WRONG,
        which={
            "forge_results_before_cases",
            "forge_results_thread",
            "forge_huge_result",
            "sees_cases",
            "memory_children",
        },
    ),
]
# Graded together: each answers its own layers' cells (Linear, the activations and LinearSigmoid
# are separate classes), or only appends cells that read what the sandbox hides.
bundle(
    ASSIGNMENT.entries,
    "bundle_delegate_a",
    "delegate_linear_via_maxout",
    "delegate_activations_grad",
    "delegate_linear_sigmoid_via_linear",
)
bundle(ASSIGNMENT.entries, "bundle_delegate_b", "delegate_other_layers", "numdiff_linear_per_column")
bundle(
    ASSIGNMENT.entries,
    "bundle_styles",
    "style_noncontiguous_and_out",
    "style_recursive_sequential",
    "style_state_cells",
)
bundle(ASSIGNMENT.entries, "bundle_machine", "forge_results_before_cases", "sees_cases")

#: Entries that the grader of today loses to (strict xfails), by the part of issue 9 they wait for.
#: Classified against the working tree of 2026-12-01 ~17:00 UTC; an XPASS means: remove the entry here.
KNOWN_HOLES: dict[str, str] = {}
known_holes(ASSIGNMENT.entries, KNOWN_HOLES)
