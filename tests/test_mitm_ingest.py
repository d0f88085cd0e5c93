"""mitmproxy flow files: read with mitmproxy's own reader (several format versions), bad input.

The fixtures in tests/data/mitm/ were recorded by real mitmdump processes of mitmproxy 7.0.4,
9.0.1, 10.1.6 and 11.0.2 (flow format versions 14, 18, 20, 21; see make_fixtures.py). Reading
them needs mitmproxy (``make`` installs it in .venv/mitmproxy); the sniffing and record tests do
not.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datareach
from datareach.cli import main
from datareach.schema import Connection, DnsAnswer, Exchange, InputError
from datareach.sources import detect_format
from datareach.sources.mitm import (
    FlowState,
    MitmproxyNotFound,
    exchange_from_record,
    looks_like_flows,
    records_from_flow,
)

DATA = Path(__file__).parent / "data" / "mitm"
sys.path.insert(0, str(DATA))
import harness  # noqa: E402

PROFILE = Path(__file__).parents[1] / "examples" / "profile.toml"
VERSIONS = ["7.0.4", "9.0.1", "10.1.6", "11.0.2"]
MITM_PYTHON = harness.mitmproxy_python()
needs_mitmproxy = pytest.mark.skipif(MITM_PYTHON is None, reason="mitmproxy not installed (make installs it)")
EXPECTED_FINDINGS = {
    ("graph.facebook.com", "advertising_id", ("query advertiser_id",)),
    ("t.appsflyer.com", "advertising_id", ("query x", "base64")),
    ("api16-normal-c-useast1a.tiktokv.com", "email", ("body", "json $.header.eh", "sha256(lower(email))")),
    ("collector.example.net", "location", ("body", "lat=X @6 decimals")),
}


def test_sniff_fixtures_and_not_others() -> None:
    for v in VERSIONS:
        path = DATA / f"flows-{v}.mitm"
        assert looks_like_flows(path.read_bytes()[:65536])
        assert detect_format(path) == "mitmproxy"
    assert looks_like_flows(b"1234:7:version;2:21#")  # cut inside the first flow
    for head in (b"", b"{}", b"12", b"12:abc", b"3:abc,", b'{"log": {}}', b"\xd4\xc3\xb2\xa1",
                 b"8:5:hello;]", b"7:99:x;", b"9:5:Hello;}"):
        assert not looks_like_flows(head), head


@given(st.binary(max_size=200))
def test_sniff_never_raises(head: bytes) -> None:
    looks_like_flows(head)


@needs_mitmproxy
@pytest.mark.parametrize("version", VERSIONS)
def test_fixture_versions_read_and_audited(version: str) -> None:
    result = datareach.audit([DATA / f"flows-{version}.mitm"], profile=PROFILE)
    doc = result.to_dict()
    assert doc["inputs"][0]["format"] == "mitmproxy"
    assert doc["inputs"][0]["errors"] == []
    hosts = {d["host"]: d for d in doc["destinations"]}
    assert set(hosts) == {"graph.facebook.com", "t.appsflyer.com", "api16-normal-c-useast1a.tiktokv.com",
                          "collector.example.net"}
    assert hosts["graph.facebook.com"]["name_source"] == "sni"
    assert hosts["graph.facebook.com"]["owner"]["ultimate_parent"]["name"] == "Meta Platforms, Inc."
    assert hosts["api16-normal-c-useast1a.tiktokv.com"]["owner"]["ultimate_parent"]["name"] == "ByteDance Ltd."
    assert "CN" in {r["jurisdiction"] for r in hosts["api16-normal-c-useast1a.tiktokv.com"]["reach"]}
    assert hosts["t.appsflyer.com"]["protocols"] == ["http"]
    assert all(d["ips"] == ["127.0.0.1"] and d["bytes_out"] > 0 and d["bytes_in"] > 0 for d in hosts.values())
    assert {(f["host"], f["data_type"], tuple(f["encoding"])) for f in doc["findings"]} == EXPECTED_FINDINGS
    assert [e["status"] for e in doc["exchanges"]] == [200] * 4


@needs_mitmproxy
def test_flow_kinds_http2_websocket_tcp_udp_dns() -> None:
    doc = datareach.audit([DATA / "kinds-11.0.2.mitm"], profile=PROFILE).to_dict()
    assert doc["inputs"][0]["errors"] == []
    by_host = {d["host"]: d for d in doc["destinations"]}
    assert by_host["graph.facebook.com"]["ips"] == ["157.240.0.35"]
    assert by_host["chat.example.net"]["transports"] == ["tcp"]
    assert by_host["quic.example.net"]["transports"] == ["udp"]
    assert by_host["quic.example.net"]["protocols"] == ["quic"]
    assert by_host["192.0.2.53"]["protocols"] == ["dns"]
    ws = by_host["ws.example.net"]
    assert ws["bytes_out"] > 0 and ws["packets_out"] > 1  # handshake + the messages sent
    versions = {e["host"]: (e["http_version"], e["scheme"]) for e in doc["exchanges"]}
    assert versions == {"graph.facebook.com": ("HTTP/2", "https"), "ws.example.net": ("HTTP/1.1", "ws")}
    assert [(f["host"], f["data_type"]) for f in doc["findings"]] == [("graph.facebook.com", "advertising_id")]
    assert {(a["qname"], a["address"]) for a in doc["dns"]} == {("dns.google", "8.8.8.8"), ("dns.google", "8.8.4.4")}


def _flow_offsets(data: bytes) -> list[int]:
    """Start offsets of the top-level tnetstrings (one per flow)."""
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        colon = data.index(b":", pos)
        pos = colon + 1 + int(data[pos:colon]) + 1
    return offsets


@needs_mitmproxy
def test_truncated_keeps_flows_before_and_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (DATA / "flows-11.0.2.mitm").read_bytes()
    starts = _flow_offsets(data)
    assert len(starts) == 4
    for cut_flow, extra in ((1, 10), (2, 1), (3, 200), (0, 40)):
        cut = starts[cut_flow] + extra
        path = tmp_path / f"cut-{cut}.mitm"
        path.write_bytes(data[:cut])
        result = datareach.audit([path], profile=PROFILE)
        errors = result.inputs[0].errors
        assert len(errors) == 1 and errors[0].fatal, errors
        assert errors[0].offset == starts[cut_flow]
        assert f"{cut_flow} flow{'s' if cut_flow != 1 else ''} read, flow {cut_flow + 1} cannot be read" in errors[0].message
        assert len(result.exchanges) == cut_flow
        code = main(["audit", str(path), "--format", "json", "-o", str(tmp_path / "out.json")])
        assert code == 4
        out = json.loads((tmp_path / "out.json").read_text())
        assert out["inputs"][0]["errors"][0]["offset"] == starts[cut_flow]
    assert "cannot be read" in capsys.readouterr().err


@needs_mitmproxy
def test_corrupt_middle_flow(tmp_path: Path) -> None:
    data = bytearray((DATA / "flows-9.0.1.mitm").read_bytes())
    starts = _flow_offsets(bytes(data))
    data[starts[2]] = ord("x")  # the third flow's length prefix
    path = tmp_path / "corrupt.mitm"
    path.write_bytes(bytes(data))
    result = datareach.audit([path])
    assert len(result.exchanges) == 2
    (err,) = result.inputs[0].errors
    assert err.fatal and err.offset == starts[2] and "2 flows read, flow 3" in err.message


@needs_mitmproxy
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_flow_files_never_crash(tmp_path: Path, data: st.DataObject) -> None:
    base = (DATA / "flows-10.1.6.mitm").read_bytes()
    pos = data.draw(st.integers(0, len(base) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=64))
    mutated = base[:pos] + junk + base[pos + data.draw(st.integers(0, 64)):]
    path = tmp_path / "fuzz.mitm"
    path.write_bytes(mutated)
    records = list(datareach.sources.read_input(path, 0, "mitmproxy"))
    errors = [r for r in records if isinstance(r, InputError)]
    assert all(isinstance(r, Exchange | Connection | DnsAnswer | InputError) for r in records)
    assert sum(1 for e in errors if e.fatal) <= 1
    assert len([r for r in records if isinstance(r, Exchange)]) <= 4


def test_without_mitmproxy_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATAREACH_MITMPROXY_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(MitmproxyNotFound):
        datareach.audit([DATA / "flows-11.0.2.mitm"])
    assert main(["audit", str(DATA / "flows-11.0.2.mitm")]) == 2
    assert "install it in an environment of its own" in capsys.readouterr().err


def _http_record(**over: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "kind": "http", "ts": 1_700_000_000.0, "scheme": "https", "method": "POST", "host": "10.0.0.1",
        "pretty_host": "Graph.Facebook.com.", "port": 443, "path": "/x?a=1", "http_version": "HTTP/2.0",
        "headers": [["content-type", "application/json"]], "body": base64.b64encode(b'{"k": 1}').decode(),
        "body_size": 8, "request_bytes": 60, "status": 200, "response_bytes": 40, "response_size": 2,
        "server_id": "s1", "server_ip": "::ffff:157.240.0.35", "server_port": 443, "sni": "graph.facebook.com",
        "tls": True, "client_ip": "127.0.0.1", "client_port": 5555,
    }
    rec.update(over)
    return rec


def test_record_to_exchange_and_connection() -> None:
    state = FlowState(3)
    out = records_from_flow(_http_record(), state)
    (ex,) = out
    assert isinstance(ex, Exchange)
    assert (ex.host, ex.url, ex.http_version, ex.server_ip, ex.request_body) == (
        "graph.facebook.com", "https://graph.facebook.com/x?a=1", "HTTP/2", "157.240.0.35", b'{"k": 1}')
    records_from_flow(_http_record(), state)  # same server connection
    (conn,) = state.connections()
    assert (conn.sni, conn.protocol, conn.bytes_out, conn.bytes_in, conn.packets_out, conn.input_index) == (
        "graph.facebook.com", "tls", 120, 80, 2, 3)


@given(st.dictionaries(st.sampled_from(["kind", "host", "pretty_host", "port", "path", "body", "headers", "ts",
                                        "status", "server_ip", "websocket", "answers", "questions", "n"]),
                       st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
                       | st.lists(st.text(max_size=5), max_size=3) | st.dictionaries(st.text(max_size=5), st.integers())))
def test_hostile_records_never_raise(fields: dict[str, object]) -> None:
    for kind in ("http", "tcp", "udp", "dns", "other"):
        rec = {**_http_record(), **fields, "kind": fields.get("kind", kind)}
        records_from_flow(rec, FlowState())
        exchange_from_record(rec)


def test_host_with_control_characters_is_refused() -> None:
    assert exchange_from_record(_http_record(pretty_host="evil\x1b[31m.com", host="x\ny")) is None


@needs_mitmproxy
def test_bridge_reports_end_and_count() -> None:
    assert MITM_PYTHON is not None
    from datareach.sources.mitm import FLOWCONV

    out = subprocess.run([MITM_PYTHON, "-I", str(FLOWCONV), "read", str(DATA / "flows-7.0.4.mitm")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    lines = [json.loads(x) for x in out]
    assert lines[0]["kind"] == "start" and lines[-1] == {"kind": "end", "flows": 4,
                                                        "pos": (DATA / "flows-7.0.4.mitm").stat().st_size}
    assert [x["n"] for x in lines[1:-1]] == [1, 2, 3, 4]


# ---------------------------------------------------------------------------------------------
# Old dump formats: dumpfile-010.mitm and dumpfile-011.mitm are mitmproxy's own test files,
# written by mitmproxy 0.10 and 0.11 (tests/data/har/SOURCES.md)


@needs_mitmproxy
def test_a_mitmproxy_0_10_dump_is_named_older_not_newer() -> None:
    path = DATA / "dumpfile-010.mitm"
    assert detect_format(path) == "mitmproxy"
    result = datareach.audit([path], detect=False)
    [error] = result.inputs[0].errors
    assert error.fatal and error.offset == 0
    assert error.message.startswith("mitmproxy flow file written by mitmproxy 0.10, which is older than mitmproxy ")
    assert "reads dumps of mitmproxy 0.11 and later" in error.message
    assert "newer" not in error.message


@needs_mitmproxy
def test_a_mitmproxy_0_11_dump_is_read_through_mitmproxy_s_migrations() -> None:
    result = datareach.audit([DATA / "dumpfile-011.mitm"], detect=False)
    assert result.inputs[0].errors == []
    assert [(e["host"], e["method"], e["status"]) for e in result.exchanges] == [("example.com", "GET", 200)]


def _retagged(tmp_path: Path, version: object, name: str) -> Path:
    """dumpfile-010's flow with its ``version`` replaced (None: removed), written by mitmproxy's
    own tnetstring code."""
    assert MITM_PYTHON is not None
    path = tmp_path / name
    script = ("import sys, json\nfrom mitmproxy.io import tnetstring\n"
              "d = tnetstring.load(open(sys.argv[1], 'rb'))\nv = json.loads(sys.argv[3])\n"
              "d.pop(b'version')\nif v is not None: d[b'version'] = tuple(v) if isinstance(v, list) else "
              "(v.encode() if isinstance(v, str) else v)\n"
              "tnetstring.dump(d, open(sys.argv[2], 'wb'))\n")
    subprocess.run([MITM_PYTHON, "-c", script, str(DATA / "dumpfile-010.mitm"), str(path), json.dumps(version)],
                   check=True)
    return path


@needs_mitmproxy
@pytest.mark.parametrize(("version", "why"), [
    ([0, 9], "written by mitmproxy 0.9, which is older than mitmproxy "),
    (None, "truncated or corrupt, or written by a mitmproxy older than 0.11 (a flow has no format version; "),
    (99, "written by a newer mitmproxy (flow format 99; mitmproxy "),
    ("\x1b[2J\u202ezq", "in an unknown flow format version (mitmproxy "),
])
def test_flow_format_versions_the_installed_mitmproxy_cannot_read(tmp_path: Path, version: object,
                                                                   why: str) -> None:
    path = _retagged(tmp_path, version, "old.mitm")
    [error] = datareach.audit([path], detect=False).inputs[0].errors
    assert error.fatal and error.message.startswith(f"mitmproxy flow file {why}"), error.message


@needs_mitmproxy
def test_old_dump_errors_are_inert_in_reports(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    from test_inert_output import assert_inert

    path = _retagged(tmp_path, ["\x1b[2J\u202ezq\x9b", 1], "hostile.mitm")
    for fmt in ("table", "json", "md"):
        main(["audit", str(path), str(DATA / "dumpfile-010.mitm"), "--no-detect", "--format", fmt])
        sys.stdout.flush()
        out, err = capfdbinary.readouterr()
        assert_inert(out, f"audit --format {fmt}")
        assert_inert(err, f"audit --format {fmt} (standard error)")
        assert b"zq" in out + err
