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

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach.engine import AuditOptions, Pipeline, logsql
from datareach.engine.orgscale import MAX_DNS_NAMES
from datareach.schema import DnsAnswer, Exchange, InputError, InputReport

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from datareach.engine.result import Audit
    from datareach.sources.logs import LogFile, LogSet

__all__ = ["MEMORY_LIMIT", "DuckDBEngine", "register_logs"]

#: DuckDB's memory limit unless the user sets one (DATAREACH_DUCKDB_MEMORY or the option).
MEMORY_LIMIT = "1GB"
#: Request bodies read from extracted files at most (bytes).
MAX_BODY = 1 << 20
#: Requests with findings kept in the JSON document at most (all are in findings.parquet).
MAX_EXCHANGES = 10_000
#: Clients listed in the document's organisation section.
MAX_CLIENTS = 100


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

    def __init__(self, con: duckdb.DuckDBPyConnection, total_rows: int,
                 report: Callable[[str, int, int], None] | None) -> None:
        self.con, self.total, self.report = con, total_rows, report
        self.phase = ""
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
                pct = self.con.query_progress()
            except Exception:
                continue
            if pct is not None and pct >= 0:
                self.report(self.phase, int(self.total * min(pct, 100.0) / 100.0), self.total)


class DuckDBEngine:
    """Runs a pipeline over sensor logs in an embedded DuckDB."""

    name = "duckdb"

    def __init__(self, memory_limit: str | None = None, threads: int | None = None,
                 temp_directory: str | os.PathLike[str] | None = None) -> None:
        self.memory_limit = memory_limit or os.environ.get("DATAREACH_DUCKDB_MEMORY") or MEMORY_LIMIT
        self.threads = threads or os.cpu_count() or 1
        self.temp_directory = temp_directory
        #: seconds each phase took, and the rows read (for the benchmark and the progress line)
        self.timings: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def connect(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        from datareach.cache import cache_dir

        tmp = Path(self.temp_directory) if self.temp_directory else cache_dir() / "duckdb-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(config={"threads": self.threads, "memory_limit": self.memory_limit,
                                     "temp_directory": str(tmp), "preserve_insertion_order": False,
                                     "enable_external_access": True, "autoinstall_known_extensions": False,
                                     "autoload_known_extensions": False})
        return con

    def run(self, inputs: Sequence[str | os.PathLike[str]], pipeline: Pipeline, options: AuditOptions) -> Audit:
        from datareach.sources.logs import discover

        logs = discover(inputs, options.since, options.until)
        con = self.connect()
        try:
            return self.run_on(con, inputs, logs, pipeline, options)
        finally:
            con.close()

    def _phase(self, name: str, started: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round(now - started, 3)
        return now

    def run_on(self, con: duckdb.DuckDBPyConnection, inputs: Sequence[str | os.PathLike[str]], logs: LogSet,
               pipeline: Pipeline, options: AuditOptions) -> Audit:
        """The audit of ``logs`` on an open connection."""
        from datareach.engine import orgscale

        t0 = time.perf_counter()
        d = logsql.DUCKDB
        register_logs(con, logs, options.since, options.until)
        estimate = max(1, logs.bytes // 200)
        report = options.log_progress
        with _Progress(con, estimate, report) as prog:
            prog.phase = "naming connections"
            for name, sql, table in logsql.naming_steps(d):
                kind = "TABLE" if table else "VIEW"
                con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {sql}").fetchall()
            for name in ("names_by_uid", "conn_named", "dns_named"):  # (named holds what they did)
                con.execute(f"DROP TABLE IF EXISTS {name}").fetchall()
            con.execute(f"CREATE OR REPLACE TEMP TABLE leases AS {logsql.leases_sql(d)}").fetchall()
            t = self._phase("read_and_name", t0)
            self.rows = {"conn": _count(con, "named")}
            if report is not None:
                report("naming connections", self.rows["conn"], self.rows["conn"])
            prog.phase = "grouping"
            groups = con.sql(logsql.groups_sql(d)).to_arrow_table()
            clients = dict(con.execute(logsql.host_clients_sql(d)).fetchall())
            internal = [dict(zip(("protocol", "connections", "bytes", "servers"), r, strict=True))
                        for r in con.execute(logsql.internal_sql(d) + " ORDER BY 2 DESC, 1").fetchall()]
            con.register("kept_groups", groups)
            dns_rows = con.execute(logsql.dns_names_sql(d, MAX_DNS_NAMES)).fetchall()
            self.rows["servers_cut"] = int(con.execute(logsql.servers_cut_sql(d)).fetchall()[0][0])
            t = self._phase("group", t)
        self.rows["http"] = _count(con, "http")
        self.rows["dns"] = _count(con, "dns")
        exchanges = orgscale.detect_requests(_http_batches(con, logs), pipeline, options)
        t = self._phase("detect", t)
        reports = _input_reports(inputs, logs, con, self.rows)
        answers = [DnsAnswer(ts=r[0], qname=r[1], rtype=r[2], address=r[3], cname_chain=tuple(r[4] or (r[1],)),
                             ttl=int(r[5] or 0), input_index=int(r[6])) for r in dns_rows]
        # (a limit, not an input error: said in organisation.limits)
        self.rows["dns_names_cut"] = int(len(dns_rows) >= MAX_DNS_NAMES)
        audit = orgscale.enrich_and_assess(pipeline, options, reports, groups, answers, exchanges, clients, internal)
        t = self._phase("enrich_and_assess", t)
        out = Path(options.output_dir) if options.output_dir is not None else None
        orgscale.organise(DuckRunner(con), audit, pipeline, exchanges, options, self.rows, out,
                          [(p, why) for p, why in logs.skipped if not why.startswith("cannot be read")])
        self._phase("organisation", t)
        self.timings["total"] = round(time.perf_counter() - t0, 3)
        return audit


class DuckRunner:
    """:class:`~datareach.engine.orgscale.SqlRunner` on a DuckDB connection."""

    dialect = logsql.DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def table(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def register(self, name: str, table: pa.Table) -> None:
        # (a DuckDB table, not a view of the Arrow one: joins with it are several times faster)
        self.con.register(f"{name}_arrow", table)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow").fetchall()
        self.con.unregister(f"{name}_arrow")

    def write_parquet(self, sql: str, path: Path) -> None:
        self.con.execute(f"COPY ({sql}) TO {logsql.DUCKDB.quote(str(path))} (FORMAT parquet, COMPRESSION snappy)"
                         ).fetchall()


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(rows[0][0]) if rows else 0


def _http_batches(con: duckdb.DuckDBPyConnection, logs: LogSet) -> Iterator[list[Exchange]]:
    """The HTTP requests of the logs as exchanges, a batch at a time, in time order."""
    dirs = {f.input_index: Path(f.path).parent for f in logs.files if f.kind in ("http", "files", "eve")}
    cur = con.execute("""
        SELECT h.ts, h.method, h.host, h.uri, h.user_agent, h.referrer, h.request_body_len, h.status,
               h.server_ip, h.server_port, h.client_ip, h.uid, h.input_index, h.body_file
        FROM http h
        ORDER BY h.ts, h.uid""")
    while True:
        rows = cur.fetchmany(4096)
        if not rows:
            return
        batch: list[Exchange] = []
        for (ts, method, host, uri, ua, ref, body_len, status, sip, sport, cip, uid, idx, body_file) in rows:
            host = host or sip or ""
            uri = uri or "/"
            headers = [("Host", host)]
            if ua:
                headers.append(("User-Agent", ua))
            if ref:
                headers.append(("Referer", ref))
            body = _body(dirs.get(idx), body_file)
            batch.append(Exchange(
                ts=float(ts or 0.0), scheme="http", method=method or "GET", host=host.lower(),
                url=f"http://{host}{uri if uri.startswith('/') else '/' + uri}", target=uri, http_version="HTTP/1.1",
                request_headers=headers, request_body=body, request_body_size=body_len if not body else None,
                status=status, server_ip=sip, server_port=sport, client_ip=cip, uid=uid, input_index=int(idx or 0)))
        yield batch


def _body(base: Path | None, name: str | None) -> bytes:
    """An extracted request body (Zeek's ``extract_files/`` or Suricata's filestore) next to the logs."""
    if not name or base is None:
        return b""
    candidates = [Path(name)] if os.path.isabs(name) else [base / name, base / "extract_files" / name]
    for p in candidates:
        try:
            with open(p, "rb") as fh:
                return fh.read(MAX_BODY)
        except OSError:
            continue
    return b""


def _input_reports(inputs: Sequence[str | os.PathLike[str]], logs: LogSet, con: duckdb.DuckDBPyConnection,
                   rows: dict[str, int]) -> list[InputReport]:
    """One report per input: its logs, the rows read, and what could not be read."""
    reports: list[InputReport] = []
    for i, given in enumerate(inputs):
        mine = [f for f in logs.files if f.input_index == i]
        forms = sorted({f"zeek-{f.form}" if f.form != "eve" else "suricata-eve" for f in mine})
        h = hashlib.sha256()
        for f in sorted(mine, key=lambda f: f.path):
            h.update(f"{f.path}\0{f.size}\n".encode())
        rep = InputReport(str(given), "+".join(forms) or None, h.hexdigest() if mine else "",
                          sum(f.size for f in mine))
        rep.records_read = rows.get("conn", 0) if i == 0 and len(inputs) == 1 else 0
        for path, problem in logs.errors:
            if path == str(given):
                rep.errors.append(InputError(problem, fatal=True))
        root = str(given)
        # (a file that could not be opened is an error; one that is no log, or outside the
        # window, is listed in the organisation section's ``skipped``)
        for p, why in logs.skipped:
            if p.startswith(root) and why.startswith("cannot be read"):
                rep.errors.append(InputError(f"{p}: {why}"))
        reports.append(rep)
    # the lines DuckDB's readers could not read, by file
    try:
        rejected = con.execute("""
            SELECT s.file_path, count(DISTINCT e.line), min(e.line), any_value(e.error_message)
            FROM reject_errors e JOIN reject_scans s ON e.scan_id = s.scan_id AND e.file_id = s.file_id
            WHERE NOT starts_with(coalesce(e.csv_line, ''), '#')
            GROUP BY s.file_path""").fetchall()
    except Exception:
        rejected = []
    for f in logs.files:  # JSON lines that do not parse
        if f.form not in ("json", "eve"):
            continue
        bad = con.execute(f"""
            SELECT count(*), min(n) FROM (
              SELECT line, row_number() OVER () AS n FROM {_json_lines(logsql.DUCKDB.quote(f.path), logsql.DUCKDB)})
            WHERE NOT json_valid(line) AND NOT starts_with(line, '#')""").fetchall()
        if bad and bad[0][0] and f.input_index < len(reports):
            reports[f.input_index].errors.append(InputError(
                f"{f.path}: {bad[0][0]} line(s) are not JSON and were not read (the first is data line {bad[0][1]})"))
    by_path = {f.path: f.input_index for f in logs.files}
    for path, n, line, message in rejected:
        idx = by_path.get(path, 0)
        if idx < len(reports):
            reports[idx].errors.append(InputError(
                f"{path}: {n} line(s) could not be read (first at line {line}: {message})"))
    return reports
