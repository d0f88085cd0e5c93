"""The fuzz harnesses in CI (issue 18): every saved reproducer replays clean, every harness runs
a few hundred fixed-seed cases without a finding, and the blow-ups found by hand stay fixed.

``python -m fuzz`` (the ``fuzz/`` package at the repository root) is the fuzzer itself; see
fuzz/CAMPAIGN.md for the campaigns run with it.
"""

from __future__ import annotations

import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the fuzz package lives at the repository root
    sys.path.insert(0, str(ROOT))

from fuzz.engine import Harness  # noqa: E402
from fuzz.harnesses import all_harnesses  # noqa: E402
from fuzz.runner import fuzz_harness, regression_files, replay  # noqa: E402

HARNESSES = all_harnesses()
#: Cases per harness in CI: a few hundred, fewer where one case is a whole audit.
CI_CASES = {"audit": 30, "pcapng": 150, "mitm-file": 150}


def _available(h: Harness) -> None:
    why = h.unavailable()
    if why is not None:
        pytest.skip(why)


@pytest.mark.parametrize(("harness", "path"), regression_files(), ids=lambda v: getattr(v, "name", v))
def test_saved_reproducers_replay_clean(harness: str, path: Path) -> None:
    h = HARNESSES[harness]
    _available(h)
    [(_, finding)] = replay(h, [path])
    assert finding is None, f"{finding.kind}: {finding.summary}\n{finding.detail}"


@pytest.mark.parametrize("name", list(HARNESSES))
def test_each_harness_runs_clean_for_a_few_hundred_cases(name: str) -> None:
    h = HARNESSES[name]
    _available(h)
    tally = fuzz_harness(h, cases=CI_CASES.get(name, 300), seed=18)
    assert tally.cases == CI_CASES.get(name, 300)
    found = [f"{f.kind} x{n}: {f.summary}\n{f.detail}" for f, n in tally.findings.values()]
    assert not found, "\n".join(found)


# -- blow-ups found before the harnesses, kept fixed ----------------------------------------------


def _gzip(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def _capture(tmp_path: Path, request: bytes) -> Path:
    from datareach.testing.builders import write_pcap
    from datareach.testing.capture import TcpSession

    s = TcpSession("192.168.1.23", 40000, "93.184.216.34", 80)
    packets = s.handshake() + s.send(request) + s.server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    return write_pcap(tmp_path / "c.pcap", packets + s.close())


def test_gzip_inside_gzip_inside_gzip_stays_within_the_limits(tmp_path: Path) -> None:
    """A 1.2 KB capture: 64 MB of hex, gzipped three times, sent as Content-Encoding gzip. The
    innermost layer stops at the layer size limit (8 MB); the run peaked at 612 MB (the hex
    check's regular expression kept a frame per two digits) and copied every decompressed layer
    three times."""
    import datareach

    body = _gzip(_gzip(_gzip(b"0a" * (32 << 20))))
    path = _capture(tmp_path, b"POST /up HTTP/1.1\r\nHost: bomb.example\r\nContent-Encoding: gzip\r\n"
                              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert path.stat().st_size < 2048
    tracemalloc.start()
    try:
        doc = datareach.audit([path]).to_dict()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [ex] = doc["exchanges"]
    assert any("decompressed output stopped at 8388608 bytes (layer size limit 8388608)" in c
               for c in ex["decode_cuts"])
    assert peak < 64 << 20


def test_decompression_never_holds_more_than_its_cap() -> None:
    from datareach.detect import decode

    bomb = _gzip(b"\0" * (64 << 20))
    tracemalloc.start()
    try:
        out, status = decode._decompress("gzip", bomb, 4 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(out), status) == (4 << 20, "cut")
    # the output once, and a step of output or two (it was three copies of the whole output)
    assert peak < (4 << 20) + 3 * decode._OUT_CHUNK
    # many gzip members, each its own: linear work (each member used to copy the rest of the input)
    members = _gzip(b"") * 20000 + _gzip(b"tail")
    assert decode._decompress("gzip", members, 1 << 20) == (b"tail", "ok")


def test_content_encoding_lists_are_bounded() -> None:
    from datareach.detect.decode import decode_exchange
    from datareach.schema import Exchange

    body = b'{"a": 1}'
    for _ in range(12):
        body = _gzip(body)
    ex = Exchange(ts=0.0, scheme="https", method="POST", host="h", url="https://h/", target="/",
                  http_version="HTTP/1.1", request_headers=[("Content-Encoding", ", ".join(["gzip"] * 12))],
                  request_body=body)
    decoded = decode_exchange(ex)
    assert any("only the last 8 were removed (depth limit 8)" in c for c in decoded.cuts)


def test_request_headers_over_the_limit_are_read_in_part_and_said(tmp_path: Path) -> None:
    """Headers over 64 KiB used to drop the request (and the rest of the connection) silently."""
    import datareach
    from datareach.dissect.http1 import MAX_HEADER_BYTES, RequestStream

    big = b"X-Big: " + b"a" * 70000 + b"\r\n"
    request = (b"POST /p?q=1 HTTP/1.1\r\nHost: h.example\r\nContent-Length: 5\r\nX-A: 1\r\n" + big
               + b"X-After: 2\r\n\r\nhello")
    seen = set()
    for step in (1, 1000, 65536, len(request)):
        s = RequestStream()
        reqs = [r for i in range(0, len(request), step) for r in s.feed(request[i:i + step])]
        reqs += s.feed(b"GET /next HTTP/1.1\r\nHost: h.example\r\n\r\n")
        assert [(r.method, r.target, r.body, r.head_cut) for r in reqs] == [
            ("POST", "/p?q=1", b"hello", True), ("GET", "/next", b"", False)]
        assert reqs[0].headers == [("Host", "h.example"), ("Content-Length", "5"), ("X-A", "1")]
        assert s.head_cuts == 1 and not s.broken
        seen.add(reqs[0].head_dropped)
    assert len(seen) == 1
    path = _capture(tmp_path, request)
    for detect in (True, False):
        [ex] = datareach.audit([path], detect=detect).to_dict()["exchanges"]
        assert ex["status"] == 200
        assert ex["decode_cuts"][0].startswith(
            f"request headers: the header block is over the {MAX_HEADER_BYTES}-byte limit; the request line "
            "and the first 3 headers were read")


def test_response_headers_over_the_limit_are_counted_in_the_report(tmp_path: Path) -> None:
    """A response whose header block is over 64 KiB: its status is still read, and the input
    says how many responses had headers that were not read (nothing silent)."""
    import datareach
    from datareach.testing.builders import write_pcap
    from datareach.testing.capture import TcpSession

    s = TcpSession("192.168.1.23", 40000, "93.184.216.34", 80)
    response = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\nok")
    packets = (s.handshake() + s.send(b"GET / HTTP/1.1\r\nHost: h.example\r\n\r\n") + s.server_send(response)
               + s.close())
    path = write_pcap(tmp_path / "r.pcap", packets)
    doc = datareach.audit([path]).to_dict()
    [ex] = doc["exchanges"]
    assert ex["status"] == 200
    messages = [e["message"] for e in doc["inputs"][0]["errors"]]
    assert any(m.startswith("1 HTTP responses had a header block longer than 64 KiB") for m in messages), messages
