"""The test device's and account's own values, so that leaks of them can be found exactly.

A profile is a small TOML file (``datareach profile init`` writes a commented template)::

    advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
    email = ["tester@example.org", "tester+2@example.org"]   # a list: every value is looked for
    phone = "+44 7700 900123"
    latitude = 48.858370
    longitude = 2.294481

    [custom]
    account_id = "u-829301"

Each key takes a string (or an integer), or a list of them; ``latitude`` and ``longitude`` a
number. Values that do not look like what their key says (an IMEI failing its check digit, an
e-mail address without ``@``...) are kept, with a warning (:attr:`Profile.warnings`).

Limits (a profile is read before anything else, and the matcher is built from every form of
every value): the file at most 1 MiB (:data:`datareach.files.CONFIG_MAX_BYTES`), TOML nested at
most 32 deep, numbers of at most 100 digits, at most :data:`MAX_VALUES` values in all, each at
most :data:`MAX_VALUE_CHARS` characters, custom names at most :data:`MAX_NAME_CHARS`.

Values in a profile are secrets: reports show them redacted (:func:`redact`) unless the user
passes ``--reveal``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The keys a profile may have, besides ``[custom]``.
KEYS = ("advertising_id", "android_id", "imei", "serial", "mac", "email", "phone", "name",
        "latitude", "longitude", "ip")
#: The most values a profile may have, list items and ``[custom]`` values included.
MAX_VALUES = 1000
#: The longest value, in characters (the matcher looks for every form of every value).
MAX_VALUE_CHARS = 4096
#: The longest ``[custom]`` name.
MAX_NAME_CHARS = 64

TEMPLATE = '''\
# datareach profile: the values of the test device and account.
# datareach looks for each of them in every request, also encoded (percent, base64, hex),
# hashed (MD5, SHA-1, SHA-224, SHA-256, SHA-512 of the normalised value) and reformatted.
# These are secrets: reports show them redacted unless you pass --reveal.
# Delete the lines you do not need; every value is a string except latitude and longitude.
# A key may take a list of values: email = ["a@example.org", "b@example.org"].
# Limits: 1 MiB, 1000 values, 4096 characters a value.

# Every value below is the placeholder REPLACE-ME: the profile is refused until each is
# replaced by the test device's own value or its line deleted (examples in the comments).

# Google advertising ID (Settings > Google > Ads) or Apple IDFA, e.g. 38400000-8cf0-11bd-b23e-10b96e40000d
advertising_id = "REPLACE-ME"
# Android ID (Settings.Secure.ANDROID_ID), 16 hex digits, e.g. 9774d56d682e549c
android_id = "REPLACE-ME"
# IMEI (dial *#06#), 15 digits
imei = "REPLACE-ME"
# hardware serial number
serial = "REPLACE-ME"
# Wi-Fi MAC address, any separator, e.g. 3c:5a:b4:01:02:03
mac = "REPLACE-ME"
# the test account's e-mail address
email = "REPLACE-ME"
# phone number, with its country code, e.g. +44 7700 900123
phone = "REPLACE-ME"
# the account holder's name
name = "REPLACE-ME"
# where the device was, in decimal degrees (numbers, not strings), e.g. 48.8584 and 2.2945
latitude = "REPLACE-ME"
longitude = "REPLACE-ME"
# the device's public IP address during the capture
ip = "REPLACE-ME"

[custom]
# any other value you want found, by a name of your choice
# account_id = "u-829301"
'''


#: What ``datareach profile init`` writes for every value: refused until replaced.
PLACEHOLDER = "REPLACE-ME"


def _placeholder(where: str, at: str, value: object) -> None:
    if isinstance(value, str) and PLACEHOLDER in value.upper():
        raise ProfileError(f"{where}: {at} is still the placeholder {PLACEHOLDER} from `datareach profile init`: "
                           "put the test device's value there, or delete the line")


class ProfileError(Exception):
    """A profile file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Profile:
    values: dict[str, str] = field(default_factory=dict)
    latitude: float | None = None
    longitude: float | None = None
    custom: dict[str, str] = field(default_factory=dict)
    #: the further values of keys given a list, ``(data type, value)`` (the first is in
    #: ``values`` or ``custom``)
    more: tuple[tuple[str, str], ...] = ()
    #: values that do not look like what their key says, one line each (the file named)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def items(self) -> list[tuple[str, str]]:
        """(data type, value) of every string value, custom ones and list items included."""
        return [*self.values.items(), *self.custom.items(), *self.more]

    @property
    def has_location(self) -> bool:
        return self.latitude is not None and self.longitude is not None


def load_profile(path: Path) -> Profile:
    """Read and check a profile file; raises :class:`ProfileError` naming the file and the key.
    Doubtful values are kept and described in :attr:`Profile.warnings`."""
    from datareach.files import ConfigFileError, parse_toml, read_config

    where = str(path)
    try:
        data = parse_toml(read_config(path, where, "profile"), where, "a profile")
    except ConfigFileError as e:
        raise ProfileError(f"{e} (--profile wants the TOML file `datareach profile init` writes)"
                           if "not a text file" in str(e) else str(e)) from None
    values: dict[str, str] = {}
    lat = lon = None
    custom: dict[str, str] = {}
    more: list[tuple[str, str]] = []
    warnings: list[str] = []
    count = 0

    def take(key: str, data_type: str, value: Any) -> list[str]:
        nonlocal count
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            raise ProfileError(f"{where}: {key} is an empty list")
        out = []
        for i, v in enumerate(items):
            at = f"{key}[{i}]" if isinstance(value, list) else key
            _placeholder(where, at, v)
            if not isinstance(v, str | int) or isinstance(v, bool) or str(v).strip() == "":
                raise ProfileError(f"{where}: {at} must be a non-empty string (or a list of them)")
            text = str(v).strip()
            if len(text) > MAX_VALUE_CHARS:
                raise ProfileError(f"{where}: {at} is {len(text):,} characters long; values are limited to "
                                   f"{MAX_VALUE_CHARS:,}")
            count += 1
            if count > MAX_VALUES:
                raise ProfileError(f"{where}: more than {MAX_VALUES:,} values; a profile is limited to that")
            problem = value_problem(data_type, text)
            if problem is not None:
                warnings.append(f"{where}: {at}: {redact(text)} {problem}")
            out.append(text)
        more.extend((data_type, t) for t in out[1:])
        return out

    for key, value in data.items():
        if key == "custom":
            if not isinstance(value, dict):
                raise ProfileError(f"{where}: [custom] must be a table of name = \"value\" lines")
            for name, v in value.items():
                if len(name) > MAX_NAME_CHARS:
                    raise ProfileError(f"{where}: [custom]: a name of {len(name):,} characters; names are limited "
                                       f"to {MAX_NAME_CHARS}")
                custom[str(name)] = take(f"custom.{name}", str(name), v)[0]
        elif key in ("latitude", "longitude"):
            _placeholder(where, key, value)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ProfileError(f"{where}: {key} must be a number of decimal degrees")
            limit = 90 if key == "latitude" else 180
            if not -limit <= value <= limit:
                raise ProfileError(f"{where}: {key} {value} is out of range")
            if key == "latitude":
                lat = float(value)
            else:
                lon = float(value)
        elif key in KEYS:
            values[key] = take(key, key, value)[0]
        else:
            shown = key if len(key) <= MAX_NAME_CHARS else key[:MAX_NAME_CHARS] + "…"
            raise ProfileError(f"{where}: unknown key {shown!r} (known: {', '.join(KEYS)}, and a [custom] table)")
    if (lat is None) != (lon is None):
        raise ProfileError(f"{where}: give both latitude and longitude, or neither")
    return Profile(values, lat, lon, custom, tuple(more), tuple(warnings))


_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_PHONE = re.compile(r"\+?[0-9 ()./-]+")


def _luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def value_problem(data_type: str, value: str) -> str | None:
    """Why ``value`` does not look like a ``data_type`` (a profile key), or None. A doubtful
    value is still looked for: this is for a warning, in case of a typo."""
    if data_type == "imei":
        digits = re.sub(r"[\s/-]", "", value)
        if not digits.isdigit() or not 14 <= len(digits) <= 16:
            return "is not an IMEI (15 digits)"
        if len(digits) == 15 and not _luhn(digits):
            return "fails the IMEI check digit (Luhn): a typo?"
    elif data_type == "email":
        if not _EMAIL.fullmatch(value):
            return "is not an e-mail address"
    elif data_type == "advertising_id":
        if not _UUID.fullmatch(value):
            return "is not an advertising ID (a UUID: 8-4-4-4-12 hex digits)"
    elif data_type == "android_id":
        if not _HEX.fullmatch(value) or len(value) > 16:
            return "is not an Android ID (16 hex digits)"
    elif data_type == "mac":
        if not (_HEX.fullmatch(hexits := re.sub(r"[:.\s-]", "", value)) and len(hexits) == 12):
            return "is not a MAC address (6 bytes in hex)"
    elif data_type == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return "is not an IP address"
    elif data_type == "phone":
        count = sum(c.isdigit() for c in value)
        if not _PHONE.fullmatch(value) or not 5 <= count <= 15:
            return "is not a phone number (5 to 15 digits, with + and separators)"
    return None


def redact(value: str) -> str:
    """A form of a secret value that shows what it was without giving it away."""
    n = len(value)
    if n <= 4:
        return "…" * min(n, 3) or "…"
    if n <= 10:
        return f"{value[0]}…{value[-1]} ({n} chars)"
    return f"{value[:2]}…{value[-2:]} ({n} chars)"


def redact_url(url: str, locations: set[str]) -> str:
    """``url`` with the query parameters and path segments that carried personal data hidden.

    ``locations`` are findings' locations (``"query u"``, ``"path[2]"``); the whole raw value at
    such a place is replaced, since personal data may sit in it in any encoding.
    """
    from urllib.parse import urlsplit, urlunsplit

    if not locations:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[redacted URL]"
    segments = parts.path.split("/")
    for loc in locations:
        if loc.startswith("path[") and loc.endswith("]") and loc[5:-1].isdigit():
            i = int(loc[5:-1])
            # path[i] counts the segments after the leading slash
            if 0 <= i + 1 < len(segments):
                segments[i + 1] = "[redacted]"
    names = {loc[6:] for loc in locations if loc.startswith("query ")}
    query = parts.query
    if names and query:
        pieces = []
        for piece in query.split("&"):
            name, eq, _value = piece.partition("=")
            from urllib.parse import unquote_plus

            pieces.append(f"{name}=[redacted]" if eq and unquote_plus(name) in names else piece)
        query = "&".join(pieces)
    return urlunsplit((parts.scheme, parts.netloc, "/".join(segments), query, parts.fragment))
