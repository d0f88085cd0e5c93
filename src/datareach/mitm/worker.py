"""The addon's worker: live lines while traffic flows, the audit reports when the proxy stops.

The addon (running inside mitmproxy) writes one JSON record per completed flow
(``datareach/sources/mitm_bridge.py``) to this process's standard input. Each record goes through
the stages of ``datareach audit``'s pipeline (see :class:`LiveAnalyzer`): the request's personal
data, the destination's host, server country and AS, owner, ultimate parent and reach. What is
live-only is the printing: one line per *new* destination (host) and per *new* finding (a
finding is new when its host, data type, place and encoding chain have not been seen yet). At
end of input (the proxy stopped) it audits the flow file the addon saved, with the same options
(``--geo-db`` included), and writes ``REPORT.json`` and ``REPORT.html``: on the same flows, a
destination's live line and its row in the report agree.

All of this runs in its own process, so the proxy's event loop never waits for it. A failure
on one record is logged (standard error) and the next record is read.

Everything in a flow is the client's or the server's to choose, so no line this process writes
carries it raw: each value in a live line goes through :func:`~datareach.report.terminal.safe`,
and the log (tracebacks included, which may quote a flow's values) is written through
:class:`SafeFormatter`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from datareach.report.service_wording import service_line
from datareach.report.terminal import safe
from datareach.report.wording import owner_chain_line, reach_line
from datareach.schema import Connection, DnsAnswer, Exchange, InputError, JsonCodec, fields, rows_table
from datareach.sources.mitm import ENV_PYTHON, FlowState, records_from_flow

if TYPE_CHECKING:
    from datareach.detect import Profile
    from datareach.enrich.stages import EnrichContext

log = logging.getLogger("datareach.mitm")
PREFIX = "datareach:"


def owner_text(owner: dict[str, Any] | None) -> str:
    """``owner X (CC) -> ultimate parent Y (CC)`` for a live line (see :mod:`datareach.report.wording`)."""
    return safe(owner_chain_line(owner))


def reach_text(reach: Sequence[dict[str, Any]]) -> str:
    """``reach CN (owner), US (host), US (location)`` for a live line."""
    return safe("reach " + reach_line(reach, grouped=False))


#: How many connections, hosts, DNS names and distinct findings the worker remembers; past that
#: the oldest are forgotten (a forgotten host or finding may get a second line).
LIMIT = 100_000


def destination_line(dest: Mapping[str, Any]) -> str:
    """The live line of a destination: its host, its first server's address, country (or address
    scope) and AS, its owner, its service (the SDK or product, where known) and reach. ``dest`` is a destination of the JSON document (the worker
    makes them with the same stages as the audit, so a report's destination gives the same line)."""
    ips = dest.get("ips") or []
    where = " ".join(str(x) for x in (ips[0] if ips else "", dest.get("country") or dest.get("ip_scope")) if x)
    asn, as_org = dest.get("asn"), dest.get("as_org")
    as_text = " ".join(str(x) for x in (f"AS{asn}" if asn is not None else "", as_org) if x)
    facts = ", ".join(x for x in (where, as_text) if x)
    bracket = f" [{safe(facts)}]" if facts else ""
    service = service_line(dest.get("service"))
    return (f"destination {safe(dest['host'])}{bracket}: {owner_text(dest.get('owner'))}; "
            + (f"service {safe(service)}; " if service else "")
            + reach_text(dest.get("reach") or ()))


class SafeFormatter(logging.Formatter):
    """A log formatter whose every line (message, traceback) is made printable with
    :func:`~datareach.report.terminal.safe`; the line breaks between them stay."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(safe(line) for line in super().format(record).split("\n"))


def _remember(memory: dict[Any, Any], key: Any, value: Any) -> None:
    """``memory[key] = value``, forgetting the oldest entry once ``memory`` holds LIMIT."""
    if key not in memory and len(memory) >= LIMIT:
        del memory[next(iter(memory))]
    memory[key] = value


class LiveAnalyzer:
    """Turns flow records into live lines (see the module docstring).

    Each record becomes model records as the flow-file reader makes them
    (:func:`~datareach.sources.mitm.records_from_flow`); each request goes through the pipeline's
    per-request stage (detection, as ``datareach audit`` sets it up); a new connection goes through
    the pipeline's connection stages (naming), and when its host is new, the grouping and the
    destination stages (geo with the audit's geo data -- ``geo_db`` files instead of the shipped
    data, else the shipped data filled from the knowledge base's imported .mmdb files --,
    domains, ownership) run on that one connection: the same stage objects, the same context
    (:func:`datareach.engine.local.enrich_context`) as the audit of the saved flows.
    """

    def __init__(self, profile: Profile | None = None, *, out: IO[str] | None = None, detect: bool = True,
                 geo_db: Sequence[str | os.PathLike[str]] = ()) -> None:
        from datareach.api import build_pipeline
        from datareach.engine import AuditOptions
        from datareach.engine.local import enrich_context, prepare, user_geo
        from datareach.kb import knowledge_base

        self.out = out if out is not None else sys.stdout
        self.options = AuditOptions(geo_db=tuple(geo_db), profile=profile, detect=detect)
        self.pipeline = build_pipeline(self.options)
        #: the per-request stage: detection (the request body is dropped afterwards)
        self.per_request = self.pipeline.per_request
        self.ctx = enrich_context(self.options, knowledge_base(), prepare(user_geo(self.options)),
                                  dns=rows_table(DnsAnswer, []))
        self.state = FlowState()
        self._conns: dict[str, Connection] = {}  # uid -> the state's connection
        self._conn_host: dict[str, str] = {}  # uid -> the host naming gave it
        #: host -> its destination (a JSON document row), for the destinations remembered
        self.destinations: dict[str, dict[str, Any]] = {}
        self._dns_by_ip: dict[str, list[DnsAnswer]] = {}
        self._dns_by_name: dict[str, list[DnsAnswer]] = {}  # answers through CNAMEs, by name asked
        self._seen_findings: dict[tuple[object, ...], None] = {}
        self.destinations_seen = 0  #: destination lines printed
        self.findings = 0  #: every finding, repeated ones included
        self.distinct_findings = 0  #: finding lines printed
        self.records = 0
        self.failures = 0

    def _emit(self, line: str) -> None:
        self.out.write(f"{PREFIX} {line}\n")
        self.out.flush()

    def handle(self, rec: dict[str, Any]) -> None:
        """One flow record: print what is new. Never raises (failures are logged)."""
        self.records += 1
        try:
            self._handle(rec)
        except Exception:
            self.failures += 1
            log.exception("datareach: could not analyse flow %s", safe(rec.get("id")))

    def _handle(self, rec: dict[str, Any]) -> None:
        state = self.state
        if len(state.conns) >= LIMIT:  # connection ids restart: forget them all at once
            state.conns.clear()
            self._conns.clear()
            self._conn_host.clear()
        before = len(state.conns)
        records = records_from_flow(rec, state)
        conn = next(reversed(state.conns.values())) if len(state.conns) > before else None
        if conn is not None:
            self._conns[conn.uid] = conn
        ex: Exchange | None = None
        for r in records:
            if isinstance(r, Exchange):
                ex = r
            elif isinstance(r, DnsAnswer):
                self._remember_dns(r)
            elif isinstance(r, InputError):
                log.debug("datareach: %s", safe(r.message))
        if ex is not None and conn is None:
            conn = self._conns.get(ex.uid or "")
        dest = self._destination(conn) if conn is not None else None
        if ex is None or self.per_request is None:
            return
        self.per_request(ex)
        owner, reach = (dest.get("owner"), dest.get("reach") or []) if dest is not None else (None, [])
        for f in ex.findings or ():
            self.findings += 1
            key = (ex.host, f.data_type, f.source, f.location, tuple(f.encoding))
            if key in self._seen_findings:
                continue
            _remember(self._seen_findings, key, None)
            self.distinct_findings += 1
            self._emit(f"finding {safe(ex.host)}: {safe(f.data_type)} ({safe(f.source)}) at {safe(f.location)}: "
                       f"{safe(' > '.join(f.encoding))}; {owner_text(owner)}; {reach_text(reach)}")

    def _remember_dns(self, answer: DnsAnswer) -> None:
        known = self._dns_by_ip.get(answer.address)
        _remember(self._dns_by_ip, answer.address, [*(known or ())[-15:], answer])
        if len(answer.cname_chain) > 1:
            known = self._dns_by_name.get(answer.qname)
            _remember(self._dns_by_name, answer.qname, [*(known or ())[-3:], answer])

    def _context(self, conn: Connection) -> EnrichContext:
        """The audit's context, with the DNS answers seen so far that can name ``conn``."""
        answers = list(self._dns_by_ip.get(conn.server_ip, ()))
        for name in dict.fromkeys([conn.sni, conn.quic_sni, conn.http_host, *(a.qname for a in answers)]):
            if name:
                answers.extend(self._dns_by_name.get(name, ()))
        self.ctx.date = datetime.now(UTC).date().isoformat()
        unique = list({id(a): a for a in answers}.values())
        dns = rows_table(DnsAnswer, [tuple(getattr(a, f) for f in fields(DnsAnswer)) for a in unique])
        # a codec of its own: what it remembers lives as long as this one destination's stages
        return dataclasses.replace(self.ctx, dns=dns, _dns_index=None, codec=JsonCodec())

    def _destination(self, conn: Connection) -> dict[str, Any]:
        """The destination ``conn`` goes to (printed when its host is new)."""
        from datareach.engine.local import enrich_connections, enrich_destinations
        from datareach.enrich.stages import destination_documents

        host = self._conn_host.get(conn.uid)
        if host is not None and (known := self.destinations.get(host)) is not None:
            return known
        ctx = self._context(conn)
        named = enrich_connections(self.pipeline,
                                   rows_table(Connection, [tuple(getattr(conn, f) for f in fields(Connection))]), ctx)
        host = str(named.column("host")[0].as_py())
        self._conn_host[conn.uid] = host
        known = self.destinations.get(host)
        if known is not None:
            return known
        dest = destination_documents(enrich_destinations(self.pipeline, named, ctx), ctx.codec)[0]
        _remember(self.destinations, host, dest)
        self.destinations_seen += 1
        self._emit(destination_line(dest))
        return dest


def write_reports(flows: Path, report: str, profile: Profile | None, policies: Sequence[str],
                  out: IO[str], geo_db: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Any]:
    """Audit the saved flow file; write ``REPORT.json`` and ``REPORT.html``. Returns the document."""
    import datareach
    from datareach.report.html import render_html
    from datareach.report.json_report import render_json

    result = datareach.audit([flows], profile=profile, policies=list(policies), geo_db=list(geo_db))
    doc = result.to_dict()
    written = [f"{report}.json", f"{report}.html"]
    Path(written[0]).write_text(render_json(doc), encoding="utf-8")
    Path(written[1]).write_text(render_html(doc), encoding="utf-8")
    s = doc["summary"]
    line = (f"{PREFIX} report: {safe(', '.join(written))} ({s['destinations']} destinations, {s['exchanges']} "
            f"requests, {s['findings']} findings; flows saved in {safe(flows)})")
    if s.get("verdict"):
        v = s.get("violations") or {}
        line += f"; policy verdict: {safe(s['verdict'])} ({v.get('deny', 0)} deny, {v.get('warn', 0)} warn)"
    out.write(line + "\n")
    for inp in doc["inputs"]:
        for e in inp["errors"]:
            out.write(f"{PREFIX} {safe(inp['path'])}: {safe(e['message'])}\n")
    out.flush()
    return doc


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m datareach.mitm worker")
    parser.add_argument("--profile", default="")
    parser.add_argument("--policy", action="append", default=[])
    parser.add_argument("--geo-db", action="append", default=[],
                        help="a MaxMind-format .mmdb file to use instead of the shipped geo data (repeatable)")
    parser.add_argument("--report", default="")
    parser.add_argument("--flows", default="", help="the flow file the addon saves (audited at the end)")
    parser.add_argument("--mitmproxy-python", default="", help="the Python running mitmproxy (reads the flows)")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the proxy stopping closes our input: then we finish
    # the proxy comes first: the analysis runs only on CPU time nothing else wants (Linux
    # SCHED_IDLE; elsewhere a lower priority). Under load it lags behind -- the addon's queue
    # and the pipe hold the flows -- and catches up when the traffic pauses or stops.
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(AttributeError, OSError):
            os.nice(19)
    if args.mitmproxy_python and not os.environ.get(ENV_PYTHON):
        os.environ[ENV_PYTHON] = args.mitmproxy_python
    profile = None
    if args.profile:
        from datareach.detect.profile import load_profile

        profile = load_profile(Path(args.profile))
    policies = [p for item in args.policy for p in item.split(",") if p.strip()]
    analyzer = LiveAnalyzer(profile, geo_db=args.geo_db)
    out = sys.stdout
    out.write(safe(f"{PREFIX} live audit running (profile: {args.profile or 'none'}; "
                   f"policy: {', '.join(policies) or 'none'}"
                   + (f"; geo data: {', '.join(args.geo_db)}" if args.geo_db else "") + ")") + "\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            rec = json.loads(line)
        except ValueError:
            log.warning("datareach: unreadable record from the addon; skipped")
            continue
        if isinstance(rec, dict):
            analyzer.handle(rec)
    out.write(f"{PREFIX} proxy stopped: {analyzer.records} flows, {analyzer.destinations_seen} destinations, "
              f"{analyzer.findings} findings ({analyzer.distinct_findings} distinct)\n")
    out.flush()
    if args.report and args.flows:
        flows = Path(args.flows)
        if not flows.is_file() or flows.stat().st_size == 0:
            out.write(f"{PREFIX} no flows were saved; no report written\n")
            return 0
        try:
            write_reports(flows, args.report, profile, policies, out, args.geo_db)
        except Exception:
            log.exception("datareach: the final report could not be written")
            return 1
    return 0
