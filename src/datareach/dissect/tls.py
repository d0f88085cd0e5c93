"""TLS over TCP: the ClientHello (server name, ALPN, Encrypted Client Hello), the ServerHello,
and the record layer of a connection followed after its handshake.

Entry points:

* :func:`parse_client_hello` takes a handshake message (type byte, 3-byte length, body), as
  carried in TLS records over TCP or in QUIC CRYPTO frames.
* :func:`client_hello_from_records` takes the start of a TLS-over-TCP client stream (TLS
  records) and returns the handshake message once all of it has arrived, since a ClientHello
  may span several records and several TCP segments.
* :func:`parse_server_hello` reads the negotiated version, cipher suite and server random.
* :class:`TlsRecordStream` frames the records of one direction of a connection from its
  in-order bytes, fed in pieces of any size (sans-IO: no sockets, no packets), and in the
  server's direction reads the ServerHello. :class:`TlsFollower` is what
  :class:`~datareach.dissect.packets.PacketDecoder` calls with the records of the connections it
  follows (for a later decryption stage: the client random from the ClientHello, the server
  random and cipher suite from the ServerHello, and every record in order).

Everything here treats its input as hostile: lengths are checked against the buffer, and a
malformed message gives ``None``, never an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

HANDSHAKE_CLIENT_HELLO = 1
HANDSHAKE_SERVER_HELLO = 2
HANDSHAKE_ENCRYPTED_EXTENSIONS = 8
EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_ENCRYPT_THEN_MAC = 22
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SUPPORTED_VERSIONS = 43
#: encrypted_client_hello (draft-ietf-tls-esni); 0xfe0d is the code point deployed since draft 13.
EXT_ECH = 0xFE0D
#: Older ESNI / ECH draft code points seen in the wild.
EXT_ECH_LEGACY = frozenset({0xFFCE, 0xFE08, 0xFE09, 0xFE0A})
#: Largest ClientHello we wait for (post-quantum key shares make them ~2 KB; 64 KiB is generous).
MAX_CLIENT_HELLO = 1 << 16


_EXT_HEADER = struct.Struct(">HH").unpack_from


@dataclass(slots=True, frozen=True)
class ClientHello:
    server_name: str | None
    alpn: tuple[str, ...]
    ech: bool
    #: the handshake message itself (not part of equality: a hello is "the same" by what it names).
    #: What a decryption stage needs is decoded from it only when asked for.
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def random(self) -> bytes:
        """The 32-byte client random (the key of an SSLKEYLOGFILE line); empty without ``raw``."""
        return self.raw[6:38]

    @property
    def cipher_suites(self) -> tuple[int, ...]:
        """The cipher suites offered, in the client's order (GREASE values included)."""
        b = self.raw
        if len(b) < 39:
            return ()
        p = 39 + b[38]  # after the legacy_session_id (bounds checked by parse_client_hello)
        return struct.unpack_from(f">{int.from_bytes(b[p : p + 2], 'big') >> 1}H", b, p + 2)


class NeedMore(Exception):
    """The stream holds only part of the ClientHello so far."""


def _decode_name(raw: bytes) -> str | None:
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    name = name.rstrip(".").lower()
    if not name or len(name) > 253:
        return None
    return name


def parse_client_hello(msg: bytes | memoryview) -> ClientHello | None:
    """Parse a complete handshake message that should be a ClientHello."""
    b = bytes(msg)
    if len(b) < 4 or b[0] != HANDSHAKE_CLIENT_HELLO:
        return None
    length = int.from_bytes(b[1:4], "big")
    end = 4 + length
    if end > len(b):
        return None
    p = 4 + 2 + 32  # legacy_version, random
    if p + 1 > end:
        return None
    p += 1 + b[p]  # legacy_session_id
    if p + 2 > end:
        return None
    p += 2 + int.from_bytes(b[p : p + 2], "big")  # cipher_suites
    if p + 1 > end:
        return None
    p += 1 + b[p]  # legacy_compression_methods
    if p == end:  # no extensions at all
        return ClientHello(None, (), False, b)
    # the extension block, read in place (the capture's hot path: :func:`_extensions` reads the
    # same layout for the ServerHello, into a list)
    if p + 2 > end:
        return None
    ext_end = p + 2 + int.from_bytes(b[p : p + 2], "big")
    if ext_end > end:
        return None
    p += 2
    server_name: str | None = None
    alpn: list[str] = []
    ech = False
    while p + 4 <= ext_end:
        etype, elen = _EXT_HEADER(b, p)
        body_start = p + 4
        p = body_start + elen
        if p > ext_end:
            return None
        if etype == EXT_SERVER_NAME and elen >= 5:
            # server_name_list: 2-byte length, then entries (type, 2-byte length, name)
            q = body_start + 2
            list_end = min(p, q + int.from_bytes(b[body_start : body_start + 2], "big"))
            while q + 3 <= list_end:
                ntype = b[q]
                nlen = int.from_bytes(b[q + 1 : q + 3], "big")
                if q + 3 + nlen > list_end:
                    break
                if ntype == 0 and server_name is None:
                    server_name = _decode_name(b[q + 3 : q + 3 + nlen])
                q += 3 + nlen
        elif etype == EXT_ALPN and elen >= 2:
            q = body_start + 2
            while q < p:
                plen = b[q]
                if q + 1 + plen > p:
                    break
                alpn.append(b[q + 1 : q + 1 + plen].decode("latin-1"))
                q += 1 + plen
        elif etype == EXT_ECH or etype in EXT_ECH_LEGACY:
            # ECHClientHello.type: 0 = outer, 1 = inner. Only the outer form travels in clear.
            ech = elen == 0 or b[body_start] == 0 or etype != EXT_ECH
    return ClientHello(server_name, tuple(alpn), ech, b)


def _extensions(b: bytes, p: int, end: int) -> list[tuple[int, int, int]] | None:
    """The (type, body offset, body length) of each extension in the block at ``p`` (its 2-byte
    length first), or None when an extension overruns the block or the block the message."""
    if p + 2 > end:
        return None
    ext_end = p + 2 + int.from_bytes(b[p : p + 2], "big")
    if ext_end > end:
        return None
    p += 2
    out = []
    while p + 4 <= ext_end:
        etype, elen = _EXT_HEADER(b, p)
        if p + 4 + elen > ext_end:
            return None
        out.append((etype, p + 4, elen))
        p += 4 + elen
    return out


def looks_like_tls(data: bytes | bytearray | memoryview) -> bool:
    """True when a client stream starts like a TLS handshake record."""
    return len(data) >= 3 and data[0] == 0x16 and data[1] == 3 and data[2] <= 4


def client_hello_from_records(stream: bytes | bytearray | memoryview) -> bytes | None:
    """Extract the handshake message from the TLS records at the start of a client stream.

    Returns the message bytes when complete, ``None`` when the stream is not a TLS handshake,
    and raises :class:`NeedMore` when more stream bytes are needed.
    """
    msg = bytearray()
    p = 0
    n = len(stream)
    while True:
        if p + 5 > n:
            raise NeedMore
        if stream[p] != 0x16 or stream[p + 1] != 3:
            return None
        rlen = (stream[p + 3] << 8) | stream[p + 4]
        if rlen == 0 or rlen > 18432:
            return None
        partial = p + 5 + rlen > n
        # a partial record is used as far as it goes: the message may already be complete in it
        msg += stream[p + 5 : n if partial else p + 5 + rlen]
        p += 5 + rlen
        if len(msg) >= 4:
            if msg[0] != HANDSHAKE_CLIENT_HELLO:
                return None
            need = 4 + int.from_bytes(msg[1:4], "big")
            if need > MAX_CLIENT_HELLO:
                return None
            if need <= len(msg):
                return bytes(msg[:need])
        if partial:
            raise NeedMore


# --------------------------------------------------------------------------------------------
# ServerHello

#: The ServerHello.random of a TLS 1.3 HelloRetryRequest (RFC 8446 section 4.1.3).
HELLO_RETRY_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


class ServerHello(NamedTuple):
    """A ServerHello (or HelloRetryRequest): what a decryption stage needs from the server."""

    #: the negotiated version: supported_versions' selected_version (TLS 1.3), else legacy_version
    version: int
    legacy_version: int
    #: the 32-byte server random
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression: int
    #: extension types, in the server's order
    extensions: tuple[int, ...]
    #: the protocol the server selected (TLS 1.2 and older: in TLS 1.3 it travels encrypted)
    alpn: str | None
    #: a TLS 1.3 HelloRetryRequest (the real ServerHello follows the client's second hello)
    retry: bool

    @property
    def extended_master_secret(self) -> bool:
        """RFC 7627: the TLS 1.2 master secret is derived from the session hash."""
        return EXT_EXTENDED_MASTER_SECRET in self.extensions

    @property
    def encrypt_then_mac(self) -> bool:
        """RFC 7366: TLS 1.2 CBC records are MACed after encryption."""
        return EXT_ENCRYPT_THEN_MAC in self.extensions


def parse_server_hello(msg: bytes | bytearray | memoryview) -> ServerHello | None:
    """Parse a complete handshake message that should be a ServerHello (or HelloRetryRequest)."""
    b = bytes(msg)
    if len(b) < 4 or b[0] != HANDSHAKE_SERVER_HELLO:
        return None
    end = 4 + int.from_bytes(b[1:4], "big")
    if end > len(b) or end < 4 + 2 + 32 + 1:
        return None
    legacy_version = (b[4] << 8) | b[5]
    random = b[6:38]
    p = 38
    sid_end = p + 1 + b[p]
    if sid_end + 3 > end:
        return None
    session_id = b[p + 1 : sid_end]
    cipher_suite = (b[sid_end] << 8) | b[sid_end + 1]
    compression = b[sid_end + 2]
    p = sid_end + 3
    version = legacy_version
    exts: list[int] = []
    alpn: str | None = None
    if p < end:
        extensions = _extensions(b, p, end)
        if extensions is None:
            return None
        for etype, body, elen in extensions:
            exts.append(etype)
            if etype == EXT_SUPPORTED_VERSIONS and elen == 2:
                version = (b[body] << 8) | b[body + 1]
            elif etype == EXT_ALPN:
                alpn = _selected_alpn(b, body, elen)
    return ServerHello(version, legacy_version, random, session_id, cipher_suite, compression, tuple(exts),
                       alpn, random == HELLO_RETRY_RANDOM)


def _selected_alpn(b: bytes, body: int, elen: int) -> str | None:
    """The one protocol a server's ALPN extension (body at ``body``, ``elen`` bytes) selected."""
    if elen >= 3 and b[body + 2] + 3 <= elen:
        return b[body + 3 : body + 3 + b[body + 2]].decode("latin-1")
    return None


def encrypted_extensions_alpn(msg: bytes) -> str | None:
    """The ALPN protocol a TLS 1.3 EncryptedExtensions message at the start of ``msg`` selected
    (the message is encrypted: a decryption stage hands it over once decrypted)."""
    if len(msg) < 6 or msg[0] != HANDSHAKE_ENCRYPTED_EXTENSIONS:
        return None
    extensions = _extensions(msg, 4, min(len(msg), 4 + int.from_bytes(msg[1:4], "big")))
    for etype, body, elen in extensions or ():
        if etype == EXT_ALPN:
            return _selected_alpn(msg, body, elen)
    return None


# --------------------------------------------------------------------------------------------
# The record layer of a followed connection

CT_CHANGE_CIPHER_SPEC = 20
CT_ALERT = 21
CT_HANDSHAKE = 22
CT_APPLICATION_DATA = 23
CT_HEARTBEAT = 24
#: Largest record a peer may send: TLSCiphertext.length <= 2^14 + 2048 (RFC 5246 section 6.2.3;
#: TLS 1.3 allows 2^14 + 256). Beyond it the bytes are not TLS (or the framing was lost).
MAX_RECORD = (1 << 14) + 2048
#: Handshake bytes the server's direction holds while it waits for a ServerHello.
MAX_SERVER_HELLO = 1 << 16


class TlsRecord(NamedTuple):
    """One record of one direction, as sent (ciphertext once the peers encrypt)."""

    content_type: int
    #: the record header's version field (0x0303 on every TLS 1.2 and 1.3 record after the hellos)
    version: int
    #: the record's payload; ``b""`` when the stream does not keep payloads
    payload: bytes
    length: int
    #: where the record's 5-byte header starts in its direction's byte stream
    offset: int
    #: on the record that completed a ServerHello (server direction)
    server_hello: ServerHello | None = None
    #: bytes of the direction lost before this record (a segment missing from the capture, and
    #: what was skipped to find this record's start): earlier records may be missing
    skipped: int = 0


def record_error(content_type: int, version: int, length: int) -> str | None:
    """Why a record header cannot start a TLS record, or None when it can."""
    if not CT_CHANGE_CIPHER_SPEC <= content_type <= CT_HEARTBEAT:
        return f"not TLS: content type {content_type}"
    if version >> 8 != 3 or version & 0xFF > 4:
        return f"not TLS: record version 0x{version:04x}"
    if length > MAX_RECORD:
        return f"not TLS: record length {length} > {MAX_RECORD}"
    return None


class TlsRecordStream:
    """Frames the TLS records of one direction of a connection (sans-IO).

    :meth:`feed` takes the direction's bytes in order, cut anywhere (a record may span many
    segments and a segment hold many records), and returns the records completed by them.
    Memory is bounded: at most one record is held (none with ``keep_payload=False``, which
    returns lengths only), plus, with ``read_server_hello``, the server's first handshake
    messages until the ServerHello is read (at most :data:`MAX_SERVER_HELLO` bytes).

    A header that cannot be TLS (unknown content type, version, or length over
    :data:`MAX_RECORD`) stops the stream: :attr:`error` gives the reason and later bytes are
    ignored (framing cannot be recovered in a byte stream).
    """

    __slots__ = ("_body", "_cur", "_hdr", "_hs", "_left", "_scan", "_skipped", "counts", "error", "keep_payload",
                 "offset", "payload_bytes", "records", "resyncs", "server_hello")

    def __init__(self, read_server_hello: bool = False, keep_payload: bool = True) -> None:
        self.keep_payload = keep_payload
        #: bytes of the direction consumed (on an error: where the bad header starts)
        self.offset = 0
        #: records framed, their payload bytes, and records by content type
        self.records = 0
        self.payload_bytes = 0
        self.counts: dict[int, int] = {}
        self.error: str | None = None
        #: the ServerHello (not a HelloRetryRequest) once read
        self.server_hello: ServerHello | None = None
        self._hdr = bytearray()
        #: the record whose payload is arriving: type, version, length, offset, payload kept
        self._cur: tuple[int, int, int, int, bool] | None = None
        self._body = bytearray()
        self._left = 0
        self._hs: bytearray | None = bytearray() if read_server_hello else None
        #: after a hole: the bytes searched for the next record's start, and the bytes lost so far
        self._scan: bytearray | None = None
        self._skipped = 0
        #: holes gone on after (:meth:`resync`)
        self.resyncs = 0

    def resync(self, skipped: int) -> None:
        """``skipped`` bytes of the direction are missing: the record in progress is lost, and the
        next bytes are searched for a record's start (two record headers in a row that make sense)."""
        self.resyncs += 1
        self._hdr.clear()
        self._cur = None
        self._body.clear()
        self._left = 0
        self._hs = None
        self._scan = bytearray()
        self._skipped += skipped
        self.offset += skipped

    def _find_record(self) -> int | None:
        """Where in the scanned bytes a record starts: its header and the next one make sense (or it
        ends exactly where the bytes do). None: not found yet."""
        buf = self._scan
        assert buf is not None
        n = len(buf)
        for p in range(max(n - 4, 0)):
            if record_error(buf[p], (buf[p + 1] << 8) | buf[p + 2], (buf[p + 3] << 8) | buf[p + 4]) is not None:
                continue
            if not CT_CHANGE_CIPHER_SPEC <= buf[p] <= CT_APPLICATION_DATA:
                continue
            nxt = p + 5 + ((buf[p + 3] << 8) | buf[p + 4])
            if nxt == n:
                return p
            if nxt + 5 <= n and record_error(buf[nxt], (buf[nxt + 1] << 8) | buf[nxt + 2],
                                             (buf[nxt + 3] << 8) | buf[nxt + 4]) is None:
                return p
        return None

    def feed(self, data: bytes | bytearray | memoryview) -> list[TlsRecord]:
        """Add the next bytes of the direction; returns the records they complete."""
        out: list[TlsRecord] = []
        if self.error is not None:
            return out
        if self._scan is not None:  # after a hole: find where a record starts
            scan = self._scan
            scan += data
            at = self._find_record()
            if at is None:
                if len(scan) > 2 * MAX_RECORD:
                    self.error = "not TLS after a hole: no record header found"
                    self._scan = None
                return out
            self._scan = None
            self._skipped += at
            self.offset += at
            data = bytes(scan[at:])
        n = len(data)
        base = self.offset
        p = 0
        while p < n:
            cur = self._cur
            if cur is not None:  # the rest of a record begun in an earlier piece
                take = min(self._left, n - p)
                if cur[4]:
                    self._body += data[p : p + take]
                p += take
                self._left -= take
                if self._left:
                    break
                self._cur = None
                body = bytes(self._body) if cur[4] else b""
                self._body.clear()
                self._record(out, cur[0], cur[1], body, cur[2], cur[3])
                continue
            hdr = self._hdr
            if hdr or n - p < 5:  # a header cut by the piece's end
                take = min(5 - len(hdr), n - p)
                hdr += data[p : p + take]
                p += take
                if len(hdr) < 5:
                    break
                h: bytes | bytearray | memoryview = bytes(hdr)
                hp = 0
                hdr.clear()
            else:
                h = data
                hp = p
                p += 5
            ct = h[hp]
            version = (h[hp + 1] << 8) | h[hp + 2]
            length = (h[hp + 3] << 8) | h[hp + 4]
            at = base + p - 5
            reason = record_error(ct, version, length)
            if reason is not None:
                self.error = reason
                self.offset = at
                return out
            keep = self.keep_payload or (ct == CT_HANDSHAKE and self._hs is not None)
            if n - p >= length:  # the whole record is in this piece
                body = bytes(data[p : p + length]) if keep else b""
                p += length
                self._record(out, ct, version, body, length, at)
            else:
                self._cur = (ct, version, length, at, keep)
                self._left = length
        self.offset = base + n
        return out

    def _record(self, out: list[TlsRecord], ct: int, version: int, body: bytes, length: int, at: int) -> None:
        self.records += 1
        self.payload_bytes += length
        counts = self.counts
        counts[ct] = counts.get(ct, 0) + 1
        hello = None
        if self._hs is not None:
            if ct == CT_HANDSHAKE:
                hello = self._handshake(body)
            elif ct != CT_CHANGE_CIPHER_SPEC and ct != CT_ALERT:
                self._hs = None  # data before the ServerHello: there will be none in clear
            if not self.keep_payload:
                body = b""
        out.append(TlsRecord(ct, version, body, length, at, hello, self._skipped))
        self._skipped = 0

    def _handshake(self, body: bytes) -> ServerHello | None:
        """The server's handshake messages in clear, until the ServerHello."""
        hs = self._hs
        assert hs is not None
        hs += body
        found = None
        while len(hs) >= 4:
            need = 4 + int.from_bytes(hs[1:4], "big")
            if hs[0] != HANDSHAKE_SERVER_HELLO or need > MAX_SERVER_HELLO:
                self._hs = None  # the server's first message is not a ServerHello
                return found
            if len(hs) < need:
                break
            hello = parse_server_hello(hs[:need])
            del hs[:need]
            if hello is None:
                self._hs = None
                return found
            found = hello
            if not hello.retry:  # after a HelloRetryRequest, the ServerHello is still to come
                self.server_hello = hello
                self._hs = None
                return found
        return found


class TlsFlow(NamedTuple):
    """The connection a :class:`TlsFollower` is told about when its ClientHello has been read."""

    #: the connection's index among its reader's connections (and its Connection record's)
    flow: int
    input_index: int
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    #: the uid of its Connection record (:func:`datareach.schema.connection_uid`)
    uid: str = ""


#: Why a direction stopped being followed (besides the framing errors of TlsRecordStream.error,
#: which begin with "not TLS").
END_CLOSED = "closed"
END_RESET = "reset"
#: a segment of the direction is missing from the capture (its bytes cannot be framed further)
END_GAP = "gap"
#: a segment was cut by the capture's snapshot length
END_CUT = "cut"
END_OF_CAPTURE = "end of capture"
#: the connection was idle while too many others were active, and set aside (its row kept)
END_IDLE = "idle"


class TlsFollower(Protocol):
    """Receives the records of the TLS connections a PacketDecoder follows after their handshake.

    Calls for one connection come in this order: :meth:`on_hello` once, then
    :meth:`on_record` for each record of each direction in stream order (the client's from its
    first byte, the ClientHello's records included), :meth:`on_server_hello` right after the
    record that completed a ServerHello or HelloRetryRequest, and :meth:`on_end` once per
    direction. ``ts`` is the capture time of the packet that completed the record.
    """

    def on_hello(self, conn: TlsFlow, hello: ClientHello, ts: float) -> bool | None:
        """False: the connection is not to be followed (nothing will be asked of it again)."""

    def on_server_hello(self, flow: int, hello: ServerHello, ts: float) -> None: ...

    def on_record(self, flow: int, from_client: bool, record: TlsRecord, ts: float) -> None: ...

    def on_end(self, flow: int, from_client: bool, reason: str) -> None: ...
