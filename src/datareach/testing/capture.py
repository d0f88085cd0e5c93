"""Write capture files (classic pcap, pcapng) holding real protocol bytes.

Used by the test suite, ``examples/generate_example.py`` and ``benchmarks/generate_capture.py``.
Nothing in the product imports it.

Layers, bottom up:

* checksums and packets: :func:`ipv4_packet`, :func:`ipv6_packet`, :func:`tcp_segment`,
  :func:`udp_datagram`, and the one-call :func:`tcp_packet` / :func:`udp_packet` (IP version
  chosen from the addresses; all checksums correct);
* link-layer framing: :func:`ethernet_frame` (with 0, 1 or 2 VLAN tags), :func:`sll_frame`,
  :func:`sll2_frame`, :func:`null_frame`, :func:`loop_frame`, and :func:`link_frame` to pick by
  link type; :func:`pcapdroid_frame` / :func:`pcapdroid_trailer` reproduce PCAPdroid's trailer;
* flows: :class:`TcpSession` (handshake, data with correct seq/ack, splitting, retransmission,
  reordering, teardown) and :class:`UdpFlow`, yielding ``(timestamp, ip_packet)`` pairs;
* files: :class:`PcapWriter` and :class:`PcapngWriter`.

Timestamps are float seconds, or ``(seconds, nanoseconds)`` tuples when exact nanoseconds matter.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import ssl
import struct
import zlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Final, Literal

from datareach.dissect import pcapdroid as _pcapdroid

# --------------------------------------------------------------------------------------------
# Constants

LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276

ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD
TPID_8021Q: Final = 0x8100
TPID_8021AD: Final = 0x88A8

AF_INET: Final = 2
#: BSD AF_INET6 values: NetBSD/OpenBSD 24, FreeBSD 28, macOS/iOS 30.
AF_INET6_BSD: Final = 24
AF_INET6_FREEBSD: Final = 28
AF_INET6_DARWIN: Final = 30

PROTO_TCP: Final = 6
PROTO_UDP: Final = 17

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
URG: Final = 0x20
ECE: Final = 0x40
CWR: Final = 0x80

#: Linux cooked-capture packet types.
SLL_HOST: Final = 0
SLL_OUTGOING: Final = 4

CLIENT_MAC: Final = bytes.fromhex("02005e1000aa")
SERVER_MAC: Final = bytes.fromhex("00005e0053af")

Address = str | ipaddress.IPv4Address | ipaddress.IPv6Address
Timestamp = float | int | tuple[int, int]
Packet = tuple[float, bytes]

# --------------------------------------------------------------------------------------------
# Checksums and addresses


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 checksum of ``data`` (odd length padded with a zero byte).

    ``initial`` is added into the ones'-complement sum (used for pseudo-header sums).
    Computed with one big-integer modulo: 2**16 ≡ 1 (mod 0xFFFF), so the ones'-complement sum
    of 16-bit words is the number modulo 0xFFFF, except that a non-zero sum is never 0.
    """
    if len(data) & 1:
        data += b"\x00"
    total = int.from_bytes(data, "big") + initial
    s = total % 0xFFFF
    if s == 0 and total:
        s = 0xFFFF
    return ~s & 0xFFFF


@lru_cache(maxsize=4096)
def ip_bytes(addr: Address) -> bytes:
    """Packed 4- or 16-byte form of an address given as text or ipaddress object."""
    if isinstance(addr, str):
        return ipaddress.ip_address(addr).packed
    return addr.packed


def _pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, proto, length)
    else:
        pseudo = src + dst + struct.pack("!IxxxB", length, proto)
    return int.from_bytes(pseudo, "big")


# --------------------------------------------------------------------------------------------
# IP


def ipv4_packet(src: Address, dst: Address, proto: int, payload: bytes, *, ttl: int = 64,
                ident: int = 0, tos: int = 0, dont_fragment: bool = True, options: bytes = b"",
                fragment_offset: int = 0, more_fragments: bool = False,
                total_length: int | None = None) -> bytes:
    """IPv4 header with correct checksum, followed by ``payload``.

    ``fragment_offset`` is in bytes (multiple of 8). ``total_length`` overrides the length field
    (to build malformed packets); the checksum covers whatever is written.
    """
    if len(options) % 4:
        options += b"\x00" * (4 - len(options) % 4)
    ihl = 5 + len(options) // 4
    flags = (0x4000 if dont_fragment else 0) | (0x2000 if more_fragments else 0) | (fragment_offset >> 3)
    length = 4 * ihl + len(payload) if total_length is None else total_length
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, length, ident & 0xFFFF, flags, ttl, proto, 0,
                      ip_bytes(src), ip_bytes(dst)) + options
    csum = internet_checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def ipv6_packet(src: Address, dst: Address, next_header: int, payload: bytes, *, hop_limit: int = 64,
                traffic_class: int = 0, flow_label: int = 0, extension_headers: bytes = b"") -> bytes:
    """IPv6 header followed by ``extension_headers`` (already chained, caller's job) and payload.

    When extension headers are given, ``next_header`` is the type of the first one.
    """
    first = (6 << 28) | (traffic_class << 20) | (flow_label & 0xFFFFF)
    return struct.pack("!IHBB16s16s", first, len(extension_headers) + len(payload), next_header, hop_limit,
                       ip_bytes(src), ip_bytes(dst)) + extension_headers + payload


def ip_packet(src: Address, dst: Address, proto: int, payload: bytes, *, ttl: int = 64, ident: int = 0) -> bytes:
    """IPv4 or IPv6 packet, by the version of ``src``."""
    if len(ip_bytes(src)) == 4:
        return ipv4_packet(src, dst, proto, payload, ttl=ttl, ident=ident)
    return ipv6_packet(src, dst, proto, payload, hop_limit=ttl)


# --------------------------------------------------------------------------------------------
# TCP / UDP


def tcp_options(*, mss: int | None = None, wscale: int | None = None, sack_permitted: bool = False,
                timestamps: tuple[int, int] | None = None) -> bytes:
    """TCP options padded with NOPs/EOL to a multiple of 4 bytes."""
    out = b""
    if mss is not None:
        out += struct.pack("!BBH", 2, 4, mss)
    if sack_permitted:
        out += b"\x04\x02"
    if timestamps is not None:
        out += b"\x01\x01" + struct.pack("!BBII", 8, 10, timestamps[0], timestamps[1])
    if wscale is not None:
        out += b"\x01" + struct.pack("!BBB", 3, 3, wscale)
    if len(out) % 4:
        out += b"\x00" * (4 - len(out) % 4)
    return out


def tcp_segment(src: Address, dst: Address, sport: int, dport: int, payload: bytes = b"", *, seq: int = 0,
                ack: int = 0, flags: int = ACK, window: int = 65535, options: bytes = b"", urgent: int = 0,
                checksum: int | None = None) -> bytes:
    """TCP header + payload with the checksum over the IPv4/IPv6 pseudo-header.

    ``checksum`` overrides the computed value (for bad-checksum tests).
    """
    if len(options) % 4:
        options += b"\x00" * (4 - len(options) % 4)
    offset = (5 + len(options) // 4) << 12
    hdr = struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, offset | (flags & 0x1FF),
                      window, 0, urgent) + options
    seg = hdr + payload
    if checksum is None:
        s, d = ip_bytes(src), ip_bytes(dst)
        checksum = internet_checksum(seg, _pseudo_sum(s, d, PROTO_TCP, len(seg)))
    return seg[:16] + struct.pack("!H", checksum) + seg[18:]


def udp_datagram(src: Address, dst: Address, sport: int, dport: int, payload: bytes, *,
                 checksum: int | None = None) -> bytes:
    """UDP header + payload with the pseudo-header checksum (0 is sent as 0xFFFF).

    Pass ``checksum=0`` for "no checksum" (legal for IPv4 only).
    """
    length = 8 + len(payload)
    if checksum is None:
        s, d = ip_bytes(src), ip_bytes(dst)
        checksum = internet_checksum(struct.pack("!HHHH", sport, dport, length, 0) + payload,
                                     _pseudo_sum(s, d, PROTO_UDP, length)) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, checksum) + payload


def tcp_packet(src: Address, dst: Address, sport: int, dport: int, payload: bytes = b"", *, seq: int = 0,
               ack: int = 0, flags: int = ACK, window: int = 65535, options: bytes = b"", ttl: int = 64,
               ident: int = 0) -> bytes:
    """IP packet carrying one TCP segment."""
    seg = tcp_segment(src, dst, sport, dport, payload, seq=seq, ack=ack, flags=flags, window=window,
                      options=options)
    return ip_packet(src, dst, PROTO_TCP, seg, ttl=ttl, ident=ident)


def udp_packet(src: Address, dst: Address, sport: int, dport: int, payload: bytes, *, ttl: int = 64,
               ident: int = 0) -> bytes:
    """IP packet carrying one UDP datagram."""
    return ip_packet(src, dst, PROTO_UDP, udp_datagram(src, dst, sport, dport, payload), ttl=ttl, ident=ident)


# --------------------------------------------------------------------------------------------
# Link layers


def _ethertype_of(ip: bytes) -> int:
    return ETHERTYPE_IPV6 if ip and ip[0] >> 4 == 6 else ETHERTYPE_IPV4


def ethernet_frame(payload: bytes, *, src: bytes = CLIENT_MAC, dst: bytes = SERVER_MAC,
                   ethertype: int | None = None, vlans: Sequence[int] = (),
                   outer_tpid: int = TPID_8021AD, pcp: int = 0) -> bytes:
    """Ethernet II frame (no FCS). ``ethertype`` defaults from the IP version nibble.

    ``vlans`` are VLAN IDs, outermost first: one tag uses TPID 0x8100 (802.1Q); with two, the
    outer uses ``outer_tpid`` (802.1ad 0x88A8 by default; 0x8100 or 0x9100 also seen) and the
    inner 0x8100.
    """
    et = _ethertype_of(payload) if ethertype is None else ethertype
    tags = b""
    for i, vid in enumerate(vlans):
        tpid = outer_tpid if (len(vlans) > 1 and i == 0) else TPID_8021Q
        tags += struct.pack("!HH", tpid, (pcp << 13) | (vid & 0xFFF))
    return dst + src + tags + struct.pack("!H", et) + payload


def sll_frame(payload: bytes, *, packet_type: int = SLL_HOST, arphrd: int = 1, address: bytes = SERVER_MAC,
              protocol: int | None = None) -> bytes:
    """Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 16-byte header)."""
    proto = _ethertype_of(payload) if protocol is None else protocol
    addr = address[:8].ljust(8, b"\x00")
    return struct.pack("!HHH8sH", packet_type, arphrd, len(address), addr, proto) + payload


def sll2_frame(payload: bytes, *, packet_type: int = SLL_HOST, arphrd: int = 1, address: bytes = SERVER_MAC,
               protocol: int | None = None, ifindex: int = 2) -> bytes:
    """Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 20-byte header)."""
    proto = _ethertype_of(payload) if protocol is None else protocol
    addr = address[:8].ljust(8, b"\x00")
    return struct.pack("!HHIHBB8s", proto, 0, ifindex, arphrd, packet_type, len(address), addr) + payload


def null_frame(payload: bytes, *, af: int | None = None, af_inet6: int = AF_INET6_DARWIN,
               byteorder: Literal["little", "big"] = "little") -> bytes:
    """BSD loopback (LINKTYPE_NULL): a 4-byte address family in the writing host's byte order."""
    fam = (af_inet6 if _ethertype_of(payload) == ETHERTYPE_IPV6 else AF_INET) if af is None else af
    return fam.to_bytes(4, byteorder) + payload


def loop_frame(payload: bytes, *, af: int | None = None, af_inet6: int = AF_INET6_BSD) -> bytes:
    """OpenBSD loopback (LINKTYPE_LOOP): the 4-byte address family in network byte order."""
    return null_frame(payload, af=af, af_inet6=af_inet6, byteorder="big")


def link_frame(linktype: int, ip: bytes, *, outgoing: bool = True, vlans: Sequence[int] = (),
               null_byteorder: Literal["little", "big"] = "little") -> bytes:
    """Wrap an IP packet for ``linktype`` with default addresses.

    ``outgoing`` picks MAC direction (Ethernet) or packet type (SLL/SLL2).
    """
    if linktype == LINKTYPE_ETHERNET:
        if outgoing:
            return ethernet_frame(ip, src=CLIENT_MAC, dst=SERVER_MAC, vlans=vlans)
        return ethernet_frame(ip, src=SERVER_MAC, dst=CLIENT_MAC, vlans=vlans)
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return ip
    if linktype == LINKTYPE_LINUX_SLL:
        return sll_frame(ip, packet_type=SLL_OUTGOING if outgoing else SLL_HOST,
                         address=CLIENT_MAC if outgoing else SERVER_MAC)
    if linktype == LINKTYPE_LINUX_SLL2:
        return sll2_frame(ip, packet_type=SLL_OUTGOING if outgoing else SLL_HOST,
                          address=CLIENT_MAC if outgoing else SERVER_MAC)
    if linktype == LINKTYPE_NULL:
        return null_frame(ip, byteorder=null_byteorder)
    if linktype == LINKTYPE_LOOP:
        return loop_frame(ip)
    raise ValueError(f"no frame builder for link type {linktype}")


# --------------------------------------------------------------------------------------------
# PCAPdroid trailer (layout and sources: datareach.dissect.pcapdroid)


def _appname_field(app_name: str) -> bytes:
    raw = app_name.encode("utf-8")[: _pcapdroid.APPNAME_LEN - 1]
    return raw.ljust(_pcapdroid.APPNAME_LEN, b"\x00")


def pcapdroid_trailer(uid: int, app_name: str, frame: bytes = b"") -> bytes:
    """The bytes PCAPdroid appends to ``frame``: 0-3 alignment zeros then the 32-byte trailer.

    The trailer ends with a CRC-32 over the whole frame, so pass the frame (Ethernet header
    included) to get a valid FCS; ``frame + pcapdroid_trailer(uid, name, frame)`` is then exactly
    what PCAPdroid writes. The app name is cut to 19 UTF-8 bytes as PCAPdroid's strncpy does.
    """
    pad = b"\x00" * (-len(frame) & 3)
    body = _pcapdroid.MAGIC + struct.pack(">i", uid) + _appname_field(app_name)
    fcs = zlib.crc32(body, zlib.crc32(pad, zlib.crc32(frame)))
    return pad + body + struct.pack("<I", fcs)


def pcapdroid_frame(ip: bytes, uid: int, app_name: str) -> bytes:
    """A LINKTYPE_ETHERNET frame exactly as PCAPdroid's trailer mode writes it.

    Zero MAC addresses, EtherType from the IP version, the IP packet, padding, trailer.
    """
    eth = b"\x00" * 12 + struct.pack("!H", _ethertype_of(ip)) + ip
    return eth + pcapdroid_trailer(uid, app_name, eth)


# --------------------------------------------------------------------------------------------
# Flows


class TcpSession:
    """One TCP connection; every method returns the ``(ts, ip_packet)`` pairs it produced.

    The session keeps a clock (``self.t``) advanced by ``gap`` per packet and by half of
    ``rtt`` whenever the direction changes, and the next sequence number of each side.
    """

    def __init__(self, client: Address, client_port: int, server: Address, server_port: int, *,
                 start: float = 1_700_000_000.0, client_isn: int = 0x1000_0000, server_isn: int = 0x2000_0000,
                 rtt: float = 0.030, gap: float = 0.0002, mss: int = 1448, window: int = 65535,
                 client_ttl: int = 64, server_ttl: int = 56) -> None:
        self.client, self.server = client, server
        self.client_port, self.server_port = client_port, server_port
        self.t = start
        self.rtt, self.gap, self.mss, self.window = rtt, gap, mss, window
        self.client_isn, self.server_isn = client_isn & 0xFFFFFFFF, server_isn & 0xFFFFFFFF
        self.client_next = self.client_isn  # next sequence number the client will send
        self.server_next = self.server_isn
        self.client_ttl, self.server_ttl = client_ttl, server_ttl
        self._ident = [0x1234, 0x4321]
        self._last_dir: bool | None = None
        self._v6 = len(ip_bytes(client)) == 16

    # -- low level ---------------------------------------------------------------------------

    def _tick(self, from_client: bool) -> float:
        if self._last_dir is not None:
            self.t += self.rtt / 2 if from_client != self._last_dir else self.gap
        self._last_dir = from_client
        return self.t

    def advance(self, seconds: float) -> None:
        """Let time pass (think time between requests)."""
        self.t += seconds

    def segment(self, from_client: bool, payload: bytes = b"", *, flags: int = ACK, seq: int | None = None,
                ack: int | None = None, options: bytes = b"") -> Packet:
        """One segment at the current clock; does not move the sequence numbers."""
        ts = self._tick(from_client)
        if from_client:
            src, dst, sp, dp, ttl = self.client, self.server, self.client_port, self.server_port, self.client_ttl
            s = self.client_next if seq is None else seq
            a = self.server_next if ack is None else ack
        else:
            src, dst, sp, dp, ttl = self.server, self.client, self.server_port, self.client_port, self.server_ttl
            s = self.server_next if seq is None else seq
            a = self.client_next if ack is None else ack
        idx = 0 if from_client else 1
        self._ident[idx] = (self._ident[idx] + 1) & 0xFFFF
        seg = tcp_segment(src, dst, sp, dp, payload, seq=s, ack=a if flags & ACK else 0, flags=flags,
                          window=self.window, options=options)
        pkt = (ipv6_packet(src, dst, PROTO_TCP, seg, hop_limit=ttl) if self._v6
               else ipv4_packet(src, dst, PROTO_TCP, seg, ttl=ttl, ident=self._ident[idx]))
        return ts, pkt

    # -- phases ------------------------------------------------------------------------------

    def handshake(self) -> list[Packet]:
        """SYN, SYN-ACK, ACK."""
        opts = tcp_options(mss=self.mss, sack_permitted=True, wscale=8)
        out = [self.segment(True, flags=SYN, ack=0, options=opts)]
        self.client_next += 1
        out.append(self.segment(False, flags=SYN | ACK, options=opts))
        self.server_next += 1
        out.append(self.segment(True))
        return out

    def send(self, data: bytes, *, from_client: bool = True, segments: Sequence[int] = (),
             retransmit: Iterable[int] = (), order: Sequence[int] | None = None, reorder: bool = False,
             ack: bool = True) -> list[Packet]:
        """Send ``data`` from one side, then (``ack``) a pure ACK from the other.

        ``segments`` gives the sizes of the first segments; the rest is cut at ``mss``.
        ``retransmit`` lists segment indices sent a second time (same bytes, same seq) after
        all first copies. ``order`` is the emission order of the segment
        indices; ``reorder=True`` swaps the last two. The last segment carries PSH.
        """
        sizes = list(segments)
        if sum(sizes) > len(data):
            raise ValueError("segment sizes exceed the data")
        rest = len(data) - sum(sizes)
        while rest > 0:
            sizes.append(min(self.mss, rest))
            rest -= sizes[-1]
        base = self.client_next if from_client else self.server_next
        chunks: list[tuple[int, bytes]] = []
        off = 0
        for size in sizes:
            chunks.append((base + off, data[off : off + size]))
            off += size
        idxs = list(range(len(chunks))) if order is None else list(order)
        if reorder and len(idxs) >= 2:
            idxs[-1], idxs[-2] = idxs[-2], idxs[-1]
        again = set(retransmit)
        emit: list[int] = []
        for i in idxs:
            emit.append(i)
        for i in sorted(again):
            emit.append(i)
        out: list[Packet] = []
        last = len(chunks) - 1
        for i in emit:
            seq, chunk = chunks[i]
            flags = ACK | (PSH if i == last else 0)
            out.append(self.segment(from_client, chunk, flags=flags, seq=seq & 0xFFFFFFFF))
        if from_client:
            self.client_next = (base + len(data)) & 0xFFFFFFFF
        else:
            self.server_next = (base + len(data)) & 0xFFFFFFFF
        if ack and data:
            out.append(self.segment(not from_client))
        return out

    def client_send(self, data: bytes, **kw: object) -> list[Packet]:
        """:meth:`send` from the client."""
        return self.send(data, from_client=True, **kw)  # type: ignore[arg-type]

    def server_send(self, data: bytes, **kw: object) -> list[Packet]:
        """:meth:`send` from the server."""
        return self.send(data, from_client=False, **kw)  # type: ignore[arg-type]

    def close(self, *, from_client: bool = True) -> list[Packet]:
        """FIN/ACK, FIN/ACK, ACK started by one side."""
        out = [self.segment(from_client, flags=FIN | ACK)]
        if from_client:
            self.client_next = (self.client_next + 1) & 0xFFFFFFFF
        else:
            self.server_next = (self.server_next + 1) & 0xFFFFFFFF
        out.append(self.segment(not from_client, flags=FIN | ACK))
        if from_client:
            self.server_next = (self.server_next + 1) & 0xFFFFFFFF
        else:
            self.client_next = (self.client_next + 1) & 0xFFFFFFFF
        out.append(self.segment(from_client))
        return out

    def reset(self, *, from_client: bool = True) -> list[Packet]:
        """A single RST/ACK."""
        return [self.segment(from_client, flags=RST | ACK)]


class UdpFlow:
    """A UDP conversation; :meth:`send` returns one ``(ts, ip_packet)`` pair."""

    def __init__(self, client: Address, client_port: int, server: Address, server_port: int, *,
                 start: float = 1_700_000_000.0, rtt: float = 0.020, gap: float = 0.0002,
                 client_ttl: int = 64, server_ttl: int = 56) -> None:
        self.client, self.server = client, server
        self.client_port, self.server_port = client_port, server_port
        self.t = start
        self.rtt, self.gap = rtt, gap
        self.client_ttl, self.server_ttl = client_ttl, server_ttl
        self._last_dir: bool | None = None
        self._ident = [0x2222, 0x3333]

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def send(self, payload: bytes, *, from_client: bool = True) -> Packet:
        if self._last_dir is not None:
            self.t += self.rtt / 2 if from_client != self._last_dir else self.gap
        self._last_dir = from_client
        idx = 0 if from_client else 1
        self._ident[idx] = (self._ident[idx] + 1) & 0xFFFF
        if from_client:
            pkt = udp_packet(self.client, self.server, self.client_port, self.server_port, payload,
                             ttl=self.client_ttl, ident=self._ident[idx])
        else:
            pkt = udp_packet(self.server, self.client, self.server_port, self.client_port, payload,
                             ttl=self.server_ttl, ident=self._ident[idx])
        return self.t, pkt

    def exchange(self, request: bytes, response: bytes) -> list[Packet]:
        """Request from the client, response from the server."""
        return [self.send(request), self.send(response, from_client=False)]


# --------------------------------------------------------------------------------------------
# Files


def _split_ts(ts: Timestamp) -> tuple[int, int]:
    """(seconds, nanoseconds) of a timestamp."""
    if isinstance(ts, tuple):
        return ts[0] + ts[1] // 1_000_000_000, ts[1] % 1_000_000_000
    if isinstance(ts, int):
        return ts, 0
    sec = int(ts // 1)
    ns = round((ts - sec) * 1e9)
    if ns >= 1_000_000_000:
        sec, ns = sec + 1, ns - 1_000_000_000
    return sec, ns


class PcapWriter:
    """Classic pcap (libpcap 2.4): microsecond or nanosecond magic, either byte order."""

    def __init__(self, fileobj: BinaryIO, linktype: int, *, nanosecond: bool = False, big_endian: bool = False,
                 snaplen: int = 262144, version: tuple[int, int] = (2, 4), fcs_words: int | None = None) -> None:
        """``fcs_words`` sets the header's FCS bits (LINKTYPE field bit 28 = FCS length present,
        bits 29-31 = FCS length in 16-bit words, e.g. 2 for a 4-byte FCS)."""
        self.f = fileobj
        self.linktype = linktype
        self.nanosecond = nanosecond
        self.snaplen = snaplen
        self._e = ">" if big_endian else "<"
        self._rec = struct.Struct(self._e + "IIII")
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        network = linktype
        if fcs_words is not None:
            network |= 0x1000_0000 | ((fcs_words & 7) << 29)
        self.f.write(struct.pack(self._e + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, network))

    def write(self, ts: Timestamp, frame: bytes, *, caplen: int | None = None, orig_len: int | None = None) -> None:
        """One record. The frame is cut to ``caplen`` or the snaplen; ``orig_len`` defaults to
        the full frame length."""
        sec, ns = _split_ts(ts)
        frac = ns if self.nanosecond else ns // 1000
        cut = min(len(frame), self.snaplen if caplen is None else caplen)
        orig = len(frame) if orig_len is None else orig_len
        self.f.write(self._rec.pack(sec, frac, cut, orig))
        self.f.write(frame[:cut] if cut < len(frame) else frame)

    def write_all(self, packets: Iterable[tuple[Timestamp, bytes]]) -> None:
        """Records for already framed ``(ts, frame)`` pairs."""
        for ts, frame in packets:
            self.write(ts, frame)


def _options(e: str, opts: Sequence[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    out = bytearray()
    for code, value in opts:
        out += struct.pack(e + "HH", code, len(value)) + value + b"\x00" * (-len(value) & 3)
    out += b"\x00\x00\x00\x00"  # opt_endofopt
    return bytes(out)


class PcapngWriter:
    """pcapng: Section Header, Interface Description, Enhanced/Simple Packet blocks.

    One section is opened on construction; :meth:`new_section` starts another (interfaces are
    per section).
    """

    def __init__(self, fileobj: BinaryIO, *, big_endian: bool = False, comment: str | None = None,
                 hardware: str | None = None, os: str | None = None, application: str | None = "datareach-testing",
                 section_length: int = -1) -> None:
        self.f = fileobj
        self.interfaces: list[tuple[int, int, int]] = []  # (linktype, snaplen, units per second)
        self._e = ""
        self.new_section(big_endian=big_endian, comment=comment, hardware=hardware, os=os,
                         application=application, section_length=section_length)

    def _block(self, btype: int, body: bytes) -> None:
        body += b"\x00" * (-len(body) & 3)
        total = 12 + len(body)
        e = self._e
        self.f.write(struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total))

    def new_section(self, *, big_endian: bool = False, comment: str | None = None, hardware: str | None = None,
                    os: str | None = None, application: str | None = "datareach-testing",
                    section_length: int = -1) -> None:
        """Write a Section Header Block; interface numbering restarts at 0."""
        self._e = ">" if big_endian else "<"
        self.interfaces = []
        opts: list[tuple[int, bytes]] = []
        if comment is not None:
            opts.append((1, comment.encode()))
        if hardware is not None:
            opts.append((2, hardware.encode()))
        if os is not None:
            opts.append((3, os.encode()))
        if application is not None:
            opts.append((4, application.encode()))
        body = struct.pack(self._e + "IHHq", 0x1A2B3C4D, 1, 0, section_length) + _options(self._e, opts)
        self._block(0x0A0D0D0A, body)

    def add_interface(self, linktype: int, *, tsresol: int = 6, snaplen: int = 262144, name: str | None = None,
                      description: str | None = None, tsoffset: int | None = None,
                      explicit_tsresol: bool = False, fcslen: int | None = None) -> int:
        """Interface Description Block; returns the interface id.

        ``tsresol`` is the raw if_tsresol byte: 6 = microseconds (the default, then the option is
        omitted unless ``explicit_tsresol``), 9 = nanoseconds, ``0x80 | n`` = 2**-n seconds.
        ``tsoffset`` is if_tsoffset (seconds added to every timestamp).
        """
        opts: list[tuple[int, bytes]] = []
        if name is not None:
            opts.append((2, name.encode()))
        if description is not None:
            opts.append((3, description.encode()))
        if tsresol != 6 or explicit_tsresol:
            opts.append((9, bytes([tsresol])))
        if fcslen is not None:
            opts.append((13, bytes([fcslen])))
        if tsoffset is not None:
            opts.append((14, struct.pack(self._e + "q", tsoffset)))
        body = struct.pack(self._e + "HHI", linktype, 0, snaplen) + _options(self._e, opts)
        self._block(1, body)
        units = 2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10**tsresol
        self.interfaces.append((linktype, snaplen, units))
        return len(self.interfaces) - 1

    def _ticks(self, ts: Timestamp, units: int) -> int:
        sec, ns = _split_ts(ts)
        return sec * units + (ns * units) // 1_000_000_000

    def write(self, ts: Timestamp, frame: bytes, interface: int = 0, *, caplen: int | None = None,
              orig_len: int | None = None, comment: str | None = None, flags: int | None = None) -> None:
        """Enhanced Packet Block. ``flags`` is epb_flags (bits 0-1: 1 inbound, 2 outbound)."""
        _lt, snaplen, units = self.interfaces[interface]
        limit = snaplen if snaplen else len(frame)
        cut = min(len(frame), limit if caplen is None else caplen)
        orig = len(frame) if orig_len is None else orig_len
        ticks = self._ticks(ts, units)
        opts: list[tuple[int, bytes]] = []
        if comment is not None:
            opts.append((1, comment.encode()))
        if flags is not None:
            opts.append((2, struct.pack(self._e + "I", flags)))
        data = frame[:cut]
        body = (struct.pack(self._e + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, cut, orig)
                + data + b"\x00" * (-len(data) & 3) + _options(self._e, opts))
        self._block(6, body)

    def write_simple(self, frame: bytes, *, orig_len: int | None = None) -> None:
        """Simple Packet Block (interface 0, no timestamp). The stored data is cut to interface
        0's snaplen; the block records only ``orig_len``."""
        _lt, snaplen, _units = self.interfaces[0]
        orig = len(frame) if orig_len is None else orig_len
        cut = min(len(frame), orig, snaplen if snaplen else len(frame))
        self._block(3, struct.pack(self._e + "I", orig) + frame[:cut])

    def write_secrets(self, keylog: bytes, secrets_type: int = 0x544C534B) -> None:
        """Decryption Secrets Block (type 10): by default a TLS key log, as ``editcap
        --inject-secrets tls,FILE`` writes it."""
        self._block(10, struct.pack(self._e + "II", secrets_type, len(keylog)) + keylog)

    def write_block(self, block_type: int, body: bytes) -> None:
        """Any block (e.g. an unknown or custom type readers must skip). ``body`` is padded."""
        self._block(block_type, body)

    def write_all(self, packets: Iterable[tuple[Timestamp, bytes]], interface: int = 0) -> None:
        """EPBs for already framed ``(ts, frame)`` pairs."""
        for ts, frame in packets:
            self.write(ts, frame, interface)


# --------------------------------------------------------------------------------------------
# TLS


def openssl_client_hello(host: str, alpn: Sequence[str] | None = None, rng: random.Random | None = None) -> bytes:
    """A genuine ClientHello (as TLS records) written by this Python's OpenSSL for ``host``.

    With ``rng``, the parts OpenSSL draws at random (client random, session id, key-share
    public keys) are overwritten from it, so that generated captures are reproducible.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    outgoing = ssl.MemoryBIO()
    tls = ctx.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=host)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    rec = bytearray(outgoing.read())
    if rng is None:
        return bytes(rec)
    p = 11  # record header (5), handshake header (4), legacy_version (2)
    rec[p : p + 32] = rng.randbytes(32)
    p += 32
    sid_len = rec[p]
    rec[p + 1 : p + 1 + sid_len] = rng.randbytes(sid_len)
    p += 1 + sid_len
    p += 2 + int.from_bytes(rec[p : p + 2], "big")  # cipher suites
    p += 1 + rec[p]  # compression methods
    end = p + 2 + int.from_bytes(rec[p : p + 2], "big")
    p += 2
    while p < end:
        etype, elen = struct.unpack_from("!HH", rec, p)
        if etype == 0x0033:  # key_share
            q = p + 6
            while q < p + 4 + elen:
                _group, klen = struct.unpack_from("!HH", rec, q)
                rec[q + 4 : q + 4 + klen] = rng.randbytes(klen)
                q += 4 + klen
        p += 4 + elen
    return bytes(rec)


def distinct_destinations_pcap(path: Path, n: int) -> Path:
    """A classic pcap of ``n`` TCP SYNs from 192.168.1.2 to ``n`` distinct addresses in
    11.0.0.0/8, 1,000 a second: as many destinations as packets (the largest result per byte of
    input). Written straight, without building packets one object at a time."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        eth = bytes.fromhex("001122334455665544332211") + b"\x08\x00"
        for i in range(n):
            dst = (11 << 24) + i * 7 + 1
            tcp = struct.pack("!HHIIBBHHH", 40000 + i % 20000, 443, i, 0, 5 << 4, 0x02, 65535, 0, 0)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xFFFF, 0, 64, 6, 0, bytes([192, 168, 1, 2]),
                             dst.to_bytes(4, "big"))
            frame = eth + ip + tcp
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 1000, i % 1000 * 1000, len(frame), len(frame)))
            f.write(frame)
    return path
