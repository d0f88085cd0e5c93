"""Extension points: input formats, detectors and report formats from other packages.

Another distribution adds to datareach by naming objects in entry-point groups of its package
metadata, the way pytest and datasette find their plugins (docs/plugins.md has a walk-through)::

    [project.entry-points."datareach.sources"]
    acme = "datareach_acme:AcmeSource"          # a Source (a class is instantiated)

    [project.entry-points."datareach.detectors"]
    acme-user-id = "datareach_acme:UserIdDetector"  # a DetectorFactory (e.g. a class)

    [project.entry-points."datareach.reports"]
    csv = "datareach_acme:CsvReport"            # a ReportFormat (a class is instantiated)

The protocols a plugin implements are here: :class:`Source`, :class:`RequestDetector` (built by
a :class:`DetectorFactory` from a :class:`DetectContext`) and :class:`ReportFormat`; and the
records they deal in: :class:`~datareach.schema.Connection`, :class:`~datareach.schema.DnsAnswer`,
:class:`~datareach.schema.Exchange`, :class:`~datareach.schema.InputError` (sources),
:class:`Finding` and :class:`Layer` (detectors).

Each stage loads its own group, lazily, and tries the built-ins first:

* sources -- :mod:`datareach.sources.registry` (a file no built-in recognises goes to the
  plugins' ``sniff``, in distribution and name order);
* detectors -- :class:`datareach.detect.detector.Detector` (the built-ins ``known`` and
  ``patterns``, then the plugins' detectors, on every request);
* report formats -- :mod:`datareach.report.formats` (``datareach audit --format NAME``).

A broken plugin never stops an audit: a plugin that cannot be loaded is left out with a warning
(logger ``datareach.plugins``), a source that fails while reading ends that input with an
error naming it, a detector that raises is named in the request's ``decode_cuts``.
``DATAREACH_NO_PLUGINS=1`` turns every plugin off. The built-ins are declared in datareach's own
pyproject.toml as well, but they come from the code (in a fixed order, even from a source
checkout without installed metadata).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datareach.schema.entrypoints import DETECTORS, REPORTS, SOURCES, PluginError

if TYPE_CHECKING:
    from datareach.detect.categories import categories
    from datareach.detect.detector import DetectContext, DetectorFactory, RequestDetector
    from datareach.detect.profile import redact
    from datareach.detect.types import Finding, Layer, Limits
    from datareach.report.formats import ReportFormat
    from datareach.sources.registry import Source

__all__ = [
    "DETECTORS",
    "REPORTS",
    "SOURCES",
    "DetectContext",
    "DetectorFactory",
    "Finding",
    "Layer",
    "Limits",
    "Plugin",
    "PluginError",
    "ReportFormat",
    "RequestDetector",
    "Source",
    "builtin_names",
    "categories",
    "clear_caches",
    "installed",
    "redact",
]

_LAZY = {
    "DetectContext": "datareach.detect.detector",
    "DetectorFactory": "datareach.detect.detector",
    "RequestDetector": "datareach.detect.detector",
    "Finding": "datareach.detect.types",
    "Layer": "datareach.detect.types",
    "Limits": "datareach.detect.types",
    "ReportFormat": "datareach.report.formats",
    "Source": "datareach.sources.registry",
    # helpers for detectors: the categories policies use, and the redacted form of a value
    "categories": "datareach.detect.categories",
    "redact": "datareach.detect.profile",
}


def __getattr__(name: str) -> Any:
    # the protocols live with their stages, which are not imported until asked for
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'datareach.plugins' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, slots=True)
class Plugin:
    """One installed third-party plugin (:func:`installed`)."""

    #: the entry-point group: ``datareach.sources``, ``datareach.detectors`` or ``datareach.reports``
    group: str
    name: str
    #: ``module:attribute``
    value: str
    dist: str
    version: str
    #: why it is not used (cannot be imported, its name is taken...), or None when it loads
    problem: str | None


def builtin_names(group: str) -> list[str]:
    """The built-ins' names in a group, in the order they are tried."""
    if group == SOURCES:
        from datareach.sources.registry import BUILTIN_SOURCES

        return [s.name for s in BUILTIN_SOURCES]
    if group == DETECTORS:
        from datareach.detect.detector import BUILTIN_DETECTORS

        return [name for name, _ in BUILTIN_DETECTORS]
    if group == REPORTS:
        from datareach.report.formats import BUILTIN_FORMATS

        return [f.name for f in BUILTIN_FORMATS]
    raise ValueError(f"not a datareach entry-point group: {group!r}")


def installed() -> list[Plugin]:
    """Every third-party plugin in the three groups, in the order they are tried, each loaded
    (imported) to check it: what a ``datareach plugins`` listing would show."""
    from datareach.schema import entrypoints

    out = []
    for group in (SOURCES, DETECTORS, REPORTS):
        taken = set(builtin_names(group))
        for ep in entrypoints.third_party(group):
            problem = None
            if ep.name in taken:
                problem = f"ignored: another {group.rpartition('.')[2].rstrip('s')} is called {ep.name!r}"
            else:
                taken.add(ep.name)
                try:
                    ep.load()
                except PluginError as exc:
                    problem = str(exc)
            out.append(Plugin(group, ep.name, ep.value, ep.dist, ep.version, problem))
    return out


def clear_caches() -> None:
    """Forget what was found and loaded, so that plugins installed since are found (tests)."""
    from datareach.report import formats
    from datareach.schema import entrypoints
    from datareach.sources import registry

    entrypoints.clear_caches()
    registry.plugin_sources.cache_clear()
    formats._plugins.cache_clear()
