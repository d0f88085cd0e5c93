"""Looking for all forms at once (datareach.detect.matcher): both engines, one answer."""

from __future__ import annotations

import base64
import hashlib
import pickle
import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datareach.detect.known import Form, profile_forms
from datareach.detect.matcher import HAVE_HYPERSCAN, Matcher, boundary_class
from datareach.detect.profile import Profile
from datareach.detect.types import Layer

needs_hyperscan = pytest.mark.skipif(not HAVE_HYPERSCAN, reason="hyperscan is not installed")
ENGINES = ["portable", pytest.param("hyperscan", marks=needs_hyperscan)]

DIGITS = b"0123456789"
HEX = b"0123456789abcdefABCDEF"


def naive(needles: list[bytes], data: bytes) -> list[tuple[int, int]]:
    """Every occurrence by bytes.find, and the boundary rule written out once more."""
    out = []
    for i, needle in enumerate(needles):
        if not needle:
            continue
        core = needle[1:] if needle[:1] == b"+" else needle
        if core and all(c in DIGITS for c in core):
            cls: bytes | None = DIGITS
        elif all(c in HEX for c in needle):
            cls = HEX
        else:
            cls = None
        start = data.find(needle)
        while start != -1:
            end = start + len(needle)
            ok = True
            if cls is not None:
                if end < len(data) and data[end] in cls:
                    ok = False
                if needle[0] in cls and start > 0 and data[start - 1] in cls:
                    ok = False
            if ok:
                out.append((i, end))
            start = data.find(needle, start + 1)
    return sorted(out, key=lambda m: (m[1], m[0]))


def forms_of(needles: list[bytes]) -> list[Form]:
    return [Form(n, "t", f"n{i}") for i, n in enumerate(needles)]


# a small alphabet, so that needles overlap, repeat and touch runs of digits and hex digits
ALPHABET = b"019aAfg+-\x00"
small_bytes = st.lists(st.sampled_from(ALPHABET), min_size=0, max_size=6).map(bytes)


@st.composite
def needles_and_haystack(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    needles = draw(st.lists(small_bytes, min_size=0, max_size=12))
    pieces = draw(st.lists(st.one_of(small_bytes, st.sampled_from(needles) if needles else small_bytes),
                           max_size=20))
    return needles, b"".join(pieces)


@settings(max_examples=400, deadline=None)
@given(needles_and_haystack())
def test_engines_agree_with_naive_search(case: tuple[list[bytes], bytes]) -> None:
    needles, data = case
    expected = naive(needles, data)
    forms = forms_of(needles)
    assert Matcher(forms, "portable").scan(data) == expected
    if HAVE_HYPERSCAN:
        assert Matcher(forms, "hyperscan").scan(data) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=12), max_size=30), st.binary(max_size=400))
def test_engines_agree_on_arbitrary_bytes(needles: list[bytes], data: bytes) -> None:
    data = data + b"".join(needles[::3])
    expected = naive(needles, data)
    assert Matcher(forms_of(needles), "portable").scan(data) == expected
    if HAVE_HYPERSCAN:
        assert Matcher(forms_of(needles), "hyperscan").scan(data) == expected


def test_boundary_class() -> None:
    assert boundary_class(b"447700900123") is not None and boundary_class(b"447700900123") == frozenset(DIGITS)
    assert boundary_class(b"+447700900123") == frozenset(DIGITS)
    assert boundary_class(b"3c5ab4010203") == frozenset(HEX)
    assert boundary_class(b"3C5AB4010203") == frozenset(HEX)
    for no_rule in (b"3c:5a:b4:01:02:03", b"tester@example.org", b"48.858,2.294", b"+", b"", b"++12"):
        assert boundary_class(no_rule) is None


@pytest.mark.parametrize("engine", ENGINES)
def test_boundaries(engine: str) -> None:
    phone, e164, md5 = b"447700900123", b"+447700900123", hashlib.md5(b"x").hexdigest().encode()
    m = Matcher(forms_of([phone, e164, md5, b"3c5ab4010203"]), engine)

    def found(data: bytes) -> set[int]:
        return {i for i, _ in m.scan(data)}

    assert found(b"tel=447700900123&") == {0}
    assert found(b"tel=%2B447700900123") == {0}  # "B" is no digit: the digits stand alone
    assert found(b"n=4477009001234") == set()  # inside a longer number
    assert found(b"n=94477009001230") == set()
    assert found(b"+447700900123") == {0, 1}
    assert found(b"+4477009001239") == set()
    assert found(b"1+447700900123") == {0, 1}  # "+..." is not checked before its "+"
    assert found(b"447700900123") == {0}  # at both ends of the data
    assert found(md5) == {2}
    assert found(b"h=" + md5 + b"&") == {2}
    assert found(b"h=" + md5 + b"0") == set()  # inside a longer hex string
    assert found(b"h=F" + md5) == set()
    assert found(b"sha256=" + hashlib.sha256(b"x").hexdigest().encode()) == set()
    assert found(b"mac=3c5ab4010203") == {3}
    assert found(b"mac=3c5ab4010203ff") == set()
    assert found(b"mac=0x3c5ab4010203") == {3}  # "x" ends the hex run


@pytest.mark.parametrize("engine", ENGINES)
def test_non_boundary_needles_match_anywhere(engine: str) -> None:
    m = Matcher(forms_of([b'"lat":48.858', b"dGVzdGVyQGV4YW1wbGUub3Jn"]), engine)
    assert m.scan(b'{"lat":48.85837}') == [(0, 13)]  # a truncated coordinate, prefix of a longer one
    assert m.scan(b"xdGVzdGVyQGV4YW1wbGUub3Jnx") == [(1, 25)]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_occurrence_and_duplicates(engine: str) -> None:
    m = Matcher([Form(b"abab-", "a", "x"), Form(b"b-aba", "b", "y"), Form(b"abab-", "c", "z")], engine)
    assert m.scan(b"abab-abab-") == [(0, 5), (2, 5), (1, 8), (0, 10), (2, 10)]


@pytest.mark.parametrize("engine", ENGINES)
def test_needles_with_nul_bytes(engine: str) -> None:
    m = Matcher(forms_of([b"ab\x00cd", b"ab\x00ce", b"plain-text"]), engine)
    assert m.scan(b"ab\x00cd ab\x00cf ab plain-text") == [(0, 5), (2, 25)]


@pytest.mark.parametrize("engine", ENGINES)
def test_many_patterns(engine: str) -> None:
    rng = random.Random(7)
    needles = []
    for i in range(5000):
        raw = rng.randbytes(rng.randint(8, 30))
        kind = i % 3
        if kind == 0:
            needles.append(raw.hex()[: rng.randint(16, 40)].encode())
        elif kind == 1:
            needles.append(base64.b64encode(raw)[: rng.randint(16, 40)])
        else:
            needles.append(f"user{i}.{raw.hex()[:10]}@example.com".encode())
    planted = rng.sample(range(5000), 300)
    chunks = []
    for i in planted:
        chunks += [rng.randbytes(rng.randint(0, 200)).replace(b"\x00", b" "), b"|", needles[i], b"|"]
    data = b"".join(chunks)
    m = Matcher(forms_of(needles), engine)
    assert m.engine == engine
    got = m.scan(data)
    assert {i for i, _ in got} >= set(planted)
    assert got == naive(needles, data)


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_inputs(engine: str) -> None:
    empty = Matcher([], engine)
    assert empty.engine == engine
    assert empty.scan(b"anything") == []
    assert empty.scan(b"") == []
    assert empty.scan_layers([Layer("body", (), None, b"x")]) == []
    m = Matcher([Form(b"", "t", "empty"), Form(b"needle", "t", "n")], engine)
    assert m.scan(b"") == []
    assert m.scan(b"a needle") == [(1, 8)]  # an empty needle never matches
    assert m.scan_layers([]) == []


@needs_hyperscan
def test_portable_forced_when_hyperscan_is_present() -> None:
    forms = forms_of([b"needle"])
    assert Matcher(forms).engine == "hyperscan"
    assert Matcher(forms, engine="auto").engine == "hyperscan"
    m = Matcher(forms, engine="portable")
    assert m.engine == "portable"
    assert m.scan(b"a needle") == [(0, 8)]


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="unknown matcher engine"):
        Matcher([], engine="re2")


@pytest.mark.parametrize("engine", ENGINES)
def test_scan_layers_with_profile(engine: str) -> None:
    profile = Profile({"email": "Tester@Example.org", "mac": "3c:5a:b4:01:02:03", "phone": "+44 7700 900123"},
                      48.858370, 2.294481)
    m = Matcher(profile_forms(profile), engine)
    sha = hashlib.sha256(b"tester@example.org").hexdigest().encode()
    layers = [
        Layer("query em", ("query",), "em", sha + b"&" + sha),  # twice: reported once
        Layer("query mac", ("query",), "mac", b"3C5AB4010203"),
        Layer("body", ("body",), None, b'{"loc":{"lat":48.85837,"lng":2.29448},"n":"4477009001234"}'),
        Layer("header x", ("header x",), "x", b"nothing here"),
    ]
    found = [(layer.location, form.data_type, form.transform) for layer, form in m.scan_layers(layers)]
    assert found[:2] == [("query em", "email", "sha256(lower(email))"),
                         ("query mac", "mac", "no separators, upper")]
    body = {(t, x) for loc, t, x in found if loc == "body"}
    assert ("location", '"lat":X @5 decimals') in body
    assert ("location", '"lat":X @4 decimals truncated') in body
    assert ("location", '"lng":X @3 decimals') in body
    assert all(t == "location" for t, _ in body)  # the phone's digits are inside a longer number
    assert len(found) == len(set(found))


@pytest.mark.parametrize("engine", ENGINES)
def test_threads_share_a_matcher(engine: str) -> None:
    needles = [f"needle-{i:04d}".encode() for i in range(200)]
    m = Matcher(forms_of(needles), engine)
    data = b" ".join(needles) * 50
    expected = m.scan(data)
    results: list[bool] = []

    def work() -> None:
        results.extend(m.scan(data) == expected for _ in range(5))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 20


@pytest.mark.parametrize("engine", ENGINES)
def test_pickled_matcher(engine: str) -> None:
    m = Matcher(forms_of([b"3c5ab4010203", b"needle"]), engine)
    copy = pickle.loads(pickle.dumps(m))
    assert copy.engine == m.engine
    assert copy.scan(b"needle 3c5ab4010203") == m.scan(b"needle 3c5ab4010203") == [(1, 6), (0, 19)]
