#!/usr/bin/env python3
"""Rebuild the shipped IP-to-AS and IP-to-country data (``make update-network-data``).

The data comes from two packages of the npm registry, and from nowhere else:

* ``@ip-location-db/asn``: IP ranges to AS number and AS organisation (RouteViews, the five
  regional internet registries through the NRO, DB-IP's IP to ASN Lite; CC BY 4.0);
* ``@ip-location-db/geo-whois-asn-country``: IP ranges to country (operators' geofeeds, the
  registries' whois, then the AS's registry country; CC BY 4.0 by the NRO, the package says CC0).

Their READMEs warn that the npm copies carry bugs, so every row is checked: a malformed row, a
start above its end, a bogus AS number (0, AS_TRANS, documentation, private and reserved
numbers), a pseudo country code, a range wholly inside a private or special-purpose block
(RFC 1918, CGNAT, loopback, documentation, multicast, IPv6 outside 2000::/3 ...) is rejected.
Nested ranges are kept, the more specific inside the broader one (a geofeed entry inside a
registry block); a range that overlaps another only in part is rejected. Special-purpose blocks
are cut out of whatever covers them. The counts are printed with the data's date.

The result is ``src/datareach/enrich/data/network.dat.xz`` (format described in
``src/datareach/enrich/geo.py``, ``_NetworkFile``), with the packages' licence texts beside it.

Usage::

    python scripts/update_network_data.py                 # the latest versions
    python scripts/update_network_data.py --asn 2.3.2026061719 --country 2.3.2026061719
    python scripts/update_network_data.py --from-dir DIR  # tarballs already fetched (npm pack)
"""

from __future__ import annotations

import argparse
import base64
import bisect
import csv
import datetime as dt
import hashlib
import io
import json
import lzma
import re
import struct
import sys
import tarfile
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from datareach.enrich.geo import (  # noqa: E402  (the scope tables the run time uses)
    _V4_SCOPES,
    _V4_STARTS,
    _V6_SCOPES,
    _V6_STARTS,
    NETWORK_FILE,
    NETWORK_FORMAT,
    NETWORK_MAGIC,
)

REGISTRY = "https://registry.npmjs.org/"
ASN_PACKAGE = "@ip-location-db/asn"
COUNTRY_PACKAGE = "@ip-location-db/geo-whois-asn-country"
LICENCE_FILES = ("DBIP-LICENSE", "NRO_LICENSE", "ROUTEVIEWS-LICENSE", "MODIFICATIONS", "package.json")

# Not AS numbers of a network on the internet (IANA special-purpose AS numbers registry).
BOGUS_ASN = ((0, 0), (23456, 23456), (64496, 131071), (4200000000, 4294967295))
PSEUDO_COUNTRIES = frozenset({"EU", "AP", "ZZ", "XX", "A1", "A2", "O1"})
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


# --------------------------------------------------------------------------------------------
# Fetching (npm registry only)
# --------------------------------------------------------------------------------------------


def _get(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "datareach-update-network-data"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        data: bytes = resp.read()
    return data


@dataclass
class Package:
    name: str
    version: str
    published: str | None
    tarball: bytes
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def data_date(self) -> str:
        """The data's date from the version (``2.3.YYYYMMDDHH``)."""
        m = re.search(r"\.(\d{8})\d{2}$", self.version)
        if not m:
            raise SystemExit(f"{self.name} {self.version}: no date in the version")
        return dt.datetime.strptime(m.group(1), "%Y%m%d").date().isoformat()


def fetch_package(name: str, version: str | None, from_dir: Path | None) -> Package:
    published: str | None = None
    if from_dir is not None:
        stem = name.lstrip("@").replace("/", "-")
        found = sorted(from_dir.glob(f"{stem}-{version or '*'}.tgz"))
        found = [p for p in found if re.fullmatch(re.escape(stem) + r"-[0-9.]+\.tgz", p.name)]
        if not found:
            raise SystemExit(f"no {stem}-*.tgz in {from_dir}")
        path = found[-1]
        tarball = path.read_bytes()
        version = path.name[len(stem) + 1 : -4]
    else:
        meta = json.loads(_get(REGISTRY + name.replace("/", "%2f")))
        version = version or meta["dist-tags"]["latest"]
        info = meta["versions"][version]
        published = meta.get("time", {}).get(version)
        tarball = _get(info["dist"]["tarball"])
        integrity = info["dist"].get("integrity", "")
        if integrity.startswith("sha512-"):
            want = base64.b64decode(integrity[7:])
            if hashlib.sha512(tarball).digest() != want:
                raise SystemExit(f"{name} {version}: the tarball does not match the registry's integrity hash")
    pkg = Package(name, str(version), published, tarball)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                f = tar.extractfile(member)
                if f is not None:
                    pkg.files[member.name.split("/", 1)[-1]] = f.read()
    return pkg


# --------------------------------------------------------------------------------------------
# Validation and flattening
# --------------------------------------------------------------------------------------------


@dataclass
class Counts:
    rows: int = 0
    malformed: int = 0
    reversed: int = 0
    bogus_asn: int = 0
    bad_country: int = 0
    special: int = 0
    clipped: int = 0
    partial_overlap: int = 0
    duplicate: int = 0
    nested: int = 0
    kept: int = 0
    bad_name: int = 0

    def line(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.__dict__.items() if v)


def _special_intervals(bits: int) -> list[tuple[int, int]]:
    """Inclusive [start, end] of every block that is not public address space."""
    starts, scopes = (_V4_STARTS, _V4_SCOPES) if bits == 32 else (_V6_STARTS, _V6_SCOPES)
    top = 1 << bits
    out = []
    for i, (s, scope) in enumerate(zip(starts, scopes, strict=True)):
        if scope != "public":
            end = (starts[i + 1] if i + 1 < len(starts) else top) - 1
            out.append((s, end))
    return out


def _special_overlap(s: int, e: int, special: list[tuple[int, int]]) -> str | None:
    """"inside" when [s, e] is wholly special space, "part" when partly, else None."""
    covered = 0
    for a, b in special:
        lo, hi = max(a, s), min(b, e)
        if lo <= hi:
            covered += hi - lo + 1
    if covered == 0:
        return None
    return "inside" if covered == e - s + 1 else "part"


def _bogus_asn(n: int) -> bool:
    return not 0 < n < (1 << 32) or any(a <= n <= b for a, b in BOGUS_ASN)


def read_rows(text: str, kind: str, bits: int, counts: Counts,
              names: dict[int, str]) -> Iterator[tuple[int, int, object]]:
    """Checked (start, end, value) rows of one ``-num.csv`` file."""
    top = (1 << bits) - 1
    special = _special_intervals(bits)
    for row in csv.reader(io.StringIO(text)):
        counts.rows += 1
        try:
            if kind == "asn":
                if len(row) != 4:
                    raise ValueError
                s, e, asn = int(row[0]), int(row[1]), int(row[2])
            else:
                if len(row) != 3:
                    raise ValueError
                s, e = int(row[0]), int(row[1])
        except ValueError:
            counts.malformed += 1
            continue
        if not 0 <= s <= top or not 0 <= e <= top:
            counts.malformed += 1
            continue
        if s > e:
            counts.reversed += 1
            continue
        value: object
        if kind == "asn":
            if _bogus_asn(asn):
                counts.bogus_asn += 1
                continue
            name = row[3].strip()
            if _NAME_OK.match(name):
                old = names.setdefault(asn, name)
                if old != name:  # one name per AS: the first one seen
                    counts.bad_name += 1
            else:
                counts.bad_name += 1
            value = asn
        else:
            code = row[2].strip().upper()
            if not re.fullmatch(r"[A-Z]{2}", code) or code in PSEUDO_COUNTRIES:
                counts.bad_country += 1
                continue
            value = code
        where = _special_overlap(s, e, special)
        if where == "inside":
            counts.special += 1
            continue
        if where == "part":
            counts.clipped += 1
        yield s, e, value


def flatten(rows: Iterable[tuple[int, int, object]], bits: int, counts: Counts) -> tuple[list[int], list[object]]:
    """A partition of the address space: sorted starts from 0 and the value from each (None: no answer).

    Nested ranges: the more specific wins inside the broader one. A range that overlaps the one
    before it only in part is rejected; an exact duplicate is dropped.
    """
    ordered = sorted(rows, key=lambda r: (r[0], -r[1]))
    points: list[tuple[int, object]] = [(0, None)]
    stack: list[tuple[int, int, object]] = []  # (start, end, value), nested

    def close_until(pos: int) -> None:
        while stack and stack[-1][1] < pos:
            _s, end, _v = stack.pop()
            points.append((end + 1, stack[-1][2] if stack else None))

    for s, e, v in ordered:
        close_until(s)
        if stack:
            ps, pe, _pv = stack[-1]
            if (ps, pe) == (s, e):
                counts.duplicate += 1
                continue
            if e > pe:
                counts.partial_overlap += 1
                continue
            counts.nested += 1
        counts.kept += 1
        points.append((s, v))
        stack.append((s, e, v))
    close_until(1 << bits)
    # the last value given at a position holds (positions come in order); equal neighbours merge
    at: dict[int, object] = {}
    for pos, v in points:
        if pos < (1 << bits):
            at[pos] = v
    starts: list[int] = []
    values: list[object] = []
    for pos, v in at.items():
        if values and values[-1] == v:
            continue
        starts.append(pos)
        values.append(v)
    # cut the special-purpose blocks out (they never get an answer at run time either)
    special = _special_intervals(bits)
    cuts = sorted({p for a, b in special for p in (a, b + 1) if p < (1 << bits)})
    sp_starts = [a for a, _ in special]
    all_points = sorted(set(starts) | set(cuts))
    out_s: list[int] = []
    out_v: list[object] = []
    for p in all_points:
        k = bisect.bisect_right(sp_starts, p) - 1
        if k >= 0 and p <= special[k][1]:
            v = None
        else:
            v = values[bisect.bisect_right(starts, p) - 1]
        if out_v and out_v[-1] == v:
            continue
        out_s.append(p)
        out_v.append(v)
    return out_s, out_v


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _v6_halves(starts: list[int]) -> tuple[Any, Any]:
    hi = np.array([s >> 64 for s in starts], dtype="<u8")
    lo = np.array([s & ((1 << 64) - 1) for s in starts], dtype="<u8")
    return hi, lo


def build(asn_pkg: Package, country_pkg: Package) -> tuple[bytes, dict[str, Any]]:
    arrays: dict[str, Any] = {}
    report: dict[str, Any] = {}
    names: dict[int, str] = {}
    countries: list[str] = []
    for fam, bits in (("v4", 32), ("v6", 128)):
        c = Counts()
        text = asn_pkg.files[f"asn-ip{fam}-num.csv"].decode("utf-8")
        s, v = flatten(read_rows(text, "asn", bits, c, names), bits, c)
        report[f"asn {fam}"] = c
        asn_values = np.array([0 if x is None else x for x in v], dtype="<u4")
        if fam == "v4":
            arrays["asn_v4_starts"] = np.diff(np.array(s, dtype="<u8"), prepend=0).astype("<u4")
        else:
            arrays["asn_v6_hi"], arrays["asn_v6_lo"] = _v6_halves(s)
        arrays[f"asn_{fam}_values"] = asn_values
        c = Counts()
        text = country_pkg.files[f"geo-whois-asn-country-ip{fam}-num.csv"].decode("ascii")
        s, v = flatten(read_rows(text, "country", bits, c, {}), bits, c)
        report[f"country {fam}"] = c
        for x in v:
            if x is not None and x not in countries:
                countries.append(str(x))
        code_id = {code: i + 1 for i, code in enumerate(sorted(countries))}
        arrays[f"country_{fam}_codes"] = v  # resolved below, once every code is known
        if fam == "v4":
            arrays["country_v4_starts"] = np.diff(np.array(s, dtype="<u8"), prepend=0).astype("<u4")
        else:
            arrays["country_v6_hi"], arrays["country_v6_lo"] = _v6_halves(s)
    codes = sorted(countries)
    code_id = {code: i + 1 for i, code in enumerate(codes)}
    for fam in ("v4", "v6"):
        v = arrays.pop(f"country_{fam}_codes")
        arrays[f"country_{fam}_values"] = np.array([0 if x is None else code_id[x] for x in v], dtype="u1")
    used = set(np.unique(np.concatenate([arrays["asn_v4_values"], arrays["asn_v6_values"]])).tolist()) - {0}
    as_numbers = sorted(used)
    arrays["as_numbers"] = np.array(as_numbers, dtype="<u4")
    arrays["as_names"] = np.frombuffer("\n".join(names.get(n, "") for n in as_numbers).encode("utf-8"), dtype="u1")

    def source(pkg: Package, kind: str, title: str, what: str, licence: str, credit: str) -> dict[str, Any]:
        return {
            "kind": kind, "title": title,
            "package": pkg.name, "version": pkg.version, "date": pkg.data_date, "published": pkg.published,
            "sha256": hashlib.sha256(pkg.tarball).hexdigest(), "what": what, "licence": licence, "credit": credit,
        }

    header: dict[str, Any] = {
        "format": NETWORK_FORMAT,
        "built": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "date": min(asn_pkg.data_date, country_pkg.data_date),
        "country_codes": codes,
        "sources": [
            source(asn_pkg, "geo-asn", "IP to AS: RouteViews + NRO + DB-IP ASN Lite (ip-location-db)",
                   "IP ranges to AS number and AS organisation",
                   "CC BY 4.0 (RouteViews, NRO, DB-IP.com)",
                   "IP to AS data: RouteViews (routeviews.org), the NRO (nro.net) and IP to ASN Lite by "
                   "DB-IP (https://db-ip.com), CC BY 4.0, merged by ip-location-db (sapics)"),
            source(country_pkg, "geo-country", "IP to country: geofeeds + registry whois (ip-location-db)",
                   "IP ranges to country (geofeeds, then registry whois, then the AS's registry country)",
                   "CC BY 4.0 (NRO registry data; the package is marked CC0-1.0)",
                   "IP to country data: the regional internet registries' data via the NRO (nro.net), "
                   "CC BY 4.0, and operators' geofeeds, merged by ip-location-db (sapics)"),
        ],
        "arrays": {},
    }
    blobs = []
    offset = 0
    for name, arr in arrays.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header["arrays"][name] = {"dtype": np.asarray(arr).dtype.str, "count": len(arr), "offset": offset}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, sort_keys=True, ensure_ascii=True).encode("ascii")
    payload = NETWORK_MAGIC + struct.pack("<I", len(head)) + head + b"".join(blobs)
    report["as numbers"] = len(as_numbers)
    report["named"] = sum(1 for n in as_numbers if n in names)
    report["countries"] = len(codes)
    return lzma.compress(payload, preset=9 | lzma.PRESET_EXTREME), report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--asn", help=f"version of {ASN_PACKAGE} (default: latest)")
    ap.add_argument("--country", help=f"version of {COUNTRY_PACKAGE} (default: latest)")
    ap.add_argument("--from-dir", type=Path, help="read the .tgz files `npm pack` left in DIR instead of the registry")
    ap.add_argument("--out", type=Path, default=NETWORK_FILE)
    args = ap.parse_args(argv)
    asn_pkg = fetch_package(ASN_PACKAGE, args.asn, args.from_dir)
    country_pkg = fetch_package(COUNTRY_PACKAGE, args.country, args.from_dir)
    for pkg, need in ((asn_pkg, ("asn-ipv4-num.csv", "asn-ipv6-num.csv")),
                      (country_pkg, ("geo-whois-asn-country-ipv4-num.csv", "geo-whois-asn-country-ipv6-num.csv"))):
        missing = [n for n in need if n not in pkg.files]
        if missing:
            raise SystemExit(f"{pkg.name} {pkg.version}: missing {missing}")
    blob, report = build(asn_pkg, country_pkg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)
    licences = []
    for pkg in (asn_pkg, country_pkg):
        for n in LICENCE_FILES:
            if n in pkg.files:
                licences.append(f"===== {pkg.name} {pkg.version}: {n} =====\n{pkg.files[n].decode('utf-8').strip()}\n")
    (args.out.parent / "LICENSE-network-data.txt").write_text("\n".join(licences), encoding="utf-8")
    for pkg in (asn_pkg, country_pkg):
        print(f"{pkg.name} {pkg.version}: data of {pkg.data_date}"
              + (f", published {pkg.published}" if pkg.published else "")
              + f", sha256 {hashlib.sha256(pkg.tarball).hexdigest()[:16]}...")
    for k, v in report.items():
        print(f"{k}: {v.line() if isinstance(v, Counts) else v}")
    age = (dt.date.today() - dt.date.fromisoformat(min(asn_pkg.data_date, country_pkg.data_date))).days
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes); the data is {age} days old")
    if age > 183:
        print("warning: the data is older than six months", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
