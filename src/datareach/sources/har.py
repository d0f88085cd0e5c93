"""HAR 1.2 reader: HTTP archives written by browsers, proxies and on-device capture apps.

Entry points:

* :func:`read_har` -- the :class:`~datareach.schema.Reader` for HAR files. It yields one
  :class:`~datareach.schema.Exchange` per entry as it streams through ``log.entries``, then one
  :class:`~datareach.schema.Connection` per server conversation it could put together from them.
* :func:`looks_like_har` -- content sniffing for format detection.

Writers whose output this was modelled on, and what each adds to the HAR 1.2 spec:

* Chrome / Edge DevTools: ``connection`` (the browser's socket id, shared by requests on one
  connection), ``serverIPAddress`` with IPv6 in brackets (``"[2001:db8::1]"``), ``_resourceType``,
  ``_webSocketMessages``, ``httpVersion`` spelt ``"http/2.0"`` or ``"h3"``.
* Firefox DevTools: ``connection`` is the *remote port* (``"443"``), not an id, so it is not
  used for grouping; ``log.browser``; ``headersSize`` sometimes missing.
* mitmproxy (``save.har`` command / ``hardump`` option): ``serverIPAddress`` without brackets;
  request bodies as ``postData.text`` decoded with *surrogateescape*, so bytes that are not UTF-8
  appear as lone ``\\udcXX`` escapes. We turn those back into the original bytes. (yajl, the C
  parser, rejects lone surrogates: for such files we restart on ijson's pure-Python backend and
  carry on where we were.) ``.zhar`` files (``save.har`` to a path ending ``.zhar``) are the same
  HAR compressed with ``zlib.compress(har, 9)``: found by their content and decompressed as they
  are read (:mod:`datareach.sources.compressed`), like HAR files compressed with gzip, bzip2, xz
  or zstd.
* chrome-har (sitespeed.io, browsertime): a JSON request body is stored parsed, as
  ``postData.params`` whose values are JSON values (objects, arrays, numbers, ...), not strings,
  and no ``text``. We put the JSON document back together (below).
* HTTP Toolkit: ``pageref`` / ``log.pages`` name the client ("source") that sent the request,
  which we report as ``app``; bodies that are not UTF-8 go to ``request._content`` with
  ``"encoding": "base64"``; ``_requestBodyStatus: "discarded:..."`` when a body was left out.
* PCAPdroid (``HarWriter``): ``connection`` is its connection id, ``serverIPAddress`` the
  destination, non-text bodies base64 in ``postData`` (``"encoding": "base64"``). It records no
  app name in the HAR, so ``app`` stays ``None``.

Decisions worth knowing about:

* Everything is hostile input: a bad field gives a non-fatal :class:`InputError` with its JSON
  path and the entry is kept where it still has a usable URL; an entry without one is dropped
  with an error. A JSON syntax error or truncated file gives a fatal error after everything
  before it (including the :class:`Connection` records) has been yielded.
* Nesting limits: JSON nested more than :data:`MAX_NESTING` (64) levels deep, or an object key
  longer than :data:`MAX_KEY_BYTES` (4 KiB), ends the file with a fatal error naming the byte
  offset, after the entries before it. Real HAR files nest about 8 levels and use short field
  names; the limits keep the parser's work linear (ijson builds a path string per level, so
  without them 80 KB of ``[`` cost 4 GB, and 60 long keys cost 60 times their size). They are
  enforced on the bytes before the parser sees them (:class:`_JsonGuard`), for the header and
  the entries alike; the format sniff reads events without paths.
* ``postData.params`` without ``text``: a param's value that is not a string is written back as
  compact JSON. With a JSON ``mimeType`` the body is the JSON object ``{name: value, ...}`` (an
  array when the names are 0, 1, 2...), as chrome-har parsed it; otherwise the params are
  form-encoded. Either way every value is in the searchable request body.
* Compressed HAR files: an entry (with the ``log`` fields before the first one) that
  decompresses to more than :data:`MAX_COMPRESSED_ENTRY` bytes ends the file with a fatal error,
  so that a small file that decompresses to gigabytes (a decompression bomb) costs no more memory
  than that; offsets in errors are then offsets in the decompressed HAR.
* Cookies: when ``request.cookies`` lists a cookie that no ``Cookie`` header carries (some
  writers record cookies only there), a synthesized ``("cookie", "a=b; c=d")`` header holding
  the missing ones is appended to ``request_headers``.
* HTTP/3 entries (``httpVersion`` "h3"/"HTTP/3") give ``udp`` connections with protocol ``quic``;
  everything else is ``tcp`` with protocol ``http`` (http/ws URLs) or ``tls`` (https/wss).
* WebSocket messages (``_webSocketMessages``) are counted into the connection's bytes and
  packets (one packet per message).
* ``request_body_size`` is the HAR's ``request.bodySize`` (the size on the wire), set only when
  the body we give is cut short or missing (over the cap, or left out by the writer).
* A missing or unparseable ``startedDateTime`` gives ``ts = 0.0`` (unknown) and an error; a
  date without a UTC offset is taken as UTC.
* Entries whose URL is not http(s)/ws(s) (``data:``, ``blob:``, extension pages) are not network
  traffic and are skipped silently; other schemes are skipped with an error.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import SplitResult, urlencode, urlsplit

import ijson  # type: ignore[import-untyped]
import numpy as np

from datareach.schema import (
    Connection,
    Exchange,
    InputError,
    ProgressCallback,
    Record,
    Transport,
    connection_uid,
)

#: Request bodies longer than this are cut here and marked ``request_body_truncated``.
MAX_BODY = 16 * 1024 * 1024
#: Bytes handed to the JSON parser per read. Large reads matter: yajl slows down badly on long
#: strings (base64 bodies) spread over many small buffers (64 KiB reads were 6x slower).
READ_SIZE = 1024 * 1024
#: ``progress`` is called at most about once per this many bytes.
PROGRESS_STEP = 1024 * 1024
#: Sizes and durations above this are not believed (2**53: the largest exact JSON integer).
MAX_SANE_NUMBER = 2**53
_BOM = b"\xef\xbb\xbf"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: Schemes of things browsers list in HAR files that never touched the network.
_LOCAL_SCHEMES = frozenset(
    {"data", "blob", "about", "chrome", "chrome-extension", "moz-extension", "file", "javascript"}
)
_WS_SPACE = re.compile(rb"\s+")
#: Deepest JSON nesting read (the document's top-level object is level 1; HAR files use ~8).
MAX_NESTING = 64
#: Longest JSON object key read, in bytes of the file (HAR field names are short).
MAX_KEY_BYTES = 4096
#: Most decompressed bytes one entry of a compressed HAR file may take (a response body of up to
#: ~190 MB, base64-encoded as mitmproxy writes binary ones, fits).
MAX_COMPRESSED_ENTRY = 256 * 1024 * 1024


def _backend_names() -> tuple[str, ...]:
    """The C backend first (fast), the pure-Python one as fallback (takes lone surrogates)."""
    try:
        ijson.get_backend("yajl2_c")
    except ImportError:  # no compiled wheel for this platform
        return ("python",)
    return ("yajl2_c", "python")


# ---------------------------------------------------------------------------------------------
# Byte counting and sniffing


class JsonLimitExceeded(Exception):
    """The JSON nests deeper than :data:`MAX_NESTING` or has a key over :data:`MAX_KEY_BYTES`."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class EntryTooLarge(JsonLimitExceeded):
    """An entry of a compressed HAR file decompresses to more than :data:`MAX_COMPRESSED_ENTRY`."""


class CompressedDataError(Exception):
    """The compressed data of a compressed HAR file is corrupt or ends early."""


#: 1 for the bytes :class:`_JsonGuard` looks at (quotes and brackets), 0 for the others.
_INTERESTING = bytes(1 if b in b'"[]{}' else 0 for b in range(256))
_AFTER_STRING = re.compile(rb"[ \t\r\n]*")


class _JsonGuard:
    """Follows the nesting depth and the key lengths of the JSON text handed to the parser,
    chunk by chunk, in linear time (numpy over the quotes and brackets of each chunk).

    Its idea of what is inside a string agrees with any JSON parser's up to the first syntax
    error (a backslash or quote outside a string is one), so the parser never sees a nesting
    level or a key the guard did not."""

    __slots__ = ("bs_run", "depth", "in_str", "pending", "pos", "str_open")

    def __init__(self, pos: int) -> None:
        self.pos = pos  # file offset of the next chunk
        self.depth = 0
        self.in_str = 0  # 1 inside a string
        self.str_open = -1  # file offset of the open string's quote
        self.bs_run = 0  # backslashes at the end of the last chunk
        #: the quote's offset of a long string that ended the last chunk (a ':' next: a key)
        self.pending = -1

    def check(self, chunk: bytes) -> tuple[int, JsonLimitExceeded] | None:
        """None when ``chunk`` keeps within the limits, else (how many of its bytes may be
        parsed, the error)."""
        n = len(chunk)
        if not n:
            return None
        base = self.pos
        self.pos += n
        if self.pending >= 0:
            rest = chunk.lstrip(b" \t\r\n")
            if rest:
                if rest[:1] == b":":
                    return 0, self._long_key(self.pending)
                self.pending = -1
        problem: tuple[int, JsonLimitExceeded] | None = None
        a = np.frombuffer(chunk, np.uint8)
        where = np.flatnonzero(np.frombuffer(chunk.translate(_INTERESTING), np.bool_))
        if len(where):
            kinds = a[where]
            is_quote = kinds == 0x22
            if b'\\"' in chunk or (self.bs_run and chunk[:1] == b'"'):
                escaped = self._escaped(a, where[is_quote])
                if len(escaped):
                    is_quote[np.searchsorted(where, escaped)] = False
            # a bracket is outside strings when an even number of quotes (and the state at the
            # chunk's start) came before it
            quotes_before = np.cumsum(is_quote, dtype=np.int32)
            outside = (kinds != 0x22) & (((quotes_before + self.in_str) & 1) == 0)
            if outside.any():
                kept = kinds[outside]
                levels = np.cumsum((kept == 0x5B) | (kept == 0x7B), dtype=np.int32) * 2 - \
                    np.arange(1, len(kept) + 1, dtype=np.int32) + self.depth
                if int(levels.max()) > MAX_NESTING:
                    at = int(where[outside][int(np.argmax(levels > MAX_NESTING))])
                    problem = (at, JsonLimitExceeded(
                        f"JSON nested deeper than {MAX_NESTING} levels at byte {base + at}", base + at))
                self.depth = int(levels[-1])
            quotes = where[is_quote]
            if len(quotes):
                key = self._long_keys(chunk, quotes, base)
                if key is not None and (problem is None or key[0] < problem[0]):
                    problem = key
                if (len(quotes) + self.in_str) & 1:
                    self.in_str = 1
                    self.str_open = base + int(quotes[-1])  # the last quote opened it
                else:
                    self.in_str = 0
        trailing = n - len(chunk.rstrip(b"\\"))
        self.bs_run = self.bs_run + n if trailing == n else trailing
        return problem

    def _long_keys(self, chunk: bytes, quotes: Any, base: int) -> tuple[int, JsonLimitExceeded] | None:
        """The first string closed in ``chunk`` that is longer than a key may be and is one."""
        first_close = 0 if self.in_str else 1
        closes = quotes[first_close::2]
        if not len(closes):
            return None
        opens = quotes[1 - first_close::2][: len(closes)] + base
        if self.in_str:
            opens = np.concatenate(([self.str_open], opens))[: len(closes)]
        lengths = closes + base - opens - 1
        for i in np.flatnonzero(lengths > MAX_KEY_BYTES):
            close = int(closes[i])
            m = _AFTER_STRING.match(chunk, close + 1)
            end = m.end() if m else close + 1
            if end >= len(chunk):
                self.pending = int(opens[i])
            elif chunk[end] == 0x3A:  # ':'
                start = int(opens[i])
                return max(start - base, 0), self._long_key(start)
        return None

    def _escaped(self, a: Any, quotes: Any) -> Any:
        """The quotes escaped by an odd run of backslashes (a run may start in the last chunk)."""
        if not len(quotes):
            return quotes
        prev = np.zeros(len(quotes), np.uint8)
        inner = quotes > 0
        prev[inner] = a[quotes[inner] - 1]
        if self.bs_run:
            prev[~inner] = 92
        cand = quotes[prev == 92]
        if not len(cand):
            return cand
        run = np.zeros(len(cand), np.int64)
        alive = np.ones(len(cand), bool)
        k = 1
        while alive.any():
            pos = cand - k
            inside = pos >= 0
            # a run that reaches the chunk's start goes on in the last chunk
            run[alive & ~inside] += self.bs_run
            hit = alive & inside
            hit[hit] = a[pos[hit]] == 92
            run += hit
            alive = hit
            k += 1
        return cand[(run & 1) == 1]

    @staticmethod
    def _long_key(offset: int) -> JsonLimitExceeded:
        return JsonLimitExceeded(f"JSON object key longer than {MAX_KEY_BYTES} bytes at byte {offset}", offset)


class _CountingReader:
    """File wrapper for ijson: counts bytes, remembers the last chunk, skips a leading BOM, and
    stops the parser before JSON that breaks the nesting limits (:class:`_JsonGuard`): the bytes
    before the problem are handed over, the next read raises :class:`JsonLimitExceeded`."""

    def __init__(self, raw: IO[bytes], progress: ProgressCallback | None) -> None:
        self._raw = raw
        self._progress = progress
        self._next_report = PROGRESS_STEP
        head = raw.read(len(_BOM))
        if head == _BOM:
            self._pending = b""
            self.pos = len(_BOM)
        else:
            self._pending = head
            self.pos = 0
        self.chunk_start = self.pos
        self.chunk = b""
        #: True once anything but whitespace was read (an all-blank file counts as empty).
        self.content_seen = False
        self._guard = _JsonGuard(self.pos)
        self._limit: JsonLimitExceeded | None = None
        #: (compressed input) the compression, and the most bytes read since :attr:`entry_mark`
        self.compression: str | None = None
        self.entry_budget: int | None = None
        self.entry_mark = self.pos

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        if self._limit is not None:
            raise self._limit
        if self.entry_budget is not None and self.pos - self.entry_mark > self.entry_budget:
            raise EntryTooLarge(
                f"an entry decompresses to more than {self.entry_budget:,} bytes (a decompression bomb?)",
                self.entry_mark)
        want = READ_SIZE if size is None or size < 0 else size
        try:
            more = self._raw.read(max(0, want - len(self._pending)))
        except Exception as exc:
            if self.compression is None or isinstance(exc, MemoryError):
                raise
            raise CompressedDataError(f"the {self.compression} data is corrupt or ends early "
                                      f"({type(exc).__name__}: {exc})") from exc
        data = self._pending + more
        self._pending = b""
        problem = self._guard.check(data)
        if problem is not None:
            keep, self._limit = problem
            data = data[:keep]
            if not data:
                raise self._limit
        self.chunk_start = self.pos
        self.chunk = data
        self.pos += len(data)
        if not self.content_seen and data.strip():
            self.content_seen = True
        if self._progress is not None and self.pos >= self._next_report:
            self._next_report = self.pos + PROGRESS_STEP
            self._progress(self.pos)
        return data


def looks_like_har(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file, ~64 KiB) starts a JSON object with a
    top-level ``"log"`` key. Tolerates a UTF-8 BOM, leading whitespace and a cut-off end."""
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    stripped = head.lstrip(b" \t\r\n")
    if not stripped.startswith(b"{"):
        return False
    depth = 0
    try:
        # events without paths: ijson's path strings grow with the nesting (quadratic work)
        for event, value in ijson.basic_parse(_BytesSource(stripped)):
            if event == "map_key":
                if depth == 1 and value == "log":
                    return True
            elif event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
                if depth == 0:
                    return False
    except Exception:  # truncated head, syntax error, bad UTF-8: judge on what was seen
        return False
    return False


class _BytesSource:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = len(self._data)
        out = self._data[self._pos : self._pos + size]
        self._pos += len(out)
        return out


# ---------------------------------------------------------------------------------------------
# Header (everything in ``log`` before ``entries``)


@dataclass(slots=True)
class _Header:
    creator: str = ""
    browser: str = ""
    pages: dict[str, str] = field(default_factory=dict)
    has_log: bool = False
    problem: InputError | None = None


def _read_header(reader: _CountingReader, backend: str) -> _Header:
    """Walk the parse events up to the start of ``log.entries``.

    Raises the parser's exception on a syntax error, so the caller can report it."""
    hdr = _Header()
    page_id: str | None = None
    page_title: str | None = None
    events = _shallow_events(ijson.get_backend(backend).basic_parse(reader, buf_size=READ_SIZE))
    first = next(events, None)
    if first is None or first[1] != "start_map" or first[0] != "":
        hdr.problem = InputError(
            "not a HAR file: the JSON document is not an object", json_path="$", fatal=True
        )
        return hdr
    for prefix, event, value in events:
        if prefix == "log":
            if event == "start_map":
                hdr.has_log = True
            elif event not in ("map_key", "end_map"):
                hdr.problem = InputError(
                    "not a HAR file: log is not an object", json_path="$.log", fatal=True
                )
                return hdr
        elif prefix == "log.entries":
            if event == "start_array":
                return hdr
            hdr.problem = InputError("log.entries is not a list", json_path="$.log.entries", fatal=True)
            return hdr
        elif prefix == "log.creator.name" and event == "string":
            hdr.creator = str(value)
        elif prefix == "log.browser.name" and event == "string":
            hdr.browser = str(value)
        elif prefix == "log.pages.item" and event == "start_map":
            page_id = page_title = None
        elif prefix == "log.pages.item.id" and event == "string":
            page_id = str(value)
        elif prefix == "log.pages.item.title" and event == "string":
            page_title = str(value)
        elif prefix == "log.pages.item" and event == "end_map":
            if page_id is not None and page_title:
                hdr.pages[page_id] = page_title
        elif prefix == "" and event == "end_map":
            break
    if not hdr.has_log:
        hdr.problem = InputError('not a HAR file: no top-level "log" object', json_path="$.log", fatal=True)
    else:
        hdr.problem = InputError("log has no entries list", json_path="$.log.entries", fatal=True)
    return hdr


#: Paths deeper than this are not spelt out by :func:`_shallow_events` (the header needs 4).
_SHALLOW = 4


def _shallow_events(events: Iterator[tuple[str, Any]]) -> Iterator[tuple[str | None, str, Any]]:
    """ijson's ``parse`` events (prefix, event, value) from ``basic_parse`` ones, with the prefix
    spelt out only for the first :data:`_SHALLOW` levels (None below): constant work per event,
    where ijson's own prefixes grow with the nesting."""
    path: list[str] = []  # the key (map) or "item" (array) of each open container
    depth = 0  # open containers (path holds the first _SHALLOW of them)
    for event, value in events:
        if event == "map_key":
            if depth <= _SHALLOW:
                path[-1] = value
                yield ".".join(path[:-1]), event, value
            else:
                yield None, event, value
            continue
        if event == "end_map" or event == "end_array":
            depth -= 1
            if depth < _SHALLOW:
                path.pop()
        prefix = ".".join(path) if depth <= _SHALLOW else None
        yield prefix, event, value
        if event == "start_map" or event == "start_array":
            depth += 1
            if depth <= _SHALLOW:
                path.append("" if event == "start_map" else "item")


# ---------------------------------------------------------------------------------------------
# Syntax error locations


_ERROR_COLUMN = 40  # yajl pads its verbose error context so that the failing byte sits here


def _syntax_error_offset(exc: BaseException, reader: _CountingReader, backend: str) -> int:
    """Best byte offset we can give for a parser failure.

    A premature end of data is at the end of the file. Otherwise yajl's message quotes up to 30
    bytes either side of where it stopped (padded so that spot is at column 40), which we look
    for in the chunk it was given; failing that, the start of that chunk."""
    message = str(exc)
    if "premature EOF" in message or "Incomplete JSON content" in message:
        return reader.pos
    if backend == "yajl2_c":
        lines = message.split("\n")
        if len(lines) >= 3 and "(right here)" in lines[2] and not message.startswith("b'"):
            context = lines[1]
            before = context[:_ERROR_COLUMN].lstrip(" ").encode("utf-8", "replace")
            after = context[_ERROR_COLUMN:].encode("utf-8", "replace")
            chunk = reader.chunk.replace(b"\n", b" ").replace(b"\r", b" ").replace(b"\t", b" ")
            needle = before + after
            if needle:
                at = chunk.find(needle)
                if at >= 0 and chunk.find(needle, at + 1) < 0:
                    return reader.chunk_start + at + max(len(before) - 1, 0)
    return reader.chunk_start


# ---------------------------------------------------------------------------------------------
# Value helpers


def _num(value: object) -> float | None:
    """A finite JSON number as float, else None (bools are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= MAX_SANE_NUMBER else None
    if isinstance(value, Decimal | float):
        try:
            f = float(value)
        except (OverflowError, ValueError):
            return None
        return f if math.isfinite(f) and abs(f) <= MAX_SANE_NUMBER else None
    return None


def _size(value: object) -> int | None:
    """A HAR size field: a non-negative number, else None (-1 means unknown in HAR)."""
    f = _num(value)
    if f is None or f < 0:
        return None
    return int(f)


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _normalize_http_version(value: str) -> str:
    v = value.strip()
    low = v.lower()
    if low in ("h2", "h2c", "http/2", "http/2.0"):
        return "HTTP/2"
    if low in ("h3", "http/3", "http/3.0") or low.startswith("h3-"):
        return "HTTP/3"
    if low.startswith("http/"):
        return "HTTP/" + v[5:]
    return v


def _text_to_bytes(text: str) -> bytes:
    """UTF-8, giving back the original bytes for surrogate-escaped text (mitmproxy)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _capped_text(text: str) -> tuple[bytes, bool]:
    data = _text_to_bytes(text[: MAX_BODY + 1])
    if len(data) > MAX_BODY or len(text) > MAX_BODY:
        return data[:MAX_BODY], True
    return data, False


def _capped_base64(text: str) -> tuple[bytes, bool]:
    """Decode base64 (whitespace ignored), keeping at most MAX_BODY bytes. Raises ValueError."""
    raw = text.encode("ascii")  # UnicodeEncodeError is a ValueError
    if _WS_SPACE.search(raw):
        raw = _WS_SPACE.sub(b"", raw)
    limit = -(-MAX_BODY // 3) * 4
    truncated = len(raw) > limit
    if truncated:
        raw = raw[:limit]
    try:
        data = binascii.a2b_base64(raw, strict_mode=True)
    except binascii.Error:
        # Unpadded base64 is common enough; retry with padding before giving up.
        try:
            data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
        except binascii.Error as exc:
            raise ValueError(str(exc)) from None
    if len(data) > MAX_BODY:
        return data[:MAX_BODY], True
    return data, truncated


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):  # (ijson's non-integer numbers)
        f = float(value)
        return f if math.isfinite(f) else str(value)
    raise TypeError(type(value).__name__)


def _compact_json(value: object) -> str:
    """``value`` (a parsed JSON value, nested at most :data:`MAX_NESTING` deep) as compact JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _params_body(params: list[tuple[str, object]], mime_type: object) -> bytes:
    """The request body ``postData.params`` stand for (no ``text``): the JSON document chrome-har
    took apart when the MIME type is JSON and a value is not a string, else the form-encoded
    params, values that are not strings written as compact JSON (null as empty)."""
    is_json = isinstance(mime_type, str) and "json" in mime_type.lower()
    if is_json and any(not isinstance(v, str) for _, v in params):
        names = [n for n, _ in params]
        if names == [str(i) for i in range(len(names))]:  # a JSON array, taken apart by index
            return _text_to_bytes(_compact_json([v for _, v in params]))
        if len(set(names)) == len(names):
            return _text_to_bytes(_compact_json(dict(params)))
    pairs = [(n, v if isinstance(v, str) else "" if v is None else _compact_json(v)) for n, v in params]
    return urlencode(pairs, encoding="utf-8", errors="surrogateescape").encode("ascii")


def _cookie_pairs(header_value: str) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for part in header_value.split(";"):
        name, sep, val = part.strip().partition("=")
        if sep:
            pairs.add((name.strip(), val.strip()))
    return pairs


def _host_from_split(parts: SplitResult) -> str | None:
    host = parts.hostname
    if not host:
        return None
    return host.rstrip(".").lower() or None


def _clean_ip(value: str) -> str | None:
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Entries


@dataclass(slots=True)
class _State:
    input_index: int
    header: _Header
    #: Firefox writes the remote port into ``connection``: not an id.
    connection_is_id: bool
    conns: dict[tuple[object, ...], Connection] = field(default_factory=dict)


class _Entry:
    """Reads one entry, collecting errors; helpers return defaults on bad input."""

    def __init__(self, raw: dict[str, Any], index: int, state: _State) -> None:
        self.raw = raw
        self.base = f"$.log.entries[{index}]"
        self.state = state
        self.errors: list[InputError] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append(InputError(message, json_path=self.base + path))

    def _typed(self, parent: dict[str, Any], key: str, path: str, kind: type, what: str) -> Any:
        """``parent[key]`` if it is a ``kind``; None if absent; an error (and None) otherwise."""
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, kind):
            self.err(path, f"{key} is not {what}")
            return None
        return value

    def obj(self, parent: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._typed(parent, key, path, dict, "an object")
        return result

    def string(self, parent: dict[str, Any], key: str, path: str) -> str | None:
        result: str | None = self._typed(parent, key, path, str, "a string")
        return result

    def size(self, parent: dict[str, Any], key: str, path: str) -> int | None:
        value = parent.get(key)
        if value is None:
            return None
        n = _size(value)
        if n is None and _num(value) is None:
            self.err(path, f"{key} is not a usable number")
        return n

    def name_values(self, parent: dict[str, Any], key: str, path: str) -> list[tuple[str, str]]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(path, f"{key} is not a list")
            return []
        out: list[tuple[str, str]] = []
        for j, item in enumerate(value):
            if not isinstance(item, dict):
                self.err(f"{path}[{j}]", "not a name/value object")
                continue
            name = item.get("name")
            val = item.get("value", "")
            if val is None:
                val = ""
            if not isinstance(name, str) or not isinstance(val, str):
                self.err(f"{path}[{j}]", "name or value is not a string")
                continue
            out.append((name, val))
        return out

    def params(self, post: dict[str, Any]) -> list[tuple[str, object]]:
        """``postData.params`` as (name, value): a value may be any JSON value (chrome-har)."""
        value = post.get("params")
        if value is None:
            return []
        path = ".request.postData.params"
        if not isinstance(value, list):
            self.err(path, "params is not a list")
            return []
        out: list[tuple[str, object]] = []
        for j, item in enumerate(value):
            if not isinstance(item, dict):
                self.err(f"{path}[{j}]", "not a name/value object")
                continue
            name = item.get("name")
            if not isinstance(name, str):
                self.err(f"{path}[{j}]", "name is not a string")
                continue
            out.append((name, item.get("value", "")))
        return out

    # -- the parts --------------------------------------------------------------------------

    def body(self, request: dict[str, Any], method: str) -> tuple[bytes, bool]:
        post = self.obj(request, "postData", ".request.postData")
        if post is not None:
            text = self.string(post, "text", ".request.postData.text")
            if text:
                return self._decode_body(post, text, ".request.postData")
            params = self.params(post)
            if params:
                encoded = _params_body(params, post.get("mimeType"))
                return encoded[:MAX_BODY], len(encoded) > MAX_BODY
        # HTTP Toolkit puts bodies that are not UTF-8 here, base64-encoded.
        content = self.obj(request, "_content", ".request._content")
        if content is not None:
            text = self.string(content, "text", ".request._content.text")
            if text:
                return self._decode_body(content, text, ".request._content")
        status = request.get("_requestBodyStatus")
        if isinstance(status, str) and status.startswith("discarded"):
            return b"", True
        body_size = _size(request.get("bodySize"))
        if post is None and body_size and method not in ("GET", "HEAD"):
            # A body went out but the writer did not keep it.
            return b"", True
        return b"", False

    def _decode_body(self, holder: dict[str, Any], text: str, path: str) -> tuple[bytes, bool]:
        encoding = holder.get("encoding")
        if isinstance(encoding, str) and encoding.lower() == "base64":
            try:
                return _capped_base64(text)
            except ValueError:
                self.err(path + ".text", "invalid base64 body; kept as text")
        return _capped_text(text)

    def headers(self, request: dict[str, Any]) -> list[tuple[str, str]]:
        headers = self.name_values(request, "headers", ".request.headers")
        cookies = self.name_values(request, "cookies", ".request.cookies")
        if cookies:
            present: set[tuple[str, str]] = set()
            for name, value in headers:
                if name.lower() == "cookie":
                    present |= _cookie_pairs(value)
            missing: list[str] = []
            for name, value in cookies:
                if (name.strip(), value.strip()) not in present:
                    missing.append(f"{name}={value}")
                    present.add((name.strip(), value.strip()))
            if missing:
                headers.append(("cookie", "; ".join(missing)))
        return headers


def _process_entry(raw: object, index: int, state: _State) -> Iterator[Record]:
    base = f"$.log.entries[{index}]"
    if not isinstance(raw, dict):
        yield InputError("entry is not an object", json_path=base)
        return
    e = _Entry(raw, index, state)
    request = raw.get("request")
    if not isinstance(request, dict):
        yield InputError(
            "entry has no request object" if request is None else "request is not an object",
            json_path=base + ".request",
        )
        return
    url = request.get("url")
    if not isinstance(url, str):
        yield InputError("request.url is missing or not a string", json_path=base + ".request.url")
        return
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port_in_url = parts.port
    except ValueError as exc:
        yield InputError(f"unparseable URL: {exc}", json_path=base + ".request.url")
        return
    if scheme in _LOCAL_SCHEMES:
        return
    if scheme not in _DEFAULT_PORTS:
        yield InputError(f"unsupported URL scheme {scheme!r}", json_path=base + ".request.url")
        return
    host = _host_from_split(parts)
    if host is None:
        yield InputError("URL has no host", json_path=base + ".request.url")
        return
    port = port_in_url if port_in_url is not None else _DEFAULT_PORTS[scheme]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    started = raw.get("startedDateTime")
    ts = _parse_time(started)
    if ts is None:
        e.err(".startedDateTime", "startedDateTime missing or not an ISO 8601 date; time unknown")
        ts = 0.0
    elapsed = _num(raw.get("time"))
    duration = elapsed / 1000.0 if elapsed is not None and elapsed > 0 else 0.0

    method = e.string(request, "method", ".request.method") or ""
    version_text = e.string(request, "httpVersion", ".request.httpVersion") or ""
    http_version = _normalize_http_version(version_text)
    headers = e.headers(request)
    body, truncated = e.body(request, method.upper())

    response = e.obj(raw, "response", ".response")
    status: int | None = None
    response_size: int | None = None
    resp_headers_size: int | None = None
    if response is not None:
        status_f = _num(response.get("status"))
        if response.get("status") is not None and status_f is None:
            e.err(".response.status", "status is not a number")
        if status_f is not None and status_f >= 1 and status_f == int(status_f) and status_f < 1000:
            status = int(status_f)
        response_size = e.size(response, "bodySize", ".response.bodySize")
        if response_size is None:
            content = e.obj(response, "content", ".response.content")
            if content is not None:
                response_size = e.size(content, "size", ".response.content.size")
        resp_headers_size = e.size(response, "headersSize", ".response.headersSize")
    elif "response" not in raw:
        e.err(".response", "entry has no response object")

    server_ip: str | None = None
    ip_text = e.string(raw, "serverIPAddress", ".serverIPAddress")
    if ip_text is not None and ip_text.strip() not in ("", "[]"):
        server_ip = _clean_ip(ip_text)
        if server_ip is None:
            e.err(".serverIPAddress", f"not an IP address: {ip_text[:80]!r}")

    app: str | None = None
    if state.header.creator == "HTTP Toolkit":
        pageref = raw.get("pageref")
        if isinstance(pageref, str) and pageref:
            app = state.header.pages.get(pageref, pageref)

    yield from e.errors
    e.errors.clear()

    ex = Exchange(
        ts=ts,
        scheme=scheme,
        method=method,
        host=host,
        url=url,
        target=target,
        http_version=http_version,
        request_headers=headers,
        request_body=body,
        request_body_truncated=truncated,
        request_body_size=_size(request.get("bodySize")) if truncated else None,
        status=status,
        response_size=response_size,
        server_ip=server_ip,
        server_port=port,
        app=app,
        input_index=state.input_index,
    )

    # -- connection aggregate ------------------------------------------------------------------
    req_out = sum(n for n in (_size(request.get("headersSize")), _size(request.get("bodySize"))) if n)
    resp_in = (resp_headers_size or 0) + (response_size or 0)
    got_response = status is not None or resp_in > 0
    ws_out = ws_in = ws_packets_out = ws_packets_in = 0
    last_seen = ts + duration
    messages = raw.get("_webSocketMessages")
    if isinstance(messages, list):
        for j, msg in enumerate(messages):
            if not isinstance(msg, dict):
                e.err(f"._webSocketMessages[{j}]", "not an object")
                continue
            data = msg.get("data", "")
            n = len(_text_to_bytes(data)) if isinstance(data, str) else 0
            if isinstance(data, str) and (msg.get("opcode") == 2 or msg.get("encoding") == "base64"):
                n = len(data.rstrip("=")) * 3 // 4
            when = _num(msg.get("time"))
            if when is not None and when > last_seen and ts > 0:
                last_seen = when
            if msg.get("type") == "send":
                ws_out += n
                ws_packets_out += 1
            elif msg.get("type") == "receive":
                ws_in += n
                ws_packets_in += 1
    yield from e.errors

    is_h3 = http_version == "HTTP/3"
    transport: Transport = "udp" if is_h3 else "tcp"
    protocol = "quic" if is_h3 else ("tls" if scheme in ("https", "wss") else "http")
    conn_id = raw.get("connection") if state.connection_is_id else None
    dest = server_ip or host
    key: tuple[object, ...]
    if isinstance(conn_id, str | int) and not isinstance(conn_id, bool) and str(conn_id):
        # (one record per host of a connection: a browser coalesces the hosts one server answers
        # for onto one HTTP/2 connection, and each host is a destination of its own)
        key = ("id", transport, dest, port, str(conn_id), host)
    else:
        key = ("host", transport, host, server_ip, port)
    conn = state.conns.get(key)
    if conn is None:
        conn = Connection(
            uid=connection_uid(state.input_index, len(state.conns)),
            transport=transport,
            client_ip="",
            client_port=0,
            server_ip=server_ip or "",
            server_port=port,
            first_seen=ts,
            last_seen=last_seen,
            http_host=host,
            protocol=protocol,
            app=app,
            input_index=state.input_index,
        )
        state.conns[key] = conn
    conn.first_seen = min(conn.first_seen, ts)
    conn.last_seen = max(conn.last_seen, last_seen)
    conn.packets_out += 1 + ws_packets_out
    conn.bytes_out += req_out + ws_out
    conn.packets_in += (1 if got_response else 0) + ws_packets_in
    conn.bytes_in += resp_in + ws_in
    if conn.app is None:
        conn.app = app
    ex.uid = conn.uid
    yield ex


# ---------------------------------------------------------------------------------------------
# The reader


def read_har(path: Path, input_index: int, progress: ProgressCallback | None = None,
             compression: str = "") -> Iterator[Record]:
    """Stream the records of one HAR file. Never raises on bad content (I/O errors opening the
    file do propagate).

    ``compression`` (``zlib`` for mitmproxy's ``.zhar``, or one of the capture compressions of
    :data:`~datareach.sources.compressed.CAPTURE_COMPRESSIONS`): the file is decompressed as it is
    read, an entry may take at most :data:`MAX_COMPRESSED_ENTRY` decompressed bytes, offsets in
    errors are offsets in the decompressed HAR and progress is not reported."""
    if compression:
        progress = None

    def opened() -> Any:
        if not compression:
            return open(path, "rb")
        from datareach.sources.compressed import open_decompressed

        return open_decompressed(path, compression)

    def counting(raw: IO[bytes], report: ProgressCallback | None) -> _CountingReader:
        reader = _CountingReader(raw, report)
        if compression:
            reader.compression = compression
            reader.entry_budget = MAX_COMPRESSED_ENTRY
        return reader

    header: _Header | None = None
    for backend_name in _backend_names():
        with opened() as raw:
            reader = counting(raw, None)
            try:
                header = _read_header(reader, backend_name)
            except UnicodeDecodeError:
                continue  # lone surrogate escapes: see the entries loop below
            except Exception as exc:  # syntax error before the entries
                yield _fatal_for(exc, reader, backend_name, entries_done=0, before_entries=True)
                return
        break
    if header is None:
        yield InputError("not a HAR file: text that is not valid UTF-8", offset=0, fatal=True)
        return
    if header.problem is not None:
        yield header.problem
        return

    creator = header.creator.lower()
    is_firefox = "firefox" in creator or "firefox" in header.browser.lower()
    state = _State(input_index=input_index, header=header, connection_is_id=not is_firefox)

    done = 0  # entries fully processed
    fatal: InputError | None = None
    for backend_name in _backend_names():
        backend = ijson.get_backend(backend_name)
        with opened() as raw:
            reader = counting(raw, None if backend_name != "yajl2_c" else progress)
            index = 0
            try:
                for item in backend.items(reader, "log.entries.item", buf_size=READ_SIZE):
                    reader.entry_mark = reader.pos
                    if index >= done:
                        yield from _guarded_entry(item, index, state)
                        done = index + 1
                    index += 1
            except UnicodeDecodeError:
                # yajl hands lone surrogate escapes (\udcXX, as mitmproxy writes them) to a
                # strict UTF-8 decoder; the Python backend takes them. Start over there.
                if backend_name != "python":
                    continue
                fatal = _fatal_for(None, reader, backend_name, entries_done=done, before_entries=False)
            except Exception as exc:
                fatal = _fatal_for(exc, reader, backend_name, entries_done=done, before_entries=False)
            if progress is not None:
                progress(reader.pos)
            break

    yield from state.conns.values()
    if fatal is not None:
        yield fatal


def _guarded_entry(item: object, index: int, state: _State) -> list[Record]:
    """The records of one entry; a bug of ours on strange input costs that entry, not the file."""
    try:
        return list(_process_entry(item, index, state))
    except Exception as exc:  # pragma: no cover - defensive
        return [
            InputError(
                f"entry could not be read ({type(exc).__name__}: {exc})", json_path=f"$.log.entries[{index}]"
            )
        ]


def _fatal_for(
    exc: BaseException | None,
    reader: _CountingReader,
    backend: str,
    *,
    entries_done: int,
    before_entries: bool,
) -> InputError:
    n = entries_done
    stopped = f"reading stopped after {n} entr{'y' if n == 1 else 'ies'}"
    if isinstance(exc, CompressedDataError):
        if before_entries and not reader.content_seen:
            return InputError(f"HAR file not read: {exc}", offset=0, fatal=True)
        return InputError(f"{exc}: {stopped} ({reader.pos:,} decompressed bytes read)", offset=reader.pos,
                          fatal=True)
    if isinstance(exc, EntryTooLarge):
        return InputError(f"{'HAR file not read' if before_entries else stopped}: {exc}", offset=exc.offset,
                          fatal=True)
    if isinstance(exc, JsonLimitExceeded):
        if before_entries:
            return InputError(f"HAR file not read: {exc} (HAR files nest about 8 levels deep)",
                              offset=exc.offset, fatal=True)
        return InputError(f"{exc}: {stopped}", offset=exc.offset, fatal=True)
    if exc is None:
        detail = "text that is not valid UTF-8"
        offset = reader.chunk_start
    else:
        first_line = str(exc).strip().split("\n", 1)[0]
        if first_line.startswith("b'"):
            first_line = first_line[2:]
        detail = first_line[:200] or type(exc).__name__
        offset = _syntax_error_offset(exc, reader, backend)
    if before_entries:
        if not reader.content_seen:
            return InputError("empty file: not a HAR file", offset=0, fatal=True)
        return InputError(f"not a HAR file: invalid JSON ({detail})", offset=offset, fatal=True)
    where = f"after {entries_done} entr{'y' if entries_done == 1 else 'ies'}"
    return InputError(f"invalid or truncated JSON {where}: {detail}", offset=offset, fatal=True)
