"""Sensor logs: finding Zeek and Suricata files, and what each one is.

An organisation's evidence is not a capture but the logs its sensors write: Zeek's ``conn.log``,
``ssl.log``, ``dns.log``... (tab-separated with a ``#fields`` header, or JSON lines), rotated
into hourly gzip files in a directory per day, and Suricata's EVE JSON. :func:`discover` walks
the inputs (files or directories), recognises each file by its content (never by its name
alone), and returns a :class:`LogSet`: one :class:`LogFile` per file, with the header a TSV
file declares. The rows themselves are read by an engine (DuckDB, Spark) with the SQL of
:mod:`datareach.sources.zeek` and :mod:`datareach.sources.eve`: a day of logs is larger than
memory, and no Python loop touches a row.

``since``/``until`` prune whole files whose rotated name (``conn.00:00:00-01:00:00.log.gz``
under a ``YYYY-MM-DD`` directory, Zeek's archive layout) puts them outside the window; the
engines filter the rows themselves in every case (a file's ``#open``/``#close`` say when Zeek
wrote it, not when its rows happened: Zeek reading a capture writes today's date).
"""

from __future__ import annotations

import calendar
import gzip
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LOG_KINDS", "LogFile", "LogSet", "discover", "is_log", "read_head", "sniff_log"]

#: The Zeek logs datareach reads (others in a directory are listed as skipped).
LOG_KINDS = ("conn", "ssl", "quic", "dns", "http", "x509", "dhcp", "files")
#: How many bytes of a file are looked at to recognise it.
HEAD = 64 * 1024


@dataclass(frozen=True)
class LogFile:
    """One log file, recognised."""

    path: str
    #: conn, ssl, quic, dns, http, x509, dhcp, files (Zeek), or eve (Suricata)
    kind: str
    #: "tsv" (Zeek's ASCII writer), "json" (Zeek's JSON lines) or "eve" (Suricata)
    form: str
    input_index: int
    #: "gzip" or None
    compression: str | None = None
    #: TSV: the ``#fields`` and ``#types`` of the header; JSON: empty (the reader declares them)
    fields: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    separator: str = "\t"
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    #: TSV: the lines of the header before the first row (the rows after it that start with "#",
    #: ``#close``, are no rows)
    header_lines: int = 0
    #: The span the file covers, where its header or name says (epoch seconds)
    opened: float | None = None
    closed: float | None = None
    size: int = 0


@dataclass
class LogSet:
    """The log files of an audit, by kind."""

    files: list[LogFile] = field(default_factory=list)
    #: (path, why) of files that were looked at and not read
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: (input, problem) of inputs that could not be read at all
    errors: list[tuple[str, str]] = field(default_factory=list)

    def of(self, kind: str) -> list[LogFile]:
        return [f for f in self.files if f.kind == kind]

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


def read_head(path: Path) -> tuple[bytes, str | None]:
    with open(path, "rb") as fh:
        raw = fh.read(HEAD)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as gz:
                return gz.read(HEAD), "gzip"
        except (OSError, EOFError):
            return b"", "gzip"
    return raw, None


_ZEEK_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)")
#: Keys that tell a Zeek JSON log's kind when it has no ``_path``
_JSON_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("files", ("fuid",)),
    ("x509", ("certificate.subject",)),
    ("x509", ("fingerprint", "certificate.version")),
    ("dhcp", ("assigned_addr",)),
    ("dhcp", ("msg_types",)),
    ("dns", ("query", "qtype")),
    ("dns", ("trans_id", "rcode")),
    ("http", ("method", "uri")),
    ("http", ("trans_depth",)),
    ("quic", ("client_protocol",)),
    ("quic", ("server_name", "version", "client_initial_dcid")),
    ("ssl", ("server_name", "cipher")),
    ("ssl", ("version", "resumed")),
    ("ssl", ("established", "server_name")),
    ("conn", ("conn_state",)),
    ("conn", ("proto", "orig_bytes")),
)


def _zeek_time(text: str) -> float | None:
    m = _ZEEK_TIME.search(text)
    if not m:
        return None
    return float(calendar.timegm((*tuple(int(g) for g in m.groups()), 0, 0, 0)))


def _unescape(value: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


def sniff_log(head: bytes, name: str = "") -> dict[str, object] | None:
    """What a file starting with ``head`` is: None when it is no log datareach reads, else the
    keyword arguments of its :class:`LogFile` (kind, form, header)."""
    text = head.decode("utf-8", "replace")
    lines = text.split("\n")
    # (btest's baselines start with "###" lines; real logs do not)
    skipped = 0
    while lines and lines[0].startswith("###"):
        lines = lines[1:]
        skipped += 1
    if lines and lines[0].startswith("#separator "):
        sep = _unescape(lines[0][len("#separator "):].strip()) or "\t"
        meta: dict[str, str] = {}
        fields: tuple[str, ...] = ()
        types: tuple[str, ...] = ()
        header = skipped + 1
        for line in lines[1:]:
            if not line.startswith("#"):
                break
            header += 1
            key, _, value = line[1:].partition(sep)
            if key == "fields":
                fields = tuple(value.rstrip("\r").split(sep))
            elif key == "types":
                types = tuple(value.rstrip("\r").split(sep))
            else:
                meta[key] = value.rstrip("\r")
            if key.startswith("open ") or key.startswith("close "):  # (a masked "#open XXXX" line)
                meta[key.split(" ")[0]] = key.split(" ", 1)[1]
        kind = meta.get("path", "")
        if not fields or len(fields) != len(types):
            return None
        return {"kind": kind, "form": "tsv", "fields": fields, "types": types, "separator": sep,
                "set_separator": _unescape(meta.get("set_separator", ",")),
                "empty_field": meta.get("empty_field", "(empty)"), "unset_field": meta.get("unset_field", "-"),
                "opened": _zeek_time(meta.get("open", "")), "closed": _zeek_time(meta.get("close", "")),
                "header_lines": header}
    obj = None
    candidates = [ln for ln in lines if ln.strip()][:8]
    for line in candidates:  # (the first line may be broken: look further)
        if not line.lstrip().startswith("{"):
            return None
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        break
    if obj is None and candidates and len(candidates) > 1:
        return {"kind": "", "form": "broken-json"}
    if not isinstance(obj, dict):
        return None
    if "event_type" in obj and ("timestamp" in obj or "src_ip" in obj):
        return {"kind": "eve", "form": "eve"}
    path = obj.get("_path")
    if isinstance(path, str) and path:
        return {"kind": path, "form": "json"}
    if "uid" in obj or "fuid" in obj or "fingerprint" in obj or "assigned_addr" in obj or "id.orig_h" in obj:
        for kind, keys in _JSON_KINDS:
            if all(k in obj for k in keys):
                return {"kind": kind, "form": "json"}
        stem = os.path.basename(name).split(".", 1)[0]
        return {"kind": stem if stem.isidentifier() else "", "form": "json"}
    return None


def is_log(head: bytes) -> bool:
    """Whether ``head`` starts a Zeek or Suricata log (for format detection)."""
    return sniff_log(head) is not None


def _walk(path: Path) -> Iterable[Path]:
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                yield Path(root) / name
    else:
        yield path


_ROTATED = re.compile(r"\.(\d\d):(\d\d):(\d\d)-(\d\d):(\d\d):(\d\d)\.log")
_DAY = re.compile(r"(\d{4})-(\d\d)-(\d\d)")


def _span_from_name(path: Path) -> tuple[float | None, float | None]:
    """A rotated Zeek file's span from its name and its day directory's."""
    m = _ROTATED.search(path.name)
    d = _DAY.search(path.parent.name) or _DAY.search(path.name)
    if not m or not d:
        return None, None
    day = calendar.timegm((int(d.group(1)), int(d.group(2)), int(d.group(3)), 0, 0, 0, 0, 0, 0))
    h1, m1, s1, h2, m2, s2 = (int(g) for g in m.groups())
    start, end = day + h1 * 3600 + m1 * 60 + s1, day + h2 * 3600 + m2 * 60 + s2
    return float(start), float(end if end > start else end + 86400)


def discover(inputs: Sequence[str | os.PathLike[str]], since: float | None = None,
             until: float | None = None) -> LogSet:
    """The log files under ``inputs`` (files or directories), each with its input's index,
    recognised by content; files wholly outside [since, until) are skipped."""
    out = LogSet()
    for index, given in enumerate(inputs):
        root = Path(given)
        if not root.exists():
            out.errors.append((str(given), "no such file or directory"))
            continue
        found = 0
        for path in _walk(root):
            try:
                head, compression = read_head(path)
                size = path.stat().st_size
            except OSError as exc:
                out.skipped.append((str(path), f"cannot be read: {exc.strerror or exc}"))
                continue
            info = sniff_log(head, path.name)
            if info is None:
                if path.is_file() and size:
                    out.skipped.append((str(path), "not a Zeek or Suricata log"))
                continue
            kind = str(info["kind"])
            if info["form"] == "broken-json":
                out.skipped.append((str(path), "its lines start as JSON objects but none of the first ones parses"))
                continue
            if info["form"] != "eve" and kind not in LOG_KINDS:
                out.skipped.append((str(path), f"Zeek {kind or 'unknown'}.log: not used"))
                continue
            f = LogFile(path=str(path), input_index=index, compression=compression, size=size,
                        **info)  # type: ignore[arg-type]
            # (a rotated file's name says when it was written; its #open/#close do not bound its
            # rows: Zeek reading a capture writes them at the time it runs)
            start, end = _span_from_name(path)
            if (since is not None and end is not None and end <= since) or (
                    until is not None and start is not None and start >= until):
                out.skipped.append((str(path), "outside --since/--until"))
                continue
            out.files.append(f)
            found += 1
        if not found and not any(p.startswith(str(root)) for p, _ in out.skipped):
            out.errors.append((str(given), "no Zeek or Suricata log found"))
    return out
