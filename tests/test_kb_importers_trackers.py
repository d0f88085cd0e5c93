"""Importers of the tracker datasets added for issue 15: DuckDuckGo's app tracker list, the
AdGuard companiesdb, Ghostery's trackerdb and Exodus Privacy's tracker signatures. Fixtures in
tests/data/datasets/ (README.md there: source and licence of each)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from datareach.kb import importers, knowledge_base, reset, store
from datareach.kb.importers import KBImportError

DATA = Path(__file__).resolve().parent / "data" / "datasets"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("DATAREACH_DATA_DIR", str(path))
    reset()
    return path


def _by_name(ds: store.ImportedDataset) -> dict[str, store.ImportedEntity]:
    return {e.name: e for e in ds.entities}


def test_ddg_app_list(tmp_path: Path) -> None:
    ds = importers.import_ddg_app(DATA / "ddg-app" / "android-tds.json")
    ents = _by_name(ds)
    assert ents["Example Ads Ltd."].domains == ("ads.examplead.example", "sdk.examplead.example")
    assert ents["Example Ads Ltd."].aliases == ("ExampleAds",)
    assert ds.counts["skipped_entries"] == 1 and ds.kind == "ddg-app" and "NC-SA" in ds.licence_note
    # the repository root works too
    repo = tmp_path / "tracker-blocklists"
    (repo / "app").mkdir(parents=True)
    shutil.copy(DATA / "ddg-app" / "android-tds.json", repo / "app")
    assert importers.import_ddg_app(repo).id == ds.id
    assert store.load_import(ds.id).entities == ds.entities


def test_adguard_companiesdb_real_excerpt() -> None:
    ds = importers.import_adguard_companiesdb(DATA / "adguard-companiesdb")
    ents = _by_name(ds)
    assert "web-visor.com" in ents["Yandex"].domains and "adfox.ru" in ents["Yandex"].domains
    assert ents["163"].domains == ("analytics.163.com",)
    assert ds.dataset_date == "2026-07-20" and "CC BY-SA 4.0" in ds.licence_note
    # the KB then gives the domains to curated entities (by [[map]] record or name) or to new ones,
    # which are counted when they have no country
    kb = knowledge_base(use_cache=False)
    imp = kb.imports[0]
    assert imp["kind"] == "adguard-companiesdb" and imp["entities_added"] == imp["entities_without_country"]
    assert kb.domains["web-visor.com"] == "yandex-llc" or kb.entities[kb.domains["web-visor.com"]]["hq"] == "RU"


def test_adguard_companiesdb_wrong_file(tmp_path: Path) -> None:
    bad = tmp_path / "trackers.json"
    bad.write_text(json.dumps({"trackers": {}}))
    with pytest.raises(KBImportError, match="trackerDomains"):
        importers.import_adguard_companiesdb(bad)
    assert not store.imports_dir().exists()


def test_ghostery_trackerdb_repository(tmp_path: Path) -> None:
    ds = importers.import_ghostery_trackerdb(DATA / "ghostery")
    ents = _by_name(ds)
    assert set(ents) == {"Example Ads Co."}
    assert ents["Example Ads Co."].country == "CN"
    assert ents["Example Ads Co."].domains == ("ads-cdn.example", "pixel.ads.example")
    assert ds.counts["patterns_without_organisation"] == 1
    # the JSON export shape
    export = tmp_path / "trackerdb.json"
    export.write_text(json.dumps({
        "organizations": {"o": {"name": "Org", "country": "RU"}},
        "patterns": {"p": {"name": "P", "organization": "o", "domains": ["p.example"]}, "q": "junk"}}))
    ds2 = importers.import_ghostery_trackerdb(export)
    assert _by_name(ds2)["Org"].country == "RU"
    with pytest.raises(KBImportError):
        importers.import_ghostery_trackerdb(tmp_path)  # no db/ here


def test_exodus_signatures() -> None:
    ds = importers.import_exodus(DATA / "exodus-trackers.json")
    ents = _by_name(ds)
    assert ents["Example SDK"].domains == ("api.sdk-example.net", "sdk.example")  # the [0-9]+ part is no host
    assert ds.counts["trackers_without_host_signature"] == 1


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"trackers": 5}', '{"trackers": {"1": {"name": 3}}}', "\xff"])
def test_bad_inputs_are_import_errors(tmp_path: Path, text: str) -> None:
    p = tmp_path / "x.json"
    p.write_text(text, encoding="latin-1")
    for fn in (importers.import_ddg_app, importers.import_exodus, importers.import_adguard_companiesdb,
               importers.import_ghostery_trackerdb):
        with pytest.raises(KBImportError):
            fn(p)
    assert not store.imports_dir().exists()
