"""Installing and using datareach from a shell: configuration files (datareach.toml), shell
completion (a real bash sourcing the script), and the mitmproxy addon finding datareach's Python
from a shell where datareach's virtualenv is not activated (a real subprocess, a real mitmdump)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datareach.cli import main

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src"
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"
DATA = Path(__file__).parent / "data" / "mitm"
sys.path.insert(0, str(DATA))
import harness  # noqa: E402


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout (``.git``) with a subdirectory as the current directory; no user config."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("DATAREACH_CONFIG_HOME", raising=False)
    return repo


# -- configuration ---------------------------------------------------------------------------


def test_config_defaults_and_command_line_wins(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datareach.cli import build_parser
    from datareach.config import apply_to_audit

    (project / "datareach.toml").write_text('format = "json"\npolicies = ["us-padfa", "gate.toml"]\n'
                                            'geo_db = "geo/a.mmdb"\nprofile = "p.toml"\n')
    parser = build_parser()
    args = apply_to_audit(parser, ["audit", "x.pcap"])
    assert args.format == ["json"]
    assert args.policy == ["us-padfa", str(project / "gate.toml")]
    assert args.geo_db == [str(project / "geo" / "a.mmdb")]
    assert args.profile == str(project / "p.toml")
    args = apply_to_audit(build_parser(), ["audit", "x.pcap", "--format", "table", "--policy", "eu-gdpr-transfers",
                                           "--profile", "q.toml"])
    assert (args.format, args.policy, args.profile) == (["table"], ["eu-gdpr-transfers"], "q.toml")
    assert args.geo_db == [str(project / "geo" / "a.mmdb")]


def test_config_user_then_project(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user = tmp_path / "xdg" / "datareach" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('format = "md"\nprofile = "/abs/profile.toml"\n')
    (project / "datareach.toml").write_text('format = "html"\n')
    assert main(["config", "show", "--json"]) == 0
    capsys.readouterr()
    assert main(["config", "show", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["values"]["format"] == {"value": "html", "source": str(project / "datareach.toml")}
    assert shown["values"]["profile"] == {"value": "/abs/profile.toml", "source": str(user)}
    assert shown["values"]["geo_db"] == {"value": None, "source": "default"}
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "format       = html" in out and str(user) in out


def test_config_stops_at_the_checkout_root(project: Path, tmp_path: Path) -> None:
    from datareach.config import project_file

    (tmp_path / "datareach.toml").write_text('format = "json"\n')  # above the checkout: never read
    assert project_file() is None
    (project / "datareach.toml").write_text('format = "json"\n')
    assert project_file() == project / "datareach.toml"
    outside = tmp_path / "plain" / "deeper"
    outside.mkdir(parents=True)
    (tmp_path / "plain" / "datareach.toml").write_text("")
    assert project_file(outside) is None  # no checkout: the current directory only


@pytest.mark.parametrize(("text", "message"), [
    ("format = [", "not valid TOML"),
    ('colour = "red"\n', "unknown key 'colour'"),
    ("format = 3\n", "format must be a non-empty string"),
    ('format = "pdf"\n', "is not a report format"),
    ("policies = [1]\n", "policies must be a non-empty string"),
    ("policies = [" + ", ".join(['"a"'] * 65) + "]\n", "at most 64"),
    ("# " + "x" * (70 << 10) + "\n", "larger than 64 KiB"),
    (b"format = '\xff'\n", "not UTF-8"),
])
def test_bad_config_is_one_line_exit_2(project: Path, capsys: pytest.CaptureFixture[str], text: str | bytes,
                                       message: str) -> None:
    path = project / "datareach.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    assert main(["audit", str(EXAMPLE)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(path) in err, err
    assert main(["config", "show"]) == 2
    assert message in capsys.readouterr().err


def test_configured_format_used_by_audit(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "datareach.toml").write_text('format = "json"\n')
    assert main(["audit", str(EXAMPLE), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"]


# -- shell completion ------------------------------------------------------------------------


def _complete(script: Path, line: str) -> list[str]:
    """What bash completes for ``line`` (a trailing space: a new word), with the sourced script."""
    prog = (f'source {script}\nread -ra COMP_WORDS <<< "$LINE"\n[[ "$LINE" == *" " ]] && COMP_WORDS+=("")\n'
            'COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\nCOMP_LINE="$LINE"\nCOMPREPLY=()\n'
            '_datareach datareach "${COMP_WORDS[COMP_CWORD]}"\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
            'complete -p datareach >&2\n')
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True, text=True,
                       env={**os.environ, "LINE": line}, check=True, cwd=script.parent)
    assert "-F _datareach datareach" in r.stderr
    return [w for w in r.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion(tmp_path: Path) -> None:
    script = tmp_path / "datareach.bash"
    r = subprocess.run([sys.executable, "-m", "datareach", "completion", "bash"], capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(SRC)}, check=True)
    script.write_bytes(r.stdout)
    (tmp_path / "capture.pcapng").write_bytes(b"")
    assert _complete(script, "datareach au") == ["audit"]
    assert {"audit", "explain", "proxy", "config", "completion", "kb"} <= set(_complete(script, "datareach "))
    assert _complete(script, "datareach policy ") == ["list", "show", "check"]
    assert _complete(script, "datareach kb im") == ["import"]
    assert "--format" in _complete(script, "datareach audit --f")
    assert {"table", "json", "md", "html", "sarif", "junit", "csv"} <= set(_complete(script, "datareach audit --format "))
    assert _complete(script, "datareach completion ") == ["bash", "zsh", "fish"]
    assert _complete(script, "datareach audit --profile p.toml capt") == ["capture.pcapng"]
    assert _complete(script, "datareach --debug config s") == ["show"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_parse(tmp_path: Path, shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    text = capsys.readouterr().out
    assert "audit" in text and "--format" in text
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} to parse the script")
    (tmp_path / "script").write_text(text)
    subprocess.run([shell, "-n", str(tmp_path / "script")], check=True)


# -- the addon finds datareach from a shell without the virtualenv -----------------------------

MITM_PYTHON = harness.mitmproxy_python()
needs_mitmproxy = pytest.mark.skipif(MITM_PYTHON is None, reason="mitmproxy not installed (make mitmproxy)")


def _bare_shell(tmp_path: Path) -> dict[str, str]:
    """A shell as a new terminal has it: no VIRTUAL_ENV, no PYTHONPATH, PATH without any venv;
    ``python`` on PATH is datareach's (a wrapper that finds datareach through PYTHONPATH, as an
    installed datareach would without it) and ``mitmdump`` is the user's own, as pipx installs it."""
    assert MITM_PYTHON is not None
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={SRC} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    mitmdump = Path(MITM_PYTHON).parent / "mitmdump"
    (bindir / "mitmdump").symlink_to(mitmdump)
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "DATAREACH_PYTHON") and "proxy" not in k.lower()}
    env["PATH"] = os.pathsep.join([str(bindir), "/usr/local/bin", "/usr/bin", "/bin"])
    env["DATAREACH_CACHE_DIR"] = str(tmp_path / "cache")
    env["HOME"] = str(tmp_path / "home")
    return env


@needs_mitmproxy
def test_addon_path_names_datareach_python(tmp_path: Path) -> None:
    env = _bare_shell(tmp_path)
    probe = ('import importlib.util as u, sys; s = u.spec_from_file_location("launcher", sys.argv[1]); '
             'm = u.module_from_spec(s); s.loader.exec_module(m); a = m._addon; '
             'print(a.default_datareach_python()); print(a.worker_env().get("PYTHONPATH", ""))')
    r = subprocess.run(["bash", "-c", f'{MITM_PYTHON} -c \'{probe}\' "$(python -m datareach.mitm --path)"'],
                       capture_output=True, text=True, env=env, check=True)
    python, pythonpath = r.stdout.splitlines()
    assert python == os.path.abspath(sys.executable)
    assert pythonpath.split(os.pathsep)[0] == str(SRC)
    # the same launcher from `datareach proxy --addon-path`
    r2 = subprocess.run(["bash", "-c", "python -m datareach proxy --addon-path"], capture_output=True, text=True,
                        env=env, check=True)
    r3 = subprocess.run(["bash", "-c", "python -m datareach.mitm --path"], capture_output=True, text=True,
                        env=env, check=True)
    assert r2.stdout == r3.stdout and r2.stdout.startswith(str(tmp_path / "cache"))


@needs_mitmproxy
def test_readme_addon_command_from_a_bare_shell(tmp_path: Path) -> None:
    """The README's command, verbatim, in a shell without the virtualenv: the live analysis runs
    (the worker starts, and writes the JSON report when mitmdump stops)."""
    env = _bare_shell(tmp_path)
    upstream = harness.Upstream(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    port = harness.free_port()
    profile = ROOT / "examples" / "profile.toml"
    (work / "profile.toml").write_bytes(profile.read_bytes())
    readme = ('mitmdump -s "$(python -m datareach.mitm --path)" --set datareach_profile=profile.toml '
              '--set datareach_report=out')
    assert readme in (ROOT / "README.md").read_text()
    cmd = f"exec {readme} --listen-host 127.0.0.1 --listen-port {port} --set confdir={work / 'conf'}"
    log = (work / "mitmdump.log").open("wb")
    proc = subprocess.Popen(["bash", "-c", cmd], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not harness._listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, (work / "mitmdump.log").read_text()
            time.sleep(0.1)
        status, _ = harness.curl(f"http://127.0.0.1:{port}", work / "conf" / "mitmproxy-ca-cert.pem",
                                 f"http://127.0.0.1:{upstream.http_port}/a?aid=a3e3fce2-78b0-4105-ada0-748f79470c71")
        assert status == 200
    finally:
        proc.send_signal(2)
        try:
            proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
            upstream.close()
    text = (work / "mitmdump.log").read_text(errors="replace")
    assert "not found" not in text, text
    report = json.loads((work / "out.json").read_text())
    assert report["inputs"], text
