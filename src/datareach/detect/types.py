"""The records of the detect stage: decoded layers of a request, and findings.

A request (:class:`~datareach.schema.Exchange`) is taken apart by :mod:`.decode` into
:class:`Layer` objects: every piece of it (URL path segment, query parameter, header, cookie,
form field, JSON value, decoded base64...) with the chain of encodings that led to it. The
detectors -- known values from the user's profile (:mod:`.known`) and patterns (:mod:`.patterns`)
-- look at the layers and produce :class:`Finding` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The pattern detectors' names for data that the profile names otherwise: a finding has one
#: name for one kind of data, whichever detector found it (its ``source`` says which), so that a
#: policy on ``data_types = ["location"]`` also meets coordinates found by their form. Policies
#: may still use the old names (aliases).
CANONICAL_DATA_TYPES: dict[str, str] = {"precise_location": "location", "mac_address": "mac"}


def canonical_data_type(name: str) -> str:
    """The one name of a kind of data (``precise_location`` is ``location``, ``mac_address`` is ``mac``)."""
    return CANONICAL_DATA_TYPES.get(name, name)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on decoding, against decompression bombs and pathological documents."""

    #: largest decoded value kept for one layer (bytes)
    max_layer_bytes: int = 8 << 20
    #: decoded bytes produced for one request, all layers together
    max_total_bytes: int = 64 << 20
    #: largest decompressed/compressed ratio accepted from one content encoding
    max_ratio: int = 200
    #: how many decodings may be stacked (gzip > json > base64 > json ... counts each)
    max_depth: int = 8
    #: JSON/form/protobuf items walked in one request
    max_items: int = 200_000
    #: layers produced for one request
    max_layers: int = 100_000
    #: candidate findings (profile matches and pattern hits, before they are weighed against
    #: each other) kept for one request; past it the request's other matches are not looked at
    #: (a decode cut says where)
    max_matches: int = 10_000


@dataclass(frozen=True, slots=True)
class Layer:
    """One decoded piece of a request.

    ``encoding`` lists how it was reached, outermost first, e.g.
    ``("body(gzip)", "json $.events[3].ctx", "base64")``; ``location`` is the part of the request
    it came from, in words (``"query gaid"``, ``"header x-device"``, ``"body"``, ``"path[2]"``,
    ``"cookie sid"``). ``key`` is the name the value was found under, where it had one (the
    query parameter, JSON key, form field, header or cookie name): pattern detectors weigh it.
    """

    location: str
    encoding: tuple[str, ...]
    key: str | None
    value: bytes


@dataclass(slots=True)
class Decoded:
    """All layers of one request, and what the limits cut (reported, never silent)."""

    layers: list[Layer] = field(default_factory=list)
    cuts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Finding:
    """Personal data found in one request.

    ``data_type`` is the profile key (``email``, ``advertising_id``...) or the pattern detector's
    name; ``source`` is ``"profile"`` or ``"pattern"``. ``value`` is the matched value itself,
    kept only in memory: reports show ``value_redacted`` unless the user asks to reveal it.
    """

    data_type: str
    source: str
    categories: list[str]
    encoding: list[str]
    location: str
    value: str
    value_redacted: str
    confidence: float
