"""Suricata EVE -> normalised tables (sources/eve.py), on real records (tests/data/logs/eve/).

Expectations are read off the records by hand (sources and licences: the README there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach.sources import eve
from datareach.sources.sql import DUCKDB, SPARK

DATA = Path(__file__).parent / "data" / "logs" / "eve"
TENZIR = DATA / "tenzir-suricata.eve.json"
VERIFY = DATA / "suricata-verify-fileinfo.eve.json"
SL7 = DATA / "suricatalog-eve2-suricata7.eve.json"  # Suricata 7: tls, dns v2, http + fileinfo, flows
SL6_DHCP = DATA / "suricatalog-large-suricata6-dhcp.eve.json"  # Suricata 6: dhcp ack


def run(files: list[tuple[Path, int]]) -> dict[str, list[dict[str, Any]]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for table, sql in eve.table_sql(DUCKDB, files).items():
        rel = con.sql(sql)
        out[table] = [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]
    return out


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


# ------------------------------------------------------------------------------------------------


def test_sniff() -> None:
    for path in (TENZIR, VERIFY, SL7, SL6_DHCP):
        assert eve.sniff(path.read_bytes()[:4096])
    assert eve.sniff(TENZIR.read_bytes()[:100])  # a head cut inside the first line
    assert eve.sniff(b"\xef\xbb\xbf" + VERIFY.read_bytes())
    zeek_json = b'{"ts":1.0,"uid":"CHhAvVGS1DHFjwGM9","id.orig_h":"10.0.0.1","id.orig_p":1}\n'
    assert not eve.sniff(zeek_json)
    assert not eve.sniff(b"#separator \\x09\n#set_separator\t,\n")
    assert not eve.sniff(b"")
    assert not eve.sniff(b'{"event_type": 3}\n')


def test_schema_is_declared_once() -> None:
    cols = eve.duckdb_columns()
    assert list(cols) == [n for n, _ in eve.EVE_SCHEMA.fields]
    assert cols["dns"].startswith("STRUCT(") and '"answers" STRUCT("rrname" VARCHAR' in cols["dns"]
    ddl = eve.spark_ddl()
    assert ddl.startswith("`timestamp` STRING, `flow_id` BIGINT")
    assert "`grouped`: STRUCT<`A`: ARRAY<STRING>, `AAAA`: ARRAY<STRING>, `CNAME`: ARRAY<STRING>>" in ddl


def test_sources_group_by_input_and_directory(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    srcs = eve.sources([(tmp_path / "a" / "eve.json", 0), (tmp_path / "eve.json", 1),
                        (tmp_path / "a" / "eve.json.1.gz", 0)])
    assert [(s.input_index, s.directory, len(s.paths)) for s in srcs] == [
        (0, str(tmp_path / "a"), 2), (1, str(tmp_path), 1)]
    assert len({s.view for s in srcs}) == 2
    with pytest.raises(ValueError):
        eve.table_sql(DUCKDB, [])


def test_tenzir_conn_names_http() -> None:
    out = run([(TENZIR, 3)])
    # One flow record (the UDP/138 broadcast, app_proto "failed"); the alert's and netflow's
    # flow data are not connections.
    (conn,) = out["conn"]
    assert conn == {
        "uid": "F929669869939483",
        "ts": pytest.approx(1313153627.928539),  # 2011-08-12T14:53:47.928539+0200
        "duration": pytest.approx(0.000013, abs=1e-6),
        "client_ip": "147.32.84.165", "client_port": 138,
        "server_ip": "147.32.84.255", "server_port": 138,
        "transport": "udp", "protocol": None,
        "bytes_out": 486, "bytes_in": 0, "packets_out": 2, "packets_in": 0,
        "client_mac": None, "community_id": None, "input_index": 3,
    }
    names = by(out["names"], "uid")
    assert names["F377203059543418"]["quic_sni"] == "stats.g.doubleclick.net"
    assert names["F269421754201300"]["http_host"] == "cr-tools.clients.google.com"
    assert set(names) == {"F377203059543418", "F269421754201300"}
    (http,) = out["http"]  # the fileinfo record's flow has no http record
    assert http["uid"] == "F269421754201300"
    assert http["ts"] == pytest.approx(1313154036.378914)  # 15:00:36.378914+0200
    assert (http["client_ip"], http["server_ip"], http["server_port"]) == ("147.32.84.165", "74.125.232.202", 80)
    assert (http["method"], http["host"], http["user_agent"]) == (
        "GET", "cr-tools.clients.google.com", "Google Update/1.3.21.65;winhttp")
    assert http["uri"].startswith("/service/check2?appid=%7B430FD4D0")
    assert http["status"] is None and http["request_body_len"] is None and http["body_file"] is None
    # The only DNS record is a query: no answers.
    assert out["dns"] == [] and out["dhcp"] == []


def test_response_files_are_not_request_bodies() -> None:
    # All three files' fileinfo records are response bodies (src_port 80: the server's side).
    out = run([(VERIFY, 0), (TENZIR, 0), (SL7, 0)])
    assert all(h["body_file"] is None for h in out["http"])


def test_suricata7_flows_names_http() -> None:
    out = run([(SL7, 1)])
    conn = by(out["conn"], "uid")
    assert set(conn) == {"F1114937978308504", "F1009692624612680", "F2059465203321471"}
    tls = conn["F1114937978308504"]
    assert tls == {
        "uid": "F1114937978308504",
        "ts": pytest.approx(1644331235.325127),  # flow.start 2022-02-08T09:40:35.325127-0500
        "duration": pytest.approx(61.144584, abs=1e-5),  # end 09:41:36.469711
        "client_ip": "10.2.8.102", "client_port": 49738,
        "server_ip": "204.79.197.200", "server_port": 443,
        "transport": "tcp", "protocol": "tls",
        "bytes_out": 3354, "bytes_in": 7803, "packets_out": 16, "packets_in": 14,
        "client_mac": None, "community_id": None, "input_index": 1,
    }
    web = conn["F1009692624612680"]
    assert (web["client_ip"], web["client_port"], web["server_ip"], web["server_port"]) == (
        "10.2.8.102", 49740, "66.175.58.9", 80)
    assert (web["transport"], web["protocol"]) == ("tcp", "http")
    assert (web["bytes_out"], web["bytes_in"], web["packets_out"], web["packets_in"]) == (7124, 393690, 130, 284)
    assert web["ts"] == pytest.approx(1644331331.235087)  # 09:42:11.235087-0500
    assert web["duration"] == pytest.approx(6.300477, abs=1e-5)  # to 09:42:17.535564
    dns = conn["F2059465203321471"]
    assert (dns["transport"], dns["protocol"], dns["server_ip"], dns["server_port"]) == ("udp", "dns", "10.2.8.8", 53)
    assert (dns["bytes_out"], dns["bytes_in"]) == (90, 211)

    names = by(out["names"], "uid")
    assert names == {
        "F1114937978308504": {"uid": "F1114937978308504", "sni": "www.bing.com", "quic_sni": None,
                              "http_host": None, "cert_name": "www.bing.com"},  # subject "CN=www.bing.com"
        "F1009692624612680": {"uid": "F1009692624612680", "sni": None, "quic_sni": None,
                              "http_host": "tonysommers.net", "cert_name": None},
    }
    (http,) = out["http"]
    assert http == {
        "uid": "F1009692624612680",
        "ts": pytest.approx(1644331332.747531),  # 09:42:12.747531-0500
        "client_ip": "10.2.8.102", "server_ip": "66.175.58.9", "server_port": 80,
        "method": "GET", "host": "tonysommers.net", "uri": "/eln-images/BowlvMV7raSyx8l/",
        "user_agent": None, "referrer": None,
        # The flow's fileinfo record is the response's (the DLL, src 66.175.58.9:80): no request body.
        "request_body_len": None, "status": 200, "body_file": None, "input_index": 1,
    }
    assert out["dhcp"] == []


CNAME_CHAIN = ("self.events.data.microsoft.com", "self-events-data.trafficmanager.net",
               "onedscolprdjpe03.japaneast.cloudapp.azure.com")


def test_suricata7_dns_v2_answers() -> None:
    """A version-2 answer (``answers`` and ``grouped``): the query name from ``dns.rrname``, the
    CNAMEs of ``answers`` in order; the query record gives no row."""
    rows = run([(SL7, 0)])["dns"]
    assert [(r["client_ip"], r["qname"], r["rtype"], r["address"], r["ttl"], tuple(r["cname_chain"]))
            for r in rows] == [("10.2.8.102", "self.events.data.microsoft.com", "A", "13.78.111.199", 1, CNAME_CHAIN)]
    assert rows[0]["ts"] == pytest.approx(1644331447.742091)  # 09:44:07.742091-0500
    assert rows[0]["input_index"] == 0


def test_dns_v2_grouped_only(tmp_path: Path) -> None:
    """The ``grouped`` path (``formats: [grouped]``): no real record logged with ``grouped`` only was
    found, so the real version-2 answer is read with its ``answers`` dropped, at test time; the
    addresses then come from ``grouped.A`` (no TTL) and the chain from ``grouped.CNAME``."""
    (line,) = [ln for ln in SL7.read_text().splitlines() if '"type":"answer"' in ln]
    record = json.loads(line)
    del record["dns"]["answers"]
    path = tmp_path / "eve.json"
    path.write_text(json.dumps(record) + "\n")
    rows = run([(path, 0)])["dns"]
    assert [(r["client_ip"], r["qname"], r["rtype"], r["address"], r["ttl"], tuple(r["cname_chain"]))
            for r in rows] == [("10.2.8.102", "self.events.data.microsoft.com", "A", "13.78.111.199", None, CNAME_CHAIN)]


def test_suricata6_dhcp_ack() -> None:
    out = run([(SL6_DHCP, 2)])
    assert out["dhcp"] == [{
        "ts": pytest.approx(1693713749.33843),  # 2023-09-03T07:02:29.338430+0300
        "mac": "a2:62:9c:34:16:f8", "host_name": None, "assigned_addr": "192.168.55.199", "input_index": 2,
    }]
    assert out["conn"] == [] and out["dns"] == [] and out["names"] == []


def test_input_index_and_gzip(tmp_path: Path) -> None:
    import gzip
    gz = tmp_path / "eve.json.1.gz"
    gz.write_bytes(gzip.compress(SL7.read_bytes()))
    out = run([(TENZIR, 0), (gz, 5)])
    assert sorted((r["uid"], r["input_index"]) for r in out["conn"]) == [
        ("F1009692624612680", 5), ("F1114937978308504", 5), ("F2059465203321471", 5), ("F929669869939483", 0)]


# ------------------------------------------------------------------------------------------------
# Hostile lines

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(["timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_port", "proto",
                        "flow", "dns", "tls", "quic", "http", "fileinfo", "dhcp", "ether", "tx_id"])
records = st.dictionaries(keys, json_values, max_size=8).map(
    lambda d: {"event_type": "dns", **d} if "event_type" not in d else d)
lines = st.one_of(
    records.map(json.dumps),
    st.text(max_size=60),  # not JSON
    records.map(lambda r: json.dumps(r)[: max(1, len(json.dumps(r)) // 2)]),  # cut short
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(lines, min_size=1, max_size=8))
def test_hostile_lines_do_not_crash(tmp_path: Path, hostile: list[str]) -> None:
    real = SL7.read_text().splitlines()[5]  # the TLS connection's flow record
    path = tmp_path / "eve.json"
    text = "\n".join(line.replace("\n", " ").replace("\r", " ") for line in hostile)
    path.write_text(real + "\n" + text + "\n")
    out = run([(path, 0)])
    assert "F1114937978308504" in {r["uid"] for r in out["conn"]}
    for table in eve.TABLES:
        assert isinstance(out[table], list)


def test_huge_string_line(tmp_path: Path) -> None:
    path = tmp_path / "eve.json"
    big = json.dumps({"event_type": "http", "flow_id": 9, "http": {"hostname": "x" * 20_000_000}})
    path.write_text(big + "\n" + SL7.read_text())
    out = run([(path, 0)])
    assert {r["uid"] for r in out["http"]} == {"F9", "F1009692624612680"}


# ------------------------------------------------------------------------------------------------
# The same SQL on Spark


def test_spark_gives_duckdbs_rows(spark: Any) -> None:
    # (the suite's one Spark session, local[2]: a second one in the same process would be the
    # same session, and stopping it would stop every other Spark test's)
    files = [(TENZIR, 0), (VERIFY, 0), (SL7, 1), (SL6_DHCP, 2)]
    for src in eve.sources(files):
        spark.read.schema(eve.spark_ddl()).json(list(src.paths)).createOrReplaceTempView(src.view)
    duck = run(files)
    for table, sql in eve.table_sql(SPARK, files).items():
        df = spark.sql(sql)
        assert df.columns == list(duck[table][0]) if duck[table] else True
        rows = [r.asDict() for r in df.collect()]
        assert canon(rows) == canon(duck[table]), table


def canon(rows: list[dict[str, Any]]) -> list[str]:
    def val(v: Any) -> Any:
        return round(v, 6) if isinstance(v, float) else v
    return sorted(json.dumps({k: val(v) for k, v in r.items()}, sort_keys=True) for r in rows)
