"""The result of an audit: :class:`Audit`, whatever engine made it.

Its content is the JSON document (:meth:`Audit.to_dict`); the records in it are declared in
:mod:`datareach.schema`. ``schema_version`` 2.0: records refer to each other by id
(docs/json-output.md says what changed from 1.x).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from datareach._version import __version__
from datareach.assess import verdict
from datareach.schema import Exchange, InputReport

SCHEMA_VERSION = "2.2"


class SummaryCounts:
    """What the ``summary`` counts, added up row by row: an engine that holds its rows only a
    chunk at a time counts them as it makes them (:attr:`Audit.counts`)."""

    def __init__(self) -> None:
        self.destinations = self.connections = self.bytes_out = self.bytes_in = self.unattributed = 0
        self.findings = 0
        self.domains: set[str] = set()
        #: or, from an engine that has the rows as tables, each chunk's distinct domains as an
        #: Arrow array (no Python string per destination)
        self.domain_arrays: list[Any] = []
        self.countries: set[str] = set()
        self.apps: set[str] = set()
        self.owners: set[str] = set()
        self.jurisdictions: set[str] = set()
        self.data_types: set[str] = set()
        self.categories: set[str] = set()
        #: the traffic's period: the earliest first_seen and the latest last_seen (ISO text)
        self.first_seen: str | None = None
        self.last_seen: str | None = None

    def add_destinations(self, rows: Iterable[dict[str, Any]], domains: Any = None) -> None:
        """Count destination rows; ``domains``: their registrable domains (the host where there
        is none) as an Arrow array, counted in Arrow instead of from the rows."""
        if domains is not None:
            import pyarrow.compute as pc

            self.domain_arrays.append(pc.unique(domains))
        for d in rows:
            self.destinations += 1
            if domains is None:
                self.domains.add(d["registrable_domain"] or d["host"])
            self.connections += d["connections"]
            self.bytes_out += d["bytes_out"]
            self.bytes_in += d["bytes_in"]
            servers = [s for s in d.get("servers") or () if isinstance(s, dict)]
            if any(s.get("anycast") for s in servers):
                # (an anycast / CDN edge server's country is the geo database's guess)
                self.countries.update(s["country"] for s in servers if s.get("country") and not s.get("anycast"))
            else:
                self.countries.update(d["countries"])
            if d["app"]:
                self.apps.add(d["app"])
            if d.get("owner"):
                self.owners.add(d["owner"]["ultimate_parent"]["name"])
            else:
                self.unattributed += 1
            self.jurisdictions.update(r["jurisdiction"] for r in d.get("reach", ()) if r.get("jurisdiction"))
            first, last = d.get("first_seen"), d.get("last_seen")
            if isinstance(first, str) and (self.first_seen is None or first < self.first_seen):
                self.first_seen = first
            if isinstance(last, str) and (self.last_seen is None or last > self.last_seen):
                self.last_seen = last

    def add_findings(self, rows: Iterable[dict[str, Any]]) -> None:
        for f in rows:
            self.findings += 1
            self.data_types.add(f["data_type"])
            self.categories.update(f["categories"])

    def _distinct_domains(self) -> int:
        if not self.domain_arrays:
            return len(self.domains)
        import pyarrow as pa
        import pyarrow.compute as pc

        arrays = [a.cast(pa.string()) for a in self.domain_arrays] + [pa.array(sorted(self.domains), pa.string())]
        return len(pc.unique(pa.chunked_array(arrays, pa.string())))

    def result(self, exchanges: int) -> dict[str, Any]:
        """The counts in the summary's order (``errors`` filled by :meth:`Audit.summary`)."""
        return {
            "destinations": self.destinations,
            "registrable_domains": self._distinct_domains(),
            "connections": self.connections,
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
            "exchanges": exchanges,
            "countries": sorted(self.countries),
            "apps": sorted(self.apps),
            "errors": 0,
            "findings": self.findings,
            "data_types": sorted(self.data_types),
            "data_categories": sorted(self.categories),
            "owners": sorted(self.owners),
            "unattributed": self.unattributed,
            "jurisdictions": sorted(self.jurisdictions),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


#: Location data this much older than the traffic gets a warning (networks move).
STALE_DATA_DAYS = 183


def _span(days: int) -> str:
    """``days`` in words: days, months or years."""
    if days < 60:
        return f"{days} day{'s' if days != 1 else ''}"
    if days < 730:
        return f"{round(days / 30.44)} months"
    return f"{round(days / 365.25)} years"


def data_age_warnings(first_seen: object, last_seen: object, data_sources: Iterable[dict[str, Any]]) -> list[str]:
    """Warnings when the traffic is older than the location data (the locations are the data's,
    not the traffic's) or much newer (:data:`STALE_DATA_DAYS`: networks may have moved since).

    ``first_seen`` and ``last_seen`` are the traffic's period (ISO text, from the destinations);
    the location data is every ``geo-*`` data source with a date (the oldest of them counts for
    the traffic after it, the newest for the traffic before it).
    """
    import datetime as _dt

    def day(value: object) -> _dt.date | None:
        if not isinstance(value, str) or len(value) < 10:
            return None
        try:
            return _dt.date.fromisoformat(value[:10])
        except ValueError:
            return None

    dates = [(d, str(s.get("name") or "")) for s in data_sources if isinstance(s, dict)
             and str(s.get("kind") or "").startswith("geo") for d in [day(s.get("date"))] if d is not None]
    first, last = day(first_seen), day(last_seen)
    if not dates or first is None or last is None:
        return []
    newest, oldest = max(dates)[0], min(dates)[0]
    seen = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    out: list[str] = []
    if first < newest:
        out.append(f"the capture is from {seen}; the location data is of {newest.isoformat()}: "
                   f"locations and networks are the data's, not the capture's ({_span((newest - first).days)} "
                   "apart)")
    elif (last - oldest).days > STALE_DATA_DAYS:
        out.append(f"the capture is from {seen}; the location data is of {oldest.isoformat()}, "
                   f"{_span((last - oldest).days)} older: networks may have moved since "
                   "(make update-network-data, or --geo-db with newer data)")
    return out


@dataclass
class Audit:
    """The result of an audit: the same content as the JSON document.

    ``destinations``, ``exchanges`` and ``findings`` are sequences of dicts: lists, or (from the
    local engine) views of a :class:`~datareach.engine.store.DocumentStore`, which reads its rows
    as they are asked for, so that a result of a million rows is not a million dicts in memory.
    :meth:`to_dict` gives lists; :meth:`document` gives the sequences as they are, for a writer
    that goes through them once (:func:`datareach.report.json_report.write_json`).
    """

    inputs: list[InputReport]
    destinations: Sequence[dict[str, Any]]
    exchanges: Sequence[dict[str, Any]]
    dns: Sequence[dict[str, Any]]
    data_sources: list[dict[str, Any]]
    generated_at: str
    findings: Sequence[dict[str, Any]] = field(default_factory=list)
    #: With ``keep_bodies``: the exchanges with their request headers and bodies; not in the JSON.
    raw_exchanges: list[Exchange] = field(default_factory=list, repr=False)
    #: What detection ran with: the matcher engine, whether a profile was given, values revealed.
    detection: dict[str, Any] = field(default_factory=dict)
    #: The laws cited in the destinations' ``reach``, by id, with their effect and sources.
    laws: dict[str, Any] = field(default_factory=dict)
    #: The policies judged against (``--policy``), and what they found.
    policies: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    #: The summary's counts (:meth:`SummaryCounts.result`), when the engine counted the rows.
    counts: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    #: Local-network traffic (multicast, broadcast, link-local), by protocol: not destinations.
    local: list[dict[str, Any]] = field(default_factory=list)
    #: Log audits: the organisation's view (period, owners, client devices, bulk-data counts).
    organisation: dict[str, Any] | None = None

    @property
    def has_errors(self) -> bool:
        return any(e for i in self.inputs for e in i.errors)

    def summary(self) -> dict[str, Any]:
        """The document's ``summary``: the rows counted once (by the engine as it made them, or
        here in one pass over the destinations and one over the findings)."""
        if self.counts is None:
            counter = SummaryCounts()
            counter.add_destinations(self.destinations)
            counter.add_findings(self.findings)
            self.counts = counter.result(len(self.exchanges))
        counts = dict(self.counts)
        counts["errors"] = sum(len(i.errors) for i in self.inputs)  # (an input's hash may fail later)
        # the encrypted connections whose content the report read, and those it did not
        decryption = [i.decryption for i in self.inputs if i.decryption is not None]
        counts["decrypted_connections"] = sum(int(d["decrypted"]) for d in decryption)
        counts["encrypted_unread"] = sum(int(d["unread"]) for d in decryption)
        # the local-network traffic kept apart, and the inputs a share of whose frames was not read
        counts["local_connections"] = sum(int(g["connections"]) for g in self.local)
        counts["undecoded_warnings"] = [f"{i.path}: {i.packets['warning']}" for i in self.inputs
                                        if i.packets is not None and i.packets.get("warning")]
        counts["data_warnings"] = data_age_warnings(counts.get("first_seen"), counts.get("last_seen"),
                                                    self.data_sources)
        return {**counts, **verdict(self.policies, self.violations)}

    @property
    def failed(self) -> bool:
        """A ``deny`` rule is violated and no allow entry covers it (exit status 3)."""
        return any(v["action"] == "deny" and v["allowed"] is None for v in self.violations)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, every row a dict in a list."""
        doc = self.document()
        for key in ("destinations", "exchanges", "findings", "dns"):
            doc[key] = list(doc[key])
        return doc

    def document(self) -> dict[str, Any]:
        """The JSON document with the rows as the result holds them (sequences of dicts, read
        as they are gone through)."""
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
            "local": self.local,
            "detection": self.detection,
            "findings": self.findings,
            "laws": self.laws,
            "policies": self.policies,
            "violations": self.violations,
            **({"organisation": self.organisation} if self.organisation is not None else {}),
        }
