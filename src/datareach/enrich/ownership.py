"""Who owns a destination, and which states' laws can reach its data.

This is where a destination gets its ``owner`` and ``reach``. :class:`OwnershipResolver` answers
for one host name at one date, from the knowledge base (:mod:`datareach.kb`):

**Owner.** The entity that runs the service, found only from evidence about the service:

* ``domain``: the host name, or the closest parent domain, is in the knowledge base;
* ``cname``: the capture's DNS answers took the host through a CNAME chain to a known domain
  of the service's own (an app's own name that CNAMEs to a ByteDance domain is ByteDance's).

**Owner is not host.** Who runs the network or platform a service sits on is a different fact,
kept in ``hosting[]`` with its own evidence (:meth:`OwnershipResolver.hosting`): the shared
platform a name is a tenant of (``d1.cloudfront.net``, ``app.herokuapp.com``: the public
suffix list's PRIVATE section and the curated ``[[platform]]`` records), a CNAME to a platform or
to a network-only entity, and the operator of each server's autonomous system. With no owner
evidence the owner stays unknown ("owner unknown, hosted by Amazon"); the network operator is
never promoted to owner.

Then the parent chain is walked at the capture's date: an edge gives control when its kind is
``vie``, ``state``, ``management`` or ``controlling``, or when an ``equity`` or ``voting`` share
reaches the control threshold (default 50%; a subsidiary recorded without a share counts as
controlled). Smaller stakes and golden shares are listed in
``minority_stakes`` and do not extend the chain. The ``ultimate_parent`` is the top company in
the chain (a state, a state body or a group of persons such as an employees' union committee
above it stays in ``chain``); a state in the chain is reported as ``state_owner``.

**Reach.** Three bases, each with the path that justifies it:

* ``owner``: every entity in the control chain brings the states where it has its headquarters,
  its incorporation and its operating subsidiaries; each with the laws by which that state
  compels organisations under its jurisdiction (``reaches = ["owner"]`` in the KB);
* ``host``: the same for each entity of ``hosting[]`` (the operator of the server's autonomous
  system, the shared platform, a CNAME target run by someone else than the owner): a US app
  hosted on Alibaba Cloud is within reach of the laws that bind Alibaba;
* ``location``: the state where the server sits, with its laws that reach data on its
  territory (``reaches = ["location"]``).

A jurisdiction linked to another (Hong Kong and Macau to China) brings the linked one along,
marked as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from datareach.kb.index import KnowledgeBase

__all__ = ["OwnershipResolver", "ReachOptions"]

_CONTROL_ANY_SHARE = frozenset({"vie", "state", "management", "controlling"})
_SHARE_BASED = frozenset({"equity", "voting"})
STATE_KINDS = frozenset({"state", "state-body"})
#: roles of an entity that only runs networks: a CNAME to it says who hosts, not who owns
_NETWORK_ROLES = frozenset({"cdn", "cloud", "hosting", "telecom", "security"})
#: kinds that can head a control chain but are not a company (the ultimate parent is the top company)
_NOT_COMPANIES = STATE_KINDS | {"person-group"}
_GROUNDS = (("hq", "headquarters"), ("incorporated", "incorporation"), ("operates_in", "operations"))


@dataclass(frozen=True)
class ReachOptions:
    """Parameters of the ownership walk."""

    #: equity or voting share from which a parent controls
    control_threshold: float = 0.5
    #: whether a golden share (special rights with a token stake) counts as control
    golden_share_controls: bool = False
    #: how far up a chain is followed
    max_depth: int = 12


def in_force(since: str | None, until: str | None, date: str) -> bool:
    """Whether a dated fact holds on ``date`` (ISO dates compare as text; ``until`` is exclusive)."""
    return (since is None or since <= date) and (until is None or date < until)


def law_in_force(law: dict[str, Any]) -> str | None:
    """The date from which a law applies: its ``in_force``, else the 1st of January of its
    ``year`` (a law with neither is taken as always in force)."""
    since = law.get("in_force")
    if since:
        return str(since)
    year = law.get("year")
    return f"{year:04d}-01-01" if isinstance(year, int) else None


def _active(edge: dict[str, Any], date: str) -> bool:
    return in_force(edge.get("since"), edge.get("until"), date)


class OwnershipResolver:
    """Owner and reach for hosts at dates; memoises per (entity, date)."""

    def __init__(self, kb: KnowledgeBase, options: ReachOptions | None = None) -> None:
        self.kb = kb
        self.options = options or ReachOptions()
        self._chains: dict[tuple[str, str], dict[str, Any]] = {}
        self._reach_of: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._location: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._owners: dict[tuple[str, str, str, str], tuple[dict[str, Any], list[dict[str, Any]]]] = {}

    # -- the ownership walk -------------------------------------------------------------------

    def _controls(self, edge: dict[str, Any]) -> bool:
        kind = edge["control"]
        if kind in _CONTROL_ANY_SHARE:
            return True
        if kind == "golden-share":
            return self.options.golden_share_controls
        share = edge.get("share")
        # no share recorded: the sources call it a (majority) subsidiary without saying how much
        return share is None or share >= self.options.control_threshold

    def chain(self, entity_id: str, date: str) -> dict[str, Any]:
        """The control structure above an entity at a date (memoised)."""
        key = (entity_id, date)
        hit = self._chains.get(key)
        if hit is not None:
            return hit
        ents = self.kb.entities
        controlled: list[tuple[str, list[str]]] = []  # (entity, path of ids from the owner)
        minority: list[dict[str, Any]] = []
        main: list[dict[str, Any]] = [self._link(entity_id, None)]
        seen = {entity_id}
        frontier: list[tuple[str, list[str]]] = [(entity_id, [entity_id])]
        controlled.append((entity_id, [entity_id]))
        depth = 0
        while frontier and depth < self.options.max_depth:
            depth += 1
            nxt: list[tuple[str, list[str]]] = []
            for eid, path in frontier:
                for edge in ents[eid]["parents"]:
                    if not _active(edge, date):
                        continue
                    pid = edge["entity"]
                    if not self._controls(edge):
                        minority.append({
                            **self._ref(pid), "share": edge.get("share"), "control": edge["control"],
                            "of": eid, "since": edge.get("since"), "note": edge.get("note"),
                        })
                        continue
                    if pid in seen:
                        continue
                    seen.add(pid)
                    nxt.append((pid, [*path, pid]))
                    controlled.append((pid, [*path, pid]))
            frontier = nxt
        # the main chain: at each step the controlling parent with the largest share
        cur, guard = entity_id, 0
        sources: list[str] = list(ents[entity_id]["sources"])
        while guard < self.options.max_depth:
            guard += 1
            best = None
            for edge in ents[cur]["parents"]:
                if _active(edge, date) and self._controls(edge) and edge["entity"] not in {m["entity"] for m in main}:
                    weight = edge["share"] if edge.get("share") is not None else 1.0
                    if best is None or weight > best[0]:
                        best = (weight, edge)
            if best is None:
                break
            edge = best[1]
            main.append(self._link(edge["entity"], edge))
            sources += edge["sources"] + ents[edge["entity"]]["sources"]
            cur = edge["entity"]
        companies = [m for m in main if ents[m["entity"]]["kind"] not in _NOT_COMPANIES]
        top = companies[-1] if companies else main[-1]
        state_owner = next((self._ref(e) for e, _ in controlled if ents[e]["kind"] in STATE_KINDS), None)
        listings = [
            {"entity": e, "name": ents[e]["name"], "list": li["list"],
             "list_name": self.kb.lists.get(li["list"], {}).get("name", li["list"]),
             "since": li.get("since"), "note": li.get("note"), "sources": self.kb.source_urls(li["sources"])}
            for e, _ in controlled for li in ents[e]["listings"] if _active(li, date)
        ]
        result = {
            "main": main,
            "controlled": controlled,
            "ultimate_parent": {"entity": top["entity"], "name": top["name"], "hq_country": top["hq_country"]},
            "state_owner": state_owner,
            "minority_stakes": minority,
            "listings": listings,
            "sources": list(dict.fromkeys(self.kb.source_urls(dict.fromkeys(sources)))),
        }
        self._chains[key] = result
        return result

    def _ref(self, eid: str) -> dict[str, Any]:
        e = self.kb.entities[eid]
        return {"entity": eid, "name": e["name"], "hq_country": e["hq"]}

    def _link(self, eid: str, edge: dict[str, Any] | None) -> dict[str, Any]:
        e = self.kb.entities[eid]
        return {
            "entity": eid, "name": e["name"], "hq_country": e["hq"], "incorporated": e["incorporated"],
            "control": edge["control"] if edge else None, "share": edge.get("share") if edge else None,
            "since": edge.get("since") if edge else None,
        }

    # -- reach --------------------------------------------------------------------------------

    def _laws(self, code: str, basis: str, date: str) -> list[dict[str, Any]]:
        jur = self.kb.jurisdictions.get(code)
        if jur is None:
            return []
        wanted = "location" if basis == "location" else "owner"
        return [
            {"id": law["id"], "title": law["title"], "article": law.get("article"), "year": law.get("year")}
            for law in jur["law"]
            if wanted in law["reaches"] and in_force(law_in_force(law), law.get("until"), date)
        ]

    def _entry(self, code: str, basis: str, path: list[str], date: str, via: str | None = None) -> dict[str, Any]:
        jur = self.kb.jurisdictions.get(code)
        return {
            "jurisdiction": code,
            "name": jur["name"] if jur else code,
            "basis": basis,
            "path": path,
            "laws": self._laws(code, basis, date),
            "linked_from": via,
        }

    def _with_links(self, entries: list[dict[str, Any]], date: str) -> list[dict[str, Any]]:
        out = list(entries)
        have = {(e["jurisdiction"], e["basis"]) for e in entries}
        for e in entries:
            jur = self.kb.jurisdictions.get(e["jurisdiction"])
            linked = jur.get("linked_to") if jur else None
            if linked and (linked, e["basis"]) not in have:
                have.add((linked, e["basis"]))
                path = [*e["path"][:-1], f"{e['path'][-1]}, linked to {linked}", f"{linked} (linked jurisdiction)"]
                out.append(self._entry(linked, e["basis"], path, date, via=e["jurisdiction"]))
        return out

    def entity_reach(self, entity_id: str, start: str, basis: str, date: str) -> list[dict[str, Any]]:
        """Reach through an entity's control chain; ``start`` is the first step of every path."""
        key = (entity_id, basis, date)
        hit = self._reach_of.get(key)
        if hit is None:
            ents = self.kb.entities
            info = self.chain(entity_id, date)
            found: dict[str, dict[str, Any]] = {}
            for eid, ids in info["controlled"]:
                e = ents[eid]
                steps = [self.describe(i) for i in ids]
                for field, ground in _GROUNDS:
                    value = e[field]
                    for code in (value if isinstance(value, list) else [value] if value else []):
                        if code in found:
                            continue
                        found[code] = self._entry(code, basis, [*steps, f"{code} ({ground} of {e['name']})"], date)
            hit = self._with_links(list(found.values()), date)
            self._reach_of[key] = hit
        return [{**r, "path": [start, *r["path"]]} for r in hit]

    def _owner(self, eid: str, basis: str, matched: str, date: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The ``owner`` object and the owner-basis reach for a match (memoised: hosts share them)."""
        key = (eid, basis, matched, date)
        hit = self._owners.get(key)
        if hit is not None:
            return hit
        info = self.chain(eid, date)
        e = self.kb.entities[eid]
        owner = {
            "entity": eid,
            "name": e["name"],
            "hq_country": e["hq"],
            "basis": basis,
            "matched": matched,
            "evidence": [matched],
            "origin": self.kb.domain_origin.get(matched, e["origin"]),
            "ultimate_parent": info["ultimate_parent"],
            "state_owner": info["state_owner"],
            "chain": info["main"],
            "minority_stakes": info["minority_stakes"],
            "listings": info["listings"],
            "as_of": e["as_of"],
            "sources": info["sources"],
        }
        hit = (owner, self.entity_reach(eid, matched, "owner", date))
        self._owners[key] = hit
        return hit

    def describe(self, eid: str) -> str:
        """``Name (HQ)`` of an entity, as the steps of a path show it."""
        e = self.kb.entities[eid]
        return f"{e['name']} ({e['hq']})" if e["hq"] else e["name"]

    def location_reach(self, country: str, date: str, server: str,
                       anycast: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The ``location`` reach of a server in ``country``. An anycast / CDN edge server (its
        ``anycast`` label, else its address in the published ranges: :mod:`.anycast`) has one
        entry with no jurisdiction, ``determinable`` false and a ``note`` that gives the geo
        database's country as a guess only; other entries have ``determinable`` true."""
        if anycast is None:
            anycast = _anycast_lookup(server)
        if anycast:
            return [_undeterminable_location(country, server, anycast)]
        key = (country, date)
        hit = self._location.get(key)
        if hit is None:
            hit = self._with_links([self._entry(country, "location", [f"{country} (server location)"], date)], date)
            hit = [{**r, "determinable": True, "note": None} for r in hit]
            self._location[key] = hit
        return [{**r, "path": [server, *r["path"]]} for r in hit]

    # -- one destination ----------------------------------------------------------------------

    def attribute(self, host: str, cname_chain: Sequence[str] = ()) -> tuple[str, str, str, list[str]] | None:
        """(entity, basis, what matched, evidence) of the *owner* of a host, or None when nothing
        about the service itself is known.

        Only evidence about the service counts: the host name or a parent domain in the knowledge
        base (``domain``), or a CNAME chain to a domain of the service's own (``cname``). A name
        below a shared platform's suffix (``d1.cloudfront.net``, ``app.herokuapp.com``) is a
        tenant's service: the platform's domain says who hosts it, not who owns it, unless the
        knowledge base knows the tenant's own name. A CNAME to a platform or to an entity that only
        runs networks (CDN, cloud, hosting, telecom) is hosting too. The network that carries the
        servers is never owner evidence (:meth:`hosting`).
        """
        kb = self.kb
        if not host or _is_ip(host):
            return None
        return self._attribute(host, kb.platform_of(host), cname_chain)

    def _attribute(self, host: str, plat: tuple[str, dict[str, Any]] | None,
                   cname_chain: Sequence[str] = ()) -> tuple[str, str, str, list[str]] | None:
        """:meth:`attribute` of a name whose platform (``kb.platform_of``) is known."""
        kb = self.kb
        hit = kb.owner_of_name(host)
        if hit is not None and (plat is None or len(hit[1]) > len(plat[0])):
            return hit[0], "domain", hit[1], [host]
        if plat is not None:
            embedded = self._embedded(host, plat)
            if embedded is not None:
                return embedded
        for i, name in enumerate(cname_chain[1:], 1):
            hit = kb.owner_of_name(name)
            if hit is not None and self._owns(name, hit[1]) and not self._network_only(hit[0]):
                return hit[0], "cname", hit[1], list(cname_chain[: i + 1])
        return None

    def _embedded(self, host: str, plat: tuple[str, dict[str, Any]]) -> tuple[str, str, str, list[str]] | None:
        """A tenant name that carries the tenant's own host name in front of the platform's
        suffix (``api.ring.com.cdn.cloudflare.net``, ``assets.example.com.s3.amazonaws.com``,
        ``www.example.com.edgekey.net``: how Cloudflare, Akamai and S3 name a customer's
        service) is evidence about the service: the embedded name's owner, when the knowledge base
        knows it."""
        inner = host[: -len(plat[0]) - 1]
        if "." not in inner:
            return None
        hit = self.kb.owner_of_name(inner)
        if hit is None or not self._owns(inner, hit[1]) or self._network_only(hit[0]):
            return None
        return hit[0], "domain", hit[1], [host, inner]

    def _owns(self, name: str, matched: str) -> bool:
        """Whether the knowledge-base domain ``matched`` (``name`` or a parent of it) names the
        owner of ``name``: not when ``name`` is a tenant below a shared platform's suffix that is
        ``matched`` or above it."""
        plat = self.kb.platform_of(name)
        return plat is None or len(matched) > len(plat[0])

    def network_only(self, eid: str) -> bool:
        """Whether an entity only runs networks (CDN, cloud, hosting, telecom, security)."""
        return self._network_only(eid)

    def _network_only(self, eid: str) -> bool:
        roles = self.kb.entities[eid]["roles"]
        return bool(roles) and all(r in _NETWORK_ROLES for r in roles)

    def key(self, host: str) -> tuple[object, ...]:
        """What a name-only answer (no servers, no CNAME chain) depends on: hosts with the same
        key get the same ``owner``, ``hosting`` and ``reach`` (``explain`` memoises on it)."""
        if not host or _is_ip(host):
            return (None, None, None)
        plat = self.kb.platform_of(host)
        found = self._attribute(host, plat)
        return (found[0] if found else None, found[2] if found else None, plat[0] if plat else None)

    def hosting(
        self, host: str, cname_chain: Sequence[str], servers: Iterable[dict[str, Any]], owner_entity: str | None,
        date: str,
    ) -> list[dict[str, Any]]:
        """Who hosts a destination, each with its evidence: the shared platform the name is a
        tenant of (``platform``), a CNAME target run by someone else than the owner (``cname``),
        and the operator of each server's autonomous system (``as``). Hosting is never ownership:
        these entities bring a ``host`` basis of reach, not an owner."""
        kb = self.kb
        out: list[dict[str, Any]] = []
        seen: set[str] = set()

        def add(eid: str | None, name: str, basis: str, matched: str, evidence: list[str],
                platform: str | None = None) -> None:
            key = eid or f"platform:{name}"
            if key in seen or (eid is not None and eid == owner_entity and basis == "cname"):
                return
            seen.add(key)
            entry: dict[str, Any] = {"entity": eid, "name": name, "hq_country": None, "basis": basis,
                                     "matched": matched, "evidence": evidence, "platform": platform,
                                     "ultimate_parent": None}
            if eid is not None:
                e = kb.entities[eid]
                entry["name"], entry["hq_country"] = e["name"], e["hq"]
                entry["ultimate_parent"] = self.chain(eid, date)["ultimate_parent"]
            out.append(entry)

        names = [host] if host and not _is_ip(host) else []
        names += [n for n in list(cname_chain)[1:] if n]
        for i, name in enumerate(names):
            plat = kb.platform_of(name)
            if plat is not None:
                suffix, info = plat
                evidence = [name, suffix] if i == 0 else [*cname_chain[: i + 1], suffix]
                add(info.get("entity"), str(info.get("name") or suffix), "platform", suffix, evidence,
                    platform=str(info.get("name") or suffix))
                continue
            if i == 0:
                continue
            hit = kb.owner_of_name(name)
            if hit is not None and hit[0] != owner_entity:
                add(hit[0], "", "cname", hit[1], list(cname_chain[: i + 1]))
        for srv in servers:
            hit = kb.owner_of_as(srv.get("asn"), srv.get("as_org"))
            if hit is not None:
                as_label = hit[1] if hit[1].startswith("AS") and hit[1][2:].isdigit() else f"AS {hit[1]}"
                add(hit[0], "", "as", hit[1], [str(srv.get("ip") or host), as_label])
        return out

    @staticmethod
    def hosting_start(entry: dict[str, Any]) -> str:
        """The first step of a host-basis path for a hosting entry."""
        ev = [str(x) for x in entry.get("evidence") or []]
        if entry["basis"] == "as":
            return f"{ev[0]} ({ev[-1]})" if ev else str(entry.get("matched"))
        if entry["basis"] == "platform":
            return " -> ".join(ev[:-1]) + f" (on {entry.get('platform')}, a shared platform: {entry.get('matched')})"
        return " -> ".join(ev) + " (CNAME)"

    def resolve_all(
        self,
        host: str,
        date: str,
        *,
        cname_chain: Sequence[str] = (),
        servers: Iterable[dict[str, Any]] = (),
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[dict[str, Any]]]:
        """``owner``, ``hosting[]`` and ``reach[]`` of a destination, as in the audit JSON."""
        servers = list(servers)
        found = self.attribute(host, cname_chain)
        owner: dict[str, Any] | None = None
        reach: list[dict[str, Any]] = []
        owner_entity = None
        if found is not None:
            owner_entity, basis, matched, evidence = found
            owner, owner_reach = self._owner(owner_entity, basis, matched, date)
            if basis == "cname" or len(evidence) > 1:  # (a CNAME chain; a tenant name that embeds its own)
                owner = {**owner, "evidence": evidence}
            reach = list(owner_reach)
        hosting = self.hosting(host, cname_chain, servers, owner_entity, date)
        seen_host: set[str] = set()
        for h in hosting:
            if h["entity"] is None:
                continue
            for r in self.entity_reach(h["entity"], self.hosting_start(h), "host", date):
                if r["jurisdiction"] not in seen_host:
                    seen_host.add(r["jurisdiction"])
                    reach.append(r)
        seen_loc: set[tuple[Any, Any]] = set()
        for s in servers:
            c = s.get("country")
            label = s.get("anycast") if isinstance(s.get("anycast"), dict) else None
            key = (c, label.get("operator") if label else None)  # (an anycast server's country is a guess)
            if c and key not in seen_loc:
                seen_loc.add(key)
                reach += self.location_reach(c, date, s.get("ip") or host, anycast=label)
        return owner, hosting, reach

    def resolve(
        self,
        host: str,
        date: str,
        *,
        cname_chain: Sequence[str] = (),
        servers: Iterable[dict[str, Any]] = (),
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """``owner`` and ``reach[]`` of a destination (:meth:`resolve_all` without ``hosting``)."""
        owner, _, reach = self.resolve_all(host, date, cname_chain=cname_chain, servers=servers)
        return owner, reach


def _anycast_lookup(server: str) -> dict[str, Any] | None:
    from datareach.enrich.anycast import anycast_table

    return anycast_table().lookup(server)


def _undeterminable_location(country: str | None, server: str, label: dict[str, Any]) -> dict[str, Any]:
    """The location reach entry of an anycast / CDN edge server: no jurisdiction, no laws."""
    from datareach.enrich.anycast import location_note

    what = "anycast" if label.get("kind") == "anycast" else "CDN edge"
    return {
        "jurisdiction": None,
        "name": f"not determinable ({what}: {label.get('name')})",
        "basis": "location",
        "path": [server, f"location not determinable from the address ({what}: {label.get('name')})"],
        "laws": [],
        "linked_from": None,
        "determinable": False,
        "note": location_note(server, country, label),
    }


def _is_ip(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()


def attach_ownership(destinations: list[dict[str, Any]], resolver: OwnershipResolver,
                     default_date: str) -> dict[str, dict[str, Any]]:
    """Give each destination its ``owner`` and ``reach[]``, at the date of its first packet.

    Returns the laws cited, by id, with their full text of effect and sources (the audit's
    top-level ``laws``).
    """
    for d in destinations:
        date = (d.get("first_seen") or default_date)[:10]
        d["owner"], d["hosting"], d["reach"] = resolver.resolve_all(
            d["host"], date, cname_chain=d.get("cname_chain") or (), servers=d.get("servers") or (),
        )
    return cited_laws(resolver.kb, (r for d in destinations for r in d["reach"]))


def cited_laws(kb: KnowledgeBase, reach: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Full records of the laws named in ``reach`` entries."""
    wanted = {law["id"] for r in reach for law in r["laws"]}
    out: dict[str, dict[str, Any]] = {}
    for code, jur in kb.jurisdictions.items():
        for law in jur["law"]:
            if law["id"] in wanted:
                out[law["id"]] = {
                    "jurisdiction": code, "title": law["title"], "article": law.get("article"),
                    "year": law.get("year"), "reaches": law["reaches"], "effect": law["effect"],
                    "sources": kb.source_urls(law["sources"]), "unverified": law.get("unverified"),
                }
    return dict(sorted(out.items()))

