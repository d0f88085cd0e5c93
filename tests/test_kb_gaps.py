"""``kb check``'s modelling-gap checks (datareach.kb.gaps), on small knowledge bases written here."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from datareach.cli import main
from datareach.kb import reset
from datareach.kb.gaps import find_gaps, load_allow, load_dataset_file, shipped_datasets
from datareach.kb.load import KBError, read_kb

MINI = Path(__file__).parent / "data" / "kb_mini"

ENTITIES = '''
[[entity]]
id = "big-holding"
name = "Big Holding Co., Ltd."
aliases = ["BigCo"]
hq = "CN"
domains = ["bigco.example"]
sources = ["t-1"]
as_of = "2026-11-24"

[[entity]]
id = "mid-holding"
name = "Mid Holding Ltd."
hq = "CN"
sources = ["t-1"]
as_of = "2026-11-24"

[[entity.parent]]
entity = "big-holding"
share = 1.0
control = "equity"
sources = ["t-1"]

[[entity]]
id = "unlinked"
name = "Unlinked App Ltd."
hq = "TR"
domains = ["unlinked.example"]
sources = ["t-1"]
as_of = "2026-11-24"
notes = "Marketplace majority owned by BigCo since 2018."

[[entity]]
id = "via-chain"
name = "Chain App Ltd."
hq = "ID"
domains = ["chain.example"]
sources = ["t-1"]
as_of = "2026-11-24"
notes = "Controlled by Big Holding through Mid Holding."

[[entity.parent]]
entity = "mid-holding"
share = 1.0
control = "equity"
sources = ["t-1"]

[[entity]]
id = "minority"
name = "Minority Media Ltd."
hq = "FR"
domains = ["minority.example"]
sources = ["t-1"]
as_of = "2026-11-24"
notes = "BigCo holds a minority stake."

[[entity]]
id = "votes"
name = "Votes Video Inc."
hq = "CN"
domains = ["votes.example"]
sources = ["t-1"]
as_of = "2026-11-24"
notes = "BigCo holds 45% of the shares but 92.3% of the voting power through class B shares."

[[entity.parent]]
entity = "big-holding"
share = 0.45
control = "equity"
sources = ["t-1"]

[[entity]]
id = "leaf-nodomain"
name = "Leaf Without Domains Ltd."
hq = "SG"
sources = ["t-1"]
as_of = "2026-11-24"

[[entity]]
id = "by-stranger"
name = "Stranger Target Ltd."
hq = "GB"
domains = ["stranger.example"]
sources = ["t-1"]
as_of = "2026-11-24"
notes = "Food-delivery app controlled by Prosus (Naspers)."
'''


@pytest.fixture()
def kb_dir(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    (root / "entities").mkdir(parents=True)
    shutil.copy(MINI / "sources.toml", root / "sources.toml")
    shutil.copy(MINI / "jurisdictions.toml", root / "jurisdictions.toml")
    (root / "entities" / "gaps.toml").write_text(ENTITIES, encoding="utf-8")
    return root


def keys(gaps):
    return {(g.check, g.entity, g.target) for g in gaps}


def test_a_note_naming_a_kb_controller_without_a_parent_link_is_a_gap(kb_dir):
    gaps = find_gaps(read_kb(kb_dir))
    found = keys(gaps)
    assert ("note-controller", "unlinked", "big-holding") in found
    # reached through the chain: no gap; a minority holder is no controller
    assert not [k for k in found if k[0] == "note-controller" and k[1] in ("via-chain", "minority", "votes")]
    g = next(g for g in gaps if g.entity == "unlinked")
    assert g.file.endswith("gaps.toml") and g.line > 0 and "BigCo" in g.message


def test_a_named_controller_that_is_not_in_the_kb_is_reported_for_entities_without_parents(kb_dir):
    found = keys(find_gaps(read_kb(kb_dir)))
    assert ("controller-not-in-kb", "by-stranger", "Prosus") in found


def test_voting_control_recorded_as_a_minority_equity_share_is_a_gap(kb_dir):
    gaps = [g for g in find_gaps(read_kb(kb_dir)) if g.check == "voting-as-equity"]
    assert [(g.entity, g.target) for g in gaps] == [("votes", "big-holding")]
    assert "92.3%" in gaps[0].message


def test_voting_as_voting_below_the_threshold_is_a_gap_too(kb_dir):
    path = kb_dir / "entities" / "gaps.toml"
    path.write_text(path.read_text().replace('share = 0.45\ncontrol = "equity"', 'share = 0.45\ncontrol = "voting"'))
    assert ("voting-as-equity", "votes", "big-holding") in keys(find_gaps(read_kb(kb_dir)))
    # with no share (voting control recorded as such) there is nothing to report
    path.write_text(path.read_text().replace('share = 0.45\ncontrol = "voting"', 'control = "voting"'))
    assert not [g for g in find_gaps(read_kb(kb_dir)) if g.check == "voting-as-equity"]


def test_only_leaf_companies_without_domains_are_reported(kb_dir):
    found = {k[1] for k in keys(find_gaps(read_kb(kb_dir))) if k[0] == "no-domains"}
    # mid-holding is a parent, state is not a company, cloud operates an AS (kb_mini)
    assert "leaf-nodomain" in found and "mid-holding" not in found and "state" not in found


def _dataset(tmp_path: Path, entities: list[dict[str, object]]) -> Path:
    doc = {"format": 1, "id": "disconnect-0123abcd", "kind": "disconnect", "entities": entities}
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_a_domain_a_dataset_gives_to_another_group_is_reported_never_resolved(kb_dir, tmp_path):
    ds = load_dataset_file(_dataset(tmp_path, [
        {"name": "Other Corp", "domains": ["cdn.unlinked.example", "new.example"]},   # other group: gap
        {"name": "Big Holding", "domains": ["chain.example"]},           # chain.example's group: fine
        {"name": "Mid Holding Ltd.", "parent": "Big Holding", "domains": ["bigco.example"]},  # same group
    ]))
    raw = read_kb(kb_dir)
    gaps = [g for g in find_gaps(raw, datasets=[ds]) if g.check == "dataset-owner"]
    assert [(g.entity, g.target) for g in gaps] == [("unlinked", "cdn.unlinked.example")]
    assert "Other Corp" in gaps[0].message and "not a KB entity" in gaps[0].message
    # a mapping of the dataset's company to the KB entity settles it
    mapped = find_gaps(raw, datasets=[ds], mappings={("disconnect-0123abcd", "other"): "unlinked"})
    assert not [g for g in mapped if g.check == "dataset-owner"]


def test_shipped_datasets_are_read_from_the_datasets_folder(kb_dir, tmp_path):
    assert shipped_datasets(kb_dir) == []
    sha = "0123abcd" + "0" * 56
    doc = {"format": "datareach-import/1", "id": "disconnect-0123abcd", "kind": "disconnect", "file": "x.json",
           "sha256": sha, "imported_at": "2026-12-07T00:00:00Z", "dataset_date": None, "licence_note": "test",
           "prefer": False, "mmdb": None,
           "entities": [{"name": "Other Corp", "aliases": [], "country": None, "parent": None,
                         "domains": ["unlinked.example"]}]}
    (kb_dir / "datasets" / "x").mkdir(parents=True)
    (kb_dir / "datasets" / "x" / "dataset.json").write_text(json.dumps(doc))
    shipped = shipped_datasets(kb_dir)
    assert [d.name for d in shipped] == ["disconnect-0123abcd"]
    gaps = [g for g in find_gaps(read_kb(kb_dir), datasets=shipped) if g.check == "dataset-owner"]
    assert [(g.entity, g.target) for g in gaps] == [("unlinked", "unlinked.example")]
    # a malformed shipped dataset is a packaging error
    (kb_dir / "datasets" / "x" / "dataset.json").write_text("{not json")
    with pytest.raises(KBError):
        shipped_datasets(kb_dir)


def test_bad_dataset_files_are_errors_not_crashes(tmp_path):
    for text in ("", "[]", '{"entities": 3}', "\xff"):
        p = tmp_path / "bad.json"
        p.write_text(text, encoding="utf-8", errors="surrogateescape")
        with pytest.raises(ValueError):
            load_dataset_file(p)
    gz = tmp_path / "bad.json.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage")
    with pytest.raises(ValueError):
        load_dataset_file(gz)
    gz.write_bytes(gzip.compress(b'{"entities": [{"name": "A", "domains": ["a.example"]}]}'))
    assert load_dataset_file(gz).entities[0]["domains"] == ["a.example"]
    p = tmp_path / "odd.json"
    p.write_text(json.dumps({"entities": [3, {"name": 5}, {"name": "X", "domains": "a.example", "parent": []}]}))
    assert load_dataset_file(p).entities == [{"name": "X", "parent": None, "domains": [], "entity_id": None}]


def test_the_allow_list_needs_reasons(tmp_path):
    p = tmp_path / "gaps-allow.toml"
    p.write_text('[[allow]]\ncheck = "no-domains"\nentity = "x"\nreason = "reviewed: a legal entity only"\n')
    assert load_allow(p) == {("no-domains", "x", ""): "reviewed: a legal entity only"}
    for bad in ('[[allow]]\ncheck = "no-domains"\nentity = "x"\n',
                '[[allow]]\ncheck = "nope"\nentity = "x"\nreason = "long enough reason"\n',
                '[[allow]]\ncheck = "no-domains"\nentity = "x"\nreason = "long enough reason"\nextra = 1\n',
                "allow = 3\n", "[[allow]\n"):
        p.write_text(bad)
        with pytest.raises(KBError):
            load_allow(p)


@pytest.fixture()
def user_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path / "cache"))
    reset()
    yield
    reset()


def test_kb_check_warns_and_strict_fails(kb_dir, tmp_path, capsys, user_dirs):
    assert main(["kb", "check", str(kb_dir)]) == 0
    out = capsys.readouterr().out
    assert "OK:" in out and "warning:" in out and "note-controller: unlinked" in out
    assert main(["kb", "check", str(kb_dir), "--strict"]) == 3
    capsys.readouterr()
    # accepting every gap makes --strict pass; a stale entry fails it again
    gaps = find_gaps(read_kb(kb_dir))
    allow = "".join(f'[[allow]]\ncheck = "{g.check}"\nentity = "{g.entity}"\ntarget = "{g.target}"\n'
                    f'reason = "reviewed in the test"\n\n' for g in gaps)
    (kb_dir / "gaps-allow.toml").write_text(allow)
    assert main(["kb", "check", str(kb_dir), "--strict"]) == 0
    assert f"{len(gaps)} accepted" in capsys.readouterr().out
    (kb_dir / "gaps-allow.toml").write_text(allow + '[[allow]]\ncheck = "no-domains"\nentity = "gone"\n'
                                                    'reason = "reviewed in the test"\n')
    assert main(["kb", "check", str(kb_dir), "--strict"]) == 3
    assert "no longer occurs" in capsys.readouterr().out


def test_kb_check_json_and_dataset_option(kb_dir, tmp_path, capsys, user_dirs):
    ds = _dataset(tmp_path, [{"name": "Other Corp", "domains": ["unlinked.example"]}])
    assert main(["kb", "check", str(kb_dir), "--json", "--dataset", str(ds)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"check": "dataset-owner", "entity": "unlinked", "target": "unlinked.example"}.items() <= next(
        g for g in doc["gaps"] if g["check"] == "dataset-owner").items()
    assert main(["kb", "check", str(kb_dir), "--dataset", str(tmp_path / "missing.json")]) == 2
    # load errors still fail as before
    (kb_dir / "entities" / "gaps.toml").write_text("[[entity]]\nid = 3\n")
    assert main(["kb", "check", str(kb_dir)]) == 2


def test_the_shipped_knowledge_base_passes_strict(capsys, user_dirs):
    assert main(["kb", "check", "--strict"]) == 0, capsys.readouterr().out


def test_mapping_files_in_the_shared_format(kb_dir, tmp_path):
    from datareach.kb.gaps import load_mappings

    (kb_dir / "mappings").mkdir()
    (kb_dir / "mappings" / "x.toml").write_text(
        '[[map]]\ndataset = "*"\ncompany = "Other Corp."\nentity = "unlinked"\n\n'
        '[[map]]\ndataset = ["disconnect", "xray"]\ncompany = "Third"\nentity = "via-chain"\n\n'
        '[[map]]\ndataset = "adguard-companiesdb"\ncompany = "Nobody"\ncountry = "FR"\n')
    maps = load_mappings(kb_dir)
    assert maps == {("*", "other"): "unlinked", ("disconnect", "third"): "via-chain", ("xray", "third"): "via-chain"}
    ds = load_dataset_file(_dataset(tmp_path, [{"name": "Other Corp", "domains": ["unlinked.example"]},
                                               {"name": "Third", "domains": ["chain.example", "bigco.example"]}]))
    gaps = [g for g in find_gaps(read_kb(kb_dir), datasets=[ds], mappings=maps) if g.check == "dataset-owner"]
    # Other Corp is mapped to unlinked (same owner); Third is via-chain, whose group holds bigco.example too
    assert gaps == []
    (kb_dir / "mappings" / "broken.toml").write_text("[[map]\n")
    with pytest.raises(KBError):
        load_mappings(kb_dir)


def test_dataset_company_names_match_in_camel_case_and_by_domain(kb_dir, tmp_path):
    ds = load_dataset_file(_dataset(tmp_path, [
        {"name": "BigHolding", "domains": ["bigco.example"]},          # CamelCase of "Big Holding"
        {"name": "unlinked.example", "domains": ["unlinked.example"]},  # a company named by its domain
        {"name": "BigCo Online Systems", "domains": ["cdn.bigco.example"]},  # generic words after the name
    ]))
    assert not [g for g in find_gaps(read_kb(kb_dir), datasets=[ds]) if g.check == "dataset-owner"]
