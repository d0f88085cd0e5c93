"""The same harnesses under libFuzzer (atheris): coverage-guided, one child process per harness.

``python -m fuzz run --engine atheris`` runs :func:`run_atheris` for each harness: a child
process (``python -m fuzz.atheris_engine``) imports datareach with atheris's coverage
instrumentation, writes the harness's seeds into a corpus directory, and hands libFuzzer a test
function that runs each input through :func:`fuzz.engine.run_case` -- the same clean-rejection
rule, memory and time bounds, and reproducers as the built-in engine. Findings never stop the
run (the test function does not raise), libFuzzer's own timeout is off (ours is used), and
its RSS limit stays as a last guard. libFuzzer ends the process without running Python's exit
handlers, so the child writes its findings to a JSON file as it goes and the parent reads the
number of runs from libFuzzer's last line.

Needs ``pip install atheris`` (wheels for CPython 3.11 on x86-64 Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fuzz.engine import SAVE_PER_FINDING, Finding, Tally, run_case, save

_SKIP_MODULES = ("datareach.testing", "datareach.mitm.", "datareach.__main__", "datareach.sources.mitm_bridge")


def _libfuzzer_dict(tokens: tuple[bytes, ...]) -> str:
    lines = []
    for t in tokens:
        escaped = "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}" for b in t)
        lines.append(f'"{escaped}"')
    return "\n".join(lines) + "\n"


def run_atheris(name: str, *, seconds: float | None, cases: int | None, seed: int, crashes: Path) -> Tally | None:
    """Run one harness under libFuzzer in a child process and gather what it found."""
    from fuzz.harnesses import all_harnesses

    h = all_harnesses()[name]
    why = h.unavailable()
    if why is not None:
        print(f"{name}: skipped: {why}", file=sys.stderr)
        return None
    work = Path(tempfile.mkdtemp(prefix=f"datareach-atheris-{name}-"))
    stats = work / "stats.json"
    log = work / "libfuzzer.log"
    cmd = [sys.executable, "-m", "fuzz.atheris_engine", name, "--stats", str(stats), "--crashes", str(crashes),
           "--work", str(work), "--seed", str(seed)]
    if seconds is not None:
        cmd += ["--seconds", str(int(max(seconds, 1)))]
    else:
        cmd += ["--cases", str(cases or 1000)]
    print(f"{time.strftime('%H:%M:%S')} {name} (atheris): {h.doc}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DATAREACH_FUZZ_SCRATCH": str(work / "scratch")}
    with open(log, "wb") as out:
        subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=root, env=env, check=False)
    elapsed = time.perf_counter() - t0
    tally = Tally(name, seconds=elapsed)
    text = log.read_text("utf-8", "replace")
    done = re.findall(r"Done (\d+) runs in", text)
    if os.path.exists(stats):
        doc: dict[str, Any] = json.loads(stats.read_text())
        tally.cases = int(done[-1]) if done else int(doc["cases"])
        tally.max_peak = int(doc["max_peak"])
        tally.slowest = float(doc["slowest"])
        tally.corpus = len(list((work / "corpus").iterdir()))
        for item in doc["findings"]:
            f = Finding(name, item["kind"], item["key"], item["summary"], "", b"")
            tally.findings[f.key] = [f, item["count"]]
        tally.saved = [Path(p) for p in doc["saved"]]
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"{name}: the libFuzzer child wrote no statistics; its log: {log}", file=sys.stderr)
    return tally


def _atheris() -> Any:
    return importlib.import_module("atheris")


def _import_instrumented() -> None:
    with _atheris().instrument_imports(include=["datareach"]):
        import datareach

        for mod in pkgutil.walk_packages(datareach.__path__, "datareach."):
            if mod.name.startswith(_SKIP_MODULES):
                continue
            with contextlib.suppress(ImportError):
                __import__(mod.name)


def _child(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("harness")
    p.add_argument("--stats", required=True)
    p.add_argument("--crashes", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds", type=int)
    p.add_argument("--cases", type=int)
    args = p.parse_args(argv)
    _import_instrumented()
    atheris = _atheris()

    from fuzz.harnesses import all_harnesses

    h = all_harnesses()[args.harness]
    work = Path(args.work)
    corpus = work / "corpus"
    corpus.mkdir(exist_ok=True)
    for i, s in enumerate(h.seeds()):
        (corpus / f"seed-{i}").write_bytes(s[:h.max_len])
    dict_file = work / "tokens.dict"
    dict_file.write_text(_libfuzzer_dict(h.dictionary))
    crashes = Path(args.crashes)
    tally = Tally(h.name)
    state = {"last": time.monotonic(), "target": args.cases or 0}

    def flush() -> None:
        doc = {"cases": tally.cases, "max_peak": tally.max_peak, "slowest": tally.slowest,
               "saved": [str(p) for p in tally.saved],
               "findings": [{"kind": f.kind, "key": k, "summary": f.summary, "count": n}
                            for k, (f, n) in tally.findings.items()]}
        tmp = args.stats + ".tmp"
        with open(tmp, "w") as out:
            json.dump(doc, out)
        os.replace(tmp, args.stats)
        state["last"] = time.monotonic()

    def one(data: bytes) -> None:
        out = run_case(h, data)
        tally.cases += 1
        tally.max_peak = max(tally.max_peak, out.peak)
        tally.slowest = max(tally.slowest, out.seconds)
        if out.finding is not None:
            seen = tally.add(out.finding)
            if seen <= SAVE_PER_FINDING:
                tally.saved.append(save(out.finding, crashes))
            print(f"  [{h.name}] {out.finding.kind}: {out.finding.summary}", flush=True)
            flush()
        elif time.monotonic() - state["last"] > 1.0 or tally.cases == state["target"]:
            flush()

    flush()
    limits = [f"-max_total_time={args.seconds}"] if args.seconds else [f"-runs={args.cases}"]
    atheris.Setup([sys.argv[0], str(corpus), *limits, f"-seed={args.seed + 1}", f"-max_len={h.max_len}",
                   f"-dict={dict_file}", "-timeout=0", "-rss_limit_mb=4096", "-print_final_stats=1",
                   f"-artifact_prefix={work}/"], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
