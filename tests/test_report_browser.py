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
        assert dests[target]["owner"]["name"] in text

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
