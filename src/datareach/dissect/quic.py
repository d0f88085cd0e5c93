"""Server name from QUIC v1 / v2 client Initial packets.

QUIC protects its Initial packets with keys anyone can derive from the client's Destination
Connection ID (RFC 9001 section 5.2; RFC 9369 section 3.3 for QUIC v2), so the ClientHello
they carry can be read by a passive observer:

1. derive the client Initial key, IV and header-protection key from the DCID (HKDF-SHA256
   with the version's salt and labels; cached per DCID);
2. remove header protection (AES-128-ECB over a 16-byte sample of the ciphertext) to learn the
   packet number and its length;
3. open the payload with AES-128-GCM, the unprotected header being the associated data;
4. walk the frames (PADDING, PING, ACK, CRYPTO), and put CRYPTO data back together by offset:
   browsers split a large ClientHello over several Initial packets, and Chrome scatters and
   reorders CRYPTO frames inside a packet;
5. once the stream from offset 0 holds a whole handshake message, hand it to
   :func:`datareach.dissect.tls.parse_client_hello`.

Everything treats its input as hostile: lengths are checked, work and memory per connection
are bounded (:data:`MAX_DATAGRAMS`, :data:`MAX_CRYPTO_BYTES`), and malformed input gives
``None``, never an exception.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from datareach.dissect.tls import HANDSHAKE_CLIENT_HELLO, ClientHello, parse_client_hello

__all__ = [
    "MAX_CRYPTO_BYTES",
    "MAX_DATAGRAMS",
    "MAX_INITIALS_PER_DATAGRAM",
    "PROTECTION_LABELS",
    "QUIC_V1",
    "QUIC_V2",
    "ZERO_RTT_TYPE",
    "InitialKeys",
    "LongHeader",
    "QuicInitialAssembler",
    "client_initial_keys",
    "decode_packet_number",
    "looks_like_quic_initial",
    "parse_long_header",
    "skip_ack",
    "varint",
]

QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF

#: Initial salts: RFC 9001 section 5.2 and RFC 9369 section 3.3.1.
_SALTS: dict[int, bytes] = {
    QUIC_V1: bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
    QUIC_V2: bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
}
#: HKDF labels for key, iv and header protection (RFC 9369 section 3.3.2 for v2).
PROTECTION_LABELS: dict[int, tuple[bytes, bytes, bytes]] = {
    QUIC_V1: (b"quic key", b"quic iv", b"quic hp"),
    QUIC_V2: (b"quicv2 key", b"quicv2 iv", b"quicv2 hp"),
}
#: Long-header packet type code of an Initial packet, bits 0x30 of the first byte
#: (RFC 9000 section 17.2; RFC 9369 section 3.2); and of a 0-RTT packet.
_INITIAL_TYPE: dict[int, int] = {QUIC_V1: 0, QUIC_V2: 1}
ZERO_RTT_TYPE: dict[int, int] = {QUIC_V1: 1, QUIC_V2: 2}
_RETRY_TYPE: dict[int, int] = {QUIC_V1: 3, QUIC_V2: 0}

_V1_BYTES = QUIC_V1.to_bytes(4, "big")
_V2_BYTES = QUIC_V2.to_bytes(4, "big")

#: Datagrams an assembler accepts before giving up (a ClientHello takes 1-3 in practice).
MAX_DATAGRAMS = 16
#: Largest CRYPTO stream offset we keep: a ClientHello is far smaller (tls.MAX_CLIENT_HELLO).
MAX_CRYPTO_BYTES = 1 << 16
#: Initial packets we try to decrypt per datagram (real clients coalesce one, rarely two).
MAX_INITIALS_PER_DATAGRAM = 4
#: Largest Connection ID in QUIC v1/v2 (RFC 9000 section 17.2).
_MAX_CID = 20
#: AES-GCM tag and header-protection sample sizes (RFC 9001 section 5.4.2).
_TAG = 16
_SAMPLE = 16

_FRAME_PADDING = 0x00
_FRAME_PING = 0x01
_FRAME_ACK = 0x02
_FRAME_ACK_ECN = 0x03
_FRAME_CRYPTO = 0x06


class InitialKeys(NamedTuple):
    """Client Initial packet protection keys for one (version, DCID)."""

    key: bytes
    iv: bytes
    hp: bytes


class _Protection(NamedTuple):
    keys: InitialKeys
    aead: AESGCM
    hp: Cipher[modes.ECB]


def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _hkdf_expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label with an empty context; ``length`` <= 32 (one HMAC block)."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return hmac.new(secret, info + b"\x01", hashlib.sha256).digest()[:length]


def client_initial_keys(dcid: bytes, version: int = QUIC_V1) -> InitialKeys:
    """Derive the client Initial key, IV and header-protection key (RFC 9001 s5.2, RFC 9369 s3.3).

    Raises :class:`KeyError` for a version other than v1 or v2.
    """
    salt = _SALTS[version]
    key_label, iv_label, hp_label = PROTECTION_LABELS[version]
    initial_secret = _hkdf_extract(salt, dcid)
    client_secret = _hkdf_expand_label(initial_secret, b"client in", 32)
    return InitialKeys(
        key=_hkdf_expand_label(client_secret, key_label, 16),
        iv=_hkdf_expand_label(client_secret, iv_label, 12),
        hp=_hkdf_expand_label(client_secret, hp_label, 16),
    )


@lru_cache(maxsize=4096)
def _protection(version: int, dcid: bytes) -> _Protection:
    keys = client_initial_keys(dcid, version)
    return _Protection(keys, AESGCM(keys.key), Cipher(algorithms.AES(keys.hp), modes.ECB()))


def looks_like_quic_initial(datagram: bytes) -> bool:
    """Cheap check: does the datagram start with a QUIC v1/v2 long-header Initial packet?"""
    if len(datagram) < 7:
        return False
    first = datagram[0]
    if first & 0xC0 != 0xC0:  # long header form + fixed bit
        return False
    version = datagram[1:5]
    if version == _V1_BYTES:
        return first & 0x30 == 0x00 and datagram[5] <= _MAX_CID
    if version == _V2_BYTES:
        return first & 0x30 == 0x10 and datagram[5] <= _MAX_CID
    return False


def varint(buf: bytes | bytearray, pos: int, end: int) -> tuple[int, int]:
    """Decode a QUIC variable-length integer at ``pos``; returns (value, next pos) or (-1, -1)."""
    if pos >= end:
        return -1, -1
    first = buf[pos]
    n = 1 << (first >> 6)
    if pos + n > end:
        return -1, -1
    value = first & 0x3F
    for i in range(pos + 1, pos + n):
        value = (value << 8) | buf[i]
    return value, pos + n


def decode_packet_number(truncated: int, pn_nbits: int, largest: int) -> int:
    """RFC 9000 Appendix A.3."""
    expected = largest + 1
    win = 1 << pn_nbits
    hwin = win // 2
    mask = win - 1
    candidate = (expected & ~mask) | truncated
    if candidate <= expected - hwin and candidate < (1 << 62) - win:
        return candidate + win
    if candidate > expected + hwin and candidate >= win:
        return candidate - win
    return candidate


class LongHeader(NamedTuple):
    version: int
    ptype: int
    dcid: bytes
    pn_offset: int  # where the (protected) packet number starts; -1 for Retry
    end: int  # end of this packet inside the datagram
    #: the length of the sender's source connection ID (what the peer's short headers carry)
    scid_len: int = 0


def skip_ack(payload: bytes, p: int, n: int, ecn: bool) -> int:
    """Past an ACK frame whose type byte ends at ``p`` (RFC 9000 section 19.3); -1 when it is cut
    or cannot be right."""
    values: list[int] = []
    for _ in range(4):  # largest acknowledged, ack delay, range count, first range
        v, p = varint(payload, p, n)
        if p < 0:
            return -1
        values.append(v)
    if values[2] > (n - p) // 2:  # every range takes at least two bytes
        return -1
    for _ in range(2 * values[2] + (3 if ecn else 0)):
        _, p = varint(payload, p, n)
        if p < 0:
            return -1
    return p


def parse_long_header(data: bytes, pos: int) -> LongHeader | None:
    """Parse the long header of the packet at ``pos``; None when it is not a v1/v2 long header."""
    n = len(data)
    if pos + 7 > n:
        return None
    first = data[pos]
    if first & 0xC0 != 0xC0:
        return None
    version = int.from_bytes(data[pos + 1 : pos + 5], "big")
    if version not in _SALTS:
        return None
    ptype = (first >> 4) & 0x03
    p = pos + 5
    dcid_len = data[p]
    if dcid_len > _MAX_CID or p + 1 + dcid_len >= n:
        return None
    dcid = data[p + 1 : p + 1 + dcid_len]
    p += 1 + dcid_len
    scid_len = data[p]
    if scid_len > _MAX_CID:
        return None
    p += 1 + scid_len
    if ptype == _RETRY_TYPE[version]:
        # Retry has no Length field and is never coalesced with a following packet.
        return LongHeader(version, ptype, dcid, -1, n, scid_len) if p <= n else None
    if ptype == _INITIAL_TYPE[version]:
        token_len, p = varint(data, p, n)
        if p < 0 or token_len > n - p:
            return None
        p += token_len
    length, p = varint(data, p, n)
    if p < 0 or length > n - p:
        return None
    return LongHeader(version, ptype, dcid, p, p + length, scid_len)


class QuicInitialAssembler:
    """Per-connection state, fed with client->server UDP payloads in capture order.

    The caller keeps one assembler per client flow (5-tuple, or the client's original DCID) and
    feeds it the client's datagrams until :attr:`done`. Initial packets are decrypted with keys
    from the connection's original DCID (the first Initial's), or from the packet's own DCID
    (after a Retry the client switches DCID and keys), and their CRYPTO frames reassembled by
    offset, in whatever order packets and frames arrive.
    """

    __slots__ = ("_buf", "_cov", "_datagrams", "_largest_pn", "dcid", "done", "version")

    def __init__(self) -> None:
        #: True once a ClientHello was returned or the assembler gave up; callers stop feeding.
        self.done: bool = False
        #: QUIC version of the first Initial packet that decrypted.
        self.version: int | None = None
        #: The client's original Destination Connection ID (of the first Initial that decrypted).
        self.dcid: bytes | None = None
        self._datagrams = 0
        self._largest_pn = -1
        self._buf = bytearray()  # CRYPTO stream bytes, by offset
        self._cov = bytearray()  # 1 where self._buf holds received data, 0 in holes

    def feed(self, datagram: bytes) -> ClientHello | None:
        """Feed one client->server UDP payload; returns the ClientHello once it is complete."""
        if self.done:
            return None
        try:
            return self._feed(bytes(datagram))
        except Exception:  # pragma: no cover - defensive: hostile input must never escape
            self._give_up()
            return None

    # -- internals ---------------------------------------------------------------------------

    def _give_up(self) -> None:
        self.done = True
        self._buf = bytearray()
        self._cov = bytearray()

    def _feed(self, data: bytes) -> ClientHello | None:
        self._datagrams += 1
        pos = 0
        n = len(data)
        got_crypto = False
        attempts = 0
        # Coalesced packets (RFC 9000 section 12.2): walk them by their Length fields.
        while pos < n and not self.done:
            hdr = parse_long_header(data, pos)
            if hdr is None:
                break  # short header, padding, another version or garbage: nothing more to read
            if hdr.pn_offset >= 0 and hdr.ptype == _INITIAL_TYPE[hdr.version]:
                attempts += 1
                if attempts > MAX_INITIALS_PER_DATAGRAM:
                    break
                payload = self._open_initial(data, pos, hdr)
                if payload is not None and self._read_frames(payload):
                    got_crypto = True
            pos = hdr.end
        if self.done:
            return None
        if got_crypto:
            hello = self._try_complete()
            if hello is not None or self.done:
                return hello
        if self._datagrams >= MAX_DATAGRAMS:
            self._give_up()
        return None

    def _open_initial(self, data: bytes, pos: int, hdr: LongHeader) -> bytes | None:
        """Remove header protection and decrypt one Initial packet; None when it does not open."""
        pn_offset, end = hdr.pn_offset, hdr.end
        # the sample starts 4 bytes after the start of the packet number (RFC 9001 s5.4.2)
        if pn_offset + 4 + _SAMPLE > end:
            return None
        candidates = [hdr.dcid]
        if self.dcid is not None and self.dcid != hdr.dcid:
            # after the server's first Initial the client switches DCID but keeps the keys
            candidates.insert(0, self.dcid)
        sample = data[pn_offset + 4 : pn_offset + 4 + _SAMPLE]
        for dcid in candidates:
            prot = _protection(hdr.version, dcid)
            enc = prot.hp.encryptor()
            mask = enc.update(sample) + enc.finalize()
            first = data[pos] ^ (mask[0] & 0x0F)
            pn_len = (first & 0x03) + 1
            if pn_offset + pn_len + _TAG > end:
                continue
            pn_bytes = bytes(
                b ^ m for b, m in zip(data[pn_offset : pn_offset + pn_len], mask[1:], strict=False)
            )
            truncated = int.from_bytes(pn_bytes, "big")
            pn = decode_packet_number(truncated, pn_len * 8, self._largest_pn)
            header = bytes([first]) + data[pos + 1 : pn_offset] + pn_bytes
            nonce = (int.from_bytes(prot.keys.iv, "big") ^ pn).to_bytes(12, "big")
            try:
                payload = prot.aead.decrypt(nonce, data[pn_offset + pn_len : end], header)
            except (InvalidTag, ValueError, OverflowError):
                continue
            self._largest_pn = max(self._largest_pn, pn)
            if self.dcid is None:
                self.dcid = hdr.dcid
            if self.version is None:
                self.version = hdr.version
            return payload
        return None

    def _read_frames(self, payload: bytes) -> bool:
        """Walk the frames of a decrypted Initial payload; returns True if CRYPTO data was kept."""
        p = 0
        n = len(payload)
        kept = False
        while p < n:
            ftype = payload[p]
            if ftype == _FRAME_PADDING:
                # runs of PADDING are long (the datagram is padded to 1200 bytes): skip them fast
                p = n - len(payload[p:].lstrip(b"\x00"))
            elif ftype == _FRAME_PING:
                p += 1
            elif ftype in (_FRAME_ACK, _FRAME_ACK_ECN):
                p = skip_ack(payload, p + 1, n, ftype == _FRAME_ACK_ECN)
                if p < 0:
                    return kept
            elif ftype == _FRAME_CRYPTO:
                offset, p = varint(payload, p + 1, n)
                if p < 0:
                    return kept
                length, p = varint(payload, p, n)
                if p < 0 or length > n - p:
                    return kept
                if offset + length > MAX_CRYPTO_BYTES:
                    self._give_up()  # no ClientHello is that big: hostile or not a ClientHello
                    return False
                if length:
                    self._store(offset, payload[p : p + length])
                    kept = True
                p += length
            else:
                return kept  # a frame we do not parse: its length is unknown, stop here
        return kept

    def _store(self, offset: int, chunk: bytes) -> None:
        end = offset + len(chunk)
        if end > len(self._buf):
            grow = end - len(self._buf)
            self._buf += bytes(grow)
            self._cov += bytes(grow)
        # overlapping data (retransmissions, duplicates) carries the same bytes: just overwrite
        self._buf[offset:end] = chunk
        self._cov[offset:end] = b"\x01" * len(chunk)

    def _try_complete(self) -> ClientHello | None:
        hole = self._cov.find(0)
        have = len(self._cov) if hole < 0 else hole
        if have < 4:
            return None
        buf = self._buf
        if buf[0] != HANDSHAKE_CLIENT_HELLO:
            self._give_up()
            return None
        need = 4 + int.from_bytes(buf[1:4], "big")
        if need > MAX_CRYPTO_BYTES:
            self._give_up()
            return None
        if have < need:
            return None
        msg = bytes(buf[:need])
        self._give_up()  # done either way: a complete message that does not parse will not improve
        return parse_client_hello(msg)
