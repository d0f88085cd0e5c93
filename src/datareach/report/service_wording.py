"""How the reports word a destination's ``service``: the SDK or product and what it is for.

``AppsFlyer SDK — attribution``, ``Facebook SDK (Graph API) — social / advertising``,
``Mintegral — advertising (vendor: Mobvista Inc., CN)``. The vendor is named when it is not the
destination's owner (or the owner is not known): the service's vendor and the host's owner are
two pieces of evidence, and a report shows both.

Format-neutral, like :mod:`.wording`: plain ``str``, never escaped; each renderer escapes for its
output. A document may come from anywhere (``datareach diff`` reads files users hand it), so the
``service`` object is read defensively: anything malformed gives no line, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ServiceWording", "purpose_label", "service_line", "service_parts"]

#: Purposes shown per service at most (the JSON has them all).
MAX_PURPOSES = 2


def purpose_label(purpose: object) -> str:
    """A purpose id in words: ``crash-reporting`` -> ``crash reporting``."""
    return str(purpose).replace("-", " ")


@dataclass(frozen=True)
class ServiceWording:
    """The parts of a ``service`` that the reports name. ``vendor`` is None when the vendor is
    the destination's owner (or in its control group)."""

    name: str
    purposes: tuple[str, ...]
    vendor: str | None
    vendor_country: str | None

    @property
    def purpose(self) -> str:
        """``social / advertising``: the main purpose first, at most :data:`MAX_PURPOSES`."""
        return " / ".join(self.purposes[:MAX_PURPOSES]) or "purpose unknown"


def service_parts(service: object) -> ServiceWording | None:
    """The parts of a document's ``service`` object to name; None when there is none."""
    if not isinstance(service, Mapping) or not service.get("name"):
        return None
    raw: Any = service.get("purposes")
    purposes = [p for p in raw if isinstance(p, str)] if isinstance(raw, list) else []
    if not purposes and service.get("purpose"):
        purposes = [str(service["purpose"])]
    named = service.get("vendor_is_owner") is not True
    vendor = service.get("vendor_name") or service.get("vendor")
    country = service.get("vendor_hq")
    return ServiceWording(
        name=str(service["name"]),
        purposes=tuple(purpose_label(p) for p in dict.fromkeys(purposes)),
        vendor=str(vendor) if named and vendor else None,
        vendor_country=str(country) if named and vendor and country else None,
    )


def service_line(service: object, *, unknown: str = "") -> str:
    """``AppsFlyer SDK — attribution``; with the vendor when it is not the owner:
    ``Mintegral — advertising (vendor: Mobvista Inc., CN)``. ``unknown`` when there is none."""
    w = service_parts(service)
    if w is None:
        return unknown
    text = f"{w.name} — {w.purpose}"
    if w.vendor is not None:
        text += f" (vendor: {w.vendor}{', ' + w.vendor_country if w.vendor_country else ''})"
    return text
