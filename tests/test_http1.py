"""HTTP/1.x request and response stream parsing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from datareach.dissect.http1 import RequestStream, ResponseStream

PIPELINED = (
    b"GET /a?x=1 HTTP/1.1\r\nHost: t.example\r\n\r\n"
    b"POST /collect HTTP/1.1\r\nHost: t.example\r\nContent-Length: 11\r\n\r\nhello world"
    b"POST /batch HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    b"HEAD /h HTTP/1.1\r\nHost: t.example\r\n\r\n"
)


def test_pipelined_requests_in_one_chunk() -> None:
    reqs = RequestStream().feed(PIPELINED)
    assert [(r.method, r.target, r.body) for r in reqs] == [
        ("GET", "/a?x=1", b""),
        ("POST", "/collect", b"hello world"),
        ("POST", "/batch", b"hello world"),
        ("HEAD", "/h", b""),
    ]
    assert reqs[1].header("host") == "t.example"


@given(st.lists(st.integers(min_value=1, max_value=len(PIPELINED)), max_size=12))
def test_any_segmentation_gives_the_same_requests(cuts: list[int]) -> None:
    stream = RequestStream()
    got = []
    points = sorted(set(cuts))
    prev = 0
    for p in [*points, len(PIPELINED)]:
        got += stream.feed(PIPELINED[prev:p])
        prev = p
    assert [(r.method, r.target, r.body) for r in got] == [
        (r.method, r.target, r.body) for r in RequestStream().feed(PIPELINED)
    ]


def test_body_cap_marks_truncation() -> None:
    s = RequestStream(body_cap=4)
    [r] = s.feed(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789")
    assert r.body == b"0123" and r.body_truncated


def test_incomplete_body_is_flushed_as_truncated() -> None:
    s = RequestStream()
    assert s.feed(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234") == []
    r = s.flush()
    assert r is not None and r.body == b"01234" and r.body_truncated and not r.complete


def test_not_http_breaks_the_stream() -> None:
    s = RequestStream()
    s.feed(b"\x16\x03\x01\x00\x10garbage-garbage-garbage")
    assert s.broken


def test_responses_with_bodies_head_and_interim() -> None:
    s = ResponseStream()
    s.head_methods = [False, False, True, False]
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    got = []
    for i in range(0, len(data), 7):
        got += s.feed(data[i : i + 7])
    assert [(r.status, r.body_size) for r in got] == [(200, 3), (404, 2), (200, 0), (204, 0)]


@given(st.binary(max_size=300))
def test_request_stream_never_raises(data: bytes) -> None:
    s = RequestStream()
    s.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + data)
    s.flush()
    ResponseStream().feed(data)



def test_request_urls_in_every_target_form() -> None:
    from datareach.dissect.http1 import request_url

    # origin form, absolute form in any case of scheme (a proxy's request), authority form (CONNECT)
    assert request_url("http", "bro.org", "/index.html", "GET") == ("http://bro.org/index.html", "bro.org")
    assert request_url("http", "bro.org", "HTTP://bro.org/", "GET") == ("http://bro.org/", "bro.org")
    assert request_url("http", "", "http://Example.COM:8080/a?b", "GET") == ("http://Example.COM:8080/a?b", "example.com")
    assert request_url("http", "secure.newegg.com:443", "secure.newegg.com:443", "CONNECT") == (
        "https://secure.newegg.com:443", "secure.newegg.com")
    assert request_url("https", "[2001:db8::1]:8443", "/x", "GET") == ("https://[2001:db8::1]:8443/x", "[2001:db8::1]")



def test_requests_and_responses_whose_lines_end_with_a_bare_lf() -> None:
    from datareach.dissect.http1 import RequestStream, ResponseStream

    req = RequestStream()
    got = req.feed(b"POST /collect HTTP/1.1\nHost: bare-lf.example\nContent-Length: 5\n\nhello"
                   b"GET /next HTTP/1.1\r\nHost: bare-lf.example\r\n\r\n")
    assert [(r.method, r.target, r.header("host"), r.body) for r in got] == [
        ("POST", "/collect", "bare-lf.example", b"hello"), ("GET", "/next", "bare-lf.example", b"")]
    resp = ResponseStream()
    assert [(r.status, r.body_size) for r in resp.feed(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")] == [(200, 2)]
