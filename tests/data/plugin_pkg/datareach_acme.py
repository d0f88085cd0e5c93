"""A datareach plugin: ACME flow logs (a source), ACME user ids (a detector), CSV (a report).

An ACME flow log is a text file whose first line is ``#acme-flowlog v1``; then, one per line:

* a connection: ``ts client_ip server_ip server_port host bytes_out bytes_in``;
* an HTTP request on the connection above it: ``> ts method url [body]``;
* ``#`` comments and blank lines.

A line ``!boom`` makes the reader raise, ``!bad-port`` yield a connection whose client port is
text, and ``!again`` the last connection a second time (the tests' way of checking that a
plugin's failures and mistakes are reported, not fatal to the audit).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from datareach.plugins import DetectContext, Finding, Layer, categories, redact
from datareach.schema import Connection, Exchange, InputError, ProgressCallback, Record, connection_uid

MAGIC = b"#acme-flowlog v1"


class AcmeFlowLog:
    """The ``acme-flowlog`` source."""

    name = "acme-flowlog"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(MAGIC + b"\n") or head.rstrip(b"\r\n") == MAGIC

    def read(self, path: Path, input_index: int, progress: ProgressCallback | None = None,
             **options: Any) -> Iterator[Record]:
        conn: Connection | None = None
        n = done = 0
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                done += len(raw)
                line = raw.decode("utf-8", "replace").strip()
                if lineno == 1 or not line or line.startswith("#"):
                    continue
                if line == "!boom":
                    raise RuntimeError(f"line {lineno}: boom")
                if line == "!bad-port" and conn is not None:
                    yield Connection(uid=connection_uid(input_index, n), transport="tcp", client_ip="10.0.0.1",
                                     client_port="http", server_ip="192.0.2.1", server_port=80,  # type: ignore[arg-type]
                                     first_seen=0.0, last_seen=0.0, input_index=input_index)
                    continue
                if line == "!again" and conn is not None:
                    yield conn
                    continue
                if line.startswith(">"):
                    parts = line[1:].split(maxsplit=3)
                    if conn is None or len(parts) < 3:
                        yield InputError(f"line {lineno}: a request needs a connection line above it and "
                                         "'> ts method url'")
                        continue
                    ts, method, url = float(parts[0]), parts[1], parts[2]
                    split = urlsplit(url)
                    yield Exchange(
                        ts=ts, scheme=split.scheme, method=method, host=(split.hostname or conn.http_host or ""),
                        url=url, target=split.path + (f"?{split.query}" if split.query else ""),
                        http_version="HTTP/1.1", request_body=parts[3].encode() if len(parts) > 3 else b"",
                        server_ip=conn.server_ip, server_port=conn.server_port, client_ip=conn.client_ip,
                        input_index=input_index, uid=conn.uid,
                    )
                    continue
                fields = line.split()
                if len(fields) != 7:
                    yield InputError(f"line {lineno}: expected 7 fields, found {len(fields)}")
                    continue
                ts_s, client, server, port, host, out_b, in_b = fields
                ts = float(ts_s)
                conn = Connection(
                    uid=connection_uid(input_index, n), transport="tcp", client_ip=client, client_port=0,
                    server_ip=server, server_port=int(port), first_seen=ts, last_seen=ts,
                    bytes_out=int(out_b), bytes_in=int(in_b), packets_out=1, packets_in=1,
                    http_host=host, protocol="tls" if port == "443" else "http", input_index=input_index,
                )
                n += 1
                yield conn
                if progress is not None:
                    progress(done)


_USER_ID = re.compile(rb"ACME-[0-9A-Z]{4}-[0-9A-Z]{4}")


class AcmeUserIds:
    """The ``acme-user-id`` detector: ACME user ids anywhere in a request (URL, headers, body,
    and whatever datareach decoded out of them: base64, JSON, gzip...)."""

    name = "acme-user-id"

    def __init__(self, context: DetectContext) -> None:
        self.context = context

    def detect(self, ex: Exchange, layers: Sequence[Layer]) -> Iterable[Finding]:
        seen: set[tuple[str, str]] = set()
        for layer in layers:
            for m in _USER_ID.finditer(layer.value):
                value = m.group().decode()
                if (layer.location, value) in seen:
                    continue
                seen.add((layer.location, value))
                yield Finding(
                    data_type="acme_user_id", source="pattern",
                    categories=categories("acme_user_id", cleartext=ex.scheme == "http"),
                    encoding=list(layer.encoding), location=layer.location,
                    value=value, value_redacted=redact(value), confidence=0.9,
                )


class DestinationsCsv:
    """The ``acme-csv`` report: host, country, bytes out and in of each destination."""

    name = "acme-csv"

    def render(self, doc: dict[str, Any]) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["host", "country", "bytes_out", "bytes_in"])
        for d in doc["destinations"]:
            w.writerow([d["host"], d.get("country") or "", d.get("bytes_out", 0), d.get("bytes_in", 0)])
        return out.getvalue()
