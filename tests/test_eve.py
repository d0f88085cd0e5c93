"""Suricata EVE -> normalised tables (sources/eve.py), on real records (tests/data/logs/eve/).

Expectations are read off the records by hand. The tests named test_docs_* read the files taken
from the Suricata documentation (CC BY-NC 4.0, see the README there)."""

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
DOCS_FLOW = DATA / "suricata-docs-flow1676750115612680.eve.json"
DOCS_SNIPPETS = DATA / "suricata-docs-snippets.eve.json"


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
    for path in (TENZIR, VERIFY, DOCS_FLOW):
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
    # Both files' fileinfo records are response bodies (src_port 80: the server's side).
    out = run([(VERIFY, 0), (TENZIR, 0)])
    assert all(h["body_file"] is None for h in out["http"])


def test_docs_one_flow_all_events() -> None:
    out = run([(DOCS_FLOW, 1)])
    (conn,) = out["conn"]
    assert conn["uid"] == "F1676750115612680"
    assert conn["ts"] == pytest.approx(1695017613.324862)  # flow.start 2023-09-18T06:13:33.324862+0000
    assert conn["duration"] == pytest.approx(40.427537, abs=1e-5)  # end 06:14:13.752399
    assert (conn["client_ip"], conn["client_port"], conn["server_ip"], conn["server_port"]) == (
        "192.168.100.237", 49175, "142.11.240.191", 35361)
    assert (conn["transport"], conn["protocol"]) == ("tcp", "http")
    assert (conn["bytes_out"], conn["bytes_in"], conn["packets_out"], conn["packets_in"]) == (3536402, 94102, 3869, 1523)
    assert conn["client_mac"] == "12:a9:86:6c:77:de"  # flow records list ether.src_macs
    (names,) = out["names"]
    assert names == {"uid": "F1676750115612680", "sni": None, "quic_sni": None,
                     "http_host": "142.11.240.191", "cert_name": None}
    (http,) = out["http"]
    assert http["method"] == "POST" and http["status"] == 200 and http["uri"] == "/"
    assert http["ts"] == pytest.approx(1695017613.903924)
    # The fileinfo record goes client -> server (the POST body, Content-Length 137), tx 0.
    assert http["request_body_len"] == 137
    assert http["body_file"] is None  # "stored": false


def test_docs_dns_layouts() -> None:
    rows = run([(DOCS_SNIPPETS, 0)])["dns"]
    got = sorted((r["qname"], r["rtype"], r["address"], r["ttl"], tuple(r["cname_chain"])) for r in rows)
    chain = ("www.suricata.io", "suricata.io")
    assert got == sorted([
        # 6.0 docs, version 2 "detailed" (no dns.rrname: the first answer's name)
        ("www.suricata.io", "A", "192.0.78.24", 10, chain),
        ("www.suricata.io", "A", "192.0.78.25", 10, chain),
        # 6.0 docs, version 1: one record an answer
        ("twitter.com", "A", "199.16.156.6", 8, ("twitter.com",)),
        # 8.0 docs, version 3 "detailed" (query name from dns.queries)
        ("www.suricata.io", "A", "192.0.78.24", 10, chain),
        ("www.suricata.io", "A", "192.0.78.25", 10, chain),
        # upgrade note: the same response as 7.0 (version 2) and 8.0 (version 3) write it
        ("www.suricata.io", "A", "35.212.0.44", 597, chain),
        ("www.suricata.io", "A", "35.212.0.44", 597, chain),
    ])
    # The "grouped" snippets carry no query name (the docs cut dns.rrname): they give no row.


def _dns_record(**envelope: Any) -> str:
    return json.dumps({"timestamp": "2024-01-01T12:00:00.500000+0100", "event_type": "dns", **envelope})


def test_docs_dns_client_and_grouped(tmp_path: Path) -> None:
    """The documentation's snippets in a full envelope: who the client is in each layout, and
    the grouped answers (the docs' grouped example with the query name Suricata logs with it)."""
    snippets = [json.loads(line)["dns"] for line in DOCS_SNIPPETS.read_text().splitlines()[:9]]
    v2_answer, v3_response = snippets[7], snippets[8]
    grouped = dict(snippets[2], rrname="WWW.Suricata.IO.", rrtype="A")
    grouped["grouped"] = dict(grouped["grouped"], AAAA=["2001:DB8::1"])
    lines = [
        _dns_record(flow_id=1, src_ip="10.0.0.2", src_port=5000, dest_ip="10.0.0.53", dest_port=53, dns=v2_answer),
        _dns_record(flow_id=2, src_ip="10.0.0.53", src_port=53, dest_ip="10.0.0.3", dest_port=5001, dns=v3_response),
        _dns_record(flow_id=3, src_ip="10.0.0.4", src_port=5002, dest_ip="10.0.0.53", dest_port=53, dns=grouped),
    ]
    path = tmp_path / "eve.json"
    path.write_text("\n".join(lines) + "\n")
    rows = run([(path, 0)])["dns"]
    got = sorted((r["client_ip"], r["qname"], r["rtype"], r["address"], r["ttl"], tuple(r["cname_chain"]))
                 for r in rows)
    assert got == [
        ("10.0.0.2", "www.suricata.io", "A", "35.212.0.44", 597, ("www.suricata.io", "suricata.io")),
        ("10.0.0.3", "www.suricata.io", "A", "35.212.0.44", 597, ("www.suricata.io", "suricata.io")),
        ("10.0.0.4", "www.suricata.io", "A", "192.0.78.24", None, ("www.suricata.io", "suricata.io")),
        ("10.0.0.4", "www.suricata.io", "A", "192.0.78.25", None, ("www.suricata.io", "suricata.io")),
        ("10.0.0.4", "www.suricata.io", "AAAA", "2001:db8::1", None, ("www.suricata.io", "suricata.io")),
    ]
    assert all(r["ts"] == pytest.approx(1704106800.5) for r in rows)  # 11:00:00.5 UTC


def test_docs_tls_and_dhcp() -> None:
    out = run([(DOCS_SNIPPETS, 0)])
    assert out["names"] == [{"uid": "F1", "sni": "calendar.google.com", "quic_sni": None, "http_host": None,
                             "cert_name": "*.google.com"}]
    assert sorted(out["dhcp"], key=str) == sorted([
        {"ts": None, "mac": "54:ee:75:51:e0:66", "host_name": None, "assigned_addr": "100.78.202.125",
         "input_index": 0},  # default logging: the ack
        {"ts": None, "mac": "54:ee:75:51:e0:66", "host_name": "test", "assigned_addr": None,
         "input_index": 0},  # extended: an offer names the host but assigns nothing yet
    ], key=str)


def test_docs_request_body_in_filestore(tmp_path: Path) -> None:
    """The documentation's POST with its request body kept by the file store (stored, sha256
    added: the docs' example ran without filestore)."""
    lines = DOCS_FLOW.read_text().splitlines()
    sha = "C9D8E5F3" + "0" * 56
    fileinfo = json.loads(lines[1])
    fileinfo["fileinfo"].update(stored=True, sha256=sha)
    evil = json.loads(lines[1])
    evil["fileinfo"].update(stored=True, sha256="../../../../etc/passwd", tx_id=0)
    evil["flow_id"] = 7
    http7 = dict(json.loads(lines[2]), flow_id=7)
    path = tmp_path / "eve.json"
    path.write_text("\n".join([lines[2], json.dumps(fileinfo), json.dumps(evil), json.dumps(http7)]) + "\n")
    http = by(run([(path, 0)])["http"], "uid")
    assert http["F1676750115612680"]["body_file"] == f"{tmp_path}/filestore/c9/{sha.lower()}"
    assert http["F1676750115612680"]["request_body_len"] == 137
    assert http["F7"]["body_file"] is None  # not a sha256: no path out of the file store


def test_input_index_and_gzip(tmp_path: Path) -> None:
    import gzip
    gz = tmp_path / "eve.json.1.gz"
    gz.write_bytes(gzip.compress(DOCS_FLOW.read_bytes()))
    out = run([(TENZIR, 0), (gz, 5)])
    assert sorted((r["uid"], r["input_index"]) for r in out["conn"]) == [
        ("F1676750115612680", 5), ("F929669869939483", 0)]


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
    real = DOCS_FLOW.read_text().splitlines()[4]  # the flow record
    path = tmp_path / "eve.json"
    text = "\n".join(line.replace("\n", " ").replace("\r", " ") for line in hostile)
    path.write_text(real + "\n" + text + "\n")
    out = run([(path, 0)])
    assert "F1676750115612680" in {r["uid"] for r in out["conn"]}
    for table in eve.TABLES:
        assert isinstance(out[table], list)


def test_huge_string_line(tmp_path: Path) -> None:
    path = tmp_path / "eve.json"
    big = json.dumps({"event_type": "http", "flow_id": 9, "http": {"hostname": "x" * 20_000_000}})
    path.write_text(big + "\n" + DOCS_FLOW.read_text())
    out = run([(path, 0)])
    assert {r["uid"] for r in out["http"]} == {"F9", "F1676750115612680"}


# ------------------------------------------------------------------------------------------------
# The same SQL on Spark


def test_spark_gives_duckdbs_rows(tmp_path: Path) -> None:
    pyspark_sql = pytest.importorskip("pyspark.sql")
    files = [(TENZIR, 0), (VERIFY, 0), (DOCS_FLOW, 1), (DOCS_SNIPPETS, 2)]
    spark = (pyspark_sql.SparkSession.builder.master("local[1]").appName("test_eve")
             .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "1").getOrCreate())
    try:
        for src in eve.sources(files):
            spark.read.schema(eve.spark_ddl()).json(list(src.paths)).createOrReplaceTempView(src.view)
        duck = run(files)
        for table, sql in eve.table_sql(SPARK, files).items():
            df = spark.sql(sql)
            assert df.columns == list(duck[table][0]) if duck[table] else True
            rows = [r.asDict() for r in df.collect()]
            assert canon(rows) == canon(duck[table]), table
    finally:
        spark.stop()


def canon(rows: list[dict[str, Any]]) -> list[str]:
    def val(v: Any) -> Any:
        return round(v, 6) if isinstance(v, float) else v
    return sorted(json.dumps({k: val(v) for k, v in r.items()}, sort_keys=True) for r in rows)
