"""Synthetic Zeek and Suricata logs of any size, for the organisation-scale benchmarks and tests.

    python benchmarks/generate_logs.py --rows 10000000 --out DIR [--form zeek-tsv|zeek-json|eve]
        [--gzip] [--hours H] [--days D] [--start 2026-12-01] [--clients 3000] [--seed 1]
        [--plant HOST:CATEGORY:DEVICES ...] [--eve-version 7|8]

or, from Python (tests): ``generate(out_dir, rows=2000, form="zeek-json", plants=[...], seed=1)``.

What it writes: ``--rows`` conn rows (Zeek ``conn.log``; EVE ``flow`` events) exactly, over ``--days``
days from ``--start``, with the logs that go with them: ``dns.log`` (a look-up before about a third
of the connections: the resolver's answers with TTLs and CNAME chains to CDNs; for the CDN hosts the
addresses come from pools of thousands, so those answers rarely repeat), ``ssl.log`` (SNI, most of the
traffic), ``quic.log`` (some), ``http.log`` (plain HTTP: URIs, user agents), ``dhcp.log`` (the MACs and
host names of part of the clients, once a day). In EVE the same as ``flow``, ``dns`` (Suricata 7's
version 2 layout, or 8's version 3 with ``--eve-version 8``), ``tls``, ``quic``, ``http`` and ``dhcp``
events in one file. Clients: ``--clients`` devices in 10.0.0.0/8 (a skewed activity), one resolver
(10.0.0.2). Destinations: the popular services, a long tail of sites behind CDNs, and a few
covered owners (:data:`COVERED`: domains datareach attributes to Chinese or Russian companies).

Layout: with ``--days 1`` and no ``--hours``, flat files in DIR (``conn.log``, ...; EVE ``eve.json``);
otherwise one directory per day (``DIR/2026-12-01/``) holding, with ``--hours H``, H hourly files per
kind named as Zeek's log archive names them (``conn.00:00:00-01:00:00.log.gz``), else one per kind.
The Zeek TSV header is Zeek's ASCII writer's (``#separator \\x09``, ``#set_separator``,
``#empty_field``, ``#unset_field``, ``#path``, ``#open``, ``#fields``, ``#types``; ``#close`` at the
end), with the field layouts of Zeek 7's baselines (conn with ``orig_l2_addr``/``resp_l2_addr`` from
``policy/protocols/conn/mac-logging``); Zeek JSON omits unset fields, as Zeek does.

Planted bulk-data counterparties (``--plant HOST:CATEGORY:DEVICES``, repeatable): DEVICES distinct
devices, each with its own advertising ID (a UUID: ``gaid`` for Android, ``idfa`` for iOS), each send
one plain-HTTP GET to HOST whose query string carries CATEGORY's data: ``location`` (``lat``/``lon``
with 5 decimals, in the United States) or ``identifiers`` (an ``email`` address). datareach's detectors
find these (``advertising_id``, ``location``, ``email``; categories ``us-doj:precise-geolocation``,
``us-doj:covered-personal-identifiers``). The devices sit behind the network's client addresses
(several devices per address when DEVICES > --clients: NAT), so the distinct client IPs are a lower
bound of the devices, the advertising IDs the count. Plant rows are part of the ``--rows``.

Speed: DuckDB computes every row from hashes of its index (no Python per row) and writes each file with
``COPY``; measured on 2 cores: see ``--help``'s epilogue or the final line it prints (rows/s).
"""

from __future__ import annotations

import argparse
import calendar
import gzip as gzip_mod
import hashlib
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

FORMS = ("zeek-tsv", "zeek-json", "eve")
CATEGORIES = ("location", "identifiers")
RESOLVER = "10.0.0.2"
DHCP_SERVER = "10.0.0.1"
SENSOR_MAC = "00:1b:21:3a:4f:10"  # the gateway's MAC (resp_l2_addr / dest_mac)

#: Covered owners, as ``datareach explain HOST --format json`` attributes them (knowledge base of
#: 2026-11-24): host, owner (ultimate parent), reach on the owner basis, first address of its pool.
COVERED: tuple[tuple[str, str, str, str], ...] = (
    ("log.tiktokv.com", "TikTok Pte. Ltd. (ByteDance Ltd.)", "CN KY MY SG US", "23.52.40.0"),
    ("mon.isnssdk.com", "TikTok Pte. Ltd. (ByteDance Ltd.)", "CN KY MY SG US", "23.52.41.0"),
    ("alog.umeng.com", "Umeng (Alibaba Group Holding Limited)", "CN HK KY SG", "47.246.136.0"),
    ("ulogs.umeng.com", "Umeng (Alibaba Group Holding Limited)", "CN HK KY SG", "47.246.137.0"),
    ("mc.yandex.ru", "Yandex LLC (Consortium.First)", "RU", "87.250.250.119"),
    ("api.vk.com", "VK (JSC MF Technologies)", "RU", "87.240.129.133"),
    ("btrace.qq.com", "Tencent Holdings Limited", "CN HK KY SG US", "43.135.106.0"),
    ("hm.baidu.com", "Baidu, Inc.", "CN KY", "180.101.49.0"),
)

# host, first address, pool size, TTL, CNAME chain, (share tls, quic, http; rest: other TCP), port
# of the other TCP. Ordered by popularity (the generator picks with a power law over the rank).
_POPULAR: tuple[tuple[str, str, int, int, tuple[str, ...], tuple[float, float, float], int], ...] = (
    ("www.google.com", "142.250.64.0", 64, 300, (), (0.55, 0.45, 0.0), 443),
    ("fonts.gstatic.com", "142.250.80.0", 32, 300, (), (0.6, 0.4, 0.0), 443),
    ("login.microsoftonline.com", "20.190.128.0", 16, 60,
     ("login.mso.msidentity.com", "ak.privatelink.msidentity.com"), (1.0, 0.0, 0.0), 443),
    ("graph.facebook.com", "157.240.3.0", 8, 60, ("star.c10r.facebook.com",), (0.7, 0.3, 0.0), 443),
    ("www.youtube.com", "142.250.72.0", 32, 300, ("youtube-ui.l.google.com",), (0.4, 0.6, 0.0), 443),
    ("outlook.office365.com", "52.96.0.0", 64, 30, ("outlook.ms-acdc.office.com",), (1.0, 0.0, 0.0), 443),
    ("gateway.icloud.com", "17.248.128.0", 64, 60, ("gateway.fe.apple-dns.net",), (1.0, 0.0, 0.0), 443),
    ("api.github.com", "140.82.112.5", 4, 60, (), (1.0, 0.0, 0.0), 443),
    ("slack.com", "3.120.0.0", 16, 60, (), (1.0, 0.0, 0.0), 443),
    ("www.amazon.com", "23.200.0.0", 4096, 20, ("tp.47cf2c8c9-frontier.amazon.com", "www.amazon.com.edgekey.net",
                                                 "e15316.a.akamaiedge.net"), (1.0, 0.0, 0.0), 443),
    ("courier.push.apple.com", "17.57.144.0", 256, 60, ("courier-push-apple.com.akadns.net",),
     (0.0, 0.0, 0.0), 5223),
    ("www.nytimes.com", "151.101.1.164", 4, 300, ("nytimes.map.fastly.net",), (1.0, 0.0, 0.0), 443),
    ("d3c33hcgiwev3.cloudfront.net", "13.32.0.0", 16384, 60, (), (1.0, 0.0, 0.0), 443),
    ("zoom.us", "170.114.52.2", 8, 60, (), (1.0, 0.0, 0.0), 443),
    ("ocsp.digicert.com", "192.229.211.108", 2, 300, ("fp2e7a.wpc.phicdn.net",), (0.0, 0.0, 1.0), 80),
    ("connectivitycheck.gstatic.com", "142.250.176.3", 4, 300, (), (0.0, 0.0, 1.0), 80),
    ("mqtt.example-iot.com", "52.29.0.0", 16, 60, (), (0.0, 0.0, 0.0), 8883),
    ("www.cloudflare.com", "104.16.123.96", 2, 300, (), (0.6, 0.4, 0.0), 443),
    ("cdn.jsdelivr.net", "104.16.85.20", 2, 300, ("jsdelivr.map.fastly.net",), (1.0, 0.0, 0.0), 443),
    ("api.mobile.appsflyer.com", "18.66.0.0", 8192, 60, ("api.mobile.appsflyer.com.cdn.cloudflare.net",),
     (1.0, 0.0, 0.0), 443),
)
_TAIL_TLDS = ("com", "net", "org", "io", "co.uk", "de", "fr", "com.au")
_CDNS = (  # CNAME suffix, first address, pool
    ("cdn.cloudflare.net", "104.18.0.0", 65536),
    ("edgekey.net", "23.32.0.0", 65536),
    ("map.fastly.net", "151.101.0.0", 65536),
    ("cloudfront.net", "18.160.0.0", 65536),
    ("", "", 0),  # no CDN: the site's own addresses
)
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Microsoft-CryptoAPI/10.0",
    "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240905.003)",
    "okhttp/4.12.0",
    "Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.71",
)
_URIS = ("/", "/index.html", "/generate_204", "/MFEwTzBNMEswSTAJBgUrDgMCGgUABBS", "/favicon.ico",
         "/static/app.js", "/api/v1/status", "/images/logo.png", "/news/article")

# Field layouts (name, Zeek type), as Zeek 7 writes them (testing/btest/Baseline of zeek/zeek).
ZEEK_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "conn": (("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
             ("id.resp_h", "addr"), ("id.resp_p", "port"), ("proto", "enum"), ("service", "string"),
             ("duration", "interval"), ("orig_bytes", "count"), ("resp_bytes", "count"),
             ("conn_state", "string"), ("local_orig", "bool"), ("local_resp", "bool"),
             ("missed_bytes", "count"), ("history", "string"), ("orig_pkts", "count"),
             ("orig_ip_bytes", "count"), ("resp_pkts", "count"), ("resp_ip_bytes", "count"),
             ("tunnel_parents", "set[string]"), ("ip_proto", "count"), ("orig_l2_addr", "string"),
             ("resp_l2_addr", "string")),
    "dns": (("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
            ("id.resp_h", "addr"), ("id.resp_p", "port"), ("proto", "enum"), ("trans_id", "count"),
            ("rtt", "interval"), ("query", "string"), ("qclass", "count"), ("qclass_name", "string"),
            ("qtype", "count"), ("qtype_name", "string"), ("rcode", "count"), ("rcode_name", "string"),
            ("AA", "bool"), ("TC", "bool"), ("RD", "bool"), ("RA", "bool"), ("Z", "count"),
            ("answers", "vector[string]"), ("TTLs", "vector[interval]"), ("rejected", "bool"),
            ("opcode", "count"), ("opcode_name", "string")),
    "ssl": (("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
            ("id.resp_h", "addr"), ("id.resp_p", "port"), ("version", "string"), ("cipher", "string"),
            ("curve", "string"), ("server_name", "string"), ("resumed", "bool"), ("last_alert", "string"),
            ("next_protocol", "string"), ("established", "bool"), ("ssl_history", "string"),
            ("cert_chain_fps", "vector[string]"), ("client_cert_chain_fps", "vector[string]"),
            ("sni_matches_cert", "bool")),
    "quic": (("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
             ("id.resp_h", "addr"), ("id.resp_p", "port"), ("version", "string"),
             ("client_initial_dcid", "string"), ("client_scid", "string"), ("server_scid", "string"),
             ("server_name", "string"), ("client_protocol", "string"), ("history", "string")),
    "http": (("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
             ("id.resp_h", "addr"), ("id.resp_p", "port"), ("trans_depth", "count"), ("method", "string"),
             ("host", "string"), ("uri", "string"), ("referrer", "string"), ("version", "string"),
             ("user_agent", "string"), ("origin", "string"), ("request_body_len", "count"),
             ("response_body_len", "count"), ("status_code", "count"), ("status_msg", "string"),
             ("info_code", "count"), ("info_msg", "string"), ("tags", "set[enum]"), ("username", "string"),
             ("password", "string"), ("proxied", "set[string]"), ("orig_fuids", "vector[string]"),
             ("orig_filenames", "vector[string]"), ("orig_mime_types", "vector[string]"),
             ("resp_fuids", "vector[string]"), ("resp_filenames", "vector[string]"),
             ("resp_mime_types", "vector[string]")),
    "dhcp": (("ts", "time"), ("uids", "set[string]"), ("client_addr", "addr"), ("server_addr", "addr"),
             ("mac", "string"), ("host_name", "string"), ("client_fqdn", "string"), ("domain", "string"),
             ("requested_addr", "addr"), ("assigned_addr", "addr"), ("lease_time", "interval"),
             ("client_message", "string"), ("server_message", "string"), ("msg_types", "vector[string]"),
             ("duration", "interval")),
}
ZEEK_KINDS = ("conn", "dns", "ssl", "quic", "http", "dhcp")


@dataclass(frozen=True)
class Plant:
    host: str
    category: str
    devices: int

    @classmethod
    def parse(cls, text: str) -> Plant:
        host, sep, rest = text.rpartition(":")
        host, sep2, category = host.rpartition(":")
        if not sep or not sep2 or not host or category not in CATEGORIES:
            raise ValueError(f"--plant {text!r}: expected HOST:CATEGORY:DEVICES, CATEGORY one of {CATEGORIES}")
        return cls(host.lower(), category, int(rest))


@dataclass
class Generated:
    """What :func:`generate` wrote."""
    out_dir: Path
    form: str
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # log kind (or EVE event type) -> rows
    #: planted host -> the advertising IDs of its devices (one per device)
    plant_ids: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    first: float = 0.0  # the period, epoch seconds
    last: float = 0.0


def _ip_int(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _hosts(seed: int, tail: int, plants: Sequence[Plant]) -> list[tuple[object, ...]]:
    """The destination table: (host, ip_base, pool, ttl, cnames, p_tls, p_quic, p_http, port)."""
    rows: list[tuple[object, ...]] = []
    for host, base, pool, ttl, chain, (ptls, pquic, phttp), port in _POPULAR:
        rows.append((host, _ip_int(base), pool, ttl, ",".join(chain), ptls, pquic, phttp, port))
    rng = random.Random(seed * 7919 + 17)
    for n in range(tail):
        tld = _TAIL_TLDS[n % len(_TAIL_TLDS)]
        site = f"site{n:05d}.{tld}"
        suffix, base, pool = _CDNS[rng.randrange(len(_CDNS))]
        mix = (0.85, 0.05, 0.05) if n % 9 else (0.6, 0.0, 0.3)
        if suffix:
            chain = f"www.{site}.{suffix}" if suffix != "edgekey.net" else f"www.{site}.edgekey.net,e{n}.a.akamaiedge.net"
            rows.append((f"www.{site}", _ip_int(base), pool, 20 + rng.randrange(280), chain, *mix, 443))
        else:
            ip = (rng.randrange(1, 223) << 24) | rng.randrange(1 << 24)
            if (ip >> 24) in (10, 100, 127, 169, 172, 192):
                ip = (45 << 24) | (ip & 0xFFFFFF)
            rows.append((f"www.{site}", ip & ~3, 4, 300 + rng.randrange(3300), "", *mix, 443))
    # the covered owners, among the popular ranks (a few per cent of the traffic together)
    for k, (host, _owner, _reach, base) in enumerate(COVERED):
        pool = 256 if base.endswith(".0") else 1
        entry = (host, _ip_int(base), pool, 300, "", 0.8, 0.0, 0.2, 443)
        rows.insert(12 + 5 * k, entry)
    known = {str(r[0]) for r in rows}
    for p in plants:
        if p.host not in known:
            rows.append((p.host, (203 << 24) | (0 << 16) | (113 << 8) | (_stable(p.host) % 254 + 1), 1, 300,
                         "", 0.0, 0.0, 1.0, 80))
            known.add(p.host)
    return rows


def _clients(n: int, seed: int) -> list[tuple[object, ...]]:
    """(idx, ip, mac or None, host_name or None): 70 % with a known MAC, 60 % of those named."""
    rng = random.Random(seed * 104729 + 3)
    kinds = ("LAPTOP", "iPhone", "Galaxy-S23", "MacBook-Pro", "DESKTOP", "iPad", "printer", "Pixel-8")
    out = []
    for i in range(n):
        ip = f"10.{1 + i // 62500}.{(i // 250) % 250}.{10 + i % 250}"
        mac = name = None
        if rng.random() < 0.7:
            octets = [rng.choice((0x3c, 0xa4, 0xf0, 0x88, 0xdc)), *(rng.randrange(256) for _ in range(5))]
            mac = ":".join(f"{o:02x}" for o in octets)
            if rng.random() < 0.6:
                name = f"{kinds[i % len(kinds)]}-{i:04d}"
        out.append((i, ip, mac, name))
    return out


def _us_point(rng: random.Random) -> tuple[float, float]:
    # a few US metropolitan areas, spread by up to ~0.5 degree
    cities = ((40.71427, -74.00597), (34.05223, -118.24368), (41.85003, -87.65005), (29.76328, -95.36327),
              (33.44838, -112.07404), (39.95233, -75.16379), (47.60621, -122.33207), (38.89511, -77.03637))
    lat, lon = cities[rng.randrange(len(cities))]
    return round(lat + rng.uniform(-0.5, 0.5), 5), round(lon + rng.uniform(-0.5, 0.5), 5)


def _plant_rows(plants: Sequence[Plant], clients: list[tuple[object, ...]], seed: int, start: float,
                file_spans: list[tuple[float, float]], host_ips: dict[str, int]
                ) -> tuple[list[tuple[object, ...]], dict[str, list[str]]]:
    """One HTTP request per planted device: (file, ts, client idx, server ip int, host, uri, ua)."""
    rows: list[tuple[object, ...]] = []
    ids: dict[str, list[str]] = {}
    for p_index, p in enumerate(plants):
        rng = random.Random(f"{seed}/{p.host}/{p.category}/{p_index}")
        mine = ids.setdefault(p.host, [])
        for d in range(p.devices):
            ios = rng.random() < 0.45
            adid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            adid = adid.upper() if ios else adid
            mine.append(adid)
            key = "idfa" if ios else "gaid"
            if p.category == "location":
                lat, lon = _us_point(rng)
                uri = f"/v1/collect?app=com.example.weather&{key}={adid}&lat={lat:.5f}&lon={lon:.5f}&acc=12"
            else:
                uri = f"/v1/track?app=com.example.shop&{key}={adid}&email=user{d}.{p_index}%40example.com"
            ua = ("WeatherApp/5.2 CFNetwork/1568.100.1 Darwin/24.0.0" if ios else
                  "Dalvik/2.1.0 (Linux; U; Android 14; SM-S911U Build/UP1A.231005.007)")
            f = rng.randrange(len(file_spans))
            lo, hi = file_spans[f]
            ts = lo + rng.random() * (hi - lo - 2)
            client = (d * 7919 + p_index * 31) % len(clients)
            rows.append((f, ts, client, host_ips[p.host], p.host, uri, ua))
    return rows, ids


def _table(con: object, name: str, columns: list[str], rows: Sequence[Sequence[object]], types: list[object]) -> None:
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in columns]
    table = pa.table({c: pa.array(list(v), type=t) for c, v, t in zip(columns, cols, types, strict=True)})
    con.register(f"{name}_arrow", table)  # type: ignore[attr-defined]
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_arrow")  # type: ignore[attr-defined]
    con.unregister(f"{name}_arrow")  # type: ignore[attr-defined]


def _zeek_time(ts: float) -> str:
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(ts))


# ---- SQL ------------------------------------------------------------------------------------------
# Every random value is a hash of the row's (or slot's) index times 64 plus a salt, and the seed:
# deterministic, no state, computed in parallel by DuckDB. (hash(j, seed, k) for several k would not
# do: DuckDB's hash of several values is strongly correlated across the last one.)

def _sql_list(items: Sequence[str]) -> str:
    return "[" + ", ".join("'" + x.replace("'", "''") + "'" for x in items) + "]"


def _macros(con: object, seed: int) -> None:
    sql = f"""
    CREATE OR REPLACE MACRO uni(j, k) AS (hash(j * 64 + k, {seed}) >> 11)::DOUBLE / 9007199254740992.0;
    CREATE OR REPLACE MACRO ip4(x) AS concat((x >> 24) & 255, '.', (x >> 16) & 255, '.', (x >> 8) & 255, '.', x & 255);
    CREATE OR REPLACE MACRO zt(x) AS printf('%.6f', x);
    CREATE OR REPLACE MACRO iso(x) AS strftime(make_timestamp((x * 1000000)::BIGINT), '%Y-%m-%dT%H:%M:%S.%f') || '+0000';
    CREATE OR REPLACE MACRO hx(j, k, n) AS substr(printf('%016x', hash(j * 64 + k, {seed})), 1, n);
    CREATE OR REPLACE MACRO uri_of(j) AS {_sql_list(_URIS)}[1 + (hash(j, 31) % {len(_URIS)})::INTEGER];
    CREATE OR REPLACE MACRO ua_of(j) AS {_sql_list(_USER_AGENTS)}[1 + (hash(j, 32) % {len(_USER_AGENTS)})::INTEGER];
    """
    for stmt in sql.split(";\n"):
        if stmt.strip():
            con.execute(stmt)  # type: ignore[attr-defined]


def _ev_sql(a: int, b: int, nbg: int, file_start: float, file_len: float, file_index: int, tag: int) -> str:
    """The conn rows of slots [a, b): a slot is a DNS look-up then a connection (35 %, and always for
    hosts with no name in the traffic) or two connections to the same host (a cached answer)."""
    step = file_len / max(b - a, 1)
    return f"""
    WITH s AS (
      SELECT j, {file_start} + (j - {a} + uni(j, 0) * 0.9) * {step} AS t0,
             floor(ncl.n * pow(uni(j, 1), 1.6))::INTEGER AS ci,
             floor(nh.n * pow(uni(j, 2), 2.4))::INTEGER AS hi,
             uni(j, 3) AS u3, uni(j, 4) AS u4, uni(j, 5) AS u5
      FROM range({a}, {b}) r(j), (SELECT count(*) AS n FROM clients) ncl, (SELECT count(*) AS n FROM hosts) nh
    ), s2 AS (
      SELECT s.*, h.*,
        CASE WHEN u5 < h.p_tls THEN 'ssl' WHEN u5 < h.p_tls + h.p_quic THEN 'quic'
             WHEN u5 < h.p_tls + h.p_quic + h.p_http THEN 'http' ELSE NULL END AS svc,
        (u3 < 0.35 OR u5 >= h.p_tls + h.p_quic + h.p_http) AS lookup,
        h.ip_base + floor(u4 * h.pool)::BIGINT AS sip
      FROM s JOIN hosts h ON h.idx = s.hi
    ), r AS (
      SELECT 2 * j AS i, j, 0 AS pos, t0 AS ts, * EXCLUDE (j) FROM s2
      UNION ALL
      SELECT 2 * j + 1 AS i, j, 1 AS pos, t0 + 0.015 + 0.12 * uni(j, 6) AS ts, * EXCLUDE (j) FROM s2
      WHERE 2 * j + 1 < {nbg}
    )
    SELECT i, {file_index} AS f, ts, ci, host, cnames, ttl, pool, ip_base,
      (pos = 0 AND lookup) AS is_dns,
      CASE WHEN pos = 0 AND lookup THEN 'dns' ELSE svc END AS service,
      CASE WHEN pos = 0 AND lookup THEN '{RESOLVER}' ELSE ip4(sip) END AS server_ip,
      sip, ip4(CASE WHEN pool > 1 THEN ip_base + ((sip - ip_base + 1) % pool) ELSE sip END) AS sip2,
      CASE WHEN pos = 0 AND lookup THEN 53 WHEN svc IN ('ssl', 'quic') THEN 443 WHEN svc = 'http' THEN 80
           ELSE port END AS server_port,
      CASE WHEN (pos = 0 AND lookup) OR svc = 'quic' THEN 'udp' ELSE 'tcp' END AS proto,
      1025 + (hash(i, {tag}, 7) % 64000)::INTEGER AS client_port,
      uni(i, 8) AS u8, uni(i, 9) AS u9, uni(i, 10) AS u10,
      'C' || printf('%04x', {tag} % 65536) || printf('%011x', (i * 2654435761) % 17592186044416) AS uid,
      ({tag} % 256) * 17592186044416 + (i * 2654435761) % 17592186044416 AS flow_id,
      NULL::VARCHAR AS uri, NULL::VARCHAR AS ua
    FROM r
    """


def _plant_ev_sql(f: int, nbg: int, tag: int) -> str:
    return f"""
    SELECT {nbg} + p.n AS i, p.f, p.ts, p.ci, p.host, '' AS cnames, 300 AS ttl, 1 AS pool, p.sip AS ip_base,
      false AS is_dns, 'http' AS service, ip4(p.sip) AS server_ip, p.sip, ip4(p.sip) AS sip2, 80 AS server_port,
      'tcp' AS proto, 1025 + (hash({nbg} + p.n, {tag}, 7) % 64000)::INTEGER AS client_port,
      uni({nbg} + p.n, 8) AS u8, uni({nbg} + p.n, 9) AS u9, uni({nbg} + p.n, 10) AS u10,
      'C' || printf('%04x', {tag} % 65536) || printf('%011x', (({nbg} + p.n) * 2654435761) % 17592186044416) AS uid,
      ({tag} % 256) * 17592186044416 + (({nbg} + p.n) * 2654435761) % 17592186044416 AS flow_id,
      p.uri, p.ua
    FROM plants p WHERE p.f = {f}
    """


# the connection's derived numbers, shared by Zeek and EVE
_CONN_COLS = """
    e.*, c.ip AS client_ip, c.mac AS client_mac,
    CASE WHEN is_dns THEN 0.002 + 0.05 * u8 WHEN service = 'http' THEN 0.05 + 2 * u8
         ELSE 0.05 + 60 * pow(u8, 3) END AS duration,
    CASE WHEN is_dns THEN 28 + (length(host) + 6) WHEN uri IS NOT NULL THEN 180 + length(uri) + length(ua)
         ELSE floor(exp(5.5 + 4.5 * u9))::BIGINT END AS ob,
    CASE WHEN is_dns THEN 60 + length(host) + 16 * (1 + length(cnames) // 20) WHEN uri IS NOT NULL THEN 240
         ELSE floor(exp(6.5 + 7.5 * pow(u10, 1.5)))::BIGINT END AS rb
"""


def _conn_view() -> str:
    return f"""
    SELECT *, 1 + ob // 1200 + (CASE WHEN proto = 'tcp' THEN 3 ELSE 0 END) AS op,
              1 + rb // 1400 + (CASE WHEN proto = 'tcp' THEN 2 ELSE 0 END) AS rp
    FROM (SELECT {_CONN_COLS} FROM ev e JOIN clients c ON c.idx = e.ci)
    """


# Zeek lines. Each field: an SQL expression giving its TSV text (NULL = unset) and how JSON writes it.
def _zeek_exprs(kind: str) -> list[tuple[str, str]]:
    dns_ip = "ip4(sip)"
    if kind == "conn":
        return [
            ("zt(ts)", "num"), ("uid", "str"), ("client_ip", "str"), ("client_port::VARCHAR", "num"),
            ("server_ip", "str"), ("server_port::VARCHAR", "num"), ("proto", "str"), ("service", "str"),
            ("zt(duration)", "num"), ("ob::VARCHAR", "num"), ("rb::VARCHAR", "num"),
            ("CASE WHEN proto = 'udp' THEN 'SF' WHEN u8 < 0.05 THEN 'RSTO' ELSE 'SF' END", "str"),
            ("'T'", "bool"), ("'F'", "bool"), ("'0'", "num"),
            ("CASE WHEN proto = 'udp' THEN 'Dd' WHEN u8 < 0.05 THEN 'ShADadR' ELSE 'ShADadFf' END", "str"),
            ("op::VARCHAR", "num"), ("(ob + op * (CASE WHEN proto = 'tcp' THEN 52 ELSE 28 END))::VARCHAR", "num"),
            ("rp::VARCHAR", "num"), ("(rb + rp * (CASE WHEN proto = 'tcp' THEN 52 ELSE 28 END))::VARCHAR", "num"),
            ("NULL", "set"), ("CASE WHEN proto = 'tcp' THEN '6' ELSE '17' END", "num"),
            ("client_mac", "str"), (f"'{SENSOR_MAC}'", "str"),
        ]
    if kind == "dns":
        answers = (f"CASE WHEN qtype = 28 THEN NULL ELSE (CASE WHEN cnames = '' THEN '' ELSE cnames || ',' END) "
                   f"|| {dns_ip} || CASE WHEN pool > 1 THEN ',' || sip2 ELSE '' END END")
        ttls = ("CASE WHEN qtype = 28 THEN NULL ELSE array_to_string(list_transform("
                "string_split(CASE WHEN cnames = '' THEN '' ELSE cnames || ',' END || 'a' || "
                "CASE WHEN pool > 1 THEN ',b' ELSE '' END, ','), "
                "lambda x: printf('%.6f', CASE WHEN x IN ('a', 'b') THEN ttl ELSE 300 END::DOUBLE)), ',') END")
        return [
            ("zt(ts + CASE WHEN qtype = 28 THEN 0.0003 ELSE 0 END)", "num"), ("uid", "str"), ("client_ip", "str"),
            ("client_port::VARCHAR", "num"), (f"'{RESOLVER}'", "str"), ("'53'", "num"), ("'udp'", "str"),
            ("((hash(i, qtype) % 65536))::VARCHAR", "num"), ("zt(duration)", "num"), ("host", "str"),
            ("'1'", "num"), ("'C_INTERNET'", "str"), ("qtype::VARCHAR", "num"),
            ("CASE WHEN qtype = 1 THEN 'A' ELSE 'AAAA' END", "str"), ("'0'", "num"), ("'NOERROR'", "str"),
            ("'F'", "bool"), ("'F'", "bool"), ("'T'", "bool"), ("'T'", "bool"), ("'0'", "num"),
            (answers, "vec"), (ttls, "vecnum"), ("'F'", "bool"), ("'0'", "num"), ("'query'", "str"),
        ]
    if kind == "ssl":
        return [
            ("zt(ts + 0.001)", "num"), ("uid", "str"), ("client_ip", "str"), ("client_port::VARCHAR", "num"),
            ("server_ip", "str"), ("server_port::VARCHAR", "num"),
            ("CASE WHEN service = 'quic' OR u9 < 0.8 THEN 'TLSv13' ELSE 'TLSv12' END", "str"),
            ("CASE WHEN service = 'quic' OR u9 < 0.8 THEN 'TLS_AES_128_GCM_SHA256' "
             "ELSE 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' END", "str"),
            ("'x25519'", "str"), ("host", "str"), ("CASE WHEN u10 < 0.3 THEN 'T' ELSE 'F' END", "bool"),
            ("NULL", "str"), ("CASE WHEN service = 'quic' THEN 'h3' ELSE 'h2' END", "str"), ("'T'", "bool"),
            ("CASE WHEN u9 < 0.8 THEN 'CsiI' ELSE 'CsxknGIi' END", "str"), ("NULL", "vec"), ("NULL", "vec"),
            ("NULL", "bool"),
        ]
    if kind == "quic":
        return [
            ("zt(ts)", "num"), ("uid", "str"), ("client_ip", "str"), ("client_port::VARCHAR", "num"),
            ("server_ip", "str"), ("server_port::VARCHAR", "num"), ("'1'", "str"), ("hx(i, 21, 16)", "str"),
            ("'(empty)'", "str"), ("hx(i, 22, 16)", "str"), ("host", "str"), ("'h3'", "str"),
            ("'ISishIH'", "str"),
        ]
    if kind == "http":
        return [
            ("zt(ts + 0.02)", "num"), ("uid", "str"), ("client_ip", "str"), ("client_port::VARCHAR", "num"),
            ("server_ip", "str"), ("server_port::VARCHAR", "num"), ("'1'", "num"), ("'GET'", "str"),
            ("host", "str"), ("coalesce(uri, uri_of(i))", "str"),
            ("NULL", "str"), ("'1.1'", "str"),
            ("coalesce(ua, ua_of(i))", "str"), ("NULL", "str"),
            ("'0'", "num"), ("(rb - 200)::VARCHAR", "num"), ("'200'", "num"), ("'OK'", "str"),
            ("NULL", "num"), ("NULL", "str"), ("'(empty)'", "set"), ("NULL", "str"), ("NULL", "str"),
            ("NULL", "set"), ("NULL", "vec"), ("NULL", "vec"), ("NULL", "vec"),
            ("CASE WHEN rb > 200 THEN 'F' || hx(i, 33, 16) END", "vec"), ("NULL", "vec"),
            ("CASE WHEN rb > 200 THEN 'text/plain' END", "vec"),
        ]
    raise ValueError(kind)


def _zeek_line(kind: str, form: str, exprs: list[tuple[str, str]]) -> str:
    names = [n for n, _ in ZEEK_FIELDS[kind]]
    if form == "zeek-tsv":
        return "concat_ws(chr(9), " + ", ".join(f"coalesce({e}, '-')" for e, _ in exprs) + ")"
    parts = []
    for k, (name, (expr, how)) in enumerate(zip(names, exprs, strict=True)):
        if expr == "NULL":
            continue
        if how == "str" and expr == "'(empty)'":  # the empty string: "" in JSON
            val = "'\"\"'"
        elif how == "str":
            val = f"'\"' || ({expr}) || '\"'"
        elif how == "num":
            val = f"({expr})"
        elif how == "bool":
            val = f"CASE WHEN ({expr}) = 'T' THEN 'true' ELSE 'false' END"
        elif how in ("vec", "set"):
            val = (f"CASE WHEN ({expr}) = '(empty)' THEN '[]' ELSE '[\"' || replace(({expr}), ',', '\",\"') "
                   f"|| '\"]' END")
        else:  # vecnum
            val = f"'[' || ({expr}) || ']'"
        key = ("" if k == 0 else ",") + f'"{name}":'
        if k == 0:
            parts.append(f"'{{{key}' || {val}")
        else:
            parts.append(f"coalesce('{key}' || {val}, '')")
    return " || ".join(parts) + " || '}'"


def _zeek_header(kind: str, opened: float) -> str:
    fields = ZEEK_FIELDS[kind]
    return ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
            f"#path\t{kind}\n#open\t{_zeek_time(opened)}\n"
            "#fields\t" + "\t".join(n for n, _ in fields) + "\n"
            "#types\t" + "\t".join(t for _, t in fields) + "\n")


def _common(t: str, et: str) -> str:
    """The opening of an EVE line: timestamp, flow id, event type, the 5-tuple."""
    return ("'{\"timestamp\":\"' || iso(" + t + ") || '\",\"flow_id\":' || flow_id || ',\"in_iface\":\"eth0\","
            "\"event_type\":\"" + et + "\",\"src_ip\":\"' || client_ip || '\",\"src_port\":' || client_port || "
            "',\"dest_ip\":\"' || server_ip || '\",\"dest_port\":' || server_port || ',\"proto\":\"' || "
            "upper(proto) || '\"'")


def _eve_selects(dns_version: int) -> list[tuple[str, str]]:
    """(event type, SQL giving the line) for the EVE events of the rows in ``conn`` (a view)."""
    ether = ("coalesce(',\"ether\":{\"src_mac\":\"' || client_mac || '\",\"dest_mac\":\"" + SENSOR_MAC
             + "\"}', '')")
    app = ("CASE service WHEN 'ssl' THEN 'tls' WHEN 'quic' THEN 'quic' WHEN 'http' THEN 'http' "
           "WHEN 'dns' THEN 'dns' ELSE 'failed' END")
    flow = (_common("ts + duration", "flow")
            + " || ',\"app_proto\":\"' || " + app + " || '\",\"flow\":{\"pkts_toserver\":' || op || "
            "',\"pkts_toclient\":' || rp || ',\"bytes_toserver\":' || (ob + op * 52) || "
            "',\"bytes_toclient\":' || (rb + rp * 52) || ',\"start\":\"' || iso(ts) || '\",\"end\":\"' || "
            "iso(ts + duration) || '\",\"age\":' || floor(duration)::BIGINT || "
            "',\"state\":\"closed\",\"reason\":\"timeout\",\"alerted\":false}' || "
            "coalesce(',\"ether\":{\"src_macs\":[\"' || client_mac || '\"],\"dest_macs\":[\""
            + SENSOR_MAC + "\"]}', '') || '}'")
    tls = (_common("ts + 0.001", "tls") + " || " + ether + " || ',\"tls\":{' || "
           "CASE WHEN u9 < 0.8 THEN '\"sni\":\"' || host || '\",\"version\":\"TLS 1.3\"' ELSE "
           "'\"subject\":\"CN=' || host || '\",\"issuerdn\":\"C=US, O=Let''s Encrypt, CN=R11\",\"serial\":\"' || "
           "upper(hx(i, 23, 16)) || '\",\"fingerprint\":\"' || hx(i, 24, 16) || '\",\"sni\":\"' || host || "
           "'\",\"version\":\"TLS 1.2\",\"notbefore\":\"2026-10-01T00:00:00\",\"notafter\":\"2026-12-30T00:00:00\"'"
           " END || '},\"app_proto\":\"tls\"}'")
    quic = (_common("ts", "quic") + " || " + ether
            + " || ',\"quic\":{\"version\":\"1\",\"sni\":\"' || host || '\"},\"app_proto\":\"quic\"}'")
    http = (_common("ts + 0.02", "http") + " || " + ether + " || ',\"tx_id\":0,\"http\":{\"hostname\":\"'"
            " || host || '\",\"url\":\"' || coalesce(uri, uri_of(i))"
            " || '\",\"http_user_agent\":\"' || coalesce(ua, ua_of(i))"
            " || '\",\"http_content_type\":\"text/plain\",\"http_method\":\"GET\",\"protocol\":\"HTTP/1.1\","
            "\"status\":200,\"length\":' || (rb - 200) || '},\"app_proto\":\"http\"}'")
    addr_items = ("list_transform(string_split(CASE WHEN cnames = '' THEN '' ELSE cnames || ',' END || ip4(sip) || "
                  "CASE WHEN pool > 1 THEN ',' || sip2 ELSE '' END, ','), lambda x: x)")
    # answers: CNAMEs (each naming the next) then the addresses, all under the last CNAME target
    answers = (f"array_to_string(list_transform(list_zip({addr_items}, list_prepend(host, {addr_items})), "
               "lambda p: CASE WHEN regexp_matches(p[1], '^[0-9.]+$') THEN '{\"rrname\":\"' || "
               "coalesce(nullif(split_part(cnames, ',', -1), ''), host) || '\",\"rrtype\":\"A\",\"ttl\":' || ttl "
               "|| ',\"rdata\":\"' || p[1] || '\"}' ELSE '{\"rrname\":\"' || p[2] || "
               "'\",\"rrtype\":\"CNAME\",\"ttl\":300,\"rdata\":\"' || p[1] || '\"}' END), ',')")
    grouped = ("'{' || CASE WHEN cnames = '' THEN '' ELSE '\"CNAME\":[\"' || replace(cnames, ',', '\",\"') || "
               "'\"],' END || '\"A\":[\"' || ip4(sip) || CASE WHEN pool > 1 THEN '\",\"' || sip2 ELSE '' END || "
               "'\"]}'")
    txid = "(hash(i, 1) % 65536)"
    if dns_version >= 3:
        q = (_common("ts", "dns") + " || " + ether + " || ',\"dns\":{\"version\":3,\"type\":\"request\","
             "\"tx_id\":0,\"id\":' || " + txid + " || ',\"flags\":\"100\",\"rd\":true,\"opcode\":0,\"queries\":[{"
             "\"rrname\":\"' || host || '\",\"rrtype\":\"A\"}]},\"app_proto\":\"dns\"}'")
        a = (_common("ts + duration", "dns") + " || " + ether + " || ',\"dns\":{\"version\":3,"
             "\"type\":\"response\",\"tx_id\":0,\"id\":' || " + txid + " || ',\"flags\":\"8180\",\"qr\":true,"
             "\"rd\":true,\"ra\":true,\"opcode\":0,\"rcode\":\"NOERROR\",\"queries\":[{\"rrname\":\"' || host || "
             "'\",\"rrtype\":\"A\"}],\"answers\":[' || " + answers + " || '],\"grouped\":' || " + grouped
             + " || '},\"app_proto\":\"dns\"}'")
    else:
        q = (_common("ts", "dns") + " || " + ether + " || ',\"dns\":{\"type\":\"query\",\"id\":' || "
             + txid + " || ',\"rrname\":\"' || host || '\",\"rrtype\":\"A\",\"tx_id\":0,\"opcode\":0}}'")
        a = (_common("ts + duration", "dns") + " || " + ether + " || ',\"dns\":{\"version\":2,"
             "\"type\":\"answer\",\"id\":' || " + txid + " || ',\"flags\":\"8180\",\"qr\":true,\"rd\":true,"
             "\"ra\":true,\"opcode\":0,\"rrname\":\"' || host || '\",\"rrtype\":\"A\",\"rcode\":\"NOERROR\","
             "\"answers\":[' || " + answers + " || '],\"grouped\":' || " + grouped + " || '}}'")
    return [("flow", f"SELECT {flow} AS line FROM conn"),
            ("dns", f"SELECT {q} AS line FROM conn WHERE is_dns UNION ALL SELECT {a} FROM conn WHERE is_dns"),
            ("tls", f"SELECT {tls} AS line FROM conn WHERE service = 'ssl'"),
            ("quic", f"SELECT {quic} AS line FROM conn WHERE service = 'quic'"),
            ("http", f"SELECT {http} AS line FROM conn WHERE service = 'http'")]


_COPY_OPTS = "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01'{comp})"


class _Writer:
    """Writes one file: a header and a trailer around DuckDB's COPY output (gzip members are
    concatenated, which gzip readers, DuckDB and Spark included, read as one stream)."""

    def __init__(self, con: object, tmp: Path, compress: bool) -> None:
        self.con, self.tmp, self.compress = con, tmp, compress

    def write(self, path: Path, query: str, head: str = "", tail: str = "") -> int:
        body = self.tmp / ("body.csv.gz" if self.compress else "body.csv")
        opts = _COPY_OPTS.format(comp=", COMPRESSION gzip" if self.compress else ", COMPRESSION none")
        res = self.con.execute(f"COPY ({query}) TO '{body}' {opts}")  # type: ignore[attr-defined]
        count = int(res.fetchone()[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            if head:
                out.write(gzip_mod.compress(head.encode(), 1) if self.compress else head.encode())
            out.flush()
            with open(body, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
            if tail:
                out.write(gzip_mod.compress(tail.encode(), 1) if self.compress else tail.encode())
        body.unlink()
        return count


def _file_spans(start: float, days: int, hours: int) -> list[tuple[float, float]]:
    spans = []
    for d in range(days):
        day0 = start + d * 86400
        if hours:
            spans += [(day0 + h * 3600, day0 + (h + 1) * 3600) for h in range(hours)]
        else:
            spans.append((day0, day0 + 86400))
    return spans


def _name(kind: str, form: str, span: tuple[float, float], rotated: bool, compress: bool) -> str:
    ext = ".gz" if compress else ""
    if not rotated:
        return (f"{kind}.log" if form != "eve" else "eve.json") + ext
    a = time.strftime("%H:%M:%S", time.gmtime(span[0]))
    b = time.strftime("%H:%M:%S", time.gmtime(span[1]))
    return (f"{kind}.{a}-{b}.log" if form != "eve" else f"eve.{a}-{b}.json") + ext


def generate(out_dir: str | os.PathLike[str], rows: int = 10_000, form: str = "zeek-tsv", *,
             gzip: bool = False, hours: int = 0, days: int = 1, seed: int = 1,
             plants: Iterable[Plant | str] = (), clients: int = 3000, tail: int = 4000,
             start: str = "2026-12-01", eve_version: int = 7, threads: int | None = None,
             progress: bool = False) -> Generated:
    """Write ``rows`` conn rows (and the logs that go with them) under ``out_dir``; see the module doc."""
    import duckdb

    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}")
    if hours < 0 or hours > 24 or days < 1:
        raise ValueError("--hours is 0..24 and --days at least 1")
    plant_list = [p if isinstance(p, Plant) else Plant.parse(p) for p in plants]
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    y, m, d = (int(x) for x in start.split("-"))
    start_ts = float(calendar.timegm((y, m, d, 0, 0, 0, 0, 0, 0)))
    spans = _file_spans(start_ts, days, hours)
    rotated = days > 1 or hours > 0
    host_rows = _hosts(seed, tail, plant_list)
    client_rows = _clients(clients, seed)
    host_ips = {str(h[0]): int(h[1]) for h in host_rows}  # type: ignore[call-overload]
    prow, plant_ids = _plant_rows(plant_list, client_rows, seed, start_ts, spans, host_ips)
    if len(prow) > rows:
        raise ValueError(f"the plants need {len(prow)} conn rows, more than --rows {rows}")
    nbg = rows - len(prow)
    slots = (nbg + 1) // 2
    result = Generated(out_dir=out, form=form, plant_ids=plant_ids, first=spans[0][0], last=spans[-1][1])
    tag = seed * 40503 + 7

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    _macros(con, seed)
    _table(con, "hosts", ["idx", "host", "ip_base", "pool", "ttl", "cnames", "p_tls", "p_quic", "p_http", "port"],
           [(k, *h) for k, h in enumerate(host_rows)],
           [pa.int32(), pa.string(), pa.int64(), pa.int64(), pa.int32(), pa.string(), pa.float64(), pa.float64(),
            pa.float64(), pa.int32()])
    _table(con, "clients", ["idx", "ip", "mac", "host_name"], client_rows,
           [pa.int32(), pa.string(), pa.string(), pa.string()])
    _table(con, "plants", ["n", "f", "ts", "ci", "sip", "host", "uri", "ua"], [(n, *r) for n, r in enumerate(prow)],
           [pa.int64(), pa.int32(), pa.float64(), pa.int32(), pa.int64(), pa.string(), pa.string(), pa.string()])

    with tempfile.TemporaryDirectory(prefix="genlogs-", dir=out) as tmpdir:
        writer = _Writer(con, Path(tmpdir), gzip)
        counts: dict[str, int] = {}
        for f, span in enumerate(spans):
            a, b = f * slots // len(spans), (f + 1) * slots // len(spans)
            con.execute("CREATE OR REPLACE TEMP TABLE ev AS " + _ev_sql(a, b, nbg, span[0], span[1] - span[0], f, tag)
                        + " UNION ALL " + _plant_ev_sql(f, nbg, tag))
            con.execute("CREATE OR REPLACE TEMP VIEW conn AS " + _conn_view())
            day = time.strftime("%Y-%m-%d", time.gmtime(span[0]))
            folder = out / day if rotated else out
            first_of_day = f == 0 or spans[f - 1][0] // 86400 != span[0] // 86400
            if form == "eve":
                parts = _eve_selects(8 if eve_version >= 8 else 2)
                query = " UNION ALL ".join(f"({sql})" for _, sql in parts)
                if first_of_day:
                    query += " UNION ALL (" + _eve_dhcp_sql(span[0]) + ")"
                path = folder / _name("eve", form, span, rotated, gzip)
                n = writer.write(path, query)
                result.files.append(path)
                for et, sql in parts:
                    counts[et] = counts.get(et, 0) + int(con.execute(
                        f"SELECT count(*) FROM ({sql})").fetchone()[0])  # type: ignore[index]
                counts["events"] = counts.get("events", 0) + n
            else:
                for kind in ZEEK_KINDS:
                    if kind == "dhcp":
                        if not first_of_day:
                            continue
                        query = _zeek_dhcp_sql(form, span[0])
                    else:
                        line = _zeek_line(kind, form, _zeek_exprs(kind))
                        where = {"conn": "", "dns": "", "ssl": "WHERE service IN ('ssl', 'quic')",
                                 "quic": "WHERE service = 'quic'", "http": "WHERE service = 'http'"}[kind]
                        if kind == "dns":
                            query = (f"SELECT {line} AS line FROM (SELECT *, 1 AS qtype FROM conn WHERE is_dns "
                                     f"UNION ALL SELECT *, 28 AS qtype FROM conn WHERE is_dns AND u10 < 0.3)")
                        else:
                            query = f"SELECT {line} AS line FROM conn {where}"
                    path = folder / _name(kind, form, span, rotated, gzip)
                    head = _zeek_header(kind, span[0]) if form == "zeek-tsv" else ""
                    tail_line = f"#close\t{_zeek_time(span[1])}\n" if form == "zeek-tsv" else ""
                    counts[kind] = counts.get(kind, 0) + writer.write(path, query, head, tail_line)
                    result.files.append(path)
            if progress:
                done = counts.get("conn", counts.get("flow", 0))
                rate = done / max(time.perf_counter() - t_start, 1e-9)
                print(f"\r{f + 1}/{len(spans)} files, {done:,} conn rows, {rate:,.0f} rows/s", end="", flush=True)
        if progress:
            print()
    result.rows = counts
    result.seconds = time.perf_counter() - t_start
    con.close()
    return result


def _dhcp_rows_sql(day0: float) -> str:
    return f"""
      SELECT idx, ip, mac, host_name, {day0} + 60 + idx * 0.37 + uni(idx, 41) * 0.3 AS ts,
             (hash(idx, 42) % 4294967295) AS xid
      FROM clients WHERE mac IS NOT NULL
    """


def _zeek_dhcp_sql(form: str, day0: float) -> str:
    exprs = [
        ("zt(ts)", "num"), ("'C' || hx(idx, 43, 15)", "set"), ("ip", "str"), (f"'{DHCP_SERVER}'", "str"),
        ("mac", "str"), ("host_name", "str"), ("NULL", "str"), ("'corp.example'", "str"), ("ip", "str"),
        ("ip", "str"), ("'86400.000000'", "num"), ("NULL", "str"), ("NULL", "str"), ("'REQUEST,ACK'", "vec"),
        ("zt(0.002 + uni(idx, 44) * 0.01)", "num"),
    ]
    return f"SELECT {_zeek_line('dhcp', form, exprs)} AS line FROM ({_dhcp_rows_sql(day0)})"


def _eve_dhcp_sql(day0: float) -> str:
    def head(dt_: str, k: int, src: str, sp: int, dst: str, dp: int, smac: str, dmac: str) -> str:
        return ("'{\"timestamp\":\"' || iso(ts" + dt_ + ") || '\",\"flow_id\":' || (xid * 1000 + " + str(k)
                + ") || ',\"in_iface\":\"eth0\",\"event_type\":\"dhcp\",\"src_ip\":\"" + src + "\",\"src_port\":"
                + str(sp) + ",\"dest_ip\":\"" + dst + "\",\"dest_port\":" + str(dp) + ",\"proto\":\"UDP\","
                "\"ether\":{\"src_mac\":\"' || " + smac + " || '\",\"dest_mac\":\"' || " + dmac + " || '\"},"
                "\"dhcp\":{")

    req = (head("", 1, "0.0.0.0", 68, "255.255.255.255", 67, "mac", "'ff:ff:ff:ff:ff:ff'")
           + "\"type\":\"request\",\"id\":' || xid || ',\"client_mac\":\"' || mac || '\",\"assigned_ip\":\"0.0.0.0\","
             "\"dhcp_type\":\"request\",\"requested_ip\":\"' || ip || '\"' || coalesce(',\"hostname\":\"' || "
             "host_name || '\"', '') || ',\"params\":[\"subnet_mask\",\"router\",\"dns_server\",\"domain\"]}}'")
    rep = (head(" + 0.002", 2, DHCP_SERVER, 67, "' || ip || '", 68, f"'{SENSOR_MAC}'", "mac")
           + "\"type\":\"reply\",\"id\":' || xid || ',\"client_mac\":\"' || mac || '\",\"assigned_ip\":\"' || ip || "
             "'\",\"dhcp_type\":\"ack\",\"lease_time\":86400,\"subnet_mask\":\"255.0.0.0\",\"routers\":[\""
           + DHCP_SERVER + "\"],\"dns_servers\":[\"" + RESOLVER + "\"]}}'")
    rows = _dhcp_rows_sql(day0)
    return f"SELECT {req} AS line FROM ({rows}) UNION ALL SELECT {rep} FROM ({rows})"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="conn rows (EVE: flow events)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--form", choices=FORMS, default="zeek-tsv")
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--hours", type=int, default=0, help="hourly files per day (0: one file per day and kind)")
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--start", default="2026-12-01", help="first day (UTC)")
    ap.add_argument("--clients", type=int, default=3000)
    ap.add_argument("--tail", type=int, default=4000, help="long-tail sites behind CDNs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plant", action="append", default=[], metavar="HOST:CATEGORY:DEVICES",
                    help=f"a bulk-data counterparty; CATEGORY one of {', '.join(CATEGORIES)}")
    ap.add_argument("--eve-version", type=int, choices=(7, 8), default=7,
                    help="Suricata 7 (DNS version 2 records) or 8 (version 3)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    res = generate(args.out, rows=args.rows, form=args.form, gzip=args.gzip, hours=args.hours, days=args.days,
                   seed=args.seed, plants=args.plant, clients=args.clients, tail=args.tail, start=args.start,
                   eve_version=args.eve_version, threads=args.threads, progress=True)
    size = sum(p.stat().st_size for p in res.files)
    print(", ".join(f"{k} {v:,}" for k, v in res.rows.items()))
    for host, ids in res.plant_ids.items():
        print(f"planted {host}: {len(ids):,} devices")
    print(f"{len(res.files)} files, {size / 1e6:,.0f} MB, {res.seconds:.1f} s, "
          f"{args.rows / res.seconds:,.0f} conn rows/s")


if __name__ == "__main__":
    main()
