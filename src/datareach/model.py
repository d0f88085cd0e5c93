"""The records every reader yields, whatever the input format.

A reader in :mod:`datareach.ingest` turns one input file into a stream of these records:

* :class:`Connection` -- one transport conversation (TCP connection, UDP flow, or an HTTP
  exchange seen in a HAR file) with its byte counts and the names seen inside it (capture
  readers send them in bulk, as a :class:`ConnectionBatch`);
* :class:`DnsAnswer` -- one address learned from a DNS response, with its CNAME chain;
* :class:`Exchange` -- one HTTP request (and its response status where known);
* :class:`InputError` -- something in the input that could not be read, with its location.

The records are born here and enriched later by :mod:`datareach.resolve` (names, geography,
registrable domains), which works on whole columns at a time, not on these objects one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

Transport = Literal["tcp", "udp"]


@dataclass(slots=True)
class InputError:
    """Something in an input that could not be read.

    ``offset`` is the byte offset in the file where the bad data starts (pcap, pcapng);
    ``json_path`` locates it in a JSON document (HAR). ``fatal`` is true when reading stopped
    there; everything read before it is kept.
    """

    message: str
    offset: int | None = None
    json_path: str | None = None
    fatal: bool = False

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"message": self.message, "fatal": self.fatal}
        if self.offset is not None:
            out["offset"] = self.offset
        if self.json_path is not None:
            out["json_path"] = self.json_path
        return out


@dataclass(slots=True)
class Connection:
    """One conversation between a client and a server.

    "out" is client to server, "in" is server to client. Byte counts are transport payload
    bytes (TCP or UDP payload; headers are not counted). For HAR input they are the request and
    response sizes the HAR file records.
    """

    transport: Transport
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    first_seen: float
    last_seen: float
    packets_out: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    bytes_in: int = 0
    #: TLS ClientHello server_name (the outer name when ECH is used).
    sni: str | None = None
    #: server_name from the ClientHello inside decrypted QUIC Initial packets.
    quic_sni: str | None = None
    #: Host header of the first HTTP/1.x request on the connection (or the HAR URL's host).
    http_host: str | None = None
    #: True when the ClientHello carried an encrypted_client_hello extension.
    ech: bool = False
    #: Application protocol recognised in the payload: "tls", "quic", "http", "dns" or None.
    protocol: str | None = None
    alpn: tuple[str, ...] = ()
    #: App that owned the traffic where the capture says so (PCAPdroid trailer, HAR page).
    app: str | None = None
    input_index: int = 0
    #: How many transport flows (distinct 5-tuples) this record stands for: 1, except for DNS
    #: over UDP, where the look-ups of one client to one resolver make a single record.
    flows: int = 1


@dataclass(slots=True)
class DnsAnswer:
    """An address record from a DNS response.

    ``qname`` is the name the client asked for; ``cname_chain`` lists the names the answer went
    through, from ``qname`` to the name that carried the address (just ``(qname,)`` without a
    CNAME).
    """

    ts: float
    qname: str
    rtype: Literal["A", "AAAA"]
    address: str
    cname_chain: tuple[str, ...]
    ttl: int
    input_index: int = 0
    #: Index of the Connection record (within its input) whose traffic carried the answer.
    flow: int | None = None


@dataclass(slots=True)
class Exchange:
    """One HTTP request with, where known, its response status and size."""

    ts: float
    scheme: str
    method: str
    host: str
    url: str
    target: str
    http_version: str
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    request_body: bytes = b""
    #: True when the body was longer than the reader keeps, or the capture ended inside it.
    request_body_truncated: bool = False
    #: Size of the request body as read, set when the body itself is not kept.
    request_body_size: int | None = None
    status: int | None = None
    response_size: int | None = None
    server_ip: str | None = None
    server_port: int | None = None
    app: str | None = None
    input_index: int = 0
    client_ip: str | None = None
    client_port: int | None = None
    #: Index of the Connection record (within its input) that carried the request, where known.
    flow: int | None = None
    #: Personal data found in the request (:class:`datareach.detect.Finding`), set by the detect
    #: stage where the request was read (parallel readers run it in their own processes);
    #: None until it ran.
    findings: list[Any] | None = None
    #: What the detect stage's decoding limits cut in this request.
    decode_cuts: list[str] | None = None


#: Connection's fields, in order: the layout of a :class:`ConnectionBatch` row.
CONNECTION_FIELDS: tuple[str, ...] = tuple(Connection.__dataclass_fields__)


@dataclass(slots=True)
class ConnectionBatch:
    """Many connections at once, as rows of :data:`CONNECTION_FIELDS` values.

    Capture readers end with one of these instead of one :class:`Connection` per flow: a capture
    holds hundreds of thousands of connections, and they go straight into Arrow columns.
    """

    rows: list[tuple[Any, ...]]

    def connections(self) -> list[Connection]:
        return [Connection(*row) for row in self.rows]


Record: TypeAlias = Connection | ConnectionBatch | DnsAnswer | Exchange | InputError

#: Called by readers with the number of bytes of the input consumed so far.
ProgressCallback: TypeAlias = Callable[[int], None]


class Reader(Protocol):
    """What every module in :mod:`datareach.ingest` provides."""

    def __call__(
        self, path: Path, input_index: int, progress: ProgressCallback | None = None
    ) -> Iterator[Record]: ...
