"""``datareach explain``: owner and legal reach of host names, without a capture.

The answers have the shape of an audit's destinations (``owner`` and ``reach[]``), so that a
list of hosts from anywhere -- a firewall log, a privacy label, a vendor questionnaire -- gets
the same treatment as captured traffic. Only the knowledge base is loaded (no pyarrow, no geo
data), and owners and reach are memoised per matched domain, so a large list streams through at
hundreds of thousands of hosts per second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from datareach.enrich.ownership import OwnershipResolver, ReachOptions
from datareach.kb import knowledge_base

__all__ = ["explain", "explain_iter"]


def explain(
    hosts: Iterable[str],
    *,
    at: str | None = None,
    reach_options: ReachOptions | None = None,
) -> list[dict[str, Any]]:
    """Owner and reach for host names without a capture, in the shape of audit destinations.

    ``at``: the date (ISO) whose ownership facts apply; today by default.
    """
    resolver = OwnershipResolver(knowledge_base(), reach_options)
    return list(explain_iter(hosts, resolver, at or datetime.now(UTC).date().isoformat()))


def _names(hosts: Iterable[str]) -> Iterator[str]:
    """Host names as the knowledge base keys them: stripped, lower case, no root dot; blanks dropped."""
    for raw in hosts:
        host = raw.strip().lower().rstrip(".")
        if host:
            yield host


def explain_iter(hosts: Iterable[str], resolver: OwnershipResolver, date: str) -> Iterator[dict[str, Any]]:
    """:func:`explain` one host at a time (the CLI streams 100,000s of hosts through it)."""
    from datareach.kb.psl import registrable_domain_of_many as registrable_domain

    for host in _names(hosts):
        owner, reach = resolver.resolve(host, date)
        yield {"host": host, "registrable_domain": registrable_domain(host), "date": date,
               "owner": owner, "reach": reach}


def explain_json_lines(hosts: Iterable[str], resolver: OwnershipResolver, date: str,
                       seen_reach: dict[tuple[str, str, str] | None, list[dict[str, Any]]] | None = None,
                       ) -> Iterator[bytes]:
    """:func:`explain_iter`'s entries as JSON bytes, one per host, byte for byte the same.

    Hosts that match the same knowledge-base domain share their ``owner`` and ``reach``, so
    those are serialised once per match and spliced in: a list of 100,000 hosts from a few
    thousand domains costs one dictionary look-up and a few small writes per host.
    ``seen_reach`` collects each distinct ``reach`` list (for the laws they cite).
    """
    import orjson

    from datareach.kb.psl import registrable_domain_of_many as registrable_domain

    dumps = orjson.dumps
    tails: dict[tuple[str, str, str] | None, bytes] = {}
    date_part = b',"date":' + dumps(date)
    registrable = resolver.kb.registrable
    for host in _names(hosts):
        found = resolver.attribute(host)
        key = None if found is None else (found[0], found[1], found[2])
        tail = tails.get(key)
        if tail is None:
            owner, reach = resolver.resolve(host, date)
            tail = date_part + b',"owner":' + dumps(owner) + b',"reach":' + dumps(reach) + b"}"
            tails[key] = tail
            if seen_reach is not None:
                seen_reach[key] = reach
        rd = found[2] if found is not None and found[2] in registrable else registrable_domain(host)
        yield b'{"host":' + dumps(host) + b',"registrable_domain":' + dumps(rd) + tail
