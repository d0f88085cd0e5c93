"""Decrypting QUIC connections whose TLS secrets a key log holds, and reading HTTP/3 inside.

QUIC (RFC 9000, 9001; v2: RFC 9369) protects its 0-RTT and 1-RTT packets with keys derived from
the TLS 1.3 traffic secrets (``CLIENT_TRAFFIC_SECRET_0`` and the rest, the labels of a TLS key
log: aioquic, curl, browsers write them for QUIC as for TLS):

1. the connection is recognised by its client Initial (:mod:`datareach.dissect.quic`), whose
   ClientHello gives the client random that finds the secrets;
2. long-header packets (Initial, Handshake) tell each side's connection ID length, which short
   headers do not carry;
3. 1-RTT packets: header protection is removed (AES-ECB or ChaCha20 over a sample), the packet
   number recovered from its truncation, and the payload opened with the AEAD; the cipher suite
   is found by trial on the first packet (a SHA-384 secret means AES-256-GCM; a SHA-256 one,
   AES-128-GCM or ChaCha20-Poly1305); the key phase bit switches to the next key generation
   (``quic ku``); 0-RTT packets open under the early traffic secret;
4. STREAM frames are put back in order per stream (bounded), and handed to HTTP/3
   (:mod:`datareach.dissect.http3`); each request is handed to the TLS decryptor, which makes it
   an :class:`~datareach.schema.Exchange` as it does HTTP/2's.

Everything treats its input as hostile: a packet that does not open is counted, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from datareach.dissect import http3, keylog, tls
from datareach.dissect.http2 import H2Stream
from datareach.dissect.quic import (
    PROTECTION_LABELS,
    QUIC_V1,
    QUIC_V2,
    ZERO_RTT_TYPE,
    decode_packet_number,
    parse_long_header,
    skip_ack,
    varint,
)
from datareach.dissect.tlscrypto import hkdf_expand_label

#: Out-of-order data held per stream, and streams per connection.
MAX_STREAM_HOLD: Final = 1 << 20
MAX_STREAM_PIECES: Final = 256
MAX_QUIC_STREAMS: Final = 4096
#: Consecutive 1-RTT packets that open under no key before a direction is given up.
MAX_FAILURES: Final = 16

#: key, iv and header-protection labels (those of the Initial keys), and the key update label
_LABELS = {v: (*PROTECTION_LABELS[v], ku) for v, ku in ((QUIC_V1, b"quic ku"), (QUIC_V2, b"quicv2 ku"))}
AES128, AES256, CHACHA = "aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"


class _Keys:
    """One direction's packet protection under one secret (one key phase)."""

    __slots__ = ("aead", "cipher", "hash", "hp", "iv", "secret", "version")

    def __init__(self, cipher: str, secret: bytes, version: int, hp: bytes | None = None) -> None:
        self.cipher = cipher
        self.secret = secret
        self.version = version
        self.hash = "sha384" if cipher == AES256 else "sha256"
        key_label, iv_label, hp_label, _ku = _LABELS[version]
        n = 16 if cipher == AES128 else 32
        key = hkdf_expand_label(secret, key_label, b"", n, self.hash)
        self.iv = hkdf_expand_label(secret, iv_label, b"", 12, self.hash)
        self.hp = hp if hp is not None else hkdf_expand_label(secret, hp_label, b"", n, self.hash)
        self.aead: Any = ChaCha20Poly1305(key) if cipher == CHACHA else AESGCM(key)

    def mask(self, sample: bytes) -> bytes:
        if self.cipher == CHACHA:
            enc = Cipher(algorithms.ChaCha20(self.hp, sample), mode=None).encryptor()
            return enc.update(b"\x00" * 5)
        enc = Cipher(algorithms.AES(self.hp), modes.ECB()).encryptor()
        return enc.update(sample)[:5]

    def next_phase(self) -> _Keys:
        """The keys after a key update (the header protection key stays)."""
        ku = _LABELS[self.version][3]
        n = 48 if self.hash == "sha384" else 32
        return _Keys(self.cipher, hkdf_expand_label(self.secret, ku, b"", n, self.hash), self.version, self.hp)

    def open(self, pn: int, header: bytes, ciphertext: bytes) -> bytes | None:
        nonce = (int.from_bytes(self.iv, "big") ^ pn).to_bytes(12, "big")
        try:
            return bytes(self.aead.decrypt(nonce, ciphertext, header))
        except (InvalidTag, ValueError, OverflowError):
            return None


def _ciphers_for(secret: bytes) -> tuple[str, ...]:
    return (AES256,) if len(secret) == 48 else (AES128, CHACHA)


class _Dir:
    """One direction of a followed QUIC connection."""

    __slots__ = ("dcid_len", "dead", "early", "failures", "largest", "phase", "phases", "secret")

    def __init__(self, secret: bytes | None, early: bytes | None) -> None:
        self.secret = secret
        self.early = early
        #: keys by key phase generation; ``phase`` is the index of the current one
        self.phases: list[_Keys] = []
        self.phase = 0
        self.largest = -1
        #: the length of the connection IDs this direction's short headers carry
        self.dcid_len: int | None = None
        self.failures = 0
        self.dead = False


class _QStream:
    """One direction of one QUIC stream, put back in order."""

    __slots__ = ("fin", "held", "next")

    def __init__(self) -> None:
        self.next = 0
        self.held: dict[int, bytes] = {}
        self.fin: int | None = None


class _QConn:
    __slots__ = ("cipher", "dirs", "early_keys", "flow", "h3", "hello", "opened", "source", "streams", "version")

    def __init__(self, flow: tls.TlsFlow, hello: tls.ClientHello, version: int, secrets: dict[int, tuple[int, bytes]]):
        self.flow = flow
        self.hello = hello
        self.version = version
        c = secrets.get(keylog.CLIENT_AP)
        s = secrets.get(keylog.SERVER_AP)
        e = secrets.get(keylog.CLIENT_EARLY)
        self.source = (c or s or e or (-1, b""))[0]
        self.dirs = (_Dir(s[1] if s else None, None), _Dir(c[1] if c else None, e[1] if e else None))
        self.cipher: str | None = None
        self.early_keys: _Keys | None = None
        self.streams: dict[tuple[int, bool], _QStream] = {}
        self.h3 = http3.H3Connection()
        self.opened = False


class QuicDecryptor:
    """Follows the QUIC connections a key log has secrets for; emits their HTTP/3 requests."""

    def __init__(self, keys: keylog.KeyStore, stats: Any,
                 on_stream: Callable[[tls.TlsFlow, tls.ClientHello, H2Stream], None], body_cap: int = 1 << 20) -> None:
        self.keys = keys
        #: the TLS decryptor's DecryptStats: QUIC adds to the same counts
        self.stats = stats
        #: called with each finished HTTP/3 stream (the TLS decryptor makes it an exchange)
        self.on_stream = on_stream
        self.body_cap = body_cap
        self._conns: dict[int, _QConn] = {}
        self.packets = 0
        self.packet_failures = 0

    def on_hello(self, conn: tls.TlsFlow, hello: tls.ClientHello, version: int) -> bool:
        """A QUIC connection's ClientHello is read: follow it if some secret may open it."""
        self.stats.quic_connections += 1
        secrets = self.keys.lookup(hello.random)
        if not secrets or not (keylog.CLIENT_AP in secrets or keylog.SERVER_AP in secrets):
            self.stats.no_keys += 1
            return False
        if version not in _LABELS:
            self.stats.unsupported[f"QUIC version 0x{version:08x}"] = \
                self.stats.unsupported.get(f"QUIC version 0x{version:08x}", 0) + 1
            return False
        c = _QConn(conn, hello, version, secrets)
        c.h3.body_cap = self.body_cap
        self._conns[conn.flow] = c
        return True

    def following(self, fid: int) -> bool:
        return fid in self._conns

    def on_datagram(self, fid: int, from_client: bool, data: bytes, ts: float) -> None:
        c = self._conns.get(fid)
        if c is None:
            return
        pos = 0
        n = len(data)
        while pos < n:
            first = data[pos]
            if first & 0x80:  # long header: learn the sender's connection ID; open 0-RTT
                end = self._long(c, from_client, data, pos, ts)
                if end <= pos:
                    return
                pos = end
                continue
            if first & 0x40:
                self._short(c, from_client, data[pos:], ts)
            return  # (a short-header packet runs to the end of the datagram)

    def _long(self, c: _QConn, from_client: bool, data: bytes, pos: int, ts: float) -> int:
        """A long-header packet: the sender's connection ID length is learned; 0-RTT is opened.
        Returns where the packet ends (-1: not a v1/v2 long header)."""
        hdr = parse_long_header(data, pos)
        if hdr is None:
            return -1
        # the peer's short headers carry this side's source connection ID
        c.dirs[int(not from_client)].dcid_len = hdr.scid_len
        if hdr.pn_offset < 0 or hdr.ptype != ZERO_RTT_TYPE[hdr.version] or not from_client:
            return hdr.end  # (Retry, Initial and Handshake: nothing the report reads)
        d = c.dirs[1]
        if d.early is not None:
            if c.early_keys is None:
                # (0-RTT uses the suite of the session it resumes: try the candidates)
                for cipher in _ciphers_for(d.early):
                    k = _Keys(cipher, d.early, hdr.version)
                    if self._open(c, True, k, data, pos, hdr.pn_offset, hdr.end, True, ts):
                        c.early_keys = k
                        break
            else:
                self._open(c, True, c.early_keys, data, pos, hdr.pn_offset, hdr.end, True, ts)
        return hdr.end

    def _short(self, c: _QConn, from_client: bool, data: bytes, ts: float) -> None:
        d = c.dirs[int(from_client)]
        if d.dead or d.secret is None or d.dcid_len is None:
            return
        pn_offset = 1 + d.dcid_len
        if not d.phases:
            ciphers = (c.cipher,) if c.cipher is not None else _ciphers_for(d.secret)
            for cipher in ciphers:
                k = _Keys(cipher, d.secret, c.version)
                if self._open(c, from_client, k, data, 0, pn_offset, len(data), False, ts, phase=0):
                    c.cipher = cipher
                    d.phases.append(k)
                    return
            self._failed(d)
            return
        if not self._open(c, from_client, d.phases[d.phase], data, 0, pn_offset, len(data), False, ts):
            self._failed(d)

    def _failed(self, d: _Dir) -> None:
        self.packet_failures += 1
        self.stats.record_failures += 1
        d.failures += 1
        if d.failures >= MAX_FAILURES:
            d.dead = True

    def _open(self, c: _QConn, from_client: bool, keys: _Keys, data: bytes, pos: int, pn_offset: int, end: int,
              long: bool, ts: float, *, phase: int | None = None) -> bool:
        """Remove header protection and decrypt one packet; its frames are read. False if it
        does not open under ``keys`` (nor, for 1-RTT, under the other key phase)."""
        if pn_offset + 4 + 16 > end:
            return False
        sample = data[pn_offset + 4 : pn_offset + 20]
        mask = keys.mask(sample)
        first = data[pos] ^ (mask[0] & (0x0F if long else 0x1F))
        pn_len = (first & 0x03) + 1
        pn_bytes = bytes(b ^ m for b, m in zip(data[pn_offset : pn_offset + pn_len], mask[1:], strict=False))
        d = c.dirs[int(from_client)]
        space_largest = d.largest if not long else -1
        pn = decode_packet_number(int.from_bytes(pn_bytes, "big"), pn_len * 8, space_largest)
        header = bytes((first,)) + data[pos + 1 : pn_offset] + pn_bytes
        body = data[pn_offset + pn_len : end]
        use = keys
        if not long and d.phases and phase is None:
            want = (first >> 2) & 1
            have = d.phase & 1
            if want != have:  # a key update: the next phase (or a late packet of the last one)
                if d.phase + 1 >= len(d.phases):
                    d.phases.append(d.phases[d.phase].next_phase())
                use = d.phases[d.phase + 1]
                payload = use.open(pn, header, body)
                if payload is None and d.phase > 0:
                    use = d.phases[d.phase - 1]
                    payload = use.open(pn, header, body)
                elif payload is not None:
                    d.phase += 1
            else:
                payload = use.open(pn, header, body)
        else:
            payload = use.open(pn, header, body)
        if payload is None:
            return False
        if not long:
            d.largest = max(d.largest, pn)
            d.failures = 0
        self.packets += 1
        self.stats.records += 1
        if not c.opened:
            c.opened = True
            self.stats.opened(c.flow.uid, self.keys, c.source)
        self._frames(c, from_client, payload, ts)
        return True

    # -- frames and streams --------------------------------------------------------------------------

    def _frames(self, c: _QConn, from_client: bool, p_: bytes, ts: float) -> None:
        p = 0
        n = len(p_)
        while p < n:
            ft = p_[p]
            if ft == 0x00:  # PADDING
                p += 1
                continue
            if ft == 0x01 or ft == 0x1E:  # PING, HANDSHAKE_DONE
                p += 1
                continue
            ft, p = varint(p_, p, n)
            if p < 0:
                return
            if 0x08 <= ft <= 0x0F:  # STREAM
                sid, p = varint(p_, p, n)
                off = 0
                if ft & 0x04 and p >= 0:
                    off, p = varint(p_, p, n)
                if p < 0:
                    return
                if ft & 0x02:
                    length, p = varint(p_, p, n)
                    if p < 0 or length > n - p:
                        return
                else:
                    length = n - p
                self._stream(c, from_client, sid, off, p_[p : p + length], bool(ft & 0x01), ts)
                p += length
            elif ft in (0x02, 0x03):  # ACK
                p = skip_ack(p_, p, n, ft == 0x03)
            elif ft == 0x06 or ft == 0x07:  # CRYPTO (offset, length, data), NEW_TOKEN (length, token)
                if ft == 0x06:
                    _, p = varint(p_, p, n)
                length, p = varint(p_, p, n) if p >= 0 else (-1, -1)
                if p < 0 or length > n - p:
                    return
                p += length
            elif ft in (0x04,):  # RESET_STREAM: id, code, final size
                p = _skip(p_, p, n, 3)
            elif ft in (0x05, 0x11, 0x15):  # STOP_SENDING, MAX_STREAM_DATA, STREAM_DATA_BLOCKED: two
                p = _skip(p_, p, n, 2)
            elif ft in (0x10, 0x12, 0x13, 0x14, 0x16, 0x17, 0x19):  # one varint
                p = _skip(p_, p, n, 1)
            elif ft == 0x18:  # NEW_CONNECTION_ID: seq, retire prior to, length, cid, 16-byte token
                p = _skip(p_, p, n, 2)
                if p < 0 or p >= n:
                    return
                p += 1 + p_[p] + 16
            elif ft in (0x1A, 0x1B):  # PATH_CHALLENGE, PATH_RESPONSE
                p += 8
            elif ft in (0x1C, 0x1D):  # CONNECTION_CLOSE
                p = _skip(p_, p, n, 2 if ft == 0x1C else 1)
                length, p = varint(p_, p, n) if p >= 0 else (-1, -1)
                if p < 0:
                    return
                p += length
            elif ft in (0x30, 0x31):  # DATAGRAM
                if ft == 0x31:
                    length, p = varint(p_, p, n)
                    if p < 0:
                        return
                    p += length
                else:
                    return
            else:
                return  # a frame whose length is unknown
            if p < 0:
                return

    def _stream(self, c: _QConn, from_client: bool, sid: int, off: int, data: bytes, fin: bool, ts: float) -> None:
        key = (sid, from_client)
        s = c.streams.get(key)
        if s is None:
            if len(c.streams) >= MAX_QUIC_STREAMS:
                return
            s = c.streams[key] = _QStream()
        if fin:
            s.fin = off + len(data)
        if off > s.next:
            if len(s.held) < MAX_STREAM_PIECES and off - s.next <= MAX_STREAM_HOLD:
                s.held[off] = data
            return
        if off + len(data) <= s.next and not (fin and s.fin == s.next):
            return  # a retransmission of what was delivered
        chunk = data[s.next - off :]
        parts = [chunk]
        s.next += len(chunk)
        while s.held:
            ready = [o for o in s.held if o <= s.next]
            if not ready:
                break
            for o in sorted(ready):
                piece = s.held.pop(o)
                if o + len(piece) > s.next:
                    parts.append(piece[s.next - o :])
                    s.next = o + len(piece)
        done = s.fin is not None and s.next >= s.fin
        for ex in c.h3.feed(from_client, sid, b"".join(parts), done, ts):
            self.on_stream(c.flow, c.hello, ex)
        if done:
            c.streams.pop(key, None)

    def end(self, fid: int) -> None:
        c = self._conns.pop(fid, None)
        if c is None:
            return
        if not c.opened:
            self.stats.failed += 1
        for s in c.h3.close():
            self.on_stream(c.flow, c.hello, s)
        for reason, n in c.h3.errors.items():
            key = f"HTTP/3: {reason}"
            self.stats.http_errors[key] = self.stats.http_errors.get(key, 0) + n

    def finish(self) -> None:
        for fid in list(self._conns):
            self.end(fid)


def _skip(buf: bytes, p: int, n: int, count: int) -> int:
    for _ in range(count):
        if p < 0:
            return -1
        _, p = varint(buf, p, n)
    return p
