#!/usr/bin/env python3
"""Write a large SYNTHETIC capture of HTTPS with its TLS key log, for the decryption benchmark.

    .venv/bin/python benchmarks/generate_decrypt_capture.py [--size-mb 320] [--out PATH] [--seed N]

Writes ``PATH`` (classic pcap, Ethernet) and ``PATH.keys`` (NSS key log), and ``PATH.truth.json``
(the requests, by protocol). The mix, by bytes about 80/20:

* TLS 1.3 (TLS_AES_128_GCM_SHA256) connections carrying HTTP/2: a real OpenSSL ClientHello, a
  ServerHello, then every record really encrypted under traffic secrets drawn from the seeded
  PRNG and written to the key log (:class:`datareach.testing.tls13.Tls13Sender`); 1 to 12 requests
  per connection, most of them POSTs with JSON or form bodies that carry identifiers (an
  advertising ID, an Android ID, the SHA-256 of an e-mail address, a location) in several
  encodings, HPACK-encoded headers, responses from 200 bytes to 120 KB in records of up to 16 KB;
* QUIC v1 connections carrying HTTP/3, made by aioquic's client and server in memory (real
  Initial, Handshake and 1-RTT packets, QPACK), their secrets in the same key log. aioquic is slow
  to run, so a few dozen distinct sessions are made and each is laid down again on new client ports
  and times: every copy decrypts (and costs) exactly as the original does.

All traffic is synthetic; no packet was ever sent to the (documentation-range) servers.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import ssl
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from datareach.testing.capture import (  # noqa: E402
    LINKTYPE_ETHERNET,
    PcapWriter,
    TcpSession,
    UdpFlow,
    link_frame,
    openssl_client_hello,
)
from datareach.testing.tls13 import Tls13Sender, h2_frame  # noqa: E402

CLIENTS = [f"10.20.{i // 200}.{i % 200 + 10}" for i in range(400)]
SERVERS = [f"198.51.100.{i}" for i in range(1, 250)] + [f"203.0.113.{i}" for i in range(1, 250)]
HOSTS = [f"api{i}.bench-{i % 37}.example" for i in range(300)]


def tls_record(ctype: int, payload: bytes) -> bytes:
    return bytes([ctype, 3, 3]) + len(payload).to_bytes(2, "big") + payload


class Gen:
    def __init__(self, seed: int, out: Path) -> None:
        self.rng = random.Random(seed)
        self.f = open(out, "wb")  # noqa: SIM115
        self.w = PcapWriter(self.f, LINKTYPE_ETHERNET)
        self.keylog: list[str] = []
        self.truth: dict[str, list[list[str]]] = {"h2": [], "h3": []}
        self.t = 1_760_000_000.0
        self.port = 20000
        self.bytes = 0

    def emit(self, packets: list[tuple[float, bytes]]) -> None:
        for ts, ip in packets:
            frame = link_frame(LINKTYPE_ETHERNET, ip, outgoing=True)
            self.w.write(ts, frame)
            self.bytes += 16 + len(frame)

    def next_port(self) -> int:
        self.port = self.port + 1 if self.port < 65000 else 20000
        return self.port

    # -- bodies that carry identifiers ------------------------------------------------------------

    def body(self) -> tuple[str, bytes]:
        rng = self.rng
        gaid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        aid = f"{rng.getrandbits(64):016x}"
        eh = hashlib.sha256(f"user{rng.randrange(10**6)}@example.org".encode()).hexdigest()
        event = {"app": "com.example.bench", "ad_id": gaid, "android_id": aid, "eh": eh,
                 "loc": {"lat": round(rng.uniform(-60, 60), 5), "lon": round(rng.uniform(-170, 170), 5)},
                 "events": [{"name": rng.choice(["open", "view", "click", "purchase"]), "ts": rng.randrange(10**12)}
                            for _ in range(rng.randrange(1, 12))],
                 "pad": "x" * rng.randrange(0, 1500)}
        kind = rng.random()
        if kind < 0.6:
            return "application/json", json.dumps(event, separators=(",", ":")).encode()
        if kind < 0.85:
            return "application/x-www-form-urlencoded", urllib.parse.urlencode(
                {"d": base64.b64encode(json.dumps(event).encode()).decode(), "v": "2"}).encode()
        return "application/json", json.dumps({"batch": base64.urlsafe_b64encode(
            json.dumps(event).encode()).decode()}).encode()

    # -- TLS 1.3 + HTTP/2 --------------------------------------------------------------------------

    def tls_h2(self) -> None:
        import hpack

        rng = self.rng
        host = rng.choice(HOSTS)
        ch = openssl_client_hello(host, ["h2", "http/1.1"], rng)
        client_random, sid = ch[11:43], ch[44 : 44 + ch[43]]
        labels = ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
                  "SERVER_TRAFFIC_SECRET_0")
        secrets = {label: rng.randbytes(32) for label in labels}
        self.keylog.extend(f"{label} {client_random.hex()} {secret.hex()}" for label, secret in secrets.items())
        c_hs, s_hs, c_ap, s_ap = (Tls13Sender(secrets[label]) for label in labels)
        hello = (b"\x03\x03" + rng.randbytes(32) + bytes([len(sid)]) + sid + b"\x13\x01\x00" + (46).to_bytes(2, "big")
                 + b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33\x00\x24\x00\x1d\x00\x20" + rng.randbytes(32))
        alpn = b"\x00\x10\x00\x05\x00\x03\x02h2"
        ee = b"\x08" + (len(alpn) + 2).to_bytes(3, "big") + len(alpn).to_bytes(2, "big") + alpn
        cert = rng.randbytes(rng.randrange(2000, 4000))
        handshake = (ee + b"\x0b" + len(cert).to_bytes(3, "big") + cert + b"\x0f\x00\x00\x48" + rng.randbytes(72)
                     + b"\x14\x00\x00\x20" + rng.randbytes(32))
        s = TcpSession(rng.choice(CLIENTS), self.next_port(), rng.choice(SERVERS), 443, start=self.t,
                       rtt=rng.uniform(0.01, 0.1), client_isn=rng.getrandbits(32), server_isn=rng.getrandbits(32))
        pk = s.handshake()
        pk += s.client_send(ch)
        pk += s.server_send(tls_record(0x16, b"\x02" + len(hello).to_bytes(3, "big") + hello)
                            + tls_record(0x14, b"\x01") + s_hs.records(22, handshake))
        pk += s.client_send(tls_record(0x14, b"\x01") + c_hs.record(22, b"\x14\x00\x00\x20" + rng.randbytes(32)))
        settings = h2_frame(4, 0, 0, b"\x00\x04\x00\x01\x00\x00\x00\x03\x00\x00\x00\x64")
        enc, senc = hpack.Encoder(), hpack.Encoder()
        pk += s.client_send(c_ap.record(23, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings))
        pk += s.server_send(s_ap.record(23, settings + h2_frame(4, 1, 0, b"")))
        for i in range(rng.randrange(1, 13)):
            sid_ = 1 + 2 * i
            path = f"/v{rng.randrange(1, 4)}/{rng.choice(['events', 'collect', 'sdk/init', 'config', 'batch'])}" \
                   f"?app=bench&n={rng.randrange(10**6)}"
            if rng.random() < 0.75:
                ctype, body = self.body()
                block = enc.encode([(":method", "POST"), (":scheme", "https"), (":authority", host), (":path", path),
                                    ("content-type", ctype), ("user-agent", "okhttp/4.12.0"),
                                    ("content-length", str(len(body)))])
                msg = h2_frame(1, 0x4, sid_, block) + h2_frame(0, 0x1, sid_, body)
                method = "POST"
            else:
                block = enc.encode([(":method", "GET"), (":scheme", "https"), (":authority", host), (":path", path),
                                    ("user-agent", "okhttp/4.12.0")])
                msg = h2_frame(1, 0x5, sid_, block)
                method = "GET"
            pk += s.client_send(c_ap.records(23, msg))
            self.truth["h2"].append([method, host, path])
            size = int(rng.paretovariate(1.2) * 400) % 120_000
            resp = h2_frame(1, 0x4, sid_, senc.encode([(":status", "200"), ("content-type", "application/json")]))
            data = rng.randbytes(size)
            for off in range(0, max(size, 1), 16384):
                chunk = data[off : off + 16384]
                resp += h2_frame(0, 0x1 if off + 16384 >= size else 0, sid_, chunk)
            pk += s.server_send(s_ap.records(23, resp))
            s.advance(rng.uniform(0.01, 0.3))
        pk += s.client_send(c_ap.record(21, b"\x01\x00"))
        pk += s.close()
        self.emit(pk)
        self.t += rng.uniform(0.001, 0.05)

    # -- QUIC + HTTP/3 (aioquic, in memory) --------------------------------------------------------

    def quic_sessions(self, n: int, cert: tuple[str, str]) -> list[tuple[list[tuple[float, bool, bytes]], list[list[str]]]]:
        """``n`` distinct QUIC connections: (their datagrams with times and directions, their requests)."""
        from aioquic.h3.connection import H3_ALPN, H3Connection
        from aioquic.h3.events import DataReceived, HeadersReceived
        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.quic.connection import QuicConnection
        from aioquic.quic.events import HandshakeCompleted

        rng = self.rng
        out = []
        for _ in range(n):
            host = rng.choice(HOSTS)
            log = _Lines()
            cc = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE, server_name=host,
                                   secrets_log_file=log)
            sc = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
            sc.load_cert_chain(*cert)
            client = QuicConnection(configuration=cc)
            caddr, saddr = ("10.0.0.1", 5000), ("10.0.0.2", 443)
            now = 0.0
            client.connect(saddr, now=now)
            server: QuicConnection | None = None
            h3s: H3Connection | None = None
            h3c: H3Connection | None = None
            dgrams: list[tuple[float, bool, bytes]] = []
            requests: list[list[str]] = []
            todo = rng.randrange(4, 24)
            sizes: dict[int, int] = {}
            for _round in range(400):
                now += 0.001
                for data, _ in client.datagrams_to_send(now=now):
                    dgrams.append((now, True, data))
                    if server is None:
                        from aioquic.buffer import Buffer
                        from aioquic.quic.packet import pull_quic_header

                        hdr = pull_quic_header(Buffer(data=data), host_cid_length=8)
                        server = QuicConnection(configuration=sc,
                                                original_destination_connection_id=hdr.destination_cid)
                        h3s = H3Connection(server)
                    server.receive_datagram(data, caddr, now=now)
                assert server is not None and h3s is not None
                while (ev := server.next_event()) is not None:
                    for hev in h3s.handle_event(ev):
                        if isinstance(hev, HeadersReceived | DataReceived):
                            sizes.setdefault(hev.stream_id, 0)
                            if hev.stream_ended:
                                size = int(rng.paretovariate(1.2) * 400) % 60_000
                                h3s.send_headers(hev.stream_id, [(b":status", b"200"),
                                                                 (b"content-type", b"application/json")])
                                h3s.send_data(hev.stream_id, rng.randbytes(size), end_stream=True)
                now += 0.001
                for data, _ in server.datagrams_to_send(now=now):
                    dgrams.append((now, False, data))
                    client.receive_datagram(data, saddr, now=now)
                while (cev := client.next_event()) is not None:
                    if isinstance(cev, HandshakeCompleted):
                        h3c = H3Connection(client)
                    elif h3c is not None:
                        h3c.handle_event(cev)
                if h3c is not None and todo and len(requests) < 64:
                    todo -= 1
                    sid = client.get_next_available_stream_id()
                    path = f"/h3/{rng.choice(['events', 'collect', 'v1/report'])}?n={rng.randrange(10**6)}"
                    ctype, body = self.body()
                    h3c.send_headers(sid, [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", host.encode()),
                                           (b":path", path.encode()), (b"content-type", ctype.encode())])
                    h3c.send_data(sid, body, end_stream=True)
                    requests.append(["POST", host, path])
                elif h3c is not None and not todo and _round > 40 and not client._streams_blocked_bidi:
                    break
            client.close()
            for data, _ in client.datagrams_to_send(now=now + 0.001):
                dgrams.append((now + 0.001, True, data))
            self.keylog.extend(log.lines)
            out.append((dgrams, requests))
        return out

    def lay_quic(self, session: tuple[list[tuple[float, bool, bytes]], list[list[str]]]) -> None:
        rng = self.rng
        dgrams, requests = session
        flow = UdpFlow(rng.choice(CLIENTS), self.next_port(), rng.choice(SERVERS), 443, start=self.t)
        pk = []
        for ts, from_client, data in dgrams:
            flow.t = self.t + ts
            pk.append(flow.send(data, from_client=from_client))
        self.emit(pk)
        self.truth["h3"].extend(requests)
        self.t += rng.uniform(0.001, 0.05)


class _Lines:
    """A file-like sink for aioquic's key log."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, s: str) -> int:
        self.lines.extend(line for line in s.splitlines() if line.strip())
        return len(s)

    def flush(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--size-mb", type=float, default=320)
    ap.add_argument("--out", type=Path, default=HERE / "decrypt.pcap")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--quic-share", type=float, default=0.2, help="share of the bytes in QUIC connections")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    g = Gen(args.seed, args.out)
    target = int(args.size_mb * 1_000_000)
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "3650", "-subj", "/CN=bench"],
                       check=True, capture_output=True)
        sessions = g.quic_sessions(24, (str(cert), str(key))) if args.quic_share > 0 else []
    quic_bytes = 0
    i = 0
    while g.bytes < target:
        before = g.bytes
        if sessions and quic_bytes < args.quic_share * g.bytes:
            g.lay_quic(sessions[i % len(sessions)])
            i += 1
            quic_bytes += g.bytes - before
        else:
            g.tls_h2()
    g.f.close()
    keys = args.out.with_name(args.out.name + ".keys")
    keys.write_text("\n".join(g.keylog) + "\n")
    truth = {"h2_requests": len(g.truth["h2"]), "h3_requests": len(g.truth["h3"]), "bytes": g.bytes,
             "quic_bytes": quic_bytes, "key_log_lines": len(g.keylog)}
    args.out.with_name(args.out.name + ".truth.json").write_text(json.dumps({**truth, "requests": g.truth}))
    print(f"wrote {args.out} ({g.bytes / 1e6:.0f} MB) and {keys.name} in {time.perf_counter() - start:.0f} s: {truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
