"""Process-wide memory settings of an audit: what the process loads and what it gives back.

Two things a long audit pays for in memory that it never uses:

* **pandas, loaded by pyarrow.** pyarrow imports pandas (when it is installed: the Spark extra
  brings it) the first time it builds an array, to see whether the array is a pandas object.
  That is about 55 MB of memory and 0.2 s in every process that builds one: the audit's own and
  each parallel reader's. :func:`pyarrow_without_pandas` makes pyarrow's one check find no
  pandas, in a process that is datareach's alone (a parallel reader, the command line's
  process); pandas itself can still be imported there, only pyarrow's conversions to and from
  it (``Table.to_pandas``, ``Table.from_pandas``) are then unavailable in that process.
  A library call (:func:`datareach.audit`) never does it: the caller's process may use them.
* **memory freed but kept by the C library.** Freed blocks in the middle of the heap stay
  with the process (and in its resident size) until the heap is trimmed; after reading a
  capture's records, hundreds of megabytes of them. :func:`give_back` trims it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["give_back", "pyarrow_without_pandas"]


class _NoPandas(importlib.abc.MetaPathFinder):
    """A finder that says pandas is not there (on ``sys.meta_path`` for one call only)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def pyarrow_without_pandas() -> bool:
    """Make pyarrow's check for pandas in this process find none (see the module's description).

    Does nothing, and returns False, when pandas is already imported or pyarrow already checked
    (the check is made once per process). Returns True when pyarrow will not load pandas.
    """
    if "pandas" in sys.modules:
        return False
    import pyarrow as pa

    if "pandas" in sys.modules:  # (pyarrow's own import loaded it)
        return False
    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        # pyarrow looks for pandas when it converts a sequence it does not know at once; it
        # remembers what it found for the rest of the process
        import numpy as np

        pa.array(np.zeros(1, np.int64))
        pa.array([0])
    finally:
        sys.meta_path.remove(blocker)
    return "pandas" not in sys.modules


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.malloc_trim  # noqa: B018 (glibc only)
    except (OSError, AttributeError):
        return None
    return lib


_LIBC: list[ctypes.CDLL | None] = []


def give_back() -> None:
    """Return the memory the C library holds freed to the system (glibc's ``malloc_trim``;
    nothing elsewhere). It takes a few milliseconds: call it between stages, not per record."""
    if not _LIBC:
        _LIBC.append(_libc())
    lib = _LIBC[0]
    if lib is not None:
        lib.malloc_trim(0)
