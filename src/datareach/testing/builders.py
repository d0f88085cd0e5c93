"""Made-up sessions for the tests, as real protocol bytes and as capture files.

The messages come from real implementations: ClientHellos from OpenSSL (Python's :mod:`ssl`),
DNS messages from dnspython, QUIC Initial packets from aioquic. The flows and files are
written by :mod:`datareach.testing.capture`. Reading a capture back into records for
assertions is :mod:`datareach.testing.records`.

dnspython and aioquic are test dependencies (the ``test`` extra): this module imports them, the
product never imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import dns.message
import dns.rrset

from datareach.testing.capture import (
    LINKTYPE_ETHERNET,
    Packet,
    PcapngWriter,
    PcapWriter,
    TcpSession,
    UdpFlow,
    link_frame,
    openssl_client_hello,
)

__all__ = [
    "CLIENT",
    "SERVER4",
    "aioquic_initials",
    "client_hello",
    "dns_query",
    "dns_response",
    "naming_capture",
    "tls_session",
    "write_pcap",
    "write_pcapng",
]

#: The device whose traffic the test captures hold.
CLIENT: Final = "192.168.1.23"
#: The server of :func:`tls_session` unless told otherwise.
SERVER4: Final = "142.250.185.110"


# --------------------------------------------------------------------------------------------
# Messages


def client_hello(server_name: str, alpn: Sequence[str] | None = None) -> bytes:
    """A genuine ClientHello (TLS records) written by this Python's OpenSSL."""
    return openssl_client_hello(server_name, alpn)


def dns_response(qname: str, answers: Iterable[tuple[str, str, str]], rdtype: str = "A") -> bytes:
    """A response to a ``rdtype`` query for ``qname`` with ``(owner, type, value)`` answers (TTL 60)."""
    query = dns.message.make_query(qname, rdtype)
    resp = dns.message.make_response(query)
    for owner, atype, value in answers:
        resp.answer.append(dns.rrset.from_text(owner, 60, "IN", atype, value))
    return resp.to_wire()


def dns_query(qname: str, rdtype: str = "A") -> bytes:
    return dns.message.make_query(qname, rdtype).to_wire()


def aioquic_initials(host: str, version: int | None = None, big: bool = False) -> list[bytes]:
    """The UDP payloads of an aioquic client's first flight to ``host`` (QUIC Initial packets).

    ``version`` pins the QUIC version (e.g. 0x6B3343CF, v2); ``big`` adds 40 long ALPN names so
    that the ClientHello spans several Initial packets.
    """
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    cfg = QuicConfiguration(is_client=True, server_name=host, alpn_protocols=["h3"])
    if version is not None:
        cfg.original_version = version
        cfg.supported_versions = [version]
    if big:
        cfg.alpn_protocols = [f"proto-{i:03d}-" + "x" * 40 for i in range(40)]
    conn = QuicConnection(configuration=cfg)
    conn.connect(("142.250.185.99", 443), now=1.0)
    return [d for d, _ in conn.datagrams_to_send(now=1.0)]


# --------------------------------------------------------------------------------------------
# Flows


def tls_session(host: str, client: str = CLIENT, server: str = SERVER4, segments: tuple[int, ...] = (),
                start: float = 1_700_000_000.0, *, order: Sequence[int] | None = None,
                retransmit: Sequence[int] = (), port: int = 443) -> list[Packet]:
    """A TCP connection to port ``port`` (443) carrying a ClientHello for ``host`` (ALPN h2, http/1.1),
    a server flight of 1,200 bytes, and a close. ``segments``, ``order`` and ``retransmit``
    split, reorder and repeat the ClientHello's segments (see :meth:`TcpSession.send`)."""
    s = TcpSession(client, 50123, server, port, start=start)
    pkts = s.handshake()
    pkts += s.send(client_hello(host, ["h2", "http/1.1"]), segments=segments, order=order, retransmit=retransmit)
    pkts += s.server_send(b"\x16\x03\x03" + bytes(1200))
    pkts += s.close()
    return pkts


# --------------------------------------------------------------------------------------------
# Files


def write_pcap(path: Path, packets: Iterable[tuple[float, bytes]], linktype: int = LINKTYPE_ETHERNET, *,
               nanosecond: bool = False, big_endian: bool = False) -> Path:
    """Write IP packets framed for ``linktype`` (direction from the source address), in time order."""
    with open(path, "wb") as f:
        w = PcapWriter(f, linktype, nanosecond=nanosecond, big_endian=big_endian)
        for ts, ip in sorted(packets, key=lambda p: p[0]):
            w.write(ts, link_frame(linktype, ip, outgoing=True))
    return path


def write_pcapng(path: Path, packets: Iterable[tuple[float, bytes]], linktype: int = LINKTYPE_ETHERNET) -> Path:
    """Write IP packets on one pcapng interface of ``linktype``, in time order."""
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        i = w.add_interface(linktype)
        for ts, ip in sorted(packets, key=lambda p: p[0]):
            w.write(ts, link_frame(linktype, ip), i)
    return path


def naming_capture(directory: Path) -> Path:
    """``directory/naming.pcap``: connections named by each kind of evidence.

    One IP (142.250.185.200) is answered for two names at different times (the second through
    a CNAME chain) and reached over a non-TLS protocol after each answer, then over TLS with an
    SNI of its own; plain HTTP goes to an address nothing resolved; one connection
    (151.101.1.1:8443) has nothing that names it.
    """
    t0 = 1_760_000_000.0
    pkts: list[Packet] = []
    u = UdpFlow(CLIENT, 40000, "8.8.8.8", 53, start=t0)
    pkts += u.exchange(dns_query("first.example.com"), dns_response("first.example.com.", [
        ("first.example.com.", "A", "142.250.185.200")]))
    # a non-TLS, non-HTTP connection: only DNS can name it
    s = TcpSession(CLIENT, 40001, "142.250.185.200", 5228, start=t0 + 1)
    pkts += s.handshake() + s.client_send(b"\x00\x01binary-protocol-hello") + s.close()
    u2 = UdpFlow(CLIENT, 40002, "8.8.8.8", 53, start=t0 + 10)
    pkts += u2.exchange(dns_query("second.example.org"), dns_response("second.example.org.", [
        ("second.example.org.", "CNAME", "edge.cdn.example.net."),
        ("edge.cdn.example.net.", "A", "142.250.185.200")]))
    s2 = TcpSession(CLIENT, 40003, "142.250.185.200", 5228, start=t0 + 11)
    pkts += s2.handshake() + s2.client_send(b"\x00\x01binary-protocol-hello") + s2.close()
    # TLS to the same IP: the SNI wins over DNS
    s3 = TcpSession(CLIENT, 40004, "142.250.185.200", 443, start=t0 + 12)
    pkts += s3.handshake() + s3.client_send(client_hello("sni.example.com")) + s3.close()
    # plain HTTP to an IP nothing resolved
    s4 = TcpSession(CLIENT, 40005, "93.184.216.34", 80, start=t0 + 13)
    pkts += s4.handshake() + s4.client_send(b"GET /track?id=1 HTTP/1.1\r\nHost: Tracker.Example.NET:80\r\n\r\n")
    pkts += s4.server_send(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n") + s4.close()
    # nothing names this one
    s5 = TcpSession(CLIENT, 40006, "151.101.1.1", 8443, start=t0 + 14)
    pkts += s5.handshake() + s5.client_send(b"\x00" * 40) + s5.close()
    return write_pcap(directory / "naming.pcap", pkts)
