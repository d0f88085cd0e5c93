"""datareach's DuckDB engine on a day of Zeek logs, against the same question in plain DuckDB SQL.

    python benchmarks/bench_logs.py [--rows 10000000] [--runs 5] [--threads 2] [--hours 24] [--gzip]
        [--logs DIR] [--keep]

Generates (once, cached in benchmarks/out/logs/<rows>-<form>[-gz]/, deterministic: seed 1) a day of
Zeek TSV logs with ``--rows`` conn rows (benchmarks/generate_logs.py: hourly rotated files, a few
thousand clients, CDNs, covered owners, a planted bulk-data counterparty), then runs alternately,
``--runs`` times each:

* ``datareach audit DIR --engine duckdb -o OUT/`` (everything: reading, naming by SNI/QUIC/HTTP/DNS,
  geo, registrable domains, ownership and reach, policies, bulk counting, Parquet and report), and
* the REFERENCE: the same question in plain DuckDB SQL without our enrichment: conn.log, ssl.log and
  dns.log read with ``read_csv`` (Zeek TSV: tab-separated, ``#`` comment lines, ``-`` unset), ssl joined
  by uid, a name for each connection (SNI, else the latest DNS answer of that client for that address),
  grouped by name: bytes each way, connections, distinct clients; written to Parquet.

Each in its own process (DuckDB limited to ``--threads``); prints per run, then the median wall time
of each with its range (never the best run), conn rows per second, and the peak memory of each
command's whole process tree (the /proc sampler of bench_vs_tshark.py). Until the DuckDB engine exists
(``datareach.engine.duckdb``), only the reference runs, and the script says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_vs_tshark import run  # noqa: E402  (wall time and peak tree RSS, sampled from /proc)
from benchmarks.generate_logs import generate  # noqa: E402

#: the planted counterparty of the benchmark's logs (above the 1,000-device geolocation threshold)
PLANTS = ("alog.umeng.com:location:1500", "mc.yandex.ru:identifiers:2000")
BYTES_PER_ROW = 700  # all logs of one conn row, plain TSV, with margin (measured: ~410)

# The reference: Zeek TSV read as Zeek's header says (tab, '#' comments, '-' unset), no sniffing
# (the sniffer with skip= and comment= together silently drops rows: see wave2-background.md).
REFERENCE_SQL = r"""
SET threads = {threads};
SET memory_limit = '{memory}';
SET preserve_insertion_order = false;
CREATE MACRO zeek(files, cols) AS TABLE
  SELECT * FROM read_csv(files, delim = '\t', comment = '#', header = false, quote = '', escape = '',
                         nullstr = '-', auto_detect = false, columns = cols, union_by_name = false);
CREATE VIEW conn AS SELECT * FROM zeek('{dir}/**/conn*.log*', {{
  'ts': 'DOUBLE', 'uid': 'VARCHAR', 'orig_h': 'VARCHAR', 'orig_p': 'INTEGER', 'resp_h': 'VARCHAR',
  'resp_p': 'INTEGER', 'proto': 'VARCHAR', 'service': 'VARCHAR', 'duration': 'DOUBLE', 'orig_bytes': 'BIGINT',
  'resp_bytes': 'BIGINT', 'conn_state': 'VARCHAR', 'local_orig': 'VARCHAR', 'local_resp': 'VARCHAR',
  'missed_bytes': 'BIGINT', 'history': 'VARCHAR', 'orig_pkts': 'BIGINT', 'orig_ip_bytes': 'BIGINT',
  'resp_pkts': 'BIGINT', 'resp_ip_bytes': 'BIGINT', 'tunnel_parents': 'VARCHAR', 'ip_proto': 'INTEGER',
  'orig_l2_addr': 'VARCHAR', 'resp_l2_addr': 'VARCHAR'}});
CREATE VIEW ssl AS SELECT * FROM zeek('{dir}/**/ssl*.log*', {{
  'ts': 'DOUBLE', 'uid': 'VARCHAR', 'orig_h': 'VARCHAR', 'orig_p': 'INTEGER', 'resp_h': 'VARCHAR',
  'resp_p': 'INTEGER', 'version': 'VARCHAR', 'cipher': 'VARCHAR', 'curve': 'VARCHAR', 'server_name': 'VARCHAR',
  'resumed': 'VARCHAR', 'last_alert': 'VARCHAR', 'next_protocol': 'VARCHAR', 'established': 'VARCHAR',
  'ssl_history': 'VARCHAR', 'cert_chain_fps': 'VARCHAR', 'client_cert_chain_fps': 'VARCHAR',
  'sni_matches_cert': 'VARCHAR'}});
CREATE VIEW dns AS SELECT * FROM zeek('{dir}/**/dns*.log*', {{
  'ts': 'DOUBLE', 'uid': 'VARCHAR', 'orig_h': 'VARCHAR', 'orig_p': 'INTEGER', 'resp_h': 'VARCHAR',
  'resp_p': 'INTEGER', 'proto': 'VARCHAR', 'trans_id': 'INTEGER', 'rtt': 'DOUBLE', 'query': 'VARCHAR',
  'qclass': 'INTEGER', 'qclass_name': 'VARCHAR', 'qtype': 'INTEGER', 'qtype_name': 'VARCHAR', 'rcode': 'INTEGER',
  'rcode_name': 'VARCHAR', 'AA': 'VARCHAR', 'TC': 'VARCHAR', 'RD': 'VARCHAR', 'RA': 'VARCHAR', 'Z': 'INTEGER',
  'answers': 'VARCHAR', 'TTLs': 'VARCHAR', 'rejected': 'VARCHAR', 'opcode': 'INTEGER', 'opcode_name': 'VARCHAR'}});
CREATE TEMP TABLE answers AS
  SELECT ts, orig_h AS client, lower(query) AS qname, a AS address
  FROM (SELECT ts, orig_h, query, unnest(string_split(answers, ',')) AS a FROM dns WHERE answers IS NOT NULL)
  WHERE regexp_full_match(a, '[0-9.]+|[0-9a-fA-F:]+');
COPY (
  WITH c AS (
    SELECT c.ts, c.uid, c.orig_h, c.resp_h, coalesce(c.orig_bytes, 0) AS bo, coalesce(c.resp_bytes, 0) AS bi,
           s.server_name AS sni
    FROM conn c LEFT JOIN (SELECT uid, min(server_name) AS server_name FROM ssl GROUP BY uid) s USING (uid)
  ), named AS (  -- the latest answer for (client, address) at or before ts + 1 s: a running last value
    SELECT * FROM (
      SELECT *, last_value(q IGNORE NULLS) OVER (PARTITION BY orig_h, resp_h ORDER BY t, k
                                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS qname
      FROM (SELECT ts + 1.0 AS t, 1 AS k, orig_h, resp_h, bo, bi, sni, NULL::VARCHAR AS q FROM c
            UNION ALL SELECT ts, 0, client, address, NULL, NULL, NULL, qname FROM answers)
    ) WHERE k = 1
  )
  SELECT coalesce(sni, qname, resp_h) AS host, sum(bo) AS bytes_out, sum(bi) AS bytes_in, count(*) AS connections,
         count(DISTINCT orig_h) AS clients
  FROM named GROUP BY ALL ORDER BY bytes_out DESC
) TO '{out}' (FORMAT parquet);
SELECT count(*) FROM read_parquet('{out}');
"""


def _engine_ready(datareach: str) -> str | None:
    """None when ``datareach audit --engine duckdb`` can run, else why not (asked of the interpreter
    the ``datareach`` command runs in, which may import another checkout than this one)."""
    python = sys.executable
    try:
        first = Path(datareach).read_text(errors="replace").split("\n", 1)[0]
        if first.startswith("#!") and Path(first[2:].strip()).exists():
            python = first[2:].strip()
    except OSError:
        pass
    probe = subprocess.run([python, "-c", "import datareach.engine.duckdb"], capture_output=True, text=True)
    if probe.returncode:
        return "datareach.engine.duckdb is not importable yet (the lead is writing it)"
    return None


def _logs(args: argparse.Namespace) -> Path:
    if args.logs:
        return Path(args.logs)
    name = f"{args.rows}-zeek-tsv-h{args.hours}" + ("-gz" if args.gzip else "")
    out = HERE / "out" / "logs" / name
    done = out / "generated.json"
    if done.exists():
        return out
    need = args.rows * BYTES_PER_ROW // (5 if args.gzip else 1)
    free = shutil.disk_usage(HERE).free
    if need > free * 0.9:
        raise SystemExit(f"need about {need / 1e9:.0f} GB for {args.rows:,} rows of logs, {free / 1e9:.0f} GB free: "
                         "use --gzip, fewer --rows, or another --logs directory")
    if out.exists():
        shutil.rmtree(out)
    print(f"generating {args.rows:,} conn rows of Zeek TSV in {out} ...", flush=True)
    res = generate(out, rows=args.rows, form="zeek-tsv", gzip=args.gzip, hours=args.hours, days=1, seed=1,
                   plants=PLANTS, threads=args.threads, progress=True)
    size = sum(p.stat().st_size for p in res.files)
    print(f"generated in {res.seconds:.0f} s ({args.rows / res.seconds:,.0f} conn rows/s), {size / 1e9:.2f} GB")
    done.write_text(json.dumps({"rows": res.rows, "seconds": res.seconds, "bytes": size}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="conn rows (the issue's figure: 100,000,000)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads (the issue: 2 cores)")
    ap.add_argument("--memory", default="1.5GB", help="DuckDB memory_limit of the reference")
    ap.add_argument("--hours", type=int, default=24, help="hourly files")
    ap.add_argument("--gzip", action="store_true", help="gzip the logs (default for more than 40 M rows)")
    ap.add_argument("--logs", help="an existing directory of Zeek TSV logs instead of generated ones")
    args = ap.parse_args()
    if args.rows > 40_000_000:
        args.gzip = True
    logs = _logs(args)
    meta = logs / "generated.json"
    conn_rows = json.loads(meta.read_text())["rows"]["conn"] if meta.exists() else args.rows
    size = sum(p.stat().st_size for p in logs.rglob("*.log*"))
    print(f"logs: {logs} ({conn_rows:,} conn rows, {size / 1e9:.2f} GB)")

    datareach = shutil.which("datareach", path=str(Path(sys.executable).parent)) or "datareach"
    why_not = _engine_ready(datareach)
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        ref_sql = Path(tmp) / "reference.sql"
        ref_sql.write_text(REFERENCE_SQL.format(threads=args.threads, memory=args.memory, dir=logs,
                                                out=Path(tmp) / "reference.parquet"))
        commands: dict[str, list[str]] = {}
        if why_not is None:
            commands["datareach"] = [datareach, "audit", str(logs), "--engine", "duckdb", "-o", f"{tmp}/out/"]
        else:
            print(f"skipping datareach: {why_not}; running the reference alone")
        commands["reference"] = [sys.executable, "-c",
                                 "import duckdb, sys; con = duckdb.connect(); "
                                 "[con.execute(s) for s in open(sys.argv[1]).read().split(';\\n') if s.strip()]",
                                 str(ref_sql)]
        env_note = f"DuckDB threads={args.threads}"
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
        for i in range(args.runs):
            order = list(commands) if i % 2 == 0 else list(reversed(commands))
            for name in order:
                results[name].append(run(commands[name], subprocess.DEVNULL))
            print(f"run {i + 1}: " + ", ".join(f"{n} {results[n][-1][0]:.2f} s, {results[n][-1][1] / 1024:.0f} MiB"
                                                for n in commands), flush=True)
    labels = {"datareach": "datareach audit --engine duckdb -o OUT/",
              "reference": "plain DuckDB SQL (conn+ssl+dns, group by name)"}
    print()
    print(f"{conn_rows:,} conn rows, {size / 1e9:.2f} GB of Zeek TSV, {env_note}, {args.runs} runs each")
    print("| | median wall time (range) | conn rows/s (median) | peak memory, process tree (range) |")
    print("|---|---|---|---|")
    medians = {}
    for name, r in results.items():
        times, mems = [t for t, _ in r], [m / 1024 for _, m in r]
        medians[name] = statistics.median(times)
        print(f"| {labels[name]} | {medians[name]:.2f} s ({min(times):.2f}-{max(times):.2f}) | "
              f"{conn_rows / medians[name]:,.0f} | {statistics.median(mems):.0f} MiB ({min(mems):.0f}-{max(mems):.0f}) |")
    if "datareach" in medians:
        print(f"\nratio: datareach takes {medians['datareach'] / medians['reference']:.2f}x the reference's time")


if __name__ == "__main__":
    main()
