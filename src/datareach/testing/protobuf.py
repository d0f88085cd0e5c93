"""Write protobuf wire format without a schema, for test vectors and the detection corpus."""

from __future__ import annotations

import struct
from typing import Any


def varint(n: int) -> bytes:
    """Base-128 varint; negative numbers as their 64-bit two's complement (ten bytes)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(number: int, n: int) -> bytes:
    return varint(number << 3) + varint(n)


def field_bytes(number: int, b: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(b)) + b


def field_double(number: int, x: float) -> bytes:
    return varint(number << 3 | 1) + struct.pack("<d", x)


def field_float(number: int, x: float) -> bytes:
    return varint(number << 3 | 5) + struct.pack("<f", x)


def message(fields: list[tuple[int, Any]]) -> bytes:
    """A message from (field number, int | str | bytes | nested field list) pairs."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, int):
            out += field_varint(number, value)
        else:
            raw = message(value) if isinstance(value, list) else value.encode() if isinstance(value, str) else value
            out += field_bytes(number, raw)
    return bytes(out)
