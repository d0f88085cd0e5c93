"""benchmarks/generate_logs.py writes logs that parse as Zeek TSV, Zeek JSON and EVE, with exact plants."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("generate_logs", ROOT / "benchmarks" / "generate_logs.py")
assert _spec and _spec.loader
gen = importlib.util.module_from_spec(_spec)
sys.modules["generate_logs"] = gen  # (its dataclasses look their module up)
_spec.loader.exec_module(gen)

PLANTS = ["alog.umeng.com:location:40", "tracker.example.cn:identifiers:25"]
_ADID = re.compile(r"(?:gaid|idfa)=([0-9a-fA-F-]{36})")


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:  # type: ignore[operator]
        return fh.read().splitlines()


def _zeek_tsv(path: Path) -> tuple[list[str], list[str], int]:
    """(fields, types, rows) of a Zeek TSV file, the rows read back by DuckDB."""
    head = [ln for ln in _lines(path) if ln.startswith("#")]
    assert head[0] == "#separator \\x09" and head[1] == "#set_separator\t,"
    assert head[2] == "#empty_field\t(empty)" and head[3] == "#unset_field\t-"
    assert head[4].startswith("#path\t") and head[5].startswith("#open\t") and head[-1].startswith("#close\t")
    fields, types = head[6].split("\t")[1:], head[7].split("\t")[1:]
    cols = ", ".join(f"'c{k}': 'VARCHAR'" for k in range(len(fields)))
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{path}', delim='\\t', comment='#', header=false, quote='', "
                      f"escape='', auto_detect=false, columns={{{cols}}}, nullstr='-')").fetchone()[0]
    return fields, types, rows


@pytest.mark.parametrize("compress", [False, True])
def test_zeek_tsv_reads_back(tmp_path: Path, compress: bool) -> None:
    res = gen.generate(tmp_path, rows=2001, form="zeek-tsv", plants=PLANTS, seed=1, gzip=compress, clients=300,
                       tail=200)
    ext = ".log.gz" if compress else ".log"
    total = {}
    for kind in gen.ZEEK_KINDS:
        fields, types, rows = _zeek_tsv(tmp_path / f"{kind}{ext}")
        assert fields == [n for n, _ in gen.ZEEK_FIELDS[kind]]
        assert types == [t for _, t in gen.ZEEK_FIELDS[kind]]
        total[kind] = rows
    assert total["conn"] == 2001
    assert total == {k: res.rows[k] for k in gen.ZEEK_KINDS}
    assert total["dns"] > 100 and total["ssl"] > 500 and total["http"] >= 65
    # every data line has as many fields as the header
    for kind in gen.ZEEK_KINDS:
        n = len(gen.ZEEK_FIELDS[kind])
        assert all(len(ln.split("\t")) == n for ln in _lines(tmp_path / f"{kind}{ext}") if not ln.startswith("#"))


def _plant_ids(uris: list[str], host_of: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for uri, host in zip(uris, host_of, strict=True):
        m = _ADID.search(uri or "")
        if m:
            out.setdefault(host, set()).add(m.group(1))
    return out


def test_plants_are_exact_tsv_and_json(tmp_path: Path) -> None:
    for form in ("zeek-tsv", "zeek-json"):
        out = tmp_path / form
        res = gen.generate(out, rows=3000, form=form, plants=PLANTS, seed=2, hours=2, days=2, clients=300, tail=200)
        uris, hosts = [], []
        for path in sorted(out.rglob("http.*")):
            for ln in _lines(path):
                if ln.startswith("#"):
                    continue
                if form == "zeek-json":
                    obj = json.loads(ln)
                    uris.append(obj["uri"])
                    hosts.append(obj["host"])
                else:
                    parts = ln.split("\t")
                    hosts.append(parts[8])
                    uris.append(parts[9])
        ids = _plant_ids(uris, hosts)
        assert len(ids["alog.umeng.com"]) == 40 and len(ids["tracker.example.cn"]) == 25
        assert ids["alog.umeng.com"] == set(res.plant_ids["alog.umeng.com"])
        # rotated layout: a directory per day, Zeek's archive names
        assert (out / "2026-12-02" / "conn.01:00:00-02:00:00.log").exists()
        conn = sum(1 for p in out.rglob("conn.*") for ln in _lines(p) if not ln.startswith("#"))
        assert conn == 3000


def test_zeek_json_is_zeek_like(tmp_path: Path) -> None:
    gen.generate(tmp_path, rows=1500, form="zeek-json", seed=3, clients=200, tail=100)
    for kind in gen.ZEEK_KINDS:
        names = [n for n, _ in gen.ZEEK_FIELDS[kind]]
        for ln in _lines(tmp_path / f"{kind}.log")[:200]:
            obj = json.loads(ln)
            assert list(obj) == [n for n in names if n in obj]  # Zeek's field order, unset fields left out
            assert None not in obj.values()
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_json('{tmp_path}/conn.log', format='newline_delimited')").fetchone()
    assert rows[0] == 1500


@pytest.mark.parametrize("version", [7, 8])
def test_eve_parses_with_plants(tmp_path: Path, version: int) -> None:
    res = gen.generate(tmp_path, rows=2000, form="eve", plants=PLANTS, seed=4, gzip=True, eve_version=version,
                       clients=300, tail=200)
    events = [json.loads(ln) for ln in _lines(tmp_path / "eve.json.gz")]
    kinds: dict[str, int] = {}
    for ev in events:
        kinds[ev["event_type"]] = kinds.get(ev["event_type"], 0) + 1
        assert ev["timestamp"].endswith("+0000") and "flow_id" in ev
    assert kinds["flow"] == 2000 and kinds["tls"] > 500 and kinds["dns"] > 100 and kinds["dhcp"] > 100
    assert sum(kinds.values()) == res.rows["events"]
    dns = [ev["dns"] for ev in events if ev["event_type"] == "dns"]
    if version == 8:
        assert {d["type"] for d in dns} == {"request", "response"} and all("queries" in d for d in dns)
    else:
        assert {d["type"] for d in dns} == {"query", "answer"}
    http = [ev for ev in events if ev["event_type"] == "http"]
    ids = _plant_ids([h["http"]["url"] for h in http], [h["http"]["hostname"] for h in http])
    assert len(ids["alog.umeng.com"]) == 40 and len(ids["tracker.example.cn"]) == 25
    flows = {ev["flow_id"] for ev in events if ev["event_type"] == "flow"}
    assert len(flows) == 2000
    assert all(ev["flow_id"] in flows for ev in events if ev["event_type"] in ("tls", "quic", "http"))


def test_plant_parsing() -> None:
    assert gen.Plant.parse("a.example.com:location:1200") == gen.Plant("a.example.com", "location", 1200)
    with pytest.raises(ValueError):
        gen.Plant.parse("a.example.com:health:10")
