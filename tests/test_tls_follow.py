"""Following TLS connections after the ClientHello (PacketDecoder with a TlsFollower).

The sessions are real: Python's ``ssl`` module (OpenSSL) runs both ends of a TLS 1.3 or 1.2
handshake and an HTTP exchange in memory, the bytes each side wrote are laid into TCP segments
by the capture writer, and tshark (Wireshark's dissectors, an independent implementation) reads
the same pcap to say which records each direction carried and what the hellos hold.
"""

from __future__ import annotations

import datetime
import shutil
import ssl
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach.dissect import tls
from datareach.dissect.packets import DONE, TLS_FOLLOW, PacketDecoder
from datareach.dissect.tls import ClientHello, ServerHello, TlsFlow, TlsRecord, TlsRecordStream
from datareach.testing.builders import write_pcap
from datareach.testing.capture import LINKTYPE_ETHERNET, LINKTYPE_RAW, TcpSession, link_frame

HOST = "follow.example.com"
CLIENT_IP, SERVER_IP = "192.168.1.23", "93.184.216.34"
Packets = list[tuple[float, bytes]]


# --------------------------------------------------------------------------------------------
# Real TLS sessions, made by OpenSSL through Python's ssl module


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed ECDSA certificate for HOST and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    crt = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
           .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=36500))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
           .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("cert")
    (d / "cert.pem").write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d / "cert.pem", d / "key.pem"


@dataclass
class Session:
    """What each side wrote, in order: (from_client, bytes); and what OpenSSL negotiated."""

    flights: list[tuple[bool, bytes]] = field(default_factory=list)
    version: str = ""
    cipher: int = 0

    def stream(self, from_client: bool) -> bytes:
        return b"".join(d for c, d in self.flights if c == from_client)


def tls_session(cert: tuple[Path, Path], version: ssl.TLSVersion, *, responses: tuple[int, ...] = (40_000,),
                hrr: bool = False, keylog: Path | None = None, ciphers: str | None = None,
                request_body: bytes = b"", client_options: int = 0, server_options: int = 0) -> Session:
    """A handshake, one HTTP request per entry of ``responses`` (answered with that many body
    bytes), and close_notify from both sides. ``keylog``: OpenSSL writes the session's secrets
    there (SSLKEYLOGFILE format); ``ciphers`` picks the TLS 1.2 suite; ``request_body`` is POSTed
    with each request; ``client_options`` and ``server_options`` are OpenSSL options (SSL_OP_*)."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(*cert)
    sctx.minimum_version = sctx.maximum_version = version
    if hrr:  # the client's default key share (X25519) is not acceptable: HelloRetryRequest
        sctx.set_ecdh_curve("secp384r1")
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    if keylog is not None:
        cctx.keylog_filename = str(keylog)
    if ciphers is not None:
        sctx.set_ciphers(ciphers)
        cctx.set_ciphers(ciphers)
    if client_options:
        cctx.options |= client_options
    if server_options:
        sctx.options |= server_options
    cctx.set_alpn_protocols(["http/1.1"])
    sctx.set_alpn_protocols(["http/1.1"])
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = cctx.wrap_bio(c_in, c_out, server_hostname=HOST)
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    out = Session()

    def pump() -> bool:
        moved = False
        for data, from_client, peer in ((c_out.read(), True, s_in), (s_out.read(), False, c_in)):
            if data:
                out.flights.append((from_client, data))
                peer.write(data)
                moved = True
        return moved

    def step(fn: object) -> bool:
        try:
            fn()  # type: ignore[operator]
        except ssl.SSLWantReadError:
            return False
        return True

    done = [False, False]
    for _ in range(20):
        for i, end in enumerate((client, server)):
            if not done[i]:
                done[i] = step(end.do_handshake)
        if not pump() and all(done):
            break
    assert all(done)
    for size in responses:
        if request_body:
            client.write(f"POST /{size} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(request_body)}\r\n\r\n"
                         .encode() + request_body)
        else:
            client.write(f"GET /{size} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        pump()
        got_req = b""
        while len(got_req) < 10 or (request_body and not got_req.endswith(request_body)):
            try:
                got_req += server.read(1 << 20)
            except ssl.SSLWantReadError:
                break
        assert got_req.startswith((b"GET /", b"POST /"))
        server.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * size)
        pump()
        got = b""
        while step(lambda: None):
            try:
                got += client.read(1 << 20)
            except ssl.SSLWantReadError:
                break
        assert got.endswith(b"x" * min(size, 10))
    step(client.unwrap)
    pump()
    step(server.unwrap)
    pump()
    out.version = client.version() or ""
    name = client.cipher()[0]  # type: ignore[index]
    out.cipher = next(c["id"] & 0xFFFF for c in cctx.get_ciphers() if c["name"] == name)
    return out


def tcp_packets(s: Session, plans: dict[int, dict[str, object]] | None = None,
                drop: tuple[int, int] | None = None, close: bool = True) -> Packets:
    """The session's flights as TCP segments, MSS-sized unless ``plans`` gives a flight's
    :meth:`TcpSession.send` arguments (first segment sizes, order, retransmissions);
    ``drop`` = (flight, segment) is left out of the capture."""
    t = TcpSession(CLIENT_IP, 50123, SERVER_IP, 443)
    pkts = t.handshake()
    for i, (from_client, data) in enumerate(s.flights):
        sent = t.send(data, from_client=from_client, **(plans or {}).get(i, {}))  # type: ignore[arg-type]
        if drop is not None and drop[0] == i:
            del sent[drop[1]]
        pkts += sent
    if close:
        pkts += t.close()
    return pkts


# --------------------------------------------------------------------------------------------
# The decoder, with and without a follower


class Recorder:
    """A TlsFollower that keeps every call."""

    def __init__(self) -> None:
        self.hellos: dict[int, tuple[TlsFlow, ClientHello]] = {}
        self.server_hellos: dict[int, list[ServerHello]] = defaultdict(list)
        self.records: dict[tuple[int, bool], list[TlsRecord]] = defaultdict(list)
        self.ends: dict[tuple[int, bool], str] = {}
        self.calls: list[str] = []

    def on_hello(self, conn: TlsFlow, hello: ClientHello, ts: float) -> None:
        assert conn.flow not in self.hellos
        self.hellos[conn.flow] = (conn, hello)
        self.calls.append("hello")

    def on_server_hello(self, flow: int, hello: ServerHello, ts: float) -> None:
        assert flow in self.hellos
        self.server_hellos[flow].append(hello)
        self.calls.append("server_hello")

    def on_record(self, flow: int, from_client: bool, record: TlsRecord, ts: float) -> None:
        assert flow in self.hellos and (flow, from_client) not in self.ends
        self.records[flow, from_client].append(record)
        self.calls.append("record")

    def on_end(self, flow: int, from_client: bool, reason: str) -> None:
        assert (flow, from_client) not in self.ends
        self.ends[flow, from_client] = reason
        self.calls.append("end")


def decode(frames: list[tuple[float, bytes]], linktype: int, follower: Recorder | None) -> PacketDecoder:
    dec = PacketDecoder(0, tls_follower=follower)
    for ts, frame in frames:
        dec.packet(ts, frame, linktype)
    dec.finish()
    return dec


def decode_packets(pkts: Packets, follower: Recorder | None = None) -> PacketDecoder:
    return decode(pkts, LINKTYPE_RAW, follower)


def read_pcap(path: Path, follower: Recorder | None = None) -> PacketDecoder:
    """The pcap's frames, as an independent reader (dpkt) sees them, through the decoder."""
    with open(path, "rb") as f:
        frames = [(float(ts), bytes(buf)) for ts, buf in dpkt.pcap.Reader(f)]
    return decode(frames, LINKTYPE_ETHERNET, follower)


def rebuild(records: list[TlsRecord]) -> bytes:
    """The direction's bytes, put back together from its records."""
    return b"".join(bytes([r.content_type]) + r.version.to_bytes(2, "big") + r.length.to_bytes(2, "big")
                    + r.payload for r in records)


def record_view(rec: Recorder, flow: int = 0) -> tuple[object, ...]:
    """Everything a follower was told about one connection."""
    return (rec.hellos[flow][1], rec.hellos[flow][1].random, rec.server_hellos[flow], rec.records[flow, True],
            rec.records[flow, False], rec.ends.get((flow, True)), rec.ends.get((flow, False)))


# --------------------------------------------------------------------------------------------
# tshark as the reference


@dataclass
class TsharkTls:
    records: dict[bool, list[tuple[int, int]]]  # from_client -> (content type, length), in order
    client_hellos: list[tuple[bytes, list[int]]]  # random, offered suites
    server_hellos: list[tuple[bytes, int, int | None]]  # random, suite, supported_versions' choice


def tshark_tls(path: Path) -> TsharkTls:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark is not installed (`make test` installs it: apt-get install tshark)")
    xml = subprocess.run([exe, "-n", "-r", str(path), "-Y", "tls", "-T", "pdml"], capture_output=True,
                         check=True, timeout=300).stdout
    out = TsharkTls({True: [], False: []}, [], [])
    for packet in ET.fromstring(xml).iter("packet"):
        sport = next(int(f.get("show", "")) for f in packet.iter("field") if f.get("name") == "tcp.srcport")
        for rec in (f for f in packet.iter("field") if f.get("name") == "tls.record"):
            ct = length = None
            for f in rec.iter("field"):
                name = f.get("name")
                if ct is None and name in ("tls.record.content_type", "tls.record.opaque_type"):
                    ct = int(f.get("show", ""))
                elif length is None and name == "tls.record.length":
                    length = int(f.get("show", ""))
            assert ct is not None and length is not None
            out.records[sport != 443].append((ct, length))
            for hs in (f for f in rec.iter("field") if f.get("name") == "tls.handshake"):
                vals: dict[str, list[str]] = defaultdict(list)
                for f in hs.iter("field"):
                    vals[f.get("name", "")].append(f.get("show", ""))
                if vals["tls.handshake.type"][:1] == ["1"]:
                    out.client_hellos.append((bytes.fromhex(vals["tls.handshake.random"][0].replace(":", "")),
                                              [int(v, 16) for v in vals["tls.handshake.ciphersuite"]]))
                elif vals["tls.handshake.type"][:1] == ["2"]:
                    chosen = vals["tls.handshake.extensions.supported_version"]
                    out.server_hellos.append((bytes.fromhex(vals["tls.handshake.random"][0].replace(":", "")),
                                              int(vals["tls.handshake.ciphersuite"][0], 16),
                                              int(chosen[0], 16) if chosen else None))
    return out


# --------------------------------------------------------------------------------------------
# Tests

VERSIONS = {"tls1.3": (ssl.TLSVersion.TLSv1_3, 0x0304, False), "tls1.2": (ssl.TLSVersion.TLSv1_2, 0x0303, False),
            "tls1.3-hello-retry": (ssl.TLSVersion.TLSv1_3, 0x0304, True)}


@pytest.mark.parametrize("kind", list(VERSIONS))
def test_records_and_hellos_match_tshark(tmp_path: Path, cert: tuple[Path, Path], kind: str) -> None:
    version, number, hrr = VERSIONS[kind]
    s = tls_session(cert, version, hrr=hrr)
    assert s.version == {0x0304: "TLSv1.3", 0x0303: "TLSv1.2"}[number]
    path = write_pcap(tmp_path / "s.pcap", tcp_packets(s))
    ref = tshark_tls(path)
    rec = Recorder()
    dec = read_pcap(path, rec)
    assert list(rec.hellos) == [0]
    conn, hello = rec.hellos[0]
    assert (conn.client_ip, conn.client_port, conn.server_ip, conn.server_port) == (CLIENT_IP, 50123, SERVER_IP, 443)

    # every record of each direction, as tshark frames them, and nothing else
    for from_client in (True, False):
        records = rec.records[0, from_client]
        assert [(r.content_type, r.length) for r in records] == ref.records[from_client]
        assert rebuild(records) == s.stream(from_client)
        assert [r.offset for r in records] == [sum(5 + q.length for q in records[:i]) for i in range(len(records))]
    ours = {c: rec.records[0, c] for c in (True, False)}
    assert {c: len(r) for c, r in ours.items()} == {c: len(r) for c, r in ref.records.items()}
    assert rec.ends == {(0, True): tls.END_CLOSED, (0, False): tls.END_CLOSED}

    # the hellos: what a decryption stage needs, as tshark reads them and as OpenSSL negotiated
    assert (hello.server_name, hello.alpn) == (HOST, ("http/1.1",))
    assert (hello.random, list(hello.cipher_suites)) == ref.client_hellos[0]
    server_hellos = rec.server_hellos[0]
    assert [(h.random, h.cipher_suite, h.version if h.version != h.legacy_version else None)
            for h in server_hellos] == ref.server_hellos
    assert [h.retry for h in server_hellos] == ([True, False] if hrr else [False])
    final = server_hellos[-1]
    assert (final.cipher_suite, final.version) == (s.cipher, number)
    assert final.alpn == ("http/1.1" if number == 0x0303 else None)  # in TLS 1.3 ALPN is encrypted
    if number == 0x0303:
        assert final.extended_master_secret  # OpenSSL offers and accepts RFC 7627
    # the order of the calls: the hello first, the ServerHello right after its record
    assert rec.calls[0] == "hello" and rec.calls.count("end") == 2
    sh_at = rec.calls.index("server_hello")
    assert rec.calls[sh_at - 1] == "record"
    # and the connection itself is the one the decoder reports without a follower, under the uid
    # the follower was told
    assert dec.connection_rows == read_pcap(path).connection_rows
    [(conn, _hello)] = rec.hellos.values()
    assert [row[0] for row in dec.connection_rows] == [conn.uid] == ["C0.0"]


@pytest.fixture(scope="module")
def sessions(cert: tuple[Path, Path]) -> dict[str, Session]:
    return {k: tls_session(cert, v[0], hrr=v[2], responses=(6000,)) for k, v in VERSIONS.items()}


@pytest.fixture(scope="module")
def references(sessions: dict[str, Session]) -> dict[str, tuple[object, ...]]:
    out = {}
    for kind, s in sessions.items():
        rec = Recorder()
        decode_packets(tcp_packets(s), rec)
        out[kind] = record_view(rec)
    return out


@st.composite
def segmentation(draw: st.DrawFn, s: Session) -> dict[int, dict[str, object]]:
    """Any byte boundary of a flight may be a segment boundary; segments may come out of order
    and twice."""
    plans: dict[int, dict[str, object]] = {}
    for i, (_, data) in enumerate(s.flights):
        points = sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=12))) if len(data) > 1 else []
        sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
        rest = len(data) - sum(sizes)
        n = len(sizes) + -(-rest // 1448)
        plans[i] = {"segments": sizes,
                    "order": draw(st.permutations(range(n)) | st.just(list(range(n)))),
                    "retransmit": draw(st.sets(st.integers(0, n - 1), max_size=3))}
    return plans


@pytest.mark.parametrize("kind", list(VERSIONS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_segmentation_gives_the_same_records(sessions: dict[str, Session],
                                                 references: dict[str, tuple[object, ...]], kind: str,
                                                 data: st.DataObject) -> None:
    s = sessions[kind]
    plans = data.draw(segmentation(s))
    rec = Recorder()
    decode_packets(tcp_packets(s, plans), rec)
    assert record_view(rec) == references[kind]


@pytest.mark.parametrize("kind", list(VERSIONS))
def test_record_stream_split_at_every_byte(sessions: dict[str, Session], kind: str) -> None:
    for from_client in (True, False):
        stream = sessions[kind].stream(from_client)
        whole = TlsRecordStream(read_server_hello=not from_client)
        reference = whole.feed(stream)
        assert whole.error is None and whole.offset == len(stream) and rebuild(reference) == stream
        for i in range(len(stream) + 1):
            rs = TlsRecordStream(read_server_hello=not from_client)
            assert rs.feed(stream[:i]) + rs.feed(stream[i:]) == reference, i
            assert (rs.records, rs.counts, rs.payload_bytes) == (whole.records, whole.counts, whole.payload_bytes)
        bytewise = TlsRecordStream(read_server_hello=not from_client)
        got: list[TlsRecord] = []
        for i in range(len(stream)):
            got += bytewise.feed(stream[i : i + 1])
            # never more than one record held (and a header): bounded memory
            assert len(bytewise._body) <= tls.MAX_RECORD and len(bytewise._hdr) < 5
        assert got == reference
        # lengths only: the same framing, no payload held
        lean = TlsRecordStream(read_server_hello=not from_client, keep_payload=False)
        got = []
        for i in range(0, len(stream), 7):
            got += lean.feed(memoryview(stream)[i : i + 7])
            assert not lean._body or lean._hs is not None  # only the server's hello is held
        assert [r._replace(payload=b"") for r in reference] == got
        assert lean.server_hello == whole.server_hello
        assert (whole.server_hello is not None) == (not from_client)


def test_record_stream_stops_at_what_is_not_tls() -> None:
    ok = b"\x17\x03\x03" + (tls.MAX_RECORD).to_bytes(2, "big") + bytes(tls.MAX_RECORD)
    too_long = b"\x17\x03\x03" + (tls.MAX_RECORD + 1).to_bytes(2, "big") + bytes(10)
    rs = TlsRecordStream()
    records = rs.feed(ok + too_long)
    assert [(r.content_type, r.length, r.offset) for r in records] == [(23, tls.MAX_RECORD, 0)]
    assert rs.error == f"not TLS: record length {tls.MAX_RECORD + 1} > {tls.MAX_RECORD}"
    assert rs.offset == len(ok)  # where the bad header starts
    assert rs.feed(ok) == [] and rs.records == 1  # stopped for good
    for head, reason in ((b"GET / HTTP/1.1\r\n", "not TLS: content type 71"),
                         (b"\x16\x02\x00\x00\x05", "not TLS: record version 0x0200"),
                         (b"\x17\x03\x05\x00\x01x", "not TLS: record version 0x0305")):
        rs = TlsRecordStream()
        for i in range(len(head)):  # the header may arrive a byte at a time
            assert rs.feed(head[i : i + 1]) == []
        assert rs.error == reason and rs.records == 0


def test_server_hello_parser_is_hostile_input_safe(sessions: dict[str, Session]) -> None:
    stream = sessions["tls1.2"].stream(False)
    msg = stream[5 : 5 + 4 + int.from_bytes(stream[6:9], "big")]
    hello = tls.parse_server_hello(msg)
    assert hello is not None and hello.version == 0x0303
    for cut in range(len(msg)):
        assert tls.parse_server_hello(msg[:cut]) is None  # every truncation (its length field says more)
    assert tls.parse_server_hello(b"\x01" + msg[1:]) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_bytes_never_raise(sessions: dict[str, Session], data: st.DataObject) -> None:
    """Real flights with bytes changed, cut or added: the parsers say no, never raise."""
    from_client = data.draw(st.booleans())
    stream = bytearray(sessions[data.draw(st.sampled_from(list(VERSIONS)))].stream(from_client)[:800])
    for _ in range(data.draw(st.integers(0, 6))):
        at = data.draw(st.integers(0, len(stream) - 1))
        stream[at] = data.draw(st.integers(0, 255))
    stream = stream[: data.draw(st.integers(0, len(stream)))] + data.draw(st.binary(max_size=64))
    rs = TlsRecordStream(read_server_hello=not from_client)
    step = data.draw(st.integers(1, 300))
    got = [r for i in range(0, len(stream), step) for r in rs.feed(bytes(stream[i : i + step]))]
    framed = sum(5 + r.length for r in got)
    assert [r.offset for r in got] == [sum(5 + q.length for q in got[:i]) for i in range(len(got))]
    if rs.error is None:  # all taken: whole records, then at most one record begun
        assert rs.offset == len(stream) and len(stream) - framed <= 5 + tls.MAX_RECORD
    else:  # stopped where the header that cannot be TLS begins
        assert rs.offset == framed and rs.error.startswith("not TLS")
    tls.parse_server_hello(bytes(stream[5:]))
    hello = tls.parse_client_hello(bytes(stream[5:]))
    if hello is not None:
        assert len(hello.random) == 32 and isinstance(hello.cipher_suites, tuple)


def test_client_hello_parameters(sessions: dict[str, Session]) -> None:
    stream = sessions["tls1.3"].stream(True)
    msg = tls.client_hello_from_records(stream)
    assert msg is not None
    hello = tls.parse_client_hello(msg)
    assert hello is not None and hello.random == msg[6:38] and 0x1302 in hello.cipher_suites
    assert hello == ClientHello(HOST, ("http/1.1",), False)  # equality is by what the hello names
    assert ClientHello(HOST, (), False).random == b"" and ClientHello(HOST, (), False).cipher_suites == ()


def test_a_lost_segment_loses_the_records_in_it_not_the_direction(cert: tuple[Path, Path]) -> None:
    # a 200 kB response (140 segments), one segment of it missing from the capture; then a second
    # request: past the hole the record stream finds the next record's start and goes on
    s = tls_session(cert, ssl.TLSVersion.TLSv1_3, responses=(200_000, 1000))
    big = max(range(len(s.flights)), key=lambda i: len(s.flights[i][1]))
    whole = Recorder()
    decode_packets(tcp_packets(s), whole)
    rec = Recorder()
    dec = decode_packets(tcp_packets(s, drop=(big, 20)), rec)
    assert rec.ends == {(0, False): tls.END_CLOSED, (0, True): tls.END_CLOSED}
    assert rec.records[0, True] == whole.records[0, True]
    want = [r[:6] for r in whole.records[0, False]]
    got = rec.records[0, False]
    # every record the hole did not touch is there, whole, at its place in the stream
    hole = sum(len(d) for c, d in s.flights[:big] if not c) + 20 * 1448
    touched = [r for r in want if r[4] < hole + 1448 and r[4] + 5 + r[3] > hole]
    assert len(touched) == 1
    assert [r[:6] for r in got] == [r for r in want if r not in touched]
    after = next(r for r in got if r.offset > hole)
    assert after.skipped > 0 and all(r.skipped == 0 for r in got if r is not after)
    # the counters are those of the same capture read without a follower
    assert dec.connection_rows == decode_packets(tcp_packets(s, drop=(big, 20))).connection_rows


def test_a_cut_segment_and_bytes_that_are_not_tls(cert: tuple[Path, Path]) -> None:
    s = tls_session(cert, ssl.TLSVersion.TLSv1_2, responses=(5000, 500))
    # the first segment of the server's 5000-byte response, cut by a snapshot length
    response = next(i for i, (c, d) in enumerate(s.flights) if not c and len(d) > 5000)
    t = TcpSession(CLIENT_IP, 50123, SERVER_IP, 443)
    pkts = t.handshake()
    for i, (from_client, data) in enumerate(s.flights):
        if i == response:
            target = len(pkts)
        pkts += t.send(data, from_client=from_client)
    pkts += t.close()
    rec = Recorder()
    dec = PacketDecoder(0, tls_follower=rec)
    for i, (ts, p) in enumerate(pkts):
        dec.packet(ts, p[:-100] if i == target else p, LINKTYPE_RAW)
    dec.finish()
    assert dec.cut == 1
    assert rec.ends == {(0, False): tls.END_CUT, (0, True): tls.END_CLOSED}
    assert rebuild(rec.records[0, True]) == s.stream(True)

    # a client that goes on in clear after its ClientHello: its side stops, the server's goes on
    hello = s.flights[0][1]
    t = TcpSession(CLIENT_IP, 50124, SERVER_IP, 443)
    pkts = t.handshake() + t.client_send(hello + b"GET / HTTP/1.1\r\n\r\n")
    pkts += t.server_send(s.flights[1][1]) + t.close()
    rec = Recorder()
    decode_packets(pkts, rec)
    assert rec.ends == {(0, True): "not TLS: content type 71", (0, False): tls.END_CLOSED}
    assert [r.content_type for r in rec.records[0, True]] == [22]
    assert rebuild(rec.records[0, False]) == s.flights[1][1]


def test_reset_and_end_of_capture(sessions: dict[str, Session]) -> None:
    s = sessions["tls1.3"]
    t = TcpSession(CLIENT_IP, 50123, SERVER_IP, 443)
    pkts = t.handshake()
    for from_client, d in s.flights[:2]:
        pkts += t.send(d, from_client=from_client)
    rec = Recorder()
    decode_packets(pkts + t.reset(), rec)
    assert rec.ends == {(0, True): tls.END_RESET, (0, False): tls.END_RESET}
    rec = Recorder()
    dec = PacketDecoder(0, tls_follower=rec)
    for ts, p in pkts:
        dec.packet(ts, p, LINKTYPE_RAW)
    assert dec.flows[0].state == TLS_FOLLOW and not rec.ends
    dec.finish()
    assert rec.ends == {(0, True): tls.END_OF_CAPTURE, (0, False): tls.END_OF_CAPTURE}
    assert rebuild(rec.records[0, False]) == s.flights[1][1]


@pytest.mark.parametrize("kind", list(VERSIONS))
def test_without_a_follower_nothing_changes(tmp_path: Path, sessions: dict[str, Session], kind: str) -> None:
    s = sessions[kind]
    pkts = tcp_packets(s, {0: {"segments": [7, 90]}})  # the ClientHello in three segments
    dec = PacketDecoder(0)
    hello_end = 5  # SYN, SYN-ACK, ACK, then the hello's three segments: the third completes it
    for i, (ts, p) in enumerate(pkts):
        dec.packet(ts, p, LINKTYPE_RAW)
        flow = dec.flows[0]
        # the connection is DONE from the segment that completes the ClientHello on, holding nothing
        assert (flow.state == DONE) == (i >= hello_end), i
        if flow.state == DONE:
            assert flow.cstream is flow.sstream is flow.head is flow.tls_in is flow.tls_out is None
    assert dec.flows[0].sni == HOST
    dec.finish()
    followed = decode_packets(pkts, Recorder())
    assert dec.connection_rows == followed.connection_rows
    assert (dec.cut, dec.malformed) == (followed.cut, followed.malformed) == (0, 0)
    row = dec.connection_rows[0]
    assert "tls" in row and HOST in row and ("http/1.1",) in row
    # and through the pcap reader: the same connection
    from datareach.testing.records import read

    conn = read(write_pcap(tmp_path / "c.pcap", pkts)).conn(443)
    assert (conn.sni, conn.alpn, conn.protocol, conn.packets_out, conn.packets_in) == (
        HOST, ("http/1.1",), "tls", sum(1 for _, p in pkts if p[20:22] == (50123).to_bytes(2, "big")),
        sum(1 for _, p in pkts if p[20:22] == (443).to_bytes(2, "big")))


def test_link_frames_are_followed_too(sessions: dict[str, Session]) -> None:
    """Ethernet-framed packets, as the readers pass them, give the same records as raw IP."""
    s = sessions["tls1.2"]
    pkts = tcp_packets(s)
    rec = Recorder()
    decode([(ts, link_frame(LINKTYPE_ETHERNET, ip)) for ts, ip in pkts], LINKTYPE_ETHERNET, rec)
    raw = Recorder()
    decode_packets(pkts, raw)
    assert record_view(rec) == record_view(raw)


def test_the_alpn_protocol_of_an_encrypted_extensions_message() -> None:
    alpn = b"\x00\x10\x00\x05\x00\x03\x02h2"
    ee = b"\x08" + (len(alpn) + 2).to_bytes(3, "big") + len(alpn).to_bytes(2, "big") + alpn
    assert tls.encrypted_extensions_alpn(ee) == "h2"
    assert tls.encrypted_extensions_alpn(ee + b"\x0b\x00\x00\x00") == "h2"  # (the next message follows)
    assert tls.encrypted_extensions_alpn(ee[:-1]) is None  # an extension that overruns the message
    assert tls.encrypted_extensions_alpn(b"\x0b" + ee[1:]) is None  # not EncryptedExtensions
