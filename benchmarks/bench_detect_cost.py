"""CPU time of detection per request, with and without the prefilter and the decoding memo.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_detect_cost.py CAPTURE [--pairs 5] [--every N]
        [--profile examples/profile.toml]

Reads the capture's HTTP requests once (one reader, bodies kept), then runs the detector over
all of them: ``Detector(prefilter=False, memo=False)`` (every family on every layer, every value
decoded each time: the detector before issue 16) and ``Detector()`` (the default), alternating,
``--pairs`` times each, each run with a fresh detector. Prints the median and the range of CPU
microseconds per request (``time.process_time``) for all requests and for those in which nothing
is found, and checks that both found the same (findings and cuts, request by request).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datareach.detect import Detector, load_profile
from datareach.schema import Exchange
from datareach.sources.capture import read_capture


def requests_of(path: Path, every: int) -> list[Exchange]:
    out = []
    for rec in read_capture(path, 0, workers=1, keep_bodies=True):
        if isinstance(rec, Exchange):
            rec.findings = None
            rec.decode_cuts = None
            out.append(rec)
    return out[::every]


def run(detector: Detector, requests: list[Exchange]) -> tuple[float, list[object]]:
    detector.detect(requests[0])  # compiled patterns, imports
    t0 = time.process_time()
    answers = [detector.detect(ex) for ex in requests]
    return (time.process_time() - t0) / len(requests) * 1e6, answers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture", type=Path)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--every", type=int, default=1, help="keep one request in N")
    ap.add_argument("--profile", type=Path, default=Path(__file__).resolve().parent.parent / "examples/profile.toml")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    requests = requests_of(args.capture, args.every)
    if not requests:
        print("no HTTP requests in the capture")
        return 1
    _, reference = run(Detector(profile, plugins=False, prefilter=False, memo=False), requests)
    empty = [ex for ex, (found, _cuts) in zip(requests, reference, strict=True) if not found]  # type: ignore[misc]
    rows: dict[str, list[float]] = {}
    for _ in range(args.pairs):
        for name, kw in (("before", {"prefilter": False, "memo": False}), ("after", {})):
            for subset, reqs in (("all", requests), ("nothing found", empty)):
                if not reqs:
                    continue
                us, answers = run(Detector(profile, plugins=False, **kw), reqs)  # type: ignore[arg-type]
                if subset == "all" and answers != reference:
                    print(f"MISMATCH: the {name} detector found something else")
                    return 1
                rows.setdefault(f"{subset:13} {name}", []).append(us)
    print(f"{len(requests)} requests ({len(empty)} with nothing found), {args.pairs} alternating pairs, "
          "CPU microseconds per request")
    for key, values in rows.items():
        print(f"  {key:20}  median {statistics.median(values):8.1f}  range {min(values):.1f}-{max(values):.1f}")
    for subset in ("all", "nothing found"):
        before, after = rows.get(f"{subset:13} before"), rows.get(f"{subset:13} after")
        if before and after:
            print(f"  {subset}: {statistics.median(before) / statistics.median(after):.2f}x cheaper (medians)")
    print("same findings and cuts with and without the prefilter and the memo: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
