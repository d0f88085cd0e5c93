"""Tests for the HAR reader (datareach.sources.har)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach.schema import Connection, Exchange, InputError, Record
from datareach.sources import har
from datareach.sources.har import looks_like_har, read_har

DATA = Path(__file__).parent / "data" / "har"


def _read(path: Path, input_index: int = 0) -> list[Record]:
    return list(read_har(path, input_index))


def _split(records: list[Record]) -> tuple[list[Exchange], list[Connection], list[InputError]]:
    ex = [r for r in records if isinstance(r, Exchange)]
    conns = [r for r in records if isinstance(r, Connection)]
    errs = [r for r in records if isinstance(r, InputError)]
    return ex, conns, errs


def _entry(url: str = "https://www.example.com/", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "startedDateTime": "2024-01-01T00:00:00.000Z",
        "time": 10,
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": "Host", "value": "www.example.com"}],
            "cookies": [],
            "queryString": [],
            "headersSize": 100,
            "bodySize": 0,
        },
        "response": {
            "status": 200,
            "statusText": "OK",
            "httpVersion": "HTTP/1.1",
            "headers": [],
            "cookies": [],
            "content": {"size": 5, "mimeType": "text/plain"},
            "redirectURL": "",
            "headersSize": 50,
            "bodySize": 5,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 10, "receive": 0},
    }
    entry.update(extra)
    return entry


def _har(entries: list[Any], **log: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"version": "1.2", "creator": {"name": "test", "version": "0"}}
    body.update(log)
    body["entries"] = entries
    return {"log": body}


def _write(tmp_path: Path, doc: Any, name: str = "t.har") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


# ---------------------------------------------------------------------------------------------
# Real writers' shapes


def test_chrome_devtools() -> None:
    ex, conns, errs = _split(_read(DATA / "chrome.har", input_index=2))
    assert errs == []
    # The data: URL entry is not network traffic and is skipped.
    assert [e.host for e in ex] == [
        "www.example.com",
        "www.example.com",
        "cdn.example.org",
        "live.example.com",
    ]
    first, post, pixel, ws = ex
    assert first.ts == pytest.approx(1709287200.0)
    assert first.http_version == "HTTP/2"
    assert first.server_ip == "2606:2800:21f:cb07:6820:80da:af6b:8b2c"  # brackets stripped
    assert first.server_port == 443
    assert first.status == 200 and first.response_size == 648
    assert first.input_index == 2
    # Cookies array matches the Cookie header: nothing synthesized.
    assert [h for h in first.request_headers if h[0].lower() == "cookie"] == [
        ("cookie", "consent=yes; _ga=GA1.1.111.222")
    ]
    assert post.method == "POST"
    assert post.target == "/api/track?v=2&tid=G-TEST123"
    assert post.request_body == b'{"cid":"555.666","screen":"1920x1080","lang":"en"}'
    assert post.status == 204 and post.response_size == 0  # bodySize -1: content.size
    assert pixel.http_version == "HTTP/3"
    assert ws.scheme == "wss" and ws.status == 101

    # Chrome's connection id groups the two www.example.com requests into one connection.
    by_host = {c.http_host: c for c in conns}
    assert len(conns) == 3
    www = by_host["www.example.com"]
    assert (www.transport, www.protocol, www.packets_out, www.packets_in) == ("tcp", "tls", 2, 2)
    assert www.bytes_out == 52 and www.bytes_in == 648
    assert www.client_ip == "" and www.client_port == 0 and www.sni is None
    assert www.first_seen == pytest.approx(1709287200.0)
    assert www.last_seen == pytest.approx(1709287200.53025)
    quic = by_host["cdn.example.org"]
    assert (quic.transport, quic.protocol, quic.server_ip) == ("udp", "quic", "192.0.2.10")
    sock = by_host["live.example.com"]
    # 210 header bytes + 17-byte text message + 4 bytes of binary (base64) message.
    assert sock.bytes_out == 210 + 17 + 4 and sock.packets_out == 1 + 2
    assert sock.bytes_in == 129 + 11 and sock.packets_in == 1 + 1
    assert sock.last_seen == pytest.approx(1709287203.0)
    # Connections come after every exchange.
    records = _read(DATA / "chrome.har")
    assert all(isinstance(r, Connection) for r in records[len(ex) :])


def test_firefox_devtools() -> None:
    ex, conns, errs = _split(_read(DATA / "firefox.har"))
    assert errs == []
    assert len(ex) == 2
    assert ex[0].ts == pytest.approx(1709287200.0)  # +01:00 offset honoured
    login = ex[1]
    # params-only postData is form-encoded.
    assert login.request_body == b"user=alice&remember=on+%26+off"
    # Cookie only in the cookies array: a synthesized Cookie header is appended.
    assert login.request_headers[-1] == ("cookie", "session=s3cr3t")
    # Firefox's "connection" is the remote port, not an id: grouping by (host, ip, port).
    assert len(conns) == 1
    c = conns[0]
    assert c.packets_out == 2 and c.bytes_out == 320 + 410 + 27
    assert c.bytes_in == 250 + 700 + 150 + 0


def test_mitmproxy_savehar_fixture() -> None:
    """tests/data/har/mitmproxy_savehar.har was written by mitmproxy 11's own SaveHar addon."""
    ex, conns, errs = _split(_read(DATA / "mitmproxy_savehar.har"))
    assert errs == []
    hosts = [e.host for e in ex]
    assert hosts == [
        "www.example.com",
        "ads.example.org",
        "upload.example.net",
        "forms.example.com",
        "dead.example.com",
        "api.example.com",
    ]
    assert ex[0].target == "/index.html?utm_source=test"
    assert ex[1].server_ip == "2001:db8::1"
    assert b"38400000-8cf0-11bd-b23e-10b96e40000d" in ex[1].request_body
    assert ex[4].status is None  # no response (error)
    # Surrogate-escaped (non-UTF-8) body comes back as the original bytes.
    assert ex[5].request_body == b"id=\xff\xfeAB"
    dead = next(c for c in conns if c.http_host == "dead.example.com")
    assert dead.packets_in == 0 and dead.bytes_in == 0


def test_httptoolkit() -> None:
    ex, conns, errs = _split(_read(DATA / "httptoolkit.har"))
    assert errs == []
    assert [e.app for e in ex] == ["okhttp 4.12 (Android)"] * 3
    assert b"38400000-8cf0-11bd-b23e-10b96e40000d" in ex[0].request_body
    assert ex[0].server_ip is None  # HTTP Toolkit records no server address
    # Non-UTF-8 body in the _content extension, base64.
    assert ex[1].request_body == base64.b64decode("AP8QIDBA")
    assert ex[1].status is None
    # Body discarded by the writer: marked truncated.
    assert ex[2].request_body == b"" and ex[2].request_body_truncated
    assert ex[2].request_body_size == 900000
    assert ex[0].request_body_size is None  # body kept whole
    assert all(c.server_ip == "" and c.app == "okhttp 4.12 (Android)" for c in conns)


def test_pcapdroid() -> None:
    ex, conns, errs = _split(_read(DATA / "pcapdroid.har"))
    assert errs == []
    assert ex[0].request_body == base64.b64decode("CAESBGFiY2Q=")  # postData encoding base64
    assert ex[0].server_port == 80 and ex[0].scheme == "http"
    assert ex[1].status is None
    assert all(e.app is None for e in ex)
    # Same PCAPdroid connection id: one connection.
    assert len(conns) == 1
    c = conns[0]
    assert (c.protocol, c.server_ip, c.server_port) == ("http", "203.0.113.50", 80)
    assert c.bytes_out == 121 + 8 + 90 and c.packets_out == 2
    assert c.bytes_in == 64 + 2 and c.packets_in == 1


# ---------------------------------------------------------------------------------------------
# Field handling


def test_base64_postdata_and_ipv6_url(tmp_path: Path) -> None:
    e = _entry("http://[2001:DB8::5]:8080/p?q=1", serverIPAddress="[2001:db8::5]")
    e["request"]["method"] = "POST"
    e["request"]["postData"] = {
        "mimeType": "application/octet-stream",
        "text": "AAEC/w==",
        "encoding": "base64",
    }
    ex, conns, errs = _split(_read(_write(tmp_path, _har([e]))))
    assert errs == []
    assert ex[0].host == "2001:db8::5"
    assert ex[0].server_port == 8080 and ex[0].server_ip == "2001:db8::5"
    assert ex[0].target == "/p?q=1"
    assert ex[0].request_body == b"\x00\x01\x02\xff"
    assert conns[0].server_ip == "2001:db8::5" and conns[0].protocol == "http"


def test_cookies_partly_in_header(tmp_path: Path) -> None:
    e = _entry()
    e["request"]["headers"].append({"name": "Cookie", "value": "a=1; b=2"})
    e["request"]["cookies"] = [
        {"name": "a", "value": "1"},
        {"name": "c", "value": "3"},
        {"name": "d", "value": "4"},
    ]
    ex, _, _ = _split(_read(_write(tmp_path, _har([e]))))
    assert ex[0].request_headers[-2:] == [("Cookie", "a=1; b=2"), ("cookie", "c=3; d=4")]


def test_body_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(har, "MAX_BODY", 1000)
    text = _entry()
    text["request"]["postData"] = {"mimeType": "text/plain", "text": "x" * 5000}
    b64 = _entry()
    b64["request"]["postData"] = {"text": base64.b64encode(b"y" * 5000).decode(), "encoding": "base64"}
    small = _entry()
    small["request"]["postData"] = {"text": base64.b64encode(b"z" * 999).decode(), "encoding": "base64"}
    ex, _, errs = _split(_read(_write(tmp_path, _har([text, b64, small]))))
    assert errs == []
    assert ex[0].request_body == b"x" * 1000 and ex[0].request_body_truncated
    assert ex[1].request_body == b"y" * 1000 and ex[1].request_body_truncated
    assert ex[2].request_body == b"z" * 999 and not ex[2].request_body_truncated


def test_body_cap_real_size(tmp_path: Path) -> None:
    e = _entry()
    e["request"]["postData"] = {"mimeType": "text/plain", "text": "a" * (har.MAX_BODY + 10)}
    ex, _, _ = _split(_read(_write(tmp_path, _har([e]))))
    assert len(ex[0].request_body) == har.MAX_BODY and ex[0].request_body_truncated


def test_progress_and_bom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(har, "PROGRESS_STEP", 1000)
    monkeypatch.setattr(har, "READ_SIZE", 512)
    raw = json.dumps(_har([_entry(f"https://h{i}.example.com/") for i in range(50)]), indent=2).encode()
    p = tmp_path / "bom.har"
    p.write_bytes(b"\xef\xbb\xbf\n  " + raw)
    seen: list[int] = []
    ex, _, errs = _split(list(read_har(p, 0, seen.append)))
    assert errs == [] and len(ex) == 50
    assert seen and seen[-1] == p.stat().st_size
    assert seen == sorted(seen)


# ---------------------------------------------------------------------------------------------
# Hostile input


def test_bad_entries_are_reported_and_the_rest_kept(tmp_path: Path) -> None:
    bad_headers = _entry("https://a.example.com/")
    bad_headers["request"]["headers"] = "Host: a"
    bad_header_item = _entry("https://b.example.com/")
    bad_header_item["request"]["headers"].append({"name": 5, "value": "x"})
    bad_b64 = _entry("https://c.example.com/")
    bad_b64["request"]["postData"] = {"text": "!!not base64!!", "encoding": "base64"}
    huge = _entry("https://d.example.com/")
    huge["response"]["bodySize"] = 10**400
    huge["request"]["bodySize"] = 1e300
    no_url = _entry()
    del no_url["request"]["url"]
    bad_ip = _entry("https://e.example.com/", serverIPAddress="not-an-ip")
    entries: list[Any] = [
        _entry("https://ok.example.com/"),  # 0
        "just a string",  # 1
        {"startedDateTime": "2024-01-01T00:00:00Z"},  # 2 no request
        _entry(url=12345),  # type: ignore[arg-type]  # 3 url not a string
        bad_headers,  # 4
        _entry("https://f.example.com/", startedDateTime="yesterday"),  # 5
        bad_b64,  # 6
        huge,  # 7
        no_url,  # 8
        _entry("http://[::1/"),  # 9 unparseable URL
        bad_header_item,  # 10
        bad_ip,  # 11
        _entry("ftp://files.example.com/x"),  # 12
        _entry("https://g.example.com/", request=[]),  # 13 request not an object
        _entry("https://h.example.com:99999/"),  # 14 bad port
        _entry("https://last.example.com/"),  # 15
    ]
    ex, conns, errs = _split(_read(_write(tmp_path, _har(entries))))
    paths = {e.json_path for e in errs}
    assert not any(e.fatal for e in errs)
    assert {
        "$.log.entries[1]",
        "$.log.entries[2].request",
        "$.log.entries[3].request.url",
        "$.log.entries[4].request.headers",
        "$.log.entries[5].startedDateTime",
        "$.log.entries[6].request.postData.text",
        "$.log.entries[7].response.bodySize",
        "$.log.entries[8].request.url",
        "$.log.entries[9].request.url",
        "$.log.entries[10].request.headers[1]",
        "$.log.entries[11].serverIPAddress",
        "$.log.entries[12].request.url",
        "$.log.entries[13].request",
        "$.log.entries[14].request.url",
    } <= paths
    assert [e.host for e in ex] == [
        "ok.example.com",
        "a.example.com",
        "f.example.com",
        "c.example.com",
        "d.example.com",
        "b.example.com",
        "e.example.com",
        "last.example.com",
    ]
    by_host = {e.host: e for e in ex}
    assert by_host["a.example.com"].request_headers == []
    assert by_host["b.example.com"].request_headers == [("Host", "www.example.com")]
    assert by_host["f.example.com"].ts == 0.0
    assert by_host["c.example.com"].request_body == b"!!not base64!!"  # kept as text
    assert by_host["d.example.com"].response_size == 5  # falls back to content.size
    assert by_host["e.example.com"].server_ip is None
    assert len(conns) == len(ex)


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"log": {"entries": {"a": 1}}}, "$.log.entries"),
        ({"log": {"entries": "x"}}, "$.log.entries"),
        ({"log": []}, "$.log"),
        ({"log": {"version": "1.2"}}, "$.log.entries"),
        ({"notlog": {"entries": []}}, "$.log"),
        ([1, 2, 3], "$"),
        ("a string", "$"),
        (None, "$"),
    ],
)
def test_wrong_shape_is_one_fatal_error(tmp_path: Path, doc: Any, path: str) -> None:
    records = _read(_write(tmp_path, doc))
    assert len(records) == 1
    err = records[0]
    assert isinstance(err, InputError) and err.fatal and err.json_path == path


@pytest.mark.parametrize(
    "content", [b"", b"   \n", b"\xef\xbb\xbf", b"\x00\x01\x02binary", b"not json at all"]
)
def test_empty_or_not_json(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "x.har"
    p.write_bytes(content)
    records = _read(p)
    assert len(records) == 1
    assert isinstance(records[0], InputError) and records[0].fatal
    if not content.strip(b" \n\xef\xbb\xbf"):
        assert "empty" in records[0].message


def test_truncated_file_keeps_entries_before(tmp_path: Path) -> None:
    raw = json.dumps(_har([_entry(f"https://h{i}.example.com/") for i in range(5)]), indent=1).encode()
    cut = raw.index(b"h4.example.com") - 200  # inside entry 3
    p = tmp_path / "cut.har"
    p.write_bytes(raw[:cut])
    records = _read(p)
    ex, conns, errs = _split(records)
    assert [e.host for e in ex] == ["h0.example.com", "h1.example.com", "h2.example.com"]
    assert len(conns) == 3
    assert len(errs) == 1 and errs[0].fatal
    assert errs[0].offset == cut
    assert records[-1] is errs[0]  # the fatal error comes last


def test_syntax_error_offset(tmp_path: Path) -> None:
    raw = json.dumps(_har([_entry(f"https://h{i}.example.com/") for i in range(40)]), indent=2).encode()
    bad_at = raw.index(b'"https://h30.example.com/"') - 2  # the space after "url":
    bad = raw[:bad_at] + b"@" + raw[bad_at + 1 :]
    p = tmp_path / "bad.har"
    p.write_bytes(bad)
    ex, _, errs = _split(_read(p))
    assert len(ex) == 30
    assert len(errs) == 1 and errs[0].fatal
    assert errs[0].offset == bad_at
    assert "after 30 entries" in errs[0].message


def test_invalid_utf8_is_fatal(tmp_path: Path) -> None:
    raw = json.dumps(_har([_entry(), _entry("https://x.example.com/ZZ")])).encode()
    p = tmp_path / "latin1.har"
    p.write_bytes(raw.replace(b"ZZ", b"\xff\xfe"))
    ex, _, errs = _split(_read(p))
    assert len(ex) == 1 and len(errs) == 1 and errs[0].fatal and errs[0].offset is not None


def test_lone_surrogates_fall_back_to_python_backend(tmp_path: Path) -> None:
    e = _entry("https://s.example.com/")
    e["request"]["postData"] = {"text": "a\udcff\udc80b \ud800 c"}
    doc = _har([_entry(), e, _entry("https://t.example.com/")])
    p = tmp_path / "sur.har"
    p.write_text(json.dumps(doc), encoding="ascii")
    ex, conns, errs = _split(_read(p))
    assert errs == []
    assert [x.host for x in ex] == ["www.example.com", "s.example.com", "t.example.com"]  # no duplicates
    assert ex[1].request_body.startswith(b"a")
    assert len(conns) == 3


# ---------------------------------------------------------------------------------------------
# Sniffing


def test_looks_like_har() -> None:
    for name in ("chrome.har", "firefox.har", "mitmproxy_savehar.har", "httptoolkit.har", "pcapdroid.har"):
        assert looks_like_har((DATA / name).read_bytes()[:65536]), name
    assert looks_like_har(b'\xef\xbb\xbf \n {"log": {"entries": [')
    assert looks_like_har(b'{"comment": "x", "log": {')
    assert not looks_like_har(b'{"logs": {}}')
    assert not looks_like_har(b"[]")
    assert not looks_like_har(b"")
    assert not looks_like_har(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00")  # pcap
    assert not looks_like_har(b'{"a": ' + b"x" * 100)
    # A long value before "log" that is cut off: not enough to tell.
    assert not looks_like_har(b'{"pad": "' + b"y" * 70000)


# ---------------------------------------------------------------------------------------------
# Never raises

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_json = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_field_values = _json | st.sampled_from(
    [
        "https://a.example.com/x?y=1",
        "http://[::1]:81/",
        "[2001:db8::1]",
        "AAEC",
        "base64",
        "2024-01-01T00:00:00Z",
    ]
)
_entryish = st.fixed_dictionaries(
    {},
    optional={
        "startedDateTime": _field_values,
        "time": _field_values,
        "serverIPAddress": _field_values,
        "connection": _field_values,
        "pageref": _field_values,
        "_webSocketMessages": st.lists(
            st.fixed_dictionaries(
                {}, optional={"type": _field_values, "data": _field_values, "time": _field_values}
            )
        ),
        "request": st.fixed_dictionaries(
            {},
            optional={
                "url": _field_values,
                "method": _field_values,
                "httpVersion": _field_values,
                "headers": _json,
                "cookies": _json,
                "bodySize": _field_values,
                "headersSize": _field_values,
                "postData": st.fixed_dictionaries(
                    {}, optional={"text": _field_values, "encoding": _field_values, "params": _json}
                )
                | _json,
                "_content": _json,
            },
        )
        | _json,
        "response": st.fixed_dictionaries(
            {}, optional={"status": _field_values, "bodySize": _field_values, "content": _json}
        )
        | _json,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_never_raises_on_bytes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "fuzz.har"
    p.write_bytes(data)
    records = _read(p)
    assert all(isinstance(r, Exchange | Connection | InputError) for r in records)
    looks_like_har(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json | st.lists(_entryish, max_size=5).map(_har) | _json.map(lambda j: {"log": j}))
def test_never_raises_on_jsonish(tmp_path: Path, doc: Any) -> None:
    p = tmp_path / "fuzz.har"
    p.write_text(json.dumps(doc), encoding="utf-8")
    records = _read(p)
    assert all(isinstance(r, Exchange | Connection | InputError) for r in records)
    assert sum(1 for r in records if isinstance(r, InputError) and r.fatal) <= 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(_entryish, min_size=1, max_size=4), cut=st.integers(min_value=0, max_value=10_000))
def test_never_raises_on_truncated(tmp_path: Path, entries: list[Any], cut: int) -> None:
    raw = json.dumps(_har(entries)).encode()
    p = tmp_path / "fuzz.har"
    p.write_bytes(raw[: cut % (len(raw) + 1)])
    records = _read(p)
    assert all(isinstance(r, Exchange | Connection | InputError) for r in records)


def test_every_exchange_s_host_has_a_destination_in_every_har_of_the_test_data(tmp_path: Path) -> None:
    import datareach

    hars = sorted([*DATA.glob("*.har"), *DATA.glob("*.zhar")])
    assert len(hars) >= 10  # (the real HARs of SOURCES.md among them)
    for path in hars:
        doc = datareach.audit([path], detect=False).to_dict()
        assert doc["exchanges"], path.name
        assert [e for i in doc["inputs"] for e in i["errors"] if e["fatal"]] == [], path.name
        destinations = {(d["app"], d["host"]) for d in doc["destinations"]}
        missing = [(e["app"], e["host"]) for e in doc["exchanges"] if (e["app"], e["host"]) not in destinations]
        assert missing == [], path.name
        # the ids agree too: an exchange's connection is one of a destination of its host
        assert {e["host"] for e in doc["exchanges"]} == {d["host"] for d in doc["destinations"]}, path.name


def test_real_chrome_har_coalesced_hosts_and_json_params() -> None:
    """chrome-har (sitespeed.io) output, trimmed (tests/data/har/SOURCES.md): Chrome put
    scache.vzw.com, scache1 and scache2 on one connection (id 143, one IP), and two
    doubleclick.net hosts on another; JSON request bodies are stored parsed, as params whose
    values are objects, booleans and numbers."""
    path = DATA / "chrome-har_coalesced_json_params.har"
    ex, conns, errs = _split(_read(path))
    assert errs == []
    hosts = {e.host for e in ex}
    assert {"scache.vzw.com", "scache1.vzw.com", "scache2.vzw.com", "fls.doubleclick.net",
            "685973.fls.doubleclick.net"} <= hosts
    assert {c.http_host for c in conns} == hosts  # one connection record per (connection id, host)
    by_uid = {c.uid: c for c in conns}
    assert all(by_uid[e.uid].http_host == e.host for e in ex)
    ascend = [e for e in ex if e.host == "api.ascend.ai"]
    assert len(ascend) == 3
    body = json.loads(ascend[0].request_body)
    assert body["type"] == "Ascend/FETCH_CANDIDATE_REQUESTED"
    assert body["current"]["sid"] is False and body["current"]["vcount"] == 0
    assert body["current"]["did"] == "1861038207_1518005262"


@pytest.mark.parametrize(("mime", "params", "body"), [
    # chrome-har's JSON bodies: the document back together
    ("application/json", [{"name": "a", "value": {"b": [1, 2.5, None, True]}}, {"name": "c", "value": "d"}],
     b'{"a":{"b":[1,2.5,null,true]},"c":"d"}'),
    ("application/json;charset=UTF-8", [{"name": "0", "value": {"x": 1}}, {"name": "1", "value": False}],
     b'[{"x":1},false]'),
    # a form, or duplicate names: form-encoded, values that are not strings as compact JSON
    ("application/x-www-form-urlencoded", [{"name": "a", "value": {"k": "v w"}}, {"name": "n", "value": 7},
                                           {"name": "z", "value": None}, {"name": "s", "value": "x&y"}],
     b"a=%7B%22k%22%3A%22v+w%22%7D&n=7&z=&s=x%26y"),
    ("application/json", [{"name": "a", "value": 1}, {"name": "a", "value": 2}], b"a=1&a=2"),
    ("application/json", [{"name": "a", "value": "only strings"}], b"a=only+strings"),
    ("text/plain", [{"name": "e", "value": ["\u00e9", 1e300]}], b"e=%5B%22%C3%A9%22%2C1e%2B300%5D"),
])
def test_params_whose_values_are_not_strings_are_kept(tmp_path: Path, mime: str, params: list[Any],
                                                      body: bytes) -> None:
    entry = _entry("https://api.example.com/t", request={**_entry()["request"], "method": "POST",
                                                          "postData": {"mimeType": mime, "params": params}})
    ex, _conns, errs = _split(_read(_write(tmp_path, _har([entry]))))
    assert errs == []
    assert ex[0].request_body == body


def test_bad_params_are_reported_and_the_good_ones_kept(tmp_path: Path) -> None:
    post = {"mimeType": "application/json", "params": [{"name": 1, "value": "x"}, "nope", {"name": "ok", "value": [1]}]}
    entry = _entry(request={**_entry()["request"], "method": "POST", "postData": post})
    ex, _conns, errs = _split(_read(_write(tmp_path, _har([entry]))))
    assert ex[0].request_body == b'{"ok":[1]}'
    assert [(e.json_path, e.message) for e in errs] == [
        ("$.log.entries[0].request.postData.params[0]", "name is not a string"),
        ("$.log.entries[0].request.postData.params[1]", "not a name/value object"),
    ]
    assert not any(e.fatal for e in errs)


def test_an_email_inside_an_object_valued_param_is_found(tmp_path: Path) -> None:
    import datareach

    planted = "planted.person@example.org"
    post = {"mimeType": "application/json", "params": [
        {"name": "event", "value": "signup"},
        {"name": "user", "value": {"profile": {"contact": [planted], "age": 41}, "optIn": True}}]}
    entry = _entry("https://collect.tracker.example/v1/e", request={
        **_entry()["request"], "method": "POST", "url": "https://collect.tracker.example/v1/e",
        "headers": [{"name": "Content-Type", "value": "application/json"}], "postData": post})
    path = _write(tmp_path, _har([entry], creator={"name": "chrome-har", "version": "0.13.2"}))
    doc = datareach.audit([path]).to_dict()
    emails = [f for f in doc["findings"] if f["data_type"] == "email"]
    assert emails and {f["host"] for f in emails} == {"collect.tracker.example"}
    assert doc["inputs"][0]["errors"] == []


def test_hosts_coalesced_onto_one_connection_are_each_a_destination(tmp_path: Path) -> None:
    import datareach

    def entry(url: str) -> dict[str, object]:
        return {"startedDateTime": "2026-03-01T10:00:00.000Z", "time": 10, "connection": "4711",
                "serverIPAddress": "157.240.20.35",
                "request": {"method": "GET", "url": url, "httpVersion": "h2", "headers": [], "queryString": [],
                            "cookies": [], "headersSize": -1, "bodySize": 0},
                "response": {"status": 200, "statusText": "", "httpVersion": "h2", "headers": [], "cookies": [],
                             "content": {"size": 10, "mimeType": "text/plain"}, "redirectURL": "",
                             "headersSize": -1, "bodySize": 10},
                "cache": {}, "timings": {"send": 0, "wait": 10, "receive": 0}}

    path = tmp_path / "coalesced.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "Chrome", "version": "131"}, "entries": [
        entry("https://www.facebook.com/a"), entry("https://static.xx.fbcdn.net/b"),
        entry("https://www.facebook.com/c")]}}))
    doc = datareach.audit([path], detect=False).to_dict()
    assert sorted(d["host"] for d in doc["destinations"]) == ["static.xx.fbcdn.net", "www.facebook.com"]
    assert {d["host"]: d["connections"] for d in doc["destinations"]} == {"www.facebook.com": 1,
                                                                          "static.xx.fbcdn.net": 1}


# ---------------------------------------------------------------------------------------------
# Compressed HAR files: mitmproxy's .zhar (zlib), and gzip, bzip2, xz, zstd


def test_zhar_written_by_real_mitmproxy(tmp_path: Path) -> None:
    """savehar-11.0.2.zhar: a real mitmdump's ``hardump`` to a .zhar path (make_fixtures.py)."""
    import datareach
    from datareach.sources import detect_format

    path = DATA / "savehar-11.0.2.zhar"
    # found by the content, whatever the name
    renamed = tmp_path / "capture.json"
    renamed.write_bytes(path.read_bytes())
    assert detect_format(path) == detect_format(renamed) == "har+zlib"
    profile = Path(__file__).parents[1] / "examples" / "profile.toml"
    doc = datareach.audit([renamed], profile=profile).to_dict()
    assert doc["inputs"][0]["format"] == "har+zlib" and doc["inputs"][0]["errors"] == []
    assert [e["host"] for e in doc["exchanges"]] == ["graph.facebook.com", "t.appsflyer.com",
                                                     "api16-normal-c-useast1a.tiktokv.com", "collector.example.net"]
    found = {(f["host"], f["data_type"]) for f in doc["findings"]}
    assert ("collector.example.net", "email") in found and ("graph.facebook.com", "advertising_id") in found
    # mitmproxy's own test file reads as well
    assert detect_format(DATA / "mitmproxy_flows_compressed.zhar") == "har+zlib"


@pytest.mark.parametrize("kind", ["zlib", "gzip", "bzip2", "xz", "zstd"])
def test_compressed_har_reads_like_the_har(tmp_path: Path, kind: str) -> None:
    import bz2
    import gzip
    import lzma
    import zlib

    import zstandard

    from datareach.sources import detect_format, read_input

    plain = (DATA / "chrome.har").read_bytes()
    packed = {"zlib": lambda b: zlib.compress(b, 9), "gzip": gzip.compress, "bzip2": bz2.compress,
              "xz": lzma.compress, "zstd": lambda b: zstandard.ZstdCompressor().compress(b)}[kind](plain)
    path = tmp_path / "x.bin"
    path.write_bytes(packed)
    assert detect_format(path) == f"har+{kind}"
    assert list(read_input(path, 0)) == _read(DATA / "chrome.har")


def test_truncated_zhar_keeps_the_entries_before(tmp_path: Path) -> None:
    import zlib

    from datareach.sources import read_input

    doc = _har([_entry(request={**_entry(f"https://h{i}.example.com/")["request"], "postData": {
        "mimeType": "text/plain", "text": base64.b64encode(bytes(range(256)) * (40 + i)).decode()}})
        for i in range(40)])
    packed = zlib.compress(json.dumps(doc).encode(), 9)
    path = tmp_path / "cut.zhar"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    ex, conns, errs = _split(list(read_input(path, 0)))
    assert 5 < len(ex) < 40 and len(conns) == len(ex)
    [error] = errs
    assert error.fatal and error.message.startswith(
        f"the zlib data is corrupt or ends early (EOFError: the zlib stream ends early): reading stopped after "
        f"{len(ex)} entries (")
    assert error.offset is not None and error.offset > 0


@pytest.mark.parametrize("data", [b"\x78\xda" + bytes(range(200)), b"\x78\x9c\x00\x00", b"x\xdaxyz",
                                  __import__("zlib").compress(b'{"not": "a har"}')])
def test_zlib_looking_files_that_are_not_har_are_unrecognised(tmp_path: Path, data: bytes) -> None:
    from datareach.sources import detect_format, read_input

    path = tmp_path / "x.zhar"
    path.write_bytes(data)
    assert detect_format(path) is None
    [error] = list(read_input(path, 0))
    assert isinstance(error, InputError) and error.fatal and error.message.startswith("unrecognised input format")
