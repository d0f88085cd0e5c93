"""The enrich stages: Arrow table in, Arrow table out.

Each stage is a :class:`Stage`: a name, the columns it reads, the columns it adds or fills, and a
pure function of (table, :class:`EnrichContext`). The stages know nothing about where the rows
came from (a capture, a HAR file, Zeek logs) nor about how they are run: the local engine calls
them in this process, and a DuckDB or Spark engine can hand them record batches
(``mapInArrow``) without changes, because every stage works row by row except
:func:`group_destinations`, which is the engine's group-by (on integer codes, with numpy).

Connection level (:data:`CONNECTION_STAGES`), on a table of
:func:`~datareach.schema.arrow_schema` (:class:`~datareach.schema.Connection`):

* ``naming`` -- ``host`` and ``name_source``: an as-of join on the DNS answers (:mod:`.naming`).

Then :func:`group_destinations` turns named connections into a table of
:class:`~datareach.schema.Destination` rows in the document's order (by app, registrable domain,
host), each with its id, and the destination level stages (:data:`DESTINATION_STAGES`) fill it
(:func:`destination_chunks` does both a chunk at a time):

* ``geo`` -- ``servers[]`` scope, country and AS; ``ip_scope``, ``country``, ``countries``,
  ``asn``, ``as_org`` from the first server (:mod:`.geo`);
* ``domains`` -- ``registrable_domain`` (:mod:`.domains`);
* ``ownership`` -- ``owner`` and ``reach`` (:mod:`.ownership`), JSON text columns;
* ``services`` -- ``service``: the SDK or service product and its purpose (:mod:`.services`);
* ``data_types`` -- ``data_types`` and ``data_categories`` from the findings table.

:func:`destination_documents` turns the final table into the JSON document's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from datareach.enrich.naming import NAME_SOURCES, DnsIndex, name_connections
from datareach.schema import Destination, DnsAnswer, JsonCodec, arrow_schema, table_to_dicts
from datareach.schema.records import json_texts, json_values
from datareach.timestamps import iso

if TYPE_CHECKING:
    from datareach.enrich.geo import GeoResolver
    from datareach.enrich.ownership import OwnershipResolver
    from datareach.enrich.services import ServiceResolver


@dataclass
class EnrichContext:
    """What the stages need besides the table: the data they look things up in."""

    #: The audit's DNS answers (a table of :class:`~datareach.schema.DnsAnswer`).
    dns: pa.Table | None = None
    geo: GeoResolver | None = None
    #: .mmdb files imported into the knowledge base: they fill what the geo data lacks.
    extra_mmdb: Sequence[str] = ()
    resolver: OwnershipResolver | None = None
    #: The date facts are judged at when a destination has no first_seen.
    date: str = ""
    #: The findings (a table of :class:`~datareach.schema.Finding`).
    findings: pa.Table | None = None
    #: Filled by the ownership stage: the laws cited in ``reach``, by id.
    laws: dict[str, Any] = field(default_factory=dict)
    #: Makes and reads the JSON texts of the nested columns (servers, owner, reach).
    codec: JsonCodec = field(default_factory=JsonCodec)
    #: The uids of the connections whose TLS was decrypted (for the destinations' ``decrypted``).
    decrypted: Sequence[str] = ()
    _dns_index: DnsIndex | None = None
    _services: ServiceResolver | None = None

    def service_resolver(self) -> ServiceResolver | None:
        """The services' look-up over the resolver's knowledge base (None without a resolver)."""
        if self.resolver is None:
            return None
        if self._services is None or self._services.kb is not self.resolver.kb:
            from datareach.enrich.services import ServiceResolver

            self._services = ServiceResolver(self.resolver.kb, self.resolver.chain)
        return self._services

    def release_dns(self) -> None:
        """Let the DNS table and its index go (the stages after the group-by do not use them)."""
        self.dns = None
        self._dns_index = None

    def index_dns(self, answers: Iterable[tuple[float, str, str, Sequence[str], int]] | DnsIndex) -> None:
        """Index DNS answers given as (ts, qname, address, cname_chain, input_index), for an engine
        that holds them as records rather than as the ``dns`` table (or the index itself)."""
        self._dns_index = answers if isinstance(answers, DnsIndex) else DnsIndex(answers)

    def dns_index(self) -> DnsIndex:
        if self._dns_index is None:
            t = self.dns if self.dns is not None else arrow_schema(DnsAnswer).empty_table()
            cols = [t.column(c).to_pylist() for c in ("ts", "qname", "address", "cname_chain", "input_index")]
            self._dns_index = DnsIndex(zip(*cols, strict=True))
        return self._dns_index


@dataclass(frozen=True)
class Stage:
    """One enrichment step: ``run(table, ctx)`` returns ``table`` with ``provides`` filled."""

    name: str
    requires: tuple[str, ...]
    provides: tuple[str, ...]
    run: Callable[[pa.Table, EnrichContext], pa.Table]

    def __call__(self, table: pa.Table, ctx: EnrichContext) -> pa.Table:
        missing = [c for c in self.requires if c not in table.column_names]
        if missing:
            raise ValueError(f"stage {self.name}: the table has no column {', '.join(missing)}")
        return self.run(table, ctx)


def _set(table: pa.Table, name: str, values: Any) -> pa.Table:
    """``table`` with column ``name`` replaced (or added), typed as the Destination schema says."""
    schema = arrow_schema(Destination)
    typ = schema.field(name).type if name in schema.names else None
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, typ)
    i = table.schema.get_field_index(name)
    if i < 0:
        return table.append_column(name, arr)
    return table.set_column(i, name, arr)


# -- connection level ----------------------------------------------------------------------------


def _naming(conns: pa.Table, ctx: EnrichContext) -> pa.Table:
    return name_connections(conns, ctx.dns_index())


NAMING = Stage("naming", ("sni", "quic_sni", "http_host", "server_ip", "first_seen", "input_index"),
               ("host", "name_source"), _naming)
CONNECTION_STAGES: tuple[Stage, ...] = (NAMING,)


# -- connections to destinations -------------------------------------------------------------------


def group_destinations(t: pa.Table, ctx: EnrichContext) -> pa.Table:
    """Named connections grouped by (app, host): a table of Destination rows with the
    geography, domain, owner and data columns still empty (the engine's group-by), in the
    document's order (by app, registrable domain, host) and with their ids."""
    chunks = list(grouped_destinations(t, ctx))
    return pa.concat_tables(chunks) if chunks else arrow_schema(Destination).empty_table()


#: Destinations made (and enriched, by :func:`destination_chunks`) at a time.
CHUNK = 4096
#: Public DNS-over-HTTPS resolvers, by host name (the public list curl's project keeps,
#: https://github.com/curl/curl/wiki/DNS-over-HTTPS, and the providers' own documentation): a
#: connection to one carries the client's DNS look-ups, encrypted. DNS over TLS and over QUIC are
#: recognised by their port (853, RFC 7858 and RFC 9250) instead.
DOH_HOSTS = frozenset({
    "dns.google", "dns.google.com", "8888.google", "cloudflare-dns.com", "mozilla.cloudflare-dns.com",
    "chrome.cloudflare-dns.com", "one.one.one.one", "1dot1dot1dot1.cloudflare-dns.com",
    "security.cloudflare-dns.com", "family.cloudflare-dns.com", "dns.quad9.net", "dns9.quad9.net",
    "dns10.quad9.net", "dns11.quad9.net", "doh.opendns.com", "doh.familyshield.opendns.com",
    "dns.nextdns.io", "dns.adguard.com", "dns.adguard-dns.com", "unfiltered.adguard-dns.com",
    "family.adguard-dns.com", "doh.cleanbrowsing.org", "dns.mullvad.net", "doh.mullvad.net",
    "freedns.controld.com", "dns.controld.com", "doh.libredns.gr", "dns.alidns.com", "doh.pub", "dns.pub",
    "sm2.doh.pub", "doh.360.cn", "common.dot.dns.yandex.net", "safe.dot.dns.yandex.net", "doh.dns.sb",
    "dns.twnic.tw", "public.dns.iij.jp", "dns0.eu", "dns.switch.ch", "doh.ffmuc.net", "dns.digitale-gesellschaft.ch",
    "odvr.nic.cz", "doh.applied-privacy.net", "dns.brahma.world", "doh.tiar.app", "dns.rabbitdns.org",
    "doh.xfinity.com", "dohtrial.att.net", "doh.dns.apple.com",
})
#: Tunnels listed per destination at most.
MAX_TUNNELS_LISTED = 16

#: Server addresses that are not internet destinations: IPv4 and IPv6 multicast, the limited
#: broadcast address, and link-local addresses.
_LOCAL_ADDRESS = r"^(22[4-9]|23[0-9])\.|^[fF][fF]|^169\.254\.|^[fF][eE][89abAB]|^255\.255\.255\.255$"
#: Well-known local-network services (UDP), by port: with an address ending in .255 (a subnet's
#: broadcast address) their traffic is local too.
LOCAL_SERVICES = {5353: "mdns", 5355: "llmnr", 1900: "ssdp", 137: "netbios-ns", 138: "netbios-dgm",
                  67: "dhcp", 68: "dhcp", 546: "dhcpv6", 547: "dhcpv6", 3702: "ws-discovery", 9: "wake-on-lan",
                  1985: "hsrp", 5351: "nat-pmp", 6771: "bittorrent-lsd", 10001: "ubiquiti-discovery",
                  17500: "dropbox-lan-sync", 7: "echo"}


def split_local(conns: pa.Table) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Named connections apart from local-network traffic: multicast, broadcast and link-local
    (mDNS, LLMNR, SSDP, NetBIOS, DHCP...) is no internet destination. Returns the rest, and the
    local traffic counted by protocol (the document's ``local``): a link-local server that
    carried HTTP or TLS stays a destination (a cloud metadata service, a device's web page)."""
    if conns.num_rows == 0:
        return conns, []
    ip = pc.fill_null(conns.column("server_ip"), "")
    local = pc.match_substring_regex(ip, _LOCAL_ADDRESS)
    web = pc.fill_null(pc.is_in(conns.column("protocol"), value_set=pa.array(["http", "tls", "quic"])), False)
    linklocal = pc.match_substring_regex(ip, r"^169\.254\.|^[fF][eE][89abAB]")
    local = pc.and_(local, pc.invert(pc.and_(linklocal, web)))
    ports = conns.column("server_port")
    service = pc.is_in(ports, value_set=pa.array(list(LOCAL_SERVICES), pa.int32()))
    bcast = pc.and_(pc.and_(service, pc.ends_with(ip, ".255")), pc.equal(conns.column("transport"), "udp"))
    local = pc.fill_null(pc.or_(local, bcast), False)
    if not pc.any(local).as_py():
        return conns, []
    mine = conns.filter(local).select(["server_ip", "server_port", "transport", "packets_out", "packets_in",
                                       "bytes_out", "bytes_in", "flows"])
    groups: dict[str, dict[str, Any]] = {}
    cols = {n: mine.column(n).to_pylist() for n in mine.column_names}
    for i in range(mine.num_rows):
        port, transport = cols["server_port"][i], cols["transport"][i]
        name = LOCAL_SERVICES.get(port) if transport == "udp" else None
        name = name or f"{transport}/{port}"
        g = groups.get(name)
        if g is None:
            g = groups[name] = {"protocol": name, "connections": 0, "packets": 0, "bytes": 0, "addresses": set()}
        g["connections"] += cols["flows"][i]
        g["packets"] += cols["packets_out"][i] + cols["packets_in"][i]
        g["bytes"] += cols["bytes_out"][i] + cols["bytes_in"][i]
        if len(g["addresses"]) < MAX_TUNNELS_LISTED:
            g["addresses"].add(cols["server_ip"][i])
    out = sorted(groups.values(), key=lambda g: (-g["connections"], g["protocol"]))
    for g in out:
        g["addresses"] = sorted(g["addresses"])
    return conns.filter(pc.invert(local)), out


def grouped_destinations(t: pa.Table, ctx: EnrichContext, size: int | None = None) -> Iterator[pa.Table]:
    """:func:`group_destinations`, ``size`` destinations at a time, in the document's order.

    The group-by is done on integer codes with numpy (each connection's group, the groups'
    order, each group's connections in their order), which needs a few integers per
    connection; the destinations' rows are then made a chunk at a time from their connections,
    so that what is held in Python objects is bounded by ``size`` whatever the number of
    destinations.
    """
    import numpy as np

    from datareach.enrich.domains import registrable_domains

    size = size or CHUNK
    if t.num_rows == 0:
        return
    index = ctx.dns_index()
    schema = arrow_schema(Destination)
    columns: tuple[str, ...] = ("uid", "server_ip", "input_index", "bytes_out", "bytes_in", "packets_out", "packets_in", "flows",
               "first_seen", "last_seen", "ech", "name_source", "server_port", "transport", "protocol", "tunnel")
    t = t.select(["app", "host", *columns])  # (the other columns go now, before the group-by's arrays come)
    # whether each connection is encrypted (TLS, QUIC) and whether it was decrypted, as one int8:
    # 0 neither, 1 encrypted, 3 encrypted and decrypted
    enc = pc.cast(pc.fill_null(pc.is_in(t.column("protocol"), value_set=pa.array(["tls", "quic"])), False), pa.int8())
    if ctx.decrypted:
        dec = pc.cast(pc.is_in(t.column("uid"), value_set=pa.array(list(ctx.decrypted), pa.string())), pa.int8())
        enc = pc.add(enc, pc.multiply(dec, pa.scalar(2, pa.int8())))
    t = t.append_column("encrypted", enc)
    columns = (*columns, "encrypted")
    # (the columns of few values kept as small codes: they are held until the last chunk)
    t = t.set_column(t.schema.get_field_index("name_source"), "name_source",
                     pc.cast(pc.index_in(t.column("name_source"), value_set=pa.array(NAME_SOURCES)), pa.int8()))
    for name in ("transport", "protocol", "tunnel"):
        t = t.set_column(t.schema.get_field_index(name), name, pc.dictionary_encode(t.column(name)))
    # each connection's group: its (app, host) pair as one integer code
    apps = pc.dictionary_encode(pc.fill_null(t.column("app"), "").combine_chunks())
    hosts = pc.dictionary_encode(pc.fill_null(t.column("host"), "").combine_chunks())
    width = max(len(hosts.dictionary), 1)
    codes, group = np.unique(apps.indices.to_numpy().astype(np.int64) * width + hosts.indices.to_numpy(),
                             return_inverse=True)
    group_app = apps.dictionary.take(pa.array(codes // width))
    group_host = hosts.dictionary.take(pa.array(codes % width))
    del apps, hosts, codes
    # the document's order: by app, registrable domain (the host where there is none), host
    domain = registrable_domains(group_host)
    order = pc.sort_indices(pa.table({"app": group_app, "domain": pc.coalesce(domain, group_host),
                                      "host": group_host}),
                            sort_keys=[("app", "ascending"), ("domain", "ascending"), ("host", "ascending")])
    del domain
    groups = len(group_app)
    place = np.empty(groups, dtype=np.int64)
    place[order.to_numpy()] = np.arange(groups, dtype=np.int64)
    group_app, group_host = group_app.take(order), group_host.take(order)
    # the connections by their group's place, each group's in their own order
    row_place = place[group.reshape(-1)]
    del group, place, order
    rows = np.argsort(row_place, kind="stable")
    starts = np.zeros(groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_place, minlength=groups), out=starts[1:])
    del row_place
    t = t.select(list(columns))
    for first in range(0, groups, size):
        last = min(first + size, groups)
        lo, hi = int(starts[first]), int(starts[last])
        conns = t.take(pa.array(rows[lo:hi]))
        bounds = starts[first : last + 1] - lo
        yield _destination_rows(conns, bounds, group_app.slice(first, last - first).to_pylist(),
                                group_host.slice(first, last - first).to_pylist(), first, index, ctx, schema)


def _reduce(fn: Any, values: Any, bounds: Any) -> list[Any]:
    """``fn.reduceat`` of each group's values (every group has some), as Python values (NaN: None)."""
    import numpy as np

    out = fn.reduceat(values, bounds[:-1]) if len(values) else np.array([])
    if out.dtype.kind == "f":
        return [None if v != v else v for v in out.tolist()]
    return list(out.tolist())


def _distinct(column: Any, bounds: Any) -> list[list[Any]]:
    """Each group's distinct values of a column (null included), sorted by their first code."""
    import numpy as np

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    enc = pc.dictionary_encode(column, null_encoding="encode")
    values = enc.dictionary.to_pylist()
    k = max(len(values), 1)
    group = np.repeat(np.arange(len(bounds) - 1, dtype=np.int64), np.diff(bounds))
    pairs = np.unique(group * k + enc.indices.to_numpy())
    out: list[list[Any]] = [[] for _ in range(len(bounds) - 1)]
    for g, code in zip((pairs // k).tolist(), (pairs % k).tolist(), strict=True):
        out[g].append(values[code])
    return out


def _destination_rows(conns: pa.Table, bounds: Any, apps: list[str], hosts: list[str], first: int,
                      index: DnsIndex, ctx: EnrichContext, schema: pa.Schema) -> pa.Table:
    """Destination rows of consecutive groups (ids from ``first``) from their connections
    (``conns``: group g's are rows ``bounds[g]`` to ``bounds[g + 1]``, in their own order)."""
    import numpy as np

    ngroups = len(hosts)
    group = np.repeat(np.arange(ngroups, dtype=np.int64), np.diff(bounds))
    # each group's servers (summed over inputs) and names, in the order the connections first
    # showed each (server, input)
    ips = pc.dictionary_encode(conns.column("server_ip").combine_chunks())
    inputs = conns.column("input_index").to_numpy()
    total = conns.column("bytes_out").to_numpy() + conns.column("bytes_in").to_numpy()
    span = int(inputs.max()) + 1 if len(inputs) else 1
    key = (group * max(len(ips.dictionary), 1) + ips.indices.to_numpy()) * span + inputs
    _, firsts, inverse = np.unique(key, return_index=True, return_inverse=True)
    sums = np.zeros(len(firsts), dtype=np.int64)
    np.add.at(sums, inverse.reshape(-1), total)
    servers: list[dict[str, int]] = [{} for _ in range(ngroups)]
    names: list[dict[str, None]] = [{} for _ in range(ngroups)]
    seen = np.argsort(firsts, kind="stable")
    at = firsts[seen]
    for g, ip, idx, nbytes in zip(group[at].tolist(), ips.dictionary.take(ips.indices.take(pa.array(at))).to_pylist(),
                                  inputs[at].tolist(), sums[seen].tolist(), strict=True):
        servers[g][ip] = servers[g].get(ip, 0) + nbytes
        for name in index.names(idx, ip):
            names[g].setdefault(name, None)
    cols = {
        "bytes_out_sum": _reduce(np.add, conns.column("bytes_out").to_numpy(), bounds),
        "bytes_in_sum": _reduce(np.add, conns.column("bytes_in").to_numpy(), bounds),
        "packets_out_sum": _reduce(np.add, conns.column("packets_out").to_numpy(), bounds),
        "packets_in_sum": _reduce(np.add, conns.column("packets_in").to_numpy(), bounds),
        "flows_sum": _reduce(np.add, conns.column("flows").to_numpy(), bounds),
        "first_seen_min": _reduce(np.fmin, pc.cast(conns.column("first_seen"), pa.float64()).to_numpy(
            zero_copy_only=False), bounds),
        "last_seen_max": _reduce(np.fmax, pc.cast(conns.column("last_seen"), pa.float64()).to_numpy(
            zero_copy_only=False), bounds),
        "ech_any": _reduce(np.logical_or, pc.fill_null(conns.column("ech"), False).to_numpy(
            zero_copy_only=False), bounds),
        "encrypted_sum": _reduce(np.add, (conns.column("encrypted").to_numpy() & 1).astype(np.int64), bounds),
        "decrypted_sum": _reduce(np.add, (conns.column("encrypted").to_numpy() >> 1).astype(np.int64), bounds),
        "rank_distinct": _distinct(conns.column("name_source"), bounds),
        "server_port_distinct": _distinct(conns.column("server_port"), bounds),
        "transport_distinct": _distinct(conns.column("transport"), bounds),
        "protocol_distinct": _distinct(conns.column("protocol"), bounds),
        "input_index_distinct": _distinct(conns.column("input_index"), bounds),
        "tunnel_distinct": _distinct(conns.column("tunnel"), bounds),
    }
    rows: dict[str, list[Any]] = {name: [] for name in schema.names}
    for i, host in enumerate(hosts):
        place = first + i
        app = apps[i]
        ranks = sorted(r for r in cols["rank_distinct"][i] if r is not None)
        ips_ = [ip for ip, _ in sorted(servers[i].items(), key=lambda kv: (-kv[1], kv[0]))]
        rows["id"].append(f"D{place}")
        rows["host"].append(host)
        rows["name_source"].append(NAME_SOURCES[ranks[0]] if ranks else None)
        rows["name_sources"].append([NAME_SOURCES[r] for r in ranks])
        rows["names"].append(list(names[i]))
        rows["cname_chain"].append(index.cname_chain(host))
        rows["ips"].append(ips_)
        rows["ports"].append(sorted(cols["server_port_distinct"][i]))
        rows["transports"].append(sorted(cols["transport_distinct"][i]))
        rows["protocols"].append(sorted(p for p in cols["protocol_distinct"][i] if p))
        rows["servers"].append([{"ip": ip, "ip_scope": None, "country": None, "asn": None, "as_org": None,
                                 "anycast": None} for ip in ips_])
        rows["bytes_out"].append(cols["bytes_out_sum"][i])
        rows["bytes_in"].append(cols["bytes_in_sum"][i])
        rows["packets_out"].append(cols["packets_out_sum"][i])
        rows["packets_in"].append(cols["packets_in_sum"][i])
        rows["connections"].append(cols["flows_sum"][i])
        rows["first_seen"].append(iso(cols["first_seen_min"][i]))
        rows["last_seen"].append(iso(cols["last_seen_max"][i]))
        rows["ech"].append(bool(cols["ech_any"][i]))
        n_enc, n_dec = cols["encrypted_sum"][i], cols["decrypted_sum"][i]
        rows["decrypted"].append(None if not n_enc else "none" if not n_dec else "all" if n_dec == n_enc else "some")
        rows["app"].append(app or None)
        rows["inputs"].append(sorted(cols["input_index_distinct"][i]))
        rows["tunnels"].append(sorted(v for v in cols["tunnel_distinct"][i] if v)[:MAX_TUNNELS_LISTED])
        protocols = set(rows["protocols"][-1])
        rows["encrypted_dns"].append(
            ("dns-over-quic" if "quic" in protocols else "dns-over-tls")
            if 853 in cols["server_port_distinct"][i] and protocols & {"tls", "quic"}
            else "dns-over-https" if host in DOH_HOSTS and protocols & {"tls", "quic", "http"} else None)
    n = len(rows["host"])
    for name in ("registrable_domain", "ip_scope", "country", "asn", "as_org", "owner", "service", "clients"):
        rows[name] = [None] * n
    for name in ("countries", "data_types", "data_categories"):
        rows[name] = [[] for _ in range(n)]
    rows["reach"] = ["[]"] * n
    rows["hosting"] = ["[]"] * n
    rows["servers"] = json_texts(rows["servers"], ctx.codec)
    # each group's uids in the order of its connections (an input's reader numbers them in order)
    rows["uids"] = pa.ListArray.from_arrays(pa.array(bounds.astype(np.int32)), conns.column("uid").combine_chunks())
    return pa.table([rows[f.name] if f.name == "uids" else pa.array(rows[f.name], f.type) for f in schema],
                    schema=schema)


def destination_chunks(t: pa.Table, ctx: EnrichContext, stages: Sequence[Stage],
                       size: int | None = None) -> Iterator[pa.Table]:
    """Named connections to enriched destinations: :func:`grouped_destinations` with the
    destination ``stages`` run on each chunk (they work row by row), in the document's order
    and with their ids. What an engine writes out chunk by chunk stays bounded in memory."""
    chunks = grouped_destinations(t, ctx, size)
    del t  # (the group-by lets the connections go once it has grouped them)
    for chunk in chunks:
        for stage in stages:
            chunk = stage(chunk, ctx)
        yield chunk


def document_order(t: pa.Table) -> list[int]:
    """The rows of a destination table in the document's order (by their ids; in the table's
    order where they have none)."""
    ids = t.column("id").to_pylist()
    if None in ids:
        return list(range(t.num_rows))
    return sorted(range(t.num_rows), key=lambda i: int(ids[i][1:]))


# -- destination level -----------------------------------------------------------------------------


def _loads(values: pa.ChunkedArray | pa.Array, ctx: EnrichContext) -> list[Any]:
    return json_values(values.to_pylist(), ctx.codec)


def _dumps(values: list[Any], ctx: EnrichContext) -> list[Any]:
    return json_texts(values, ctx.codec)


def _geo(t: pa.Table, ctx: EnrichContext) -> pa.Table:
    if ctx.geo is None or t.num_rows == 0:
        return t
    from datareach.enrich.geo import fill_servers

    # (new server dicts: what the codec has encoded must not change)
    servers = [[dict(s) for s in ss] for ss in _loads(t.column("servers"), ctx)]
    ips = pa.array(sorted({s["ip"] for ss in servers for s in ss}), pa.string())
    geo_cols = ctx.geo.enrich(ips)
    geo_of = dict(zip(ips.to_pylist(), zip(*(geo_cols.column(c).to_pylist() for c in
                                              ("ip_scope", "country", "asn", "as_org")), strict=True),
                      strict=True))
    docs: list[dict[str, Any]] = []
    for ss in servers:
        for s in ss:
            s["ip_scope"], s["country"], s["asn"], s["as_org"] = geo_of.get(s["ip"], (None, None, None, None))
        first = ss[0] if ss else {}
        docs.append({"servers": ss, "ip_scope": first.get("ip_scope"), "country": first.get("country"),
                     "asn": first.get("asn"), "as_org": first.get("as_org"),
                     "countries": sorted({s["country"] for s in ss if s["country"]})})
    if ctx.extra_mmdb:
        fill_servers(docs, ctx.extra_mmdb)
    from datareach.enrich.anycast import label_servers  # anycast / CDN edge addresses

    label_servers(s for d in docs for s in d["servers"])
    t = _set(t, "servers", _dumps([d["servers"] for d in docs], ctx))
    for name in ("ip_scope", "country", "asn", "as_org", "countries"):
        t = _set(t, name, [d[name] for d in docs])
    return t


def _domains(t: pa.Table, ctx: EnrichContext) -> pa.Table:
    from datareach.enrich.domains import registrable_domains

    return _set(t, "registrable_domain", registrable_domains(t.column("host")))


def _ownership(t: pa.Table, ctx: EnrichContext) -> pa.Table:
    if ctx.resolver is None:
        return t
    from datareach.enrich.ownership import cited_laws

    owners: list[Any] = []
    hostings: list[Any] = []
    reaches: list[Any] = []
    cols = {c: t.column(c).to_pylist() for c in ("host", "first_seen", "cname_chain")}
    servers = _loads(t.column("servers"), ctx)
    for host, first, chain, ss in zip(cols["host"], cols["first_seen"], cols["cname_chain"], servers, strict=True):
        owner, hosting, reach = ctx.resolver.resolve_all(
            host, (first or ctx.date)[:10], cname_chain=chain or (), servers=ss)
        owners.append(owner)
        hostings.append(hosting)
        reaches.append(reach)
    ctx.laws.update(cited_laws(ctx.resolver.kb, (r for rs in reaches for r in rs)))
    t = _set(t, "owner", _dumps(owners, ctx))
    t = _set(t, "hosting", _dumps(hostings, ctx))
    return _set(t, "reach", _dumps(reaches, ctx))


def _services(t: pa.Table, ctx: EnrichContext) -> pa.Table:
    services = ctx.service_resolver()
    if services is None:
        return t
    hosts = t.column("host").to_pylist()
    chains = t.column("cname_chain").to_pylist()
    found = [services.match(h or "", c or ()) for h, c in zip(hosts, chains, strict=True)]
    if not any(found):
        return _set(t, "service", [None] * t.num_rows)
    owners = _loads(t.column("owner"), ctx) if "owner" in t.column_names else [None] * t.num_rows
    firsts = t.column("first_seen").to_pylist() if "first_seen" in t.column_names else [None] * t.num_rows
    out = [None if f is None else services.of(f, o, (first or ctx.date)[:10])
           for f, o, first in zip(found, owners, firsts, strict=True)]
    return _set(t, "service", _dumps(out, ctx))


def _data_types(t: pa.Table, ctx: EnrichContext) -> pa.Table:
    if ((ctx.findings is None or ctx.findings.num_rows == 0)
            and all(c in t.column_names and t.column(c).null_count == 0 for c in ("data_types", "data_categories"))):
        return t  # nothing found, and the columns are already (empty) lists
    kinds: dict[tuple[str | None, str], set[str]] = {}
    cats: dict[tuple[str | None, str], set[str]] = {}
    if ctx.findings is not None and ctx.findings.num_rows:
        f = ctx.findings
        for app, host, kind, categories in zip(*(f.column(c).to_pylist() for c in
                                                 ("app", "host", "data_type", "categories")), strict=True):
            kinds.setdefault((app, host), set()).add(kind)
            cats.setdefault((app, host), set()).update(categories)
    keys = list(zip(t.column("app").to_pylist(), t.column("host").to_pylist(), strict=True))
    t = _set(t, "data_types", [sorted(kinds.get(k, ())) for k in keys])
    return _set(t, "data_categories", [sorted(cats.get(k, ())) for k in keys])


GEO = Stage("geo", ("servers",), ("servers", "ip_scope", "country", "countries", "asn", "as_org"), _geo)
DOMAINS = Stage("domains", ("host",), ("registrable_domain",), _domains)
OWNERSHIP = Stage("ownership", ("host", "first_seen", "cname_chain", "servers"), ("owner", "hosting", "reach"),
                  _ownership)
SERVICES = Stage("services", ("host", "cname_chain"), ("service",), _services)
DATA_TYPES = Stage("data_types", ("app", "host"), ("data_types", "data_categories"), _data_types)
DESTINATION_STAGES: tuple[Stage, ...] = (GEO, DOMAINS, OWNERSHIP, SERVICES, DATA_TYPES)


def destination_documents(t: pa.Table, codec: JsonCodec | None = None) -> list[dict[str, Any]]:
    """The destinations of the JSON document (its fields, in the declared order), in the
    document's order (by the ids :func:`group_destinations` gave). ``codec``: the one that made the
    table's JSON texts (:attr:`EnrichContext.codec`), which gives their values back unparsed."""
    docs = table_to_dicts(Destination, t, codec=codec)
    return [docs[i] for i in document_order(t)]
