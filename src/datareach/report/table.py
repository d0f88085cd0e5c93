"""The terminal table: destinations grouped by app and registrable domain.

Every string of the document may come from the input (a capture, a HAR, a document handed to
``datareach diff``), so each goes through :func:`~datareach.report.terminal.safe` before it is
printed: rich reads no markup in a ``Text``, but it passes escape sequences through to the
terminal.

The report fits its width (:func:`report_width`: the terminal's, ``COLUMNS``, or
:data:`DEFAULT_WIDTH` on a pipe or in a file). It leads with the policy verdict and the personal
data found, and lists the destinations that received personal data first (then those a policy
flagged, then by bytes sent). From :data:`WIDE_MIN` columns on, the destinations are a table
with a column each; under it (or when a host name would take too much of the table), a list:
each host on a line of its own, its details on the lines below. A host name is never broken
(no cell folds or shortens it): it is whole on one line, to be read and copied.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from datareach.report.service_wording import service_line
from datareach.report.terminal import safe
from datareach.report.units import human_bytes
from datareach.report.wording import (
    BY_AS_NOTE,
    ROW_LABELS,
    VERDICT_LABELS,
    anycast_label,
    bases_line,
    bulk_count_line,
    bulk_order,
    bulk_title,
    by_network_only,
    category_label,
    destination_owner_line,
    owner_summary_line,
    period_line,
    reach_line,
    where,
)

#: Findings listed under the table; the JSON has them all.
MAX_FINDINGS_SHOWN = 30

#: The width of a report on a pipe or in a file, when ``COLUMNS`` does not say.
DEFAULT_WIDTH = 120
#: The narrowest report made: a narrower terminal wraps lines (host names stay whole).
MIN_WIDTH = 40
#: From this width on the destinations are a table; under it, a list (:func:`render_table`).
WIDE_MIN = 120
#: From this width on the table has a column each for the bytes sent and received, the
#: connections and how each host was named.
FULL_MIN = 150
#: The table's host column takes at most this share of the width; a longer host name makes the
#: report a list, where each host has a line of its own.
HOST_SHARE = 0.4

#: The columns' labels: what was sent (by the app, to the destination) and received (by the app).
HOST_LABEL = "Registrable domain / host"
DATA_LABEL = "Personal data sent"
OWNER_LABEL = "Owner → ultimate parent"
#: The service (SDK or product) and its purpose: a second line in the owner cell of a table.
SERVICE_LABEL = "Service — purpose"
OWNER_SERVICE_LABEL = f"{OWNER_LABEL}\n{SERVICE_LABEL}"
REACH_LABEL = "Reach (basis)"
SERVER_LABEL = "Server country"
SENT_LABEL = "Bytes sent"
RECEIVED_LABEL = "Bytes received"
CONNS_LABEL = "Conns"
NAMED_LABEL = "Named by"


def report_width(width: int | None = None, *, terminal: bool = False) -> int:
    """The width to render for: ``width`` when given; else ``COLUMNS`` when it is set, the
    terminal's width when ``terminal`` (standard output is one), :data:`DEFAULT_WIDTH`
    otherwise. Never under :data:`MIN_WIDTH`."""
    if width is None:
        if terminal:
            width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns  # (COLUMNS first)
        else:
            columns = os.environ.get("COLUMNS", "").strip()
            width = int(columns) if columns.isdigit() and int(columns) > 0 else DEFAULT_WIDTH
    return max(width, MIN_WIDTH)


def _console(buf: io.StringIO, color: bool, width: int) -> Console:
    """A console writing to ``buf``: plain text, without any escape sequence, unless ``color``."""
    return Console(file=buf, force_terminal=color, color_system="auto" if color else None,
                   width=width, highlight=False, soft_wrap=False, emoji=False, markup=False)


def owner_text(d: dict[str, Any]) -> str:
    """``Owner → ultimate parent`` for a destination (or an explained host); see :mod:`.wording`.
    Made printable (:func:`~datareach.report.terminal.safe`)."""
    return safe(destination_owner_line(d))


def service_text(d: dict[str, Any]) -> str:
    """``AppsFlyer SDK — attribution`` for a destination (or an explained host), "" when no
    service is known; see :mod:`.service_wording`. Made printable."""
    return safe(service_line(d.get("service")))


def owner_cell(d: dict[str, Any]) -> Text:
    """The owner cell: ``Owner → ultimate parent``, and the service on a second line."""
    text = Text(owner_text(d))
    service = service_text(d)
    if service:
        text.append("\n" + service, style="cyan")
    return text


def reach_text(d: dict[str, Any]) -> str:
    """Jurisdictions and their bases, e.g. ``CN (owner), US (host, location)``; see :mod:`.wording`.
    Made printable (:func:`~datareach.report.terminal.safe`)."""
    return safe(reach_line(d.get("reach") or [], unknown="?"))


def _print_host(console: Console, text: Text) -> None:
    """A line that starts with a host name: never folded, even past the width (the terminal
    wraps it then, the name stays whole to copy)."""
    console.print(text, no_wrap=True, overflow="ignore", crop=False)


def _details(rows: Iterable[tuple[str, Text]], indent: int) -> Table:
    """Label and value lines under a host, the values wrapped beside their labels."""
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.add_column(no_wrap=True, min_width=indent + 18)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(Text(" " * indent + label, style="dim"), value)
    return grid


def render_explain(docs: list[dict[str, Any]], date: str, *, color: bool = False, width: int | None = None) -> str:
    """``datareach explain`` as a table (plain lines beyond a few hundred hosts).

    ``width`` as :func:`report_width` (``color``: standard output is a terminal); under
    :data:`WIDE_MIN` columns, or with a host name too long for a table's column, each host is
    on a line of its own with its owner and reach on the lines below."""
    buf = io.StringIO()
    if len(docs) > 500:
        for d in docs:
            buf.write(f"{safe(d['host'])}\t{owner_text(d)}\t{reach_text(d)}\t{service_text(d)}\n")
        return buf.getvalue()
    width = report_width(width, terminal=color)
    console = _console(buf, color, width)
    title = Text(f"Owners and legal reach as of {safe(date)}", style="bold")
    rows = []
    for d in docs:
        o = d.get("owner")
        rows.append((safe(d["host"]), owner_cell(d),
                     safe(o["ultimate_parent"]["hq_country"] or "?") if o else "",
                     safe(f"{o['matched']} ({o['basis']})") if o else _unmatched(d),
                     reach_text(d)))
    host_w = max((len(r[0]) for r in rows), default=0)
    t = Table(title=title, title_justify="left")
    t.add_column("Host", no_wrap=True, min_width=host_w)
    t.add_column(OWNER_SERVICE_LABEL, overflow="fold")
    t.add_column("Parent HQ", no_wrap=True)
    t.add_column("Matched", overflow="fold")
    t.add_column(REACH_LABEL, overflow="fold")
    for host, owner, hq, matched, reach in rows:
        t.add_row(Text(host), owner, Text(hq), Text(matched), Text(reach))
    if width >= WIDE_MIN and host_w <= width * HOST_SHARE and _fits(console, t):
        console.print(t)
    else:
        console.print(title)
        for d, (host, _owner, hq, matched, reach) in zip(docs, rows, strict=True):
            _print_host(console, Text(host, style="bold"))
            lines = [(OWNER_LABEL, Text(owner_text(d) + (f" (HQ {hq})" if hq else "")))]
            if service_text(d):
                lines.append((SERVICE_LABEL, Text(service_text(d))))
            console.print(_details([*lines, ("Matched", Text(matched)), (REACH_LABEL, Text(reach))], 2))
    printed: set[str] = set()  # (hosts of one owner share its footnote: each is printed once)
    for d in docs:
        for r in d.get("reach") or []:
            if r["basis"] in ("owner", "host") and r["laws"]:
                laws = "; ".join(f"{law['title']} {law['article'] or ''}".strip() for law in r["laws"])
                note = safe(f"{' -> '.join(r['path'])}: {laws}")
                if note not in printed:
                    printed.add(note)
                    console.print(Text(note, style="dim"))
    return _trimmed(buf.getvalue())


def _unmatched(d: dict[str, Any]) -> str:
    """The Matched cell of an explained host with no owner: an address's network, or nothing known."""
    net = d.get("network")
    if not net:
        service = d.get("service")
        if isinstance(service, dict) and service.get("matched"):
            return safe(f"owner not in the knowledge base; service {service['matched']}")
        return "not in the knowledge base"
    op = net.get("operator")
    parts = [f"network {op['matched']} ({op['name']})" if op else
             f"network {net.get('as_org') or 'unknown'} (operator not in the knowledge base)"]
    label = anycast_label(net.get("anycast"))
    if label:
        parts.append(f"{label}, location not determinable from the address")
    elif net.get("country"):
        parts.append(f"in {net['country']}")
    if net.get("ip_scope") and net["ip_scope"] != "public":
        parts.append(f"{net['ip_scope']} address")
    return safe(", ".join(parts) + "; the service's owner is not known from an address")


# ------------------------------------------------------------------------------------------
# The audit


def _flagged(doc: dict[str, Any]) -> set[str]:
    """The destinations (ids) a policy rule flagged and no exception allowed."""
    return {str(v.get("destination")) for v in doc.get("violations") or [] if not v.get("allowed")}


def _rank(dests: list[dict[str, Any]], flagged: set[str]) -> tuple[bool, bool, int]:
    """Sort key of a destination or a group: those that received personal data first, then
    those a policy flagged, then by bytes sent."""
    return (not any(d.get("data_types") for d in dests), not any(str(d.get("id")) in flagged for d in dests),
            -sum(d["bytes_out"] for d in dests))


Group = tuple[str, list[dict[str, Any]]]


def ordered(doc: dict[str, Any]) -> list[tuple[str | None, list[Group]]]:
    """The destinations as the report lists them: by app, then by registrable domain, then by
    host; at each level those that received personal data first (see :func:`_rank`)."""
    flagged = _flagged(doc)
    by_app: dict[str | None, list[dict[str, Any]]] = {}
    for d in doc["destinations"]:
        by_app.setdefault(d.get("app"), []).append(d)
    apps = sorted(by_app.items(), key=lambda kv: _rank(kv[1], flagged))
    out: list[tuple[str | None, list[Group]]] = []
    for app, dests in apps:
        groups: dict[str, list[dict[str, Any]]] = {}
        for d in dests:
            groups.setdefault(d.get("registrable_domain") or d["host"], []).append(d)
        out.append((app, [(domain, sorted(members, key=lambda d: _rank([d], flagged)))
                          for domain, members in sorted(groups.items(), key=lambda kv: _rank(kv[1], flagged))]))
    return out


def _grouped(domain: str, members: list[dict[str, Any]]) -> bool:
    """Whether a registrable domain gets a line of its own, its hosts indented under it."""
    return len(members) > 1 or members[0]["host"] != domain


def _host_text(d: dict[str, Any], indent: str) -> Text:
    host = Text(indent + safe(d["host"]))
    if d.get("ech"):
        host.append(" [ECH]", style="yellow")
    return host


def _data_text(d: dict[str, Any]) -> Text:
    return Text(safe(", ".join(d.get("data_types") or [])), style="bold red")


def _host_width(groups: Iterable[Group]) -> int:
    """The widest host cell of a table (indent and ECH mark included)."""
    return max((len(safe(d["host"])) + (2 if _grouped(domain, members) else 0) + (6 if d.get("ech") else 0)
                for domain, members in groups for d in members), default=0)


def build_table(doc: dict[str, Any], width: int | None = None) -> list[Table]:
    """One rich Table per app (a single one when the capture does not say which app), the
    wide layout of :func:`render_table`. Under :data:`FULL_MIN` columns the bytes sent and
    received share a column, and the connections and how each host was named are left out
    (``--format json`` has them)."""
    tables = []
    full = width is None or width >= FULL_MIN
    for app, groups in ordered(doc):
        title = f"App: {safe(app)}" if app else "Destinations"
        t = Table(title=Text(title, style="bold"), title_justify="left", show_lines=False, expand=False)
        t.add_column(HOST_LABEL, no_wrap=True, min_width=_host_width(groups))
        kinds = [len(safe(k)) for _, ms in groups for d in ms for k in d.get("data_types") or []]
        t.add_column(DATA_LABEL, overflow="fold", min_width=min(max(kinds, default=-1) + 1, 21) or None)
        t.add_column(OWNER_SERVICE_LABEL, overflow="fold")
        t.add_column(REACH_LABEL, overflow="fold")
        t.add_column(SERVER_LABEL, overflow="fold", max_width=8)
        if full:
            t.add_column(SENT_LABEL, justify="right", max_width=8)
            t.add_column(RECEIVED_LABEL, justify="right", max_width=8)
            t.add_column(CONNS_LABEL, justify="right", no_wrap=True)
            t.add_column(NAMED_LABEL, overflow="fold", max_width=5)
        else:
            t.add_column(f"{SENT_LABEL} / received", justify="right", max_width=8)

        def traffic(dests: list[dict[str, Any]], named: str) -> list[Text]:
            sent, received = (human_bytes(sum(d[k] for d in dests)) for k in ("bytes_out", "bytes_in"))
            if not full:
                return [Text(f"{sent} / {received}")]
            return [Text(sent), Text(received), Text(str(sum(d["connections"] for d in dests))), Text(named)]

        for domain, members in groups:
            indent = ""
            if _grouped(domain, members):
                t.add_row(Text(safe(domain), style="bold"), "", "", "", "", *traffic(members, ""))
                indent = "  "
            for d in members:
                t.add_row(_host_text(d, indent), _data_text(d), owner_cell(d), Text(reach_text(d)),
                          Text(safe(where(d))), *traffic([d], safe(d["name_source"])))
        tables.append(t)
    return tables


def _print_list(console: Console, doc: dict[str, Any]) -> None:
    """The narrow layout: each host on a line of its own, its personal data, owner, reach,
    server country and traffic on the lines below."""
    for app, groups in ordered(doc):
        console.print(Text(f"App: {safe(app)}" if app else "Destinations", style="bold"))
        for domain, members in groups:
            indent = ""
            if _grouped(domain, members):
                _print_host(console, Text(safe(domain), style="bold"))
                indent = "  "
            for d in members:
                conns = d["connections"]
                traffic = (f"{safe(where(d))}; {human_bytes(d['bytes_out'])} sent, {human_bytes(d['bytes_in'])} "
                           f"received; {conns} connection{'s' if conns != 1 else ''} ({safe(d['name_source'])})")
                rows: list[tuple[str, Text]] = []
                if d.get("data_types"):
                    rows.append((DATA_LABEL, _data_text(d)))
                rows.append(("Owner → parent", Text(owner_text(d))))
                if service_text(d):
                    rows.append(("Service", Text(service_text(d))))
                rows += [(REACH_LABEL, Text(reach_text(d))), ("Server, traffic", Text(traffic, style="dim"))]
                _print_host(console, _host_text(d, indent))
                console.print(_details(rows, len(indent) + 4))


def render_table(doc: dict[str, Any], *, color: bool = False, width: int | None = None) -> str:
    """The whole terminal report as a string (with ANSI colours when ``color``, plain text
    otherwise). ``width`` as :func:`report_width` (``color``: standard output is a terminal).

    It leads with the policy verdict and the personal data found; the destinations follow (a
    table from :data:`WIDE_MIN` columns on, a list under it), then the findings, the policy
    rules matched, the errors and the data sources."""
    buf = io.StringIO()
    width = report_width(width, terminal=color)
    console = _console(buf, color, width)
    verdict = _verdict_line(doc)
    if verdict is not None:
        console.print(verdict)
    console.print(_data_line(doc))
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
    for w in s.get("data_warnings") or []:
        console.print(Text(safe(f"warning: {w}"), style="bold yellow"))
    local = doc.get("local") or []
    if local:
        parts = ", ".join(f"{g['protocol']} {g['connections']}" for g in local[:12])
        console.print(Text(safe(f"Local network traffic, not counted as destinations (connections by protocol): "
                                f"{parts}{', ...' if len(local) > 12 else ''}"), style="dim"))
    _print_organisation(console, doc, width)
    tables = build_table(doc, width) if width >= WIDE_MIN else []
    if tables and all(_host_width(groups) <= width * HOST_SHARE for _, groups in ordered(doc)) \
            and all(_fits(console, t) for t in tables):
        for t in tables:
            console.print(t)
    elif doc["destinations"]:
        console.print(Text(f"{HOST_LABEL}, then what each host was sent, its owner and its reach (a wider "
                           "terminal shows a table; --format json has every field):", style="dim"))
        _print_list(console, doc)
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
    credits = list(dict.fromkeys(str(d["credit"]) for d in doc["data_sources"] if d.get("credit")))
    if credits:
        console.print(Text(safe("Data credits: " + "; ".join(credits)), style="dim"))
    inputs = "; ".join(f"{i['path']} (sha256 {i['sha256']})" for i in doc["inputs"])
    console.print(Text(safe(f"datareach {doc['tool']['version']}, {doc['generated_at']}; inputs: {inputs}"),
                       style="dim"))
    return _trimmed(buf.getvalue())


# ------------------------------------------------------------------------------------------
# The organisation's view (log audits: the document's ``organisation``)

#: Owners and client devices listed in the terminal; the JSON and the Parquet tables have them all.
MAX_OWNERS_SHOWN = 40
MAX_CLIENTS_SHOWN = 20
_BULK_STYLE = {"above": "bold red", "below": "green", "cannot tell": "bold yellow"}


def _as_dicts(value: object) -> list[dict[str, Any]]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _seen(row: dict[str, Any]) -> str:
    first, last = (str(row.get(k) or "?")[:19].replace("T", " ") for k in ("first_seen", "last_seen"))
    return f"{first} – {last}"


def _print_organisation(console: Console, doc: dict[str, Any], width: int) -> None:
    """The organisation section of a log audit: the period and rows read, the bulk-data counts
    with their verdicts and bounds, the owners (covered ones marked) and the client devices that
    talk to covered owners. Nothing when the document has no ``organisation``."""
    org = doc.get("organisation")
    if not isinstance(org, dict):
        return
    rows = _obj(org.get("rows"))
    read = ", ".join(f"{_int(v):,} {ROW_LABELS.get(k, k)}" for k, v in rows.items())
    console.print(Text(safe(f"Organisation: logs from {period_line(org.get('period'))}; rows read: {read or 'none'}"),
                       style="bold"))
    bulk = bulk_order(_as_dicts(org.get("bulk")))
    common = {str(b.get("bounds") or "") for b in bulk}
    console.print(Text(safe(bulk_title() + (":" if bulk else ": no covered counterparty in the traffic.")),
                       style="bold"))
    for b in bulk:
        verdict = str(b.get("verdict"))
        head = Text("  ")
        head.append(safe(VERDICT_LABELS.get(verdict, verdict)), style=_BULK_STYLE.get(verdict, "bold"))
        who = str(b.get("counterparty") or b.get("counterparty_id") or "?")
        if b.get("parent") and b.get("parent") != who:
            who += f" → {b['parent']}"
        cat = b.get("category")
        head.append(safe(f"  {who}: {category_label(str(cat)) if cat else 'no data category read'}"))
        console.print(head)
        lines = [("Count", Text(safe(bulk_count_line(b)))), ("Why", Text(safe(b.get("reason") or "")))]
        if len(common) > 1:
            lines.append(("Bounds", Text(safe(b.get("bounds") or ""), style="dim")))
        console.print(_details(lines, 6))
    if len(common) == 1 and bulk:
        console.print(_details([("Bounds (all)", Text(safe(common.pop()), style="dim"))], 2))
    owners = _as_dicts(org.get("owners"))
    network_only = by_network_only(_as_dicts(doc.get("destinations")))
    if owners:
        console.print(Text(f"Owners the traffic went to ({len(owners)}), most bytes sent first; [covered]: a covered "
                           "person under us-doj-bulk-data:", style="bold"))
        shown = owners[:MAX_OWNERS_SHOWN]
        t = Table(show_lines=False, expand=False)
        t.add_column(OWNER_LABEL, overflow="fold")
        t.add_column(REACH_LABEL, overflow="fold")
        for label in (SENT_LABEL, RECEIVED_LABEL, CONNS_LABEL, "Clients"):
            t.add_column(label, justify="right", no_wrap=True)
        t.add_column("First – last seen", overflow="fold", max_width=21)
        cells = []
        for o in shown:
            name = Text(safe(owner_summary_line(o, network_only)))
            if o.get("covered"):
                name.append(" [covered]", style="bold red")
            cells.append((name, Text(safe(bases_line(o.get("bases") or o.get("jurisdictions") or [])))))
        for (name, reach), o in zip(cells, shown, strict=True):
            t.add_row(name, reach, Text(human_bytes(_int(o.get("bytes_out")))),
                      Text(human_bytes(_int(o.get("bytes_in")))), Text(f"{_int(o.get('connections')):,}"),
                      Text(f"{_int(o.get('clients')):,}"), Text(safe(_seen(o))))
        if width >= WIDE_MIN and _fits(console, t):
            console.print(t)
        else:
            for (name, reach), o in zip(cells, shown, strict=True):
                conns, devices = _int(o.get("connections")), _int(o.get("clients"))
                traffic = (f"{human_bytes(_int(o.get('bytes_out')))} sent, {human_bytes(_int(o.get('bytes_in')))} "
                           f"received; {conns:,} connection{'s' if conns != 1 else ''} from {devices:,} client "
                           f"device{'s' if devices != 1 else ''} to {_plural(_int(o.get('destinations')), 'host')}")
                console.print(Text("  ").append_text(name))
                console.print(_details([(REACH_LABEL, reach), ("Traffic", Text(traffic, style="dim")),
                                        ("Seen", Text(safe(_seen(o)), style="dim"))], 6))
        if len(owners) > len(shown):
            console.print(Text(f"  ... and {len(owners) - len(shown)} more: see --format json or owners.parquet"))
        if any(str(o.get("owner_id")) in network_only for o in shown):
            console.print(Text(f"  [{BY_AS_NOTE}]", style="dim"))
    clients = _as_dicts(org.get("clients"))
    if clients:
        total = len(clients) + _int(_obj(org.get("limits")).get("clients_left_out"))
        console.print(Text(f"Client devices that talk to covered owners ({total}), most bytes sent first:",
                           style="bold"))
        shown_c = clients[:MAX_CLIENTS_SHOWN]
        t = Table(show_lines=False, expand=False)
        t.add_column("Device", no_wrap=True)
        t.add_column("Address", no_wrap=True)
        t.add_column("Host name (DHCP)", overflow="fold")
        t.add_column("Covered owners", overflow="fold")
        for label in (SENT_LABEL, RECEIVED_LABEL, CONNS_LABEL):
            t.add_column(label, justify="right", no_wrap=True)
        for c in shown_c:
            t.add_row(Text(safe(c.get("client") or "?")), Text(safe(c.get("client_ip") or "")),
                      Text(safe(c.get("host_name") or "")), Text(safe(", ".join(map(str, c.get("owners") or [])))),
                      Text(human_bytes(_int(c.get("bytes_out")))), Text(human_bytes(_int(c.get("bytes_in")))),
                      Text(f"{_int(c.get('connections')):,}"))
        if width >= WIDE_MIN and _fits(console, t):
            console.print(t)
        else:
            for c in shown_c:
                conns = _int(c.get("connections"))
                _print_host(console, Text(safe(f"  {c.get('client') or '?'}"), style="bold"))
                device = [("Address", Text(safe(c.get("client_ip") or "?")))]
                if c.get("host_name"):
                    device.append(("Host name (DHCP)", Text(safe(c["host_name"]))))
                device += [("Covered owners", Text(safe(", ".join(map(str, c.get("owners") or []))))),
                        ("Traffic", Text(f"{human_bytes(_int(c.get('bytes_out')))} sent, "
                                         f"{human_bytes(_int(c.get('bytes_in')))} received; {conns:,} "
                                         f"connection{'s' if conns != 1 else ''}", style="dim"))]
                console.print(_details(device, 6))
        if total > len(shown_c):
            console.print(Text(f"  ... and {total - len(shown_c)} more: see --format json (the top 100) or "
                               "clients.parquet (all)"))


def _fits(console: Console, table: Table) -> bool:
    """Whether rich lays ``table`` out within the console's width: when the columns' least
    widths (a whole host name, a data type's name) add up to more, it would crop the lines."""
    extra = table._extra_width  # (the borders: what rich takes off the width before the columns)
    widths = table._calculate_column_widths(console, console.options.update_width(console.width - extra))
    return sum(widths) + extra <= console.width


def _trimmed(text: str) -> str:
    """``text`` without the spaces rich pads lines with."""
    return "\n".join(line.rstrip(" ") for line in text.split("\n"))


def _data_line(doc: dict[str, Any]) -> Text:
    """The personal data found, in a line: how many destinations received some, and which."""
    dests = doc["destinations"]
    sent = [d for d in dests if d.get("data_types")]
    if not sent:
        return Text("No personal data found in what could be read.")
    kinds = sorted({str(t) for d in sent for t in d["data_types"]})
    line = Text(f"Personal data sent to {len(sent)} of {len(dests)} destinations: ", style="bold")
    line.append(safe(", ".join(kinds)), style="bold red")
    return line


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


def _verdict_line(doc: dict[str, Any]) -> Text | None:
    """``Policy verdict (us-doj-bulk-data): WARN -- 0 deny, 4 warn, 0 allowed``; None without
    a policy."""
    policies = doc.get("policies") or []
    if not policies:
        return None
    s = doc["summary"]
    counts = s["violations"]
    names = ", ".join(p["id"] for p in policies)
    line = Text(safe(f"Policy verdict ({names}): "), style="bold")
    line.append(safe(str(s["verdict"]).upper()), style=_VERDICT_STYLE.get(str(s["verdict"]), ""))
    line.append(f" -- {counts['deny']} deny, {counts['warn']} warn, {counts['allowed']} allowed")
    return line


def _print_violations(console: Console, doc: dict[str, Any]) -> None:
    """The verdict again, and the rules each destination matched."""
    policies = doc.get("policies") or []
    line = _verdict_line(doc)
    if line is None:
        return
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
