"""The public Python API: ``datareach.audit(...)``.

The pipeline, in order:

1. **ingest** -- each input's reader yields records (:mod:`datareach.model`);
2. **resolve** -- connections are named (:mod:`datareach.resolve.naming`), grouped into
   destinations, and enriched column by column with geography and registrable domains
   (:mod:`datareach.resolve.geo`, :mod:`datareach.resolve.domains`);
3. **report** -- :class:`Audit` holds the same content as the JSON document
   (:meth:`Audit.to_dict`), which :mod:`datareach.report` renders.
"""

from __future__ import annotations

import hashlib
import operator
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach import __version__
from datareach.assess import Policy, assess, load_policy, verdict
from datareach.ingest import detect_format, read_input
from datareach.kb import knowledge_base
from datareach.model import CONNECTION_FIELDS, Connection, ConnectionBatch, DnsAnswer, Exchange, InputError
from datareach.resolve.ownership import OwnershipResolver, ReachOptions, attach_ownership
from datareach.timestamps import iso

if TYPE_CHECKING:
    from datareach.detect import Profile
    from datareach.resolve.geo import GeoResolver

SCHEMA_VERSION = "1.1"


@dataclass
class InputReport:
    path: str
    format: str | None
    sha256: str
    size: int
    records_read: int = 0
    errors: list[InputError] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "sha256": self.sha256,
            "size": self.size,
            "records_read": self.records_read,
            "errors": [e.to_json() for e in self.errors],
        }


@dataclass
class Audit:
    """The result of an audit: the same content as the JSON document."""

    inputs: list[InputReport]
    destinations: list[dict[str, Any]]
    exchanges: list[dict[str, Any]]
    dns: list[dict[str, Any]]
    data_sources: list[dict[str, Any]]
    generated_at: str
    findings: list[dict[str, Any]] = field(default_factory=list)
    #: The exchanges with their request headers (and bodies with ``keep_bodies``); not in the JSON.
    raw_exchanges: list[Exchange] = field(default_factory=list, repr=False)
    #: What detection ran with: the matcher engine, whether a profile was given, values revealed.
    detection: dict[str, Any] = field(default_factory=dict)
    #: The laws cited in the destinations' ``reach``, by id, with their effect and sources.
    laws: dict[str, Any] = field(default_factory=dict)
    #: The policies judged against (``--policy``), and what they found.
    policies: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(e for i in self.inputs for e in i.errors)

    def summary(self) -> dict[str, Any]:
        return {
            "destinations": len(self.destinations),
            "registrable_domains": len({d["registrable_domain"] or d["host"] for d in self.destinations}),
            "connections": sum(d["connections"] for d in self.destinations),
            "bytes_out": sum(d["bytes_out"] for d in self.destinations),
            "bytes_in": sum(d["bytes_in"] for d in self.destinations),
            "exchanges": len(self.exchanges),
            "countries": sorted({c for d in self.destinations for c in d["countries"]}),
            "apps": sorted({d["app"] for d in self.destinations if d["app"]}),
            "errors": sum(len(i.errors) for i in self.inputs),
            "findings": len(self.findings),
            "data_types": sorted({f["data_type"] for f in self.findings}),
            "data_categories": sorted({c for f in self.findings for c in f["categories"]}),
            "owners": sorted({d["owner"]["ultimate_parent"]["name"] for d in self.destinations if d.get("owner")}),
            "unattributed": sum(1 for d in self.destinations if not d.get("owner")),
            "jurisdictions": sorted({r["jurisdiction"] for d in self.destinations for r in d.get("reach", ())}),
            **verdict(self.policies, self.violations),
        }

    @property
    def failed(self) -> bool:
        """A ``deny`` rule is violated and no allow entry covers it (exit status 3)."""
        return any(v["action"] == "deny" and v["allowed"] is None for v in self.violations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "datareach", "version": __version__},
            "generated_at": self.generated_at,
            "data_sources": self.data_sources,
            "inputs": [i.to_dict() for i in self.inputs],
            "summary": self.summary(),
            "destinations": self.destinations,
            "exchanges": self.exchanges,
            "dns": self.dns,
            "detection": self.detection,
            "findings": self.findings,
            "laws": self.laws,
            "policies": self.policies,
            "violations": self.violations,
        }


def prepare(geo: GeoResolver | None = None) -> GeoResolver:
    """Load the resolve stage's code and data: Arrow, the geo database, the public suffix list.

    Returns ``geo``, or a resolver on the shipped geo data when it is None.
    """
    from datareach.resolve import destinations, domains
    from datareach.resolve.geo import GeoResolver

    del destinations  # imported for its own imports (pyarrow), which take a moment
    resolver = geo if geo is not None else GeoResolver()
    resolver.load()
    domains.load()
    return resolver


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def audit(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    geo_db: Sequence[str | os.PathLike[str]] | None = None,
    keep_bodies: bool = False,
    progress: Callable[[int, int], None] | None = None,
    profile: Profile | str | os.PathLike[str] | None = None,
    reveal: bool = False,
    detect: bool = True,
    engine: str = "auto",
    reach_options: ReachOptions | None = None,
    policies: Sequence[str | os.PathLike[str] | Policy] = (),
) -> Audit:
    """Audit capture files (pcap, pcapng, HAR; detected from content).

    ``geo_db``: MaxMind-format .mmdb files to use instead of the shipped geo data.
    ``keep_bodies``: keep request headers and bodies in :attr:`Audit.raw_exchanges`.
    ``progress(input_index, bytes_done)`` is called while large inputs are read.
    ``profile``: the test device's values (a :class:`~datareach.detect.Profile` or a TOML file)
    to find in every request, in any encoding; personal data is also found by pattern unless
    ``detect=False``. Found values are redacted in the result unless ``reveal``. ``engine``
    picks the matcher ("auto", "hyperscan", "portable"). ``reach_options`` sets the
    ownership walk's control threshold (:class:`~datareach.resolve.ownership.ReachOptions`).
    ``policies``: presets (``us-doj-bulk-data``, ``us-padfa``, ``eu-gdpr-transfers``), policy
    files or :class:`~datareach.assess.Policy` objects to judge the result against: they fill
    :attr:`Audit.violations` (a policy that cannot be read raises
    :class:`~datareach.assess.PolicyError` before anything is read).
    """
    if isinstance(policies, str | os.PathLike | Policy):  # one policy given on its own
        policies = [policies]
    judged = [p if isinstance(p, Policy) else load_policy(p) for p in policies]
    detector = None
    if detect:
        from datareach.detect.detector import Detector
        from datareach.detect.profile import load_profile

        prof = load_profile(Path(profile)) if isinstance(profile, str | os.PathLike) else profile
        detector = Detector(prof, engine=engine)
    def on_request(ex: Exchange) -> None:
        # runs where the request is read (a parallel reader's own process), so that the
        # detectors use every core and request bodies need not travel between processes
        if detector is not None:
            ex.findings, ex.decode_cuts = detector.detect(ex)
        if not keep_bodies and ex.request_body:
            ex.request_body_size = len(ex.request_body)
            ex.request_body = b""

    reports: list[InputReport] = []
    conns: list[tuple[Any, ...]] = []
    answers: list[DnsAnswer] = []
    exchanges: list[Exchange] = []
    digests: list[tuple[InputReport, Future[tuple[str, int]]]] = []
    user_geo = None
    if geo_db:  # a user's .mmdb files are opened now: a wrong file is reported before reading
        from datareach.resolve.geo import GeoResolver

        user_geo = GeoResolver([Path(p) for p in geo_db])
    prepared: list[GeoResolver] = []

    def while_waiting() -> None:
        # a parallel reader's processes are running: load the resolve stage meanwhile
        if not prepared:
            prepared.append(prepare(user_geo))

    # A helper thread hashes each input once it is read (hashing releases the GIL, so it runs on
    # another core while the next input is read and while the destinations are built).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as helper:
        for idx, raw in enumerate(inputs):
            path = Path(raw)
            rep = InputReport(str(raw), None, "", 0)
            reports.append(rep)
            try:
                rep.format = detect_format(path)
            except OSError as e:
                rep.errors.append(InputError(f"cannot read the file: {e.strerror or e}", fatal=True))
                continue
            cb = (lambda n, i=idx: progress(i, n)) if progress is not None else None
            for rec in read_input(path, idx, rep.format, cb, while_waiting, keep_bodies or detector is not None,
                                  on_request):
                if isinstance(rec, ConnectionBatch):
                    conns.extend(rec.rows)
                    rep.records_read += len(rec.rows) - 1  # (+1 below)
                elif isinstance(rec, Connection):
                    conns.append(_connection_row(rec))
                elif isinstance(rec, DnsAnswer):
                    answers.append(rec)
                elif isinstance(rec, Exchange):
                    exchanges.append(rec)
                else:
                    rep.errors.append(rec)
                    continue
                rep.records_read += 1
            digests.append((rep, helper.submit(_sha256, path)))
        geo = prepared[0] if prepared else prepare(user_geo)
        from datareach.resolve.destinations import build_destinations
        from datareach.resolve.geo import fill_servers
        from datareach.resolve.naming import DnsIndex
        from datareach.resolve.tables import connections_table

        dns = DnsIndex((a.ts, a.qname, a.address, a.cname_chain, a.input_index) for a in answers)
        destinations = build_destinations(connections_table(conns), dns, geo)
        kb = knowledge_base()
        if not geo_db and kb.mmdb_paths:
            fill_servers(destinations, kb.mmdb_paths)
        generated = datetime.now(UTC)
        resolver = OwnershipResolver(kb, reach_options)
        laws = attach_ownership(destinations, resolver, generated.date().isoformat())
        for rep, digest in digests:
            try:
                rep.sha256, rep.size = digest.result()
            except OSError as e:
                rep.errors.append(InputError(f"cannot read the file: {e.strerror or e}", fatal=True))
    from datareach.resolve.domains import psl_source

    sources = [s.to_json() for s in geo.sources()] + [psl_source().to_json()] + kb.data_sources()
    ordered = sorted(exchanges, key=lambda e: e.ts)
    position = {id(e): i for i, e in enumerate(ordered)}
    exchange_docs = [_exchange_json(e) for e in ordered]
    found = [(ex, f) for ex in ordered for f in ex.findings or ()]
    if not reveal:  # the requests' own URLs would show what the findings redact
        from datareach.detect.profile import redact_url

        where: dict[int, set[str]] = {}
        for ex, f in found:
            where.setdefault(position[id(ex)], set()).add(f.location)
        for i, locations in where.items():
            exchange_docs[i]["url"] = redact_url(exchange_docs[i]["url"], locations)
    finding_docs = [_finding_json(f, ex, position[id(ex)], reveal) for ex, f in found]
    finding_docs.sort(key=lambda f: (f["exchange"], f["source"], f["data_type"], f["location"]))
    _attach_data_types(destinations, finding_docs)
    violations = assess(judged, destinations, finding_docs, kb, resolver, generated.date().isoformat())
    return Audit(
        inputs=reports,
        destinations=destinations,
        exchanges=exchange_docs,
        dns=_dns_json(answers),
        data_sources=sources,
        generated_at=iso(generated.timestamp()) or "",
        findings=finding_docs,
        laws=laws,
        policies=[p.to_json(kb.cite) for p in judged],
        violations=violations,
        raw_exchanges=exchanges,
        detection={
            "enabled": detector is not None,
            "profile": detector is not None and detector.profile is not None,
            "engine": detector.engine if detector is not None else None,
            "revealed": reveal,
        },
    )


def _finding_json(f: Any, ex: Exchange, index: int, reveal: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "host": ex.host,
        "exchange": index,
        "data_type": f.data_type,
        "categories": f.categories,
        "source": f.source,
        "encoding": f.encoding,
        "location": f.location,
        "value_redacted": f.value_redacted,
        "confidence": round(f.confidence, 3),
        "app": ex.app,
    }
    if reveal:
        doc["value"] = f.value
    return doc


def _attach_data_types(destinations: list[dict[str, Any]], findings: list[dict[str, Any]]) -> None:
    """Each destination lists the kinds of data it received (its host and app's findings)."""
    kinds: dict[tuple[str | None, str], set[str]] = {}
    cats: dict[tuple[str | None, str], set[str]] = {}
    for f in findings:
        key = (f["app"], f["host"])
        kinds.setdefault(key, set()).add(f["data_type"])
        cats.setdefault(key, set()).update(f["categories"])
    for d in destinations:
        key = (d["app"], d["host"])
        d["data_types"] = sorted(kinds.get(key, ()))
        d["data_categories"] = sorted(cats.get(key, ()))


_connection_row = operator.attrgetter(*CONNECTION_FIELDS)


def _exchange_json(e: Exchange) -> dict[str, Any]:
    return {
        "ts": iso(e.ts),
        "host": e.host,
        "method": e.method,
        "url": e.url,
        "scheme": e.scheme,
        "http_version": e.http_version,
        "status": e.status,
        "request_body_size": e.request_body_size if e.request_body_size is not None else len(e.request_body),
        "request_body_truncated": e.request_body_truncated,
        "response_size": e.response_size,
        "server_ip": e.server_ip,
        "server_port": e.server_port,
        "app": e.app,
        "input": e.input_index,
        "decode_cuts": e.decode_cuts or [],
    }


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
