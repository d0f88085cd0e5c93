"""mitmproxy flow dumps (``mitmproxy -w`` / ``mitmdump -w``), read with mitmproxy's own reader.

mitmproxy is not a dependency of datareach: every mitmproxy release pins its dependencies to
versions datareach cannot use (Brotli <= 1.1.0, where datareach needs >= 1.2 to bound
decompression; cryptography < 44.1; aioquic <= 1.2), so it lives in an environment of its own,
as most people install it anyway (pipx, a venv, Homebrew, Debian). :func:`find_mitmproxy_python`
finds that environment's Python; the dump is read there by the bridge script
``datareach/sources/mitm_bridge.py`` (mitmproxy's :class:`~mitmproxy.io.FlowReader`, which migrates
dumps of older mitmproxy versions) and comes back as one JSON record per flow, which
:func:`records_from_flow` turns into :mod:`datareach.schema` records. The live addon
(:mod:`datareach.mitm`) makes the same records from flows as they complete.

What each kind of flow gives:

* HTTP flows (HTTP/1, HTTP/2 and HTTP/3 alike) -- an :class:`Exchange` per request (the
  request's own Host / ``:authority`` as host, headers and raw body, which the detectors
  decode) and one :class:`Connection` per mitmproxy server connection, with the request and
  response sizes (head + body) as bytes out and in; WebSocket messages are counted into the
  connection's bytes and packets (their content is not searched);
* TCP and UDP flows -- a :class:`Connection` with the messages' sizes;
* DNS flows (mitmproxy >= 10 DNS mode) -- a :class:`DnsAnswer` per A/AAAA answer, with the CNAME
  chain, and the look-up as a UDP connection;
* any other kind -- skipped with a (non-fatal) :class:`InputError` naming the flow.

A truncated or corrupt dump keeps every flow before the damage and ends with a fatal
:class:`InputError` giving the number of flows read and the byte offset where the bad flow
starts.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datareach.schema import (
    Connection,
    DnsAnswer,
    Exchange,
    InputError,
    ProgressCallback,
    Record,
    Transport,
    connection_uid,
)
from datareach.sources.mitm_bridge import shebang_python

#: The bridge script, run by mitmproxy's Python.
FLOWCONV = Path(__file__).resolve().parent / "mitm_bridge.py"
#: Environment variable naming a Python interpreter that can import mitmproxy.
ENV_PYTHON = "DATAREACH_MITMPROXY_PYTHON"
#: The mitmproxy versions this was tested with (flow format versions 11 to 21 and older dumps
#: they migrate). Shown in error messages.
TESTED_VERSIONS = "7.0 to 11.0"
INSTALL_HINT = (
    "mitmproxy is needed to read mitmproxy flow files and to run the proxy. It pins dependencies "
    "datareach cannot share, so install it in an environment of its own, e.g. "
    "`python -m venv <datareach venv>/mitmproxy && <datareach venv>/mitmproxy/bin/pip install "
    "'mitmproxy>=7,<12'` (found automatically), or `pipx install mitmproxy` (found through `mitmdump` "
    f"on PATH), or set {ENV_PYTHON} to a Python that can import mitmproxy"
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SNIFF_LEN = re.compile(rb"^([0-9]{1,12}):")


class MitmproxyNotFound(Exception):
    """No Python interpreter that can import mitmproxy was found (a usage error: exit 2)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__((detail + ". " if detail else "") + INSTALL_HINT)


# ---------------------------------------------------------------------------------------------
# Sniffing


def looks_like_flows(head: bytes) -> bool:
    """True when ``head`` starts a mitmproxy flow dump: a tnetstring dictionary (``LEN:...}``)
    whose first entry is a tnetstring key, as :class:`mitmproxy.io.FlowWriter` writes them."""
    m = _SNIFF_LEN.match(head)
    if m is None:
        return False
    length = int(m.group(1))
    body = head[m.end() :]
    if len(body) > length and body[length : length + 1] != b"}":
        return False
    key = _SNIFF_LEN.match(body)
    if key is None:
        return False
    klen = int(key.group(1))
    if klen > 64:
        return False
    kend = key.end() + klen
    if len(body) <= kend:
        return length > kend  # the head is cut inside the first key: judge on the prefix
    return body[kend : kend + 1] in (b",", b";") and re.fullmatch(rb"[a-z_]+", body[key.end() : kend]) is not None


# ---------------------------------------------------------------------------------------------
# Finding mitmproxy


def _can_import_mitmproxy(python: str) -> bool:
    try:
        r = subprocess.run([python, "-I", "-c", "import mitmproxy.io"], capture_output=True, timeout=60,
                           check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


_found: dict[str, str] = {}


def find_mitmproxy_python(install: bool = True) -> str:
    """A Python interpreter that can import mitmproxy, in this order: ``$DATAREACH_MITMPROXY_PYTHON``;
    this interpreter; the environment ``mitmproxy/`` inside this one's (``sys.prefix``, where
    ``make`` puts it); the interpreter of the ``mitmdump`` found next to this Python or on PATH.
    When none is found and ``install`` is true, that environment is made (:func:`install_mitmproxy`)
    if :func:`auto_install_allowed`. Raises :class:`MitmproxyNotFound`."""
    env = os.environ.get(ENV_PYTHON)
    if env:
        if not _can_import_mitmproxy(env):
            raise MitmproxyNotFound(f"{ENV_PYTHON}={env} cannot import mitmproxy")
        return env
    if "python" in _found:
        return _found["python"]
    candidates: list[str] = []
    if importlib.util.find_spec("mitmproxy") is not None:
        candidates.append(sys.executable)
    for sub in ("bin/python", "Scripts/python.exe"):
        p = Path(sys.prefix) / "mitmproxy" / sub
        if p.is_file():
            candidates.append(str(p))
    for mitmdump in (str(Path(sys.executable).parent / "mitmdump"), shutil.which("mitmdump")):
        if mitmdump and os.path.isfile(mitmdump):
            py = shebang_python(os.path.realpath(mitmdump))
            if py:
                candidates.append(py)
    for py in candidates:
        if _can_import_mitmproxy(py):
            _found["python"] = py
            return py
    if install and auto_install_allowed():
        py = install_mitmproxy()
        _found["python"] = py
        return py
    raise MitmproxyNotFound("mitmproxy was not found")


#: Set to 0 to never install mitmproxy by itself (the first use of a mitmproxy feature otherwise does).
ENV_AUTO_INSTALL = "DATAREACH_MITMPROXY_AUTO_INSTALL"
#: What :func:`install_mitmproxy` installs (9.0 to 11.0 run on Python 3.11).
MITMPROXY_REQUIREMENT = "mitmproxy>=9,<12"


def mitmproxy_env_dir() -> Path:
    """Where datareach keeps mitmproxy's environment: ``mitmproxy/`` inside its own (``sys.prefix``)."""
    return Path(sys.prefix) / "mitmproxy"


def auto_install_allowed() -> bool:
    """True when mitmproxy may be installed without being asked: datareach runs in a virtual
    environment of its own (a venv, pipx) that can be written, and ``$DATAREACH_MITMPROXY_AUTO_INSTALL``
    is not 0. A system-wide Python is never changed."""
    if os.environ.get(ENV_AUTO_INSTALL, "") == "0" or sys.prefix == sys.base_prefix:
        return False
    return os.access(sys.prefix, os.W_OK)


def install_mitmproxy(quiet: bool = False) -> str:
    """Make mitmproxy's environment (:func:`mitmproxy_env_dir`) and return its Python; says what
    it does on standard error. Raises :class:`MitmproxyNotFound` when it cannot."""
    target = mitmproxy_env_dir()
    python = target / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not quiet:
        print(f"datareach: installing mitmproxy ({MITMPROXY_REQUIREMENT}, about 130 MB, once) into an "
              f"environment of its own, {target} -- its pinned dependencies cannot share datareach's. "
              f"Set {ENV_PYTHON} to use a mitmproxy you have, or {ENV_AUTO_INSTALL}=0 to never do this.",
              file=sys.stderr, flush=True)
    steps = [[sys.executable, "-m", "venv", str(target)],
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", MITMPROXY_REQUIREMENT]]
    for step in steps:
        if step[0] == str(python) and not python.is_file():
            break
        try:
            r = subprocess.run(step, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise MitmproxyNotFound(f"could not install mitmproxy into {target}: {exc}") from exc
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
            raise MitmproxyNotFound(f"could not install mitmproxy into {target}: {last[:300]}")
    if not _can_import_mitmproxy(str(python)):
        raise MitmproxyNotFound(f"mitmproxy was installed into {target} but cannot be imported there")
    if not quiet:
        print(f"datareach: mitmproxy installed in {target}", file=sys.stderr, flush=True)
    return str(python)


# ---------------------------------------------------------------------------------------------
# Records -> model


def _s(value: object, limit: int = 4096) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53 else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _time(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e11:
        return float(value)
    return None


def clean_ip(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().strip("[]")
    if text.startswith("::ffff:") and "." in text:  # mitmproxy's dual-stack sockets
        text = text[7:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def clean_host(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    host = value.strip().rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or len(host) > 253 or any(c in "/@?#\\" or not c.isprintable() or c.isspace() for c in host):
        return None
    return host


def _http_version(value: str) -> str:
    low = value.strip().lower()
    if low in ("http/2.0", "http/2", "h2"):
        return "HTTP/2"
    if low in ("http/3", "http/3.0", "h3"):
        return "HTTP/3"
    return value.strip()[:16] or "HTTP/1.1"


@dataclass(slots=True)
class FlowState:
    """What the records of one input have in common: the connections they add up to."""

    input_index: int = 0
    conns: dict[tuple[object, ...], Connection] = field(default_factory=dict)

    def connections(self) -> list[Connection]:
        return list(self.conns.values())


def exchange_from_record(rec: dict[str, Any], input_index: int = 0) -> Exchange | None:
    """The HTTP request of an ``http`` record (None when it has no usable host)."""
    if rec.get("kind") != "http":
        return None
    host = clean_host(rec.get("pretty_host")) or clean_host(rec.get("host"))
    if host is None:
        return None
    scheme = _s(rec.get("scheme")).lower() or "http"
    if rec.get("websocket") is not None and scheme in ("http", "https"):
        scheme = "wss" if scheme == "https" else "ws"
    port = _int(rec.get("port")) or _DEFAULT_PORTS.get(scheme, 0)
    target = _s(rec.get("path"), 1 << 20) or "/"
    netloc = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    url = f"{scheme}://{netloc}{target}" if target.startswith("/") else f"{scheme}://{netloc}/{target}"
    try:
        body = base64.b64decode(_s(rec.get("body"), 1 << 26), validate=True)
    except (binascii.Error, ValueError):
        body = b""
    size = _int(rec.get("body_size")) or 0
    headers = [(h[0], h[1]) for h in _list(rec.get("headers")) if isinstance(h, list) and len(h) == 2
               and isinstance(h[0], str) and isinstance(h[1], str)]
    status = _int(rec.get("status"))
    return Exchange(
        ts=_time(rec.get("ts")) or 0.0,
        scheme=scheme,
        method=_s(rec.get("method"), 64),
        host=host,
        url=url,
        target=target,
        http_version=_http_version(_s(rec.get("http_version"))),
        request_headers=headers,
        request_body=body,
        request_body_truncated=size > len(body),
        request_body_size=size if size > len(body) else None,
        status=status if status is not None and 100 <= status < 1000 else None,
        response_size=_int(rec.get("response_size")),
        server_ip=clean_ip(rec.get("server_ip")),
        server_port=_int(rec.get("server_port")) or port,
        input_index=input_index,
        client_ip=clean_ip(rec.get("client_ip")),
        client_port=_int(rec.get("client_port")),
    )


def _connection(rec: dict[str, Any], state: FlowState, transport: Transport, protocol: str | None,
                host: str | None) -> Connection:
    server_ip = clean_ip(rec.get("server_ip")) or ""
    port = _int(rec.get("server_port")) or 0
    ts = _time(rec.get("ts")) or 0.0
    sid = rec.get("server_id")
    key: tuple[object, ...] = ((transport, "id", sid) if isinstance(sid, str) and sid
                               else (transport, "host", host, server_ip, port))
    conn = state.conns.get(key)
    if conn is None:
        sni = clean_host(rec.get("sni"))
        alpn = _s(rec.get("alpn"), 64)
        conn = Connection(
            uid=connection_uid(state.input_index, len(state.conns)), transport=transport, client_ip=clean_ip(rec.get("client_ip")) or "", client_port=_int(rec.get("client_port")) or 0,
            server_ip=server_ip, server_port=port, first_seen=ts, last_seen=ts,
            sni=sni if protocol == "tls" else None, quic_sni=sni if protocol == "quic" else None,
            http_host=host if protocol in ("http", "tls", "quic") else None,
            protocol=protocol, alpn=(alpn,) if alpn else (), input_index=state.input_index,
        )
        state.conns[key] = conn
    if ts and (not conn.first_seen or ts < conn.first_seen):
        conn.first_seen = ts
    last = _time(rec.get("ts_last")) or ts
    conn.last_seen = max(conn.last_seen, last, conn.first_seen)
    return conn


def records_from_flow(rec: dict[str, Any], state: FlowState) -> list[Record]:
    """The model records of one flow record (the :class:`Connection` totals stay in ``state``
    until :meth:`FlowState.connections`)."""
    kind = rec.get("kind")
    n = _int(rec.get("n"))
    where = f"flow {n}" if n is not None else "flow"
    offset = _int(rec.get("offset"))
    if kind == "http":
        ex = exchange_from_record(rec, state.input_index)
        if ex is None:
            return [InputError(f"{where}: HTTP request without a usable host; skipped", offset=offset)]
        quic = ex.http_version == "HTTP/3"
        http_protocol = "quic" if quic else ("tls" if ex.scheme in ("https", "wss") or rec.get("tls") else "http")
        conn = _connection(rec, state, "udp" if quic else "tcp", http_protocol, ex.host)
        ex.uid = conn.uid
        ws_rec = rec.get("websocket")
        ws: dict[str, Any] = ws_rec if isinstance(ws_rec, dict) else {}
        conn.packets_out += 1 + (_int(ws.get("messages_out")) or 0)
        conn.bytes_out += (_int(rec.get("request_bytes")) or 0) + (_int(ws.get("bytes_out")) or 0)
        got = ex.status is not None
        conn.packets_in += (1 if got else 0) + (_int(ws.get("messages_in")) or 0)
        conn.bytes_in += (_int(rec.get("response_bytes")) or 0) + (_int(ws.get("bytes_in")) or 0)
        return [ex]
    if kind in ("tcp", "udp", "dns"):
        transport: Transport = "tcp" if kind == "tcp" else "udp"
        protocol = "dns" if kind == "dns" else None
        if kind != "dns" and rec.get("tls"):
            protocol = "quic" if kind == "udp" else "tls"
        host: str | None = clean_host(rec.get("sni")) or clean_host(rec.get("server_address"))
        if host is not None and clean_ip(host) is not None:
            host = None
        conn = _connection(rec, state, transport, protocol, host)
        for key in ("bytes_out", "bytes_in", "packets_out", "packets_in"):
            setattr(conn, key, getattr(conn, key) + (_int(rec.get(key)) or 0))
        out: list[Record] = []
        if kind == "dns":
            out.extend(_dns_answers(rec, state, conn.uid))
        return out
    what = _s(rec.get("type"), 200) or str(kind)[:40]
    return [InputError(f"{where}: {what} flow skipped (not HTTP, TCP, UDP or DNS)", offset=offset)]


def _dns_answers(rec: dict[str, Any], state: FlowState, uid: str) -> list[Record]:
    ts = _time(rec.get("ts_last")) or _time(rec.get("ts")) or 0.0
    questions = [q for q in (clean_host(q) for q in _list(rec.get("questions"))) if q]
    cnames: dict[str, str] = {}
    out: list[Record] = []
    rows = [a for a in _list(rec.get("answers")) if isinstance(a, list) and len(a) == 4]
    for name, rtype, data, _ttl in rows:
        if rtype == "CNAME" and clean_host(name) and clean_host(data):
            cnames[str(clean_host(name))] = str(clean_host(data))
    for name, rtype, data, ttl in rows:
        address = clean_ip(data)
        owner = clean_host(name)
        if rtype not in ("A", "AAAA") or address is None or owner is None:
            continue
        qname = questions[0] if questions else owner
        chain = [qname]
        while chain[-1] in cnames and len(chain) < 16 and cnames[chain[-1]] not in chain:
            chain.append(cnames[chain[-1]])
        out.append(DnsAnswer(ts=ts, qname=qname, rtype=rtype, address=address, cname_chain=tuple(chain),
                             ttl=_int(ttl) or 0, input_index=state.input_index, uid=uid))
    return out


# ---------------------------------------------------------------------------------------------
# The reader


def read_flows(path: Path, input_index: int, progress: ProgressCallback | None = None) -> Iterator[Record]:
    """Stream the records of one mitmproxy flow dump (read by mitmproxy, in its own Python).

    Raises :class:`MitmproxyNotFound` when no mitmproxy is installed."""
    python = find_mitmproxy_python()
    state = FlowState(input_index)
    proc = subprocess.Popen([python, "-I", str(FLOWCONV), "read", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    ended = False
    flows = 0
    last_pos = 0
    mitmproxy = "(unknown version)"
    try:
        for line in proc.stdout:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            kind = rec.get("kind")
            if kind == "start":
                mitmproxy = _s(rec.get("mitmproxy"), 40) or mitmproxy
                continue
            if kind == "end":
                ended = True
                break
            if kind == "error":
                ended = True
                n = _int(rec.get("flows")) or 0
                message = _s(rec.get("message"), 400)
                why = _why_unreadable(rec, message, mitmproxy)
                yield from state.connections()
                state.conns.clear()
                yield InputError(
                    f"mitmproxy flow file {why}: {n} flow{'s' if n != 1 else ''} read, flow {n + 1} cannot be "
                    f"read: {message}", offset=_int(rec.get("offset")), fatal=True)
                break
            flows += 1
            last_pos = _int(rec.get("pos")) or last_pos
            yield from _guarded(rec, state)
            if progress is not None and flows % 256 == 0:
                progress(last_pos)
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        proc.wait()
    yield from state.connections()
    if progress is not None:
        progress(last_pos)
    if not ended:
        last = err.strip().splitlines()[-1] if err.strip() else f"exit status {proc.returncode}"
        yield InputError(f"mitmproxy's flow reader stopped after {flows} flows: {last[:300]}",
                         offset=last_pos, fatal=True)


def _version_text(version: object) -> str | None:
    """A flow format version as mitmproxy names it: ``0.10`` for (0, 10) (the 0.x releases used
    their own version), ``21`` for the numbered formats (mitmproxy 3.0 on); None if neither."""
    if isinstance(version, int) and not isinstance(version, bool) and 0 <= version < 10**6:
        return str(version)
    if isinstance(version, list) and 2 <= len(version) <= 3 and \
            all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1000 for v in version):
        return ".".join(str(v) for v in version[:2])
    return None


def _why_unreadable(rec: dict[str, Any], message: str, mitmproxy: str) -> str:
    """Why the bridge's flow reader stopped, from its error record: a flow format version the
    installed mitmproxy (version ``mitmproxy``) does not read -- older or newer than it, or none --
    else damage."""
    if "flow_version" not in rec:
        if "please update mitmproxy" in message:
            return "written by a newer mitmproxy"
        return "in a flow format this mitmproxy cannot read" if "flow format version" in message \
            else "truncated or corrupt"
    version, first, last = rec.get("flow_version"), rec.get("reads_from"), rec.get("reads_up_to")
    text, oldest, newest = _version_text(version), _version_text(first), _version_text(last)
    reads = f"mitmproxy {mitmproxy} reads dumps of mitmproxy {oldest} and later, up to flow format {newest}" \
        if oldest and newest else f"mitmproxy {mitmproxy} cannot read it"
    if version is None:
        return f"truncated or corrupt, or written by a mitmproxy older than {oldest or '0.11'} (a flow has no " \
               f"format version; {reads})"
    if text is None:
        return f"in an unknown flow format version ({reads})"
    if isinstance(version, list):
        if isinstance(first, list) and version[:2] < first[:2]:
            return f"written by mitmproxy {text}, which is older than mitmproxy {mitmproxy} supports ({reads})"
        return f"written by mitmproxy {text} ({reads})"
    if isinstance(last, int) and isinstance(version, int):
        if version > last:
            return f"written by a newer mitmproxy (flow format {text}; {reads}: update mitmproxy)"
        if version == last:
            return "truncated or corrupt"
    return f"in flow format {text} ({reads})"


def _guarded(rec: dict[str, Any], state: FlowState) -> list[Record]:
    try:
        return records_from_flow(rec, state)
    except Exception as exc:  # pragma: no cover - defensive: a bug of ours costs one flow
        return [InputError(f"flow {rec.get('n')}: could not be read ({type(exc).__name__})",
                           offset=_int(rec.get("offset")))]
