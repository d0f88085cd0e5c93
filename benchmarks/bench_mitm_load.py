"""Load test: what datareach's mitmproxy addon adds to the proxied requests' latency.

    python benchmarks/bench_mitm_load.py [--requests 2000] [--clients 50] [--rounds 2]

2,000 HTTPS requests from 50 concurrent clients (httpx, async, each client its own connection,
trusting the proxy's CA) go through a real mitmdump to a loopback HTTPS server, first without the
addon, then with it (profile examples/profile.toml), alternating for ``--rounds`` rounds to damp
noise. Every request names a real host (the redirect addon of tests/data/mitm keeps the traffic on
loopback) and every fourth one carries the profile's advertising ID, so the addon has owners to
resolve and findings to report. Prints median and p99 latency with and without the addon, the
added latency (absolute and %), failed requests, and checks that the final report holds one
finding per leaking request. Target: under 10% added median latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data" / "mitm"))
import harness  # noqa: E402

AID = "a3e3fce2-78b0-4105-ada0-748f79470c71"
HOSTS = ["graph.facebook.com", "t.appsflyer.com", "app-measurement.com", "api16-normal-c-useast1a.tiktokv.com"]


def url_for(i: int) -> tuple[str, bool]:
    host = HOSTS[i % len(HOSTS)]
    leak = i % 4 == 0
    return (f"https://{host}/e/{i}?advertiser_id={AID}" if leak else f"https://{host}/e/{i}?n={i}"), leak


async def run_load(proxy: str, ca: Path, n: int, clients: int) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    failures = 0
    leaks = 0
    counter = iter(range(n))

    async def client() -> None:
        nonlocal failures, leaks
        async with httpx.AsyncClient(proxy=proxy, verify=str(ca), timeout=60, trust_env=False) as c:
            for i in counter:
                url, leak = url_for(i)
                t0 = time.perf_counter()
                try:
                    r = await c.get(url)
                    ok = r.status_code == 200 and r.content == b'{"ok":true}'
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                failures += not ok
                leaks += leak and ok

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, failures, leaks


def p99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100)[98]


def one_run(python: str, with_addon: bool, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        up = harness.Upstream(work)
        report = work / "report"
        options = {"datareach_profile": str(ROOT / "examples" / "profile.toml"),
                   "datareach_report": str(report)} if with_addon else {}
        proxy = harness.Mitmdump(python, work, up, datareach=with_addon, options=options, extra=["-q"])
        try:
            asyncio.run(run_load(proxy.proxy, proxy.ca, 100, 10))  # warm-up (TLS certs, KB, caches)
            lat, failed, leaks = asyncio.run(run_load(proxy.proxy, proxy.ca, args.requests, args.clients))
        finally:
            proxy.stop(timeout=900)
        result: dict[str, object] = {"latencies": lat, "failed": failed, "leaks": leaks}
        if with_addon:
            doc = json.loads(report.with_suffix(".json").read_text())
            result["findings"] = sum(1 for f in doc["findings"] if f["data_type"] == "advertising_id")
            result["exchanges"] = len(doc["exchanges"])
            result["live_lines"] = proxy.stdout().count("datareach: finding ")
        up.close()
        return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    python = harness.mitmproxy_python()
    if python is None:
        print("mitmproxy not found (make installs it in .venv/mitmproxy)", file=sys.stderr)
        return 1
    base: list[float] = []
    addon: list[float] = []
    ok = True
    for r in range(args.rounds):
        for with_addon in (False, True):
            res = one_run(python, with_addon, args)
            lat = res["latencies"]
            assert isinstance(lat, list)
            (addon if with_addon else base).extend(lat)
            line = (f"round {r + 1} {'with addon   ' if with_addon else 'without addon'}: median "
                    f"{statistics.median(lat) * 1000:.1f} ms, p99 {p99(lat) * 1000:.1f} ms, failed {res['failed']}")
            if with_addon:
                # the warm-up's 100 requests (25 leaking) are in the report too
                want = int(str(res["leaks"])) + 25
                line += (f"; report: {res['exchanges']} requests, {res['findings']} advertising_id findings "
                         f"(sent {want}); live finding lines {res['live_lines']}")
                ok &= res["findings"] == want and res["exchanges"] == args.requests + 100
            ok &= res["failed"] == 0
            print(line, flush=True)
    mb, ma = statistics.median(base), statistics.median(addon)
    pb, pa = p99(base), p99(addon)
    print(f"\n{args.requests} requests x {args.rounds} rounds, {args.clients} concurrent clients")
    print(f"median: without {mb * 1000:.1f} ms, with {ma * 1000:.1f} ms, added {(ma - mb) * 1000:+.1f} ms "
          f"({(ma / mb - 1) * 100:+.1f}%)")
    print(f"p99:    without {pb * 1000:.1f} ms, with {pa * 1000:.1f} ms, added {(pa - pb) * 1000:+.1f} ms "
          f"({(pa / pb - 1) * 100:+.1f}%)")
    print(f"median ratio with/without: {ma / mb:.3f} (target < 1.10); all requests ok and every finding "
          f"reported: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
