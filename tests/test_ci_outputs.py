"""CI integration: several reports from one audit, SARIF (validated against the official OASIS
SARIF 2.1.0 schema, tests/data/sarif), JUnit XML (read with junitparser), CSV (read with the
csv module), ``--fail-on``, ``--format`` on every command, and the documented GitHub Actions
workflow (docs/ci.md) and pre-commit hook (.pre-commit-hooks.yaml), whose commands are run."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from junitparser import Error, Failure, JUnitXml

import datareach
from datareach.cli import main
from datareach.report.csv_report import cell, findings_path
from datareach.report.formats import format_of_path, plan_outputs
from datareach.report.junit import render_junit
from datareach.report.sarif import artifact_uri, render_sarif

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"
PROFILE = ROOT / "examples" / "profile.toml"
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
POLICIES = ["--policy", "us-doj-bulk-data", "--policy", "eu-gdpr-transfers"]


def validate_sarif(log: dict[str, Any]) -> None:
    assert SCHEMA["id"].endswith("/errata01/os/schemas/sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(log)
    # what GitHub code scanning requires beyond the schema: a location on every result, a rule
    # for every ruleId, a relative (or file:) artifact URI
    run = log["runs"][0]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    for r in run["results"]:
        assert r["locations"] and r["ruleId"] in rules
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not uri.startswith("/")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One audit of the example, four reports (SARIF, JUnit, JSON, CSV), the gate on warnings."""
    out = tmp_path_factory.mktemp("ci")
    old = Path.cwd()
    os.chdir(ROOT)  # the capture's path relative to the working directory, as in CI
    try:
        status = main(["audit", str(EXAMPLE.relative_to(ROOT)), "--profile", str(PROFILE), *POLICIES, "--fail-on", "warn",
                       "--format", "sarif,junit", "--format", "json,csv", "-o", str(out / "report")])
    finally:
        os.chdir(old)
    return out, status


@pytest.fixture(scope="module")
def doc(reports: tuple[Path, int]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((reports[0] / "report.json").read_bytes())
    return data


# ------------------------------------------------------------------------------------------
# --format and -o


@pytest.mark.parametrize(("formats", "outputs", "plan"), [
    ([], [], [("table", None)]),
    (["json"], [], [("json", None)]),
    (["json"], ["x.txt"], [("json", "x.txt")]),  # as before: --format wins over the extension
    ([], ["x.txt"], [("table", "x.txt")]),
    ([], ["report"], [("table", "report")]),  # a single -o of no known extension: the table, as before
    ([], ["a.json", "b.sarif", "c.xml", "d.csv", "e.md", "f.html", "g.sarif.json"],
     [("json", "a.json"), ("sarif", "b.sarif"), ("junit", "c.xml"), ("csv", "d.csv"), ("md", "e.md"),
      ("html", "f.html"), ("sarif", "g.sarif.json")]),
    (["json,sarif"], ["out/report"], [("json", "out/report.json"), ("sarif", "out/report.sarif")]),
    (["json", "sarif,junit"], ["out/r.json"], [("json", "out/r.json"), ("sarif", "out/r.sarif"), ("junit", "out/r.xml")]),
    (["json", "sarif"], ["a", "b"], [("json", "a"), ("sarif", "b")]),
    (["json,sarif"], ["a", "b"], [("json", "a"), ("sarif", "b")]),
])
def test_plan_outputs(formats: list[str], outputs: list[str], plan: list[tuple[str, str | None]]) -> None:
    assert plan_outputs(formats, outputs) == plan


@pytest.mark.parametrize(("formats", "outputs", "message"), [
    (["json,sarif"], [], "need -o"),
    ([], ["a.json", "b.bin"], "cannot tell the format of b.bin"),
    (["json", "sarif", "md"], ["a", "b"], "2 -o files for 3 formats"),
    ([], ["a.json", "a.json"], "two reports would be written to a.json"),
])
def test_plan_outputs_refuses(formats: list[str], outputs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        plan_outputs(formats, outputs)


def test_usage_errors_before_the_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(EXAMPLE), "--format", "json,sarif"]) == 2
    assert "need -o" in capsys.readouterr().err
    assert main(["audit", str(EXAMPLE), "--format", "json,nope", "-o", str(tmp_path / "r")]) == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert main(["audit", str(EXAMPLE), "-o", str(tmp_path / "a.json"), "-o", str(tmp_path / "missing" / "b.sarif")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()
    assert format_of_path("out/x.SARIF") == "sarif" and format_of_path(".json") is None


def test_several_reports_from_one_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The capture is audited once, whatever the number of reports; each agrees with the one
    written alone."""
    import datareach.api

    calls = []
    real = datareach.api.audit

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(datareach.api, "audit", counting)
    paths = [tmp_path / n for n in ("r.json", "r.sarif", "r.xml", "r.csv", "r.md", "r.html", "r.txt")]
    argv = ["audit", str(EXAMPLE), "--profile", str(PROFILE), *POLICIES]
    assert main([*argv, *(x for p in paths for x in ("-o", str(p)))]) == 0
    assert len(calls) == 1
    assert all(p.stat().st_size for p in paths) and (tmp_path / "r.findings.csv").exists()
    alone = tmp_path / "alone.json"
    assert main([*argv, "--format", "json", "-o", str(alone)]) == 0
    a, b = json.loads(alone.read_bytes()), json.loads(paths[0].read_bytes())
    for d in (a, b):
        d.pop("generated_at")
    assert a == b
    assert "# " in paths[4].read_text(encoding="utf-8") and "<!DOCTYPE html>" in paths[5].read_text(encoding="utf-8")
    assert "WeatherApp" in paths[6].read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# --fail-on


@pytest.mark.parametrize(("fail_on", "status"), [(None, 0), ("deny", 0), ("warn", 3), ("never", 0)])
def test_fail_on_the_example(fail_on: str | None, status: int, capsys: pytest.CaptureFixture[str]) -> None:
    """The example's verdict is warn (GDPR: a US recipient, adequate only under the DPF): exit 0
    unless --fail-on warn."""
    argv = ["audit", str(EXAMPLE), "--profile", str(PROFILE), "--policy", "eu-gdpr-transfers", "--format", "json"]
    assert main([*argv, *(["--fail-on", fail_on] if fail_on else [])]) == status
    out, err = capsys.readouterr()
    assert json.loads(out)["summary"]["verdict"] == "warn"
    assert "policy verdict: warn" in err


def test_fail_on_a_deny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datareach.testing.reports import gate_policy

    argv = ["audit", str(EXAMPLE), "--profile", str(PROFILE), "--policy", str(gate_policy(tmp_path)), "--format", "md"]
    assert main(argv) == 3
    assert main([*argv, "--fail-on", "warn"]) == 3
    assert main([*argv, "--fail-on", "never"]) == 0
    assert "--fail-on never" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# SARIF


def test_sarif_is_valid_and_complete(reports: tuple[Path, int], doc: dict[str, Any]) -> None:
    out, status = reports
    assert status == 3  # --fail-on warn on the example's warnings
    log = json.loads((out / "report.sarif").read_bytes())
    validate_sarif(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) == sum(len(p["rules"]) for p in doc["policies"])
    assert all(r["help"]["text"] and r["helpUri"].startswith("https://") for r in rules)
    results = run["results"]
    assert len(results) == len(doc["violations"]) > 0
    for r, v in zip(results, doc["violations"], strict=True):
        assert r["ruleId"] == f"{v['policy']}/{v['rule']}"
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["level"] == {"deny": "error", "warn": "warning"}[v["action"]]
        text = r["message"]["text"]
        assert v["host"] in text and all(j in text for j in v["jurisdictions"]) and v["reasoning"] in text
        loc = r["locations"][0]
        assert loc["physicalLocation"]["artifactLocation"]["uri"] == "examples/mobile-app-session.pcapng"
        assert loc["logicalLocations"][0]["name"] == v["host"]
        assert r["properties"]["reach_paths"] == v["paths"] and r["properties"]["bases"] == v["bases"]
        dest = next(d for d in doc["destinations"] if d["id"] == v["destination"])
        assert r["properties"]["owner"] == (dest["owner"] or {}).get("name")
    assert run["artifacts"][0]["hashes"]["sha-256"] == doc["inputs"][0]["sha256"]


def test_sarif_of_an_allowed_violation_and_of_no_policy(doc: dict[str, Any]) -> None:
    d = copy.deepcopy(doc)
    d["violations"][0]["allowed"] = {"reason": "SCCs signed 2025-01-10", "until": "2027-01-01"}
    log = json.loads(render_sarif(d))
    validate_sarif(log)
    assert log["runs"][0]["results"][0]["suppressions"][0]["justification"] == "SCCs signed 2025-01-10"
    d["policies"], d["violations"] = [], []
    empty = json.loads(render_sarif(d))
    validate_sarif(empty)
    assert empty["runs"][0]["results"] == []


def test_artifact_uri(tmp_path: Path) -> None:
    assert artifact_uri("caps/a b#1.pcap") == "caps/a%20b%231.pcap"
    assert artifact_uri(str(tmp_path / "x.pcap"), base=str(tmp_path)) == "x.pcap"
    assert artifact_uri("/elsewhere/x.pcap", base=str(tmp_path)) == "file:///elsewhere/x.pcap"
    assert artifact_uri("-") == "stdin"


# ------------------------------------------------------------------------------------------
# JUnit


def _cases(xml: JUnitXml) -> dict[str, Any]:
    return {f"{case.classname}/{case.name}": case for suite in xml for case in suite}


@pytest.mark.parametrize("fail_on", ["deny", "warn", "never"])
def test_junit_one_case_per_rule(doc: dict[str, Any], tmp_path: Path, fail_on: str) -> None:
    path = tmp_path / "r.xml"
    path.write_text(render_junit(doc, fail_on), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    cases = _cases(xml)
    assert set(cases) == {f"{p['id']}/{r['id']}" for p in doc["policies"] for r in p["rules"]}
    failing = {f"{v['policy']}/{v['rule']}" for v in doc["violations"] if v["allowed"] is None
               and (fail_on == "warn" or (fail_on == "deny" and v["action"] == "deny"))}
    for key, case in cases.items():
        failures = [r for r in case.result if isinstance(r, Failure)]
        assert bool(failures) == (key in failing), key
        if key in {f"{v['policy']}/{v['rule']}" for v in doc["violations"]} and key not in failing:
            assert case.system_out and "[warn]" in case.system_out
    assert xml.failures == len(failing)
    assert (fail_on == "warn") == bool(failing)  # the example has warnings only


def test_junit_from_the_command_line_and_input_errors(reports: tuple[Path, int], doc: dict[str, Any]) -> None:
    xml = JUnitXml.fromfile(str(reports[0] / "report.xml"))
    assert xml.failures > 0 and xml.tests == sum(len(p["rules"]) for p in doc["policies"])
    d = copy.deepcopy(doc)
    d["inputs"][0]["errors"] = [{"message": "truncated record", "offset": 1234, "fatal": True}]
    d["policies"], d["violations"] = [], []
    text = render_junit(d)
    errors = [r for suite in JUnitXml.fromstring(text) for case in suite for r in case.result if isinstance(r, Error)]
    assert len(errors) == 1 and "offset 1234" in (errors[0].text or "")


# ------------------------------------------------------------------------------------------
# CSV


def test_csv_destinations_and_findings(reports: tuple[Path, int], doc: dict[str, Any]) -> None:
    out = reports[0]
    with open(out / "report.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["host"] for r in rows] == [d["host"] for d in doc["destinations"]]
    for r, d in zip(rows, doc["destinations"], strict=True):
        assert int(r["bytes_out"]) == d["bytes_out"] and int(r["connections"]) == d["connections"]
        assert r["owner"] == ((d["owner"] or {}).get("name") or "")
        assert r["jurisdictions"] == "; ".join(sorted({x["jurisdiction"] for x in d["reach"] if x["jurisdiction"]}))
        assert r["data_types"] == "; ".join(d["data_types"])
    with open(out / "report.findings.csv", newline="", encoding="utf-8") as f:
        findings = list(csv.DictReader(f))
    assert [(r["id"], r["data_type"]) for r in findings] == [(x["id"], x["data_type"]) for x in doc["findings"]]
    assert findings_path("a/r.CSV") == "a/r.findings.csv" and findings_path("r") == "r.findings.csv"


def test_csv_cells_are_inert(doc: dict[str, Any]) -> None:
    from datareach.report.csv_report import render_destinations_csv

    assert cell("=HYPERLINK(\"http://evil\")") == "'=HYPERLINK(\"http://evil\")"
    assert [cell(x) for x in ("+1", "-1+2", "@SUM(A1)", "\tx", "\rx")] == ["'+1", "'-1+2", "'@SUM(A1)", "'\\x09x",
                                                                             "'\\x0dx"]
    assert cell("a\x1b[2J\u202eb") == "a\\x1b[2J\\u202eb" and cell(3) == 3 and cell(None) == ""
    d = copy.deepcopy(doc)
    d["destinations"][0].update(host="=cmd|' /C calc'!A0", app="@SUM(1+1)\nx")
    rows = list(csv.reader(render_destinations_csv(d).splitlines()))
    assert rows[1][1] == "'=cmd|' /C calc'!A0" and rows[1][2] == "'@SUM(1+1)\\x0ax"


# ------------------------------------------------------------------------------------------
# --format on every command


def test_kb_status_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "status", "--format", "json"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["kb", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == a
    assert main(["kb", "status", "--format", "table"]) == 0
    assert "curated knowledge base" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------
# The documented workflow and hook, run


@pytest.fixture()
def shim(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``datareach`` is this working tree's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "datareach"
    exe.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m datareach \"$@\"\n", encoding="utf-8")
    exe.chmod(0o755)
    src = str(Path(datareach.__file__).resolve().parents[1])
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": src}


def _workflow() -> dict[str, Any]:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    workflow: dict[str, Any] = next(y for b in blocks if isinstance(y := yaml.safe_load(b), dict) and "jobs" in y)
    return workflow


def test_documented_workflow_runs(tmp_path: Path, shim: dict[str, str]) -> None:
    workflow = _workflow()
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["audit"]["steps"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@"))
    repo = tmp_path / "repo"
    (repo / "captures").mkdir(parents=True)
    shutil.copy(EXAMPLE, repo / "captures" / "app-session.pcapng")
    shutil.copy(PROFILE, repo / "captures" / "profile.toml")
    ran = 0
    for step in steps:
        if "run" not in step or "pip install" in step["run"]:
            continue  # the install: the shim stands for it
        # as GitHub runs a `run:` step on Linux
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=repo,
                              env=shim, capture_output=True, text=True, timeout=300)
        ran += 1
        assert proc.returncode == 3, proc.stderr  # --fail-on warn on the example's warnings
        assert "policy verdict: warn" in proc.stderr
    assert ran == 1
    sarif = repo / upload["with"]["sarif_file"]
    validate_sarif(json.loads(sarif.read_bytes()))
    assert json.loads(sarif.read_bytes())["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
        "artifactLocation"]["uri"] == "captures/app-session.pcapng"
    assert JUnitXml.fromfile(str(repo / "reports" / "datareach.xml")).failures > 0
    assert {p.name for p in (repo / "reports").iterdir()} == {"datareach.sarif", "datareach.xml", "datareach.json",
                                                               "datareach.md"}


def test_pre_commit_hook_runs(tmp_path: Path, shim: dict[str, str]) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "datareach-audit")
    assert hook["language"] == "python" and hook["pass_filenames"]
    capture = tmp_path / "session.pcapng"
    shutil.copy(EXAMPLE, capture)
    assert re.search(hook["files"], capture.name) and not re.search(hook["files"], "notes.txt")
    # as pre-commit runs it: the entry, the args of .pre-commit-config.yaml, then the file names
    entry = shlex.split(hook["entry"])
    proc = subprocess.run([*entry, str(capture)], cwd=tmp_path, env=shim, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr  # us-doj-bulk-data: warnings only on the example
    assert "us-doj-bulk-data" in proc.stdout and "policy verdict: warn" in proc.stderr
    # the documented args: eu-gdpr-transfers, gated on warnings
    args = ["--policy", "eu-gdpr-transfers", "--fail-on", "warn"]
    assert args == yaml.safe_load(re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "ci.md").read_text(
        encoding="utf-8"), re.S)[-2])["repos"][0]["hooks"][0]["args"]
    proc = subprocess.run([*entry, *args, str(capture)], cwd=tmp_path, env=shim, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 3, proc.stderr
