"""Plain HTTP on imperfect streams: a hole in one direction never ends the other, the parser
takes up at the next request or status line after a hole, TCP Fast Open data and data after a
reset are read. tshark reads the same captures as the reference."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from datareach.testing.builders import write_pcap
from datareach.testing.capture import ACK, RST, SYN, Packet, TcpSession
from datareach.testing.records import read

N = 1000


def keep_alive(drop_response: int | None = None, drop_request: int | None = None) -> list[Packet]:
    """N requests with bodies on one keep-alive connection, each answered; one response's (or one
    request's) first segment missing from the capture."""
    s = TcpSession("192.168.1.23", 40000, "203.0.113.80", 80)
    packets = s.handshake()
    for i in range(N):
        body = b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i % 300))
        req = (b"POST /api/%d HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % (i, len(body))) + body
        sent = s.client_send(req)
        packets += sent[1:] if i == drop_request else sent
        resp_body = b"y" * (200 + i % 2000)
        resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(resp_body) + resp_body
        sent = s.server_send(resp)
        packets += sent[1:] if i == drop_response else sent
    return packets


def tshark_requests(path: Path) -> int:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: `make test` installs it (apt-get install tshark)")
    out = subprocess.run([exe, "-n", "-r", str(path), "-Y", "http.request", "-T", "fields", "-e", "http.request.uri"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def test_one_dropped_response_loses_no_request(tmp_path: Path) -> None:
    """The issue's case: one server segment missing ended the whole connection (33 of 1,000)."""
    path = write_pcap(tmp_path / "drop-response.pcap", keep_alive(drop_response=500))
    ours = read(path)
    assert len(ours.exchanges) == N == tshark_requests(path)
    assert [e.target for e in ours.exchanges] == [f"/api/{i}" for i in range(N)]
    # responses after the hole are paired again from the next status line on
    statuses = [e.status for e in ours.exchanges]
    assert statuses[:500] == [200] * 500 and statuses[-400:] == [200] * 400
    assert any("1 holes in plain-HTTP streams" in e.message for e in ours.errors)


def test_a_dropped_request_segment_resynchronises_at_the_next_request(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "drop-request.pcap", keep_alive(drop_request=300))
    ours = read(path)
    targets = [e.target for e in ours.exchanges]
    assert targets == [f"/api/{i}" for i in range(N) if i != 300]
    assert len(targets) == tshark_requests(path)
    note = next(e.message for e in ours.errors if "holes in plain-HTTP streams" in e.message)
    assert "bytes skipped" in note


def test_tcp_fast_open_data_in_the_syn_is_read(tmp_path: Path) -> None:
    s = TcpSession("192.168.1.23", 40001, "203.0.113.80", 80)
    req = b"GET /tfo HTTP/1.1\r\nHost: tfo.example.com\r\n\r\n"
    packets = [s.segment(True, req, flags=SYN)]
    s.client_next += 1 + len(req)
    packets.append(s.segment(False, flags=SYN | ACK))
    s.server_next += 1
    packets += s.server_send(b"HTTP/1.1 204 No Content\r\n\r\n")
    path = write_pcap(tmp_path / "tfo.pcap", packets)
    ours = read(path)
    assert [(e.host, e.target, e.status) for e in ours.exchanges] == [("tfo.example.com", "/tfo", 204)]


def test_data_after_a_reset_is_read(tmp_path: Path) -> None:
    """A reset injected by a middlebox does not end what the capture still shows."""
    s = TcpSession("192.168.1.23", 40002, "203.0.113.80", 80)
    packets = s.handshake()
    packets += s.client_send(b"GET /one HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
    packets.append(s.segment(False, flags=RST | ACK))
    packets += s.client_send(b"GET /two HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
    packets += s.server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 2)
    path = write_pcap(tmp_path / "rst.pcap", packets)
    ours = read(path)
    assert [e.target for e in ours.exchanges] == ["/one", "/two"]
    assert tshark_requests(path) == 2

