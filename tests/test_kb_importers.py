"""Tests for datareach.kb.importers and datareach.kb.store: user-imported third-party datasets.

Input files are built in the publishers' real shapes, checked against the public repositories:
DuckDuckGo Tracker Radar ``entities/*.json`` (``name``, ``displayName``, ``properties``,
``prevalence``) and ``domains/US/*.json`` (``domain``, ``owner``, ...); Disconnect
``entities.json`` (the current bare ``{"Name": {"properties", "resources"}}`` and the older
``{"license", "entities"}``); the X-Ray company lists of sociam/xray
(``company_data_list_*.json``: ``owner_name``, ``parent``, ``root_parent``, ``country``
lower-case, ``doms``; the name-keyed ``company_data_*.json``; ``domain_owners.json`` with
``id``/``parent_id``/``domains``). The .mmdb files are written with mmdb-writer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach.kb import importers, store
from datareach.kb.importers import KBImportError
from datareach.testing import mmdb as mmdb_files

EPOCH_2026_11_01 = int(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC).timestamp())
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
TOP_KEYS = {
    "format", "id", "kind", "file", "sha256", "imported_at", "dataset_date", "licence_note", "prefer",
    "entities", "mmdb", "counts",
}
ENTITY_KEYS = {"name", "aliases", "country", "parent", "domains"}


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test stores its imports under a temporary data directory."""
    path = tmp_path / "data"
    monkeypatch.setenv("DATAREACH_DATA_DIR", str(path))
    return path


def snapshot(root: Path) -> dict[str, bytes] | None:
    """Every file under ``root`` with its bytes (None when ``root`` does not exist)."""
    if not root.exists():
        return None
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=4), encoding="utf-8")
    return path


def stored(dataset: store.ImportedDataset) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((store.imports_dir() / f"{dataset.id}.json").read_text("utf-8"))
    return doc


def dir_digest(base: Path) -> str:
    lines = sorted(
        (p.relative_to(base).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in base.glob("*.json")
    )
    h = hashlib.sha256()
    for rel, sha in lines:
        h.update(f"{rel}\0{sha}\n".encode())
    return h.hexdigest()


def check_provenance(ds: store.ImportedDataset, kind: str, file: str, sha256: str) -> None:
    assert ds.kind == kind
    assert ds.id == f"{kind}-{sha256[:8]}"
    assert ds.sha256 == sha256
    assert ds.file == file
    assert STAMP.match(ds.imported_at)
    doc = stored(ds)
    assert set(doc) == TOP_KEYS
    assert doc["format"] == "datareach-import/1"
    assert doc == ds.to_json()
    for ent in doc["entities"]:
        assert ENTITY_KEYS <= set(ent) <= ENTITY_KEYS | {"entity_id"}
    assert doc["counts"]["entities"] == len(doc["entities"])
    assert doc["counts"]["domains"] == sum(len(e["domains"]) for e in doc["entities"])
    # what list_imports reads back is what was returned
    assert store.load_import(ds.id) == ds


def by_name(ds: store.ImportedDataset) -> dict[str, store.ImportedEntity]:
    return {e.name: e for e in ds.entities}


# Real Tracker Radar shapes (entities/<name>.json), trimmed lists of properties.
TR_GOOGLE = {
    "name": "Google LLC",
    "displayName": "Google",
    "properties": ["doubleclick.net", "google-analytics.com", "google.com", "youtube.com", "xn--9trs65b.com"],
    "prevalence": {"tracking": 0.736, "nonTracking": 0.0779, "total": 0.814},
}
TR_1000MERCIS = {
    "name": "1000mercis",
    "displayName": "1000mercis",
    "properties": ["1000mercis.com", "mmtro.com", "numberly.com"],
    "prevalence": {"tracking": 0, "nonTracking": 0.00000695, "total": 0.00000695},
}
TR_BYTEDANCE = {
    "name": "ByteDance Ltd.",
    "displayName": "ByteDance",
    "properties": ["bytedance.com", "tiktok.com", "tiktokv.com", "ibytedtos.com"],
    "prevalence": {"tracking": 0.0102, "nonTracking": 0.00262, "total": 0.0128},
}
# domains/US/<domain>.json
TR_DOMAIN_FILE = {
    "domain": "doubleclick.net",
    "owner": {"name": "Google LLC", "displayName": "Google"},
    "source": ["DuckDuckGo-US"],
    "prevalence": 0.5,
    "sites": 1000,
    "subdomains": ["ad", "stats"],
    "cnames": [],
    "fingerprinting": 1,
    "resources": [],
    "categories": ["Advertising"],
    "performance": {},
    "cookies": 0.4,
    "types": {"Script": 3},
    "nameservers": ["ns1.google.com"],
}

DISCONNECT_CURRENT = {
    "2leep.com": {"properties": ["2leep.com"], "resources": ["2leep.com"]},
    "33Across": {"properties": ["33across.com", "tynt.com"], "resources": ["33across.com", "tynt.com"]},
    "AdReady": {
        "properties": ["digitalremedy.com"],
        "resources": ["adready.com", "adreadytractions.com", "digitalremedy"],
    },
    "Adobe": {"properties": ["adobe.com", "typekit.com"], "resources": ["2o7.net", "demdex.net", "omtrdc.net"]},
}
DISCONNECT_LICENCE = (
    "Copyright 2010-2020 Disconnect, Inc. / Licensed under the Creative Commons "
    "Attribution-NonCommercial-ShareAlike 4.0 International license"
)
DISCONNECT_WRAPPED = {
    "license": DISCONNECT_LICENCE,
    "entities": {
        "2leep.com": {"properties": ["2leep.com"], "resources": ["2leep.com"]},
        "adnologies": {"properties": ["adnologies.com", "heias.com"], "resources": ["adnologies.com", "heias.com"]},
    },
}
DISCONNECT_SERVICES = {
    "license": DISCONNECT_LICENCE,
    "categories": {"Advertising": [{"adnologies": {"http://www.adnologies.com/": ["adnologies.com"]}}]},
}

# sociam/xray analysis/company_data_list_*.json
XRAY_LIST = [
    {"owner_name": "", "parent": None, "country": "", "notes": None, "root_parent": "", "doms": [".ne.jp"],
     "aliases": None},
    {"country": "us", "doms": ["33across.com", "tynt.com"], "owner_name": "33Across", "root_parent": None,
     "parent": None},
    {"country": "us", "doms": ["admeld.com"], "owner_name": "Admeld", "root_parent": "Alphabet",
     "parent": "Google"},
    {"country": "uk", "doms": ["adbrain.com", "adbrn.com"], "owner_name": "AdBrain", "root_parent": None,
     "parent": None},
    {"country": "cn", "doms": ["124.17.1.253", "cnnic.cn"], "owner_name": "CNIC", "root_parent": None,
     "parent": None},
    {"owner_name": "Alibaba", "parent": None, "country": "China", "notes": None, "privacy_policy_url": None,
     "homepage_url": None, "root_parent": "Alibaba", "doms": ["alibaba.com", "alicdn.com", "taobao.com"],
     "aliases": ["HiChina"]},
    {"owner_name": "Tradedoubler", "parent": None, "country": "Atlantis", "root_parent": None,
     "doms": ["tradedoubler.com"], "aliases": None},
    {"owner_name": "HEIAS", "parent": "Tradedoubler", "country": None, "root_parent": "Tradedoubler",
     "doms": ["heias.com"], "aliases": None},
    {"owner_name": "Impact Radius", "parent": None, "country": "United States", "root_parent": "Impact Radius",
     "doms": [], "aliases": None},
]
# sociam/xray analysis/company_data_12_2_2018.json: the same records keyed by name
XRAY_BY_NAME = {
    "Alibaba": {"owner_name": "Alibaba", "parent": None, "country": "CN", "root_parent": "Alibaba",
                "doms": ["alibaba.com", "alipay.com"], "aliases": ["HiChina"]},
    "Niantic": {"doms": ["nianticlabs.com"], "owner_name": "Niantic", "root_parent": "Alphabet", "parent": "Google"},
    "Gravatar": {"owner_name": "Gravatar", "parent": "Automattic", "country": "US", "root_parent": "Automattic",
                 "doms": ["gravatar.com"], "aliases": []},
}
# sociam/xray analysis/domain_owners.json
XRAY_DOMAIN_OWNERS = [
    {"id": 0, "parent_id": None, "owner_name": "33Across", "aliases": ["33 Across"], "homepage_url": None,
     "privacy_policy_url": None, "notes": None, "country": "US", "domains": ["33across.com", "tynt.com"]},
    {"id": 37, "parent_id": None, "owner_name": "Amazon", "aliases": ["Alexa"], "country": "US",
     "domains": ["amazon.com", "images-amazon.com"]},
    {"id": 38, "parent_id": 37, "owner_name": "Amazon Marketing Services", "aliases": ["Amazon AdSystem"],
     "country": "US", "domains": ["amazon-adsystem.com"]},
    {"id": 9, "parent_id": None, "owner_name": "AdBrain", "aliases": ["Ad Brain"], "country": "UK",
     "domains": ["adbrain.com", "adbrn.com"]},
]

HAR = {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": []}}


def tracker_radar_repo(root: Path) -> Path:
    """A tracker-radar checkout: entities/ with three entity files, and a domains/US file."""
    write_json(root / "entities" / "Google LLC.json", TR_GOOGLE)
    write_json(root / "entities" / "1000mercis.json", TR_1000MERCIS)
    write_json(root / "entities" / "ByteDance Ltd..json", TR_BYTEDANCE)
    write_json(root / "domains" / "US" / "doubleclick.net.json", TR_DOMAIN_FILE)
    (root / "README.md").write_text("# Tracker Radar\n")
    return root


def write_mmdb(path: Path, database_type: str, records: dict[str, dict[str, Any]], *,
               description: str = "test data", build_epoch: int = EPOCH_2026_11_01) -> Path:
    return mmdb_files.write_mmdb(path, database_type, records, description=description, build_epoch=build_epoch)


def asn_mmdb(path: Path) -> Path:
    return write_mmdb(
        path,
        "GeoLite2-ASN",
        {
            "8.8.8.0/24": {"autonomous_system_number": 15169, "autonomous_system_organization": "GOOGLE"},
            "1.1.1.0/24": {"autonomous_system_number": 13335, "autonomous_system_organization": "CLOUDFLARENET"},
        },
        description="GeoLite2 ASN database",
    )


# --- store ---------------------------------------------------------------------------------


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATAREACH_DATA_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert store.data_dir() == tmp_path / "explicit"
    assert store.imports_dir() == tmp_path / "explicit" / "imports"
    monkeypatch.delenv("DATAREACH_DATA_DIR")
    assert store.data_dir() == tmp_path / "xdg" / "datareach"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store.data_dir() == tmp_path / "home" / ".local" / "share" / "datareach"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert store.data_dir() == tmp_path / "home" / ".local" / "share" / "datareach"


def test_list_imports_empty_store() -> None:
    assert store.list_imports() == []
    assert store.remove_import("disconnect-00000000") is False


def test_list_imports_skips_corrupted_files(tmp_path: Path) -> None:
    good = importers.import_disconnect(write_json(tmp_path / "entities.json", DISCONNECT_CURRENT))
    folder = store.imports_dir()
    (folder / "xray-deadbeef.json").write_bytes(b'{"format": "datareach-import/1", "id": "xray-dea')  # truncated
    (folder / "tracker-radar-0badf00d.json").write_text(json.dumps({"format": "something-else/9"}))
    doc = good.to_json()
    doc["id"] = "disconnect-12345678"  # does not match its sha256
    (folder / "disconnect-12345678.json").write_text(json.dumps(doc))
    bad_entity = good.to_json()
    bad_entity["entities"][0]["domains"] = "not-a-list"
    bad_entity["sha256"] = "ab" * 32
    bad_entity["id"] = "disconnect-abababab"
    (folder / "disconnect-abababab.json").write_text(json.dumps(bad_entity))
    (folder / f"{good.id}.json.bak").write_text("ignored: not a .json file")
    (folder / "notes.json").write_text("{}")  # not a dataset file name
    (folder / ".disconnect-99999999.json.tmp").write_text("a temporary file of a concurrent save")
    problems: list[str] = []
    assert store.list_imports(problems) == [good]
    assert len(problems) == 5
    assert any("disconnect-abababab.json" in p and "'domains' must be a list" in p for p in problems)
    assert any("xray-deadbeef.json" in p and "JSON" in p for p in problems)
    assert any("tracker-radar-0badf00d.json" in p and "format" in p for p in problems)
    assert any("disconnect-12345678.json" in p for p in problems)
    assert any("notes.json" in p for p in problems)
    with pytest.warns(UserWarning) as caught:
        assert store.list_imports() == [good]
    assert len(caught) == 5 and any("xray-deadbeef" in str(w.message) for w in caught)


def test_list_imports_skips_mmdb_dataset_without_its_database(tmp_path: Path) -> None:
    ds = importers.import_mmdb(asn_mmdb(tmp_path / "GeoLite2-ASN.mmdb"))
    assert store.list_imports([]) == [ds]
    assert ds.mmdb_path is not None
    ds.mmdb_path.unlink()
    problems: list[str] = []
    assert store.list_imports(problems) == []
    assert problems and "missing" in problems[0]


def test_list_imports_sorted_by_import_time(tmp_path: Path) -> None:
    a = importers.import_disconnect(write_json(tmp_path / "a.json", DISCONNECT_CURRENT))
    b = importers.import_xray(write_json(tmp_path / "b.json", XRAY_LIST))
    # rewrite a's stamp to be later than b's
    doc = stored(a)
    doc["imported_at"] = "2999-01-01T00:00:00Z"
    (store.imports_dir() / f"{a.id}.json").write_text(json.dumps(doc))
    assert [d.id for d in store.list_imports([])] == [b.id, a.id]


def test_remove_import(tmp_path: Path) -> None:
    ds = importers.import_mmdb(asn_mmdb(tmp_path / "asn.mmdb"))
    folder = store.imports_dir()
    assert sorted(p.name for p in folder.iterdir()) == [f"{ds.id}.json", f"{ds.id}.mmdb"]
    assert store.remove_import(ds.id) is True
    assert list(folder.iterdir()) == []
    assert store.remove_import(ds.id) is False
    assert store.remove_import("../../etc/passwd") is False
    assert store.remove_import("") is False


def test_imported_entity_reads_as_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "l.txt"
    path.write_text("acme.com\n")
    ds = importers.import_domain_list(path, entity="acme", name="Acme Inc.")
    e = ds.entities[0]
    assert dict(e) == {"name": "Acme Inc.", "aliases": [], "country": None, "parent": None,
                       "domains": ["acme.com"], "entity_id": "acme"}
    assert e.get("entity_id") == "acme" and e["domains"] == ["acme.com"]
    plain = store.ImportedEntity(name="X", domains=("x.com",))
    assert "entity_id" not in plain and plain.get("entity_id") is None and len(plain) == 5
    with pytest.raises(KeyError):
        plain["nope"]


def test_save_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_json(tmp_path / "entities.json", DISCONNECT_CURRENT)
    mmdb = asn_mmdb(tmp_path / "asn.mmdb")
    first = importers.import_xray(write_json(tmp_path / "x.json", XRAY_LIST))
    before = snapshot(store.data_dir())

    def failing_replace(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KBImportError, match="No space left"):
        importers.import_disconnect(src)
    with pytest.raises(KBImportError, match="No space left"):
        importers.import_mmdb(mmdb)
    assert snapshot(store.data_dir()) == before
    assert store.list_imports([]) == [first]


def test_failed_save_into_missing_data_dir_removes_what_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_json(tmp_path / "entities.json", DISCONNECT_CURRENT)

    def failing_replace(*args: Any, **kwargs: Any) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KBImportError):
        importers.import_disconnect(src)
    assert not store.data_dir().exists()


# --- Tracker Radar -------------------------------------------------------------------------


def test_tracker_radar_entities_directory(tmp_path: Path) -> None:
    repo = tracker_radar_repo(tmp_path / "tracker-radar")
    ds = importers.import_tracker_radar(repo / "entities")
    check_provenance(ds, "tracker-radar", "entities", dir_digest(repo / "entities"))
    assert ds.licence_note == "CC BY-NC-SA 4.0 (DuckDuckGo Tracker Radar)"
    assert ds.dataset_date is None and ds.prefer is False and ds.mmdb is None
    ents = by_name(ds)
    assert set(ents) == {"Google LLC", "1000mercis", "ByteDance Ltd."}
    google = ents["Google LLC"]
    assert google.aliases == ("Google",)
    assert google.domains == tuple(sorted(TR_GOOGLE["properties"]))
    assert google.country is None and google.parent is None
    assert ents["1000mercis"].aliases == ()  # displayName equal to the name is no alias
    assert ents["ByteDance Ltd."].domains == ("bytedance.com", "ibytedtos.com", "tiktok.com", "tiktokv.com")
    assert ds.counts["entities"] == 3 and ds.counts["domains"] == 12
    assert ds.counts["invalid_domains"] == 0 and ds.counts["skipped_entries"] == 0


def test_tracker_radar_repository_root_is_the_same_dataset(tmp_path: Path) -> None:
    repo = tracker_radar_repo(tmp_path / "tracker-radar")
    a = importers.import_tracker_radar(repo / "entities")
    b = importers.import_tracker_radar(repo, prefer=True, licence_note="my copy, research use")
    assert a.id == b.id and b.file == "tracker-radar"
    assert b.prefer is True and b.licence_note == "my copy, research use"
    assert [d.id for d in store.list_imports([])] == [b.id]
    assert stored(b)["prefer"] is True


def test_tracker_radar_single_entity_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "Google LLC.json", TR_GOOGLE)
    ds = importers.import_tracker_radar(path)
    check_provenance(ds, "tracker-radar", "Google LLC.json", hashlib.sha256(path.read_bytes()).hexdigest())
    assert [e.name for e in ds.entities] == ["Google LLC"]


def test_tracker_radar_directory_skips_a_minority_of_bad_files(tmp_path: Path) -> None:
    repo = tracker_radar_repo(tmp_path / "tr")
    (repo / "entities" / "broken.json").write_text('{"name": "Broken", "properties": [')
    bad = dict(TR_1000MERCIS, properties=["not a domain", "also bad", "mmtro.com"])
    write_json(repo / "entities" / "mixed.json", dict(bad, name="Mixed"))
    ds = importers.import_tracker_radar(repo)
    assert ds.counts["skipped_entries"] == 1
    assert ds.counts["invalid_domains"] == 2
    assert "Broken" not in by_name(ds) and by_name(ds)["Mixed"].domains == ("mmtro.com",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (DISCONNECT_CURRENT, "Disconnect entities.json"),
        (DISCONNECT_WRAPPED, "Disconnect entities.json"),
        (XRAY_LIST, "X-Ray"),
        (HAR, "HAR"),
        (TR_DOMAIN_FILE, "domain file"),
        ({"name": "no properties"}, '"properties"'),
        ({"random": [1, 2, 3]}, "Tracker Radar entity file"),
        ([], "Tracker Radar entity file"),
        ("a string", "Tracker Radar entity file"),
    ],
)
def test_tracker_radar_rejects_other_files(tmp_path: Path, content: Any, message: str) -> None:
    existing = importers.import_disconnect(write_json(tmp_path / "keep.json", DISCONNECT_CURRENT))
    before = snapshot(store.data_dir())
    path = write_json(tmp_path / "input.json", content)
    with pytest.raises(KBImportError, match=re.escape(message)) as err:
        importers.import_tracker_radar(path)
    assert str(path) in str(err.value)
    assert snapshot(store.data_dir()) == before
    assert store.list_imports([]) == [existing]


def test_tracker_radar_rejects_non_json_and_wrong_directories(tmp_path: Path) -> None:
    text = tmp_path / "hosts.txt"
    text.write_text("0.0.0.0 ads.example.com\n")
    with pytest.raises(KBImportError, match=r"hosts\.txt: line 1: not JSON"):
        importers.import_tracker_radar(text)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KBImportError, match=r"no \.json files"):
        importers.import_tracker_radar(empty)
    domains = tracker_radar_repo(tmp_path / "tr") / "domains" / "US"
    with pytest.raises(KBImportError, match="domain file") as err:
        importers.import_tracker_radar(domains)
    assert "doubleclick.net.json" in str(err.value)
    with pytest.raises(KBImportError, match="no such file"):
        importers.import_tracker_radar(tmp_path / "missing")
    assert snapshot(store.data_dir()) is None


# --- Disconnect ----------------------------------------------------------------------------


def test_disconnect_current_shape(tmp_path: Path) -> None:
    path = write_json(tmp_path / "entities.json", DISCONNECT_CURRENT)
    ds = importers.import_disconnect(path)
    check_provenance(ds, "disconnect", "entities.json", hashlib.sha256(path.read_bytes()).hexdigest())
    assert ds.licence_note == "CC BY-NC-SA 4.0 (Disconnect, Inc.)"
    ents = by_name(ds)
    assert list(ents) == ["2leep.com", "33Across", "AdReady", "Adobe"]
    # domains are properties and resources; "digitalremedy" is no domain name
    assert ents["AdReady"].domains == ("adready.com", "adreadytractions.com", "digitalremedy.com")
    assert ents["Adobe"].domains == ("2o7.net", "adobe.com", "demdex.net", "omtrdc.net", "typekit.com")
    assert ds.counts["invalid_domains"] == 1


def test_disconnect_wrapped_shape_reads_the_licence(tmp_path: Path) -> None:
    path = write_json(tmp_path / "entities.json", DISCONNECT_WRAPPED)
    ds = importers.import_disconnect(path)
    assert ds.licence_note == DISCONNECT_LICENCE
    assert by_name(ds)["adnologies"].domains == ("adnologies.com", "heias.com")
    override = importers.import_disconnect(path, licence_note="licensed copy #42")
    assert override.id == ds.id and override.licence_note == "licensed copy #42"
    assert len(store.list_imports([])) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (TR_GOOGLE, "Tracker Radar entity file"),
        (XRAY_LIST, "X-Ray"),
        (XRAY_BY_NAME, "X-Ray"),
        (HAR, "HAR"),
        (DISCONNECT_SERVICES, "services.json"),
        ({"license": "x", "entities": []}, '"entities" is not an object'),
        ({}, "no entities"),
        ({"a": 1, "b": "c"}, "entries are not entity records"),
        ([1, 2], "Disconnect entities.json"),
    ],
)
def test_disconnect_rejects_other_files(tmp_path: Path, content: Any, message: str) -> None:
    importers.import_tracker_radar(write_json(tmp_path / "tr" / "g.json", TR_GOOGLE))
    before = snapshot(store.data_dir())
    path = write_json(tmp_path / "input.json", content)
    with pytest.raises(KBImportError, match=re.escape(message)) as err:
        importers.import_disconnect(path)
    assert str(path) in str(err.value)
    assert snapshot(store.data_dir()) == before


def test_disconnect_nearly_all_invalid_domains_is_rejected(tmp_path: Path) -> None:
    content = {f"E{i}": {"properties": [f"bad name {i}"], "resources": [f"also bad {i}"]} for i in range(20)}
    content["Ok"] = {"properties": ["ok.com"], "resources": []}
    path = write_json(tmp_path / "entities.json", content)
    with pytest.raises(KBImportError, match=r"nearly all domain names are invalid \(40 of 41"):
        importers.import_disconnect(path)
    assert snapshot(store.data_dir()) is None


# --- X-Ray ---------------------------------------------------------------------------------


def test_xray_company_list(tmp_path: Path) -> None:
    path = write_json(tmp_path / "company_data_list_6_4_2018.json", XRAY_LIST)
    ds = importers.import_xray(path)
    check_provenance(ds, "xray", "company_data_list_6_4_2018.json", hashlib.sha256(path.read_bytes()).hexdigest())
    ents = by_name(ds)
    assert "" not in ents  # the nameless ".ne.jp" record is skipped
    assert ds.counts["skipped_entries"] == 1
    assert ents["33Across"].country == "US" and ents["33Across"].parent is None
    assert ents["Admeld"].parent == "Google"  # the direct parent, before root_parent
    assert ents["AdBrain"].country == "GB"  # "uk" is not ISO 3166
    assert ents["CNIC"].domains == ("cnnic.cn",) and ents["CNIC"].country == "CN"  # IP address dropped
    assert ents["Alibaba"].country == "CN" and ents["Alibaba"].parent is None  # root_parent is itself
    assert ents["Alibaba"].aliases == ("HiChina",)
    assert ents["Tradedoubler"].country is None  # unknown name: null, no failure
    assert ents["HEIAS"].parent == "Tradedoubler"
    assert ents["Impact Radius"].country == "US" and ents["Impact Radius"].domains == ()
    assert ds.counts["invalid_domains"] == 1


def test_xray_name_keyed_and_domain_owners_variants(tmp_path: Path) -> None:
    keyed = importers.import_xray(write_json(tmp_path / "company_data_12_2_2018.json", XRAY_BY_NAME))
    ents = by_name(keyed)
    assert ents["Niantic"].parent == "Google" and ents["Niantic"].country is None
    assert ents["Gravatar"].parent == "Automattic" and ents["Gravatar"].country == "US"
    owners = importers.import_xray(write_json(tmp_path / "domain_owners.json", XRAY_DOMAIN_OWNERS))
    ents = by_name(owners)
    assert ents["Amazon Marketing Services"].parent == "Amazon"  # parent_id resolved by id
    assert ents["Amazon Marketing Services"].aliases == ("Amazon AdSystem",)
    assert ents["AdBrain"].country == "GB"
    assert ents["Amazon"].domains == ("amazon.com", "images-amazon.com")
    assert len(store.list_imports([])) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (DISCONNECT_CURRENT, "Disconnect entities.json"),
        (TR_GOOGLE, "Tracker Radar entity file"),
        (HAR, "HAR"),
        (["33across.com", "tynt.com"], "entry 0: not an object"),
        ([{"name": 1}], "no owner_name"),
        ([{"owner_name": "X", "doms": "x.com"}], "no doms list"),
        ([], "not a non-empty list"),
        (42, "not a non-empty list"),
    ],
)
def test_xray_rejects_other_files(tmp_path: Path, content: Any, message: str) -> None:
    importers.import_disconnect(write_json(tmp_path / "keep.json", DISCONNECT_CURRENT))
    before = snapshot(store.data_dir())
    path = write_json(tmp_path / "input.json", content)
    with pytest.raises(KBImportError, match=re.escape(message)) as err:
        importers.import_xray(path)
    assert str(path) in str(err.value)
    assert snapshot(store.data_dir()) == before


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("us", "US"), ("US", "US"), ("uk", "GB"), ("GB", "GB"), ("United States", "US"),
        ("United States of America", "US"), ("the Netherlands", "NL"), ("People's Republic of China", "CN"),
        ("Korea, Republic of", "KR"), ("  germany ", "DE"), ("Atlantis", None), ("", None), ("ZZ", None),
        ("EU", None), (None, None), (7, None), ("x" * 500, None),
    ],
)
def test_country_code(value: object, code: str | None) -> None:
    assert importers.country_code(value) == code


# --- domain lists --------------------------------------------------------------------------

DOMAIN_LIST = """\
! Title: Example tracker list
# Last modified: 2026-03-01 12:00 UTC
[Adblock Plus 2.0]

# plain names, in any case, with a trailing dot
Tracker.Example.COM
metrics.example.com.
# hosts-file lines
0.0.0.0 ads.example.net
127.0.0.1 localhost
127.0.0.1 pixel.example.net beacon.example.net  # two names on one line
::1 ip6-localhost
# adblock rules
||collect.example.org^
||sdk.example.org^$third-party
# wildcards, URLs, IDNs
*.cdn.example.io
https://API.example.dev:8443/v1/events?id=1
bücher.example
"""


def test_domain_list_all_syntaxes(tmp_path: Path) -> None:
    path = tmp_path / "acme-trackers.txt"
    path.write_text(DOMAIN_LIST, encoding="utf-8")
    ds = importers.import_domain_list(path, entity="acme", country="us")
    check_provenance(ds, "domain-list", "acme-trackers.txt", hashlib.sha256(path.read_bytes()).hexdigest())
    assert ds.dataset_date == "2026-03-01"
    assert ds.licence_note == "user-supplied domain list"
    (ent,) = ds.entities
    assert ent.name == "acme" and ent.entity_id == "acme" and ent.country == "US"
    assert stored(ds)["entities"][0]["entity_id"] == "acme"
    assert ent.domains == (
        "ads.example.net", "api.example.dev", "beacon.example.net", "cdn.example.io", "collect.example.org",
        "metrics.example.com", "pixel.example.net", "sdk.example.org", "tracker.example.com",
        "xn--bcher-kva.example",
    )
    assert ds.counts["invalid_domains"] == 0


def test_domain_list_new_entity_name_and_tolerated_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xef\xbb\xbfone.example.com\ntwo.example.com\nthree.example.com\nnot a domain\n-bad-.com\n")
    ds = importers.import_domain_list(path, entity="newco", name="NewCo Ltd.", country="Germany", prefer=True)
    (ent,) = ds.entities
    assert ent.name == "NewCo Ltd." and ent.entity_id == "newco" and ent.country == "DE"
    assert ent.domains == ("one.example.com", "three.example.com", "two.example.com")
    assert ds.counts["invalid_domains"] == 2 and ds.prefer is True
    assert ds.dataset_date is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"domain,owner,country\nexample.com,Example,US\nfoo.com,Foo,DE\n", "line 1: 'domain,owner,country'"),
        (b"# only comments\n\n# nothing else\n", "0 of 0 non-comment lines"),
        (b"", "0 of 0"),
        (b"ok.example.com\n\x00\x01\x02binary", "line 2: binary data"),
        (b"ok.example.com\nline \xff\xfe\n", "line 2: not UTF-8 text"),
        (b"192.168.1.1\n10.0.0.1\nok.example.com\n", "line 1: '192.168.1.1'"),
        (b"##.ad-banner\n@@||good.example.com^\nexample.com##.sponsored\n", "line 2: '@@||good"),
        (json.dumps(DISCONNECT_CURRENT, indent=2).encode(), "line 1: '{'"),
    ],
)
def test_domain_list_rejects_other_files(tmp_path: Path, data: bytes, message: str) -> None:
    importers.import_xray(write_json(tmp_path / "keep.json", XRAY_LIST))
    before = snapshot(store.data_dir())
    path = tmp_path / "input.txt"
    path.write_bytes(data)
    with pytest.raises(KBImportError, match=re.escape(message)) as err:
        importers.import_domain_list(path, entity="acme")
    assert str(path) in str(err.value)
    assert snapshot(store.data_dir()) == before


def test_domain_list_argument_errors(tmp_path: Path) -> None:
    path = tmp_path / "l.txt"
    path.write_text("example.com\n")
    with pytest.raises(KBImportError, match="unknown country"):
        importers.import_domain_list(path, entity="acme", country="Narnia")
    with pytest.raises(KBImportError, match="non-empty"):
        importers.import_domain_list(path, entity="  ")
    with pytest.raises(KBImportError, match="no such file"):
        importers.import_domain_list(tmp_path / "missing.txt", entity="acme")
    with pytest.raises(KBImportError, match="NUL"):
        importers.import_domain_list(str(path) + "\0x", entity="acme")
    assert snapshot(store.data_dir()) is None


# --- mmdb ----------------------------------------------------------------------------------


def test_mmdb_import_copies_the_database(tmp_path: Path) -> None:
    src = asn_mmdb(tmp_path / "GeoLite2-ASN.mmdb")
    ds = importers.import_mmdb(src)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    check_provenance(ds, "mmdb", "GeoLite2-ASN.mmdb", sha)
    assert ds.mmdb == store.MmdbInfo(file=f"{ds.id}.mmdb", database_type="GeoLite2-ASN", build_date="2026-11-01")
    assert stored(ds)["mmdb"] == {"file": f"{ds.id}.mmdb", "database_type": "GeoLite2-ASN",
                                  "build_date": "2026-11-01"}
    assert ds.dataset_date == "2026-11-01"
    assert ds.entities == () and stored(ds)["counts"] == {"entities": 0, "domains": 0}
    assert ds.licence_note == "GeoLite2 End User License Agreement (MaxMind, Inc.)"
    assert ds.mmdb_path == store.imports_dir() / f"{ds.id}.mmdb"
    assert ds.mmdb_path.read_bytes() == src.read_bytes()
    # the stored copy is a working database
    import maxminddb

    with maxminddb.open_database(str(ds.mmdb_path)) as reader:
        assert reader.get("8.8.8.8") == {"autonomous_system_number": 15169,
                                         "autonomous_system_organization": "GOOGLE"}
    # importing it again replaces the dataset
    again = importers.import_mmdb(src, licence_note="GeoLite2 EULA, account 123")
    assert again.id == ds.id
    assert sorted(p.name for p in store.imports_dir().iterdir()) == [f"{ds.id}.json", f"{ds.id}.mmdb"]
    assert store.list_imports([]) == [again]


def test_mmdb_country_and_vendor_licences(tmp_path: Path) -> None:
    country = write_mmdb(tmp_path / "dbip-country-lite.mmdb", "DBIP-Country-Lite",
                         {"8.8.8.0/24": {"country": {"iso_code": "US"}}}, description="dbip.com country lite")
    ds = importers.import_mmdb(country)
    assert ds.mmdb is not None and ds.mmdb.database_type == "DBIP-Country-Lite"
    assert ds.licence_note == "CC BY 4.0 (DB-IP.com)"
    ipinfo = write_mmdb(tmp_path / "country_asn.mmdb", "ipinfo country_asn.mmdb",
                        {"8.8.8.0/24": {"country": "US", "asn": "AS15169", "as_name": "Google LLC"}},
                        description="ipinfo country_asn.mmdb")
    assert importers.import_mmdb(ipinfo).licence_note == "IPinfo licence (ipinfo.io)"
    assert len(store.list_imports([])) == 2


@pytest.mark.parametrize("what", ["empty", "text", "json", "directory", "missing"])
def test_mmdb_rejects_other_files(tmp_path: Path, what: str) -> None:
    importers.import_xray(write_json(tmp_path / "keep.json", XRAY_LIST))
    before = snapshot(store.data_dir())
    path = tmp_path / "input.mmdb"
    if what == "empty":
        path.write_bytes(b"")
    elif what == "text":
        path.write_text("0.0.0.0 ads.example.com\n")
    elif what == "json":
        write_json(path, DISCONNECT_CURRENT)
    elif what == "directory":
        path.mkdir()
    with pytest.raises(KBImportError) as err:
        importers.import_mmdb(path)
    assert str(path) in str(err.value)
    assert snapshot(store.data_dir()) == before


def test_mmdb_rejects_a_truncated_database(tmp_path: Path) -> None:
    good = asn_mmdb(tmp_path / "asn.mmdb").read_bytes()
    for cut in (len(good) // 2, len(good) - 200, 100):
        bad = tmp_path / f"cut{cut}.mmdb"
        bad.write_bytes(good[:cut])
        with pytest.raises(KBImportError, match=re.escape(str(bad))):
            importers.import_mmdb(bad)
    assert snapshot(store.data_dir()) is None


# --- re-import -----------------------------------------------------------------------------


def test_reimport_replaces_and_other_content_adds(tmp_path: Path) -> None:
    path = write_json(tmp_path / "entities.json", DISCONNECT_CURRENT)
    first = importers.import_disconnect(path)
    second = importers.import_disconnect(path, prefer=True)
    assert first.id == second.id
    assert store.list_imports([]) == [second] and stored(second)["prefer"] is True
    # the same bytes under another name and place are still the same dataset
    copy = tmp_path / "elsewhere" / "disconnect-entities.json"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    third = importers.import_disconnect(copy)
    assert third.id == first.id and third.file == "disconnect-entities.json"
    assert len(store.list_imports([])) == 1
    # changed content is another dataset
    changed = write_json(tmp_path / "entities2.json", dict(DISCONNECT_CURRENT, New={"properties": ["new.com"]}))
    fourth = importers.import_disconnect(changed)
    assert fourth.id != first.id
    assert {d.id for d in store.list_imports([])} == {first.id, fourth.id}
    # the same bytes imported as another kind would be a different id (kind is part of it)
    lst = tmp_path / "l.txt"
    lst.write_text("example.com\n")
    a = importers.import_domain_list(lst, entity="x")
    assert a.id.startswith("domain-list-")


# --- domain names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("*.example.com", "example.com"),
        (".example.com", "example.com"),
        ("  www.example.co.uk  ", "www.example.co.uk"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("例え.jp", "xn--r8jz45g.jp"),
        ("xn--9trs65b.com", "xn--9trs65b.com"),
        ("a\u3002example.com", "a.example.com"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("com", None),
        ("co.uk", None),
        ("localhost", None),
        ("digitalremedy", None),
        ("124.17.1.253", None),
        ("124.17.1.253.", None),
        ("exa mple.com", None),
        ("-bad.example.com", None),
        ("bad-.example.com", None),
        ("a..example.com", None),
        ("a" * 64 + ".com", None),
        (".".join(["a" * 60] * 5) + ".com", None),
        ("http://example.com", None),
        ("example.com/path", None),
        ("", None),
        (None, None),
        (42, None),
        (["example.com"], None),
    ],
)
def test_normalize_domain(raw: object, expected: str | None) -> None:
    assert importers.normalize_domain(raw) == expected


DOMAIN_RE = re.compile(r"^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\.)+[a-z][a-z0-9-]*[a-z0-9]$")


@given(st.text(max_size=80))
def test_normalize_domain_output_is_a_valid_idempotent_name(raw: str) -> None:
    out = importers.normalize_domain(raw)
    if out is not None:
        assert out.isascii() and DOMAIN_RE.match(out) and len(out) <= 253
        assert importers.normalize_domain(out) == out


@given(st.lists(st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True), min_size=2, max_size=4))
def test_normalize_domain_accepts_generated_names(labels: list[str]) -> None:
    name = ".".join([*labels[:-1], "com"])
    assert importers.normalize_domain(name.upper() + ".") == name


# --- hostile input -------------------------------------------------------------------------

IMPORTERS: dict[str, Callable[[Path], store.ImportedDataset]] = {
    "tracker-radar": importers.import_tracker_radar,
    "disconnect": importers.import_disconnect,
    "xray": importers.import_xray,
    "domain-list": lambda p: importers.import_domain_list(p, entity="fuzz"),
    "mmdb": importers.import_mmdb,
}

_KEYS = st.sampled_from(
    ["name", "displayName", "properties", "resources", "entities", "license", "owner_name", "doms", "domains",
     "parent", "parent_id", "root_parent", "country", "aliases", "id", "log", "entries", "domain", "owner",
     "categories", "format", "Google"]
)
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["example.com", "bücher.de", "uk", "United States", "", "com"])
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_KEYS | st.text(max_size=8), children, max_size=6),
    max_leaves=30,
)


def _only_kb_errors(path: Path) -> None:
    for kind, fn in IMPORTERS.items():
        try:
            ds = fn(path)
        except KBImportError as err:
            assert str(err)
        else:
            assert ds.kind == kind
            assert store.load_import(ds.id) == ds


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_only_kb_import_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    _only_kb_errors(path)
    with pytest.raises(KBImportError):
        importers.import_mmdb(path)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=JSON_VALUES)
def test_random_json_raises_only_kb_import_error(tmp_path: Path, doc: Any) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    _only_kb_errors(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(JSON_VALUES, min_size=1, max_size=4))
def test_random_tracker_radar_directories_raise_only_kb_import_error(tmp_path: Path, files: list[Any]) -> None:
    folder = tmp_path / "entities"
    if folder.exists():
        for p in folder.iterdir():
            p.unlink()
    folder.mkdir(exist_ok=True)
    for i, doc in enumerate(files):
        (folder / f"e{i}.json").write_text(json.dumps(doc), encoding="utf-8")
    with contextlib.suppress(KBImportError):
        importers.import_tracker_radar(folder)


def test_deeply_nested_and_huge_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    for fn in IMPORTERS.values():
        with pytest.raises(KBImportError):
            fn(deep)
    monkeypatch.setattr(importers, "MAX_TEXT_BYTES", 10)
    big = write_json(tmp_path / "big.json", DISCONNECT_CURRENT)
    with pytest.raises(KBImportError, match="too large"):
        importers.import_disconnect(big)
    assert snapshot(store.data_dir()) is None
