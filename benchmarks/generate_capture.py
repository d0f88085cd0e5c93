#!/usr/bin/env python3
"""Write a large, deterministic, SYNTHETIC classic-pcap capture (Ethernet) for benchmarks.

Default 320 MB (about a million packets) in well under a minute. The mix: DNS over UDP
(A/AAAA, some CNAME chains; messages encoded by dnspython), TLS connections whose ClientHellos
come from Python's ``ssl`` module for a few thousand distinct host names, followed by opaque
encrypted records, plain HTTP/1.1 GET/POST with Content-Length or chunked bodies, TCP handshakes
and teardowns, and IPv6 for about an eighth of the clients' connections.

All traffic is synthetic. Host names use real public domains and server addresses are drawn
from address ranges those operators really announce, so that the tool's ownership and
geolocation stages have realistic input; no packet was ever sent to them.

Speed: every payload (ClientHello, DNS message, HTTP message, encrypted segment) is built once
as a template together with the ones'-complement sum of its 16-bit words. Each packet is then a
few ``struct.pack`` calls: the TCP/UDP checksum is that precomputed sum plus the header words
and pseudo-header (addresses, ports, seq/ack), folded with one modulo, so every checksum in the
file is correct. Records are joined and written in multi-megabyte chunks.

Ground truth (connections, distinct SNIs, DNS responses, HTTP requests...) is printed and written
to ``<out>.truth.json``; ``--size-mb 2`` gives a small file for tests.

Mixes (``--mix``; the output is deterministic from ``--seed``):

* ``web`` (the default; the description above): TLS-heavy, few plain-HTTP requests, DNS answers
  that repeat (one template per host name).
* ``hard``: what costs a personal-data auditor most. About 11% of the packets are plain-HTTP
  requests (~77,000 per 300 MB: JSON POSTs, some chunked, some base64-wrapped; form posts, among
  them the percent-encoded base64 of a JSON object carrying the MD5 of the lower-cased e-mail;
  GETs with identifiers in the query string or a base64 JSON blob; static GETs), 40% of the HTTP
  connections keep-alive with 2-6 requests, the rest one request and close. Identifiers of 2,000
  synthetic devices (advertising ID, Android ID, IMEI, phone, e-mail and its MD5/SHA-1/SHA-256,
  coordinates) appear plain, percent-encoded and base64, in query strings, cookies, headers and
  bodies; the first device is examples/profile.toml's. DNS answers rarely repeat (random names,
  1-8 A/AAAA records, CNAMEs to random targets: ~100,000 distinct answers per 300 MB); ~50,000
  TCP connections per 300 MB, most of them short (8 packets for one small exchange: ACKs ride on
  the next segment); TLS ClientHellos, a few long TLS downloads; ~10% IPv6. Requests are built per
  exchange, packets from precomputed checksum sums as above; ~60 MB/s.
  ``--shape issue`` gives the counts of the independent generator that issue 16 measured
  (~25,000 requests, ~10,000 JSON POSTs whose event batches span several segments, ~39,000
  connections, ~108,000 distinct DNS answers and ~60,000 findings per 300 MB; 12-13% of packets
  carry request bytes, ~4.6% are the frames that complete a request).
* ``conns``: ``--connections`` distinct short TCP connections (8 packets each, 32 bytes each way),
  for the memory of the flow table.

Every file is written as ``<out>.tmp`` and renamed when complete.

Run: .venv/bin/python benchmarks/generate_capture.py [--mix web|hard|conns] [--size-mb 320] [--out PATH]
     [--seed N] [--connections N]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import json
import random
import struct
import sys
import time
import urllib.parse
import zlib
from collections import deque
from collections.abc import Generator, Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.rrset

from datareach.testing.capture import openssl_client_hello

DEFAULT_OUT = Path(__file__).resolve().parent / "capture.pcap"
T0_US = 1_717_236_000 * 1_000_000  # 2024-06-01 10:00:00 UTC
MSS = 1448
CONCURRENCY = 24  # connections interleaved at any time

# --------------------------------------------------------------------------------------------
# Host names and the address ranges of their (real) operators

# registrable domain -> (IPv4 prefix, IPv6 prefix or None)
GOOGLE = ("142.250.0.0/15", "2a00:1450:4001::/48")
FACEBOOK = ("157.240.0.0/16", "2a03:2880:f000::/36")
AMAZON = ("52.84.0.0/15", "2600:9000:2000::/36")  # CloudFront
AWS_USE1 = ("52.20.0.0/14", None)
AWS_EUC1 = ("3.120.0.0/14", None)
CLOUDFLARE = ("104.16.0.0/13", "2606:4700::/44")
AKAMAI = ("23.32.0.0/11", "2a02:26f0::/32")
MICROSOFT = ("13.107.0.0/16", "2620:1ec::/36")
APPLE = ("17.0.0.0/8", "2620:149::/32")
ALIBABA = ("106.11.0.0/16", None)
TENCENT = ("129.226.0.0/16", None)
BYTEDANCE = ("130.44.212.0/22", None)
FASTLY = ("151.101.0.0/16", "2a04:4e42::/32")
YANDEX = ("87.250.224.0/19", "2a02:6b8::/32")

DOMAINS: dict[str, tuple[str, str | None]] = {
    "google.com": GOOGLE, "googleapis.com": GOOGLE, "gstatic.com": GOOGLE, "app-measurement.com": GOOGLE,
    "doubleclick.net": GOOGLE, "googlesyndication.com": GOOGLE, "youtube.com": GOOGLE, "ytimg.com": GOOGLE,
    "facebook.com": FACEBOOK, "fbcdn.net": FACEBOOK, "instagram.com": FACEBOOK, "whatsapp.net": FACEBOOK,
    "cloudfront.net": AMAZON, "amazon.com": AMAZON, "media-amazon.com": AMAZON,
    "appsflyersdk.com": AWS_USE1, "adjust.com": AWS_EUC1, "branch.io": AWS_USE1, "mixpanel.com": AWS_USE1,
    "amplitude.com": AWS_USE1, "braze.com": AWS_USE1, "onesignal.com": CLOUDFLARE, "sentry.io": AWS_USE1,
    "segment.io": AWS_USE1, "applovin.com": AWS_USE1, "unity3d.com": AWS_USE1, "vungle.com": AWS_USE1,
    "cloudflare.com": CLOUDFLARE, "discord.com": CLOUDFLARE, "medium.com": CLOUDFLARE,
    "akamaized.net": AKAMAI, "akamaihd.net": AKAMAI, "microsoft.com": MICROSOFT, "live.com": MICROSOFT,
    "office.com": MICROSOFT, "apple.com": APPLE, "icloud.com": APPLE, "mzstatic.com": APPLE,
    "umeng.com": ALIBABA, "alicdn.com": ALIBABA, "aliyuncs.com": ALIBABA, "qq.com": TENCENT,
    "tencent-cloud.net": TENCENT, "tiktokv.com": BYTEDANCE, "byteoversea.com": BYTEDANCE,
    "fastly.net": FASTLY, "reddit.com": FASTLY, "githubusercontent.com": FASTLY, "yandex.net": YANDEX,
}
PREFIXES = ("api", "cdn", "static", "img", "edge", "ws", "t", "events", "sdk", "config", "log", "graph",
            "mqtt", "push", "auth", "media", "video", "assets", "telemetry", "ads", "m", "www", "s", "i")

# --------------------------------------------------------------------------------------------
# Checksum helpers


def wsum(data: bytes) -> int:
    """Sum of the big-endian 16-bit words (odd length padded), not folded."""
    if len(data) & 1:
        data += b"\x00"
    n = len(data) // 2
    return sum(struct.unpack(f"!{n}H", data)) if n else 0


def addr_words(packed: bytes) -> int:
    return wsum(packed)


class Payload:
    """A payload template with its 16-bit word sum."""

    __slots__ = ("data", "s")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.s = wsum(data)


# --------------------------------------------------------------------------------------------
# Templates


def hostnames(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    doms = sorted(DOMAINS)
    while len(names) < n:
        d = rng.choice(doms)
        p = rng.choice(PREFIXES)
        shard = rng.random()
        name = f"{p}.{d}" if shard < 0.3 else f"{p}{rng.randrange(1, 60)}.{d}" if shard < 0.7 else \
            f"{p}-{rng.choice(('eu', 'us', 'ap', 'sg', 'fra', 'iad'))}{rng.randrange(1, 9)}.{d}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def server_addrs(name: str) -> tuple[bytes, bytes | None]:
    dom = ".".join(name.split(".")[-2:])
    v4, v6 = DOMAINS[dom]
    h = zlib.crc32(name.encode())
    net4 = ipaddress.IPv4Network(v4)
    a4 = net4[1 + h % (net4.num_addresses - 2)].packed
    a6 = None
    if v6 is not None:
        net6 = ipaddress.IPv6Network(v6)
        a6 = (int(net6.network_address) + 1 + (zlib.crc32(name.encode(), 7) % (1 << 32))).to_bytes(16, "big")
    return a4, a6


def client_hello(rng: random.Random, host: str, alpn: list[str] | None) -> bytes:
    return openssl_client_hello(host, alpn, rng)


def tls_stream(rng: random.Random, n: int, first: bytes = b"") -> bytes:
    out = first
    while len(out) < n:
        k = min(16401, n - len(out))
        out += bytes([0x17, 3, 3]) + struct.pack("!H", k) + rng.randbytes(k)
    return out


def segments(data: bytes) -> list[Payload]:
    return [Payload(data[i : i + MSS]) for i in range(0, len(data), MSS)]


def server_hello_flight(rng: random.Random, n: int) -> bytes:
    body = (b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + b"\x13\x01\x00" + struct.pack("!H", 46)
            + b"\x00\x2b\x00\x02\x03\x04\x00\x33\x00\x24\x00\x1d\x00\x20" + rng.randbytes(32))
    hello = b"\x02" + len(body).to_bytes(3, "big") + body
    first = b"\x16\x03\x03" + struct.pack("!H", len(hello)) + hello + b"\x14\x03\x03\x00\x01\x01"
    return tls_stream(rng, n, first)


def dns_pair(rng: random.Random, name: str, qtype: str, answers: list[tuple[str, str, str]]) -> tuple[Payload, Payload]:
    q = dns.message.make_query(name, qtype)
    q.id = rng.randrange(65536)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.RA
    grouped: dict[tuple[str, str], list[str]] = {}
    for owner, typ, val in answers:
        grouped.setdefault((owner, typ), []).append(val)
    for (owner, typ), vals in grouped.items():
        r.answer.append(dns.rrset.from_text_list(owner, 300 if typ != "CNAME" else 3600, "IN", typ, vals))
    return Payload(q.to_wire()), Payload(r.to_wire())


USER_AGENTS = ("okhttp/4.12.0", "Dalvik/2.1.0 (Linux; U; Android 14; SM-S918B Build/UP1A.231005.007)",
               "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Safari/537.36",
               "CFNetwork/1494.0.7 Darwin/23.4.0", "curl/8.5.0")


def http_templates(rng: random.Random, hosts: list[str]) -> list[tuple[str, list[Payload], list[Payload], str]]:
    """(host, request segments, response segments, method) for plain-HTTP exchanges."""
    out = []
    for host in hosts:
        ua = rng.choice(USER_AGENTS)
        if rng.random() < 0.6:
            path = f"/{rng.choice(('v1', 'api', 'static', 'img', 'js'))}/{rng.randbytes(6).hex()}" \
                   f"{rng.choice(('.js', '.png', '.json', '', '?id=' + str(rng.randrange(10**6))))}"
            req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nAccept: */*\r\n"
                   f"Accept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n").encode()
            method = "GET"
        else:
            body = json.dumps({"device_id": rng.randbytes(8).hex(), "event": rng.choice(("open", "view", "click")),
                               "ts": 1717236000 + rng.randrange(3600), "seq": rng.randrange(1000),
                               "props": {"k": rng.randbytes(rng.randrange(4, 200)).hex()}}).encode()
            req = (f"POST /collect HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            method = "POST"
        size = int(rng.choices((0, 43, 512, 2048, 9000, 30000, 120000), (2, 4, 4, 3, 2, 1, 0.3))[0]
                   * rng.uniform(0.5, 1.5))
        content = rng.randbytes(size)
        if rng.random() < 0.3:
            chunks = b""
            for i in range(0, len(content), 8192):
                part = content[i : i + 8192]
                chunks += f"{len(part):x}\r\n".encode() + part + b"\r\n"
            resp = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
        else:
            status = b"200 OK" if size else b"204 No Content"
            resp = (b"HTTP/1.1 " + status + b"\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Length: " + str(size).encode() + b"\r\n\r\n" + content)
        out.append((host, segments(req), segments(resp), method))
    return out


# --------------------------------------------------------------------------------------------
# Packet construction (the hot path)

REC = struct.Struct("<IIII")
IP4 = struct.Struct("!BBHHHBBH4s4s")
IP6 = struct.Struct("!IHBB16s16s")
TCP = struct.Struct("!HHIIHHHH")
UDP = struct.Struct("!HHHH")
GW_MAC = bytes.fromhex("00005e00530a")


class Conn:
    """Addresses of one connection, with the pieces every packet needs precomputed."""

    __slots__ = ("asum", "cli", "cport", "eth_in", "eth_out", "id_in", "id_out", "psum", "sport", "srv", "v6")

    def __init__(self, cmac: bytes, cli: bytes, cport: int, srv: bytes, sport: int) -> None:
        self.v6 = len(cli) == 16
        et = b"\x86\xdd" if self.v6 else b"\x08\x00"
        self.eth_out = GW_MAC + cmac + et
        self.eth_in = cmac + GW_MAC + et
        self.cli, self.srv, self.cport, self.sport = cli, srv, cport, sport
        self.asum = addr_words(cli) + addr_words(srv)
        self.psum = cport + sport
        self.id_out = zlib.crc32(cli + srv) & 0xFFFF
        self.id_in = (self.id_out * 7) & 0xFFFF


class Writer:
    def __init__(self, path: Path, target: int) -> None:
        self.f = open(path, "wb")  # noqa: SIM115
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.parts: list[bytes] = []
        self.pending = 0
        self.size = 24
        self.target = target
        self.packets = 0
        self.v6_packets = 0
        self.t = T0_US
        self.gaps = [0] * 4096
        self.gi = 0

    def flush(self) -> None:
        self.size += self.pending
        self.f.write(b"".join(self.parts))
        self.parts.clear()
        self.pending = 0

    def close(self) -> None:
        self.flush()
        self.f.close()

    def tcp(self, c: Conn, out: bool, seq: int, ack: int, flags: int, pl: Payload | None) -> None:
        data = pl.data if pl is not None else b""
        n = len(data)
        tl = 20 + n
        s = (pl.s if pl is not None else 0) + c.asum + 6 + tl + c.psum + (seq >> 16) + (seq & 0xFFFF) \
            + (ack >> 16) + (ack & 0xFFFF) + 0x5000 + flags + 65535
        r = s % 0xFFFF
        csum = 0xFFFF - r if r else 0
        if out:
            tcph = TCP.pack(c.cport, c.sport, seq, ack, 0x5000 | flags, 65535, csum, 0)
            eth, src, dst = c.eth_out, c.cli, c.srv
        else:
            tcph = TCP.pack(c.sport, c.cport, seq, ack, 0x5000 | flags, 65535, csum, 0)
            eth, src, dst = c.eth_in, c.srv, c.cli
        if c.v6:
            iph = IP6.pack(0x60000000, tl, 6, 64 if out else 54, src, dst)
            self.v6_packets += 1
        else:
            if out:
                c.id_out = ident = (c.id_out + 1) & 0xFFFF
                ttl = 64
            else:
                c.id_in = ident = (c.id_in + 1) & 0xFFFF
                ttl = 54
            hs = 0x4500 + 20 + tl + ident + 0x4000 + (ttl << 8 | 6) + c.asum
            r = hs % 0xFFFF
            iph = IP4.pack(0x45, 0, 20 + tl, ident, 0x4000, ttl, 6, 0xFFFF - r if r else 0, src, dst)
        self._rec(eth, iph, tcph, data)

    def udp(self, c: Conn, out: bool, pl: Payload) -> None:
        data = pl.data
        ul = 8 + len(data)
        s = pl.s + c.asum + 17 + ul + c.psum + ul
        r = s % 0xFFFF
        csum = 0xFFFF - r if r else 0xFFFF
        if out:
            udph = UDP.pack(c.cport, c.sport, ul, csum)
            eth, src, dst = c.eth_out, c.cli, c.srv
        else:
            udph = UDP.pack(c.sport, c.cport, ul, csum)
            eth, src, dst = c.eth_in, c.srv, c.cli
        if c.v6:
            iph = IP6.pack(0x60000000, ul, 17, 64, src, dst)
            self.v6_packets += 1
        else:
            ident = (c.id_out + 1) & 0xFFFF if out else (c.id_in + 1) & 0xFFFF
            if out:
                c.id_out = ident
            else:
                c.id_in = ident
            ttl = 64 if out else 62
            hs = 0x4500 + 20 + ul + ident + (ttl << 8 | 17) + c.asum
            r = hs % 0xFFFF
            iph = IP4.pack(0x45, 0, 20 + ul, ident, 0, ttl, 17, 0xFFFF - r if r else 0, src, dst)
        self._rec(eth, iph, udph, data)

    def _rec(self, eth: bytes, iph: bytes, l4: bytes, data: bytes) -> None:
        self.t += self.gaps[self.gi]
        self.gi = (self.gi + 1) & 4095
        n = 14 + len(iph) + len(l4) + len(data)
        sec, usec = divmod(self.t, 1_000_000)
        self.parts += (REC.pack(sec, usec, n, n), eth, iph, l4, data)
        self.pending += 16 + n
        self.packets += 1
        if self.pending >= 8 << 20:
            self.flush()

    @property
    def written(self) -> int:
        return self.size + self.pending


SYN, FIN, PSH, ACK = 0x02, 0x01, 0x08, 0x10


def handshake(w: Writer, c: Conn, cisn: int, sisn: int) -> Generator[None, None, tuple[int, int]]:
    """SYN, SYN-ACK, ACK, a packet per ``next()``; returns the next sequence numbers (client, server)."""
    w.tcp(c, True, cisn, 0, SYN, None)
    yield
    w.tcp(c, False, sisn, cisn + 1, SYN | ACK, None)
    yield
    cs = (cisn + 1) & 0xFFFFFFFF
    ss = (sisn + 1) & 0xFFFFFFFF
    w.tcp(c, True, cs, ss, ACK, None)
    yield
    return cs, ss


def teardown(w: Writer, c: Conn, cs: int, ss: int) -> Iterator[None]:
    """FIN from the client, FIN from the server, the last ACK, a packet per ``next()``."""
    w.tcp(c, True, cs, ss, FIN | ACK, None)
    yield
    w.tcp(c, False, ss, (cs + 1) & 0xFFFFFFFF, FIN | ACK, None)
    yield
    w.tcp(c, True, (cs + 1) & 0xFFFFFFFF, (ss + 1) & 0xFFFFFFFF, ACK, None)
    yield


def tcp_conversation(w: Writer, c: Conn, messages: list[tuple[bool, list[Payload]]], cisn: int, sisn: int
                     ) -> Iterator[None]:
    """Handshake, messages (ACK per segment for the first 8, then every second, and at the end), teardown.

    A generator: each ``next()`` writes one packet, so connections can be interleaved.
    """
    cs, ss = yield from handshake(w, c, cisn, sisn)
    for from_client, segs in messages:
        last = len(segs) - 1
        for i, pl in enumerate(segs):
            if from_client:
                w.tcp(c, True, cs, ss, ACK | PSH if i == last else ACK, pl)
                cs = (cs + len(pl.data)) & 0xFFFFFFFF
            else:
                w.tcp(c, False, ss, cs, ACK | PSH if i == last else ACK, pl)
                ss = (ss + len(pl.data)) & 0xFFFFFFFF
            yield
            if i < 8 or i & 1 or i == last:  # quick ACKs first (as Linux does), then every 2nd
                if from_client:
                    w.tcp(c, False, ss, cs, ACK, None)
                else:
                    w.tcp(c, True, cs, ss, ACK, None)
                yield
    yield from teardown(w, c, cs, ss)


def udp_exchange(w: Writer, c: Conn, q: Payload, r: Payload) -> Iterator[None]:
    w.udp(c, True, q)
    yield
    w.udp(c, False, r)
    yield


# --------------------------------------------------------------------------------------------


def generate(out: Path, size_mb: float, seed: int) -> dict[str, object]:
    t_start = time.perf_counter()
    rng = random.Random(seed)
    random.seed(seed)  # dnspython shuffles RRset records with the global PRNG
    n_hosts = 3000 if size_mb >= 50 else max(60, int(size_mb * 60))
    hosts = hostnames(rng, n_hosts)
    addrs = {h: server_addrs(h) for h in hosts}
    ch_templates: dict[str, list[Payload]] = {}
    for h in hosts:
        ch = client_hello(rng, h, ["h2", "http/1.1"] if rng.random() < 0.7 else None)
        if rng.random() < 0.1:  # ClientHello split over two segments
            k = rng.randrange(60, len(ch) - 60)
            ch_templates[h] = [Payload(ch[:k]), Payload(ch[k:])]
        else:
            ch_templates[h] = [Payload(ch)]
    # DNS templates: A (some via CNAME) and AAAA where the operator has IPv6
    dns_a: dict[str, tuple[Payload, Payload]] = {}
    dns_aaaa: dict[str, tuple[Payload, Payload]] = {}
    with_addresses: set[Payload] = set()  # responses that carry an A/AAAA record
    for h in hosts:
        a4, a6 = addrs[h]
        chain: list[tuple[str, str, str]] = []
        owner = h + "."
        if rng.random() < 0.3:
            target = f"{h.split('.')[0]}.{rng.choice(('edgekey.net', 'cdn.cloudflare.net', 'gds.alibabadns.com', 'l.google.com'))}."
            chain.append((owner, "CNAME", target))
            owner = target
        dns_a[h] = dns_pair(rng, h, "A", [*chain, (owner, "A", str(ipaddress.IPv4Address(a4)))])
        with_addresses.add(dns_a[h][1])
        if a6 is not None:
            dns_aaaa[h] = dns_pair(rng, h, "AAAA", [*chain, (owner, "AAAA", str(ipaddress.IPv6Address(a6)))])
            with_addresses.add(dns_aaaa[h][1])
        else:  # NOERROR without addresses (the CNAME chain only, if any), as resolvers answer
            dns_aaaa[h] = dns_pair(rng, h, "AAAA", chain)
    http_hosts = [h for h in hosts if rng.random() < 0.15] or hosts[:5]
    http_t = http_templates(rng, http_hosts)
    # encrypted-data pools
    flights = [segments(server_hello_flight(rng, rng.randrange(2400, 4400))) for _ in range(16)]
    fins = [segments(tls_stream(rng, 64, b"\x14\x03\x03\x00\x01\x01")) for _ in range(4)]
    reqs = [segments(tls_stream(rng, rng.randrange(150, 1400))) for _ in range(32)]
    resps = [segments(tls_stream(rng, n)) for n in (120, 300, 800, 1500, 4000, 9000, 20000, 45000, 90000)
             for _ in range(3)]
    resp_weights = [w for w in (25, 40, 25, 12, 5, 2, 1, 0.3, 0.1) for _ in range(3)]
    dns_server = ipaddress.IPv4Address("10.20.0.1").packed
    clients4 = [ipaddress.IPv4Address(f"10.20.{1 + i // 250}.{1 + i % 250}").packed for i in range(240)]
    clients6 = [ipaddress.IPv6Address(f"2a02:8109:9d40:2b00:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}:"
                                      f"{rng.getrandbits(16):x}:{rng.getrandbits(16):x}").packed for _ in range(240)]
    macs = [bytes.fromhex("02163e") + i.to_bytes(3, "big") for i in range(240)]
    next_port = [32768] * 240
    prep = time.perf_counter() - t_start

    w = Writer(out, int(size_mb * 1_000_000))
    w.gaps = [max(1, int(rng.expovariate(1 / 200))) for _ in range(4096)]  # ~200 µs between packets
    truth: dict[str, int] = {"tcp_connections": 0, "udp_connections": 0, "tls_connections": 0,
                             "http_connections": 0, "dns_queries": 0, "dns_responses": 0,
                             "dns_responses_with_addresses": 0, "http_requests": 0}
    snis: set[str] = set()
    http_by_method = {"GET": 0, "POST": 0}

    def port(ci: int) -> int:
        p = next_port[ci]
        next_port[ci] = p + 1 if p < 60999 else 32768
        return p

    def lookup(ci: int, h: str) -> Iterator[None]:
        """A and AAAA queries for h, as Android and browsers send them, on two UDP flows."""
        for q, r in (dns_a[h], dns_aaaa[h]):
            truth["udp_connections"] += 1
            truth["dns_queries"] += 1
            truth["dns_responses"] += 1
            truth["dns_responses_with_addresses"] += r in with_addresses
            yield from udp_exchange(w, Conn(macs[ci], clients4[ci], port(ci), dns_server, 53), q, r)

    def new_connection() -> Iterator[None]:
        ci = rng.randrange(240)
        kind = rng.random()
        if kind < 0.64:  # TLS, with a DNS lookup first most of the time
            h = rng.choice(hosts)
            a4, a6 = addrs[h]
            v6 = a6 is not None and rng.random() < 0.3
            if rng.random() < 0.6:
                yield from lookup(ci, h)
            c = Conn(macs[ci], clients6[ci] if v6 else clients4[ci], port(ci), a6 if v6 and a6 else a4, 443)
            msgs: list[tuple[bool, list[Payload]]] = [(True, ch_templates[h]), (False, rng.choice(flights)),
                                                      (True, rng.choice(fins))]
            for _ in range(1 if rng.random() < 0.5 else rng.randrange(2, 8)):
                msgs.append((True, rng.choice(reqs)))
                msgs.append((False, rng.choices(resps, resp_weights)[0]))
            truth["tcp_connections"] += 1
            truth["tls_connections"] += 1
            snis.add(h)
            yield from tcp_conversation(w, c, msgs, rng.getrandbits(32), rng.getrandbits(32))
        elif kind < 0.72:  # plain HTTP
            h, req, resp, method = rng.choice(http_t)
            a4, _a6 = addrs[h]
            if rng.random() < 0.5:
                yield from lookup(ci, h)
            truth["tcp_connections"] += 1
            truth["http_connections"] += 1
            truth["http_requests"] += 1
            http_by_method[method] += 1
            c = Conn(macs[ci], clients4[ci], port(ci), a4, 80)
            yield from tcp_conversation(w, c, [(True, req), (False, resp)], rng.getrandbits(32), rng.getrandbits(32))
        else:  # a lookup without a connection following (prefetch, cached elsewhere)
            yield from lookup(ci, rng.choice(hosts))

    active: deque[Iterator[None]] = deque(new_connection() for _ in range(CONCURRENCY))
    target = w.target
    while active:
        g = active.popleft()
        try:
            next(g)
            active.append(g)
        except StopIteration:
            if w.written < target:
                active.append(new_connection())
    w.close()
    elapsed = time.perf_counter() - t_start
    result: dict[str, object] = {
        "file": str(out), "seed": seed, "size_mb_requested": size_mb, "bytes": w.written,
        "packets": w.packets, "ipv6_packets": w.v6_packets, "ipv6_fraction": round(w.v6_packets / max(1, w.packets), 4),
        **truth, "distinct_sni": len(snis), "http_get": http_by_method["GET"], "http_post": http_by_method["POST"],
        "first_ts": T0_US / 1e6, "last_ts": w.t / 1e6,
        "snis": sorted(snis),
    }
    print(f"wrote {out}: {w.written:,} bytes, {w.packets:,} packets in {elapsed:.1f}s "
          f"(templates {prep:.1f}s)", file=sys.stderr)
    return result


# --------------------------------------------------------------------------------------------
# The hard mix (--mix hard): request-heavy plain HTTP with identifiers in many encodings, DNS
# answers that rarely repeat, many short connections; and --mix conns: a million short ones.

PROFILE_DEVICE = {  # examples/profile.toml: the fictional test device, so --profile finds it
    "email": "Tester.WeatherApp@example.org", "advertising_id": "a3e3fce2-78b0-4105-ada0-748f79470c71",
    "android_id": "6f1c2a9be4d07a35", "lat": "52.516274", "lon": "13.377704",
}
MAIL_DOMAINS = ("gmail.com", "web.de", "outlook.com", "yahoo.com", "gmx.de", "icloud.com", "proton.me")
FIRST = ("anna", "ben", "chen", "dara", "emil", "fatma", "goran", "hana", "ivo", "jana", "kemal", "lea", "mia",
         "noah", "olga", "paul", "quinn", "rosa", "sven", "tara", "umut", "vera", "wim", "xenia", "yusuf", "zoe")
LAST = ("mueller", "schmidt", "nowak", "rossi", "garcia", "yilmaz", "kowalski", "dubois", "jansen", "novak")
PHONE_PREFIXES = ("+49151", "+49160", "+49170", "+49176", "+33612", "+33780")
TRACKER_PATHS = ("/collect", "/v1/events", "/api/track", "/batch", "/log", "/i", "/sdk/v3/event", "/e",
                 "/api/v2/identify", "/conversions", "/pixel", "/attribution/install")
LOOKUPS_BEFORE = (0, 0, 0, 1, 1, 1)  # DNS look-ups before a connection (prefetches, A and AAAA)
EVENTS = ("screen_view", "scroll", "tap", "app_background", "app_foreground", "impression", "video_progress")
# --mix hard --shape: "dense" (the default): ~77,000 requests per 300 MB, one packet each mostly;
# "issue": issue 16's independent generator (~22,000 requests, ~10,000 JSON POSTs with event
# batches over several segments, ~40,000 connections, ~57,000 findings per 300 MB)
SHAPES: dict[str, dict[str, object]] = {
    "dense": {"http": 0.7, "single": 0.6, "keepalive_n": (2, 7), "lookups": LOOKUPS_BEFORE, "history": None},
    "issue": {"http": 0.5, "single": 0.8, "keepalive_n": (2, 4), "lookups": (0, 0, 1, 1, 1, 1),
              "history": (30, 220)},
}
DNS_SUFFIXES = ("edgekey.net", "akamaiedge.net", "cdn.cloudflare.net", "gds.alibabadns.com", "l.google.com",
                "trafficmanager.net", "cloudfront.net", "fastly.net", "elb.amazonaws.com")


def _imei(rng: random.Random) -> str:
    body = rng.choice(("35", "86", "49", "01")) + "".join(str(rng.randrange(10)) for _ in range(12))
    total = 0
    for i, ch in enumerate(body):
        d = int(ch)
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


class Device:
    __slots__ = ("adid", "android_id", "b64_email", "cli4", "cli6", "email", "imei", "lat", "lon", "mac", "md5",
                 "next_port", "pct_email", "phone", "sha1", "sha256")

    def __init__(self, rng: random.Random, i: int, ident: dict[str, str] | None = None) -> None:
        self.cli4 = bytes((10, 30, 1 + i // 250, 1 + i % 250))
        self.cli6 = bytes.fromhex("2a0281099d402b00") + rng.randbytes(8)
        self.mac = bytes.fromhex("02163f") + i.to_bytes(3, "big")
        self.next_port = 32768 + rng.randrange(20000)
        if ident:
            self.email, self.adid, self.android_id = ident["email"], ident["advertising_id"], ident["android_id"]
            self.lat, self.lon = ident["lat"], ident["lon"]
        else:
            self.email = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(1, 9999)}@{rng.choice(MAIL_DOMAINS)}"
            u = rng.randbytes(16).hex()
            self.adid = f"{u[:8]}-{u[8:12]}-4{u[13:16]}-{'89ab'[rng.randrange(4)]}{u[17:20]}-{u[20:32]}"
            self.android_id = rng.randbytes(8).hex()
            self.lat = f"{rng.uniform(47.3, 54.9):.6f}"
            self.lon = f"{rng.uniform(5.9, 15.0):.6f}"
        self.imei = _imei(rng)
        pre = rng.choice(PHONE_PREFIXES)
        self.phone = pre + "".join(str(rng.randrange(10)) for _ in range(6 if pre.startswith("+33") else 8))
        low = self.email.lower().encode()
        self.md5 = hashlib.md5(low).hexdigest()  # what trackers send (not for security)
        self.sha1 = hashlib.sha1(low).hexdigest()
        self.sha256 = hashlib.sha256(low).hexdigest()
        self.pct_email = urllib.parse.quote(self.email, safe="")
        self.b64_email = base64.b64encode(self.email.encode()).decode()

    def port(self) -> int:
        p = self.next_port
        self.next_port = p + 1 if p < 60999 else 32768
        return p


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class RequestMaker:
    """One HTTP request of the hard mix, its identifiers in a varying place and encoding."""

    KINDS = ("json", "json_b64", "json_chunked", "form", "form_d", "get_query", "get_b64", "get_static")
    WEIGHTS = (26, 8, 6, 12, 6, 18, 8, 16)

    def __init__(self, rng: random.Random, fixed: Device, history: tuple[int, int] | None = None) -> None:
        self.rng = rng
        self.history = history  # shape "issue": JSON bodies carry a batch of this many past events
        self.pool = [{"e": rng.choice(EVENTS), "t": 1717236000 - j * 7, "dur": rng.randrange(5000)}
                     for j in range(1024)] if history else []
        self.fixed = fixed  # the profile's device: its coordinates exactly as in the profile
        self.by_kind = dict.fromkeys(self.KINDS, 0)
        self.json_posts = 0
        self.posts = 0

    def make(self, d: Device, host: str, keep_alive: bool) -> bytes:
        rng = self.rng
        kind = rng.choices(self.KINDS, self.WEIGHTS)[0]
        self.by_kind[kind] += 1
        ua = rng.choice(USER_AGENTS)
        conn = "keep-alive" if keep_alive else "close"
        ts = 1717236000 + rng.randrange(86400)
        sess = rng.randbytes(8).hex()
        lat, lon = (d.lat, d.lon) if d is self.fixed else (d.lat + str(rng.randrange(10)), d.lon + str(rng.randrange(10)))
        cookie = rng.choice((f"uid={d.android_id}; sess={sess}", f"_em={d.md5}; _ga=GA1.2.{rng.randrange(10**9)}.{ts}",
                             f"sid={sess}; adid={d.adid}", f"em={d.pct_email}; lang=de", *[f"session={sess}"] * 5))
        extra = rng.choice((f"X-Device-ID: {d.imei}\r\n", f"X-Ad-Id: {d.adid}\r\n", f"X-Android-Id: {d.android_id}\r\n",
                            f"X-User-Email-Hash: {d.sha256}\r\n", f"X-MSISDN: {urllib.parse.quote(d.phone)}\r\n",
                            *[""] * 8))
        path = rng.choice(TRACKER_PATHS)
        head = f"Host: {host}\r\nUser-Agent: {ua}\r\nAccept: */*\r\nCookie: {cookie}\r\n{extra}Connection: {conn}\r\n"
        if kind == "get_static":
            p = f"/{rng.choice(('static', 'img', 'js', 'assets'))}/{rng.randbytes(6).hex()}" \
                f"{rng.choice(('.js', '.png', '.css', '.webp'))}"
            return f"GET {p} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nAccept: */*\r\nConnection: {conn}\r\n\r\n".encode()
        if kind == "get_query":
            q = rng.choice((
                f"cid={d.adid}&em={d.pct_email}&ll={lat}%2C{lon}&t={ts}",
                f"gaid={d.adid}&imei={d.imei}&ts={ts}&ev=open",
                f"android_id={d.android_id}&email_md5={d.md5}&lat={lat}&lon={lon}",
                f"uid={sess}&sha1={d.sha1}&phone={urllib.parse.quote(d.phone)}&v=3.2.1",
                f"e={d.b64_email}&idfa={d.adid}&seq={rng.randrange(1000)}",
            ))
            return f"GET {path}?{q} HTTP/1.1\r\n{head}\r\n".encode()
        if kind == "get_b64":
            blob = _b64url(json.dumps({"adid": d.adid, "email": d.email, "lat": float(lat), "lng": float(lon),
                                       "ts": ts}, separators=(",", ":")).encode())
            return f"GET {path}?data={blob}&v=2 HTTP/1.1\r\n{head}\r\n".encode()
        self.posts += 1
        if kind in ("form", "form_d"):
            if kind == "form":
                body = rng.choice((
                    f"advertising_id={d.adid}&phone={urllib.parse.quote(d.phone)}&email={d.pct_email}"
                    f"&lat={lat}&lon={lon}&ts={ts}",
                    f"imei={d.imei}&android_id={d.android_id}&em_sha256={d.sha256}&event=login",
                    f"user_email={d.pct_email}&msisdn={urllib.parse.quote(d.phone)}&gps_adid={d.adid}",
                ))
            else:  # percent-encoded standard base64 of a JSON object carrying the e-mail's MD5
                inner = json.dumps({"u": {"mail_md5": d.md5, "adid": d.adid}, "t": ts}, separators=(",", ":"))
                body = f"d={urllib.parse.quote(base64.b64encode(inner.encode()).decode(), safe='')}&v=1&s={sess}"
            return (f"POST {path} HTTP/1.1\r\n{head}Content-Type: application/x-www-form-urlencoded\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
        self.json_posts += 1
        obj: dict[str, object] = {
            "event": rng.choice(("app_open", "screen_view", "purchase", "login", "ad_impression", "session_start")),
            "ts": ts, "seq": rng.randrange(10000), "session_id": sess,
            "device": {**rng.choice(({"advertising_id": d.adid}, {"android_id": d.android_id}, {"imei": d.imei},
                                     {"advertising_id": d.adid, "imei": d.imei})),
                       "model": rng.choice(("SM-S918B", "Pixel 8", "M2101K6G")), "os": "Android 14"},
            "user": rng.choice(({"email": d.email}, {"email_sha256": d.sha256}, {"email_md5": d.md5},
                                {"phone": d.phone}, {"email": d.email, "phone": d.phone})),
            "app": {"version": f"{rng.randrange(1, 9)}.{rng.randrange(30)}.{rng.randrange(100)}", "build": rng.randrange(10**5)},
            "props": {"k": rng.randbytes(rng.randrange(40, 400)).hex()},
        }
        if rng.random() < 0.4:
            obj["location"] = {"lat": float(lat), "lng": float(lon), "accuracy": rng.randrange(5, 60)}
        if self.history:  # a slice of a pool made once: no identifiers, only bulk
            n = rng.randrange(*self.history)
            start = rng.randrange(len(self.pool) - n)
            obj["history"] = self.pool[start : start + n]
        if kind == "json_b64":
            raw = json.dumps(obj, separators=(",", ":")).encode()
            obj = {"payload": base64.b64encode(raw).decode(), "enc": "b64", "sdk": "3.4.1"}
        body_b = json.dumps(obj, separators=(",", ":")).encode()
        if kind == "json_chunked":
            k = rng.randrange(1, len(body_b))
            chunks = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body_b[:k], body_b[k:]))
            return (f"POST {path} HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
                    f"Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"
        return (f"POST {path} HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
                f"Content-Length: {len(body_b)}\r\n\r\n").encode() + body_b


def dns_wire_name(name: str) -> bytes:
    return b"".join(bytes((len(lab),)) + lab.encode() for lab in name.split(".")) + b"\x00"


def dns_wire(qid: int, name: str, qtype: int, answers: list[tuple[int, bytes]]) -> tuple[bytes, bytes]:
    """(query, response) for ``name``; answers are (type, rdata) for CNAME (5, wire name), A, AAAA.

    The first answer's owner is the question (a pointer to offset 12); after a CNAME the next
    records' owner is a pointer to the CNAME's target, as resolvers compress them.
    """
    qn = dns_wire_name(name)
    question = qn + struct.pack("!HH", qtype, 1)
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question
    body = bytearray(struct.pack("!HHHHHH", qid, 0x8180, 1, len(answers), 0, 0) + question)
    owner = 12
    for typ, rdata in answers:
        body += struct.pack("!HHHIH", 0xC000 | owner, typ, 1, 3600 if typ == 5 else 60, len(rdata))
        if typ == 5:
            owner = len(body)
        body += rdata
    return query, bytes(body)


def hard_conversation(w: Writer, c: Conn, exchanges: list[tuple[list[Payload], list[Payload]]], cisn: int,
                      sisn: int) -> Iterator[None]:
    """Handshake, request/response exchanges with piggy-backed ACKs, teardown: 8 packets for one
    small exchange. A long response is acknowledged every 16th segment (stretch ACKs, as GRO
    receivers send them) and at its end."""
    cs, ss = yield from handshake(w, c, cisn, sisn)
    for req, resp in exchanges:
        last = len(req) - 1
        for i, pl in enumerate(req):
            w.tcp(c, True, cs, ss, ACK | PSH if i == last else ACK, pl)
            cs = (cs + len(pl.data)) & 0xFFFFFFFF
            yield
        last = len(resp) - 1
        for i, pl in enumerate(resp):
            w.tcp(c, False, ss, cs, ACK | PSH if i == last else ACK, pl)
            ss = (ss + len(pl.data)) & 0xFFFFFFFF
            yield
            if last > 2 and (i & 15 == 15 or i == last):
                w.tcp(c, True, cs, ss, ACK, None)
                yield
    yield from teardown(w, c, cs, ss)


def _rand_addr(rng: random.Random, prefix: str) -> bytes:
    net = ipaddress.ip_network(prefix)
    span = min(net.num_addresses - 2, 1 << 32)
    return (int(net.network_address) + 1 + rng.randrange(span)).to_bytes(net.max_prefixlen // 8, "big")


def generate_hard(out: Path, size_mb: float, seed: int, shape: str = "dense") -> dict[str, object]:
    knobs = SHAPES[shape]
    t_start = time.perf_counter()
    rng = random.Random(seed)
    n_dev = 2000 if size_mb >= 50 else max(40, int(size_mb * 40))
    devices = [Device(rng, 0, PROFILE_DEVICE)] + [Device(rng, i, None) for i in range(1, n_dev)]
    hosts = hostnames(rng, 1500 if size_mb >= 50 else max(80, int(size_mb * 30)))
    addrs = {h: server_addrs(h) for h in hosts}
    http_hosts = hosts[: max(20, len(hosts) // 3)]
    tls_hosts = hosts[len(http_hosts):]
    ch_templates = {h: segments(client_hello(rng, h, ["h2", "http/1.1"] if rng.random() < 0.7 else None))
                    for h in tls_hosts[:400]}
    tls_names = sorted(ch_templates)
    flights = [segments(server_hello_flight(rng, rng.randrange(2400, 4400))) for _ in range(16)]
    fins = [segments(tls_stream(rng, rng.randrange(120, 900), b"\x14\x03\x03\x00\x01\x01")) for _ in range(8)]
    tls_resps = [segments(tls_stream(rng, n)) for n in (300, 900, 2500, 6000) for _ in range(4)]
    bulk = [segments(tls_stream(rng, n)) for n in (60_000, 150_000, 400_000) for _ in range(2)]
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}"
    http_resps = [[Payload(ok)], [Payload(b"HTTP/1.1 204 No Content\r\nServer: nginx\r\n\r\n")]]
    for size in (43, 900, 2600, 7000, 14000, 30000):
        body = rng.randbytes(size)
        http_resps.append(segments(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: image/png\r\nContent-Length: "
                                   + str(size).encode() + b"\r\n\r\n" + body))
    resp_weights = (30, 12, 10, 4, 2, 1, 0.5, 0.3)
    dns_server = bytes((10, 30, 0, 1))
    domain_list = sorted(DOMAINS)
    maker = RequestMaker(rng, devices[0], knobs["history"])  # type: ignore[arg-type]
    prep = time.perf_counter() - t_start

    tmp = Path(str(out) + ".tmp")
    w = Writer(tmp, int(size_mb * 1_000_000))
    w.gaps = [max(1, int(rng.expovariate(1 / 150))) for _ in range(4096)]
    truth: dict[str, int] = {"tcp_connections": 0, "http_connections": 0, "keepalive_connections": 0,
                             "tls_connections": 0, "bulk_connections": 0, "http_requests": 0,
                             "http_request_packets": 0, "dns_queries": 0, "dns_responses": 0, "dns_answers": 0,
                             "dns_answers_random": 0}
    repeated: set[tuple[str, bytes]] = set()
    popular = [(h, rng.random() < 0.5) for h in hosts[:200]]  # (name, with CNAME): answers that repeat

    def lookup(d: Device) -> Iterator[None]:
        qid = rng.randrange(65536)
        aaaa = rng.random() < 0.3
        qtype = 28 if aaaa else 1
        dom = rng.choice(domain_list)
        v4, v6 = DOMAINS[dom]
        prefix = v6 if aaaa and v6 else v4
        answers: list[tuple[int, bytes]] = []
        if rng.random() < 0.1:  # a popular name: the same answers again
            name, cname = rng.choice(popular)
            a4, a6 = addrs[name]
            if cname:
                answers.append((5, dns_wire_name(f"{name.split('.')[0]}.{DNS_SUFFIXES[len(name) % 9]}")))
            addr = a6 if aaaa and a6 else a4
            answers.append((28 if len(addr) == 16 else 1, addr))
            qtype = answers[-1][0]
            for a in answers:
                repeated.add((name, a[1]))
        else:
            name = f"{rng.getrandbits(40):010x}.{rng.choice(PREFIXES)}.{dom}"
            if rng.random() < 0.6:
                answers.append((5, dns_wire_name(f"{rng.getrandbits(32):08x}.{rng.choice(DNS_SUFFIXES)}")))
            typ = 28 if aaaa and v6 else 1
            qtype = typ
            for _ in range(rng.choice((1, 2, 3, 4, 4, 6, 8))):
                answers.append((typ, _rand_addr(rng, prefix)))
            truth["dns_answers_random"] += len(set(answers))  # an address drawn twice is one answer
        truth["dns_queries"] += 1
        truth["dns_responses"] += 1
        truth["dns_answers"] += len(answers)
        q, r = dns_wire(qid, name, qtype, answers)
        yield from udp_exchange(w, Conn(d.mac, d.cli4, d.port(), dns_server, 53), Payload(q), Payload(r))

    def new_connection() -> Iterator[None]:
        d = devices[0] if rng.random() < 0.03 else rng.choice(devices)
        kind = rng.random()
        for _ in range(rng.choice(knobs["lookups"])):  # type: ignore[arg-type]
            yield from lookup(d)
        if kind < knobs["http"]:  # type: ignore[operator]  # plain HTTP: one request and close, or keep-alive with several
            h = rng.choice(http_hosts)
            a4, a6 = addrs[h]
            v6 = a6 is not None and rng.random() < 0.15
            n = 1 if rng.random() < knobs["single"] else rng.randrange(*knobs["keepalive_n"])  # type: ignore[misc,operator]
            exchanges = []
            for i in range(n):
                req = segments(maker.make(d, h, i < n - 1 or n > 1))
                truth["http_request_packets"] += len(req)
                exchanges.append((req, rng.choices(http_resps, resp_weights)[0]))
            truth["tcp_connections"] += 1
            truth["http_connections"] += 1
            truth["keepalive_connections"] += n > 1
            truth["http_requests"] += n
            c = Conn(d.mac, d.cli6 if v6 else d.cli4, d.port(), a6 if v6 and a6 else a4, 80)
        elif kind < 0.996:  # TLS: ClientHello, server flight, a request or two
            h = rng.choice(tls_names)
            a4, a6 = addrs[h]
            v6 = a6 is not None and rng.random() < 0.25
            exchanges = [(ch_templates[h], rng.choice(flights)),
                         (rng.choice(fins), rng.choice(tls_resps))]
            truth["tcp_connections"] += 1
            truth["tls_connections"] += 1
            c = Conn(d.mac, d.cli6 if v6 else d.cli4, d.port(), a6 if v6 and a6 else a4, 443)
        else:  # a long TLS download (fills the bytes with full-size segments)
            h = rng.choice(tls_names)
            a4, _a6 = addrs[h]
            exchanges = [(ch_templates[h], rng.choice(flights)), (rng.choice(fins), rng.choice(bulk))]
            truth["tcp_connections"] += 1
            truth["tls_connections"] += 1
            truth["bulk_connections"] += 1
            c = Conn(d.mac, d.cli4, d.port(), a4, 443)
        yield from hard_conversation(w, c, exchanges, rng.getrandbits(32), rng.getrandbits(32))

    active: deque[Iterator[None]] = deque(new_connection() for _ in range(CONCURRENCY))
    target = w.target
    while active:
        g = active.popleft()
        try:
            next(g)
            active.append(g)
        except StopIteration:
            if w.written < target:
                active.append(new_connection())
    w.close()
    tmp.replace(out)
    elapsed = time.perf_counter() - t_start
    distinct = truth["dns_answers_random"] + len(repeated)
    result: dict[str, object] = {
        "file": str(out), "mix": "hard", "shape": shape, "seed": seed, "size_mb_requested": size_mb, "bytes": w.written,
        "packets": w.packets, "ipv6_packets": w.v6_packets,
        "ipv6_fraction": round(w.v6_packets / max(1, w.packets), 4), **truth,
        "http_request_share": round(truth["http_requests"] / max(1, w.packets), 4),
        "http_request_packet_share": round(truth["http_request_packets"] / max(1, w.packets), 4),
        "http_posts": maker.posts, "json_posts": maker.json_posts, "requests_by_kind": maker.by_kind,
        "distinct_dns_answers": distinct, "udp_connections": truth["dns_queries"],
        "profile_device_email": PROFILE_DEVICE["email"],
        "first_ts": T0_US / 1e6, "last_ts": w.t / 1e6,
    }
    print(f"wrote {out}: {w.written:,} bytes, {w.packets:,} packets in {elapsed:.1f}s "
          f"(templates {prep:.1f}s)", file=sys.stderr)
    return result


def generate_conns(out: Path, connections: int, seed: int) -> dict[str, object]:
    """``connections`` distinct TCP connections, each a handshake, 32 bytes each way and a teardown."""
    t_start = time.perf_counter()
    rng = random.Random(seed)
    servers = [_rand_addr(rng, rng.choice([v4 for v4, _ in DOMAINS.values()])) for _ in range(50_000)]
    req = [Payload(rng.randbytes(32)) for _ in range(64)]
    resp = [Payload(rng.randbytes(32)) for _ in range(64)]
    tmp = Path(str(out) + ".tmp")
    w = Writer(tmp, 0)
    w.gaps = [max(1, int(rng.expovariate(1 / 50))) for _ in range(4096)]
    made = 0

    mac = bytes.fromhex("02163e000001")

    def conn(i: int) -> Iterator[None]:  # client 10.40.0.0/14 by i // 256, port 1024 + i % 256: all distinct
        k = i >> 8
        c = Conn(mac, bytes((10, 40 + (k >> 16 & 3), k >> 8 & 255, k & 255)), 1024 + (i & 255),
                 servers[i % len(servers)], 443)
        yield from hard_conversation(w, c, [([rng.choice(req)], [rng.choice(resp)])],
                                     rng.getrandbits(32), rng.getrandbits(32))

    active: deque[Iterator[None]] = deque()
    while made < min(64, connections):
        active.append(conn(made))
        made += 1
    while active:
        g = active.popleft()
        try:
            next(g)
            active.append(g)
        except StopIteration:
            if made < connections:
                active.append(conn(made))
                made += 1
    w.close()
    tmp.replace(out)
    elapsed = time.perf_counter() - t_start
    print(f"wrote {out}: {w.written:,} bytes, {w.packets:,} packets in {elapsed:.1f}s", file=sys.stderr)
    return {"file": str(out), "mix": "conns", "seed": seed, "bytes": w.written, "packets": w.packets,
            "tcp_connections": connections}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a large synthetic pcap for benchmarks, with ground truth.")
    ap.add_argument("--mix", choices=("web", "hard", "conns"), default="web",
                    help="web: the first mix (default, unchanged); hard: request-heavy plain HTTP with "
                         "identifiers, rarely repeating DNS answers, many short connections; conns: "
                         "--connections short TCP connections")
    ap.add_argument("--size-mb", type=float, default=320.0, help="approximate file size in MB (10^6 bytes)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="dense",
                    help="--mix hard: dense (default) or issue (issue 16's independent generator's counts)")
    ap.add_argument("--connections", type=int, default=1_000_000, help="--mix conns: how many connections")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.mix == "hard":
        truth = generate_hard(args.out, args.size_mb, args.seed, args.shape)
    elif args.mix == "conns":
        truth = generate_conns(args.out, args.connections, args.seed)
    else:  # written under a temporary name, renamed when complete (other processes may be reading)
        tmp = Path(str(args.out) + ".tmp")
        truth = generate(tmp, args.size_mb, args.seed)
        tmp.replace(args.out)
        truth["file"] = str(args.out)
    truth_path = Path(str(args.out) + ".truth.json")
    truth_path.write_text(json.dumps(truth, indent=1) + "\n")
    for k, v in truth.items():
        if k != "snis":
            print(f"{k}: {v}")
    print(f"truth: {truth_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
