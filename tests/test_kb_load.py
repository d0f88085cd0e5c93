"""A malformed or inconsistent knowledge-base file fails the load with its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from datareach.kb import KBError, knowledge_base
from datareach.kb.load import read_kb


@pytest.fixture
def kb_dir(tmp_path: Path, kb_mini: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(kb_mini, root)
    return root


def edit(root: Path, rel: str, old: str, new: str) -> None:
    p = root / rel
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new, 1))


def error_of(root: Path) -> KBError:
    with pytest.raises(KBError) as info:
        read_kb(root)
    return info.value


def line_of(root: Path, rel: str, needle: str) -> int:
    return next(i for i, line in enumerate((root / rel).read_text().splitlines(), 1) if needle in line)


def test_the_mini_kb_loads(kb_dir):
    raw = read_kb(kb_dir)
    assert set(raw.entities) >= {"group", "app-sg", "jv", "cloud"}


def test_toml_syntax_errors_name_the_file_and_line(kb_dir):
    edit(kb_dir, "entities/test.toml", 'name = "App Pte. Ltd."', 'name = "App Pte. Ltd.')
    e = error_of(kb_dir)
    assert e.path.endswith("entities/test.toml")
    assert e.line == line_of(kb_dir, "entities/test.toml", 'name = "App Pte. Ltd.')
    assert "TOML syntax" in e.message


def test_an_unknown_country_code_is_caught(kb_dir):
    edit(kb_dir, "entities/test.toml", 'hq = "SG"', 'hq = "XX"')
    e = error_of(kb_dir)
    assert "unknown country code 'XX'" in e.message
    assert e.line == line_of(kb_dir, "entities/test.toml", 'id = "app-sg"') - 1  # the [[entity]] header


def test_a_record_without_sources_is_caught(kb_dir):
    edit(kb_dir, "entities/test.toml", 'id = "investor"\nname = "Investor Corp."\nhq = "US"\nsources = ["t-1"]',
         'id = "investor"\nname = "Investor Corp."\nhq = "US"\nsources = []')
    assert "at least one source" in error_of(kb_dir).message


def test_a_missing_source_definition_is_caught(kb_dir):
    edit(kb_dir, "entities/test.toml", 'id = "investor"\nname = "Investor Corp."\nhq = "US"\nsources = ["t-1"]',
         'id = "investor"\nname = "Investor Corp."\nhq = "US"\nsources = ["nowhere"]')
    e = error_of(kb_dir)
    assert "source 'nowhere' is not defined" in e.message
    assert e.line == line_of(kb_dir, "entities/test.toml", '"nowhere"')


def test_a_record_without_an_as_of_date_is_caught(kb_dir):
    edit(kb_dir, "entities/test.toml", 'hq = "SG"\ndomains = ["app.example", "cdn.app.example"]\nsources = ["t-1"]\nas_of = "2026-11-24"',
         'hq = "SG"\ndomains = ["app.example", "cdn.app.example"]\nsources = ["t-1"]')
    assert "missing required field 'as_of'" in error_of(kb_dir).message


def test_an_ownership_cycle_is_caught(kb_dir):
    edit(kb_dir, "entities/test.toml", 'id = "investor"\nname = "Investor Corp."\nhq = "US"\nsources = ["t-1"]\nas_of = "2026-11-24"\n',
         'id = "investor"\nname = "Investor Corp."\nhq = "US"\nsources = ["t-1"]\nas_of = "2026-11-24"\n'
         '\n[[entity.parent]]\nentity = "jv"\nshare = 0.6\ncontrol = "equity"\nsources = ["t-1"]\n')
    assert "ownership cycle" in error_of(kb_dir).message


def test_a_domain_given_to_two_owners_is_caught(kb_dir):
    edit(kb_dir, "entities/test.toml", 'domains = ["app-us.example"]', 'domains = ["app-us.example", "app.example"]')
    e = error_of(kb_dir)
    assert "domain 'app.example' is given to both" in e.message


def test_an_as_given_to_two_operators_is_caught(kb_dir):
    (kb_dir / "entities" / "more.toml").write_text(
        '[[as]]\nentity = "group"\nnumbers = [64500]\nsources = ["t-1"]\nas_of = "2026-11-24"\n')
    e = error_of(kb_dir)
    assert "AS64500 is given to both" in e.message and e.line


def test_unknown_fields_bad_dates_and_bad_domains_are_caught(kb_dir, kb_mini):
    for old, new, message in [
        ('hq = "SG"', 'hq = "SG"\nheadquarters = "SG"', "unknown field 'headquarters'"),
        ('since = "2026-01-22"', 'since = "22/01/2026"', "ISO date"),
        ('"cdn.app.example"', '"*.app.example"', "not a lower-case domain name"),
        ('"cdn.app.example"', '"CDN.app.example"', "not a lower-case domain name"),
        ('control = "state"', 'control = "friendship"', "control must be one of"),
        ('share = 0.15', 'share = 15', "share is a fraction"),
        ('entity = "investor"', 'entity = "nobody"', "parent 'nobody' is not defined"),
        ('list = "test-list"', 'list = "no-list"', "no such list"),
        ('linked_to = "CN"', 'linked_to = "FR"', "is not a jurisdiction here"),
        ('reaches = ["location"]', 'reaches = ["everywhere"]', "reaches must be among"),
    ]:
        root = kb_dir.parent / f"case{abs(hash(old + new))}"
        shutil.copytree(kb_mini, root)
        rel = "jurisdictions.toml" if ("linked_to" in old or "reaches" in old) else "entities/test.toml"
        edit(root, rel, old, new)
        assert message in error_of(root).message, (old, new)


def test_a_malformed_file_fails_the_load_not_half_of_it(kb_dir):
    edit(kb_dir, "entities/test.toml", 'hq = "SG"', 'hq = "XX"')
    with pytest.raises(KBError):
        knowledge_base(kb_dir, use_imports=False, use_cache=False)
