"""datareach against tshark on the same large capture: wall time and peak memory.

    python benchmarks/bench_vs_tshark.py [--size-mb 320] [--runs 5] [--capture PATH] [--other DATAREACH]

Generates (once, deterministically) a capture of at least 300 MB with
benchmarks/generate_capture.py, then runs on that same file, alternately, ``--runs`` times each:

* ``datareach audit FILE --format json -o OUT`` (everything: names, geo, JSON), and
* ``tshark -r FILE -T fields -e ip.dst -e tls.handshake.extensions_server_name -e dns.qry.name
  -e http.host`` (Debian's tshark; the script says how to install it when it is missing),
* with ``--other PATH``, a second datareach command too (another checkout's
  ``.venv/bin/datareach``): before and after a change, in the same run, the order of the two
  alternating from round to round,

and prints the median wall time of each with its range, their ratio, and the peak memory of each
command's whole process tree (datareach reads large files with one process per core; their
memory is added up, sampled every 20 ms from /proc). Times vary on a shared machine: only the
ratios within one run of this script mean something.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TSHARK_FIELDS = ["ip.dst", "tls.handshake.extensions_server_name", "dns.qry.name", "http.host"]


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def run(cmd: list[str], stdout: object) -> tuple[float, int]:
    """Wall time and peak tree RSS (KiB) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL)  # type: ignore[arg-type]
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with exit status {proc.returncode}")
    return wall, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=320)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--other", metavar="DATAREACH", help="another datareach to run alongside (before/after)")
    ap.add_argument("--capture", type=Path, default=HERE / "capture.pcap")
    args = ap.parse_args()

    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: as root, run `apt-get install tshark` (Debian package), "
                         "then run this script again")
    datareach = shutil.which("datareach", path=str(Path(sys.executable).parent)) or "datareach"

    cap = args.capture
    if not cap.exists() or cap.stat().st_size < args.size_mb * 1_000_000 * 0.95:
        print(f"generating {cap} ({args.size_mb} MB) ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "generate_capture.py"), "--size-mb", str(args.size_mb),
                        "--out", str(cap)], check=True, stdout=subprocess.DEVNULL)
    size = cap.stat().st_size
    print(f"capture: {cap} ({size / 1e6:.0f} MB)")

    tshark_cmd = [tshark, "-r", str(cap), "-T", "fields"]
    for field in TSHARK_FIELDS:
        tshark_cmd += ["-e", field]
    env_note = os.environ.get("DATAREACH_WORKERS")
    with tempfile.TemporaryDirectory() as tmp:
        commands = {"datareach": [datareach, "audit", str(cap), "--format", "json", "-o", str(Path(tmp) / "a.json")]}
        if args.other:
            commands["other"] = [args.other, "audit", str(cap), "--format", "json", "-o", str(Path(tmp) / "b.json")]
        for cmd in commands.values():
            run(cmd, subprocess.DEVNULL)  # warm-up: builds the geo and public-suffix caches once
        commands["tshark"] = tshark_cmd
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
        for i in range(args.runs):
            order = list(commands) if i % 2 == 0 or not args.other else ["other", "datareach", "tshark"]
            for name in order:
                with open(os.devnull, "wb") as sink:
                    results[name].append(run(commands[name], sink))
            print(f"run {i + 1}: " + ", ".join(f"{n} {results[n][-1][0]:.2f} s" for n in commands), flush=True)
    labels = {"datareach": "datareach audit --format json", "other": f"{args.other} (--other)",
              "tshark": "tshark -T fields (4 fields)"}
    medians = {name: statistics.median(t for t, _ in r) for name, r in results.items()}
    print()
    print("| | median wall time (range) | peak memory (process tree, range) |")
    print("|---|---|---|")
    for name, r in results.items():
        times, mems = [t for t, _ in r], [m / 1024 for _, m in r]
        print(f"| {labels[name]} | {medians[name]:.2f} s ({min(times):.2f}-{max(times):.2f}) | "
              f"{statistics.median(mems):.0f} MiB ({min(mems):.0f}-{max(mems):.0f}) |")
    print()
    for name in ("datareach", "other"):
        if name in medians:
            print(f"ratio: {labels[name]} is {medians['tshark'] / medians[name]:.1f}x faster than tshark "
                  f"({size / 1e6 / medians[name]:.0f} MB/s vs {size / 1e6 / medians['tshark']:.0f} MB/s)"
                  + (f"; DATAREACH_WORKERS={env_note}" if env_note else ""))


if __name__ == "__main__":
    main()
