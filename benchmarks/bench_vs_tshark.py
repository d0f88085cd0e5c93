"""datareach against tshark on the same large capture: wall time and peak memory.

    python benchmarks/bench_vs_tshark.py [--size-mb 320] [--runs 3] [--capture PATH]

Generates (once, deterministically) a capture of at least 300 MB with
benchmarks/generate_capture.py, then runs on that same file, alternately, ``--runs`` times each:

* ``datareach audit FILE --format json -o OUT`` (everything: names, geo, JSON), and
* ``tshark -r FILE -T fields -e ip.dst -e tls.handshake.extensions_server_name -e dns.qry.name
  -e http.host`` (Debian's tshark; the script says how to install it when it is missing),

and prints the median wall time of each, their ratio, and the peak memory of each command's
whole process tree (datareach reads large files with one process per core; their memory is
added up, sampled every 20 ms from /proc). Times vary on a shared machine: only the ratio within
one run of this script means something.
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
    ap.add_argument("--runs", type=int, default=3)
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
        out = Path(tmp) / "report.json"
        dr_cmd = [datareach, "audit", str(cap), "--format", "json", "-o", str(out)]
        run(dr_cmd, subprocess.DEVNULL)  # warm-up: builds the geo and public-suffix caches once
        dr: list[tuple[float, int]] = []
        ts: list[tuple[float, int]] = []
        for i in range(args.runs):
            dr.append(run(dr_cmd, subprocess.DEVNULL))
            with open(os.devnull, "wb") as sink:
                ts.append(run(tshark_cmd, sink))
            print(f"run {i + 1}: datareach {dr[-1][0]:.2f} s, tshark {ts[-1][0]:.2f} s", flush=True)
    dr_med = statistics.median(t for t, _ in dr)
    ts_med = statistics.median(t for t, _ in ts)
    print()
    print("| | median wall time | peak memory (process tree) |")
    print("|---|---|---|")
    print(f"| datareach audit --format json | {dr_med:.2f} s | {max(m for _, m in dr) / 1024:.0f} MiB |")
    print(f"| tshark -T fields (4 fields) | {ts_med:.2f} s | {max(m for _, m in ts) / 1024:.0f} MiB |")
    print()
    print(f"ratio: datareach is {ts_med / dr_med:.1f}x faster than tshark "
          f"({size / 1e6 / dr_med:.0f} MB/s vs {size / 1e6 / ts_med:.0f} MB/s)"
          + (f"; DATAREACH_WORKERS={env_note}" if env_note else ""))


if __name__ == "__main__":
    main()
