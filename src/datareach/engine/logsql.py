"""The SQL of a log audit, written once for DuckDB and Spark.

A log audit's rows never pass through Python: the readers' SQL (:mod:`datareach.sources.zeek`,
:mod:`datareach.sources.eve`) makes the normalised relations ``conn``, ``names``, ``dns``,
``http`` and ``dhcp``, and the statements here name the connections and reduce them to what
the enrich stages work on. The statements are in the subset of SQL both engines speak; the few
places where they differ (lambdas, list functions, regular expressions, ignoring nulls in a
window) go through a :class:`Dialect`. Same statements, same results: a test runs both engines
on the same logs and compares their Parquet files.

What each statement gives:

``named``        every connection with ``host`` and ``name_source``: the TLS server name, the
                 QUIC one, the HTTP Host, else the name of the latest DNS answer the same client
                 got for the server's address up to :data:`~datareach.enrich.naming.DNS_CLOCK_SLACK`
                 seconds after the connection started (ties: the greatest name; a connection or an
                 answer without a time names nothing), else the address
                 (the same evidence, in the same order, as :mod:`datareach.enrich.naming`);
``internal``     whether the server is on the organisation's side (private, loopback,
                 link-local, multicast): such connections are counted, not destinations;
``groups``       the named external connections reduced to one row per (host, server, port,
                 transport, protocol, name source, input): the table of
                 :class:`~datareach.schema.Connection` columns the destination group-by takes
                 (``flows`` says how many connections a row stands for);
``host_clients`` distinct client devices per host.
"""

from __future__ import annotations

from datareach.enrich.naming import DNS_CLOCK_SLACK
from datareach.sources.sql import DUCKDB, SPARK, Dialect

__all__ = ["DUCKDB", "SPARK", "Dialect", "client_key", "groups_sql", "naming_steps"]

#: Server addresses on the organisation's own side: RFC 1918, shared address space (RFC 6598),
#: loopback, link-local, multicast and broadcast, IPv6 unique-local, link-local and multicast.
INTERNAL = (r"^(10\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.|100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.|"
            r"127\.|169\.254\.|22[4-9]\.|23[0-9]\.|255\.255\.255\.255$|0\.0\.0\.0$|[fF][cdCD]|[fF][eE][89abAB]|"
            r"[fF][fF]|::1?$)")






def client_key(conn: str = "c", lease: str = "l") -> str:
    """A client device's key: its MAC where a log gives one (the connection's, else the DHCP
    lease of its address), else its address."""
    return f"coalesce({conn}.client_mac, {lease}.mac, {conn}.client_ip)"


#: The naming statements, in order: (relation, SELECT, whether the engine materialises it). The
#: engines run them as they are (DuckDB: a temporary table, spilled to disk past its memory
#: limit; Spark: a cached view), so that no statement reads the logs twice.
def naming_steps(d: Dialect) -> list[tuple[str, str, bool]]:
    """``named``: the connections with ``host`` and ``name_source`` (over the views ``conn``,
    ``names`` and ``dns``), through ``conn_named`` (connections with their hello's and first
    request's names) and ``dns_named`` (the DNS name of those without)."""
    conn_named = """
SELECT c.uid, c.ts, c.duration, c.client_ip, c.client_port, c.server_ip, c.server_port, c.transport,
       c.protocol, c.bytes_out, c.bytes_in, c.packets_out, c.packets_in, c.client_mac, c.community_id,
       c.input_index, n.sni, n.quic_sni, n.http_host
FROM conn c LEFT JOIN names_by_uid n ON c.uid = n.uid
"""
    dns_named = f"""
WITH unnamed AS (
  SELECT uid, client_ip, server_ip, ts FROM conn_named
  WHERE sni IS NULL AND quic_sni IS NULL AND http_host IS NULL AND ts IS NOT NULL
),
pairs AS (SELECT DISTINCT client_ip, server_ip FROM unnamed),
answers AS (
  SELECT a.client_ip, a.address AS server_ip, a.ts, max(a.qname) AS qname
  FROM dns a JOIN pairs p ON a.client_ip = p.client_ip AND a.address = p.server_ip
  WHERE a.ts IS NOT NULL
  GROUP BY a.client_ip, a.address, a.ts
),
events AS (
  SELECT client_ip, server_ip, ts - {DNS_CLOCK_SLACK!r} AS t, 0 AS k, qname, CAST(NULL AS VARCHAR(64)) AS uid
  FROM answers
  UNION ALL
  SELECT client_ip, server_ip, ts AS t, 1 AS k, CAST(NULL AS VARCHAR(64)) AS qname, uid FROM unnamed
)
SELECT uid, max(dns_name) AS dns_name FROM (
  SELECT uid, k, {d.last_ignore_nulls("qname")} OVER (
    PARTITION BY client_ip, server_ip ORDER BY t, k
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS dns_name
  FROM events) e
WHERE k = 1 AND dns_name IS NOT NULL GROUP BY uid
"""
    named = f"""
SELECT c.uid, c.ts, c.duration, c.client_ip, c.client_port, c.server_ip, c.server_port, c.transport,
       c.protocol, c.bytes_out, c.bytes_in, c.packets_out, c.packets_in, c.client_mac, c.community_id,
       c.input_index, c.sni, c.quic_sni, c.http_host,
       coalesce(c.sni, c.quic_sni, c.http_host, b.dns_name, c.server_ip) AS host,
       CASE WHEN c.sni IS NOT NULL THEN 'sni' WHEN c.quic_sni IS NOT NULL THEN 'quic'
            WHEN c.http_host IS NOT NULL THEN 'http' WHEN b.dns_name IS NOT NULL THEN 'dns'
            ELSE 'ip' END AS name_source,
       {d.matches("c.server_ip", INTERNAL)} AS internal
FROM conn_named c LEFT JOIN dns_named b ON c.uid = b.uid
"""
    # (each materialised once: the statements after these read ``named`` five or six times)
    return [("names_by_uid", "SELECT uid, sni, quic_sni, http_host FROM names", True), ("conn_named", conn_named, True),
            ("dns_named", dns_named, True), ("named", named, True)]


def leases_sql(d: Dialect) -> str:
    """``leases``: each address's latest DHCP lease (mac, host name)."""
    return f"""
SELECT assigned_addr AS ip, {d.latest("mac", "ts")} AS mac, {d.latest("host_name", "ts")} AS host_name
FROM dhcp WHERE assigned_addr IS NOT NULL GROUP BY assigned_addr
"""


#: Server addresses kept per destination (by bytes): a CDN host is served from thousands, and
#: each one listed costs a geo look-up and a place in every report. The others' connections are
#: counted with the destination's first server (its totals stay exact); ``organisation.limits``
#: says how many destinations had more.
MAX_SERVERS = 32


def groups_sql(d: Dialect) -> str:
    """``groups``: the external named connections as Connection rows of groups (over ``named``):
    one per (host, name source, server, port, transport, protocol, input), with at most
    :data:`MAX_SERVERS` servers per host."""
    return f"""
WITH g AS (
  SELECT min(uid) AS uid, transport, server_ip, server_port, min(ts) AS first_seen,
         max(ts + coalesce(duration, 0.0)) AS last_seen,
         CAST(sum(coalesce(packets_out, 0)) AS BIGINT) AS packets_out, CAST(sum(coalesce(bytes_out, 0)) AS BIGINT) AS bytes_out,
         CAST(sum(coalesce(packets_in, 0)) AS BIGINT) AS packets_in, CAST(sum(coalesce(bytes_in, 0)) AS BIGINT) AS bytes_in,
         protocol, input_index, count(*) AS flows, host, name_source
  FROM named WHERE NOT internal
  GROUP BY host, name_source, server_ip, server_port, transport, protocol, input_index
),
ranked AS (
  SELECT host, server_ip, row_number() OVER (PARTITION BY host ORDER BY b DESC, server_ip) AS rn
  FROM (SELECT host, server_ip, sum(bytes_out + bytes_in) AS b FROM g GROUP BY host, server_ip) x
),
kept AS (
  SELECT g.*, CASE WHEN r.rn <= {MAX_SERVERS} THEN g.server_ip ELSE f.server_ip END AS kept_ip
  FROM g JOIN ranked r ON g.host = r.host AND g.server_ip = r.server_ip
         JOIN ranked f ON f.host = g.host AND f.rn = 1
)
SELECT min(uid) AS uid, transport, kept_ip AS server_ip, server_port, min(first_seen) AS first_seen,
       max(last_seen) AS last_seen, CAST(sum(packets_out) AS BIGINT) AS packets_out,
       CAST(sum(bytes_out) AS BIGINT) AS bytes_out, CAST(sum(packets_in) AS BIGINT) AS packets_in,
       CAST(sum(bytes_in) AS BIGINT) AS bytes_in, protocol, input_index, CAST(sum(flows) AS BIGINT) AS flows,
       host, name_source
FROM kept
GROUP BY host, name_source, kept_ip, server_port, transport, protocol, input_index
"""


def servers_cut_sql(d: Dialect) -> str:
    """How many destinations had more than :data:`MAX_SERVERS` servers."""
    return f"""
SELECT count(*) AS hosts FROM (
  SELECT host FROM named WHERE NOT internal GROUP BY host HAVING count(DISTINCT server_ip) > {MAX_SERVERS}) x
"""


def dns_names_sql(d: Dialect, limit: int) -> str:
    """The DNS answers for the kept servers' addresses (``kept_groups``: the rows of
    :func:`groups_sql`): one row per distinct (name, address, chain, input), when first seen; at
    most ``limit``, the first seen first."""
    return f"""
SELECT min(ts) AS ts, qname, min(rtype) AS rtype, address, cname_chain, min(ttl) AS ttl, input_index
FROM dns WHERE address IN (SELECT DISTINCT server_ip FROM kept_groups)
GROUP BY qname, address, cname_chain, input_index
ORDER BY 1, 2, 4 LIMIT {int(limit)}
"""


def host_clients_sql(d: Dialect) -> str:
    """``host_clients``: distinct client devices per host."""
    return f"""
SELECT c.host, count(DISTINCT {client_key()}) AS clients
FROM named c LEFT JOIN leases l ON c.client_ip = l.ip
WHERE NOT c.internal GROUP BY c.host
"""


def internal_sql(d: Dialect) -> str:
    """What stayed inside: connections to the organisation's own side, by protocol."""
    return """
SELECT coalesce(protocol, transport || '/' || CAST(server_port AS VARCHAR(8))) AS protocol,
       count(*) AS connections, CAST(sum(coalesce(bytes_out, 0) + coalesce(bytes_in, 0)) AS BIGINT) AS bytes,
       count(DISTINCT server_ip) AS servers
FROM named WHERE internal GROUP BY 1
"""
