"""Owner and legal reach, on a tiny knowledge base whose every fact the tests can see.

``tests/data/kb_mini``: Group Ltd. (HQ CN, incorporated KY, a state golden share) owns App Pte.
Ltd. (SG, app.example) outright; App US Joint Venture (US, app-us.example) was Group's until
2026-01-22 and is then held 19.9% by Group and 15% by Investor Corp.; Cloud HK Ltd. (HK,
state-controlled) runs cloudcdn.example and AS64500 ("CLOUD-HK-NET").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from datareach.enrich.ownership import OwnershipResolver, ReachOptions
from datareach.kb import knowledge_base


@pytest.fixture(scope="module")
def resolver(kb_mini: Path) -> OwnershipResolver:
    return OwnershipResolver(knowledge_base(kb_mini, use_imports=False, use_cache=False))


def bases(reach: list[dict]) -> set[tuple[str, str]]:
    return {(r["jurisdiction"], r["basis"]) for r in reach}


def test_a_subdomain_is_owned_by_the_entity_of_its_closest_known_domain(resolver):
    owner, _reach = resolver.resolve("api16.app.example", "2026-03-01")
    assert owner["entity"] == "app-sg"
    assert owner["basis"] == "domain" and owner["matched"] == "app.example"
    assert owner["ultimate_parent"]["entity"] == "group"
    assert [c["entity"] for c in owner["chain"]] == ["app-sg", "group"]


def test_owner_reach_walks_the_chain_with_a_path_and_the_laws(resolver):
    _, reach = resolver.resolve("api16.app.example", "2026-03-01")
    assert bases(reach) == {("SG", "owner"), ("CN", "owner"), ("KY", "owner")}
    cn = next(r for r in reach if r["jurisdiction"] == "CN")
    assert cn["path"] == ["app.example", "App Pte. Ltd. (SG)", "Group Ltd. (CN)", "CN (headquarters of Group Ltd.)"]
    assert [law["id"] for law in cn["laws"]] == ["cn-test-owner"]  # not the location law


def test_a_golden_share_is_a_minority_stake_unless_told_otherwise(resolver):
    owner, _ = resolver.resolve("group.example", "2026-03-01")
    assert owner["ultimate_parent"]["entity"] == "group"
    assert owner["state_owner"] is None
    assert [(m["entity"], m["share"], m["control"]) for m in owner["minority_stakes"]] == [("state", 0.01, "golden-share")]
    strict = OwnershipResolver(resolver.kb, ReachOptions(golden_share_controls=True))
    owner, _ = strict.resolve("group.example", "2026-03-01")
    assert owner["state_owner"]["entity"] == "state"
    assert owner["ultimate_parent"]["entity"] == "group"  # the top *company*


def test_ownership_follows_the_capture_date(resolver):
    before, reach_before = resolver.resolve("x.app-us.example", "2025-12-31")
    after, reach_after = resolver.resolve("x.app-us.example", "2026-01-22")
    assert before["ultimate_parent"]["entity"] == "group"
    assert ("CN", "owner") in bases(reach_before)
    assert after["ultimate_parent"]["entity"] == "jv"
    assert bases(reach_after) == {("US", "owner")}
    assert sorted((m["entity"], m["share"]) for m in after["minority_stakes"]) == [("group", 0.199), ("investor", 0.15)]


def test_the_control_threshold_is_a_parameter(resolver):
    low = OwnershipResolver(resolver.kb, ReachOptions(control_threshold=0.19))
    owner, reach = low.resolve("x.app-us.example", "2026-06-01")
    assert owner["ultimate_parent"]["entity"] == "group"
    assert ("CN", "owner") in bases(reach)


def test_laws_have_dates(resolver):
    _, reach = resolver.resolve("app-us.example", "2026-06-01")
    us = next(r for r in reach if r["jurisdiction"] == "US")
    assert [law["id"] for law in us["laws"]] == ["us-test-cloud"]
    _, reach = resolver.resolve("app-us.example", "2019-06-01")
    assert ("CN", "owner") in bases(reach)


def test_hong_kong_brings_its_linked_jurisdiction(resolver):
    _, reach = resolver.resolve("hkshop.example", "2026-03-01")
    assert bases(reach) == {("HK", "owner"), ("CN", "owner")}
    cn = next(r for r in reach if r["jurisdiction"] == "CN")
    assert cn["linked_from"] == "HK"
    assert cn["path"][-1] == "CN (linked jurisdiction)"


def test_state_control_reaches_the_state(resolver):
    owner, reach = resolver.resolve("edge.cloudcdn.example", "2026-03-01")
    assert owner["state_owner"]["entity"] == "state"
    assert owner["ultimate_parent"]["entity"] == "cloud"
    cn = next(r for r in reach if r["jurisdiction"] == "CN")
    assert cn["path"][-2:] == ["The State (CN)", "CN (headquarters of The State)"]


def test_an_unknown_name_on_a_known_as_has_no_owner_only_a_host(resolver):
    """Owner is not host: the operator of the network the servers sit on is hosting evidence,
    never the owner of the service."""
    servers = [{"ip": "203.0.113.7", "country": "SG", "asn": None, "as_org": "CLOUD-HK-NET"}]
    owner, hosting, reach = resolver.resolve_all("unknown.example", "2026-03-01", servers=servers)
    assert owner is None
    assert [(h["entity"], h["basis"], h["matched"]) for h in hosting] == [("cloud", "as", "CLOUD-HK-NET")]
    assert ("HK", "host") in bases(reach) and ("HK", "owner") not in bases(reach)
    assert ("SG", "location") in bases(reach)
    by_number = [{"ip": "203.0.113.7", "country": None, "asn": 64500, "as_org": None}]
    owner, hosting, _ = resolver.resolve_all("203.0.113.7", "2026-03-01", servers=by_number)
    assert owner is None and hosting[0]["entity"] == "cloud" and hosting[0]["matched"] == "AS64500"


def test_a_cname_chain_is_evidence_of_who_serves_an_unknown_name(resolver):
    chain = ["static.shop.example", "shop.cloudcdn.example"]
    owner, _reach = resolver.resolve("static.shop.example", "2026-03-01", cname_chain=chain)
    assert owner["entity"] == "cloud" and owner["basis"] == "cname"
    assert owner["evidence"] == chain


def test_a_known_name_cnamed_to_someone_elses_cdn_keeps_its_owner_and_gains_a_host_basis(resolver):
    chain = ["app.example", "app.cloudcdn.example"]
    owner, reach = resolver.resolve("app.example", "2026-03-01", cname_chain=chain)
    assert owner["entity"] == "app-sg"
    host = [r for r in reach if r["basis"] == "host"]
    assert {r["jurisdiction"] for r in host} == {"HK", "CN"}
    assert host[0]["path"][0] == "app.example -> app.cloudcdn.example (CNAME)"


def test_location_reach_uses_the_laws_that_reach_data_in_the_territory(resolver):
    servers = [{"ip": "198.51.100.1", "country": "CN", "asn": None, "as_org": None}]
    _, reach = resolver.resolve("app-us.example", "2026-06-01", servers=servers)
    loc = [r for r in reach if r["basis"] == "location"]
    assert [(r["jurisdiction"], [law["id"] for law in r["laws"]]) for r in loc] == [("CN", ["cn-test-location"])]


def test_nothing_known_gives_no_owner_but_still_the_location(resolver):
    owner, reach = resolver.resolve("nobody.example", "2026-03-01",
                                    servers=[{"ip": "192.0.2.1", "country": "US", "asn": None, "as_org": "X"}])
    assert owner is None
    assert bases(reach) == {("US", "location")}


def test_listings_in_force_are_reported(resolver):
    owner, _ = resolver.resolve("app.example", "2026-03-01")
    assert [(x["entity"], x["list"]) for x in owner["listings"]] == [("group", "test-list")]
    owner, _ = resolver.resolve("app.example", "2024-03-01")
    assert owner["listings"] == []
