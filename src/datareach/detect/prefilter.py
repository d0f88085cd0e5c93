"""One pass over the raw request that says which detectors can find anything in which layers.

Detection runs per layer, and most layers of most requests hold nothing: a timestamp, a version
string, a session token. :class:`Prefilter` looks at the request *as received* once -- the URL
and target, every header value, the body (with, where it holds ``%`` or ``+``, its
percent-decoded forms) -- for the anchors without which a pattern family or a profile value
cannot match, and :meth:`RequestGate.families_for` then tells, per layer, which pattern families
are worth running there.

Soundness (a property test checks it: the gated detector finds exactly what the ungated one
finds, on generated requests carrying profile values in random encodings):

* A layer is **literal** when its value is, byte for byte, a piece of the raw request or of its
  percent-decoded form: its encoding chain is made of structural splits only (``path[I]``,
  ``query``, ``query NAME``, ``header NAME``, ``cookie NAME``, ``body`` without a
  Content-Encoding, ``form NAME``, ``multipart NAME``, ``line[I]``, an uncompressed ``grpc[I]``,
  ``json PATH``) and at most one ``percent``. JSON values count only when the request holds no
  backslash (``\\u0040`` is an ``@`` once parsed) and the value is not a float (``repr`` may
  print a number otherwise than it was sent: ``1e14`` -> ``100000000000000.0``). Anything
  decoded otherwise (base64, hex, JWT, compressed, protobuf, a compressed body) is **opaque**:
  every family runs there, as before.
* A family is skipped on a literal layer only when its anchor is absent from the raw request
  and from its percent-decoded forms. Anchors are supersets of what the detectors look for
  (a superset only costs a useless run), without context (no look-around), so a layer's match
  is a raw match:

  ========================  ======================================================================
  ``email``                 ``@``
  ``phone``                 ``+`` (international numbers; national ones need a key, and keyed
                            detectors always run)
  ``imei``                  ``DD[- ]?DDDDDD[- ]?DDDDDD[- ]?D``
  ``mac``                   six hex pairs separated by ``:`` or ``-``
  ``private_ip``            ``1(0|72|92|69).D.D.D`` or ``f[cd]H*:`` / ``fe[89ab]H*:`` (any case)
  ``known``                 any needle of the profile (the matcher's own database, no boundary
                            rule)
  ========================  ======================================================================

The detectors that need a key (phone numbers under phone keys, advertising IDs, SSIDs...), and
the request-level ones (device fingerprints, latitude/longitude fields), always run: they read
keys, which an anchor in the value does not predict.

Engines: with Hyperscan (x86-64) the anchors are one block-mode database, each pattern reported
once (``HS_FLAG_SINGLEMATCH``); elsewhere the same regular expressions run with :mod:`re` (and
the single-byte anchors are ``in`` tests), with the same answers. The profile's needles go
through :class:`~datareach.detect.matcher.Matcher` (Hyperscan or ahocorasick-rs).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from datareach.detect.decode import _s2b
from datareach.detect.matcher import HAVE_HYPERSCAN, Matcher
from datareach.detect.types import Layer
from datareach.schema import Exchange

__all__ = ["FAMILIES", "Prefilter", "RequestGate"]

#: The pattern families the gate decides on (names used by :func:`~.patterns.detect_patterns`).
FAMILIES: frozenset[str] = frozenset({"email", "phone", "imei", "mac", "private_ip"})

#: (family, regular expression, caseless) of the anchors (one Hyperscan database).
_REGEX_ANCHORS: tuple[tuple[str, bytes, bool], ...] = (
    ("email", rb"@", False),
    ("phone", rb"\+", False),
    ("imei", rb"[0-9]{2}[- ]?[0-9]{6}[- ]?[0-9]{6}[- ]?[0-9]", False),
    ("mac", rb"[0-9A-Fa-f]{2}[:\-][0-9A-Fa-f]{2}[:\-][0-9A-Fa-f]{2}[:\-][0-9A-Fa-f]{2}[:\-][0-9A-Fa-f]{2}"
            rb"[:\-][0-9A-Fa-f]{2}", False),
    ("private_ip", rb"1(?:0|72|92|69)\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]", False),
    ("private_ip", rb"(?:f[cd]|fe[89ab])[0-9a-f]{0,2}:", True),
)

#: Labels of a literal chain (structural splits); ``percent`` is allowed once, separately.
_LITERAL_LABEL = re.compile(
    r"(?:path\[\d+\]|query|query .*|query\[\d+\]|header .*|cookie .*|body|form .*|line\[\d+\]"
    r"|grpc\[\d+\]|json .*|multipart (?!.* filename\Z).*)\Z", re.S)
#: What ``repr`` of a float looks like (a JSON number that was not an integer).
_FLOATISH = re.compile(rb"-?(?:[0-9]+\.[0-9]+(?:e[-+]?[0-9]+)?|[0-9]+e[-+]?[0-9]+|inf|nan)")
_CACHE_MAX = 1 << 14




def raw_texts(ex: Exchange) -> list[bytes]:
    """The request as received (URL, target, header values, body), and, where it holds ``%`` or
    ``+``, its percent-decoded forms (``+`` kept, and ``+`` read as a space)."""
    parts = [_s2b(ex.url), _s2b(ex.target)]
    parts += [_s2b(value) for _name, value in ex.request_headers]
    if ex.request_body:
        parts.append(ex.request_body)
    raw = b"\n".join(parts)
    out = [raw]
    if b"%" in raw:
        out.append(unquote_to_bytes(raw))
    if b"+" in raw:
        out.append(unquote_to_bytes(raw.replace(b"+", b" ")))
    return out


class _ByteAnchor:
    __slots__ = ("byte",)

    def __init__(self, byte: bytes) -> None:
        self.byte = byte

    def search(self, text: bytes) -> bool | None:
        return True if self.byte in text else None


def _on_match(index: int, start: int, end: int, flags: int, context: Any) -> None:
    context.add(index)


@dataclass(slots=True)
class RequestGate:
    """What the prefilter found in one request: the pattern families whose anchor occurs
    (``families``), whether any profile needle occurs (``known``), and whether JSON values can
    be literal (no backslash)."""

    families: frozenset[str]
    known: bool
    json_literal: bool
    _literal: dict[tuple[str, ...], int]
    #: every family's anchor occurs: no layer is spared
    every: bool = False
    _flags: tuple[Sequence[Layer], int, list[bool]] | None = None

    @property
    def spares_nothing(self) -> bool:
        """Every family's anchor and some needle occur: every layer is looked at anyway."""
        return self.every and self.known

    def literal(self, layer: Layer) -> bool:
        """Whether the layer's value is a piece of the raw request (or of its percent-decoded
        form), so that what is absent there is absent from it."""
        return self.literal_flags([layer])[0]

    def literal_flags(self, layers: Sequence[Layer]) -> list[bool]:
        """:meth:`literal` of each layer, in one pass (the chains' classes are cached; the
        answer for the request's layer list is kept for the next detector that asks)."""
        memo = self._flags
        if memo is not None and memo[0] is layers and memo[1] == len(layers):
            return memo[2]
        cache = self._literal
        codes = [cache.get(layer.encoding) for layer in layers]
        if None in codes:
            for n, code in enumerate(codes):
                if code is None:
                    enc = layers[n].encoding
                    # a chain that starts opaque (a compressed body...) is opaque whatever its
                    # labels (field names) after: one look-up for all of them
                    if enc and cache.get(enc[:1]) == _OPAQUE:
                        codes[n] = _OPAQUE
                        continue
                    codes[n] = code = _chain_code(enc)
                    if len(cache) >= _CACHE_MAX:
                        cache.clear()
                    cache[enc] = code
                    if code == _OPAQUE and enc and _chain_code(enc[:1]) == _OPAQUE:
                        cache[enc[:1]] = _OPAQUE
        if _HAS_JSON not in codes and _JSON_VALUE not in codes:
            out = [code == _LITERAL for code in codes]
        else:
            json_literal = self.json_literal
            out = []
            for layer, code in zip(layers, codes, strict=True):
                if code == _OPAQUE:
                    out.append(False)
                elif code == _LITERAL:
                    out.append(True)
                elif code == _HAS_JSON:
                    out.append(json_literal)
                else:  # a JSON value: a float's repr may differ from the number as sent
                    out.append(json_literal and _FLOATISH.fullmatch(layer.value) is None)
        self._flags = (layers, len(layers), out)
        return out

    def families_for(self, layer: Layer) -> frozenset[str] | None:
        """The pattern families that can match in the layer (None: all)."""
        if self.every:
            return None
        return self.families if self.literal(layer) else None


# classes of encoding chains
_OPAQUE, _LITERAL, _HAS_JSON, _JSON_VALUE = range(4)


def _chain_code(enc: tuple[str, ...]) -> int:
    percent = 0
    for label in enc:
        if label == "percent":
            percent += 1
            if percent > 1:
                return _OPAQUE
        elif _LITERAL_LABEL.match(label) is None:
            return _OPAQUE
    if not enc:
        return _OPAQUE
    if enc[-1].startswith("json "):
        return _JSON_VALUE
    return _HAS_JSON if any(e.startswith("json ") for e in enc) else _LITERAL


class Prefilter:
    """Built once per audit (with the known-value matcher, if any); :meth:`scan` one request."""

    def __init__(self, matcher: Matcher | None = None, engine: str = "auto") -> None:
        self.matcher = matcher
        self._db: Any = None
        self._local = threading.local()
        self._ids: list[str] = [family for family, _, _ in _REGEX_ANCHORS]
        # the chain classification is shared by the requests of the audit (labels repeat)
        self._literal: dict[tuple[str, ...], int] = {}
        if engine in ("auto", "hyperscan") and HAVE_HYPERSCAN:
            import hyperscan as hs

            try:
                db = hs.Database(mode=hs.HS_MODE_BLOCK)
                expressions = [rx for _, rx, _ in _REGEX_ANCHORS]
                flags = [hs.HS_FLAG_SINGLEMATCH | (hs.HS_FLAG_CASELESS if caseless else 0)
                         for _, _, caseless in _REGEX_ANCHORS]
                ids = list(range(len(_REGEX_ANCHORS)))
                # (the profile's needles stay in the matcher's own literal database, scanned
                # once more: compiled again here as escaped expressions they took 0.1 s more
                # to build, in every reader process, for ~1 us per request)
                db.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=flags)
                self._db = db
            except hs.error:  # the portable path gives the same answers
                self._db = None
        self.engine = "hyperscan" if self._db is not None else "portable"
        # the portable path: single bytes as ``in`` tests, the others with re
        self._regexes = [(family, _ByteAnchor(rx[-1:]) if len(rx) <= 2 else re.compile(rx, re.I if caseless else 0))
                         for family, rx, caseless in _REGEX_ANCHORS]
        self.requests = 0
        #: requests in which no family and no needle can match (literal layers skip everything)
        self.empty = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"matcher": self.matcher, "engine": self.engine}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["matcher"], state["engine"])  # type: ignore[misc]

    def _regex_families(self, text: bytes) -> set[str]:
        found: set[str] = set()
        if self._db is not None:
            hits: set[int] = set()
            scratch = getattr(self._local, "scratch", None)
            if scratch is None:  # one per thread, as the matcher's
                import hyperscan as hs

                scratch = self._local.scratch = hs.Scratch(self._db)
            self._db.scan(text, match_event_handler=_on_match, context=hits, scratch=scratch)
            for i in hits:
                found.add(self._ids[i])
            return found
        for family, rx in self._regexes:
            if family not in found and rx.search(text) is not None:
                found.add(family)
        return found

    def scan(self, ex: Exchange) -> RequestGate:
        texts = raw_texts(ex)
        families: set[str] = set()
        known = False
        backslash = False
        matcher = self.matcher
        for text in texts:
            families |= self._regex_families(text)
            if not known and matcher is not None and matcher.any_match(text):
                known = True
            backslash = backslash or b"\\" in text
        self.requests += 1
        if not families and not known:
            self.empty += 1
        return RequestGate(frozenset(families), known, not backslash, self._literal, families >= FAMILIES)


