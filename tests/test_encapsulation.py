"""Tunnels, link layers and fragments, on real captures, with tshark as the reference.

The captures in tests/data/captures/zeek/ are the Zeek project's own test traces (BSD licence;
see the README there for each file's origin): GRE with ERSPAN I/II/III, Aruba's 802.11 and
PPTP, GRE in GRE and in UDP, VXLAN, Geneve, GTP-U, Teredo, AYIYA, IP in IP in every
combination, PPPoE (also over QinQ), MPLS, PBB, VN-Tag, LLC/SNAP, radiotap, NFLOG, and IPv4 and
IPv6 fragments. On each, the conversations datareach reads (the innermost IP addresses and the
transport of every TCP and UDP packet) must be the ones tshark dissects, and so must the server
names, HTTP requests and DNS answers; every frame must be accounted for.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datareach.dissect import encap
from datareach.dissect.defrag import MAX_DATAGRAM, MAX_DATAGRAMS, Reassembler
from datareach.dissect.packets import MAX_TUNNEL_DEPTH, PacketDecoder
from datareach.schema import PacketAccounting
from datareach.testing.records import read

DATA = Path(__file__).resolve().parent / "data" / "captures"
ZEEK = DATA / "zeek"
CAPTURES = sorted(f"{p.parent.name}/{p.name}" for d in (ZEEK, DATA / "tcpdump") for p in d.iterdir() if ".pcap" in p.name)


def tshark(path: Path, *fields: str, display: str = "") -> list[list[str]]:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: `make test` installs it (apt-get install tshark)")
    cmd = [exe, "-n", "-o", "tcp.reassemble_out_of_order:TRUE", "-r", str(path), "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=l"]
    if display:
        cmd += ["-Y", display]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


TUNNELS = {"vxlan", "geneve", "gtp", "teredo", "ayiya", "l2tp", "gre", "erspan", "eth", "arp", "ipv6", "ip", "wlan",
           "llc", "ppp", "mpls", "pppoes", "lcp"}


def innermost_conversations(path: Path) -> set[tuple[str, frozenset[str]]]:
    """(transport, {address, address}) of every TCP/UDP packet's innermost IP header, by tshark."""
    rows = tshark(path, "frame.protocols", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
                  display="(tcp or udp) and not icmp and not icmpv6 and not _ws.malformed and not _ws.expert.severity == error")
    out = set()
    for protos, s4, d4, s6, d6 in rows:
        layers = protos.split(":")
        net = max((i for i, p in enumerate(layers) if p in ("ip", "ipv6")), default=-1)
        tr = max((i for i, p in enumerate(layers) if p in ("tcp", "udp")), default=-1)
        if net < 0 or tr < net or TUNNELS & set(layers[tr + 1 :]):
            continue  # (no transport inside the IP layer, or the transport is a tunnel's own)
        pair = frozenset((s6, d6) if layers[net] == "ipv6" else (s4, d4))
        out.add((layers[tr], pair))
    return out


@pytest.mark.parametrize("name", CAPTURES)
def test_conversations_inside_tunnels_match_tshark(name: str) -> None:
    path = DATA / name
    ours = read(path)
    mine = {(c.transport, frozenset((c.client_ip, c.server_ip))) for c in ours.connections}
    theirs = innermost_conversations(path)
    assert theirs <= mine, sorted(map(sorted, (p for _, p in theirs - mine)))
    # every frame accounted for; those tshark finds an IP layer in (at any depth; a fragment too)
    # are the ones decoded
    assert ours.packets is not None
    protocols = [r[0].split(":") for r in tshark(path, "frame.protocols")]
    assert ours.packets["frames"] == len(protocols)
    # (a frame tshark finds IP in is decoded -- also a tunnel's carrying ARP or a routing protocol,
    # as an ICMP packet is -- or counted as not decoded with its reason: an encrypted 802.11 frame
    # in GRE, a fragment never completed)
    with_ip = sum(1 for layers in protocols if {"ip", "ipv6"} & set(layers))
    not_decoded = sum(r["frames"] for r in ours.packets["not_decoded"])
    assert ours.packets["decoded"]["frames"] <= with_ip <= ours.packets["decoded"]["frames"] + not_decoded, ours.packets


@pytest.mark.parametrize("name", [n for n in CAPTURES if n.split("/")[1].startswith((
    "gre", "vxlan", "geneve", "nflog", "pppoe", "http-vlan", "snap", "mixed", "arcnet", "ipoib", "ppp"))])
def test_requests_names_and_answers_inside_tunnels_match_tshark(name: str) -> None:
    path = DATA / name
    ours = read(path)
    rows = tshark(path, "tls.handshake.extensions_server_name", "http.request.method", "http.host",
                  "http.request.uri", "dns.flags.response", "dns.qry.name", "dns.a")
    sni = {r[0] for r in rows if r[0]}
    requests = {(r[1], r[2].split(":")[0].lower(), r[3]) for r in rows if r[1] and r[2]}
    answers = {(r[5].lower(), r[6]) for r in rows if r[4] == "1" and r[6]}
    assert {c.sni or c.quic_sni for c in ours.connections if c.sni or c.quic_sni} == sni
    # (a request without a Host header is named after its server's address here)
    assert {(e.method, e.host, e.target) for e in ours.exchanges if e.request_headers and any(
        k.lower() == "host" for k, _ in e.request_headers)} == requests
    assert answers <= {(a.qname, a.address) for a in ours.dns}


def test_gre_aruba_capture_gives_its_52_requests() -> None:
    """The issue's 2,407-frame GRE capture (Aruba access points' 802.11 frames): 52 requests."""
    ours = read(ZEEK / "gre-aruba.pcap.gz")
    assert len(ours.exchanges) == 52
    acc = next(r for r in ours.all if isinstance(r, PacketAccounting)).to_dict()
    assert acc["frames"] == acc["decoded"]["frames"] == 2407
    assert acc["tunnelled"] == [{"tunnel": "GRE", "frames": 2407, "bytes": acc["bytes"]}]
    assert {c.tunnel for c in ours.connections} == {"GRE 10.3.34.171>10.33.10.23"}


def test_encrypted_80211_frames_are_counted_not_read() -> None:
    ours = read(ZEEK / "gre-aruba-ccmp.pcap")
    acc = next(r for r in ours.all if isinstance(r, PacketAccounting)).to_dict()
    reasons = {r["reason"]: r["frames"] for r in acc["not_decoded"]}
    assert reasons.get("encrypted 802.11 frame (WEP/WPA)", 0) > 0
    assert acc["warning"] and "encrypted 802.11" in acc["warning"]


@pytest.mark.parametrize("name", ["ipv6-fragmented-dns.pcap", "gtp-gtp1_gn_normal_incl_fragmentation.pcap.gz"])
def test_fragmented_datagrams_are_reassembled_as_tshark_does(name: str) -> None:
    ours = read(ZEEK / name)
    whole = tshark(ZEEK / name, "frame.number", display="ip.fragments or ipv6.fragments")
    assert ours.packets is not None and ours.packets["reassembled_datagrams"] == len(whole) > 0
    if name.startswith("gtp"):
        return  # (four of its datagrams never complete: tshark shows nothing of them, we read their first fragment)
    # the bytes of the datagrams' UDP and TCP payloads are counted in full
    sizes = tshark(ZEEK / name, "udp.length", "tcp.len", display="udp or tcp")
    total = sum(int(t) if t else int(u) - 8 for u, t in sizes)
    assert sum(c.bytes_out + c.bytes_in for c in ours.connections) == total


# -- bounds, on built bytes ----------------------------------------------------------------------

def _ipv4(proto: int, payload: bytes, src: bytes = b"\x0a\x00\x00\x01", dst: bytes = b"\x0a\x00\x00\x02",
          frag: int = 0, ident: int = 1) -> bytes:
    total = 20 + len(payload)
    return (bytes([0x45, 0]) + total.to_bytes(2, "big") + ident.to_bytes(2, "big") + frag.to_bytes(2, "big")
            + bytes([64, proto, 0, 0]) + src + dst + payload)


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big") + b"\0\0" + payload


def test_tunnels_nested_a_thousand_deep_stop_at_the_bound() -> None:
    inner = _ipv4(17, _udp(40000, 53, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"))
    pkt = inner
    for _ in range(1000):
        pkt = _ipv4(4, pkt)  # IP in IP, a thousand times
    dec = PacketDecoder(0)
    dec.packet(1.0, pkt, encap.LINKTYPE_RAW)
    dec.accounting.frames = 1
    dec.finish()
    acc = dec.accounting.to_dict()
    assert acc["not_decoded"] == [{"reason": f"tunnels nested more than {MAX_TUNNEL_DEPTH} deep", "frames": 1,
                                   "bytes": len(pkt)}]
    assert dec.connections is not None and dec.connections.num_rows == 0


def test_nested_tunnels_within_the_bound_are_read_and_described() -> None:
    inner = _ipv4(17, _udp(40000, 53, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"),
                  b"\xc0\xa8\x00\x02", b"\x08\x08\x08\x08")
    gre = b"\x00\x00\x08\x00" + inner  # GRE carrying IPv4
    vx = b"\x08\x00\x00\x00\x00\x00\x01\x00" + b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + _ipv4(47, gre)
    outer = _ipv4(17, _udp(50000, 4789, vx), b"\xc6\x33\x64\x01", b"\xc6\x33\x64\x02")
    dec = PacketDecoder(0)
    dec.packet(1.0, outer, encap.LINKTYPE_RAW)
    dec.finish()
    assert dec.connections is not None
    rows = dec.connections.to_pylist()
    assert [(r["server_ip"], r["tunnel"]) for r in rows] == [
        ("8.8.8.8", "VXLAN 198.51.100.1>198.51.100.2 / GRE 10.0.0.1>10.0.0.2")]


def test_fragments_are_bounded_and_counted_when_never_completed() -> None:
    drops: list[tuple[str, int, int]] = []
    r = Reassembler(lambda reason, f, b, _first: drops.append((reason, f, b)))
    for i in range(MAX_DATAGRAMS + 10):  # first fragments whose rest never comes
        assert r.add(i.to_bytes(4, "big"), 1.0, 0, True, b"x" * 8, b"h", 60) is None
    assert len(r) == MAX_DATAGRAMS and len(drops) == 10
    assert r.add(b"big", 1.0, MAX_DATAGRAM - 4, False, b"y" * 8, None, 60) is None  # past 65,535 bytes
    assert drops[-1][0].startswith("IP fragments of an impossible datagram")
    r.add(b"late", 100.0, 8, False, b"z" * 8, None, 60)  # (30 s later: every earlier one expired)
    assert len(r) == 1
    r.finish()
    assert sum(f for _, f, _ in drops) == MAX_DATAGRAMS + 10 + 1 + 1


def test_overlapping_fragments_keep_the_first_copy() -> None:
    r = Reassembler(lambda *a: None)
    assert r.add(b"k", 1.0, 8, True, b"BBBBBBBB", None, 60) is None
    assert r.add(b"k", 1.0, 0, True, b"AAAAAAAAAAAAAAAA", b"head", 60) is None  # overlaps 8..16
    done = r.add(b"k", 1.0, 16, False, b"CCCC", None, 60)
    assert done == (b"head", b"AAAAAAAABBBBBBBBCCCC")
    assert r.overlaps == 1


def test_a_fragmented_udp_datagram_is_read_whole() -> None:
    query = b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    query += b"\x07example\x03com\x00\x00\x01\x00\x01" + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x5d\xb8\xd8\x22"
    dgram = _udp(53, 40000, query + b"\x00" * 40)
    first, rest = dgram[:24], dgram[24:]
    dec = PacketDecoder(0)
    dec.packet(1.0, _ipv4(17, rest, b"\x08\x08\x08\x08", b"\xc0\xa8\x00\x02", frag=3, ident=7), encap.LINKTYPE_RAW)
    dec.packet(1.0, _ipv4(17, first, b"\x08\x08\x08\x08", b"\xc0\xa8\x00\x02", frag=0x2000, ident=7),
               encap.LINKTYPE_RAW)
    dec.finish()
    assert [(a.qname, a.address) for a in dec.records if hasattr(a, "qname")] == [("example.com", "93.184.216.34")]
    assert dec.accounting.reassembled == 1


def test_offloaded_segments_with_no_total_length_are_read() -> None:
    """TSO: the NIC fills in the IPv4 total length; the capture holds 0."""
    req = b"GET /tso HTTP/1.1\r\nHost: tso.example\r\n\r\n"
    tcp = (40000).to_bytes(2, "big") + (80).to_bytes(2, "big") + (1).to_bytes(4, "big") + b"\0\0\0\0" + b"\x50\x18\xff\xff\0\0\0\0"
    pkt = bytearray(_ipv4(6, tcp + req))
    pkt[2:4] = b"\0\0"
    dec = PacketDecoder(0)
    dec.packet(1.0, bytes(pkt), encap.LINKTYPE_RAW)
    dec.finish()
    assert [r.host for r in dec.records if hasattr(r, "method")] == ["tso.example"]


@pytest.mark.parametrize("linktype", sorted(encap.SUPPORTED_LINKTYPES))
def test_every_link_type_survives_hostile_frames(linktype: int) -> None:
    import random

    rnd = random.Random(linktype)
    dec = PacketDecoder(0)
    for n in range(2000):
        dec.packet(float(n), bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 120))), linktype)
    dec.finish()


def test_every_report_says_when_frames_were_not_decoded() -> None:
    """An input most of whose frames are encrypted 802.11: a warning, exit status 0, in every format."""
    import datareach
    from datareach.report.html import render_html
    from datareach.report.markdown import render_markdown
    from datareach.report.table import render_table

    result = datareach.audit([ZEEK / "gre-aruba-ccmp.pcap"], detect=False)
    doc = result.to_dict()
    assert not result.has_errors
    [warning] = doc["summary"]["undecoded_warnings"]
    assert "encrypted 802.11 frame" in warning
    assert f"warning: {warning}" in " ".join(render_table(doc, width=400).split())
    assert "could not be decoded, mostly\\: encrypted 802" in render_markdown(doc)
    assert "undecoded-warning" in render_html(doc)


# -- properties ------------------------------------------------------------------------------



@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(encap.SUPPORTED_LINKTYPES)), st.binary(max_size=200))
def test_link_layers_never_raise(linktype: int, frame: bytes) -> None:
    res = encap.to_ip(frame, linktype)
    if not isinstance(res, encap.Outcome):
        ver, pos = res
        assert ver in (4, 6) and 0 <= pos < len(frame) and frame[pos] >> 4 == ver


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(encap.TUNNEL_PORTS)), st.binary(max_size=200), st.sampled_from([4, 41, 47, 97, 137]))
def test_tunnels_never_raise(port: int, payload: bytes, proto: int) -> None:
    for res in (encap.udp_tunnel(payload, 0, 50000, port), encap.ip_tunnel(payload, 0, len(payload), proto)):
        inner = res[1] if isinstance(res, tuple) and isinstance(res[0], str) else res
        if inner is not None and not isinstance(inner, encap.Outcome):
            assert isinstance(inner, tuple) and inner[0] in (4, 6)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=400), st.lists(st.tuples(st.integers(0, 50), st.integers(1, 60)), max_size=30),
       st.randoms(use_true_random=False))
def test_reassembly_gives_the_datagram_whatever_the_order(data: bytes, extra: list[tuple[int, int]],
                                                          rnd: object) -> None:
    """Fragments of one datagram (8-byte aligned, as IP requires) plus overlapping copies of the
    same bytes, in any order: the datagram comes out whole, and only once."""
    import random

    assert isinstance(rnd, random.Random)
    cuts = sorted({0, len(data), *(min(len(data), 8 * a) for a, _ in extra)})
    parts = [(a, data[a:b]) for a, b in itertools.pairwise(cuts) if b > a]
    parts += [(8 * a, data[8 * a : 8 * a + n]) for a, n in extra if 8 * a < len(data)]
    rnd.shuffle(parts)
    r = Reassembler(lambda *a: None)
    got = []
    for off, chunk in parts:
        res = r.add(b"k", 1.0, off, off + len(chunk) < len(data), chunk, b"h" if off == 0 else None, 60)
        if res is not None:
            got.append(res)
    assert got == [(b"h", data)]


@pytest.mark.parametrize("name", ["dns-max-compression-depth.pcap", "dns-mdns.pcap", "ftp-auth-tls.pcap",
                                  "http-methods.pcap.gz", "tcp-fast-open.pcap", "tcp-payload-syn.pcap"])
def test_what_the_corpus_measurement_found_missing_matches_tshark(name: str) -> None:
    """Each of these was a miss of benchmarks/bench_corpus.py: a DNS response sent to port 53,
    mDNS answers, FTP's AUTH TLS, extension methods and CONNECT to an origin-form target, data
    in a SYN."""
    path = ZEEK / name
    ours = read(path)
    rows = tshark(path, "tls.handshake.extensions_server_name", "http.request.method", "http.request.uri",
                  "dns.flags.response", "dns.resp.name", "dns.a")
    assert {c.sni or c.quic_sni for c in ours.connections if c.sni or c.quic_sni} == {r[0] for r in rows if r[0]}
    methods = sorted((r[1], r[2]) for r in rows if r[1] and r[2])
    assert sorted((e.method, e.target) for e in ours.exchanges) == methods
    # (the fields give the last answer's name and the last address: their addresses, then)
    assert {r[5] for r in rows if r[3] == "1" and r[5]} <= {a.address for a in ours.dns}
