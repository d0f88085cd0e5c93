"""The report formats ``datareach audit --format`` offers: the built-ins and those plugins add
(entry-point group ``datareach.reports``).

A :class:`ReportFormat` turns the audit document (the JSON contract of docs/json-output.md, as
a dict) into text. The built-ins are ``table``, ``json``, ``md`` and ``html``; a plugin's
format is offered under its entry point's name, unless a built-in (or an earlier plugin, by
distribution and name) has that name. Plugins are only looked up for a name that is not a
built-in's, so the built-in formats never read the plugin metadata.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datareach.schema.entrypoints import EntryPoint

__all__ = ["BUILTIN_FORMATS", "ReportFormat", "find", "names"]


class ReportFormat(Protocol):
    """A report format. ``render`` gets the audit document and returns the report's text
    (written to ``-o FILE`` or standard output as UTF-8).

    A format that styles its output for a terminal may also have
    ``render_terminal(doc, *, color: bool) -> str``, which the command line calls instead of
    ``render`` when the report goes to standard output (``color``: standard output is a
    terminal).
    """

    name: str

    def render(self, doc: dict[str, Any]) -> str: ...


class _Table:
    name = "table"

    def render(self, doc: dict[str, Any]) -> str:
        return self.render_terminal(doc, color=False)

    def render_terminal(self, doc: dict[str, Any], *, color: bool) -> str:
        from datareach.report.table import render_table  # rich is only imported for tables

        return render_table(doc, color=color)


class _Json:
    name = "json"

    def render(self, doc: dict[str, Any]) -> str:
        from datareach.report.json_report import render_json

        return render_json(doc)


class _Markdown:
    name = "md"

    def render(self, doc: dict[str, Any]) -> str:
        from datareach.report.markdown import render_markdown

        return render_markdown(doc)


class _Html:
    name = "html"

    def render(self, doc: dict[str, Any]) -> str:
        from datareach.report.html import render_html

        return render_html(doc)


#: pyproject.toml declares the same names under ``[project.entry-points."datareach.reports"]``
#: (a test checks it).
TABLE: ReportFormat = _Table()
JSON: ReportFormat = _Json()
MARKDOWN: ReportFormat = _Markdown()
HTML: ReportFormat = _Html()
BUILTIN_FORMATS: tuple[ReportFormat, ...] = (TABLE, JSON, MARKDOWN, HTML)
_BUILTIN = {f.name: f for f in BUILTIN_FORMATS}


@functools.cache
def _plugins() -> tuple[EntryPoint, ...]:
    """The plugins' formats, in order, without importing them (a name taken is logged)."""
    from datareach.schema import entrypoints

    out: list[EntryPoint] = []
    taken = set(_BUILTIN)
    for ep in entrypoints.unclaimed(entrypoints.REPORTS, taken, "report format"):
        taken.add(ep.name)
        out.append(ep)
    return tuple(out)


def names() -> list[str]:
    """Every format's name, built-ins first (reads the plugin metadata)."""
    return [*_BUILTIN, *(ep.name for ep in _plugins())]


def is_format(name: str) -> bool:
    """Whether there is a format of that name (the plugins are only looked at for a name that
    is not a built-in's)."""
    return name in _BUILTIN or any(ep.name == name for ep in _plugins())


def find(name: str) -> ReportFormat:
    """The format called ``name``. ``KeyError`` when there is none;
    :class:`~datareach.schema.entrypoints.PluginError` when its plugin cannot be loaded or is
    not a report format."""
    builtin = _BUILTIN.get(name)
    if builtin is not None:
        return builtin
    from datareach.schema.entrypoints import PluginError

    ep = next((ep for ep in _plugins() if ep.name == name), None)
    if ep is None:
        raise KeyError(name)
    obj = ep.load()
    try:
        if isinstance(obj, type):
            obj = obj()
    except Exception as exc:
        raise PluginError(f"{ep.describe()} cannot be set up: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(obj, "render", None)):
        raise PluginError(f"{ep.describe()} is not a report format: it has no render method")
    fmt: ReportFormat = obj
    return fmt


def argument(value: str) -> str:
    """``argparse`` type of a ``--format`` value: the name, if there is such a format. Help
    output never lists the plugins' formats (that would read the plugin metadata on every
    ``--help``); a usage error does."""
    if is_format(value):
        return value
    import argparse

    raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(names())})")
