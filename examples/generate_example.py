#!/usr/bin/env python3
"""Write examples/mobile-app-session.pcapng: a SYNTHETIC capture of a fictional Android app.

ALL TRAFFIC IN THE OUTPUT IS SYNTHETIC. No real device, user or server produced it. The app
("com.example.weatherapp", label "WeatherApp", Android UID 10234) and its own domain
(*.weatherapp.example.com) are fictional. The third-party host names are those the real SDKs use,
and the server addresses are taken from the address ranges those companies really announce
(Google 142.250.0.0/15 and 2a00:1450::/32, Facebook 157.240.0.0/16 and 2a03:2880::/32, AWS
CloudFront 18.64.0.0/14, AWS us-east-1 52.20.0.0/14 and eu-central-1 3.120.0.0/14, Alibaba
Cloud 106.11.0.0/16, Tencent Cloud 129.226.0.0/16) so that geolocation has something realistic
to chew on, but no packet here was ever sent to them. The advertising ID is a random UUID.

What is real is the bytes: DNS messages come from dnspython's encoder, TLS ClientHellos from
Python's ``ssl`` module (OpenSSL), and the QUIC connection is a complete aioquic client talking
to an aioquic server (Initial, Handshake and 1-RTT packets, an HTTP/3 request and response).

Determinism: rerunning produces a byte-identical file *with the same library versions*. The
random parts of the ClientHellos (random, session id, key shares) are overwritten from a seeded
PRNG, and while aioquic runs, ``os.urandom`` and its key generation are fed from the same PRNG.
A different OpenSSL/aioquic version may still change extension lists and therefore the bytes.

Link layer: every packet is framed exactly as PCAPdroid's "pcapdroid_trailer" option writes it
(see datareach.dissect.pcapdroid): an Ethernet header with zero MAC addresses, the IP packet,
alignment, and the 32-byte trailer naming the app (UID + app label, which PCAPdroid cuts to 19
bytes -- the package name would not fit, so the label is what it stores). PCAPdroid only writes
the trailer in classic pcap files (its pcapng mode uses custom blocks instead); this example is
pcapng with an Ethernet interface, on which the trailer is just as well-defined, so readers can
group by app in both formats. The phone is 192.168.1.23 / 2a02:8109:9d40:2b00:1c5e:4aff:fe21:7d3c,
as a root-mode capture on wlan0 would see it.

Version 2 of the app (``--app-version 2``, written to examples/mobile-app-session-v2.pcapng): the
same device a month later (2024-06-11), after an app update that adds Baidu's mobile analytics
SDK (Mobstat), which posts the advertising ID and the precise location over plain HTTP to
hmma.baidu.com, on an address in 180.76.0.0/14 (announced by Beijing Baidu Netcom); the update
drops the AppsFlyer SDK and keeps everything else. The advertising ID is the device's, read from
examples/profile.toml (which the version 1 run writes), so one profile serves both captures.
``datareach diff`` of the two audits shows what the update changed.

Run: .venv/bin/python examples/generate_example.py [--app-version 1|2] [--out PATH]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import email.utils
import gzip
import hashlib
import json
import os
import random
import ssl
import struct
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
from aioquic.buffer import Buffer
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import HandshakeCompleted
from aioquic.quic.packet import pull_quic_header
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x448, x25519
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from datareach.testing.capture import (
    LINKTYPE_ETHERNET,
    Packet,
    PcapngWriter,
    TcpSession,
    UdpFlow,
    openssl_client_hello,
    pcapdroid_frame,
)
from datareach.testing.tls13 import Tls13Sender, h2_frame

SEED = 20240514
T0 = 1715674323.25  # 2024-05-14 08:12:03.25 UTC
OUT = Path(__file__).resolve().parent / "mobile-app-session.pcapng"
# Version 2 of the app: a later session of the same device (see the module docstring).
SEED_V2 = 20240611
T0_V2 = 1718095217.5  # 2024-06-11 08:40:17.5 UTC
OUT_V2 = Path(__file__).resolve().parent / "mobile-app-session-v2.pcapng"
APP_VERSIONS = {1: "5.12.1", 2: "5.13.0"}
app_version = 1  # which version build() writes (main() sets it)

PHONE4 = "192.168.1.23"
PHONE6 = "2a02:8109:9d40:2b00:1c5e:4aff:fe21:7d3c"
RESOLVER = "192.168.1.1"

APP_UID, APP_NAME = 10234, "WeatherApp"  # package com.example.weatherapp
SYS_UID, SYS_NAME = 1000, "Android System"

rng = random.Random(SEED)

# (ts, ip packet, uid, app name)
packets: list[tuple[float, bytes, int, str]] = []
summary: list[str] = []
keylog: list[str] = []  # the TLS key log lines of the decryptable connections


def emit(pkts: list[Packet], uid: int = APP_UID, name: str = APP_NAME) -> None:
    for ts, ip in pkts:
        packets.append((ts, ip, uid, name))


def eport() -> int:
    return rng.randrange(32768, 61000)


# ------------------------------------------------------------------------------------------
# DNS (dnspython)

Answer = tuple[str, str, str]  # owner, type, value


def dns_messages(name: str, rdtype: str, answers: list[Answer], *, ttl: int = 300,
                 truncated: bool = False) -> tuple[bytes, bytes]:
    q = dns.message.make_query(name, rdtype)
    q.id = rng.randrange(65536)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.RA
    if truncated:
        r.flags |= dns.flags.TC
    else:
        grouped: dict[tuple[str, str], list[str]] = {}
        for owner, typ, value in answers:
            grouped.setdefault((owner, typ), []).append(value)
        for (owner, typ), values in grouped.items():
            r.answer.append(dns.rrset.from_text_list(owner, ttl if typ != "CNAME" else 3600, "IN", typ, values))
    return q.to_wire(), r.to_wire()


def dns_udp(t: float, name: str, rdtype: str, answers: list[Answer], **kw: Any) -> float:
    query, resp = dns_messages(name, rdtype, answers, **kw)
    flow = UdpFlow(PHONE4, eport(), RESOLVER, 53, start=t, rtt=0.012)
    emit(flow.exchange(query, resp))
    summary.append(f"DNS/UDP  {rdtype:5} {name} -> {', '.join(v for _o, _t, v in answers) or 'TC=1'}")
    return flow.t


def dns_tcp(t: float, name: str, rdtype: str, answers: list[Answer]) -> float:
    query, resp = dns_messages(name, rdtype, answers)
    s = TcpSession(PHONE4, eport(), RESOLVER, 53, start=t, rtt=0.012, client_isn=rng.getrandbits(32),
                   server_isn=rng.getrandbits(32))
    pk = s.handshake()
    pk += s.client_send(struct.pack("!H", len(query)) + query)
    pk += s.server_send(struct.pack("!H", len(resp)) + resp)
    pk += s.close()
    emit(pk)
    summary.append(f"DNS/TCP  {rdtype:5} {name} -> {', '.join(v for _o, _t, v in answers)}")
    return s.t


# ------------------------------------------------------------------------------------------
# TLS over TCP: real ClientHello from OpenSSL, opaque server flight


def real_client_hello(host: str, alpn: list[str] | None) -> bytes:
    """A real OpenSSL ClientHello, its random parts drawn from the seeded PRNG."""
    return openssl_client_hello(host, alpn, rng)


def tls_record(ctype: int, payload: bytes) -> bytes:
    return bytes([ctype, 3, 3]) + struct.pack("!H", len(payload)) + payload


def app_data(n: int) -> bytes:
    """Application-data records totalling about n bytes of ciphertext (16 KiB max each)."""
    out = b""
    while n > 0:
        k = min(n, 16401)
        out += tls_record(0x17, rng.randbytes(k))
        n -= k
    return out


def server_flight(sid: bytes, cert_bytes: int) -> bytes:
    body = (b"\x03\x03" + rng.randbytes(32) + bytes([len(sid)]) + sid + b"\x13\x01\x00"
            + struct.pack("!H", 46) + b"\x00\x2b\x00\x02\x03\x04"
            + b"\x00\x33\x00\x24\x00\x1d\x00\x20" + rng.randbytes(32))
    hello = b"\x02" + len(body).to_bytes(3, "big") + body
    return tls_record(0x16, hello) + tls_record(0x14, b"\x01") + app_data(cert_bytes)


def tls_session(t: float, host: str, server: str, *, alpn: list[str] | None, requests: list[tuple[int, int]],
                split: int | None = None, port: int = 443) -> float:
    ch = real_client_hello(host, alpn)
    sid = ch[44 : 44 + ch[43]]
    phone = PHONE6 if ":" in server else PHONE4
    s = TcpSession(phone, eport(), server, port, start=t, rtt=rng.uniform(0.015, 0.25), mss=1428 if ":" in server else 1448,
                   client_isn=rng.getrandbits(32), server_isn=rng.getrandbits(32))
    pk = s.handshake()
    pk += s.client_send(ch, segments=[split] if split else ())
    pk += s.server_send(server_flight(sid, rng.randrange(2400, 4200)))
    pk += s.client_send(tls_record(0x14, b"\x01") + app_data(53))
    for req, resp in requests:
        pk += s.client_send(app_data(req))
        pk += s.server_send(app_data(resp))
        s.advance(rng.uniform(0.05, 0.4))
    pk += s.client_send(app_data(19))  # close_notify
    pk += s.close()
    emit(pk)
    summary.append(f"TLS      {host} ({server}) SNI in a {len(ch)}-byte ClientHello"
                   + (f", split {split}+{len(ch) - split}" if split else ""))
    return s.t


def keyed_h2_session(t: float, host: str, server: str, method: str, path: str, body: bytes,
                     reply: bytes) -> float:
    """A TLS 1.3 connection whose key log the capture carries (a Decryption Secrets Block, as
    PCAPdroid's decryption mode or ``editcap --inject-secrets`` writes it): a real OpenSSL
    ClientHello, a ServerHello, then every record really encrypted (TLS_AES_128_GCM_SHA256) under
    traffic secrets drawn from the seeded PRNG, HTTP/2 inside (HPACK-encoded headers)."""
    import hpack

    ch = real_client_hello(host, ["h2", "http/1.1"])
    client_random, sid = ch[11:43], ch[44 : 44 + ch[43]]
    secrets = {label: rng.randbytes(32) for label in ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                                        "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")}
    keylog.extend(f"{label} {client_random.hex()} {secret.hex()}" for label, secret in secrets.items())
    c_hs, s_hs = Tls13Sender(secrets["CLIENT_HANDSHAKE_TRAFFIC_SECRET"]), Tls13Sender(secrets["SERVER_HANDSHAKE_TRAFFIC_SECRET"])
    c_ap, s_ap = Tls13Sender(secrets["CLIENT_TRAFFIC_SECRET_0"]), Tls13Sender(secrets["SERVER_TRAFFIC_SECRET_0"])
    hello_body = (b"\x03\x03" + rng.randbytes(32) + bytes([len(sid)]) + sid + b"\x13\x01\x00"
                  + struct.pack("!H", 46) + b"\x00\x2b\x00\x02\x03\x04"
                  + b"\x00\x33\x00\x24\x00\x1d\x00\x20" + rng.randbytes(32))
    alpn = b"\x00\x10\x00\x05\x00\x03\x02h2"
    encrypted_extensions = b"\x08" + (len(alpn) + 2).to_bytes(3, "big") + len(alpn).to_bytes(2, "big") + alpn
    certificate = rng.randbytes(rng.randrange(2400, 3600))  # (opaque: only its size is realistic)
    handshake = (encrypted_extensions + b"\x0b" + len(certificate).to_bytes(3, "big") + certificate
                 + b"\x0f\x00\x00\x48" + rng.randbytes(72) + b"\x14\x00\x00\x20" + rng.randbytes(32))
    enc = hpack.Encoder()
    request_headers = enc.encode([(":method", method), (":scheme", "https"), (":authority", host), (":path", path),
                                  ("content-type", "application/json; charset=utf-8"),
                                  ("user-agent", "okhttp/4.12.0"), ("accept-encoding", "gzip")])
    settings = h2_frame(4, 0, 0, b"\x00\x04\x00\x01\x00\x00\x00\x03\x00\x00\x00\x64")
    client_h2 = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings + h2_frame(8, 0, 0, b"\x00\x0f\x00\x01")
                 + h2_frame(1, 0x4, 1, request_headers) + h2_frame(0, 0x1, 1, body))
    server_h2 = (settings + h2_frame(4, 0x1, 0, b"")
                 + h2_frame(1, 0x4, 1, hpack.Encoder().encode([(":status", "200"), ("content-type", "application/json")]))
                 + h2_frame(0, 0x1, 1, reply))
    phone = PHONE4
    s = TcpSession(phone, eport(), server, 443, start=t, rtt=rng.uniform(0.015, 0.05), mss=1448,
                   client_isn=rng.getrandbits(32), server_isn=rng.getrandbits(32))
    pk = s.handshake()
    pk += s.client_send(ch)
    pk += s.server_send(tls_record(0x16, b"\x02" + len(hello_body).to_bytes(3, "big") + hello_body)
                        + tls_record(0x14, b"\x01") + s_hs.records(22, handshake))
    pk += s.client_send(tls_record(0x14, b"\x01") + c_hs.record(22, b"\x14\x00\x00\x20" + rng.randbytes(32)))
    pk += s.client_send(c_ap.records(23, client_h2))
    pk += s.server_send(s_ap.record(22, b"\x04\x00\x00\x0d" + rng.randbytes(13)) + s_ap.records(23, server_h2))
    pk += s.client_send(c_ap.record(21, b"\x01\x00"))  # close_notify
    pk += s.close()
    emit(pk)
    summary.append(f"TLS 1.3  {host} ({server}) decryptable: HTTP/2 {method} {path} (key log in the pcapng)")
    return s.t


# ------------------------------------------------------------------------------------------
# QUIC: a full aioquic client <-> aioquic server exchange, made deterministic


@contextlib.contextmanager
def seeded_crypto() -> Iterator[None]:
    saved_urandom = os.urandom
    saved_x25519 = x25519.X25519PrivateKey.__dict__["generate"]
    saved_x448 = x448.X448PrivateKey.__dict__["generate"]
    saved_ec = ec.generate_private_key

    def fake_x25519() -> x25519.X25519PrivateKey:
        return x25519.X25519PrivateKey.from_private_bytes(rng.randbytes(32))

    def fake_x448() -> x448.X448PrivateKey:
        return x448.X448PrivateKey.from_private_bytes(rng.randbytes(56))

    def fake_ec(curve: ec.EllipticCurve, backend: Any = None) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(rng.randrange(1, 2**250), curve)

    os.urandom = rng.randbytes  # type: ignore[assignment]
    x25519.X25519PrivateKey.generate = staticmethod(fake_x25519)  # type: ignore[method-assign,assignment]
    x448.X448PrivateKey.generate = staticmethod(fake_x448)  # type: ignore[method-assign,assignment]
    ec.generate_private_key = fake_ec  # type: ignore[assignment]
    try:
        yield
    finally:
        os.urandom = saved_urandom
        x25519.X25519PrivateKey.generate = saved_x25519  # type: ignore[method-assign]
        x448.X448PrivateKey.generate = saved_x448  # type: ignore[method-assign]
        ec.generate_private_key = saved_ec


def server_certificate(host_pattern: str) -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_pattern)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x5EED).not_valid_before(datetime.datetime(2024, 4, 22, tzinfo=datetime.UTC))
            .not_valid_after(datetime.datetime(2024, 7, 15, tzinfo=datetime.UTC))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_pattern)]), critical=False)
            .sign(key, None))
    return cert, key


def quic_session(t: float, host: str, server: str, path: str, body: bytes) -> float:
    cport = eport()
    caddr, saddr = (PHONE4, cport), (server, 443)
    flow = UdpFlow(PHONE4, cport, server, 443, start=t)
    out: list[Packet] = []
    with seeded_crypto():
        cert, key = server_certificate("*.googleapis.com")
        cc = QuicConfiguration(is_client=True, server_name=host, alpn_protocols=["h3"], verify_mode=ssl.CERT_NONE)
        sc = QuicConfiguration(is_client=False, alpn_protocols=["h3"], certificate=cert, private_key=key)
        client = QuicConnection(configuration=cc)
        client.connect(saddr, now=t)
        server_conn: QuicConnection | None = None
        h3c: H3Connection | None = None
        h3s: H3Connection | None = None
        now = t
        sent_request = False
        done = False
        rtt = 0.018
        for _round in range(12):
            now += 0.002
            for data, _addr in client.datagrams_to_send(now=now):
                flow.t = now
                out.append(flow.send(data))
                if server_conn is None:
                    hdr = pull_quic_header(Buffer(data=data), host_cid_length=8)
                    server_conn = QuicConnection(configuration=sc, original_destination_connection_id=hdr.destination_cid)
                    h3s = H3Connection(server_conn)
                server_conn.receive_datagram(data, caddr, now=now + rtt / 2)
            if server_conn is None or h3s is None:
                break
            now += rtt / 2
            while (ev := server_conn.next_event()) is not None:
                for hev in h3s.handle_event(ev):
                    if isinstance(hev, DataReceived) and hev.stream_ended:
                        reply = json.dumps({"name": "projects/1049583107651/installations/" + uuid.UUID(
                            bytes=rng.randbytes(16)).hex[:22], "authToken": {"expiresIn": "604800s"}}).encode()
                        h3s.send_headers(hev.stream_id, [(b":status", b"200"), (b"content-type", b"application/json"),
                                                         (b"content-length", str(len(reply)).encode())])
                        h3s.send_data(hev.stream_id, reply, end_stream=True)
                        done = True
                    elif isinstance(hev, HeadersReceived):
                        pass
            now += 0.001
            for data, _addr in server_conn.datagrams_to_send(now=now):
                flow.t = now
                out.append(flow.send(data, from_client=False))
                client.receive_datagram(data, saddr, now=now + rtt / 2)
            now += rtt / 2
            while (cev := client.next_event()) is not None:
                if isinstance(cev, HandshakeCompleted) and not sent_request:
                    h3c = H3Connection(client)
                    sid = client.get_next_available_stream_id()
                    h3c.send_headers(sid, [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", host.encode()),
                                           (b":path", path.encode()), (b"content-type", b"application/json"),
                                           (b"x-android-package", b"com.example.weatherapp"),
                                           (b"user-agent", b"grpc-java-okhttp/1.52.1")])
                    h3c.send_data(sid, body, end_stream=True)
                    sent_request = True
                elif h3c is not None:
                    h3c.handle_event(cev)
            if done and _round > 4:
                break
        client.close(error_code=0)
        now += 0.002
        for data, _addr in client.datagrams_to_send(now=now):
            flow.t = now
            out.append(flow.send(data))
    emit(out)
    summary.append(f"QUIC     {host} ({server}) {len(out)} datagrams, HTTP/3 POST {path}")
    return now


# ------------------------------------------------------------------------------------------
# Plain HTTP


def http_exchange(t: float, server: str, request: bytes, response: bytes, *, uid: int = APP_UID,
                  name: str = APP_NAME, resp_segments: list[int] | None = None) -> float:
    s = TcpSession(PHONE4, eport(), server, 80, start=t, rtt=rng.uniform(0.02, 0.06),
                   client_isn=rng.getrandbits(32), server_isn=rng.getrandbits(32))
    pk = s.handshake() + s.client_send(request) + s.server_send(response, segments=resp_segments or ())
    pk += s.close()
    emit(pk, uid, name)
    first_req = request.split(b"\r\n", 1)[0].decode()
    first_resp = response.split(b"\r\n", 1)[0].decode()
    summary.append(f"HTTP     {first_req} -> {server} [{first_resp}]")
    return s.t


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out, off = b"", 0
    for n in [*sizes, len(body)]:
        part = body[off : off + n]
        if not part:
            continue
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
        off += len(part)
    return out + b"0\r\n\r\n"


# ------------------------------------------------------------------------------------------


def build() -> None:
    t = T0
    # Android's captive-portal probe (system UID), before the app starts.
    q, r = dns_messages("connectivitycheck.gstatic.com", "A", [("connectivitycheck.gstatic.com.", "A", "142.250.185.99")])
    flow = UdpFlow(PHONE4, eport(), RESOLVER, 53, start=t, rtt=0.011)
    emit(flow.exchange(q, r), SYS_UID, SYS_NAME)
    summary.append("DNS/UDP  A     connectivitycheck.gstatic.com -> 142.250.185.99 (system)")
    http_exchange(flow.t + 0.01, "142.250.185.99",
                  b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n"
                  b"User-Agent: Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240205.004)\r\n"
                  b"Connection: Keep-Alive\r\nAccept-Encoding: gzip\r\n\r\n",
                  b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nCross-Origin-Resource-Policy: cross-origin\r\n"
                  b"Date: " + http_date(T0) + b"\r\n\r\n", uid=SYS_UID, name=SYS_NAME)

    # App start: its own API behind CloudFront (CNAME chain), first ClientHello split in two.
    t = T0 + 2.1
    api = "api.weatherapp.example.com"
    cf = "d3k2x7example0.cloudfront.net"
    t = dns_udp(t, api, "A", [(api + ".", "CNAME", cf + "."), (cf + ".", "A", "18.66.122.41"),
                              (cf + ".", "A", "18.66.122.87")], ttl=60)
    tls_session(t + 0.004, api, "18.66.122.41", alpn=["h2", "http/1.1"], requests=[(412, 5230), (388, 17120)], split=220)

    # Firebase / Google Analytics for Firebase (IPv6), app-measurement CNAMEd like the real one.
    t = T0 + 2.6
    am = "app-measurement.com"
    t = dns_udp(t, am, "A", [(am + ".", "A", "142.250.185.110")])
    t = dns_udp(t + 0.001, am, "AAAA", [(am + ".", "AAAA", "2a00:1450:4001:82a::200e")])
    tls_session(t + 0.003, am, "2a00:1450:4001:82a::200e", alpn=["h2", "http/1.1"], requests=[(1873, 412)])

    # Firebase installations over QUIC/HTTP3.
    t = T0 + 3.05
    fi = "firebaseinstallations.googleapis.com"
    t = dns_udp(t, fi, "A", [(fi + ".", "A", "142.250.186.74")])
    quic_session(t + 0.002, fi, "142.250.186.74", "/v1/projects/weatherapp-4f1c2/installations",
                 json.dumps({"fid": uuid.UUID(bytes=rng.randbytes(16)).hex[:22], "appId": "1:1049583107651:android:"
                             "5c1e0d0b7e4a2f9d", "authVersion": "FIS_v2", "sdkVersion": "a:17.2.0"}).encode())

    # Facebook SDK: graph.facebook.com, CNAME to star.c10r.facebook.com, over IPv6.
    t = T0 + 3.4
    fb, star = "graph.facebook.com", "star.c10r.facebook.com"
    t = dns_udp(t, fb, "A", [(fb + ".", "CNAME", star + "."), (star + ".", "A", "157.240.20.19")])
    t = dns_udp(t + 0.001, fb, "AAAA", [(fb + ".", "CNAME", star + "."),
                                        (star + ".", "AAAA", "2a03:2880:f12d:83:face:b00c:0:25de")])
    tls_session(t + 0.003, fb, "2a03:2880:f12d:83:face:b00c:0:25de", alpn=["h2", "http/1.1"],
                requests=[(2210, 380), (960, 1240)])

    # AppsFlyer (AWS us-east-1 behind an ELB name); version 2 of the app dropped this SDK.
    if app_version == 1:
        t = T0 + 4.2
        af, elb = "launches.appsflyersdk.com", "launches-prod-1893271204.us-east-1.elb.amazonaws.com"
        t = dns_udp(t, af, "A", [(af + ".", "CNAME", elb + "."), (elb + ".", "A", "52.20.93.17"),
                                 (elb + ".", "A", "52.21.140.212")], ttl=60)
        tls_session(t + 0.004, af, "52.20.93.17", alpn=None, requests=[(3140, 290)])

    # Umeng (Alibaba): the UDP answer is truncated, the resolver is asked again over TCP.
    t = T0 + 4.9
    um, gds = "plbslog.umeng.com", "plbslog.umeng.com.gds.alibabadns.com"
    um_answers = [(um + ".", "CNAME", gds + ".")] + [(gds + ".", "A", f"106.11.{a}") for a in
                                                    ("43.158", "43.159", "86.37", "86.38", "248.141", "248.142")]
    t = dns_udp(t, um, "A", [], truncated=True)
    t = dns_tcp(t + 0.001, um, "A", um_answers)
    tls_session(t + 0.005, um, "106.11.43.158", alpn=None, requests=[(1520, 170)])

    # Tencent Bugly crash reporting.
    t = T0 + 5.6
    bg = "android.bugly.qq.com"
    t = dns_udp(t, bg, "A", [(bg + ".", "A", "129.226.103.69")])
    tls_session(t + 0.003, bg, "129.226.103.69", alpn=None, requests=[(870, 140)])

    # The app's own analytics, in clear over port 80, carrying the advertising ID.
    t = T0 + 6.3
    ev = "events.weatherapp.example.com"
    t = dns_udp(t, ev, "A", [(ev + ".", "A", "3.121.6.180")])
    gaid = str(uuid.UUID(bytes=rng.randbytes(16), version=4)) if app_version == 1 else device_gaid()
    body = json.dumps({
        "app": "com.example.weatherapp", "app_version": APP_VERSIONS[app_version], "gaid": gaid, "limit_ad_tracking": False,
        "device": {"model": "Pixel 7", "os": "Android 14", "locale": "de_DE", "tz": "Europe/Berlin"},
        "location": {"lat": 52.5163, "lon": 13.3777, "accuracy_m": 14},
        "events": [{"name": "app_open", "ts": int(T0 + 2) * 1000}, {"name": "forecast_view", "ts": int(T0 + 6) * 1000,
                                                                    "city": "Berlin"}],
    }, separators=(",", ":")).encode()
    req = (b"POST /v1/events HTTP/1.1\r\nHost: " + ev.encode() + b"\r\nUser-Agent: okhttp/4.12.0\r\n"
           b"Content-Type: application/json; charset=utf-8\r\nContent-Length: " + str(len(body)).encode()
           + b"\r\nAccept-Encoding: gzip\r\nConnection: Keep-Alive\r\n\r\n" + body)
    resp_body = json.dumps({"status": "ok", "received": 2, "config": {"flush_interval_s": 60}}).encode()
    resp = (b"HTTP/1.1 200 OK\r\nDate: " + http_date(t) + b"\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nServer: nginx\r\n\r\n" + chunked(resp_body, [24]))
    http_exchange(t + 0.003, "3.121.6.180", req, resp, resp_segments=[120])

    # Half a minute later the app refreshes the forecast (DNS cached; new TLS connection). This
    # connection's keys are in the capture, as PCAPdroid's decryption mode exports them: inside
    # the HTTPS, the request carries the advertising ID in its JSON body.
    forecast = json.dumps({"city": "Berlin", "units": "metric", "ad_id": gaid, "lat": 52.52, "lon": 13.41},
                          separators=(",", ":")).encode()
    keyed_h2_session(T0 + 36.8, api, "18.66.122.87", "POST", "/v2/forecast", forecast,
                     json.dumps({"city": "Berlin", "days": [{"t_max": 23.1, "t_min": 12.4}] * 7}).encode())
    summary.append(f"advertising ID (gaid) in the clear: {gaid}")

    # An attribution ping in clear whose query hides the device's identifiers two layers deep:
    # u = base64url(JSON {android_id, SHA-256 of the lower-cased e-mail, gaid}).
    t = T0 + 40.2
    tr = "t.adtrack.example.net"
    t = dns_udp(t, tr, "A", [(tr + ".", "A", "52.29.188.11")])
    inner = json.dumps({"aid": PROFILE["android_id"], "eh": hashlib.sha256(PROFILE["email"].lower().encode()).hexdigest(),
                        "ifa": gaid, "ts": int(T0 + 40) * 1000}, separators=(",", ":")).encode()
    u = base64.urlsafe_b64encode(inner).rstrip(b"=")
    req = (b"GET /v2/ping?app=com.example.weatherapp&ev=session_start&u=" + u + b" HTTP/1.1\r\nHost: "
           + tr.encode() + b"\r\nUser-Agent: okhttp/4.12.0\r\nConnection: close\r\n\r\n")
    resp = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    http_exchange(t + 0.003, "52.29.188.11", req, resp)
    summary.append("android ID and hashed e-mail in a base64url query parameter")
    if app_version >= 2:
        baidu_mobstat(T0 + 7.4, gaid)
    if app_version == 1:
        write_profile(gaid)


def http_date(ts: float) -> bytes:
    """An HTTP Date header value (RFC 9110 IMF-fixdate) for a capture time."""
    return email.utils.formatdate(ts, usegmt=True).encode()


def device_gaid() -> str:
    """The test device's advertising ID, as the version 1 run wrote it to examples/profile.toml."""
    path = Path(__file__).resolve().parent / "profile.toml"
    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8"))["advertising_id"])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as e:
        raise SystemExit(f"{path}: no advertising_id ({e}); run generate_example.py (version 1) first") from e


def baidu_mobstat(t: float, gaid: str) -> float:
    """Version 2's new SDK: Baidu Mobstat posts device data and the precise location in clear."""
    host, server = "hmma.baidu.com", "180.76.199.37"  # 180.76.0.0/14: Beijing Baidu Netcom
    t = dns_udp(t, host, "A", [(host + ".", "A", server)])
    record = {
        "he": {"n": "com.example.weatherapp", "v": APP_VERSIONS[app_version], "o": "android", "ov": "14",
               "dm": "Pixel 7", "gaid": gaid, "sdk": "mtj-4.0.9.7", "sr": "1080x2400", "tz": "Europe/Berlin"},
        "pr": [{"n": "forecast_view", "t": int(t) * 1000}, {"n": "radar_open", "t": int(t + 3) * 1000}],
        "lo": {"lat": 52.516274, "lng": 13.377704, "acc": 11, "t": int(t) * 1000, "coord": "wgs84"},
    }
    body = gzip.compress(json.dumps(record, separators=(",", ":")).encode(), mtime=0)
    req = (b"POST /app.gif HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUser-Agent: Dalvik/2.1.0 (Linux; U; "
           b"Android 14; Pixel 7 Build/UQ1A.240205.004)\r\nContent-Type: application/json\r\n"
           b"Content-Encoding: gzip\r\nContent-Length: " + str(len(body)).encode()
           + b"\r\nConnection: close\r\n\r\n" + body)
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    resp = (b"HTTP/1.1 200 OK\r\nDate: " + http_date(t) + b"\r\nContent-Type: image/gif\r\nContent-Length: "
            + str(len(gif)).encode() + b"\r\nConnection: close\r\nServer: BWS/1.1\r\n\r\n" + gif)
    t = http_exchange(t + 0.003, server, req, resp)
    summary.append("advertising ID and precise location (gzip JSON) in clear to Baidu Mobstat")
    return t


#: The fictional test device and account (examples/profile.toml is written from these).
PROFILE = {"android_id": "6f1c2a9be4d07a35", "email": "Tester.WeatherApp@example.org"}


def write_profile(gaid: str) -> None:
    """examples/profile.toml: the values of the example's fictional device, for --profile."""
    text = (
        "# The fictional test device of examples/mobile-app-session.pcapng (synthetic).\n"
        "# datareach audit examples/mobile-app-session.pcapng --profile examples/profile.toml\n"
        f'advertising_id = "{gaid}"\n'
        f'android_id = "{PROFILE["android_id"]}"\n'
        f'email = "{PROFILE["email"]}"\n'
        "latitude = 52.516274\n"
        "longitude = 13.377704\n"
    )
    (Path(__file__).resolve().parent / "profile.toml").write_text(text, encoding="utf-8")


def write(path: Path) -> int:
    packets.sort(key=lambda p: p[0])
    with open(path, "wb") as f:
        w = PcapngWriter(f, hardware="Pixel 7 (synthetic)", os="Android 14",
                         application="datareach examples/generate_example.py",
                         comment="SYNTHETIC traffic of a fictional app (com.example.weatherapp); not a real capture")
        iface = w.add_interface(LINKTYPE_ETHERNET, name="wlan0", snaplen=65535)
        if keylog:  # (the TLS key log of the decryptable connection, before its packets)
            w.write_secrets(("\n".join(keylog) + "\n").encode())
        for ts, ip, uid, name in packets:
            w.write(ts, pcapdroid_frame(ip, uid, name), iface)
    return len(packets)


def main(argv: list[str] | None = None) -> int:
    global T0, app_version
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--app-version", type=int, choices=sorted(APP_VERSIONS), default=1,
                    help="1: examples/mobile-app-session.pcapng; 2: the app update, "
                         "examples/mobile-app-session-v2.pcapng")
    ap.add_argument("--out", type=Path, help="where to write (default: by version, in examples/)")
    args = ap.parse_args(argv)
    app_version = args.app_version
    seed = SEED
    if app_version == 2:
        seed, T0 = SEED_V2, T0_V2
    if args.out is None:
        args.out = OUT if app_version == 1 else OUT_V2
    rng.seed(seed)
    random.seed(seed)  # dnspython shuffles the records of an RRset with the global PRNG
    build()
    n = write(args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:16]
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, {n} packets, sha256 {digest}...)")
    for line in summary:
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
