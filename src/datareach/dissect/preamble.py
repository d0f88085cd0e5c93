"""Plaintext preambles before TLS or a tunnel (sans-IO): STARTTLS in SMTP, IMAP, POP3 (``STLS``),
LDAP (the StartTLS extended operation) and XMPP, PostgreSQL's SSLRequest (and GSSENCRequest),
SOCKS4, SOCKS4a, SOCKS5 (with or without username/password authentication) and HTTP CONNECT.

A :class:`Preamble` is fed a connection's client bytes (:meth:`Preamble.client`) and server bytes
(:meth:`Preamble.server`) in capture order, each direction in stream order, and follows the
protocol to the point where each direction stops being plaintext. Its :attr:`~Preamble.status`:

``READING``   not decided yet;
``UPGRADED``  both sides agreed on TLS (a STARTTLS accepted, PostgreSQL's ``S``): TLS begins in each
              direction where :meth:`~Preamble.take_client_rest` and :meth:`~Preamble.take_server_rest`
              begin;
``TUNNEL``    a SOCKS or CONNECT tunnel is open: the rests are the tunnelled connection (TLS, HTTP or
              anything else: the caller looks at its first bytes), :attr:`~Preamble.target` its
              destination;
``PLAIN``     the protocol was recognised but stays plaintext: the upgrade was refused (SMTP 454,
              IMAP ``NO``, POP3 ``-ERR``, LDAP non-zero result, XMPP ``<failure/>``, PostgreSQL
              ``N``, a SOCKS failure, a CONNECT answered otherwise than 2xx) or the client went on
              without one (logged in, sent mail);
``OPAQUE``    encrypted, but not by TLS (PostgreSQL GSSAPI encryption);
``NOT``       not a preamble known here;
``OVERRUN``   :data:`MAX_PREAMBLE` bytes in a direction without a decision.

Where the connection starts, :func:`client_first` says which preamble a client's first bytes open
(SOCKS, PostgreSQL, LDAP, XMPP, CONNECT); a connection whose server speaks first is a
``Preamble(SERVER_FIRST)``, told apart by its greeting (SMTP ``220``, IMAP ``* OK``, POP3 ``+OK``).
:attr:`~Preamble.protocol` names what was seen: ``smtp+starttls``, ``imap+starttls``,
``pop3+starttls``, ``ldap+starttls``, ``xmpp+starttls``, ``postgres+ssl``, ``postgres+gssenc``,
``socks4``, ``socks4a``, ``socks5``, ``http-connect``; before (or without) the upgrade, the bare
protocol (``smtp``, ``postgres`` ...).

Everything is bounded (at most :data:`MAX_PREAMBLE` bytes kept per direction) and hostile input
never raises.
"""

from __future__ import annotations

from socket import AF_INET, AF_INET6, inet_ntop
from typing import Final

#: Bytes of preamble read per direction at most, before giving up (status OVERRUN).
MAX_PREAMBLE: Final = 1 << 16

READING: Final = 0
UPGRADED: Final = 1
TUNNEL: Final = 2
PLAIN: Final = 3
OPAQUE: Final = 4
NOT: Final = 5
OVERRUN: Final = 6

SMTP: Final = "smtp"
IMAP: Final = "imap"
POP3: Final = "pop3"
LDAP: Final = "ldap"
XMPP: Final = "xmpp"
POSTGRES: Final = "postgres"
FTP: Final = "ftp"
SOCKS4: Final = "socks4"
SOCKS5: Final = "socks5"
CONNECT: Final = "connect"
#: the server spoke first: its greeting says which (SMTP, IMAP or POP3)
SERVER_FIRST: Final = "greeting"

PG_SSL_REQUEST: Final = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
PG_GSSENC_REQUEST: Final = b"\x00\x00\x00\x08\x04\xd2\x16\x30"
LDAP_STARTTLS_OID: Final = b"1.3.6.1.4.1.1466.20037"
#: SOCKS5 authentication methods a client may offer (RFC 1928: assigned, and private 0x80-0xFE)
_SOCKS5_METHODS: Final = frozenset([*range(0x0A), *range(0x80, 0xFF)])
#: FTP commands a client may send before AUTH TLS (RFC 4217); USER, PASS and the rest go on in the clear
_FTP_BEFORE_AUTH: Final = frozenset({b"FEAT", b"SYST", b"OPTS", b"HELP", b"NOOP", b"CLNT", b"HOST", b"AUTH"})
#: POP3 commands whose +OK answer is multi-line (LIST and UIDL only without an argument)
_POP3_MULTI: Final = frozenset({b"CAPA", b"RETR", b"TOP"})
_POP3_MULTI_NOARG: Final = frozenset({b"LIST", b"UIDL"})


class _Bad(Exception):
    """The bytes cannot be the protocol the preamble took them for."""


class _Plain(Exception):
    """The protocol goes on in the clear (no upgrade asked before its session began)."""


def _prefix(buf: bytes | bytearray, options: tuple[bytes, ...]) -> bool | None:
    """Whether ``buf`` starts with one of ``options``: None while it is too short to say."""
    maybe = False
    for opt in options:
        n = min(len(buf), len(opt))
        if buf[:n] == opt[:n]:
            if n == len(opt):
                return True
            maybe = True
    return None if maybe else False


def _line(buf: bytearray, pos: int) -> tuple[bytes | None, int]:
    """The line starting at ``pos`` without its line end, and where the next begins (None: not
    complete yet)."""
    i = buf.find(b"\n", pos)
    if i < 0:
        return None, pos
    return bytes(buf[pos:i]).rstrip(b"\r"), i + 1


def _name(raw: bytes | bytearray) -> str:
    """A host name as sent (printable ASCII), lower case."""
    if not raw or len(raw) > 255 or any(not 0x21 <= c <= 0x7E for c in raw):
        raise _Bad
    return bytes(raw).decode("ascii").lower()


def _authority(raw: bytes) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` of a CONNECT request."""
    host, sep, port = raw.rpartition(b":")
    if not sep or not port.isdigit() or not host:
        raise _Bad
    if host.startswith(b"[") and host.endswith(b"]"):
        host = host[1:-1]
    return _name(host), int(port)


# -- BER (LDAP) ------------------------------------------------------------------------------

def _tlv(buf: bytearray, p: int, end: int) -> tuple[int, int, int] | None:
    """The BER element at ``p`` (ending by ``end``): tag, content start, content end. None while
    it is incomplete."""
    if p + 2 > end:
        return None
    tag, first = buf[p], buf[p + 1]
    if first < 0x80:
        start, length = p + 2, first
    else:
        k = first & 0x7F
        if not 1 <= k <= 4:
            raise _Bad
        if p + 2 + k > end:
            return None
        start, length = p + 2 + k, int.from_bytes(buf[p + 2 : p + 2 + k], "big")
    if length > MAX_PREAMBLE:
        raise _Bad
    if start + length > end:
        return None
    return tag, start, start + length


def _ldap_message(buf: bytearray, p: int) -> tuple[int, int, int, int, int] | None:
    """The LDAPMessage at ``p``: its end, message id, protocolOp tag and that op's content (start,
    end). None while incomplete."""
    outer = _tlv(buf, p, len(buf))
    if outer is None:
        return None
    tag, s, e = outer
    mid = _tlv(buf, s, e)
    if tag != 0x30 or mid is None or mid[0] != 0x02 or not 1 <= mid[2] - mid[1] <= 4:
        raise _Bad
    op = _tlv(buf, mid[2], e)
    if op is None or not 0x40 <= op[0] <= 0x7F:  # (an application-class tag)
        raise _Bad
    return e, int.from_bytes(buf[mid[1] : mid[2]], "big"), op[0], op[1], op[2]


def _ldap_start(head: bytes | bytearray) -> bool:
    """Whether a client stream starts like an LDAPMessage (as far as it goes)."""
    if len(head) < 7 or head[0] != 0x30:
        return False
    buf = bytearray(head)
    try:
        if _ldap_message(buf, 0) is not None:
            return True
    except _Bad:
        return False
    if head[1] >= 0x80 and not 1 <= head[1] & 0x7F <= 4:
        return False
    p = 2 if head[1] < 0x80 else 2 + (head[1] & 0x7F)
    if p + 2 > len(head):
        return False
    if head[p] != 0x02 or not 1 <= head[p + 1] <= 4:
        return False
    op = p + 2 + head[p + 1]
    return op < len(head) and 0x40 <= head[op] <= 0x7F


def client_first(head: bytes | bytearray) -> str | None:
    """The preamble a client stream starting with ``head`` opens (SOCKS4, SOCKS5, POSTGRES, LDAP,
    XMPP or CONNECT), or None: not one (or not yet enough bytes to say)."""
    n = len(head)
    if not n:
        return None
    b0 = head[0]
    if b0 == 5:  # SOCKS5: version, number of methods, the methods
        if n >= 3 and head[1] >= 1 and n >= 2 + head[1] and all(m in _SOCKS5_METHODS for m in head[2 : 2 + head[1]]):
            return SOCKS5
        return None
    if b0 == 4:  # SOCKS4: version, CONNECT, port, address, user id up to a NUL
        if n >= 9 and head[1] == 1 and head.find(b"\x00", 8, 8 + 256) >= 0:
            return SOCKS4
        return None
    if b0 == 0:
        return POSTGRES if n >= 8 and head[:8] in (PG_SSL_REQUEST, PG_GSSENC_REQUEST) else None
    if b0 == 0x30:
        return LDAP if _ldap_start(head) else None
    if head.startswith(b"CONNECT "):
        return CONNECT
    if (b0 == 0x3C or b0 in b" \t\r\n") and _prefix(bytes(head).lstrip(), (b"<?xml", b"<stream:stream")):  # '<'
        return XMPP
    return None


class Preamble:
    """One connection's preamble, fed both directions in capture order (see the module's doc)."""

    __slots__ = ("_answered", "_c", "_cdone", "_cmds", "_cp", "_msgid", "_multi", "_pg", "_pop", "_req",
                 "_s", "_sp", "_sstage", "_tag", "_upgrade", "connects", "kind", "protocol", "status", "target")

    def __init__(self, kind: str) -> None:
        #: SMTP, IMAP ... (SERVER_FIRST until the greeting says which)
        self.kind = kind
        self.status = READING
        #: what was recognised: ``smtp`` ... then ``smtp+starttls`` once upgraded (None: not yet)
        self.protocol: str | None = None
        #: SOCKS and CONNECT: the tunnel's destination (host name or address, port)
        self.target: tuple[str, int] | None = None
        #: CONNECT: the request head and the response's status code
        self.connects: list[tuple[bytes, int]] = []
        self._c = bytearray()
        self._s = bytearray()
        self._cp = 0  # bytes of each direction the preamble has read
        self._sp = 0
        self._cdone = False  # the client's part is over (XMPP: its <starttls/> is read)
        self._cmds = 0  # commands sent, replies seen (SMTP, IMAP), server stage (SOCKS5)
        self._answered = 0
        self._sstage = 0
        self._upgrade: int | None = None  # which command (SMTP, POP3) asked for TLS
        self._tag: bytes | None = None  # IMAP: the STARTTLS command's tag
        self._msgid: int | None = None  # LDAP: the StartTLS request's message id
        self._pop: list[bool] = []  # POP3: each command's answer is multi-line when +OK
        self._multi = False
        self._pg: bytes | None = None  # PostgreSQL: the request awaiting its one-byte answer
        self._req: bytes | None = None  # CONNECT: the request head awaiting its response

    # -- feeding --------------------------------------------------------------------------------

    def client(self, data: bytes | bytearray) -> int:
        """The client's next bytes; the status after them. Once decided, the client's bytes are
        the caller's (only :meth:`take_client_rest` is left)."""
        if self.status == READING:
            self._c += data
            self._step()
        return self.status

    def server(self, data: bytes | bytearray) -> int:
        """The server's next bytes; the status after them. After an upgrade or a tunnel they are
        kept (up to :data:`MAX_PREAMBLE`) for :meth:`take_server_rest`."""
        if self.status == READING:
            self._s += data
            self._step()
        elif self.status in (UPGRADED, TUNNEL) and len(self._s) - self._sp + len(data) <= MAX_PREAMBLE:
            self._s += data
        return self.status

    def take_client_rest(self) -> bytes:
        """After UPGRADED or TUNNEL: the client's bytes after its preamble; otherwise all of them
        (a refused CONNECT is plain HTTP). The buffer is then let go."""
        rest = bytes(self._c[self._cp :] if self.status in (UPGRADED, TUNNEL, OPAQUE) else self._c)
        self._c = bytearray()
        self._cp = 0
        return rest

    def take_server_rest(self) -> bytes:
        """As :meth:`take_client_rest`, for the server's bytes (those since added included)."""
        rest = bytes(self._s[self._sp :] if self.status != PLAIN else self._s)
        self._s = bytearray()
        self._sp = 0
        return rest

    def _step(self) -> None:
        try:
            kind = self.kind
            if kind == SERVER_FIRST:
                self._greeting()
                kind = self.kind
            if kind == SMTP:
                self._smtp()
                kind = self.kind  # (its first command may show the server is FTP's)
            if kind == FTP:
                self._ftp()
            elif kind == IMAP:
                self._imap()
            elif kind == POP3:
                self._pop3()
            elif kind == LDAP:
                self._ldap()
            elif kind == XMPP:
                self._xmpp()
            elif kind == POSTGRES:
                self._postgres()
            elif kind == SOCKS4:
                self._socks4()
            elif kind == SOCKS5:
                self._socks5()
            elif kind == CONNECT:
                self._connect()
        except _Plain:
            self.status = PLAIN
        except (_Bad, ValueError, IndexError):
            self.status = PLAIN if self.protocol is not None else NOT
        if self.status == READING and (len(self._c) > MAX_PREAMBLE or len(self._s) > MAX_PREAMBLE):
            self.status = OVERRUN

    def _decide(self, status: int, protocol: str | None = None) -> None:
        self.status = status
        if protocol is not None:
            self.protocol = protocol

    # -- server speaks first --------------------------------------------------------------------

    def _greeting(self) -> None:
        s = self._s
        for kind, prefixes in ((SMTP, (b"220",)), (IMAP, (b"* OK", b"* PREAUTH")), (POP3, (b"+OK",))):
            match = _prefix(s, prefixes)
            if match:
                self.kind = kind
                return
            if match is None:
                return  # (too short to say)
        self.status = NOT

    def _smtp(self) -> None:
        c, s = self._c, self._s
        while self._upgrade is None:
            line, end = _line(c, self._cp)
            if line is None:
                break
            verb = line.split(b" ", 1)[0].upper()
            if not self._cmds and verb not in (b"EHLO", b"HELO", b"LHLO", b"STARTTLS"):
                if verb in _FTP_BEFORE_AUTH:  # (an FTP server greets with 220 too)
                    self.kind = FTP
                    return
                raise _Bad
            self.protocol = SMTP
            if verb in (b"MAIL", b"RCPT", b"DATA", b"BDAT", b"AUTH"):
                self.status = PLAIN  # the session goes on in the clear
                return
            self._cp = end
            self._cmds += 1
            if verb == b"STARTTLS":
                self._upgrade = self._cmds
        while True:
            line, end = _line(s, self._sp)
            if line is None:
                return
            if len(line) < 3 or not line[:3].isdigit():
                raise _Bad
            self._sp = end
            if line[3:4] == b"-":
                continue  # a multi-line reply goes on
            self._answered += 1  # (the greeting is the first reply; command n's is reply n + 1)
            if self._upgrade is not None and self._answered == self._upgrade + 1:
                self._decide(UPGRADED if line[:3] == b"220" else PLAIN, "smtp+starttls" if line[:3] == b"220" else None)
                return

    def _ftp(self) -> None:
        """FTP's AUTH TLS (RFC 4217): TLS begins after the server's 234 to it."""
        c, s = self._c, self._s
        while self._upgrade is None:
            line, end = _line(c, self._cp)
            if line is None:
                break
            parts = line.split(b" ", 1)
            verb = parts[0].upper()
            if verb not in _FTP_BEFORE_AUTH:
                raise _Bad if not self._cmds else _Plain
            self.protocol = FTP
            self._cp = end
            self._cmds += 1
            if verb == b"AUTH" and len(parts) > 1 and parts[1].strip().upper() in (b"TLS", b"SSL", b"TLS-C", b"TLS-P"):
                self._upgrade = self._cmds
        while True:
            line, end = _line(s, self._sp)
            if line is None:
                return
            self._sp = end
            # (a multi-line reply: "234-" opens it, lines in between may be anything, "234 " ends it)
            if len(line) < 4 or not line[:3].isdigit() or line[3:4] == b"-":
                continue
            self._answered += 1
            if self._upgrade is not None and self._answered == self._upgrade + 1:
                ok = line[:3] == b"234"
                self._decide(UPGRADED if ok else PLAIN, "ftp+auth-tls" if ok else None)
                return

    def _imap(self) -> None:
        c, s = self._c, self._s
        while self._tag is None:
            line, end = _line(c, self._cp)
            if line is None:
                break
            parts = line.split(b" ", 2)
            if len(parts) < 2 or not parts[0] or not parts[1].isalpha():
                raise _Bad
            self.protocol = IMAP
            cmd = parts[1].upper()
            if cmd in (b"LOGIN", b"AUTHENTICATE") or line.endswith(b"}"):
                self.status = PLAIN  # logged in in the clear (or a literal: not followed)
                return
            self._cp = end
            if cmd == b"STARTTLS":
                self._tag = parts[0]
        while True:
            line, end = _line(s, self._sp)
            if line is None:
                return
            self._sp = end
            tag = self._tag
            if tag is not None and line.startswith(tag + b" "):
                ok = line[len(tag) + 1 :].split(b" ", 1)[0].upper() == b"OK"
                self._decide(UPGRADED if ok else PLAIN, "imap+starttls" if ok else None)
                return

    def _pop3(self) -> None:
        c, s = self._c, self._s
        while self._upgrade is None:
            line, end = _line(c, self._cp)
            if line is None:
                break
            verb, _, arg = line.partition(b" ")
            verb = verb.upper()
            if not verb.isalpha() or len(verb) > 8:
                raise _Bad
            self.protocol = POP3
            if verb in (b"USER", b"PASS", b"APOP", b"AUTH"):
                self.status = PLAIN
                return
            self._cp = end
            self._pop.append(verb in _POP3_MULTI or (verb in _POP3_MULTI_NOARG and not arg.strip()))
            if verb == b"STLS":
                self._upgrade = len(self._pop) - 1
        while True:
            line, end = _line(s, self._sp)
            if line is None:
                return
            self._sp = end
            if not self._cmds:  # the greeting
                self._cmds = 1
                continue
            if self._multi:
                if line == b".":
                    self._multi = False
                    self._answered += 1
                continue
            if self._answered >= len(self._pop):
                continue  # (nothing asked)
            ok = line.startswith(b"+OK")
            if not ok and not line.startswith(b"-ERR"):
                raise _Bad
            if self._answered == self._upgrade:
                self._decide(UPGRADED if ok else PLAIN, "pop3+starttls" if ok else None)
                return
            if ok and self._pop[self._answered]:
                self._multi = True
            else:
                self._answered += 1

    # -- client speaks first --------------------------------------------------------------------

    def _ldap(self) -> None:
        c, s = self._c, self._s
        while self._msgid is None:
            m = _ldap_message(c, self._cp)
            if m is None:
                break
            end, msgid, op, start, stop = m
            self.protocol = LDAP
            self._cp = end
            if op == 0x77:  # ExtendedRequest: [0] requestName
                name = _tlv(c, start, stop)
                if name is not None and name[0] == 0x80 and c[name[1] : name[2]] == LDAP_STARTTLS_OID:
                    self._msgid = msgid
            elif op == 0x60:  # a BindRequest first: the session is in the clear
                self.status = PLAIN
                return
        while True:
            m = _ldap_message(s, self._sp)
            if m is None:
                return
            end, msgid, op, start, stop = m
            self._sp = end
            if op == 0x78 and self._msgid is not None and msgid == self._msgid:  # ExtendedResponse
                code = _tlv(s, start, stop)
                ok = code is not None and code[0] == 0x0A and s[code[1] : code[2]] == b"\x00"
                self._decide(UPGRADED if ok else PLAIN, "ldap+starttls" if ok else None)
                return

    def _xmpp(self) -> None:
        c, s = self._c, self._s
        self.protocol = XMPP
        if not self._cdone:
            i = c.find(b"<starttls")
            if i < 0:
                if c.find(b"<auth") >= 0 or c.find(b"<iq") >= 0:
                    self.status = PLAIN  # authenticating (or talking) without TLS
                return
            end = _element_end(c, i, b"</starttls>")
            if end < 0:
                return
            self._cp = end
            self._cdone = True
        proceed = s.find(b"<proceed")
        failure = s.find(b"<failure")
        if failure >= 0 and (proceed < 0 or failure < proceed):
            self.status = PLAIN
            return
        if proceed < 0:
            return
        end = _element_end(s, proceed, b"</proceed>")
        if end >= 0:
            self._sp = end
            self._decide(UPGRADED, "xmpp+starttls")

    def _postgres(self) -> None:
        c, s = self._c, self._s
        self.protocol = POSTGRES
        while True:
            if self._pg is None:
                req = bytes(c[self._cp : self._cp + 8])
                if len(req) < 8:
                    return
                if req not in (PG_SSL_REQUEST, PG_GSSENC_REQUEST):
                    self.status = PLAIN  # a StartupMessage: the session is in the clear
                    return
                self._pg = req
                self._cp += 8
            if self._sp >= len(s):
                return
            answer = s[self._sp]
            self._sp += 1
            if self._pg == PG_SSL_REQUEST:
                self._decide(UPGRADED if answer == 0x53 else PLAIN, "postgres+ssl" if answer == 0x53 else None)  # 'S'
                return
            self.protocol = "postgres+gssenc"
            if answer == 0x47:  # 'G': GSSAPI encryption, not TLS
                self.status = OPAQUE
                return
            if answer != 0x4E:  # ('N': the client may ask for TLS next)
                self.status = PLAIN
                return
            self._pg = None

    def _socks4(self) -> None:
        c, s = self._c, self._s
        if self.target is None:
            if len(c) < 9:
                return
            if c[0] != 4 or c[1] != 1:
                raise _Bad
            nul = c.find(b"\x00", 8)
            if nul < 0:
                if len(c) > 8 + 256:
                    raise _Bad
                return
            port, addr, end = (c[2] << 8) | c[3], bytes(c[4:8]), nul + 1
            if addr[:3] == b"\x00\x00\x00" and addr[3]:  # SOCKS4a: the host name follows
                nul = c.find(b"\x00", end)
                if nul < 0:
                    if len(c) > end + 256:
                        raise _Bad
                    return
                self.target, self.protocol = (_name(c[end:nul]), port), "socks4a"
                end = nul + 1
            else:
                self.target, self.protocol = (inet_ntop(AF_INET, addr), port), SOCKS4
            self._cp = end
        if len(s) < 8:
            return
        self._sp = 8
        self.status = TUNNEL if s[1] == 0x5A else PLAIN

    def _socks5(self) -> None:
        c, s = self._c, self._s
        self.protocol = SOCKS5
        while self.target is None:  # the client: greeting, username/password (RFC 1929), request
            p = self._cp
            if p == 0:
                if len(c) < 2 or len(c) < 2 + c[1]:
                    break
                self._cp = 2 + c[1]
                continue
            if p + 2 > len(c):
                break
            if c[p] == 1:  # username/password: version 1, user, password
                ulen = c[p + 1]
                if p + 3 + ulen > len(c) or p + 3 + ulen + c[p + 2 + ulen] > len(c):
                    break
                self._cp = p + 3 + ulen + c[p + 2 + ulen]
                continue
            if c[p] != 5:
                raise _Bad
            target = _socks5_address(c, p + 3)
            if target is None:
                break
            if c[p + 1] != 1:  # BIND or UDP ASSOCIATE: no tunnel to follow
                self.status = PLAIN
                return
            self.target, self._cp = target[:2], target[2]
        while self._sstage < 3:  # the server: method chosen, authentication status, reply
            p = self._sp
            if p + 2 > len(s):
                return
            if self._sstage == 0:
                if s[p] != 5:
                    raise _Bad
                method = s[p + 1]
                if method not in (0, 2):  # 0xFF: no acceptable method (GSSAPI: not followed)
                    self.status = PLAIN
                    return
                self._sp, self._sstage = p + 2, 2 - (method == 2)
            elif self._sstage == 1:
                if s[p + 1]:
                    self.status = PLAIN  # authentication failed
                    return
                self._sp, self._sstage = p + 2, 2
            else:
                if s[p] != 5:
                    raise _Bad
                bound = _socks5_address(s, p + 3)
                if bound is None:
                    return
                if s[p + 1]:
                    self.status = PLAIN  # refused
                    return
                self._sp, self._sstage = bound[2], 3
        if self.target is not None:
            self.status = TUNNEL

    def _connect(self) -> None:
        c, s = self._c, self._s
        while True:
            if self._req is None:
                if len(c) - self._cp < 8:
                    return
                if c[self._cp : self._cp + 8] != b"CONNECT ":
                    raise _Bad
                end = _head_end(c, self._cp)
                if end < 0:
                    return
                head = bytes(c[self._cp : end])
                parts = head.split(b"\n", 1)[0].split()
                if len(parts) < 2:
                    raise _Bad
                self.target, self.protocol = _authority(parts[1]), "http-connect"
                self._req, self._cp = head, end
            end = _head_end(s, self._sp)
            if end < 0:
                return
            status = s[self._sp : end].split(b"\n", 1)[0].split()
            if len(status) < 2 or not status[0].startswith(b"HTTP/") or not status[1].isdigit():
                raise _Bad
            code = int(status[1])
            self._sp = end
            if 100 <= code < 200:
                continue  # (an interim response: the final one follows)
            self.connects.append((self._req, code))
            self._req = None
            self.status = TUNNEL if 200 <= code < 300 else PLAIN  # (refused: plain HTTP from the start)
            return


def _element_end(buf: bytearray, start: int, closing: bytes) -> int:
    """Where the XML element opened at ``start`` ends (empty ``<x/>`` or ``<x>...</x>``): -1 while
    it has not."""
    gt = buf.find(b">", start)
    if gt < 0:
        return -1
    if buf[gt - 1] == 0x2F:  # '/'
        return gt + 1
    end = buf.find(closing, gt)
    return end + len(closing) if end >= 0 else -1


def _head_end(buf: bytearray, start: int) -> int:
    """Where an HTTP header block beginning at ``start`` ends (after its blank line): -1 while it has not."""
    i = buf.find(b"\r\n\r\n", start)
    j = buf.find(b"\n\n", start)
    if i >= 0 and (j < 0 or i + 2 <= j):
        return i + 4
    return j + 2 if j >= 0 else -1


def _socks5_address(buf: bytearray, p: int) -> tuple[str, int, int] | None:
    """A SOCKS5 address (type, address, port) at ``p``: host, port and where it ends; None while
    incomplete."""
    if p >= len(buf):
        return None
    atyp = buf[p]
    if atyp == 1:
        start, alen = p + 1, 4
    elif atyp == 4:
        start, alen = p + 1, 16
    elif atyp == 3:
        if p + 1 >= len(buf):
            return None
        start, alen = p + 2, buf[p + 1]
    else:
        raise _Bad
    end = start + alen + 2
    if end > len(buf):
        return None
    raw = bytes(buf[start : start + alen])
    host = _name(raw) if atyp == 3 else inet_ntop(AF_INET if atyp == 1 else AF_INET6, raw)
    return host, (buf[end - 2] << 8) | buf[end - 1], end
