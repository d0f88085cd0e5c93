"""SARIF 2.1.0 (``audit --format sarif``): one result per policy violation, for GitHub code
scanning and every other SARIF viewer.

* ``tool.driver.rules``: one rule per policy rule (id ``POLICY/RULE``), its title, the policy's
  summary and context as help, the rule's legal sources (``helpUri`` the first web address);
  ``defaultConfiguration.level`` ``error`` for a deny rule, ``warning`` for a warn rule.
* ``results``: one per violation: ``ruleId``, ``level`` (``error`` for deny, ``warning`` for
  warn), a message naming the host, the app, the data, the jurisdictions and the reasoning; a
  physical location (the capture the destination was seen in, as a relative URI where it can be,
  region line 1: a capture is not text, and GitHub wants a location on every result), a logical
  location naming the destination host, and properties with the owner, ultimate parent, reach
  paths and bases. A violation an allow entry covers is a result with a ``suppressions`` entry
  (``external``, the allow entry's reason), which GitHub shows as dismissed.
* ``partialFingerprints``: a hash of (policy, rule, app, host), so an alert keeps its identity
  across runs.

A log audit (a document with ``organisation``) adds the bulk-data counts of us-doj-bulk-data
(28 CFR 202.205) under one more rule, ``us-doj-bulk-data/bulk-threshold``: a count whose verdict
is ``above`` (a covered counterparty received a category of sensitive data of more US devices or
persons than the threshold) is a result of level ``error``; ``cannot tell`` a result of level
``note`` (the metadata does not rule it out and the readable payloads cannot establish it);
``below`` no result. The message names the counterparty, the category, the count against the
threshold, the screening bound, the period the logs cover, the reason and the bounds; the
properties carry the whole count and the period.

Every string is written through :func:`~datareach.report.terminal.inert_json` (control and bidi
characters escaped): the file is safe to ``cat``, and the same JSON value.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from datareach.report.terminal import inert_json
from datareach.report.wording import destination_owner_line, hosted_by, violation_reach

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_VERSION = "2.1.0"
#: GitHub's ``security-severity`` (0-10): shown as high for a deny, medium for a warn.
_SEVERITY = {"deny": "8.0", "warn": "5.0"}
_LEVEL = {"deny": "error", "warn": "warning"}


def render_sarif(doc: dict[str, Any]) -> str:
    """The audit document (docs/json-output.md) as a SARIF 2.1.0 log."""
    return inert_json(orjson.dumps(sarif_log(doc), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)).decode()


def artifact_uri(path: str, base: str | None = None) -> str:
    """An input's path as a URI reference: relative to ``base`` (default: the working directory,
    which in CI is the repository's root) with ``/`` separators and percent-encoding, or a
    ``file:`` URI when the file is outside it; ``-`` (standard input) is ``stdin``."""
    if path == "-":
        return "stdin"
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path(base or os.getcwd()).resolve())
        except ValueError:
            return p.as_uri()
    return quote(p.as_posix(), safe="/")


def _rule_key(policy: str, rule: str) -> str:
    return f"{policy}/{rule}"


def _rules(doc: dict[str, Any]) -> list[dict[str, Any]]:
    sources: dict[str, list[str]] = {}
    for v in doc.get("violations", []):
        sources.setdefault(_rule_key(v["policy"], v["rule"]), list(v.get("sources") or []))
    rules: list[dict[str, Any]] = []
    for policy in doc.get("policies", []):
        for rule in policy.get("rules", []):
            key = _rule_key(policy["id"], rule["id"])
            urls = sources.get(key) or list(policy.get("sources") or [])
            title = rule.get("title") or rule["id"]
            citation = rule.get("citation")
            lines = [f"{title}" + (f" ({citation})" if citation else "") + f". Policy: {policy['name']} ({policy['id']}).",
                     ""]
            if policy.get("summary"):
                lines += [policy["summary"], ""]
            if policy.get("context"):
                lines += ["What one capture cannot establish:", *(f"- {c}" for c in policy["context"]), ""]
            if urls:
                lines += ["Sources:", *(f"- {u}" for u in urls)]
            text = "\n".join(lines).strip()
            entry: dict[str, Any] = {
                "id": key,
                "name": key,
                "shortDescription": {"text": title},
                "fullDescription": {"text": title + (f" ({citation})" if citation else "")},
                "help": {"text": text, "markdown": text},
                "defaultConfiguration": {"level": _LEVEL.get(rule.get("action", "deny"), "warning")},
                "properties": {
                    "tags": ["privacy", "data-transfer", policy["id"]],
                    "action": rule.get("action"),
                    "citation": citation,
                    "policy": policy["id"],
                    "policy_sha256": policy.get("sha256"),
                    "sources": urls,
                    "security-severity": _SEVERITY.get(rule.get("action", "deny"), "5.0"),
                },
            }
            web = next((u for u in urls if u.startswith(("https://", "http://"))), None)
            if web:
                entry["helpUri"] = web
            rules.append(entry)
    return rules


def _message(v: dict[str, Any], dest: dict[str, Any] | None) -> str:
    who = f"{v['app']} sent" if v.get("app") else "Sent"
    data = ", ".join(v.get("data_types") or []) or "personal data"
    owner = (dest or {}).get("owner") or {}
    run_by = ""
    if owner:
        top = (owner.get("ultimate_parent") or {}).get("name")
        run_by = f" (run by {owner.get('name')}" + (f", ultimately {top}" if top and top != owner.get("name") else "") + ")"
    elif dest is not None and dest.get("hosting"):
        run_by = f" ({destination_owner_line(dest)})"
    jur = violation_reach(v)
    bases = ", ".join(v.get("bases") or [])
    head = (f"[{v['action']}] {v.get('title') or v['rule']}: {who} {data} to {v['host']}{run_by}; "
            f"reachable by {jur or 'no jurisdiction named'}" + (f" through {bases}" if bases else "") + ".")
    tail = f" {v['reasoning']}" if v.get("reasoning") else ""
    if v.get("allowed"):
        tail += f" Allowed: {v['allowed'].get('reason')}" + (f" (until {v['allowed']['until']})" if v["allowed"].get("until") else "") + "."
    return head + tail


#: The rule the bulk-data counts of a log audit are results of.
BULK_RULE = "us-doj-bulk-data/bulk-threshold"
_BULK_LEVEL = {"above": "error", "cannot tell": "note"}


def _bulk_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The bulk counts of a log audit that are results: verdict ``above`` or ``cannot tell`` (when
    the audit judged us-doj-bulk-data: without it they are information, not results)."""
    if not any(isinstance(p, dict) and p.get("id") == "us-doj-bulk-data" for p in doc.get("policies") or ()):
        return []
    org = doc.get("organisation")
    rows = org.get("bulk") if isinstance(org, dict) else None
    return [b for b in rows or [] if isinstance(b, dict) and b.get("verdict") in _BULK_LEVEL]


def _bulk_rule() -> dict[str, Any]:
    title = "Sensitive personal data of more US devices or persons than the bulk threshold sent to a covered person"
    citation = "28 CFR 202.205, 202.206"
    text = (f"{title} ({citation}). Policy: us-doj-bulk-data, over the period the logs cover (the rule counts any "
            "12 months).\n\nThe count is of distinct advertising or device identifiers and (hashed) e-mail "
            "addresses read in payloads; distinct client devices in the metadata are a screening bound only (NAT, "
            "address churn, MAC randomisation). 'above': the identifiers read exceed the threshold; 'cannot "
            "tell': the screening bound exceeds it but what could be read does not establish it.")
    return {
        "id": BULK_RULE, "name": BULK_RULE, "shortDescription": {"text": title},
        "fullDescription": {"text": f"{title} ({citation})"}, "help": {"text": text, "markdown": text},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["privacy", "data-transfer", "us-doj-bulk-data", "bulk-data"], "action": "deny",
                       "citation": citation, "policy": "us-doj-bulk-data", "security-severity": _SEVERITY["deny"]},
    }


def _bulk_message(b: dict[str, Any], period: dict[str, Any]) -> str:
    who = str(b.get("counterparty") or b.get("counterparty_id"))
    if b.get("parent") and b.get("parent") != who:
        who += f" (ultimately {b['parent']})"
    threshold = b.get("threshold")
    limit = f"more than {threshold:,}" if isinstance(threshold, int) else "no threshold"
    span = (f"{period.get('first')} to {period.get('last')}" if period.get("first") and period.get("last")
            else "no timestamped rows")
    return (f"[{b.get('verdict')}] Bulk threshold ({b.get('category') or 'no data category read'}): "
            f"{b.get('identified')} {b.get('unit') or 'devices or persons'} identified in readable payloads sent "
            f"to {who}, a covered person ({limit}); screening bound {b.get('screening')} client devices; logs from "
            f"{span} ({b.get('period_days')} days). {b.get('reason') or ''} Bounds: {b.get('bounds') or ''}")


def _bulk_results(doc: dict[str, Any], uris: list[str], rule_index: int | None) -> list[dict[str, Any]]:
    org = doc.get("organisation")
    period: dict[str, Any] = org["period"] if isinstance(org, dict) and isinstance(org.get("period"), dict) else {}
    out = []
    for b in _bulk_rows(doc):
        name = str(b.get("counterparty") or b.get("counterparty_id"))
        logical = [{"name": name, "fullyQualifiedName": f"{b.get('counterparty_id')}/{b.get('category')}",
                    "kind": "resource"}]
        locations: list[dict[str, Any]] = (
            [{"physicalLocation": {"artifactLocation": {"uri": uris[0], "index": 0}, "region": {"startLine": 1}},
              "logicalLocations": logical}] if uris else [{"logicalLocations": logical}])
        key = "\x00".join(("bulk", str(b.get("counterparty_id")), str(b.get("category"))))
        result: dict[str, Any] = {
            "ruleId": BULK_RULE, "level": _BULK_LEVEL[str(b["verdict"])],
            "message": {"text": _bulk_message(b, period)}, "locations": locations,
            "partialFingerprints": {"datareachBulk/v1": hashlib.sha256(key.encode()).hexdigest()},
            "properties": {**b, "policy": "us-doj-bulk-data", "period": period},
        }
        if rule_index is not None:
            result["ruleIndex"] = rule_index
        out.append(result)
    return out


def sarif_log(doc: dict[str, Any]) -> dict[str, Any]:
    """The SARIF log as a dict (see the module's documentation)."""
    rules = _rules(doc)
    if _bulk_rows(doc):
        rules.append(_bulk_rule())
    index = {r["id"]: n for n, r in enumerate(rules)}
    inputs = doc.get("inputs", [])
    uris = [artifact_uri(i["path"]) for i in inputs]
    destinations = {d["id"]: d for d in doc.get("destinations", [])}
    results: list[dict[str, Any]] = []
    for v in doc.get("violations", []):
        key = _rule_key(v["policy"], v["rule"])
        dest = destinations.get(v.get("destination", ""))
        where = [i for i in (dest or {}).get("inputs", []) if 0 <= i < len(uris)] or list(range(len(uris)))[:1]
        owner = (dest or {}).get("owner") or None
        locations = [{
            "physicalLocation": {"artifactLocation": {"uri": uris[i], "index": i}, "region": {"startLine": 1}},
            "logicalLocations": [{"name": v["host"], "fullyQualifiedName": f"{v['app']}/{v['host']}" if v.get("app")
                                  else v["host"], "kind": "resource"}],
        } for i in where[:1]]
        if not locations:  # (a document without inputs: the host alone)
            locations = [{"logicalLocations": [{"name": v["host"], "kind": "resource"}]}]
        fingerprint = hashlib.sha256("\x00".join((v["policy"], v["rule"], v.get("app") or "", v["host"])).encode()).hexdigest()
        result: dict[str, Any] = {
            "ruleId": key,
            "level": _LEVEL.get(v["action"], "warning"),
            "message": {"text": _message(v, dest)},
            "locations": locations,
            "partialFingerprints": {"datareachViolation/v1": fingerprint},
            "properties": {
                "policy": v["policy"], "rule": v["rule"], "action": v["action"], "citation": v.get("citation"),
                "destination": v.get("destination"), "host": v["host"], "app": v.get("app"),
                "owner": owner.get("name") if owner else None,
                "owner_country": owner.get("hq_country") if owner else None,
                "ultimate_parent": (owner.get("ultimate_parent") or {}).get("name") if owner else None,
                "hosted_by": hosted_by((dest or {}).get("hosting")),
                "jurisdictions": v.get("jurisdictions", []), "bases": v.get("bases", []),
                "reach_paths": v.get("paths", []), "data_types": v.get("data_types", []),
                "data_categories": v.get("data_categories", []), "findings": v.get("findings", []),
                "mechanism": v.get("mechanism"), "sources": v.get("sources", []),
            },
        }
        if key in index:
            result["ruleIndex"] = index[key]
        if v.get("allowed"):
            result["suppressions"] = [{"kind": "external", "status": "accepted",
                                       "justification": str(v["allowed"].get("reason") or "")}]
        results.append(result)
    results += _bulk_results(doc, uris, index.get(BULK_RULE))
    tool = doc.get("tool") or {}
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "datareach", "version": str(tool.get("version", "")),
                            "semanticVersion": str(tool.get("version", "")), "rules": rules}},
        "artifacts": [{"location": {"uri": uri}, "length": int(i.get("size") or 0),
                       "hashes": {"sha-256": i["sha256"]} if i.get("sha256") else {},
                       "roles": ["analysisTarget"]} for uri, i in zip(uris, inputs, strict=True)],
        "results": results,
        "invocations": [{"executionSuccessful": not any(i.get("errors") for i in inputs),
                         "toolExecutionNotifications": [
                             {"level": "error", "message": {"text": f"{i['path']}: {e['message']}"},
                              "locations": [{"physicalLocation": {"artifactLocation": {"uri": uris[n], "index": n}}}]}
                             for n, i in enumerate(inputs) for e in i.get("errors", [])]}],
        "properties": {"verdict": (doc.get("summary") or {}).get("verdict"),
                       "violations": (doc.get("summary") or {}).get("violations"),
                       "generated_at": doc.get("generated_at"), "schema_version": doc.get("schema_version")},
    }
    for a in run["artifacts"]:
        if not a["hashes"]:
            del a["hashes"]
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
