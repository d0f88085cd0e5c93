"""Readers for classic pcap and pcapng files.

Both stream the file in large chunks (never the whole file in memory), walk the record or
block structure, and hand every frame to :class:`~datareach.dissect.packets.PacketDecoder`.
The records it produces are yielded after each chunk.

Hostile files are expected. A record or block whose length fields cannot be right is reported
as an :class:`~datareach.schema.InputError` with its byte offset, and the reader then looks for
the next plausible record and carries on, so one corrupt record does not lose the rest of the
capture. A file that ends inside a record reports where.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from datareach.dissect import http1, keylog, packets, pcapdroid
from datareach.dissect.keylog import KeyStore
from datareach.dissect.packets import SUPPORTED_LINKTYPES, PacketDecoder
from datareach.schema import InputError, ProgressCallback, Record

CHUNK = 4 << 20
#: Largest frame accepted whatever the header says (pcapng allows more, but no real link does).
MAX_FRAME = 1 << 18
#: How far ahead to look for the next good record after a corrupt one.
RESYNC_WINDOW = 16 << 20

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
BLOCK_IDB = 1
BLOCK_PB = 2
BLOCK_SPB = 3
BLOCK_EPB = 6
BLOCK_DSB = 10
SHB_TYPE = 0x0A0D0D0A
KNOWN_BLOCKS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xBAD, 0x40000BAD, SHB_TYPE})


def sniff(head: bytes) -> str | None:
    """'pcap' or 'pcapng' from the first bytes of a file, else None."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_SHB and len(head) >= 12 and head[8:12] in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
        return "pcapng"
    return None


class _Source:
    """Chunked reading with the file offset of every byte known."""

    def __init__(self, f: BinaryIO, progress: ProgressCallback | None) -> None:
        self.f = f
        self.buf = b""
        self.base = 0  # file offset of buf[0]
        self.eof = False
        self.progress = progress

    def fill(self, pos: int, need: int) -> int:
        """Make at least ``need`` bytes available from ``pos`` if the file has them.

        Drops the bytes before ``pos``; returns the new position of that byte (0)."""
        buf = self.buf
        if pos:
            self.base += pos
            buf = buf[pos:]
        while len(buf) < need and not self.eof:
            chunk = self.f.read(max(CHUNK, need - len(buf)))
            if not chunk:
                self.eof = True
                break
            buf = buf + chunk if buf else chunk
            if self.progress is not None:
                self.progress(self.base + len(buf))
        self.buf = buf
        return 0


class Desync(Exception):
    """A parallel reader's range did not end where the next one starts (see :mod:`datareach.sources.parallel`)."""


def read_sequential(path: Path, input_index: int, progress: ProgressCallback | None = None,
                    keep_bodies: bool = True, keys: KeyStore | None = None,
                    compression: str = "") -> Iterator[Record]:
    """Read a pcap or pcapng file (detected from its content) with one process and yield its
    records (:func:`datareach.sources.capture.read_capture` reads large files in parallel).
    With ``keys`` (or Decryption Secrets Blocks in the file), TLS connections are decrypted.
    ``compression`` (gzip, bzip2, xz, zstd): the file is decompressed as it is read; offsets in
    errors are then offsets in the decompressed capture, and progress counts its bytes."""
    from datareach.sources.compressed import open_decompressed

    dec = PacketDecoder(input_index, keep_bodies=keep_bodies, keys=keys)
    opened: Any = open_decompressed(path, compression) if compression else open(path, "rb")  # noqa: SIM115
    with opened as f:
        src = _Source(f, None if compression else progress)
        try:
            src.fill(0, 64)
            kind = sniff(src.buf)
            if kind == "pcap":
                yield from _pcap(src, dec)
            elif kind == "pcapng":
                yield from _pcapng(src, dec)
            else:
                yield InputError("not a pcap or pcapng file", offset=0, fatal=True)
                return
        except Exception as e:  # a compressed stream that is corrupt or ends early
            if not compression or isinstance(e, MemoryError):
                raise
            yield InputError(f"the {compression} data is corrupt or ends early ({type(e).__name__}: {e}); the "
                             f"{src.base + len(src.buf):,} decompressed bytes before it are read", fatal=True)
    dec.finish()
    yield from dec.records
    dec.records.clear()
    yield dec.decryption()
    yield dec.accounting
    yield from summary_errors(dec.cut, dec.malformed, dec.response_head_cuts, dec.retired_inspecting,
                              dec.http_holes, dec.http_bytes_skipped)


def summary_errors(cut: int, malformed: int, response_head_cuts: int = 0,
                   retired_inspecting: int = 0, http_holes: int = 0, http_bytes_skipped: int = 0) -> Iterator[InputError]:
    """The errors that count packets (or responses) rather than point at one place. (A request
    whose header block was cut says so in its own ``decode_cuts``.)"""
    if cut:
        yield InputError(
            f"{cut} packets were cut short by the capture's snapshot length: payload beyond the "
            "cut was not seen, so names and requests in it may be missing",
            offset=None,
        )
    if http_holes:
        yield InputError(
            f"{http_holes} holes in plain-HTTP streams (segments missing from the capture or cut short): "
            f"each direction took up again at its next request or status line, {http_bytes_skipped:,} bytes "
            "skipped; requests or responses in the holes are missing or incomplete")
    if malformed:
        yield InputError(f"{malformed} packets had malformed or truncated IP/TCP/UDP headers and were skipped")
    if response_head_cuts:
        yield InputError(f"{response_head_cuts} HTTP responses had a header block longer than "
                         f"{http1.MAX_HEADER_BYTES // 1024} KiB: the headers beyond it were not read")
    if retired_inspecting:
        yield InputError(
            f"{retired_inspecting} connections were set aside while their payload was still being read, "
            f"because more than {packets.MAX_LIVE_FLOWS:,} connections were active at once: requests or server "
            "names they were in the middle of may be missing (their counters are whole)")


def _drain(dec: PacketDecoder) -> list[Record]:
    out = dec.records
    dec.records = []
    return out


def _pcap(src: _Source, dec: PacketDecoder, head: bytes | None = None, stop: int | None = None,
          trailer_mode: bool | None = None) -> Iterator[Record]:
    """Read pcap records from ``src``'s position to the end, or to ``stop`` and then the overlap.

    ``head`` is the file header when ``src`` does not start at the beginning of the file.
    """
    parallel = head is not None
    if head is None:
        head = src.buf
    if len(head) < 24:
        yield InputError("file ends inside the pcap file header", offset=0, fatal=True)
        return
    endian, scale = PCAP_MAGICS[head[:4]]
    snaplen, network = struct.unpack_from(endian + "II", head, 16)
    linktype = network & 0xFFFF
    if linktype not in SUPPORTED_LINKTYPES:
        yield InputError(f"link type {linktype} is not supported (the header's link type field)",
                         offset=20, fatal=True)
        return
    limit = max(min(snaplen, MAX_FRAME) if snaplen else MAX_FRAME, 65535)
    unpack = struct.Struct(endian + "IIII").unpack_from
    pos = 0 if parallel else 24
    src.fill(0, 1 << 20)
    if trailer_mode is None:
        trailer_mode = linktype in pcapdroid.LINKTYPES and _has_trailer(src.buf, pos, unpack)
    trailer = pcapdroid.split_trailer if trailer_mode else None
    acc = dec.accounting
    while True:
        buf = src.buf
        n = len(buf)
        lim = n if stop is None else min(n, stop - src.base)
        corrupt = False
        nf = 0
        first = pos
        if trailer is None:
            while pos < lim and pos + 16 <= n:
                sec, frac, caplen, origlen = unpack(buf, pos)
                end = pos + 16 + caplen
                if caplen > limit or caplen > origlen:
                    corrupt = True
                    break
                if end > n:
                    break
                dec.packet(sec + frac * scale, buf[pos + 16 : end], linktype)
                nf += 1
                pos = end
        else:
            while pos < lim and pos + 16 <= n:
                sec, frac, caplen, origlen = unpack(buf, pos)
                end = pos + 16 + caplen
                if caplen > limit or caplen > origlen:
                    corrupt = True
                    break
                if end > n:
                    break
                frame = buf[pos + 16 : end]
                cut, _uid, app = trailer(frame)
                dec.packet(sec + frac * scale, frame[:cut], linktype, app or None)
                nf += 1
                pos = end
        if not dec.overlap:  # (the records' captured bytes: what they span, less their headers)
            acc.frames += nf
            acc.bytes += pos - first - 16 * nf
        if dec.records:
            yield from _drain(dec)
        if dec.overlap and (corrupt or not dec.following()):
            return
        if stop is not None and src.base + pos >= stop and not corrupt:
            if src.base + pos != stop:
                raise Desync(f"record at {src.base + pos} crosses the range end {stop}")
            dec.begin_overlap()
            stop = None
            continue
        if corrupt:
            bad = src.base + pos
            sec, frac, caplen, origlen = unpack(buf, pos)
            pos = _pcap_resync(src, pos, unpack, limit, sec)
            if pos < 0:
                yield InputError(
                    f"corrupt record (captured length {caplen}, original length {origlen}); "
                    "no valid record found after it", offset=bad, fatal=True)
                return
            yield InputError(
                f"corrupt record (captured length {caplen}, original length {origlen}); "
                f"skipped {src.base + pos - bad} bytes to the next valid record at offset {src.base + pos}",
                offset=bad)
            continue
        if src.eof:
            if pos < n and not dec.overlap:
                yield InputError(
                    f"file ends inside a record ({n - pos} bytes left over, a record needs more)",
                    offset=src.base + pos, fatal=True)
            return
        pos = src.fill(pos, CHUNK)


def _has_trailer(buf: bytes, pos: int, unpack: object, records: int = 32) -> bool:
    """Whether any of the first records carries a PCAPdroid trailer (then all are checked)."""
    for _ in range(records):
        if pos + 16 > len(buf):
            return False
        caplen = unpack(buf, pos)[2]  # type: ignore[operator]
        end = pos + 16 + caplen
        if end > len(buf):
            return False
        if pcapdroid.split_trailer(buf[pos + 16 : end])[2] is not None:
            return True
        pos = end
    return False


def _plausible(buf: bytes, p: int, unpack: object, limit: int, ts: int) -> bool:
    sec, _frac, caplen, origlen = unpack(buf, p)  # type: ignore[operator]
    return bool(caplen <= limit and caplen <= origlen <= 1 << 18 and abs(sec - ts) < 86400 * 365)


def _pcap_resync(src: _Source, pos: int, unpack: object, limit: int, ts: int) -> int:
    """Find the next offset where two consecutive record headers make sense."""
    pos = src.fill(pos, RESYNC_WINDOW)
    buf = src.buf
    n = len(buf)
    for p in range(1, n - 16):
        if not _plausible(buf, p, unpack, limit, ts):
            continue
        nxt = p + 16 + unpack(buf, p)[2]  # type: ignore[operator]
        if nxt == n or (nxt + 16 <= n and _plausible(buf, nxt, unpack, limit, ts)):
            return p
    return -1


class _Interface:
    __slots__ = ("linktype", "scale", "snaplen", "tsoffset")

    def __init__(self, linktype: int, snaplen: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.scale = 1e-6
        self.tsoffset = 0


def _idb_options(iface: _Interface, body: bytes, endian: str) -> None:
    p = 8
    n = len(body)
    while p + 4 <= n:
        code, length = struct.unpack_from(endian + "HH", body, p)
        val = body[p + 4 : p + 4 + length]
        if code == 0:
            break
        if code == 9 and length >= 1:  # if_tsresol
            r = val[0]
            iface.scale = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
        elif code == 14 and length == 8:  # if_tsoffset
            iface.tsoffset = struct.unpack(endian + "q", val)[0]
        p += 4 + ((length + 3) & ~3)


def _pcapng(src: _Source, dec: PacketDecoder, section: tuple[str, list[_Interface]] | None = None,
            stop: int | None = None) -> Iterator[Record]:
    """Read pcapng blocks from ``src``'s position to the end, or to ``stop`` and then the overlap.

    ``section`` is the byte order and interfaces in force when ``src`` starts mid-file.
    """
    parallel = section is not None
    endian, ifaces = section if section is not None else ("<", [])
    pos = 0
    hdr = struct.Struct(endian + "II")
    epb = struct.Struct(endian + "IIIII")
    u32 = struct.Struct(endian + "I").unpack_from
    acc = dec.accounting
    while True:
        buf = src.buf
        n = len(buf)
        lim = n if stop is None else min(n, stop - src.base)
        problem: str | None = None
        nf = nb = 0
        while pos < lim and pos + 12 <= n:
            btype, blen = hdr.unpack_from(buf, pos)
            if parallel and btype in (SHB_TYPE, BLOCK_IDB):
                raise Desync("a section or interface block inside a parallel range")
            if btype == SHB_TYPE:
                magic = buf[pos + 8 : pos + 12]
                endian = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">" if magic == b"\x1a\x2b\x3c\x4d" else ""
                if not endian:
                    problem = "section header with an unknown byte-order magic"
                    endian = "<"
                    break
                hdr = struct.Struct(endian + "II")
                epb = struct.Struct(endian + "IIIII")
                u32 = struct.Struct(endian + "I").unpack_from
                btype, blen = hdr.unpack_from(buf, pos)
                ifaces = []
            if blen < 12 or blen & 3 or blen > MAX_FRAME + 1024 * 64:
                problem = f"block of type {btype:#x} has an impossible length {blen}"
                break
            end = pos + blen
            if end > n:
                break
            if u32(buf, end - 4)[0] != blen:
                problem = f"block of type {btype:#x} at this offset: its trailing length does not match {blen}"
                break
            if btype == BLOCK_EPB:
                iid, hi, lo, caplen, _orig = epb.unpack_from(buf, pos + 8)
                if iid >= len(ifaces) or caplen > blen - 32:
                    problem = (f"enhanced packet block names interface {iid} of {len(ifaces)}"
                               if iid >= len(ifaces) else "enhanced packet block: captured length exceeds the block")
                    break
                itf = ifaces[iid]
                frame = buf[pos + 28 : pos + 28 + caplen]
                nf += 1
                nb += caplen
                lt = itf.linktype
                if lt in pcapdroid.LINKTYPES:
                    cut, _uid, app = pcapdroid.split_trailer(frame)
                    dec.packet(((hi << 32) | lo) * itf.scale + itf.tsoffset, frame[:cut], lt, app or None)
                else:
                    dec.packet(((hi << 32) | lo) * itf.scale + itf.tsoffset, frame, lt)
            elif btype == BLOCK_IDB:
                linktype, _res, snaplen = struct.unpack_from(endian + "HHI", buf, pos + 8)
                itf = _Interface(linktype, snaplen)
                _idb_options(itf, buf[pos + 8 : end - 4], endian)
                ifaces.append(itf)
                if linktype not in SUPPORTED_LINKTYPES:
                    yield InputError(
                        f"interface {len(ifaces) - 1} has link type {linktype}, which is not supported: "
                        "its packets are skipped", offset=src.base + pos)
            elif btype == BLOCK_DSB:
                if parallel:  # (a parallel plan hands the readers the secrets before the first packet)
                    raise Desync("a Decryption Secrets Block inside a parallel range")
                stype, slen = struct.unpack_from(endian + "II", buf, pos + 8)
                if slen > blen - 20:
                    problem = "decryption secrets block: its secrets length exceeds the block"
                    break
                if stype == keylog.DSB_TLS_KEYLOG:
                    dec.add_secrets(buf[pos + 16 : pos + 16 + slen])
                else:
                    kind = keylog.DSB_NAMES.get(stype, f"type {stype:#x}")
                    yield InputError(f"decryption secrets of kind {kind} are not used: only TLS key logs are",
                                     offset=src.base + pos)
            elif btype == BLOCK_SPB:
                if not ifaces:
                    problem = "simple packet block before any interface description"
                    break
                itf = ifaces[0]
                orig = struct.unpack_from(endian + "I", buf, pos + 8)[0]
                caplen = min(orig, blen - 16, itf.snaplen or orig)
                nf += 1
                nb += caplen
                dec.packet(0.0, buf[pos + 12 : pos + 12 + caplen], itf.linktype)
            elif btype == BLOCK_PB:
                iid, _drops, hi, lo, caplen, _orig = struct.unpack_from(endian + "HHIIII", buf, pos + 8)
                if iid < len(ifaces) and caplen <= blen - 32:
                    itf = ifaces[iid]
                    nf += 1
                    nb += caplen
                    dec.packet(((hi << 32) | lo) * itf.scale + itf.tsoffset, buf[pos + 28 : pos + 28 + caplen], itf.linktype)
            pos = end
        if not dec.overlap:
            acc.frames += nf
            acc.bytes += nb
        if dec.records:
            yield from _drain(dec)
        if dec.overlap and (problem is not None or not dec.following()):
            return
        if stop is not None and src.base + pos >= stop and problem is None:
            if src.base + pos != stop:
                raise Desync(f"block at {src.base + pos} crosses the range end {stop}")
            dec.begin_overlap()
            stop = None
            continue
        if problem is not None:
            bad = src.base + pos
            pos = _pcapng_resync(src, pos, endian)
            if pos < 0:
                yield InputError(problem + "; no valid block found after it", offset=bad, fatal=True)
                return
            yield InputError(f"{problem}; skipped {src.base + pos - bad} bytes to the next valid block "
                             f"at offset {src.base + pos}", offset=bad)
            continue
        if src.eof:
            if pos < n and not dec.overlap:
                yield InputError(f"file ends inside a block ({n - pos} bytes left over)",
                                 offset=src.base + pos, fatal=True)
            return
        pos = src.fill(pos, CHUNK)


def _pcapng_resync(src: _Source, pos: int, endian: str) -> int:
    pos = src.fill(pos, RESYNC_WINDOW)
    buf = src.buf
    n = len(buf)
    for p in range(4, n - 12, 4):
        btype, blen = struct.unpack_from(endian + "II", buf, p)
        if btype not in KNOWN_BLOCKS or blen < 12 or blen & 3 or p + blen > n:
            continue
        if struct.unpack_from(endian + "I", buf, p + blen - 4)[0] == blen:
            return p
    return -1
