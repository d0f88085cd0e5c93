"""Reading one large capture with several processes, with the same result as one reader.

The file is cut into byte ranges at record (pcap) or block (pcapng) boundaries, found by
checking that several consecutive headers after a nominal cut make sense. Each range is read by
its own process with its own :class:`~datareach.dissect.packets.PacketDecoder`:

* A range's reader counts and inspects every packet in its range. Past the range's end it goes
  on in *overlap* mode: it follows only the connections whose inspection is still under way (a
  ClientHello cut by the boundary, an HTTP keep-alive connection), counting nothing, until none
  is left. So every connection is inspected by the range where it began, exactly as one reader
  would.
* The next range sees those connections again without their SYN. When the ranges are merged,
  such a connection is folded into the one of the previous range with the same addresses and
  ports: its counters are added, and what it made of the payload (requests, DNS answers over
  TCP) is dropped, since the previous range already followed it from its start.
* DNS over UDP is never followed into the overlap: each response is read by the range it lies
  in.

If a range does not end exactly where the next begins (a false boundary, or a corrupt record
near it), or a pcapng file has a section or interface block after its start, the result is
thrown away and the file is read by one process instead.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import operator
import os
import pickle
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach.dissect import keylog, pcapdroid
from datareach.dissect.packets import SUPPORTED_LINKTYPES, PacketDecoder, encrypted_counts
from datareach.memory import give_back, pyarrow_without_pandas
from datareach.schema import (
    CONNECTION_FIELDS,
    ConnectionBatch,
    Decryption,
    DnsAnswer,
    Exchange,
    InputError,
    PacketAccounting,
    PreparedExchange,
    ProgressCallback,
    Record,
    connection_uid,
    fields,
)
from datareach.sources import pcap

if TYPE_CHECKING:
    import pyarrow as pa

    from datareach.dissect.keylog import KeyStore
    from datareach.dissect.tlsdecrypt import DecryptStats

#: Files smaller than this are read by one process (starting processes costs more than it saves).
MIN_BYTES = 48 << 20
#: Each range gets at least this much.
MIN_RANGE = 24 << 20
#: No range is larger than this: a larger file is cut into more ranges than readers (a multiple
#: of their number, so that none is left reading the last range alone), which they take in turn.
#: A reader then holds one range's connections at a time, and the connections a range retires
#: stay under :data:`RANGE_MAX_RETIRED` on traffic with many short connections at any file size
#: (one range per reader had 3 GB captures fall back to one process). Where a range still holds
#: too many (a million connections in 624 MB), the file is read again in ranges a quarter of
#: this size before it is left to one process. Smaller ranges from the start would cost time:
#: each boundary has the next reader follow the connections open across it again (64 MB ranges
#: made the 3 GB hard mix's reading 50% slower).
MAX_RANGE = 256 << 20
#: How far past a nominal cut to look for a boundary.
SEARCH_WINDOW = 4 << 20
#: Consecutive records that must make sense for an offset to count as a boundary.
CHAIN = 8
#: Parallel reading is for captures with many bytes per connection: every reader holds its
#: range's connections, and the tree of processes holds them all twice while they are merged.
#: A range that retires more connections than this (see
#: :data:`datareach.dissect.packets.MAX_LIVE_FLOWS`) stops every reader, and one process reads
#: the file (a SYN scan, say: a connection per 60-byte packet).
RANGE_MAX_RETIRED = 1 << 17
#: Once a reader has read this much of its range, the connections it retired so far are taken in
#: proportion to the whole range: a range on its way past RANGE_MAX_RETIRED is given up then
#: (a million connections: the readers stopped at about 180 MB each, now at about 130).
PROJECT_AFTER = 16 << 20


class _TooManyConnections(Exception):
    """A parallel reader's range holds more connections than parallel reading is for."""

# records travel from the readers as tuples of their declared fields (for pickling)
_DNS_FIELDS = fields(DnsAnswer)
_EX_FIELDS = fields(Exchange)
_ERR_FIELDS = fields(InputError)
_dns_tuple = operator.attrgetter(*_DNS_FIELDS)
_ex_tuple = operator.attrgetter(*_EX_FIELDS)
_err_tuple = operator.attrgetter(*_ERR_FIELDS)
_prepared_tuple = operator.attrgetter(*fields(PreparedExchange))


@dataclass(frozen=True)
class _Plan:
    kind: str
    head: bytes  # pcap: the file header; pcapng: the section header and interface blocks
    bounds: list[int]  # start offsets of the ranges, then the file size
    trailer: bool
    endian: str
    # pcapng: (linktype, snaplen, scale, tsoffset) of each interface
    interfaces: list[tuple[int, int, float, int]]
    # pcapng: the TLS key logs of the Decryption Secrets Blocks before the first packet
    secrets: tuple[bytes, ...] = ()


@dataclass
class _Stored:
    """A range's connections (:attr:`PacketDecoder.connections`, with ``ckey``: row n is fid n),
    in an Arrow IPC file the reader wrote.

    The reader hands the file on instead of the table, so that this process does not hold every
    range's connections while the other ranges are read; the merge reads the file a column at a
    time (a copy of every connection at most, never two) and removes it.
    """

    path: str
    num_rows: int

    @classmethod
    def write(cls, table: pa.Table) -> _Stored:
        import pyarrow as pa

        fd, path = tempfile.mkstemp(prefix="datareach-range-", suffix=".arrow")
        try:
            with os.fdopen(fd, "wb") as f, pa.ipc.new_file(f, table.schema) as writer:
                writer.write_table(table)
        except BaseException:
            _remove(path)
            raise
        return cls(path, table.num_rows)

    def table(self) -> pa.Table:
        """The table, its buffers in a map of the file: only the pages of what is read are
        loaded (a read file's record batch is one buffer, which every column would hold)."""
        import pyarrow as pa

        with pa.memory_map(self.path) as f:
            return pa.ipc.open_file(f).read_all()

    def column(self, name: str) -> list[pa.Array]:
        """The column's chunks (one ChunkedArray of many is made from arrays: from ChunkedArrays,
        pyarrow takes a slow path, 0.2 s a column of half a million rows)."""
        chunks: list[pa.Array] = self.table().column(name).chunks
        return chunks

    def schema(self) -> pa.Schema:
        return self.table().schema

    def remove(self) -> None:
        _remove(self.path)


@dataclass
class _Result:
    #: the range's connections (in a file)
    connections: _Stored
    #: the DNS-over-UDP records' client ports, by fid
    ports: dict[int, set[int]]
    dns: list[tuple[Any, ...]]
    exchanges: list[tuple[Any, ...]]
    errors: list[tuple[Any, ...]]
    cut: int
    malformed: int
    #: HTTP responses whose header block was longer than the parser reads
    response_head_cuts: int = 0
    #: connections set aside while being inspected (see datareach.dissect.packets.MAX_LIVE_FLOWS)
    retired_inspecting: int = 0
    #: holes in plain-HTTP streams skipped, and the bytes skipped after them
    http_holes: int = 0
    http_bytes_skipped: int = 0
    #: the file the range's requests were written to (read, then removed, by the merge)
    spill: str | None = None
    #: the file the range's DNS answers were written to (likewise)
    dns_spill: str | None = None
    #: whether the range had keys, what its decryptor did (uids in the range's own numbering),
    #: and the key sources found in the file (Decryption Secrets Blocks)
    keys: bool = False
    stats: DecryptStats | None = None
    key_sources: list[dict[str, Any]] = field(default_factory=list)
    #: what became of the range's frames
    accounting: PacketAccounting = field(default_factory=PacketAccounting)
    #: whether the range's requests were written as PreparedExchange fields (else Exchange's)
    prepared: bool = False


def _workers(requested: int | None, size: int) -> int:
    if requested is not None:
        return max(1, requested)
    env = os.environ.get("DATAREACH_WORKERS")
    if env and env.isdigit():
        return max(1, int(env))
    if size < MIN_BYTES:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, size // MIN_RANGE, 8))


def read(path: Path, input_index: int, progress: ProgressCallback | None,
         workers: int | None = None, while_waiting: Callable[[], None] | None = None,
         keep_bodies: bool = True, on_request: Callable[[Exchange], None] | None = None,
         keys: KeyStore | None = None,
         prepare: Callable[[Exchange], PreparedExchange] | None = None) -> list[Record] | None:
    """:func:`read_stream`'s records as a list."""
    records = read_stream(path, input_index, progress, workers, while_waiting, keep_bodies, on_request, keys,
                          prepare)
    return None if records is None else list(records)


def read_stream(path: Path, input_index: int, progress: ProgressCallback | None,
                workers: int | None = None, while_waiting: Callable[[], None] | None = None,
                keep_bodies: bool = True, on_request: Callable[[Exchange], None] | None = None,
                keys: KeyStore | None = None,
                prepare: Callable[[Exchange], PreparedExchange] | None = None) -> Iterator[Record] | None:
    """The records of ``path`` read in parallel, or None when it should be read by one process.
    ``keys``: the audit's key logs (forking hands them to the readers). ``prepare``: each
    reader hands on its requests as what this makes of each (after ``on_request``), a
    :class:`~datareach.schema.PreparedExchange` whose uid the merge then gives.

    ``while_waiting`` is called once in this process after the readers have started (all
    processes are forked by then, so it may start threads or import modules safely). The readers
    write their requests to temporary files a batch at a time; the records are made from them as
    they are taken from the iterator, so that neither the readers nor this process hold every
    request at once.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return None
    n = _workers(workers, size)
    if n < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    # Ranges of MAX_RANGE; if one holds too many connections for parallel reading, ranges a
    # quarter of that (a million short connections in 624 MB), and only then one process.
    tried = 0
    called: list[bool] = []

    def waiting() -> None:
        if while_waiting is not None and not called:
            called.append(True)
            while_waiting()

    for range_max in (MAX_RANGE, MAX_RANGE // 4):
        count = n * max(1, -(-size // (n * range_max)))
        if count == tried:
            break
        tried = count
        try:
            return _read_ranges(path, input_index, progress, n, size, count, waiting, keep_bodies, on_request, keys,
                                prepare)
        except _TooManyConnections:
            continue
    return None


def _read_ranges(path: Path, input_index: int, progress: ProgressCallback | None, n: int, size: int, count: int,
                 while_waiting: Callable[[], None], keep_bodies: bool, on_request: Callable[[Exchange], None] | None,
                 keys: KeyStore | None, prepare: Callable[[Exchange], PreparedExchange] | None) -> Iterator[Record] | None:
    """:func:`read_stream` with ``count`` ranges read by ``n`` processes: None when the file
    cannot be cut (or a reader lost the records' boundaries); :class:`_TooManyConnections` when
    a range held too many connections."""
    plan = _plan(path, size, count)
    if plan is None or len(plan.bounds) < 3:
        return None
    ctx = multiprocessing.get_context("fork")
    done = ctx.Array("q", len(plan.bounds) - 1, lock=False)
    for i in range(len(plan.bounds) - 1):
        done[i] = plan.bounds[i]  # (a range not yet begun has read nothing)
    stop = ctx.Value("b", 0, lock=False)  # set by a reader whose range has too many connections
    # While the readers run, this process takes in their results (hundreds of thousands of tuples,
    # unpickled) and merges them: acyclic objects, which the cyclic collector would walk again
    # and again along with everything else alive. It is paused until the merge is done.
    collecting = gc.isenabled()
    gc.disable()
    futures: list[Any] = []
    try:
        # The stage run on each request (detection) is handed to the forked readers as an
        # initializer argument: forking copies it, so a detector need not be pickled.
        with ProcessPoolExecutor(max_workers=min(n, len(plan.bounds) - 1), mp_context=ctx,
                                 initializer=_init, initargs=(done, on_request, stop, keys, prepare)) as pool:
            futures = [pool.submit(_work, path, input_index, plan, i, keep_bodies)
                       for i in range(len(plan.bounds) - 1)]
            while_waiting()
            while not all(f.done() for f in futures):
                if progress is not None:
                    progress(sum(done[i] - plan.bounds[i] for i in range(len(futures))))
                time.sleep(0.05)
            results = [f.result() for f in futures]
        if progress is not None:
            progress(size)
        return _merge(results, input_index)
    except (pcap.Desync, _TooManyConnections) as e:
        for f in futures:  # (the ranges that did finish leave their requests' files)
            with contextlib.suppress(BaseException):
                done_range = f.result(timeout=0)
                _remove(done_range.spill)
                _remove(done_range.dns_spill)
                done_range.connections.remove()
        if isinstance(e, _TooManyConnections):
            raise
        return None
    finally:
        if collecting:
            gc.enable()


def _remove(path: str | None) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)


#: Requests a reader writes to its file at a time.
SPILL_BATCH = 2048


class _Spill:
    """A reader's requests, written to a temporary file a batch of tuples at a time."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="datareach-range-", suffix=".pickle")
        self.f = os.fdopen(fd, "wb")
        self.batch: list[tuple[Any, ...]] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self.batch.append(row)
        if len(self.batch) >= SPILL_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            pickle.dump(self.batch, self.f, protocol=pickle.HIGHEST_PROTOCOL)
            self.batch = []

    def close(self) -> str:
        self.flush()
        self.f.close()
        return self.path


def _spilled(path: str | None) -> Iterator[tuple[Any, ...]]:
    """The rows a reader wrote, batch by batch; the file is removed once read."""
    if not path:
        return
    try:
        with open(path, "rb") as f:
            while True:
                try:
                    batch = pickle.load(f)
                except EOFError:
                    break
                yield from batch
    finally:
        _remove(path)


class _Worker:
    """What a reader process was handed when it started (set once, in the child only)."""

    done: Any = None
    stop: Any = None
    on_request: Callable[[Exchange], None] | None = None
    keys: KeyStore | None = None
    prepare: Callable[[Exchange], PreparedExchange] | None = None


def _init(done: Any, on_request: Callable[[Exchange], None] | None, stop: Any = None,
          keys: KeyStore | None = None, prepare: Callable[[Exchange], PreparedExchange] | None = None) -> None:
    _Worker.done = done
    _Worker.stop = stop
    _Worker.on_request = on_request
    _Worker.keys = keys
    _Worker.prepare = prepare
    # (a reader builds Arrow arrays, never pandas objects: without this pyarrow would load
    # pandas, 55 MB, in every reader)
    pyarrow_without_pandas()
    # What the reader inherited from its parent stays as it is: the collector need not walk it
    # (nor touch its pages, which forking shares with the parent). The reader's own objects
    # (flows, streams, records) are acyclic, and a reader ends with its range: collections are
    # rare (a high first-generation threshold), not off.
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    gc.enable()


def _plan(path: Path, size: int, n: int) -> _Plan | None:
    with open(path, "rb") as f:
        head = f.read(1 << 20)
        kind = pcap.sniff(head)
        if kind == "pcap":
            endian = pcap.PCAP_MAGICS[head[:4]][0]
            if len(head) < 24:
                return None
            snaplen, network = struct.unpack_from(endian + "II", head, 16)
            linktype = network & 0xFFFF
            if linktype not in SUPPORTED_LINKTYPES:
                return None
            limit = max(min(snaplen, pcap.MAX_FRAME) if snaplen else pcap.MAX_FRAME, 65535)
            unpack = struct.Struct(endian + "IIII").unpack_from
            if len(head) < 40:
                return None
            first_ts = unpack(head, 24)[0]
            frac_max = 1_000_000_000 if pcap.PCAP_MAGICS[head[:4]][1] < 1e-6 else 1_000_000
            trailer = linktype in pcapdroid.LINKTYPES and pcap._has_trailer(head, 24, unpack)
            bounds = [24]
            for i in range(1, n):
                b = _pcap_boundary(f, size * i // n, unpack, limit, first_ts, frac_max)
                if b is not None and b > bounds[-1] + MIN_RANGE // 2:
                    bounds.append(b)
            return _Plan("pcap", head[:24], [*bounds, size], trailer, endian, [])
        if kind == "pcapng":
            return _pcapng_plan(f, head, size, n)
    return None


def _chain_start(f: Any, nominal: int, step: int, record_end: Callable[[bytes, int], int | None]) -> int | None:
    """The first offset at or after ``nominal`` (in steps of ``step``) where :data:`CHAIN`
    records in a row make sense; ``record_end(buf, q)`` is the end of a sensible record at
    ``q``, or None."""
    f.seek(nominal)
    buf = f.read(SEARCH_WINDOW)
    for p in range(0, len(buf), step):
        q = p
        for _ in range(CHAIN):
            nxt = record_end(buf, q)
            if nxt is None:
                break
            q = nxt
        else:
            return nominal + p
    return None


def _pcap_boundary(f: Any, nominal: int, unpack: Any, limit: int, first_ts: int, frac_max: int) -> int | None:
    """A record boundary at or after ``nominal``.

    A record makes sense when its lengths fit the snapshot length, it holds at least a minimal
    frame, its sub-second part is in range, and its time is within a year of the first record's
    (zero-filled payloads would otherwise pass for empty records).
    """

    def record_end(buf: bytes, q: int) -> int | None:
        if q + 16 > len(buf):
            return None
        sec, frac, caplen, origlen = unpack(buf, q)
        if (caplen < 20 or caplen > limit or caplen > origlen or origlen > 1 << 18
                or frac >= frac_max or abs(sec - first_ts) > 366 * 86400):
            return None
        return int(q + 16 + caplen)

    return _chain_start(f, nominal, 1, record_end)


def _pcapng_plan(f: Any, head: bytes, size: int, n: int) -> _Plan | None:
    magic = head[8:12]
    endian = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">"
    hdr = struct.Struct(endian + "II")
    pos = 0
    interfaces: list[tuple[int, int, float, int]] = []
    secrets: list[bytes] = []
    # the section header, the interface blocks and decryption secrets before the first packet
    while pos + 12 <= len(head):
        btype, blen = hdr.unpack_from(head, pos)
        if blen < 12 or pos + blen > len(head):
            return None
        if btype == pcap.BLOCK_IDB:
            linktype, _res, snaplen = struct.unpack_from(endian + "HHI", head, pos + 8)
            itf = pcap._Interface(linktype, snaplen)
            pcap._idb_options(itf, head[pos + 8 : pos + blen - 4], endian)
            interfaces.append((itf.linktype, itf.snaplen, itf.scale, itf.tsoffset))
        elif btype == pcap.BLOCK_DSB:
            stype, slen = struct.unpack_from(endian + "II", head, pos + 8)
            if stype != keylog.DSB_TLS_KEYLOG or slen > blen - 20:
                return None  # (one process reads it, and says what it is)
            secrets.append(head[pos + 16 : pos + 16 + slen])
        elif btype != pcap.SHB_TYPE and btype != 4:  # name resolution blocks may come first too
            break
        pos += blen
    if not interfaces or any(lt not in SUPPORTED_LINKTYPES for lt, *_ in interfaces):
        return None  # (one process reads it and reports the unsupported link type)
    bounds = [pos]
    for i in range(1, n):
        b = _pcapng_boundary(f, size * i // n, hdr)
        if b is not None and b > bounds[-1] + MIN_RANGE // 2:
            bounds.append(b)
    return _Plan("pcapng", head[:pos], [*bounds, size], False, endian, interfaces, tuple(secrets))


def _pcapng_boundary(f: Any, nominal: int, hdr: struct.Struct) -> int | None:
    """A block boundary at or after ``nominal``: packet or statistics blocks whose leading and
    trailing lengths agree (blocks are 32-bit aligned)."""
    u32 = struct.Struct(hdr.format[0] + "I").unpack_from

    def record_end(buf: bytes, q: int) -> int | None:
        if q + 12 > len(buf):
            return None
        btype, blen = hdr.unpack_from(buf, q)
        if (btype not in (pcap.BLOCK_EPB, pcap.BLOCK_SPB, 5) or blen < 12 or blen & 3
                or q + blen > len(buf) or u32(buf, q + blen - 4)[0] != blen):
            return None
        return int(q + blen)

    return _chain_start(f, nominal & ~3, 4, record_end)


def _work(path: Path, input_index: int, plan: _Plan, index: int, keep_bodies: bool = True) -> _Result:
    # A reader takes range after range. What its last range left in reference cycles (decoded
    # layers, streams) waits for a full collection, which the reader's thresholds make rare: it
    # is collected now, before this range adds its own (a reader grew by about 20 MB a range on
    # the 3 GB benchmark capture without it, and stays flat with it).
    gc.collect()
    begin, stop = plan.bounds[index], plan.bounds[index + 1]
    dec = PacketDecoder(input_index, keep_bodies=keep_bodies, merge_keys=True, keys=_Worker.keys)
    for text in plan.secrets:
        dec.add_secrets(text)

    def check(done: int | None = None) -> None:
        retired = dec.retired
        if done is not None and done - begin >= PROJECT_AFTER:
            # (the connections retired so far, in proportion over the whole range: a range that
            # will hold too many is given up early, before its reader has grown with them)
            retired = max(retired, retired * (stop - begin) // (done - begin))
        if retired > RANGE_MAX_RETIRED:
            if _Worker.stop is not None:
                _Worker.stop.value = 1  # (the others stop at their next chunk)
            raise _TooManyConnections
        if _Worker.stop is not None and _Worker.stop.value:
            raise _TooManyConnections

    def progress(done: int) -> None:
        if _Worker.done is not None:
            _Worker.done[index] = min(done, stop)
        check(done)

    dns = _Spill()
    exchanges = _Spill()
    errors: list[tuple[Any, ...]] = []
    try:
        return _read_range(path, input_index, plan, index, dec, exchanges, dns, errors, check, progress)
    except BaseException:
        _remove(exchanges.close())
        _remove(dns.close())
        raise


def _read_range(path: Path, input_index: int, plan: _Plan, index: int, dec: PacketDecoder, exchanges: _Spill,
                dns: _Spill, errors: list[tuple[Any, ...]], check: Callable[[], None],
                progress: Callable[[int], None]) -> _Result:
    start, stop = plan.bounds[index], plan.bounds[index + 1]
    last = index == len(plan.bounds) - 2
    prepare = _Worker.prepare

    def take(r: Record) -> None:
        # each record as it is read: a request is judged (and its body let go) at once, and
        # written to the range's file with the DNS answers (a batch at a time), so that a range
        # holds neither its requests nor its answers
        if isinstance(r, DnsAnswer):
            dns.add(_dns_tuple(r))
        elif isinstance(r, Exchange):
            if _Worker.on_request is not None:
                _Worker.on_request(r)
            exchanges.add(_ex_tuple(r) if prepare is None else _prepared_tuple(prepare(r)))
        else:
            errors.append(_err_tuple(r))

    with open(path, "rb") as f:
        f.seek(start)
        src = pcap._Source(f, progress)
        src.base = start
        if plan.kind == "pcap":
            reader = pcap._pcap(src, dec, head=plan.head, stop=None if last else stop, trailer_mode=plan.trailer)
        else:
            ifaces = []
            for linktype, snaplen, scale, tsoffset in plan.interfaces:
                itf = pcap._Interface(linktype, snaplen)
                itf.scale, itf.tsoffset = scale, tsoffset
                ifaces.append(itf)
            reader = pcap._pcapng(src, dec, section=(plan.endian, ifaces), stop=None if last else stop)
        for r in reader:
            take(r)
    check()
    ports = {fl.fid: fl.ports for fl in dec.dns_flows.values() if fl.ports is not None}
    dec.finish(objects=False)
    for r in dec.records:
        take(r)
    dec.records = []
    assert dec.connections is not None
    own = dec.decryption()
    table, dec.connections = dec.connections, None
    stored = _Stored.write(table)
    del table
    return _Result(stored, ports, [], [], errors, dec.cut, dec.malformed, dec.response_head_cuts,
                   dec.retired_inspecting, dec.http_holes, dec.http_bytes_skipped, exchanges.close(), dns.close(),
                   own.keys, dec.decryptor.stats if dec.decryptor is not None else None, own.sources,
                   dec.accounting, prepare is not None)


def _merge(results: Sequence[_Result], input_index: int) -> Iterator[Record]:
    """Fold the ranges together: continuations of a connection join the connection.

    A row of a range after the first is folded into the latest row of an earlier range with the
    same :func:`~datareach.dissect.packets.canonical_key` when its first packet was not a SYN
    (or that row has carried no bytes yet). Only the rows whose key an earlier range also has
    are looked at one by one (Arrow finds them); the rest are taken as they are, in columns.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = [r.connections for r in results]
    offsets = np.cumsum([0, *(t.num_rows for t in tables)])
    ckeys = [pa.chunked_array(t.column("ckey"), pa.binary()) for t in tables]
    # the keys an earlier range also has: those of more than one range
    distinct = pa.chunked_array([pc.unique(ck) for ck in ckeys], pa.binary())
    counted = pc.value_counts(distinct)
    shared_keys = pc.filter(counted.field("values"), pc.greater(counted.field("counts"), 1))
    del distinct, counted
    # those rows, in order, as Python values: each folded into its connection or kept
    names = list(CONNECTION_FIELDS)
    by_key: dict[bytes, int] = {}  # key -> the latest kept row (global number) of the ranges so far
    values: dict[int, list[Any]] = {}  # kept row -> its values, after the folds into it
    ports_of: dict[int, set[int]] = {}
    folded: dict[int, int] = {}  # folded row -> the row it was folded into
    tcp_folded: set[int] = set()
    for k, (t, res) in enumerate(zip(tables, results, strict=True)):
        if not len(shared_keys):
            break
        hit = pc.is_in(ckeys[k], value_set=shared_keys)
        if not pc.any(hit).as_py():
            continue
        pos = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
        sub = t.table().take(pa.array(pos))
        cols = [sub.column(n).to_pylist() for n in names]
        keys_, synless = sub.column("ckey").to_pylist(), sub.column("synless").to_pylist()
        later: dict[bytes, int] = {}
        for j, p in enumerate(pos.tolist()):
            g = int(offsets[k]) + p
            row = [c[j] for c in cols]
            ports = res.ports.get(p)
            at = by_key.get(keys_[j]) if k else None
            if at is not None:
                prev = values[at]
                if synless[j] or not (prev[_BYTES_OUT] or prev[_BYTES_IN]):
                    values[at] = list(_fold(tuple(prev), tuple(row)))
                    if ports is not None:
                        ports_of.setdefault(at, set()).update(ports)
                    folded[g] = at
                    if row[_F["transport"]] == "tcp":
                        tcp_folded.add(g)
                    continue
            values[g] = row
            if ports is not None:
                ports_of[g] = set(ports)
            later[keys_[j]] = g
        by_key.update(later)
    # every row but the folded ones, numbered again; the rows folded into given their new values
    keep = np.ones(int(offsets[-1]), dtype=bool)
    if folded:
        keep[np.fromiter(folded, dtype=np.int64, count=len(folded))] = False
    merged = np.cumsum(keep) - 1  # each kept row's place
    # the ranges' tables as one, read a column at a time (and each column's copy let go once it
    # is filtered), so that this process never holds two copies of every connection
    del ckeys
    stored_schema = tables[0].schema()
    schema = pa.schema([stored_schema.field(n) for n in names])
    mask = pa.array(keep) if folded else None
    columns: list[pa.ChunkedArray] = []
    for name in names:
        column = pa.chunked_array([c for t in tables for c in t.column(name)], schema.field(name).type)
        columns.append(column.filter(mask) if mask is not None else column)
        del column
    for t in tables:
        t.remove()
    combined = pa.table(columns, schema=schema)
    del columns
    changed = sorted({at for at in folded.values()})
    for at in changed:
        if at in ports_of:
            values[at][_F["flows"]] = len(ports_of[at])  # a transaction seen by two ranges is one flow
    if changed:
        fresh = pa.table([pa.array([values[at][i] for at in changed], combined.schema.field(i).type)
                          for i in range(len(names))], schema=combined.schema)
        index = np.arange(combined.num_rows, dtype=np.int64)
        index[merged[changed]] = combined.num_rows + np.arange(len(changed), dtype=np.int64)
        base = pa.concat_tables([combined, fresh])
        schema, take, cols = base.schema, pa.array(index), []
        del combined
        while base.num_columns:  # (a column at a time: one copy of a column at most)
            cols.append(base.column(0).take(take))
            base = base.remove_column(0)
        combined = pa.table(cols, schema=schema)
    uids = pc.binary_join_element_wise(f"C{input_index}.", pc.cast(pa.array(np.arange(combined.num_rows)),
                                                                   pa.string()), "")
    combined = combined.set_column(_F["uid"], combined.field(_F["uid"]), uids)
    give_back()  # (the copies the merge let go)

    def final(k: int, uid: str | None) -> str | None:
        """The merged uid of range ``k``'s connection ``uid``; "" when its records are dropped."""
        if uid is None:
            return None
        g = int(offsets[k]) + int(uid[uid.rindex(".") + 1:])
        if g in tcp_folded:
            return ""  # (its own range followed it from its start)
        return connection_uid(input_index, int(merged[folded.get(g, g)]))

    return _records(results, combined, final)


def _records(results: Sequence[_Result], combined: pa.Table,
             final: Callable[[int, str | None], str | None]) -> Iterator[Record]:
    """The merged ranges' records, the requests read from each range's file as they are taken."""
    cut = malformed = head_cuts = retired = holes = skipped = 0
    accounting = PacketAccounting()
    try:
        yield _merge_decryption(results, combined, final)
        for k, res in enumerate(results):
            yield from (InputError(*fields_) for fields_ in res.errors)
            for fields_ in itertools.chain(res.dns, _spilled(res.dns_spill)):  # (one batch at a time)
                a = DnsAnswer(*fields_)
                uid = final(k, a.uid)
                if uid != "":
                    a.uid = uid
                    yield a
            res.dns, res.dns_spill = [], None
            made = PreparedExchange if res.prepared else Exchange
            for fields_ in itertools.chain(res.exchanges, _spilled(res.spill)):
                e = made(*fields_)
                uid = final(k, e.uid)
                if uid != "":
                    e.uid = uid
                    if isinstance(e, PreparedExchange) and uid is not None:
                        e.conn = int(uid[uid.rindex(".") + 1:])  # (its rows name the reader's uid)
                    yield e
            res.spill = None
            cut += res.cut
            malformed += res.malformed
            head_cuts += res.response_head_cuts
            retired += res.retired_inspecting
            holes += res.http_holes
            skipped += res.http_bytes_skipped
            accounting.add(res.accounting)
        yield ConnectionBatch(table=combined)
        yield accounting
        yield from pcap.summary_errors(cut, malformed, head_cuts, retired, holes, skipped)
    finally:
        for res in results:  # (a consumer that stopped early: the files still go)
            _remove(res.spill)
            _remove(res.dns_spill)
            res.connections.remove()


def _merge_decryption(results: Sequence[_Result], combined: pa.Table,
                      final: Callable[[int, str | None], str | None]) -> Decryption:
    """The ranges' decryption counts added up; a connection two ranges decrypted counts once."""
    from datareach.dissect.tlsdecrypt import DecryptStats

    merged = Decryption(*encrypted_counts(combined))
    total = DecryptStats()
    uids: set[str] = set()
    for k, res in enumerate(results):
        merged.keys = merged.keys or res.keys
        merged.sources = merged.sources or res.key_sources  # (every range was handed the same blocks)
        if res.stats is not None:
            total.add(res.stats)
            uids.update(u for u in (final(k, uid) for uid in res.stats.uids) if u)
    total.uids = sorted(uids)
    total.decrypted = len(uids)
    merged.counts = total.to_dict() if merged.keys else {}
    merged.uids = total.uids
    return merged


_F = {name: i for i, name in enumerate(CONNECTION_FIELDS)}
_BYTES_OUT, _BYTES_IN = _F["bytes_out"], _F["bytes_in"]


def _fold(into: tuple[Any, ...], c: tuple[Any, ...]) -> tuple[Any, ...]:
    """A connection with a continuation's counters added.

    What the continuation made of the payload is not taken: the connection's own range followed
    it into the overlap from its start.
    """
    f = _F
    r = list(into)
    cip, cport, sip, sport = f["client_ip"], f["client_port"], f["server_ip"], f["server_port"]
    # (a DNS-over-UDP record's client port is just the first of its transactions')
    same = (c[cip], c[sip]) == (r[cip], r[sip]) and (c[cport] == r[cport] or c[sport] == r[sport] == 53)
    for out_field, in_field in (("packets_out", "packets_in"), ("bytes_out", "bytes_in")):
        o, i = f[out_field], f[in_field]
        r[o] += c[o] if same else c[i]
        r[i] += c[i] if same else c[o]
    r[f["first_seen"]] = min(r[f["first_seen"]], c[f["first_seen"]])
    r[f["last_seen"]] = max(r[f["last_seen"]], c[f["last_seen"]])
    if c[f["transport"]] == "udp" and r[f["protocol"]] is None:
        r[f["protocol"]] = c[f["protocol"]]  # a DNS response read by the next range names it
    return tuple(r)
