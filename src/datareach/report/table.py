"""The terminal table: destinations grouped by app and registrable domain."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

#: Findings listed under the table; the JSON has them all.
MAX_FINDINGS_SHOWN = 30


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _where(d: dict[str, Any]) -> str:
    scope = d.get("ip_scope")
    if scope and scope != "public":
        return str(scope)
    countries = d.get("countries") or []
    if len(countries) > 1:
        return ",".join(countries)
    return str(d.get("country") or "?")


def build_table(doc: dict[str, Any]) -> list[Table]:
    """One rich Table per app (a single one when the capture does not say which app)."""
    by_app: dict[str | None, list[dict[str, Any]]] = {}
    for d in doc["destinations"]:
        by_app.setdefault(d.get("app"), []).append(d)
    tables = []
    for app, dests in by_app.items():
        title = f"App: {app}" if app else "Destinations"
        t = Table(title=escape(title), title_justify="left", show_lines=False, expand=False)
        t.add_column("Registrable domain / host", overflow="fold")
        t.add_column("Country")
        t.add_column("AS organisation", overflow="fold")
        t.add_column("Sent", justify="right")
        t.add_column("Received", justify="right")
        t.add_column("Conns", justify="right")
        t.add_column("Named by")
        t.add_column("Data received", overflow="fold")
        groups: dict[str, list[dict[str, Any]]] = {}
        for d in dests:
            groups.setdefault(d.get("registrable_domain") or d["host"], []).append(d)
        ordered = sorted(groups.items(), key=lambda kv: -sum(d["bytes_out"] for d in kv[1]))
        for domain, members in ordered:
            if len(members) > 1 or members[0]["host"] != domain:
                t.add_row(
                    Text(domain, style="bold"), "", "",
                    human_bytes(sum(d["bytes_out"] for d in members)),
                    human_bytes(sum(d["bytes_in"] for d in members)),
                    str(sum(d["connections"] for d in members)), "", "",
                )
                indent = "  "
            else:
                indent = ""
            for d in sorted(members, key=lambda d: -d["bytes_out"]):
                host = Text(indent + d["host"])
                if d.get("ech"):
                    host.append(" [ECH]", style="yellow")
                t.add_row(
                    host, Text(_where(d)), Text(d.get("as_org") or "?"),
                    human_bytes(d["bytes_out"]), human_bytes(d["bytes_in"]),
                    str(d["connections"]), Text(d["name_source"]),
                    Text(", ".join(d.get("data_types") or []), style="bold red"),
                )
        tables.append(t)
    return tables


def render_table(doc: dict[str, Any], *, color: bool = False, width: int | None = None) -> str:
    """The whole terminal report as a string (with ANSI colours when ``color``)."""
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, color_system="auto" if color else None,
                      width=width or 140, highlight=False, soft_wrap=False)
    s = doc["summary"]
    console.print(Text(
        f"{s['destinations']} destinations ({s['registrable_domains']} registrable domains) over "
        f"{s['connections']} connections; sent {human_bytes(s['bytes_out'])}, received "
        f"{human_bytes(s['bytes_in'])}; {s['exchanges']} HTTP requests seen in clear; "
        f"server countries: {', '.join(s['countries']) or 'none'}"
    ))
    for t in build_table(doc):
        console.print(t)
    findings = doc.get("findings") or []
    if findings:
        console.print(Text(f"Personal data found in requests ({len(findings)}):", style="bold"))
        for f in findings[:MAX_FINDINGS_SHOWN]:
            chain = " > ".join(f["encoding"]) or f["location"]
            shown = f.get("value", f["value_redacted"])
            console.print(Text(
                f"  {f['host']}: {f['data_type']} ({f['source']}, confidence {f['confidence']:.2f}) "
                f"at {f['location']}: {chain} = {shown}"
            ))
        if len(findings) > MAX_FINDINGS_SHOWN:
            console.print(Text(f"  ... and {len(findings) - MAX_FINDINGS_SHOWN} more: see --format json"))
    for inp in doc["inputs"]:
        for e in inp["errors"]:
            where = f" at offset {e['offset']}" if e.get("offset") is not None else ""
            where += f" at {e['json_path']}" if e.get("json_path") else ""
            console.print(Text(f"error in {inp['path']}{where}: {e['message']}", style="red"))
    srcs = "; ".join(f"{d['name']} ({d.get('date') or d.get('version') or 'undated'})" for d in doc["data_sources"])
    console.print(Text(f"Data: {srcs}", style="dim"))
    return buf.getvalue()
