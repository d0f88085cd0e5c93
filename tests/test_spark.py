"""The Spark engine's parts (datareach.engine.spark), on Spark in local[2].

* the session: offline, UTC, Arrow;
* real Zeek logs (the Zeek project's own test baselines and the WRCCDC 2018 logs, in
  tests/data/logs/zeek: see its README; TSV and JSON lines, rotated ``.gz`` files with ':' in
  their names) as the raw and normalised views: the DuckDB engine's rows and types (which
  tests/test_zeek_logs.py checks against a plain reading of the files);
* the destination stages run on the executors (mapInArrow) give the very table the local
  engine's stages give.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from datareach.engine.spark import enrich_partitions, enrich_payload, payload_size, register_logs
from datareach.sources.logs import LogSet, discover
from datareach.sources.zeek import NEEDED

ZEEK = Path(__file__).resolve().parent / "data" / "logs" / "zeek"


def arrow_type(t: pa.DataType) -> str:
    """A column's type as compared across engines (Spark gives large strings and lists; a list's
    item field has its engine's name)."""
    if pa.types.is_large_string(t) or pa.types.is_string(t):
        return "string"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{arrow_type(t.value_type)}>"
    return str(t)


def rows(table: pa.Table) -> list[str]:
    """A table's rows as sorted JSON texts (engine order is no order)."""
    return sorted(json.dumps(r, sort_keys=True) for r in table.to_pylist())


def duckdb_view(logs: LogSet, name: str) -> pa.Table:
    from datareach.engine.duckdb import DuckDBEngine
    from datareach.engine.duckdb import register_logs as duck_register

    con = DuckDBEngine(threads=1).connect()
    duck_register(con, logs)
    return con.sql(f"SELECT * FROM {name}").to_arrow_table()


#: (wrccdc-2018: ISO 8601 times in JSON lines, the same double on both engines: microseconds / 1e6)
CASES = ["wikipedia", "wikipedia-zeek3.3", "gre-over-udp", "quic-chromium", "rotated", "wrccdc-2018",
         "conn-orig_l2_addr.log", "dhcp.log", "files-extracted.log", "ssl.log", "x509.log"]


def test_session_is_offline_utc_and_arrow(spark: Any) -> None:
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.ui.enabled") == "false"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert conf.get("spark.jars.packages") is None
    assert spark.sparkContext.master == "local[2]"


@pytest.mark.parametrize("case", CASES)
def test_views_are_duckdbs(spark: Any, case: str) -> None:
    """Real Zeek logs (TSV, JSON lines with ISO 8601 or numeric times, rotated .gz files with ':'
    in their names) as the raw views zeek_<kind> and the normalised views conn, names, dns,
    http, dhcp: the same rows, of the same types, as the DuckDB engine's views."""
    logs = discover([ZEEK / case])
    assert logs.files
    register_logs(spark, logs)
    compared = 0
    for name in [f"zeek_{k}" for k in NEEDED] + ["conn", "names", "dns", "http", "dhcp"]:
        want = duckdb_view(logs, name)
        got = spark.table(name).toArrow()
        assert got.column_names == want.column_names, name
        assert [arrow_type(f.type) for f in got.schema] == [arrow_type(f.type) for f in want.schema], name
        assert rows(got) == rows(want), name
        compared += got.num_rows
    assert compared > 0


# -- the destination stages on the executors ------------------------------------------------------


def test_destination_stages_on_executors_give_the_local_table(spark: Any) -> None:
    from datareach.engine import AuditOptions, Pipeline
    from datareach.engine.local import destination_stages, enrich_context, prepare
    from datareach.enrich.stages import DESTINATION_STAGES
    from datareach.kb import knowledge_base

    kb = knowledge_base()
    from benchmarks.bench_spark_stages import destinations

    table = destinations(3000, undated_every=5)
    ctx = enrich_context(AuditOptions(), kb, prepare(), date="2026-12-01")
    local = destination_stages(Pipeline(destination_stages=DESTINATION_STAGES), table, ctx)
    payload = enrich_payload(spark, kb, date="2026-12-01")
    assert 100_000 < payload_size(payload.value) < 5_000_000  # (the knowledge base, pickled)
    frame = spark.createDataFrame(table).repartition(3)
    result = enrich_partitions(frame, payload).toArrow()
    assert result.schema.equals(local.schema)
    assert result.sort_by("id").equals(local.sort_by("id"))
    owners = [o for o in local.column("owner").to_pylist() if o]
    assert len(owners) > 1000  # (the stages did run: most hosts are the knowledge base's)
