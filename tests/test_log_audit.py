"""A log audit end to end: real Zeek logs through the DuckDB engine, checked against the audit
of the capture Zeek wrote them from (the independent reference: datareach's own packet path,
which tshark cross-checks elsewhere), and the command line's outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import datareach
from datareach.schema import BulkCount, ClientSummary, Destination, OwnerSummary, arrow_schema

ZEEK = Path(__file__).parent / "data" / "logs" / "zeek"


def destinations(audit: Any) -> dict[str, tuple[Any, ...]]:
    """host -> (owner, parent, reach (jurisdiction, basis), bytes out, bytes in, connections, evidence, hosts)."""
    out = {}
    for d in audit.to_dict()["destinations"]:
        owner = d["owner"] or {}
        out[d["host"]] = (owner.get("name"), (owner.get("ultimate_parent") or {}).get("name"),
                          sorted((r["jurisdiction"] or "", r["basis"]) for r in d["reach"]),
                          d["bytes_out"], d["bytes_in"], d["connections"], d["name_source"],
                          sorted((h["name"], h["basis"]) for h in d["hosting"]))
    return out


@pytest.mark.parametrize(("trace", "logs", "only_in_capture", "only_in_logs"), [
    # One connection of the wikipedia trace (uid CtPZjS20MLrsMUOJi2, conn_state OTH: its start
    # is not in the capture) carries a request datareach reads from the packets; Zeek wrote no
    # http.log row for it, so in the logs nothing names it but its address.
    ("wikipedia/wikipedia.pcap", "wikipedia", {"www.wikipedia.org"}, {"208.80.152.2"}),
    # DNS over 1.1.1.1 then HTTP to zeek.org, inside GRE over UDP.
    ("gre-over-udp/gre-over-udp-4754.pcap", "gre-over-udp", set(), set()),
])
def test_the_logs_of_a_trace_give_the_destinations_of_its_capture(
        trace: str, logs: str, only_in_capture: set[str], only_in_logs: set[str]) -> None:
    capture = destinations(datareach.audit([ZEEK / trace]))
    zeek = destinations(datareach.audit([ZEEK / logs], engine="duckdb"))
    assert set(capture) - set(zeek) == only_in_capture
    assert set(zeek) - set(capture) == only_in_logs
    for host in set(capture) & set(zeek):
        assert zeek[host] == capture[host], host  # owner, parent, reach and its bases, bytes, evidence
    for a, b in zip(sorted(only_in_capture), sorted(only_in_logs), strict=True):
        assert capture[a][3:6] == zeek[b][3:6]  # the same connection: the same bytes
    if logs == "gre-over-udp":
        # the resolver's address: no owner (owner is not host), Cloudflare's network hosts it
        assert zeek["1.1.1.1"][0] is None
        assert ("US", "host") in zeek["1.1.1.1"][2] and ("US", "owner") not in zeek["1.1.1.1"][2]


def test_auto_picks_duckdb_for_logs_and_local_for_captures() -> None:
    assert datareach.audit([ZEEK / "wikipedia"]).organisation is not None
    assert datareach.audit([ZEEK / "wikipedia" / "wikipedia.pcap"]).organisation is None


def test_the_old_matcher_names_still_work_as_engine() -> None:
    examples = Path(__file__).parent.parent / "examples"
    with pytest.warns(DeprecationWarning):
        audit = datareach.audit([examples / "mobile-app-session.pcapng"], engine="portable",
                                profile=examples / "profile.toml")
    assert audit.detection["engine"] == "portable"  # (the matcher of the profile's values)
    with pytest.raises(ValueError, match="engine must be one of"):
        datareach.audit([ZEEK / "wikipedia"], engine="fastest")


def test_the_command_line_writes_the_parquet_tables(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "datareach", "audit", str(ZEEK / "wikipedia"), "--engine", "duckdb",
                          "-o", f"{out}/", "--policy", "us-doj-bulk-data"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "wikipedia.pcap" in run.stderr  # (a note: the folder holds the capture too)
    assert "34 connections read" in run.stderr and "rows/s" in run.stderr
    doc = json.loads((out / "report.json").read_text())
    assert doc["organisation"]["rows"]["conn"] == 34
    conns = pq.read_table(out / "connections.parquet")
    assert conns.num_rows == 34
    assert {"uid", "host", "name_source", "owner", "parent", "jurisdictions", "covered"} <= set(conns.column_names)
    dests = pq.read_table(out / "destinations.parquet")
    assert dests.schema.names == arrow_schema(Destination).names
    assert sorted(dests.column("host").to_pylist()) == sorted(d["host"] for d in doc["destinations"])
    for name, record in (("owners", OwnerSummary), ("clients", ClientSummary), ("bulk", BulkCount)):
        assert pq.read_table(out / f"{name}.parquet").schema.names == arrow_schema(record).names


def test_since_and_until_on_the_command_line(tmp_path: Path) -> None:
    logs = ZEEK / "wikipedia-zeek3.3"
    run = subprocess.run([sys.executable, "-m", "datareach", "audit", str(logs), "--since", "2011-03-18T19:06:09",
                          "--format", "json"], capture_output=True, text=True)
    doc = json.loads(run.stdout)
    assert 0 < doc["organisation"]["rows"]["conn"] < 34
    bad = subprocess.run([sys.executable, "-m", "datareach", "audit", str(logs), "--since", "yesterday"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--since 'yesterday'" in bad.stderr


def test_real_eve_records_give_destinations_with_owners_and_reach() -> None:
    eve = Path(__file__).parent / "data" / "logs" / "eve"
    audit = datareach.audit([eve / "suricatalog-eve2-suricata7.eve.json"])  # (auto: DuckDB, by content)
    assert audit.organisation is not None
    got = destinations(audit)
    owner, parent, reach, *_rest, evidence, hosts = got["www.bing.com"]
    assert parent == "Microsoft Corporation"
    assert (owner, evidence) == ("Microsoft Bing", "sni")
    assert hosts == [("Microsoft Corporation", "as")]  # its network, by AS number: a host, beside the owner
    assert ("US", "owner") in reach
    assert audit.inputs[0].format == "suricata-eve" and not audit.inputs[0].errors
