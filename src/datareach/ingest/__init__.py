"""Ingest: one module per input format, each yielding the records of :mod:`datareach.model`.

* :mod:`datareach.ingest.pcap` -- classic pcap and pcapng (frames go through
  :mod:`~datareach.ingest.packets`, which calls the protocol parsers :mod:`~datareach.ingest.dns`,
  :mod:`~datareach.ingest.tls`, :mod:`~datareach.ingest.quic` and :mod:`~datareach.ingest.http1`);
* :mod:`datareach.ingest.har` -- HAR 1.2 from browsers, mitmproxy, HTTP Toolkit and PCAPdroid;
* :mod:`datareach.ingest.mitm` -- mitmproxy flow dumps (``mitmdump -w``), read by mitmproxy.

:func:`detect_format` decides from the content, never from the file name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

from datareach.model import Exchange, InputError, ProgressCallback, Reader, Record

SNIFF_BYTES = 64 * 1024


def detect_format(path: Path) -> str | None:
    """'pcap', 'pcapng', 'har' or 'mitmproxy' (a flow dump) from the file's first bytes; None when
    unrecognised."""
    from datareach.ingest import har, pcap

    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    kind = pcap.sniff(head)
    if kind is not None:
        return kind
    if har.looks_like_har(head):
        return "har"
    from datareach.ingest import mitm

    if mitm.looks_like_flows(head):
        return "mitmproxy"
    return None


def read_input(path: Path, input_index: int, fmt: str | None = None,
               progress: ProgressCallback | None = None,
               while_waiting: Callable[[], None] | None = None, keep_bodies: bool = True,
               on_request: Callable[[Exchange], None] | None = None) -> Iterator[Record]:
    """Yield the records of one input file, whatever its format.

    ``while_waiting`` is called once if the file is read by parallel processes, while they run.
    With ``keep_bodies=False`` HTTP requests from captures carry their body's size, not the body.
    ``on_request`` is applied to every request where it is read (in the reader's own process
    when the file is read in parallel), before it is yielded: the detect stage uses it.
    """
    from datareach.ingest import har, pcap

    try:
        kind = fmt or detect_format(path)
    except OSError as e:
        yield InputError(f"cannot read the file: {e.strerror or e}", fatal=True)
        return
    reader: Reader
    if kind in ("pcap", "pcapng"):
        reader = functools.partial(pcap.read_capture, while_waiting=while_waiting, keep_bodies=keep_bodies,
                                   on_request=on_request)
    elif kind == "har":
        reader = har.read_har
    elif kind == "mitmproxy":
        from datareach.ingest import mitm

        reader = mitm.read_flows
    else:
        yield InputError("unrecognised input format: not pcap, pcapng, HAR or a mitmproxy flow file (checked "
                         "the content, not the file name)", offset=0, fatal=True)
        return
    try:
        for rec in reader(path, input_index, progress):
            if on_request is not None and isinstance(rec, Exchange) and rec.findings is None:
                on_request(rec)
            yield rec
    except OSError as e:
        yield InputError(f"read error: {e.strerror or e}", fatal=True)
