"""Exercises of the graphs assignment: the backward of the mul, add and max gates, the local
backward closures of ``Value``'s operations, and ``Value.backward`` (the topological sweep).

The ``Value`` exercises run on random expression graphs, described by plain data so that a
case can cross to the sandbox as JSON:

- ``arrays["leaves"]`` (L,): the values of the inputs, nodes ``0 .. L-1``;
- ``config["ops"]``: a list of operations; node ``L + k`` is ``ops[k]`` applied to earlier
  nodes, and the last node is the output. An operation is ``[name, i]`` (unary: neg, exp,
  tanh, sigmoid), ``[name, i, j]`` (add, sub, mul, div of nodes i and j, possibly i == j) or
  ``[name, i, c]`` with a number c (addc: x + c, radd: c + x, mulc: x * c, rmul: c * x,
  rsub: c - x, rdiv: c / x, pow: x ** c);
- ``config["check"]``: the leaves whose gradient is compared with centred differences (all of
  them in small graphs; in large ones a sample, chosen where the differences are reliable).

``run`` evaluates the description with the student's ``Value`` class and returns the output's
data and the leaves' grads; ``judge`` evaluates the same description on plain floats and
compares with its centred differences. Nodes are reused (a node feeds several operations,
sometimes both sides of one), so gradients must add at branches.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import math
import operator
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import graph as G
from ..gradcheck import Mistake, compare, numerical_gradient, relative_error
from .exercise import Exercise, judge_rng
from .known_bugs import recognise
from .records import Case, KnownBug, Verdict
from .registry import register

__all__ = ["GateExercise", "GraphExercise", "apply", "evaluate", "lanes_graph", "random_graph"]

# ----------------------------------------------------------------------------------------
# Random expression graphs
# ----------------------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _sigmoid_array(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


# name -> (on floats, on arrays of floats, on Values), and the Value methods the operation goes through
UNARY: dict[str, tuple[tuple[Callable, Callable, Callable], tuple[str, ...]]] = {
    "neg": ((operator.neg, operator.neg, operator.neg), ("__mul__",)),
    "exp": ((math.exp, np.exp, lambda a: a.exp()), ("exp",)),
    "tanh": ((math.tanh, np.tanh, lambda a: a.tanh()), ("tanh",)),
    "sigmoid": ((_sigmoid, _sigmoid_array, lambda a: a.sigmoid()), ("sigmoid",)),
}
# name -> (on floats, arrays and Values alike, the Value methods the operation goes through)
BINARY: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "add": (lambda a, b: a + b, ("__add__",)),
    "sub": (lambda a, b: a - b, ("__add__", "__mul__")),
    "mul": (lambda a, b: a * b, ("__mul__",)),
    "div": (lambda a, b: a / b, ("__mul__", "__pow__")),
}
WITH_CONSTANT: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "addc": (lambda a, c: a + c, ("__add__",)),
    "radd": (lambda a, c: c + a, ("__add__",)),
    "mulc": (lambda a, c: a * c, ("__mul__",)),
    "rmul": (lambda a, c: c * a, ("__mul__",)),
    "rsub": (lambda a, c: c - a, ("__add__", "__mul__")),
    "rdiv": (lambda a, c: c / a, ("__mul__", "__pow__")),
    "pow": (lambda a, c: a**c, ("__pow__",)),
}
ALL_OPS = [*UNARY, *BINARY, *WITH_CONSTANT]
#: The operations whose local backward is the student's, in the order of the "overridden" report.
PRIMITIVES = ("__add__", "__mul__", "__pow__", "exp", "tanh", "sigmoid")
EXPONENTS = (2.0, 3.0, -1.0, -2.0, 0.5, 1.5)
_KINDS = {"float": 0, "array": 1, "value": 2}


def apply(op: list, nodes: list[Any], kind: str = "float") -> Any:
    """The result of one operation ``[name, i, ...]`` on the nodes computed so far, which are
    floats, arrays of floats (a batch of evaluations) or Values (``kind``)."""
    name, i, *rest = op
    a = nodes[i]
    if name in UNARY:
        return UNARY[name][0][_KINDS[kind]](a)
    if name in BINARY:
        return BINARY[name][0](a, nodes[rest[0]])
    return WITH_CONSTANT[name][0](a, float(rest[0]))


def evaluate(ops: list[list], leaves: Any, make: Callable[[float], Any] | None = None) -> list[Any]:
    """Every node of the graph ``ops`` over ``leaves``, as Values made by ``make`` or as floats."""
    kind = "float" if make is None else "value"
    nodes: list[Any] = [float(v) if make is None else make(float(v)) for v in leaves]
    for op in ops:
        nodes.append(apply(op, nodes, kind))
    return nodes


def evaluate_batch(ops: list[list], leaves: np.ndarray) -> np.ndarray:
    """The output for each row of ``leaves`` (B, L): one pass over the graph for B evaluations."""
    nodes: list[Any] = list(np.asarray(leaves, dtype=np.float64).T)
    for op in ops:
        nodes.append(apply(op, nodes, "array"))
    return nodes[-1]


def centred_differences(
    ops: list[list], leaves: np.ndarray, check: list[int], h: float = 1e-5
) -> tuple[float, np.ndarray]:
    """The output at ``leaves`` (L,) and (f(x + h e_k) − f(x − h e_k)) / 2h for each leaf k in
    ``check`` (NaN for the others), all from one batched evaluation."""
    k = np.asarray(check, dtype=int)
    batch = np.tile(leaves, (1 + 2 * len(k), 1))
    rows = np.arange(len(k))
    batch[1 + 2 * rows, k] += h
    batch[2 + 2 * rows, k] -= h
    out = evaluate_batch(ops, batch)
    numeric = np.full(len(leaves), np.nan)
    numeric[k] = (out[1::2] - out[2::2]) / (2.0 * h)
    return float(out[0]), numeric


def primitives_used(ops: list[list]) -> set[str]:
    """The Value methods that evaluating ``ops`` goes through."""
    used: set[str] = set()
    for name, *_ in ops:
        used.update({**UNARY, **BINARY, **WITH_CONSTANT}[name][1])
    return used


def _draw_op(rng: np.random.Generator, name: str, i: int, j: int, values: list[float]) -> list | None:
    """The operation ``name`` on nodes i (and j), or None where it would be ill-conditioned."""
    a, b = values[i], values[j]
    if name in UNARY:
        op: list = [name, i]
        if name == "exp" and a > 2.0:
            return None
    elif name in BINARY:
        op = [name, i, j]
        if name == "div" and abs(b) < 0.5:
            return None
    elif name == "pow":
        c = float(EXPONENTS[rng.integers(len(EXPONENTS))])
        if abs(a) < 0.5 or (c != int(c) and a <= 0):  # a fractional power needs a positive base
            return None
        op = [name, i, c]
    else:
        c = round(float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)), 2)
        if name == "rdiv" and abs(a) < 0.5:
            return None
        op = [name, i, c]
    value = apply(op, values)
    return op if math.isfinite(value) and abs(value) < 10.0 else None


def random_graph(
    rng: np.random.Generator,
    n_leaves: int,
    n_ops: int,
    names: list[str] = ALL_OPS,
    *,
    chain: bool = False,
    close: str = "add",
    same_first: bool = False,
) -> tuple[np.ndarray, list[list]]:
    """Leaves and a random description over them.

    Arguments are drawn mostly from nodes not yet used (so that everything reaches the
    output), otherwise from any node (so that nodes are shared); with ``chain`` every
    operation takes the previous node. Nodes left unused at the end are combined with
    ``close`` in a balanced tree into one output. ``same_first`` makes the first operation
    take node 0 on both sides (x + x, x * x).
    """
    leaves = rng.choice([-1.0, 1.0], n_leaves) * rng.uniform(0.5, 1.5, n_leaves)
    ops: list[list]
    values, ops = [float(v) for v in leaves], []
    unused = list(range(n_leaves))  # nodes no operation takes yet, with their positions in this list
    where = {k: k for k in unused}

    def use(k: int) -> None:
        if k in where:  # swap-remove in O(1): large graphs have thousands of nodes
            last = unused.pop()
            if last != k:
                unused[where[k]] = last
                where[last] = where[k]
            del where[k]

    def pick() -> int:
        if chain:
            return len(values) - 1
        if unused and rng.random() < 0.6:
            return unused[rng.integers(len(unused))]
        if rng.random() < 0.5:  # a recent node: chains of operations grow deeper
            return int(rng.integers(max(0, len(values) - 3), len(values)))
        return int(rng.integers(len(values)))

    for _attempt in range(100 * n_ops):
        if len(ops) == n_ops:
            break
        name = names[rng.integers(len(names))]
        i, j = (0, 0) if same_first and not ops else (pick(), pick())
        op = _draw_op(rng, name, i, j, values)
        if op is None:
            if chain and ops and rng.random() < 0.2:
                break  # a chain that cannot go on stops short
            continue
        ops.append(op)
        for k in op[1 : 3 if name in BINARY else 2]:
            use(k)
        values.append(apply(op, values))
        where[len(values) - 1] = len(unused)
        unused.append(len(values) - 1)
    dangling = sorted(unused)
    while len(dangling) > 1:
        pairs, dangling = dangling, []
        for a, b in zip(pairs[::2], pairs[1::2], strict=False):
            ops.append([close, a, b])
            values.append(apply(ops[-1], values))
            dangling.append(len(values) - 1)
        if len(pairs) % 2:
            dangling.append(pairs[-1])
    return leaves, ops


def lanes_graph(rng: np.random.Generator, n_leaves: int, width: int, depth: int) -> tuple[np.ndarray, list[list]]:
    """A wide and deep graph: ``width`` running sums, each ``depth`` steps long.

    At each step a lane adds or subtracts (whichever brings it closer to 0) a squashed copy of
    a leaf or of an earlier node of any lane, so that nodes are shared across lanes while
    every value stays small and the gradient along each lane stays 1 (nothing vanishes or
    overflows). The lanes' ends are added into one output.
    """
    leaves = rng.choice([-1.0, 1.0], n_leaves) * rng.uniform(0.5, 1.5, n_leaves)
    ops: list[list]
    values, ops = [float(v) for v in leaves], []
    heads = [int(k) for k in rng.integers(0, n_leaves, width)]
    steps = depth * width  # every random choice drawn at once: large graphs have thousands of steps
    from_leaf, where, squash = rng.random(steps), rng.random(steps), rng.random(steps)
    leaf = rng.integers(0, n_leaves, steps)
    for t in range(steps):
        lane = t % width
        if from_leaf[t] < 0.5:
            op = ["tanh" if squash[t] < 0.5 else "sigmoid", int(leaf[t])]
        else:  # sigmoid's slope (at most 1/4) keeps paths through shared nodes from compounding
            op = ["sigmoid", int(where[t] * len(values))]
        ops.append(op)
        values.append(apply(op, values))
        closer = "sub" if (values[heads[lane]] > 0) == (values[-1] > 0) else "add"
        ops.append([closer, heads[lane], len(values) - 1])
        values.append(apply(ops[-1], values))
        heads[lane] = len(values) - 1
    while len(heads) > 1:
        pairs, heads = heads, []
        for a, b in zip(pairs[::2], pairs[1::2], strict=False):
            ops.append(["add", a, b])
            values.append(apply(ops[-1], values))
            heads.append(len(values) - 1)
        if len(pairs) % 2:
            heads.append(pairs[-1])
    return leaves, ops


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Building a graph makes a reference cycle per node (a closure and its output): collecting
    them midway would triple the time a large case takes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _all_nodes(root: G.Value) -> list[G.Value]:
    """Every node ``root`` depends on (an iterative search, independent of the library's)."""
    seen, stack, nodes = {id(root)}, [root], []
    while stack:
        node = stack.pop()
        nodes.append(node)
        for child in node._prev:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return nodes


def _release(root: G.Value) -> None:
    """Break the graph's reference cycles (each node's closure refers to the node), so that it
    is freed at once instead of by a slow garbage collection later."""
    for node in _all_nodes(root):
        node._backward = None  # type: ignore[assignment]  # the graph is done with: no backward left
        node._prev = ()


def _reference_grads(ops: list[list], leaves: np.ndarray) -> np.ndarray:
    with _no_gc():
        nodes = evaluate(ops, leaves, make=G.Value)
        nodes[-1].backward()
        grads = np.array([leaf.grad for leaf in nodes[: len(leaves)]])
        _release(nodes[-1])
    return grads


def _reliable_leaves(
    ops: list[list], leaves: np.ndarray, candidates: list[int], want: int, tol: float = 1e-8
) -> list[int]:
    """Up to ``want`` of ``candidates`` where centred differences agree with the exact gradient
    (the library's backprop) within ``tol``, ten times inside the pass threshold: there a
    correct gradient cannot fail by round-off or truncation error."""
    candidates = list(candidates)
    exact = _reference_grads(ops, leaves)
    _, numeric = centred_differences(ops, leaves, candidates)
    good = [k for k in candidates if relative_error(numeric[k], exact[k]) < tol]
    return good[:want]


def graph_case(label: str, leaves: np.ndarray, ops: list[list], check: list[int]) -> Case:
    config = {"label": label, "n_leaves": len(leaves), "ops": ops, "check": check}
    return Case(label, {"leaves": np.asarray(leaves, dtype=np.float64)}, config)


def small_case(
    rng: np.random.Generator, label: str, n_leaves: int, n_ops: int, names: list[str] = ALL_OPS, **kwargs: Any
) -> Case:
    """A random graph whose every leaf has a reliable numerical gradient (redrawn until so)."""
    for _attempt in range(200):
        leaves, ops = random_graph(rng, n_leaves, n_ops, names, **kwargs)
        everyone = list(range(n_leaves))
        if len(_reliable_leaves(ops, leaves, everyone, n_leaves)) == n_leaves:
            return graph_case(label, leaves, ops, everyone)
    raise RuntimeError(f"could not draw a well-conditioned graph for {label!r}")


def large_case(
    rng: np.random.Generator,
    draw: Callable[[], tuple[np.ndarray, list[list]]],
    describe: Callable[[np.ndarray, list[list]], str],
    sample: int,
) -> Case:
    """A large graph from ``draw()``, checked on up to ``sample`` leaves where centred
    differences are reliable (redrawn if fewer than half of them are)."""
    for _attempt in range(20):
        leaves, ops = draw()
        candidates = [int(k) for k in rng.permutation(len(leaves))[: 3 * sample]]
        check = _reliable_leaves(ops, leaves, candidates, sample)
        if len(check) >= max(1, min(sample, len(leaves)) // 2):
            return graph_case(describe(leaves, ops), leaves, ops, sorted(check))
    raise RuntimeError("could not draw a large graph with reliable numerical gradients")


def depth_of(ops: list[list], n_leaves: int) -> int:
    """The number of operations on the longest path from a leaf to the output."""
    depth = [0] * n_leaves
    for name, i, *rest in ops:
        args = [i, rest[0]] if name in BINARY else [i]
        depth.append(1 + max(depth[k] for k in args))
    return depth[-1]


# ----------------------------------------------------------------------------------------
# Exercises on graphs
# ----------------------------------------------------------------------------------------


class GraphExercise(Exercise):
    """Check a ``Value`` class on random expression graphs: the output's data, and the leaves'
    grads after the backward pass against centred differences of the graph on floats.

    ``graded`` is ``"ops"`` (the student's operations build the graph; the library's
    topological sweep runs the backward pass) or ``"backward"`` (the library's operations
    build the graph; the student's ``backward()`` runs it). ``settings(rng, hidden)`` returns
    the cases.
    """

    def __init__(
        self, name: str, title: str, graded: str, settings: Callable[[np.random.Generator, bool], list[Case]]
    ) -> None:
        if graded == "ops":
            traps = [(G.Value, op) for op in PRIMITIVES]
        elif graded == "backward":
            traps = [(G.Value, "backward"), (G.Value, "topological_order")]
        else:
            raise ValueError(f"graded must be 'ops' or 'backward', got {graded!r}")
        super().__init__(name, title, traps)
        self.graded, self.settings = graded, settings
        # run() builds the graph with one half from the library: ops checks sweep it with the
        # library's topological order; backward checks build it with the library's operations.
        self.needs = [(G.Value, "topological_order")] if graded == "ops" else [(G.Value, op) for op in PRIMITIVES]

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        cases = self.settings(rng, hidden)
        for case in cases:
            case.label = ("a hidden case: " if hidden else "") + case.label
        return cases

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        ops, leaves = case.config["ops"], case.arrays["leaves"]
        with _no_gc():
            if self.graded == "ops":
                nodes = evaluate(ops, leaves, make=student)
                out = nodes[-1]
                order = G.Value.topological_order(out)  # the library's sweep: only the operations are graded
                out.grad = 1.0
                for node in reversed(order):
                    node._backward()
                overridden = [float(getattr(student, op, None) is not getattr(G.Value, op)) for op in PRIMITIVES]
                extra = {"overridden": overridden}
            else:
                nodes = evaluate(ops, leaves, make=G.Value)  # the library's operations build the graph ...
                out = nodes[-1]
                for node in _all_nodes(out):
                    node.__class__ = student  # ... and every node gets the student's backward()
                watcher = sys.getprofile()
                try:
                    out.backward()
                except RecursionError:
                    # Python drops a profile hook that overflows the stack: put back the one that
                    # watches for delegation, so the student is told about the recursion only.
                    if sys.getprofile() is None and watcher is not None:
                        sys.setprofile(watcher)
                    raise RecursionError(
                        f"maximum recursion depth exceeded on a graph {depth_of(ops, len(leaves))} operations deep: "
                        "use an explicit stack, or raise the limit first with sys.setrecursionlimit(10_000)"
                    ) from None
                extra = {}
            outputs = {"value": out.data, "grads": [leaf.grad for leaf in nodes[: len(leaves)]], **extra}
            _release(out)
        return outputs

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        ops, check = case.config["ops"], case.config["check"]
        if self.graded == "ops":
            overridden = self.expect_array(v, outputs, "overridden", (len(PRIMITIVES),), "the list of your methods")
            if overridden is not None:
                missing = [op for op, own in zip(PRIMITIVES, overridden, strict=True) if not own]
                for op in sorted(primitives_used(ops) & set(missing)):
                    v.problems.append(f"your Value class does not define {op} (the library's was used): write it")
        expected, numeric = centred_differences(ops, case.arrays["leaves"], check)
        value = self.expect_array(v, outputs, "value", (), "the output's data")
        self.compare_values(v, "the output's data", value, expected)
        grads = self.expect_array(v, outputs, "grads", (case.config["n_leaves"],), "the leaves' grads")
        if grads is not None:
            name = "d(output)/d(leaves)" + ("" if len(check) == len(grads) else f" ({len(check)} leaves sampled)")
            c = compare(name, grads, numeric, indices=[(k,) for k in check])
            if self.graded == "backward" and c.mistake == Mistake.ALL_ZEROS:
                c.hint = (
                    "the leaves' grads are all zeros, so no gradient reached them: the sweep starts by setting "
                    "the output's grad to 1, then runs each node's backward after that of every node using it "
                    "(reverse topological order), so that the gradient flows from the output down to the leaves"
                )
            v.checks.append(c)
        return v


def _ops_settings(rng: np.random.Generator, hidden: bool) -> list[Case]:
    """Visible: one small graph per operation (so a failure names the operation), then all
    of them mixed. Hidden: mixed graphs of random sizes and a large one."""
    if not hidden:
        return [
            small_case(rng, "a graph of + only (with x + x)", 3, 6, ["add"], same_first=True),
            small_case(rng, "a graph of * only (with x * x)", 3, 5, ["mul"], close="mul", same_first=True),
            small_case(rng, "a chain of ** with constant exponents", 1, 4, ["pow"], chain=True),
            small_case(rng, "a chain of exp", 1, 3, ["exp"], chain=True),
            small_case(rng, "a chain of tanh", 1, 3, ["tanh"], chain=True),
            small_case(rng, "a chain of sigmoid", 1, 3, ["sigmoid"], chain=True),
            small_case(rng, "a graph of every operation (-, /, and numbers on either side too)", 4, 24),
        ]
    cases = []
    for _ in range(3):
        n_leaves, n_ops = int(rng.integers(1, 7)), int(rng.integers(5, 41))
        cases.append(small_case(rng, f"a random graph of {n_ops} operations on {n_leaves} leaves", n_leaves, n_ops))
    cases.append(
        large_case(
            rng,
            lambda: random_graph(rng, 100, 3000),
            lambda leaves, ops: f"a large random graph ({len(ops)} operations on {len(leaves)} leaves)",
            20,
        )
    )
    return cases


def _lecture_case() -> Case:
    """The lecture's c = a + b, d = b + 1, e = c · d at a = 2, b = 1."""
    return graph_case(
        "the lecture's e = (a + b)(b + 1) at a = 2, b = 1",
        np.array([2.0, 1.0]),
        [["add", 0, 1], ["addc", 1, 1.0], ["mul", 2, 3]],
        [0, 1],
    )


def _backward_settings(rng: np.random.Generator, hidden: bool) -> list[Case]:
    """Visible: the lecture's graph, a random graph with shared nodes, and a chain deeper than
    Python's default recursion limit. Hidden: random graphs and a large, wide and deep graph."""
    if not hidden:
        deep = large_case(
            rng,
            lambda: lanes_graph(rng, 4, 1, 1200),
            lambda leaves, ops: f"a chain {depth_of(ops, len(leaves))} operations deep",
            4,
        )
        return [_lecture_case(), small_case(rng, "a random graph with shared nodes", 4, 24), deep]
    cases = []
    for _ in range(2):
        n_leaves, n_ops = int(rng.integers(1, 7)), int(rng.integers(5, 41))
        cases.append(small_case(rng, f"a random graph of {n_ops} operations on {n_leaves} leaves", n_leaves, n_ops))
    cases.append(
        large_case(
            rng,
            lambda: lanes_graph(rng, 60, 4, 1500),
            lambda leaves, ops: f"a large graph ({len(ops)} operations, {depth_of(ops, len(leaves))} deep)",
            6,
        )
    )
    return cases


# ----------------------------------------------------------------------------------------
# Gates
# ----------------------------------------------------------------------------------------


class GateExercise(Exercise):
    """Check a two-input gate's ``backward(dz) -> [dx, dy]`` on random scalars.

    Each case is K independent gates: ``forward(x[k], y[k])`` then ``backward(dz[k])``; dx and
    dy are compared with centred differences of the reference gate's forward. ``gap`` keeps
    |x − y| away from 0 (the max gate's kink). A wrong dx or dy is compared with what the
    gates' classic mistakes give (``known``), to name the mistake.
    """

    def __init__(
        self, name: str, title: str, reference: type, gap: float = 0.0, known: tuple[str, ...] = ("upstream",)
    ) -> None:
        super().__init__(name, title, [(reference, "backward")])
        self.reference, self.gap = reference, gap
        #: Which of the gate-specific mistakes to look for ("upstream", "routing");
        #: swapped inputs are looked for in every gate.
        self.known = known

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        if not hidden:
            settings = [(5, 1.0, "5 gates on random inputs")]
        else:
            k = int(rng.integers(1, 21))
            settings = [
                (k, float(rng.uniform(0.1, 10.0)), f"{k} gates on random inputs"),
                (1, 1.0, "one gate"),
                (50_000, 1.0, "50,000 gates"),
            ]
        cases = []
        for k, scale, label in settings:
            x, y, dz = (rng.standard_normal(k) * scale for _ in range(3))
            close = np.abs(x - y) < self.gap
            while np.any(close):
                y[close] = rng.standard_normal(int(close.sum())) * scale
                close = np.abs(x - y) < self.gap
            config = {"max_entries": 60} if k > 60 else {}
            cases.append(Case(("a hidden case: " if hidden else "") + label, {"x": x, "y": y, "dz": dz}, config))
        return cases

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        out, dx, dy = [], [], []
        for x, y, dz in zip(*(case.arrays[k].tolist() for k in ("x", "y", "dz")), strict=True):
            gate = student()
            out.append(gate.forward(x, y))
            grads = gate.backward(dz)
            try:
                grad_x, grad_y = grads
            except (TypeError, ValueError):
                raise TypeError(f"backward(dz) must return a list [dx, dy], got {grads!r}") from None
            dx.append(grad_x)
            dy.append(grad_y)
        return {"out": out, "dx": dx, "dy": dy}

    def judge(self, case: Case, outputs: dict) -> Verdict:
        v = self.verdict(case)
        x, y, dz = (case.arrays[k] for k in ("x", "y", "dz"))
        n = len(x)
        out = self.expect_array(v, outputs, "out", (n,), "the forward outputs")
        expected = [self.reference().forward(float(a), float(b)) for a, b in zip(x, y, strict=True)]
        self.compare_values(v, "the forward outputs", out, expected)
        entries = range(n)
        if case.config.get("max_entries") and n > case.config["max_entries"]:
            entries = np.sort(judge_rng().choice(n, case.config["max_entries"], replace=False))
        for wrt, key, what in [(0, "dx", "dx (= dz · ∂z/∂x)"), (1, "dy", "dy (= dz · ∂z/∂y)")]:
            got = self.expect_array(v, outputs, key, (n,), f"the {key} that backward returns")
            if got is None:
                continue
            numeric = np.full(n, np.nan)
            for k in entries:
                gate, point = self.reference(), np.array([x[k], y[k]])
                f = lambda p, gate=gate: gate.forward(float(p[0]), float(p[1]))  # noqa: E731
                numeric[k] = numerical_gradient(f, point, np.array(dz[k]), indices=[(wrt,)])[wrt]
            v.checks.append(compare(what, got, numeric, indices=[(int(k),) for k in entries]))
        self._recognise(v, case)
        return v

    def _recognise(self, v: Verdict, case: Case) -> None:
        """Name the gates' classic mistakes, by comparing a wrong dx or dy with what each mistake gives."""
        right = {c.name.split()[0]: c.numeric for c in v.checks if c.name.split()[0] in ("dx", "dy")}
        if len(right) < 2:
            return
        dz = case.arrays["dz"]
        failed = {c.name.split()[0] for c in v.checks if not c.passed}
        for c in v.checks:
            key = c.name.split()[0]
            if key not in right or c.passed:
                continue
            other = "dy" if key == "dx" else "dx"
            candidates: list[tuple[str, str, Any]] = []
            if other in failed:  # an exchange makes both wrong (a right dx and a dy of dz is not one)
                candidates.append(
                    (Mistake.SWAPPED, "dx and dy are exchanged: each input got the other one's gradient", right[other])
                )
            if "upstream" in self.known:
                local = np.asarray(right[key]) / np.where(dz == 0, 1.0, dz)
                candidates.append(
                    (
                        "local derivative not times dz",
                        "multiply the local derivative by the upstream gradient dz (the chain rule): dx = dz · ∂z/∂x",
                        local,
                    )
                )
            if "routing" in self.known:
                candidates.append(
                    (
                        "dz to both inputs",
                        "a max gate routes dz to the larger input only (the other "
                        "gets 0); it does not distribute it like an add gate",
                        dz,
                    )
                )
            recognise(c, candidates)


register(GateExercise("graphs.MulGate.backward", "MulGate.backward", G.MulGate, known=("upstream",)))
register(GateExercise("graphs.AddGate.backward", "AddGate.backward", G.AddGate))
register(GateExercise("graphs.MaxGate.backward", "MaxGate.backward", G.MaxGate, gap=1e-3, known=("routing",)))
_ops = register(GraphExercise("graphs.Value.ops", "Value's local backward closures", "ops", _ops_settings))
_backward = register(GraphExercise("graphs.Value.backward", "Value.backward", "backward", _backward_settings))

# ----------------------------------------------------------------------------------------
# Known mistakes, recognised by running them (base.KnownBug)
# ----------------------------------------------------------------------------------------

#: A wrong local backward: (the node's first input, its second or None, the node) -> the closure.
LocalBackward = Callable[[G.Value, G.Value | None, G.Value], Callable[[], None]]


def _value_with(op: str, local: LocalBackward) -> type:
    """A Value class whose operations are the library's except ``op``'s local backward, which is
    ``local``; every node it makes, constants included, is of the class (as a student's are)."""

    class WrongValue(G.Value):
        @staticmethod
        def _lift(other: Any) -> G.Value:
            return other if isinstance(other, G.Value) else WrongValue(other)

    def method(name: str) -> Callable:
        def apply_op(self: G.Value, *other: Any) -> G.Value:
            lifted = self._lift(other[0]) if other else None
            out = getattr(G.Value, name)(self, *([lifted] if other else []))
            out.__class__ = WrongValue
            if name == op:
                out._backward = local(self, lifted, out)
            return out

        return apply_op

    for name in PRIMITIVES:
        setattr(WrongValue, name, method(name))
    return WrongValue


def _add_overwrites(a: G.Value, b: G.Value | None, out: G.Value) -> Callable[[], None]:
    assert b is not None  # a binary operation

    def backward() -> None:
        a.grad = out.grad
        b.grad = out.grad

    return backward


def _mul_without_upstream(a: G.Value, b: G.Value | None, out: G.Value) -> Callable[[], None]:
    assert b is not None  # a binary operation

    def backward() -> None:
        a.grad += b.data
        b.grad += a.data

    return backward


def _pow_without_minus_one(a: G.Value, b: G.Value | None, out: G.Value) -> Callable[[], None]:
    assert b is not None  # a binary operation

    def backward() -> None:
        a.grad += b.data * a.data**b.data * out.grad

    return backward


def _tanh_without_square(a: G.Value, b: G.Value | None, out: G.Value) -> Callable[[], None]:
    def backward() -> None:
        a.grad += (1.0 - out.data) * out.grad

    return backward


def _sigmoid_without_one_minus(a: G.Value, b: G.Value | None, out: G.Value) -> Callable[[], None]:
    def backward() -> None:
        a.grad += out.data * out.grad

    return backward


_ops.known_bug_ignores = ("overridden",)  # bookkeeping: which methods the class defines
_ops.known_bugs = (
    KnownBug(
        "+ overwrites .grad",
        "a node used twice (x + x, or x in two operations) keeps only its last gradient: __add__'s backward "
        "assigns (=) into the inputs' .grad, where it must add (+=), since gradients add at branches",
        _value_with("__add__", _add_overwrites),
    ),
    KnownBug(
        "* not times out.grad",
        "__mul__'s backward adds the local derivative (the other input's value) without multiplying it by "
        "out.grad, the gradient arriving from above: the chain rule multiplies the two",
        _value_with("__mul__", _mul_without_upstream),
    ),
    KnownBug(
        "xᵏ instead of xᵏ⁻¹",
        "__pow__'s backward uses k·xᵏ: the derivative of xᵏ is k·xᵏ⁻¹, the exponent goes down by one",
        _value_with("__pow__", _pow_without_minus_one),
    ),
    KnownBug(
        "1 − t instead of 1 − t²",
        "tanh's backward uses 1 − t, with t = tanh(x) the output: the derivative of tanh is 1 − t²",
        _value_with("tanh", _tanh_without_square),
    ),
    KnownBug(
        "σ instead of σ(1 − σ)",
        "sigmoid's backward uses s = σ(x) alone: the derivative of the sigmoid is s (1 − s)",
        _value_with("sigmoid", _sigmoid_without_one_minus),
    ),
)


class _BreadthFirstBackward(G.Value):
    def backward(self) -> None:
        order: list[G.Value] = []
        queue: collections.deque[G.Value] = collections.deque([self])
        seen = {id(self)}
        while queue:
            node = queue.popleft()
            order.append(node)
            for child in node._prev:
                if id(child) not in seen:
                    seen.add(id(child))
                    queue.append(child)
        self.grad = 1.0
        for node in order:
            node._backward()


_backward.known_bugs = (
    KnownBug(
        "breadth-first, not topological",
        "your sweep visits the nodes level by level from the output (breadth first), so a node that feeds "
        "several others can pass its gradient on before all of them have added theirs: each node's backward "
        "must run after that of every node using it (reverse topological order)",
        _BreadthFirstBackward,
    ),
)
