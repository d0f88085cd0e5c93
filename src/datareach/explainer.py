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
    if (" " in text or not text.isprintable()) if text.isascii() else \
            any(unicodedata.category(c) in ("Cc", "Cf", "Zs") for c in text):
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

    if ":" not in host and not host.replace(".", "").isdigit():
        return None  # (neither an IPv6 nor a dotted IPv4 address: a name)
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
    from datareach.enrich.anycast import anycast_table

    # (the anycast / CDN edge label, as the geo stage gives a server's: its location is then not determinable)
    server["anycast"] = (anycast_table().label(ip, server.get("asn"), server.get("as_org"), server.get("country"))
                         if server.get("ip_scope") == "public" else None)
    owner, hosting, reach = resolver.resolve_all(ip, date, servers=[server])
    operator = next(({k: h[k] for k in ("entity", "name", "hq_country", "matched", "basis")}
                     for h in hosting if h["basis"] == "as"), None)
    return {"host": ip, "registrable_domain": None, "date": date, "owner": owner,
            "network": {**server, "operator": operator}, "hosting": hosting, "service": None, "reach": reach}


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
        owner, hosting, reach = resolver.resolve_all(host, date)
        yield {"host": host, "registrable_domain": registrable_domain(host), "date": date,
               "owner": owner, "hosting": hosting, "service": services.service(host, (), owner, date),
               "reach": reach}


def explain_json_lines(hosts: Iterable[str], resolver: OwnershipResolver, date: str,
                       seen_reach: dict[tuple[object, ...], list[dict[str, Any]]] | None = None,
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
    # no service, the owner's and hosting part, the reach part, and the owner
    tails: dict[tuple[object, ...], tuple[bool, bytes, bytes, bytes, dict[str, Any] | None]] = {}
    service_parts: dict[tuple[tuple[object, ...], tuple[str, str]], bytes] = {}
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
        key = resolver.key(host)
        tail = tails.get(key)
        if tail is None:
            owner, hosting, reach = resolver.resolve_all(host, date)
            head = date_part + b',"owner":' + dumps(owner) + b',"hosting":' + dumps(hosting)
            end = b',"reach":' + dumps(reach) + b"}"
            matched = key[1]
            possible = not isinstance(matched, str) or kb.service_possible(matched)
            tail = (possible, head + b',"service":null' + end, head, end, owner)
            tails[key] = tail
            if seen_reach is not None:
                seen_reach[key] = reach
        matched = key[1]
        rd = matched if isinstance(matched, str) and matched in registrable and key[2] is None \
            else registrable_domain(host)
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
