"""Which SDK or service product a destination is, and what it is for.

A destination's ``service`` names the product behind its host name ("AppsFlyer SDK",
"Firebase Crashlytics", "Pangle") with a purpose category (``attribution``, ``crash-reporting``,
``advertising``...), from the knowledge base's ``[[service]]`` records (``kb/data/services.toml``):

* ``domain``: the host name, or its closest parent domain, is a domain of a service (longest
  suffix first: ``firebase-settings.crashlytics.com`` before ``crashlytics.com``);
* ``cname``: the capture's DNS answers took the host through a CNAME chain to such a domain (an
  app's own link domain that CNAMEs to ``app.link`` is Branch's).

The service's vendor is evidence about the service, kept apart from the owner: ``vendor_is_owner``
says whether the vendor is the owner found for the host, or in the same control group (true), a
different company (false: the reports name both), or there is no owner to compare with (null).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datareach.kb.index import KnowledgeBase

__all__ = ["ServiceResolver"]


class ServiceResolver:
    """``service`` objects for hosts; memoised per (service, match, basis, owner)."""

    def __init__(self, kb: KnowledgeBase, chain: Any = None) -> None:
        self.kb = kb
        #: ``chain(entity_id, date)`` of an :class:`~datareach.enrich.ownership.OwnershipResolver`,
        #: to compare the vendor's control group with the owner's (optional)
        self._chain = chain
        self._memo: dict[tuple[str, str, str, str | None, str], dict[str, Any]] = {}

    def match(self, host: str, cname_chain: Sequence[str] = ()) -> tuple[str, str, str] | None:
        """(service id, basis, the service domain that matched) for a host, or None."""
        kb = self.kb
        if host:
            hit = kb.service_of_name(host)
            if hit is not None:
                return hit[0], "domain", hit[1]
        for name in list(cname_chain)[1:]:
            if isinstance(name, str):
                hit = kb.service_of_name(name)
                if hit is not None:
                    return hit[0], "cname", hit[1]
        return None

    def service(self, host: str, cname_chain: Sequence[str] = (), owner: Mapping[str, Any] | None = None,
                date: str = "") -> dict[str, Any] | None:
        """The ``service`` object of a destination (the audit JSON's), or None when none is known."""
        found = self.match(host, cname_chain)
        if found is None:
            return None
        return self.of(found, owner, date)

    def of(self, found: tuple[str, str, str], owner: Mapping[str, Any] | None, date: str) -> dict[str, Any]:
        """The ``service`` object for a match of :meth:`match` (shared by every host with it)."""
        sid, basis, matched = found
        owner_id = owner.get("entity") if isinstance(owner, Mapping) else None
        key = (sid, basis, matched, owner_id if isinstance(owner_id, str) else None, date)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        s = self.kb.services[sid]
        vendor = self.kb.entities.get(s["vendor"], {})
        hit = {
            "id": sid,
            "name": s["name"],
            "purpose": s["purpose"],
            "purposes": s["purposes"],
            "vendor": s["vendor"],
            "vendor_name": vendor.get("name", s["vendor"]),
            "vendor_hq": vendor.get("hq"),
            "vendor_is_owner": self._same_group(s["vendor"], owner, date),
            "basis": basis,
            "matched": matched,
            "sources": s["sources"],
        }
        self._memo[key] = hit
        return hit

    def _same_group(self, vendor: str, owner: Mapping[str, Any] | None, date: str) -> bool | None:
        """Whether the vendor is the owner, in its control chain, or under the same ultimate
        parent; None without an owner."""
        if not isinstance(owner, Mapping) or not owner.get("entity"):
            return None
        ids = {owner.get("entity")}
        for link in owner.get("chain") or ():
            if isinstance(link, Mapping):
                ids.add(link.get("entity"))
        top = owner.get("ultimate_parent")
        if isinstance(top, Mapping):
            ids.add(top.get("entity"))
        if vendor in ids:
            return True
        if self._chain is not None and vendor in self.kb.entities:
            info = self._chain(vendor, date or "9999-12-31")
            mine = {e for e, _ in info["controlled"]} | {info["ultimate_parent"]["entity"]}
            return bool(mine & ids)
        return False
