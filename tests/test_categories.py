"""Data types -> the categories of 28 CFR part 202 and the GDPR, and the cleartext flag."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datareach.detect.categories import categories, gdpr_special
from datareach.detect.profile import KEYS

CPI = "us-doj:covered-personal-identifiers"
GEO = "us-doj:precise-geolocation"
GDPR = "gdpr:personal-data"

EXPECTED = {
    # profile keys
    "advertising_id": [GDPR, CPI],
    "android_id": [GDPR, CPI],
    "imei": [GDPR, CPI],
    "serial": [GDPR, CPI],
    "mac": [GDPR, CPI],
    "email": [GDPR, CPI],
    "phone": [GDPR, CPI],
    "name": [GDPR, CPI],
    "latitude": [GDPR, GEO],
    "longitude": [GDPR, GEO],
    "location": [GDPR, GEO],
    "ip": [GDPR, CPI],
    # pattern detectors
    "mac_address": [GDPR, CPI],
    "vendor_id": [GDPR, CPI],
    "precise_location": [GDPR, GEO],
    "private_ip": [GDPR, CPI],
    "wifi_ssid": [GDPR, CPI],
    "wifi_bssid": [GDPR, CPI, GEO],
    "device_fingerprint": [GDPR, CPI],
}


@pytest.mark.parametrize(("data_type", "expected"), sorted(EXPECTED.items()))
def test_mapping(data_type: str, expected: list[str]) -> None:
    assert categories(data_type, cleartext=False) == sorted(expected)
    assert categories(data_type, cleartext=True) == sorted([*expected, "sent_in_cleartext"])


def test_every_profile_key_is_mapped() -> None:
    for key in KEYS:
        assert key in EXPECTED
        assert CPI in categories(key, cleartext=False) or GEO in categories(key, cleartext=False)


def test_pattern_types_are_not_special_categories() -> None:
    for data_type in EXPECTED:
        assert not any(c.startswith("gdpr:special:") for c in categories(data_type, cleartext=False))


@pytest.mark.parametrize("custom", ["account_id", "customer", "loyalty_number", "nickname", "x", ""])
def test_unknown_custom_keys_are_personal_data_only(custom: str) -> None:
    assert categories(custom, cleartext=False) == [GDPR]
    assert categories(custom, cleartext=True) == [GDPR, "sent_in_cleartext"]


@pytest.mark.parametrize(("data_type", "expected"), [
    ("heart_rate", {"us-doj:health", "gdpr:special:health"}),
    ("Heart-Rate", {"us-doj:health", "gdpr:special:health"}),
    ("my_health_score", {"us-doj:health", "gdpr:special:health"}),
    ("faceprint", {"us-doj:biometric", "gdpr:special:biometric"}),
    ("fingerprint", {"us-doj:biometric", "gdpr:special:biometric"}),
    ("genome", {"us-doj:human-omic", "gdpr:special:genetic"}),
    ("dna_kit_result", {"us-doj:human-omic", "gdpr:special:genetic"}),
    ("iban", {CPI, "us-doj:financial"}),
    ("credit_card", {CPI, "us-doj:financial"}),
    ("income", {"us-doj:financial"}),
    ("ssn", {CPI}),
    ("passport_number", {CPI}),
    ("username", {CPI}),
    ("work_email", {CPI}),
    ("sim_card", {CPI}),
    ("religion", {"gdpr:special:religious-beliefs"}),
    ("sexual_orientation", {"gdpr:special:sexual-orientation"}),
])
def test_special_and_sensitive_types(data_type: str, expected: set[str]) -> None:
    assert set(categories(data_type, cleartext=False)) == {GDPR, *expected}


def test_device_fingerprint_is_not_biometric() -> None:
    assert "us-doj:biometric" not in categories("device_fingerprint", cleartext=False)


def test_gdpr_special_names() -> None:
    assert gdpr_special("health") == "gdpr:special:health"
    with pytest.raises(ValueError):
        gdpr_special("shoe-size")


@given(st.text(max_size=60), st.booleans())
def test_always_sorted_personal_data_and_flag(data_type: str, cleartext: bool) -> None:
    cats = categories(data_type, cleartext=cleartext)
    assert cats == sorted(set(cats))
    assert GDPR in cats
    assert ("sent_in_cleartext" in cats) is cleartext
