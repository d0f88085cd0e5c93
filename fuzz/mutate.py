"""The home-grown mutator: deterministic for a given :class:`random.Random`, format-agnostic.

Each call stacks one to a few of these mutations (AFL's "havoc" stage, roughly):

* bit and byte flips, random bytes;
* interesting integers (0, 1, -1, the 8/16/32-bit edges, the input's own length and its
  neighbours) written as 8-, 16- or 32-bit fields in either byte order -- length fields are
  where parsers go wrong;
* small additions to and subtractions from such fields;
* inserts (random bytes, a run of one byte, a copy of another block), deletes, block swaps,
  truncation;
* dictionary tokens written over or inserted (each harness gives its format's keywords);
* splices with another input of the corpus (the head of one, the tail of the other).

Sizes stay under the harness's ``max_len``.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

_INTERESTING_8 = (0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x20, 0x40, 0x64)
_INTERESTING_16 = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x3FF, 0x400, 0x7FFF, 0x8000, 0xFFFF, 0x1000, 0xFFFE)
_INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x10000, 0x100000, 0x7FFFFFFE,
                   0x0A0D0D0A, 0x1A2B3C4D, 0x4D3C2B1A, 0xA1B2C3D4, 0xD4C3B2A1)


class Mutator:
    """Mutates byte strings; ``dictionary`` holds the format's tokens."""

    def __init__(self, rng: random.Random, dictionary: Sequence[bytes] = (), max_len: int = 1 << 16) -> None:
        self.rng = rng
        self.dictionary = [t for t in dictionary if t]
        self.max_len = max_len
        self._ops = [
            (self._flip_bits, 6), (self._set_byte, 4), (self._interesting, 8), (self._arith, 6),
            (self._insert_random, 3), (self._insert_run, 2), (self._copy_block, 3), (self._delete, 5),
            (self._swap, 1), (self._truncate, 1), (self._token, 6 if self.dictionary else 0),
            (self._insert_token, 4 if self.dictionary else 0), (self._splice, 2),
        ]
        self._weights = [w for _, w in self._ops]

    def mutate(self, data: bytes, corpus: Sequence[bytes] = ()) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        rounds = 1 + min(int(rng.expovariate(0.6)), 15)
        for _ in range(rounds):
            op = rng.choices(self._ops, self._weights)[0][0]
            op(buf, corpus)
            if len(buf) > self.max_len:
                del buf[self.max_len:]
        return bytes(buf)

    # -- helpers -----------------------------------------------------------------------------

    def _pos(self, buf: bytearray, width: int = 1) -> int:
        """A position for a field of ``width`` bytes, biased towards the start (headers)."""
        n = len(buf) - width
        if n <= 0:
            return 0
        if self.rng.random() < 0.3:
            return self.rng.randrange(min(n, 64) + 1)
        return self.rng.randrange(n + 1)

    def _lengthish(self, buf: bytearray) -> list[int]:
        n = len(buf)
        return [n, n - 1, n + 1, n // 2, n * 2, n - 4, n + 4]

    # -- the mutations -----------------------------------------------------------------------

    def _flip_bits(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        if not buf:
            buf.append(self.rng.randrange(256))
            return
        i = self._pos(buf)
        for _ in range(self.rng.choice((1, 1, 2, 4))):
            buf[i] ^= 1 << self.rng.randrange(8)

    def _set_byte(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        if not buf:
            return
        i = self._pos(buf)
        buf[i] = self.rng.choice((self.rng.randrange(256), 0, 0xFF, buf[i] ^ 0xFF))

    def _interesting(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        rng = self.rng
        width = rng.choice((1, 2, 2, 4, 4))
        if len(buf) < width:
            return
        if width == 1:
            value = rng.choice((*_INTERESTING_8, *(v & 0xFF for v in self._lengthish(buf))))
        elif width == 2:
            value = rng.choice((*_INTERESTING_16, *(v & 0xFFFF for v in self._lengthish(buf))))
        else:
            value = rng.choice((*_INTERESTING_32, *(v & 0xFFFFFFFF for v in self._lengthish(buf))))
        fmt = {1: "B", 2: "H", 4: "I"}[width]
        i = self._pos(buf, width)
        struct.pack_into(rng.choice("<>") + fmt, buf, i, value & ((1 << (8 * width)) - 1))

    def _arith(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        rng = self.rng
        width = rng.choice((1, 2, 4))
        if len(buf) < width:
            return
        fmt = rng.choice("<>") + {1: "B", 2: "H", 4: "I"}[width]
        i = self._pos(buf, width)
        (value,) = struct.unpack_from(fmt, buf, i)
        value = (value + rng.choice((-1, 1)) * rng.randint(1, 35)) & ((1 << (8 * width)) - 1)
        struct.pack_into(fmt, buf, i, value)

    def _insert_random(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        i = self.rng.randrange(len(buf) + 1)
        buf[i:i] = self.rng.randbytes(self.rng.choice((1, 1, 2, 4, 8, 16)))

    def _insert_run(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        rng = self.rng
        i = rng.randrange(len(buf) + 1)
        byte = rng.choice((0, 0xFF, ord("["), ord("{"), ord('"'), ord("\\"), ord("%"), ord("A"),
                           buf[i - 1] if i else 0))
        buf[i:i] = bytes([byte]) * rng.choice((2, 8, 64, 512, 4096))

    def _copy_block(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        if len(buf) < 2:
            return
        rng = self.rng
        n = rng.randint(1, min(len(buf), 256))
        src = rng.randrange(len(buf) - n + 1)
        block = bytes(buf[src:src + n])
        dst = rng.randrange(len(buf) + 1)
        if rng.random() < 0.5:
            buf[dst:dst] = block * rng.choice((1, 1, 2, 8))
        else:
            buf[dst:dst + n] = block

    def _delete(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        if not buf:
            return
        rng = self.rng
        n = rng.randint(1, min(len(buf), rng.choice((1, 4, 16, 128, 1024))))
        i = rng.randrange(len(buf) - n + 1)
        del buf[i:i + n]

    def _swap(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        if len(buf) < 4:
            return
        rng = self.rng
        n = rng.randint(1, len(buf) // 2)
        a = rng.randrange(len(buf) - 2 * n + 1)
        b = rng.randrange(a + n, len(buf) - n + 1)
        buf[a:a + n], buf[b:b + n] = buf[b:b + n], buf[a:a + n]

    def _truncate(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        if buf:
            del buf[self.rng.randrange(len(buf)):]

    def _token(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        token = self.rng.choice(self.dictionary)
        i = self._pos(buf, len(token))
        buf[i:i + len(token)] = token

    def _insert_token(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        token = self.rng.choice(self.dictionary)
        i = self.rng.randrange(len(buf) + 1)
        buf[i:i] = token

    def _splice(self, buf: bytearray, corpus: Sequence[bytes]) -> None:
        if not corpus:
            return
        other = self.rng.choice(corpus)
        if not other:
            return
        cut = self.rng.randrange(len(buf) + 1)
        start = self.rng.randrange(len(other))
        buf[cut:] = other[start:]
