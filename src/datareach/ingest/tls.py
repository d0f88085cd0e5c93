"""TLS ClientHello parsing: server name, ALPN and Encrypted Client Hello.

Two entry points:

* :func:`parse_client_hello` takes a handshake message (type byte, 3-byte length, body), as
  carried in TLS records over TCP or in QUIC CRYPTO frames.
* :func:`client_hello_from_records` takes the start of a TLS-over-TCP client stream (TLS
  records) and returns the handshake message once all of it has arrived, since a ClientHello
  may span several records and several TCP segments.

Everything here treats its input as hostile: lengths are checked against the buffer, and a
malformed message gives ``None``, never an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HANDSHAKE_CLIENT_HELLO = 1
EXT_SERVER_NAME = 0
EXT_ALPN = 16
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
        return ClientHello(None, (), False)
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
    return ClientHello(server_name, tuple(alpn), ech)


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
