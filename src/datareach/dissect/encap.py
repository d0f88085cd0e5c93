"""Link layers and tunnels: from a frame (or a tunnel's payload) to the IP header inside (sans-IO).

:func:`to_ip` walks the layers a frame is wrapped in -- Ethernet with VLAN tags (802.1Q, QinQ),
MPLS label stacks, PPPoE, PBB (802.1ah), VN-Tag, 802.2 LLC/SNAP, PPP (with or without HDLC
framing), Cisco HDLC, NFLOG, IEEE 802.11 data frames (bare, behind radiotap, PPI, Prism or AVS
headers) -- to the IPv4 or IPv6 header inside, in any order, a bounded number of layers deep.
:func:`ip_tunnel` and :func:`udp_tunnel` do the same for what an IP packet carries: GRE (with
ERSPAN I/II/III, transparent Ethernet bridging, PPTP's PPP, WCCP and Aruba's 802.11), IP in IP
(4in4, 6in4, 4in6, 6in6), EtherIP, MPLS in IP, and over UDP: VXLAN, VXLAN-GPE, Geneve, GTP-U,
Teredo, AYIYA, L2TPv2 and GRE-in-UDP.

Every function returns either ``(4 or 6, offset of the IP header)`` or an :class:`Outcome`
that says why there is no IP packet: traffic that is understood and carries no IP (ARP, LLDP,
802.11 management frames: ``ip=False``), or a layer that could not be read (an unsupported
encapsulation, an encrypted 802.11 frame, a header cut short: ``ip=None``, counted as not
decoded). Nothing here raises on hostile input but ``IndexError`` (a header cut short), which
the caller counts as a truncated frame.
"""

from __future__ import annotations

from typing import Final

# -- link types (https://www.tcpdump.org/linktypes.html) -------------------------------------
LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_PPP: Final = 9
LINKTYPE_FDDI: Final = 10
LINKTYPE_RAW_OLD: Final = 12  # (LINKTYPE_RAW on some BSDs)
LINKTYPE_RAW_OLD2: Final = 14
LINKTYPE_PPP_HDLC: Final = 50
LINKTYPE_PPP_ETHER: Final = 51
LINKTYPE_RAW: Final = 101
LINKTYPE_C_HDLC: Final = 104
LINKTYPE_FRELAY: Final = 107
LINKTYPE_IEEE802_11: Final = 105
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_PRISM: Final = 119
LINKTYPE_ARCNET_LINUX: Final = 129
LINKTYPE_RADIOTAP: Final = 127
LINKTYPE_AVS: Final = 163
LINKTYPE_PPI: Final = 192
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPNET: Final = 226
LINKTYPE_IPV6: Final = 229
LINKTYPE_NFLOG: Final = 239
LINKTYPE_IPOIB: Final = 242
LINKTYPE_LINUX_SLL2: Final = 276

#: The link types a frame can be read from.
SUPPORTED_LINKTYPES: Final = frozenset({
    LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_PPP, LINKTYPE_FDDI, LINKTYPE_RAW_OLD, LINKTYPE_RAW_OLD2, LINKTYPE_PPP_HDLC,
    LINKTYPE_PPP_ETHER, LINKTYPE_RAW, LINKTYPE_C_HDLC, LINKTYPE_IEEE802_11, LINKTYPE_LOOP, LINKTYPE_LINUX_SLL,
    LINKTYPE_PRISM, LINKTYPE_RADIOTAP, LINKTYPE_AVS, LINKTYPE_PPI, LINKTYPE_IPV4, LINKTYPE_IPV6,
    LINKTYPE_NFLOG, LINKTYPE_LINUX_SLL2, LINKTYPE_FRELAY, LINKTYPE_ARCNET_LINUX, LINKTYPE_IPNET, LINKTYPE_IPOIB,
})

#: Layers walked in one frame at most (VLAN tags, labels, link headers): past it the frame is
#: counted as nested too deep.
MAX_LAYERS: Final = 32
#: MPLS labels in one stack at most.
MAX_LABELS: Final = 16

ETH_IPV4: Final = 0x0800
ETH_IPV6: Final = 0x86DD
VLAN_TYPES: Final = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})

#: Ethertypes of traffic that is understood and carries no IP.
NON_IP_ETHERTYPES: Final = {
    0x0806: "ARP", 0x8035: "RARP", 0x88CC: "LLDP", 0x888E: "EAPOL (802.1X)", 0x8137: "IPX", 0x8138: "IPX",
    0x9000: "Ethernet loopback", 0x88F7: "PTP", 0x8808: "Ethernet flow control", 0x8809: "slow protocols (LACP)",
    0x8863: "PPPoE discovery", 0x88E1: "HomePlug", 0x8912: "HomePlug", 0x893A: "IEEE 1905.1", 0x8899: "Realtek",
    0x88B5: "local experimental ethertype", 0x88B6: "local experimental ethertype", 0x8902: "CFM (802.1ag)",
    0x6002: "DEC MOP", 0x6003: "DECnet", 0x6004: "DEC LAT", 0x809B: "AppleTalk",
    0x80F3: "AARP", 0x8906: "FCoE", 0x8914: "FCoE initialization", 0x22F0: "AVTP", 0x88BA: "IEC 61850 SV",
    0x88B8: "IEC 61850 GOOSE", 0x8892: "PROFINET", 0x88A4: "EtherCAT", 0x8942: "Nintendo",
    0x88E3: "MRP", 0x22EA: "SRP", 0x2001: "NHRP", 0x88BB: "HSR", 0x88F5: "MVRP", 0x88F6: "MMRP",
}
ENCRYPTED_ETHERTYPES: Final = {0x88E5: "MACsec (802.1AE)"}


class Outcome:
    """Why a frame (or a tunnel's payload) gave no IP packet."""

    __slots__ = ("ip", "reason")

    def __init__(self, reason: str, ip: bool | None = None) -> None:
        #: what the accounting shows
        self.reason = reason
        #: False: understood, and not IP traffic; None: not decoded
        self.ip = ip

    def __repr__(self) -> str:
        return f"Outcome({self.reason!r}, ip={self.ip})"


Result = tuple[int, int] | Outcome

_CUT: Final = Outcome("header cut short (truncated by the snapshot length or malformed)")
_DEEP: Final = Outcome(f"more than {MAX_LAYERS} encapsulation layers")


def _u16(d: bytes, p: int) -> int:
    return (d[p] << 8) | d[p + 1]


def _le16(d: bytes, p: int) -> int:
    return d[p] | (d[p + 1] << 8)


def _ip_version(data: bytes, pos: int, what: str) -> Result:
    if pos >= len(data):
        return _CUT
    v = data[pos] >> 4
    if v == 4 or v == 6:
        return v, pos
    return Outcome(f"{what}: not an IPv4 or IPv6 packet (version {v})")


# -- link layers -------------------------------------------------------------------------------

def to_ip(data: bytes, linktype: int) -> Result:
    """The IP packet inside a frame of ``linktype``."""
    try:
        if linktype == LINKTYPE_ETHERNET:
            return ethernet(data, 0, 0)
        if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_RAW_OLD, LINKTYPE_RAW_OLD2):
            return _ip_version(data, 0, "raw IP")
        if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            fam = int.from_bytes(data[0:4], "little")
            if fam > 0xFFFF:
                fam = int.from_bytes(data[0:4], "big")
            if fam in (2, 24, 28, 30):
                return _ip_version(data, 4, "BSD loopback")
            return Outcome(f"BSD loopback address family {fam}", False)
        if linktype == LINKTYPE_LINUX_SLL:
            return ethertype(data, 16, _u16(data, 14), 1)
        if linktype == LINKTYPE_LINUX_SLL2:
            return ethertype(data, 20, _u16(data, 0), 1)
        if linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
            return ppp(data, 0, 1)
        if linktype == LINKTYPE_PPP_ETHER:
            return pppoe(data, 0, 1)
        if linktype == LINKTYPE_C_HDLC:
            return ethertype(data, 4, _u16(data, 2), 1)
        if linktype == LINKTYPE_IEEE802_11:
            return ieee80211(data, 0, 1)
        if linktype == LINKTYPE_RADIOTAP:
            return ieee80211(data, _le16(data, 2), 1)
        if linktype == LINKTYPE_PPI:
            hlen, dlt = _le16(data, 2), int.from_bytes(data[4:8], "little")
            if dlt == LINKTYPE_IEEE802_11:
                return ieee80211(data, hlen, 1)
            if dlt == LINKTYPE_ETHERNET:
                return ethernet(data, hlen, 1)
            return Outcome(f"PPI header with link type {dlt}")
        if linktype == LINKTYPE_PRISM:
            return ieee80211(data, int.from_bytes(data[4:8], "little"), 1)
        if linktype == LINKTYPE_AVS:
            return ieee80211(data, int.from_bytes(data[4:8], "big"), 1)
        if linktype == LINKTYPE_NFLOG:
            return nflog(data)
        if linktype == LINKTYPE_FDDI:  # frame control, two addresses, then 802.2 LLC
            return llc(data, 13, 1)
        if linktype == LINKTYPE_FRELAY:
            return frame_relay(data)
        if linktype == LINKTYPE_IPNET:  # Solaris ipnet: a 24-byte header
            return _ip_version(data, 24, "ipnet")
        if linktype == LINKTYPE_IPOIB:  # IP over InfiniBand: a 40-byte header, the ethertype, 2 reserved bytes
            return ethertype(data, 44, _u16(data, 40), 1)
        if linktype == LINKTYPE_ARCNET_LINUX:
            return arcnet(data)
        return Outcome(f"unsupported link type {linktype}")
    except IndexError:
        return _CUT


def ethernet(data: bytes, pos: int, depth: int) -> Result:
    """An Ethernet II (or 802.3) header at ``pos``."""
    return ethertype(data, pos + 14, _u16(data, pos + 12), depth + 1)


def ethertype(data: bytes, pos: int, et: int, depth: int) -> Result:
    """What an ethertype ``et`` says follows at ``pos`` (also 802.3 lengths, then LLC)."""
    while True:
        if depth > MAX_LAYERS:
            return _DEEP
        depth += 1
        if et in (ETH_IPV4, ETH_IPV6):
            return _ip_version(data, pos, "ethertype IP")
        if et in VLAN_TYPES:
            et = _u16(data, pos + 2)
            pos += 4
        elif et == 0x8847 or et == 0x8848:
            return mpls(data, pos, depth)
        elif et == 0x8864:
            return pppoe(data, pos, depth)
        elif et == 0x88E7:  # PBB: the I-TAG, then the customer's Ethernet header
            et = _u16(data, pos + 16)
            pos += 18
        elif et == 0x8926:  # VN-Tag
            et = _u16(data, pos + 4)
            pos += 6
        elif et == 0x893F or et == 0x8909:  # 802.1BR E-Tag
            et = _u16(data, pos + 6)
            pos += 8
        elif et == 0x6558:  # transparent Ethernet bridging
            return ethernet(data, pos, depth)
        elif et == 0x894F:  # Network Service Header (RFC 8300): its length, then the next protocol
            nxt = data[pos + 3]
            inner = pos + ((data[pos + 1] & 0x3F) << 2)
            if nxt in (1, 2):
                return _ip_version(data, inner, "NSH")
            if nxt == 3:
                return ethernet(data, inner, depth)
            return Outcome(f"NSH next protocol {nxt}")
        elif et == 0xD28B:  # Arista's timestamp header: subtype, version, a 64- or 48-bit time
            version = _u16(data, pos + 2)
            skip = 8 if version in (0x0010, 0x0110) else 6 if version in (0x0020, 0x0120) else -1  # (TAI, UTC)
            if _u16(data, pos) != 1 or skip < 0:
                return Outcome(f"Arista header subtype {_u16(data, pos):#06x} version {version:#06x}")
            et = _u16(data, pos + 4 + skip)
            pos += 6 + skip
        elif et < 0x0600:  # an 802.3 length: 802.2 LLC follows
            return llc(data, pos, depth)
        elif et in ENCRYPTED_ETHERTYPES:
            return Outcome(f"encrypted: {ENCRYPTED_ETHERTYPES[et]}")
        else:
            name = NON_IP_ETHERTYPES.get(et)
            if name is None:  # (not known: not interpreted, rather than taken for traffic without IP)
                return Outcome(f"unknown ethertype {et:#06x}")
            return Outcome(name, False)


def llc(data: bytes, pos: int, depth: int) -> Result:
    """802.2 LLC at ``pos``: SNAP carries an ethertype; other SAPs (STP, NetBIOS...) carry no IP."""
    dsap, ssap = data[pos], data[pos + 1]
    if dsap == 0xAA and ssap == 0xAA:
        oui = data[pos + 3 : pos + 6]
        et = _u16(data, pos + 6)
        if oui in (b"\x00\x00\x00", b"\x00\x00\xf8"):
            return ethertype(data, pos + 8, et, depth + 1)
        if oui == b"\x00\x00\x0c":
            return Outcome(f"Cisco SNAP protocol {et:#06x} (CDP, VTP, DTP...)", False)
        return Outcome(f"SNAP OUI {oui.hex()} protocol {et:#06x}", False)
    if dsap == 0x06 and ssap == 0x06:
        return _ip_version(data, pos + 3, "LLC IP")
    names = {0x42: "STP", 0xF0: "NetBIOS", 0xE0: "IPX", 0xFE: "OSI", 0x04: "SNA", 0xAA: "SNAP"}
    return Outcome(f"802.2 LLC ({names.get(dsap, f'SAP {dsap:#04x}')})", False)


def mpls(data: bytes, pos: int, depth: int) -> Result:
    """An MPLS label stack: IPv4 or IPv6 after the bottom label, else a pseudowire's Ethernet."""
    for _ in range(MAX_LABELS):
        bottom = data[pos + 2] & 1
        pos += 4
        if bottom:
            break
    else:
        return Outcome(f"MPLS label stack deeper than {MAX_LABELS}")
    first = data[pos] >> 4
    if first == 4 or first == 6:
        return first, pos
    if first == 0:  # pseudowire control word, then Ethernet
        return ethernet(data, pos + 4, depth + 1)
    return ethernet(data, pos, depth + 1)  # Ethernet pseudowire without a control word


def pppoe(data: bytes, pos: int, depth: int) -> Result:
    """A PPPoE session header at ``pos``, then PPP's protocol field."""
    if data[pos] != 0x11:
        return Outcome(f"PPPoE version/type {data[pos]:#04x}")
    return ppp_protocol(data, pos + 8, _u16(data, pos + 6), depth + 1)


def ppp(data: bytes, pos: int, depth: int) -> Result:
    """A PPP frame at ``pos``, with or without the HDLC address and control bytes, with a one-
    or two-byte protocol field."""
    if data[pos] == 0xFF and data[pos + 1] == 0x03:
        pos += 2
    if data[pos] & 1:  # protocol field compression: one byte
        return ppp_protocol(data, pos + 1, data[pos], depth + 1)
    return ppp_protocol(data, pos + 2, _u16(data, pos), depth + 1)


PPP_NAMES: Final = {0xC021: "PPP LCP", 0x8021: "PPP IPCP", 0x8057: "PPP IPv6CP", 0xC023: "PPP PAP",
                    0xC223: "PPP CHAP", 0x80FD: "PPP CCP", 0xC025: "PPP LQR", 0x8281: "PPP MPLSCP",
                    0xC227: "PPP EAP", 0x8207: "PPP CDPCP"}


def ppp_protocol(data: bytes, pos: int, proto: int, depth: int) -> Result:
    if proto == 0x0021:
        return _ip_version(data, pos, "PPP IPv4")
    if proto == 0x0057:
        return _ip_version(data, pos, "PPP IPv6")
    if proto in (0x0281, 0x0283):
        return mpls(data, pos, depth)
    if proto in PPP_NAMES:
        return Outcome(PPP_NAMES[proto], False)
    if proto in (0x00FD, 0x00FB):
        return Outcome("PPP compressed datagram")
    if proto == 0x002D or proto == 0x002F:
        return Outcome("PPP Van Jacobson compressed TCP/IP")
    return Outcome(f"PPP protocol {proto:#06x}")


def ieee80211(data: bytes, pos: int, depth: int) -> Result:
    """An IEEE 802.11 frame at ``pos``: data frames carry LLC/SNAP; protected ones are counted
    as encrypted; management and control frames carry no IP."""
    fc0, fc1 = data[pos], data[pos + 1]
    ftype = (fc0 >> 2) & 3
    subtype = fc0 >> 4
    if ftype != 2:
        return Outcome("802.11 management or control frame" if ftype < 2 else "802.11 extension frame", False)
    if subtype & 0x4:
        return Outcome("802.11 data frame without data (null function)", False)
    if fc1 & 0x40:
        return Outcome("encrypted 802.11 frame (WEP/WPA)")
    hlen = 30 if fc1 & 0x03 == 0x03 else 24
    if subtype & 0x8:  # QoS data
        if data[pos + hlen] & 0x80:
            return Outcome("802.11 A-MSDU")
        hlen += 2
        if fc1 & 0x80:  # +HTC
            hlen += 4
    return llc(data, pos + hlen, depth + 1)


def frame_relay(data: bytes) -> Result:
    """Frame Relay (Q.922 address, then RFC 2427's control byte and NLPID)."""
    pos = 0
    while not data[pos] & 1:  # the address's extension bits: the last byte has its EA bit set
        pos += 1
        if pos > 4:
            return Outcome("Frame Relay address too long")
    pos += 1
    if data[pos] != 0x03:  # Cisco's Frame Relay encapsulation: an ethertype after the address
        return ethertype(data, pos + 2, _u16(data, pos), 1)
    pos += 1
    if data[pos] == 0x00:  # padding
        pos += 1
    nlpid = data[pos]
    if nlpid == 0xCC:
        return _ip_version(data, pos + 1, "Frame Relay IPv4")
    if nlpid == 0x8E:
        return _ip_version(data, pos + 1, "Frame Relay IPv6")
    if nlpid == 0x80:  # SNAP: an OUI and an ethertype
        return ethertype(data, pos + 6, _u16(data, pos + 4), 1)
    return Outcome(f"Frame Relay NLPID {nlpid:#04x}", False)


def arcnet(data: bytes) -> Result:
    """ARCNET as Linux captures it: source, destination, offset, then the protocol byte
    (RFC 1201 with its split flag and sequence number, or RFC 1051)."""
    proto = data[4]
    if proto == 0xD4:  # RFC 1201 IP
        return _ip_version(data, 8 if data[5] != 0xFF else 12, "ARCNET IP")
    if proto == 0xF0:  # RFC 1051 IP
        return _ip_version(data, 5, "ARCNET IP")
    if proto in (0xD5, 0xF1):
        return Outcome("ARCNET ARP", False)
    return Outcome(f"ARCNET protocol {proto:#04x}", False)


def nflog(data: bytes) -> Result:
    """Linux NFLOG: a 4-byte header, then TLVs (in the capturing host's byte order, little-endian
    in practice); the payload TLV (type 9) holds the IP packet."""
    fam = data[0]
    pos = 4
    n = len(data)
    for _ in range(64):
        if pos + 4 > n:
            break
        length, ttype = _le16(data, pos), _le16(data, pos + 2)
        if length < 4 or pos + length > n:
            return Outcome("NFLOG TLV with an impossible length")
        if ttype == 9:
            return _ip_version(data, pos + 4, "NFLOG payload")
        pos += (length + 3) & ~3
    return Outcome(f"NFLOG record without a payload (family {fam})", False)


# -- tunnels in IP -----------------------------------------------------------------------------

#: IP protocol numbers that carry a tunnel, and its name.
TUNNEL_PROTOCOLS: Final = {4: "IP-in-IP", 41: "IPv6-in-IP", 47: "GRE", 97: "EtherIP", 137: "MPLS-in-IP"}
#: UDP ports of tunnels (the destination port, or either port for GTP-U and Teredo).
TUNNEL_PORTS: Final = {4789: "VXLAN", 4790: "VXLAN-GPE", 6081: "Geneve", 2152: "GTP-U", 3544: "Teredo",
                       5072: "AYIYA", 1701: "L2TP", 4754: "GRE-in-UDP"}


def ip_tunnel(data: bytes, pos: int, end: int, proto: int) -> Result:
    """What an IP packet of protocol ``proto`` carries from ``pos`` (to ``end``)."""
    try:
        if proto == 4 or proto == 41:
            return _ip_version(data, pos, TUNNEL_PROTOCOLS[proto])
        if proto == 47:
            return gre(data, pos, 1)
        if proto == 97:  # EtherIP: a 2-byte header, then Ethernet
            return ethernet(data, pos + 2, 1)
        if proto == 137:
            return mpls(data, pos, 1)
    except IndexError:
        return _CUT
    return Outcome(f"IP protocol {proto}")


def gre(data: bytes, pos: int, depth: int) -> Result:
    """A GRE header at ``pos`` (version 0, or PPTP's version 1)."""
    flags = _u16(data, pos)
    proto = _u16(data, pos + 2)
    ver = flags & 7
    off = pos + 4
    if ver == 0:
        if flags & 0x4000:
            return Outcome("GRE with source routing")
        if flags & 0x8000:
            off += 4
        if flags & 0x2000:
            off += 4
        if flags & 0x1000:
            off += 4
    elif ver == 1:
        off += 4  # payload length and call id
        if flags & 0x1000:
            off += 4
        if flags & 0x0080:
            off += 4
        if proto != 0x880B:
            return Outcome(f"enhanced GRE protocol {proto:#06x}")
        if off >= len(data):
            return Outcome("PPTP GRE acknowledgement", False)
    else:
        return Outcome(f"GRE version {ver}")
    if proto == 0x88BE:  # ERSPAN: type II has a sequence number and an 8-byte header; type I neither
        return ethernet(data, off + 8 if flags & 0x1000 else off, depth + 1)
    if proto == 0x22EB:  # ERSPAN type III: 12 bytes, and an 8-byte platform subheader with O
        return ethernet(data, off + (20 if data[off + 11] & 1 else 12), depth + 1)
    if proto == 0x880B:
        return ppp(data, off, depth + 1)
    if 0x8200 <= proto <= 0x83FF:  # Aruba: the access point's 802.11 frames
        return ieee80211(data, off, depth + 1)
    if proto == 0x883E:  # WCCP redirect header (4 bytes), then IPv4
        return _ip_version(data, off + 4 if data[off] >> 4 != 4 else off, "WCCP")
    return ethertype(data, off, proto, depth + 1)


def udp_tunnel(data: bytes, pos: int, sport: int, dport: int) -> tuple[str, Result] | None:
    """The tunnel a UDP payload at ``pos`` carries, if its ports and header say it is one:
    (its name, what is inside). None: not a tunnel (read it as plain UDP)."""
    name = TUNNEL_PORTS.get(dport)
    port = dport
    if name is None:
        name = TUNNEL_PORTS.get(sport)
        port = sport
        if name is None or port not in (2152, 3544, 1701, 5072):
            return None
    try:
        res = _udp_tunnel(data, pos, port)
    except IndexError:
        return name, _CUT
    return None if res is None else (name, res)


def _udp_tunnel(data: bytes, pos: int, port: int) -> Result | None:
    n = len(data)
    if port == 4789:  # VXLAN: the I flag, then Ethernet
        if data[pos] & 0x08 == 0 or pos + 8 >= n:
            return None
        return ethernet(data, pos + 8, 1)
    if port == 4790:  # VXLAN-GPE: next protocol 1 IPv4, 2 IPv6, 3 Ethernet, 5 MPLS
        nxt = data[pos + 3]
        if nxt == 3:
            return ethernet(data, pos + 8, 1)
        if nxt in (1, 2):
            return _ip_version(data, pos + 8, "VXLAN-GPE")
        if nxt == 5:
            return mpls(data, pos + 8, 1)
        return None
    if port == 6081:  # Geneve
        if data[pos] >> 6 != 0:
            return None
        off = pos + 8 + ((data[pos] & 0x3F) << 2)
        return ethertype(data, off, _u16(data, pos + 2), 1)
    if port == 2152:  # GTP-U, version 1, T-PDU
        if data[pos] >> 5 != 1 or not data[pos] & 0x10:
            return None
        if data[pos + 1] != 0xFF:
            return Outcome("GTP-U signalling (echo, error indication)", False)
        off = pos + 8
        if data[pos] & 0x07:
            nxt = data[pos + 11]
            off += 4
            for _ in range(16):
                if not nxt:
                    break
                length = data[off] << 2
                if not length:
                    return Outcome("GTP-U extension header of length 0")
                nxt = data[off + length - 1]
                off += length
            else:
                return Outcome("GTP-U extension headers too many")
        if off >= n:
            return Outcome("GTP-U without payload", False)
        return _ip_version(data, off, "GTP-U payload")
    if port == 3544:  # Teredo: optional authentication and origin indications, then IPv6
        off = pos
        if data[off] == 0 and data[off + 1] == 1:
            off += 13 + data[off + 2] + data[off + 3]
        if data[off] == 0 and data[off + 1] == 0:
            off += 8
        if off >= n or data[off] >> 4 != 6:
            return None
        return 6, off
    if port == 5072:  # AYIYA
        idlen, siglen, nxt = data[pos] >> 4, data[pos + 1] >> 4, data[pos + 3]
        if data[pos + 2] & 0x0F != 1:  # opcode: forward
            return Outcome("AYIYA signalling", False)
        off = pos + 8 + (1 << idlen) + (siglen << 2)
        if nxt not in (4, 41):
            return Outcome(f"AYIYA next header {nxt}")
        return _ip_version(data, off, "AYIYA")
    if port == 1701:  # L2TPv2 data messages carry PPP
        flags = _u16(data, pos)
        if flags & 0x000F != 2:
            return None
        if flags & 0x8000:
            return Outcome("L2TP control message", False)
        off = pos + 6 + (2 if flags & 0x4000 else 0) + (4 if flags & 0x0800 else 0)
        if flags & 0x0200:
            off += 2 + _u16(data, off)
        return ppp(data, off, 1)
    if port == 4754:  # GRE in UDP (RFC 8086)
        return gre(data, pos, 1)
    return None
