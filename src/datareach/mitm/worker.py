"""The addon's worker: live lines while traffic flows, the audit reports when the proxy stops.

The addon (running inside mitmproxy) writes one JSON record per completed flow
(``datareach/mitm/flowconv.py``) to this process's standard input. For each record the worker
finds the destination's owner, ultimate parent and reach, and the request's personal data, and
prints one line per *new* destination and per *new* finding (a finding is new when its host,
data type, place and encoding chain have not been seen yet). At end of input (the proxy
stopped) it audits the flow file the addon saved, with the same pipeline as ``datareach audit``,
and writes ``REPORT.json`` and ``REPORT.html``.

All of this runs in its own process, so the proxy's event loop never waits for it. A failure
on one record is logged (standard error) and the next record is read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from datareach.ingest.mitm import ENV_PYTHON, FlowState, clean_host, clean_ip, exchange_from_record

if TYPE_CHECKING:
    from datareach.detect import Profile

log = logging.getLogger("datareach.mitm")
PREFIX = "datareach:"


def safe(text: object) -> str:
    """Captured text for a terminal: control and other non-printable characters escaped."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in s)


def owner_text(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "owner unknown"
    up = owner.get("ultimate_parent") or {}
    own = f"owner {owner['name']}" + (f" ({owner['hq_country']})" if owner.get("hq_country") else "")
    if up and up.get("entity") != owner.get("entity"):
        own += f" -> ultimate parent {up['name']}" + (f" ({up['hq_country']})" if up.get("hq_country") else "")
    else:
        own += " (its own ultimate parent)"
    return own


def reach_text(reach: Sequence[dict[str, Any]]) -> str:
    parts: list[str] = []
    for r in reach:
        item = f"{r['jurisdiction']} ({r['basis']})"
        if item not in parts:
            parts.append(item)
    return "reach " + (", ".join(parts) if parts else "none known")


class LiveAnalyzer:
    """Turns flow records into live lines (see the module docstring)."""

    def __init__(self, profile: Profile | None = None, *, out: IO[str] | None = None, detect: bool = True) -> None:
        from datareach.api import prepare
        from datareach.kb import knowledge_base
        from datareach.resolve.ownership import OwnershipResolver

        self.out = out if out is not None else sys.stdout
        self.detector = None
        if detect:
            from datareach.detect.detector import Detector

            self.detector = Detector(profile)
        self.resolver = OwnershipResolver(knowledge_base())
        self.geo = prepare()
        self.state = FlowState()
        self._geo_cache: dict[str, dict[str, Any]] = {}
        #: host -> (owner, reach), for every destination seen
        self.destinations: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {}
        self._seen_findings: set[tuple[object, ...]] = set()
        self.findings = 0  #: every finding, repeated ones included
        self.records = 0
        self.failures = 0

    def _server(self, ip: str) -> dict[str, Any]:
        hit = self._geo_cache.get(ip)
        if hit is None:
            import pyarrow as pa

            row = self.geo.enrich(pa.array([ip], pa.string())).to_pylist()[0]
            hit = {"ip": ip, "ip_scope": row.get("ip_scope"), "country": row.get("country"),
                   "asn": row.get("asn"), "as_org": row.get("as_org")}
            if len(self._geo_cache) < 100_000:
                self._geo_cache[ip] = hit
        return hit

    def _emit(self, line: str) -> None:
        self.out.write(f"{PREFIX} {line}\n")
        self.out.flush()

    def _destination(self, host: str, ip: str | None, ts: float) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        known = self.destinations.get(host)
        if known is not None:
            return known
        servers = [self._server(ip)] if ip else []
        date = datetime.fromtimestamp(ts if ts > 0 else datetime.now(UTC).timestamp(), UTC).date().isoformat()
        owner, reach = self.resolver.resolve(host, date, servers=servers)
        self.destinations[host] = (owner, reach)
        where = ""
        if servers:
            s = servers[0]
            where = f" [{ip} {s['country'] or s['ip_scope'] or ''}".rstrip() + "]"
        self._emit(f"destination {safe(host)}{where}: {owner_text(owner)}; {reach_text(reach)}")
        return owner, reach

    def handle(self, rec: dict[str, Any]) -> None:
        """One flow record: print what is new. Never raises (failures are logged)."""
        self.records += 1
        try:
            self._handle(rec)
        except Exception:
            self.failures += 1
            log.exception("datareach: could not analyse flow %s", safe(rec.get("id")))

    def _handle(self, rec: dict[str, Any]) -> None:
        ex = exchange_from_record(rec)
        if ex is None:
            host = clean_host(rec.get("sni")) or clean_host(rec.get("server_address")) or clean_ip(rec.get("server_ip"))
            if host:
                ts = rec.get("ts")
                self._destination(host, clean_ip(rec.get("server_ip")), ts if isinstance(ts, float | int) else 0.0)
            return
        owner, reach = self._destination(ex.host, ex.server_ip, ex.ts)
        if self.detector is None:
            return
        found, _cuts = self.detector.detect(ex)
        for f in found:
            self.findings += 1
            key = (ex.host, f.data_type, f.source, f.location, tuple(f.encoding))
            if key in self._seen_findings:
                continue
            self._seen_findings.add(key)
            self._emit(f"finding {safe(ex.host)}: {f.data_type} ({f.source}) at {safe(f.location)}: "
                       f"{safe(' > '.join(f.encoding))}; {owner_text(owner)}; {reach_text(reach)}")


def write_reports(flows: Path, report: str, profile: Profile | None, policies: Sequence[str],
                  out: IO[str]) -> dict[str, Any]:
    """Audit the saved flow file; write ``REPORT.json`` and ``REPORT.html``. Returns the document."""
    import datareach
    from datareach.report.html import render_html
    from datareach.report.json_report import render_json

    result = datareach.audit([flows], profile=profile, policies=list(policies))
    doc = result.to_dict()
    written = [f"{report}.json", f"{report}.html"]
    Path(written[0]).write_text(render_json(doc), encoding="utf-8")
    Path(written[1]).write_text(render_html(doc), encoding="utf-8")
    s = doc["summary"]
    line = (f"{PREFIX} report: {', '.join(written)} ({s['destinations']} destinations, {s['exchanges']} requests, "
            f"{s['findings']} findings; flows saved in {flows})")
    if s.get("verdict"):
        v = s.get("violations") or {}
        line += f"; policy verdict: {s['verdict']} ({v.get('deny', 0)} deny, {v.get('warn', 0)} warn)"
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
    parser.add_argument("--report", default="")
    parser.add_argument("--flows", default="", help="the flow file the addon saves (audited at the end)")
    parser.add_argument("--mitmproxy-python", default="", help="the Python running mitmproxy (reads the flows)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
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
    analyzer = LiveAnalyzer(profile)
    out = sys.stdout
    out.write(f"{PREFIX} live audit running (profile: {args.profile or 'none'}; "
              f"policy: {', '.join(policies) or 'none'})\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            rec = json.loads(line)
        except ValueError:
            log.warning("datareach: unreadable record from the addon; skipped")
            continue
        if isinstance(rec, dict):
            analyzer.handle(rec)
    out.write(f"{PREFIX} proxy stopped: {analyzer.records} flows, {len(analyzer.destinations)} destinations, "
              f"{analyzer.findings} findings ({len(analyzer._seen_findings)} distinct)\n")
    out.flush()
    if args.report and args.flows:
        flows = Path(args.flows)
        if not flows.is_file() or flows.stat().st_size == 0:
            out.write(f"{PREFIX} no flows were saved; no report written\n")
            return 0
        try:
            write_reports(flows, args.report, profile, policies, out)
        except Exception:
            log.exception("datareach: the final report could not be written")
            return 1
    return 0
