"""Hostile policy and profile files, and inputs that are not regular files, through the library
(issue 18): every one is refused with a message naming the file and the place, or loaded with
bounded work -- counted (files read, parser calls, Python calls, bytes read), never timed.
The command line's side of the same cases is in tests/test_cli_errors.py.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import datareach
import datareach.files
from datareach.assess import PolicyError, load_policy
from datareach.assess import policy as policy_module
from datareach.detect.profile import MAX_VALUE_CHARS, MAX_VALUES, TEMPLATE, ProfileError, load_profile, redact
from datareach.files import CONFIG_MAX_BYTES, ConfigFileError, read_config, toml_problem
from datareach.sources import SNIFF_BYTES, detect_format, read_input
from datareach.testing.counting import Calls

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"
EXAMPLE_PROFILE = ROOT / "examples" / "profile.toml"
Counter = Callable[..., Calls[Any]]


def policy(path: Path, *, extends: list[str] | None = None, rules: int = 1, more: str = "",
           prefix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = f"extends = [{', '.join(repr(e) for e in extends)}]\n" if extends else ""
    body = "".join(f'[[rule]]\nid="{prefix or path.stem}-{i}"\naction="warn"\ntitle="t"\n' for i in range(rules))
    path.write_text(f'[policy]\nid = "p"\nname = "n"\n{ext}\n{body}{more}', encoding="utf-8")
    return path


def python_calls(fn: Callable[[], object]) -> int:
    """How many Python function calls (and generator resumptions) ``fn()`` makes: a measure of
    work that does not depend on the machine."""
    count = 0

    def profiler(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profiler)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


# -- extends ----------------------------------------------------------------------------------


def test_a_diamond_of_extends_reads_each_file_once(tmp_path: Path, count_calls: Counter) -> None:
    """26 policies each extending the next one twice: 2**26 loads before; now 27 files read
    once each, each rule inherited once."""
    for i in range(27):
        nxt = [f"d{i + 1}.toml", f"./d{i + 1}.toml", f"sub/../d{i + 1}.toml"] if i < 26 else []
        policy(tmp_path / f"d{i}.toml", extends=nxt)
    (tmp_path / "sub").mkdir()
    reads = count_calls(policy_module._Loader, "_read")
    p = load_policy(tmp_path / "d0.toml")
    assert reads.count == 27
    assert sorted(r.id for r in p.rules) == sorted(f"d{i}-0" for i in range(27))


def test_two_parents_sharing_a_grandparent_inherit_its_rules_once(tmp_path: Path) -> None:
    policy(tmp_path / "base.toml")
    policy(tmp_path / "b.toml", extends=["base.toml"])
    policy(tmp_path / "c.toml", extends=["base.toml", "us-padfa"])
    top = load_policy(policy(tmp_path / "top.toml", extends=["b.toml", "c.toml", "us-padfa"]))
    ids = [r.id for r in top.rules]
    assert len(ids) == len(set(ids))
    assert {"base-0", "b-0", "c-0", "top-0", "foreign-adversary-controlled"} <= set(ids)


def test_extends_depth_is_bounded_and_named(tmp_path: Path, count_calls: Counter) -> None:
    for i in range(1200):
        policy(tmp_path / f"p{i}.toml", extends=[f"p{i + 1}.toml"] if i < 1199 else [])
    reads = count_calls(policy_module._Loader, "_read")
    with pytest.raises(PolicyError) as exc:
        load_policy(tmp_path / "p0.toml")
    assert reads.count == policy_module.MAX_EXTENDS_DEPTH + 1
    message = str(exc.value)
    assert message.startswith(f"{tmp_path / 'p32.toml'}: [policy] `extends`: 'p33.toml': more than 32 levels")
    # 32 levels are fine
    assert len(load_policy(tmp_path / "p1167.toml").rules) == 33


def test_a_cycle_shows_the_chain(tmp_path: Path) -> None:
    policy(tmp_path / "a.toml", extends=["b.toml"])
    policy(tmp_path / "b.toml", extends=["c.toml"])
    policy(tmp_path / "c.toml", extends=["./a.toml"])
    with pytest.raises(PolicyError, match=r"c\.toml: \[policy\] `extends`: './a\.toml' makes a cycle "
                                          r"\(.*a\.toml -> b\.toml -> c\.toml -> \./a\.toml\)"):
        load_policy(tmp_path / "a.toml")


@pytest.mark.parametrize("name", ["/proc/self/environ", "../outside.toml", "../" * 40 + "etc/passwd", "link.toml"])
def test_extends_stays_in_the_policy_directory(tmp_path: Path, name: str) -> None:
    policy(tmp_path / "outside.toml")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "link.toml").symlink_to(tmp_path / "outside.toml")
    top = policy(tmp_path / "policies" / "top.toml", extends=[name])
    with pytest.raises(PolicyError) as exc:
        load_policy(top)
    message = str(exc.value)
    assert message.startswith(f"{top}: [policy] `extends`: '{name[:40]}")
    assert "outside the directories policies may extend files from" in message
    assert "--policy-path" in message and "DATAREACH_POLICY_PATH" in message


def test_what_extends_may_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAREACH_POLICY_PATH", raising=False)
    shared = policy(tmp_path / "shared" / "base.toml")
    policy(tmp_path / "team" / "sub" / "local.toml")
    top = policy(tmp_path / "team" / "top.toml", extends=["sub/local.toml", "../shared/base.toml"])
    with pytest.raises(PolicyError, match="--policy-path " + re.escape(str(tmp_path / "shared"))):
        load_policy(top)
    # allowed by --policy-path, or by the environment
    assert len(load_policy(top, policy_path=[tmp_path / "shared"]).rules) == 3
    monkeypatch.setenv("DATAREACH_POLICY_PATH", os.pathsep.join(["/nonexistent", str(tmp_path / "shared")]))
    assert len(load_policy(top).rules) == 3
    monkeypatch.delenv("DATAREACH_POLICY_PATH")
    # the policy asked for may be anywhere; an absolute name inside an allowed directory is fine
    assert load_policy(shared).id == "p"
    inside = policy(tmp_path / "team" / "abs.toml", extends=[str(tmp_path / "team" / "sub" / "local.toml")])
    assert len(load_policy(inside).rules) == 2
    # a subdirectory's policy may not climb back up to its parent's directory unless allowed
    up = policy(tmp_path / "team" / "sub" / "up.toml", extends=["../top.toml"])
    with pytest.raises(PolicyError, match="outside the directories"):
        load_policy(up)


@pytest.mark.parametrize(("toml", "says"), [
    ('"' + "a" * 5000 + '"', "File name too long"),
    ('"nul\\u0000byte"', "embedded null byte"),
    ('""', "must be a list of non-empty strings"),
    ('"../" ', "outside the directories"),
])
def test_extends_names_that_are_no_file_names(tmp_path: Path, toml: str, says: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f'[policy]\nid = "p"\nname = "n"\nextends = [{toml}]\n[[rule]]\nid="r"\naction="warn"\ntitle="t"\n')
    with pytest.raises(PolicyError) as exc:
        load_policy(path)
    message = str(exc.value)
    assert message.startswith(str(path)) and says in message and len(message) < 1000


def test_an_extended_file_of_2_gib_is_refused_on_its_size(tmp_path: Path, count_calls: Counter) -> None:
    with open(tmp_path / "big.toml", "wb") as f:
        f.truncate(2 << 30)
    parse = count_calls(datareach.files, "parse_toml")
    with pytest.raises(PolicyError, match=r"'big\.toml': the file is 2,147,483,648 bytes; policy files are limited "
                                          r"to 1 MiB"):
        load_policy(policy(tmp_path / "a.toml", extends=["big.toml"]))
    assert parse.count == 1  # the extending file only


def test_a_file_that_says_it_is_empty_is_read_no_further_than_the_limit(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Files in /proc report a size of 0: the read itself is bounded."""
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * (CONFIG_MAX_BYTES + 10))
    real_fstat = os.fstat

    def fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 0,
                               int(st.st_atime), int(st.st_mtime), int(st.st_ctime)))

    monkeypatch.setattr(os, "fstat", fstat)
    with pytest.raises(ConfigFileError, match="larger than 1 MiB"):
        read_config(big, str(big), "policy")
    assert len(read_config(EXAMPLE_PROFILE, "p")) == EXAMPLE_PROFILE.stat().st_size


# -- TOML bounds ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "problem"), [
    ("x = " + "[" * 100_000 + "]" * 100_000, "line 1: nested more than 32 levels deep"),
    ("x = " + "{a = " * 40 + "1" + "}" * 40, "nested more than 32 levels deep"),
    ("a" + ".b" * 100_000 + " = 1", "a dotted key of too many parts"),
    ("[" + "a." * 40 + "b]", "a dotted key of too many parts"),
    ("\n\nx = " + "9" * 4301, "line 3: a number of more than 100 digits"),
    ("x = 1" + "_000" * 40, "more than 100 digits"),
])
def test_costly_toml_is_refused_before_parsing(tmp_path: Path, text: str, problem: str, count_calls: Counter) -> None:
    loads = count_calls(tomllib, "loads")
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=problem):
        load_policy(path)
    with pytest.raises(ProfileError, match=problem):
        load_profile(path)
    assert loads.count == 0


@pytest.mark.parametrize("text", [
    'x = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["',
    "x = '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['",
    'x = """\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"""[[[[[[[[[[[[[[[["""""',
    "x = '''\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['''''\ny = 1",
    "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nx = 1",
    'x = "' + "9" * 5000 + '"',
    "x = [" + ", ".join(["1.5"] * 100) + "]",
    "x = 1979-05-27T07:32:00.999999Z",
    TEMPLATE,
])
def test_the_scan_skips_strings_and_comments(text: str) -> None:
    tomllib.loads(text)  # valid TOML
    assert toml_problem(text) is None


def test_the_parser_is_guarded_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the scan miss something, the parser's RecursionError and ValueError still become
    a message naming the file."""
    monkeypatch.setattr(datareach.files, "toml_problem", lambda text: None)
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000)
    big = tmp_path / "big.toml"
    big.write_text("x = " + "9" * 5000)
    with pytest.raises(PolicyError, match=f"{re.escape(str(deep))}: not a valid TOML file: nested too deeply"):
        load_policy(deep)
    with pytest.raises(ProfileError, match=f"{re.escape(str(big))}: not a valid TOML file: Exceeds the limit"):
        load_profile(big)


@pytest.mark.parametrize("what", ["directory", "fifo", "device", "binary"])
def test_config_files_that_are_not_text_files(tmp_path: Path, what: str) -> None:
    if what == "directory":
        path, says = tmp_path, "is a directory, not a"
    elif what == "fifo":
        path, says = tmp_path / "pipe", "is a FIFO (named pipe), not a"
        os.mkfifo(path)
    elif what == "device":
        path, says = Path("/dev/zero"), "is a character device, not a"
        if not path.exists():
            pytest.skip("no /dev/zero")
    else:
        path, says = EXAMPLE, "not a text file (byte 4 is not UTF-8)"
    with pytest.raises(PolicyError, match=f"^{re.escape(str(path))}: {re.escape(says)}"):
        load_policy(path)
    with pytest.raises(ProfileError, match=f"^{re.escape(str(path))}: {re.escape(says)}"):
        load_profile(path)


# -- rules ------------------------------------------------------------------------------------


def test_loading_rules_is_linear(tmp_path: Path) -> None:
    """The check that a rule id is new compared each rule with every earlier one (20,000 rules:
    84 s). The work for twice the rules is now about twice the work, overrides included."""
    def work(n: int) -> int:
        overrides = "".join(f'[[override]]\nrule="p{n}-{i}"\naction="{"off" if i % 4 else "deny"}"\n'
                            for i in range(0, n, 2))
        path = policy(tmp_path / f"p{n}.toml", rules=n, more=overrides)
        return python_calls(lambda: load_policy(path))

    small, large = work(1000), work(2000)
    assert large < 2.3 * small, (small, large)


def test_rule_limits(tmp_path: Path) -> None:
    n = policy_module.MAX_TABLES
    assert len(load_policy(policy(tmp_path / "ok.toml", rules=n)).rules) == n
    with pytest.raises(PolicyError, match=r"many\.toml: 10,001 \[\[rule\]\] tables; a policy file may have at most 10,000"):
        load_policy(policy(tmp_path / "many.toml", rules=n + 1))
    # with what it extends
    for name in ("a", "b", "c"):
        policy(tmp_path / f"{name}.toml", rules=7000, prefix=name)
    with pytest.raises(PolicyError, match=r"top\.toml: \[policy\]: `extends`: more than 20,000 rules"):
        load_policy(policy(tmp_path / "top.toml", extends=["a.toml", "b.toml", "c.toml"]))


def test_overrides_and_duplicates_keep_their_meaning(tmp_path: Path) -> None:
    policy(tmp_path / "x.toml", prefix="same")
    policy(tmp_path / "y.toml", prefix="same")  # another file with a rule of the same id
    top = policy(tmp_path / "top.toml", extends=["x.toml", "y.toml"], more=(
        '[[override]]\nrule = "same-0"\naction = "off"\n'
        '[[override]]\nrule = "same-0"\naction = "deny"\n'))
    [rule, own] = load_policy(top).rules
    assert (rule.id, rule.action, own.id) == ("same-0", "deny", "top-0")
    with pytest.raises(PolicyError, match=r"no rule 'nope' to override \(rules: r-0, r-1, .*, … \(10 more\)\)"):
        load_policy(policy(tmp_path / "o.toml", rules=30, prefix="r",
                           more='[[override]]\nrule = "nope"\naction = "off"\n'))


# -- profiles ---------------------------------------------------------------------------------


def test_profiles_take_lists_and_stay_compatible(tmp_path: Path) -> None:
    for path in (EXAMPLE_PROFILE,):
        p = load_profile(path)
        assert p.warnings == () and p.more == ()
    template = tmp_path / "t.toml"
    template.write_text(TEMPLATE)
    with pytest.raises(ProfileError, match="advertising_id is still the placeholder REPLACE-ME"):
        load_profile(template)  # (refused until edited)
    template.write_text(TEMPLATE.replace('latitude = "REPLACE-ME"', "latitude = 1.5").replace(
        'advertising_id = "REPLACE-ME"', 'advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"'))
    with pytest.raises(ProfileError, match="android_id is still the placeholder"):
        load_profile(template)
    edited = "\n".join(line for line in TEMPLATE.splitlines() if "REPLACE-ME" not in line or line.startswith("#"))
    template.write_text(edited + '\nemail = "a@example.org"\n')
    assert load_profile(template).warnings == ()
    path = tmp_path / "p.toml"
    path.write_text('email = ["a@example.org", "b@example.org"]\nimei = 490154203237518\n'
                    '[custom]\ntoken = ["t-1234567", "t-7654321"]\n')
    p = load_profile(path)
    assert p.values == {"email": "a@example.org", "imei": "490154203237518"}
    assert p.custom == {"token": "t-1234567"}
    assert p.items() == [("email", "a@example.org"), ("imei", "490154203237518"), ("token", "t-1234567"),
                         ("email", "b@example.org"), ("token", "t-7654321")]


@pytest.mark.parametrize(("line", "key", "value", "says"), [
    ('imei = "490154203237519"', "imei", "490154203237519", "fails the IMEI check digit (Luhn): a typo?"),
    ('imei = "12345"', "imei", "12345", "is not an IMEI (15 digits)"),
    ('email = "tester.example.org"', "email", "tester.example.org", "is not an e-mail address"),
    ('email = ["ok@example.org", "a@b"]', "email[1]", "a@b", "is not an e-mail address"),
    ('advertising_id = "not-a-uuid"', "advertising_id", "not-a-uuid", "is not an advertising ID"),
    ('android_id = "xyz"', "android_id", "xyz", "is not an Android ID"),
    ('mac = "3c:5a:b4:01:02"', "mac", "3c:5a:b4:01:02", "is not a MAC address"),
    ('ip = "300.1.1.1"', "ip", "300.1.1.1", "is not an IP address"),
    ('phone = "call me"', "phone", "call me", "is not a phone number"),
])
def test_doubtful_values_are_kept_with_a_warning(tmp_path: Path, line: str, key: str, value: str, says: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(line + "\n")
    p = load_profile(path)
    [warning] = p.warnings
    assert warning.startswith(f"{path}: {key}: {redact(value)} {says}"), warning
    assert value in dict(p.items()).values() or (key, value) in p.more  # still looked for


@pytest.mark.parametrize(("text", "says"), [
    ("[custom]\n" + "".join(f'k{i} = "value-{i}"\n' for i in range(MAX_VALUES + 1)), "more than 1,000 values"),
    ("email = [" + ", ".join(f'"u{i}@example.org"' for i in range(MAX_VALUES + 1)) + "]", "more than 1,000 values"),
    ('name = "' + "a" * (MAX_VALUE_CHARS + 1) + '"', "name is 4,097 characters long; values are limited to 4,096"),
    ('email = ["a@example.org", "' + "b" * 5000 + '"]', r"email\[1\] is 5,000 characters long"),
    ("[custom]\n" + "n" * 65 + ' = "v"', "a name of 65 characters"),
    ("email = []", "email is an empty list"),
    ("email = [[\"a\"]]", r"email\[0\] must be a non-empty string"),
    ("latitude = [1.0]\nlongitude = 2.0", "latitude must be a number"),
])
def test_profile_limits(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=f"^{re.escape(str(path))}: .*{says}"):
        load_profile(path)


def test_a_big_profile_is_refused_on_its_size(tmp_path: Path, count_calls: Counter) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[custom]\n" + "".join(f'k{i} = "v-{i:08d}"\n' for i in range(200_000)))
    loads = count_calls(tomllib, "loads")
    with pytest.raises(ProfileError, match="profile files are limited to 1 MiB"):
        load_profile(path)
    assert loads.count == 0


# -- inputs that are not regular files ----------------------------------------------------------


def test_format_detection_never_opens_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    for path, says in ((fifo, "FIFO"), (tmp_path, "is a directory")):
        with pytest.raises(OSError, match=says):
            detect_format(path)
        [err] = list(read_input(path, 0))
        assert err.fatal and says in err.message
    if Path("/dev/zero").exists():
        with pytest.raises(OSError, match="character device"):
            detect_format(Path("/dev/zero"))


def test_an_unknown_format_is_judged_on_its_head(tmp_path: Path, count_calls: Counter) -> None:
    from datareach.sources import registry

    path = tmp_path / "notes.txt"
    path.write_bytes(b"just text\n" * 100_000)
    sniff = count_calls(registry, "sniff", keep_args=True)
    assert detect_format(path) is None
    [err] = list(read_input(path, 0))
    assert err.fatal and err.message.startswith("unrecognised input format: not pcap, pcapng, HAR or a mitmproxy")
    assert all(len(args[0]) <= SNIFF_BYTES for args, _ in sniff.args)


@pytest.mark.parametrize(("name", "data", "says"), [
    ("c.pcap.gz", b"\x1f\x8b\x08\x00" + bytes(100), "it is gzip-compressed, and what it holds is not in one of these formats either"),
    ("c.pcap.zst", b"(\xb5/\xfd" + bytes(100), "zstd-compressed"),
    ("c.pcap.xz", b"\xfd7zXZ\x00" + bytes(100), "xz-compressed"),
    ("c.pcap.bz2", b"BZh9" + bytes(100), "bzip2-compressed"),
    ("c.zip", b"PK\x03\x04" + bytes(100), "zip-compressed"),
    ("c.pcap.gz", b"garbage" * 10, "its name says it is compressed"),
])
def test_compressed_inputs_get_a_hint(tmp_path: Path, name: str, data: bytes, says: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    [err] = list(read_input(path, 0))
    assert says in err.message


def test_an_empty_input(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcapng"
    path.write_bytes(b"")
    [err] = list(read_input(path, 0))
    assert err.fatal and err.message == "the file is empty" and err.offset == 0


def test_the_api_reports_such_inputs_and_ends(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    inputs: list[str | os.PathLike[str]] = [tmp_path, fifo]
    if Path("/dev/zero").exists():
        inputs.append("/dev/zero")  # read for ever before
    doc = datareach.audit(inputs, detect=False).to_dict()
    messages = [e["message"] for i in doc["inputs"] for e in i["errors"]]
    assert len(messages) == len(inputs)
    assert "is a directory" in messages[0] and "FIFO" in messages[1]


# -- the API's arguments ----------------------------------------------------------------------


def test_api_arguments(tmp_path: Path) -> None:
    one = datareach.audit(str(EXAMPLE), detect=False).to_dict()  # one path on its own: not its letters
    assert [i["path"] for i in one["inputs"]] == [str(EXAMPLE)]
    with pytest.raises(ValueError, match="engine must be one of auto, local, duckdb, spark"):
        datareach.audit([EXAMPLE], engine="fastest")
    with pytest.raises(TypeError, match="inputs: int is not a file path"):
        datareach.audit([1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="policies: int is not"):
        datareach.audit([EXAMPLE], policies=[3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="profile: dict is not a Profile"):
        datareach.audit([EXAMPLE], profile={"email": "a@b.c"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="geo_db"):
        datareach.audit([EXAMPLE], geo_db=b"x.mmdb")  # type: ignore[arg-type]
    policy(tmp_path / "shared" / "base.toml")
    top = policy(tmp_path / "team" / "top.toml", extends=["../shared/base.toml"])
    with pytest.raises(PolicyError, match="outside"):
        datareach.api.check_policy(top)
    assert datareach.api.check_policy(top, policy_path=[tmp_path / "shared"]).id == "p"
