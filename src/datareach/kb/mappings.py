"""Mappings from third-party datasets' company names to knowledge-base entities, and the
datasets shipped with datareach.

``data/mappings/*.toml`` holds ``[[map]]`` records, our own data::

    [[map]]
    dataset = "adguard-companiesdb"   # a dataset kind (DATASETS), a list of them, or "*" (any)
    company = "ByteDance"             # the company as the dataset names it
    entity = "bytedance"              # the knowledge-base entity it is (optional when country is given)
    country = "CN"                    # optional: HQ country, for a company the KB does not model
    note = "..."                      # optional

When a dataset is imported (``datareach kb import``) or shipped (``data/datasets/``), each of its
companies is looked up here first: a company mapped to an entity gives its domains to that
entity, so they inherit the curated control chain; a company mapped to a country only becomes an
imported entity with that country. Imported entities with no country from the dataset or a
mapping are counted (``kb status``: ``without country``).

``data/datasets/<name>/dataset.json`` (or ``.json.gz``) is a dataset whose licence allows
redistribution, in the normalised import format of :mod:`datareach.kb.store`, beside its own
``LICENSE`` and ``README.md``. It is loaded at first use like an import that yields to curated
records, and is listed with its licence and credit in ``kb status`` and every report's data
sources.
"""

from __future__ import annotations

import gzip
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from datareach.kb.load import COUNTRIES, KBError

__all__ = [
    "DATASETS",
    "CompanyMap",
    "MapRecord",
    "company_key",
    "dataset_files",
    "mapping_files",
    "read_mappings",
    "shipped_datasets",
]

#: Dataset kinds a ``[[map]]`` record may name (the import kinds of :mod:`datareach.kb.store`).
DATASETS: Final = (
    "tracker-radar", "ddg-app", "disconnect", "xray", "adguard-companiesdb", "ghostery-trackerdb", "exodus",
)
_FIELDS: Final = {"dataset", "company", "entity", "country", "note", "sources"}
_MAX_FILE: Final = 16 * 1024 * 1024


def company_key(name: str) -> str:
    """A dataset's company name reduced for look-up: case, punctuation and spacing only
    (legal suffixes are kept: "X Inc" and "X Ltd" may be different companies)."""
    return " ".join(re.sub(r"[^\w]+", " ", name.casefold()).split())


@dataclass(frozen=True)
class MapRecord:
    datasets: tuple[str, ...]
    company: str
    entity: str | None
    country: str | None
    file: str
    line: int | None
    note: str | None = None


class CompanyMap:
    """Look-up of ``[[map]]`` records by (dataset kind, company name)."""

    def __init__(self, records: Iterable[MapRecord] = ()) -> None:
        self.records: list[MapRecord] = list(records)
        self._by: dict[tuple[str, str], MapRecord] = {}
        for r in self.records:
            for ds in r.datasets:
                self._by[(ds, company_key(r.company))] = r

    def lookup(self, dataset: str, company: str) -> MapRecord | None:
        key = company_key(company)
        return self._by.get((dataset, key)) or self._by.get(("*", key))

    def __len__(self) -> int:
        return len(self.records)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"datasets": list(r.datasets), "company": r.company, "entity": r.entity, "country": r.country}
                for r in self.records]


def mapping_files(root: Path) -> list[Path]:
    return sorted((root / "mappings").glob("*.toml"))


def dataset_files(root: Path) -> list[Path]:
    """The shipped datasets' data files (one per directory under ``datasets/``)."""
    out = []
    base = root / "datasets"
    if base.is_dir():
        for d in sorted(p for p in base.iterdir() if p.is_dir()):
            for name in ("dataset.json", "dataset.json.gz"):
                if (d / name).is_file():
                    out.append(d / name)
                    break
    return out


def _line(text: str, needle: str, start: int = 0) -> int | None:
    i = text.find(needle, start)
    return text.count("\n", 0, i) + 1 if i >= 0 else None


def read_mappings(root: Path, entities: Mapping[str, Any] | None = None) -> CompanyMap:
    """Every ``[[map]]`` record under ``root/mappings``, checked. ``entities``: the KB's entity
    ids; a record naming another entity is an error. Raises :class:`KBError`."""
    records: list[MapRecord] = []
    seen: dict[tuple[str, str], MapRecord] = {}
    for path in mapping_files(root):
        name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise KBError(name, None, f"cannot read: {err}") from err
        for key in data:
            if key != "map":
                raise KBError(name, None, f"unknown top-level table {key!r} (a mappings file holds [[map]] records)")
        items = data.get("map", [])
        if not isinstance(items, list):
            raise KBError(name, None, "'map' must be an array of tables [[map]]")
        pos = 0
        for i, rec in enumerate(items):
            line = _line(text, "[[map]]", pos)
            if line is not None:
                pos = text.find("[[map]]", pos) + 7
            if not isinstance(rec, dict):
                raise KBError(name, line, f"[[map]] entry {i + 1} is not a table")
            unknown = set(rec) - _FIELDS
            if unknown:
                raise KBError(name, line, f"[[map]]: unknown field(s) {sorted(unknown)}")
            company = rec.get("company")
            if not isinstance(company, str) or not company_key(company):
                raise KBError(name, line, "[[map]]: 'company' must be a non-empty string")
            what = f"[[map]] {company!r}"
            raw_ds = rec.get("dataset")
            ds_list = [raw_ds] if isinstance(raw_ds, str) else raw_ds
            if not isinstance(ds_list, list) or not ds_list or not all(isinstance(d, str) for d in ds_list):
                raise KBError(name, line, f"{what}: 'dataset' must be a dataset kind or a list of them")
            for d in ds_list:
                if d != "*" and d not in DATASETS:
                    raise KBError(name, line, f"{what}: dataset {d!r} is not one of {', '.join(DATASETS)} or '*'")
            entity = rec.get("entity")
            country = rec.get("country")
            if entity is not None and (not isinstance(entity, str) or not entity):
                raise KBError(name, line, f"{what}: 'entity' must be an entity id")
            if country is not None and (not isinstance(country, str) or country not in COUNTRIES):
                raise KBError(name, line, f"{what}: 'country' must be an ISO 3166-1 alpha-2 code, not {country!r}")
            if entity is None and country is None:
                raise KBError(name, line, f"{what}: needs 'entity' or 'country'")
            if entity is not None and entities is not None and entity not in entities:
                raise KBError(name, line, f"{what}: entity {entity!r} is not defined in the knowledge base")
            note = rec.get("note")
            r = MapRecord(tuple(ds_list), company, entity, country, name, line,
                          note if isinstance(note, str) else None)
            for d in r.datasets:
                k = (d, company_key(company))
                other = seen.get(k)
                if other is not None and (other.entity, other.country) != (entity, country):
                    raise KBError(name, line, f"{what} for {d} is mapped differently at {other.file}:{other.line}")
                seen[k] = r
            records.append(r)
    return CompanyMap(records)


def _read_dataset(path: Path) -> Any:
    data = path.read_bytes()
    if len(data) > _MAX_FILE:
        raise ValueError("too large")
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return json.loads(data)


def shipped_datasets(root: Path) -> list[Any]:
    """The shipped datasets (:class:`~datareach.kb.store.ImportedDataset`), each checked;
    raises :class:`KBError` naming a malformed one (a packaging error, not user input)."""
    from datareach.kb import store

    out = []
    for path in dataset_files(root):
        name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        try:
            ds = store.dataset_from_json(_read_dataset(path))
        except (OSError, ValueError, EOFError) as err:
            raise KBError(name, None, f"not a dataset in the import format: {err}") from err
        out.append(ds)
    return out


def resolve_company(cmap: CompanyMap | None, kind: str, name: str, aliases: Sequence[str] = ()) -> MapRecord | None:
    """The ``[[map]]`` record for a dataset's company (its name, else one of its aliases)."""
    if cmap is None or not len(cmap):
        return None
    for n in (name, *aliases):
        hit = cmap.lookup(kind, n)
        if hit is not None:
            return hit
    return None
