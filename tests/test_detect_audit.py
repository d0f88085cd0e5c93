"""Detection through the whole pipeline: the example capture, its profile, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import datareach
from datareach.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"
PROFILE = ROOT / "examples" / "profile.toml"


def findings(doc: dict) -> list[dict]:  # type: ignore[type-arg]
    return doc["findings"]  # type: ignore[no-any-return]


def test_example_leaks_are_found_with_their_encoding_chain() -> None:
    doc = datareach.audit([EXAMPLE], profile=PROFILE).to_dict()
    fs = [f for f in findings(doc) if f["source"] == "profile"]
    by_type = {f["data_type"]: f for f in fs if f["host"] == "t.adtrack.example.net"}
    aid = by_type["android_id"]
    assert aid["location"] == "query u"
    assert "base64" in " ".join(aid["encoding"]) and any(e.startswith("json") for e in aid["encoding"])
    email = by_type["email"]
    assert email["encoding"][-1].startswith("sha256")
    assert "us-doj:covered-personal-identifiers" in aid["categories"]
    assert "sent_in_cleartext" in aid["categories"]
    # the advertising ID in clear JSON to the app's own analytics
    events = [f for f in fs if f["host"] == "events.weatherapp.example.com"]
    assert {"advertising_id", "location"} <= {f["data_type"] for f in events}
    # the destination table knows what each host received
    dest = {d["host"]: d for d in doc["destinations"]}
    assert {"android_id", "email"} <= set(dest["t.adtrack.example.net"]["data_types"])
    assert doc["detection"]["profile"] is True


def test_values_are_redacted_unless_revealed() -> None:
    secret = "6f1c2a9be4d07a35"  # examples/profile.toml's android_id
    hidden = json.dumps(datareach.audit([EXAMPLE], profile=PROFILE).to_dict())
    assert secret not in hidden
    assert "u=[redacted]" in hidden  # the request URL that carried it
    shown = datareach.audit([EXAMPLE], profile=PROFILE, reveal=True).to_dict()
    assert any(f.get("value") == secret for f in findings(shown))


def test_patterns_without_a_profile() -> None:
    doc = datareach.audit([EXAMPLE]).to_dict()
    pattern_types = {f["data_type"] for f in findings(doc) if f["source"] == "pattern"}
    assert "advertising_id" in pattern_types  # a UUID under the key "gaid"
    assert all(f["source"] == "pattern" for f in findings(doc))


def test_no_detect() -> None:
    doc = datareach.audit([EXAMPLE], detect=False).to_dict()
    assert doc["findings"] == [] and doc["detection"]["enabled"] is False


def test_cli_profile_init_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "p.toml"
    assert main(["profile", "init", str(target)]) == 0
    assert "advertising_id" in target.read_text()
    assert main(["profile", "init", str(target)]) == 2  # never overwrites
    bad = tmp_path / "bad.toml"
    bad.write_text('shoe_size = "44"\n')
    assert main(["audit", str(EXAMPLE), "--profile", str(bad)]) == 2
    assert "unknown key" in capsys.readouterr().err
    out = tmp_path / "r.json"
    # the template's placeholders are refused until edited, naming the field
    assert main(["audit", str(EXAMPLE), "--profile", str(target), "--format", "json", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "advertising_id is still the placeholder REPLACE-ME" in err
    edited = target.read_text().replace('"REPLACE-ME"', '"x"', 1)
    edited = "\n".join(line for line in edited.splitlines() if "REPLACE-ME" not in line or line.startswith("#"))
    target.write_text(edited.replace('advertising_id = "x"', 'advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"'))
    assert main(["audit", str(EXAMPLE), "--profile", str(target), "--format", "json", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["detection"]["enabled"] is True


def test_table_lists_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(EXAMPLE), "--profile", str(PROFILE)]) == 0
    out = capsys.readouterr().out
    assert "Personal data found in requests" in out and "sha256" in out
    assert "6f1c2a9be4d07a35" not in out


def test_leak_in_a_har_entry(tmp_path: Path) -> None:
    import base64
    import gzip
    import hashlib

    digest = hashlib.sha256(b"tester.weatherapp@example.org").hexdigest()
    body = gzip.compress(json.dumps({"user": {"eh": digest}, "n": 1}).encode())
    har = {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [{
        "startedDateTime": "2026-01-02T03:04:05.000Z", "time": 12,
        "request": {"method": "POST", "url": "https://sdk.example.com/v1/track", "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "Content-Encoding", "value": "gzip"},
                                {"name": "Content-Type", "value": "application/json"}],
                    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": len(body),
                    "postData": {"mimeType": "application/json", "encoding": "base64",
                                 "text": base64.b64encode(body).decode()}},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                     "content": {"size": 2, "mimeType": "application/json"}, "redirectURL": "",
                     "headersSize": -1, "bodySize": 2},
        "cache": {}, "timings": {"send": 0, "wait": 10, "receive": 2}}]}}
    path = tmp_path / "leak.har"
    path.write_text(json.dumps(har))
    doc = datareach.audit([path], profile=PROFILE).to_dict()
    [f] = [f for f in findings(doc) if f["data_type"] == "email"]
    assert f["encoding"] == ["body(gzip)", "json $.user.eh", "sha256(lower(email))"]
    assert "sent_in_cleartext" not in f["categories"]  # https
