"""Incremental HTTP/1.x parsing of reassembled TCP streams.

:class:`RequestStream` is fed the client-to-server bytes of a connection in order and returns
complete requests, handling keep-alive and pipelining (several requests back to back),
``Content-Length`` and ``chunked`` bodies. :class:`ResponseStream` does the same for the
server-to-client direction, keeping only the status and the body size (response bodies are
skipped, not stored).

Both are bounded: of a header block over :data:`MAX_HEADER_BYTES`, the request (status) line and
the header lines within the first :data:`MAX_HEADER_BYTES` are kept and the rest of the block is
skipped, without holding it (the request says so: :attr:`ParsedRequest.head_cut`; the streams
count such blocks in ``head_cuts``); parsing goes on after the block. Request bodies over the
caller's cap are counted but not kept (the request is marked truncated).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_HEADER_BYTES = 64 * 1024
DEFAULT_BODY_CAP = 8 * 1024 * 1024

METHODS = frozenset(
    {
        b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
        b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"REPORT",
        b"SEARCH", b"PURGE",
    }
)


# (a message follows the previous one's body directly, not after a line break)
_REQUEST_LINE = re.compile(rb"((?:" + b"|".join(sorted(METHODS)) + rb") [!-~]{1,8192} HTTP/1\.[01]\r?\n)")
_STATUS_LINE = re.compile(rb"(HTTP/1\.[01] [1-5][0-9][0-9][^\r\n]{0,1024}\r?\n)")


def find_message_start(data: bytes, *, request: bool) -> int | None:
    """Where the first whole request line (``request``) or status line in ``data`` starts: where a
    parser that lost its place (a hole in the stream) takes up again. None while there is none."""
    m = (_REQUEST_LINE if request else _STATUS_LINE).search(data)
    return m.start(1) if m is not None else None


#: Bytes a :class:`MessageScan` holds while it looks for the next message.
MAX_SCAN: Final = 1 << 16


class MessageScan:
    """After a hole in one direction of an HTTP/1 stream: its bytes are skipped up to the next
    request line (``request``) or status line, where a new parser takes up. Bounded: past
    :data:`MAX_SCAN` bytes without one, all but the last 64 are let go (and counted)."""

    __slots__ = ("buf", "request", "skipped")

    def __init__(self, *, request: bool) -> None:
        self.buf = bytearray()
        self.request = request
        #: bytes skipped so far
        self.skipped = 0

    def feed(self, data: bytes) -> bytes | None:
        """The bytes from the next message on, once it is found; None while it is not."""
        scan = self.buf
        scan += data
        start = find_message_start(bytes(scan), request=self.request)
        if start is None:
            if len(scan) > MAX_SCAN:
                self.skipped += len(scan) - 64
                del scan[:-64]
            return None
        self.skipped += start
        rest = bytes(scan[start:])
        scan.clear()
        return rest


def request_url(scheme: str, host: str, target: str, method: str) -> tuple[str, str]:
    """A request's URL and host name (lower case, no port), from its Host header (or what stands
    for it) and target: origin form (``/path``), absolute form (``http://host/path``, any case of
    scheme) and, for CONNECT, authority form (``host:port``, the tunnel's destination)."""
    lower = target[:8].lower()
    if lower.startswith(("http://", "https://")):
        scheme_part, _, rest = target.partition("://")
        authority = rest.split("/", 1)[0]
        url = scheme_part.lower() + "://" + rest
        return url, host_of(authority) or host_of(host)
    if method == "CONNECT" and not target.startswith("/"):
        return f"{'https' if target.endswith(':443') else scheme}://{target}", host_of(target) or host_of(host)
    return f"{scheme}://{host or '?'}{target}", host_of(host)


def host_of(authority: str) -> str:
    """The host of an authority (``host``, ``host:port``, ``[v6]:port``), lower case."""
    a = authority.strip().lower()
    if a.startswith("["):
        end = a.find("]")
        return a[: end + 1] if end > 0 else a
    return a.split(":", 1)[0]


#: An extension method (RFC 9110 §9.1 allows any token; in practice upper-case words such as
#: ``CCM_POST`` or ``BPROPFIND``), accepted when an origin-form, absolute-form or ``*`` target follows.
_EXTENSION_METHOD = re.compile(rb"[A-Z][A-Z0-9_-]{1,31}\Z")


def is_method(token: bytes) -> bool:
    """A registered method, or an upper-case extension method token."""
    return token in METHODS or _EXTENSION_METHOD.match(token) is not None


def looks_like_http_request(data: bytes | bytearray) -> bool:
    """True when a client stream starts with an HTTP/1.x method token and a space (an extension
    method also needs a target that starts like one: ``/``, ``*`` or ``http``)."""
    sp = data.find(b" ", 0, 33)
    if sp <= 0:
        return False
    token = bytes(data[:sp])
    if token in METHODS:
        return True
    nxt = data[sp + 1 : sp + 2]
    return nxt in (b"/", b"*", b"h", b"H") and _EXTENSION_METHOD.match(token) is not None


@dataclass(slots=True)
class ParsedRequest:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    body_truncated: bool = False
    complete: bool = True
    #: the header block was over MAX_HEADER_BYTES: only the lines in the first MAX_HEADER_BYTES
    #: were read (``head_dropped`` bytes were not; ``head_ended`` is False when the stream ended
    #: before the block did)
    head_cut: bool = False
    head_dropped: int = 0
    head_ended: bool = True

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


def head_cut_note(req: ParsedRequest) -> str:
    """What a request whose header block was read in part says in its ``decode_cuts``."""
    ended = "" if req.head_ended else " (the block had not ended when the stream did)"
    return (f"request headers: the header block is over the {MAX_HEADER_BYTES}-byte limit; the request "
            f"line and the first {len(req.headers)} headers were read, {req.head_dropped} bytes were "
            f"not{ended}")


@dataclass(slots=True)
class ParsedResponse:
    status: int
    body_size: int = 0
    #: a 101 (Switching Protocols) response's headers: what the protocol after it agreed to
    headers: list[tuple[str, str]] | None = None


class _ChunkedBody:
    """State machine for a chunked body; collects data up to a cap."""

    __slots__ = ("cap", "data", "done", "seen", "size", "state", "truncated", "want")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.size = 0
        self.truncated = False
        self.done = False
        self.state = 0  # 0: size line, 1: chunk data, 2: CRLF after data, 3: trailers
        self.want = 0
        #: bytes of the pending line already searched for its end (the line starts the next feed)
        self.seen = 0

    def feed(self, buf: bytearray, pos: int) -> int | None:
        """Consume from buf[pos:]; return the new position, or None on a protocol error."""
        n = len(buf)
        while not self.done:
            if self.state == 0:
                eol = buf.find(b"\r\n", pos + self.seen)
                if eol < 0:
                    self.seen = max(n - pos - 1, 0)
                    return pos if n - pos < 1024 else None
                self.seen = 0
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
                eol = buf.find(b"\r\n", pos + self.seen)
                if eol < 0:
                    self.seen = max(n - pos - 1, 0)
                    return pos if n - pos < MAX_HEADER_BYTES else None
                self.seen = 0
                if eol == pos:
                    self.done = True
                pos = eol + 2
        return pos


def _parse_head(head: bytes) -> tuple[list[bytes], list[tuple[str, str]]] | None:
    if head.count(b"\n") == head.count(b"\r\n"):
        lines = head.split(b"\r\n")
    else:  # (some lines end with a bare LF)
        lines = [line.rstrip(b"\r") for line in head.split(b"\n")]
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


def _starts_request(buf: bytearray, pos: int) -> bool:
    return looks_like_http_request(buf[pos : pos + 12])


def _starts_response(buf: bytearray, pos: int) -> bool:
    return buf.startswith(b"HTTP/", pos)


def _take_head(buf: bytearray, pos: int, seen: int, check: int,
               plausible: Callable[[bytearray, int], bool]) -> tuple[bytes, int, bool] | int | None:
    """The header block starting at ``pos`` (requests' and responses' alike):

    * ``(head, next, cut)``: the block as read (its first MAX_HEADER_BYTES, cut after the last
      whole line, when it is longer: ``cut``) and where what follows starts (past the blank line;
      at the first byte not read when cut);
    * an int: the block is not complete; the bytes already searched (``seen`` of the next call);
    * None: once ``check`` bytes are there, they cannot start a block (``plausible``).
    """
    end = buf.find(b"\r\n\r\n", pos + seen)
    # lines ended by a bare LF (RFC 9112 section 2.2 lets a recipient accept them): a blank line
    # "\n\n" cannot occur inside a block of CRLF lines, so one before the CRLF end ends the block
    bare = buf.find(b"\n\n", pos + seen, end if end >= 0 else len(buf))
    blank = 4
    if bare >= 0:
        end, blank = bare, 2
    pending = len(buf) - pos
    if end < 0 and pending >= check and not plausible(buf, pos):
        return None
    if (end - pos if end >= 0 else pending) > MAX_HEADER_BYTES:
        head, rest = _cut_head(buf, pos, end)
        return head, rest, True
    if end < 0:
        return max(pending - 3, 0)
    return bytes(buf[pos:end]), end + blank, False


def _cut_head(buf: bytearray, pos: int, end: int) -> tuple[bytes, int]:
    """The part of an oversized header block (from ``pos``; ending at ``end`` or not yet, -1)
    that is read: its first MAX_HEADER_BYTES cut after the last whole line; and where the
    bytes not read start."""
    head = bytes(buf[pos : pos + MAX_HEADER_BYTES])
    line_end = head.rfind(b"\r\n")
    if line_end > 0:
        head = head[:line_end]
    return head, pos + len(head)


def _skip_head(buf: bytearray, pos: int) -> tuple[int, int]:
    """Skip the rest of a header block: (new position, bytes skipped); the position is past the
    blank line, or -1 - position when the block goes on (the last 3 bytes are kept: the blank
    line may straddle two feeds)."""
    end = buf.find(b"\r\n\r\n", pos)
    if end >= 0:
        return end + 4, end - pos
    keep = max(len(buf) - 3, pos)
    return -1 - keep, keep - pos


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

    __slots__ = ("_body", "_body_left", "_buf", "_chunked", "_cur", "_seen", "_skip", "body_cap", "broken",
                 "head_cuts")

    def __init__(self, body_cap: int = DEFAULT_BODY_CAP) -> None:
        self._buf = bytearray()
        self._cur: ParsedRequest | None = None
        self._body_left = 0
        self._body = bytearray()
        self._chunked: _ChunkedBody | None = None
        self._skip = False  # in the unread rest of an oversized header block
        #: bytes of the pending header block already searched for its end: each feed searches
        #: only what is new (byte-sized segments would make the search quadratic)
        self._seen = 0
        self.body_cap = body_cap
        self.broken = False
        #: header blocks over MAX_HEADER_BYTES (read in part)
        self.head_cuts = 0

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
                got = _take_head(buf, pos, self._seen, 12, _starts_request)
                if got is None:
                    self.broken = True
                    break
                if isinstance(got, int):
                    self._seen = got
                    break
                self._seen = 0
                head, pos, cut = got
                parsed = _parse_head(head)
                if parsed is None or not is_method(bytes(parsed[0][0])):
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
                self._cur = cur
                self._body = bytearray()
                if cut:
                    self.head_cuts += 1
                    cur.head_cut = True
                    self._skip = True
                else:
                    self._framing(headers)
            if self._skip:
                skip_to, skipped = _skip_head(buf, pos)
                cur.head_dropped += skipped
                if skip_to < 0:
                    pos = -1 - skip_to
                    break
                pos = skip_to
                self._skip = False
                self._framing(cur.headers)
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

    def _framing(self, headers: list[tuple[str, str]]) -> None:
        """How the body of the request whose headers these are is delimited."""
        if _is_chunked(headers):
            self._chunked = _ChunkedBody(self.body_cap)
            self._body_left = 0
        else:
            self._chunked = None
            self._body_left = _content_length(headers) or 0

    def take_rest(self) -> bytes:
        """The bytes not parsed yet (after an upgrade, another protocol's); the stream stops."""
        rest = bytes(self._buf)
        self._buf.clear()
        self.broken = True
        return rest

    def flush(self) -> ParsedRequest | None:
        """The request still in progress when the stream ended (body incomplete), if any."""
        cur = self._cur
        if cur is None:
            return None
        if self._skip:
            cur.head_dropped += len(self._buf)
            cur.head_ended = False
            self._skip = False
        cur.body = bytes(self._chunked.data) if self._chunked is not None else bytes(self._body)
        cur.complete = False
        cur.body_truncated = True
        self._cur = None
        return cur


class ResponseStream:
    """Parses the server side of an HTTP/1.x connection, keeping statuses and body sizes."""

    __slots__ = ("_buf", "_chunked", "_cur", "_left", "_seen", "_skip", "_until_close", "broken", "head_cuts",
                 "head_methods", "upgraded")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._cur: ParsedResponse | None = None
        self._left = 0
        self._chunked: _ChunkedBody | None = None
        self._until_close = False
        self.broken = False
        self._seen = 0  # as RequestStream._seen
        #: header blocks over MAX_HEADER_BYTES (the status line and the first headers are read)
        self.head_cuts = 0
        #: in the unread rest of an oversized header block: the headers read so far, and the status
        self._skip: tuple[list[tuple[str, str]], int] | None = None
        #: for each request sent, whether it was HEAD (its response has no body)
        self.head_methods: list[bool] = []
        #: after a 101 response: the bytes that follow are another protocol's (:meth:`take_rest`)
        self.upgraded = False

    def take_rest(self) -> bytes:
        """After a 101 response: the bytes received after it (the stream is not read further)."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest

    def feed(self, data: bytes) -> list[ParsedResponse]:
        if self.broken:
            return []
        if self.upgraded:
            self._buf += data
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
            if cur is None and self._skip is not None:
                skip_to, _ = _skip_head(buf, pos)
                if skip_to < 0:
                    pos = -1 - skip_to
                    break
                pos = skip_to
                headers, status = self._skip
                self._skip = None
            elif cur is None:
                if pos >= len(buf):
                    break
                got = _take_head(buf, pos, self._seen, 5, _starts_response)
                if got is None:
                    self.broken = True
                    break
                if isinstance(got, int):
                    self._seen = got
                    break
                self._seen = 0
                head, pos, cut = got
                parsed = _parse_head(head)
                if parsed is None or not parsed[0][0].startswith(b"HTTP/"):
                    self.broken = True
                    break
                first, headers = parsed
                try:
                    status = int(first[1][:3])
                except ValueError:
                    self.broken = True
                    break
                if cut:
                    self.head_cuts += 1
                    self._skip = (headers, status)
                    continue
            if cur is None:
                if 100 <= status < 200 and status != 101:
                    continue  # interim response: the real one follows
                is_head = self.head_methods.pop(0) if self.head_methods else False
                cur = ParsedResponse(status, headers=headers if status == 101 else None)
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
            if cur.status == 101:  # the connection now speaks another protocol
                self.upgraded = True
                break
        if pos:
            del buf[:pos]
        return out
