"""Tests for datareach.resolve.domains: registrable domains from the bundled public suffix list."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import re

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datareach.resolve.domains import psl_source, registrable_domain, registrable_domains


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
