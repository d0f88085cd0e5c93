"""The enrich and assess stages on tables built by hand: no capture, no reader.

This is how another engine (DuckDB, Spark) uses them: it brings rows in the declared layout
(:mod:`datareach.schema`) and calls the same stage functions.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from datareach.assess import judge, load_policy
from datareach.enrich.geo import GeoResolver
from datareach.enrich.ownership import OwnershipResolver
from datareach.enrich.stages import (
    CONNECTION_STAGES,
    DESTINATION_STAGES,
    NAMING,
    EnrichContext,
    Stage,
    destination_documents,
    group_destinations,
)
from datareach.kb import knowledge_base
from datareach.schema import (
    Connection,
    Destination,
    DnsAnswer,
    Finding,
    Violation,
    arrow_schema,
    table_from_dicts,
    table_to_dicts,
)

T0 = 1_767_225_600.0  # 2026-01-01


def conn(uid: str, server_ip: str, *, sni: str | None = None, http_host: str | None = None, app: str | None = None,
         first: float = T0 + 10, out: int = 100, inn: int = 1000, port: int = 443) -> dict[str, object]:
    return {"uid": uid, "transport": "tcp", "client_ip": "10.0.0.2", "client_port": 40000, "server_ip": server_ip,
            "server_port": port, "first_seen": first, "last_seen": first + 1, "packets_out": 2, "bytes_out": out,
            "packets_in": 2, "bytes_in": inn, "sni": sni, "quic_sni": None, "http_host": http_host, "ech": False,
            "protocol": "tls" if sni else "http" if http_host else None, "alpn": [], "app": app, "input_index": 0,
            "flows": 1}


@pytest.fixture(scope="module")
def ctx() -> EnrichContext:
    dns = table_from_dicts(DnsAnswer, [
        # answered before the connection: names it
        {"ts": T0, "qname": "log.umeng.com", "rtype": "A", "address": "203.0.113.7",
         "cname_chain": ["log.umeng.com"], "ttl": 60, "input_index": 0, "uid": "C0.9"},
        # answered after the connection started (beyond the clock slack): does not name it
        {"ts": T0 + 100, "qname": "late.example.org", "rtype": "A", "address": "198.51.100.9",
         "cname_chain": ["late.example.org"], "ttl": 60, "input_index": 0, "uid": "C0.9"},
    ])
    findings = table_from_dicts(Finding, [
        {"id": "F0", "exchange": "E0.0", "uid": "C0.1", "host": "log.umeng.com", "app": "com.example.weather",
         "data_type": "advertising_id", "categories": ["us-doj:covered-personal-identifiers"], "source": "profile",
         "encoding": ["query"], "location": "query aid", "value_redacted": "38400000-…", "confidence": 1.0},
    ])
    kb = knowledge_base()
    return EnrichContext(dns=dns, geo=GeoResolver(), resolver=OwnershipResolver(kb), date="2026-01-01",
                         findings=findings)


@pytest.fixture(scope="module")
def connections() -> pa.Table:
    return table_from_dicts(Connection, [
        conn("C0.0", "142.250.74.36", sni="www.google.com", app="com.example.weather"),
        conn("C0.1", "203.0.113.7", app="com.example.weather", out=5000),  # named by DNS only
        conn("C0.2", "203.0.113.7", app="com.example.weather", out=7000),  # the same destination again
        conn("C0.3", "198.51.100.9", port=80),  # the DNS answer came later: the address is the host
        conn("C0.4", "192.168.1.1", http_host="router.lan", port=80),  # a private server
    ])


def test_naming_is_an_as_of_join_on_the_dns_table(ctx: EnrichContext, connections: pa.Table) -> None:
    named = NAMING(connections, ctx)
    assert named.num_rows == connections.num_rows
    assert list(zip(named.column("host").to_pylist(), named.column("name_source").to_pylist(), strict=True)) == [
        ("www.google.com", "sni"), ("log.umeng.com", "dns"), ("log.umeng.com", "dns"),
        ("198.51.100.9", "ip"), ("router.lan", "http")]


def test_the_stages_turn_connection_rows_into_destinations(ctx: EnrichContext, connections: pa.Table) -> None:
    table = connections
    for stage in CONNECTION_STAGES:
        table = stage(table, ctx)
    dest = group_destinations(table, ctx)
    assert dest.schema == arrow_schema(Destination)
    for stage in DESTINATION_STAGES:
        dest = stage(dest, ctx)
    assert dest.schema == arrow_schema(Destination)
    docs = {d["host"]: d for d in destination_documents(dest)}
    assert set(docs) == {"www.google.com", "log.umeng.com", "198.51.100.9", "router.lan"}
    umeng = docs["log.umeng.com"]
    # two connections grouped, with their uids (in the table, not the document)
    assert umeng["connections"] == 2 and umeng["bytes_out"] == 12000 and umeng["name_source"] == "dns"
    row = table_to_dicts(Destination, dest, json_only=False)
    assert next(r for r in row if r["host"] == "log.umeng.com")["uids"] == ["C0.1", "C0.2"]
    assert "uids" not in umeng
    # domains, ownership and reach from the knowledge base, data types from the findings table
    assert umeng["registrable_domain"] == "umeng.com"
    assert umeng["owner"] is not None and umeng["owner"]["basis"] == "domain"
    assert "CN" in {r["jurisdiction"] for r in umeng["reach"] if r["basis"] == "owner"}
    assert umeng["data_types"] == ["advertising_id"]
    assert docs["www.google.com"]["data_types"] == []
    # geography: a public address has a country, a private one has a scope and never a country
    assert docs["www.google.com"]["country"] and docs["www.google.com"]["ip_scope"] == "public"
    assert docs["router.lan"]["ip_scope"] == "private" and docs["router.lan"]["country"] is None
    assert docs["198.51.100.9"]["registrable_domain"] is None
    # ids in the document's order: by app, registrable domain (else host), host
    listed = destination_documents(dest)
    assert [d["id"] for d in listed] == [f"D{i}" for i in range(4)]
    keys = [(d["app"] or "", d["registrable_domain"] or d["host"], d["host"]) for d in listed]
    assert keys == sorted(keys)

    # the assess stage over the same tables: a table of violations naming ids
    policy = load_policy("us-doj-bulk-data")
    violations = judge([policy], dest, ctx.findings, ctx.resolver.kb, ctx.resolver, "2026-01-01")  # type: ignore[union-attr]
    assert violations.schema == arrow_schema(Violation)
    found = table_to_dicts(Violation, violations)
    assert found, "an advertising ID sent to a Chinese company is a covered transfer"
    assert {v["host"] for v in found} == {"log.umeng.com"}
    assert all(v["destination"] == umeng["id"] and v["findings"] == ["F0"] for v in found)


def test_a_stage_refuses_a_table_without_its_columns(ctx: EnrichContext) -> None:
    with pytest.raises(ValueError, match="no column sni"):
        NAMING(pa.table({"server_ip": ["192.0.2.1"]}), ctx)


def test_stages_declare_what_they_read_and_write() -> None:
    dest_columns = set(arrow_schema(Destination).names)
    conn_columns = set(arrow_schema(Connection).names)
    for stage in CONNECTION_STAGES:
        assert set(stage.requires) <= conn_columns
    for s in DESTINATION_STAGES:
        assert isinstance(s, Stage)
        assert set(s.requires) <= dest_columns and set(s.provides) <= dest_columns, s.name


def test_destination_stages_work_batch_by_batch(ctx: EnrichContext, connections: pa.Table) -> None:
    """What a Spark engine's mapInArrow does: the destination stages on record batches of any
    size give the rows they give on the whole table (they are row by row; only the group-by
    needs all rows)."""
    named = connections
    for stage in CONNECTION_STAGES:
        named = stage(named, ctx)
    grouped = group_destinations(named, ctx)
    whole = grouped
    for stage in DESTINATION_STAGES:
        whole = stage(whole, ctx)
    for size in (1, 2, 3):
        parts = []
        for batch in grouped.to_batches(max_chunksize=size):
            t = pa.Table.from_batches([batch])
            for stage in DESTINATION_STAGES:
                t = stage(t, ctx)
            parts.append(t)
        assert pa.concat_tables(parts).to_pylist() == whole.to_pylist()
