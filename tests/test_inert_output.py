"""Hostile input cannot act on the terminal (or spoof text) through any report.

A capture whose every string a terminal could act on is an escape sequence: DNS names, a TLS SNI
and an HTTP Host with SGR colour, conceal (``ESC[8m``), the alternate screen (``ESC[?1049h``) and
OSC 8 hyperlinks; a PCAPdroid app name and a HAR page title and ``pageref`` with clear-screen
(``ESC[2J``), C1 CSI (U+009B), DEL, NUL and the right-to-left override U+202E; hostile header,
URL and server address values, and an input file name of the same kind. Every report format is
run through the command line (``audit``, ``diff``, ``explain``) and the bytes written (standard
output and ``-o`` files) must hold no C0 control but line feed, carriage return and tab, no DEL,
no C1 control (UTF-8 ``C2 80``-``C2 9F``) and no bidi control: everything from the input is
shown, escaped. The live lines of the mitmproxy worker are checked the same way, and the two
functions that make text inert (:func:`~datareach.report.terminal.safe`,
:func:`~datareach.report.terminal.inert_json`) have property tests of their own.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datareach.cli import main
from datareach.mitm import worker
from datareach.report import terminal
from datareach.testing.builders import client_hello, dns_query, dns_response
from datareach.testing.capture import LINKTYPE_ETHERNET, PcapngWriter, TcpSession, UdpFlow, pcapdroid_frame
from datareach.testing.reports import gate_policy

ESC = "\x1b"
RLO = "\u202e"
C1_CSI = "\u009b"
DEL = "\x7f"
NUL = "\x00"
BEL = "\x07"
OSC8 = f"{ESC}]8;;http://evil.example/{ESC}\\zq{ESC}]8;;{ESC}\\"
#: Every hostile string carries "zq", so that a test can see it was shown (escaped), not dropped.
DNS_NAME = f"dns{ESC}[?1049h{ESC}[8mzq.example"
SNI = f"sni{OSC8}{ESC}[31m.example"
HTTP_HOST = f"http{ESC}[?1049h{ESC}[8m{C1_CSI}{DEL}{NUL}zq.example"
#: PCAPdroid keeps 19 bytes of an app name
PCAPDROID_APP = f"{ESC}[2J{ESC}]8;;{RLO}{C1_CSI}{DEL}zq"
PAGE_TITLE = f"App{ESC}[2J{ESC}]8;;http://evil.example/{BEL}zq{ESC}]8;;{BEL}{RLO}gnp.exe{C1_CSI}{DEL}{NUL}"
PAGEREF = f"ref{ESC}[?1049h{DEL}{RLO}zq"
HAR_HOST = f"h{ESC}(0{RLO}{C1_CSI}{BEL}zq.example"
EXPLAIN_HOST = f"x{ESC}[31m{ESC}[?1049h{OSC8}{RLO}{C1_CSI}{DEL}zq.example"
FILE_NAME = f"har{ESC}[31m{RLO}{C1_CSI}zq.har"
EMAIL = "victim.person@example.org"

#: What must never be in the output: C0 but LF, CR and tab; DEL; C1 (as UTF-8); the bidi
#: embeddings, overrides, isolates and marks (as UTF-8).
FORBIDDEN = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
    rb"|\xc2[\x80-\x9f]"  # U+0080-U+009F
    rb"|\xe2\x80[\x8e\x8f\xaa-\xae]"  # U+200E, U+200F, U+202A-U+202E
    rb"|\xe2\x81[\xa6-\xa9]"  # U+2066-U+2069
    rb"|\xd8\x9c"  # U+061C
)


def assert_inert(data: bytes, what: str) -> None:
    bad = [(m.start(), data[max(0, m.start() - 30): m.end() + 30]) for m in FORBIDDEN.finditer(data)]
    assert not bad, f"{what}: {len(bad)} raw control byte(s), first at {bad[0][0]}: {bad[0][1]!r}"


# ------------------------------------------------------------------------------------------
# The hostile inputs


def _sni_client_hello(name: str) -> bytes:
    """OpenSSL's ClientHello for a placeholder name of the same length, the name then written
    over it (OpenSSL refuses control characters in a server name; a hostile client does not)."""
    raw = name.encode("ascii")
    placeholder = b"a" * (len(raw) - 8) + b".example"
    hello = client_hello(placeholder.decode(), ["http/1.1"])
    assert hello.count(placeholder) == 1
    return hello.replace(placeholder, raw)


def _dns_response(qname: str, address: str) -> bytes:
    """A DNS response naming ``address``, its question and answer names ``qname`` (raw labels)."""
    import dns.name

    name = dns.name.Name([label.encode("latin-1") for label in qname.split(".")] + [b""])
    response = dns_response("placeholder.example", [("placeholder.example.", "A", address)])
    wire = dns.name.from_text("placeholder.example").to_wire()
    assert wire is not None
    return response.replace(wire, name.to_wire() or b"")


def hostile_pcapng(path: Path) -> Path:
    """A PCAPdroid capture (hostile app name on every frame): a DNS answer, a TLS ClientHello
    and an HTTP request whose names are escape sequences."""
    packets = []
    dns_flow = UdpFlow("10.215.173.1", 53000, "8.8.8.8", 53, start=1_715_674_320.0)
    packets += dns_flow.exchange(dns_query("placeholder.example"), _dns_response(DNS_NAME, "203.0.113.7"))
    plain = TcpSession("10.215.173.1", 40001, "203.0.113.7", 8443, start=1_715_674_321.0)
    packets += plain.handshake() + plain.client_send(b"\x00\x01hello") + plain.close()
    tls = TcpSession("10.215.173.1", 40002, "203.0.113.9", 443, start=1_715_674_322.0)
    packets += tls.handshake() + tls.client_send(_sni_client_hello(SNI)) + tls.close()
    http = TcpSession("10.215.173.1", 40003, "203.0.113.80", 80, start=1_715_674_323.0)
    request = (f"GET /p{ESC}[8m?e{ESC}[2Jmail={EMAIL} HTTP/1.1\r\nHost: {HTTP_HOST}\r\n"
               f"User-Agent: ua{RLO}{C1_CSI}{ESC}[2J\r\n\r\n").encode("latin-1", "replace")
    packets += (http.handshake() + http.client_send(request)
                + http.server_send(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n") + http.close())
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        iface = w.add_interface(LINKTYPE_ETHERNET)
        for ts, ip in sorted(packets, key=lambda p: p[0]):
            w.write(ts, pcapdroid_frame(ip, 10123, PCAPDROID_APP), iface)
    return path


def _har_entry(url: str, pageref: str, server_ip: str | None = None) -> dict[str, Any]:
    body = json.dumps({"email": EMAIL, f"n{ESC}[8mote": f"v{RLO}{C1_CSI}{DEL}"})
    entry: dict[str, Any] = {
        "pageref": pageref, "startedDateTime": "2024-05-14T08:12:03.000Z", "time": 10,
        "request": {"method": "POST", "url": url, "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "User-Agent", "value": f"ua{ESC}[2J{RLO}{C1_CSI}{DEL}{NUL}"},
                                {"name": f"X-{ESC}[31m", "value": OSC8}],
                    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": len(body),
                    "postData": {"mimeType": "application/json", "text": body}},
        "response": {"status": 200, "statusText": f"OK{ESC}[2J", "httpVersion": "HTTP/1.1", "headers": [],
                     "cookies": [], "content": {"size": 0, "mimeType": "text/plain"}, "redirectURL": "",
                     "headersSize": -1, "bodySize": 0},
        "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0},
    }
    if server_ip is not None:
        entry["serverIPAddress"] = server_ip
    return entry


def hostile_har(path: Path) -> Path:
    """An HTTP Toolkit HAR: hostile page title (the app name), ``pageref`` without a page, host
    names, URLs, header names and values, and a server address that is not one (an input error)."""
    entries = [
        _har_entry(f"http://{HAR_HOST}/p{ESC}[8m?e{ESC}[2Jmail={EMAIL}", "p1"),
        _har_entry(f"http://x{C1_CSI}{DEL}zq.example/{RLO}?m={EMAIL}", PAGEREF, f"1.2.3.4{ESC}[2J{RLO}"),
        _har_entry(f"h{ESC}[2J{RLO}tp://y.example/", "p1"),
    ]
    har = {"log": {"version": "1.2", "creator": {"name": "HTTP Toolkit", "version": "1.0"},
                   "pages": [{"id": "p1", "title": PAGE_TITLE, "startedDateTime": "2024-05-14T08:12:03.000Z",
                              "pageTimings": {}}],
                   "entries": entries}}
    path.write_text(json.dumps(har), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    profile = tmp / "profile.toml"
    profile.write_text(f'email = "{EMAIL}"\n', encoding="utf-8")
    return {"pcapng": hostile_pcapng(tmp / "hostile.pcapng"), "har": hostile_har(tmp / FILE_NAME),
            "profile": profile, "policy": gate_policy(tmp), "dir": tmp}


def _run(capfd: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, bytes]:
    status = main(list(argv))
    sys.stdout.flush()
    out, err = capfd.readouterr()
    return status, out, err


# ------------------------------------------------------------------------------------------
# The reports


def test_the_hostile_strings_reach_the_document(inputs: dict[str, Path]) -> None:
    """The capture does carry its payloads into the audit (else the tests below prove nothing)."""
    import datareach

    doc = datareach.audit([inputs["pcapng"], inputs["har"]], profile=inputs["profile"]).to_dict()
    hosts = {d["host"] for d in doc["destinations"]}
    apps = {d["app"] for d in doc["destinations"]}
    assert DNS_NAME in hosts and SNI in hosts and HTTP_HOST in hosts
    assert PCAPDROID_APP in apps and PAGE_TITLE in apps and PAGEREF in apps
    assert any(RLO in h and C1_CSI in h for h in hosts)
    assert doc["findings"] and any(ESC in f["location"] for f in doc["findings"])
    assert any(i["errors"] for i in doc["inputs"])


@pytest.mark.parametrize("fmt", ["table", "json", "md", "html", "sarif", "junit", "csv"])
def test_audit_reports_are_inert(inputs: dict[str, Path], capfdbinary: pytest.CaptureFixture[bytes],
                                 fmt: str) -> None:
    args = ["audit", str(inputs["pcapng"]), str(inputs["har"]), "--profile", str(inputs["profile"]),
            "--policy", str(inputs["policy"]), "--reveal", "--format", fmt]
    status, out, _err = _run(capfdbinary, *args)
    assert status == 3, status  # the gate policy's deny rule: personal data in clear text
    assert_inert(out, f"audit --format {fmt} (standard output)")
    assert b"zq" in out
    path = inputs["dir"] / f"report.{fmt}"
    status, _out, _err = _run(capfdbinary, *args, "-o", str(path))
    assert status == 3
    data = path.read_bytes()
    assert_inert(data, f"audit --format {fmt} -o FILE")
    assert b"zq" in data
    if fmt == "json":  # escaped, not changed: the document reads back with every payload
        doc = json.loads(data)
        assert PAGE_TITLE in {d["app"] for d in doc["destinations"]}
        assert HTTP_HOST in {d["host"] for d in doc["destinations"]}
    if fmt == "sarif":  # the same: escaped JSON strings
        hosts = {r["properties"]["host"] for r in json.loads(data)["runs"][0]["results"]}
        assert HTTP_HOST in hosts or HAR_HOST in hosts
    if fmt == "junit":  # well-formed XML (1.0 forbids most control characters)
        import xml.etree.ElementTree as ET

        assert ET.fromstring(data).tag == "testsuites"
    if fmt == "csv":  # the findings' file too
        findings = path.with_name("report.findings.csv").read_bytes()
        assert_inert(findings, "audit --format csv -o FILE (findings)")
        assert EMAIL.encode() in findings


@pytest.fixture(scope="module")
def audit_documents(inputs: dict[str, Path]) -> tuple[Path, Path]:
    old, new = inputs["dir"] / "old.json", inputs["dir"] / "new.json"
    assert main(["audit", str(inputs["pcapng"]), "--format", "json", "-o", str(old)]) == 0
    assert main(["audit", str(inputs["pcapng"]), str(inputs["har"]), "--profile", str(inputs["profile"]),
                 "--policy", str(inputs["policy"]), "--format", "json", "-o", str(new)]) == 3
    return old, new


@pytest.mark.parametrize("fmt", ["table", "json", "md"])
def test_diff_reports_are_inert(inputs: dict[str, Path], audit_documents: tuple[Path, Path],
                                capfdbinary: pytest.CaptureFixture[bytes], fmt: str) -> None:
    old, new = audit_documents
    for a, b in ((old, new), (new, old)):
        status, out, _err = _run(capfdbinary, "diff", str(a), str(b), "--format", fmt)
        assert status in (0, 3)
        assert_inert(out, f"diff --format {fmt} (standard output)")
        assert b"zq" in out
        path = inputs["dir"] / f"diff.{fmt}"
        _run(capfdbinary, "diff", str(a), str(b), "--format", fmt, "-o", str(path))
        assert_inert(path.read_bytes(), f"diff --format {fmt} -o FILE")


def test_diff_of_a_hostile_document_is_inert(inputs: dict[str, Path], audit_documents: tuple[Path, Path],
                                             capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    """A document someone hands us: strings the pipeline never writes (an owner, a jurisdiction,
    a schema version) are escaped too."""
    old, new = audit_documents
    doc = json.loads(new.read_bytes())
    d = doc["destinations"][0]
    d["owner"] = {"entity": "e", "name": f"Evil{ESC}[2J{RLO}zq", "ultimate_parent":
                  {"entity": "t", "name": f"Top{C1_CSI}{DEL}zq", "hq_country": f"C{ESC}[8mN"}}
    d["reach"] = [{"jurisdiction": f"J{ESC}[31m{RLO}", "basis": f"b{C1_CSI}", "path": [OSC8]}]
    hostile = inputs["dir"] / "hostile-doc.json"
    hostile.write_text(json.dumps(doc), encoding="utf-8")
    for fmt in ("table", "json", "md"):
        _status, out, _err = _run(capfdbinary, "diff", str(old), str(hostile), "--format", fmt)
        assert_inert(out, f"diff --format {fmt} of a hostile document")
        assert b"zq" in out


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl"])
def test_explain_is_inert(inputs: dict[str, Path], capfdbinary: pytest.CaptureFixture[bytes], fmt: str) -> None:
    status, out, _err = _run(capfdbinary, "explain", EXPLAIN_HOST, "google.com", "--format", fmt)
    assert status == 0
    assert_inert(out, f"explain --format {fmt}")
    assert b"zq" in out
    path = inputs["dir"] / f"explain.{fmt}"
    _run(capfdbinary, "explain", EXPLAIN_HOST, "--format", fmt, "-o", str(path))
    assert_inert(path.read_bytes(), f"explain --format {fmt} -o FILE")


def test_command_line_messages_are_inert(inputs: dict[str, Path], audit_documents: tuple[Path, Path],
                                         capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    """What the command line writes to standard error: input errors (``datareach: PATH: message``),
    a missing input, a policy regression naming the files."""
    _status, _out, err = _run(capfdbinary, "audit", str(inputs["har"]), "--format", "json", "-o",
                              str(inputs["dir"] / "errors.json"))
    assert b"not an IP address" in err
    messages = [err]
    messages.append(_run(capfdbinary, "audit", str(inputs["dir"] / f"missing{ESC}[2J{RLO}"))[2])
    old, new = audit_documents
    renamed = inputs["dir"] / f"new{ESC}[2J{RLO}.json"
    renamed.write_bytes(new.read_bytes())
    messages.append(_run(capfdbinary, "diff", str(old), str(renamed), "-o", str(inputs["dir"] / "d.txt"))[2])
    assert b"policy regression" in messages[-1]
    for n, text in enumerate(messages):
        assert_inert(text, f"standard error ({n})")


def test_explain_plain_lines_are_inert() -> None:
    """Past a few hundred hosts the explain table is plain lines: escaped the same way."""
    from datareach.report.table import render_explain

    docs = [{"host": f"{EXPLAIN_HOST}{i}", "owner": None, "reach": [{"jurisdiction": f"J{RLO}", "basis": "host"}]}
            for i in range(501)]
    assert_inert(render_explain(docs, "2025-01-01").encode(), "explain plain lines")


# ------------------------------------------------------------------------------------------
# The live lines of the mitmproxy worker


HOSTILE_DESTINATION: dict[str, Any] = {
    "host": HTTP_HOST, "ips": [f"203.0.113.80{ESC}[2J"], "country": f"D{RLO}E", "ip_scope": "public",
    "asn": 64500, "as_org": f"AS org{ESC}]8;;x{BEL}{C1_CSI}{DEL}zq",
    "owner": {"entity": "e", "name": PAGE_TITLE, "hq_country": f"C{ESC}[8mN",
              "ultimate_parent": {"entity": "t", "name": PCAPDROID_APP, "hq_country": f"U{RLO}S"}},
    "reach": [{"jurisdiction": f"C{ESC}[31mN", "basis": f"own{C1_CSI}er"}, {"jurisdiction": RLO, "basis": DEL}],
}


def test_live_destination_line_is_inert() -> None:
    line = worker.destination_line(HOSTILE_DESTINATION)
    assert_inert(line.encode(), "live destination line")
    assert "zq" in line
    for owner in (HOSTILE_DESTINATION["owner"], {**HOSTILE_DESTINATION["owner"], "ultimate_parent":
                                                 {"entity": "e", "name": PAGEREF}}):
        assert_inert(worker.owner_text(owner).encode(), "live owner text")
    assert_inert(worker.reach_text(HOSTILE_DESTINATION["reach"]).encode(), "live reach text")


def test_live_lines_of_hostile_flows_are_inert(inputs: dict[str, Path]) -> None:
    """The worker's own loop, on the records the addon hands it (host names with control
    characters are refused by the reader; paths, query names and values are not)."""
    import base64

    from datareach.detect.profile import Profile

    out = io.StringIO()
    analyzer = worker.LiveAnalyzer(Profile(values={"email": EMAIL}), out=out)
    body = json.dumps({f"e{ESC}[8m{RLO}mail": EMAIL}).encode()
    rec = {"kind": "http", "id": f"id{ESC}[2J", "ts": 1_700_000_000.0, "scheme": "https", "method": "POST",
           "host": "10.0.0.1", "pretty_host": "collector.example.net", "port": 443,
           "path": f"/p{ESC}[2J{RLO}?q{ESC}[8m{C1_CSI}={EMAIL}", "http_version": "HTTP/1.1",
           "headers": [["content-type", "application/json"], [f"x-{ESC}[31m", f"{EMAIL}{RLO}"]],
           "body": base64.b64encode(body).decode(), "body_size": len(body), "request_bytes": 60, "status": 200,
           "response_bytes": 40, "response_size": 2, "server_id": "s1", "server_ip": "203.0.113.5",
           "server_port": 443, "sni": "collector.example.net", "tls": True, "client_ip": "127.0.0.1",
           "client_port": 5555}
    analyzer.handle(rec)
    assert analyzer.failures == 0
    text = out.getvalue()
    assert analyzer.distinct_findings and "finding" in text
    assert_inert(text.encode(), "live lines")


def test_worker_log_lines_are_inert(caplog: pytest.LogCaptureFixture) -> None:
    """A failure on a record is logged with its traceback: the flow's values in it are escaped."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(worker.SafeFormatter("%(message)s"))
    log = logging.getLogger("datareach.mitm")
    log.addHandler(handler)
    try:
        analyzer = worker.LiveAnalyzer.__new__(worker.LiveAnalyzer)
        analyzer.records = analyzer.failures = 0

        def boom(rec: dict[str, Any]) -> None:
            raise ValueError(f"bad host {HTTP_HOST}\nsecond line {OSC8}")

        analyzer._handle = boom  # type: ignore[method-assign]
        analyzer.handle({"id": PAGEREF})
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert analyzer.failures == 1 and "ValueError" in text and "zq" in text
    assert_inert(text.encode(), "worker log")


def test_worker_report_lines_are_inert(inputs: dict[str, Path], tmp_path: Path) -> None:
    """The end-of-run lines (input errors of the saved flows) and the reports it writes."""
    out = io.StringIO()
    report = tmp_path / f"r{ESC}[2Jzq"
    worker.write_reports(inputs["har"], str(report), None, [], out)
    assert "zq" in out.getvalue()
    assert_inert(out.getvalue().encode(), "worker report lines")
    for suffix in (".json", ".html"):
        assert_inert(Path(f"{report}{suffix}").read_bytes(), f"worker REPORT{suffix}")


# ------------------------------------------------------------------------------------------
# The two functions


_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)


@given(st.one_of(_TEXT, st.text(max_size=40)))
def test_safe_output_is_always_printable(text: str) -> None:
    out = terminal.safe(text)
    assert out.isprintable()
    if text.isprintable():
        assert out is text or out == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")),
               max_size=40))
def test_safe_is_the_identity_on_printable_text(text: str) -> None:
    assert terminal.safe(text) == text


def test_safe_spelling() -> None:
    assert terminal.safe(f"a{ESC}[2J{DEL}{C1_CSI}{RLO}\n\U000e0041\U000f0000 b") == \
        "a\\x1b[2J\\x7f\\x9b\\u202e\\x0a\\U000e0041\\U000f0000 b"
    assert terminal.safe(42) == "42"
    assert terminal.safe("→ Ünïcödé 中文") == "→ Ünïcödé 中文"


@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TEXT,
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_TEXT, kids, max_size=4),
                    max_leaves=12))
def test_inert_json_is_the_same_json_without_raw_controls(value: Any) -> None:
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:  # lone surrogates: orjson refuses them
        return
    out = terminal.inert_json(data)
    assert orjson.loads(out) == value
    assert_inert(out, "inert_json")
    if terminal.CONTROL_CHARS.search(data.decode()) is None:
        assert out is data


def test_inert_json_covers_every_control_and_format_character() -> None:
    """Every Cc, Cf, Zl and Zp character of this Python's Unicode database is written as an
    escape (C0 by orjson itself); a clean document is returned as the very same object."""
    for cp in range(0x110000):
        ch = chr(cp)
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out = terminal.inert_json(orjson.dumps(ch))
            assert out.isascii(), (hex(cp), out)
            assert orjson.loads(out) == ch
    clean = orjson.dumps({"host": "example.com", "app": "Ünïcödé 中文 → 🙂"})
    assert terminal.inert_json(clean) is clean
    assert terminal.inert_json(b'"a\x7fb"') == b'"a\\u007fb"'
    assert terminal.inert_json('"\U000e0041"'.encode()) == b'"\\udb40\\udc41"'


def test_inert_json_is_cheap_on_clean_data() -> None:
    big = orjson.dumps([{"host": f"h{i}.example.com", "app": "Ünïcödé 中文"} for i in range(20000)])
    assert terminal.inert_json(big) is big

