"""Services (``[[service]]``): coverage of Exodus Privacy's tracker list, and the look-up's speed.

    .venv/bin/python benchmarks/bench_services.py [--exodus trackers.json] [--hosts 100000]

Coverage: for each tracker of an Exodus tracker export (the API's ``/api/trackers`` answer, or
the 2020 copy in https://github.com/whyorean/Warden ``app/src/main/assets/trackers.json``; the
list states no licence, so it is not shipped: fetch it) whose ``network_signature`` names host
names, whether one of them is a service's domain (or under one), only the parent of one (Exodus
gives ``facebook.com`` for the Facebook SDKs, whose service is ``graph.facebook.com``), or
neither; the trackers in none are listed. Speed: :meth:`KnowledgeBase.service_of_name` against
:meth:`KnowledgeBase.owner_of_name` on the hosts of ``bench_kb.py`` (in this process, best of 5).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

_HOST = re.compile(r"[a-z0-9.-]+\.[a-z]{2,}")


def signature_hosts(signature: str) -> list[str]:
    """The host names in an Exodus ``network_signature`` (a regular expression of alternatives)."""
    out = []
    for part in signature.split("|"):
        host = part.replace("\\.", ".").strip(".^$*/\\").lower()
        if _HOST.fullmatch(host):
            out.append(host)
    return out


def coverage(path: Path) -> None:
    from datareach.kb import knowledge_base

    kb = knowledge_base(use_imports=False)
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    trackers = data.get("trackers", data) if isinstance(data, dict) else data
    items = list(trackers.values()) if isinstance(trackers, dict) else list(trackers)
    found, parent, missing = [], [], []
    for t in items:
        hosts = signature_hosts(str(t.get("network_signature") or ""))
        if not hosts:
            continue
        if any(kb.service_of_name(h) for h in hosts):
            found.append(t["name"])
        elif any(h in kb.service_tails for h in hosts):
            parent.append(t["name"])
        else:
            missing.append(f"{t['name']} ({', '.join(hosts[:3])})")
    n = len(found) + len(parent) + len(missing)
    print(f"Exodus trackers: {len(items)}, {n} with host names in their network signature")
    print(f"  a service's domain: {len(found)} ({len(found) / max(n, 1):.0%}); only a parent of one: {len(parent)}; "
          f"none: {len(missing)}")
    for m in missing:
        print(f"    none: {m}")


def speed(n: int) -> None:
    from bench_kb import make_hosts

    from datareach.kb import knowledge_base

    kb = knowledge_base(use_imports=False)
    hosts = make_hosts(n)
    for name, fn in (("owner_of_name", kb.owner_of_name), ("service_of_name", kb.service_of_name)):
        best = min(_timed(fn, hosts) for _ in range(5))
        print(f"  {name:16s} {best * 1e9 / len(hosts):6.0f} ns per host ({len(hosts)} hosts, best of 5)")


def _timed(fn: Any, hosts: list[str]) -> float:
    t0 = time.perf_counter()
    for h in hosts:
        fn(h)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exodus", type=Path, help="an Exodus tracker export (JSON)")
    ap.add_argument("--hosts", type=int, default=100_000)
    args = ap.parse_args()
    if args.exodus:
        coverage(args.exodus)
    print("look-ups:")
    speed(args.hosts)


if __name__ == "__main__":
    main()
