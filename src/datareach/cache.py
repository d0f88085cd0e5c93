"""Compiled look-up data kept in the user's cache directory between runs.

Some reference data ships in a form that is slow to read (the geo data is a gzipped pickle of
Python lists, the public suffix list a text file to parse): every run would spend most of a
second turning it into look-up tables. The first run compiles it into a small file here;
later runs map or read that file in a few milliseconds.

Where: ``$DATAREACH_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/datareach``, else
``~/.cache/datareach`` (see :func:`cache_dir`). Nothing in it is precious: deleting the
directory only costs the next run the compile time again. When the directory cannot be
created or written, the data is compiled in memory for the run and nothing is stored.

Each file is named after what it was compiled from (the source file's path, size and mtime,
the package version and this module's format version), so a new version of the data simply
compiles a new file. Files are written to a temporary name and moved into place with
``os.replace``, so a process never sees another one's half-written file; every file carries a
CRC-32 of its whole content and its key, both checked on every load, so a truncated or damaged
file is detected, ignored and rebuilt, never trusted.

File layout (all integers little-endian)::

    magic (8 bytes) | header length (u32) | CRC-32 of header + payload (u32)
    | header (JSON, UTF-8) | zero padding to a multiple of 64 | payload

The header holds the key and, for each named section, its offset (from the payload start,
64-byte aligned), length, and optional numpy dtype and shape, so that arrays can be used in
place from a memory map.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import struct
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CachedFile", "cache_dir", "cache_path", "load", "source_key", "store"]

_MAGIC = b"DRCACHE1"
_PREFIX = struct.Struct("<8sII")
_ALIGN = 64


def user_dir(env_var: str, xdg_var: str, default: tuple[str, ...]) -> Path:
    """``$env_var`` if set, else ``$xdg_var/datareach`` (if absolute), else ``~/<default>/datareach``."""
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get(xdg_var)
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "datareach"
    return Path.home().joinpath(*default, "datareach")


def cache_dir() -> Path:
    """The directory compiled data is kept in (it may not exist yet)."""
    return user_dir("DATAREACH_CACHE_DIR", "XDG_CACHE_HOME", (".cache",))


def source_key(path: Path) -> dict[str, object]:
    """What identifies one version of a source file: its resolved path, size and mtime."""
    resolved = path.resolve()
    st = resolved.stat()
    return {"path": str(resolved), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _canonical(key: Mapping[str, object]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def cache_path(name: str, key: Mapping[str, object]) -> Path:
    """The file for ``name`` compiled from ``key`` (a JSON-able mapping)."""
    digest = hashlib.sha256(_canonical(key).encode()).hexdigest()[:20]
    return cache_dir() / f"{name}-{digest}.bin"


def _pad(n: int) -> int:
    return -n % _ALIGN


def store(path: Path, key: Mapping[str, object], sections: Mapping[str, tuple[Any, str | None, list[int] | None]]) -> bool:
    """Write ``sections`` (name -> (bytes-like, numpy dtype str or None, shape or None)).

    Atomic: written to a temporary file in the same directory, then ``os.replace``-d. Returns
    False (and leaves nothing behind) when the directory cannot be written.
    """
    entries: list[dict[str, object]] = []
    views: list[memoryview] = []
    offset = 0
    for name, (data, dtype, shape) in sections.items():
        view = memoryview(data).cast("B")
        entries.append({"name": name, "offset": offset, "nbytes": view.nbytes, "dtype": dtype, "shape": shape})
        views.append(view)
        offset += view.nbytes + _pad(view.nbytes)
    header = json.dumps(
        {"key": _canonical(key), "payload": offset, "sections": entries}, separators=(",", ":")
    ).encode()
    head_pad = bytes(_pad(_PREFIX.size + len(header)))
    crc = zlib.crc32(header)
    for view in views:
        crc = zlib.crc32(view, crc)
        crc = zlib.crc32(bytes(_pad(view.nbytes)), crc)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(_PREFIX.pack(_MAGIC, len(header), crc))
            f.write(header)
            f.write(head_pad)
            for view in views:
                f.write(view)
                f.write(bytes(_pad(view.nbytes)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        return True
    except OSError:
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


@dataclass(frozen=True)
class CachedFile:
    """A checked cache file, mapped read-only: ``section(name)`` is a zero-copy memoryview."""

    path: Path
    buffer: mmap.mmap
    base: int
    sections: dict[str, dict[str, Any]]

    def section(self, name: str) -> memoryview:
        s = self.sections[name]
        start = self.base + int(s["offset"])
        return memoryview(self.buffer)[start : start + int(s["nbytes"])]


def load(path: Path, key: Mapping[str, object]) -> CachedFile | None:
    """The file at ``path`` if it exists, is complete and undamaged, and was built from ``key``.

    None otherwise (the caller rebuilds it). Never raises for a bad or missing file.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < _PREFIX.size:
                return None
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    ok = False
    try:
        magic, header_len, crc = _PREFIX.unpack_from(buf, 0)
        if magic != _MAGIC or _PREFIX.size + header_len > size:
            return None
        header_bytes = buf[_PREFIX.size : _PREFIX.size + header_len]
        header = json.loads(header_bytes)
        base = _PREFIX.size + header_len + _pad(_PREFIX.size + header_len)
        if not isinstance(header, dict) or header.get("key") != _canonical(key):
            return None
        payload = header["payload"]
        if not isinstance(payload, int) or base + payload != size:
            return None
        sections: dict[str, dict[str, Any]] = {}
        for s in header["sections"]:
            off, nbytes = s["offset"], s["nbytes"]
            if not (isinstance(off, int) and isinstance(nbytes, int) and off >= 0 and off + nbytes <= payload):
                return None
            sections[str(s["name"])] = s
        with memoryview(buf) as mv, mv[base:] as payload_view:
            if zlib.crc32(payload_view, zlib.crc32(header_bytes)) != crc:
                return None
        ok = True
        return CachedFile(path, buf, base, sections)
    except (ValueError, KeyError, TypeError, struct.error):
        return None
    finally:
        if not ok:
            with contextlib.suppress(BufferError):
                buf.close()
