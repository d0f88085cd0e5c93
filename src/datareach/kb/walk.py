"""One walk over a host name's suffixes for every look-up ``explain`` makes of it.

:meth:`KnowledgeBase.owner_of_name`, :meth:`~KnowledgeBase.platform_of`,
:meth:`~KnowledgeBase.service_of_name` and the registrable domain
(:func:`datareach.kb.psl.registrable_domain_of_many`) each walk the suffixes of a name over a
dictionary of their own. :class:`NameWalk` merges the four dictionaries into one, keyed by every
suffix that ends any of their names, so that a name costs one walk from its right, one look-up a
label, which stops at the first suffix that ends none of them (most unknown names: two look-ups).
Same answers as the four look-ups (tested over generated names and every rule of the list), for
plain lower-case ASCII names; anything else goes through the look-ups themselves.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datareach.kb.index import KnowledgeBase

__all__ = ["NameWalk", "plain_name"]

#: a name the walk answers for: lower-case ASCII labels of 1 to 63 characters
plain_name = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}").fullmatch

# the public suffix list's verdict on a suffix, in the order the list's rules are checked
_EXACT, _WILDCARD, _EXCEPTION = 1, 2, 3
# the record of a suffix that only ends names of the four (no record of its own)
_NONE = 0
_FORMAT = 1

Answer = tuple[str | None, str | None, str | None, tuple[str, str] | None, str | None]


class NameWalk:
    """The four suffix look-ups of a knowledge base and the public suffix list in one
    dictionary: suffix -> (KB domain's entity, is a platform suffix, service id, suffix-list
    verdict); a suffix that only ends such names maps to a record of nothing."""

    def __init__(self, kb: KnowledgeBase) -> None:
        from datareach.kb import psl

        rules = psl.suffix_rules()
        records: dict[str, list[object]] = {}

        def record(name: str) -> list[object]:
            rec = records.get(name)
            if rec is None:
                labels = name.split(".")
                for i in range(1, len(labels)):
                    records.setdefault(".".join(labels[i:]), [None, False, None, 0])
                rec = records[name] = [None, False, None, 0]
            return rec

        for domain, eid in kb.domains.items():
            record(domain)[0] = eid
        for suffix in kb.platforms:
            record(suffix)[1] = True
        for domain, sid in kb.service_domains.items():
            record(domain)[2] = sid
        for rule in rules:
            name = rule.removeprefix("!").removeprefix("*.")
            verdict = (_EXCEPTION if "!" + name in rules else _WILDCARD if "*." + name in rules
                       else _EXACT if name in rules else 0)
            if verdict:
                record(name)[3] = verdict
        self._index: dict[str, tuple[str | None, bool, str | None, int] | int] = {
            k: _NONE if v == [None, False, None, 0] else (v[0], v[1], v[2], v[3])  # type: ignore[misc]
            for k, v in records.items()}
        self._registrable = kb.registrable

    @classmethod
    def of(cls, kb: KnowledgeBase) -> NameWalk:
        """The walk of a knowledge base, kept in the cache directory beside it (a few
        milliseconds to read instead of a tenth of a second to build)."""
        import marshal

        from datareach import cache

        if kb.cache_key is None:
            return cls(kb)
        key = {"what": "name-walk", "format": _FORMAT, "kb": kb.cache_key}
        try:
            path = cache.cache_path("name-walk", key)
            hit = cache.load(path, key)
            if hit is not None:
                walk = cls.__new__(cls)
                walk._index = marshal.loads(hit.section("index"))
                walk._registrable = kb.registrable
                if isinstance(walk._index, dict):
                    return walk
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            pass
        walk = cls(kb)
        with contextlib.suppress(OSError, ValueError):
            cache.store(path, key, {"index": (marshal.dumps(walk._index), None, None)})
        return walk

    def look(self, host: str) -> Answer:
        """(entity, KB domain matched, platform suffix, (service id, service domain), registrable
        domain) of a :data:`plain_name` that is not an address, as ``owner_of_name``,
        ``platform_of``, ``service_of_name`` and ``registrable_domain`` answer."""
        index = self._index
        n = host.count(".") + 1
        eid = matched = plat = None
        service: tuple[str, str] | None = None
        depth_psl = verdict = 0
        dot = host.rfind(".")
        depth = 1
        while True:
            suffix = host[dot + 1:]
            rec = index.get(suffix)
            if rec is None:
                break
            if rec:
                if rec[0] is not None:  # type: ignore[index]
                    eid, matched = rec[0], suffix  # type: ignore[index]
                if rec[1] and 2 <= depth < n:  # type: ignore[index]
                    plat = suffix
                if rec[2] is not None and depth >= 2:  # type: ignore[index]
                    service = (rec[2], suffix)  # type: ignore[index]
                if rec[3]:  # type: ignore[index]
                    depth_psl, verdict = depth, rec[3]  # type: ignore[index]
            if dot < 0:
                break
            depth += 1
            dot = host.rfind(".", 0, dot)
        if matched is not None and plat is None and matched in self._registrable and len(host) <= 253:
            return eid, matched, plat, service, matched
        last = host[host.rfind(".") + 1:]
        if not verdict or len(host) > 253 or last.isdigit() or last == "arpa":
            return eid, matched, plat, service, None
        count = depth_psl - 1 if verdict == _EXCEPTION else \
            depth_psl + 1 if verdict == _WILDCARD and depth_psl < n else depth_psl
        if not count or n < count + 1:
            return eid, matched, plat, service, None
        cut = len(host)
        for _ in range(count + 1):
            cut = host.rfind(".", 0, cut)
        return eid, matched, plat, service, host[cut + 1:]
