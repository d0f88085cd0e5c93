"""Real components for the mitmproxy tests, the fixture script and the load benchmark.

* :func:`make_cert` -- a self-signed certificate for the loopback upstream (cryptography);
* :class:`Upstream` -- an HTTP and an HTTPS server on 127.0.0.1 (threads of this process);
* :class:`Mitmdump` -- a real mitmdump of a given mitmproxy installation, on a free loopback port,
  with its own confdir (so a fresh CA), optionally with datareach's addon and the redirect addon;
* ``redirect_addon.py`` -- sends every upstream connection to the loopback upstream, so that
  requests can name real hosts (``graph.facebook.com``) without ever leaving the machine.

Nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REDIRECT_ADDON = HERE / "redirect_addon.py"
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "src"))

from datareach.mitm import ADDON_PATH, mitmdump_command  # noqa: E402
from datareach.sources.mitm import MitmproxyNotFound, find_mitmproxy_python  # noqa: E402


def mitmproxy_python() -> str | None:
    try:
        return find_mitmproxy_python(install=False)
    except MitmproxyNotFound:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_cert(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "upstream.pem", directory / "upstream.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.received.append((self.command, self.headers.get("Host"), self.path, body))
        out = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class Upstream:
    """HTTP and HTTPS servers on loopback that answer every request with a small JSON body."""

    def __init__(self, directory: Path) -> None:
        self.cert, self.key = make_cert(directory)
        self.http = _Server(("127.0.0.1", 0), _Handler)
        self.https = _Server(("127.0.0.1", 0), _Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.https.socket = ctx.wrap_socket(self.https.socket, server_side=True)
        for srv in (self.http, self.https):
            srv.received = []
            srv.lock = threading.Lock()
            threading.Thread(target=srv.serve_forever, daemon=True).start()

    @property
    def http_port(self) -> int:
        return int(self.http.server_address[1])

    @property
    def https_port(self) -> int:
        return int(self.https.server_address[1])

    def received(self) -> list[tuple[str, str, str, bytes]]:
        return list(self.http.received) + list(self.https.received)

    def close(self) -> None:
        for srv in (self.http, self.https):
            srv.shutdown()
            srv.server_close()


class Mitmdump:
    """A real mitmdump on 127.0.0.1 (see the module docstring); stdout and stderr go to files."""

    def __init__(self, python: str, workdir: Path, upstream: Upstream | None, *, datareach: bool = False,
                 options: dict[str, str] | None = None, extra: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.confdir = workdir / "confdir"
        self.confdir.mkdir(exist_ok=True)
        self.stdout_path = workdir / "mitmdump.out"
        self.stderr_path = workdir / "mitmdump.err"
        cmd = [*mitmdump_command(python), "--listen-host", "127.0.0.1", "--listen-port", str(self.port),
               "--set", f"confdir={self.confdir}", "--set", "ssl_insecure=true", "-q" if datareach else "-v"]
        run_env = {**os.environ, **(env or {})}
        if upstream is not None:
            cmd += ["-s", str(REDIRECT_ADDON)]
            run_env["REDIRECT_HTTP"] = str(upstream.http_port)
            run_env["REDIRECT_HTTPS"] = str(upstream.https_port)
        if datareach:
            cmd += ["-s", str(ADDON_PATH)]
            options = {"datareach_python": sys.executable, **(options or {})}  # each option once
        for k, v in (options or {}).items():
            cmd += ["--set", f"{k}={v}"]
        cmd += extra or []
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=open(self.stdout_path, "wb"), stderr=open(self.stderr_path, "wb"),  # noqa: SIM115
                                     stdin=subprocess.DEVNULL, env=run_env, cwd=workdir)
        self.ca = self.confdir / "mitmproxy-ca-cert.pem"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mitmdump exited: {self.stderr_path.read_text(errors='replace')[-2000:]}")
            if self.ca.exists() and _listening(self.port):
                return
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("mitmdump did not start listening within 60 s")

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 300) -> int:
        """SIGINT (as Ctrl-C), then wait for the addons' done hooks."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def curl(proxy: str, ca: Path, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
         http2: bool = False) -> tuple[int, bytes]:
    """One request through the proxy with curl, trusting only mitmproxy's CA. (status, body)."""
    cmd = ["curl", "-sS", "--max-time", "30", "--proxy", proxy, "--cacert", str(ca), "--noproxy", "",
           "-o", "-", "-w", "\n%{http_code}", url]
    if http2:
        cmd.append("--http2")
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if data is not None:
        cmd += ["--data-binary", "@-"]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=60, env=env, check=False)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code or 0), body
