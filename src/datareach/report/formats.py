"""The report formats ``datareach audit --format`` offers: the built-ins and those plugins add
(entry-point group ``datareach.reports``).

A :class:`ReportFormat` turns the audit document (the JSON contract of docs/json-output.md, as
a dict) into text. The built-ins are ``table``, ``json``, ``md``, ``html``, ``sarif``, ``junit`` and
``csv``; a plugin's
format is offered under its entry point's name, unless a built-in (or an earlier plugin, by
distribution and name) has that name. Plugins are only looked up for a name that is not a
built-in's, so the built-in formats never read the plugin metadata.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datareach.schema.entrypoints import EntryPoint

__all__ = ["BUILTIN_FORMATS", "ReportFormat", "find", "names", "plan_outputs"]


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


class _Sarif:
    name = "sarif"

    def render(self, doc: dict[str, Any]) -> str:
        from datareach.report.sarif import render_sarif

        return render_sarif(doc)


class _Junit:
    name = "junit"

    def render(self, doc: dict[str, Any], fail_on: str = "deny") -> str:
        from datareach.report.junit import render_junit

        return render_junit(doc, fail_on)


class _Csv:
    """The destinations (the findings go to a second file: the command line writes it)."""

    name = "csv"

    def render(self, doc: dict[str, Any]) -> str:
        from datareach.report.csv_report import render_destinations_csv

        return render_destinations_csv(doc)


#: pyproject.toml declares the same names under ``[project.entry-points."datareach.reports"]``
#: (a test checks it).
TABLE: ReportFormat = _Table()
JSON: ReportFormat = _Json()
MARKDOWN: ReportFormat = _Markdown()
HTML: ReportFormat = _Html()
SARIF: ReportFormat = _Sarif()
JUNIT: ReportFormat = _Junit()
CSV: ReportFormat = _Csv()
BUILTIN_FORMATS: tuple[ReportFormat, ...] = (TABLE, JSON, MARKDOWN, HTML, SARIF, JUNIT, CSV)
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
    """``argparse`` type of a ``--format`` value: the name, if there is such a format, or several
    names separated by commas (``json,sarif``). Help output never lists the plugins' formats
    (that would read the plugin metadata on every ``--help``); a usage error does."""
    bad = [v for v in value.split(",") if not is_format(v)] if value else [value]
    if not bad:
        return value
    import argparse

    raise argparse.ArgumentTypeError(f"invalid choice: {bad[0]!r} (choose from {', '.join(names())})")


#: The extension a format's file gets when ``-o`` is a base name (a plugin's format: its name).
EXTENSIONS = {"table": ".txt", "json": ".json", "md": ".md", "html": ".html", "sarif": ".sarif", "junit": ".xml",
              "csv": ".csv"}
#: The extensions that choose a format when ``--format`` is not given.
_BY_EXTENSION = {".txt": "table", ".json": "json", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
                 ".sarif": "sarif", ".sarif.json": "sarif", ".xml": "junit", ".csv": "csv"}


def format_of_path(path: str) -> str | None:
    """The built-in format an output file's extension names (``.sarif.json`` is SARIF), or None."""
    name = path.lower().rsplit("/", 1)[-1]
    for ext in sorted(_BY_EXTENSION, key=len, reverse=True):
        if name.endswith(ext) and len(name) > len(ext):
            return _BY_EXTENSION[ext]
    return None


def plan_outputs(formats: list[str], outputs: list[str]) -> list[tuple[str, str | None]]:
    """Which format goes to which file (None: standard output), from the ``--format`` values
    (each may list several, comma-separated) and the ``-o`` values, in the order given.

    * no ``-o``: one format, to standard output (``table`` when none is given);
    * as many ``-o`` as formats: paired in order (``--format json -o a.json --format sarif -o b.sarif``);
    * several formats and one ``-o``: a base name, each format written to BASE plus its extension
      (``--format json,sarif -o out/report``: out/report.json and out/report.sarif; an extension
      the base ends with, e.g. ``out/report.json``, is dropped first);
    * ``-o`` without ``--format``: each file's extension chooses its format (``.json``, ``.sarif``
      or ``.sarif.json``, ``.xml`` JUnit, ``.csv``, ``.md``, ``.html``, ``.txt`` table); a single
      ``-o`` with another extension gets the table, as before.

    ``ValueError`` (with the reason) when the values do not fit one of these.
    """
    wanted: list[str] = []
    for value in formats:
        for name in value.split(","):
            if name not in wanted:
                wanted.append(name)
    if not outputs:
        if len(wanted) > 1:
            raise ValueError(f"several formats ({', '.join(wanted)}) need -o: a base name (-o out/report writes "
                             + ", ".join(f"out/report{EXTENSIONS.get(f, '.' + f)}" for f in wanted)
                             + ") or one -o per format")
        return [(wanted[0] if wanted else "table", None)]
    if not wanted:
        if len(outputs) == 1:
            return [(format_of_path(outputs[0]) or "table", outputs[0])]
        plan: list[tuple[str, str | None]] = []
        for path in outputs:
            fmt = format_of_path(path)
            if fmt is None:
                raise ValueError(f"cannot tell the format of {path} from its extension (.json, .sarif, .xml, .csv, "
                                 ".md, .html, .txt): add --format")
            plan.append((fmt, path))
        return _distinct(plan)
    if len(outputs) == len(wanted):
        return _distinct(list(zip(wanted, outputs, strict=True)))
    if len(outputs) == 1:
        base = outputs[0]
        fmt = format_of_path(base)
        if fmt is not None and fmt in wanted:
            lower = base.lower()
            ext = ".sarif.json" if lower.endswith(".sarif.json") else "." + lower.rsplit(".", 1)[-1]
            base = base[: -len(ext)]
        return _distinct([(f, base + EXTENSIONS.get(f, "." + f)) for f in wanted])
    raise ValueError(f"{len(outputs)} -o files for {len(wanted)} formats: give one --format per -o (in the same "
                     "order), one -o as a base name for all the formats, or no --format to go by the extensions")


def _distinct(plan: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    seen: set[str] = set()
    for _fmt, path in plan:
        if path is not None:
            if path in seen:
                raise ValueError(f"two reports would be written to {path}")
            seen.add(path)
    return plan
