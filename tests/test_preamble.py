"""Plaintext preambles before TLS or a tunnel: STARTTLS (SMTP, IMAP, POP3, LDAP, XMPP),
PostgreSQL's SSLRequest, SOCKS4/4a/5 and HTTP CONNECT (datareach.dissect.preamble, and the
decoder's PREAMBLE state).

The bytes are real: the Zeek project's test traces (tests/data/captures/SOURCES.md), and
captures made here on loopback of ``openssl s_client -starttls``, Python's smtplib, imaplib and
poplib, and curl through a SOCKS or CONNECT proxy (tests/preamble_peers.py). tshark (Wireshark's
dissectors, which read STARTTLS and SOCKS themselves) is the reference for the server names and
for the requests decrypted with the key log.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datareach
from datareach.dissect import preamble
from datareach.dissect.packets import PacketDecoder
from datareach.dissect.preamble import (
    MAX_PREAMBLE,
    NOT,
    OPAQUE,
    OVERRUN,
    PLAIN,
    READING,
    TUNNEL,
    UPGRADED,
    Preamble,
    client_first,
)
from datareach.schema import Connection, ConnectionBatch, Exchange
from preamble_peers import LDAP_STARTTLS_OK, Proxy, StartTlsServer, curl_through, refused_in_python, s_client
from tls_peers import Capture, free_port, missing_tools, openssl_server, self_signed

ZEEK = Path(__file__).resolve().parent / "data" / "captures" / "zeek"
needs_tools = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")


def feed(pre: Preamble, turns: list[tuple[bool, bytes]]) -> int:
    for from_client, data in turns:
        (pre.client if from_client else pre.server)(data)
    return pre.status


# --------------------------------------------------------------------------------------------
# The parser on its own


def test_an_smtp_upgrade_hands_over_where_tls_begins_in_each_direction() -> None:
    pre = Preamble(preamble.SERVER_FIRST)
    status = feed(pre, [(False, b"220-mx.example ESMTP\r\n220 more\r\n"), (True, b"ehlo client\r\n"),
                        (False, b"250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n"), (True, b"STARTTLS\r\n"),
                        (True, b"\x16\x03\x01\x00\x05hello"), (False, b"220 2.0.0 go ahead\r\n")])
    # (the client's bytes after its command wait for the server's answer; once decided, they are
    # the caller's to read)
    assert (status, pre.protocol) == (UPGRADED, "smtp+starttls")
    pre.server(b"\x16\x03\x03")  # (the server's first TLS bytes, kept for whoever reads them)
    assert pre.take_client_rest() == b"\x16\x03\x01\x00\x05hello"
    assert pre.take_server_rest() == b"\x16\x03\x03"


@pytest.mark.parametrize(("turns", "protocol"), [
    # SMTP 454: the client goes on in the clear
    ([(False, b"220 mx\r\n"), (True, b"EHLO c\r\n"), (False, b"250 STARTTLS\r\n"), (True, b"STARTTLS\r\n"),
      (False, b"454 4.7.0 TLS not available\r\n")], "smtp"),
    ([(False, b"220 mx\r\n"), (True, b"EHLO c\r\nMAIL FROM:<a@b>\r\n")], "smtp"),
    ([(False, b"* OK ready\r\n"), (True, b"a1 STARTTLS\r\n"), (False, b"a1 NO not now\r\n")], "imap"),
    ([(False, b"+OK ready\r\n"), (True, b"CAPA\r\n"), (False, b"+OK\r\nSTLS\r\n.\r\n"), (True, b"STLS\r\n"),
      (False, b"-ERR no\r\n")], "pop3"),
    ([(True, b"\x00\x00\x00\x08\x04\xd2\x16\x2f"), (False, b"N")], "postgres"),
    ([(True, b"\x05\x01\x00"), (False, b"\x05\x00"), (True, b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"),
      (False, b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")], "socks5"),
    ([(True, b"\x05\x01\x02"), (False, b"\x05\xff")], "socks5"),
    ([(True, b"\x04\x01\x01\xbb\x5d\xb8\xd8\x22user\x00"), (False, b"\x00\x5b\x00\x00\x00\x00\x00\x00")], "socks4"),
    ([(True, b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"),
      (False, b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")], "http-connect"),
])
def test_a_refused_upgrade_leaves_the_connection_plaintext(turns: list[tuple[bool, bytes]], protocol: str) -> None:
    kind = client_first(turns[0][1]) if turns[0][0] else preamble.SERVER_FIRST
    assert kind is not None
    pre = Preamble(kind)
    assert (feed(pre, turns), pre.protocol) == (PLAIN, protocol)


def test_postgres_gss_encryption_is_named_and_a_refused_one_may_be_followed_by_tls() -> None:
    pre = Preamble(preamble.POSTGRES)
    assert (feed(pre, [(True, preamble.PG_GSSENC_REQUEST), (False, b"G")]), pre.protocol) == (OPAQUE, "postgres+gssenc")
    pre = Preamble(preamble.POSTGRES)  # (libpq: gssencmode=prefer, then sslmode=prefer)
    status = feed(pre, [(True, preamble.PG_GSSENC_REQUEST), (False, b"N"), (True, preamble.PG_SSL_REQUEST),
                        (False, b"S")])
    assert (status, pre.protocol) == (UPGRADED, "postgres+ssl")


def test_socks_and_connect_name_the_tunnel_s_destination() -> None:
    pre = Preamble(preamble.SOCKS5)  # username/password (RFC 1929), then a domain name
    status = feed(pre, [(True, b"\x05\x02\x00\x02"), (False, b"\x05\x02"), (True, b"\x01\x04user\x06secret"),
                        (False, b"\x01\x00"), (True, b"\x05\x01\x00\x03\x0bExample.COM\x01\xbb\x16\x03\x01"),
                        (False, b"\x05\x00\x00\x04" + bytes(16) + b"\x00\x00")])
    assert (status, pre.protocol, pre.target, pre.take_client_rest()) == (TUNNEL, "socks5", ("example.com", 443),
                                                                         b"\x16\x03\x01")
    pre = Preamble(preamble.SOCKS4)  # SOCKS4a: address 0.0.0.x, the name after the user id
    status = feed(pre, [(True, b"\x04\x01\x00\x50\x00\x00\x00\x01\x00www.example.org\x00GET / HTTP/1.1\r\n"),
                        (False, b"\x00\x5a\x00\x00\x00\x00\x00\x00")])
    assert (status, pre.protocol, pre.target) == (TUNNEL, "socks4a", ("www.example.org", 80))
    assert pre.take_client_rest() == b"GET / HTTP/1.1\r\n"
    pre = Preamble(preamble.CONNECT)
    status = feed(pre, [(True, b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n"),
                        (False, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")])
    assert (status, pre.target, pre.connects) == (TUNNEL, ("2001:db8::1", 8443),
                                                  [(b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n", 200)])


def test_ldap_starttls_is_read_from_its_ber_messages() -> None:
    request = bytes.fromhex("301d02010177188016") + preamble.LDAP_STARTTLS_OID  # (as openssl s_client sends it)
    assert client_first(request[:7]) == preamble.LDAP
    pre = Preamble(preamble.LDAP)
    assert feed(pre, [(True, request), (False, LDAP_STARTTLS_OK)]) == UPGRADED
    pre = Preamble(preamble.LDAP)  # resultCode 2 (protocolError)
    assert feed(pre, [(True, request), (False, LDAP_STARTTLS_OK[:9] + b"\x02" + LDAP_STARTTLS_OK[10:])]) == PLAIN


def test_what_is_not_a_known_preamble_is_said_so_early() -> None:
    assert Preamble(preamble.SERVER_FIRST).server(b"SSH-2.0-OpenSSH_9.6\r\n") == NOT
    ftp = Preamble(preamble.SERVER_FIRST)  # (greets with 220 as SMTP does)
    assert feed(ftp, [(False, b"220 FTP ready\r\n"), (True, b"USER anonymous\r\n")]) == NOT
    for head in (b"SSH-2.0-x\r\n", b"\x10\x0c\x00\x04MQTT", b"\x16\x03\x01", b"GET / HTTP/1.1\r\n", b"\x05"):
        assert client_first(head) is None


def test_a_preamble_is_bounded() -> None:
    pre = Preamble(preamble.SERVER_FIRST)
    pre.server(b"* OK ready\r\n")
    for _ in range(MAX_PREAMBLE // 1000 + 1):
        if pre.client(b"a1 NOOP " + b"x" * 990 + b"\r\n") != READING:
            break
    assert pre.status == OVERRUN


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from([preamble.SERVER_FIRST, preamble.SMTP, preamble.IMAP, preamble.POP3, preamble.LDAP,
                             preamble.XMPP, preamble.POSTGRES, preamble.SOCKS4, preamble.SOCKS5, preamble.CONNECT]),
       turns=st.lists(st.tuples(st.booleans(), st.binary(max_size=3000)), max_size=40))
def test_the_parser_never_raises_and_stays_bounded_on_arbitrary_bytes(kind: str,
                                                                       turns: list[tuple[bool, bytes]]) -> None:
    pre = Preamble(kind)
    for from_client, data in turns:
        status = (pre.client if from_client else pre.server)(data)
        assert status in (READING, UPGRADED, TUNNEL, PLAIN, OPAQUE, NOT, OVERRUN)
        assert len(pre._c) <= MAX_PREAMBLE + 3000 and len(pre._s) <= MAX_PREAMBLE + 3000
    client_first(b"".join(d for c, d in turns if c)[:64])


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40))
def test_bytes_cut_anywhere_are_read_as_the_whole(cuts: list[int]) -> None:
    client = b"\x05\x02\x00\x02\x01\x04user\x06secret\x05\x01\x00\x03\x0bexample.com\x01\xbb\x16\x03\x01"
    server = b"\x05\x02\x01\x00\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
    pre = Preamble(preamble.SOCKS5)
    after = b""  # (the client's bytes once the tunnel is open are the caller's)

    def to_client(data: bytes) -> None:
        nonlocal after
        if pre.status == READING:
            pre.client(data)
        else:
            after += data

    i = j = 0
    for n, cut in enumerate(cuts * 20):
        if n % 2 and i < len(client):
            to_client(client[i : i + cut])
            i += cut
        elif j < len(server):
            pre.server(server[j : j + cut])
            j += cut
    to_client(client[i:])
    pre.server(server[j:])
    assert (pre.status, pre.target, pre.take_client_rest() + after) == (TUNNEL, ("example.com", 443),
                                                                        b"\x16\x03\x01")


# --------------------------------------------------------------------------------------------
# The Zeek project's traces, against tshark


def decode(path: Path) -> tuple[PacketDecoder, list[Connection], list[Exchange]]:
    dec = PacketDecoder(0)
    with path.open("rb") as f:
        reader = dpkt.pcap.UniversalReader(f)
        for ts, frame in reader:
            dec.packet(float(ts), bytes(frame), reader.datalink())
    dec.finish()
    conns = [c for r in dec.records if isinstance(r, ConnectionBatch) for c in r.connections()]
    return dec, conns, [r for r in dec.records if isinstance(r, Exchange)]


def tshark_hellos(path: Path, *decode_as: str) -> tuple[set[str], set[tuple[str, str]], set[tuple[str, str]]]:
    """The server addresses of the ClientHellos tshark finds, their (address, server name) and the
    (address, HTTP host) of the requests."""
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: `make test` installs it (apt-get install tshark)")
    args = [exe, "-n", "-r", str(path)]
    for d in decode_as:
        args += ["-d", d]
    args += ["-Y", "tls.handshake.type == 1 || http.request", "-T", "fields", "-e", "ip.dst", "-e", "ipv6.dst",
             "-e", "tls.handshake.type", "-e", "tls.handshake.extensions_server_name", "-e", "http.host"]
    rows = [line.split("\t") for line in subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()]
    hellos = {r[0] or r[1] for r in rows if "1" in r[2].split(",")}
    return (hellos, {(r[0] or r[1], r[3]) for r in rows if r[3]},
            {(r[0] or r[1], r[4].split(":")[0].lower()) for r in rows if r[4]})


ZEEK_CASES = [
    ("tls-smtp-starttls.pcap", {"smtp+starttls": 1}, ()),
    ("tls-imap-starttls.pcap", {"imap+starttls": 1}, ()),
    ("tls-pop3-starttls.pcap", {"pop3+starttls": 1}, ()),
    ("tls-xmpp-starttls.pcap", {"xmpp+starttls": 1}, ()),
    ("ldap-ldap-starttls.pcap", {"ldap+starttls": 1}, ()),
    ("postgresql-psql-aws-ssl-require.pcap", {"postgres+ssl": 1}, ()),
    ("postgresql-psql-login.pcap", {"postgres (plaintext)": 1}, ()),
    ("socks-with-ssl.pcap", {"socks5": 1}, ()),
    ("socks-auth.pcap", {"socks5": 1}, ()),
    ("socks.pcap", {"socks5": 1}, ("tcp.port==8124,socks",)),
    ("tunnels-socks.pcap", {"socks4": 1}, ()),
    ("http-connect-with-header.pcap", {"http-connect": 1}, ()),
    ("http-connect-with-smtp.pcap", {"http-connect": 1}, ()),
]


@pytest.mark.parametrize(("name", "preambles", "decode_as"), ZEEK_CASES)
def test_zeek_traces_server_names_equal_tshark_s(name: str, preambles: dict[str, int],
                                                 decode_as: tuple[str, ...]) -> None:
    path = ZEEK / name
    dec, conns, _ = decode(path)
    assert dec.preambles == preambles
    hellos, snis, hosts = tshark_hellos(path, *decode_as)
    assert {c.server_ip for c in conns if c.protocol == "tls"} == hellos
    assert {(c.server_ip, c.sni) for c in conns if c.sni} == snis
    # the HTTP hosts (a SOCKS or CONNECT tunnel's destination names its connection when a name)
    assert hosts <= {(c.server_ip, c.http_host) for c in conns if c.http_host}


def test_zeek_traces_what_the_tunnels_carry() -> None:
    _, conns, exchanges = decode(ZEEK / "socks-with-ssl.pcap")
    assert [(c.protocol, c.sni, c.http_host) for c in conns] == [("tls", "www.google.com", "www.google.com")]
    _, conns, exchanges = decode(ZEEK / "tunnels-socks.pcap")  # SOCKS4 to an address, HTTP inside
    assert [(c.protocol, c.http_host) for c in conns] == [("http", "www.icir.org")]
    assert [(e.method, e.url, e.status) for e in exchanges] == [("GET", "http://www.icir.org/", 200)]
    _, conns, exchanges = decode(ZEEK / "socks.pcap")  # SOCKS5 on port 8124
    assert len(exchanges) > 5 and {e.host for e in exchanges} == {"www.osnews.com"}
    _, conns, exchanges = decode(ZEEK / "http-connect-with-header.pcap")
    assert [(c.protocol, c.sni) for c in conns] == [("tls", "secure.newegg.com")]
    assert [(e.method, e.host, e.status) for e in exchanges] == [("CONNECT", "secure.newegg.com", 200)]
    _, conns, exchanges = decode(ZEEK / "http-connect-with-smtp.pcap")  # (SMTP inside: read no further)
    assert [(c.protocol, c.http_host) for c in conns] == [("http", "mailin03.sul.t-online.de")]
    assert [(e.method, e.status) for e in exchanges] == [("CONNECT", 200)]
    _, conns, _ = decode(ZEEK / "postgresql-psql-login.pcap")  # SSLRequest refused: a plaintext login
    assert [(c.protocol, c.sni) for c in conns] == [(None, None)]


# --------------------------------------------------------------------------------------------
# Real peers on loopback: openssl s_client, Python's mail clients, curl through proxies

PROTOS = ("smtp", "imap", "pop3", "xmpp", "ldap", "postgres")
TSHARK_NAMES = {"smtp": "smtp", "imap": "imap", "pop3": "pop", "xmpp": "xmpp", "ldap": "ldap", "postgres": "pgsql"}
#: the proxies: how curl is told to use one, and the name (a prefix of the host asked for)
PROXIES = {"socks5": ["--socks5-hostname"], "socks4a": ["--socks4a"], "auth": [], "connect": ["--proxytunnel", "-x"]}


class _Plain(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, int]]:
    """One capture of every STARTTLS accepted (openssl s_client) and refused, and of curl through
    SOCKS5, SOCKS4a, SOCKS5 with a password and CONNECT, to HTTPS and plain HTTP; its key log, and
    the ports."""
    if missing_tools():
        pytest.skip(f"needs {', '.join(missing_tools())}")
    d = tmp_path_factory.mktemp("preamble")
    cert = self_signed(d)
    kl = d / "keys.log"
    names = [*PROTOS, *(p + "-refused" for p in PROTOS), *PROXIES, "https", "http"]
    ports = {n: free_port() for n in names}
    cap = Capture(d / "preambles.pcapng", list(ports.values()))
    plain = ThreadingHTTPServer(("127.0.0.1", ports["http"]), _Plain)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    try:
        for p in PROTOS:
            with StartTlsServer(p, cert, ports[p]):
                s_client(p, ports[p], f"{p}.example", kl)
            with StartTlsServer(p, cert, ports[p + "-refused"], refuse=True):
                if p in ("smtp", "imap", "pop3"):  # (s_client does not look at the answer: it would hang)
                    refused_in_python(p, ports[p + "-refused"])
                else:
                    s_client(p, ports[p + "-refused"], f"{p}.example", kl)
        with (openssl_server(cert, ports["https"], []), Proxy(ports["socks5"]), Proxy(ports["socks4a"]),
              Proxy(ports["auth"], auth=True), Proxy(ports["connect"])):
            for name, args in PROXIES.items():
                via = (["-x", f"socks5h://user:secret@127.0.0.1:{ports[name]}"] if name == "auth"
                       else [*args, f"{'http://' if name == 'connect' else ''}127.0.0.1:{ports[name]}"])
                for scheme in ("https", "http"):
                    url = f"{scheme}://{scheme}.{name}.example:{ports[scheme]}/path?x=1"
                    assert curl_through(url, via, kl) == 0
            for name in ("socks5", "connect"):
                via = ["--socks5-hostname", f"127.0.0.1:{ports[name]}"] if name == "socks5" else [
                    "--proxytunnel", "-x", f"http://127.0.0.1:{ports[name]}"]
                assert curl_through(f"https://refused.example:{ports['https']}/", via, kl) != 0
    finally:
        plain.shutdown()
        path = cap.stop()
    return path, kl, ports


def decode_as(ports: dict[str, int]) -> list[str]:
    return [*(f"tcp.port=={ports[p]},{TSHARK_NAMES[p]}" for p in PROTOS),
            *(f"tcp.port=={ports[p + '-refused']},{TSHARK_NAMES[p]}" for p in PROTOS),
            *(f"tcp.port=={ports[p]},socks" for p in ("socks5", "socks4a", "auth")),
            f"tcp.port=={ports['connect']},http", f"tcp.port=={ports['https']},tls", f"tcp.port=={ports['http']},http"]


@needs_tools
def test_real_starttls_and_proxies_server_names_equal_tshark_s(live: tuple[Path, Path, dict[str, int]]) -> None:
    path, _, ports = live
    dec, conns, exchanges = decode(path)
    by_port = {port: name for name, port in ports.items()}
    assert dec.preambles == {
        **{f"{p}+starttls": 1 for p in ("smtp", "imap", "pop3", "xmpp", "ldap")}, "postgres+ssl": 1,
        **{f"{p} (plaintext)": 1 for p in PROTOS},  # the refusals
        "socks5": 4, "socks4a": 2, "http-connect": 2, "socks5 (plaintext)": 1, "http-connect (plaintext)": 1,
    }
    ours = {(by_port.get(c.server_port, "?"), c.sni) for c in conns if c.sni}
    hellos, _, _ = tshark_hellos(path, *decode_as(ports))
    assert hellos == {"127.0.0.1"}
    # tshark reads every STARTTLS, and TLS inside SOCKS5 and CONNECT; not SOCKS4a's (its names
    # are those the proxy's own connections to the server carry)
    theirs = {(by_port[int(port)], sni) for port, sni in tshark_snis(path, decode_as(ports))}
    assert theirs - {("socks4a", "https.socks4a.example")} == ours - {("socks4a", "https.socks4a.example")}
    assert {(p, f"{p}.example") for p in PROTOS} | {(n, f"https.{n}.example") for n in PROXIES} <= ours
    assert ("https", "https.socks4a.example") in theirs
    # a refusal is not misread: the connection stays plaintext (a refused CONNECT is read as HTTP)
    refused = {by_port[c.server_port]: c for c in conns if by_port.get(c.server_port, "").endswith("-refused")}
    assert {n: (c.protocol, c.sni) for n, c in refused.items()} == {p + "-refused": (None, None) for p in PROTOS}
    assert {(e.method, e.host, e.status) for e in exchanges if e.server_port == ports["connect"]} == {
        ("CONNECT", "https.connect.example", 200), ("CONNECT", "http.connect.example", 200),
        ("CONNECT", "refused.example", 403), ("GET", "http.connect.example", 200)}
    # plain HTTP through each proxy is read as HTTP
    assert {(by_port[e.server_port], e.host) for e in exchanges if e.method == "GET"} == {
        *((n, f"http.{n}.example") for n in PROXIES), ("http", "http.socks5.example"),
        ("http", "http.socks4a.example"), ("http", "http.auth.example"), ("http", "http.connect.example")}


def tshark_snis(path: Path, decode: list[str]) -> set[tuple[str, str]]:
    args = ["tshark", "-n", "-r", str(path)]
    for d in decode:
        args += ["-d", d]
    args += ["-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "tcp.dstport", "-e",
             "tls.handshake.extensions_server_name"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return {(line.split("\t")[0], line.split("\t")[1]) for line in out.splitlines() if line.split("\t")[1]}


@needs_tools
def test_with_the_key_log_the_tls_after_a_preamble_is_decrypted(live: tuple[Path, Path, dict[str, int]]) -> None:
    path, kl, ports = live
    doc = datareach.audit([path], keylog=[kl]).to_dict()
    dec = doc["inputs"][0]["decryption"]
    # six STARTTLS, four tunnels and the proxy's four connections to the server
    assert (dec["tls_connections"], dec["decrypted"], dec["unread"], dec["keys_failed"]) == (14, 14, 0, 0)
    by_port = {port: name for name, port in ports.items()}
    https = sorted((by_port[e["server_port"]], e["method"], e["url"]) for e in doc["exchanges"]
                   if e["scheme"] == "https")
    assert https == sorted([*((n, "GET", f"https://https.{n}.example:{ports['https']}/path?x=1") for n in PROXIES),
                            *(("https", "GET", f"https://https.{n}.example:{ports['https']}/path?x=1")
                              for n in PROXIES)])
    # tshark decrypts the same requests inside CONNECT, and on the proxy's own connections to the
    # server (not inside SOCKS: there, each tunnel's requests are those of the proxy's connection)
    args = ["tshark", "-n", "-r", str(path), "-o", f"tls.keylog_file:{kl}"]
    for d in decode_as(ports):
        args += ["-d", d]
    out = subprocess.run([*args, "-Y", "http.request && tls", "-T", "fields", "-e", "tcp.dstport", "-e", "http.host"],
                         capture_output=True, text=True, check=True).stdout
    theirs = sorted((by_port[int(p)], h.split(":")[0]) for p, h in (line.split("\t") for line in out.splitlines()))
    ours = sorted((n, url.split("/")[2].split(":")[0]) for n, _, url in https)
    assert theirs == sorted([("connect", "https.connect.example"), *((n, h) for n, h in ours if n == "https")])
    assert sorted(h for n, h in ours if n != "https") == sorted(h for n, h in theirs if n == "https")
