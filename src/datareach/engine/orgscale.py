"""What a log audit adds to an audit: the organisation's view, whatever engine ran the SQL.

The DuckDB and Spark engines both end here, with the same statements (in their
:class:`~datareach.engine.logsql.Dialect`) run through a :class:`SqlRunner`:

* :func:`detect_requests` -- the HTTP requests the logs describe through the pipeline's
  per-request stage (detection); the device and person identifiers found become rows for the
  bulk count (their values hashed, never kept);
* :func:`enrich_and_assess` -- the connection groups through the local engine's group-by,
  destination stages and policies (the same code a capture goes through);
* :func:`organise` -- the organisation section and the Parquet tables: every connection
  with its destination's owner and reach; per owner (and ultimate parent); per client device;
  and the bulk-data counts per covered counterparty, judged by :mod:`datareach.assess.bulk`.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from datareach.engine import AuditOptions, Pipeline
from datareach.engine.logsql import MAX_SERVERS, Dialect, client_key
from datareach.schema import Exchange, InputReport

if TYPE_CHECKING:
    import pyarrow as pa

    from datareach.engine.result import Audit
    from datareach.sources.logs import LogSet

__all__ = ["Detected", "LogRunner", "SqlRunner", "detect_requests", "enrich_and_assess", "organise", "run_logs"]

#: Requests with findings kept in the JSON document at most (all of them are in findings.parquet).
MAX_EXCHANGES = 10_000
#: Client devices listed in the document (all of them are in clients.parquet).
MAX_CLIENTS = 100
#: Distinct DNS answers (name, address) that give the destinations' ``names`` and CNAME chains.
MAX_DNS_NAMES = 200_000
#: Distinct requests whose findings detection remembers.
MAX_MEMO = 1 << 16
#: Distinct DNS answers listed in the document's ``dns`` (the first seen).
MAX_DNS_IN_DOCUMENT = 10_000
#: Data types that identify a device, and a person, for the bulk count (28 CFR 202.205 counts
#: "U.S. devices" for precise geolocation and "U.S. persons" for the others).
DEVICE_IDS = frozenset({"advertising_id", "gaid", "idfa", "aaid", "oaid", "maid", "idfv", "vendor_id",
                        "android_id", "imei", "meid", "device_id", "udid", "serial", "serial_number",
                        "iccid", "imsi", "sim_serial"})
PERSON_IDS = frozenset({"email", "phone", "email_md5", "email_sha1", "email_sha256", "hashed_email"})


class SqlRunner(Protocol):
    """How :func:`organise` runs its statements on an engine."""

    dialect: Dialect

    def table(self, sql: str) -> pa.Table:
        """The rows of a query, as an Arrow table."""
        ...

    def register(self, name: str, table: pa.Table) -> None:
        """Make an Arrow table queryable under ``name``."""
        ...

    def write_parquet(self, sql: str, path: Path) -> None:
        """Write the rows of a query to a Parquet file."""
        ...


class LogRunner(SqlRunner, Protocol):
    """An engine's side of :func:`run_logs`: what differs between DuckDB and Spark."""

    #: what the engine is doing, for its progress line
    phase: str

    def materialise(self, name: str, sql: str, table: bool) -> None:
        """``sql`` under ``name``: computed once and kept (``table``), or a view."""
        ...

    def release(self, names: Sequence[str]) -> None:
        """Let kept relations go."""
        ...

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query, as tuples."""
        ...

    def batches(self, sql: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a query, ``size`` at a time, without holding them all."""
        ...

    def rejected(self, logs: LogSet) -> list[tuple[int, str]]:
        """(input index, message) of each file's lines the engine's readers could not read."""
        ...

    def stages(self, pipeline: Pipeline, options: AuditOptions) -> Pipeline:
        """The pipeline whose destination stages this engine runs (Spark: on its executors)."""
        ...


@dataclass
class Detected:
    """What detection made of the logs' requests."""

    #: the exchanges with findings, as the local engine keeps them (JSON rows)
    exchanges: Any
    requests: int = 0
    with_findings: int = 0
    #: (host, client_ip, client_mac, uid, ts, category, unit, kind, hash) of each device or
    #: person identifier found next to data of a US DOJ category
    identifiers: list[tuple[Any, ...]] = field(default_factory=list)
    #: (uid, host, data_type, categories, source, location, value_redacted) of every finding
    findings: list[tuple[Any, ...]] = field(default_factory=list)
    dropped: int = 0
    #: distinct DNS answers for the destinations' servers (the document lists the first ones)
    dns_answers: int = 0


def _hash(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:24]


def detect_requests(batches: Iterable[list[Exchange]], pipeline: Pipeline, options: AuditOptions,
                    macs: dict[str, str] | None = None) -> Detected:
    """Each request through the per-request stage; the exchanges with findings kept (at most
    :data:`MAX_EXCHANGES` in the document), and the identifiers the bulk count needs."""
    from datareach.engine.local import ExchangeRows

    rows = ExchangeRows(options.reveal)
    out = Detected(exchanges=rows)
    per_request = pipeline.per_request
    # (a request the logs repeat -- the same method, host, target, user agent and referrer, no
    # body -- is found the same: its findings are looked up, not searched again)
    memo: dict[tuple[Any, ...], tuple[Any, Any]] = {}
    for batch in batches:
        for ex in batch:
            out.requests += 1
            if per_request is not None:
                key = None if ex.request_body else (ex.method, ex.host, ex.target, tuple(ex.request_headers))
                known = memo.get(key) if key is not None else None
                if known is not None:
                    ex.findings, ex.decode_cuts = list(known[0] or []), known[1]
                else:
                    per_request(ex)
                    if key is not None and len(memo) < MAX_MEMO:
                        memo[key] = (ex.findings, ex.decode_cuts)
            found = ex.findings or []
            if not found:
                continue
            out.with_findings += 1
            cats = sorted({c for f in found for c in f.categories if c.startswith("us-doj:")})
            devices = sorted({_hash(f.value) for f in found if f.data_type in DEVICE_IDS and f.value})
            persons = sorted({_hash(f.value) for f in found if f.data_type in PERSON_IDS and f.value})
            mac = (macs or {}).get(ex.uid or "")
            for cat in cats:
                for unit, ids in (("devices", devices), ("persons", persons)):
                    for h in ids:
                        out.identifiers.append((ex.host, ex.client_ip, mac, ex.uid, ex.ts, cat, unit, h))
            for f in found:
                out.findings.append((ex.uid, ex.host, ex.client_ip, ex.ts, f.data_type, list(f.categories),
                                     f.source, f.location, f.value_redacted))
            if len(rows.rows) < MAX_EXCHANGES:
                ex.request_body = b""
                rows.add(ex)
            else:
                out.dropped += 1
    return out


def enrich_and_assess(pipeline: Pipeline, options: AuditOptions, reports: list[InputReport], groups: pa.Table,
                      answers: Sequence[Any], detected: Detected, clients: dict[str, int],
                      internal: list[dict[str, Any]]) -> Audit:
    """The connection groups (``logsql.groups_sql``) through the local engine's enrich and
    assess stages: destinations, owners, reach, violations."""
    import pyarrow as pa

    from datareach.engine.dnstally import DnsTally
    from datareach.engine.local import ConnectionTables, LocalEngine, prepare, user_geo
    from datareach.kb import knowledge_base
    from datareach.schema import Connection, arrow_schema

    schema = arrow_schema(Connection)
    n = groups.num_rows
    cols: dict[str, Any] = {}
    for f in schema:
        if f.name in groups.column_names:
            cols[f.name] = groups.column(f.name).cast(f.type)
        elif f.name == "ech":
            cols[f.name] = pa.array([False] * n, f.type)
        elif f.name == "alpn":
            cols[f.name] = pa.array([[]] * n, f.type)
        else:
            cols[f.name] = pa.nulls(n, f.type)
    table = pa.table(cols, schema=schema)
    table = table.append_column("host", groups.column("host").cast(pa.string()))
    table = table.append_column("name_source", groups.column("name_source").cast(pa.string()))

    class _Grouped(ConnectionTables):
        def take(self) -> pa.Table:
            return table

    detected.exchanges.hosts = {}
    geo = prepare(user_geo(options))
    tally = DnsTally()
    for a in answers:
        tally.add(a)
    audit = LocalEngine()._enrich_and_assess(replace(pipeline, connection_stages=()), options, reports,
                                             _Grouped(), tally, detected.exchanges, geo, knowledge_base())
    audit.local = [{"protocol": g["protocol"], "connections": g["connections"], "packets": 0, "bytes": g["bytes"],
                    "addresses": [], "servers": g["servers"], "internal": True} for g in internal]
    dests = list(audit.destinations)
    for d in dests:
        d["clients"] = clients.get(d["host"])
    audit.destinations = dests
    # (the document's distinct DNS answers: the first ones; the logs hold them all)
    detected.dns_answers = len(audit.dns)
    audit.dns = list(audit.dns[:MAX_DNS_IN_DOCUMENT])
    if audit.counts is not None:  # (every request the logs describe was read, not only those kept)
        audit.counts["exchanges"] = detected.requests
    return audit


def _owner_rows(destinations: Sequence[dict[str, Any]], covered: set[str]) -> list[dict[str, Any]]:
    """Each destination host with its owner, parent, reach and whether the owner is covered."""
    out = []
    for d in destinations:
        owner = d.get("owner") or {}
        parent = owner.get("ultimate_parent") or {}
        reach = d.get("reach") or []
        out.append({
            "host": d["host"], "destination": d["id"], "owner_id": owner.get("entity"), "owner": owner.get("name"),
            "parent_id": parent.get("entity"), "parent": parent.get("name"),
            "jurisdictions": sorted({r["jurisdiction"] for r in reach if r.get("jurisdiction")}),
            "owner_jurisdictions": sorted({r["jurisdiction"] for r in reach if r.get("basis") in ("owner", "parent")
                                         and r.get("jurisdiction")}),
            "covered": bool(owner.get("entity")) and owner.get("entity") in covered,
            "country": d.get("country"),
        })
    return out


#: Files listed by name in the organisation section's ``skipped`` at most (all are counted).
MAX_SKIPPED_LISTED = 50


def organise(runner: SqlRunner, audit: Audit, pipeline: Pipeline, detected: Detected, options: AuditOptions,
             rows: dict[str, int], output_dir: Path | None = None,
             skipped: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The organisation section (set on ``audit.organisation``) and, with ``output_dir``, the
    Parquet tables. Needs the engine's ``named`` and ``leases`` relations."""
    import pyarrow as pa

    from datareach.assess import bulk
    from datareach.schema import BulkCount, ClientSummary, OwnerSummary, arrow_schema, table_from_dicts
    from datareach.timestamps import iso

    d = runner.dialect
    dests = list(audit.destinations)
    policy = next((p for p in pipeline.policies if getattr(p, "id", "") == "us-doj-bulk-data"), None)
    covered = bulk.covered_counterparties(dests, policy)
    owners_by_host = _owner_rows(dests, set(covered))
    enrich = pa.Table.from_pylist(owners_by_host, schema=pa.schema([
        ("host", pa.string()), ("destination", pa.string()), ("owner_id", pa.string()), ("owner", pa.string()),
        ("parent_id", pa.string()), ("parent", pa.string()), ("jurisdictions", pa.list_(pa.string())),
        ("owner_jurisdictions", pa.list_(pa.string())), ("covered", pa.bool_()), ("country", pa.string())]))
    runner.register("host_enrich", enrich)
    key = client_key("n", "l")
    period_row = runner.table("SELECT min(ts) AS first, max(ts + coalesce(duration, 0.0)) AS last FROM named").to_pylist()
    first = period_row[0]["first"] if period_row else None
    last = period_row[0]["last"] if period_row else None
    days = (last - first) / 86400.0 if first is not None and last is not None else 0.0
    period = {"first": iso(first), "last": iso(last), "days": round(days, 3)}
    # (the twelve months the verdicts speak of: the calendar year of days ending on the last day)
    window_start = bulk.window(period)[0] if last is not None else None
    # -- per owner --------------------------------------------------------------------------------------
    owner_counts = runner.table(f"""
        SELECT e.owner_id, CAST(sum(coalesce(n.bytes_out, 0)) AS BIGINT) AS bytes_out, CAST(sum(coalesce(n.bytes_in, 0)) AS BIGINT) AS bytes_in,
               count(*) AS connections, count(DISTINCT {key}) AS clients, count(DISTINCT n.host) AS destinations,
               min(n.ts) AS first_seen, max(n.ts + coalesce(n.duration, 0.0)) AS last_seen
        FROM named n JOIN host_enrich e ON n.host = e.host LEFT JOIN leases l ON n.client_ip = l.ip
        WHERE e.owner_id IS NOT NULL AND NOT n.internal
        GROUP BY e.owner_id""").to_pylist()
    bases: dict[str, dict[str, set[str]]] = {}
    names: dict[str, tuple[str, str | None, str | None]] = {}
    for dst in dests:
        owner = dst.get("owner") or {}
        oid = owner.get("entity")
        if not oid:
            continue
        parent = owner.get("ultimate_parent") or {}
        names[oid] = (owner.get("name") or oid, parent.get("entity"), parent.get("name"))
        for r in dst.get("reach") or []:
            if not r.get("jurisdiction"):
                continue  # (an anycast / CDN edge server's location: not determinable)
            bases.setdefault(oid, {}).setdefault(r["jurisdiction"], set()).add(r.get("basis") or "")
    owners = []
    for c in sorted(owner_counts, key=lambda c: (-(c["bytes_out"] or 0), c["owner_id"])):
        oid = c["owner_id"]
        name, pid, pname = names.get(oid, (oid, None, None))
        js = bases.get(oid, {})
        owners.append({
            "owner_id": oid, "owner": name, "parent_id": pid, "parent": pname,
            "jurisdictions": sorted(js), "bases": [f"{j}: {', '.join(sorted(b))}" for j, b in sorted(js.items())],
            "covered": oid in covered,
            "bytes_out": int(c["bytes_out"] or 0), "bytes_in": int(c["bytes_in"] or 0),
            "connections": int(c["connections"]), "clients": int(c["clients"]), "destinations": int(c["destinations"]),
            "first_seen": iso(c["first_seen"]), "last_seen": iso(c["last_seen"])})
    # -- per client device (the covered owners it talks to) ------------------------------------------------
    clients = runner.table(f"""
        SELECT {key} AS client, min(n.client_ip) AS client_ip, max(coalesce(n.client_mac, l.mac)) AS client_mac,
               max(l.host_name) AS host_name, {d.sorted_set('e.owner')} AS owners,
               CAST(sum(coalesce(n.bytes_out, 0)) AS BIGINT) AS bytes_out, CAST(sum(coalesce(n.bytes_in, 0)) AS BIGINT) AS bytes_in,
               count(*) AS connections
        FROM named n JOIN host_enrich e ON n.host = e.host LEFT JOIN leases l ON n.client_ip = l.ip
        WHERE e.covered AND NOT n.internal
        GROUP BY {key}""").to_pylist()
    for c in clients:  # (DuckDB's sums are 128-bit: plain ints here)
        c["owners"] = list(c["owners"] or [])
        for k in ("bytes_out", "bytes_in", "connections"):
            c[k] = int(c[k] or 0)
    clients.sort(key=lambda c: (-c["bytes_out"], c["client"]))
    # -- bulk-data counts per covered counterparty -------------------------------------------------------
    found = pa.table({name: pa.array([r[i] for r in detected.identifiers], typ) for i, (name, typ) in enumerate((
        ("host", pa.string()), ("client_ip", pa.string()), ("client_mac", pa.string()), ("uid", pa.string()),
        ("ts", pa.float64()), ("category", pa.string()), ("unit", pa.string()), ("id_hash", pa.string())))})
    runner.register("found_ids", found)
    since = f"{window_start!r}" if window_start is not None else "0"
    ident = {(r["owner_id"], r["category"], r["unit"]): int(r["ids"]) for r in runner.table(f"""
        SELECT e.owner_id, f.category, f.unit, count(DISTINCT f.id_hash) AS ids
        FROM found_ids f JOIN host_enrich e ON f.host = e.host
        WHERE e.covered AND f.ts >= {since} GROUP BY e.owner_id, f.category, f.unit""").to_pylist()}
    categories: dict[str, set[str]] = {}
    for r in runner.table("""
        SELECT DISTINCT e.owner_id, f.category FROM found_ids f JOIN host_enrich e ON f.host = e.host
        WHERE e.covered""").to_pylist():
        categories.setdefault(r["owner_id"], set()).add(r["category"])
    cat_by_host: dict[str, set[str]] = {}
    for dst in dests:
        for cat in dst.get("data_categories") or []:
            if cat.startswith("us-doj:"):
                cat_by_host.setdefault(dst["host"], set()).add(cat)
    for row in owners_by_host:
        if row["covered"]:
            categories.setdefault(row["owner_id"], set()).update(cat_by_host.get(row["host"], set()))
    screening = {r["owner_id"]: r for r in runner.table(f"""
        SELECT e.owner_id, count(DISTINCT {key}) AS clients, count(*) AS connections,
               CAST(sum(CASE WHEN n.protocol = 'http' THEN 1 ELSE 0 END) AS BIGINT) AS readable
        FROM named n JOIN host_enrich e ON n.host = e.host LEFT JOIN leases l ON n.client_ip = l.ip
        WHERE e.covered AND NOT n.internal AND n.ts >= {since}
        GROUP BY e.owner_id""").to_pylist()}
    counts = []
    for oid in sorted(covered):
        name, pid, pname = names.get(oid, (oid, None, None))
        s = screening.get(oid, {"clients": 0, "connections": 0, "readable": 0})
        share = (s["readable"] / s["connections"]) if s["connections"] else 0.0
        cats: list[str | None] = [*sorted(categories.get(oid, set()))] or [None]
        for cat in cats:
            unit = bulk.unit_of(cat) if cat else None
            counts.append({
                "counterparty_id": oid, "counterparty": name, "parent": pname, "category": cat,
                "identified": ident.get((oid, cat, unit), 0) if cat and unit else 0,
                "identifier_kinds": _kinds(unit), "screening": int(s["clients"]), "readable_share": share,
                "connections": int(s["connections"])})
    judged = bulk.judge(counts, period)
    org: dict[str, Any] = {
        "period": period,
        "rows": dict({k: v for k, v in rows.items() if k not in ("servers_cut", "dns_names_cut")},
                     requests=detected.requests,
                     requests_with_findings=detected.with_findings),
        "limits": {"exchanges_in_document": MAX_EXCHANGES, "exchanges_left_out": detected.dropped,
                   "clients_in_document": MAX_CLIENTS, "clients_left_out": max(0, len(clients) - MAX_CLIENTS),
                   "dns_in_document": MAX_DNS_IN_DOCUMENT,
                   "dns_left_out": max(0, detected.dns_answers - MAX_DNS_IN_DOCUMENT),
                   "servers_per_destination": MAX_SERVERS, "destinations_with_more_servers": rows.get("servers_cut", 0),
                   "dns_answers_for_names": MAX_DNS_NAMES, "dns_answers_for_names_cut": bool(rows.get("dns_names_cut"))},
        "skipped": {"files": len(skipped), "listed": [{"path": p, "why": why} for p, why in skipped[:MAX_SKIPPED_LISTED]]},
        "owners": owners,
        "clients": clients[:MAX_CLIENTS],
        "bulk": judged,
    }
    audit.organisation = org
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        runner.write_parquet("""
            SELECT n.uid, n.ts, n.duration, n.client_ip, n.client_port, n.client_mac, n.server_ip, n.server_port,
                   n.transport, n.protocol, n.bytes_out, n.bytes_in, n.packets_out, n.packets_in, n.community_id,
                   n.input_index, n.host, n.name_source, n.internal, e.destination, e.owner_id, e.owner,
                   e.parent_id, e.parent, e.jurisdictions, e.covered, e.country
            FROM named n LEFT JOIN host_enrich e ON n.host = e.host""", output_dir / "connections.parquet")
        import pyarrow.parquet as pq

        from datareach.schema import Destination

        pq.write_table(table_from_dicts(Destination, dests), output_dir / "destinations.parquet")
        pq.write_table(table_from_dicts(OwnerSummary, owners), output_dir / "owners.parquet")
        pq.write_table(table_from_dicts(ClientSummary, clients), output_dir / "clients.parquet")
        pq.write_table(table_from_dicts(BulkCount, judged) if judged else arrow_schema(BulkCount).empty_table(),
                       output_dir / "bulk.parquet")
    return org


def _kinds(unit: str | None) -> list[str]:
    if unit == "devices":
        return ["advertising or device identifiers"]
    if unit == "persons":
        return ["e-mail addresses, hashed e-mail addresses, phone numbers"]
    return []


# -- the run, for both engines ------------------------------------------------------------------------

#: Request bodies read from extracted files at most (bytes).
MAX_BODY = 1 << 20
#: The HTTP requests of the logs, in time order.
HTTP_SQL = """
SELECT h.ts, h.method, h.host, h.uri, h.user_agent, h.referrer, h.request_body_len, h.status,
       h.server_ip, h.server_port, h.client_ip, h.uid, h.input_index, h.body_file
FROM http h ORDER BY h.ts, h.uid"""


def run_logs(runner: LogRunner, inputs: Sequence[str | os.PathLike[str]], logs: LogSet, pipeline: Pipeline,
             options: AuditOptions, timings: dict[str, float]) -> tuple[Audit, dict[str, int]]:
    """A log audit on an engine whose normalised relations (``conn``, ``names``, ``dns``,
    ``http``, ``dhcp``) are registered: naming, grouping, detection, the local engine's
    destination stages and policies, the organisation section and the Parquet tables. Returns
    the audit and the rows counted; ``timings`` gets each phase's seconds."""
    from datareach.engine import logsql
    from datareach.schema import DnsAnswer

    d = runner.dialect
    t0 = t = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = round(now - t, 3)
        t = now

    report = options.log_progress
    runner.phase = "naming connections"
    steps = logsql.naming_steps(d)
    for name, sql, table in steps:
        runner.materialise(name, sql, table)
    runner.release([name for name, _sql, _table in steps if name != "named"])  # (named holds what they did)
    runner.materialise("leases", logsql.leases_sql(d), True)
    rows = {"conn": int(runner.rows("SELECT count(*) FROM named")[0][0])}
    phase("read_and_name")
    if report is not None:
        report("naming connections", rows["conn"], rows["conn"])
    runner.phase = "grouping"
    groups = runner.table(logsql.groups_sql(d))
    clients = {str(h): int(n) for h, n in runner.rows(logsql.host_clients_sql(d))}
    internal = [dict(zip(("protocol", "connections", "bytes", "servers"), r, strict=True))
                for r in runner.rows(logsql.internal_sql(d) + " ORDER BY 2 DESC, 1")]
    runner.register("kept_groups", groups)
    dns_rows = runner.rows(logsql.dns_names_sql(d, MAX_DNS_NAMES))
    rows["servers_cut"] = int(runner.rows(logsql.servers_cut_sql(d))[0][0])
    phase("group")
    runner.phase = "detecting personal data in requests"
    rows["http"] = int(runner.rows("SELECT count(*) FROM http")[0][0])
    rows["dns"] = int(runner.rows("SELECT count(*) FROM dns")[0][0])
    exchanges = detect_requests(_exchanges(runner.batches(HTTP_SQL, 4096), logs), pipeline, options)
    phase("detect")
    runner.phase = "enriching destinations"
    reports = input_reports(inputs, logs, rows, runner.rejected(logs))
    answers = [DnsAnswer(ts=r[0], qname=r[1], rtype=r[2], address=r[3], cname_chain=tuple(r[4] or (r[1],)),
                         ttl=int(r[5] or 0), input_index=int(r[6])) for r in dns_rows]
    rows["dns_names_cut"] = int(len(dns_rows) >= MAX_DNS_NAMES)  # (a limit, not an input error)
    audit = enrich_and_assess(runner.stages(pipeline, options), options, reports, groups, answers, exchanges,
                              clients, internal)
    phase("enrich_and_assess")
    runner.phase = "writing the organisation's tables"
    out = Path(options.output_dir) if options.output_dir is not None else None
    organise(runner, audit, pipeline, exchanges, options, rows, out,
             [(p, why) for p, why in logs.skipped if not why.startswith("cannot be read")])
    phase("organisation")
    runner.release(["named", "leases"])
    timings["total"] = round(time.perf_counter() - t0, 3)
    return audit, rows


def _exchanges(batches: Iterable[list[tuple[Any, ...]]], logs: LogSet) -> Iterator[list[Exchange]]:
    """The rows of :data:`HTTP_SQL` as exchanges, a batch at a time."""
    dirs = {f.input_index: Path(f.path).parent for f in logs.files if f.kind in ("http", "files", "eve")}
    for rows in batches:
        batch: list[Exchange] = []
        for (ts, method, host, uri, ua, ref, body_len, status, sip, sport, cip, uid, idx, body_file) in rows:
            host = host or sip or ""
            uri = uri or "/"
            headers = [("Host", host)]
            if ua:
                headers.append(("User-Agent", ua))
            if ref:
                headers.append(("Referer", ref))
            body = read_body(dirs.get(idx), body_file)
            batch.append(Exchange(
                ts=float(ts or 0.0), scheme="http", method=method or "GET", host=host.lower(),
                url=f"http://{host}{uri if uri.startswith('/') else '/' + uri}", target=uri, http_version="HTTP/1.1",
                request_headers=headers, request_body=body, request_body_size=body_len if not body else None,
                status=status, server_ip=sip, server_port=sport, client_ip=cip, uid=uid, input_index=int(idx or 0)))
        yield batch


def read_body(base: Path | None, name: str | None) -> bytes:
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


def input_reports(inputs: Sequence[str | os.PathLike[str]], logs: LogSet, rows: dict[str, int],
                  rejected: Sequence[tuple[int, str]] = ()) -> list[InputReport]:
    """One report per input: its logs (the hash of their names and sizes), the rows read, the
    files that could not be opened, and the ``rejected`` lines (input index, message)."""
    from datareach.schema import InputError

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
        # (a file that could not be opened is an error; one that is no log, or outside the
        # window, is listed in the organisation section's ``skipped``)
        for p, why in logs.skipped:
            if p.startswith(str(given)) and why.startswith("cannot be read"):
                rep.errors.append(InputError(f"{p}: {why}"))
        reports.append(rep)
    for idx, message in rejected:
        if 0 <= idx < len(reports):
            reports[idx].errors.append(InputError(message))
    return reports
