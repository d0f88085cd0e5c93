"""``datareach explain``: owner and legal reach of host names, without a capture.

The answers have the shape of an audit's destinations (``owner`` and ``reach[]``), so that a
list of hosts from anywhere -- a firewall log, a privacy label, a vendor questionnaire -- gets
the same treatment as captured traffic. Only the knowledge base is loaded (no pyarrow, no geo
data), and owners and reach are memoised per matched domain, so a large list streams through at
hundreds of thousands of hosts per second.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from datareach.enrich.ownership import OwnershipResolver, ReachOptions
from datareach.enrich.services import ServiceResolver
from datareach.kb import knowledge_base

__all__ = ["explain", "explain_iter"]


def explain(
    hosts: Iterable[str],
    *,
    at: str | None = None,
    reach_options: ReachOptions | None = None,
) -> list[dict[str, Any]]:
    """Owner and reach for host names without a capture, in the shape of audit destinations.

    ``at``: the date (ISO) whose ownership facts apply; today by default.
    """
    resolver = OwnershipResolver(knowledge_base(), reach_options)
    return list(explain_iter(hosts, resolver, at or datetime.now(UTC).date().isoformat()))


def host_of(raw: str) -> str:
    """The host in what was given: a host name, a URL (``https://host:8443/path?q``), ``host:port``,
    an IP address, ``[v6]`` or ``[v6]:port``; stripped, lower case, no root dot ("" for a blank)."""
    text = raw.strip()
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zs") for c in text):
        return text.lower()  # (no URL, host or address: the name as given, which reports show inert)
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit("@", 1)[-1]  # (user:password@host)
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # host:port (an IPv6 address has more than one colon)
        text = text.split(":", 1)[0]
    return text.lower().rstrip(".")


def ip_of(host: str) -> str | None:
    """``host`` as a normalised IP address (``2a03:2880::1``), or None when it is a name."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def _names(hosts: Iterable[str]) -> Iterator[str]:
    """Host names as the knowledge base keys them (:func:`host_of`); blanks dropped."""
    for raw in hosts:
        host = host_of(raw)
        if host:
            yield host


class _Network:
    """What the geo data say about addresses (loaded at the first address asked about)."""

    def __init__(self) -> None:
        self._geo: Any = None

    def of(self, ip: str) -> dict[str, Any]:
        import pyarrow as pa

        if self._geo is None:
            from datareach.enrich.geo import GeoResolver

            self._geo = GeoResolver()
        row = self._geo.enrich(pa.array([ip], pa.string())).to_pylist()[0]
        return {"ip": ip, **{k: row.get(k) for k in ("ip_scope", "country", "asn", "as_org")}}


def explain_ip(ip: str, resolver: OwnershipResolver, date: str, network: _Network) -> dict[str, Any]:
    """An IP address: its network (scope, country, autonomous system and the operator the
    knowledge base knows for it) and the reach of that operator (basis ``host``) and of the
    country (``location``). ``owner`` stays None: who runs the service behind an address is not
    known from the address (a cloud or CDN network hosts many owners' services)."""
    server = network.of(ip)
    reach: list[dict[str, Any]] = []
    operator = None
    hit = resolver.kb.owner_of_as(server.get("asn"), server.get("as_org"))
    if hit is not None:
        e = resolver.kb.entities[hit[0]]
        operator = {"entity": hit[0], "name": e["name"], "hq_country": e["hq"], "matched": hit[1], "basis": "as"}
        reach += resolver.entity_reach(hit[0], f"{ip} (AS {hit[1]})", "host", date)
    if server.get("country"):
        reach += resolver.location_reach(server["country"], date, ip)
    return {"host": ip, "registrable_domain": None, "date": date, "owner": None, "service": None,
            "network": {**server, "operator": operator}, "reach": reach}


def explain_iter(hosts: Iterable[str], resolver: OwnershipResolver, date: str) -> Iterator[dict[str, Any]]:
    """:func:`explain` one host at a time (the CLI streams 100,000s of hosts through it)."""
    from datareach.kb.psl import registrable_domain_of_many as registrable_domain

    network = _Network()
    services = ServiceResolver(resolver.kb, resolver.chain)
    for host in _names(hosts):
        ip = ip_of(host)
        if ip is not None:
            yield explain_ip(ip, resolver, date, network)
            continue
        owner, reach = resolver.resolve(host, date)
        yield {"host": host, "registrable_domain": registrable_domain(host), "date": date,
               "owner": owner, "service": services.service(host, (), owner, date), "reach": reach}


def explain_json_lines(hosts: Iterable[str], resolver: OwnershipResolver, date: str,
                       seen_reach: dict[tuple[str, str, str] | None, list[dict[str, Any]]] | None = None,
                       ) -> Iterator[bytes]:
    """:func:`explain_iter`'s entries as JSON bytes, one per host, byte for byte the same.

    Hosts that match the same knowledge-base domain share their ``owner`` and ``reach``, and
    those that match the same service domain their ``service``, so those are serialised once
    per match and spliced in: a list of 100,000 hosts from a few thousand domains costs two
    suffix walks over dictionaries and a few small writes per host.
    ``seen_reach`` collects each distinct ``reach`` list (for the laws they cite).
    """
    import orjson

    from datareach.kb.psl import registrable_domain_of_many as registrable_domain

    dumps = orjson.dumps
    # per owner match: whether a name under the match can be a service's, the entry's end with
    # no service, the owner's part and the reach part, and the owner
    tails: dict[tuple[str, str, str] | None, tuple[bool, bytes, bytes, bytes, dict[str, Any] | None]] = {}
    service_parts: dict[tuple[tuple[str, str, str] | None, tuple[str, str]], bytes] = {}
    date_part = b',"date":' + dumps(date)
    registrable = resolver.kb.registrable
    kb = resolver.kb
    service_of = kb.service_of_name
    services = ServiceResolver(kb, resolver.chain)
    network = _Network()
    for host in _names(hosts):
        ip = ip_of(host)
        if ip is not None:
            doc = explain_ip(ip, resolver, date, network)
            if seen_reach is not None:
                seen_reach[("ip", ip, "")] = doc["reach"]
            yield dumps(doc)
            continue
        found = resolver.attribute(host)
        key = None if found is None else (found[0], found[1], found[2])
        tail = tails.get(key)
        if tail is None:
            owner, reach = resolver.resolve(host, date)
            head, end = date_part + b',"owner":' + dumps(owner), b',"reach":' + dumps(reach) + b"}"
            possible = found is None or kb.service_possible(found[2])
            tail = (possible, head + b',"service":null' + end, head, end, owner)
            tails[key] = tail
            if seen_reach is not None:
                seen_reach[key] = reach
        rd = found[2] if found is not None and found[2] in registrable else registrable_domain(host)
        service = service_of(host) if tail[0] else None
        if service is None:
            yield b'{"host":' + dumps(host) + b',"registrable_domain":' + dumps(rd) + tail[1]
            continue
        skey = (key, service)
        spart = service_parts.get(skey)
        if spart is None:
            spart = service_parts[skey] = b',"service":' + dumps(
                services.of((service[0], "domain", service[1]), tail[4], date))
        yield b'{"host":' + dumps(host) + b',"registrable_domain":' + dumps(rd) + tail[2] + spart + tail[3]
