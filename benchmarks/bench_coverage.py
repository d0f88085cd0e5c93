"""Coverage of the shipped knowledge base against public tracker datasets (issue 15, "Done when").

    make bench-coverage DATASETS=/path/to/repos
    PYTHONPATH=src python benchmarks/bench_coverage.py --datasets DIR [--json OUT] [--list-disagreements]

DIR holds the datasets' repositories (see ``benchmarks/coverage_data.py`` for the git clone URLs,
or the ``fetch`` tool's bare mirrors ``DIR/<owner>+<name>/repo``). Nothing is downloaded here.
The knowledge base is the shipped one: curated records, the shipped datasets and the company
mappings; the user's imports are left out.

Figures:

* **DDG app list**: share of the hosts of DuckDuckGo's app tracker list with an owner (>= 90%).
* **CN / RU**: share of the domains the datasets give to companies of CN/HK/MO (resp. RU) whose
  owner's control chain reaches CN (any controlled entity with hq, incorporated or operates_in
  CN, HK or MO; resp. RU), i.e. an owner-basis reach entry for it (>= 95% each).
* **agreement**: for each (domain, dataset) row we attribute, whether the dataset's company is
  our owner, an entity of its control chain or its ultimate parent (or our owner is a
  subsidiary of the company the dataset names: "different level"). The dataset's company is
  identified by a ``[[map]]`` record, else its name (legal suffixes ignored), else the owner most
  of the company's OTHER domains (at least two) have with us. Rows whose company cannot be
  identified are counted apart ("unmatched"): a ``[[map]]`` record settles them. Every
  disagreement must have a reviewed verdict in ``benchmarks/coverage-disagreements.toml``;
  unreviewed ones are reported apart (target: agreement >= 95%).
* per dataset: share of its domains with an owner.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from benchmarks.coverage_data import CN_GROUP, DATASETS, Row, load_rows
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from coverage_data import CN_GROUP, DATASETS, Row, load_rows  # type: ignore[no-redef,import-not-found]

DATE = "2026-12-07"
REVIEWED = Path(__file__).resolve().parent / "coverage-disagreements.toml"
#: our short dataset names -> the dataset kinds of [[map]] records
KIND = {"ddg-app": "ddg-app", "ddg-tds": "tracker-radar", "adguard": "adguard-companiesdb",
        "ghostery": "ghostery-trackerdb", "disconnect": "disconnect", "xray": "xray", "exodus": "exodus"}
VERDICTS = ("datareach", "dataset", "both (different level)")
TARGETS = {"ddg_app": 0.90, "cn": 0.95, "ru": 0.95, "agreement": 0.95}


@dataclass
class Owner:
    entity: str
    origin: str
    chain: frozenset[str]  # every entity the owner is controlled by (and itself)
    ultimate: str
    reach: frozenset[str]  # owner-basis jurisdictions
    source_kind: str = ""  # the dataset kind the matched domain comes from ("" for curated)


@dataclass
class Result:
    ddg_app: tuple[int, int] = (0, 0)
    ddg_app_country: tuple[int, int] = (0, 0)
    cn: tuple[int, int] = (0, 0)
    ru: tuple[int, int] = (0, 0)
    per_dataset: dict[str, tuple[int, int]] = field(default_factory=dict)
    per_dataset_curated: dict[str, tuple[int, int]] = field(default_factory=dict)
    verdicts: Counter[str] = field(default_factory=Counter)
    verdicts_curated: Counter[str] = field(default_factory=Counter)
    disagreements: list[dict[str, str]] = field(default_factory=list)
    unreviewed: list[dict[str, str]] = field(default_factory=list)
    reviewed: Counter[str] = field(default_factory=Counter)
    unmatched: Counter[tuple[str, str]] = field(default_factory=Counter)
    missed_cn: list[str] = field(default_factory=list)
    missed_ru: list[str] = field(default_factory=list)

    @staticmethod
    def share(pair: tuple[int, int]) -> float:
        return pair[0] / pair[1] if pair[1] else 0.0

    @property
    def agreement(self) -> tuple[int, int]:
        agree = self.verdicts["owner"] + self.verdicts["chain"] + self.verdicts["different level"]
        return agree, agree + self.verdicts["disagree"]

    @property
    def agreement_curated(self) -> tuple[int, int]:
        """Agreement where our owner is a curated entity (the shipped datasets' own entities left out)."""
        v = self.verdicts_curated
        agree = v["owner"] + v["chain"] + v["different level"]
        return agree, agree + v["disagree"]

    @property
    def agreement_after_review(self) -> tuple[int, int]:
        """Disagreements reviewed as ours right or a different level are not errors of ours."""
        agree, total = self.agreement
        return agree + self.reviewed["datareach"] + self.reviewed["both (different level)"], total

    def to_json(self) -> dict[str, Any]:
        def pc(pair: tuple[int, int]) -> dict[str, Any]:
            return {"hits": pair[0], "total": pair[1], "share": round(self.share(pair), 4)}

        return {
            "ddg_app_with_owner": pc(self.ddg_app), "ddg_app_owner_with_country": pc(self.ddg_app_country),
            "cn_reach": pc(self.cn), "ru_reach": pc(self.ru),
            "agreement": pc(self.agreement), "agreement_after_review": pc(self.agreement_after_review),
            "agreement_curated_owner": pc(self.agreement_curated),
            "verdicts": dict(self.verdicts), "reviewed": dict(self.reviewed),
            "unreviewed_disagreements": self.unreviewed,
            "unmatched_companies": [{"dataset": d, "company": c, "rows": n} for (d, c), n in self.unmatched.most_common()],
            "per_dataset": {k: pc(v) for k, v in self.per_dataset.items()},
            "per_dataset_curated_owner": {k: pc(v) for k, v in self.per_dataset_curated.items()},
            "missed_cn": self.missed_cn, "missed_ru": self.missed_ru,
        }


def load_reviewed(path: Path = REVIEWED) -> dict[tuple[str, str], dict[str, Any]]:
    """The reviewed disagreements, by (domain, dataset); checks each record's fields. A record
    names ``domain`` or ``domains`` (a list) and ``dataset`` or ``datasets``: one verdict for
    every (domain, dataset) pair it names."""
    if not path.is_file():
        return {}
    data = tomllib.loads(path.read_text("utf-8"))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for i, rec in enumerate(data.get("disagreement", [])):
        for key in ("dataset_company", "datareach_owner", "who_is_right", "reason", "source"):
            if not isinstance(rec.get(key), str) or not rec[key]:
                raise ValueError(f"{path}: disagreement {i + 1}: {key!r} is required")
        domains = rec.get("domains", [rec.get("domain")])
        datasets = rec.get("datasets", [rec.get("dataset")])
        for key, values in (("domain(s)", domains), ("dataset(s)", datasets)):
            if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
                raise ValueError(f"{path}: disagreement {i + 1}: {key} is required")
        if rec["who_is_right"] not in VERDICTS:
            raise ValueError(f"{path}: disagreement {i + 1}: who_is_right must be one of {VERDICTS}")
        for d in domains:
            for ds in datasets:
                out[(d, ds)] = rec
    return out


def compute(rows: Iterable[Row], kb: Any, cmap: Any, reviewed: Mapping[tuple[str, str], dict[str, Any]],
            date: str = DATE) -> Result:
    from datareach.enrich.ownership import OwnershipResolver
    from datareach.kb.index import name_key

    res = OwnershipResolver(kb)
    rows = list(rows)
    owners: dict[str, Owner | None] = {}

    def owner(host: str) -> Owner | None:
        if host not in owners:
            own, reach = res.resolve(host, date)
            if own is None:
                owners[host] = None
            else:
                info = res.chain(own["entity"], date)
                origin = kb.domain_origin.get(own.get("matched") or "", "curated")
                owners[host] = Owner(
                    own["entity"], kb.entities[own["entity"]]["origin"],
                    frozenset(e for e, _ in info["controlled"]), info["ultimate_parent"]["entity"],
                    frozenset(r["jurisdiction"] for r in reach if r["basis"] == "owner"),
                    origin.split(":", 1)[1].rsplit("-", 1)[0] if ":" in origin else "")
        return owners[host]

    by_name: dict[str, str] = {}
    for eid, e in kb.entities.items():  # curated entities first (dicts keep insertion order)
        for n in [e["name"], *e.get("aliases", [])]:
            by_name.setdefault(name_key(n), eid)

    out = Result()
    # coverage figures, by unique domain
    app_hosts = {r.domain for r in rows if r.dataset == "ddg-app"}
    out.ddg_app = (sum(1 for d in app_hosts if owner(d)), len(app_hosts))
    out.ddg_app_country = (sum(1 for d in app_hosts if (o := owner(d)) is not None and kb.entities[o.ultimate]["hq"]),
                           len(app_hosts))
    for group, attr, missed in ((CN_GROUP, "cn", out.missed_cn), (frozenset({"RU"}), "ru", out.missed_ru)):
        doms = sorted({r.domain for r in rows if r.country in group})
        hit = 0
        for d in doms:
            o = owner(d)
            if o is not None and o.reach & group:
                hit += 1
            else:
                missed.append(d)
        setattr(out, attr, (hit, len(doms)))
    for ds in DATASETS:
        ds_doms = {r.domain for r in rows if r.dataset == ds}
        if ds_doms:
            owned = [owner(d) for d in ds_doms]
            out.per_dataset[ds] = (sum(1 for o in owned if o), len(ds_doms))
            out.per_dataset_curated[ds] = (sum(1 for o in owned if o and o.origin == "curated"), len(ds_doms))

    # agreement, by (domain, dataset) row
    company_domains: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        company_domains[(r.dataset, r.company)].append(r.domain)
    seen: set[tuple[str, str]] = set()
    for r in rows:
        o = owner(r.domain)
        if o is None or (r.domain, r.dataset) in seen:
            continue
        seen.add((r.domain, r.dataset))
        if o.source_kind and o.source_kind == KIND.get(r.dataset):
            out.verdicts["same dataset (not counted)"] += 1  # our owner comes from this very dataset
            continue
        rule = cmap.lookup(KIND.get(r.dataset, r.dataset), r.company) if cmap is not None else None
        ent: str | None = None
        if rule is not None and rule.entity:
            ent = rule.entity
        elif rule is not None:  # a country-only mapping: the company is not an entity we model
            ent = None
        else:
            ent = by_name.get(name_key(r.company))
            if ent is None and kb.entities[o.entity]["origin"] != "curated" \
                    and name_key(kb.entities[o.entity]["name"]) == name_key(r.company):
                ent = o.entity
        if ent is None and rule is None:
            others = [owner(d) for d in company_domains[(r.dataset, r.company)] if d != r.domain]
            tops = Counter(x.ultimate for x in others if x is not None)
            if tops:
                top, n = tops.most_common(1)[0]
                if n >= 2 and n * 2 > len(others):
                    ent = top
        if ent is None or ent not in kb.entities:
            out.unmatched[(r.dataset, r.company)] += 1
            continue
        if ent == o.entity:
            verdict = "owner"
        elif ent in o.chain or ent == o.ultimate:
            verdict = "chain"
        else:
            info = res.chain(ent, date)
            theirs = {e for e, _ in info["controlled"]}
            verdict = "different level" if o.entity in theirs or o.ultimate in theirs else "disagree"
            if verdict == "disagree" and info["ultimate_parent"]["entity"] == o.ultimate:
                verdict = "chain"  # siblings under one ultimate parent
        out.verdicts[verdict] += 1
        if o.origin == "curated":
            out.verdicts_curated[verdict] += 1
        if verdict == "disagree":
            rec = {"domain": r.domain, "dataset": r.dataset, "dataset_company": r.company,
                   "dataset_entity": ent, "datareach_owner": o.entity, "datareach_ultimate": o.ultimate}
            out.disagreements.append(rec)
            rv = reviewed.get((r.domain, r.dataset))
            if rv is None:
                out.unreviewed.append(rec)
            else:
                out.reviewed[rv["who_is_right"]] += 1
    return out


def render(res: Result) -> str:
    def line(label: str, pair: tuple[int, int], target: float | None = None) -> str:
        t = f"   (target >= {target:.0%}: {'met' if Result.share(pair) >= target else 'NOT met'})" if target else ""
        return f"  {label:<58} {pair[0]:>6} / {pair[1]:<6} {Result.share(pair):7.1%}{t}"

    out = ["coverage of the shipped knowledge base (curated + shipped datasets + mappings; no user imports)",
           line("DuckDuckGo app tracker list: hosts with an owner", res.ddg_app, TARGETS["ddg_app"]),
           line("  ... whose ultimate parent has a known country", res.ddg_app_country),
           line("domains of CN/HK/MO companies: owner chain reaches CN", res.cn, TARGETS["cn"]),
           line("domains of RU companies: owner chain reaches RU", res.ru, TARGETS["ru"]),
           line("agreement with the datasets' owners (raw)", res.agreement, TARGETS["agreement"]),
           line("agreement, reviewed disagreements counted by verdict", res.agreement_after_review),
           line("agreement where our owner is a curated entity (raw)", res.agreement_curated),
           f"  verdicts: {dict(res.verdicts)}; reviewed disagreements: {dict(res.reviewed)}; "
           f"UNREVIEWED disagreements: {len(res.unreviewed)}",
           f"  rows whose company could not be identified (no [[map]], name or consensus): "
           f"{sum(res.unmatched.values())} rows of {len(res.unmatched)} companies",
           "per dataset: domains with an owner (any origin / curated owner only)"]
    for ds, pair in res.per_dataset.items():
        cur = res.per_dataset_curated[ds]
        out.append(line(ds, pair) + f"   curated only {Result.share(cur):6.1%}")
    if res.unreviewed:
        out.append("unreviewed disagreements (add them to benchmarks/coverage-disagreements.toml):")
        for rec in res.unreviewed[:200]:
            out.append(f"  {rec['domain']} [{rec['dataset']}] dataset: {rec['dataset_company']} ({rec['dataset_entity']})"
                       f"; datareach: {rec['datareach_owner']} > {rec['datareach_ultimate']}")
        if len(res.unreviewed) > 200:
            out.append(f"  ... and {len(res.unreviewed) - 200} more (--json)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=Path, required=True, help="directory holding the dataset repositories")
    ap.add_argument("--date", default=DATE)
    ap.add_argument("--json", type=Path, help="write every figure and list as JSON here")
    ap.add_argument("--toml-stubs", type=Path, help="write review stubs for the unreviewed disagreements here")
    args = ap.parse_args(argv)
    if not args.datasets.is_dir():
        ap.error(f"{args.datasets} is not a directory (see --help: how to get the datasets)")

    from datareach.kb import knowledge_base
    from datareach.kb.index import DATA_DIR
    from datareach.kb.mappings import read_mappings

    kb = knowledge_base(use_imports=False)
    cmap = read_mappings(DATA_DIR, kb.entities)
    rows = load_rows(args.datasets)
    if not rows:
        ap.error(f"no dataset found in {args.datasets}")
    res = compute(rows, kb, cmap, load_reviewed(), args.date)
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res.to_json(), indent=1, ensure_ascii=False), "utf-8")
    if args.toml_stubs:
        with args.toml_stubs.open("w", encoding="utf-8") as f:
            for rec in res.unreviewed:
                f.write("[[disagreement]]\n")
                for k in ("domain", "dataset", "dataset_company", "datareach_owner"):
                    f.write(f"{k} = {json.dumps(rec[k], ensure_ascii=False)}\n")
                f.write('who_is_right = ""\nreason = ""\nsource = ""\n\n')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
