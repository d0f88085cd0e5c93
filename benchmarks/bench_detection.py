"""Accuracy of the detectors on the labelled corpus (benchmarks/corpus.py), against the targets.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_detection.py [--seed N] [--show N] [--engine E]

The Detector runs with the corpus's test profile over every request. Findings are compared with
the labels request by request, as sets of (source, data type):

* source ``profile``: per data type, per value encoding, per carrier (the layers around the
  value) and per request group, true positives, false positives and false negatives, precision
  and recall. Targets: precision >= 0.99 and recall >= 0.98 overall.
* source ``pattern``: per data type, precision and recall. Pattern types a request may carry
  without it being a mistake (a profile value in clear is also an e-mail address, a BSSID is
  also a MAC...) are in the label's ``pattern_allowed`` and are not scored. Target: precision
  >= 0.95 overall.

Prints the tables, a sample of the misses, throughput (requests/s) and one PASS/FAIL line per
target; exits with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Run as a script, only benchmarks/ itself is on sys.path: the repository root makes the
# package importable both ways.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import corpus
from datareach.detect import Detector, Finding
from datareach.detect.types import canonical_data_type

TARGETS = (("profile", "precision", 0.99), ("profile", "recall", 0.98), ("pattern", "precision", 0.95))


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def _f(x: float | None) -> str:
    return "    -" if x is None else f"{x:.3f}"


def table(title: str, rows: dict[str, Score], key_header: str) -> str:
    width = max([len(key_header), *(len(k) for k in rows)])
    out = [f"\n{title}", f"  {key_header:<{width}}  {'TP':>5} {'FP':>5} {'FN':>5}  {'prec':>6} {'recall':>6}"]
    total = Score()
    for k in sorted(rows):
        s = rows[k]
        total.tp, total.fp, total.fn = total.tp + s.tp, total.fp + s.fp, total.fn + s.fn
        out.append(f"  {k:<{width}}  {s.tp:5} {s.fp:5} {s.fn:5}  {_f(s.precision):>6} {_f(s.recall):>6}")
    out.append(f"  {'all':<{width}}  {total.tp:5} {total.fp:5} {total.fn:5}  {_f(total.precision):>6} {_f(total.recall):>6}")
    return "\n".join(out)


@dataclass
class Miss:
    kind: str          # "FP" or "FN"
    source: str
    data_type: str
    case: corpus.Case
    findings: list[Finding]


def score(cases: list[corpus.Case], results: list[list[Finding]]) -> dict[str, object]:
    by: dict[str, defaultdict[str, Score]] = {name: defaultdict(Score) for name in (
        "profile type", "profile encoding", "profile carrier", "profile group", "pattern type", "pattern group")}
    total = {"profile": Score(), "pattern": Score()}
    misses: list[Miss] = []
    for case, findings in zip(cases, results, strict=True):
        lab = case.label
        got_profile = {f.data_type for f in findings if f.source == "profile"}
        got_pattern = {f.data_type for f in findings if f.source == "pattern"}
        tags = [("profile group", lab.group if lab.group != "other" else f"other: {lab.kind}")]
        if lab.group == "profile+":
            tags += [("profile encoding", lab.encoding or ""), ("profile carrier", lab.carrier)]
        elif lab.group == "negative":
            tags = [("profile group", f"negative: {lab.kind}")]
        for dt in lab.profile | got_profile:
            hit, want = dt in got_profile, dt in lab.profile
            s_total = total["profile"]
            for name, key in [("profile type", dt), *tags]:
                s = by[name][key]
                s.tp += hit and want
                s.fp += hit and not want
                s.fn += want and not hit
            s_total.tp += hit and want
            s_total.fp += hit and not want
            s_total.fn += want and not hit
            if hit != want:
                misses.append(Miss("FN" if want else "FP", "profile", dt, case, findings))
        # (the labels use the pattern detectors' own names; findings the one name of each kind of data)
        want_pattern = {canonical_data_type(d) for d in lab.pattern}
        allowed = {canonical_data_type(d) for d in lab.pattern_allowed}
        for dt in want_pattern | (got_pattern - allowed):
            hit, want = dt in got_pattern, dt in want_pattern
            group = lab.group if lab.group == "profile+" else f"{lab.group}: {lab.kind}"
            for s in (by["pattern type"][dt], by["pattern group"][group], total["pattern"]):
                s.tp += hit and want
                s.fp += hit and not want
                s.fn += want and not hit
            if hit != want:
                misses.append(Miss("FN" if want else "FP", "pattern", dt, case, findings))
    return {"by": by, "total": total, "misses": misses}


def _brief(findings: Iterable[Finding]) -> str:
    return "; ".join(f"{f.source}:{f.data_type} @{f.location} [{' > '.join(f.encoding)}] {f.value[:40]!r}"
                     for f in findings) or "(nothing)"


def _request(ex: corpus.Exchange) -> str:
    body = ex.request_body
    return f"{ex.method} {ex.url[:160]} body={body[:160]!r}{'...' if len(body) > 160 else ''}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=corpus.SEED)
    ap.add_argument("--engine", default="auto", help="matcher engine passed to Detector")
    ap.add_argument("--show", type=int, default=3, help="misses shown per (FP/FN, source, data type, group)")
    args = ap.parse_args(argv)

    cases = corpus.generate(args.seed)
    print(corpus.describe(cases))
    detector = Detector(corpus.load_test_profile(), engine=args.engine)
    print(f"matcher engine: {detector.engine}")
    results: list[list[Finding]] = []
    errors: Counter[str] = Counter()
    t0 = time.perf_counter()
    for case in cases:
        try:
            findings, _cuts = detector.detect(case.exchange)
        except Exception as e:  # a crash is a miss of everything in the request, and reported
            errors[f"{type(e).__name__}: {e}"[:120]] += 1
            findings = []
        results.append(findings)
    elapsed = time.perf_counter() - t0

    r = score(cases, results)
    by, total, misses = r["by"], r["total"], r["misses"]
    assert isinstance(by, dict) and isinstance(total, dict) and isinstance(misses, list)
    print(table("profile detector, per data type", by["profile type"], "data type"))
    print(table("profile detector, per value encoding (profile+ requests)", by["profile encoding"], "encoding"))
    print(table("profile detector, per carrier (profile+ requests)", by["profile carrier"], "carrier"))
    print(table("profile detector, per request group (FP on other/negative requests)", by["profile group"], "group"))
    print(table("pattern detectors, per data type", by["pattern type"], "data type"))
    print(table("pattern detectors, per request group", by["pattern group"], "group"))

    if errors:
        print("\ndetector errors:")
        for msg, n in errors.most_common():
            print(f"  {n:5}  {msg}")
    if misses and args.show:
        print("\nmisses (sample):")
        shown: Counter[tuple[str, str, str, str]] = Counter()
        for m in misses:
            lab = m.case.label
            where = f"{lab.encoding_class} ({lab.variant})" if lab.group == "profile+" else f"{lab.group}: {lab.kind} in {lab.carrier}"
            key = (m.kind, m.source, m.data_type, where if m.kind == "FN" else lab.group + lab.kind)
            shown[key] += 1
            if shown[key] > args.show:
                continue
            print(f"  {m.kind} {m.source}:{m.data_type}  [{lab.sdk}] {where}")
            print(f"      request:  {_request(m.case.exchange)}")
            print(f"      findings: {_brief(m.findings)}")

    print(f"\nthroughput: {len(cases)} requests in {elapsed:.2f} s = {len(cases) / elapsed:,.0f} requests/s "
          f"({sum(len(c.exchange.request_body) for c in cases) / elapsed / 1e6:.2f} MB/s of bodies)")
    failed = False
    for source, metric, target in TARGETS:
        value = getattr(total[source], metric)
        ok = value is not None and value >= target
        failed |= not ok
        print(f"{'PASS' if ok else 'FAIL'}  {source} {metric} {_f(value)} (target >= {target})")
    if errors:
        failed = True
        print(f"FAIL  {sum(errors.values())} requests made the detector raise")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
