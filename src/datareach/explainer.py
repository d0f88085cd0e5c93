"""``datareach explain``: owner and legal reach of host names, without a capture.

The answers have the shape of an audit's destinations (``owner`` and ``reach[]``), so that a
list of hosts from anywhere -- a firewall log, a privacy label, a vendor questionnaire -- gets
the same treatment as captured traffic. Only the knowledge base is loaded (no pyarrow, no geo
data), and owners and reach are memoised per matched domain, so a large list streams through at
hundreds of thousands of hosts per second.
"""

from __future__ import annotations

import itertools
import re
import socket
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from datareach.enrich.ownership import OwnershipResolver, ReachOptions
from datareach.enrich.services import ServiceResolver
from datareach.kb import knowledge_base

__all__ = ["explain", "explain_iter"]

# a name or dotted address as the knowledge base keys it already (host_of's answer is the text)
_PLAIN_HOST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?").fullmatch
# the same with labels of at most 63 characters (a name that :class:`NameWalk` answers for)
_FAST_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?").fullmatch


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
    if _PLAIN_HOST(text) is not None:  # (most names: lower case, no scheme, port or path)
        return text[:-1] if text.endswith(".") else text
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
    text = host.split("%", 1)[0]
    if ":" in text and "." not in text:  # (the C parser and printer: the same text, RFC 5952)
        try:
            out = socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text))
        except (OSError, ValueError):
            return None
        if "." not in out:  # (glibc writes ::a.b.c.d and ::ffff:a.b.c.d: Python does not)
            return out
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _canonical_v4(text: str) -> bool:
    """Whether digits and dots are an IPv4 address written as :func:`ip_of` writes it."""
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and (p[0] != "0" or p == "0") and int(p) < 256
                                   for p in parts)


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
        self._anycast: Any = None

    def of(self, ip: str) -> dict[str, Any]:
        return self.of_many([ip])[0]

    def of_many(self, ips: list[str]) -> list[dict[str, Any]]:
        """The ``network`` part of many addresses at once (one vectorised geo look-up), without
        the anycast label (:meth:`anycast`)."""
        import pyarrow as pa

        if self._geo is None:
            from datareach.enrich.geo import GeoResolver

            self._geo = GeoResolver()
        table = self._geo.enrich(pa.array(ips, pa.string()))
        cols = [table.column(k).to_pylist() for k in ("ip_scope", "country", "asn", "as_org")]
        return [{"ip": ip, "ip_scope": scope, "country": country, "asn": asn, "as_org": org}
                for ip, scope, country, asn, org in zip(ips, *cols, strict=True)]

    def anycast(self, server: dict[str, Any]) -> dict[str, Any] | None:
        """The anycast / CDN edge label of a server, as the geo stage gives a public one (its
        location is then not determinable)."""
        if server.get("ip_scope") != "public":
            return None
        if self._anycast is None:
            from datareach.enrich.anycast import anycast_table

            self._anycast = anycast_table()
        label: dict[str, Any] | None = self._anycast.label(
            server["ip"], server.get("asn"), server.get("as_org"), server.get("country"))
        return label


def explain_ip(ip: str, resolver: OwnershipResolver, date: str, network: _Network,
               server: dict[str, Any] | None = None) -> dict[str, Any]:
    """An IP address: its network (scope, country, autonomous system and the operator the
    knowledge base knows for it) and the reach of that operator (basis ``host``) and of the
    country (``location``). ``server``: the address's :meth:`_Network.of_many` row, if looked up
    already. ``owner`` stays None: who runs the service behind an address is not
    known from the address (a cloud or CDN network hosts many owners' services)."""
    server = network.of(ip) if server is None else server
    if "anycast" not in server:
        server["anycast"] = network.anycast(server)
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


#: how many hosts are read ahead, so that their addresses are looked up together
BATCH = 4096
#: how many answer templates are kept (a bound on memory: about 2 KB each); past it they are
#: dropped and made again as hosts need them
MEMO_MAX = 20_000


class _Template:
    """A host's JSON entry after ``registrable_domain`` (or all of it, for an address), cut where
    the host's own name starts a string (the hosting evidence and the first step of a path of a
    tenant of a shared platform; an address everywhere) and, for a tenant name that embeds its
    customer's (``api.ring.com.cdn.cloudflare.net``), where that name stands. Filled with
    another host's name it gives that host's entry: checked once against the entry made from
    scratch before it is trusted; a template that fails is not used again."""

    __slots__ = ("host", "parts", "rest", "verified")

    def __init__(self, rest: bytes, host: str, inner: str | None, clean: Callable[[bytes], bytes]) -> None:
        self.host = host
        self.rest = rest  # (the entry of ``host`` itself, for when it comes again)
        self.parts: list[list[bytes]] = [p.split(clean(_marker(inner, b'"'))) if inner else [p]
                                         for p in rest.split(clean(_marker(host, b"")))]
        #: None: not used for another host yet; True: gave the same entry; False: did not
        self.verified: bool | None = None

    def fill(self, host: str, inner: str | None, clean: Callable[[bytes], bytes]) -> bytes:
        # (a plain name needs no escape: its marker is the name in quotes)
        mh = b'"' + host.encode() if host.isascii() and host.isprintable() and '"' not in host \
            and "\\" not in host else clean(_marker(host, b""))
        parts = self.parts
        if inner is None:
            return mh.join([p[0] for p in parts]) if len(parts[0]) == 1 else \
                mh.join([b"".join(p) for p in parts])
        return mh.join([clean(_marker(inner, b'"')).join(p) for p in parts])


# a knowledge-base domain cut out of an entry (no domain has a NUL in it)
_CUT = "\x00matched\x00"
_CUT_MARK = b'"\\u0000matched\\u0000"'
_FAILED: list[bytes] = []

# the parts of an entry a :class:`_Cut` leaves out: the host, the customer's name a platform
# tenant's name embeds, the knowledge-base domain matched (each inside a JSON string), and an
# address's AS number and AS organisation (each a whole JSON value)
_HOST, _INNER, _MATCHED, _ASN, _ORG = "\x00h\x00", "\x00i\x00", "\x00m\x00", "\x00a\x00", "\x00o\x00"
_CUT_LETTERS = {b"h": 0, b"i": 1, b"m": 2, b"a": 3, b"o": 4}


class _Cut:
    """An entry with the parts that vary between hosts of one kind left out (the kinds:
    a platform's tenants with the same owner entity, service and platform; addresses with the
    same scope, country, anycast label and AS operator): filled with a host's parts, it is that
    host's entry. Made from one host's entry by putting markers where its parts stand (known
    places only: the owner's ``matched`` and ``evidence``, the hosting evidence, the first step of
    each path, an anycast note, the ``network``), and checked to give that entry back."""

    __slots__ = ("pieces", "slots")

    def __init__(self, data: bytes) -> None:
        # (no host has a NUL: a \u0000 in the entry is a marker's)
        split = data.split(b"\\u0000")
        pieces = split[0::2]
        slots = []
        for i, letter in enumerate(split[1::2]):
            slot = _CUT_LETTERS[letter]
            if slot >= 3:  # (a whole JSON value: the marker's quotes go too)
                pieces[i] = pieces[i][:-1]
                pieces[i + 1] = pieces[i + 1][1:]
            slots.append(slot)
        self.pieces: list[bytes] = pieces
        self.slots: list[int] = slots

    def fill(self, values: Sequence[bytes]) -> bytes:
        pieces = self.pieces
        out = [pieces[0]]
        for i, slot in enumerate(self.slots, 1):
            out.append(values[slot])
            out.append(pieces[i])
        return b"".join(out)


def _cut_doc(doc: dict[str, Any], host: str, inner: str | None, matched: str | None) -> dict[str, Any]:
    """``doc`` with the markers of :class:`_Cut` where ``host``, ``inner`` and ``matched`` stand."""

    def start(step: object) -> object:
        if not isinstance(step, str):
            return step
        if matched is not None and step == matched:
            return _MATCHED
        if step == host:
            return _HOST
        if step.startswith(host + " "):
            return _HOST + step[len(host):]
        return step

    def evidence(items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for i, x in enumerate(items):
            if x == host:
                out.append(_HOST)
            elif inner is not None and i == 1 and x == inner:
                out.append(_INNER)
            elif matched is not None and x == matched:
                out.append(_MATCHED)
            else:
                out.append(x)
        return out

    cut = dict(doc)
    if cut.get("host") == host and "network" in cut:
        cut["host"] = _HOST
    owner = cut.get("owner")
    if isinstance(owner, dict):
        owner = cut["owner"] = dict(owner)
        if matched is not None and owner.get("matched") == matched:
            owner["matched"] = _MATCHED
        owner["evidence"] = evidence(list(owner.get("evidence") or []))
    cut["hosting"] = [{**h, "evidence": evidence(list(h.get("evidence") or []))} for h in cut.get("hosting") or []]
    reach = []
    for r in cut.get("reach") or []:
        r = {**r, "path": [start(r["path"][0]), *r["path"][1:]] if r.get("path") else r.get("path")}
        if isinstance(r.get("note"), str):
            r["note"] = start(r["note"])
        reach.append(r)
    cut["reach"] = reach
    net = cut.get("network")
    if isinstance(net, dict):
        cut["network"] = {**net, "ip": _HOST if net.get("ip") == host else net.get("ip"), "asn": _ASN,
                          "as_org": _ORG}
    return cut


def _marker(text: str, end: bytes) -> bytes:
    import orjson

    return bytes(orjson.dumps(text)[:-1]) + end


def _same(data: bytes) -> bytes:
    return data


def explain_json_lines(hosts: Iterable[str], resolver: OwnershipResolver, date: str,
                       seen_reach: dict[tuple[object, ...], list[dict[str, Any]]] | None = None,
                       *, inert: bool = False) -> Iterator[bytes]:
    """:func:`explain_json_chunks`, one entry at a time."""
    for batch in explain_json_batches(hosts, resolver, date, seen_reach, inert=inert):
        yield from batch


def explain_json_batches(hosts: Iterable[str], resolver: OwnershipResolver, date: str,
                         seen_reach: dict[tuple[object, ...], list[dict[str, Any]]] | None = None,
                         *, inert: bool = False) -> Iterator[list[bytes]]:
    """:func:`explain_json_chunks`, a list of entries at a time."""
    for chunk in explain_json_chunks(hosts, resolver, date, seen_reach, inert=inert):
        yield chunk.split(b"\n")[:-1]  # (an entry has no line break: JSON escapes those in strings)


def explain_json_chunks(hosts: Iterable[str], resolver: OwnershipResolver, date: str,
                        seen_reach: dict[tuple[object, ...], list[dict[str, Any]]] | None = None,
                        *, inert: bool = False, sep: bytes = b"\n") -> Iterator[bytes]:
    """:func:`explain_iter`'s entries as JSON bytes, each followed by ``sep``, up to :data:`BATCH`
    of them at a time (hosts given, blank ones left out), byte for byte the same (with
    ``inert``, as :func:`~datareach.report.terminal.inert_json` writes them).

    Hosts that match the same knowledge-base domain (or platform, or whose addresses are in the
    same network) have the same entry but for their own name: the entry is serialised once per
    match as a :class:`_Template` and the name spliced in. A long list's names are looked up by
    one walk over their suffixes (:class:`~datareach.kb.walk.NameWalk`) and its addresses a
    batch at a time (:data:`BATCH`), vectorised. At most :data:`MEMO_MAX` templates are kept.
    ``seen_reach`` collects each distinct ``reach`` list (for the laws they cite).
    """
    import orjson

    from datareach.kb.psl import registrable_domain_of_many as registrable_domain
    from datareach.kb.walk import NameWalk
    from datareach.report.terminal import inert_json

    clean: Callable[[bytes], bytes] = inert_json if inert else _same
    dumps = orjson.dumps
    kb = resolver.kb
    registrable = kb.registrable
    service_of = kb.service_of_name
    service_possible = kb.service_possible
    services = ServiceResolver(kb, resolver.chain)
    network = _Network()
    templates: dict[tuple[object, ...], _Template | bytes] = {}
    by_entity: dict[tuple[object, ...], list[bytes]] = {}
    cuts: dict[tuple[object, ...], _Cut | list[bytes]] = {}
    marks: dict[str, bytes] = {}
    #: the entity template of a knowledge-base domain with no service, cut at the domain's places
    direct: dict[str, tuple[bytes, ...]] = {}
    origin = kb.domain_origin
    possible: dict[object, bool] = {}
    key_of = resolver.key
    walk: NameWalk | None = None

    def name_entry(host: str) -> dict[str, Any]:
        owner, hosting, reach = resolver.resolve_all(host, date)
        return {"host": host, "registrable_domain": registrable_domain(host), "date": date, "owner": owner,
                "hosting": hosting, "service": services.service(host, (), owner, date), "reach": reach}

    def made(tkey: tuple[object, ...], host: str, inner: str | None, head: bytes, doc: dict[str, Any]) -> bytes:
        """The entry made from scratch, and the template it makes or checks."""
        line = clean(dumps(doc))
        t = templates.get(tkey)
        if seen_reach is not None and t is None:
            seen_reach.setdefault(tkey, doc["reach"])
        if not line.startswith(head):
            return line  # (not expected: the head is the entry's start)
        rest = bytes(memoryview(line)[len(head):])  # (a copy: orjson's bytes hold a buffer of kilobytes)
        if t is None:
            if len(templates) >= MEMO_MAX:
                templates.clear()
            new = _Template(rest, host, inner, clean)
            templates[tkey] = rest if len(new.parts) == 1 and len(new.parts[0]) == 1 else new
        elif isinstance(t, _Template) and t.verified is None and t.host != host:
            t.verified = t.fill(host, inner, clean) == rest
        return line

    def name_line(host: str, plain: bool) -> bytes:
        matched: object
        plat: object
        service: tuple[str, str] | None
        key: tuple[object, ...]
        if plain and walk is not None:
            eid, matched, plat, service, rd = walk.look(host)
            if plat is None:
                key = (eid, matched, None)
            elif matched is not None and len(matched) > len(plat):
                key = (eid, matched, plat)  # (the knowledge base knows the tenant's own name)
            else:  # (as the resolver's _embedded: the customer's name in front of the suffix)
                front = host[: -len(plat) - 1]
                key = (None, None, plat)
                if "." in front:
                    e2, m2, p2, _, _ = walk.look(front)
                    if e2 is not None and m2 is not None and (p2 is None or len(m2) > len(p2)) \
                            and not resolver.network_only(e2):
                        key = (e2, m2, plat)
            head = b'{"host":"' + host.encode() + (b'","registrable_domain":null' if rd is None else
                                                   b'","registrable_domain":"' + rd.encode() + b'"')
        else:
            key = key_of(host)
            matched, plat = key[1], key[2]
            rd = matched if isinstance(matched, str) and matched in registrable and plat is None \
                and len(host) <= 253 else registrable_domain(host)
            ok = possible.get(matched)
            if ok is None:
                ok = possible[matched] = not isinstance(matched, str) or service_possible(matched)
            service = service_of(host) if ok else None
            head = clean(b'{"host":' + dumps(host) + b',"registrable_domain":' + dumps(rd))
        # a tenant of a platform whose owner was found by the customer's name it embeds
        # (``api.ring.com.cdn.cloudflare.net``): that name is part of the entry
        matched = key[1]
        inner = host[: -len(plat) - 1] if isinstance(plat, str) and isinstance(matched, str) \
            and host != matched and not host.endswith("." + matched) else None
        ekey = (key[0], origin.get(matched), service) if plat is None and isinstance(matched, str) else None
        if ekey is not None:
            parts = by_entity.get(ekey)
            if parts is not None and parts is not _FAILED:
                return head + mark(str(matched)).join(parts)
        ckey: tuple[object, ...] | None = None
        values: list[bytes] = []
        if isinstance(plat, str):
            ckey = ("p", key[0], origin.get(matched) if isinstance(matched, str) else None, plat, service,
                    inner is not None)
            values = [text_of(host), text_of(inner) if inner else b"",
                      text_of(matched) if isinstance(matched, str) else b"", b"", b""]
            c = cuts.get(ckey)
            if isinstance(c, _Cut):
                return head + c.fill(values)
        tkey = (key, service, inner is not None)
        t = templates.get(tkey)
        if t is not None:
            if type(t) is bytes:
                return head + t
            if t.verified:  # type: ignore[union-attr]
                return head + t.fill(host, inner, clean)  # type: ignore[union-attr]
            if t.host == host:  # type: ignore[union-attr]
                return head + t.rest  # type: ignore[union-attr]
        doc = name_entry(host)
        line = made(tkey, host, inner, head, doc)
        if ekey is not None and ekey not in by_entity and isinstance(key[0], str) and isinstance(matched, str):
            by_entity[ekey] = entity_template(key[0], matched, head, doc, line)
        if ckey is not None and ckey not in cuts and host != matched and inner != matched:  # (else ambiguous)
            cut_of(ckey, doc, head, line, values, host, inner, matched if isinstance(matched, str) else None)
        return line

    def text_of(text: str) -> bytes:
        """A string as it stands inside a JSON string of the entry."""
        if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
            return text.encode()
        return clean(dumps(text))[1:-1]

    def cut_of(ckey: tuple[object, ...], doc: dict[str, Any], head: bytes, line: bytes, values: list[bytes],
               host: str, inner: str | None, matched: str | None) -> None:
        if len(cuts) >= MEMO_MAX:
            cuts.clear()
        if b"\\u0000" in line:  # (a NUL in a name would read as a marker)
            cuts[ckey] = _FAILED
            return
        cut = _Cut(clean(dumps(_cut_doc(doc, host, inner, matched)))[len(head):])
        cuts[ckey] = cut if line.startswith(head) and head + cut.fill(values) == line else _FAILED

    def entity_template(eid: str, matched: str, head: bytes, doc: dict[str, Any], line: bytes) -> list[bytes]:
        """The entry of a name under a knowledge-base domain with that domain cut out: every
        name whose match has the same entity, origin and service has it (checked on this one)."""
        owner = doc["owner"]
        if not isinstance(owner, dict) or owner.get("matched") != matched or doc["hosting"]:
            return _FAILED
        if len(by_entity) >= MEMO_MAX:
            by_entity.clear()
        cut = {**doc, "owner": {**owner, "matched": _CUT, "evidence": [_CUT]},
               "reach": resolver.entity_reach(eid, _CUT, "owner", date)}
        parts = clean(dumps(cut))[len(head):].split(_CUT_MARK)
        return parts if head + mark(matched).join(parts) == line else _FAILED

    def mark(matched: str) -> bytes:
        hit = marks.get(matched)
        if hit is None:
            if len(marks) >= MEMO_MAX:
                marks.clear()
            # (made anew: orjson's bytes of a short string hold a buffer of kilobytes)
            hit = marks[matched] = b'"' + text_of(matched) + b'"'
        return hit

    def ip_line(ip: str, server: dict[str, Any]) -> bytes:
        label = server["anycast"] = network.anycast(server)
        asn, org = server["asn"], server["as_org"]
        rlabel = repr(label)
        ckey = ("ip", server["ip_scope"], server["country"], rlabel, kb.owner_of_as(asn, org))
        values = [text_of(ip), b"", b"", b"null" if asn is None else dumps(asn), clean(dumps(org))]
        c = cuts.get(ckey)
        if isinstance(c, _Cut):
            return c.fill(values)
        tkey = ("ip", server["ip_scope"], server["country"], asn, org, rlabel)
        t = templates.get(tkey)
        if isinstance(t, _Template):
            if t.verified:
                return t.fill(ip, None, clean)
            if t.host == ip:
                return t.rest
        doc = explain_ip(ip, resolver, date, network, server)
        line = made(tkey, ip, None, b"", doc)
        if ckey not in cuts:
            cut_of(ckey, doc, b"", line, values, ip, None, None)
        return line

    fast = _FAST_NAME
    look = None
    for raw_batch in _batched(hosts, BATCH):
        if walk is None and len(raw_batch) >= BATCH:  # (a long list: the walk's index pays for itself)
            walk = NameWalk.of(kb)
            look = walk.look
        # the hosts as the knowledge base keys them; addresses looked up together
        batch: list[str] = []
        plain: list[bool] = []
        ips: list[str] = []
        for raw in raw_batch:
            text = raw.strip()
            if fast(text) is not None:
                host = text[:-1] if text[-1] == "." else text
                if not host.replace(".", "").isdigit():  # a plain name
                    batch.append(host)
                    plain.append(True)
                    continue
                ip = host if _canonical_v4(host) else ip_of(host)
            else:
                host = host_of(text)
                if not host:
                    continue
                ip = ip_of(host)
            if ip is not None:
                ips.append(ip)
            batch.append(host if ip is None else ip)
            plain.append(False)
        servers = iter(network.of_many(ips) if ips else ())
        nxt = 0
        # the batch's output in pieces, joined once (an entry is not copied piece by piece)
        out: list[bytes] = []
        append, extend = out.append, out.extend
        for host, p in zip(batch, plain, strict=True):
            if p and look is not None:  # (the common case, inline: a plain name of a long list)
                eid, matched, plat, service, rd = look(host)
                if plat is None:
                    if eid is None:
                        t = templates.get(((None, None, None), service, False))
                        if type(t) is bytes:
                            extend((b'{"host":"', host.encode(), b'","registrable_domain":null', t, sep)
                                   if rd is None else
                                   (b'{"host":"', host.encode(), b'","registrable_domain":"', rd.encode(), b'"',
                                    t, sep))
                            continue
                    else:
                        flat = direct.get(matched) if service is None else None  # type: ignore[arg-type]
                        if flat is None:
                            parts = by_entity.get((eid, origin.get(matched), service))  # type: ignore[arg-type]
                            if parts is not None and parts is not _FAILED:
                                flat = _interleave(parts, marks.get(matched) or mark(matched), sep)  # type: ignore[arg-type]
                                if service is None:
                                    if len(direct) >= MEMO_MAX:
                                        direct.clear()
                                    direct[matched] = flat  # type: ignore[index]
                        if flat is not None:
                            extend((b'{"host":"', host.encode(), b'","registrable_domain":null')
                                   if rd is None else
                                   (b'{"host":"', host.encode(), b'","registrable_domain":"', rd.encode(), b'"'))
                            extend(flat)
                            continue
                append(name_line(host, True))
            elif nxt < len(ips) and host is ips[nxt]:
                append(ip_line(host, next(servers)))
                nxt += 1
            else:
                append(name_line(host, p))
            append(sep)
        yield b"".join(out)


def _interleave(parts: list[bytes], mark: bytes, end: bytes) -> tuple[bytes, ...]:
    """``mark.join(parts) + end`` as pieces."""
    out = [parts[0]]
    for p in parts[1:]:
        out += (mark, p)
    out.append(end)
    return tuple(out)


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch
