"""Policy files: the rules an audit is judged against (format: docs/policies.md).

A policy is a TOML file with a ``[policy]`` table, ``[[rule]]`` tables (what to deny or warn
about), ``[[override]]`` tables (change the action of an inherited rule) and ``[[allow]]``
tables (exceptions, each with its reason). The built-in presets (``us-doj-bulk-data``,
``us-padfa``, ``eu-gdpr-transfers``) are written in the same format and live in
``datareach/assess/presets``; a user's policy can ``extends`` them.

:func:`load_policy` reads a preset name or a file and checks every field, raising
:class:`PolicyError` with the file and the table at fault.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date as Date
from pathlib import Path
from typing import Any

__all__ = ["PRESETS", "Allow", "Policy", "PolicyError", "Rule", "load_policy", "preset_names"]

PRESET_DIR = Path(__file__).parent / "presets"
BASES = ("owner", "host", "location")
ACTIONS = ("deny", "warn")
OWNER_TESTS = ("reach", "operator", "ownership")
DATA_MODES = ("found", "not-found", "any")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class PolicyError(ValueError):
    """A policy that cannot be used: names the file and the table or field at fault."""


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


PRESETS = tuple(preset_names())


@dataclass(frozen=True)
class Rule:
    id: str
    action: str
    title: str
    citation: str | None = None
    explanation: str | None = None
    mechanism: str | None = None
    bases: tuple[str, ...] = BASES
    jurisdictions: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    except_jurisdictions: tuple[str, ...] = ()
    except_lists: tuple[str, ...] = ()
    #: how the owner basis is judged: ``reach`` (the owner-basis reach: headquarters,
    #: incorporation and operations of every controlling entity), ``operator`` (where the
    #: operator itself is established) or ``ownership`` (organised or headquartered in one of
    #: the jurisdictions, or owned at least ``ownership_threshold`` by such, directly or
    #: indirectly, in the aggregate)
    owner_test: str = "reach"
    ownership_threshold: float = 0.5
    #: entities organised in the US are US persons, never covered (28 CFR 202.256)
    us_persons_excluded: bool = False
    owners: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    data_categories: tuple[str, ...] = ()
    data_types: tuple[str, ...] = ()
    data: str = "any"
    #: jurisdictions that meet the rule only under a condition the capture cannot show: a
    #: match there is a warning carrying this note
    conditional: dict[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "title": self.title, "citation": self.citation}


@dataclass(frozen=True)
class Allow:
    reason: str
    hosts: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    until: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "hosts": list(self.hosts), "owners": list(self.owners),
                "apps": list(self.apps), "jurisdictions": list(self.jurisdictions),
                "rules": list(self.rules), "until": self.until}


@dataclass
class Policy:
    id: str
    name: str
    origin: str
    sha256: str
    summary: str | None = None
    as_of: str | None = None
    sources: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    allow: list[Allow] = field(default_factory=list)
    extends: list[str] = field(default_factory=list)

    def to_json(self, cite: Callable[[Iterable[str]], list[str]] | None = None) -> dict[str, Any]:
        """The ``policies[]`` entry; ``cite`` turns source references into URLs
        (:meth:`KnowledgeBase.cite <datareach.kb.index.KnowledgeBase.cite>`)."""
        return {
            "id": self.id, "name": self.name, "origin": self.origin, "sha256": self.sha256,
            "extends": self.extends, "summary": self.summary, "as_of": self.as_of,
            "sources": cite(self.sources) if cite else list(self.sources), "context": self.context,
            "rules": [r.to_json() for r in self.rules], "allow": [a.to_json() for a in self.allow],
        }


# -- reading ----------------------------------------------------------------------------------

class _Table:
    """Typed access to one TOML table, with errors naming the file and the table."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise PolicyError(f"{where}: expected a table")
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def _get(self, key: str, kinds: type | tuple[type, ...], what: str, required: bool) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise PolicyError(f"{self.where}: `{key}` is required")
            return None
        value = self.data[key]
        allowed = kinds if isinstance(kinds, tuple) else (kinds,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise PolicyError(f"{self.where}: `{key}` must be {what}")
        return value

    def text(self, key: str, required: bool = False) -> str | None:
        value = self._get(key, str, "a string", required)
        if value is not None and not value.strip():
            raise PolicyError(f"{self.where}: `{key}` is empty")
        return value  # type: ignore[no-any-return]

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._get(key, list, "a list of strings", False)
        if value is None:
            return ()
        if not all(isinstance(v, str) and v for v in value):
            raise PolicyError(f"{self.where}: `{key}` must be a list of non-empty strings")
        return tuple(value)

    def number(self, key: str, default: float) -> float:
        value = self._get(key, (int, float), "a number", False)
        return default if value is None else float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, bool, "true or false", False)
        return default if value is None else bool(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str | None) -> str:
        value = self.text(key, required=default is None)
        if value is None:
            assert default is not None
            return default
        if value not in choices:
            raise PolicyError(f"{self.where}: `{key}` must be one of {', '.join(choices)}, not {value!r}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise PolicyError(f"{self.where}: unknown field(s) {', '.join(unknown)}")


def _countries(t: _Table, key: str) -> tuple[str, ...]:
    codes = t.texts(key)
    for c in codes:
        if not _COUNTRY.match(c) and c != "EU":
            raise PolicyError(f"{t.where}: `{key}`: {c!r} is not an ISO 3166-1 alpha-2 code (or EU)")
    return codes


def _date(t: _Table, key: str) -> str | None:
    value = t._get(key, (str, Date), "a date (YYYY-MM-DD)", False)
    if value is None:
        return None
    text = value.isoformat() if isinstance(value, Date) else value
    try:
        Date.fromisoformat(text)
    except ValueError:
        raise PolicyError(f"{t.where}: `{key}` must be a date (YYYY-MM-DD), not {text!r}") from None
    return text


def _rule(t: _Table) -> Rule:
    rid = t.text("id", required=True)
    assert rid is not None
    if not _ID.match(rid):
        raise PolicyError(f"{t.where}: rule id {rid!r} must be lower case letters, digits, '-', '.', '_'")
    conditional_raw = t._get("conditional", dict, "a table of COUNTRY = \"note\"", False) or {}
    conditional: dict[str, str] = {}
    for code, note in conditional_raw.items():
        if not (_COUNTRY.match(code) or code == "EU") or not isinstance(note, str):
            raise PolicyError(f"{t.where}: `conditional` maps ISO country codes to notes ({code!r})")
        conditional[code] = note
    bases = t.texts("bases") or BASES
    for b in bases:
        if b not in BASES:
            raise PolicyError(f"{t.where}: `bases`: {b!r} is not one of {', '.join(BASES)}")
    data_categories, data_types = t.texts("data_categories"), t.texts("data_types")
    rule = Rule(
        id=rid,
        action=t.choice("action", ACTIONS, None),
        title=t.text("title", required=True) or "",
        citation=t.text("citation"),
        explanation=t.text("explanation"),
        mechanism=t.text("mechanism"),
        bases=bases,
        jurisdictions=_countries(t, "jurisdictions"),
        lists=t.texts("lists"),
        except_jurisdictions=_countries(t, "except_jurisdictions"),
        except_lists=t.texts("except_lists"),
        owner_test=t.choice("owner_test", OWNER_TESTS, "reach"),
        ownership_threshold=t.number("ownership_threshold", 0.5),
        us_persons_excluded=t.flag("us_persons_excluded", False),
        owners=t.texts("owners"),
        hosts=t.texts("hosts"),
        apps=t.texts("apps"),
        data_categories=data_categories,
        data_types=data_types,
        data=t.choice("data", DATA_MODES, "found" if data_categories or data_types else "any"),
        conditional=conditional,
        sources=t.texts("sources"),
    )
    if not 0 < rule.ownership_threshold <= 1:
        raise PolicyError(f"{t.where}: `ownership_threshold` is a share in (0, 1]")
    if rule.owner_test == "ownership" and not (rule.jurisdictions or rule.lists):
        raise PolicyError(f"{t.where}: owner_test = \"ownership\" needs `jurisdictions` or `lists` "
                          "(whose ownership is counted)")
    if rule.data == "not-found" and not (data_categories or data_types):
        raise PolicyError(f"{t.where}: data = \"not-found\" needs `data_categories` or `data_types`")
    t.done()
    return rule


def _allow(t: _Table) -> Allow:
    allow = Allow(
        reason=t.text("reason", required=True) or "",
        hosts=t.texts("hosts"), owners=t.texts("owners"), apps=t.texts("apps"),
        jurisdictions=_countries(t, "jurisdictions"), rules=t.texts("rules"), until=_date(t, "until"),
    )
    t.done()
    if not (allow.hosts or allow.owners or allow.apps or allow.jurisdictions or allow.rules):
        raise PolicyError(f"{t.where}: an allow entry must say what it allows (hosts, owners, apps, "
                          "jurisdictions or rules)")
    return allow


def _tables(doc: dict[str, Any], key: str, where: str) -> list[_Table]:
    raw = doc.get(key, [])
    if not isinstance(raw, list):
        raise PolicyError(f"{where}: `{key}` must be an array of tables ([[{key}]])")
    return [_Table(item, f"{where}: [[{key}]] #{i + 1}") for i, item in enumerate(raw)]


def load_policy(name_or_path: str | os.PathLike[str], *, _seen: tuple[str, ...] = ()) -> Policy:
    """A preset by name (``us-doj-bulk-data``...) or a policy file, with what it extends."""
    text = str(name_or_path)
    if text in PRESETS and not Path(text).exists():
        path, origin = PRESET_DIR / f"{text}.toml", "preset"
    else:
        path = Path(name_or_path)
        origin = str(path)
        if not path.is_file():
            raise PolicyError(f"{path}: no such policy file (presets: {', '.join(PRESETS)})")
    key = str(path.resolve())
    if key in _seen:
        raise PolicyError(f"{path}: `extends` makes a cycle ({' -> '.join([*_seen, key])})")
    raw = path.read_bytes()
    where = str(path) if origin != "preset" else f"preset {text}"
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{where}: not a valid TOML file: {exc}") from None
    unknown = sorted(set(doc) - {"policy", "rule", "override", "allow"})
    if unknown:
        raise PolicyError(f"{where}: unknown table(s) {', '.join(unknown)} (expected [policy], [[rule]], "
                          "[[override]], [[allow]])")
    head = _Table(doc.get("policy"), f"{where}: [policy]")
    pid = head.text("id", required=True) or ""
    if not _ID.match(pid):
        raise PolicyError(f"{head.where}: id {pid!r} must be lower case letters, digits, '-', '.', '_'")
    policy = Policy(
        id=pid, name=head.text("name", required=True) or "", origin=origin,
        sha256=hashlib.sha256(raw).hexdigest(), summary=head.text("summary"), as_of=_date(head, "as_of"),
        sources=list(head.texts("sources")), context=list(head.texts("context")),
        extends=list(head.texts("extends")),
    )
    head.done()
    for parent_name in policy.extends:
        parent_ref: str | os.PathLike[str] = parent_name
        if parent_name not in PRESETS and origin != "preset":
            parent_ref = (path.parent / parent_name)
        parent = load_policy(parent_ref, _seen=(*_seen, key))
        policy.rules += parent.rules
        policy.allow += parent.allow
        policy.sources += [s for s in parent.sources if s not in policy.sources]
        policy.context += [c for c in parent.context if c not in policy.context]
    for t in _tables(doc, "rule", where):
        rule = _rule(t)
        if any(r.id == rule.id for r in policy.rules):
            raise PolicyError(f"{t.where}: a rule with id {rule.id!r} is already defined (use [[override]] "
                              "to change an inherited rule)")
        policy.rules.append(rule)
    for t in _tables(doc, "override", where):
        rid = t.text("rule", required=True)
        action = t.choice("action", (*ACTIONS, "off"), None)
        t.done()
        idx = next((i for i, r in enumerate(policy.rules) if r.id == rid), None)
        if idx is None:
            raise PolicyError(f"{t.where}: no rule {rid!r} to override (rules: "
                              f"{', '.join(r.id for r in policy.rules) or 'none'})")
        if action == "off":
            del policy.rules[idx]
        else:
            policy.rules[idx] = replace(policy.rules[idx], action=action)
    policy.allow += [_allow(t) for t in _tables(doc, "allow", where)]
    if not policy.rules:
        raise PolicyError(f"{where}: the policy has no rules")
    return policy
