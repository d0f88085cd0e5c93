"""``explain`` reads URLs, host:port, [v6]:port and IP addresses; lists only the laws in force at
``--at``; prints each footnote once (issue: wrong input, wrong answer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datareach.cli import main
from datareach.explainer import explain, host_of, ip_of


@pytest.mark.parametrize(("given", "host"), [
    ("https://graph.facebook.com/v1", "graph.facebook.com"),
    ("HTTPS://Graph.Facebook.com:8443/v1?x=1#y", "graph.facebook.com"),
    ("graph.facebook.com:443", "graph.facebook.com"),
    ("graph.facebook.com.", "graph.facebook.com"),
    ("https://user:pw@graph.facebook.com/", "graph.facebook.com"),
    ("[2a03:2880::1]:443", "2a03:2880::1"),
    ("https://[2a03:2880::1]/x", "2a03:2880::1"),
    ("2a03:2880::1", "2a03:2880::1"),
    ("157.240.1.1:443", "157.240.1.1"),
    ("  ", ""),
])
def test_host_of(given: str, host: str) -> None:
    assert host_of(given) == host


def test_ip_of() -> None:
    assert ip_of("2a03:2880:0::1") == "2a03:2880::1" and ip_of("157.240.1.1") == "157.240.1.1"
    assert ip_of("graph.facebook.com") is None and ip_of("999.1.1.1") is None


def test_a_url_is_explained_by_its_host() -> None:
    [doc] = explain(["https://graph.facebook.com/v1"], at="2026-03-01")
    assert doc["host"] == "graph.facebook.com"
    assert doc["owner"] is not None and doc["owner"]["ultimate_parent"]["entity"] == "meta"


def test_laws_are_those_in_force_at_the_date() -> None:
    def laws(at: str) -> set[str]:
        [doc] = explain(["graph.facebook.com"], at=at)
        return {law["id"] for r in doc["reach"] for law in r["laws"]}

    assert not {"us-fisa-702", "us-cloud-act"} & laws("1990-01-01")
    assert "us-sca" in laws("1990-01-01")
    assert "us-fisa-702" not in laws("2008-07-09") and "us-fisa-702" in laws("2008-07-10")
    assert "us-cloud-act" not in laws("2018-03-22") and "us-cloud-act" in laws("2018-03-23")


def test_the_laws_the_issue_names_have_dates_and_sources() -> None:
    from datareach.kb import knowledge_base

    kb = knowledge_base()
    us = {law["id"]: law for law in kb.jurisdictions["US"]["law"]}
    assert us["us-fisa-702"]["in_force"] == "2008-07-10" and "law-us-faa-2008" in us["us-fisa-702"]["sources"]
    assert us["us-cloud-act"]["in_force"] == "2018-03-23"
    assert "law-us-cloud-act-2018" in us["us-cloud-act"]["sources"]


def test_an_address_keeps_owner_and_host_apart() -> None:
    [doc] = explain(["157.240.1.1"], at="2026-03-01")
    assert doc["host"] == "157.240.1.1" and doc["owner"] is None
    net = doc["network"]
    assert net["ip"] == "157.240.1.1" and net["ip_scope"] == "public"
    if net["operator"] is not None:  # (the default geo data name Facebook's network)
        assert net["operator"]["entity"] == "meta"
        assert any(r["basis"] == "host" and r["jurisdiction"] == "US" for r in doc["reach"])
    assert all(r["basis"] in ("host", "location") for r in doc["reach"])
    [private] = explain(["10.1.2.3"])
    assert private["owner"] is None and private["network"]["ip_scope"] == "private" and private["reach"] == []


def test_an_address_in_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    assert main(["explain", "[2a03:2880::1]:443", "graph.facebook.com:443", "--format", "jsonl", "-o", str(out)]) == 0
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["host"] == "2a03:2880::1" and first["owner"] is None and "network" in first
    assert second["host"] == "graph.facebook.com" and second["owner"] is not None
    assert main(["explain", "157.240.1.1", "--json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    cited = {law["id"] for h in doc["hosts"] for r in h["reach"] for law in r["laws"]}
    assert cited <= set(doc["laws"])


def test_each_footnote_is_printed_once(tmp_path: Path) -> None:
    out = tmp_path / "t.txt"
    assert main(["explain", "graph.facebook.com", "www.facebook.com", "https://graph.facebook.com/v1",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert text.count("facebook.com -> ") == 1, text
