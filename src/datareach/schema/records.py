"""Every record the pipeline carries, declared once.

Each record is a class whose fields are annotated with their Python type *and* their column
(:class:`Col`: Arrow type, whether the JSON document carries it, and what it means). From that
one declaration come:

* the typed row object (a slotted dataclass: what readers build and tests read);
* :func:`fields` -- the field names in order, which is also the layout of the row tuples that
  the capture hot path builds without objects (:class:`ConnectionBatch`);
* :func:`arrow_schema` -- the Arrow schema of the record's table (what :mod:`datareach.enrich`
  works on, and what the DuckDB and Spark engines will read);
* :func:`json_fields` -- the fields of the record in the JSON document, which
  :mod:`datareach.schema.contract` checks docs/json-output.md and ``datareach diff``'s
  validator against.

Records refer to each other by stable ids, as Zeek's logs do: a connection has a ``uid``
(``C<input>.<n>``, the n-th connection its input's reader saw), which the DNS answers and HTTP
exchanges it carried repeat; an exchange has an ``id`` (``E<input>.<n>``) that findings name.

Where each record is born and where it is enriched: docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    Protocol,
    TypeAlias,
    TypeVar,
    dataclass_transform,
    get_type_hints,
)

if TYPE_CHECKING:
    import pyarrow as pa

Transport = Literal["tcp", "udp"]


@dataclass(frozen=True, slots=True)
class Col:
    """A record field's column: its Arrow type, its place in the JSON document and its meaning.

    ``arrow`` is an Arrow type name: ``string``, ``int32``, ``int64``, ``float64``, ``bool``,
    ``binary``, ``list<string>``, ``list<int64>``, ``list<header>`` (name/value pairs), or
    ``json`` (a nested value kept as a Python object in rows and as JSON text in Arrow columns;
    :class:`JsonCodec` makes and reads the texts within one run).
    ``json`` is the field's JSON type in the document (``None``: not in the document);
    ``required`` says whether a JSON reader may rely on it being there; ``key`` is the field's
    key in the JSON document when it is not the field's name.
    """

    arrow: str
    doc: str = ""
    json: str | None = None
    required: bool = False
    key: str | None = None


def _c(arrow: str, doc: str = "", json: str | None = None, required: bool = False, key: str | None = None) -> Col:
    return Col(arrow, doc, json, required, key)


R = TypeVar("R")


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[R]) -> type[R]:
    """Make ``cls`` a slotted dataclass; its columns are read from the annotations (:func:`columns`)."""
    return dataclass(slots=True)(cls)


@functools.cache
def columns(cls: type) -> tuple[tuple[str, Col], ...]:
    """The record's (field name, :class:`Col`) pairs, in declaration order."""
    hints = get_type_hints(cls, include_extras=True)
    out: list[tuple[str, Col]] = []
    for f in dataclasses.fields(cls):
        meta = getattr(hints[f.name], "__metadata__", ())
        col = next((m for m in meta if isinstance(m, Col)), None)
        if col is None:
            raise TypeError(f"{cls.__name__}.{f.name} has no Col annotation")
        out.append((f.name, col))
    return tuple(out)


@functools.cache
def fields(cls: type) -> tuple[str, ...]:
    """The record's field names in order: also the layout of its row tuples."""
    return tuple(f.name for f in dataclasses.fields(cls))


def json_fields(cls: type) -> dict[str, Col]:
    """The fields the JSON document carries for this record, in order."""
    return {name: col for name, col in columns(cls) if col.json is not None}


def to_document(obj: Any, **computed: Any) -> dict[str, Any]:
    """A record as the JSON document has it: its JSON fields in declared order, under their
    keys; ``time`` fields as ISO text; a field that is None and whose kind is not nullable
    (``int``, ``str`` ... rather than ``int?``) left out, as "absent when unknown". ``computed``
    gives the values of fields the record holds in another form."""
    from datareach.timestamps import iso

    out: dict[str, Any] = {}
    for name, col in json_fields(type(obj)).items():
        value = computed[name] if name in computed else getattr(obj, name)
        kind = col.json or ""
        if kind == "time" and isinstance(value, int | float):
            value = iso(value)
        elif value is None and not kind.endswith("?") and kind != "time":
            continue
        out[col.key or name] = value
    return out


def _fits(arrow: str, value: Any) -> bool:
    if value is None:
        return True
    if arrow == "string":
        return isinstance(value, str)
    if arrow in ("int32", "int64"):
        return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 63)
    if arrow == "float64":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if arrow == "bool":
        return isinstance(value, bool)
    if arrow == "binary":
        return isinstance(value, bytes | bytearray)
    if arrow == "list<string>":
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if arrow == "list<int64>":
        return isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if arrow == "list<header>":
        return isinstance(value, list | tuple) and all(
            isinstance(h, list | tuple) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in value)
    return True  # json: any value


def row_problem(cls: type, values: Sequence[Any]) -> str | None:
    """What is wrong with ``values`` as a row of ``cls`` (field count, a value of the wrong type),
    or None. For records made by code datareach does not control (plugins)."""
    cols = columns(cls)
    if len(values) != len(cols):
        return f"a {cls.__name__} row has {len(values)} values, not {len(cols)}"
    for (name, col), value in zip(cols, values, strict=True):
        if not _fits(col.arrow, value):
            return f"{cls.__name__}.{name} is {type(value).__name__} {str(value)[:40]!r}, not {col.arrow}"
    return None


def arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    simple = {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64(), "float64": pa.float64(),
              "bool": pa.bool_(), "binary": pa.binary(), "json": pa.string(),
              "list<string>": pa.list_(pa.string()), "list<int64>": pa.list_(pa.int64()),
              "list<header>": pa.list_(pa.struct([("name", pa.string()), ("value", pa.string())]))}
    try:
        return simple[name]
    except KeyError:
        raise TypeError(f"unknown column type {name!r}") from None


@functools.cache
def arrow_schema(cls: type) -> pa.Schema:
    """The Arrow schema of a table of ``cls`` records (imports pyarrow)."""
    import pyarrow as pa

    return pa.schema([pa.field(name, arrow_type(col.arrow), metadata={"doc": col.doc} if col.doc else None)
                      for name, col in columns(cls)])


# -- the records -------------------------------------------------------------------------------


@record
class InputError:
    """Something in an input that could not be read.

    ``offset`` is the byte offset in the file where the bad data starts (pcap, pcapng);
    ``json_path`` locates it in a JSON document (HAR). ``fatal`` is true when reading stopped
    there; everything read before it is kept.
    """

    message: Annotated[str, _c("string", "what could not be read, and why", "str", True)]
    #: Both absent from the JSON document when not known (:meth:`to_json`), never null.
    offset: Annotated[int | None, _c("int64", "byte offset in the file where the bad data starts", "int")] = None
    json_path: Annotated[str | None, _c("string", "where in a JSON input (HAR)", "str")] = None
    fatal: Annotated[bool, _c("bool", "reading stopped there (what came before is kept)", "bool", True)] = False

    def to_json(self) -> dict[str, object]:
        return to_document(self)


@record
class Connection:
    """One conversation between a client and a server (born in :mod:`datareach.dissect.packets`
    for captures, :mod:`datareach.sources.har` and :mod:`datareach.sources.mitm` otherwise).

    "out" is client to server, "in" is server to client. Byte counts are transport payload
    bytes (TCP or UDP payload; headers are not counted). For HAR input they are the request and
    response sizes the HAR file records. The TLS and QUIC hello's facts (server name, ALPN,
    ECH) are columns of the connection, one hello per connection.
    """

    uid: Annotated[str, _c("string", "the connection's id (C<input>.<n>); exchanges and DNS answers repeat it")]
    transport: Annotated[Transport, _c("string", "tcp or udp")]
    client_ip: Annotated[str, _c("string", "the side that opened the connection")]
    client_port: Annotated[int, _c("int32")]
    server_ip: Annotated[str, _c("string")]
    server_port: Annotated[int, _c("int32")]
    first_seen: Annotated[float, _c("float64", "first packet, seconds since the epoch")]
    last_seen: Annotated[float, _c("float64", "last packet, seconds since the epoch")]
    packets_out: Annotated[int, _c("int64")] = 0
    bytes_out: Annotated[int, _c("int64", "payload bytes client to server")] = 0
    packets_in: Annotated[int, _c("int64")] = 0
    bytes_in: Annotated[int, _c("int64", "payload bytes server to client")] = 0
    sni: Annotated[str | None, _c("string", "TLS ClientHello server_name (the outer name with ECH)")] = None
    quic_sni: Annotated[str | None, _c("string", "server_name of the ClientHello in decrypted QUIC Initials")] = None
    http_host: Annotated[str | None, _c("string", "Host of the first plain-HTTP request (or the HAR URL's host)")] = None
    ech: Annotated[bool, _c("bool", "the ClientHello carried encrypted_client_hello")] = False
    protocol: Annotated[str | None, _c("string", "tls, quic, http or dns, recognised in the payload")] = None
    alpn: Annotated[tuple[str, ...], _c("list<string>", "ALPN offered in the ClientHello")] = ()
    app: Annotated[str | None, _c("string", "the app, where the capture says (PCAPdroid trailer, HAR page)")] = None
    input_index: Annotated[int, _c("int32", "index into the audit's inputs")] = 0
    flows: Annotated[int, _c("int64", "transport flows this record stands for (DNS over UDP: one per look-up)")] = 1
    tunnel: Annotated[str | None, _c("string", "the tunnels the connection was seen in, outermost first "
                                             "(e.g. GRE 192.0.2.1>192.0.2.2); None when seen bare")] = None


@record
class DnsAnswer:
    """An address record from a DNS response (born in :mod:`datareach.dissect.packets`).

    ``qname`` is the name the client asked for; ``cname_chain`` lists the names the answer went
    through, from ``qname`` to the name that carried the address (just ``(qname,)`` without a
    CNAME).
    """

    ts: Annotated[float, _c("float64", "when the answer was seen")]
    qname: Annotated[str, _c("string", "the name asked for", "str", True)]
    rtype: Annotated[Literal["A", "AAAA"], _c("string", "A or AAAA", "str", True)]
    address: Annotated[str, _c("string", "the address answered", "str", True)]
    cname_chain: Annotated[tuple[str, ...], _c("list<string>", "qname, then each CNAME target", "list[str]")]
    ttl: Annotated[int, _c("int64", "TTL of the address record", "int")]
    input_index: Annotated[int, _c("int32")] = 0
    #: The connection that carried the answer.
    uid: Annotated[str | None, _c("string", "uid of the connection that carried the answer")] = None


@record
class Exchange:
    """One HTTP request with, where known, its response status and size (born in
    :mod:`datareach.dissect.packets` for plain HTTP in captures, and in the HAR and mitmproxy
    sources). The detect stage adds ``findings`` and ``decode_cuts``."""

    ts: Annotated[float, _c("float64", "when the request was sent", "time", True)]
    scheme: Annotated[str, _c("string", "http, https, ws or wss", "str", True)]
    method: Annotated[str, _c("string", "", "str", True)]
    host: Annotated[str, _c("string", "Host of the request (lower case)", "str", True)]
    url: Annotated[str, _c("string", "the full URL (found values redacted unless revealed)", "str", True)]
    target: Annotated[str, _c("string", "the request target as sent")]
    http_version: Annotated[str, _c("string", "HTTP/1.1, HTTP/2, HTTP/3 ...", "str", True)]
    request_headers: Annotated[list[tuple[str, str]], _c("list<header>", "request headers, in order")] = field(
        default_factory=list)
    request_body: Annotated[bytes, _c("binary", "the body as read (empty when not kept)")] = b""
    request_body_truncated: Annotated[bool, _c("bool", "the body was longer than the reader keeps, or cut", "bool")] = False
    #: Size of the request body as read, set when the body itself is not kept.
    request_body_size: Annotated[int | None, _c("int64", "size of the request body as read", "int")] = None
    status: Annotated[int | None, _c("int32", "response status", "int?")] = None
    response_size: Annotated[int | None, _c("int64", "response body size", "int?")] = None
    server_ip: Annotated[str | None, _c("string", "", "str?")] = None
    server_port: Annotated[int | None, _c("int32", "", "int?")] = None
    app: Annotated[str | None, _c("string", "the app that sent it, where known", "str?")] = None
    input_index: Annotated[int, _c("int32", "index into inputs[]", "int", key="input")] = 0
    client_ip: Annotated[str | None, _c("string")] = None
    client_port: Annotated[int | None, _c("int32")] = None
    #: The connection that carried the request, where known.
    uid: Annotated[str | None, _c("string", "uid of the connection that carried it (null: not known)", "str?")] = None
    #: The exchange's own id, given when the audit orders its exchanges.
    id: Annotated[str | None, _c("string", "the exchange's id (E<input>.<n>), which findings name", "str", True)] = None
    #: Personal data found in the request (:class:`datareach.detect.Finding`), set by the detect
    #: stage where the request was read; None until it ran.
    findings: Annotated[list[Any] | None, _c("json", "findings of the detect stage (its own table in the JSON)")] = None
    #: What the detect stage's decoding limits cut in this request.
    decode_cuts: Annotated[list[str] | None, _c("list<string>", "what the decoding limits cut", "list[str]")] = None


@record
class Finding:
    """Personal data found in one request (born in :mod:`datareach.detect`, as
    :class:`datareach.detect.Finding`; this is its row in the audit)."""

    id: Annotated[str, _c("string", "the finding's id (F<n>), which violations name", "str", True)]
    exchange: Annotated[str, _c("string", "id of the exchange it was found in", "str", True)]
    uid: Annotated[str | None, _c("string", "uid of the connection that carried the exchange", "str?")]
    host: Annotated[str, _c("string", "", "str", True)]
    app: Annotated[str | None, _c("string", "", "str?")]
    data_type: Annotated[str, _c("string", "kind of personal data, e.g. email, advertising_id", "str", True)]
    categories: Annotated[list[str], _c("list<string>", "regulatory categories of the data type", "list[str]")]
    source: Annotated[str, _c("string", "profile (a known value) or pattern", "str", True)]
    encoding: Annotated[list[str], _c("list<string>", "the decoding chain that revealed it", "list[str]")]
    location: Annotated[str, _c("string", "where in the request", "str", True)]
    value_redacted: Annotated[str, _c("string", "the value, redacted", "str", True)]
    confidence: Annotated[float, _c("float64", "", "num")]
    #: https or wss: the request was encrypted on the wire (read from a decrypted capture, a HAR
    #: file or a proxy), so only the endpoint could read it
    encrypted_in_transit: Annotated[bool, _c("bool", "the request travelled encrypted (https, wss)", "bool")] = False
    #: The value itself, only with ``--reveal`` (absent from the JSON document otherwise).
    value: Annotated[str | None, _c("string", "the value itself: only with --reveal", "str")] = None


@record
class Server:
    """One server address of a destination, with its geography (born in
    :func:`datareach.enrich.stages.group_destinations`, enriched by the geo stage)."""

    ip: Annotated[str, _c("string", "", "str", True)]
    ip_scope: Annotated[str | None, _c("string", "", "str?")]
    country: Annotated[str | None, _c("string", "", "str?")]
    asn: Annotated[int | None, _c("int64", "", "int?")]
    as_org: Annotated[str | None, _c("string", "", "str?")]
    anycast: Annotated[dict[str, Any] | None, _c("json", "anycast / CDN edge label: the country is not where the data is",
                                                  "dict?")]


@record
class Destination:
    """Connections grouped by (app, host): born in :func:`datareach.enrich.stages.group_destinations`,
    then enriched by the destination stages with geography, registrable domain, owner and reach,
    and data types."""

    id: Annotated[str, _c("string", "the destination's id (D<n>), which violations name", "str", True)]
    host: Annotated[str, _c("string", "", "str", True)]
    registrable_domain: Annotated[str | None, _c("string", "", "str?")]
    name_source: Annotated[str, _c("string", "best evidence for host", "str", True)]
    name_sources: Annotated[list[str], _c("list<string>", "", "list[str]")]
    names: Annotated[list[str], _c("list<string>", "", "list[str]")]
    cname_chain: Annotated[list[str], _c("list<string>", "", "list[str]")]
    ips: Annotated[list[str], _c("list<string>", "", "list[str]")]
    ports: Annotated[list[int], _c("list<int64>", "", "list[int]")]
    transports: Annotated[list[str], _c("list<string>", "", "list[str]")]
    protocols: Annotated[list[str], _c("list<string>", "", "list[str]")]
    ip_scope: Annotated[str | None, _c("string", "", "str?")]
    country: Annotated[str | None, _c("string", "", "str?")]
    countries: Annotated[list[str], _c("list<string>", "", "list[str]")]
    asn: Annotated[int | None, _c("int64", "", "int?")]
    as_org: Annotated[str | None, _c("string", "", "str?")]
    servers: Annotated[list[dict[str, Any]], _c("json", "Server records, most bytes first", "list[dict]")]
    bytes_out: Annotated[int, _c("int64", "", "int", True)]
    bytes_in: Annotated[int, _c("int64", "", "int", True)]
    packets_out: Annotated[int, _c("int64", "", "int")]
    packets_in: Annotated[int, _c("int64", "", "int")]
    connections: Annotated[int, _c("int64", "", "int", True)]
    first_seen: Annotated[str | None, _c("string", "", "time")]
    last_seen: Annotated[str | None, _c("string", "", "time")]
    ech: Annotated[bool, _c("bool", "", "bool")]
    decrypted: Annotated[str | None, _c("string", "TLS/QUIC connections decrypted: all, some, none (null: none encrypted)",
                                        "str?")]
    app: Annotated[str | None, _c("string", "", "str?")]
    inputs: Annotated[list[int], _c("list<int64>", "", "list[int]")]
    tunnels: Annotated[list[str], _c("list<string>", "tunnels its connections were seen in (Connection.tunnel)",
                                     "list[str]")]
    encrypted_dns: Annotated[str | None, _c("string", "dns-over-tls, dns-over-quic or dns-over-https: a resolver "
                                                      "the client's look-ups went to, encrypted", "str?")]
    uids: Annotated[list[str], _c("list<string>", "uids of its connections (not in the JSON document)")]
    owner: Annotated[dict[str, Any] | None, _c("json", "enrich.ownership", "dict?")] = None
    hosting: Annotated[list[dict[str, Any]], _c("json", "enrich.ownership: who hosts it (platform, CNAME target, "
                                                "network operator), never the owner", "list[dict]")] = field(
        default_factory=list)
    service: Annotated[dict[str, Any] | None, _c("json", "enrich.services: the SDK or service product and its "
                                                         "purpose", "dict?")] = None
    reach: Annotated[list[dict[str, Any]], _c("json", "enrich.ownership", "list[dict]")] = field(
        default_factory=list)
    data_types: Annotated[list[str], _c("list<string>", "enrich data types", "list[str]")] = field(
        default_factory=list)
    data_categories: Annotated[list[str], _c("list<string>", "", "list[str]")] = field(default_factory=list)
    clients: Annotated[int | None, _c("int64", "distinct client devices (log audits; null for a capture)",
                                      "int?")] = None


@record
class OwnerSummary:
    """An organisation's traffic to one owner (born in :mod:`datareach.engine.orgscale`, log audits)."""

    owner_id: Annotated[str, _c("string", "the owner's knowledge-base entity", "str", True)]
    owner: Annotated[str, _c("string", "", "str", True)]
    parent_id: Annotated[str | None, _c("string", "its ultimate parent's entity", "str?")]
    parent: Annotated[str | None, _c("string", "", "str?")]
    jurisdictions: Annotated[list[str], _c("list<string>", "every state whose laws reach it, any basis", "list[str]")]
    bases: Annotated[list[str], _c("list<string>", "'<jurisdiction>: <bases>' for each", "list[str]")]
    covered: Annotated[bool, _c("bool", "a covered person under us-doj-bulk-data (28 CFR 202.211)", "bool")]
    bytes_out: Annotated[int, _c("int64", "", "int", True)]
    bytes_in: Annotated[int, _c("int64", "", "int", True)]
    connections: Annotated[int, _c("int64", "", "int", True)]
    clients: Annotated[int, _c("int64", "distinct client devices (MAC where logged, else address)", "int", True)]
    destinations: Annotated[int, _c("int64", "distinct hosts", "int")]
    first_seen: Annotated[str | None, _c("string", "", "time")]
    last_seen: Annotated[str | None, _c("string", "", "time")]


@record
class ClientSummary:
    """One client device's traffic to covered owners (born in :mod:`datareach.engine.orgscale`)."""

    client: Annotated[str, _c("string", "the device's key: its MAC where logged, else its address", "str", True)]
    client_ip: Annotated[str | None, _c("string", "", "str?")]
    client_mac: Annotated[str | None, _c("string", "", "str?")]
    host_name: Annotated[str | None, _c("string", "from its DHCP lease", "str?")]
    owners: Annotated[list[str], _c("list<string>", "the covered owners it talks to", "list[str]")]
    bytes_out: Annotated[int, _c("int64", "", "int", True)]
    bytes_in: Annotated[int, _c("int64", "", "int", True)]
    connections: Annotated[int, _c("int64", "", "int", True)]


@record
class BulkCount:
    """The bulk-data count for one covered counterparty and data category, judged against the
    thresholds of 28 CFR 202.205 (born in :mod:`datareach.assess.bulk`)."""

    counterparty_id: Annotated[str, _c("string", "the covered owner's entity", "str", True)]
    counterparty: Annotated[str, _c("string", "", "str", True)]
    parent: Annotated[str | None, _c("string", "", "str?")]
    category: Annotated[str | None, _c("string", "us-doj category; null: nothing readable", "str?")]
    unit: Annotated[str | None, _c("string", "devices or persons", "str?")]
    threshold: Annotated[int | None, _c("int64", "more than this many is bulk", "int?")]
    identified: Annotated[int, _c("int64", "distinct identifiers found in readable payloads", "int", True)]
    identifier_kinds: Annotated[list[str], _c("list<string>", "", "list[str]")]
    screening: Annotated[int, _c("int64", "distinct client devices in the metadata", "int", True)]
    period_days: Annotated[float, _c("float64", "days the logs cover", "num")]
    readable_share: Annotated[float, _c("float64", "share of its connections whose payload was read", "num")]
    verdict: Annotated[str, _c("string", "above, below or cannot tell", "str", True)]
    reason: Annotated[str, _c("string", "", "str", True)]
    bounds: Annotated[str, _c("string", "what the count can and cannot show", "str", True)]


@record
class Violation:
    """A policy rule that a destination breaks (born in :mod:`datareach.assess.evaluate`)."""

    policy: Annotated[str, _c("string", "the policy's id", "str", True)]
    rule: Annotated[str, _c("string", "the rule's id", "str", True)]
    action: Annotated[str, _c("string", "deny or warn", "str", True)]
    title: Annotated[str | None, _c("string", "", "str?")]
    citation: Annotated[str | None, _c("string", "", "str?")]
    destination: Annotated[str, _c("string", "id of the destination", "str")]
    host: Annotated[str, _c("string", "", "str", True)]
    app: Annotated[str | None, _c("string", "", "str?")]
    jurisdictions: Annotated[list[str], _c("list<string>", "", "list[str]")]
    bases: Annotated[list[str], _c("list<string>", "", "list[str]")]
    paths: Annotated[list[dict[str, Any]], _c("json", "jurisdiction, basis and path of each ground", "list[dict]")]
    data_types: Annotated[list[str], _c("list<string>", "", "list[str]")]
    data_categories: Annotated[list[str], _c("list<string>", "", "list[str]")]
    findings: Annotated[list[str], _c("list<string>", "ids of the findings involved", "list[str]")]
    reasoning: Annotated[str, _c("string", "", "str")]
    mechanism: Annotated[str | None, _c("string", "", "str?")]
    sources: Annotated[list[str], _c("json", "URLs behind the rule", "list[str]")]
    allowed: Annotated[dict[str, Any] | None, _c("json", "the allow entry that covers it", "dict?")]


@dataclass(slots=True)
class Decryption:
    """What a capture reader did with the encrypted connections of its input (born in
    :mod:`datareach.dissect.packets`, with :class:`datareach.dissect.tlsdecrypt.DecryptStats`):
    the engine puts :meth:`to_dict` in the input's report, and the uids of the connections it
    decrypted mark their destinations."""

    #: TLS connections whose ClientHello was read, and QUIC connections whose Initial was
    tls_connections: int = 0
    quic_connections: int = 0
    #: whether any key was given for this input (a key log, or Decryption Secrets Blocks in it)
    keys: bool = False
    #: the decryptor's counts (DecryptStats.to_dict); empty without keys
    counts: dict[str, Any] = field(default_factory=dict)
    #: the key sources found in the input itself (Decryption Secrets Blocks), as KeySource.to_dict
    sources: list[dict[str, Any]] = field(default_factory=list)
    #: uids of the connections with at least one record decrypted
    uids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        decrypted = int(c.get("decrypted", 0))
        return {
            "keys": self.keys,
            "tls_connections": self.tls_connections,
            "quic_connections": self.quic_connections,
            "decrypted": decrypted,
            "unread": self.tls_connections + self.quic_connections - decrypted,
            **{k: v for k, v in c.items() if k != "decrypted"},
            "key_sources_in_input": self.sources,
        }


#: Above this share of an input's frames or bytes not decoded, the report warns.
UNDECODED_WARNING_SHARE = 0.01
#: Distinct reasons kept per list; the rest are summed under "other reasons".
MAX_ACCOUNTING_REASONS = 64


@dataclass(slots=True)
class PacketAccounting:
    """What became of every frame of a capture (born in :mod:`datareach.dissect.packets`; the
    engine puts :meth:`to_dict` in the input's report as ``packets``).

    Each list maps a reason to ``[frames, bytes]`` (captured bytes). ``not_ip``: frames that were
    understood and carry no IP traffic (ARP, LLDP, 802.11 management frames...). ``not_decoded``:
    frames that could not be interpreted (an unsupported encapsulation, an encrypted 802.11 frame,
    an IP fragment never completed, a header cut short). Every other frame was decoded.
    ``tunnelled``: frames read inside a tunnel, by its outermost kind.
    """

    frames: int = 0
    bytes: int = 0
    not_ip: dict[str, list[int]] = field(default_factory=dict)
    not_decoded: dict[str, list[int]] = field(default_factory=dict)
    tunnelled: dict[str, list[int]] = field(default_factory=dict)
    #: IP datagrams put together from fragments
    reassembled: int = 0

    def add(self, other: PacketAccounting) -> None:
        self.frames += other.frames
        self.bytes += other.bytes
        self.reassembled += other.reassembled
        for mine, theirs in ((self.not_ip, other.not_ip), (self.not_decoded, other.not_decoded),
                             (self.tunnelled, other.tunnelled)):
            for reason, (f, b) in theirs.items():
                count(mine, reason, f, b)

    def to_dict(self) -> dict[str, Any]:
        def rows(d: dict[str, list[int]], key: str = "reason") -> list[dict[str, Any]]:
            return [{key: r, "frames": f, "bytes": b}
                    for r, (f, b) in sorted(d.items(), key=lambda kv: (-kv[1][0], kv[0]))]

        bad_f = sum(f for f, _ in self.not_decoded.values())
        bad_b = sum(b for _, b in self.not_decoded.values())
        other_f = bad_f + sum(f for f, _ in self.not_ip.values())
        other_b = bad_b + sum(b for _, b in self.not_ip.values())
        share_f = bad_f / self.frames if self.frames else 0.0
        share_b = bad_b / self.bytes if self.bytes else 0.0
        warning = None
        if share_f > UNDECODED_WARNING_SHARE or share_b > UNDECODED_WARNING_SHARE:
            top = max(self.not_decoded.items(), key=lambda kv: kv[1][0])[0]
            warning = (f"{bad_f:,} of {self.frames:,} frames ({share_f:.1%}; {share_b:.1%} of the bytes) could "
                       f"not be decoded, mostly: {top}; what they carried is not in this report")
        return {
            "frames": self.frames,
            "bytes": self.bytes,
            "decoded": {"frames": max(0, self.frames - other_f), "bytes": max(0, self.bytes - other_b)},
            "not_ip": rows(self.not_ip),
            "not_decoded": rows(self.not_decoded),
            "tunnelled": rows(self.tunnelled, "tunnel"),
            "reassembled_datagrams": self.reassembled,
            "undecoded_share": {"frames": round(share_f, 6), "bytes": round(share_b, 6)},
            "warning": warning,
        }


def count(d: dict[str, list[int]], reason: str, frames: int, nbytes: int) -> None:
    """Add ``frames`` and ``nbytes`` under ``reason`` (at most MAX_ACCOUNTING_REASONS reasons)."""
    e = d.get(reason)
    if e is None:
        if len(d) >= MAX_ACCOUNTING_REASONS and reason != "other reasons":
            count(d, "other reasons", frames, nbytes)
            return
        d[reason] = [frames, nbytes]
    else:
        e[0] += frames
        e[1] += nbytes


@record
class InputReport:
    """What the audit made of one input file (born in :mod:`datareach.engine`)."""

    path: Annotated[str, _c("string", "as given", "str", True)]
    format: Annotated[str | None, _c("string", "detected from the content", "str?")]
    sha256: Annotated[str, _c("string", "", "str", True)]
    size: Annotated[int, _c("int64", "", "int")]
    records_read: Annotated[int, _c("int64", "", "int")] = 0
    errors: Annotated[list[InputError], _c("json", "InputError records", "list[dict]")] = field(
        default_factory=list)
    #: captures only: the encrypted connections, and what decryption opened (Decryption.to_dict)
    decryption: Annotated[dict[str, Any] | None, _c("json", "encrypted connections and decryption", "dict?")] = None
    #: captures only: what became of every frame (PacketAccounting.to_dict)
    packets: Annotated[dict[str, Any] | None, _c("json", "every frame, decoded or not and why", "dict?")] = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "sha256": self.sha256,
            "size": self.size,
            "records_read": self.records_read,
            "errors": [e.to_json() for e in self.errors],
        }
        if self.decryption is not None:
            out["decryption"] = self.decryption
        if self.packets is not None:
            out["packets"] = self.packets
        return out


@dataclass(frozen=True, slots=True)
class DataSource:
    """One data file that produced answers in a report (the document's ``data_sources``).

    ``kind`` is e.g. ``"geo-country"``, ``"geo-city"``, ``"geo-asn"``, ``"geo-country-asn"``,
    ``"geo-city-asn"`` or ``"public-suffix-list"``. ``date`` is the ISO date of the data (not
    of the software), ``licence`` the terms the data comes under as far as they are known, and
    ``note`` anything a reader of the report must know about what the data can and cannot say,
    ``credit`` the attribution its licence asks every report to carry (CC BY data). Made by the geo data (:mod:`datareach.enrich.geo`), the public suffix list
    (:mod:`datareach.kb.psl`) and the knowledge base.
    """

    name: Annotated[str, _c("string", "e.g. the .mmdb's database type", "str", True)]
    path: Annotated[str | None, _c("string", "file the data came from", "str?")]
    kind: Annotated[str, _c("string", "what kind of data", "str")]
    version: Annotated[str, _c("string", "version of the data or of the package that ships it", "str")]
    date: Annotated[str | None, _c("string", "ISO date of the data", "str?")]
    licence: Annotated[str | None, _c("string", "licence of the data, where known", "str?")]
    note: Annotated[str | None, _c("string", "what the source cannot answer", "str?")] = None
    credit: Annotated[str | None, _c("string", "the attribution the data's licence asks for", "str?")] = None

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in fields(DataSource)}


#: Connection's fields, in order: the layout of a :class:`ConnectionBatch` row.
CONNECTION_FIELDS: tuple[str, ...] = fields(Connection)


@dataclass(slots=True)
class ConnectionBatch:
    """Many connections at once: rows of :data:`CONNECTION_FIELDS` values, or an Arrow table.

    Capture readers end with one of these instead of one :class:`Connection` per flow: a capture
    holds hundreds of thousands of connections, and they go straight into Arrow columns. The
    readers give them as ``table`` (of :func:`arrow_schema` (Connection)), built a batch of
    connections at a time while reading, so that no Python object is kept per connection;
    a plugin may give ``rows`` instead.
    """

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    #: a pyarrow.Table, or None (typed Any: the schema module does not import pyarrow when loaded)
    table: Any = None

    def __len__(self) -> int:
        return len(self.rows) + (self.table.num_rows if self.table is not None else 0)

    def row_tuples(self) -> list[tuple[Any, ...]]:
        """Every connection as a row tuple (``alpn`` a tuple, as in :class:`Connection`)."""
        out = list(self.rows)
        if self.table is not None:
            cols = [c.to_pylist() for c in self.table.select(list(CONNECTION_FIELDS)).columns]
            alpn = CONNECTION_FIELDS.index("alpn")
            cols[alpn] = [tuple(a or ()) for a in cols[alpn]]
            out.extend(zip(*cols, strict=True))
        return out

    def connections(self) -> list[Connection]:
        return [Connection(*row) for row in self.row_tuples()]

    def to_table(self) -> pa.Table:
        """The connections as one table of :func:`arrow_schema` (Connection)."""
        import pyarrow as pa

        if not self.rows and self.table is not None:
            return self.table.select(list(CONNECTION_FIELDS))
        parts = [rows_table(Connection, self.rows)]
        if self.table is not None:
            parts.append(self.table.select(list(CONNECTION_FIELDS)))
        return pa.concat_tables(parts)


def rows_table(cls: type, rows: list[tuple[Any, ...]]) -> pa.Table:
    """Row tuples (:func:`fields` order) of ``cls`` as an Arrow table of :func:`arrow_schema`."""
    import pyarrow as pa

    schema = arrow_schema(cls)
    names = fields(cls)
    columns_ = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table([pa.array(col, f.type) for col, f in zip(columns_, schema, strict=True)], schema=schema)


def table_from_dicts(cls: type, docs: list[dict[str, Any]]) -> pa.Table:
    """Rows as dicts (JSON-document form: ``json`` columns hold Python values) to a table of
    :func:`arrow_schema`; missing keys are null."""
    import pyarrow as pa

    schema = arrow_schema(cls)
    cols = dict(columns(cls))
    codec = JsonCodec()
    arrays = []
    for f in schema:
        values = [d.get(f.name) for d in docs]
        if cols[f.name].arrow == "json":
            values = json_texts(values, codec)
        arrays.append(pa.array(values, f.type))
    return pa.table(arrays, schema=schema)


def table_to_dicts(cls: type, table: pa.Table, *, json_only: bool = True,
                   codec: JsonCodec | None = None) -> list[dict[str, Any]]:
    """A table of ``cls`` rows back to dicts, ``json`` columns decoded (by ``codec``, the one that
    made the texts, when there is one: it gives their values back unparsed); with ``json_only`` just the fields the JSON document carries, in
    declared order."""
    names = [n for n, c in columns(cls) if (c.json is not None or not json_only) and n in table.column_names]
    kinds = dict(columns(cls))
    codec = codec or JsonCodec()
    data = {}
    for n in names:
        values = table.column(n).to_pylist()
        if kinds[n].arrow == "json":
            values = json_values(values, codec)
        data[n] = values
    return [{n: data[n][i] for n in names} for i in range(table.num_rows)]


class JsonCodec:
    """JSON text for the nested values of ``json`` columns, remembered both ways for one run.

    A text this codec made decodes back to the very object it was made from, without parsing
    (equal values stay one object, as the stages made them); an object encoded again gives the
    same text without serialising. So the values must not change once encoded: a stage that
    fills them makes new ones. Texts from elsewhere (another engine's table) are parsed.
    """

    def __init__(self) -> None:
        import orjson

        self._orjson_dumps = orjson.dumps
        self._orjson_loads = orjson.loads
        self._text_of: dict[int, str] = {}
        self._value_of: dict[str, Any] = {}
        self._keep: list[Any] = []  # the objects stay alive while their id is remembered

    def text(self, value: Any) -> str:
        text = self._text_of.get(id(value))
        if text is None:
            text = self._text_of[id(value)] = self._orjson_dumps(value).decode()
            self._keep.append(value)
            self._value_of.setdefault(text, value)
        return text

    def forget(self) -> None:
        """Let go of what it remembers (the values it was given and the texts it made): an engine
        that has written a chunk of rows out keeps the codec's memory bounded this way."""
        self._text_of.clear()
        self._value_of.clear()
        self._keep.clear()

    def loads(self, text: str) -> Any:
        value = self._value_of.get(text)
        if value is None:
            value = self._value_of[text] = self._orjson_loads(text)
        return value


def json_texts(values: list[Any], codec: JsonCodec | None = None) -> list[Any]:
    """Values to the texts of a ``json`` column (each distinct object encoded once)."""
    text = (codec or JsonCodec()).text
    return [None if v is None else text(v) for v in values]


def json_values(texts: list[Any], codec: JsonCodec | None = None) -> list[Any]:
    """A ``json`` column's texts back to values (each distinct text decoded once)."""
    loads = (codec or JsonCodec()).loads
    return [None if v is None else loads(v) for v in texts]


@dataclass(slots=True)
class PreparedExchange:
    """An :class:`Exchange` and its findings already made into the JSON document's rows.

    A parallel capture reader makes these (when the audit asks for them, with the function that
    makes them) instead of handing on the exchange's fields: the rows are then made on every
    core, and the audit's own process only files them. ``doc`` is the exchange's row and each
    finding is (its row, its (source, data type, location), its (app, host, data type,
    categories)), all as the reader had them: the rows name the connection by the reader's own
    uid, and ``uid``/``conn`` give the audit's (``conn`` its number, -1 when the rows' uid is
    right as it is).
    """

    ts: float
    input_index: int
    uid: str | None
    app: str | None
    host: str
    doc: bytes
    findings: tuple[tuple[bytes, tuple[str, str, str], tuple[str | None, str, str, tuple[str, ...]]], ...]
    conn: int = -1


def connection_uid(input_index: int, n: int) -> str:
    """The uid of the n-th connection (from 0) of an input."""
    return f"C{input_index}.{n}"


Record: TypeAlias = (Connection | ConnectionBatch | DnsAnswer | Exchange | InputError | Decryption | PacketAccounting
                     | PreparedExchange)

#: Called by readers with the number of bytes of the input consumed so far.
ProgressCallback: TypeAlias = Callable[[int], None]


class Reader(Protocol):
    """What every input format's reader provides."""

    def __call__(
        self, path: Path, input_index: int, progress: ProgressCallback | None = None
    ) -> Iterator[Record]: ...
