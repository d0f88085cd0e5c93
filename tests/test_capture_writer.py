"""The capture writer (datareach.testing.capture) checked against independent readers.

dpkt reads back the pcap/pcapng files and parses the frames; checksums are verified with a
naive RFC 1071 implementation written here (not the writer's fast one). tshark is used as a
third opinion when it is installed.
"""

from __future__ import annotations

import io
import itertools
import struct
import subprocess
import zlib
from pathlib import Path

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datareach.dissect import pcapdroid
from datareach.testing import capture as cap

C4, S4 = "192.168.1.23", "142.250.74.110"
C6, S6 = "2a00:1450:4001:82a::1", "2a03:2880:f10d:83:face:b00c:0:25de"


def naive_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!I3xB", length, proto)


def l4_ok(ip: bytes) -> bool:
    """Whether the TCP/UDP checksum of a raw IPv4/IPv6 packet verifies."""
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
        l4 = ip[ihl : struct.unpack("!H", ip[2:4])[0]]
    else:
        proto, src, dst = ip[6], ip[8:24], ip[24:40]
        l4 = ip[40 : 40 + struct.unpack("!H", ip[4:6])[0]]
    return naive_checksum(pseudo(src, dst, proto, len(l4)) + l4) == 0


@given(st.binary(max_size=300), st.integers(0, 0xFFFFFFFF))
def test_checksum_matches_naive(data: bytes, extra: int) -> None:
    assert cap.internet_checksum(data) == naive_checksum(data)
    # with an initial sum: same as prefixing its 16-bit words
    assert cap.internet_checksum(data, extra) == naive_checksum(extra.to_bytes(4, "big") + data)


def test_checksum_all_zero() -> None:
    assert cap.internet_checksum(b"\x00" * 20) == 0xFFFF == naive_checksum(b"\x00" * 20)


# --------------------------------------------------------------------------------------------


def test_ipv4_tcp_fields_and_checksums() -> None:
    pkt = cap.tcp_packet(C4, S4, 40000, 443, b"hello", seq=123, ack=456, flags=cap.PSH | cap.ACK, ident=7)
    assert naive_checksum(pkt[:20]) == 0
    assert l4_ok(pkt)
    ip = dpkt.ip.IP(pkt)
    assert ip.len == len(pkt) and ip.id == 7 and ip.p == 6 and ip.df
    tcp = ip.data
    assert isinstance(tcp, dpkt.tcp.TCP)
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack) == (40000, 443, 123, 456)
    assert tcp.flags == dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK
    assert tcp.data == b"hello"
    # dpkt recomputes the same checksums
    ip2 = dpkt.ip.IP(pkt)
    ip2.sum = 0
    ip2.data.sum = 0
    assert bytes(ip2) == pkt


@given(st.binary(max_size=2000), st.booleans())
def test_udp_checksums(payload: bytes, v6: bool) -> None:
    src, dst = (C6, S6) if v6 else (C4, S4)
    pkt = cap.udp_packet(src, dst, 5353, 53, payload)
    assert l4_ok(pkt)
    udp = (dpkt.ip6.IP6(pkt) if v6 else dpkt.ip.IP(pkt)).data
    assert isinstance(udp, dpkt.udp.UDP)
    assert udp.data == payload and udp.sum != 0


def test_ipv6_tcp() -> None:
    pkt = cap.tcp_packet(C6, S6, 50000, 443, b"x" * 100, seq=1, ack=2)
    ip6 = dpkt.ip6.IP6(pkt)
    assert ip6.plen == len(pkt) - 40 and ip6.nxt == 6
    assert ip6.data.data == b"x" * 100
    assert l4_ok(pkt)


def test_odd_length_tcp_payload_checksum() -> None:
    for n in range(0, 9):
        assert l4_ok(cap.tcp_packet(C4, S4, 1, 2, b"\xff" * n))
        assert l4_ok(cap.tcp_packet(C6, S6, 1, 2, b"\xff" * n))


# --------------------------------------------------------------------------------------------


def test_ethernet_and_vlans() -> None:
    ip = cap.udp_packet(C4, S4, 1000, 53, b"q")
    eth = dpkt.ethernet.Ethernet(cap.ethernet_frame(ip))
    assert eth.type == dpkt.ethernet.ETH_TYPE_IP and bytes(eth.data) == ip
    one = dpkt.ethernet.Ethernet(cap.ethernet_frame(ip, vlans=[100]))
    assert [t.id for t in one.vlan_tags] == [100] and bytes(one.data) == ip
    two_raw = cap.ethernet_frame(ip, vlans=[10, 20])
    assert two_raw[12:14] == b"\x88\xa8" and two_raw[16:18] == b"\x81\x00"
    two = dpkt.ethernet.Ethernet(two_raw)
    assert [t.id for t in two.vlan_tags] == [10, 20] and bytes(two.data) == ip
    ip6 = cap.udp_packet(C6, S6, 1000, 53, b"q")
    assert dpkt.ethernet.Ethernet(cap.ethernet_frame(ip6)).type == dpkt.ethernet.ETH_TYPE_IP6


def test_cooked_and_loopback_frames() -> None:
    ip = cap.tcp_packet(C4, S4, 1, 443)
    ip6 = cap.tcp_packet(C6, S6, 1, 443)
    sll = dpkt.sll.SLL(cap.sll_frame(ip, packet_type=cap.SLL_OUTGOING))
    assert sll.type == 4 and sll.ethtype == 0x0800 and bytes(sll.data) == ip
    sll2 = dpkt.sll2.SLL2(cap.sll2_frame(ip6))
    assert sll2.ethtype == 0x86DD and sll2.intindex == 2 and bytes(sll2.data) == ip6
    assert cap.null_frame(ip)[:4] == b"\x02\x00\x00\x00"
    assert cap.null_frame(ip6, af_inet6=28)[:4] == (28).to_bytes(4, "little")
    assert cap.null_frame(ip, byteorder="big")[:4] == b"\x00\x00\x00\x02"
    assert cap.loop_frame(ip6)[:4] == b"\x00\x00\x00\x18"
    lo = dpkt.loopback.Loopback(cap.null_frame(ip))
    assert bytes(lo.data) == ip
    for lt in (0, 1, 101, 108, 113, 228, 229, 276):
        assert cap.link_frame(lt, ip).endswith(ip)
    with pytest.raises(ValueError):
        cap.link_frame(9999, ip)


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("big", [False, True])
def test_pcap_roundtrip(nano: bool, big: bool) -> None:
    buf = io.BytesIO()
    w = cap.PcapWriter(buf, cap.LINKTYPE_ETHERNET, nanosecond=nano, big_endian=big, snaplen=128)
    f1 = cap.ethernet_frame(cap.tcp_packet(C4, S4, 1, 2, b"a" * 10))
    f2 = cap.ethernet_frame(cap.tcp_packet(C4, S4, 1, 2, b"b" * 500))
    w.write((1_700_000_000, 123_456_789), f1)
    w.write(1_700_000_001.5, f2)  # cut to the snaplen
    w.write(1_700_000_002, f1, caplen=40)
    raw = buf.getvalue()
    magic = raw[:4] if big else raw[:4][::-1]
    assert magic == (b"\xa1\xb2\x3c\x4d" if nano else b"\xa1\xb2\xc3\xd4")
    buf.seek(0)
    r = dpkt.pcap.Reader(buf)
    assert r.datalink() == 1 and r.snaplen == 128
    pkts = list(r)
    assert len(pkts) == 3
    assert pkts[0][1] == f1 and pkts[1][1] == f2[:128] and pkts[2][1] == f1[:40]
    assert float(pkts[0][0]) == pytest.approx(1_700_000_000.123456789 if nano else 1_700_000_000.123456, abs=1e-7)
    assert float(pkts[1][0]) == pytest.approx(1_700_000_001.5)
    # orig_len of the cut records
    e = ">" if big else "<"
    off = 24 + 16 + len(f1)
    _s, _f, incl, orig = struct.unpack(e + "IIII", raw[off : off + 16])
    assert (incl, orig) == (128, len(f2))


def _walk_pcapng(raw: bytes) -> list[tuple[int, bytes, str]]:
    """(block type, whole block, endian) for every block; checks both length fields."""
    out = []
    pos, e = 0, "<"
    while pos < len(raw):
        if raw[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            e = "<" if raw[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack(e + "II", raw[pos : pos + 8])
        assert blen % 4 == 0
        assert struct.unpack(e + "I", raw[pos + blen - 4 : pos + blen])[0] == blen
        out.append((btype, raw[pos : pos + blen], e))
        pos += blen
    assert pos == len(raw)
    return out


@pytest.mark.parametrize("big", [False, True])
def test_pcapng_roundtrip_dpkt(big: bool) -> None:
    buf = io.BytesIO()
    w = cap.PcapngWriter(buf, big_endian=big, comment="synthetic")
    iface = w.add_interface(cap.LINKTYPE_ETHERNET, tsresol=9, name="wlan0")
    assert iface == 0
    frames = [cap.ethernet_frame(cap.udp_packet(C4, S4, 1000 + i, 53, bytes([i]) * (i * 7))) for i in range(5)]
    for i, fr in enumerate(frames):
        w.write((1_700_000_000 + i, 987_654_321), fr, iface, comment="hi" if i == 2 else None)
    buf.seek(0)
    r = dpkt.pcapng.Reader(buf)
    assert r.datalink() == 1
    got = list(r)
    assert [p for _t, p in got] == frames
    assert got[1][0] == pytest.approx(1_700_000_001.987654321)
    blocks = _walk_pcapng(buf.getvalue())
    assert [b[0] for b in blocks] == [0x0A0D0D0A, 1, 6, 6, 6, 6, 6]
    epb_cls = dpkt.pcapng.EnhancedPacketBlock if big else dpkt.pcapng.EnhancedPacketBlockLE
    epb = epb_cls(blocks[4][1])
    assert [(o.code, o.text) for o in epb.opts if o.code == 1] == [(1, "hi")]


@pytest.mark.parametrize("tsresol,expected", [(6, 1_700_000_000.25), (9, 1_700_000_000.25),
                                               (0x80 | 10, 1_700_000_000.25), (3, 1_700_000_000.25)])
def test_pcapng_tsresol(tsresol: int, expected: float) -> None:
    buf = io.BytesIO()
    w = cap.PcapngWriter(buf)
    w.add_interface(cap.LINKTYPE_RAW, tsresol=tsresol, explicit_tsresol=True)
    w.write(1_700_000_000.25, cap.udp_packet(C4, S4, 1, 2, b""))
    buf.seek(0)
    (ts, _p), = list(dpkt.pcapng.Reader(buf))
    assert ts == pytest.approx(expected, abs=1e-3)


def test_pcapng_multi_interface_spb_and_cut() -> None:
    buf = io.BytesIO()
    w = cap.PcapngWriter(buf)
    a = w.add_interface(cap.LINKTYPE_ETHERNET, snaplen=64)
    b = w.add_interface(cap.LINKTYPE_RAW, tsresol=9, tsoffset=100)
    ip = cap.tcp_packet(C4, S4, 1, 2, b"z" * 200)
    w.write_simple(cap.ethernet_frame(ip))  # interface 0, snaplen 64
    w.write(1.0, ip, b)
    w.write(2.0, cap.ethernet_frame(ip), a)  # cut to 64
    w.write(3.0, ip, b, caplen=30)
    w.write_block(0x0BAD1234, b"unknown")
    blocks = _walk_pcapng(buf.getvalue())
    assert [t for t, _b, _e in blocks] == [0x0A0D0D0A, 1, 1, 3, 6, 6, 6, 0x0BAD1234]
    idb_b = dpkt.pcapng.InterfaceDescriptionBlockLE(blocks[2][1])
    assert idb_b.linktype == 101
    assert {o.code: o.data for o in idb_b.opts}[9] == b"\x09"
    spb = blocks[3][1]
    orig = struct.unpack("<I", spb[8:12])[0]
    assert orig == 14 + len(ip) and spb[12 : 12 + 64] == cap.ethernet_frame(ip)[:64]
    assert len(spb) == 12 + 4 + 64
    e1 = dpkt.pcapng.EnhancedPacketBlockLE(blocks[4][1])
    assert e1.iface_id == 1 and e1.pkt_data == ip and ((e1.ts_high << 32) | e1.ts_low) == 1_000_000_000
    e2 = dpkt.pcapng.EnhancedPacketBlockLE(blocks[5][1])
    assert e2.caplen == 64 and e2.pkt_len == 14 + len(ip)
    e3 = dpkt.pcapng.EnhancedPacketBlockLE(blocks[6][1])
    assert e3.caplen == 30 and e3.pkt_data == ip[:30] and e3.pkt_len == len(ip)


def test_pcapng_second_section_other_byte_order() -> None:
    buf = io.BytesIO()
    w = cap.PcapngWriter(buf)
    w.add_interface(cap.LINKTYPE_RAW)
    w.write(1.0, b"\x45" + b"\x00" * 19)
    w.new_section(big_endian=True)
    assert w.add_interface(cap.LINKTYPE_ETHERNET) == 0
    w.write(2.0, b"\x00" * 14)
    kinds = [(t, e) for t, _b, e in _walk_pcapng(buf.getvalue())]
    assert kinds == [(0x0A0D0D0A, "<"), (1, "<"), (6, "<"), (0x0A0D0D0A, ">"), (1, ">"), (6, ">")]


# --------------------------------------------------------------------------------------------


def _tcp(pkt: bytes) -> dpkt.tcp.TCP:
    ip = dpkt.ip.IP(pkt) if pkt[0] >> 4 == 4 else dpkt.ip6.IP6(pkt)
    assert l4_ok(pkt)
    return ip.data


def test_tcp_session_seq_ack() -> None:
    s = cap.TcpSession(C4, 41000, S4, 443, start=100.0, client_isn=0xFFFFFFF0, server_isn=5)
    pkts = s.handshake()
    syn, synack, ack = (_tcp(p) for _t, p in pkts)
    assert syn.flags == dpkt.tcp.TH_SYN and syn.seq == 0xFFFFFFF0
    assert synack.flags == dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK and synack.ack == 0xFFFFFFF1 and synack.seq == 5
    assert ack.seq == 0xFFFFFFF1 and ack.ack == 6
    data = bytes(range(256)) * 20  # 5120 bytes
    out = s.send(data, segments=[100, 50])
    segs = [_tcp(p) for _t, p in out[:-1]]
    assert [len(x.data) for x in segs] == [100, 50, 1448, 1448, 1448, 626]
    # seq wraps around 2**32 and the bytes reassemble
    assert segs[0].seq == 0xFFFFFFF1
    assert b"".join(x.data for x in segs) == data
    for a, b in itertools.pairwise(segs):
        assert (a.seq + len(a.data)) & 0xFFFFFFFF == b.seq
    assert segs[-1].flags & dpkt.tcp.TH_PUSH
    peer_ack = _tcp(out[-1][1])
    assert peer_ack.ack == (0xFFFFFFF1 + len(data)) & 0xFFFFFFFF and not peer_ack.data
    reply = s.server_send(b"R" * 10)
    assert _tcp(reply[0][1]).seq == 6 and _tcp(reply[1][1]).ack == 16
    fin = [_tcp(p) for _t, p in s.close()]
    assert fin[0].flags & dpkt.tcp.TH_FIN and fin[1].flags & dpkt.tcp.TH_FIN
    assert fin[1].ack == (fin[0].seq + 1) & 0xFFFFFFFF and fin[2].ack == fin[1].seq + 1
    times = [t for t, _p in pkts + out + reply]
    assert times == sorted(times) and times[0] == 100.0


def test_tcp_session_retransmit_reorder_ipv6() -> None:
    s = cap.TcpSession(C6, 41000, S6, 443)
    s.handshake()
    out = s.send(b"abcdefghij", segments=[3, 3, 4], retransmit=[1], reorder=True, ack=False)
    segs = [_tcp(p) for _t, p in out]
    assert [x.data for x in segs] == [b"abc", b"ghij", b"def", b"def"]
    assert segs[2].seq == segs[3].seq
    assert s.client_next == (0x1000_0000 + 1 + 10)


def test_udp_flow() -> None:
    f = cap.UdpFlow(C4, 5555, "8.8.8.8", 53, start=10.0)
    (t1, q), (t2, r) = f.exchange(b"query", b"response")
    assert t2 > t1 == 10.0
    uq, ur = dpkt.ip.IP(q).data, dpkt.ip.IP(r).data
    assert (uq.sport, uq.dport, uq.data) == (5555, 53, b"query")
    assert (ur.sport, ur.dport, ur.data) == (53, 5555, b"response")


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(0, 8))
def test_pcapdroid_frame_roundtrip(n: int) -> None:
    ip = cap.udp_packet(C4, S4, 1, 2, b"p" * n)
    frame = cap.pcapdroid_frame(ip, 10234, "Weather")
    assert len(frame) % 4 == 0
    assert frame[:12] == b"\x00" * 12 and frame[12:14] == b"\x08\x00"
    assert frame[-32:-28] == b"\x01\x07\x20\x21"
    assert struct.unpack("<I", frame[-4:])[0] == zlib.crc32(frame[:-4])
    assert pcapdroid.fcs_ok(frame)
    cut, uid, name = pcapdroid.split_trailer(frame)
    assert (uid, name) == (10234, "Weather")
    assert cut == len(frame) - 32 and frame[14 : 14 + len(ip)] == ip
    assert set(frame[14 + len(ip) : cut]) <= {0}
    eth = dpkt.ethernet.Ethernet(frame)  # an unaware parser just sees IP + trailing bytes
    assert bytes(eth.data)[: len(ip)] == ip


def test_pcapdroid_trailer_appended_and_name_limits() -> None:
    ip6 = cap.tcp_packet(C6, S6, 1, 443, b"q")
    frame = cap.pcapdroid_frame(ip6, -1, "com.example.weatherapp")
    assert frame[12:14] == b"\x86\xdd"
    _cut, uid, name = pcapdroid.split_trailer(frame)
    assert uid == -1 and name == "com.example.weather"  # 19 bytes + NUL
    eth = cap.ethernet_frame(cap.udp_packet(C4, S4, 1, 2, b"abc"))
    full = eth + cap.pcapdroid_trailer(1000, "", eth)
    assert pcapdroid.fcs_ok(full) and pcapdroid.split_trailer(full)[1:] == (1000, "")
    # no trailer: cheap negative
    assert pcapdroid.split_trailer(eth) == (len(eth), None, None)
    assert pcapdroid.split_trailer(b"") == (0, None, None)


def test_pcapdroid_pcap_file() -> None:
    buf = io.BytesIO()
    w = cap.PcapWriter(buf, cap.LINKTYPE_ETHERNET)
    s = cap.TcpSession(C4, 40001, S4, 443)
    for ts, ip in s.handshake():
        w.write(ts, cap.pcapdroid_frame(ip, 10234, "Weather"))
    buf.seek(0)
    for _ts, frame in dpkt.pcap.Reader(buf):
        assert pcapdroid.split_trailer(frame)[1:] == (10234, "Weather")


# --------------------------------------------------------------------------------------------


def test_tshark_agrees(tmp_path: Path) -> None:
    path = tmp_path / "t.pcapng"
    with open(path, "wb") as f:
        w = cap.PcapngWriter(f)
        w.add_interface(cap.LINKTYPE_ETHERNET, tsresol=9)
        s = cap.TcpSession(C4, 40001, S4, 80)
        pkts = s.handshake() + s.send(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n") + s.close()
        for ts, ip in pkts:
            w.write(ts, cap.ethernet_frame(ip, vlans=[5]))
        w.write(0.0, cap.ethernet_frame(cap.udp_packet(C6, S6, 1, 53, b"\x00" * 12)))
    res = subprocess.run(
        ["tshark", "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.severity"],
        capture_output=True, text=True, check=True)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(pkts) + 1
    # checksum status: 0 bad, 1 good, 2 unverified (Wireshark's proto_checksum_status)
    checks = ["-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]
    bad = subprocess.run(["tshark", "-r", str(path), *checks, "-Y",
                          "tcp.checksum.status == 0 || udp.checksum.status == 0 || ip.checksum.status == 0"],
                         capture_output=True, text=True, check=True)
    assert bad.stdout.strip() == ""
    good = subprocess.run(["tshark", "-r", str(path), *checks, "-Y", "tcp.checksum.status == 1"],
                          capture_output=True, text=True, check=True)
    assert len(good.stdout.strip().splitlines()) == len(pkts)
