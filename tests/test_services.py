"""Services: the SDK or product behind a host name, with its purpose (``[[service]]`` records,
``destinations[].service``).

* the loader checks the records (vendor, purpose, domains) and the index finds the most specific
  service domain with a suffix walk;
* the shipped records name the SDKs of the example capture, and their vendors are entities;
* every report format shows the service and its purpose: the terminal table, Markdown, HTML,
  CSV, JSON and ``datareach explain`` (table, json, jsonl);
* a service whose vendor is not the host's owner names both.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from datareach.enrich.ownership import OwnershipResolver
from datareach.enrich.services import ServiceResolver
from datareach.explainer import explain, explain_json_lines
from datareach.kb import KBError, knowledge_base
from datareach.kb.load import SERVICE_PURPOSES, read_kb
from datareach.report.csv_report import render_destinations_csv
from datareach.report.html import render_html
from datareach.report.markdown import render_markdown
from datareach.report.service_wording import service_line
from datareach.report.table import render_explain, render_table

ROOT = Path(__file__).resolve().parent.parent

SERVICES = """
[[service]]
id = "group-sdk"
name = "Group SDK"
vendor = "group"
purpose = "analytics"
also = ["crash-reporting"]
domains = ["group.example"]
sources = ["t-1"]
as_of = "2026-12-07"

[[service]]
id = "group-ads"
name = "Group Ads"
vendor = "group"
purpose = "advertising"
domains = ["ads.group.example"]
sources = ["t-1"]
as_of = "2026-12-07"

[[service]]
id = "cloud-push"
name = "Cloud Push"
vendor = "cloud"
purpose = "push"
domains = ["push.app.example", "push-cdn.example"]
sources = ["t-1"]
as_of = "2026-12-07"
"""


@pytest.fixture
def kb_dir(kb_mini: Path, tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    shutil.copytree(kb_mini, root)
    (root / "services.toml").write_text(SERVICES, encoding="utf-8")
    return root


def _kb(root: Path) -> Any:
    return knowledge_base(root, use_imports=False, use_cache=False)


# -- loader and index -------------------------------------------------------------------------------


def test_longest_suffix_wins(kb_dir: Path) -> None:
    kb = _kb(kb_dir)
    assert kb.service_of_name("group.example") == ("group-sdk", "group.example")
    assert kb.service_of_name("api.eu.group.example") == ("group-sdk", "group.example")
    assert kb.service_of_name("ads.group.example") == ("group-ads", "ads.group.example")
    assert kb.service_of_name("x1.ads.group.example") == ("group-ads", "ads.group.example")
    assert kb.service_of_name("xads.group.example") == ("group-sdk", "group.example")
    assert kb.service_of_name("push.app.example") == ("cloud-push", "push.app.example")
    assert kb.service_of_name("app.example") is None
    assert kb.service_of_name("example") is None
    assert kb.service_of_name("") is None
    assert kb.services["group-sdk"]["purposes"] == ["analytics", "crash-reporting"]
    assert kb.services["group-sdk"]["sources"] == ["https://example.org/registry/1"]


def test_no_services_file(kb_mini: Path) -> None:
    kb = _kb(kb_mini)
    assert kb.services == {} and kb.service_of_name("group.example") is None


@pytest.mark.parametrize(("change", "message"), [
    (('vendor = "cloud"', 'vendor = "nobody"'), "vendor 'nobody' is not a defined entity"),
    (('purpose = "push"', 'purpose = "spying"'), "purpose 'spying' is not one of"),
    (('"push-cdn.example"', '"Push-CDN.example"'), "is not a lower-case domain name"),
    (('"push-cdn.example"', '"*.push.example"'), "is not a lower-case domain name"),
    (('"push-cdn.example"', '"ads.group.example"'), "is given to both services 'group-ads' and 'cloud-push'"),
    (('id = "cloud-push"', 'id = "group-ads"'), "is already defined"),
    (('as_of = "2026-12-07"', 'as_of = "7 Dec"'), "must be an ISO date"),
    (('sources = ["t-1"]', 'sources = ["nope"]'), "source 'nope' is not defined"),
    (('purpose = "push"', 'purpose = "push"\nwhat = 1'), "unknown field 'what'"),
])
def test_kb_check_catches(kb_dir: Path, change: tuple[str, str], message: str) -> None:
    old, new = change
    head, sep, tail = SERVICES.rpartition(old)  # (the last record's)
    text = head + new + tail
    assert sep and text != SERVICES
    (kb_dir / "services.toml").write_text(text, encoding="utf-8")
    with pytest.raises(KBError) as e:
        read_kb(kb_dir)
    assert message in str(e.value)
    assert "services.toml" in str(e.value)


def test_kb_check_cli_counts_services(kb_dir: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "datareach", "kb", "check", str(kb_dir)], capture_output=True, text=True,
                       check=False)
    assert p.returncode == 0, p.stderr
    assert "3 services" in p.stdout


# -- the resolver: vendor and owner -----------------------------------------------------------------


def test_vendor_and_owner(kb_dir: Path) -> None:
    kb = _kb(kb_dir)
    resolver = OwnershipResolver(kb)
    services = ServiceResolver(kb, resolver.chain)
    owner, _ = resolver.resolve("ads.group.example", "2026-12-07")
    s = services.service("ads.group.example", (), owner, "2026-12-07")
    assert s is not None
    assert (s["id"], s["name"], s["purpose"], s["vendor"], s["basis"], s["matched"]) == (
        "group-ads", "Group Ads", "advertising", "group", "domain", "ads.group.example")
    assert s["vendor_is_owner"] is True
    # a service on a name someone else owns: both are kept
    owner, _ = resolver.resolve("push.app.example", "2026-12-07")
    assert owner is not None and owner["entity"] == "app-sg"
    s = services.service("push.app.example", (), owner, "2026-12-07")
    assert s is not None and s["vendor"] == "cloud" and s["vendor_is_owner"] is False
    assert service_line(s).startswith("Cloud Push — push (vendor: ")
    # no owner known: the vendor is named
    s = services.service("x.push-cdn.example", (), None, "2026-12-07")
    assert s is not None and s["vendor_is_owner"] is None and "(vendor: " in service_line(s)
    # a CNAME to a service's domain
    s = services.service("links.brand.example", ("links.brand.example", "edge.push-cdn.example"), None, "2026-12-07")
    assert s is not None and (s["basis"], s["matched"]) == ("cname", "push-cdn.example")
    assert services.service("nothing.example") is None


def test_service_line_reads_anything() -> None:
    bad: object
    for bad in (None, 1, "x", [], {}, {"name": None}, {"name": ""}):
        assert service_line(bad) == ""
    assert service_line({"name": "X", "purposes": "nope", "purpose": "crash-reporting", "vendor_is_owner": True}) \
        == "X — crash reporting"
    assert service_line({"name": "X", "purposes": [1, "social", "advertising", "analytics"], "vendor_is_owner": True}) \
        == "X — social / advertising"


# -- the shipped records ------------------------------------------------------------------------------


def test_shipped_services() -> None:
    kb = knowledge_base()
    assert len(kb.services) >= 80
    for sid, s in kb.services.items():
        assert s["vendor"] in kb.entities, sid
        assert set(s["purposes"]) <= set(SERVICE_PURPOSES), sid
        assert s["sources"], sid
    expect = {
        "firebase-settings.crashlytics.com": ("firebase-crashlytics", "crash-reporting"),
        "app-measurement.com": ("google-analytics-for-firebase", "analytics"),
        "launches.appsflyersdk.com": ("appsflyer-sdk", "attribution"),
        "app.adjust.com": ("adjust-sdk", "attribution"),
        "api16-access-sg.pangle.io": ("pangle", "advertising"),
        "report.appmetrica.yandex.net": ("yandex-appmetrica", "analytics"),
        "plbslog.umeng.com": ("umeng", "analytics"),
        "api.jpush.cn": ("jpush", "push"),
        "o123.ingest.sentry.io": ("sentry", "crash-reporting"),
        "api.onesignal.com": ("onesignal", "push"),
        "ms.applovin.com": ("applovin-max", "advertising"),
        "auction.unityads.unity3d.com": ("unity-ads", "advertising"),
        "analytics.rayjump.com": ("mintegral", "advertising"),
        "graph.facebook.com": ("facebook-sdk-graph-api", "social"),
    }
    for host, (sid, purpose) in expect.items():
        hit = kb.service_of_name(host)
        assert hit is not None and hit[0] == sid, host
        assert kb.services[sid]["purpose"] == purpose, host


# -- every format ---------------------------------------------------------------------------------------


EXPECTED_LINES = ("AppsFlyer SDK — attribution", "Google Analytics for Firebase — analytics",
                  "Tencent Bugly — crash reporting")


def _by_host(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["host"]: d for d in doc["destinations"]}


def test_json_destinations(example_audit: dict[str, Any]) -> None:
    dests = _by_host(example_audit)
    s = dests["launches.appsflyersdk.com"]["service"]
    assert (s["id"], s["purpose"], s["vendor"], s["vendor_is_owner"]) == ("appsflyer-sdk", "attribution", "appsflyer",
                                                                          True)
    assert s["sources"] and all(u.startswith("https://") for u in s["sources"])
    assert dests["app-measurement.com"]["service"]["name"] == "Google Analytics for Firebase"
    assert dests["app-measurement.com"]["service"]["vendor_is_owner"] is True  # Firebase and Google: one group
    assert dests["api.weatherapp.example.com"]["service"] is None
    keys = list(dests["launches.appsflyersdk.com"])
    assert keys.index("owner") < keys.index("service") < keys.index("reach")


def test_terminal_table(example_audit: dict[str, Any]) -> None:
    for width in (200, 80):
        text = render_table(example_audit, width=width)
        flat = " ".join(text.split())
        for line in EXPECTED_LINES:
            assert " ".join(line.split()) in flat or all(w in flat for w in line.split()), (width, line)
    narrow = render_table(example_audit, width=80)
    assert "Service" in narrow and "AppsFlyer SDK — attribution" in narrow


def test_markdown(example_audit: dict[str, Any]) -> None:
    text = render_markdown(example_audit)
    assert "Service — purpose" in text
    for line in EXPECTED_LINES:
        assert line in text


def test_html(example_audit: dict[str, Any]) -> None:
    text = render_html(example_audit)
    assert 'data-testid="services-table"' in text
    static = text.split('id="datareach-data"')[0]  # (what the page shows without its script)
    row = static.split('data-service="appsflyer-sdk"', 1)[1].split("</tr>", 1)[0]
    assert "AppsFlyer SDK" in row and ">attribution / analytics<" in row and "AppsFlyer Ltd." in row
    row = static.split('data-service="tencent-bugly"', 1)[1].split("</tr>", 1)[0]
    assert ">crash reporting<" in row and "Tencent" in row


def test_csv(example_audit: dict[str, Any]) -> None:
    rows = {r["host"]: r for r in csv.DictReader(io.StringIO(render_destinations_csv(example_audit)))}
    r = rows["launches.appsflyersdk.com"]
    assert (r["service"], r["service_vendor"]) == ("AppsFlyer SDK", "AppsFlyer Ltd.")
    assert r["service_purpose"].startswith("attribution")
    assert rows["api.weatherapp.example.com"]["service"] == ""


def test_vendor_apart_from_owner_in_reports(example_audit: dict[str, Any]) -> None:
    doc = copy.deepcopy(example_audit)
    d = _by_host(doc)["t.adtrack.example.net"]
    d["service"] = {"id": "x-ads", "name": "X Ads <b>", "purpose": "advertising", "purposes": ["advertising"],
                    "vendor": "x", "vendor_name": "X\x1b[31m Corp", "vendor_hq": "CN", "vendor_is_owner": False,
                    "basis": "domain", "matched": "adtrack.example.net", "sources": []}
    assert "\x1b" not in render_table(doc, width=200)
    table = render_table(doc, width=100)  # (the list layout: the service on a line of its own)
    assert "\x1b" not in table
    line = next(x for x in table.splitlines() if "X Ads" in x)
    assert "X Ads <b> — advertising (vendor: X" in line and "Corp, CN)" in line
    md = render_markdown(doc)
    assert "(vendor: X" in md and "<b>" not in md
    html = render_html(doc)
    assert "X Ads &lt;b&gt;" in html and "X Ads <b>" not in html.split('id="datareach-data"')[0]


# -- explain -----------------------------------------------------------------------------------------------


HOSTS = ["firebase-settings.crashlytics.com", "launches.appsflyersdk.com", "analytics.rayjump.com", "x.example",
         "192.0.2.1"]


def test_explain_json_and_lines_agree() -> None:
    docs = explain(HOSTS, at="2026-12-07")
    by = {d["host"]: d for d in docs}
    assert by["firebase-settings.crashlytics.com"]["service"]["id"] == "firebase-crashlytics"
    assert by["analytics.rayjump.com"]["service"]["name"] == "Mintegral"
    assert by["x.example"]["service"] is None and by["192.0.2.1"]["service"] is None
    resolver = OwnershipResolver(knowledge_base())
    lines = [json.loads(b) for b in explain_json_lines(HOSTS[:4], resolver, "2026-12-07")]
    assert lines == docs[:4]
    assert list(lines[0]) == ["host", "registrable_domain", "date", "owner", "hosting", "service", "reach"]


def test_explain_table() -> None:
    docs = explain(HOSTS[:4], at="2026-12-07")
    text = " ".join(render_explain(docs, "2026-12-07", width=200).split())
    assert "Firebase Crashlytics — crash reporting" in text
    narrow = render_explain(docs, "2026-12-07", width=80)
    assert "Service — purpose" in narrow and "AppsFlyer SDK — attribution" in narrow
    many = render_explain(docs * 130, "2026-12-07")
    assert "\tFirebase Crashlytics — crash reporting" in many


def test_explain_cli_jsonl() -> None:
    p = subprocess.run([sys.executable, "-m", "datareach", "explain", "-", "--format", "jsonl"],
                       input="launches.appsflyersdk.com\nanalytics.rayjump.com\n", capture_output=True, text=True,
                       check=True)
    docs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [d["service"]["id"] for d in docs] == ["appsflyer-sdk", "mintegral"]
    p = subprocess.run([sys.executable, "-m", "datareach", "explain", "launches.appsflyersdk.com"],
                       capture_output=True, text=True, check=True)
    assert "AppsFlyer SDK" in p.stdout and "attribution" in p.stdout
