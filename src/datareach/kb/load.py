"""Reading and checking the knowledge base's TOML files.

:func:`read_kb` parses every file under a data directory (``sources.toml``,
``jurisdictions.toml``, ``entities/*.toml``), checks each record against the schema in
``data/README.md`` and the records against each other, and returns plain data
(:class:`RawKB`). Every problem is a :class:`KBError` naming the file and line: a malformed
file must fail the build or the load, never half-load.

What is checked: TOML syntax; required fields and their types; ids; ISO 3166-1 country codes;
ISO dates; domain syntax; that every cited source, parent, list and AS operator exists; that a
domain or an AS has one owner; that no entity owns itself through its parents (cycles); that
every record carries sources and an as-of date. ``services.toml``'s ``[[service]]`` records (the
SDK or product behind a host name): a known vendor entity, a purpose of
:data:`SERVICE_PURPOSES`, domain syntax, and one service per domain.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CONTROL_KINDS", "COUNTRIES", "SERVICE_PURPOSES", "KBError", "RawKB", "data_files", "read_kb"]

#: ISO 3166-1 alpha-2, officially assigned codes, plus XK (Kosovo, user-assigned but in common use).
COUNTRIES = frozenset(
    ["AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW", "XK"]
)
#: Jurisdiction codes: countries plus the European Union.
JURISDICTIONS = COUNTRIES | {"EU"}

#: How a parent holds an entity. ``equity`` and ``voting`` give control from the control
#: threshold up; ``vie`` (contractual control of a variable-interest entity), ``state``,
#: ``management`` and ``controlling`` (named in filings as the controlling shareholder or
#: actual controller) give control at any share; ``golden-share`` is a special right, reported
#: as a minority stake.
CONTROL_KINDS = ("equity", "voting", "vie", "golden-share", "state", "management", "controlling")
ENTITY_KINDS = ("company", "state", "state-body", "fund", "consortium", "cooperative", "person-group")
REACH_BASES = ("owner", "location")
#: What a service (an SDK or a hosted product, ``[[service]]``) is for: the fixed vocabulary of
#: ``purpose`` and ``also`` (documented in data/README.md).
SERVICE_PURPOSES = (
    "advertising", "attribution", "analytics", "crash-reporting", "performance-monitoring", "push", "messaging",
    "social", "authentication", "payments", "maps", "location", "cdn", "cloud-backend", "consent",
    "customer-support", "engagement", "ab-testing", "remote-config", "video", "audience-measurement", "deep-linking",
    "fraud-prevention", "app-distribution", "security", "search", "translation",
)

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


class KBError(Exception):
    """A knowledge-base file is malformed or inconsistent; says which file and line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass
class RawKB:
    """Checked records, as plain data. ``where[kind, key]`` is (file, line) of each record."""

    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    jurisdictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    autonomous_systems: list[dict[str, Any]] = field(default_factory=list)
    platforms: list[dict[str, Any]] = field(default_factory=list)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    where: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)


def data_files(root: Path) -> list[Path]:
    """The KB's files under ``root``, in load order."""
    files = [root / "sources.toml", root / "jurisdictions.toml"]
    files += sorted((root / "entities").glob("*.toml"))
    files.append(root / "services.toml")
    return [f for f in files if f.exists()]


def is_domain(name: object) -> bool:
    """A lower-case DNS name of at least two labels, no wildcard, no trailing dot."""
    if not isinstance(name, str) or not 3 <= len(name) <= 253 or "." not in name:
        return False
    return all(_LABEL.match(label) for label in name.split("."))


def is_brand_tld(name: object) -> bool:
    """A single label that is a top-level domain of the public suffix list (``yandex``).

    An entity may list a whole top-level domain when it is the TLD's registry and sole
    registrant (a ``.brand`` TLD such as ``yandex``): every name under it is then its own.
    Whether the TLD really is such a brand TLD is for the record's sources to show.
    """
    if not isinstance(name, str) or "." in name or not 2 <= len(name) <= 63 or not _LABEL.match(name):
        return False
    from datareach.kb import psl

    return name in psl.suffix_rules()


class _File:
    """One TOML file: its data and where each array-of-tables entry starts."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        try:
            self.name = str(path.relative_to(root.parent))
        except ValueError:
            self.name = str(path)
        try:
            self.text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise KBError(self.name, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
        try:
            self.data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as e:
            m = _TOML_POS.search(str(e))
            raise KBError(self.name, int(m.group(1)) if m else None, f"TOML syntax: {e}") from None
        self.lines = self.text.splitlines()
        self._headers: dict[str, list[int]] = {}
        for n, line in enumerate(self.lines, 1):
            s = line.strip()
            if s.startswith("[[") and s.endswith("]]"):
                self._headers.setdefault(s[2:-2].strip(), []).append(n)
            elif s.startswith("[source.") and s.endswith("]"):
                self._headers.setdefault("source:" + s[8:-1].strip().strip('"'), []).append(n)

    def line_of(self, table: str, index: int) -> int | None:
        found = self._headers.get(table, [])
        return found[index] if index < len(found) else None

    def line_of_text(self, needle: str, start: int | None) -> int | None:
        """First line at or after ``start`` containing ``needle``."""
        for n in range(max((start or 1) - 1, 0), len(self.lines)):
            if needle in self.lines[n]:
                return n + 1
        return start

    def error(self, line: int | None, message: str) -> KBError:
        return KBError(self.name, line, message)

    def subtables(self, line: int | None, items: list[Any], what: str, name: str,
                  key: str) -> Iterator[tuple[int | None, dict[str, Any]]]:
        """A record's sub-tables (``[[entity.parent]]`` ...), each with the line of its ``key`` value."""
        for sub in items:
            if not isinstance(sub, dict):
                raise self.error(line, f"{what}: {name} is not a table")
            yield self.line_of_text(f'"{sub.get(key)}"', line), sub


def _check_keys(f: _File, line: int | None, rec: Mapping[str, Any], what: str,
                required: Mapping[str, type | tuple[type, ...]], optional: Mapping[str, type | tuple[type, ...]]) -> None:
    for key in required:
        if key not in rec:
            raise f.error(line, f"{what}: missing required field {key!r}")
    for key, value in rec.items():
        typ: type | tuple[type, ...] | None = required.get(key) or optional.get(key)
        if typ is None:
            raise f.error(line, f"{what}: unknown field {key!r}")
        if not isinstance(value, typ) or (isinstance(value, bool) and typ in (int, float, (int, float))):
            raise f.error(line, f"{what}: field {key!r} has the wrong type ({type(value).__name__})")


def _check_date(f: _File, line: int | None, what: str, key: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _DATE.match(value):
        raise f.error(line, f"{what}: {key} must be an ISO date YYYY-MM-DD, not {value!r}")


def _check_country(f: _File, line: int | None, what: str, value: object, allowed: frozenset[str] = COUNTRIES) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise f.error(line, f"{what}: unknown country code {value!r} (ISO 3166-1 alpha-2, upper case)")


def _check_str_list(f: _File, line: int | None, what: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise f.error(line, f"{what}: {key} must be a list of strings")
    return value


_SOURCE_FIELDS = {"url": str, "title": str, "seen": str}
_SOURCE_OPTIONAL = {"licence": str, "note": str, "also": list, "publisher": str, "published": str}
_ENTITY_FIELDS = {"id": str, "name": str, "hq": str, "sources": list, "as_of": str}
_ENTITY_OPTIONAL = {
    "aliases": list, "kind": str, "incorporated": str, "operates_in": list, "roles": list, "domains": list,
    "notes": str, "unverified": str, "parent": list, "listing": list, "url": str,
}
_PARENT_FIELDS = {"entity": str, "control": str, "sources": list}
_PARENT_OPTIONAL: dict[str, type | tuple[type, ...]] = {"share": (int, float), "since": str, "until": str, "note": str, "unverified": str}
_LISTING_FIELDS = {"list": str, "sources": list}
_LISTING_OPTIONAL = {"since": str, "until": str, "note": str, "unverified": str}
_AS_FIELDS = {"entity": str, "sources": list, "as_of": str}
_AS_OPTIONAL: dict[str, type | tuple[type, ...]] = {"numbers": list, "names": list, "unverified": str, "note": str}
_PLATFORM_FIELDS = {"entity": str, "name": str, "domains": list, "sources": list, "as_of": str}
_PLATFORM_OPTIONAL: dict[str, type | tuple[type, ...]] = {"kind": str, "note": str, "unverified": str, "tenants": bool}
#: what a shared platform gives its tenants (``[[platform]]`` ``kind``)
PLATFORM_KINDS = ("cdn", "hosting", "cloud", "storage", "paas", "pages", "dns")
_JUR_FIELDS = {"code": str, "name": str, "sources": list, "as_of": str}
_JUR_OPTIONAL = {"linked_to": str, "law": list, "notes": str, "unverified": str, "treated_as": str}
_LAW_FIELDS = {"id": str, "title": str, "reaches": list, "effect": str, "sources": list}
_LAW_OPTIONAL = {"article": str, "year": int, "unverified": str, "in_force": str, "until": str, "note": str}
_LIST_FIELDS = {"id": str, "name": str, "kind": str, "sources": list, "as_of": str}
_LIST_OPTIONAL = {
    "countries": list, "since": str, "until": str, "authority": str, "url": str, "note": str,
    "notes": str, "unverified": str, "entry": list,
}
_SERVICE_FIELDS = {"id": str, "name": str, "vendor": str, "purpose": str, "domains": list, "sources": list,
                   "as_of": str}
_SERVICE_OPTIONAL = {"also": list, "aliases": list, "notes": str, "unverified": str}
_ENTRY_FIELDS = {"country": str}
_ENTRY_OPTIONAL = {"since": str, "until": str, "decision": str, "scope": str, "sources": list, "note": str,
                   "unverified": str}


def _records(f: _File, table: str) -> Iterator[tuple[int | None, dict[str, Any]]]:
    items = f.data.get(table, [])
    if not isinstance(items, list):
        raise f.error(None, f"{table!r} must be an array of tables ([[{table}]])")
    for i, rec in enumerate(items):
        line = f.line_of(table, i)
        if not isinstance(rec, dict):
            raise f.error(line, f"[[{table}]] entry {i + 1} is not a table")
        yield line, rec


def read_kb(root: Path) -> RawKB:
    """Parse and check every KB file under ``root``. Raises :class:`KBError` on the first problem."""
    kb = RawKB()
    files = [_File(p, root) for p in data_files(root)]
    if not files:
        raise KBError(str(root), None, "no knowledge-base files here")
    known_top = {"source", "entity", "as", "jurisdiction", "list", "platform", "service"}
    # pass 1: sources (every file may define them)
    for f in files:
        for key in f.data:
            if key not in known_top:
                raise f.error(None, f"unknown top-level table {key!r}")
        sources = f.data.get("source", {})
        if not isinstance(sources, dict):
            raise f.error(None, "'source' must be tables [source.ID]")
        for sid, rec in sources.items():
            line = f.line_of(f"source:{sid}", 0)
            what = f"source {sid!r}"
            if not _SOURCE_ID.match(sid):
                raise f.error(line, f"{what}: ids are lower-case letters, digits, '.', '_' and '-'")
            if not isinstance(rec, dict):
                raise f.error(line, f"{what} is not a table")
            _check_keys(f, line, rec, what, _SOURCE_FIELDS, _SOURCE_OPTIONAL)
            if not rec["url"].startswith(("https://", "http://")):
                raise f.error(line, f"{what}: url must be http(s)")
            _check_date(f, line, what, "seen", rec["seen"])
            if sid in kb.sources and kb.sources[sid] != rec:
                other = kb.where[("source", sid)]
                raise f.error(line, f"{what} is defined differently in {other[0]}:{other[1]}")
            kb.sources[sid] = rec
            kb.where[("source", sid)] = (f.name, line or 0)

    def check_sources(f: _File, line: int | None, what: str, ids: object) -> None:
        refs = _check_str_list(f, line, what, "sources", ids)
        if not refs:
            raise f.error(line, f"{what}: every record needs at least one source")
        for s in refs:
            if s not in kb.sources:
                raise f.error(f.line_of_text(s, line), f"{what}: source {s!r} is not defined")

    # pass 2: jurisdictions and lists
    for f in files:
        for line, rec in _records(f, "jurisdiction"):
            what = f"jurisdiction {rec.get('code')!r}"
            _check_keys(f, line, rec, what, _JUR_FIELDS, _JUR_OPTIONAL)
            _check_country(f, line, what, rec["code"], frozenset(JURISDICTIONS))
            for key in ("linked_to", "treated_as"):
                if key in rec:
                    _check_country(f, line, what, rec[key], frozenset(JURISDICTIONS))
            _check_date(f, line, what, "as_of", rec["as_of"])
            check_sources(f, line, what, rec["sources"])
            if rec["code"] in kb.jurisdictions:
                raise f.error(line, f"{what} is defined twice")
            laws = []
            for lline, law in f.subtables(line, rec.get("law", []), what, "a law", "id"):
                lwhat = f"law {law.get('id')!r}"
                _check_keys(f, lline, law, lwhat, _LAW_FIELDS, _LAW_OPTIONAL)
                for r in _check_str_list(f, lline, lwhat, "reaches", law["reaches"]):
                    if r not in REACH_BASES:
                        raise f.error(lline, f"{lwhat}: reaches must be among {REACH_BASES}, not {r!r}")
                for key in ("in_force", "until"):
                    _check_date(f, lline, lwhat, key, law.get(key))
                check_sources(f, lline, lwhat, law["sources"])
                laws.append(law)
            kb.jurisdictions[rec["code"]] = {**rec, "law": laws}
            kb.where[("jurisdiction", rec["code"])] = (f.name, line or 0)
        for line, rec in _records(f, "list"):
            what = f"list {rec.get('id')!r}"
            _check_keys(f, line, rec, what, _LIST_FIELDS, _LIST_OPTIONAL)
            if not _ID.match(rec["id"]):
                raise f.error(line, f"{what}: ids are lower-case letters, digits and '-'")
            if rec["kind"] not in ("countries", "entities"):
                raise f.error(line, f"{what}: kind must be 'countries' or 'entities'")
            for c in _check_str_list(f, line, what, "countries", rec.get("countries", [])):
                _check_country(f, line, what, c)
            for key in ("since", "until", "as_of"):
                _check_date(f, line, what, key, rec.get(key))
            check_sources(f, line, what, rec["sources"])
            for _, entry in f.subtables(line, rec.get("entry", []), what, "an entry", "country"):
                ewhat = f"{what} entry {entry.get('country')!r}"
                _check_keys(f, line, entry, ewhat, _ENTRY_FIELDS, _ENTRY_OPTIONAL)
                _check_country(f, line, ewhat, entry["country"])
                for key in ("since", "until"):
                    _check_date(f, line, ewhat, key, entry.get(key))
                if "sources" in entry:
                    check_sources(f, line, ewhat, entry["sources"])
            if rec["id"] in kb.lists:
                raise f.error(line, f"{what} is defined twice")
            kb.lists[rec["id"]] = rec
            kb.where[("list", rec["id"])] = (f.name, line or 0)
    for code, rec in kb.jurisdictions.items():
        for key in ("linked_to", "treated_as"):
            if key in rec and rec[key] not in kb.jurisdictions:
                name, line = kb.where[("jurisdiction", code)]
                raise KBError(name, line, f"jurisdiction {code!r}: {key} {rec[key]!r} is not a jurisdiction here")

    # pass 3: entities
    entity_file: dict[str, tuple[_File, int | None]] = {}
    for f in files:
        for line, rec in _records(f, "entity"):
            what = f"entity {rec.get('id')!r}"
            _check_keys(f, line, rec, what, _ENTITY_FIELDS, _ENTITY_OPTIONAL)
            _check_new_id(kb, f, line, what, "entity", rec["id"])
            if rec.get("kind", "company") not in ENTITY_KINDS:
                raise f.error(line, f"{what}: kind must be one of {ENTITY_KINDS}")
            _check_country(f, line, what, rec["hq"])
            if "incorporated" in rec:
                _check_country(f, line, what, rec["incorporated"])
            for c in _check_str_list(f, line, what, "operates_in", rec.get("operates_in", [])):
                _check_country(f, line, what, c)
            for key in ("aliases", "roles"):
                _check_str_list(f, line, what, key, rec.get(key, []))
            _check_date(f, line, what, "as_of", rec["as_of"])
            check_sources(f, line, what, rec["sources"])
            seen_domains: set[str] = set()
            for d in _check_str_list(f, line, what, "domains", rec.get("domains", [])):
                if not (is_domain(d) or is_brand_tld(d)):
                    raise f.error(f.line_of_text(f'"{d}"', line),
                                  f"{what}: {d!r} is not a lower-case domain name or a top-level domain")
                if d in seen_domains:
                    raise f.error(f.line_of_text(f'"{d}"', line), f"{what}: domain {d!r} is listed twice")
                seen_domains.add(d)
            for pline, p in f.subtables(line, rec.get("parent", []), what, "a parent", "entity"):
                pwhat = f"{what} parent {p.get('entity')!r}"
                _check_keys(f, pline, p, pwhat, _PARENT_FIELDS, _PARENT_OPTIONAL)
                if p["control"] not in CONTROL_KINDS:
                    raise f.error(pline, f"{pwhat}: control must be one of {CONTROL_KINDS}")
                share = p.get("share")
                if share is not None and not 0 < float(share) <= 1:
                    raise f.error(pline, f"{pwhat}: share is a fraction in (0, 1], not {share!r}")
                for key in ("since", "until"):
                    _check_date(f, pline, pwhat, key, p.get(key))
                if p.get("since") and p.get("until") and p["since"] >= p["until"]:
                    raise f.error(pline, f"{pwhat}: since must come before until")
                check_sources(f, pline, pwhat, p["sources"])
            for lline, li in f.subtables(line, rec.get("listing", []), what, "a listing", "list"):
                lwhat = f"{what} listing {li.get('list')!r}"
                _check_keys(f, lline, li, lwhat, _LISTING_FIELDS, _LISTING_OPTIONAL)
                if li["list"] not in kb.lists:
                    raise f.error(lline, f"{lwhat}: no such list in jurisdictions.toml")
                for key in ("since", "until"):
                    _check_date(f, lline, lwhat, key, li.get(key))
                check_sources(f, lline, lwhat, li["sources"])
            kb.entities[rec["id"]] = rec
            kb.where[("entity", rec["id"])] = (f.name, line or 0)
            entity_file[rec["id"]] = (f, line)
    # parents exist; no cycles
    for eid, rec in kb.entities.items():
        f, line = entity_file[eid]
        for p in rec.get("parent", []):
            if p["entity"] not in kb.entities:
                raise f.error(f.line_of_text(f'"{p["entity"]}"', line), f"entity {eid!r}: parent {p['entity']!r} is not defined")
            if p["entity"] == eid:
                raise f.error(line, f"entity {eid!r} is its own parent")
    _check_cycles(kb, entity_file)
    # one owner per domain
    owner: dict[str, str] = {}
    for eid, rec in kb.entities.items():
        for d in rec.get("domains", []):
            if d in owner and owner[d] != eid:
                f, line = entity_file[eid]
                raise f.error(f.line_of_text(f'"{d}"', line),
                              f"domain {d!r} is given to both {owner[d]!r} and {eid!r}")
            owner[d] = eid

    # pass 4: autonomous systems
    by_number: dict[int, str] = {}
    by_name: dict[str, str] = {}
    for f in files:
        for line, rec in _records(f, "as"):
            what = f"AS record of {rec.get('entity')!r}"
            _check_keys(f, line, rec, what, _AS_FIELDS, _AS_OPTIONAL)
            if rec["entity"] not in kb.entities:
                raise f.error(line, f"{what}: entity {rec['entity']!r} is not defined")
            _check_date(f, line, what, "as_of", rec["as_of"])
            check_sources(f, line, what, rec["sources"])
            numbers = rec.get("numbers", [])
            names = _check_str_list(f, line, what, "names", rec.get("names", []))
            if not numbers and not names:
                raise f.error(line, f"{what}: needs numbers or names")
            for n in numbers:
                if not isinstance(n, int) or isinstance(n, bool) or not 0 < n < 2**32:
                    raise f.error(line, f"{what}: {n!r} is not an AS number")
                if by_number.get(n, rec["entity"]) != rec["entity"]:
                    raise f.error(f.line_of_text(str(n), line), f"AS{n} is given to both {by_number[n]!r} and {rec['entity']!r}")
                by_number[n] = rec["entity"]
            for name in names:
                key = name.casefold()
                if by_name.get(key, rec["entity"]) != rec["entity"]:
                    raise f.error(f.line_of_text(name, line), f"AS name {name!r} is given to both {by_name[key]!r} and {rec['entity']!r}")
                by_name[key] = rec["entity"]
            kb.autonomous_systems.append(rec)

    # pass 5: shared platforms (names under them are their tenants' services)
    platform_of: dict[str, str] = {}
    for f in files:
        for line, rec in _records(f, "platform"):
            what = f"platform {rec.get('name')!r}"
            _check_keys(f, line, rec, what, _PLATFORM_FIELDS, _PLATFORM_OPTIONAL)
            if rec["entity"] not in kb.entities:
                raise f.error(line, f"{what}: entity {rec['entity']!r} is not defined")
            if rec.get("kind", "hosting") not in PLATFORM_KINDS:
                raise f.error(line, f"{what}: kind must be one of {PLATFORM_KINDS}")
            _check_date(f, line, what, "as_of", rec["as_of"])
            check_sources(f, line, what, rec["sources"])
            for d, dline in _domains(f, line, what, rec):
                if d in platform_of:
                    raise f.error(dline, f"{what}: domain {d!r} is already the platform {platform_of[d]!r}")
                platform_of[d] = rec["name"]
            kb.platforms.append(rec)
    _read_services(kb, files, check_sources)
    return kb


def _domains(f: _File, line: int | None, what: str, rec: dict[str, Any]) -> Iterator[tuple[str, int | None]]:
    """A ``[[platform]]`` or ``[[service]]`` record's ``domains``, with the line each is written
    on: at least one, each checked to be a lower-case domain name as it is reached."""
    domains = _check_str_list(f, line, what, "domains", rec["domains"])
    if not domains:
        raise f.error(line, f"{what}: needs at least one domain")
    for d in domains:
        dline = f.line_of_text(f'"{d}"', line)
        if not is_domain(d):
            raise f.error(dline, f"{what}: {d!r} is not a lower-case domain name")
        yield d, dline


def _check_new_id(kb: RawKB, f: _File, line: int | None, what: str, table: str, rid: str) -> None:
    """An ``[[entity]]`` or ``[[service]]`` id: well-formed, and not defined before (``kb.where``)."""
    if not _ID.match(rid):
        raise f.error(line, f"{what}: ids are lower-case letters, digits and '-'")
    other = kb.where.get((table, rid))
    if other is not None:
        raise f.error(line, f"{what} is already defined at {other[0]}:{other[1]}")


def _read_services(kb: RawKB, files: list[_File], check_sources: Any) -> None:
    """Pass 5: ``[[service]]`` records (an SDK or product, its vendor entity, its purpose and the
    domains its traffic goes to)."""
    by_domain: dict[str, str] = {}
    for f in files:
        for line, rec in _records(f, "service"):
            what = f"service {rec.get('id')!r}"
            _check_keys(f, line, rec, what, _SERVICE_FIELDS, _SERVICE_OPTIONAL)
            _check_new_id(kb, f, line, what, "service", rec["id"])
            if rec["vendor"] not in kb.entities:
                raise f.error(f.line_of_text(f'"{rec["vendor"]}"', line),
                              f"{what}: vendor {rec['vendor']!r} is not a defined entity")
            for p in [rec["purpose"], *_check_str_list(f, line, what, "also", rec.get("also", []))]:
                if p not in SERVICE_PURPOSES:
                    raise f.error(line, f"{what}: purpose {p!r} is not one of {', '.join(SERVICE_PURPOSES)}")
            _check_str_list(f, line, what, "aliases", rec.get("aliases", []))
            _check_date(f, line, what, "as_of", rec["as_of"])
            check_sources(f, line, what, rec["sources"])
            for d, dline in _domains(f, line, what, rec):
                if d in by_domain:
                    raise f.error(dline, f"domain {d!r} is given to both services {by_domain[d]!r} and {rec['id']!r}")
                by_domain[d] = rec["id"]
            kb.services[rec["id"]] = rec
            kb.where[("service", rec["id"])] = (f.name, line or 0)


def _check_cycles(kb: RawKB, entity_file: Mapping[str, tuple[_File, int | None]]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(eid: str, path: list[str]) -> None:
        state[eid] = 1
        for p in kb.entities[eid].get("parent", []):
            nxt = p["entity"]
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt] if nxt in path else [eid, nxt]
                f, line = entity_file[eid]
                raise f.error(line, "ownership cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[eid] = 2

    for eid in kb.entities:
        if eid not in state:
            visit(eid, [eid])
