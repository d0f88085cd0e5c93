"""Anycast and CDN edge addresses: where an address's country is not where the data goes.

A geo database gives every address one country. For an anycast address (Cloudflare, Google
Public DNS, Quad9, Azure Front Door...) the same address is announced from hundreds of sites, and
the one a client reaches depends on routing; for a CDN edge address (Meta's points of presence,
CloudFront, Fastly, Akamai) the server that answers passes the data on to the operator's own
data centres. Either way the database's country -- often the country of registration, or where
the address was last seen -- says nothing about where the data is (``graph.facebook.com`` at a
Meta address "in India" is the case that started this).

The data is ``kb/data/anycast.toml`` (its header states the two rules):

* ``published-range``: the address is in a range the operator publishes for its anycast or edge
  network (Meta: the prefixes its AS announces);
* ``as-registration``: the address is in an autonomous system run only as an anycast or edge
  network, and the geo database puts it in another country than the one the AS is registered in.

:func:`anycast_table` loads it once; :meth:`AnycastTable.label` answers for one address with a
bisect over sorted integer ranges (IPv4 and IPv6 apart; nested blocks are flattened at load, so
the most specific block wins). :func:`label_servers` is the geo stage's hook: it gives each
server record its ``anycast`` label (null when none applies).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import socket
import tomllib
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datareach.schema import DataSource

__all__ = ["AnycastTable", "anycast_source", "anycast_table", "label_servers", "location_note"]

DATA = Path(__file__).resolve().parent.parent / "kb" / "data" / "anycast.toml"
KINDS = ("anycast", "cdn-edge")

_MAPPED_V4_HIGH = 0xFFFF  # ::ffff:0:0/96
_NAT64_HIGH = int(ipaddress.IPv6Address("64:ff9b::")) >> 32  # 64:ff9b::/96


def parse_ip(text: object) -> tuple[int, int] | None:
    """``(version, integer)`` of IP address text, or None. IPv4-mapped and NAT64 (64:ff9b::/96)
    IPv6 addresses are the IPv4 address they carry."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    if not s or len(s) > 80:
        return None
    try:
        if ":" in s:
            if s[0] == "[" and s[-1] == "]":
                s = s[1:-1]
            s = s.split("%", 1)[0]
            n = int.from_bytes(socket.inet_pton(socket.AF_INET6, s), "big")
            if n >> 32 in (_MAPPED_V4_HIGH, _NAT64_HIGH):
                return 4, n & 0xFFFFFFFF
            return 6, n
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, s), "big")
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class _Set:
    operator: str
    name: str
    kind: str
    source: str
    as_of: str


class _Ranges:
    """Disjoint sorted integer ranges of one IP version, each with a label index."""

    def __init__(self, blocks: list[tuple[int, int, int]]) -> None:
        starts: list[int] = []
        ends: list[int] = []
        labels: list[int] = []

        def emit(a: int, b: int, label: int) -> None:
            if a > b:
                return
            if ends and ends[-1] + 1 == a and labels[-1] == label:
                ends[-1] = b
                return
            starts.append(a)
            ends.append(b)
            labels.append(label)

        # CIDR blocks nest or are disjoint: a sweep with a stack of the open blocks gives each
        # stretch of addresses the innermost block that covers it
        blocks = sorted(blocks, key=lambda r: (r[0], -r[1]))
        stack: list[tuple[int, int]] = []  # (end, label)
        cursor = 0
        for s, e, label in blocks:
            while stack and stack[-1][0] < s:
                end, top = stack.pop()
                emit(cursor, end, top)
                cursor = max(cursor, end + 1)
            if stack:
                emit(cursor, s - 1, stack[-1][1])
            cursor = s
            stack.append((e, label))
        while stack:
            end, top = stack.pop()
            emit(cursor, end, top)
            cursor = max(cursor, end + 1)
        self.starts, self.ends, self.labels = starts, ends, labels

    def find(self, n: int) -> int | None:
        i = bisect.bisect_right(self.starts, n) - 1
        if i >= 0 and n <= self.ends[i]:
            return self.labels[i]
        return None

    def __len__(self) -> int:
        return len(self.starts)


class AnycastTable:
    """The anycast / CDN edge ranges and AS rules, with a fast per-address lookup."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._sets: list[_Set] = []
        self._cidrs: list[str] = []
        self._cidr_set: list[int] = []
        v4: list[tuple[int, int, int]] = []
        v6: list[tuple[int, int, int]] = []
        for entry in data.get("set", ()):
            kind = entry["kind"]
            if kind not in KINDS:
                raise ValueError(f"anycast data: kind {kind!r} is not one of {', '.join(KINDS)}")
            si = len(self._sets)
            self._sets.append(_Set(str(entry["operator"]), str(entry["name"]), kind, str(entry["source"]),
                                   str(entry["as_of"])))
            for text in entry["ranges"]:
                net = ipaddress.ip_network(text, strict=True)
                li = len(self._cidrs)
                self._cidrs.append(str(net))
                self._cidr_set.append(si)
                block = (int(net.network_address), int(net.broadcast_address), li)
                (v4 if net.version == 4 else v6).append(block)
        self._v4 = _Ranges(v4)
        self._v6 = _Ranges(v6)
        self._by_asn: dict[int, dict[str, Any]] = {}
        self._by_name: dict[str, dict[str, Any]] = {}
        for rule in data.get("as_rule", ()):
            if rule["kind"] not in KINDS:
                raise ValueError(f"anycast data: kind {rule['kind']!r} is not one of {', '.join(KINDS)}")
            for n in rule.get("numbers", ()):
                self._by_asn[int(n)] = rule
            for name in rule.get("names", ()):
                self._by_name[str(name).casefold()] = rule

    def __len__(self) -> int:
        return len(self._cidrs)

    def lookup(self, ip: object) -> dict[str, Any] | None:
        """The ``published-range`` label of an address (text), or None."""
        parsed = parse_ip(ip)
        if parsed is None:
            return None
        version, n = parsed
        li = (self._v4 if version == 4 else self._v6).find(n)
        if li is None:
            return None
        s = self._sets[self._cidr_set[li]]
        return {"operator": s.operator, "name": s.name, "kind": s.kind, "rule": "published-range",
                "range": self._cidrs[li], "source": s.source, "as_of": s.as_of}

    def label(self, ip: object, asn: object = None, as_org: object = None,
              country: object = None) -> dict[str, Any] | None:
        """The label of a server: its published range, else the AS rule (an anycast / edge AS
        whose address the geo data puts in another country than the AS's registration)."""
        hit = self.lookup(ip)
        if hit is not None:
            return hit
        rule = None
        if isinstance(asn, int) and not isinstance(asn, bool):
            rule = self._by_asn.get(asn)
        if rule is None and isinstance(as_org, str) and as_org:
            rule = self._by_name.get(as_org.strip().casefold())
        if rule is None or not isinstance(country, str) or not country or country == rule["registered"]:
            return None
        what = f"AS{asn}" if isinstance(asn, int) and not isinstance(asn, bool) else f"AS {as_org}"
        return {"operator": rule["operator"], "name": rule["name"], "kind": rule["kind"], "rule": "as-registration",
                "range": f"{what} (registered in {rule['registered']})", "source": rule["source"],
                "as_of": rule["as_of"]}


@functools.cache
def _data(path: str | None = None) -> dict[str, Any]:
    with open(path or DATA, "rb") as fh:
        return tomllib.load(fh)


@functools.cache
def anycast_table(path: str | None = None) -> AnycastTable:
    """The shipped table (``kb/data/anycast.toml``), loaded once."""
    return AnycastTable(_data(path))


def anycast_source() -> DataSource:
    """The ``data_sources`` entry of the shipped ranges (dated by their oldest copy)."""
    from datareach._version import __version__

    data = _data(None)
    sets = data.get("set", ())
    dates = sorted(str(s["as_of"]) for s in sets)
    operators = sorted({str(s["operator"]) for s in [*sets, *data.get("as_rule", ())]})
    return DataSource(
        name="anycast and CDN edge ranges",
        path=None,
        kind="anycast-ranges",
        version=__version__,
        date=dates[0] if dates else None,
        licence="operators' published address lists (facts); copies read from MISP warninglists and "
                "rezmoss/cloud-provider-ip-addresses (CC0-1.0); kb/data/anycast.toml names each",
        note=(f"{len(anycast_table())} ranges and the edge-only autonomous systems of {len(operators)} operators "
              f"({', '.join(operators)}), copies of {dates[0]} to {dates[-1]}: an address there is labelled "
              "anycast or CDN edge, and its country is not where the data goes" if dates else None),
    )


def label_servers(servers: Iterable[MutableMapping[str, Any]], table: AnycastTable | None = None) -> None:
    """Give each server record (``ip``, ``asn``, ``as_org``, ``country``) its ``anycast`` label, or
    None. Servers whose scope is not public get none."""
    t = table or anycast_table()
    for s in servers:
        if s.get("ip_scope") not in (None, "public"):
            s["anycast"] = None
            continue
        s["anycast"] = t.label(s.get("ip"), s.get("asn"), s.get("as_org"), s.get("country"))


def location_note(server: str, country: str | None, label: Mapping[str, Any]) -> str:
    """What a location reach entry says about an anycast / edge server (the geo database's
    country appears here only, as its guess)."""
    kind = "an anycast address" if label.get("kind") == "anycast" else "a CDN edge address"
    where = (f"the published range {label.get('range')}" if label.get("rule") == "published-range"
             else f"{label.get('range')}, which the geo data places elsewhere")
    guess = (f" The geo database's guess, {country}, is not where the data goes." if country
             else "")
    return (f"{server} is {kind} of {label.get('name')} ({where}; source {label.get('source')}, "
            f"as of {label.get('as_of')}): many sites answer at it, so the location is not determinable "
            f"from the address.{guess}")


def operator_names(labels: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """The distinct operator names of some labels, in order."""
    return list(dict.fromkeys(str(x.get("name")) for x in labels if x))
