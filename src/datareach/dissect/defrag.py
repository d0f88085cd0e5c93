"""IP defragmentation (IPv4 and IPv6), bounded (sans-IO).

A :class:`Reassembler` takes fragments by datagram key (addresses, identification, and for
IPv4 the protocol) and gives the datagram's payload once every byte from 0 to the end of the
last fragment is there.

Overlap policy: **the first copy of each byte wins** -- a fragment that overlaps bytes already
received only adds the bytes not yet covered. (Operating systems differ: Linux and Windows keep
the first copy as well for most overlaps, BSD prefers some later ones; an attacker's
overlapping fragments may therefore read differently here than at the receiving host. The
report cannot know which host's policy applied, and counts every overlap in
:attr:`Reassembler.overlaps`.)

Bounds: a datagram is at most 65,535 bytes and :data:`MAX_PARTS` fragments; at most
:data:`MAX_DATAGRAMS` datagrams and :data:`MAX_PENDING_BYTES` bytes wait at once (the oldest is
dropped first); a datagram waits at most :data:`TIMEOUT` seconds of capture time after its first
fragment. What is dropped, and what is still waiting at the end, is handed to ``on_drop`` as (reason,
frames, bytes, first) so that the caller can count it; ``first`` is the datagram's first
fragment (its header, payload and time) when it came, which the caller may still read as far as it
goes (the transport header and the start of its payload, as a reader without reassembly would).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

MAX_DATAGRAM: Final = 65535
MAX_PARTS: Final = 1024
MAX_DATAGRAMS: Final = 4096
MAX_PENDING_BYTES: Final = 32 << 20
#: seconds (capture time) a datagram waits for its missing fragments (Linux's ipfrag_time is 30)
TIMEOUT: Final = 30.0


class _Datagram:
    __slots__ = ("first", "frames", "nbytes", "parts", "size", "total")

    def __init__(self, ts: float) -> None:
        self.first = ts
        self.parts: list[tuple[int, bytes]] = []
        self.total: int | None = None  # known once the last fragment (no "more fragments") is seen
        self.size = 0
        self.frames = 0
        self.nbytes = 0


class Reassembler:
    """Fragments in, whole datagrams out."""

    def __init__(self, on_drop: Callable[[str, int, int, tuple[bytes, bytes, float] | None], None]) -> None:
        self._pending: dict[bytes, _Datagram] = {}
        self._heads: dict[bytes, bytes] = {}  # the header of each datagram's first fragment
        self._bytes = 0
        self._on_drop = on_drop
        # datagrams recently put together: a copy of one of their fragments (a duplicate frame, a
        # retransmission) is not the start of a new datagram
        self._done: dict[bytes, float] = {}
        #: datagrams put together, and fragments that overlapped bytes already received
        self.reassembled = 0
        self.overlaps = 0
        #: fragments of a datagram already put together (copies), ignored
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: bytes, ts: float, offset: int, more: bool, payload: bytes, head: bytes | None,
            frame_len: int, counted: bool = True) -> tuple[bytes, bytes] | None:
        """One fragment: ``offset`` in bytes, ``more`` its "more fragments" flag, ``head`` the
        header to rebuild the datagram with (given by the fragment at offset 0), ``frame_len``
        what the frame counts for (``counted`` False: nothing). Returns (head, payload) once the
        datagram is whole."""
        self._expire(ts)
        dg = self._pending.get(key)
        if dg is None:
            done = self._done.get(key)
            if done is not None and abs(ts - done) <= TIMEOUT:
                self.duplicates += 1
                return None
            if len(self._pending) >= MAX_DATAGRAMS:
                self._drop(next(iter(self._pending)), "IP fragments dropped: too many datagrams waiting")
            dg = self._pending[key] = _Datagram(ts)
        if counted:
            dg.frames += 1
            dg.nbytes += frame_len
        end = offset + len(payload)
        if end > MAX_DATAGRAM or len(dg.parts) >= MAX_PARTS:
            self._drop(key, "IP fragments of an impossible datagram (over 65,535 bytes or too many fragments)")
            return None
        if not more:
            if dg.total is not None and dg.total != end:
                self._drop(key, "IP fragments with two different ends")
                return None
            dg.total = end
        if head is not None and key not in self._heads:
            self._heads[key] = head
        dg.parts.append((offset, payload))
        dg.size += len(payload)
        self._bytes += len(payload)
        while self._bytes > MAX_PENDING_BYTES and self._pending:
            self._drop(next(iter(self._pending)), "IP fragments dropped: too many bytes waiting")
        if dg.total is None or dg.size < dg.total or key not in self._heads or key not in self._pending:
            return None
        whole = self._assemble(dg)
        if whole is None:
            return None
        del self._pending[key]
        self._bytes -= dg.size
        self.reassembled += 1
        if len(self._done) >= MAX_DATAGRAMS:
            del self._done[next(iter(self._done))]
        self._done[key] = ts
        return self._heads.pop(key), whole

    def _assemble(self, dg: _Datagram) -> bytes | None:
        total = dg.total
        assert total is not None
        buf = bytearray(total)
        covered: list[tuple[int, int]] = []  # sorted, disjoint
        overlapped = False
        for off, data in dg.parts:  # in the order they arrived: the first copy wins
            s, e = off, min(off + len(data), total)
            if s >= e:
                continue
            pos = s
            for cs, ce in covered:
                if ce <= pos:
                    continue
                if cs >= e:
                    break
                overlapped = True
                if cs > pos:
                    buf[pos:cs] = data[pos - off : cs - off]
                pos = max(pos, ce)
                if pos >= e:
                    break
            if pos < e:
                buf[pos:e] = data[pos - off : e - off]
            covered = _merge([*covered, (s, e)])
        if covered != [(0, total)]:
            return None  # a hole is left: wait for it
        if overlapped:
            self.overlaps += 1
        return bytes(buf)

    def _drop(self, key: bytes, reason: str) -> None:
        dg = self._pending.pop(key, None)
        if dg is None:
            self._heads.pop(key, None)
            return
        self._bytes -= dg.size
        head = self._heads.pop(key, None)
        first = next((p for off, p in dg.parts if off == 0), None)
        if dg.frames:
            self._on_drop(reason, dg.frames, dg.nbytes, (head, first, dg.first) if head is not None and first else None)

    def _expire(self, ts: float) -> None:
        pending = self._pending
        while pending:
            key = next(iter(pending))
            if ts - pending[key].first <= TIMEOUT:
                break
            self._drop(key, "IP fragments never completed")

    def finish(self) -> None:
        """The end of the input: every datagram still waiting is dropped."""
        for key in list(self._pending):
            self._drop(key, "IP fragments never completed")


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out
