"""Find what in an HTML page could run code a student wrote (for the tests of links and sanitising).

Each payload a test plants carries a unique marker; the template's own scripts (nbconvert's
require.js and MathJax set-up) carry none, so they are told apart by the markers. The page is
parsed (``html.parser``, as a browser tokenises), not searched as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html.parser import HTMLParser

#: Elements that load or run something whatever their content.
ACTIVE_TAGS = {"iframe", "frame", "frameset", "object", "embed", "applet", "base", "form", "portal", "svg", "math"}
SCRIPT_URLS = ("javascript:", "vbscript:", "data:text/html", "data:image/svg")


class _Page(HTMLParser):
    def __init__(self, own_handlers: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.own_handlers = own_handlers
        self.found: list[str] = []
        self.scripts: list[str] = []  # text of each <script>, <style>
        self._raw: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ACTIVE_TAGS:
            self.found.append(f"<{tag}> element")
        for name, value in attrs:
            value = value or ""
            squeezed = re.sub(r"[\x00-\x20\x7f]", "", value).lower()
            if name.startswith("on") and value not in self.own_handlers:
                self.found.append(f"<{tag} {name}=...> event handler")
            if any(squeezed.startswith(url) for url in SCRIPT_URLS):
                self.found.append(f"<{tag} {name}={value[:40]!r}> script URL")
            if tag == "meta" and name == "http-equiv" and squeezed == "refresh":
                self.found.append("<meta http-equiv=refresh>")
        if tag in ("script", "style"):
            self._raw, self._buffer = tag, [" ".join(f"{n}={v}" for n, v in attrs)]

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        if self._raw is not None:
            self._buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._raw == tag:
            self.scripts.append(f"<{tag}> " + "".join(self._buffer))
            self._raw = None


def active_content(page: str, markers: Iterable[str], own_handlers: Iterable[str] = ()) -> list[str]:
    """Everything in ``page`` that could run or load code: active elements, event handlers and
    script URLs anywhere, and ``<script>``/``<style>`` blocks that hold one of ``markers``.
    ``own_handlers``: the exact event-handler code of the page's template (not a student's)."""
    parser = _Page(frozenset(own_handlers))
    parser.feed(page)
    parser.close()
    found = list(parser.found)
    markers = list(markers)
    for block in parser.scripts:
        hit = [m for m in markers if m in block]
        if hit:
            found.append(f"{block[:30]!r}... holds {hit}")
    return found
