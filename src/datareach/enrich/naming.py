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
        self._sort(by_key)

    @classmethod
    def from_parts(cls, by_key: dict[tuple[int, str], list[tuple[float, str]]],
                   chains: dict[str, list[str]]) -> DnsIndex:
        """The index of answers already grouped: ``by_key`` (input, address) -> the (ts, qname)
        of each answer (the lists are sorted in place and kept), ``chains`` qname -> the CNAME
        chain of its last answer that had one (:class:`~datareach.engine.dnstally.DnsTally`)."""
        index = cls(())
        index.chains = chains
        index._sort(by_key)
        return index

    def _sort(self, by_key: dict[tuple[int, str], list[tuple[float, str]]]) -> None:
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
    # the others: by the DNS answers for their server's address (looked at one by one only where
    # the audit has answers for that address), else by the address itself
    ip = conns.column("server_ip")
    dns_name = pa.nulls(conns.num_rows, pa.string())
    if dns.times:
        asked = pc.and_(pc.is_null(host), pc.is_in(ip, value_set=pa.array(sorted({a for _, a in dns.times}),
                                                                              pa.string())))
        rows = pc.indices_nonzero(asked)
        if len(rows):
            picked = conns.select(["server_ip", "first_seen", "input_index"]).take(rows)
            names = [dns.latest_before(idx, a, ts) for a, ts, idx in
                     zip(*(c.to_pylist() for c in picked.columns), strict=True)]
            dns_name = pc.replace_with_mask(dns_name, asked.combine_chunks() if isinstance(asked, pa.ChunkedArray)
                                            else asked, pa.array(names, pa.string()))
    s_dns, s_ip = pa.scalar("dns", pa.string()), pa.scalar("ip", pa.string())
    source = pc.if_else(pc.is_valid(host), source, pc.if_else(pc.is_valid(dns_name), s_dns, s_ip))
    host = pc.coalesce(host, dns_name, ip, pa.scalar("", pa.string()))
    return conns.append_column("host", host).append_column("name_source", source)
