"""Facts corrected for issue 15 (item 6): the control chains reach the controller the filings name."""

from __future__ import annotations

import pytest

import datareach
from datareach.kb import reset


@pytest.fixture(autouse=True)
def user_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path / "cache"))
    reset()
    yield
    reset()


def owner(host: str, at: str = "2026-12-07") -> dict:
    entry = datareach.explain([host], at=at)[0]
    assert entry["owner"] is not None, host
    return entry


def chain_ids(entry: dict) -> list[str]:
    return [link["entity"] for link in entry["owner"]["chain"]]


def reach(entry: dict) -> set[str]:
    return {r["jurisdiction"] for r in entry["reach"]}


def test_iqiyi_is_controlled_by_baidu_through_its_votes():
    e = owner("www.iqiyi.com")
    assert e["owner"]["ultimate_parent"]["entity"] == "baidu"
    link = e["owner"]["chain"][1]
    assert link["entity"] == "baidu" and link["control"] == "voting"
    assert "CN" in reach(e)


def test_opera_is_controlled_by_kunlun_tech():
    e = owner("opera.com")
    assert chain_ids(e)[:2] == ["opera", "kunlun-tech"] and "CN" in reach(e)


def test_honor_is_held_by_shenzhen_state_assets_through_zhixin():
    e = owner("www.hihonor.com")
    assert chain_ids(e) == ["honor", "shenzhen-zhixin", "cn-shenzhen-sasac"]
    assert e["owner"]["state_owner"]["entity"] == "cn-shenzhen-sasac"


def test_trendyol_is_controlled_by_alibaba():
    e = owner("www.trendyol.com")
    assert e["owner"]["ultimate_parent"]["entity"] == "alibaba-group" and "CN" in reach(e)


def test_tokopedia_is_controlled_by_bytedance_since_2024():
    e = owner("www.tokopedia.com")
    assert e["owner"]["ultimate_parent"]["entity"] == "bytedance" and "CN" in reach(e)
    before = owner("www.tokopedia.com", at="2023-06-01")
    assert before["owner"]["ultimate_parent"]["entity"] == "tokopedia"


def test_x_belongs_to_xai_and_xai_to_spacex_since_2026():
    assert chain_ids(owner("x.com")) == ["x-corp", "xai", "spacex"]
    assert chain_ids(owner("x.com", at="2025-06-01")) == ["x-corp", "xai"]
    assert chain_ids(owner("x.com", at="2024-06-01")) == ["x-corp"]
