"""Pairs of students whose answer cells are unusually similar, for the instructor to judge.

Never a verdict and never a change of score: the report lists the pairs with their cells side by
side (:func:`render`), and the instructor decides. How two answers are compared:

1. **Normalised tokens.** Each answer cell is parsed with :mod:`ast`; docstrings and other bare
   strings go, comments and layout go with them (``ast.unparse``), string constants become
   ``''``, and every name the cell binds itself (locals, loop variables, helper functions,
   arguments) that the release's stub does not already use is renamed ``_v0``, ``_v1``, ... in
   order of first use. Renaming variables, reformatting, re-commenting or re-wording docstrings
   changes nothing. The result is cut into tokens with :mod:`tokenize` (a cell that does not
   parse is cut into words and symbols, comments dropped).
2. **The scaffold subtracted.** A cell's *shingles* are its runs of :data:`K` consecutive tokens;
   those of the release's stub of the same cell (the class line, the signature, the ``raise``)
   are removed, so the given code never makes two students alike. In a class of at least
   :data:`MIN_CLASS_FOR_COMMON` students, shingles that more than :data:`COMMON_SHARE` of them
   wrote are removed too: the one obvious way to write a one-liner is no sign of copying.
3. **Cheap at scale.** An index from each remaining shingle to the students who wrote it counts,
   for every pair that shares any, how many they share; only pairs sharing at least
   :data:`MIN_SHARED` are compared exactly (Jaccard similarity, over all answer cells together).
   A class of a few hundred is a fraction of a second.

A pair is listed when its similarity is at least :data:`THRESHOLD`. Only code answer cells
(``solution`` cells of nbgrader) are compared; written answers in markdown cells are not.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import os
import re
import tokenize
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.integration.metadata import nbgrader_meta

if TYPE_CHECKING:
    import nbformat

__all__ = [
    "CellMatch",
    "SimilarPair",
    "answer_cells",
    "find_similar",
    "normalise",
    "read_answers",
    "render",
]

#: Tokens per shingle.
K = 5
#: The least Jaccard similarity of two students' own code (all answer cells together) that is listed.
THRESHOLD = 0.7
#: The least number of shingles of their own two students must share to be compared at all.
MIN_SHARED = 12
#: In a class this large or larger, shingles more than COMMON_SHARE of the students wrote are ignored.
MIN_CLASS_FOR_COMMON = 8
COMMON_SHARE = 0.4
#: At most this many pairs are shown (the most similar first).
MAX_PAIRS = 50
#: A cell is shown side by side when its own similarity is at least this.
CELL_THRESHOLD = 0.5
#: Lines of a cell shown, and characters of a line.
MAX_LINES, MAX_LINE = 60, 160
MAX_NOTEBOOK_BYTES = 32 * 2**20

_KEEP = frozenset(dir(builtins)) | frozenset(keyword.kwlist)
_WORD = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\S")


@dataclass(frozen=True)
class CellMatch:
    """One answer cell of a listed pair: how alike the two are, and both sources as written."""

    cell: str
    similarity: float
    first: str
    second: str


@dataclass(frozen=True)
class SimilarPair:
    """Two students whose own code is unusually alike (never a verdict)."""

    first: str
    second: str
    #: Jaccard similarity of their own shingles, over all answer cells together (0 to 1).
    similarity: float
    #: How many shingles of their own they share.
    shared: int
    cells: tuple[CellMatch, ...]


# ----------------------------------------------------------------------------------------
# Normalising one cell
# ----------------------------------------------------------------------------------------


def _is_bare_string(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _canonicalise(tree: ast.AST, names: Mapping[str, str]) -> None:
    """In place: drop bare strings (docstrings), blank string constants, rename by ``names``."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                kept = [s for s in body if not _is_bare_string(s)]
                setattr(node, field, kept or [ast.Pass()])
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
        elif isinstance(node, ast.JoinedStr):
            node.values = []
        elif isinstance(node, ast.Name):
            node.id = names.get(node.id, node.id)
        elif isinstance(node, ast.arg):
            node.arg = names.get(node.arg, node.arg)
            node.annotation = None
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.name = names.get(node.name, node.name)


def _bound_names(tree: ast.AST) -> list[str]:
    """Names the code binds itself, in order of first appearance in the source."""
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            found.append((node.lineno, node.col_offset, node.id))
        elif isinstance(node, ast.arg):
            found.append((node.lineno, node.col_offset, node.arg))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append((node.lineno, node.col_offset, node.name))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            found.append((node.lineno, node.col_offset, node.name))
        elif isinstance(node, ast.alias):
            found.append((getattr(node, "lineno", 0), getattr(node, "col_offset", 0), node.asname or node.name))
    return list(dict.fromkeys(name for *_, name in sorted(found)))


def _names(source: str) -> set[str]:
    """Every identifier in ``source`` (the names a stub gives)."""
    return set(re.findall(r"[A-Za-z_]\w*", source))


def normalise(source: str, given: Iterable[str] = ()) -> list[str]:
    """The tokens of ``source`` with layout, comments, docstrings and string contents gone and the
    names it binds (except those in ``given``, the stub's) renamed in order of first use."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        text = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
        return _WORD.findall(text)
    keep = _KEEP | set(given)
    own = [n for n in _bound_names(tree) if n not in keep]
    renamed = {name: f"_v{k}" for k, name in enumerate(own)}
    try:
        _canonicalise(tree, renamed)
        text = ast.unparse(tree)
    except (ValueError, RecursionError):
        return _WORD.findall(source)
    tokens = []
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in skip:
                continue
            tokens.append({tokenize.NEWLINE: ";", tokenize.INDENT: "{", tokenize.DEDENT: "}"}.get(tok.type, tok.string))
    except (tokenize.TokenError, SyntaxError):
        return _WORD.findall(text)
    return tokens


def _shingles(tokens: list[str]) -> set[str]:
    if len(tokens) < K:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + K]) for i in range(len(tokens) - K + 1)}


# ----------------------------------------------------------------------------------------
# Reading the answers
# ----------------------------------------------------------------------------------------


def answer_cells(nb: nbformat.NotebookNode) -> dict[str, str]:
    """grade id -> source of every code answer cell (nbgrader ``solution`` cell) of ``nb``."""
    cells: dict[str, str] = {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") == "code" and meta.get("solution") and meta.get("grade_id"):
            source = cell.get("source", "")
            cells.setdefault(str(meta["grade_id"]), source if isinstance(source, str) else "".join(source))
    return cells


def _read_notebook(path: Path) -> nbformat.NotebookNode | None:
    """The notebook at ``path``, never through a link and never a huge one; None if unreadable."""
    import nbformat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_NOTEBOOK_BYTES + 1)
        if len(data) > MAX_NOTEBOOK_BYTES:
            return None
        return nbformat.reads(data.decode("utf-8", errors="replace"), as_version=4)
    except Exception:  # noqa: BLE001 - an unreadable notebook has no answers to compare
        return None


def read_answers(
    notebooks: Mapping[str, Iterable[Path]], release_dir: Path
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Each student's answer cells (``notebook/grade_id`` -> source) from their ``notebooks``, and
    the stub of each answer cell from the release notebooks in ``release_dir``."""
    stubs: dict[str, str] = {}
    for path in sorted(release_dir.glob("*.ipynb")):
        nb = _read_notebook(path)
        if nb is not None:
            stubs.update({f"{path.stem}/{gid}": src for gid, src in answer_cells(nb).items()})
    answers: dict[str, dict[str, str]] = {}
    for student, paths in notebooks.items():
        cells: dict[str, str] = {}
        for path in paths:
            nb = _read_notebook(path)
            if nb is not None:
                cells.update(
                    {f"{path.stem}/{g}": s for g, s in answer_cells(nb).items() if f"{path.stem}/{g}" in stubs}
                )
        answers[student] = cells
    return answers, stubs


# ----------------------------------------------------------------------------------------
# Finding the pairs
# ----------------------------------------------------------------------------------------


def find_similar(
    answers: Mapping[str, Mapping[str, str]],
    stubs: Mapping[str, str],
    *,
    threshold: float = THRESHOLD,
    min_shared: int = MIN_SHARED,
) -> list[SimilarPair]:
    """The pairs of students whose own code (stub subtracted) is at least ``threshold`` alike,
    most similar first. ``answers``: student -> cell -> source; ``stubs``: cell -> the release's."""
    # The names the stub's code gives (not the words of its docstring and comments).
    given = {c: {t for t in normalise(s, _names(s)) if t.isidentifier()} for c, s in stubs.items()}
    stub_shingles = {c: _shingles(normalise(s, given[c])) for c, s in stubs.items()}
    seen: dict[tuple[str, str], frozenset[str]] = {}  # the same cell handed in again (a stub left) is cut once

    def cut(c: str, src: str) -> frozenset[str]:
        if (c, src) not in seen:
            seen[(c, src)] = frozenset(_shingles(normalise(src, given.get(c, ()))) - stub_shingles.get(c, set()))
        return seen[(c, src)]

    own: dict[str, dict[str, set[str]]] = {
        student: {c: set(cut(c, src)) for c, src in cells.items()} for student, cells in answers.items()
    }
    holders: dict[tuple[str, str], list[str]] = defaultdict(list)
    for student in sorted(own):
        for cell, shingles in own[student].items():
            for s in shingles:
                holders[(cell, s)].append(student)
    if len(own) >= MIN_CLASS_FOR_COMMON:  # the obvious way to write it is no sign of copying
        common = {key for key, who in holders.items() if len(who) > COMMON_SHARE * len(own)}
        for key in common:
            del holders[key]
            for student in own:
                own[student].get(key[0], set()).discard(key[1])
    shared: Counter[tuple[str, str]] = Counter()
    for who in holders.values():
        for pair in combinations(who, 2):
            shared[pair] += 1
    size = {student: sum(len(s) for s in cells.values()) for student, cells in own.items()}
    pairs = []
    for (a, b), count in shared.items():
        # count is exactly |A & B| over all cells (each shingle is keyed by its cell): Jaccard.
        if count < min_shared or count < threshold * (size[a] + size[b] - count):
            continue
        similarity = count / (size[a] + size[b] - count)
        cells = sorted(set(own[a]) | set(own[b]))
        matches = []
        for c in cells:
            x, y = own[a].get(c, set()), own[b].get(c, set())
            cell_similarity = len(x & y) / len(x | y) if x | y else 0.0
            if x & y and cell_similarity >= CELL_THRESHOLD:
                matches.append(CellMatch(c, cell_similarity, answers[a].get(c, ""), answers[b].get(c, "")))
        matches.sort(key=lambda m: -m.similarity)
        pairs.append(SimilarPair(a, b, similarity, count, tuple(matches)))
    return sorted(pairs, key=lambda p: (-p.similarity, -p.shared, p.first, p.second))


# ----------------------------------------------------------------------------------------
# The report's section
# ----------------------------------------------------------------------------------------


def _code(source: str) -> str:
    """A cell's source for the page: control characters escaped, cut short, HTML-escaped."""
    import html

    from autograder.host.sanitize import printable

    lines = source.splitlines()
    shown = [printable(line.expandtabs(4), MAX_LINE) for line in lines[:MAX_LINES]]
    if len(lines) > MAX_LINES:
        shown.append(f"... ({len(lines) - MAX_LINES} more lines)")
    return html.escape("\n".join(shown), quote=True)


def render(pairs: list[SimilarPair], esc) -> str:
    """The report's section listing ``pairs`` (``esc`` escapes a student id for the page)."""
    parts = [
        "<h2 id='similar'>Similar submissions, for review</h2>"
        "<p class='note'>Pairs of students whose answer cells are unusually alike once variables are renamed "
        "and comments, docstrings, layout and the given scaffold are left out. This is no verdict and "
        "changes no score: short exercises can be written only a few ways, so read the cells before "
        f"drawing any conclusion. Listed from {100 * THRESHOLD:.0f} % of their own code in common.</p>"
    ]
    if not pairs:
        parts.append("<p>No pair of submissions is unusually similar.</p>")
        return "".join(parts)
    for pair in pairs[:MAX_PAIRS]:
        parts.append(
            f"<details class='pair'><summary>{esc(pair.first)} and {esc(pair.second)}: "
            f"{100 * pair.similarity:.0f} % of their own code in common ({pair.shared} shared runs of {K} "
            f"tokens, {len(pair.cells)} cell(s) alike)</summary><table class='side'>"
            f"<tr><th class='name'>cell</th><th class='name'>{esc(pair.first)}</th>"
            f"<th class='name'>{esc(pair.second)}</th></tr>"
        )
        for m in pair.cells:
            parts.append(
                f"<tr><td class='name'>{esc(m.cell)}<br>{100 * m.similarity:.0f} %</td>"
                f"<td class='code'><pre>{_code(m.first)}</pre></td>"
                f"<td class='code'><pre>{_code(m.second)}</pre></td></tr>"
            )
        parts.append("</table></details>")
    if len(pairs) > MAX_PAIRS:
        parts.append(f"<p>... and {len(pairs) - MAX_PAIRS} more pairs above the threshold, less similar.</p>")
    return "".join(parts)
