"""Tests for datareach.enrich.domains: registrable domains from the bundled public suffix list."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datareach.enrich.domains import psl_source, registrable_domains
from datareach.kb import psl as domains
from datareach.kb.psl import registrable_domain


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The parsed list goes to a temporary directory, never the user's cache."""
    path = tmp_path_factory.mktemp("datareach-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAREACH_CACHE_DIR", str(path))
        mp.setattr(domains, "_psl", None)  # loaded afresh, through this cache directory
        mp.setattr(domains, "_cache", {})
        yield path


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("www.example.co.uk", "example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("a.b.c.example.com", "example.com"),
        ("example.com", "example.com"),
        # bare public suffixes
        ("co.uk", None),
        ("com", None),
        ("appspot.com", None),
        # PRIVATE section: the tenant, not the platform
        ("foo.bar.appspot.com", "bar.appspot.com"),
        ("d111111abcdef8.cloudfront.net", "d111111abcdef8.cloudfront.net"),
        ("myblog.blogspot.com", "myblog.blogspot.com"),
        ("user.github.io", "user.github.io"),
        # case and the root dot
        ("WWW.Example.COM", "example.com"),
        ("www.example.com.", "example.com"),
        ("Mail.Google.Com.", "google.com"),
        ("example.com..", None),
        # a port on a Host header value
        ("example.com:8443", "example.com"),
        # IP literals
        ("192.168.0.1", None),
        ("8.8.8.8", None),
        ("8.8.8.8.", None),
        ("2001:db8::1", None),
        ("[2001:db8::1]", None),
        ("[::1]:443", None),
        # IDN: punycode in, punycode out; Unicode in, Unicode out
        ("www.xn--85x722f.xn--fiqs8s", "xn--85x722f.xn--fiqs8s"),
        ("WWW.XN--85X722F.XN--FIQS8S", "xn--85x722f.xn--fiqs8s"),
        ("www.食狮.中国", "食狮.中国"),
        ("www.食狮。中国", "食狮.中国"),  # ideographic full stop
        ("shop.MÜNCHEN.de", "münchen.de"),
        ("www.xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
        # local and special names
        ("localhost", None),
        ("LOCALHOST.", None),
        ("foo.localhost", None),
        ("printer.local", None),
        ("nas.lan", None),
        ("router.internal", None),
        ("x.test", None),
        ("1.0.168.192.in-addr.arpa", None),
        ("b.a.9.8.ip6.arpa", None),
        ("fridge.home.arpa", None),
        # empty and malformed
        ("", None),
        (" ", None),
        (".", None),
        ("..", None),
        (".example.com", None),
        ("a..example.com", None),
        ("exa mple.com", None),
        ("example.com/path", None),
        ("user@example.com", None),
        ("*.example.com", None),
        ("a" * 64 + ".com", None),
        ("a." * 127 + "com", None),
        ("_dmarc.example.com", "example.com"),
    ],
)
def test_registrable_domain(host: str, expected: str | None) -> None:
    assert registrable_domain(host) == expected


def test_registrable_domains_column() -> None:
    hosts = ["www.example.co.uk", None, "WWW.EXAMPLE.CO.UK.", "co.uk", "8.8.8.8", "", "foo.bar.appspot.com"]
    out = registrable_domains(pa.array(hosts))
    assert out.type == pa.string()
    assert out.to_pylist() == [
        "example.co.uk",
        None,
        "example.co.uk",
        None,
        None,
        None,
        "bar.appspot.com",
    ]


def test_registrable_domains_input_kinds() -> None:
    values = ["a.example.com", None, "b.example.org"]
    expected = ["example.com", None, "example.org"]
    assert registrable_domains(pa.array(values, type=pa.large_string())).to_pylist() == expected
    assert registrable_domains(pa.array(values).dictionary_encode()).to_pylist() == expected
    assert registrable_domains(pa.chunked_array([values[:1], values[1:]])).to_pylist() == expected
    assert registrable_domains(pa.array([], type=pa.string())).to_pylist() == []
    assert registrable_domains(pa.array([None, None])).to_pylist() == [None, None]


def test_psl_source() -> None:
    src = psl_source()
    assert src.kind == "public-suffix-list"
    version = importlib.metadata.version("publicsuffixlist")
    assert version in src.version
    assert src.date is not None and re.fullmatch(r"\d{4}-\d{2}-\d{2}", src.date)
    m = re.search(r"(\d{4})(\d{2})(\d{2})$", version)
    if m:  # the package version encodes the day it was packaged; the list is from then or a bit before
        packaged = dt.date(*map(int, m.groups()))
        listed = dt.date.fromisoformat(src.date)
        assert dt.timedelta(0) <= packaged - listed <= dt.timedelta(days=31)
    assert "MPL" in (src.licence or "")
    assert src.path is not None and src.path.endswith("public_suffix_list.dat")


@given(st.text(max_size=80))
def test_never_raises(host: str) -> None:
    result = registrable_domain(host)
    assert result is None or (result == result.lower() and not result.endswith(".") and "." in result)
    assert registrable_domains(pa.array([host])).to_pylist() == [result]


@given(
    st.lists(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True), max_size=4),
    st.sampled_from(["com", "co.uk", "appspot.com", "de", "cloudfront.net"]),
)
def test_subdomains_share_the_registrable_domain(labels: list[str], suffix: str) -> None:
    # (a random second label could itself be a listed suffix: hypothesis found "x0.com")
    base = f"datareach-tenant.{suffix}"
    assert registrable_domain(".".join([*labels, base])) == base


# ---------------------------------------------------------------------------------------------
# The cached list against the reference (the package parsing its bundled list)


def _host_sample() -> list[str]:
    import publicsuffixlist

    rng = random.Random(5)
    rules: list[str] = []
    with open(publicsuffixlist.PSLFILE, encoding="utf-8") as f:
        for line in f:
            rule = line.strip().split(" ")[0]
            if rule and not rule.startswith("//"):
                rules.append(rule)
    hosts: list[str] = []
    for rule in rules:
        base = rule.lstrip("!").replace("*", "wild")
        for prefix in ("", "a.", "b.c.", "www.x-y.z."):
            hosts.append(prefix + base)
        hosts.append(base.upper())
        hosts.append(base + ".")
        if not base.isascii():
            with contextlib.suppress(UnicodeError):
                hosts.append("shop." + base.encode("idna").decode("ascii"))
    hosts += [
        "ck", "www.ck", "a.www.ck", "foo.ck", "a.foo.ck", "kobe.jp", "city.kobe.jp", "a.city.kobe.jp",
        "x.y.kobe.jp", "b.a.kobe.jp", "appspot.com", "x.appspot.com", "y.x.appspot.com",
        "食狮.中国", "www.食狮.中国", "www.xn--85x722f.xn--fiqs8s", "example.com:443", "[::1]", "1.2.3.4",
    ]  # fmt: skip
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.é中"
    for _ in range(20_000):
        tail = rng.choice(rules).lstrip("!").replace("*", rng.choice(["q", "www"]))
        head = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        hosts.append(f"{head}.{tail}" if head else tail)
    return hosts


def _answers(monkeypatch: pytest.MonkeyPatch, psl: Any, hosts: list[str]) -> list[str | None]:
    monkeypatch.setattr(domains, "_psl", psl)
    monkeypatch.setattr(domains, "_cache", {})
    return [registrable_domain(h) for h in hosts]


def test_cached_list_matches_reference(_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = _host_sample()
    assert len(hosts) > 50_000
    monkeypatch.setattr(domains, "_psl", None)
    cold = domains._get_psl()  # parses the list and writes the cache
    assert list(_cache_dir.glob("public-suffix-list-*.bin"))
    monkeypatch.setattr(domains, "_psl", None)
    warm = domains._load_cached_psl()  # from the cache file
    reference = domains._build_psl()
    assert warm._publicsuffix == reference._publicsuffix and warm._maxlabel == reference._maxlabel
    want = _answers(monkeypatch, reference, hosts)
    assert _answers(monkeypatch, warm, hosts) == want
    assert _answers(monkeypatch, cold, hosts) == want
    assert sum(w is not None for w in want) > len(hosts) // 2
    # wildcard and exception rules, and the private section, behave as the list says
    got = dict(zip(hosts, want, strict=True))
    assert got["a.www.ck"] == "www.ck" and got["a.foo.ck"] == "a.foo.ck" and got["foo.ck"] is None
    assert got["y.x.appspot.com"] == "x.appspot.com"
    assert str(_cache_dir) not in (psl_source().note or "")  # reports stay machine-neutral


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_list_cache_is_rebuilt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, damage: str) -> None:
    from datareach import cache

    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path))
    domains._load_cached_psl()
    key, path = domains._psl_cache_key()
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[:-100])
    elif damage == "flip":
        pos = len(good) // 2
        path.write_bytes(good[:pos] + bytes([good[pos] ^ 1]) + good[pos + 1 :])
    else:
        path.write_bytes(b"")
    assert cache.load(path, key) is None  # detected, not trusted
    psl = domains._load_cached_psl()
    assert psl.privatesuffix("www.example.co.uk") == "example.co.uk"
    assert path.read_bytes() == good  # rebuilt


_LABELS = st.sampled_from(["www", "api16", "a", "x-y", "co", "uk", "com", "appspot", "github", "io", "blogspot",
                           "cloudfront", "net", "jp", "tokyo", "arpa", "in-addr", "192", "local", "_dmarc",
                           "xn--p1ai", "example", "compute", "amazonaws", "s3", "us-east-1", "-bad", "UP"])


@given(st.lists(_LABELS, min_size=1, max_size=6))
@settings(max_examples=400)
def test_the_shared_parent_path_gives_the_same_answers(labels):
    from datareach.kb.psl import registrable_domain, registrable_domain_of_many

    host = ".".join(labels)
    assert registrable_domain_of_many(host) == registrable_domain(host)
    assert registrable_domain_of_many(host) == registrable_domain(host)  # and again, from the cache
