"""Personal data recognised without a profile: by the value, weighed by the key it was under.

:func:`detect_patterns` looks at one :class:`~datareach.detect.types.Layer`;
:func:`detect_fingerprint` looks at all layers of one request together, for what only shows in
combination (a device fingerprint, and latitude/longitude sent as two separate fields).

**Value and key together.** A key name alone is never a finding (``{"email": "n/a"}`` is not an
e-mail address). A value alone is a finding only where its shape is unambiguous (an e-mail
address, a ``+``-prefixed valid phone number, a MAC address with separators...); where it is
not (a bare UUID, 12 hex digits, a national phone number, one decimal number) it takes a key
that says what it is. The key raises the confidence: key and value together always score
higher than the same value alone.

Keys are split into lower-case tokens (``googleAdId`` -> ``google ad id``, ``X-Device-ID`` ->
``x device id``) and matched as tokens or runs of up to three tokens joined (``adid``,
``googleadid``), so ``head_id`` never reads as ``ad id`` and ``hotel`` never as ``tel``.

data_type vocabulary and thresholds
-----------------------------------
``email``
    local@domain whose last label is a top-level domain of the ICANN section of the public
    suffix list bundled with ``publicsuffixlist`` (so ``icon@2x.png`` and ``a@b.json`` are
    not addresses). ASCII addresses only. Skipped: URL credentials (``https://key@host``, e.g.
    crash-reporter DSNs), ``noreply``-style senders, image-scale names (``@2x.``).
    0.95 under email/mail/user/login/account keys, 0.8 as the whole value, 0.7 inside text.
``phone``
    Validated with ``phonenumbers.is_valid_number``. A ``+``-prefixed number is parsed with
    its own country code anywhere (0.6 without a key). Under phone-like keys (phone, msisdn,
    tel, mobile, cell...) the value may be national, and :data:`DEFAULT_REGIONS` are tried
    (0.95 with ``+``, 0.9 with ``00``, 0.8 formatted or with a trunk ``0``, 0.7 a bare digit
    run). Bare digit runs without a phone-like key are skipped: timestamps, order numbers and
    IDs are digit runs too. Some default regions accept almost any 8-10 digits, so under a
    phone key a national value is still not a phone number when it is Unix seconds or
    milliseconds of 2001-2039, a YYYYMMDD date, two digits or fewer repeated, or when the
    key's last token says it is *about* the number (``phone_verified_at``, ``phone_hash``,
    ``mobile_model``, ``phone_country``).
``imei``
    15 digits (optionally ``AA-BBBBBB-CCCCCC-D``) passing the Luhn check, whose first two
    digits are a GSMA reporting body identifier (01, 10, 30, 33, 35, 44, 45, 49, 50-54, 86,
    91, 98, 99; this also rules out 15-digit Amex card numbers, 34/37, and 16/17-prefixed
    microsecond timestamps) and not all one digit. 0.95 under imei/meid/device_id keys, 0.45
    alone (random 15-digit IDs pass both checks about 1.7 % of the time).
``mac_address``
    Six octets with ``:`` or ``-``; under mac keys also 12 hex digits or ``aabb.ccdd.eeff``.
    Excluded: all-zero, broadcast, multicast (group bit set), and ``02:00:00:00:00:00``
    (the constant Android 6+ and iOS 7+ return to apps instead of the real address).
    **Locally administered** addresses (bit 0x02 of the first octet) are kept, at 0.75x the
    confidence: they are mostly the randomised per-network MACs of Android 10+/iOS 14+, which
    stay the same for one network for a long time and still single the device out there.
    0.95 with a key and separators, 0.85 with a key and bare hex, 0.7 alone.
``advertising_id`` / ``vendor_id`` / ``android_id``
    A UUID (or 32 hex digits, 0.8) under gaid/idfa/adid/aaid/ifa/oaid/maid/advertising_id/
    ad_id/google_ad_id/gps_adid keys -> ``advertising_id`` (0.95); under idfv/vendor_id keys
    -> ``vendor_id`` (0.9). 16 hex digits under android_id/ssaid keys -> ``android_id``
    (0.9). A UUID under any other key is not a finding (request and session IDs are UUIDs).
    Never counted: the all-zero UUID (limit ad tracking / ATT denied), 32 hex digits under a
    key naming a hash (``idfa_md5``: a hash of an ID, found by the profile matcher when the
    ID is known), and ``9774d56d682e549c`` (the ANDROID_ID shared by a whole generation of
    Android 2.2 devices).
``precise_location``
    Coordinates precise to about 1 km or better: **at least 3 decimals on one coordinate and
    2 on the other** (0.001 degree is ~111 m; 0.01 is ~1.1 km, so two 2-decimal values do
    not locate within the 1,000 m of 28 CFR 202.242). Trailing zeros do not count
    (``48.800000`` is a 1-decimal value printed with padding). Rejected: 0,0 (null island)
    and values out of range. Single values ``"48.8584,2.2945"`` (also ``;``/space separated,
    ``geo:`` URIs, ``[...]`` arrays, an optional altitude) under loc/location/ll/geo/latlng/
    position/gps keys are read lat,lng; under ``coordinates`` keys (GeoJSON) lng,lat; an
    order that is out of range is swapped (0.85). Separate lat/latitude and lng/lon/long/
    longitude fields, and JSON arrays whose elements the decoder yields one per layer, are
    paired by :func:`detect_fingerprint` (0.9 and 0.85), which sees the whole request: one
    field alone is not a finding.
``private_ip``
    RFC 1918 (10/8, 172.16/12, 192.168/16), IPv4 link-local 169.254/16 (not the
    169.254.169.254 metadata address), IPv6 ULA fc00::/7 and link-local fe80::/10, anywhere
    in a value: a device's LAN address reveals the network behind the NAT. Loopback and
    carrier-grade NAT (100.64/10) are not. Kept simple: not a finding in the request's own
    ``Host``/``:authority`` header (the request is *to* that LAN host, nothing leaks), nor
    under version/build/v keys, also when the key is in the same text (``"v":"10.2.0.15"``,
    ``build=10.2.0.15``); ``10.x.y.z`` right after a letter or ``/`` (``MyApp/10.2.0.15``)
    is a version, not an address. 0.9 under ip/addr/gateway/router/dns keys, 0.5 alone (0.4
    for 10/8, which version strings hit most).
``wifi_ssid`` / ``wifi_bssid``
    An SSID (1-32 bytes, quotes stripped, not ``<unknown ssid>``/null/unknown) under ssid or
    wifi+name keys (0.8); a MAC under bssid/ap_mac keys, or under a bare ``wifi`` key (but not
    ``wifi_mac``, the device's own Wi-Fi address), is a
    BSSID (0.9; the locally-administered factor applies). Other values under a bare ``wifi``
    key (``on``, ``true``, ``connected``) are not findings.
``device_fingerprint`` (:func:`detect_fingerprint` only)
    Distinct key families with a real value (not empty/null/unknown, at most 256 bytes) among
    model, os, screen, battery, carrier, timezone, locale, hardware (ram/cpu/storage) and
    boot (boot time/uptime). **At least 4 families** -> one hit, confidence
    ``min(0.9, 0.1 + 0.1 * families)`` (4 -> 0.5, 8+ -> 0.9); its value lists
    ``family=value`` pairs.

Cost: this runs on every layer of every request. All regexes are compiled, work on the bytes
(nothing is decoded except a match), and each scanner has a cheap byte test first
(``b"@" in value``...). Full-value checks only look at values of at most 256 bytes; key
classification is cached. Above 4 KiB, the IMEI and MAC scanners first look for their shape
in a translated copy of the value (``bytes.translate``, one C pass) and run their regex only
there. At most :data:`MAX_HITS_PER_TYPE` distinct values per data type and layer are
reported, best confidence first (scanning stops there), and at most 500 phone candidates and
2,000 ``@`` signs are examined per layer. Measured: ~20 ms per MB of ordinary JSON, ~100 ms
per MB of JSON built to trigger every scanner.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from datareach.detect.types import Layer

__all__ = ["DEFAULT_REGIONS", "MAX_HITS_PER_TYPE", "PatternHit", "detect_fingerprint", "detect_patterns"]

#: Regions tried, in order, for a national number under a phone-like key.
DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "IN", "CN", "BR", "JP", "ES", "IT", "NL", "CA", "AU", "RU", "MX")
#: Distinct values reported per data type and layer.
MAX_HITS_PER_TYPE = 16
#: Values longer than this are only scanned, never read as one value.
_SHORT = 256
#: "@" signs looked at in one layer (bodies of mail-heavy HTML would otherwise cost more).
_MAX_AT = 2000
#: "+"-prefixed candidates handed to phonenumbers in one layer (each parse costs ~50 us).
_MAX_PHONE_PARSES = 500


@dataclass(frozen=True)
class PatternHit:
    """Personal data recognised by pattern: what it is, the matched value, how sure (0..1)."""

    data_type: str
    value: str
    confidence: float


# --------------------------------------------------------------------------------------------
# keys

_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

_FAMILIES: dict[str, frozenset[str]] = {
    name: frozenset(words)
    for name, words in {
        "email": ("email", "mail", "emailaddress", "emailaddr"),
        "user": ("user", "username", "login", "account", "userid", "accountid", "contact"),
        "phone": ("phone", "msisdn", "tel", "telephone", "mobile", "mobilenumber", "phonenumber", "phoneno",
                  "cell", "cellphone", "mdn", "telno"),
        "imei": ("imei", "meid", "imeisv"),
        "device_id": ("deviceid", "udid", "hwid", "hardwareid", "deviceidentifier"),
        "mac": ("mac", "macaddr", "macaddress", "wifimac", "wlanmac", "hwaddr", "hwaddress", "ethmac",
                "bluetoothmac", "btmac"),
        "bssid": ("bssid", "apmac", "routermac", "wifibssid", "accesspointmac"),
        "ssid": ("ssid", "wifissid", "wifiname", "wlanname", "wifinetwork", "wifinetworkname"),
        "wifi": ("wifi", "wlan"),
        "adid": ("gaid", "idfa", "adid", "aaid", "ifa", "oaid", "maid", "advertisingid", "advertiserid",
                 "googleadid", "gpsadid", "adidentifier", "advertisingidentifier", "googleadvertisingid"),
        "vendor": ("idfv", "vendorid", "identifierforvendor", "vendoridentifier"),
        "android_id": ("androidid", "ssaid"),
        "lat": ("lat", "latitude"),
        "lng": ("lng", "lon", "long", "longitude"),
        "loc": ("loc", "location", "ll", "geo", "latlng", "latlon", "latlong", "lnglat", "lonlat", "coords",
                "coordinates", "position", "geoposition", "gps", "geolocation", "geopoint", "coordinate"),
        "geojson": ("coordinates", "lnglat", "lonlat"),
        "ip": ("ip", "ipaddr", "ipaddress", "ipv4", "ipv6", "localip", "lanip", "privateip", "clientip",
               "deviceip", "addr", "gateway", "router", "dns", "netmask", "subnet"),
        "version": ("version", "ver", "v", "build", "appversion", "sdkversion", "osversion", "release", "vsn"),
        "hash": ("md5", "sha1", "sha256", "sha512", "sha", "hash", "hashed", "digest"),
        "host": ("host", "authority"),
    }.items()
}

# Device-fingerprint key families: several of them in one request single a device out.
_FP_FAMILIES: dict[str, frozenset[str]] = {
    name: frozenset(words)
    for name, words in {
        "model": ("model", "devicemodel", "hwmodel", "phonemodel", "manufacturer", "devicebrand",
                  "devicemanufacturer", "devicemake", "hardware", "devicename"),
        "os": ("os", "osversion", "osv", "osbuild", "osname", "systemversion", "platformversion", "buildid",
               "buildnumber", "buildfingerprint", "builddisplay", "sdkint", "apilevel", "kernel",
               "kernelversion", "firmware", "osapi"),
        "screen": ("screen", "resolution", "dpi", "density", "ppi", "screensize", "displaysize",
                   "displaywidth", "displayheight", "displayresolution", "displaymetrics"),
        "battery": ("battery", "batterylevel", "charging", "batterystate", "ischarging", "powersource"),
        "carrier": ("carrier", "mcc", "mnc", "mccmnc", "simoperator", "networkoperator", "carriername",
                    "operatorname"),
        "timezone": ("timezone", "tz", "tzoffset", "utcoffset", "gmtoffset", "timezoneoffset"),
        "locale": ("locale", "language", "lang", "languages", "devicelanguage"),
        "hardware": ("ram", "memory", "totalmemory", "totalram", "cpu", "cores", "cpucores", "cpuabi", "abi",
                     "processor", "storage", "totalstorage", "disk", "disksize"),
        "boot": ("boottime", "uptime", "lastboot", "bootedat", "elapsedrealtime", "systemuptime"),
    }.items()
}

_NO_KINDS: frozenset[str] = frozenset()
#: The value-only families of :func:`detect_patterns` (what :mod:`.prefilter` gates).
_ALL_FAMILIES: frozenset[str] = frozenset({"email", "phone", "imei", "mac", "private_ip"})
# Values that say nothing about the device (0, true and false do: battery level, charging).
_FP_EMPTY = frozenset({b"", b"null", b"nil", b"none", b"unknown", b"undefined", b"n/a", b"na", b"-", b"(null)"})


@lru_cache(maxsize=16384)
def _grams(key: str) -> frozenset[str]:
    """Lower-case tokens of a key, and runs of two and three of them joined."""
    tokens = [t.lower() for t in _TOKEN.findall(key[-160:])][-24:]
    grams = set(tokens)
    for n in (2, 3):
        for i in range(len(tokens) - n + 1):
            grams.add("".join(tokens[i : i + n]))
    return frozenset(grams)


@lru_cache(maxsize=16384)
def _kinds(key: str) -> frozenset[str]:
    grams = _grams(key)
    return frozenset(name for name, words in _FAMILIES.items() if not grams.isdisjoint(words))


@lru_cache(maxsize=16384)
def _fp_family(key: str) -> str | None:
    grams = _grams(key)
    for name, words in _FP_FAMILIES.items():
        if not grams.isdisjoint(words):
            return name
    return None


# --------------------------------------------------------------------------------------------
# helpers

_WS = b" \t\r\n"
_PLACEHOLDERS = frozenset({
    b"", b"null", b"nil", b"none", b"unknown", b"undefined", b"n/a", b"na", b"-", b"0", b"false", b"true",
    b"<unknown ssid>", b"<none>", b"(null)", b"nan", b"redacted", b"<redacted>", b"hidden", b"<hidden>", b"0x",
    b"-1", b"***", b"wifi", b"wi-fi", b"cellular", b"mobile", b"disconnected", b"connected",
})


#: Above this size, the digit and hex scanners first look for their shape in a translated copy
#: of the value (one C pass) and run their regex only where it occurs.
_PREFILTER = 4096


def _table(groups: dict[bytes, int], default: int) -> bytes:
    table = bytearray([default]) * 256
    for chars, to in groups.items():
        for c in chars:
            table[c] = to
    return bytes(table)


_DIGITS = b"0123456789"
_HEXDIGITS = b"0123456789abcdefABCDEF"
# digits -> "0", IMEI separators -> "-", anything else -> "x"
_DIGIT_SHAPE = _table({_DIGITS: ord("0"), b"- ": ord("-")}, ord("x"))
# hex digits -> "h", MAC separators -> ":", anything else -> "x"
_HEX_SHAPE = _table({_HEXDIGITS: ord("h"), b":-": ord(":")}, ord("x"))
_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _text(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# --------------------------------------------------------------------------------------------
# e-mail

_EMAIL_LOCAL_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-")
_EMAIL_DOMAIN = re.compile(
    rb"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}([A-Za-z]{2,24}|xn--[A-Za-z0-9-]{1,59}))"
    rb"(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
)
_SCALE_LABEL = re.compile(rb"^\d+(?:\.\d+)?x\.", re.IGNORECASE)
_NOREPLY = frozenset({"noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply",
                      "mailer-daemon", "postmaster"})
_tlds: frozenset[str] | None = None
# Used when the bundled public suffix list cannot be read: file extensions are not TLDs.
_NOT_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "webp", "svg", "js", "css", "html", "htm", "json", "xml",
                       "txt", "php", "mp4", "mp3", "pdf", "ts", "map", "ico", "woff", "woff2", "ttf"})


def _load_tlds() -> frozenset[str]:
    """The top-level domains of the ICANN section of the bundled public suffix list."""
    global _tlds
    if _tlds is None:
        found: set[str] = set()
        try:
            import publicsuffixlist

            with open(publicsuffixlist.PSLFILE, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if line.startswith("// ===END ICANN DOMAINS==="):
                        break
                    if not line or line.startswith("//") or "." in line or line[0] in "!*":
                        continue
                    found.add(line.lower())
                    if not line.isascii():
                        with contextlib.suppress(UnicodeError):
                            found.add(line.encode("idna").decode("ascii").lower())
        except (ImportError, OSError, AttributeError):
            found = set()
        _tlds = frozenset(found)
    return _tlds


def _plausible_tld(tld: str) -> bool:
    tlds = _load_tlds()
    if tlds:
        return tld in tlds
    return tld.isalpha() and tld not in _NOT_TLDS


def _emails(value: bytes) -> Iterable[tuple[str, bool]]:
    """(address, is the whole value) for every plausible address in the value."""
    at = value.find(b"@")
    seen = 0
    while at != -1 and seen < _MAX_AT:
        seen += 1
        start = at
        lo = max(0, at - 64)
        while start > lo and value[start - 1] in _EMAIL_LOCAL_CHARS:
            start -= 1
        while start < at and value[start] in b".+-":
            start += 1
        m = _EMAIL_DOMAIN.match(value, at + 1) if start < at else None
        if m is not None and value[max(0, start - 2) : start] != b"//" and len(m.group(1)) <= 253:
            local = value[start:at].decode("ascii").lower()
            tld = m.group(2).decode("ascii").lower()
            if (local not in _NOREPLY and not local.endswith(".") and ".." not in local
                    and not _SCALE_LABEL.match(m.group(1)) and _plausible_tld(tld)):
                whole = value[:start].strip(_WS) == b"" and value[m.end() :].strip(_WS) == b""
                yield value[start : m.end()].decode("ascii"), whole
        at = value.find(b"@", at + 1)


# --------------------------------------------------------------------------------------------
# phone

# Starts with a literal (the regex engine skips to "+" fast); the byte before is checked in code.
_PHONE_INTL = re.compile(rb"\+(?:[ .\-()/]{0,2}[0-9]){8,15}(?![0-9A-Za-z])")
_PHONE_KEYED = re.compile(rb"^(?:tel:)?(?:\+|00)?[0-9 .\-()/]{6,24}$", re.IGNORECASE)


@lru_cache(maxsize=8192)
def _valid_phone(text: str, region: str | None) -> bool:
    """Whether phonenumbers says so (~50 us a parse; a device's number is sent again and again,
    so the answers are kept: bounded, a pure function of its arguments)."""
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    except Exception:  # the library on pathological input: not a phone number
        return False
    return bool(phonenumbers.is_valid_number(num))


# The last token of a phone-like key that says the value is about the number, not the number.
_PHONE_MODIFIERS = frozenset({"at", "time", "ts", "timestamp", "date", "verified", "confirmed", "status", "type",
                              "count", "enabled", "hash", "hashed", "md5", "sha1", "sha256", "country", "code",
                              "prefix", "length", "len", "model", "os", "brand", "version", "carrier"})
_EPOCH_SECONDS = range(1_000_000_000, 2_200_000_000)  # 2001-09-09 .. 2039-09-18


@lru_cache(maxsize=16384)
def _phone_key_modified(key: str) -> bool:
    tokens = _TOKEN.findall(key[-160:])
    return bool(tokens) and tokens[-1].lower() in _PHONE_MODIFIERS


def _timestamp_or_date(digits: str) -> bool:
    """Unix seconds or milliseconds of this century, or a YYYYMMDD date."""
    if len(digits) == 10 and int(digits) in _EPOCH_SECONDS:
        return True
    if len(digits) == 13 and int(digits[:10]) in _EPOCH_SECONDS:
        return True
    return (len(digits) == 8 and digits[:2] in ("19", "20") and "01" <= digits[4:6] <= "12"
            and "01" <= digits[6:] <= "31")


def _phone_keyed(short: bytes, key: str) -> tuple[str, float] | None:
    """A number under a phone-like key: international or national (default regions)."""
    if not _PHONE_KEYED.match(short):
        return None
    digits = bytes(c for c in short if 48 <= c <= 57).decode("ascii")
    if len(digits) < 7 or len(digits) > 17:
        return None
    text = _text(short)
    if text[:4].lower() == "tel:":
        text = text[4:]
    if text.startswith("+"):
        return (text, 0.95) if _valid_phone(text, None) else None
    if _phone_key_modified(key) or _timestamp_or_date(digits) or len(set(digits)) <= 2:
        return None
    if text.startswith("00") and _valid_phone("+" + text[2:], None):
        return text, 0.9
    # A formatted number, or one with a trunk prefix, is more surely a number than a digit run.
    conf = 0.8 if (text.startswith("0") or not text.isdigit()) else 0.7
    for region in DEFAULT_REGIONS:
        if _valid_phone(text, region):
            return text, conf
    return None


# --------------------------------------------------------------------------------------------
# IMEI

_IMEI = re.compile(rb"(?<![0-9A-Za-z])([0-9]{2})[- ]?([0-9]{6})[- ]?([0-9]{6})[- ]?([0-9])(?![0-9A-Za-z])")
#: GSMA reporting body identifiers: the first two digits of a type allocation code.
_IMEI_RBI = frozenset({"01", "10", "30", "33", "35", "44", "45", "49", "50", "51", "52", "53", "54", "86", "91",
                       "98", "99"})


# In the digit-shape copy: the 12 digits of BBBBBB and CCCCCC, with or without a separator.
_IMEI_CORE = re.compile(rb"0{6}-?0{6}")


def _imei_matches(value: bytes) -> Iterable[re.Match[bytes]]:
    if len(value) <= _PREFILTER:
        yield from _IMEI.finditer(value)
        return
    shape = value.translate(_DIGIT_SHAPE)
    last = -1
    pos = 0
    tried: tuple[int, ...] = ()
    while (core := _IMEI_CORE.search(shape, pos)) is not None:
        p = core.start()
        # the IMEI starts at the core (15 digits in a row), or 2-3 bytes before it ("AA" and a
        # separator); .match() at a position still sees the bytes before it for the lookbehind
        starts = (p, p - 2, p - 3)
        for start in starts:
            if start > last and start not in tried:
                m = _IMEI.match(value, start)
                if m is not None:
                    last = m.end()
                    yield m
                    break
        # cores overlap: one that is not an IMEI may hide the start of the next one
        # ("+14155552671-490154203237518"), so the search goes on from the next byte, without
        # trying a start twice (the next core's starts are p+1, p-1 and p-2)
        tried = starts
        pos = p + 1


def _imeis(value: bytes) -> Iterable[tuple[str, str]]:
    """(matched text, digits) of every plausible IMEI in the value."""
    for m in _imei_matches(value):
        digits = b"".join(m.groups()).decode("ascii")
        if digits[:2] in _IMEI_RBI and digits.count(digits[0]) != 15 and _luhn(digits):
            yield m.group(0).decode("ascii"), digits


# --------------------------------------------------------------------------------------------
# MAC addresses

_MAC_SEP = re.compile(
    rb"(?<![0-9A-Fa-f:\-])([0-9A-Fa-f]{2})([:\-])[0-9A-Fa-f]{2}(?:\2[0-9A-Fa-f]{2}){4}(?![0-9A-Fa-f:\-])"
)
_MAC_BARE = re.compile(rb"^(?:[0-9A-Fa-f]{12}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})$")
_MAC_PLACEHOLDER = 0x020000000000
_MAC_SHAPE = b"hh:hh:hh:hh:hh:hh"


def _mac_matches(value: bytes) -> Iterable[re.Match[bytes]]:
    if len(value) <= _PREFILTER:
        yield from _MAC_SEP.finditer(value)
        return
    shape = value.translate(_HEX_SHAPE)
    q = shape.find(_MAC_SHAPE)
    while q != -1:
        m = _MAC_SEP.match(value, q)
        if m is not None:
            yield m
            q = shape.find(_MAC_SHAPE, m.end())
        else:
            q = shape.find(_MAC_SHAPE, q + 1)


def _mac_factor(text: bytes) -> float | None:
    """None for addresses that are no device's; else a confidence factor (randomised: 0.75)."""
    hexdigits = bytes(c for c in text if c not in b":-.")
    try:
        n = int(hexdigits, 16)
    except ValueError:
        return None
    first = n >> 40
    if n == 0 or n == 0xFFFFFFFFFFFF or n == _MAC_PLACEHOLDER or first & 1:
        return None
    return 0.75 if first & 2 else 1.0


# --------------------------------------------------------------------------------------------
# advertising and device IDs

_UUID = re.compile(rb"^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?$")
_HEX32 = re.compile(rb"^[0-9A-Fa-f]{32}$")
_HEX16 = re.compile(rb"^[0-9A-Fa-f]{16}$")
_SHARED_ANDROID_ID = b"9774d56d682e549c"


def _uuid_like(short: bytes, kinds: frozenset[str]) -> tuple[bytes, float] | None:
    if _UUID.match(short):
        core = short.strip(b"{}")
        conf = 1.0
    elif _HEX32.match(short) and "hash" not in kinds:
        core = short
        conf = 0.85
    else:
        return None
    if not core.replace(b"-", b"").strip(b"0"):
        return None  # the all-zero ID: tracking limited, identifies nobody
    return core, conf


# --------------------------------------------------------------------------------------------
# locations

_COORD = re.compile(rb"^\s*([+-]?[0-9]{1,3})(?:\.([0-9]{1,15}))?\s*$")
_COORD_PAIR = re.compile(
    rb"^\s*(?:geo:)?\s*[\[(]?\s*([+-]?[0-9]{1,3})\.([0-9]{1,15})\s*[,; ]\s*([+-]?[0-9]{1,3})\.([0-9]{1,15})"
    rb"(?:\s*[,; ]\s*[+-]?[0-9]{1,6}(?:\.[0-9]+)?)?\s*[\])]?\s*$",
    re.IGNORECASE,
)


def _decimals(frac: bytes | None) -> int:
    return len(frac.rstrip(b"0")) if frac else 0


def _precise(lat: float, lng: float, dec_a: int, dec_b: int) -> bool:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
        return False
    if lat == 0.0 and lng == 0.0:
        return False
    return max(dec_a, dec_b) >= 3 and min(dec_a, dec_b) >= 2


def _coordinate(short: bytes) -> tuple[float, int] | None:
    m = _COORD.match(short)
    if m is None:
        return None
    frac = m.group(2)
    text = m.group(1) + (b"." + frac if frac else b"")
    return float(text), _decimals(frac)


def _location_value(short: bytes, kinds: frozenset[str]) -> str | None:
    """A "lat,lng" (or GeoJSON "lng,lat") value under a location key, if precise enough."""
    m = _COORD_PAIR.match(short)
    if m is None:
        return None
    a = float(m.group(1) + b"." + m.group(2))
    b = float(m.group(3) + b"." + m.group(4))
    da, db = _decimals(m.group(2)), _decimals(m.group(4))
    lat, lng = (b, a) if "geojson" in kinds else (a, b)
    if not -90.0 <= lat <= 90.0 and -90.0 <= lng <= 90.0:
        lat, lng = lng, lat
    if not _precise(lat, lng, da, db):
        return None
    return _text(short.strip())


# --------------------------------------------------------------------------------------------
# private addresses

# Starts with a literal "1" (fast to skip to); the byte before is checked in code.
_IPV4_PRIVATE = re.compile(
    rb"1(?:0\.[0-9]{1,3}|72\.(?:1[6-9]|2[0-9]|3[01])|92\.168|69\.254)\.[0-9]{1,3}\.[0-9]{1,3}(?!\.?[0-9])"
)
_IPV4_BEFORE = frozenset(b"0123456789.")
_IPV6_LOCAL = re.compile(
    rb"(?<![0-9A-Za-z:])((?:f[cd]|fe[89ab])[0-9a-f]{0,2}:[0-9a-f:]{2,38})(?:%[0-9A-Za-z]{1,16})?(?![0-9A-Za-z:])",
    re.IGNORECASE,
)
_ULA = ipaddress.IPv6Network("fc00::/7")
_LINK_LOCAL6 = ipaddress.IPv6Network("fe80::/10")
_METADATA = ipaddress.IPv4Address("169.254.169.254")
_VERSION_BEFORE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz/_")
_VERSION_AFTER = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")


_KEY_BEFORE = re.compile(rb"""([A-Za-z_][A-Za-z0-9_\-]{0,40})["']?\s*[:=]\s*["']?$""")


def _version_key_before(value: bytes, start: int) -> bool:
    """Whether the text right before ``start`` is a version-like key (``"v":"``, ``build=``)."""
    m = _KEY_BEFORE.search(value, max(0, start - 48), start)
    return m is not None and "version" in _kinds(m.group(1).decode("ascii"))


_IPV6_PREFIXES = (b"fc", b"fd", b"fe8", b"fe9", b"fea", b"feb")


def _maybe_local_ipv6(value: bytes) -> bool:
    """Cheap test before the IPv6 regex: a ULA or link-local prefix somewhere, any case."""
    low = value if value.islower() else value.lower()
    return any(p in low for p in _IPV6_PREFIXES)


def _private_ips(value: bytes) -> Iterable[tuple[str, bool]]:
    """(address, is in 10/8) for every private or link-local address in the value."""
    if value.count(b".") >= 3:
        for m in _IPV4_PRIVATE.finditer(value):
            if m.start() > 0 and value[m.start() - 1] in _IPV4_BEFORE:
                continue
            text = m.group(0).decode("ascii")
            try:
                addr = ipaddress.IPv4Address(text)
            except ValueError:
                continue
            if addr == _METADATA or _version_key_before(value, m.start()):
                continue
            ten = text.startswith("10.")
            if ten:
                before = value[m.start() - 1] if m.start() > 0 else 0
                after = value[m.end()] if m.end() < len(value) else 0
                if before in _VERSION_BEFORE or after in _VERSION_AFTER:
                    continue
            yield text, ten
    if b":" in value and _maybe_local_ipv6(value):
        for m in _IPV6_LOCAL.finditer(value):
            text = m.group(1).decode("ascii")
            try:
                addr6 = ipaddress.IPv6Address(text)
            except ValueError:
                continue
            if addr6 in _ULA or addr6 in _LINK_LOCAL6:
                yield m.group(0).decode("ascii"), False


# --------------------------------------------------------------------------------------------
# the detectors


class _Hits:
    """Hits of one layer: one per (type, value), best confidence kept, a cap per type."""

    __slots__ = ("best", "count")

    def __init__(self) -> None:
        self.best: dict[tuple[str, str], float] = {}
        self.count: dict[str, int] = {}

    def add(self, data_type: str, value: str, confidence: float) -> None:
        k = (data_type, value)
        old = self.best.get(k)
        if old is None:
            if self.count.get(data_type, 0) >= MAX_HITS_PER_TYPE:
                return
            self.count[data_type] = self.count.get(data_type, 0) + 1
            self.best[k] = confidence
        elif confidence > old:
            self.best[k] = confidence

    def full(self, data_type: str) -> bool:
        return self.count.get(data_type, 0) >= MAX_HITS_PER_TYPE

    def result(self) -> list[PatternHit]:
        if not self.best:
            return []
        hits = [PatternHit(t, v, round(min(1.0, max(0.0, c)), 3)) for (t, v), c in self.best.items()]
        hits.sort(key=lambda h: -h.confidence)
        return hits


def detect_patterns(layer: Layer, families: frozenset[str] | None = None) -> list[PatternHit]:
    """Personal data recognisable in one layer by its value (and the key it was under).

    Best confidence first; at most one hit per (data_type, value). Never raises on any bytes
    or key. ``families``: the value-only families worth running (``email``, ``phone``,
    ``imei``, ``mac``, ``private_ip``; :mod:`.prefilter` knows the others cannot match); None
    runs them all. The detectors that read the key always run.
    """
    value = layer.value
    if not value:
        return []
    kinds = _kinds(layer.key) if layer.key else _NO_KINDS
    if families is None:
        families = _ALL_FAMILIES
    elif not families and not kinds:
        return []
    hits = _Hits()
    short = value.strip(_WS) if len(value) <= _SHORT + 8 else None
    if short is not None and len(short) > _SHORT:
        short = None
    bssid_values: set[str] = set()

    if kinds and short and layer.key:
        _keyed(short, layer.key, kinds, hits, bssid_values)

    # e-mail addresses, anywhere
    if "email" in families and b"@" in value:
        email_key = "email" in kinds or "user" in kinds
        for addr, whole in _emails(value):
            hits.add("email", addr, 0.95 if email_key else (0.8 if whole else 0.7))

    # international phone numbers, anywhere (national ones only under phone keys, above)
    if "phone" in families and b"+" in value and "imei" not in kinds:
        phone_key = "phone" in kinds
        tried = 0
        for m in _PHONE_INTL.finditer(value):
            if m.start() > 0 and (value[m.start() - 1] in _ALNUM or value[m.start() - 1] == 43):
                continue
            tried += 1
            if tried > _MAX_PHONE_PARSES or hits.full("phone"):
                break
            text = m.group(0).decode("ascii")
            if _valid_phone(text, None):
                hits.add("phone", text, 0.95 if phone_key else 0.6)

    # IMEIs
    # (an IMEI has 15 digits, a MAC address 5 separators of one kind: counted in C first)
    if ("imei" in families and len(value) >= 15 and "phone" not in kinds
            and len(value) - len(value.translate(None, _DIGITS)) >= 15):
        imei_key = "imei" in kinds or "device_id" in kinds
        for text, _digits in _imeis(value):
            hits.add("imei", text, 0.95 if imei_key else 0.45)
            if hits.full("imei"):
                break

    # MAC addresses with separators
    if "mac" in families and (value.count(b":") >= 5 or value.count(b"-") >= 5):
        mac_type = "wifi_bssid" if ("bssid" in kinds or ("wifi" in kinds and "ssid" not in kinds and "mac" not in kinds)) else None
        mac_key = "mac" in kinds
        for m in _mac_matches(value):
            if hits.full("mac_address") or hits.full("wifi_bssid"):
                break
            factor = _mac_factor(m.group(0))
            if factor is None:
                continue
            text = m.group(0).decode("ascii")
            if text in bssid_values:
                continue
            if mac_type is not None:
                hits.add(mac_type, text, 0.9 * factor)
            else:
                hits.add("mac_address", text, (0.95 if mac_key else 0.7) * factor)

    # private and link-local addresses
    if ("private_ip" in families and "version" not in kinds and "host" not in kinds
            and (value.count(b".") >= 3 or b":" in value)):  # what _private_ips needs at least
        loc = layer.location.lower()
        if not (loc.startswith("header host") or loc.startswith("header :authority")):
            ip_key = "ip" in kinds
            for text, ten in _private_ips(value):
                hits.add("private_ip", text, 0.9 if ip_key else (0.4 if ten else 0.5))
                if hits.full("private_ip"):
                    break

    return hits.result()


def _keyed(short: bytes, key: str, kinds: frozenset[str], hits: _Hits, bssid_values: set[str]) -> None:
    """The detectors that need the key: the value alone is too ambiguous."""
    lowered = short.lower()
    if "phone" in kinds and "imei" not in kinds:
        found = _phone_keyed(short, key)
        if found is not None:
            hits.add("phone", *found)

    if "adid" in kinds or "vendor" in kinds:
        uuid = _uuid_like(short, kinds)
        if uuid is not None:
            core, id_factor = uuid
            if "adid" in kinds:
                hits.add("advertising_id", _text(core), 0.95 * id_factor)
            else:
                hits.add("vendor_id", _text(core), 0.9 * id_factor)

    if "android_id" in kinds and _HEX16.match(short) and lowered != _SHARED_ANDROID_ID and short.strip(b"0"):
        hits.add("android_id", _text(short), 0.9)

    if "mac" in kinds or "bssid" in kinds or "wifi" in kinds:
        if _MAC_BARE.match(short) and ("mac" in kinds or "bssid" in kinds):
            factor = _mac_factor(short)
            if factor is not None:
                if "bssid" in kinds:
                    hits.add("wifi_bssid", _text(short), 0.9 * factor)
                else:
                    hits.add("mac_address", _text(short), 0.85 * factor)
        elif "bssid" in kinds or ("wifi" in kinds and "ssid" not in kinds and "mac" not in kinds):
            m = _MAC_SEP.fullmatch(short)
            if m is not None:
                factor = _mac_factor(short)
                if factor is not None:
                    text = _text(short)
                    hits.add("wifi_bssid", text, 0.9 * factor)
                    bssid_values.add(text)

    if "ssid" in kinds:
        ssid = short.strip(b'"')
        if 0 < len(ssid) <= 32 and ssid.lower() not in _PLACEHOLDERS and not _MAC_SEP.fullmatch(ssid):
            hits.add("wifi_ssid", _text(ssid), 0.8)

    if "loc" in kinds:
        loc = _location_value(short, kinds)
        if loc is not None:
            hits.add("precise_location", loc, 0.85)


# --------------------------------------------------------------------------------------------
# request-level: fingerprints and latitude/longitude fields


def _parent(layer: Layer) -> tuple[str, tuple[str, ...]]:
    """Where a layer sits, without its own key: fields of one object share it."""
    key = layer.key or ""
    loc = layer.location
    if key and loc.endswith(key):
        loc = loc[: -len(key)]
    enc = layer.encoding
    if enc and key and enc[-1].endswith(key):
        enc = (*enc[:-1], enc[-1][: -len(key)])
    return loc, enc


_ARRAY_INDEX = re.compile(r"\[([01])\]$")


def _array_pairs(items: list[tuple[Layer, bool, float, int]], hits: _Hits) -> None:
    """Elements 0 and 1 of one array under a location key: [lat, lng], or [lng, lat] (GeoJSON)."""
    firsts: dict[tuple[str, tuple[str, ...]], tuple[Layer, bool, float, int]] = {}
    for item in items:
        layer = item[0]
        last = layer.encoding[-1]
        group = (layer.location, (*layer.encoding[:-1], last[:-3]))
        if last.endswith("[0]"):
            firsts[group] = item
            continue
        first = firsts.pop(group, None)
        if first is None:
            continue
        a, b = first[2], item[2]
        lat, lng = (b, a) if item[1] else (a, b)
        if not -90.0 <= lat <= 90.0 and -90.0 <= lng <= 90.0:
            lat, lng = lng, lat
        if _precise(lat, lng, first[3], item[3]):
            text = f"[{_text(first[0].value.strip())}, {_text(layer.value.strip())}]"
            hits.add("precise_location", text, 0.85)


def _location_pairs(layers: Sequence[Layer]) -> list[PatternHit]:
    lats: list[tuple[int, Layer, float, int]] = []
    lngs: list[tuple[int, Layer, float, int]] = []
    arrays: list[tuple[Layer, bool, float, int]] = []
    for i, layer in enumerate(layers):
        if not layer.key or len(layer.value) > 40:
            continue
        kinds = _kinds(layer.key)
        is_lat, is_lng = "lat" in kinds, "lng" in kinds
        if is_lat == is_lng:  # neither, or a combined "latlng" key (read as one value)
            if "loc" in kinds and layer.encoding and _ARRAY_INDEX.search(layer.encoding[-1]):
                c = _coordinate(layer.value)
                if c is not None:
                    arrays.append((layer, "geojson" in kinds, c[0], c[1]))
            continue
        c = _coordinate(layer.value)
        if c is None:
            continue
        (lats if is_lat else lngs).append((i, layer, c[0], c[1]))
    hits = _Hits()
    if arrays:
        _array_pairs(arrays, hits)
    if not lats or not lngs:
        return hits.result()
    used: set[int] = set()
    for i, lat_layer, lat, lat_dec in lats:
        parent = _parent(lat_layer)
        best: tuple[int, int] | None = None  # (index into lngs, distance)
        for j, (k, lng_layer, _lng, _dec) in enumerate(lngs):
            if j in used:
                continue
            distance = abs(k - i) + (0 if _parent(lng_layer) == parent else 1_000_000)
            if best is None or distance < best[1]:
                best = (j, distance)
        if best is None:
            break
        used.add(best[0])
        _k, _layer, lng, lng_dec = lngs[best[0]]
        if _precise(lat, lng, lat_dec, lng_dec):
            value = f"{_text(lat_layer.value.strip())},{_text(_layer.value.strip())}"
            hits.add("precise_location", value, 0.9)
    return hits.result()


def detect_fingerprint(layers: Sequence[Layer]) -> list[PatternHit]:
    """What only the fields of one request together reveal.

    * ``device_fingerprint``: at least four distinct device-attribute key families (model, os,
      screen, battery, carrier, timezone, locale, hardware, boot) with real values; one hit,
      confidence ``min(0.9, 0.1 + 0.1 * families)``.
    * ``precise_location``: latitude and longitude sent as separate fields (``lat=..&lng=..``,
      ``{"latitude": .., "longitude": ..}``), paired by the object they share (else by
      nearness), 0.9; and the two elements of a JSON array under a location key, which the
      decoder yields as separate layers (``"coordinates": [2.2945, 48.8584]`` -> ``json
      $.geometry.coordinates[0]`` and ``[1]``; GeoJSON order under ``coordinates``), 0.85.
      Each pair precise to ~1 km, not 0,0, in range.
    """
    families: dict[str, str] = {}
    for layer in layers:
        if not layer.key or len(layer.value) > _SHORT:
            continue
        family = _fp_family(layer.key)
        if family is None or family in families:
            continue
        v = layer.value.strip(_WS)
        if v.lower() in _FP_EMPTY or v.startswith((b"{", b"[")):
            continue
        families[family] = _text(v)[:64]
    hits = _location_pairs(layers)
    if len(families) >= 4:
        value = "; ".join(f"{k}={families[k]}" for k in sorted(families))
        hits.append(PatternHit("device_fingerprint", value, round(min(0.9, 0.1 + 0.1 * len(families)), 3)))
    return hits
