"""Knowledge-base start-up cost and ``datareach explain`` throughput.

    .venv/bin/python benchmarks/bench_kb.py [--hosts 100000] [--repeat 5]

Start-up: each run is a fresh ``python -c`` subprocess with ``DATAREACH_CACHE_DIR`` (and
``DATAREACH_DATA_DIR``) pointed at temporary directories. The *reference* run imports
datareach and exits; the *warm* run also loads the knowledge base from its compiled cache; the
*cold* run starts with an empty cache (it parses and checks every TOML file, compiles and
writes the cache). The figure that matters is the time added to a command's start: run minus
reference (medians).

Throughput: ``datareach explain - --format jsonl`` (and ``--format json``) on N host names
read from standard input, end to end in a subprocess (start-up included), against a reference
script that reads the same lines and writes one JSON object per host with no knowledge base.
Hosts: 80% sub-domains of domains in the knowledge base (random labels in front), 20% names
the knowledge base does not know; deterministic (seed 7).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

_REFERENCE = "import datareach"
_LOAD = "import datareach; from datareach.kb import knowledge_base; knowledge_base()"
_REFERENCE_PIPE = """
import sys, orjson
out = sys.stdout.buffer
for line in sys.stdin:
    h = line.strip().lower()
    if h:
        out.write(orjson.dumps({"host": h, "owner": None, "reach": []}) + b"\\n")
"""


def _run(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([PY, "-c", code], check=True, env=env)
    return time.perf_counter() - t0


def startup(repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"reference": [], "warm": [], "cold": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = {**os.environ, "DATAREACH_DATA_DIR": str(Path(tmp) / "data")}
        for i in range(repeat):
            cache = Path(tmp) / f"cache{i}"
            env = {**base, "DATAREACH_CACHE_DIR": str(cache)}
            times["reference"].append(_run(_REFERENCE, env))
            times["cold"].append(_run(_LOAD, env))  # empty cache: compiles and stores
            times["warm"].append(_run(_LOAD, env))  # the cache written just before
    return {k: statistics.median(v) for k, v in times.items()}


def make_hosts(n: int) -> list[str]:
    from datareach.kb import knowledge_base

    rng = random.Random(7)
    domains = sorted(knowledge_base().domains)
    words = ["api", "cdn", "log", "sdk", "m", "www", "img", "static", "t", "a1", "edge", "config"]
    hosts = []
    for i in range(n):
        if rng.random() < 0.8:
            d = rng.choice(domains)
            hosts.append(f"{rng.choice(words)}{rng.randrange(100)}.{d}" if rng.random() < 0.7 else d)
        else:
            hosts.append(f"{rng.choice(words)}{i}.unknown{rng.randrange(5000)}.example")
    return hosts


def throughput(hosts: list[str], repeat: int) -> dict[str, float]:
    data = ("\n".join(hosts) + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATAREACH_CACHE_DIR": str(Path(tmp) / "cache"),
               "DATAREACH_DATA_DIR": str(Path(tmp) / "data")}
        cmd = [PY, "-m", "datareach", "explain", "-"]
        subprocess.run([*cmd, "--format", "jsonl"], input=b"x.example\n", check=True, env=env,
                       stdout=subprocess.DEVNULL)  # compile the cache once
        results: dict[str, list[float]] = {"reference": [], "jsonl": [], "json": []}
        sizes: dict[str, int] = {}
        for _ in range(repeat):
            for name, argv in (("reference", [PY, "-c", _REFERENCE_PIPE]), ("jsonl", [*cmd, "--format", "jsonl"]),
                               ("json", [*cmd, "--format", "json"])):
                t0 = time.perf_counter()
                p = subprocess.run(argv, input=data, check=True, env=env, stdout=subprocess.PIPE)
                results[name].append(time.perf_counter() - t0)
                sizes[name] = len(p.stdout)
    out = {k: statistics.median(v) for k, v in results.items()}
    out.update({f"{k}_bytes": float(v) for k, v in sizes.items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    s = startup(args.repeat)
    print(f"start-up (median of {args.repeat} fresh processes):")
    print(f"  reference (python + import datareach): {s['reference'] * 1000:7.1f} ms")
    print(f"  warm (cached compiled KB):            {s['warm'] * 1000:7.1f} ms   "
          f"adds {(s['warm'] - s['reference']) * 1000:6.1f} ms  ({s['warm'] / s['reference']:.2f}x reference)")
    print(f"  cold (parse + check + compile + store): {s['cold'] * 1000:5.1f} ms   "
          f"adds {(s['cold'] - s['reference']) * 1000:6.1f} ms  ({s['cold'] / s['reference']:.2f}x reference)")
    hosts = make_hosts(args.hosts)
    t = throughput(hosts, args.repeat)
    n = len(hosts)
    print(f"explain on {n} hosts from standard input (end to end, median of {args.repeat}):")
    print(f"  reference (read lines, write one JSON line each): {t['reference']:.3f} s  "
          f"{n / t['reference']:,.0f} hosts/s")
    for name in ("jsonl", "json"):
        print(f"  datareach explain - --format {name:5s}: {t[name]:.3f} s  {n / t[name]:,.0f} hosts/s  "
              f"({t[name] / t['reference']:.2f}x reference time; output {t[name + '_bytes'] / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
