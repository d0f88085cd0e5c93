"""Live audits end to end: a real mitmdump with datareach's addon, a real HTTPS server on loopback
(its own certificate), real clients (curl) trusting mitmproxy's fresh CA; the proxy is stopped
with SIGINT as Ctrl-C would, then the live lines and the final reports are checked.

Requests name real hosts (graph.facebook.com, ...) so that owners and reach are known; the test
redirect addon sends every upstream connection to the loopback server, so nothing leaves the
machine, while the flows keep the names the client used (SNI, Host).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "mitm"
sys.path.insert(0, str(DATA))
import harness  # noqa: E402

ROOT = Path(__file__).parents[1]
PROFILE = ROOT / "examples" / "profile.toml"
AID = "a3e3fce2-78b0-4105-ada0-748f79470c71"
ANDROID_ID = "6f1c2a9be4d07a35"
EMAIL = "Tester.WeatherApp@example.org"
MITM_PYTHON = harness.mitmproxy_python()
pytestmark = pytest.mark.skipif(MITM_PYTHON is None, reason="mitmproxy not installed (make installs it)")


@pytest.fixture
def upstream(tmp_path: Path):  # type: ignore[no-untyped-def]
    up = harness.Upstream(tmp_path)
    yield up
    up.close()


def _leaks() -> list[tuple[str, bytes | None, dict[str, str], str, str, tuple[str, ...]]]:
    """(url, body, headers, host, data_type, encoding chain expected)."""
    email_sha = hashlib.sha256(EMAIL.lower().encode()).hexdigest()
    aid_b64 = base64.b64encode(AID.encode()).decode()
    form_json = urllib.parse.urlencode({"payload": json.dumps({"device": {"aid": ANDROID_ID}})}).encode()
    return [
        (f"https://graph.facebook.com/v19.0/activities?advertiser_id={AID}", None, {},
         "graph.facebook.com", "advertising_id", ("query advertiser_id",)),
        (f"https://t.appsflyer.com/api/v4/androidevent?x={aid_b64}", None, {},
         "t.appsflyer.com", "advertising_id", ("query x", "base64")),
        ("https://api16-normal-c-useast1a.tiktokv.com/service/2/app_log/",
         json.dumps({"header": {"eh": email_sha}}).encode(), {"Content-Type": "application/json"},
         "api16-normal-c-useast1a.tiktokv.com", "email", ("body", "json $.header.eh", "sha256(lower(email))")),
        ("https://app-measurement.com/a", form_json, {"Content-Type": "application/x-www-form-urlencoded"},
         "app-measurement.com", "android_id", ("body", "form payload", "percent", "json $.device.aid")),
        ("http://mc.yandex.ru/watch/1?lat=52.516274&lon=13.377704", None, {},
         "mc.yandex.ru", "location", ("query", "lat=X @6 decimals")),
    ]


def test_live_lines_and_final_report(tmp_path: Path, upstream: harness.Upstream) -> None:
    assert MITM_PYTHON is not None
    report = tmp_path / "live"
    proxy = harness.Mitmdump(MITM_PYTHON, tmp_path, upstream, datareach=True,
                             options={"datareach_profile": str(PROFILE), "datareach_report": str(report)})
    try:
        for url, body, headers, *_ in _leaks():
            status, answer = harness.curl(proxy.proxy, proxy.ca, url, data=body, headers=headers)
            assert (status, answer) == (200, b'{"ok":true}'), proxy.stderr()
        # the same leak again: no new line for it
        status, _ = harness.curl(proxy.proxy, proxy.ca, _leaks()[0][0])
        assert status == 200
        # a request that never gets an answer: the upstream is not there
        harness.curl(proxy.proxy, proxy.ca, f"http://127.0.0.1:{harness.free_port()}/nothing?aid={AID}")
    finally:
        code = proxy.stop()
    assert code == 0, proxy.stderr()
    assert len(upstream.received()) == 6
    out = proxy.stdout()
    lines = [x for x in out.splitlines() if x.startswith("datareach: ")]
    dest_lines = [x for x in lines if x.startswith("datareach: destination ")]
    finding_lines = [x for x in lines if x.startswith("datareach: finding ")]
    assert len(dest_lines) == 6, out  # five named hosts and 127.0.0.1
    fb = next(x for x in dest_lines if "graph.facebook.com" in x)
    assert "ultimate parent Meta Platforms, Inc. (US)" in fb or "Meta Platforms, Inc. (US) (its own" in fb
    assert "reach US (owner)" in fb
    tt = next(x for x in dest_lines if "tiktokv.com" in x)
    assert "ultimate parent ByteDance Ltd. (CN)" in tt and "CN (owner)" in tt
    ya = next(x for x in dest_lines if "mc.yandex.ru" in x)
    assert "RU (owner)" in ya
    for _url, _body, _headers, host, data_type, encoding in _leaks():
        expected = f"datareach: finding {host}: {data_type} (profile) at "
        hits = [x for x in finding_lines if x.startswith(expected)]
        assert hits, (expected, out)
        assert any(" > ".join(encoding) in x for x in hits), (encoding, hits)
    # one line per new finding: the repeated request added none, the unanswered one added one
    assert len(finding_lines) == len(_leaks()) + 1, out
    assert "proxy stopped: 7 flows" in out

    doc = json.loads(report.with_suffix(".json").read_text())
    assert report.with_suffix(".html").read_text().lstrip().lower().startswith("<!doctype html")
    assert Path(f"{report}.mitm").is_file()
    assert doc["inputs"][0]["format"] == "mitmproxy" and doc["inputs"][0]["errors"] == []
    found = {(f["host"], f["data_type"], tuple(f["encoding"])) for f in doc["findings"]}
    for _url, _body, _headers, host, data_type, encoding in _leaks():
        assert (host, data_type, encoding) in found
    assert len(doc["findings"]) == len(_leaks()) + 2  # the repeat, and the request without an answer
    statuses = sorted((e["status"] or 0) for e in doc["exchanges"])
    assert statuses == [0] + [200] * 6
    owners = {d["host"]: d["owner"]["ultimate_parent"]["name"] for d in doc["destinations"] if d["owner"]}
    assert owners["graph.facebook.com"] == "Meta Platforms, Inc."
    assert owners["api16-normal-c-useast1a.tiktokv.com"] == "ByteDance Ltd."
    assert f"report: {report}.json, {report}.html" in out


def test_worker_failure_never_breaks_traffic(tmp_path: Path, upstream: harness.Upstream) -> None:
    """The analysis process dies at once: requests still pass, the failure is logged, flows saved."""
    assert MITM_PYTHON is not None
    report = tmp_path / "dead"
    proxy = harness.Mitmdump(MITM_PYTHON, tmp_path, upstream, datareach=True,
                             options={"datareach_python": "/bin/false", "datareach_report": str(report)})
    try:
        for _ in range(3):
            status, answer = harness.curl(proxy.proxy, proxy.ca, f"https://graph.facebook.com/x?advertiser_id={AID}")
            assert (status, answer) == (200, b'{"ok":true}')
            time.sleep(0.2)
    finally:
        code = proxy.stop()
    assert code == 0
    logs = proxy.stdout() + proxy.stderr()
    assert "datareach: the worker stopped" in logs or "the worker ended with exit status 1" in logs, logs
    assert Path(f"{report}.mitm").stat().st_size > 0
    assert not report.with_suffix(".json").exists()


def test_analysis_exception_is_logged_and_the_next_flow_is_analysed(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from datareach.detect.profile import load_profile
    from datareach.mitm.worker import LiveAnalyzer

    out = io.StringIO()
    analyzer = LiveAnalyzer(load_profile(PROFILE), out=out)
    real = analyzer.per_request  # the pipeline's per-request stage: detection
    assert real is not None
    calls = []

    def failing(ex):  # type: ignore[no-untyped-def]
        calls.append(ex.host)
        if len(calls) == 1:
            raise RuntimeError("injected")
        return real(ex)

    monkeypatch.setattr(analyzer, "per_request", failing)
    rec = {"kind": "http", "ts": 1.7e9, "scheme": "https", "method": "GET", "pretty_host": "graph.facebook.com",
           "host": "graph.facebook.com", "port": 443, "path": f"/a?advertiser_id={AID}", "http_version": "HTTP/1.1",
           "headers": [], "body": "", "body_size": 0, "server_ip": "157.240.0.35", "server_port": 443}
    with caplog.at_level(logging.ERROR, logger="datareach.mitm"):
        analyzer.handle(rec)
        analyzer.handle(rec)
    assert analyzer.failures == 1
    assert "injected" in caplog.text
    assert "datareach: finding graph.facebook.com: advertising_id (profile)" in out.getvalue()


def test_datareach_proxy_command(tmp_path: Path, upstream: harness.Upstream) -> None:
    """`datareach proxy` starts mitmdump with the addon, prints the instructions, and on SIGINT
    (Ctrl-C) stops it so that the report is written."""
    port = harness.free_port()
    report = tmp_path / "cli-report"
    confdir = tmp_path / "conf"
    env = {**os.environ, "REDIRECT_HTTP": str(upstream.http_port), "REDIRECT_HTTPS": str(upstream.https_port)}
    cmd = [str(Path(sys.executable).parent / "datareach"), "proxy", "--listen-port", str(port),
           "--report", str(report), "--confdir", str(confdir), "--profile", str(PROFILE),
           "--", "-s", str(harness.REDIRECT_ADDON), "--set", "ssl_insecure=true"]
    out_path = tmp_path / "proxy.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            ca = confdir / "mitmproxy-ca-cert.pem"
            deadline = time.monotonic() + 60  # when to stop waiting for it, not a bound on its speed
            while not (ca.exists() and harness._listening(port)):
                assert proc.poll() is None, out_path.read_text()
                if time.monotonic() > deadline:
                    pytest.fail(f"gave up waiting for `datareach proxy` to listen:\n{out_path.read_text()}")
                time.sleep(0.05)
            status, _ = harness.curl(f"http://127.0.0.1:{port}", ca, f"https://t.appsflyer.com/e?aid={AID}")
            assert status == 200
            time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(300)
    text = out_path.read_text()
    assert code == 0, text
    assert f"HTTP and HTTPS proxy 127.0.0.1:{port}" in text
    assert "http://mitm.it" in text and str(ca) in text
    assert "datareach: finding t.appsflyer.com: advertising_id (profile) at query aid" in text
    doc = json.loads(report.with_suffix(".json").read_text())
    assert [(f["host"], f["data_type"]) for f in doc["findings"]] == [("t.appsflyer.com", "advertising_id")]
