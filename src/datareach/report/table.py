"""The terminal table: destinations grouped by app and registrable domain.

Every string of the document may come from the input (a capture, a HAR, a document handed to
``datareach diff``), so each goes through :func:`~datareach.report.terminal.safe` before it is
printed: rich reads no markup in a ``Text``, but it passes escape sequences through to the
terminal.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from datareach.report.terminal import safe
from datareach.report.units import human_bytes
from datareach.report.wording import owner_line, reach_line, where

#: Findings listed under the table; the JSON has them all.
MAX_FINDINGS_SHOWN = 30


def owner_text(d: dict[str, Any]) -> str:
    """``Owner → ultimate parent`` for a destination (or an explained host); see :mod:`.wording`.
    Made printable (:func:`~datareach.report.terminal.safe`)."""
    return safe(owner_line(d.get("owner")))


def reach_text(d: dict[str, Any]) -> str:
    """Jurisdictions and their bases, e.g. ``CN (owner), US (host, location)``; see :mod:`.wording`.
    Made printable (:func:`~datareach.report.terminal.safe`)."""
    return safe(reach_line(d.get("reach") or [], unknown="?"))


def render_explain(docs: list[dict[str, Any]], date: str, *, color: bool = False, width: int | None = None) -> str:
    """``datareach explain`` as a table (plain lines beyond a few hundred hosts)."""
    buf = io.StringIO()
    if len(docs) > 500:
        for d in docs:
            buf.write(f"{safe(d['host'])}\t{owner_text(d)}\t{reach_text(d)}\n")
        return buf.getvalue()
    console = Console(file=buf, force_terminal=color, color_system="auto" if color else None,
                      width=width or 140, highlight=False, soft_wrap=False)
    t = Table(title=Text(f"Owners and legal reach as of {safe(date)}"), title_justify="left")
    t.add_column("Host", overflow="fold")
    t.add_column("Owner → ultimate parent", overflow="fold")
    t.add_column("HQ")
    t.add_column("Matched", overflow="fold")
    t.add_column("Reach (basis)", overflow="fold")
    for d in docs:
        o = d.get("owner")
        t.add_row(Text(safe(d["host"])), Text(owner_text(d)),
                  Text(safe(o["ultimate_parent"]["hq_country"] or "?") if o else ""),
                  Text(safe(f"{o['matched']} ({o['basis']})") if o else _unmatched(d)),
                  Text(reach_text(d)))
    console.print(t)
    printed: set[str] = set()  # (hosts of one owner share its footnote: each is printed once)
    for d in docs:
        for r in d.get("reach") or []:
            if r["basis"] in ("owner", "host") and r["laws"]:
                laws = "; ".join(f"{law['title']} {law['article'] or ''}".strip() for law in r["laws"])
                note = safe(f"{' -> '.join(r['path'])}: {laws}")
                if note not in printed:
                    printed.add(note)
                    console.print(Text(note, style="dim"))
    return buf.getvalue()


def _unmatched(d: dict[str, Any]) -> str:
    """The Matched cell of an explained host with no owner: an address's network, or nothing known."""
    net = d.get("network")
    if not net:
        return "not in the knowledge base"
    op = net.get("operator")
    parts = [f"network {op['matched']} ({op['name']})" if op else
             f"network {net.get('as_org') or 'unknown'} (operator not in the knowledge base)"]
    if net.get("country"):
        parts.append(f"in {net['country']}")
    if net.get("ip_scope") and net["ip_scope"] != "public":
        parts.append(f"{net['ip_scope']} address")
    return safe(", ".join(parts) + "; the service's owner is not known from an address")


def build_table(doc: dict[str, Any]) -> list[Table]:
    """One rich Table per app (a single one when the capture does not say which app)."""
    by_app: dict[str | None, list[dict[str, Any]]] = {}
    for d in doc["destinations"]:
        by_app.setdefault(d.get("app"), []).append(d)
    tables = []
    for app, dests in by_app.items():
        title = f"App: {safe(app)}" if app else "Destinations"
        t = Table(title=Text(title), title_justify="left", show_lines=False, expand=False)
        t.add_column("Registrable domain / host", overflow="fold")
        t.add_column("Server", overflow="fold")
        t.add_column("Owner → ultimate parent", overflow="fold")
        t.add_column("Reach (basis)", overflow="fold")
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
                    Text(safe(domain), style="bold"), "", "", "",
                    human_bytes(sum(d["bytes_out"] for d in members)),
                    human_bytes(sum(d["bytes_in"] for d in members)),
                    str(sum(d["connections"] for d in members)), "", "",
                )
                indent = "  "
            else:
                indent = ""
            for d in sorted(members, key=lambda d: -d["bytes_out"]):
                host = Text(indent + safe(d["host"]))
                if d.get("ech"):
                    host.append(" [ECH]", style="yellow")
                t.add_row(
                    host, Text(safe(where(d))), Text(owner_text(d)), Text(reach_text(d)),
                    human_bytes(d["bytes_out"]), human_bytes(d["bytes_in"]),
                    str(d["connections"]), Text(safe(d["name_source"])),
                    Text(safe(", ".join(d.get("data_types") or [])), style="bold red"),
                )
        tables.append(t)
    return tables


def render_table(doc: dict[str, Any], *, color: bool = False, width: int | None = None) -> str:
    """The whole terminal report as a string (with ANSI colours when ``color``)."""
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, color_system="auto" if color else None,
                      width=width or 140, highlight=False, soft_wrap=False)
    s = doc["summary"]
    console.print(Text(safe(
        f"{s['destinations']} destinations ({s['registrable_domains']} registrable domains) over "
        f"{s['connections']} connections; sent {human_bytes(s['bytes_out'])}, received "
        f"{human_bytes(s['bytes_in'])}; {s['exchanges']} HTTP requests read"
        f"{_encrypted_note(s)}; "
        f"server countries: {', '.join(s['countries']) or 'none'}"
    )))
    for w in s.get("undecoded_warnings") or []:
        console.print(Text(safe(f"warning: {w}"), style="bold yellow"))
    local = doc.get("local") or []
    if local:
        parts = ", ".join(f"{g['protocol']} {g['connections']}" for g in local[:12])
        console.print(Text(safe(f"Local network traffic, not counted as destinations (connections by protocol): "
                                f"{parts}{', ...' if len(local) > 12 else ''}"), style="dim"))
    for t in build_table(doc):
        console.print(t)
    findings = doc.get("findings") or []
    if findings:
        console.print(Text(f"Personal data found in requests ({len(findings)}):", style="bold"))
        for f in findings[:MAX_FINDINGS_SHOWN]:
            chain = " > ".join(f["encoding"]) or f["location"]
            shown = f.get("value", f["value_redacted"])
            inside = ", inside HTTPS" if f.get("encrypted_in_transit") else ""
            console.print(Text(safe(
                f"  {f['host']}: {f['data_type']} ({f['source']}, confidence {f['confidence']:.2f}{inside}) "
                f"at {f['location']}: {chain} = {shown}"
            )))
        if len(findings) > MAX_FINDINGS_SHOWN:
            console.print(Text(f"  ... and {len(findings) - MAX_FINDINGS_SHOWN} more: see --format json"))
    _print_violations(console, doc)
    for inp in doc["inputs"]:
        for e in inp["errors"]:
            where = f" at offset {e['offset']}" if e.get("offset") is not None else ""
            where += f" at {e['json_path']}" if e.get("json_path") else ""
            console.print(Text(safe(f"error in {inp['path']}{where}: {e['message']}"), style="red"))
    srcs = "; ".join(f"{d['name']} ({d.get('date') or d.get('version') or 'undated'})" for d in doc["data_sources"])
    console.print(Text(safe(f"Data: {srcs}"), style="dim"))
    inputs = "; ".join(f"{i['path']} (sha256 {i['sha256']})" for i in doc["inputs"])
    console.print(Text(safe(f"datareach {doc['tool']['version']}, {doc['generated_at']}; inputs: {inputs}"),
                       style="dim"))
    return buf.getvalue()


#: Violations listed in the terminal; the JSON has them all.
MAX_VIOLATIONS_SHOWN = 40
_VERDICT_STYLE = {"fail": "bold red", "warn": "bold yellow", "pass": "bold green"}


def _encrypted_note(s: dict[str, Any]) -> str:
    """What the summary line says of encrypted connections: decrypted, and left unread."""
    dec, unread = s.get("decrypted_connections", 0), s.get("encrypted_unread", 0)
    parts = []
    if dec:
        parts.append(f"{dec} encrypted connection{'s' if dec != 1 else ''} decrypted")
    if unread:
        parts.append(f"{unread} TLS/QUIC connection{'s' if unread != 1 else ''} not readable without "
                     f"{'their' if unread != 1 else 'its'} keys (--keylog)")
    return f" ({'; '.join(parts)})" if parts else ""


def _print_violations(console: Console, doc: dict[str, Any]) -> None:
    policies = doc.get("policies") or []
    if not policies:
        return
    s = doc["summary"]
    counts = s["violations"]
    names = ", ".join(p["id"] for p in policies)
    line = Text(safe(f"Policy verdict ({names}): "), style="bold")
    line.append(safe(str(s["verdict"]).upper()), style=_VERDICT_STYLE.get(str(s["verdict"]), ""))
    line.append(f" -- {counts['deny']} deny, {counts['warn']} warn, {counts['allowed']} allowed")
    console.print(line)
    shown = doc["violations"][:MAX_VIOLATIONS_SHOWN]
    for v in shown:
        mark = "ALLOWED" if v["allowed"] else safe(v["action"].upper())
        style = "green" if v["allowed"] else "red" if v["action"] == "deny" else "yellow"
        head = Text(f"  {mark} ", style=style)
        head.append(safe(f"{v['policy']}/{v['rule']}: {v['title']} -- {v['host']}"))
        if v["jurisdictions"]:
            head.append(safe(f" [{', '.join(v['jurisdictions'])}]"))
        console.print(head)
        console.print(Text(f"      {safe(v['reasoning'])}"))
        for p in v["paths"][:4]:
            console.print(Text(safe(f"      {p['basis']}: {' -> '.join(p['path'])}"), style="dim"))
        if v["allowed"]:
            console.print(Text(f"      allowed: {safe(v['allowed']['reason'])}", style="green"))
        elif v.get("mechanism"):
            console.print(Text(f"      needs: {safe(v['mechanism'])}", style="dim"))
    if len(doc["violations"]) > len(shown):
        console.print(Text(f"  ... and {len(doc['violations']) - len(shown)} more: see --format json"))
    for p in policies:
        for c in p.get("context") or []:
            console.print(Text(safe(f"  note ({p['id']}): {c}"), style="dim"))
