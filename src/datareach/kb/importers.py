"""Importers for third-party owner datasets the user already has.

Each ``import_*`` function reads one dataset in its publisher's format, checks it, converts it
to the normalized format of :mod:`datareach.kb.store` and stores it in the user's data
directory with its provenance (file name, sha256, import time, the data's own date where it
says, a licence note). Nothing is copied into the package.

* :func:`import_tracker_radar`: DuckDuckGo Tracker Radar entity files
  (``{"name", "displayName", "properties": [...], "prevalence": {...}}``): one file, the
  ``entities/`` directory, or the repository root.
* :func:`import_disconnect`: Disconnect ``entities.json``, either the current shape
  (``{"Name": {"properties": [...], "resources": [...]}}``) or the older wrapped one
  (``{"license": "...", "entities": {...}}``). Domains are properties and resources.
* :func:`import_xray`: X-Ray owner lists (Binns et al., "Third Party Tracking in the Mobile
  Ecosystem"): a JSON list of ``{"owner_name", "parent", "root_parent", "country", "doms",
  "aliases"}`` objects, the same objects keyed by name, or the ``domain_owners.json`` variant
  (``"id"``, ``"parent_id"``, ``"domains"``).
* :func:`import_domain_list`: a plain list of domains assigned to one entity (plain names,
  hosts-file lines, adblock ``||host^`` rules, ``*.host``, URLs; ``#`` and ``!`` comments).
* :func:`import_mmdb`: a MaxMind-format ``.mmdb`` database (GeoLite2/GeoIP2, DB-IP, IPinfo),
  checked with ``maxminddb`` and copied into the store.

Every failure is a :class:`KBImportError` whose message names the file (and the line or
entry where it matters), and a failed import changes nothing on disk: the input is read and
checked completely before anything is written. Invalid domain names are dropped and counted
(``counts.invalid_domains``), records that are not what they should be are skipped and
counted (``counts.skipped_entries``), unless (nearly) all of them are bad, which means the
file is not what it was said to be. Importing the same data (same kind and sha256) again
replaces the earlier dataset.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from encodings import idna as _idna
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from datareach.kb import store
from datareach.kb.load import COUNTRIES
from datareach.kb.store import ImportedDataset, ImportedEntity, MmdbInfo

__all__ = [
    "KBImportError",
    "country_code",
    "import_adguard_companiesdb",
    "import_ddg_app",
    "import_disconnect",
    "import_domain_list",
    "import_exodus",
    "import_ghostery_trackerdb",
    "import_mmdb",
    "import_tracker_radar",
    "import_xray",
    "normalize_domain",
]

PathLike = str | os.PathLike[str]

# Largest JSON or text file read into memory (the real datasets are a few MB at most).
MAX_TEXT_BYTES: Final = 256 * 1024 * 1024
_HASH_CHUNK = 1 << 20

DEFAULT_LICENCE: Final[Mapping[str, str]] = {
    "tracker-radar": "CC BY-NC-SA 4.0 (DuckDuckGo Tracker Radar)",
    "disconnect": "CC BY-NC-SA 4.0 (Disconnect, Inc.)",
    "xray": "X-Ray company data (Binns et al., University of Oxford); licence as stated by its source",
    "domain-list": "user-supplied domain list",
    "mmdb": "as stated by the database vendor",
    "ddg-app": "CC BY-NC-SA 4.0 (DuckDuckGo app tracker list, Duck Duck Go, Inc.)",
    "adguard-companiesdb": "CC BY-SA 4.0 (AdGuard companiesdb, AdGuard Software Ltd. and contributors; "
                           "built on WhoTracks.me data)",
    "ghostery-trackerdb": "CC BY-NC-SA 4.0 (Ghostery Tracker Database, Ghostery GmbH)",
    "exodus": "Exodus Privacy tracker list (Exodus Privacy); licence as stated by its source",
}


class KBImportError(Exception):
    """A dataset could not be imported; the message names the file and what is wrong."""


# --- domain names --------------------------------------------------------------------------

# Characters that IDNA (UTS #46) maps to U+002E FULL STOP.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# ASCII allowed in a label. Underscore is not valid in a host name but occurs in real names.
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$")
_TLD = re.compile(r"^(?:[a-z][a-z0-9]{1,62}|xn--[a-z0-9-]{1,59})$")
_psl: Any = None


def _is_public_suffix(name: str) -> bool:
    global _psl
    if _psl is None:
        from publicsuffixlist import PublicSuffixList

        # ICANN section only: "appspot.com" is a legitimate property of its operator.
        _psl = PublicSuffixList(only_icann=True)
    return bool(_psl.is_public(name))


def normalize_domain(value: object) -> str | None:
    """``value`` as a lower-case ASCII (punycode) domain name, or None when it is not one.

    Strips white space, a leading ``*.`` or ``.``, and one trailing dot; IDNs are converted to
    punycode. None for non-strings, IP addresses, single-label names, names with empty or
    over-long labels or characters no host name has, and bare public suffixes (``com``,
    ``co.uk``: a suffix would claim every name under it).
    """
    if not isinstance(value, str):
        return None
    s = value.strip().translate(_DOTS)
    if len(s) > 1024:
        return None
    if s.startswith("*."):
        s = s[2:]
    elif s.startswith("."):
        s = s[1:]
    if s.endswith("."):
        s = s[:-1]
    if not s:
        return None
    if not s.isascii():
        try:
            s = ".".join(_idna.ToASCII(label).decode("ascii") for label in s.split("."))
        except (UnicodeError, ValueError):
            return None
    s = s.lower()
    if len(s) > 253:
        return None
    labels = s.split(".")
    if len(labels) < 2:
        return None
    for label in labels:
        if len(label) > 63 or not _LABEL.match(label):
            return None
    if not _TLD.match(labels[-1]):
        return None
    if _is_public_suffix(s):
        return None
    return s


# --- countries -----------------------------------------------------------------------------

_ISO_ALPHA2: Final = COUNTRIES  # the same ISO 3166-1 list the curated records are checked against

# Non-ISO two-letter codes in use for a country.
_CODE_ALIASES: Final[Mapping[str, str]] = {"UK": "GB", "EL": "GR"}

# Country names (normalized by _name_key) as they appear in owner lists, English.
_COUNTRY_NAMES: Final[Mapping[str, str]] = {
    "united states": "US", "united states of america": "US", "usa": "US", "u s a": "US",
    "u s": "US", "america": "US",
    "united kingdom": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "united kingdom of great britain and northern ireland": "GB",
    "china": "CN", "people s republic of china": "CN", "prc": "CN", "mainland china": "CN",
    "hong kong": "HK", "macau": "MO", "macao": "MO", "taiwan": "TW",
    "japan": "JP", "south korea": "KR", "korea": "KR", "republic of korea": "KR",
    "korea republic of": "KR", "north korea": "KP", "singapore": "SG", "india": "IN",
    "israel": "IL", "russia": "RU", "russian federation": "RU", "germany": "DE",
    "france": "FR", "netherlands": "NL", "holland": "NL", "belgium": "BE",
    "luxembourg": "LU", "ireland": "IE", "republic of ireland": "IE", "sweden": "SE",
    "norway": "NO", "denmark": "DK", "finland": "FI", "iceland": "IS", "spain": "ES",
    "portugal": "PT", "italy": "IT", "switzerland": "CH", "austria": "AT", "poland": "PL",
    "czech republic": "CZ", "czechia": "CZ", "slovakia": "SK", "slovenia": "SI",
    "hungary": "HU", "romania": "RO", "bulgaria": "BG", "greece": "GR", "cyprus": "CY",
    "malta": "MT", "estonia": "EE", "latvia": "LV", "lithuania": "LT", "croatia": "HR",
    "serbia": "RS", "ukraine": "UA", "belarus": "BY", "turkey": "TR", "turkiye": "TR",
    "türkiye": "TR", "canada": "CA", "mexico": "MX", "brazil": "BR", "argentina": "AR",
    "chile": "CL", "colombia": "CO", "peru": "PE", "australia": "AU", "new zealand": "NZ",
    "south africa": "ZA", "nigeria": "NG", "kenya": "KE", "egypt": "EG",
    "united arab emirates": "AE", "uae": "AE", "saudi arabia": "SA", "qatar": "QA",
    "iran": "IR", "pakistan": "PK", "bangladesh": "BD", "vietnam": "VN", "viet nam": "VN",
    "thailand": "TH", "indonesia": "ID", "malaysia": "MY", "philippines": "PH",
    "kazakhstan": "KZ", "cayman islands": "KY", "bermuda": "BM",
    "british virgin islands": "VG", "virgin islands british": "VG", "jersey": "JE",
    "guernsey": "GG", "isle of man": "IM", "gibraltar": "GI", "monaco": "MC",
    "liechtenstein": "LI", "armenia": "AM", "georgia": "GE", "moldova": "MD",
}


def _name_key(text: str) -> str:
    key = re.sub(r"[^\w]+", " ", text.casefold()).strip()
    if key.startswith("the "):
        key = key[4:]
    return key


def country_code(value: object) -> str | None:
    """An ISO 3166-1 alpha-2 code for ``value`` (a code or an English name), else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) == 2 and text.isascii() and text.isalpha():
        code = _CODE_ALIASES.get(text.upper(), text.upper())
        return code if code in _ISO_ALPHA2 else None
    if len(text) > 100:
        return None
    return _COUNTRY_NAMES.get(_name_key(text))


# --- reading input -------------------------------------------------------------------------


def _as_path(path: PathLike) -> Path:
    try:
        p = Path(path)
    except TypeError as err:
        raise KBImportError(f"{path!r}: not a file path") from err
    if "\0" in str(p):
        raise KBImportError(f"{str(p)!r}: not a file path (NUL character)")
    return p


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        if path.is_dir():
            raise KBImportError(f"{path}: is a directory; expected {what}")
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise KBImportError(f"{path}: {size} bytes is too large for {what}")
        return path.read_bytes()
    except KBImportError:
        raise
    except FileNotFoundError as err:
        raise KBImportError(f"{path}: no such file") from err
    except OSError as err:
        raise KBImportError(f"{path}: cannot read: {err.strerror or err}") from err


def _parse_json(data: bytes, path: Path, what: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:
        raise KBImportError(f"{path}: line {err.lineno}: not JSON ({err.msg}); expected {what}") from err
    except UnicodeDecodeError as err:
        raise KBImportError(f"{path}: not JSON text (undecodable bytes); expected {what}") from err
    except (ValueError, RecursionError) as err:
        raise KBImportError(f"{path}: not usable JSON ({err}); expected {what}") from err


def _load_json(path: Path, what: str) -> Any:
    return _parse_json(_read_bytes(path, what), path, what)


def _looks_like(obj: Any) -> str | None:
    """What a parsed JSON document looks like, among the formats people may confuse."""
    if isinstance(obj, dict):
        log = obj.get("log")
        if isinstance(log, dict) and "entries" in log:
            return "a HAR file (recorded traffic, not an owner list)"
        if obj.get("format") == store.FORMAT:
            return "a dataset datareach has already imported"
        if isinstance(obj.get("name"), str) and isinstance(obj.get("properties"), list):
            return "a DuckDuckGo Tracker Radar entity file (import it as tracker-radar)"
        if "domain" in obj and "owner" in obj:
            return "a DuckDuckGo Tracker Radar domain file (import the entities/ directory as tracker-radar)"
        if isinstance(obj.get("categories"), dict):
            return "a Disconnect services.json (import entities.json as disconnect)"
        if isinstance(obj.get("entities"), dict):
            return "a Disconnect entities.json (import it as disconnect)"
        values = [v for k, v in list(obj.items())[:50] if k != "license"]
        if values and all(isinstance(v, dict) for v in values):
            if any("properties" in v or "resources" in v for v in values):
                return "a Disconnect entities.json (import it as disconnect)"
            if any("doms" in v or "owner_name" in v for v in values):
                return "an X-Ray owner list (import it as xray)"
    elif isinstance(obj, list):
        head = [v for v in obj[:50] if isinstance(v, dict)]
        if head and any("owner_name" in v or "doms" in v for v in head):
            return "an X-Ray owner list (import it as xray)"
    return None


def _wrong(path: Path, expected: str, obj: Any, detail: str = "") -> KBImportError:
    seen = _looks_like(obj)
    msg = f"{path}: not {expected}"
    if detail:
        msg += f" ({detail})"
    if seen is not None:
        msg += f"; it looks like {seen}"
    return KBImportError(msg)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError as err:
        raise KBImportError(f"{path}: cannot read: {err.strerror or err}") from err
    return digest.hexdigest()


def _dir_sha256(files: Iterable[tuple[str, bytes]]) -> str:
    """sha256 of the sorted (relative path, file sha256) list, one ``path\\0sha\\n`` a line."""
    digest = hashlib.sha256()
    for rel, sha in sorted((rel, hashlib.sha256(data).hexdigest()) for rel, data in files):
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def _display_name(path: Path) -> str:
    return path.name or path.resolve().name or str(path)


# --- building a dataset --------------------------------------------------------------------


@dataclass
class _Draft:
    name: str
    aliases: list[str] = field(default_factory=list)
    country: str | None = None
    parent: str | None = None
    domains: dict[str, None] = field(default_factory=dict)  # ordered set
    entity_id: str | None = None


class _Builder:
    """Collects entities (merging records of the same name) and counts what was dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.drafts: dict[str, _Draft] = {}
        self.valid_domains = 0
        self.invalid_domains = 0
        self.first_invalid: tuple[str, str] | None = None  # (value, where)
        self.good_entries = 0
        self.bad_entries = 0
        self.first_bad: str | None = None

    def bad_entry(self, where: str) -> None:
        self.bad_entries += 1
        if self.first_bad is None:
            self.first_bad = where

    def add(
        self,
        name: str,
        domains: Iterable[object],
        where: str,
        *,
        aliases: Iterable[object] = (),
        country: str | None = None,
        parent: str | None = None,
        entity_id: str | None = None,
    ) -> None:
        self.good_entries += 1
        name = " ".join(name.split())
        draft = self.drafts.get(name)
        if draft is None:
            draft = self.drafts[name] = _Draft(name=name, entity_id=entity_id)
        for alias in aliases:
            if isinstance(alias, str):
                alias = " ".join(alias.split())
                if alias and alias != name and alias not in draft.aliases:
                    draft.aliases.append(alias)
        if draft.country is None:
            draft.country = country
        if draft.parent is None and parent is not None:
            parent = " ".join(parent.split())
            if parent and parent != name:
                draft.parent = parent
        for raw in domains:
            dom = normalize_domain(raw)
            if dom is None:
                self.invalid_domains += 1
                if self.first_invalid is None:
                    self.first_invalid = (repr(raw)[:80], where)
            else:
                self.valid_domains += 1
                draft.domains[dom] = None

    def check_entries(self, expected: str, unit: str = "entry") -> None:
        """Reject the file when no record, or most records, are of the expected shape."""
        if self.good_entries == 0 or self.bad_entries > self.good_entries:
            where = f"; first bad {unit}: {self.first_bad}" if self.first_bad else ""
            total = self.good_entries + self.bad_entries
            raise KBImportError(
                f"{self.path}: not {expected}: {self.bad_entries} of {total} {unit}s are not records of "
                f"that format{where}"
            )

    def check_domains(self) -> None:
        total = self.valid_domains + self.invalid_domains
        example = ""
        if self.first_invalid is not None:
            example = f", e.g. {self.first_invalid[0]} in {self.first_invalid[1]}"
        if self.valid_domains == 0:
            raise KBImportError(f"{self.path}: no valid domain name in the file ({total} invalid{example})")
        if self.invalid_domains * 10 > total * 9:
            raise KBImportError(
                f"{self.path}: nearly all domain names are invalid ({self.invalid_domains} of {total}{example})"
            )

    def entities(self) -> tuple[ImportedEntity, ...]:
        return tuple(
            ImportedEntity(
                name=d.name,
                aliases=tuple(d.aliases),
                country=d.country,
                parent=d.parent,
                domains=tuple(sorted(d.domains)),
                entity_id=d.entity_id,
            )
            for d in self.drafts.values()
        )

    def counts(self) -> dict[str, int]:
        return {"invalid_domains": self.invalid_domains, "skipped_entries": self.bad_entries}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _licence(note: str | None, fallback: str) -> str:
    if note is not None and not isinstance(note, str):
        raise KBImportError(f"licence_note must be a string, not {type(note).__name__}")
    if note is not None and note.strip():
        return " ".join(note.split())
    return fallback


def _finish(
    kind: str,
    path: Path,
    sha256: str,
    builder: _Builder,
    *,
    licence_note: str,
    prefer: bool,
    dataset_date: str | None = None,
    save: bool = True,
) -> ImportedDataset:
    builder.check_domains()
    entities = builder.entities()
    dataset = ImportedDataset(
        id=f"{kind}-{sha256[:8]}",
        kind=kind,
        file=_display_name(path),
        sha256=sha256,
        imported_at=_now(),
        dataset_date=dataset_date,
        licence_note=licence_note,
        prefer=bool(prefer),
        entities=entities,
        mmdb=None,
        counts={"entities": len(entities), "domains": sum(len(e.domains) for e in entities), **builder.counts()},
    )
    if save:
        _save(dataset, path)
    return dataset


def _save(dataset: ImportedDataset, path: Path, **kwargs: Any) -> None:
    try:
        store.save_import(dataset, **kwargs)
    except KBImportError:
        raise
    except ValueError as err:
        raise KBImportError(f"{path}: {err}") from err
    except OSError as err:
        raise KBImportError(
            f"{path}: cannot store the dataset in {store.imports_dir()}: {err.strerror or err}"
        ) from err


# --- DuckDuckGo Tracker Radar --------------------------------------------------------------

_TR_EXPECTED = 'a DuckDuckGo Tracker Radar entity file ({"name": ..., "properties": [...]})'


def _tr_entity_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return f"the document is a JSON {type(obj).__name__}, not an object"
    if not isinstance(obj.get("name"), str) or not obj["name"].strip():
        return 'no "name" string'
    if not isinstance(obj.get("properties"), list):
        return 'no "properties" list'
    display = obj.get("displayName")
    if display is not None and not isinstance(display, str):
        return '"displayName" is not a string'
    return None


def _tr_add(builder: _Builder, obj: dict[str, Any], where: str) -> None:
    display = obj.get("displayName")
    builder.add(obj["name"], obj["properties"], where, aliases=[display] if display else [])


def _tr_files(path: Path) -> tuple[Path, list[Path]]:
    base = path / "entities" if (path / "entities").is_dir() else path
    try:
        files = sorted(
            p for p in base.iterdir() if p.suffix == ".json" and not p.name.startswith(".") and p.is_file()
        )
    except OSError as err:
        raise KBImportError(f"{base}: cannot list: {err.strerror or err}") from err
    if not files:
        raise KBImportError(
            f"{base}: no .json files; expected the entities/ directory of the DuckDuckGo "
            "tracker-radar repository (or the repository root), or one entity file"
        )
    return base, files


def import_tracker_radar(
    path: PathLike, *, licence_note: str | None = None, prefer: bool = False
) -> ImportedDataset:
    """Import DuckDuckGo Tracker Radar entities: one entity file, ``entities/``, or the repo root."""
    p = _as_path(path)
    builder = _Builder(p)
    if not p.exists():
        raise KBImportError(f"{p}: no such file or directory")
    if p.is_dir():
        base, files = _tr_files(p)
        contents: list[tuple[str, bytes]] = []
        for f in files:
            data = _read_bytes(f, _TR_EXPECTED)
            contents.append((f.relative_to(base).as_posix(), data))
            try:
                obj = _parse_json(data, f, _TR_EXPECTED)
            except KBImportError as err:
                builder.bad_entry(f"{f.name}: {str(err).split(': ', 1)[-1]}")
                continue
            problem = _tr_entity_problem(obj)
            if problem is not None:
                seen = _looks_like(obj)
                builder.bad_entry(f"{f.name}: {problem}" + (f"; it looks like {seen}" if seen else ""))
                continue
            _tr_add(builder, obj, f.name)
        builder.check_entries(f"a directory of {_TR_EXPECTED}s", unit="file")
        sha = _dir_sha256(contents)
    else:
        data = _read_bytes(p, _TR_EXPECTED)
        obj = _parse_json(data, p, _TR_EXPECTED)
        problem = _tr_entity_problem(obj)
        if problem is not None:
            raise _wrong(p, _TR_EXPECTED, obj, problem)
        _tr_add(builder, obj, p.name)
        sha = hashlib.sha256(data).hexdigest()
    return _finish(
        "tracker-radar",
        p,
        sha,
        builder,
        licence_note=_licence(licence_note, DEFAULT_LICENCE["tracker-radar"]),
        prefer=prefer,
    )


# --- Disconnect ----------------------------------------------------------------------------

_DC_EXPECTED = 'a Disconnect entities.json ({"Name": {"properties": [...], "resources": [...]}})'


def _dc_entity_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "not an object"
    props, res = value.get("properties"), value.get("resources")
    if props is None and res is None:
        return 'no "properties" or "resources"'
    if props is not None and not isinstance(props, list):
        return '"properties" is not a list'
    if res is not None and not isinstance(res, list):
        return '"resources" is not a list'
    return None


def import_disconnect(
    path: PathLike, *, licence_note: str | None = None, prefer: bool = False
) -> ImportedDataset:
    """Import a Disconnect ``entities.json``; domains are each entity's properties and resources."""
    p = _as_path(path)
    data = _read_bytes(p, _DC_EXPECTED)
    obj = _parse_json(data, p, _DC_EXPECTED)
    if not isinstance(obj, dict):
        raise _wrong(p, _DC_EXPECTED, obj, f"the document is a JSON {type(obj).__name__}")
    licence = obj.get("license")
    file_licence = " ".join(licence.split())[:2000] if isinstance(licence, str) and licence.strip() else None
    entities: Any
    if isinstance(obj.get("entities"), dict):
        entities = obj["entities"]
    elif "entities" in obj:
        raise _wrong(p, _DC_EXPECTED, obj, '"entities" is not an object')
    else:
        entities = {k: v for k, v in obj.items() if k != "license"}
    if not entities:
        raise _wrong(p, _DC_EXPECTED, obj, "no entities")
    builder = _Builder(p)
    for name, value in entities.items():
        problem = _dc_entity_problem(value)
        if problem is not None or not name.strip():
            builder.bad_entry(f"{name!r}: {problem or 'empty name'}")
            continue
        domains: list[object] = list(value.get("properties") or []) + list(value.get("resources") or [])
        builder.add(name, domains, f"entity {name!r}")
    if builder.good_entries == 0 or builder.bad_entries > builder.good_entries:
        total = builder.good_entries + builder.bad_entries
        raise _wrong(
            p,
            _DC_EXPECTED,
            obj,
            f"{builder.bad_entries} of {total} entries are not entity records; first: {builder.first_bad}",
        )
    return _finish(
        "disconnect",
        p,
        hashlib.sha256(data).hexdigest(),
        builder,
        licence_note=_licence(licence_note, file_licence or DEFAULT_LICENCE["disconnect"]),
        prefer=prefer,
    )


# --- X-Ray owner lists ---------------------------------------------------------------------

_XR_EXPECTED = 'an X-Ray owner list ([{"owner_name": ..., "doms": [...], "country": ...}, ...])'
_XR_NAME_KEYS = ("owner_name", "name", "company", "company_name")
_XR_DOMAIN_KEYS = ("doms", "domains", "hosts")
_XR_COUNTRY_KEYS = ("country", "country_code", "jurisdiction")


def _first(obj: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None


def _xr_records(obj: Any) -> Iterator[tuple[str, Any, str | None]]:
    """(where, record, name from the key) for a list or a name-keyed object."""
    if isinstance(obj, list):
        for i, rec in enumerate(obj):
            yield f"entry {i}", rec, None
    elif isinstance(obj, dict):
        for key, rec in obj.items():
            yield f"entry {key!r}", rec, key


def import_xray(path: PathLike, *, licence_note: str | None = None, prefer: bool = False) -> ImportedDataset:
    """Import an X-Ray style owner list (``owner_name``, ``parent``/``root_parent``, ``doms``)."""
    p = _as_path(path)
    data = _read_bytes(p, _XR_EXPECTED)
    obj = _parse_json(data, p, _XR_EXPECTED)
    if not isinstance(obj, (list, dict)) or not obj:
        raise _wrong(p, _XR_EXPECTED, obj, "not a non-empty list of owner records")
    records = list(_xr_records(obj))
    # domain_owners.json: parents are given by record id
    names_by_id: dict[int, str] = {}
    for _where, rec, _key in records:
        if isinstance(rec, dict) and isinstance(rec.get("id"), int):
            nm = _first(rec, _XR_NAME_KEYS)
            if isinstance(nm, str) and nm.strip():
                names_by_id[rec["id"]] = nm.strip()
    builder = _Builder(p)
    for where, rec, key in records:
        if not isinstance(rec, dict):
            builder.bad_entry(f"{where}: not an object")
            continue
        name = _first(rec, _XR_NAME_KEYS)
        if (name is None or name == "") and key is not None:
            name = key
        doms = _first(rec, _XR_DOMAIN_KEYS)
        if not isinstance(name, str) or not name.strip():
            builder.bad_entry(f"{where}: no owner_name")
            continue
        if doms is None:
            doms = []
        if not isinstance(doms, list) or not any(k in rec for k in _XR_DOMAIN_KEYS):
            builder.bad_entry(f"{where}: no doms list")
            continue
        parent: str | None = None
        parent_id = rec.get("parent_id")
        by_id = names_by_id.get(parent_id) if isinstance(parent_id, int) else None
        for cand in (rec.get("parent"), by_id, rec.get("root_parent")):
            if isinstance(cand, str) and cand.strip() and cand.strip() != name.strip():
                parent = cand
                break
        aliases = rec.get("aliases")
        builder.add(
            name,
            doms,
            where,
            aliases=aliases if isinstance(aliases, list) else [],
            country=country_code(_first(rec, _XR_COUNTRY_KEYS)),
            parent=parent,
        )
    if builder.good_entries == 0 or builder.bad_entries > builder.good_entries:
        total = builder.good_entries + builder.bad_entries
        raise _wrong(
            p,
            _XR_EXPECTED,
            obj,
            f"{builder.bad_entries} of {total} entries are not owner records; first: {builder.first_bad}",
        )
    return _finish(
        "xray",
        p,
        hashlib.sha256(data).hexdigest(),
        builder,
        licence_note=_licence(licence_note, DEFAULT_LICENCE["xray"]),
        prefer=prefer,
    )


# --- plain domain lists --------------------------------------------------------------------

_HOSTS_BOILERPLATE: Final = frozenset(
    {
        "localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
        "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
        "ip6-allhosts", "0.0.0.0",
    }
)
_ADBLOCK = re.compile(r"^\|\|([^\^/$|*]+)\^?(?:\$[^\s]*)?$")
_INLINE_COMMENT = re.compile(r"\s+#")
_DATE_IN_COMMENT = re.compile(
    r"(?:last[ _-]?modified|updated?|date|generated|as of)\b[^0-9]{0,20}(\d{4})-(\d{2})-(\d{2})", re.I
)


def _is_ip(token: str) -> bool:
    try:
        ipaddress.ip_address(token)
    except ValueError:
        return False
    return True


def _line_hosts(line: str) -> list[str] | None:
    """Host names on one non-comment line; [] for a line to ignore, None for a non-domain line."""
    s = _INLINE_COMMENT.split(line, maxsplit=1)[0].strip()
    if not s:
        return []
    if "://" in s:
        if any(c.isspace() for c in s):
            return None
        try:
            host = urlsplit(s).hostname
        except ValueError:
            return None
        return [host] if host else None
    if s.startswith("||"):
        m = _ADBLOCK.match(s)
        return [m.group(1)] if m else None
    tokens = s.split()
    if len(tokens) >= 2 and _is_ip(tokens[0]):
        return [t for t in tokens[1:] if t.lower() not in _HOSTS_BOILERPLATE]
    if len(tokens) == 1:
        token = tokens[0].removesuffix("^")
        if _is_ip(token):
            return None
        return [token]
    return None


def _comment_date(line: str) -> str | None:
    m = _DATE_IN_COMMENT.search(line)
    if not m:
        return None
    try:
        return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


def import_domain_list(
    path: PathLike,
    *,
    entity: str,
    name: str | None = None,
    country: str | None = None,
    licence_note: str | None = None,
    prefer: bool = False,
) -> ImportedDataset:
    """Import a plain list of domains, all assigned to ``entity``.

    ``entity`` is the id of a curated entity or the name of a new one; it is stored as the
    record's ``entity_id``, with ``name`` (default: ``entity``) as its name. ``country`` is an
    ISO 3166-1 alpha-2 code or an English country name. Accepted lines: ``example.com``,
    ``*.example.com``, ``0.0.0.0 example.com`` (hosts files), ``||example.com^`` (adblock),
    URLs (their host); ``#`` and ``!`` start comments, blank lines are ignored.
    """
    p = _as_path(path)
    if not isinstance(entity, str) or not entity.strip():
        raise KBImportError(f"{p}: the entity to assign the domains to must be a non-empty string")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise KBImportError(f"{p}: the entity name must be a non-empty string")
    cc: str | None = None
    if country is not None:
        cc = country_code(country)
        if cc is None:
            raise KBImportError(f"{p}: unknown country {country!r} (give an ISO 3166-1 alpha-2 code)")
    what = "a domain list (one domain name a line)"
    data = _read_bytes(p, what)
    nul = data.find(b"\x00")
    if nul >= 0:
        line_no = data.count(b"\n", 0, nul) + 1
        raise KBImportError(f"{p}: line {line_no}: binary data; expected {what}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_no = data.count(b"\n", 0, err.start) + 1
        raise KBImportError(f"{p}: line {line_no}: not UTF-8 text; expected {what}") from err
    builder = _Builder(p)
    domains: list[str] = []
    dataset_date: str | None = None
    first_bad: tuple[int, str] | None = None
    good_lines = bad_lines = invalid_in_good = 0
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line[0] in "#!" or (line.startswith("[") and line.endswith("]")):
            if dataset_date is None and line_no <= 200:
                dataset_date = _comment_date(line)
            continue
        hosts = _line_hosts(line)
        if hosts is None:
            valid: list[str] = []
        else:
            if not hosts:
                continue
            valid = [d for d in (normalize_domain(h) for h in hosts) if d is not None]
        if valid:
            good_lines += 1
            invalid_in_good += len(hosts or ()) - len(valid)
            domains.extend(valid)
        else:
            bad_lines += 1
            if first_bad is None:
                first_bad = (line_no, line[:80])
    if good_lines == 0 or bad_lines > good_lines:
        where = f"; line {first_bad[0]}: {first_bad[1]!r} is not a domain name" if first_bad else ""
        total = good_lines + bad_lines
        raise KBImportError(
            f"{p}: not {what}: {bad_lines} of {total} non-comment lines are not domain names{where}"
        )
    builder.add(name.strip() if name else entity.strip(), domains, p.name, country=cc, entity_id=entity.strip())
    builder.invalid_domains = bad_lines + invalid_in_good
    builder.bad_entries = 0
    sha = hashlib.sha256(data).hexdigest()
    return _finish(
        "domain-list",
        p,
        sha,
        builder,
        licence_note=_licence(licence_note, DEFAULT_LICENCE["domain-list"]),
        prefer=prefer,
        dataset_date=dataset_date,
    )


# --- MaxMind-format databases --------------------------------------------------------------


@dataclass(frozen=True)
class _MmdbMeta:
    database_type: str
    build_date: str | None
    description: str


def _read_mmdb(path: Path) -> _MmdbMeta:
    """Open ``path`` with maxminddb and read its metadata; KBImportError when it is not one."""
    import maxminddb

    what = "a MaxMind DB (.mmdb) file"
    if path.is_dir():
        raise KBImportError(f"{path}: is a directory; expected {what}")
    try:
        reader = maxminddb.open_database(str(path))
    except FileNotFoundError as err:
        raise KBImportError(f"{path}: no such file") from err
    except Exception as err:  # InvalidDatabaseError, OSError, ValueError (empty file), ...
        raise KBImportError(f"{path}: not {what}: {err}") from err
    try:
        meta = reader.metadata()
        database_type = meta.database_type
        if not isinstance(database_type, str) or not database_type.strip():
            raise KBImportError(f"{path}: not {what}: no database_type in its metadata")
        if int(meta.ip_version) not in (4, 6):
            raise KBImportError(f"{path}: not {what}: ip_version {meta.ip_version}")
        try:  # walks the search tree and decodes a record: a corrupt file fails here
            reader.get("8.8.8.8")
        except maxminddb.InvalidDatabaseError as err:
            raise KBImportError(f"{path}: damaged MaxMind DB file: {err}") from err
        build_date: str | None = None
        epoch = meta.build_epoch
        if isinstance(epoch, int) and 0 < epoch < 253402300800:
            build_date = _dt.datetime.fromtimestamp(epoch, tz=_dt.UTC).date().isoformat()
        desc = meta.description if isinstance(meta.description, dict) else {}
        description = desc.get("en") or next((v for v in desc.values() if isinstance(v, str)), "")
        return _MmdbMeta(database_type.strip(), build_date, description if isinstance(description, str) else "")
    except KBImportError:
        raise
    except Exception as err:
        raise KBImportError(f"{path}: not {what}: {err}") from err
    finally:
        with contextlib.suppress(Exception):
            reader.close()


def _mmdb_licence(meta: _MmdbMeta) -> str:
    label = f"{meta.database_type} {meta.description}".lower()
    if "geolite" in label:
        return "GeoLite2 End User License Agreement (MaxMind, Inc.)"
    if "geoip2" in label or "maxmind" in label:
        return "MaxMind commercial licence (GeoIP2)"
    if "db-ip" in label or "dbip" in label:
        return "CC BY 4.0 (DB-IP.com)"
    if "ipinfo" in label:
        return "IPinfo licence (ipinfo.io)"
    return DEFAULT_LICENCE["mmdb"]


def import_mmdb(path: PathLike, *, licence_note: str | None = None, prefer: bool = False) -> ImportedDataset:
    """Import a MaxMind-format ``.mmdb`` file: checked, then copied into the store as ``<id>.mmdb``."""
    p = _as_path(path)
    meta = _read_mmdb(p)
    sha = _file_sha256(p)
    ident = f"mmdb-{sha[:8]}"
    dataset = ImportedDataset(
        id=ident,
        kind="mmdb",
        file=_display_name(p),
        sha256=sha,
        imported_at=_now(),
        dataset_date=meta.build_date,
        licence_note=_licence(licence_note, _mmdb_licence(meta)),
        prefer=bool(prefer),
        entities=(),
        mmdb=MmdbInfo(file=f"{ident}.mmdb", database_type=meta.database_type, build_date=meta.build_date),
        counts={"entities": 0, "domains": 0},
    )

    def check(copy: Path) -> None:
        _read_mmdb(copy)

    _save(dataset, p, mmdb_source=p, mmdb_check=check)
    return dataset


# --- DuckDuckGo app tracker list ---------------------------------------------------------------

_DA_EXPECTED = 'a DuckDuckGo app tracker list ({"trackers": {"host": {"owner": {"name": ...}}}})'


def import_ddg_app(path: PathLike, *, licence_note: str | None = None, prefer: bool = False) -> ImportedDataset:
    """Import DuckDuckGo's app tracker list (``app/android-tds.json`` of duckduckgo/tracker-blocklists,
    or the repository root): each tracker host goes to its ``owner.name``."""
    p = _as_path(path)
    if p.is_dir():
        p = p / "app" / "android-tds.json" if (p / "app").is_dir() else p / "android-tds.json"
    data = _read_bytes(p, _DA_EXPECTED)
    obj = _parse_json(data, p, _DA_EXPECTED)
    trackers = obj.get("trackers") if isinstance(obj, dict) else None
    if not isinstance(trackers, dict) or not trackers:
        raise _wrong(p, _DA_EXPECTED, obj, 'no "trackers" object')
    builder = _Builder(p)
    for host, rec in trackers.items():
        owner = rec.get("owner") if isinstance(rec, dict) else None
        name = owner.get("name") if isinstance(owner, dict) else None
        if not isinstance(name, str) or not name.strip():
            builder.bad_entry(f"tracker {str(host)[:80]!r}: no owner name")
            continue
        display = owner.get("displayName") if isinstance(owner, dict) else None
        builder.add(name, [host], f"tracker {str(host)[:80]!r}",
                    aliases=[display] if isinstance(display, str) else [])
    builder.check_entries(_DA_EXPECTED, unit="tracker")
    return _finish("ddg-app", p, hashlib.sha256(data).hexdigest(), builder,
                   licence_note=_licence(licence_note, DEFAULT_LICENCE["ddg-app"]), prefer=prefer)


# --- AdGuard companiesdb -----------------------------------------------------------------------

_AG_EXPECTED = ('AdGuard companiesdb dist/trackers.json ({"trackers": {...}, "trackerDomains": {...}}) '
                'with dist/companies.json beside it')


def _ag_paths(p: Path) -> tuple[Path, Path]:
    if p.is_dir():
        base = p / "dist" if (p / "dist").is_dir() else p
        return base / "trackers.json", base / "companies.json"
    return p, p.parent / "companies.json"


def build_adguard_companiesdb(path: PathLike, *, licence_note: str | None = None, prefer: bool = False,
                              save: bool = False) -> ImportedDataset:
    """The AdGuard companiesdb as a dataset (not stored unless ``save``): each tracker domain of
    ``trackers.json`` goes to its tracker's company (``companies.json``), else to the tracker."""
    p = _as_path(path)
    tpath, cpath = _ag_paths(p)
    tdata = _read_bytes(tpath, _AG_EXPECTED)
    tobj = _parse_json(tdata, tpath, _AG_EXPECTED)
    if not isinstance(tobj, dict) or not isinstance(tobj.get("trackerDomains"), dict) \
            or not isinstance(tobj.get("trackers"), dict):
        raise _wrong(tpath, _AG_EXPECTED, tobj, 'no "trackers" and "trackerDomains" objects')
    companies: dict[str, Any] = {}
    cdata = b""
    if cpath.is_file():
        cdata = _read_bytes(cpath, "AdGuard companiesdb dist/companies.json")
        cobj = _parse_json(cdata, cpath, "AdGuard companiesdb dist/companies.json")
        if isinstance(cobj, dict) and isinstance(cobj.get("companies"), dict):
            companies = cobj["companies"]
    trackers: dict[str, Any] = tobj["trackers"]
    by_name: dict[str, list[str]] = {}
    builder = _Builder(tpath)
    for dom, tid in tobj["trackerDomains"].items():
        t = trackers.get(tid) if isinstance(tid, str) else None
        if not isinstance(t, dict):
            builder.bad_entry(f"domain {str(dom)[:80]!r}: tracker {str(tid)[:80]!r} is not defined")
            continue
        cid = t.get("companyId")
        c = companies.get(cid) if isinstance(cid, str) else None
        name = c.get("name") if isinstance(c, dict) else None
        if not isinstance(name, str) or not name.strip():
            tname = t.get("name")
            name = tname if isinstance(tname, str) and tname.strip() else str(tid)
        by_name.setdefault(name, []).append(dom)
    for name, doms in by_name.items():
        builder.add(name, doms, f"company {name[:80]!r}")
    builder.check_entries(_AG_EXPECTED, unit="domain")
    stamp = tobj.get("timeUpdated")
    date = stamp[:10] if isinstance(stamp, str) and re.match(r"^\d{4}-\d{2}-\d{2}", stamp) else None
    sha = _dir_sha256([("trackers.json", tdata), ("companies.json", cdata)])
    return _finish("adguard-companiesdb", p, sha, builder,
                   licence_note=_licence(licence_note, DEFAULT_LICENCE["adguard-companiesdb"]),
                   prefer=prefer, dataset_date=date, save=save)


def import_adguard_companiesdb(path: PathLike, *, licence_note: str | None = None,
                               prefer: bool = False) -> ImportedDataset:
    """Import the AdGuard companiesdb (the repository, its ``dist/``, or ``dist/trackers.json``)."""
    return build_adguard_companiesdb(path, licence_note=licence_note, prefer=prefer, save=True)


# --- Ghostery trackerdb ------------------------------------------------------------------------

_GH_EXPECTED = ("the Ghostery trackerdb repository (db/organizations/*.eno and db/patterns/*.eno) "
                'or its JSON export ({"organizations": {...}, "patterns": {...}})')
_ENO_FIELD = re.compile(r"^([a-z_]+):[ \t]*(.*)$")
_MAX_ENO_FILES: Final = 100_000


def _eno(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The ``key: value`` fields and ``--- name`` blocks of a trackerdb .eno file."""
    fields: dict[str, str] = {}
    blocks: dict[str, list[str]] = {}
    cur: str | None = None
    for line in text.splitlines():
        if line.startswith("--- "):
            name = line[4:].strip()
            cur = None if cur == name else name
            if cur is not None:
                blocks.setdefault(cur, [])
            continue
        if cur is not None:
            if line.strip():
                blocks[cur].append(line.strip())
            continue
        m = _ENO_FIELD.match(line)
        if m and m.group(1) not in fields:
            fields[m.group(1)] = m.group(2).strip()
    return fields, blocks


def _eno_dir(base: Path, sub: str) -> list[tuple[str, bytes]]:
    folder = base / sub
    try:
        files = sorted(f for f in folder.iterdir() if f.suffix == ".eno" and f.is_file())[:_MAX_ENO_FILES]
    except OSError as err:
        raise KBImportError(f"{folder}: cannot list: {err.strerror or err}") from err
    return [(f"{sub}/{f.name}", _read_bytes(f, "a trackerdb .eno file")) for f in files]


def import_ghostery_trackerdb(path: PathLike, *, licence_note: str | None = None,
                              prefer: bool = False) -> ImportedDataset:
    """Import Ghostery's trackerdb: the repository (or its ``db/``), or the JSON export. Each
    pattern's domains go to its organisation, with the organisation's country; patterns
    without an organisation are skipped and counted (``counts.patterns_without_organisation``)."""
    p = _as_path(path)
    orgs: dict[str, dict[str, Any]] = {}
    patterns: list[tuple[str, dict[str, Any]]] = []
    if p.is_dir():
        base = p / "db" if (p / "db").is_dir() else p
        if not (base / "organizations").is_dir() or not (base / "patterns").is_dir():
            raise KBImportError(f"{p}: not {_GH_EXPECTED}")
        contents = _eno_dir(base, "organizations") + _eno_dir(base, "patterns")
        for rel, data in contents:
            fields, blocks = _eno(data.decode("utf-8", "replace"))
            key = Path(rel).stem
            if rel.startswith("organizations/"):
                orgs[key] = fields
            else:
                patterns.append((key, {**fields, "domains": blocks.get("domains", [])}))
        sha = _dir_sha256(contents)
    else:
        data = _read_bytes(p, _GH_EXPECTED)
        obj = _parse_json(data, p, _GH_EXPECTED)
        if not isinstance(obj, dict) or not isinstance(obj.get("patterns"), dict) \
                or not isinstance(obj.get("organizations"), dict):
            raise _wrong(p, _GH_EXPECTED, obj, 'no "patterns" and "organizations" objects')
        orgs = {k: v for k, v in obj["organizations"].items() if isinstance(v, dict)}
        patterns = [(k, v) for k, v in obj["patterns"].items() if isinstance(v, dict)]
        sha = hashlib.sha256(data).hexdigest()
    builder = _Builder(p)
    unowned = 0
    for key, pat in patterns:
        org_key = pat.get("organization")
        org = orgs.get(org_key) if isinstance(org_key, str) else None
        if org is None:
            unowned += 1
            continue
        name = org.get("name")
        doms = pat.get("domains")
        if not isinstance(name, str) or not name.strip() or not isinstance(doms, list):
            builder.bad_entry(f"pattern {key[:80]!r}: organisation without a name, or no domain list")
            continue
        if doms:
            builder.add(name, doms, f"pattern {key[:80]!r}", country=country_code(org.get("country")))
    builder.check_entries(_GH_EXPECTED, unit="pattern")
    counts_extra = {"patterns_without_organisation": unowned}
    ds = _finish("ghostery-trackerdb", p, sha, builder,
                 licence_note=_licence(licence_note, DEFAULT_LICENCE["ghostery-trackerdb"]), prefer=prefer,
                 save=False)
    ds = ImportedDataset(**{**ds.__dict__, "counts": {**ds.counts, **counts_extra}})
    _save(ds, p)
    return ds


# --- Exodus Privacy tracker signatures ---------------------------------------------------------

_EX_EXPECTED = ('an Exodus Privacy tracker export ({"trackers": {"id": {"name": ..., '
                '"network_signature": "a\\\\.com|b\\\\.net", ...}}})')
_SIG_HOST = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)+$")


def exodus_signature_domains(signature: object) -> list[str]:
    """The literal host names in an Exodus network signature (a regular expression such as
    ``\\.doubleclick\\.net|googleads\\.g\\.doubleclick\\.net``); parts with other regular
    expression syntax (classes, groups, wildcards) are not host names and are left out."""
    if not isinstance(signature, str) or len(signature) > 100_000:
        return []
    out: list[str] = []
    for part in signature.split("|"):
        s = part.strip().replace("\\.", ".").removeprefix("^").removesuffix("$").lstrip(".")
        s = s.lower().split("/", 1)[0]
        if _SIG_HOST.match(s) and not s.replace(".", "").isdigit():
            out.append(s)
    return out


def import_exodus(path: PathLike, *, licence_note: str | None = None, prefer: bool = False) -> ImportedDataset:
    """Import Exodus Privacy's tracker list (the JSON of its ``/api/trackers`` or ETIP export):
    each tracker's name with the host names of its network signature. Exodus names trackers
    (SDKs), not companies: map them to entities in ``data/mappings``."""
    p = _as_path(path)
    data = _read_bytes(p, _EX_EXPECTED)
    obj = _parse_json(data, p, _EX_EXPECTED)
    # the API answer wraps the trackers ({"trackers": {id: {...}}}); copies bundled in apps often do not
    trackers = obj.get("trackers", obj) if isinstance(obj, dict) else obj
    items: Iterable[Any]
    if isinstance(trackers, dict):
        items = trackers.values()
    elif isinstance(trackers, list):
        items = trackers
    else:
        raise _wrong(p, _EX_EXPECTED, obj, 'no "trackers"')
    builder = _Builder(p)
    no_signature = 0
    for i, t in enumerate(items):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"].strip():
            builder.bad_entry(f"tracker {i}: no name")
            continue
        sig = t.get("network_signature")
        if sig is not None and not isinstance(sig, str):
            builder.bad_entry(f"tracker {i}: network_signature is not a string")
            continue
        doms = exodus_signature_domains(sig)
        if not doms:
            no_signature += 1
            builder.good_entries += 1
            continue
        builder.add(t["name"], doms, f"tracker {t['name'][:80]!r}")
    builder.check_entries(_EX_EXPECTED, unit="tracker")
    ds = _finish("exodus", p, hashlib.sha256(data).hexdigest(), builder,
                 licence_note=_licence(licence_note, DEFAULT_LICENCE["exodus"]), prefer=prefer, save=False)
    ds = ImportedDataset(**{**ds.__dict__, "counts": {**ds.counts, "trackers_without_host_signature": no_signature}})
    _save(ds, p)
    return ds
