"""Suricata EVE JSON (the layouts of Suricata 6, 7 and 8) as SQL over the normalised log tables.

EVE is one JSON object a line, of many event types; the ones read here:

* ``flow``: the connections (``conn``), one record a flow at its end, oriented client -> server;
* ``tls`` (``tls.sni``), ``quic`` (``quic.sni``), ``http`` (``http.hostname``): the names of a
  flow (``names``), joined to it by ``flow_id``;
* ``dns``: the answers (``dns``), in the three layouts: version 1 (one record an answer, with
  ``rrname``/``rrtype``/``rdata`` in the ``dns`` object), version 2 (Suricata 5 to 7: one record a
  response, the query name in ``dns.rrname`` and the answers in ``answers`` and/or ``grouped``),
  version 3 (Suricata 8: the query names in ``queries``, ``type`` "response", and ``src_ip`` the
  responder's);
* ``http`` with ``fileinfo``: the requests (``http``); a request body kept by the file store
  (``fileinfo.stored``) is at ``<eve directory>/filestore/<first two hex digits>/<sha256>``;
* ``dhcp``: MAC address, host name and assigned address (``dhcp``).

Nothing is parsed in Python: :func:`table_sql` gives each table as SQL text for a
:class:`Dialect` (DuckDB reads the files itself with ``read_json``; Spark reads them with
``spark.read.schema(spark_ddl()).json(paths)`` into the temporary views :func:`sources` names).
The JSON schema both readers are given is :data:`EVE_SCHEMA`, declared once below; fields
absent from a file are NULL, and a line that is not JSON or has a field of the wrong type is
skipped (DuckDB ``ignore_errors``) or read as NULLs (Spark's permissive mode).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from datareach.sources.sql import Dialect

__all__ = [
    "EVE_SCHEMA",
    "TABLES",
    "Dialect",
    "EveSource",
    "ListOf",
    "Scalar",
    "Struct",
    "duckdb_columns",
    "sniff",
    "sources",
    "spark_ddl",
    "table_sql",
]

TABLES = ("conn", "names", "dns", "http", "dhcp")

# The longest line DuckDB reads (its default is 16 MiB); Spark has no such limit.
MAX_LINE_BYTES = 64 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# The schema, declared once: DuckDB's ``columns=`` and Spark's DDL are both rendered from it.


@dataclass(frozen=True)
class Scalar:
    duckdb: str
    spark: str


@dataclass(frozen=True)
class ListOf:
    item: Type


@dataclass(frozen=True)
class Struct:
    fields: tuple[tuple[str, Type], ...]


Type = Scalar | ListOf | Struct

STRING = Scalar("VARCHAR", "STRING")
BIGINT = Scalar("BIGINT", "BIGINT")
BOOLEAN = Scalar("BOOLEAN", "BOOLEAN")


def _struct(**fields: Type) -> Struct:
    return Struct(tuple(fields.items()))


EVE_SCHEMA = _struct(
    timestamp=STRING,
    flow_id=BIGINT,
    event_type=STRING,
    src_ip=STRING,
    src_port=BIGINT,
    dest_ip=STRING,
    dest_port=BIGINT,
    proto=STRING,
    app_proto=STRING,
    community_id=STRING,
    tx_id=BIGINT,
    ether=_struct(src_mac=STRING, dest_mac=STRING, src_macs=ListOf(STRING), dest_macs=ListOf(STRING)),
    flow=_struct(pkts_toserver=BIGINT, pkts_toclient=BIGINT, bytes_toserver=BIGINT,
                 bytes_toclient=BIGINT, start=STRING, end=STRING),
    tls=_struct(sni=STRING, subject=STRING),
    quic=_struct(sni=STRING),
    http=_struct(hostname=STRING, url=STRING, http_user_agent=STRING, http_method=STRING,
                 http_refer=STRING, status=BIGINT),
    fileinfo=_struct(sha256=STRING, stored=BOOLEAN, size=BIGINT, tx_id=BIGINT),
    dhcp=_struct(type=STRING, dhcp_type=STRING, client_mac=STRING, assigned_ip=STRING, hostname=STRING),
    dns=_struct(
        version=BIGINT, type=STRING, id=BIGINT, rrname=STRING, rrtype=STRING, rdata=STRING, ttl=BIGINT,
        queries=ListOf(_struct(rrname=STRING, rrtype=STRING)),
        answers=ListOf(_struct(rrname=STRING, rrtype=STRING, ttl=BIGINT, rdata=STRING)),
        grouped=_struct(A=ListOf(STRING), AAAA=ListOf(STRING), CNAME=ListOf(STRING)),
    ),
)


def _render(t: Type, spark: bool) -> str:
    if isinstance(t, Scalar):
        return t.spark if spark else t.duckdb
    if isinstance(t, ListOf):
        return f"ARRAY<{_render(t.item, True)}>" if spark else f"{_render(t.item, False)}[]"
    if spark:
        return "STRUCT<" + ", ".join(f"`{n}`: {_render(f, True)}" for n, f in t.fields) + ">"
    return "STRUCT(" + ", ".join(f'"{n}" {_render(f, False)}' for n, f in t.fields) + ")"


def duckdb_columns() -> dict[str, str]:
    """The ``columns=`` of DuckDB's ``read_json``: top-level field -> DuckDB type."""
    return {name: _render(t, False) for name, t in EVE_SCHEMA.fields}


def spark_ddl() -> str:
    """The schema for ``spark.read.schema(...)``, as a DDL string."""
    return ", ".join(f"`{name}` {_render(t, True)}" for name, t in EVE_SCHEMA.fields)


# ---------------------------------------------------------------------------------------------
# Detection


def sniff(head: bytes) -> bool:
    """Is this the start of an EVE file: is its first JSON object one with an ``event_type``?"""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text.startswith(b"{"):
        return False
    line, newline, _ = text.partition(b"\n")
    try:
        obj = json.loads(line)
    except ValueError:
        # The head may end inside a long first line: judge by what it has.
        return not newline and b'"event_type"' in line
    return isinstance(obj, dict) and isinstance(obj.get("event_type"), str)


# ---------------------------------------------------------------------------------------------
# The relations read


@dataclass(frozen=True)
class EveSource:
    """The EVE files of one input in one directory: one relation of the SQL.

    For Spark, the engine registers ``spark.read.schema(spark_ddl()).json(list(paths))`` as the
    temporary view ``view`` before running the SQL."""

    view: str
    paths: tuple[str, ...]
    input_index: int
    directory: str


def sources(files: Iterable[tuple[str | os.PathLike[str], int]]) -> list[EveSource]:
    """Group (path, input_index) pairs by input and directory, in the order first seen."""
    groups: dict[tuple[int, str], list[str]] = {}
    for path, index in files:
        full = os.path.abspath(os.fspath(path))
        groups.setdefault((int(index), os.path.dirname(full)), []).append(full)
    return [EveSource(f"eve_{index}_{k}", tuple(paths), index, directory)
            for k, ((index, directory), paths) in enumerate(groups.items())]


# ---------------------------------------------------------------------------------------------
# The few SQL differences not in Dialect (candidates for it): kept here, by dialect name.


def _relation(s: Dialect, src: EveSource) -> str:
    if s.spark:
        return src.view
    paths = "[" + ", ".join(s.lit(p) for p in src.paths) + "]"
    columns = "{" + ", ".join(f"{s.lit(n)}: {s.lit(t)}" for n, t in duckdb_columns().items()) + "}"
    return (f"read_json({paths}, format = 'newline_delimited', columns = {columns}, "
            f"ignore_errors = true, maximum_object_size = {MAX_LINE_BYTES})")


def _name(expr: str) -> str:
    """A DNS name as compared: lower case, no trailing dot, NULL if empty."""
    return (f"NULLIF(lower(CASE WHEN {expr} LIKE '%.' THEN substr({expr}, 1, length({expr}) - 1) "
            f"ELSE {expr} END), '')")


def _uid(flow_id: str) -> str:
    return f"'F' || CAST({flow_id} AS STRING)"


# ---------------------------------------------------------------------------------------------
# The tables


def table_sql(d: Dialect, files: Sequence[tuple[str | os.PathLike[str], int]]) -> dict[str, str]:
    """The SELECT of each normalised table (:data:`TABLES`) over these EVE files.

    ``files`` are (path, input_index) pairs. For Spark, register the views of :func:`sources`
    (same files) first."""
    if d.name not in ("duckdb", "spark"):
        raise ValueError(f"unknown SQL dialect {d.name!r}")
    s = d
    srcs = sources(files)
    if not srcs:
        raise ValueError("no EVE files")
    union = "\nUNION ALL\n".join(
        f"SELECT *, CAST({src.input_index} AS INTEGER) AS input_index, {s.lit(src.directory)} AS eve_dir "
        f"FROM {_relation(s, src)}" for src in srcs)
    eve = f"WITH eve AS (\n{union}\n)\n"
    return {
        "conn": eve + _conn(s),
        "names": eve + _names(s),
        "dns": eve + _dns(s),
        "http": eve + _http(s),
        "dhcp": eve + _dhcp(s),
    }


def _conn(s: Dialect) -> str:
    start, end = f"flow.{s.q('start')}", f"flow.{s.q('end')}"
    protocol = ("CASE lower(app_proto) WHEN 'tls' THEN 'tls' WHEN 'ssl' THEN 'tls' WHEN 'quic' THEN 'quic' "
                "WHEN 'http' THEN 'http' WHEN 'http1' THEN 'http' WHEN 'http2' THEN 'http' "
                "WHEN 'dns' THEN 'dns' ELSE NULL END")
    transport = "CASE WHEN lower(proto) IN ('icmp', 'ipv6-icmp', 'icmpv6') THEN 'icmp' ELSE lower(proto) END"
    return f"""SELECT
  {_uid('flow_id')} AS uid,
  coalesce({s.epoch(start)}, {s.epoch(s.q('timestamp'))}) AS ts,
  {s.epoch(end)} - {s.epoch(start)} AS duration,
  CAST(src_ip AS STRING) AS client_ip,
  TRY_CAST(src_port AS INTEGER) AS client_port,
  CAST(dest_ip AS STRING) AS server_ip,
  TRY_CAST(dest_port AS INTEGER) AS server_port,
  CAST({transport} AS STRING) AS transport,
  CAST({protocol} AS STRING) AS protocol,
  CAST(flow.bytes_toserver AS BIGINT) AS bytes_out,
  CAST(flow.bytes_toclient AS BIGINT) AS bytes_in,
  CAST(flow.pkts_toserver AS BIGINT) AS packets_out,
  CAST(flow.pkts_toclient AS BIGINT) AS packets_in,
  lower(coalesce(ether.src_mac, {s.first('ether.src_macs')})) AS client_mac,
  CAST(community_id AS STRING) AS community_id,
  input_index
FROM eve
WHERE event_type = 'flow' AND flow_id IS NOT NULL"""


def _names(s: Dialect) -> str:
    cn = "NULLIF(regexp_extract(tls.subject, 'CN=([^,]+)', 1), '')"
    return f"""SELECT
  uid,
  min(sni) AS sni,
  min(quic_sni) AS quic_sni,
  coalesce(min_by(http_host, CASE WHEN http_host IS NOT NULL THEN ts END), min(http_host)) AS http_host,
  min(cert_name) AS cert_name
FROM (
  SELECT
    {_uid('flow_id')} AS uid,
    {s.epoch(s.q('timestamp'))} AS ts,
    CASE WHEN event_type = 'tls' THEN {_name('tls.sni')} END AS sni,
    CASE WHEN event_type = 'quic' THEN {_name('quic.sni')} END AS quic_sni,
    CASE WHEN event_type = 'http' THEN {_name('http.hostname')} END AS http_host,
    CASE WHEN event_type = 'tls' THEN lower({cn}) END AS cert_name
  FROM eve
  WHERE event_type IN ('tls', 'quic', 'http') AND flow_id IS NOT NULL
) n
WHERE sni IS NOT NULL OR quic_sni IS NOT NULL OR http_host IS NOT NULL OR cert_name IS NOT NULL
GROUP BY uid"""


def _dns(s: Dialect) -> str:
    typ, version = f"dns.{s.q('type')}", f"dns.{s.q('version')}"
    # The client: the side that is not port 53; else by layout (version 3 responses come
    # from the responder, earlier layouts keep the flow's client as src_ip).
    client = (f"CASE WHEN src_port = 53 AND dest_port <> 53 THEN dest_ip "
              f"WHEN dest_port = 53 AND src_port <> 53 THEN src_ip "
              f"WHEN {version} >= 3 THEN dest_ip ELSE src_ip END")
    qname = _name(f"coalesce(({s.first('dns.queries')}).rrname, dns.rrname, ({s.first('dns.answers')}).rrname)")
    base = f"""SELECT
    {s.epoch(s.q('timestamp'))} AS ts,
    CAST({client} AS STRING) AS client_ip,
    {qname} AS qname,
    dns, flow_id, input_index
  FROM eve
  WHERE event_type = 'dns' AND {typ} IN ('answer', 'response')"""
    cnames = s.filter_map("dns.answers", "x", "x.rrtype = 'CNAME'", _name("x.rdata"))
    chain = f"concat({s.list_of('qname')}, {cnames})"
    grouped_chain = (f"CASE WHEN dns.grouped.CNAME IS NULL THEN {s.list_of('qname')} "
                     f"ELSE concat({s.list_of('qname')}, {s.map('dns.grouped.CNAME', 'x', _name('x'))}) END")
    v1_name = _name("dns.rrname")
    v1_qname = "coalesce(q.qn, r.owner)"
    # (a v2 answer logged "grouped" only: one branch per address type)
    grouped = "".join(f"""  UNION ALL
  SELECT ts, client_ip, qname, '{rtype}' AS rtype, lower(address) AS address, CAST(NULL AS BIGINT) AS ttl,
         cname_chain, input_index
  FROM (
    SELECT ts, client_ip, qname, {s.explode('dns.grouped.' + rtype)} AS address, {grouped_chain} AS cname_chain,
           input_index
    FROM ({base}) b
    WHERE dns.answers IS NULL
  ) g_{rtype}
""" for rtype in ("A", "AAAA"))
    return f"""SELECT ts, client_ip, qname, rtype, address, ttl, cname_chain, input_index FROM (
  SELECT ts, client_ip, qname, a.rrtype AS rtype, lower(a.rdata) AS address,
         CAST(a.ttl AS BIGINT) AS ttl, cname_chain, input_index
  FROM (
    SELECT ts, client_ip, qname, {s.explode('dns.answers')} AS a, {chain} AS cname_chain, input_index
    FROM ({base}) b
    WHERE dns.answers IS NOT NULL
  ) d
{grouped}  UNION ALL
  SELECT r.ts, r.client_ip, {v1_qname} AS qname, r.rtype, r.address, r.ttl,
         CASE WHEN q.qn IS NULL OR q.qn = r.owner THEN {s.list_of(v1_qname)}
              ELSE concat({s.list_of('q.qn')}, {s.list_of('r.owner')}) END AS cname_chain,
         r.input_index
  FROM (
    SELECT ts, client_ip, {v1_name} AS owner, dns.rrtype AS rtype, lower(dns.rdata) AS address,
           CAST(dns.ttl AS BIGINT) AS ttl, dns.id AS qid, flow_id, input_index
    FROM ({base}) b
    WHERE {version} IS NULL AND dns.answers IS NULL AND dns.grouped IS NULL AND dns.rdata IS NOT NULL
  ) r
  LEFT JOIN (
    SELECT input_index, flow_id, dns.id AS qid, min({_name('dns.rrname')}) AS qn
    FROM eve
    WHERE event_type = 'dns' AND {typ} = 'query' AND {version} IS NULL
    GROUP BY input_index, flow_id, dns.id
  ) q ON q.input_index = r.input_index AND q.flow_id = r.flow_id AND q.qid = r.qid
) t
WHERE rtype IN ('A', 'AAAA') AND qname IS NOT NULL AND address IS NOT NULL"""


def _http(s: Dialect) -> str:
    sha = "lower(fileinfo.sha256)"
    path = (f"CASE WHEN fileinfo.stored AND regexp_extract({sha}, '^([0-9a-f]{{64}})$', 1) = {sha} "
            f"THEN eve_dir || '/filestore/' || substr({sha}, 1, 2) || '/' || {sha} END")
    return f"""SELECT
  {_uid('h.flow_id')} AS uid,
  {s.epoch('h.' + s.q('timestamp'))} AS ts,
  CAST(h.src_ip AS STRING) AS client_ip,
  CAST(h.dest_ip AS STRING) AS server_ip,
  TRY_CAST(h.dest_port AS INTEGER) AS server_port,
  h.http.http_method AS method,
  {_name('h.http.hostname')} AS host,
  h.http.url AS uri,
  h.http.http_user_agent AS user_agent,
  h.http.http_refer AS referrer,
  f.body_len AS request_body_len,
  TRY_CAST(h.http.status AS INTEGER) AS status,
  f.body_file AS body_file,
  h.input_index
FROM eve h
LEFT JOIN (
  -- files sent with the request: the fileinfo record's source is the flow's client
  SELECT input_index, flow_id, fileinfo.tx_id AS tx_id, src_ip, src_port,
         CAST(sum(fileinfo.size) AS BIGINT) AS body_len, min({path}) AS body_file
  FROM eve
  WHERE event_type = 'fileinfo' AND http IS NOT NULL AND flow_id IS NOT NULL
  GROUP BY input_index, flow_id, fileinfo.tx_id, src_ip, src_port
) f ON f.input_index = h.input_index AND f.flow_id = h.flow_id AND f.tx_id = h.tx_id
   AND f.src_ip = h.src_ip AND f.src_port = h.src_port
WHERE h.event_type = 'http' AND h.flow_id IS NOT NULL"""


def _dhcp(s: Dialect) -> str:
    typ = f"dhcp.{s.q('type')}"
    assigned = (f"CASE WHEN (dhcp.dhcp_type = 'ack' OR (dhcp.dhcp_type IS NULL AND {typ} = 'reply')) "
                f"AND dhcp.assigned_ip <> '0.0.0.0' THEN dhcp.assigned_ip END")
    return f"""SELECT ts, mac, host_name, assigned_addr, input_index FROM (
  SELECT
    {s.epoch(s.q('timestamp'))} AS ts,
    lower(dhcp.client_mac) AS mac,
    NULLIF(dhcp.hostname, '') AS host_name,
    CAST({assigned} AS STRING) AS assigned_addr,
    input_index
  FROM eve
  WHERE event_type = 'dhcp' AND dhcp.client_mac IS NOT NULL
) t
WHERE host_name IS NOT NULL OR assigned_addr IS NOT NULL"""
