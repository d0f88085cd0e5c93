"""The Spark engine's parts (datareach.engine.spark), on Spark in local[2].

* the session: offline, UTC, Arrow;
* real Zeek logs (the Zeek project's own test baselines and the WRCCDC 2018 logs, in
  tests/data/logs/zeek: see its README) as the raw views ``zeek_<kind>``, checked value by value
  against a plain reading of the same files written here from Zeek's documented format;
  rotated ``.gz`` files with ':' in their names; JSON lines (ISO 8601 times) give the same
  values as the TSV form of the same log;
* the destination stages run on the executors (mapInArrow) give the very table the local
  engine's stages give.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from datareach.engine.spark import (
    ZEEK_FIELD_TYPES,
    enrich_partitions,
    enrich_payload,
    payload_size,
    register_zeek,
    spark_type,
    zeek_column,
)

ZEEK = Path(__file__).resolve().parent / "data" / "logs" / "zeek"


@dataclass
class Log:
    """A log file as ``sources.logs`` describes it (the attributes register_zeek reads)."""

    path: Path
    kind: str
    form: str
    fields: list[str] | None = None
    types: list[str] | None = None
    separator: str | None = "\t"
    set_separator: str | None = ","
    empty_field: str | None = "(empty)"
    unset_field: str | None = "-"
    input_index: int = 0


def _open(path: Path) -> Any:
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def tsv_log(path: Path, kind: str, input_index: int = 0) -> Log:
    """A Zeek TSV log's header, read as Zeek's ASCII writer documents it."""
    head: dict[str, str] = {}
    with _open(path) as f:
        for line in f:
            if not line.startswith("#"):
                break
            if line.startswith("#separator "):
                head["separator"] = bytes(line.split(" ", 1)[1].strip(), "ascii").decode("unicode_escape")
            elif line.startswith("#") and not line.startswith("##"):
                key, _, value = line.rstrip("\n").partition(head.get("separator", "\t"))
                head[key[1:]] = value
    sep = head["separator"]
    return Log(path, kind, "tsv", head["fields"].split(sep), head["types"].split(sep), sep, head["set_separator"],
               head["empty_field"], head["unset_field"], input_index)


def expected_rows(log: Log) -> list[dict[str, Any]]:
    """The rows of a TSV log as the raw views must have them: '-' None, '(empty)' '' or [],
    sets split, numbers and booleans parsed, what does not parse (masked times) None."""
    assert log.fields and log.types
    rows = []
    with _open(log.path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            row: dict[str, Any] = {}
            for name, typ, text in zip(log.fields, log.types, line.rstrip("\n").split(log.separator), strict=True):
                kind = spark_type(typ)
                value: Any
                if text == log.unset_field:
                    value = None
                elif kind == "ARRAY<STRING>":
                    value = [] if text == log.empty_field else text.split(log.set_separator)
                elif kind == "STRING":
                    value = "" if text == log.empty_field else text
                elif kind == "BOOLEAN":
                    value = {"T": True, "F": False}.get(text)
                else:
                    try:
                        value = float(text) if kind == "DOUBLE" else int(text)
                    except ValueError:
                        value = None
                row[zeek_column(name)] = value
            row["_input"] = log.input_index
            rows.append(row)
    return rows


def test_session_is_offline_utc_and_arrow(spark: Any) -> None:
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.ui.enabled") == "false"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert conf.get("spark.jars.packages") is None
    assert spark.sparkContext.master == "local[2]"


@pytest.mark.parametrize("name", ["wikipedia", "gre-over-udp", "wikipedia-zeek3.3"])
def test_zeek_tsv_views_hold_the_logs_values(spark: Any, name: str) -> None:
    """Every log of a trace directory (Zeek's test baselines: masked times stay NULL) as views,
    each row and value as Zeek's format documents it, typed as the contract says."""
    logs = [tsv_log(p, p.stem, 3) for p in sorted((ZEEK / name).glob("*.log"))]
    assert logs
    frames = register_zeek(spark, logs)
    assert sorted(frames) == sorted(log.kind for log in logs)
    for log in logs:
        view = spark.table(f"zeek_{log.kind}")
        assert log.fields and log.types
        assert view.columns == [zeek_column(f) for f in log.fields] + ["_input"]
        types = dict(view.dtypes)
        for f, t in zip(log.fields, log.types, strict=True):
            assert types[zeek_column(f)] == spark_type(t).lower()
        assert types["_input"] == "int"
        got = [r.asDict() for r in view.collect()]
        want = expected_rows(log)
        assert len(got) == len(want) > 0
        key = lambda r: json.dumps(r, sort_keys=True, default=str)  # noqa: E731
        assert sorted(got, key=key) == sorted(want, key=key)


def test_rotated_gz_logs_with_colons_in_their_names(spark: Any) -> None:
    """Zeek's rotated names (conn.19:00:00-20:00:00.log.gz) read through Spark's gzip codec,
    with real (unmasked) times parsed to the microsecond."""
    logs = [tsv_log(p, p.name.split(".")[0]) for p in sorted((ZEEK / "rotated").rglob("*.log.gz"))]
    assert {log.kind for log in logs} == {"conn", "http"} and all(":" in log.path.name for log in logs)
    register_zeek(spark, logs)
    for log in logs:
        got = [r.asDict() for r in spark.table(f"zeek_{log.kind}").collect()]
        want = expected_rows(log)
        assert got == want
        assert all(isinstance(r["ts"], float) for r in got)


def test_json_lines_give_the_tsv_values(spark: Any) -> None:
    """The same WRCCDC 2018 DNS log in both of Zeek's forms: TSV (epoch seconds) and JSON lines
    with ISO 8601 times (JSON::TS_ISO8601; its first 60 records) give the same times, names and
    answers."""
    tsv = tsv_log(ZEEK / "wrccdc-2018" / "dns.log", "dns", 0)
    register_zeek(spark, [tsv])
    want = spark.table("zeek_dns").select("ts", "uid", "id_orig_h", "id_resp_p", "query", "answers", "AA",
                                          "trans_id").collect()
    register_zeek(spark, [Log(ZEEK / "wrccdc-2018" / "dns.ndjson", "dns", "json", input_index=0)])
    view = spark.table("zeek_dns")
    types = dict(view.dtypes)
    assert (types["ts"], types["id_resp_p"], types["answers"], types["AA"]) == ("double", "bigint", "array<string>",
                                                                                 "boolean")
    got = view.select("ts", "uid", "id_orig_h", "id_resp_p", "query", "answers", "AA", "trans_id").collect()
    assert len(got) == 60
    assert got == want[:60]


def test_views_have_the_columns_the_sql_asks_for(spark: Any) -> None:
    """A field no file has (conn's orig_l2_addr in logs without it), or a kind no file is of,
    is still a column of its type (NULL) when the SQL asks for it."""
    logs = [tsv_log(ZEEK / "wikipedia" / "conn.log", "conn")]
    frames = register_zeek(spark, logs, {"conn": {"orig_l2_addr": "string", "community_id": "string"},
                                         "quic": {"ts": "time", "uid": "string", "server_name": "string"}})
    conn = dict(frames["conn"].dtypes)
    assert conn["orig_l2_addr"] == "string" and frames["conn"].columns[-1] == "_input"
    assert frames["conn"].where("orig_l2_addr IS NOT NULL").count() == 0
    assert frames["quic"].count() == 0 and frames["quic"].columns == ["ts", "uid", "server_name", "_input"]


def test_field_types_table_is_spelled_as_zeek_spells_them() -> None:
    for t in ZEEK_FIELD_TYPES.values():
        assert t in {"time", "interval", "count", "int", "port", "double", "bool", "string", "addr", "enum"} or \
            t.startswith(("set[", "vector["))


# -- the destination stages on the executors ------------------------------------------------------


def destinations(n: int, seed: int = 1) -> pa.Table:
    """``n`` destination rows before the destination stages: hosts under the knowledge base's
    domains (and names it does not know), 1-3 public servers each."""
    from datareach.kb import knowledge_base
    from datareach.schema import Destination, arrow_schema

    rng = random.Random(seed)
    domains = sorted(knowledge_base().domains)
    schema = arrow_schema(Destination)
    rows: dict[str, list[Any]] = {f.name: [None] * n for f in schema}
    for i in range(n):
        d = domains[(i * 7919) % len(domains)]
        host = d if i % 3 == 0 else f"h{i}.{d}" if i % 3 == 1 else f"h{i}.unknown-{i}.example"
        ips = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
               for _ in range(rng.randint(1, 3))]
        rows["id"][i], rows["host"][i], rows["ips"][i], rows["uids"][i] = f"D{i}", host, ips, [f"C{i}"]
        rows["servers"][i] = json.dumps([{"ip": ip, "ip_scope": None, "country": None, "asn": None, "as_org": None}
                                         for ip in ips])
        rows["first_seen"][i] = "2026-11-01T00:00:00Z" if i % 5 else None
        rows["cname_chain"][i], rows["inputs"][i], rows["reach"][i] = [], [0], "[]"
        rows["countries"][i], rows["data_types"][i], rows["data_categories"][i] = [], [], []
        rows["bytes_out"][i] = i
    return pa.table([pa.array(rows[f.name], f.type) for f in schema], schema=schema)


def test_destination_stages_on_executors_give_the_local_table(spark: Any) -> None:
    from datareach.engine import AuditOptions, Pipeline
    from datareach.engine.local import destination_stages, enrich_context, prepare
    from datareach.enrich.stages import DESTINATION_STAGES
    from datareach.kb import knowledge_base

    kb = knowledge_base()
    table = destinations(3000)
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
