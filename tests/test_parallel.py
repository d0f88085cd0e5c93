"""Reading one capture with several processes gives exactly what one reader gives.

The capture is the benchmark's generator at a small size (DNS over UDP, TLS with split
ClientHellos, HTTP with bodies, IPv6); the ranges are made small so that many connections, DNS
transactions and HTTP requests straddle a boundary.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from datareach.schema import (
    Connection,
    ConnectionBatch,
    DnsAnswer,
    Exchange,
    InputError,
    PacketAccounting,
    Record,
)
from datareach.sources import parallel
from datareach.sources.capture import read_capture

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"
DATA = ROOT / "tests" / "data"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_capture", ROOT / "benchmarks" / "generate_capture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_capture"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("parallel") / "mix.pcap"
    truth = _generator().generate(path, 6, seed=7)
    return path, truth


def normalised(records: list[Record]) -> tuple[list[Any], ...]:
    conns: list[Connection] = []
    for r in records:
        conns.extend(r.connections() if isinstance(r, ConnectionBatch) else [r] if isinstance(r, Connection) else [])
    return (
        sorted((c.transport, c.client_ip, c.client_port, c.server_ip, c.server_port, c.packets_out, c.bytes_out,
                c.packets_in, c.bytes_in, c.sni, c.quic_sni, c.http_host, c.ech, c.protocol, c.flows,
                c.first_seen, c.last_seen, c.uid, c.tunnel) for c in conns),
        sorted((a.ts, a.qname, a.address, a.cname_chain, a.uid) for a in records if isinstance(a, DnsAnswer)),
        sorted((e.ts, e.url, e.status, e.request_body, e.request_body_truncated, e.response_size, e.uid)
               for e in records if isinstance(e, Exchange)),
        sorted((e.message, e.offset) for e in records if isinstance(e, InputError)),
        [a.to_dict() for a in records if isinstance(a, PacketAccounting)],
    )


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_RANGE", 0)


@pytest.mark.parametrize("workers", [2, 3, 7])
def test_parallel_equals_sequential(capture: tuple[Path, dict[str, Any]], workers: int, small_ranges: None) -> None:
    path, truth = capture
    sequential = list(read_capture(path, 0, workers=1))
    split = parallel.read(path, 0, None, workers)
    assert split is not None, "the reader fell back to one process"
    assert normalised(split) == normalised(sequential)
    seq_conns = normalised(sequential)[0]
    assert sum(1 for c in seq_conns if c[0] == "tcp") == truth["tcp_connections"]
    assert len(normalised(sequential)[2]) == truth["http_requests"]


def test_more_ranges_than_readers(capture: tuple[Path, dict[str, Any]], small_ranges: None,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A file larger than MAX_RANGE is cut into more ranges than readers, which take them in turn
    (each reader holds one range's connections at a time): still the result of one reader."""
    path, _ = capture
    monkeypatch.setattr(parallel, "MAX_RANGE", path.stat().st_size // 9)
    plan = parallel._plan(path, path.stat().st_size, 9)
    assert plan is not None and len(plan.bounds) - 1 >= 6
    sequential = list(read_capture(path, 0, workers=1))
    split = parallel.read(path, 0, None, 2)
    assert split is not None, "the reader fell back to one process"
    assert normalised(split) == normalised(sequential)


def test_tunnelled_capture_in_parallel(small_ranges: None, tmp_path: Path) -> None:
    """GRE-tunnelled 802.11 frames, split between readers: the same connections, requests and
    frame accounting as one reader."""
    import gzip

    path = tmp_path / "gre-aruba.pcap"
    path.write_bytes(gzip.decompress((DATA / "captures" / "zeek" / "gre-aruba.pcap.gz").read_bytes()))
    sequential = list(read_capture(path, 0, workers=1))
    split = parallel.read(path, 0, None, 3)
    assert split is not None
    assert normalised(split) == normalised(sequential)
    assert len(normalised(split)[2]) == 52


def test_pcapng_in_parallel(small_ranges: None) -> None:
    sequential = list(read_capture(EXAMPLE, 0, workers=1))
    split = parallel.read(EXAMPLE, 0, None, 4)
    assert split is not None
    assert normalised(split) == normalised(sequential)


def test_corrupt_record_near_a_boundary_falls_back(capture: tuple[Path, dict[str, Any]], tmp_path: Path,
                                                   small_ranges: None) -> None:
    path, _ = capture
    data = bytearray(path.read_bytes())
    size = len(data)
    plan = parallel._plan(path, size, 2)
    assert plan is not None
    boundary = plan.bounds[1]
    # break the record just before the boundary: reading resyncs past it, so the ranges disagree
    pos = 24
    while True:
        nxt = pos + 16 + struct.unpack_from("<I", data, pos + 8)[0]
        if nxt >= boundary:
            break
        pos = nxt
    data[pos + 8 : pos + 12] = struct.pack("<I", 0x7FFFFFF0)
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(bytes(data))
    split = parallel.read(broken, 0, None, 2)
    sequential = list(read_capture(broken, 0, workers=1))
    assert split is None or normalised(split) == normalised(sequential)
    # whichever way it was read, the public reader reports the corrupt record where it is
    errors = [r for r in read_capture(broken, 0, workers=2) if isinstance(r, InputError)]
    assert [e.offset for e in errors if e.offset is not None] == [pos]


def test_small_files_are_read_by_one_process(capture: tuple[Path, dict[str, Any]]) -> None:
    assert parallel.read(capture[0], 0, None) is None  # under MIN_BYTES


def test_detection_runs_in_the_readers_with_the_same_findings(capture: tuple[Path, dict[str, Any]],
                                                              small_ranges: None) -> None:
    from datareach.detect.detector import Detector

    detector = Detector(None)

    def on_request(ex: Exchange) -> None:
        ex.findings, ex.decode_cuts = detector.detect(ex)

    def findings(records: list[Record]) -> list[Any]:
        return sorted((e.ts, e.url, f.data_type, f.location, tuple(f.encoding), f.value)
                      for e in records if isinstance(e, Exchange) for f in e.findings or [])

    path, _ = capture
    sequential = list(read_capture(path, 0, workers=1))
    for e in sequential:
        if isinstance(e, Exchange):
            on_request(e)
    split = parallel.read(path, 0, None, 3, on_request=on_request)
    assert split is not None
    assert all(e.findings is not None for e in split if isinstance(e, Exchange))
    assert findings(split) == findings(sequential)


@pytest.mark.parametrize("reveal", [False, True])
def test_audit_document_read_in_parallel_is_byte_identical(tmp_path: Path, small_ranges: None,
                                                          monkeypatch: pytest.MonkeyPatch, reveal: bool) -> None:
    """The whole JSON document of an audit whose capture is read by parallel readers (which make
    the exchanges' and findings' rows themselves, named by their own connection uids until the
    merge renames them) is byte for byte that of one reader, on the hard mix's requests with
    findings in many encodings."""
    import io

    from datareach.api import audit
    from datareach.report.json_report import write_json

    path = tmp_path / "hard.pcap"
    _generator().generate_hard(path, 2, seed=11)
    made: list[int] = []
    real_merge = parallel._merge

    def merge(results: Any, input_index: int) -> Any:
        made.append(sum(1 for r in results if r.prepared))
        return real_merge(results, input_index)

    monkeypatch.setattr(parallel, "_merge", merge)

    def document(workers: str) -> bytes:
        monkeypatch.setenv("DATAREACH_WORKERS", workers)
        out = io.BytesIO()
        doc = audit([path], reveal=reveal).document()
        doc["generated_at"] = ""
        write_json(doc, out)
        return out.getvalue()

    one = document("1")
    assert not made  # (one reader: no merge)
    split = document("3")
    assert made and made[0] >= 3, "the readers did not make the rows"
    assert b'"findings": [\n    {' in one and one.count(b'"uid": "C0.') > 100
    assert split == one
