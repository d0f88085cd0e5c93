"""Gap lists for the knowledge-base fillers: dataset rows the shipped KB does not attribute, or
attributes to a chain that does not reach the company's country group.

    PYTHONPATH=src python benchmarks/coverage_gaps.py --datasets /work/.mirror --out /work/shared-cov
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

try:
    from benchmarks.coverage_data import CN_GROUP, load_rows
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from coverage_data import CN_GROUP, load_rows  # type: ignore[no-redef,import-not-found]

DATE = "2026-12-07"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--date", default=DATE)
    args = ap.parse_args(argv)

    from datareach.enrich.ownership import OwnershipResolver
    from datareach.kb import knowledge_base

    kb = knowledge_base(use_imports=False)
    res = OwnershipResolver(kb)
    rows = load_rows(args.datasets)
    args.out.mkdir(parents=True, exist_ok=True)

    memo: dict[str, tuple[str, set[str]]] = {}

    def owner(host: str) -> tuple[str, set[str]]:
        hit = memo.get(host)
        if hit is None:
            own, reach = res.resolve(host, args.date)
            if own is None:
                hit = ("", set())
            else:
                up = own["ultimate_parent"]
                label = own["entity"] if up["entity"] == own["entity"] else f"{own['entity']} > {up['entity']}"
                hit = (label, {r["jurisdiction"] for r in reach if r["basis"] == "owner"})
            memo[host] = hit
        return hit

    with (args.out / "targets.tsv").open("w") as f:
        f.write("domain\tdataset\tdataset_company\tcompany_country\tcountry_from\n")
        for r in rows:
            f.write(f"{r.domain}\t{r.dataset}\t{r.company}\t{r.country}\t{r.country_from}\n")

    def gaps(name: str, want: frozenset[str] | None, keep) -> int:  # type: ignore[no-untyped-def]
        grouped: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        companies: dict[str, set[str]] = defaultdict(set)
        for r in rows:
            if not keep(r):
                continue
            label, juris = owner(r.domain)
            if label and (want is None or juris & want):
                continue
            grouped[(r.domain, label, r.country)].add(r.dataset)
            companies[r.domain].add(r.company)
        # one line per (company, domain); companies sorted by how many domains they miss
        lines: dict[str, list[str]] = defaultdict(list)
        for (dom, label, country), ds in grouped.items():
            comp = sorted(companies[dom])[0]
            lines[comp].append(f"{comp}\t{country}\t{dom}\t{','.join(sorted(ds))}\t{label or '-'}")
        with (args.out / name).open("w") as f:
            f.write("dataset_company\tcountry\tdomain\tdatasets\tcurrent_owner\n")
            for comp in sorted(lines, key=lambda c: (-len(lines[c]), c.casefold())):
                for line in sorted(lines[comp]):
                    f.write(line + "\n")
        return len(grouped)

    n_cn = gaps("gaps-cn.tsv", CN_GROUP, lambda r: r.country in CN_GROUP)
    n_ru = gaps("gaps-ru.tsv", frozenset({"RU"}), lambda r: r.country == "RU")
    # the DDG app list: every domain wants an owner at all
    n_app = gaps("gaps-ddg-app.tsv", None, lambda r: r.dataset == "ddg-app")
    print(f"rows {len(rows)}; gaps: cn {n_cn}, ru {n_ru}, ddg-app {n_app}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
