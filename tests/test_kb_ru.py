"""Russian companies of the public tracker datasets: domains, brand TLD, control chains (issue 15)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from datareach.enrich.ownership import OwnershipResolver
from datareach.kb import KBError, knowledge_base
from datareach.kb.index import DATA_DIR
from datareach.kb.load import is_brand_tld, read_kb


@pytest.fixture(scope="module")
def resolver() -> OwnershipResolver:
    return OwnershipResolver(knowledge_base())


def owner_and_reach(resolver: OwnershipResolver, host: str, date: str = "2026-12-07") -> tuple[dict, list]:
    owner, reach = resolver.resolve(host, date)
    return owner, reach


def reaches_ru_as_owner(reach: list) -> bool:
    return any(r.get("jurisdiction") == "RU" and r.get("basis") == "owner" for r in reach)


@pytest.mark.parametrize("host, entity", [
    ("list.ru", "vk"), ("e.mail.ru", "vk"), ("odnoklassniki.ru", "vk"), ("vk-analytics.com", "vk"),
    ("top-fwz1.mail.ru", "vk"), ("webvisor.net", "yandex-llc"), ("mobile.webvisor.net", "yandex-llc"),
    ("foo.yandex", "yandex-llc"), ("cloud.yandex", "yandex-llc"), ("yandex", "yandex-llc"),
    ("rambler.ru", "rambler"), ("counter.yadro.ru", "liveinternet"), ("www.tns-counter.ru", "mediascope"),
    ("ad.adriver.ru", "adriver"), ("rutarget.ru", "segmento"), ("adhigh.net", "getintent"), ("hhcdn.ru", "headhunter"),
])
def test_the_named_misses_reach_russia_through_their_owner(resolver, host, entity):
    owner, reach = owner_and_reach(resolver, host)
    assert owner is not None and owner["entity"] == entity, host
    assert reaches_ru_as_owner(reach), host


def test_a_brand_tld_is_a_kb_domain_but_other_single_labels_are_not():
    assert is_brand_tld("yandex")
    assert not is_brand_tld("notatldanywhere")
    assert not is_brand_tld("yandex.ru")
    kb = knowledge_base()
    assert kb.owner_of_name("mail.yandex") == ("yandex-llc", "yandex")
    assert kb.owner_of_name("a.b.yandex") == ("yandex-llc", "yandex")
    assert kb.owner_of_name("yandex.example") is None


def test_a_single_label_that_is_no_tld_is_refused(tmp_path: Path, kb_mini: Path):
    root = tmp_path / "data"
    shutil.copytree(kb_mini, root)
    p = root / "entities" / "test.toml"
    p.write_text(p.read_text().replace('"cdn.app.example"', '"notatldanywhere"', 1))
    with pytest.raises(KBError, match="not a lower-case domain name or a top-level domain"):
        read_kb(root)


@pytest.mark.parametrize("date, parent, share", [
    ("2019-06-01", None, None),          # Sber's 46.5% did not control
    ("2020-08-01", "sberbank", 0.55),
    ("2021-01-01", "sberbank", 1.0),     # 100% since 29 Oct 2020
    ("2026-12-07", "sberbank", 1.0),
])
def test_rambler_is_sbers_and_through_it_the_russian_states(resolver, date, parent, share):
    owner, _ = owner_and_reach(resolver, "rambler.ru", date)
    chain = [(c["entity"], c.get("share")) for c in owner["chain"]]
    if parent is None:
        assert owner["ultimate_parent"]["entity"] == "rambler"
        return
    assert chain[1] == (parent, share)
    assert owner["ultimate_parent"]["entity"] == "sberbank"
    assert owner["state_owner"]["entity"] == "ru-state"


def test_every_mapping_names_an_entity_of_the_kb():
    path = DATA_DIR / "mappings" / "ru.toml"
    maps = tomllib.loads(path.read_text())["map"]
    entities = read_kb(DATA_DIR).entities
    assert len(maps) > 50
    for m in maps:
        assert set(m) == {"dataset", "company", "entity"}, m
        assert m["entity"] in entities, m
    assert not any(m["company"] == "Megafon" for m in maps)  # its dataset domains are VK's
