"""Audit documents for the report tests: real pipeline output from captures whose every
captured string is a script payload, the policy fields of schema 1.1 added to a real document,
and a large document made from a real one.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import datareach
from datareach.detect.profile import Profile
from datareach.testing.capture import LINKTYPE_ETHERNET, PcapngWriter, TcpSession, pcapdroid_frame

#: Every payload sets ``window.__pwned`` (or opens a dialog) if it ever runs.
APP_PAYLOAD = '</script><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOST_PAYLOAD = "<img src=x onerror=window.__pwned=3>.evil.example"
PATH_PAYLOAD = "/</script><script>window.__pwned=4</script>"
QUERY_PAYLOAD = '"><svg onload=window.__pwned=5>'
HOST2_PAYLOAD = '"><iframe srcdoc=x>\u2028\u2029.example'
JS_URL_PAYLOAD = "javascript:window.__pwned=6"
COMMENT_PAYLOAD = "<!--<script>window.__pwned=7</script>"
IP_PAYLOAD = "</script><script>window.__pwned=10</script>"
SECRET_PAYLOAD = "</script><script>alert(11)</script>"
#: PCAPdroid keeps 19 bytes of an app name.
PCAPDROID_APP = "<svg onload=alert()"
HTTP_HOST_PAYLOAD = "<script>alert(12)</script>.pcap.example"
REASONING_PAYLOAD = "</script><script>window.__pwned=13</script><img src=x onerror=alert(14)>"
ENTITY_PAYLOAD = "<b onmouseover=alert(15)>Evil & Sons</b>"

HOSTILE_STRINGS = [APP_PAYLOAD, HOST_PAYLOAD, PATH_PAYLOAD, QUERY_PAYLOAD, HOST2_PAYLOAD, JS_URL_PAYLOAD,
                   COMMENT_PAYLOAD, IP_PAYLOAD, SECRET_PAYLOAD, PCAPDROID_APP, HTTP_HOST_PAYLOAD,
                   REASONING_PAYLOAD, ENTITY_PAYLOAD]

HOSTILE_PROFILE = Profile(values={"email": "victim.person@example.org"}, custom={"token": SECRET_PAYLOAD})


def _har_entry(url: str, server_ip: str | None = None) -> dict[str, Any]:
    body = json.dumps({"email": "victim.person@example.org", "token": SECRET_PAYLOAD,
                       "note": COMMENT_PAYLOAD})
    entry: dict[str, Any] = {
        "pageref": "p1", "startedDateTime": "2024-05-14T08:12:03.000Z", "time": 10,
        "request": {"method": "POST", "url": url, "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "User-Agent", "value": "<script>window.__pwned=8</script>"},
                                {"name": "X-Note", "value": JS_URL_PAYLOAD}],
                    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": len(body),
                    "postData": {"mimeType": "application/json", "text": body}},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [],
                     "cookies": [], "content": {"size": 0, "mimeType": "text/plain"}, "redirectURL": "",
                     "headersSize": -1, "bodySize": 0},
        "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0},
    }
    if server_ip is not None:
        entry["serverIPAddress"] = server_ip
    return entry


def hostile_har(path: Path) -> Path:
    """An HTTP Toolkit HAR whose app name (page title), host names, URLs and server address are
    script payloads."""
    entries = [
        _har_entry(f"http://{HOST_PAYLOAD}{PATH_PAYLOAD}?q={QUERY_PAYLOAD}&email=victim.person@example.org"),
        _har_entry(f"http://{HOST2_PAYLOAD}/{JS_URL_PAYLOAD}", IP_PAYLOAD),
        _har_entry(f"http://ok.example/p?{COMMENT_PAYLOAD}"),
    ]
    har = {"log": {"version": "1.2", "creator": {"name": "HTTP Toolkit", "version": "1.0"},
                   "pages": [{"id": "p1", "title": APP_PAYLOAD, "startedDateTime": "2024-05-14T08:12:03.000Z",
                              "pageTimings": {}}],
                   "entries": entries}}
    path.write_text(json.dumps(har), encoding="utf-8")
    return path


def hostile_pcapng(path: Path) -> Path:
    """A PCAPdroid capture (real TCP/IP bytes) whose app name and HTTP Host header are payloads."""
    s = TcpSession("10.215.173.1", 40000, "203.0.113.80", 80, start=1_715_674_323.0)
    request = (f"GET /{JS_URL_PAYLOAD}?x={QUERY_PAYLOAD} HTTP/1.1\r\nHost: {HTTP_HOST_PAYLOAD}\r\n"
               f"User-Agent: {APP_PAYLOAD}\r\nX-Token: {SECRET_PAYLOAD}\r\n\r\n").encode()
    packets = (s.handshake() + s.client_send(request)
               + s.server_send(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n") + s.close())
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        iface = w.add_interface(LINKTYPE_ETHERNET)
        for ts, ip in packets:
            w.write(ts, pcapdroid_frame(ip, 10123, PCAPDROID_APP), iface)
    return path


#: A real policy file: the two presets, a deny rule the example breaks on two hosts, and an
#: exception for one of them.
GATE_POLICY = """\
[policy]
id = "report-test-gate"
name = "Report test gate"
extends = ["us-doj-bulk-data", "eu-gdpr-transfers"]
summary = "No personal data in clear text, on top of the DOJ rule and GDPR chapter V."

[[rule]]
id = "no-cleartext-personal-data"
action = "deny"
title = "Personal data sent in clear text"
data_categories = ["sent_in_cleartext"]
mechanism = "Send it over TLS."

[[allow]]
hosts = ["t.adtrack.example.net", "ok.example"]
rules = ["no-cleartext-personal-data"]
reason = "Attribution vendor moves to TLS in the next release (ticket R-17)"
"""


def gate_policy(tmp: Path) -> Path:
    """:data:`GATE_POLICY` written to ``tmp/gate.toml``."""
    path = tmp / "gate.toml"
    path.write_text(GATE_POLICY, encoding="utf-8")
    return path


def hostile_doc(tmp: Path) -> dict[str, Any]:
    """The real pipeline over the hostile HAR and pcapng, values revealed, judged against a real
    policy (so the violations carry the hostile host and app names); then an owner whose name is a
    payload and a violation whose reasoning is one, as no real knowledge base or policy writes."""
    result = datareach.audit([hostile_har(tmp / "hostile.har"), hostile_pcapng(tmp / "hostile.pcapng")],
                             profile=HOSTILE_PROFILE, reveal=True, policies=[gate_policy(tmp)])
    doc = result.to_dict()
    target = next(i for i, d in enumerate(doc["destinations"]) if d["host"] == HOST_PAYLOAD)
    d = doc["destinations"][target]
    d["owner"] = {
        "entity": "evil", "name": ENTITY_PAYLOAD, "hq_country": "CN", "basis": "domain", "matched": HOST_PAYLOAD,
        "evidence": [HOST_PAYLOAD], "origin": "curated",
        "ultimate_parent": {"entity": "evil-top", "name": ENTITY_PAYLOAD + " Holdings", "hq_country": "CN"},
        "state_owner": None,
        "chain": [{"entity": "evil", "name": ENTITY_PAYLOAD, "hq_country": "CN", "incorporated": "CN",
                   "control": None, "share": None, "since": None}],
        "minority_stakes": [], "listings": [], "as_of": "2026-11-24", "sources": [JS_URL_PAYLOAD],
    }
    d["reach"] = [{"jurisdiction": "CN", "name": "China " + ENTITY_PAYLOAD, "basis": "owner",
                   "path": [HOST_PAYLOAD, ENTITY_PAYLOAD + " (CN)", "CN (headquarters)"], "laws": [],
                   "linked_from": None}]
    return add_violation(doc, target, reasoning=REASONING_PAYLOAD)


def add_violation(doc: dict[str, Any], target: int, *, reasoning: str) -> dict[str, Any]:
    """``doc`` with one more deny violation for destination ``target``, shaped as the policy
    layer writes them, and the summary's counts and verdict recomputed."""
    doc = copy.deepcopy(doc)
    d = doc["destinations"][target]
    doc["violations"].insert(0, {
        "policy": "report-test-gate", "rule": "covered-person", "action": "deny",
        "title": "Sensitive personal data sent to a covered person", "citation": "28 CFR 202.211(a)(2)",
        "destination": d["id"], "host": d["host"], "app": d["app"],
        "jurisdictions": sorted({r["jurisdiction"] for r in d["reach"]}), "bases": ["owner"],
        "paths": [{"jurisdiction": r["jurisdiction"], "basis": r["basis"], "path": r["path"]} for r in d["reach"]],
        "data_types": d["data_types"], "data_categories": d["data_categories"],
        "findings": [f["id"] for f in doc["findings"] if f["host"] == d["host"]],
        "reasoning": reasoning, "mechanism": None,
        "sources": ["https://www.ecfr.gov/current/title-28/chapter-I/part-202"], "allowed": None,
    })
    live = [v for v in doc["violations"] if v["allowed"] is None]
    deny = sum(1 for v in live if v["action"] == "deny")
    warn = len(live) - deny
    doc["summary"]["violations"] = {"deny": deny, "warn": warn, "allowed": len(doc["violations"]) - len(live)}
    doc["summary"]["verdict"] = "fail" if deny else "warn" if warn else "pass"
    return doc


def big_doc(base: dict[str, Any], n: int) -> dict[str, Any]:
    """``base`` with its destinations repeated under distinct host names up to ``n``."""
    doc = copy.deepcopy(base)
    dests = base["destinations"]
    doc["destinations"] = []
    for i in range(n):
        d = copy.deepcopy(dests[i % len(dests)])
        d["id"] = f"D{i}"  # ids are positions: the copies keep the originals' (violations name them)
        d["host"] = f"h{i:05d}.{d['host']}"
        d["bytes_out"] = (i * 7919) % 100_003
        doc["destinations"].append(d)
    doc["summary"]["destinations"] = n
    return doc
