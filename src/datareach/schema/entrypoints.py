"""Finding and loading third-party plugins: the mechanism under :mod:`datareach.plugins`.

A plugin is an object another distribution names in an entry-point group of its package
metadata (``[project.entry-points."datareach.sources"]`` in its pyproject.toml), the way pytest
and datasette find theirs. Each extendable stage loads its own group with this module:

* ``datareach.sources`` -- input formats (:mod:`datareach.sources.registry`);
* ``datareach.detectors`` -- detectors run on every HTTP request (:mod:`datareach.detect.detector`);
* ``datareach.reports`` -- report formats (:mod:`datareach.report.formats`).

The built-ins are declared in datareach's own pyproject.toml too, but they are taken from the
stages' code (in a fixed order, and without reading any metadata): datareach's own entries are
skipped here, so an out-of-date editable install or a source checkout works the same.

Nothing is imported or read until a stage asks: :mod:`importlib.metadata` alone costs ~15 ms,
which ``datareach --help`` does not pay. The listing is read once per process; each plugin is
imported once. ``DATAREACH_NO_PLUGINS=1`` turns every third-party plugin off.

This module is at the base of the layering (any stage may use it) and imports no stage.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: The entry-point groups.
SOURCES = "datareach.sources"
DETECTORS = "datareach.detectors"
REPORTS = "datareach.reports"
GROUPS = (SOURCES, DETECTORS, REPORTS)

#: Set to 1 (or anything but 0/empty) to ignore every third-party plugin.
DISABLE_ENV = "DATAREACH_NO_PLUGINS"
#: The distribution whose entries are the built-ins (taken from code, not from metadata).
OWN_DISTRIBUTION = "datareach"

log = logging.getLogger("datareach.plugins")


class PluginError(Exception):
    """A plugin could not be imported, or is not what its group needs."""


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """One third-party entry point: ``name = value`` in ``group``, from distribution ``dist``."""

    group: str
    name: str
    #: ``module:attribute`` (or just ``module``)
    value: str
    dist: str
    version: str

    def describe(self) -> str:
        """How messages name it: ``source plugin 'acme' (acme-datareach 1.0, acme.src:SOURCE)``."""
        kind = self.group.rpartition(".")[2].rstrip("s")
        return f"{kind} plugin {self.name!r} ({self.dist} {self.version}, {self.value})"

    def load(self) -> Any:
        """Import the object the entry point names (once per process); :class:`PluginError`
        (with the cause) when that fails, whatever the exception."""
        return _load(self)


def disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@functools.cache
def third_party(group: str) -> tuple[EntryPoint, ...]:
    """The group's entry points from every installed distribution but datareach, sorted by
    distribution and name (a stable order whatever the order of ``sys.path``). Nothing is
    imported. Cached for the process."""
    if disabled():
        return ()
    from importlib.metadata import entry_points

    out = []
    names: dict[int, tuple[str, str]] = {}  # the distribution's name and version, read once each
    for ep in entry_points(group=group):
        dist = ep.dist
        if dist is None:
            meta = ("unknown distribution", "")
        else:
            meta = names.get(id(dist)) or names.setdefault(id(dist), (dist.name or "?", dist.version or "?"))
        if _normalize(meta[0]) == OWN_DISTRIBUTION:
            continue
        out.append(EntryPoint(group, ep.name, ep.value, meta[0], meta[1]))
    out.sort(key=lambda e: (_normalize(e.dist), e.name))
    return tuple(out)


def unclaimed(group: str, taken: set[str], what: str) -> Iterator[EntryPoint]:
    """The group's third-party entry points (:func:`third_party`) whose name is not in ``taken``;
    one whose name is taken (by a built-in or an earlier plugin) is logged and skipped. The
    caller adds each name it accepts to ``taken``."""
    for ep in third_party(group):
        if ep.name in taken:
            warn(f"{ep.group}:{ep.name}:{ep.dist}:taken",
                 f"{ep.describe()} is ignored: another {what} is called {ep.name!r}")
            continue
        yield ep


@functools.cache
def _load(ep: EntryPoint) -> Any:
    import importlib

    module_name, _, attr = ep.value.partition(":")
    try:
        obj: Any = importlib.import_module(module_name.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            obj = getattr(obj, part)
    except Exception as exc:  # a plugin's import can fail in any way: report it, never crash
        raise PluginError(f"{ep.describe()} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    return obj


_warned: set[str] = set()


def warn(key: str, message: str) -> None:
    """Log a plugin problem once per process (``key`` names the plugin and the problem).

    The ``datareach.plugins`` logger: without logging configured, Python prints warnings to
    standard error as they are.
    """
    if key in _warned:
        return
    _warned.add(key)
    log.warning("datareach: warning: %s", message)


def clear_caches() -> None:
    """Forget the listing, the loaded plugins and the warnings given (tests; after installing a
    plugin into a running process)."""
    third_party.cache_clear()
    _load.cache_clear()
    _warned.clear()
