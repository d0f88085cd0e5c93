"""Bulk-data counting for us-doj-bulk-data (28 CFR 202.205): thresholds, verdicts, covered counterparties."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

import datareach.schema
from datareach import explain
from datareach.assess import load_policy
from datareach.assess.bulk import (
    BULK_FIELDS,
    CATEGORY_THRESHOLDS,
    COMBINED,
    ECFR_202_205,
    GOVERNMENT_RELATED,
    THRESHOLDS,
    UNKNOWN,
    coverage,
    covered_counterparties,
    judge,
    window,
)
from datareach.assess.evaluate import assess
from datareach.assess.policy import PolicyError
from datareach.detect import categories as cats
from datareach.enrich.ownership import OwnershipResolver
from datareach.kb import knowledge_base

GEO = cats.DOJ_PRECISE_GEOLOCATION
IDS = cats.DOJ_IDENTIFIERS
#: twelve whole months of logs, ending 1 Dec 2026 (365 days: 2 Dec 2025 to 1 Dec 2026)
YEAR = {"first": "2025-12-02T00:00:04Z", "last": "2026-12-01T23:59:58Z", "days": 365}
#: three days of logs
THREE_DAYS = {"first": "2026-11-29T00:00:00Z", "last": "2026-12-01T23:00:00Z", "days": 3}


def row(category: str | None = GEO, identified: int = 0, screening: int = 0, share: float = 1.0,
        party: str = "tiktok-pte", kinds: tuple[str, ...] = ("advertising_id",)) -> dict[str, Any]:
    return {"counterparty_id": party, "counterparty": f"{party} name", "parent": "ByteDance Ltd.",
            "category": category, "identified": identified, "identifier_kinds": list(kinds),
            "screening": screening, "readable_share": share}


def one(rows: list[dict[str, Any]], category: str = GEO, party: str = "tiktok-pte") -> dict[str, Any]:
    [r] = [r for r in rows if r["category"] == category and r["counterparty_id"] == party]
    return r


# -- the thresholds --------------------------------------------------------------------------------

def test_thresholds_are_those_of_202_205_with_their_citations() -> None:
    expect = {"human-omic": (1_000, "persons", "(a)"), "human-genomic": (100, "persons", "(a)"),
              "biometric": (1_000, "persons", "(b)"), "precise-geolocation": (1_000, "devices", "(c)"),
              "health": (10_000, "persons", "(d)"), "financial": (10_000, "persons", "(e)"),
              "covered-personal-identifiers": (100_000, "persons", "(f)")}
    for name, (n, unit, para) in expect.items():
        t = THRESHOLDS[name]
        assert (t.more_than, t.unit, t.citation, t.source) == (n, unit, f"28 CFR 202.205{para}", ECFR_202_205)
    gov = THRESHOLDS["government-related"]
    assert gov.more_than == 0 and gov.citation == "28 CFR 202.222" and "any volume" in gov.describe()
    # every DOJ category the detectors give has a threshold; 'omic data is held to the genomic one
    labels = {c for name in dir(cats) if name.startswith("DOJ_") for c in [getattr(cats, name)]}
    assert labels | {GOVERNMENT_RELATED} == set(CATEGORY_THRESHOLDS)
    assert CATEGORY_THRESHOLDS[cats.DOJ_OMIC] is THRESHOLDS["human-genomic"]
    assert CATEGORY_THRESHOLDS[GEO].unit == "devices"
    assert {t.unit for c, t in CATEGORY_THRESHOLDS.items() if c != GEO} == {"persons"}


@pytest.mark.parametrize(("category", "at"), [(GEO, 1_000), (cats.DOJ_BIOMETRIC, 1_000), (cats.DOJ_OMIC, 100),
                                              (cats.DOJ_HEALTH, 10_000), (cats.DOJ_FINANCIAL, 10_000),
                                              (IDS, 100_000)])
def test_the_threshold_itself_is_not_more_than_it(category: str, at: int) -> None:
    [below] = judge([row(category, identified=at, screening=at)], YEAR)
    [above] = judge([row(category, identified=at + 1, screening=at)], YEAR)
    assert (below["verdict"], above["verdict"]) == ("below", "above")
    assert below["threshold"] == above["threshold"] == at
    assert "not more than" in below["reason"] and "all 365 days" in below["reason"]


def test_precise_geolocation_counts_devices_at_1000() -> None:
    [r] = judge([row(GEO, identified=1_000, screening=1_000)], YEAR)
    assert r["verdict"] == "below" and r["unit"] == "devices" and r["threshold"] == 1_000
    [r] = judge([row(GEO, identified=1_001, screening=5)], YEAR)
    assert r["verdict"] == "above"
    assert r["reason"].startswith("1,001 distinct devices identified (by advertising_id)")
    assert "more than 1,000 US devices for precise geolocation data (28 CFR 202.205(c))" in r["reason"]


def test_rows_have_the_bulk_count_fields() -> None:
    rows = judge([row(GEO, 5), row(None, party="tencent")], YEAR)
    assert [tuple(r) for r in rows] == [BULK_FIELDS] * 2
    if hasattr(datareach.schema, "BulkCount"):  # declared by the schema (issue 14)
        assert datareach.schema.fields(datareach.schema.BulkCount) == BULK_FIELDS


# -- cannot tell, and why --------------------------------------------------------------------------

def test_short_logs_cannot_tell() -> None:
    [r] = judge([row(GEO, identified=10, screening=10)], THREE_DAYS)
    assert r["verdict"] == "cannot tell" and r["period_days"] == 3
    assert "the logs cover 3 of the 365 days" in r["reason"]
    assert "encrypted" not in r["reason"] and "metadata shows" not in r["reason"]


def test_encrypted_connections_cannot_tell() -> None:
    [r] = judge([row(GEO, identified=10, screening=10, share=0.38)], YEAR)
    assert r["verdict"] == "cannot tell" and r["readable_share"] == 0.38
    assert "62% of the connections were encrypted and not read" in r["reason"]
    assert "logs cover" not in r["reason"] and "metadata shows" not in r["reason"]
    [r] = judge([row(GEO, identified=10, screening=10, share=0.999)], YEAR)
    assert "less than 1% of the connections were encrypted" in r["reason"]


def test_many_client_devices_in_the_metadata_cannot_tell() -> None:
    [r] = judge([row(GEO, identified=10, screening=14_000)], YEAR)
    assert r["verdict"] == "cannot tell" and r["screening"] == 14_000
    assert ("the metadata shows 14,000 client devices, above the threshold: they may all have sent it"
            in r["reason"])
    assert "logs cover" not in r["reason"] and "encrypted" not in r["reason"]


def test_every_unmet_condition_is_named() -> None:
    [r] = judge([row(GEO, identified=10, screening=14_000, share=0.5)], THREE_DAYS)
    assert r["verdict"] == "cannot tell"
    for words in ("the logs cover 3 of the 365 days", "50% of the connections were encrypted",
                  "14,000 client devices, above the threshold"):
        assert words in r["reason"]


def test_above_needs_no_other_condition() -> None:
    [r] = judge([row(GEO, identified=2_000, screening=14_000, share=0.1)], THREE_DAYS)
    assert r["verdict"] == "above"


def test_bounds_are_stated() -> None:
    [r] = judge([row(GEO, identified=1)], YEAR)
    b = r["bounds"]
    for words in ("twelve months ending 2026-12-01", "only data sent within that window counts", "NAT",
                  "MAC randomisation", "address churn", "overcount", "undercount", "limit ad tracking",
                  "same hash", "screening figure, not a count of devices"):
        assert words in b


# -- metadata only ---------------------------------------------------------------------------------

def test_a_covered_counterparty_with_nothing_readable_gets_a_metadata_row() -> None:
    rows = judge([row(None, screening=14_000, share=0.0, party="tencent", kinds=())], YEAR)
    [r] = rows
    assert r["category"] == UNKNOWN == "unknown (not readable)"
    assert r["verdict"] == "cannot tell" and r["identified"] == 0 and r["identifier_kinds"] == []
    assert r["threshold"] == 100  # the lowest of (a)-(f): what it received may be any category
    assert "100% of the connections were encrypted and not read" in r["reason"]
    assert "14,000 client devices, above the lowest threshold" in r["reason"]
    # all read and nothing sensitive found: still no category to count
    [r] = judge([row(None, screening=3, share=1.0, party="tencent")], YEAR)
    assert r["verdict"] == "cannot tell" and "every connection was read" in r["reason"]
    assert "not above the lowest threshold" in r["reason"]


def test_the_metadata_row_gives_way_to_categories_and_other_labels_are_ignored() -> None:
    rows = judge([row(None, screening=50, share=0.5), row(GEO, identified=3, screening=50, share=0.5),
                  row("gdpr:personal-data", party="umeng"), row("sent_in_cleartext", party="umeng")], YEAR)
    assert [(r["counterparty_id"], r["category"]) for r in rows] == [("tiktok-pte", GEO), ("umeng", UNKNOWN)]


# -- combined data ---------------------------------------------------------------------------------

def test_combined_data_uses_the_lowest_applicable_threshold() -> None:
    rows = judge([row(IDS, identified=5_000, screening=900, kinds=("hashed_email",)),
                  row(GEO, identified=800, screening=900)], YEAR)
    assert [r["category"] for r in rows] == [GEO, IDS, COMBINED]
    assert one(rows, GEO)["verdict"] == "below" and one(rows, IDS)["verdict"] == "below"
    for cat in (GEO, IDS):
        assert "combined data (28 CFR 202.205(g))" in one(rows, cat)["reason"]
        assert "lowest applicable threshold, more than 1,000 US devices" in one(rows, cat)["reason"]
    c = one(rows, COMBINED)
    assert c["verdict"] == "above" and c["threshold"] == 1_000 and c["identified"] == 5_000
    assert c["identifier_kinds"] == ["advertising_id", "hashed_email"]
    assert IDS in c["reason"] and "28 CFR 202.205(g)" in c["reason"]


def test_combined_data_below_and_cannot_tell() -> None:
    rows = judge([row(IDS, identified=900, screening=900), row(GEO, identified=1_000, screening=900)], YEAR)
    assert one(rows, COMBINED)["verdict"] == "below"
    rows = judge([row(IDS, identified=900, screening=900, share=0.5), row(GEO, identified=10, screening=900)],
                 YEAR)
    c = one(rows, COMBINED)
    assert c["verdict"] == "cannot tell" and "50% of the connections were encrypted" in c["reason"]


def test_one_category_or_government_data_is_not_combined() -> None:
    rows = judge([row(IDS, identified=5_000)], YEAR)
    assert [r["category"] for r in rows] == [IDS] and "combined" not in rows[0]["reason"]
    rows = judge([row(IDS, identified=5_000), row(GOVERNMENT_RELATED, identified=1)], YEAR)
    assert [r["category"] for r in rows] == [IDS, GOVERNMENT_RELATED]
    assert one(rows, GOVERNMENT_RELATED)["verdict"] == "above"  # any volume
    assert one(rows, GOVERNMENT_RELATED)["threshold"] == 0


# -- inputs ----------------------------------------------------------------------------------------

def test_bad_input_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="no bulk threshold"):
        judge([row("us-doj:telepathy")], YEAR)
    with pytest.raises(ValueError, match="two rows"):
        judge([row(GEO), row(GEO)], YEAR)
    with pytest.raises(ValueError, match="readable_share"):
        judge([row(GEO, share=1.5)], YEAR)


def test_the_window_is_the_twelve_months_ending_on_the_last_day() -> None:
    cov = coverage(YEAR)
    assert (cov.window_days, cov.covered_days, cov.whole) == (365, 365, True)
    start, end = window(YEAR)
    assert datetime.fromtimestamp(start, UTC).isoformat() == "2025-12-02T00:00:00+00:00"
    assert datetime.fromtimestamp(end, UTC).isoformat() == "2026-12-01T23:59:58+00:00"
    # a day short
    assert coverage({**YEAR, "first": "2025-12-03T00:00:00Z"}).covered_days == 364
    # logs longer than the window: only the window counts, and it is covered
    assert coverage({**YEAR, "first": "2024-01-01T00:00:00Z"}).covered_days == 365
    # across a 29 February, and ending on one
    assert coverage({"first": "2023-03-01T00:00:00Z", "last": "2024-03-01T12:00:00Z"}).window_days == 366
    leap = coverage({"first": 1_700_000_000, "last": "2024-02-29T12:00:00+01:00"})
    assert leap.end is not None and leap.end.isoformat() == "2024-02-29" and leap.window_days == 366
    # epoch seconds, and days alone
    assert coverage({"first": window(YEAR)[0], "last": window(YEAR)[1]}).whole
    assert coverage({"days": 3}).covered_days == 3
    with pytest.raises(ValueError):
        window({"days": 3})


# -- covered counterparties ------------------------------------------------------------------------

def test_covered_counterparties_in_the_example_audit(example_audit: dict[str, Any]) -> None:
    covered = covered_counterparties(example_audit["destinations"], "us-doj-bulk-data")
    assert set(covered) == {"tencent", "umeng"}
    umeng = covered["umeng"]
    assert umeng["counterparty"] == "Umeng (Beijing Ruixun Lingtong Technology)"
    assert umeng["parent"] == "Alibaba Group Holding Limited" and umeng["jurisdictions"] == ["CN"]
    assert umeng["hosts"] == ["plbslog.umeng.com"] and umeng["destinations"] == ["D11"]
    assert umeng["paths"][0]["basis"] == "owner"
    # US-owned destinations of the same capture are not covered (Google, Meta, AWS)
    us = [d for d in example_audit["destinations"] if d["owner"] and d["owner"]["hq_country"] == "US"]
    assert us and not covered_counterparties(us, "us-doj-bulk-data")


def test_covered_counterparties_agree_with_the_policy_rule(example_audit: dict[str, Any]) -> None:
    """The covered-person rule judged by evaluate.assess (with any data) names the same hosts."""
    policy = load_policy("us-doj-bulk-data")
    rule = next(r for r in policy.rules if r.id == "covered-person")
    any_data = dataclasses.replace(policy, rules=[dataclasses.replace(rule, data="any", data_categories=())])
    kb = knowledge_base()
    violations = assess([any_data], example_audit["destinations"], [], kb, OwnershipResolver(kb), "2026-12-01")
    covered = covered_counterparties(example_audit["destinations"], policy)
    assert {v["host"] for v in violations} == {h for c in covered.values() for h in c["hosts"]}
    # an owner known only by its network (AS) is not judged on the owner basis
    dests = copy.deepcopy(example_audit["destinations"])
    for d in dests:
        if d["owner"]:
            d["owner"]["basis"] = "as"
    assert covered_counterparties(dests, policy) == {}


def test_a_bytedance_host_is_covered_and_a_us_one_is_not() -> None:
    dests = explain(["api16-normal-useast5.tiktokv.com", "log.tiktokv.com", "api16-normal-useast5.tiktokv.us",
                     "graph.facebook.com"], at="2026-03-01")
    covered = covered_counterparties(dests, "us-doj-bulk-data", date="2026-03-01")
    assert list(covered) == ["tiktok-pte"]
    tiktok = covered["tiktok-pte"]
    assert tiktok["parent"] == "ByteDance Ltd." and tiktok["jurisdictions"] == ["CN"]
    assert tiktok["hosts"] == ["api16-normal-useast5.tiktokv.com", "log.tiktokv.com"]
    assert "ByteDance Ltd. (CN)" in tiktok["paths"][0]["path"]
    # TikTok's US joint venture is a US person (28 CFR 202.256), whoever held it
    before = explain(["api16-normal-useast5.tiktokv.us"], at="2025-11-01")
    assert covered_counterparties(before, "us-doj-bulk-data", date="2025-11-01") == {}


def test_a_policy_without_the_rule_is_refused() -> None:
    with pytest.raises(PolicyError, match="no rule 'covered-person'"):
        covered_counterparties([], "eu-gdpr-transfers")


def test_unit_of_and_no_policy_means_the_preset(example_audit: dict[str, Any]) -> None:
    from datareach.assess.bulk import unit_of

    assert (unit_of(GEO), unit_of(IDS), unit_of(cats.DOJ_HEALTH)) == ("devices", "persons", "persons")
    assert unit_of("gdpr:personal-data") is None and unit_of(UNKNOWN) is None
    assert set(covered_counterparties(example_audit["destinations"], None)) == {"tencent", "umeng"}
