"""The result of an audit: :class:`Audit`, whatever engine made it.

Its content is the JSON document (:meth:`Audit.to_dict`); the records in it are declared in
:mod:`datareach.schema`. ``schema_version`` 2.0: records refer to each other by id
(docs/json-output.md says what changed from 1.x).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datareach._version import __version__
from datareach.assess import verdict
from datareach.schema import Exchange, InputReport

SCHEMA_VERSION = "2.0"


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


