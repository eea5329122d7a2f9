"""Which of a notebook's cells does a checking run need?

A checking run (:mod:`autograder.inside.checker`) needs the notebook's definitions, not its
experiments: a cell that trains a network for a plot costs CPU and defines nothing a check
calls. :func:`needed_cells` reads the cells' source (never runs it) and keeps

* every answer cell (nbgrader solution cell), and every cell it cannot read (a syntax error)
  or whose effect it cannot tell from the source (``exec``, ``globals()``, ``setattr`` on an
  unknown object, a star import, shell commands and magics other than ``%matplotlib``);
* every cell that binds, or assigns into (``obj.attr = ...``, ``obj[k] = ...``), a name the
  checks or the kept cells use, and every cell that so much as reads a name the checks or the
  answer cells use that some cell binds by assignment (a method call may change that value
  in place: ``rng.normal()``, ``history.append(...)``);

until nothing more is needed. Cells that set the interpreter's state (``sys.setrecursionlimit``,
numpy's error and print settings, warnings filters, seeds: :data:`STATE_CALLS`) are kept too:
a correct answer may depend on them without naming anything they bind. The kept cells run in
their order. Skipping a cell is never
a way to earn points: the checks see the outcome of a part of the student's own code, which
the student could have submitted alone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["needed_cells"]

#: The nodes that open a scope of their own.
_ScopeNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda

#: Names whose use means a cell's effect cannot be read from its source.
DYNAMIC = frozenset(
    {
        "exec",
        "eval",
        "globals",
        "locals",
        "vars",
        "__import__",
        "get_ipython",
        "__builtins__",
        "importlib",
        "setattr",
        "delattr",
        "compile",
        "runpy",
    }
)


#: Calls that change the interpreter's state for what follows (by their last name: ``sys.``,
#: ``np.``, ``np.random.``, ``warnings.``, ``random.``, ``decimal.``, or imported bare).
STATE_CALLS = frozenset(
    {
        "setrecursionlimit",
        "setswitchinterval",
        "set_int_max_str_digits",
        "seterr",
        "seterrcall",
        "set_printoptions",
        "filterwarnings",
        "simplefilter",
        "resetwarnings",
        "seed",
        "setcontext",
        "setlocale",
    }
)


@dataclass
class _Cell:
    binds: set[str] = field(default_factory=set)  # names the cell (re)binds at the top level
    stable: set[str] = field(default_factory=set)  # ... by import, def or class only
    mutates: set[str] = field(default_factory=set)  # names whose attributes or items it assigns
    uses: set[str] = field(default_factory=set)  # every name it reads, in functions too
    opaque: bool = False  # its effect cannot be told from the source
    state: bool = False  # it sets the interpreter's state (STATE_CALLS)


def _python(source: str) -> str | None:
    """The cell as plain Python (IPython's own transformations: magics, ``!`` lines), or None."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - a cell we cannot read is kept
        return None


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _local_names(node: _ScopeNode) -> set[str]:
    """The names a function (or class body) binds locally: parameters and names it assigns,
    not those it declares global or nonlocal, nor those of scopes nested in it."""
    names: set[str] = set()
    declared: set[str] = set()
    args = getattr(node, "args", None)
    if isinstance(args, ast.arguments):
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                names.add(arg.arg)
    body = node.body if isinstance(node.body, list) else [node.body]
    todo = list(body)
    while todo:
        child = todo.pop()
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(child.name)
            todo.extend(getattr(child, "decorator_list", []))
            continue
        if isinstance(child, ast.Lambda):
            continue
        if isinstance(child, ast.Global | ast.Nonlocal):
            declared.update(child.names)
        elif isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
            names.add(child.id)
        elif isinstance(child, ast.alias):
            names.add(child.asname or child.name.split(".")[0])
        todo.extend(ast.iter_child_nodes(child))
    return names - declared


class _Reader(ast.NodeVisitor):
    def __init__(self, cell: _Cell) -> None:
        self.cell = cell
        self.scopes: list[set[str]] = []  # the local names of the functions we are in

    def _local(self, name: str) -> bool:
        return any(name in scope for scope in self.scopes)

    def _bind(self, name: str, stable: bool) -> None:
        if not self.scopes:
            self.cell.binds.add(name)
            if stable:
                self.cell.stable.add(name)

    def _scope(self, node: _ScopeNode, name: str | None) -> None:
        if name is not None:
            self._bind(name, stable=True)
        for decorator in getattr(node, "decorator_list", []):
            self.visit(decorator)
        for base in [*getattr(node, "bases", []), *getattr(node, "keywords", [])]:
            self.visit(base)
        args = getattr(node, "args", None)
        if isinstance(args, ast.arguments):
            for default in [*args.defaults, *args.kw_defaults]:
                if default is not None:
                    self.visit(default)
        self.scopes.append(_local_names(node))
        for stmt in node.body if isinstance(node.body, list) else [node.body]:
            self.visit(stmt)
        self.scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._scope(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scope(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node, None)

    def visit_Global(self, node: ast.Global) -> None:
        self.cell.binds.update(node.names)  # a function that assigns a global binds it when called

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._bind(alias.asname or alias.name.split(".")[0], stable=True)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.cell.opaque = True
            else:
                self._bind(alias.asname or alias.name, stable=True)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in DYNAMIC:
            self.cell.opaque = True
        if isinstance(node.ctx, ast.Load):
            if not self._local(node.id):
                self.cell.uses.add(node.id)
        else:
            self._bind(node.id, stable=False)

    def _targets(self, targets: Iterable[ast.AST]) -> None:
        for target in targets:
            if isinstance(target, ast.Tuple | ast.List):
                self._targets(target.elts)
            elif isinstance(target, ast.Attribute | ast.Subscript | ast.Starred):
                name = _base_name(target)
                if name is not None and not self._local(name):
                    self.cell.mutates.add(name)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._targets(node.targets)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets([node.target])
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._targets([node.target])
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        self._targets(node.targets)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        # get_ipython().run_line_magic("matplotlib", "inline"): harmless, and common in a first cell
        magic = (
            isinstance(func, ast.Attribute)
            and func.attr == "run_line_magic"
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
            and bool(node.args)
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "matplotlib"
        )
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in STATE_CALLS and not self.scopes:
            self.cell.state = True
        if not magic:
            self.generic_visit(node)


def _read(source: str) -> _Cell:
    cell = _Cell()
    python = _python(source)
    try:
        tree = ast.parse(python) if python is not None else None
    except (SyntaxError, ValueError):
        tree = None
    if tree is None:
        cell.opaque = True
        return cell
    _Reader(cell).visit(tree)
    return cell


def needed_cells(sources: Sequence[str], answers: Sequence[bool], symbols: Iterable[str]) -> list[bool]:
    """For each code cell (``sources``, with ``answers`` marking the answer cells), whether a
    checking run of checks on ``symbols`` (the names the graded test cells pass) must run it."""
    cells = [_read(s) for s in sources]
    keep = [bool(a) or c.opaque or c.state for a, c in zip(answers, cells, strict=True)]
    # Names some cell binds by assignment: values that a method call could change in place.
    values = set().union(*(c.binds - c.stable for c in cells))
    needed = set(symbols).union(*(c.uses for c, k in zip(cells, keep, strict=True) if k))
    direct = set(needed)  # what the checks and the answer cells use themselves
    changed = True
    while changed:
        changed = False
        for i, cell in enumerate(cells):
            if not keep[i] and ((cell.binds | cell.mutates) & needed or cell.uses & direct & values):
                keep[i], changed = True, True
                needed |= cell.uses
    return keep
