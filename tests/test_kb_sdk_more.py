"""The last DuckDuckGo app-list hosts and the AppsFlyer OneLink platform (helper h-cov2).

A OneLink name (``<app>.onelink.me``) is a marketer's link served by AppsFlyer: with no other
evidence its owner is unknown and AppsFlyer hosts it; a shipped dataset that names the tenant's
company (AdGuard: ``whisper.onelink.me``) is owner evidence, and is no longer dropped because
``onelink.me`` is also a curated AppsFlyer domain. ``onelink.me`` itself stays AppsFlyer's.
"""

from __future__ import annotations

import pytest

from datareach.enrich.ownership import OwnershipResolver
from datareach.kb import knowledge_base

DATE = "2026-12-07"


@pytest.fixture(scope="module")
def resolver() -> OwnershipResolver:
    return OwnershipResolver(knowledge_base(use_imports=False))


def test_onelink_tenants_are_hosted_by_appsflyer(resolver: OwnershipResolver) -> None:
    plat = resolver.kb.platform_of("greatapp.onelink.me")
    assert plat is not None and plat[0] == "onelink.me" and plat[1]["entity"] == "appsflyer"
    assert resolver.attribute("greatapp.onelink.me") is None
    own, _reach = resolver.resolve("onelink.me", DATE)
    assert own is not None and own["entity"] == "appsflyer"


def test_a_shipped_dataset_names_a_onelink_tenants_owner(resolver: OwnershipResolver) -> None:
    own, _reach = resolver.resolve("whisper.onelink.me", DATE)
    assert own is not None and own["entity"] != "appsflyer"
    assert resolver.kb.entities[own["entity"]]["origin"] != "curated"


@pytest.mark.parametrize(("host", "entity"), [
    ("logs.ironsrc.mobi", "ironsource"),
    ("networksdk.ssacdn.com", "ironsource"),
    ("wins.isprog.com", "ironsource"),
    ("imgs.hcaptcha.com", "intuition-machines"),
    ("spl.zeotap.com", "zeotap"),
    ("cdn-f.adsmoloco.com", "moloco"),
    ("impression.link", "branch"),
    ("p.placed.com", "foursquare"),
    ("device.marketingcloudapis.com", "salesforce-marketing-cloud"),
    ("rtb.mfadsrvr.com", "iponweb"),
    ("api.tappx.com", "tappx"),
])
def test_ddg_app_hosts_have_their_owner(resolver: OwnershipResolver, host: str, entity: str) -> None:
    own, _reach = resolver.resolve(host, DATE)
    assert own is not None and own["entity"] == entity


def test_iponweb_reaches_criteo(resolver: OwnershipResolver) -> None:
    info = resolver.chain("iponweb", DATE)
    assert info["ultimate_parent"]["entity"] == "criteo"
