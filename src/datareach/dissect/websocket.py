"""WebSocket (RFC 6455) after an HTTP/1.1 upgrade: the messages each side sends (sans-IO).

Frames are unmasked (client frames are masked), fragmented messages put back together, control
frames (close, ping, pong) skipped, and with permessage-deflate (RFC 7692, as the server's 101
response accepted it) compressed messages inflated, with or without context takeover. Each
complete message is handed out with its kind (text or binary) so that the client's can be
searched like request bodies.

Hostile input: frame and message sizes are bounded (:data:`MAX_MESSAGE`: a longer message is cut
and marked), inflation is bounded the same way (a deflate bomb stops at the bound), and a frame
that cannot be right (reserved bits, an unknown opcode) ends that direction, with the reason.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
#: The most of one message kept (longer ones are cut, and say so).
MAX_MESSAGE: Final = 1 << 20
#: Messages handed out per direction at most (the rest are counted, not read).
MAX_MESSAGES: Final = 10_000


@dataclass(slots=True)
class Message:
    text: bool
    payload: bytes
    #: the message was longer than MAX_MESSAGE (or inflated past it), or could not be inflated
    truncated: bool = False


def deflate_params(extensions: str) -> tuple[bool, bool, bool] | None:
    """From a ``Sec-WebSocket-Extensions`` response header: (permessage-deflate accepted,
    client_no_context_takeover, server_no_context_takeover), or None without it."""
    for ext in extensions.split(","):
        parts = [p.strip().lower() for p in ext.split(";")]
        if parts and parts[0] == "permessage-deflate":
            return True, "client_no_context_takeover" in parts, "server_no_context_takeover" in parts
    return None


class WebSocketDirection:
    """One direction's frames, fed in order in pieces of any size; :meth:`feed` returns the
    messages they complete."""

    __slots__ = ("_buf", "_inflate", "_kind", "_msg", "_msg_truncated", "_rsv1", "deflate", "error", "frames",
                 "messages", "no_takeover", "skipped")

    def __init__(self, *, deflate: bool = False, no_context_takeover: bool = False) -> None:
        self._buf = bytearray()
        self.deflate = deflate
        self.no_takeover = no_context_takeover
        self._inflate = zlib.decompressobj(-15) if deflate else None
        self._msg = bytearray()
        self._msg_truncated = False
        self._kind: int | None = None
        self._rsv1 = False
        self.error: str | None = None
        self.frames = 0
        self.messages = 0
        #: messages past MAX_MESSAGES, not handed out
        self.skipped = 0

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        if self.error is not None:
            return out
        buf = self._buf
        buf += data
        p = 0
        n = len(buf)
        while n - p >= 2:
            b0, b1 = buf[p], buf[p + 1]
            fin, rsv, opcode = b0 & 0x80, b0 & 0x70, b0 & 0x0F
            masked, length = b1 & 0x80, b1 & 0x7F
            q = p + 2
            if length == 126:
                if n - q < 2:
                    break
                length = int.from_bytes(buf[q : q + 2], "big")
                q += 2
            elif length == 127:
                if n - q < 8:
                    break
                length = int.from_bytes(buf[q : q + 8], "big")
                q += 8
            key = b""
            if masked:
                if n - q < 4:
                    break
                key = bytes(buf[q : q + 4])
                q += 4
            if rsv & ~0x40 or (rsv and not self.deflate) or opcode not in (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG):
                self.error = f"not a WebSocket frame (first byte 0x{b0:02x})"
                break
            control = opcode >= CLOSE
            if control and (length > 125 or not fin):
                self.error = "a control frame longer than 125 bytes or fragmented"
                break
            if length > MAX_MESSAGE + (1 << 16) and n - q < length:
                # (a huge frame: its bytes are counted as they come, not held)
                self.error = f"a frame of {length} bytes"
                break
            if n - q < length:
                break
            payload = bytes(buf[q : q + length])
            p = q + length
            self.frames += 1
            if control:
                continue
            if masked:
                payload = _unmask(payload, key)
            if opcode != CONTINUATION:
                if self._kind is not None:
                    self.error = "a new message before the last one ended"
                    break
                self._kind = opcode
                self._rsv1 = bool(rsv & 0x40)
            elif self._kind is None:
                self.error = "a continuation frame outside a message"
                break
            room = MAX_MESSAGE - len(self._msg)
            if len(payload) > room:
                self._msg_truncated = True
            self._msg += payload[: max(room, 0)]
            if fin:
                msg = self._finish()
                if msg is not None:
                    out.append(msg)
        del buf[:p]
        return out

    def _finish(self) -> Message | None:
        kind, data, truncated = self._kind, bytes(self._msg), self._msg_truncated
        self._kind, self._msg, self._msg_truncated = None, bytearray(), False
        if self._rsv1 and self._inflate is not None:
            try:
                plain = self._inflate.decompress(data + b"\x00\x00\xff\xff", MAX_MESSAGE)
                if self._inflate.unconsumed_tail:
                    truncated = True
                    self._inflate = zlib.decompressobj(-15)  # (the context is lost with what was cut)
            except zlib.error:
                plain, truncated = b"", True
                self._inflate = zlib.decompressobj(-15)
            if self.no_takeover:
                self._inflate = zlib.decompressobj(-15)
            data = plain
        self.messages += 1
        if self.messages > MAX_MESSAGES:
            self.skipped += 1
            return None
        return Message(kind == TEXT, data, truncated)


def _unmask(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte masking key, a machine word at a time."""
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ k).to_bytes(n, "little")
