"""Compressed captures: gzip, bzip2, xz and zstd, decompressed as they are read.

:func:`open_decompressed` gives a file object that the capture readers read like the file itself.
When the compressed stream is corrupt or cut short, the data before the fault comes out first and
the fault is raised by the next read (:class:`_Salvaging`), so the records before it are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datareach.files import open_regular

#: Compressions a capture may come in (detected by content, decompressed as it is read), by magic.
CAPTURE_COMPRESSIONS = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00", "zstd": b"(\xb5/\xfd"}


def open_decompressed(path: Path, kind: str) -> _Salvaging:
    """A binary file object reading ``path`` decompressed (``kind`` from :data:`CAPTURE_COMPRESSIONS`)."""
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
    except BaseException:
        raw.close()
        raise
    raw.close()
    raise ValueError(f"unknown compression {kind!r}")


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
