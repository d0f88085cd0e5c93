"""Where a server is: address scope, country and autonomous system, a whole column at a time.

:class:`GeoResolver` turns a column of IP address text into a table with the columns
``ip_scope``, ``country``, ``asn`` and ``as_org``. It works on pyarrow arrays, never on one
record object at a time: the column is dictionary-encoded, each *distinct* address is looked up
once (and remembered across calls), and the answers are taken back to the full length. The same
code can then serve a pcap of a phone's morning or a month of an organisation's Zeek logs.

Scope comes first. Addresses that do not route on the public internet (RFC 1918, CGNAT,
loopback, link-local, multicast, IPv6 ULA, documentation ranges and the rest of the IANA
special-purpose registries) are labelled by :func:`ip_scope` and are *never* given a country
or an AS: a database may well have an answer for them, but it would be a guess about somebody
else's network, not about the server the traffic went to. IPv4-mapped IPv6 addresses
(``::ffff:192.0.2.1``) and NAT64 addresses in the well-known prefix (``64:ff9b::/96``,
RFC 6052) are treated as the IPv4 address they carry: that is the server actually reached.

Data sources:

* By default the IP-to-AS and IP-to-country data shipped in this package
  (:data:`NETWORK_FILE`, rebuilt by ``make update-network-data`` from two packages of the npm
  registry: ``@ip-location-db/asn``, RouteViews + NRO + DB-IP ASN Lite, CC BY 4.0; and
  ``@ip-location-db/geo-whois-asn-country``, geofeeds + registry whois, CC BY 4.0 by the NRO).
  It gives the AS number and the AS organisation name, and a country: where the operator's
  geofeed puts the network, else its registry country. The file is compiled on first use into
  an index of sorted integer arrays in the cache directory (:class:`_CompiledIndex`).
  :meth:`GeoResolver.sources` reports each dataset with its version, date, licence and credit.
  Nothing is ever fetched from the network.
* ``GeoResolver([path, ...])``: one or more MaxMind DB (``.mmdb``) files read with
  ``maxminddb``. The layout is recognised from the metadata ``database_type`` and from the
  shape of the records: MaxMind GeoLite2/GeoIP2 Country, City and ASN, DB-IP lite country,
  city and ASN, IPinfo (``country`` as a plain code, ``asn`` as ``"AS15169"``, ``as_name``)
  and IPinfo's lite / country_asn layouts (``country_code``, ``asn``, ``as_name``). Each output
  column comes from the first file, in the order given, that has an answer for that address,
  so a country file and an ASN file can be combined. User files replace the default data
  entirely: answers in one report never mix two vendors' data unless the user asked for it.

``country`` is an ISO 3166-1 alpha-2 code or null; pseudo-codes some databases use for
unknown or continent-level data (``EU``, ``AP``, ``ZZ``, ``XX`` ...) become null.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as _dt
import gc
import ipaddress
import json
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datareach.enrich.anycast import _NAT64_HIGH, parse_ip
from datareach.schema import DataSource

__all__ = [
    "ENRICH_SCHEMA",
    "SCOPES",
    "DataSource",
    "GeoDatabaseError",
    "GeoResolver",
    "ip_scope",
]

#: Every value ``ip_scope`` can take ("invalid" is for text that is not an IP address).
SCOPES: tuple[str, ...] = (
    "public",
    "private",
    "loopback",
    "link-local",
    "multicast",
    "unspecified",
    "reserved",
    "shared",
    "documentation",
    "invalid",
)

#: The columns :meth:`GeoResolver.enrich` returns, in this order.
ENRICH_SCHEMA = pa.schema(
    [
        pa.field("ip_scope", pa.string()),
        pa.field("country", pa.string()),
        pa.field("asn", pa.int64()),
        pa.field("as_org", pa.string()),
    ]
)

# Distinct addresses remembered across enrich() calls; the cache is dropped when it grows past
# this (a month of an organisation's traffic can hold millions of distinct addresses).
_CACHE_MAX = 1 << 16


class GeoDatabaseError(Exception):
    """A geo database file given by the user cannot be used."""


# --------------------------------------------------------------------------------------------
# Address scope
# --------------------------------------------------------------------------------------------

# IANA IPv4 / IPv6 special-purpose address registries (RFC 6890 and successors). A more
# specific network overrides the one that contains it.
_V4_RULES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "reserved"),  # "this network"
    ("0.0.0.0/32", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared"),  # carrier-grade NAT, RFC 6598
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "documentation"),  # TEST-NET-1
    ("192.88.99.0/24", "reserved"),  # deprecated 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),  # benchmarking
    ("198.51.100.0/24", "documentation"),  # TEST-NET-2
    ("203.0.113.0/24", "documentation"),  # TEST-NET-3
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # includes 255.255.255.255, limited broadcast
)

_V6_RULES: tuple[tuple[str, str], ...] = (
    ("::/0", "reserved"),  # everything outside 2000::/3 is unassigned or special
    ("2000::/3", "public"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "private"),  # local-use IPv4/IPv6 translation, RFC 8215
    ("100::/64", "reserved"),  # discard-only
    ("2001::/23", "reserved"),  # IETF protocol assignments (Teredo, benchmarking, ORCHID ...)
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),  # RFC 9637
    ("fc00::/7", "private"),  # unique local addresses
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private"),  # deprecated site-local
    ("ff00::/8", "multicast"),
)


def _build_scope_table(
    rules: Sequence[tuple[str, str]], bits: int, default: str
) -> tuple[list[int], list[str]]:
    """Flatten nested networks into sorted (start, scope) intervals for bisect."""
    nets = [(ipaddress.ip_network(cidr), scope) for cidr, scope in rules]
    points = {0}
    for net, _ in nets:
        points.add(int(net.network_address))
        end = int(net.broadcast_address) + 1
        if end < (1 << bits):
            points.add(end)
    starts: list[int] = []
    scopes: list[str] = []
    for point in sorted(points):
        best: str = default
        best_len = -1
        for net, scope in nets:
            if int(net.network_address) <= point <= int(net.broadcast_address) and net.prefixlen > best_len:
                best, best_len = scope, net.prefixlen
        if scopes and scopes[-1] == best:
            continue
        starts.append(point)
        scopes.append(best)
    return starts, scopes


_V4_STARTS, _V4_SCOPES = _build_scope_table(_V4_RULES, 32, "public")
_V6_STARTS, _V6_SCOPES = _build_scope_table(_V6_RULES, 128, "reserved")

#: ``(version, integer)`` for IP address text, or None (blanks, ``[...]``, a zone accepted; the
#: strict dotted quad; IPv4-mapped and NAT64 addresses as the IPv4 address they carry): one parser
#: for the geo and anycast look-ups
_parse_ip = parse_ip


def _scope_of(version: int, n: int) -> str:
    if version == 4:
        return _V4_SCOPES[bisect.bisect_right(_V4_STARTS, n) - 1]
    return _V6_SCOPES[bisect.bisect_right(_V6_STARTS, n) - 1]


def ip_scope(ip: str) -> str:
    """The scope of one address: one of :data:`SCOPES` ("invalid" when ``ip`` is no address)."""
    parsed = _parse_ip(ip)
    if parsed is None:
        return "invalid"
    return _scope_of(*parsed)


# --------------------------------------------------------------------------------------------
# Shared helpers for the back ends
# --------------------------------------------------------------------------------------------

# One answer for one address: (country, asn, as_org).
_Answer = tuple[str | None, int | None, str | None]
_NO_ANSWER: _Answer = (None, None, None)

_NOT_COUNTRIES = frozenset({"EU", "AP", "ZZ", "XX", "A1", "A2", "O1"})


def _country_code(value: object) -> str | None:
    """An ISO 3166-1 alpha-2 code from a database value, or None."""
    if not isinstance(value, str) or len(value) != 2:
        return None
    code = value.upper()
    if not code.isascii() or not code.isalpha() or code in _NOT_COUNTRIES:
        return None
    return code


_AS_TEXT = re.compile(r"^\s*(?:AS)?\s*(\d{1,10})\s*$", re.IGNORECASE)


def _as_number(value: object) -> int | None:
    """An AS number from ``15169``, ``"15169"`` or ``"AS15169"``; None when there is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        m = _AS_TEXT.match(value)
        if m is None:
            return None
        n = int(m.group(1))
    else:
        return None
    return n if 0 < n < (1 << 32) else None


def _text(value: object) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


# --------------------------------------------------------------------------------------------
# Default source: the IP-to-AS and IP-to-country data shipped in this package
# --------------------------------------------------------------------------------------------

#: The shipped data file (``make update-network-data`` rebuilds it: scripts/update_network_data.py).
NETWORK_FILE = Path(__file__).resolve().parent / "data" / "network.dat.xz"
#: First bytes of the file, once decompressed; then the header's length (uint32, little endian),
#: the header (JSON: the sources with their versions, dates, licences and credits; the country
#: codes; and, per array, its dtype, length and byte offset after the header), then the arrays.
NETWORK_MAGIC = b"DRNET\x00\x01\n"
NETWORK_FORMAT = 1
_NETWORK_ARRAYS = (
    "asn_v4_starts", "asn_v4_values", "asn_v6_hi", "asn_v6_lo", "asn_v6_values",
    "country_v4_starts", "country_v4_values", "country_v6_hi", "country_v6_lo", "country_v6_values",
    "as_numbers", "as_names",
)
_MAX_NETWORK_BYTES = 1 << 28  # the decompressed file: a bound, so that a damaged file cannot fill memory
_NETWORK_NOTE = (
    "Country is where the operator's geofeed puts the network, else the country of its registry "
    "record (whois), else its AS's registry country: for an anycast or CDN address it is not where "
    "the server that answered is. Data of a fixed date: networks move, so check the date."
)


class _NetworkFile:
    """The shipped data file, read and checked: its header and its arrays (numpy, read-only).

    Each table is a partition of the address space: sorted starts from 0 (IPv4 as deltas,
    IPv6 as high and low uint64 halves), and per interval a value, 0 meaning no answer (an
    AS number; for countries, 1 + the position of the code in ``country_codes``). The AS
    organisation names are ``as_names`` split on newlines, in the order of ``as_numbers``.
    """

    def __init__(self, path: Path) -> None:
        import lzma

        import numpy as np

        try:
            with lzma.open(path, "rb") as f:
                raw = f.read(_MAX_NETWORK_BYTES + 1)
        except (OSError, lzma.LZMAError, EOFError) as err:
            raise GeoDatabaseError(f"{path}: cannot read the shipped network data: {err}") from err
        if len(raw) > _MAX_NETWORK_BYTES or not raw.startswith(NETWORK_MAGIC):
            raise GeoDatabaseError(f"{path}: not a datareach network data file")
        at = len(NETWORK_MAGIC)
        try:
            (head_len,) = struct.unpack_from("<I", raw, at)
            header = json.loads(raw[at + 4 : at + 4 + head_len])
        except (struct.error, ValueError) as err:
            raise GeoDatabaseError(f"{path}: damaged header: {err}") from err
        if not isinstance(header, dict) or header.get("format") != NETWORK_FORMAT:
            raise GeoDatabaseError(f"{path}: network data format {header.get('format')!r} is not {NETWORK_FORMAT}")
        body = memoryview(raw)[at + 4 + head_len :]
        self.header: dict[str, Any] = header
        self.arrays: dict[str, Any] = {}
        try:
            for name in _NETWORK_ARRAYS:
                spec = header["arrays"][name]
                dtype = np.dtype(str(spec["dtype"]))
                count, offset = int(spec["count"]), int(spec["offset"])
                if offset < 0 or count < 0 or offset + count * dtype.itemsize > len(body):
                    raise ValueError(f"array {name} out of bounds")
                self.arrays[name] = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
            self.country_codes: list[str] = [str(c) for c in header["country_codes"]]
            self.sources_info: list[dict[str, Any]] = [dict(s) for s in header["sources"]]
        except (KeyError, TypeError, ValueError) as err:
            raise GeoDatabaseError(f"{path}: damaged network data: {err}") from err
        self.path = path
        self.date: str | None = header.get("date")
        self.label = "; ".join(f"{s.get('package')} {s.get('version')}" for s in self.sources_info)

    def index_arrays(self) -> dict[str, Any]:
        """The arrays of a :class:`_CompiledIndex` (``country`` and ``org`` tables)."""
        import numpy as np

        a = self.arrays
        out: dict[str, Any] = {}
        for t, key in (("country", "country"), ("org", "asn")):
            out[f"{t}_v4_starts"] = np.cumsum(a[f"{key}_v4_starts"], dtype=np.uint64).astype(np.uint32)
            out[f"{t}_v6_hi"] = a[f"{key}_v6_hi"].astype(np.uint64)
            out[f"{t}_v6_lo"] = a[f"{key}_v6_lo"].astype(np.uint64)
        numbers = a["as_numbers"].astype(np.uint32)
        names = bytes(a["as_names"]).decode("utf-8").split("\n") if len(numbers) else []
        if len(names) != len(numbers) or np.any(np.diff(numbers.astype(np.int64)) <= 0):
            raise ValueError("damaged AS name table")
        for fam in ("v4", "v6"):
            asn = a[f"asn_{fam}_values"].astype(np.uint32)
            ids = np.searchsorted(numbers, asn) + 1
            ids[asn == 0] = 0
            if np.any(ids > len(numbers)) or np.any(numbers[np.minimum(ids, len(numbers)) - 1][asn != 0] != asn[asn != 0]):
                raise ValueError("an AS number without an entry in the name table")
            out[f"org_{fam}_ids"] = ids.astype(np.uint32)
            out[f"country_{fam}_ids"] = a[f"country_{fam}_values"].astype(np.uint8)
        if len(self.country_codes) > 255 or any(
            int(a[f"country_{fam}_values"].max(initial=0)) > len(self.country_codes) for fam in ("v4", "v6")
        ):
            raise ValueError("a country id without a code")
        for t, strings in (("country", self.country_codes), ("org", names)):
            encoded = [b"", *(s.encode("utf-8") for s in strings)]
            offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
            np.cumsum([len(e) for e in encoded], out=offsets[1:])
            out[f"{t}_offsets"] = offsets
            out[f"{t}_data"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        out["org_asn"] = np.concatenate([np.zeros(1, dtype=np.uint32), numbers])
        return out

def _sources_of(header: Mapping[str, Any], path: Path) -> list[DataSource]:
    """One :class:`DataSource` per dataset in the shipped file, from its header."""
    out = []
    for s in header.get("sources") or []:
        kind = str(s.get("kind") or "geo")
        out.append(DataSource(
            name=str(s.get("title") or s.get("package")),
            path=str(path),
            kind=kind,
            version=f"{s.get('package')} {s.get('version')} (npm registry, sha256 {str(s.get('sha256'))[:16]}...)",
            date=s.get("date"),
            licence=s.get("licence"),
            note=_NETWORK_NOTE if kind == "geo-country" else
            "AS number and organisation of the announced prefix (routing and registry data).",
            credit=s.get("credit"),
        ))
    return out


class _NetworkTables:
    """The reference look-ups: bisect over Python lists of the same tables (no numpy in the loop).

    Slow to build; the tests compare :class:`_CompiledIndex` with it.
    """

    def __init__(self, data: _NetworkFile) -> None:
        arrays = data.index_arrays()
        self.label = data.label
        self.header = data.header
        self.tables: dict[str, tuple[list[int], list[int], list[int], list[int]]] = {}
        for t in _CompiledIndex.TABLES:
            v6 = [(h << 64) | lo for h, lo in zip(arrays[f"{t}_v6_hi"].tolist(), arrays[f"{t}_v6_lo"].tolist(), strict=True)]
            self.tables[t] = (arrays[f"{t}_v4_starts"].tolist(), arrays[f"{t}_v4_ids"].tolist(), v6,
                              arrays[f"{t}_v6_ids"].tolist())
        offsets, blob = arrays["country_offsets"].tolist(), bytes(arrays["country_data"])
        self.codes = [blob[offsets[i]:offsets[i + 1]].decode() or None for i in range(len(offsets) - 1)]
        offsets, blob = arrays["org_offsets"].tolist(), bytes(arrays["org_data"])
        self.names = [blob[offsets[i]:offsets[i + 1]].decode() or None for i in range(len(offsets) - 1)]
        self.asns = [n or None for n in arrays["org_asn"].tolist()]

    def lookup_many(self, versions: Sequence[int], ints: Sequence[int]) -> list[_Answer]:
        br = bisect.bisect_right
        c4s, c4i, c6s, c6i = self.tables["country"]
        o4s, o4i, o6s, o6i = self.tables["org"]
        codes, names, asns = self.codes, self.names, self.asns
        out: list[_Answer] = []
        for v, n in zip(versions, ints, strict=True):
            if v == 4:
                c, o = c4i[br(c4s, n) - 1], o4i[br(o4s, n) - 1]
            else:
                c, o = c6i[br(c6s, n) - 1], o6i[br(o6s, n) - 1]
            out.append((codes[c], asns[o], names[o]))
        return out


# --------------------------------------------------------------------------------------------
# The compiled index: the default data as numpy arrays in the user's cache directory
# --------------------------------------------------------------------------------------------

# Bump when the layout of the compiled index (or how it is derived) changes.
_INDEX_FORMAT = 2
_U64 = (1 << 64) - 1


class _CompiledIndex:
    """Country, AS number and AS organisation for whole numpy arrays of addresses.

    Per table (``country``, ``org``) and address family: sorted interval starts that cover the
    whole address space (IPv4 as uint32; IPv6 as two uint64 columns, high and low half) and,
    per interval, an index into a string table where 0 means "no answer"; ``org_asn`` gives
    the AS number of each ``org`` entry. Look-ups are ``np.searchsorted`` over a batch. Built
    from the shipped file (:class:`_NetworkFile`) and kept in the cache directory (see
    :mod:`datareach.cache`), memory-mapped on later runs.
    """

    TABLES = ("country", "org")

    def __init__(self, arrays: Mapping[str, Any], label: str, path: Path | None,
                 header: Mapping[str, Any] | None = None) -> None:
        import numpy as np

        self.label = label
        self.header: Mapping[str, Any] = header or {}
        self.path = path  # where the compiled file lives; None when built in memory only
        self.arrays = arrays
        self.v4_starts = {t: arrays[f"{t}_v4_starts"] for t in self.TABLES}
        self.v4_ids = {t: arrays[f"{t}_v4_ids"] for t in self.TABLES}
        self.v6_hi = {t: arrays[f"{t}_v6_hi"] for t in self.TABLES}
        self.v6_lo = {t: arrays[f"{t}_v6_lo"] for t in self.TABLES}
        self.v6_ids = {t: arrays[f"{t}_v6_ids"] for t in self.TABLES}
        self.strings: dict[str, Any] = {}
        for t in self.TABLES:
            offsets = arrays[f"{t}_offsets"]
            data = arrays[f"{t}_data"]
            n = len(offsets) - 1
            if n < 1 or offsets[0] != 0 or offsets[-1] != len(data) or np.any(np.diff(offsets) < 0):
                raise ValueError(f"damaged string table {t}")
            self.strings[t] = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
            for fam in ("v4", "v6"):
                ids = arrays[f"{t}_{fam}_ids"]
                if len(ids) and int(ids.max()) >= n:
                    raise ValueError(f"damaged index {t}")
            for fam, starts in (("v4", self.v4_starts[t]), ("v6", self.v6_hi[t])):
                if not len(starts) or starts[0] != 0 or len(starts) != len(arrays[f"{t}_{fam}_ids"]):
                    raise ValueError(f"damaged index {t}")
            if len(self.v6_lo[t]) != len(self.v6_hi[t]):
                raise ValueError(f"damaged index {t}")
        self.org_asn = arrays["org_asn"]
        if len(self.org_asn) != len(self.strings["org"]):
            raise ValueError("damaged index org_asn")
        # AS numbers as an Arrow array (0: none), and org names with "" as null
        self.asn_values = pa.array(self.org_asn.astype(np.int64), mask=self.org_asn == 0)
        org = self.strings["org"]
        self.org_values = pc.if_else(pc.equal(org, ""), pa.scalar(None, pa.string()), org)

    # -- building ---------------------------------------------------------------------------

    @staticmethod
    def cache_key(source: Path) -> dict[str, object]:
        from datareach import cache

        return {"what": "network-index", "format": _INDEX_FORMAT, "source": cache.source_key(source)}

    @classmethod
    def load(cls, source: Path) -> _CompiledIndex | None:
        """The index compiled earlier from ``source``, if the cache holds a sound one."""
        import numpy as np

        from datareach import cache

        key = cls.cache_key(source)
        path = cache.cache_path("network-index", key)
        cached = cache.load(path, key)
        if cached is None:
            return None
        try:
            arrays: dict[str, Any] = {}
            for name, s in cached.sections.items():
                if s.get("dtype") is None:
                    continue
                arr = np.frombuffer(cached.section(name), dtype=np.dtype(str(s["dtype"])))
                arrays[name] = arr.reshape(tuple(s["shape"]))
            label = bytes(cached.section("label")).decode("utf-8")
            header = json.loads(bytes(cached.section("header")))
            if not isinstance(header, dict):
                return None
            return cls(arrays, label, path, header)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None

    @classmethod
    def compile(cls, source: Path, data: _NetworkFile) -> _CompiledIndex:
        """Build from the shipped file and store in the cache directory when possible."""
        from datareach import cache

        arrays = data.index_arrays()
        key = cls.cache_key(source)
        path = cache.cache_path("network-index", key)
        sections: dict[str, tuple[Any, str | None, list[int] | None]] = {
            name: (arr, arr.dtype.str, list(arr.shape)) for name, arr in arrays.items()
        }
        sections["label"] = (data.label.encode("utf-8"), None, None)
        sections["header"] = (json.dumps(data.header).encode("utf-8"), None, None)
        stored = cache.store(path, key, sections)
        return cls(arrays, data.label, path if stored else None, data.header)

    # -- look-ups -----------------------------------------------------------------------------

    def ids_v4(self, table: str, q: Any) -> Any:
        import numpy as np

        return self.v4_ids[table][np.searchsorted(self.v4_starts[table], q, side="right") - 1]

    def ids_v6(self, table: str, qh: Any, ql: Any) -> Any:
        return self.v6_ids[table][_search128(self.v6_hi[table], self.v6_lo[table], qh, ql) - 1]

    def lookup_many(self, versions: Sequence[int], ints: Sequence[int]) -> list[_Answer]:
        """Same contract as :meth:`_NetworkTables.lookup_many` (one row per address)."""
        import numpy as np

        v = np.asarray(versions, dtype=np.int8)
        out: list[_Answer] = [_NO_ANSWER] * len(v)
        pos4 = np.flatnonzero(v == 4)
        pos6 = np.flatnonzero(v != 4)
        q4 = np.array([ints[i] for i in pos4.tolist()], dtype=np.uint32)
        big = [ints[i] for i in pos6.tolist()]
        qh = np.array([n >> 64 for n in big], dtype=np.uint64)
        ql = np.array([n & _U64 for n in big], dtype=np.uint64)
        cs, os_ = self.strings["country"].to_pylist(), self.org_values.to_pylist()
        asns = self.asn_values.to_pylist()
        c4, o4 = self.ids_v4("country", q4).tolist(), self.ids_v4("org", q4).tolist()
        c6, o6 = self.ids_v6("country", qh, ql).tolist(), self.ids_v6("org", qh, ql).tolist()
        for positions, cids, oids in ((pos4.tolist(), c4, o4), (pos6.tolist(), c6, o6)):
            for i, c, o in zip(positions, cids, oids, strict=True):
                out[i] = (cs[c] if c else None, asns[o], os_[o])
        return out


def _search128(hi: Any, lo: Any, qh: Any, ql: Any) -> Any:
    """``np.searchsorted(starts, q, side="right")`` for 128-bit values split in two uint64.

    ``(hi, lo)`` is sorted lexicographically. The high halves are searched directly; where
    several starts share a query's high half, a vectorised binary search over their low halves
    (only for those queries) finishes the job.
    """
    import numpy as np

    a = np.searchsorted(hi, qh, side="left")
    b = np.searchsorted(hi, qh, side="right")
    todo = np.flatnonzero(a < b)
    while todo.size:
        at, bt = a[todo], b[todo]
        mid = (at + bt) >> 1
        ok = lo[mid] <= ql[todo]
        a[todo] = np.where(ok, mid + 1, at)
        b[todo] = np.where(ok, bt, mid)
        todo = todo[a[todo] < b[todo]]
    return a


class _ScopeArrays:
    """The special-purpose address tables as numpy arrays (codes are positions in SCOPES)."""

    def __init__(self) -> None:
        import numpy as np

        code = {s: i for i, s in enumerate(SCOPES)}
        self.v4_starts = np.array(_V4_STARTS, dtype=np.uint32)
        self.v4_codes = np.array([code[s] for s in _V4_SCOPES], dtype=np.int8)
        self.v6_hi = np.array([s >> 64 for s in _V6_STARTS], dtype=np.uint64)
        self.v6_lo = np.array([s & _U64 for s in _V6_STARTS], dtype=np.uint64)
        self.v6_codes = np.array([code[s] for s in _V6_SCOPES], dtype=np.int8)
        self.scopes = pa.array(SCOPES, type=pa.string())


_scope_arrays: _ScopeArrays | None = None

_MAPPED_PREFIX = bytes(10) + b"\xff\xff"
_NAT64_PREFIX = _NAT64_HIGH.to_bytes(12, "big")


def _parse_batch(texts: Sequence[str | None]) -> tuple[list[int], list[bytes], list[int], list[bytes], list[int]]:
    """Positions and packed bytes of the IPv4 and IPv6 addresses among ``texts``, and of nulls.

    Same rules as :func:`_parse_ip` (mapped and NAT64 addresses count as IPv4); a text in none
    of the lists is not an address.
    """
    pos4: list[int] = []
    raw4: list[bytes] = []
    pos6: list[int] = []
    raw6: list[bytes] = []
    nulls: list[int] = []
    pton, af4, af6 = socket.inet_pton, socket.AF_INET, socket.AF_INET6
    mapped, nat64 = _MAPPED_PREFIX, _NAT64_PREFIX
    for i, text in enumerate(texts):
        if text is None:
            nulls.append(i)
            continue
        try:
            if ":" not in text:
                raw4.append(pton(af4, text))
                pos4.append(i)
                continue
            b = pton(af6, text)  # plain IPv6 text: what _parse_ip would accept unchanged
            head = b[:12]
            if head in (mapped, nat64):
                raw4.append(b[12:])
                pos4.append(i)
            else:
                raw6.append(b)
                pos6.append(i)
            continue
        except (OSError, ValueError):
            pass
        parsed = _parse_ip(text)  # blanks, brackets, zones ...
        if parsed is None:
            continue
        v, n = parsed
        if v == 4:
            raw4.append(n.to_bytes(4, "big"))
            pos4.append(i)
        else:
            raw6.append(n.to_bytes(16, "big"))
            pos6.append(i)
    return pos4, raw4, pos6, raw6, nulls


def _enrich_distinct_fast(index: _CompiledIndex, distinct: Any) -> list[Any]:
    """The four output columns for a dictionary of distinct address texts, vectorised."""
    import numpy as np

    global _scope_arrays
    sa = _scope_arrays
    if sa is None:
        sa = _scope_arrays = _ScopeArrays()
    texts: list[str | None] = distinct.to_pylist()
    d = len(texts)
    pos4, raw4, pos6, raw6, nulls = _parse_batch(texts)
    q4 = np.frombuffer(b"".join(raw4), dtype=">u4").astype(np.uint32)
    q6 = np.frombuffer(b"".join(raw6), dtype=">u8").reshape(-1, 2)
    qh, ql = q6[:, 0].astype(np.uint64), q6[:, 1].astype(np.uint64)
    p4, p6 = np.array(pos4, dtype=np.intp), np.array(pos6, dtype=np.intp)
    public = SCOPES.index("public")

    scope = np.full(d, SCOPES.index("invalid"), dtype=np.int8)
    sc4 = sa.v4_codes[np.searchsorted(sa.v4_starts, q4, side="right") - 1]
    sc6 = sa.v6_codes[_search128(sa.v6_hi, sa.v6_lo, qh, ql) - 1]
    scope[p4] = sc4
    scope[p6] = sc6
    scope_null = np.zeros(d, dtype=bool)
    scope_null[np.array(nulls, dtype=np.intp)] = True
    pub4, pub6 = sc4 == public, sc6 == public

    columns: list[Any] = [sa.scopes.take(pa.array(scope, mask=scope_null))]
    for t in ("country", "org"):
        ids = np.zeros(d, dtype=np.uint32)
        ids[p4[pub4]] = index.ids_v4(t, q4[pub4])
        ids[p6[pub6]] = index.ids_v6(t, qh[pub6], ql[pub6])
        if t == "country":
            columns.append(index.strings[t].take(pa.array(ids, mask=ids == 0)))
        else:
            taken = pa.array(ids)
            columns.append(index.asn_values.take(taken))
            columns.append(index.org_values.take(taken))
    return columns


class _DefaultBackend:
    """The network data shipped in this package (:data:`NETWORK_FILE`).

    ``compiled`` (the default): the :class:`_CompiledIndex` from the cache directory, compiled
    there from the shipped file on first use (or in memory when the directory cannot be
    written). ``compiled=False``: the reference tables (:class:`_NetworkTables`, bisect over
    Python lists), which the tests compare with the index.
    """

    def __init__(self, compiled: bool = True, path: Path | None = None) -> None:
        self.path = path or NETWORK_FILE
        if not self.path.is_file():
            raise GeoDatabaseError(f"{self.path}: the shipped network data file is missing")
        self.index: _CompiledIndex | None = None
        self._data: _NetworkFile | None = None
        if compiled:
            self.index = _CompiledIndex.load(self.path)
        if self.index is None:
            data = self._file()
            if compiled:
                try:
                    self.index = _CompiledIndex.compile(self.path, data)
                except ValueError as err:
                    raise GeoDatabaseError(f"{self.path}: damaged network data: {err}") from err
        impl: _CompiledIndex | _NetworkTables
        if self.index is not None:
            impl = self.index
        else:
            try:
                impl = _NetworkTables(self._file())
            except ValueError as err:
                raise GeoDatabaseError(f"{self.path}: damaged network data: {err}") from err
        self._impl = impl
        self.lookup_many: Callable[[Sequence[int], Sequence[int]], list[_Answer]] = impl.lookup_many

    def _file(self) -> _NetworkFile:
        if self._data is None:
            self._data = _NetworkFile(self.path)
        return self._data

    def cache_info(self) -> str:
        """Where the compiled index lives (or why there is none)."""
        from datareach import cache

        if self.index is not None and self.index.path is not None:
            return f"compiled index: {self.index.path}"
        if self.index is not None:
            return f"compiled index kept in memory ({cache.cache_dir()} is not writable)"
        return "no compiled index (the shipped data read directly)"

    def sources(self) -> list[DataSource]:
        return _sources_of(self._impl.header, self.path)

    @property
    def date(self) -> str | None:
        """The date of the data (the older of the two datasets)."""
        d = self._impl.header.get("date")
        return d if isinstance(d, str) else None


# --------------------------------------------------------------------------------------------
# User .mmdb files
# --------------------------------------------------------------------------------------------


def _record_answer(rec: object) -> _Answer:
    """Country, AS number and AS name from one record, whatever the vendor's layout."""
    if not isinstance(rec, Mapping):
        return _NO_ANSWER
    # Country: IPinfo lite / country_asn keep the code in country_code (their "country" may be
    # the full name); GeoIP2/GeoLite2/DB-IP have country.iso_code; IPinfo's country layout has
    # "country": "US"; GeoIP2 falls back to the registered country (e.g. anycast networks).
    country = _country_code(rec.get("country_code"))
    if country is None:
        c = rec.get("country")
        country = _country_code(c.get("iso_code")) if isinstance(c, Mapping) else _country_code(c)
    if country is None:
        rc = rec.get("registered_country")
        if isinstance(rc, Mapping):
            country = _country_code(rc.get("iso_code"))
    # AS: GeoLite2-ASN / DB-IP ASN / GeoIP2-ISP at the top level, GeoIP2 Enterprise in traits,
    # IPinfo as "asn": "AS15169" with as_name (or name, in IPinfo's ASN-only layout).
    traits = rec.get("traits")
    traits = traits if isinstance(traits, Mapping) else {}
    asn = _as_number(rec.get("autonomous_system_number"))
    if asn is None:
        asn = _as_number(rec.get("asn"))
    if asn is None:
        asn = _as_number(traits.get("autonomous_system_number"))
    org = (
        _text(rec.get("autonomous_system_organization"))
        or _text(rec.get("as_name"))
        or _text(traits.get("autonomous_system_organization"))
    )
    if org is None and "asn" in rec:
        org = _text(rec.get("name"))
    return country, asn, org


# Checked in order: DB-IP's ASN file says "compat=GeoLite2-ASN" in its type.
_LICENCE_HINTS: tuple[tuple[str, str], ...] = (
    ("dbip", "CC BY 4.0 (DB-IP.com lite data)"),
    ("db-ip", "CC BY 4.0 (DB-IP.com lite data)"),
    ("ipinfo", "IPinfo terms (free/lite data: CC BY-SA 4.0)"),
    ("geolite2", "GeoLite2 End User License Agreement (MaxMind)"),
    ("geoip2", "MaxMind commercial licence (GeoIP2)"),
)


class _MmdbFile:
    def __init__(self, path: Path) -> None:
        import maxminddb

        self.path = path
        try:
            self._reader: Any = maxminddb.open_database(str(path))
        except maxminddb.InvalidDatabaseError as err:
            raise GeoDatabaseError(f"{path}: not a MaxMind DB file: {err}") from err
        except IsADirectoryError as err:
            raise GeoDatabaseError(f"{path}: not a MaxMind DB file: it is a directory") from err
        except OSError as err:
            raise GeoDatabaseError(f"{path}: cannot open: {err.strerror or err}") from err
        except ValueError as err:  # e.g. an empty file cannot be mapped
            raise GeoDatabaseError(f"{path}: not a MaxMind DB file: {err}") from err
        meta = self._reader.metadata()
        self.database_type: str = str(meta.database_type or "")
        self.ip_version: int = int(meta.ip_version)
        self.build_epoch: int | None = int(meta.build_epoch) if meta.build_epoch else None
        self.format = f"{meta.binary_format_major_version}.{meta.binary_format_minor_version}"
        desc = meta.description if isinstance(meta.description, Mapping) else {}
        self.description: str | None = _text(desc.get("en")) or next(
            (d for d in map(_text, desc.values()) if d), None
        )
        self.has_country, self.has_asn, self.has_city = self._detect()

    def _detect(self) -> tuple[bool, bool, bool]:
        """Which columns this file can answer, from database_type and sample records."""
        t = self.database_type.lower()
        ipinfo_both = "ipinfo" in t and ("lite" in t or "country_asn" in t)
        country = ipinfo_both or any(k in t for k in ("country", "city", "location"))
        asn = ipinfo_both or any(k in t for k in ("asn", "isp", "enterprise"))
        city = "city" in t or "location" in t
        try:
            for i, (_net, rec) in enumerate(self._reader):
                if i >= 64:
                    break
                c, a, o = _record_answer(rec)
                country = country or c is not None
                asn = asn or a is not None or o is not None
                city = city or (isinstance(rec, Mapping) and "city" in rec)
        except Exception:  # iteration is only a hint; a damaged tree shows at lookup time
            pass
        if not country and not asn:  # unknown layout: ask it for everything
            country = asn = True
        return country, asn, city

    def get(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> object:
        try:
            return self._reader.get(addr)
        except (ValueError, TypeError):  # e.g. IPv6 address in an IPv4-only database
            return None
        except Exception:  # maxminddb.InvalidDatabaseError on a corrupt tree
            return None

    def source(self) -> DataSource:
        kind = "geo-city" if self.has_city else "geo-country"
        if self.has_asn and not self.has_country:
            kind = "geo-asn"
        elif self.has_asn:
            kind += "-asn"
        date: str | None = None
        built = "unknown build time"
        if self.build_epoch is not None:
            when = _dt.datetime.fromtimestamp(self.build_epoch, tz=_dt.UTC)
            date = when.date().isoformat()
            built = "built " + when.strftime("%Y-%m-%dT%H:%M:%SZ")
        t = self.database_type.lower()
        licence = next((lic for key, lic in _LICENCE_HINTS if key in t), None)
        return DataSource(
            name=self.database_type or self.path.name,
            path=str(self.path),
            kind=kind,
            version=f"{self.database_type or 'unknown type'} (MaxMind DB format {self.format}, {built})",
            date=date,
            licence=licence,
            note=self.description,
        )


class _MmdbBackend:
    def __init__(self, paths: Iterable[Path]) -> None:
        self.files = [_MmdbFile(Path(p)) for p in paths]

    def lookup(self, version: int, n: int) -> _Answer:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = (
            ipaddress.IPv4Address(n) if version == 4 else ipaddress.IPv6Address(n)
        )
        country: str | None = None
        asn: int | None = None
        org: str | None = None
        for f in self.files:
            need_country = country is None and f.has_country
            need_asn = asn is None and org is None and f.has_asn
            if not (need_country or need_asn):
                continue
            c, a, o = _record_answer(f.get(addr))
            if need_country and c is not None:
                country = c
            if need_asn and (a is not None or o is not None):
                # the number and the name come together from one file, never spliced from two
                asn, org = a, o
            if country is not None and (asn is not None or org is not None):
                break
        return country, asn, org

    def lookup_many(self, versions: Sequence[int], ints: Sequence[int]) -> list[_Answer]:
        return [self.lookup(v, n) for v, n in zip(versions, ints, strict=True)]


# --------------------------------------------------------------------------------------------
# The resolver
# --------------------------------------------------------------------------------------------

_Row = tuple[str | None, str | None, int | None, str | None]  # scope, country, asn, org
_NULL_ROW: _Row = (None, None, None, None)
_INVALID_ROW: _Row = ("invalid", None, None, None)
_SCOPE_ROWS: dict[str, _Row] = {scope: (scope, None, None, None) for scope in SCOPES}


def _as_string_dictionary(ips: Any) -> Any:
    """A DictionaryArray of strings for any string-like pyarrow array or chunked array."""
    if isinstance(ips, pa.ChunkedArray):
        ips = ips.combine_chunks() if ips.num_chunks != 1 else ips.chunk(0)
    elif not isinstance(ips, pa.Array):
        ips = pa.array(ips, type=pa.string())
    if pa.types.is_dictionary(ips.type):
        if not pa.types.is_string(ips.type.value_type):
            ips = ips.cast(pa.dictionary(ips.type.index_type, pa.string()))
        return ips
    if not pa.types.is_string(ips.type):
        ips = ips.cast(pa.string())
    return pc.dictionary_encode(ips)


class GeoResolver:
    """Scope, country and autonomous system for columns of IP addresses.

    ``geo_db`` None or empty: the network data shipped in this package, loaded on the first
    :meth:`enrich` (compiled into the cache directory the first time: about a second; then a
    few milliseconds). Otherwise one or more ``.mmdb`` files,
    opened (and checked) at once; :class:`GeoDatabaseError` names a file that cannot be used.
    """

    def __init__(self, geo_db: list[Path] | None = None) -> None:
        self._paths = [Path(p) for p in geo_db or []]
        self._backend: _DefaultBackend | _MmdbBackend | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, _Row] = {}
        if self._paths:
            self._backend = _MmdbBackend(self._paths)

    def _get_backend(self) -> _DefaultBackend | _MmdbBackend:
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = _DefaultBackend()
        return self._backend

    def load(self) -> None:
        """Load the data now rather than at the first look-up."""
        self._get_backend()

    def sources(self) -> list[DataSource]:
        """The data files behind the answers, with their dates: this goes into every report."""
        backend = self._get_backend()
        if isinstance(backend, _DefaultBackend):
            return backend.sources()
        return [f.source() for f in backend.files]

    @staticmethod
    def _resolve_many(
        texts: Sequence[str], lookup_many: Callable[[Sequence[int], Sequence[int]], list[_Answer]]
    ) -> list[_Row]:
        """Rows for distinct address texts: parse and scope inline, then one batched lookup."""
        rows: list[_Row] = [_INVALID_ROW] * len(texts)
        pub_pos: list[int] = []
        pub_ver: list[int] = []
        pub_int: list[int] = []
        inet_pton, af_inet, from_bytes = socket.inet_pton, socket.AF_INET, int.from_bytes
        br = bisect.bisect_right
        v4_starts, v4_scopes, v6_starts, v6_scopes = _V4_STARTS, _V4_SCOPES, _V6_STARTS, _V6_SCOPES
        scope_rows = _SCOPE_ROWS
        for i, text in enumerate(texts):
            try:  # fast path: a plain dotted quad
                n = from_bytes(inet_pton(af_inet, text), "big")
                v = 4
            except (OSError, ValueError):
                parsed = _parse_ip(text)
                if parsed is None:
                    continue  # stays _INVALID_ROW
                v, n = parsed
            scope = v4_scopes[br(v4_starts, n) - 1] if v == 4 else v6_scopes[br(v6_starts, n) - 1]
            if scope != "public":
                rows[i] = scope_rows[scope]
                continue
            pub_pos.append(i)
            pub_ver.append(v)
            pub_int.append(n)
        if pub_pos:
            for i, (country, asn, org) in zip(pub_pos, lookup_many(pub_ver, pub_int), strict=True):
                rows[i] = ("public", country, asn, org)
        return rows

    def enrich(self, ips: Any) -> Any:
        """A table (see :data:`ENRICH_SCHEMA`) with one row per input address, in input order.

        ``ips`` is a pyarrow string array (or chunked array, large_string or dictionary of
        strings) of IPv4/IPv6 text. A null address gives a row of nulls (``ip_scope`` too); text
        that is not an address gives ``ip_scope`` "invalid". Never raises on bad values.
        """
        encoded = _as_string_dictionary(ips)
        backend = self._get_backend()
        if isinstance(backend, _DefaultBackend) and backend.index is not None:
            # numpy over the compiled index: every distinct address of the batch at once
            columns = _enrich_distinct_fast(backend.index, encoded.dictionary)
            return pa.Table.from_arrays([c.take(encoded.indices) for c in columns], schema=ENRICH_SCHEMA)
        lookup_many = backend.lookup_many
        # The loop below makes a few small acyclic tuples per distinct address; with the large
        # lookup tables alive, the cyclic collector's full passes would take a third of the
        # time, so it is paused for the batch (and restored, whatever happens).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._enrich_encoded(encoded, lookup_many)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _enrich_encoded(
        self, encoded: Any, lookup_many: Callable[[Sequence[int], Sequence[int]], list[_Answer]]
    ) -> Any:
        distinct: list[str | None] = encoded.dictionary.to_pylist()
        cache = self._cache
        if len(cache) + len(distinct) > _CACHE_MAX:
            cache.clear()
        rows: list[_Row | None] = list(map(cache.get, distinct))  # type: ignore[arg-type]
        miss_pos = [
            i for i, (r, t) in enumerate(zip(rows, distinct, strict=True)) if r is None and t is not None
        ]
        if miss_pos:
            miss_text = [distinct[i] or "" for i in miss_pos]
            for i, text, row in zip(
                miss_pos, miss_text, self._resolve_many(miss_text, lookup_many), strict=True
            ):
                rows[i] = cache[text] = row
        full: list[_Row] = [r if r is not None else _NULL_ROW for r in rows]
        scopes, countries, asns, orgs = zip(*full, strict=True) if full else ((), (), (), ())
        indices = encoded.indices
        columns = [
            pa.array(scopes, type=pa.string()),
            pa.array(countries, type=pa.string()),
            pa.array(asns, type=pa.int64()),
            pa.array(orgs, type=pa.string()),
        ]
        return pa.Table.from_arrays([c.take(indices) for c in columns], schema=ENRICH_SCHEMA)


def fill_servers(destinations: list[dict[str, Any]], paths: Sequence[str]) -> None:
    """Fill the AS numbers (and any missing country or AS name) of destinations' servers.

    For the .mmdb files the user imported (``datareach kb import mmdb``): they add to the
    shipped geo data rather than replace it, filling what it left empty (an address the shipped
    AS data has no announcement for, a network without a country). A file that went missing or
    bad since it was imported is skipped (``kb status`` lists the imports).
    """
    files = []
    for p in paths:
        with contextlib.suppress(GeoDatabaseError):
            files.append(_MmdbFile(Path(p)))
    if not files:
        return
    for d in destinations:
        servers = d.get("servers") or []
        for s in servers:
            if s.get("ip_scope") != "public":
                continue
            try:
                addr = ipaddress.ip_address(s["ip"])
            except ValueError:
                continue
            for f in files:
                country, asn, as_org = _record_answer(f.get(addr))
                if s.get("asn") is None and asn is not None:
                    s["asn"] = asn
                if not s.get("as_org") and as_org:
                    s["as_org"] = as_org
                if not s.get("country") and country:
                    s["country"] = country
        if servers:
            first = servers[0]
            d["asn"], d["as_org"], d["country"] = first.get("asn"), first.get("as_org"), first.get("country")
            d["countries"] = sorted({s["country"] for s in servers if s.get("country")})
