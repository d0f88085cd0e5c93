"""Real TLS peers on loopback for the decryption tests, captured with dumpcap.

* :class:`Capture` runs ``dumpcap`` on the loopback interface for a port range, as a user
  would capture a phone's or a laptop's traffic;
* :func:`openssl_server` runs ``openssl s_server -www`` (HTTP/1.x over TLS 1.2 or 1.3, any suite);
* :class:`H2Server` is an HTTP/2 server on Python's ``ssl`` and the ``h2`` library (ALPN h2),
  answering every request with its body's size;
* the clients are ``curl`` (HTTP/1.1 and, with ``--http2``, HTTP/2 through nghttp2) writing
  ``SSLKEYLOGFILE``, and tshark decrypts the same capture as the reference.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

TOOLS = ("dumpcap", "tshark", "openssl", "curl", "editcap")


@functools.cache
def missing_tools() -> list[str]:
    """The tools the loopback tests need that are not here, and ``capture permission`` when dumpcap
    may not capture on the loopback interface (it needs root or CAP_NET_RAW: `make system-deps`
    runs as root where it installs packages)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if "dumpcap" not in missing:
        probe = subprocess.run(["dumpcap", "-L", "-i", "lo"], capture_output=True, timeout=30)
        if probe.returncode != 0:
            missing.append("capture permission on lo (root or CAP_NET_RAW for dumpcap)")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(d: Path, kind: str = "ec") -> tuple[Path, Path]:
    cert, key = d / f"{kind}-cert.pem", d / f"{kind}-key.pem"
    alg = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if kind == "ec" else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", *alg, "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "3650",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


class Capture:
    """dumpcap on loopback, for TCP to the given ports, written as pcapng."""

    def __init__(self, path: Path, ports: list[int], udp_ports: list[int] = ()) -> None:  # type: ignore[assignment]
        self.path = path
        filt = " or ".join([*(f"tcp port {p}" for p in ports), *(f"udp port {p}" for p in udp_ports)])
        self.proc = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", filt, "-w", str(path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # dumpcap says "Capturing on" once the interface is open
        deadline = time.monotonic() + 20
        assert self.proc.stderr is not None
        line = b""
        while time.monotonic() < deadline and b"Capturing on" not in line:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError("dumpcap did not start")
        time.sleep(1.0)  # (it says so before its filter is in place: the first packets would be missed)

    def stop(self) -> Path:
        time.sleep(0.5)  # (the last packets reach the ring buffer)
        self.proc.terminate()
        self.proc.wait(timeout=20)
        return self.path


@contextlib.contextmanager
def openssl_server(cert: tuple[Path, Path], port: int, args: list[str]) -> Iterator[None]:
    proc = subprocess.Popen(["openssl", "s_server", "-accept", str(port), "-cert", str(cert[0]), "-key", str(cert[1]),
                             "-www", "-quiet", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def curl(url: str, keylog: Path, *extra: str) -> None:
    env = dict(os.environ, SSLKEYLOGFILE=str(keylog))
    subprocess.run(["curl", "-sk", "-o", os.devnull, "--max-time", "20", *extra, url], check=True, env=env)


class H2Server:
    """An HTTP/2 server over TLS (h2, Python's ssl) on a thread; answers each request with
    ``{"got": <body size>}``."""

    def __init__(self, cert: tuple[Path, Path], port: int) -> None:
        self.port = port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*cert)
        self.ctx.set_alpn_protocols(["h2"])
        self.sock = socket.create_server(("127.0.0.1", port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.stopping = False

    def __enter__(self) -> H2Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping = True
        self.sock.close()
        self.thread.join(timeout=10)

    def _serve(self) -> None:
        while not self.stopping:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(raw,), daemon=True).start()

    def _connection(self, raw: socket.socket) -> None:
        import h2.exceptions

        # (a client that hangs up, as browsers do with their spare sockets)
        with contextlib.suppress(ssl.SSLError, OSError, h2.exceptions.ProtocolError):
            self._serve_connection(raw)

    def _serve_connection(self, raw: socket.socket) -> None:
        import h2.config
        import h2.connection
        import h2.events

        try:
            conn_sock = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        conn_sock.sendall(conn.data_to_send())
        bodies: dict[int, int] = {}
        with conn_sock:
            while True:
                try:
                    data = conn_sock.recv(65536)
                except (ssl.SSLError, OSError):
                    return
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] = bodies.get(ev.stream_id, 0) + len(ev.data)
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        body = f'{{"got": {bodies.get(ev.stream_id, 0)}}}'.encode()
                        conn.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "application/json"),
                                                         ("content-length", str(len(body)))])
                        conn.send_data(ev.stream_id, body, end_stream=True)
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        conn_sock.sendall(conn.data_to_send())
                        return
                out = conn.data_to_send()
                if out:
                    conn_sock.sendall(out)


def tshark_requests(capture: Path, keylog: Path | None = None) -> list[tuple[str, str, str]]:
    """(method, authority, path) of every HTTP/1.x and HTTP/2 request tshark decrypts, sorted."""
    args = ["tshark", "-r", str(capture), "-o", "tcp.desegment_tcp_streams:TRUE"]
    if keylog is not None:
        args += ["-o", f"tls.keylog_file:{keylog}"]
    args += ["-Y", "http.request || http2.type == 1", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|",
             "-e", "http.request.method", "-e", "http.host", "-e", "http.request.uri",
             "-e", "http2.headers.method", "-e", "http2.headers.authority", "-e", "http2.headers.path",
             "-e", "http2.flags.end_stream"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        f = line.split("\t")
        if f[0]:
            found.append((f[0], f[1], f[2]))
            continue
        # one HEADERS frame per request (a packet may hold several: | between them)
        for m, a, p in zip(f[3].split("|"), f[4].split("|"), f[5].split("|"), strict=False):
            if m:
                found.append((m, a, p))
    return sorted(found)


# --------------------------------------------------------------------------------------------
# HTTP/3: aioquic's client and server (QUIC v1 or v2), the client writing its key log


def http3_exchange(cert: tuple[Path, Path], port: int, keylog: Path, requests: list[tuple[str, str, bytes]],
                   cipher: str = "AES_128_GCM_SHA256", version: int = 0x00000001,
                   key_update: bool = False) -> list[int]:
    """Serve HTTP/3 on ``port`` and send ``requests`` (method, path, body) to it, one connection;
    returns each response's status. ``key_update``: the client updates its keys halfway."""
    import asyncio

    from aioquic.asyncio import connect, serve
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import ProtocolNegotiated, QuicEvent
    from aioquic.tls import CipherSuite

    suite = CipherSuite[cipher]

    class Server(QuicConnectionProtocol):
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, **kw)  # type: ignore[arg-type]
            self.h3: H3Connection | None = None
            self.sizes: dict[int, int] = {}

        def quic_event_received(self, event: QuicEvent) -> None:
            if isinstance(event, ProtocolNegotiated):
                self.h3 = H3Connection(self._quic)
            if self.h3 is None:
                return
            for ev in self.h3.handle_event(event):
                ended = False
                if isinstance(ev, HeadersReceived):
                    self.sizes.setdefault(ev.stream_id, 0)
                    ended = ev.stream_ended
                elif isinstance(ev, DataReceived):
                    self.sizes[ev.stream_id] = self.sizes.get(ev.stream_id, 0) + len(ev.data)
                    ended = ev.stream_ended
                if ended:
                    body = f'{{"got": {self.sizes.get(ev.stream_id, 0)}}}'.encode()
                    self.h3.send_headers(ev.stream_id, [(b":status", b"200"), (b"content-length", str(len(body)).encode())])
                    self.h3.send_data(ev.stream_id, body, end_stream=True)
            self.transmit()

    class Client(QuicConnectionProtocol):
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, **kw)  # type: ignore[arg-type]
            self.h3 = H3Connection(self._quic)
            self.waiting: dict[int, asyncio.Future[int]] = {}
            self.status: dict[int, int] = {}

        def quic_event_received(self, event: QuicEvent) -> None:
            for ev in self.h3.handle_event(event):
                if isinstance(ev, HeadersReceived):
                    for k, v in ev.headers:
                        if k == b":status":
                            self.status[ev.stream_id] = int(v)
                if isinstance(ev, HeadersReceived | DataReceived) and ev.stream_ended:
                    fut = self.waiting.pop(ev.stream_id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(self.status.get(ev.stream_id, 0))

        async def request(self, method: str, path: str, body: bytes) -> int:
            sid = self._quic.get_next_available_stream_id()
            headers = [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", f"localhost:{port}".encode()),
                       (b":path", path.encode()), (b"user-agent", b"aioquic-test")]
            if body:
                headers.append((b"content-type", b"application/json"))
            self.h3.send_headers(sid, headers, end_stream=not body)
            if body:
                self.h3.send_data(sid, body, end_stream=True)
            fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self.waiting[sid] = fut
            self.transmit()
            return await asyncio.wait_for(fut, 20)

    async def run() -> list[int]:
        sconf = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, cipher_suites=[suite],
                                  supported_versions=[version])
        sconf.load_cert_chain(str(cert[0]), str(cert[1]))
        server = await serve("127.0.0.1", port, configuration=sconf, create_protocol=Server)
        statuses = []
        with open(keylog, "a") as log:
            cconf = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, cipher_suites=[suite],
                                      supported_versions=[version], secrets_log_file=log, verify_mode=ssl.CERT_NONE,
                                      server_name="localhost")
            async with connect("127.0.0.1", port, configuration=cconf, create_protocol=Client) as client:
                assert isinstance(client, Client)
                for i, (method, path, body) in enumerate(requests):
                    if key_update and i == len(requests) // 2:
                        client._quic.request_key_update()
                    statuses.append(await client.request(method, path, body))
        server.close()
        return statuses

    return asyncio.run(run())


def tshark_quic_request_streams(capture: Path, keylog: Path, server_port: int) -> list[int]:
    """The reference for HTTP/3: the client-initiated bidirectional QUIC streams to ``server_port``
    whose decrypted data (tshark's QUIC decryption, an independent implementation) starts with an
    HTTP/3 HEADERS frame, i.e. the requests. (tshark 4.0 decrypts QUIC but has no HTTP/3 dissector.)"""
    out = subprocess.run(["tshark", "-r", str(capture), "-o", f"tls.keylog_file:{keylog}", "-Y",
                          f"quic && udp.dstport == {server_port}", "-T", "fields", "-E", "occurrence=a",
                          "-E", "aggregator=|", "-e", "quic.frame_type", "-e", "quic.stream.stream_id",
                          "-e", "quic.stream.offset", "-e", "quic.stream_data"],
                         check=True, capture_output=True, text=True).stdout
    found: set[int] = set()
    for line in out.splitlines():
        types, sids, offsets, datas = (line.split("\t") + [""] * 4)[:4]
        stream_types = [int(t) for t in types.split("|") if t and 8 <= int(t) <= 15]
        offs = iter(int(x) for x in offsets.split("|") if x)
        for ftype, sid, blob in zip(stream_types, (int(x) for x in sids.split("|") if x), datas.split("|"),
                                    strict=False):
            off = next(offs) if ftype & 0x04 else 0
            if sid % 4 == 0 and off == 0 and blob.startswith("01"):
                found.add(sid)
    return sorted(found)
