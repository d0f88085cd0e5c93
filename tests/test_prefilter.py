"""Detection that costs what the request deserves: the prefilter, the decoding memo, the match
budget, and the form field of percent-encoded base64 JSON carrying an e-mail's MD5.

The prefilter and the memo change what the detector does, never what it finds: the property
tests compare the default detector with one built with ``prefilter=False, memo=False`` (the
code as it was) over generated requests carrying profile values in random encodings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach.detect import Detector, Limits
from datareach.detect.decode import DecodeMemo, decode_exchange
from datareach.detect.prefilter import FAMILIES, Prefilter
from datareach.detect.profile import Profile
from datareach.detect.types import Layer
from datareach.schema import Exchange

EMAIL = "Tester.WeatherApp@example.org"
ADID = "a3e3fce2-78b0-4105-ada0-748f79470c71"
ANDROID_ID = "6f1c2a9be4d07a35"
PHONE = "+447700900123"
IMEI = "490154203237518"
PROFILE = Profile(values={"email": EMAIL, "advertising_id": ADID, "android_id": ANDROID_ID,
                          "phone": PHONE, "imei": IMEI},
                  latitude=52.516274, longitude=13.377704)
MD5 = hashlib.md5(EMAIL.lower().encode()).hexdigest()

# built once: the property tests share them (and so the memo sees values again)
FAST = Detector(PROFILE, plugins=False)
SLOW = Detector(PROFILE, plugins=False, prefilter=False, memo=False)


def make(target: str = "/c", headers: list[tuple[str, str]] | None = None, body: bytes = b"",
         method: str = "POST", scheme: str = "http") -> Exchange:
    return Exchange(ts=0.0, scheme=scheme, method=method, host="t.example.com",
                    url=f"{scheme}://t.example.com{target}", target=target, http_version="HTTP/1.1",
                    request_headers=list(headers or []), request_body=body)


def same(ex: Exchange, fast: Detector = FAST, slow: Detector = SLOW) -> list[list[str]]:
    """Both detectors' answers, asserted equal; the findings' encoding chains."""
    found, cuts = fast.detect(ex)
    want, want_cuts = slow.detect(ex)
    assert found == want
    assert cuts == want_cuts
    return [f.encoding for f in found]


# -- the missed shape ---------------------------------------------------------------------------


def md5_payload(extra: dict[str, object] | None = None) -> str:
    """``d=`` + the percent-encoded standard base64 of ``{"u":{"mail_md5":...}}``."""
    doc = {"u": {"mail_md5": MD5, **(extra or {})}}
    b64 = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
    return urllib.parse.quote(b64, safe="")


def test_form_field_of_percent_encoded_base64_json_with_the_email_md5() -> None:
    # a real request, by hand: the app sends one field, without a form content type; the extra
    # value makes the base64 hold "+" and "/" (sent as %2B and %2F) and padding (%3D)
    d = md5_payload({"ts": 1717236000, "pl": "android>>>???!"})
    assert "%2B" in d and "%2F" in d and d.endswith("%3D")
    chain = ["body", "form d", "percent", "base64", "json $.u.mail_md5", "md5(lower(email))"]
    for headers in ([], [("Content-Type", "text/plain")],
                    [("Content-Type", "application/x-www-form-urlencoded")]):
        ex = make("/collect", [("User-Agent", "okhttp/4.12.0"), *headers], f"d={d}".encode())
        found, cuts = FAST.detect(ex)
        hits = [f for f in found if f.data_type == "email"]
        assert [(f.source, f.encoding, f.value) for f in hits] == [("profile", chain, EMAIL)], headers
        assert cuts == []
        assert same(ex)


def test_a_padded_base64_body_is_not_a_form_field() -> None:
    body = base64.b64encode(json.dumps({"email": EMAIL, "n": 1}).encode())
    assert body.endswith(b"=")
    d = decode_exchange(make(body=body))
    assert [layer.encoding for layer in d.layers][1:3] == [("body",), ("body", "base64")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["d", "data", "p", "payload_1"]),
       extra=st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=8),
                             st.one_of(st.text(max_size=20), st.integers(), st.booleans()), max_size=4),
       ctype=st.sampled_from([None, "text/plain", "application/x-www-form-urlencoded"]),
       before=st.booleans())
def test_the_md5_shape_over_values(name: str, extra: dict[str, object], ctype: str | None, before: bool) -> None:
    extra.pop("mail_md5", None)
    field = f"{name}={md5_payload(extra)}"
    body = ("v=2&" + field) if before else field
    ex = make(headers=[("Content-Type", ctype)] if ctype else [], body=body.encode())
    chains = same(ex)
    md5_chains = [c for c in chains if c[-1] == "md5(lower(email))"]
    assert len(md5_chains) == 1
    c = md5_chains[0]
    assert c[:2] == ["body", f"form {name}"] and c[-3:-1] == ["base64", "json $.u.mail_md5"]
    assert c[2:-3] in ([], ["percent"])  # "percent" unless the base64 had nothing to escape


# -- the prefilter gives the same findings --------------------------------------------------------

_VALUES = [EMAIL, EMAIL.lower(), ADID, ADID.upper(), ANDROID_ID, PHONE, IMEI, "49-015420-323751-8", MD5,
           "52.516274,13.377704", "192.168.1.23", "10.0.0.7", "fe80::1c2b:3aff:fe4d:5e6f",
           "3c:5a:b4:01:02:03", "+33612345678", "358240051111110", "ann.other@mail.example.com",
           "1717236000", "12.5", "hello world", "noreply@example.org", "", "0"]
_KEYS = ["email", "gaid", "android_id", "msisdn", "imei", "mac", "bssid", "ssid", "lat", "lng", "ip",
         "loc", "v", "x", "data", "model", "os", "tz", "locale", "battery", "u"]


def _encode(value: str, how: str) -> str:
    raw = value.encode()
    if how == "percent":
        return urllib.parse.quote(value, safe="")
    if how == "plus":
        return urllib.parse.quote_plus(value)
    if how == "base64":
        return base64.b64encode(raw).decode()
    if how == "base64url":
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if how == "hex":
        return raw.hex()
    if how == "md5":
        return hashlib.md5(raw).hexdigest()
    if how == "json-escaped":
        return json.dumps({"v": value}, ensure_ascii=True).replace("@", "\\u0040").replace(".", "\\u002e")
    if how == "b64json":
        return base64.b64encode(json.dumps({"e": value}).encode()).decode()
    return value


_HOW = ["as is", "percent", "plus", "base64", "base64url", "hex", "md5", "json-escaped", "b64json"]
_pair = st.tuples(st.sampled_from(_KEYS), st.sampled_from(_VALUES), st.sampled_from(_HOW))


def _build(where: str, pairs: list[tuple[str, str, str]], number: float | None) -> Exchange:
    items = [(k, _encode(v, how)) for k, v, how in pairs]
    if where == "query":
        q = "&".join(f"{k}={v}" for k, v in items)
        return make(f"/t?{q}", method="GET")
    if where == "form":
        body = "&".join(f"{k}={v}" for k, v in items).encode()
        return make(headers=[("Content-Type", "application/x-www-form-urlencoded")], body=body)
    if where == "json":
        doc: dict[str, object] = {k: v for k, v in items}
        if number is not None:
            doc["n"] = number
        return make(headers=[("Content-Type", "application/json")], body=json.dumps(doc).encode())
    if where == "headers":
        return make(headers=[(f"X-{k}", v) for k, v in items if "\n" not in v], method="GET")
    if where == "cookie":
        return make(headers=[("Cookie", "; ".join(f"{k}={v}" for k, v in items if ";" not in v))], method="GET")
    path = "/".join(urllib.parse.quote(v, safe="") for _k, v in items)
    return make(f"/{path}", method="GET")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(["query", "form", "json", "headers", "cookie", "path"]),
       pairs=st.lists(_pair, max_size=6),
       number=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False),
                        st.integers(10**13, 10**16).map(float)))
def test_the_prefiltered_detector_finds_exactly_what_the_plain_one_finds(
        where: str, pairs: list[tuple[str, str, str]], number: float | None) -> None:
    same(_build(where, pairs, number))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.text(max_size=40), body=st.binary(max_size=200),
       header=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
       ctype=st.sampled_from([None, "application/json", "application/x-www-form-urlencoded", "text/plain"]))
def test_the_prefiltered_detector_on_arbitrary_requests(target: str, body: bytes, header: str,
                                                        ctype: str | None) -> None:
    headers = [("X-Data", header)] + ([("Content-Type", ctype)] if ctype else [])
    same(make("/" + target, headers, body))


def test_the_portable_prefilter_agrees_with_hyperscan() -> None:
    fast = Detector(PROFILE, plugins=False, engine="portable")
    assert fast.prefilter is not None and fast.prefilter.engine == "portable"
    for where in ("query", "json", "form"):
        for value in _VALUES:
            for how in _HOW:
                ex = _build(where, [("x", value, how), ("email", value, how)], 1e14)
                assert fast.prefilter.scan(ex).families == FAST.prefilter.scan(ex).families  # type: ignore[union-attr]
                same(ex, fast=fast)


def test_the_gate() -> None:
    pf = Prefilter()
    gate = pf.scan(make("/a?q=1", [("User-Agent", "okhttp/4.12.0")], b'{"a": "b"}'))
    assert gate.families == frozenset() and not gate.known and pf.empty == 1
    gate = pf.scan(make("/a?e=x%40y.org&m=3c-5a-b4-01-02-03", [], b"ip=10.1.2.3"))
    assert gate.families == frozenset({"email", "mac", "private_ip"}) <= FAMILIES
    # literal layers: pieces of the raw request; opaque ones: decoded otherwise
    assert gate.literal(Layer("query e", ("query e", "percent"), "e", b"x@y.org"))
    assert not gate.literal(Layer("query e", ("query e", "percent", "percent"), "e", b"x"))
    assert not gate.literal(Layer("query e", ("query e", "base64"), "e", b"x"))
    assert not gate.literal(Layer("body", ("body(gzip)",), None, b"x"))
    assert gate.literal(Layer("body", ("body", "json $.a"), "a", b"12"))
    assert not gate.literal(Layer("body", ("body", "json $.a"), "a", b"1e+16"))  # a float's repr
    assert gate.families_for(Layer("body", ("body", "hex"), None, b"x")) is None
    # a backslash: JSON strings may hold escapes, so JSON values are opaque
    gate = pf.scan(make(body=b'{"a": "\\u0040"}'))
    assert not gate.literal(Layer("body", ("body", "json $.a"), "a", b"@"))


# -- the memo -------------------------------------------------------------------------------------


def test_a_cookie_sent_on_a_thousand_requests_is_decoded_once() -> None:
    det = Detector(PROFILE, plugins=False)
    token = base64.b64encode(json.dumps({"uid": 42, "mail": EMAIL}).encode()).decode()
    for i in range(1000):
        ex = make(f"/p?i={i}", [("User-Agent", "okhttp/4.12.0"), ("Cookie", f"n={i}; t={token}")],
                  method="GET")
        assert ["cookie t", "base64", "json $.mail"] in same(ex, fast=det)
    memo = det.memo
    assert memo is not None
    # the user agent and the token: once each; the Cookie header differs on every request
    assert memo.stored == 2 + 1000
    assert memo.hits == 999 * 2
    assert len(memo) <= memo.max_entries and memo.bytes <= memo.max_bytes


def test_the_memo_is_bounded_and_counted() -> None:
    memo = DecodeMemo(max_entries=10, max_bytes=1 << 20)
    for i in range(100):
        decode_exchange(make(headers=[("X-Token", f"token-{i:06d}")], method="GET"), memo=memo)
    assert len(memo) == 10 and memo.stored == 100 and memo.evictions == 90 and memo.misses == 100
    small = DecodeMemo(max_entries=1000, max_bytes=4096)
    for i in range(100):
        decode_exchange(make(headers=[("X-Token", f"{i:04d}" * 20)], method="GET"), memo=small)
    assert small.bytes <= 4096 and small.evictions > 0


def test_the_memo_never_changes_layers_or_cuts_under_tight_limits() -> None:
    token = base64.b64encode(json.dumps({"a": [1, 2, 3, {"b": "xxxxxxxxxx"}]}).encode()).decode()
    memo = DecodeMemo()  # one memo across limits: entries made under others are not used
    for limits in (Limits(), Limits(max_layers=4), Limits(max_items=3), Limits(max_total_bytes=200),
                   Limits(max_depth=2), Limits(max_layer_bytes=20), Limits()):
        for n in range(3):
            ex = make(f"/p/{n}", [("X-Token", token), ("Cookie", f"a={token}; b={token}")], method="GET")
            want = decode_exchange(ex, limits)
            got = decode_exchange(ex, limits, memo)
            assert got.layers == want.layers and got.cuts == want.cuts


# -- the budget -----------------------------------------------------------------------------------


def test_the_match_budget_is_a_decode_cut() -> None:
    body = "&".join(f"e{i}={EMAIL}" for i in range(50)).encode()
    ex = make(headers=[("Content-Type", "application/x-www-form-urlencoded")], body=body)
    full, cuts = Detector(PROFILE, plugins=False).detect(ex)
    assert cuts == [] and len(full) >= 50
    found, cuts = Detector(PROFILE, plugins=False, limits=Limits(max_matches=10)).detect(ex)
    assert len(cuts) == 1 and cuts[0].startswith("matches limit 10 reached at body > form e")
    assert 0 < len(found) <= 10 + len(full)


def test_one_detector_shared_by_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    det = Detector(PROFILE, plugins=False)
    requests = [_build(where, [("email", EMAIL, how), ("x", IMEI, "as is"), ("gaid", ADID, how)], 1.5)
                for where in ("query", "form", "json", "headers", "cookie", "path") for how in _HOW]
    want = [SLOW.detect(ex) for ex in requests]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(det.detect, requests)) == want
