"""Zeek logs -> the normalised relations (sources/logs.py, sources/zeek.py, engine/duckdb.py), on
real Zeek output (tests/data/logs/zeek/, see its README: the Zeek project's test baselines and the
WRCCDC 2018 sample logs).

The reference is the files themselves, read here with a few lines of plain Python (split on the
separator; ``-`` unset, ``(empty)`` empty): an implementation independent of DuckDB's reader and
of the SQL under test."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach.engine.duckdb import DuckDBEngine, DuckRunner, register_logs
from datareach.engine.orgscale import input_reports
from datareach.sources.logs import discover, sniff_log

DATA = Path(__file__).parent / "data" / "logs" / "zeek"
WIKI = DATA / "wikipedia"


def zeek_rows(path: Path) -> list[dict[str, str | None]]:
    """A Zeek TSV log's rows as dicts of text (None: unset), read with plain Python."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        lines = fh.read().splitlines()
    fields: list[str] = []
    rows = []
    for line in lines:
        if line.startswith("#fields\t"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            values = line.split("\t")
            rows.append({f: (None if v == "-" else v) for f, v in zip(fields, values, strict=True)})
    return rows


def _input_reports(inputs: list[Path], logs: Any, con: Any, rows: dict[str, int]) -> Any:
    return input_reports(inputs, logs, rows, DuckRunner(con).rejected(logs))


def is_ip(text: str) -> bool:
    return text.replace(".", "").isdigit() or ":" in text


def views(*paths: Path, since: float | None = None, until: float | None = None) -> Any:
    logs = discover(list(paths), since, until)
    con = DuckDBEngine().connect()
    register_logs(con, logs, since, until)
    return con, logs


def rows_of(con: Any, sql: str) -> list[dict[str, Any]]:
    rel = con.sql(sql)
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


# -- recognising files ---------------------------------------------------------------------------


def test_each_real_file_is_recognised_by_its_content(tmp_path: Path) -> None:
    expected = {
        "wikipedia/conn.log": ("conn", "tsv"), "wikipedia/dns.log": ("dns", "tsv"),
        "wikipedia/http.log": ("http", "tsv"), "ssl.log": ("ssl", "tsv"), "x509.log": ("x509", "tsv"),
        "dhcp.log": ("dhcp", "tsv"), "files-extracted.log": ("files", "tsv"),
        "quic-chromium/quic.log": ("quic", "tsv"), "wrccdc-2018/dns.ndjson": ("dns", "json"),
        "wrccdc-2018/ssl.ndjson": ("ssl", "json"), "rotated/2011-03-18/conn.19:00:00-20:00:00.log.gz": ("conn", "tsv"),
    }
    found = {str(Path(f.path).relative_to(DATA)): (f.kind, f.form) for f in discover([DATA]).files}
    for name, kind in expected.items():
        assert found[name] == kind, name
    # the content decides, not the name: a conn.log called notes.txt is a conn.log
    shutil.copy(WIKI / "conn.log", tmp_path / "notes.txt")
    (tmp_path / "conn.log").write_text("not a log at all\n")
    logs = discover([tmp_path])
    assert [(Path(f.path).name, f.kind) for f in logs.files] == [("notes.txt", "conn")]
    assert logs.skipped == [(str(tmp_path / "conn.log"), "not a Zeek or Suricata log")]


def test_the_header_is_read_as_zeek_writes_it() -> None:
    info = sniff_log((WIKI / "dns.log").read_bytes())
    assert info is not None
    assert info["fields"][:3] == ("ts", "uid", "id.orig_h")
    assert info["types"][info["fields"].index("answers")] == "vector[string]"
    assert (info["separator"], info["set_separator"], info["empty_field"], info["unset_field"]) == (
        "\t", ",", "(empty)", "-")
    assert info["header_lines"] == 9  # btest's "###" line, then Zeek's eight


# -- rows ----------------------------------------------------------------------------------------


def test_conn_rows_are_the_files_rows() -> None:
    con, _ = views(WIKI)
    ref = zeek_rows(WIKI / "conn.log")
    got = {r["uid"]: r for r in rows_of(con, "SELECT * FROM conn")}
    assert len(got) == len(ref) == 34
    for r in ref:
        g = got[r["uid"]]
        assert (g["client_ip"], g["client_port"], g["server_ip"], g["server_port"]) == (
            r["id.orig_h"], int(r["id.orig_p"]), r["id.resp_h"], int(r["id.resp_p"]))
        assert g["transport"] == r["proto"]
        assert g["bytes_out"] == (int(r["orig_bytes"]) if r["orig_bytes"] else None)
        assert g["bytes_in"] == (int(r["resp_bytes"]) if r["resp_bytes"] else None)
        assert g["packets_out"] == int(r["orig_pkts"])
        service = r["service"] or ""
        assert g["protocol"] == {"http": "http", "dns": "dns", "ssl": "tls"}.get(service.split(",")[0])
        assert g["ts"] is None  # (the baseline masks its times: XXXXXXXXXX.XXXXXX is no time)


def test_dns_answers_one_row_per_address_with_the_cname_chain() -> None:
    con, _ = views(WIKI)
    want = set()
    for r in zeek_rows(WIKI / "dns.log"):
        if not r["answers"] or r["answers"] == "(empty)":
            continue
        answers = r["answers"].split(",")
        ttls = r["TTLs"].split(",")
        names = [a for a in answers if not is_ip(a)]
        for a, ttl in zip(answers, ttls, strict=True):
            if is_ip(a):
                want.add((r["query"].lower(), a, int(float(ttl)), tuple([r["query"].lower(), *names])))
    got = {(r["qname"], r["address"], r["ttl"], tuple(r["cname_chain"])) for r in rows_of(con, "SELECT * FROM dns")}
    assert got == want
    assert ("upload.wikimedia.org", "208.80.152.3", 2156, ("upload.wikimedia.org", "upload.pmtpa.wikimedia.org")) in got


def test_names_from_ssl_quic_and_http() -> None:
    con, _ = views(DATA / "ssl.log", DATA / "quic-chromium", WIKI)
    names = {r["uid"]: r for r in rows_of(con, "SELECT * FROM names")}
    ssl = zeek_rows(DATA / "ssl.log")[0]
    assert names[ssl["uid"]]["sni"] == ssl["server_name"] == "ssl.gstatic.com"
    quic = zeek_rows(DATA / "quic-chromium" / "quic.log")[0]
    assert names[quic["uid"]]["quic_sni"] == quic["server_name"] == "api.cirrus-ci.com"
    first_host: dict[str, str] = {}
    for r in zeek_rows(WIKI / "http.log"):
        first_host.setdefault(r["uid"], r["host"])
    for uid, host in first_host.items():
        assert names[uid]["http_host"] == host.lower().split(":")[0]


def test_json_lines_with_iso_times_read_like_tsv() -> None:
    con, _ = views(DATA / "wrccdc-2018" / "dns.ndjson")
    got = rows_of(con, "SELECT ts, qname, address FROM dns ORDER BY ts, address")
    want = []
    for line in (DATA / "wrccdc-2018" / "dns.ndjson").read_text().splitlines():
        r = json.loads(line)
        for a in r.get("answers") or []:
            if is_ip(a):
                t = datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()
                want.append((t, r["query"].lower(), a))
    assert sorted((round(r["ts"], 6), r["qname"], r["address"]) for r in got) == sorted(
        (round(t, 6), q, a) for t, q, a in want)
    assert want


def test_a_rotated_gzip_file_reads_like_the_plain_one() -> None:
    plain, _ = views(DATA / "wikipedia-zeek3.3" / "conn.log")
    rotated, _ = views(DATA / "rotated")
    q = "SELECT uid, ts, client_ip, server_ip, bytes_out FROM conn ORDER BY uid"
    assert rows_of(plain, q) == rows_of(rotated, q)
    assert len(rows_of(plain, q)) == len(zeek_rows(DATA / "wikipedia-zeek3.3" / "conn.log"))


def test_since_and_until_prune_rotated_files_and_filter_rows() -> None:
    day = datetime.fromisoformat("2011-03-18T00:00:00+00:00").timestamp()
    logs = discover([DATA / "rotated"], since=day + 20 * 3600)  # after the file's hour
    assert not logs.files and all(why == "outside --since/--until" for _, why in logs.skipped)
    ref = zeek_rows(DATA / "wikipedia-zeek3.3" / "conn.log")
    times = sorted(float(r["ts"]) for r in ref)
    cut = times[len(times) // 2]
    con, _ = views(DATA / "wikipedia-zeek3.3" / "conn.log", since=cut)
    assert len(rows_of(con, "SELECT * FROM conn")) == sum(1 for t in times if t >= cut)
    con, _ = views(DATA / "wikipedia-zeek3.3" / "conn.log", until=cut)
    assert len(rows_of(con, "SELECT * FROM conn")) == sum(1 for t in times if t < cut)


def test_a_uri_with_a_hash_is_read_whole(tmp_path: Path) -> None:
    # (a '#' inside a row is data: a reader taking it for a comment would cut the row)
    text = (WIKI / "http.log").read_text().splitlines()
    i = next(k for k, ln in enumerate(text) if not ln.startswith("#"))
    parts = text[i].split("\t")
    parts[9] = parts[9] + "#section-2"
    text[i] = "\t".join(parts)
    (tmp_path / "http.log").write_text("\n".join(text) + "\n")
    con, _ = views(tmp_path / "http.log")
    assert parts[9] in {r["uri"] for r in rows_of(con, "SELECT uri FROM http")}


# -- what cannot be read is said -----------------------------------------------------------------


def test_bad_lines_are_counted_with_their_place_and_the_rest_read(tmp_path: Path) -> None:
    lines = (WIKI / "conn.log").read_bytes().splitlines(keepends=True)
    close = [ln for ln in lines if ln.startswith(b"#close")]
    body = [ln for ln in lines if not ln.startswith(b"#close")]
    (tmp_path / "conn.log").write_bytes(b"".join(body) + b"garbage line\n\x00\xff\tweird\n" + b"".join(close))
    con, logs = views(tmp_path)
    assert len(rows_of(con, "SELECT * FROM conn")) == 34
    reports = _input_reports([tmp_path], logs, con, {})
    messages = [e.message for e in reports[0].errors]
    assert any("2 line(s) could not be read (first at line 44" in m for m in messages), messages


def test_json_lines_that_do_not_parse_are_counted(tmp_path: Path) -> None:
    src = (DATA / "wrccdc-2018" / "dns.ndjson").read_text().splitlines()
    (tmp_path / "dns.ndjson").write_text("\n".join([*src[:3], '{"ts": broken', *src[3:]]) + "\n")
    con, logs = views(tmp_path)
    n = len(rows_of(con, "SELECT * FROM zeek_dns"))
    assert n == len(src)
    messages = [e.message for e in _input_reports([tmp_path], logs, con, {})[0].errors]
    assert any("1 line(s) are not JSON and were not read (the first is data line 4)" in m for m in messages)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=8))
def test_hostile_lines_never_stop_the_reading(tmp_path_factory: pytest.TempPathFactory, junk: list[bytes]) -> None:
    d = tmp_path_factory.mktemp("hostile")
    lines = (WIKI / "conn.log").read_bytes().splitlines(keepends=True)
    data = [ln for ln in lines if not ln.startswith(b"#")]
    head = [ln for ln in lines if ln.startswith(b"#") and not ln.startswith(b"#close")]
    mixed = b"".join(head) + b"".join(d_ for pair in zip(data, (junk + [b""] * len(data))[:len(data)], strict=True) for d_ in
                                      (pair[0], pair[1].replace(b"\n", b" ").replace(b"\r", b" ") + b"\n"))
    (d / "conn.log").write_bytes(mixed)
    con, logs = views(d)
    got = {r["uid"] for r in rows_of(con, "SELECT uid FROM conn")}
    assert {r["uid"] for r in zeek_rows(WIKI / "conn.log")} <= got | set()  # every real row read
    _input_reports([d], logs, con, {})  # (and the report of the rest made)
