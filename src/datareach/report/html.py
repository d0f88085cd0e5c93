"""The offline HTML report: one self-contained page from the audit JSON document.

:func:`render_html` takes :meth:`datareach.api.Audit.to_dict` and returns one HTML page that
needs nothing else: the style sheet, the script and the world map (``assets/``) are inlined, and
the document itself is embedded as JSON in ``<script type="application/json"
id="datareach-data">``.

Everything in the document that came from a capture (host names, URLs, app names, header
values...) is attacker-controlled, so:

* the parts rendered here (summary, who-can-reach-what, policy, map, flow, app by app, where
  each kind of personal data went, timeline, local and private addresses, violations, laws,
  provenance) escape every value with :func:`html.escape`, after showing control and format
  characters (C0 but tab and line breaks, DEL, C1, bidi embeddings, overrides, isolates and
  marks, zero-width characters: :data:`~datareach.report.terminal.CONTROL_CHARS`) as visible
  escapes (``\u202e``), as the terminal and Markdown reports do: a numeric character reference
  would still reverse the text around it; they are readable without JavaScript;
* the embedded JSON escapes ``<``, ``>``, ``&``, U+2028 and U+2029 (and all other non-ASCII) as
  ``\\uXXXX``, so that ``</script>`` in a host name cannot close the element;
* the only links are the laws' and rules' official sources, and only when a source is a plain
  ``http(s)`` URL (:func:`link`; anything else stays text), opened in a new tab with
  ``rel="noopener noreferrer"`` (the page also sets ``no-referrer``), plus links to the page's
  own sections (``#id``);
* the script (destinations table, evidence) builds the page with DOM calls and
  ``textContent`` only; the one URL it sets is the ``blob:`` URL of the CSV export it makes
  itself (a download of the destinations that match the filters), and no element gets a ``src``;
* a Content-Security-Policy in a ``<meta>`` allows exactly the inline script and style by their
  SHA-256 (computed here), nothing else: ``default-src 'none'``, no ``unsafe-inline`` or
  ``unsafe-eval``, no base URI, no form targets, and Trusted Types required so that no HTML
  string can ever be assigned to a DOM sink.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from datareach.report.service_wording import service_parts
from datareach.report.terminal import CONTROL_CHARS, safe
from datareach.report.units import human_bytes
from datareach.report.wording import (
    BY_AS_NOTE,
    ROW_LABELS,
    VERDICT_LABELS,
    bases_line,
    bulk_order,
    bulk_title,
    by_network_only,
    category_label,
    hosted_by,
    owner_summary_line,
    period_line,
    undeterminable_locations,
)

#: Nodes per column of the flow diagram before the rest are grouped as "N others".
FLOW_MAX_NODES = 12
#: Characters of a name shown in an SVG label (the full name is in its tooltip).
LABEL_CHARS = 30

DATA_LABELS = {
    "advertising_id": "advertising ID",
    "android_id": "Android ID",
    "imei": "IMEI",
    "serial": "serial number",
    "mac": "MAC address",
    "mac_address": "MAC address",
    "email": "e-mail address",
    "phone": "phone number",
    "name": "name",
    "location": "location",
    "precise_location": "precise location",
    "ip": "IP address",
    "private_ip": "private IP address",
    "vendor_id": "vendor ID",
    "wifi_ssid": "Wi-Fi network name",
    "wifi_bssid": "Wi-Fi access point",
    "device_fingerprint": "device fingerprint",
}
BASIS_LABELS = {"owner": "owner", "host": "network host", "location": "server location"}


# ------------------------------------------------------------------------------------------
# Helpers


def _visible(m: re.Match[str]) -> str:
    return safe(m.group())


def _clean(value: object) -> str:
    """``str(value)`` with lone surrogates (which cannot be written as UTF-8) replaced, and
    control and format characters shown as escapes (``\x1b``, ``\u202e``; see the module
    docstring)."""
    text = "" if value is None else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if CONTROL_CHARS.search(text) is not None:
        text = CONTROL_CHARS.sub(_visible, text)
    return text


def esc(value: object) -> str:
    """Escape any value for HTML text and quoted attribute values (also inside SVG)."""
    return html.escape(_clean(value), quote=True)


def _short(value: object, n: int = LABEL_CHARS) -> str:
    text = _clean(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _data_label(t: str) -> str:
    return DATA_LABELS.get(t, t.replace("_", " "))


#: Where a long id or name may wrap: after these separators (a ``<wbr>``), never mid-word.
_BREAK_AFTER = re.compile(r"(?<=[./:_@=?&,;+-])(?=.)")
_FRACTION = re.compile(r"(\d{2}:\d{2}:\d{2})\.\d+")
_LINKABLE = re.compile(r"https?://[^\s\"'<>`\\]+", re.IGNORECASE)
#: ``ip_scope`` values of destinations on the local network or at private addresses: listed apart,
#: not as destinations on the internet (the others, null included, are in the destinations table).
LOCAL_SCOPES = ("private", "loopback", "link-local", "multicast", "unspecified")


def brk(value: object) -> str:
    """:func:`esc`, with a ``<wbr>`` after each separator (``.``, ``/``, ``:``, ``-``...), so that host
    names, ids and URLs wrap at their separators instead of in the middle of a word."""
    return "<wbr>".join(html.escape(p, quote=True) for p in _BREAK_AFTER.split(_clean(value)))


def ts(value: object) -> str:
    """A document time for people: ``2024-05-14T08:12:05.865999Z`` -> ``2024-05-14 08:12:05Z``
    (no fractions of a second; the JSON keeps them)."""
    text = _FRACTION.sub(r"\1", _clean(value))
    return text.replace("T", " ", 1) if re.match(r"\d{4}-\d{2}-\d{2}T", text) else text


def link(url: object) -> str:
    """An official source as a link when it is a plain ``http(s)`` URL (anything else stays text):
    opened without referrer or opener, the URL escaped as an attribute value."""
    text = _clean(url)
    if _LINKABLE.fullmatch(text) is None:
        return f'<span class="url">{brk(text)}</span>'
    return (f'<a class="source" href="{esc(text)}" rel="noopener noreferrer" target="_blank" '
            f'data-testid="source-link">{brk(text)}</a>')


def _cat(c: str) -> str:
    """A finding category in plain words, the legal id on hover (and in the footnote)."""
    return f'<span class="tag cat" title="{esc(c)}" data-category="{esc(c)}">{esc(category_label(c))}</span>'


def _public(d: dict[str, Any]) -> bool:
    return d.get("ip_scope") not in LOCAL_SCOPES


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def embed_json(doc: dict[str, Any]) -> str:
    """The document as JSON that is safe inside a ``<script>`` element.

    ``ensure_ascii`` writes every non-ASCII character (U+2028 and U+2029 included) and lone
    surrogates as ``\\uXXXX``; ``<``, ``>`` and ``&`` are escaped the same way, so neither
    ``</script>`` nor ``<!--`` can appear in the element's text.
    """
    text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def csp_hash(text: str) -> str:
    """The CSP source expression for an inline element whose text is ``text``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


@cache
def _asset(name: str) -> str:
    return resources.files("datareach.report").joinpath("assets", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _world() -> dict[str, Any]:
    world: dict[str, Any] = json.loads(_asset("world-110m.json"))
    return world


# ------------------------------------------------------------------------------------------
# What the document says, gathered once


class _Facts:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.summary = _dict(doc.get("summary"))
        self.dests: list[dict[str, Any]] = [d for d in _list(doc.get("destinations")) if isinstance(d, dict)]
        self.findings: list[dict[str, Any]] = [f for f in _list(doc.get("findings")) if isinstance(f, dict)]
        self.policies: list[dict[str, Any]] = [p for p in _list(doc.get("policies")) if isinstance(p, dict)]
        self.violations: list[dict[str, Any]] = [v for v in _list(doc.get("violations")) if isinstance(v, dict)]
        self.juris_names: dict[str, str] = {}
        countries = _world()["countries"]
        for d in self.dests:
            for r in _list(d.get("reach")):
                if isinstance(r, dict) and r.get("jurisdiction"):
                    code = _clean(r["jurisdiction"])
                    name = _clean(r.get("name") or "")
                    if name in ("", code):  # the knowledge base has no name for it: the map's
                        name = _clean(_dict(countries.get(code)).get("name", ""))
                    self.juris_names.setdefault(code, name)
        self.with_data = [d for d in self.dests if _list(d.get("data_types"))]
        verdict = self.summary.get("verdict")
        self.verdict: str | None = verdict if verdict in ("pass", "warn", "fail") else None
        self.counts = _dict(self.summary.get("violations"))

    def jurisdictions(self) -> list[str]:
        js = self.summary.get("jurisdictions")
        if isinstance(js, list):
            return [_clean(j) for j in js]
        return sorted(self.juris_names)

    def n(self, key: str, default: int) -> int:
        v = self.summary.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else default


# ------------------------------------------------------------------------------------------
# Sections rendered here (readable without JavaScript)


def _header(f: _Facts) -> str:
    inputs = [_clean(_dict(i).get("path")) for i in _list(f.doc.get("inputs"))]
    firsts = sorted(_clean(d["first_seen"]) for d in f.dests if d.get("first_seen"))
    lasts = sorted(_clean(d["last_seen"]) for d in f.dests if d.get("last_seen"))
    span = f"traffic from {ts(firsts[0])} to {ts(lasts[-1])}" if firsts and lasts else "no traffic"
    return (
        '<header class="top"><div class="inner">'
        "<h1>Where did the data go?</h1>"
        f'<p data-testid="report-inputs">{esc(", ".join(inputs) or "no input")} · {esc(span)}</p>'
        f'<p class="small">datareach {esc(_dict(f.doc.get("tool")).get("version"))} · report made '
        f'{esc(ts(f.doc.get("generated_at")))}</p>'
        "</div></header>"
    )


def _card(testid: str, number: object, label: str, cls: str = "") -> str:
    return (f'<div class="card {cls}"><div class="num" data-testid="{testid}">{esc(number)}</div>'
            f'<div class="lbl">{esc(label)}</div></div>')


def _verdict(f: _Facts) -> str:
    names = ", ".join(_clean(p.get("name") or p.get("id")) for p in f.policies)
    if f.verdict is None:
        return ('<div class="verdict none" data-testid="verdict" data-verdict="none">'
                '<span class="badge">NO POLICY</span><span>No policy given: nothing was judged '
                "against a rule (run <code>datareach audit --policy NAME</code> to judge the traffic "
                "against one).</span></div>")
    deny, warn, allowed = _int(f.counts.get("deny")), _int(f.counts.get("warn")), _int(f.counts.get("allowed"))
    text = {
        "fail": f"{_plural(deny, 'data flow')} the policy forbids",
        "warn": f"{_plural(warn, 'data flow')} to look at; nothing forbidden",
        "pass": "Nothing the policy forbids or warns about",
    }[f.verdict]
    extra = []
    if f.verdict == "fail" and warn:
        extra.append(_plural(warn, "warning"))
    if allowed:
        extra.append(f"{allowed} allowed by an exception")
    tail = f" ({'; '.join(extra)})" if extra else ""
    return (f'<div class="verdict {f.verdict}" data-testid="verdict" data-verdict="{f.verdict}">'
            f'<span class="badge">{f.verdict.upper()}</span><span><strong>{esc(text)}</strong>{esc(tail)}. '
            f'Judged against: <span data-testid="summary-policies">{esc(names)}</span>.</span></div>')


def _jurisdiction_rows(f: _Facts) -> list[dict[str, Any]]:
    """Each jurisdiction with what it can reach: the personal data of the destinations it reaches
    that received some, and the companies (ultimate parents) of those very destinations, never
    of every destination it reaches (a state that reaches a company's servers that received
    nothing does not reach anyone's data through them)."""
    rows: dict[str, dict[str, Any]] = {}
    for idx, d in enumerate(f.dests):
        types = [_clean(t) for t in _list(d.get("data_types"))]
        cats = [_clean(c) for c in _list(d.get("data_categories"))]
        o = _dict(d.get("owner"))
        up = _dict(o.get("ultimate_parent")).get("name") or o.get("name")
        for r in _list(d.get("reach")):
            if not isinstance(r, dict) or not r.get("jurisdiction"):
                continue
            j = _clean(r["jurisdiction"])
            row = rows.setdefault(j, {"code": j, "name": f.juris_names.get(j, ""), "bases": defaultdict(set),
                                      "dests": set(), "types": set(), "cats": set(),
                                      "companies": defaultdict(set), "pd_dests": set()})
            row["dests"].add(idx)
            if not types:
                continue
            row["bases"][_clean(r.get("basis"))].add(idx)
            row["pd_dests"].add(idx)
            row["types"].update(types)
            row["cats"].update(cats)
            hosts = hosted_by(d.get("hosting"))
            company = _clean(up) if up else (
                f"{_clean(d.get('host'))} (owner unknown, hosted by {', '.join(_clean(h) for h in hosts)})" if hosts
                else f"{_clean(d.get('host'))} (owner not known)")
            row["companies"][company].update(types)
    return sorted(rows.values(), key=lambda r: (-len(r["pd_dests"]), -len(r["dests"]), r["code"]))


def _summary(f: _Facts) -> str:
    n_dest = f.n("destinations", len(f.dests))
    n_find = f.n("findings", len(f.findings))
    owners = [_clean(o) for o in _list(f.summary.get("owners"))]
    juris = f.jurisdictions()
    types = [_clean(t) for t in _list(f.summary.get("data_types"))]
    policy = f.verdict is not None
    cards = [
        _card("summary-destinations", n_dest, "destinations"),
        _card("summary-owners", len(owners), "companies (ultimate parents)"),
        _card("summary-jurisdictions", len(juris), "jurisdictions whose laws reach the data"),
        _card("summary-findings", n_find, "personal data found in requests", "alert" if n_find else ""),
        _card("summary-personal-destinations", len(f.with_data), "destinations that received personal data",
              "alert" if f.with_data else ""),
        _card("summary-deny", _int(f.counts.get("deny")) if policy else "–", "policy: forbidden (deny)",
              "alert" if _int(f.counts.get("deny")) else ""),
        _card("summary-warn", _int(f.counts.get("warn")) if policy else "–", "policy: warnings",
              "caution" if _int(f.counts.get("warn")) else ""),
        _card("summary-countries", len(_list(f.summary.get("countries"))), "server countries"),
        _card("summary-bytes-out", human_bytes(f.n("bytes_out", 0)), "sent by the device"),
        _card("summary-errors", f.n("errors", 0), "input errors", "caution" if f.n("errors", 0) else ""),
    ]
    apps = [_clean(a) for a in _list(f.summary.get("apps"))]
    lead = [f"The traffic{' of ' + ', '.join(apps) if apps else ''} went to {_plural(n_dest, 'destination')}"
            f" run by {_plural(len(owners), 'known company', 'known companies')}"
            f" ({_plural(f.n('unattributed', 0), 'destination')} not in the knowledge base)."]
    if types:
        lead.append(f"Personal data ({', '.join(_data_label(t) for t in types)}) went to "
                    f"{_plural(len(f.with_data), 'destination')}.")
    else:
        lead.append("No personal data was found in the requests that could be read.")
    rows = _jurisdiction_rows(f)
    pd_juris = [r["code"] for r in rows if r["pd_dests"]]
    if pd_juris:
        lead.append(f"The laws of {', '.join(pd_juris)} can reach that personal data.")
    out = ['<section id="summary"><h2>Summary</h2>', _verdict(f), f'<p class="lead">{esc(" ".join(lead))}</p>']
    # (the traffic older than the location data, or much newer: said before any location is read)
    out += [f'<p class="caution wrap" data-testid="summary-data-warning">Dates: {esc(w)}</p>'
            for w in _list(f.summary.get("data_warnings"))]
    out += ['<div class="cards">', *cards, "</div>"]
    out.append(_who_can_reach_what(rows))
    out.append("</section>")
    return "".join(out)


def _bases(bases: dict[str, set[int]]) -> str:
    order = list(BASIS_LABELS)
    return ", ".join(f"{BASIS_LABELS.get(b, b)} ({len(ix)})"
                     for b, ix in sorted(bases.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 9, kv[0])))


def _who_can_reach_what(rows: list[dict[str, Any]]) -> str:
    out = ["<h3>Who can reach what</h3>"]
    if not rows:
        out.append('<p class="muted">No destination has a known owner or server location.</p>')
        return "".join(out)
    out.append('<p class="small muted">For each state: the personal data that went to destinations its laws '
               "reach, the companies (ultimate parents) that received it there, and how the state reaches them.</p>"
               '<div class="scroll"><table class="stack" data-testid="jurisdiction-table"><thead><tr>'
               "<th>Jurisdiction</th><th>Personal data it can reach</th><th>Received by</th><th>Through</th>"
               '<th class="num">Destinations it reaches</th></tr></thead><tbody>')
    cats_seen: set[str] = set()
    for r in rows:
        data = "".join(f'<span class="tag pd">{esc(_data_label(t))}</span>' for t in sorted(r["types"]))
        cats = sorted(r["cats"])
        cats_seen.update(cats)
        if cats:
            data += '<div class="cats">' + "".join(_cat(c) for c in cats) + "</div>"
        companies = "".join(
            f'<li data-testid="jurisdiction-company"><span class="name">{esc(c)}</span>: '
            f'{esc(", ".join(_data_label(t) for t in sorted(ts_)))}</li>'
            for c, ts_ in sorted(r["companies"].items()))
        others = len(r["dests"]) - len(r["pd_dests"])
        count = (f"{len(r['pd_dests'])} with personal data" if r["pd_dests"] else "none with personal data") + \
            (f", {others} without" if others and r["pd_dests"] else f" ({others})" if others else "")
        out.append(
            f'<tr data-testid="jurisdiction-row" data-jurisdiction="{esc(r["code"])}">'
            f'<td data-label="Jurisdiction"><strong>{esc(r["code"])}</strong> {esc(r["name"])}</td>'
            f'<td data-label="Personal data">{data or "<span class=muted>none found</span>"}</td>'
            f'<td data-label="Received by"><ul class="plain bare">{companies}</ul></td>'
            f'<td data-label="Through">{esc(_bases(r["bases"]))}</td>'
            f'<td class="num" data-label="Destinations">{esc(count)}</td></tr>')
    out.append("</tbody></table></div>")
    out.append('<p class="small muted">Through: <em>owner</em> — a company of the control chain is '
               "headquartered, incorporated or operating there; <em>network host</em> — the same for the "
               "operator of the server's network; <em>server location</em> — the server is there.</p>")
    out.append(_category_notes(cats_seen))
    return "".join(out)


def _category_notes(cats: Iterable[str]) -> str:
    cats = sorted(set(cats))
    if not cats:
        return ""
    return ('<p class="small muted">Legal categories:</p><ul class="plain small notes" data-testid="category-notes">'
            + "".join(f'<li>{esc(category_label(c))}: <code>{brk(c)}</code></li>' for c in cats) + "</ul>")


def _policies(f: _Facts) -> str:
    out = ['<section id="policy"><h2>Policy</h2>']
    if not f.policies:
        out.append('<p data-testid="no-policy">No policy given. The report lists where the data went and who '
                   "can reach it, without judging it against a rule.</p></section>")
        return "".join(out)
    for p in f.policies:
        rules = [_dict(r) for r in _list(p.get("rules"))]
        out.append(f'<div class="finding-group" data-testid="policy"><h3>{esc(p.get("name"))} '
                   f'<span class="muted small">({esc(p.get("id"))}, as of {esc(p.get("as_of"))})</span></h3>')
        if p.get("summary"):
            out.append(f"<p>{esc(p.get('summary'))}</p>")
        if rules:
            out.append('<ul class="plain">' + "".join(
                f'<li><span class="tag {"deny" if r.get("action") == "deny" else "warn"}">{esc(r.get("action"))}</span> '
                f'{esc(r.get("title"))} <span class="muted small">{esc(r.get("citation"))}</span></li>'
                for r in rules) + "</ul>")
        ctx = _list(p.get("context"))
        if ctx:
            out.append(f'<details><summary class="small">What one capture cannot show ({len(ctx)})</summary>'
                       '<ul class="plain small">' + "".join(f"<li>{esc(c)}</li>" for c in ctx) + "</ul></details>")
        allow = [_dict(a) for a in _list(p.get("allow"))]
        if allow:
            out.append('<p class="small">Exceptions (allow list):</p><ul class="plain small">' + "".join(
                f"<li>{esc(a.get('reason'))}"
                + (f" — until {esc(a.get('until'))}" if a.get("until") else "")
                + f' <span class="muted">({esc(", ".join(_clean(x) for k in ("hosts", "owners", "jurisdictions", "rules") for x in _list(a.get(k))))})</span></li>'
                for a in allow) + "</ul>")
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


def _violation(v: dict[str, Any], f: _Facts, index: int) -> str:
    allowed = _dict(v.get("allowed")) if v.get("allowed") else None
    action = "deny" if v.get("action") == "deny" else "warn"
    cls = "allowed" if allowed is not None else action
    out = [f'<div class="violation {cls}" data-testid="violation" data-action="{action}" '
           f'data-allowed="{"true" if allowed is not None else "false"}" id="violation-{index}">',
           f'<h3><span class="tag {cls}">{esc("allowed" if allowed is not None else action)}</span> '
           f'{esc(v.get("title"))}</h3>']
    host = _clean(v.get("host"))
    if v.get("app"):
        host += f" (app: {_clean(v.get('app'))})"
    types = ", ".join(_data_label(_clean(t)) for t in _list(v.get("data_types")))
    kv = [
        ("Rule", f"{_clean(v.get('policy'))} / {_clean(v.get('rule'))}"
                 + (f" — {_clean(v.get('citation'))}" if v.get("citation") else "")),
        ("Destination", host),
        ("Jurisdictions", ", ".join(_clean(j) for j in _list(v.get("jurisdictions")))
         + (f" (through {', '.join(BASIS_LABELS.get(_clean(b), _clean(b)) for b in _list(v.get('bases')))})"
            if _list(v.get("bases")) else "")),
        ("Personal data", types + (f" — {', '.join(category_label(_clean(c)) for c in _list(v.get('data_categories')))}"
                                   if _list(v.get("data_categories")) else "")),
        ("Findings", ", ".join(_clean(i) if isinstance(i, str) else f"#{_clean(i)}"  # ids; 1.x: indexes
                               for i in _list(v.get("findings")))),
    ]
    out.append('<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(val)}</dd>" for k, val in kv if val) + "</dl>")
    if v.get("reasoning"):
        out.append(f'<p data-testid="violation-reasoning">{esc(v.get("reasoning"))}</p>')
    paths = [_dict(p) for p in _list(v.get("paths"))]
    if paths:
        out.append('<p class="small muted">Why these jurisdictions:</p><ul class="plain">')
        for p in paths:
            steps = '<span class="sep"> › </span>'.join(f'<span class="step">{esc(s)}</span>'
                                                         for s in _list(p.get("path")))
            out.append(f'<li><span class="tag">{esc(p.get("jurisdiction"))} · {esc(p.get("basis"))}</span> '
                       f'<span class="chain wrap">{steps}</span></li>')
        out.append("</ul>")
    if v.get("mechanism"):
        out.append(f'<p><strong>What would make it lawful:</strong> {esc(v.get("mechanism"))}</p>')
    if allowed is not None:
        out.append(f'<p data-testid="allowed-reason"><strong>Allowed:</strong> {esc(allowed.get("reason"))}'
                   + (f" (until {esc(allowed.get('until'))})" if allowed.get("until") else "") + "</p>")
    srcs = _list(v.get("sources"))
    if srcs:
        out.append('<p class="small muted">Sources:</p><ul class="plain small mono">'
                   + "".join(f"<li>{link(s)}</li>" for s in srcs) + "</ul>")
    out.append("</div>")
    return "".join(out)


def _violations(f: _Facts) -> str:
    out = ['<section id="violations"><h2>Violations</h2>']
    if not f.policies and not f.violations:
        out.append('<p class="muted">No policy given.</p></section>')
        return "".join(out)
    live = [(i, v) for i, v in enumerate(f.violations) if not v.get("allowed")]
    allowed = [(i, v) for i, v in enumerate(f.violations) if v.get("allowed")]
    if not live:
        out.append('<p data-testid="no-violations">No data flow breaks the policy.</p>')
    out.extend(_violation(v, f, i) for i, v in live)
    if allowed:
        out.append(f"<h3>Allowed by the policy's exceptions ({len(allowed)})</h3>")
        out.extend(_violation(v, f, i) for i, v in allowed)
    out.append("</section>")
    return "".join(out)


# ------------------------------------------------------------------------------------------
# World map


def _map(f: _Facts) -> str:
    world = _world()
    countries: dict[str, dict[str, Any]] = world["countries"]
    srv: Counter[str] = Counter()
    own: dict[str, set[str]] = defaultdict(set)
    reach_only: set[str] = set()
    arcs: Counter[tuple[str, str]] = Counter()
    arcs_pd: set[tuple[str, str]] = set()
    for d in f.dests:
        here = _clean(d.get("country")) if d.get("country") else None
        servers = [s for s in _list(d.get("servers")) if isinstance(s, dict)]
        if any(s.get("anycast") for s in servers):
            # an anycast / CDN edge server's country is the geo database's guess: not on the map
            here = here if servers and not servers[0].get("anycast") else None
            firm = sorted({_clean(s["country"]) for s in servers if s.get("country") and not s.get("anycast")})
            for code in firm:
                srv[code] += 1
        else:
            for c in _list(d.get("countries")) or ([here] if here else []):
                srv[_clean(c)] += 1
        o = _dict(d.get("owner"))
        up = _dict(o.get("ultimate_parent"))
        for ent in (o, up):
            if ent.get("hq_country"):
                own[_clean(ent["hq_country"])].add(_clean(ent.get("name")))
        for r in _list(d.get("reach")):
            if isinstance(r, dict) and r.get("jurisdiction"):
                reach_only.add(_clean(r["jurisdiction"]))
        top = _clean(up.get("hq_country")) if up.get("hq_country") else None
        if here and top and here != top:
            arcs[(here, top)] += 1
            if _list(d.get("data_types")):
                arcs_pd.add((here, top))

    def point(cc: str) -> tuple[float, float] | None:
        c = countries.get("BE" if cc == "EU" else cc)
        if not c or "c" not in c:
            return None
        return float(c["c"][0]), float(c["c"][1])

    w, h = int(world["width"]), int(world["height"])
    out = [f'<svg viewBox="0 0 {w} {h}" role="img" aria-labelledby="map-title" data-testid="world-map">'
           '<title id="map-title">Server locations and owners\' head offices</title><g>']
    for cc, c in countries.items():
        if "d" not in c:
            continue
        cls = "land"
        if cc in srv and cc in own:
            cls += " both"
        elif cc in srv:
            cls += " srv"
        elif cc in own:
            cls += " own"
        elif cc in reach_only:
            cls += " reach"
        out.append(f'<path class="{cls}" data-country="{esc(cc)}" d="{c["d"]}"><title>{esc(c["name"])}</title></path>')
    out.append("</g><g>")
    biggest = max(arcs.values(), default=1)
    for (a, b), n in sorted(arcs.items()):
        pa, pb = point(a), point(b)
        if not pa or not pb:
            continue
        mx, my = (pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2
        dist = math.hypot(pb[0] - pa[0], pb[1] - pa[1])
        cx, cy = mx, my - dist * 0.25
        sw = 1 + 3 * math.sqrt(n / biggest)
        cls = "arc pd" if (a, b) in arcs_pd else "arc"
        tip = f"servers in {a}, owner in {b}: " + _plural(n, "destination")
        out.append(f'<path class="{cls}" stroke-width="{sw:.1f}" d="M{pa[0]:.1f} {pa[1]:.1f}Q{cx:.1f} {cy:.1f} '
                   f'{pb[0]:.1f} {pb[1]:.1f}"><title>{esc(tip)}</title></path>')
    out.append("</g><g>")
    labels: dict[str, tuple[float, float]] = {}
    for cc, n in sorted(srv.items()):
        p = point(cc)
        if p:
            r = 2.5 + 2.5 * math.sqrt(n / max(srv.values()))
            out.append(f'<circle class="m-srv" cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="{r:.1f}">'
                       f"<title>{esc(cc + ': servers of ' + _plural(n, 'destination'))}</title></circle>")
            labels[cc] = p
    for cc, names in sorted(own.items()):
        p = point(cc)
        if p:
            s = 4.5
            out.append(f'<rect class="m-own" x="{p[0] - s:.1f}" y="{p[1] - s:.1f}" width="{2 * s}" height="{2 * s}" '
                       f'transform="rotate(45 {p[0]:.1f} {p[1]:.1f})"><title>{esc(cc + ": head office of " + ", ".join(sorted(names)))}'
                       "</title></rect>")
            labels[cc] = p
    for cc, p in sorted(labels.items()):
        out.append(f'<text class="lbl" x="{p[0] + 7:.1f}" y="{p[1] - 5:.1f}">{esc(cc)}</text>')
    out.append("</g></svg>")
    legend = ('<div class="legend"><span><span class="sw srv"></span>server location</span>'
              '<span><span class="sw own"></span>head office of an operator or ultimate parent</span>'
              '<span><span class="sw both"></span>both</span>'
              '<span><span class="sw reach"></span>other jurisdiction whose laws reach the data</span>'
              '<span><span class="sw pd"></span>server → owner, personal data sent</span>'
              '<span><span class="sw plain"></span>server → owner</span></div>')
    rows = []
    for cc in sorted(set(srv) | set(own) | reach_only):
        name = f.juris_names.get(cc) or _clean(_dict(countries.get(cc)).get("name", ""))
        rows.append(f'<tr data-testid="country-row" data-country="{esc(cc)}"><td><strong>{esc(cc)}</strong> {esc(name)}</td>'
                    f'<td class="num">{srv.get(cc, 0) or ""}</td>'
                    f'<td class="wrap">{esc(", ".join(sorted(own.get(cc, ()))))}</td>'
                    f'<td>{"yes" if cc in reach_only else ""}</td></tr>')
    table = ('<details><summary>Country by country</summary><table><thead><tr><th>Country</th>'
             '<th class="num">Destinations with servers there</th><th>Head office of</th><th>Its laws reach the data</th>'
             f"</tr></thead><tbody>{''.join(rows)}</tbody></table></details>")
    return (f'<section id="map"><h2>Where the servers are, and where their owners are</h2><div class="figure">'
            f'{"".join(out)}{legend}</div>{table}<p class="small muted">Map: {esc(world.get("source"))}.</p></section>')


# ------------------------------------------------------------------------------------------
# Flow: app -> operator -> ultimate parent -> jurisdiction


def _top(counter: Counter[str], n: int) -> list[str]:
    return [k for k, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _flow(f: _Facts) -> str:
    columns = ["App", "Operator", "Ultimate parent", "Jurisdiction (owner)"]
    unknown_app, unknown_owner = "(app not known)", "(owner not known)"
    edges: list[Counter[tuple[str, str]]] = [Counter(), Counter(), Counter()]
    pd_edges: list[set[tuple[str, str]]] = [set(), set(), set()]
    node_count: list[Counter[str]] = [Counter() for _ in columns]
    pd_nodes: list[set[str]] = [set() for _ in columns]
    for d in f.dests:
        o = _dict(d.get("owner"))
        app = _clean(d.get("app")) if d.get("app") else unknown_app
        op = _clean(o.get("name")) if o else unknown_owner
        up = _clean(_dict(o.get("ultimate_parent")).get("name")) if o else unknown_owner
        js = sorted({_clean(r.get("jurisdiction")) for r in _list(d.get("reach"))
                     if isinstance(r, dict) and r.get("basis") == "owner" and r.get("jurisdiction")})
        pd = bool(_list(d.get("data_types")))
        chain = [[app], [op], [up], js]
        for col, names in enumerate(chain):
            for name in names:
                node_count[col][name] += 1
                if pd:
                    pd_nodes[col].add(name)
        for col in range(3):
            for a in chain[col]:
                for b in chain[col + 1]:
                    edges[col][(a, b)] += 1
                    if pd:
                        pd_edges[col].add((a, b))
    # keep the biggest nodes of each column, fold the rest into "N others"
    kept: list[list[str]] = []
    rename: list[dict[str, str]] = []
    for col in range(len(columns)):
        top = _top(node_count[col], FLOW_MAX_NODES)
        rest = [k for k in node_count[col] if k not in top]
        others = f"{len(rest)} others" if rest else ""
        rename.append({k: (k if k in top else others) for k in node_count[col]})
        kept.append(top + ([others] if rest else []))
    counts: list[Counter[str]] = [Counter() for _ in columns]
    pdn: list[set[str]] = [set() for _ in columns]
    for col in range(len(columns)):
        for k, n in node_count[col].items():
            counts[col][rename[col][k]] += n
            if k in pd_nodes[col]:
                pdn[col].add(rename[col][k])
    merged: list[Counter[tuple[str, str]]] = [Counter() for _ in range(3)]
    merged_pd: list[set[tuple[str, str]]] = [set() for _ in range(3)]
    for col in range(3):
        for (a, b), n in edges[col].items():
            key = (rename[col][a], rename[col + 1][b])
            merged[col][key] += n
            if (a, b) in pd_edges[col]:
                merged_pd[col].add(key)

    col_w, node_w, row_h, top_pad = 262, 212, 30, 30
    width = col_w * (len(columns) - 1) + node_w + 10
    rows = max((len(k) for k in kept), default=1) or 1
    height = top_pad + rows * row_h + 10
    pos: list[dict[str, float]] = []
    for col, names in enumerate(kept):
        if col:  # order by the mean position of the nodes linking in, to untangle the links
            prev = pos[col - 1]
            weight: dict[str, list[float]] = defaultdict(list)
            for (a, b), n in merged[col - 1].items():
                if a in prev:
                    weight[b].extend([prev[a]] * n)
            names = sorted(names, key=lambda k: (k.endswith(" others"), sum(weight[k]) / len(weight[k])
                                                 if weight[k] else 1e9, -counts[col][k]))
        offset = (rows - len(names)) * row_h / 2
        pos.append({name: top_pad + offset + i * row_h for i, name in enumerate(names)})
    out = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="flow-title" data-testid="flow">'
           '<title id="flow-title">Which app sent data to which company, who owns it, and which states reach it</title>']
    for col, title in enumerate(columns):
        out.append(f'<text class="ctitle" x="{5 + col * col_w}" y="16">{esc(title)}</text>')
    biggest = max((n for m in merged for n in m.values()), default=1)
    for col in range(3):
        for (a, b), n in sorted(merged[col].items()):
            if a not in pos[col] or b not in pos[col + 1]:
                continue
            x0, y0 = 5 + col * col_w + node_w, pos[col][a] + 11
            x1, y1 = 5 + (col + 1) * col_w, pos[col + 1][b] + 11
            xm = (x0 + x1) / 2
            sw = 1.5 + 5 * math.sqrt(n / biggest)
            cls = "link pd" if (a, b) in merged_pd[col] else "link"
            out.append(f'<path class="{cls}" stroke-width="{sw:.1f}" d="M{x0} {y0:.1f}C{xm} {y0:.1f} {xm} {y1:.1f} {x1} {y1:.1f}">'
                       f"<title>{esc(a + ' → ' + b + ': ' + _plural(n, 'destination'))}</title></path>")
    for col, names in enumerate(kept):
        for name in names:
            x, y = 5 + col * col_w, pos[col][name]
            cls = "node pd" if name in pdn[col] else "node"
            label = name
            if col == 3:
                label = f"{name} {f.juris_names.get(name, '')}".strip()
            out.append(f'<g data-testid="flow-node" data-column="{col}"><rect class="{cls}" x="{x}" y="{y:.1f}" '
                       f'width="{node_w}" height="22" rx="4"></rect><text class="ntext" x="{x + 6}" y="{y + 15:.1f}">'
                       f"{esc(_short(label, 28))} ({counts[col][name]})</text>"
                       f"<title>{esc(label)}: {_plural(counts[col][name], 'destination')}</title></g>")
    out.append("</svg>")
    return ('<section id="flow"><h2>From the app to the companies, their owners and their states</h2>'
            f'<div class="figure">{"".join(out)}<div class="legend"><span><span class="sw pd"></span>carried '
            "personal data</span><span>numbers: destinations</span></div></div></section>")


# ------------------------------------------------------------------------------------------
# Views: by app, by kind of personal data, in time; local traffic; the laws


def _owner_text(d: dict[str, Any]) -> str:
    o = _dict(d.get("owner"))
    if not o:
        hosts = hosted_by(d.get("hosting"))
        return "owner unknown, hosted by " + ", ".join(_clean(h) for h in hosts) if hosts \
            else "not in the knowledge base"
    up = _dict(o.get("ultimate_parent"))
    name = _clean(o.get("name"))
    return f"{name} → {_clean(up.get('name'))}" if up and up.get("entity") != o.get("entity") else name


def _reach_text(d: dict[str, Any]) -> str:
    by: dict[str, list[str]] = defaultdict(list)
    for r in _list(d.get("reach")):
        if isinstance(r, dict) and r.get("jurisdiction"):
            b = BASIS_LABELS.get(_clean(r.get("basis")), _clean(r.get("basis")))
            if b not in by[_clean(r["jurisdiction"])]:
                by[_clean(r["jurisdiction"])].append(b)
    items = [f"{j} ({', '.join(bs)})" for j, bs in by.items()]
    items += [_clean(x) for x in undeterminable_locations([r for r in _list(d.get("reach")) if isinstance(r, dict)])]
    return "; ".join(items)


def _apps(f: _Facts) -> str:
    unknown = "(app not known)"
    apps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in f.dests:
        if _public(d):
            apps[_clean(d.get("app")) if d.get("app") else unknown].append(d)
    out = ['<section id="apps"><h2>App by app</h2>']
    if not apps:
        out.append('<p class="muted">No destination on the internet.</p></section>')
        return "".join(out)
    out.append('<div class="scroll"><table class="stack" data-testid="app-table"><thead><tr><th>App</th>'
               '<th class="num">Destinations</th><th>Companies (ultimate parents)</th><th>Personal data it sent, '
               "and where</th><th>States that can reach that data</th></tr></thead><tbody>")
    for app, ds in sorted(apps.items(), key=lambda kv: (kv[0] == unknown, -len(kv[1]), kv[0])):
        companies = sorted({_clean(_dict(_dict(d.get("owner")).get("ultimate_parent")).get("name")
                                   or _dict(d.get("owner")).get("name")) for d in ds if d.get("owner")})
        sent: dict[str, list[str]] = defaultdict(list)
        states: set[str] = set()
        for d in ds:
            for t in _list(d.get("data_types")):
                sent[_clean(t)].append(_clean(d.get("host")))
            if _list(d.get("data_types")):
                states.update(_clean(r.get("jurisdiction")) for r in _list(d.get("reach"))
                              if isinstance(r, dict) and r.get("jurisdiction"))
        data = "".join(f'<li><span class="tag pd">{esc(_data_label(t))}</span> to '
                       + ", ".join(f'<span class="host">{brk(h)}</span>' for h in sorted(set(hs))) + "</li>"
                       for t, hs in sorted(sent.items()))
        out.append(f'<tr data-testid="app-row" data-app="{esc(app)}"><td data-label="App"><strong>{brk(app)}'
                   f'</strong></td><td class="num" data-label="Destinations">{len(ds)}</td>'
                   f'<td data-label="Companies">{esc(", ".join(companies)) or "<span class=muted>none known</span>"}</td>'
                   f'<td data-label="Personal data">'
                   f'{"<ul class=" + chr(34) + "plain bare" + chr(34) + ">" + data + "</ul>" if data else "<span class=muted>none found</span>"}</td>'
                   f'<td data-label="States">{esc(", ".join(sorted(states)))}</td></tr>')
    out.append("</tbody></table></div></section>")
    return "".join(out)


def _data_types(f: _Facts) -> str:
    by_host: dict[tuple[str, str], dict[str, Any]] = {}
    for d in f.dests:
        by_host.setdefault((_clean(d.get("host")), _clean(d.get("app"))), d)
    kinds: dict[str, dict[tuple[str, str, str, str], dict[str, Any]]] = defaultdict(dict)
    for x in f.findings:
        key = (_clean(x.get("host")), _clean(x.get("app")))
        enc = " › ".join(_clean(e) for e in _list(x.get("encoding"))) or "as is"
        row = kinds[_clean(x.get("data_type"))].setdefault((*key, enc, _clean(x.get("location"))), {
            "dest": by_host.get(key, {}), "host": key[0], "app": key[1], "enc": enc, "where": _clean(x.get("location")),
            "clear": False, "n": 0})
        row["n"] += 1
        row["clear"] = row["clear"] or "sent_in_cleartext" in _list(x.get("categories"))
    out = ['<section id="data-types"><h2>Where each kind of personal data went</h2>']
    if not kinds:
        out.append('<p class="muted">No personal data was found in the requests that could be read.</p></section>')
        return "".join(out)
    out.append('<p class="small muted">Jump to: ' + " · ".join(
        f'<a class="jump" href="#data-type-{esc(re.sub(r"[^A-Za-z0-9_-]", "_", t))}">{esc(_data_label(t))}</a>'
        for t in sorted(kinds)) + "</p>")
    for t, rows in sorted(kinds.items()):
        anchor = re.sub(r"[^A-Za-z0-9_-]", "_", t)
        out.append(f'<div class="kind" id="data-type-{esc(anchor)}" data-testid="data-type-view" data-type="{esc(t)}">'
                   f'<h3>Where did the {esc(_data_label(t))} go?</h3><div class="scroll"><table class="stack"><thead><tr>'
                   "<th>Destination</th><th>Owner (operator → ultimate parent)</th><th>States that can reach it</th>"
                   "<th>Encoding</th><th>Where in the request</th></tr></thead><tbody>")
        for (host, app, enc, where), r in sorted(rows.items()):
            d = r["dest"]
            app_txt = f' <span class="muted small">({esc(app)})</span>' if app else ""
            clear = ' <span class="tag warn">not encrypted</span>' if r["clear"] else ""
            out.append(f'<tr data-testid="data-type-row" data-host="{esc(host)}"><td data-label="Destination">'
                       f'<span class="host">{brk(host)}</span>{app_txt}</td>'
                       f'<td data-label="Owner">{esc(_owner_text(d)) if d else "<span class=muted>not known</span>"}</td>'
                       f'<td data-label="States">{esc(_reach_text(d)) if d else ""}</td>'
                       f'<td data-label="Encoding"><span class="chain">{brk(enc)}</span></td>'
                       f'<td data-label="Where"><code>{brk(where)}</code>{clear}'
                       f'{" (" + str(r["n"]) + " requests)" if r["n"] > 1 else ""}</td></tr>')
        out.append("</tbody></table></div></div>")
    out.append("</section>")
    return "".join(out)


def _timeline(f: _Facts) -> str:
    def when(v: object) -> float | None:
        if not v:
            return None
        try:
            t = datetime.fromisoformat(_clean(v).replace("Z", "+00:00"))
        except ValueError:
            return None
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()

    items = []
    for i, d in enumerate(f.dests):
        a, b = when(d.get("first_seen")), when(d.get("last_seen"))
        if a is not None:
            items.append((a, max(a, b if b is not None else a), i, d))
    out = ['<section id="timeline"><h2>Timeline: first and last contact</h2>']
    if not items:
        out.append('<p class="muted">No times recorded.</p></section>')
        return "".join(out)
    items.sort(key=lambda x: (x[0], x[2]))
    t0, t1 = min(x[0] for x in items), max(x[1] for x in items)
    span = (t1 - t0) or 1.0
    label_w, bar_w, row_h, top = 300, 660, 20, 24
    width, height = label_w + bar_w + 20, top + row_h * len(items) + 6
    svg = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="timeline-title" data-testid="timeline">'
           '<title id="timeline-title">When each destination was first and last contacted</title>']
    for k in range(5):
        x = label_w + bar_w * k / 4
        label = datetime.fromtimestamp(t0 + span * k / 4, tz=UTC).strftime("%H:%M:%S")
        svg.append(f'<line class="tick" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height}"></line>'
                   f'<text class="ctitle" x="{x:.1f}" y="14" text-anchor="{("start", "middle", "middle", "middle", "end")[k]}">'
                   f"{label}</text>")
    for n, (a, b, i, d) in enumerate(items):
        y = top + n * row_h
        x0 = label_w + bar_w * (a - t0) / span
        w = max(3.0, bar_w * (b - a) / span)
        name = _clean(d.get("host")) + (f" ({_clean(d.get('app'))})" if d.get("app") else "")
        pd = bool(_list(d.get("data_types")))
        tip = f"{name}: first {ts(d.get('first_seen'))}, last {ts(d.get('last_seen') or d.get('first_seen'))}"
        svg.append(f'<g data-testid="timeline-row" data-index="{i}" data-first="{esc(ts(d.get("first_seen")))}" '
                   f'data-last="{esc(ts(d.get("last_seen") or d.get("first_seen")))}"><title>{esc(tip)}</title>'
                   f'<text class="ntext" x="{label_w - 8}" y="{y + 14}" text-anchor="end">{esc(_short(name, 40))}</text>'
                   f'<rect class="bar{" pd" if pd else ""}" x="{x0:.1f}" y="{y + 4}" width="{w:.1f}" height="12" rx="3">'
                   "</rect></g>")
    svg.append("</svg>")
    out.append(f'<div class="figure">{"".join(svg)}<div class="legend"><span><span class="sw pd"></span>received '
               f"personal data</span><span>times in UTC, from {datetime.fromtimestamp(t0, tz=UTC).strftime('%Y-%m-%d %H:%M:%S')}Z"
               f"</span></div></div></section>")
    return "".join(out)


def _services(f: _Facts) -> str:
    """The SDKs and services the traffic went to (``destinations[].service``): each with its
    purpose, its vendor, and the hosts and apps that reached it; most bytes sent first."""
    groups: dict[str, dict[str, Any]] = {}
    for d in f.dests:
        sv = _dict(d.get("service"))
        w = service_parts(sv)
        if w is None:
            continue
        key = _clean(sv.get("id") or w.name)
        g = groups.setdefault(key, {"w": w, "vendor": _clean(sv.get("vendor_name") or sv.get("vendor")),
                                    "country": _clean(sv.get("vendor_hq")), "hosts": [], "apps": set(), "sent": 0,
                                    "pd": set(), "owners": set()})
        g["hosts"].append(_clean(d.get("host")))
        if d.get("app"):
            g["apps"].add(_clean(d.get("app")))
        g["sent"] += _int(d.get("bytes_out"))
        g["pd"].update(_clean(t) for t in _list(d.get("data_types")))
        if sv.get("vendor_is_owner") is False:
            g["owners"].add(_clean(_dict(d.get("owner")).get("name")))
    out = ['<section id="services"><h2>SDKs and services</h2>'
           '<p class="small muted">The product each host belongs to, where the knowledge base knows it, and what it '
           "is for. The vendor is the company that makes the SDK; where it is not the host's owner, both are "
           "named.</p>"]
    if not groups:
        out.append('<p class="muted" data-testid="no-services">No destination is a known SDK or service.</p></section>')
        return "".join(out)
    out.append('<div class="scroll"><table class="stack" data-testid="services-table"><thead><tr><th>Service</th>'
               "<th>Purpose</th><th>Vendor</th><th>Hosts</th><th>Apps</th><th>Personal data</th>"
               '<th class="num">Sent</th></tr></thead><tbody>')
    for key, g in sorted(groups.items(), key=lambda kv: (-kv[1]["sent"], kv[0])):
        w = g["w"]
        vendor = g["vendor"] + (f" ({g['country']})" if g["country"] else "")
        if g["owners"]:
            vendor += " — host owner: " + ", ".join(sorted(g["owners"]))
        data = "".join(f'<span class="tag pd">{esc(_data_label(t))}</span>' for t in sorted(g["pd"]))
        hosts: list[str] = g["hosts"]
        more = f" and {len(hosts) - 20} more" if len(hosts) > 20 else ""
        out.append(f'<tr data-testid="service-row" data-service="{esc(key)}"><td data-label="Service">'
                   f'<span class="name">{esc(w.name)}</span></td>'
                   f'<td data-label="Purpose">{esc(" / ".join(w.purposes))}</td>'
                   f'<td data-label="Vendor">{esc(vendor)}</td>'
                   f'<td data-label="Hosts" class="wrap">{brk(", ".join(hosts[:20]))}{esc(more)}</td>'
                   f'<td data-label="Apps">{esc(", ".join(sorted(g["apps"])))}</td>'
                   f'<td data-label="Personal data">{data}</td>'
                   f'<td class="num" data-label="Sent">{esc(human_bytes(g["sent"]))}</td></tr>')
    out.append("</tbody></table></div></section>")
    return "".join(out)


def _local(f: _Facts) -> str:
    private = [(i, d) for i, d in enumerate(f.dests) if not _public(d)]
    local = [_dict(g) for g in _list(f.doc.get("local"))]
    out = ['<section id="local"><h2>Local and private addresses</h2>'
           '<p class="small muted">Traffic that stayed on the local network or went to private addresses (the '
           "router, the device itself, multicast): counted apart from the destinations on the internet.</p>"]
    if not private and not local:
        out.append('<p class="muted" data-testid="no-local">None.</p></section>')
        return "".join(out)
    if private:
        out.append('<div class="scroll"><table class="stack" data-testid="private-table"><thead><tr><th>Address</th>'
                   '<th>App</th><th>Scope</th><th>Personal data</th><th class="num">Sent</th><th class="num">Conns</th>'
                   "<th>Seen</th></tr></thead><tbody>")
        for i, d in private:
            data = "".join(f'<span class="tag pd">{esc(_data_label(_clean(t)))}</span>' for t in _list(d.get("data_types")))
            out.append(f'<tr data-testid="private-row" data-index="{i}"><td data-label="Address">'
                       f'<span class="host">{brk(d.get("host"))}</span></td><td data-label="App">{esc(d.get("app") or "")}</td>'
                       f'<td data-label="Scope">{esc(d.get("ip_scope"))}</td><td data-label="Personal data">{data}</td>'
                       f'<td class="num" data-label="Sent">{esc(human_bytes(_int(d.get("bytes_out"))))}</td>'
                       f'<td class="num" data-label="Conns">{_int(d.get("connections"))}</td>'
                       f'<td data-label="Seen">{esc(ts(d.get("first_seen")))} – {esc(ts(d.get("last_seen")))}</td></tr>')
        out.append("</tbody></table></div>")
    if local:
        out.append("<h3>Local network traffic, by protocol</h3>")
        out.append(_table(["Protocol", "Connections", "Packets", "Bytes", "Addresses"],
                          ([g.get("protocol"), g.get("connections"), g.get("packets"), g.get("bytes"),
                            ", ".join(_clean(a) for a in _list(g.get("addresses")))] for g in local), "local-row"))
    out.append("</section>")
    return "".join(out)


def _laws(f: _Facts) -> str:
    laws = _dict(f.doc.get("laws"))
    named = {_clean(law.get("id")) for d in f.dests for r in _list(d.get("reach")) if isinstance(r, dict)
             for law in map(_dict, _list(r.get("laws")))}
    ids = sorted(k for k in laws if _clean(k) in named) or sorted(laws)
    out = ['<section id="laws"><h2>The laws that reach the data, with their official sources</h2>']
    if not ids:
        out.append('<p class="muted">The knowledge base records no law for these jurisdictions.</p></section>')
        return "".join(out)
    out.append('<ul class="plain laws">')
    for k in ids:
        law = _dict(laws[k])
        srcs = _list(law.get("sources"))
        out.append(f'<li data-testid="law" data-law="{esc(k)}"><strong>{esc(law.get("jurisdiction"))}</strong> '
                   f'{esc(law.get("title"))} ({esc(law.get("year"))}), {esc(law.get("article"))} '
                   f'<span class="muted small">— reaches through {esc(", ".join(_clean(x) for x in _list(law.get("reaches"))))}</span>'
                   + (f'<div class="small">{esc(law.get("effect"))}</div>' if law.get("effect") else "")
                   + (f'<div class="small muted">Not confirmed: {esc(law.get("unverified"))}</div>' if law.get("unverified") else "")
                   + ('<div class="small">Sources: ' + " · ".join(link(u) for u in srcs) + "</div>" if srcs else "")
                   + "</li>")
    out.append("</ul></section>")
    return "".join(out)


_BULK_TAGS = {"above": "deny", "cannot tell": "warn", "below": "allowed"}


def _num(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _readable(b: Mapping[str, Any]) -> str:
    """``41% of its connections readable, over 365 days of logs``."""
    share, days = b.get("readable_share"), b.get("period_days")
    read = f"{share:.0%}" if isinstance(share, int | float) and not isinstance(share, bool) else "?"
    span = f"{days:g}" if isinstance(days, int | float) and not isinstance(days, bool) else "?"
    return f"{read} of its connections readable, over {span} days of logs"


def _organisation(f: _Facts) -> str:
    """The organisation section of a log audit (nothing for a capture's document): the period
    and rows read, the bulk-data counts per covered counterparty (verdict, identified against the
    threshold, screening bound, why, bounds), the owners (covered ones marked) and the client
    devices that talk to covered owners."""
    org = f.doc.get("organisation")
    if not isinstance(org, dict):
        return ""
    rows = _dict(org.get("rows"))
    read = ", ".join(f"{_num(v)} {ROW_LABELS.get(str(k), _clean(k))}" for k, v in rows.items())
    out = ['<section id="organisation" data-testid="organisation"><h2>Organisation</h2>',
           f'<p data-testid="organisation-period">Logs from {esc(period_line(org.get("period")))}. Rows read: '
           f'{esc(read or "none")}.</p>',
           f"<h3>{esc(bulk_title())}</h3>"]
    bulk = bulk_order([_dict(b) for b in _list(org.get("bulk")) if isinstance(b, dict)])
    if not bulk:
        out.append('<p class="muted" data-testid="no-bulk">No covered counterparty in the traffic.</p>')
    else:
        common = {_clean(b.get("bounds") or "") for b in bulk}
        out.append('<div class="scroll"><table class="stack" data-testid="bulk-table"><thead><tr><th>Verdict</th>'
                   "<th>Counterparty → ultimate parent</th><th>Data category</th>"
                   '<th class="num">Identified</th><th class="num">Threshold (more than)</th>'
                   '<th class="num">Screening bound</th><th>Readable, over</th><th>Why</th>'
                   + ("<th>Bounds</th>" if len(common) > 1 else "") + "</tr></thead><tbody>")
        for b in bulk:
            verdict = _clean(b.get("verdict"))
            who = _clean(b.get("counterparty") or b.get("counterparty_id") or "?")
            if b.get("parent") and b.get("parent") != b.get("counterparty"):
                who += " → " + _clean(b["parent"])
            cat = b.get("category")
            unit = _clean(b.get("unit") or "")
            out.append(
                f'<tr data-testid="bulk-row" data-verdict="{esc(verdict)}" data-counterparty="{esc(b.get("counterparty_id"))}">'
                f'<td data-label="Verdict"><span class="tag {_BULK_TAGS.get(verdict, "")}">'
                f"{esc(VERDICT_LABELS.get(verdict, verdict))}</span></td>"
                f'<td data-label="Counterparty"><strong>{esc(who)}</strong></td>'
                f'<td data-label="Data category">{_cat(_clean(cat)) if cat else "no data category read"}</td>'
                f'<td class="num" data-label="Identified">{esc(_num(b.get("identified")))} {esc(unit)}</td>'
                f'<td class="num" data-label="Threshold">{esc(_num(b.get("threshold")) if b.get("threshold") is not None else "none")}</td>'
                f'<td class="num" data-label="Screening bound">{esc(_num(b.get("screening")))} client devices</td>'
                f'<td class="small" data-label="Readable, over">{esc(_readable(b))}</td>'
                f'<td class="wrap" data-label="Why">{esc(b.get("reason") or "")}</td>'
                + (f'<td class="wrap small" data-label="Bounds">{esc(b.get("bounds") or "")}</td>' if len(common) > 1 else "")
                + "</tr>")
        out.append("</tbody></table></div>")
        if len(common) == 1:
            out.append(f'<p class="small" data-testid="bulk-bounds"><strong>Bounds of every count:</strong> '
                       f"{esc(common.pop())}</p>")
    owners = [_dict(o) for o in _list(org.get("owners")) if isinstance(o, dict)]
    if owners:
        network_only = by_network_only(f.dests)
        out.append(f"<h3>Owners the traffic went to ({len(owners)})</h3>"
                   '<div class="scroll"><table class="stack" data-testid="org-owners-table"><thead><tr>'
                   "<th>Owner → ultimate parent</th><th>Reach (basis)</th>"
                   '<th class="num">Sent</th><th class="num">Received</th><th class="num">Connections</th>'
                   '<th class="num">Client devices</th><th class="num">Hosts</th><th>Seen</th></tr></thead><tbody>')
        for o in owners:
            covered = bool(o.get("covered"))
            out.append(
                f'<tr data-testid="org-owner-row" data-owner="{esc(o.get("owner_id"))}" '
                f'data-covered="{"true" if covered else "false"}">'
                f'<td data-label="Owner"><span class="name">{esc(owner_summary_line(o, network_only))}</span>'
                + (' <span class="tag deny" title="a covered person under us-doj-bulk-data (28 CFR 202.211)">'
                   "covered person</span>" if covered else "")
                + f'</td><td data-label="Reach">{esc(bases_line(_list(o.get("bases")) or _list(o.get("jurisdictions"))))}</td>'
                f'<td class="num" data-label="Sent">{esc(human_bytes(_int(o.get("bytes_out"))))}</td>'
                f'<td class="num" data-label="Received">{esc(human_bytes(_int(o.get("bytes_in"))))}</td>'
                f'<td class="num" data-label="Connections">{esc(_num(o.get("connections")))}</td>'
                f'<td class="num" data-label="Client devices">{esc(_num(o.get("clients")))}</td>'
                f'<td class="num" data-label="Hosts">{esc(_num(o.get("destinations")))}</td>'
                f'<td data-label="Seen">{esc(ts(o.get("first_seen")))} – {esc(ts(o.get("last_seen")))}</td></tr>')
        out.append("</tbody></table></div>")
        if any(_clean(o.get("owner_id")) in network_only for o in owners):
            out.append(f'<p class="small muted">[{esc(BY_AS_NOTE)}]</p>')
    clients = [_dict(c) for c in _list(org.get("clients")) if isinstance(c, dict)]
    if clients:
        left = _int(_dict(org.get("limits")).get("clients_left_out"))
        out.append(f"<h3>Client devices that talk to covered owners ({len(clients) + left:,})</h3>")
        out.append(_table(["Device", "Address", "Host name (DHCP)", "Covered owners", "Sent", "Received",
                           "Connections"],
                          ([c.get("client"), c.get("client_ip"), c.get("host_name"),
                            ", ".join(_clean(x) for x in _list(c.get("owners"))), human_bytes(_int(c.get("bytes_out"))),
                            human_bytes(_int(c.get("bytes_in"))), _num(c.get("connections"))] for c in clients),
                          "org-client-row"))
        if left:
            out.append(f'<p class="small muted">{left:,} more client devices: in clients.parquet (-o DIR/).</p>')
    out.append("</section>")
    return "".join(out)


def _ownership_sources(f: _Facts) -> str:
    """Each owner the destinations were attributed to, with the records its chain rests on
    (filings, registers) as links and the date they hold at."""
    owners: dict[str, dict[str, Any]] = {}
    for d in f.dests:
        o = d.get("owner")
        if isinstance(o, dict) and _list(o.get("sources")):
            owners.setdefault(_clean(o.get("name")), o)
    out = ['<section id="ownership-sources"><h2>Where the ownership facts come from</h2>']
    if not owners:
        out.append('<p class="muted">No destination was attributed to an owner.</p></section>')
        return "".join(out)
    out.append('<ul class="plain">')
    for name, o in sorted(owners.items()):
        parents = " → ".join(_clean(_dict(c).get("name")) for c in _list(o.get("chain")))
        out.append(f'<li data-testid="ownership-source"><strong>{esc(name)}</strong>'
                   + (f' <span class="muted small">({esc(parents)})</span>' if parents else "")
                   + (f' <span class="muted small">as of {esc(o.get("as_of"))}</span>' if o.get("as_of") else "")
                   + '<div class="small">Sources: ' + " · ".join(link(u) for u in _list(o.get("sources"))) + "</div></li>")
    out.append("</ul></section>")
    return "".join(out)


# ------------------------------------------------------------------------------------------
# Provenance


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], testid: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        f'<tr data-testid="{testid}">' + "".join(f'<td class="wrap" data-label="{esc(h)}">{brk("" if c is None else c)}</td>'
                                                 for h, c in zip(headers, row, strict=False)) + "</tr>"
        for row in rows)
    return f'<div class="scroll"><table class="stack"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _provenance(f: _Facts) -> str:
    doc = f.doc
    tool = _dict(doc.get("tool"))
    det = _dict(doc.get("detection"))
    out = ['<section id="provenance"><h2>Provenance</h2>',
           '<dl class="kv">',
           f'<dt>Tool</dt><dd data-testid="tool-version">{esc(tool.get("name") or "datareach")} {esc(tool.get("version"))}</dd>',
           f'<dt>Report made</dt><dd data-testid="generated-at">{esc(ts(doc.get("generated_at")))}</dd>',
           f'<dt>JSON schema</dt><dd>{esc(doc.get("schema_version"))}</dd>',
           f'<dt>Detection</dt><dd>{esc("on" if det.get("enabled") else "off")}; profile '
           f'{esc("given" if det.get("profile") else "not given")}; matcher {esc(det.get("engine") or "-")}; values '
           f'{esc("REVEALED in full" if det.get("revealed") else "redacted")}</dd>',
           "</dl><h3>Inputs</h3>"]
    inputs = [_dict(i) for i in _list(doc.get("inputs"))]
    out.append(_table(["Path", "Format", "Size (bytes)", "SHA-256", "Records read", "Errors"],
                      ([i.get("path"), i.get("format") or "not recognised", i.get("size"), i.get("sha256"),
                        i.get("records_read"), len(_list(i.get("errors")))] for i in inputs), "input-row"))
    for w in _list(_dict(doc.get("summary")).get("undecoded_warnings")):
        out.append(f'<p class="caution wrap" data-testid="undecoded-warning">Warning: {esc(w)}</p>')
    for w in _list(_dict(doc.get("summary")).get("data_warnings")):
        out.append(f'<p class="caution wrap" data-testid="data-warning">Warning: {esc(w)}</p>')
    errors = [(i.get("path"), _dict(e)) for i in inputs for e in _list(i.get("errors"))]
    if errors:
        out.append(f'<details><summary>{_plural(len(errors), "input error")}</summary><ul class="plain small">')
        for path, e in errors[:1000]:
            where = f"offset {e.get('offset')}" if e.get("offset") is not None else _clean(e.get("json_path") or "")
            out.append(f'<li class="wrap">{esc(path)}: {esc(where)}: {esc(e.get("message"))}'
                       f'{" (reading stopped)" if e.get("fatal") else ""}</li>')
        if len(errors) > 1000:
            out.append(f"<li>… and {len(errors) - 1000} more (in the JSON)</li>")
        out.append("</ul></details>")
    out.append("<h3>Data sources</h3>")
    out.append(_table(["Name", "Kind", "Version", "Date", "Licence", "Credit", "Note"],
                      ([s.get("name"), s.get("kind"), s.get("version"), s.get("date"), s.get("licence"),
                        s.get("credit"), s.get("note")]
                       for s in map(_dict, _list(doc.get("data_sources")))), "data-source-row"))
    if any("db-ip.com" in _clean(s.get("credit")) for s in map(_dict, _list(doc.get("data_sources")))):
        # (DB-IP's CC BY 4.0 terms ask pages that show its data for a link back)
        out.append(f'<p class="small" data-testid="data-credit">IP Geolocation by DB-IP: {link("https://db-ip.com")}</p>')
    out.append("<h3>Policies</h3>")
    if f.policies:
        out.append(_table(["Id", "Name", "Origin", "SHA-256", "As of", "Sources"],
                          ([p.get("id"), p.get("name"), p.get("origin"), p.get("sha256"), p.get("as_of"),
                            " ".join(_clean(s) for s in _list(p.get("sources")))] for p in f.policies), "policy-row"))
        srcs = list(dict.fromkeys(_clean(u) for p in f.policies for u in _list(p.get("sources"))))
        if srcs:
            out.append('<p class="small" data-testid="policy-sources">The policies\' sources: '
                       + " · ".join(link(u) for u in srcs) + "</p>")
    else:
        out.append('<p class="muted">No policy given.</p>')
    out.append("</section>")
    return "".join(out)


# ------------------------------------------------------------------------------------------
# The page


def _category_labels(f: _Facts) -> str:
    """The categories' plain words for the script (it reads them as text): a hidden list."""
    cats = sorted({_clean(c) for x in f.findings for c in _list(x.get("categories"))})
    return ('<dl id="category-labels" hidden>'
            + "".join(f"<dt>{esc(c)}</dt><dd>{esc(category_label(c))}</dd>" for c in cats) + "</dl>")


def _dynamic_sections(f: _Facts) -> str:
    return (
        '<section id="destinations"><h2>Destinations on the internet</h2>'
        '<p class="small muted">Local and private addresses are listed apart, below. Under 900 pixels wide each '
        "destination is a card.</p>"
        '<div class="controls" id="destination-controls" hidden>'
        '<input type="search" id="filter-text" data-testid="filter-text" placeholder="Filter: host, app, company, '
        'country…" aria-label="Filter destinations">'
        '<label>Jurisdiction <select id="filter-jurisdiction" data-testid="filter-jurisdiction">'
        '<option value="">any</option></select></label>'
        '<label><input type="checkbox" id="filter-personal" data-testid="filter-personal"> with personal data</label>'
        '<label><input type="checkbox" id="filter-violations" data-testid="filter-violations"> violations only</label>'
        '<button type="button" class="more" id="destinations-csv" data-testid="destinations-csv" hidden>'
        "Download CSV</button>"
        '<span id="destinations-count" data-testid="destinations-count" class="muted"></span></div>'
        '<noscript><p class="nojs">The sortable table of destinations and the evidence of each finding are drawn '
        "by the page's own inline script (it loads nothing); with JavaScript off, the summary, map, flow, violations "
        "and provenance above and below are complete, and the JSON document holds everything.</p></noscript>"
        '<div class="scroll"><table id="destinations-table" class="stack" data-testid="destinations-table"></table></div>'
        '<p><button type="button" class="more" id="destinations-more" data-testid="destinations-more" hidden>'
        "Show all</button></p></section>"
        '<section id="findings"><h2>Personal data found, with the evidence</h2>'
        '<p class="small muted">Each request as recorded (values found in the URL are redacted unless the audit ran '
        "with --reveal), where in it the value was, the layers it was found under, outermost first, and how sure "
        "the detector is.</p>"
        f'{_category_labels(f)}<div id="findings-list" data-testid="findings-list"></div>'
        '<p><button type="button" class="more" id="findings-more" hidden>Show all</button></p></section>'
    )


def render_html(doc: dict[str, Any]) -> str:
    """One self-contained HTML page for an audit JSON document (:meth:`Audit.to_dict`).

    Works with and without the policy fields (``policies``, ``violations``,
    ``summary.violations``, ``summary.verdict``; absent means no policy was given).
    """
    css = _asset("report.css")
    js = _asset("report.js")
    for name, text, end in (("report.css", css, "</style"), ("report.js", js, "</script")):
        if end in text.lower():  # pragma: no cover - a broken asset, caught by the tests
            raise ValueError(f"{name} must not contain {end}")
    facts = _Facts(doc)
    csp = "; ".join([
        "default-src 'none'",
        f"script-src {csp_hash(js)}",
        f"style-src {csp_hash(css)}",
        "img-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ])
    title = "datareach report: " + ", ".join(_clean(_dict(i).get("path")) for i in _list(doc.get("inputs")))
    body = "".join([
        _header(facts),
        "<main>",
        _summary(facts),
        _policies(facts),
        _organisation(facts),
        _map(facts),
        _flow(facts),
        _apps(facts),
        _data_types(facts),
        _services(facts),
        _dynamic_sections(facts),
        _timeline(facts),
        _local(facts),
        _violations(facts),
        _laws(facts),
        _ownership_sources(facts),
        _provenance(facts),
        "</main>",
    ])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        f"<style>{css}</style></head><body>{body}"
        f'<script type="application/json" id="datareach-data">{embed_json(doc)}</script>'
        f"<script>{js}</script></body></html>\n"
    )
