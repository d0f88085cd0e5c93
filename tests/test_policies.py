"""Policies: the presets' golden cases on captures that violate them and captures that pass,
user policy files, allow lists, and the exit statuses a CI job gates on.

Each capture is a HAR file (the format browsers and mitmproxy export) with real requests that
carry the test profile's values; the server addresses are in the networks those companies
announce, so the server's country comes from the shipped geo data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import datareach
from datareach.assess import PRESETS, PolicyError, load_policy
from datareach.cli import main

PROFILE = Path(__file__).parent.parent / "examples" / "profile.toml"
EXAMPLE = Path(__file__).parent.parent / "examples" / "mobile-app-session.pcapng"
AD_ID = "a3e3fce2-78b0-4105-ada0-748f79470c71"
EMAIL = "Tester.WeatherApp@example.org"

# addresses in networks the operators announce (as in examples/generate_example.py)
CN_ALIBABA = "106.11.43.158"     # Alibaba Cloud, Hangzhou
US_FACEBOOK = "157.240.229.35"   # Facebook, US
HK_TENCENT = "129.226.103.69"    # Tencent Cloud, Hong Kong
DE_AWS = "3.120.181.40"          # AWS eu-central-1, Frankfurt


def har(path: Path, requests: list[tuple[str, str, str]]) -> Path:
    """A HAR file of GET requests: (url, server IP, started ISO time)."""
    entries = [{
        "startedDateTime": when, "time": 10,
        "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "headers": [], "queryString": [],
                    "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                     "content": {"size": 2, "mimeType": "application/json"}, "redirectURL": "",
                     "headersSize": -1, "bodySize": 2},
        "cache": {}, "timings": {"send": 0, "wait": 8, "receive": 2}, "serverIPAddress": ip,
    } for url, ip, when in requests]
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                                        "entries": entries}}))
    return path


def run(path: Path, *policies: str | Path) -> dict[str, Any]:
    return datareach.audit([path], profile=PROFILE, policies=list(policies)).to_dict()


def rules(doc: dict[str, Any], action: str | None = None) -> set[tuple[str, str, str]]:
    return {(v["policy"], v["rule"], v["host"]) for v in doc["violations"]
            if v["allowed"] is None and (action is None or v["action"] == action)}


def cli(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


# -- us-doj-bulk-data ------------------------------------------------------------------------

def test_doj_advertising_id_to_a_chinese_sdk_on_a_chinese_server_is_denied(tmp_path: Path) -> None:
    path = har(tmp_path / "umeng.har", [
        (f"http://plbslog.umeng.com/collect?aid={AD_ID}&lat=52.516274&lon=13.377704", CN_ALIBABA, "2026-03-01T10:00:00Z")])
    doc = run(path, "us-doj-bulk-data")
    assert rules(doc, "deny") == {("us-doj-bulk-data", "covered-person", "plbslog.umeng.com"),
                                  ("us-doj-bulk-data", "country-of-concern-server", "plbslog.umeng.com")}
    assert doc["summary"]["verdict"] == "fail"
    covered = next(v for v in doc["violations"] if v["rule"] == "covered-person")
    assert covered["jurisdictions"] == ["CN"]
    assert covered["paths"][0]["path"] == [
        "umeng.com", "Umeng (Beijing Ruixun Lingtong Technology) (CN)",
        "CN: headquarters of Umeng (Beijing Ruixun Lingtong Technology)"]
    assert {"advertising_id", "location"} <= set(covered["data_types"])
    assert "us-doj:precise-geolocation" in covered["data_categories"]
    # the violation points at the very findings that justify it
    assert {f["data_type"] for f in doc["findings"] if f["id"] in covered["findings"]} == set(covered["data_types"])
    assert len(covered["findings"]) == len({f["id"] for f in doc["findings"]} & set(covered["findings"]))
    assert covered["sources"] and all(s.startswith("http") for s in covered["sources"])
    assert "Umeng" in covered["reasoning"] and "CN through its owner" in covered["reasoning"]
    assert doc["policies"][0]["context"][0].startswith("Bulk thresholds")
    assert cli("audit", path, "--profile", PROFILE, "--policy", "us-doj-bulk-data", "-o", tmp_path / "r.txt") == 3


def test_doj_same_data_to_a_us_company_on_a_us_server_passes(tmp_path: Path) -> None:
    path = har(tmp_path / "fb.har", [
        (f"http://graph.facebook.com/v19/activities?advertiser_id={AD_ID}", US_FACEBOOK, "2026-03-01T10:00:00Z")])
    doc = run(path, "us-doj-bulk-data")
    assert doc["findings"], "the capture must carry sensitive data, or the pass proves nothing"
    assert doc["violations"] == []
    assert doc["summary"]["verdict"] == "pass"
    assert doc["summary"]["violations"] == {"deny": 0, "warn": 0, "allowed": 0}
    assert cli("audit", path, "--profile", PROFILE, "--policy", "us-doj-bulk-data", "-o", tmp_path / "r.txt") == 0


def test_doj_a_us_company_serving_from_hong_kong_is_denied_by_location_only(tmp_path: Path) -> None:
    path = har(tmp_path / "hk.har", [
        (f"http://graph.facebook.com/v19/activities?advertiser_id={AD_ID}", HK_TENCENT, "2026-03-01T10:00:00Z")])
    doc = run(path, "us-doj-bulk-data")
    assert rules(doc) == {("us-doj-bulk-data", "country-of-concern-server", "graph.facebook.com"),
                          ("us-doj-bulk-data", "covered-person-host", "graph.facebook.com")}
    loc = next(v for v in doc["violations"] if v["rule"] == "country-of-concern-server")
    assert loc["action"] == "deny" and "HK" in loc["jurisdictions"]
    host = next(v for v in doc["violations"] if v["rule"] == "covered-person-host")
    assert host["action"] == "warn" and host["paths"][0]["basis"] == "host"


def test_doj_us_subsidiary_of_a_chinese_group_is_a_us_person_but_padfa_counts_its_owners(tmp_path: Path) -> None:
    """TikTok's US joint venture: a US company (28 CFR 202.256: a US person, never a covered
    person). Before 22 Jan 2026 ByteDance controlled it (PADFA: controlled by a foreign
    adversary); afterwards ByteDance holds 19.9%, under PADFA's 20%."""
    url = f"http://api16-normal-useast5.tiktokv.us/aweme/v1/feed?ad_id={AD_ID}"
    before = run(har(tmp_path / "before.har", [(url, US_FACEBOOK, "2025-11-01T10:00:00Z")]), "us-doj-bulk-data", "us-padfa")
    after = run(har(tmp_path / "after.har", [(url, US_FACEBOOK, "2026-03-01T10:00:00Z")]), "us-doj-bulk-data", "us-padfa")
    assert not any(v["policy"] == "us-doj-bulk-data" for v in before["violations"] + after["violations"])
    assert rules(before, "deny") == {("us-padfa", "foreign-adversary-controlled", "api16-normal-useast5.tiktokv.us")}
    padfa = before["violations"][0]
    assert padfa["jurisdictions"] == ["CN"]
    assert "ByteDance Ltd. (CN)" in padfa["paths"][0]["path"]
    assert after["violations"] == [] and after["summary"]["verdict"] == "pass"


def test_doj_encrypted_traffic_to_a_covered_person_is_a_warning(tmp_path: Path) -> None:
    doc = datareach.audit([EXAMPLE], profile=PROFILE, policies=["us-doj-bulk-data"]).to_dict()
    assert rules(doc, "warn") == {("us-doj-bulk-data", "covered-person-traffic", "android.bugly.qq.com"),
                                  ("us-doj-bulk-data", "covered-person-traffic", "plbslog.umeng.com")}
    assert doc["summary"]["verdict"] == "warn"
    assert all(v["findings"] == [] for v in doc["violations"])
    assert cli("audit", EXAMPLE, "--profile", PROFILE, "--policy", "us-doj-bulk-data", "-o", tmp_path / "r") == 0


# -- us-padfa ----------------------------------------------------------------------------------

def test_padfa_twenty_percent_threshold_counts_indirect_ownership(tmp_path: Path) -> None:
    path = har(tmp_path / "qq.har", [
        (f"http://android.bugly.qq.com/rqd/async?aid={AD_ID}", DE_AWS, "2026-03-01T10:00:00Z")])
    doc = run(path, "us-padfa")
    assert rules(doc, "deny") == {("us-padfa", "foreign-adversary-controlled", "android.bugly.qq.com")}
    assert cli("audit", path, "--profile", PROFILE, "--policy", "us-padfa", "-o", tmp_path / "r") == 3
    fb = har(tmp_path / "fb.har", [
        (f"http://graph.facebook.com/v19/activities?advertiser_id={AD_ID}", US_FACEBOOK, "2026-03-01T10:00:00Z")])
    assert run(fb, "us-padfa")["summary"]["verdict"] == "pass"
    assert cli("audit", fb, "--profile", PROFILE, "--policy", "us-padfa", "-o", tmp_path / "r") == 0


# -- eu-gdpr-transfers ---------------------------------------------------------------------------

def test_gdpr_email_to_a_chinese_recipient_needs_a_mechanism(tmp_path: Path) -> None:
    path = har(tmp_path / "cn.har", [(f"http://plbslog.umeng.com/u?email={EMAIL}", CN_ALIBABA, "2026-03-01T10:00:00Z")])
    doc = run(path, "eu-gdpr-transfers")
    assert rules(doc, "deny") == {("eu-gdpr-transfers", "third-country-server", "plbslog.umeng.com"),
                                  ("eu-gdpr-transfers", "third-country-recipient", "plbslog.umeng.com")}
    v = next(v for v in doc["violations"] if v["rule"] == "third-country-server")
    assert "standard contractual clauses" in v["mechanism"] and "2021/914" in v["mechanism"]
    assert cli("audit", path, "--profile", PROFILE, "--policy", "eu-gdpr-transfers", "-o", tmp_path / "r") == 3


def test_gdpr_us_recipient_is_a_warning_that_depends_on_the_data_privacy_framework(tmp_path: Path) -> None:
    path = har(tmp_path / "us.har", [(f"http://graph.facebook.com/me?email={EMAIL}", US_FACEBOOK, "2026-03-01T10:00:00Z")])
    doc = run(path, "eu-gdpr-transfers")
    assert {v["action"] for v in doc["violations"]} == {"warn"}
    assert all("Data Privacy Framework" in v["reasoning"] for v in doc["violations"])
    assert doc["summary"]["verdict"] == "warn"
    assert cli("audit", path, "--profile", PROFILE, "--policy", "eu-gdpr-transfers", "-o", tmp_path / "r") == 0


def test_gdpr_flags_only_the_data_that_left_the_eea(tmp_path: Path) -> None:
    doc = datareach.audit([EXAMPLE], profile=PROFILE, policies=["eu-gdpr-transfers"]).to_dict()
    # personal data went to servers in Frankfurt, run by unknown operators: no violation; and,
    # inside HTTPS (the capture carries its key log), the advertising ID went to the app's API
    # on CloudFront, located in the US: a warning, not a deny (no third-country owner)
    hosts = {d["id"]: d["host"] for d in doc["destinations"]}
    frankfurt = {f["host"] for f in doc["findings"] if not f["encrypted_in_transit"]}
    assert frankfurt == {"events.weatherapp.example.com", "t.adtrack.example.net"}
    assert {(hosts[v["destination"]], v["action"]) for v in doc["violations"]} == {("api.weatherapp.example.com", "warn")}
    assert doc["summary"]["verdict"] == "warn"


# -- user policies -----------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_user_policy_extends_a_preset_with_an_allow_list(tmp_path: Path) -> None:
    path = har(tmp_path / "us.har", [(f"http://graph.facebook.com/me?email={EMAIL}", US_FACEBOOK, "2026-03-01T10:00:00Z"),
                                     (f"http://plbslog.umeng.com/u?email={EMAIL}", CN_ALIBABA, "2026-03-01T10:00:01Z")])
    policy = write(tmp_path / "gate.toml", """
[policy]
id = "acme-gate"
name = "Acme release gate"
extends = ["eu-gdpr-transfers"]

[[allow]]
owners = ["Meta Platforms, Inc."]
reason = "Meta is certified under the EU-US Data Privacy Framework (checked 2026-02-01)"

[[allow]]
hosts = ["*.umeng.com"]
rules = ["third-country-server"]
reason = "SCCs with Alibaba, signed 2025-01-10"
until = "2025-12-31"
""")
    doc = run(path, policy)
    allowed = [v for v in doc["violations"] if v["allowed"]]
    assert {v["host"] for v in allowed} == {"graph.facebook.com"}
    assert allowed[0]["allowed"]["reason"].startswith("Meta is certified")
    # the SCC entry expired before the capture: the violation stands, and says why
    server = next(v for v in doc["violations"] if v["rule"] == "third-country-server")
    assert server["allowed"] is None and "expired on 2025-12-31" in server["reasoning"]
    assert doc["policies"][0]["id"] == "acme-gate" and doc["policies"][0]["extends"] == ["eu-gdpr-transfers"]
    assert doc["policies"][0]["origin"] == str(policy) and len(doc["policies"][0]["sha256"]) == 64
    assert doc["summary"]["violations"]["allowed"] == len(allowed)


def test_user_rule_on_jurisdictions_bases_and_override(tmp_path: Path) -> None:
    policy = write(tmp_path / "p.toml", """
[policy]
id = "no-china"
name = "Nothing to servers in China"
extends = ["us-doj-bulk-data"]

[[rule]]
id = "no-cn-servers"
action = "deny"
title = "Traffic to a server in China"
jurisdictions = ["CN"]
bases = ["location"]

[[override]]
rule = "covered-person-traffic"
action = "off"
""")
    doc = datareach.audit([EXAMPLE], profile=PROFILE, policies=[policy]).to_dict()
    # HK brings CN along as a linked jurisdiction, so the Hong Kong server counts too
    assert rules(doc) == {("no-china", "no-cn-servers", "plbslog.umeng.com"),
                          ("no-china", "no-cn-servers", "android.bugly.qq.com")}
    assert cli("audit", EXAMPLE, "--policy", policy, "-o", tmp_path / "r") == 3


def test_user_rule_on_owners_and_data_types(tmp_path: Path) -> None:
    path = har(tmp_path / "fb.har", [(f"http://graph.facebook.com/me?email={EMAIL}", US_FACEBOOK, "2026-03-01T10:00:00Z"),
                                     ("http://graph.facebook.com/ping?x=1", US_FACEBOOK, "2026-03-01T10:00:00Z")])
    policy = write(tmp_path / "p.toml", """
[policy]
id = "no-meta-email"
name = "No e-mail addresses to Meta"

[[rule]]
id = "email-to-meta"
action = "warn"
title = "E-mail address sent to Meta"
owners = ["meta*"]
data_types = ["email"]
""")
    doc = run(path, policy)
    [v] = doc["violations"]
    assert v["action"] == "warn" and v["data_types"] == ["email"]
    assert cli("audit", path, "--profile", PROFILE, "--policy", policy, "-o", tmp_path / "r") == 0


@pytest.mark.parametrize(("text", "message"), [
    ("[policy]\nid='x'\nname='x'\n", "no rules"),
    ("[policy]\nid='x'\nname='x'\n[[rule]]\nid='r'\naction='block'\ntitle='t'\n", "`action` must be one of deny, warn"),
    ("[policy]\nid='x'\nname='x'\n[[rule]]\nid='r'\naction='deny'\ntitle='t'\njurisdiction=['CN']\n", "unknown field(s) jurisdiction"),
    ("[policy]\nid='x'\nname='x'\n[[rule]]\nid='r'\naction='deny'\ntitle='t'\njurisdictions=['China']\n", "not an ISO 3166-1"),
    ("[policy]\nid='x'\nname='x'\n[[rule]]\nid='r'\naction='deny'\ntitle='t'\nbases=['owner','cloud']\n", "'cloud' is not one of"),
    ("[policy]\nid='x'\nname='x'\nextends=['p.toml']\n[[rule]]\nid='r'\naction='deny'\ntitle='t'\n", "cycle"),
    ("[policy]\nid='x'\nname='x'\n[[allow]]\nreason='why'\n[[rule]]\nid='r'\naction='deny'\ntitle='t'\n", "must say what it allows"),
    ("[policy]\nid='x'\nname='x'\n[[rule]]\nid='r'\naction='deny'\ntitle='t'\nowner_test='ownership'\n", "needs `jurisdictions` or `lists`"),
    ("[policy]\nid='x'\nname='x'\n[[override]]\nrule='nope'\naction='off'\n", "no rule 'nope'"),
    ("[policy\nid='x'", "not a valid TOML file"),
])
def test_bad_policy_files_are_refused_with_the_place_at_fault(tmp_path: Path, text: str, message: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "p.toml", text)
    with pytest.raises(PolicyError, match=None) as exc:
        load_policy(path)
    assert message in str(exc.value) and str(path) in str(exc.value)
    assert cli("audit", EXAMPLE, "--policy", path, "-o", tmp_path / "r") == 2
    assert message in capsys.readouterr().err


def test_unknown_list_is_reported_when_judging(tmp_path: Path) -> None:
    path = write(tmp_path / "p.toml", "[policy]\nid='x'\nname='x'\n[[rule]]\nid='r'\naction='deny'\ntitle='t'\n"
                                      "lists=['no-such-list']\n")
    with pytest.raises(PolicyError, match="no country list 'no-such-list'"):
        datareach.audit([EXAMPLE], policies=[path])
    assert cli("audit", EXAMPLE, "--policy", path, "-o", tmp_path / "r") == 2


def test_presets_load_and_cite_their_sources() -> None:
    assert set(PRESETS) == {"us-doj-bulk-data", "us-padfa", "eu-gdpr-transfers"}
    for name in PRESETS:
        policy = load_policy(name)
        assert policy.origin == "preset" and policy.summary and policy.context and policy.as_of
        assert policy.sources and all(r.citation for r in policy.rules)
    doc = datareach.audit([EXAMPLE], policies=list(PRESETS)).to_dict()
    for p in doc["policies"]:
        assert all(s.startswith("http") for s in p["sources"]), p["id"]


def test_no_policy_means_no_verdict() -> None:
    doc = datareach.audit([EXAMPLE]).to_dict()
    assert doc["policies"] == [] and doc["violations"] == []
    assert doc["summary"]["verdict"] is None


def test_policy_violation_takes_precedence_over_an_input_error(tmp_path: Path) -> None:
    path = har(tmp_path / "umeng.har", [(f"http://plbslog.umeng.com/c?aid={AD_ID}", CN_ALIBABA, "2026-03-01T10:00:00Z")])
    text = path.read_text()
    broken = tmp_path / "broken.har"
    # a second entry with a bad server address: an input error, the first entry still counts
    doc = json.loads(text)
    doc["log"]["entries"].append({**doc["log"]["entries"][0], "serverIPAddress": "not-an-ip"})
    broken.write_text(json.dumps(doc))
    assert cli("audit", broken, "--profile", PROFILE, "--policy", "us-doj-bulk-data", "-o", tmp_path / "r") == 3
    assert cli("audit", broken, "--profile", PROFILE, "-o", tmp_path / "r") == 4


def test_policy_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("policy", "list") == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PRESETS) and "covered-person [deny]" in out
    assert cli("policy", "show", "us-doj-bulk-data") == 0
    shown = capsys.readouterr().out
    # what `show` prints is a working policy: saved under another id, it loads and judges alike
    copy = write(tmp_path / "copy.toml", shown.replace('id = "us-doj-bulk-data"', 'id = "my-doj"'))
    assert cli("policy", "check", copy) == 0 and "OK: policy my-doj, 4 rules" in capsys.readouterr().out
    bad = write(tmp_path / "bad.toml", "[policy]\nid='x'\nname='x'\n[[rule]]\nid='r'\naction='deny'\ntitle='t'\n"
                                       "lists=['no-such-list']\n")
    assert cli("policy", "check", copy, bad) == 2
    assert "no country list 'no-such-list'" in capsys.readouterr().err
    assert cli("policy", "show", "nope") == 2


def test_table_report_shows_the_verdict_and_reasoning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = har(tmp_path / "umeng.har", [(f"http://plbslog.umeng.com/c?aid={AD_ID}", CN_ALIBABA, "2026-03-01T10:00:00Z")])
    assert cli("audit", path, "--profile", PROFILE, "--policy", "us-doj-bulk-data") == 3
    captured = capsys.readouterr()
    assert "Policy verdict (us-doj-bulk-data): FAIL" in captured.out
    assert "DENY us-doj-bulk-data/covered-person" in captured.out
    assert "owner: umeng.com -> Umeng" in captured.out
    assert "policy verdict: fail (2 deny" in captured.err
    assert "sha256 " + datareach.audit([path]).inputs[0].sha256 in captured.out.replace("\n", "")


def test_api_takes_one_policy_on_its_own_or_policy_objects() -> None:
    one = datareach.audit([EXAMPLE], policies="us-doj-bulk-data")
    loaded = datareach.audit([EXAMPLE], policies=[load_policy("us-doj-bulk-data")])
    assert [p["id"] for p in one.policies] == ["us-doj-bulk-data"]
    assert one.violations == loaded.violations and not one.failed


def test_reasoning_reads_as_sentences(tmp_path: Path) -> None:
    # Baidu, Inc. ends with a full stop of its own: no double one
    path = har(tmp_path / "baidu.har", [(f"http://hmma.baidu.com/app.gif?aid={AD_ID}", CN_ALIBABA, "2026-03-01T10:00:00Z")])
    doc = run(path, "us-doj-bulk-data")
    assert doc["violations"]
    for v in doc["violations"]:
        assert ".." not in v["reasoning"] and v["reasoning"].startswith("The device sent advertising_id")


@pytest.mark.parametrize("name", ["location", "precise_location"])
def test_one_name_for_a_location_whichever_detector_found_it(tmp_path: Path, name: str) -> None:
    """Coordinates found by their form (no profile) are `location`, as the profile's are: a
    policy on `location` meets them; `precise_location`, the pattern detector's old name, is an alias."""
    path = har(tmp_path / "geo.har", [("http://graph.facebook.com/ping?lat=48.858370&lng=2.294481",
                                       US_FACEBOOK, "2026-03-01T10:00:00Z")])
    policy = write(tmp_path / "p.toml", f"""
[policy]
id = "no-location-to-meta"
name = "No location to Meta"

[[rule]]
id = "location-to-meta"
action = "warn"
title = "Location sent to Meta"
owners = ["meta*"]
data_types = ["{name}"]
""")
    doc = datareach.audit([path], policies=[policy]).to_dict()
    assert {(f["data_type"], f["source"]) for f in doc["findings"]} == {("location", "pattern")}
    [v] = doc["violations"]
    assert v["data_types"] == ["location"]
