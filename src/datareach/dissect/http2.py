"""HTTP/2 over a decrypted TLS connection: requests, their bodies, and response status and size
(sans-IO: fed each direction's plaintext in order, in pieces of any size).

Frames (RFC 9113 section 4) are cut by hand; header blocks are decoded with ``hpack`` (RFC 7541),
both directions' (the server's too, to keep its dynamic table in step, though only the status is
used). A stream's request is complete when the client ends it (END_STREAM or RST_STREAM); it is
handed out when its response ends, or when the connection does.

Hostile input: frame lengths are bounded (:data:`MAX_FRAME`), header blocks too
(:data:`MAX_HEADER_BLOCK`), open streams too (:data:`MAX_STREAMS`: the oldest is handed out
as it stands); an HPACK error or an impossible frame ends that direction, with the reason in
:attr:`H2Connection.error`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x4, 0x8, 0x20
#: Largest frame accepted (SETTINGS_MAX_FRAME_SIZE may raise the default 16 KiB up to 16 MiB; a
#: frame over this ends the direction).
MAX_FRAME: Final = 1 << 20
MAX_HEADER_BLOCK: Final = 1 << 18
MAX_STREAMS: Final = 1024
#: HPACK dynamic table size accepted from a peer (the default is 4 KiB)
MAX_TABLE: Final = 1 << 16


@dataclass(slots=True)
class H2Stream:
    """One stream's request and, as far as seen, its response."""

    stream_id: int
    ts: float
    method: str = ""
    scheme: str = ""
    authority: str = ""
    path: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    body_size: int = 0
    body_truncated: bool = False
    request_done: bool = False
    status: int | None = None
    response_size: int | None = None
    response_done: bool = False

    def data(self, from_client: bool, payload: bytes, cap: int) -> None:
        """A DATA frame's payload: request body (kept up to ``cap`` bytes) or response size."""
        if from_client:
            self.body_size += len(payload)
            room = cap - len(self.body)
            if room >= len(payload):
                self.body += payload
            else:
                self.body += payload[: max(room, 0)]
                self.body_truncated = True
        else:
            self.response_size = (self.response_size or 0) + len(payload)

    def request_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """The request's decoded header fields (HPACK or QPACK); a second block is trailers."""
        if self.method:
            return
        for name, value in headers:
            k, v = bytes(name).decode("latin-1"), bytes(value).decode("latin-1")
            if k == ":method":
                self.method = v
            elif k == ":scheme":
                self.scheme = v
            elif k == ":authority":
                self.authority = v
            elif k == ":path":
                self.path = v
            elif not k.startswith(":"):
                self.headers.append((k, v))
        if not self.authority:
            self.authority = next((v for k, v in self.headers if k == "host"), "")

    def response_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """A response header block: its status (the final one, after any 1xx)."""
        for name, value in headers:
            if bytes(name) == b":status":
                try:
                    status = int(bytes(value))
                except ValueError:
                    continue
                if status >= 200 or self.status is None:
                    self.status = status
                if self.response_size is None and status >= 200:
                    self.response_size = 0


class H2Connection:
    """Both directions of one HTTP/2 connection. :meth:`feed` returns the streams it finished."""

    def __init__(self, body_cap: int = 1 << 20) -> None:
        import hpack

        self.body_cap = body_cap
        self._buf = [bytearray(), bytearray()]  # server, client
        self._preface = bytearray()
        self._preface_done = False
        self._decoders = [hpack.Decoder(), hpack.Decoder()]
        for d in self._decoders:
            d.max_allowed_table_size = MAX_TABLE
            d.max_header_list_size = MAX_HEADER_BLOCK
        # a header block waiting for CONTINUATION, per direction: (stream, flags, block)
        self._cont: list[tuple[int, int, bytearray] | None] = [None, None]
        self.streams: dict[int, H2Stream] = {}
        #: why a direction stopped being read (None while it is read), server and client
        self.error: list[str | None] = [None, None]
        self.frames = 0
        #: streams handed out before their request or response ended (too many open at once)
        self.evicted = 0
        #: after a hole (:meth:`resync`), per direction: searching for the next frame header; and
        #: header blocks no longer decoded (the HPACK table may have missed a lost block)
        self._scanning = [False, False]
        self._blind = [False, False]
        #: bytes skipped to find a frame after a hole; header blocks not decoded after one
        self.skipped = 0
        self.blind_blocks = 0

    def resync(self, from_client: bool) -> None:
        """Bytes of one direction were lost: the frame in progress is dropped, the next frame
        header is searched for, and that direction's header blocks are no longer decoded (a lost
        block may have changed the HPACK dynamic table: decoding later ones could give wrong
        headers). Streams already open still get their DATA."""
        d = int(from_client)
        if from_client and not self._preface_done:
            self._preface_done = True
            self._preface = bytearray()
        self._buf[d].clear()
        self._cont[d] = None
        self._scanning[d] = True
        self._blind[d] = True

    def feed(self, from_client: bool, data: bytes, ts: float) -> list[H2Stream]:
        d = int(from_client)
        out: list[H2Stream] = []
        if self.error[d] is not None:
            return out
        if from_client and not self._preface_done:
            self._preface += data
            if len(self._preface) < len(PREFACE):
                if not PREFACE.startswith(bytes(self._preface)):
                    self.error[d] = "not HTTP/2: no connection preface"
                return out
            if not self._preface.startswith(PREFACE):
                self.error[d] = "not HTTP/2: no connection preface"
                return out
            data = bytes(self._preface[len(PREFACE) :])
            self._preface = bytearray()
            self._preface_done = True
        buf = self._buf[d]
        buf += data
        if self._scanning[d]:
            at = _find_frame(buf)
            if at is None:
                if len(buf) > 2 * MAX_FRAME:
                    self.error[d] = "no frame header found after a hole"
                    buf.clear()
                return out
            self.skipped += at
            del buf[:at]
            self._scanning[d] = False
        p = 0
        n = len(buf)
        while n - p >= 9:
            length = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
            if length > MAX_FRAME:
                self.error[d] = f"frame of {length} bytes, over the {MAX_FRAME}-byte limit"
                break
            if n - p < 9 + length:
                break
            ftype, flags = buf[p + 3], buf[p + 4]
            sid = int.from_bytes(buf[p + 5 : p + 9], "big") & 0x7FFFFFFF
            payload = bytes(buf[p + 9 : p + 9 + length])
            p += 9 + length
            self.frames += 1
            reason = self._frame(from_client, ftype, flags, sid, payload, ts, out)
            if reason is not None:
                self.error[d] = reason
                break
        del buf[:p]
        if self.error[d] is not None:
            buf.clear()
        return out

    def close(self) -> list[H2Stream]:
        """The connection ended: every stream with a request, as it stands."""
        out = [s for s in self.streams.values() if s.method]
        self.streams.clear()
        return out

    # -- frames --------------------------------------------------------------------------------

    def _frame(self, from_client: bool, ftype: int, flags: int, sid: int, payload: bytes, ts: float,
               out: list[H2Stream]) -> str | None:
        d = int(from_client)
        cont = self._cont[d]
        if cont is not None:
            if ftype != CONTINUATION or sid != cont[0]:
                return "a header block was not continued"
            cont[2].extend(payload)
            if len(cont[2]) > MAX_HEADER_BLOCK:
                return f"header block over {MAX_HEADER_BLOCK} bytes"
            if flags & END_HEADERS:
                self._cont[d] = None
                return self._headers(from_client, sid, cont[1], bytes(cont[2]), ts, out)
            return None
        if ftype == DATA:
            if flags & PADDED:
                if not payload or payload[0] >= len(payload):
                    return "DATA frame with impossible padding"
                payload = payload[1 : len(payload) - payload[0]]
            s = self.streams.get(sid)
            if s is not None:
                s.data(from_client, payload, self.body_cap)
                if flags & END_STREAM:
                    self._end(s, from_client, out)
            return None
        if ftype in (HEADERS, PUSH_PROMISE):
            p = 0
            end = len(payload)
            if flags & PADDED:
                if not payload:
                    return "frame with impossible padding"
                end -= payload[0]
                p = 1
            if ftype == PUSH_PROMISE:
                p += 4
            elif flags & PRIORITY_FLAG:
                p += 5
            if p > end:
                return "frame with impossible padding"
            block = payload[p:end]
            if ftype == PUSH_PROMISE:
                flags &= ~END_STREAM
                sid = 0  # the promised request is the server's: decoded only to keep the table in step
            if not flags & END_HEADERS:
                self._cont[d] = (sid, flags, bytearray(block))
                return None
            return self._headers(from_client, sid, flags, block, ts, out)
        if ftype == RST_STREAM:
            s = self.streams.get(sid)
            if s is not None:
                self.streams.pop(sid)
                if s.method:
                    out.append(s)
            return None
        if ftype == CONTINUATION:
            return "CONTINUATION without a header block"
        return None  # SETTINGS, PING, GOAWAY, WINDOW_UPDATE, PRIORITY and unknown types: nothing to read

    def _headers(self, from_client: bool, sid: int, flags: int, block: bytes, ts: float,
                 out: list[H2Stream]) -> str | None:
        import hpack

        if self._blind[int(from_client)]:
            self.blind_blocks += 1
            s_ = self.streams.get(sid)
            if s_ is not None and flags & END_STREAM:
                self._end(s_, from_client, out)
            return None
        try:
            headers = self._decoders[int(from_client)].decode(block, raw=True)
        except (hpack.HPACKError, ValueError, IndexError, UnicodeDecodeError) as e:
            return f"HPACK: {type(e).__name__}"
        if sid == 0:
            return None
        s = self.streams.get(sid)
        if from_client:
            if s is None:
                if len(self.streams) >= MAX_STREAMS:
                    oldest = next(iter(self.streams))
                    old = self.streams.pop(oldest)
                    self.evicted += 1
                    if old.method:
                        out.append(old)
                s = self.streams[sid] = H2Stream(sid, ts)
                s.request_headers(headers)
            # (else trailers: decoded above to keep the table in step)
        elif s is not None:
            s.response_headers(headers)
        if s is not None and flags & END_STREAM:
            self._end(s, from_client, out)
        return None

    def _end(self, s: H2Stream, from_client: bool, out: list[H2Stream]) -> None:
        if from_client:
            s.request_done = True
        else:
            s.response_done = True
        if s.response_done and (s.request_done or not from_client):
            self.streams.pop(s.stream_id, None)
            if s.method:
                out.append(s)


#: Frame types a frame search accepts, and the most a frame header may say after a hole (the
#: default SETTINGS_MAX_FRAME_SIZE: larger frames are rare).
_KNOWN_TYPES = frozenset(range(10))
_SEARCH_MAX_FRAME = 1 << 14


def _plausible(buf: bytes | bytearray, p: int) -> int | None:
    """The end of the frame whose header is at ``p`` if the header makes sense, else None."""
    length = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
    ftype, flags, sid = buf[p + 3], buf[p + 4], int.from_bytes(buf[p + 5 : p + 9], "big")
    if length > _SEARCH_MAX_FRAME or ftype not in _KNOWN_TYPES or sid & 0x80000000:
        return None
    if ftype in (SETTINGS, PING, GOAWAY) and sid:
        return None
    if ftype in (DATA, HEADERS, CONTINUATION, RST_STREAM, PRIORITY) and not sid:
        return None
    if ftype == SETTINGS and (length % 6 or flags & ~1):
        return None
    if ftype == PING and length != 8:
        return None
    if ftype == WINDOW_UPDATE and length != 4:
        return None
    if ftype == RST_STREAM and length != 4:
        return None
    return p + 9 + length


def _find_frame(buf: bytes | bytearray) -> int | None:
    """Where a frame starts in bytes that follow a hole: a header that makes sense followed by
    another one (or by the end of the bytes). None: not found yet."""
    n = len(buf)
    for p in range(max(n - 8, 0)):
        end = _plausible(buf, p)
        if end is None:
            continue
        if end == n or (end + 9 <= n and _plausible(buf, end) is not None):
            return p
    return None
