"""The capture source: pcap and pcapng files, read in parallel when large.

Large files are read by several processes at once (see :mod:`datareach.sources.parallel`), with
the same result as one reader (:func:`datareach.sources.pcap.read_sequential`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from datareach.dissect.keylog import KeyStore
from datareach.schema import Exchange, PreparedExchange, ProgressCallback, Record
from datareach.sources import parallel, pcap


def read_capture(path: Path, input_index: int, progress: ProgressCallback | None = None,
                 workers: int | None = None, while_waiting: Callable[[], None] | None = None,
                 keep_bodies: bool = True,
                 on_request: Callable[[Exchange], None] | None = None,
                 keys: KeyStore | None = None, compression: str = "",
                 prepare: Callable[[Exchange], PreparedExchange] | None = None) -> Iterator[Record]:
    """Read a pcap or pcapng file (detected from its content) and yield its records.

    ``workers``: processes (default: one per core for large files). ``on_request`` is applied
    to every HTTP request where it is read (in the reader's own process when the file is read
    in parallel), so that the detect stage runs on every core; ``while_waiting`` is called once
    in this process while parallel readers run. ``keys``: the audit's key logs (TLS
    connections they have secrets for are decrypted and their HTTP read). ``compression``: the
    file is compressed (gzip, bzip2, xz, zstd): one process reads it, decompressing as it goes.
    ``prepare``: the parallel readers hand on each request as what this makes of it.
    """
    records = None if compression else parallel.read_stream(path, input_index, progress, workers, while_waiting,
                                                             keep_bodies, on_request, keys, prepare)
    if records is not None:
        yield from records
        return
    for rec in pcap.read_sequential(path, input_index, progress, keep_bodies, keys, compression):
        if on_request is not None and isinstance(rec, Exchange) and rec.findings is None:
            on_request(rec)
        yield rec
