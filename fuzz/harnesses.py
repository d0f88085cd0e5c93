"""The harnesses: one per reader, dissector, the decoding chain, the loaders and the reports.

Each says where its seeds come from (real files of ``tests/data`` and ``examples/``, and
sessions built with :mod:`datareach.testing`, whose messages come from real implementations:
OpenSSL, dnspython, aioquic), what it runs, and which exceptions are the documented clean
rejection. Beyond "no exception", the targets check what the code promises:

* readers yield only records whose values fit their declaration (``row_problem``), and never
  reach their defensive guards (``entry could not be read (...)``: a bug of ours swallowed);
* the decoding chain never reaches its safety net (``decoding stopped by an internal error``);
* HTTP/1 streams give the same requests however the bytes are cut into segments;
* every report format renders the audit of any input.

Targets return a behaviour signature (record kinds, error message shapes): an input that gives
a new one is kept in the corpus and mutated further.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any, cast

from fuzz.engine import Harness, Violation

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
EXAMPLES = ROOT / "examples"

# -- scratch files -------------------------------------------------------------------------------


@functools.cache
def scratch_dir() -> Path:
    """A directory of this process for the files readers are given (in memory where possible;
    ``$DATAREACH_FUZZ_SCRATCH`` when set: libFuzzer's children end without exit handlers)."""
    given = os.environ.get("DATAREACH_FUZZ_SCRATCH")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        return Path(given)
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix=f"datareach-fuzz-{os.getpid()}-", dir=base))
    import atexit

    atexit.register(shutil.rmtree, path, True)
    return path


def scratch_file(data: bytes, name: str) -> Path:
    path = scratch_dir() / name
    path.write_bytes(data)
    return path


# -- shared checks -------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")
_GUARD_MESSAGES = ("could not be read (", "decoding stopped by an internal error")


def _shape(message: str) -> str:
    return _DIGITS.sub("#", message)[:48]


def check_records(records: Iterable[Any]) -> Hashable:
    """Every record a reader yields must fit its declaration; returns the run's signature."""
    from datareach.schema import (
        Connection,
        ConnectionBatch,
        Decryption,
        DnsAnswer,
        Exchange,
        InputError,
        PacketAccounting,
        fields,
        row_problem,
    )

    kinds: Counter[str] = Counter()
    shapes: set[str] = set()
    uids: set[str] = set()
    for rec in records:
        if isinstance(rec, Decryption):
            d = rec.to_dict()
            if d["unread"] < 0 or any(isinstance(v, int) and v < 0 for v in d.values()):
                raise Violation(f"impossible decryption counts: {d}")
            kinds["Decryption"] += 1
            continue
        if isinstance(rec, PacketAccounting):
            a = rec.to_dict()
            lists = (*a["not_ip"], *a["not_decoded"])
            if (min(a["decoded"]["frames"], a["decoded"]["bytes"]) < 0 or any(r["frames"] < 0 for r in lists)
                    or sum(r["frames"] for r in lists) > a["frames"]):
                raise Violation(f"impossible packet accounting: {a}")
            kinds["PacketAccounting"] += 1
            continue
        if isinstance(rec, ConnectionBatch):
            rows = rec.row_tuples()
            kind: type = Connection
        elif isinstance(rec, Connection | DnsAnswer | Exchange | InputError):
            kind = cast(type, type(rec))
            rows = [tuple(getattr(rec, f) for f in fields(kind))]
        else:
            raise Violation(f"a reader yielded a {type(rec).__name__}, which is not a record")
        for row in rows:
            problem = row_problem(kind, row)
            if problem is not None:
                raise Violation(f"bad record: {problem}")
            if kind is Connection:
                uid = row[0]
                if uid in uids:
                    raise Violation(f"two connections with the uid {uid!r}")
                uids.add(uid)
        kinds[kind.__name__] += len(rows)
        if isinstance(rec, InputError):
            if any(g in rec.message for g in _GUARD_MESSAGES):
                raise Violation(f"a defensive guard was reached: {rec.message[:300]}")
            shapes.add(_shape(rec.message) + ("!" if rec.fatal else ""))
        elif isinstance(rec, Exchange) and rec.decode_cuts:
            shapes.update("cut:" + _shape(c) for c in rec.decode_cuts)
    return (tuple(sorted((k, min(n, 4)) for k, n in kinds.items())), frozenset(shapes))


@functools.cache
def detector() -> Any:
    """One detector for the harnesses, with the example profile (known values and patterns)."""
    from datareach.detect.detector import Detector
    from datareach.detect.profile import load_profile

    return Detector(load_profile(EXAMPLES / "profile.toml"), plugins=False)


def detect_all(records: list[Any]) -> None:
    """Run the detect stage on each exchange, as an audit does where a request is read."""
    from datareach.schema import Exchange

    det = detector()
    for rec in records:
        if isinstance(rec, Exchange):
            rec.findings, rec.decode_cuts = det.detect(rec)
            for cut in rec.decode_cuts:
                if "decoding stopped by an internal error" in cut or "failed:" in cut:
                    raise Violation(f"the decoding chain's safety net was reached: {cut[:300]}")


# -- seeds: sessions built from real implementations ----------------------------------------------


def _gzip(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


_PROFILE_JSON = (b'{"gaid":"a3e3fce2-78b0-4105-ada0-748f79470c71","android_id":"6f1c2a9be4d07a35",'
                 b'"email":"Tester.WeatherApp@example.org","lat":52.516274,"lng":13.377704,'
                 b'"events":[{"n":"open","ts":1700000000}]}')


@functools.cache
def _packets() -> dict[str, list[tuple[float, bytes]]]:
    """IP packets of small sessions of every kind the capture readers take apart."""
    from datareach.testing.builders import (
        aioquic_initials,
        client_hello,
        dns_query,
        dns_response,
        tls_session,
    )
    from datareach.testing.capture import TcpSession, UdpFlow

    client = "192.168.1.23"
    out: dict[str, list[tuple[float, bytes]]] = {}
    out["tls"] = tls_session("www.example.com", segments=(100,))
    u = UdpFlow(client, 40000, "8.8.8.8", 53)
    out["dns"] = u.exchange(dns_query("api.example.com"), dns_response("api.example.com.", [
        ("api.example.com.", "CNAME", "edge.cdn.example.net."), ("edge.cdn.example.net.", "A", "93.184.216.34"),
        ("edge.cdn.example.net.", "AAAA", "2001:db8::1")]))
    s = TcpSession(client, 40001, "93.184.216.34", 80)
    body = _gzip(_PROFILE_JSON)
    req = (b"POST /v1/collect?gaid=a3e3fce2-78b0-4105-ada0-748f79470c71&x=%%41 HTTP/1.1\r\nHost: t.example.com\r\n"
           b"Content-Type: application/json\r\nContent-Encoding: gzip\r\nCookie: sid=abc; uid=6f1c2a9be4d07a35\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    out["http"] = (s.handshake() + s.send(req) + s.server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                   + s.send(b"GET /a HTTP/1.1\r\nHost: t.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n0\r\n\r\n") + s.close())
    q = UdpFlow(client, 40002, "142.250.185.99", 443)
    out["quic"] = [q.send(d) for d in aioquic_initials("quic.example.com")]
    s6 = TcpSession("2001:db8::23", 40003, "2001:db8::443", 443)
    out["tls6"] = s6.handshake() + s6.send(client_hello("v6.example.org", ["h2"])) + s6.close()
    t = TcpSession(client, 40004, "8.8.4.4", 53)
    msg = dns_response("tcp.example.com.", [("tcp.example.com.", "A", "203.0.113.9")])
    out["dnstcp"] = t.handshake() + t.send(b"\x00\x1e" + dns_query("tcp.example.com")[:30]) \
        + t.server_send(len(msg).to_bytes(2, "big") + msg) + t.close()
    return out


def _write_pcap(packets: list[tuple[float, bytes]], linktype: int = 1, *, droid: bool = False,
                big_endian: bool = False, nanosecond: bool = False) -> bytes:
    from datareach.testing.capture import PcapWriter, link_frame, pcapdroid_frame

    f = io.BytesIO()
    w = PcapWriter(f, linktype, nanosecond=nanosecond, big_endian=big_endian)
    for ts, ip in sorted(packets, key=lambda p: p[0]):
        w.write(ts, pcapdroid_frame(ip, 10123, "com.example.app") if droid else link_frame(linktype, ip))
    return f.getvalue()


def _write_pcapng(groups: list[tuple[int, list[tuple[float, bytes]]]], *, big_endian: bool = False) -> bytes:
    from datareach.testing.capture import PcapngWriter, link_frame

    f = io.BytesIO()
    w = PcapngWriter(f, big_endian=big_endian, comment="fuzz seed")
    for linktype, packets in groups:
        i = w.add_interface(linktype, tsresol=9 if linktype == 101 else 6, name=f"if{linktype}")
        for ts, ip in packets:
            w.write(ts, link_frame(linktype, ip), i)
    return f.getvalue()


@functools.cache
def pcap_seeds() -> list[bytes]:
    p = _packets()
    return [
        _write_pcap(p["tls"] + p["dns"]),
        _write_pcap(p["http"]),
        _write_pcap(p["quic"], 101),
        _write_pcap(p["dnstcp"] + p["tls6"], 113, big_endian=True, nanosecond=True),
        _write_pcap(p["dns"] + p["http"], 276),
        _write_pcap(p["tls"], 0),
        _write_pcap(p["http"] + p["dns"], droid=True),
        _write_pcap(p["tls6"], 229),
    ]


@functools.cache
def pcapng_seeds() -> list[bytes]:
    p = _packets()
    seeds = [
        _write_pcapng([(1, p["tls"] + p["http"]), (101, p["dns"])]),
        _write_pcapng([(113, p["quic"]), (1, p["dnstcp"])], big_endian=True),
        _write_pcapng([(276, p["tls6"] + p["dns"])]),
    ]
    return [*seeds, (EXAMPLES / "mobile-app-session.pcapng").read_bytes()]


@functools.cache
def har_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted((DATA / "har").glob("*.har"))]


@functools.cache
def mitm_file_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted((DATA / "mitm").glob("*.mitm"))]


# -- capture readers -----------------------------------------------------------------------------


def _read_capture(data: bytes, name: str) -> Hashable:
    from datareach.sources import pcap

    pcap.sniff(data[:64])
    records = list(pcap.read_sequential(scratch_file(data, name), 0))
    signature = check_records(records)
    detect_all(records)
    return signature


PCAP_TOKENS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xff\xff\x00\x00",
               b"\x08\x00", b"\x86\xdd", b"\x81\x00", b"\x45\x00", b"\x60\x00", b"\x00\x35", b"\x01\xbb",
               b"\x00\x50", b"\x16\x03\x01", b"\x01\x07\x20\x21", b"GET ", b"POST ", b"\r\n\r\n",
               b"Content-Length: ", b"Transfer-Encoding: chunked", b"Content-Encoding: gzip",
               b"\x1f\x8b\x08", b"\xc0\x00\x00\x00\x01", b"\x50\x18")
PCAPNG_TOKENS = (b"\x0a\x0d\x0d\x0a", b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d", b"\x01\x00\x00\x00",
                 b"\x06\x00\x00\x00", b"\x03\x00\x00\x00", b"\x02\x00\x00\x00", b"\x09\x00\x01\x00",
                 b"\x0e\x00\x08\x00", *PCAP_TOKENS)


# -- HAR ------------------------------------------------------------------------------------------


def _read_har(data: bytes) -> Hashable:
    from datareach.sources import har

    har.looks_like_har(data[:65536])
    records = list(har.read_har(scratch_file(data, "case.har"), 0))
    signature = check_records(records)
    detect_all(records)
    return signature


HAR_TOKENS = (b'"log"', b'"entries"', b'"request"', b'"response"', b'"url"', b'"headers"', b'"postData"',
              b'"text"', b'"encoding": "base64"', b'"params"', b'"cookies"', b'"serverIPAddress"',
              b'"connection"', b'"startedDateTime"', b'"httpVersion": "h3"', b'"_webSocketMessages"',
              b'"bodySize"', b'"pages"', b'"creator"', b'"HTTP Toolkit"', b'"pageref"', b'"_content"',
              b'"status"', b"[", b"]", b"{", b"}", b'"', b"\\u0000", b"\\udcff", b"\\ud800", b"null", b"true",
              b"-1", b"1e999", b"9007199254740993", b'"https://', b'"data:', b'"[::1]"', b"\xef\xbb\xbf")


# -- mitmproxy ------------------------------------------------------------------------------------


def _mitm_python() -> str | None:
    try:
        from datareach.sources.mitm import MitmproxyNotFound, find_mitmproxy_python
    except ImportError:  # pragma: no cover
        return None
    try:
        return find_mitmproxy_python()
    except MitmproxyNotFound:
        return None


def _mitm_unavailable() -> str | None:
    return None if _mitm_python() else "no mitmproxy found (make installs it into .venv/mitmproxy)"


class _MitmWorker:
    """mitmproxy's reader in its own Python, kept running: one flow file per request."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> subprocess.Popen[str]:
        python = _mitm_python()
        if python is None:
            raise RuntimeError("mitmproxy is not installed")
        from datareach.sources.mitm import FLOWCONV

        worker = Path(__file__).with_name("mitm_worker.py")
        self.proc = subprocess.Popen([python, "-I", str(worker), str(FLOWCONV)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        return self.proc

    def read(self, path: Path) -> dict[str, Any]:
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self.start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(str(path) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except BaseException:
            self.stop()  # a timeout or broken pipe: the worker's state is unknown
            raise
        if not line:
            code = proc.wait()
            self.proc = None
            raise Violation(f"mitmproxy's flow reader process died (exit status {code})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


_WORKER = _MitmWorker()


def _flow_records(lines: list[str]) -> list[Any]:
    """What :func:`datareach.sources.mitm.read_flows` makes of the bridge's lines (without its
    defensive guard: a bug of ours must show)."""
    from datareach.schema import InputError
    from datareach.sources import mitm

    state = mitm.FlowState(0)
    out: list[Any] = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or rec.get("kind") in ("start", "end"):
            continue
        if rec.get("kind") == "error":
            out.append(InputError(str(rec.get("message"))[:400], offset=mitm._int(rec.get("offset")), fatal=True))
            break
        out.extend(mitm.records_from_flow(rec, state))
    out.extend(state.connections())
    return out


def _read_mitm_file(data: bytes) -> Hashable:
    from datareach.sources import mitm

    mitm.looks_like_flows(data[:65536])
    answer = _WORKER.read(scratch_file(data, "case.mitm"))
    if "crash" in answer:
        raise Violation(f"mitm_bridge.read_file raised: {answer['crash'][-600:]}")
    records = _flow_records(answer["lines"])
    signature = check_records(records)
    detect_all(records)
    return signature


@functools.cache
def mitm_record_seeds() -> list[bytes]:
    """The bridge's JSON records of the flow files in tests/data/mitm (one record per seed)."""
    seeds: list[bytes] = []
    if _mitm_python() is not None:
        try:
            for data in mitm_file_seeds():
                answer = _WORKER.read(scratch_file(data, "seed.mitm"))
                seeds += [line.encode() for line in answer.get("lines", [])
                          if '"kind": "start"' not in line and '"kind": "end"' not in line]
        finally:
            _WORKER.stop()
    if not seeds:  # what the bridge writes, by hand
        seeds = [json.dumps({
            "kind": "http", "v": 1, "id": "f1", "scheme": "https", "host": "api.example.com",
            "pretty_host": "api.example.com", "port": 443, "path": "/v1?gaid=x", "method": "POST",
            "http_version": "HTTP/2.0", "headers": [["content-type", "application/json"]],
            "body": "eyJhIjoxfQ==", "body_size": 7, "status": 200, "response_size": 10,
            "server_ip": "93.184.216.34", "server_port": 443, "client_ip": "10.0.0.2", "client_port": 5000,
            "ts": 1700000000.0, "ts_last": 1700000001.0, "server_id": "s1", "sni": "api.example.com",
            "alpn": "h2", "tls": True, "request_bytes": 100, "response_bytes": 50, "n": 1, "offset": 0,
        }).encode(), json.dumps({
            "kind": "dns", "v": 1, "questions": ["a.example.com"], "answers": [
                ["a.example.com", "CNAME", "b.example.net", 60], ["b.example.net", "A", "192.0.2.1", 60]],
            "server_ip": "8.8.8.8", "server_port": 53, "ts": 1.0, "n": 2}).encode()]
    return seeds


def _mitm_record(data: bytes) -> Hashable:
    try:
        rec = json.loads(data)
    except (ValueError, RecursionError):
        return "not json"
    if not isinstance(rec, dict):
        return "not a dict"
    from datareach.sources import mitm

    state = mitm.FlowState(0)
    records = [*mitm.records_from_flow(rec, state), *state.connections()]
    mitm.exchange_from_record(rec)
    signature = check_records(records)
    detect_all(records)
    return signature


MITM_TOKENS = (b'"kind"', b'"http"', b'"dns"', b'"tcp"', b'"udp"', b'"websocket"', b'"headers"', b'"body"',
               b'"pretty_host"', b'"host"', b'"port"', b'"path"', b'"status"', b'"server_ip"', b'"answers"',
               b'"CNAME"', b'"AAAA"', b'"::ffff:1.2.3.4"', b'"[::1]"', b"-1", b"1e300", b"null", b"[]", b"{}",
               b"9007199254740993", b'"ts"', b'"ts_last"', b'"server_id"')
MITM_FILE_TOKENS = (b"0:~", b"1:0#", b"4:true!", b"5:false!", b"0:]", b"0:}", b"7:version;", b"4:type;",
                    b"4:http;", b"7:request;", b"8:response;", b"7:content;", b"7:headers;", b"6:client;",
                    b"6:server;", b"3:dns;", b"3:tcp;", b"99999999:", b",", b";", b"#", b"^", b"!", b"~", b"}", b"]")


# -- dissectors -----------------------------------------------------------------------------------


@functools.cache
def dns_seeds() -> list[bytes]:
    from datareach.testing.builders import dns_query, dns_response

    return [
        dns_response("api.example.com.", [("api.example.com.", "A", "93.184.216.34")]),
        dns_response("www.example.org.", [("www.example.org.", "CNAME", "a.cdn.example.net."),
                                          ("a.cdn.example.net.", "CNAME", "b.cdn.example.net."),
                                          ("b.cdn.example.net.", "AAAA", "2001:db8::7")], "AAAA"),
        dns_response("multi.example.com.", [("multi.example.com.", "A", f"192.0.2.{i}") for i in range(1, 9)]),
        dns_query("q.example.com"),
    ]


def _dns(data: bytes) -> Hashable:
    from datareach.dissect import dns

    resp = dns.parse_response(data)
    if resp is None:
        return None
    chains = resp.chains()
    for asked, rtype, address, ttl, chain in chains:
        if rtype not in ("A", "AAAA") or not isinstance(address, str) or not chain or ttl < 0:
            raise Violation(f"odd DNS answer {asked!r} {rtype!r} {address!r} {ttl!r} {chain!r}")
    return (len(resp.addresses) > 0, len(resp.cnames) > 0, resp.qname is not None, min(len(chains), 3))


@functools.cache
def tls_seeds() -> list[bytes]:
    from datareach.testing.capture import openssl_client_hello

    hello = openssl_client_hello("www.example.com", ["h2", "http/1.1"])
    # a ServerHello record (TLS 1.2 layout, extensions EMS and ETM) and an application data record
    body = (b"\x03\x03" + bytes(range(32)) + b"\x20" + bytes(32) + b"\xc0\x2f\x00"
            + b"\x00\x08" + b"\x00\x17\x00\x00" + b"\x00\x16\x00\x00")
    server_hello = b"\x16\x03\x03" + struct.pack(">H", len(body) + 4) + b"\x02" + len(body).to_bytes(3, "big") + body
    return [hello, hello[:300], server_hello + b"\x17\x03\x03\x00\x05hello",
            openssl_client_hello("a" * 60 + ".example.net", [f"p{i}" for i in range(30)])]


def _tls(data: bytes) -> Hashable:
    from datareach.dissect import tls

    sig: list[object] = []
    try:
        msg = tls.client_hello_from_records(data)
    except tls.NeedMore:
        msg = None
        sig.append("more")
    if msg is not None:
        hello = tls.parse_client_hello(msg)
        sig.append(hello is not None and hello.server_name is not None)
        if hello is not None:
            hello.random  # noqa: B018 - the properties parse too
            hello.cipher_suites  # noqa: B018
    tls.parse_client_hello(data[5:])
    tls.parse_client_hello(data)
    server = tls.parse_server_hello(data[5:])
    sig.append(server is not None)
    for read_server_hello in (False, True):
        stream = tls.TlsRecordStream(read_server_hello=read_server_hello)
        step = 1 + (data[0] if data else 0) % 97
        records = 0
        for i in range(0, len(data), step):
            records += len(stream.feed(data[i:i + step]))
            if stream.error is not None:
                break
        sig.append((min(records, 3), stream.error))
    return tuple(sig)


def _split_datagrams(data: bytes) -> list[bytes]:
    return [d for d in data.split(b"\xffDG\xff") if d][:8]


@functools.cache
def quic_seeds() -> list[bytes]:
    from datareach.dissect.quic import QUIC_V2
    from datareach.testing.builders import aioquic_initials

    return [b"\xffDG\xff".join(aioquic_initials("quic.example.com")),
            b"\xffDG\xff".join(aioquic_initials("big.example.com", big=True)),
            b"\xffDG\xff".join(aioquic_initials("v2.example.com", version=QUIC_V2))]


def _quic(data: bytes) -> Hashable:
    from datareach.dissect.quic import QuicInitialAssembler, looks_like_quic_initial

    asm = QuicInitialAssembler()
    hello = None
    for d in _split_datagrams(data):
        looks_like_quic_initial(d)
        if asm.done:
            break
        hello = asm._feed(d)  # not feed(): its catch-all would hide a bug
    return (hello is not None, asm.version, asm.done)


_QUIC_DCID = bytes.fromhex("8394c8f03e515708")


def _seal_initial(payload: bytes, pn: int, dcid: bytes = _QUIC_DCID, version: int = 1) -> bytes:
    """A client Initial packet carrying ``payload`` (frames), protected as RFC 9001 s5 says."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from datareach.dissect.quic import client_initial_keys

    keys = client_initial_keys(dcid, version)
    if len(payload) < 20:
        payload = payload + bytes(20 - len(payload))  # PADDING: the header-protection sample needs it
    pn_len = 2
    first = 0xC0 | (0x10 if version != 1 else 0) | (pn_len - 1)
    length = pn_len + len(payload) + 16
    header = (bytes([first]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid + b"\x00" + b"\x00"
              + (0x4000 | length).to_bytes(2, "big") + (pn & 0xFFFF).to_bytes(2, "big"))
    nonce = (int.from_bytes(keys.iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(keys.key).encrypt(nonce, payload, header)
    sample = sealed[4 - pn_len:4 - pn_len + 16]
    enc = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    hdr = bytearray(header)
    hdr[0] ^= mask[0] & 0x0F
    for i in range(pn_len):
        hdr[-pn_len + i] ^= mask[1 + i]
    return bytes(hdr) + sealed


@functools.cache
def quic_frame_seeds() -> list[bytes]:
    """The decrypted payloads (frames) of aioquic's Initial packets."""
    from datareach.dissect.quic import QuicInitialAssembler, parse_long_header

    seeds = []
    for seed in quic_seeds():
        payloads = []
        asm = QuicInitialAssembler()
        for d in _split_datagrams(seed):
            hdr = parse_long_header(d, 0)
            if hdr is None:
                continue
            plain = asm._open_initial(d, 0, hdr)
            if plain is not None:
                payloads.append(plain.rstrip(b"\x00") or plain[:1])
        seeds.append(b"\xffDG\xff".join(payloads))
    return seeds


def _quic_frames(data: bytes) -> Hashable:
    from datareach.dissect.quic import QuicInitialAssembler

    asm = QuicInitialAssembler()
    hello = None
    for pn, payload in enumerate(_split_datagrams(data)):
        if asm.done:
            break
        hello = asm._feed(_seal_initial(payload, pn))
        if asm.version is None:
            raise Violation("an Initial packet sealed with the right keys did not open")
    return (hello is not None, hello.server_name if hello is not None else None, asm.done)


QUIC_TOKENS = (b"\x06\x00", b"\x06\x40\x00", b"\x02\x00\x00\x00\x00", b"\x03", b"\x01", b"\x00\x00\x00",
               b"\x01\x00\x01\xfc", b"\x00\x00\x00\x10", b"\xffDG\xff", b"\x80\x00\x00\x00", b"\xc0\x00\x00\x00")
TLS_TOKENS = (b"\x16\x03\x01", b"\x16\x03\x03", b"\x17\x03\x03", b"\x14\x03\x03\x00\x01\x01", b"\x01\x00",
              b"\x02\x00", b"\x00\x00", b"\x00\x10", b"\xfe\x0d", b"\x00\x2b", b"\x00\x17\x00\x00", b"\xff\xff",
              b"\x00\x0e\x00\x00\x0b", b"\x15\x03\x03\x00\x02")
DNS_TOKENS = (b"\xc0\x0c", b"\xc0\x00", b"\xff\xff", b"\x00\x01\x00\x01", b"\x00\x1c\x00\x01",
              b"\x00\x05\x00\x01", b"\x81\x80", b"\x3f", b"\x00")


# -- PCAPdroid ------------------------------------------------------------------------------------


@functools.cache
def pcapdroid_seeds() -> list[bytes]:
    from datareach.testing.capture import pcapdroid_frame

    out = []
    for ts_ip in (_packets()["http"][3], _packets()["dns"][0], _packets()["tls6"][0]):
        out.append(pcapdroid_frame(ts_ip[1], 10123, "com.example.weather"))
    out.append(pcapdroid_frame(_packets()["tls"][3][1], -1, ""))
    out.append(pcapdroid_frame(_packets()["dns"][1][1], 2**31 - 1, "ünïcödé-app-name-that-is-long"))
    return out


def _pcapdroid(data: bytes) -> Hashable:
    from datareach.dissect import pcapdroid
    from datareach.dissect.packets import PacketDecoder

    cut, uid, app = pcapdroid.split_trailer(data)
    ok = pcapdroid.fcs_ok(data)
    if uid is not None:
        if cut != len(data) - pcapdroid.TRAILER_LEN or app is None or len(app.encode("utf-8", "surrogatepass")) > 60:
            raise Violation(f"split_trailer gave ({cut}, {uid}, {app!r}) for {len(data)} bytes")
    elif cut != len(data) or app is not None:
        raise Violation(f"split_trailer gave ({cut}, {uid}, {app!r}) for a frame without a trailer")
    dec = PacketDecoder(0)
    dec.packet(1.0, data[:cut], 1, app or None)
    dec.packet(2.0, data[:cut], 1, app or None)
    dec.finish()
    return (uid is not None, ok, check_records(dec.records))


# -- HTTP/1 ---------------------------------------------------------------------------------------


HTTP_SEEDS = (
    b"GET /a?x=1 HTTP/1.1\r\nHost: t.example\r\n\r\n"
    b"POST /collect HTTP/1.1\r\nHost: t.example\r\nContent-Length: 11\r\n\r\nhello world"
    b"POST /batch HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    b"HEAD /h HTTP/1.1\r\nHost: t.example\r\n\r\n",
    b"\x00HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil close",
    b"PUT /x HTTP/1.0\r\nContent-Length: 5, 5\r\nX-Long: " + b"v" * 300 + b"\r\n\r\n12345",
    b"POST /big HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 70000 + b"\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\n\r\n",
)
HTTP_TOKENS = (b"\r\n", b"\r\n\r\n", b"GET ", b"POST ", b"HEAD ", b" HTTP/1.1", b"HTTP/1.1 200 OK",
               b"Content-Length: ", b"Transfer-Encoding: chunked", b"0\r\n\r\n", b"ffffffff\r\n", b"-1",
               b";ext=", b": ", b"100 Continue", b"204", b"304", b"101")


def _segments(data: bytes, seed: int) -> list[bytes]:
    sizes = (1, 2, 7, 13, 64, 1000, 4096, 65537)
    step = sizes[seed % len(sizes)]
    return [data[i:i + step] for i in range(0, len(data), step)] or [b""]


def _requests(data: bytes, pieces: list[bytes], cap: int) -> tuple[list[tuple[Any, ...]], bool]:
    from datareach.dissect.http1 import RequestStream

    s = RequestStream(body_cap=cap)
    got = []
    for piece in pieces:
        got += s.feed(piece)
    last = s.flush()
    reqs = [(r.method, r.target, r.version, tuple(r.headers), r.body, r.body_truncated, r.complete, r.head_cut,
             r.head_dropped) for r in [*got, *([last] if last else [])]]
    return reqs, s.broken


def _http1(data: bytes) -> Hashable:
    from datareach.dissect.http1 import ResponseStream, looks_like_http_request

    mode = data[0] if data else 0
    body = data[1:]
    looks_like_http_request(body)
    cap = (1 << 20) if mode & 1 else 16
    if body[:5] == b"HTTP/" or mode & 2:
        r = ResponseStream()
        r.head_methods = [bool(mode & 4)] * 4
        out = []
        for piece in _segments(body, mode):
            out += r.feed(piece)
        whole = ResponseStream()
        whole.head_methods = [bool(mode & 4)] * 4
        once = whole.feed(body)
        a = [(x.status, x.body_size) for x in out]
        b = [(x.status, x.body_size) for x in once]
        if a != b[:len(a)] and not r.broken and not whole.broken:
            raise Violation(f"responses depend on the segmentation: {a[:3]} != {b[:3]}")
        return ("response", min(len(out), 3), r.broken)
    whole_reqs, whole_broken = _requests(body, [body], cap)
    cut_reqs, cut_broken = _requests(body, _segments(body, mode), cap)
    if whole_reqs != cut_reqs and not whole_broken and not cut_broken:
        raise Violation("requests depend on the segmentation: "
                        f"{[r[:2] for r in whole_reqs][:3]} != {[r[:2] for r in cut_reqs][:3]}")
    return ("request", min(len(whole_reqs), 3), whole_broken, any(r[7] for r in whole_reqs))


# -- the decoding chain ---------------------------------------------------------------------------

_CTYPES = ("", "application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=XyZ",
           "application/grpc", "application/x-protobuf", "text/plain", "application/grpc-web+proto",
           'multipart/mixed; boundary="a b\\"c"', "application/x-ndjson")
_CODINGS = ("", "gzip", "deflate", "br", "zstd", "gzip, gzip", "identity", "x-gzip", "br, gzip", "snappy")


@functools.cache
def decode_seeds() -> list[bytes]:
    import base64

    import brotli  # type: ignore[import-untyped]
    import zstandard

    from datareach.testing import protobuf

    jwt = (base64.urlsafe_b64encode(b'{"alg":"HS256"}').rstrip(b"=") + b"."
           + base64.urlsafe_b64encode(_PROFILE_JSON).rstrip(b"=") + b".c2ln")
    pb = (protobuf.message([(1, "gaid"), (2, "a3e3fce2-78b0-4105-ada0-748f79470c71"),
                            (4, [(1, "Tester.WeatherApp@example.org"), (2, 7)])])
          + protobuf.field_double(3, 52.516274) + protobuf.field_float(5, 13.377704))
    multipart = (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f.json\"\r\n"
                 b"Content-Type: application/json\r\n\r\n" + _PROFILE_JSON + b"\r\n--XyZ\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(_PROFILE_JSON) + b"\r\n--XyZ--\r\n")

    def case(ctype: int, coding: int, body: bytes) -> bytes:
        return bytes([ctype, coding]) + body

    return [
        case(1, 0, _PROFILE_JSON),
        case(1, 1, _gzip(_PROFILE_JSON)),
        case(1, 3, brotli.compress(_PROFILE_JSON)),
        case(1, 4, zstandard.ZstdCompressor().compress(_PROFILE_JSON)),
        case(2, 0, b"gaid=a3e3fce2-78b0-4105-ada0-748f79470c71&email=Tester.WeatherApp%40example.org&j=" + jwt),
        case(3, 0, multipart),
        case(5, 0, pb),
        case(4, 0, b"\x00" + len(pb).to_bytes(4, "big") + pb + b"\x01" + len(_gzip(pb)).to_bytes(4, "big") + _gzip(pb)),
        case(0, 0, base64.b64encode(_gzip(_PROFILE_JSON))),
        case(6, 0, _PROFILE_JSON.hex().encode()),
        case(9, 0, _PROFILE_JSON + b"\n" + _PROFILE_JSON + b"\n"),
        case(0, 2, zlib.compress(b"lat=52.516274&lng=13.377704")),
    ]


def _decode(data: bytes) -> Hashable:
    from datareach.detect.decode import decode_exchange
    from datareach.schema import Exchange

    ctype = _CTYPES[data[0] % len(_CTYPES)] if data else ""
    coding = _CODINGS[data[1] % len(_CODINGS)] if len(data) > 1 else ""
    body = data[2:]
    tail = body[-200:].decode("latin-1")
    headers = [("Content-Type", ctype), ("Content-Encoding", coding), ("Cookie", "sid=" + tail[:60] + "; b=1"),
               ("Authorization", "Bearer " + tail[60:120]), ("X-Data", tail[120:])]
    if len(data) > 2 and data[2] & 1:
        headers.append(("grpc-encoding", "gzip"))
    ex = Exchange(ts=0.0, scheme="https", method="POST", host="api.example.com",
                  url="https://api.example.com/v1/" + tail[:40] + "?q=" + tail[40:100], target="/",
                  http_version="HTTP/1.1", request_headers=headers, request_body=body)
    decoded = decode_exchange(ex)
    for cut in decoded.cuts:
        if "decoding stopped by an internal error" in cut:
            raise Violation(f"the decoding chain's safety net was reached: {cut[:300]}")
    findings, cuts = detector().detect(ex)
    labels = frozenset(layer.encoding[-1].split(" ")[0].split("[")[0] for layer in decoded.layers)
    return (labels, frozenset(f.data_type for f in findings), frozenset(_shape(c)[:20] for c in cuts))


DECODE_TOKENS = (b"{", b"}", b"[", b"]", b'"', b"%", b"%25", b"%2", b"=", b"&", b"+", b"\\u00", b"eyJ", b".",
                 b"\x1f\x8b\x08\x00", b"\x78\x9c", b"\x28\xb5\x2f\xfd", b"\r\n\r\n", b"--XyZ", b"--XyZ--",
                 b"\n", b"0a1b2c3d4e5f6a7b", b"QUFBQUFBQUFB", b"\x0a\x05", b"\x12\x04", b"\x08\x96\x01",
                 b"a3e3fce2-78b0-4105-ada0-748f79470c71", b"Tester.WeatherApp@example.org", b"52.516274",
                 b"13.377704", b"6f1c2a9be4d07a35", b"Content-Disposition: form-data; name=")


# -- loaders ---------------------------------------------------------------------------------------


@functools.cache
def policy_seeds() -> list[bytes]:
    from datareach.assess.policy import PRESET_DIR

    seeds = [p.read_bytes() for p in sorted(PRESET_DIR.glob("*.toml"))]
    seeds.append(b"[policy]\nid = 'fuzz'\nname = 'Fuzz'\nextends = ['us-padfa']\n\n[[rule]]\nid = 'r1'\n"
                 b"action = 'deny'\ntitle = 't'\n\n[[override]]\nrule = 'r1'\naction = 'off'\n\n"
                 b"[[allow]]\nhosts = ['*.example.com']\n")
    return seeds


def _policy(data: bytes) -> Hashable:
    from datareach.assess.policy import load_policy

    policy = load_policy(scratch_file(data, "policy.toml"))
    return (len(policy.rules) > 0, len(policy.allow) > 0, len(policy.extends))


def _profile(data: bytes) -> Hashable:
    from datareach.detect.detector import Detector
    from datareach.detect.profile import load_profile
    from datareach.schema import Exchange

    profile = load_profile(scratch_file(data, "profile.toml"))
    det = Detector(profile, plugins=False, engine="portable")
    value = profile.items()[0][1] if profile.items() else "x"
    ex = Exchange(ts=0.0, scheme="https", method="POST", host="h.example", url="https://h.example/?v=" + value,
                  target="/", http_version="HTTP/1.1", request_headers=[("X-V", value)],
                  request_body=json.dumps({"v": value, "lat": profile.latitude, "lng": profile.longitude}).encode())
    findings, _cuts = det.detect(ex)
    return (len(det.forms) > 0, frozenset(f.data_type for f in findings))


@functools.cache
def profile_seeds() -> list[bytes]:
    return [(EXAMPLES / "profile.toml").read_bytes(),
            b'advertising_id = "A3E3FCE2-78B0-4105-ADA0-748F79470C71"\nimei = "490154203237518"\n'
            b'mac = "3c:5a:b4:01:02:03"\nphone = "+44 7700 900123"\nname = "Jane Q Tester"\n'
            b'email = "jane.tester+tag@gmail.com"\nserial = "R58M12ABCDE"\nlatitude = -33.8688\n'
            b'longitude = 151.2093\nip = "2001:db8::1"\n[custom]\naccount_id = "u-829301"\npin = 1234\n']


TOML_TOKENS = (b"[policy]", b"[[rule]]", b"[[allow]]", b"[[override]]", b"id = ", b"action = 'deny'",
               b"extends = ['us-padfa']", b"extends = ['policy.toml']", b"jurisdictions = ['CN']", b"= [",
               b"= '", b'= """', b"= 1e309", b"= -0.0", b"= nan", b"= inf", b"1979-05-27", b"[custom]", b"\\u0000",
               b"latitude = ", b"longitude = ", b"phone = '+", b"mac = '", b"imei = '", b"email = '", b"\xff")


# -- the whole audit and the reports --------------------------------------------------------------


@functools.cache
def audit_seeds() -> list[bytes]:
    return [pcap_seeds()[1], pcap_seeds()[0], pcap_seeds()[6], pcapng_seeds()[0], har_seeds()[0],
            har_seeds()[-1]]


@functools.cache
def _audit_options() -> tuple[Any, list[Any]]:
    from datareach.assess.policy import load_policy
    from datareach.detect.profile import load_profile

    return load_profile(EXAMPLES / "profile.toml"), [load_policy(p) for p in ("us-doj-bulk-data", "eu-gdpr-transfers")]


def _audit(data: bytes) -> Hashable:
    import datareach
    from datareach.report.formats import BUILTIN_FORMATS

    suffix = "har" if data[:1] in (b"{", b" ", b"\xef") else "cap"
    profile, policies = _audit_options()
    result = datareach.audit([scratch_file(data, f"audit.{suffix}")], profile=profile, policies=policies)
    doc = result.to_dict()
    for fmt in BUILTIN_FORMATS:
        text = fmt.render(doc)
        if not isinstance(text, str):
            raise Violation(f"the {fmt.name} report is a {type(text).__name__}")
        render_terminal = getattr(fmt, "render_terminal", None)
        if render_terminal is not None:
            render_terminal(doc, color=True)
        if fmt.name == "json":
            json.loads(text)
    return (len(doc.get("destinations", [])) > 0, len(doc.get("findings", [])) > 0,
            frozenset(_shape(e.get("message", ""))[:24] for e in doc.get("input_errors", []) or []))


# -- the registry ----------------------------------------------------------------------------------


def _policy_clean() -> tuple[type[BaseException], ...]:
    from datareach.assess.policy import PolicyError

    return (PolicyError,)


def _profile_clean() -> tuple[type[BaseException], ...]:
    from datareach.detect.profile import ProfileError

    return (ProfileError,)


def _lazy(fn: Callable[[], tuple[type[BaseException], ...]]) -> tuple[type[BaseException], ...]:
    return fn()


def _close_worker() -> None:
    _WORKER.stop()


def all_harnesses() -> dict[str, Harness]:
    """Every harness by name, in the order they run."""
    mb = 1 << 20
    harnesses = [
        Harness("pcap", "classic pcap files through the capture reader, the dissectors and detection",
                pcap_seeds, lambda d: _read_capture(d, "case.pcap"), dictionary=PCAP_TOKENS, max_len=1 << 16),
        Harness("pcapng", "pcapng files (sections, interfaces, options, block kinds) likewise",
                pcapng_seeds, lambda d: _read_capture(d, "case.pcapng"), dictionary=PCAPNG_TOKENS,
                max_len=1 << 17),
        Harness("har", "HAR files through the HAR reader (and its format sniff) and detection",
                har_seeds, _read_har, dictionary=HAR_TOKENS, max_len=1 << 16),
        Harness("mitm-record", "the JSON records of mitmproxy flows into datareach's records (in process)",
                mitm_record_seeds, _mitm_record, dictionary=MITM_TOKENS, max_len=1 << 14),
        Harness("mitm-file", "mitmproxy flow files read by mitmproxy's own reader (in its Python) and turned "
                "into records", mitm_file_seeds, _read_mitm_file, dictionary=MITM_FILE_TOKENS, max_len=1 << 15,
                unavailable=_mitm_unavailable, close=_close_worker, timeout=20.0),
        Harness("pcapdroid", "frames with and without the PCAPdroid trailer", pcapdroid_seeds, _pcapdroid,
                dictionary=(b"\x01\x07\x20\x21", b"\xff\xff\xff\xff", b"\x00" * 20), max_len=4096),
        Harness("dns", "DNS messages (compression pointers, CNAME chains)", dns_seeds, _dns,
                dictionary=DNS_TOKENS, max_len=4096),
        Harness("tls", "TLS records: ClientHello across records, ServerHello, the record stream",
                tls_seeds, _tls, dictionary=TLS_TOKENS, max_len=1 << 14),
        Harness("quic", "QUIC datagrams as captured (headers, coalescing; the AEAD rejects most mutations)",
                quic_seeds, _quic, dictionary=QUIC_TOKENS, max_len=8192),
        Harness("quic-frames", "decrypted QUIC Initial payloads (frames, CRYPTO reassembly), sealed again with "
                "the real keys", quic_frame_seeds, _quic_frames, dictionary=QUIC_TOKENS, max_len=8192),
        Harness("http1", "HTTP/1 request and response streams, same result however segmented",
                lambda: list(HTTP_SEEDS), _http1, dictionary=HTTP_TOKENS, max_len=1 << 17, memory_every=8),
        Harness("decode", "the decoding chain and the detectors on one request (body, headers, URL)",
                decode_seeds, _decode, dictionary=DECODE_TOKENS, max_len=1 << 16, memory_cap=160 * mb),
        Harness("policy", "policy files (datareach.assess.policy.load_policy)", policy_seeds, _policy,
                clean=_lazy(_policy_clean), dictionary=TOML_TOKENS, max_len=1 << 14),
        Harness("profile", "profile files (load_profile), the forms of their values and a detection",
                profile_seeds, _profile, clean=_lazy(_profile_clean), dictionary=TOML_TOKENS, max_len=4096),
        Harness("audit", "a small capture or HAR audited end to end (datareach.api.audit), every report "
                "format rendered", audit_seeds, _audit, dictionary=PCAP_TOKENS + HAR_TOKENS, max_len=1 << 15,
                memory_cap=160 * mb, timeout=30.0),
    ]
    return {h.name: h for h in harnesses}
