"""Which packet core runs: the hot modules compiled by mypyc (native) or their Python sources.

A build with a C compiler compiles :data:`NATIVE_MODULES` with mypyc (``setup.py``): each
becomes an extension module beside its ``.py`` source, and Python's importer prefers the
extension. ``DATAREACH_NATIVE=0`` in the environment makes :func:`install` put a finder first on
``sys.meta_path`` that hands out the ``.py`` source of those modules instead, so that one
installation runs either path (the tests compare them byte for byte). A pure-Python install (no
compiler, or ``DATAREACH_PURE_PYTHON=1`` at build time) has no extensions and runs the sources
either way.

This module is part of the base stage (imported by ``datareach/__init__.py``): it imports only
the standard library, and never the modules it lists.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Final

#: The modules ``setup.py`` compiles with mypyc, in one shared library
#: (``datareach/packetcore__mypyc*.so``). setup.py reads this tuple from the source text.
NATIVE_MODULES: Final = (
    "datareach.dissect.packets",
    "datareach.dissect.dns",
    "datareach.dissect.tls",
    "datareach.dissect.http1",
    "datareach.sources.pcap",
    "datareach.detect.decode",
    "datareach.detect.patterns",
    "datareach.detect.prefilter",
)
#: The environment variable that selects the path at run time ("0": the Python sources).
ENV: Final = "DATAREACH_NATIVE"
_NAMES: Final = frozenset(NATIVE_MODULES)


class PureFinder(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` source of the compiled modules, ahead of their extension modules."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _NAMES or not path:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path:
            source = os.path.join(entry, leaf)
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def pure_requested() -> bool:
    return os.environ.get(ENV, "").strip() == "0"


#: the compiled modules older than their source in a source tree (set by :func:`install`)
stale: list[str] = []


def _stale_in_tree() -> list[str]:
    """In a source tree (an editable install, or PYTHONPATH=src: ``src/datareach`` with ``setup.py``
    beside ``src``), the
    compiled modules whose ``.py`` was changed after they were built: running them would run old
    code. (Not checked in an installed wheel, whose files' times say nothing.)"""
    package = os.path.dirname(os.path.abspath(__file__))
    src = os.path.dirname(package)
    if os.path.basename(src) != "src" or not os.path.isfile(os.path.join(src, os.pardir, "setup.py")):
        return []
    out = []
    for name in NATIVE_MODULES:
        base = os.path.join(os.path.dirname(package), *name.split("."))
        try:
            source = os.stat(base + ".py").st_mtime
        except OSError:
            continue
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            try:
                if os.stat(base + suffix).st_mtime < source:
                    out.append(name)
            except OSError:
                continue
            break
    return out


def install() -> None:
    """Put :class:`PureFinder` first on ``sys.meta_path`` if ``DATAREACH_NATIVE=0``, or if a
    compiled module of a source tree is older than its source (then :data:`stale` names them)."""
    if not pure_requested():
        stale[:] = _stale_in_tree()
        if not stale:
            return
    if not any(isinstance(f, PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, PureFinder())


def is_compiled(module: ModuleType) -> bool:
    """Whether a module was loaded from an extension (a mypyc-compiled module)."""
    return isinstance(getattr(module.__spec__, "loader", None), importlib.machinery.ExtensionFileLoader)


def packet_core() -> str:
    """``native (mypyc)`` or ``pure Python``: what the packet core of this process runs.

    Looks the module up without importing it when it is not loaded yet (``--version`` stays cheap).
    """
    name = NATIVE_MODULES[0]
    module = sys.modules.get(name)
    if module is not None:
        compiled = is_compiled(module)
    else:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        compiled = spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
    if compiled:
        return "native (mypyc)"
    if stale:
        return ("pure Python (the compiled packet core is older than its sources: rebuild it with `make` "
                "or `pip install -e .`)")
    return "pure Python"
