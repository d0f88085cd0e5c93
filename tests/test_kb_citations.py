"""Legal citations point at official texts: the first source of every law (and of every policy
preset) is on an official publisher's site, not a mirror, a law firm's summary or an encyclopaedia.

A secondary source may stay, after the official one or under the source's ``also``. Laws whose
official text has not yet been found are listed in PENDING with the reason; the list may only
shrink (a law in it that now cites an official text fails the test until it is removed).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from datareach.kb.index import DATA_DIR
from datareach.kb.load import read_kb

# Official publishers of legal texts (host names; a sub-domain of one is official too). Only the
# legislature's, the government's or the official gazette's own sites, and the EU's publications
# office: never a mirror of their text (lexbuild, checkoutapi, justia, Cornell LII, wikisource...),
# a law firm, a news site or Wikipedia.
OFFICIAL = frozenset({
    # United States: eCFR, Federal Register, GPO, the House's US Code, Congress, the National
    # Archives, and the agencies that publish their own rules and lists
    "ecfr.gov", "federalregister.gov", "govinfo.gov", "uscode.house.gov", "congress.gov", "archives.gov",
    "bis.doc.gov", "fcc.gov", "treasury.gov", "justice.gov", "whitehouse.gov", "defense.gov",
    # European Union: EUR-Lex and the Commission
    "eur-lex.europa.eu", "commission.europa.eu", "data.europa.eu",
    # United Kingdom
    "legislation.gov.uk", "gov.uk",
    # China (the NPC's English site is served under en.npc.gov.cn.cdurl.cn), Hong Kong, Macao
    "npc.gov.cn", "en.npc.gov.cn.cdurl.cn", "gov.cn", "elegislation.gov.hk", "gov.hk", "io.gov.mo", "gov.mo",
    # Russia: the official legal-information portal and the Kremlin
    "pravo.gov.ru", "kremlin.ru", "government.ru",
    # others
    "legislation.govt.nz", "legislation.gov.au", "homeaffairs.gov.au", "indiacode.nic.in", "meity.gov.in",
    "gesetze-im-internet.de", "legifrance.gouv.fr", "irishstatutebook.ie", "wetten.overheid.nl",
    "riksdagen.se", "boe.es", "normattiva.it", "gazzettaufficiale.it", "resmigazete.gov.tr", "mevzuat.gov.tr",
    "vanban.chinhphu.vn",
})

#: laws (and policy presets) whose first source is not yet an official text, with why
PENDING = {
    # official texts not found with the project's search tools by 2026-12-07 (translations and
    # commentary cited meanwhile); to be replaced by npc.gov.cn, elegislation.gov.hk, pravo.gov.ru ...
    **dict.fromkeys([
        "cn-csl-28", "cn-csl-2025-amendment", "cn-csl-37", "cn-dsl-35", "cn-dsl-36",
        "cn-pipl-38", "cn-pipl-40", "cn-pipl-41",
        "ru-sorm", "ru-242-fz",
        "de-tkg-110", "fr-cpp-interception", "nl-tw-13",
        "nl-wiv-2017", "es-lecrim-588ter", "it-cpp-266",
        "in-it-act-69", "in-dpdp-2023", "ir-messaging-localisation-2016", "vn-csl-2018-decree-53",
        "tr-law-5651-2020",
    ], "official text not yet located; a translation or commentary is cited"),
}


def official(url: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return any(host == d or host.endswith("." + d) for d in OFFICIAL)


def _first_sources() -> dict[str, str]:
    raw = read_kb(DATA_DIR)
    out = {}
    for j in raw.jurisdictions.values():
        for law in j["law"]:
            out[law["id"]] = raw.sources[law["sources"][0]]["url"]
    presets = Path(DATA_DIR).parent.parent / "assess" / "presets"
    for path in sorted(presets.glob("*.toml")):
        policy = tomllib.loads(path.read_text(encoding="utf-8"))["policy"]
        first = policy["sources"][0]
        out[f"policy:{policy['id']}"] = raw.sources[first]["url"] if first in raw.sources else first
    return out


def test_the_allow_list_is_of_host_names():
    assert official("https://www.ecfr.gov/current/title-28/part-202")
    assert official("https://uscode.house.gov./view.xhtml")
    assert not official("https://checkoutapi.com/regulations/28/202.211")
    assert not official("https://lexbuild.dev/ecfr/title-28/")
    assert not official("https://en.wikipedia.org/wiki/X")
    assert not official("https://evil-eur-lex.europa.eu.example.com/")


def test_every_law_cites_an_official_text_first():
    firsts = _first_sources()
    wrong = {law: url for law, url in firsts.items() if law not in PENDING and not official(url)}
    assert not wrong, f"first source is not an official text (fix it, or list it in PENDING with why): {wrong}"


def test_the_pending_list_only_shrinks():
    firsts = _first_sources()
    assert set(PENDING) <= set(firsts), f"PENDING names unknown laws: {set(PENDING) - set(firsts)}"
    fixed = sorted(law for law in PENDING if official(firsts[law]))
    assert not fixed, f"these now cite an official text: remove them from PENDING: {fixed}"


def test_no_law_or_preset_cites_the_checkoutapi_mirror_first():
    assert not [law for law, url in _first_sources().items() if "checkoutapi.com" in url or "lexbuild.dev" in url]
