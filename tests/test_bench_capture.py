"""The benchmark's hard mix is what its generator says it is, by tshark's count (an independent
dissector), and datareach's audit of it counts the same requests and connections.

``benchmarks/generate_capture.py --mix hard`` prints its counts (HTTP requests and their share of
packets, distinct DNS answers, TCP connections); the README's benchmark figures lean on them, so
here a small capture of the same mix is read by tshark and by ``datareach audit``. No durations.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from test_parallel import _generator

ROOT = Path(__file__).resolve().parent.parent




def _tshark_rows(path: Path, fields: list[str], two_pass: bool = False) -> list[list[str]]:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: `make test` installs it (apt-get install tshark)")
    cmd = [exe, "-n", *(["-2"] if two_pass else []), "-r", str(path), "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
           "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    path = tmp_path_factory.mktemp("bench") / "hard.pcap"
    truth = _generator().generate_hard(path, 3, seed=11)
    rows = _tshark_rows(path, ["http.request.method", "tcp.stream", "udp.stream", "dns.flags.response",
                               "dns.qry.name", "dns.a", "dns.aaaa", "dns.cname"])
    answers: set[tuple[str, str]] = set()
    for _m, _t, _u, resp, qname, a, aaaa, cname in rows:
        if resp in ("1", "True"):
            for field in (a, aaaa, cname):
                answers.update((qname, v) for v in field.split(",") if v)
    counted = {
        "packets": len(rows),
        "requests": sum(len(r[0].split(",")) for r in rows if r[0]),
        "tcp_streams": len({r[1] for r in rows if r[1]}),
        "udp_streams": len({r[2] for r in rows if r[2]}),
        "dns_answers": len(answers),
    }
    return path, truth, counted


def test_generator_counts_are_tsharks(hard: tuple[Path, dict[str, Any], dict[str, Any]]) -> None:
    _path, truth, counted = hard
    assert counted["packets"] == truth["packets"]
    assert counted["requests"] == truth["http_requests"] > 300
    assert counted["tcp_streams"] == truth["tcp_connections"]
    assert counted["udp_streams"] == truth["udp_connections"]
    assert counted["dns_answers"] == truth["distinct_dns_answers"]


def test_hard_mix_shape(hard: tuple[Path, dict[str, Any], dict[str, Any]]) -> None:
    _path, truth, counted = hard
    assert counted["requests"] / counted["packets"] >= 0.10  # at least 10% of packets are HTTP requests
    assert truth["json_posts"] >= truth["http_requests"] / 4
    kinds = truth["requests_by_kind"]
    assert all(kinds[k] > 0 for k in ("json", "json_b64", "json_chunked", "form", "form_d", "get_query", "get_b64"))
    assert truth["keepalive_connections"] > 0 and truth["tls_connections"] > 0 and truth["ipv6_packets"] > 0
    # answers rarely repeat: about one distinct answer per answer record
    assert counted["dns_answers"] >= 0.9 * truth["dns_answers"]
    # many short connections: most carry one exchange (8 packets for a small one)
    assert truth["tcp_connections"] >= truth["http_requests"] / 3


def test_audit_agrees_with_tshark(hard: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path) -> None:
    path, _truth, counted = hard
    out = tmp_path / "hard.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-m", "datareach", "audit", str(path), "--format", "json", "-o", str(out)],
                   check=True, env=env, timeout=600, capture_output=True)
    summary = json.loads(out.read_bytes())["summary"]
    assert summary["exchanges"] == counted["requests"]
    assert summary["connections"] == counted["tcp_streams"] + counted["udp_streams"]
    assert summary["findings"] > 0


def test_conns_mix_counts(tmp_path: Path) -> None:
    path = tmp_path / "conns.pcap"
    truth = _generator().generate_conns(path, 3000, seed=2)
    rows = _tshark_rows(path, ["tcp.stream", "tcp.flags.syn", "tcp.flags.ack"])
    assert len(rows) == truth["packets"] == 8 * 3000
    assert len({r[0] for r in rows}) == truth["tcp_connections"] == 3000
    assert sum(1 for r in rows if r[1] in ("1", "True") and r[2] in ("0", "False")) == 3000  # one SYN each


def test_issue_shape_counts(tmp_path: Path) -> None:
    """``--shape issue``: fewer requests, JSON bodies over several segments; by tshark, the packets
    that carry HTTP request bytes (the request's own frame and the frames reassembled into it)
    are at least 10% of all."""
    path = tmp_path / "issue.pcap"
    truth = _generator().generate_hard(path, 3, seed=4, shape="issue")
    rows = _tshark_rows(path, ["frame.number", "http.request.method", "tcp.reassembled_in", "tcp.stream"],
                       two_pass=True)  # a segment learns which frame it was reassembled into on the second pass
    request_frames = {r[0] for r in rows if r[1]}
    carrying = request_frames | {r[0] for r in rows if r[2] and r[2] in request_frames}
    assert sum(len(r[1].split(",")) for r in rows if r[1]) == truth["http_requests"] > 50
    assert len(carrying) == truth["http_request_packets"]
    assert len(carrying) / len(rows) >= 0.10
    assert len({r[3] for r in rows if r[3]}) == truth["tcp_connections"]
    assert truth["http_request_packets"] > 1.5 * truth["http_requests"]  # bodies over several segments
