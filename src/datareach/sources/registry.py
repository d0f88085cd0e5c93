"""The input formats: the built-in sources and those plugins add (entry-point group
``datareach.sources``).

A :class:`Source` recognises its files from their first bytes (:meth:`Source.sniff`) and reads
one into the records of :mod:`datareach.schema` (:meth:`Source.read`). Which source reads a
file (:func:`sniff`):

1. the built-ins, in this order: ``pcap``, ``pcapng``, ``har``, ``mitmproxy`` -- so a plugin
   can never change how those files are read;
2. then the plugins' sources, sorted by distribution and entry-point name; the first whose
   ``sniff`` says yes reads the file. The plugins are only looked up when no built-in
   recognised the file, so audits of the built-in formats never read the plugin metadata.

A plugin that fails to import, whose ``sniff`` raises, or whose ``read`` raises or yields
something that is not a record never stops an audit: the problem is logged (once per plugin),
and a failure while reading ends that input with a fatal :class:`~datareach.schema.InputError`
naming the plugin, after the records it did yield.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from datareach.schema import (
    Connection,
    ConnectionBatch,
    DnsAnswer,
    Exchange,
    InputError,
    ProgressCallback,
    Record,
    arrow_schema,
    fields,
    row_problem,
)

if TYPE_CHECKING:
    from datareach.schema.entrypoints import EntryPoint

__all__ = ["BUILTIN_SOURCES", "Source", "describe", "find", "guarded", "is_builtin", "plugin_sources", "sniff"]

#: The record types a source may yield.
RECORD_TYPES = (Connection, ConnectionBatch, DnsAnswer, Exchange, InputError)


class Source(Protocol):
    """An input format.

    ``name`` is the format's name: what the JSON report's ``inputs[].format`` says. A plugin's
    source is registered under the same name (the entry point's name is the one used).
    """

    name: str

    def sniff(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` (its first 64 KiB, or all of it if shorter) is
        in this format. Decide from the content only; be quick and strict."""
        ...

    def read(self, path: Path, input_index: int, progress: ProgressCallback | None = None,
             **options: Any) -> Iterator[Record]:
        """Yield the records of the file: :class:`~datareach.schema.Connection` (or
        :class:`~datareach.schema.ConnectionBatch`), :class:`~datareach.schema.DnsAnswer`,
        :class:`~datareach.schema.Exchange` and :class:`~datareach.schema.InputError`, each
        with ``input_index``. Call ``progress(bytes_read)`` now and then for a progress bar.

        ``options`` are hints a source may use or ignore: ``keep_bodies`` (bool: whether request
        bodies are wanted), ``on_request`` (called with every Exchange where it is read; what
        a source does not call it on, the caller does), ``while_waiting`` (called once while
        parallel readers run), ``keys`` (a :class:`~datareach.dissect.keylog.KeyStore` of the
        audit's TLS key logs, or None). Accept ``**options`` even if you use none of them.
        """
        ...


# -- the built-ins ------------------------------------------------------------------------------


class _Capture:
    """pcap or pcapng (one object per format, both read by :mod:`datareach.sources.capture`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def sniff(self, head: bytes) -> bool:
        from datareach.sources import pcap

        return pcap.sniff(head) == self.name

    def read(self, path: Path, input_index: int, progress: ProgressCallback | None = None,
             **options: Any) -> Iterator[Record]:
        from datareach.sources import capture

        return capture.read_capture(path, input_index, progress, **options)


class _Har:
    name = "har"

    def sniff(self, head: bytes) -> bool:
        from datareach.sources import har

        return har.looks_like_har(head)

    def read(self, path: Path, input_index: int, progress: ProgressCallback | None = None,
             **options: Any) -> Iterator[Record]:
        from datareach.sources import har

        return har.read_har(path, input_index, progress, compression=options.get("compression") or "")


class _Mitmproxy:
    name = "mitmproxy"

    def sniff(self, head: bytes) -> bool:
        from datareach.sources import mitm

        return mitm.looks_like_flows(head)

    def read(self, path: Path, input_index: int, progress: ProgressCallback | None = None,
             **options: Any) -> Iterator[Record]:
        from datareach.sources import mitm

        return mitm.read_flows(path, input_index, progress)


PCAP: Source = _Capture("pcap")
PCAPNG: Source = _Capture("pcapng")
HAR: Source = _Har()
MITMPROXY: Source = _Mitmproxy()
#: In the order they are tried. pyproject.toml declares the same names (a test checks it).
BUILTIN_SOURCES: tuple[Source, ...] = (PCAP, PCAPNG, HAR, MITMPROXY)
_BUILTIN = {s.name: s for s in BUILTIN_SOURCES}


# -- the plugins --------------------------------------------------------------------------------


@functools.cache
def plugin_sources() -> tuple[tuple[str, Source, str], ...]:
    """Every plugin source that loads: ``(name, source, description)``, in the order they are
    tried. A plugin that fails to load, or whose name a built-in (or an earlier plugin) has, is
    logged and left out."""
    from datareach.schema import entrypoints

    out: list[tuple[str, Source, str]] = []
    taken = set(_BUILTIN)
    for ep in entrypoints.unclaimed(entrypoints.SOURCES, taken, "source"):
        source = _load(ep)
        if source is None:
            continue
        taken.add(ep.name)
        out.append((ep.name, source, ep.describe()))
    return tuple(out)


def _load(ep: EntryPoint) -> Source | None:
    from datareach.schema import entrypoints

    try:
        obj = ep.load()
        if isinstance(obj, type):
            obj = obj()
        missing = [a for a in ("sniff", "read") if not callable(getattr(obj, a, None))]
        if missing:
            raise entrypoints.PluginError(f"{ep.describe()} is not a source: it has no {' or '.join(missing)} method")
    except Exception as exc:
        message = str(exc) if isinstance(exc, entrypoints.PluginError) else \
            f"{ep.describe()} cannot be set up: {type(exc).__name__}: {exc}"
        entrypoints.warn(f"{ep.group}:{ep.name}:{ep.dist}:load", message)
        return None
    source: Source = obj
    return source


def is_builtin(source: Source) -> bool:
    return any(source is s for s in BUILTIN_SOURCES)


def find(name: str) -> Source | None:
    """The source called ``name``: a built-in, else a plugin's (None when there is none)."""
    builtin = _BUILTIN.get(name)
    if builtin is not None:
        return builtin
    for plugin_name, source, _ in plugin_sources():
        if plugin_name == name:
            return source
    return None


def describe(name: str) -> str:
    """How messages name the source: ``the built-in har source`` or the plugin's description."""
    if name in _BUILTIN:
        return f"the built-in {name} source"
    return next((d for n, _, d in plugin_sources() if n == name), f"source {name!r}")


def sniff(head: bytes) -> tuple[str | None, list[str]]:
    """The name of the first source that recognises a file starting with ``head`` (None when
    none does), and the problems of the plugins whose ``sniff`` raised on the way."""
    for source in BUILTIN_SOURCES:
        if source.sniff(head):
            return source.name, []
    problems: list[str] = []
    for name, source, what in plugin_sources():
        try:
            if source.sniff(head):
                return name, problems
        except Exception as exc:  # a plugin's bug: that plugin does not recognise the file
            problem = f"{what} failed to check the file: {type(exc).__name__}: {exc}"
            problems.append(problem)
            from datareach.schema import entrypoints

            entrypoints.warn(f"{entrypoints.SOURCES}:{name}:sniff", problem)
    return None, problems


def guarded(name: str, records: Iterator[Record]) -> Iterator[Record]:
    """A plugin source's records, with whatever goes wrong made into a fatal InputError that
    names the plugin (after the records it did yield): an exception, something that is not a
    record, or a record whose values do not fit its declaration."""
    uids: set[str] = set()
    while True:
        try:
            rec = next(records)
        except StopIteration:
            return
        except OSError:
            raise  # reported as a read error of the file, as for the built-ins
        except Exception as exc:
            yield InputError(f"{describe(name)} failed while reading: {type(exc).__name__}: {exc}", fatal=True)
            return
        if not isinstance(rec, RECORD_TYPES):
            yield InputError(f"{describe(name)} yielded a {type(rec).__name__}, which is not a record "
                             "(Connection, ConnectionBatch, DnsAnswer, Exchange or InputError)", fatal=True)
            return
        problem = _record_problem(rec, uids)
        if problem is not None:
            yield InputError(f"{describe(name)} yielded a bad record: {problem}", fatal=True)
            return
        yield rec


_UID = fields(Connection).index("uid")


def _record_problem(rec: Record, uids: set[str]) -> str | None:
    """What is wrong with a plugin's record (the types its declaration gives, connection uids
    unique in the input), or None: a bad value would otherwise fail later, far from its source."""
    kind: type = Connection if isinstance(rec, ConnectionBatch) else type(rec)
    if isinstance(rec, ConnectionBatch):
        rows: list[tuple[Any, ...]] = rec.rows if isinstance(rec.rows, list) else []
        if not isinstance(rec.rows, list) or not all(isinstance(r, tuple) for r in rows):
            return "a ConnectionBatch's rows must be a list of tuples"
        if rec.table is not None:
            import pyarrow as pa

            if not isinstance(rec.table, pa.Table) or not rec.table.schema.equals(arrow_schema(Connection)):
                return "a ConnectionBatch's table must be an Arrow table of arrow_schema(Connection)"
            rows = rec.row_tuples()
    else:
        rows = [tuple(getattr(rec, f) for f in fields(kind))]
    for row in rows:
        problem = row_problem(kind, row)
        if problem is not None:
            return problem
        if kind is Connection:
            uid = row[_UID]
            if not isinstance(uid, str) or not uid:
                return "a Connection without a uid"
            if uid in uids:
                return f"two connections with the uid {uid!r}"
            uids.add(uid)
    return None
