"""JUnit XML (``audit --format junit``): the policy verdict as test results, for CI systems that
show JUnit reports (GitLab, Jenkins, Azure Pipelines, CircleCI...).

One ``<testsuite>`` per policy (``--policy``), one ``<testcase>`` per rule of it (classname the
policy id, name the rule id). A test case fails exactly when its rule makes the exit status 3
under ``--fail-on``: with ``deny`` (the default) a deny violation no allow entry covers; with
``warn`` a warn violation too; with ``never`` nothing fails. Violations that do not fail the
case (warnings under ``deny``, everything under ``never``, allowed ones) are listed in its
``<system-out>``; a rule without violations passes. Every input with read errors adds a test
case with an ``<error>`` in a suite ``datareach.inputs`` (exit status 4).

A log audit (a document with ``organisation``) adds a suite ``us-doj-bulk-data.bulk``: one test
case per bulk-data count (per covered counterparty and data category; classname the suite, name
``<counterparty id>/<category>``). A count whose verdict is ``above`` fails (under ``--fail-on``
``deny`` and ``warn``, as a deny violation does: :func:`bulk_fails`); ``cannot tell`` is
skipped, with the reason (the logs cannot decide it); ``below`` passes. Each case's
``<system-out>`` states the count, the threshold, the screening bound, the period and the bounds.

Every string from the input is written through :func:`~datareach.report.terminal.safe`, so no
control character reaches the XML (XML 1.0 forbids most of them) or a terminal.
"""

from __future__ import annotations

from typing import Any

from datareach.report.terminal import safe
from datareach.report.wording import violation_reach

FAIL_ON = ("deny", "warn", "never")


def fails(action: str, fail_on: str) -> bool:
    """Whether a violation (not allowed) of this action fails the gate under ``fail_on``."""
    return (fail_on == "warn" and action in ("deny", "warn")) or (fail_on == "deny" and action == "deny")


BULK_SUITE = "us-doj-bulk-data.bulk"


def _bulk(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The bulk-data counts, when the audit judged us-doj-bulk-data (without the policy they are
    information, not a gate)."""
    if not any(isinstance(p, dict) and p.get("id") == "us-doj-bulk-data" for p in doc.get("policies") or ()):
        return []
    org = doc.get("organisation")
    rows = org.get("bulk") if isinstance(org, dict) else None
    return [b for b in rows or [] if isinstance(b, dict)]


def bulk_fails(doc: dict[str, Any], fail_on: str) -> bool:
    """Whether a bulk-data count of a log audit fails the gate under ``fail_on``: a verdict
    ``above`` does, as a deny violation would."""
    return any(b.get("verdict") == "above" for b in _bulk(doc)) and fails("deny", fail_on)


def _bulk_text(b: dict[str, Any], period: object) -> str:
    from datareach.report.wording import bulk_count_line, period_line

    who = str(b.get("counterparty") or b.get("counterparty_id"))
    if b.get("parent") and b.get("parent") != who:
        who += f" (ultimately {b['parent']})"
    lines = [f"[{b.get('verdict')}] {who}, {b.get('category') or 'no data category read'}: {bulk_count_line(b)}.",
             f"  Logs from {period_line(period)}.", f"  Why: {b.get('reason') or ''}", f"  Bounds: {b.get('bounds') or ''}"]
    return "\n".join(safe(x) for x in lines)


def _bulk_suite(root: Any, doc: dict[str, Any], fail_on: str, timestamp: str) -> tuple[int, int]:
    """The bulk-data counts as a suite; (tests, failures)."""
    import xml.etree.ElementTree as ET

    rows = _bulk(doc)
    org = doc.get("organisation")
    period = org.get("period") if isinstance(org, dict) else None
    suite = ET.SubElement(root, "testsuite", name=BULK_SUITE, timestamp=timestamp)
    n_fail = n_skip = 0
    for b in rows:
        name = f"{b.get('counterparty_id')}/{b.get('category') or 'none'}"
        case = ET.SubElement(suite, "testcase", classname=BULK_SUITE, name=safe(name), time="0")
        verdict = b.get("verdict")
        if verdict == "above" and fails("deny", fail_on):
            n_fail += 1
            threshold = b.get("threshold")
            failure = ET.SubElement(case, "failure", type="above", message=safe(
                f"Bulk threshold (28 CFR 202.205) crossed: {b.get('identified')} {b.get('unit') or ''} of "
                f"{b.get('category')} sent to {b.get('counterparty')}, a covered person (more than {threshold})"))
            failure.text = _bulk_text(b, period)
        elif verdict == "cannot tell":
            n_skip += 1
            ET.SubElement(case, "skipped", message=safe(f"cannot tell: {b.get('reason') or ''}"))
            ET.SubElement(case, "system-out").text = _bulk_text(b, period)
        else:
            ET.SubElement(case, "system-out").text = _bulk_text(b, period)
    suite.set("tests", str(len(rows)))
    suite.set("failures", str(n_fail))
    suite.set("errors", "0")
    suite.set("skipped", str(n_skip))
    return len(rows), n_fail


def _describe(v: dict[str, Any]) -> str:
    data = ", ".join(v.get("data_types") or []) or "personal data"
    jur = violation_reach(v)
    line = (f"[{v['action']}] {v.get('app') or '(no app)'} -> {v['host']} ({v.get('destination')}): {data}; "
            f"reachable by {jur} through {', '.join(v.get('bases') or [])}.")
    if v.get("allowed"):
        line += f" ALLOWED: {v['allowed'].get('reason')}" + (f" (until {v['allowed'].get('until')})"
                                                              if v["allowed"].get("until") else "")
    lines = [line, *([f"  {v['reasoning']}"] if v.get("reasoning") else [])]
    lines += [f"  {p.get('jurisdiction') or ('not determinable' if p.get('basis') == 'location' else '?')} "
              f"({p.get('basis')}): {' > '.join(p.get('path', []))}" for p in v.get("paths", [])]
    return "\n".join(safe(x) for x in lines)


def render_junit(doc: dict[str, Any], fail_on: str = "deny") -> str:
    """The audit document (docs/json-output.md) as JUnit XML text."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on is one of {', '.join(FAIL_ON)}")
    import xml.etree.ElementTree as ET
    root = ET.Element("testsuites", name="datareach")
    total = failed = errored = 0
    by_rule: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for v in doc.get("violations", []):
        by_rule.setdefault((v["policy"], v["rule"]), []).append(v)
    timestamp = safe(doc.get("generated_at") or "")
    for policy in doc.get("policies", []):
        suite = ET.SubElement(root, "testsuite", name=safe(policy["id"]), timestamp=timestamp)
        props = ET.SubElement(suite, "properties")
        for name, value in (("policy.name", policy.get("name")), ("policy.sha256", policy.get("sha256")),
                            ("policy.origin", policy.get("origin")), ("fail-on", fail_on)):
            ET.SubElement(props, "property", name=name, value=safe(value or ""))
        n_fail = 0
        for rule in policy.get("rules", []):
            case = ET.SubElement(suite, "testcase", classname=safe(policy["id"]), name=safe(rule["id"]), time="0")
            violations = by_rule.get((policy["id"], rule["id"]), [])
            failing = [v for v in violations if v.get("allowed") is None and fails(v["action"], fail_on)]
            others = [v for v in violations if v not in failing]
            if failing:
                n_fail += 1
                worst = "deny" if any(v["action"] == "deny" for v in failing) else "warn"
                hosts = ", ".join(sorted({v["host"] for v in failing}))
                failure = ET.SubElement(case, "failure", type=worst, message=safe(
                    f"{rule.get('title') or rule['id']}"
                    + (f" ({rule['citation']})" if rule.get("citation") else "")
                    + f": {len(failing)} {worst} violation(s): {hosts}"))
                failure.text = "\n\n".join(_describe(v) for v in failing)
            if others:
                ET.SubElement(case, "system-out").text = "\n\n".join(_describe(v) for v in others)
        suite.set("tests", str(len(policy.get("rules", []))))
        suite.set("failures", str(n_fail))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        total += len(policy.get("rules", []))
        failed += n_fail
    if isinstance(doc.get("organisation"), dict) and _bulk(doc):
        tests, n_fail = _bulk_suite(root, doc, fail_on, timestamp)
        total += tests
        failed += n_fail
    inputs = doc.get("inputs", [])
    if any(i.get("errors") for i in inputs):
        suite = ET.SubElement(root, "testsuite", name="datareach.inputs", timestamp=timestamp)
        n_err = 0
        for i in inputs:
            case = ET.SubElement(suite, "testcase", classname="datareach.inputs", name=safe(i["path"]), time="0")
            if i.get("errors"):
                n_err += 1
                err = ET.SubElement(case, "error", type="input-error",
                                    message=safe(f"{len(i['errors'])} read error(s) in {i['path']}"))
                err.text = "\n".join(safe(e.get("message", "")) + (f" (offset {e['offset']})" if e.get("offset") is not None
                                                                   else "") for e in i["errors"])
        suite.set("tests", str(len(inputs)))
        suite.set("failures", "0")
        suite.set("errors", str(n_err))
        suite.set("skipped", "0")
        total += len(inputs)
        errored += n_err
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", str(errored))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
