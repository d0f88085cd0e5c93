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

import json
import os
import pickle
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import Broadcast
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from datareach.engine import AuditOptions, Pipeline
    from datareach.engine.result import Audit
    from datareach.enrich.ownership import ReachOptions
    from datareach.enrich.stages import EnrichContext, Stage
    from datareach.sources.logs import LogFile, LogSet

__all__ = [
    "DEFAULT_MASTER",
    "EnrichPayload",
    "SparkEngine",
    "SparkRunner",
    "enrich_partitions",
    "enrich_payload",
    "executor_stage",
    "register_eve",
    "register_logs",
    "register_zeek",
    "spark_session",
]

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
    # (the plans of the log SQL are wide: no warning that their text was shortened)
    "spark.sql.debug.maxToStringFields": "1000",
    # (the SQL's CAST(... AS VARCHAR(n)), written for DuckDB: plain strings, without a warning each)
    "spark.sql.legacy.charVarcharAsString": "true",
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

    ``master``: ``local[N]``, ``spark://host:port``, ``yarn``, ``k8s://...`` (default: the one
    ``spark-submit`` was given when it runs this process, else :data:`DEFAULT_MASTER`).
    ``driver_memory`` bounds the driver JVM's heap when this call starts the JVM (under
    ``spark-submit``, its ``--driver-memory`` does). ``conf``: more settings, which win over the
    engine's.
    """
    from pyspark.sql import SparkSession

    # spark-submit started the JVM already (and gave it the master, the memory, the logging)
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    master = master or (None if submitted else DEFAULT_MASTER)
    local = master is not None and master.startswith("local")
    if local:
        # executors started by a local master run this very Python (the venv datareach is in);
        # a cluster's executors run what its settings say (spark.pyspark.python)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # (no look-up of the host's name)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    settings = dict(SESSION_CONF)
    if local:
        settings.update(LOCAL_CONF)
    if not submitted:
        settings["spark.driver.memory"] = driver_memory
        log4j = Path(__file__).with_name("spark-log4j2.properties")
        if log4j.is_file():
            option = f"-Dlog4j2.configurationFile={log4j.as_uri()}"
            settings["spark.driver.extraJavaOptions"] = option
            if local:
                settings["spark.executor.extraJavaOptions"] = option
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings["spark.log.level"])
    return spark


# -- Zeek logs as raw views -----------------------------------------------------------------------


def _hadoop_path(path: str | os.PathLike[str]) -> str:
    """A local path as Spark reads it: absolute, with Hadoop's glob characters escaped."""
    text = str(path) if "://" in str(path) else str(Path(path).absolute())
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", text)


def _zeek_text(spark: SparkSession, files: Sequence[LogFile]) -> tuple[DataFrame, list[str]]:
    """Zeek files of one kind and layout as text columns (named by ``zeek.column``), as the
    DuckDB engine reads them: TSV every field text, the unset field NULL, a line with too few or
    too many fields not read (DuckDB rejects it); JSON lines the fields of ``zeek.NEEDED``, lists
    as lists of text and the rest as text (a number's JSON text), a line that is not JSON not
    read (a field of the wrong type is NULL)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    from datareach.sources.zeek import NEEDED, column

    f = files[0]
    paths = [_hadoop_path(x.path) for x in files]
    if f.form == "tsv":
        names = [column(n) for n in f.fields]
        schema = StructType([StructField(n, StringType(), True) for n in names])
        # no quoting and no escapes (Zeek writes neither); only lines *starting* with '#' are
        # skipped (the header, #close): Spark's comment option, unlike DuckDB's, does not cut a
        # line at a '#' inside it
        df = spark.read.csv(paths, schema=schema, sep=f.separator, comment="#", header=False, nullValue=f.unset_field,
                            quote="\u0000", escape="\u0000", mode="DROPMALFORMED", ignoreLeadingWhiteSpace=False,
                            ignoreTrailingWhiteSpace=False, multiLine=False, enforceSchema=True)
        return df, names
    wanted = NEEDED[f.kind]
    schema = StructType([StructField(n, ArrayType(StringType()) if c == "list" else StringType(), True)
                         for n, c in wanted])
    lines = spark.read.text(paths)
    parsed = (lines.where(F.get_json_object(F.col("value"), "$").isNotNull())
              .select(F.from_json(F.col("value"), schema, {"mode": "PERMISSIVE"}).alias("r")))
    names = [column(n) for n, _ in wanted]
    return parsed.select(*[F.col("r").getField(n).alias(column(n)) for n, _ in wanted]), names


def register_zeek(spark: SparkSession, logs: Iterable[LogFile]) -> None:
    """The raw views ``zeek_<kind>`` of every kind of ``zeek.NEEDED`` (empty where no file is of
    it), with the columns and types the DuckDB engine's have: the files read as text
    (:func:`_zeek_text`), typed by :func:`datareach.sources.zeek.typed_columns` in Spark's dialect.
    Files of one kind with different headers are read apart and put together by column name;
    ``.gz`` is read through Spark's codec."""
    from datareach.sources import zeek
    from datareach.sources.sql import SPARK

    by_kind: dict[str, dict[tuple[Any, ...], list[LogFile]]] = {}
    for f in logs:
        if f.form not in ("tsv", "json") or f.kind not in zeek.NEEDED:
            continue
        key = (f.form, f.fields, f.separator, f.set_separator, f.empty_field, f.unset_field, f.input_index)
        by_kind.setdefault(f.kind, {}).setdefault(key, []).append(f)
    for kind, needed in zeek.NEEDED.items():
        frames: list[DataFrame] = []
        for files in by_kind.get(kind, {}).values():
            text, present = _zeek_text(spark, files)
            frames.append(text.selectExpr(*zeek.typed_columns(files[0], present, SPARK)))
        if frames:
            df = frames[0]
            for more in frames[1:]:
                df = df.unionByName(more)
        else:
            ddl = ", ".join(f"`{zeek.column(n)}` {zeek.sql_type(c, SPARK)}" for n, c in needed)
            df = spark.createDataFrame([], f"{ddl}, _input INT")
        df.createOrReplaceTempView(f"zeek_{kind}")


def register_eve(spark: SparkSession, logs: Iterable[LogFile]) -> dict[str, str]:
    """The EVE files as the views :func:`datareach.sources.eve.sources` names (read with
    :func:`~datareach.sources.eve.spark_ddl`); returns the normalised tables' SQL over them
    (empty without EVE files)."""
    from datareach.sources import eve
    from datareach.sources.sql import SPARK

    files = [(f.path, f.input_index) for f in logs if f.form == "eve"]
    if not files:
        return {}
    for src in eve.sources(files):
        spark.read.schema(eve.spark_ddl()).json([_hadoop_path(p) for p in src.paths]).createOrReplaceTempView(src.view)
    return eve.table_sql(SPARK, files)


def register_logs(spark: SparkSession, logs: LogSet, since: float | None = None, until: float | None = None) -> None:
    """The raw views and the normalised views (``conn``, ``names``, ``dns``, ``http``, ``dhcp``)
    of a log set, as :func:`datareach.engine.duckdb.register_logs` makes them on DuckDB."""
    from datareach.sources import zeek
    from datareach.sources.sql import SPARK

    register_zeek(spark, logs.files)
    views = {name: spark.sql(sql) for name, sql in zeek.normalised(SPARK, since, until).items()}
    window = " AND ".join([*([f"ts >= {since!r}"] if since is not None else []),
                           *([f"ts < {until!r}"] if until is not None else [])]) or "true"
    for name, sql in register_eve(spark, logs.files).items():
        eve_rows = spark.sql(sql if name == "names" else f"SELECT * FROM ({sql}) eve_rows WHERE {window}")
        views[name] = views[name].unionByName(eve_rows, allowMissingColumns=True)
    for name, df in views.items():
        df.createOrReplaceTempView(name)


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


def executor_stage(spark: SparkSession, stages: Sequence[Stage], options: AuditOptions,
                   partitions: int | None = None) -> Stage:
    """One stage that runs ``stages`` on Spark's executors (:func:`enrich_partitions`) over each
    chunk of destinations the local engine's group-by gives it: the same stage code, run
    elsewhere. The payload is made from the driver's context on the first chunk (the knowledge
    base, reach options, date and findings the local stages would have used); the laws the
    executors' ownership stage cited are gathered on the driver, as that stage does."""
    from datareach.enrich.stages import Stage

    state: dict[str, Any] = {}
    requires = tuple(dict.fromkeys(c for s in stages for c in s.requires))
    provides = tuple(dict.fromkeys(c for s in stages for c in s.provides))

    def run(t: pa.Table, ctx: EnrichContext) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc

        from datareach.enrich.ownership import cited_laws

        if t.num_rows == 0:
            return t
        assert ctx.resolver is not None
        if "payload" not in state:
            state["payload"] = enrich_payload(spark, ctx.resolver.kb, reach_options=ctx.resolver.options,
                                              date=ctx.date, findings=ctx.findings, geo_db=options.geo_db,
                                              stages=stages)
        n = partitions or spark.sparkContext.defaultParallelism
        frame = spark.createDataFrame(t.append_column("_row", pa.array(range(t.num_rows), pa.int64())))
        out = enrich_partitions(frame.repartition(max(1, min(n, t.num_rows // 256 + 1))), state["payload"]).toArrow()
        out = out.take(pc.sort_indices(out.column("_row"))).drop_columns(["_row"])
        if "reach" in provides and ctx.resolver is not None:
            reaches = [json.loads(r) if r else [] for r in out.column("reach").to_pylist()]
            ctx.laws.update(cited_laws(ctx.resolver.kb, (r for rs in reaches for r in rs)))
        return out

    return Stage("executors", requires, provides, run)


class SparkRunner:
    """:class:`~datareach.engine.orgscale.SqlRunner` on a Spark session."""

    from datareach.sources.sql import SPARK as dialect

    def __init__(self, spark: SparkSession, *, stages_on_executors: bool = True) -> None:
        self.spark = spark
        self.phase = ""
        self.stages_on_executors = stages_on_executors
        self._kept: dict[str, DataFrame] = {}

    def table(self, sql: str) -> pa.Table:
        return self.spark.sql(sql).toArrow()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.spark.sql(sql).collect()]

    def batches(self, sql: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
        batch: list[tuple[Any, ...]] = []
        for r in self.spark.sql(sql).toLocalIterator():
            batch.append(tuple(r))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def materialise(self, name: str, sql: str, table: bool) -> None:
        """A cached view (in memory, spilled to the executors' disks past it) where DuckDB makes a table."""
        from pyspark import StorageLevel

        frame = self.spark.sql(sql)
        if table:
            frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
            self._kept[name] = frame
        frame.createOrReplaceTempView(name)

    def release(self, names: Sequence[str]) -> None:
        for name in names:
            frame = self._kept.pop(name, None)
            if frame is not None:
                frame.unpersist()

    def rejected(self, logs: LogSet) -> list[tuple[int, str]]:
        return []  # (Spark's readers drop the lines they cannot read without counting them: the README says so)

    def stages(self, pipeline: Pipeline, options: AuditOptions) -> Pipeline:
        """The destination stages as one stage run on the executors (``mapInArrow``)."""
        from dataclasses import replace

        if not self.stages_on_executors or not pipeline.destination_stages:
            return pipeline
        return replace(pipeline, destination_stages=(executor_stage(self.spark, pipeline.destination_stages, options),))

    def register(self, name: str, table: pa.Table) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        frame = (self.spark.createDataFrame(table) if table.num_rows
                 else self.spark.createDataFrame([], from_arrow_schema(table.schema)))
        frame.createOrReplaceTempView(name)

    def write_parquet(self, sql: str, path: Path) -> None:
        """The rows of ``sql`` as Parquet at ``path``: written by the executors (a directory of
        part files, as Spark writes) and, on a local master, then made one file at ``path`` a
        part file at a time (one row group each: memory bounded by a part, not by the table)."""
        import shutil

        import pyarrow.parquet as pq

        frame = self.spark.sql(sql)
        if not (self.spark.sparkContext.master or "").startswith("local"):
            frame.write.mode("overwrite").option("compression", "zstd").parquet(str(path))
            return
        parts_dir = path.with_name(f".{path.name}.parts")
        shutil.rmtree(parts_dir, ignore_errors=True)
        frame.write.mode("overwrite").option("compression", "zstd").parquet(_hadoop_path(parts_dir))
        parts = sorted(parts_dir.glob("part-*.parquet"))
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(frame.schema)
        with pq.ParquetWriter(path, schema, compression="zstd") as w:
            for part in parts:
                w.write_table(pq.read_table(part).cast(schema))
        shutil.rmtree(parts_dir, ignore_errors=True)


class SparkEngine:
    """Runs a pipeline over sensor logs on Spark: the DuckDB engine's SQL (Spark's dialect), the
    destination stages on the executors."""

    name = "spark"

    def __init__(self, master: str | None = None, *, spark: SparkSession | None = None, driver_memory: str = "1g",
                 conf: Mapping[str, str] | None = None, stages_on_executors: bool = True) -> None:
        self.master = master
        self.spark = spark
        self.driver_memory = driver_memory
        self.conf = dict(conf or {})
        self.stages_on_executors = stages_on_executors
        self.timings: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def run(self, inputs: Sequence[str | os.PathLike[str]], pipeline: Pipeline, options: AuditOptions) -> Audit:
        from pyspark.sql import SparkSession

        from datareach.sources.logs import discover

        logs = discover(inputs, options.since, options.until)
        # (a session already running in this process -- a notebook's, a test suite's -- is used
        # and left running; one made here is stopped here)
        mine = self.spark is None and SparkSession.getActiveSession() is None
        spark = self.spark or spark_session(self.master or options.master, driver_memory=self.driver_memory,
                                            conf=self.conf)
        try:
            return self.run_on(spark, inputs, logs, pipeline, options)
        finally:
            if mine:
                spark.stop()

    def run_on(self, spark: SparkSession, inputs: Sequence[str | os.PathLike[str]], logs: LogSet,
               pipeline: Pipeline, options: AuditOptions) -> Audit:
        """The audit of ``logs`` on a running session (:func:`~datareach.engine.orgscale.run_logs`,
        as the DuckDB engine runs it)."""
        from datareach.engine import orgscale

        register_logs(spark, logs, options.since, options.until)
        runner = SparkRunner(spark, stages_on_executors=self.stages_on_executors)
        self.timings = {}
        try:
            audit, self.rows = orgscale.run_logs(runner, inputs, logs, pipeline, options, self.timings)
        finally:
            runner.release(list(runner._kept))
        return audit
