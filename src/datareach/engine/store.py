"""Where an audit keeps its result rows: compact, spilled to disk past a budget, read lazily.

A capture of a million connections to distinct addresses has a million destinations; a HAR file
of a million entries, a million exchanges. Held as Python dicts, each costs kilobytes, and the
audit's memory would grow with the input. A :class:`DocumentStore` keeps each row as its compact
JSON text (orjson bytes) and, once the rows it holds pass :data:`MEMORY_BUDGET` bytes, moves
them to a temporary file (in the cache directory) that is deleted when the store is. What stays
in memory is an offset per row (8 bytes).

Its rows are read back through a :class:`DocumentView`: a read-only sequence of dicts, in the
store's order or a given order (a permutation), with a function that completes each row as it
is read (the ids that are only known once every row has been seen). A view is iterated batch by
batch, so a report written from it never holds more than one batch.
"""

from __future__ import annotations

import os
import tempfile
from abc import abstractmethod
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import orjson

__all__ = ["MEMORY_BUDGET", "DocumentStore", "DocumentView", "RowBatches"]

#: Bytes of row text a store holds in memory before it moves them to a file.
MEMORY_BUDGET = 32 << 20
#: Rows read at once when a view is iterated.
BATCH = 2048


def _spill_dir() -> str | None:
    from datareach.cache import cache_dir

    try:
        d = cache_dir() / "spill"
        d.mkdir(parents=True, exist_ok=True)
        return str(d)
    except OSError:
        return None  # the system's temporary directory


class DocumentStore:
    """Rows (dicts that orjson can serialise) appended one by one, kept as JSON text: in one
    buffer while it is smaller than ``budget`` bytes, then in a temporary file."""

    def __init__(self, budget: int | None = None) -> None:
        self.budget = MEMORY_BUDGET if budget is None else budget
        # (one buffer: orjson's own bytes objects each hold a few KiB whatever their length)
        self._buf = bytearray()
        self._file: Any = None
        self._offsets = array("q", [0])  # row i is [offsets[i], offsets[i + 1])
        self.spilled_bytes = 0

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def append(self, row: dict[str, Any]) -> None:
        self.append_text(orjson.dumps(row))

    def append_text(self, data: bytes) -> None:
        """A row given as its JSON text (``orjson.dumps`` of the row: what :meth:`append` keeps)."""
        self._offsets.append(self._offsets[-1] + len(data))
        if self._file is not None:
            self._file.write(data)
            self.spilled_bytes += len(data)
            return
        self._buf += data
        if len(self._buf) > self.budget:
            self._spill()

    def extend(self, rows: Iterator[dict[str, Any]] | Sequence[dict[str, Any]]) -> None:
        for row in rows:
            self.append(row)

    def _spill(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="datareach-", suffix=".rows", dir=_spill_dir())  # noqa: SIM115 (lives as long as the store)
        self._file.write(self._buf)
        self.spilled_bytes += len(self._buf)
        self._buf = bytearray()

    def _read(self, start: int, end: int) -> bytes:
        if self._file is None:
            return bytes(self._buf[start:end])
        self._file.flush()
        return os.pread(self._file.fileno(), end - start, start)

    def raw(self, i: int) -> bytes:
        """Row ``i``'s JSON text."""
        return self._read(self._offsets[i], self._offsets[i + 1])

    def raw_rows(self, rows: Sequence[int]) -> list[bytes]:
        """The JSON text of each of ``rows`` (row numbers, in any order): read at once when they
        lie close together in the store (consecutive rows; the rows of a view's batch mostly do), else
        one by one."""
        if not rows:
            return []
        offs = self._offsets
        lo, hi = min(rows), max(rows)
        base, end = offs[lo], offs[hi + 1]
        wanted = sum(offs[i + 1] - offs[i] for i in rows)
        if end - base > 2 * wanted + (1 << 16):
            return [self.raw(i) for i in rows]
        block = self._read(base, end)
        return [block[offs[i] - base: offs[i + 1] - base] for i in rows]

    def view(self, order: Sequence[int] | None = None,
             complete: Callable[[int, dict[str, Any]], None] | None = None) -> DocumentView:
        """The rows as a sequence of dicts: in ``order`` (row numbers) when given; ``complete(k,
        row)`` fills in the k-th row of the view as it is read."""
        return DocumentView(self, order, complete)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RowBatches(Sequence[dict[str, Any]]):
    """A read-only sequence of a document's rows made a batch at a time (:meth:`batches`): what
    iterating, comparing and printing such rows share (:class:`DocumentView`, and the ``dns`` rows
    of :class:`datareach.engine.dnstally.DnsRows`)."""

    #: what the rows are, for ``repr``
    what = "rows"

    @abstractmethod
    def batches(self, size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
        """The rows, ``size`` at a time."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.batches():
            yield from batch

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} {self.what}>"


class DocumentView(RowBatches):
    """A store's rows as a read-only sequence of new dicts (see the module's description)."""

    def __init__(self, store: DocumentStore, order: Sequence[int] | None,
                 complete: Callable[[int, dict[str, Any]], None] | None) -> None:
        self._store = store
        self._order = order
        self._complete = complete

    def __len__(self) -> int:
        return len(self._order) if self._order is not None else len(self._store)

    def _row(self, k: int) -> dict[str, Any]:
        i = self._order[k] if self._order is not None else k
        row: dict[str, Any] = orjson.loads(self._store.raw(i))
        if self._complete is not None:
            self._complete(k, row)
        return row

    @overload
    def __getitem__(self, k: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, k: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, k: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(k, slice):
            return [self._row(i) for i in range(*k.indices(len(self)))]
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("row index out of range")
        return self._row(k)

    def batches(self, size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
        """The rows, ``size`` at a time."""
        loads, complete, order = orjson.loads, self._complete, self._order
        n = len(self)
        for start in range(0, n, size):
            stop = min(n, start + size)
            texts = self._store.raw_rows(range(start, stop) if order is None else order[start:stop])
            rows = [loads(t) for t in texts]
            if complete is not None:
                for k, row in enumerate(rows, start):
                    complete(k, row)
            yield rows

