"""Captured text made inert: printable for a terminal (:func:`safe`), and JSON text without the
raw characters JSON allows but a terminal or a text viewer acts on (:func:`inert_json`).

Every string in an audit can come from the input (host names from DNS, TLS and HTTP; app names
from a PCAPdroid trailer or a HAR; URLs, header values, error messages that quote them; file
names; the documents ``datareach diff`` is handed). A terminal acts on some of their characters:
``ESC [2J`` clears the screen, ``ESC [8m`` hides what follows, ``ESC ]8;;URL`` makes a link,
the C1 control U+009B is a CSI of its own, U+202E reverses the text after it. So every report
for a terminal passes each such string through :func:`safe`, and every JSON text written for
output through :func:`inert_json`.
"""

from __future__ import annotations

import re

__all__ = ["CONTROL_CHARS", "CONTROL_RANGES", "inert_json", "safe"]


def _escape(cp: int) -> str:
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


#: Characters remembered by the translate table at most (every code point would be ~100 MB).
_TABLE_LIMIT = 1 << 16


class _Table(dict[int, str]):
    """:meth:`str.translate`'s table for :func:`safe`, filled as characters are met: a character
    is itself when :meth:`str.isprintable` says so, else its escape. Exact by construction (the
    running Python's Unicode data decides), and bounded."""

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        out = ch if ch.isprintable() else _escape(cp)
        if len(self) < _TABLE_LIMIT:
            self[cp] = out
        return out


_TABLE = _Table()
_TABLE.update((cp, _TABLE.__missing__(cp)) for cp in range(0x100))  # C0, ASCII, DEL, C1, Latin-1


def safe(text: object) -> str:
    """``str(text)`` with every character that :meth:`str.isprintable` calls non-printable
    written as an escape: ``\\xNN`` below U+0100, ``\\uNNNN`` in the BMP, ``\\UNNNNNNNN`` above.

    Non-printable are the control characters (C0 and line breaks included, DEL, C1), the format
    characters (bidi embeddings, overrides, isolates and marks, zero-width characters, soft
    hyphen, tags), line and paragraph separators, spaces other than U+0020, surrogates, private
    use and unassigned code points. Printable text, non-ASCII included, is returned as it is (the
    same object when ``text`` is a printable ``str``), so the result is always printable and
    ``safe`` is the identity on printable text. Backslashes are not escaped: the escapes are for
    reading, not for decoding back.
    """
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():
        return s
    return s.translate(_TABLE)


# ------------------------------------------------------------------------------------------
# Control and format characters past ASCII's C0

#: Every control, format, line separator and paragraph separator character (Unicode categories
#: Cc, Cf, Zl, Zp) past ASCII's C0 (which JSON escapes itself): what JSON and HTML leave raw but
#: a terminal or a text renderer acts on. Among them DEL, C1 (U+0080-U+009F: U+009B is a CSI),
#: the soft hyphen, the Arabic letter mark U+061C, the zero-width characters and bidi marks
#: U+200B-U+200F, U+2028-U+202E (separators, bidi embeddings and overrides), U+2060-U+206F (word
#: joiner, invisible operators, bidi isolates), U+FEFF, U+FFF9-U+FFFB, and the invisible tag
#: characters U+E0000-U+E007F. A test checks the list against the running Python's Unicode data.
CONTROL_RANGES: tuple[tuple[int, int], ...] = (
    (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD),
    (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F),
    (0x2028, 0x202E), (0x2060, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE007F),
)


def _utf8_pattern(ranges: tuple[tuple[int, int], ...]) -> re.Pattern[bytes]:
    """A bytes pattern matching the UTF-8 encoding of every code point in ``ranges``: one
    branch per leading bytes, with a class of the last byte."""
    tails: dict[bytes, list[int]] = {}
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            raw = chr(cp).encode("utf-8")
            tails.setdefault(raw[:-1], []).append(raw[-1])
    branches = []
    for head, last in tails.items():
        cls = b"".join(re.escape(bytes([b])) for b in sorted(last))
        branches.append(re.escape(head) + (b"[" + cls + b"]" if len(last) > 1 else cls))
    return re.compile(b"|".join(branches))


_JSON_RAW = _utf8_pattern(CONTROL_RANGES)

#: C0 but tab, line feed and carriage return, and :data:`CONTROL_RANGES`, as a ``str`` pattern:
#: for formats that keep line breaks and escape the rest their own way (HTML).
CONTROL_CHARS: re.Pattern[str] = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f"
    + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" if hi > lo else re.escape(chr(lo))
              for lo, hi in CONTROL_RANGES) + "]")


def _json_escape(m: re.Match[bytes]) -> bytes:
    cp = ord(m.group().decode("utf-8"))
    if cp < 0x10000:
        return b"\\u%04x" % cp
    cp -= 0x10000
    return b"\\u%04x\\u%04x" % (0xD800 | cp >> 10, 0xDC00 | cp & 0x3FF)


def inert_json(data: bytes) -> bytes:
    """JSON text (UTF-8, as :func:`orjson.dumps` writes it) with the characters of
    :data:`CONTROL_RANGES` written as ``\\uXXXX`` escapes (a surrogate pair above the BMP).

    The result is valid JSON of the same value; it is pure ASCII wherever the input held such a
    character, so a terminal, pager or editor showing it acts on nothing. In valid JSON these
    characters can only be inside strings, so the rewrite never touches the structure. Clean text
    costs one search (ASCII text a scan of its bytes), and the very same object is returned.
    """
    if data.isascii() and b"\x7f" not in data:  # (of the characters, ASCII has DEL only)
        return data
    if _JSON_RAW.search(data) is None:
        return data
    return _JSON_RAW.sub(_json_escape, data)
