"""Ingest: one module per input format, each yielding the records of :mod:`datareach.schema`.

* :mod:`datareach.sources.pcap` -- classic pcap and pcapng (frames go through
  :mod:`~datareach.dissect.packets`, which calls the protocol parsers :mod:`~datareach.dissect.dns`,
  :mod:`~datareach.dissect.tls`, :mod:`~datareach.dissect.quic` and :mod:`~datareach.dissect.http1`);
* :mod:`datareach.sources.har` -- HAR 1.2 from browsers, mitmproxy, HTTP Toolkit and PCAPdroid;
* :mod:`datareach.sources.mitm` -- mitmproxy flow dumps (``mitmdump -w``), read by mitmproxy.

Other packages add formats through the entry-point group ``datareach.sources``: which source
reads a file, built-ins first, is decided in :mod:`datareach.sources.registry`.
:func:`detect_format` decides from the content, never from the file name, reading only the first
:data:`SNIFF_BYTES` of the file.

Inputs are regular files (:func:`datareach.files.open_regular`): a stream cannot be read twice
(its format is found from its head, then it is read, then hashed), and ``/dev/zero`` never ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from datareach.files import open_regular
from datareach.schema import Exchange, InputError, PreparedExchange, ProgressCallback, Record
from datareach.sources.compressed import (
    CAPTURE_COMPRESSIONS,
    HAR_COMPRESSIONS,
    compression_of,
    open_decompressed,
)

SNIFF_BYTES = 64 * 1024

# (the compressions a capture is read in, by their magic from CAPTURE_COMPRESSIONS, then others)
_COMPRESSED = (*((CAPTURE_COMPRESSIONS[name], name, tool) for name, tool in (
    ("gzip", "gunzip"), ("bzip2", "bunzip2"), ("xz", "unxz"), ("zstd", "unzstd"))),
    (b"PK\x03\x04", "zip", "unzip"), (b"7z\xbc\xaf\x27\x1c", "7-Zip", "7z x"), (b"\x04\x22\x4d\x18", "lz4", "unlz4"))
_COMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".xz", ".zst", ".zip", ".7z", ".lz4", ".z", ".br")


#: The formats read from inside a compressed file, by compression (zlib: mitmproxy's ``.zhar``).
_INNER_FORMATS = {**{kind: ("pcap", "pcapng", "har") for kind in CAPTURE_COMPRESSIONS}, "zlib": ("har",)}


def detect_format(path: Path) -> str | None:
    """The name of the source that reads ``path``, from the file's first bytes: 'pcap',
    'pcapng', 'har', 'mitmproxy' (a flow dump) or a plugin's format
    (:mod:`datareach.sources.registry`), with ``+gzip``, ``+bzip2``, ``+xz`` or ``+zstd`` for a
    compressed capture or HAR file (``pcapng+gzip``), ``+zlib`` for a zlib-compressed HAR file
    (``har+zlib``: mitmproxy's ``.zhar``); None when unrecognised. Raises :class:`OSError` when
    the file cannot be read or is not a regular file (a directory, a device, a FIFO)."""
    return _sniff(path)[0]


def _sniff(path: Path) -> tuple[str | None, list[str], bytes]:
    """The format of ``path`` from its first bytes, what went wrong asking plugins, and the
    bytes read (at most :data:`SNIFF_BYTES`)."""
    from datareach.sources import registry

    with open_regular(path) as f:
        head = f.read(SNIFF_BYTES)
    fmt, problems = registry.sniff(head)
    if fmt is None:
        kind = compression_of(head, HAR_COMPRESSIONS)
        if kind is not None:
            inner = _decompressed_head(path, kind)
            inner_fmt = registry.sniff(inner)[0] if inner else None
            if inner_fmt in _INNER_FORMATS[kind]:
                fmt = f"{inner_fmt}+{kind}"
    return fmt, problems, head


def _decompressed_head(path: Path, kind: str) -> bytes:
    """The first bytes of a compressed file, decompressed (empty when they do not decompress)."""
    try:
        with open_decompressed(path, kind) as f:
            return f.read(SNIFF_BYTES)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception:  # (corrupt from the start: zlib, lzma, zstandard errors; it is "not this format")
        return b""


def compression_hint(head: bytes, path: str | os.PathLike[str] = "") -> str | None:
    """What to do when an unrecognised file starting with ``head`` looks compressed."""
    for magic, name, tool in _COMPRESSED:
        if head.startswith(magic):
            if name in CAPTURE_COMPRESSIONS:  # (read: what it holds is what is not known)
                return f"it is {name}-compressed, and what it holds is not in one of these formats either"
            return f"it is {name}-compressed: decompress it first (e.g. `{tool}`)"
    if str(path).lower().endswith(_COMPRESSED_SUFFIXES):
        return "its name says it is compressed: decompress it first"
    return None


def _unrecognised(head: bytes, path: str | os.PathLike[str], problems: list[str]) -> str:
    """The message for a file in no known format: the formats read, and a hint when it looks
    compressed."""
    from datareach.sources import registry

    plugins = [name for name, _, _ in registry.plugin_sources()]
    also = f", nor {', '.join(plugins)} (plugins)" if plugins else ""
    why = "".join(f"; {p}" for p in problems)
    hint = compression_hint(head, path)
    return (f"unrecognised input format: not pcap, pcapng, HAR or a mitmproxy flow file{also} "
            f"(checked the content, not the file name; these may also be gzip-, bzip2-, xz- or "
            f"zstd-compressed){why}" + (f"; {hint}" if hint else ""))


def format_problem(path: Path) -> str | None:
    """Why ``path`` cannot be audited at all, from its first bytes: it is empty, or in no format
    datareach reads (None when a reader takes it). The command line asks this before any
    input is read (a wrong file is a wrong invocation); :func:`read_input` reports the same as a
    fatal input error. Raises :class:`OSError` as :func:`detect_format` does."""
    from datareach.sources import registry

    fmt, problems, head = _sniff(path)
    if not head:
        return "the file is empty"
    if fmt and "+" in fmt and fmt.rsplit("+", 1)[1] in HAR_COMPRESSIONS:
        fmt = fmt.rsplit("+", 1)[0]
    if fmt is None or registry.find(fmt) is None:
        return _unrecognised(head, path, problems)
    return None


def read_input(path: Path, input_index: int, fmt: str | None = None,
               progress: ProgressCallback | None = None,
               while_waiting: Callable[[], None] | None = None, keep_bodies: bool = True,
               on_request: Callable[[Exchange], None] | None = None, keys: Any = None,
               prepare: Callable[[Exchange], PreparedExchange] | None = None) -> Iterator[Record]:
    """Yield the records of one input file, whatever its format.

    ``while_waiting`` is called once if the file is read by parallel processes, while they run.
    With ``keep_bodies=False`` HTTP requests from captures carry their body's size, not the body.
    ``on_request`` is applied to every request where it is read (in the reader's own process
    when the file is read in parallel), before it is yielded: the detect stage uses it.
    ``keys``: the audit's TLS key logs (:class:`~datareach.dissect.keylog.KeyStore`).
    ``prepare``: a capture read in parallel hands on its requests as what this makes of each
    (after ``on_request``) instead of as :class:`~datareach.schema.Exchange` records.
    An empty file, a file in no known format and a file that is not a regular one end with a
    fatal error after reading at most :data:`SNIFF_BYTES`.
    """
    from datareach.sources import registry

    problems: list[str] = []
    head = b""
    try:
        if not fmt:
            fmt, problems, head = _sniff(path)
            if not head:
                yield InputError("the file is empty", offset=0, fatal=True)
                return
    except OSError as e:
        yield InputError(f"cannot read the file: {e.strerror or e}", fatal=True)
        return
    compression = ""
    if fmt and "+" in fmt and fmt.rsplit("+", 1)[1] in HAR_COMPRESSIONS:
        fmt, compression = fmt.rsplit("+", 1)
    source = registry.find(fmt) if fmt else None
    if fmt is None or source is None:
        yield InputError(_unrecognised(head, path, problems), offset=0, fatal=True)
        return
    options: dict[str, Any] = {"while_waiting": while_waiting, "keep_bodies": keep_bodies, "on_request": on_request}
    if compression:
        options["compression"] = compression
    if keys is not None:  # (a plugin written before keys existed may not take them)
        options["keys"] = keys
    if prepare is not None and registry.is_builtin(source):
        options["prepare"] = prepare
    try:
        records: Iterator[Record]
        if registry.is_builtin(source):
            records = iter(source.read(path, input_index, progress, **options))
        else:  # a plugin's: its failures end the input with an error naming it, never the audit
            try:
                records = registry.guarded(fmt, iter(source.read(path, input_index, progress, **options)))
            except OSError:
                raise
            except Exception as e:
                yield InputError(f"{registry.describe(fmt)} failed to start reading: {type(e).__name__}: {e}",
                                 fatal=True)
                return
        for rec in records:
            if on_request is not None and isinstance(rec, Exchange) and rec.findings is None:
                on_request(rec)
            yield rec
    except OSError as e:
        yield InputError(f"read error: {e.strerror or e}", fatal=True)
