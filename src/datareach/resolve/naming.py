"""Naming: which host name each connection went to, and on what evidence.

Works on columns (a pyarrow table of connections and one of DNS answers), so the same function
serves a capture's few thousand connections and an organisation's Zeek ``conn.log``.

Evidence, best first (the ``name_source`` of the result):

``sni``   the server_name of the TLS ClientHello (the outer name when ECH hides the inner one);
``quic``  the server_name inside the decrypted QUIC Initial packets;
``http``  the Host header of a plain-HTTP request on the connection (or a HAR entry's URL);
``dns``   the most recent DNS answer for the server's address before the connection started,
          from the same input;
``ip``    nothing named it: the host is the address itself.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

import pyarrow as pa

NAME_SOURCES = ("sni", "quic", "http", "dns", "ip")

DNS_SCHEMA = pa.schema(
    [
        ("ts", pa.float64()),
        ("qname", pa.string()),
        ("address", pa.string()),
        ("cname_chain", pa.list_(pa.string())),
        ("input_index", pa.int32()),
    ]
)


class _DnsIndex:
    """For each (input, address): the answers sorted by time, for 'latest before' look-ups."""

    def __init__(self, dns: pa.Table) -> None:
        by_key: dict[tuple[int, str], list[tuple[float, str, list[str]]]] = defaultdict(list)
        if dns.num_rows:
            for ts, qname, addr, chain, idx in zip(
                dns.column("ts").to_pylist(),
                dns.column("qname").to_pylist(),
                dns.column("address").to_pylist(),
                dns.column("cname_chain").to_pylist(),
                dns.column("input_index").to_pylist(),
                strict=True,
            ):
                by_key[(idx, addr)].append((ts, qname, chain))
        self.times: dict[tuple[int, str], list[float]] = {}
        self.answers: dict[tuple[int, str], list[tuple[float, str, list[str]]]] = {}
        for key, rows in by_key.items():
            rows.sort(key=lambda r: r[0])
            self.answers[key] = rows
            self.times[key] = [r[0] for r in rows]

    def latest_before(self, input_index: int, address: str, ts: float) -> tuple[str, list[str]] | None:
        key = (input_index, address)
        times = self.times.get(key)
        if times is None:
            return None
        # answers up to a second after the first packet still count: capture clocks and
        # per-interface timestamps are not perfectly ordered
        i = bisect.bisect_right(times, ts + 1.0)
        if i == 0:
            return None
        _, qname, chain = self.answers[key][i - 1]
        return qname, chain

    def all_names(self, input_index: int, address: str) -> list[str]:
        rows = self.answers.get((input_index, address), [])
        seen: dict[str, None] = {}
        for _, qname, _chain in rows:
            seen.setdefault(qname, None)
        return list(seen)


def name_connections(conns: pa.Table, dns: pa.Table) -> pa.Table:
    """Add ``host``, ``name_source``, ``dns_names`` and ``cname_chain`` columns to ``conns``.

    ``conns`` needs columns sni, quic_sni, http_host, server_ip, first_seen, input_index.
    ``dns_names`` lists every name the input's DNS answers gave for the server's address (an IP
    often serves several names); ``cname_chain`` is the chain of the answer used for naming.
    """
    index = _DnsIndex(dns)
    hosts: list[str] = []
    sources: list[str] = []
    all_names: list[list[str]] = []
    chains: list[list[str] | None] = []
    for sni, qsni, hhost, ip, ts, idx in zip(
        conns.column("sni").to_pylist(),
        conns.column("quic_sni").to_pylist(),
        conns.column("http_host").to_pylist(),
        conns.column("server_ip").to_pylist(),
        conns.column("first_seen").to_pylist(),
        conns.column("input_index").to_pylist(),
        strict=True,
    ):
        names = index.all_names(idx, ip) if ip else []
        chain: list[str] | None = None
        hit = index.latest_before(idx, ip, ts) if ip else None
        if sni:
            host, src = sni, "sni"
        elif qsni:
            host, src = qsni, "quic"
        elif hhost:
            host, src = hhost, "http"
        elif hit is not None:
            host, src = hit[0], "dns"
        else:
            host, src = ip or "", "ip"
        if hit is not None and hit[0] == host:
            chain = hit[1]
        hosts.append(host)
        sources.append(src)
        all_names.append(names)
        chains.append(chain)
    return (
        conns.append_column("host", pa.array(hosts, pa.string()))
        .append_column("name_source", pa.array(sources, pa.string()))
        .append_column("dns_names", pa.array(all_names, pa.list_(pa.string())))
        .append_column("cname_chain", pa.array(chains, pa.list_(pa.string())))
    )
