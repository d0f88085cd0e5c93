"""The decoding chain: a request taken apart wherever data hides, every layer recorded.

:func:`decode_exchange` turns one :class:`~datareach.schema.Exchange` into :class:`Layer` objects:
URL path segments, query parameters, headers, cookies and the body -- content-decoded
(``Content-Encoding``), then split by content type *and* by sniffing (form fields, multipart
parts, JSON values, gRPC frames, schema-less protobuf fields, text). Every string value found on
the way is tried again as percent-encoding, JWT, hex, base64 (standard, URL-safe, unpadded),
embedded JSON and compressed blobs, recursively, within :class:`Limits`.

Encoding labels (``Layer.encoding``, outermost first) -- the vocabulary other modules rely on:

=============================  ==================================================================
``path[I]``                    URL path segment I (0 = first segment after the leading ``/``)
``query``                      the raw query string as a whole
``query NAME``                 query parameter NAME (value as sent, still percent-encoded)
``query[I]``                   query item I that has no ``=`` (the item itself is the value)
``header NAME``                request header, NAME lower-cased
``cookie NAME``                one cookie of a ``Cookie`` header
``body``                       the request body as sent
``body(E1,E2)``                the body after removing its ``Content-Encoding`` (header order)
``form NAME``                  ``application/x-www-form-urlencoded`` field (value as sent)
``multipart NAME``             ``multipart/*`` part (``multipart [I]`` when it has no name)
``multipart NAME filename``    the filename of that part
``grpc[I]`` / ``grpc[I](E)``   gRPC (or gRPC-web) message I, ``E`` when it was compressed
``line[I]``                    line I of newline-delimited JSON
``json PATH``                  JSON scalar at JSONPath-like PATH (``$.events[3].ctx``, ``$["a b"]``)
``protobuf F.F.F``             schema-less protobuf field, by field numbers from the outermost
``percent``                    one round of percent-decoding (``+`` is a space in query/form)
``base64``                     base64, standard or URL-safe, padded or not
``hex``                        hexadecimal
``jwt header``                 a JWT's header (JSON)
``jwt payload``                a JWT's payload (JSON, walked further as ``json PATH``)
``gzip`` / ``zlib`` / ``zstd``  a compressed blob found by its magic bytes
=============================  ==================================================================

``Layer.location`` is the top-level piece the layer came from (``path[2]``, ``query gaid``,
``header x-device``, ``cookie sid``, ``query``, ``body``).

Every limit that cuts something, and every piece of the input that could not be decoded as it
claimed (gzip that is not gzip, truncated streams), leaves a note in ``Decoded.cuts``. Nothing
raises; decompression always runs with an output bound.

Memory is bounded by the limits, not by the input: decompression streams (at most
:data:`_OUT_CHUNK` bytes per step, into a buffer handed over without a copy), so a compressed
layer never materialises more than its cap (layer size, ratio, what is left of the request's
total) however deeply compressed blobs nest; a Content-Encoding list removes at most
``max_depth`` codings; values are walked piece by piece (never ``split`` into lists of millions of
pieces); and no regular expression repeats a group over a value (Python's ``re`` keeps a
backtracking frame per repetition: ``(?:[0-9a-f]{2}){8,}`` over 8 MB of hex took 600 MB).
"""

from __future__ import annotations

import binascii
import contextlib
import importlib
import io
import itertools
import json
import re
import struct
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import orjson

from datareach.detect.types import Decoded, Layer, Limits
from datareach.schema import Exchange

_brotli: Any
try:
    _brotli = importlib.import_module("brotli")
except ImportError:  # pragma: no cover - brotli is a dependency
    _brotli = None
_zstd: Any
try:
    _zstd = importlib.import_module("zstandard")
except ImportError:  # pragma: no cover - zstandard is a dependency
    _zstd = None

__all__ = ["DecodeMemo", "decode_exchange"]

#: Headers that never carry data worth looking at (hop-by-hop, framing, HTTP/2 pseudo-headers
#: that repeat the URL). User-Agent, Accept-Language, Referer, custom X- headers are all kept.
_SKIP_HEADERS: Final = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade", "content-length", "content-encoding", "content-type", "host", "accept",
    "accept-encoding", "cache-control", "pragma", "expect", "grpc-encoding", "grpc-accept-encoding",
    "grpc-timeout", ":method", ":scheme", ":authority", ":path", ":protocol",
})
_AUTH_HEADERS: Final = frozenset({"authorization", "proxy-authorization"})
_CONTENT_CODINGS: Final = {
    "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "br": "br", "zstd": "zstd",
}

_PCT = re.compile(rb"%[0-9A-Fa-f]{2}")
_B64 = re.compile(rb"[A-Za-z0-9+/_-]{8,}={0,2}")
#: Hex digits of one case (callers check the even length: no repeated group, see the docstring).
_HEX = re.compile(rb"[0-9a-f]{16,}|[0-9A-F]{16,}")
_JWT = re.compile(rb"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_AUTH = re.compile(rb"([A-Za-z][A-Za-z0-9_.-]*) +([A-Za-z0-9._~+/=-]{8,})")
_BEARER = re.compile(rb"(?i:bearer|token|jwt) +([A-Za-z0-9._~+/=-]{8,})")
#: Control characters other than tab, line feed, carriage return (and DEL, U+FFFD).
_CTRL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CTRL_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
#: What a value must look like for any decoder to apply (JSON, percent, JWT/hex/base64, binary).
_WORTH = re.compile(rb"[ \t\r\n]*[{\[]|.*%[0-9A-Fa-f]{2}|[ \t\r\n]*[A-Za-z0-9+/=_.-]{8,}[ \t\r\n]*\Z"
                    rb"|.*[^\x20-\x7e]", re.S)
#: What stops a value from being ``a=1&b=2`` (empty items after the first allowed): whitespace, an
#: item without ``=`` or with an empty name, an empty first item, an empty string.
_FORM_BAD = re.compile(rb"\s|(?:\A|&)[^=&]+(?=&|\Z)|(?:\A|&)=|\A&|\A\Z")
#: A body of one form field (``d=eyJ1Ijp7...%3D``, sent without a form content type): a field
#: name, ``=``, and a value that does not start with ``=`` (so padded base64 is not a field).
_ONE_FIELD = re.compile(rb"[A-Za-z_][A-Za-z0-9_.\-\[\]]{0,63}=[^=&\s]")
_URL_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_CT_PARAM = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')
#: Longest Content-Type / Content-Disposition value parsed (the regex above repeats a group).
_CT_MAX = 1 << 16
#: Longest header block of a multipart part read.
_PART_HEAD_MAX = 1 << 16
_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")
_WS = b" \t\r\n"
_NOT_JSON: Final = object()
#: A protobuf string that looks like a field name (the key of the value in the next field).
_PB_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_.-]{1,40}\Z")
#: Deepest protobuf nesting tried (each level is a length-delimited field parsed as a message).
_PB_MAX_NESTING = 24
#: Field numbers above this make an unannounced binary blob implausible as protobuf.
_PB_PLAUSIBLE_FIELD = 1 << 16
_CHUNK = 1 << 16
#: Most bytes one decompression step produces (the output grows by these, never by a whole layer).
_OUT_CHUNK = 1 << 20
_PATH_MAX = 240


class DecodeMemo:
    """Decoded header and cookie values, kept across the requests of an audit: a cookie sent on
    1,000 requests is decoded once, then its layers (immutable) are handed out again.

    Bounded: at most ``max_entries`` values and ``max_bytes`` of keys and layer values, least
    recently used first out; values over :data:`MEMO_MAX_VALUE` bytes, or shorter than
    :data:`MEMO_MIN_VALUE`, are not kept. An entry is kept only when its decoding left no note
    and did not depend on what the request had used before it (protobuf parsing and
    decompression are bounded by what is left of the request's budget), and it is replayed only
    when the request's limits leave room for all of it; so a request decodes to the same layers
    and the same cuts with or without the memo. ``hits``, ``misses``, ``stored`` and
    ``evictions`` count what it did.
    """

    __slots__ = ("_entries", "bytes", "evictions", "hits", "limits", "max_bytes", "max_entries", "misses", "stored")

    def __init__(self, max_entries: int = 4096, max_bytes: int = 4 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str, bytes], tuple[tuple[Layer, ...], int, int, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = self.stored = self.evictions = 0
        #: the limits its entries were decoded under (other limits empty it first)
        self.limits: Limits | None = None

    def bind(self, limits: Limits) -> None:
        """Entries decoded under other limits would differ: forget them."""
        if self.limits is not limits and self.limits != limits:
            self._entries.clear()
            self.bytes = 0
            self.limits = limits

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, str, bytes]) -> tuple[tuple[Layer, ...], int, int, int] | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        with contextlib.suppress(KeyError):  # another thread may have evicted it meanwhile
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, str, bytes], layers: tuple[Layer, ...], total: int, items: int) -> None:
        size = len(key[1]) + len(key[2]) + sum(len(layer.value) for layer in layers) + 64 * (len(layers) + 1)
        if size > self.max_bytes // 8 or key in self._entries:
            return
        self._entries[key] = (layers, total, items, size)
        self.bytes += size
        self.stored += 1
        while self._entries and (len(self._entries) > self.max_entries or self.bytes > self.max_bytes):
            try:
                _key, (_l, _t, _i, old) = self._entries.popitem(last=False)
            except KeyError:
                break
            self.bytes -= old
            self.evictions += 1


#: Header and cookie values shorter than this are decoded each time (cheaper than a look-up).
MEMO_MIN_VALUE = 8
#: Nor are values longer than this kept.
MEMO_MAX_VALUE = 1 << 16


def decode_exchange(ex: Exchange, limits: Limits = Limits(), memo: DecodeMemo | None = None) -> Decoded:
    """Every layer of ``ex``, decoded recursively within ``limits``; never raises. ``memo``:
    header and cookie values decoded in earlier requests (:class:`DecodeMemo`)."""
    if memo is not None:
        memo.bind(limits)
    run = _Run(limits, ex, memo)
    for part in (run.url, run.headers, run.body):
        if run.stopped:
            break
        try:
            part()
        except Exception as exc:  # a safety net: the decoders are written not to raise
            run.note(f"internal:{part.__name__}",
                     f"{part.__name__}: decoding stopped by an internal error ({type(exc).__name__}: {exc})")
    return Decoded(run.layers, run.finish_notes())


# --------------------------------------------------------------------------------------------
# helpers


def _s2b(s: str) -> bytes:
    try:
        return s.encode()
    except UnicodeEncodeError:
        try:
            return s.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return s.encode("utf-8", "surrogatepass")


def _b2s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _unquote(b: bytes, plus: bool) -> bytes:
    """Percent-decoding of bytes (``+`` as space when ``plus``); bytes in, bytes out."""
    if plus:
        b = b.replace(b"+", b" ")
    return unquote_to_bytes(b) if b"%" in b else b


def _name(b: bytes) -> str:
    return _b2s(_unquote(b, True))


def _is_text(b: bytes) -> bool:
    """Decodes as UTF-8 and is mostly printable (at most 1 in 20 control characters)."""
    if not b:
        return False
    if not b.isascii():
        try:
            b.decode()
        except UnicodeDecodeError:
            return False
    # UTF-8 continuation and lead bytes are all >= 0x80: control bytes are control characters
    bad = len(b) - len(b.translate(None, _CTRL_BYTES))
    return bad * 20 <= len(b)


def _json_loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:  # big integers, NaN, invalid UTF-8 (kept byte for byte through surrogateescape)
        return json.loads(data.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return _NOT_JSON


def _zlib_header(b: bytes) -> bool:
    return len(b) >= 2 and (b[0] & 0x0F) == 8 and (b[0] >> 4) <= 7 and ((b[0] << 8) | b[1]) % 31 == 0


def _compressed_kind(b: bytes) -> str | None:
    if b[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if b[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if _zlib_header(b):
        return "zlib"
    return None


def _pieces(data: bytes, sep: bytes) -> Iterator[bytes]:
    """``data.split(sep)`` one piece at a time: a list of millions of pieces costs ~40 bytes each.
    (Not generic over str and bytes: the packet core's compiler (mypyc) wants one type.)"""
    start, width = 0, len(sep)
    while True:
        end = data.find(sep, start)
        if end < 0:
            yield data[start:]
            return
        yield data[start:end]
        start = end + width


def _text_pieces(data: str, sep: str) -> Iterator[str]:
    """:func:`_pieces` of a string."""
    start, width = 0, len(sep)
    while True:
        end = data.find(sep, start)
        if end < 0:
            yield data[start:]
            return
        yield data[start:end]
        start = end + width


def _is_form(s: bytes) -> bool:
    """``name=value`` items joined by ``&`` (empty items after the first allowed), no whitespace."""
    return _FORM_BAD.search(s) is None


def _parse_ctype(value: str) -> tuple[str, dict[str, str]]:
    value = value[:_CT_MAX]
    mime, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for m in _CT_PARAM.finditer(";" + rest):
        v = m.group(2) if m.group(2) is not None else (m.group(3) or "").strip()
        params.setdefault(m.group(1).lower(), v)
    return mime.strip().lower(), params


def _shorten(p: str) -> str:
    """A JSONPath too long for a label (deep documents): the root and the nearest steps."""
    tail = p[-(_PATH_MAX - 40):]
    cut = min((i for i in (tail.find("."), tail.find("[")) if i >= 0), default=0)
    return "$…" + tail[cut:]


def _key_seg(k: str) -> str:
    if k.isidentifier():
        return "." + k
    if len(k) > 64:
        k = k[:60] + "…"
    return "[" + json.dumps(k, ensure_ascii=False) + "]"


# --------------------------------------------------------------------------------------------
# bounded decompression


def _zlib_stream(data: bytes, wbits: int, cap: int) -> tuple[bytes, str]:
    """Inflate with at most ``cap`` bytes out; gzip members are followed. Status: ok, cut,
    truncated (input ended inside the stream) or error (invalid data after ``len(out)`` bytes).

    Streams: each step makes at most :data:`_OUT_CHUNK` bytes, and the output is gathered in a
    :class:`io.BytesIO`, whose buffer becomes the result without a copy."""
    out = io.BytesIO()
    size = 0
    view = memoryview(data)
    pos = 0
    d = zlib.decompressobj(wbits)
    while True:
        tail = d.unconsumed_tail
        if tail:
            inp: bytes | memoryview = tail
        elif pos < len(data):
            inp = view[pos:pos + _CHUNK]
            pos += len(inp)
        else:
            inp = b""  # what zlib still holds comes out without more input
        try:
            chunk = d.decompress(inp, min(_OUT_CHUNK, cap + 1 - size))
        except zlib.error:
            return out.getvalue(), "error"
        if size + len(chunk) > cap:
            out.write(memoryview(chunk)[:cap - size])
            return out.getvalue(), "cut"
        out.write(chunk)
        size += len(chunk)
        if d.eof:
            # the fed input ends at pos: what zlib did not use starts the next member, if any
            at = pos - len(d.unused_data)
            if wbits == 31 and data[at:at + 2] == b"\x1f\x8b":
                pos, d = at, zlib.decompressobj(wbits)
                continue
            return out.getvalue(), "ok"
        if not chunk:
            if not inp:
                return out.getvalue(), "truncated"
            if len(d.unconsumed_tail) == len(inp):  # no progress: never loop on it
                return out.getvalue(), "error"


def _brotli_stream(data: bytes, cap: int) -> tuple[bytes, str]:
    if _brotli is None:
        return b"", "unsupported"
    d = _brotli.Decompressor()
    out = io.BytesIO()
    size = 0
    inp = data
    try:
        while True:
            chunk = d.process(inp, output_buffer_limit=min(_OUT_CHUNK, cap + 1 - size))
            inp = b""
            if size + len(chunk) > cap:
                out.write(memoryview(chunk)[:cap - size])
                return out.getvalue(), "cut"
            out.write(chunk)
            size += len(chunk)
            if d.is_finished():
                return out.getvalue(), "ok"
            if d.can_accept_more_data():
                return out.getvalue(), "truncated"
            if not chunk:
                return out.getvalue(), "error"
    except TypeError:  # brotli < 1.2 cannot bound its output: refuse rather than risk a bomb
        return b"", "unsupported"
    except Exception:
        return out.getvalue(), "error"


def _zstd_stream(data: bytes, cap: int) -> tuple[bytes, str]:
    if _zstd is None:
        return b"", "unsupported"
    out = io.BytesIO()
    size = 0
    try:
        # RFC 8878 s3.1.1.1: HTTP zstd windows are at most 8 MB; larger ones are refused.
        dctx = _zstd.ZstdDecompressor(max_window_size=1 << 23)
        reader = dctx.stream_reader(data, read_across_frames=True)
        while True:
            chunk = reader.read(min(cap + 1 - size, _OUT_CHUNK))
            if not chunk:
                break
            if size + len(chunk) > cap:
                out.write(memoryview(chunk)[:cap - size])
                return out.getvalue(), "cut"
            out.write(chunk)
            size += len(chunk)
    except Exception:
        return out.getvalue(), "error"
    try:
        frame_size = _zstd.get_frame_parameters(data).content_size
    except Exception:
        frame_size = -1
    if not size and data:
        return b"", "truncated" if frame_size != 0 else "ok"
    if frame_size > 0 and size < frame_size:
        return out.getvalue(), "truncated"
    return out.getvalue(), "ok"


def _decompress(kind: str, data: bytes, cap: int) -> tuple[bytes, str]:
    if kind == "gzip":
        return _zlib_stream(data, 31, cap)
    if kind == "zlib":
        return _zlib_stream(data, 15, cap)
    if kind == "deflate":  # RFC 9110 says zlib; many servers and clients send raw deflate
        out, status = _zlib_stream(data, 15, cap)
        if status == "error" and not out:
            return _zlib_stream(data, -15, cap)
        return out, status
    if kind == "br":
        return _brotli_stream(data, cap)
    if kind == "zstd":
        return _zstd_stream(data, cap)
    return b"", "unsupported"


# --------------------------------------------------------------------------------------------
# protobuf without a schema

# A parsed field: (number, wire type, value) where value is an int (varint, fixed) or, for
# length-delimited fields, a tuple (kind, payload, subfields): kind "s" string, "m" message,
# "b" bytes.
_PbField = tuple[int, int, Any]


class _PbParser:
    """Parses protobuf wire format; refuses anything a real encoder would not write."""

    __slots__ = ("budget", "exhausted", "max_field")

    def __init__(self, budget: int, max_field: int) -> None:
        self.budget = budget
        self.exhausted = False
        self.max_field = max_field

    def message(self, data: bytes, level: int) -> list[_PbField] | None:
        fields: list[_PbField] = []
        i, n = 0, len(data)
        max_field = self.max_field
        while i < n:
            if self.budget <= 0:
                self.exhausted = True
                return fields
            self.budget -= 1
            key, i = _varint(data, i, n)
            if i < 0:
                return None
            num, wt = key >> 3, key & 7
            if num == 0 or num > max_field:
                return None
            if wt == 0:
                v, i = _varint(data, i, n)
                if i < 0:
                    return None
                fields.append((num, 0, v))
            elif wt == 2:
                ln, j = _varint(data, i, n)
                if j < 0 or j + ln > n:
                    return None
                payload = data[j:j + ln]
                i = j + ln
                fields.append((num, 2, self.classify(payload, level)))
            elif wt == 1:
                if i + 8 > n:
                    return None
                fields.append((num, 1, data[i:i + 8]))
                i += 8
            elif wt == 5:
                if i + 4 > n:
                    return None
                fields.append((num, 5, data[i:i + 4]))
                i += 4
            else:  # groups (3, 4) are long deprecated; 6 and 7 do not exist
                return None
        return fields

    def classify(self, payload: bytes, level: int) -> tuple[str, bytes, list[_PbField] | None]:
        if not payload:
            return ("s", payload, None)
        text = _is_text(payload)
        if text and payload[0] >= 0x20:  # tags of fields 1-3 are control bytes; text wins
            return ("s", payload, None)
        if level < _PB_MAX_NESTING and not self.exhausted:
            saved = self.budget
            sub = self.message(payload, level + 1)
            if sub and not self.exhausted:
                return ("m", payload, sub)
            if not self.exhausted:
                self.budget = saved
        return ("s" if text else "b", payload, None)


def _varint(b: bytes, i: int, n: int) -> tuple[int, int]:
    result = shift = 0
    while i < n:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if c < 0x80:
            if c == 0 and shift:  # over-long encoding: no encoder writes it
                return 0, -1
            if result >> 64:
                return 0, -1
            return result, i
        shift += 7
        if shift > 63:
            return 0, -1
    return 0, -1


def _pb_plausible(fields: list[_PbField], size: int) -> bool:
    """Whether an unannounced blob that parsed as protobuf looks like a real message."""
    strings = messages = blobs = varints = total = 0
    max_num = 0
    stack = [fields]
    while stack:
        for num, wt, v in stack.pop():
            total += 1
            max_num = max(max_num, num)
            if wt == 0:
                varints += 1
            elif wt == 2:
                kind, payload, sub = v
                if kind == "s" and len(payload) >= 2:
                    strings += 1
                elif kind == "m" and sub is not None:
                    messages += 1
                    stack.append(sub)
                elif kind == "b":
                    blobs += 1
    if size < 2 or total == 0:
        return False
    if strings:
        return True
    if messages:
        return max_num <= 1024
    # numbers only: encoders write fields in field-number order, with small numbers
    nums = [f[0] for f in fields]
    return (total >= 3 and varints * 2 > total and not blobs and max_num <= 32
            and all(x <= y for x, y in itertools.pairwise(nums)))


def _pb_simple(fields: list[_PbField]) -> bool:
    """A short message announced as protobuf: numbers under small field numbers, no opaque bytes."""
    return all(num <= 1024 and (wt != 2 or v[0] != "b") for num, wt, v in fields)


def _fixed64(b: bytes) -> bytes:
    (x,) = struct.unpack("<d", b)
    if x == 0.0 or (x == x and 1e-9 <= abs(x) <= 1e15):
        return repr(x).encode()
    return str(int.from_bytes(b, "little")).encode()


def _fixed32(b: bytes) -> bytes:
    (x,) = struct.unpack("<f", b)
    if x == 0.0 or (x == x and 1e-6 <= abs(x) <= 1e9):
        return f"{x:.7g}".encode()
    return str(int.from_bytes(b, "little")).encode()


def _varint_text(v: int) -> bytes:
    if v >= 1 << 63:  # a negative int64/int32 (two's complement)
        v -= 1 << 64
    return str(v).encode()


# --------------------------------------------------------------------------------------------
# the run


def _layer_factory() -> Any:
    """Layer(...) without the frozen dataclass __init__ (object.__setattr__ per field): twice as
    fast, and layers are the bulk of the work. Falls back to the constructor if Layer changes."""
    if tuple(Layer.__dataclass_fields__) != ("location", "encoding", "key", "value"):
        return Layer
    new = object.__new__
    s0, s1, s2, s3 = (getattr(Layer, f).__set__ for f in ("location", "encoding", "key", "value"))

    def make(location: str, encoding: tuple[str, ...], key: str | None, value: bytes) -> Layer:
        obj = new(Layer)
        s0(obj, location)
        s1(obj, encoding)
        s2(obj, key)
        s3(obj, value)
        return obj

    return make


_new_layer = _layer_factory()


class _Run:
    __slots__ = ("ex", "hdr", "items", "layers", "lim", "memo", "noted", "notes", "stopped", "total", "volatile")

    def __init__(self, limits: Limits, ex: Exchange, memo: DecodeMemo | None = None) -> None:
        self.lim = limits
        self.ex = ex
        self.memo = memo
        #: notes made so far, and decodings bounded by what is left of the request's budget
        #: (their result depends on what came before: not memoised)
        self.noted = 0
        self.volatile = 0
        self.layers: list[Layer] = []
        self.notes: dict[str, list[Any]] = {}
        self.total = 0
        self.items = 0
        self.stopped = False
        self.hdr: dict[str, str] = {}

    # -- bookkeeping -------------------------------------------------------------------------

    def note(self, kind: str, message: str) -> None:
        self.noted += 1
        entry = self.notes.get(kind)
        if entry is None:
            self.notes[kind] = [message, 1]
        else:
            entry[1] += 1

    def finish_notes(self) -> list[str]:
        out = []
        for message, count in self.notes.values():
            out.append(message if count == 1 else f"{message} (and {count - 1} more like it)")
        return out

    def emit(self, loc: str, chain: tuple[str, ...], key: str | None, value: bytes) -> bytes | None:
        """Records a layer; returns its value (cut to the layer size limit) or None if dropped."""
        if self.stopped:
            return None
        lim = self.lim
        layers = self.layers
        n = len(value)
        if len(layers) < lim.max_layers and n <= lim.max_layer_bytes and self.total + n <= lim.max_total_bytes:
            self.total += n
            layers.append(_new_layer(loc, chain, key, value))
            return value
        if len(layers) >= lim.max_layers:
            self.note("layers", f"layers limit {lim.max_layers} reached at {' > '.join(chain)}; "
                                "the rest of the request was not decoded")
            self.stopped = True
            return None
        n = len(value)
        if n > lim.max_layer_bytes:
            self.note("layer-size", f"{' > '.join(chain)}: value of {n} bytes cut to "
                                    f"{lim.max_layer_bytes} bytes (layer size limit)")
            value = value[:lim.max_layer_bytes]
            n = lim.max_layer_bytes
        if self.total + n > lim.max_total_bytes:
            self.note("total", f"total bytes limit {lim.max_total_bytes} reached at "
                               f"{' > '.join(chain)}; the rest of the request was not decoded")
            self.stopped = True
            return None
        self.total += n
        self.layers.append(_new_layer(loc, chain, key, value))
        return value

    def take_item(self, chain: tuple[str, ...], label: str) -> bool:
        if self.items >= self.lim.max_items:
            where = " > ".join((*chain, label))
            self.note("items", f"items limit {self.lim.max_items} reached at {where}; "
                               "the remaining JSON/form/protobuf items were not walked")
            return False
        self.items += 1
        return True

    def inflate(self, kind: str, data: bytes, label: str) -> tuple[bytes, str]:
        """Bounded decompression with a note for whatever stops it."""
        self.volatile += 1
        lim = self.lim
        cap, why = lim.max_layer_bytes, f"layer size limit {lim.max_layer_bytes}"
        if lim.max_ratio * len(data) < cap:
            cap, why = lim.max_ratio * len(data), f"ratio limit {lim.max_ratio}"
        remaining = lim.max_total_bytes - self.total
        if remaining < cap:
            cap, why = max(remaining, 0), f"total bytes limit {lim.max_total_bytes}"
        if cap <= 0:
            self.note("decompress-cut", f"{label}: not decompressed ({why})")
            return b"", "cut"
        try:
            out, status = _decompress(kind, data, cap)
        except Exception:
            out, status = b"", "error"
        if status == "cut":
            self.note("decompress-cut",
                      f"{label}: decompressed output stopped at {len(out)} bytes ({why})")
        elif status == "truncated":
            self.note("decompress-truncated",
                      f"{label}: compressed data ended early; kept the {len(out)} bytes decompressed")
        elif status == "error" and out:
            self.note("decompress-error", f"{label}: corrupt {kind} data after {len(out)} bytes; "
                                          "kept what decompressed")
        elif status == "unsupported":
            self.note("decompress-unsupported", f"{label}: {kind} cannot be decompressed with a "
                                                "bounded output here (brotli>=1.2 / zstandard needed)")
        return out, status

    # -- URL ---------------------------------------------------------------------------------

    def url(self) -> None:
        ex = self.ex
        if ex.method.upper() == "CONNECT":
            return
        src = ex.url or ex.target
        m = _URL_PREFIX.match(src)
        if m:
            src = src[m.end():]
        src = src.partition("#")[0]
        path, _, query = src.partition("?")
        segments = _text_pieces(path, "/")
        if path.startswith("/"):
            next(segments)
        for i, seg in enumerate(segments):
            if self.stopped:
                break
            if seg:
                label = f"path[{i}]"
                self.value(label, (label,), None, _s2b(seg))
        if query and not self.stopped:
            raw = _s2b(query)
            if self.emit("query", ("query",), None, raw) is not None:
                self.pairs("query", raw, ())

    def pairs(self, prefix: str, raw: bytes, chain: tuple[str, ...], loc: str | None = None) -> None:
        """``a=1&b=2`` (query string or form body): one layer per item."""
        for i, item in enumerate(_pieces(raw, b"&")):
            if self.stopped:
                return
            if not item:
                continue
            if not self.take_item(chain, prefix):
                return
            name, eq, val = item.partition(b"=")
            if eq:
                k = _name(name)
                label = f"{prefix} {k}"
            else:
                k, label, val = None, f"{prefix}[{i}]", item
            c = (*chain, label)
            self.value(loc or label, c, k, val, plus=True)

    # -- headers -----------------------------------------------------------------------------

    def headers(self) -> None:
        named = [(name.strip().lower(), value) for name, value in self.ex.request_headers]
        hdr = self.hdr
        for lname, value in named:
            hdr.setdefault(lname, value)
        memo = self.memo
        for lname, value in named:
            if self.stopped:
                return
            if lname in _SKIP_HEADERS:
                continue
            raw = _s2b(value)
            if memo is None or not MEMO_MIN_VALUE <= len(raw) <= MEMO_MAX_VALUE:
                self.header(lname, raw)
            else:
                self.memoised(("header", lname, raw), self.header, lname, raw)

    def header(self, lname: str, raw: bytes) -> None:
        label = f"header {lname}"
        if lname == "cookie":
            if self.emit(label, (label,), lname, raw) is not None:
                self.cookies(raw)
            return
        kept = self.emit(label, (label,), lname, raw)
        if kept is None:
            return
        m = (_AUTH if lname in _AUTH_HEADERS else _BEARER).fullmatch(kept.strip())
        token = m.group(m.lastindex or 1) if m else kept
        self.expand(label, (label,), lname, token)

    def memoised(self, key: tuple[str, str, bytes], decode: Callable[..., None], *args: Any) -> None:
        """``decode(*args)`` of a header or cookie value, or the layers it gave in an earlier request."""
        memo = self.memo
        assert memo is not None
        entry = memo.get(key)
        lim = self.lim
        if entry is not None:
            layers, total, items, _size = entry
            # replayed only where decoding it again would meet no limit either
            if (len(self.layers) + len(layers) <= lim.max_layers and self.total + total <= lim.max_total_bytes
                    and self.items + items <= lim.max_items):
                # new objects: detectors tell the layers of one request apart by identity
                new = _new_layer
                self.layers += [new(layer.location, layer.encoding, layer.key, layer.value) for layer in layers]
                self.total += total
                self.items += items
                return
        n0, t0, i0, noted0, volatile0 = len(self.layers), self.total, self.items, self.noted, self.volatile
        decode(*args)
        if not self.stopped and self.noted == noted0 and self.volatile == volatile0:
            memo.put(key, tuple(self.layers[n0:]), self.total - t0, self.items - i0)

    def cookies(self, raw: bytes) -> None:
        for part in _pieces(raw, b";"):
            if self.stopped:
                return
            name, eq, val = part.strip().partition(b"=")
            if not eq or not name:
                continue
            if not self.take_item(("header cookie",), "cookie"):
                return
            if len(val) >= 2 and val[:1] == b'"' and val[-1:] == b'"':
                val = val[1:-1]
            k = _b2s(name)
            label = f"cookie {k}"
            if self.memo is None or not MEMO_MIN_VALUE <= len(val) <= MEMO_MAX_VALUE:
                self.value(label, (label,), k, val)
            else:
                self.memoised(("cookie", k, val), self.value, label, (label,), k, val)

    # -- body --------------------------------------------------------------------------------

    def body(self) -> None:
        ex = self.ex
        data = ex.request_body
        if not data:
            return
        if ex.request_body_truncated:
            self.note("body-truncated", f"body: the capture kept only {len(data)} bytes of it")
        codings = [c.strip().lower() for c in self.hdr.get("content-encoding", "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        removed: list[str] = []
        for coding in reversed(codings):
            if len(removed) >= self.lim.max_depth:
                self.note("ce-depth", f"body: Content-Encoding lists {len(codings)} codings; only the last "
                                      f"{len(removed)} were removed (depth limit {self.lim.max_depth})")
                break
            kind = _CONTENT_CODINGS.get(coding)
            if kind is None:
                self.note("ce-unknown", f"body: Content-Encoding {coding!r} is not supported; "
                                        "the body was decoded as it stood")
                break
            out, status = self.inflate(kind, data, f"body({coding})")
            if status in ("error", "unsupported") and not out:
                if status == "error":
                    self.note("ce-invalid", f"body: Content-Encoding says {coding}, but the data "
                                            f"is not {coding}; decoded as it stood")
                break
            data = out
            removed.append(coding)
            if status != "ok":
                break
        label = "body(" + ",".join(reversed(removed)) + ")" if removed else "body"
        kept = self.emit("body", (label,), None, data)
        if kept is not None:
            self.content("body", (label,), None, kept, self.hdr.get("content-type", ""))

    def content(self, loc: str, chain: tuple[str, ...], key: str | None, data: bytes,
                ctype: str) -> None:
        """Decodes ``data`` (already recorded under ``chain``) by content type, then by sniffing."""
        if self.stopped or not data:
            return
        if len(chain) >= self.lim.max_depth:
            self.depth_note(chain, data)
            return
        mime, params = _parse_ctype(ctype)
        boundary = params.get("boundary")
        if mime.startswith("multipart/") and boundary and self.multipart(loc, chain, data, boundary):
            return
        if mime.startswith("application/grpc") and self.grpc(loc, chain, data):
            return
        if ("protobuf" in mime or mime.endswith("proto")) and self.protobuf(loc, chain, data, True):
            return
        if mime == "application/x-www-form-urlencoded" and b"=" in data and _is_text(data[:4096]):
            self.pairs("form", data.strip(), chain, loc)
            return
        self.expand(loc, chain, key, data, body=True)

    def multipart(self, loc: str, chain: tuple[str, ...], data: bytes, boundary: str) -> bool:
        delim = b"--" + _s2b(boundary)
        if delim not in data:
            return False
        pieces = _pieces(data, delim)
        next(pieces)  # the preamble
        for idx, piece in enumerate(pieces):
            if self.stopped or piece.startswith(b"--"):
                break
            if not self.take_item(chain, "multipart"):
                return True
            if piece.startswith(b"\r\n"):
                piece = piece[2:]
            elif piece.startswith(b"\n"):
                piece = piece[1:]
            sep, width = piece.find(b"\r\n\r\n"), 4
            if sep < 0:
                sep, width = piece.find(b"\n\n"), 2
            if sep < 0:
                head, content = piece, b""
            else:
                head, content = piece[:sep], piece[sep + width:]
            if content.endswith(b"\r\n"):
                content = content[:-2]
            elif content.endswith(b"\n"):
                content = content[:-1]
            headers: dict[str, str] = {}
            if len(head) > _PART_HEAD_MAX:
                self.note("part-head", f"{' > '.join(chain)}: a part's headers are over {_PART_HEAD_MAX} "
                                       "bytes; only the first were read")
                head = head[:_PART_HEAD_MAX]
            for line in _pieces(head, b"\n"):
                hname, colon, hval = _b2s(line).partition(":")
                if colon:
                    headers.setdefault(hname.strip().lower(), hval.strip())
            _, disp = _parse_ctype(headers.get("content-disposition", ""))
            name = disp.get("name")
            filename = disp.get("filename") or disp.get("filename*")
            label = f"multipart {name}" if name is not None else f"multipart [{idx}]"
            if filename is not None:
                self.emit(loc, (*chain, label + " filename"), "filename", _s2b(filename))
            c = (*chain, label)
            kept = self.emit(loc, c, name, content)
            if kept is None:
                continue
            if headers.get("content-transfer-encoding", "").lower() == "base64":
                if len(c) >= self.lim.max_depth:
                    self.depth_note(c, kept)
                    continue
                try:
                    kept = binascii.a2b_base64(kept)
                except (binascii.Error, ValueError):
                    continue
                c = (*c, "base64")
                kept2 = self.emit(loc, c, name, kept)
                if kept2 is None:
                    continue
                kept = kept2
            self.content(loc, c, name, kept, headers.get("content-type", ""))
        return True

    def grpc(self, loc: str, chain: tuple[str, ...], data: bytes) -> bool:
        i, n, idx = 0, len(data), 0
        found = False
        enc = self.hdr.get("grpc-encoding", "identity").strip().lower()
        while i + 5 <= n and not self.stopped:
            flag = data[i]
            ln = int.from_bytes(data[i + 1:i + 5], "big")
            i += 5
            if flag & 0x7E:
                return found
            msg = data[i:i + ln]
            if i + ln > n:
                self.note("grpc-truncated", f"{' > '.join(chain)}: gRPC message {idx} is cut short")
            i += ln
            if flag & 0x80:  # gRPC-web trailers
                continue
            label = f"grpc[{idx}]"
            if flag & 1:
                kind = _CONTENT_CODINGS.get(enc)
                if kind is None:
                    label = f"grpc[{idx}]({enc})"
                    self.emit(loc, (*chain, label), None, msg)
                    idx += 1
                    continue
                label = f"grpc[{idx}]({enc})"
                msg, _ = self.inflate(kind, msg, " > ".join((*chain, label)))
            idx += 1
            found = True
            c = (*chain, label)
            kept = self.emit(loc, c, None, msg)
            if kept is not None and len(c) < self.lim.max_depth:
                self.protobuf(loc, c, kept, hinted=True)
        return found

    # -- values ------------------------------------------------------------------------------

    def value(self, loc: str, chain: tuple[str, ...], key: str | None, data: bytes,
              plus: bool = False) -> None:
        kept = self.emit(loc, chain, key, data)
        if kept is not None and kept:
            self.expand(loc, chain, key, kept, plus)

    def depth_note(self, chain: tuple[str, ...], data: bytes) -> None:
        s = data.strip()
        if (s[:1] in (b"{", b"[") or _PCT.search(data[:4096]) or _compressed_kind(s)
                or (len(s) >= 8 and _B64.fullmatch(s))):
            self.note("depth", f"depth limit {self.lim.max_depth} reached at {' > '.join(chain)}; "
                               "not decoded further")

    def expand(self, loc: str, chain: tuple[str, ...], key: str | None, data: bytes,
               plus: bool = False, body: bool = False, no_pb: bool = False) -> None:
        """Tries every decoder on ``data`` (already recorded under ``chain``)."""
        n = len(data)
        if not n or self.stopped:
            return
        first = data[0]
        if not body and not plus and not _WORTH.match(data):
            return
        if len(chain) >= self.lim.max_depth:
            self.depth_note(chain, data)
            return
        # JSON (also when the content type said otherwise)
        if first in b"{[" or (first in _WS and data.lstrip()[:1] in (b"{", b"[")):
            obj = _json_loads(data)
            if obj is not _NOT_JSON and isinstance(obj, (dict, list)):
                self.json_walk(loc, chain, obj, key)
                return
            if body and b"\n" in data and self.ndjson(loc, chain, data, key):
                return
        if data.isascii() and not _CTRL.search(data):
            self.expand_text(loc, chain, key, data, plus, body)
            return
        kind = _compressed_kind(data)
        if kind is not None:
            out, _ = self.inflate(kind, data, " > ".join((*chain, kind)))
            if out:
                self.value(loc, (*chain, kind), key, out)
                return
        if _is_text(data):
            self.expand_text(loc, chain, key, data, plus, body)
            return
        if not no_pb:
            self.protobuf(loc, chain, data, hinted=False)

    def expand_text(self, loc: str, chain: tuple[str, ...], key: str | None, data: bytes,
                    plus: bool, body: bool) -> None:
        s = data.strip()
        if body and b"=" in s and (b"&" in s or _ONE_FIELD.match(s)) and _is_form(s):
            self.pairs("form", s, chain, loc)
            return
        if (plus and b"+" in data) or _PCT.search(data):
            dec = _unquote(data, plus)
            if dec != data:
                self.value(loc, (*chain, "percent"), key, dec)
                if _PCT.search(data):
                    return
        if len(s) < 8:
            return
        if s[:3] == b"eyJ" and s.count(b".") == 2 and _JWT.fullmatch(s) and self.jwt(loc, chain, s, key):
            return
        if b"\n" in s and len(s) > 64:  # MIME-style wrapped base64
            s = s.translate(None, b" \t\n\r\x0b\x0c")  # b"".join(s.split()), without the list
        if len(s) >= 16 and not len(s) & 1 and _HEX.fullmatch(s):
            try:
                dec = bytes.fromhex(s.decode())
            except ValueError:
                return
            if self.plausible(dec):
                self.value(loc, (*chain, "hex"), key, dec)
            return
        # base64 of anything worth decoding mixes upper and lower case: snake_case names,
        # lower-case UUIDs and numbers are left alone without trying
        if not s.islower() and not s.isupper() and not s.isdigit() and _B64.fullmatch(s):
            dec2 = _b64decode(s)
            if dec2 is not None and self.plausible(dec2):
                self.value(loc, (*chain, "base64"), key, dec2)

    def plausible(self, dec: bytes) -> bool:
        """Whether decoded base64/hex is worth a layer: text, JSON, compressed or protobuf."""
        if len(dec) < 4 and not _is_text(dec):
            return False
        if _is_text(dec) or _compressed_kind(dec) is not None:
            return True
        parser = _PbParser(4096, _PB_PLAUSIBLE_FIELD)
        fields = parser.message(dec, 0)
        return bool(fields) and not parser.exhausted and _pb_plausible(fields or [], len(dec))

    def jwt(self, loc: str, chain: tuple[str, ...], s: bytes, key: str | None) -> bool:
        head_b64, payload_b64, _ = s.split(b".")
        head = _b64decode(head_b64)
        if head is None:
            return False
        hobj = _json_loads(head)
        if not isinstance(hobj, dict):
            return False
        payload = _b64decode(payload_b64)
        if payload is None:
            return False
        self.emit(loc, (*chain, "jwt header"), key, head)
        c = (*chain, "jwt payload")
        kept = self.emit(loc, c, key, payload)
        if kept is not None:
            self.expand(loc, c, key, kept)
        return True

    def ndjson(self, loc: str, chain: tuple[str, ...], data: bytes, key: str | None) -> bool:
        done = False
        for i, line in enumerate(_pieces(data, b"\n")):
            if self.stopped:
                break
            line = line.strip()
            if not line:
                continue
            obj = _json_loads(line) if line[:1] in (b"{", b"[") else _NOT_JSON
            if not isinstance(obj, (dict, list)):
                if not done:
                    return False
                continue
            c = (*chain, f"line[{i}]")
            if self.emit(loc, c, key, line) is not None:
                done = True
                if len(c) < self.lim.max_depth:
                    self.json_walk(loc, c, obj, key)
                else:
                    self.depth_note(c, line)
        return done

    def json_walk(self, loc: str, chain: tuple[str, ...], root: Any, root_key: str | None) -> None:
        """Every scalar of a parsed JSON document, in document order, as ``json PATH`` layers."""
        if not self.take_item(chain, "json $"):
            return
        max_items = self.lim.max_items
        emit, expand = self.emit, self.expand
        frames: list[tuple[Iterator[tuple[Any, Any]], str, str | None, bool]] = [
            (iter(root.items()) if isinstance(root, dict) else enumerate(root), "$", root_key,
             isinstance(root, dict))]
        while frames:
            it, path, pkey, is_obj = frames[-1]
            for k, v in it:
                if self.stopped:
                    return
                ckey: str | None
                if is_obj:
                    ckey = k if type(k) is str else str(k)
                    cpath = path + ("." + ckey if ckey.isidentifier() else _key_seg(ckey))
                else:
                    cpath, ckey = f"{path}[{k}]", pkey
                if len(cpath) > _PATH_MAX:
                    cpath = _shorten(cpath)
                if self.items >= max_items:
                    self.take_item(chain, "json " + cpath)
                    return
                self.items += 1
                t = type(v)
                if t is str:
                    c = (*chain, "json " + cpath)
                    kept = emit(loc, c, ckey, _s2b(v))
                    if kept and (len(kept) >= 8 or b"%" in kept or kept[0] in b"{["):
                        expand(loc, c, ckey, kept)
                elif t is dict or t is list:
                    frames.append((iter(v.items()) if t is dict else enumerate(v), cpath, ckey,
                                   t is dict))
                    break
                elif t is bool:
                    emit(loc, (*chain, "json " + cpath), ckey, b"true" if v else b"false")
                elif t is int:
                    try:
                        text = str(v).encode()
                    except ValueError:
                        continue
                    emit(loc, (*chain, "json " + cpath), ckey, text)
                elif t is float:
                    emit(loc, (*chain, "json " + cpath), ckey, repr(v).encode())
            else:
                frames.pop()

    def protobuf(self, loc: str, chain: tuple[str, ...], data: bytes, hinted: bool) -> bool:
        """Schema-less protobuf walk; ``hinted`` when the content type announced protobuf."""
        if not data or len(chain) >= self.lim.max_depth:
            return False
        self.volatile += 1
        remaining = self.lim.max_items - self.items
        parser = _PbParser(max(remaining, 0) + 1, (1 << 29) - 1 if hinted else _PB_PLAUSIBLE_FIELD)
        fields = parser.message(data, 0)
        if not fields:
            return False
        if not hinted and (parser.exhausted or not _pb_plausible(fields, len(data))):
            return False
        if hinted and not parser.exhausted and not _pb_plausible(fields, len(data)) \
                and not _pb_simple(fields):
            return False
        self.pb_emit(loc, chain, fields, "")
        if parser.exhausted:
            self.items = max(self.items, self.lim.max_items)
            self.take_item(chain, "protobuf")
        return True

    def pb_emit(self, loc: str, chain: tuple[str, ...], fields: list[_PbField], prefix: str) -> None:
        # Without a schema, field names are unknown; but key/value messages (analytics event
        # parameters, user properties: {1: "gaid", 2: value}) carry the name as a sibling
        # string just before the value, which then serves as the value's key.
        key: str | None = None
        for num, wt, v in fields:
            if self.stopped:
                return
            path = f"{prefix}{num}"
            label = f"protobuf {path}"
            if not self.take_item(chain, label):
                return
            c = (*chain, label)
            name, key = key, None
            if wt == 0:
                self.emit(loc, c, name, _varint_text(v))
            elif wt == 1:
                self.emit(loc, c, name, _fixed64(v))
            elif wt == 5:
                self.emit(loc, c, name, _fixed32(v))
            else:
                kind, payload, sub = v
                if kind == "m" and sub is not None:
                    self.pb_emit(loc, chain, sub, path + ".")
                elif payload:
                    kept = self.emit(loc, c, name, payload)
                    if name is None and _PB_NAME.match(payload):
                        key = payload.decode("ascii")
                    if kept:
                        self.expand(loc, c, name, kept, no_pb=True)


def _b64decode(s: bytes) -> bytes | None:
    core = s.rstrip(b"=")
    if b"-" in core or b"_" in core:
        if b"+" in core or b"/" in core:
            return None
        core = core.translate(_URLSAFE_TO_STD)
    r = len(core) & 3
    if r == 1:
        return None
    if r:
        core += b"=" * (4 - r)
    try:
        return binascii.a2b_base64(core, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
