"""``datareach diff``: the example app's version 1 and 2 through the real pipeline and CLI.

Version 2 of the example (examples/generate_example.py --app-version 2) adds Baidu's analytics
SDK, which sends the advertising ID and the precise location in clear to hmma.baidu.com on a
Chinese address, and drops AppsFlyer.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datareach
from datareach.cli import main
from datareach.report.diff import (
    AuditDocumentError,
    check_audit,
    diff_audits,
    load_audit,
    render_diff_markdown,
    render_diff_table,
)
from datareach.report.json_report import render_json
from datareach.testing.markdown import check_inert, render_cmark, render_markdown_it

ROOT = Path(__file__).resolve().parent.parent
V1 = ROOT / "examples" / "mobile-app-session.pcapng"
V2 = ROOT / "examples" / "mobile-app-session-v2.pcapng"
PROFILE = ROOT / "examples" / "profile.toml"
POLICY = "us-doj-bulk-data"
DATAREACH = Path(sys.executable).parent / "datareach"
#: The audit of V1 (with PROFILE and POLICY) that the previous release, datareach 0.1.0 of schema
#: 1.1 (commit ea78410), wrote: a real 1.x document, kept as it was written.
V1_SCHEMA_11 = ROOT / "tests" / "data" / "audits" / "mobile-app-session-1.1.json"
#: The capture that audit was made of: examples/mobile-app-session.pcapng as it was before the
#: example gained a decryptable HTTPS request (the 1.1 document is of this capture).
V1_OF_SCHEMA_11 = ROOT / "tests" / "data" / "captures" / "mobile-app-session-0.1.0.pcapng"


@functools.cache
def audited(path: Path) -> dict[str, Any]:
    return datareach.audit([path], profile=PROFILE, policies=[POLICY]).to_dict()


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """v1.json and v2.json written by the real CLI (`datareach audit --policy ... --format json`)."""
    tmp = tmp_path_factory.mktemp("audits")
    out = {}
    for name, capture in (("v1", V1), ("v2", V2)):
        out[name] = tmp / f"{name}.json"
        status = main(["audit", str(capture), "--profile", str(PROFILE), "--policy", POLICY,
                       "--format", "json", "-o", str(out[name]), "--no-progress"])
        assert status == (3 if name == "v2" else 0)  # v2 fails the policy on its own
    return out


def schema_11_audit() -> dict[str, Any]:
    """:data:`V1_SCHEMA_11`, a fresh copy. Its knowledge base is dated as today's: the stored
    audit is compared with today's audits for what the records say, not for the date the
    knowledge base was last checked (which every new record moves)."""
    from datareach.kb import knowledge_base

    doc: dict[str, Any] = json.loads(V1_SCHEMA_11.read_text(encoding="utf-8"))
    today = next(s["date"] for s in knowledge_base().data_sources() if s["kind"] == "knowledge-base")
    for s in doc["data_sources"]:
        if s.get("kind") == "knowledge-base":
            s["date"] = today
    return doc


def with_geo_of(doc: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (a stored document, made with the geo data of its day) with the geo answers of
    ``ref`` (an audit of the same capture now): so that what is compared is the rest, not a
    change of the shipped geo data (which ``diff`` reports, as it should)."""
    doc = copy.deepcopy(doc)
    now = {(d["app"], d["host"]): d for d in ref["destinations"]}
    for d in doc["destinations"]:
        r = now.get((d["app"], d["host"]))
        if r is None:
            continue
        for key in ("country", "countries", "asn", "as_org"):
            d[key] = r[key]
        servers = {s["ip"]: s for s in r["servers"]}
        for s in d["servers"]:
            for key in ("country", "asn", "as_org"):
                s[key] = servers.get(s["ip"], {}).get(key)
        d["reach"] = ([x for x in d["reach"] if x["basis"] != "location"]
                      + [x for x in r["reach"] if x["basis"] == "location"])
    doc["data_sources"] = ([s for s in doc["data_sources"] if not s["kind"].startswith("geo")]
                           + [s for s in ref["data_sources"] if s["kind"].startswith("geo")])
    # the knowledge base of its day, likewise (its date moves with every curated fact), and the
    # anycast / CDN edge ranges (which make some locations not determinable: in ``reach`` above)
    doc["data_sources"] = ([s for s in doc["data_sources"] if s["kind"] not in ("knowledge-base", "anycast-ranges")]
                           + [s for s in ref["data_sources"] if s["kind"] in ("knowledge-base", "anycast-ranges")])
    for key in ("countries", "jurisdictions"):
        doc["summary"][key] = ref["summary"][key]
    return doc


def by(entries: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(e[k] for k in keys): e for e in entries}


def test_v2_capture_is_what_the_generator_writes(tmp_path: Path) -> None:
    # the committed v2 capture is what `generate_example.py --app-version 2` writes. Bytes are only
    # identical with the same OpenSSL and aioquic versions, so what is compared is what an audit sees
    gen = ROOT / "examples" / "generate_example.py"
    out = tmp_path / "v2.pcapng"
    subprocess.run([sys.executable, str(gen), "--app-version", "2", "--out", str(out)], check=True,
                   capture_output=True)
    fresh = datareach.audit([out], profile=PROFILE).to_dict()
    committed = audited(V2)
    for key in ("destinations", "findings"):
        assert sorted((x["app"], x["host"], x.get("data_type")) for x in fresh[key]) == \
            sorted((x["app"], x["host"], x.get("data_type")) for x in committed[key])
    assert fresh["summary"]["owners"] == committed["summary"]["owners"]


def test_v1_to_v2_reports_the_update() -> None:
    d = diff_audits(audited(V1), audited(V2), old_name="v1", new_name="v2")
    added = by(d["destinations"]["added"], "app", "host")
    assert list(added) == [("WeatherApp", "hmma.baidu.com")]
    baidu = added[("WeatherApp", "hmma.baidu.com")]
    assert baidu["ultimate_parent"] == {"entity": "baidu", "name": "Baidu, Inc.", "hq_country": "CN"}
    assert baidu["countries"] == ["CN"]
    assert {"jurisdiction": "CN", "basis": "owner"} in baidu["reach"]
    assert {"jurisdiction": "CN", "basis": "location"} in baidu["reach"]
    assert baidu["data_types"] == ["advertising_id", "location"]
    assert "us-doj:precise-geolocation" in baidu["data_categories"]
    assert [e["host"] for e in d["destinations"]["removed"]] == ["launches.appsflyersdk.com"]
    assert d["destinations"]["rotated"] == [] and d["destinations"]["changed"] == []
    assert [o["name"] for o in d["owners"]["added"]] == ["Baidu, Inc."]
    assert [o["name"] for o in d["owners"]["removed"]] == ["AppsFlyer Ltd."]
    # AppsFlyer brought Israel (its headquarters); China was already reachable (Umeng, Bugly) ...
    assert [(j["jurisdiction"], j["basis"]) for j in d["jurisdictions"]["removed"]] == [("IL", "owner")]
    assert d["jurisdictions"]["added"] == []
    # ... but not the data: v1 sent nothing readable to a Chinese destination, v2 does
    reach = by(d["data_reach"]["added"], "jurisdiction", "data_type")
    assert reach[("CN", "advertising_id")]["hosts"] == ["hmma.baidu.com"]
    assert "us-doj:precise-geolocation" in reach[("CN", "location")]["categories"]
    assert set(by(d["findings"]["added"], "host", "data_type")) == {("hmma.baidu.com", "advertising_id"),
                                                                   ("hmma.baidu.com", "location")}
    assert d["findings"]["removed"] == []
    # the same kinds of data were already sent elsewhere in v1
    assert d["data_types"] == {"added": [], "removed": []}
    # the policy: Baidu gets two deny violations that v1 did not have; the Umeng/Bugly warnings stay
    regressions = by(d["violations"]["regressions"], "rule", "host")
    assert ("covered-person", "hmma.baidu.com") in regressions
    assert all(v["action"] == "deny" and v["allowed"] is None for v in regressions.values())
    still = by(d["violations"]["still_present"], "rule", "host")
    assert set(still) == {("covered-person-traffic", "android.bugly.qq.com"),
                          ("covered-person-traffic", "plbslog.umeng.com")}
    s = d["summary"]
    assert s["regression"] and s["changed"] and (s["verdict_old"], s["verdict_new"]) == ("warn", "fail")
    assert d["warnings"] == []  # same data, tool and policies
    assert d["old"]["inputs"][0]["sha256"] == hashlib.sha256(V1.read_bytes()).hexdigest()
    assert d["new"]["policies"][0]["id"] == POLICY
    assert d["schema_version"] == "1.0" and d["kind"] == "datareach-diff"


def test_v2_to_v1_is_no_regression() -> None:
    d = diff_audits(audited(V2), audited(V1))
    assert not d["summary"]["regression"]
    assert {v["host"] for v in d["violations"]["removed"]} == {"hmma.baidu.com"}
    assert [e["host"] for e in d["destinations"]["added"]] == ["launches.appsflyersdk.com"]


def test_cli_exit_status(docs: dict[str, Path], tmp_path: Path) -> None:
    # through the installed console script, as CI would run it
    same = subprocess.run([str(DATAREACH), "diff", str(docs["v2"]), str(docs["v2"])], capture_output=True, text=True)
    assert same.returncode == 0, same.stderr
    assert "no changes" in same.stdout
    assert "same capture files" in same.stdout  # the one warning: same inputs
    worse = subprocess.run([str(DATAREACH), "diff", str(docs["v1"]), str(docs["v2"])], capture_output=True,
                           text=True)
    assert worse.returncode == 3, worse.stderr
    assert "policy regression" in worse.stderr and "hmma.baidu.com" in worse.stdout
    better = subprocess.run([str(DATAREACH), "diff", str(docs["v2"]), str(docs["v1"])], capture_output=True,
                            text=True)
    assert better.returncode == 0, better.stderr


def test_cli_formats(docs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    assert main(["diff", str(docs["v1"]), str(docs["v2"]), "--format", "json", "-o", str(out)]) == 3
    d = json.loads(out.read_text(encoding="utf-8"))
    assert d == diff_audits(load_audit(docs["v1"]), load_audit(docs["v2"]), old_name=str(docs["v1"]),
                            new_name=str(docs["v2"]))
    md_path = tmp_path / "d.md"
    assert main(["diff", str(docs["v1"]), str(docs["v2"]), "--format", "md", "-o", str(md_path)]) == 3
    md = md_path.read_text(encoding="utf-8")
    assert md.startswith("## datareach diff: ❌ policy regression: 2 new deny violation(s)")
    assert "`WeatherApp: hmma.baidu.com`" in md and "`us-doj-bulk-data/covered-person`" in md
    for render in (render_markdown_it, render_cmark):
        check_inert(md, render(md))
    table = render_diff_table(d)
    assert "hmma.baidu.com" in table and "verdict warn -> fail" in table


def test_rotation_within_a_registrable_domain() -> None:
    old = audited(V1)
    new = copy.deepcopy(old)
    dest = next(x for x in new["destinations"] if x["host"] == "api.weatherapp.example.com")
    dest["host"] = "api-eu-7.weatherapp.example.com"
    dest["data_types"] = ["email"]
    d = diff_audits(old, new)
    assert d["destinations"]["added"] == [] and d["destinations"]["removed"] == []
    [rot] = d["destinations"]["rotated"]
    assert rot["registrable_domain"] == "example.com"
    assert rot["hosts_added"] == ["api-eu-7.weatherapp.example.com"]
    assert rot["hosts_removed"] == ["api.weatherapp.example.com"]
    # the domain is compared as a whole, so data new to it is shown (a rotation hides no data)
    assert rot["data_types_added"] == ["email"]
    assert not d["summary"]["regression"]
    # the same rename to a host run by someone else is a new destination, not a rotation
    dest["owner"] = {**(dest["owner"] or {"entity": "other", "name": "Other Corp", "hq_country": "CN"}),
                     "ultimate_parent": {"entity": "other", "name": "Other Corp", "hq_country": "CN"}}
    d = diff_audits(old, new)
    assert [e["host"] for e in d["destinations"]["added"]] == ["api-eu-7.weatherapp.example.com"]
    # the old host's domain is still there, run by the same company (events.weatherapp.example.com):
    # its disappearance is a rotation
    assert d["destinations"]["removed"] == []
    [rot] = d["destinations"]["rotated"]
    assert (rot["hosts_added"], rot["hosts_removed"]) == ([], ["api.weatherapp.example.com"])
    assert rot["owners_added"] == ["Other Corp"]


def test_changed_destination_and_data_source_warnings() -> None:
    old = audited(V1)
    new = copy.deepcopy(old)
    fb = next(x for x in new["destinations"] if x["host"] == "graph.facebook.com")
    fb["data_types"] = ["email"]
    fb["reach"].append({"jurisdiction": "FR", "name": "France", "basis": "location", "path": [], "laws": [],
                        "linked_from": None})
    for s in new["data_sources"]:
        if s["kind"] == "knowledge-base":
            s["version"], s["date"] = "0.2.0", "2027-01-10"
        elif s["kind"].startswith("geo"):
            s["date"] = "2026-12-01"
    new["detection"]["profile"] = False
    d = diff_audits(old, new)
    [changed] = d["destinations"]["changed"]
    assert changed["host"] == "graph.facebook.com"
    assert changed["data_types_added"] == ["email"]
    assert changed["reach_added"] == [{"jurisdiction": "FR", "basis": "location"}]
    assert [(j["jurisdiction"], j["basis"]) for j in d["jurisdictions"]["added"]] == [("FR", "location")]
    text = "\n".join(d["warnings"])
    assert "the knowledge base differs" in text and "0.2.0 of 2027-01-10" in text
    assert "the geo data differs" in text
    assert "OLD was audited with a profile and NEW without" in text
    assert {c["kind"] for c in d["data_sources_changed"]} >= {"knowledge-base"}


def test_schema_10_and_11_documents_together() -> None:
    old = schema_11_audit()
    assert old["schema_version"] == "1.1"
    old["schema_version"] = "1.0"
    for key in ("policies", "violations"):
        del old[key]
    for key in ("violations", "verdict"):
        old["summary"].pop(key, None)
    new = audited(V2)
    d = diff_audits(old, new)
    assert d["summary"]["regression"]  # every deny of NEW is new
    assert any("different policies" in w for w in d["warnings"])
    assert d["old"]["verdict"] is None
    assert not diff_audits(new, old)["summary"]["regression"]


def test_allowed_and_escalated_violations() -> None:
    v1, v2 = audited(V1), audited(V2)
    allowed = copy.deepcopy(v2)
    for v in allowed["violations"]:
        if v["action"] == "deny":
            v["allowed"] = {"reason": "vendor contract under CISA requirements", "until": None}
    assert not diff_audits(v1, allowed)["summary"]["regression"]
    # an allow entry that lapsed: the deny comes back, and that is a regression
    d = diff_audits(allowed, v2)
    assert d["summary"]["regression"] and d["violations"]["added"] == []
    assert all(v["allowed_old"] is not None for v in d["violations"]["still_present"] if v["action"] == "deny")
    # a warning that became a deny is a regression too
    escalated = copy.deepcopy(v1)
    for v in escalated["violations"]:
        v["action"] = "deny"
    assert diff_audits(v1, escalated)["summary"]["regressions"] == 2


# ------------------------------------------------------------------------------------------
# Schema 1.x and 2.x together


def _no_changes(d: dict[str, Any]) -> None:
    s = d["summary"]
    assert not s["changed"] and not s["regression"], s
    for section in ("destinations", "owners", "jurisdictions", "data_types", "data_categories", "data_reach",
                    "findings"):
        assert all(not d[section][part] for part in d[section]), (section, d[section])
    assert d["violations"]["added"] == d["violations"]["removed"] == d["violations"]["regressions"] == []
    assert len(d["violations"]["still_present"]) == 2
    assert any("same capture files" in w for w in d["warnings"])


#: The one destination whose attribution changed with 2.2 (owner is not host): its name CNAMEs to
#: an AWS load balancer, which made AWS its owner before; since 2.2 AWS hosts it, owner unknown.
CNAMED_TO_AWS = "api.weatherapp.example.com"


def as_22_attribution(doc: dict[str, Any]) -> dict[str, Any]:
    """The stored 1.1 document with its one pre-2.2 CNAME-to-a-cloud owner stated as 2.2 states it."""
    doc = copy.deepcopy(doc)
    for d in doc["destinations"]:
        if d["host"] == CNAMED_TO_AWS:
            assert d["owner"]["basis"] == "cname" and d["owner"]["entity"] == "aws"
            d["owner"] = None
            d["reach"] = [r for r in d["reach"] if r["basis"] != "owner"]
    return doc


def test_the_22_attribution_change_is_reported_as_exactly_that() -> None:
    new = audited(V1_OF_SCHEMA_11)
    changed = diff_audits(with_geo_of(schema_11_audit(), new), new)["destinations"]["changed"]
    assert [(c["host"], c["owners_removed"], c["reach_removed"]) for c in changed] == [
        (CNAMED_TO_AWS, ["Amazon.com, Inc."], [{"jurisdiction": "US", "basis": "owner"}])]


def test_schema_11_audit_of_the_same_capture_has_no_changes(docs: dict[str, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # the previous release's 1.1 audit and this one's 2.x audit of the same capture: 2.0 changed
    # how records refer to each other (ids instead of list positions), which is no change
    new = audited(V1_OF_SCHEMA_11)
    old = with_geo_of(as_22_attribution(schema_11_audit()), new)  # (the 1.1 audit used the geo data of its day)
    assert old["schema_version"] == "1.1" and new["schema_version"] == "2.2"
    assert isinstance(old["violations"][0]["destination"], int)
    assert isinstance(new["violations"][0]["destination"], str)
    _no_changes(diff_audits(old, new))
    _no_changes(diff_audits(new, old))
    # through the CLI, from the files
    v1 = docs["v1"].with_name("v1-of-1.1.json")
    assert main(["audit", str(V1_OF_SCHEMA_11), "--profile", str(PROFILE), "--policy", POLICY, "--format", "json",
                 "-o", str(v1), "--no-progress"]) == 0
    stored = docs["v1"].with_name("v1-1.1-as-2.2-with-todays-geo.json")
    stored.write_text(json.dumps(old), encoding="utf-8")
    assert main(["diff", str(stored), str(v1)]) == 0
    assert "no changes" in capsys.readouterr().out
    assert main(["diff", str(v1), str(stored), "--format", "md"]) == 0
    assert "✅ no changes" in capsys.readouterr().out


def test_schema_11_and_20_documents_diff_alike() -> None:
    # v1 as 1.1 against v2 as 2.0 says what v1 as 2.0 against v2 says
    old20, new = audited(V1_OF_SCHEMA_11), audited(V2)
    old11 = with_geo_of(as_22_attribution(schema_11_audit()), old20)
    # kinds of data source added since the 1.1 document was made (shipped datasets) are not what this compares
    known = {s["kind"] for s in old11["data_sources"]}
    old11["data_sources"] += [s for s in old20["data_sources"] if s["kind"] not in known]
    d11, d20 = diff_audits(old11, new), diff_audits(old20, new)
    assert d11["old"]["schema_version"] == "1.1" and d20["old"]["schema_version"] == "2.2"
    assert {k: v for k, v in d11.items() if k != "old"} == {k: v for k, v in d20.items() if k != "old"}
    assert d11["summary"]["regression"]
    assert {k: v for k, v in diff_audits(new, old11).items() if k != "new"} == \
        {k: v for k, v in diff_audits(new, old20).items() if k != "new"}


def test_references_are_checked_by_the_documents_schema() -> None:
    # each major version's references have their own shape: an index in 1.x, an id in 2.x
    v20 = audited(V1)
    index_in_20 = copy.deepcopy(v20)
    index_in_20["violations"][0]["destination"] = 10
    with pytest.raises(AuditDocumentError, match=r"\$\.violations\[0\]\.destination: expected a string, found a number"):
        check_audit(index_in_20)
    index_in_20 = copy.deepcopy(v20)
    index_in_20["findings"][1]["exchange"] = 1
    with pytest.raises(AuditDocumentError, match=r"\$\.findings\[1\]\.exchange: expected a string, found a number"):
        check_audit(index_in_20)
    no_id = copy.deepcopy(v20)
    del no_id["destinations"][2]["id"]
    with pytest.raises(AuditDocumentError, match=r"\$\.destinations\[2\]: no 'id'"):
        check_audit(no_id)
    v11 = schema_11_audit()
    assert check_audit(v11) is v11  # no ids there: none expected
    id_in_11 = copy.deepcopy(v11)
    id_in_11["findings"][0]["exchange"] = "E0.1"
    with pytest.raises(AuditDocumentError, match=r"\$\.findings\[0\]\.exchange: expected an integer, found a string"):
        check_audit(id_in_11)
    id_in_11 = copy.deepcopy(v11)
    id_in_11["violations"][1]["findings"] = ["F0"]
    with pytest.raises(AuditDocumentError,
                       match=r"\$\.violations\[1\]\.findings: expected a list of integers, found a list"):
        check_audit(id_in_11)


# ------------------------------------------------------------------------------------------
# Bad input


def _write(tmp: Path, name: str, data: bytes | str) -> Path:
    p = tmp / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def _bad_cases(tmp: Path, good: Path) -> list[tuple[Path, str]]:
    raw = good.read_bytes()
    doc = json.loads(raw)
    v3 = copy.deepcopy(doc)
    v3["schema_version"] = "3.0"  # a major version no datareach has written yet
    wrong_type = copy.deepcopy(doc)
    wrong_type["destinations"][3]["host"] = 5
    wrong_owner = copy.deepcopy(doc)
    wrong_owner["destinations"][1]["owner"]["ultimate_parent"] = "Alphabet"
    other_tool = copy.deepcopy(doc)
    other_tool["tool"]["name"] = "someone-else"
    return [
        (_write(tmp, "garbage.json", b"\x89PNG\r\n\x1a\n\x00\x00"), "not JSON"),
        (_write(tmp, "empty.json", b""), "empty file"),
        (_write(tmp, "list.json", "[1, 2, 3]"), "the JSON is a list, not an object"),
        (_write(tmp, "other.json", '{"hello": "world"}'), "no 'schema_version'"),
        (_write(tmp, "explain.json", '{"schema_version": "1.0", "date": "2026-01-01", "hosts": []}'),
         "an `explain` document"),
        (_write(tmp, "truncated.json", raw[: len(raw) // 2]), "truncated?"),
        (_write(tmp, "schema3.json", json.dumps(v3)), "schema_version 3.0 is not supported"),
        (_write(tmp, "badversion.json", json.dumps({**doc, "schema_version": 1.1})),
         "$.schema_version: expected \"MAJOR.MINOR\""),
        (_write(tmp, "wrongtype.json", json.dumps(wrong_type)),
         "$.destinations[3].host: expected a string, found a number"),
        (_write(tmp, "wrongowner.json", json.dumps(wrong_owner)),
         "$.destinations[1].owner.ultimate_parent: expected an object, found a string"),
        (_write(tmp, "tool.json", json.dumps(other_tool)), "not a datareach document"),
        (_write(tmp, "deep.json", "[" * 100_000 + "]" * 100_000), "not JSON"),
        (tmp / "missing.json", "cannot read the file"),
    ]


def test_bad_inputs_exit_2_naming_file_and_problem(docs: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    for path, why in _bad_cases(tmp_path, docs["v1"]):
        for argv in (["diff", str(path), str(docs["v2"])], ["diff", str(docs["v1"]), str(path)]):
            assert main(argv) == 2, path
            err = capsys.readouterr().err
            assert f"datareach: error: {path}: " in err, err
            assert why in err, (why, err)


def test_check_audit_accepts_the_real_documents(docs: dict[str, Path]) -> None:
    for p in docs.values():
        doc = load_audit(p)
        assert check_audit(doc) is doc


@functools.cache
def _v1_json() -> bytes:
    return orjson.dumps(audited(V1))


_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                            max_leaves=6)


def _mutate(doc: Any, path: list[int], value: Any) -> Any:
    """Replace the node reached by following ``path`` (indexes taken modulo each level's size)."""
    node = doc
    for step in path:
        if isinstance(node, dict) and node:
            key = sorted(node)[step % len(node)]
            if not isinstance(node[key], dict | list) or not node[key] or step % 3 == 0:
                node[key] = value
                return doc
            node = node[key]
        elif isinstance(node, list) and node:
            i = step % len(node)
            if not isinstance(node[i], dict | list) or not node[i] or step % 3 == 0:
                node[i] = value
                return doc
            node = node[i]
        else:
            return value
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.lists(st.integers(0, 1000), min_size=1, max_size=6), value=_json_values,
       cut=st.integers(0, 1 << 20), flip=st.integers(0, 1 << 20))
def test_mutated_documents_are_refused_or_diffed_never_crash(path: list[int], value: Any, cut: int,
                                                             flip: int) -> None:
    raw = _v1_json()
    base = json.loads(raw)
    doc = _mutate(copy.deepcopy(base), path, value)
    candidates: list[Any] = [doc]
    b = bytearray(raw[: max(1, cut % (len(raw) + 1))])
    b[flip % len(b)] ^= 0x5A
    with contextlib.suppress(orjson.JSONDecodeError):
        candidates.append(orjson.loads(bytes(b)))
    for cand in candidates:
        try:
            d = diff_audits(base, cand)
        except AuditDocumentError as e:
            assert str(e).startswith("NEW: ")
            continue
        render_json(d)
        render_diff_table(d)
        render_diff_markdown(d)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.lists(st.integers(0, 1000), min_size=1, max_size=6), value=_json_values)
def test_mutated_schema_11_documents_are_refused_or_diffed_never_crash(path: list[int], value: Any) -> None:
    base = schema_11_audit()
    doc = _mutate(copy.deepcopy(base), path, value)
    for old, new in ((base, doc), (doc, audited(V1))):
        try:
            d = diff_audits(old, new)
        except AuditDocumentError as e:
            assert str(e).startswith("NEW: " if new is doc else "OLD: ")
            continue
        render_json(d)
        render_diff_table(d)
        render_diff_markdown(d)
