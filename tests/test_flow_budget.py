"""A capture with more connections than the decoder keeps live gives the same connections.

Past :data:`~datareach.dissect.packets.MAX_LIVE_FLOWS` live connections, the decoder retires the
least recently active half into Arrow rows and brings one back from its row when a packet of
it comes again. These tests run captures with a budget of a few connections (so that most are
retired and many brought back) against the same captures read with every connection live.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datareach import _core
from datareach.dissect import packets
from datareach.dissect.packets import PacketDecoder
from datareach.schema import ConnectionBatch, Exchange, InputError
from datareach.sources import parallel, pcap
from datareach.testing.builders import write_pcap
from datareach.testing.capture import TcpSession, distinct_destinations_pcap
from test_parallel import _generator, normalised

CLIENT = "192.0.2.10"

#: These tests reach into the decoder by monkeypatching (its constructor, its packet method, the
#: module's budget), which compiled code does not see. With a compiled packet core (setup.py) they
#: run on the Python sources, in a subprocess with DATAREACH_NATIVE=0
#: (test_budget_tests_on_the_python_sources); the budget's code is the same in both.
COMPILED = _core.is_compiled(packets)
patches_the_decoder = pytest.mark.skipif(COMPILED, reason="run on the Python sources in a subprocess")


def _read(path: Path, budget: int | None, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], PacketDecoder]:
    """The records of ``path`` read by one process with at most ``budget`` live connections
    (None: the default), and the decoder (its counters)."""
    made: list[PacketDecoder] = []
    original = PacketDecoder.__init__

    def init(self: PacketDecoder, *args: Any, **kw: Any) -> None:
        original(self, *args, **kw)
        made.append(self)

    with monkeypatch.context() as m:
        if budget is not None:
            m.setattr(packets, "MAX_LIVE_FLOWS", budget)
        m.setattr(PacketDecoder, "__init__", init)
        records = list(pcap.read_sequential(path, 0))
    return records, made[0]


def _get(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t/1\r\n\r\n".encode()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@patches_the_decoder
def test_a_syn_flood_keeps_the_live_connections_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = distinct_destinations_pcap(tmp_path / "syn.pcap", 3000)
    most = 0
    packet = PacketDecoder.packet

    def counted(self: PacketDecoder, *args: Any, **kw: Any) -> None:
        nonlocal most
        packet(self, *args, **kw)
        most = max(most, len(self.flows))

    whole, _ = _read(path, None, monkeypatch)
    monkeypatch.setattr(PacketDecoder, "packet", counted)
    bounded, dec = _read(path, 64, monkeypatch)
    assert most <= 64
    assert dec.retired >= 3000 - 64 and dec.revived == 0 and dec.retired_inspecting == 0
    assert normalised(bounded) == normalised(whole)
    assert len(normalised(whole)[0]) == 3000


def _sessions_that_come_back(path: Path, n: int) -> Path:
    """``n`` connections open (handshake only), then ``n`` others open and close, then each of
    the first sends a request and gets its response: the first ones are retired while idle and
    brought back by their request."""
    out: list[tuple[float, bytes]] = []
    first = [TcpSession(CLIENT, 20000 + i, f"198.51.100.{i % 250 + 1}", 80, start=1000.0 + i * 0.001)
             for i in range(n)]
    for s in first:
        out += s.handshake()
    for i in range(n):
        s = TcpSession(CLIENT, 30000 + i, f"203.0.113.{i % 250 + 1}", 443, start=1010.0 + i * 0.001)
        out += s.handshake() + s.close() + s.close(from_client=False)
    for i, s in enumerate(first):
        s.advance(20.0 + i)  # (one after the other)
        out += s.client_send(_get(f"back{i}.example.com", f"/r{i}")) + s.server_send(OK)
        out += s.close() + s.close(from_client=False)
    return write_pcap(path, out)


@patches_the_decoder
def test_connections_brought_back_from_their_rows_lose_nothing(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = _sessions_that_come_back(tmp_path / "back.pcap", 120)
    whole, _ = _read(path, None, monkeypatch)
    bounded, dec = _read(path, 16, monkeypatch)
    assert dec.revived >= 100 and dec.retired_inspecting == 0
    assert normalised(bounded) == normalised(whole)
    requests = [e for e in bounded if isinstance(e, Exchange)]
    assert len(requests) == 120
    assert len({e.uid for e in requests}) == 120


@patches_the_decoder
def test_a_connection_being_inspected_is_retired_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A keep-alive connection idle between two requests while hundreds of others come and go
    keeps its inspection: both requests are read."""
    out: list[tuple[float, bytes]] = []
    keep = TcpSession(CLIENT, 41000, "198.51.100.7", 80, start=500.0)
    out += keep.handshake() + keep.client_send(_get("keep.example.com", "/one")) + keep.server_send(OK)
    for i in range(300):
        s = TcpSession(CLIENT, 30000 + i, f"203.0.113.{i % 250 + 1}", 443, start=501.0 + i * 0.001)
        out += s.handshake() + s.close() + s.close(from_client=False)
    keep.advance(5.0)
    out += keep.client_send(_get("keep.example.com", "/two")) + keep.server_send(OK)
    path = write_pcap(tmp_path / "keep.pcap", out)
    bounded, dec = _read(path, 16, monkeypatch)
    assert dec.retired > 250 and dec.retired_inspecting == 0
    assert sorted(e.url for e in bounded if isinstance(e, Exchange)) == [
        "http://keep.example.com/one", "http://keep.example.com/two"]


@patches_the_decoder
def test_retiring_in_the_middle_of_an_inspection_is_counted(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mix.pcap"
    _generator().generate(path, 6, seed=7)
    whole, _ = _read(path, None, monkeypatch)
    bounded, dec = _read(path, 64, monkeypatch)
    assert dec.retired_inspecting > 0
    notes = [e.message for e in bounded if isinstance(e, InputError) and "set aside" in e.message]
    assert notes and notes[0].startswith(f"{dec.retired_inspecting} connections were set aside")
    # every connection still there once, its counters whole; what changes is what the inspection
    # of the retired ones found
    counters = [(c[:9], c[15:]) for c in normalised(whole)[0]]
    assert [(c[:9], c[15:]) for c in normalised(bounded)[0]] == counters
    differ = sum(a != b for a, b in zip(normalised(whole)[0], normalised(bounded)[0], strict=True))
    assert 0 < differ <= dec.retired_inspecting


@patches_the_decoder
def test_parallel_readers_with_retired_connections_equal_one_reader(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = _sessions_that_come_back(tmp_path / "back.pcap", 400)
    sequential, _ = _read(path, 16, monkeypatch)
    monkeypatch.setattr(packets, "MAX_LIVE_FLOWS", 16)
    monkeypatch.setattr(parallel, "MIN_RANGE", 0)
    split = parallel.read(path, 0, None, 3)
    assert split is not None, "the reader fell back to one process"
    assert normalised(split) == normalised(sequential)


@patches_the_decoder
def test_a_connection_from_an_address_and_port_to_themselves_is_retired_and_comes_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its key is its own reverse (found by fuzzing with a budget of 4: a KeyError)."""
    out: list[tuple[float, bytes]] = []
    self_ = TcpSession("192.0.2.77", 5000, "192.0.2.77", 5000, start=10.0)
    out += self_.handshake()
    for i in range(40):
        s = TcpSession(CLIENT, 30000 + i, f"203.0.113.{i + 1}", 443, start=11.0 + i * 0.01)
        out += s.handshake()
    self_.advance(5.0)
    out += self_.client_send(b"x" * 10)
    path = write_pcap(tmp_path / "self.pcap", out)
    whole, _ = _read(path, None, monkeypatch)
    bounded, dec = _read(path, 4, monkeypatch)
    assert dec.revived >= 1
    assert normalised(bounded) == normalised(whole)


@patches_the_decoder
def test_a_range_with_too_many_connections_hands_the_file_to_one_reader(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Parallel readers each hold their range's connections: on a capture made of little else
    than connections (a SYN scan) one reader, with its budget, holds less."""
    path = distinct_destinations_pcap(tmp_path / "syn.pcap", 20000)
    monkeypatch.setattr(packets, "MAX_LIVE_FLOWS", 64)
    monkeypatch.setattr(parallel, "MIN_RANGE", 0)
    monkeypatch.setattr(parallel, "RANGE_MAX_RETIRED", 20000)
    assert parallel.read(path, 0, None, 2) is not None
    monkeypatch.setattr(parallel, "RANGE_MAX_RETIRED", 2000)
    assert parallel.read(path, 0, None, 2) is None


@patches_the_decoder
def test_a_range_with_too_many_connections_is_read_again_in_smaller_ranges(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges a quarter of MAX_RANGE are tried before one reader: 20,000 connections in two
    ranges are too many for a range budget of 6,000; in eight ranges they are not, and the
    result is still one reader's."""
    path = distinct_destinations_pcap(tmp_path / "syn.pcap", 20000)
    monkeypatch.setattr(packets, "MAX_LIVE_FLOWS", 64)
    monkeypatch.setattr(parallel, "MIN_RANGE", 0)
    monkeypatch.setattr(parallel, "MAX_RANGE", path.stat().st_size // 2 + 1)
    monkeypatch.setattr(parallel, "RANGE_MAX_RETIRED", 6000)
    monkeypatch.setattr(parallel, "PROJECT_AFTER", 4096)  # (the ranges' counts projected as they are read)
    counts: list[int] = []
    plan = parallel._plan

    def planned(path_: Path, size: int, n: int) -> Any:
        counts.append(n)
        return plan(path_, size, n)

    monkeypatch.setattr(parallel, "_plan", planned)
    split = parallel.read(path, 0, None, 2)
    assert counts == [2, 8]
    assert split is not None
    conns = [c for r in split if isinstance(r, ConnectionBatch) for c in r.connections()]
    assert len(conns) == 20000


@pytest.mark.skipif(not COMPILED, reason="the packet core of this process runs its Python sources")
def test_budget_tests_on_the_python_sources(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DATAREACH_NATIVE": "0", "DATAREACH_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                          "--basetemp", str(tmp_path / "t"), __file__, "-k", "not registrable and not python_sources"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "8 passed" in run.stdout, run.stdout[-2000:]


HOSTS = st.one_of(
    st.from_regex(r"[ ]?[0-9]{1,3}(\.[0-9]{1,3}){0,3}\.?(:[0-9]{1,5})?[ ]?", fullmatch=True),
    st.from_regex(r"\[?[0-9a-f:]{2,20}\]?(:[0-9]{1,5})?", fullmatch=True),
    st.from_regex(r"([a-zA-Z0-9_-]{1,12}\.){0,4}[a-zA-Z0-9-]{1,10}\.?(:[0-9]{1,5})?", fullmatch=True),
    st.text(max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(HOSTS, max_size=20))
def test_registrable_domains_of_a_column_equal_one_at_a_time(hosts: list[str]) -> None:
    """The column form answers addresses without looking them up: the answers are the same."""
    import pyarrow as pa

    from datareach.enrich.domains import registrable_domains
    from datareach.kb.psl import registrable_domain

    got = registrable_domains(pa.array(hosts, pa.string())).to_pylist()
    assert got == [registrable_domain(h) for h in hosts]
