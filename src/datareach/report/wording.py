"""How the reports word a destination's owner, its legal reach and where its servers are.

One place for the phrasing that the terminal table (:mod:`.table`), the Markdown report
(:mod:`.markdown`), the diff (:mod:`.diff`) and the live lines of the mitmproxy worker
(:mod:`datareach.mitm.worker`) share. Everything here is format-neutral: plain ``str`` pieces and
plain-text lines, never escaped. Each renderer escapes for its own output:
:func:`datareach.report.terminal.safe` for the terminal (the table and the diff, in rich ``Text``,
and the live lines), :func:`datareach.report.markdown.md_text` for Markdown, ``esc`` for HTML. A renderer that needs to escape each name (Markdown) builds its line
from :func:`owner_parts`, :func:`reach_by_jurisdiction` and :func:`where_parts`; one that escapes
the whole line (the terminal) uses the ``*_line`` functions.

The inputs are the audit document's own objects (``owner``, ``reach`` and destination entries,
see :meth:`datareach.api.Audit.to_dict`), read defensively: a document may come from anywhere
(``datareach diff`` reads files users hand it), so a missing key gives ``"?"``, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BASIS_NOTES",
    "BY_AS_NOTE",
    "CATEGORY_LABELS",
    "ROW_LABELS",
    "VERDICT_LABELS",
    "OwnerWording",
    "bases_line",
    "bulk_count_line",
    "bulk_order",
    "bulk_title",
    "by_network_only",
    "category_label",
    "company",
    "destination_owner_line",
    "hosted_by",
    "owner_chain_line",
    "owner_line",
    "owner_parts",
    "owner_summary_line",
    "period_line",
    "reach_by_jurisdiction",
    "reach_line",
    "reach_pairs",
    "where",
    "where_parts",
]

#: How an owner found other than by the host's own domain is marked (``owner.basis``).
BASIS_NOTES = {"as": "by AS", "cname": "by CNAME"}


#: Plain-language names of the findings' legal categories (``findings[].categories``); the id
#: itself stays available to the reader (a tooltip, a footnote).
CATEGORY_LABELS = {
    "us-doj:covered-personal-identifiers": "identifiers covered by the US bulk data rule",
    "us-doj:precise-geolocation": "precise location (US bulk data rule)",
    "us-doj:biometric": "biometric identifiers (US bulk data rule)",
    "us-doj:human-omic": "genetic and other 'omic data (US bulk data rule)",
    "us-doj:health": "health data (US bulk data rule)",
    "us-doj:financial": "financial data (US bulk data rule)",
    "gdpr:personal-data": "personal data under the GDPR",
    "sent_in_cleartext": "sent without encryption",
}
_SPECIAL = "gdpr:special:"


def category_label(category: str) -> str:
    """A category id in plain words (``gdpr:special:health`` -> "special category under the GDPR:
    health"); an unknown id as it is."""
    if category in CATEGORY_LABELS:
        return CATEGORY_LABELS[category]
    if category.startswith(_SPECIAL) and len(category) > len(_SPECIAL):
        kind = category[len(_SPECIAL):].replace("-", " ")
        return f"special category under the GDPR: {kind}"
    return category


@dataclass(frozen=True)
class OwnerWording:
    """The parts of an owner that the reports name.

    ``parent`` is None when the owner is its own ultimate parent; ``parent_country`` is the
    ultimate parent's head office either way. ``state_owner`` is a state in the control chain
    when it is not the ultimate parent itself. ``basis`` is how the owner was found (``"domain"``,
    ``"as"``, ``"cname"``) and ``basis_note`` the mark for the last two (``"by AS"``).
    """

    name: str
    country: str | None
    parent: str | None
    parent_country: str | None
    state_owner: str | None
    basis: str | None
    basis_note: str | None

    @property
    def top(self) -> str:
        """The ultimate parent's name (the owner's own when it is its own ultimate parent)."""
        return self.name if self.parent is None else self.parent


def _opt(value: object) -> str | None:
    return str(value) if value else None


def owner_parts(owner: object) -> OwnerWording | None:
    """The parts of a document's ``owner`` object to name; None when there is no owner."""
    if not isinstance(owner, Mapping) or not owner:
        return None
    top: Mapping[str, Any] = owner.get("ultimate_parent") or {}
    parent = None if top.get("entity") == owner.get("entity") else str(top.get("name", "?"))
    state = owner.get("state_owner")
    state_owner = (str(state.get("name", "?")) if isinstance(state, Mapping) and state
                   and state.get("entity") != top.get("entity") else None)
    basis = owner.get("basis")
    return OwnerWording(
        name=str(owner.get("name", "?")),
        country=_opt(owner.get("hq_country")),
        parent=parent,
        parent_country=_opt(top.get("hq_country")),
        state_owner=state_owner,
        basis=None if basis is None else str(basis),
        basis_note=BASIS_NOTES.get(basis) if isinstance(basis, str) else None,
    )


def company(name: object, country: object = None) -> str:
    """``Alphabet Inc. (US)``: a company and its head office country, when known."""
    return f"{name} ({country})" if country else str(name)


def owner_line(owner: object, *, unknown: str = "?") -> str:
    """``Owner → ultimate parent``, e.g. ``Umeng → Alibaba Group Holding Limited (state: …) [by AS]``."""
    w = owner_parts(owner)
    if w is None:
        return unknown
    text = w.name if w.parent is None else f"{w.name} → {w.parent}"
    if w.state_owner is not None:
        text += f" (state: {w.state_owner})"
    if w.basis_note is not None:
        text += f" [{w.basis_note}]"
    return text


#: How each kind of hosting evidence (``hosting[].basis``) is marked.
HOSTING_NOTES = {"platform": "shared platform", "as": "network", "cname": "CNAME"}


def hosted_by(hosting: object) -> list[str]:
    """Who hosts a destination, one item each (``hosting[]``): ``Amazon Web Services, Inc. (US;
    shared platform Amazon CloudFront)``, ``Alibaba Cloud (CN; network)``."""
    out: list[str] = []
    if not isinstance(hosting, list):
        return out
    for h in hosting:
        if not isinstance(h, Mapping):
            continue
        name = str(h.get("name") or h.get("platform") or "?")
        basis = str(h.get("basis") or "")
        note = HOSTING_NOTES.get(basis, basis)
        if basis == "platform" and h.get("platform") and h.get("platform") != name:
            note = f"shared platform {h['platform']}"
        country = h.get("hq_country")
        item = f"{name} ({country}; {note})" if country else f"{name} ({note})"
        if item not in out:
            out.append(item)
    return out


def destination_owner_line(d: Mapping[str, Any], *, unknown: str = "?") -> str:
    """A destination's owner (:func:`owner_line`), or, with no evidence about the service's owner,
    ``owner unknown, hosted by …`` (owner is not host: the hosting operator is named as such,
    never as the owner); ``unknown`` when neither is known."""
    owner = d.get("owner")
    if isinstance(owner, Mapping) and owner:
        return owner_line(owner)
    hosts = hosted_by(d.get("hosting"))
    if hosts:
        return "owner unknown, hosted by " + ", ".join(hosts)
    return unknown


def owner_chain_line(owner: object, *, unknown: str = "owner unknown") -> str:
    """The live lines' wording, with head office countries:
    ``owner Google LLC (US) -> ultimate parent Alphabet Inc. (US)``, or
    ``owner Meta Platforms, Inc. (US) (its own ultimate parent)``."""
    w = owner_parts(owner)
    if w is None:
        return unknown
    text = f"owner {company(w.name, w.country)}"
    if w.parent is None:
        return text + " (its own ultimate parent)"
    return text + f" -> ultimate parent {company(w.parent, w.parent_country)}"


def reach_pairs(reach: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The distinct (jurisdiction, basis) pairs of a ``reach`` list, in order (an anycast / CDN
    edge server's location, which names no jurisdiction, is :func:`undeterminable_locations`')."""
    out: dict[tuple[str, str], None] = {}
    for r in reach:
        if r.get("determinable") is False or r.get("jurisdiction") is None:
            continue
        out.setdefault((str(r.get("jurisdiction")), str(r.get("basis"))), None)
    return list(out)


def anycast_label(label: object) -> str | None:
    """``CDN edge: Meta Platforms, Inc.`` / ``anycast: Cloudflare, Inc.`` for a server's
    ``anycast`` label (None when there is none)."""
    if not isinstance(label, Mapping):
        return None
    what = "anycast" if label.get("kind") == "anycast" else "CDN edge"
    return f"{what}: {label.get('name') or label.get('operator') or '?'}"


def violation_reach(v: Mapping[str, Any]) -> str:
    """The jurisdictions of a violation (``CN, US``), or, when its only location ground is an
    anycast / CDN edge server's, ``a server whose location is not determinable from its address``."""
    jur = ", ".join(str(j) for j in v.get("jurisdictions") or [])
    undet = any(isinstance(p, Mapping) and p.get("basis") == "location" and p.get("jurisdiction") is None
                for p in v.get("paths") or [])
    if undet:
        more = "a server whose location is not determinable from its address"
        return f"{jur} and {more}" if jur else more
    return jur


def undeterminable_locations(reach: Iterable[Mapping[str, Any]]) -> list[str]:
    """``location not determinable (CDN edge: Meta Platforms, Inc.)`` for each distinct
    location entry of an anycast / CDN edge server."""
    out: dict[str, None] = {}
    for r in reach:
        if r.get("basis") == "location" and (r.get("determinable") is False or r.get("jurisdiction") is None):
            path = r.get("path") or []
            out.setdefault(str(path[-1]) if path else "location not determinable from the address", None)
    return list(out)


def reach_by_jurisdiction(reach: Iterable[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """Each jurisdiction (in order of first mention) with its distinct bases:
    ``[("CN", ["owner"]), ("US", ["host", "location"])]``."""
    bases: dict[str, list[str]] = {}
    for j, b in reach_pairs(reach):
        bases.setdefault(j, []).append(b)
    return list(bases.items())


def reach_line(reach: Iterable[Mapping[str, Any]], *, grouped: bool = True, unknown: str = "none known") -> str:
    """``CN (owner), US (host, location)``; with ``grouped=False`` one item per basis, as the live
    lines write it: ``CN (owner), US (host), US (location)``. ``unknown`` when there is no reach."""
    reach = list(reach)
    if grouped:
        items = [f"{j} ({', '.join(b)})" for j, b in reach_by_jurisdiction(reach)]
    else:
        items = [f"{j} ({b})" for j, b in reach_pairs(reach)]
    items += undeterminable_locations(reach)
    return ", ".join(items) or unknown


def where_parts(destination: Mapping[str, Any]) -> list[str]:
    """Where a destination's servers are: its address scope when not public (``["private"]``),
    else the countries of its servers (``["DE", "US"]``); empty when none is known."""
    scope = destination.get("ip_scope")
    if scope and scope != "public":
        return [str(scope)]
    servers = [s for s in destination.get("servers") or () if isinstance(s, Mapping)]
    labels = list(dict.fromkeys(x for x in (anycast_label(s.get("anycast")) for s in servers) if x))
    if not labels:
        countries = destination.get("countries") or ([destination["country"]] if destination.get("country") else [])
        return [str(c) for c in countries]
    # an anycast / CDN edge server's country is the geo database's guess: it is not shown
    firm = sorted({str(s["country"]) for s in servers if s.get("country") and not s.get("anycast")})
    return [*firm, *(f"not determinable ({x})" for x in labels)]


def where(destination: Mapping[str, Any], *, unknown: str = "?") -> str:
    """:func:`where_parts` as one short cell (``private``, ``DE,US``, ``US``).

    With one server country or none it names the primary server's ``country`` (``unknown`` when
    that has none), as the terminal table always has; :func:`where_parts` names the country of
    any server.
    """
    scope = destination.get("ip_scope")
    if scope and scope != "public":
        return str(scope)
    servers = [s for s in destination.get("servers") or () if isinstance(s, Mapping)]
    if any(s.get("anycast") for s in servers):
        # (short: the reach names the operator) "? (CDN edge)", "DE,? (anycast)"
        firm = sorted({str(s["country"]) for s in servers if s.get("country") and not s.get("anycast")})
        kinds = dict.fromkeys("anycast" if s["anycast"].get("kind") == "anycast" else "CDN edge"
                              for s in servers if isinstance(s.get("anycast"), Mapping))
        return ",".join([*firm, *(f"? ({k})" for k in kinds)])
    countries = destination.get("countries") or []
    if len(countries) > 1:
        return ",".join(map(str, countries))
    return str(destination.get("country") or unknown)


# ------------------------------------------------------------------------------------------
# The organisation's view of a log audit (the document's ``organisation``)

#: A bulk-data verdict (``organisation.bulk[].verdict``) in words.
VERDICT_LABELS = {"above": "ABOVE the threshold", "below": "below the threshold", "cannot tell": "cannot tell"}

#: The labels of ``organisation.rows``.
ROW_LABELS = {"conn": "conn rows", "http": "HTTP rows", "dns": "DNS rows", "requests": "HTTP requests read",
              "requests_with_findings": "with personal data"}
_VERDICT_ORDER = {"above": 0, "cannot tell": 1, "below": 2}


def bulk_order(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The bulk counts as the reports list them: above first, then cannot tell, then below (each
    in the document's order)."""
    return sorted(rows, key=lambda r: _VERDICT_ORDER.get(str(r.get("verdict")), 3))


#: The note under an owner known only from the network that hosts its servers.
BY_AS_NOTE = ("by AS: only the network that hosts the servers is known (its operator is named), not who runs "
              "the service")


def bulk_title() -> str:
    """The heading of the bulk-data counts."""
    return "Bulk data (us-doj-bulk-data, 28 CFR 202.205): distinct US devices or persons per covered counterparty"


def period_line(period: object) -> str:
    """``2026-12-01 00:00:00Z to 2026-12-02 00:00:00Z (1 days of logs; the rule counts any 12
    months)`` from ``organisation.period``; ``no timestamped rows`` when the logs gave none."""
    p: Mapping[str, Any] = period if isinstance(period, Mapping) else {}
    first, last, days = p.get("first"), p.get("last"), p.get("days")
    span = f"{_second(first)} to {_second(last)}" if first and last else "no timestamped rows"
    n = f"{days:g}" if isinstance(days, int | float) and not isinstance(days, bool) else "?"
    return f"{span} ({n} days of logs; the rule counts any 12 months)"


def _second(value: object) -> str:
    """A document time to the second: ``2026-12-01T08:00:00.250113Z`` -> ``2026-12-01 08:00:00Z``."""
    text = str(value)
    if len(text) > 19 and text[10:11] == "T":
        return f"{text[:10]} {text[11:19]}" + ("Z" if text.endswith("Z") else "")
    return text


def _n(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def bulk_count_line(row: Mapping[str, Any]) -> str:
    """What a bulk count rests on, in one line: ``1,204 devices identified in readable payloads
    (threshold: more than 1,000); screening bound 1,530 client devices in the metadata; 12% of
    its connections readable; 30 days of logs``."""
    unit = str(row.get("unit") or "devices or persons")
    threshold = row.get("threshold")
    limit = f"more than {_n(threshold)}" if threshold is not None else "none applies"
    share = row.get("readable_share")
    readable = (f"{share:.0%} of its connections readable" if isinstance(share, int | float)
                and not isinstance(share, bool) else "readable share unknown")
    days = row.get("period_days")
    span = f"{days:g} days of logs" if isinstance(days, int | float) and not isinstance(days, bool) else "period unknown"
    return (f"{_n(row.get('identified'))} {unit} identified in readable payloads (threshold: {limit}); "
            f"screening bound {_n(row.get('screening'))} client devices in the metadata; {readable}; {span}")


def owner_summary_line(row: Mapping[str, Any], network_only: set[str] | frozenset[str] = frozenset()) -> str:
    """An owner summary (``organisation.owners[]``) as ``Owner → ultimate parent``, marked
    ``[by AS]`` when it is only the network operator (:func:`by_network_only`)."""
    name = str(row.get("owner") or row.get("owner_id") or "?")
    parent = row.get("parent")
    text = name if not parent or row.get("parent_id") == row.get("owner_id") else f"{name} → {parent}"
    if str(row.get("owner_id")) in network_only:
        text += f" [{BASIS_NOTES['as']}]"
    return text


def bases_line(bases: Iterable[object]) -> str:
    """An owner summary's ``bases`` (``["AU: location", "US: host, owner"]``) as the reach is
    worded elsewhere: ``AU (location), US (host, owner)``."""
    items = []
    for b in bases:
        j, sep, rest = str(b).partition(": ")
        items.append(f"{j} ({rest})" if sep and rest else j)
    return ", ".join(items) or "none known"


def by_network_only(destinations: Iterable[Mapping[str, Any]]) -> set[str]:
    """The entities (``owner.entity``) that every destination attributed to them was attributed
    by AS: the operator of the network that hosts the servers, not a known owner of the service.
    A report marks them (:data:`BY_AS_NOTE`) instead of calling them the owner."""
    as_only: dict[str, bool] = {}
    for d in destinations:
        o = d.get("owner") if isinstance(d, Mapping) else None
        if isinstance(o, Mapping) and o.get("entity"):
            key = str(o["entity"])
            as_only[key] = as_only.get(key, True) and o.get("basis") == "as"
    return {k for k, v in as_only.items() if v}
