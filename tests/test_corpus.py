"""The labelled detection corpus (benchmarks/corpus.py) is deterministic, large enough, and honest.

These tests never run the detectors: they check the corpus with an independent reference encoder
(re-deriving every needle from the profile and the label) and a brute-force reference decoder
(decompress, base64, percent, JSON, form, multipart, JWT, protobuf, all tried blindly).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hashlib
import importlib.util
import json
import re
import sys
import tomllib
import zlib
from functools import cache
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qsl, unquote_to_bytes

import brotli
import pytest
import zstandard

ROOT = Path(__file__).resolve().parent.parent


def _load_corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus", ROOT / "benchmarks" / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["corpus"] = module
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus()


@cache
def cases() -> list:
    return corpus.generate()


# --- independent reference encoder -------------------------------------------------------------

RAW = tomllib.loads(corpus.PROFILE_TOML)
VALUES = {**{k: v for k, v in RAW.items() if isinstance(v, str)}, **RAW["custom"]}


def ref_variant(data_type: str, variant: str) -> str:
    v = VALUES[data_type]
    table = {
        ("advertising_id", "upper"): v.upper(), ("advertising_id", "bare"): v.replace("-", ""),
        ("android_id", "upper"): v.upper(), ("email", "lower"): v.strip().lower(), ("name", "lower"): v.lower(),
        ("imei", "dashed"): "35-391810-234567-1", ("imei", "spaced"): "35 391810 234567 1",
        ("mac", "upper-colon"): "A4:5E:60:D2:19:7B", ("mac", "lower-dash"): "a4-5e-60-d2-19-7b",
        ("mac", "upper-dash"): "A4-5E-60-D2-19-7B", ("mac", "upper-bare"): "A45E60D2197B", ("mac", "lower-bare"): "a45e60d2197b",
        ("phone", "e164"): "+14155550173", ("phone", "e164-digits"): "14155550173", ("phone", "intl-spaced"): "+1 415 555 0173",
        ("phone", "intl-dashed"): "+1 415-555-0173", ("phone", "national"): "(415) 555-0173", ("phone", "digits10"): "4155550173",
    }
    return v if variant == "as-is" else table[(data_type, variant)]


def ref_encode(value: str, encoding: str) -> str:
    b = value.encode()
    if encoding == "plain":
        return value
    if encoding.startswith("percent"):
        out = value
        for _ in range(2 if encoding.endswith("x2") else 1):
            out = "".join(c if c.isalnum() or c in "-._~" else "".join(f"%{x:02X}" for x in c.encode()) for c in out)
        return out
    if encoding.startswith("base64"):
        s = binascii.b2a_base64(b, newline=False).decode()
        if encoding == "base64url":
            s = s.replace("+", "-").replace("/", "_")
        return s.rstrip("=") if encoding.endswith("unpadded") else s
    if encoding == "hex":
        return binascii.hexlify(b).decode()
    algo, _, upper = encoding.partition(" ")
    h = getattr(hashlib, algo)(b).hexdigest()
    return h.upper() if upper else h


def ref_needles(label) -> tuple[str, ...]:
    if label.data_type == "location":
        _layout, _, dec = label.variant.partition("@")
        lat, lon = f"{RAW['latitude']:.{int(dec)}f}", f"{RAW['longitude']:.{int(dec)}f}"
        return (lat, lon) if label.encoding == "plain" else (ref_encode(f"{lat},{lon}", label.encoding),)
    return (ref_encode(ref_variant(label.data_type, label.variant), label.encoding),)


@cache
def all_profile_forms() -> dict[str, list[tuple[str, ...]]]:
    """Every form of every profile value the corpus may use, by data type."""
    forms: dict[str, list[tuple[str, ...]]] = {}
    for dt, variants in corpus.VARIANTS.items():
        encs = [e for e in corpus.ENCODINGS if e != "plain"]
        forms[dt] = [(ref_encode(ref_variant(dt, v), e),) for v in variants for e in ["plain", *encs]]
    forms["location"] = []
    for dec in (3, 4, 5, 6):
        lat, lon = f"{RAW['latitude']:.{dec}f}", f"{RAW['longitude']:.{dec}f}"
        forms["location"].append((lat, lon))
        forms["location"] += [(ref_encode(f"{lat},{lon}", e),) for e in corpus.LOCATION_ENCODINGS if e != "plain"]
    return forms


# --- brute-force reference decoder -------------------------------------------------------------

B64 = re.compile(rb"[A-Za-z0-9+/_-]{8,}={0,2}")


def _pb_fields(data: bytes) -> list[bytes] | None:
    """Length-delimited payloads of ``data`` if all of it parses as a protobuf message."""
    out, i = [], 0
    try:
        while i < len(data):
            key, i = _uvarint(data, i)
            wt = key & 7
            if key >> 3 == 0:
                return None
            if wt == 0:
                _, i = _uvarint(data, i)
            elif wt == 1:
                i += 8
            elif wt == 5:
                i += 4
            elif wt == 2:
                n, i = _uvarint(data, i)
                if i + n > len(data):
                    return None
                out.append(data[i:i + n])
                i += n
            else:
                return None
    except IndexError:
        return None
    return out if i == len(data) else None


def _uvarint(data: bytes, i: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def _json_strings(doc: object) -> list[bytes]:
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in (k.encode(), *_json_strings(v))]
    if isinstance(doc, list):
        return [s for v in doc for s in _json_strings(v)]
    return [doc.encode()] if isinstance(doc, str) else [json.dumps(doc).encode()]


def _children(blob: bytes) -> list[bytes]:
    out: list[bytes] = []
    for fn in (gzip.decompress, zlib.decompress, brotli.decompress, zstandard.ZstdDecompressor().decompress):
        with contextlib.suppress(Exception):
            out.append(fn(blob))
    with contextlib.suppress(ValueError):
        out += _json_strings(json.loads(blob))
    for line in blob.split(b"\n"):
        if line.strip() and line != blob:
            out.append(line.strip(b"\r"))
    for m in B64.finditer(blob):
        token = m.group()
        for dec in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(binascii.Error, ValueError):
                out.append(dec(token + b"=" * (-len(token) % 4)))
    if b"%" in blob or b"+" in blob:
        out.append(unquote_to_bytes(blob.replace(b"+", b" ")))
        out.append(unquote_to_bytes(blob))
    if b"=" in blob:
        text = blob.decode("latin-1")
        out += [v.encode("latin-1") for part in re.split(r";\s*|&", text)
                for _, v in [part.partition("=")[::2]] if v]
        out += [v.encode() for _, v in parse_qsl(text, keep_blank_values=False)]
    for sep in (b".", b" ", b"/", b"\r\n\r\n"):
        if sep in blob:
            out += [p for p in blob.split(sep) if len(p) >= 8]
    fields = _pb_fields(blob)
    if fields:
        out += fields
    return out


def decoded_blobs(ex) -> set[bytes]:
    todo = [ex.url.encode(), ex.target.encode(), ex.request_body, *(v.encode() for _, v in ex.request_headers)]
    seen: set[bytes] = set()
    depth = 0
    while todo and depth < 7:
        nxt: list[bytes] = []
        for blob in todo:
            if blob in seen or not blob:
                continue
            seen.add(blob)
            nxt += _children(blob)
        todo, depth = nxt, depth + 1
    return seen


def profile_types_in(blobs: set[bytes]) -> set[str]:
    hay = b"\x00".join(blobs)
    found = set()
    for dt, forms in all_profile_forms().items():
        for form in forms:
            if all(f.encode() in hay for f in form):
                found.add(dt)
                break
    return found


# --- the tests ---------------------------------------------------------------------------------


def test_deterministic() -> None:
    a, b = corpus.generate(7), corpus.generate(7)
    assert [(c.exchange, c.label) for c in a] == [(c.exchange, c.label) for c in b]
    assert [c.exchange.request_body for c in corpus.generate(8)[:50]] != [c.exchange.request_body for c in a[:50]]
    assert [(c.exchange, c.label) for c in cases()] == [(c.exchange, c.label) for c in corpus.generate()]


def test_sizes_and_groups() -> None:
    cs = cases()
    positives = [c for c in cs if c.label.profile]
    negatives = [c for c in cs if not c.label.profile and not c.label.pattern]
    assert len(positives) >= 1000
    assert len(negatives) >= 1000
    assert len([c for c in cs if not c.label.profile]) >= 1000
    assert {c.label.group for c in cs} == set(corpus.GROUPS)
    assert all(len(c.label.profile) == 1 and c.label.group == "profile+" for c in positives)
    assert {c.label.kind for c in cs if c.label.group == "negative"} == set(corpus.NEGATIVE_KINDS)
    pattern_types = {t for c in cs for t in c.label.pattern}
    assert pattern_types == {"email", "phone", "imei", "mac_address", "advertising_id", "vendor_id", "android_id",
                             "precise_location", "private_ip", "wifi_ssid", "wifi_bssid", "device_fingerprint"}


def test_every_encoding_type_and_carrier_present() -> None:
    pos = [c.label for c in cases() if c.label.group == "profile+"]
    assert {lab.encoding for lab in pos} == set(corpus.ENCODINGS)
    assert {lab.data_type for lab in pos} == {*corpus.STRING_TYPES, "location"}
    carriers = {lab.carrier for lab in pos}
    for needed in ("json", "gzip>json", "deflate>json", "br>json", "zstd>json", "json>json-string", "json>base64>json",
                   "base64>gzip>json", "query", "query>base64>json", "form", "form>json-string", "multipart",
                   "multipart>json", "header", "cookie", "header>jwt", "protobuf", "gzip>protobuf", "envelope>json", "path"):
        assert needed in carriers, needed
    for dt in corpus.STRING_TYPES:
        assert {lab.encoding for lab in pos if lab.data_type == dt} == set(corpus.encodings_for(dt)), dt
    for dt, variants in corpus.VARIANTS.items():
        assert {lab.variant for lab in pos if lab.data_type == dt and lab.encoding == "plain"} == set(variants), dt
    decimals = {lab.variant.split("@")[1] for lab in pos if lab.data_type == "location"}
    assert decimals == {"3", "4", "5", "6"}
    # every value encoding travels in several carriers
    for enc in corpus.ENCODINGS:
        assert len({lab.carrier for lab in pos if lab.encoding == enc}) >= 8, enc


def test_profile_loads_through_the_product_loader() -> None:
    p = corpus.load_test_profile()
    assert dict(p.items()) == VALUES
    assert (p.latitude, p.longitude) == (RAW["latitude"], RAW["longitude"])


def test_needles_rederived_independently() -> None:
    for c in cases():
        if c.label.group == "profile+":
            assert c.label.needles == ref_needles(c.label), c.label


@pytest.mark.parametrize("group", ["profile+", "other", "negative"])
def test_labels_match_request_content(group: str) -> None:
    """A profile+ request carries its needle (found by blind decoding) and no other profile value;
    other and negative requests carry no profile value in any form the corpus uses."""
    for c in cases():
        if c.label.group != group:
            continue
        blobs = decoded_blobs(c.exchange)
        for needle in c.label.needles:
            assert any(needle.encode() in b for b in blobs), (c.label, needle)
        assert profile_types_in(blobs) == set(c.label.profile), c.label


def test_hashed_positives_do_not_carry_the_clear_value() -> None:
    for c in cases():
        lab = c.label
        if lab.group == "profile+" and lab.encoding in corpus.HASH_ENCODINGS:
            blobs = decoded_blobs(c.exchange)
            clear = ref_variant(lab.data_type, lab.variant)
            assert not any(clear.encode() in b for b in blobs), lab
            assert not lab.pattern_allowed


def test_requests_are_well_formed() -> None:
    for c in cases():
        ex = c.exchange
        assert ex.url == f"{ex.scheme}://{ex.host}{ex.target}"
        assert dict(ex.request_headers)["Host"] == ex.host
        for name, value in ex.request_headers:
            assert "\n" not in value and "\r" not in value, name
            value.encode("latin-1")
        if ex.request_body:
            assert int(dict(ex.request_headers)["Content-Length"]) == len(ex.request_body)
