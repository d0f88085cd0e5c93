"""The live worker's lines and the final report agree on the same flows.

The flows are the real ones of tests/data/mitm/ (kinds-11.0.2.mitm: HTTP/2, a WebSocket, TCP,
UDP and a DNS look-up; flows-11.0.2.mitm: four requests recorded by a real mitmdump), with
their server addresses rewritten by mitmproxy itself to public addresses (the recordings went
to loopback and documentation addresses, which never get a country), and the TCP flow's name
removed so that it is named from the DNS answer seen before it. The worker is given the records
the addon would hand it (the bridge's ``flow_record``), the report is ``datareach.audit`` of the
same flow file, and every host's live line must be the report destination's: country (or
scope) and AS of the server, owner and reach.

The geo data is what makes them disagree when one side runs a pipeline of its own: a .mmdb
imported into the knowledge base (``datareach kb import mmdb``) that gives countries and AS
numbers the shipped data does not have, and a ``--geo-db`` file that replaces the shipped data.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datareach.cli import main
from datareach.kb import reset
from datareach.mitm.worker import destination_line, owner_text, reach_text
from datareach.sources.mitm import FLOWCONV
from datareach.testing.mmdb import write_mmdb

DATA = Path(__file__).parent / "data" / "mitm"
sys.path.insert(0, str(DATA))
import harness  # noqa: E402

ROOT = Path(__file__).parents[1]
PROFILE = ROOT / "examples" / "profile.toml"
MITM_PYTHON = harness.mitmproxy_python()
pytestmark = pytest.mark.skipif(MITM_PYTHON is None, reason="mitmproxy not installed (make installs it)")

#: name in the flow -> (server address it is given, whether the flow loses its name)
SERVERS: dict[str, tuple[str, bool]] = {
    "graph.facebook.com": ("157.240.0.35", False),  # the shipped data: US, AS32934 (ARIN: Facebook, Inc.)
    "t.appsflyer.com": ("2d00::a", False),  # unallocated global unicast: the shipped data has nothing
    "api16-normal-c-useast1a.tiktokv.com": ("2d00::b", False),
    "collector.example.net": ("2d00::c", False),
    "ws.example.net": ("2d00::d", False),
    "quic.example.net": ("2d00::e", False),
    "chat.example.net": ("8.8.8.8", True),  # an address only: named dns.google by the DNS answer
}
HOSTS = {*SERVERS} - {"chat.example.net"} | {"dns.google", "192.0.2.53"}

#: Runs in mitmproxy's Python: the fixtures' flows with their servers moved (DNS look-ups first,
#: as on the wire), written with mitmproxy's FlowWriter.
REWRITE = """
import json, sys
from mitmproxy import io
out, servers, *inputs = sys.argv[1:]
servers = json.loads(servers)
flows = []
for path in inputs:
    with open(path, "rb") as f:
        flows.extend(io.FlowReader(f).stream())
flows.sort(key=lambda fl: fl.type != "dns")
for fl in flows:
    sc = fl.server_conn
    port = sc.address[1] if sc.address else 443
    name = fl.request.pretty_host if fl.type == "http" else (sc.address[0] if sc.address else None)
    if name in servers:
        ip, anonymous = servers[name]
        sc.peername = (ip, port)
        if anonymous:
            sc.sni = fl.client_conn.sni = None
            sc.address = (ip, port)
with open(out, "wb") as f:
    writer = io.FlowWriter(f)
    for fl in flows:
        writer.add(fl)
"""

#: What the test databases say (none of it is what the shipped data says).
IMPORTED = {
    "157.240.0.0/16": {"country_code": "FR", "asn": "AS32934", "as_name": "Facebook, Inc."},
    "2d00::/16": {"country_code": "JP", "asn": "AS64496", "as_name": "Test Net JP"},
    "8.8.8.0/24": {"country_code": "US", "asn": "AS15169", "as_name": "Google LLC"},
}
USER = {
    "157.240.0.0/16": {"country_code": "SE", "asn": "AS64500", "as_name": "Test Net SE"},
    "2d00::/16": {"country_code": "NO", "asn": "AS64501", "as_name": "Test Net NO"},
    "8.8.8.0/24": {"country_code": "FI", "asn": "AS64502", "as_name": "Test Net FI"},
}


@pytest.fixture(autouse=True)
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATAREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path / "cache"))
    reset()
    yield
    reset()


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """IMPORTED in the knowledge base, as `datareach kb import mmdb FILE` puts it there."""
    mmdb = write_mmdb(tmp_path / "country_asn.mmdb", "ipinfo country_asn.mmdb", IMPORTED,
                      description="ipinfo country_asn.mmdb")
    assert main(["kb", "import", "mmdb", str(mmdb)]) == 0, capsys.readouterr()
    capsys.readouterr()


@pytest.fixture
def user_mmdb(tmp_path: Path) -> Path:
    return write_mmdb(tmp_path / "user.mmdb", "ipinfo country_asn.mmdb", USER, description="ipinfo country_asn.mmdb")


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    assert MITM_PYTHON is not None
    out = tmp_path / "moved.mitm"
    subprocess.run([MITM_PYTHON, "-I", "-c", REWRITE, str(out), json.dumps(SERVERS),
                    str(DATA / "kinds-11.0.2.mitm"), str(DATA / "flows-11.0.2.mitm")], check=True)
    return out


def _records(flows: Path) -> list[dict[str, Any]]:
    """The flow records the addon hands the worker (the bridge's flow_record, in mitmproxy's Python)."""
    assert MITM_PYTHON is not None
    lines = subprocess.run([MITM_PYTHON, "-I", str(FLOWCONV), "read", str(flows)], capture_output=True,
                           check=True).stdout.splitlines()
    recs = [json.loads(line) for line in lines]
    assert recs[-1]["kind"] == "end"
    return [r for r in recs if r["kind"] not in ("start", "end")]


def _live(flows: Path, **options: Any) -> str:
    from datareach.detect.profile import load_profile
    from datareach.mitm.worker import LiveAnalyzer

    out = io.StringIO()
    analyzer = LiveAnalyzer(load_profile(PROFILE), out=out, **options)
    for rec in _records(flows):
        analyzer.handle(rec)
    assert analyzer.failures == 0
    return out.getvalue()


def _assert_agree(live: str, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every live line is the line of the report's destination for its host; returns those."""
    report = {d["host"]: d for d in doc["destinations"]}
    assert len(report) == len(doc["destinations"])  # mitmproxy flows have no app: one per host
    lines = live.splitlines()
    dest_lines = [x for x in lines if x.startswith("datareach: destination ")]
    live_hosts = [x.split()[2] for x in dest_lines]
    assert sorted(live_hosts) == sorted(report) == sorted(HOSTS), live
    for host, line in zip(live_hosts, dest_lines, strict=True):
        assert line == f"datareach: {destination_line(report[host])}"
    findings = [x for x in lines if x.startswith("datareach: finding ")]
    distinct = {(f["host"], f["data_type"], f["source"], f["location"], tuple(f["encoding"])) for f in doc["findings"]}
    assert len(findings) == len(distinct) > 0  # a line per new finding
    for line in findings:
        d = report[line.split()[2].rstrip(":")]
        assert line.endswith(f"; {owner_text(d['owner'])}; {reach_text(d['reach'])}"), line
    return report


def _line(live: str, host: str) -> str:
    return next(x for x in live.splitlines() if x.startswith(f"datareach: destination {host} "))


def test_the_shipped_data_lacks_what_the_test_databases_say() -> None:
    import pyarrow as pa

    from datareach.api import prepare

    rows = prepare().enrich(pa.array(["157.240.0.35", "2d00::a", "8.8.8.8"])).to_pylist()
    assert [(r["ip_scope"], r["country"], r["asn"]) for r in rows] == [
        ("public", "US", 32934), ("public", None, None), ("public", "US", 15169)]


def test_live_lines_agree_with_the_report_with_an_imported_mmdb(imported: None, flows: Path) -> None:
    import datareach

    live = _live(flows)
    doc = datareach.audit([flows], profile=PROFILE).to_dict()
    report = _assert_agree(live, doc)
    # the import filled what the shipped data lacks, on both sides, and kept what it has
    for host in ("t.appsflyer.com", "api16-normal-c-useast1a.tiktokv.com", "ws.example.net"):
        d = report[host]
        assert (d["ip_scope"], d["country"], d["asn"], d["as_org"]) == ("public", "JP", 64496, "Test Net JP")
        assert "JP (location)" in _line(live, host)
        assert f"[{SERVERS[host][0]} JP, AS64496 Test Net JP]" in _line(live, host)
    fb = report["graph.facebook.com"]
    # (what the shipped data has is kept: the import's AS name for it does not replace it)
    assert (fb["country"], fb["asn"], fb["as_org"]) == ("US", 32934, "Facebook, Inc.")
    assert "[157.240.0.35 US, AS32934 Facebook, Inc.]" in _line(live, "graph.facebook.com")
    google = report["dns.google"]  # the TCP flow to 8.8.8.8, named by the DNS look-up before it
    assert (google["name_source"], google["ips"], google["asn"]) == ("dns", ["8.8.8.8"], 15169)
    assert "[8.8.8.8 US, AS15169" in _line(live, "dns.google")
    assert "[192.0.2.53 documentation]" in _line(live, "192.0.2.53")


def test_the_worker_with_geo_db_agrees_with_its_report(imported: None, user_mmdb: Path, flows: Path,
                                                      tmp_path: Path) -> None:
    """``python -m datareach.mitm worker --geo-db FILE`` (as the addon starts it): the user's file
    replaces the shipped data and the imports, in the live lines and in the final report."""
    assert MITM_PYTHON is not None
    report = tmp_path / "live"
    stdin = "".join(json.dumps(r) + "\n" for r in _records(flows))
    run = subprocess.run([sys.executable, "-m", "datareach.mitm", "worker", "--profile", str(PROFILE),
                          "--geo-db", str(user_mmdb), "--report", str(report), "--flows", str(flows),
                          "--mitmproxy-python", MITM_PYTHON], input=stdin, capture_output=True, text=True,
                         env={**os.environ}, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert f"geo data: {user_mmdb}" in run.stdout
    doc = json.loads(report.with_suffix(".json").read_text())
    assert doc["inputs"][0]["errors"] == []
    assert any(s.get("path") == str(user_mmdb) for s in doc["data_sources"])
    dests = _assert_agree(run.stdout, doc)
    assert (dests["graph.facebook.com"]["country"], dests["graph.facebook.com"]["asn"]) == ("SE", 64500)
    assert "[157.240.0.35 SE, AS64500 Test Net SE]" in _line(run.stdout, "graph.facebook.com")
    assert (dests["t.appsflyer.com"]["country"], dests["t.appsflyer.com"]["asn"]) == ("NO", 64501)
    assert "NO (location)" in _line(run.stdout, "t.appsflyer.com")
    assert (dests["dns.google"]["country"], dests["dns.google"]["asn"]) == ("FI", 64502)


def test_live_lines_agree_with_geo_db_in_process(imported: None, user_mmdb: Path, flows: Path) -> None:
    import datareach

    live = _live(flows, geo_db=[user_mmdb])
    doc = datareach.audit([flows], profile=PROFILE, geo_db=[user_mmdb]).to_dict()
    dests = _assert_agree(live, doc)
    assert {(d["country"], d["asn"]) for h, d in dests.items() if h.endswith(".net") or "appsflyer" in h} == {
        ("NO", 64501)}


def test_the_worker_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from datareach.mitm import worker

    monkeypatch.setattr(worker, "LIMIT", 5)
    out = io.StringIO()
    analyzer = worker.LiveAnalyzer(None, out=out, detect=False)
    for i in range(40):
        host = f"h{i % 20}.example.com"
        analyzer.handle({"kind": "http", "ts": 1.7e9 + i, "scheme": "https", "method": "GET", "pretty_host": host,
                         "host": host, "port": 443, "path": "/", "http_version": "HTTP/1.1", "headers": [],
                         "body": "", "body_size": 0, "server_ip": f"2d00::{i}", "server_port": 443,
                         "server_id": f"s{i}"})
        analyzer.handle({"kind": "dns", "ts": 1.7e9 + i, "server_ip": "192.0.2.53", "server_port": 53,
                         "questions": [host], "answers": [[host, "A", f"198.51.100.{i}", 60]]})
        assert len(analyzer.state.conns) <= 5 and len(analyzer.destinations) <= 5
        assert len(analyzer._dns_by_ip) <= 5 and len(analyzer._conn_host) <= 5
    assert analyzer.failures == 0
    # the hosts forgotten are printed again when they come back; those remembered are not
    assert analyzer.destinations_seen == len(out.getvalue().splitlines()) > 20


def test_proxy_passes_geo_db_to_the_addon(tmp_path: Path, user_mmdb: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from datareach.mitm import proxy

    parser = argparse.ArgumentParser()
    proxy.add_proxy_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["proxy", "--geo-db", str(tmp_path / "missing.mmdb")])
    assert proxy.run_proxy(args) == 2
    assert "--geo-db file not found" in capsys.readouterr().err
    (tmp_path / "bad.mmdb").write_bytes(b"not a database")
    assert proxy.run_proxy(parser.parse_args(["proxy", "--geo-db", str(tmp_path / "bad.mmdb")])) == 2
    assert "bad.mmdb" in capsys.readouterr().err

    started: list[list[str]] = []

    class Proc:
        def __init__(self, cmd: list[str], **_kw: Any) -> None:
            started.append(cmd)

        def wait(self) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", Proc)  # mitmdump is not started
    args = parser.parse_args(["proxy", "--report", str(tmp_path / "r"), "--geo-db", str(user_mmdb),
                              "--geo-db", str(user_mmdb)])
    assert proxy.run_proxy(args) == 0
    assert f"datareach_geo_db={user_mmdb}{os.pathsep}{user_mmdb}" in started[0]


def test_the_addon_hands_geo_db_to_the_worker(tmp_path: Path, user_mmdb: Path) -> None:
    """A real mitmdump with the addon and ``datareach_geo_db``: the worker runs with the file and
    the final report is made with it."""
    assert MITM_PYTHON is not None
    up = harness.Upstream(tmp_path)
    report = tmp_path / "live"
    try:
        proxy = harness.Mitmdump(MITM_PYTHON, tmp_path, up, datareach=True,
                                 options={"datareach_report": str(report), "datareach_geo_db": str(user_mmdb)})
        try:
            status, _ = harness.curl(proxy.proxy, proxy.ca, "https://graph.facebook.com/x")
            assert status == 200
        finally:
            assert proxy.stop() == 0, proxy.stderr()
    finally:
        up.close()
    out = proxy.stdout()
    assert f"geo data: {user_mmdb}" in out, out
    doc = json.loads(report.with_suffix(".json").read_text())
    assert any(s.get("path") == str(user_mmdb) for s in doc["data_sources"])
    dest = doc["destinations"][0]
    assert f"datareach: {destination_line(dest)}" in out.splitlines()
