"""mitmproxy flows as plain JSON records: runs inside *mitmproxy's* Python, imports no datareach.

mitmproxy pins its dependencies tightly (Brotli <= 1.1, cryptography < 44.1, aioquic <= 1.2 for
11.0.2) and those pins exclude versions datareach needs (brotli >= 1.2 to bound decompression),
so the two live in separate environments. This file is the bridge between them. It is used in
two ways:

* as a script, ``MITM_PYTHON mitm_bridge.py read FLOWFILE``: reads a flow dump with mitmproxy's
  own :class:`mitmproxy.io.FlowReader` (which migrates dumps of older versions through
  :mod:`mitmproxy.io.compat`) and writes one JSON object per line on standard output, ending
  with ``{"kind": "end", ...}`` or, when the dump is truncated, corrupt or in a flow format
  version this mitmproxy cannot read, ``{"kind": "error", "flows": N, "offset": BYTES,
  "message": ...}`` (with ``flow_version``, ``reads_from`` and ``reads_up_to`` when the flow
  it stopped at could be read as a dictionary: :func:`_version_problem`);
* imported by the addon (:mod:`datareach.mitm.addon`), which turns live flows into the same
  records with :func:`flow_record`.

datareach's side (:mod:`datareach.sources.mitm`) turns a record into model records. Only the
standard library and mitmproxy are imported here, and attribute access is defensive
(``getattr``) so that the mitmproxy versions of the last years (7.0 and later) can run it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from typing import IO, Any

#: Bodies are kept up to this size (as datareach's HAR reader does); longer ones are cut.
MAX_BODY = 16 * 1024 * 1024
#: Record layout version (datareach checks it).
RECORD_VERSION = 1


def shebang_python(script: str) -> str | None:
    """The Python a console script (``mitmdump``, ``datareach``) runs with, from its ``#!`` line."""
    try:
        with open(script, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].strip().split()
    if not parts:
        return None
    python = parts[0].decode("utf-8", "replace")
    if python.endswith("/env") and len(parts) > 1:
        return shutil.which(parts[1].decode("utf-8", "replace"))
    return python if os.path.isfile(python) else None


def _addr(value: Any) -> tuple[str | None, int | None]:
    if isinstance(value, tuple | list) and len(value) >= 2:
        host, port = value[0], value[1]
        return (str(host) if host is not None else None, int(port) if isinstance(port, int) else None)
    return None, None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _headers(headers: Any) -> list[list[str]]:
    fields = getattr(headers, "fields", None) or ()
    out: list[list[str]] = []
    for item in fields:
        try:
            name, value = item
            out.append([bytes(name).decode("latin-1"), bytes(value).decode("latin-1")])
        except (TypeError, ValueError):
            continue
    return out


def _head_size(first_line: str, headers: list[list[str]]) -> int:
    return len(first_line) + 2 + sum(len(k) + len(v) + 4 for k, v in headers) + 2


def _body(message: Any) -> tuple[bytes, int]:
    raw = getattr(message, "raw_content", None)
    if not isinstance(raw, bytes):
        return b"", 0
    return raw[:MAX_BODY], len(raw)


def _conns(flow: Any) -> dict[str, Any]:
    server = getattr(flow, "server_conn", None)
    client = getattr(flow, "client_conn", None)
    s_ip, s_port = _addr(getattr(server, "peername", None))
    if s_ip is None:  # mitmproxy < 7
        s_ip, _ = _addr(getattr(server, "ip_address", None))
    a_host, a_port = _addr(getattr(server, "address", None))
    c_ip, c_port = _addr(getattr(client, "peername", None) or getattr(client, "address", None))
    alpn = getattr(server, "alpn", None) or getattr(client, "alpn", None)
    tls = bool(getattr(server, "tls_established", False) or getattr(server, "tls", False))
    return {
        "server_id": _text(getattr(server, "id", None)),
        "server_ip": s_ip,
        "server_port": s_port if s_port is not None else a_port,
        "server_address": a_host,
        "sni": _text(getattr(server, "sni", None)) or _text(getattr(client, "sni", None)),
        "alpn": _text(alpn),
        "tls": tls,
        "client_ip": c_ip,
        "client_port": c_port,
        "server_ts": getattr(server, "timestamp_start", None),
        "server_ts_end": getattr(server, "timestamp_end", None),
    }


def _http(flow: Any) -> dict[str, Any]:
    req = flow.request
    headers = _headers(req.headers)
    body, body_size = _body(req)
    method = _text(req.method) or ""
    path = _text(getattr(req, "path", "")) or ""
    version = _text(getattr(req, "http_version", "")) or ""
    try:
        pretty_host = req.pretty_host
    except Exception:  # a Host header mitmproxy cannot decode
        pretty_host = None
    rec: dict[str, Any] = {
        "kind": "http",
        "ts": getattr(req, "timestamp_start", None) or getattr(flow, "timestamp_created", None),
        "ts_end": getattr(req, "timestamp_end", None),
        "scheme": _text(getattr(req, "scheme", "")) or "",
        "method": method,
        "host": _text(getattr(req, "host", "")) or "",
        "pretty_host": _text(pretty_host),
        "port": getattr(req, "port", None),
        "path": path,
        "http_version": version,
        "headers": headers,
        "body": base64.b64encode(body).decode("ascii"),
        "body_size": body_size,
        "request_bytes": _head_size(f"{method} {path} {version}", headers) + body_size,
        "status": None,
        "response_bytes": 0,
        "response_size": None,
        "ts_last": getattr(req, "timestamp_end", None),
        **_conns(flow),
    }
    resp = getattr(flow, "response", None)
    if resp is not None:
        rh = _headers(resp.headers)
        _, rsize = _body(resp)
        rec["status"] = getattr(resp, "status_code", None)
        rec["response_size"] = rsize
        rec["response_bytes"] = _head_size(f"{version} {rec['status']}", rh) + rsize
        rec["ts_last"] = getattr(resp, "timestamp_end", None) or rec["ts_last"]
    err = getattr(flow, "error", None)
    rec["error"] = _text(getattr(err, "msg", None)) if err is not None else None
    ws = getattr(flow, "websocket", None)
    if ws is not None:
        out, inn, n_out, n_in, last = _message_totals(ws)
        if last is not None and (rec["ts_last"] is None or last > rec["ts_last"]):
            rec["ts_last"] = last
        rec["websocket"] = {"bytes_out": out, "bytes_in": inn, "messages_out": n_out, "messages_in": n_in}
    return rec


def _message_totals(holder: Any) -> tuple[int, int, int, int, float | None]:
    """Bytes and messages each way, and the last message's time, of a WebSocket/TCP/UDP flow."""
    out = inn = n_out = n_in = 0
    last: float | None = None
    for m in getattr(holder, "messages", None) or ():
        size = len(getattr(m, "content", b"") or b"")
        if getattr(m, "from_client", False):
            out, n_out = out + size, n_out + 1
        else:
            inn, n_in = inn + size, n_in + 1
        ts = getattr(m, "timestamp", None)
        if isinstance(ts, int | float):
            last = ts if last is None else max(last, ts)
    return out, inn, n_out, n_in, last


def _stream(flow: Any, kind: str) -> dict[str, Any]:
    out, inn, n_out, n_in, last = _message_totals(flow)
    conns = _conns(flow)
    return {
        "kind": kind, "ts": conns["server_ts"] or getattr(flow, "timestamp_created", None), "ts_last": last,
        "bytes_out": out, "bytes_in": inn, "packets_out": n_out, "packets_in": n_in, **conns,
    }


def _dns(flow: Any) -> dict[str, Any]:
    rec = _stream(flow, "dns")
    req = getattr(flow, "request", None)
    resp = getattr(flow, "response", None)
    rec["ts"] = getattr(req, "timestamp", None) or rec["ts"]
    rec["questions"] = [_text(getattr(q, "name", None)) for q in getattr(req, "questions", None) or ()]
    answers: list[list[Any]] = []
    for a in getattr(resp, "answers", None) or ():
        rtype = getattr(a, "type", None)
        data = getattr(a, "data", b"")
        try:
            if rtype == 1 and len(data) == 4:
                answers.append([_text(a.name), "A", str(a.ipv4_address), getattr(a, "ttl", 0)])
            elif rtype == 28 and len(data) == 16:
                answers.append([_text(a.name), "AAAA", str(a.ipv6_address), getattr(a, "ttl", 0)])
            elif rtype == 5:
                answers.append([_text(a.name), "CNAME", a.domain_name, getattr(a, "ttl", 0)])
        except Exception:  # a malformed record: skip it
            continue
    rec["answers"] = answers
    for msg, key in ((req, "bytes_out"), (resp, "bytes_in")):
        packed = getattr(msg, "packed", None) if msg is not None else None
        try:
            rec[key] = len(packed) if isinstance(packed, bytes) else 0
        except Exception:
            rec[key] = 0
    rec["packets_out"] = 1 if req is not None else 0
    rec["packets_in"] = 1 if resp is not None else 0
    rec["ts_last"] = getattr(resp, "timestamp", None) or rec["ts"]
    return rec


def flow_record(flow: Any) -> dict[str, Any]:
    """One mitmproxy flow as a JSON-ready record (``kind``: http, tcp, udp, dns or other)."""
    kind = getattr(flow, "type", None) or type(flow).__name__.lower()
    if kind == "http":
        rec = _http(flow)
    elif kind in ("tcp", "udp"):
        rec = _stream(flow, kind)
    elif kind == "dns":
        rec = _dns(flow)
    else:
        rec = {"kind": "other", "type": str(kind)[:40]}
    rec["v"] = RECORD_VERSION
    rec["id"] = _text(getattr(flow, "id", None))
    return rec


class _Counting:
    """File wrapper that knows its position (FlowReader reads through it)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.pos += len(data)
        return data

    def readline(self, n: int = -1) -> bytes:
        data = self.raw.readline(n)
        self.pos += len(data)
        return data

    def peek(self, n: int) -> bytes:
        peek = getattr(self.raw, "peek", None)
        return peek(n)[:n] if peek is not None else b""

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = self.raw.seek(pos, whence)
        return self.pos


def _version_problem(path: str, offset: int, current: Any) -> dict[str, Any]:
    """When the flow at ``offset`` is a dictionary, its flow format version (``flow_version``: an
    int, a list such as [0, 10] for the mitmproxy 0.x releases, None when it has none) and the
    versions this mitmproxy reads (``reads_from``: the oldest its migrations start from, and
    ``reads_up_to``); empty when that flow cannot be read at all (a truncated or corrupt file)."""
    try:
        from mitmproxy.io import compat, tnetstring

        with open(path, "rb") as f:
            f.seek(offset)
            data = tnetstring.load(f)
        if not isinstance(data, dict):
            return {}
        version = data.get(b"version", data.get("version"))
        if isinstance(version, list | tuple):
            version = [v if isinstance(v, int) else str(v)[:20] for v in list(version)[:3]]
        elif version is not None and not isinstance(version, int):
            version = str(version)[:40]
        tuples = [k for k in getattr(compat, "converters", {}) if isinstance(k, tuple)]
        return {"flow_version": version, "reads_from": list(min(tuples)) if tuples else None,
                "reads_up_to": current}
    except Exception:
        return {}


def read_file(path: str, out: IO[str]) -> int:
    """Write the records of a flow dump to ``out``, one JSON object per line."""
    from mitmproxy import io as mio

    try:
        from mitmproxy.version import FLOW_FORMAT_VERSION as fmt_version
        from mitmproxy.version import VERSION as mitm_version
    except ImportError:  # pragma: no cover - very old mitmproxy
        fmt_version, mitm_version = None, "unknown"
    out.write(json.dumps({"kind": "start", "mitmproxy": mitm_version, "format": fmt_version}) + "\n")
    n = 0
    with open(path, "rb") as raw:
        counted = _Counting(raw)
        start = 0
        try:
            for flow in mio.FlowReader(counted).stream():
                n += 1
                try:
                    rec = flow_record(flow)
                except Exception as exc:  # a flow our code cannot take apart: say so, go on
                    rec = {"kind": "other", "type": f"unreadable ({type(exc).__name__}: {exc})"[:200]}
                rec["n"] = n
                rec["offset"] = start
                rec["pos"] = counted.pos
                out.write(json.dumps(rec) + "\n")
                start = counted.pos
        except Exception as exc:
            cause = exc.__cause__ or exc.__context__
            detail = str(exc) or type(exc).__name__
            if cause is not None and str(cause) and str(cause) not in detail:
                detail += f" ({str(cause)[:200]})"
            error: dict[str, Any] = {"kind": "error", "flows": n, "offset": start, "message": detail[:400]}
            error.update(_version_problem(path, start, fmt_version))
            out.write(json.dumps(error) + "\n")
            return 0
    out.write(json.dumps({"kind": "end", "flows": n, "pos": counted.pos}) + "\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "read":
        return read_file(argv[1], sys.stdout)
    if argv == ["version"]:
        from mitmproxy.version import VERSION

        print(VERSION)
        return 0
    print("usage: mitm_bridge.py read FLOWFILE | version", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
