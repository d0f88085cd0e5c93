"""An audit's DNS answers, aggregated as they are read: no object is kept per answer.

A capture of a gigabyte carries hundreds of thousands of DNS answers, most of them distinct on
some traffic (random subdomains, CDN addresses); kept as records until the end, then as a dict per
distinct answer for the document, they were the largest part of an audit's memory. A
:class:`DnsTally` takes each answer as it comes into columns of at most :data:`SPILL_ROWS`
answers; past that it writes them, a batch at a time, to a Parquet file in the cache directory,
and DuckDB (out of core, with a memory limit) aggregates the file at the end. What it gives:

* :meth:`DnsTally.rows`: the document's ``dns``, one row per distinct (name, address, CNAME
  chain) with the type, TTL and input of its first answer, when it was first seen and how often
  it was answered, ordered by first seen, name and address (a :class:`DnsRows`: made a batch at
  a time as the report is written, from the file DuckDB wrote when the answers were spilled);
* :meth:`DnsTally.index`: the naming index (:class:`~datareach.enrich.naming.DnsIndex`) of the
  answers for the addresses the connections went to, and the CNAME chains of the names asked.

Both are what the answers one by one gave (``tests/test_dnstally.py`` compares both paths).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any, overload

from datareach.engine.store import RowBatches
from datareach.timestamps import iso

if TYPE_CHECKING:
    import pyarrow as pa

    from datareach.enrich.naming import DnsIndex
    from datareach.schema import DnsAnswer

__all__ = ["BATCH", "SPILL_ROWS", "DnsRows", "DnsTally"]

#: Rows made into dicts at a time when the document's ``dns`` is written.
BATCH = 4096
#: Answers held as columns in memory; past it they go to a Parquet file a batch at a time.
SPILL_ROWS = 1 << 16
#: DuckDB's memory limit while it aggregates spilled answers (past it, it uses the disk too), and
#: its threads. What it takes goes well past the limit (Parquet buffers, the aggregates' lists):
#: on the 3 GB benchmark capture's 1.07 million answers, 192 MB and two threads took the audit's
#: process about 250 MB higher for 1.3 s; 64 MB and one thread, about 110 MB for 2.4 s.
DUCKDB_MEMORY = "64MB"
DUCKDB_THREADS = 1

_Key = tuple[str, str, tuple[str, ...]]
_NAMES = ("seq", "ts", "qname", "rtype", "address", "chain", "ttl", "input")


def _spill_dir() -> str | None:
    from datareach.cache import cache_dir

    try:
        d = cache_dir() / "spill"
        d.mkdir(parents=True, exist_ok=True)
        return str(d)
    except OSError:
        return None  # the system's temporary directory


def _literal(text: str) -> str:
    """``text`` as an SQL string literal (a path: DuckDB takes no parameters in these statements)."""
    return "'" + text.replace("'", "''") + "'"


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([("seq", pa.int64()), ("ts", pa.float64()), ("qname", pa.string()), ("rtype", pa.string()),
                      ("address", pa.string()), ("chain", pa.list_(pa.string())), ("ttl", pa.int64()),
                      ("input", pa.int64())])


class DnsTally:
    """DNS answers added one by one (see the module's description)."""

    def __init__(self, spill_rows: int | None = None) -> None:
        self.spill_rows = SPILL_ROWS if spill_rows is None else max(1, spill_rows)
        #: the answers not yet written, as columns (in :data:`_NAMES` order, ``seq`` implied)
        self._cols: tuple[list[Any], ...] = tuple([] for _ in _NAMES[1:])
        self.answers = 0
        self._path: str | None = None
        self._writer: Any = None
        self._files: list[str] = []

    def __len__(self) -> int:
        return self.answers

    def add(self, a: DnsAnswer) -> None:
        self.add_fields(a.ts, a.qname, a.rtype, a.address, a.cname_chain, a.ttl, a.input_index)

    def add_fields(self, ts: float, qname: str, rtype: str, address: str, chain: tuple[str, ...], ttl: int,
                   input_index: int) -> None:
        c = self._cols
        c[0].append(ts)
        c[1].append(qname)
        c[2].append(rtype)
        c[3].append(address)
        c[4].append(chain)
        c[5].append(ttl)
        c[6].append(input_index)
        self.answers += 1
        if len(c[0]) >= self.spill_rows:
            self._flush()

    @property
    def spilled(self) -> bool:
        """Whether the answers went to a file (and are aggregated by DuckDB)."""
        return self._path is not None

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = len(self._cols[0])
        if not n:
            return
        schema = _schema()
        first = self.answers - n
        arrays = [pa.array(range(first, first + n), pa.int64())]
        arrays += [pa.array(col, schema.field(i + 1).type) for i, col in enumerate(self._cols)]
        if self._writer is None:
            fd, self._path = tempfile.mkstemp(prefix="datareach-dns-", suffix=".parquet", dir=_spill_dir())
            os.close(fd)
            self._files.append(self._path)
            self._writer = pq.ParquetWriter(self._path, schema, compression="none")
        self._writer.write_batch(pa.record_batch(arrays, schema=schema))
        self._cols = tuple([] for _ in _NAMES[1:])

    def _finish(self) -> Any:
        """The spilled answers' file closed, and a DuckDB connection to query it (as ``answers``)."""
        import duckdb

        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
        con.execute(f"SET threads = {DUCKDB_THREADS}")
        spill = _spill_dir()
        if spill:
            con.execute(f"SET temp_directory = {_literal(spill)}")
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"CREATE VIEW answers AS SELECT * FROM read_parquet({_literal(self._path or '')})")
        return con

    # -- what the tally gives ----------------------------------------------------------------------

    def _answers(self) -> Iterator[tuple[Any, ...]]:
        return zip(*self._cols, strict=True)

    def rows(self) -> DnsRows:
        """The document's ``dns``: the distinct answers by when they were first seen, then name
        and address (then the order they were first answered in)."""
        if not self.spilled:
            distinct: dict[_Key, list[Any]] = {}
            for ts, qname, rtype, address, chain, ttl, index in self._answers():
                key = (qname, address, chain)
                row = distinct.get(key)
                if row is None:
                    distinct[key] = [rtype, ttl, ts, 1, index]
                else:
                    row[3] += 1
                    if ts < row[2]:
                        row[2] = ts
            order = sorted(distinct, key=lambda k: (distinct[k][2], k[0], k[1]))
            return DnsRows(order, distinct)
        con = self._finish()
        fd, out = tempfile.mkstemp(prefix="datareach-dns-rows-", suffix=".parquet", dir=_spill_dir())
        os.close(fd)  # (the rows' file is theirs: DnsRows.from_file)
        con.execute(
            "COPY (SELECT qname, arg_min(rtype, seq) AS rtype, address, chain AS cname_chain,"
            " arg_min(ttl, seq) AS ttl, min(ts) AS first_seen, count(*) AS answers, arg_min(input, seq) AS input"
            " FROM answers GROUP BY qname, address, chain"
            " ORDER BY first_seen, qname, address, min(seq)) TO " + _literal(out) +
            " (FORMAT parquet, ROW_GROUP_SIZE " + str(BATCH) + ")")
        con.close()
        return DnsRows.from_file(out)

    def index(self, addresses: Collection[str] | None = None, names: Collection[str] | None = None) -> DnsIndex:
        """The naming index of the answers: those for ``addresses`` (the servers the connections
        went to; every answer when None), and the CNAME chains of ``names`` and of the names
        those answers gave (the hosts the destinations may be named after; every name when
        None). Spilled answers are looked up in their file; the others are all indexed."""
        from datareach.enrich.naming import DnsIndex

        by_key: dict[tuple[int, str], list[tuple[float, str]]] = {}
        chains: dict[str, list[str]] = {}
        if not self.spilled:
            for ts, qname, _rtype, address, chain, _ttl, index in self._answers():
                entries = by_key.get((index, address))
                if entries is None:
                    by_key[(index, address)] = [(ts, qname)]
                else:
                    entries.append((ts, qname))
                if len(chain) > 1:
                    chains[qname] = list(chain)
            return DnsIndex.from_parts(by_key, chains)
        import pyarrow as pa

        con = self._finish()
        where = ""
        if addresses is not None:
            con.register("wanted", pa.table({"address": pa.array(sorted(set(addresses)), pa.string())}))
            where = " WHERE address IN (SELECT address FROM wanted)"
        asked: set[str] = set()
        res = con.execute("SELECT input, address, ts, qname FROM answers" + where + " ORDER BY seq")
        while batch := res.fetchmany(BATCH * 4):
            for index, address, ts, qname in batch:
                entries = by_key.get((index, address))
                if entries is None:
                    by_key[(index, address)] = [(ts, qname)]
                else:
                    entries.append((ts, qname))
                asked.add(qname)
        where = ""
        if names is not None:
            con.register("names", pa.table({"qname": pa.array(sorted(asked.union(names)), pa.string())}))
            where = " AND qname IN (SELECT qname FROM names)"
        res = con.execute("SELECT qname, arg_max(chain, seq) FROM answers WHERE len(chain) > 1" + where
                          + " GROUP BY qname")
        while batch := res.fetchmany(BATCH * 4):
            for qname, chain in batch:
                chains[qname] = list(chain)
        con.close()
        return DnsIndex.from_parts(by_key, chains)

    def close(self) -> None:
        """Remove the files (the rows' file too: call it once the document is written)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for path in self._files:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._files = []
        self._cols = tuple([] for _ in _NAMES[1:])

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class DnsRows(RowBatches):
    """The document's ``dns`` rows, made as they are read (in batches: :meth:`batches`): from
    the tally's rows in memory, or from the file DuckDB wrote them to."""

    what = "DNS rows"

    def __init__(self, order: list[_Key], distinct: dict[_Key, list[Any]]) -> None:
        self._order = order
        self._distinct = distinct
        self._file: Any = None
        self._len = len(order)

    @classmethod
    def from_file(cls, path: str) -> DnsRows:
        """The rows of the Parquet file at ``path``, which is theirs: it is removed now (and
        read through the open file until they go)."""
        import pyarrow.parquet as pq

        rows = cls([], {})
        try:
            rows._file = open(path, "rb")  # noqa: SIM115 (open as long as the rows are)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        rows._len = pq.ParquetFile(rows._file).metadata.num_rows
        return rows

    def __len__(self) -> int:
        return self._len

    def __del__(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()

    def _row(self, key: _Key) -> dict[str, Any]:
        rtype, ttl, first, answers, index = self._distinct[key]
        qname, address, chain = key
        return {"qname": qname, "rtype": rtype, "address": address, "cname_chain": list(chain), "ttl": ttl,
                "first_seen": iso(first), "answers": answers, "input": index}

    @overload
    def __getitem__(self, k: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, k: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, k: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if self._file is None:
            if isinstance(k, slice):
                return [self._row(key) for key in self._order[k]]
            return self._row(self._order[k])
        if isinstance(k, slice):
            wanted = range(*k.indices(self._len))
            rows: dict[int, dict[str, Any]] = {}
            at = 0
            for batch in self.batches():
                for i in range(at, at + len(batch)):
                    if i in wanted:
                        rows[i] = batch[i - at]
                at += len(batch)
            return [rows[i] for i in wanted]
        n = k + self._len if k < 0 else k
        if not 0 <= n < self._len:
            raise IndexError("row index out of range")
        return self[n : n + 1][0]

    def batches(self, size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
        """The rows, ``size`` at a time (a row group at a time from a file)."""
        if self._file is None:
            row, order = self._row, self._order
            for start in range(0, len(order), size):
                yield [row(key) for key in order[start : start + size]]
            return
        import pyarrow.parquet as pq

        self._file.seek(0)
        for batch in pq.ParquetFile(self._file).iter_batches(batch_size=size):
            out = batch.to_pylist()
            for r in out:
                r["first_seen"] = iso(r["first_seen"])
            yield out

