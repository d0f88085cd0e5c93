"""The audit as GitHub-flavoured Markdown, for pull-request comments.

Everything in an audit document that came from a capture (host names, app labels, URLs, encoding
chains, redacted values) is attacker-controlled, and so is everything in a document someone
hands us. GitHub renders inline HTML, links, images, autolinks, @mentions and issue references
in comments, so no such string reaches the output unescaped. Two forms are used:

* :func:`md_code` puts identifiers (hosts, apps, paths, values) in an inline code span: nothing
  inside a code span is HTML, a link, emphasis, a mention or an issue reference. The fence is
  longer than any run of backticks inside, ``|`` is written ``\\|`` inside tables (GFM splits
  table rows before it reads code spans), and line breaks and other control or format
  characters are shown as ``\\n``, ``\\u202e``... so that a string can neither end the line nor
  hide what it is.
* :func:`md_text` escapes prose: every ASCII punctuation character that means something to
  CommonMark, GFM or GitHub is backslash-escaped (CommonMark lets any ASCII punctuation be
  escaped, and then it is plain text: no ``<tag>``, ``&entity;``,
  ``[link](...)``, ``![image]``, ``*emphasis*``, table cell break, heading or list marker, and no
  ``www.`` / ``http://`` / e-mail autolink, since the autolink extension needs the unescaped
  ``:`` ``.`` ``@``); a word joiner after ``@`` and ``#`` keeps GitHub from reading a mention or
  an issue reference in the rendered text.

Long strings are cut (the JSON document has them whole), long tables are folded in
``<details>``, and tables show at most ``max_rows`` rows, so that a comment stays within
GitHub's size limit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from datareach.report.service_wording import service_parts
from datareach.report.wording import (
    BY_AS_NOTE,
    ROW_LABELS,
    VERDICT_LABELS,
    bases_line,
    bulk_count_line,
    bulk_order,
    bulk_title,
    by_network_only,
    category_label,
    hosted_by,
    owner_parts,
    owner_summary_line,
    period_line,
    reach_by_jurisdiction,
    undeterminable_locations,
    where_parts,
)

#: Tables longer than this are folded in ``<details>``.
FOLD_ROWS = 10
#: Rows shown per table by default (the JSON has them all).
MAX_ROWS = 50
#: Characters shown of one captured string (the JSON has it whole).
MAX_CHARS = 160

#: The ASCII punctuation that means something to CommonMark, GFM or GitHub (``$`` is math there):
#: all of it can be backslash-escaped. ``.`` and ``:`` are escaped to stop ``www.`` and
#: ``scheme:`` autolinks; the rest (``,;'"/?%``) is plain text anywhere we write it.
_PUNCT = frozenset("\\`*_{}[]()<>#+-.!|&~:@$=^")
_HIDDEN = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))  # control, format (bidi, zero-width), separators, surrogates
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_WORD_JOINER = "\u2060"
_HEX64 = re.compile(r"[0-9a-f]{64}")

VERDICTS = {"fail": "❌ FAIL", "warn": "⚠️ warn", "pass": "✅ pass"}


def visible(value: object, limit: int = MAX_CHARS) -> str:
    """``value`` as one line of text: cut to ``limit`` characters, and line breaks, control and
    format characters (bidi overrides, zero-width characters) and lone surrogates shown as
    escapes (``\\n``, ``\\u202e``)."""
    s = value if isinstance(value, str) else str(value)
    cut = len(s) > limit
    if cut:
        s = s[:limit]
    out = []
    for ch in s:
        named = _NAMED.get(ch)
        if named is not None:
            out.append(named)
        elif ch.isascii() and ch.isprintable():
            out.append(ch)
        elif unicodedata.category(ch) in _HIDDEN:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    if cut:
        out.append("…")
    return "".join(out)


def md_text(value: object, limit: int = MAX_CHARS) -> str:
    """Prose that renders as exactly this text: nothing becomes markup, a link or a mention."""
    out = []
    for ch in visible(value, limit):
        if ch in _PUNCT:
            out.append("\\" + ch)
            if ch in "@#":
                out.append(_WORD_JOINER)
        else:
            out.append(ch)
    return "".join(out)


def md_code(value: object, *, table: bool = False, limit: int = MAX_CHARS) -> str:
    """An inline code span showing exactly ``value`` (see the module docstring)."""
    s = visible(value, limit)
    if not s:
        return "(empty)"
    if table:
        s = s.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space from each side when both are there: pad when the content
    # starts or ends with a backtick or a space, so that it is shown as it is
    pad = " " if s[0] in "` " or s[-1] in "` " else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def md_list(values: Iterable[object], *, code: bool = False, table: bool = False, empty: str = "none") -> str:
    items = [md_code(v, table=table) if code else md_text(v) for v in values]
    return ", ".join(items) if items else empty


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, what: str, max_rows: int = MAX_ROWS) -> str:
    """A GFM table of already-escaped cells; folded in ``<details>`` when long, cut at ``max_rows``."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows[:max_rows]]
    if len(rows) > max_rows:
        lines.append("")
        lines.append(f"… and {len(rows) - max_rows} more {what}: see the JSON document.")
    table = "\n".join(lines)
    if len(rows) > FOLD_ROWS:
        return f"<details><summary>{len(rows)} {what}</summary>\n\n{table}\n\n</details>"
    return table


def owner_cell(d: dict[str, Any]) -> str:
    """``Owner → ultimate parent (HQ) \\[by as\\]`` (see :mod:`.wording`), every name escaped."""
    w = owner_parts(d.get("owner"))
    if w is None:
        hosts = hosted_by(d.get("hosting"))
        return "owner unknown, hosted by " + md_list(hosts) if hosts else "not in the knowledge base"
    text = md_text(w.name)
    if w.parent is not None:
        text += " → " + md_text(w.parent)
    if w.parent_country:
        text += f" ({md_text(w.parent_country)})"
    if w.basis_note is not None:
        # the basis as the document spells it ("as", "cname"); the table writes "by AS"
        text += f" \\[by {md_text(w.basis)}\\]"
    return text


def service_cell(d: dict[str, Any]) -> str:
    """``AppsFlyer SDK — attribution`` (see :mod:`.service_wording`), every name escaped; empty
    when no service is known."""
    w = service_parts(d.get("service"))
    if w is None:
        return ""
    text = f"{md_text(w.name)} — {md_text(w.purpose)}"
    if w.vendor is not None:
        text += f" (vendor: {md_text(w.vendor)}{', ' + md_text(w.vendor_country) if w.vendor_country else ''})"
    return text


def reach_cell(d: dict[str, Any]) -> str:
    """``CN (owner), US (host, location)`` (see :mod:`.wording`), every name escaped."""
    reach = d.get("reach") or []
    items = [f"{md_text(j)} ({md_list(b)})" for j, b in reach_by_jurisdiction(reach)]
    items += [md_text(x) for x in undeterminable_locations(reach)]
    return ", ".join(items) or "none known"


def _server_cell(d: dict[str, Any]) -> str:
    return md_list(where_parts(d), empty="?")


def _bytes(n: object) -> str:
    if not isinstance(n, int):
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _reach_of_data(doc: dict[str, Any]) -> list[tuple[str, list[str], list[str], list[str]]]:
    """(jurisdiction, data categories, data types, hosts) for each state that can reach data."""
    by_j: dict[str, tuple[set[str], set[str], set[str]]] = {}
    for d in doc.get("destinations") or []:
        types = d.get("data_types") or []
        if not types:
            continue
        for r in d.get("reach") or []:
            if not r.get("jurisdiction"):
                continue  # (an anycast / CDN edge server's location: not determinable)
            cats, kinds, hosts = by_j.setdefault(str(r.get("jurisdiction")), (set(), set(), set()))
            cats.update(map(str, d.get("data_categories") or []))
            kinds.update(map(str, types))
            hosts.add(str(d.get("host")))
    return [(j, sorted(c), sorted(t), sorted(h)) for j, (c, t, h) in sorted(by_j.items())]


def _violation_block(v: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    icon = {"deny": "❌", "warn": "⚠️"}.get(str(v.get("action")), "•")
    if v.get("allowed"):
        icon = "☑️"
    head = (f"- {icon} **{md_text(v.get('rule', '?'))}** ({md_text(v.get('policy', '?'))}, "
            f"{md_text(v.get('action', '?'))}): {md_text(v.get('title', ''))}")
    out = [head]
    where = f"host {md_code(v.get('host', '?'))}"
    if v.get("app"):
        where += f", app {md_code(v['app'])}"
    out.append(f"  - Where: {where}; jurisdictions {md_list(v.get('jurisdictions') or [])}"
               f" (basis: {md_list(v.get('bases') or [])})")
    if v.get("data_types"):
        out.append(f"  - Data: {md_list(v['data_types'], code=True)} "
                   f"({md_list(v.get('data_categories') or [])})")
    if v.get("reasoning"):
        out.append(f"  - Why: {md_text(v['reasoning'], limit=1000)}")
    for p in (v.get("paths") or [])[:5]:
        if isinstance(p, dict):
            steps = " → ".join(md_text(s) for s in p.get("path") or [])
            j = p.get("jurisdiction") or ("not determinable" if p.get("basis") == "location" else "?")
            out.append(f"  - Path ({md_text(j)}, {md_text(p.get('basis', '?'))}): {steps}")
    if v.get("citation"):
        out.append(f"  - Citation: {md_text(v['citation'])}")
    if v.get("mechanism"):
        out.append(f"  - What would make it lawful: {md_text(v['mechanism'], limit=1000)}")
    allowed = v.get("allowed")
    if isinstance(allowed, dict):
        until = f" (until {md_text(allowed['until'])})" if allowed.get("until") else ""
        out.append(f"  - Allowed: {md_text(allowed.get('reason', ''), limit=500)}{until}")
    return out


def render_markdown(doc: dict[str, Any], *, max_rows: int = MAX_ROWS) -> str:
    """The audit document (:meth:`datareach.api.Audit.to_dict`) as GitHub-flavoured Markdown."""
    s = doc.get("summary") or {}
    verdict = s.get("verdict")
    counts = s.get("violations") or {}
    title = "## datareach audit: "
    if verdict in VERDICTS:
        title += VERDICTS[verdict]
        title += (f" ({int(counts.get('deny', 0))} deny, {int(counts.get('warn', 0))} warn, "
                  f"{int(counts.get('allowed', 0))} allowed)")
    else:
        title += "no policy given"
    out = [title, ""]

    dests = doc.get("destinations") or []
    findings = doc.get("findings") or []
    out.append(f"- **{_count(len(dests), 'destination')}** ({int(s.get('registrable_domains', 0))} registrable "
               f"domains) over {_count(int(s.get('connections', 0)), 'connection')}; sent "
               f"{_bytes(s.get('bytes_out'))}, received {_bytes(s.get('bytes_in'))}; server countries: "
               f"{md_list(s.get('countries') or [])}")
    if s.get("apps"):
        out.append(f"- Apps: {md_list(s['apps'], code=True)}")
    out.append(f"- Owners (ultimate parents): {md_list(s.get('owners') or [])}"
               + (f"; {int(s.get('unattributed', 0))} destinations not in the knowledge base"
                  if s.get("unattributed") else ""))
    out.append(f"- Jurisdictions whose laws reach a destination: {md_list(s.get('jurisdictions') or [])}")
    out.append(f"- Personal data: {_count(len(findings), 'finding')}"
               + (f" ({md_list(s.get('data_types') or [], code=True)})" if findings else ""))
    if s.get("errors"):
        out.append(f"- ⚠️ {_count(int(s['errors']), 'input error')}: part of the input could not be read "
                   "(see the JSON document)")
    for w in s.get("undecoded_warnings") or []:
        out.append(f"- ⚠️ {md_text(w, 400)}")
    for w in s.get("data_warnings") or []:
        out.append(f"- ⚠️ Dates: {md_text(w, 400)}")
    local = doc.get("local") or []
    if local:
        out.append("- Local network traffic, not counted as destinations: "
                   + md_list([f"{g.get('protocol')} {g.get('connections')}" for g in local]))
    policies = doc.get("policies") or []
    if policies:
        out.append(f"- Policies: {md_list([p.get('id', '?') for p in policies], code=True)}")
    out.append("")

    out += _organisation(doc, max_rows)

    reach = _reach_of_data(doc)
    if reach:
        out += ["### Who can reach which data", ""]
        rows = [[md_text(j), md_list(c), md_list(t, code=True, table=True), md_list(h, code=True, table=True)]
                for j, c, t, h in reach]
        out += [md_table(["Jurisdiction", "Data categories", "Data types", "Through"], rows,
                         what="jurisdictions", max_rows=max_rows), ""]

    violations = [v for v in doc.get("violations") or [] if isinstance(v, dict)]
    if policies or violations:
        out += ["### Policy violations", ""]
        groups = [("Deny", [v for v in violations if v.get("action") == "deny" and not v.get("allowed")]),
                  ("Warn", [v for v in violations if v.get("action") != "deny" and not v.get("allowed")]),
                  ("Allowed", [v for v in violations if v.get("allowed")])]
        if not violations:
            out += ["None.", ""]
        for name, group in groups:
            if not group:
                continue
            out += [f"**{name}** ({len(group)})", ""]
            for v in group[:max_rows]:
                out += _violation_block(v, doc)
            if len(group) > max_rows:
                out.append(f"- … and {len(group) - max_rows} more: see the JSON document.")
            out.append("")

    out += [f"### Destinations ({len(dests)})", ""]
    order = sorted(dests, key=lambda d: (not d.get("data_types"), str(d.get("app") or ""), str(d.get("host"))))
    rows = [[md_code(d.get("host", "?"), table=True), md_code(d["app"], table=True) if d.get("app") else "",
             _server_cell(d), owner_cell(d), service_cell(d), reach_cell(d),
             md_list(d.get("data_types") or [], code=True, table=True, empty="")] for d in order]
    out += [md_table(["Host", "App", "Server", "Owner → ultimate parent", "Service — purpose", "Reach (basis)",
                      "Data types"], rows,
                     what="destinations", max_rows=max_rows), ""]

    if findings:
        out += [f"### Personal data found ({len(findings)})", ""]
        rows = [[md_code(f.get("host", "?"), table=True), md_code(f.get("data_type", "?"), table=True),
                 " › ".join(md_code(e, table=True) for e in f.get("encoding") or []) or "as is",
                 md_code(f.get("location", "?"), table=True), md_code(f.get("value_redacted", ""), table=True)]
                for f in findings]
        out += [md_table(["Host", "Data type", "Encoding chain", "Location", "Value (redacted)"], rows,
                         what="findings", max_rows=max_rows), ""]

    out += _provenance(doc, max_rows)
    return "\n".join(out).rstrip("\n") + "\n"


_BULK_ICONS = {"above": "❌", "cannot tell": "❔", "below": "✅"}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _num(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _organisation(doc: dict[str, Any], max_rows: int) -> list[str]:
    """The organisation section of a log audit (nothing for a capture's document): the period,
    the bulk-data counts with their verdicts and bounds, the owners and the client devices that
    talk to covered owners."""
    org = doc.get("organisation")
    if not isinstance(org, dict):
        return []
    rows: dict[str, Any] = org["rows"] if isinstance(org.get("rows"), dict) else {}
    out = ["### Organisation", "",
           f"- Period: {md_text(period_line(org.get('period')))}",
           "- Rows read: " + (md_text(", ".join(f"{_num(v)} {ROW_LABELS.get(str(k), k)}" for k, v in rows.items()))
                              or "none"), ""]
    bulk = bulk_order(_dicts(org.get("bulk")))
    out += [f"#### {md_text(bulk_title())}", ""]
    if not bulk:
        out += ["No covered counterparty in the traffic.", ""]
    common = {str(b.get("bounds") or "") for b in bulk}
    for b in bulk[:max_rows]:
        verdict = str(b.get("verdict"))
        who = md_text(b.get("counterparty") or b.get("counterparty_id") or "?")
        if b.get("parent") and b.get("parent") != b.get("counterparty"):
            who += " → " + md_text(b["parent"])
        cat = b.get("category")
        what = md_text(category_label(str(cat))) + f" ({md_code(cat)})" if cat else "no data category read"
        out.append(f"- {_BULK_ICONS.get(verdict, '•')} **{md_text(VERDICT_LABELS.get(verdict, verdict))}**: "
                   f"{who}; {what}")
        out.append(f"  - Count: {md_text(bulk_count_line(b), limit=1000)}")
        out.append(f"  - Why: {md_text(b.get('reason') or '', limit=1000)}")
        if len(common) > 1:
            out.append(f"  - Bounds: {md_text(b.get('bounds') or '', limit=1000)}")
    if len(bulk) > max_rows:
        out.append(f"- … and {len(bulk) - max_rows} more: see the JSON document.")
    if bulk:
        out.append("")
        if len(common) == 1:
            out += [f"Bounds of every count: {md_text(common.pop(), limit=1000)}", ""]
    owners = _dicts(org.get("owners"))
    if owners:
        network_only = by_network_only(_dicts(doc.get("destinations")))
        out += [f"#### Owners the traffic went to ({len(owners)})", ""]
        table = [[md_text(owner_summary_line(o, network_only)), "**covered**" if o.get("covered") else "",
                  md_text(bases_line(o.get("bases") or o.get("jurisdictions") or [])),
                  _bytes(o.get("bytes_out")), _bytes(o.get("bytes_in")), _num(o.get("connections")),
                  _num(o.get("clients")), _num(o.get("destinations")), md_text(o.get("first_seen") or "?"),
                  md_text(o.get("last_seen") or "?")] for o in owners]
        out += [md_table(["Owner → ultimate parent", "Covered person", "Reach (basis)", "Sent", "Received",
                          "Connections", "Client devices", "Hosts", "First seen", "Last seen"], table,
                         what="owners", max_rows=max_rows), ""]
        if any(str(o.get("owner_id")) in network_only for o in owners):
            out += [md_text(f"[{BY_AS_NOTE}]"), ""]
    clients = _dicts(org.get("clients"))
    if clients:
        limits: dict[str, Any] = org["limits"] if isinstance(org.get("limits"), dict) else {}
        left = limits.get("clients_left_out")
        total = len(clients) + (left if isinstance(left, int) and not isinstance(left, bool) else 0)
        out += [f"#### Client devices that talk to covered owners ({total})", ""]
        table = [[md_code(c.get("client") or "?", table=True),
                  md_code(c["client_ip"], table=True) if c.get("client_ip") else "",
                  md_code(c["host_name"], table=True) if c.get("host_name") else "",
                  md_list(c.get("owners") or []), _bytes(c.get("bytes_out")), _bytes(c.get("bytes_in")),
                  _num(c.get("connections"))] for c in clients]
        out += [md_table(["Device", "Address", "Host name (DHCP)", "Covered owners", "Sent", "Received",
                          "Connections"], table, what="client devices", max_rows=max_rows), ""]
        if total > len(clients):
            out += [f"{total - len(clients)} more client devices: in clients.parquet (`-o DIR/`).", ""]
    return out


def sha_cell(value: object) -> str:
    return md_code(value) if isinstance(value, str) and _HEX64.fullmatch(value) else md_text(value or "?")


def _provenance(doc: dict[str, Any], max_rows: int) -> list[str]:
    tool = doc.get("tool") or {}
    out = ["<details><summary>Provenance</summary>", "",
           f"datareach {md_text(tool.get('version', '?'))}, document generated at "
           f"{md_text(doc.get('generated_at') or '?')} (schema {md_text(doc.get('schema_version', '?'))}).", ""]
    rows = [[md_code(i.get("path", "?"), table=True), md_text(i.get("format") or "unrecognised"),
             _bytes(i.get("size")), sha_cell(i.get("sha256")), str(len(i.get("errors") or []))]
            for i in doc.get("inputs") or [] if isinstance(i, dict)]
    out += ["Inputs:", "", md_table(["Path", "Format", "Size", "SHA-256", "Errors"], rows, what="inputs",
                                     max_rows=max_rows), ""]
    rows = [[md_text(d.get("name", "?")), md_text(d.get("version") or "?"), md_text(d.get("date") or "undated"),
             md_text(d.get("licence") or ""), md_text(d.get("credit") or "")]
            for d in doc.get("data_sources") or [] if isinstance(d, dict)]
    out += ["Data sources:", "", md_table(["Name", "Version", "Date", "Licence", "Credit"], rows,
                                          what="data sources", max_rows=max_rows), ""]
    policies = [p for p in doc.get("policies") or [] if isinstance(p, dict)]
    if policies:
        rows = [[md_code(p.get("id", "?"), table=True), md_code(p.get("origin", "?"), table=True),
                 sha_cell(p.get("sha256"))] for p in policies]
        out += ["Policies:", "", md_table(["Policy", "Origin", "SHA-256"], rows, what="policies",
                                          max_rows=max_rows), ""]
    out += ["</details>", ""]
    return out
