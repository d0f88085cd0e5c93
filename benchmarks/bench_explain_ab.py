"""``datareach explain`` on N hosts: this tree against another tree (an earlier commit), alternating.

    git worktree add /tmp/base <commit>
    .venv/bin/python benchmarks/bench_explain_ab.py --base /tmp/base/src [--hosts 100000] [--pairs 5]

The same host list as ``bench_kb.py`` (80% names under knowledge-base domains, 20% unknown; seed
7), piped to ``datareach explain - --format jsonl`` in a fresh process, the two trees one after the
other in each pair after a warm-up run each (their compiled knowledge bases cached apart). Prints
the median, range and peak resident memory of each; medians of ``--pairs`` pairs, never the best.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kb import make_hosts

ROOT = Path(__file__).resolve().parent.parent


def run(src: str, cache: str, hosts: bytes) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one ``explain`` process."""
    env = {**os.environ, "PYTHONPATH": src, "DATAREACH_CACHE_DIR": cache}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "datareach", "explain", "-", "--format", "jsonl"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None
    proc.stdin.write(hosts)
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"explain failed in {src} (exit {proc.returncode})")
    return elapsed, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the other tree's src directory")
    ap.add_argument("--hosts", type=int, default=100_000)
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    hosts = "\n".join(make_hosts(args.hosts)).encode() + b"\n"
    trees = {"base": args.base, "this tree": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        caches = {k: str(Path(tmp) / f"cache-{i}") for i, k in enumerate(trees)}
        for k, src in trees.items():
            run(src, caches[k], hosts)  # warm-up: compiles and caches the knowledge base
        times: dict[str, list[float]] = {k: [] for k in trees}
        rss: dict[str, list[int]] = {k: [] for k in trees}
        for _ in range(args.pairs):
            for k, src in trees.items():
                t, m = run(src, caches[k], hosts)
                times[k].append(t)
                rss[k].append(m)
    print(f"explain on {args.hosts:,} hosts, --format jsonl, {args.pairs} alternating pairs:")
    for k in trees:
        med = statistics.median(times[k])
        print(f"  {k:10s} median {med:.3f} s ({min(times[k]):.3f}-{max(times[k]):.3f}), "
              f"{args.hosts / med:,.0f} hosts/s, peak memory {max(rss[k]) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
