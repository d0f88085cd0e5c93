"""Attribution of hosts seen in real app traffic to their ultimate parent.

``tests/data/app_hosts.csv`` lists host names reported in public analyses of app and device
traffic (research datasets, mitmproxy and DNS-log write-ups, SDK documentation), each with the
ultimate parent the analysis implies and the URL it comes from. It was assembled separately
from the knowledge base.

The list names the parent as it stood when each analysis was published; the knowledge base
answers for a date. ``NOW_OWNED_BY`` carries the changes since (each with the event), and
``SAME_ENTITY`` the names the list uses for what the knowledge base models one level up or
down. The test asks for at least 95% right at 2026-11-24 and prints every miss.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from datareach.enrich.ownership import OwnershipResolver
from datareach.kb import knowledge_base
from datareach.kb.index import name_key

HOSTS = Path(__file__).parent / "data" / "app_hosts.csv"
DATE = "2026-11-24"

#: ownership that changed between the analysis and DATE
NOW_OWNED_BY = {
    "Adjust GmbH": "applovin",            # AppLovin bought Adjust (2021)
    "ironSource Ltd.": "unity",           # merged into Unity (2022)
    "Zynga Inc.": "take-two",             # Take-Two bought Zynga (2022); Chartboost came with it
    "Twitter, Inc.": "alphabet",          # Crashlytics went from Twitter to Google (2017)
    "Verizon Communications Inc.": "apollo",  # Yahoo sold to Apollo funds (2021)
    "Yandex N.V.": "consortium-first",    # the Russian business sold to MKAO Yandex (2024),
    "MKAO Yandex": "consortium-first",    # which Consortium.First controls (world.toml, Interfax)
    "Segment.io, Inc.": "twilio",         # Twilio bought Segment (2020)
    "VIZIO Holding Corp.": "walmart",     # Walmart bought Vizio (Dec 2024)
    "Blackstone Inc.": "blackstone",
}
#: hosts whose owner changed with the TikTok USDS joint venture (2026-01-22)
JV_SUFFIXES = (".tiktokv.us", ".tiktokw.us", "tiktokcdn-us.com", ".capcutapi.us", ".capcutw.us", "tiktokpangle.us")
#: the list's name for a parent -> the knowledge base's id for the same controlling entity
SAME_ENTITY = {
    "Huawei Investment & Holding Co., Ltd.": "huawei",
    "VK": "mf-technologies",  # MF Technologies holds 57.3% of VK's votes (ref-76)
    "SoftBank Group Corp.": "softbank",
    "Kaspersky Lab": "kaspersky",
    "China Electronics Technology Group": "cetc",
    "Functional Software, Inc. (Sentry)": "sentry",
    "Catamorphic Co. (LaunchDarkly)": "launchdarkly",
    "SmartBear Software": "francisco-partners",  # the list stops at the private-equity-owned company
}


def expected_id(row: dict[str, str], by_name: dict[str, str]) -> str | None:
    host, parent = row["host"], row["ultimate_parent"]
    if any(host.endswith(s) for s in JV_SUFFIXES):
        return "tiktok-usds"
    if parent in NOW_OWNED_BY:
        return NOW_OWNED_BY[parent]
    if parent in SAME_ENTITY:
        return SAME_ENTITY[parent]
    return by_name.get(name_key(parent))


@pytest.fixture(scope="module")
def results() -> list[tuple[dict[str, str], str | None, str | None]]:
    kb = knowledge_base()
    by_name: dict[str, str] = {}
    for eid, e in kb.entities.items():
        for n in [e["name"], *e["aliases"]]:
            by_name.setdefault(name_key(n), eid)
    resolver = OwnershipResolver(kb)
    out = []
    with HOSTS.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            owner, _ = resolver.resolve(row["host"], DATE)
            out.append((row, expected_id(row, by_name), owner["ultimate_parent"]["entity"] if owner else None))
    return out


def test_the_list_is_varied_and_sourced(results):
    rows = [r for r, _, _ in results]
    assert len(rows) >= 300
    assert len({r["source_url"] for r in rows}) >= 100
    assert len({r["ultimate_parent"] for r in rows}) >= 50
    assert all(r["source_url"].startswith("https://") for r in rows)


def test_at_least_95_percent_of_real_app_hosts_reach_the_right_ultimate_parent(results):
    right = [r for r, want, got in results if want is not None and got == want]
    misses = [(r["host"], r["ultimate_parent"], want, got) for r, want, got in results if want is None or got != want]
    share = len(right) / len(results)
    print(f"\n{len(right)}/{len(results)} = {share:.1%} attributed to the right ultimate parent")
    for m in misses:
        print("  miss:", *m)
    assert share >= 0.95
