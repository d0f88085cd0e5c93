"""One request in, findings out: decoding, known values, patterns and categories together."""

from __future__ import annotations

import re
from dataclasses import dataclass

from datareach.detect.categories import categories
from datareach.detect.decode import decode_exchange
from datareach.detect.known import Form, profile_forms
from datareach.detect.matcher import Matcher
from datareach.detect.patterns import detect_fingerprint, detect_patterns
from datareach.detect.profile import Profile, redact
from datareach.detect.types import Finding, Layer, Limits
from datareach.model import Exchange

#: Pattern data types and the profile key they find the same thing as (a profile match of the
#: same value in the same place makes the pattern finding redundant).
SAME_AS_PROFILE = {
    "precise_location": "location", "mac_address": "mac", "wifi_bssid": "mac",
    "advertising_id": "advertising_id", "android_id": "android_id", "email": "email",
    "phone": "phone", "imei": "imei",
}


@dataclass(slots=True)
class _Candidate:
    family: str
    path: tuple[str, ...]  # the layer's encoding chain
    finding: Finding


_LAT_ALONE = re.compile(r'(?<![a-z])(lat|latitude)"?\s*[:=]')
_LNG_ALONE = re.compile(r'(?<![a-z])(lng|lon|longitude)"?\s*[:=]')


def _both_coordinates(forms: list[Form]) -> bool:
    """Whether location matches show the user's position, not a coincidence in one coordinate.

    A pair form (``lat,lng``) is enough; forms of a single keyed coordinate (``"lat":X``) count
    only when the other coordinate matched too.
    """
    lat = lng = False
    for form in forms:
        t = form.transform
        is_lat, is_lng = bool(_LAT_ALONE.search(t)), bool(_LNG_ALONE.search(t))
        if not is_lat and not is_lng:
            return True  # a pair
        lat |= is_lat
        lng |= is_lng
    return lat and lng


def _is_ancestor(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether layer path ``a`` contains layer path ``b`` (b was decoded out of a)."""
    if len(a) < len(b) and b[: len(a)] == a:
        return True
    # the raw query string holds every query parameter
    return a == ("query",) and bool(b) and b[0].startswith("query ")


class Detector:
    """Finds personal data in requests; build one per audit (it compiles the profile's forms)."""

    def __init__(self, profile: Profile | None = None, *, engine: str = "auto", limits: Limits | None = None) -> None:
        self.profile = profile
        self.limits = limits if limits is not None else Limits()
        self.forms = profile_forms(profile) if profile is not None else []
        self.matcher = Matcher(self.forms, engine=engine) if self.forms else None
        self._rank = {form: i for i, form in reversed(list(enumerate(self.forms)))}
        values = dict(profile.items()) if profile is not None else {}
        if profile is not None and profile.has_location:
            values["location"] = f"{profile.latitude},{profile.longitude}"
        self._values = values

    @property
    def engine(self) -> str | None:
        return self.matcher.engine if self.matcher is not None else None

    def detect(self, ex: Exchange) -> tuple[list[Finding], list[str]]:
        """The findings in one request, and what the decoding limits cut in it.

        A value found in a layer and again in a layer decoded out of it is reported once, at
        the deepest layer (the most exact encoding chain); a pattern finding that a profile
        match already covers in the same place is dropped.
        """
        decoded = decode_exchange(ex, self.limits)
        cleartext = ex.scheme == "http"
        candidates = self._profile_candidates(decoded.layers, cleartext) + self._pattern_candidates(
            decoded.layers, cleartext)
        kept = [
            c for c in candidates
            if not any(o.family == c.family and _is_ancestor(c.path, o.path) for o in candidates)
        ]
        covered = {(c.family, c.path) for c in kept if c.finding.source == "profile"}
        kept = [c for c in kept if c.finding.source == "profile" or (c.family, c.path) not in covered]
        found = [c.finding for c in kept]
        families = {c.family for c in kept if c.finding.source == "profile"}
        for hit in detect_fingerprint(decoded.layers):
            if SAME_AS_PROFILE.get(hit.data_type) in families:
                continue  # a profile match of the same data already reports it
            found.append(Finding(
                data_type=hit.data_type, source="pattern",
                categories=categories(hit.data_type, cleartext=cleartext),
                encoding=[], location="request", value=hit.value,
                value_redacted=redact(hit.value), confidence=hit.confidence,
            ))
        return found, decoded.cuts

    def _profile_candidates(self, layers: list[Layer], cleartext: bool) -> list[_Candidate]:
        if self.matcher is None:
            return []
        # one finding per (layer, data type): the most informative form (forms are ordered so)
        best: dict[tuple[int, str], tuple[int, Layer, Form]] = {}
        matches = self.matcher.scan_layers(layers)
        located = _both_coordinates([form for _layer, form in matches if form.data_type == "location"])
        for layer, form in matches:
            k = (id(layer), form.data_type)
            r = self._rank.get(form, len(self._rank))
            if k not in best or r < best[k][0]:
                best[k] = (r, layer, form)
        chosen = sorted(best.values(), key=lambda b: b[0])
        if not located:
            chosen = [c for c in chosen if c[2].data_type != "location"]
        out = []
        for _r, layer, form in chosen:
            encoding = [*layer.encoding, form.transform] if form.transform != "as is" else list(layer.encoding)
            value = self._values.get(form.data_type, "")
            out.append(_Candidate(form.data_type, layer.encoding, Finding(
                data_type=form.data_type, source="profile",
                categories=categories(form.data_type, cleartext=cleartext),
                encoding=encoding, location=layer.location,
                value=value, value_redacted=redact(value), confidence=1.0,
            )))
        return out

    @staticmethod
    def _pattern_candidates(layers: list[Layer], cleartext: bool) -> list[_Candidate]:
        out = []
        seen: set[tuple[str, tuple[str, ...], str]] = set()
        for layer in layers:
            for hit in detect_patterns(layer):
                key = (hit.data_type, layer.encoding, hit.value)
                if key in seen:
                    continue
                seen.add(key)
                out.append(_Candidate(SAME_AS_PROFILE.get(hit.data_type, hit.data_type), layer.encoding, Finding(
                    data_type=hit.data_type, source="pattern",
                    categories=categories(hit.data_type, cleartext=cleartext),
                    encoding=list(layer.encoding), location=layer.location,
                    value=hit.value, value_redacted=redact(hit.value), confidence=hit.confidence,
                )))
        return out
