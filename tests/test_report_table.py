"""The terminal table fits its width: rendered at 80, 100, 140 and 200 columns (rich's console,
and a real terminal under tmux), no host name is broken, no line is wider than the width, the
policy verdict is on the first screen and the destinations that received personal data come
first. On a pipe it is plain text."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import datareach
from datareach.report.table import render_explain, render_table

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"
EXAMPLE_PROFILE = ROOT / "examples" / "profile.toml"
POLICIES = ["us-doj-bulk-data", "eu-gdpr-transfers"]
AUDIT_ARGS = [str(EXAMPLE), "--profile", str(EXAMPLE_PROFILE), *(a for p in POLICIES for a in ("--policy", p))]
ANSI = re.compile(r"\x1b[\[\]]")
VERDICT = "Policy verdict (us-doj-bulk-data, eu-gdpr-transfers): WARN"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return datareach.audit([EXAMPLE], profile=EXAMPLE_PROFILE, policies=POLICIES).to_dict()


def _first_line(lines: list[str], host: str) -> int | None:
    """The first line naming ``host`` whole (not as a part of a longer name)."""
    pat = re.compile(rf"(?<![\w.-]){re.escape(host)}(?![\w.-])")
    return next((i for i, line in enumerate(lines) if pat.search(line)), None)


def check_screen(text: str, doc: dict[str, Any], width: int, height: int = 24) -> None:
    """The properties the report must have at ``width`` columns."""
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    hosts = {d["host"] for d in doc["destinations"]}
    where = {h: _first_line(lines, h) for h in hosts}
    broken = [h for h, i in where.items() if i is None]
    assert not broken, f"host names not whole on a line at {width} columns: {broken}"
    verdict = next(i for i, line in enumerate(lines) if VERDICT in line)
    assert verdict < 3
    with_data = {d["host"] for d in doc["destinations"] if d["data_types"]}
    assert with_data
    assert max(where[h] or 0 for h in with_data) < min(where[h] or 0 for h in hosts - with_data)
    assert min(where[h] or 0 for h in with_data) < height, "no destination with personal data on the first screen"


@pytest.mark.parametrize("width", [80, 100, 140, 200])
def test_table_fits_the_width(doc: dict[str, Any], width: int) -> None:
    text = render_table(doc, width=width)
    assert not ANSI.search(text)
    check_screen(text, doc, width)
    assert "Personal data sent" in text and "Data received" not in text
    assert any(line.startswith("Personal data sent to 3 of 12 destinations") for line in text.splitlines()[:3])
    if width >= 140:  # a table, its columns labelled without ambiguity
        assert "┃ Registrable domain / host" in text and "Bytes" in text and "received" in text
    else:  # each host on a line of its own, its details below
        assert "\n  t.adtrack.example.net\n      Personal data sent  advertising_id, android_id, email" in text


def test_a_host_too_long_for_a_column_gets_a_line_of_its_own(doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(doc)
    long = "a-very-long-label-that-keeps-going." * 3 + "tracker.example.org"
    doc["destinations"][-1]["host"] = long
    doc["destinations"][-1]["registrable_domain"] = "example.org"
    for width in (140, 200):
        lines = render_table(doc, width=width).splitlines()
        assert any(line.strip() == long for line in lines)
        assert all(len(line) <= width for line in lines)
    # narrower than the name itself: the name stays whole (the terminal wraps it), never folded
    assert any(line.strip() == long for line in render_table(doc, width=80).splitlines())


def test_colour_only_for_a_terminal(doc: dict[str, Any]) -> None:
    assert ANSI.search(render_table(doc, color=True, width=100))
    assert not ANSI.search(render_table(doc, color=False, width=100))


def test_width_of_a_pipe(doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert max(map(len, render_table(doc).splitlines())) <= 120
    monkeypatch.setenv("COLUMNS", "90")
    assert max(map(len, render_table(doc).splitlines())) <= 90


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def test_pipe_is_plain_text(doc: dict[str, Any]) -> None:
    for extra in ({}, {"FORCE_COLOR": "1"}):
        proc = subprocess.run([sys.executable, "-m", "datareach", "audit", *AUDIT_ARGS, "--format", "table"],
                              capture_output=True, text=True, env=_env(**extra), check=False)
        assert proc.returncode in (0, 2, 3), proc.stderr
        assert "\x1b" not in proc.stdout
        check_screen(proc.stdout, doc, 120)


def test_explain_fits_the_width() -> None:
    hosts = ["connectivitycheck.gstatic.com", "graph.facebook.com", "firebaseinstallations.googleapis.com",
             "not-in-the-kb.example"]
    for width in (80, 100, 140, 200):
        proc = subprocess.run([sys.executable, "-m", "datareach", "explain", *hosts],
                              capture_output=True, text=True, env=_env(COLUMNS=str(width)), check=True)
        lines = proc.stdout.splitlines()
        assert "\x1b" not in proc.stdout
        assert all(len(line) <= width for line in lines), (width, max(lines, key=len))
        for h in hosts:
            assert _first_line(lines, h) is not None, (width, h)


def test_render_explain_plain_lines_beyond_500() -> None:
    docs = [{"host": f"h{i}.example", "owner": None, "reach": []} for i in range(501)]
    assert render_explain(docs, "2025-01-01").count("\n") == 501


# ------------------------------------------------------------------------------------------
# A real terminal


def _tmux_report(tmp_path: Path, width: int, height: int) -> str:
    """``datareach audit`` run in a tmux pane of ``width`` x ``height``: the pane's whole
    history (the lines as the terminal shows them, wrapped where it wrapped them)."""
    socket = f"datareach-test-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "done"
    cmd = " ".join([
        "env", "-u", "COLUMNS", "-u", "LINES", f"PYTHONPATH={ROOT / 'src'}",
        f"DATAREACH_CACHE_DIR={os.environ.get('DATAREACH_CACHE_DIR', tmp_path)}",
        sys.executable, "-m", "datareach", "audit", *AUDIT_ARGS, "2>/dev/null;", "touch", str(done), ";",
        "sleep", "60",
    ])
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-x", str(width), "-y", str(height), "-s", "t", cmd], check=True)
    try:
        deadline = time.monotonic() + 60
        while not done.exists():
            assert time.monotonic() < deadline, "datareach did not finish in the tmux pane"
            time.sleep(0.2)
        time.sleep(0.3)
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "t", "-S", "-", "-E", "-"],
                              capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (make system-deps installs it)")
@pytest.mark.parametrize(("width", "height"), [(80, 24), (200, 50)])
def test_real_terminal(doc: dict[str, Any], tmp_path: Path, width: int, height: int) -> None:
    text = _tmux_report(tmp_path, width, height)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if VERDICT in line)
    check_screen("\n".join(lines[start:]), doc, width, height)
    if width >= 140:
        assert "┃ Registrable domain / host" in text
    else:
        assert "┃" not in text
