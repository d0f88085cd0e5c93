"""HTTP/3 over decrypted QUIC streams: requests, their bodies, response status and size
(sans-IO: fed each stream's bytes in order, as :mod:`datareach.dissect.quicdecrypt` reassembles
them).

Request streams (client-initiated bidirectional, RFC 9114 section 6.1) carry HEADERS and DATA
frames; header sections are decoded with QPACK (``pylsqpack``, RFC 9204), whose dynamic tables
are fed from each side's encoder stream; each side's SETTINGS (its control stream) gives the table
capacity its peer's sections are encoded against. A section that refers to encoder instructions
not seen yet waits for them (bounded).

Hostile input: frame lengths, header sections and streams are bounded; a decoding error ends that
stream's reading, counted in :attr:`H3Connection.errors`.
"""

from __future__ import annotations

from typing import Final

from datareach.dissect.http2 import H2Stream
from datareach.dissect.quic import varint as quic_varint

DATA, HEADERS = 0x00, 0x01
SETTINGS = 0x04
STREAM_CONTROL, STREAM_PUSH, STREAM_ENCODER, STREAM_DECODER = 0x00, 0x01, 0x02, 0x03
SETTINGS_QPACK_MAX_TABLE_CAPACITY, SETTINGS_QPACK_BLOCKED_STREAMS = 0x01, 0x07
MAX_FRAME: Final = 1 << 20
MAX_HEADER_SECTION: Final = 1 << 18
MAX_STREAMS: Final = 1024
#: QPACK dynamic table capacity accepted from SETTINGS
MAX_TABLE: Final = 1 << 16
#: header sections held while they wait for encoder instructions, per direction
MAX_BLOCKED: Final = 64


def varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    """A QUIC variable-length integer at ``pos``: (value, next position), or (-1, -1) if cut."""
    return quic_varint(buf, pos, len(buf))


class _Side:
    """One peer's half of the connection: its SETTINGS and the decoder of its header sections."""

    __slots__ = ("blocked", "capacity", "decoder", "made_with", "pending_encoder")

    def __init__(self) -> None:
        self.made_with = 0
        #: the QPACK table capacity this side's sections are encoded against (the *peer's* SETTINGS)
        self.capacity: int | None = None
        self.decoder: object | None = None
        self.pending_encoder = bytearray()
        #: stream id -> (section, stream, is request side)
        self.blocked: dict[int, bytes] = {}


class H3Connection:
    """Both directions of one HTTP/3 connection. :meth:`feed` returns the streams it finished."""

    def __init__(self, body_cap: int = 1 << 20) -> None:
        self.body_cap = body_cap
        self.sides = (_Side(), _Side())  # the server's sections, the client's
        self.streams: dict[int, H2Stream] = {}
        self._buf: dict[tuple[int, bool], bytearray] = {}
        self._uni: dict[tuple[int, bool], int] = {}  # unidirectional stream -> its type
        self._done: set[tuple[int, bool]] = set()  # (stream, direction) no longer read
        self.errors: dict[str, int] = {}
        self.frames = 0

    # -- streams --------------------------------------------------------------------------------

    def feed(self, from_client: bool, stream_id: int, data: bytes, fin: bool, ts: float) -> list[H2Stream]:
        out: list[H2Stream] = []
        key = (stream_id, from_client)
        if key in self._done:
            return out
        if stream_id & 0x2:  # unidirectional
            self._unidirectional(from_client, stream_id, data, out)
            return out
        if stream_id & 0x1:  # server-initiated bidirectional streams carry nothing HTTP/3 defines
            return out
        buf = self._buf.setdefault(key, bytearray())
        buf += data
        p = 0
        while True:
            ftype, q = varint(buf, p)
            if q < 0:
                break
            length, q = varint(buf, q)
            if q < 0:
                break
            if length > MAX_FRAME:
                self._stop(key, f"frame of {length} bytes")
                return out
            if q + length > len(buf):
                break
            self.frames += 1
            self._frame(from_client, stream_id, ftype, bytes(buf[q : q + length]), ts, out)
            p = q + length
            if key in self._done:
                return out
        del buf[:p]
        if fin:
            self._buf.pop(key, None)
            s = self.streams.get(stream_id)
            if s is not None:
                self._end(s, from_client, out)
        return out

    def close(self) -> list[H2Stream]:
        """The connection ended: every stream with a request, as it stands."""
        out = [s for s in self.streams.values() if s.method]
        self.streams.clear()
        return out

    def _stop(self, key: tuple[int, bool], reason: str) -> None:
        self._done.add(key)
        self._buf.pop(key, None)
        if len(self.errors) < 64 or reason in self.errors:
            self.errors[reason] = self.errors.get(reason, 0) + 1

    def _unidirectional(self, from_client: bool, stream_id: int, data: bytes, out: list[H2Stream]) -> None:
        key = (stream_id, from_client)
        kind = self._uni.get(key)
        buf = self._buf.setdefault(key, bytearray())
        buf += data
        if kind is None:
            kind, p = varint(buf, 0)
            if p < 0:
                return
            self._uni[key] = kind
            del buf[:p]
        side = self.sides[int(from_client)]
        if kind == STREAM_ENCODER:  # this side's encoder instructions: its sections' dynamic table
            data = bytes(buf)
            buf.clear()
            self._encoder(side, data, out, from_client)
        elif kind == STREAM_CONTROL:
            p = 0
            while True:
                ftype, q = varint(buf, p)
                length, q = varint(buf, q) if q >= 0 else (-1, -1)
                if q < 0 or q + length > len(buf):
                    break
                if ftype == SETTINGS:
                    self._settings(from_client, bytes(buf[q : q + length]))
                p = q + length
            del buf[:p]
            if len(buf) > MAX_FRAME:
                self._stop(key, "control stream frame too long")
        else:  # push, QPACK decoder streams, unknown types: nothing the report uses
            self._done.add(key)
            self._buf.pop(key, None)

    def _settings(self, from_client: bool, payload: bytes) -> None:
        p = 0
        while p < len(payload):
            ident, p = varint(payload, p)
            value, p = varint(payload, p) if p >= 0 else (-1, -1)
            if p < 0:
                return
            if ident == SETTINGS_QPACK_MAX_TABLE_CAPACITY:
                # a side's SETTINGS says how its *peer's* sections may use the dynamic table
                peer = self.sides[int(not from_client)]
                peer.capacity = min(value, MAX_TABLE)
                if peer.decoder is not None and peer.made_with == 0 and peer.capacity:
                    # (made before the SETTINGS were seen, for sections that could not use the
                    # dynamic table: it is empty, and is made again with the real capacity)
                    peer.decoder = None

    # -- QPACK ----------------------------------------------------------------------------------------

    def _decoder(self, side: _Side) -> object:
        if side.decoder is None:
            import pylsqpack

            side.made_with = side.capacity or 0
            side.decoder = pylsqpack.Decoder(side.made_with, MAX_BLOCKED)
            if side.pending_encoder:
                side.decoder.feed_encoder(bytes(side.pending_encoder))
                side.pending_encoder.clear()
        return side.decoder

    def _encoder(self, side: _Side, data: bytes, out: list[H2Stream], from_client: bool) -> None:
        import pylsqpack

        if side.decoder is None and not side.capacity:
            if len(side.pending_encoder) + len(data) <= MAX_HEADER_SECTION:
                side.pending_encoder += data  # (until the peer's SETTINGS say the table's size)
            return
        dec = self._decoder(side)
        try:
            unblocked = dec.feed_encoder(data)  # type: ignore[attr-defined]
        except (pylsqpack.EncoderStreamError, pylsqpack.DecompressionFailed, ValueError):
            self.errors["QPACK encoder stream"] = self.errors.get("QPACK encoder stream", 0) + 1
            return
        for sid in unblocked:
            side.blocked.pop(sid, None)
            try:
                _control, headers = dec.resume_header(sid)  # type: ignore[attr-defined]
            except (pylsqpack.DecompressionFailed, pylsqpack.StreamBlocked, ValueError):
                continue
            s = self.streams.get(sid)
            if s is not None:
                self._apply(s, from_client, headers)
                if (s.request_done if from_client else s.response_done):
                    self._end(s, from_client, out)

    def _frame(self, from_client: bool, stream_id: int, ftype: int, payload: bytes, ts: float,
               out: list[H2Stream]) -> None:
        s = self.streams.get(stream_id)
        if ftype == HEADERS:
            if len(payload) > MAX_HEADER_SECTION:
                self._stop((stream_id, from_client), "header section too long")
                return
            if s is None:
                if not from_client:
                    return
                if len(self.streams) >= MAX_STREAMS:
                    old = self.streams.pop(next(iter(self.streams)))
                    if old.method:
                        out.append(old)
                s = self.streams[stream_id] = H2Stream(stream_id, ts)
            import pylsqpack

            side = self.sides[int(from_client)]
            dec = self._decoder(side)
            try:
                _control, headers = dec.feed_header(stream_id, payload)  # type: ignore[attr-defined]
            except pylsqpack.StreamBlocked:
                if len(side.blocked) < MAX_BLOCKED:
                    side.blocked[stream_id] = payload
                return
            except (pylsqpack.DecompressionFailed, ValueError):
                self._stop((stream_id, from_client), "QPACK: header section does not decode")
                return
            self._apply(s, from_client, headers)
        elif ftype == DATA and s is not None:
            s.data(from_client, payload, self.body_cap)

    def _apply(self, s: H2Stream, from_client: bool, headers: list[tuple[bytes, bytes]]) -> None:
        if from_client:
            s.request_headers(headers)
        else:
            s.response_headers(headers)

    def _end(self, s: H2Stream, from_client: bool, out: list[H2Stream]) -> None:
        if from_client:
            s.request_done = True
        else:
            s.response_done = True
        side = self.sides[int(from_client)]
        if s.stream_id in side.blocked:
            return  # (its headers wait for encoder instructions)
        if s.response_done and s.request_done:
            self.streams.pop(s.stream_id, None)
            if s.method:
                out.append(s)
