"""The result of an audit: :class:`Audit`, whatever engine made it.

Its content is the JSON document (:meth:`Audit.to_dict`); the records in it are declared in
:mod:`datareach.schema`. ``schema_version`` 2.0: records refer to each other by id
(docs/json-output.md says what changed from 1.x).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datareach._version import __version__
from datareach.assess import verdict
from datareach.schema import Exchange, InputReport

SCHEMA_VERSION = "2.0"


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
    dns: list[dict[str, Any]]
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
    _counts: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def has_errors(self) -> bool:
        return any(e for i in self.inputs for e in i.errors)

    def summary(self) -> dict[str, Any]:
        """The document's ``summary``: one pass over the destinations and one over the findings."""
        if self._counts is None:
            self._counts = self._count()
        counts = dict(self._counts)
        counts["errors"] = sum(len(i.errors) for i in self.inputs)  # (an input's hash may fail later)
        return {**counts, **verdict(self.policies, self.violations)}

    def _count(self) -> dict[str, Any]:
        domains: set[str] = set()
        countries: set[str] = set()
        apps: set[str] = set()
        owners: set[str] = set()
        jurisdictions: set[str] = set()
        connections = bytes_out = bytes_in = unattributed = 0
        for d in self.destinations:
            domains.add(d["registrable_domain"] or d["host"])
            connections += d["connections"]
            bytes_out += d["bytes_out"]
            bytes_in += d["bytes_in"]
            countries.update(d["countries"])
            if d["app"]:
                apps.add(d["app"])
            if d.get("owner"):
                owners.add(d["owner"]["ultimate_parent"]["name"])
            else:
                unattributed += 1
            jurisdictions.update(r["jurisdiction"] for r in d.get("reach", ()))
        data_types: set[str] = set()
        categories: set[str] = set()
        for f in self.findings:
            data_types.add(f["data_type"])
            categories.update(f["categories"])
        return {
            "destinations": len(self.destinations),
            "registrable_domains": len(domains),
            "connections": connections,
            "bytes_out": bytes_out,
            "bytes_in": bytes_in,
            "exchanges": len(self.exchanges),
            "countries": sorted(countries),
            "apps": sorted(apps),
            "errors": sum(len(i.errors) for i in self.inputs),
            "findings": len(self.findings),
            "data_types": sorted(data_types),
            "data_categories": sorted(categories),
            "owners": sorted(owners),
            "unattributed": unattributed,
            "jurisdictions": sorted(jurisdictions),
        }

    @property
    def failed(self) -> bool:
        """A ``deny`` rule is violated and no allow entry covers it (exit status 3)."""
        return any(v["action"] == "deny" and v["allowed"] is None for v in self.violations)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, every row a dict in a list."""
        doc = self.document()
        for key in ("destinations", "exchanges", "findings"):
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
            "detection": self.detection,
            "findings": self.findings,
            "laws": self.laws,
            "policies": self.policies,
            "violations": self.violations,
        }
