"""No active content from a submission: what may reach the feedback, the formgrader and the report.

A submitted notebook is student data, and so is every output its cells produce when the grader
runs them. The feedback HTML, the formgrader (which renders the autograded notebook inside the
instructor's Jupyter session) and the class report must not run any of it. Everything is
cleaned here, at the level of the notebook, in one place:

* **outputs** (:func:`clean_outputs`): only ``text/plain``, ``image/png``, ``image/jpeg`` (valid
  base64) and ``text/latex`` (nbconvert escapes it) are kept as they are. ``text/html`` and
  ``text/markdown`` are dropped when the output has a ``text/plain`` version; otherwise HTML is
  cleaned with bleach (an allow-list of formatting tags, no attributes that run code, http(s)
  and mailto links only) and markdown is treated like a markdown cell. Every other type
  (JavaScript, SVG, widgets, JSON, PDF, ...) is dropped; an output left with nothing says so
  in plain text. Output metadata keeps only image width and height (``isolated`` would put
  HTML in an iframe, ``filenames`` would point an image elsewhere).
* **markdown cells** (:func:`clean_markdown`): a cell is kept as written when nbconvert's own
  renderer turns it into formatting only (allowed tags and attributes, http(s), mailto,
  in-page and attachment links, PNG/JPEG data images) and its source names no script-capable
  tag, event handler or ``javascript:``/``vbscript:`` URL (for renderers other than
  nbconvert's). Any other cell is shown as its source text in a code block, with a note.
  Attachments other than PNG and JPEG are dropped.
* **raw cells**: their text is HTML-escaped (nbconvert writes raw cells into the page as they are).
* **notebook metadata**: saved widget state is dropped (nbconvert would load the widget
  renderer for it).

:class:`SanitizeNotebook` is the nbconvert preprocessor that applies all of it; it is in the
course's ``Autograde.autograde_preprocessors`` (so the autograded notebook the formgrader shows
is clean) and ``GenerateFeedback.preprocessors``. :func:`printable` bounds and escapes a piece of
student text (a file name) for a flag.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Iterable
from html.parser import HTMLParser

import bleach
import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

__all__ = ["SAFE_OUTPUT_TYPES", "SanitizeNotebook", "clean_markdown", "clean_notebook", "clean_outputs", "printable"]

#: Output types kept as they are (nbconvert writes them escaped, or as base64 images).
SAFE_OUTPUT_TYPES = ("text/plain", "image/png", "image/jpeg", "text/latex")
IMAGE_TYPES = ("image/png", "image/jpeg")
#: A markdown cell rewritten to text starts with this note.
MARKDOWN_NOTE = "*This cell contained HTML or links that could run code in the reader's browser; it is shown as text.*"

# Formatting only. Allowed attributes per tag; "*" applies to every tag.
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"class", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"style", "colspan", "rowspan", "align"},
    "th": {"style", "colspan", "rowspan", "align"},
    "ol": {"start"},
    **{f"h{k}": {"id"} for k in range(1, 7)},
}
_URL_ATTRIBUTES = {"href", "src"}
_SCHEMES = {"http", "https", "mailto", "attachment"}
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg);base64,[a-z0-9+/=]*", re.IGNORECASE)
_STYLE = re.compile(r"text-align:\s*(left|right|center);?", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
# In the source, for renderers other than nbconvert's: tags that can run or load code, event handlers.
_ACTIVE_TAG = re.compile(
    r"<\s*/?\s*(script|iframe|frame|frameset|object|embed|applet|svg|math|style|link|meta|base|form|input|"
    r"button|textarea|template|noscript|xmp|plaintext|noembed|portal|video|audio|source|body|html)\b",
    re.IGNORECASE,
)
_HANDLER = re.compile(r"[\s\"'/]on[a-z]+\s*=", re.IGNORECASE)
_ACTIVE_URL = ("javascript:", "vbscript:", "livescript:", "data:text/html")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def printable(text: str, limit: int = 80) -> str:
    """``text`` (a file name, or other student text for a flag) with control and invisible
    characters escaped as ``\\xNN`` / ``\\uNNNN`` and cut to ``limit`` characters."""
    out = []
    for ch in str(text):
        out.append(ch if ch.isprintable() else ascii(ch)[1:-1])
    shown = "".join(out)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------


class _Audit(HTMLParser):
    """Parses HTML and notes the first thing that is not plain formatting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problem: str | None = None

    def _flag(self, what: str) -> None:
        self.problem = self.problem or what

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self._flag(f"<{tag}>")
            return
        allowed = _ATTRIBUTES["*"] | _ATTRIBUTES.get(tag, set())
        for name, value in attrs:
            value = value or ""
            if name not in allowed:
                self._flag(f"{name}= on <{tag}>")
            elif name in _URL_ATTRIBUTES and not _safe_url(value):
                self._flag(f"a {name} URL")
            elif name == "style" and not _STYLE.fullmatch(value.strip()):
                self._flag("a style")

    handle_startendtag = handle_starttag

    def handle_comment(self, data: str) -> None:
        self._flag("an HTML comment")

    def handle_decl(self, decl: str) -> None:
        self._flag("a declaration")

    def handle_pi(self, data: str) -> None:
        self._flag("a processing instruction")

    def unknown_decl(self, data: str) -> None:
        self._flag("a declaration")


def _safe_url(url: str) -> bool:
    squeezed = re.sub(r"[\x00-\x20\x7f]", "", url).lower()
    m = _SCHEME.match(squeezed)
    if m is None:
        return True  # relative or in-page
    return m.group(1) in _SCHEMES or bool(_DATA_IMAGE.fullmatch(squeezed))


def _render(source: str, attachments: dict | None = None) -> str:
    """``source`` as nbconvert's templates render a markdown cell (its ``markdown2html`` filter)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    return MarkdownWithMath(renderer=IPythonRenderer(escape=False, attachments=attachments or {})).render(source)


def html_problem(text: str) -> str | None:
    """What in the HTML ``text`` is not plain formatting (None: nothing)."""
    audit = _Audit()
    audit.feed(text)
    audit.close()
    return audit.problem


def markdown_problem(source: str, attachments: dict | None = None) -> str | None:
    """Why the markdown ``source`` (with the cell's ``attachments``) is not safe to render (None: it is)."""
    if _ACTIVE_TAG.search(source):
        return "a tag that can run code"
    if _HANDLER.search(source):
        return "an event handler"
    squeezed = re.sub(r"[\x00-\x20\x7f]", "", html.unescape(source)).lower()
    if any(url in squeezed for url in _ACTIVE_URL):
        return "a script URL"
    try:
        rendered = _render(source, attachments)
    except Exception:  # noqa: BLE001 - a renderer that fails on it: show it as text
        return "markdown the renderer cannot read"
    return html_problem(rendered)


def _as_text(source: str) -> str:
    """``source`` in a fenced code block no run of backticks inside can close, after the note."""
    longest = max((len(run) for run in re.findall(r"`+", source)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{MARKDOWN_NOTE}\n\n{fence}text\n{source}\n{fence}"


def clean_markdown(source: str, attachments: dict | None = None) -> str:
    """``source`` unchanged if it renders to formatting only, else shown as text (see module doc)."""
    if markdown_problem(source, attachments) is None:
        return source
    text = _as_text(source)
    return text if html_problem(_render(text)) is None else MARKDOWN_NOTE


def _clean_attachments(attachments) -> dict:
    kept = {}
    for name, bundle in (attachments or {}).items() if isinstance(attachments, dict) else []:
        if not isinstance(bundle, dict):
            continue
        images = {k: v for k, v in bundle.items() if k in IMAGE_TYPES and _is_base64(v)}
        if images:
            kept[name] = images
    return kept


# ----------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------


def _is_base64(value) -> bool:
    if isinstance(value, list):
        value = "".join(value)
    if not isinstance(value, str) or not _BASE64.fullmatch(value):
        return False
    try:
        base64.b64decode(re.sub(r"\s", "", value), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _clean_html(value: str) -> str:
    attributes = {tag: sorted((_ATTRIBUTES["*"] | _ATTRIBUTES.get(tag, set())) - {"style"}) for tag in _TAGS}
    cleaned = bleach.clean(
        value, tags=_TAGS, attributes=attributes, protocols=["http", "https", "mailto"], strip=True, strip_comments=True
    )
    return cleaned if html_problem(cleaned) is None else html.escape(cleaned)


def _clean_data(data: dict) -> tuple[dict, list[str]]:
    """The output's data with only safe types kept; and the types removed."""
    kept, removed = {}, []
    for mime, value in data.items():
        if mime in IMAGE_TYPES:
            if _is_base64(value):
                kept[mime] = value
            else:
                removed.append(mime)
        elif mime in ("text/plain", "text/latex"):
            kept[mime] = _text(value)
        elif mime == "text/html" and "text/plain" not in data:
            kept[mime] = _clean_html(_text(value))
        elif mime == "text/markdown" and "text/plain" not in data:
            kept[mime] = clean_markdown(_text(value))
        else:
            removed.append(mime)
    return kept, removed


def _clean_metadata(metadata) -> dict:
    kept = {}
    for mime in IMAGE_TYPES:
        entry = metadata.get(mime) if isinstance(metadata, dict) else None
        if isinstance(entry, dict):
            size = {k: entry[k] for k in ("width", "height") if isinstance(entry.get(k), int | float)}
            if size:
                kept[mime] = size
    return kept


def clean_outputs(outputs: Iterable) -> list:
    """The code-cell ``outputs`` with nothing active left (see the module docstring). Each output
    is rebuilt from its known fields only; outputs of unknown kinds are dropped."""
    cleaned = []
    for out in outputs:
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind in ("display_data", "execute_result"):
            raw = out.get("data")
            data, removed = _clean_data(raw if isinstance(raw, dict) else {})
            if not data:
                shown = ", ".join(printable(m, 60) for m in removed[:3]) + (" ..." if len(removed) > 3 else "")
                data = {"text/plain": f"[output not shown: {shown or 'empty'} could run code in the reader's browser]"}
            node = nbformat.v4.new_output(kind, data=data, metadata=_clean_metadata(out.get("metadata")))
            if kind == "execute_result":
                count = out.get("execution_count")
                node.execution_count = count if isinstance(count, int) and not isinstance(count, bool) else None
        elif kind == "stream":
            name = "stderr" if out.get("name") == "stderr" else "stdout"
            node = nbformat.v4.new_output("stream", name=name, text=_text(out.get("text", "")))
        elif kind == "error":
            trace = out.get("traceback")
            node = nbformat.v4.new_output(
                "error",
                ename=_text(out.get("ename", "")),
                evalue=_text(out.get("evalue", "")),
                traceback=[_text(t) for t in trace] if isinstance(trace, list) else [],
            )
        else:
            continue
        cleaned.append(node)
    return cleaned


# ----------------------------------------------------------------------------------------
# The notebook
# ----------------------------------------------------------------------------------------


def clean_cell(cell) -> None:
    """Clean one cell in place."""
    if cell.cell_type == "code":
        cell.outputs = clean_outputs(cell.get("outputs", []))
    elif cell.cell_type == "markdown":
        if "attachments" in cell:
            cell.attachments = _clean_attachments(cell.attachments)
        cell.source = clean_markdown(_text(cell.source), cell.get("attachments"))
    elif cell.cell_type == "raw":
        cell.source = html.escape(_text(cell.source))
    tags = cell.get("metadata", {}).get("tags")
    if tags is not None:
        cell.metadata.tags = [t for t in tags if isinstance(t, str) and re.fullmatch(r"[\w-]{1,64}", t)]


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Clean every cell of ``nb`` and its metadata, in place; returns ``nb``."""
    for cell in nb.cells:
        clean_cell(cell)
    nb.metadata.pop("widgets", None)
    return nb


class SanitizeNotebook(Preprocessor):
    """nbconvert/nbgrader preprocessor: :func:`clean_notebook` on the notebook it is given."""

    # nbconvert's preprocessors are off unless enabled; nbgrader registers its lists as they are.
    enabled = Bool(True, help="Clean the notebook (see autograder/host/sanitize.py).").tag(config=True)

    def preprocess(self, nb, resources):
        return clean_notebook(nb), resources
