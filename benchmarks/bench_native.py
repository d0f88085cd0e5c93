#!/usr/bin/env python3
"""The packet core compiled by mypyc (native) against its Python sources (DATAREACH_NATIVE=0).

For each capture, alternating pairs (native, pure, native, pure ...), each run a subprocess of
its own:

* ``reader``: one process reads the capture (``pcap.read_sequential``: the record walk,
  link/IP/TCP, the flow table, DNS, TLS and HTTP parsing; no detection, no enrichment);
* ``audit`` (``--mode audit`` or ``both``): ``datareach audit CAPTURE --format json`` with its default
  workers (parallel readers, detection, enrichment, the JSON report).

Printed per capture and mode: the median and the range of wall time and of CPU time (user+sys
of the whole process tree), and the median ratio pure/native. The machine may be shared: CPU
time is the figure to decide on.

Run: PYTHONPATH=src python benchmarks/bench_native.py CAPTURE... [--pairs 5] [--mode reader|audit|both]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

READER = """
import sys
from pathlib import Path
from datareach import _core
from datareach.sources import pcap
n = 0
for _ in pcap.read_sequential(Path(sys.argv[1]), 0, keep_bodies=False):
    n += 1
print(_core.packet_core(), n)
"""


def _run(cmd: list[str], native: bool) -> tuple[float, float, str]:
    env = {**os.environ, "DATAREACH_NATIVE": "1" if native else "0"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode not in (0, 3):
        sys.exit(f"{cmd} failed ({run.returncode}): {run.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("captures", nargs="+", type=Path)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--mode", choices=("reader", "audit", "both"), default="reader")
    args = ap.parse_args()
    modes = ["reader", "audit"] if args.mode == "both" else [args.mode]
    for capture in args.captures:
        for mode in modes:
            if mode == "reader":
                cmd = [sys.executable, "-c", READER, str(capture)]
            else:
                cmd = [sys.executable, "-m", "datareach", "audit", str(capture), "--format", "json", "--no-progress",
                       "-o", os.devnull]
            times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
            outputs: dict[bool, set[str]] = {True: set(), False: set()}
            for i in range(args.pairs):
                for native in (True, False):
                    wall, cpu, out = _run(cmd, native)
                    times[native].append((wall, cpu))
                    outputs[native].add(out)
                    print(f"  {capture.name} {mode} pair {i + 1} {'native' if native else 'pure  '}: "
                          f"wall {wall:.2f} s, cpu {cpu:.2f} s  {out}", flush=True)
            print(f"{capture.name} {mode}:")
            for native in (True, False):
                walls = [w for w, _ in times[native]]
                cpus = [c for _, c in times[native]]
                print(f"  {'native' if native else 'pure  '}  wall {_fmt(walls)}  cpu {_fmt(cpus)}")
            ratio_cpu = statistics.median(c for _, c in times[False]) / statistics.median(c for _, c in times[True])
            ratio_wall = statistics.median(w for w, _ in times[False]) / statistics.median(w for w, _ in times[True])
            print(f"  pure/native: cpu {ratio_cpu:.2f}x, wall {ratio_wall:.2f}x", flush=True)
            if mode == "reader" and len({o.split(" ", 2)[-1] for o in outputs[True] | outputs[False]}) != 1:
                print(f"  WARNING: the record counts differ: {outputs}")


if __name__ == "__main__":
    main()
