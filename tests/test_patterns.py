"""Pattern detectors: positives, the negatives that real app traffic is full of, keys vs values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datareach.detect import patterns
from datareach.detect.patterns import PatternHit, detect_fingerprint, detect_patterns
from datareach.detect.types import Layer
from datareach.testing.counting import Calls, PatternCalls
from sources_path import compiled, run_on_sources


def layer(value: str | bytes, key: str | None = None, location: str = "body",
          encoding: tuple[str, ...] = ()) -> Layer:
    return Layer(location, encoding, key, value.encode() if isinstance(value, str) else value)


def hits(value: str | bytes, key: str | None = None, location: str = "body") -> list[PatternHit]:
    return detect_patterns(layer(value, key, location))


def of_type(value: str | bytes, data_type: str, key: str | None = None, location: str = "body") -> list[PatternHit]:
    return [h for h in hits(value, key, location) if h.data_type == data_type]


def conf(value: str | bytes, data_type: str, key: str | None = None) -> float:
    found = of_type(value, data_type, key)
    assert len(found) == 1, (value, key, hits(value, key))
    return found[0].confidence


# ---------------------------------------------------------------------------------- general


def test_empty_and_plain_values() -> None:
    assert hits(b"") == []
    assert hits("hello world") == []
    assert hits("true", "email") == []


def test_key_name_alone_is_never_a_finding() -> None:
    for key in ("email", "phone", "imei", "mac", "gaid", "idfa", "android_id", "ssid", "bssid", "lat", "ll",
                "ip", "msisdn", "device_id"):
        for value in ("n/a", "", "null", "0", "unknown", "redacted", "xxx", "-1"):
            if key == "ssid" and value in ("xxx",):
                continue  # any name can be a network's name
            assert hits(value, key) == [], (key, value)


def test_confidence_in_range_and_best_first() -> None:
    found = hits("mail alex@example.org or +44 7911 123456 from 192.168.1.23, mac 3c:5a:b4:01:02:03")
    assert {h.data_type for h in found} == {"email", "phone", "private_ip", "mac_address"}
    assert all(0.0 <= h.confidence <= 1.0 for h in found)
    assert [h.confidence for h in found] == sorted((h.confidence for h in found), reverse=True)


@pytest.mark.parametrize(("value", "data_type", "key"), [
    ("alex@example.org", "email", "email"),
    ("+44 7911 123456", "phone", "phone"),
    ("490154203237518", "imei", "imei"),
    ("3c:5a:b4:01:02:03", "mac_address", "mac"),
    ("192.168.1.23", "private_ip", "local_ip"),
])
def test_key_and_value_beat_value_alone(value: str, data_type: str, key: str) -> None:
    assert conf(value, data_type, key) > conf(value, data_type)
    assert conf(value, data_type, "unrelated") == conf(value, data_type)


# ---------------------------------------------------------------------------------- e-mail


@pytest.mark.parametrize("value", [
    "tester@example.org", "alex.tester+news@mail.example.co.uk", "a_b-c@sub.domain.io", "X@Example.COM",
    "user@xn--80ak6aa92e.xn--p1ai",
])
def test_email_positive(value: str) -> None:
    assert [h.value for h in of_type(value, "email")] == [value]


def test_email_in_text_and_urls() -> None:
    assert [h.value for h in of_type("contact me at alex.t@mail.co.uk, thanks", "email")] == ["alex.t@mail.co.uk"]
    assert [h.value for h in of_type("/v1/users/alex@example.org/profile", "email")] == ["alex@example.org"]
    assert of_type("mailto:alex@example.org", "email")[0].value == "alex@example.org"
    # inside text is a little less sure than the whole value
    assert conf("see alex@example.org", "email") < conf("alex@example.org", "email")


@pytest.mark.parametrize("key", ["email", "userEmail", "e-mail", "mail", "username", "login", "user"])
def test_email_keys_raise_confidence(key: str) -> None:
    assert conf("alex@example.org", "email", key) == 0.95


@pytest.mark.parametrize("value", [
    "icon@2x.png", "logo@3x.webp", "bundle@1.2.3.js", "style@media.css",       # assets, not addresses
    "https://4f2a9c0e@o450123.ingest.sentry.io/5501234",                      # a DSN's key, not a mailbox
    "noreply@example.org", "no-reply@service.example.com",                     # senders, not persons
    "user@localhost", "a@b", "@example.org", "alex@", "alex@@example.org",
    "alex@example.invalid-tld-xyz", "a..b@example.org", "@@@@", "x@-bad-.com",
    "git rev 3f2a@{upstream}",
])
def test_email_negative(value: str) -> None:
    assert of_type(value, "email") == [], value


class FindCounter(bytes):
    """Bytes that count the calls of their ``find`` method."""

    finds = 0

    def find(self, *args: Any) -> int:
        self.finds += 1
        return super().find(*args)


def test_email_many_at_signs_is_bounded() -> None:
    # the work, not the time: the "@" signs looked at in one layer stop at 2,000
    big = FindCounter(b"@" * 2_000_000 + b" alex@example.org")
    assert [h for h in detect_patterns(layer(big)) if h.data_type == "email"] == []  # past the limit
    assert big.finds == 2_001  # the first "@", then the one after each of the 2,000 looked at
    assert of_type(b"@" * 1_999 + b" alex@example.org", "email")  # the 2,000th is still looked at


# ---------------------------------------------------------------------------------- phone


@pytest.mark.parametrize("value", ["+44 7911 123456", "+14155552671", "+1 (202) 555-0143", "+33 6 12 34 56 78",
                                   "+49 151 23456789", "+8613800138000"])
def test_phone_international_anywhere(value: str) -> None:
    assert conf(value, "phone") == 0.6
    assert conf(f"call {value} now", "phone") == 0.6


@pytest.mark.parametrize(("value", "key"), [
    ("07911 123456", "phone"), ("(415) 555-2671", "phone_number"), ("4155552671", "msisdn"),
    ("015123456789", "mobile"), ("tel:+14155552671", "tel"), ("0044 7911 123456", "userPhone"),
    ("13800138000", "cellphone"),
])
def test_phone_national_under_phone_keys(value: str, key: str) -> None:
    found = of_type(value, "phone", key)
    assert found and found[0].confidence >= 0.7


@pytest.mark.parametrize(("value", "key"), [
    ("1700000000", None), ("1700000000", "ts"), ("1700000000", "phone"),         # Unix seconds
    ("1700000000123", "phone"), ("20231105", "phone"),                          # ms, a date
    ("1700000000", "phone_verified_at"), ("4155552671", "phone_hash"),          # about the number
    ("4155552671", None), ("4155552671", "order_id"), ("07911 123456", None),   # digit runs, no key
    ("+44 12", None), ("+0100", None), ("2024-01-01T10:00:00+01:00", None),     # too short, offsets
    ("+1 555 000 0000", None),                                                  # not a valid number
    ("5d41402abc4b2a76b9719d911017c592", "phone"),                              # a hash
    ("1111111111", "phone"), ("Pixel 7", "mobile_model"), ("true", "is_mobile"),
    ("order+12345678901234567890", None),                                       # too long
])
def test_phone_negative(value: str, key: str | None) -> None:
    assert of_type(value, "phone", key) == [], (value, key)


# ---------------------------------------------------------------------------------- IMEI


@pytest.mark.parametrize("value", ["490154203237518", "35-209900-176148-1", "352099001761481", "86 012345 678901 2"])
def test_imei_positive(value: str) -> None:
    found = of_type(value, "imei")
    if value == "86 012345 678901 2":  # fails Luhn on purpose: check the positives are real
        assert found == []
        return
    assert [h.value for h in found] == [value]
    assert found[0].confidence < conf(value, "imei", "imei")


@pytest.mark.parametrize("key", ["imei", "deviceImei", "device_id", "deviceId", "meid", "udid"])
def test_imei_keys(key: str) -> None:
    assert conf("490154203237518", "imei", key) == 0.95


@pytest.mark.parametrize("value", [
    "490154203237519",          # Luhn fails
    "000000000000000",          # emulator, all one digit
    "999999999999999",          # all one digit (RBI 99 and Luhn-valid)
    "004999010640000",          # old emulator IMEI: reporting body 00
    "378282246310005",          # Amex test card number: passes Luhn, 37 is no reporting body
    "170000000000000",          # microseconds since the epoch
    "1700000000000000",         # 16 digits
    "4901542032375180",         # 16 digits containing an IMEI
    "a490154203237518",         # inside a token
    "sha1:49015420323751849015420323751849",
])
def test_imei_negative(value: str) -> None:
    assert of_type(value, "imei") == [], value


def test_imei_under_phone_key_is_not_an_imei() -> None:
    assert of_type("490154203237518", "imei", "phone") == []


# ---------------------------------------------------------------------------------- MAC


@pytest.mark.parametrize("value", ["3c:5a:b4:01:02:03", "3C-5A-B4-01-02-03", "mac=3c:5a:b4:01:02:03;"])
def test_mac_with_separators(value: str) -> None:
    assert conf(value, "mac_address") == 0.7


@pytest.mark.parametrize(("value", "key"), [("3c5ab4010203", "macAddress"), ("3c5a.b401.0203", "mac"),
                                            ("3C5AB4010203", "wifi_mac")])
def test_mac_bare_hex_needs_key(value: str, key: str) -> None:
    assert conf(value, "mac_address", key) == 0.85
    assert of_type(value, "mac_address") == []


def test_mac_locally_administered_is_kept_lower() -> None:
    # 0x3e: the locally-administered bit set (a randomised per-network MAC)
    assert conf("3e:5a:b4:01:02:03", "mac_address", "mac") == pytest.approx(0.95 * 0.75, abs=1e-3)
    assert conf("3e:5a:b4:01:02:03", "mac_address", "mac") < conf("3c:5a:b4:01:02:03", "mac_address", "mac")


@pytest.mark.parametrize("value", [
    "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "02:00:00:00:00:00",    # zero, broadcast, OS placeholder
    "01:00:5e:00:00:fb", "33:33:00:00:00:01",                         # multicast
    "3c:5a:b4:01:02", "3c:5a:b4:01:02:03:04", "3c:5a-b4:01:02:03",    # wrong shape, mixed separators
    "fe80::3c5a:b4ff:fe01:203", "12:34:56", "2024-01-01 12:34:56",
])
def test_mac_negative(value: str) -> None:
    assert of_type(value, "mac_address", "mac") == [], value
    assert of_type(value, "mac_address") == [], value


def test_twelve_hex_without_mac_key_is_not_a_mac() -> None:
    assert hits("3c5ab4010203", "trace_id") == []


# ---------------------------------------------------------------------------------- advertising IDs

ADID = "38400000-8cf0-11bd-b23e-10b96e40000d"


@pytest.mark.parametrize("key", ["gaid", "idfa", "adid", "aaid", "advertising_id", "advertisingId", "ad_id", "ifa",
                                 "google_ad_id", "googleAdId", "gps_adid", "IDFA", "x-idfa", "oaid", "maid"])
def test_advertising_id_keys(key: str) -> None:
    assert of_type(ADID, "advertising_id", key) == [PatternHit("advertising_id", ADID, 0.95)]


def test_advertising_id_forms() -> None:
    assert conf(ADID.upper(), "advertising_id", "idfa") == 0.95
    assert conf("{" + ADID + "}", "advertising_id", "idfa") == 0.95
    assert 0.5 < conf(ADID.replace("-", ""), "advertising_id", "idfa") < 0.95


@pytest.mark.parametrize("key", ["idfv", "identifierForVendor", "vendor_id"])
def test_vendor_id(key: str) -> None:
    assert [h.data_type for h in hits(ADID, key)] == ["vendor_id"]


def test_android_id() -> None:
    assert [(h.data_type, h.value) for h in hits("a1b2c3d4e5f60718", "android_id")] == [
        ("android_id", "a1b2c3d4e5f60718")]
    assert hits("a1b2c3d4e5f60718", "androidId")[0].data_type == "android_id"
    assert hits("9774d56d682e549c", "android_id") == []           # shared by a whole device generation
    assert hits("0000000000000000", "android_id") == []
    assert hits("a1b2c3d4e5f60718", "session") == []


@pytest.mark.parametrize("key", [None, "request_id", "requestId", "session_id", "x-request-id", "uuid", "id",
                                 "trace", "event_id", "install_id", "head_id", "thread_id", "payload_id"])
def test_uuid_without_advertising_key_is_not_a_finding(key: str | None) -> None:
    assert hits(ADID, key) == []


def test_all_zero_uuid_never_counts() -> None:
    for key in ("gaid", "idfa", "adid", "idfv"):
        assert hits("00000000-0000-0000-0000-000000000000", key) == []
        assert hits("00000000000000000000000000000000", key) == []


def test_hash_of_advertising_id_is_not_the_id() -> None:
    md5 = "5d41402abc4b2a76b9719d911017c592"
    assert hits(md5, "idfa_md5") == []
    assert hits(md5, "hash") == []
    assert hits("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", "idfa") == []    # SHA-1: not an ID shape
    assert hits("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "gaid") == []


# ---------------------------------------------------------------------------------- location


@pytest.mark.parametrize(("value", "key"), [
    ("48.8584,2.2945", "ll"), ("48.8584, 2.2945", "location"), ("geo:48.8584,2.2945", "geo"),
    ("48.858370;2.294481", "Geo-Position"), ("-33.8568 151.2153", "loc"), ("48.858,2.29", "latlng"),
    ("[2.2945, 48.8584]", "coordinates"), ("48.8584,2.2945,35.0", "position"),
])
def test_location_single_value(value: str, key: str) -> None:
    assert conf(value, "precise_location", key) == 0.85


@pytest.mark.parametrize(("value", "key"), [
    ("48.8584,2.2945", None), ("48.8584,2.2945", "price_range"),      # needs a location key
    ("48.8,2.2", "ll"), ("48.85,2.29", "ll"),                         # 1 and 2 decimals: ~11 km, ~1.1 km
    ("48.800000,2.200000", "ll"),                                     # padded 1-decimal values
    ("0.0000,0.0000", "ll"), ("0,0", "ll"),                           # null island
    ("95.1234,200.1234", "ll"), ("48.8584", "ll"), ("Paris", "location"), ("1.2.3.4", "loc"),
])
def test_location_single_value_negative(value: str, key: str | None) -> None:
    assert of_type(value, "precise_location", key) == [], (value, key)


def test_geojson_order_and_swap() -> None:
    # GeoJSON is [lng, lat]; a longitude beyond 90 read as latitude is swapped back
    assert of_type("[151.2153, -33.8568]", "precise_location", "coordinates")
    assert of_type("151.2153,-33.8568", "precise_location", "ll")


def test_location_fields_are_paired_per_request() -> None:
    layers = [layer("48.858370", "lat", "query lat"), layer("something", "q", "query q"),
              layer("2.294481", "lng", "query lng")]
    assert detect_fingerprint(layers) == [PatternHit("precise_location", "48.858370,2.294481", 0.9)]
    # one field alone is not a location, in either detector
    assert detect_fingerprint(layers[:2]) == []
    assert all(detect_patterns(x) == [] for x in layers)


@pytest.mark.parametrize(("lat_key", "lng_key"), [("latitude", "longitude"), ("lat", "lon"), ("Latitude", "Long"),
                                                  ("user_lat", "user_lng"), ("geoLat", "geoLng")])
def test_location_field_keys(lat_key: str, lng_key: str) -> None:
    layers = [layer("-33.8568", lat_key), layer("151.2153", lng_key)]
    assert [h.data_type for h in detect_fingerprint(layers)] == ["precise_location"]


@pytest.mark.parametrize(("lat", "lng"), [("48.8", "2.3"), ("48.85", "2.29"), ("0.0", "0.0"), ("0", "0"),
                                          ("91.1234", "2.2945"), ("48.8584", "181.2945"), ("48", "2"),
                                          ("1700000000", "2.2945")])
def test_location_fields_negative(lat: str, lng: str) -> None:
    assert detect_fingerprint([layer(lat, "lat"), layer(lng, "lng")]) == []


def test_location_fields_pair_within_their_object() -> None:
    enc = ("body(json)",)
    layers = [
        layer("48.858370", "lat", encoding=(*enc, "json $.home.lat")),
        layer("51.500729", "lat", encoding=(*enc, "json $.work.lat")),
        layer("-0.124625", "lng", encoding=(*enc, "json $.work.lng")),
        layer("2.294481", "lng", encoding=(*enc, "json $.home.lng")),
    ]
    assert sorted(h.value for h in detect_fingerprint(layers)) == ["48.858370,2.294481", "51.500729,-0.124625"]


# ---------------------------------------------------------------------------------- private IPs


@pytest.mark.parametrize("value", ["192.168.1.23", "172.16.0.5", "172.31.255.254", "169.254.12.34",
                                   "fd12:3456:789a:1::1", "fe80::1c2b:3cff:fe4d:5e6f%wlan0", "FE80::1",
                                   "http://192.168.0.1:8080/setup", "lan=10.0.0.17&x=1"])
def test_private_ip_positive(value: str) -> None:
    assert len(of_type(value, "private_ip")) == 1


def test_private_ip_confidence() -> None:
    assert conf("192.168.1.23", "private_ip", "local_ip") == 0.9
    assert conf("192.168.1.23", "private_ip") == 0.5
    assert conf("10.0.0.17", "private_ip") < conf("192.168.1.23", "private_ip")


@pytest.mark.parametrize(("value", "key", "location"), [
    ("8.8.8.8", None, "body"), ("203.0.113.45", "ip", "body"),            # public: not this detector
    ("127.0.0.1", None, "body"), ("100.64.1.2", None, "body"),            # loopback, carrier-grade NAT
    ("172.32.0.1", None, "body"), ("192.169.1.1", None, "body"),          # just outside the ranges
    ("169.254.169.254", None, "body"),                                    # the cloud metadata address
    ("192.168.1.300", None, "body"), ("192.168.1.2.5", None, "body"),     # not an address
    ("10.2.0.15", "app_version", "body"), ("10.2.0.15", "build", "body"),  # version strings
    ("MyApp/10.2.0.15 (Android 14)", "user-agent", "header user-agent"),
    ("v10.1.4.2", None, "body"), ("10.0.0.1-beta", None, "body"),
    ('{"v":"10.2.0.15"}', None, "body"), ("os=android&build=192.168.1.2", None, "query"),
    ("192.168.1.1", "host", "header host"), ("192.168.1.1:8080", None, "header host"),
    ("2001:db8::1", None, "body"), ("fc::1", None, "body"), ("::1", None, "body"),
])
def test_private_ip_negative(value: str, key: str | None, location: str) -> None:
    assert of_type(value, "private_ip", key, location) == [], value


# ---------------------------------------------------------------------------------- Wi-Fi


def test_wifi_ssid() -> None:
    assert hits('"Home Network"', "ssid") == [PatternHit("wifi_ssid", "Home Network", 0.8)]
    assert hits("Home Network", "wifiName")[0].data_type == "wifi_ssid"
    assert hits("Home Network", "wifi_ssid")[0].data_type == "wifi_ssid"
    for v in ("<unknown ssid>", "", "null", "unknown", "x" * 33):
        assert hits(v, "ssid") == [], v
    assert hits("Home Network", "network") == []
    assert hits("on", "wifi") == [] and hits("connected", "wifi_state") == []


def test_wifi_bssid() -> None:
    assert hits("3c:5a:b4:01:02:03", "bssid") == [PatternHit("wifi_bssid", "3c:5a:b4:01:02:03", 0.9)]
    assert hits("3c5ab4010203", "BSSID")[0].data_type == "wifi_bssid"
    assert hits("3c:5a:b4:01:02:03", "wifi")[0].data_type == "wifi_bssid"
    assert hits("02:00:00:00:00:00", "bssid") == []
    assert hits("not-a-mac", "bssid") == []
    # the ssid key is not read as a bssid one
    assert [h.data_type for h in hits("3c:5a:b4:01:02:03", "ssid")] == ["mac_address"]


# ---------------------------------------------------------------------------------- fingerprint

FP = [("Pixel 7", "device_model"), ("14", "os_version"), ("1080x2400", "screen_resolution"),
      ("87", "battery_level"), ("T-Mobile", "carrier"), ("Europe/Paris", "timezone"), ("fr_FR", "locale"),
      ("8192", "ram"), ("1700000000", "boot_time")]


@pytest.mark.parametrize("n", range(0, len(FP) + 1))
def test_fingerprint_threshold(n: int) -> None:
    found = [h for h in detect_fingerprint([layer(v, k) for v, k in FP[:n]]) if h.data_type == "device_fingerprint"]
    if n < 4:
        assert found == []
    else:
        assert len(found) == 1
        assert found[0].confidence == pytest.approx(min(0.9, 0.1 + 0.1 * n))


def test_fingerprint_confidence_scales() -> None:
    def c(n: int) -> float:
        return detect_fingerprint([layer(v, k) for v, k in FP[:n]])[0].confidence
    assert c(4) < c(5) < c(6) < c(8)


def test_fingerprint_counts_families_not_keys() -> None:
    same = [layer("Pixel 7", "model"), layer("Pixel 7", "device_model"), layer("Google", "manufacturer"),
            layer("14", "os_version"), layer("34", "sdk_int"), layer("Android", "os")]
    assert detect_fingerprint(same) == []                       # 2 families, 6 keys
    empty = [layer("", "model"), layer("null", "os_version"), layer("unknown", "carrier"), layer("n/a", "tz"),
             layer("x", "locale")]
    assert detect_fingerprint(empty) == []                      # only locale has a value


def test_fingerprint_value_names_families() -> None:
    (hit,) = detect_fingerprint([layer(v, k) for v, k in FP[:4]])
    assert hit.value == "battery=87; model=Pixel 7; os=14; screen=1080x2400"


def test_fingerprint_ignores_unrelated_keys() -> None:
    keys = ["display_name", "sdk_version", "app_version", "language_model_id", "event", "user_id", "brand"]
    layers = [layer("x1", k) for k in keys]
    assert [h for h in detect_fingerprint(layers) if h.data_type == "device_fingerprint"] == []


# ---------------------------------------------------------------------------------- robustness


@settings(max_examples=400, deadline=None)
@given(value=st.binary(max_size=400), key=st.one_of(st.none(), st.text(max_size=40)),
       location=st.text(max_size=20))
def test_never_raises_on_arbitrary_bytes(value: bytes, key: str | None, location: str) -> None:
    found = detect_patterns(Layer(location, (), key, value))
    assert all(0.0 <= h.confidence <= 1.0 and isinstance(h.value, str) for h in found)


_KEYS = st.sampled_from(["email", "phone", "imei", "mac", "bssid", "ssid", "gaid", "idfv", "android_id", "ll",
                         "coordinates", "lat", "lng", "ip", "model", "os", "screen", "battery", "tz"])
_ALPHABET = st.sampled_from([*'0123456789abcdefABCDEF:-.,;+@ []{}"x', "\u00e9", "\x00"])


@settings(max_examples=400, deadline=None)
@given(value=st.text(alphabet=_ALPHABET, max_size=60), key=_KEYS)
def test_never_raises_on_near_misses(value: str, key: str) -> None:
    found = detect_patterns(layer(value, key))
    assert all(0.0 <= h.confidence <= 1.0 for h in found)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet=_ALPHABET, max_size=30), st.one_of(st.none(), _KEYS)), max_size=30))
def test_fingerprint_never_raises(items: list[tuple[str, str | None]]) -> None:
    found = detect_fingerprint([layer(v, k) for v, k in items])
    assert all(0.0 <= h.confidence <= 1.0 for h in found)


@compiled(patterns)
def test_large_body_is_scanned_once(monkeypatch: pytest.MonkeyPatch, count_calls: Callable[..., Calls[Any]]) -> None:
    chunk = (b'{"id":"5d41402abc4b2a76b9719d911017c592","ts":1700000000123,"v":"10.2.0.15",'
             b'"uuid":"38400000-8cf0-11bd-b23e-10b96e40000d","n":490154203237519,"t":"2024-01-01T10:00:00+01:00"},')
    n = 4_000_000 // len(chunk)
    body = chunk * n
    # the work, not the time: above 4 KiB the IMEI and MAC regexes run only where a translated
    # copy of the body has their shape, and each candidate is checked once
    imei, mac = PatternCalls(patterns._IMEI), PatternCalls(patterns._MAC_SEP)
    monkeypatch.setattr(patterns, "_IMEI", imei)
    monkeypatch.setattr(patterns, "_MAC_SEP", mac)
    luhn = count_calls(patterns, "_luhn")
    version_key = count_calls(patterns, "_version_key_before")
    phone = count_calls(patterns, "_valid_phone")
    assert detect_patterns(layer(body)) == []
    # per chunk: the 13-digit timestamp holds two overlapping 12-digit cores, whose five distinct
    # starts are tried (none is an IMEI; a core that fails does not hide the next one), and one
    # start at the 15-digit number (which fails the Luhn check); no MAC shape anywhere
    assert dict(imei.calls) == {"match": 6 * n} and dict(mac.calls) == {}
    assert (luhn.count, version_key.count, phone.count) == (n, n, 0)  # "v":"10.2.0.15" is a version


def test_many_small_layers_classify_each_key_once() -> None:
    layers = [layer(f"value-{i}", f"key_{i % 50}") for i in range(50_000)]
    caches = (patterns._grams, patterns._kinds, patterns._fp_family)
    for cached in caches:
        cached.cache_clear()
    for x in layers:
        assert detect_patterns(x) == []
    assert detect_fingerprint(layers) == []
    # the work, not the time: the 50 distinct keys are each split and classified once
    assert [cached.cache_info().misses for cached in caches] == [50, 50, 50]


_SCAN_ALPHABET = st.sampled_from([*"0123456789abcdefABCDEF:- .", "35-209900-176148-1", "490154203237518",
                                  "3c:5a:b4:01:02:03", "192.168.1.23", "+14155552671", "x"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_SCAN_ALPHABET, max_size=40).map("".join))
def test_large_value_prefilters_find_the_same(text: str) -> None:
    """Values above the prefilter size take another path; it must find exactly the same."""
    def scanned(value: bytes) -> set[tuple[str, str]]:
        return {(h.data_type, h.value) for h in detect_patterns(layer(value))
                if h.data_type in ("imei", "mac_address", "private_ip", "phone")}
    pad = b"\n" * 5000
    assert scanned(pad + text.encode() + pad) == scanned(text.encode())


def test_a_core_that_is_not_an_imei_does_not_hide_the_next_one() -> None:
    """Found by the property above: the phone number's digits and the IMEI's make an overlapping
    core; the IMEI must still be found past the prefilter size."""
    text = b"+14155552671-490154203237518"
    for value in (text, b"\n" * 5000 + text + b"\n" * 5000):
        found = {(h.data_type, h.value) for h in detect_patterns(layer(value))}
        assert ("imei", "490154203237518") in found and ("phone", "+14155552671") in found


def test_large_value_finds_everything() -> None:
    body = (b'{"a":"' + b"z" * 10_000 + b'","imei":"35-209900-176148-1","m":"3c:5a:b4:01:02:03",'
            b'"i":"490154203237518","ip":"192.168.1.23","p":"+14155552671"}')
    found = {(h.data_type, h.value) for h in detect_patterns(layer(body))}
    assert found == {("imei", "35-209900-176148-1"), ("imei", "490154203237518"), ("mac_address", "3c:5a:b4:01:02:03"),
                     ("private_ip", "192.168.1.23"), ("phone", "+14155552671")}


def test_location_array_elements_are_paired() -> None:
    """The decoder yields a JSON array's elements as layers under the array's key."""
    enc = ("body",)
    geo = [layer("Point", "type", encoding=(*enc, "json $.geometry.type")),
           layer("2.2945", "coordinates", encoding=(*enc, "json $.geometry.coordinates[0]")),
           layer("48.8584", "coordinates", encoding=(*enc, "json $.geometry.coordinates[1]"))]
    assert detect_fingerprint(geo) == [PatternHit("precise_location", "[2.2945, 48.8584]", 0.85)]
    ll = [layer("48.8584", "ll", encoding=(*enc, "json $.ll[0]")), layer("2.2945", "ll", encoding=(*enc, "json $.ll[1]"))]
    assert [h.value for h in detect_fingerprint(ll)] == ["[48.8584, 2.2945]"]
    line = [layer(v, "coordinates", encoding=(*enc, f"json $.coordinates[{i // 2}][{i % 2}]"))
            for i, v in enumerate(["2.2945", "48.8584", "2.3522", "48.8566"])]
    assert len(detect_fingerprint(line)) == 2
    coarse = [layer("2.3", "coordinates", encoding=(*enc, "json $.c[0]")),
              layer("48.9", "coordinates", encoding=(*enc, "json $.c[1]"))]
    assert detect_fingerprint(coarse) == []
    other = [layer("2.2945", "values", encoding=(*enc, "json $.values[0]")),
             layer("48.8584", "values", encoding=(*enc, "json $.values[1]"))]
    assert detect_fingerprint(other) == []


def test_counted_work_on_the_python_sources(tmp_path: Path) -> None:
    """The tests above that count calls by patching, run on the Python sources when this process
    runs the compiled patterns module."""
    run_on_sources(patterns, __file__, ["test_large_body_is_scanned_once"], tmp_path)
