"""DNS message parsing (RFC 1035): questions, A/AAAA answers and CNAME chains.

Only responses matter to datareach: they tell which name an address was looked up under.
The parser is defensive -- compression pointers are bounded, every length is checked -- and
returns ``None`` (never raises) on a malformed message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from socket import AF_INET, AF_INET6, inet_ntop

TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28
MAX_POINTER_JUMPS = 32
MAX_RECORDS = 512


@dataclass(slots=True, frozen=True)
class DnsResponse:
    qname: str | None
    #: (owner name, "A" or "AAAA", address text, ttl)
    addresses: list[tuple[str, str, str, int]]
    #: owner name -> canonical name, in answer order
    cnames: dict[str, str]

    def chains(self) -> list[tuple[str, str, str, int, tuple[str, ...]]]:
        """Each address with the name the client asked for and the CNAME chain that led to it.

        Returns (asked name, rtype, address, ttl, chain); the chain starts at the asked name and
        ends at the name that carried the address.
        """
        out = []
        for owner, rtype, addr, ttl in self.addresses:
            chain: tuple[str, ...] = (owner,)
            asked = owner
            if self.qname is not None:
                # follow the CNAMEs from the question to this address's owner
                path = [self.qname]
                seen = {self.qname}
                cur = self.qname
                while cur != owner and cur in self.cnames:
                    cur = self.cnames[cur]
                    if cur in seen:
                        break
                    seen.add(cur)
                    path.append(cur)
                if cur == owner:
                    chain = tuple(path)
                    asked = self.qname
            out.append((asked, rtype, addr, ttl, chain))
        return out


def _read_name(msg: bytes, pos: int, cache: dict[int, str]) -> tuple[str, int] | None:
    """Read a possibly compressed domain name; returns (name, position after it).

    ``cache`` maps message offsets to the names already read from there, so that the usual
    pointer back to the question name costs one dictionary look-up.
    """
    origin = pos
    labels: list[bytes] = []
    suffix: str | None = None
    jumps = 0
    end_pos = -1
    n = len(msg)
    total = 0
    while True:
        if pos >= n:
            return None
        length = msg[pos]
        if length == 0:
            pos += 1
            break
        if length >= 0xC0:
            if pos + 1 >= n:
                return None
            if end_pos < 0:
                end_pos = pos + 2
            ptr = ((length & 0x3F) << 8) | msg[pos + 1]
            suffix = cache.get(ptr)
            if suffix is not None:
                break
            jumps += 1
            if jumps > MAX_POINTER_JUMPS:
                return None
            pos = ptr
            continue
        if length > 63 or pos + 1 + length > n:
            return None  # reserved label types, or past the end
        labels.append(msg[pos + 1 : pos + 1 + length])
        total += length + 1
        if total > 255:
            return None
        pos += 1 + length
    name = b".".join(labels).decode("ascii", "backslashreplace").lower()
    if suffix is not None:
        name = f"{name}.{suffix}" if name else suffix
    cache[origin] = name
    return name, (end_pos if end_pos >= 0 else pos)


_RR = struct.Struct(">HHIH")


def parse_response(msg: bytes) -> DnsResponse | None:
    """Parse a DNS response; ``None`` for queries and malformed messages."""
    if len(msg) < 12 or not msg[2] & 0x80:  # QR bit: responses only
        return None
    qd = (msg[4] << 8) | msg[5]
    an = (msg[6] << 8) | msg[7]
    if qd > 16 or an > MAX_RECORDS:
        return None
    pos = 12
    cache: dict[int, str] = {}
    qname: str | None = None
    for _ in range(qd):
        r = _read_name(msg, pos, cache)
        if r is None:
            return None
        name, pos = r
        pos += 4
        if qname is None:
            qname = name
    addresses: list[tuple[str, str, str, int]] = []
    cnames: dict[str, str] = {}
    n = len(msg)
    for _ in range(an):
        r = _read_name(msg, pos, cache)
        if r is None:
            break
        owner, pos = r
        if pos + 10 > n:
            break
        rtype, _rclass, ttl, rdlen = _RR.unpack_from(msg, pos)
        rdata = pos + 10
        pos = rdata + rdlen
        if pos > n:
            break
        if rtype == TYPE_A and rdlen == 4:
            addresses.append((owner, "A", inet_ntop(AF_INET, msg[rdata:pos]), ttl))
        elif rtype == TYPE_AAAA and rdlen == 16:
            addresses.append((owner, "AAAA", inet_ntop(AF_INET6, msg[rdata:pos]), ttl))
        elif rtype == TYPE_CNAME:
            target = _read_name(msg, rdata, cache)
            if target is not None:
                cnames.setdefault(owner, target[0])
    return DnsResponse(qname, addresses, cnames)
