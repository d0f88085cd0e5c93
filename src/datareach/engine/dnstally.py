"""An audit's DNS answers, aggregated as they are read: no object is kept per answer.

A capture of a gigabyte carries hundreds of thousands of DNS answers; kept as records until the
end, then as a dict per distinct answer for the document, they were the largest part of an
audit's memory on request-heavy traffic. A :class:`DnsTally` takes each answer as it comes and
keeps only

* one row per distinct (name, address, CNAME chain): its type, TTL and input (of the first
  answer read), when it was first seen and how often it was answered (the document's ``dns``);
* for naming, per (input, address), the (time, name) of each answer, and the CNAME chain each
  name last went through (what :class:`~datareach.enrich.naming.DnsIndex` looks names up in).

:meth:`DnsTally.rows` gives the document's ``dns`` rows (a :class:`DnsRows`: made a batch at a
time as the report is written, never all at once); :meth:`DnsTally.index` the naming index. Both
are what the answers one by one gave (``tests/test_dnstally.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from datareach.timestamps import iso

if TYPE_CHECKING:
    from datareach.enrich.naming import DnsIndex
    from datareach.schema import DnsAnswer

__all__ = ["DnsRows", "DnsTally"]

#: Rows made into dicts at a time when the document's ``dns`` is written.
BATCH = 4096


class DnsTally:
    """DNS answers added one by one (see the module's description)."""

    def __init__(self) -> None:
        #: (qname, address, cname_chain) -> [rtype, ttl, first seen, answers, input]
        self.distinct: dict[tuple[str, str, tuple[str, ...]], list[Any]] = {}
        #: (input, address) -> [(ts, qname), ...] in the order read
        self.by_key: dict[tuple[int, str], list[tuple[float, str]]] = {}
        #: qname -> the CNAME chain its latest answer with one went through
        self.chains: dict[str, list[str]] = {}
        self.answers = 0

    def __len__(self) -> int:
        return self.answers

    def add(self, a: DnsAnswer) -> None:
        self.add_fields(a.ts, a.qname, a.rtype, a.address, a.cname_chain, a.ttl, a.input_index)

    def add_fields(self, ts: float, qname: str, rtype: str, address: str, chain: tuple[str, ...], ttl: int,
                   input_index: int) -> None:
        self.answers += 1
        key = (qname, address, chain)
        row = self.distinct.get(key)
        if row is None:
            self.distinct[key] = [rtype, ttl, ts, 1, input_index]
        else:
            row[3] += 1
            if ts < row[2]:
                row[2] = ts
        entries = self.by_key.get((input_index, address))
        if entries is None:
            self.by_key[(input_index, address)] = [(ts, qname)]
        else:
            entries.append((ts, qname))
        if len(chain) > 1:
            self.chains[qname] = list(chain)

    def index(self) -> DnsIndex:
        """The naming index of the answers (this tally's per-address lists are handed over)."""
        from datareach.enrich.naming import DnsIndex

        by_key, self.by_key = self.by_key, {}
        chains, self.chains = self.chains, {}
        return DnsIndex.from_parts(by_key, chains)

    def rows(self) -> DnsRows:
        """The document's ``dns``: the distinct answers by when they were first seen, then name
        and address (the tally's rows are handed over)."""
        distinct, self.distinct = self.distinct, {}
        order = sorted(distinct, key=lambda k: (distinct[k][2], k[0], k[1]))
        return DnsRows(order, distinct)


class DnsRows(Sequence[dict[str, Any]]):
    """The document's ``dns`` rows, made as they are read (in batches: :meth:`batches`)."""

    def __init__(self, order: list[tuple[str, str, tuple[str, ...]]],
                 distinct: dict[tuple[str, str, tuple[str, ...]], list[Any]]) -> None:
        self._order = order
        self._distinct = distinct

    def __len__(self) -> int:
        return len(self._order)

    def _row(self, key: tuple[str, str, tuple[str, ...]]) -> dict[str, Any]:
        rtype, ttl, first, answers, index = self._distinct[key]
        qname, address, chain = key
        return {"qname": qname, "rtype": rtype, "address": address, "cname_chain": list(chain), "ttl": ttl,
                "first_seen": iso(first), "answers": answers, "input": index}

    @overload
    def __getitem__(self, k: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, k: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, k: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(k, slice):
            return [self._row(key) for key in self._order[k]]
        return self._row(self._order[k])

    def batches(self, size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
        """The rows, ``size`` at a time."""
        row, order = self._row, self._order
        for start in range(0, len(order), size):
            yield [row(key) for key in order[start : start + size]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.batches():
            yield from batch

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} DNS rows>"
