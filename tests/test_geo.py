"""Tests for datareach.enrich.geo: scopes, the shipped default data, and user .mmdb files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import lzma
import random
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netaddr import IPSet

from datareach.enrich.geo import (
    ENRICH_SCHEMA,
    SCOPES,
    DataSource,
    GeoDatabaseError,
    GeoResolver,
    ip_scope,
)
from datareach.testing.counting import Calls
from datareach.testing.mmdb import EPOCH_2024_05_01, MmdbWriter, write_mmdb


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The compiled geo index goes to a temporary directory, never the user's cache."""
    path = tmp_path_factory.mktemp("datareach-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAREACH_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def default_geo() -> GeoResolver:
    geo = GeoResolver()
    geo.enrich(pa.array(["192.0.2.1"]))  # load once for the module
    return geo


# ---------------------------------------------------------------------------------------------
# Scope


@pytest.mark.parametrize(
    ("ip", "scope"),
    [
        ("8.8.8.8", "public"),
        ("1.1.1.1", "public"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("172.32.0.1", "public"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("100.128.0.1", "public"),
        ("224.0.0.251", "multicast"),
        ("239.255.255.250", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "reserved"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("198.18.0.1", "reserved"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("2001:4860:4860::8888", "public"),
        ("2a00:1450:4001:80b::200e", "public"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fd12:3456:789a::1", "private"),  # ULA
        ("fc00::1", "private"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("FE80::ABCD", "link-local"),
        ("ff02::fb", "multicast"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("4000::1", "reserved"),  # outside 2000::/3
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped: the IPv4 address decides
        ("::ffff:8.8.8.8", "public"),
        ("64:ff9b::192.168.0.1", "private"),  # NAT64 well-known prefix
        ("64:ff9b::8.8.8.8", "public"),
        ("[::1]", "loopback"),
        (" 8.8.8.8 ", "public"),
        ("", "invalid"),
        ("junk", "invalid"),
        ("1.2.3", "invalid"),
        ("01.2.3.4", "invalid"),
        ("256.1.1.1", "invalid"),
        ("1.2.3.4.5", "invalid"),
        ("example.com", "invalid"),
        ("::1::2", "invalid"),
        ("8.8.8.8\x00", "invalid"),
    ],
)
def test_ip_scope(ip: str, scope: str) -> None:
    assert ip_scope(ip) == scope


@given(st.ip_addresses())
def test_ip_scope_agrees_with_ipaddress_on_special_ranges(addr: Any) -> None:
    scope = ip_scope(str(addr))
    assert scope in SCOPES and scope != "invalid"
    mapped = getattr(addr, "ipv4_mapped", None)
    a = mapped if mapped is not None else addr
    if a.is_loopback:
        assert scope == "loopback"
    elif a.is_multicast:
        assert scope == "multicast"
    elif a.is_link_local:
        assert scope == "link-local"
    elif a.is_unspecified:
        assert scope == "unspecified"
    if scope == "public":
        assert not a.is_private or a in ipaddress.ip_network("64:ff9b::/96")


# ---------------------------------------------------------------------------------------------
# Default (shipped) data


def test_default_answers_google_dns(default_geo: GeoResolver) -> None:
    t = default_geo.enrich(pa.array(["8.8.8.8", "2001:4860:4860::8888"]))
    assert t.schema == ENRICH_SCHEMA
    rows = t.to_pylist()
    for row in rows:
        assert row["ip_scope"] == "public"
        assert row["country"] == "US"
        assert "GOOGLE" in row["as_org"].upper()
        assert row["asn"] == 15169  # the shipped data has AS numbers


# AS numbers checked against the operators' own pages and PeeringDB (AS15169 Google, AS13335
# Cloudflare, AS13238 Yandex, AS32934 Meta, AS16509 Amazon, AS132203 Tencent), and the
# countries of the networks against the registries' records (RIPE: 77.88.0.0/18 RU; APNIC:
# 203.205.128.0/17 CN).
@pytest.mark.parametrize(("ip", "asn", "org", "country"), [
    ("8.8.8.8", 15169, "Google", "US"),
    ("1.1.1.1", 13335, "Cloudflare", None),  # anycast: the registry says AU, the geofeed may differ
    ("77.88.8.8", 13238, "YANDEX", "RU"),
    ("2a02:6b8::2:242", 13238, "YANDEX", "RU"),
    ("157.240.221.35", 32934, "Facebook", None),
    ("52.94.236.248", 16509, "Amazon", None),
    ("203.205.254.157", 132203, "Tencent", "CN"),
])
def test_default_known_networks(default_geo: GeoResolver, ip: str, asn: int, org: str, country: str | None) -> None:
    (row,) = default_geo.enrich(pa.array([ip])).to_pylist()
    assert row["asn"] == asn
    assert org.upper() in row["as_org"].upper()
    if country is not None:
        assert row["country"] == country
    else:
        assert row["country"] is not None and re.fullmatch(r"[A-Z]{2}", row["country"])


def test_default_non_public_scopes_get_no_country_or_as(default_geo: GeoResolver) -> None:
    ips = [
        "10.0.0.1",
        "192.168.1.10",
        "127.0.0.1",
        "169.254.1.1",
        "100.64.10.10",
        "224.0.0.251",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::1",
        "192.0.2.1",
        "0.0.0.0",
    ]
    t = default_geo.enrich(pa.array(ips))
    assert t.column("ip_scope").to_pylist() == [ip_scope(ip) for ip in ips]
    assert "public" not in t.column("ip_scope").to_pylist()
    assert t.column("country").null_count == len(ips)
    assert t.column("asn").null_count == len(ips)
    assert t.column("as_org").null_count == len(ips)


def test_default_mapped_and_nat64_addresses_resolve_as_ipv4(default_geo: GeoResolver) -> None:
    rows = default_geo.enrich(pa.array(["8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::808:808"])).to_pylist()
    assert rows[0] == rows[1] == rows[2]


def test_nulls_order_and_repeats(default_geo: GeoResolver) -> None:
    ips = [None, "8.8.8.8", "junk", None, "10.0.0.1", "8.8.8.8", ""]
    t = default_geo.enrich(pa.array(ips, type=pa.string()))
    assert t.num_rows == len(ips)
    rows = t.to_pylist()
    assert rows[0] == {"ip_scope": None, "country": None, "asn": None, "as_org": None}
    assert rows[3] == rows[0]
    assert rows[1] == rows[5] and rows[1]["country"] == "US"
    assert rows[2] == {"ip_scope": "invalid", "country": None, "asn": None, "as_org": None}
    assert rows[4]["ip_scope"] == "private" and rows[4]["country"] is None
    assert rows[6]["ip_scope"] == "invalid"


@pytest.mark.parametrize(
    "make",
    [
        lambda v: pa.array(v, type=pa.large_string()),
        lambda v: pa.array(v).dictionary_encode(),
        lambda v: pa.chunked_array([v[:2], v[2:]]),
        lambda v: pa.chunked_array([], type=pa.string()) if not v else pa.chunked_array([v]),
    ],
)
def test_input_array_kinds(default_geo: GeoResolver, make: Any) -> None:
    values = ["8.8.8.8", None, "10.0.0.1", "8.8.8.8"]
    t = default_geo.enrich(make(values))
    assert t.schema == ENRICH_SCHEMA
    assert t.column("ip_scope").to_pylist() == ["public", None, "private", "public"]


def test_empty_and_all_null(default_geo: GeoResolver) -> None:
    assert default_geo.enrich(pa.array([], type=pa.string())).num_rows == 0
    t = default_geo.enrich(pa.array([None, None]))  # type null
    assert t.num_rows == 2 and t.column("ip_scope").null_count == 2


def test_default_sources(default_geo: GeoResolver) -> None:
    asn, country = default_geo.sources()
    for src in (asn, country):
        assert isinstance(src, DataSource)
        assert src.path is not None and src.path.endswith("network.dat.xz")
        assert src.date is not None and re.fullmatch(r"\d{4}-\d{2}-\d{2}", src.date)
        assert src.date.replace("-", "") in src.version  # the package version carries its date
        assert "@ip-location-db/" in src.version and "npm registry" in src.version
        assert "CC BY 4.0" in (src.licence or "")
        assert src.credit and "nro.net" in src.credit
        assert src.to_json()["credit"] == src.credit
    assert asn.kind == "geo-asn" and country.kind == "geo-country"
    assert "db-ip.com" in (asn.credit or "") and "routeviews.org" in (asn.credit or "")
    assert "anycast" in (country.note or "")


def test_shipped_data_is_recent_enough_and_credited() -> None:
    # The shipped file's header: both datasets, no older than the release allows (six months
    # before the data was last rebuilt: make update-network-data), with their licence texts.
    from datareach.enrich.geo import NETWORK_FILE, _NetworkFile

    data = _NetworkFile(NETWORK_FILE)
    assert [s["package"] for s in data.sources_info] == ["@ip-location-db/asn", "@ip-location-db/geo-whois-asn-country"]
    assert data.date is not None and data.date >= "2026-06-01"
    licence = (NETWORK_FILE.parent / "LICENSE-network-data.txt").read_text(encoding="utf-8")
    assert "Creative Commons Attribution 4.0" in licence and "DB-IP" in licence and "NRO" in licence
    assert (NETWORK_FILE.parent / "README.md").is_file()


def test_default_loads_lazily_and_silently(capsys: pytest.CaptureFixture[str]) -> None:
    geo = GeoResolver()
    assert geo._backend is None  # nothing loaded until it is needed
    geo.enrich(pa.array(["9.9.9.9"]))
    assert geo._backend is not None
    geo.sources()
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def _lookup_work(count_calls: Callable[..., Calls[Any]], geo: GeoResolver, ips: list[str]) -> dict[str, Any]:
    """What ``geo.enrich(ips)`` did: its batches of distinct addresses, and for each vectorised
    search of the compiled index, the table and the number of addresses searched."""
    from datareach.enrich import geo as geo_module

    batches = count_calls(geo_module, "_enrich_distinct_fast", keep_args=True)
    v4 = count_calls(geo_module._CompiledIndex, "ids_v4", keep_args=True)
    v6 = count_calls(geo_module._CompiledIndex, "ids_v6", keep_args=True)
    per_address = count_calls(GeoResolver, "_enrich_encoded")
    assert geo.enrich(pa.array(ips)).num_rows == len(ips)
    return {
        "batches": [len(args[1]) for args, _ in batches.args],
        "v4": [(args[1], len(args[2])) for args, _ in v4.args],
        "v6": [(args[1], len(args[2])) for args, _ in v6.args],
        "per_address": per_address.count,
    }


def _batched(ips: list[str]) -> dict[str, Any]:
    """The work of :func:`_lookup_work` when every distinct address is looked up at once: one
    batch, and one search per table and address family over exactly the public addresses."""
    distinct = set(ips)
    public6 = [":" in ip for ip in distinct if ip_scope(ip) == "public"]  # (plain address texts)
    n4, n6 = public6.count(False), public6.count(True)
    return {"batches": [len(distinct)], "v4": [("country", n4), ("org", n4)],
            "v6": [("country", n6), ("org", n6)], "per_address": 0}


def test_default_lookups_are_batched(default_geo: GeoResolver, count_calls: Callable[..., Calls[Any]]) -> None:
    # Bounds the work, not the time: 20,000 addresses cost one batch of distinct addresses and
    # a fixed number of vectorised searches; a per-row or per-call regression adds calls.
    rng = random.Random(7)
    ips = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(20_000)]
    geo = GeoResolver()
    geo._backend = default_geo._backend  # share the loaded data
    assert _lookup_work(count_calls, geo, ips) == _batched(ips)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.none(), st.text(max_size=60), st.ip_addresses().map(str)), max_size=30))
def test_enrich_never_raises(default_geo: GeoResolver, values: list[str | None]) -> None:
    t = default_geo.enrich(pa.array(values, type=pa.string()))
    assert t.num_rows == len(values)
    for v, row in zip(values, t.to_pylist(), strict=True):
        if v is None:
            assert row["ip_scope"] is None
        else:
            assert row["ip_scope"] in SCOPES
            if row["ip_scope"] != "public":
                assert row["country"] is None and row["asn"] is None and row["as_org"] is None
            if row["country"] is not None:
                assert re.fullmatch(r"[A-Z]{2}", row["country"])


# ---------------------------------------------------------------------------------------------
# User .mmdb files, in the vendors' layouts

def _country(code: str, name: str = "") -> dict[str, Any]:
    return {"geoname_id": 1, "iso_code": code, "names": {"en": name or code}}


@pytest.fixture
def geolite2_country(tmp_path: Path) -> Path:
    return write_mmdb(
        tmp_path / "GeoLite2-Country.mmdb",
        "GeoLite2-Country",
        {
            "8.8.8.0/24": {
                "continent": {"code": "NA", "names": {"en": "North America"}},
                "country": _country("US", "United States"),
                "registered_country": _country("US", "United States"),
            },
            # anycast-style record: only the registered country is known
            "81.2.69.0/24": {"registered_country": _country("GB", "United Kingdom")},
            "2a00:1450::/32": {"country": _country("IE", "Ireland")},
            # continent-level pseudo-code: not a country
            "185.0.0.0/16": {"country": _country("EU", "Europe")},
            # a database may well have an answer for a private range: it is never used
            "10.0.0.0/8": {"country": _country("US")},
        },
        build_epoch=EPOCH_2024_05_01,
    )


@pytest.fixture
def geolite2_asn(tmp_path: Path) -> Path:
    return write_mmdb(
        tmp_path / "GeoLite2-ASN.mmdb",
        "GeoLite2-ASN",
        {
            "8.8.8.0/24": {"autonomous_system_number": 15169, "autonomous_system_organization": "GOOGLE"},
            "81.2.69.0/24": {
                "autonomous_system_number": 20712,
                "autonomous_system_organization": "Andrews & Arnold Ltd",
            },
            "2a00:1450::/32": {"autonomous_system_number": 15169, "autonomous_system_organization": "GOOGLE"},
            "10.0.0.0/8": {"autonomous_system_number": 64512, "autonomous_system_organization": "PRIVATE"},
        },
        build_epoch=int(dt.datetime(2024, 6, 2, tzinfo=dt.UTC).timestamp()),
    )


def _rows(geo: GeoResolver, ips: list[str]) -> dict[str, dict[str, Any]]:
    return dict(zip(ips, geo.enrich(pa.array(ips)).to_pylist(), strict=True))


def test_geolite2_country(geolite2_country: Path) -> None:
    geo = GeoResolver([geolite2_country])
    r = _rows(geo, ["8.8.8.8", "81.2.69.160", "2a00:1450:4001::1", "185.0.1.1", "10.1.1.1", "9.9.9.9"])
    assert r["8.8.8.8"] == {"ip_scope": "public", "country": "US", "asn": None, "as_org": None}
    assert r["81.2.69.160"]["country"] == "GB"  # registered_country fallback
    assert r["2a00:1450:4001::1"]["country"] == "IE"
    assert r["185.0.1.1"]["country"] is None  # "EU" is no ISO 3166-1 country
    assert r["10.1.1.1"] == {"ip_scope": "private", "country": None, "asn": None, "as_org": None}
    assert r["9.9.9.9"] == {"ip_scope": "public", "country": None, "asn": None, "as_org": None}
    (src,) = geo.sources()
    assert src.kind == "geo-country"
    assert src.date == "2024-05-01"
    assert src.name == "GeoLite2-Country"
    assert src.path == str(geolite2_country)
    assert "GeoLite2" in (src.licence or "")


def test_geolite2_asn(geolite2_asn: Path) -> None:
    geo = GeoResolver([geolite2_asn])
    r = _rows(geo, ["8.8.8.8", "2a00:1450:4001::1", "10.0.0.1"])
    assert r["8.8.8.8"] == {"ip_scope": "public", "country": None, "asn": 15169, "as_org": "GOOGLE"}
    assert r["2a00:1450:4001::1"]["asn"] == 15169
    assert r["10.0.0.1"]["asn"] is None  # private: never an AS
    (src,) = geo.sources()
    assert src.kind == "geo-asn" and src.date == "2024-06-02"


def test_geolite2_city(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "GeoLite2-City.mmdb",
        "GeoLite2-City",
        {
            "81.2.69.0/24": {
                "city": {"geoname_id": 2643743, "names": {"en": "London"}},
                "continent": {"code": "EU", "names": {"en": "Europe"}},
                "country": _country("GB", "United Kingdom"),
                "location": {"accuracy_radius": 10, "latitude": 51.5, "longitude": -0.1},
                "registered_country": _country("GB", "United Kingdom"),
                "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
            },
        },
    )
    geo = GeoResolver([path])
    assert _rows(geo, ["81.2.69.142"])["81.2.69.142"]["country"] == "GB"
    assert geo.sources()[0].kind == "geo-city"


def test_two_files_combined(geolite2_country: Path, geolite2_asn: Path) -> None:
    ips = ["8.8.8.8", "81.2.69.160", "2a00:1450:4001::1"]
    for order in ([geolite2_country, geolite2_asn], [geolite2_asn, geolite2_country]):
        geo = GeoResolver(order)
        r = _rows(geo, ips)
        assert r["8.8.8.8"] == {"ip_scope": "public", "country": "US", "asn": 15169, "as_org": "GOOGLE"}
        assert r["81.2.69.160"] == {
            "ip_scope": "public",
            "country": "GB",
            "asn": 20712,
            "as_org": "Andrews & Arnold Ltd",
        }
        assert r["2a00:1450:4001::1"]["country"] == "IE"
        srcs = geo.sources()
        assert [s.path for s in srcs] == [str(p) for p in order]
        assert {s.kind for s in srcs} == {"geo-country", "geo-asn"}
        assert {s.date for s in srcs} == {"2024-05-01", "2024-06-02"}


def test_first_file_that_answers_wins(tmp_path: Path, geolite2_country: Path) -> None:
    other = write_mmdb(
        tmp_path / "other-country.mmdb",
        "GeoLite2-Country",
        {"8.8.8.0/24": {"country": _country("CA")}, "9.9.9.0/24": {"country": _country("CH")}},
    )
    r = _rows(GeoResolver([geolite2_country, other]), ["8.8.8.8", "9.9.9.9"])
    assert r["8.8.8.8"]["country"] == "US"  # first file
    assert r["9.9.9.9"]["country"] == "CH"  # first file has nothing: the second answers
    assert _rows(GeoResolver([other, geolite2_country]), ["8.8.8.8"])["8.8.8.8"]["country"] == "CA"


def test_dbip_lite_layouts(tmp_path: Path) -> None:
    country = write_mmdb(
        tmp_path / "dbip-country-lite.mmdb",
        "DBIP-Country-Lite",
        {
            "5.9.0.0/16": {
                "continent": {"code": "EU", "geoname_id": 6255148, "names": {"en": "Europe"}},
                "country": {
                    "geoname_id": 2921044,
                    "is_in_european_union": True,
                    "iso_code": "DE",
                    "names": {"en": "Germany"},
                },
            }
        },
    )
    city = write_mmdb(
        tmp_path / "dbip-city-lite.mmdb",
        "DBIP-City-Lite",
        {
            "5.9.0.0/16": {
                "city": {"names": {"en": "Falkenstein"}},
                "country": {"iso_code": "DE", "names": {"en": "Germany"}},
                "location": {"latitude": 50.47, "longitude": 12.37},
            }
        },
    )
    asn = write_mmdb(
        tmp_path / "dbip-asn-lite.mmdb",
        "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
        {
            "5.9.0.0/16": {
                "autonomous_system_number": 24940,
                "autonomous_system_organization": "Hetzner Online GmbH",
            }
        },
    )
    geo = GeoResolver([country, asn])
    assert _rows(geo, ["5.9.1.1"])["5.9.1.1"] == {
        "ip_scope": "public",
        "country": "DE",
        "asn": 24940,
        "as_org": "Hetzner Online GmbH",
    }
    assert [s.kind for s in geo.sources()] == ["geo-country", "geo-asn"]
    assert all("DB-IP" in (s.licence or "") for s in geo.sources())
    geo_city = GeoResolver([city])
    assert _rows(geo_city, ["5.9.1.1"])["5.9.1.1"]["country"] == "DE"
    assert geo_city.sources()[0].kind == "geo-city"


def test_ipinfo_layouts(tmp_path: Path) -> None:
    # IPinfo's country_asn layout: "country" is the plain code, "asn" is text
    country_asn = write_mmdb(
        tmp_path / "country_asn.mmdb",
        "ipinfo country_asn.mmdb",
        {
            "8.8.8.0/24": {
                "as_domain": "google.com",
                "as_name": "Google LLC",
                "asn": "AS15169",
                "continent": "NA",
                "continent_name": "North America",
                "country": "US",
                "country_name": "United States",
            },
            "2a00:1450::/32": {"asn": "AS15169", "as_name": "Google LLC", "country": "IE"},
        },
    )
    # IPinfo Lite: "country" is the name, "country_code" the code
    lite = write_mmdb(
        tmp_path / "ipinfo_lite.mmdb",
        "ipinfo ipinfo_lite.mmdb",
        {
            "1.1.1.0/24": {
                "as_domain": "cloudflare.com",
                "as_name": "Cloudflare, Inc.",
                "asn": "AS13335",
                "continent": "North America",
                "continent_code": "NA",
                "country": "Australia",
                "country_code": "AU",
            }
        },
    )
    geo = GeoResolver([country_asn])
    r = _rows(geo, ["8.8.8.8", "2a00:1450:4001::1"])
    assert r["8.8.8.8"] == {"ip_scope": "public", "country": "US", "asn": 15169, "as_org": "Google LLC"}
    assert r["2a00:1450:4001::1"]["country"] == "IE"
    assert geo.sources()[0].kind == "geo-country-asn"
    geo = GeoResolver([lite])
    assert _rows(geo, ["1.1.1.1"])["1.1.1.1"] == {
        "ip_scope": "public",
        "country": "AU",
        "asn": 13335,
        "as_org": "Cloudflare, Inc.",
    }
    assert geo.sources()[0].kind == "geo-country-asn"


def test_ipv4_only_database(tmp_path: Path) -> None:
    path = tmp_path / "v4.mmdb"
    writer = MmdbWriter(ip_version=4, database_type="GeoLite2-Country", build_epoch=EPOCH_2024_05_01)
    writer.insert_network(IPSet(["8.8.8.0/24"]), {"country": _country("US")})
    writer.to_db_file(str(path))
    r = _rows(GeoResolver([path]), ["8.8.8.8", "2001:4860:4860::8888"])
    assert r["8.8.8.8"]["country"] == "US"
    assert r["2001:4860:4860::8888"]["country"] is None  # IPv6 in an IPv4 database: no answer


def test_not_an_mmdb_file(tmp_path: Path) -> None:
    bad = tmp_path / "GeoLite2-Country.mmdb"
    bad.write_bytes(b"this is not a maxmind database\n" * 10)
    with pytest.raises(GeoDatabaseError, match=r"not a MaxMind DB file"):
        GeoResolver([bad])
    empty = tmp_path / "empty.mmdb"
    empty.write_bytes(b"")
    with pytest.raises(GeoDatabaseError, match=re.escape(str(empty))):
        GeoResolver([empty])
    with pytest.raises(GeoDatabaseError, match=re.escape(str(tmp_path / "missing.mmdb"))):
        GeoResolver([tmp_path / "missing.mmdb"])


def test_mmdb_enrich_never_raises(geolite2_country: Path) -> None:
    geo = GeoResolver([geolite2_country])
    junk = [None, "", "x", "1.2.3", "::ffff:", "fe80::1%", "8.8.8.8\x00", "💥", "[8.8.8.8]", "2001:db8::/32"]
    t = geo.enrich(pa.array(junk))
    assert t.num_rows == len(junk)
    assert t.column("country").null_count == len(junk)


def test_damaged_or_missing_shipped_data_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A broken install says which file is wrong rather than answering from half a table.
    from datareach.enrich import geo as geo_module

    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path / "cache"))
    for name, content in (("missing.dat.xz", None), ("garbage.dat.xz", b"\x00" * 100),
                          ("notours.dat.xz", lzma.compress(b"hello")),
                          ("magic-only.dat.xz", lzma.compress(geo_module.NETWORK_MAGIC)),
                          ("bad-header.dat.xz", lzma.compress(geo_module.NETWORK_MAGIC + b"\x05\x00\x00\x00{nope")),
                          ("no-arrays.dat.xz", lzma.compress(geo_module.NETWORK_MAGIC + b"\x0d\x00\x00\x00{\"format\": 1}")),
                          ("truncated.dat.xz", geo_module.NETWORK_FILE.read_bytes()[:5000])):
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        monkeypatch.setattr(geo_module, "NETWORK_FILE", path)
        with pytest.raises(GeoDatabaseError, match=re.escape(str(path))):
            GeoResolver().load()


# ---------------------------------------------------------------------------------------------
# Building the shipped file (scripts/update_network_data.py): the rows it rejects


def _update_script() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "update_network_data.py"
    spec = importlib.util.spec_from_file_location("update_network_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def _n(ip: str) -> int:
    return int(ipaddress.ip_address(ip))


_ASN_ROWS = [
    ("8.8.8.0", "8.8.8.255", "15169", "Google LLC"),
    ("1.1.1.0", "1.1.1.255", "13335", "Cloudflare, Inc."),
    ("9.9.9.0", "9.9.9.255", "0", "bogus: AS0"),
    ("9.9.10.0", "9.9.10.255", "23456", "bogus: AS_TRANS"),
    ("9.9.11.0", "9.9.11.255", "64512", "bogus: private"),
    ("10.0.0.0", "10.0.255.255", "64500", "bogus and private"),
    ("192.168.0.0", "192.168.0.255", "3320", "private range"),
    ("20.0.0.9", "20.0.0.1", "8075", "reversed"),
    ("30.0.0.0", "30.0.0.255", "x", "malformed"),
    ("1.1.1.128", "1.1.2.10", "666", "partial overlap"),
    ("1.1.1.16", "1.1.1.31", "64496", "bogus: documentation"),
    ("2001:4860::", "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff", "15169", "Google LLC"),
    ("fc00::", "fc00::ffff", "15169", "ULA"),
]
_COUNTRY_ROWS = [
    ("8.8.8.0", "8.8.8.255", "US"),
    ("8.8.8.16", "8.8.8.31", "DE"),  # nested: a geofeed entry inside the block
    ("8.8.8.16", "8.8.8.31", "DE"),  # duplicate
    ("8.8.8.200", "8.8.9.10", "FR"),  # partial overlap
    ("1.1.1.0", "1.1.1.255", "AU"),
    ("2.2.2.0", "2.2.2.255", "EU"),  # pseudo code
    ("3.3.3.0", "3.3.3.255", "usa"),
    ("100.64.0.0", "100.64.0.255", "US"),  # CGNAT
    ("2001:4860::", "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff", "US"),
]


def _package(script: Any, name: str, version: str, files: dict[str, str]) -> Any:
    return script.Package(name, version, "2026-06-17T19:00:00Z", b"tarball",
                          {k: v.encode("utf-8") for k, v in files.items()})


def _csv(rows: list[tuple[str, ...]], family: int) -> str:
    out = []
    for r in rows:
        if (":" in r[0]) != (family == 6):
            continue
        try:
            s, e = str(_n(r[0])), str(_n(r[1]))
        except ValueError:
            s, e = r[0], r[1]
        out.append(",".join([s, e, *(f'"{x}"' if "," in x else x for x in r[2:])]))
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def small_network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shipped-format file built by the update script from a few rows (compiles in milliseconds)."""
    script = _update_script()
    asn = _package(script, "@ip-location-db/asn", "2.3.2026061719", {
        "asn-ipv4-num.csv": _csv(_ASN_ROWS, 4), "asn-ipv6-num.csv": _csv(_ASN_ROWS, 6)})
    country = _package(script, "@ip-location-db/geo-whois-asn-country", "2.3.2026061719", {
        "geo-whois-asn-country-ipv4-num.csv": _csv(_COUNTRY_ROWS, 4),
        "geo-whois-asn-country-ipv6-num.csv": _csv(_COUNTRY_ROWS, 6)})
    blob, report = script.build(asn, country)
    path = tmp_path_factory.mktemp("network") / "network.dat.xz"
    path.write_bytes(blob)
    path.with_suffix(".report").write_text(repr({k: getattr(v, "__dict__", v) for k, v in report.items()}))
    return path


def test_update_script_rejects_bad_rows(small_network: Path) -> None:
    report = eval(small_network.with_suffix(".report").read_text())  # (written by the fixture above)
    v4 = report["asn v4"]
    assert v4["bogus_asn"] == 5 and v4["special"] == 1 and v4["reversed"] == 1 and v4["malformed"] == 1
    assert v4["partial_overlap"] == 1 and v4["kept"] == 2
    assert report["asn v6"]["special"] == 1 and report["asn v6"]["kept"] == 1
    c4 = report["country v4"]
    assert c4["bad_country"] == 2 and c4["special"] == 1 and c4["nested"] == 1 and c4["duplicate"] == 1
    assert c4["partial_overlap"] == 1 and c4["kept"] == 3


def test_small_network_file_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_network: Path) -> None:
    from datareach.enrich import geo as geo_module

    monkeypatch.setattr(geo_module, "NETWORK_FILE", small_network)
    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path))
    ips = ["8.8.8.1", "8.8.8.20", "8.8.8.32", "8.8.9.1", "1.1.1.20", "1.1.1.200", "1.1.2.5", "9.9.9.9",
           "2001:4860::1", "20.0.0.5", "2.2.2.2"]
    for compiled in (True, False):
        geo = GeoResolver()
        geo._backend = geo_module._DefaultBackend(compiled=compiled)
        got = {ip: (r["country"], r["asn"], r["as_org"]) for ip, r in zip(ips, geo.enrich(pa.array(ips)).to_pylist(),
                                                                         strict=True)}
        assert got == {
            "8.8.8.1": ("US", 15169, "Google LLC"), "8.8.8.20": ("DE", 15169, "Google LLC"),
            "8.8.8.32": ("US", 15169, "Google LLC"), "8.8.9.1": (None, None, None),
            "1.1.1.20": ("AU", 13335, "Cloudflare, Inc."), "1.1.1.200": ("AU", 13335, "Cloudflare, Inc."),
            "1.1.2.5": (None, None, None), "9.9.9.9": (None, None, None),
            "2001:4860::1": ("US", 15169, "Google LLC"), "20.0.0.5": (None, None, None), "2.2.2.2": (None, None, None),
        }
    src = {s.kind: s for s in geo.sources()}
    assert src["geo-asn"].date == src["geo-country"].date == "2026-06-17"


# ---------------------------------------------------------------------------------------------
# The compiled index (numpy, in the cache directory) against the reference tables


@pytest.fixture(scope="module")
def reference_geo() -> GeoResolver:
    """The slow path: the shipped tables searched with bisect over Python lists."""
    from datareach.enrich.geo import _DefaultBackend, _NetworkTables

    geo = GeoResolver()
    geo._backend = _DefaultBackend(compiled=False)
    assert isinstance(geo._backend._impl, _NetworkTables)
    return geo


def _edge_addresses(reference_geo: GeoResolver) -> list[str]:
    from datareach.enrich.geo import _NetworkTables

    backend = reference_geo._backend
    assert backend is not None and isinstance(backend._impl, _NetworkTables)
    rng = random.Random(11)
    ints4: set[int] = {0, 1, 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x80000000}
    ints6: set[int] = {0, 1, (1 << 128) - 1, 1 << 64, (1 << 64) - 1, 0x2000 << 112, (0x2000 << 112) - 1}
    for starts4, _ids4, starts6, _ids6 in backend._impl.tables.values():
        n4 = len(starts4)
        for k in [*rng.sample(range(n4), min(n4, 3000)), 0, 1, n4 - 2, n4 - 1]:
            s = starts4[k]
            ints4.update({s, s - 1, s + 1})
        n6 = len(starts6)
        for k in [*rng.sample(range(n6), min(n6, 3000)), 0, 1, n6 - 2, n6 - 1]:
            s = starts6[k]
            ints6.update({s, s - 1, s + 1, s | 0xFFFF, s + 0x10000})
    ips = [str(ipaddress.IPv4Address(n)) for n in ints4 if 0 <= n < 1 << 32]
    ips += [str(ipaddress.IPv6Address(n)) for n in ints6 if 0 <= n < 1 << 128]
    ips += [f"::ffff:{ip}" for ip in ips[:2000]] + [f"64:ff9b::{ip}" for ip in ips[:2000]]
    ips += [
        "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "127.0.0.1", "169.254.1.1", "0.0.0.0",
        "255.255.255.255", "224.0.0.1", "fd00::1", "fe80::1%eth0", "[2001:4860:4860::8888]", " 8.8.8.8 ",
        "::", "::1", "::ffff:0.0.0.0", "::ffff:255.255.255.255", "64:ff9b::", "64:ff9b::ffff:ffff",
        "64:ff9b:1::1", "::ffff:10.1.2.3", "::ffff:1.1.1.1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "1.2.3", "junk", "", "::1::2",
    ]  # fmt: skip
    return ips


def _random_addresses(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        if i % 2:
            out.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
        elif i % 4 == 0:
            out.append(str(ipaddress.IPv6Address((0x2000 << 112) | rng.getrandbits(125))))  # 2000::/3
        else:
            out.append(str(ipaddress.IPv6Address(rng.getrandbits(128))))
    return out


def test_compiled_index_matches_reference(default_geo: GeoResolver, reference_geo: GeoResolver) -> None:
    from datareach.enrich.geo import _DefaultBackend

    backend = default_geo._backend
    assert isinstance(backend, _DefaultBackend) and backend.index is not None
    ips = _random_addresses(50_000, 3) + _edge_addresses(reference_geo)
    fast = GeoResolver()
    fast._backend = backend
    got = fast.enrich(pa.array(ips))
    want = reference_geo.enrich(pa.array(ips))
    assert got.schema == want.schema == ENRICH_SCHEMA
    for column in ENRICH_SCHEMA.names:
        g, w = got.column(column).to_pylist(), want.column(column).to_pylist()
        bad = [(ip, x, y) for ip, x, y in zip(ips, g, w, strict=True) if x != y]
        assert not bad, (column, len(bad), bad[:5])
    assert sum(c is not None for c in got.column("country").to_pylist()) > 10_000  # it did answer
    # the per-address API of the index agrees as well
    sample = [ipaddress.ip_address(ip) for ip in ips[:2000]]
    versions, ints = [a.version for a in sample], [int(a) for a in sample]
    assert backend.index.lookup_many(versions, ints) == reference_geo._backend.lookup_many(versions, ints)  # type: ignore[union-attr]


def test_compiled_index_is_cached_and_reused(_cache_dir: Path, default_geo: GeoResolver) -> None:
    from datareach.enrich.geo import _CompiledIndex, _DefaultBackend

    backend = default_geo._backend
    assert isinstance(backend, _DefaultBackend) and backend.index is not None
    assert backend.index.path is not None and backend.index.path.parent == _cache_dir
    assert str(backend.index.path) in backend.cache_info()
    assert str(_cache_dir) not in (default_geo.sources()[0].note or "")  # reports stay machine-neutral
    again = _CompiledIndex.load(backend.path)
    assert again is not None and again.label == backend.index.label
    assert not list(_cache_dir.glob("*.tmp"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_index_is_rebuilt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_network: Path,
    count_calls: Callable[..., Calls[Any]], damage: str,
) -> None:
    from datareach.enrich import geo as geo_module
    from datareach.enrich.geo import _CompiledIndex, _DefaultBackend

    monkeypatch.setattr(geo_module, "NETWORK_FILE", small_network)
    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path))
    compiled = count_calls(_CompiledIndex, "compile")
    first = _DefaultBackend()
    assert first.index is not None and first.index.path is not None and compiled.count == 1
    path = first.index.path
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flip":
        pos = len(good) * 2 // 3
        path.write_bytes(good[:pos] + bytes([good[pos] ^ 0x40]) + good[pos + 1 :])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"\x00" * 4096)
    assert _CompiledIndex.load(first.path) is None  # detected, not trusted
    second = _DefaultBackend()
    assert compiled.count == 2  # compiled again, not loaded
    assert second.index is not None and second.index.path == path
    assert path.read_bytes() == good  # rebuilt, identically
    geo = GeoResolver()
    geo._backend = second
    assert geo.enrich(pa.array(["8.8.8.8"])).to_pylist()[0]["country"] == "US"


def test_unwritable_cache_dir_builds_in_memory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(blocker / "cache"))
    geo = GeoResolver()
    assert geo.enrich(pa.array(["8.8.8.8"])).to_pylist()[0]["country"] == "US"
    backend = geo._backend
    assert backend is not None and backend.index is not None and backend.index.path is None  # type: ignore[union-attr]
    assert "in memory" in backend.cache_info()  # type: ignore[union-attr]
    assert list(tmp_path.iterdir()) == [blocker]


def test_cache_dir_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from datareach.cache import cache_dir

    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"
    monkeypatch.delenv("DATAREACH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "datareach"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "datareach"


def test_numpy_path_searches_each_distinct_address_once(
    default_geo: GeoResolver, count_calls: Callable[..., Calls[Any]]
) -> None:
    # Bounds the work, not the time: a fallback to a per-address path shows up as calls to it,
    # or as more (or larger) searches than one per table and family over the distinct addresses.
    ips = _random_addresses(100_000, 5)
    ips += ips[:25_000]  # repeats are looked up once
    geo = GeoResolver()
    geo._backend = default_geo._backend
    work = _lookup_work(count_calls, geo, ips)
    assert work == _batched(ips)
    assert work["batches"] == [len(set(ips))] == [100_000]
    assert work["v4"][0][1] > 40_000 and work["v6"][0][1] > 10_000  # both families, searched in bulk


# ---------------------------------------------------------------------------------------------
# Honest dates: the traffic's date against the location data's


def test_data_age_warnings() -> None:
    from datareach.engine.result import data_age_warnings

    geo = [{"name": "IP to country", "kind": "geo-country", "date": "2026-06-17"},
           {"name": "IP to AS", "kind": "geo-asn", "date": "2026-06-17"},
           {"name": "Public Suffix List", "kind": "public-suffix-list", "date": "2020-01-01"}]
    (old,) = data_age_warnings("2005-03-01T10:00:00.000000Z", "2005-03-01T11:00:00.000000Z", geo)
    assert old == ("the capture is from 2005-03-01; the location data is of 2026-06-17: locations and networks "
                   "are the data's, not the capture's (21 years apart)")
    (new,) = data_age_warnings("2027-06-01T00:00:00Z", "2027-06-03T00:00:00Z", geo)
    assert "2027-06-01 to 2027-06-03" in new and "2026-06-17" in new and "12 months older" in new
    assert data_age_warnings("2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z", geo) == []  # a few months newer
    (days,) = data_age_warnings("2026-06-01T00:00:00Z", "2026-06-01T00:00:00Z", geo)
    assert "(16 days apart)" in days
    assert data_age_warnings(None, None, geo) == []
    assert data_age_warnings("2005-03-01T10:00:00Z", "2005-03-01T10:00:00Z", geo[2:]) == []  # no location data
    assert data_age_warnings("junk", 7, [{"kind": "geo-asn", "date": "not a date"}]) == []


def test_old_capture_is_warned_about_in_every_format() -> None:
    # A real capture of 2012 (Zeek's test suite): its locations are of the data's date, not 2012's.
    from datareach.api import audit
    from datareach.report.html import render_html
    from datareach.report.markdown import render_markdown
    from datareach.report.table import render_table

    capture = Path(__file__).resolve().parent / "data" / "captures" / "zeek" / "http-methods.pcap.gz"
    doc = audit([capture]).to_dict()
    summary = doc["summary"]
    assert summary["first_seen"].startswith("2012-12-01") and summary["last_seen"].startswith("2012-12-01")
    (warning,) = summary["data_warnings"]
    assert warning.startswith("the capture is from 2012-12-01; the location data is of 20")
    assert "years apart" in warning
    google = [d for d in doc["destinations"] if d["asn"] == 15169]
    assert google and all(d["as_org"] == "Google LLC" for d in google)  # AS numbers reach the destinations
    assert all(s["asn"] == 15169 for d in google for s in d["servers"])
    assert "the capture is from 2012-12-01" in render_table(doc, width=400)
    assert "the capture is from 2012-12-01" in render_markdown(doc).replace("\\", "")  # (markdown escapes)
    html = render_html(doc)
    assert 'data-testid="data-warning"' in html and "the capture is from 2012-12-01" in html
    assert 'data-testid="summary-data-warning">Dates: the capture is from 2012-12-01' in html
    assert 'data-testid="data-credit">IP Geolocation by DB-IP: <a class="source" href="https://db-ip.com"' in html
    # the shipped data's licence and credit are in every format's data-source section
    for text in (render_table(doc, width=400), render_markdown(doc), html):
        flat = " ".join(text.replace("\\", "").split())
        assert "nro.net" in flat and "db-ip.com" in flat and "CC BY 4.0" in flat
