"""The HTML report in a real browser: Debian's chromium, driven by Playwright.

Reports made by the real pipeline (the bundled example with and without a real policy file, and
captures full of script payloads) are opened from disk. Every request the page makes is recorded
(only the file itself may be loaded), and so are CSP violations, dialogs and script errors.

Chromium missing is a failure, not a skip (``make system-deps`` installs it); set
``DATAREACH_SKIP_BROWSER=1`` to skip these tests on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datareach.report.html import LOCAL_SCOPES, render_html
from datareach.report.wording import hosted_by
from datareach.testing.reports import (
    APP_PAYLOAD,
    HOST2_PAYLOAD,
    HOST_PAYLOAD,
    HTTP_HOST_PAYLOAD,
    PCAPDROID_APP,
    REASONING_PAYLOAD,
    SECRET_PAYLOAD,
    big_doc,
    hostile_doc,
)

if os.environ.get("DATAREACH_SKIP_BROWSER") == "1":
    pytest.skip("DATAREACH_SKIP_BROWSER=1", allow_module_level=True)

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError as exc:  # the test extra installs it
    raise ImportError("playwright is not installed: pip install -e '.[test]' "
                      "(or set DATAREACH_SKIP_BROWSER=1 to skip the browser tests)") from exc

#: Records CSP violations from the first moment (init scripts are not subject to the page's CSP).
CSP_LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || ''));
});
"""


def chromium_path() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.fail("chromium is not installed: run `make system-deps` (apt-get install chromium), "
                    "or set DATAREACH_SKIP_BROWSER=1 to skip the browser tests")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path())
        try:
            yield b
        finally:
            b.close()


class Report:
    """A report file open in its own browser context, with everything it did recorded."""

    def __init__(self, browser: Browser, path: Path) -> None:
        self.url = path.resolve().as_uri()
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.context.add_init_script(CSP_LISTENER)
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(self.url)
        self.page.wait_for_selector("html[data-ready='1']")

    def _route(self, route: Any) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:  # recorded by the request listener; never let it through
            route.abort()

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__csp")
        return found

    def assert_quiet(self) -> None:
        """Only the file was loaded; nothing broke the CSP, opened a dialog or threw."""
        assert self.requests == [self.url]
        assert self.csp_violations() == []
        assert self.dialogs == []
        assert self.errors == []
        assert self.page.evaluate("typeof window.__pwned") == "undefined"

    def rows(self) -> list[int]:
        return [int(x) for x in self.page.eval_on_selector_all(
            "[data-testid=destination-row]", "rs => rs.map(r => r.getAttribute('data-index'))")]

    def testid(self, name: str) -> str:
        return self.page.get_by_test_id(name).first.inner_text().strip()

    def close(self) -> None:
        self.context.close()


def _write(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(render_html(doc), encoding="utf-8")
    return path


def test_example_with_policy(browser: Browser, example_policy_audit: dict[str, Any], tmp_path: Path) -> None:
    doc = example_policy_audit
    r = Report(browser, _write(doc, tmp_path / "report.html"))
    try:
        s = doc["summary"]
        assert r.testid("summary-destinations") == str(s["destinations"])
        assert r.testid("summary-findings") == str(s["findings"])
        assert r.testid("summary-jurisdictions") == str(len(s["jurisdictions"]))
        assert r.testid("summary-deny") == str(s["violations"]["deny"])
        assert r.testid("summary-warn") == str(s["violations"]["warn"])
        assert r.page.get_by_test_id("verdict").get_attribute("data-verdict") == s["verdict"]
        dests = doc["destinations"]
        # local and private addresses are listed apart; the table holds the others
        public = [i for i, d in enumerate(dests) if d["ip_scope"] not in LOCAL_SCOPES]
        assert len(public) < len(dests)
        n = len(public)
        assert r.rows() == public  # document order until sorted
        assert r.page.get_by_test_id("destinations-count").get_attribute("data-matching") == str(n)

        # sorting: most sent first, then least; host names A to Z
        r.page.get_by_test_id("sort-out").click()
        assert r.rows() == sorted(public, key=lambda i: (-dests[i]["bytes_out"], i))
        assert r.page.locator("th[data-key=out]").get_attribute("aria-sort") == "descending"
        r.page.get_by_test_id("sort-out").click()
        assert r.rows() == sorted(public, key=lambda i: (dests[i]["bytes_out"], i))
        r.page.get_by_test_id("sort-host").click()
        assert r.rows() == sorted(public, key=lambda i: (dests[i]["host"].lower(), i))

        # filtering: text, jurisdiction, personal data, violations
        r.page.get_by_test_id("filter-text").fill("adtrack")
        assert [dests[i]["host"] for i in r.rows()] == ["t.adtrack.example.net"]
        r.page.get_by_test_id("filter-text").fill("")
        r.page.get_by_test_id("filter-jurisdiction").select_option("CN")
        assert sorted(r.rows()) == [i for i, d in enumerate(dests) if any(x["jurisdiction"] == "CN" for x in d["reach"])]
        r.page.get_by_test_id("filter-jurisdiction").select_option("")
        r.page.get_by_test_id("filter-personal").check()
        with_data = [i for i, d in enumerate(dests) if d["data_types"]]
        assert with_data and sorted(r.rows()) == with_data
        r.page.get_by_test_id("filter-personal").uncheck()
        r.page.get_by_test_id("filter-violations").check()
        position = {d["id"]: i for i, d in enumerate(dests)}  # violations name destinations by id
        breaking = sorted({position[v["destination"]] for v in doc["violations"] if v["allowed"] is None})
        assert breaking and sorted(r.rows()) == breaking
        assert r.page.get_by_test_id("destinations-count").get_attribute("data-matching") == str(len(breaking))
        r.page.get_by_test_id("filter-violations").uncheck()
        assert len(r.rows()) == n

        # a destination's details: owner chain, reach, its findings with their evidence
        target = next(i for i, d in enumerate(dests) if d["host"] == "t.adtrack.example.net")
        r.page.locator(f"[data-testid=destination-row][data-index='{target}']").click()
        details = r.page.get_by_test_id("destination-details")
        assert details.count() == 1
        mine = [f for f in doc["findings"] if f["host"] == "t.adtrack.example.net"]
        assert details.get_by_test_id("finding").count() == len(mine)
        text = details.inner_text()
        assert "query u › base64 › json $.eh › sha256(lower(email))" in text
        # t.adtrack.example.net is known only by its network: its details name who hosts it
        assert dests[target]["owner"] is None
        assert "Hosted by (not the owner)" in text and dests[target]["hosting"][0]["name"] in text

        # the evidence section: every finding, with its request as recorded (redacted)
        assert r.page.locator("#findings-list [data-testid=finding]").count() == len(doc["findings"])
        evidence = r.page.locator("#findings-list").inner_text()
        exchanges = {e["id"]: e for e in doc["exchanges"]}  # findings name their exchange by id
        for ex in {f["exchange"] for f in doc["findings"]}:
            assert exchanges[ex]["url"] in evidence
        assert "[redacted]" in evidence
        for f in doc["findings"]:
            assert f["value_redacted"] in evidence

        # violations, the allowed one apart with its reason
        cards = r.page.get_by_test_id("violation")
        assert cards.count() == len(doc["violations"])
        allowed = r.page.locator("[data-testid=violation][data-allowed=true]")
        assert allowed.count() == 1 and "ticket R-17" in allowed.inner_text()
        r.page.screenshot(path=str(tmp_path / "example-policy.png"), full_page=True)
        r.assert_quiet()
    finally:
        r.close()


def test_example_without_policy(browser: Browser, example_audit: dict[str, Any], tmp_path: Path) -> None:
    doc = example_audit
    r = Report(browser, _write(doc, tmp_path / "report.html"))
    try:
        assert r.page.get_by_test_id("verdict").get_attribute("data-verdict") == "none"
        assert "No policy given" in r.page.get_by_test_id("verdict").inner_text()
        assert r.testid("summary-destinations") == str(doc["summary"]["destinations"])
        assert r.page.get_by_test_id("filter-violations").is_disabled()
        assert r.page.get_by_test_id("world-map").is_visible() and r.page.get_by_test_id("flow").is_visible()
        r.page.screenshot(path=str(tmp_path / "example.png"), full_page=True)
        r.assert_quiet()
    finally:
        r.close()


def _strip_csp(path: Path) -> Path:
    text = path.read_text(encoding="utf-8")
    out, n = re.subn(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    assert n == 1
    bare = path.with_name("no-csp-" + path.name)
    bare.write_text(out, encoding="utf-8")
    return bare


@pytest.mark.parametrize("csp", [True, False], ids=["with-csp", "escaping-alone"])
def test_hostile_values_never_run(browser: Browser, tmp_path: Path, csp: bool) -> None:
    doc = hostile_doc(tmp_path)
    path = _write(doc, tmp_path / "hostile.html")
    if not csp:  # the escaping must hold on its own, without the CSP's second line of defence
        path = _strip_csp(path)
    r = Report(browser, path)
    try:
        page = r.page
        # open every destination's details, show the evidence: every string is drawn
        for row in page.get_by_test_id("destination-row").all():
            row.click()
        assert page.get_by_test_id("destination-details").count() == len(doc["destinations"])
        for s in (HOST_PAYLOAD, APP_PAYLOAD, HTTP_HOST_PAYLOAD, PCAPDROID_APP, REASONING_PAYLOAD, SECRET_PAYLOAD):
            assert page.get_by_text(s, exact=False).first.is_visible(), s
        body = page.inner_text("body")
        assert HOST2_PAYLOAD.replace("\u2028", "").replace("\u2029", "")[:18] in body
        # nothing was injected: the page holds only the elements the renderer writes
        injected = page.evaluate("""() => {
            const bad = document.querySelectorAll('img, iframe, object, embed, link, base, form, b, i, foreignObject');
            const scripts = document.querySelectorAll('script').length;
            // the only URLs: official sources (http(s), no referrer, no opener) and the page's own sections
            const link = e => e.tagName === 'A' && (/^#[A-Za-z0-9_-]+$/.test(e.getAttribute('href')) ||
                (/^https?:\\/\\/[^\\s"'<>`\\\\]+$/i.test(e.getAttribute('href')) && e.rel === 'noopener noreferrer'));
            const handlers = [...document.querySelectorAll('*')].filter(
                e => [...e.attributes].some(a => a.name.startsWith('on') || (a.name === 'href' && !link(e)) || a.name === 'src'));
            return {bad: bad.length, scripts, handlers: handlers.length};
        }""")
        assert injected == {"bad": 0, "scripts": 2, "handlers": 0}
        # the embedded JSON reads back exactly
        back = page.evaluate("JSON.parse(document.getElementById('datareach-data').textContent)")
        assert back == json.loads(json.dumps(doc))
        page.screenshot(path=str(tmp_path / f"hostile-{'csp' if csp else 'bare'}.png"), full_page=True)
        if csp:
            r.assert_quiet()
        else:
            assert r.requests == [r.url] and r.dialogs == [] and r.errors == []
            assert page.evaluate("typeof window.__pwned") == "undefined"
    finally:
        r.close()


def test_five_thousand_destinations(browser: Browser, example_audit: dict[str, Any], tmp_path: Path) -> None:
    doc = big_doc(example_audit, 5000)
    r = Report(browser, _write(doc, tmp_path / "big.html"))
    try:
        count = r.page.get_by_test_id("destinations-count")
        public = sum(d["ip_scope"] not in LOCAL_SCOPES for d in doc["destinations"])  # the others are apart
        assert 4000 < public <= 5000
        assert count.get_attribute("data-matching") == str(public)
        shown = int(count.get_attribute("data-shown") or 0)
        assert 0 < shown < public and len(r.rows()) == shown  # drawn a page at a time
        r.page.get_by_test_id("destinations-more").click()
        assert len(r.rows()) == public
        r.page.get_by_test_id("sort-out").click()
        rows = r.rows()
        top = max(d["bytes_out"] for d in doc["destinations"])
        assert doc["destinations"][rows[0]]["bytes_out"] == top
        r.page.get_by_test_id("filter-text").fill("h04999.")
        assert [doc["destinations"][i]["host"].split(".")[0] for i in r.rows()] == ["h04999"]
        r.assert_quiet()
    finally:
        r.close()


# ---------------------------------------------------------------------------------------------
# The views: who can reach what, app by app, per kind of data, the timeline, local traffic, the
# laws' sources, the CSV export, and the 768 px layout. Screenshots go next to each test's report.


def _up(d: dict[str, Any]) -> str:
    """The company a view names for a destination: its ultimate parent, or, with no owner, the
    host and who hosts it (owner is not host)."""
    o = d.get("owner") or {}
    if o:
        return str((o.get("ultimate_parent") or {}).get("name") or o.get("name"))
    return f"{d['host']} (owner unknown, hosted by {', '.join(hosted_by(d.get('hosting')))})"


def _owner_cell(d: dict[str, Any]) -> str:
    """The owner cell of a destination in the per-data-type view."""
    return _up(d) if d.get("owner") else "owner unknown, hosted by " + ", ".join(hosted_by(d.get("hosting")))


def test_who_can_reach_what_pairs_data_with_its_receivers(browser: Browser, example_audit: dict[str, Any],
                                                          tmp_path: Path) -> None:
    doc = example_audit
    dests = doc["destinations"]
    r = Report(browser, _write(doc, tmp_path / "report.html"))
    try:
        # the example: Alibaba's Umeng is reachable from DE (its network host), but it received nothing
        de_pd = [d for d in dests if d["data_types"] and any(x["jurisdiction"] == "DE" for x in d["reach"])]
        assert de_pd and all("Alibaba" not in _up(d) for d in de_pd)
        assert any("Alibaba" in _up(d) and any(x["jurisdiction"] == "DE" for x in d["reach"]) for d in dests)
        for row in r.page.get_by_test_id("jurisdiction-row").all():
            j = row.get_attribute("data-jurisdiction")
            mine = [d for d in dests if d["data_types"] and any(x["jurisdiction"] == j for x in d["reach"])]
            names = [c.locator(".name").inner_text() for c in row.get_by_test_id("jurisdiction-company").all()]
            assert sorted(names) == sorted({_up(d) for d in mine}), j
            text = row.inner_text()
            for d in dests:  # a company that received nothing there is not named
                if _up(d) not in names:
                    assert _up(d) not in text, (j, _up(d))
            tags = {t.inner_text() for t in row.locator(".tag.pd").all()}
            assert len(tags) == len({t for d in mine for t in d["data_types"]}), j
        de = r.page.locator("[data-testid=jurisdiction-row][data-jurisdiction=DE]")
        assert "Alibaba" not in de.inner_text() and "hosted by Amazon Web Services, Inc." in de.inner_text()

        # categories in plain words, the legal id on hover and in the footnote
        cats = r.page.locator("[data-testid=jurisdiction-table] .tag.cat")
        assert cats.count()
        for c in cats.all():
            cid = c.get_attribute("data-category")
            assert c.get_attribute("title") == cid
            assert c.inner_text() != cid and ":" not in c.inner_text().split(" ")[0]
        assert "us-doj:covered-personal-identifiers" not in r.page.locator("#summary table").inner_text()
        notes = r.page.get_by_test_id("category-notes").inner_text()
        assert "us-doj:covered-personal-identifiers" in notes and "identifiers covered by the US bulk data rule" in notes
        # also in the evidence drawn by the script
        ev = r.page.locator("#findings-list .tag.cat").first
        assert ev.get_attribute("title") and ev.inner_text() != ev.get_attribute("title")
        r.page.locator("#summary").screenshot(path=str(tmp_path / "who-can-reach-what.png"))
        r.assert_quiet()
    finally:
        r.close()


def test_app_view_and_where_did_the_email_go(browser: Browser, example_audit: dict[str, Any], tmp_path: Path) -> None:
    doc = example_audit
    dests = doc["destinations"]
    r = Report(browser, _write(doc, tmp_path / "report.html"))
    try:
        apps = {d["app"] for d in dests if d["ip_scope"] not in LOCAL_SCOPES}
        rows = r.page.get_by_test_id("app-row")
        assert {x.get_attribute("data-app") for x in rows.all()} == apps
        weather = r.page.locator("[data-testid=app-row][data-app=WeatherApp]")
        text = weather.inner_text()
        for d in dests:
            if d["app"] == "WeatherApp" and d["data_types"]:
                assert d["host"] in text.replace("\n", "")
        assert "e-mail address" in text
        r.page.locator("#apps").screenshot(path=str(tmp_path / "apps.png"))

        # where did the e-mail address go: each destination, its owner, the states, the encoding
        emails = [f for f in doc["findings"] if f["data_type"] == "email"]
        assert emails
        r.page.locator("a.jump", has_text="e-mail address").click()
        assert r.page.evaluate("location.hash") == "#data-type-email"
        view = r.page.locator("[data-testid=data-type-view][data-type=email]")
        assert view.is_visible()
        got = {x.get_attribute("data-host") for x in view.get_by_test_id("data-type-row").all()}
        assert got == {f["host"] for f in emails}
        text = view.inner_text()
        for f in emails:
            d = next(d for d in dests if d["host"] == f["host"] and d["app"] == f["app"])
            assert _owner_cell(d) in text
            for x in d["reach"]:
                assert x["jurisdiction"] in text
            assert " › ".join(f["encoding"]) in text.replace("\u200b", "")
        assert "sha256(lower(email))" in text and "DE (server location)" in text
        view.screenshot(path=str(tmp_path / "where-did-the-email-go.png"))
        r.assert_quiet()
    finally:
        r.close()


def test_timeline_and_local_traffic_apart(browser: Browser, example_audit: dict[str, Any], tmp_path: Path) -> None:
    doc = example_audit
    dests = doc["destinations"]
    r = Report(browser, _write(doc, tmp_path / "report.html"))
    try:
        rows = r.page.get_by_test_id("timeline-row")
        assert rows.count() == sum(1 for d in dests if d["first_seen"])
        order = [int(x.get_attribute("data-index") or -1) for x in rows.all()]
        assert order == sorted(order, key=lambda i: (dests[i]["first_seen"], i))  # first contact first
        for x in rows.all():
            i = int(x.get_attribute("data-index") or -1)
            first, last = x.get_attribute("data-first") or "", x.get_attribute("data-last") or ""
            assert "." not in first and "." not in last  # no fractions of a second
            assert first == dests[i]["first_seen"].replace("T", " ").split(".")[0] + "Z"
            assert last == dests[i]["last_seen"].replace("T", " ").split(".")[0] + "Z"
        assert r.page.get_by_test_id("timeline").is_visible()
        r.page.locator("#timeline").screenshot(path=str(tmp_path / "timeline.png"))
        # no microseconds anywhere on the page
        assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", r.page.inner_text("body"))

        # local and private addresses: apart, and not in the destinations table
        private = [i for i, d in enumerate(dests) if d["ip_scope"] in LOCAL_SCOPES]
        assert private and all(dests[i]["host"] == "192.168.1.1" for i in private)
        got = [int(x.get_attribute("data-index") or -1) for x in r.page.get_by_test_id("private-row").all()]
        assert got == private
        assert not set(r.rows()) & set(private)
        assert "192.168.1.1" not in r.page.get_by_test_id("destinations-table").inner_text()
        r.page.locator("#local").screenshot(path=str(tmp_path / "local.png"))
        r.assert_quiet()
    finally:
        r.close()


def test_official_sources_are_links(browser: Browser, example_audit: dict[str, Any], tmp_path: Path) -> None:
    doc = example_audit
    r = Report(browser, _write(doc, tmp_path / "report.html"))
    try:
        links = r.page.locator("#laws a.source")
        named = {law["id"] for d in doc["destinations"] for x in d["reach"] for law in x["laws"]}
        assert named and r.page.get_by_test_id("law").count() == len(named)
        assert links.count() == sum(len(doc["laws"][k]["sources"]) for k in named)
        for a in links.all():
            assert a.get_attribute("rel") == "noopener noreferrer" and a.get_attribute("target") == "_blank"
            assert re.match(r"https?://", a.get_attribute("href") or "")
        r.page.locator("#laws").screenshot(path=str(tmp_path / "laws.png"))
        r.assert_quiet()
        # clickable: a click opens the source in a new tab, without opener or referrer (the test
        # routes block the request itself)
        first = links.first
        href = first.get_attribute("href")
        seen: list[Any] = []
        r.context.on("request", lambda q: seen.append(q))
        with r.context.expect_page() as opened:
            first.click()
        tab = opened.value
        tab.wait_for_timeout(300)
        assert [q.url for q in seen][:1] == [href]
        assert "referer" not in {k.lower() for k in seen[0].headers}
        assert tab.evaluate("window.opener") is None
    finally:
        r.close()


def test_destinations_export_to_csv(browser: Browser, example_audit: dict[str, Any], tmp_path: Path) -> None:
    import csv
    import io

    doc = example_audit
    dests = doc["destinations"]
    r = Report(browser, _write(doc, tmp_path / "report.html"))
    try:
        def download() -> list[dict[str, str]]:
            with r.page.expect_download() as got:
                r.page.get_by_test_id("destinations-csv").click()
            dl = got.value
            assert dl.suggested_filename == "destinations.csv"
            path = tmp_path / f"export-{len(list(tmp_path.glob('export-*')))}.csv"
            dl.save_as(path)
            return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))

        rows = download()
        public = [d for d in dests if d["ip_scope"] not in LOCAL_SCOPES]
        assert [x["host"] for x in rows] == [d["host"] for d in public]
        for x, d in zip(rows, public, strict=True):
            assert int(x["bytes_out"]) == d["bytes_out"] and x["app"] == (d["app"] or "")
            assert x["personal_data"].split() == d["data_types"]
            assert x["ultimate_parent"] == (_up(d) if d["owner"] else "")
        # the export follows the filters
        r.page.get_by_test_id("filter-personal").check()
        assert sorted(x["host"] for x in download()) == sorted(d["host"] for d in public if d["data_types"])
        r.assert_quiet()
    finally:
        r.close()


def test_readable_at_768_pixels(browser: Browser, example_policy_audit: dict[str, Any], tmp_path: Path) -> None:
    doc = example_policy_audit
    path = _write(doc, tmp_path / "report.html")
    r = Report(browser, path)
    try:
        r.page.set_viewport_size({"width": 768, "height": 1024})
        r.page.wait_for_timeout(100)
        width = r.page.evaluate("document.documentElement.clientWidth")
        assert r.page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
        # no element of the destinations table (or any table) reaches past the viewport
        wide = r.page.evaluate("""(w) => [...document.querySelectorAll('table, table *')]
            .filter(e => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().right > w + 0.5)
            .map(e => e.tagName + '.' + e.className)""", width)
        assert wide == []
        # every cell of the key columns is on screen with its name
        for key in ("Host", "Personal data", "Sent", "Policy"):
            cells = r.page.locator(f"#destinations-table td[data-label='{key}']")
            assert cells.count() == len(r.rows())
            for c in cells.all():
                box = c.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, key
        # names do not break mid-word: each app name is on one line, host names wrap at dots only
        lines = r.page.evaluate("""() => [...document.querySelectorAll('#destinations-table td.app')].map(td => {
            const range = document.createRange(); range.selectNodeContents(td);
            return new Set([...range.getClientRects()].map(x => Math.round(x.top))).size; })""")
        assert lines and set(lines) == {1}
        assert r.page.locator("#destinations-table td.host wbr").count() > 0
        r.page.screenshot(path=str(tmp_path / "report-768.png"), full_page=True)
        r.page.get_by_test_id("destinations-table").screenshot(path=str(tmp_path / "destinations-768.png"))
        r.assert_quiet()
    finally:
        r.close()


def test_owner_unknown_hosted_by_in_the_browser(browser: Browser, example_audit: dict[str, Any], tmp_path: Path) -> None:
    """Owner is not host: a destination known only by its host is "owner unknown, hosted by ..."
    in the rendered table, and its details name the host with its evidence."""
    doc = example_audit
    unknown = [i for i, d in enumerate(doc["destinations"]) if d["owner"] is None and d["hosting"]
               and d["ip_scope"] not in LOCAL_SCOPES]
    assert unknown
    r = Report(browser, _write(doc, tmp_path / "hosted.html"))
    try:
        table = r.page.get_by_test_id("destinations-table").inner_text()
        assert "owner unknown, hosted by Amazon Web Services, Inc. (US; network)" in table
        row = r.page.locator(f"[data-testid=destination-row][data-index='{unknown[0]}']")
        row.click()
        details = r.page.get_by_test_id("destination-details").first.inner_text()
        assert "Hosted by (not the owner)" in details and "Amazon Web Services, Inc." in details
        assert re.search(r"(platform|as|cname): ", details)
        r.assert_quiet()
    finally:
        r.close()
