"""Test helpers. Not used by the product at run time; the test suite, the example generator and
the benchmark generator import them.

* :mod:`.capture`: writers for capture files with real protocol bytes (re-exported here);
* :mod:`.builders`: the test suite's messages, sessions and capture files (ClientHellos from
  OpenSSL, DNS from dnspython, QUIC Initials from aioquic);
* :mod:`.records`: an input file read back into records, by kind;
* :mod:`.mmdb`: small ``.mmdb`` files in the vendors' layouts;
* :mod:`.reports`: audit documents full of script payloads, and large ones, for the report tests;
* :mod:`.markdown`: Markdown rendered by two real GFM renderers, and the check that it is inert;
* :mod:`.counting`: call counters, so that tests bound the work done rather than the time taken;
* :mod:`.protobuf`: protobuf wire format without a schema.

Only :mod:`.capture` is imported here: the others need the ``test`` extra (dnspython, aioquic,
mmdb-writer, markdown-it-py, cmarkgfm).
"""

from __future__ import annotations

from datareach.testing.capture import (
    ACK,
    FIN,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    PSH,
    RST,
    SYN,
    PcapngWriter,
    PcapWriter,
    TcpSession,
    UdpFlow,
    ethernet_frame,
    internet_checksum,
    ip_packet,
    ipv4_packet,
    ipv6_packet,
    link_frame,
    loop_frame,
    null_frame,
    openssl_client_hello,
    pcapdroid_frame,
    pcapdroid_trailer,
    sll2_frame,
    sll_frame,
    tcp_packet,
    tcp_segment,
    udp_datagram,
    udp_packet,
)

__all__ = [
    "ACK",
    "FIN",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "PSH",
    "RST",
    "SYN",
    "PcapWriter",
    "PcapngWriter",
    "TcpSession",
    "UdpFlow",
    "ethernet_frame",
    "internet_checksum",
    "ip_packet",
    "ipv4_packet",
    "ipv6_packet",
    "link_frame",
    "loop_frame",
    "null_frame",
    "openssl_client_hello",
    "pcapdroid_frame",
    "pcapdroid_trailer",
    "sll2_frame",
    "sll_frame",
    "tcp_packet",
    "tcp_segment",
    "udp_datagram",
    "udp_packet",
]
