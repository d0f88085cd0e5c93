"""Peak memory of an audit whose result is large: many distinct destinations, many HAR entries.

    python benchmarks/bench_memory.py [--destinations 1000000] [--entries 1000000] [--runs 1]
                                      [--other DATAREACH] [--keep DIR]

Generates (deterministically, in a temporary directory or ``--keep DIR``):

* a pcap of ``--destinations`` TCP SYNs from one client to as many distinct public addresses
  (one destination each: the result is as large as the input allows), and
* a HAR of ``--entries`` GET requests (50 hosts, 1,000 connection ids),

then runs ``datareach audit FILE --format json -o OUT`` on each and prints its wall time and
the peak resident memory of its whole process tree (parallel readers included; sampled every
20 ms from /proc), with ``--other`` the same for another datareach command (another checkout's
``.venv/bin/datareach``: before and after a change). The goal of the hostile-input issue is
under 500 MB for both at one million. Nothing here is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.bench_vs_tshark import run  # noqa: E402  (wall time and peak tree RSS)
from datareach.testing.capture import distinct_destinations_pcap as syn_capture  # noqa: E402

DATAREACH = str(Path(sys.executable).with_name("datareach"))


def har_file(path: Path, n: int) -> None:
    """A HAR of ``n`` GET requests to 50 hosts over 1,000 connection ids."""
    with path.open("w") as f:
        f.write('{"log": {"version": "1.2", "creator": {"name": "bench_memory", "version": "1"}, "entries": [\n')
        for i in range(n):
            host = f"h{i % 50}.example{i % 7}.com"
            e = {"startedDateTime": f"2026-01-01T{i // 3_600_000 % 24:02d}:{i // 60_000 % 60:02d}:"
                                    f"{i // 1000 % 60:02d}.{i % 1000:03d}Z",
                 "time": 1,
                 "request": {"method": "GET", "url": f"https://{host}/p/{i}?q={i}", "httpVersion": "HTTP/1.1",
                             "headers": [{"name": "Host", "value": host}, {"name": "User-Agent", "value": "b/1"}],
                             "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
                 "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [],
                              "cookies": [], "content": {"size": 10, "mimeType": "text/plain"}, "redirectURL": "",
                              "headersSize": -1, "bodySize": 10},
                 "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
                 "serverIPAddress": f"93.184.{i % 50}.{i % 200}", "connection": str(i % 1000)}
            f.write(("," if i else "") + json.dumps(e) + "\n")
        f.write("]}}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--destinations", type=int, default=1_000_000)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--other", help="another datareach command to measure the same way")
    ap.add_argument("--keep", type=Path, help="directory for the generated inputs (kept)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = args.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        inputs = [(f"{args.destinations:,} distinct destinations (pcap)", d / f"syn{args.destinations}.pcap",
                   syn_capture, args.destinations),
                  (f"{args.entries:,} HAR entries", d / f"entries{args.entries}.har", har_file, args.entries)]
        commands = [("datareach", DATAREACH)] + ([("other", args.other)] if args.other else [])
        print("| input | command | wall s (median, range) | peak tree MiB (max) |")
        print("|---|---|---|---|")
        for label, path, make, n in inputs:
            if not path.exists():
                make(path, n)
            for name, cmd in commands:
                walls, peaks = [], []
                for _ in range(args.runs):
                    wall, peak = run([cmd, "audit", str(path), "--format", "json", "-o", str(d / "out.json"),
                                      "--no-progress"], subprocess.DEVNULL)
                    walls.append(wall)
                    peaks.append(peak)
                print(f"| {label} | {name} | {statistics.median(walls):.1f} ({min(walls):.1f}–{max(walls):.1f}) "
                      f"| {max(peaks) / 1024:.0f} |", flush=True)


if __name__ == "__main__":
    main()
