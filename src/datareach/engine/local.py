"""The local engine: every stage on this machine, the reading on every core.

``run`` goes through the stages in order:

1. **sources** -- each input's source (found by content, :mod:`datareach.sources`) yields
   records; a large capture is read by parallel processes, each handed the pipeline's
   per-request stage (detection) so that request bodies never travel between processes;
2. the connections become an Arrow table (:func:`datareach.schema.rows_table`), the DNS
   answers the index naming looks names up in; the exchanges get their ids and the findings
   their table;
3. **enrich** -- the connection stages, the group-by into destinations, the destination stages
   (:mod:`datareach.enrich.stages`);
4. **assess** -- the policies over the destination and finding tables;
5. the :class:`~datareach.engine.result.Audit`, which the report formats render.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import os
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach.engine import AuditOptions, Pipeline
from datareach.engine.dnstally import DnsTally
from datareach.engine.result import Audit, SummaryCounts
from datareach.engine.store import DocumentStore, DocumentView
from datareach.memory import give_back
from datareach.schema import (
    Connection,
    ConnectionBatch,
    Decryption,
    Destination,
    DnsAnswer,
    Exchange,
    Finding,
    InputError,
    InputReport,
    PacketAccounting,
    PreparedExchange,
    Violation,
    connection_uid,
    fields,
    rows_table,
    table_from_dicts,
    table_to_dicts,
    to_document,
)
from datareach.sources import detect_format, read_input
from datareach.timestamps import iso

if TYPE_CHECKING:
    import pyarrow as pa

    from datareach.enrich.geo import GeoResolver
    from datareach.enrich.stages import EnrichContext

__all__ = ["LocalEngine", "enrich_connections", "enrich_context", "enrich_destinations", "prepare", "user_geo"]


def prepare(geo: GeoResolver | None = None) -> GeoResolver:
    """Load the enrich stages' code and data: Arrow, the geo database, the public suffix list.

    Returns ``geo``, or a resolver on the shipped geo data when it is None.
    """
    from datareach.enrich import domains, stages
    from datareach.enrich.geo import GeoResolver

    del stages  # imported for its own imports (pyarrow), which take a moment
    resolver = geo if geo is not None else GeoResolver()
    resolver.load()
    domains.load()
    return resolver


def user_geo(options: AuditOptions) -> GeoResolver | None:
    """A resolver on the user's ``geo_db`` files (opened now: a wrong file raises
    :class:`~datareach.enrich.geo.GeoDatabaseError`), or None to use the shipped geo data."""
    if not options.geo_db:
        return None
    from datareach.enrich.geo import GeoResolver

    return GeoResolver([Path(p) for p in options.geo_db])


def enrich_context(options: AuditOptions, kb: Any, geo: GeoResolver, *, date: str = "",
                   dns: pa.Table | None = None, findings: pa.Table | None = None) -> EnrichContext:
    """The enrich stages' context for an audit with these options (the engine's and the live
    worker's alike): ``geo`` (``prepare(user_geo(options))``); the .mmdb files imported into the
    knowledge base fill what it lacks, unless the user gave geo files (they replace the shipped
    data, imports included); the ownership resolver with the options' reach options."""
    from datareach.enrich.ownership import OwnershipResolver
    from datareach.enrich.stages import EnrichContext

    return EnrichContext(
        dns=dns,
        geo=geo,
        extra_mmdb=kb.mmdb_paths if not options.geo_db else (),
        resolver=OwnershipResolver(kb, options.reach_options),
        date=date,
        findings=findings,
    )


def enrich_connections(pipeline: Pipeline, table: pa.Table, ctx: EnrichContext) -> pa.Table:
    """The pipeline's connection stages over a table of connections (naming: ``host``)."""
    for stage in pipeline.connection_stages:
        table = stage(table, ctx)
    return table


def enrich_destinations(pipeline: Pipeline, named: pa.Table, ctx: EnrichContext) -> pa.Table:
    """Named connections grouped into destinations, then the pipeline's destination stages."""
    from datareach.enrich.stages import group_destinations

    return destination_stages(pipeline, group_destinations(named, ctx), ctx)


def destination_stages(pipeline: Pipeline, dest: pa.Table, ctx: EnrichContext) -> pa.Table:
    """The pipeline's destination stages over a table of destinations."""
    for stage in pipeline.destination_stages:
        dest = stage(dest, ctx)
    return dest


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class LocalEngine:
    """Runs a pipeline in this process (and parallel reader processes for large captures)."""

    name = "local"

    def run(self, inputs: Sequence[str | os.PathLike[str]], pipeline: Pipeline, options: AuditOptions) -> Audit:
        from datareach.kb import knowledge_base

        _system_allocator()
        reports: list[InputReport] = []
        conns = ConnectionTables()
        answers = DnsTally()  # (aggregated as read: no object kept per answer)
        exchanges = ExchangeRows(options.reveal, options.keep_bodies)
        digests: list[tuple[InputReport, Future[tuple[str, int]]]] = []
        decrypted: set[str] = set()  # uids of the connections whose TLS was decrypted
        users_geo = user_geo(options)  # opened now: a wrong file is reported before reading
        prepared: list[GeoResolver] = []

        def while_waiting() -> None:
            # a parallel reader's processes are running: load the enrich stages meanwhile
            if not prepared:
                prepared.append(prepare(users_geo))

        keep = pipeline.read_bodies
        # (a parallel reader makes the exchanges' rows itself, unless the exchanges are kept whole)
        make_rows = None if exchanges.raw is not None else functools.partial(prepare_exchange, reveal=options.reveal)
        connection_row = _connection_row
        # A helper thread hashes each input once it is read (hashing releases the GIL, so it
        # runs on another core while the next input is read and while the tables are enriched).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as helper, _collector_relaxed():
            for idx, raw in enumerate(inputs):
                path = Path(raw)
                rep = InputReport(str(raw), None, "", 0)
                reports.append(rep)
                try:
                    rep.format = detect_format(path)
                except OSError as e:
                    rep.errors.append(InputError(f"cannot read the file: {e.strerror or e}", fatal=True))
                    continue
                cb = _progress_for(options.progress, idx)
                for rec in read_input(path, idx, rep.format, cb, while_waiting, keep, pipeline.per_request,
                                      pipeline.keys, make_rows):
                    if isinstance(rec, Decryption):
                        rep.decryption = rec.to_dict()
                        decrypted.update(rec.uids)
                        continue
                    if isinstance(rec, PacketAccounting):
                        rep.packets = rec.to_dict()
                        continue
                    if isinstance(rec, ConnectionBatch):
                        conns.add_batch(rec)
                        rep.records_read += len(rec) - 1  # (+1 below)
                    elif isinstance(rec, Connection):
                        conns.add(connection_row(rec))
                    elif isinstance(rec, DnsAnswer):
                        answers.add(rec)
                    elif isinstance(rec, PreparedExchange):
                        exchanges.add_prepared(rec)
                    elif isinstance(rec, Exchange):
                        exchanges.add(rec)
                    else:
                        rep.errors.append(rec)
                        continue
                    rep.records_read += 1
                    if not rep.records_read & TRIM_EVERY_MASK:
                        give_back()  # (what the records taken so far left freed: see _release_unused)
                if rep.format is None:  # not read: not hashed either (it may be anything, of any size)
                    with contextlib.suppress(OSError):
                        rep.size = path.stat().st_size
                    continue
                digests.append((rep, helper.submit(_sha256, path)))
            geo = prepared[0] if prepared else prepare(users_geo)
            with _collector_paused():
                audit = self._enrich_and_assess(pipeline, options, reports, conns, answers, exchanges, geo,
                                                knowledge_base(), decrypted)
            for rep, digest in digests:
                try:
                    rep.sha256, rep.size = digest.result()
                except OSError as e:
                    rep.errors.append(InputError(f"cannot read the file: {e.strerror or e}", fatal=True))
        return audit

    def _enrich_and_assess(self, pipeline: Pipeline, options: AuditOptions, reports: list[InputReport],
                           conns: ConnectionTables, answers: DnsTally, exchanges: ExchangeRows,
                           geo: GeoResolver, kb: Any, decrypted: set[str] | None = None) -> Audit:
        import pyarrow.compute as pc

        from datareach.assess import judge, sort_violations
        from datareach.enrich.domains import psl_source
        from datareach.enrich.stages import destination_chunks, split_local

        generated = datetime.now(UTC)
        today = generated.date().isoformat()
        _release_unused()  # (what taking the records freed)
        # The records become tables; each list is emptied as soon as its table is made, and each
        # table let go once the next stage no longer needs it (peak memory is what they add up to).
        # The DNS answers are aggregated first (DuckDB's working memory comes and goes), then the
        # exchanges and findings are put in order (arrays kept until the document is written).
        dns_docs = answers.rows()  # (made a batch at a time as the document is written)
        exchange_rows, finding_rows = exchanges.views()
        counts = SummaryCounts()  # (the rows counted as they are made: they are not read again for it)
        if pipeline.policies:
            findings = _findings_table(finding_rows, counts)
        else:  # (the stages need only which data types each (app, host) was found sending)
            findings = exchanges.kinds_table(counts)
        ctx = enrich_context(options, kb, geo, date=today, findings=findings)
        ctx.decrypted = sorted(decrypted or ())
        resolver = ctx.resolver
        assert resolver is not None  # enrich_context gives one
        table = conns.take()
        # naming looks answers up in an index: made from the tally of the answers, for the
        # addresses the connections went to and the names they may be named after
        # (an engine that has the DNS answers as a table gives it as ctx.dns instead)
        ctx.index_dns(answers.index(*_index_keys(table, exchanges.hosts)))
        answers.close()
        table = request_hosts(enrich_connections(pipeline, table, ctx), exchanges.hosts)
        table, local = split_local(table)
        exchanges.hosts = {}
        _release_unused()
        # the destinations, a chunk at a time in the document's order: each chunk judged, then
        # kept as JSON rows (a store that moves them to disk past its budget)
        destinations = DocumentStore()
        violations: list[dict[str, Any]] = []
        chunks = destination_chunks(table, ctx, pipeline.destination_stages)
        del table  # (the group-by lets the connections go once it has them grouped)
        for chunk in chunks:
            if pipeline.policies:
                # (only the findings of the chunk's hosts: the judge matches them by app and host)
                found = findings.filter(pc.is_in(findings.column("host"), value_set=chunk.column("host")))
                violations.extend(table_to_dicts(Violation, judge(pipeline.policies, chunk, found, kb, resolver,
                                                                  today, ctx.codec)))
            rows = table_to_dicts(Destination, chunk, codec=ctx.codec)
            counts.add_destinations(rows, pc.coalesce(chunk.column("registrable_domain"), chunk.column("host")))
            destinations.extend(rows)
            ctx.codec.forget()
            _release_unused()
        sort_violations(violations)  # (each chunk's are in order; all of them, by destination)
        ctx.release_dns()
        _release_unused()  # (what the stages freed: the report is written next, for a while)
        sources = [s.to_json() for s in geo.sources()] + [psl_source().to_json()] + kb.data_sources()
        from datareach.enrich.anycast import anycast_source

        sources.append(anycast_source().to_json())
        result = Audit(
            inputs=reports,
            destinations=destinations.view(),
            exchanges=exchange_rows,
            dns=dns_docs,
            local=local,
            data_sources=sources,
            generated_at=iso(generated.timestamp()) or "",
            findings=finding_rows,
            laws=dict(sorted(ctx.laws.items())),
            policies=[p.to_json(kb.cite) for p in pipeline.policies],
            violations=violations,
            raw_exchanges=exchanges.raw or [],
            detection=dict(pipeline.detection, revealed=options.reveal),
            counts=counts.result(len(exchange_rows)),
        )
        return result


def _index_keys(conns: pa.Table, hosts: dict[tuple[str, str], str]) -> tuple[set[str], set[str]]:
    """What the naming index is asked about: the connections' server addresses, and the names
    a destination may be named after (the hello's, the requests', the hosts already given; the
    addresses too, as a DNS name may be written as one)."""
    import pyarrow.compute as pc

    def values(name: str) -> list[str]:
        if name not in conns.column_names:
            return []
        return [v for v in pc.unique(conns.column(name)).to_pylist() if isinstance(v, str)]

    addresses = set(values("server_ip"))
    names = addresses.union([""], values("sni"), values("quic_sni"), values("http_host"), values("host"),
                            (h for _, h in hosts))
    return addresses, names


#: (app, host) pairs of requests remembered at most for :func:`request_hosts`.
MAX_REQUEST_HOSTS = 1 << 18


def request_hosts(conns: pa.Table, hosts: dict[tuple[str, str], str]) -> pa.Table:
    """Named connections, with a row for each (app, host) that requests name but no connection is
    named after: a browser sends the requests of several hosts its certificate covers over one
    HTTP/2 connection, named by its SNI after one of them. The row is a copy of the connection
    that carried the request, named after the request's host (``name_source`` http) and with no
    packets, bytes or flows of its own, so that every request's host is a destination (whose
    traffic is counted with the connection's own name) and is judged as one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not hosts or conns.num_rows == 0:
        return conns
    wanted = pa.table({"app": [a for a, _ in hosts], "host": [h for _, h in hosts], "wanted_uid": list(hosts.values())})
    have = pa.table({"app": pc.fill_null(conns.column("app"), ""), "host": pc.fill_null(conns.column("host"), "")})
    missing = wanted.join(have.group_by(["app", "host"]).aggregate([]), keys=["app", "host"], join_type="left anti")
    if missing.num_rows == 0:
        return conns
    by_uid = {u: i for i, u in enumerate(conns.column("uid").to_pylist())}
    rows = [(by_uid[u], h) for u, h in zip(missing.column("wanted_uid").to_pylist(), missing.column("host").to_pylist(),
                                           strict=True) if u in by_uid]
    if not rows:
        return conns
    extra = conns.take(pa.array([i for i, _ in rows]))
    hosts_col = pa.array([h for _, h in rows], extra.schema.field("host").type)
    extra = extra.set_column(extra.schema.get_field_index("host"), extra.schema.field("host"), hosts_col)
    for name in ("packets_out", "bytes_out", "packets_in", "bytes_in", "flows"):
        i = extra.schema.get_field_index(name)
        extra = extra.set_column(i, extra.schema.field(i), pa.array([0] * len(rows), extra.schema.field(i).type))
    i = extra.schema.get_field_index("name_source")
    extra = extra.set_column(i, extra.schema.field(i), pa.array(["http"] * len(rows), extra.schema.field(i).type))
    return pa.concat_tables([conns, extra])


#: Finding rows made into Arrow at a time (a dict per finding is ~1 KB: not all of them at once).
FINDINGS_CHUNK = 1 << 13


def _findings_table(rows: Sequence[dict[str, Any]], counts: SummaryCounts) -> Any:
    """The findings as one Arrow table, made (and counted) a chunk of rows at a time."""
    import pyarrow as pa

    chunks = []
    for start in range(0, len(rows), FINDINGS_CHUNK):
        docs = list(rows[start : start + FINDINGS_CHUNK])
        counts.add_findings(docs)
        chunks.append(table_from_dicts(Finding, docs))
    if not chunks:
        return table_from_dicts(Finding, [])
    return pa.concat_tables(chunks).combine_chunks()


def _system_allocator() -> None:
    """Arrow's buffers from the C library's allocator, unless ``ARROW_DEFAULT_MEMORY_POOL`` says
    otherwise (before the readers fork: they inherit it).

    Arrow's default (mimalloc) keeps what the readers' batches and the group-by's copies freed
    for reuse, which the stages after them never reuse: on a million connections the audit
    peaked about 90 MB higher with it, and was no faster on the benchmark capture.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


#: The C library's heap is trimmed each time this many more records have been taken (mask).
TRIM_EVERY_MASK = (1 << 16) - 1


def _release_unused() -> None:
    """Hand the memory Arrow's allocator keeps for reuse back to the system (it keeps what the
    readers' tables and the group-by's copies freed, which the stages after them never reuse),
    and what the C library keeps of what was freed (:func:`datareach.memory.give_back`: on the
    3 GB benchmark capture, 220 MB once the records were taken)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    give_back()


@contextlib.contextmanager
def _collector_relaxed() -> Iterator[None]:
    """Python's cyclic garbage collector runs rarely for a while (and as it was afterwards).

    Reading makes millions of short-lived acyclic objects; with the default thresholds the
    collector runs every 700 allocations and walks the young ones, and every so often all of
    them. What is alive when reading starts (modules, the knowledge base) is frozen out of its
    walks, and the first generation is collected every 100,000 allocations: cyclic garbage, if
    any, is still collected, only less often.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a while (and back as it was, whatever happens).

    The enrich stages make hundreds of thousands of small acyclic objects (rows, lists, dicts)
    while the records and the knowledge base are alive: each full collection would walk them all
    again, which took 40% of the enrichment's time on the benchmark capture. Nothing there makes
    reference cycles, so nothing is left for the collector to find.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _progress_for(progress: Callable[[int, int], None] | None, idx: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda n: progress(idx, n)


def _connection_row(c: Connection) -> tuple[Any, ...]:
    return tuple(getattr(c, f) for f in fields(Connection))


class ConnectionTables:
    """The connections as they are read, as Arrow tables: the readers' tables as they come,
    single records a batch of rows at a time (no Python object is kept per connection)."""

    BATCH = 1 << 14

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.rows: list[tuple[Any, ...]] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.BATCH:
            self.tables.append(rows_table(Connection, self.rows))
            self.rows = []

    def add_batch(self, batch: ConnectionBatch) -> None:
        for row in batch.rows:
            self.add(row)
        if batch.table is not None:
            self.tables.append(batch.table.select(list(fields(Connection))))

    def take(self) -> pa.Table:
        """Every connection as one table (and this emptied)."""
        import pyarrow as pa

        tables = [*self.tables, rows_table(Connection, self.rows)]
        self.tables, self.rows = [], []
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


class ExchangeRows:
    """The exchanges as they are read, kept as JSON rows (with their findings) in stores.

    Their ids are given once all are read (:meth:`views`): exchanges in time order, requests of
    the same time in the order they were read (HAR times are in milliseconds: many requests
    share one), ``E<input>.<n>`` counting each input's; findings by exchange, source, data type
    and location, ``F<n>``, each naming its exchange's id.
    """

    def __init__(self, reveal: bool, keep: bool = False) -> None:
        self.reveal = reveal
        self.rows = DocumentStore()
        self.ts = array("d")
        self.inputs = array("q")
        #: each exchange's connection number when its rows name it by another uid (a parallel
        #: reader's own): its rows are given ``C<input>.<number>`` as they are read; else -1
        self.conns = array("q")
        self.findings = DocumentStore()
        self.found_in = array("q")  # each finding's exchange (its place in self.rows)
        #: each finding's (source, data type, location), as the number of that triple in key_ids
        #: (4 bytes a finding: the triples repeat)
        self.finding_keys = array("i")
        self.key_ids: dict[tuple[str, str, str], int] = {}
        #: each distinct (app, host, data type, categories) of the findings, and how many there are
        self.kinds: set[tuple[str | None, str, str, tuple[str, ...]]] = set()
        #: each (app, host) the requests name, with the uid of a connection that carried one
        self.hosts: dict[tuple[str, str], str] = {}
        #: the Exchange records themselves, with their headers and bodies (``keep_bodies``)
        self.raw: list[Exchange] | None = [] if keep else None

    def add(self, e: Exchange) -> None:
        self.add_prepared(prepare_exchange(e, self.reveal))
        if self.raw is not None:
            self.raw.append(e)

    def add_prepared(self, p: PreparedExchange) -> None:
        """An exchange whose rows are made (:func:`prepare_exchange`, here or in a reader)."""
        n = len(self.rows)
        key = (p.app or "", p.host)
        if p.uid and key not in self.hosts and len(self.hosts) < MAX_REQUEST_HOSTS:
            self.hosts[key] = p.uid
        self.rows.append_text(p.doc)
        self.ts.append(p.ts)
        self.inputs.append(p.input_index)
        self.conns.append(p.conn)
        key_ids = self.key_ids
        for text, triple, kind in p.findings:
            self.kinds.add(kind)
            self.findings.append_text(text)
            self.found_in.append(n)
            kid = key_ids.get(triple)
            if kid is None:
                kid = key_ids[triple] = len(key_ids)
            self.finding_keys.append(kid)

    def kinds_table(self, counts: SummaryCounts) -> pa.Table:
        """The findings' distinct (app, host, data_type, categories), as a table of those columns
        of :class:`~datareach.schema.Finding` (what the data_types stage reads), counted in
        ``counts`` as the findings themselves would be."""
        import pyarrow as pa

        from datareach.schema import arrow_schema

        counts.findings += len(self.findings)
        for _app, _host, kind, categories in self.kinds:
            counts.data_types.add(kind)
            counts.categories.update(categories)
        schema = arrow_schema(Finding)
        names = ("app", "host", "data_type", "categories")
        rows = sorted(self.kinds, key=lambda k: (k[0] or "", k[1], k[2], k[3]))
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        return pa.table([pa.array([list(v) if n == "categories" else v for v in col], schema.field(n).type)
                         for n, col in zip(names, cols, strict=True)],
                        schema=pa.schema([schema.field(n) for n in names]))

    def views(self) -> tuple[DocumentView, DocumentView]:
        """The exchanges and the findings in the document's order, with their ids."""
        import numpy as np

        # (positions as 4-byte integers up to 2**31 rows: these arrays live until the document
        # is written, and a 3 GB capture has millions of findings)
        n, nf = len(self.ts), len(self.found_in)
        wide = max(n, nf, len(self.key_ids)) >= 1 << 31
        itype, code = (np.int64, "q") if wide else (np.int32, "i")
        order = np.argsort(np.frombuffer(self.ts, dtype=np.float64), kind="stable").astype(itype)
        place = np.empty(n, dtype=itype)
        place[order] = np.arange(n, dtype=itype)
        inputs = self.inputs
        counters: dict[int, int] = {}
        nth = array(code, bytes(order.itemsize * n))
        for k, i in enumerate(order.tolist()):
            idx = inputs[i]
            nth[k] = counters.get(idx, 0)
            counters[idx] = nth[k] + 1
        order_list = array(code)
        order_list.frombytes(order.tobytes())
        del order

        def exchange_id(k: int) -> str:
            return f"E{inputs[order_list[k]]}.{nth[k]}"

        conns = self.conns
        renamed = any(c >= 0 for c in conns)

        def complete_exchange(k: int, row: dict[str, Any]) -> None:
            row["id"] = exchange_id(k)
            if renamed:
                i = order_list[k]
                if conns[i] >= 0:
                    row["uid"] = connection_uid(inputs[i], conns[i])

        # findings by their exchange's place, then (source, data type, location); in the order
        # read where those are the same (np.lexsort is stable)
        found_in = self.found_in
        triples = sorted(self.key_ids, key=self.key_ids.__getitem__)
        rank = np.empty(len(triples), dtype=itype)
        rank[np.array(sorted(range(len(triples)), key=triples.__getitem__), dtype=np.int64)] = np.arange(
            len(triples), dtype=itype)
        f_places = place[np.frombuffer(found_in, dtype=np.int64)] if nf else np.empty(0, itype)
        f_ranks = rank[np.frombuffer(self.finding_keys, dtype=np.int32)] if nf else np.empty(0, itype)
        f_order = array(code)
        f_order.frombytes(np.lexsort((f_ranks, f_places)).astype(itype).tobytes())
        del f_places, f_ranks
        places = array(code)  # (indexed once per finding: an array's items are Python ints)
        places.frombytes(place.tobytes())
        del place

        def complete_finding(k: int, row: dict[str, Any]) -> None:
            i = found_in[f_order[k]]
            row["id"] = f"F{k}"
            row["exchange"] = exchange_id(places[i])
            if renamed and conns[i] >= 0:
                row["uid"] = connection_uid(inputs[i], conns[i])

        if self.raw is not None:
            for k, i in enumerate(order_list):
                self.raw[i].id = exchange_id(k)
        return (self.rows.view(order_list, complete_exchange), self.findings.view(f_order, complete_finding))


def prepare_exchange(e: Exchange, reveal: bool) -> PreparedExchange:
    """The exchange's row and its findings' rows, as :class:`ExchangeRows` files them (a parallel
    reader makes them where it reads the exchange: ``read_input(..., prepare=...)``)."""
    import orjson

    e.id = ""  # (given by ExchangeRows.views())
    doc = _exchange_json(e)
    found = e.findings or ()
    if found and not reveal:  # the request's own URL would show what the findings redact
        from datareach.detect.profile import redact_url

        doc["url"] = redact_url(doc["url"], {f.location for f in found})
    findings = []
    for f in found:
        fdoc = _finding_json(f, e, reveal)
        findings.append((orjson.dumps(fdoc), (f.source, f.data_type, f.location),
                         (fdoc["app"], fdoc["host"], fdoc["data_type"], tuple(fdoc["categories"]))))
    return PreparedExchange(e.ts, e.input_index, e.uid, e.app, e.host, orjson.dumps(doc), tuple(findings))


def _finding_json(f: Any, ex: Exchange, reveal: bool) -> dict[str, Any]:
    return to_document(Finding(
        id="", exchange=ex.id or "", uid=ex.uid, host=ex.host, app=ex.app, data_type=f.data_type,
        categories=f.categories, source=f.source, encoding=f.encoding, location=f.location,
        value_redacted=f.value_redacted, confidence=round(f.confidence, 3),
        encrypted_in_transit=ex.scheme in ("https", "wss"), value=f.value if reveal else None))


def _exchange_json(e: Exchange) -> dict[str, Any]:
    size = e.request_body_size if e.request_body_size is not None else len(e.request_body)
    return to_document(e, request_body_size=size, decode_cuts=e.decode_cuts or [])
