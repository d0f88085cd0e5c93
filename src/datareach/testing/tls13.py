"""The sending side of the TLS 1.3 record layer, for building captures whose key log is known.

A capture generator that cannot run a real handshake deterministically (OpenSSL's randomness
cannot be seeded) still writes real TLS 1.3 records: it draws the traffic secrets itself, writes
them as key log lines, and encrypts each record as RFC 8446 section 5.2 says (AEAD over the inner
plaintext and its content type, the record header as associated data, the nonce from the IV and
the sequence number). tshark decrypts such a capture with the key log, as it does a real one.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from datareach.dissect.tlscrypto import hkdf_expand_label


class Tls13Sender:
    """One direction's records under one traffic secret (TLS_AES_128_GCM_SHA256)."""

    def __init__(self, secret: bytes) -> None:
        self.aead = AESGCM(hkdf_expand_label(secret, b"key", b"", 16, "sha256"))
        self.iv = hkdf_expand_label(secret, b"iv", b"", 12, "sha256")
        self.seq = 0

    def record(self, content_type: int, content: bytes) -> bytes:
        """One protected record (outer type application_data) carrying ``content``."""
        inner = content + bytes((content_type,))
        header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
        nonce = (int.from_bytes(self.iv, "big") ^ self.seq).to_bytes(12, "big")
        self.seq += 1
        return header + self.aead.encrypt(nonce, inner, header)

    def records(self, content_type: int, content: bytes, size: int = 16384) -> bytes:
        """``content`` in records of at most ``size`` bytes."""
        return b"".join(self.record(content_type, content[i : i + size]) for i in range(0, max(len(content), 1), size))


def h2_frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    """An HTTP/2 frame (RFC 9113 section 4.1)."""
    return len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + stream.to_bytes(4, "big") + payload
