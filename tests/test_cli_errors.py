"""Wrong invocations of the real command line: each gives a short message naming the file and
the place, and the exit status of its kind (2 configuration or usage, 4 an input error, 1 an
internal error) -- never a traceback, never a long wait (issue 18).

The table runs :func:`datareach.cli.main` in this process with standard error captured; each
case builds its files in the test's directory. The bounds are on work (the output is checked
before any input is read), never on time.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from datareach.cli import main
from datareach.testing.counting import Calls

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mobile-app-session.pcapng"
RULE = '[[rule]]\nid="{n}"\naction="warn"\ntitle="t"\n'


def policy(path: Path, *, extends: list[str] | None = None, rules: int = 1) -> Path:
    """A valid policy file (one rule unless told) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = f"extends = [{', '.join(repr(e) for e in extends)}]\n" if extends else ""
    body = "".join(RULE.format(n=f"r{i}") for i in range(rules))
    path.write_text(f'[policy]\nid = "p"\nname = "n"\n{ext}\n{body}', encoding="utf-8")
    return path


def chain(tmp: Path, n: int) -> Path:
    for i in range(n):
        policy(tmp / "chain" / f"p{i}.toml", extends=[f"p{i + 1}.toml"] if i + 1 < n else [])
    return tmp / "chain" / "p0.toml"


def text(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@dataclass
class Case:
    id: str
    argv: Callable[[Path], list[str]]
    status: int
    says: tuple[str, ...]  # each in standard error


def deep_policy(tmp: Path) -> Path:
    return text(tmp / "deep.toml", "[policy]\nid = 'p'\nname = 'n'\nsummary = " + "[" * 100_000 + "]" * 100_000 + "\n")


def bigint_policy(tmp: Path) -> Path:
    return text(tmp / "bigint.toml", "[policy]\nid = 'p'\nname = 'n'\nas_of = " + "9" * 4_301 + "\n")


CASES = [
    # 1. tracebacks seen
    Case("extends-chain-1200", lambda t: ["policy", "check", str(chain(t, 1200))], 2,
         ("p32.toml", "[policy] `extends`", "more than 32 levels of `extends`")),
    Case("policy-nested-100000", lambda t: ["audit", str(EXAMPLE), "--policy", str(deep_policy(t))], 2,
         ("deep.toml", "line 4", "nested more than 32 levels deep")),
    Case("policy-integer-4301-digits", lambda t: ["policy", "check", str(bigint_policy(t))], 2,
         ("bigint.toml", "line 4", "more than 100 digits")),
    Case("profile-nested-100000",
         lambda t: ["audit", str(EXAMPLE), "--profile",
                    str(text(t / "p.toml", "email = " + "[" * 100_000 + "]" * 100_000))], 2,
         ("p.toml", "line 1", "nested more than 32 levels deep")),
    Case("profile-integer-5000-digits",
         lambda t: ["audit", str(EXAMPLE), "--profile", str(text(t / "p.toml", "imei = " + "7" * 5000))], 2,
         ("p.toml", "line 1", "more than 100 digits")),
    Case("extends-name-5000-chars",
         lambda t: ["policy", "check", str(policy(t / "long.toml", extends=["a" * 5000]))], 2,
         ("long.toml", "[policy] `extends`", "(5,000 characters)", "File name too long")),
    Case("profile-is-a-capture", lambda t: ["audit", str(EXAMPLE), "--profile", str(EXAMPLE)], 2,
         ("mobile-app-session.pcapng", "not a text file", "TOML")),
    Case("output-in-missing-directory", lambda t: ["audit", str(EXAMPLE), "-o", str(t / "nonexistent" / "x.json")], 2,
         ("nonexistent/x.json", "does not exist")),
    Case("output-is-a-directory", lambda t: ["audit", str(EXAMPLE), "-o", str(t)], 2, ("is a directory",)),
    Case("diff-output-is-a-directory",
         lambda t: ["diff", str(EXAMPLE), str(EXAMPLE), "-o", str(t)], 2, ("is a directory",)),
    Case("explain-output-in-missing-directory",
         lambda t: ["explain", "example.com", "-o", str(t / "nonexistent" / "x.json")], 2, ("does not exist",)),
    Case("profile-init-in-missing-directory",
         lambda t: ["profile", "init", str(t / "nonexistent" / "dir" / "p.toml")], 2,
         ("nonexistent/dir/p.toml", "does not exist")),
    # 2. blow-ups
    Case("rules-20000",
         lambda t: ["policy", "check", str(policy(t / "many.toml", rules=20_000))], 2,
         ("many.toml", "20,000 [[rule]] tables", "at most 10,000")),
    Case("profile-200000-custom-values",
         lambda t: ["audit", str(EXAMPLE), "--profile",
                    str(text(t / "p.toml", "[custom]\n" + "".join(f'k{i} = "v-{i:08d}"\n' for i in range(200_000))))], 2,
         ("p.toml", "limited to 1 MiB")),
    Case("profile-1001-values",
         lambda t: ["audit", str(EXAMPLE), "--profile",
                    str(text(t / "p.toml", "[custom]\n" + "".join(f'k{i} = "v-{i:08d}"\n' for i in range(1001))))], 2,
         ("p.toml", "more than 1,000 values")),
    Case("extends-a-2GB-file",
         lambda t: ["policy", "check", str(policy(t / "a.toml", extends=[sparse(t / "big.toml", 2 << 30).name]))], 2,
         ("a.toml", "'big.toml'", "2,147,483,648 bytes", "limited to 1 MiB")),
    Case("profile-value-5MB",
         lambda t: ["audit", str(EXAMPLE), "--profile", str(text(t / "p.toml", 'email = "' + "a" * 5_000_000 + '"'))], 2,
         ("p.toml", "limited to 1 MiB")),
    Case("profile-value-5000-chars",
         lambda t: ["audit", str(EXAMPLE), "--profile", str(text(t / "p.toml", 'name = "' + "a" * 5000 + '"'))], 2,
         ("p.toml", "name is 5,000 characters long", "4,096")),
    # 4. extends confinement
    Case("extends-proc-self-environ",
         lambda t: ["policy", "check", str(policy(t / "a.toml", extends=["/proc/self/environ"]))], 2,
         ("a.toml", "'/proc/self/environ'", "outside the directories", "--policy-path")),
    Case("extends-etc-passwd",
         lambda t: ["policy", "check", str(policy(t / "a" / "b" / "c.toml", extends=["../" * 40 + "etc/passwd"]))], 2,
         ("c.toml", "outside the directories", "--policy-path /etc")),
    Case("extends-cycle",
         lambda t: ["audit", str(EXAMPLE), "--policy", str(policy(t / "self.toml", extends=["self.toml"]))], 2,
         ("self.toml", "makes a cycle")),
    Case("policy-path-not-a-directory",
         lambda t: ["policy", "check", "us-padfa", "--policy-path", str(t / "nope")], 2,
         ("--policy-path", "is not a directory")),
    # 6. inputs that are not regular files
    Case("input-dev-zero", lambda t: ["audit", "/dev/zero"], 2, ("/dev/zero", "not a regular file", "character device")),
    Case("input-fifo", lambda t: ["audit", str(fifo(t / "pipe"))], 2, ("pipe", "FIFO")),
    Case("input-directory", lambda t: ["audit", str(t)], 2, ("holds no capture, HAR or flow file",)),
    Case("input-empty", lambda t: ["audit", str(text(t / "empty.pcap", ""))], 2,
         ("empty.pcap", "the file is empty", "give a capture")),
    Case("input-gzip-cut",  # (a gzip-compressed capture is read; this one holds a capture cut short)
         lambda t: ["audit", str(t / "c.pcapng.gz")], 4, ("c.pcapng.gz", "file ends inside a block")),
    Case("input-zip",  # (zip archives are not read: they may hold many files)
         lambda t: ["audit", str(t / "c.zip")], 2, ("c.zip", "unrecognised input format", "zip-compressed")),
    Case("policy-is-a-directory", lambda t: ["audit", str(EXAMPLE), "--policy", str(t)], 2, ("is a directory",)),
    Case("profile-is-dev-zero", lambda t: ["audit", str(EXAMPLE), "--profile", "/dev/zero"], 2,
         ("/dev/zero", "character device")),
    Case("diff-of-a-fifo", lambda t: ["diff", str(fifo(t / "old")), str(EXAMPLE)], 2, ("old", "FIFO")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_wrong_invocations(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           count_calls: Callable[..., Calls[object]]) -> None:
    if case.id == "input-gzip-cut":
        import gzip

        (tmp_path / "c.pcapng.gz").write_bytes(gzip.compress(EXAMPLE.read_bytes()[:4096]))
    if case.id == "input-zip":
        import zipfile

        with zipfile.ZipFile(tmp_path / "c.zip", "w") as z:
            z.writestr("c.pcapng", EXAMPLE.read_bytes())
    if "dev-zero" in case.id and not (Path("/dev/zero").exists() and stat.S_ISCHR(os.stat("/dev/zero").st_mode)):
        pytest.skip("no /dev/zero")
    argv = case.argv(tmp_path)
    capsys.readouterr()
    import datareach.api

    audits = count_calls(datareach.api, "audit")
    assert main(argv) == case.status
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert 1 <= len(lines) <= 2, err  # the message (and a verdict or input line)
    assert all(len(line) < 1500 for line in lines), "one readable line, not the whole input"
    for fragment in case.says:
        assert fragment in err, (fragment, err)
    if case.status == 2:  # a usage error is found before any input is read
        assert audits.count == 0
        assert err.startswith("datareach: error: ")


def test_output_is_checked_before_any_input_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    count_calls: Callable[..., Calls[object]]) -> None:
    import datareach.api
    import datareach.assess
    from datareach.detect import profile as profile_module

    audits = count_calls(datareach.api, "audit")
    profiles = count_calls(profile_module, "load_profile")
    policies = count_calls(datareach.assess, "load_policy")
    for bad in (tmp_path / "missing" / "r.json", tmp_path):
        assert main(["audit", str(EXAMPLE), "--profile", str(EXAMPLE), "--policy", "us-padfa", "-o", str(bad)]) == 2
    assert (audits.count, profiles.count, policies.count) == (0, 0, 0)
    assert capsys.readouterr().err.count("datareach: error: ") == 2
    # a writable place is fine; nothing is created when the audit is refused for another reason
    out = tmp_path / "r.json"
    assert main(["audit", str(tmp_path), "-o", str(out)]) == 2
    assert not out.exists()


def test_echoed_names_are_made_printable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = tmp_path / "evil\x1b[31mred\nsecond.pcap"
    assert main(["audit", str(name)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and err.count("\n") == 1 and "input not found" in err


def test_profile_warnings_are_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = text(tmp_path / "p.toml", 'imei = "490154203237519"\nemail = ["tester@example.org", "not-an-address"]\n')
    assert main(["audit", str(EXAMPLE), "--profile", str(profile), "--no-detect", "-o", str(tmp_path / "r")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("datareach: warning: ")]
    assert len(warnings) == 2
    assert "p.toml: imei" in warnings[0] and "Luhn" in warnings[0] and "490154203237519" not in warnings[0]
    assert "p.toml: email[1]" in warnings[1] and "not an e-mail address" in warnings[1]


# -- the last-resort handler ------------------------------------------------------------------


def _explode(*_args: object) -> int:
    raise RuntimeError("boom\nsecond line \x1b[2J")


def test_an_unexpected_exception_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import datareach.cli

    monkeypatch.delenv("DATAREACH_DEBUG", raising=False)
    monkeypatch.setattr(datareach.cli, "_policy", _explode)
    assert main(["policy", "list"]) == 1
    err = capsys.readouterr().err
    assert err == ("datareach: internal error: RuntimeError: boom (run with --debug for the traceback; "
                   "please report)\n")


@pytest.mark.parametrize("how", ["--debug first", "--debug after", "env"])
def test_debug_shows_the_traceback(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import datareach.cli

    monkeypatch.delenv("DATAREACH_DEBUG", raising=False)
    monkeypatch.setattr(datareach.cli, "_policy", _explode)
    argv = {"--debug first": ["--debug", "policy", "list"], "--debug after": ["policy", "list", "--debug"],
            "env": ["policy", "list"]}[how]
    if how == "env":
        monkeypatch.setenv("DATAREACH_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(argv)


def test_interrupt_is_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import datareach.cli

    def interrupted(*_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.delenv("DATAREACH_DEBUG", raising=False)
    monkeypatch.setattr(datareach.cli, "_policy", interrupted)
    assert main(["policy", "list"]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_the_real_process_never_shows_a_traceback(tmp_path: Path) -> None:
    """The console entry point, end to end, on two of the cases."""
    import subprocess
    import sys

    for argv, status in ((["audit", str(EXAMPLE), "-o", str(tmp_path / "no" / "x.json")], 2),
                         (["policy", "check", str(deep_policy(tmp_path))], 2)):
        proc = subprocess.run([sys.executable, "-m", "datareach", *argv], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == status and "Traceback" not in proc.stderr
        assert len(proc.stderr.splitlines()) == 1


# -- the wrong invocations, in the real process ----------------------------------------

def _wrong(tmp: Path) -> list[tuple[list[str], tuple[str, ...]]]:
    """(argv, what standard error says) for each wrong invocation: each is exit 2 and one line."""
    (tmp / "adir").mkdir()
    text(tmp / "adir" / "readme.txt", "not a capture\n")
    (tmp / "polic").mkdir()
    import gzip

    (tmp / "notes.txt.gz").write_bytes(gzip.compress(b"just text\n" * 100))
    ex = str(EXAMPLE)
    return [
        (["audit", str(tmp / "missing.pcap")], ("input not found", "missing.pcap")),
        (["audit", str(tmp / "adir")], ("adir holds no capture, HAR or flow file",)),
        (["audit", str(text(tmp / "empty.pcapng", ""))], ("empty.pcapng: the file is empty", "give a capture")),
        (["audit", str(text(tmp / "notes.txt", "hello\n"))],
         ("notes.txt: unrecognised input format", "not pcap, pcapng, HAR or a mitmproxy flow file",
          "gzip-, bzip2-, xz- or zstd-compressed")),
        (["audit", str(tmp / "notes.txt.gz")], ("it is gzip-compressed, and what it holds is not",)),
        (["audit", ex, "--policy", "us-doj-bulk-dta"], ("did you mean us-doj-bulk-data?",)),
        (["policy", "check", "eu-gdpr"], ("did you mean eu-gdpr-transfers?",)),
        (["audit", ex, "--policy", str(tmp / "polic")], ("polic: is a directory, not a policy file", ".toml")),
        (["audit", ex, "-o", str(tmp / "nowhere" / "r.json")], ("cannot write", "does not exist")),
        (["audit", str(tmp / "missing.pcap"), "-o", str(tmp / "adir")], ("adir is a directory",)),
        (["audit", ex, "--profile", str(text(tmp / "p.toml", "email = [\n"))], ("p.toml", "TOML")),
    ]


def test_wrong_invocations_in_the_real_process(tmp_path: Path) -> None:
    """Each wrong invocation: exit 2, one line on standard error saying what is wrong (and the
    output is checked before the inputs: an unwritable -o is reported even when the input is
    missing too)."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    for argv, says in _wrong(tmp_path):
        proc = subprocess.run([sys.executable, "-m", "datareach", *argv], capture_output=True, text=True,
                              timeout=120, check=False, env=env)
        assert proc.returncode == 2, (argv, proc.returncode, proc.stderr)
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("datareach: error: "), proc.stderr
        for fragment in says:
            assert fragment in proc.stderr, (argv, fragment, proc.stderr)
        assert proc.stdout == ""


def test_a_readable_but_corrupt_input_stays_an_input_error(tmp_path: Path) -> None:
    """A capture that is recognised and read but cut short is exit 4 (an input error), not 2."""
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(EXAMPLE.read_bytes()[:4096])
    assert main(["audit", str(cut), "-o", str(tmp_path / "r.json")]) == 4
