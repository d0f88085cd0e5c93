"""The decoding chain (datareach.detect.decode): every encoding, nested, every limit, bad input."""

from __future__ import annotations

import base64
import gzip
import json
import random
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import brotli
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach.detect import decode
from datareach.detect.decode import decode_exchange
from datareach.detect.types import Decoded, Layer, Limits
from datareach.schema import Exchange
from datareach.testing import protobuf
from datareach.testing.counting import Calls
from sources_path import compiled, run_on_sources


def make(url: str = "https://api.example.com/", headers: list[tuple[str, str]] | None = None,
         body: bytes = b"", method: str = "POST") -> Exchange:
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    target = rest[slash:] if slash >= 0 else "/"
    return Exchange(ts=0.0, scheme="https", method=method, host="api.example.com", url=url,
                    target=target, http_version="HTTP/1.1", request_headers=list(headers or []),
                    request_body=body)


def body_ex(body: bytes, ctype: str | None = None, encoding: str | None = None,
            extra: list[tuple[str, str]] | None = None) -> Exchange:
    headers = []
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    return make(headers=headers + (extra or []), body=body)


def chains(d: Decoded) -> dict[tuple[str, ...], Layer]:
    return {layer.encoding: layer for layer in d.layers}


def layer(d: Decoded, *encoding: str) -> Layer:
    found = chains(d).get(tuple(encoding))
    assert found is not None, f"no layer {encoding}; have {[x.encoding for x in d.layers]}"
    return found


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


# protobuf wire format, written by hand (no schema, as in the wild)

varint = protobuf.varint
pb_varint = protobuf.field_varint
pb_bytes = protobuf.field_bytes
pb_double = protobuf.field_double
pb_float = protobuf.field_float


JWT_PAYLOAD = {"sub": "user-829301", "email": "tester@example.org", "iat": 1700000000}
JWT = (b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(json.dumps(JWT_PAYLOAD).encode())
       + "." + b64url(b"\x01" * 32))


# ------------------------------------------------------------------------------------------
# URL, headers, cookies


def test_path_segments_and_query() -> None:
    d = decode_exchange(make("https://api.example.com/v1/users/u-829301?gaid=abc&lang=en#frag",
                             method="GET"))
    assert d.layers[0] == Layer("path[0]", ("path[0]",), None, b"v1")
    assert layer(d, "path[0]").value == b"v1"
    assert layer(d, "path[2]").value == b"u-829301"
    assert layer(d, "path[2]").location == "path[2]"
    raw = layer(d, "query")
    assert raw.value == b"gaid=abc&lang=en" and raw.location == "query"
    gaid = layer(d, "query gaid")
    assert (gaid.location, gaid.key, gaid.value) == ("query gaid", "gaid", b"abc")
    assert not any("frag" in x.value.decode() for x in d.layers)


def test_query_percent_encoded_twice() -> None:
    d = decode_exchange(make("https://api.example.com/t?email=" + quote(quote("tester@example.org"))))
    assert layer(d, "query email").value == b"tester%2540example.org"
    assert layer(d, "query email", "percent").value == b"tester%40example.org"
    last = layer(d, "query email", "percent", "percent")
    assert (last.value, last.key, last.location) == (b"tester@example.org", "email", "query email")
    assert ("query email", "percent", "percent", "percent") not in chains(d)


def test_query_plus_is_space_and_names_decoded() -> None:
    d = decode_exchange(make("https://api.example.com/t?full%20name=John+Smith&flag"))
    assert layer(d, "query full name", "percent").value == b"John Smith"
    assert layer(d, "query[1]").value == b"flag"


def test_query_base64_gzip_json() -> None:
    blob = base64.urlsafe_b64encode(gzip.compress(b'{"adid":"38400000-8cf0-11bd-b23e-10b96e40000d"}'))
    d = decode_exchange(make("https://api.example.com/c?d=" + blob.decode()))
    adid = layer(d, "query d", "base64", "gzip", "json $.adid")
    assert adid.value == b"38400000-8cf0-11bd-b23e-10b96e40000d" and adid.key == "adid"


def test_headers_kept_and_skipped() -> None:
    d = decode_exchange(make(headers=[("Connection", "keep-alive"), ("User-Agent", "MyApp/1.0 (Pixel 7)"),
                                      ("Content-Length", "0"), ("X-Device-Id", "abc123"),
                                      ("Accept-Language", "en-GB")]))
    assert layer(d, "header user-agent").value == b"MyApp/1.0 (Pixel 7)"
    assert layer(d, "header x-device-id").key == "x-device-id"
    assert layer(d, "header accept-language").value == b"en-GB"
    assert ("header connection",) not in chains(d)
    assert ("header content-length",) not in chains(d)


def test_jwt_in_authorization_header() -> None:
    d = decode_exchange(make(headers=[("Authorization", "Bearer " + JWT)]))
    assert json.loads(layer(d, "header authorization", "jwt header").value)["alg"] == "HS256"
    assert json.loads(layer(d, "header authorization", "jwt payload").value) == JWT_PAYLOAD
    email = layer(d, "header authorization", "jwt payload", "json $.email")
    assert (email.value, email.key, email.location) == (b"tester@example.org", "email",
                                                        "header authorization")
    assert layer(d, "header authorization", "jwt payload", "json $.iat").value == b"1700000000"


def test_jwt_in_custom_header_and_basic_auth() -> None:
    d = decode_exchange(make(headers=[("X-Token", JWT),
                                      ("Authorization", "Basic " + b64(b"tester:hunter2!"))]))
    assert layer(d, "header x-token", "jwt payload", "json $.sub").value == b"user-829301"
    assert layer(d, "header authorization", "base64").value == b"tester:hunter2!"


def test_cookies() -> None:
    d = decode_exchange(make(headers=[("Cookie", 'sid=s3cr3t; prefs="' + b64(b'{"uid":"u-1"}')
                                      + '"; empty=; junk')]))
    assert layer(d, "header cookie").location == "header cookie"
    sid = layer(d, "cookie sid")
    assert (sid.location, sid.key, sid.value) == ("cookie sid", "sid", b"s3cr3t")
    assert layer(d, "cookie prefs", "base64", "json $.uid").value == b"u-1"
    assert layer(d, "cookie empty").value == b""


# ------------------------------------------------------------------------------------------
# body: content encodings


PAYLOAD = json.dumps({"email": "tester@example.org", "n": 3}).encode()


@pytest.mark.parametrize(("coding", "compress"), [
    ("gzip", gzip.compress),
    ("x-gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda b: zlib.compress(b, wbits=-15)),
    ("br", brotli.compress),
    ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
])
def test_content_encodings(coding: str, compress: object) -> None:
    assert callable(compress)
    d = decode_exchange(body_ex(compress(PAYLOAD), "application/json", coding))
    assert layer(d, f"body({coding})").value == PAYLOAD
    assert layer(d, f"body({coding})", "json $.email").value == b"tester@example.org"
    assert d.cuts == []


def test_stacked_content_encodings() -> None:
    data = brotli.compress(gzip.compress(PAYLOAD))  # gzip applied first, then br
    d = decode_exchange(body_ex(data, "application/json", "gzip, br"))
    assert layer(d, "body(gzip,br)", "json $.n").value == b"3"


def test_multi_member_gzip() -> None:
    d = decode_exchange(body_ex(gzip.compress(b"hello ") + gzip.compress(b"world"), "text/plain", "gzip"))
    assert layer(d, "body(gzip)").value == b"hello world"


def test_body_claiming_gzip_that_is_not() -> None:
    d = decode_exchange(body_ex(PAYLOAD, "application/json", "gzip"))
    assert layer(d, "body", "json $.email").value == b"tester@example.org"
    assert any("Content-Encoding says gzip" in c for c in d.cuts)


def test_truncated_gzip_keeps_what_decompressed() -> None:
    text = b"".join(b"line %d of the log\n" % i for i in range(5000))
    data = gzip.compress(text)
    d = decode_exchange(body_ex(data[: len(data) // 2], "text/plain", "gzip"))
    kept = layer(d, "body(gzip)").value
    assert 0 < len(kept) < len(text) and text.startswith(kept)
    assert any("body(gzip): compressed data ended early" in c for c in d.cuts)


def test_unknown_content_encoding() -> None:
    d = decode_exchange(body_ex(b"plain", "text/plain", "compress"))
    assert layer(d, "body").value == b"plain"
    assert any("'compress' is not supported" in c for c in d.cuts)


# ------------------------------------------------------------------------------------------
# body: content types and sniffing


def test_gzip_json_base64_json_chain() -> None:
    inner = b64(json.dumps({"uid": "user-829301", "geo": {"lat": 48.85837}}).encode())
    doc = {"events": [{"t": 1}, {"t": 2}, {"t": 3}, {"ctx": inner}]}
    d = decode_exchange(body_ex(gzip.compress(json.dumps(doc).encode()), "application/json", "gzip"))
    uid = layer(d, "body(gzip)", "json $.events[3].ctx", "base64", "json $.uid")
    assert (uid.value, uid.key, uid.location) == (b"user-829301", "uid", "body")
    assert layer(d, "body(gzip)", "json $.events[3].ctx", "base64", "json $.geo.lat").value == b"48.85837"
    assert layer(d, "body(gzip)", "json $.events[3].ctx").key == "ctx"
    assert layer(d, "body(gzip)", "json $.events[1].t").key == "t"


def test_json_with_wrong_content_type() -> None:
    for ctype in ("text/plain", "application/octet-stream", None):
        d = decode_exchange(body_ex(PAYLOAD, ctype))
        assert layer(d, "body", "json $.email").value == b"tester@example.org"


def test_json_inside_json_string_and_odd_keys() -> None:
    doc = [{"payload": json.dumps({"user id": "u-1", "tags": ["a", "bb"]}), "ok": True, "x": None}]
    d = decode_exchange(body_ex(json.dumps(doc).encode(), "application/json"))
    assert layer(d, "body", 'json $[0].payload', 'json $["user id"]').value == b"u-1"
    tag = layer(d, "body", "json $[0].payload", "json $.tags[1]")
    assert (tag.value, tag.key) == (b"bb", "tags")
    assert layer(d, "body", "json $[0].ok").value == b"true"
    assert ("body", "json $[0].x") not in chains(d)


def test_json_big_int_and_invalid_utf8() -> None:
    d = decode_exchange(body_ex(b'{"big": 123456789012345678901234567890, "bad": "ab\xff\xfecd",'
                                b' "email": "tester@example.org"}', "application/json"))
    assert layer(d, "body", "json $.big").value == b"123456789012345678901234567890"
    assert layer(d, "body", "json $.bad").value == b"ab\xff\xfecd"
    assert layer(d, "body", "json $.email").value == b"tester@example.org"


def test_ndjson() -> None:
    d = decode_exchange(body_ex(b'{"a": "x1"}\n{"a": "x2"}\n', "application/x-ndjson"))
    assert layer(d, "body", "line[1]", "json $.a").value == b"x2"


def test_form_urlencoded_and_sniffed_form() -> None:
    body = b"v=1&cid=555.666&email=tester%40example.org&name=John+Smith"
    for ctype in ("application/x-www-form-urlencoded", "text/plain;charset=UTF-8"):
        d = decode_exchange(body_ex(body, ctype))
        email = layer(d, "body", "form email", "percent")
        assert (email.value, email.key, email.location) == (b"tester@example.org", "email", "body")
        assert layer(d, "body", "form cid").value == b"555.666"
        assert layer(d, "body", "form name", "percent").value == b"John Smith"


def test_multipart_with_json_part_and_file() -> None:
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n"
            b'{"email": "tester@example.org"}\r\n'
            b"--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"john_smith.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nhello there\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"inner\"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\nk=v1&j=v2\r\n"
            b"--XyZ--\r\n")
    d = decode_exchange(body_ex(body, 'multipart/form-data; boundary="XyZ"'))
    email = layer(d, "body", "multipart meta", "json $.email")
    assert (email.value, email.key) == (b"tester@example.org", "email")
    assert layer(d, "body", "multipart upload").value == b"hello there"
    assert layer(d, "body", "multipart upload filename").value == b"john_smith.txt"
    assert layer(d, "body", "multipart inner", "form j").value == b"v2"


def test_protobuf_nested_message_with_string() -> None:
    inner = pb_varint(1, 7) + pb_bytes(2, pb_bytes(1, b"x") + pb_bytes(2, b"tester@example.org"))
    msg = pb_varint(1, 150) + pb_bytes(3, inner) + pb_double(4, 48.85837) + pb_float(5, 2.5) \
        + pb_varint(6, -2)
    for ctype in ("application/x-protobuf", "application/octet-stream"):
        d = decode_exchange(body_ex(msg, ctype))
        assert layer(d, "body", "protobuf 1").value == b"150"
        assert layer(d, "body", "protobuf 3.1").value == b"7"
        assert layer(d, "body", "protobuf 3.2.2").value == b"tester@example.org"
        assert layer(d, "body", "protobuf 4").value == b"48.85837"
        assert layer(d, "body", "protobuf 5").value == b"2.5"
        assert layer(d, "body", "protobuf 6").value == b"-2"
    d = decode_exchange(body_ex(pb_varint(1, 150), "application/x-protobuf"))  # tiny, announced
    assert layer(d, "body", "protobuf 1").value == b"150"


def test_protobuf_in_base64_in_json_and_string_decoded_further() -> None:
    msg = pb_bytes(1, b"hello world") + pb_bytes(2, b64(b'{"k": "deep value"}').encode())
    d = decode_exchange(body_ex(json.dumps({"blob": b64(msg)}).encode(), "application/json"))
    assert layer(d, "body", "json $.blob", "base64", "protobuf 1").value == b"hello world"
    assert layer(d, "body", "json $.blob", "base64", "protobuf 2", "base64", "json $.k").value \
        == b"deep value"


def test_grpc_frames() -> None:
    msg = pb_bytes(1, b"tester@example.org")
    compressed = gzip.compress(msg)
    body = (b"\x00" + len(msg).to_bytes(4, "big") + msg
            + b"\x01" + len(compressed).to_bytes(4, "big") + compressed)
    d = decode_exchange(body_ex(body, "application/grpc", extra=[("grpc-encoding", "gzip")]))
    assert layer(d, "body", "grpc[0]", "protobuf 1").value == b"tester@example.org"
    assert layer(d, "body", "grpc[1](gzip)", "protobuf 1").value == b"tester@example.org"


def test_random_bytes_give_no_protobuf_layers() -> None:
    rng = random.Random(7)
    for _ in range(300):
        blob = rng.randbytes(rng.randrange(16, 600))
        for ctype in ("application/octet-stream", None):
            d = decode_exchange(body_ex(blob, ctype))
            assert [x.encoding for x in d.layers] == [("body",)]
        if len(blob) >= 64:  # even announced as protobuf (short random blobs may parse cleanly)
            d = decode_exchange(body_ex(blob, "application/x-protobuf"))
            assert [x.encoding for x in d.layers] == [("body",)]
        d = decode_exchange(make("https://api.example.com/x?d=" + b64url(blob), method="GET"))
        assert not any("base64" in x.encoding for x in d.layers)


def test_plain_text_body_is_one_layer() -> None:
    d = decode_exchange(body_ex(b"just some words here, nothing encoded", "text/plain"))
    assert [(x.encoding, x.location) for x in d.layers] == [(("body",), "body")]


def test_hex() -> None:
    d = decode_exchange(body_ex(json.dumps({"h": b"tester@example.org".hex(),
                                            "md5": "5d41402abc4b2a76b9719d911017c592"}).encode()))
    assert layer(d, "body", "json $.h", "hex").value == b"tester@example.org"
    assert ("body", "json $.md5", "hex") not in chains(d)
    assert ("body", "json $.md5", "base64") not in chains(d)


def test_base64_variants_and_implausible_strings() -> None:
    secret = b"tester@example.org?x>y~~"  # encodes with + and / in standard, - and _ url-safe
    doc = {"std": b64(secret), "url": b64url(secret), "unpadded": b64(b"tester@x.org").rstrip("="),
           "word": "username", "camel": "getUserInfoById", "uuid": "38400000-8cf0-11bd-b23e-10b96e40000d",
           "digits": "1700000000123", "short": "aGk="}
    d = decode_exchange(body_ex(json.dumps(doc).encode(), "application/json"))
    assert layer(d, "body", "json $.std", "base64").value == secret
    assert layer(d, "body", "json $.url", "base64").value == secret
    assert layer(d, "body", "json $.unpadded", "base64").value == b"tester@x.org"
    for k in ("word", "camel", "uuid", "digits", "short"):
        assert ("body", f"json $.{k}", "base64") not in chains(d), k


def test_compressed_blob_in_base64_body() -> None:
    d = decode_exchange(body_ex(base64.b64encode(zlib.compress(PAYLOAD)), "text/plain"))
    assert layer(d, "body", "base64", "zlib", "json $.email").value == b"tester@example.org"


# ------------------------------------------------------------------------------------------
# limits


def zero_gzip_bomb(mib: int) -> bytes:
    """``mib`` MiB of zeros as one valid gzip member, built from repeated full-flush blocks."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    first = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    middle = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    last = co.compress(chunk) + co.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first + middle * (mib - 2) + last
            + crc.to_bytes(4, "little") + ((mib << 20) & 0xFFFFFFFF).to_bytes(4, "little"))


_DECOMPRESSOBJ = zlib.decompressobj


class CountingInflater:
    """A zlib decompressor that counts the bytes it was given and the bytes it produced."""

    def __init__(self, *args: Any) -> None:
        self._d = _DECOMPRESSOBJ(*args)
        self.consumed = 0
        self.produced = 0

    def decompress(self, data: Any, max_length: int = 0) -> bytes:
        out = self._d.decompress(data, max_length)
        self.consumed += len(data) - len(self._d.unconsumed_tail)
        self.produced += len(out)
        return out

    def __getattr__(self, name: str) -> Any:  # eof, unused_data, unconsumed_tail...
        return getattr(self._d, name)


def test_gzip_bomb_1gib_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = zero_gzip_bomb(1024)
    assert len(bomb) < 2 << 20
    made: list[CountingInflater] = []

    def inflater(*args: Any) -> CountingInflater:
        made.append(CountingInflater(*args))
        return made[-1]

    monkeypatch.setattr(zlib, "decompressobj", inflater)
    d = decode_exchange(body_ex(bomb, "application/octet-stream", "gzip"))
    assert [len(x.value) for x in d.layers] == [Limits().max_layer_bytes]
    assert d.cuts == ["body(gzip): decompressed output stopped at 8388608 bytes (layer size limit 8388608)"]
    # the work, not the time: one decompressor, stopped one byte past the layer size limit (the
    # byte that shows there was more), after a sliver of the input
    (used,) = made
    assert used.produced == Limits().max_layer_bytes + 1
    assert 0 < used.consumed < len(bomb) // 100


def test_ratio_limit() -> None:
    bomb = zero_gzip_bomb(16)  # ~17 KB compressed, 16 MiB out
    d = decode_exchange(body_ex(bomb, None, "gzip"))
    (only,) = d.layers
    assert len(only.value) == 200 * len(bomb)
    assert d.cuts == [f"body(gzip): decompressed output stopped at {200 * len(bomb)} bytes (ratio limit 200)"]


def test_ratio_limit_on_nested_blob_and_brotli_zstd() -> None:
    zeros = bytes(4 << 20)
    for coding, data in (("br", brotli.compress(zeros)),
                         ("zstd", zstandard.ZstdCompressor().compress(zeros))):
        d = decode_exchange(body_ex(data, None, coding))
        assert len(layer(d, f"body({coding})").value) == 200 * len(data)
        assert any(f"body({coding}): decompressed output stopped" in c and "ratio limit 200" in c
                   for c in d.cuts)
    blob = b64(gzip.compress(bytes(1 << 20)))
    d = decode_exchange(body_ex(json.dumps({"b": blob}).encode(), "application/json"))
    assert any(c.startswith("body > json $.b > base64 > gzip: decompressed output stopped")
               for c in d.cuts)


def test_layer_size_limit() -> None:
    d = decode_exchange(body_ex(b"x" * 5000, "text/plain"), Limits(max_layer_bytes=1000))
    assert layer(d, "body").value == b"x" * 1000
    assert d.cuts == ["body: value of 5000 bytes cut to 1000 bytes (layer size limit)"]


def test_total_bytes_limit() -> None:
    doc = {f"k{i}": "v" * 100 for i in range(100)}
    d = decode_exchange(body_ex(json.dumps(doc).encode(), "application/json"),
                        Limits(max_total_bytes=15_000))
    assert sum(len(x.value) for x in d.layers) <= 15_000
    assert len(d.cuts) == 1 and d.cuts[0].startswith("total bytes limit 15000 reached at body > json $.k")


def test_depth_limit() -> None:
    value: bytes = b'{"secret": "tester@example.org"}'
    for _ in range(10):
        value = json.dumps({"w": b64(value)}).encode()
    d = decode_exchange(body_ex(value, "application/json"))
    assert max(len(x.encoding) for x in d.layers) == Limits().max_depth
    assert not any(x.value == b"tester@example.org" for x in d.layers)
    assert len(d.cuts) == 1 and d.cuts[0].startswith("depth limit 8 reached at body > json $.w > base64")
    d = decode_exchange(body_ex(value, "application/json"), Limits(max_depth=40))
    assert any(x.value == b"tester@example.org" for x in d.layers) and d.cuts == []


def test_layers_limit() -> None:
    d = decode_exchange(body_ex(json.dumps(list(range(1000))).encode(), "application/json"),
                        Limits(max_layers=50))
    assert len(d.layers) == 50
    assert d.cuts == ["layers limit 50 reached at body > json $[49]; the rest of the request was not decoded"]


@compiled(decode)
def test_million_key_json_stops_at_items_limit(count_calls: Callable[..., Calls[Any]]) -> None:
    body = b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(1_000_000)) + b"}"
    # the work, not the time: every layer offered, every item counted, every value expanded
    emitted = count_calls(decode._Run, "emit")
    items = count_calls(decode._Run, "take_item")
    expanded = count_calls(decode._Run, "expand")
    d = decode_exchange(body_ex(body, "application/json"), Limits(max_layer_bytes=32 << 20, max_layers=10**6))
    assert len(d.layers) == Limits().max_items  # the body + items - 1 scalars (the root is an item)
    assert d.cuts == ["items limit 200000 reached at body > json $.k199999; "
                      "the remaining JSON/form/protobuf items were not walked"]
    # nothing offered past the limit; the root taken, then the item that hit the limit; only the
    # body expanded (the values are numbers)
    assert (emitted.count, items.count, expanded.count) == (Limits().max_items, 2, 1)
    # with the default limits, the layers limit (100000) comes first
    emitted.count = items.count = expanded.count = 0
    d = decode_exchange(body_ex(body, "application/json"), Limits(max_layer_bytes=32 << 20))
    assert len(d.layers) == Limits().max_layers
    assert d.cuts == ["layers limit 100000 reached at body > json $.k99999; "
                      "the rest of the request was not decoded"]
    # the one layer refused stops the walk
    assert (emitted.count, items.count, expanded.count) == (Limits().max_layers + 1, 1, 1)


def test_items_limit_on_protobuf_and_form() -> None:
    msg = b"".join(pb_bytes(1, b"item%d" % i) for i in range(100))
    d = decode_exchange(body_ex(msg, "application/x-protobuf"), Limits(max_items=10))
    assert sum(1 for x in d.layers if x.encoding == ("body", "protobuf 1")) == 10
    assert any(c.startswith("items limit 10 reached") for c in d.cuts)
    d = decode_exchange(body_ex(b"&".join(b"a%d=1" % i for i in range(100)),
                                "application/x-www-form-urlencoded"), Limits(max_items=10))
    assert sum(1 for x in d.layers if x.encoding[1:2] and x.encoding[1].startswith("form ")) == 10
    assert any(c.startswith("items limit 10 reached at body > form") for c in d.cuts)


def test_deeply_nested_json_does_not_blow_up() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    d = decode_exchange(body_ex(body, "application/json"))
    assert not any("internal" in c for c in d.cuts)
    body = b'{"a":' * 900 + b'"x"' + b"}" * 900
    d = decode_exchange(body_ex(body, "application/json"))
    leaf = [x for x in d.layers if x.value == b"x"]
    assert len(leaf) == 1 and len(leaf[0].encoding[1]) < 300


# ------------------------------------------------------------------------------------------
# never raises


def check(d: Decoded, limits: Limits = Limits()) -> None:
    assert not any("internal error" in c for c in d.cuts), d.cuts
    assert len(d.layers) <= limits.max_layers
    for x in d.layers:
        assert isinstance(x.value, bytes) and len(x.value) <= limits.max_layer_bytes
        assert 1 <= len(x.encoding) <= limits.max_depth


CTYPES = st.sampled_from([None, "application/json", "application/x-protobuf", "application/grpc",
                          "multipart/form-data; boundary=b", "application/x-www-form-urlencoded",
                          "text/plain", "application/octet-stream", "multipart/mixed"])
CODINGS = st.sampled_from([None, "gzip", "deflate", "br", "zstd", "gzip, br", "identity", "bogus"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2000), ctype=CTYPES, coding=CODINGS)
def test_never_raises_on_arbitrary_bodies(body: bytes, ctype: str | None, coding: str | None) -> None:
    check(decode_exchange(body_ex(body, ctype, coding)))


@settings(max_examples=200, deadline=None)
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                         lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(), kids, max_size=5),
                         max_leaves=30),
       wrap=st.sampled_from(["json", "b64", "gzip"]))
def test_never_raises_on_arbitrary_json(body: object, wrap: str) -> None:
    raw = json.dumps(body).encode()
    if wrap == "b64":
        raw = base64.b64encode(raw)
    elif wrap == "gzip":
        raw = gzip.compress(raw)
    check(decode_exchange(body_ex(raw, "application/json")))


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=200)), max_size=8))
def test_never_raises_on_arbitrary_headers(headers: list[tuple[str, str]]) -> None:
    check(decode_exchange(make(headers=headers + [("Cookie", v) for _, v in headers[:2]])))


@settings(max_examples=300, deadline=None)
@given(url=st.text(max_size=300), target=st.text(max_size=100), method=st.sampled_from(["GET", "CONNECT"]))
def test_never_raises_on_arbitrary_urls(url: str, target: str, method: str) -> None:
    ex = make(url, method=method)
    ex.target = target
    check(decode_exchange(ex))
    ex.url = ""
    check(decode_exchange(ex))


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_never_raises_on_encoded_binary_values(blob: bytes) -> None:
    doc = {"b64": b64(blob), "url": b64url(blob), "hex": blob.hex(), "gz": b64(gzip.compress(blob)),
           "pb": b64(pb_bytes(1, blob))}
    check(decode_exchange(make("https://api.example.com/" + quote(blob) + "?q=" + quote(quote(blob)),
                               [("Cookie", "c=" + b64url(blob))], json.dumps(doc).encode())))


def test_tight_limits_never_raise() -> None:
    rng = random.Random(3)
    lims = Limits(max_layer_bytes=64, max_total_bytes=500, max_ratio=2, max_depth=2, max_items=5,
                  max_layers=7)
    doc = json.dumps({"a": [b64(gzip.compress(PAYLOAD)) for _ in range(5)], "j": JWT}).encode()
    for blob in (doc, gzip.compress(doc), rng.randbytes(5000)):
        for coding in (None, "gzip"):
            check(decode_exchange(body_ex(blob, "application/json", coding,
                                          [("Authorization", "Bearer " + JWT)]), lims), lims)


def test_protobuf_key_value_messages_give_the_value_its_key() -> None:
    # Firebase-style event parameter: {1: name, 2: string value}, and {1: name, 3: int value}
    param = pb_bytes(1, b"gaid") + pb_bytes(2, b"38400000-8cf0-11bd-b23e-10b96e40000d")
    counter = pb_bytes(1, b"session_count") + pb_varint(3, 42)
    body = pb_bytes(2, param) + pb_bytes(2, counter)
    d = decode_exchange(body_ex(body, "application/x-protobuf"))
    by_value = {layer.value: layer for layer in d.layers}
    assert by_value[b"38400000-8cf0-11bd-b23e-10b96e40000d"].key == "gaid"
    assert by_value[b"42"].key == "session_count"
    assert by_value[b"gaid"].key is None  # a name is not its own key


def test_counted_work_on_the_python_sources(tmp_path: Path) -> None:
    """The tests above that count calls by patching, run on the Python sources when this process
    runs the compiled decode module."""
    run_on_sources(decode, __file__, ["test_million_key_json_stops_at_items_limit"], tmp_path)
