"""Decrypting HTTPS from a key log: datareach against tshark on the same large capture.

    python benchmarks/bench_decrypt.py [--size-mb 320] [--runs 5] [--capture PATH]

Generates (once, deterministically) a capture of TLS 1.3 / HTTP/2 and QUIC / HTTP/3 traffic with
its key log (benchmarks/generate_decrypt_capture.py: about 80,000 requests, most with JSON or
form bodies carrying identifiers), then runs on that same file, alternately, ``--runs`` times:

* ``datareach audit FILE --keylog FILE.keys --format json -o OUT`` (decryption, HTTP/2 and HTTP/3,
  detection of the personal data in every request, names, geo, the JSON report);
* ``datareach audit ... --no-detect`` (the same without detection: what decryption itself costs);
* ``tshark -r FILE -o tls.keylog_file:FILE.keys -Y "http2.type == 1 || http.request" -T fields
  -e http2.header.value -e http.request.uri`` (tshark decrypts every TLS and QUIC packet to apply
  the filter; Debian's tshark 4.0 has no HTTP/3 dissector, so its output lists the HTTP/2
  requests only);

and prints the median wall time of each with its range, the ratios, the peak memory of each
command's whole process tree (sampled every 20 ms from /proc), and the decrypted payload per
second of CPU (datareach's plaintext bytes, from its report, over the CPU time of its process
tree). It checks that datareach found every request the generator wrote and that tshark found
every HTTP/2 request.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_vs_tshark import run  # noqa: E402


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=320)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--capture", type=Path, default=HERE / "decrypt.pcap")
    args = ap.parse_args()
    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: as root, run `apt-get install tshark` (Debian package)")
    datareach = shutil.which("datareach", path=str(Path(sys.executable).parent)) or "datareach"
    cap = args.capture
    keys = cap.with_name(cap.name + ".keys")
    truth_path = cap.with_name(cap.name + ".truth.json")
    if not cap.exists() or not keys.exists() or cap.stat().st_size < args.size_mb * 1_000_000 * 0.95:
        print(f"generating {cap} ({args.size_mb} MB) ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "generate_decrypt_capture.py"), "--size-mb", str(args.size_mb),
                        "--out", str(cap)], check=True, stdout=subprocess.DEVNULL)
    truth = json.loads(truth_path.read_text())
    size = cap.stat().st_size
    print(f"capture: {cap} ({size / 1e6:.0f} MB; {truth['h2_requests']:,} HTTP/2 and {truth['h3_requests']:,} HTTP/3 "
          f"requests; {truth['quic_bytes'] / size:.0%} of the bytes in QUIC)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "a.json"
        commands = {
            "datareach": [datareach, "audit", str(cap), "--keylog", str(keys), "--format", "json", "-o", str(out)],
            "no-detect": [datareach, "audit", str(cap), "--keylog", str(keys), "--no-detect", "--format", "json",
                          "-o", str(Path(tmp) / "b.json")],
            "tshark": [tshark, "-r", str(cap), "-o", f"tls.keylog_file:{keys}", "-Y", "http2.type == 1 || http.request",
                       "-T", "fields", "-e", "http2.header.value", "-e", "http.request.uri"],
        }
        run(commands["no-detect"], subprocess.DEVNULL)  # warm-up: the geo and public-suffix caches
        results: dict[str, list[tuple[float, int, float]]] = {name: [] for name in commands}
        tshark_out = Path(tmp) / "tshark.txt"
        for i in range(args.runs):
            order = list(commands) if i % 2 == 0 else list(reversed(commands))
            for name in order:
                before = cpu_children()
                with open(tshark_out if name == "tshark" else os.devnull, "wb") as sink:
                    wall, peak = run(commands[name], sink)
                results[name].append((wall, peak, cpu_children() - before))
            print(f"run {i + 1}: " + ", ".join(f"{n} {results[n][-1][0]:.2f} s" for n in commands), flush=True)
        doc = json.loads(out.read_text())
        versions: dict[str, int] = {}
        for e in doc["exchanges"]:
            versions[e["http_version"]] = versions.get(e["http_version"], 0) + 1
        tshark_requests = sum(1 for line in tshark_out.read_text().splitlines() if line.startswith(("POST", "GET")))
    dec = doc["inputs"][0]["decryption"]
    print()
    print(f"datareach found {versions.get('HTTP/2', 0):,} HTTP/2 and {versions.get('HTTP/3', 0):,} HTTP/3 requests "
          f"(the generator wrote {truth['h2_requests']:,} and {truth['h3_requests']:,}), "
          f"{doc['summary']['findings']:,} findings; tshark listed {tshark_requests:,} HTTP/2 requests")
    labels = {"datareach": "datareach audit --keylog --format json",
              "no-detect": "datareach audit --keylog --no-detect --format json",
              "tshark": 'tshark -o tls.keylog_file -Y "http2.type == 1 || http.request" -T fields'}
    medians = {name: statistics.median(w for w, _, _ in r) for name, r in results.items()}
    print()
    print("| | median wall time (range) | CPU time (median) | peak memory (process tree, range) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        walls, mems, cpus = [w for w, _, _ in r], [m / 1024 for _, m, _ in r], [c for _, _, c in r]
        print(f"| {labels[name]} | {medians[name]:.2f} s ({min(walls):.2f}-{max(walls):.2f}) | "
              f"{statistics.median(cpus):.1f} s | {statistics.median(mems):.0f} MiB ({min(mems):.0f}-{max(mems):.0f}) |")
    print()
    for name in ("datareach", "no-detect"):
        cpu = statistics.median(c for _, _, c in results[name])
        print(f"ratio: {labels[name]} is {medians['tshark'] / medians[name]:.2f}x tshark's speed; "
              f"decrypted payload {dec['plaintext_bytes'] / 1e6 / cpu:.0f} MB per CPU second "
              f"({dec['plaintext_bytes'] / 1e6:.0f} MB of plaintext)")


if __name__ == "__main__":
    main()
