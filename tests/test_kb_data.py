"""The shipped knowledge base: it loads, it is consistent, and it covers what audits meet.

The loader itself rejects malformed records, cycles, duplicate owners of a domain or an AS,
unknown country codes and records without a source or an as-of date (tests/test_kb_load.py);
here it runs over the real files, and the coverage the issue asks for is counted.
"""

from __future__ import annotations

from collections import Counter

import pytest

from datareach.kb import knowledge_base
from datareach.kb.index import DATA_DIR
from datareach.kb.load import COUNTRIES, read_kb


@pytest.fixture(scope="module")
def raw():
    return read_kb(DATA_DIR)


def test_the_shipped_files_pass_every_check(raw):
    assert raw.entities and raw.jurisdictions and raw.lists


def test_coverage(raw):
    assert len(raw.entities) >= 500
    assert sum(len(e.get("domains", [])) for e in raw.entities.values()) >= 5000
    assert sum(len(a.get("numbers", [])) for a in raw.autonomous_systems) >= 150
    operators = {a["entity"] for a in raw.autonomous_systems}
    assert len(operators) >= 100


def test_every_company_of_the_reference_notes_is_there(raw):
    section_4 = ["bytedance", "tiktok-pte", "tiktok-usds", "tencent", "alibaba-group", "alibaba-cloud", "umeng",
                 "uc-web", "baidu", "huawei", "xiaomi", "pdd-holdings", "temu", "shein", "kuaishou", "netease",
                 "aurora-mobile", "tuya", "hikvision", "ezviz", "dahua", "gtcom", "iflytek", "yandex-llc",
                 "mkao-yandex", "vk", "kaspersky"]
    missing = [e for e in section_4 if e not in raw.entities]
    assert not missing
    for eid in ["tuya", "temu", "kaspersky", "gtcom", "aurora-mobile", "iflytek"]:
        assert raw.entities[eid].get("domains"), eid


def test_sdk_vendors_are_covered_in_many_jurisdictions(raw):
    roles = {"ads", "analytics", "attribution", "push", "crash"}
    by_country = Counter(e["hq"] for e in raw.entities.values() if roles & set(e.get("roles", [])))
    assert sum(by_country.values()) >= 100
    assert {"US", "CN", "RU", "IL", "DE", "FR", "IN", "JP", "KR", "SG"} <= set(by_country), by_country


def test_every_record_has_sources_and_a_date(raw):
    for eid, e in raw.entities.items():
        assert e["sources"] and e["as_of"], eid
        for p in e.get("parent", []):
            assert p["sources"], (eid, p)
    for a in raw.autonomous_systems:
        assert a["sources"] and a["as_of"]
    for code, j in raw.jurisdictions.items():
        assert j["sources"], code
        for law in j["law"]:
            assert law["sources"] and law["effect"], law["id"]
    for sid, s in raw.sources.items():
        assert s["url"].startswith(("https://", "http://")) and s["seen"], sid


def test_every_country_is_a_real_code(raw):
    for e in raw.entities.values():
        assert e["hq"] in COUNTRIES
        assert all(c in COUNTRIES for c in e.get("operates_in", []))


def test_hong_kong_and_macau_are_their_own_jurisdictions_linked_to_china(raw):
    assert raw.jurisdictions["HK"]["linked_to"] == "CN"
    assert raw.jurisdictions["MO"]["linked_to"] == "CN"
    concern = set(raw.lists["us-doj-countries-of-concern"]["countries"])
    assert {"CN", "HK", "MO", "CU", "IR", "KP", "RU", "VE"} <= concern
    assert {"CN", "RU", "IR", "KP"} <= set(raw.lists["us-padfa-foreign-adversaries"]["countries"])
    adequacy = {e["country"] for e in raw.lists["eu-adequacy"]["entry"]}
    assert {"JP", "GB", "KR", "CH", "US"} <= adequacy and "CN" not in adequacy


def test_laws_that_compel_are_recorded_for_the_main_states(raw):
    for code in ["CN", "HK", "MO", "RU", "US", "GB", "IN", "AU"]:
        assert any("owner" in law["reaches"] or "location" in law["reaches"] for law in raw.jurisdictions[code]["law"]), code


def test_the_compiled_cache_gives_the_same_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DATAREACH_DATA_DIR", str(tmp_path / "data"))
    from datareach.kb import reset

    reset()
    cold = knowledge_base()
    reset()
    warm = knowledge_base()
    assert list((tmp_path / "cache").glob("knowledge-base-*.bin"))
    assert warm.domains == cold.domains and warm.entities == cold.entities and warm.as_names == cold.as_names
    reset()
