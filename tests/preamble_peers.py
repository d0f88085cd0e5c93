"""Real peers for the preamble tests, on loopback (captured by tls_peers.Capture).

* :class:`StartTlsServer` speaks just enough SMTP, IMAP, POP3, XMPP, LDAP or PostgreSQL to
  accept (or refuse) an upgrade to TLS, then runs TLS with Python's ``ssl`` and says one line;
* the clients are ``openssl s_client -starttls <proto>`` (its own implementation of each
  protocol's upgrade) and Python's ``smtplib``;
* :class:`Proxy` is a SOCKS4/4a/5 (with username/password where asked) and HTTP CONNECT proxy
  for ``curl``; every host name resolves to 127.0.0.1, and a name starting with ``refused`` is
  refused.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import subprocess
import threading
from pathlib import Path
from typing import Self

#: the LDAP ExtendedResponse to StartTLS: message id 1, success
LDAP_STARTTLS_OK = bytes.fromhex("300c02010178070a010004000400")


def _serve(sock: socket.socket, handler: object, stop: threading.Event) -> None:
    sock.settimeout(0.1)  # (a closed listening socket does not wake accept())
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        conn.settimeout(20)
        threading.Thread(target=handler, args=(conn,), daemon=True).start()  # type: ignore[arg-type]


class _Lines:
    """Line reading on a socket (the bytes after the last line stay unread)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def line(self) -> bytes:
        out = bytearray()
        while not out.endswith(b"\n"):
            b = self.conn.recv(1)
            if not b:
                break
            out += b
        return bytes(out)


class _Server:
    """A loopback server, each connection handled by ``_connection`` in a thread of its own,
    while the ``with`` block runs."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=_serve, args=(self.sock, self._connection, self.stop), daemon=True)

    def _connection(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.sock.close()


class StartTlsServer(_Server):
    """One protocol's server, upgrading to TLS when asked (``refuse``: refusing the upgrade)."""

    def __init__(self, proto: str, cert: tuple[Path, Path], port: int, refuse: bool = False) -> None:
        self.proto, self.refuse = proto, refuse
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*cert)
        super().__init__(port)

    def _connection(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError), conn:
            if getattr(self, "_" + self.proto)(conn, _Lines(conn)):
                with self.ctx.wrap_socket(conn, server_side=True) as tconn:
                    tconn.sendall(b"hello inside TLS\r\n")
                    while tconn.recv(4096):
                        pass

    def _smtp(self, conn: socket.socket, r: _Lines) -> bool:
        conn.sendall(b"220 mx.example ESMTP\r\n")
        while True:
            line = r.line()
            verb = line[:8].upper().split(b" ")[0].strip()
            if not line or verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return False
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            elif verb == b"STARTTLS":
                if self.refuse:
                    conn.sendall(b"454 4.7.0 TLS not available due to temporary reason\r\n")
                    continue
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                return True
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                while r.line() not in (b".\r\n", b""):
                    pass
                conn.sendall(b"250 queued\r\n")
            else:
                conn.sendall(b"250 OK\r\n")

    def _imap(self, conn: socket.socket, r: _Lines) -> bool:
        conn.sendall(b"* OK IMAP4rev1 ready\r\n")
        while True:
            line = r.line()
            parts = line.split()
            if len(parts) < 2:
                return False
            tag, cmd = parts[0], parts[1].upper()
            if cmd == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n" + tag + b" OK done\r\n")
            elif cmd == b"STARTTLS":
                conn.sendall(tag + (b" NO not now\r\n" if self.refuse else b" OK Begin TLS negotiation now\r\n"))
                if not self.refuse:
                    return True
            elif cmd == b"LOGOUT":
                conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return False
            else:
                conn.sendall(tag + b" BAD what\r\n")

    def _pop3(self, conn: socket.socket, r: _Lines) -> bool:
        conn.sendall(b"+OK POP3 ready\r\n")
        while True:
            cmd = r.line().strip().upper()
            if cmd == b"CAPA":
                conn.sendall(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n")
            elif cmd == b"STLS":
                conn.sendall(b"-ERR not now\r\n" if self.refuse else b"+OK Begin TLS\r\n")
                if not self.refuse:
                    return True
            else:
                conn.sendall(b"+OK bye\r\n")
                return False

    def _xmpp(self, conn: socket.socket, r: _Lines) -> bool:
        got = b""
        while b">" not in got:
            got += conn.recv(4096)
        conn.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                     b"xmlns:stream='http://etherx.jabber.org/streams' id='1' from='chat.example' version='1.0'>"
                     b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                     b"</stream:features>")
        got = b""
        while b"/>" not in got:
            got += conn.recv(4096)
        if self.refuse:
            conn.sendall(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>")
            return False
        conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        return True

    def _ldap(self, conn: socket.socket, r: _Lines) -> bool:
        conn.recv(4096)
        conn.sendall(LDAP_STARTTLS_OK if not self.refuse else LDAP_STARTTLS_OK[:9] + b"\x02" + LDAP_STARTTLS_OK[10:])
        return not self.refuse

    def _postgres(self, conn: socket.socket, r: _Lines) -> bool:
        conn.recv(8)
        conn.sendall(b"N" if self.refuse else b"S")
        return not self.refuse


def refused_in_python(proto: str, port: int) -> None:
    """Python's smtplib, imaplib or poplib asks for TLS, is refused, and goes on in the clear (SMTP:
    sends a message)."""
    import imaplib
    import poplib
    import smtplib

    ctx = ssl.create_default_context()
    if proto == "smtp":
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
            smtp.ehlo("client.example")
            with contextlib.suppress(smtplib.SMTPResponseException):
                smtp.starttls(context=ctx)
            smtp.sendmail("a@example.org", ["b@example.org"], b"Subject: hi\r\n\r\nGET / HTTP/1.1\r\n")
    elif proto == "imap":
        imap = imaplib.IMAP4("127.0.0.1", port, timeout=20)
        with contextlib.suppress(imaplib.IMAP4.error):
            imap.starttls(ssl_context=ctx)
        imap.logout()
    else:
        pop = poplib.POP3("127.0.0.1", port, timeout=20)
        with contextlib.suppress(poplib.error_proto):
            pop.stls(context=ctx)
        pop.quit()


def s_client(proto: str, port: int, name: str, keylog: Path) -> None:
    """``openssl s_client -starttls proto`` to the port, naming ``name`` in its SNI; it hangs up
    after the handshake (its input ends)."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", proto, "-servername", name,
            "-keylogfile", str(keylog)]
    if proto in ("xmpp", "smtp"):
        args += ["-name", name]
    subprocess.run(args, input=b"", capture_output=True, timeout=30, check=False)


class Proxy(_Server):
    """A SOCKS4/4a/5 and HTTP CONNECT proxy (``auth``: SOCKS5 asks for a username and password)."""

    def __init__(self, port: int, auth: bool = False) -> None:
        self.auth = auth
        super().__init__(port)

    @staticmethod
    def _recv(conn: socket.socket, n: int) -> bytes:
        out = b""
        while len(out) < n:
            b = conn.recv(n - len(out))
            if not b:
                raise OSError("closed")
            out += b
        return out

    def _connection(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            first = self._recv(conn, 1)
            if first == b"\x05":
                target = self._socks5(conn)
            elif first == b"\x04":
                target = self._socks4(conn)
            else:
                target = self._connect(conn, first)
            if target is None:
                return
            with socket.create_connection(("127.0.0.1", target[1]), timeout=20) as up:
                t = threading.Thread(target=self._pipe, args=(up, conn), daemon=True)
                t.start()
                self._pipe(conn, up)
                t.join(timeout=20)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
            b.shutdown(socket.SHUT_WR)

    def _socks5(self, conn: socket.socket) -> tuple[str, int] | None:
        methods = self._recv(conn, self._recv(conn, 1)[0])
        if self.auth:
            if 2 not in methods:
                conn.sendall(b"\x05\xff")
                return None
            conn.sendall(b"\x05\x02")
            _, ulen = self._recv(conn, 2)
            self._recv(conn, ulen)
            self._recv(conn, self._recv(conn, 1)[0])
            conn.sendall(b"\x01\x00")
        else:
            conn.sendall(b"\x05\x00")
        _, _cmd, _, atyp = self._recv(conn, 4)
        if atyp == 3:
            host = self._recv(conn, self._recv(conn, 1)[0]).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET if atyp == 1 else socket.AF_INET6,
                                    self._recv(conn, 4 if atyp == 1 else 16))
        port = struct.unpack(">H", self._recv(conn, 2))[0]
        refused = host.startswith("refused")
        conn.sendall(b"\x05" + (b"\x02" if refused else b"\x00") + b"\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", port))
        return None if refused else (host, port)

    def _socks4(self, conn: socket.socket) -> tuple[str, int] | None:
        _, port, addr = struct.unpack(">BH4s", self._recv(conn, 7))
        while self._recv(conn, 1) != b"\x00":  # user id
            pass
        host = socket.inet_ntoa(addr)
        if addr[:3] == b"\x00\x00\x00":
            name = b""
            while (b := self._recv(conn, 1)) != b"\x00":
                name += b
            host = name.decode()
        refused = host.startswith("refused")
        conn.sendall(b"\x00" + (b"\x5b" if refused else b"\x5a") + b"\x00" * 6)
        return None if refused else (host, port)

    def _connect(self, conn: socket.socket, first: bytes) -> tuple[str, int] | None:
        head = first
        while not head.endswith(b"\r\n\r\n"):
            head += self._recv(conn, 1)
        authority = head.split(b" ")[1].decode()
        host, _, port = authority.rpartition(":")
        if host.startswith("refused"):
            body = b"not this one\n"
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(body), body))
            return None
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return host, int(port)


def curl_through(url: str, proxy: list[str], keylog: Path) -> int:
    """curl to ``url`` through a proxy (its arguments); its exit status (a refusal fails it)."""
    env = dict(os.environ, SSLKEYLOGFILE=str(keylog))
    return subprocess.run(["curl", "-sk", "-o", os.devnull, "--max-time", "20", *proxy, url],
                          env=env, check=False, capture_output=True).returncode
