"""Markdown rendered by two real GFM renderers, and the check that captured strings stay inert.

markdown-it-py (GFM-like preset) and cmark-gfm (GitHub's own renderer, through cmarkgfm), both
with raw HTML allowed and without cmark-gfm's tag filter, so that anything our escaping let
through shows up as an element or an attribute. Both are test dependencies (the ``test`` extra).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Final

import cmarkgfm  # type: ignore[import-untyped]
from cmarkgfm.cmark import Options  # type: ignore[import-untyped]
from markdown_it import MarkdownIt

__all__ = ["ALLOWED_TAGS", "RENDERERS", "Elements", "check_inert", "render_cmark", "render_markdown_it"]

#: The only elements our Markdown may produce, and none of them with attributes.
ALLOWED_TAGS: Final = frozenset({
    "h2", "h3", "p", "ul", "li", "strong", "code", "table", "thead", "tbody", "tr", "th", "td",
    "details", "summary", "blockquote", "br",
})


def render_markdown_it(md: str) -> str:
    html: str = MarkdownIt("gfm-like").render(md)
    return html


def render_cmark(md: str) -> str:
    # raw HTML passed through, tag filter off: what matters is what *we* let through
    html: str = cmarkgfm.cmark.markdown_to_html_with_extensions(
        md, options=Options.CMARK_OPT_UNSAFE, extensions=["table", "autolink", "strikethrough", "tasklist"])
    return html


RENDERERS: Final[list[Callable[[str], str]]] = [render_markdown_it, render_cmark]


class Elements(HTMLParser):
    """Every element with its attributes, and each table's rows as cell counts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.tables: list[list[int]] = []
        self.headers: list[list[str]] = []
        self.text_outside_code: list[str] = []
        self._code = 0
        self._th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))
        if tag == "table":
            self.tables.append([])
            self.headers.append([])
        elif tag == "tr":
            self.tables[-1].append(0)
        elif tag in ("td", "th"):
            self.tables[-1][-1] += 1
            self._th = tag == "th"
            if self._th:
                self.headers[-1].append("")
        elif tag == "code":
            self._code += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self._code -= 1
        elif tag == "th":
            self._th = False

    def table(self, *first: str) -> list[int]:
        """The rows (cell counts) of the one table whose first column headers are ``first``."""
        found = [rows for rows, head in zip(self.tables, self.headers, strict=True) if tuple(head[:len(first)]) == first]
        assert len(found) == 1, (first, self.headers)
        return found[0]

    def handle_data(self, data: str) -> None:
        if self._th:
            self.headers[-1][-1] += data
        if not self._code:
            self.text_outside_code.append(data)


def check_inert(md: str, html: str) -> Elements:
    """Assert that ``html`` (``md`` rendered) holds only :data:`ALLOWED_TAGS`, without attributes,
    tables with as many cells in every row, and nothing GitHub would turn into a mention or an
    issue link; return the parsed elements."""
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "<a " not in html.lower() and "<a>" not in html.lower()
    p = Elements()
    p.feed(html)
    p.close()
    for tag, attrs in p.elements:
        assert tag in ALLOWED_TAGS, (tag, html)
        assert attrs == [], (tag, attrs)  # so no href, src, on*=, nor a javascript: attribute
    for rows in p.tables:
        assert len(set(rows)) == 1, rows  # every row has the header's number of cells
    # GitHub turns @name and #123 in rendered text into mentions and issue links
    outside = "".join(p.text_outside_code)
    assert not re.search(r"(?<![\w`])@[A-Za-z0-9]", outside), outside
    assert not re.search(r"(?<![\w&])#[0-9]", outside), outside
    assert md.count("<details>") == html.count("<details>")
    return p
