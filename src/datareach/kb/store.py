"""The user's imported third-party datasets, kept in the user's data directory.

Datasets whose licences forbid redistribution (DuckDuckGo Tracker Radar, Disconnect, GeoIP
databases ...) never ship inside the package: a user who already has one imports it with
:mod:`datareach.kb.importers`, and it is kept here, normalized, with its provenance.

Where: ``$DATAREACH_DATA_DIR`` when set, else ``$XDG_DATA_HOME/datareach``, else
``~/.local/share/datareach`` (see :func:`data_dir`); imports live in ``imports/`` below it.
Each dataset is one file ``imports/<id>.json`` (plus ``imports/<id>.mmdb`` for a MaxMind-format
database), written to a temporary name and moved into place with ``os.replace``, so a reader
never sees half a file. The normalized format (read by the knowledge-base loader)::

    {"format": "datareach-import/1",
     "id": "disconnect-3f2a9c1e",          # <kind>-<first 8 hex digits of sha256>
     "kind": "tracker-radar" | "disconnect" | "xray" | "domain-list" | "mmdb" | "ddg-app"
             | "adguard-companiesdb" | "ghostery-trackerdb" | "exodus",
     "file": "entities.json",              # original file or directory name (no path)
     "sha256": "...",                      # of the file; for a directory, see importers
     "imported_at": "2026-11-24T10:00:00Z",
     "dataset_date": "2026-03-01" | null,  # date of the data, when the data says
     "licence_note": "...",
     "prefer": false,                      # true: wins over curated records on conflicts
     "entities": [{"name": "Google LLC", "aliases": ["Google"], "country": "US" | null,
                   "parent": "Alphabet Inc." | null, "domains": ["google.com"],
                   "entity_id": "..."}],   # entity_id: domain lists only, optional
     "mmdb": {"file": "<id>.mmdb", "database_type": "GeoLite2-ASN",
              "build_date": "2026-11-01" | null} | null,
     "counts": {"entities": 1, "domains": 2, "invalid_domains": 0, "skipped_entries": 0}}

``counts.invalid_domains`` and ``counts.skipped_entries`` say how many domain names and
records of the input were dropped as invalid; readers may ignore them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

__all__ = [
    "FORMAT",
    "KINDS",
    "ImportedDataset",
    "ImportedEntity",
    "MmdbInfo",
    "data_dir",
    "dataset_from_json",
    "imports_dir",
    "list_imports",
    "load_import",
    "mmdb_path",
    "remove_import",
    "save_import",
]

FORMAT: Final = "datareach-import/1"
KINDS: Final = ("tracker-radar", "disconnect", "xray", "domain-list", "mmdb",
                 "ddg-app", "adguard-companiesdb", "ghostery-trackerdb", "exodus")

_ID_RE = re.compile(r"^(" + "|".join(re.escape(k) for k in KINDS) + r")-[0-9a-f]{8}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_COPY_CHUNK = 1 << 20


def data_dir() -> Path:
    """The user's datareach data directory (it may not exist yet)."""
    from datareach.cache import user_dir

    return user_dir("DATAREACH_DATA_DIR", "XDG_DATA_HOME", (".local", "share"))


def imports_dir() -> Path:
    """The directory imported datasets are kept in (it may not exist yet)."""
    return data_dir() / "imports"


@dataclass(frozen=True)
class ImportedEntity(Mapping[str, Any]):
    """One owner record of an imported dataset.

    Read it by attribute (``e.name``) or as the read-only mapping of its stored JSON object
    (``e["name"]``, ``e.get("entity_id")``, ``dict(e)``).
    """

    name: str
    aliases: tuple[str, ...] = ()
    country: str | None = None
    parent: str | None = None
    domains: tuple[str, ...] = ()
    entity_id: str | None = None  # domain lists: the curated entity id (or new name) given

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "aliases": list(self.aliases),
            "country": self.country,
            "parent": self.parent,
            "domains": list(self.domains),
        }
        if self.entity_id is not None:
            out["entity_id"] = self.entity_id
        return out

    def __getitem__(self, key: str) -> Any:
        if key in ("name", "aliases", "country", "parent", "domains") or (
            key == "entity_id" and self.entity_id is not None
        ):
            value = getattr(self, key)
            return list(value) if isinstance(value, tuple) else value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield from ("name", "aliases", "country", "parent", "domains")
        if self.entity_id is not None:
            yield "entity_id"

    def __len__(self) -> int:
        return 5 + (self.entity_id is not None)


@dataclass(frozen=True)
class MmdbInfo:
    """The MaxMind-format database kept beside an ``mmdb`` dataset."""

    file: str
    database_type: str
    build_date: str | None

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "database_type": self.database_type, "build_date": self.build_date}


@dataclass(frozen=True)
class ImportedDataset:
    """One imported dataset, as stored in ``imports/<id>.json``."""

    id: str
    kind: str
    file: str
    sha256: str
    imported_at: str
    dataset_date: str | None
    licence_note: str
    prefer: bool
    entities: tuple[ImportedEntity, ...]
    mmdb: MmdbInfo | None
    counts: Mapping[str, int] = field(default_factory=dict, hash=False)

    @property
    def mmdb_path(self) -> Path | None:
        """Where the database file of an ``mmdb`` dataset is kept (None for other kinds)."""
        if self.mmdb is None:
            return None
        return imports_dir() / self.mmdb.file

    @property
    def domain_count(self) -> int:
        return sum(len(e.domains) for e in self.entities)

    def to_json(self) -> dict[str, Any]:
        counts = {"entities": len(self.entities), "domains": self.domain_count}
        for key, value in self.counts.items():
            if key not in counts:
                counts[key] = int(value)
        return {
            "format": FORMAT,
            "id": self.id,
            "kind": self.kind,
            "file": self.file,
            "sha256": self.sha256,
            "imported_at": self.imported_at,
            "dataset_date": self.dataset_date,
            "licence_note": self.licence_note,
            "prefer": self.prefer,
            "entities": [e.to_json() for e in self.entities],
            "mmdb": self.mmdb.to_json() if self.mmdb is not None else None,
            "counts": counts,
        }


# --- reading -------------------------------------------------------------------------------


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{where}: {key!r} must be a string or null")


def _req_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {key!r} must be a non-empty string")
    return value


def _str_list(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: {key!r} must be a list of strings")
    return tuple(value)


def _entity_from_json(obj: object, where: str) -> ImportedEntity:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: not an object")
    country = _opt_str(obj, "country", where)
    if country is not None and not _COUNTRY_RE.match(country):
        raise ValueError(f"{where}: 'country' must be an ISO 3166-1 alpha-2 code or null")
    return ImportedEntity(
        name=_req_str(obj, "name", where),
        aliases=_str_list(obj, "aliases", where),
        country=country,
        parent=_opt_str(obj, "parent", where),
        domains=_str_list(obj, "domains", where),
        entity_id=_opt_str(obj, "entity_id", where),
    )


def dataset_from_json(obj: object) -> ImportedDataset:
    """Check and convert one stored dataset; ``ValueError`` saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if obj.get("format") != FORMAT:
        raise ValueError(f"'format' is {obj.get('format')!r}, expected {FORMAT!r}")
    ident = _req_str(obj, "id", "dataset")
    if not _ID_RE.match(ident):
        raise ValueError(f"'id' {ident!r} is not <kind>-<8 hex digits>")
    kind = _req_str(obj, "kind", ident)
    if kind not in KINDS or not ident.startswith(kind + "-"):
        raise ValueError(f"{ident}: 'kind' {kind!r} does not match the id")
    sha = _req_str(obj, "sha256", ident)
    if not _SHA_RE.match(sha) or not ident.endswith("-" + sha[:8]):
        raise ValueError(f"{ident}: 'sha256' is not 64 hex digits matching the id")
    imported_at = _req_str(obj, "imported_at", ident)
    if not _STAMP_RE.match(imported_at):
        raise ValueError(f"{ident}: 'imported_at' is not YYYY-MM-DDTHH:MM:SSZ")
    dataset_date = _opt_str(obj, "dataset_date", ident)
    if dataset_date is not None and not _DATE_RE.match(dataset_date):
        raise ValueError(f"{ident}: 'dataset_date' is not YYYY-MM-DD")
    licence = obj.get("licence_note")
    if not isinstance(licence, str):
        raise ValueError(f"{ident}: 'licence_note' must be a string")
    prefer = obj.get("prefer")
    if not isinstance(prefer, bool):
        raise ValueError(f"{ident}: 'prefer' must be true or false")
    raw_entities = obj.get("entities")
    if not isinstance(raw_entities, list):
        raise ValueError(f"{ident}: 'entities' must be a list")
    entities = tuple(_entity_from_json(e, f"{ident}: entity {i}") for i, e in enumerate(raw_entities))
    raw_mmdb = obj.get("mmdb")
    mmdb: MmdbInfo | None = None
    if raw_mmdb is not None:
        if not isinstance(raw_mmdb, dict):
            raise ValueError(f"{ident}: 'mmdb' must be an object or null")
        mfile = _req_str(raw_mmdb, "file", f"{ident}: mmdb")
        if mfile != f"{ident}.mmdb":
            raise ValueError(f"{ident}: 'mmdb.file' must be {ident}.mmdb")
        build = _opt_str(raw_mmdb, "build_date", f"{ident}: mmdb")
        if build is not None and not _DATE_RE.match(build):
            raise ValueError(f"{ident}: 'mmdb.build_date' is not YYYY-MM-DD")
        dbtype = raw_mmdb.get("database_type")
        if not isinstance(dbtype, str):
            raise ValueError(f"{ident}: 'mmdb.database_type' must be a string")
        mmdb = MmdbInfo(file=mfile, database_type=dbtype, build_date=build)
    if (kind == "mmdb") != (mmdb is not None):
        raise ValueError(f"{ident}: 'mmdb' must be set for kind mmdb only")
    raw_counts = obj.get("counts", {})
    if not isinstance(raw_counts, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in raw_counts.items()
    ):
        raise ValueError(f"{ident}: 'counts' must map names to integers")
    return ImportedDataset(
        id=ident,
        kind=kind,
        file=_req_str(obj, "file", ident),
        sha256=sha,
        imported_at=imported_at,
        dataset_date=dataset_date,
        licence_note=licence,
        prefer=prefer,
        entities=entities,
        mmdb=mmdb,
        counts=dict(raw_counts),
    )


def _check_id(ident: str) -> None:
    if not _ID_RE.match(ident):
        raise ValueError(f"not a dataset id: {ident!r} (expected <kind>-<8 hex digits>)")


def load_import(ident: str) -> ImportedDataset:
    """The stored dataset ``ident``; ``FileNotFoundError`` or ``ValueError`` when absent or bad."""
    _check_id(ident)
    path = imports_dir() / f"{ident}.json"
    try:
        obj = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err
    ds = dataset_from_json(obj)
    if ds.id != ident:
        raise ValueError(f"{path}: holds dataset {ds.id!r}, not {ident!r}")
    if ds.mmdb is not None and not (imports_dir() / ds.mmdb.file).is_file():
        raise ValueError(f"{path}: its database file {ds.mmdb.file} is missing")
    return ds


def list_imports(problems: list[str] | None = None) -> list[ImportedDataset]:
    """Every valid stored dataset, oldest import first.

    Files in ``imports/`` that are not valid datasets are skipped, never fatal: each is
    reported as one line appended to ``problems`` when a list is given, else as a
    ``UserWarning``.
    """
    folder = imports_dir()
    try:
        names = sorted(p.name for p in folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as err:
        _report(problems, f"{folder}: cannot list imported datasets: {err.strerror or err}")
        return []
    out: list[ImportedDataset] = []
    for name in names:
        if name.startswith(".") or not name.endswith(".json"):
            continue
        path = folder / name
        stem = name[: -len(".json")]
        try:
            if not _ID_RE.match(stem):
                raise ValueError("file name is not <kind>-<8 hex digits>.json")
            out.append(load_import(stem))
        except (OSError, ValueError) as err:
            msg = str(err)
            if not msg.startswith(str(path)):
                msg = f"{path}: {msg}"
            _report(problems, f"skipped imported dataset {msg}")
    out.sort(key=lambda d: (d.imported_at, d.id))
    return out


def _report(problems: list[str] | None, message: str) -> None:
    if problems is not None:
        problems.append(message)
    else:
        warnings.warn(message, UserWarning, stacklevel=3)


def mmdb_path(dataset: ImportedDataset) -> Path | None:
    """Where the database file of an ``mmdb`` dataset is kept (None for other kinds)."""
    return dataset.mmdb_path


# --- writing -------------------------------------------------------------------------------


def _atomic_write(dest: Path, write: Callable[[BinaryIO], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_import(
    dataset: ImportedDataset,
    *,
    mmdb_source: Path | None = None,
    mmdb_check: Callable[[Path], None] | None = None,
) -> Path:
    """Store ``dataset`` (replacing a stored one with the same id); returns the JSON path.

    For an ``mmdb`` dataset, ``mmdb_source`` is the database file to copy beside it; its copy
    must have the dataset's sha256 (``ValueError`` otherwise, e.g. when the file changed since
    it was checked) and pass ``mmdb_check`` (called with the copy before it is moved into place).
    Both files are written atomically; when anything fails nothing new is left behind.
    """
    _check_id(dataset.id)
    if (dataset.mmdb is None) != (mmdb_source is None):
        raise ValueError("an mmdb dataset needs mmdb_source, and only an mmdb dataset takes one")
    payload = json.dumps(dataset.to_json(), ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
    folder = imports_dir()
    created: list[Path] = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{dataset.id}.json"
    placed_mmdb: Path | None = None
    try:
        if dataset.mmdb is not None and mmdb_source is not None:
            placed_mmdb = _place_mmdb(folder / dataset.mmdb.file, mmdb_source, dataset.sha256, mmdb_check)

        def write(f: BinaryIO) -> None:
            f.write(payload)

        _atomic_write(dest, write)
    except BaseException:
        if placed_mmdb is not None:
            with contextlib.suppress(OSError):
                placed_mmdb.unlink()
        for d in created:  # innermost first: only the folders this call made, if still empty
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    return dest


def _place_mmdb(
    dest: Path, source: Path, sha256: str, check: Callable[[Path], None] | None
) -> Path | None:
    """Copy ``source`` to ``dest`` atomically; the path placed when it is new, else None."""
    import hashlib

    existed = dest.exists()
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            while chunk := src.read(_COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise ValueError(f"{source}: the file changed while it was being imported")
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return None if existed else dest


def remove_import(ident: str) -> bool:
    """Delete stored dataset ``ident`` (and its database file); False when there was none."""
    try:
        _check_id(ident)
    except ValueError:
        return False
    folder = imports_dir()
    removed = False
    for path in (folder / f"{ident}.json", folder / f"{ident}.mmdb"):
        try:
            path.unlink()
            removed = True
        except FileNotFoundError:
            pass
    return removed
