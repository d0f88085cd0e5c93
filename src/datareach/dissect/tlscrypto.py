"""The TLS record layer's cryptography, for a passive reader that holds the session's secrets.

Key derivation (TLS 1.3 ``HKDF-Expand-Label``, RFC 8446 section 7; the TLS 1.2 PRF and key
block, RFC 5246 sections 5 and 6.3) and record decryption on ``cryptography``'s AEAD and CBC
primitives: TLS 1.3 (AES-GCM, ChaCha20-Poly1305, AES-CCM), TLS 1.2 (AES-GCM with its explicit
nonce, ChaCha20-Poly1305 per RFC 7905, AES-CBC with HMAC, MAC-then-encrypt and
encrypt-then-MAC per RFC 7366).

:class:`RecordKey` decrypts one direction's records under one key, counting their sequence
numbers (implicit in TLS: each key's records are numbered from 0). Every function treats its
input as hostile: a record that does not decrypt gives ``None``, never an exception.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

GCM, CHACHA, CCM, CCM8, CBC = "aes-gcm", "chacha20-poly1305", "aes-ccm", "aes-ccm8", "aes-cbc"


@dataclass(frozen=True, slots=True)
class Suite:
    """What decryption needs of a cipher suite."""

    code: int
    name: str
    tls13: bool
    cipher: str
    key_len: int
    #: TLS 1.2 AEAD: the implicit part of the nonce (4 for GCM and CCM, 12 for ChaCha20)
    fixed_iv: int
    #: the hash of the PRF / HKDF (TLS 1.3) and, for CBC suites, of the record MAC
    hash: str
    mac_len: int = 0
    mac_hash: str = ""


def _suites() -> dict[int, Suite]:
    out: dict[int, Suite] = {}

    def add(code: int, name: str, cipher: str, key_len: int, hash_: str = "sha256", mac: str = "",
            tls13: bool = False) -> None:
        fixed = 12 if cipher == CHACHA else 4 if cipher in (GCM, CCM, CCM8) else 0
        mac_len = hashlib.new(mac).digest_size if mac else 0
        out[code] = Suite(code, name, tls13, cipher, key_len, fixed, hash_, mac_len, mac)

    add(0x1301, "TLS_AES_128_GCM_SHA256", GCM, 16, tls13=True)
    add(0x1302, "TLS_AES_256_GCM_SHA384", GCM, 32, "sha384", tls13=True)
    add(0x1303, "TLS_CHACHA20_POLY1305_SHA256", CHACHA, 32, tls13=True)
    add(0x1304, "TLS_AES_128_CCM_SHA256", CCM, 16, tls13=True)
    add(0x1305, "TLS_AES_128_CCM_8_SHA256", CCM8, 16, tls13=True)
    for kx, codes in (("ECDHE_RSA", (0xC02F, 0xC030)), ("ECDHE_ECDSA", (0xC02B, 0xC02C)),
                      ("RSA", (0x009C, 0x009D)), ("DHE_RSA", (0x009E, 0x009F))):
        add(codes[0], f"TLS_{kx}_WITH_AES_128_GCM_SHA256", GCM, 16)
        add(codes[1], f"TLS_{kx}_WITH_AES_256_GCM_SHA384", GCM, 32, "sha384")
    add(0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", CHACHA, 32)
    add(0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", CHACHA, 32)
    add(0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", CHACHA, 32)
    add(0xC09C, "TLS_RSA_WITH_AES_128_CCM", CCM, 16)
    add(0xC09D, "TLS_RSA_WITH_AES_256_CCM", CCM, 32)
    add(0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", CCM, 16)
    add(0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", CCM, 32)
    for kx, c128, c256 in (("RSA", 0x002F, 0x0035), ("DHE_RSA", 0x0033, 0x0039), ("ECDHE_RSA", 0xC013, 0xC014),
                           ("ECDHE_ECDSA", 0xC009, 0xC00A)):
        add(c128, f"TLS_{kx}_WITH_AES_128_CBC_SHA", CBC, 16, mac="sha1")
        add(c256, f"TLS_{kx}_WITH_AES_256_CBC_SHA", CBC, 32, mac="sha1")
    for kx, c128, c256 in (("RSA", 0x003C, 0x003D), ("DHE_RSA", 0x0067, 0x006B)):
        add(c128, f"TLS_{kx}_WITH_AES_128_CBC_SHA256", CBC, 16, mac="sha256")
        add(c256, f"TLS_{kx}_WITH_AES_256_CBC_SHA256", CBC, 32, mac="sha256")
    for kx, c128, c256 in (("ECDHE_RSA", 0xC027, 0xC028), ("ECDHE_ECDSA", 0xC023, 0xC024)):
        add(c128, f"TLS_{kx}_WITH_AES_128_CBC_SHA256", CBC, 16, mac="sha256")
        add(c256, f"TLS_{kx}_WITH_AES_256_CBC_SHA384", CBC, 32, "sha384", mac="sha384")
    return out


#: The cipher suites datareach decrypts, by code point.
SUITES: Final = _suites()


# --------------------------------------------------------------------------------------------
# Key derivation

def hkdf_expand(prk: bytes, info: bytes, length: int, hash_: str) -> bytes:
    """HKDF-Expand (RFC 5869)."""
    out = b""
    t = b""
    i = 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes((i,)), hash_).digest()
        out += t
        i += 1
    return out[:length]


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int, hash_: str) -> bytes:
    """TLS 1.3's HKDF-Expand-Label (RFC 8446 section 7.1); QUIC uses it with its own labels."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes((len(full),)) + full + bytes((len(context),)) + context
    return hkdf_expand(secret, info, length, hash_)


def next_traffic_secret(secret: bytes, hash_: str) -> bytes:
    """The traffic secret after a KeyUpdate (RFC 8446 section 7.2)."""
    return hkdf_expand_label(secret, b"traffic upd", b"", hashlib.new(hash_).digest_size, hash_)


def prf12(secret: bytes, label: bytes, seed: bytes, length: int, hash_: str) -> bytes:
    """The TLS 1.2 PRF: P_hash(secret, label + seed) (RFC 5246 section 5)."""
    seed = label + seed
    a = seed
    out = b""
    while len(out) < length:
        a = hmac.new(secret, a, hash_).digest()
        out += hmac.new(secret, a + seed, hash_).digest()
    return out[:length]


# --------------------------------------------------------------------------------------------
# Record decryption

def _aead(cipher: str, key: bytes) -> Any:
    if cipher == GCM:
        return AESGCM(key)
    if cipher == CHACHA:
        return ChaCha20Poly1305(key)
    return AESCCM(key, tag_length=8 if cipher == CCM8 else 16)


class RecordKey:
    """One direction's records under one key (sequence numbers from 0)."""

    __slots__ = ("_aead", "_iv", "_mac_key", "etm", "hash", "secret", "seq", "suite", "tls13")

    def __init__(self, suite: Suite, key: bytes, iv: bytes, mac_key: bytes = b"", *, tls13: bool,
                 etm: bool = False, secret: bytes = b"") -> None:
        self.suite = suite
        self.tls13 = tls13
        self.etm = etm
        self.seq = 0
        self.hash = suite.hash
        #: TLS 1.3: the traffic secret the key was derived from (for the next KeyUpdate)
        self.secret = secret
        self._iv = iv
        self._mac_key = mac_key
        self._aead = None if suite.cipher == CBC else _aead(suite.cipher, key)
        if suite.cipher == CBC:
            self._aead = key  # (a CBC decryptor is made per record: it carries the IV)

    @classmethod
    def tls13_from_secret(cls, suite: Suite, secret: bytes) -> RecordKey:
        key = hkdf_expand_label(secret, b"key", b"", suite.key_len, suite.hash)
        iv = hkdf_expand_label(secret, b"iv", b"", 12, suite.hash)
        return cls(suite, key, iv, tls13=True, secret=secret)

    def next_generation(self) -> RecordKey:
        """TLS 1.3: the key after a KeyUpdate."""
        return RecordKey.tls13_from_secret(self.suite, next_traffic_secret(self.secret, self.hash))

    def _nonce(self, seq: int) -> bytes:
        iv = self._iv
        s = seq.to_bytes(len(iv), "big")
        return bytes(a ^ b for a, b in zip(iv, s, strict=True))

    def decrypt(self, content_type: int, version: int, payload: bytes, ahead: int = 0) -> tuple[int, bytes] | None:
        """The record's (content type, plaintext), or None when it does not decrypt under this
        key at its next sequence number (the sequence number advances only on success).
        ``ahead``: try it as that many records after the next (records lost in a hole)."""
        saved = self.seq
        self.seq = saved + ahead
        try:
            out = self._decrypt13(payload) if self.tls13 else self._decrypt12(content_type, version, payload)
        except (InvalidTag, ValueError, TypeError, OverflowError):
            out = None
        if out is None:
            self.seq = saved
            return None
        self.seq += 1
        return out

    def _decrypt13(self, payload: bytes) -> tuple[int, bytes] | None:
        n = len(payload)
        aad = b"\x17\x03\x03" + n.to_bytes(2, "big")
        plain = self._aead.decrypt(self._nonce(self.seq), payload, aad)  # type: ignore[union-attr]
        # TLSInnerPlaintext: content, the real content type, then zero padding
        end = len(plain)
        while end and plain[end - 1] == 0:
            end -= 1
        if not end:
            return None
        return plain[end - 1], plain[: end - 1]

    def _decrypt12(self, ct: int, version: int, payload: bytes) -> tuple[int, bytes] | None:
        suite = self.suite
        seq = self.seq.to_bytes(8, "big")
        head = seq + bytes((ct, version >> 8, version & 0xFF))
        if suite.cipher == CBC:
            return self._cbc(ct, head, payload)
        if suite.cipher == CHACHA:
            n = len(payload) - 16
            if n < 0:
                return None
            nonce = self._nonce(self.seq)
            body = payload
        else:  # GCM and CCM: 8 bytes of explicit nonce before the ciphertext
            n = len(payload) - 8 - (8 if suite.cipher == CCM8 else 16)
            if n < 0:
                return None
            nonce = self._iv + payload[:8]
            body = payload[8:]
        plain = self._aead.decrypt(nonce, body, head + n.to_bytes(2, "big"))  # type: ignore[union-attr]
        return ct, plain

    def _cbc(self, ct: int, head: bytes, payload: bytes) -> tuple[int, bytes] | None:
        mac_len = self.suite.mac_len
        key = self._aead
        assert isinstance(key, bytes)
        if self.etm:  # RFC 7366: the MAC covers IV and ciphertext, and comes last
            if len(payload) < 32 + mac_len:
                return None
            enc, mac = payload[:-mac_len], payload[-mac_len:]
            want = hmac.new(self._mac_key, head + len(enc).to_bytes(2, "big") + enc, self.suite.mac_hash).digest()
            if not hmac.compare_digest(mac, want):
                return None
            plain = _cbc_decrypt(key, enc)
            pad = plain[-1]
            if pad + 1 > len(plain):
                return None
            return ct, plain[: len(plain) - pad - 1]
        if len(payload) < 32 or len(payload) % 16:
            return None
        plain = _cbc_decrypt(key, payload)
        pad = plain[-1]
        if pad + 1 + mac_len > len(plain):
            return None
        content_end = len(plain) - pad - 1 - mac_len
        content, mac = plain[:content_end], plain[content_end : content_end + mac_len]
        want = hmac.new(self._mac_key, head + content_end.to_bytes(2, "big") + content, self.suite.mac_hash).digest()
        if not hmac.compare_digest(mac, want):
            return None
        return ct, content


def _cbc_decrypt(key: bytes, data: bytes) -> bytes:
    """TLS 1.1+ CBC: the record's first block is its IV."""
    if len(data) < 32 or len(data) % 16:
        raise ValueError("not whole blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(data[:16])).decryptor()
    return dec.update(data[16:]) + dec.finalize()


def tls12_keys(suite: Suite, master: bytes, client_random: bytes, server_random: bytes,
               etm: bool = False) -> tuple[RecordKey, RecordKey]:
    """The client's and the server's record keys of a TLS 1.2 session."""
    mac, k, iv = suite.mac_len if suite.cipher == CBC else 0, suite.key_len, suite.fixed_iv
    block = prf12(master, b"key expansion", server_random + client_random, 2 * (mac + k + iv), suite.hash)
    cmac, smac = block[:mac], block[mac : 2 * mac]
    p = 2 * mac
    ckey, skey = block[p : p + k], block[p + k : p + 2 * k]
    p += 2 * k
    civ, siv = block[p : p + iv], block[p + iv : p + 2 * iv]
    etm = etm and suite.cipher == CBC
    return (RecordKey(suite, ckey, civ, cmac, tls13=False, etm=etm),
            RecordKey(suite, skey, siv, smac, tls13=False, etm=etm))
