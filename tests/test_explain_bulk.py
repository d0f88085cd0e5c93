"""``explain`` on long lists (issue 16): the bulk path gives, byte for byte, what the one-host path
gives (templates, the suffix walk, batched address look-ups, a bounded memo), and a start imports
only what it needs. No test here times anything: they bound the work and the imports."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from datareach import explainer
from datareach.enrich.ownership import OwnershipResolver
from datareach.kb import knowledge_base, psl
from datareach.kb.walk import NameWalk
from datareach.report.terminal import inert_json

ROOT = Path(__file__).resolve().parent.parent
DATE = "2026-12-07"


def _hard_hosts(n: int, seed: int = 16) -> list[str]:
    spec = importlib.util.spec_from_file_location("explain_hosts", ROOT / "benchmarks" / "explain_hosts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    hosts: list[str] = module.kb_hard_hosts(n, seed)
    return hosts


@pytest.fixture(scope="module")
def hard_hosts() -> list[str]:
    kb = knowledge_base()
    hosts = _hard_hosts(3000)
    # the same names again (repeats), two tenants of one platform, a tenant whose customer name
    # is a knowledge-base domain under that platform, and a few kinds of hostile text
    extra = ["d1abc.cloudfront.net", "d2xyz.cloudfront.net", "x.api.ring.com.cdn.cloudflare.net",
             "y.api.ring.com.cdn.cloudflare.net", "a\u202eb.example", "\x1b[31mred.example", "e\u0301.com",
             "1.2.3", "01.2.3.4", "8.8.8.8.", "[2a03:2880::1]:443"]
    extra += [f"t{i}.{d}" for i, d in enumerate(sorted(kb.domains)[:50])]
    return hosts + extra + hosts[:500]


def _reference(hosts: list[str]) -> list[bytes]:
    resolver = OwnershipResolver(knowledge_base())
    return [orjson.dumps(d) for d in explainer.explain_iter(hosts, resolver, DATE)]


@pytest.mark.parametrize("memo_max", [16, 20_000])
def test_bulk_entries_are_the_one_host_entries(hard_hosts: list[str], memo_max: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # small batches so that the suffix walk and the address batches are used; a tiny memo so that
    # templates are dropped and made again
    monkeypatch.setattr(explainer, "BATCH", 256)
    monkeypatch.setattr(explainer, "MEMO_MAX", memo_max)
    resolver = OwnershipResolver(knowledge_base())
    got = list(explainer.explain_json_lines(hard_hosts, resolver, DATE))
    want = _reference(hard_hosts)
    assert len(got) == len(want)
    bad = [(g, w) for g, w in zip(got, want, strict=True) if g != w]
    assert not bad, bad[0]


def test_bulk_inert_entries(hard_hosts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explainer, "BATCH", 256)
    resolver = OwnershipResolver(knowledge_base())
    batches = list(explainer.explain_json_batches(hard_hosts, resolver, DATE, inert=True))
    assert all(len(b) <= 256 for b in batches)
    got = [line for b in batches for line in b]
    assert got == [inert_json(x) for x in _reference(hard_hosts)]
    assert any(b"\\u202e" in line for line in got)


def test_platform_tenants_keep_their_own_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explainer, "BATCH", 4)
    hosts = ["d1abc.cloudfront.net", "d2xyz.cloudfront.net", "d3pqr.cloudfront.net", "d4stu.cloudfront.net",
             "x.api.ring.com.cdn.cloudflare.net", "y.api.ring.com.cdn.cloudflare.net"]
    docs = [orjson.loads(x) for x in explainer.explain_json_lines(hosts, OwnershipResolver(knowledge_base()), DATE)]
    for host, doc in zip(hosts, docs, strict=True):
        assert doc["host"] == host
        assert all(h["evidence"][0] == host for h in doc["hosting"] if h["basis"] == "platform")
        assert all(r["path"][0].startswith(host + " ") for r in doc["reach"] if r["basis"] == "host")
    assert docs[5]["owner"]["evidence"] == [hosts[5], "y.api.ring.com"]


def test_the_walk_answers_as_the_four_look_ups(hard_hosts: list[str]) -> None:
    kb = knowledge_base()
    walk = NameWalk(kb)
    names = {explainer.host_of(h) for h in hard_hosts}
    for rule in sorted(psl.suffix_rules())[:: 7]:
        base = rule.removeprefix("!").removeprefix("*.")
        names |= {base, f"x.{base}", f"a.x.{base}"}
    for d in sorted(kb.platforms)[:: 5] + sorted(kb.service_domains):
        names |= {d, f"x.{d}", f"a.x.{d}"}
    checked = 0
    for name in sorted(names):
        if not name or not explainer._FAST_NAME(name) or name.replace(".", "").isdigit() or name.endswith("."):
            continue
        eid, matched, plat, service, rd = walk.look(name)
        owner = kb.owner_of_name(name)
        assert (eid, matched) == (owner if owner else (None, None)), name
        p = kb.platform_of(name)
        assert plat == (p[0] if p else None), name
        assert service == kb.service_of_name(name), name
        assert rd == psl.registrable_domain(name), name
        checked += 1
    assert checked > 5000


def test_walk_kept_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kb = knowledge_base()
    first = NameWalk.of(kb)
    again = NameWalk.of(kb)
    for name in ("a.b.cloudfront.net", "api16-normal-c-useast1a.tiktokv.com", "x.co.uk", "foo.unknown-tld"):
        assert first.look(name) == again.look(name) == NameWalk(kb).look(name)


def test_registrable_domain_of_many_is_registrable_domain() -> None:
    names: list[str] = []
    for rule in sorted(psl.suffix_rules()):
        base = rule.removeprefix("!").removeprefix("*.")
        names += [base, f"x.{base}", f"a.x.{base}", f"-.x.{base}", "x" * 64 + f".{base}"]
    names += ["Example.COM", "a..b", "1.2.3.4", "x.arpa", "x.123", "bücher.de", "[::1]", "x.co.uk:443", ""]
    want = [psl.registrable_domain(n) for n in names]
    assert [psl.registrable_domain_of_many(n) for n in names] == want  # (the walk is built on the way)
    assert psl._tails is not None


def _modules(argv: list[str], stdin: bytes = b"") -> set[str]:
    code = ("import sys\nfrom datareach.cli import main\ncode = main(sys.argv[1:])\nsys.stdout.flush()\n"
            "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", code, *argv], input=stdin, capture_output=True, env=env,
                          check=True, timeout=120)
    return set(proc.stderr.decode().rsplit("MODULES ", 1)[1].split())


def _top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_help_imports_little() -> None:
    top = _top(_modules(["--help"]))
    assert not top & {"pyarrow", "duckdb", "numpy", "rich", "orjson"}


def test_explain_one_host_imports_no_arrow_or_engine() -> None:
    modules = _modules(["explain", "api16-normal-c-useast1a.tiktokv.com"])
    assert not _top(modules) & {"pyarrow", "duckdb", "numpy"}
    assert "datareach.kb.load" in modules  # (the compiled knowledge base: no TOML read)
    assert "datareach.report.table" in modules


def test_explain_names_only_list_imports_no_arrow() -> None:
    names = "\n".join(f"h{i}.example.com" for i in range(100)).encode()
    modules = _modules(["explain", "-", "--format", "jsonl"], stdin=names)
    assert not _top(modules) & {"pyarrow", "duckdb", "numpy", "rich"}


def test_explain_cli_jsonl_and_json_agree(tmp_path: Path) -> None:
    hosts = _hard_hosts(600, seed=3)
    data = ("\n".join(hosts) + "\n").encode()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out: dict[str, Any] = {}
    for fmt in ("jsonl", "json"):
        proc = subprocess.run([sys.executable, "-m", "datareach", "explain", "-", "--format", fmt, "--at", DATE],
                              input=data, capture_output=True, env=env, check=True, timeout=300)
        out[fmt] = proc.stdout
    lines = out["jsonl"].splitlines()
    assert lines == [inert_json(x) for x in _reference([h.split("#", 1)[0] for h in hosts])]
    doc = orjson.loads(out["json"])
    assert [orjson.dumps(h) for h in doc["hosts"]] == [orjson.dumps(orjson.loads(x)) for x in lines]
    assert doc["laws"]


def test_ip_of_writes_addresses_as_ipaddress_does() -> None:
    import ipaddress
    import random

    rng = random.Random(5)
    cases = ["::", "::1", "1::", "fe80::1%eth0", "::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:7::", "1::2::3",
             ":::", "12345::", "g::1", "01:2::", "00001::", "1:2:3:4:5:6:7:8:9", "0:0:0:0:0:0:0:0", "8.8.8.8",
             "08.8.8.8", "256.1.1.1", "1.2.3"]
    for _ in range(3000):
        groups = [rng.choice([0, 0, 0, 1, 0xFFFF, rng.randrange(65536)]) for _ in range(8)]
        a = ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))
        cases += [str(a), a.exploded, a.exploded.upper(), ":".join(f"{g:x}" for g in groups)]

    def reference(text: str) -> str | None:
        try:
            return str(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            return None

    assert [explainer.ip_of(c) for c in cases] == [reference(c) for c in cases]
    v4 = [".".join(str(rng.choice([0, 1, 9, 10, 99, 100, 255, 256, rng.randrange(300)])) for _ in range(4))
          for _ in range(2000)] + ["01.2.3.4", "1.2.3.04", "0.0.0.0"]
    assert [v if explainer._canonical_v4(v) else None for v in v4 if explainer._canonical_v4(v)] == \
        [reference(v) for v in v4 if explainer._canonical_v4(v)]
