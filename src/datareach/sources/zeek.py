"""Zeek logs to the normalised relations of a log audit.

Zeek writes one log per concern, joined by the connection's ``uid``: ``conn.log`` (who talked to
whom, bytes each way), ``ssl.log`` and ``quic.log`` (the server name of the hello), ``http.log``
(requests), ``dns.log`` (answers), ``x509.log`` (certificates), ``dhcp.log`` (which device had
which address), ``files.log`` (what was extracted). Each comes as tab-separated text with a
``#fields``/``#types`` header, or as JSON lines.

Two steps, both SQL:

1. the **raw views** ``zeek_<kind>``: the columns of :data:`NEEDED` for that kind, typed (Zeek
   ``time`` and ``interval`` DOUBLE, ``count``/``int``/``port`` BIGINT, ``bool`` BOOLEAN,
   ``set``/``vector`` a list of strings, the rest text), named with ``_`` for ``.``
   (``id.orig_h`` is ``id_orig_h``), plus ``_input`` (the input's index). A column a file does
   not have (an older Zeek, a site that turned it off) is NULL. The engine reads the files as
   text columns (DuckDB's ``read_csv``/``read_json``, Spark's ``spark.read``) and
   :func:`typed_columns` types them, in the SQL both speak;
2. the **normalised relations** of :func:`normalised` (``conn``, ``names``, ``dns``, ``http``,
   ``dhcp``; docs/architecture.md), which :mod:`datareach.engine.logsql` works on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datareach.sources.logs import LogFile
    from datareach.sources.sql import Dialect

__all__ = ["NEEDED", "column", "normalised", "typed_columns"]

#: The columns read from each log, with their Zeek type class: time, interval, count, bool,
#: list, string.
NEEDED: dict[str, tuple[tuple[str, str], ...]] = {
    "conn": (("ts", "time"), ("uid", "string"), ("id.orig_h", "string"), ("id.orig_p", "count"),
             ("id.resp_h", "string"), ("id.resp_p", "count"), ("proto", "string"), ("service", "string"),
             ("duration", "interval"), ("orig_bytes", "count"), ("resp_bytes", "count"), ("orig_pkts", "count"),
             ("resp_pkts", "count"), ("orig_l2_addr", "string"), ("community_id", "string")),
    "ssl": (("ts", "time"), ("uid", "string"), ("server_name", "string"), ("cert_chain_fuids", "list"),
            ("cert_chain_fps", "list")),
    "quic": (("ts", "time"), ("uid", "string"), ("server_name", "string")),
    "dns": (("ts", "time"), ("uid", "string"), ("id.orig_h", "string"), ("query", "string"),
            ("qtype_name", "string"), ("answers", "list"), ("TTLs", "list")),
    "http": (("ts", "time"), ("uid", "string"), ("id.orig_h", "string"), ("id.resp_h", "string"),
             ("id.resp_p", "count"), ("trans_depth", "count"), ("method", "string"), ("host", "string"),
             ("uri", "string"), ("referrer", "string"), ("user_agent", "string"), ("request_body_len", "count"),
             ("status_code", "count"), ("orig_fuids", "list")),
    "x509": (("ts", "time"), ("id", "string"), ("fingerprint", "string"), ("certificate.subject", "string"),
             ("san.dns", "list")),
    "dhcp": (("ts", "time"), ("mac", "string"), ("host_name", "string"), ("assigned_addr", "string")),
    "files": (("ts", "time"), ("fuid", "string"), ("uid", "string"), ("conn_uids", "list"),
              ("extracted", "string"), ("is_orig", "bool")),
}

_SQL_TYPES = {"time": "DOUBLE", "interval": "DOUBLE", "count": "BIGINT", "bool": "BOOLEAN",
              "string": "VARCHAR", "list": "VARCHAR[]"}


def column(field: str) -> str:
    """A Zeek field's column name in the raw views (``id.orig_h``: ``id_orig_h``)."""
    return field.replace(".", "_")


def sql_type(cls: str, d: Dialect) -> str:
    t = _SQL_TYPES[cls]
    if d.name == "spark":
        return {"VARCHAR": "STRING", "VARCHAR[]": "ARRAY<STRING>"}.get(t, t)
    return t


def typed_columns(f: LogFile, present: Sequence[str], d: Dialect) -> list[str]:
    """The SELECT list that types a file's text columns into its kind's raw view.

    ``present``: the file's columns as the engine read them (named by :func:`column`; TSV: every
    one text; JSON: lists as lists of text, the rest text). The TSV file's unset field (``-``)
    is NULL already (the engine reads it as NULL); its empty field (``(empty)``) is an empty
    string or an empty list.
    """
    have = set(present)
    out: list[str] = []
    for field, cls in NEEDED[f.kind]:
        name = column(field)
        typ = sql_type(cls, d)
        if name not in have:
            out.append(f"CAST(NULL AS {typ}) AS {name}")
            continue
        ref = f"`{name}`" if d.name == "spark" else f'"{name}"'
        if cls == "list":
            if f.form == "tsv":
                empty = d.quote(f.empty_field)
                out.append(f"CASE WHEN {ref} = {empty} OR {ref} = '' THEN {d.empty_list()} "
                           f"ELSE {d.split(ref, f.set_separator)} END AS {name}")
            else:
                out.append(f"{ref} AS {name}")
        elif cls == "time":
            out.append(f"{d.epoch(ref)} AS {name}")
        elif cls == "interval":
            out.append(f"TRY_CAST({ref} AS DOUBLE) AS {name}")
        elif cls == "count":
            out.append(f"TRY_CAST({ref} AS BIGINT) AS {name}")
        elif cls == "bool":
            out.append(f"CASE WHEN {ref} IN ('T', 'true') THEN true WHEN {ref} IN ('F', 'false') THEN false END "
                       f"AS {name}")
        else:
            if f.form == "tsv":
                out.append(f"CASE WHEN {ref} = {d.quote(f.empty_field)} THEN '' ELSE {ref} END AS {name}")
            else:
                out.append(f"{ref} AS {name}")
    out.append(f"{f.input_index} AS _input")
    return out


def _window(ts: str, since: float | None, until: float | None) -> str:
    parts = []
    if since is not None:
        parts.append(f"{ts} >= {since!r}")
    if until is not None:
        parts.append(f"{ts} < {until!r}")
    return " AND ".join(parts) if parts else "true"


def _host(expr: str, d: Dialect) -> str:
    """An HTTP Host header's host: lower case, without its port (IPv6 literals keep their brackets'
    content)."""
    if d.name == "duckdb":
        return (f"lower(CASE WHEN {expr} LIKE '[%' THEN regexp_extract({expr}, '^\\[([^]]*)\\]', 1) "
                f"ELSE regexp_replace({expr}, ':[0-9]*$', '') END)")
    return (f"lower(CASE WHEN {expr} LIKE '[%' THEN regexp_extract({expr}, '^\\\\[([^]]*)\\\\]', 1) "
            f"ELSE regexp_replace({expr}, ':[0-9]*$', '') END)")


def normalised(d: Dialect, since: float | None = None, until: float | None = None) -> dict[str, str]:
    """The normalised relations from the raw views ``zeek_conn`` ... (each view exists: with no
    file of a kind, the engine makes it empty)."""
    is_ip = "^[0-9.]+$|:"
    dns_rows = f"""
SELECT ts, id_orig_h AS client_ip, lower(trim(TRAILING '.' FROM query)) AS qname, answers, TTLs, _input,
       {d.list_filter('answers', 'x', 'NOT ' + d.matches('x', is_ip))} AS cnames
FROM zeek_dns
WHERE query IS NOT NULL AND answers IS NOT NULL AND {d.size('answers')} > 0 AND {_window('ts', since, until)}
"""
    return {
        "conn": f"""
SELECT uid, ts, duration, id_orig_h AS client_ip, CAST(id_orig_p AS INTEGER) AS client_port,
       id_resp_h AS server_ip, CAST(id_resp_p AS INTEGER) AS server_port, lower(proto) AS transport,
       CASE WHEN service IS NULL OR service = '' THEN NULL
            WHEN {d.matches('service', '(^|,)(ssl|tls)($|,)')} THEN 'tls'
            WHEN {d.matches('service', '(^|,)quic($|,)')} THEN 'quic'
            WHEN {d.matches('service', '(^|,)http($|,)')} THEN 'http'
            WHEN {d.matches('service', '(^|,)dns($|,)')} THEN 'dns' END AS protocol,
       orig_bytes AS bytes_out, resp_bytes AS bytes_in, orig_pkts AS packets_out, resp_pkts AS packets_in,
       lower(orig_l2_addr) AS client_mac, community_id, CAST(_input AS INTEGER) AS input_index
FROM zeek_conn WHERE uid IS NOT NULL AND id_resp_h IS NOT NULL AND {_window('ts', since, until)}
""",
        "names": f"""
SELECT uid, max(sni) AS sni, max(quic_sni) AS quic_sni, max(http_host) AS http_host, max(cert_name) AS cert_name
FROM (
  SELECT uid, lower(trim(TRAILING '.' FROM server_name)) AS sni, CAST(NULL AS VARCHAR(255)) AS quic_sni,
         CAST(NULL AS VARCHAR(255)) AS http_host, CAST(NULL AS VARCHAR(255)) AS cert_name
  FROM zeek_ssl WHERE server_name IS NOT NULL AND server_name <> ''
  UNION ALL
  SELECT uid, NULL, lower(trim(TRAILING '.' FROM server_name)), NULL, NULL FROM zeek_quic
  WHERE server_name IS NOT NULL AND server_name <> ''
  UNION ALL
  SELECT uid, NULL, NULL, {_host('host', d)}, NULL FROM (
    SELECT uid, host, row_number() OVER (PARTITION BY uid ORDER BY ts, trans_depth) AS n
    FROM zeek_http WHERE host IS NOT NULL AND host <> '') h WHERE n = 1
  UNION ALL
  SELECT s.uid, NULL, NULL, NULL, lower(coalesce({d.at('x.san_dns', '1')},
                                                 regexp_extract(x.certificate_subject, 'CN=([^,]*)', 1)))
  FROM zeek_ssl s JOIN zeek_x509 x
    ON x.id = {d.at('s.cert_chain_fuids', '1')} OR x.fingerprint = {d.at('s.cert_chain_fps', '1')}
) n GROUP BY uid
""",
        "dns": f"""
SELECT ts, client_ip, qname, CASE WHEN {d.matches('address', ':')} THEN 'AAAA' ELSE 'A' END AS rtype,
       address, ttl, cname_chain, input_index
FROM (
  SELECT ts, client_ip, qname, {d.at('answers', 'i')} AS address,
         TRY_CAST(TRY_CAST({d.at('TTLs', 'i')} AS DOUBLE) AS BIGINT) AS ttl,
         _input AS input_index,
         array_concat_or_list(qname, cnames) AS cname_chain
  FROM (SELECT *, {d.explode_range(d.size('answers'))} AS i FROM ({dns_rows}) r) e
) a WHERE {d.matches('address', is_ip)}
""".replace("array_concat_or_list(qname, cnames)",
            "list_concat([qname], cnames)" if d.name == "duckdb" else "concat(array(qname), cnames)"),
        "http": f"""
SELECT h.uid, h.ts, h.id_orig_h AS client_ip, h.id_resp_h AS server_ip, CAST(h.id_resp_p AS INTEGER) AS server_port,
       h.method, {_host('h.host', d)} AS host, h.uri, h.user_agent, h.referrer, h.request_body_len,
       CAST(h.status_code AS INTEGER) AS status, f.extracted AS body_file, CAST(h._input AS INTEGER) AS input_index
FROM zeek_http h LEFT JOIN (
  SELECT fuid, max(extracted) AS extracted FROM zeek_files
  WHERE extracted IS NOT NULL AND extracted <> '' GROUP BY fuid) f
  ON f.fuid = {d.at('h.orig_fuids', '1')}
WHERE {_window('h.ts', since, until)}
""",
        "dhcp": f"""
SELECT ts, lower(mac) AS mac, host_name, assigned_addr, CAST(_input AS INTEGER) AS input_index
FROM zeek_dhcp WHERE {_window('ts', since, until)}
""",
    }
