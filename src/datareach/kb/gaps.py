"""Modelling gaps in the knowledge base: warnings for a reviewer, not load errors.

:func:`read_kb` (:mod:`.load`) rejects files that are malformed or inconsistent. A file can be
well-formed and still model a company wrongly; :func:`find_gaps` looks for four such gaps:

``note-controller``
    an entity's ``notes`` (or the ``note`` of one of its parent links) name a controller or
    parent ("controlled by X", "subsidiary of X", "owned by X", "X holds", "acquired by X",
    "majority owned by X", ...) where X is the name or an alias of another KB entity, and X is
    not in the entity's chain of parent links (nor is the entity's parent in X's chain);
``controller-not-in-kb``
    the notes of an entity with no parent link put a name that is not a KB entity in a
    controller's place ("controlled by Prosus"): the walk stops at the entity;
``voting-as-equity``
    an ``equity`` or ``voting`` parent link whose share is below the control threshold while
    the record's text says the parent has a majority of the votes (a percentage of 50 or more
    near "vot...", "majority of (the) votes", "voting control"): the walk stops there;
``no-domains``
    a company with no domains that is no entity's parent and operates no AS (a holding that
    is some entity's parent is there for the chain; a network operator is found by its AS);
``dataset-owner``
    a domain that a shipped (or given) dataset gives to a company of another group than the
    owner the KB gives it: reported for review, never resolved here.

``datareach kb check`` prints them as warnings (``--strict`` fails on them). Gaps that a
reviewer has accepted are listed, each with a reason, in ``gaps-allow.toml`` beside the KB
files (:func:`load_allow`); an allow-list entry that no longer matches a gap is reported too,
so the list does not rot.
"""

from __future__ import annotations

import gzip
import json
import re
import tomllib
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datareach.kb.load import KBError, RawKB

__all__ = [
    "ALLOW_FILE",
    "CHECKS",
    "DatasetOwners",
    "Gap",
    "find_gaps",
    "load_allow",
    "load_dataset_file",
    "load_mappings",
    "mapping_keys",
    "shipped_datasets",
]

CHECKS = ("note-controller", "controller-not-in-kb", "voting-as-equity", "no-domains", "dataset-owner")
ALLOW_FILE = "gaps-allow.toml"

#: parent kinds that control at any share (as in the ownership walk)
_CONTROL_ANY_SHARE = frozenset({"vie", "state", "management", "controlling"})
_NOT_COMPANIES = frozenset({"state", "state-body", "fund", "consortium", "cooperative", "person-group"})

#: words before a name that make it the controller or parent ("controlled by X")
_BEFORE = re.compile(
    r"(?:controlled|owned|held|acquired|bought|purchased|taken over|taken private)\s+(?:\w+\s+){0,2}?by"
    r"|(?:subsidiary|unit|arm|division|affiliate|member|part|brand|business)\s+of"
    r"|merged\s+into|sold\s+to|parent\s+(?:company\s+)?is|controller\s+is|controlling\s+shareholder\s+is"
    r"|majority[- ](?:owned|held|controlled)(?:\s+by)?",
    re.IGNORECASE,
)
#: words after a name that make it the controller ("X holds", "X controls")
_AFTER = re.compile(
    r"(?:holds|owns|controls|acquired|bought|took\s+(?:over|control)|has\s+held|has\s+owned|"
    r"became\s+(?:its\s+|the\s+)?(?:majority\s+|controlling\s+)?(?:owner|investor|shareholder)|is\s+the\s+(?:majority|controlling)\s+(?:owner|shareholder)|"
    r"took\s+(?:a\s+)?(?:majority|\d+(?:\.\d+)?\s*%))\b",
    re.IGNORECASE,
)
#: a holding that does not control (or no longer does): these words near the name and the verb
_NOT_CONTROL = re.compile(r"\b(?:minority|small|former(?:ly)?|once|previously|earlier|no\s+longer|not|never|until|"
                          r"stake\s+in)\b",
                          re.IGNORECASE)
#: text that says a parent has a majority of the votes
_VOTES = (
    re.compile(r"(\d{2,3}(?:\.\d+)?)\s*(?:%|per\s*cent|percent)[^.;%]{0,60}?\bvot", re.IGNORECASE),
    re.compile(r"\bvot\w*[^.;]{0,60}?(\d{2,3}(?:\.\d+)?)\s*(?:%|per\s*cent|percent)", re.IGNORECASE),
    re.compile(r"majority\s+of\s+(?:the\s+)?(?:\w+\s+)?(?:votes|voting)|voting\s+control|controls?\s+the\s+votes",
               re.IGNORECASE),
)
_LEGAL_TAIL = re.compile(
    r"(?:[,\s]+(?:inc|incorporated|ltd|limited|llc|corp|corporation|co|company|gmbh|ag|s\.?a|plc|pte|pty|"
    r"n\.?v|b\.?v|ab|asa|oy|spa|s\.?p\.?a|holding|holdings|group|k\.?k)\.?)+$",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.;!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True)
class Gap:
    """One modelling gap: which check, which entity, what it concerns (another entity id, a
    name, a domain) and where the record is."""

    check: str
    entity: str
    target: str
    message: str
    file: str = ""
    line: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.check, self.entity, self.target)

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "entity": self.entity, "target": self.target, "message": self.message,
                "file": self.file, "line": self.line}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file else ""
        return f"{where}{self.check}: {self.message}"


# --- the graph -------------------------------------------------------------------------------


def _parents(raw: RawKB, eid: str) -> list[dict[str, Any]]:
    rec = raw.entities.get(eid)
    return list(rec.get("parent", [])) if rec else []


def _ancestors(raw: RawKB, eid: str) -> set[str]:
    """Every entity above ``eid`` through any parent link (any kind, share or date)."""
    out: set[str] = set()
    stack = [p["entity"] for p in _parents(raw, eid)]
    while stack:
        nxt = stack.pop()
        if nxt in out or nxt == eid:
            continue
        out.add(nxt)
        stack.extend(p["entity"] for p in _parents(raw, nxt))
    return out


def _controls(edge: Mapping[str, Any], threshold: float) -> bool:
    kind = edge.get("control")
    if kind in _CONTROL_ANY_SHARE:
        return True
    if kind == "golden-share":
        return False
    share = edge.get("share")
    return share is None or float(share) >= threshold


def _current(edge: Mapping[str, Any], date: str | None) -> bool:
    if date is None:
        return edge.get("until") is None
    since, until = edge.get("since"), edge.get("until")
    return (since is None or since <= date) and (until is None or date < until)


def _group(raw: RawKB, eid: str, threshold: float, date: str | None) -> set[str]:
    """The entity and everything that controls it today (current links from the threshold up)."""
    out = {eid}
    stack = [eid]
    while stack:
        cur = stack.pop()
        for p in _parents(raw, cur):
            if p["entity"] not in out and _current(p, date) and _controls(p, threshold):
                out.add(p["entity"])
                stack.append(p["entity"])
    return out


def _names(rec: Mapping[str, Any]) -> set[str]:
    """The spellings of an entity a note may use: its name, the name without a legal tail, aliases."""
    out: set[str] = set()
    for n in [rec.get("name", ""), *rec.get("aliases", [])]:
        if not isinstance(n, str):
            continue
        n = n.strip()
        short = _LEGAL_TAIL.sub("", n).strip(" ,")
        for cand in (n, short):
            # short or lower-case spellings ("X", "iQ", "jd") match too much running text
            if (len(cand) >= 3 and any(c.isupper() for c in cand)) or (len(cand) >= 2 and not cand.isascii()):
                out.add(cand)
    return out


class _NameIndex:
    """Finds KB entity names in running text (case-sensitive, whole words, longest first)."""

    def __init__(self, raw: RawKB) -> None:
        self.by_name: dict[str, set[str]] = {}
        for eid, rec in raw.entities.items():
            for n in _names(rec):
                self.by_name.setdefault(n, set()).add(eid)
        alts = sorted(self.by_name, key=len, reverse=True)
        self.pattern = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(a) for a in alts) + r")(?![\w-])") if alts else None

    def find(self, text: str) -> Iterator[tuple[int, int, str, set[str]]]:
        if self.pattern is None:
            return
        for m in self.pattern.finditer(text):
            yield m.start(), m.end(), m.group(0), self.by_name[m.group(0)]


def _controller_mentions(text: str, names: _NameIndex) -> Iterator[tuple[str, set[str], str]]:
    """(name, entity ids, sentence) for each name the text puts in a controller's place."""
    for sentence in _SENTENCE.split(text):
        for start, end, name, ids in names.find(sentence):
            before = sentence[max(0, start - 60):start]
            after = sentence[end:end + 60]
            hit = False
            found = list(_BEFORE.finditer(before))
            m = found[-1] if found else None
            if m is not None and not before[m.end():].strip(" ,'\"()").count(" ") > 3:
                gap_text = before[m.end():]
                if not _NOT_CONTROL.search(before[max(0, m.start() - 25):]) and "," not in gap_text:
                    hit = True
            a = _AFTER.match(after.lstrip(" ,")) or _AFTER.match(re.sub(r"^\s*\([^)]*\)", "", after).lstrip(" ,"))
            if not hit and a is not None:
                tail = after.lstrip(" ,")[a.end():a.end() + 30]
                if not _NOT_CONTROL.search(a.group(0)) and not _NOT_CONTROL.search(tail):
                    hit = True
            if hit:
                yield name, ids, sentence


# --- the checks ------------------------------------------------------------------------------


def _where(raw: RawKB, eid: str) -> tuple[str, int]:
    return raw.where.get(("entity", eid), ("", 0))


def _note_controllers(raw: RawKB, names: _NameIndex) -> Iterator[Gap]:
    for eid, rec in raw.entities.items():
        texts = [rec.get("notes", "")] + [p.get("note", "") for p in rec.get("parent", [])]
        anc = _ancestors(raw, eid)
        direct = {p["entity"] for p in rec.get("parent", [])}
        reported: set[str] = set()
        for text in texts:
            if not isinstance(text, str) or not text:
                continue
            for name, ids, sentence in _controller_mentions(text, names):
                if eid in ids:
                    continue  # the entity's own name
                if ids & anc:
                    continue
                # X's chain: the entity's parent sits above X (note names an intermediate holder)
                if any(direct & _ancestors(raw, x) for x in ids):
                    continue
                # X is below the entity (a note on a parent link naming the entity's own unit)
                if any(eid in _ancestors(raw, x) for x in ids):
                    continue
                target = sorted(ids)[0] if len(ids) == 1 else "|".join(sorted(ids))
                if target in reported:
                    continue
                reported.add(target)
                f, line = _where(raw, eid)
                yield Gap("note-controller", eid, target,
                          f"{eid}: the notes name {name!r} ({target}) as controller or parent "
                          f"(\"{sentence.strip()[:140]}\") but no parent link leads to it", f, line)


#: a proper name: capitalised words, with "of", "and", "&" and "'s" inside
_PROPER = r"(?:[A-Z][\w&.'-]*|[0-9][\w-]*)(?:\s+(?:[A-Z][\w&.'-]*|of|and|&|de|der)(?=\s+[A-Z]|\s*$|[^\w\s])|\s+[A-Z][\w&.'-]*)*"
_BEFORE_NAME = re.compile(r"(?:" + _BEFORE.pattern + r")\s+(?:the\s+|its\s+)?(" + _PROPER + r")")
_NAME_AFTER = re.compile(r"(?:^|[\s(;,])(" + _PROPER + r")\s+(?:" + _AFTER.pattern[3:])
#: words that start a proper-name match but are not a controller's name
_NOT_NAMES = frozenset({"The", "A", "An", "Its", "It", "Since", "In", "Chinese", "Russian", "US", "EU", "Former",
                        "Formerly", "State", "Government", "Private", "Listed", "Founder", "Founders"})


def _unknown_controllers(raw: RawKB, names: _NameIndex) -> Iterator[Gap]:
    """Notes of an entity with no parent link that name a controller the KB does not know."""
    for eid, rec in raw.entities.items():
        if rec.get("parent") or rec.get("kind", "company") != "company":
            continue
        text = rec.get("notes", "")
        if not isinstance(text, str):
            continue
        reported: set[str] = set()
        for sentence in _SENTENCE.split(text):
            for rx in (_BEFORE_NAME, _NAME_AFTER):
                for m in rx.finditer(sentence):
                    name = m.group(1).strip(" .,'")
                    if name.endswith("'s"):
                        name = name[:-2]
                    first = name.split()[0] if name.split() else ""
                    if not name or first in _NOT_NAMES or len(name) < 3 or name in reported:
                        continue
                    span = sentence[max(0, m.start() - 25):m.end() + 30]
                    if _NOT_CONTROL.search(span):
                        continue
                    if any(True for _ in names.find(name)):
                        continue  # a KB entity: the note-controller check judges it
                    reported.add(name)
                    f, line = _where(raw, eid)
                    yield Gap("controller-not-in-kb", eid, name,
                              f"{eid}: the notes name {name!r} as controller or parent (\"{sentence.strip()[:140]}\") "
                              "but it is not a KB entity and the entity has no parent link", f, line)


def _voting_as_equity(raw: RawKB, threshold: float) -> Iterator[Gap]:
    for eid, rec in raw.entities.items():
        own = " ".join(t for t in (rec.get("notes", ""), rec.get("unverified", "")) if isinstance(t, str))
        for p in rec.get("parent", []):
            if p.get("control") not in ("equity", "voting") or p.get("share") is None:
                continue
            if float(p["share"]) >= threshold:
                continue
            text = " ".join(t for t in (own, p.get("note", ""), p.get("unverified", "")) if isinstance(t, str))
            says = None
            for rx in _VOTES:
                for m in rx.finditer(text):
                    pct = m.group(1) if rx.groups else None
                    if pct is None or 50 <= float(pct) <= 100:
                        says = m.group(0)
                        break
                if says is not None:
                    break
            if says is None:
                continue
            f, line = _where(raw, eid)
            yield Gap("voting-as-equity", eid, p["entity"],
                      f"{eid}: parent {p['entity']!r} is recorded as {p['control']} {p['share']} (below the "
                      f"control threshold {threshold}) while the record says {says.strip()!r}: record the "
                      f"voting fraction (control = \"voting\") so the walk reaches it", f, line)


def _no_domains(raw: RawKB) -> Iterator[Gap]:
    parents = {p["entity"] for rec in raw.entities.values() for p in rec.get("parent", [])}
    networks = {a["entity"] for a in raw.autonomous_systems}  # an AS operator is found by its AS
    for eid, rec in raw.entities.items():
        if rec.get("kind", "company") != "company" or rec.get("domains") or eid in parents or eid in networks:
            continue
        f, line = _where(raw, eid)
        yield Gap("no-domains", eid, "", f"{eid}: a company with no domains that is no entity's parent", f, line)


# --- datasets --------------------------------------------------------------------------------


def _name_key(name: str) -> str:
    from datareach.kb.index import name_key

    return name_key(name)


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


#: words a dataset adds after a company's name ("Adobe Systems", "Nielsen Online")
_GENERIC_TAIL = frozenset({"systems", "online", "labs", "software", "media", "interactive", "digital", "network",
                           "networks", "mobile", "solutions", "services", "international", "global", "inc"})


def _name_keys(name: str) -> set[str]:
    """The keys a company name may match under: the name key, with CamelCase split
    ("AlibabaGroup"), without spaces ("Bytedance" for "Byte Dance"), and without generic
    trailing words ("Adobe Systems")."""
    keys = {_name_key(name), _name_key(_CAMEL.sub(" ", name))}
    for k in list(keys):
        words = k.split()
        while len(words) > 1 and words[-1] in _GENERIC_TAIL:
            words = words[:-1]
            keys.add(" ".join(words))
    keys |= {k.replace(" ", "") for k in keys}
    return {k for k in keys if k}


def mapping_keys(cmap: Iterable[Any] | Any) -> dict[tuple[str, str], str]:
    """(dataset kind or ``*``, company name key) -> entity id, from the KB's company mappings
    (:func:`datareach.kb.mappings.read_mappings`); records with only a country give no entity."""
    out: dict[tuple[str, str], str] = {}
    for r in getattr(cmap, "records", cmap):
        if getattr(r, "entity", None):
            for kind in r.datasets:
                out[(kind, _name_key(r.company))] = r.entity
    return out


def load_mappings(root: Path) -> dict[tuple[str, str], str]:
    """The mappings of ``root/mappings/*.toml`` as :func:`mapping_keys` gives them.
    Raises :class:`KBError` when a mappings file is malformed."""
    from datareach.kb.mappings import read_mappings

    return mapping_keys(read_mappings(root))


def _mapped(mappings: Mapping[tuple[str, str], str], dataset: str, company: str) -> str | None:
    """The KB entity a mapping gives a dataset's company: an exact dataset id, a kind the id
    starts with (``disconnect`` for ``disconnect-0123abcd``), or ``*``."""
    hit = mappings.get((dataset, company))
    if hit is not None:
        return hit
    for (kind, key), eid in mappings.items():
        if key == company and kind != "*" and dataset.startswith(kind):
            return eid
    return mappings.get(("*", company))


@dataclass(frozen=True)
class DatasetOwners:
    name: str
    entities: list[dict[str, Any]]  # {"name", "parent", "domains", "entity_id"}


def _dataset_from_obj(obj: Any, name: str) -> DatasetOwners:
    """A dataset in the store's JSON format (``kb import`` output), or a shipped dataset's JSON
    with an ``entities`` list of ``{name, domains, parent?}``."""
    if not isinstance(obj, dict) or not isinstance(obj.get("entities"), list):
        raise ValueError("not a dataset: expected an object with an 'entities' list")
    ents: list[dict[str, Any]] = []
    for e in obj["entities"]:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            continue
        doms = [d for d in e.get("domains", []) if isinstance(d, str)] if isinstance(e.get("domains"), list) else []
        parent = e.get("parent") if isinstance(e.get("parent"), str) else None
        eid = e.get("entity_id") if isinstance(e.get("entity_id"), str) else None
        ents.append({"name": e["name"], "parent": parent, "domains": doms, "entity_id": eid})
    label: str = obj["id"] if isinstance(obj.get("id"), str) else name
    kind: str | None = obj["kind"] if isinstance(obj.get("kind"), str) else None
    return DatasetOwners(f"{label}" + (f" ({kind})" if kind and kind not in label else ""), ents)


def load_dataset_file(path: Path) -> DatasetOwners:
    """An imported dataset's JSON (as ``kb import`` stores it) or a shipped dataset file.
    Raises ``ValueError`` saying what is wrong."""
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        obj = json.loads(data)
    except (OSError, ValueError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: {e}") from None
    try:
        return _dataset_from_obj(obj, path.stem)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def shipped_datasets(root: Path) -> list[DatasetOwners]:
    """The datasets shipped under ``root/datasets/`` (:func:`datareach.kb.mappings.shipped_datasets`),
    as owner lists. None is fine; a malformed one is a :class:`KBError` (a packaging error)."""
    from datareach.kb.mappings import shipped_datasets as _shipped

    out: list[DatasetOwners] = []
    for ds in _shipped(root):
        out.append(DatasetOwners(ds.id, [{"name": e.name, "parent": e.parent, "domains": list(e.domains),
                                          "entity_id": e.entity_id} for e in ds.entities]))
    return out


def _kb_owner(owner: Mapping[str, str], domain: str) -> tuple[str, str] | None:
    labels = domain.split(".")
    for i in range(len(labels) - 1):
        hit = owner.get(".".join(labels[i:]))
        if hit is not None:
            return hit, ".".join(labels[i:])
    return None


def _dataset_owner(datasets: Sequence[DatasetOwners], raw: RawKB, mappings: Mapping[tuple[str, str], str],
                   threshold: float, date: str | None) -> Iterator[Gap]:
    owner = {d: eid for eid, rec in raw.entities.items() for d in rec.get("domains", [])}
    from datareach.kb.index import _platforms, platform_suffix

    platforms = _platforms(raw, owner)

    def tenant(name: str, kb_domain: str) -> bool:
        """``name`` is a tenant below a shared platform's suffix that ``kb_domain`` does not go
        below: the KB names no owner for it (the platform hosts it), so there is nothing to
        disagree with."""
        suffix = platform_suffix(platforms, name)
        return suffix is not None and len(kb_domain) <= len(suffix)

    keys: dict[str, set[str]] = {}
    for eid, rec in raw.entities.items():
        for n in [rec.get("name", ""), *rec.get("aliases", []), eid.replace("-", " ")]:
            for k in _name_keys(n) if isinstance(n, str) else ():
                keys.setdefault(k, set()).add(eid)
    groups: dict[str, set[str]] = {}

    def group(eid: str) -> set[str]:
        if eid not in groups:
            groups[eid] = _group(raw, eid, threshold, date) | _ancestors(raw, eid)
        return groups[eid]

    seen: set[tuple[str, str]] = set()
    for ds in datasets:
        for ent in ds.entities:
            cand: set[str] = set()
            ds_key = ds.name.split(" ")[0]
            for n in (ent["name"], ent["parent"]):
                if not n:
                    continue
                for k in _name_keys(n):
                    mapped = _mapped(mappings, ds_key, k)
                    if mapped:
                        cand.add(mapped)
                    cand |= keys.get(k, set())
                # a company named by its domain ("360.cn") is the KB owner of that domain
                named = _kb_owner(owner, n.strip().lower().rstrip("."))
                if named is not None and "." in n:
                    cand.add(named[0])
            if ent["entity_id"] and ent["entity_id"] in raw.entities:
                cand.add(ent["entity_id"])
            cand &= set(raw.entities)
            for d in ent["domains"]:
                hit = _kb_owner(owner, d.lower().rstrip("."))
                if hit is None:
                    continue
                eid, kb_domain = hit
                if tenant(d.lower().rstrip("."), kb_domain):
                    continue
                if cand and any(c in group(eid) or eid in group(c)
                                or _top(raw, c, threshold, date) == _top(raw, eid, threshold, date) for c in cand):
                    continue
                if (d, eid) in seen:
                    continue
                seen.add((d, eid))
                f, line = _where(raw, eid)
                them = ent["name"] + (f" (parent {ent['parent']})" if ent["parent"] else "")
                mapped_to = f", which is KB entity {'/'.join(sorted(cand))}" if cand else ", not a KB entity"
                yield Gap("dataset-owner", eid, d,
                          f"{d}: dataset {ds.name} gives it to {them!r}{mapped_to}; the KB gives it to {eid} "
                          f"(by {kb_domain}): review who is right", f, line)


def _top(raw: RawKB, eid: str, threshold: float, date: str | None) -> str:
    """The ultimate controller along current controlling links (first found; cycles are load errors)."""
    cur = eid
    for _ in range(32):
        nxt = next((p["entity"] for p in _parents(raw, cur) if _current(p, date) and _controls(p, threshold)), None)
        if nxt is None:
            return cur
        cur = nxt
    return cur


# --- the entry point -------------------------------------------------------------------------


def find_gaps(raw: RawKB, *, datasets: Iterable[DatasetOwners] = (), mappings: Mapping[tuple[str, str], str] | None = None,
              threshold: float = 0.5, date: str | None = None) -> list[Gap]:
    """Every modelling gap in ``raw`` (see the module's docstring), in check order."""
    names = _NameIndex(raw)
    gaps = [*_note_controllers(raw, names), *_unknown_controllers(raw, names), *_voting_as_equity(raw, threshold), *_no_domains(raw),
            *_dataset_owner(list(datasets), raw, mappings or {}, threshold, date)]
    return gaps


def load_allow(path: Path) -> dict[tuple[str, str, str], str]:
    """The reviewed allow-list: ``[[allow]] check, entity, target (optional), reason`` -> reason.
    Raises :class:`KBError` when the file is malformed (an allow-list without reasons is no review)."""
    if not path.exists():
        return {}
    name = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise KBError(name, None, f"cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise KBError(name, None, f"TOML syntax: {e}") from None
    out: dict[tuple[str, str, str], str] = {}
    items = data.get("allow", [])
    if set(data) - {"allow"} or not isinstance(items, list):
        raise KBError(name, None, "expected only [[allow]] tables")
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise KBError(name, None, f"[[allow]] entry {i} is not a table")
        check, entity, reason = item.get("check"), item.get("entity"), item.get("reason")
        target = item.get("target", "")
        if check not in CHECKS:
            raise KBError(name, None, f"[[allow]] entry {i}: check must be one of {CHECKS}")
        if not isinstance(entity, str) or not entity or not isinstance(target, str):
            raise KBError(name, None, f"[[allow]] entry {i}: entity (and target) must be strings")
        if not isinstance(reason, str) or len(reason.strip()) < 10:
            raise KBError(name, None, f"[[allow]] entry {i} ({entity}): give the reviewed reason")
        unknown = set(item) - {"check", "entity", "target", "reason"}
        if unknown:
            raise KBError(name, None, f"[[allow]] entry {i}: unknown keys {sorted(unknown)}")
        out[(check, entity, target)] = reason
    return out
