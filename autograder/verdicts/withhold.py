"""A copy of the ``course`` package without the library's answers.

Watching for delegation from inside the student's kernel (:func:`course.exercises.base.trapped`)
explains it to honest students, but it cannot stop a determined one: the kernel is theirs, and
a reference they saved, copied (``__code__``), re-read from source or reached with the profiler
switched off still computes the right answer. So while a notebook is graded the checking run sees
this copy instead, in which the body of every function not on the allow-list
(:mod:`autograder.verdicts.allowlist`: forwards, constructors, the check machinery) is replaced by a
``raise``, nested functions included, and so is every function an exercise of the assignment
withholds (:func:`checking_withheld`). No backward, gradient, update or numerical-gradient code
of the library is then in the student's process, whichever exercise it was written for: there
is nothing to delegate to.

Line numbers are kept (the removed lines become blank), so tracebacks through the rest of the
library read as usual. Everything else of the package, data files included, is copied as is.
"""

from __future__ import annotations

import ast
import atexit
import compileall
import fnmatch
import functools
import hashlib
import inspect
import os
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import course
from autograder.verdicts.allowlist import ALLOWED
from course.exercises.base import WITHHELD_MESSAGE, reference_function

__all__ = [
    "STUB_MESSAGE",
    "Ref",
    "WithheldError",
    "allowed",
    "checking_withheld",
    "library_functions",
    "package_dir",
    "ref",
    "resolve",
    "shared_copy",
    "with_nested",
    "withheld_copy",
]

#: Where ``import course`` finds the package: the sandbox shows the copy at this path.
package_dir = Path(course.__file__).resolve().parent

#: What a withheld function raises; :func:`course.exercises.base.run_case` recognises it.
STUB_MESSAGE = WITHHELD_MESSAGE


class WithheldError(ValueError):
    """A function to withhold cannot be found or rewritten."""


@dataclass(frozen=True, order=True)
class Ref:
    """A function of the library by where it is defined: its file and qualified name (a nested
    function's reads ``Value.__mul__.<locals>._backward``)."""

    path: Path
    module: str
    qualname: str

    @property
    def display(self) -> str:
        return f"{self.module}.{self.qualname}"

    @property
    def outermost(self) -> str:
        """The qualified name of the module- or class-level function this one is part of."""
        return self.qualname.split(".<locals>.")[0]


def ref(owner: Any, attr: str) -> Ref:
    """The :class:`Ref` of ``owner.attr``, a function or method (inherited: where it is defined)."""
    path, qualname, display = resolve(owner, attr)
    return Ref(path, display[: -len(qualname) - 1], qualname)


def _as_ref(function: Ref | tuple[Any, str]) -> Ref:
    return function if isinstance(function, Ref) else ref(*function)


def resolve(owner: Any, attr: str) -> tuple[Path, str, str]:
    """(source file, qualified name, display name) of ``owner.attr``, a function or method."""
    fn = reference_function(owner, attr)  # inherited: withhold the definition it resolves to
    fn = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(fn, "__code__", None)
    if code is None:
        raise WithheldError(f"{owner!r}.{attr} is not a Python function and cannot be withheld")
    path = Path(code.co_filename).resolve()
    if not path.is_relative_to(package_dir):
        raise WithheldError(f"{fn.__qualname__} is defined outside the course package ({path})")
    module = fn.__module__
    return path, fn.__qualname__, f"{module}.{fn.__qualname__}"


def _definitions(tree: ast.Module) -> dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function of a module by qualified name, as Python names them: methods of nested
    classes, and functions nested in functions (``f.<locals>.g``), included; so are
    definitions under ``if``, ``try``, ``with`` and loops. A name defined more than once (a
    property's setter, ``@overload`` stubs before the real body, a version-dependent fallback)
    maps to all its definitions, in source order: whichever one Python ends up binding, each
    is withheld."""
    found: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = defaultdict(list)

    def visit(body: Sequence[ast.stmt | ast.ExceptHandler], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found[f"{prefix}{node.name}"].append(node)
                visit(node.body, f"{prefix}{node.name}.<locals>.")
            else:
                for name in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, name, None)
                    if isinstance(inner, list):
                        visit([n for n in inner if isinstance(n, ast.stmt | ast.ExceptHandler)], prefix)
            if isinstance(node, ast.ExceptHandler):
                visit(node.body, prefix)

    visit(tree.body, "")
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _library(signature: str) -> tuple[Ref, ...]:
    refs = []
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        module = _module_name(path)
        for qualname in _definitions(ast.parse(path.read_text(), str(path))):
            refs.append(Ref(path, module, qualname))
    return tuple(refs)


def library_functions() -> tuple[Ref, ...]:
    """Every function and method defined in the ``course`` package (nested ones included), read
    from its source."""
    return _library(_package_signature())


def with_nested(function: Ref) -> list[Ref]:
    """``function`` and every function defined inside it (its local backward, say)."""
    inner = f"{function.qualname}.<locals>."
    return [function] + [r for r in library_functions() if r.path == function.path and r.qualname.startswith(inner)]


def allowed(function: Ref) -> bool:
    """Whether the allow-list lets checking runs execute ``function``: its module's entry names it,
    or has a pattern (``fnmatch``) that matches it; a package's entry (``course.exercises.*``)
    counts for each of its modules."""
    names = [*ALLOWED.get(function.module, ()), *ALLOWED.get(function.module.rpartition(".")[0] + ".*", ())]
    return any(fnmatch.fnmatchcase(function.qualname, name) for name in names)


def checking_withheld(exercises: Iterable[Any]) -> list[Ref]:
    """What the checking runs of an assignment whose checks use ``exercises`` leave out: every
    library function not on the allow-list, and every function one of the exercises withholds
    (with what is nested in it). The exercises' ``needs`` are given back later (by the engine)."""
    withheld = {r for r in library_functions() if not allowed(r)}
    for exercise in exercises:
        for owner, attr in exercise.withheld:
            withheld.update(with_nested(ref(owner, attr)))
    return sorted(withheld)


def _first_line(stmt: ast.stmt) -> int:
    decorators = getattr(stmt, "decorator_list", [])
    return min([stmt.lineno, *(d.lineno for d in decorators)])


def _ancestors(qualname: str) -> list[str]:
    """The functions ``qualname`` is nested in (``f`` for ``f.<locals>.g``)."""
    parts = qualname.split(".<locals>.")
    return [".<locals>.".join(parts[:k]) for k in range(1, len(parts))]


def redact_source(source: str, names: dict[str, str], filename: str = "<source>") -> str:
    """``source`` with the body of each function in ``names`` (qualified name -> display name)
    replaced by a ``raise RuntimeError`` that says why; docstrings and line numbers are kept.

    A function nested in one that is withheld goes with it; a function whose body is only a
    docstring has nothing to withhold and is left as it is."""
    tree = ast.parse(source, filename)
    defs = _definitions(tree)
    lines = source.splitlines(keepends=True)
    for qualname, display in names.items():
        if qualname not in defs:
            raise WithheldError(f"no function {qualname} in {filename}")
        if any(outer in names for outer in _ancestors(qualname)):
            continue
        for node in defs[qualname]:
            _redact(lines, node, qualname, display, filename)
    text = "".join(lines)
    compile(text, filename, "exec")  # a rewrite that does not compile is a bug here, not the student's
    return text


def _redact(
    lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, display: str, filename: str
) -> None:
    """Replace the body of ``node`` in ``lines`` by the stub, keeping its docstring and the
    number of lines."""
    body = node.body
    if (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]  # keep the docstring
    if not body:
        return
    stub = f"raise RuntimeError({STUB_MESSAGE.format(name=display)!r})"
    start, end = _first_line(body[0]), node.end_lineno or _first_line(body[0])  # ast.parse sets end_lineno
    if lines[start - 1][: body[0].col_offset].strip():  # the body shares a line with the `def`
        if start != end:
            raise WithheldError(
                f"{qualname} in {filename} starts its body on the line of its `def`; write its body on lines of its own"
            )
        line = lines[start - 1]  # `def f(x): return ...`: the body after the colon
        lines[start - 1] = line[: body[0].col_offset] + stub + "\n"
        return
    indent = lines[start - 1][: len(lines[start - 1]) - len(lines[start - 1].lstrip())]
    lines[start - 1 : end] = [f"{indent}{stub}\n"] + ["\n"] * (end - start)


def withheld_copy(functions: Iterable[Ref | tuple[Any, str]], dest: str | Path) -> Path:
    """Copy the course package into ``dest/course`` with ``functions`` withheld; returns the copy.

    The copy is readable by everyone (the sandbox runs student code as an unprivileged uid)
    and holds no compiled bytecode of the originals.
    """
    by_file: dict[Path, dict[str, str]] = defaultdict(dict)
    for function in map(_as_ref, functions):
        by_file[function.path][function.qualname] = function.display
    target = Path(dest) / "course"
    shutil.copytree(package_dir, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path, names in by_file.items():
        copy = target / path.relative_to(package_dir)
        copy.write_text(redact_source(path.read_text(), names, str(path)))
    _readable(dest)
    return target


def _readable(folder: str | Path) -> None:
    """Let everyone read ``folder`` and everything in it (and nobody but its owner write)."""
    for directory, _, files in os.walk(folder):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


_cache: dict[str, Path] = {}
_cache_lock = threading.Lock()
_cache_root: Path | None = None


def _package_signature() -> str:
    """Changes whenever a file of the course package does (name, size or modification time)."""
    digest = hashlib.sha256()
    for directory, dirs, files in sorted(os.walk(package_dir)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(directory, name)
            info = os.stat(path)
            digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _remove_cache() -> None:
    if _cache_root is not None:
        shutil.rmtree(_cache_root, ignore_errors=True)


def shared_copy(functions: Iterable[Ref | tuple[Any, str]]) -> Path:
    """A folder holding ``course/`` with ``functions`` withheld, made once per process and kept
    while the package is unchanged (every notebook of an assignment withholds the same
    functions). It is compiled to bytecode, so that the sandbox need not compile it again for
    every notebook, and is removed when the process ends. Returns the folder (for PYTHONPATH).
    """
    global _cache_root
    refs = [_as_ref(f) for f in functions]
    idents = sorted({(str(f.path), f.qualname) for f in refs})
    key = hashlib.sha256(repr((idents, _package_signature())).encode()).hexdigest()[:16]
    with _cache_lock:
        if key in _cache and (_cache[key] / "course").is_dir():
            return _cache[key]
        if _cache_root is None:
            _cache_root = Path(tempfile.mkdtemp(prefix="backprop-library-"))
            os.chmod(_cache_root, 0o755)
            atexit.register(_remove_cache)
        folder = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=_cache_root))
        withheld_copy(refs, folder)
        compileall.compile_dir(str(folder / "course"), quiet=2, workers=1)
        _readable(folder)
        _cache[key] = folder
        return folder
