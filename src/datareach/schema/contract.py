"""The JSON contract of the audit document, derived from the record declarations.

:mod:`datareach.schema.records` declares every field once, with its JSON kind (``Col.json``)
and whether a reader may rely on it (``Col.required``). From those declarations come:

* :data:`SECTIONS` -- where each record sits in the document (``destinations[]``,
  ``destinations[].servers[]``, ...), and :func:`document_fields` -- the keys an entry of that
  section has, by JSON key (a field's ``Col.key`` where it is not its name), with the few keys
  the document adds to a record (:data:`EXTRA_FIELDS`: ``dns[]`` holds distinct answers, with
  counts);
* :func:`record_spec` -- the validator spec of a record for a major ``schema_version``, which
  ``datareach diff``'s :func:`datareach.report.diff.check_audit` applies: the 2.x spec is the
  declarations as they are; the 1.x spec undoes :data:`CHANGES` (what 2.0 changed);
* :func:`reference_problems` -- the cross-references between records (ids) that must resolve.

tests/test_contract.py checks that the declarations, docs/json-output.md, the validator and the
example capture's document agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from datareach.schema.records import (
    BulkCount,
    ClientSummary,
    Col,
    DataSource,
    Destination,
    DnsAnswer,
    Exchange,
    Finding,
    InputError,
    InputReport,
    OwnerSummary,
    Server,
    Violation,
    json_fields,
)

#: key -> (JSON kind, required, nested spec of an object / of a list's objects)
Spec: TypeAlias = dict[str, tuple[str, bool, "Spec | None"]]

#: The JSON kinds a ``Col.json`` may name. ``time`` is an ISO 8601 string, or null.
KINDS: tuple[str, ...] = ("str", "str?", "int", "int?", "num", "bool", "time", "dict", "dict?", "list",
                          "list[str]", "list[int]", "list[dict]")

#: The major ``schema_version`` of the documents this code writes, and the ones it can read.
CURRENT_MAJOR = 2
READABLE_MAJORS = (1, 2)

#: Where each record sits in the audit document: the JSON path of its list (``[]`` per list).
SECTIONS: dict[str, type] = {
    "data_sources[]": DataSource,
    "inputs[]": InputReport,
    "inputs[].errors[]": InputError,
    "destinations[]": Destination,
    "destinations[].servers[]": Server,
    "exchanges[]": Exchange,
    "dns[]": DnsAnswer,
    "findings[]": Finding,
    "violations[]": Violation,
    "organisation.owners[]": OwnerSummary,
    "organisation.clients[]": ClientSummary,
    "organisation.bulk[]": BulkCount,
}

#: Records nested in another record's field: (record, field) -> the nested record.
NESTED: dict[tuple[type, str], type] = {
    (InputReport, "errors"): InputError,
    (Destination, "servers"): Server,
}

#: Keys the document adds to a record's declared ones. ``dns[]`` lists *distinct* answers
#: (same name, address and chain): when the first was seen, how many there were, from which input.
EXTRA_FIELDS: dict[type, dict[str, Col]] = {
    DnsAnswer: {
        "first_seen": Col("float64", "when this answer was first seen", "time"),
        "answers": Col("int64", "how many times this answer was seen", "int"),
        "input": Col("int32", "index into inputs[]", "int"),
    },
}


@dataclass(frozen=True, slots=True)
class Change:
    """A field that ``schema_version`` 2.0 added or changed."""

    record: type
    field: str
    #: The field's JSON kind in 1.x; None: 1.x documents do not have it.
    before: str | None
    what: str


#: What 2.0 changed from 1.x: records refer to each other by id instead of list position.
CHANGES: tuple[Change, ...] = (
    Change(Destination, "id", None, "new: the destination's id, D<n>"),
    Change(Exchange, "id", None, "new: the exchange's id, E<input>.<n>"),
    Change(Exchange, "uid", None, "new: the uid of the connection that carried the exchange"),
    Change(Finding, "id", None, "new: the finding's id, F<n>"),
    Change(Finding, "uid", None, "new: the uid of the connection that carried the finding's exchange"),
    Change(Finding, "exchange", "int", "the exchange's id, was its index in exchanges[]"),
    Change(Violation, "destination", "int", "the destination's id, was its index in destinations[]"),
    Change(Violation, "findings", "list[int]", "the findings' ids, were their indexes in findings[]"),
)


def json_key(name: str, col: Col) -> str:
    """The key of a record's field in the JSON document."""
    return col.key or name


def document_fields(cls: type) -> dict[str, Col]:
    """The keys an entry of ``cls``'s section has in the document (schema 2.x), with their columns."""
    out = {json_key(name, col): col for name, col in json_fields(cls).items()}
    out.update(EXTRA_FIELDS.get(cls, {}))
    return out


def _major_kind(cls: type, name: str, col: Col, major: int) -> str | None:
    """The JSON kind of a field in documents of ``major`` (None: not in them)."""
    assert col.json is not None
    if major >= CURRENT_MAJOR:
        return col.json
    for c in CHANGES:
        if c.record is cls and c.field == name:
            return c.before
    return col.json


def record_spec(cls: type, major: int = CURRENT_MAJOR,
                nested: Mapping[str, Spec] | None = None) -> Spec:
    """The validator spec of an entry of ``cls`` in an audit document of ``major`` schema:
    every JSON field, its kind and whether it is required, from the declarations. Nested records
    (:data:`NESTED`) get their own spec; ``nested`` gives the spec of the other objects a field
    holds (an owner, the reach entries: not records)."""
    out: Spec = {}
    extra = {k: (k, c) for k, c in EXTRA_FIELDS.get(cls, {}).items()}
    fields = {json_key(n, c): (n, c) for n, c in json_fields(cls).items()} | extra
    for key, (name, col) in fields.items():
        kind = _major_kind(cls, name, col, major)
        if kind is None:
            continue
        inner: Spec | None = None
        if (cls, name) in NESTED:
            inner = record_spec(NESTED[(cls, name)], major)
        elif nested and key in nested:
            inner = nested[key]
        out[key] = (kind, col.required, inner)
    if nested:
        unknown = set(nested) - set(out)
        if unknown:
            raise KeyError(f"{cls.__name__} has no JSON field {sorted(unknown)}")
    return out


def schema_major(version: object) -> int | None:
    """The major number of a ``schema_version`` string ("2.0" -> 2); None if it is not one."""
    m = re.fullmatch(r"(\d{1,6})\.(\d{1,6})", version) if isinstance(version, str) else None
    return int(m.group(1)) if m else None


# ------------------------------------------------------------------------------------------
# Cross-references


_ID_FORMATS = {"destinations": r"D\d+", "exchanges": r"E\d+\.\d+", "findings": r"F\d+"}
_UID = re.compile(r"C\d+\.\d+")


def _lookup(ids: dict[str, dict[str, Any]], ref: object) -> dict[str, Any] | None:
    return ids.get(ref) if isinstance(ref, str) else None


def reference_problems(doc: Mapping[str, Any]) -> list[str]:
    """What does not resolve in a 2.x audit document: ids that are not unique or not of their
    form (``D<n>`` with n the destination's position, ``E<input>.<n>``, ``F<n>`` with n the
    finding's position), a finding's exchange, a violation's destination or findings that name no
    entry, a finding whose host, app or uid differs from its exchange's, a violation whose
    host/app differs from its destination's, an exchange whose (app, host) has no destination.
    Empty when everything resolves. The document's shapes are assumed checked."""
    problems: list[str] = []
    by_id: dict[str, dict[str, dict[str, Any]]] = {}
    for section, form in _ID_FORMATS.items():
        ids: dict[str, dict[str, Any]] = {}
        for i, entry in enumerate(doc.get(section) or []):
            eid = entry.get("id")
            where = f"$.{section}[{i}].id"
            if not isinstance(eid, str) or not re.fullmatch(form, eid):
                problems.append(f"{where}: {eid!r} is not an id of the form {form}")
                continue
            if eid in ids:
                problems.append(f"{where}: {eid!r} is not unique")
            ids.setdefault(eid, entry)
            if section in ("destinations", "findings") and eid[1:] != str(i):
                problems.append(f"{where}: {eid!r} is not {eid[0]}{i}, its position")
            if section == "exchanges" and eid[1:].split(".")[0] != str(entry.get("input")):
                problems.append(f"{where}: {eid!r} does not name the exchange's input {entry.get('input')!r}")
        by_id[section] = ids
    for i, e in enumerate(doc.get("exchanges") or []):
        uid = e.get("uid")
        if uid is not None and not (isinstance(uid, str) and _UID.fullmatch(uid)):
            problems.append(f"$.exchanges[{i}].uid: {uid!r} is not a connection uid (C<input>.<n>)")
    dests = {(d.get("app"), d.get("host")) for d in doc.get("destinations") or []}
    for i, e in enumerate(doc.get("exchanges") or []):
        if (e.get("app"), e.get("host")) not in dests:
            problems.append(f"$.exchanges[{i}]: no destination for app {e.get('app')!r}, host {e.get('host')!r}")
    for i, f in enumerate(doc.get("findings") or []):
        ex = _lookup(by_id["exchanges"], f.get("exchange"))
        if ex is None:
            problems.append(f"$.findings[{i}].exchange: {f.get('exchange')!r} names no exchange")
            continue
        for key in ("host", "app", "uid"):
            if f.get(key) != ex.get(key):
                problems.append(f"$.findings[{i}].{key}: {f.get(key)!r}, but its exchange's is {ex.get(key)!r}")
    for i, v in enumerate(doc.get("violations") or []):
        d = _lookup(by_id["destinations"], v.get("destination"))
        if d is None:
            problems.append(f"$.violations[{i}].destination: {v.get('destination')!r} names no destination")
        else:
            for key in ("host", "app"):
                if v.get(key) != d.get(key):
                    problems.append(f"$.violations[{i}].{key}: {v.get(key)!r}, but its destination's is "
                                    f"{d.get(key)!r}")
        for j, fid in enumerate(v.get("findings") or []):
            if _lookup(by_id["findings"], fid) is None:
                problems.append(f"$.violations[{i}].findings[{j}]: {fid!r} names no finding")
    return problems
