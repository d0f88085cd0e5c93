"""The Markdown report renders every captured string inert, in two real GFM renderers.

Hostile values go through the real pipeline (a HAR whose URLs, app name and request carry
payloads), and into the policy fields of a schema 1.1 document. The Markdown is rendered to HTML
by markdown-it-py (GFM-like preset, raw HTML on, linkify on) and by cmark-gfm (GitHub's renderer,
through cmarkgfm) with raw HTML allowed and *without* the tag filter, so that anything that
escaped our escaping would show up as an element or an attribute.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datareach
from datareach.detect.profile import Profile
from datareach.report.markdown import md_code, md_text, render_markdown
from datareach.testing.markdown import RENDERERS, check_inert, render_cmark, render_markdown_it

PAYLOADS = [
    "<script>alert(1)</script>",
    "[click](javascript:alert(2))",
    "![img](http://evil.example/i.png)",
    "x](http://evil.example)",
    "a|b|c",
    "line1\nline2\r\n| injected | row |",
    "`tick` ``two`` \\|",
    "**bold** _em_ ~~del~~",
    "# heading",
    "<img src=x onerror=alert(3)>",
    "&lt;script&gt; &#60;b&#62;",
    "www.evil.example http://evil.example/x user@evil.example",
    "@octocat #123",
    "\u202eevil\u200b\x00\x1b[31m",
    "<details><summary>x</summary>",
    "$\\sqrt{x}$",
]


# ------------------------------------------------------------------------------------------
# Documents


def _entry(url: str, body: str) -> dict[str, Any]:
    return {
        "pageref": "p1", "startedDateTime": "2024-05-14T08:12:03.000Z", "time": 10,
        "request": {"method": "POST", "url": url, "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "Content-Type", "value": "application/json"}], "queryString": [],
                    "cookies": [], "headersSize": -1, "bodySize": len(body),
                    "postData": {"mimeType": "application/json", "text": body}},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                     "content": {"size": 0, "mimeType": "text/plain"}, "redirectURL": "", "headersSize": -1,
                     "bodySize": 0},
        "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0},
    }


def hostile_har(path: Path) -> Path:
    """A HAR whose app name (page title), host names and URLs are Markdown and HTML payloads."""
    hosts = ["<script>alert(1)</script>.evil.example", "a|b|c.evil.example", "x](http:.evil.example",
             "`tick`.evil.example", "www.evil.example"]
    body = json.dumps({"email": "victim.person@example.org", "note": PAYLOADS})
    entries = [_entry(f"http://{h}/{PAYLOADS[i % len(PAYLOADS)]}?u=victim.person@example.org", body)
               for i, h in enumerate(hosts)]
    har = {"log": {"version": "1.2", "creator": {"name": "HTTP Toolkit", "version": "1.0"},
                   "pages": [{"id": "p1", "title": "[app](javascript:alert(4)) <b>|</b>",
                              "startedDateTime": "2024-05-14T08:12:03.000Z", "pageTimings": {}}],
                   "entries": entries}}
    path.write_text(json.dumps(har), encoding="utf-8")
    return path


def add_policy(doc: dict[str, Any], text: str) -> dict[str, Any]:
    """``doc`` as schema 1.1 with one deny, one warn and one allowed violation whose every
    string field is ``text`` (as a policy file given by the user could make them)."""
    doc = copy.deepcopy(doc)
    doc["schema_version"] = "1.1"
    doc["policies"] = [{"id": text, "name": text, "origin": text, "sha256": text, "summary": text,
                        "as_of": text, "sources": [text], "context": [text],
                        "rules": [{"id": text, "action": "deny", "title": text, "citation": text}], "allow": []}]
    doc["violations"] = []
    for i, (action, allowed) in enumerate((("deny", None), ("warn", None),
                                           ("deny", {"reason": text, "until": text}))):
        d = doc["destinations"][i % len(doc["destinations"])]
        doc["violations"].append({
            "policy": text, "rule": text, "action": action, "title": text, "citation": text, "destination": i,
            "host": d["host"], "app": d["app"], "jurisdictions": [text, "CN"], "bases": [text],
            "paths": [{"jurisdiction": text, "basis": text, "path": [text, d["host"], text]}],
            "data_types": [text], "data_categories": [text], "findings": [], "reasoning": text,
            "mechanism": text, "sources": [text], "allowed": allowed})
    doc["summary"] = {**doc["summary"], "violations": {"deny": 1, "warn": 1, "allowed": 1}, "verdict": "fail"}
    return doc


@pytest.fixture(scope="module")
def hostile_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hostile")
    profile = Profile(values={"email": "victim.person@example.org"})
    doc = datareach.audit([hostile_har(tmp / "hostile.har")], profile=profile).to_dict()
    return add_policy(doc, " ".join(PAYLOADS))


# ------------------------------------------------------------------------------------------
# Tests


def test_hostile_pipeline_values_reach_the_document(hostile_doc: dict[str, Any]) -> None:
    # the payloads really are in the document the report is made from (else the test proves nothing)
    hosts = {d["host"] for d in hostile_doc["destinations"]}
    assert "<script>alert(1)<" in hosts  # the URL parser ends the host at the "/"
    assert any("|" in h for h in hosts)
    assert any("`" in h for h in hosts)
    assert any(d["app"] and "javascript:" in d["app"] for d in hostile_doc["destinations"])
    assert hostile_doc["findings"]


@pytest.mark.parametrize("render", RENDERERS, ids=["markdown-it", "cmark-gfm"])
def test_hostile_values_render_inert(hostile_doc: dict[str, Any], render: Any) -> None:
    md = render_markdown(hostile_doc)
    html = render(md)
    p = check_inert(md, html)
    assert len(p.tables) >= 4
    # the destinations table has one row per destination (plus its header), none split or merged
    dest_rows = p.table("Host", "App")
    assert len(dest_rows) == len(hostile_doc["destinations"]) + 1
    # and the payloads are shown as text, not dropped
    text = "".join(p.text_outside_code) + "".join(re.findall(r"<code>(.*?)</code>", html, re.S))
    assert "<code>&lt;script&gt;alert(1)&lt;</code>" in html
    assert "a|b|c.evil.example" in text
    assert "javascript:alert(4)" in html.replace("&amp;", "&")
    assert "\\u202e" in text  # the bidi override is shown, not obeyed


def test_verdict_titles_and_sections(example_audit: dict[str, Any]) -> None:
    doc = example_audit
    md = render_markdown(doc)
    assert md.startswith("## datareach audit: no policy given\n")
    assert "### Policy violations" not in md
    failed = add_policy(doc, "us-doj-bulk-data")
    md = render_markdown(failed)
    assert md.startswith("## datareach audit: ❌ FAIL (1 deny, 1 warn, 1 allowed)")
    deny, warn, allowed = (md.index(f"**{k}** (1)") for k in ("Deny", "Warn", "Allowed"))
    assert deny < warn < allowed
    for verdict, title in (("warn", "⚠️ warn"), ("pass", "✅ pass")):
        failed["summary"]["verdict"] = verdict
        assert render_markdown(failed).startswith(f"## datareach audit: {title}")


def test_example_report_contents(example_audit: dict[str, Any]) -> None:
    doc = example_audit
    md = render_markdown(doc)
    html = render_cmark(md)
    check_inert(md, html)
    # destinations with owner -> ultimate parent and reach; findings with their encoding chain
    assert "`android.bugly.qq.com`" in md and "Tencent Holdings Limited (CN)" in md
    assert "Umeng \\(Beijing Ruixun Lingtong Technology\\) → Alibaba Group Holding Limited (CN)" in md
    assert "`query u` › `base64` › `json $.eh` › `sha256(lower(email))`" in md
    # long tables are folded
    assert f"<details><summary>{len(doc['destinations'])} destinations</summary>" in md
    # provenance: version, generated_at, data sources, inputs with sha256
    assert doc["inputs"][0]["sha256"] in md
    assert md_text(doc["generated_at"]) in md
    for s in doc["data_sources"]:
        assert md_text(s["name"]) in md
    # who can reach which data: the jurisdictions of the destinations that received data
    reach_table = md.split("### Who can reach which data", 1)[1].split("###", 1)[0]
    assert "| DE |" in reach_table and "| US |" in reach_table and "| CN |" not in reach_table
    # values are always redacted in Markdown
    assert "a3e3fce2-78b0-4105-ada0-748f79470c71" not in md


def test_row_limit_and_long_strings(example_audit: dict[str, Any]) -> None:
    doc = copy.deepcopy(example_audit)
    doc["destinations"] = [dict(doc["destinations"][0], host="h" * 5000 + str(i)) for i in range(80)]
    md = render_markdown(doc, max_rows=20)
    assert "… and 60 more destinations: see the JSON document." in md
    assert max(len(line) for line in md.splitlines()) < 2000
    check_inert(md, render_markdown_it(md))


def test_md_code_and_md_text_units() -> None:
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x`") == "`` `x` ``"
    assert md_code("a|b", table=True) == "`a\\|b`"
    assert md_code("") == "(empty)"
    assert md_text("a\nb") == "a\\\\nb"
    assert "\n" not in md_text("\r\n\u2028\u2029\x85")
    assert md_text("[x](y)") == "\\[x\\]\\(y\\)"


# a document built once; hypothesis then puts random strings where captured strings go
_host_text = st.text(st.one_of(st.sampled_from(list("<>&|`[]()*_#!\n\r\\:@.w/-~$= ")), st.characters(codec="utf-8")),
                     min_size=1, max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hosts=st.lists(_host_text, min_size=1, max_size=4), app=_host_text, value=_host_text)
def test_random_strings_never_add_columns_or_elements(example_audit: dict[str, Any], hosts: list[str], app: str,
                                                     value: str) -> None:
    doc = copy.deepcopy(example_audit)
    for i, d in enumerate(doc["destinations"]):
        d["host"] = hosts[i % len(hosts)]
        d["app"] = app
        d["registrable_domain"] = value
    for f in doc["findings"]:
        f["host"] = hosts[0]
        f["value_redacted"] = value
        f["encoding"] = [value, app]
        f["location"] = value
    doc["inputs"][0]["path"] = value
    md = render_markdown(doc)
    for render in RENDERERS:
        html = render(md)
        p = check_inert(md, html)
        assert p.table("Host", "App") == [7] * (len(doc["destinations"]) + 1)
        assert p.table("Host", "Data type") == [5] * (len(doc["findings"]) + 1)
        assert p.table("Path") == [5, 5]
