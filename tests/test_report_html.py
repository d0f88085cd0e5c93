"""The HTML report without a browser: one file, a CSP whose hashes match, nothing loaded from
anywhere, hostile values escaped, the embedded JSON exact."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach.kb import knowledge_base
from datareach.report.html import embed_json, render_html
from datareach.testing.reports import (
    APP_PAYLOAD,
    ENTITY_PAYLOAD,
    HOST2_PAYLOAD,
    HOST_PAYLOAD,
    HOSTILE_STRINGS,
    HTTP_HOST_PAYLOAD,
    IP_PAYLOAD,
    JS_URL_PAYLOAD,
    PCAPDROID_APP,
    REASONING_PAYLOAD,
    SECRET_PAYLOAD,
    big_doc,
    hostile_doc,
)

#: Every element the renderer writes; anything else in a page was injected.
EMITTED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "div", "h1", "h2", "h3", "p", "main",
    "section", "span", "strong", "em", "code", "table", "thead", "tbody", "tr", "th", "td", "ul", "li",
    "dl", "dt", "dd", "svg", "g", "path", "circle", "rect", "text", "details", "summary", "input",
    "label", "select", "option", "button", "noscript", "script", "a", "wbr", "line",
}
URL_ATTRIBUTES = {"src", "href", "xlink:href", "action", "formaction", "srcset", "poster", "data", "background",
                  "ping", "manifest", "codebase", "cite", "longdesc", "usemap", "icon", "lowsrc", "dynsrc"}


_OFFICIAL_LINK = re.compile(r"https?://[^\s\"'<>`\\]+", re.IGNORECASE)


def is_allowed_link(tag: str, attrs: dict[str, str | None]) -> bool:
    """The only URLs the page may hold: links to the laws' official sources (plain http(s), opened
    without referrer or opener) and links to its own sections (``#id``)."""
    href = attrs.get("href") or ""
    if tag != "a" or set(attrs) & (URL_ATTRIBUTES - {"href"}):
        return False
    if re.fullmatch(r"#[A-Za-z0-9_-]+", href):
        return True
    return (_OFFICIAL_LINK.fullmatch(href) is not None and attrs.get("rel") == "noopener noreferrer"
            and attrs.get("target") == "_blank")


class Page(HTMLParser):
    """Everything a browser would see in the page: elements, attributes, text, scripts, styles."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.testids: dict[str, list[str]] = {}
        self._stack: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in ("script", "style") or "data-testid" in a:
            self._stack.append((tag, a, []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if self._stack and self._stack[-1][0] == tag:
            t, a, parts = self._stack.pop()
            content = "".join(parts)
            if t == "script":
                self.scripts.append((a, content))
            elif t == "style":
                self.styles.append(content)
            if a.get("data-testid"):
                self.testids.setdefault(str(a["data-testid"]), []).append(content)

    def handle_data(self, data: str) -> None:
        for _, _, parts in self._stack:
            parts.append(data)
        if not self._stack or self._stack[-1][0] not in ("script", "style"):
            self.text.append(data)


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _csp(page: Page) -> dict[str, list[str]]:
    metas = [a for t, a in page.tags if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(metas) == 1
    out: dict[str, list[str]] = {}
    for part in str(metas[0]["content"]).split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def _embedded(text: str) -> Any:
    """The JSON as a browser's HTML parser would cut it out: up to the first ``</script``."""
    m = re.search(r'<script type="application/json" id="datareach-data">(.*?)</script', text, re.S | re.I)
    assert m
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def example(example_audit: dict[str, Any]) -> dict[str, Any]:
    return example_audit


@pytest.fixture(scope="module")
def example_policy(example_policy_audit: dict[str, Any]) -> dict[str, Any]:
    return example_policy_audit


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return hostile_doc(tmp_path_factory.mktemp("hostile"))


def test_one_file_with_a_csp_whose_hashes_match(example: dict[str, Any]) -> None:
    text = render_html(example)
    page = Page(text)
    csp = _csp(page)
    assert csp["default-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"] and csp["form-action"] == ["'none'"]
    assert "require-trusted-types-for" in csp
    flat = " ".join(v for vs in csp.values() for v in vs)
    assert "unsafe-inline" not in flat and "unsafe-eval" not in flat and "*" not in flat
    assert "http:" not in flat and "https:" not in flat and "data:" not in flat
    code = [body for a, body in page.scripts if a.get("type") != "application/json"]
    data = [body for a, body in page.scripts if a.get("type") == "application/json"]
    assert len(code) == 1 and len(data) == 1 and len(page.styles) == 1
    assert csp["script-src"] == [_sha(code[0])]
    assert csp["style-src"] == [_sha(page.styles[0])]
    assert _embedded(text) == json.loads(json.dumps(example))
    assert len(text.encode()) < 1_000_000


def test_nothing_is_loaded_from_anywhere(example_policy: dict[str, Any]) -> None:
    text = render_html(example_policy)
    page = Page(text)
    assert {"link", "img", "iframe", "object", "embed", "base", "form", "audio", "video", "source", "image",
            "use", "foreignobject"}.isdisjoint(t for t, _ in page.tags)
    links = 0
    for tag, attrs in page.tags:
        if tag == "a":
            assert is_allowed_link(tag, attrs), attrs
            links += 1
        for name, value in attrs.items():
            if tag == "a" and name == "href":
                continue
            assert name not in URL_ATTRIBUTES, (tag, name)
            assert not name.startswith("on"), (tag, name)
            assert "://" not in (value or "") and "javascript:" not in (value or "").lower(), (tag, name, value)
            if name == "style":
                raise AssertionError("inline style attributes would need 'unsafe-inline'")
    assert links  # the laws' official sources are links
    css = page.styles[0]
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    js = next(body for a, body in page.scripts if a.get("type") != "application/json")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(",
                 "fetch(", "XMLHttpRequest", "WebSocket", "sendBeacon", "import(", ".href", ".src", "window.location",
                 "setTimeout(\"", "setAttribute(\"style"):
        assert sink not in js, sink
    # the one URL the script sets is the blob: URL of the CSV it made itself (a download)
    assert re.findall(r'setAttribute\("(?:href|src)[^)]*\)', js) == ['setAttribute("href", url)']
    assert "var url = URL.createObjectURL(new Blob(" in js
    # URLs in the page are text to read (data sources, policy sources) or data in the JSON
    assert "https://" in "".join(page.text)


def test_hostile_values_stay_text(hostile: dict[str, Any]) -> None:
    text = render_html(hostile)
    page = Page(text)
    assert {t for t, _ in page.tags} <= EMITTED_TAGS
    assert [t for t, _ in page.tags].count("script") == 2
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs)
        assert not set(attrs) & URL_ATTRIBUTES or is_allowed_link(tag, attrs), (tag, attrs)
    for s in HOSTILE_STRINGS:
        if any(c in s for c in "<>\"'&"):
            assert s not in text, s
    assert JS_URL_PAYLOAD not in " ".join(str(v) for _, a in page.tags for v in a.values())
    # the hostile strings read back as the very same text (from the JSON and the server-rendered parts)
    assert _embedded(text) == json.loads(json.dumps(hostile))
    visible = "\n".join(page.text)
    for s in (APP_PAYLOAD, HOST_PAYLOAD, REASONING_PAYLOAD, ENTITY_PAYLOAD, IP_PAYLOAD, PCAPDROID_APP):
        assert s in visible, s  # server-rendered: summary, flow, violations, provenance
    assert HTTP_HOST_PAYLOAD in json.dumps(hostile["destinations"])  # the table (script) shows it
    assert SECRET_PAYLOAD in json.dumps(hostile["findings"])  # revealed value: drawn by the script only
    assert HOST2_PAYLOAD in json.dumps(hostile["destinations"], ensure_ascii=False)


_HOSTILE_PIECES = st.sampled_from(["</script>", "</SCRIPT", "<!--", "-->", "<script>", "\u2028", "\u2029",
                                   "&", "&amp;", "\"", "'", "`", "\\", "\\u003c", "\x00", "\ud800", "\udfff",
                                   "]]>", "<![CDATA[", "javascript:", "\r\n"])
_ANY_TEXT = st.lists(st.one_of(st.text(alphabet=st.characters(codec=None), max_size=8), _HOSTILE_PIECES),
                     max_size=12).map("".join)


@pytest.fixture(scope="module")
def small_doc(example: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(example)
    doc["dns"] = []
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(host=_ANY_TEXT, url=_ANY_TEXT, app=_ANY_TEXT)
def test_any_string_round_trips_through_the_page(small_doc: dict[str, Any], host: str, url: str, app: str) -> None:
    doc = copy.deepcopy(small_doc)
    d = next(d for d in doc["destinations"] if d.get("owner"))
    d["host"], d["app"] = host, app
    d["owner"]["name"] = app
    doc["exchanges"][0]["url"] = url
    doc["findings"][0]["host"] = host
    doc["summary"]["apps"] = [app]
    text = render_html(doc)
    text.encode("utf-8")  # writable as UTF-8 whatever the strings (lone surrogates included)
    back = _embedded(text)
    # JSON (and the page's JavaScript, whose strings are UTF-16) reads a high surrogate followed
    # by a low one as the one character they encode: that is the only change a string may see
    seen = json.loads(json.dumps(doc))
    assert back["destinations"] == seen["destinations"]
    assert back["exchanges"][0]["url"] == url.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    assert back == seen
    page = Page(text)
    assert [t for t, _ in page.tags].count("script") == 2
    assert {t for t, _ in page.tags} <= EMITTED_TAGS


def test_a_surrogate_pair_written_apart_is_read_as_its_character() -> None:
    """Found by the property above: two code points that happen to be a surrogate pair."""
    out = embed_json({"u": "a\ud800\udc00b\udc80"})
    assert json.loads(out) == {"u": "a\U00010000b\udc80"}


def test_embed_json_escapes_what_could_end_the_element() -> None:
    out = embed_json({"h": "</script><!--\u2028\u2029&>é\ud800"})
    assert not set(out) & set("<>&\u2028\u2029é")
    assert json.loads(out) == {"h": "</script><!--\u2028\u2029&>é\ud800"}


def _numbers(page: Page) -> dict[str, str]:
    return {k: v[0].strip() for k, v in page.testids.items() if k.startswith("summary-")}


def test_summary_without_a_policy(example: dict[str, Any]) -> None:
    assert example["policies"] == [] and example["summary"]["verdict"] is None
    before_policies = copy.deepcopy(example)  # a 1.0 document, from before the policy layer
    for key in ("policies", "violations"):
        del before_policies[key]
    for key in ("violations", "verdict"):
        del before_policies["summary"][key]
    for doc in (example, before_policies):
        page = Page(render_html(doc))
        nums = _numbers(page)
        s = example["summary"]
        assert nums["summary-destinations"] == str(s["destinations"])
        assert nums["summary-findings"] == str(s["findings"])
        assert nums["summary-jurisdictions"] == str(len(s["jurisdictions"]))
        assert nums["summary-owners"] == str(len(s["owners"]))
        assert nums["summary-personal-destinations"] == str(sum(1 for d in example["destinations"] if d["data_types"]))
        assert nums["summary-deny"] == nums["summary-warn"] == "–"
        assert "no-policy" in page.testids and "violation" not in page.testids
        verdict = [a for t, a in page.tags if a.get("data-testid") == "verdict"]
        assert verdict[0]["data-verdict"] == "none"


def test_summary_and_violations_with_a_policy(example_policy: dict[str, Any]) -> None:
    page = Page(render_html(example_policy))
    nums = _numbers(page)
    counts = example_policy["summary"]["violations"]
    # what the example breaks (datareach.testing.reports.GATE_POLICY); one of the warnings is
    # about the advertising ID sent to the app's API inside HTTPS (the capture carries its key log):
    # its server's location. (Its owner is not known: the app's own API on CloudFront is hosted by
    # Amazon, not owned by it, so no third-country-recipient warning on the owner basis.)
    assert counts == {"deny": 1, "warn": 3, "allowed": 1}
    assert nums["summary-deny"] == str(counts["deny"])
    assert nums["summary-warn"] == str(counts["warn"])
    assert nums["summary-policies"] == "Report test gate"
    verdict = [a for t, a in page.tags if a.get("data-testid") == "verdict"]
    assert verdict[0]["data-verdict"] == example_policy["summary"]["verdict"] == "fail"
    cards = [a for t, a in page.tags if a.get("data-testid") == "violation"]
    live = [v for v in example_policy["violations"] if v["allowed"] is None]
    allowed = [v for v in example_policy["violations"] if v["allowed"] is not None]
    assert [(a["data-action"], a["data-allowed"]) for a in cards] == (
        [(v["action"], "false") for v in live] + [(v["action"], "true") for v in allowed])
    assert page.testids["allowed-reason"] == [f"Allowed: {v['allowed']['reason']}" for v in allowed]
    text = "".join(page.text)
    for v in example_policy["violations"]:
        assert v["reasoning"] in text and v["title"] in text and v["host"] in text
        if v["mechanism"]:
            assert v["mechanism"] in text
    for p in example_policy["policies"]:
        assert p["sha256"] in text and p["origin"] in text and p["name"] in text


def test_jurisdiction_table_says_which_data_each_state_reaches(example: dict[str, Any]) -> None:
    page = Page(render_html(example))
    rows = [str(a["data-jurisdiction"]) for t, a in page.tags if a.get("data-testid") == "jurisdiction-row"]
    assert sorted(rows) == example["summary"]["jurisdictions"]
    # states reaching a destination that received personal data come first
    pd = {r["jurisdiction"] for d in example["destinations"] if d["data_types"] for r in d["reach"]
          if r["jurisdiction"]}  # (a CDN edge server's location names no jurisdiction)
    assert set(rows[: len(pd)]) == pd


def test_provenance_lists_every_source_and_input(example_policy: dict[str, Any]) -> None:
    page = Page(render_html(example_policy))
    text = "".join(page.text)
    assert len(page.testids["data-source-row"]) == len(example_policy["data_sources"])
    for s in example_policy["data_sources"]:
        assert s["name"] in text and s["version"] in text
        assert (s["licence"] or "") in text
    for i in example_policy["inputs"]:
        assert i["sha256"] in text and i["path"] in text and str(i["size"]) in text
    assert page.testids["tool-version"][0] == f"datareach {example_policy['tool']['version']}"
    assert page.testids["generated-at"][0] == example_policy["generated_at"].replace("T", " ").split(".")[0] + "Z"


def test_map_has_a_point_for_every_jurisdiction_of_the_knowledge_base(example: dict[str, Any]) -> None:
    from datareach.report.html import _world

    countries = _world()["countries"]
    missing = [j for j in knowledge_base().jurisdictions if j != "EU" and "c" not in countries.get(j, {})]
    assert missing == []
    page = Page(render_html(example))
    marked = {a["data-country"] for t, a in page.tags if t == "path" and "srv" in (a.get("class") or "")}
    marked |= {a["data-country"] for t, a in page.tags if t == "path" and "both" in (a.get("class") or "")}
    servers = {c for d in example["destinations"] for c in d["countries"]}
    assert servers - {"HK", "SG"} <= marked  # HK and SG have a marker but no 1:110m shape
    rows = {a["data-country"] for t, a in page.tags if a.get("data-testid") == "country-row"}
    assert servers | set(example["summary"]["jurisdictions"]) <= rows


def test_flow_goes_app_operator_parent_jurisdiction(example: dict[str, Any]) -> None:
    page = Page(render_html(example))
    nodes = page.testids["flow-node"]
    cols = [a["data-column"] for t, a in page.tags if a.get("data-testid") == "flow-node"]
    labels = {c: [n for n, cc in zip(nodes, cols, strict=True) if cc == c] for c in "0123"}
    assert any(n.startswith("WeatherApp") for n in labels["0"])
    assert any(n.startswith("Tencent Holdings Limited") for n in labels["2"])
    assert any(n.startswith("CN ") for n in labels["3"])


def test_large_document_renders(example: dict[str, Any]) -> None:
    doc = big_doc(example, 5000)
    text = render_html(doc)
    page = Page(text)
    assert _numbers(page)["summary-destinations"] == "5000"
    assert len(_embedded(text)["destinations"]) == 5000


def test_assets_ship_in_the_package() -> None:
    root = Path(__file__).resolve().parent.parent
    pyproject = (root / "pyproject.toml").read_text()
    assert "report/assets/*" in pyproject
    names = {p.name for p in (root / "src/datareach/report/assets").iterdir()}
    assert {"report.css", "report.js", "world-110m.json"} <= names


def test_only_plain_official_urls_become_links(example: dict[str, Any]) -> None:
    doc = copy.deepcopy(example)
    law_id = next(law["id"] for d in doc["destinations"] for r in d["reach"] for law in r["laws"])
    good = "https://example.org/law?a=1&b=2"
    bad = ["javascript:alert(1)", 'https://x.example/"><script>alert(2)</script>', "data:text/html,<b>x</b>",
           "https://x.example/ space", "\u202ehttps://x.example/"]
    doc["laws"][law_id]["sources"] = [good, *bad]
    page = Page(render_html(doc))
    hrefs = [a.get("href") for t, a in page.tags if t == "a" and (a.get("href") or "").startswith(("http", "java", "data"))]
    assert good in hrefs
    for b in bad:
        assert b not in hrefs
    for t, a in page.tags:
        if t == "a":
            assert is_allowed_link(t, a), a
    assert "javascript:alert(1)" in "".join(page.text)  # shown, as text


def test_who_can_reach_what_names_only_the_receivers(example: dict[str, Any]) -> None:
    page = Page(render_html(example))
    de = next(c for c in page.testids["jurisdiction-row"] if "Germany" in c)
    assert "Alibaba" not in de
    # the servers in Germany are the app's own, on AWS: owner unknown, hosted by Amazon (owner is not host)
    assert "events.weatherapp.example.com (owner unknown, hosted by Amazon Web Services, Inc. (US; network))" in de
    assert "us-doj:covered-personal-identifiers" not in de  # the plain words, the id in a footnote
    assert "identifiers covered by the US bulk data rule" in de
    assert "us-doj:covered-personal-identifiers" in page.testids["category-notes"][0].replace("<wbr>", "")


def test_category_labels() -> None:
    from datareach.report.wording import category_label

    assert category_label("gdpr:special:sex-life") == "special category under the GDPR: sex life"
    assert category_label("sent_in_cleartext") == "sent without encryption"
    assert category_label("x:unknown") == "x:unknown"


def test_ownership_and_policy_sources_are_links() -> None:
    """The records an owner's chain rests on, and the policies' sources, are links (plain http(s)
    only, opened without opener or referrer), each owner once."""
    import re

    import datareach
    from datareach.report.html import render_html

    example = Path(__file__).resolve().parent.parent / "examples" / "mobile-app-session.pcapng"
    doc = datareach.audit([example], detect=False, policies=["us-doj-bulk-data"]).to_dict()
    page = render_html(doc)
    section = page[page.index('id="ownership-sources"'):page.index("</section>", page.index('id="ownership-sources"'))]
    owners = {d["owner"]["name"] for d in doc["destinations"] if d["owner"] and d["owner"].get("sources")}
    assert owners and section.count('data-testid="ownership-source"') == len(owners)
    links = re.findall(r'<a class="source" href="([^"]+)" rel="noopener noreferrer"', section)
    assert links and all(u.startswith(("https://", "http://")) for u in links)
    assert 'data-testid="policy-sources"' in page
