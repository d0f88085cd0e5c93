"""Make ``docs/report-example.png``: the top of the HTML report of the bundled example.

The report is made by the real pipeline (``examples/mobile-app-session.pcapng`` with
``examples/profile.toml``, judged against the ``us-doj-bulk-data`` preset) and opened in Debian's
chromium (``apt-get install chromium``) with Playwright; the screenshot runs from the top of the
page to the end of the flow diagram. Run from the repository root::

    .venv/bin/python docs/make_screenshot.py [--full] [-o docs/report-example.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import datareach
from datareach.report.html import render_html

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "report-example.png"))
    ap.add_argument("--full", action="store_true", help="the whole page, not only the top")
    ap.add_argument("--width", type=int, default=960)
    args = ap.parse_args(argv)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print("chromium is not installed: apt-get install chromium", file=sys.stderr)
        return 1
    os.chdir(ROOT)  # the report shows input paths as given
    doc = datareach.audit(["examples/mobile-app-session.pcapng"], profile="examples/profile.toml",
                          policies=["us-doj-bulk-data"]).to_dict()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        page_file = Path(tmp) / "report.html"
        page_file.write_text(render_html(doc), encoding="utf-8")
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        page.goto(page_file.as_uri())
        page.wait_for_selector("html[data-ready='1']")
        if args.full:
            page.screenshot(path=args.output, full_page=True)
        else:
            box = page.locator("#flow").bounding_box()
            assert box is not None
            height = int(box["y"] + box["height"] + 10)
            page.set_viewport_size({"width": args.width, "height": height})
            page.screenshot(path=args.output, clip={"x": 0, "y": 0, "width": args.width, "height": height})
        browser.close()
    print(f"{args.output}: {Path(args.output).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
