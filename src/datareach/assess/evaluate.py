"""Judging an audit against policies: where each ``violations[]`` entry is born.

:func:`assess` takes the enriched destinations (with ``owner`` and ``reach``) and the findings
of an audit, and each policy's rules (:mod:`.policy`), and returns the violations, each with
the reasoning path a reader can check step by step.

For each rule and destination:

1. the destination must match the rule's ``hosts``, ``apps`` and ``owners`` filters;
2. the data condition: findings on this destination (same app and host) whose data type or
   categories match the rule; ``data = "found"`` needs at least one, ``"not-found"`` none;
3. the grounds: for each of the rule's bases, the jurisdictions that reach the destination with
   their paths -- ``location`` and ``host`` from ``reach[]``; ``owner`` from ``reach[]``
   (``owner_test = "reach"``), from where the operator itself is established (``"operator"``), or
   from the ownership test (``"ownership"``: organised or headquartered in one of the rule's
   jurisdictions, or owned at least the threshold by such entities, directly or indirectly, in
   the aggregate, the way 28 CFR 202.211 and 15 U.S.C. 9901 count it);
4. the jurisdiction condition: grounds in the rule's jurisdictions (and lists), and not in its
   exceptions; a ``conditional`` jurisdiction turns the match into a warning with its note.

Allow entries of the same policy then mark matching violations as allowed, with their reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from datareach.assess.policy import Allow, Policy, PolicyError, Rule
from datareach.enrich.ownership import STATE_KINDS, OwnershipResolver, in_force
from datareach.kb.index import KnowledgeBase

if TYPE_CHECKING:
    import pyarrow as pa

    from datareach.schema import JsonCodec

__all__ = ["Ground", "RuleGrounds", "assess", "country_set", "jurisdiction_hits", "sort_violations", "verdict",
           "violation_order"]

#: control links that pass full ownership in the aggregate count when no share is recorded
#: (a subsidiary recorded without a share is a majority one; a VIE is contractual control
#: standing in for ownership; a state link is the state's own entity)
_FULL_WITHOUT_SHARE = frozenset({"equity", "voting", "vie", "state", "controlling"})


@dataclass(frozen=True)
class Ground:
    """One ground on which a jurisdiction reaches a destination: the basis and the path of steps."""

    jurisdiction: str | None
    basis: str
    path: tuple[str, ...]
    #: False for a location ground on an anycast / CDN edge server: ``jurisdiction`` is then only
    #: the geo database's guess, and the ground alone turns a deny into a warning (``note`` says why)
    determinable: bool = True
    note: str | None = None


class OwnershipTest:
    """Whether an entity is organised, headquartered, or owned in the aggregate at least a
    threshold by entities of some jurisdictions (memoised per question)."""

    def __init__(self, resolver: OwnershipResolver, max_depth: int = 12) -> None:
        self.kb = resolver.kb
        self.describe = resolver.describe
        self.max_depth = max_depth
        self._memo: dict[tuple[str, frozenset[str], float, bool, str], tuple[str, list[str]] | None] = {}

    def __call__(self, eid: str, countries: frozenset[str], threshold: float, us_persons_excluded: bool,
                 date: str, depth: int = 0) -> tuple[str, list[str]] | None:
        """(jurisdiction, path of steps from the entity) when it is covered, else None."""
        key = (eid, countries, threshold, us_persons_excluded, date)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None  # a cycle counts as not covered
        result = self._test(eid, countries, threshold, us_persons_excluded, date, depth)
        self._memo[key] = result
        return result

    def _test(self, eid: str, countries: frozenset[str], threshold: float, us_excluded: bool, date: str,
              depth: int) -> tuple[str, list[str]] | None:
        e = self.kb.entities[eid]
        name = self.describe(eid)
        organised = e["incorporated"] or e["hq"]
        if us_excluded and organised == "US":
            return None  # a US person (28 CFR 202.256)
        for field, ground in (("hq", "headquarters"), ("incorporated", "place of incorporation")):
            code = e[field]
            if code in countries:
                what = "the state itself" if e["kind"] in STATE_KINDS else ground
                return code, [name, f"{code}: {what} of {e['name']}"]
        if depth >= self.max_depth:
            return None
        total = 0.0
        held: list[tuple[float, str, list[str], str]] = []
        for edge in e["parents"]:
            if not in_force(edge.get("since"), edge.get("until"), date):
                continue
            share = edge.get("share")
            if share is None:
                share = 1.0 if edge["control"] in _FULL_WITHOUT_SHARE else 0.0
            if share <= 0:
                continue
            hit = self(edge["entity"], countries, threshold, us_excluded, date, depth + 1)
            if hit is not None:
                total += share
                held.append((share, edge["control"], hit[1], hit[0]))
        if total + 1e-9 >= threshold and held:
            held.sort(key=lambda h: -h[0])
            share, control, path, code = held[0]
            how = f"{share:.0%} {control}" if control in ("equity", "voting") else f"{control} control"
            if len(held) > 1:
                how += f"; {total:.0%} in all with {len(held) - 1} other covered holder(s)"
            return code, [name, f"held {how} by:", *path]
        return None


def country_set(kb: KnowledgeBase, codes: Sequence[str], lists: Sequence[str], where: str) -> frozenset[str]:
    """The countries named by ISO codes and knowledge-base country lists (``eea`` brings the
    Union's own code, EU); an unknown list is a :class:`PolicyError` naming ``where``."""
    out = set(codes)
    for lid in lists:
        li = kb.lists.get(lid)
        if li is None or li.get("kind") != "countries":
            known = ", ".join(sorted(k for k, v in kb.lists.items() if v.get("kind") == "countries"))
            raise PolicyError(f"{where}: no country list {lid!r} in the knowledge base (lists: {known})")
        out.update(li["countries"])
        if lid == "eea":
            out.add("EU")  # the Union's own jurisdiction code
    return frozenset(out)


def _match_any(value: str | None, patterns: Iterable[str]) -> bool:
    if value is None:
        return False
    v = value.casefold()
    return any(fnmatchcase(v, p.casefold()) for p in patterns)


def _owner_names(owner: dict[str, Any] | None) -> set[str]:
    if not owner:
        return set()
    names = {owner["entity"], owner["name"], owner["ultimate_parent"]["entity"], owner["ultimate_parent"]["name"]}
    for link in owner.get("chain", ()):
        names.update((link["entity"], link["name"]))
    return {n.casefold() for n in names if n}


class RuleGrounds:
    """A rule's grounds for destinations (:meth:`grounds`), with the rule's country sets and the
    ownership test memoised across destinations."""

    def __init__(self, kb: KnowledgeBase, resolver: OwnershipResolver, date: str) -> None:
        self.kb = kb
        self.resolver = resolver
        self.date = date
        self.ownership = OwnershipTest(resolver)
        self._sets: dict[tuple[str, ...], frozenset[str]] = {}

    def countries(self, codes: Sequence[str], lists: Sequence[str], where: str) -> frozenset[str]:
        key = (*codes, "|", *lists)
        hit = self._sets.get(key)
        if hit is None:
            hit = self._sets[key] = country_set(self.kb, codes, lists, where)
        return hit

    def grounds(self, rule: Rule, d: dict[str, Any], wanted: frozenset[str]) -> list[Ground]:
        date = (d.get("first_seen") or self.date)[:10]
        owner = d.get("owner")
        out: list[Ground] = []
        for basis in rule.bases:
            if basis == "owner" and rule.owner_test == "operator":
                if owner and owner["basis"] != "as":  # (a pre-2.2 document: the network's operator)
                    link = owner["chain"][0] if owner.get("chain") else {}
                    start = owner["evidence"][0] if owner.get("evidence") else d["host"]
                    for code, ground in ((owner.get("hq_country"), "headquarters"),
                                         (link.get("incorporated"), "place of incorporation")):
                        if code:
                            out.append(Ground(code, "owner", (start, f"{owner['name']} ({owner['hq_country']})",
                                                               f"{code}: {ground} of {owner['name']}")))
                continue
            if basis in ("owner", "host") and rule.owner_test == "ownership":
                entities: dict[str, str] = {}
                if basis == "owner":
                    if owner and owner["basis"] != "as":
                        entities[owner["entity"]] = " -> ".join(owner.get("evidence") or [d["host"]])
                else:  # who hosts it, as the ownership stage found (destinations[].hosting)
                    for h in d.get("hosting") or ():
                        if h.get("entity") is not None:
                            entities.setdefault(h["entity"], self.resolver.hosting_start(h))
                for eid, start in entities.items():
                    if eid not in self.kb.entities:
                        continue
                    hit = self.ownership(eid, wanted, rule.ownership_threshold, rule.us_persons_excluded, date)
                    if hit is not None:
                        out.append(Ground(hit[0], basis, (start, *hit[1])))
                continue
            for r in d.get("reach", ()):
                if r["basis"] != basis:
                    continue
                if r.get("determinable") is False:
                    out.append(Ground(_guessed_country(d, r), r["basis"], tuple(r["path"]), False, r.get("note")))
                else:
                    out.append(Ground(r["jurisdiction"], r["basis"], tuple(r["path"])))
        return out


def _guessed_country(d: dict[str, Any], r: dict[str, Any]) -> str | None:
    """The geo database's country for the server of an undeterminable location entry (its path
    starts with the server's address): what the rule is matched on, as a guess."""
    path = r.get("path") or []
    ip = path[0] if path else None
    for s in d.get("servers") or ():
        if isinstance(s, dict) and s.get("ip") == ip:
            c = s.get("country")
            return c if isinstance(c, str) and c else None
    return None


def _firm(rule: Rule, hits: Sequence[Ground]) -> bool:
    """Whether a ground other than an undeterminable location (and not a conditional
    jurisdiction) makes the rule match."""
    return any(g.determinable and g.jurisdiction not in rule.conditional for g in hits)


def _undeterminable_text(hits: Sequence[Ground]) -> str:
    """The reasoning's sentence on anycast / CDN edge servers among the grounds."""
    names: list[str] = []
    for g in hits:
        if not g.determinable and len(g.path) > 1:
            step = g.path[-1]
            what = step[step.find("(") + 1: step.rfind(")")] if "(" in step else step
            if what not in names:
                names.append(what)
    if not names:
        return ""
    guess = sorted({g.jurisdiction for g in hits if not g.determinable and g.jurisdiction})
    said = f" (the geo database says {', '.join(guess)}, a guess)" if guess else ""
    return (f" The server's location is not determinable from its address ({'; '.join(names)}){said}: "
            "the same address answers from many places, so where the data goes cannot be told from it.")


def jurisdiction_hits(rule: Rule, grounds: Iterable[Ground], wanted: frozenset[str], excluded: frozenset[str],
                      ) -> tuple[list[Ground], list[str], bool]:
    """The jurisdiction condition of a rule over a destination's grounds (step 4 of the module
    docstring): the grounds that meet it (each once, in order), the notes of the ``conditional``
    jurisdictions met, and whether only conditional ones were. ``wanted`` and ``excluded`` are
    the rule's jurisdictions and exceptions as country sets (:meth:`RuleGrounds.countries`). A
    rule without jurisdictions, exceptions or conditional ones keeps every ground."""
    jurisdictional = bool(wanted or excluded or rule.conditional)
    hits: list[Ground] = []
    notes: list[str] = []
    conditional_only = True
    for g in grounds:
        code = g.jurisdiction
        if jurisdictional:
            if code is None:
                continue
            if code in rule.conditional:
                if rule.conditional[code] not in notes:
                    notes.append(rule.conditional[code])
            elif (wanted and code not in wanted) or code in excluded:
                continue
            else:
                conditional_only = False
        else:
            conditional_only = False
        if g not in hits:
            hits.append(g)
    return hits, notes, conditional_only


def _data(rule: Rule, findings: Sequence[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    if not (rule.data_categories or rule.data_types):
        return list(findings)
    return [(i, f) for i, f in findings
            if f["data_type"] in rule.data_types
            or any(fnmatchcase(c, p) for c in f["categories"] for p in rule.data_categories)]


def _reasoning(rule: Rule, d: dict[str, Any], hits: list[Ground], found: list[tuple[int, dict[str, Any]]],
               notes: list[str]) -> str:
    owner = d.get("owner")
    host = d["host"]
    sender = d.get("app") or "The device"
    if found:
        what = f"{sender} sent {', '.join(sorted({f['data_type'] for _, f in found}))} to {host}"
    elif rule.data == "not-found":
        what = f"{sender} sent traffic to {host} in which no matching personal data was found"
    else:
        what = f"{sender} sent traffic to {host}"
    if owner:
        up = owner["ultimate_parent"]["name"]
        who = f"it is run by {owner['name']}" + (f", ultimately {up}" if up != owner["name"] else "")
        if owner["basis"] == "as":
            who += " (known only by its network)"
    else:
        hosts = list(dict.fromkeys(str(h.get("name") or h.get("platform")) for h in d.get("hosting") or ()))
        who = ("its owner is not known; it is hosted by " + ", ".join(hosts) if hosts
               else "its owner is not in the knowledge base")
    by_basis: dict[str, list[str]] = {}
    for g in hits:
        if g.jurisdiction:
            code = g.jurisdiction if g.determinable else f"{g.jurisdiction} (guessed)"
            by_basis.setdefault(g.basis, [])
            if code not in by_basis[g.basis]:
                by_basis[g.basis].append(code)
    words = {"owner": "through its owner", "host": "through its host network", "location": "by the server's location"}
    reach = "; ".join(f"{', '.join(codes)} {words[b]}" for b, codes in by_basis.items())
    text = f"{what}; {who}"
    text += "" if text.endswith(".") else "."
    if reach:
        text += f" Grounds: {reach}."
    if rule.explanation and not (hits and all(not g.determinable for g in hits)):
        text += f" {rule.explanation}"
    text += _undeterminable_text(hits)
    for n in notes:
        text += f" {n}"
    return text


def _allowed(allow: Sequence[Allow], policy: Policy, rule: Rule, d: dict[str, Any], names: set[str],
             jurisdictions: Sequence[str], date: str) -> tuple[dict[str, Any] | None, list[str]]:
    expired: list[str] = []
    for a in allow:
        if a.rules and not any(fnmatchcase(rule.id, r) or fnmatchcase(f"{policy.id}/{rule.id}", r) for r in a.rules):
            continue
        if a.hosts and not _match_any(d["host"], a.hosts):
            continue
        if a.apps and not _match_any(d.get("app"), a.apps):
            continue
        if a.owners and not any(fnmatchcase(n, o.casefold()) for n in names for o in a.owners):
            continue
        if a.jurisdictions and not set(jurisdictions) <= set(a.jurisdictions):
            continue
        if a.until is not None and a.until < date:
            expired.append(f"An allow entry ({a.reason}) expired on {a.until}.")
            continue
        return {"reason": a.reason, "until": a.until}, expired
    return None, expired


def assess(
    policies: Sequence[Policy],
    destinations: Sequence[dict[str, Any]],
    findings: Sequence[dict[str, Any]],
    kb: KnowledgeBase,
    resolver: OwnershipResolver,
    date: str,
) -> list[dict[str, Any]]:
    """The violations of ``policies`` by an audit's destinations and findings (sorted: deny,
    then warn, then allowed; each by destination)."""
    judge = RuleGrounds(kb, resolver, date)
    by_dest: dict[tuple[str | None, str], list[tuple[int, dict[str, Any]]]] = {}
    for i, f in enumerate(findings):
        by_dest.setdefault((f.get("app"), f["host"]), []).append((i, f))
    out: list[dict[str, Any]] = []
    owner_names = [_owner_names(d.get("owner")) for d in destinations]
    for policy in policies:
        for rule in policy.rules:
            where = f"policy {policy.id}, rule {rule.id}"
            wanted = judge.countries(rule.jurisdictions, rule.lists, where)
            excluded = judge.countries(rule.except_jurisdictions, rule.except_lists, where)
            jurisdictional = bool(wanted or excluded or rule.conditional)
            for di, d in enumerate(destinations):
                if rule.hosts and not _match_any(d["host"], rule.hosts):
                    continue
                if rule.apps and not _match_any(d.get("app"), rule.apps):
                    continue
                names = owner_names[di]
                if rule.owners and not any(fnmatchcase(n, o.casefold()) for n in names for o in rule.owners):
                    continue
                found = _data(rule, by_dest.get((d.get("app"), d["host"]), ()))
                if rule.data == "found" and not found:
                    continue
                if rule.data == "not-found" and found:
                    continue
                hits, notes, conditional_only = jurisdiction_hits(rule, judge.grounds(rule, d, wanted), wanted, excluded)
                if jurisdictional and not hits:
                    continue
                if not hits and rule.owners and d.get("owner"):
                    o = d["owner"]
                    conditional_only = False
                    hits.append(Ground(None, "owner", (d["host"], *[f"{c['name']} ({c['hq_country']})" for c in o["chain"]])))
                action = "warn" if conditional_only and notes else rule.action
                if action == "deny" and hits and not _firm(rule, hits):
                    action = "warn"  # only anycast / CDN edge servers' guessed countries: not determinable
                reasoning = _reasoning(rule, d, hits, found, [*notes])
                # (an undeterminable location names no jurisdiction: its country is a guess)
                matched = list(dict.fromkeys(g.jurisdiction for g in hits if g.jurisdiction))
                hits = [g if g.determinable else Ground(None, g.basis, g.path, False, g.note) for g in hits]
                jurisdictions = list(dict.fromkeys(g.jurisdiction for g in hits if g.jurisdiction))
                allowed, expired = _allowed(policy.allow, policy, rule, d, names, matched,
                                            (d.get("first_seen") or date)[:10])
                out.append({
                    "policy": policy.id,
                    "rule": rule.id,
                    "action": action,
                    "title": rule.title,
                    "citation": rule.citation,
                    "destination": di,
                    "host": d["host"],
                    "app": d.get("app"),
                    "jurisdictions": jurisdictions,
                    "bases": list(dict.fromkeys(g.basis for g in hits)),
                    "paths": [{"jurisdiction": g.jurisdiction, "basis": g.basis, "path": list(g.path)} for g in hits],
                    "data_types": sorted({f["data_type"] for _, f in found}) if rule.data != "not-found" else [],
                    "data_categories": sorted({c for _, f in found for c in f["categories"]
                                               if not rule.data_categories
                                               or any(fnmatchcase(c, p) for p in rule.data_categories)})
                    if rule.data != "not-found" else [],
                    "findings": [i for i, _ in found] if rule.data != "not-found" else [],
                    "reasoning": reasoning + "".join(f" {n}" for n in expired),
                    "mechanism": rule.mechanism,
                    "sources": kb.cite(rule.sources),
                    "allowed": allowed,
                })
    out.sort(key=lambda v: violation_order(v, v["destination"]))
    return out


_RANK = {"deny": 0, "warn": 1}


def violation_order(v: dict[str, Any], place: int) -> tuple[bool, int, int, str, str]:
    """Where a violation goes among an audit's: deny, then warn, then allowed; each by its
    destination's ``place`` in the document, then policy and rule."""
    return (v["allowed"] is not None, _RANK[v["action"]], place, v["policy"], v["rule"])


def sort_violations(violations: list[dict[str, Any]]) -> None:
    """Put violations judged destinations-chunk by chunk (:func:`judge` on each, with their
    destinations' ids) in the order :func:`assess` gives them for all destinations at once."""
    violations.sort(key=lambda v: violation_order(v, int(v["destination"][1:])))


def verdict(policies: Sequence[object], violations: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``summary.violations`` counts and ``summary.verdict``."""
    deny = sum(1 for v in violations if v["allowed"] is None and v["action"] == "deny")
    warn = sum(1 for v in violations if v["allowed"] is None and v["action"] == "warn")
    allowed = sum(1 for v in violations if v["allowed"] is not None)
    result = None if not policies else "fail" if deny else "warn" if warn else "pass"
    return {"violations": {"deny": deny, "warn": warn, "allowed": allowed}, "verdict": result}


def judge(
    policies: Sequence[Policy],
    destinations: pa.Table,
    findings: pa.Table,
    kb: KnowledgeBase,
    resolver: OwnershipResolver,
    date: str,
    codec: JsonCodec | None = None,
) -> pa.Table:
    """The assess stage over tables: a table of :class:`~datareach.schema.Violation` from tables
    of :class:`~datareach.schema.Destination` and :class:`~datareach.schema.Finding` (see
    :func:`assess`). Violations name their destination and findings by id."""
    from datareach.schema import Destination, Finding, Violation, table_from_dicts, table_to_dicts

    if not policies:
        return table_from_dicts(Violation, [])
    from datareach.enrich.stages import document_order

    rows = table_to_dicts(Destination, destinations, json_only=False, codec=codec)
    dests = [rows[i] for i in document_order(destinations)]  # violations are sorted by destination
    found = table_to_dicts(Finding, findings, json_only=False)
    out = assess(policies, dests, found, kb, resolver, date)
    for v in out:
        v["destination"] = dests[v["destination"]]["id"]
        v["findings"] = [found[i]["id"] for i in v["findings"]]
    return table_from_dicts(Violation, out)
