"""Captured text made safe to print on a terminal."""

from __future__ import annotations

__all__ = ["safe"]


def safe(text: object) -> str:
    """Captured text for a terminal: control and other non-printable characters escaped."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in s)
