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
import gc
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach.engine import AuditOptions, Pipeline
from datareach.engine.result import Audit
from datareach.schema import (
    Connection,
    ConnectionBatch,
    DnsAnswer,
    Exchange,
    Finding,
    InputError,
    InputReport,
    Violation,
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

        reports: list[InputReport] = []
        conns: list[tuple[Any, ...]] = []
        answers: list[DnsAnswer] = []
        exchanges: list[Exchange] = []
        digests: list[tuple[InputReport, Future[tuple[str, int]]]] = []
        users_geo = user_geo(options)  # opened now: a wrong file is reported before reading
        prepared: list[GeoResolver] = []

        def while_waiting() -> None:
            # a parallel reader's processes are running: load the enrich stages meanwhile
            if not prepared:
                prepared.append(prepare(users_geo))

        keep = pipeline.read_bodies
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
                for rec in read_input(path, idx, rep.format, cb, while_waiting, keep, pipeline.per_request):
                    if isinstance(rec, ConnectionBatch):
                        conns.extend(rec.rows)
                        rep.records_read += len(rec.rows) - 1  # (+1 below)
                    elif isinstance(rec, Connection):
                        conns.append(connection_row(rec))
                    elif isinstance(rec, DnsAnswer):
                        answers.append(rec)
                    elif isinstance(rec, Exchange):
                        exchanges.append(rec)
                    else:
                        rep.errors.append(rec)
                        continue
                    rep.records_read += 1
                digests.append((rep, helper.submit(_sha256, path)))
            geo = prepared[0] if prepared else prepare(users_geo)
            with _collector_paused():
                audit = self._enrich_and_assess(pipeline, options, reports, conns, answers, exchanges, geo,
                                                knowledge_base())
            for rep, digest in digests:
                try:
                    rep.sha256, rep.size = digest.result()
                except OSError as e:
                    rep.errors.append(InputError(f"cannot read the file: {e.strerror or e}", fatal=True))
        return audit

    def _enrich_and_assess(self, pipeline: Pipeline, options: AuditOptions, reports: list[InputReport],
                           conns: list[tuple[Any, ...]], answers: list[DnsAnswer], exchanges: list[Exchange],
                           geo: GeoResolver, kb: Any) -> Audit:
        from datareach.assess import judge
        from datareach.enrich.domains import psl_source
        from datareach.enrich.stages import destination_documents, group_destinations, order_destinations

        generated = datetime.now(UTC)
        today = generated.date().isoformat()
        exchange_docs, finding_docs = exchange_and_finding_documents(exchanges, options.reveal)
        # The records become tables; each list is emptied as soon as its table is made, and each
        # table let go once the next stage no longer needs it (peak memory is what they add up to).
        dns_docs = _dns_json(answers)
        ctx = enrich_context(options, kb, geo, date=today, findings=table_from_dicts(Finding, finding_docs))
        # naming looks answers up in an index: made straight from the records this engine holds
        # (an engine that has the DNS answers as a table gives it as ctx.dns instead)
        ctx.index_dns((a.ts, a.qname, a.address, a.cname_chain, a.input_index) for a in answers)
        answers.clear()
        resolver = ctx.resolver
        assert resolver is not None  # enrich_context gives one
        table = rows_table(Connection, conns)
        conns.clear()
        table = enrich_connections(pipeline, table, ctx)
        dest = group_destinations(table, ctx)
        del table
        ctx.release_dns()
        dest = order_destinations(destination_stages(pipeline, dest, ctx))
        violations = judge(pipeline.policies, dest, ctx.findings, kb, resolver, today, ctx.codec)
        sources = [s.to_json() for s in geo.sources()] + [psl_source().to_json()] + kb.data_sources()
        documents = destination_documents(dest, ctx.codec)
        del dest
        return Audit(
            inputs=reports,
            destinations=documents,
            exchanges=exchange_docs,
            dns=dns_docs,
            data_sources=sources,
            generated_at=iso(generated.timestamp()) or "",
            findings=finding_docs,
            laws=dict(sorted(ctx.laws.items())),
            policies=[p.to_json(kb.cite) for p in pipeline.policies],
            violations=table_to_dicts(Violation, violations),
            raw_exchanges=exchanges,
            detection=dict(pipeline.detection, revealed=options.reveal),
        )


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


def exchange_and_finding_documents(exchanges: list[Exchange], reveal: bool) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]]]:
    """The exchanges in time order, each given its id, and the findings they carry (each with
    its id, naming its exchange's), as the JSON document has them."""
    # by time; requests of the same time stay in the order they were read (HAR times are in
    # milliseconds: many requests share one)
    ordered = sorted(exchanges, key=lambda e: e.ts)
    counters: dict[int, int] = {}
    for e in ordered:
        n = counters.get(e.input_index, 0)
        counters[e.input_index] = n + 1
        e.id = f"E{e.input_index}.{n}"
    docs = [_exchange_json(e) for e in ordered]
    found = [(i, ex, f) for i, ex in enumerate(ordered) for f in ex.findings or ()]
    if not reveal:  # the requests' own URLs would show what the findings redact
        from datareach.detect.profile import redact_url

        where: dict[int, set[str]] = {}
        for i, _ex, f in found:
            where.setdefault(i, set()).add(f.location)
        for i, locations in where.items():
            docs[i]["url"] = redact_url(docs[i]["url"], locations)
    findings = [(i, _finding_json(f, ex, reveal)) for i, ex, f in found]
    findings.sort(key=lambda p: (p[0], p[1]["source"], p[1]["data_type"], p[1]["location"]))
    out = [doc for _, doc in findings]
    for n, doc in enumerate(out):
        doc["id"] = f"F{n}"
    return docs, out


def _finding_json(f: Any, ex: Exchange, reveal: bool) -> dict[str, Any]:
    return to_document(Finding(
        id="", exchange=ex.id or "", uid=ex.uid, host=ex.host, app=ex.app, data_type=f.data_type,
        categories=f.categories, source=f.source, encoding=f.encoding, location=f.location,
        value_redacted=f.value_redacted, confidence=round(f.confidence, 3), value=f.value if reveal else None))


def _exchange_json(e: Exchange) -> dict[str, Any]:
    size = e.request_body_size if e.request_body_size is not None else len(e.request_body)
    return to_document(e, request_body_size=size, decode_cuts=e.decode_cuts or [])


def _dns_json(answers: Sequence[DnsAnswer]) -> list[dict[str, Any]]:
    """Distinct (name, address, chain) answers with when they were first seen and how often."""
    seen: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
    for a in answers:
        key = (a.qname, a.address, a.cname_chain)
        row = seen.get(key)
        if row is None:
            seen[key] = {
                "qname": a.qname, "rtype": a.rtype, "address": a.address,
                "cname_chain": list(a.cname_chain), "ttl": a.ttl,
                "first_seen": a.ts, "answers": 1, "input": a.input_index,
            }
        else:
            row["answers"] += 1
            row["first_seen"] = min(row["first_seen"], a.ts)
    out = sorted(seen.values(), key=lambda r: (r["first_seen"], r["qname"], r["address"]))
    for r in out:
        r["first_seen"] = iso(r["first_seen"])
    return out
