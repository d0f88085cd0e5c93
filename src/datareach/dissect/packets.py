"""From link-layer frames to connections, DNS answers and HTTP exchanges.

:class:`PacketDecoder` is the per-packet hot path shared by the pcap and pcapng readers. For each
frame it slices the link-layer, IP and TCP/UDP headers by hand (no per-packet objects: see
../shared/reference/performance-baseline.md for why), updates the connection table, and hands
the payload to an application-layer parser only while the connection still has something to
tell: the TLS ClientHello, the QUIC Initial packets, HTTP/1.x requests, DNS responses.
Given a :class:`~datareach.dissect.tls.TlsFollower`, it also follows TLS connections after the
ClientHello and hands it every record of both directions (state TLS_FOLLOW); without one, a
TLS connection has nothing left to tell once its ClientHello is read.
A connection whose first bytes are neither TLS nor HTTP may open with a plaintext preamble
(STARTTLS, PostgreSQL's SSLRequest, SOCKS, HTTP CONNECT: :mod:`datareach.dissect.preamble`, state
PREAMBLE), after which its streams are read as if they began there (TLS or HTTP).

Records produced are appended to :attr:`PacketDecoder.records`, which the reader drains.
"""

from __future__ import annotations

from collections import deque
from socket import AF_INET, AF_INET6, inet_ntop
from typing import TYPE_CHECKING, Any, Final

from datareach.dissect import dns, encap, http1, preamble, tls
from datareach.dissect.defrag import Reassembler
from datareach.dissect.quic import QuicInitialAssembler, looks_like_quic_initial
from datareach.schema import (
    CONNECTION_FIELDS,
    ConnectionBatch,
    Decryption,
    DnsAnswer,
    Exchange,
    PacketAccounting,
    Record,
    connection_uid,
)
from datareach.schema.records import count as encap_count

if TYPE_CHECKING:
    import pyarrow as pa

    from datareach.dissect.keylog import KeyStore
    from datareach.dissect.tlsdecrypt import TlsDecryptor

# Link types: https://www.tcpdump.org/linktypes.html (named in datareach.dissect.encap)
#: Where the IP header starts, for the link types read inline (by the IP version) besides
#: Ethernet and Linux cooked captures; every other layer is walked by :mod:`datareach.dissect.encap`.
LINK_OFFSETS: Final = {0: 4, 108: 4, 12: 0, 14: 0, 101: 0, 228: 0, 229: 0}
SUPPORTED_LINKTYPES: Final = encap.SUPPORTED_LINKTYPES
#: Tunnels inside tunnels at most (IP in GRE in UDP...): deeper ones are counted, not read.
MAX_TUNNEL_DEPTH: Final = 8
#: Multicast DNS and LLMNR: their answers are read from either side (naming local hosts).
LOCAL_DNS_PORTS: Final = {5353: "mdns", 5355: "llmnr"}
MALFORMED: Final = "malformed or truncated IP/TCP/UDP header"
ENCRYPTED_ESP: Final = encap.Outcome("encrypted: IPsec ESP")

ETH_IPV4: Final = encap.ETH_IPV4
ETH_IPV6: Final = encap.ETH_IPV6
VLAN_TYPES: Final = encap.VLAN_TYPES
IPV6_EXT_HEADERS: Final = frozenset({0, 43, 60, 51})

# Connection inspection states
UNDECIDED: Final = 0
TLS: Final = 1
HTTP: Final = 2
DNS_TCP: Final = 3
#: TLS after the ClientHello, when the decoder has a TlsFollower: both directions' records
TLS_FOLLOW: Final = 4
#: QUIC after its Initial ClientHello, when a key log has its secrets: both directions' datagrams
QUIC_FOLLOW: Final = 5
#: A plaintext preamble (:mod:`datareach.dissect.preamble`) read in both directions; once it hands
#: over, the connection is UNDECIDED again from where TLS (or the tunnel) begins
PREAMBLE: Final = 6
#: In a parallel reader's overlap, a followed QUIC connection idle this long (capture time) is
#: left to the next range (QUIC has no FIN: without it the overlap would run to the file's end).
QUIC_OVERLAP_IDLE: Final = 30.0
DONE: Final = 9

#: Ports whose owner is the server when the first packet seen is not a SYN.
SERVICE_PORTS: Final = frozenset({53, 80, 443, 853, 5228, 5222, 5223, 8080, 8443, 1883, 8883, 123, 3478, 5353, 5355, 1900, 137, 138, 67, 547})
MAX_TLS_HEAD: Final = 1 << 16
MAX_OOO_SEGMENTS: Final = 64
#: Holes a followed TLS direction goes on after (each: the record stream finds the next record).
MAX_TLS_RESYNCS: Final = 16
MAX_DNS_TCP_BUFFER: Final = 1 << 17
#: Holes a plain-HTTP connection goes on after (each: the parser takes up at the next request or
#: status line); past it the connection is no longer read.
MAX_HTTP_HOLES: Final = 64
#: DNS responses remembered (by content) so that repeated look-ups are parsed once.
DNS_PARSE_CACHE: Final = 4096
#: Connections kept as live objects at most. Past it, the least recently active half are
#: *retired* (those whose payload is being read last): each becomes a row of an Arrow batch, and only its key (and where its row is) is
#: remembered; a packet of a retired connection brings it back from its row, counters and all,
#: so the result is the same as with every connection live. What was retired in the middle of
#: an inspection (a request or ClientHello half read) is flushed and counted
#: (:attr:`PacketDecoder.retired_inspecting`).
MAX_LIVE_FLOWS: Final = 1 << 16
#: Retired connections' rows are made into an Arrow batch this many at a time.
ROW_BATCH: Final = 1 << 14


class _Stream:
    """In-order delivery of one direction of a TCP connection.

    Handles retransmissions and overlaps (already-delivered bytes are trimmed) and segments that
    arrive early (held until the gap is filled, up to :data:`MAX_OOO_SEGMENTS`).
    """

    __slots__ = ("gap", "next", "ooo")

    def __init__(self, next_seq: int | None) -> None:
        self.next = next_seq
        self.ooo: dict[int, bytes] | None = None
        self.gap = False

    def add(self, seq: int, payload: bytes) -> bytes | None:
        nxt = self.next
        if nxt is None:
            self.next = nxt = seq
        rel = (seq - nxt) & 0xFFFFFFFF
        if rel >= 0x80000000:  # starts before what we have: retransmission or overlap
            overlap = (nxt - seq) & 0xFFFFFFFF
            if overlap >= len(payload):
                return None
            payload = payload[overlap:]
        elif rel:  # a gap before it: keep for later
            ooo = self.ooo
            if ooo is None:
                ooo = self.ooo = {}
            ooo[seq] = payload
            if len(ooo) > MAX_OOO_SEGMENTS:
                self.gap = True  # a segment is missing from the capture
            return None
        nxt = (nxt + len(payload)) & 0xFFFFFFFF
        if self.ooo:
            parts = [payload]
            progressed = True
            while progressed and self.ooo:
                progressed = False
                for s in list(self.ooo):
                    r = (nxt - s) & 0xFFFFFFFF
                    if r < 0x80000000:  # starts at or before nxt
                        d = self.ooo.pop(s)
                        if r < len(d):
                            parts.append(d[r:])
                            nxt = (nxt + len(d) - r) & 0xFFFFFFFF
                        progressed = True
            payload = b"".join(parts)
        self.next = nxt
        return payload

    def skip_hole(self) -> tuple[int, bytes] | None:
        """Give up waiting for the missing bytes: (how many were skipped, the bytes held after
        them, in order), or None when nothing is held."""
        ooo = self.ooo
        if not ooo or self.next is None:
            return None
        nxt = self.next
        first = min(ooo, key=lambda s: (s - nxt) & 0xFFFFFFFF)
        skipped = (first - nxt) & 0xFFFFFFFF
        self.next = first
        self.gap = False
        return skipped, self.add(first, ooo.pop(first)) or b""


class Flow:
    """State of one connection while the capture is read."""

    __slots__ = (
        "alpn",
        "app",
        "bytes_in",
        "bytes_out",
        "client_port",
        "closed",
        "cstream",
        "ech",
        "fid",
        "first",
        "head",
        "holes",
        "http_host",
        "key",
        "last",
        "pending",
        "pkts_in",
        "pkts_out",
        "ports",
        "pre",
        "protocol",
        "quic",
        "quic_sni",
        "req",
        "req_scan",
        "resp",
        "resp_scan",
        "server_port",
        "sni",
        "sstream",
        "state",
        "synless",
        "tcp",
        "tls_in",
        "tls_out",
        "tunnel",
        "v6",
    )

    def __init__(self, key: bytes, v6: bool, tcp: bool, ts: float, cport: int, sport: int, fid: int) -> None:
        self.key = key
        #: index of the flow among its reader's flows (and of its Connection record)
        self.fid = fid
        #: the first packet seen was not a SYN: the connection may have begun before it
        self.synless = True
        self.v6 = v6
        self.tcp = tcp
        self.first = ts
        self.last = ts
        self.pkts_out = 0
        self.bytes_out = 0
        self.pkts_in = 0
        self.bytes_in = 0
        self.client_port = cport
        self.server_port = sport
        self.state = UNDECIDED
        #: 1 client FIN, 2 server FIN, 4 RST
        self.closed = 0
        self.sni: str | None = None
        self.quic_sni: str | None = None
        self.http_host: str | None = None
        self.ech = False
        self.alpn: tuple[str, ...] = ()
        self.protocol: str | None = None
        self.app: str | None = None
        self.cstream: _Stream | None = None
        self.sstream: _Stream | None = None
        self.head: bytearray | None = None
        self.req: http1.RequestStream | None = None
        self.resp: http1.ResponseStream | None = None
        self.pending: deque[Exchange] | None = None
        self.quic: QuicInitialAssembler | None = None
        #: DNS over UDP: the client ports of the transactions folded into this record
        self.ports: set[int] | None = None
        #: TLS_FOLLOW: the records of each direction (None once that direction is no longer followed)
        self.tls_out: tls.TlsRecordStream | None = None
        self.tls_in: tls.TlsRecordStream | None = None
        #: the tunnels it was seen in (Connection.tunnel)
        self.tunnel: str | None = None
        #: HTTP: holes skipped, and while a direction looks for its next message after one
        self.holes = 0
        self.req_scan: http1.MessageScan | None = None
        self.resp_scan: http1.MessageScan | None = None
        #: PREAMBLE, and after it until TLS or HTTP is recognised: the preamble (the server's bytes
        #: after it are kept there until then)
        self.pre: preamble.Preamble | None = None

    def addresses(self) -> tuple[str, str]:
        k = self.key
        if self.v6:
            return inet_ntop(AF_INET6, k[0:16]), inet_ntop(AF_INET6, k[16:32])
        return inet_ntop(AF_INET, k[0:4]), inet_ntop(AF_INET, k[4:8])


def encrypted_counts(table: pa.Table | None) -> tuple[int, int]:
    """How many of a connection table's connections are TLS, and how many QUIC."""
    if table is None or not table.num_rows:
        return 0, 0
    import pyarrow.compute as pc

    counts = {d["values"]: d["counts"] for d in pc.value_counts(table.column("protocol")).to_pylist()}
    return int(counts.get("tls", 0)), int(counts.get("quic", 0))


def _is_address(host: str) -> bool:
    """Whether a host is an IPv4 or IPv6 address literal rather than a name."""
    return ":" in host or host.replace(".", "").isdigit()


def _reverse_key(key: bytes, v6: bool) -> bytes:
    if v6:
        return key[16:32] + key[0:16] + key[34:36] + key[32:34]
    return key[4:8] + key[0:4] + key[10:12] + key[8:10]


def canonical_key(key: bytes, v6: bool, tcp: bool, dns: bool, app: str | None) -> bytes:
    """A flow's key with its two endpoints in a fixed order, and the transport (what parallel
    readers' connections are matched on: :mod:`datareach.sources.parallel`).

    DNS-over-UDP records (one per client, resolver and app) are keyed by their addresses and app.
    """
    if dns:
        return b"d" + key[: 32 if v6 else 8] + (app or "").encode("utf-8", "surrogatepass")
    a, b = (key[0:16], key[16:32]) if v6 else (key[0:4], key[4:8])
    pa_, pb = (key[32:34], key[34:36]) if v6 else (key[8:10], key[10:12])
    lo, hi = sorted(((a, pa_), (b, pb)))
    return (b"t" if tcp else b"u") + lo[0] + lo[1] + hi[0] + hi[1]


#: What a decoder's connection table has besides Connection's fields: the flow's index (the
#: table is in its order), whether its first packet was not a SYN, its FIN/RST bits and, for
#: parallel readers only, its :func:`canonical_key`.
EXTRA_FIELDS: Final = ("fid", "synless", "closed", "ckey")
_N_FIELDS: Final = len(CONNECTION_FIELDS)
_FIRST, _LAST = CONNECTION_FIELDS.index("first_seen"), CONNECTION_FIELDS.index("last_seen")


def _table_schema(keys: bool) -> pa.Schema:
    import pyarrow as pa

    from datareach.schema import Connection, arrow_schema

    extra = [pa.field("fid", pa.int64()), pa.field("synless", pa.bool_()), pa.field("closed", pa.int8())]
    if keys:
        extra.append(pa.field("ckey", pa.binary()))
    return pa.schema([*arrow_schema(Connection), *extra])


class PacketDecoder:
    """Decodes frames of one input and accumulates its connections."""

    def __init__(self, input_index: int, body_cap: int = http1.DEFAULT_BODY_CAP, keep_bodies: bool = True,
                 tls_follower: tls.TlsFollower | None = None, max_live: int | None = None,
                 merge_keys: bool = False, keys: KeyStore | None = None) -> None:
        #: with a follower, TLS connections are followed past the ClientHello (state TLS_FOLLOW) and
        #: their records handed to it; without one they are DONE once the ClientHello is read
        self.tls_follower = tls_follower
        #: with keys (a key log, or a pcapng's Decryption Secrets Blocks: :meth:`add_secrets`), the
        #: follower is a TlsDecryptor, which opens the connections it has keys for
        self.keys = keys
        self._own_keys = False
        self.decryptor: TlsDecryptor | None = None
        #: with False, requests carry their body's size but not the body (memory stays bounded)
        self.keep_bodies = keep_bodies
        self.input_index = input_index
        self.body_cap = body_cap
        self.tcp_flows: dict[bytes, tuple[Flow, bool]] = {}
        self.udp_flows: dict[bytes, tuple[Flow, bool]] = {}
        #: DNS over UDP, by (client address, resolver address, app): see _dns_udp
        self.dns_flows: dict[tuple[bytes, bytes, str | None], Flow] = {}
        #: the live connections, by their index (fid)
        self.flows: dict[int, Flow] = {}
        self._next_fid = 0
        self.max_live = max(2, max_live if max_live is not None else MAX_LIVE_FLOWS)
        #: with True, the connection table has a ``ckey`` column (parallel readers)
        self.merge_keys = merge_keys
        # retired connections: rows not yet in a batch, the batches (ROW_BATCH rows each), and
        # by key (client side first), where each one's row is; a row brought back is dead
        self._rows: list[tuple[Any, ...]] = []
        self._batches: list[pa.RecordBatch] = []
        self._retired_tcp: dict[bytes, int] = {}
        self._retired_udp: dict[bytes, int] = {}
        self._done = bytearray()  # per retired row: 1 if its inspection was over
        self._dead = bytearray()  # per retired row: 1 if the connection was brought back since
        self._retired_pending = 0  # retired rows whose inspection had not begun, not brought back
        self._names: dict[bytes, str] = {}
        #: connections retired, brought back, and retired while an inspection was under way
        self.retired = 0
        self.revived = 0
        self.retired_inspecting = 0
        #: after :meth:`finish`: every connection, in their order (Connection's fields, then
        #: :data:`EXTRA_FIELDS`)
        self.connections: pa.Table | None = None
        self.records: list[Record] = []
        #: After the end of a parallel reader's byte range: only connections still being
        #: inspected are followed (see datareach.sources.parallel); nothing is counted.
        self.overlap = False
        self._followed: list[Flow] = []
        self._now = 0.0  # (in the overlap: the time of the last datagram)
        self._dns_parsed: dict[bytes, list[tuple[str, str, str, int, tuple[str, ...]]]] = {}
        self.malformed = 0
        self.cut = 0
        #: HTTP header blocks over http1.MAX_HEADER_BYTES, read in part: requests (each request
        #: says so in its decode_cuts) and responses
        self.request_head_cuts = 0
        #: holes in plain-HTTP streams skipped (a segment missing from the capture, or cut by the
        #: snapshot length), and the bytes skipped to the next message after them
        self.http_holes = 0
        self.http_bytes_skipped = 0
        self.response_head_cuts = 0
        #: every frame's outcome (the readers add the frames and bytes they hand over)
        self.accounting = PacketAccounting()
        # while a tunnel's payload is read: its description (Connection.tunnel) and depth
        self._via: str | None = None
        self._depth = 0
        self._via_names: dict[tuple[str | None, str, bytes], str] = {}
        self.defrag = Reassembler(self._fragments_dropped)
        #: plaintext preambles read, by protocol (``smtp+starttls``, ``socks5`` ...; ``smtp
        #: (plaintext)`` where no TLS followed), and preambles given up on after
        #: preamble.MAX_PREAMBLE bytes
        self.preambles: dict[str, int] = {}
        self.preamble_overruns = 0
        if keys:
            self._start_decrypting(keys)

    def _start_decrypting(self, keys: KeyStore) -> None:
        from datareach.dissect.tlsdecrypt import TlsDecryptor

        def app_of(fid: int) -> str | None:
            flow = self.flows.get(fid)
            return flow.app if flow is not None else None

        self.keys = keys
        self.decryptor = TlsDecryptor(keys, self._emit, app_of=app_of, body_cap=self.body_cap,
                                      keep_bodies=self.keep_bodies)
        self.tls_follower = self.decryptor

    def _emit(self, rec: Record) -> None:
        self.records.append(rec)

    def add_secrets(self, text: bytes) -> None:
        """Key log lines found in the input (a pcapng Decryption Secrets Block): connections whose
        ClientHello comes after them are decrypted."""
        from datareach.dissect.keylog import DSB_SOURCE, KeyStore

        if self.keys is None:
            self.keys = KeyStore()
        elif not self._own_keys:  # (the audit's key logs are shared by its inputs: not changed)
            self.keys = self.keys.child()
        self._own_keys = True
        self.keys.add_text(text, DSB_SOURCE)
        if self.decryptor is not None:
            self.decryptor.keys = self.decryptor.quic.keys = self.keys
        elif self.keys and self.tls_follower is None:
            self._start_decrypting(self.keys)

    def decryption(self) -> Decryption:
        """What became of the encrypted connections (after :meth:`finish`)."""
        from datareach.dissect.keylog import DSB_SOURCE

        d = self.decryptor
        own = [s.to_dict() for s in self.keys.sources if s.name == DSB_SOURCE] if self.keys is not None else []
        tls_n, quic_n = encrypted_counts(self.connections)
        return Decryption(tls_n, quic_n, keys=bool(self.keys),
                          counts=d.stats.to_dict() if d is not None else {}, sources=own,
                          uids=list(d.stats.uids) if d is not None else [])

    # -- per packet -------------------------------------------------------------------------

    def packet(self, ts: float, data: bytes, linktype: int, app: str | None = None) -> None:
        """Process one frame. ``data`` is what was captured (possibly cut by the snaplen).

        The common case -- a TCP or UDP packet of a connection that has nothing left to inspect
        -- is handled inline: it only updates the counters.
        """
        try:
            if linktype == 1:
                ip = 14
                et = (data[12] << 8) | data[13]
                while et in VLAN_TYPES:
                    et = (data[ip + 2] << 8) | data[ip + 3]
                    ip += 4
                v6 = et == ETH_IPV6
                if not v6 and et != ETH_IPV4:
                    self._encapsulated(ts, data, linktype, app)
                    return
            else:
                off = LINK_OFFSETS.get(linktype)
                if off is None or len(data) <= off:
                    self._encapsulated(ts, data, linktype, app)
                    return
                ip = off
                ver = data[ip] >> 4
                v6 = ver == 6
                if not v6 and ver != 4:
                    self._encapsulated(ts, data, linktype, app)
                    return
            # the connection's counters alone, when nothing is left to inspect (or the packet is
            # a bare ACK, which has nothing to inspect)
            hit = None
            wire = -1
            if v6:
                proto = data[ip + 6]
                if proto == 6 or proto == 17:
                    hit = (self.tcp_flows if proto == 6 else self.udp_flows).get(data[ip + 8 : ip + 44])
                    if hit is not None:
                        plen = (data[ip + 4] << 8) | data[ip + 5]
                        if proto == 17:
                            if hit[0].state == DONE:
                                wire = plen - 8
                        elif not data[ip + 53] & 0x02:  # (a SYN may open a connection on a reused port)
                            payload = plen - ((data[ip + 52] >> 4) << 2)
                            if hit[0].state == DONE or (payload == 0 and not data[ip + 53] & 0x05):
                                wire = payload
            elif data[ip] == 0x45 and not ((data[ip + 6] & 0x3F) | data[ip + 7]):
                proto = data[ip + 9]
                if proto == 6 or proto == 17:
                    hit = (self.tcp_flows if proto == 6 else self.udp_flows).get(data[ip + 12 : ip + 24])
                    if hit is not None:
                        total = (data[ip + 2] << 8) | data[ip + 3]
                        if proto == 17:
                            if hit[0].state == DONE:
                                wire = total - 28
                        elif not data[ip + 33] & 0x02:
                            payload = total - 20 - ((data[ip + 32] >> 4) << 2)
                            if hit[0].state == DONE or (payload == 0 and not data[ip + 33] & 0x05):
                                wire = payload
            if wire >= 0 and hit is not None:
                if self.overlap:
                    return
                flow, out = hit
                flow.last = ts
                if out:
                    flow.pkts_out += 1
                    flow.bytes_out += wire
                else:
                    flow.pkts_in += 1
                    flow.bytes_in += wire
                return
            if v6:
                self._ipv6(ts, data, ip, app)
            else:
                self._ipv4(ts, data, ip, app)
            if len(self.flows) > self.max_live:  # (once the packet is done with its connection)
                self._retire()
        except IndexError:
            self._malformed(data)

    # -- accounting, link layers and tunnels -----------------------------------------------------

    def _malformed(self, data: bytes) -> None:
        self.malformed += 1
        if not self.overlap:
            encap_count(self.accounting.not_decoded, MALFORMED, 1, len(data))

    def _outcome(self, outcome: encap.Outcome, data: bytes) -> None:
        """A frame that gave no IP packet: counted by why."""
        if self.overlap:
            return
        acc = self.accounting
        encap_count(acc.not_ip if outcome.ip is False else acc.not_decoded, outcome.reason, 1, len(data))

    def _fragments_dropped(self, reason: str, frames: int, nbytes: int, first: tuple[bytes, bytes, float] | None) -> None:
        """A datagram that will never be whole: its first fragment is read as far as it goes (its
        transport header and the start of the payload); the other fragments are counted."""
        if first is not None:
            head, payload, ts = first
            frames -= 1
            nbytes -= len(head) + len(payload)
            self._datagram(ts, head, payload, None)
        if frames > 0:
            encap_count(self.accounting.not_decoded, reason, frames, max(0, nbytes))

    def _fragment4(self, ts: float, data: bytes, ip: int, ihl: int, total: int, app: str | None) -> None:
        """An IPv4 fragment: the datagram is read once whole."""
        flags = data[ip + 6]
        offset = (((flags & 0x1F) << 8) | data[ip + 7]) << 3
        key = data[ip + 12 : ip + 20] + data[ip + 4 : ip + 6] + data[ip + 9 : ip + 10]
        head = data[ip : ip + ihl] if offset == 0 else None
        done = self.defrag.add(key, ts, offset, bool(flags & 0x20), data[ip + ihl : ip + total], head, len(data),
                               not self.overlap)
        if done is not None:
            self._datagram(ts, *done, app)

    def _fragment6(self, ts: float, data: bytes, ip: int, frag: int, end: int, app: str | None) -> None:
        """An IPv6 fragment (its fragment header at ``frag``): the datagram is read once whole."""
        fo = (data[frag + 2] << 8) | data[frag + 3]
        key = data[ip + 8 : ip + 40] + data[frag + 4 : frag + 8]
        offset = fo & 0xFFF8
        head = data[ip : ip + 6] + bytes((data[frag],)) + data[ip + 7 : ip + 40] if offset == 0 else None
        done = self.defrag.add(key, ts, offset, bool(fo & 1), data[frag + 8 : end], head, len(data),
                               not self.overlap)
        if done is not None:
            self._datagram(ts, *done, app)

    def _datagram(self, ts: float, head: bytes, payload: bytes, app: str | None) -> None:
        """A datagram put together from fragments (or a first fragment read as far as it goes):
        its header (the first fragment's) with the whole length and no fragmentation, then read."""
        if head[0] >> 4 == 4:
            n = len(head) + len(payload)
            self._ipv4(ts, head[:2] + n.to_bytes(2, "big") + head[4:6] + b"\x00\x00" + head[8:] + payload, 0, app)
        else:
            self._ipv6(ts, head[:4] + len(payload).to_bytes(2, "big") + head[6:] + payload, 0, app)

    def _encapsulated(self, ts: float, data: bytes, linktype: int, app: str | None) -> None:
        """A frame whose IP header is not where Ethernet or the link type puts it: the layers in
        between are walked (VLAN, MPLS, PPPoE, LLC/SNAP, 802.11, PPP, NFLOG...)."""
        res = encap.to_ip(data, linktype)
        if isinstance(res, encap.Outcome):
            self._outcome(res, data)
            return
        ver, ip = res
        if ver == 6:
            self._ipv6(ts, data, ip, app)
        else:
            self._ipv4(ts, data, ip, app)

    def _tunnel(self, ts: float, data: bytes, res: encap.Result, name: str, outer: bytes, v6: bool,
                app: str | None) -> None:
        """The packet a tunnel carries: read as if bare, its connections marked with the tunnel. (A
        tunnel carrying no IP -- ARP in VXLAN, NHRP or STP in GRE -- was read: its frame is IP
        traffic understood, as an ICMP or OSPF packet is.)"""
        if self._via is None and not self.overlap:
            encap_count(self.accounting.tunnelled, name, 1, len(data))
        if isinstance(res, encap.Outcome):
            if res.ip is not False:
                self._outcome(res, data)
            return
        if self._depth >= MAX_TUNNEL_DEPTH:
            self._outcome(encap.Outcome(f"tunnels nested more than {MAX_TUNNEL_DEPTH} deep"), data)
            return
        prev = self._via
        key = (prev, name, outer)
        via = self._via_names.get(key)
        if via is None:
            fam, a = (AF_INET6, 16) if v6 else (AF_INET, 4)
            via = f"{name} {inet_ntop(fam, outer[:a])}>{inet_ntop(fam, outer[a:])}"
            if prev is not None:
                via = f"{prev} / {via}"
            if len(self._via_names) >= 4096:
                self._via_names.clear()
            self._via_names[key] = via
        ver, ip = res
        self._via = via
        self._depth += 1
        try:
            if ver == 6:
                self._ipv6(ts, data, ip, app)
            else:
                self._ipv4(ts, data, ip, app)
        finally:
            self._depth -= 1
            self._via = prev

    def _ipv4(self, ts: float, data: bytes, ip: int, app: str | None) -> None:
        ihl = (data[ip] & 0x0F) << 2
        total = (data[ip + 2] << 8) | data[ip + 3]
        proto = data[ip + 9]
        if total == 0 and ihl >= 20:  # (a segment offloaded to the NIC (TSO): its captured length)
            total = len(data) - ip
        if ihl < 20 or total < ihl:
            self._malformed(data)
            return
        if (data[ip + 6] & 0x3F) or data[ip + 7]:  # a fragment: put together first
            self._fragment4(ts, data, ip, ihl, total, app)
            return
        l4 = ip + ihl
        if proto == 6 or proto == 17:
            if ihl == 20:
                key = data[ip + 12 : ip + 24]
            else:
                key = data[ip + 12 : ip + 20] + data[l4 : l4 + 4]
            if len(key) != 12:
                self._malformed(data)
                return
            end = ip + total
            if proto == 6:
                self._tcp(ts, data, l4, end, key, False, app)
            else:
                self._udp(ts, data, l4, end, key, False, app)
        else:
            self._carried(ts, data, l4, ip + total, proto, data[ip + 12 : ip + 20], False, app)

    def _ipv6(self, ts: float, data: bytes, ip: int, app: str | None) -> None:
        plen = (data[ip + 4] << 8) | data[ip + 5]
        if plen == 0:  # (a jumbogram, or a segment offloaded to the NIC: its captured length)
            plen = len(data) - ip - 40
        nh = data[ip + 6]
        l4 = ip + 40
        end = l4 + plen
        hops = 0
        while nh in IPV6_EXT_HEADERS or nh == 44:
            if nh == 44:  # fragment header: put together first (an atomic fragment is whole)
                if (data[l4 + 2] << 8) | data[l4 + 3] != 0:
                    self._fragment6(ts, data, ip, l4, end, app)
                    return
                nh = data[l4]
                l4 += 8
            elif nh == 51:  # AH: length in 4-byte units
                nh, l4 = data[l4], l4 + ((data[l4 + 1] + 2) << 2)
            else:
                nh, l4 = data[l4], l4 + ((data[l4 + 1] + 1) << 3)
            hops += 1
            if hops > 8:
                self._malformed(data)
                return
        if nh == 6 or nh == 17:
            if l4 == ip + 40:
                key = data[ip + 8 : ip + 44]
            else:
                key = data[ip + 8 : ip + 40] + data[l4 : l4 + 4]
            if len(key) != 36:
                self._malformed(data)
                return
            if nh == 6:
                self._tcp(ts, data, l4, end, key, True, app)
            else:
                self._udp(ts, data, l4, end, key, True, app)
        else:
            self._carried(ts, data, l4, end, nh, data[ip + 8 : ip + 40], True, app)

    def _carried(self, ts: float, data: bytes, l4: int, end: int, proto: int, outer: bytes, v6: bool,
                 app: str | None) -> None:
        """What an IP packet carries besides TCP and UDP: a tunnel is read, IPsec ESP counted (as
        encrypted), anything else (ICMP, OSPF...) is IP traffic with no connection to follow."""
        if proto in encap.TUNNEL_PROTOCOLS:
            self._tunnel(ts, data, encap.ip_tunnel(data, l4, end, proto), encap.TUNNEL_PROTOCOLS[proto], outer, v6,
                         app)
        elif proto == 50:
            self._outcome(ENCRYPTED_ESP, data)

    def _new_flow(self, table: dict[bytes, tuple[Flow, bool]], key: bytes, v6: bool, tcp: bool,
                  ts: float, from_client: bool, app: str | None) -> tuple[Flow, bool]:
        rkey = _reverse_key(key, v6)
        pk = 32 if v6 else 8
        sport = (key[pk] << 8) | key[pk + 1]
        dport = (key[pk + 2] << 8) | key[pk + 3]
        fid = self._next_fid
        self._next_fid += 1
        if from_client:
            flow = Flow(key, v6, tcp, ts, sport, dport, fid)
        else:
            flow = Flow(rkey, v6, tcp, ts, dport, sport, fid)
        flow.app = app
        flow.tunnel = self._via
        table[flow.key] = (flow, True)
        table[_reverse_key(flow.key, v6)] = (flow, False)
        self.flows[fid] = flow
        return flow, from_client

    def _tcp(self, ts: float, data: bytes, l4: int, end: int, key: bytes, v6: bool, app: str | None) -> None:
        hit = self.tcp_flows.get(key)
        flags = data[l4 + 13]
        doff = (data[l4 + 12] >> 4) << 2
        start = l4 + doff
        wire_len = end - start
        if wire_len < 0:
            self._malformed(data)
            return
        if self.overlap:
            self._now = ts
            if hit is None and self._retired_pending:  # (one set aside before its payload began)
                hit = self._revive(self.tcp_flows, self._retired_tcp, key, v6, True, ts, pending_only=True)
                if hit is not None:
                    self._followed.append(hit[0])
            if hit is None or hit[0].state == DONE:
                return
            self._tcp_inspect(ts, data, l4, end, hit[0], hit[1], flags, start, wire_len)
            return
        if hit is None and self._retired_tcp:
            hit = self._revive(self.tcp_flows, self._retired_tcp, key, v6, True, ts)
        if hit is None:
            pk = 32 if v6 else 8
            sport = (key[pk] << 8) | key[pk + 1]
            dport = (key[pk + 2] << 8) | key[pk + 3]
            if flags & 0x02:  # SYN: the sender is the client unless it is a SYN-ACK
                from_client = not flags & 0x10
            else:
                from_client = not (sport in SERVICE_PORTS and dport not in SERVICE_PORTS) and not (
                    sport < 1024 <= dport
                )
            hit = self._new_flow(self.tcp_flows, key, v6, True, ts, from_client, app)
            hit[0].synless = flags & 0x12 != 0x02
        elif flags & 0x12 == 0x02 and (hit[0].closed or hit[0].bytes_out or hit[0].bytes_in):
            # a SYN on a connection that already carried data or closed: the port was reused
            hit = self._new_flow(self.tcp_flows, key, v6, True, ts, True, app)
            hit[0].synless = False
        flow, out = hit
        flow.last = ts
        if out:
            flow.pkts_out += 1
            flow.bytes_out += wire_len
        else:
            flow.pkts_in += 1
            flow.bytes_in += wire_len
        self._tcp_inspect(ts, data, l4, end, flow, out, flags, start, wire_len)

    def _tcp_inspect(self, ts: float, data: bytes, l4: int, end: int, flow: Flow, out: bool, flags: int,
                     start: int, wire_len: int) -> None:
        """Reassemble and parse the payload of a connection that still has something to tell."""
        if flags & 0x05:  # FIN or RST
            flow.closed |= (1 if out else 2) if flags & 0x01 else 4
        state = flow.state
        if state == DONE:
            return
        seq = int.from_bytes(data[l4 + 4 : l4 + 8], "big")
        if flags & 0x02:  # SYN or SYN-ACK: learn the initial sequence number
            nxt = (seq + 1) & 0xFFFFFFFF
            if out:
                if flow.cstream is None:
                    flow.cstream = _Stream(nxt)
            elif flow.sstream is None:
                flow.sstream = _Stream(nxt)
            if wire_len == 0:
                return
            seq = nxt  # (TCP Fast Open: data in the SYN, after its sequence number)
        if wire_len == 0:
            closed = flow.closed
            if closed & 3 == 3 or (closed & 4 and state != HTTP):
                self._stop_inspecting(flow, ts)
            return
        payload = data[start:end]
        if len(payload) < wire_len:
            self.cut += 1
        if state == TLS_FOLLOW:
            self._tls_follow(flow, out, seq, payload, len(payload) < wire_len, ts)
        elif out:
            cs = flow.cstream
            if cs is None:
                cs = flow.cstream = _Stream(None)
            chunk = cs.add(seq, payload)
            if chunk:
                self._client_bytes(flow, chunk, ts)
            if (cs.gap or len(payload) < wire_len) and (
                    flow.state != HTTP or not self._http_hole(flow, True, cs, wire_len - len(payload), ts)):
                self._stop_inspecting(flow, ts)
        elif state in (HTTP, DNS_TCP, PREAMBLE) or (state == UNDECIDED and (flow.pre is not None or not flow.synless)):
            ss = flow.sstream
            if ss is None:
                ss = flow.sstream = _Stream(None)
            chunk = ss.add(seq, payload)
            if chunk:
                self._server_bytes(flow, chunk, ts)
            if (ss.gap or len(payload) < wire_len) and (
                    state != HTTP or not self._http_hole(flow, False, ss, wire_len - len(payload), ts)):
                self._stop_inspecting(flow, ts)
        closed = flow.closed
        if (closed & 3 == 3 or (closed & 4 and flow.state != HTTP)) and flow.state != DONE:
            self._stop_inspecting(flow, ts)  # both sides closed, or reset: nothing more will come
        # (plain HTTP goes on after a reset, as far as the capture has data: a reset injected by
        # a middlebox does not end the conversation; the end of the input does)

    def _udp(self, ts: float, data: bytes, l4: int, end: int, key: bytes, v6: bool, app: str | None) -> None:
        hit = self.udp_flows.get(key)
        payload = data[l4 + 8 : end]
        wire_len = end - l4 - 8
        if wire_len < 0:
            self._malformed(data)
            return
        pk = 32 if v6 else 8
        sport = (key[pk] << 8) | key[pk + 1]
        dport = (key[pk + 2] << 8) | key[pk + 3]
        if hit is None and (dport in encap.TUNNEL_PORTS or sport in encap.TUNNEL_PORTS):
            t = encap.udp_tunnel(data, l4 + 8, sport, dport)
            if t is not None:
                self._tunnel(ts, data, t[1], t[0], key[: pk], v6, app)
                return
        if sport == 53 or dport == 53:
            self._dns_udp(ts, key, v6, app, sport, dport, payload, wire_len)
            return
        if self.overlap:  # only QUIC handshakes still in progress, and QUIC connections followed
            self._now = ts
            if hit is not None and hit[0].state == QUIC_FOLLOW:
                hit[0].last = ts
                self._quic_datagram(hit[0], hit[1], payload, ts)
            elif hit is not None and hit[1] and hit[0].state != DONE:
                self._udp_client(hit[0], payload, ts)
            return
        if hit is None and self._retired_udp:
            hit = self._revive(self.udp_flows, self._retired_udp, key, v6, False, ts)
        if hit is None:
            from_client = not (sport in SERVICE_PORTS and dport not in SERVICE_PORTS) and not (
                sport < 1024 <= dport
            )
            hit = self._new_flow(self.udp_flows, key, v6, False, ts, from_client, app)
        flow, out = hit
        flow.last = ts
        if len(payload) < wire_len:
            self.cut += 1
        if flow.server_port in LOCAL_DNS_PORTS or flow.client_port in LOCAL_DNS_PORTS:
            # mDNS and LLMNR: answers, from either side (mDNS sends them to the group), name local hosts
            if out:
                flow.pkts_out += 1
                flow.bytes_out += wire_len
            else:
                flow.pkts_in += 1
                flow.bytes_in += wire_len
            flow.protocol = LOCAL_DNS_PORTS.get(flow.server_port) or LOCAL_DNS_PORTS[flow.client_port]
            if len(payload) > 2 and payload[2] & 0x80:
                self._dns_message(payload, ts, flow)
            return
        if out:
            flow.pkts_out += 1
            flow.bytes_out += wire_len
            if flow.state == QUIC_FOLLOW:
                self._quic_datagram(flow, True, payload, ts)
            elif flow.state != DONE and flow.server_port != 53:
                self._udp_client(flow, payload, ts)
        else:
            flow.pkts_in += 1
            flow.bytes_in += wire_len
            if flow.state == QUIC_FOLLOW:
                self._quic_datagram(flow, False, payload, ts)
            elif sport == 53:
                flow.protocol = "dns"
                self._dns_message(payload, ts, flow)

    def _dns_udp(self, ts: float, key: bytes, v6: bool, app: str | None, sport: int, dport: int,
                 payload: bytes, wire_len: int) -> None:
        """DNS over UDP: one record per client, resolver and app, counting its transactions.

        Every query comes from a new source port, so a capture holds as many DNS "flows" as
        look-ups; keeping each as its own connection would cost more than all the rest of the
        traffic. The record's ``flows`` counts the distinct client ports, which is the number
        of distinct 5-tuples the flows would have had.
        """
        if self.overlap:
            return  # each range reads the DNS responses inside it
        a = 16 if v6 else 4
        # (the header's QR bit says which is the answer: between two resolvers both ports are 53, and
        # a response may be sent to port 53)
        from_client = not payload[2] & 0x80 if len(payload) > 2 else dport == 53
        client, server = (key[0:a], key[a : 2 * a]) if from_client else (key[a : 2 * a], key[0:a])
        cport = sport if from_client else dport
        dkey = (client, server, app)
        flow = self.dns_flows.get(dkey)
        if flow is None:
            flow = Flow(client + server + cport.to_bytes(2, "big") + b"\x00\x35", v6, False, ts, cport, 53,
                        self._next_fid)
            self._next_fid += 1
            flow.app = app
            flow.tunnel = self._via
            flow.ports = set()
            flow.protocol = "dns"
            flow.state = DONE
            self.flows[flow.fid] = flow
            self.dns_flows[dkey] = flow
        flow.ports.add(cport)  # type: ignore[union-attr]
        flow.last = ts
        if len(payload) < wire_len:
            self.cut += 1
        if from_client:
            flow.pkts_out += 1
            flow.bytes_out += wire_len
        else:
            flow.pkts_in += 1
            flow.bytes_in += wire_len
            self._dns_message(payload, ts, flow)

    # -- application layer ------------------------------------------------------------------

    def _quic_datagram(self, flow: Flow, from_client: bool, payload: bytes, ts: float) -> None:
        d = self.decryptor
        if d is None or not d.quic.following(flow.fid):
            flow.state = DONE
            return
        d.quic.on_datagram(flow.fid, from_client, payload, ts)

    def _udp_client(self, flow: Flow, payload: bytes, ts: float) -> None:
        q = flow.quic
        if q is None:
            if not looks_like_quic_initial(payload):
                if flow.pkts_out > 4:
                    flow.state = DONE
                return
            q = flow.quic = QuicInitialAssembler()
            flow.protocol = "quic"
        hello = q.feed(payload)
        if hello is not None:
            flow.quic_sni = hello.server_name
            flow.ech = flow.ech or hello.ech
            flow.alpn = hello.alpn
            d = self.decryptor
            if d is not None and q.version is not None:
                cip, sip = flow.addresses()
                conn = tls.TlsFlow(flow.fid, self.input_index, cip, flow.client_port, sip, flow.server_port,
                                   self._uid(flow))
                if d.quic.on_hello(conn, hello, q.version):
                    flow.state = QUIC_FOLLOW
                    flow.quic = None
                    d.quic.on_datagram(flow.fid, True, payload, ts)  # (0-RTT may be coalesced with it)
                    return
        if q.done:
            flow.state = DONE
            flow.quic = None

    def _dns_message(self, payload: bytes, ts: float, flow: Flow) -> None:
        # Apps look the same names up again and again: a response identical but for its
        # transaction ID is parsed once.
        key = payload[2:]
        answers = self._dns_parsed.get(key)
        if answers is None:
            resp = dns.parse_response(payload)
            answers = resp.chains() if resp is not None else []
            if len(self._dns_parsed) >= DNS_PARSE_CACHE:
                self._dns_parsed.clear()
            self._dns_parsed[key] = answers
        if not answers:
            return
        index, uid, append = self.input_index, self._uid(flow), self.records.append
        for asked, rtype, addr, ttl, chain in answers:
            append(DnsAnswer(ts, asked, rtype, addr, chain, ttl, index, uid))  # type: ignore[arg-type]

    def _uid(self, flow: Flow) -> str:
        """The uid of the flow's Connection record."""
        return connection_uid(self.input_index, flow.fid)

    def _stop_inspecting(self, flow: Flow, ts: float) -> None:
        """Stop inspecting a connection: it closed, or its stream has a hole (lost or cut segments)."""
        if flow.state == TLS_FOLLOW:
            self._tls_stop(flow)
            return
        if flow.state == HTTP:
            self._http_drain(flow, ts)
        if flow.req is not None:
            last = flow.req.flush()
            if last is not None:
                self._request(flow, last, ts)
        self._flush_pending(flow)
        flow.state = DONE
        flow.pending = None  # (an empty deque is ~0.7 KB, for each connection kept until it is retired)
        flow.cstream = flow.sstream = None
        flow.head = None
        flow.pre = None
        flow.req = flow.resp = None
        flow.req_scan = flow.resp_scan = None

    def _client_bytes(self, flow: Flow, chunk: bytes, ts: float) -> None:
        state = flow.state
        if state == UNDECIDED:
            head = flow.head
            if head is None:
                head = flow.head = bytearray()
            head += chunk
            if tls.looks_like_tls(head):
                state = flow.state = TLS
                flow.protocol = "tls"
            elif http1.looks_like_http_request(head):
                if flow.pre is None and head.startswith(b"CONNECT "):
                    flow.protocol = "http"  # (until the tunnel says what it carries)
                    self._preamble_start(flow, preamble.CONNECT, ts)
                    return
                flow.state = HTTP
                flow.protocol = "http"
                flow.req = http1.RequestStream(self.body_cap)
                flow.resp = http1.ResponseStream()
                flow.pending = deque()
                flow.head = None
                self._http_client(flow, bytes(head), ts)
                if flow.pre is not None:  # (after a preamble: what the server sent since)
                    rest = flow.pre.take_server_rest()
                    flow.pre = None
                    if rest and flow.state == HTTP:
                        self._server_bytes(flow, rest, ts)
                return
            elif flow.server_port == 53 and len(head) >= 2:
                flow.state = DNS_TCP
                flow.protocol = "dns"
                flow.head = None  # queries carry nothing we need; answers come from the server
                return
            elif flow.pre is None and (kind := preamble.client_first(head)) is not None:
                self._preamble_start(flow, kind, ts)
                return
            elif len(head) >= 16:
                flow.state = DONE
                flow.head = None
                flow.cstream = None
                return
            else:
                return
        elif state == TLS and flow.head is not None:
            flow.head += chunk
        if state == TLS:
            self._tls_client(flow, ts)
        elif state == HTTP:
            self._http_client(flow, chunk, ts)
        elif state == PREAMBLE and flow.pre is not None and flow.pre.client(chunk) != preamble.READING:
            self._preamble_end(flow, ts)

    def _tls_client(self, flow: Flow, ts: float) -> None:
        head = flow.head
        if head is None:
            return
        try:
            msg = tls.client_hello_from_records(head)
        except tls.NeedMore:
            if len(head) > MAX_TLS_HEAD:
                self._stop_inspecting(flow, ts)
            return
        if msg is not None:
            hello = tls.parse_client_hello(msg)
            if hello is not None:
                flow.sni = hello.server_name
                flow.ech = hello.ech
                flow.alpn = hello.alpn
                if self.tls_follower is not None:
                    self._tls_follow_start(flow, hello, bytes(head), ts)
                    return
        flow.state = DONE
        flow.head = None
        flow.cstream = flow.sstream = None

    # -- plaintext preambles before TLS or a tunnel ----------------------------------------------

    def _preamble_start(self, flow: Flow, kind: str, ts: float) -> None:
        """The client's first bytes open a preamble: read both directions (state PREAMBLE)."""
        pre = flow.pre = preamble.Preamble(kind)
        flow.state = PREAMBLE
        head = flow.head or b""
        flow.head = None
        if pre.client(head) != preamble.READING:
            self._preamble_end(flow, ts)

    def _preamble_server(self, flow: Flow, chunk: bytes, ts: float) -> None:
        """Server bytes before TLS or HTTP is recognised: a greeting (the server speaks first), a
        preamble's, or the first after it (kept for the protocol that follows)."""
        pre = flow.pre
        if pre is None:
            if flow.head:  # (the client spoke first, in a protocol not known here)
                return
            pre = flow.pre = preamble.Preamble(preamble.SERVER_FIRST)
            flow.state = PREAMBLE
        if pre.server(chunk) != preamble.READING and flow.state == PREAMBLE:
            self._preamble_end(flow, ts)

    def _preamble_end(self, flow: Flow, ts: float) -> None:
        """The preamble is decided: both directions go on as UNDECIDED from where TLS or the tunnel
        begins (a refused CONNECT: as plain HTTP from the start); anything else is DONE."""
        pre = flow.pre
        assert pre is not None
        status = pre.status
        if status == preamble.OVERRUN:
            self.preamble_overruns += 1
        if pre.protocol is not None and status != preamble.NOT:
            name = pre.protocol if status in (preamble.UPGRADED, preamble.TUNNEL, preamble.OPAQUE) else (
                f"{pre.protocol} ({'overrun' if status == preamble.OVERRUN else 'plaintext'})")
            self.preambles[name] = self.preambles.get(name, 0) + 1
        if status in (preamble.UPGRADED, preamble.TUNNEL):
            flow.state = UNDECIDED
            for head, code in pre.connects:  # (CONNECT requests are exchanges, as other requests)
                req = http1.RequestStream(self.body_cap)
                for parsed in [*req.feed(head), req.flush()]:
                    if parsed is not None:
                        self._request(flow, parsed, ts).status = code
            target = pre.target
            if target is not None and flow.http_host is None and not _is_address(target[0]):
                flow.http_host = target[0]  # (the tunnel's destination names it where no SNI does)
            rest = pre.take_client_rest()
            if rest:
                self._client_bytes(flow, rest, ts)
        elif pre.kind == preamble.CONNECT:
            # (a refused CONNECT, or one that is no tunnel request -- "CONNECT / HTTP/1.1" -- or
            # never answered: the requests and responses are plain HTTP)
            flow.state = UNDECIDED
            self._client_bytes(flow, pre.take_client_rest(), ts)
        else:
            self._stop_inspecting(flow, ts)

    # -- following TLS connections (only with a tls_follower) ---------------------------------

    def _tls_follow_start(self, flow: Flow, hello: tls.ClientHello, head: bytes, ts: float) -> None:
        """The ClientHello is read: follow both directions' records from their first byte."""
        follower = self.tls_follower
        assert follower is not None
        flow.state = TLS_FOLLOW
        flow.head = None
        cip, sip = flow.addresses()
        conn = tls.TlsFlow(flow.fid, self.input_index, cip, flow.client_port, sip, flow.server_port, self._uid(flow))
        if follower.on_hello(conn, hello, ts) is False:  # (nothing to follow it for: no keys)
            flow.state = DONE
            flow.cstream = flow.sstream = None
            return
        flow.tls_out = tls.TlsRecordStream()
        flow.tls_in = tls.TlsRecordStream(read_server_hello=True)
        self._tls_records(flow, True, head, ts)
        if flow.pre is not None:  # after a preamble: the server's bytes since its end
            rest = flow.pre.take_server_rest()
            flow.pre = None
            if rest:
                self._tls_records(flow, False, rest, ts)

    def _tls_follow(self, flow: Flow, out: bool, seq: int, payload: bytes, cut: bool, ts: float) -> None:
        """One segment of a followed connection: a hole ends its direction only."""
        if out:
            if flow.tls_out is None:
                return
            st = flow.cstream
            if st is None:
                st = flow.cstream = _Stream(None)
        else:
            if flow.tls_in is None:
                return
            st = flow.sstream
            if st is None:
                st = flow.sstream = _Stream(None)
        chunk = st.add(seq, payload)
        if chunk:
            self._tls_records(flow, out, chunk, ts)
        if st.gap and not cut and self._tls_skip_hole(flow, out, st, ts):
            return
        if st.gap or cut:
            self._tls_end(flow, out, tls.END_GAP if st.gap else tls.END_CUT)

    def _tls_skip_hole(self, flow: Flow, out: bool, st: _Stream, ts: float) -> bool:
        """A segment is missing for good: go on after it, the record stream finding the next
        record's start (at most MAX_TLS_RESYNCS times per direction). False: the direction ends."""
        rs = flow.tls_out if out else flow.tls_in
        if rs is None or rs.resyncs >= MAX_TLS_RESYNCS:
            return False
        hole = st.skip_hole()
        if hole is None:
            return False
        skipped, data = hole
        rs.resync(skipped)
        if data:
            self._tls_records(flow, out, data, ts)
        return True

    def _tls_drain(self, flow: Flow, ts: float) -> None:
        """Before a followed connection ends: what each direction holds after a hole is read."""
        for out, st in ((True, flow.cstream), (False, flow.sstream)):
            while st is not None and st.ooo and (flow.tls_out if out else flow.tls_in) is not None:
                if not self._tls_skip_hole(flow, out, st, ts):
                    break

    def _tls_records(self, flow: Flow, out: bool, chunk: bytes, ts: float) -> None:
        rs = flow.tls_out if out else flow.tls_in
        follower = self.tls_follower
        if rs is None or follower is None:
            return
        fid = flow.fid
        for rec in rs.feed(chunk):
            follower.on_record(fid, out, rec, ts)
            if rec.server_hello is not None:
                follower.on_server_hello(fid, rec.server_hello, ts)
        if rs.error is not None:
            self._tls_end(flow, out, rs.error)

    def _tls_end(self, flow: Flow, out: bool, reason: str) -> None:
        """Stop following one direction; the connection is DONE when neither is followed."""
        if out:
            if flow.tls_out is None:
                return
            flow.tls_out = None
            flow.cstream = None
        else:
            if flow.tls_in is None:
                return
            flow.tls_in = None
            flow.sstream = None
        if self.tls_follower is not None:
            self.tls_follower.on_end(flow.fid, out, reason)
        if flow.tls_out is None and flow.tls_in is None:
            flow.state = DONE

    def _quic_end(self, flow: Flow) -> None:
        if self.decryptor is not None:
            self.decryptor.quic.end(flow.fid)
        flow.state = DONE

    def _tls_unfollow(self, flow: Flow, reason: str) -> None:
        self._tls_end(flow, True, reason)
        self._tls_end(flow, False, reason)

    def _tls_stop(self, flow: Flow) -> None:
        """What stops inspection stops for a followed connection: it closed or was reset, or the
        segment that completed its ClientHello was cut short (then only the client's side ends)."""
        self._tls_drain(flow, flow.last)
        if flow.closed & 4:
            self._tls_unfollow(flow, tls.END_RESET)
        elif flow.closed & 3 == 3:
            self._tls_unfollow(flow, tls.END_CLOSED)
        else:
            self._tls_end(flow, True, tls.END_CUT)

    def _http_hole(self, flow: Flow, out: bool, st: _Stream, missing: int, ts: float) -> bool:
        """A hole in one direction of a plain-HTTP connection (a segment missing for good, or the
        ``missing`` bytes the snapshot length cut from one): that direction's parser takes up at
        its next request or status line; the other direction goes on. False: too many holes."""
        if flow.holes >= MAX_HTTP_HOLES:
            if out:
                return False
            self._flush_pending(flow)  # (the server side is no longer read: requests go on alone)
            flow.resp = None
            st.ooo, st.gap = None, False
            return True
        if missing:
            st.next = None if st.next is None else (st.next + missing) & 0xFFFFFFFF
            held = st.add(st.next, b"") if st.next is not None and st.ooo else b""
            skipped, data = missing, held or b""
        else:
            hole = st.skip_hole()
            if hole is None:
                return True
            skipped, data = hole
        flow.holes += 1
        self.http_holes += 1
        self.http_bytes_skipped += skipped
        if out:
            req = flow.req
            if req is not None:
                last = req.flush()  # (the request the hole fell in, as far as it went)
                if last is not None:
                    self._request(flow, last, ts)
            flow.req = http1.RequestStream(self.body_cap)
            flow.req_scan = http1.MessageScan(request=True)
            if data:
                self._http_client(flow, data, ts)
        elif flow.resp is not None:
            self._flush_pending(flow)  # (which response answers which request is lost with the hole)
            flow.resp = http1.ResponseStream()
            flow.resp_scan = http1.MessageScan(request=False)
            if data:
                self._server_bytes(flow, data, ts)
        return True

    def _http_drain(self, flow: Flow, ts: float) -> None:
        """Before a plain-HTTP connection ends: what each direction holds after a hole is read."""
        for out, st in ((True, flow.cstream), (False, flow.sstream)):
            while st is not None and st.ooo and flow.holes < MAX_HTTP_HOLES:
                if not self._http_hole(flow, out, st, 0, ts):
                    break

    def _scanned(self, flow: Flow, out: bool, chunk: bytes) -> bytes | None:
        """After a hole: the bytes from the direction's next message on, once found (None while not)."""
        scan = flow.req_scan if out else flow.resp_scan
        assert scan is not None
        before = scan.skipped
        got = scan.feed(chunk)
        self.http_bytes_skipped += scan.skipped - before
        if got is not None:
            if out:
                flow.req_scan = None
            else:
                flow.resp_scan = None
        return got

    def _http_client(self, flow: Flow, chunk: bytes, ts: float) -> None:
        req = flow.req
        if req is None:
            return
        if flow.req_scan is not None:
            got = self._scanned(flow, True, chunk)
            if got is None:
                return
            chunk = got
        for parsed in req.feed(chunk):
            self._request(flow, parsed, ts)
        if req.broken:
            self._stop_inspecting(flow, ts)

    def _request(self, flow: Flow, parsed: http1.ParsedRequest, ts: float) -> Exchange:
        host = parsed.header("host") or ""
        if flow.http_host is None and host:
            flow.http_host = host.split(":")[0].lower() if not host.startswith("[") else host.lower()
        target = parsed.target
        url, name = http1.request_url("http", host, target, parsed.method)
        cip, sip = flow.addresses()
        ex = Exchange(
            ts=ts, scheme="http", method=parsed.method, host=name or sip,
            url=url, target=target, http_version=parsed.version, request_headers=parsed.headers,
            request_body=parsed.body if self.keep_bodies else b"",
            request_body_size=None if self.keep_bodies else len(parsed.body),
            request_body_truncated=parsed.body_truncated,
            server_ip=sip, server_port=flow.server_port, app=flow.app, input_index=self.input_index,
            client_ip=cip, client_port=flow.client_port, uid=self._uid(flow),
        )
        if parsed.head_cut:
            self.request_head_cuts += 1
            ex.decode_cuts = [http1.head_cut_note(parsed)]
        if flow.resp is not None and flow.pending is not None and not flow.resp.broken:
            flow.resp.head_methods.append(parsed.method == "HEAD")
            flow.pending.append(ex)
        else:
            self.records.append(ex)
        return ex

    def _server_bytes(self, flow: Flow, chunk: bytes, ts: float) -> None:
        if flow.state == DNS_TCP:
            head = flow.head
            if head is None:
                head = flow.head = bytearray()
            head += chunk
            while len(head) >= 2:
                mlen = (head[0] << 8) | head[1]
                if len(head) < 2 + mlen:
                    if len(head) > MAX_DNS_TCP_BUFFER:
                        self._stop_inspecting(flow, ts)
                    return
                self._dns_message(bytes(head[2 : 2 + mlen]), ts, flow)
                del head[: 2 + mlen]
            return
        if flow.state != HTTP:  # a server that speaks first, a preamble, or the bytes after one
            self._preamble_server(flow, chunk, ts)
            return
        resp = flow.resp
        pending = flow.pending
        if resp is None or pending is None:
            return
        if flow.resp_scan is not None:
            got = self._scanned(flow, False, chunk)
            if got is None:
                return
            chunk = got
        cuts = resp.head_cuts
        for r in resp.feed(chunk):
            if pending:
                ex = pending.popleft()
                ex.status = r.status
                ex.response_size = r.body_size
                self.records.append(ex)
        self.response_head_cuts += resp.head_cuts - cuts
        if resp.broken:
            self._flush_pending(flow)

    def _flush_pending(self, flow: Flow) -> None:
        if flow.pending:
            self.records.extend(flow.pending)
            flow.pending.clear()

    # -- parallel reading --------------------------------------------------------------------

    def begin_overlap(self) -> None:
        """Past the end of this reader's range: follow only the inspections still under way."""
        self.overlap = True
        for flow in self.flows.values():
            if not flow.tcp and flow.quic is None and flow.state != QUIC_FOLLOW:
                flow.state = DONE  # DNS over UDP and other datagrams: the next range reads them
        self._followed = [f for f in self.flows.values() if f.state != DONE]

    def following(self) -> bool:
        """Whether any connection is still being inspected in the overlap."""
        for f in self._followed:
            if f.state == QUIC_FOLLOW and self._now - f.last > QUIC_OVERLAP_IDLE:
                self._quic_end(f)
        self._followed = [f for f in self._followed if f.state != DONE]
        return bool(self._followed) or self._retired_pending > 0

    # -- end of input -------------------------------------------------------------------------

    def finish(self, objects: bool = True) -> None:
        """Flush what is still in progress and make the table of every connection.

        The table is :attr:`connections`; with ``objects`` its Connection columns also go to
        :attr:`records` as one :class:`ConnectionBatch` (parallel readers take the table).
        """
        import numpy as np
        import pyarrow as pa

        if self.tls_follower is not None:
            for flow in self.flows.values():
                if flow.state == TLS_FOLLOW:
                    self._tls_drain(flow, flow.last)
                    self._tls_unfollow(flow, tls.END_OF_CAPTURE)
        if self.decryptor is not None:
            self.decryptor.finish()
        self.defrag.finish()
        self.accounting.reassembled = self.defrag.reassembled
        for flow in self.flows.values():
            if flow.state == HTTP:
                self._http_drain(flow, flow.last)
            if flow.req is not None:
                last = flow.req.flush()
                if last is not None:
                    self._request(flow, last, flow.last)
            if flow.pending:
                self._flush_pending(flow)
            self._rows.append(self._row(flow))
            self._done.append(0)
            self._dead.append(0)
            if len(self._rows) >= ROW_BATCH:
                self._flush_rows()
        self._flush_rows()
        schema = _table_schema(self.merge_keys)
        table = pa.Table.from_batches(self._batches, schema)
        self._batches = []
        if self.revived:  # the rows of connections brought back since
            table = table.filter(pa.array(np.frombuffer(self._dead, dtype=np.uint8) == 0))
        fid = table.column("fid").to_numpy()
        if len(fid) > 1 and not bool(np.all(fid[1:] > fid[:-1])):
            # (in the order the connections began: a column at a time, to hold one copy at most)
            order = pa.array(np.argsort(fid, kind="stable"))
            for i in range(table.num_columns):
                table = table.set_column(i, table.field(i), table.column(i).take(order))
        self.connections = table
        if objects:
            self.records.append(ConnectionBatch(table=table.select(list(CONNECTION_FIELDS))))
        self.flows.clear()
        self.tcp_flows.clear()
        self.udp_flows.clear()
        self.dns_flows.clear()
        self._retired_tcp.clear()
        self._retired_udp.clear()
        self._done = bytearray()
        self._dead = bytearray()

    @property
    def connection_rows(self) -> list[tuple[Any, ...]]:
        """After :meth:`finish`: every connection as a row of Connection's fields."""
        if self.connections is None:
            return []
        return ConnectionBatch(table=self.connections).row_tuples()

    # -- retiring connections -------------------------------------------------------------------

    def _row(self, flow: Flow) -> tuple[Any, ...]:
        """The connection's row: Connection's fields, then :data:`EXTRA_FIELDS`."""
        names = self._names
        k = flow.key
        ca, sa = (k[0:16], k[16:32]) if flow.v6 else (k[0:4], k[4:8])
        cip = names.get(ca)
        if cip is None:
            cip = names[ca] = inet_ntop(AF_INET6 if flow.v6 else AF_INET, ca)
        sip = names.get(sa)
        if sip is None:
            sip = names[sa] = inet_ntop(AF_INET6 if flow.v6 else AF_INET, sa)
        index = self.input_index
        row = (
            connection_uid(index, flow.fid), "tcp" if flow.tcp else "udp", cip, flow.client_port, sip,
            flow.server_port, flow.first, flow.last, flow.pkts_out, flow.bytes_out, flow.pkts_in, flow.bytes_in,
            flow.sni, flow.quic_sni, flow.http_host, flow.ech, flow.protocol, flow.alpn, flow.app,
            index, len(flow.ports) if flow.ports is not None else 1, flow.tunnel,
            flow.fid, flow.synless, flow.closed,
        )
        if self.merge_keys:
            return (*row, canonical_key(k, flow.v6, flow.tcp, flow.ports is not None, flow.app))
        return row

    def _flush_rows(self) -> None:
        """The pending rows as one Arrow batch."""
        import pyarrow as pa

        rows = self._rows
        if not rows:
            return
        schema = _table_schema(self.merge_keys)
        cols = list(zip(*rows, strict=True))
        self._batches.append(pa.record_batch([pa.array(c, f.type) for c, f in zip(cols, schema, strict=True)],
                                             schema=schema))
        self._rows = []
        self._names = {}

    def _retire(self) -> None:
        """Retire the least recently active half of the live connections (DNS-over-UDP records,
        one per client and resolver, stay)."""
        # (connections being inspected go last: one idle between two requests would lose the second)
        live = sorted((f for f in self.flows.values() if f.ports is None),
                      key=lambda f: (f.state != DONE and bool(f.bytes_out or f.bytes_in), f.last))
        for flow in live[: len(self.flows) // 2]:
            # (a connection whose payload had begun cannot be inspected again from the middle)
            done = flow.state == DONE or bool(flow.bytes_out or flow.bytes_in)
            if flow.state != DONE:
                if done and not flow.closed & 4:  # (a reset one was only waiting for data after its reset)
                    self.retired_inspecting += 1
                if flow.state == TLS_FOLLOW:
                    self._tls_unfollow(flow, tls.END_IDLE)
                elif flow.state == QUIC_FOLLOW:
                    self._quic_end(flow)
                self._stop_inspecting(flow, flow.last)
            table, retired = (self.tcp_flows, self._retired_tcp) if flow.tcp else (self.udp_flows, self._retired_udp)
            entry = table.get(flow.key)
            if entry is not None and entry[0] is flow:
                del table[flow.key]
                table.pop(_reverse_key(flow.key, flow.v6), None)  # (the same key when both ends are)
                retired[flow.key] = len(self._done)
            # (else a new connection on the same ports took the key: this one cannot come back)
            del self.flows[flow.fid]
            self._rows.append(self._row(flow))
            self._done.append(1 if done else 0)
            self._dead.append(0)
            self.retired += 1
            if not done:
                self._retired_pending += 1
            if len(self._rows) >= ROW_BATCH:
                self._flush_rows()

    def _revive(self, table: dict[bytes, tuple[Flow, bool]], retired: dict[bytes, int], key: bytes, v6: bool,
                tcp: bool, ts: float, pending_only: bool = False) -> tuple[Flow, bool] | None:
        """A retired connection brought back from its row, if ``key`` (either way) is one
        (``pending_only``: one whose inspection had not begun)."""
        incoming = key
        pos = retired.get(key)
        if pos is None:
            key = _reverse_key(key, v6)
            pos = retired.get(key)
            if pos is None:
                return None
        if pending_only and self._done[pos]:
            return None
        del retired[key]
        b, i = divmod(pos, ROW_BATCH)
        if b < len(self._batches):
            batch = self._batches[b]
            row = tuple(batch.column(j)[i].as_py() for j in range(_N_FIELDS + 3))
        else:
            row = self._rows[i]
        self._dead[pos] = 1
        (_uid, _transport, _cip, cport, _sip, sport, first, last, pkts_out, bytes_out, pkts_in, bytes_in,
         sni, quic_sni, http_host, ech, protocol, alpn, app, _index, _n, tunnel, fid, synless,
         closed) = row[: _N_FIELDS + 3]
        flow = Flow(key, v6, tcp, first, cport, sport, fid)
        flow.last = max(last, ts)
        flow.pkts_out, flow.bytes_out, flow.pkts_in, flow.bytes_in = pkts_out, bytes_out, pkts_in, bytes_in
        flow.sni, flow.quic_sni, flow.http_host, flow.ech = sni, quic_sni, http_host, ech
        flow.protocol, flow.alpn, flow.app = protocol, tuple(alpn or ()), app
        flow.synless, flow.closed, flow.tunnel = synless, closed, tunnel
        if self._done[pos]:
            flow.state = DONE
        else:
            self._retired_pending -= 1
        self.revived += 1
        table[key] = (flow, True)
        table[_reverse_key(key, v6)] = (flow, False)
        self.flows[fid] = flow
        return table[incoming]  # (as a live connection's packet finds it, also when both ends are one)
