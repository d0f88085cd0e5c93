"""The Spark engine: the same SQL and the same enrich stages, across machines.

For a network whose logs do not fit one machine's disk or day: ``datareach audit LOGS --engine
spark --master spark://host:7077`` (or ``spark-submit``, README). Spark reads the logs where they
lie, runs the normalisation and the naming join as SQL (the statements of
:mod:`datareach.engine.logsql` in their Spark dialect, the very ones the DuckDB engine runs), and
ships the destination stages of :mod:`datareach.enrich.stages` to the executors unchanged with
``mapInArrow``: each partition of destination rows arrives as Arrow record batches, the stages
run on them as they run in the local engine, and the batches go back to Spark.

What this module holds:

* :func:`spark_session` -- a session for the engine: ``local[2]`` by default or the ``--master``
  URL, offline (no UI, no package downloads, quiet logging), UTC, Arrow on, bounded driver
  memory;
* :func:`register_zeek` -- Zeek TSV and JSON-lines logs as the raw views ``zeek_<kind>`` the
  normalisation SQL of :mod:`datareach.sources.zeek` reads (the DuckDB engine registers the same
  views with the same columns and types);
* :func:`enrich_payload` and :func:`enrich_partitions` -- what the executors need (the knowledge
  base, the reach options, the date, the findings; broadcast once) and the destination stages
  run on each partition with a context made once per Python worker.
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import Broadcast
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from datareach.enrich.ownership import ReachOptions
    from datareach.enrich.stages import EnrichContext, Stage

__all__ = ["DEFAULT_MASTER", "EnrichPayload", "ZeekLog", "enrich_partitions", "enrich_payload", "register_zeek",
           "spark_session", "spark_type", "zeek_column"]

#: The master when ``--master`` is not given: this machine, two cores (what the tests use).
DEFAULT_MASTER = "local[2]"

#: The engine's settings. Offline: no web UI, no console progress bar, no packages fetched
#: (``spark.jars.packages`` is never set); UTC, so that timestamps read and written do not depend on
#: the machine's zone; Arrow between the JVM and Python (``mapInArrow`` needs it, ``toPandas``
#: and ``createDataFrame`` use it); ANSI SQL as Spark 4 has it by default (the readers cast with
#: ``try_cast``, as DuckDB's ``TRY_CAST``).
SESSION_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.sources.ignoreCorruptFiles": "false",
    # a Python worker serves many tasks in turn: the stages' context is made once per worker
    "spark.python.worker.reuse": "true",
    # local files without Hadoop's checksum side files: it looks for '.NAME.crc' beside each file
    # read, a relative path that Hadoop cannot make when NAME holds ':' (Zeek's rotated logs,
    # conn.19:00:00-20:00:00.log.gz), and it writes them beside each Parquet file
    "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    # (the Spark jars' own logging: warnings and errors only, on stderr)
    "spark.log.level": "WARN",
}
#: Extra settings for a ``local[...]`` master: this machine's loopback, few shuffle partitions.
LOCAL_CONF: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
}


def spark_session(master: str | None = None, *, app_name: str = "datareach", driver_memory: str = "1g",
                  conf: Mapping[str, str] | None = None) -> SparkSession:
    """A Spark session for the engine (the active one when it is already running).

    ``master``: ``local[N]``, ``spark://host:port``, ``yarn``, ``k8s://...`` (default
    :data:`DEFAULT_MASTER`). ``driver_memory`` bounds the driver JVM's heap; it only takes effect
    when this call starts the JVM (under ``spark-submit``, its ``--driver-memory`` does).
    ``conf``: more settings, which win over the engine's.
    """
    # executors started by a local master run this very Python (the venv datareach is in);
    # a cluster's executors use what the cluster's settings say (spark.pyspark.python)
    master = master or DEFAULT_MASTER
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # (no look-up of the host's name)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app_name)
    settings = dict(SESSION_CONF)
    if master.startswith("local"):
        settings.update(LOCAL_CONF)
    settings["spark.driver.memory"] = driver_memory
    log4j = Path(__file__).with_name("spark-log4j2.properties")
    if log4j.is_file():
        option = f"-Dlog4j2.configurationFile={log4j.as_uri()}"
        settings["spark.driver.extraJavaOptions"] = option
        if master.startswith("local"):
            settings["spark.executor.extraJavaOptions"] = option
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings["spark.log.level"])
    return spark


# -- Zeek logs as raw views -----------------------------------------------------------------------


class ZeekLog(Protocol):
    """What :func:`register_zeek` needs of a log file (``sources.logs.LogFile`` has it)."""

    @property
    def path(self) -> str | os.PathLike[str]: ...
    @property
    def kind(self) -> str: ...
    @property
    def form(self) -> str: ...
    @property
    def fields(self) -> Sequence[str] | None: ...
    @property
    def types(self) -> Sequence[str] | None: ...
    @property
    def separator(self) -> str | None: ...
    @property
    def set_separator(self) -> str | None: ...
    @property
    def empty_field(self) -> str | None: ...
    @property
    def unset_field(self) -> str | None: ...
    @property
    def input_index(self) -> int: ...


#: Types of the Zeek fields the normalisation reads, for JSON logs (which carry no ``#types``
#: line); a field not listed is read as text. From Zeek's own ``#types`` lines (base scripts).
ZEEK_FIELD_TYPES: dict[str, str] = {
    "ts": "time", "uid": "string", "id.orig_h": "addr", "id.orig_p": "port", "id.resp_h": "addr",
    "id.resp_p": "port", "proto": "enum", "service": "string", "duration": "interval",
    "orig_bytes": "count", "resp_bytes": "count", "conn_state": "string", "local_orig": "bool",
    "local_resp": "bool", "missed_bytes": "count", "history": "string", "orig_pkts": "count",
    "orig_ip_bytes": "count", "resp_pkts": "count", "resp_ip_bytes": "count", "tunnel_parents": "set[string]",
    "orig_l2_addr": "string", "resp_l2_addr": "string", "community_id": "string", "ip_proto": "count",
    # ssl.log / quic.log
    "version": "string", "cipher": "string", "curve": "string", "server_name": "string", "resumed": "bool",
    "established": "bool", "cert_chain_fps": "vector[string]", "client_protocol": "string",
    "client_initial_dcid": "string", "client_scid": "string", "server_scid": "string", "history_": "string",
    # dns.log
    "trans_id": "count", "rtt": "interval", "query": "string", "qclass": "count", "qclass_name": "string",
    "qtype": "count", "qtype_name": "string", "rcode": "count", "rcode_name": "string", "AA": "bool",
    "TC": "bool", "RD": "bool", "RA": "bool", "Z": "count", "answers": "vector[string]",
    "TTLs": "vector[interval]", "rejected": "bool",
    # http.log
    "trans_depth": "count", "method": "string", "host": "string", "uri": "string", "referrer": "string",
    "user_agent": "string", "origin": "string", "request_body_len": "count", "response_body_len": "count",
    "status_code": "count", "status_msg": "string", "tags": "set[enum]", "orig_fuids": "vector[string]",
    "resp_fuids": "vector[string]", "orig_mime_types": "vector[string]", "resp_mime_types": "vector[string]",
    # x509.log
    "fingerprint": "string", "certificate.subject": "string", "san.dns": "vector[string]",
    # dhcp.log
    "uids": "set[string]", "client_addr": "addr", "server_addr": "addr", "mac": "string",
    "host_name": "string", "client_fqdn": "string", "domain": "string", "requested_addr": "addr",
    "assigned_addr": "addr", "lease_time": "interval", "msg_types": "vector[string]",
    # files.log
    "fuid": "string", "tx_hosts": "set[addr]", "rx_hosts": "set[addr]", "conn_uids": "set[string]",
    "source": "string", "depth": "count", "analyzers": "set[string]", "mime_type": "string",
    "filename": "string", "is_orig": "bool", "seen_bytes": "count", "total_bytes": "count",
    "extracted": "string", "sha256": "string", "sha1": "string", "md5": "string",
}


def zeek_column(name: str) -> str:
    """A Zeek field's column name in the raw views: ``id.orig_h`` -> ``id_orig_h``."""
    return name.replace(".", "_")


def spark_type(zeek_type: str) -> str:
    """The SQL type of a Zeek type in the raw views (the DuckDB reader's alike): time and
    interval DOUBLE (epoch seconds), count/int/port BIGINT, double DOUBLE, bool BOOLEAN, sets and
    vectors ARRAY<STRING>, the rest (addr, string, enum, subnet, pattern, ...) STRING."""
    t = zeek_type.strip().lower()
    if t.startswith(("set[", "vector[", "table[")):
        return "ARRAY<STRING>"
    return {"time": "DOUBLE", "interval": "DOUBLE", "double": "DOUBLE", "count": "BIGINT", "int": "BIGINT",
            "port": "BIGINT", "bool": "BOOLEAN"}.get(t, "STRING")


def _sql_text(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _scalar(col: Column, typ: str, *, json: bool) -> Column:
    """A text column cast to ``typ`` (:func:`spark_type`), NULL where it does not parse (the
    masked timestamps of Zeek's test baselines, ``XXXXXXXXXX.XXXXXX``, are NULL on both engines)."""
    from pyspark.sql import functions as F

    if typ == "DOUBLE":
        number = col.try_cast("double")
        if not json:
            return number
        # Zeek's JSON writer gives times as numbers, or as ISO 8601 text (JSON::TS_ISO8601)
        iso = F.unix_micros(col.try_cast("timestamp")) / F.lit(1_000_000.0)
        return F.when(number.isNotNull(), number).otherwise(iso)
    if typ == "BIGINT":
        return col.try_cast("bigint")
    if typ == "BOOLEAN":
        return (F.when(col.isin("T", "true"), F.lit(True)).when(col.isin("F", "false"), F.lit(False))
                .otherwise(F.lit(None).cast("boolean")))
    return col


def _tsv_frame(spark: SparkSession, logs: Sequence[ZeekLog]) -> DataFrame:
    """One group of TSV files of the same kind, header and input, as a raw frame."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    head = logs[0]
    names = list(head.fields or ())
    types = list(head.types or ["string"] * len(names))
    sep = head.separator or "\t"
    set_sep = head.set_separator or ","
    empty = head.empty_field if head.empty_field is not None else "(empty)"
    unset = head.unset_field if head.unset_field is not None else "-"
    raw = StructType([StructField(f"c{i}", StringType(), True) for i in range(len(names))])
    # no quoting and no escapes (Zeek writes neither: a separator inside a value is \xHH),
    # '#' lines (the header, #close) skipped, the unset field NULL
    df = spark.read.csv([_hadoop_path(log.path) for log in logs], schema=raw, sep=sep, comment="#", header=False,
                        nullValue=unset, quote="\u0000", escape="\u0000", mode="PERMISSIVE",
                        ignoreLeadingWhiteSpace=False, ignoreTrailingWhiteSpace=False, multiLine=False,
                        enforceSchema=True)
    cols: list[Column] = []
    for i, (name, ztype) in enumerate(zip(names, types, strict=True)):
        c = F.col(f"c{i}")
        typ = spark_type(ztype)
        if typ == "ARRAY<STRING>":
            # '(empty)' is the empty set; the others are split on the set separator (literal)
            out = F.when(c == F.lit(empty), F.array().cast("array<string>")).otherwise(
                F.split(c, re.escape(set_sep)))
        elif typ == "STRING":
            out = F.when(c == F.lit(empty), F.lit("")).otherwise(c)
        else:
            out = _scalar(c, typ, json=False)
        cols.append(out.cast(typ.lower()).alias(zeek_column(name)))
    cols.append(F.lit(head.input_index).cast("int").alias("_input"))
    return df.select(*cols)


def _json_frame(spark: SparkSession, logs: Sequence[ZeekLog], fields: Sequence[str]) -> DataFrame:
    """One group of JSON-lines files of the same kind and input, as a raw frame with ``fields``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    head = logs[0]
    given = dict(zip(head.fields or (), head.types or (), strict=False))
    types = {f: given.get(f) or ZEEK_FIELD_TYPES.get(f, "string") for f in fields}
    # read as text (a number read as text is its JSON text), then cast as the TSV reader does
    schema = StructType([StructField(f, ArrayType(StringType()) if spark_type(types[f]) == "ARRAY<STRING>"
                                     else StringType(), True) for f in fields])
    # only the lines that hold an object (a '#' comment line, as Zeek's test baselines carry, is
    # no record), parsed by Spark's JSON reader (a malformed line: NULLs)
    lines = spark.read.text([_hadoop_path(log.path) for log in logs])
    df = (lines.where(F.ltrim(F.col("value")).startswith("{"))
          .select(F.from_json(F.col("value"), schema, {"mode": "PERMISSIVE"}).alias("r")).select("r.*"))
    cols: list[Column] = []
    for f in fields:
        typ = spark_type(types[f])
        c = F.col(f"`{f}`")
        cols.append(_scalar(c, typ, json=True).cast(typ.lower()).alias(zeek_column(f)))
    cols.append(F.lit(head.input_index).cast("int").alias("_input"))
    return df.select(*cols)


def _hadoop_path(path: str | os.PathLike[str]) -> str:
    """A local path as Spark reads it: absolute, with Hadoop's glob characters escaped (a rotated
    log's name may hold ':' and, in principle, '[' or '{')."""
    text = str(Path(path).absolute()) if "://" not in str(path) else str(path)
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", text)


def _json_fields(logs: Sequence[ZeekLog]) -> list[str]:
    """The fields of JSON logs: those their spec lists, else read from the first object."""
    import json

    out: dict[str, None] = {}
    for log in logs:
        if log.fields:
            out.update(dict.fromkeys(log.fields))
            continue
        opener = gzip.open if str(log.path).endswith(".gz") else open
        with opener(Path(log.path), "rb") as f:
            for line in f:
                line = line.strip()
                if line.startswith(b"{"):
                    try:
                        out.update(dict.fromkeys(json.loads(line)))
                    except ValueError:
                        continue  # (a malformed line: Spark reads it as NULLs)
                    break
    return list(out)


def register_zeek(spark: SparkSession, files: Iterable[ZeekLog],
                  columns: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, DataFrame]:
    """Register the Zeek logs as temporary views ``zeek_<kind>``, one per kind found.

    Each view has a column per Zeek field (``.`` made ``_``), typed by :func:`spark_type`, and
    ``_input`` (INT) the input's index. TSV: the unset field (``-``) is NULL, the empty field
    (``(empty)``) an empty list or ``''``, sets and vectors split on the set separator, values
    that do not parse as their type NULL; ``.gz`` is read through Spark's codec. Files of one kind
    with different headers are read apart and put together by column name (a field one file
    lacks is NULL). ``columns``: per kind, fields (Zeek names and types) the views must have even
    when no file has them (NULL then), for the SQL that reads them. Returns the frames by kind.
    """
    groups: dict[tuple[Any, ...], list[ZeekLog]] = {}
    for log in files:
        if log.form == "tsv":
            key: tuple[Any, ...] = (log.kind, "tsv", log.input_index, tuple(log.fields or ()), tuple(log.types or ()),
                                    log.separator, log.set_separator, log.empty_field, log.unset_field)
        elif log.form == "json":
            key = (log.kind, "json", log.input_index)
        else:
            continue
        groups.setdefault(key, []).append(log)
    frames: dict[str, list[DataFrame]] = {}
    for key, logs in groups.items():
        frame = _tsv_frame(spark, logs) if key[1] == "tsv" else _json_frame(spark, logs, _json_fields(logs))
        frames.setdefault(key[0], []).append(frame)
    out: dict[str, DataFrame] = {}
    from pyspark.sql import functions as F

    for kind in sorted(set(frames) | set(columns or {})):
        parts = frames.get(kind, [])
        wanted = {zeek_column(f): spark_type(t) for f, t in (columns or {}).get(kind, {}).items()}
        if not parts:
            if not wanted:
                continue
            df = spark.createDataFrame([], ", ".join(f"`{c}` {t}" for c, t in {**wanted, "_input": "INT"}.items()))
        else:
            df = parts[0]
            for more in parts[1:]:
                df = df.unionByName(more, allowMissingColumns=True)
            for c, t in wanted.items():
                if c not in df.columns:
                    df = df.withColumn(c, F.lit(None).cast(t.lower()))
            df = df.select(*[c for c in df.columns if c != "_input"], "_input")
        df.createOrReplaceTempView(f"zeek_{kind}")
        out[kind] = df
    return out


# -- the destination stages on the executors ----------------------------------------------------


@dataclass
class EnrichPayload:
    """What every executor needs to run the destination stages, broadcast once per audit: the
    knowledge base (compiled on the driver, so that the user's imports and the driver's version
    are what the executors use: ~0.7 MB pickled), the reach options, the date facts are judged at
    when a destination has no first_seen, the findings (Arrow IPC), the user's geo files (by the
    names :meth:`SparkContext.addFile` gave them) and whether the knowledge base's imported .mmdb
    files fill the geo data."""

    kb: Any
    reach_options: ReachOptions | None = None
    date: str = ""
    findings_ipc: bytes | None = None
    geo_files: Sequence[str] = ()
    extra_mmdb: Sequence[str] = ()
    stages: Sequence[str] = ("geo", "domains", "ownership", "data_types")
    key: str = field(default_factory=lambda: f"{os.getpid()}-{time.time_ns()}")


def enrich_payload(spark: SparkSession, kb: Any, *, reach_options: ReachOptions | None = None, date: str = "",
                   findings: pa.Table | None = None, geo_db: Sequence[str | os.PathLike[str]] = (),
                   stages: Sequence[Stage] | None = None) -> Broadcast[EnrichPayload]:
    """Broadcast what the executors' stages need (:class:`EnrichPayload`). The user's geo files
    (``geo_db``) are shipped with :meth:`SparkContext.addFile`; the shipped geo data is in the
    package on every executor. The knowledge base's imported .mmdb files are shipped likewise."""
    import pyarrow as pa

    from datareach.enrich.stages import DESTINATION_STAGES

    sc = spark.sparkContext
    names: list[str] = []
    for p in geo_db:
        sc.addFile(str(Path(p).absolute()))
        names.append(Path(p).name)
    extra: list[str] = []
    if not geo_db:
        for p in kb.mmdb_paths:
            sc.addFile(str(Path(p).absolute()))
            extra.append(Path(p).name)
    ipc = None
    if findings is not None and findings.num_rows:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, findings.schema) as w:
            w.write_table(findings)
        ipc = sink.getvalue().to_pybytes()
    payload = EnrichPayload(kb=kb, reach_options=reach_options, date=date, findings_ipc=ipc, geo_files=names,
                            extra_mmdb=extra, stages=[s.name for s in (stages or DESTINATION_STAGES)])
    return sc.broadcast(payload)


#: The stages' context in this Python worker, by payload key (made on the worker's first batch).
_CONTEXTS: dict[str, tuple[EnrichContext, tuple[Stage, ...]]] = {}


def worker_context(payload: EnrichPayload) -> tuple[EnrichContext, tuple[Stage, ...]]:
    """The enrich context of a payload in this process (an executor's Python worker): made once,
    then kept for the worker's next tasks (``spark.python.worker.reuse``)."""
    hit = _CONTEXTS.get(payload.key)
    if hit is not None:
        return hit
    from datareach.engine.local import prepare
    from datareach.enrich.geo import GeoResolver
    from datareach.enrich.ownership import OwnershipResolver
    from datareach.enrich.stages import DESTINATION_STAGES, EnrichContext

    findings = None
    if payload.findings_ipc:
        import pyarrow as pa

        findings = pa.ipc.open_stream(payload.findings_ipc).read_all()
    geo = None
    extra: list[str] = []
    if payload.geo_files or payload.extra_mmdb:
        from pyspark import SparkFiles

        if payload.geo_files:
            geo = GeoResolver([Path(SparkFiles.get(n)) for n in payload.geo_files])
        extra = [SparkFiles.get(n) for n in payload.extra_mmdb]
    ctx = EnrichContext(geo=prepare(geo), extra_mmdb=extra,
                        resolver=OwnershipResolver(payload.kb, payload.reach_options), date=payload.date,
                        findings=findings)
    by_name = {s.name: s for s in DESTINATION_STAGES}
    stages = tuple(by_name[n] for n in payload.stages)
    _CONTEXTS.clear()  # (one audit at a time per worker)
    _CONTEXTS[payload.key] = (ctx, stages)
    return ctx, stages


def stage_schema(schema: StructType, stages: Sequence[Stage]) -> StructType:
    """The schema of a destination frame after ``stages``: its columns, each one a stage fills
    typed as the Destination record declares it (and those it lacks added at the end)."""
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.types import StructType

    from datareach.schema import Destination, arrow_schema

    declared = from_arrow_schema(arrow_schema(Destination))
    provided = {c for s in stages for c in s.provides}
    fields = [declared[f.name] if f.name in provided else f for f in schema.fields]
    have = {f.name for f in fields}
    fields += [declared[c] for c in declared.names if c in provided and c not in have]
    return StructType(fields)


def run_stages(batches: Iterable[pa.RecordBatch], payload: EnrichPayload,
               target: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The destination stages over record batches (the body of a ``mapInArrow`` task)."""
    import pyarrow as pa

    ctx, stages = worker_context(payload)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        t = pa.Table.from_batches([batch])
        for stage in stages:
            t = stage(t, ctx)
        ctx.codec.forget()  # (what it remembers is only for this batch)
        yield from t.select(target.names).cast(target).to_batches()


def enrich_partitions(df: DataFrame, payload: Broadcast[EnrichPayload]) -> DataFrame:
    """``df`` (destination rows: the columns the stages require) with the destination stages run
    on the executors, a record batch at a time (``spark.sql.execution.arrow.maxRecordsPerBatch``
    rows, 10,000 by default)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    from datareach.enrich.stages import DESTINATION_STAGES

    by_name = {s.name: s for s in DESTINATION_STAGES}
    stages = [by_name[n] for n in payload.value.stages]
    out = stage_schema(df.schema, stages)
    target = to_arrow_schema(out)

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return run_stages(batches, payload.value, target)

    return df.mapInArrow(task, out)


def payload_size(payload: EnrichPayload) -> int:
    """Bytes of the pickled payload: what a broadcast sends each executor once."""
    return len(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
