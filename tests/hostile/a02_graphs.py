"""Hostile corpus of ``02_graphs``: gate backwards, the local backward of Value's operations,
the topological backward pass."""

from __future__ import annotations

from .catalogue import Hostile
from .corpus import Assignment, bundle, common_attacks, known_holes, on_wrong, style

#: The six regions of the Value cell: +, *, **, exp, tanh, sigmoid.
OPS_WRONG = [
    "self.grad += out.grad",  # other forgotten
    "self.grad += self.data * out.grad\nother.grad += other.data * out.grad",  # own value, not the other's
    "k = other.data\nself.grad += k * self.data**k * out.grad",  # exponent not lowered
    "self.grad += self.data * out.grad",  # x instead of e^x
    "self.grad += (1.0 - self.data**2) * out.grad",  # the input instead of the output
    "self.grad += out.data * out.grad",  # σ instead of σ(1 − σ)
]

HONEST_WRONG = {
    "graphs_MulGate_backward": "return [self.x * dz, self.y * dz]",  # switched the wrong way round
    "graphs_AddGate_backward": "return [dz / 2, dz / 2]",  # split instead of distributed
    "graphs_MaxGate_backward": "if self.x >= self.y:\n    return [0.0, dz]\nreturn [dz, 0.0]",  # to the loser
    "graphs_Value_ops": OPS_WRONG,
    "graphs_Value_backward": """
        order, seen = [], set()
        def build(v):
            if v not in seen:
                seen.add(v)
                for child in v._prev:
                    build(child)
                order.append(v)
        build(self)
        self.grad = 1.0
        for node in order:  # forwards, not reversed
            node._backward()
    """,
}

PERFECT_OPS = [
    "self.grad += out.grad\nother.grad += out.grad",
    "self.grad += other.data * out.grad\nother.grad += self.data * out.grad",
    "k = other.data\nself.grad += k * self.data ** (k - 1) * out.grad",
    "self.grad += out.data * out.grad",
    "self.grad += (1.0 - out.data**2) * out.grad",
    "self.grad += out.data * (1.0 - out.data) * out.grad",
]

_GATE_VIA_VALUE = """
x, y = course.graph.Value(float(self.x)), course.graph.Value(float(self.y))
z = {expr}
z.backward()
return [x.grad * dz, y.grad * dz]
"""

DELEGATION = [
    Hostile(
        "delegate_gates_via_value",
        "gate backwards from course.graph.Value (x*y, x+y, y + relu(x - y))",
        on_wrong(
            HONEST_WRONG,
            graphs_MulGate_backward=_GATE_VIA_VALUE.format(expr="x * y"),
            graphs_AddGate_backward=_GATE_VIA_VALUE.format(expr="x + y"),
            graphs_MaxGate_backward=_GATE_VIA_VALUE.format(expr="y + (x - y).relu()"),
        ),
    ),
    Hostile(
        "delegate_gates_super",
        "gate backwards by super()",
        on_wrong(
            HONEST_WRONG,
            **{f"graphs_{g}_backward": "return super().backward(dz)" for g in ("MulGate", "AddGate", "MaxGate")},
        ),
    ),
    Hostile(
        "delegate_ops_via_gates",
        "Value's local backwards from course.graph's gates",
        on_wrong(
            HONEST_WRONG,
            graphs_Value_ops=[
                "gx, gy = course.graph.AddGate().backward(out.grad)\nself.grad += gx\nother.grad += gy",
                "g = course.graph.MulGate()\ng.forward(self.data, other.data)\ngx, gy = g.backward(out.grad)\n"
                "self.grad += gx\nother.grad += gy",
                "k = other.data\nself.grad += k * self.data ** (k - 1) * out.grad",
                "g = course.graph.ExpGate()\ng.forward(self.data)\nself.grad += g.backward(out.grad)",
                "g = course.graph.SigmoidGate()\ng.forward(2.0 * self.data)\nself.grad += 4.0 * g.backward(out.grad)",
                "g = course.graph.SigmoidGate()\ng.forward(self.data)\nself.grad += g.backward(out.grad)",
            ],
        ),
    ),
    Hostile(
        "delegate_ops_via_reference_value",
        "each local backward from the same operation on course.graph.Value",
        on_wrong(
            HONEST_WRONG,
            graphs_Value_ops=[
                "_ref_local(self, other, out, lambda a, b: a + b)",
                "_ref_local(self, other, out, lambda a, b: a * b)",
                "_ref_local(self, other, out, lambda a, b: a ** b.data)",
                "_ref_local(self, None, out, lambda a, b: a.exp())",
                "_ref_local(self, None, out, lambda a, b: a.tanh())",
                "_ref_local(self, None, out, lambda a, b: a.sigmoid())",
            ],
        ),
        [
            (
                "start",
                """
                def _ref_local(node, other, out, op):
                    a = course.graph.Value(node.data)
                    b = course.graph.Value(other.data) if other is not None else None
                    z = op(a, b)
                    z.grad = out.grad
                    z._backward()
                    node.grad += a.grad
                    if other is not None and other is not node:
                        other.grad += b.grad
                    elif other is node:
                        node.grad += b.grad
            """,
            )
        ],
    ),
    Hostile(
        "delegate_backward_via_zero_grad_order",
        "Value.backward from the order zero_grad() walks",
        on_wrong(
            HONEST_WRONG,
            graphs_Value_backward="""
                order = []
                real = course.graph.Value.topological_order
                order = real(self)
                self.grad = 1.0
                for node in reversed(order):
                    node._backward()
            """,
        ),
    ),
    Hostile(
        "delegate_backward_super",
        "Value.backward by super() and by the reference's saved code",
        on_wrong(
            HONEST_WRONG,
            graphs_Value_backward="""
                try:
                    return super().backward()
                except Exception:
                    return _SAVED(self)
            """,
        ),
        [
            (
                "start",
                """
                import types
                _SAVED = types.FunctionType(course.graph.Value.backward.__code__, vars(course.graph))
            """,
            )
        ],
    ),
    Hostile(
        "delegate_backward_train_graph",
        "topological order from course.plot.draw_graph's own walk",
        on_wrong(
            HONEST_WRONG,
            graphs_Value_backward="""
                import course.plot as P
                walk = [getattr(P, n) for n in dir(P) if any(w in n.lower() for w in ("topo", "trace", "order"))]
                order = None
                for fn in walk:
                    try:
                        got = fn(self)
                    except Exception:
                        continue
                    if isinstance(got, (list, tuple)) and got and isinstance(got[0], course.graph.Value):
                        order = list(got)
                        break
                    if isinstance(got, tuple) and len(got) == 2:
                        nodes = got[0]
                        order = [n for n in nodes if isinstance(n, course.graph.Value)]
                        break
                if order is None:
                    raise NotImplementedError()
                self.grad = 1.0
                for node in reversed(order):
                    node._backward()
            """,
        ),
    ),
    Hostile(
        "delegate_reload_graph",
        "course.graph reloaded from source, its Value's code used",
        on_wrong(
            HONEST_WRONG,
            graphs_Value_backward="return _FRESH.Value.backward(self)",
            graphs_MulGate_backward="return _FRESH.MulGate.backward(self, dz)",
            graphs_AddGate_backward="return _FRESH.AddGate.backward(self, dz)",
            graphs_MaxGate_backward="return _FRESH.MaxGate.backward(self, dz)",
        ),
        [
            (
                "start",
                """
        import importlib.util
        _spec = importlib.util.spec_from_file_location("course.graph_fresh", course.graph.__file__)
        _FRESH = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_FRESH)
    """,
            )
        ],
    ),
]

STYLES = [
    style(
        "style_recursive_topo_sort",
        "a recursive topological sort, with sys.setrecursionlimit in a cell of its own",
        {
            "graphs_Value_backward": """
              order, seen = [], set()
              def visit(v):
                  if v not in seen:
                      seen.add(v)
                      for child in v._prev:
                          visit(child)
                      order.append(v)
              visit(self)
              for node in order:
                  if node._prev:
                      node.grad = 0.0
              self.grad = 1.0
              for node in reversed(order):
                  node._backward()
          """
        },
        [("start", "import sys\nsys.setrecursionlimit(100_000)")],
    ),
    style(
        "style_gates_tuples_and_numpy",
        "gates returning tuples and numpy 0-d arrays; ops via helpers",
        {
            "graphs_MulGate_backward": "return (np.float64(self.y) * dz, np.asarray(self.x * dz))",
            "graphs_AddGate_backward": "return (1.0 * dz, 1.0 * dz)",
            "graphs_MaxGate_backward": "x_wins = self.x >= self.y\nreturn [dz * x_wins, dz * (not x_wins)]",
            "graphs_Value_ops": [
                "for v in (self, other):\n    v.grad += out.grad",
                *PERFECT_OPS[1:4],
                "self.grad += _tanh_slope(out.data) * out.grad",
                PERFECT_OPS[5],
            ],
        },
        [("start", "def _tanh_slope(t):\n    return 1.0 - t * t")],
    ),
    style(
        "style_state_cells",
        "np.seterr, warnings filters, set_printoptions and a seed, each in a cell of its own",
        {},
        [
            ("start", 'np.seterr(divide="raise", invalid="raise")'),
            ("start", 'import warnings\nwarnings.simplefilter("error", DeprecationWarning)'),
            ("start", "np.set_printoptions(precision=3)"),
            ("start", "np.random.seed(7)"),
        ],
    ),
]

ASSIGNMENT = Assignment("02_graphs", "graphs", HONEST_WRONG)
ASSIGNMENT.entries = [
    *DELEGATION,
    *STYLES,
    *common_attacks(
        HONEST_WRONG, which={"forge_results_daemon", "sees_job", "read_repo", "read_environ", "sleeping_cell"}
    ),
]
# Graded together: the styles answer distinct cells; the rest only append cells that read what
# the sandbox hides. (Gates, Value's operators and backward depend on one another: not bundled.)
bundle(
    ASSIGNMENT.entries,
    "bundle_styles",
    "style_recursive_topo_sort",
    "style_gates_tuples_and_numpy",
    "style_state_cells",
)
bundle(ASSIGNMENT.entries, "bundle_machine", "sees_job", "read_repo", "read_environ")

#: Entries that the grader of today loses to (strict xfails), by the part of issue 9 they wait for.
#: Classified against the working tree of 2026-12-01 ~17:00 UTC; an XPASS means: remove the entry here.
KNOWN_HOLES: dict[str, str] = {}
known_holes(ASSIGNMENT.entries, KNOWN_HOLES)
