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

* By default the country + ASN data that ships inside the ``geoip2fast`` wheel
  (``geoip2fast-asn-ipv6.dat.gz``, IPv4 and IPv6), which is MaxMind GeoLite2 data of a fixed
  date (the label inside the file says so; :meth:`GeoResolver.sources` reports it). That file
  keeps the AS *organisation name* for every network but **not the AS number** (it stores a
  list of names and, per network, an index into it), so with the default data ``asn`` is
  always null; the :class:`DataSource` says so in its ``note``. Nothing is ever fetched from
  the network: geoip2fast's own updater is not used.
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
import gzip
import importlib.metadata
import importlib.util
import io
import ipaddress
import pickle
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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

_MAPPED_V4_HIGH = 0xFFFF  # ::ffff:0:0/96
_NAT64_HIGH = int(ipaddress.IPv6Address("64:ff9b::")) >> 32  # 64:ff9b::/96


def _parse_ip(text: str) -> tuple[int, int] | None:
    """``(version, integer)`` for IP address text, or None when it is not one.

    Surrounding blanks, ``[...]`` brackets and an IPv6 zone (``%eth0``) are accepted. IPv4
    must be the strict dotted quad (no ``1.2.3``, no leading zeros). IPv4-mapped and NAT64
    well-known-prefix IPv6 addresses come back as the IPv4 address they carry.
    """
    s = text.strip()
    if not s or len(s) > 80:
        return None
    try:
        if ":" in s:
            if s[0] == "[" and s[-1] == "]":
                s = s[1:-1]
            pct = s.find("%")
            if pct >= 0:
                s = s[:pct]
            n = int.from_bytes(socket.inet_pton(socket.AF_INET6, s), "big")
            high = n >> 32
            if high in (_MAPPED_V4_HIGH, _NAT64_HIGH):
                return 4, n & 0xFFFFFFFF
            return 6, n
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, s), "big")
    except (OSError, ValueError):  # ValueError covers NUL bytes and unencodable text
        return None


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


def _iso_date_from_label(label: str) -> str | None:
    """The date in a label such as ``...-en-20240618`` as ``2024-06-18``."""
    for m in reversed(re.findall(r"(?<!\d)(\d{8})(?!\d)", label)):
        try:
            return _dt.datetime.strptime(m, "%Y%m%d").date().isoformat()
        except ValueError:
            continue
    return None


# --------------------------------------------------------------------------------------------
# Default source: the GeoLite2 country + ASN data inside the geoip2fast wheel
# --------------------------------------------------------------------------------------------

_DEFAULT_DAT = "geoip2fast-asn-ipv6.dat.gz"
_GEOLITE2_LICENCE = (
    "GeoLite2 End User License Agreement (MaxMind), redistributed by geoip2fast; attribution: "
    "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
)
_DEFAULT_NOTE = (
    "The geoip2fast data keeps each network's AS organisation name but not the AS number, so "
    "asn is null with this source; give a GeoLite2-ASN, DB-IP ASN or IPinfo .mmdb file with "
    "--geo-db for AS numbers. Data of a fixed date: networks move, so check the date."
)


def _geoip2fast_dir() -> Path:
    """The installed geoip2fast package directory, found without importing the package."""
    spec = importlib.util.find_spec("geoip2fast")
    if spec is None or not spec.submodule_search_locations:
        raise GeoDatabaseError("geoip2fast is not installed: it provides the default geo data")
    return Path(next(iter(spec.submodule_search_locations)))


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class _Geoip2fastData:
    """Longest-prefix lookups straight on the arrays geoip2fast pickles into its data file.

    geoip2fast's own ``lookup()`` works one address at a time through module globals and
    builds a result object per call. Its data file (format 120/121) holds, per table, sorted
    chunks of network start addresses with prefix lengths and an index into a list of names;
    we flatten those into sorted lists, split IPv4 from IPv6, and give IPv4 a /16 bucket index
    so that a lookup bisects only the handful of networks in its /16. Should the layout ever
    change, :class:`_Geoip2fastAPI` takes over.
    """

    def __init__(self, path: Path) -> None:
        with gzip.open(path, "rb") as f:
            dat_version, info, _total, db = pickle.load(f)  # the package's own data file
        if dat_version not in (120, 121) or not (info.get("country") and info.get("asn")):
            raise ValueError(f"unexpected geoip2fast data layout {dat_version!r} {info!r}")
        (
            _index,
            _index_asn,
            names_country,
            names_asn,
            first_ip,
            first_ip_asn,
            id_country,
            id_asn,
            netlen,
            netlen_asn,
        ) = db
        self.label: str = str(info.get("info", ""))
        # The first 16 country entries are geoip2fast's reserved/private/not-found markers.
        codes: list[str | None] = [
            None if i < 16 else _country_code(str(item).split(":", 1)[0])
            for i, item in enumerate(names_country)
        ]
        orgs: list[str | None] = [
            None if (not n or n in ("<unknown>", "IANA.ORG")) else n for n in map(str, names_asn)
        ]
        self._country = _PrefixTable(first_ip, netlen, id_country, codes)
        self._org = _PrefixTable(first_ip_asn, netlen_asn, id_asn, orgs)

    def lookup_many(self, versions: Sequence[int], ints: Sequence[int]) -> list[_Answer]:
        # One fused loop over both tables (this is the hot path: keep it flat).
        br = bisect.bisect_right
        c, o = self._country, self._org
        cs4, ce4, cv4, cb, cs6, cl6, cv6 = (
            c.v4_starts,
            c.v4_ends,
            c.v4_values,
            c.bucket,
            c.v6_starts,
            c.v6_lens,
            c.v6_values,
        )
        os4, oe4, ov4, ob, os6, ol6, ov6 = (
            o.v4_starts,
            o.v4_ends,
            o.v4_values,
            o.bucket,
            o.v6_starts,
            o.v6_lens,
            o.v6_values,
        )
        out: list[_Answer] = []
        append = out.append
        for v, n in zip(versions, ints, strict=True):
            if v == 4:
                h = n >> 16
                k = br(cs4, n, cb[h], cb[h + 1]) - 1
                j = br(os4, n, ob[h], ob[h + 1]) - 1
                append(
                    (
                        cv4[k] if k >= 0 and n < ce4[k] else None,
                        None,
                        ov4[j] if j >= 0 and n < oe4[j] else None,
                    )
                )
            else:
                k = br(cs6, n) - 1
                j = br(os6, n) - 1
                append(
                    (
                        cv6[k] if k >= 0 and n < cs6[k] + (1 << (128 - cl6[k])) else None,
                        None,
                        ov6[j] if j >= 0 and n < os6[j] + (1 << (128 - ol6[j])) else None,
                    )
                )
        return out


class _PrefixTable:
    """Sorted, non-overlapping networks -> value, searched with bisect."""

    def __init__(
        self,
        starts: Sequence[Sequence[int]],
        netlens: Sequence[Sequence[int]],
        ids: Sequence[Sequence[int]],
        names: Sequence[str | None],
    ) -> None:
        flat_starts = [x for chunk in starts for x in chunk]
        flat_len = [x for chunk in netlens for x in chunk]
        values = [names[x] for chunk in ids for x in chunk]
        if not (len(flat_starts) == len(flat_len) == len(values)):
            raise ValueError("geoip2fast data lists differ in length")
        split = bisect.bisect_right(flat_starts, 0xFFFFFFFF)
        # IPv4: (start, size) pairs; IPv6 likewise with 128-bit sizes.
        self.v4_starts = flat_starts[:split]
        self.v4_ends = [s + (1 << (32 - n)) for s, n in zip(self.v4_starts, flat_len[:split], strict=True)]
        self.v4_values = values[:split]
        self.v6_starts = flat_starts[split:]
        self.v6_lens = flat_len[split:]
        self.v6_values = values[split:]
        br = bisect.bisect_right
        v4 = self.v4_starts
        # bucket[h] = number of networks starting at or before the /16 h. For an address n in
        # that /16, bisecting only v4_starts[bucket[h]:bucket[h + 1]] gives the same answer as
        # bisecting the whole list: when every start in the slice is above n, the network
        # sought is the one just before the slice (index bucket[h] - 1).
        self.bucket = [br(v4, h << 16) for h in range((1 << 16) + 1)]


class _Geoip2fastAPI:
    """Fallback through geoip2fast's public API, if its data layout is not the one we know."""

    def __init__(self, path: Path) -> None:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            from geoip2fast import GeoIP2Fast

            self._g = GeoIP2Fast(verbose=False, geoip2fast_data_file=str(path))
        self.label: str = str(getattr(self._g, "source_info", ""))

    def lookup(self, version: int, n: int) -> _Answer:
        text = str(ipaddress.IPv4Address(n) if version == 4 else ipaddress.IPv6Address(n))
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            r = self._g.lookup(text)
        if getattr(r, "is_private", False):
            return _NO_ANSWER
        org = _text(getattr(r, "asn_name", None))
        if org in ("<unknown>", "IANA.ORG"):
            org = None
        return _country_code(getattr(r, "country_code", None)), None, org

    def lookup_many(self, versions: Sequence[int], ints: Sequence[int]) -> list[_Answer]:
        return [self.lookup(v, n) for v, n in zip(versions, ints, strict=True)]


# --------------------------------------------------------------------------------------------
# The compiled index: the default data as numpy arrays in the user's cache directory
# --------------------------------------------------------------------------------------------

# Bump when the layout of the compiled index (or how it is derived) changes.
_INDEX_FORMAT = 1
_V6_TOP = 1 << 128
_U64 = (1 << 64) - 1


def _partition(
    starts: Sequence[int], ends: Sequence[int], values: Sequence[str | None], top: int
) -> tuple[list[int], list[str | None]]:
    """Cover ``[0, top)`` with sorted intervals that give what :class:`_Geoip2fastData` gives.

    The reference answer for ``n`` is the value of the last network starting at or before
    ``n`` when ``n`` is below that network's end, else None. So each network holds from its
    start to its end or the next start, whichever comes first, and a gap (None) follows when
    its end comes first; addresses below the first start are a gap too. Neighbours with the
    same value are merged. The result always starts at 0, so a search never falls off the left.
    """
    out_s: list[int] = [0]
    out_v: list[str | None] = [None]
    count = len(starts)
    for k in range(count):
        s, v = starts[k], values[k]
        if k and s <= starts[k - 1]:
            raise ValueError("geoip2fast networks are not sorted")
        nxt = starts[k + 1] if k + 1 < count else top
        if out_s[-1] == s:
            out_v[-1] = v
        elif out_v[-1] != v:
            out_s.append(s)
            out_v.append(v)
        if ends[k] < nxt and out_v[-1] is not None:
            out_s.append(ends[k])
            out_v.append(None)
    # merging can leave a value equal to its predecessor after an overwrite at the same start
    ms: list[int] = []
    mv: list[str | None] = []
    for s, v in zip(out_s, out_v, strict=True):
        if mv and mv[-1] == v:
            continue
        ms.append(s)
        mv.append(v)
    return ms, mv


class _CompiledIndex:
    """Country and AS organisation for whole numpy arrays of addresses.

    Per table (``country``, ``org``) and address family: sorted interval starts that cover the
    whole address space (IPv4 as uint32; IPv6 as two uint64 columns, high and low half) and,
    per interval, an index into a string table where 0 means "no answer". Look-ups are
    ``np.searchsorted`` over a batch. Built from :class:`_Geoip2fastData` (the reference) and
    kept in the cache directory (see :mod:`datareach.cache`), memory-mapped on later runs.
    """

    TABLES = ("country", "org")

    def __init__(self, arrays: Mapping[str, Any], label: str, path: Path | None) -> None:
        import numpy as np

        self.label = label
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

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build_arrays(cls, data: _Geoip2fastData) -> dict[str, Any]:
        """The index arrays for the reference tables (the slow, cold-start path)."""
        import numpy as np

        out: dict[str, Any] = {}
        for t, table in (("country", data._country), ("org", data._org)):
            s4, v4 = _partition(table.v4_starts, table.v4_ends, table.v4_values, 1 << 32)
            ends6 = [s + (1 << (128 - n)) for s, n in zip(table.v6_starts, table.v6_lens, strict=True)]
            s6, v6 = _partition(table.v6_starts, ends6, table.v6_values, _V6_TOP)
            names: list[str] = sorted({v for v in (*v4, *v6) if v is not None})
            position = {name: i + 1 for i, name in enumerate(names)}
            encoded = [b"", *(name.encode("utf-8", "surrogatepass") for name in names)]
            offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
            np.cumsum([len(e) for e in encoded], out=offsets[1:])
            id_type = np.uint8 if len(encoded) <= 1 << 8 else np.uint16 if len(encoded) <= 1 << 16 else np.uint32
            out[f"{t}_v4_starts"] = np.array(s4, dtype=np.uint32)
            out[f"{t}_v4_ids"] = np.array([0 if v is None else position[v] for v in v4], dtype=id_type)
            out[f"{t}_v6_hi"] = np.array([s >> 64 for s in s6], dtype=np.uint64)
            out[f"{t}_v6_lo"] = np.array([s & _U64 for s in s6], dtype=np.uint64)
            out[f"{t}_v6_ids"] = np.array([0 if v is None else position[v] for v in v6], dtype=id_type)
            out[f"{t}_offsets"] = offsets
            out[f"{t}_data"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        return out

    @staticmethod
    def cache_key(source: Path) -> dict[str, object]:
        from datareach import cache

        return {
            "what": "geoip2fast-index",
            "format": _INDEX_FORMAT,
            "source": cache.source_key(source),
            "geoip2fast": _package_version("geoip2fast"),
        }

    @classmethod
    def load(cls, source: Path) -> _CompiledIndex | None:
        """The index compiled earlier from ``source``, if the cache holds a sound one."""
        import numpy as np

        from datareach import cache

        key = cls.cache_key(source)
        path = cache.cache_path("geoip2fast-index", key)
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
            return cls(arrays, label, path)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None

    @classmethod
    def compile(cls, source: Path, data: _Geoip2fastData) -> _CompiledIndex:
        """Build from the reference tables and store in the cache directory when possible."""
        from datareach import cache

        arrays = cls.build_arrays(data)
        key = cls.cache_key(source)
        path = cache.cache_path("geoip2fast-index", key)
        sections: dict[str, tuple[Any, str | None, list[int] | None]] = {
            name: (arr, arr.dtype.str, list(arr.shape)) for name, arr in arrays.items()
        }
        sections["label"] = (data.label.encode("utf-8"), None, None)
        stored = cache.store(path, key, sections)
        return cls(arrays, data.label, path if stored else None)

    # -- look-ups -----------------------------------------------------------------------------

    def ids_v4(self, table: str, q: Any) -> Any:
        import numpy as np

        return self.v4_ids[table][np.searchsorted(self.v4_starts[table], q, side="right") - 1]

    def ids_v6(self, table: str, qh: Any, ql: Any) -> Any:
        return self.v6_ids[table][_search128(self.v6_hi[table], self.v6_lo[table], qh, ql) - 1]

    def lookup_many(self, versions: Sequence[int], ints: Sequence[int]) -> list[_Answer]:
        """Same contract as :meth:`_Geoip2fastData.lookup_many` (one row per address)."""
        import numpy as np

        v = np.asarray(versions, dtype=np.int8)
        out: list[_Answer] = [_NO_ANSWER] * len(v)
        pos4 = np.flatnonzero(v == 4)
        pos6 = np.flatnonzero(v != 4)
        q4 = np.array([ints[i] for i in pos4.tolist()], dtype=np.uint32)
        big = [ints[i] for i in pos6.tolist()]
        qh = np.array([n >> 64 for n in big], dtype=np.uint64)
        ql = np.array([n & _U64 for n in big], dtype=np.uint64)
        strings = {t: self.strings[t].to_pylist() for t in self.TABLES}
        c4, o4 = self.ids_v4("country", q4).tolist(), self.ids_v4("org", q4).tolist()
        c6, o6 = self.ids_v6("country", qh, ql).tolist(), self.ids_v6("org", qh, ql).tolist()
        cs, os_ = strings["country"], strings["org"]
        for positions, cids, oids in ((pos4.tolist(), c4, o4), (pos6.tolist(), c6, o6)):
            for i, c, o in zip(positions, cids, oids, strict=True):
                out[i] = (cs[c] if c else None, None, os_[o] if o else None)
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
        columns.append(index.strings[t].take(pa.array(ids, mask=ids == 0)))
    columns.insert(2, pa.nulls(d, type=pa.int64()))
    return columns


class _DefaultBackend:
    """The data shipped in geoip2fast.

    ``compiled`` (the default): the :class:`_CompiledIndex` from the cache directory, compiled
    there from the shipped file on first use (or in memory when the directory cannot be
    written). ``compiled=False``: the reference tables straight from the shipped file, as
    every run used to load them (the tests compare the two).
    """

    def __init__(self, compiled: bool = True) -> None:
        self.path = _geoip2fast_dir() / _DEFAULT_DAT
        if not self.path.is_file():
            raise GeoDatabaseError(f"{self.path}: geoip2fast's shipped data file is missing")
        self.index: _CompiledIndex | None = None
        impl: _CompiledIndex | _Geoip2fastData | _Geoip2fastAPI | None = None
        if compiled:
            self.index = _CompiledIndex.load(self.path)
        if self.index is None:
            sink = io.StringIO()
            try:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    data = _Geoip2fastData(self.path)
                impl = data
                if compiled:
                    self.index = _CompiledIndex.compile(self.path, data)
            except (ValueError, TypeError, KeyError, AttributeError, pickle.UnpicklingError):
                impl = _Geoip2fastAPI(self.path)
        if self.index is not None:
            impl = self.index  # the reference tables (if loaded) are not kept
        assert impl is not None
        self._impl: _CompiledIndex | _Geoip2fastData | _Geoip2fastAPI = impl
        self.lookup_many: Callable[[Sequence[int], Sequence[int]], list[_Answer]] = self._impl.lookup_many

    def cache_info(self) -> str:
        """Where the compiled index lives (or why there is none)."""
        from datareach import cache

        if self.index is not None and self.index.path is not None:
            return f"compiled index: {self.index.path}"
        if self.index is not None:
            return f"compiled index kept in memory ({cache.cache_dir()} is not writable)"
        return "no compiled index (geoip2fast data read directly)"

    def source(self) -> DataSource:
        label = self._impl.label
        return DataSource(
            name="MaxMind GeoLite2 Country + ASN (shipped in geoip2fast)",
            path=str(self.path),
            kind="geo-country-asn",
            version=f"{label} (geoip2fast {_package_version('geoip2fast')}, {_DEFAULT_DAT})",
            date=_iso_date_from_label(label),
            licence=_GEOLITE2_LICENCE,
            # (where the compiled index lives is machine-specific: cache_info(), not the report)
            note=_DEFAULT_NOTE,
        )


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

    ``geo_db`` None or empty: the data shipped in geoip2fast, loaded on the first
    :meth:`enrich` (it takes a fraction of a second). Otherwise one or more ``.mmdb`` files,
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
            return [backend.source()]
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
    shipped geo data rather than replace it, because the shipped data has AS organisation names
    but no AS numbers, which an imported ASN database supplies. A file that went missing or
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
