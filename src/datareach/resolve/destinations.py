"""Destinations: connections grouped by (app, host), with their servers' geography.

This is where a destination record is born: :func:`build_destinations` names the connections
(:mod:`.naming`), aggregates them with Arrow group-bys, and enriches the distinct server
addresses (:mod:`.geo`) and host names (:mod:`.domains`) as columns.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datareach.resolve.domains import registrable_domains
from datareach.resolve.geo import GeoResolver
from datareach.resolve.naming import NAME_SOURCES, DnsIndex, name_connections
from datareach.timestamps import iso


def build_destinations(conns: pa.Table, index: DnsIndex, geo: GeoResolver) -> list[dict[str, Any]]:
    """One JSON-ready record per (app, host), most sent first within each app."""
    if conns.num_rows == 0:
        return []
    t = name_connections(conns, index)
    t = t.set_column(t.schema.get_field_index("app"), "app", pc.fill_null(t.column("app"), ""))
    t = t.append_column("rank", pc.index_in(t.column("name_source"), value_set=pa.array(NAME_SOURCES)))
    t = t.append_column("bytes_total", pc.add(t.column("bytes_out"), t.column("bytes_in")))
    keys = ["app", "host"]
    groups = t.group_by(keys, use_threads=False).aggregate([
        ("bytes_out", "sum"), ("bytes_in", "sum"), ("packets_out", "sum"), ("packets_in", "sum"),
        ("first_seen", "min"), ("last_seen", "max"), ("ech", "any"), ("rank", "min"), ("rank", "distinct"),
        ("server_port", "distinct"), ("transport", "distinct"), ("protocol", "distinct"),
        ("input_index", "distinct"), ("flows", "sum"),
    ])
    per_ip = t.group_by([*keys, "server_ip", "input_index"], use_threads=False).aggregate([("bytes_total", "sum")])

    # geography of the distinct server addresses, as columns
    ips = pc.unique(t.column("server_ip"))
    geo_cols = geo.enrich(ips)
    geo_of = dict(zip(ips.to_pylist(), zip(*(geo_cols.column(c).to_pylist() for c in
                                              ("ip_scope", "country", "asn", "as_org")), strict=True),
                      strict=True))

    servers: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    names: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
    for app, host, ip, idx, nbytes in zip(*(per_ip.column(i).to_pylist() for i in range(5)), strict=True):
        key = (app, host)
        servers[key][ip] = servers[key].get(ip, 0) + nbytes
        for name in index.names(idx, ip):
            names[key].setdefault(name, None)

    domains = registrable_domains(groups.column("host")).to_pylist()
    cols = {name: groups.column(name).to_pylist() for name in groups.column_names}
    out: list[dict[str, Any]] = []
    for i, host in enumerate(cols["host"]):
        app = cols["app"][i]
        key = (app, host)
        by_bytes = sorted(servers[key].items(), key=lambda kv: (-kv[1], kv[0]))
        server_list = [
            {"ip": ip, "ip_scope": g[0], "country": g[1], "asn": g[2], "as_org": g[3]}
            for ip, _ in by_bytes
            for g in (geo_of.get(ip, (None, None, None, None)),)
        ]
        primary = server_list[0]
        out.append({
            "host": host,
            "registrable_domain": domains[i],
            "name_source": NAME_SOURCES[cols["rank_min"][i]],
            "name_sources": [NAME_SOURCES[r] for r in sorted(cols["rank_distinct"][i])],
            "names": list(names[key]),
            "cname_chain": index.cname_chain(host),
            "ips": [s["ip"] for s in server_list],
            "ports": sorted(cols["server_port_distinct"][i]),
            "transports": sorted(cols["transport_distinct"][i]),
            "protocols": sorted(p for p in cols["protocol_distinct"][i] if p),
            "ip_scope": primary["ip_scope"],
            "country": primary["country"],
            "countries": sorted({s["country"] for s in server_list if s["country"]}),
            "asn": primary["asn"],
            "as_org": primary["as_org"],
            "servers": server_list,
            "bytes_out": cols["bytes_out_sum"][i],
            "bytes_in": cols["bytes_in_sum"][i],
            "packets_out": cols["packets_out_sum"][i],
            "packets_in": cols["packets_in_sum"][i],
            "connections": cols["flows_sum"][i],
            "first_seen": iso(cols["first_seen_min"][i]),
            "last_seen": iso(cols["last_seen_max"][i]),
            "ech": bool(cols["ech_any"][i]),
            "app": app or None,
            "inputs": sorted(cols["input_index_distinct"][i]),
        })
    out.sort(key=lambda d: (d["app"] or "", d["registrable_domain"] or d["host"], d["host"]))
    return out
