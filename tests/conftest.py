"""Shared builders of real protocol bytes for the tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import dns.message
import dns.rrset
import pytest

from datareach.ingest import read_input
from datareach.model import Connection, ConnectionBatch, DnsAnswer, Exchange, InputError, Record
from datareach.testing.capture import (
    LINKTYPE_ETHERNET,
    PcapngWriter,
    PcapWriter,
    link_frame,
    openssl_client_hello,
)

CLIENT = "192.168.1.23"


def client_hello(server_name: str, alpn: list[str] | None = None) -> bytes:
    """A genuine ClientHello (TLS records) written by this Python's OpenSSL."""
    return openssl_client_hello(server_name, alpn)


def dns_response(qname: str, answers: Iterable[tuple[str, str, str]], rdtype: str = "A") -> bytes:
    query = dns.message.make_query(qname, rdtype)
    resp = dns.message.make_response(query)
    for owner, atype, value in answers:
        resp.answer.append(dns.rrset.from_text(owner, 60, "IN", atype, value))
    return resp.to_wire()


def dns_query(qname: str, rdtype: str = "A") -> bytes:
    return dns.message.make_query(qname, rdtype).to_wire()


def write_pcap(path: Path, packets: Iterable[tuple[float, bytes]], linktype: int = LINKTYPE_ETHERNET,
               **kw: object) -> Path:
    """Write IP packets framed for ``linktype`` (direction from the source address)."""
    with open(path, "wb") as f:
        w = PcapWriter(f, linktype, **kw)  # type: ignore[arg-type]
        for ts, ip in sorted(packets, key=lambda p: p[0]):
            w.write(ts, link_frame(linktype, ip, outgoing=True))
    return path


def write_pcapng(path: Path, packets: Iterable[tuple[float, bytes]], linktype: int = LINKTYPE_ETHERNET) -> Path:
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        i = w.add_interface(linktype)
        for ts, ip in sorted(packets, key=lambda p: p[0]):
            w.write(ts, link_frame(linktype, ip), i)
    return path


class Records:
    def __init__(self, records: list[Record]) -> None:
        self.all = records
        self.connections = [r for r in records if isinstance(r, Connection)] + [
            c for r in records if isinstance(r, ConnectionBatch) for c in r.connections()]
        self.dns = [r for r in records if isinstance(r, DnsAnswer)]
        self.exchanges = [r for r in records if isinstance(r, Exchange)]
        self.errors = [r for r in records if isinstance(r, InputError)]

    def conn(self, server_port: int | None = None, server_ip: str | None = None) -> Connection:
        found = [c for c in self.connections
                 if (server_port is None or c.server_port == server_port)
                 and (server_ip is None or c.server_ip == server_ip)]
        assert len(found) == 1, found
        return found[0]


def read(path: Path) -> Records:
    return Records(list(read_input(path, 0)))


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The compiled geo and public-suffix indexes go to a temporary directory, never ~/.cache."""
    import os

    old = os.environ.get("DATAREACH_CACHE_DIR")
    os.environ["DATAREACH_CACHE_DIR"] = str(tmp_path_factory.mktemp("datareach-cache"))
    yield
    if old is None:
        del os.environ["DATAREACH_CACHE_DIR"]
    else:
        os.environ["DATAREACH_CACHE_DIR"] = old
