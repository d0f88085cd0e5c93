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
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

NAME_SOURCES = ("sni", "quic", "http", "dns", "ip")
#: How far (seconds) a DNS answer may trail the connection's first packet and still name it:
#: capture clocks and per-interface timestamps are not perfectly ordered.
DNS_CLOCK_SLACK = 1.0

class DnsIndex:
    """The DNS answers of an audit, indexed for the questions naming asks."""

    def __init__(self, answers: Iterable[tuple[float, str, str, Sequence[str], int]]) -> None:
        """``answers``: (ts, qname, address, cname_chain, input_index) of each DNS answer."""
        by_key: dict[tuple[int, str], list[tuple[float, str]]] = defaultdict(list)
        self.chains: dict[str, list[str]] = {}
        for ts, qname, addr, chain, idx in answers:
            by_key[(idx, addr)].append((ts, qname))
            if len(chain) > 1:
                self.chains[qname] = list(chain)
        self.times: dict[tuple[int, str], list[float]] = {}
        self.answers: dict[tuple[int, str], list[tuple[float, str]]] = {}
        for key, rows in by_key.items():
            rows.sort()
            self.answers[key] = rows
            self.times[key] = [r[0] for r in rows]

    def latest_before(self, input_index: int, address: str, ts: float) -> str | None:
        """The name of the most recent answer for ``address`` before ``ts`` in that input."""
        key = (input_index, address)
        times = self.times.get(key)
        if times is None:
            return None
        i = bisect.bisect_right(times, ts + DNS_CLOCK_SLACK)
        return self.answers[key][i - 1][1] if i else None

    def names(self, input_index: int, address: str) -> list[str]:
        """Every name the input's DNS answers gave for ``address``, in order of first answer."""
        return list(dict.fromkeys(q for _, q in self.answers.get((input_index, address), ())))

    def cname_chain(self, host: str) -> list[str]:
        """The CNAME chain an answer for ``host`` went through (empty without CNAMEs)."""
        return self.chains.get(host, [])


def name_connections(conns: pa.Table, dns: DnsIndex) -> pa.Table:
    """Add ``host`` and ``name_source`` columns to a table of connections.

    ``conns`` needs columns sni, quic_sni, http_host, server_ip, first_seen, input_index.
    """
    sni, quic, http = conns.column("sni"), conns.column("quic_sni"), conns.column("http_host")
    host = pc.coalesce(sni, quic, http)
    null, s_sni, s_quic, s_http = (pa.scalar(v, pa.string()) for v in (None, "sni", "quic", "http"))
    source = pc.if_else(pc.is_valid(sni), s_sni,
                        pc.if_else(pc.is_valid(quic), s_quic, pc.if_else(pc.is_valid(http), s_http, null)))
    unnamed = pc.indices_nonzero(pc.is_null(host)).to_pylist()
    if unnamed:
        hosts = host.to_pylist()
        sources = source.to_pylist()
        picked = conns.select(["server_ip", "first_seen", "input_index"]).take(unnamed)
        for row, ip, ts, idx in zip(unnamed, picked.column(0).to_pylist(), picked.column(1).to_pylist(),
                                    picked.column(2).to_pylist(), strict=True):
            name = dns.latest_before(idx, ip, ts) if ip else None
            hosts[row], sources[row] = (name, "dns") if name is not None else (ip or "", "ip")
        host, source = pa.array(hosts, pa.string()), pa.array(sources, pa.string())
    return conns.append_column("host", host).append_column("name_source", source)
