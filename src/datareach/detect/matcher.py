"""Looking for all the needles of :func:`~datareach.detect.known.profile_forms` at once.

Two engines give the same answers:

``hyperscan``
    Intel's Hyperscan (x86-64 only): all needles compiled into one block-mode database of
    literals, scanned once per layer with a scratch space per thread. Gigabytes per second.
``portable``
    :class:`ahocorasick_rs.BytesAhoCorasick` (Rust), overlapping matches: hundreds of MB/s,
    everywhere.

Both report every occurrence of every needle, overlapping ones included, as
``(form index, end offset)``, sorted. Identical needles are compiled once and reported for each
of their forms; an empty needle never matches.

The boundary rule (:func:`boundary_class`, applied in :meth:`Matcher.scan` and nowhere else):
a needle made only of digits (optionally after one leading ``+``), or only of hex digits, must
not be embedded in a longer run of its class. Its match is dropped when the byte just before it
(checked only when the needle itself begins with a byte of the class, so not for ``+44...``) or
just after it is a digit -- for a digit needle -- or a hex digit (either case) -- for a hex
needle. So a phone number's digits do not match inside a longer number, nor an MD5 inside a
SHA-256, nor a MAC address inside a longer hex string. Other needles (emails, base64,
coordinates) match anywhere: a truncated coordinate is meant to be found as the prefix of a
more precise one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from datareach.detect.known import Form
from datareach.detect.types import Layer

try:
    import hyperscan as _hs

    HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover - hyperscan has wheels for x86-64 only
    HAVE_HYPERSCAN = False

try:
    import ahocorasick_rs as _ac

    HAVE_AHOCORASICK = True
except ImportError:  # pragma: no cover
    HAVE_AHOCORASICK = False

ENGINES = ("auto", "hyperscan", "portable")

_DIGITS = frozenset(b"0123456789")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")

#: Above this many needle bytes the portable engine builds an NFA instead of a DFA (memory).
_DFA_LIMIT = 4 << 20


def boundary_class(needle: bytes) -> frozenset[int] | None:
    """The byte class a match of ``needle`` must not be embedded in, or None (no rule):
    digits for an all-digit needle (one leading ``+`` allowed), hex digits for an all-hex one."""
    core = needle[1:] if needle.startswith(b"+") else needle
    if core and _DIGITS.issuperset(core):
        return _DIGITS
    if needle and _HEX_DIGITS.issuperset(needle):
        return _HEX_DIGITS
    return None


def _on_match(index: int, start: int, end: int, flags: int, context: Any) -> None:
    context.append((index, end))


class Matcher:
    """All forms at once: ``scan`` gives every match, ``scan_layers`` each (layer, form) found.

    ``engine`` is ``"hyperscan"``, ``"portable"`` or ``"auto"`` (Hyperscan when it can be
    imported and compiles on this CPU, else portable); the attribute ``engine`` says which one
    is in use. A Matcher may be shared by threads, and pickled (it is rebuilt from its forms).
    """

    engine: str

    def __init__(self, forms: Sequence[Form], engine: str = "auto") -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown matcher engine {engine!r} (known: {', '.join(ENGINES)})")
        self.forms: list[Form] = list(forms)
        self._requested = engine
        # identical needles are compiled once: unique needle -> the forms that have it
        unique: dict[bytes, list[int]] = {}
        for i, form in enumerate(self.forms):
            if form.needle:
                unique.setdefault(form.needle, []).append(i)
        self._needles: list[bytes] = list(unique)
        self._forms_of: list[tuple[int, ...]] = [tuple(v) for v in unique.values()]
        self._classes: list[frozenset[int] | None] = [boundary_class(n) for n in self._needles]
        self._check_start: list[bool] = [
            c is not None and n[0] in c for n, c in zip(self._needles, self._classes, strict=True)
        ]
        self._local = threading.local()
        self._db: Any = None
        self._ac: Any = None
        if engine == "hyperscan" and not HAVE_HYPERSCAN:
            raise RuntimeError("the hyperscan engine was asked for, but hyperscan cannot be imported")
        if engine in ("auto", "hyperscan") and HAVE_HYPERSCAN:
            try:
                self._db = self._compile_hyperscan()
                self.engine = "hyperscan"
                return
            except _hs.error:
                if engine == "hyperscan":
                    raise
        if not HAVE_AHOCORASICK:
            raise RuntimeError("the portable matcher needs the ahocorasick-rs package")
        self.engine = "portable"
        if self._needles:
            big = sum(map(len, self._needles)) > _DFA_LIMIT
            self._ac = _ac.BytesAhoCorasick(
                self._needles,
                matchkind=_ac.MatchKind.Standard,
                implementation=None if big else _ac.Implementation.DFA,
            )

    def _compile_hyperscan(self) -> Any:
        if not self._needles:
            return None
        db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        n = len(self._needles)
        if any(b"\0" in needle for needle in self._needles):
            # python-hyperscan 0.9 passes literals to hs_compile_lit_multi with strlen(), which
            # cuts them at a NUL byte: such sets go through the regex compiler instead, every
            # byte escaped (Hyperscan recognises the literals; same speed).
            escaped = [b"".join(b"\\x%02x" % c for c in needle) for needle in self._needles]
            db.compile(expressions=escaped, ids=list(range(n)), elements=n, flags=0)
        else:
            db.compile(expressions=self._needles, ids=list(range(n)), elements=n, flags=0, literal=True)
        return db

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = _hs.Scratch(self._db)
        return scratch

    def _raw_matches(self, data: bytes) -> list[tuple[int, int]]:
        """(unique needle index, end offset) of every occurrence, boundary rule not applied."""
        if not data:
            return []
        if self._db is not None:
            out: list[tuple[int, int]] = []
            self._db.scan(data, match_event_handler=_on_match, context=out, scratch=self._scratch())
            return out
        if self._ac is not None:
            return [(i, end) for i, _, end in self._ac.find_matches_as_indexes(data, overlapping=True)]
        return []

    def any_match(self, data: bytes) -> bool:
        """Whether any needle occurs in ``data`` (boundary rule not applied: a superset)."""
        return bool(self._raw_matches(data))

    def scan(self, data: bytes) -> list[tuple[int, int]]:
        """(form index, end offset) of every match in ``data``, sorted, boundary rule applied."""
        size = len(data)
        result: list[tuple[int, int]] = []
        classes, check_start, needles, forms_of = (
            self._classes, self._check_start, self._needles, self._forms_of)
        for u, end in self._raw_matches(data):
            cls = classes[u]
            if cls is not None:
                if end < size and data[end] in cls:
                    continue
                start = end - len(needles[u])
                if check_start[u] and start > 0 and data[start - 1] in cls:
                    continue
            for i in forms_of[u]:
                result.append((i, end))
        result.sort(key=lambda m: (m[1], m[0]))
        return result

    def scan_layers(self, layers: Sequence[Layer], skip: Sequence[bool] | None = None
                    ) -> list[tuple[Layer, Form]]:
        """Each (layer, form) whose needle is in the layer's value, once, in the order of the
        layers and, within a layer, of the first match. ``skip``: one flag per layer, True for
        those known to hold no needle (the prefilter's answer): they are not scanned."""
        found: list[tuple[Layer, Form]] = []
        for n, layer in enumerate(layers):
            if skip is not None and skip[n]:
                continue
            seen: set[int] = set()
            for i, _ in self.scan(layer.value):
                if i not in seen:
                    seen.add(i)
                    found.append((layer, self.forms[i]))
        return found

    def __getstate__(self) -> dict[str, Any]:
        return {"forms": self.forms, "engine": self._requested}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["forms"], state["engine"])  # type: ignore[misc]
