"""DuckDB and Spark give the same result on the same logs.

Each case is audited twice with the same options (the ``us-doj-bulk-data`` policy, Parquet
tables written with ``-o DIR/``): by the DuckDB engine and by the Spark engine in ``local[2]``
(its readers, the same SQL in Spark's dialect, the destination stages on its executors). Every
Parquet table must hold the same rows (in any order: neither engine promises one) with the same
column names and types, and the audits' organisation sections must be equal.

The cases: real Zeek logs (tests/data/logs/zeek: the Zeek project's test baselines) as one
audit of several inputs, and rotated ``.gz`` files with ':' in their names; real Suricata EVE records (tests/data/logs/eve); and logs written by
benchmarks/generate_logs.py in each form (Zeek TSV, Zeek JSON, EVE), rotated hourly over two days,
with planted bulk-data counterparties.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datareach.api import build_pipeline
from datareach.engine import AuditOptions
from datareach.engine.duckdb import DuckDBEngine
from datareach.engine.spark import SparkEngine

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "tests" / "data" / "logs"
TABLES = ("connections", "destinations", "owners", "clients", "bulk")

def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_logs", ROOT / "benchmarks" / "generate_logs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_logs"] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def arrow_type(t: pa.DataType) -> str:
    """A column's type as compared (a list's item field is named by its writer)."""
    if pa.types.is_large_string(t):
        return "string"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{arrow_type(t.value_type)}>"
    return str(t)


def audit_both(spark: Any, inputs: list[Path], out: Path) -> tuple[Any, Any]:
    """The audits of ``inputs`` by both engines, their Parquet tables in out/duckdb, out/spark."""
    audits = []
    for name, engine in (("duckdb", DuckDBEngine(threads=2)), ("spark", SparkEngine(spark=spark))):
        options = AuditOptions(policies=["us-doj-bulk-data"], output_dir=str(out / name))
        audits.append(engine.run([str(p) for p in inputs], build_pipeline(options), options))
    return audits[0], audits[1]


def assert_same_tables(out: Path) -> int:
    """Every Parquet table the same on both sides; returns the rows compared."""
    n = 0
    for table in TABLES:
        want = pq.read_table(out / "duckdb" / f"{table}.parquet")
        got = pq.read_table(out / "spark" / f"{table}.parquet")
        assert got.column_names == want.column_names, table
        assert [arrow_type(f.type) for f in got.schema] == [arrow_type(f.type) for f in want.schema], table
        rows = [sorted(json.dumps(r, sort_keys=True) for r in t.to_pylist()) for t in (got, want)]
        assert rows[0] == rows[1], table
        n += want.num_rows
    return n


def assert_same_organisation(a: Any, b: Any) -> None:
    """The organisation sections equal, every count included."""
    assert a.organisation == b.organisation


def test_real_zeek_logs(spark: Any, tmp_path: Path) -> None:
    zeek = LOGS / "zeek"
    inputs = [zeek / "wikipedia", zeek / "quic-chromium", zeek / "gre-over-udp", zeek / "conn-orig_l2_addr.log",
              zeek / "dhcp.log"]
    duck, spark_audit = audit_both(spark, inputs, tmp_path)
    assert assert_same_tables(tmp_path) > 50
    assert_same_organisation(duck, spark_audit)
    assert list(duck.destinations) == list(spark_audit.destinations)


def test_rotated_gzip_logs(spark: Any, tmp_path: Path) -> None:
    duck, spark_audit = audit_both(spark, [LOGS / "zeek" / "rotated"], tmp_path)
    assert assert_same_tables(tmp_path) > 10
    assert_same_organisation(duck, spark_audit)


def test_requests_are_read_once(spark: Any, tmp_path: Path) -> None:
    """Each HTTP request the logs hold goes through detection once, also where a uid is in the
    logs twice (gre-over-udp's tunnelled connections; the same trace in two inputs)."""
    duck, spark_audit = audit_both(spark, [LOGS / "zeek" / "gre-over-udp", LOGS / "zeek" / "wikipedia",
                                           LOGS / "zeek" / "rotated"], tmp_path)
    assert spark_audit.organisation["rows"]["requests"] == spark_audit.organisation["rows"]["http"]
    assert duck.organisation["rows"]["requests"] == duck.organisation["rows"]["http"]


def test_real_eve_records(spark: Any, tmp_path: Path) -> None:
    duck, spark_audit = audit_both(spark, sorted((LOGS / "eve").glob("*.json")), tmp_path)
    assert assert_same_tables(tmp_path) > 0
    assert_same_organisation(duck, spark_audit)


@pytest.mark.parametrize("form", ["zeek-tsv", "zeek-json", "eve"])
def test_generated_logs(spark: Any, tmp_path: Path, form: str) -> None:
    generated = _generator().generate(tmp_path / "logs", rows=2000, form=form, days=2, hours=2, gzip=True, seed=7,
                                      plants=["alog.umeng.com:location:40", "mc.yandex.ru:identifiers:25"])
    duck, spark_audit = audit_both(spark, [generated.out_dir], tmp_path / "out")
    assert assert_same_tables(tmp_path / "out") > 2000
    assert_same_organisation(duck, spark_audit)
    assert list(duck.destinations) == list(spark_audit.destinations)
    # (the plants were counted: the same on both sides, as compared above)
    bulk = {(r["counterparty_id"], r["category"]): r["identified"]
            for r in pq.read_table(tmp_path / "out" / "spark" / "bulk.parquet").to_pylist()}
    assert bulk[("umeng", "us-doj:precise-geolocation")] == 40
    assert bulk[("yandex-llc", "us-doj:covered-personal-identifiers")] == 25
