"""The JSON contract: the record declarations (:mod:`datareach.schema.records`), their
documentation (docs/json-output.md), ``datareach diff``'s validator and the documents datareach
writes all say the same thing.

* every record's section of docs/json-output.md has a table listing exactly its declared JSON
  fields, each with its declared type, and the "Changes" section names every change 2.0 made;
* the validator (:data:`datareach.report.diff.AUDIT_SPECS`) checks exactly the declared fields,
  requires exactly the declared required ones, with their kinds (1.x: before :data:`CHANGES`);
* the audit of the example captures (with a profile and the policy presets) has exactly the
  declared fields per record, and every reference in it resolves.

Each check is a function returning what disagrees, and each is also shown to catch a
deliberately broken declaration, document, validator or audit.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest

import datareach
from datareach.engine.result import SCHEMA_VERSION
from datareach.report.diff import _KIND_NAMES, AUDIT_SPECS, AuditDocumentError, check_audit
from datareach.schema import Col, Exchange, Finding, Violation, columns
from datareach.schema.contract import (
    CHANGES,
    CURRENT_MAJOR,
    KINDS,
    SECTIONS,
    Spec,
    document_fields,
    record_spec,
    reference_problems,
)
from datareach.schema.records import record

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "json-output.md"
EXAMPLES = ROOT / "examples"
CAPTURES = (EXAMPLES / "mobile-app-session.pcapng", EXAMPLES / "mobile-app-session-v2.pcapng")
PROFILE = EXAMPLES / "profile.toml"
POLICIES = ["us-doj-bulk-data", "eu-gdpr-transfers", "us-padfa"]

#: The type column of docs/json-output.md -> the JSON kind it documents.
DOC_TYPES = {
    "string": "str", "string or null": "str?", "int": "int", "int or null": "int?", "number": "num",
    "bool": "bool", "time": "time", "object": "dict", "object or null": "dict?", "list": "list[dict]",
    "list of string": "list[str]", "list of int": "list[int]",
}


# ------------------------------------------------------------------------------------------
# The checks: each returns what disagrees


def doc_tables(markdown: str) -> dict[str, list[tuple[list[str], str]]]:
    """Heading (its backticked name, e.g. ``destinations[]``) -> the rows of the first table
    under it, before the next heading: (the field names of the row's first cell, its type)."""
    out: dict[str, list[tuple[list[str], str]]] = {}
    current: list[tuple[list[str], str]] | None = None
    in_table = False
    for line in markdown.splitlines():
        heading = re.fullmatch(r"#{2,4} `([^`]+)`", line.strip())
        if line.startswith("#"):
            current = out.setdefault(heading.group(1), []) if heading else None
            in_table = False
            continue
        if current is None:
            continue
        if not line.startswith("|"):
            if in_table:  # the first table ended
                current = None
            continue
        in_table = True
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("field", "") or set(cells[0]) <= set("-: "):
            continue
        names = [n.removesuffix("[]") for n in re.findall(r"`([^`]+)`", cells[0])]
        current.append((names, cells[1] if len(cells) > 1 else ""))
    return out


def doc_problems(markdown: str, sections: dict[str, type] = SECTIONS) -> list[str]:
    """Where docs/json-output.md and the declarations disagree on a record's fields or types."""
    tables = doc_tables(markdown)
    problems = []
    for section, cls in sections.items():
        rows = tables.get(section)
        if not rows:
            problems.append(f"{section}: no `{section}` heading with a field table")
            continue
        documented: dict[str, str] = {}
        for names, typ in rows:
            for name in names:
                if name in documented:
                    problems.append(f"{section}: `{name}` documented twice")
                documented[name] = typ
        declared = document_fields(cls)
        for name in declared.keys() - documented.keys():
            problems.append(f"{section}: `{name}` is declared ({cls.__name__}) but not documented")
        for name in documented.keys() - declared.keys():
            problems.append(f"{section}: `{name}` is documented but {cls.__name__} does not declare it")
        for name in declared.keys() & documented.keys():
            kind = DOC_TYPES.get(documented[name])
            if kind != declared[name].json:
                problems.append(f"{section}: `{name}` is documented as {documented[name]!r}, declared "
                                f"{declared[name].json!r}")
    return problems


def changes_problems(markdown: str) -> list[str]:
    """What the "Changes" section of docs/json-output.md does not say about 2.0."""
    m = re.search(r"^## Changes\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    if m is None:
        return ["no '## Changes' section"]
    text = m.group(1)
    problems = []
    if f"### {SCHEMA_VERSION} " not in text:
        problems.append(f"Changes: no '### {SCHEMA_VERSION}' heading")
    paths = {cls: path for path, cls in SECTIONS.items()}
    for c in CHANGES:
        field = f"`{paths[c.record]}.{c.field}`"
        if field not in text:
            problems.append(f"Changes: {field} is not mentioned")
    return problems


def _spec_at(spec: Spec, section: str) -> Spec | None:
    """The spec of a section's entries (``destinations[].servers[]`` -> servers' entries)."""
    current: Spec | None = spec
    for part in section.split("."):
        entry = current.get(part.removesuffix("[]")) if current is not None else None
        if entry is None:
            return None
        current = entry[2]
    return current


def validator_problems(specs: dict[int, Spec], sections: dict[str, type] = SECTIONS) -> list[str]:
    """Where the validator of each major schema and the declarations disagree."""
    problems = []
    for major, spec in specs.items():
        for section, cls in sections.items():
            entry = _spec_at(spec, section)
            if entry is None:
                problems.append(f"{major}.x {section}: not validated")
                continue
            expected: dict[str, tuple[str, bool]] = {k: (c.json or "", c.required)
                                                      for k, c in document_fields(cls).items()}
            if major < CURRENT_MAJOR:
                key = {n: c.key or n for n, c in columns(cls)}
                for c in CHANGES:
                    if c.record is cls:
                        if c.before is None:
                            expected.pop(key[c.field])
                        else:
                            expected[key[c.field]] = (c.before, expected[key[c.field]][1])
            checked = {k: (kind, required) for k, (kind, required, _) in entry.items()}
            for k in expected.keys() - checked.keys():
                problems.append(f"{major}.x {section}.{k}: declared but not validated")
            for k in checked.keys() - expected.keys():
                problems.append(f"{major}.x {section}.{k}: validated but not declared")
            for k in expected.keys() & checked.keys():
                if expected[k][1] != checked[k][1]:
                    problems.append(f"{major}.x {section}.{k}: required {expected[k][1]} in the declaration, "
                                    f"{checked[k][1]} in the validator")
                if expected[k][0] != checked[k][0]:
                    problems.append(f"{major}.x {section}.{k}: kind {expected[k][0]!r} in the declaration, "
                                    f"{checked[k][0]!r} in the validator")
    return problems


def _entries(doc: dict[str, Any], section: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON path, entry) of every entry of a section (``inputs[].errors[]``: every input's).
    A part without ``[]`` is an object (``organisation.owners[]``: the entries of the list
    ``owners`` of the object ``organisation``), and may be absent (a capture's document has no
    ``organisation``): then the section has no entries."""
    level: list[tuple[str, Any]] = [("$", doc)]
    for part in section.split("."):
        key = part.removesuffix("[]")
        if part.endswith("[]"):
            level = [(f"{where}.{key}[{i}]", item) for where, node in level for i, item in enumerate(node[key])]
        else:
            level = [(f"{where}.{key}", node[key]) for where, node in level if key in node]
    yield from level


def key_problems(doc: dict[str, Any], sections: dict[str, type] = SECTIONS,
                 absent: frozenset[str] = frozenset()) -> list[str]:
    """Where the document's entries and the declarations disagree on keys: an entry with a key
    not declared, or without a required one; a section (with entries) in which a declared key is
    never there, unless its ``section.key`` is in ``absent``."""
    problems = []
    for section, cls in sections.items():
        declared = document_fields(cls)
        required = {k for k, c in declared.items() if c.required}
        seen: set[str] = set()
        n = 0
        for where, entry in _entries(doc, section):
            n += 1
            seen |= entry.keys()
            for k in sorted(entry.keys() - declared.keys()):
                problems.append(f"{where}.{k}: not declared ({cls.__name__})")
            for k in sorted(required - entry.keys()):
                problems.append(f"{where}: no {k!r}, declared required ({cls.__name__})")
        if n:
            for k in sorted(declared.keys() - seen - {a.split(".")[-1] for a in absent
                                                       if a.rsplit(".", 1)[0] == section}):
                problems.append(f"{section}.{k}: declared ({cls.__name__}) but in no entry of the document")
    return problems


# ------------------------------------------------------------------------------------------
# The documents


@functools.cache
def _audit(capture: Path, reveal: bool) -> dict[str, Any]:
    return datareach.audit([capture], profile=PROFILE, policies=POLICIES, reveal=reveal).to_dict()


def audited(capture: Path = CAPTURES[0], reveal: bool = False) -> dict[str, Any]:
    """The audit document of ``capture`` with the example profile, judged against the presets."""
    return copy.deepcopy(_audit(capture, reveal))


@functools.cache
def _errors_audit(tmp: Path) -> dict[str, Any]:
    raw = CAPTURES[0].read_bytes()
    cut = tmp / "cut.pcapng"
    cut.write_bytes(raw[: len(raw) // 3])
    har = json.loads((ROOT / "tests" / "data" / "har" / "chrome.har").read_text(encoding="utf-8"))
    har["log"]["entries"][0]["request"]["url"] = 5
    bad = tmp / "bad.har"
    bad.write_text(json.dumps(har), encoding="utf-8")
    return datareach.audit([cut, bad], profile=PROFILE).to_dict()


@pytest.fixture(scope="module")
def errors_audit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An audit of a truncated pcapng and a HAR file with a bad entry: inputs with errors."""
    return copy.deepcopy(_errors_audit(tmp_path_factory.mktemp("bad-inputs")))


# ------------------------------------------------------------------------------------------
# Declarations and documentation


def test_every_json_kind_is_known_to_the_validator() -> None:
    for cls in SECTIONS.values():
        for name, col in document_fields(cls).items():
            assert col.json in KINDS, (cls.__name__, name, col.json)
            assert col.json in _KIND_NAMES, (cls.__name__, name, col.json)
    assert set(KINDS) == set(_KIND_NAMES)


def test_every_record_with_json_fields_has_a_section() -> None:
    from datareach.schema import records

    def has_json(cls: type) -> bool:
        try:
            return any(c.json for _, c in columns(cls))
        except TypeError:  # not a record (ConnectionBatch): no columns
            return False

    with_json = {cls for cls in vars(records).values()
                 if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls is not Col
                 and cls.__module__ == records.__name__ and has_json(cls)}
    assert with_json == set(SECTIONS.values())


def test_docs_list_exactly_the_declared_fields() -> None:
    assert doc_problems(DOC.read_text(encoding="utf-8")) == []


def test_docs_state_the_schema_version_and_its_changes() -> None:
    markdown = DOC.read_text(encoding="utf-8")
    assert f'| `schema_version` | string | `"{SCHEMA_VERSION}"`' in markdown
    assert changes_problems(markdown) == []
    assert SCHEMA_VERSION.split(".")[0] == str(CURRENT_MAJOR)


def test_the_doc_check_catches_a_broken_doc() -> None:
    markdown = DOC.read_text(encoding="utf-8")
    # a field left out (documented together with another: both count)
    dropped = markdown.replace("| `server_ip` | string or null | the server's address |\n", "")
    assert dropped != markdown
    assert doc_problems(dropped) == ["exchanges[]: `server_ip` is declared (Exchange) but not documented"]
    together = markdown.replace("| `packets_out`, `packets_in` | int |", "| `packets_out` | int |")
    assert doc_problems(together) == ["destinations[]: `packets_in` is declared (Destination) but not documented"]
    # a field that is not declared, a wrong type, a section gone
    extra = markdown.replace("| `action` | string |", "| `severity` | int | made up |\n| `action` | string |")
    assert doc_problems(extra) == ["violations[]: `severity` is documented but Violation does not declare it"]
    old_type = markdown.replace("| `exchange` | string | the `id`", "| `exchange` | int | the `id`")
    assert doc_problems(old_type) == ["findings[]: `exchange` is documented as 'int', declared 'str'"]
    no_dns = markdown.replace("## `dns[]`", "## DNS")
    assert doc_problems(no_dns) == ["dns[]: no `dns[]` heading with a field table"]
    # the Changes section
    assert changes_problems(markdown.replace("`violations[].findings`", "violations' findings"))
    assert changes_problems(markdown.replace("## Changes", "## History")) == ["no '## Changes' section"]


def _broken_violation(**override: Any) -> type:
    """Violation re-declared with one field's column changed (or a field added)."""
    ns: dict[str, Any] = {"__annotations__": {}}
    for name, col in columns(Violation):
        col = override.pop(name, col)
        ns["__annotations__"][name] = Annotated[Any, col]
    for name, col in override.items():
        ns["__annotations__"][name] = Annotated[Any, col]
        ns[name] = None
    return record(type("Violation", (), ns))


def test_the_checks_catch_a_broken_declaration() -> None:
    markdown = DOC.read_text(encoding="utf-8")
    severity = _broken_violation(severity=Col("int32", "made up", "int"))
    assert doc_problems(markdown, {"violations[]": severity}) == [
        "violations[]: `severity` is declared (Violation) but not documented"]
    assert validator_problems({2: AUDIT_SPECS[2]}, {"violations[]": severity}) == [
        "2.x violations[].severity: declared but not validated"]
    as_index = _broken_violation(destination=Col("int32", "index", "int"))
    assert doc_problems(markdown, {"violations[]": as_index}) == [
        "violations[]: `destination` is documented as 'string', declared 'int'"]
    doc = audited()
    assert key_problems(doc, {"violations[]": severity}) == [
        "violations[].severity: declared (Violation) but in no entry of the document"]
    no_id = _broken_violation(policy=Col("string", "", None))
    problems = key_problems(doc, {"violations[]": no_id})
    assert problems and all(p.endswith(".policy: not declared (Violation)") for p in problems)


# ------------------------------------------------------------------------------------------
# The validator


def test_the_validator_is_the_declarations() -> None:
    assert validator_problems(AUDIT_SPECS) == []
    assert set(AUDIT_SPECS) == {1, 2}
    for major in AUDIT_SPECS:
        for section, cls in SECTIONS.items():
            entry = _spec_at(AUDIT_SPECS[major], section)
            assert entry is not None
            assert {k: v[:2] for k, v in entry.items()} == {k: v[:2] for k, v in record_spec(cls, major).items()}


def test_the_validator_check_catches_a_hand_written_spec() -> None:
    broken = copy.deepcopy(AUDIT_SPECS)
    findings = broken[2]["findings"][2]
    assert findings is not None
    findings["location"] = ("str", False, None)  # the old hand-written spec: not required
    del findings["uid"]
    findings["value_clear"] = ("str", False, None)
    assert sorted(validator_problems(broken)) == [
        "2.x findings[].location: required True in the declaration, False in the validator",
        "2.x findings[].uid: declared but not validated",
        "2.x findings[].value_clear: validated but not declared",
    ]
    broken = copy.deepcopy(AUDIT_SPECS)
    violations = broken[1]["violations"][2]
    assert violations is not None
    violations["destination"] = ("str", False, None)  # 2.0's kind in a 1.x spec
    assert validator_problems(broken) == [
        "1.x violations[].destination: kind 'int' in the declaration, 'str' in the validator"]


def test_the_validator_refuses_what_the_declarations_require() -> None:
    for section, cls in SECTIONS.items():
        doc = audited(CAPTURES[1])
        entries = list(_entries(doc, section))
        if not entries:
            continue
        where, entry = entries[0]
        for key, col in document_fields(cls).items():
            if not col.required:
                continue
            broken = copy.deepcopy(entry)
            del entry[key]
            with pytest.raises(AuditDocumentError, match=re.escape(f"{where}: no {key!r}")):
                check_audit(doc)
            entry.clear()
            entry.update(broken)


# ------------------------------------------------------------------------------------------
# The documents datareach writes


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_the_example_audit_has_exactly_the_declared_fields(capture: Path) -> None:
    doc = audited(capture)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert check_audit(doc) is doc
    assert doc["findings"] and doc["violations"] and doc["exchanges"] and doc["dns"]
    # a finding's value is only there with --reveal; inputs[].errors only with errors (below)
    assert all("value" not in f for f in doc["findings"])
    assert key_problems(doc, absent=frozenset({"findings[].value"}),
                        sections={k: v for k, v in SECTIONS.items() if k != "inputs[].errors[]"}) == []
    revealed = audited(capture, reveal=True)
    assert key_problems(revealed, sections={k: v for k, v in SECTIONS.items() if k != "inputs[].errors[]"}) == []


def test_input_errors_have_exactly_the_declared_fields(errors_audit: dict[str, Any]) -> None:
    errors = [e for i in errors_audit["inputs"] for e in i["errors"]]
    assert any("offset" in e for e in errors) and any("json_path" in e for e in errors)
    assert key_problems(errors_audit, {"inputs[]": SECTIONS["inputs[]"],
                                       "inputs[].errors[]": SECTIONS["inputs[].errors[]"]}) == []
    assert check_audit(errors_audit) is errors_audit


def test_the_key_check_catches_extra_and_missing_keys() -> None:
    doc = audited()
    doc["findings"][2]["exchange_index"] = 1
    del doc["exchanges"][0]["id"]
    for e in doc["exchanges"]:
        e.pop("decode_cuts")
    assert key_problems(doc) == [
        "$.exchanges[0]: no 'id', declared required (Exchange)",
        "exchanges[].decode_cuts: declared (Exchange) but in no entry of the document",
        "$.findings[2].exchange_index: not declared (Finding)",
        "findings[].value: declared (Finding) but in no entry of the document",
    ]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_every_reference_resolves(capture: Path) -> None:
    doc = audited(capture)
    assert reference_problems(doc) == []
    if capture == CAPTURES[1]:  # Baidu's deny violations name the findings that broke the rule
        assert any(v["findings"] for v in doc["violations"])
    exchanges = {e["id"]: e for e in doc["exchanges"]}
    destinations = {d["id"]: d for d in doc["destinations"]}
    findings = {f["id"]: f for f in doc["findings"]}
    assert [d["id"] for d in doc["destinations"]] == [f"D{i}" for i in range(len(doc["destinations"]))]
    assert [f["id"] for f in doc["findings"]] == [f"F{i}" for i in range(len(doc["findings"]))]
    for f in doc["findings"]:
        assert exchanges[f["exchange"]]["host"] == f["host"]
        assert f["uid"] is not None and f["uid"] == exchanges[f["exchange"]]["uid"]
    for v in doc["violations"]:
        d = destinations[v["destination"]]
        assert (d["app"], d["host"]) == (v["app"], v["host"])
        assert {findings[i]["data_type"] for i in v["findings"]} <= set(v["data_types"])
        assert all(findings[i]["host"] == v["host"] for i in v["findings"])
    hosts = {(d["app"], d["host"]) for d in doc["destinations"]}
    assert all((e["app"], e["host"]) in hosts for e in doc["exchanges"])


def test_the_reference_check_catches_dangling_references() -> None:
    doc = audited(CAPTURES[1])
    v = next(v for v in doc["violations"] if v["findings"])
    v_at = doc["violations"].index(v)
    f_at = next(i for i, f in enumerate(doc["findings"]) if f["exchange"] != doc["exchanges"][0]["id"])
    doc["findings"][f_at]["exchange"] = "E7.99"
    v["destination"] = 3  # a 1.x index
    v["findings"] = [*v["findings"], "F999"]
    doc["exchanges"][0]["host"] = "nowhere.example"
    doc["destinations"][1]["id"] = "D0"
    problems = reference_problems(doc)
    assert problems == [
        "$.destinations[1].id: 'D0' is not unique",
        "$.destinations[1].id: 'D0' is not D1, its position",
        f"$.exchanges[0]: no destination for app {doc['exchanges'][0]['app']!r}, host 'nowhere.example'",
        f"$.findings[{f_at}].exchange: 'E7.99' names no exchange",
        f"$.violations[{v_at}].destination: 3 names no destination",
        f"$.violations[{v_at}].findings[{len(v['findings']) - 1}]: 'F999' names no finding",
    ]


def test_declared_fields_are_in_the_exchange_and_finding_records() -> None:
    # the JSON keys that are not field names are declared (Col.key), not renamed by hand
    assert document_fields(Exchange)["input"].key == "input"
    assert "input_index" not in document_fields(Exchange)
    assert document_fields(Finding)["value"].json == "str"
