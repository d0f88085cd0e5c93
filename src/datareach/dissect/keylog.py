"""TLS key logs: the secrets that let a passive reader decrypt TLS and QUIC (sans-IO).

The NSS key log format (``SSLKEYLOGFILE``), which browsers, curl, OpenSSL, Python's ``ssl``,
mitmproxy, aioquic, PCAPdroid, PiRogue, friTap and eCapture write, and which pcapng files carry
in Decryption Secrets Blocks (``editcap --inject-secrets``)::

    CLIENT_RANDOM <client random> <TLS 1.2 master secret>
    CLIENT_HANDSHAKE_TRAFFIC_SECRET <client random> <secret>      (and SERVER_..., TLS 1.3, QUIC)
    CLIENT_TRAFFIC_SECRET_0 <client random> <secret>              (and SERVER_...)
    CLIENT_EARLY_TRAFFIC_SECRET <client random> <secret>          (0-RTT)
    EARLY_EXPORTER_SECRET / EXPORTER_SECRET <client random> <secret>   (read, not needed)
    RSA Session-ID:<session id> Master-Key:<master secret>        (TLS 1.2, by session id)

Keys are secrets: nothing here puts a secret, or a line that may hold one, into a message.
A :class:`KeyStore` holds every key source's secrets compactly (one bytes value per client
random) and counts, per source, its lines and the ones it could not use (the decryption stage
counts the connections each source opened).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Final

#: Labels, in the order of the slots a client random's secrets are stored in.
LABELS: Final = (
    "CLIENT_RANDOM",
    "CLIENT_EARLY_TRAFFIC_SECRET",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EARLY_EXPORTER_SECRET",
    "EXPORTER_SECRET",
)
_SLOT: Final = {name.encode(): i for i, name in enumerate(LABELS)}
MASTER, CLIENT_EARLY, CLIENT_HS, SERVER_HS, CLIENT_AP, SERVER_AP = range(6)
#: Lines of a key log longer than this are not key log lines (the longest, a SHA-384 secret, is ~190).
MAX_LINE: Final = 1024
#: Secrets held at most (client randoms and session ids together): a key log of more is cut, and says so.
MAX_SECRETS: Final = 4_000_000
#: Decryption Secrets Block secret types (pcapng, section 4.7 of draft-ietf-opsawg-pcapng).
DSB_TLS_KEYLOG: Final = 0x544C534B
DSB_WIREGUARD: Final = 0x57474B4C
DSB_ZIGBEE_NWK: Final = 0x5A4E574B
DSB_ZIGBEE_APS: Final = 0x5A415053
DSB_OPCUA: Final = 0x55414B4C
DSB_NAMES: Final = {DSB_TLS_KEYLOG: "TLS key log", DSB_WIREGUARD: "WireGuard", DSB_ZIGBEE_NWK: "Zigbee NWK",
                    DSB_ZIGBEE_APS: "Zigbee APS", DSB_OPCUA: "OPC UA"}
#: The name of an input's own key source (its Decryption Secrets Blocks).
DSB_SOURCE: Final = "pcapng Decryption Secrets Blocks"


@dataclass(slots=True)
class KeySource:
    """One key log (a file, or the Decryption Secrets Blocks of one input)."""

    name: str
    lines: int = 0
    #: lines that carried a secret datareach keeps
    secrets: int = 0
    #: lines that are not key log lines, by first line number and count (never their text)
    bad_lines: int = 0
    first_bad_line: int | None = None
    #: lines of a kind datareach does not use (``RSA <encrypted pre-master>``, unknown labels)
    unused_lines: int = 0
    #: secrets dropped because the store was full
    dropped: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "lines": self.lines, "secrets": self.secrets, "bad_lines": self.bad_lines,
                "first_bad_line": self.first_bad_line, "unused_lines": self.unused_lines,
                "dropped": self.dropped}


class KeyStore:
    """The secrets of every key source of an audit, by client random (and session id)."""

    __slots__ = ("_by_random", "_by_session", "_parent", "sources")

    def __init__(self) -> None:
        self.sources: list[KeySource] = []
        # client random -> bytes: per secret, (slot, source index, length) then the secret
        self._by_random: dict[bytes, bytes] = {}
        self._by_session: dict[bytes, tuple[int, bytes]] = {}
        self._parent: KeyStore | None = None

    def child(self) -> KeyStore:
        """A store that has this one's secrets and adds its own (an input's Decryption Secrets
        Blocks, which are that input's alone): this one is not changed."""
        k = KeyStore()
        k.sources = list(self.sources)
        k._parent = self
        return k

    def __len__(self) -> int:
        return len(self._by_random) + len(self._by_session) + (len(self._parent) if self._parent else 0)

    def __bool__(self) -> bool:
        return bool(self._by_random or self._by_session or self._parent)

    @property
    def has_session_ids(self) -> bool:
        return bool(self._by_session) or (self._parent is not None and self._parent.has_session_ids)

    def source(self, name: str) -> int:
        """The index of the source called ``name`` (made if new)."""
        for i, s in enumerate(self.sources):
            if s.name == name:
                return i
        self.sources.append(KeySource(name))
        return len(self.sources) - 1

    def add_text(self, data: bytes | bytearray | memoryview, source: str, first_line: int = 1) -> int:
        """Read key log lines; returns how many secrets were added. Lines cut across calls are
        the caller's business (:func:`read_keylog_file` reads whole lines)."""
        idx = self.source(source)
        src = self.sources[idx]
        added = 0
        unhex = binascii.unhexlify
        by_random = self._by_random
        for n, raw in enumerate(bytes(data).splitlines(), first_line):
            src.lines += 1
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            parts = line.split()
            if len(line) > MAX_LINE or len(parts) != 3:
                self._bad(src, n)
                continue
            label, a, b = parts
            if label == b"RSA":
                if a.startswith(b"Session-ID:") and b.startswith(b"Master-Key:"):
                    try:
                        sid, master = unhex(a[11:]), unhex(b[11:])
                    except (binascii.Error, ValueError):
                        self._bad(src, n)
                        continue
                    if not 0 < len(sid) <= 32 or len(master) != 48:
                        self._bad(src, n)
                        continue
                    if len(self) >= MAX_SECRETS:
                        src.dropped += 1
                        continue
                    self._by_session[sid] = (idx, master)
                    src.secrets += 1
                    added += 1
                else:  # RSA <encrypted pre-master> <pre-master>: needs the ClientKeyExchange
                    src.unused_lines += 1
                continue
            slot = _SLOT.get(label)
            if slot is None:
                src.unused_lines += 1
                continue
            try:
                rnd, secret = unhex(a), unhex(b)
            except (binascii.Error, ValueError):
                self._bad(src, n)
                continue
            if len(rnd) != 32 or not 16 <= len(secret) <= 64:
                self._bad(src, n)
                continue
            old = by_random.get(rnd)
            if old is None and len(self) >= MAX_SECRETS:
                src.dropped += 1
                continue
            entry = bytes((slot, idx if idx < 255 else 255, len(secret))) + secret
            by_random[rnd] = entry if old is None else _replace(old, slot, entry)
            src.secrets += 1
            added += 1
        return added

    @staticmethod
    def _bad(src: KeySource, n: int) -> None:
        src.bad_lines += 1
        if src.first_bad_line is None:
            src.first_bad_line = n

    def lookup(self, client_random: bytes) -> dict[int, tuple[int, bytes]] | None:
        """The secrets logged for a client random, by slot: (source index, secret)."""
        entry = self._by_random.get(client_random)
        if entry is None:
            return self._parent.lookup(client_random) if self._parent is not None else None
        out: dict[int, tuple[int, bytes]] = {}
        p = 0
        while p + 3 <= len(entry):
            slot, idx, n = entry[p], entry[p + 1], entry[p + 2]
            out[slot] = (idx, entry[p + 3 : p + 3 + n])
            p += 3 + n
        return out

    def has(self, client_random: bytes) -> bool:
        return client_random in self._by_random or (self._parent is not None and self._parent.has(client_random))

    def session(self, session_id: bytes) -> tuple[int, bytes] | None:
        """The master secret logged for a TLS 1.2 session id: (source index, secret)."""
        if not session_id:
            return None
        got = self._by_session.get(session_id)
        if got is None and self._parent is not None:
            return self._parent.session(session_id)
        return got


def _replace(old: bytes, slot: int, entry: bytes) -> bytes:
    """``old`` with the secret of ``slot`` replaced by (or added as) ``entry``."""
    parts = []
    p = 0
    while p + 3 <= len(old):
        n = old[p + 2]
        if old[p] != slot:
            parts.append(old[p : p + 3 + n])
        p += 3 + n
    parts.append(entry)
    return b"".join(parts)


#: Largest key log file read (a million connections' TLS 1.3 secrets take ~500 MB of text).
MAX_KEYLOG_FILE: Final = 1 << 30


class KeyLogError(Exception):
    """A key log file that cannot be read at all (missing, not a regular file, too large)."""


def read_keylog_file(store: KeyStore, path: str) -> KeySource:
    """Add a key log file's secrets to ``store``; raises :class:`KeyLogError` when the file
    cannot be read. Lines that are not key log lines are counted, not fatal."""
    import os
    import stat

    try:
        st = os.stat(path)
    except OSError as e:
        raise KeyLogError(f"key log {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyLogError(f"key log {path}: not a regular file")
    if st.st_size > MAX_KEYLOG_FILE:
        raise KeyLogError(f"key log {path}: {st.st_size:,} bytes, over the {MAX_KEYLOG_FILE:,}-byte limit")
    idx = store.source(path)
    line = 1
    try:
        with open(path, "rb") as f:
            rest = b""
            while True:
                chunk = f.read(1 << 22)
                if not chunk:
                    break
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                if cut == 0 and len(data) < MAX_LINE * 4:
                    rest = data
                    continue
                if cut == 0:
                    cut = len(data)
                store.add_text(data[:cut], path, line)
                line += data.count(b"\n", 0, cut)
                rest = data[cut:]
            if rest:
                store.add_text(rest, path, line)
    except OSError as e:
        raise KeyLogError(f"key log {path}: {e.strerror or e}") from None
    src = store.sources[idx]
    if src.secrets == 0:
        raise KeyLogError(f"key log {path}: no usable key log line in it ({src.lines} lines; "
                          "expected lines such as 'CLIENT_RANDOM <hex> <hex>')")
    return src
