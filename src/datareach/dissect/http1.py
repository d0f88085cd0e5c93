"""Incremental HTTP/1.x parsing of reassembled TCP streams.

:class:`RequestStream` is fed the client-to-server bytes of a connection in order and returns
complete requests, handling keep-alive and pipelining (several requests back to back),
``Content-Length`` and ``chunked`` bodies. :class:`ResponseStream` does the same for the
server-to-client direction, keeping only the status and the body size (response bodies are
skipped, not stored).

Both are bounded: headers over :data:`MAX_HEADER_BYTES` stop parsing of that stream, and request
bodies over the caller's cap are counted but not kept (the request is marked truncated).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024
DEFAULT_BODY_CAP = 8 * 1024 * 1024

METHODS = frozenset(
    {
        b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
        b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"REPORT",
        b"SEARCH", b"PURGE",
    }
)


def looks_like_http_request(data: bytes | bytearray) -> bool:
    """True when a client stream starts with an HTTP/1.x method token and a space."""
    sp = data.find(b" ", 0, 12)
    return sp > 0 and bytes(data[:sp]) in METHODS


@dataclass(slots=True)
class ParsedRequest:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    body_truncated: bool = False
    complete: bool = True

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


@dataclass(slots=True)
class ParsedResponse:
    status: int
    body_size: int = 0


class _ChunkedBody:
    """State machine for a chunked body; collects data up to a cap."""

    __slots__ = ("cap", "data", "done", "size", "state", "truncated", "want")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.size = 0
        self.truncated = False
        self.done = False
        self.state = 0  # 0: size line, 1: chunk data, 2: CRLF after data, 3: trailers
        self.want = 0

    def feed(self, buf: bytearray, pos: int) -> int | None:
        """Consume from buf[pos:]; return the new position, or None on a protocol error."""
        n = len(buf)
        while not self.done:
            if self.state == 0:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return pos if n - pos < 1024 else None
                line = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
                try:
                    self.want = int(line, 16)
                except ValueError:
                    return None
                if self.want < 0:
                    return None
                pos = eol + 2
                self.state = 1 if self.want else 3
            elif self.state == 1:
                take = min(self.want, n - pos)
                if take <= 0:
                    return pos
                room = self.cap - len(self.data)
                if room > 0:
                    self.data += buf[pos : pos + min(take, room)]
                if take > room:
                    self.truncated = True
                self.size += take
                self.want -= take
                pos += take
                if self.want == 0:
                    self.state = 2
            elif self.state == 2:
                if n - pos < 2:
                    return pos
                pos += 2
                self.state = 0
            else:  # trailers end with an empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return pos if n - pos < MAX_HEADER_BYTES else None
                if eol == pos:
                    self.done = True
                pos = eol + 2
        return pos


def _parse_head(head: bytes) -> tuple[list[bytes], list[tuple[str, str]]] | None:
    lines = head.split(b"\r\n")
    first = lines[0].split(b" ", 2)
    if len(first) < 2:
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        headers.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
    return first, headers


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for k, v in headers:
        if k.lower() == "content-length":
            try:
                n = int(v.split(",")[0].strip())
            except ValueError:
                return None
            return n if n >= 0 else None
    return None


def _is_chunked(headers: list[tuple[str, str]]) -> bool:
    return any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)


class RequestStream:
    """Parses the client side of an HTTP/1.x connection."""

    __slots__ = ("_body", "_body_left", "_buf", "_chunked", "_cur", "body_cap", "broken")

    def __init__(self, body_cap: int = DEFAULT_BODY_CAP) -> None:
        self._buf = bytearray()
        self._cur: ParsedRequest | None = None
        self._body_left = 0
        self._body = bytearray()
        self._chunked: _ChunkedBody | None = None
        self.body_cap = body_cap
        self.broken = False

    def feed(self, data: bytes) -> list[ParsedRequest]:
        """Add in-order stream bytes; return the requests completed by them."""
        if self.broken:
            return []
        self._buf += data
        out: list[ParsedRequest] = []
        buf = self._buf
        pos = 0
        while True:
            cur = self._cur
            if cur is None:
                if pos >= len(buf):
                    break
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    pending = len(buf) - pos
                    if pending > MAX_HEADER_BYTES or (
                        pending >= 12 and not looks_like_http_request(buf[pos : pos + 12])
                    ):
                        self.broken = True
                    break
                parsed = _parse_head(bytes(buf[pos:end]))
                if parsed is None or bytes(parsed[0][0]) not in METHODS:
                    self.broken = True
                    break
                first, headers = parsed
                version = first[2].decode("latin-1") if len(first) > 2 else "HTTP/1.0"
                cur = ParsedRequest(
                    method=first[0].decode("latin-1"),
                    target=first[1].decode("latin-1"),
                    version=version,
                    headers=headers,
                )
                pos = end + 4
                if _is_chunked(headers):
                    self._chunked = _ChunkedBody(self.body_cap)
                    self._body_left = 0
                else:
                    self._chunked = None
                    self._body_left = _content_length(headers) or 0
                self._cur = cur
                self._body = bytearray()
            if self._chunked is not None:
                newpos = self._chunked.feed(buf, pos)
                if newpos is None:
                    self.broken = True
                    cur.body = bytes(self._chunked.data)
                    cur.complete = False
                    out.append(cur)
                    self._cur = None
                    break
                pos = newpos
                if not self._chunked.done:
                    break
                cur.body = bytes(self._chunked.data)
                cur.body_truncated = self._chunked.truncated
                self._chunked = None
            elif self._body_left:
                take = min(self._body_left, len(buf) - pos)
                room = self.body_cap - len(self._body)
                if room > 0 and take > 0:
                    self._body += buf[pos : pos + min(take, room)]
                if take > room:
                    cur.body_truncated = True
                self._body_left -= take
                pos += take
                if self._body_left:
                    break
                cur.body = bytes(self._body)
            out.append(cur)
            self._cur = None
        if pos:
            del buf[:pos]
        return out

    def flush(self) -> ParsedRequest | None:
        """The request still in progress when the stream ended (body incomplete), if any."""
        cur = self._cur
        if cur is None:
            return None
        cur.body = bytes(self._chunked.data) if self._chunked is not None else bytes(self._body)
        cur.complete = False
        cur.body_truncated = True
        self._cur = None
        return cur


class ResponseStream:
    """Parses the server side of an HTTP/1.x connection, keeping statuses and body sizes."""

    __slots__ = ("_buf", "_chunked", "_cur", "_left", "_until_close", "broken", "head_methods")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._cur: ParsedResponse | None = None
        self._left = 0
        self._chunked: _ChunkedBody | None = None
        self._until_close = False
        self.broken = False
        #: for each request sent, whether it was HEAD (its response has no body)
        self.head_methods: list[bool] = []

    def feed(self, data: bytes) -> list[ParsedResponse]:
        if self.broken:
            return []
        if self._until_close and self._cur is not None:
            self._cur.body_size += len(data)
            return []
        self._buf += data
        buf = self._buf
        out: list[ParsedResponse] = []
        pos = 0
        while True:
            cur = self._cur
            if cur is None:
                if pos >= len(buf):
                    break
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    if len(buf) - pos > MAX_HEADER_BYTES or (len(buf) - pos >= 5 and not buf.startswith(b"HTTP/", pos)):
                        self.broken = True
                    break
                parsed = _parse_head(bytes(buf[pos:end]))
                if parsed is None or not parsed[0][0].startswith(b"HTTP/"):
                    self.broken = True
                    break
                first, headers = parsed
                try:
                    status = int(first[1][:3])
                except ValueError:
                    self.broken = True
                    break
                pos = end + 4
                if 100 <= status < 200 and status != 101:
                    continue  # interim response: the real one follows
                is_head = self.head_methods.pop(0) if self.head_methods else False
                cur = ParsedResponse(status)
                self._cur = cur
                self._chunked = None
                self._left = 0
                if is_head or status in (204, 304) or status == 101:
                    pass
                elif _is_chunked(headers):
                    self._chunked = _ChunkedBody(0)
                else:
                    cl = _content_length(headers)
                    if cl is None:
                        self._until_close = True
                        cur.body_size = len(buf) - pos
                        out.append(cur)
                        del buf[:]
                        return out
                    self._left = cl
            if self._chunked is not None:
                newpos = self._chunked.feed(buf, pos)
                if newpos is None:
                    self.broken = True
                    out.append(cur)
                    self._cur = None
                    break
                pos = newpos
                cur.body_size = self._chunked.size
                if not self._chunked.done:
                    break
                self._chunked = None
            elif self._left:
                take = min(self._left, len(buf) - pos)
                cur.body_size += take
                self._left -= take
                pos += take
                if self._left:
                    break
            out.append(cur)
            self._cur = None
        if pos:
            del buf[:pos]
        return out
