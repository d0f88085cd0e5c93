"""A labelled corpus of requests shaped like real mobile SDK traffic, for the detection benchmark.

    PYTHONPATH=src .venv/bin/python benchmarks/corpus.py [--seed N] [--dump out.jsonl]

:func:`generate` builds, from one seed and always the same way, three groups of
:class:`~datareach.schema.Exchange` objects, each with a :class:`Label`:

``profile+``
    one value of the test profile (:data:`PROFILE_TOML`) per request, in one value encoding
    (plain, percent once or twice, base64 std/urlsafe/unpadded, hex, MD5/SHA-1/SHA-224/SHA-256/
    SHA-512 of the normalised value, in lower or upper hex), in one format variant (MAC and IMEI
    separators, phone layouts, upper case IDs, coordinates at 3-6 decimals in the usual layouts),
    carried two or three layers deep (JSON objects and arrays, JSON inside a JSON string, base64
    inside JSON, form and multipart bodies, query strings, headers, cookies, URL paths, JWT
    payloads, schema-less protobuf, Sentry envelopes, gzip/deflate/br/zstd bodies, base64 of a
    gzip body).
``other``
    somebody else's personal data, which the pattern detectors should find and the profile
    detector must not: e-mail addresses, valid phone numbers, Luhn-valid IMEIs, MACs, advertising
    and vendor IDs under their usual keys, Android IDs, precise coordinates ("coordinates of no
    one"), private IPs, Wi-Fi SSID/BSSID, device-fingerprint field sets; and near misses of the
    profile's own values (one digit, one octet, another domain).
``negative``
    nothing personal at all: random tokens, session and request UUIDs under neutral keys,
    hashes of other values, coarse (1 decimal) coordinates, timestamps, version numbers, order
    numbers, base64 of random bytes, commit hashes, public server addresses, screen coordinates.

The filler around the needles (event names, SDK versions, session IDs, device model...) is
modelled on the request layouts of public SDKs and analyses of their traffic: Firebase
app-measurement batches (protobuf), AppsFlyer and Adjust attribution events, Facebook Graph
``activities``, Sentry envelopes, Crashlytics reports, OneSignal and FCM registration, Umeng/JPush
style reports, Mixpanel ``data=`` uploads, ironSource/AppLovin/Unity/AdMob ad requests, Amplitude
batches, Branch installs, and an app's own back end with a JWT. The same filler is in every
group, so what tells the groups apart is only the needle.

Labels keep the two detectors apart: ``profile`` is the set of profile data types the request
carries (``location`` for the coordinates, the custom key for ``[custom]`` values); ``pattern``
the set of pattern data types it carries; ``pattern_allowed`` the pattern types that may be
reported without counting as a false positive (a profile value in clear is also a pattern hit,
e.g. the profile e-mail is an e-mail address). For ``profile+`` requests ``encoding`` is the value
encoding, ``carrier`` the chain of layers around it, outermost first, and ``needles`` the exact
strings placed in the request before the carrier's own escaping (tests re-derive them).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import random
import re
import string
import sys
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import brotli
import phonenumbers
import zstandard

from datareach.detect import Profile, load_profile
from datareach.schema import Exchange
from datareach.testing import protobuf

SEED = 1_000_003
T0 = 1_700_000_000.0

#: The test device and account. The IMEI is Luhn-valid; the coordinates have no trailing zero at
#: 3 to 6 decimals (so that every rounding prints as many digits as it claims).
PROFILE_TOML = """\
advertising_id = "7c2e9f4a-1b3d-4e5f-9a8b-6c7d8e9f0a1b"
android_id = "b3e1f7a29c4d5e60"
imei = "353918102345671"
serial = "R5CT10XKQ2L"
mac = "a4:5e:60:d2:19:7b"
email = "Jamie.Rivera@example.net"
phone = "+1 415 555 0173"
name = "Jamie Rivera"
latitude = 40.741872
longitude = -73.989326
ip = "198.51.100.23"

[custom]
account_id = "acct-5531907"
"""

#: Profile data types with a string value (location is handled apart).
STRING_TYPES = ("advertising_id", "android_id", "imei", "serial", "mac", "email", "phone", "name", "ip",
                "account_id")

PLAIN_ENCODINGS = ("plain", "percent", "percent x2", "base64", "base64url", "base64 unpadded", "hex")
HASH_ENCODINGS = ("md5", "sha1", "sha224", "sha256", "sha512", "md5 upper", "sha1 upper")
#: Every value encoding a profile+ request may carry.
ENCODINGS = PLAIN_ENCODINGS + HASH_ENCODINGS
LOCATION_ENCODINGS = ("plain", "percent", "percent x2", "base64", "base64url")

#: Format variants of each profile value (before encoding).
VARIANTS: dict[str, tuple[str, ...]] = {
    "advertising_id": ("as-is", "upper", "bare"),
    "android_id": ("as-is", "upper"),
    "imei": ("as-is", "dashed", "spaced"),
    "serial": ("as-is",),
    "mac": ("as-is", "upper-colon", "lower-dash", "upper-dash", "upper-bare", "lower-bare"),
    "email": ("as-is", "lower"),
    "phone": ("e164", "e164-digits", "intl-spaced", "intl-dashed", "national", "digits10"),
    "name": ("as-is", "lower"),
    "ip": ("as-is",),
    "account_id": ("as-is",),
}
#: The variants that are hashed: the normalised value (e-mail lower-trimmed, phone E.164).
HASH_VARIANTS: dict[str, tuple[str, ...]] = {
    "email": ("lower",), "phone": ("e164", "e164-digits"), "name": ("lower",),
}
LOCATION_LAYOUTS = ("json-num", "json-str", "pair", "geo-uri", "geojson", "array")
STRUCTURED_LAYOUTS = ("json-num", "json-str", "geojson", "array")

#: Pattern types a profile value in clear may also be reported as (not counted either way).
PATTERN_OF: dict[str, frozenset[str]] = {
    "email": frozenset({"email"}), "phone": frozenset({"phone"}), "imei": frozenset({"imei"}),
    "mac": frozenset({"mac_address", "wifi_bssid"}),
    "advertising_id": frozenset({"advertising_id", "vendor_id"}),
    "android_id": frozenset({"android_id"}), "location": frozenset({"precise_location"}),
}

GROUPS = ("profile+", "other", "negative")


def load_test_profile() -> Profile:
    """:data:`PROFILE_TOML` through the product's own loader."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "profile.toml"
        path.write_text(PROFILE_TOML, encoding="utf-8")
        return load_profile(path)


@dataclass(frozen=True, slots=True)
class Label:
    group: str                       # "profile+", "other" or "negative"
    kind: str                        # profile+: data type; other: pattern type or "near-miss X"; negative: kind
    sdk: str                         # request shape
    carrier: str                     # layers around the needle, outermost first ("gzip>json")
    profile: frozenset[str]          # profile data types expected
    pattern: frozenset[str]          # pattern data types expected
    pattern_allowed: frozenset[str]  # pattern data types that may be reported, not scored
    data_type: str | None = None     # profile+: the needle's data type
    variant: str | None = None       # profile+: format variant ("upper-dash", "pair@4")
    encoding: str | None = None      # profile+: value encoding ("sha256", "percent x2")
    needles: tuple[str, ...] = ()    # profile+: the exact strings placed (before carrier escaping)

    @property
    def encoding_class(self) -> str:
        """The whole chain, outermost first, e.g. ``gzip>json>base64``."""
        return f"{self.carrier}>{self.encoding}" if self.encoding else self.carrier

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "kind": self.kind, "sdk": self.sdk, "carrier": self.carrier,
                "profile": sorted(self.profile), "pattern": sorted(self.pattern),
                "pattern_allowed": sorted(self.pattern_allowed), "data_type": self.data_type,
                "variant": self.variant, "encoding": self.encoding, "needles": list(self.needles)}


@dataclass(frozen=True, slots=True)
class Case:
    exchange: Exchange
    label: Label


# --- values -------------------------------------------------------------------------------------


def _profile_value(p: Profile, data_type: str) -> str:
    return dict(p.items())[data_type]


def variant_value(p: Profile, data_type: str, variant: str) -> str:
    """One format of a profile string value."""
    v = _profile_value(p, data_type)
    if variant == "as-is":
        return v
    if data_type in ("advertising_id", "android_id", "name", "email"):
        return {"upper": v.upper(), "lower": v.strip().lower(), "bare": v.replace("-", "")}[variant]
    if data_type == "imei":
        return {"dashed": f"{v[:2]}-{v[2:8]}-{v[8:14]}-{v[14]}", "spaced": f"{v[:2]} {v[2:8]} {v[8:14]} {v[14]}"}[variant]
    if data_type == "mac":
        octets = re.split(r"[:\-.]", v.lower())
        upper = [o.upper() for o in octets]
        return {"upper-colon": ":".join(upper), "lower-dash": "-".join(octets), "upper-dash": "-".join(upper),
                "upper-bare": "".join(upper), "lower-bare": "".join(octets)}[variant]
    if data_type == "phone":
        num = phonenumbers.parse(v, None)
        e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        intl = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        return {"e164": e164, "e164-digits": e164[1:], "intl-spaced": intl.replace("-", " "),
                "intl-dashed": intl, "national": phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL),
                "digits10": str(num.national_number)}[variant]
    raise KeyError(f"{data_type}: no variant {variant!r}")


def encode_value(value: str, encoding: str) -> str:
    """One value encoding (hashes in lower hex unless ``upper``)."""
    b = value.encode()
    if encoding == "plain":
        return value
    if encoding == "percent":
        return quote(value, safe="")
    if encoding == "percent x2":
        return quote(quote(value, safe=""), safe="")
    if encoding == "base64":
        return base64.b64encode(b).decode()
    if encoding == "base64url":
        return base64.urlsafe_b64encode(b).decode()
    if encoding == "base64 unpadded":
        return base64.b64encode(b).decode().rstrip("=")
    if encoding == "hex":
        return b.hex()
    algo, _, case = encoding.partition(" ")
    digest = hashlib.new(algo, b).hexdigest()
    return digest.upper() if case == "upper" else digest


def location_strings(p: Profile, decimals: int) -> tuple[str, str]:
    assert p.latitude is not None and p.longitude is not None
    return f"{p.latitude:.{decimals}f}", f"{p.longitude:.{decimals}f}"


def encodings_for(data_type: str) -> tuple[str, ...]:
    """Value encodings that make sense for a data type: percent only where it changes the value."""
    if data_type in ("advertising_id", "android_id", "imei", "serial", "ip", "account_id"):
        return tuple(e for e in ENCODINGS if not e.startswith("percent"))
    return ENCODINGS


# --- random values ------------------------------------------------------------------------------

FIRST = ("maria", "li", "ahmed", "sofia", "john", "wei", "olga", "carlos", "aisha", "kenji", "emma", "noah",
         "fatima", "lucas", "priya", "mateo", "chloe", "yusuf", "hannah", "diego")
LAST = ("garcia", "wang", "khan", "rossi", "smith", "chen", "ivanova", "silva", "okafor", "tanaka", "muller",
        "dubois", "patel", "kowalski", "nguyen", "haddad", "larsen", "novak", "costa", "fischer")
DOMAINS = ("gmail.com", "yahoo.co.uk", "outlook.com", "proton.me", "qq.com", "163.com", "icloud.com",
           "web.de", "orange.fr", "hotmail.com")
MODELS = ("Pixel 7", "SM-S911B", "M2101K6G", "CPH2451", "moto g54 5G", "SM-A546E", "2201117TY", "Pixel 8 Pro")
PACKAGES = ("com.lumen.weather", "io.fitloop.app", "com.tapforge.puzzle", "net.quickcart.shop",
            "com.readly.news", "app.moodnote", "com.ridehail.go", "org.citybike.map")
EVENTS = ("app_open", "screen_view", "level_complete", "add_to_cart", "purchase", "tutorial_begin",
          "session_start", "ad_impression", "sign_up", "search")
REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "CN", "ES", "IT", "MX", "NG")


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    h = h[:12] + "4" + h[13:16] + "89ab"[rng.randrange(4)] + h[17:]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def _luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _imei(rng: random.Random) -> str:
    body = rng.choice(("35", "86", "01", "99")) + "".join(rng.choice(string.digits) for _ in range(12))
    return body + _luhn_digit(body)


def _mac(rng: random.Random) -> str:
    first = rng.randrange(256) & 0xFC  # unicast, globally administered
    return ":".join(f"{o:02x}" for o in [first, *(rng.randrange(256) for _ in range(5))])


def _email(rng: random.Random) -> str:
    sep = rng.choice((".", "_", ""))
    return f"{rng.choice(FIRST)}{sep}{rng.choice(LAST)}{rng.randrange(100) if rng.random() < 0.5 else ''}@{rng.choice(DOMAINS)}"


def _phone(rng: random.Random) -> str:
    while True:
        region = rng.choice(REGIONS)
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        digits = str(example.national_number)
        national = digits[:2] + "".join(rng.choice(string.digits) for _ in digits[2:])
        num = phonenumbers.parse(f"+{example.country_code}{national}", None)
        if phonenumbers.is_valid_number(num) and "5550173" not in national:
            fmt = rng.choice((phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
            return phonenumbers.format_number(num, fmt)


def _coord(rng: random.Random, decimals: int) -> tuple[float, float]:
    """A random place on land-ish latitudes, far from the profile's."""
    while True:
        lat, lon = rng.uniform(-55, 65), rng.uniform(-170, 175)
        if abs(lat - 40.74) > 2 or abs(lon + 73.99) > 2:
            return round(lat, decimals), round(lon, decimals)


def _private_ip(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if kind == 1:
        return f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _public_ip(rng: random.Random) -> str:
    while True:
        a = rng.choice((8, 23, 31, 34, 45, 52, 77, 81, 104, 142, 151, 157, 185, 213))
        ip = f"{a}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if not ip.startswith("198.51.100."):
            return ip


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- request shapes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sdk:
    """A request shape: where it goes, its filler, where values nest, and the carriers it uses."""

    name: str
    host: str
    path: str                                    # "{}" marks where a path value goes
    carriers: tuple[str, ...]
    nests: tuple[tuple[str, ...], ...]           # places in the JSON payload where values go
    string_key: str                              # the field that holds a JSON document as a string
    payload: Callable[[random.Random, float], dict[str, Any]]
    flat: Callable[[random.Random, float], dict[str, str]]
    headers: tuple[tuple[str, str], ...] = ()


def _ua(rng: random.Random) -> str:
    return f"Dalvik/2.1.0 (Linux; U; Android {rng.choice((12, 13, 14))}; {rng.choice(MODELS)} Build/UQ1A.240205.004)"


def _device_light(rng: random.Random) -> dict[str, Any]:
    return {"os": "android", "os_version": str(rng.choice((12, 13, 14))), "model": rng.choice(MODELS)}


def _appsflyer(rng: random.Random, ts: float) -> dict[str, Any]:
    return {
        "af_timestamp": str(int(ts * 1000)), "appsflyerKey": _alnum(rng, 22), "uid": f"{int(ts * 1000)}-{rng.getrandbits(60)}",
        "eventName": rng.choice(EVENTS), "app_version_name": f"{rng.randrange(1, 9)}.{rng.randrange(20)}.{rng.randrange(10)}",
        "counter": str(rng.randrange(1, 300)), "iaecounter": str(rng.randrange(50)), "platformextension": "android_native",
        "deviceData": {"cpu_abi": "arm64-v8a", "build_display_id": "UQ1A.240205.004", "dim": {"d_dpi": "420", "size": "2"}},
        "registeredUninstall": False, "isFirstCall": "false", "eventValue": "",
    }


def _adjust_flat(rng: random.Random, ts: float) -> dict[str, str]:
    return {"app_token": _alnum(rng, 12).lower(), "created_at": _iso(ts).replace("Z", "+0000"),
            "environment": "production", "event_token": _alnum(rng, 6).lower(), "session_count": str(rng.randrange(1, 90)),
            "os_name": "android", "package_name": rng.choice(PACKAGES), "sent_at": _iso(ts + 1).replace("Z", "+0000"),
            "needs_response_details": "1", "tracking_enabled": "1"}


def _generic_flat(rng: random.Random, ts: float) -> dict[str, str]:
    return {"app": rng.choice(PACKAGES), "sdk_version": f"{rng.randrange(1, 25)}.{rng.randrange(10)}.{rng.randrange(10)}",
            "ts": str(int(ts)), "session_id": _uuid(rng), "event": rng.choice(EVENTS)}


def _facebook_flat(rng: random.Random, ts: float) -> dict[str, str]:
    return {"event": "CUSTOM_APP_EVENTS", "format": "json", "sdk": "android", "application_package_name": rng.choice(PACKAGES),
            "advertiser_tracking_enabled": "1", "application_tracking_enabled": "1", "anon_id": f"XZ{_uuid(rng)}",
            "extinfo": json.dumps(["a2", rng.choice(PACKAGES), str(rng.randrange(100)), "1.4.2", "14", rng.choice(MODELS), "en_US"])}


def _sentry(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"event_id": _hex(rng, 32), "timestamp": ts, "platform": "java", "level": "error", "release": f"{rng.choice(PACKAGES)}@3.1.{rng.randrange(9)}",
            "exception": {"values": [{"type": "java.lang.IllegalStateException", "value": "view not attached",
                                      "stacktrace": {"frames": [{"function": "onResume", "module": "com.app.MainActivity", "lineno": rng.randrange(20, 400)}]}}]},
            "contexts": {"os": {"name": "Android", "version": "14"}, "app": {"app_start_time": _iso(ts - 60)}},
            "tags": {"isSideLoaded": "false"}, "user": {}}


def _firebase_install(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"fid": _alnum(rng, 22), "appId": f"1:{rng.randrange(10**11, 10**12)}:android:{_hex(rng, 16)}",
            "authVersion": "FIS_v2", "sdkVersion": "a:17.1.3"}


def _onesignal(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"app_id": _uuid(rng), "device_type": 1, "identifier": f"{_alnum(rng, 11)}:APA91{_alnum(rng, 60)}",
            "language": "en", "timezone": rng.choice((-18000, 0, 3600, 28800)), "game_version": str(rng.randrange(10, 400)),
            "sdk": "050115", "sdk_type": "native", "tags": {}, "notification_types": 1}


def _umeng(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"header": {"appkey": _hex(rng, 24), "channel": rng.choice(("huawei", "xiaomi", "oppo", "official")),
                       "sdk_version": "9.6.3", "os": "Android", "app_version": "2.3.1", "access": "wifi", "display_name": "App"},
            "analytics": {"sessions": [{"id": _hex(rng, 32).upper(), "start_time": int(ts * 1000), "end_time": int(ts * 1000) + 5123,
                                        "pages": [{"page_name": "MainActivity", "duration": rng.randrange(100, 9000)}]}]}}


def _jpush(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"platform": "a", "sdk_ver": "4.8.5", "appkey": _hex(rng, 24), "itime": int(ts), "content": [{"type": "active_launch", "itime": int(ts)}],
            "device_info": {"os_ver": "14", "app_ver": "2.3.1"}}


def _mixpanel(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"event": rng.choice(EVENTS), "properties": {"token": _hex(rng, 32), "time": int(ts * 1000), "$os": "Android",
                                                        "$app_version_string": "5.2.1", "$lib_version": "7.3.1", "mp_lib": "android",
                                                        "$insert_id": _hex(rng, 16), "distinct_id": f"$device:{_uuid(rng)}"}}


def _ironsource(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"adUnit": rng.choice(("rewarded", "interstitial", "banner")), "sdkVersion": "7.5.1", "sessionId": _hex(rng, 32),
            "applicationKey": _hex(rng, 9), "clientParams": {"connectionType": "wifi", "appVersion": "2.3.1", "bundleId": rng.choice(PACKAGES)}}


def _applovin(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"app_info": {"package_name": rng.choice(PACKAGES), "app_version": "2.3.1", "sdk_version": "12.1.0", "installer_name": "com.android.vending"},
            "device_info": {"platform": "android", "os": "14", "model": rng.choice(MODELS), "dnt": False},
            "ad_format": rng.choice(("INTER", "REWARDED", "BANNER")), "request_id": _uuid(rng)}


def _unity(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"bundleId": rng.choice(PACKAGES), "bundleVersion": "2.3.1", "sdkVersionName": "4.9.2", "gameSessionId": rng.getrandbits(52),
            "placements": {"rewardedVideo": {"adTypes": ["VIDEO"], "allowSkip": False}}, "deviceInfo": {"platform": "android", "osVersion": "14"},
            "auctionId": _uuid(rng)}


def _amplitude(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"api_key": _hex(rng, 32), "events": [
        {"event_type": rng.choice(EVENTS), "time": int(ts * 1000), "session_id": int(ts * 1000), "insert_id": _uuid(rng),
         "platform": "Android", "app_version": "5.2.1", "event_properties": {"screen": "home"}, "user_properties": {}},
        {"event_type": rng.choice(EVENTS), "time": int(ts * 1000) + 800, "session_id": int(ts * 1000), "insert_id": _uuid(rng),
         "platform": "Android", "app_version": "5.2.1", "event_properties": {}, "user_properties": {}}]}


def _branch(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"branch_key": f"key_live_{_alnum(rng, 32)}", "app_version": "2.3.1", "sdk": "android5.9.0", "retryNumber": 0,
            "debug": False, "instrumentation": {"v1/install-qwt": "0"}, "metadata": {}, "first_install_time": int(ts * 1000) - 86_400_000}


def _crash(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"report_id": _hex(rng, 32), "sdk_version": "18.6.0", "build_version": "231", "display_version": "2.3.1",
            "installation_uuid": _hex(rng, 32), "session": {"identifier": _hex(rng, 32).upper(), "started_at": int(ts) - 30,
                                                          "crashed": True, "app": {"identifier": rng.choice(PACKAGES)}}}


def _backend(rng: random.Random, ts: float) -> dict[str, Any]:
    return {"request_id": _uuid(rng), "client": {"platform": "android", "version": "5.2.1"}, "cart": {"items": rng.randrange(1, 6), "currency": "USD"}}


def _firebase(rng: random.Random, ts: float) -> dict[str, Any]:
    return {}  # protobuf: see _render_protobuf


def _flat_from(fn: Callable[[random.Random, float], dict[str, Any]]) -> Callable[[random.Random, float], dict[str, str]]:
    def flat(rng: random.Random, ts: float) -> dict[str, str]:
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in fn(rng, ts).items()
                if isinstance(v, str | int | float) and not isinstance(v, bool)}
    return flat


SDKS: tuple[Sdk, ...] = (
    Sdk("firebase-measurement", "app-measurement.com", "/a", ("protobuf", "gzip>protobuf"), ((),), "", _firebase, _generic_flat),
    Sdk("firebase-installations", "firebaseinstallations.googleapis.com", "/v1/projects/app-7b1e2/installations",
        ("json", "header"), (("deviceInfo",),), "", _firebase_install, _generic_flat,
        (("x-goog-api-key", "AIzaSyD-7k2mQpZc8vXbY3nLrT6wHjE0aFuGi4s"),)),
    Sdk("appsflyer", "launches.appsflyer.com", "/api/v6.9/androidevent?app_id=com.tapforge.puzzle&buildnumber=6.9.4",
        ("json", "gzip>json", "json>json-string"), (("deviceData",), ("deviceData", "dim")), "eventValue", _appsflyer, _generic_flat),
    Sdk("adjust", "app.adjust.com", "/session", ("form", "form>json-string", "query"), (("callback_params",),),
        "partner_params", _appsflyer, _adjust_flat),
    Sdk("facebook", "graph.facebook.com", "/v16.0/1234567890123456/activities",
        ("multipart", "multipart>json", "form", "form>json-string"), (("ud",), ("custom_events", "0")), "custom_events",
        lambda r, t: {"custom_events": [{"_eventName": r.choice(EVENTS), "_logTime": int(t), "_ui": "unknown"}], "ud": {}},
        _facebook_flat),
    Sdk("sentry", "o450000.ingest.sentry.io", "/api/5500000/envelope/", ("envelope>json", "gzip>envelope>json"),
        (("user",), ("contexts", "device"), ("extra", "state")), "", _sentry, _generic_flat,
        (("X-Sentry-Auth", "Sentry sentry_version=7,sentry_client=sentry.java.android/7.3.0,sentry_key=0f1e2d3c4b5a69788796a5b4c3d2e1f0"),)),
    Sdk("crashlytics", "crashlyticsreports-pa.googleapis.com", "/v1/firelog/legacy/batchlog",
        ("json", "gzip>json", "multipart>json"), (("session", "user"), ("session", "device")), "", _crash, _flat_from(_crash)),
    Sdk("onesignal", "api.onesignal.com", "/api/v1/players/{}/on_session", ("json", "path", "header"), (("tags",),), "",
        _onesignal, _generic_flat),
    Sdk("fcm-register", "android.clients.google.com", "/c2dm/register3", ("form", "header"), ((),), "",
        _generic_flat, lambda r, t: {"X-subtype": str(r.randrange(10**11, 10**12)), "sender": str(r.randrange(10**11, 10**12)),
                                     "X-app_ver": str(r.randrange(10, 400)), "app": r.choice(PACKAGES), "X-scope": "*",
                                     "cert": _hex(r, 40), "X-gmp_app_id": f"1:{r.randrange(10**11, 10**12)}:android:{_hex(r, 16)}"}),
    Sdk("umeng", "ulogs.umeng.com", "/unify_logs", ("json", "deflate>json", "base64>gzip>json"), (("header",), ("header", "ext")),
        "", _umeng, _generic_flat),
    Sdk("jpush", "stats.jpush.cn", "/v0/report", ("base64>gzip>json", "json>base64>json"), (("device_info",), ("content", "0")),
        "", _jpush, _generic_flat),
    Sdk("mixpanel", "api.mixpanel.com", "/track", ("query>base64>json", "form>json-string"), (("properties",),), "data",
        _mixpanel, _generic_flat),
    Sdk("ironsource", "outcome-ssp.supersonicads.com", "/mediation", ("json>base64>json", "json"), (("clientParams",),), "",
        _ironsource, _generic_flat),
    Sdk("applovin", "ms.applovin.com", "/1.0/mediate", ("gzip>json", "br>json", "zstd>json"), (("device_info",), ("app_info", "ext")),
        "", _applovin, _generic_flat),
    Sdk("admob", "googleads.g.doubleclick.net", "/mads/gma", ("query", "cookie"), ((),), "", _generic_flat,
        lambda r, t: {"caps": "inlineVideo_interactiveVideo_mraid1_mraid2_sdkVideo", "format": "320x50_mb", "sdk": "afma-sdk-a-v231516999.224400000.1",
                      "request_id": _uuid(r), "eid": ",".join(str(r.randrange(10**8, 10**9)) for _ in range(3)), "app_name": "2.3.1.android." + r.choice(PACKAGES)}),
    Sdk("unityads", "auction.unityads.unity3d.com", "/v6/games/4012345/requests", ("json", "deflate>json", "zstd>json"),
        (("deviceInfo",), ("placements", "rewardedVideo")), "", _unity, _generic_flat),
    Sdk("amplitude", "api2.amplitude.com", "/batch", ("json", "gzip>json"), (("events", "1", "user_properties"), ("events", "0", "event_properties")),
        "", _amplitude, _generic_flat),
    Sdk("branch", "api2.branch.io", "/v1/install", ("json", "br>json"), (("metadata",), ("instrumentation", "ctx")), "",
        _branch, _generic_flat),
    Sdk("app-backend", "api.quickcart.example", "/v2/users/{}/cart", ("header>jwt", "cookie", "header", "json", "path"),
        (("client",), ("cart", "meta")), "", _backend, _generic_flat),
)
SDK_BY_NAME = {s.name: s for s in SDKS}
CARRIERS: tuple[str, ...] = tuple(sorted({c for s in SDKS for c in s.carriers}))
#: Carriers that take a single string (no object, no second field).
SINGLE_CARRIERS = frozenset({"header", "cookie", "path"})


# --- carriers -----------------------------------------------------------------------------------


_pb = protobuf.message


def _as_str(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _firebase_batch(rng: random.Random, ts: float, fields: dict[str, Any]) -> bytes:
    ms = int(ts * 1000)
    events: list[tuple[int, Any]] = [
        (2, [(1, [(1, "_o"), (2, "auto")]), (1, [(1, "_et"), (3, rng.randrange(1, 90000))]), (2, rng.choice(("_e", "_s", "_vs"))), (3, ms), (4, ms - 5000)])
        for _ in range(rng.randrange(1, 3))
    ]
    props: list[tuple[int, Any]] = [(3, [(1, ms), (2, "_fot"), (4, ms - 86_400_000)]), (3, [(1, ms), (2, "_lte"), (4, 1)])]
    inject: list[tuple[int, Any]] = []
    for k, v in fields.items():
        if rng.random() < 0.5:
            props.append((3, [(1, ms), (2, k), (3, _as_str(v))]))      # user property
        else:
            inject.append((2, [(1, [(1, k), (2, _as_str(v))]), (2, "_ab"), (3, ms)]))  # event parameter
    bundle: list[tuple[int, Any]] = [(1, 1), *events, *inject, *props, (4, ms), (5, ms - 40), (8, "android"), (9, "14"),
                                      (10, rng.choice(MODELS)), (11, "en-us"), (12, -300), (14, rng.choice(PACKAGES)),
                                      (16, "2.3.1"), (17, 231710), (21, _hex(rng, 32)), (25, "1:1044200112345:android:" + _hex(rng, 16))]
    return _pb([(1, bundle)])


def _jwt(rng: random.Random, claims: dict[str, Any]) -> str:
    def seg(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).decode().rstrip("=")
    return ".".join((seg(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()), seg(json.dumps(claims).encode()),
                     seg(rng.getrandbits(256).to_bytes(32, "big"))))


def _multipart(rng: random.Random, parts: list[tuple[str, str, str | None]]) -> tuple[bytes, str]:
    boundary = f"----datareach{_hex(rng, 24)}"
    out = []
    for name, value, ctype in parts:
        head = f'Content-Disposition: form-data; name="{name}"'
        if ctype:
            head += f"\r\nContent-Type: {ctype}"
        out.append(f"--{boundary}\r\n{head}\r\n\r\n{value}\r\n")
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode(), f"multipart/form-data; boundary={boundary}"


def _compress(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    if kind == "deflate":
        return zlib.compress(data)
    if kind == "br":
        return brotli.compress(data)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(kind)


def _nest(payload: dict[str, Any], path: tuple[str, ...], fields: dict[str, Any]) -> None:
    node: Any = payload
    for step in path:
        if isinstance(node, list):
            node = node[int(step)]
            continue
        if step not in node or not isinstance(node[step], dict | list):
            node[step] = {}
        node = node[step]
    node.update(fields)


def _header_name(key: str) -> str:
    return "X-" + "-".join(p.capitalize() for p in re.split(r"[_\W]+", key) if p)


def render(sdk: Sdk, carrier: str, fields: dict[str, Any], rng: random.Random, ts: float) -> Exchange:
    """One request of ``sdk``'s shape with ``fields`` placed two or three layers deep by ``carrier``."""
    headers: list[tuple[str, str]] = [("User-Agent", _ua(rng)), *sdk.headers]
    method, body, path = "POST", b"", sdk.path.replace("{}", _uuid(rng))
    query: dict[str, str] = {}
    payload = sdk.payload(rng, ts)
    nest = sdk.nests[rng.randrange(len(sdk.nests))]
    ctype = "application/json"

    def placed() -> dict[str, Any]:
        p = json.loads(json.dumps(payload))
        _nest(p, nest, fields)
        return p

    steps = carrier.split(">")
    if carrier in ("protobuf", "gzip>protobuf"):
        body, ctype = _firebase_batch(rng, ts, fields), "application/x-www-form-urlencoded"
    elif steps[-1] == "json" and steps[0] in ("json", "gzip", "deflate", "br", "zstd") and len(steps) <= 2:
        body = json.dumps(placed()).encode()
    elif carrier == "json>json-string":
        inner = {"af_revenue": f"{rng.randrange(1, 50)}.99", "af_currency": "USD", **fields}
        p = json.loads(json.dumps(payload))
        p[sdk.string_key or "payload"] = json.dumps(inner)
        body = json.dumps(p).encode()
    elif carrier == "json>base64>json":
        body = json.dumps({"sdkVersion": "7.5.1", "data": base64.b64encode(json.dumps(placed()).encode()).decode()}).encode()
    elif carrier == "base64>gzip>json":
        body, ctype = base64.b64encode(gzip.compress(json.dumps(placed()).encode(), mtime=0)), "text/plain"
    elif carrier == "query":
        method = "GET"
        query = {**sdk.flat(rng, ts), **{k: _as_str(v) for k, v in fields.items()}}
    elif carrier == "query>base64>json":
        method = "GET"
        query = {"data": base64.b64encode(json.dumps(placed()).encode()).decode(), "ip": "1", "verbose": "0"}
    elif carrier == "form":
        body = urlencode({**sdk.flat(rng, ts), **{k: _as_str(v) for k, v in fields.items()}}).encode()
        ctype = "application/x-www-form-urlencoded"
    elif carrier == "form>json-string":
        body = urlencode({**sdk.flat(rng, ts), sdk.string_key or "payload": json.dumps(placed())}).encode()
        ctype = "application/x-www-form-urlencoded"
    elif carrier == "multipart":
        flat = {**sdk.flat(rng, ts), **{k: _as_str(v) for k, v in fields.items()}}
        body, ctype = _multipart(rng, [(k, v, None) for k, v in flat.items()])
    elif carrier == "multipart>json":
        flat = sdk.flat(rng, ts)
        body, ctype = _multipart(rng, [*((k, v, None) for k, v in flat.items()), ("event", json.dumps(placed()), "application/json")])
    elif carrier in ("envelope>json", "gzip>envelope>json"):
        event = json.dumps(placed())
        head = json.dumps({"event_id": _hex(rng, 32), "sent_at": _iso(ts), "sdk": {"name": "sentry.java.android", "version": "7.3.0"}})
        item = json.dumps({"type": "event", "content_type": "application/json", "length": len(event.encode())})
        body, ctype = f"{head}\n{item}\n{event}\n".encode(), "application/x-sentry-envelope"
    elif carrier == "header":
        (key, value), = fields.items()
        headers.append((_header_name(key), _as_str(value)))
        body = json.dumps(payload).encode()
    elif carrier == "cookie":
        (key, value), = fields.items()
        jar = [("sid", _alnum(rng, 24)), (key, quote(_as_str(value), safe="")), ("_ga", f"GA1.2.{rng.randrange(10**9)}.{int(ts)}")]
        headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in jar)))
        method = "GET"
    elif carrier == "header>jwt":
        claims = {"iss": "https://auth.quickcart.example", "sub": _uuid(rng), "iat": int(ts), "exp": int(ts) + 3600,
                  "ctx": {"scope": "cart:write", **fields}}
        headers.append(("Authorization", f"Bearer {_jwt(rng, claims)}"))
        body = json.dumps(payload).encode()
    elif carrier == "path":
        (_key, value), = fields.items()
        path = sdk.path.replace("{}", quote(_as_str(value), safe=""))
        method = "PUT"
        body = json.dumps(payload).encode()
    else:
        raise ValueError(f"unknown carrier {carrier!r}")
    if steps[0] in ("gzip", "deflate", "br", "zstd"):
        body = _compress(steps[0], body)
        headers.append(("Content-Encoding", steps[0]))
    if body:
        headers += [("Content-Type", ctype), ("Content-Length", str(len(body)))]
    if query:
        path += ("&" if "?" in path else "?") + urlencode(query)
    headers.insert(0, ("Host", sdk.host))
    return Exchange(ts=ts, scheme="https", method=method, host=sdk.host, url=f"https://{sdk.host}{path}", target=path,
                    http_version="HTTP/1.1", request_headers=headers, request_body=body, status=200,
                    server_port=443, app=rng.choice(PACKAGES))


# --- the corpus ---------------------------------------------------------------------------------

KEYS: dict[str, tuple[str, ...]] = {
    "advertising_id": ("advertiserId", "gps_adid", "advertising_id", "idfa", "ifa", "rdid", "gaid", "ad_id"),
    "android_id": ("android_id", "androidId", "hardware_id", "aid"),
    "imei": ("imei", "deviceId", "device_imei", "di"),
    "serial": ("serial", "serialNumber", "build_serial", "sn"),
    "mac": ("mac", "wifi_mac", "mac_address", "mc"),
    "email": ("email", "user_email", "login", "customer_user_id"),
    "phone": ("phone", "phone_number", "msisdn", "mobile"),
    "name": ("name", "full_name", "display_name"),
    "ip": ("ip", "ip_address", "client_ip", "device_ip"),
    "account_id": ("user_id", "uid", "external_user_id", "app_user_id"),
}
NEUTRAL_KEYS = ("p1", "ext", "v", "d", "x", "extra", "uinfo", "k")


class _Cycle:
    """Deterministic round-robin over a shuffled list (so every option gets its share)."""

    def __init__(self, rng: random.Random, items: tuple[str, ...]) -> None:
        self.items = list(items)
        rng.shuffle(self.items)
        self.i = 0

    def next(self) -> str:
        item = self.items[self.i % len(self.items)]
        self.i += 1
        return item


def _sdk_for(rng: random.Random, carrier: str) -> Sdk:
    return rng.choice([s for s in SDKS if carrier in s.carriers])


def _location_fields(rng: random.Random, layout: str, lat: str, lon: str) -> dict[str, Any]:
    if layout == "json-num":
        a, b = rng.choice((("lat", "lng"), ("latitude", "longitude"), ("lat", "lon")))
        return {a: float(lat), b: float(lon)}
    if layout == "json-str":
        a, b = rng.choice((("lat", "lng"), ("latitude", "longitude"), ("geo_lat", "geo_lon")))
        return {a: lat, b: lon}
    if layout == "geojson":
        return {"location": {"type": "Point", "coordinates": [float(lon), float(lat)]}}
    if layout == "array":
        return {"latlng": [float(lat), float(lon)]}
    if layout == "geo-uri":
        return {rng.choice(("geo", "location")): f"geo:{lat},{lon}"}
    return {rng.choice(("ll", "location", "coords")): f"{lat},{lon}"}


def _profile_positives(rng: random.Random, p: Profile, clock: Iterator[float]) -> Iterator[Case]:
    for data_type in STRING_TYPES:
        for encoding in encodings_for(data_type):
            hashed = encoding in HASH_ENCODINGS
            variants = _Cycle(rng, HASH_VARIANTS.get(data_type, ("as-is",)) if hashed else VARIANTS[data_type])
            carriers = _Cycle(rng, CARRIERS)
            for _ in range(24 if encoding == "plain" else 12 if encoding.startswith("percent") else 8):
                variant, carrier = variants.next(), carriers.next()
                needle = encode_value(variant_value(p, data_type, variant), encoding)
                if rng.random() < 0.3:
                    key = rng.choice(NEUTRAL_KEYS)
                elif hashed:
                    key = f"{rng.choice(KEYS[data_type])}_{encoding.split()[0]}"
                else:
                    key = rng.choice(KEYS[data_type])
                sdk = _sdk_for(rng, carrier)
                label = Label("profile+", data_type, sdk.name, carrier, frozenset({data_type}), frozenset(),
                              frozenset() if hashed else PATTERN_OF.get(data_type, frozenset()),
                              data_type, variant, encoding, (needle,))
                yield Case(render(sdk, carrier, {key: needle}, rng, next(clock)), label)
    structured = tuple(c for c in CARRIERS if c not in SINGLE_CARRIERS)
    for encoding in LOCATION_ENCODINGS:
        layouts = _Cycle(rng, LOCATION_LAYOUTS if encoding == "plain" else ("pair",))
        for decimals in (3, 4, 5, 6):
            carriers = _Cycle(rng, CARRIERS)
            for _ in range(8 if encoding == "plain" else 3):
                layout = layouts.next()
                carrier = carriers.next()
                if layout in STRUCTURED_LAYOUTS and carrier in SINGLE_CARRIERS:
                    carrier = rng.choice(structured)
                lat, lon = location_strings(p, decimals)
                if encoding == "plain":
                    fields, needles = _location_fields(rng, layout, lat, lon), (lat, lon)
                else:
                    needle = encode_value(f"{lat},{lon}", encoding)
                    fields, needles = {rng.choice(("ll", "loc", "geo")): needle}, (needle,)
                sdk = _sdk_for(rng, carrier)
                label = Label("profile+", "location", sdk.name, carrier, frozenset({"location"}), frozenset(),
                              PATTERN_OF["location"], "location", f"{layout}@{decimals}", encoding, needles)
                yield Case(render(sdk, carrier, fields, rng, next(clock)), label)


#: Somebody else's data: (pattern type, keys, value maker, expected, allowed).
def _fingerprint(rng: random.Random) -> dict[str, Any]:
    w, h = rng.choice(((1080, 2400), (1440, 3120), (720, 1600), (1170, 2532)))
    return {"screen_width": w, "screen_height": h, "screen_density": rng.choice((2.625, 3.0, 2.0)),
            "timezone": rng.choice(("America/Chicago", "Europe/Berlin", "Asia/Kolkata")), "locale": rng.choice(("en_US", "de_DE", "hi_IN")),
            "carrier": rng.choice(("T-Mobile", "Vodafone DE", "Jio 4G")), "battery_level": rng.randrange(5, 100),
            "charging": rng.random() < 0.5, "total_memory": rng.choice((5_905_580_032, 7_812_345_856)),
            "free_storage": rng.randrange(10**9, 10**11), "cpu_cores": 8, "cpu_abi": "arm64-v8a",
            "build_fingerprint": f"google/panther/panther:14/UQ1A.240205.004/{rng.randrange(10**7, 10**8)}:user/release-keys",
            "kernel_version": f"5.10.{rng.randrange(100, 200)}-android13-4-0000{rng.randrange(1000)}", "boot_time": int(T0) - rng.randrange(10**5, 10**6),
            "brightness": round(rng.random(), 3), "volume": rng.randrange(16), "fonts_hash": _hex(rng, 32)}


def _other_values(rng: random.Random, kind: str) -> tuple[dict[str, Any], frozenset[str], frozenset[str]]:
    none: frozenset[str] = frozenset()
    if kind == "email":
        return {rng.choice(("email", "user_email", "contact", "login", "em")): _email(rng)}, frozenset({"email"}), none
    if kind == "phone":
        return {rng.choice(("phone", "msisdn", "mobile", "phone_number", "tel")): _phone(rng)}, frozenset({"phone"}), none
    if kind == "imei":
        return {rng.choice(("imei", "device_imei", "imei1", "deviceId")): _imei(rng)}, frozenset({"imei"}), none
    if kind == "mac_address":
        mac = _mac(rng)
        return {rng.choice(("mac", "wifi_mac", "mac_address", "macAddress")): mac.upper() if rng.random() < 0.3 else mac}, frozenset({"mac_address"}), none
    if kind == "advertising_id":
        u = _uuid(rng)
        key = rng.choice(("gaid", "idfa", "gps_adid", "advertising_id", "advertiserId", "ifa", "rdid", "adid"))
        return {key: u.upper() if key == "idfa" else u}, frozenset({"advertising_id"}), frozenset({"vendor_id"})
    if kind == "vendor_id":
        return {rng.choice(("idfv", "vendor_id", "identifierForVendor")): _uuid(rng).upper()}, frozenset({"vendor_id"}), frozenset({"advertising_id"})
    if kind == "android_id":
        return {rng.choice(("android_id", "androidId", "androidid")): _hex(rng, 16)}, frozenset({"android_id"}), none
    if kind == "precise_location":
        lat, lon = _coord(rng, rng.choice((4, 5, 6)))
        layout = rng.choice(("json-num", "json-str", "pair", "geojson"))
        return _location_fields(rng, layout, str(lat), str(lon)), frozenset({"precise_location"}), none
    if kind == "private_ip":
        return {rng.choice(("local_ip", "lan_ip", "ip_address", "private_ip", "wifi_ip")): _private_ip(rng)}, frozenset({"private_ip"}), none
    if kind == "wifi_ssid":
        ssid = rng.choice(("HomeNet-5G", "FRITZ!Box 7590 KL", "Vodafone-7C21", "NETGEAR42", "TP-Link_3F8A", "CafeBlue Guest"))
        return {rng.choice(("ssid", "wifi_ssid", "wifiName")): ssid}, frozenset({"wifi_ssid"}), none
    if kind == "wifi_bssid":
        return {rng.choice(("bssid", "wifi_bssid")): _mac(rng)}, frozenset({"wifi_bssid"}), frozenset({"mac_address"})
    if kind == "device_fingerprint":
        return {"device": _fingerprint(rng)}, frozenset({"device_fingerprint"}), frozenset({"wifi_ssid"})
    raise ValueError(kind)


OTHER_KINDS = ("email", "phone", "imei", "mac_address", "advertising_id", "vendor_id", "android_id",
               "precise_location", "private_ip", "wifi_ssid", "wifi_bssid", "device_fingerprint")


#: Pattern types only their key tells apart (a UUID is an advertising ID only under gaid/idfa...).
KEYED_KINDS = frozenset({"advertising_id", "vendor_id", "android_id", "wifi_ssid", "wifi_bssid", "private_ip", "imei"})


def _near_miss(rng: random.Random, p: Profile, data_type: str) -> tuple[dict[str, Any], frozenset[str]]:
    """The profile's value with a small change: not the user's, but maybe somebody's (pattern)."""
    v = _profile_value(p, data_type) if data_type != "location" else ""
    if data_type == "email":
        return {"email": v.lower().replace("example.net", rng.choice(("example.com", "gmail.com")))}, frozenset({"email"})
    if data_type == "phone":
        return {"phone": "+14155550" + rng.choice(("174", "137", "713"))}, frozenset({"phone"})
    if data_type == "imei":
        body = v[:-2] + str((int(v[-2]) + rng.randrange(1, 10)) % 10)
        return {"imei": body + _luhn_digit(body)}, frozenset({"imei"})
    if data_type == "mac":
        return {"mac": v[:-2] + f"{(int(v[-2:], 16) + rng.randrange(1, 255)) % 256:02x}"}, frozenset({"mac_address"})
    if data_type == "advertising_id":
        i = rng.randrange(len(v))
        while v[i] == "-":
            i = rng.randrange(len(v))
        return {"gaid": v[:i] + ("0" if v[i] != "0" else "1") + v[i + 1:]}, frozenset({"advertising_id"})
    if data_type == "android_id":
        return {"android_id": v[:-1] + ("1" if v[-1] != "1" else "2")}, frozenset({"android_id"})
    if data_type == "ip":
        return {"ip": "198.51.100.24"}, frozenset()
    if data_type == "serial":
        return {"serial": v[:-1] + "M"}, frozenset()
    if data_type == "name":
        return {"name": rng.choice(("Jamie Riviera", "Jaime Rivera", "James Rivera"))}, frozenset()
    if data_type == "location":  # the user's latitude, somebody else's longitude
        assert p.latitude is not None
        return {"lat": round(p.latitude, 5), "lng": round(rng.uniform(-10, 30), 5)}, frozenset({"precise_location"})
    raise ValueError(data_type)


def _other(rng: random.Random, p: Profile, clock: Iterator[float]) -> Iterator[Case]:
    for kind in OTHER_KINDS:
        carriers = _Cycle(rng, CARRIERS)
        for _ in range(36):
            fields, expected, allowed = _other_values(rng, kind)
            carrier = carriers.next()
            if carrier in SINGLE_CARRIERS and (len(fields) > 1 or not isinstance(next(iter(fields.values())), str)):
                carrier = "json"
            if carrier == "path" and kind in KEYED_KINDS:  # a path segment has no key to tell these apart
                carrier = "json"
            sdk = _sdk_for(rng, carrier)
            yield Case(render(sdk, carrier, fields, rng, next(clock)),
                       Label("other", kind, sdk.name, carrier, frozenset(), expected, allowed))
    for data_type in (*STRING_TYPES[:-1], "location"):
        carriers = _Cycle(rng, tuple(c for c in CARRIERS if c not in SINGLE_CARRIERS))
        for _ in range(8):
            fields, expected = _near_miss(rng, p, data_type)
            carrier = carriers.next()
            sdk = _sdk_for(rng, carrier)
            yield Case(render(sdk, carrier, fields, rng, next(clock)),
                       Label("other", f"near-miss {data_type}", sdk.name, carrier, frozenset(), expected, frozenset()))


NEGATIVE_KINDS = ("random token", "session uuid", "hash of other value", "coarse coordinates", "timestamp",
                  "version number", "order number", "base64 random bytes", "commit hash", "public server ip",
                  "screen coordinates")


def _negative_fields(rng: random.Random, kind: str) -> dict[str, Any]:
    if kind == "random token":
        maker = rng.choice((lambda: _hex(rng, 32), lambda: _hex(rng, 16), lambda: _alnum(rng, 20), lambda: _alnum(rng, 43)))
        return {rng.choice(("nonce", "token", "sig", "signature", "csrf", "state", "etag", "checksum")): maker()}
    if kind == "session uuid":
        u = _uuid(rng)
        return {rng.choice(("session_id", "request_id", "event_id", "trace_id", "message_id", "correlation_id", "x_request_id")): u.upper() if rng.random() < 0.2 else u}
    if kind == "hash of other value":
        other = rng.choice((_email(rng), _phone(rng), _imei(rng), _uuid(rng), _mac(rng), _hex(rng, 16)))
        algo = rng.choice(("md5", "sha1", "sha224", "sha256", "sha512"))
        return {rng.choice(("em", "hashed_email", "ph", "idmd5", "email_sha256", "uid_hash", "h")): hashlib.new(algo, other.encode()).hexdigest()}
    if kind == "coarse coordinates":
        lat, lon = _coord(rng, 1)
        return {"lat": lat, "lng": lon} if rng.random() < 0.6 else {"ll": f"{lat},{lon}"}
    if kind == "timestamp":
        return {rng.choice(("ts", "timestamp", "created_at", "time", "sent_at")): rng.choice((str(int(T0) + rng.randrange(10**6)), str(int(T0 * 1000) + rng.randrange(10**9)), _iso(T0 + rng.randrange(10**7))))}
    if kind == "version number":
        v = rng.choice((f"{rng.randrange(1, 30)}.{rng.randrange(20)}.{rng.randrange(20)}", f"10.{rng.randrange(10)}.{rng.randrange(10)}.{rng.randrange(1000, 9999)}",
                        f"{rng.randrange(1, 9)}.{rng.randrange(10)}.{rng.randrange(10)}-beta.{rng.randrange(9)}"))
        return {rng.choice(("app_version", "sdk_version", "version", "build", "os_build")): v}
    if kind == "order number":
        def bad_luhn(n: int) -> str:
            body = "".join(rng.choice(string.digits) for _ in range(n - 1))
            return body + str((int(_luhn_digit(body)) + rng.randrange(1, 10)) % 10)
        v = rng.choice((f"ORD-{rng.randrange(2019, 2025)}-{rng.randrange(10**6)}", bad_luhn(15), bad_luhn(16), str(rng.randrange(10**11, 10**12))))
        return {rng.choice(("order_id", "transaction_id", "receipt", "invoice_no")): v}
    if kind == "base64 random bytes":
        return {rng.choice(("payload", "blob", "iv", "key", "state")): base64.b64encode(rng.getrandbits(8 * (n := rng.randrange(16, 49))).to_bytes(n, "big")).decode()}
    if kind == "commit hash":
        return {rng.choice(("commit", "build_id", "git_sha", "revision")): _hex(rng, rng.choice((7, 12, 40)))}
    if kind == "public server ip":
        return {rng.choice(("server_ip", "edge", "resolved", "cdn_ip")): _public_ip(rng)}
    if kind == "screen coordinates":
        return {"x": round(rng.random(), 4), "y": round(rng.random(), 4), "pressure": round(rng.random(), 4)}
    raise ValueError(kind)


def _negatives(rng: random.Random, clock: Iterator[float]) -> Iterator[Case]:
    none: frozenset[str] = frozenset()
    for kind in NEGATIVE_KINDS:
        carriers = _Cycle(rng, CARRIERS)
        for _ in range(100):
            fields = _negative_fields(rng, kind)
            carrier = carriers.next()
            if carrier in SINGLE_CARRIERS and (len(fields) > 1 or not isinstance(next(iter(fields.values())), str)):
                carrier = "form"
            sdk = _sdk_for(rng, carrier)
            yield Case(render(sdk, carrier, fields, rng, next(clock)), Label("negative", kind, sdk.name, carrier, none, none, none))


def generate(seed: int = SEED) -> list[Case]:
    """The whole corpus, always the same for one seed."""
    rng = random.Random(seed)
    p = load_test_profile()

    def ticks() -> Iterator[float]:
        t = T0
        while True:
            t += rng.uniform(0.05, 3.0)
            yield round(t, 6)

    clock = ticks()
    return [*_profile_positives(rng, p, clock), *_other(rng, p, clock), *_negatives(rng, clock)]


def exchange_to_json(ex: Exchange) -> dict[str, Any]:
    return {"ts": ex.ts, "method": ex.method, "url": ex.url, "http_version": ex.http_version,
            "headers": ex.request_headers, "body_b64": base64.b64encode(ex.request_body).decode()}


def describe(cases: list[Case]) -> str:
    lines = [f"{len(cases)} requests"]
    for group in GROUPS:
        sub = [c for c in cases if c.label.group == group]
        lines.append(f"  {group:9} {len(sub):5}  " + ", ".join(f"{k} {n}" for k, n in sorted(Counter(c.label.kind for c in sub).items())))
    pos = [c for c in cases if c.label.group == "profile+"]
    lines.append("  encodings: " + ", ".join(f"{k} {n}" for k, n in sorted(Counter(c.label.encoding for c in pos).items())))
    lines.append("  carriers:  " + ", ".join(f"{k} {n}" for k, n in sorted(Counter(c.label.carrier for c in cases).items())))
    lines.append("  shapes:    " + ", ".join(f"{k} {n}" for k, n in sorted(Counter(c.label.sdk for c in cases).items())))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--dump", type=Path, help="write the corpus as JSON lines (request and label)")
    args = ap.parse_args(argv)
    cases = generate(args.seed)
    print(describe(cases))
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as f:
            for c in cases:
                f.write(json.dumps({"request": exchange_to_json(c.exchange), "label": c.label.to_json()}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
