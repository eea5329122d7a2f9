"""A copy of the ``course`` package without the reference implementations being graded.

Watching for delegation from inside the student's kernel (:func:`course.exercises.base.trapped`)
explains it to honest students, but it cannot stop a determined one: the kernel is theirs, and
a reference they saved, copied (``__code__``), re-read from source or reached with the profiler
switched off still computes the right answer. So while a notebook is graded the sandbox sees
this copy instead, in which the body of every method graded in the assignment (each
exercise's ``withheld`` list) is replaced by a ``raise``. The right answer is then nowhere in the
student's process: there is nothing to delegate to.

Line numbers are kept (the removed lines become blank), so tracebacks through the rest of the
library read as usual. Everything else of the package, data files included, is copied as is.
"""

from __future__ import annotations

import ast
import atexit
import compileall
import hashlib
import inspect
import os
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import course
from course.exercises.base import WITHHELD_MESSAGE, reference_function

__all__ = ["STUB_MESSAGE", "WithheldError", "package_dir", "resolve", "shared_copy", "withheld_copy"]

#: Where ``import course`` finds the package: the sandbox shows the copy at this path.
package_dir = Path(course.__file__).resolve().parent

#: What a withheld function raises; :func:`course.exercises.base.run_case` recognises it.
STUB_MESSAGE = WITHHELD_MESSAGE


class WithheldError(ValueError):
    """A function to withhold cannot be found or rewritten."""


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


def _definitions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function of a module by qualified name (methods of nested classes included)."""
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found[f"{prefix}{node.name}"] = node

    visit(tree.body, "")
    return found


def _first_line(stmt: ast.stmt) -> int:
    decorators = getattr(stmt, "decorator_list", [])
    return min([stmt.lineno, *(d.lineno for d in decorators)])


def redact_source(source: str, names: dict[str, str], filename: str = "<source>") -> str:
    """``source`` with the body of each function in ``names`` (qualified name -> display name)
    replaced by a ``raise RuntimeError`` that says why; docstrings and line numbers are kept."""
    tree = ast.parse(source, filename)
    defs = _definitions(tree)
    lines = source.splitlines(keepends=True)
    for qualname, display in names.items():
        node = defs.get(qualname)
        if node is None:
            raise WithheldError(f"no function {qualname} in {filename}")
        body = node.body
        if (
            isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]  # keep the docstring
        if not body:
            raise WithheldError(f"{qualname} in {filename} has no body to withhold")
        start, end = _first_line(body[0]), node.end_lineno
        if start <= node.lineno:
            raise WithheldError(f"{qualname} in {filename} is a one-line definition; write its body on its own lines")
        indent = lines[start - 1][: len(lines[start - 1]) - len(lines[start - 1].lstrip())]
        stub = f"{indent}raise RuntimeError({STUB_MESSAGE.format(name=display)!r})\n"
        lines[start - 1 : end] = [stub] + ["\n"] * (end - start)
    text = "".join(lines)
    compile(text, filename, "exec")  # a rewrite that does not compile is a bug here, not the student's
    return text


def withheld_copy(functions: Iterable[tuple[Any, str]], dest: str | Path) -> Path:
    """Copy the course package into ``dest/course`` with ``functions`` withheld; returns the copy.

    The copy is readable by everyone (the sandbox runs student code as an unprivileged uid)
    and holds no compiled bytecode of the originals.
    """
    by_file: dict[Path, dict[str, str]] = defaultdict(dict)
    for owner, attr in functions:
        path, qualname, display = resolve(owner, attr)
        by_file[path][qualname] = display
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


def shared_copy(functions: Iterable[tuple[Any, str]]) -> Path:
    """A folder holding ``course/`` with ``functions`` withheld, made once per process and kept
    while the package is unchanged (every notebook of an assignment withholds the same
    functions). It is compiled to bytecode, so that the sandbox need not compile it again for
    every notebook, and is removed when the process ends. Returns the folder (for PYTHONPATH).
    """
    global _cache_root
    functions = list(functions)
    idents = sorted({(str(path), qualname) for path, qualname, _ in (resolve(o, a) for o, a in functions)})
    key = hashlib.sha256(repr((idents, _package_signature())).encode()).hexdigest()[:16]
    with _cache_lock:
        if key in _cache and (_cache[key] / "course").is_dir():
            return _cache[key]
        if _cache_root is None:
            _cache_root = Path(tempfile.mkdtemp(prefix="backprop-library-"))
            os.chmod(_cache_root, 0o755)
            atexit.register(_remove_cache)
        folder = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=_cache_root))
        withheld_copy(functions, folder)
        compileall.compile_dir(str(folder / "course"), quiet=2, workers=1)
        _readable(folder)
        _cache[key] = folder
        return folder
