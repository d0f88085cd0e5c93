"""The test device's and account's own values, so that leaks of them can be found exactly.

A profile is a small TOML file (``datareach profile init`` writes a commented template)::

    advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
    email = "tester@example.org"
    phone = "+44 7700 900123"
    latitude = 48.858370
    longitude = 2.294481

    [custom]
    account_id = "u-829301"

Values in a profile are secrets: reports show them redacted (:func:`redact`) unless the user
passes ``--reveal``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

#: The keys a profile may have, besides ``[custom]``.
KEYS = ("advertising_id", "android_id", "imei", "serial", "mac", "email", "phone", "name",
        "latitude", "longitude", "ip")

TEMPLATE = '''\
# datareach profile: the values of the test device and account.
# datareach looks for each of them in every request, also encoded (percent, base64, hex),
# hashed (MD5, SHA-1, SHA-224, SHA-256, SHA-512 of the normalised value) and reformatted.
# These are secrets: reports show them redacted unless you pass --reveal.
# Delete the lines you do not need; every value is a string except latitude and longitude.

# Google advertising ID (Settings > Google > Ads) or Apple IDFA
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
# Android ID (Settings.Secure.ANDROID_ID), 16 hex digits
android_id = "9774d56d682e549c"
# IMEI (dial *#06#), 15 digits
imei = "490154203237518"
# hardware serial number
serial = "R58M12ABCDE"
# Wi-Fi MAC address, any separator
mac = "3c:5a:b4:01:02:03"
# the test account's e-mail address
email = "tester@example.org"
# phone number, with its country code
phone = "+44 7700 900123"
# the account holder's name
name = "Alex Tester"
# where the device was (decimal degrees)
latitude = 48.858370
longitude = 2.294481
# the device's public IP address during the capture
ip = "203.0.113.45"

[custom]
# any other value you want found, by a name of your choice
# account_id = "u-829301"
'''


class ProfileError(Exception):
    """A profile file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Profile:
    values: dict[str, str] = field(default_factory=dict)
    latitude: float | None = None
    longitude: float | None = None
    custom: dict[str, str] = field(default_factory=dict)

    def items(self) -> list[tuple[str, str]]:
        """(data type, value) of every string value, custom ones included."""
        return [*self.values.items(), *self.custom.items()]

    @property
    def has_location(self) -> bool:
        return self.latitude is not None and self.longitude is not None


def load_profile(path: Path) -> Profile:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ProfileError(f"{path}: cannot read the profile: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path}: not valid TOML: {e}") from e
    values: dict[str, str] = {}
    lat = lon = None
    custom: dict[str, str] = {}
    for key, value in data.items():
        if key == "custom":
            if not isinstance(value, dict):
                raise ProfileError(f"{path}: [custom] must be a table of name = \"value\" lines")
            for name, v in value.items():
                if not isinstance(v, str | int) or isinstance(v, bool) or str(v).strip() == "":
                    raise ProfileError(f"{path}: custom.{name} must be a non-empty string")
                custom[str(name)] = str(v).strip()
        elif key in ("latitude", "longitude"):
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ProfileError(f"{path}: {key} must be a number of decimal degrees")
            limit = 90 if key == "latitude" else 180
            if not -limit <= value <= limit:
                raise ProfileError(f"{path}: {key} {value} is out of range")
            if key == "latitude":
                lat = float(value)
            else:
                lon = float(value)
        elif key in KEYS:
            if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
                raise ProfileError(f"{path}: {key} must be a non-empty string")
            values[key] = str(value).strip()
        else:
            raise ProfileError(f"{path}: unknown key {key!r} (known: {', '.join(KEYS)}, and a [custom] table)")
    if (lat is None) != (lon is None):
        raise ProfileError(f"{path}: give both latitude and longitude, or neither")
    return Profile(values, lat, lon, custom)


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
