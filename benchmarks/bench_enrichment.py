"""Start-up and throughput of the geo and public-suffix enrichment.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_enrichment.py [--repeat N]

Each start-up figure is measured in a fresh subprocess with ``DATAREACH_CACHE_DIR`` pointed at
a temporary directory: "cold" runs start with that directory empty (the compiled data is
built and written), "warm" runs find it there. Reported per run: the time to import the
module and the time of the first call (``enrich`` on one address, ``registrable_domain`` on
one name). Throughput: distinct addresses per second through ``GeoResolver.enrich`` (the
numpy path) for 100k random IPv4 and 100k random IPv6 addresses, and the same for the index
look-up alone (parsing and Arrow work excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_GEO_FIRST = """
import json, time
t0 = time.perf_counter()
import pyarrow as pa
from datareach.enrich.geo import GeoResolver
t1 = time.perf_counter()
GeoResolver().enrich(pa.array(["8.8.8.8"]))
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t2 - t1}))
"""

_PSL_FIRST = """
import json, time
t0 = time.perf_counter()
from datareach.kb.psl import registrable_domain
t1 = time.perf_counter()
registrable_domain("www.example.co.uk")
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t2 - t1}))
"""

_THROUGHPUT = """
import ipaddress, json, random, time
import numpy as np
import pyarrow as pa
from datareach.enrich.geo import GeoResolver, _parse_batch
rng = random.Random(1)
v4 = list({str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(100_000)})
v6 = list({str(ipaddress.IPv6Address((0x2000 << 112) | rng.getrandbits(125))) for _ in range(100_000)})
geo = GeoResolver()
geo.enrich(pa.array(["8.8.8.8"]))
index = geo._backend.index
out = {}
for name, ips in (("ipv4", v4), ("ipv6", v6)):
    arr = pa.array(ips)
    best = best_lookup = float("inf")
    for _ in range(5):
        g = GeoResolver()
        g._backend = geo._backend
        t = time.perf_counter(); g.enrich(arr); best = min(best, time.perf_counter() - t)
        pos4, raw4, pos6, raw6, _ = _parse_batch(ips)
        q4 = np.frombuffer(b"".join(raw4), dtype=">u4").astype(np.uint32)
        q6 = np.frombuffer(b"".join(raw6), dtype=">u8").reshape(-1, 2)
        qh, ql = q6[:, 0].astype(np.uint64), q6[:, 1].astype(np.uint64)
        t = time.perf_counter()
        for table in ("country", "org"):
            index.ids_v4(table, q4)
            index.ids_v6(table, qh, ql)
        best_lookup = min(best_lookup, time.perf_counter() - t)
    out[name] = {"n": len(ips), "enrich_per_s": len(ips) / best, "lookup_per_s": len(ips) / best_lookup}
print(json.dumps(out))
"""


def _run(code: str, cache: Path) -> dict[str, float]:
    env = dict(os.environ, DATAREACH_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _startup(label: str, code: str, repeat: int, tmp: Path) -> None:
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    for i in range(repeat):
        cache = tmp / f"{label}-{i}"
        cold.append(_run(code, cache))  # empty cache directory: compile and write
        warm.append(_run(code, cache))  # the same directory: load the compiled file
        warm.append(_run(code, cache))
    c = statistics.median(r["first"] for r in cold)
    w = statistics.median(r["first"] for r in warm)
    imp = statistics.median(r["import"] for r in cold + warm)
    print(
        f"{label:4} first call: cold {c * 1000:7.1f} ms   warm {w * 1000:6.1f} ms   "
        f"cold/warm {c / w:5.1f}x   (module import, not included: {imp * 1000:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="cold runs per figure (default 3)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="datareach-bench-"))
    try:
        _startup("geo", _GEO_FIRST, args.repeat, tmp)
        _startup("psl", _PSL_FIRST, args.repeat, tmp)
        result = _run(_THROUGHPUT, tmp / "geo-0")
        for name, r in result.items():
            print(
                f"{name} distinct addresses: enrich {r['enrich_per_s'] / 1e6:5.2f} M/s, "
                f"index look-up alone {r['lookup_per_s'] / 1e6:6.2f} M/s  (n={int(r['n'])})"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
