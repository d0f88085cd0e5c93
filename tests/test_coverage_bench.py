"""The coverage benchmark's computation (benchmarks/bench_coverage.py) on a tiny hand-made dataset
directory: an unattributed Chinese domain lowers the CN figure, a wrong dataset owner is an
unreviewed disagreement until it is reviewed."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bench_coverage import compute, main
from benchmarks.coverage_data import load_rows

from datareach.kb import knowledge_base
from datareach.kb.mappings import CompanyMap


def _datasets(root: Path) -> Path:
    app = root / "tracker-blocklists" / "app"
    app.mkdir(parents=True)
    (app / "android-tds.json").write_text(json.dumps({"trackers": {
        "graph.facebook.com": {"owner": {"name": "Facebook, Inc."}},
        "nobody-knows-this.example": {"owner": {"name": "Unknown Ads"}},
    }}))
    xray = root / "xray" / "analysis" / "companyData"
    xray.mkdir(parents=True)
    (xray / "company_data_list_9_4_2018.json").write_text(json.dumps([
        {"owner_name": "ByteDance", "country": "cn", "doms": ["tiktokv.com", "not-in-kb-cn.example"]},
        {"owner_name": "Yandex", "country": "ru", "doms": ["yandex.ru"]},
        {"owner_name": "Meta Platforms", "country": "us", "doms": ["facebook.com", "fbcdn.net", "byteoversea.com"]},
    ]))
    return root


def test_figures_on_a_tiny_fixture(tmp_path: Path) -> None:
    rows = load_rows(_datasets(tmp_path))
    kb = knowledge_base(use_imports=False)
    res = compute(rows, kb, CompanyMap(), {})
    assert res.ddg_app == (1, 2)
    assert res.cn == (1, 2) and res.missed_cn == ["not-in-kb-cn.example"]  # the unknown CN domain lowers it
    assert res.ru == (1, 1)
    # byteoversea.com: the dataset says Meta, we say ByteDance: a disagreement, not reviewed
    assert [d["domain"] for d in res.unreviewed] == ["byteoversea.com"]
    agree, total = res.agreement
    assert total == agree + 1 and agree >= 4
    reviewed = {("byteoversea.com", "xray"): {"who_is_right": "datareach"}}
    res2 = compute(rows, kb, CompanyMap(), reviewed)
    assert res2.unreviewed == [] and res2.reviewed["datareach"] == 1
    assert res2.agreement_after_review == (res2.agreement[0] + 1, res2.agreement[1])
    assert res.per_dataset["xray"] == (5, 6)


def test_the_script_runs(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--datasets", str(_datasets(tmp_path / "d")), "--json", str(tmp_path / "out.json")]) == 0
    out = capsys.readouterr().out
    assert "DuckDuckGo app tracker list" in out and "UNREVIEWED disagreements: 1" in out
    assert json.loads((tmp_path / "out.json").read_text())["cn_reach"]["total"] == 2
