"""The forms of the profile's values (datareach.detect.known)."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from pathlib import Path

import pytest

from datareach.detect.known import (
    HASHES,
    KEYED_LAYOUTS,
    LAT_KEYS,
    LNG_KEYS,
    MIN_NEEDLE,
    PAIR_LAYOUTS,
    Form,
    profile_forms,
)
from datareach.detect.profile import Profile

FULL = Profile(
    {
        "advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
        "android_id": "9774d56d682e549c",
        "imei": "490154203237518",
        "serial": "R58M12ABCDE",
        "mac": "3C-5A-B4-01-02-03",
        "email": "tester@example.org",
        "phone": "+44 7700 900123",
        "name": "Alex Tester",
        "ip": "203.0.113.45",
    },
    48.858370,
    2.294481,
    {"account_id": "u-829301"},
)


def by_needle(forms: list[Form]) -> dict[bytes, Form]:
    return {f.needle: f for f in forms}


def only(data_type: str, value: str) -> dict[bytes, Form]:
    return by_needle(profile_forms(Profile({data_type: value})))


def b64(data: bytes, url: bool = False) -> bytes:
    return (base64.urlsafe_b64encode if url else base64.b64encode)(data).rstrip(b"=")


def test_email_forms() -> None:
    forms = only("email", "Tester@Example.org")
    assert forms[b"Tester@Example.org"].transform == "as is"
    assert forms[b"tester@example.org"].transform == "lower"
    assert forms[b"TESTER@EXAMPLE.ORG"].transform == "upper"
    assert forms[b"Tester%40Example.org"].transform == "percent"
    assert forms[b"tester%40example.org"].transform == "percent(lower)"
    assert forms[b64(b"Tester@Example.org")].transform == "base64"
    assert forms[b"Tester@Example.org".hex().encode()].transform == "hex"
    assert forms[b"Tester@Example.org".hex().upper().encode()].transform == "hex upper"
    digest = hashlib.sha256(b"tester@example.org").digest()
    assert forms[digest.hex().encode()] == Form(digest.hex().encode(), "email", "sha256(lower(email))")
    assert forms[digest.hex().upper().encode()].transform == "sha256(lower(email)) upper"
    assert forms[b64(digest)].transform == "sha256(lower(email)) base64"
    # every hash, in every encoding, of the normalised address
    for name in HASHES:
        d = hashlib.new(name, b"tester@example.org").digest()
        for needle in (d.hex().encode(), d.hex().upper().encode(), b64(d), b64(d, url=True)):
            assert forms[needle].data_type == "email"
            assert forms[needle].transform.startswith(f"{name}(lower(email))")
    # the un-normalised address is not hashed
    assert hashlib.md5(b"Tester@Example.org").hexdigest().encode() not in forms


def test_email_as_is_when_already_lower_case() -> None:
    forms = only("email", "tester@example.org")
    assert forms[b"tester@example.org"].transform == "as is"
    assert forms[b"tester%40example.org"].transform == "percent"
    md5 = hashlib.md5(b"tester@example.org").digest()
    assert forms[md5.hex().encode()].transform == "md5(lower(email))"
    assert forms[b64(md5)] .transform == "md5(lower(email)) base64"
    assert len(b64(md5)) == 22  # no padding: finds "...==" too


def test_gmail_canonical() -> None:
    forms = only("email", "Alex.Tester+apps@gmail.com")
    assert forms[b"alextester@gmail.com"].transform == "canonical gmail"
    assert forms[hashlib.sha256(b"alextester@gmail.com").hexdigest().encode()].transform == (
        "sha256(canonical gmail(email))"
    )


def test_mac_forms() -> None:
    forms = only("mac", "3C-5A-B4-01-02-03")
    expected = {
        b"3c:5a:b4:01:02:03": "colons, lower",
        b"3C:5A:B4:01:02:03": "colons, upper",
        b"3c-5a-b4-01-02-03": "dashes, lower",
        b"3C-5A-B4-01-02-03": "dashes, upper",  # the value as is, named by its format
        b"3c5ab4010203": "no separators, lower",
        b"3C5AB4010203": "no separators, upper",
        b"3c5a.b401.0203": "Cisco dots, lower",
        b"3C5A.B401.0203": "Cisco dots, upper",
        bytes.fromhex("3c5ab4010203"): "raw bytes",
        b64(bytes.fromhex("3c5ab4010203")): "base64(raw bytes)",
        b"3c%3A5a%3Ab4%3A01%3A02%3A03": "percent(colons, lower)",
    }
    for needle, transform in expected.items():
        assert forms[needle].transform == transform
        assert forms[needle].data_type == "mac"
    assert forms[hashlib.sha1(b"3c5ab4010203").hexdigest().encode()].transform == (
        "sha1(lower(mac) without separators)"
    )
    assert forms[hashlib.md5(b"3c:5a:b4:01:02:03").hexdigest().encode()].transform == (
        "md5(lower(mac) with colons)"
    )


def test_phone_forms() -> None:
    forms = only("phone", "+44 7700 900123")
    expected = {
        b"+447700900123": "e164",
        b"447700900123": "e164 without +",
        b"00447700900123": "00 + e164 digits",
        b"+44 7700 900123": "international",
        b"+44-7700-900123": "international with dashes",
        b"07700 900123": "national",
        b"07700900123": "national digits",
        b"7700900123": "national number",
        b"%2B447700900123": "percent(e164)",
        b"%2B44+7700+900123": "form-encoded(international)",
    }
    for needle, transform in expected.items():
        assert forms[needle].transform == transform
    assert forms[hashlib.sha256(b"447700900123").hexdigest().encode()].transform == "sha256(digits(phone))"
    assert forms[hashlib.sha256(b"+447700900123").hexdigest().encode()].transform == "sha256(e164(phone))"


@pytest.mark.parametrize("written", ["0044 7700 900123", "447700900123", "+44 (0)7700 900-123"])
def test_phone_written_otherwise(written: str) -> None:
    forms = only("phone", written)
    assert forms[b"+447700900123"].transform == "e164"
    assert forms[b"07700 900123"].transform == "national"


def test_phone_not_understood_falls_back_to_digits() -> None:
    forms = only("phone", "ext. 1234-5678")
    assert forms[b"12345678"].transform == "digits"
    assert hashlib.md5(b"12345678").hexdigest().encode() in forms


def test_advertising_id_forms() -> None:
    value = "38400000-8cf0-11bd-b23e-10b96e40000d"
    forms = only("advertising_id", value)
    assert forms[value.encode()].transform == "as is"
    assert forms[value.upper().encode()].transform == "upper"
    assert forms[value.replace("-", "").encode()].transform == "no separators, lower"
    assert forms[value.replace("-", "").upper().encode()].transform == "no separators, upper"
    assert forms[bytes.fromhex(value.replace("-", ""))].transform == "raw bytes"
    assert forms[hashlib.md5(value.upper().encode()).hexdigest().encode()].transform == (
        "md5(upper(advertising_id))"
    )
    assert forms[hashlib.sha256(value.encode()).hexdigest().encode()].transform == (
        "sha256(lower(advertising_id))"
    )


def test_custom_uuid_is_treated_as_one() -> None:
    forms = by_needle(profile_forms(Profile(custom={"idfv": "A1B2C3D4-0000-4000-8000-00000000ABCD"})))
    assert forms[b"a1b2c3d400004000800000000000abcd"] == Form(
        b"a1b2c3d400004000800000000000abcd", "idfv", "no separators, lower"
    )


def test_imei_forms() -> None:
    forms = only("imei", "49-015420-323751-8")
    assert forms[b"490154203237518"].transform == "digits"
    assert forms[b"49 015420 323751 8"].transform == "with spaces"
    assert forms[b"49-015420-323751-8"].transform == "with dashes"
    assert forms[hashlib.sha1(b"490154203237518").hexdigest().encode()].transform == "sha1(digits(imei))"


def test_android_id_serial_name_ip() -> None:
    forms = by_needle(profile_forms(FULL))
    assert forms[b"9774D56D682E549C"].transform == "upper"
    assert forms[bytes.fromhex("9774d56d682e549c")].transform == "raw bytes"
    assert forms[b"r58m12abcde"].transform == "lower"
    assert forms[hashlib.md5(b"R58M12ABCDE").hexdigest().encode()].transform == "md5(serial)"
    assert forms[b"Alex+Tester"].transform == "form-encoded"
    assert forms[b"Alex%20Tester"].transform == "percent"
    assert forms[hashlib.sha256(b"alex").hexdigest().encode()].transform == "sha256(lower(first name))"
    assert forms[hashlib.sha256(b"tester").hexdigest().encode()].transform == "sha256(lower(last name))"
    assert forms[b"3405803821"].transform == "as integer"
    assert forms[b"u-829301"] == Form(b"u-829301", "account_id", "as is")


@pytest.mark.parametrize("label,template", PAIR_LAYOUTS)
def test_coordinate_pairs_at_4_and_3_decimals(label: str, template: str) -> None:
    forms = by_needle(profile_forms(FULL))
    cases = [
        ("48.8584", "2.2945", f"{label} @4 decimals"),
        ("48.8583", "2.2944", f"{label} @4 decimals truncated"),
        ("48.858", "2.294", f"{label} @3 decimals"),  # rounded and truncated are the same
        ("48.85837", "2.29448", f"{label} @5 decimals"),
        ("48.858370", "2.294481", f"{label} @6 decimals"),
    ]
    for lat, lng, transform in cases:
        needle = template.format(lat=lat, lng=lng).encode()
        assert forms[needle] == Form(needle, "location", transform)
    assert template.format(lat="48.86", lng="2.29").encode() not in forms  # not below 3 decimals


@pytest.mark.parametrize("label,template", KEYED_LAYOUTS)
def test_keyed_coordinates_at_4_and_3_decimals(label: str, template: str) -> None:
    forms = by_needle(profile_forms(FULL))
    for keys, rounded4, truncated4, at3 in ((LAT_KEYS, "48.8584", "48.8583", "48.858"),
                                            (LNG_KEYS, "2.2945", "2.2944", "2.294")):
        for k in keys:
            name = label.format(k=k)
            for x, transform in ((rounded4, f"{name} @4 decimals"), (truncated4, f"{name} @4 decimals truncated"),
                                 (at3, f"{name} @3 decimals")):
                needle = template.format(k=k, x=x).encode()
                assert forms[needle] == Form(needle, "location", transform)


def test_coordinates_percent_encoded_and_without_trailing_zeros() -> None:
    forms = by_needle(profile_forms(Profile(latitude=51.5, longitude=-0.12)))
    assert forms[b"51.500,-0.120"].transform == "lat,lng @3 decimals"
    assert forms[b"51.5,-0.12"].transform == "lat,lng @3 decimals, no trailing zeros"
    assert forms[b"51.500%2C-0.120"].transform == "percent(lat,lng @3 decimals)"
    assert forms[b"%22lat%22%3A51.500"].transform == 'percent("lat":X @3 decimals)'


def test_negative_coordinates_truncated_and_floored() -> None:
    forms = by_needle(profile_forms(Profile(latitude=-33.86882, longitude=151.20929)))
    assert forms[b"-33.8688,151.2093"].transform == "lat,lng @4 decimals"
    assert forms[b"-33.8688,151.2092"].transform == "lat,lng @4 decimals truncated"
    assert forms[b"-33.8689,151.2092"].transform == "lat,lng @4 decimals floored"


def test_no_location_without_coordinates() -> None:
    assert all(f.data_type != "location" for f in profile_forms(Profile({"email": "a@b.cd"})))


def test_no_short_needles() -> None:
    profiles = [FULL, Profile({"name": "Al", "serial": "X1"}, custom={"pin": "1234", "c": "a"})]
    for profile in profiles:
        forms = profile_forms(profile)
        assert forms
        assert min(len(f.needle) for f in forms) >= MIN_NEEDLE == 6
    short = by_needle(profile_forms(Profile(custom={"pin": "1234"})))
    assert b"1234" not in short and b"MTIzNA" in short  # the value itself is too short, its base64 not


def test_needles_are_unique_and_first_transform_is_kept() -> None:
    forms = profile_forms(FULL)
    counts = Counter(f.needle for f in forms)
    assert max(counts.values()) == 1
    # a custom value equal to the email keeps the email's forms (the first data type)
    same = profile_forms(Profile({"email": "tester@example.org"}, custom={"login": "tester@example.org"}))
    assert {f.data_type for f in same} == {"email"}
    # digits have no case: "upper" and "lower" of an IMEI are its digits
    imei = only("imei", "490154203237518")
    assert imei[b"490154203237518"].transform == "digits"
    assert imei[b"490154203237518".hex().encode()].transform == "hex"


def test_every_form_has_a_transform() -> None:
    for f in profile_forms(FULL):
        assert f.transform and f.data_type and isinstance(f.needle, bytes)


def test_a_key_of_several_values_reports_the_value_that_was_found(tmp_path: Path) -> None:
    """A profile key may list several values (two test accounts): the finding shows the one
    that was sent, not the key's last."""
    from datareach.detect import Detector, load_profile
    from datareach.schema import Exchange

    p = tmp_path / "profile.toml"
    p.write_text('email = ["first.account@example.org", "second.account@example.org"]\n', encoding="utf-8")
    profile = load_profile(p)
    detector = Detector(profile)
    for sent in ("first.account@example.org", "second.account@example.org"):
        ex = Exchange(ts=0.0, scheme="http", method="POST", host="api.example.com",
                      url="http://api.example.com/u", target="/u", http_version="HTTP/1.1",
                      request_headers=[("Content-Type", "application/json")],
                      request_body=('{"mail": "' + sent + '"}').encode())
        findings, _cuts = detector.detect(ex)
        known = [f for f in findings if f.source == "profile" and f.data_type == "email"]
        assert known and {f.value for f in known} == {sent}
