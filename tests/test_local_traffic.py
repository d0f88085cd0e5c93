"""Local-network traffic (multicast, broadcast, link-local) is counted apart, not as internet
destinations; mDNS and LLMNR answers name local hosts."""

from __future__ import annotations

from pathlib import Path

import datareach
from datareach.testing.builders import dns_response, write_pcap
from datareach.testing.capture import TcpSession, UdpFlow


def _mdns_announcement() -> bytes:
    """An mDNS response as a printer sends it to the group: no question, one A answer with the
    cache-flush bit in its class."""
    import dns.message
    import dns.rrset

    msg = dns.message.Message(id=0)
    msg.flags = 0x8400
    msg.answer.append(dns.rrset.from_text("printer.local.", 120, "IN", "A", "192.168.1.40"))
    wire = bytearray(msg.to_wire())
    # the answer's class: IN with the cache-flush bit (0x8001), as RFC 6762 senders set it
    i = wire.rindex(b"\x00\x01\x00\x01")
    wire[i + 2 : i + 4] = b"\x80\x01"
    return bytes(wire)


def test_local_traffic_is_apart_and_mdns_names_local_hosts(tmp_path: Path) -> None:
    packets = []
    mdns = UdpFlow("192.168.1.40", 5353, "224.0.0.251", 5353)
    packets.append(mdns.send(_mdns_announcement()))
    ssdp = UdpFlow("192.168.1.23", 50000, "239.255.255.250", 1900, start=1_700_000_001.0)
    packets.append(ssdp.send(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n"))
    nbns = UdpFlow("192.168.1.23", 137, "192.168.1.255", 137, start=1_700_000_002.0)
    packets.append(nbns.send(b"\x80\x01\x01\x10\x00\x01" + b"\x00" * 44))
    dhcp = UdpFlow("0.0.0.0", 68, "255.255.255.255", 67, start=1_700_000_003.0)
    packets.append(dhcp.send(b"\x01\x01\x06\x00" + b"\x00" * 236))
    llmnr = UdpFlow("fe80::1", 5355, "fe80::2", 60000, start=1_700_000_004.0)
    packets.append(llmnr.send(dns_response("nas.", [("nas.", "A", "192.168.1.50")]), from_client=True))
    web = UdpFlow("192.168.1.23", 40000, "8.8.8.8", 53, start=1_700_000_005.0)
    packets += web.exchange(b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
                            dns_response("example.com.", [("example.com.", "A", "93.184.216.34")]))
    metadata = TcpSession("192.168.1.23", 41000, "169.254.169.254", 80, start=1_700_000_006.0)
    packets += metadata.handshake() + metadata.client_send(b"GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
    path = write_pcap(tmp_path / "local.pcap", packets)

    doc = datareach.audit([path], detect=False).to_dict()
    hosts = {d["host"] for d in doc["destinations"]}
    assert not hosts & {"224.0.0.251", "239.255.255.250", "192.168.1.255", "255.255.255.255", "fe80::2"}
    assert "169.254.169.254" in hosts  # (HTTP to a link-local server -- a cloud's metadata service -- stays)
    local = {g["protocol"]: g for g in doc["local"]}
    assert set(local) == {"mdns", "ssdp", "netbios-ns", "dhcp", "llmnr"}
    assert local["mdns"]["addresses"] == ["224.0.0.251"] and local["mdns"]["connections"] == 1
    assert doc["summary"]["local_connections"] == 5
    names = {(a["qname"], a["address"]) for a in doc["dns"]}
    assert {("printer.local", "192.168.1.40"), ("nas", "192.168.1.50"), ("example.com", "93.184.216.34")} <= names
    text = datareach.audit([path], detect=False)
    from datareach.report.table import render_table

    out = render_table(text.to_dict())
    assert "Local network traffic, not counted as destinations" in out and "mdns 1" in out


def test_encrypted_dns_resolvers_are_labelled(tmp_path: Path) -> None:
    from datareach.testing.builders import tls_session

    packets = tls_session("dns.alidns.com", server="223.5.5.5", start=1_700_000_000.0)
    packets += tls_session("dot.example.net", server="198.51.100.53", port=853, start=1_700_000_010.0)
    packets += tls_session("www.example.com", server="93.184.216.34", start=1_700_000_020.0)
    path = write_pcap(tmp_path / "edns.pcap", packets)
    doc = datareach.audit([path], detect=False).to_dict()
    labels = {d["host"]: d["encrypted_dns"] for d in doc["destinations"]}
    assert labels == {"dns.alidns.com": "dns-over-https", "dot.example.net": "dns-over-tls",
                      "www.example.com": None}
