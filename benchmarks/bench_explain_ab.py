"""``datareach explain`` on N hosts and its start: this tree against another tree, alternating.

    git worktree add /tmp/base <commit>
    .venv/bin/python benchmarks/bench_explain_ab.py --base /tmp/base/src [--hosts 200000] [--pairs 5]
    .venv/bin/python benchmarks/bench_explain_ab.py            # this tree alone

The host list is :mod:`explain_hosts`'s hard mix (seed 16: names under knowledge-base and
dataset domains, deep names, platform tenants, unknown random names, IPv4 and IPv6 addresses,
URLs and oddities; most names distinct), piped to ``datareach explain - --format jsonl`` in a
fresh process. Each pair runs the trees one after the other after a warm-up run each (their
compiled caches kept apart, and their modules byte-compiled on the way, as an install has them,
into a directory beside the cache: PYTHONPYCACHEPREFIX). Then the start: ``datareach --help`` and ``datareach explain HOST``,
warm, in fresh processes, alternating the same way. Prints medians and ranges (never the best
run) of wall time and of CPU time (user + sys of the process), hosts per second by each, and
the peak resident memory; ``--check`` also compares the two trees' outputs byte for byte.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent


def run(src: str, cache: str, argv: list[str], data: bytes | None,
        out: str | None = None) -> tuple[float, float, int]:
    """Wall time, CPU time (user + sys) and peak RSS (KiB) of one ``datareach`` process."""
    env = _env(src, cache)
    sink = open(out, "wb") if out else subprocess.DEVNULL  # noqa: SIM115
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "datareach", *argv],
                            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                            stdout=sink, env=env)
    if data is not None:
        assert proc.stdin is not None
        proc.stdin.write(data)
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if out:
        sink.close()  # type: ignore[union-attr]
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"datareach {' '.join(argv[:2])} failed in {src} (exit {code})")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def _env(src: str, cache: str) -> dict[str, str]:
    """The environment of a run: the tree, its cache directory, and its modules byte-compiled
    (as an install has them) into a directory beside the cache, never into the tree."""
    env = {**os.environ, "PYTHONPATH": src, "DATAREACH_CACHE_DIR": cache,
           "PYTHONPYCACHEPREFIX": cache + "-pycache"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def summary(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    v = [x * scale for x in values]
    return f"median {statistics.median(v):.3f} {unit} ({min(v):.3f}-{max(v):.3f})"


def hosts_data(n: int, src: str, cache: str) -> bytes:
    """The hard host list, made by the knowledge base of ``src`` (the same for both trees)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from explain_hosts import kb_hard_hosts; "
            "sys.stdout.write('\\n'.join(kb_hard_hosts(int(sys.argv[2]))) + '\\n')")
    env = _env(src, cache)
    return subprocess.run([sys.executable, "-c", code, str(ROOT / "benchmarks"), str(n)], env=env,
                          check=True, stdout=subprocess.PIPE).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", help="the other tree's src directory (e.g. /work/main/src)")
    ap.add_argument("--hosts", type=int, default=200_000)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--starts", type=int, default=7, help="fresh processes per tree for the start times")
    ap.add_argument("--host", default="api16-normal-c-useast1a.tiktokv.com", help="the host of `explain HOST`")
    ap.add_argument("--check", action="store_true", help="compare the trees' outputs byte for byte")
    args = ap.parse_args()
    trees = {"this tree": str(ROOT / "src")}
    if args.base:
        trees = {"base": args.base, **trees}
    with tempfile.TemporaryDirectory() as tmp:
        caches = {k: str(Path(tmp) / f"cache-{i}") for i, k in enumerate(trees)}
        data = hosts_data(args.hosts, trees["this tree"], caches["this tree"])
        argv = ["explain", "-", "--format", "jsonl"]
        outs = {k: str(Path(tmp) / f"out-{i}.jsonl") if args.check else None for i, k in enumerate(trees)}
        for k, src in trees.items():
            run(src, caches[k], argv, data, outs[k])  # warm-up: compiles and caches the knowledge base
        if args.check and args.base:
            # (streamed: a process forked from a large one would report its peak memory)
            with open(outs["base"] or "", "rb") as fa, open(outs["this tree"] or "", "rb") as fb:
                total = differ = 0
                for x, y in itertools.zip_longest(fa, fb):
                    total += 1
                    differ += x != y
            print(f"outputs: {'identical' if not differ else f'{differ:,} of {total:,} lines differ'}")
        wall: dict[str, list[float]] = {k: [] for k in trees}
        cpu: dict[str, list[float]] = {k: [] for k in trees}
        rss: dict[str, list[int]] = {k: [] for k in trees}
        for _ in range(args.pairs):
            for k, src in trees.items():
                w, c, m = run(src, caches[k], argv, data)
                wall[k].append(w)
                cpu[k].append(c)
                rss[k].append(m)
        starts: dict[tuple[str, str], list[float]] = {}
        start_cpu: dict[tuple[str, str], list[float]] = {}
        commands = {"--help": ["--help"], "explain HOST": ["explain", args.host]}
        for k, src in trees.items():
            for argv2 in commands.values():
                run(src, caches[k], argv2, None)  # warm
        for _ in range(args.starts):
            for k, src in trees.items():
                for name, argv2 in commands.items():
                    w, c, _ = run(src, caches[k], argv2, None)
                    starts.setdefault((k, name), []).append(w)
                    start_cpu.setdefault((k, name), []).append(c)
    print(f"explain on {args.hosts:,} hosts (the hard mix), --format jsonl, {args.pairs} alternating pairs:")
    for k in trees:
        print(f"  {k:10s} wall {summary(wall[k])}: {args.hosts / statistics.median(wall[k]):,.0f} hosts/s; "
              f"CPU {summary(cpu[k])}: {args.hosts / statistics.median(cpu[k]):,.0f} hosts/s; "
              f"peak memory {max(rss[k]) / 1024:.0f} MiB")
    print(f"start, warm, {args.starts} fresh processes each (wall, then CPU):")
    for k in trees:
        print(f"  {k:10s} " + "; ".join(f"{name}: {summary(starts[(k, name)], 'ms', 1000)}, "
                                       f"CPU {summary(start_cpu[(k, name)], 'ms', 1000)}" for name in commands))


if __name__ == "__main__":
    main()
