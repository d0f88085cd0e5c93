"""Bulk-data counting for the ``us-doj-bulk-data`` policy over an organisation's logs.

28 CFR 202.205 (the final rule of 90 FR 1636, Jan. 8, 2025; the regulation's text from 90 FR
1706) makes sensitive personal data *bulk* when it meets the thresholds below "at any point in the
preceding 12 months, whether through a single covered data transaction or aggregated across
covered data transactions involving the same U.S. person and the same foreign person or covered
person". Every figure is "more than": 1,000 devices is not bulk, 1,001 is.

====================================================  =========  =============  ==============
data (datareach category)                             more than  unit           28 CFR
====================================================  =========  =============  ==============
human 'omic data (``us-doj:human-omic``)              1,000      US persons     202.205(a)
human genomic data (applied to ``us-doj:human-omic``)   100      US persons     202.205(a)
biometric identifiers (``us-doj:biometric``)          1,000      US persons     202.205(b)
precise geolocation (``us-doj:precise-geolocation``)  1,000      US **devices** 202.205(c)
personal health data (``us-doj:health``)              10,000     US persons     202.205(d)
personal financial data (``us-doj:financial``)        10,000     US persons     202.205(e)
covered personal identifiers                          100,000    US persons     202.205(f)
(``us-doj:covered-personal-identifiers``)
combined data (``us-doj:combined``)                   the lowest applicable     202.205(g)
government-related data (``us-doj:government-related``)  none: any volume       202.222
====================================================  =========  =============  ==============

Source: :data:`ECFR_202_205` (checked against the eCFR text and the final rule). The table is
:data:`THRESHOLDS`; :data:`CATEGORY_THRESHOLDS` maps datareach's category labels
(:mod:`datareach.detect.categories`) to it.

Choices, each stated in the verdicts' ``reason``:

* **'omic data.** The detectors do not tell human genomic data from the other 'omic data
  (epigenomic, proteomic, transcriptomic): most of the data types they map to
  ``us-doj:human-omic`` (``genetic``, ``genome``, ``dna``, ``genotype``) are genomic, so
  ``us-doj:human-omic`` is judged against the genomic threshold, more than 100 US persons (the
  lower one; 1,000 applies to the other 'omic data).
* **Government-related data** (202.222: precise geolocation in the areas of the Government-Related
  Location Data List, or data marketed as linked to US Government personnel) has no threshold: any
  volume counts, so its threshold here is 0 ("more than 0"). No detector gives the label
  :data:`GOVERNMENT_RELATED` today (categories.py has none: whether a location is on the list or
  how data is marketed is not in the traffic); it is mapped for when one does.
* **Combined data** (202.205(g)): a set holding more than one of the categories (a)-(f), or a
  listed identifier linked to one of (a)-(e), is bulk when *any individual data type* in it
  meets the threshold of the category with the *lowest* number. Here all the data a
  counterparty receives is taken as one set (the conservative reading: an SDK's requests carry
  the device's identifiers with whatever else they send, so the categories are linked). So a
  counterparty with two or more of the categories (a)-(f) gets, besides one row per category
  judged against the category's own threshold, a row ``us-doj:combined`` whose threshold is the
  lowest of its categories' thresholds and whose ``identified`` is the largest count of any one
  of its categories (the count of that "individual data type"; the count of distinct persons in
  the union is at least that). Its ``unit`` is that of the lowest threshold's category: the rule
  compares a count of persons or devices with a number of persons or devices. Each category row
  of such a counterparty says so in its ``reason``. Government-related data is not part of it
  (it has no threshold).

The verdicts (:func:`judge`), per counterparty and category, over the twelve months ending on
the last day of the logs (:func:`window`):

* ``above``: more persons or devices were *identified* in readable payloads (distinct
  advertising or device IDs for device categories; distinct e-mails, hashed e-mails or phone
  numbers for person categories) than the threshold. What was read can only grow with more
  reading, so nothing else is needed.
* ``below``: the identified count is not above the threshold, *and* the logs cover the whole
  twelve months, *and* every connection to the counterparty was readable, *and* the screening
  figure (distinct client devices in the metadata) is not above the threshold either.
* ``cannot tell``: otherwise; the ``reason`` names each condition not met.

A covered counterparty without any readable category (every connection encrypted, or nothing
sensitive found in what was read) gets one row of category :data:`UNKNOWN`, ``cannot tell``,
against the lowest threshold of (a)-(f) (what it received is not known, so it may be any).

``bounds`` (:func:`bounds`) states what the method can and cannot count. This module is
engine-neutral plain Python over small tables of counts; the engines compute the counts in SQL
(over :func:`window` only), and :func:`covered_counterparties` tells them which destinations'
owners are covered persons.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import date as Date
from typing import Any

from datareach.assess.evaluate import RuleGrounds, jurisdiction_hits
from datareach.assess.policy import Policy, PolicyError, load_policy
from datareach.detect.categories import (
    DOJ_BIOMETRIC,
    DOJ_FINANCIAL,
    DOJ_HEALTH,
    DOJ_IDENTIFIERS,
    DOJ_OMIC,
    DOJ_PRECISE_GEOLOCATION,
)
from datareach.enrich.ownership import OwnershipResolver
from datareach.kb import KnowledgeBase, knowledge_base

__all__ = [
    "BULK_FIELDS",
    "CATEGORY_THRESHOLDS",
    "COMBINED",
    "ECFR_202_205",
    "ECFR_202_222",
    "GOVERNMENT_RELATED",
    "THRESHOLDS",
    "UNKNOWN",
    "Coverage",
    "Threshold",
    "bounds",
    "coverage",
    "covered_counterparties",
    "judge",
    "unit_of",
    "window",
]

ECFR_202_205 = "https://www.ecfr.gov/current/title-28/chapter-I/part-202/subpart-B/section-202.205"
ECFR_202_222 = "https://www.ecfr.gov/current/title-28/chapter-I/part-202/subpart-B/section-202.222"

#: The category of a row for data that is itself government-related (no detector gives it yet).
GOVERNMENT_RELATED = "us-doj:government-related"
#: The category of a counterparty's combined-data row (202.205(g)).
COMBINED = "us-doj:combined"
#: The category of a counterparty's row when no category could be read.
UNKNOWN = "unknown (not readable)"

#: The fields of a ``BulkCount`` record, in order: the keys of :func:`judge`'s rows.
BULK_FIELDS = ("counterparty_id", "counterparty", "parent", "category", "unit", "threshold", "identified",
               "identifier_kinds", "screening", "period_days", "readable_share", "verdict", "reason", "bounds")


@dataclass(frozen=True)
class Threshold:
    """One threshold of 28 CFR 202.205: bulk when *more than* ``more_than`` US ``unit``."""

    data: str
    more_than: int
    unit: str  # 'persons' or 'devices'
    citation: str
    source: str = ECFR_202_205

    def describe(self) -> str:
        if self.more_than == 0:
            return f"more than 0 US {self.unit} for {self.data} ({self.citation}: no threshold, any volume counts)"
        return f"more than {self.more_than:,} US {self.unit} for {self.data} ({self.citation})"


#: The thresholds of 28 CFR 202.205 (and government-related data, 202.222), by name.
THRESHOLDS: dict[str, Threshold] = {
    "human-omic": Threshold("human 'omic data", 1_000, "persons", "28 CFR 202.205(a)"),
    "human-genomic": Threshold("human genomic data", 100, "persons", "28 CFR 202.205(a)"),
    "biometric": Threshold("biometric identifiers", 1_000, "persons", "28 CFR 202.205(b)"),
    "precise-geolocation": Threshold("precise geolocation data", 1_000, "devices", "28 CFR 202.205(c)"),
    "health": Threshold("personal health data", 10_000, "persons", "28 CFR 202.205(d)"),
    "financial": Threshold("personal financial data", 10_000, "persons", "28 CFR 202.205(e)"),
    "covered-personal-identifiers": Threshold("covered personal identifiers", 100_000, "persons",
                                              "28 CFR 202.205(f)"),
    "government-related": Threshold("government-related data", 0, "persons", "28 CFR 202.222", ECFR_202_222),
}

#: datareach's category labels -> their threshold (``us-doj:human-omic``: the genomic one, see above).
CATEGORY_THRESHOLDS: dict[str, Threshold] = {
    DOJ_OMIC: THRESHOLDS["human-genomic"],
    DOJ_BIOMETRIC: THRESHOLDS["biometric"],
    DOJ_PRECISE_GEOLOCATION: THRESHOLDS["precise-geolocation"],
    DOJ_HEALTH: THRESHOLDS["health"],
    DOJ_FINANCIAL: THRESHOLDS["financial"],
    DOJ_IDENTIFIERS: THRESHOLDS["covered-personal-identifiers"],
    GOVERNMENT_RELATED: THRESHOLDS["government-related"],
}

#: The categories (a)-(f) of 202.205 that combine (202.205(g)); the order of a counterparty's rows.
_COMBINING = (DOJ_OMIC, DOJ_BIOMETRIC, DOJ_PRECISE_GEOLOCATION, DOJ_HEALTH, DOJ_FINANCIAL, DOJ_IDENTIFIERS)
_ORDER = {c: i for i, c in enumerate((*_COMBINING, GOVERNMENT_RELATED, COMBINED, UNKNOWN))}
_COMBINED_CITATION = "28 CFR 202.205(g)"
#: The lowest threshold of (a)-(f): what a counterparty whose data is not known is held against.
_LOWEST = min((CATEGORY_THRESHOLDS[c] for c in _COMBINING), key=lambda t: t.more_than)


def unit_of(category: str) -> str | None:
    """What a category's threshold counts: ``devices`` (precise geolocation) or ``persons``;
    None for a label without a threshold (not ``us-doj:``, or unknown)."""
    t = CATEGORY_THRESHOLDS.get(category)
    return t.unit if t is not None else None


# -- the period -------------------------------------------------------------------------------

def _instant(value: Any) -> datetime | None:
    """A time given as a datetime, epoch seconds or ISO 8601 text (``Z`` or an offset; naive = UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, Date):
        t = datetime(value.year, value.month, value.day)
    else:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _year_before(day: Date) -> Date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


@dataclass(frozen=True)
class Coverage:
    """How much of the twelve months ending on the logs' last day (UTC) the logs cover."""

    end: Date | None  # the last day of the logs (and of the window)
    window_days: int  # the calendar days of the twelve months: 365, or 366 across a 29 February
    covered_days: int  # of those, the days from the logs' first day to their last

    @property
    def whole(self) -> bool:
        return self.covered_days >= self.window_days


def coverage(period: Mapping[str, Any]) -> Coverage:
    """The coverage of a period ``{"first", "last", "days"}`` (times as ISO text, epoch seconds
    or datetimes). The twelve months are the calendar days (UTC) ending on the last record's
    day: from the day after the same date a year before (365 or 366 days). The logs cover the
    days from their first record's day to their last's; gaps inside are not seen. Without
    ``first`` and ``last``, ``days`` is taken as the days covered out of 365."""
    first, last = _instant(period.get("first")), _instant(period.get("last"))
    if last is None:
        days = period.get("days") or 0
        return Coverage(None, 365, max(0, min(365, math.floor(float(days)))))
    end = last.astimezone(UTC).date()
    start = _year_before(end) + timedelta(days=1)
    span = (end - start).days + 1
    if first is None:
        covered = min(span, max(0, math.floor(float(period.get("days") or 0))))
    else:
        covered = (end - max(first.astimezone(UTC).date(), start)).days + 1
    return Coverage(end, span, max(0, min(span, covered)))


def window(period: Mapping[str, Any]) -> tuple[float, float]:
    """The twelve months the counts are taken over, as epoch seconds ``(start, end)``: a record
    counts when ``start <= ts <= end`` (``end`` is the logs' last record; ``start`` midnight UTC
    of the window's first day, see :func:`coverage`). The engines count only this window."""
    last = _instant(period.get("last"))
    if last is None:
        raise ValueError("the period has no last record ('last'): there is no window to count over")
    end = last.astimezone(UTC).date()
    start = _year_before(end) + timedelta(days=1)
    return datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp(), last.timestamp()


# -- covered counterparties -------------------------------------------------------------------

def covered_counterparties(
    destinations: Iterable[Mapping[str, Any]],
    policy: Policy | str | None = "us-doj-bulk-data",
    *,
    rule_id: str = "covered-person",
    date: str | None = None,
    kb: KnowledgeBase | None = None,
    resolver: OwnershipResolver | None = None,
) -> dict[str, dict[str, Any]]:
    """The destinations' owners that are covered persons under the policy's ``rule_id`` rule,
    by owner entity id.

    ``destinations`` are the JSON document's destination dicts (``host``, ``owner``, ``reach``,
    and ``first_seen``: ownership is taken at that date, else at ``date``, else today), or
    :func:`datareach.explain` entries. The rule's grounds and jurisdiction condition are judged
    exactly as :func:`datareach.assess.evaluate.assess` judges them (for ``covered-person``:
    the owner basis, the ownership test against the countries of concern at 50% in the
    aggregate, US persons never covered); its data condition, filters and the policy's allow
    entries are not applied (the bulk counts are the data, and an allowed restricted
    transaction still has its thresholds).

    ``policy``: a :class:`Policy`, a preset name or policy file, or None for the
    ``us-doj-bulk-data`` preset (the counts are for that rule even when the audit was not judged
    against it).

    Each value: ``counterparty_id``, ``counterparty`` (the operator's name), ``parent_id`` and
    ``parent`` (its ultimate parent), ``jurisdictions``, ``paths`` (per ground: ``jurisdiction``,
    ``basis``, ``path``, as in violations), ``hosts`` and ``destinations`` (ids, where the rows
    have them), in the order first met."""
    pol = load_policy(policy or "us-doj-bulk-data") if not isinstance(policy, Policy) else policy
    rule = next((r for r in pol.rules if r.id == rule_id), None)
    if rule is None:
        raise PolicyError(f"policy {pol.id} has no rule {rule_id!r}")
    kb = kb or (resolver.kb if resolver is not None else knowledge_base())
    resolver = resolver or OwnershipResolver(kb)
    grounds = RuleGrounds(kb, resolver, date or datetime.now(UTC).date().isoformat())
    where = f"policy {pol.id}, rule {rule.id}"
    wanted = grounds.countries(rule.jurisdictions, rule.lists, where)
    excluded = grounds.countries(rule.except_jurisdictions, rule.except_lists, where)
    out: dict[str, dict[str, Any]] = {}
    for d in destinations:
        owner = d.get("owner")
        if not owner:
            continue
        hits, _, _ = jurisdiction_hits(rule, grounds.grounds(rule, dict(d), wanted), wanted, excluded)
        if not hits:
            continue
        eid = owner["entity"]
        entry = out.get(eid)
        if entry is None:
            up = owner.get("ultimate_parent") or {}
            entry = out[eid] = {"counterparty_id": eid, "counterparty": owner["name"],
                                "parent_id": up.get("entity"), "parent": up.get("name"),
                                "jurisdictions": [], "paths": [], "hosts": [], "destinations": []}
        for g in hits:
            if g.jurisdiction and g.jurisdiction not in entry["jurisdictions"]:
                entry["jurisdictions"].append(g.jurisdiction)
            path = {"jurisdiction": g.jurisdiction, "basis": g.basis, "path": list(g.path)}
            if path not in entry["paths"]:
                entry["paths"].append(path)
        if d["host"] not in entry["hosts"]:
            entry["hosts"].append(d["host"])
        if d.get("id") is not None:
            entry["destinations"].append(d["id"])
    return out


# -- the verdicts -----------------------------------------------------------------------------

def bounds(cov: Coverage) -> str:
    """The bounds of the method, in plain words (the ``bounds`` of every row)."""
    end = f"ending {cov.end.isoformat()}" if cov.end else "ending on the last day of the logs"
    return (
        f"Counted over the twelve months {end} (28 CFR 202.205: at any point in the preceding 12 "
        "months): only data sent within that window counts; a longer history could show an earlier "
        "twelve months above a threshold. 'identified' counts the distinct identifiers read in "
        "payloads: advertising and device IDs for devices, e-mail addresses, hashed e-mails and phone "
        "numbers for persons. Advertising IDs can overcount (a user resets the ID: one device, several "
        "IDs) and undercount (with limit ad tracking the ID is zeroed, and all-zero IDs count as none); "
        "hashed e-mails count persons only where the same hash is used (the same function over the "
        "same normalised address). Only readable payloads are counted: encrypted connections may carry "
        "more. 'screening' counts the distinct client IPs and MACs in the connection metadata: a "
        "screening figure, not a count of devices (NAT hides many devices behind one address; address "
        "churn and MAC randomisation make one device several). The logs do not say whether a person or "
        "device is a US one: each one counted is taken to be."
    )


def _share(fraction: float) -> str:
    pct = fraction * 100
    if 0 < pct < 1:
        return "less than 1%"
    if 99 < pct < 100:
        return "more than 99%"
    return f"{round(pct)}%"


def _counted(row: Mapping[str, Any], unit: str) -> str:
    kinds = list(row["identifier_kinds"])
    how = f" (by {', '.join(kinds)})" if kinds else ""
    return f"{row['identified']:,} distinct {unit} identified{how} in readable payloads"


def _unmet(row: Mapping[str, Any], t: Threshold, cov: Coverage, share: float) -> list[str]:
    unmet: list[str] = []
    if not cov.whole:
        end = f" ending {cov.end.isoformat()}" if cov.end else ""
        unmet.append(f"the logs cover {cov.covered_days} of the {cov.window_days} days of the twelve months{end}")
    if share < 1:
        unmet.append(f"{_share(1 - share)} of the connections were encrypted and not read")
    if row["screening"] > t.more_than:
        unmet.append(f"the metadata shows {row['screening']:,} client devices, above the threshold: "
                     "they may all have sent it")
    return unmet


def _verdict(row: Mapping[str, Any], t: Threshold, cov: Coverage, share: float, what: str,
             ) -> tuple[str, str]:
    """(verdict, reason) of one row against threshold ``t``; ``what`` describes the count."""
    if row["identified"] > t.more_than:
        return "above", f"{what}: {t.describe()}, so above it."
    unmet = _unmet(row, t, cov, share)
    if not unmet:
        return "below", (f"{what}: not {t.describe()}; the logs cover all {cov.window_days} days, every "
                         f"connection was read, and the metadata shows {row['screening']:,} client devices, "
                         "not above the threshold either.")
    return "cannot tell", f"{what}: not {t.describe()} so far, but " + "; ".join(unmet) + "."


def _row(base: Mapping[str, Any], category: str, t: Threshold, identified: int, kinds: list[str],
         screening: int, share: float, cov: Coverage, verdict: str, reason: str) -> dict[str, Any]:
    return {"counterparty_id": base["counterparty_id"], "counterparty": base["counterparty"],
            "parent": base.get("parent"), "category": category, "unit": t.unit, "threshold": t.more_than,
            "identified": identified, "identifier_kinds": kinds, "screening": screening,
            "period_days": cov.covered_days, "readable_share": share, "verdict": verdict, "reason": reason,
            "bounds": bounds(cov)}


def _clean(r: Mapping[str, Any]) -> dict[str, Any]:
    share = r.get("readable_share")
    share = 0.0 if share is None else float(share)
    if not 0 <= share <= 1:
        raise ValueError(f"readable_share must be between 0 and 1, not {share!r} ({r.get('counterparty_id')})")
    identified = int(r.get("identified") or 0)
    screening = int(r.get("screening") or 0)
    if identified < 0 or screening < 0:
        raise ValueError(f"negative count in {dict(r)!r}")
    return {**r, "identified": identified, "screening": screening, "readable_share": share,
            "identifier_kinds": sorted(set(r.get("identifier_kinds") or ())), "category": r.get("category") or None}


def judge(counts: Iterable[Mapping[str, Any]], period: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The bulk verdicts (rows with the keys of :data:`BULK_FIELDS`) from counts per
    (counterparty, category) over :func:`window`.

    Each input row: ``counterparty_id``, ``counterparty`` (name), ``parent`` (the ultimate
    parent's name, or None), ``category`` (a ``us-doj:`` label; None for a counterparty's
    metadata row when no category was read), ``identified`` (distinct advertising/device IDs for
    device categories, distinct e-mails, hashed e-mails or phone numbers for person categories,
    from readable payloads), ``identifier_kinds`` (the kinds counted, e.g. ``advertising_id``),
    ``screening`` (distinct client devices in the metadata: IPs or MACs), ``readable_share``
    (the share of the counterparty's connections whose payload could be read, 0-1).
    ``period``: ``{"first", "last", "days"}`` of the logs (see :func:`coverage`).

    Rows with a category outside ``us-doj:`` (GDPR labels, ``sent_in_cleartext``) count as the
    counterparty's metadata rows;
    an unknown ``us-doj:`` label, or a (counterparty, category) given twice, is a ValueError.
    Rows come out by counterparty id, then in the order of 202.205's paragraphs, then the
    combined-data row, then the metadata-only row (see the module docstring for each)."""
    cov = coverage(period)
    by_party: dict[str, list[dict[str, Any]]] = {}
    for raw in counts:
        r = _clean(raw)
        cat = r["category"]
        if cat is not None and not cat.startswith("us-doj:"):
            r["category"] = cat = None  # metadata of the counterparty only
        if cat is not None and cat not in CATEGORY_THRESHOLDS:
            raise ValueError(f"no bulk threshold for the category {cat!r} (known: {', '.join(CATEGORY_THRESHOLDS)})")
        rows = by_party.setdefault(r["counterparty_id"], [])
        if cat is not None and any(x["category"] == cat for x in rows):
            raise ValueError(f"two rows for {r['counterparty_id']} and {cat}")
        rows.append(r)
    out: list[dict[str, Any]] = []
    for pid in sorted(by_party):
        rows = by_party[pid]
        cats = sorted((r for r in rows if r["category"] is not None), key=lambda r: _ORDER[r["category"]])
        screening = max(r["screening"] for r in rows)
        share = min(r["readable_share"] for r in rows)
        if not cats:
            out.append(_metadata_only(rows[0], screening, share, cov))
            continue
        combining = [r for r in cats if r["category"] in _COMBINING]
        lowest = min((CATEGORY_THRESHOLDS[r["category"]] for r in combining), key=lambda t: t.more_than,
                     default=None)
        for r in cats:
            t = CATEGORY_THRESHOLDS[r["category"]]
            verdict, reason = _verdict(r, t, cov, r["readable_share"], _counted(r, t.unit))
            if len(combining) > 1 and r in combining and lowest is not None:
                others = ", ".join(x["category"] for x in combining if x is not r)
                reason += (f" This counterparty also receives {others}: as combined data ({_COMBINED_CITATION}) "
                           f"each data type counts against the lowest applicable threshold, more than "
                           f"{lowest.more_than:,} US {lowest.unit} ({lowest.data}); see its {COMBINED} row.")
            out.append(_row(r, r["category"], t, r["identified"], r["identifier_kinds"], r["screening"],
                            r["readable_share"], cov, verdict, reason))
        if len(combining) > 1 and lowest is not None:
            out.append(_combined(combining, lowest, cov))
    return out


def _combined(rows: list[dict[str, Any]], lowest: Threshold, cov: Coverage) -> dict[str, Any]:
    top = max(rows, key=lambda r: (r["identified"], -_ORDER[r["category"]]))
    t = Threshold("combined data", lowest.more_than, lowest.unit, _COMBINED_CITATION)
    unit = CATEGORY_THRESHOLDS[top["category"]].unit
    merged = {"identified": top["identified"], "screening": max(r["screening"] for r in rows),
              "identifier_kinds": sorted({k for r in rows for k in r["identifier_kinds"]})}
    share = min(r["readable_share"] for r in rows)
    what = (f"Combined data: {', '.join(r['category'] for r in rows)} go to the same counterparty; the largest "
            f"count of one data type is {top['category']}, {top['identified']:,} distinct {unit} identified in "
            f"readable payloads, held against the lowest applicable threshold, that of {lowest.data} "
            f"({lowest.citation})")
    verdict, reason = _verdict(merged, t, cov, share, what)
    return _row(top, COMBINED, t, top["identified"], merged["identifier_kinds"], merged["screening"], share, cov,
                verdict, reason)


def _metadata_only(r: Mapping[str, Any], screening: int, share: float, cov: Coverage) -> dict[str, Any]:
    t = _LOWEST
    parts: list[str] = []
    if share < 1:
        parts.append(f"{_share(1 - share)} of the connections were encrypted and not read, so what they "
                     "carried is not known")
    if share > 0:
        found = "every connection was read" if share == 1 else f"the {_share(share)} that could be read"
        parts.append(f"{found} carried no sensitive personal data the detectors know")
    if not cov.whole:
        end = f" ending {cov.end.isoformat()}" if cov.end else ""
        parts.append(f"the logs cover {cov.covered_days} of the {cov.window_days} days of the twelve months{end}")
    above = screening > t.more_than
    parts.append(f"the metadata shows {screening:,} client devices, "
                 + ("above" if above else "not above")
                 + f" the lowest threshold of the rule (more than {t.more_than:,} US {t.unit}, {t.data}, "
                 f"{t.citation})" + (": they may all have sent such data" if above else ""))
    reason = (f"No category of sensitive personal data could be counted for {r['counterparty']}: "
              + "; ".join(parts) + ".")
    return _row(r, UNKNOWN, t, 0, [], screening, share, cov, "cannot tell", reason)
