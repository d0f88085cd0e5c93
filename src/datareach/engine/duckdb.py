"""The DuckDB engine: an organisation's Zeek and Suricata logs, out of core on one machine.

``run`` goes through the same stages as the local engine, with the rows in DuckDB instead of
Python:

1. **sources** -- :func:`datareach.sources.logs.discover` finds the log files (by content);
   each kind becomes a raw view over the files (DuckDB's own CSV and JSON readers, all
   threads), and the readers' SQL (:mod:`datareach.sources.zeek`, :mod:`datareach.sources.eve`)
   the normalised relations ``conn``, ``names``, ``dns``, ``http``, ``dhcp``;
2. **enrich** -- naming (:func:`datareach.engine.logsql.named_sql`: an as-of join of each
   connection with the DNS answers its client got), materialised once (spilled to disk past
   the memory limit); the connections reduced in SQL to one row per (host, server, port,
   protocol) -- a few thousand rows for millions of connections -- which the local engine's
   group-by and destination stages (geo, domains, ownership, data types) take as they are;
3. **detect** -- each HTTP request the logs describe (and the body Zeek or Suricata extracted)
   through the pipeline's per-request stage;
4. **assess** -- the policies, as for a capture; and the bulk-data judgement of
   :mod:`datareach.assess.bulk` over counts made in SQL;
5. the result: the :class:`~datareach.engine.result.Audit` (with its ``organisation``
   section) and, with an output directory, Parquet tables: ``connections`` (every connection,
   enriched), ``destinations``, ``owners``, ``clients``, ``bulk``.

Memory is DuckDB's ``memory_limit`` (:data:`MEMORY_LIMIT` unless set) plus the destinations:
never the size of the logs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach.engine import AuditOptions, Pipeline, logsql, orgscale

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from datareach.engine.result import Audit
    from datareach.sources.logs import LogFile, LogSet

__all__ = ["MEMORY_LIMIT", "DuckDBEngine", "DuckRunner", "register_logs"]

#: DuckDB's memory limit unless the user sets one (DATAREACH_DUCKDB_MEMORY or the option).
MEMORY_LIMIT = "1GB"


def _read_sql(files: list[LogFile], d: logsql.Dialect) -> str:
    """A SELECT over files of one kind and layout, typed into the kind's raw view."""
    from datareach.sources.zeek import NEEDED, column, typed_columns

    f = files[0]
    paths = "[" + ", ".join(d.quote(x.path) for x in files) + "]"
    if f.form == "tsv":
        names = [column(n) for n in f.fields]
        cols = "{" + ", ".join(f"{d.quote(n)}: 'VARCHAR'" for n in names) + "}"
        # (no comment='#': DuckDB would cut every line at a '#', a URI's fragment included; the
        # header is skipped by its length, and the #close line is a rejected line not reported)
        src = (f"read_csv({paths}, delim={d.quote(f.separator)}, header=false, skip={f.header_lines}, quote='', "
               f"escape='', columns={cols}, nullstr={d.quote(f.unset_field)}, auto_detect=false, "
               f"strict_mode=false, null_padding=false, ignore_errors=true, store_rejects=true)")
        present = names
    else:
        # JSON lines read as lines (a line that does not parse is counted, not lost: json_valid)
        wanted = NEEDED[f.kind]
        picked = ", ".join(
            (f"CASE WHEN ok THEN TRY_CAST(json_extract(line, {d.quote('$.' + _json_key(n))}) AS VARCHAR[]) END "
             f"AS {column(n)}" if c == "list"
             else f"CASE WHEN ok THEN json_extract_string(line, {d.quote('$.' + _json_key(n))}) END AS {column(n)}")
            for n, c in wanted)
        src = f"(SELECT {picked} FROM (SELECT line, json_valid(line) AS ok FROM {_json_lines(paths, d)}) WHERE ok)"
        present = [column(n) for n, _ in wanted]
    return f"SELECT {', '.join(typed_columns(f, present, d))} FROM {src}"


def _json_key(field: str) -> str:
    return f'"{field}"' if "." in field else field


def _json_lines(paths: str, d: logsql.Dialect) -> str:
    """JSON-lines files as one text column ``line`` (a record separator never appears raw in JSON)."""
    return (f"read_csv({paths}, delim=chr(30), header=false, quote='', escape='', "
            f"columns={{'line': 'VARCHAR'}}, auto_detect=false, strict_mode=false)")


def register_logs(con: duckdb.DuckDBPyConnection, logs: LogSet, since: float | None = None,
                  until: float | None = None) -> None:
    """The raw views of the Zeek files and the normalised views (``conn``, ``names``, ``dns``,
    ``http``, ``dhcp``) over them and the EVE files."""
    from datareach.sources import zeek

    d = logsql.DUCKDB
    for kind in zeek.NEEDED:
        groups: dict[tuple[Any, ...], list[LogFile]] = {}
        for f in logs.of(kind):
            key = (f.form, f.fields, f.separator, f.set_separator, f.empty_field, f.unset_field, f.header_lines,
                   f.input_index)
            groups.setdefault(key, []).append(f)
        parts = [_read_sql(files, d) for files in groups.values()]
        if not parts:
            empty = ", ".join(f"CAST(NULL AS {zeek.sql_type(c, d)}) AS {zeek.column(n)}" for n, c in zeek.NEEDED[kind])
            parts = [f"SELECT {empty}, 0 AS _input WHERE false"]
        con.execute(f"CREATE OR REPLACE TEMP VIEW zeek_{kind} AS " + "\nUNION ALL BY NAME\n".join(parts)).fetchall()
    views = zeek.normalised(d, since, until)
    eve_files = logs.of("eve")
    if eve_files:
        from datareach.sources import eve

        window = " AND ".join([*([f"ts >= {since!r}"] if since is not None else []),
                               *([f"ts < {until!r}"] if until is not None else [])]) or "true"
        for name, sql in eve.table_sql(d, [(f.path, f.input_index) for f in eve_files]).items():
            if name != "names":
                sql = f"SELECT * FROM ({sql}) eve_rows WHERE {window}"
            views[name] = f"SELECT * FROM ({views[name]}) zeek_rows\nUNION ALL BY NAME\nSELECT * FROM ({sql}) eve_all"
    for name, sql in views.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}").fetchall()


class _Progress:
    """Polls DuckDB's progress of the running query and reports rows per second."""

    def __init__(self, runner: DuckRunner, total_rows: int, report: Callable[[str, int, int], None] | None) -> None:
        self.runner, self.total, self.report = runner, total_rows, report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Progress:
        if self.report is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        assert self.report is not None
        while not self._stop.wait(0.5):
            try:
                pct = self.runner.con.query_progress()
            except Exception:
                continue
            if pct is not None and pct >= 0:
                self.report(self.runner.phase, int(self.total * min(pct, 100.0) / 100.0), self.total)


class DuckDBEngine:
    """Runs a pipeline over sensor logs in an embedded DuckDB."""

    name = "duckdb"

    def __init__(self, memory_limit: str | None = None, threads: int | None = None,
                 temp_directory: str | os.PathLike[str] | None = None) -> None:
        self.memory_limit = memory_limit or os.environ.get("DATAREACH_DUCKDB_MEMORY") or MEMORY_LIMIT
        self.threads = threads or int(os.environ.get("DATAREACH_DUCKDB_THREADS") or 0) or os.cpu_count() or 1
        self.temp_directory = temp_directory
        #: seconds each phase took, and the rows read (for the benchmark and the progress line)
        self.timings: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def connect(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        from datareach.cache import cache_dir

        tmp = Path(self.temp_directory) if self.temp_directory else cache_dir() / "duckdb-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(config={"threads": self.threads, "memory_limit": self.memory_limit,
                                      "temp_directory": str(tmp), "preserve_insertion_order": False,
                                      "enable_external_access": True, "autoinstall_known_extensions": False,
                                      "autoload_known_extensions": False})

    def run(self, inputs: Sequence[str | os.PathLike[str]], pipeline: Pipeline, options: AuditOptions) -> Audit:
        import duckdb

        from datareach.engine import EngineLimitError
        from datareach.sources.logs import discover

        logs = discover(inputs, options.since, options.until)
        con = self.connect()
        runner_phase: list[str] = []
        try:
            return self.run_on(con, inputs, logs, pipeline, options, runner_phase)
        except duckdb.OutOfMemoryException as exc:
            where = runner_phase[0] if runner_phase else "reading the logs"
            raise EngineLimitError(
                f"DuckDB reached its memory limit ({self.memory_limit}) while {where} "
                f"({logs.bytes / 1e9:.1f} GB of logs): give it more with --memory-limit, or audit a shorter period "
                f"with --since/--until. ({exc})") from exc
        finally:
            con.close()

    def run_on(self, con: duckdb.DuckDBPyConnection, inputs: Sequence[str | os.PathLike[str]], logs: LogSet,
               pipeline: Pipeline, options: AuditOptions, phase: list[str] | None = None) -> Audit:
        """The audit of ``logs`` on an open connection (:func:`~datareach.engine.orgscale.run_logs`);
        ``phase`` gets the phase it was in should it fail."""
        register_logs(con, logs, options.since, options.until)
        runner = DuckRunner(con)
        self.timings = {}
        try:
            with _Progress(runner, max(1, logs.bytes // 200), options.log_progress):
                audit, self.rows = orgscale.run_logs(runner, inputs, logs, pipeline, options, self.timings)
        finally:
            if phase is not None:
                phase[:] = [runner.phase]
        return audit


class DuckRunner:
    """:class:`~datareach.engine.orgscale.LogRunner` on a DuckDB connection."""

    dialect = logsql.DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.phase = ""

    def table(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def batches(self, sql: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
        cur = self.con.execute(sql)
        while rows := cur.fetchmany(size):
            yield rows

    def materialise(self, name: str, sql: str, table: bool) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP {'TABLE' if table else 'VIEW'} {name} AS {sql}").fetchall()

    def release(self, names: Sequence[str]) -> None:
        for name in names:
            self.con.execute(f"DROP TABLE IF EXISTS {name}").fetchall()
            self.con.execute(f"DROP VIEW IF EXISTS {name}").fetchall()

    def register(self, name: str, table: pa.Table) -> None:
        # (a DuckDB table, not a view of the Arrow one: joins with it are several times faster)
        self.con.register(f"{name}_arrow", table)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow").fetchall()
        self.con.unregister(f"{name}_arrow")

    def write_parquet(self, sql: str, path: Path) -> None:
        self.con.execute(f"COPY ({sql}) TO {logsql.DUCKDB.quote(str(path))} (FORMAT parquet, COMPRESSION snappy)"
                         ).fetchall()

    def stages(self, pipeline: Pipeline, options: AuditOptions) -> Pipeline:
        return pipeline

    def rejected(self, logs: LogSet) -> list[tuple[int, str]]:
        """The lines DuckDB's readers could not read: TSV rows its CSV reader rejected (stored
        rejects; the ``#close`` line is not one), JSON lines that are not JSON."""
        out: list[tuple[int, str]] = []
        by_path = {f.path: f.input_index for f in logs.files}
        try:
            rejected = self.con.execute("""
                SELECT s.file_path, count(DISTINCT e.line), min(e.line), any_value(e.error_message)
                FROM reject_errors e JOIN reject_scans s ON e.scan_id = s.scan_id AND e.file_id = s.file_id
                WHERE NOT starts_with(coalesce(e.csv_line, ''), '#')
                GROUP BY s.file_path""").fetchall()
        except Exception:
            rejected = []
        for path, n, line, message in rejected:
            out.append((by_path.get(path, 0), f"{path}: {n} line(s) could not be read (first at line {line}: {message})"))
        for f in logs.files:
            if f.form not in ("json", "eve"):
                continue
            bad = self.con.execute(f"""
                SELECT count(*), min(n) FROM (
                  SELECT line, row_number() OVER () AS n FROM {_json_lines(logsql.DUCKDB.quote(f.path), logsql.DUCKDB)})
                WHERE NOT json_valid(line) AND NOT starts_with(line, '#')""").fetchall()
            if bad and bad[0][0]:
                out.append((f.input_index, f"{f.path}: {bad[0][0]} line(s) are not JSON and were not read "
                                           f"(the first is data line {bad[0][1]})"))
        return out
