"""Decrypting the TLS connections of a capture whose keys the user holds, and reading the
HTTP inside (a :class:`~datareach.dissect.tls.TlsFollower` for
:class:`~datareach.dissect.packets.PacketDecoder`).

For each followed connection: the client random (ClientHello) finds the secrets in the
:class:`~datareach.dissect.keylog.KeyStore`; the ServerHello gives the version, cipher suite and
server random; then every record is decrypted:

* TLS 1.3: the handshake traffic keys, then the application traffic keys, each direction
  switching at its own Finished; 0-RTT early data under the early traffic key; KeyUpdate. The
  switch points are found by trial decryption (a record that fails under the current key is
  tried under the next), which also covers 0-RTT the server rejected and a Finished that spans
  records. The selected ALPN protocol comes from the (encrypted) EncryptedExtensions.
* TLS 1.2: the key block from the master secret (``CLIENT_RANDOM`` by client random, or
  ``RSA Session-ID`` by session id), records encrypted from each direction's ChangeCipherSpec.

The application data goes to HTTP/1.x (:mod:`datareach.dissect.http1`) or HTTP/2
(:mod:`datareach.dissect.http2`), chosen by the ALPN protocol or the client's first bytes; each
request becomes an :class:`~datareach.schema.Exchange` with ``scheme`` https.

:class:`DecryptStats` counts what was and was not opened (no keys, unsupported version or
suite, records that failed), which the report shows: nothing is left out silently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from datareach.dissect import http1, http2, keylog, tls, websocket
from datareach.dissect.tlscrypto import SUITES, RecordKey, Suite, tls12_keys
from datareach.schema import Exchange

#: Client records held until the ServerHello says how to decrypt them (0-RTT data comes first).
MAX_EARLY_RECORDS: Final = 64
#: Consecutive records that decrypt under no key before a direction is given up.
MAX_FAILURES: Final = 4
#: Server plaintext held until the client's first bytes say which protocol the connection speaks.
MAX_UNDECIDED: Final = 1 << 16
#: Decrypted handshake bytes scanned for the EncryptedExtensions (its ALPN).
MAX_HANDSHAKE_SCAN: Final = 1 << 14
#: The smallest protected record (TLS 1.3: a 5-byte header, a content type byte, a 16-byte tag):
#: a hole of n bytes lost at most n // MIN_RECORD records.
MIN_RECORD: Final = 22
#: Sequence numbers tried for the first record after a hole, at most.
MAX_LOST_RECORDS: Final = 4096

OTHER, H1, H2 = "other", "http/1", "h2"


@dataclass(slots=True)
class DecryptStats:
    """What decryption did, for one reader (summed over parallel readers)."""

    #: TLS connections followed (their ClientHello read), QUIC connections whose Initial
    #: ClientHello was read while keys were at hand, and, of them:
    connections: int = 0
    quic_connections: int = 0
    #: at least one record (or QUIC packet) decrypted: the keys open it
    decrypted: int = 0
    #: no secret for the client random (nor the session id)
    no_keys: int = 0
    #: keys found but no record (or QUIC packet) decrypted under them (wrong keys, or a lost handshake)
    failed: int = 0
    #: a version or cipher suite datareach does not decrypt, by name
    unsupported: dict[str, int] = field(default_factory=dict)
    #: the connection ended before its ServerHello was seen
    no_server_hello: int = 0
    #: TLS records and QUIC packets decrypted, and those that decrypted under no key
    records: int = 0
    record_failures: int = 0
    plaintext_bytes: int = 0
    #: decrypted connections whose application protocol is neither HTTP/1.x nor HTTP/2
    other_protocol: int = 0
    #: decrypted HTTP directions that stopped being read (malformed, limits), by reason
    http_errors: dict[str, int] = field(default_factory=dict)
    #: holes (segments missing from the capture) decryption went on after, and the HTTP bytes
    #: skipped to find the next request, response or HTTP/2 frame after one
    holes: int = 0
    http_bytes_skipped: int = 0
    #: WebSocket messages read after an upgrade (the client's become exchanges)
    websocket_messages: int = 0
    #: connections opened, by key source (a key log file, or an input's Decryption Secrets Blocks)
    opened_by_source: dict[str, int] = field(default_factory=dict)
    #: the uids of the connections with at least one record decrypted
    uids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The counts as the report gives them (uids apart)."""
        return {
            "tls_followed": self.connections, "quic_followed": self.quic_connections, "decrypted": self.decrypted, "no_keys": self.no_keys,
            "keys_failed": self.failed, "no_server_hello": self.no_server_hello,
            "unsupported": dict(sorted(self.unsupported.items())), "records_decrypted": self.records,
            "records_failed": self.record_failures, "plaintext_bytes": self.plaintext_bytes,
            "other_protocol": self.other_protocol, "http_errors": dict(sorted(self.http_errors.items())),
            "holes": self.holes, "http_bytes_skipped": self.http_bytes_skipped,
            "websocket_messages": self.websocket_messages,
            "opened_by_source": dict(sorted(self.opened_by_source.items())),
        }

    def opened(self, uid: str, keys: keylog.KeyStore, source: int) -> None:
        """A connection's keys opened it (the first record or packet that decrypted): counted,
        with the key source (index into ``keys.sources``) that held them."""
        self.decrypted += 1
        self.uids.append(uid)
        if 0 <= source < len(keys.sources):
            name = keys.sources[source].name
            self.opened_by_source[name] = self.opened_by_source.get(name, 0) + 1

    def add(self, other: DecryptStats) -> None:
        for name in ("connections", "quic_connections", "decrypted", "no_keys", "failed", "no_server_hello", "records",
                     "record_failures", "plaintext_bytes", "other_protocol", "holes", "http_bytes_skipped",
                     "websocket_messages"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.unsupported, other.unsupported), (self.http_errors, other.http_errors),
                             (self.opened_by_source, other.opened_by_source)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        self.uids.extend(other.uids)


class _Dir:
    """One direction of a decrypted connection."""

    __slots__ = ("active", "cur", "dead", "failures", "keys", "lost")

    def __init__(self) -> None:
        #: after a hole: how many records may have been lost in it (tried as sequence numbers)
        self.lost = 0
        #: candidate keys in the order the direction uses them; ``cur`` is the one in use
        self.keys: list[RecordKey] = []
        self.cur = 0
        #: TLS 1.2: after this direction's ChangeCipherSpec
        self.active = False
        self.failures = 0
        self.dead = False


class _Conn:
    __slots__ = ("alpn", "dirs", "flow", "h1", "h1_scan", "h2", "hello", "last", "opened", "pending", "proto",
                 "secrets", "server_hs_seen", "source", "suite", "tls13", "undecided", "ws", "ws_hold", "ws_url")

    def __init__(self, flow: tls.TlsFlow, hello: tls.ClientHello, secrets: dict[int, tuple[int, bytes]] | None) -> None:
        self.flow = flow
        self.hello = hello
        self.secrets = secrets
        self.suite: Suite | None = None
        self.tls13 = False
        self.dirs = (_Dir(), _Dir())  # server, client
        self.pending: list[tuple[bool, tls.TlsRecord, float]] | None = []
        self.opened = False
        self.source = -1
        self.alpn: str | None = None
        self.proto: str | None = None
        self.undecided = bytearray()
        self.server_hs_seen = 0
        self.h1: tuple[http1.RequestStream, http1.ResponseStream, deque[Exchange]] | None = None
        self.h2: http2.H2Connection | None = None
        #: WebSocket after an upgrade (server, client); the client's bytes held between its upgrade
        #: request and the response; the upgraded URL (wss://...)
        self.ws: tuple[websocket.WebSocketDirection, websocket.WebSocketDirection] | None = None
        self.ws_hold: bytearray | None = None
        self.ws_url = ""
        #: HTTP/1 after a hole, per direction (server, client): the bytes searched for the next message
        self.h1_scan: list[http1.MessageScan | None] = [None, None]
        #: when the last application data was read
        self.last = 0.0


class TlsDecryptor:
    """A TlsFollower that decrypts the connections it has keys for and reads the HTTP inside."""

    def __init__(self, keys: keylog.KeyStore, emit: Callable[[Exchange], None], *, app_of: Callable[[int], str | None]
                 | None = None, body_cap: int = http1.DEFAULT_BODY_CAP, keep_bodies: bool = True) -> None:
        self.keys = keys
        self.emit = emit
        self.app_of = app_of
        self.body_cap = body_cap
        self.keep_bodies = keep_bodies
        self.stats = DecryptStats()
        self._conns: dict[int, _Conn] = {}
        from datareach.dissect.quicdecrypt import QuicDecryptor

        #: QUIC connections (and HTTP/3), with the same keys, adding to the same counts; their
        #: requests become exchanges here, as HTTP/2 ones do
        self.quic = QuicDecryptor(keys, self.stats, lambda flow, hello, s: self._stream_exchange(flow, hello, s, "HTTP/3"),
                                  body_cap=body_cap)

    # -- TlsFollower ---------------------------------------------------------------------------

    def on_hello(self, conn: tls.TlsFlow, hello: tls.ClientHello, ts: float) -> bool:
        """Follow the connection only if some key may open it."""
        self.stats.connections += 1
        secrets = self.keys.lookup(hello.random)
        if secrets is None and not self.keys.has_session_ids:
            self.stats.no_keys += 1
            return False
        self._conns[conn.flow] = _Conn(conn, hello, secrets)
        return True

    def on_server_hello(self, flow: int, hello: tls.ServerHello, ts: float) -> None:
        c = self._conns.get(flow)
        if c is None or hello.retry or c.suite is not None:
            return
        suite = SUITES.get(hello.cipher_suite)
        if hello.version == 0x0304:
            c.tls13 = True
        elif hello.version != 0x0303:
            self._give_up(c, unsupported=_version_name(hello.version))
            return
        if suite is None or suite.tls13 != c.tls13:
            self._give_up(c, unsupported=f"cipher suite 0x{hello.cipher_suite:04x}")
            return
        c.suite = suite
        c.alpn = hello.alpn
        server, client = c.dirs
        secrets = c.secrets or {}
        if c.tls13:
            for d, slots in ((client, (keylog.CLIENT_EARLY, keylog.CLIENT_HS, keylog.CLIENT_AP)),
                             (server, (keylog.SERVER_HS, keylog.SERVER_AP))):
                for slot in slots:
                    entry = secrets.get(slot)
                    if entry is not None:
                        d.keys.append(RecordKey.tls13_from_secret(suite, entry[1]))
                        c.source = entry[0]
        else:
            entry = secrets.get(keylog.MASTER) or self.keys.session(hello.session_id)
            if entry is not None and len(entry[1]) == 48:
                ck, sk = tls12_keys(suite, entry[1], c.hello.random, hello.random, hello.encrypt_then_mac)
                client.keys.append(ck)
                server.keys.append(sk)
                c.source = entry[0]
        if not client.keys and not server.keys:
            self._give_up(c, no_keys=True)
            return
        pending, c.pending = c.pending, None
        for from_client, rec, t in pending or ():
            self._record(c, from_client, rec, t)

    def on_record(self, flow: int, from_client: bool, record: tls.TlsRecord, ts: float) -> None:
        c = self._conns.get(flow)
        if c is None:
            return
        if c.pending is not None:  # the ServerHello is not read yet
            if from_client and record.content_type == tls.CT_APPLICATION_DATA and len(c.pending) < MAX_EARLY_RECORDS:
                c.pending.append((from_client, record, ts))
            return
        self._record(c, from_client, record, ts)

    def on_end(self, flow: int, from_client: bool, reason: str) -> None:
        c = self._conns.get(flow)
        if c is None:
            return
        c.dirs[int(from_client)].dead = True
        if all(d.dead for d in c.dirs):
            self._finish(c)

    # -- records -------------------------------------------------------------------------------

    def _record(self, c: _Conn, from_client: bool, rec: tls.TlsRecord, ts: float) -> None:
        d = c.dirs[int(from_client)]
        if d.dead or not d.keys:
            return
        ct = rec.content_type
        if c.tls13:
            if ct != tls.CT_APPLICATION_DATA:
                return  # the hellos, and ChangeCipherSpec kept for middleboxes
        else:
            if ct == tls.CT_CHANGE_CIPHER_SPEC:
                d.active = True
                return
            if not d.active:
                return
        if not rec.payload:
            return
        if rec.skipped:  # records were lost in a hole: the next one's sequence number is not known
            d.lost = min(rec.skipped // MIN_RECORD + 1, MAX_LOST_RECORDS)
            self.stats.holes += 1
            self._app_hole(c, from_client)
        got = self._decrypt(c, d, ct, rec)
        st = self.stats
        if got is None:
            st.record_failures += 1
            d.failures += 1
            if d.failures >= MAX_FAILURES:
                d.dead = True
            return
        d.failures = 0
        st.records += 1
        inner, plain = got
        if not c.opened:  # (the keys open it: a connection that then carries nothing is decrypted too)
            c.opened = True
            st.opened(c.flow.uid, self.keys, c.source)
        if inner == tls.CT_HANDSHAKE:
            if c.tls13 and not from_client and c.alpn is None and c.server_hs_seen < MAX_HANDSHAKE_SCAN:
                c.server_hs_seen += len(plain)
                c.alpn = tls.encrypted_extensions_alpn(plain)
            if c.tls13 and len(plain) >= 4 and plain[0] == 24:  # KeyUpdate: the next record uses the next key
                d.keys.append(d.keys[d.cur].next_generation())
            return
        if inner != tls.CT_APPLICATION_DATA or not plain:
            return
        st.plaintext_bytes += len(plain)
        c.last = ts
        self._app(c, from_client, plain, ts)

    def _decrypt(self, c: _Conn, d: _Dir, ct: int, rec: tls.TlsRecord) -> tuple[int, bytes] | None:
        keys = d.keys
        if d.lost:  # the first record after a hole: try the sequence numbers the lost records took
            for i in range(d.cur, len(keys)):
                for ahead in range(d.lost + 1):
                    got = keys[i].decrypt(ct, rec.version, rec.payload, ahead)
                    if got is not None:
                        d.cur = i
                        d.lost = 0
                        return got
            return None
        for i in range(d.cur, len(keys)):
            got = keys[i].decrypt(ct, rec.version, rec.payload)
            if got is not None:
                d.cur = i
                return got
        if c.tls13 and d.cur == len(keys) - 1 and len(keys) >= 2:
            # a KeyUpdate we did not see (it was in a record that failed): try the next generation once
            nxt = keys[-1].next_generation()
            got = nxt.decrypt(ct, rec.version, rec.payload)
            if got is not None:
                keys.append(nxt)
                d.cur = len(keys) - 1
                return got
        keys[d.cur].seq += 1  # (the peer consumed it: keep the numbering)
        return None

    # -- what the application data carries --------------------------------------------------------

    def _app(self, c: _Conn, from_client: bool, data: bytes, ts: float) -> None:
        if c.proto is None:
            if not from_client and c.alpn != "h2" and c.alpn != "http/1.1":
                if len(c.undecided) < MAX_UNDECIDED:
                    c.undecided += data[: MAX_UNDECIDED - len(c.undecided)]
                return
            if c.alpn == "h2" or (from_client and data.startswith(http2.PREFACE[:4])):
                c.proto = H2
                c.h2 = http2.H2Connection(self.body_cap)
            elif c.alpn == "http/1.1" or http1.looks_like_http_request(data):
                c.proto = H1
                c.h1 = (http1.RequestStream(self.body_cap), http1.ResponseStream(), deque())
            else:
                c.proto = OTHER
                self.stats.other_protocol += 1
                c.undecided = bytearray()
                return
            held = bytes(c.undecided)
            c.undecided = bytearray()
            if from_client:
                self._feed(c, True, data, ts)
                if held:
                    self._feed(c, False, held, ts)
                return
            if held:
                self._feed(c, False, held, ts)
        self._feed(c, from_client, data, ts)

    def _app_hole(self, c: _Conn, from_client: bool) -> None:
        """Plaintext of one direction was lost: the HTTP parser of that direction finds its way
        again (HTTP/1: the next request or status line; HTTP/2: the next frame)."""
        if c.h2 is not None:
            c.h2.resync(from_client)
        elif c.h1 is not None:
            req, resp, pending = c.h1
            if from_client:
                last = req.flush()
                if last is not None:
                    pending.append(self._h1_exchange(c, last, c.last))
                c.h1 = (http1.RequestStream(self.body_cap), resp, pending)
                c.h1_scan[1] = http1.MessageScan(request=True)
            else:
                while pending:  # (which response answers which request is lost with the hole)
                    self.emit(pending.popleft())
                c.h1 = (req, http1.ResponseStream(), pending)
                c.h1_scan[0] = http1.MessageScan(request=False)

    def _h1_resync(self, c: _Conn, from_client: bool, data: bytes) -> bytes | None:
        """After a hole in an HTTP/1 direction: the bytes from the next request (or status) line on,
        or None while it is not found (what is skipped is counted)."""
        scan = c.h1_scan[int(from_client)]
        if scan is None:
            return data
        before = scan.skipped
        got = scan.feed(data)
        self.stats.http_bytes_skipped += scan.skipped - before
        if got is not None:
            c.h1_scan[int(from_client)] = None
        return got

    def _feed(self, c: _Conn, from_client: bool, data: bytes, ts: float) -> None:
        if c.ws is not None:
            self._websocket(c, from_client, data, ts)
        elif c.h2 is not None:
            skipped = c.h2.skipped
            for s in c.h2.feed(from_client, data, ts):
                self._h2_exchange(c, s)
            self.stats.http_bytes_skipped += c.h2.skipped - skipped
            err = c.h2.error[int(from_client)]
            if err is not None:
                self._http_error(c, f"HTTP/2: {err}")
        elif c.h1 is not None:
            got = self._h1_resync(c, from_client, data)
            if got is None:
                return
            data = got
            req, resp, pending = c.h1
            if from_client:
                if c.ws_hold is not None:  # (after a WebSocket upgrade request, until its response)
                    if len(c.ws_hold) < websocket.MAX_MESSAGE:
                        c.ws_hold += data
                    return
                for parsed in req.feed(data):
                    ex = self._h1_exchange(c, parsed, ts)
                    pending.append(ex)
                    if _websocket_upgrade(parsed):
                        c.ws_hold = bytearray(req.take_rest())
                        c.ws_url = "wss" + ex.url[len("https"):] if ex.url.startswith("https") else ex.url
                        return
                if req.broken:
                    self._http_error(c, "HTTP/1: malformed request")
                    c.h1 = None
                    while pending:
                        self.emit(pending.popleft())
            else:
                for r in resp.feed(data):
                    if pending:
                        ex = pending.popleft()
                        ex.status = r.status
                        ex.response_size = r.body_size
                        self.emit(ex)
                    # (a response to a request read before it: none, or it was malformed)
                    if c.ws_hold is not None:
                        if r.status == 101:
                            self._start_websocket(c, r, ts)
                            return
                        held, c.ws_hold = bytes(c.ws_hold), None  # the upgrade was refused
                        if held:
                            self._feed(c, True, held, ts)

    def _start_websocket(self, c: _Conn, r: http1.ParsedResponse, ts: float) -> None:
        """A 101 answered a WebSocket upgrade: both directions carry WebSocket frames from here."""
        assert c.h1 is not None
        req, resp, pending = c.h1
        ext = next((v for k, v in r.headers or () if k.lower() == "sec-websocket-extensions"), "")
        deflate = websocket.deflate_params(ext)
        server = websocket.WebSocketDirection(deflate=deflate is not None,
                                              no_context_takeover=bool(deflate and deflate[2]))
        client = websocket.WebSocketDirection(deflate=deflate is not None,
                                              no_context_takeover=bool(deflate and deflate[1]))
        c.ws = (server, client)
        held = bytes(c.ws_hold or b"") + req.take_rest()
        c.ws_hold = None
        while pending:
            self.emit(pending.popleft())
        c.h1 = None
        rest = resp.take_rest()
        if rest:
            self._websocket(c, False, rest, ts)
        if held:
            self._websocket(c, True, held, ts)

    def _websocket(self, c: _Conn, from_client: bool, data: bytes, ts: float) -> None:
        """WebSocket frames: the client's messages are searched like request bodies."""
        assert c.ws is not None
        side = c.ws[int(from_client)]
        had_error = side.error is not None
        for msg in side.feed(data):
            self.stats.websocket_messages += 1
            if not from_client:
                continue
            url = c.ws_url or f"wss://{c.hello.server_name or c.flow.server_ip}/"
            target = "/" + url.split("://", 1)[-1].partition("/")[2]
            ex = self._exchange(c.flow, ts, "MESSAGE", http1.host_of(url.split("://", 1)[-1].split("/", 1)[0]), url, target,
                                "WebSocket", [("content-type", "text/plain" if msg.text else "application/octet-stream")],
                                msg.payload, msg.truncated)
            ex.scheme = "wss"
            self.emit(ex)
        if side.error is not None and not had_error:
            self._http_error(c, f"WebSocket: {side.error}")

    def _http_error(self, c: _Conn, reason: str) -> None:
        errs = self.stats.http_errors
        if len(errs) < 64 or reason in errs:
            errs[reason] = errs.get(reason, 0) + 1

    def _exchange(self, f: tls.TlsFlow, ts: float, method: str, host: str, url: str, target: str, version: str,
                  headers: list[tuple[str, str]], body: bytes, truncated: bool) -> Exchange:
        return Exchange(
            ts=ts, scheme="https", method=method, host=host, url=url, target=target, http_version=version,
            request_headers=headers, request_body=body if self.keep_bodies else b"",
            request_body_size=None if self.keep_bodies else len(body), request_body_truncated=truncated,
            server_ip=f.server_ip, server_port=f.server_port,
            app=self.app_of(f.flow) if self.app_of is not None else None, input_index=f.input_index,
            client_ip=f.client_ip, client_port=f.client_port, uid=f.uid,
        )

    def _h1_exchange(self, c: _Conn, parsed: http1.ParsedRequest, ts: float) -> Exchange:
        host = parsed.header("host") or c.hello.server_name or c.flow.server_ip
        target = parsed.target
        url, name = http1.request_url("https", host, target, parsed.method)
        ex = self._exchange(c.flow, ts, parsed.method, name, url, target, parsed.version, parsed.headers,
                            parsed.body, parsed.body_truncated)
        if parsed.head_cut:
            ex.decode_cuts = [http1.head_cut_note(parsed)]
        return ex

    def _h2_exchange(self, c: _Conn, s: http2.H2Stream) -> None:
        self._stream_exchange(c.flow, c.hello, s, "HTTP/2")

    def _stream_exchange(self, flow: tls.TlsFlow, hello: tls.ClientHello, s: http2.H2Stream, version: str) -> None:
        """An HTTP/2 or HTTP/3 stream's request, as an exchange."""
        authority = s.authority or hello.server_name or flow.server_ip
        scheme = s.scheme or "https"
        path = s.path or ("" if s.method == "CONNECT" else "/")
        url = f"{scheme}://{authority}{path}"
        ex = self._exchange(flow, s.ts, s.method, http1.host_of(authority), url, path, version, s.headers,
                            bytes(s.body), s.body_truncated)
        ex.status = s.status
        ex.response_size = s.response_size
        self.emit(ex)

    # -- the end of a connection --------------------------------------------------------------------

    def _give_up(self, c: _Conn, *, unsupported: str | None = None, no_keys: bool = False) -> None:
        if unsupported is not None:
            u = self.stats.unsupported
            u[unsupported] = u.get(unsupported, 0) + 1
        elif no_keys:
            self.stats.no_keys += 1
        self._conns.pop(c.flow.flow, None)

    def _finish(self, c: _Conn) -> None:
        self._conns.pop(c.flow.flow, None)
        st = self.stats
        if c.suite is None and c.pending is not None:
            st.no_server_hello += 1
        elif not c.opened:
            st.failed += 1
        if c.h2 is not None:
            for s in c.h2.close():
                self._h2_exchange(c, s)
        elif c.h1 is not None:
            req, _resp, pending = c.h1
            last = req.flush()
            if last is not None:
                pending.append(self._h1_exchange(c, last, c.last))
            while pending:
                self.emit(pending.popleft())
        c.h1 = None
        c.h2 = None

    def finish(self) -> None:
        """End of input: every connection still followed ends."""
        for c in list(self._conns.values()):
            self._finish(c)
        self.quic.finish()


def _websocket_upgrade(req: http1.ParsedRequest) -> bool:
    """An HTTP/1.1 request asking to switch to WebSocket (RFC 6455 section 4.1)."""
    upgrade = (req.header("upgrade") or "").lower()
    return req.method == "GET" and "websocket" in upgrade


def _version_name(v: int) -> str:
    return {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1"}.get(v, f"version 0x{v:04x}")
