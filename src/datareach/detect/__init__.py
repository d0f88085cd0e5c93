"""Detect: which personal data a request carries, and in what form.

The stage takes each HTTP request (:class:`~datareach.schema.Exchange`) apart into layers
(:mod:`.decode`), then looks for the user's own values in every form (:mod:`.known`, matched
all at once by :mod:`.matcher`) and for personal data by pattern (:mod:`.patterns`). Every
finding is mapped to the categories policies use (:mod:`.categories`).

    detector = Detector(load_profile(Path("profile.toml")))
    findings, cuts = detector.detect(exchange)
"""

from __future__ import annotations

from datareach.detect.profile import Profile, ProfileError, load_profile, redact
from datareach.detect.types import Decoded, Finding, Layer, Limits

__all__ = ["Decoded", "Detector", "Finding", "Layer", "Limits", "Profile", "ProfileError", "load_profile", "redact"]


def __getattr__(name: str) -> object:
    if name == "Detector":
        from datareach.detect.detector import Detector

        return Detector
    raise AttributeError(name)
