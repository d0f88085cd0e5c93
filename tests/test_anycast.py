"""Anycast and CDN edge addresses: a country for them is not where the data is.

The lookup (``enrich/anycast.py``: sorted integer ranges and bisect, IPv4 and IPv6, nested
blocks flattened), the shipped data (``kb/data/anycast.toml``), and the golden case of issue 15:
``graph.facebook.com`` at a Meta edge address that a geo database places in India, with an
e-mail address sent to it, gives no deny under eu-gdpr-transfers but a warning that says the
location is not determinable from the address, in every report format.
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

import datareach
from datareach.enrich.anycast import DATA, KINDS, AnycastTable, anycast_table, label_servers, parse_ip
from datareach.report.formats import find
from datareach.testing.builders import CLIENT, dns_query, dns_response, write_pcap
from datareach.testing.capture import TcpSession, UdpFlow

PROFILE = Path(__file__).parent.parent / "examples" / "profile.toml"
EMAIL = "Tester.WeatherApp@example.org"
META_EDGE = "157.240.0.35"        # in Meta's 157.240.0.0/17 (AS32934's announced prefixes)
META_UNLISTED = "157.240.128.10"  # AS32934's registration, not in an announced prefix we list
INDIA_HOST = "49.44.10.10"        # an ordinary server that the test geo data puts in India


# -- the lookup ---------------------------------------------------------------------------------

def test_range_edges_ipv4() -> None:
    t = anycast_table()
    first, last = "157.240.0.0", "157.240.127.255"
    assert t.lookup(first)["range"] == "157.240.0.0/17"
    assert t.lookup(last)["range"] == "157.240.0.0/17"
    assert t.lookup("157.240.128.0") is None  # (157.240.128.0/18 is not announced)
    assert t.lookup("157.239.255.255") is None
    assert t.lookup("157.240.192.0")["operator"] == "meta"
    assert t.lookup("157.240.255.255")["operator"] == "meta"
    # Cloudflare's 104.16.0.0/13 and 104.24.0.0/14 are adjacent: both ends, and past them
    assert t.lookup("104.16.0.0")["range"] == "104.16.0.0/13"
    assert t.lookup("104.23.255.255")["range"] == "104.16.0.0/13"
    assert t.lookup("104.24.0.0")["range"] == "104.24.0.0/14"
    assert t.lookup("104.27.255.255")["range"] == "104.24.0.0/14"
    assert t.lookup("104.28.0.0") is None
    # single addresses
    assert t.lookup("8.8.8.8")["operator"] == "google"
    assert t.lookup("8.8.8.7") is None and t.lookup("8.8.8.9") is None
    assert t.lookup("9.9.9.9")["kind"] == "anycast"
    assert t.lookup("1.1.1.1")["operator"] == "cloudflare"


def test_range_edges_ipv6_and_mapped_addresses() -> None:
    t = anycast_table()
    assert t.lookup("2a03:2880::")["range"] == "2a03:2880::/32"
    assert t.lookup("2a03:2880:ffff:ffff:ffff:ffff:ffff:ffff")["operator"] == "meta"
    assert t.lookup("2a03:2881::") is None
    assert t.lookup("2a03:287f:ffff:ffff:ffff:ffff:ffff:ffff") is None
    assert t.lookup("2001:4860:4860::8888")["operator"] == "google"
    assert t.lookup("2001:4860:4861::") is None
    assert t.lookup("[2606:4700:4700::1111]")["operator"] == "cloudflare"
    assert t.lookup("2a03:2880:f10c:83:face:b00c:0:25de%eth0")["kind"] == "cdn-edge"
    # IPv4-mapped and NAT64 addresses are the IPv4 address they carry
    assert t.lookup("::ffff:157.240.0.35")["operator"] == "meta"
    assert t.lookup("64:ff9b::9df0:23")["operator"] == "meta"  # 64:ff9b::157.240.0.35


@pytest.mark.parametrize("bad", ["", "garbage", "1.2.3", "01.2.3.4", "1.2.3.4/24", "::g", "\x00", "1" * 200, None,
                                 42, ["1.1.1.1"]])
def test_what_is_not_an_address_has_no_label(bad: Any) -> None:
    assert parse_ip(bad) is None
    assert anycast_table().lookup(bad) is None
    assert anycast_table().label(bad, asn="x", as_org=3, country=["IN"]) is None


def test_nested_blocks_the_most_specific_wins() -> None:
    t = AnycastTable({"set": [
        {"operator": "big", "name": "Big", "kind": "cdn-edge", "source": "s", "as_of": "2026-01-01",
         "ranges": ["10.0.0.0/8", "2001:db8::/32"]},
        {"operator": "small", "name": "Small", "kind": "anycast", "source": "s", "as_of": "2026-01-01",
         "ranges": ["10.1.0.0/16", "10.1.2.0/24", "2001:db8:1::/48"]},
    ]})
    assert t.lookup("10.0.255.255")["operator"] == "big"
    assert t.lookup("10.1.0.0")["range"] == "10.1.0.0/16"
    assert t.lookup("10.1.2.7")["range"] == "10.1.2.0/24"
    assert t.lookup("10.1.3.0")["range"] == "10.1.0.0/16"
    assert t.lookup("10.2.0.0")["range"] == "10.0.0.0/8"
    assert t.lookup("10.255.255.255")["range"] == "10.0.0.0/8"
    assert t.lookup("11.0.0.0") is None
    assert t.lookup("2001:db8:1:ffff::1")["operator"] == "small"
    assert t.lookup("2001:db8:2::")["operator"] == "big"
    with pytest.raises(ValueError):
        AnycastTable({"set": [{"operator": "x", "name": "x", "kind": "unicast", "source": "s", "as_of": "d",
                               "ranges": []}]})


def test_as_registration_rule() -> None:
    t = anycast_table()
    # an anycast / edge AS, placed in another country than its registration: labelled
    hit = t.label(META_UNLISTED, None, "FACEBOOK", "IN")
    assert hit is not None and hit["rule"] == "as-registration" and hit["operator"] == "meta"
    assert t.label(META_UNLISTED, 32934, None, "IN")["range"] == "AS32934 (registered in US)"
    # in the country of registration, or with no country: not labelled by this rule
    assert t.label(META_UNLISTED, 32934, "FACEBOOK", "US") is None
    assert t.label(META_UNLISTED, 32934, "FACEBOOK", None) is None
    # an AS with data centres as well (Google's AS15169) is not an edge-only AS
    assert t.label("142.251.42.228", 15169, "GOOGLE", "TW") is None
    # a published range needs no AS data
    assert t.label(META_EDGE)["rule"] == "published-range"


def test_label_servers_skips_what_is_not_public() -> None:
    servers: list[dict[str, Any]] = [{"ip": "10.0.0.1", "ip_scope": "private"}, {"ip": META_EDGE, "ip_scope": "public"},
                                     {"ip": "192.0.2.1", "ip_scope": "public", "country": "DE"}]
    label_servers(servers)
    assert servers[0]["anycast"] is None and servers[2]["anycast"] is None
    assert servers[1]["anycast"]["operator"] == "meta"


def test_the_shipped_data_is_sourced_and_valid() -> None:
    data = tomllib.loads(DATA.read_text(encoding="utf-8"))
    seen: set[str] = set()
    for s in data["set"]:
        assert s["kind"] in KINDS and s["source"].startswith("https://") and s["as_of"] and s["seen"]
        assert s["ranges"], s["operator"]
        for r in s["ranges"]:
            ipaddress.ip_network(r, strict=True)
        seen.add(s["operator"])
    assert {"cloudflare", "google", "meta", "aws", "fastly", "microsoft", "quad9", "cisco"} <= seen
    for rule in data["as_rule"]:
        assert rule["kind"] in KINDS and len(rule["registered"]) == 2 and (rule["numbers"] or rule["names"])
        assert 15169 not in rule["numbers"] and 16509 not in rule["numbers"] and 8075 not in rule["numbers"]
    # entities named by the data exist in the knowledge base (Quad9 is not in it)
    from datareach.kb import knowledge_base

    ents = knowledge_base().entities
    assert all(s["operator"] in ents for s in data["set"] if s["operator"] != "quad9")
    assert all(r["operator"] in ents for r in data["as_rule"])


def test_the_lookup_labels_a_bulk_of_meta_edge_addresses() -> None:
    """40,000 addresses in Meta's edge ranges, IPv4 and IPv6, labelled in bulk (the work is
    bounded by the count of addresses; no duration is asserted)."""
    t = anycast_table()
    ips = [f"157.240.{i % 256}.{i % 200}" for i in range(20_000)] + [f"2a03:2880::{i:x}" for i in range(20_000)]
    hits = sum(1 for ip in ips if t.lookup(ip))
    assert hits > 30_000


# -- the golden case: graph.facebook.com at a Meta edge address "in India" -------------------------

@pytest.fixture(scope="module")
def geo_db(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Geo data that places Meta's edge addresses in India, as the report in issue 15 had it."""
    from datareach.testing.mmdb import write_mmdb

    d = tmp_path_factory.mktemp("geo")
    india = {"country": {"geoname_id": 1269750, "iso_code": "IN", "names": {"en": "India"}}}
    country = write_mmdb(d / "GeoLite2-Country.mmdb", "GeoLite2-Country",
                         {"157.240.0.0/16": india, "49.44.0.0/16": india})
    asn = write_mmdb(d / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", {
        "157.240.0.0/16": {"autonomous_system_number": 32934, "autonomous_system_organization": "FACEBOOK"},
        "49.44.0.0/16": {"autonomous_system_number": 55836, "autonomous_system_organization": "Reliance Jio Infocomm Limited"},
    })
    return [country, asn]


def _post(s: TcpSession, host: str) -> list[tuple[float, bytes]]:
    body = f"email={EMAIL}&fields=id".encode()
    req = (f"POST /v19.0/me HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return s.handshake() + s.client_send(req) + s.close()


def _capture(path: Path) -> Path:
    t0 = 1_772_000_000.0  # 2026-02-25
    pkts: list[tuple[float, bytes]] = []
    u = UdpFlow(CLIENT, 42000, "192.0.2.53", 53, start=t0)
    pkts += u.exchange(dns_query("graph.facebook.com"), dns_response("graph.facebook.com.", [
        ("graph.facebook.com.", "CNAME", "star.c10r.facebook.com."),
        ("star.c10r.facebook.com.", "A", META_EDGE)]))
    pkts += _post(TcpSession(CLIENT, 42001, META_EDGE, 80, start=t0 + 1), "graph.facebook.com")
    u2 = UdpFlow(CLIENT, 42002, "192.0.2.53", 53, start=t0 + 2)
    pkts += u2.exchange(dns_query("upload.edge-unlisted.example"), dns_response("upload.edge-unlisted.example.", [
        ("upload.edge-unlisted.example.", "A", META_UNLISTED)]))
    pkts += _post(TcpSession(CLIENT, 42003, META_UNLISTED, 80, start=t0 + 3), "upload.edge-unlisted.example")
    u3 = UdpFlow(CLIENT, 42004, "192.0.2.53", 53, start=t0 + 4)
    pkts += u3.exchange(dns_query("api.shop-in.example"), dns_response("api.shop-in.example.", [
        ("api.shop-in.example.", "A", INDIA_HOST)]))
    pkts += _post(TcpSession(CLIENT, 42005, INDIA_HOST, 80, start=t0 + 5), "api.shop-in.example")
    return write_pcap(path, pkts)


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory, geo_db: list[Path]) -> dict[str, Any]:
    path = _capture(tmp_path_factory.mktemp("cap") / "meta-anycast.pcap")
    return datareach.audit([path], profile=PROFILE, policies=["eu-gdpr-transfers"], geo_db=geo_db).to_dict()


def _dest(doc: dict[str, Any], host: str) -> dict[str, Any]:
    return next(d for d in doc["destinations"] if d["host"] == host)


def test_the_meta_edge_server_is_labelled_and_its_location_not_determinable(doc: dict[str, Any]) -> None:
    d = _dest(doc, "graph.facebook.com")
    assert "email" in d["data_types"]
    server = d["servers"][0]
    assert server["ip"] == META_EDGE and server["country"] == "IN"  # the geo data's answer, kept as such
    assert server["anycast"]["operator"] == "meta" and server["anycast"]["kind"] == "cdn-edge"
    assert server["anycast"]["rule"] == "published-range" and server["anycast"]["range"] == "157.240.0.0/17"
    loc = [r for r in d["reach"] if r["basis"] == "location"]
    assert len(loc) == 1
    assert loc[0]["jurisdiction"] is None and loc[0]["determinable"] is False and loc[0]["laws"] == []
    assert loc[0]["path"] == [META_EDGE, "location not determinable from the address (CDN edge: Meta Platforms, Inc.)"]
    assert "IN" in loc[0]["note"] and "not determinable" in loc[0]["note"]
    assert all(r["jurisdiction"] != "IN" for r in d["reach"])
    assert ("US", "owner") in {(r["jurisdiction"], r["basis"]) for r in d["reach"]}


def test_no_deny_for_it_but_a_warning_that_explains(doc: dict[str, Any]) -> None:
    fb = [v for v in doc["violations"] if v["host"] == "graph.facebook.com"]
    assert fb and all(v["action"] == "warn" for v in fb)
    server = next(v for v in fb if v["rule"] == "third-country-server")
    assert "not determinable from its address" in server["reasoning"]
    assert "CDN edge: Meta Platforms, Inc." in server["reasoning"]
    assert "IN (guessed)" in server["reasoning"]
    assert "outside the EEA" not in server["reasoning"]  # the rule's explanation would assert it
    assert server["jurisdictions"] == [] and server["paths"][0]["jurisdiction"] is None
    # the owner basis is unaffected: Meta is a US recipient (a warning on the Data Privacy Framework)
    recipient = next(v for v in fb if v["rule"] == "third-country-recipient")
    assert recipient["jurisdictions"] == ["US"] and "Data Privacy Framework" in recipient["reasoning"]


def test_the_as_registration_rule_in_an_audit(doc: dict[str, Any]) -> None:
    d = _dest(doc, "upload.edge-unlisted.example")
    assert d["servers"][0]["anycast"]["rule"] == "as-registration"
    assert [r["determinable"] for r in d["reach"] if r["basis"] == "location"] == [False]
    assert {v["action"] for v in doc["violations"] if v["host"] == d["host"]} == {"warn"}


def test_an_ordinary_server_in_india_is_still_a_deny(doc: dict[str, Any]) -> None:
    d = _dest(doc, "api.shop-in.example")
    assert d["servers"][0]["anycast"] is None
    loc = next(r for r in d["reach"] if r["basis"] == "location")
    assert loc["jurisdiction"] == "IN" and loc["determinable"] is True and loc["note"] is None
    deny = [v for v in doc["violations"] if v["host"] == d["host"] and v["action"] == "deny"]
    assert [v["rule"] for v in deny] == ["third-country-server"] and deny[0]["jurisdictions"] == ["IN"]
    assert doc["summary"]["verdict"] == "fail"


def test_every_format_shows_it(doc: dict[str, Any]) -> None:
    label = "CDN edge: Meta Platforms, Inc."
    from datareach.report.table import render_table

    wide = render_table(doc, width=400)  # (a fixed width, whatever the paths' length)
    assert "│ ? (CDN   │" in wide  # the server cell (at most 8 wide: "? (CDN edge)" folded)
    table = " ".join(find("table").render(doc).split())
    assert "not determinable from its address (CDN edge: Meta Platforms, Inc.)" in table  # the warning
    md = find("md").render(doc)
    assert "not determinable \\(CDN edge\\: Meta Platforms, Inc\\.\\)" in md  # the server cell
    assert "location not determinable from the address \\(CDN edge" in md  # the reach cell
    assert "Path (not determinable, location)" in md
    html = find("html").render(doc)
    assert "location not determinable from the address (CDN edge: Meta Platforms, Inc.)" in html
    csv = find("csv").render(doc)
    header, *rows = csv.splitlines()
    assert header.split(",")[-1] == "location_not_determinable"
    fb = next(r for r in rows if r.startswith("D") and ",graph.facebook.com," in r)
    assert fb.endswith(f'"{label}"') and ",IN," not in fb
    out = json.loads(find("json").render(doc))
    assert _dest(out, "graph.facebook.com")["servers"][0]["anycast"]["name"] == "Meta Platforms, Inc."
    sarif = json.loads(find("sarif").render(doc))
    texts = [r["message"]["text"] for r in sarif["runs"][0]["results"] if "graph.facebook.com;" in r["message"]["text"]
             or "graph.facebook.com (" in r["message"]["text"]]
    assert any("reachable by a server whose location is not determinable from its address" in x for x in texts)
    junit = find("junit").render(doc)
    assert "not determinable (location): 157.240.0.35" in junit


def test_the_document_passes_the_validator(doc: dict[str, Any]) -> None:
    from datareach.report.diff import check_audit

    check_audit(json.loads(json.dumps(doc)))


def test_explain_an_address_gives_the_label() -> None:
    from datareach.explainer import explain

    [doc] = explain(["157.240.1.1"], at="2026-03-01")
    assert doc["network"]["anycast"]["operator"] == "meta"
    loc = [r for r in doc["reach"] if r["basis"] == "location"]
    assert [r["determinable"] for r in loc] == [False] and loc[0]["jurisdiction"] is None
    [plain] = explain(["10.1.2.3"])
    assert plain["network"]["anycast"] is None


def _judge(servers: list[dict[str, Any]], date: str = "2026-03-01") -> list[dict[str, Any]]:
    from datareach.assess import load_policy
    from datareach.assess.evaluate import assess
    from datareach.enrich.ownership import OwnershipResolver
    from datareach.kb import knowledge_base

    resolver = OwnershipResolver(knowledge_base())
    label_servers(servers)
    host = "api.unknown-vendor.example"
    owner, reach = resolver.resolve(host, date, servers=servers)
    d = {"id": "D0", "host": host, "app": None, "owner": owner, "reach": reach, "servers": servers,
         "first_seen": f"{date}T00:00:00Z", "cname_chain": []}
    f = {"id": "F0", "app": None, "host": host, "data_type": "email", "categories": ["gdpr:personal-data"]}
    return assess([load_policy("eu-gdpr-transfers")], [d], [f], resolver.kb, resolver, date)


def test_a_firm_location_beside_an_anycast_one_is_still_a_deny() -> None:
    edge = {"ip": META_EDGE, "ip_scope": "public", "country": "IN", "asn": None, "as_org": None}
    india = {"ip": INDIA_HOST, "ip_scope": "public", "country": "IN", "asn": None, "as_org": None}
    [v] = _judge([dict(edge), dict(india)])  # (the same country as the edge server's guess)
    assert v["action"] == "deny" and v["jurisdictions"] == ["IN"]
    assert {p["jurisdiction"] for p in v["paths"]} == {None, "IN"}
    [v] = _judge([dict(edge)])
    assert v["action"] == "warn" and v["jurisdictions"] == []
    # an anycast address the geo data places in the EEA: the rule does not fire on a guess either
    assert _judge([{**edge, "country": "DE"}]) == []


def test_the_audit_names_the_data_source(doc: dict[str, Any]) -> None:
    [src] = [s for s in doc["data_sources"] if s["kind"] == "anycast-ranges"]
    assert src["date"] and "meta" in src["note"] and "CC0-1.0" in src["licence"]
