"""The bulk-data count of a log audit (28 CFR 202.205), on generated logs with planted covered
counterparties: the verdict is "above" exactly where a plant exceeds its threshold, and the
bounds are stated. Also the naming of connections by DNS (the SQL as-of join) checked against
a plain-Python reading of the same logs."""

from __future__ import annotations

import bisect
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from benchmarks.generate_logs import generate

import datareach

PRECISE_GEOLOCATION = "us-doj:precise-geolocation"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("planted")
    # 1,001 devices send their location to TikTok (threshold: more than 1,000 devices), exactly
    # 1,000 to Baidu (not "more than"), 40 to Yandex with their e-mail addresses
    generate(out, rows=12_000, form="zeek-tsv", days=1, seed=3, clients=1500, tail=300,
             plants=["log.tiktokv.com:location:1001", "hm.baidu.com:location:1000", "mc.yandex.ru:identifiers:40"])
    return out


def bulk_rows(audit: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(b["counterparty_id"], b["category"]): b for b in audit.organisation["bulk"]}


def test_above_exactly_where_a_plant_exceeds_its_threshold(planted: Path) -> None:
    audit = datareach.audit([planted], engine="duckdb", policies=["us-doj-bulk-data"])
    rows = bulk_rows(audit)
    geo = {k[0]: b for k, b in rows.items() if k[1] == PRECISE_GEOLOCATION}
    tiktok = next(b for k, b in geo.items() if "tiktok" in k)
    baidu = next(b for k, b in geo.items() if "baidu" in k)
    assert (tiktok["identified"], tiktok["threshold"], tiktok["unit"], tiktok["verdict"]) == (1001, 1000, "devices", "above")
    assert (baidu["identified"], baidu["threshold"], baidu["verdict"]) == (1000, 1000, "cannot tell")
    # (TikTok also receives the devices' advertising IDs: its combined data (202.205(g): the
    # lowest threshold of the categories it combines) is above too; nothing else is)
    above = {(b["counterparty_id"], b["category"]) for b in rows.values() if b["verdict"] == "above"}
    assert above == {(tiktok["counterparty_id"], PRECISE_GEOLOCATION), (tiktok["counterparty_id"], "us-doj:combined")}
    # the reasons and the bounds say what the count can and cannot show
    assert "365" in baidu["reason"]  # (one day of logs: the rule counts twelve months)
    for b in rows.values():
        assert "NAT" in b["bounds"] and b["bounds"]
    yandex = [b for k, b in rows.items() if "yandex" in k[0]]
    assert yandex and all(b["verdict"] != "above" for b in yandex)
    assert any(b["unit"] == "persons" and b["identified"] == 40 for b in yandex)


def test_the_gate_follows_the_bulk_verdict(planted: Path, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "datareach", "audit", str(planted), "--policy", "us-doj-bulk-data",
                          "--format", "junit", "-o", str(tmp_path / "j.xml")], capture_output=True, text=True)
    assert run.returncode == 3, run.stderr
    junit = (tmp_path / "j.xml").read_text()
    assert "us-doj-bulk-data.bulk" in junit and "<failure" in junit
    # without the policy the counts are information, not a gate
    run = subprocess.run([sys.executable, "-m", "datareach", "audit", str(planted), "--format", "json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert any(b["verdict"] == "above" for b in json.loads(run.stdout)["organisation"]["bulk"])


def _zeek(path: Path) -> list[dict[str, str]]:
    fields: list[str] = []
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields\t"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            out.append(dict(zip(fields, line.split("\t"), strict=True)))
    return out


def test_dns_naming_agrees_with_a_plain_python_as_of_join(tmp_path: Path) -> None:
    generate(tmp_path, rows=6000, form="zeek-tsv", days=1, seed=5, clients=200, tail=200)
    # the reference: per (client, address), the latest answer at or before the connection's
    # start + 1 s (ties: the greatest name); only connections no hello or request named
    answers: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for r in _zeek(tmp_path / "dns.log"):
        if r["answers"] in ("-", "(empty)"):
            continue
        for a in r["answers"].split(","):
            if a.replace(".", "").isdigit() or ":" in a:
                answers[(r["id.orig_h"], a)].append((float(r["ts"]), r["query"].lower().rstrip(".")))
    for v in answers.values():
        v.sort()
    named = {r["uid"] for name in ("ssl.log", "quic.log") if (tmp_path / name).exists()
             for r in _zeek(tmp_path / name) if r.get("server_name", "-") != "-"}
    named |= {r["uid"] for r in _zeek(tmp_path / "http.log") if r["host"] != "-"}
    want: dict[str, str] = {}
    for c in _zeek(tmp_path / "conn.log"):
        if c["uid"] in named:
            continue
        rows = answers.get((c["id.orig_h"], c["id.resp_h"]), [])
        i = bisect.bisect_right(rows, (float(c["ts"]) + 1.0, "\uffff"))
        if i:
            want[c["uid"]] = rows[i - 1][1]
    assert len(want) > 100  # (the generator looks names up before a good part of its connections)
    out = tmp_path / "out"
    datareach.audit([tmp_path], engine="duckdb", output_dir=out)
    import pyarrow.parquet as pq

    conns = pq.read_table(out / "connections.parquet").to_pylist()
    got = {c["uid"]: c["host"] for c in conns if c["name_source"] == "dns"}
    assert got == want


def test_a_new_covered_counterparty_is_a_regression_between_two_periods(planted: Path) -> None:
    import copy

    from datareach.report.diff import diff_audits, diff_exit_status

    new = datareach.audit([planted], engine="duckdb").to_dict()
    covered = [o for o in new["organisation"]["owners"] if o["covered"]]
    assert {o["owner_id"] for o in covered} >= {"tiktok-pte"}
    old = copy.deepcopy(new)  # the earlier period: the same, without TikTok's traffic
    old["organisation"]["owners"] = [o for o in old["organisation"]["owners"] if o["owner_id"] != "tiktok-pte"]
    d = diff_audits(old, new)
    assert d["summary"]["covered_counterparties_added"] == ["TikTok Pte. Ltd."]
    assert d["summary"]["regression"] and diff_exit_status(d) == 3
    back = diff_audits(new, old)
    assert back["summary"]["covered_counterparties_removed"] == ["TikTok Pte. Ltd."]
    assert not back["summary"]["regression"]


def test_a_memory_limit_reached_is_said_with_what_to_change(tmp_path: Path) -> None:
    from datareach.engine import EngineLimitError

    generate(tmp_path / "logs", rows=60_000, form="zeek-tsv", seed=2, clients=500, tail=200)
    with pytest.raises(EngineLimitError, match=r"memory limit \(4MB\) while naming connections.*--memory-limit"):
        datareach.audit([tmp_path / "logs"], engine="duckdb", memory_limit="4MB")
    run = subprocess.run([sys.executable, "-m", "datareach", "audit", str(tmp_path / "logs"), "--memory-limit", "4MB"],
                         capture_output=True, text=True)
    assert run.returncode == 4 and "--memory-limit" in run.stderr and "internal error" not in run.stderr
