"""Compressed inputs: gzip, bzip2, xz and zstd captures and HAR files, and zlib HAR files
(mitmproxy's ``.zhar``), decompressed as they are read.

:func:`open_decompressed` gives a file object that the readers read like the file itself; what
it holds in memory is bounded by the read size, however much the data decompresses to.
When the compressed stream is corrupt or cut short, the data before the fault comes out first and
the fault is raised by the next read (:class:`_Salvaging`), so the records before it are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datareach.files import open_regular

#: Compressions a capture may come in (detected by content, decompressed as it is read), by magic.
CAPTURE_COMPRESSIONS = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00", "zstd": b"(\xb5/\xfd"}
#: The compressions a HAR file may come in: those of captures, and zlib (mitmproxy's ``save.har``
#: writes ``zlib.compress(har, 9)`` to a path ending ``.zhar``), which has no magic of its own.
HAR_COMPRESSIONS = (*CAPTURE_COMPRESSIONS, "zlib")


def compression_of(head: bytes, kinds: tuple[str, ...] = tuple(CAPTURE_COMPRESSIONS)) -> str | None:
    """Which of ``kinds`` the file starting with ``head`` is compressed with, from its first bytes
    (None: none of them). zlib is recognised by its two-byte header (deflate, a window of at most
    32 KiB, the header check): 1 in about 500 arbitrary files passes it, so whatever is found must
    also decompress into a known format."""
    for kind in kinds:
        if kind == "zlib":
            if len(head) >= 2 and (head[0] & 0x0F) == 8 and (head[0] >> 4) <= 7 and \
                    ((head[0] << 8) | head[1]) % 31 == 0:
                return kind
        elif head.startswith(CAPTURE_COMPRESSIONS[kind]):
            return kind
    return None


def open_decompressed(path: Path, kind: str) -> _Salvaging:
    """A binary file object reading ``path`` decompressed (``kind`` from :data:`HAR_COMPRESSIONS`)."""
    import bz2
    import gzip
    import lzma

    raw = open_regular(path)
    try:
        if kind == "gzip":
            return _Salvaging(gzip.GzipFile(fileobj=raw, mode="rb"), raw)
        if kind == "bzip2":
            return _Salvaging(bz2.BZ2File(raw, "rb"), raw)
        if kind == "xz":
            return _Salvaging(lzma.LZMAFile(raw, "rb"), raw)
        if kind == "zstd":
            import zstandard

            return _Salvaging(zstandard.ZstdDecompressor().stream_reader(raw, closefd=False), raw)
        if kind == "zlib":
            return _Salvaging(_ZlibReader(raw), raw)
    except BaseException:
        raw.close()
        raise
    raw.close()
    raise ValueError(f"unknown compression {kind!r}")


class _ZlibReader:
    """A zlib stream (RFC 1950) decompressed as it is read: each ``read1(n)`` gives at most ``n``
    bytes (zlib's ``max_length``), so a small file that decompresses to gigabytes is read a piece
    at a time like any other. Data after the end of the stream is ignored; a stream that ends
    early raises :class:`EOFError` once what came before is read."""

    IN = 1 << 16

    def __init__(self, raw: Any) -> None:
        import zlib

        self.raw = raw
        self.d = zlib.decompressobj()
        self.pending = b""  # compressed input zlib has not taken yet (it stopped at max_length)
        self.flushed = b""  # what zlib gave at the end of the input, still to be read
        self.ended = False  # the file ended before the stream did

    def read1(self, n: int = -1) -> bytes:
        n = n if n is not None and n > 0 else 1 << 16
        while True:
            if self.flushed:
                out, self.flushed = self.flushed[:n], self.flushed[n:]
                return out
            if self.d.eof:
                return b""
            if not self.pending:
                self.pending = self.raw.read(self.IN)
                if not self.pending:
                    if self.ended:
                        raise EOFError("the zlib stream ends early")
                    # (what zlib still holds; without more input it is less than its window)
                    self.flushed, self.ended = self.d.flush(), True
                    continue
            out = self.d.decompress(self.pending, n)
            self.pending = self.d.unconsumed_tail
            if out:
                return out

    read = read1

    def close(self) -> None:
        pass


class _Salvaging:
    """Reads a decompressing stream a piece at a time, so that when it turns out corrupt or cut
    short, the data before the fault is returned first and the fault raised by the next read."""

    PIECE = 1 << 16

    def __init__(self, stream: Any, raw: Any) -> None:
        self.stream = stream
        self.raw = raw
        self.fault: BaseException | None = None
        self._read1 = getattr(stream, "read1", stream.read)

    def read(self, n: int = -1) -> bytes:
        if self.fault is not None:
            fault, self.fault = self.fault, None
            raise fault
        parts: list[bytes] = []
        got = 0
        while n < 0 or got < n:
            try:
                # (read1: one underlying read at a time, so what came before a fault is not lost)
                piece = self._read1(self.PIECE if n < 0 else min(self.PIECE, n - got))
            except Exception as e:  # (EOFError, OSError, lzma.LZMAError, zstandard.ZstdError...)
                if not parts:
                    raise
                self.fault = e
                break
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            self.raw.close()

    def __enter__(self) -> _Salvaging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
