"""The categories policies use, for each kind of personal data found.

:func:`categories` maps a finding's ``data_type`` -- a profile key (``advertising_id``,
``email``, ``location``...), a ``[custom]`` profile name, or a pattern detector's name
(:mod:`.patterns`: ``mac_address``, ``precise_location``, ``private_ip``...) -- to sorted
category labels:

US DOJ rule on sensitive personal data, 28 CFR part 202 (90 FR 1706, Jan. 8, 2025)
    §202.249 defines *sensitive personal data* as covered personal identifiers, precise
    geolocation data, biometric identifiers, human 'omic data, personal health data, personal
    financial data, or any combination of them. One label per category:

    ``us-doj:covered-personal-identifiers``
        §202.212 covered personal identifiers: a *listed identifier* (§202.234) in combination
        with another listed identifier, or with other data disclosed in the transaction that
        makes it linked or linkable to other listed identifiers or other sensitive personal
        data. §202.234 lists: (a) government identification or account numbers (SSN, driver's
        licence, passport...); (b) full financial account numbers or PINs; (c) device-based or
        hardware-based identifiers (IMEI, MAC address, SIM card number); (d) demographic or
        contact data (name, birth date, ZIP code, address, phone number, e-mail address,
        similar public account identifiers); (e) advertising identifiers (Google advertising
        ID, Apple IDFA, other MAIDs); (f) account-authentication data (username, password,
        security answers); (g) network-based identifiers (IP address, cookie data); (h)
        call-detail data (CPNI).
    ``us-doj:precise-geolocation``
        §202.242: data identifying the physical location of an individual or a device within
        1,000 metres, real-time or historical.
    ``us-doj:biometric``
        §202.204 biometric identifiers: facial images, voice prints, retina/iris scans, palm
        prints and fingerprints, gait, keyboard usage patterns enrolled in a biometric system,
        and the templates it creates.
    ``us-doj:human-omic``, ``us-doj:health``, ``us-doj:financial``
        human 'omic data, personal health data and personal financial data, defined in
        subpart B next to the above (§§202.224, 202.241 and 202.240).

    **The combination nuance, and how it is treated here.** A listed identifier is a covered
    personal identifier only together with another listed identifier or linked data
    (§202.212(a)); a standalone one in isolation is not (§202.212(c), example 1), and
    demographic/contact data linked only to other demographic/contact data, or network
    identifiers, authentication or call-detail data linked only to each other as needed to
    provide a network service, are excluded (§202.212(b)). This function sees one data type
    at a time and **conservatively marks every listed identifier** as
    ``us-doj:covered-personal-identifiers``. Rationale: an app request never carries an
    identifier in isolation -- it always discloses the device's IP address (a network-based
    identifier, §202.234(g)) to the recipient, and almost always more (advertising ID, device
    model, account token); the §202.212(b) exclusions concern data linked *only* to the same
    kind of data, which a third-party SDK or analytics endpoint rarely receives. A report
    that needs the strict reading can re-check the combination over all findings of one
    request. The rule's bulk thresholds (§202.205) and exclusions for public data and
    personal communications (§202.249(b)) are for the policy layer, not for this mapping.

    Conservative choices beyond the letter of §202.234: a Wi-Fi BSSID is the access point's
    MAC address (a hardware identifier) and, through public Wi-Fi positioning databases,
    locates the device within tens of metres, so it also gets ``us-doj:precise-geolocation``;
    an SSID and a private (LAN) IP address are read as network-based identifiers; a vendor
    ID (IDFV), Android ID, hardware serial and a device fingerprint as device-based
    identifiers.

GDPR (Regulation (EU) 2016/679)
    ``gdpr:personal-data`` (Art. 4(1): any information relating to an identified or
    identifiable natural person, including by reference to an identification number,
    location data or an online identifier; Recital 30 names IP addresses, cookie identifiers
    and device identifiers) for every data type, unknown custom profile keys included: the
    profile holds the user's own values, so whatever it names relates to them.
    ``gdpr:special:<category>`` (Art. 9(1)) only where the data type itself is special:
    ``racial-ethnic-origin``, ``political-opinions``, ``religious-beliefs``,
    ``trade-union-membership``, ``genetic``, ``biometric``, ``health``, ``sex-life``,
    ``sexual-orientation``. None of the pattern detectors' types is special; the mapping is
    ready for profile keys and future detectors of health, biometric or genetic data.

``sent_in_cleartext``
    added when ``cleartext=True``: the request travelled over plain HTTP, readable and
    alterable by every network on the way.

Unknown data types (custom profile keys) are normalised (lower case, ``-``/space/``.`` ->
``_``) and looked up as aliases (``ssn``, ``iban``, ``heart_rate``, ``username``...); a name
that still is not known gets DOJ categories only from unmistakable words in it (``health``,
``diagnosis``, ``genome``, ``faceprint``, ``iban``...), and ``gdpr:personal-data`` always.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

__all__ = [
    "CLEARTEXT",
    "DOJ_BIOMETRIC",
    "DOJ_FINANCIAL",
    "DOJ_HEALTH",
    "DOJ_IDENTIFIERS",
    "DOJ_OMIC",
    "DOJ_PRECISE_GEOLOCATION",
    "GDPR_PERSONAL",
    "categories",
    "gdpr_special",
]

DOJ_IDENTIFIERS = "us-doj:covered-personal-identifiers"
DOJ_PRECISE_GEOLOCATION = "us-doj:precise-geolocation"
DOJ_BIOMETRIC = "us-doj:biometric"
DOJ_OMIC = "us-doj:human-omic"
DOJ_HEALTH = "us-doj:health"
DOJ_FINANCIAL = "us-doj:financial"
GDPR_PERSONAL = "gdpr:personal-data"
CLEARTEXT = "sent_in_cleartext"

#: GDPR Art. 9(1) special categories, as used in ``gdpr:special:<category>``.
GDPR_SPECIAL = ("racial-ethnic-origin", "political-opinions", "religious-beliefs", "trade-union-membership",
                "genetic", "biometric", "health", "sex-life", "sexual-orientation")


def gdpr_special(category: str) -> str:
    if category not in GDPR_SPECIAL:
        raise ValueError(f"not a GDPR Art. 9 special category: {category!r}")
    return f"gdpr:special:{category}"


_ID = (DOJ_IDENTIFIERS,)
_GEO = (DOJ_PRECISE_GEOLOCATION,)
_FIN_ID = (DOJ_IDENTIFIERS, DOJ_FINANCIAL)
_HEALTH = (DOJ_HEALTH, gdpr_special("health"))
_BIO = (DOJ_BIOMETRIC, gdpr_special("biometric"))
_OMIC = (DOJ_OMIC, gdpr_special("genetic"))
_NONE: tuple[str, ...] = ()

# Known data types -> categories besides gdpr:personal-data (which every data type gets).
_KNOWN: dict[str, tuple[str, ...]] = {
    # (c) device-based or hardware-based identifiers
    "imei": _ID, "meid": _ID, "serial": _ID, "serial_number": _ID, "mac": _ID, "mac_address": _ID,
    "android_id": _ID, "vendor_id": _ID, "idfv": _ID, "device_id": _ID, "udid": _ID,
    "device_fingerprint": _ID, "sim_serial": _ID, "iccid": _ID, "sim_card": _ID, "imsi": _ID,
    "bluetooth_mac": _ID,
    # (e) advertising identifiers
    "advertising_id": _ID, "gaid": _ID, "idfa": _ID, "aaid": _ID, "oaid": _ID, "maid": _ID,
    # (d) demographic or contact data
    "email": _ID, "phone": _ID, "name": _ID, "first_name": _ID, "last_name": _ID, "full_name": _ID,
    "birth_date": _ID, "date_of_birth": _ID, "dob": _ID, "birthday": _ID, "birthplace": _ID,
    "address": _ID, "street_address": _ID, "postal_address": _ID, "zip": _ID, "zip_code": _ID,
    "postal_code": _ID, "postcode": _ID,
    # (f) account-authentication data
    "username": _ID, "user_name": _ID, "login": _ID, "password": _ID, "security_answer": _ID,
    # (g) network-based identifiers (private/LAN addresses and SSIDs: conservative, see above)
    "ip": _ID, "ip_address": _ID, "private_ip": _ID, "cookie": _ID, "wifi_ssid": _ID, "ssid": _ID,
    # (h) call-detail data
    "call_detail": _ID, "call_log": _ID, "cpni": _ID,
    # (a) government identification numbers
    "ssn": _ID, "social_security_number": _ID, "passport": _ID, "passport_number": _ID,
    "driver_license": _ID, "drivers_license": _ID, "national_id": _ID, "government_id": _ID, "tax_id": _ID,
    # (b) financial account numbers: also personal financial data
    "credit_card": _FIN_ID, "card_number": _FIN_ID, "iban": _FIN_ID, "bank_account": _FIN_ID,
    "account_number": _FIN_ID, "routing_number": _FIN_ID,
    # precise geolocation (§202.242)
    "location": _GEO, "latitude": _GEO, "longitude": _GEO, "precise_location": _GEO, "gps": _GEO,
    "coordinates": _GEO,
    # a BSSID: the access point's MAC, and a location through Wi-Fi positioning (see above)
    "wifi_bssid": (DOJ_IDENTIFIERS, DOJ_PRECISE_GEOLOCATION), "bssid": (DOJ_IDENTIFIERS, DOJ_PRECISE_GEOLOCATION),
    # personal financial data
    "financial": (DOJ_FINANCIAL,), "income": (DOJ_FINANCIAL,), "salary": (DOJ_FINANCIAL,),
    "credit_score": (DOJ_FINANCIAL,), "purchase_history": (DOJ_FINANCIAL,), "payment_history": (DOJ_FINANCIAL,),
    # personal health data; GDPR Art. 9 health
    "health": _HEALTH, "heart_rate": _HEALTH, "blood_pressure": _HEALTH, "blood_glucose": _HEALTH,
    "diagnosis": _HEALTH, "medication": _HEALTH, "medical_record": _HEALTH, "menstrual_cycle": _HEALTH,
    "pregnancy": _HEALTH, "sleep": _HEALTH, "steps": _HEALTH, "weight": _HEALTH, "height": _HEALTH, "bmi": _HEALTH,
    # biometric identifiers; GDPR Art. 9 biometric
    "biometric": _BIO, "fingerprint": _BIO, "faceprint": _BIO, "face_template": _BIO, "face_image": _BIO,
    "voiceprint": _BIO, "voice_print": _BIO, "iris_scan": _BIO, "retina_scan": _BIO, "palm_print": _BIO,
    "gait": _BIO, "keystroke_dynamics": _BIO,
    # human 'omic data; GDPR Art. 9 genetic
    "genetic": _OMIC, "genome": _OMIC, "genomic": _OMIC, "dna": _OMIC, "genotype": _OMIC, "omic": _OMIC,
    "epigenomic": _OMIC, "proteomic": _OMIC, "transcriptomic": _OMIC,
    # GDPR Art. 9 only: no DOJ category of its own
    "racial_origin": (gdpr_special("racial-ethnic-origin"),), "ethnicity": (gdpr_special("racial-ethnic-origin"),),
    "ethnic_origin": (gdpr_special("racial-ethnic-origin"),),
    "political_opinion": (gdpr_special("political-opinions"),),
    "political_opinions": (gdpr_special("political-opinions"),),
    "religion": (gdpr_special("religious-beliefs"),), "religious_beliefs": (gdpr_special("religious-beliefs"),),
    "trade_union": (gdpr_special("trade-union-membership"),),
    "trade_union_membership": (gdpr_special("trade-union-membership"),),
    "sex_life": (gdpr_special("sex-life"),), "sexual_orientation": (gdpr_special("sexual-orientation"),),
}

# Words that, inside an otherwise unknown custom name, are unmistakable enough to categorise it.
_WORDS: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (frozenset({"health", "medical", "diagnosis", "medication", "prescription", "symptom", "glucose",
                "menstrual", "pregnancy", "hiv", "disease", "heartrate", "bloodpressure"}), _HEALTH),
    (frozenset({"biometric", "faceprint", "voiceprint", "iris", "retina", "palmprint"}), _BIO),
    (frozenset({"genome", "genomic", "genetic", "dna", "genotype", "omic"}), _OMIC),
    (frozenset({"iban", "creditcard", "cardnumber", "bankaccount", "salary", "income"}), _FIN_ID),
    (frozenset({"imei", "imsi", "iccid", "idfa", "gaid", "ssn", "passport", "email", "msisdn"}), _ID),
)

_SEPARATORS = re.compile(r"[\s\-.]+")
_TOKEN = re.compile(r"[a-z]+|[0-9]+")


def _normalise(data_type: str) -> str:
    return _SEPARATORS.sub("_", data_type.strip().lower())


@lru_cache(maxsize=4096)
def _extra(data_type: str) -> tuple[str, ...]:
    name = _normalise(data_type)
    known = _KNOWN.get(name)
    if known is not None:
        return known
    tokens = _TOKEN.findall(name)
    grams = set(tokens) | {a + b for a, b in itertools.pairwise(tokens)}
    found: list[str] = []
    for words, cats in _WORDS:
        if not grams.isdisjoint(words):
            found.extend(cats)
    return tuple(found) if found else _NONE


def categories(data_type: str, *, cleartext: bool) -> list[str]:
    """The sorted category labels of one kind of personal data.

    Every data type is ``gdpr:personal-data``; DOJ and GDPR special categories follow the
    type (see the module docstring); ``sent_in_cleartext`` is added for plain-HTTP requests.
    """
    found = {GDPR_PERSONAL, *_extra(data_type)}
    if cleartext:
        found.add(CLEARTEXT)
    return sorted(found)
