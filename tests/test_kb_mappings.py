"""Company mappings (``data/mappings/*.toml``) and shipped datasets (``data/datasets/``):
a dataset's company mapped to a curated entity gives its domains that entity's chain; a company
mapped to a country only becomes an entity with that country; one with neither is flagged."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from datareach.enrich.ownership import OwnershipResolver
from datareach.kb import KBError, knowledge_base, reset
from datareach.kb.mappings import company_key, read_mappings


@pytest.fixture
def kb_dir(tmp_path: Path, kb_mini: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATAREACH_DATA_DIR", str(tmp_path / "data"))
    root = tmp_path / "kb"
    shutil.copytree(kb_mini, root)
    reset()
    return root


def _dataset(root: Path, name: str, kind: str, entities: list[dict[str, object]]) -> Path:
    body = {"format": "datareach-import/1", "kind": kind, "file": f"{name}.json",
            "imported_at": "2026-12-01T00:00:00Z", "dataset_date": "2026-11-30",
            "licence_note": "CC BY-SA 4.0 (test)", "prefer": False, "entities": entities, "mmdb": None}
    sha = hashlib.sha256(json.dumps(entities, sort_keys=True).encode()).hexdigest()
    body.update(id=f"{kind}-{sha[:8]}", sha256=sha)
    d = root / "datasets" / name
    d.mkdir(parents=True)
    (d / "dataset.json").write_text(json.dumps(body), "utf-8")
    (d / "LICENSE").write_text("test", "utf-8")
    return d


def _maps(root: Path, text: str, name: str = "other.toml") -> None:
    (root / "mappings").mkdir(exist_ok=True)
    (root / "mappings" / name).write_text(text, "utf-8")


ENTITIES = [
    {"name": "Mapped Co", "aliases": [], "country": None, "parent": None, "domains": ["mapped.example", "group.example"]},
    {"name": "Country Only", "aliases": [], "country": None, "parent": None, "domains": ["countryonly.example"]},
    {"name": "Nobody Knows", "aliases": [], "country": None, "parent": None, "domains": ["unknown.example"]},
]


def test_mapped_company_inherits_the_curated_chain(kb_dir: Path) -> None:
    _dataset(kb_dir, "testset", "adguard-companiesdb", ENTITIES)
    _maps(kb_dir, """
[[map]]
dataset = "adguard-companiesdb"
company = "Mapped Co"
entity = "app-sg"

[[map]]
dataset = "*"
company = "country only"
country = "RU"
""")
    kb = knowledge_base(kb_dir, use_imports=False, use_cache=False)
    assert kb.domains["mapped.example"] == "app-sg"
    assert kb.domains["group.example"] == "group"  # curated wins
    assert kb.domain_origin["mapped.example"].startswith("shipped:")
    owner, reach = OwnershipResolver(kb).resolve("x.mapped.example", "2026-12-07")
    assert owner is not None and owner["entity"] == "app-sg"
    assert "CN" in {r["jurisdiction"] for r in reach if r["basis"] == "owner"}  # through Group Ltd. (CN)
    co = kb.entities[kb.domains["countryonly.example"]]
    assert co["hq"] == "RU" and co["origin"].startswith("shipped:")
    assert kb.imports == []
    imp = kb.shipped[0]
    assert imp["shipped"] and imp["companies_mapped"] == 1 and imp["entities_without_country"] == 1
    assert kb.counts()["imported_without_country"] == 1
    src = [s for s in kb.data_sources() if s["kind"] == "kb-dataset"]
    assert src and src[0]["licence"] == "CC BY-SA 4.0 (test)"


def test_a_mapping_to_an_unknown_entity_or_dataset_is_an_error(kb_dir: Path) -> None:
    _maps(kb_dir, '[[map]]\ndataset = "adguard-companiesdb"\ncompany = "X"\nentity = "no-such"\n')
    with pytest.raises(KBError, match="no-such"):
        knowledge_base(kb_dir, use_imports=False, use_cache=False)
    _maps(kb_dir, '[[map]]\ndataset = "nope"\ncompany = "X"\ncountry = "CN"\n')
    with pytest.raises(KBError, match="nope"):
        read_mappings(kb_dir)
    _maps(kb_dir, '[[map]]\ndataset = "*"\ncompany = "X"\n')
    with pytest.raises(KBError, match="entity' or 'country"):
        read_mappings(kb_dir)


def test_two_files_mapping_a_company_differently_is_an_error(kb_dir: Path) -> None:
    _maps(kb_dir, '[[map]]\ndataset = "xray"\ncompany = "Foo Inc."\ncountry = "CN"\n', "cn.toml")
    _maps(kb_dir, '[[map]]\ndataset = "xray"\ncompany = "foo inc"\ncountry = "RU"\n', "ru.toml")
    with pytest.raises(KBError, match="mapped differently"):
        read_mappings(kb_dir)


def test_company_keys_keep_legal_suffixes() -> None:
    assert company_key("ByteDance  Inc.") == company_key("bytedance inc") != company_key("ByteDance Ltd")


def test_the_shipped_mappings_load() -> None:
    from datareach.kb.index import DATA_DIR
    from datareach.kb.load import read_kb

    raw = read_kb(DATA_DIR)
    assert len(read_mappings(DATA_DIR, raw.entities)) > 0
