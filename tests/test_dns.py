"""DNS responses built with dnspython's encoder (real wire format, with name compression)."""

from __future__ import annotations

import dns.message
import dns.rrset
from hypothesis import given
from hypothesis import strategies as st

from datareach.dissect.dns import parse_response


def make_response(qname: str, rdtype: str, answers: list[tuple[str, str, str]]) -> bytes:
    query = dns.message.make_query(qname, rdtype)
    resp = dns.message.make_response(query)
    for owner, atype, value in answers:
        resp.answer.append(dns.rrset.from_text(owner, 300, "IN", atype, value))
    return resp.to_wire()


def test_a_record() -> None:
    r = parse_response(make_response("api.example.com.", "A", [("api.example.com.", "A", "93.184.216.34")]))
    assert r is not None
    assert r.chains() == [("api.example.com", "A", "93.184.216.34", 300, ("api.example.com",))]


def test_cname_chain_to_cdn() -> None:
    wire = make_response(
        "app-measurement.com.", "AAAA",
        [
            ("app-measurement.com.", "CNAME", "star.c10r.facebook.com."),
            ("star.c10r.facebook.com.", "CNAME", "edge.cdn.example.net."),
            ("edge.cdn.example.net.", "AAAA", "2a03:2880:f003:c07:face:b00c::2"),
        ],
    )
    r = parse_response(wire)
    assert r is not None
    [(asked, rtype, addr, _ttl, chain)] = r.chains()
    assert asked == "app-measurement.com"
    assert rtype == "AAAA"
    assert addr == "2a03:2880:f003:c07:face:b00c:0:2"  # RFC 5952 canonical text
    assert chain == ("app-measurement.com", "star.c10r.facebook.com", "edge.cdn.example.net")


def test_queries_are_not_responses() -> None:
    assert parse_response(dns.message.make_query("example.com.", "A").to_wire()) is None


def test_compression_loop_is_rejected() -> None:
    wire = bytearray(make_response("a.example.", "A", [("a.example.", "A", "1.2.3.4")]))
    # point the question name at itself
    wire[12:14] = b"\xc0\x0c"
    assert parse_response(bytes(wire)) is None


@given(st.binary(max_size=600))
def test_never_raises(data: bytes) -> None:
    r = parse_response(data)
    if r is not None:
        r.chains()


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=0, max_value=200))
def test_mutated_real_message_never_raises(noise: bytes, at: int) -> None:
    wire = bytearray(make_response("x.example.org.", "A", [("x.example.org.", "CNAME", "y.example.net."),
                                                            ("y.example.net.", "A", "10.0.0.1")]))
    at %= len(wire)
    wire[at : at + len(noise)] = noise
    r = parse_response(bytes(wire))
    if r is not None:
        r.chains()



def test_an_answer_between_two_resolvers_is_read_as_an_answer() -> None:
    # a forwarding resolver asks another from port 53 to port 53: the QR bit says which is the answer
    import dns.message
    import dns.rrset

    from datareach.dissect.packets import PacketDecoder
    from datareach.schema import DnsAnswer
    from datareach.testing.capture import LINKTYPE_RAW, udp_packet

    q = dns.message.make_query("resolver-to-resolver.example", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("resolver-to-resolver.example.", 300, "IN", "A", "192.0.2.44"))
    dec = PacketDecoder(0)
    dec.packet(1.0, udp_packet("10.0.0.53", "198.51.100.53", 53, 53, q.to_wire()), LINKTYPE_RAW)
    dec.packet(1.1, udp_packet("198.51.100.53", "10.0.0.53", 53, 53, r.to_wire()), LINKTYPE_RAW)
    dec.finish()
    answers = [a for a in dec.records if isinstance(a, DnsAnswer)]
    assert [(a.qname, a.address) for a in answers] == [("resolver-to-resolver.example", "192.0.2.44")]
