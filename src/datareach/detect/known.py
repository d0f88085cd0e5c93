"""Every form in which the profile's own values may travel: the needles of the known-value search.

:func:`profile_forms` turns each value of a :class:`~datareach.detect.profile.Profile` into the
byte strings an app may send in its place -- reformatted, re-cased, percent-, base64- or
hex-encoded, hashed -- each as a :class:`Form` that says which profile value it stands for and
how it was made from it (``transform``). :mod:`.matcher` then looks for all of them at once.

The transform vocabulary (``X`` stands for an inner transform, ``N`` for a normalised value,
``H`` for a hash name: ``md5``, ``sha1``, ``sha224``, ``sha256``, ``sha512``):

Text forms
    ``as is``; ``lower``; ``upper``; ``no separators`` (with ``, lower`` / ``, upper``);
    MAC addresses: ``colons, lower|upper``, ``dashes, lower|upper``,
    ``no separators, lower|upper``, ``Cisco dots, lower|upper`` (``3c5a.b401.0203``);
    IMEI: ``digits``, ``with spaces`` (``49 015420 323751 8``), ``with dashes``;
    phone numbers (parsed with :mod:`phonenumbers`): ``e164`` (``+447700900123``),
    ``e164 without +``, ``00 + e164 digits``, ``international`` (``+44 7700 900123``),
    ``international with dashes`` (``+44-7700-900123``), ``national`` (``07700 900123``),
    ``national digits`` (``07700900123``), ``national number`` (``7700900123``);
    IP addresses: ``compressed``/``exploded`` (IPv6, ``, upper`` too), ``as integer`` and
    ``hex of address`` (``, upper`` too) of an IPv4 address;
    names with a space: ``no separators``.
Encodings of a text form
    ``percent`` / ``percent(X)`` (RFC 3986, upper-case escapes), ``percent lower-case`` /
    ``percent lower-case(X)``, ``form-encoded`` / ``form-encoded(X)`` (``+`` for a space);
    each only where it differs from the text.
Encodings of the value as is and of its normalised forms
    ``base64`` / ``base64(N)``, ``base64url`` / ``base64url(N)``, ``hex`` / ``hex(N)``,
    ``hex upper`` / ``hex upper(N)``. A base64 needle is the encoding *without* its ``=``
    padding: the padded text starts with it, so one needle finds padded and unpadded alike.
Binary forms
    ``raw bytes`` (the 6 bytes of a MAC address, the 16 of a UUID or IPv6 address, the 8 of an
    Android ID) and ``base64(raw bytes)``, ``base64url(raw bytes)``: protobuf and other binary
    bodies carry them so.
Hashes of a normalised value
    ``H(N)`` (hex, lower case), ``H(N) upper``, ``H(N) base64`` and ``H(N) base64url`` (of the
    digest itself, unpadded as above), where ``N`` is, by data type:

    * email: ``lower(email)`` (trimmed, lower case) and, for Gmail addresses,
      ``canonical gmail(email)`` (no dots or ``+tag`` in the local part);
    * phone: ``digits(phone)`` (E.164 digits without ``+``) and ``e164(phone)`` (with ``+``);
    * MAC: ``lower(mac) without separators`` and ``lower(mac) with colons``;
    * advertising ID (and any UUID-shaped value): ``lower(advertising_id)`` and
      ``upper(advertising_id)``, both with dashes;
    * IMEI: ``digits(imei)``;
    * name: ``lower(name)``, ``lower(first name)``, ``lower(last name)`` (as the
      "advanced matching" APIs of ad networks hash them);
    * anything else: the value as is (``H(serial)``) and ``lower(...)`` of it where that differs.
Coordinates (data type ``location``)
    ``LAYOUT @P decimals`` (rounded), ``LAYOUT @P decimals truncated`` (towards zero),
    ``LAYOUT @P decimals floored`` (negative coordinates only), each also
    ``..., no trailing zeros`` (as JSON serialisers print numbers), for every precision ``P``
    from the profile's (the more precise of its latitude and longitude) down to 3 decimals,
    and these layouts:

    * pairs of bare numbers: ``lat,lng``, ``lat, lng``, ``lng,lat`` and ``lng, lat`` (the
      GeoJSON order, ``[lng,lat]``, matched without its brackets so that ``[lng,lat,alt]`` is
      found too);
    * one coordinate under its key -- ``"K":X``, ``"K": X``, ``"K":"X"`` and ``K=X`` for
      ``K`` in ``lat``, ``latitude`` (latitude) and ``lng``, ``lon``, ``longitude``
      (longitude) -- so that the partner key may come in either order or further away, and a
      value sent with more decimals than the profile's is still found (the needle is a
      prefix of it).

    A bare coordinate on its own is not a needle: a number like ``2.294`` is everywhere.
    "Rounded" covers both rounding of the float as stored (what ``printf``, Python and
    JavaScript do) and half-up rounding of the decimal the user wrote.

Every needle shorter than :data:`MIN_NEEDLE` (6) bytes is dropped: short needles (a 4-digit
number, an IPv4 address as 4 raw bytes, a short name) match by chance far too often. Needles
are deduplicated: when two forms give the same bytes, the one generated first is kept, and the
generation order is the order of informativeness -- named formats (``e164``, ``colons, lower``)
before ``as is``, text before encodings, encodings before hashes, the first data type of the
profile before later ones.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from urllib.parse import quote, quote_plus

import phonenumbers

from datareach.detect.profile import Profile

#: Needles shorter than this many bytes are dropped (see the module docstring).
MIN_NEEDLE = 6

#: The hash functions applied to normalised values, in the order their forms are generated.
HASHES = ("md5", "sha1", "sha224", "sha256", "sha512")

#: Coordinates are given down to this many decimals (about 110 m of latitude).
MIN_DECIMALS = 3

#: Pair layouts of bare numbers: (label, template) with ``{lat}`` and ``{lng}``.
PAIR_LAYOUTS: tuple[tuple[str, str], ...] = (
    ("lat,lng", "{lat},{lng}"),
    ("lat, lng", "{lat}, {lng}"),
    ("lng,lat", "{lng},{lat}"),
    ("lng, lat", "{lng}, {lat}"),
)

#: Keys a latitude and a longitude are sent under.
LAT_KEYS = ("lat", "latitude")
LNG_KEYS = ("lng", "lon", "longitude")

#: Layouts of one coordinate under its key: (label, template) with ``{k}`` and ``{x}``.
KEYED_LAYOUTS: tuple[tuple[str, str], ...] = (
    ('"{k}":X', '"{k}":{x}'),
    ('"{k}": X', '"{k}": {x}'),
    ('"{k}":"X"', '"{k}":"{x}"'),
    ("{k}=X", "{k}={x}"),
)


@dataclass(frozen=True, slots=True)
class Form:
    """One needle: ``needle`` is what is looked for, ``data_type`` the profile key (``email``,
    ``location``, a custom name...) and ``transform`` how the value was turned into the needle,
    in the vocabulary of the module docstring."""

    needle: bytes
    data_type: str
    transform: str
    #: the profile's value the needle was made from (a key may hold several values)
    value: str = field(default="", compare=False)


# A value's forms before the common encodings are applied.
@dataclass
class _Shapes:
    #: (label, text) of every text form, the most informative first
    texts: list[tuple[str, str]]
    #: (label, text) of the normalised values that are hashed and encoded
    normalised: list[tuple[str, str]]
    #: (label, bytes) of binary forms
    raw: list[tuple[str, bytes]]
    #: (label, text) of values that are hashed only, never sent as text (parts of a name)
    hashed_only: list[tuple[str, str]] = field(default_factory=list)


_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_MAC = re.compile(r"[0-9a-fA-F]{2}([:\-. ]?[0-9a-fA-F]{2}){5}|[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}")
# shapes that make a value of another data type (a custom one) be treated as a UUID or a MAC
_UUID_SHAPE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MAC_SHAPE = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def _wrap(op: str, inner: str) -> str:
    """``op`` applied to the form ``inner``: ``op`` alone when ``inner`` is the value as is."""
    return op if inner == "as is" else f"{op}({inner})"


def _b64(data: bytes) -> tuple[bytes, bytes]:
    """Standard and URL-safe base64 of ``data``, without padding."""
    std = base64.b64encode(data).rstrip(b"=")
    return std, std.replace(b"+", b"-").replace(b"/", b"_")


def _generic(data_type: str, value: str) -> _Shapes:
    texts = [("as is", value), ("lower", value.lower()), ("upper", value.upper())]
    normalised = [(data_type, value)]
    if value.lower() != value:
        normalised.append((f"lower({data_type})", value.lower()))
    return _Shapes(texts, normalised, [])


def _email(data_type: str, value: str) -> _Shapes:
    low = value.strip().lower()
    shapes = _Shapes([("as is", value), ("lower", low), ("upper", value.upper())],
                     [(f"lower({data_type})", low)], [])
    local, _, domain = low.rpartition("@")
    if domain in ("gmail.com", "googlemail.com"):
        canonical = local.split("+", 1)[0].replace(".", "") + "@gmail.com"
        if canonical != low:
            shapes.texts.append(("canonical gmail", canonical))
            shapes.normalised.append((f"canonical gmail({data_type})", canonical))
    return shapes


def _name(data_type: str, value: str) -> _Shapes:
    shapes = _generic(data_type, value)
    low = value.lower()
    shapes.normalised = [(f"lower({data_type})", low)]
    words = low.split()
    if " " in value:
        shapes.texts.append(("no separators", "".join(value.split())))
    if len(words) >= 2:
        shapes.hashed_only = [("lower(first name)", words[0]), ("lower(last name)", words[-1])]
    return shapes


def _uuid(data_type: str, value: str) -> _Shapes:
    h = value.replace("-", "").lower()
    dashed = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    texts = [("as is", value), ("lower", dashed), ("upper", dashed.upper()),
             ("no separators, lower", h), ("no separators, upper", h.upper())]
    normalised = [(f"lower({data_type})", dashed), (f"upper({data_type})", dashed.upper())]
    return _Shapes(texts, normalised, [("raw bytes", bytes.fromhex(h))])


def _mac(data_type: str, value: str) -> _Shapes:
    h = re.sub(r"[:\-. ]", "", value).lower()
    octets = [h[i:i + 2] for i in range(0, 12, 2)]
    texts: list[tuple[str, str]] = []
    for case, f in (("lower", str.lower), ("upper", str.upper)):
        texts += [
            (f"colons, {case}", f(":".join(octets))),
            (f"dashes, {case}", f("-".join(octets))),
            (f"no separators, {case}", f(h)),
            (f"Cisco dots, {case}", f(f"{h[:4]}.{h[4:8]}.{h[8:]}")),
        ]
    texts.append(("as is", value))
    normalised = [(f"lower({data_type}) without separators", h),
                  (f"lower({data_type}) with colons", ":".join(octets))]
    return _Shapes(texts, normalised, [("raw bytes", bytes.fromhex(h))])


def _imei(data_type: str, value: str) -> _Shapes:
    d = re.sub(r"\D", "", value)
    texts = [("digits", d)]
    if len(d) in (15, 16):  # IMEI (2-6-6-1) and IMEISV (2-6-6-2)
        groups = [d[:2], d[2:8], d[8:14], d[14:]]
        texts += [("with spaces", " ".join(groups)), ("with dashes", "-".join(groups))]
    texts.append(("as is", value))
    return _Shapes(texts, [(f"digits({data_type})", d)], [])


def _phone(data_type: str, value: str) -> _Shapes:
    digits = re.sub(r"\D", "", value)
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    number: phonenumbers.PhoneNumber | None = None
    # written with its "+" (or "00"): a possible number will do; digits alone are read as
    # country code + number only when valid, or long enough to hold both
    for candidate, written in ((text, True), ("+" + digits, False)):
        try:
            parsed = phonenumbers.parse(candidate, None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed) and (
            written or len(digits) >= 11 or phonenumbers.is_valid_number(parsed)
        ):
            number = parsed
            break
    if number is None:  # not a number phonenumbers understands: its digits, and the value
        return _Shapes([("digits", digits), ("as is", value)],
                       [(f"digits({data_type})", digits)], [])
    fmt = phonenumbers.PhoneNumberFormat
    e164 = phonenumbers.format_number(number, fmt.E164)
    national = phonenumbers.format_number(number, fmt.NATIONAL)
    texts = [
        ("e164", e164),
        ("e164 without +", e164[1:]),
        ("00 + e164 digits", "00" + e164[1:]),
        ("international", phonenumbers.format_number(number, fmt.INTERNATIONAL)),
        ("international with dashes", phonenumbers.format_number(number, fmt.RFC3966).removeprefix("tel:")),
        ("national", national),
        ("national digits", re.sub(r"\D", "", national)),
        ("national number", phonenumbers.national_significant_number(number)),
        ("as is", value),
    ]
    normalised = [(f"digits({data_type})", e164[1:]), (f"e164({data_type})", e164)]
    return _Shapes(texts, normalised, [])


def _hex_id(data_type: str, value: str) -> _Shapes:
    shapes = _generic(data_type, value)
    shapes.normalised = [(f"lower({data_type})", value.lower())]
    if len(value) % 2 == 0:
        shapes.raw.append(("raw bytes", bytes.fromhex(value)))
    return shapes


def _ip(data_type: str, value: str) -> _Shapes:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return _generic(data_type, value)
    if address.version == 4:
        texts = [("as is", value), ("as integer", str(int(address))),
                 ("hex of address", address.packed.hex()),
                 ("hex of address, upper", address.packed.hex().upper())]
    else:
        texts = [("as is", value), ("compressed", address.compressed),
                 ("compressed, upper", address.compressed.upper()),
                 ("exploded", address.exploded), ("exploded, upper", address.exploded.upper())]
    return _Shapes(texts, [(data_type, value)], [("raw bytes", address.packed)])


def _shapes(data_type: str, value: str) -> _Shapes:
    """The text, normalised and binary forms of one value, by its data type or its shape."""
    handlers: dict[str, Callable[[str, str], _Shapes]] = {
        "email": _email, "phone": _phone, "imei": _imei, "name": _name, "ip": _ip,
    }
    if data_type in handlers:
        return handlers[data_type](data_type, value)
    if (data_type == "advertising_id" and _UUID.fullmatch(value)) or _UUID_SHAPE.fullmatch(value):
        return _uuid(data_type, value)
    if (data_type == "mac" and _MAC.fullmatch(value)) or _MAC_SHAPE.fullmatch(value):
        return _mac(data_type, value)
    if data_type == "android_id" and _HEX.fullmatch(value):
        return _hex_id(data_type, value)
    if _EMAIL.fullmatch(value):
        return _email(data_type, value)
    return _generic(data_type, value)


def _percent_forms(label: str, text: str) -> Iterable[tuple[str, str]]:
    upper = quote(text, safe="")
    yield _wrap("percent", label), upper
    yield _wrap("percent", label), quote(text, safe="-_.!~*'()")  # JavaScript encodeURIComponent
    yield _wrap("percent lower-case", label), _PERCENT_ESCAPE.sub(lambda m: m.group(0).lower(), upper)
    yield _wrap("form-encoded", label), quote_plus(text, safe="")


def _value_forms(data_type: str, value: str) -> Iterable[tuple[str, bytes]]:
    """(transform, needle) of every form of one string value, the most informative first."""
    shapes = _shapes(data_type, value)
    for label, text in shapes.texts:
        yield label, text.encode()
    for label, text in shapes.texts:
        for plabel, ptext in _percent_forms(label, text):
            if ptext != text:
                yield plabel, ptext.encode()
    for label, raw in shapes.raw:
        std, url = _b64(raw)
        yield label, raw
        yield _wrap("base64", label), std
        yield _wrap("base64url", label), url
    encoded = [("as is", value), *shapes.normalised]
    for label, text in encoded:
        data = text.encode()
        std, url = _b64(data)
        inner = "as is" if text == value else label
        yield _wrap("base64", inner), std
        yield _wrap("base64url", inner), url
        yield _wrap("hex", inner), data.hex().encode()
        yield _wrap("hex upper", inner), data.hex().upper().encode()
    for label, text in [*shapes.normalised, *shapes.hashed_only]:
        data = text.encode()
        for name in HASHES:
            digest = hashlib.new(name, data).digest()
            std, url = _b64(digest)
            yield f"{name}({label})", digest.hex().encode()
            yield f"{name}({label}) upper", digest.hex().upper().encode()
            yield f"{name}({label}) base64", std
            yield f"{name}({label}) base64url", url


def _decimals(x: float) -> int:
    exponent = Decimal(repr(x)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _coordinate_texts(x: float, places: int) -> list[tuple[str, str]]:
    """(method, text) of ``x`` at ``places`` decimals: rounded, truncated, floored."""
    quantum = Decimal(1).scaleb(-places)
    exact = Decimal(repr(x))
    out = [
        ("", f"{x:.{places}f}"),
        ("", str(exact.quantize(quantum, rounding=ROUND_HALF_UP))),
        (" truncated", str(exact.quantize(quantum, rounding=ROUND_DOWN))),
        (" floored", str(exact.quantize(quantum, rounding=ROUND_FLOOR))),
    ]
    return out


def _strip_zeros(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _location_forms(lat: float, lng: float) -> Iterable[tuple[str, bytes]]:
    """(transform, needle) of the coordinates in every layout and precision."""
    top = max(_decimals(lat), _decimals(lng), MIN_DECIMALS)
    texts: list[tuple[str, str]] = []
    for strip in (False, True):
        for places in range(top, MIN_DECIMALS - 1, -1):
            for (method, t_lat), (_, t_lng) in zip(
                _coordinate_texts(lat, places), _coordinate_texts(lng, places), strict=True
            ):
                suffix = f" @{places} decimals{method}" + (", no trailing zeros" if strip else "")
                a, b = (_strip_zeros(t_lat), _strip_zeros(t_lng)) if strip else (t_lat, t_lng)
                for label, template in PAIR_LAYOUTS:
                    texts.append((label + suffix, template.format(lat=a, lng=b)))
                for keys, v in ((LAT_KEYS, a), (LNG_KEYS, b)):
                    for k in keys:
                        for label, template in KEYED_LAYOUTS:
                            texts.append((label.format(k=k) + suffix, template.format(k=k, x=v)))
    for label, text in texts:
        yield label, text.encode()
    for label, text in texts:
        for plabel, ptext in _percent_forms(label, text):
            if ptext != text:
                yield plabel, ptext.encode()


def profile_forms(profile: Profile) -> list[Form]:
    """Every form of every value of ``profile``, as needles for :class:`~.matcher.Matcher`.

    Needles shorter than :data:`MIN_NEEDLE` (6) bytes are dropped -- they would match by chance
    in ordinary traffic -- and each needle appears once, with the first (most informative)
    transform that produced it; see the module docstring for the vocabulary and the order.
    """
    forms: list[Form] = []
    seen: set[bytes] = set()

    def add(data_type: str, pairs: Iterable[tuple[str, bytes]], value: str) -> None:
        for transform, needle in pairs:
            if len(needle) >= MIN_NEEDLE and needle not in seen:
                seen.add(needle)
                forms.append(Form(needle, data_type, transform, value))

    for data_type, value in profile.items():
        if value.strip():
            add(data_type, _value_forms(data_type, value.strip()), value)
    if profile.latitude is not None and profile.longitude is not None:
        add("location", _location_forms(profile.latitude, profile.longitude),
            f"{profile.latitude},{profile.longitude}")
    return forms
