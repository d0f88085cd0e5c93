"""The pcap/pcapng readers on captures of real protocol bytes.

Every capture here is written by ``datareach.testing.capture`` around bytes produced by real
implementations: ClientHellos from OpenSSL (Python's ssl module), DNS messages from dnspython,
QUIC Initial packets from aioquic.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach.testing.builders import (
    CLIENT,
    SERVER4,
    aioquic_initials,
    client_hello,
    dns_query,
    dns_response,
    tls_session,
    write_pcap,
    write_pcapng,
)
from datareach.testing.capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    PcapngWriter,
    PcapWriter,
    TcpSession,
    UdpFlow,
    ethernet_frame,
    link_frame,
    pcapdroid_frame,
)
from datareach.testing.records import read

CLIENT6 = "2a00:1450:4001:81a::1001"
SERVER6 = "2a00:1450:4001:81a::200e"


@pytest.mark.parametrize(
    ("linktype", "client", "server"),
    [
        (LINKTYPE_ETHERNET, CLIENT, SERVER4),
        (LINKTYPE_ETHERNET, CLIENT6, SERVER6),
        (LINKTYPE_RAW, CLIENT, SERVER4),
        (LINKTYPE_RAW, CLIENT6, SERVER6),
        (LINKTYPE_IPV4, CLIENT, SERVER4),
        (LINKTYPE_IPV6, CLIENT6, SERVER6),
        (LINKTYPE_LINUX_SLL, CLIENT, SERVER4),
        (LINKTYPE_LINUX_SLL2, CLIENT6, SERVER6),
        (LINKTYPE_NULL, CLIENT, SERVER4),
        (LINKTYPE_NULL, CLIENT6, SERVER6),
        (LINKTYPE_LOOP, CLIENT6, SERVER6),
    ],
)
def test_sni_on_every_link_type(tmp_path: Path, linktype: int, client: str, server: str) -> None:
    pkts = tls_session("api.example.com", client, server)
    for path in (write_pcap(tmp_path / "c.pcap", pkts, linktype), write_pcapng(tmp_path / "c.pcapng", pkts, linktype)):
        r = read(path)
        assert not r.errors
        c = r.conn(443)
        assert (c.client_ip, c.server_ip, c.sni, c.alpn, c.protocol) == (
            client, server, "api.example.com", ("h2", "http/1.1"), "tls")
        # client: SYN, ACK, hello, ACK, FIN, ACK; server: SYN-ACK, ACK, data, FIN
        assert c.packets_out == 6 and c.packets_in == 4


def test_vlan_tags(tmp_path: Path) -> None:
    pkts = tls_session("vlan.example.com")
    path = tmp_path / "v.pcap"
    with open(path, "wb") as f:
        w = PcapWriter(f, LINKTYPE_ETHERNET)
        for i, (ts, ip) in enumerate(pkts):
            w.write(ts, ethernet_frame(ip, vlans=(100,) if i % 2 else (200, 300)))
    assert read(path).conn(443).sni == "vlan.example.com"


@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_pcap_timestamp_resolutions_and_byte_orders(tmp_path: Path, nanosecond: bool, big_endian: bool) -> None:
    s = TcpSession(CLIENT, 40000, SERVER4, 443, start=1_750_000_000.123456)
    pkts = s.handshake() + s.client_send(client_hello("ts.example.com"))
    path = write_pcap(tmp_path / "t.pcap", pkts, nanosecond=nanosecond, big_endian=big_endian)
    c = read(path).conn(443)
    assert c.sni == "ts.example.com"
    assert c.first_seen == pytest.approx(1_750_000_000.123456, abs=2e-6)


def test_pcapng_several_interfaces_link_types_and_resolutions(tmp_path: Path) -> None:
    a = tls_session("eth.example.com", server="142.250.185.1")
    b = tls_session("raw.example.com", client=CLIENT6, server=SERVER6)
    path = tmp_path / "multi.pcapng"
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        eth = w.add_interface(LINKTYPE_ETHERNET, tsresol=6)
        raw = w.add_interface(LINKTYPE_RAW, tsresol=9)
        sll2 = w.add_interface(LINKTYPE_LINUX_SLL2, tsresol=0x80 | 20)  # 2^-20 s units
        for ts, ip in a:
            w.write(ts, link_frame(LINKTYPE_ETHERNET, ip), eth)
        for ts, ip in b[:3]:
            w.write(ts, ip, raw)
        for ts, ip in b[3:]:
            w.write(ts, link_frame(LINKTYPE_LINUX_SLL2, ip), sll2)
        # a second section in the other byte order
        w.new_section(big_endian=True)
        loop = w.add_interface(LINKTYPE_NULL)
        for ts, ip in tls_session("second.example.com", server="142.250.185.2"):
            w.write(ts, link_frame(LINKTYPE_NULL, ip), loop)
    r = read(path)
    assert not r.errors
    assert sorted(c.sni or "" for c in r.connections) == ["eth.example.com", "raw.example.com", "second.example.com"]
    rawc = r.conn(server_ip=SERVER6)
    assert rawc.first_seen == pytest.approx(b[0][0], abs=1e-5)


def test_client_hello_split_over_segments_out_of_order_and_retransmitted(tmp_path: Path) -> None:
    pkts = tls_session("split.example.com", segments=(5, 100, 7), order=[0, 2, 1, 3], retransmit=[1, 2])
    c = read(write_pcap(tmp_path / "s.pcap", pkts)).conn(443)
    assert c.sni == "split.example.com"


def test_client_hello_split_across_tls_records(tmp_path: Path) -> None:
    hello = client_hello("records.example.com")
    body = hello[5:]
    # the same handshake message carried in two TLS records
    two = b"\x16\x03\x01" + struct.pack(">H", 40) + body[:40] + b"\x16\x03\x01" + struct.pack(">H", len(body) - 40) + body[40:]
    s = TcpSession(CLIENT, 40001, SERVER4, 443)
    pkts = s.handshake() + s.client_send(two, segments=(30,))
    assert read(write_pcap(tmp_path / "r.pcap", pkts)).conn(443).sni == "records.example.com"


def with_ech(hello: bytes) -> bytes:
    """Add an outer encrypted_client_hello extension (draft-ietf-tls-esni-18 layout) to a ClientHello."""
    msg = bytearray(hello[5:])
    p = 4 + 2 + 32
    p += 1 + msg[p]
    p += 2 + int.from_bytes(msg[p : p + 2], "big")
    p += 1 + msg[p]
    ext_len_at = p
    ech_body = (b"\x00" + b"\x00\x01" + b"\x00\x01" + b"\x2a" + b"\x00\x20" + bytes(range(32))
                + b"\x00\xd0" + bytes(0xD0))
    ext = b"\xfe\x0d" + struct.pack(">H", len(ech_body)) + ech_body
    old = int.from_bytes(msg[ext_len_at : ext_len_at + 2], "big")
    msg[ext_len_at : ext_len_at + 2] = struct.pack(">H", old + len(ext))
    msg += ext
    msg[1:4] = (len(msg) - 4).to_bytes(3, "big")
    return b"\x16\x03\x01" + struct.pack(">H", len(msg)) + bytes(msg)


def test_ech_keeps_outer_name(tmp_path: Path) -> None:
    s = TcpSession(CLIENT, 40002, "104.16.132.229", 443)
    pkts = s.handshake() + s.client_send(with_ech(client_hello("cloudflare-ech.com")))
    c = read(write_pcap(tmp_path / "e.pcap", pkts)).conn(443)
    assert c.sni == "cloudflare-ech.com" and c.ech


def test_dns_over_udp_and_tcp_with_cname_chain(tmp_path: Path) -> None:
    u = UdpFlow(CLIENT, 53001, "8.8.8.8", 53)
    pkts = u.exchange(dns_query("app.example.com"), dns_response("app.example.com.", [
        ("app.example.com.", "CNAME", "edge.cdn.example.net."),
        ("edge.cdn.example.net.", "A", "203.0.113.7"),
    ]))
    t = TcpSession(CLIENT, 53002, "8.8.4.4", 53, start=1_700_000_010.0)
    q = dns_query("tcp.example.org", "AAAA")
    resp = dns_response("tcp.example.org.", [("tcp.example.org.", "AAAA", "2001:db8::7")], "AAAA")
    pkts += t.handshake() + t.client_send(struct.pack(">H", len(q)) + q)
    pkts += t.server_send(struct.pack(">H", len(resp)) + resp, segments=(1, 20))
    r = read(write_pcap(tmp_path / "d.pcap", pkts))
    got = {(a.qname, a.address, a.cname_chain) for a in r.dns}
    assert got == {
        ("app.example.com", "203.0.113.7", ("app.example.com", "edge.cdn.example.net")),
        ("tcp.example.org", "2001:db8::7", ("tcp.example.org",)),
    }
    assert r.conn(53, "8.8.8.8").protocol == "dns"


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_http_pipelining_chunked_retransmission_and_reordering(tmp_path: Path) -> None:
    reqs = (
        b"GET /config?v=3 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: okhttp/4.9\r\n\r\n"
        b"POST /v1/events HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\n"
        + chunked(b'{"gaid":"38400000', b"-8cf0-11bd-b23e-10b96e40000d", b'"}\n') +
        b"POST /v1/ping HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 4\r\n\r\nping"
    )
    resps = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    s = TcpSession(CLIENT, 40003, "93.184.216.34", 80)
    pkts = s.handshake()
    pkts += s.client_send(reqs, segments=(30, 60, 41, 80), order=[1, 0, 3, 2, 4], retransmit=[0, 2])
    pkts += s.server_send(resps, segments=(10, 50))
    pkts += s.close()
    r = read(write_pcap(tmp_path / "h.pcap", pkts))
    assert [(e.method, e.url, e.status) for e in r.exchanges] == [
        ("GET", "http://api.example.com/config?v=3", 200),
        ("POST", "http://api.example.com/v1/events", 202),
        ("POST", "http://api.example.com/v1/ping", 204),
    ]
    assert r.exchanges[1].request_body == b'{"gaid":"38400000-8cf0-11bd-b23e-10b96e40000d"}\n'
    assert r.exchanges[2].request_body == b"ping"
    c = r.conn(80)
    assert c.http_host == "api.example.com" and c.protocol == "http"
    assert c.bytes_out == len(reqs) + 30 + 41  # retransmitted bytes are counted on the wire


@pytest.mark.parametrize(("version", "big"), [(None, False), (0x6B3343CF, False), (None, True)])
def test_quic_initial_sni(tmp_path: Path, version: int | None, big: bool) -> None:
    u = UdpFlow(CLIENT, 51000, "142.250.185.99", 443)
    datagrams = aioquic_initials("www.googleapis.com", version, big)
    if big:
        assert len(datagrams) >= 2
    pkts = [u.send(d) for d in datagrams] + [u.send(bytes(1200), from_client=False)]
    c = read(write_pcap(tmp_path / "q.pcap", pkts)).conn(443)
    assert (c.quic_sni, c.protocol, c.transport) == ("www.googleapis.com", "quic", "udp")


def test_pcapdroid_trailer_names_the_app(tmp_path: Path) -> None:
    path = tmp_path / "droid.pcap"
    with open(path, "wb") as f:
        w = PcapWriter(f, LINKTYPE_ETHERNET)
        for ts, ip in tls_session("graph.facebook.com", server="157.240.1.35"):
            w.write(ts, pcapdroid_frame(ip, 10123, "com.example.weatherapp"))
        for ts, ip in tls_session("other.example.com", server="157.240.1.36"):
            w.write(ts, pcapdroid_frame(ip, 10200, "org.example.mail"))
    r = read(path)
    assert {(c.sni, c.app) for c in r.connections} == {
        ("graph.facebook.com", "com.example.weather"), ("other.example.com", "org.example.mail")}  # 19 bytes at most


# -- hostile input -------------------------------------------------------------------------------

def simple_capture(tmp_path: Path, n: int = 3) -> Path:
    pkts = []
    for i in range(n):
        pkts += tls_session(f"h{i}.example.com", server=f"142.250.185.{10 + i}", start=1_700_000_000.0 + 10 * i)
    return write_pcap(tmp_path / "ok.pcap", pkts)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(b"")
    [err] = read(tmp_path / "e").errors
    assert err.fatal and err.offset == 0


def test_truncated_file_keeps_what_was_read(tmp_path: Path) -> None:
    data = simple_capture(tmp_path).read_bytes()
    (tmp_path / "t.pcap").write_bytes(data[:-50])
    r = read(tmp_path / "t.pcap")
    assert {c.sni for c in r.connections} >= {"h0.example.com", "h1.example.com"}
    fatal = [e for e in r.errors if e.fatal]
    assert len(fatal) == 1 and fatal[0].offset is not None and 0 < fatal[0].offset < len(data)


def test_corrupt_record_in_the_middle_is_skipped(tmp_path: Path) -> None:
    data = bytearray(simple_capture(tmp_path).read_bytes())
    # break the captured length of the 12th record (the second packet of h1's session)
    pos = 24
    for _ in range(11):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    data[pos + 8 : pos + 12] = struct.pack("<I", 0x7FFFFFF0)
    (tmp_path / "c.pcap").write_bytes(bytes(data))
    r = read(tmp_path / "c.pcap")
    [err] = r.errors
    assert err.offset == pos and not err.fatal
    assert {c.sni for c in r.connections} == {"h0.example.com", "h1.example.com", "h2.example.com"}


def test_unknown_link_type(tmp_path: Path) -> None:
    data = bytearray(simple_capture(tmp_path).read_bytes())
    data[20:24] = struct.pack("<I", 147)  # LINKTYPE_USER0
    (tmp_path / "u.pcap").write_bytes(bytes(data))
    [err] = read(tmp_path / "u.pcap").errors
    assert err.offset == 20 and "147" in err.message


def test_unknown_link_type_on_one_pcapng_interface(tmp_path: Path) -> None:
    path = tmp_path / "u.pcapng"
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        good = w.add_interface(LINKTYPE_RAW)
        bad = w.add_interface(147)
        for ts, ip in tls_session("good.example.com"):
            w.write(ts, ip, good)
            w.write(ts, b"\x00" * 40, bad)
    r = read(path)
    assert r.conn(443).sni == "good.example.com"
    [err] = r.errors
    assert "147" in err.message and err.offset is not None and not err.fatal


def test_snaplen_cut_packets_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    with open(path, "wb") as f:
        w = PcapWriter(f, LINKTYPE_ETHERNET, snaplen=96)
        for ts, ip in tls_session("cut.example.com"):
            frame = link_frame(LINKTYPE_ETHERNET, ip)
            w.write(ts, frame[:96], orig_len=len(frame))
    r = read(path)
    c = r.conn(443)
    assert c.sni is None and c.bytes_out > 300  # counted from the IP header, not the cut data
    assert any("snapshot length" in e.message for e in r.errors)


def test_garbage_after_a_valid_header(tmp_path: Path) -> None:
    data = simple_capture(tmp_path).read_bytes()[:24] + bytes(range(256)) * 8
    (tmp_path / "g.pcap").write_bytes(data)
    r = read(tmp_path / "g.pcap")
    assert r.errors and r.errors[-1].fatal and not r.connections


def test_not_a_capture(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"hello, this is text\n" * 10)
    [err] = read(tmp_path / "x").errors
    assert "unrecognised" in err.message


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(cut=st.integers(min_value=0, max_value=4000), noise=st.binary(min_size=1, max_size=64),
       at=st.integers(min_value=0, max_value=4000))
def test_mutated_captures_never_crash(tmp_path: Path, cut: int, noise: bytes, at: int) -> None:
    base = tmp_path / "base.pcapng"
    if not base.exists():
        write_pcapng(base, tls_session("m.example.com") + tls_session("n.example.com", server="142.250.185.9"))
    data = bytearray(base.read_bytes())
    at %= len(data)
    data[at : at + len(noise)] = noise
    (tmp_path / "m.pcapng").write_bytes(bytes(data[: max(len(data) - cut, 0)]))
    read(tmp_path / "m.pcapng")


def test_port_reuse_starts_a_new_connection(tmp_path: Path) -> None:
    pkts = []
    for i, host in enumerate(("first.example.com", "second.example.com")):
        s = TcpSession(CLIENT, 40100, SERVER4, 443, start=1_700_000_000.0 + 60 * i, client_isn=1000 + i * 99999)
        pkts += s.handshake() + s.client_send(client_hello(host)) + s.close()
    r = read(write_pcap(tmp_path / "reuse.pcap", pkts))
    assert sorted(c.sni or "" for c in r.connections) == ["first.example.com", "second.example.com"]
    assert all(c.packets_out == 5 for c in r.connections)


def test_reset_flushes_an_unanswered_request(tmp_path: Path) -> None:
    s = TcpSession(CLIENT, 40101, "93.184.216.34", 80)
    pkts = s.handshake() + s.client_send(b"POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100\r\n\r\nabc")
    pkts += s.reset(from_client=False)
    [ex] = read(write_pcap(tmp_path / "rst.pcap", pkts)).exchanges
    assert ex.request_body == b"abc" and ex.request_body_truncated and ex.status is None



@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd"])
def test_compressed_captures_are_read_as_they_are_decompressed(kind: str, tmp_path: Path) -> None:
    import bz2
    import gzip
    import lzma

    import zstandard

    import datareach

    example = Path(__file__).resolve().parent.parent / "examples" / "mobile-app-session.pcapng"
    data = example.read_bytes()
    packed = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress,
              "zstd": zstandard.ZstdCompressor().compress}[kind](data)
    path = tmp_path / "capture.bin"  # (the content says what it is, not the name)
    path.write_bytes(packed)
    plain, doc = datareach.audit([example]).to_dict(), datareach.audit([path]).to_dict()
    assert doc["inputs"][0]["format"] == f"pcapng+{kind}" and doc["inputs"][0]["errors"] == []
    for key in ("destinations", "exchanges", "dns", "findings"):
        assert doc[key] == plain[key]


def test_a_compressed_capture_cut_short_keeps_what_came_before_the_cut(tmp_path: Path) -> None:
    import gzip

    import datareach

    example = Path(__file__).resolve().parent.parent / "examples" / "mobile-app-session.pcapng"
    packed = gzip.compress(example.read_bytes())
    path = tmp_path / "cut.pcapng.gz"
    path.write_bytes(packed[: len(packed) * 3 // 10])
    doc = datareach.audit([path]).to_dict()
    errors = doc["inputs"][0]["errors"]
    assert doc["inputs"][0]["format"] == "pcapng+gzip"
    assert len(errors) == 1 and errors[0]["fatal"] and "the gzip data is corrupt or ends early" in errors[0]["message"]
    assert 0 < doc["summary"]["destinations"] < datareach.audit([example]).summary()["destinations"]
