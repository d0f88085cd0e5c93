"""The command line and the Python API on real captures: exit statuses, JSON contract, naming."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import datareach
from datareach.cli import main

EXAMPLE = Path(__file__).parent.parent / "examples" / "mobile-app-session.pcapng"

DESTINATION_FIELDS = {
    "host", "registrable_domain", "ips", "ports", "name_source", "country", "asn", "as_org",
    "bytes_out", "bytes_in", "connections", "first_seen", "last_seen", "ech", "app",
}


def by_host(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {d["host"]: d for d in doc["destinations"]}


def test_naming_evidence(naming_pcap: Path) -> None:
    doc = datareach.audit([naming_pcap]).to_dict()
    d = by_host(doc)
    assert d["first.example.com"]["name_source"] == "dns"
    assert d["second.example.org"]["name_source"] == "dns"  # the most recent answer before it
    assert d["second.example.org"]["cname_chain"] == ["second.example.org", "edge.cdn.example.net"]
    assert d["sni.example.com"]["name_source"] == "sni"
    # one IP carried several names: all are kept
    assert set(d["sni.example.com"]["names"]) == {"first.example.com", "second.example.org"}
    assert d["tracker.example.net"]["name_source"] == "http"
    assert d["tracker.example.net"]["registrable_domain"] == "example.net"
    assert d["151.101.1.1"]["name_source"] == "ip"
    assert d["151.101.1.1"]["registrable_domain"] is None
    assert d["8.8.8.8"]["protocols"] == ["dns"]
    [ex] = doc["exchanges"]
    assert (ex["method"], ex["url"], ex["status"]) == ("GET", "http://Tracker.Example.NET:80/track?id=1", 302)


def test_geo_and_scopes(naming_pcap: Path) -> None:
    d = by_host(datareach.audit([naming_pcap]).to_dict())
    assert d["8.8.8.8"]["country"] == "US" and "GOOGLE" in (d["8.8.8.8"]["as_org"] or "").upper()
    assert d["8.8.8.8"]["ip_scope"] == "public"


def test_json_contract_on_the_example(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["audit", str(EXAMPLE), "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == "2.2"
    assert doc["policies"] == [] and doc["violations"] == [] and doc["summary"]["verdict"] is None
    [inp] = doc["inputs"]
    assert inp["format"] == "pcapng" and len(inp["sha256"]) == 64 and inp["errors"] == []
    assert inp["records_read"] > 0
    assert doc["destinations"] and all(set(d) >= DESTINATION_FIELDS for d in doc["destinations"])
    assert {s["kind"] for s in doc["data_sources"]} >= {"public-suffix-list"}
    assert all(s.get("date") for s in doc["data_sources"])
    assert doc["exchanges"] and all({"host", "method", "url", "status"} <= set(e) for e in doc["exchanges"])
    # the API returns the same content
    api = datareach.audit([EXAMPLE]).to_dict()
    for key in ("destinations", "exchanges", "dns", "summary"):
        assert api[key] == doc[key]


def test_example_names_come_from_every_kind_of_evidence() -> None:
    doc = datareach.audit([EXAMPLE]).to_dict()
    sources = {d["name_source"] for d in doc["destinations"]}
    assert {"sni", "quic", "http", "ip"} <= sources
    assert doc["summary"]["apps"]


def test_exit_status_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["audit"]) == 2
    assert main(["audit", str(tmp_path / "missing.pcap")]) == 2
    assert main(["audit", str(EXAMPLE), "--format", "xml"]) == 2
    assert main(["audit", str(EXAMPLE), "--geo-db", str(tmp_path / "nope.mmdb")]) == 2
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not an mmdb")
    assert main(["audit", str(EXAMPLE), "--geo-db", str(bad)]) == 2
    assert "not a MaxMind DB" in capsys.readouterr().err


def test_exit_status_4_keeps_the_rest(tmp_path: Path, naming_pcap: Path) -> None:
    good = naming_pcap
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(good.read_bytes()[:-30])
    out = tmp_path / "r.json"
    assert main(["audit", str(good), str(broken), "--format", "json", "-o", str(out)]) == 4
    doc = json.loads(out.read_text())
    assert doc["inputs"][0]["errors"] == []
    [err] = doc["inputs"][1]["errors"]
    assert err["fatal"] and err["offset"] > 0
    assert "sni.example.com" in by_host(doc)


def test_table_output_and_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "datareach", "audit", str(EXAMPLE)],
                          capture_output=True, text=True, check=True)
    assert "Registrable domain" in proc.stdout and "Data:" in proc.stdout
    helptext = subprocess.run([sys.executable, "-m", "datareach", "audit", "--help"],
                              capture_output=True, text=True, check=True).stdout
    assert "exit status" in helptext and "--geo-db" in helptext


def test_every_command_has_the_python_function_it_calls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI is a thin layer: audit, diff, policy check, kb import and proxy are functions."""
    from datareach import api
    from datareach.assess import PolicyError
    from datareach.kb.importers import KBImportError
    from datareach.mitm.proxy import ProxyError, ProxyOptions, proxy

    doc = datareach.audit([EXAMPLE]).to_dict()
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    # diff: the function and the command give the same document
    assert main(["diff", str(old), str(old), "--format", "json", "-o", str(tmp_path / "d.json")]) == 0
    by_cli = json.loads((tmp_path / "d.json").read_text())
    by_api = api.diff(old, doc)
    assert by_api["summary"] == by_cli["summary"] and by_api["summary"]["regressions"] == 0
    # policy check
    assert api.check_policy("us-doj-bulk-data").id == "us-doj-bulk-data"
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\nid = "x"\nname = "x"\n[[rule]]\nid = "r"\naction = "deny"\njurisdictions = ["XX"]\n')
    with pytest.raises(PolicyError):
        api.check_policy(bad)
    assert main(["policy", "check", str(bad)]) == 2
    # kb import: a wrong kind or file is refused with nothing changed
    with pytest.raises(KBImportError):
        api.import_dataset("no-such-kind", bad)
    # proxy: options that cannot work are refused before anything starts
    with pytest.raises(ProxyError, match="listen-port"):
        proxy(ProxyOptions(listen_port=0))
    assert main(["proxy", "--listen-port", "0"]) == 2
    assert "--listen-port must be 1-65535" in capsys.readouterr().err


def test_requests_of_the_same_time_keep_the_order_they_were_read(tmp_path: Path) -> None:
    """HAR times are in milliseconds: many requests share one. Their ids follow the file."""
    entries = [{
        "startedDateTime": "2024-05-01T10:00:00.000Z", "time": 1, "connection": str(i),
        "request": {"method": "GET", "url": f"https://host{i}.example/{path}", "httpVersion": "HTTP/1.1",
                    "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                     "content": {"size": 0, "mimeType": "text/plain"}, "redirectURL": "", "headersSize": -1,
                     "bodySize": 0},
        "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
    } for i in range(12) for path in ("login", "account")]
    har = tmp_path / "same-time.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},
                                       "entries": entries}}))
    doc = datareach.audit([har]).to_dict()
    assert [e["url"] for e in doc["exchanges"]] == [e["request"]["url"] for e in entries]
    assert [e["id"] for e in doc["exchanges"]] == [f"E0.{n}" for n in range(24)]
    assert [e["uid"] for e in doc["exchanges"]] == [f"C0.{i}" for i in range(12) for _ in range(2)]


def test_audit_reads_standard_input(tmp_path: Path) -> None:
    import gzip
    import os

    cli = [sys.executable, "-m", "datareach", "audit", "-", "--format", "json", "--no-progress"]
    env = dict(os.environ, TMPDIR=str(tmp_path))  # (where the spool goes: checked empty after)
    plain = json.loads(subprocess.run(cli, input=EXAMPLE.read_bytes(), capture_output=True, check=True, env=env).stdout)
    packed = json.loads(subprocess.run(cli, input=gzip.compress(EXAMPLE.read_bytes()), capture_output=True,
                                       check=True, env=env).stdout)
    assert plain["inputs"][0]["path"] == packed["inputs"][0]["path"] == "-"
    assert (plain["inputs"][0]["format"], packed["inputs"][0]["format"]) == ("pcapng", "pcapng+gzip")
    assert plain["destinations"] == packed["destinations"] == datareach.audit([EXAMPLE]).to_dict()["destinations"]
    assert list(tmp_path.iterdir()) == []



def test_a_folder_is_read_as_the_captures_below_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gzip

    out = tmp_path / "out.json"
    tmp_path = tmp_path / "in"
    tmp_path.mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b.pcapng").write_bytes(EXAMPLE.read_bytes())
    (tmp_path / "sub" / "a.pcapng.gz").write_bytes(gzip.compress(EXAMPLE.read_bytes()))
    (tmp_path / ".hidden" / "c.pcapng").write_bytes(EXAMPLE.read_bytes())
    (tmp_path / "notes.txt").write_text("not a capture")
    assert main(["audit", str(tmp_path), "--format", "json", "-o", str(out), "--no-progress"]) == 0
    doc = json.loads(out.read_text())
    assert [(i["path"], i["format"]) for i in doc["inputs"]] == [
        (str(tmp_path / "b.pcapng"), "pcapng"), (str(tmp_path / "sub" / "a.pcapng.gz"), "pcapng+gzip")]
    assert "1 files in the folders given are not in a format datareach reads" in capsys.readouterr().err
    # the API reports the file it does not read as an input with its error (it has no standard error)
    api = datareach.audit([tmp_path]).to_dict()["inputs"]
    assert [i["path"] for i in api] == [*(i["path"] for i in doc["inputs"]), str(tmp_path / "notes.txt")]
    assert "unrecognised input format" in api[-1]["errors"][0]["message"]
