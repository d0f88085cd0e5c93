"""``datareach diff``: what changed between two audits (app version N and N+1).

:func:`diff_audits` compares two audit JSON documents (:meth:`datareach.api.Audit.to_dict`,
schema 1.x: 1.0 without and 1.1 with the policy layer's ``policies`` and ``violations``; 2.x:
records name each other by id) and returns the diff document; :func:`render_diff_table` and :func:`render_diff_markdown` render it
(JSON: :func:`datareach.report.json_report.render_json`).

Keys (what makes two entries "the same" across the audits):

* destinations: app + host. A host that appears (or disappears) inside a registrable domain the
  same app already talked to in the other audit, run by the same ultimate parent, is reported as
  a *rotation* of that domain (``destinations.rotated``), not as a new destination: CDN and load
  balancer names (``edge-7.cdn.example`` one day, ``edge-12.cdn.example`` the next) would
  otherwise be noise. A new host under a known domain but with another ultimate parent is a new
  destination. Changes of data, reach and owner are compared per host (``destinations.changed``)
  and, for rotations, over the whole domain, so a rotation never hides new data;
* owners: the ultimate parent's knowledge-base entity (its name where there is none);
* jurisdictions: (jurisdiction, basis) over all destinations; ``data_reach`` pairs each
  jurisdiction with the kinds of personal data it can reach (through the destinations that
  received them);
* data types and categories: over all findings, and per destination;
* findings: (host, data type);
* violations: (policy, rule, app, host). A *regression* is a deny violation of NEW that no allow
  entry covers (``allowed`` null) and that OLD does not have as such: ``datareach diff`` then
  exits 3.

Input documents are checked before use (:func:`check_audit`, against the record specs that
:mod:`datareach.schema.contract` derives from the declarations): anything else, including a
document of a major ``schema_version`` this code does not read, raises
:class:`AuditDocumentError` naming the file and the JSON path of the problem. Schema 1.x and 2.x
documents diff with each other: 2.0 only changed how records refer to each other (ids instead
of list positions), and nothing here compares those references.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from datareach._version import __version__
from datareach.report.markdown import md_code, md_list, md_table, md_text, sha_cell
from datareach.report.terminal import inert_json, safe
from datareach.report.wording import company, reach_line
from datareach.schema import (
    BulkCount,
    ClientSummary,
    DataSource,
    Destination,
    DnsAnswer,
    Exchange,
    Finding,
    InputReport,
    OwnerSummary,
    Violation,
)
from datareach.schema.contract import CURRENT_MAJOR, READABLE_MAJORS, Spec, record_spec, schema_major

#: Version of the diff document's own layout.
DIFF_SCHEMA_VERSION = "1.0"
#: The audit documents' major schema version this datareach writes, and the ones it reads.
AUDIT_SCHEMA_MAJOR = CURRENT_MAJOR
AUDIT_SCHEMA_MAJORS = READABLE_MAJORS
#: Audit documents larger than this are refused (a diff loads both whole).
MAX_DOCUMENT_BYTES = 1 << 30

EXIT_OK = 0
EXIT_REGRESSION = 3


class AuditDocumentError(ValueError):
    """A file or object that is not an audit JSON document this datareach can read."""


# ------------------------------------------------------------------------------------------
# Checking the input documents

_KIND_NAMES = {"str": "a string", "str?": "a string or null", "int": "an integer", "int?": "an integer or null",
               "dict": "an object", "dict?": "an object or null", "list": "a list", "list[str]": "a list of strings",
               "list[int]": "a list of integers", "list[dict]": "a list of objects", "bool": "true or false",
               "num": "a number", "time": "an ISO 8601 time or null"}


def _json_kind(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return "an object" if isinstance(v, dict) else type(v).__name__


def _is(v: object, kind: str) -> bool:
    if kind == "str":
        return isinstance(v, str)
    if kind == "str?":
        return v is None or isinstance(v, str)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "int?":
        return v is None or (isinstance(v, int) and not isinstance(v, bool))
    if kind == "time":
        return v is None or isinstance(v, str)
    if kind == "num":
        return isinstance(v, int | float) and not isinstance(v, bool)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "dict":
        return isinstance(v, dict)
    if kind == "dict?":
        return v is None or isinstance(v, dict)
    if kind == "list":
        return isinstance(v, list)
    if kind == "list[str]":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == "list[int]":
        return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    if kind == "list[dict]":
        return isinstance(v, list) and all(isinstance(x, dict) for x in v)
    raise AssertionError(kind)  # pragma: no cover


# The specs of what is not a record (the records' come from their declarations: _document_spec)
_PARENT: Spec = {"entity": ("str", True, None), "name": ("str", True, None), "hq_country": ("str?", False, None)}
_OWNER: Spec = {"entity": ("str", True, None), "name": ("str", True, None), "ultimate_parent": ("dict", True, _PARENT)}
_REACH: Spec = {"jurisdiction": ("str?", True, None), "basis": ("str", True, None), "name": ("str?", False, None),
                "path": ("list[str]", False, None)}
_POLICY: Spec = {"id": ("str", True, None), "origin": ("str?", False, None), "sha256": ("str?", False, None),
                 "name": ("str?", False, None)}
_ALLOWED: Spec = {"reason": ("str?", False, None), "until": ("str?", False, None)}
_SUMMARY: Spec = {"verdict": ("str?", False, None)}
_TOOL: Spec = {"name": ("str", True, None), "version": ("str?", False, None)}


def _document_spec(major: int) -> Spec:
    """The spec of a whole audit document of ``major`` schema; its records' specs are
    :func:`datareach.schema.contract.record_spec`'s."""
    return {
        "tool": ("dict", True, _TOOL), "generated_at": ("str?", True, None), "summary": ("dict", True, _SUMMARY),
        "inputs": ("list[dict]", True, record_spec(InputReport, major)),
        "data_sources": ("list[dict]", True, record_spec(DataSource, major)),
        "destinations": ("list[dict]", True, record_spec(Destination, major, {"owner": _OWNER, "reach": _REACH})),
        "exchanges": ("list[dict]", False, record_spec(Exchange, major)),
        "dns": ("list[dict]", False, record_spec(DnsAnswer, major)),
        "findings": ("list[dict]", False, record_spec(Finding, major)),
        "policies": ("list[dict]", False, _POLICY),
        "violations": ("list[dict]", False, record_spec(Violation, major, {"allowed": _ALLOWED})),
        "detection": ("dict", False, None),
        "organisation": ("dict", False, {
            "period": ("dict", False, None), "rows": ("dict", False, None), "limits": ("dict", False, None),
            "owners": ("list[dict]", False, record_spec(OwnerSummary, major)),
            "clients": ("list[dict]", False, record_spec(ClientSummary, major)),
            "bulk": ("list[dict]", False, record_spec(BulkCount, major)),
        }),
    }


#: The document spec of each major schema this code reads.
AUDIT_SPECS: dict[int, Spec] = {major: _document_spec(major) for major in AUDIT_SCHEMA_MAJORS}


def _check(obj: dict[str, Any], spec: Spec, where: str, fail: Callable[[str], None]) -> None:
    for key, (kind, required, nested) in spec.items():
        if key not in obj:
            if required:
                fail(f"{where}: no {key!r}")
            continue
        value = obj[key]
        if not _is(value, kind):
            fail(f"{where}.{key}: expected {_KIND_NAMES[kind]}, found {_json_kind(value)}")
        if nested is None or value is None:
            continue
        if isinstance(value, dict):
            _check(value, nested, f"{where}.{key}", fail)
        else:
            for i, item in enumerate(value):
                _check(item, nested, f"{where}.{key}[{i}]", fail)


def check_audit(doc: object, name: str = "document") -> dict[str, Any]:
    """``doc`` if it is an audit document of a schema this code reads (1.x, 2.x) whose records
    have their declared fields, with the right types; else :class:`AuditDocumentError` naming
    ``name`` and what is wrong."""

    def fail(why: str) -> None:
        raise AuditDocumentError(f"{safe(name)}: {why}")

    if not isinstance(doc, dict):
        fail(f"not a datareach audit document: the JSON is {_json_kind(doc)}, not an object")
    assert isinstance(doc, dict)
    if "schema_version" not in doc:
        what = "an `explain` document" if "hosts" in doc else "not a datareach audit document"
        fail(f"{what}: no 'schema_version'")
    version = doc["schema_version"]
    major = schema_major(version)
    if major is None:
        fail(f"$.schema_version: expected \"MAJOR.MINOR\", found {visible_repr(version)}")
    assert major is not None
    if major not in AUDIT_SPECS:
        fail(f"schema_version {safe(version)} is not supported: this datareach ({__version__}) reads audit "
             f"documents of schema {' and '.join(f'{m}.x' for m in AUDIT_SCHEMA_MAJORS)}")
    if "destinations" not in doc and "hosts" in doc:
        fail("an `explain` document, not an audit: no 'destinations'")
    _check(doc, AUDIT_SPECS[major], "$", fail)
    if doc["tool"]["name"] != "datareach":
        fail(f"$.tool.name: not a datareach document (tool {visible_repr(doc['tool']['name'])})")
    return doc


def visible_repr(value: object, limit: int = 60) -> str:
    """``value`` as JSON (``repr`` when it is not JSON), cut to ``limit`` characters, every
    character a terminal could act on escaped: for messages that quote a document."""
    try:
        text = inert_json(orjson.dumps(value)).decode() if not isinstance(value, bytes) else repr(value)
    except TypeError:  # not JSON (an integer past 64 bits...): a document built in Python
        text = repr(value)
    return safe(text if len(text) <= limit else text[:limit] + "…")


def load_audit(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check an audit JSON document; :class:`AuditDocumentError` names the file and the problem."""
    name = safe(os.fspath(path))
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as e:
        raise AuditDocumentError(f"{name}: cannot read the file: {e.strerror or e}") from e
    if len(data) > MAX_DOCUMENT_BYTES:
        raise AuditDocumentError(f"{name}: larger than {MAX_DOCUMENT_BYTES >> 20} MiB; not an audit document")
    if not data.strip():
        raise AuditDocumentError(f"{name}: empty file; not an audit JSON document")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        hint = " (the file ends early: truncated?)" if e.pos >= len(data.rstrip()) else ""
        raise AuditDocumentError(f"{name}: not JSON: {e.msg} at line {e.lineno}, column {e.colno}{hint}") from e
    return check_audit(doc, name)


# ------------------------------------------------------------------------------------------
# The diff


def _owner_not_host(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as 2.2 states ownership: before 2.2, a destination whose name was unknown took
    its network's operator as owner (``owner.basis`` ``as``), with that operator's states on the
    owner basis. Since 2.2 the operator is a host, not the owner: such an owner is read as none,
    and its owner-basis reach as host-basis reach, so that a diff across the change shows what
    changed in the traffic, not in the wording. Other documents are returned as they are."""
    dests = doc.get("destinations") or []
    if not any(isinstance(d.get("owner"), dict) and d["owner"].get("basis") == "as" for d in dests):
        return doc
    out_dests = []
    for d in dests:
        o = d.get("owner")
        if isinstance(o, dict) and o.get("basis") == "as":
            reach: list[dict[str, Any]] = []
            seen: set[tuple[Any, Any]] = set()
            for r in d.get("reach") or []:
                r = {**r, "basis": "host"} if r.get("basis") == "owner" else r
                key = (r.get("jurisdiction"), r.get("basis"))
                if key not in seen:
                    seen.add(key)
                    reach.append(r)
            d = {**d, "owner": None, "reach": reach}
        out_dests.append(d)
    return {**doc, "destinations": out_dests}


def _top(d: dict[str, Any]) -> dict[str, Any] | None:
    o = d.get("owner")
    return o["ultimate_parent"] if o else None


def _top_key(d: dict[str, Any]) -> str | None:
    top = _top(d)
    return (top.get("entity") or top["name"]) if top else None


def _pairs(d: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["jurisdiction"], r["basis"]) for r in d.get("reach") or [] if r.get("jurisdiction")}


def _countries(d: dict[str, Any]) -> set[str]:
    return set(d.get("countries") or ([d["country"]] if d.get("country") else []))


def _dest_entry(d: dict[str, Any]) -> dict[str, Any]:
    o = d.get("owner")
    top = _top(d)
    return {
        "app": d.get("app"), "host": d["host"], "registrable_domain": d.get("registrable_domain"),
        "countries": sorted(_countries(d)),
        "owner": o["name"] if o else None,
        "ultimate_parent": {"entity": top["entity"], "name": top["name"], "hq_country": top.get("hq_country")}
        if top else None,
        "reach": [{"jurisdiction": j, "basis": b} for j, b in sorted(_pairs(d))],
        "data_types": sorted(d.get("data_types") or []),
        "data_categories": sorted(d.get("data_categories") or []),
    }


def _set_change(old: Iterable[Any], new: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    o, n = set(old), set(new)
    return sorted(n - o), sorted(o - n)


def _attribute_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """What differs between two sets of destinations taken together (one host, or one domain)."""
    out: dict[str, Any] = {}
    tops_old = {_top_key(d): _top(d) for d in old}
    tops_new = {_top_key(d): _top(d) for d in new}
    added, removed = _set_change((k for k in tops_old if k), (k for k in tops_new if k))
    if added or removed:
        out["owners_added"] = [tops_new[k]["name"] for k in added]  # type: ignore[index]
        out["owners_removed"] = [tops_old[k]["name"] for k in removed]  # type: ignore[index]
    getters: list[tuple[str, Callable[[dict[str, Any]], set[Any]]]] = [
        ("reach", _pairs), ("countries", _countries),
        ("data_types", lambda d: set(d.get("data_types") or [])),
        ("data_categories", lambda d: set(d.get("data_categories") or []))]
    for field, get in getters:
        before: set[Any] = set().union(*(get(d) for d in old))
        after: set[Any] = set().union(*(get(d) for d in new))
        a, r = _set_change(before, after)
        if field == "reach":
            a = [{"jurisdiction": j, "basis": b} for j, b in a]
            r = [{"jurisdiction": j, "basis": b} for j, b in r]
        if a or r:
            out[f"{field}_added"] = a
            out[f"{field}_removed"] = r
    return out


def _diff_destinations(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    def index(doc: dict[str, Any]) -> tuple[dict[tuple[Any, str], dict[str, Any]], dict[tuple[Any, str], list[Any]]]:
        by_host: dict[tuple[Any, str], dict[str, Any]] = {}
        groups: dict[tuple[Any, str], list[dict[str, Any]]] = {}
        for d in doc["destinations"]:
            by_host[(d.get("app"), d["host"])] = d
            groups.setdefault((d.get("app"), d.get("registrable_domain") or d["host"]), []).append(d)
        return by_host, groups

    old_hosts, old_groups = index(old)
    new_hosts, new_groups = index(new)

    def rotation_group(d: dict[str, Any], other_groups: dict[tuple[Any, str], list[Any]]) -> tuple[Any, str] | None:
        g = (d.get("app"), d.get("registrable_domain") or d["host"])
        if d.get("registrable_domain") and g in other_groups and \
                _top_key(d) in {_top_key(x) for x in other_groups[g]}:
            return g
        return None

    added, removed, changed = [], [], []
    rotated: dict[tuple[Any, str], dict[str, Any]] = {}
    for key in sorted(new_hosts.keys() - old_hosts.keys(), key=_sort_key):
        d = new_hosts[key]
        g = rotation_group(d, old_groups)
        if g is None:
            added.append(_dest_entry(d))
        else:
            rotated.setdefault(g, {"hosts_added": [], "hosts_removed": []})["hosts_added"].append(d["host"])
    for key in sorted(old_hosts.keys() - new_hosts.keys(), key=_sort_key):
        d = old_hosts[key]
        g = rotation_group(d, new_groups)
        if g is None:
            removed.append(_dest_entry(d))
        else:
            rotated.setdefault(g, {"hosts_added": [], "hosts_removed": []})["hosts_removed"].append(d["host"])
    for key in sorted(old_hosts.keys() & new_hosts.keys(), key=_sort_key):
        diff = _attribute_changes([old_hosts[key]], [new_hosts[key]])
        if diff:
            changed.append({"app": key[0], "host": key[1], **diff})
    rotations = []
    for g, hosts in sorted(rotated.items(), key=lambda kv: _sort_key(kv[0])):
        entry = {"app": g[0], "registrable_domain": g[1], **hosts}
        entry.update(_attribute_changes(old_groups.get(g, []), new_groups.get(g, [])))
        rotations.append(entry)
    return {"added": added, "removed": removed, "rotated": rotations, "changed": changed}


def _sort_key(key: tuple[Any, str]) -> tuple[str, str]:
    return (key[0] or "", key[1])


def _owners(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for d in doc["destinations"]:
        top, key = _top(d), _top_key(d)
        if top is None or key is None:
            continue
        entry = out.setdefault(key, {"entity": top.get("entity"), "name": top["name"],
                                     "hq_country": top.get("hq_country"), "hosts": []})
        if d["host"] not in entry["hosts"]:
            entry["hosts"].append(d["host"])
    return out


def _jurisdictions(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for d in doc["destinations"]:
        for r in d.get("reach") or []:
            if not r.get("jurisdiction"):
                continue  # (an anycast / CDN edge server's location: not determinable)
            entry = out.setdefault((r["jurisdiction"], r["basis"]), {
                "jurisdiction": r["jurisdiction"], "name": r.get("name"), "basis": r["basis"], "hosts": []})
            if d["host"] not in entry["hosts"]:
                entry["hosts"].append(d["host"])
    return out


def _findings_by(doc: dict[str, Any], key: Callable[[dict[str, Any]], Iterable[Any]],
                 make: Callable[[Any], dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for f in doc.get("findings") or []:
        for k in key(f):
            entry = out.setdefault(k, make(k))
            if f["host"] not in entry["hosts"]:
                entry["hosts"].append(f["host"])
    return out


def _data_reach(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(jurisdiction, data type) -> the hosts through which that state can reach that data."""
    reach = {(d.get("app"), d["host"]): {r["jurisdiction"] for r in d.get("reach") or [] if r.get("jurisdiction")}
             for d in doc["destinations"]}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for f in doc.get("findings") or []:
        for j in sorted(reach.get((f.get("app"), f["host"]), ())):
            entry = out.setdefault((j, f["data_type"]), {"jurisdiction": j, "data_type": f["data_type"],
                                                         "categories": [], "hosts": []})
            for c in f.get("categories") or []:
                if c not in entry["categories"]:
                    entry["categories"].append(c)
            if f["host"] not in entry["hosts"]:
                entry["hosts"].append(f["host"])
    return out


def _findings(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for f in doc.get("findings") or []:
        entry = out.setdefault((f["host"], f["data_type"]), {
            "host": f["host"], "data_type": f["data_type"], "apps": [], "categories": [], "encodings": [],
            "locations": [], "count": 0})
        entry["count"] += 1
        for field, value in (("apps", f.get("app")), ("encodings", " > ".join(f.get("encoding") or [])),
                             ("locations", f.get("location"))):
            if value and value not in entry[field]:
                entry[field].append(value)
        for c in f.get("categories") or []:
            if c not in entry["categories"]:
                entry["categories"].append(c)
    return out


def _violation_key(v: dict[str, Any]) -> tuple[str, str, str, str]:
    return (v["policy"], v["rule"], v.get("app") or "", v["host"])


def _violation_entry(v: dict[str, Any]) -> dict[str, Any]:
    return {"policy": v["policy"], "rule": v["rule"], "action": v["action"], "title": v.get("title"),
            "citation": v.get("citation"), "app": v.get("app"), "host": v["host"],
            "jurisdictions": v.get("jurisdictions") or [], "data_types": v.get("data_types") or [],
            "allowed": v.get("allowed")}


def _blocking(v: dict[str, Any]) -> bool:
    return v["action"] == "deny" and not v.get("allowed")


def _diff_violations(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    o = {_violation_key(v): v for v in old.get("violations") or []}
    n = {_violation_key(v): v for v in new.get("violations") or []}
    order = {"deny": 0, "warn": 1}

    def rank(k: tuple[str, str, str, str], src: dict[Any, dict[str, Any]]) -> tuple[Any, ...]:
        v = src[k]
        return (bool(v.get("allowed")), order.get(v["action"], 2), *k)

    still = []
    for k in sorted(o.keys() & n.keys(), key=lambda k: rank(k, n)):
        entry = _violation_entry(n[k])
        entry["action_old"] = o[k]["action"]
        entry["allowed_old"] = o[k].get("allowed")
        still.append(entry)
    regressions = [_violation_entry(n[k]) for k in sorted(n, key=lambda k: rank(k, n))
                   if _blocking(n[k]) and not (k in o and _blocking(o[k]))]
    return {
        "added": [_violation_entry(n[k]) for k in sorted(n.keys() - o.keys(), key=lambda k: rank(k, n))],
        "removed": [_violation_entry(o[k]) for k in sorted(o.keys() - n.keys(), key=lambda k: rank(k, o))],
        "still_present": still,
        "regressions": regressions,
    }


def _added_removed(old: dict[Any, dict[str, Any]], new: dict[Any, dict[str, Any]]) -> dict[str, list[Any]]:
    return {"added": [new[k] for k in sorted(new.keys() - old.keys())],
            "removed": [old[k] for k in sorted(old.keys() - new.keys())]}


def _side(doc: dict[str, Any], name: str | None) -> dict[str, Any]:
    return {
        "document": name,
        "schema_version": doc["schema_version"],
        "tool_version": doc["tool"].get("version"),
        "generated_at": doc.get("generated_at"),
        "inputs": [{"path": i["path"], "format": i.get("format"), "size": i.get("size"), "sha256": i["sha256"],
                    "errors": len(i.get("errors") or [])} for i in doc["inputs"]],
        "data_sources": [{"name": s["name"], "kind": s.get("kind"), "version": s.get("version"),
                          "date": s.get("date")} for s in doc["data_sources"]],
        "policies": [{"id": p["id"], "origin": p.get("origin"), "sha256": p.get("sha256")}
                     for p in doc.get("policies") or []],
        "verdict": doc["summary"].get("verdict"),
    }


def _source_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    def by_kind(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for s in doc["data_sources"]:
            out.setdefault(s.get("kind") or s["name"], []).append(s)
        return out

    o, n = by_kind(old), by_kind(new)
    changes = []
    for kind in sorted(o.keys() | n.keys()):
        def versions(sources: list[dict[str, Any]]) -> list[tuple[str, str | None, str | None]]:
            return sorted((s["name"], s.get("version"), s.get("date")) for s in sources)

        vo, vn = versions(o.get(kind, [])), versions(n.get(kind, []))
        if vo != vn:
            changes.append({"kind": kind,
                            "old": [{"name": a, "version": b, "date": c} for a, b, c in vo],
                            "new": [{"name": a, "version": b, "date": c} for a, b, c in vn]})
    return changes


def _warnings(old: dict[str, Any], new: dict[str, Any], sources: list[dict[str, Any]]) -> list[str]:
    out = []

    def label(side: list[dict[str, Any]]) -> str:
        return "; ".join(f"{s['version'] or '?'} of {s['date'] or 'unknown date'}" for s in side) or "absent"

    for change in sources:
        kind = change["kind"]
        what = ("the knowledge base" if kind in ("knowledge-base", "kb-import", "kb-dataset")
                else "the geo data" if kind.startswith("geo") else f"the data source {kind!r}")
        out.append(f"{what} differs between the audits (OLD {label(change['old'])}, NEW {label(change['new'])}): "
                   "a change may come from the data, not from the app")
    if old["tool"].get("version") != new["tool"].get("version"):
        out.append(f"the audits were made by different datareach versions (OLD {old['tool'].get('version')}, "
                   f"NEW {new['tool'].get('version')})")
    pol_old = [(p["id"], p.get("sha256")) for p in old.get("policies") or []]
    pol_new = [(p["id"], p.get("sha256")) for p in new.get("policies") or []]
    if sorted(pol_old) != sorted(pol_new):
        def names(pols: list[tuple[str, Any]]) -> str:
            return ", ".join(p for p, _ in pols) or "none"

        out.append(f"the audits were judged against different policies (OLD: {names(pol_old)}; NEW: "
                   f"{names(pol_new)}; or the same ids with other contents): violations may differ because of "
                   "the policies, not the app")
    for side, doc in (("OLD", old), ("NEW", new)):
        errors = sum(len(i.get("errors") or []) for i in doc["inputs"])
        if errors:
            out.append(f"{side} had {errors} input error(s): part of its capture could not be read, so "
                       "destinations or findings may be missing from it")
    det_old, det_new = old.get("detection") or {}, new.get("detection") or {}
    for field, what in (("enabled", "personal-data detection"), ("profile", "a profile")):
        if field in det_old and field in det_new and det_old[field] != det_new[field]:
            out.append(f"OLD was audited {'with' if det_old[field] else 'without'} {what} and NEW "
                       f"{'with' if det_new[field] else 'without'}: findings are not comparable")
    if sorted(i["sha256"] for i in old["inputs"]) == sorted(i["sha256"] for i in new["inputs"]):
        out.append("both audits read the same capture files (same SHA-256): any difference comes from "
                   "datareach's data, version or options, not from the traffic")
    return out


def diff_audits(old: dict[str, Any], new: dict[str, Any], *, old_name: str | None = None,
                new_name: str | None = None) -> dict[str, Any]:
    """What changed from the audit document ``old`` to ``new`` (both checked first; an invalid
    one raises :class:`AuditDocumentError`). ``old_name``/``new_name`` (file names) are recorded."""
    check_audit(old, old_name or "OLD")
    check_audit(new, new_name or "NEW")
    old, new = _owner_not_host(old), _owner_not_host(new)
    destinations = _diff_destinations(old, new)
    owners = _added_removed(_owners(old), _owners(new))
    jurisdictions = _added_removed(_jurisdictions(old), _jurisdictions(new))

    def type_entry(k: str) -> dict[str, Any]:
        return {"data_type": k, "hosts": []}

    def cat_entry(k: str) -> dict[str, Any]:
        return {"category": k, "hosts": []}

    data_types = _added_removed(_findings_by(old, lambda f: [f["data_type"]], type_entry),
                                _findings_by(new, lambda f: [f["data_type"]], type_entry))
    categories = _added_removed(_findings_by(old, lambda f: f.get("categories") or [], cat_entry),
                                _findings_by(new, lambda f: f.get("categories") or [], cat_entry))
    data_reach = _added_removed(_data_reach(old), _data_reach(new))
    findings = _added_removed(_findings(old), _findings(new))
    violations = _diff_violations(old, new)
    covered = _added_removed(_covered(old), _covered(new))
    sources = _source_changes(old, new)
    summary = {
        "destinations_added": len(destinations["added"]),
        "destinations_removed": len(destinations["removed"]),
        "destinations_rotated": len(destinations["rotated"]),
        "destinations_changed": len(destinations["changed"]),
        "owners_added": len(owners["added"]), "owners_removed": len(owners["removed"]),
        "jurisdictions_added": len(jurisdictions["added"]), "jurisdictions_removed": len(jurisdictions["removed"]),
        "data_types_added": [e["data_type"] for e in data_types["added"]],
        "data_types_removed": [e["data_type"] for e in data_types["removed"]],
        "data_categories_added": [e["category"] for e in categories["added"]],
        "data_categories_removed": [e["category"] for e in categories["removed"]],
        "data_reach_added": len(data_reach["added"]), "data_reach_removed": len(data_reach["removed"]),
        "findings_added": len(findings["added"]), "findings_removed": len(findings["removed"]),
        "violations_added": len(violations["added"]), "violations_removed": len(violations["removed"]),
        "violations_still_present": len(violations["still_present"]),
        "regressions": len(violations["regressions"]),
        "covered_counterparties_added": [e["owner"] for e in covered["added"]],
        "covered_counterparties_removed": [e["owner"] for e in covered["removed"]],
        "verdict_old": old["summary"].get("verdict"), "verdict_new": new["summary"].get("verdict"),
    }
    summary["changed"] = any(
        v for k, v in summary.items()
        if k not in ("violations_still_present", "verdict_old", "verdict_new")) or summary["verdict_old"] != summary[
        "verdict_new"]
    # (a log audit's new covered counterparty -- a company under a country of concern's control
    # that the organisation's devices did not talk to before -- is a regression too)
    summary["regression"] = bool(violations["regressions"]) or bool(covered["added"])
    return {
        "schema_version": DIFF_SCHEMA_VERSION,
        "kind": "datareach-diff",
        "tool": {"name": "datareach", "version": __version__},
        "old": _side(old, old_name),
        "new": _side(new, new_name),
        "data_sources_changed": sources,
        "warnings": _warnings(old, new, sources),
        "summary": summary,
        "destinations": destinations,
        "owners": owners,
        "jurisdictions": jurisdictions,
        "data_types": data_types,
        "data_categories": categories,
        "data_reach": data_reach,
        "findings": findings,
        "violations": violations,
        "covered_counterparties": covered,
    }


def _covered(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A log audit's covered counterparties (``organisation.owners`` with ``covered``), by entity."""
    org = doc.get("organisation") or {}
    return {o["owner_id"]: {"owner": o["owner"], "owner_id": o["owner_id"], "parent": o.get("parent"),
                            "jurisdictions": o.get("jurisdictions") or [], "clients": o.get("clients"),
                            "bytes_out": o.get("bytes_out")}
            for o in org.get("owners") or [] if o.get("covered")}


def diff_exit_status(d: dict[str, Any]) -> int:
    """3 when NEW has a deny violation, not allowed, that OLD does not have; else 0."""
    return EXIT_REGRESSION if d["summary"]["regression"] else EXIT_OK


# ------------------------------------------------------------------------------------------
# Rendering: shared phrasing


def _top_text(top: dict[str, Any] | None) -> str:
    return company(top["name"], top.get("hq_country")) if top else "owner unknown"


def _reach_text(reach: list[dict[str, Any]]) -> str:
    return reach_line(reach)


def _dest_detail(e: dict[str, Any]) -> str:
    text = f"{_top_text(e['ultimate_parent'])}; server {', '.join(e['countries']) or '?'}; reach {_reach_text(e['reach'])}"
    if e["data_types"]:
        text += f"; data: {', '.join(e['data_types'])}"
    return text


def _change_detail(c: dict[str, Any]) -> str:
    parts = []
    for field, what in (("owners", "owner"), ("reach", "reach"), ("countries", "server country"),
                        ("data_types", "data"), ("data_categories", "categories")):
        for sign, suffix in (("+", "added"), ("-", "removed")):
            items = c.get(f"{field}_{suffix}") or []
            if items:
                shown = _reach_text(items) if field == "reach" else ", ".join(items)
                parts.append(f"{what} {sign}{shown}")
    return "; ".join(parts)


def _violation_detail(v: dict[str, Any]) -> str:
    text = f"{v['action']}: {v.get('title') or v['rule']}; {', '.join(v['jurisdictions'])}"
    if v["data_types"]:
        text += f"; data: {', '.join(v['data_types'])}"
    if v.get("allowed"):
        text += f"; allowed: {v['allowed'].get('reason') or ''}"
    return text


def _where(e: dict[str, Any]) -> str:
    return f"{e['app']}: {e['host']}" if e.get("app") else str(e["host"])


def _rows(d: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(sign, kind, what, details) for every change, in the order the reports show them."""
    rows: list[tuple[str, str, str, str]] = []
    dd = d["destinations"]
    rows += [("+", "destination", _where(e), _dest_detail(e)) for e in dd["added"]]
    rows += [("-", "destination", _where(e), _dest_detail(e)) for e in dd["removed"]]
    for r in dd["rotated"]:
        what = f"{r['app']}: {r['registrable_domain']}" if r.get("app") else r["registrable_domain"]
        detail = f"hosts +{', '.join(r['hosts_added']) or 'none'} -{', '.join(r['hosts_removed']) or 'none'}"
        extra = _change_detail(r)
        rows.append(("~", "rotated hosts", what, detail + (f"; {extra}" if extra else "")))
    rows += [("~", "destination", _where(c), _change_detail(c)) for c in dd["changed"]]
    for sign, part in (("+", "added"), ("-", "removed")):
        rows += [(sign, "owner", _top_text(o), ", ".join(o["hosts"])) for o in d["owners"][part]]
    for sign, part in (("+", "added"), ("-", "removed")):
        rows += [(sign, "jurisdiction", f"{j['jurisdiction']} ({j['basis']})", ", ".join(j["hosts"]))
                 for j in d["jurisdictions"][part]]
    for sign, part in (("+", "added"), ("-", "removed")):
        rows += [(sign, "data type", t["data_type"], ", ".join(t["hosts"])) for t in d["data_types"][part]]
        rows += [(sign, "data category", c["category"], ", ".join(c["hosts"])) for c in d["data_categories"][part]]
    for sign, part in (("+", "added"), ("-", "removed")):
        rows += [(sign, "data reach", f"{r['jurisdiction']} can reach {r['data_type']}",
                  f"through {', '.join(r['hosts'])} ({', '.join(r['categories'])})") for r in d["data_reach"][part]]
    for sign, part in (("+", "added"), ("-", "removed")):
        rows += [(sign, "finding", f"{f['host']}: {f['data_type']}",
                  f"{'; '.join(f['encodings']) or ', '.join(f['locations'])} ({f['count']}x)")
                 for f in d["findings"][part]]
    return rows


def _violation_rows(d: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    v = d["violations"]
    regress = {(x["policy"], x["rule"], x.get("app") or "", x["host"]) for x in v["regressions"]}

    def sign(x: dict[str, Any], default: str) -> str:
        return "!" if (x["policy"], x["rule"], x.get("app") or "", x["host"]) in regress else default

    rows = [(sign(x, "+"), f"{x['policy']}/{x['rule']}", _where(x), _violation_detail(x)) for x in v["added"]]
    rows += [("-", f"{x['policy']}/{x['rule']}", _where(x), _violation_detail(x)) for x in v["removed"]]
    rows += [(sign(x, "="), f"{x['policy']}/{x['rule']}", _where(x), _violation_detail(x)) for x in v["still_present"]]
    return rows


def _headline(d: dict[str, Any]) -> str:
    s = d["summary"]
    if s["regression"]:
        parts = [f"{s['regressions']} new deny violation(s)"] if s["regressions"] else []
        if s.get("covered_counterparties_added"):
            parts.append("new covered counterparties: " + ", ".join(s["covered_counterparties_added"]))
        return "policy regression: " + "; ".join(parts)
    if not s["changed"]:
        return "no changes"
    return "changes, no policy regression"


def _side_text(side: dict[str, Any]) -> str:
    inputs = ", ".join(f"{i['path']} ({i['sha256'][:12]})" for i in side["inputs"]) or "no inputs"
    return f"{inputs}, audited {side['generated_at'] or '?'}"


# ------------------------------------------------------------------------------------------
# Terminal table


def render_diff_table(d: dict[str, Any], color: bool = False, *, width: int | None = None) -> str:
    """The diff for a terminal (rich; ANSI colours when ``color``). Strings are never read as
    markup, and every string from the documents is made printable
    (:func:`~datareach.report.terminal.safe`)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, color_system="auto" if color else None,
                      width=width or 140, highlight=False, soft_wrap=False)
    s = d["summary"]
    style = "bold red" if s["regression"] else "bold"
    console.print(Text(f"datareach diff: {_headline(d)}", style=style))
    console.print(Text(f"OLD: {safe(_side_text(d['old']))}"))
    console.print(Text(f"NEW: {safe(_side_text(d['new']))}"))
    for w in d["warnings"]:
        console.print(Text(f"warning: {safe(w)}", style="yellow"))
    rows = _rows(d)
    colours = {"+": "green", "-": "red", "~": "yellow", "!": "bold red", "=": "dim"}
    if rows:
        t = Table(title="Changes", title_justify="left")
        t.add_column("", no_wrap=True)
        t.add_column("Kind", no_wrap=True)
        t.add_column("What", overflow="fold")
        t.add_column("Details", overflow="fold")
        for sign, kind, what, detail in rows:
            t.add_row(Text(sign, style=colours[sign]), Text(kind), Text(safe(what)), Text(safe(detail)))
        console.print(t)
    vrows = _violation_rows(d)
    if vrows:
        t = Table(title="Violations (! = regression, + added, - removed, = still present)", title_justify="left")
        t.add_column("", no_wrap=True)
        t.add_column("Policy/rule", overflow="fold")
        t.add_column("Where", overflow="fold")
        t.add_column("Details", overflow="fold")
        for sign, rule, where, detail in vrows:
            t.add_row(Text(sign, style=colours[sign]), Text(safe(rule)), Text(safe(where)), Text(safe(detail)))
        console.print(t)
    console.print(Text(
        f"{s['destinations_added']} destinations added, {s['destinations_removed']} removed, "
        f"{s['destinations_rotated']} domains with rotated hosts, {s['destinations_changed']} changed; owners "
        f"+{s['owners_added']} -{s['owners_removed']}; jurisdictions +{s['jurisdictions_added']} "
        f"-{s['jurisdictions_removed']}; findings +{s['findings_added']} -{s['findings_removed']}; violations "
        f"+{s['violations_added']} -{s['violations_removed']} ={s['violations_still_present']}; verdict "
        f"{safe(s['verdict_old'] or 'none')} -> {safe(s['verdict_new'] or 'none')}"))
    return buf.getvalue()


# ------------------------------------------------------------------------------------------
# Markdown


def render_diff_markdown(d: dict[str, Any], *, max_rows: int = 50) -> str:
    """The diff as GitHub-flavoured Markdown (every string from the documents escaped; see
    :mod:`datareach.report.markdown`)."""
    s = d["summary"]
    icon = "❌" if s["regression"] else ("✅" if not s["changed"] else "🔄")
    out = [f"## datareach diff: {icon} {_headline(d)}", ""]
    for label, side in (("OLD", d["old"]), ("NEW", d["new"])):
        inputs = ", ".join(md_code(i["path"]) for i in side["inputs"]) or "no inputs"
        out.append(f"- {label}: {inputs}, audited {md_text(side['generated_at'] or '?')}, verdict "
                   f"{md_text(side['verdict'] or 'no policy given')}")
    out.append(
        f"- Destinations: {s['destinations_added']} added, {s['destinations_removed']} removed, "
        f"{s['destinations_rotated']} domains with rotated hosts, {s['destinations_changed']} changed; owners "
        f"+{s['owners_added']} / −{s['owners_removed']}; jurisdictions +{s['jurisdictions_added']} / "
        f"−{s['jurisdictions_removed']}; findings +{s['findings_added']} / −{s['findings_removed']}")
    if s["data_types_added"] or s["data_types_removed"]:
        out.append(f"- Data types: added {md_list(s['data_types_added'], code=True)}; removed "
                   f"{md_list(s['data_types_removed'], code=True)}")
    out.append("")
    for w in d["warnings"]:
        out.append(f"> ⚠️ {md_text(w, limit=600)}")
        out.append(">")
    if d["warnings"]:
        out[-1] = ""

    rows = _rows(d)
    if rows:
        out += ["### Changes", ""]
        cells = [[_sign(sign), md_text(kind), md_code(what, table=True), md_text(detail, limit=400)]
                 for sign, kind, what, detail in rows]
        out += [md_table(["", "Kind", "What", "Details"], cells, what="changes", max_rows=max_rows), ""]
    vrows = _violation_rows(d)
    if vrows:
        out += ["### Violations", "", "❗ regression, ➕ added, ➖ removed, ＝ still present", ""]
        cells = [[_sign(sign), md_code(rule, table=True), md_code(where, table=True), md_text(detail, limit=400)]
                 for sign, rule, where, detail in vrows]
        out += [md_table(["", "Policy/rule", "Where", "Details"], cells, what="violations", max_rows=max_rows), ""]
    out += ["<details><summary>Provenance</summary>", ""]
    for label, side in (("OLD", d["old"]), ("NEW", d["new"])):
        out.append(f"{label} (schema {md_text(side['schema_version'])}, datareach "
                   f"{md_text(side['tool_version'] or '?')}):")
        out.append("")
        rows_in = [[md_code(i["path"], table=True), md_text(i["format"] or "?"), sha_cell(i["sha256"])]
                   for i in side["inputs"]]
        out += [md_table(["Input", "Format", "SHA-256"], rows_in, what="inputs", max_rows=max_rows), ""]
        rows_src = [[md_text(x["name"]), md_text(x["version"] or "?"), md_text(x["date"] or "undated")]
                    for x in side["data_sources"]]
        out += [md_table(["Data source", "Version", "Date"], rows_src, what="data sources", max_rows=max_rows), ""]
    out += ["</details>", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _sign(sign: str) -> str:
    return {"+": "➕", "-": "➖", "~": "🔄", "!": "❗", "=": "＝"}[sign]
