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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date as Date
from pathlib import Path
from typing import Any

from datareach.detect.types import canonical_data_type

__all__ = ["MAX_EXTENDS_DEPTH", "MAX_RULES_TOTAL", "MAX_TABLES", "PRESETS", "Allow", "Policy", "PolicyError", "Rule",
           "load_policy", "policy_path_dirs", "preset_names"]

PRESET_DIR = Path(__file__).parent / "presets"
BASES = ("owner", "host", "location")
ACTIONS = ("deny", "warn")
OWNER_TESTS = ("reach", "operator", "ownership")
DATA_MODES = ("found", "not-found", "any")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
#: ``extends`` chains deeper than this are refused (a policy extending one extending one...).
MAX_EXTENDS_DEPTH = 32
#: How many policies one ``extends`` may name.
MAX_EXTENDS = 64
#: The most ``[[rule]]``, ``[[override]]`` or ``[[allow]]`` tables a policy file may have (each).
MAX_TABLES = 10_000
#: The most rules, and the most allow entries, a policy may have with all it extends.
MAX_RULES_TOTAL = 20_000
#: The environment variable naming directories policies may extend files from.
POLICY_PATH_ENV = "DATAREACH_POLICY_PATH"


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
        if not _COUNTRY.fullmatch(c) and c != "EU":
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
    if not _ID.fullmatch(rid):
        raise PolicyError(f"{t.where}: rule id {rid!r} must be lower case letters, digits, '-', '.', '_'")
    conditional_raw = t._get("conditional", dict, "a table of COUNTRY = \"note\"", False) or {}
    conditional: dict[str, str] = {}
    for code, note in conditional_raw.items():
        if not (_COUNTRY.fullmatch(code) or code == "EU") or not isinstance(note, str):
            raise PolicyError(f"{t.where}: `conditional` maps ISO country codes to notes ({code!r})")
        conditional[code] = note
    bases = t.texts("bases") or BASES
    for b in bases:
        if b not in BASES:
            raise PolicyError(f"{t.where}: `bases`: {b!r} is not one of {', '.join(BASES)}")
    data_categories = t.texts("data_categories")
    # (the pattern detectors' old names are aliases: precise_location is location, mac_address mac)
    data_types = tuple(dict.fromkeys(canonical_data_type(d) for d in t.texts("data_types")))
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
    if len(raw) > MAX_TABLES:
        raise PolicyError(f"{where}: {len(raw):,} [[{key}]] tables; a policy file may have at most {MAX_TABLES:,}")
    return [_Table(item, f"{where}: [[{key}]] #{i + 1}") for i, item in enumerate(raw)]


def _short(text: str, limit: int = 80) -> str:
    """``text`` for a message, cut to ``limit`` characters (the command line makes messages
    printable)."""
    if len(text) > limit:
        return text[: limit - 20] + f"…({len(text):,} characters)"
    return text


def _chain(names: list[str]) -> str:
    shown = [_short(n, 120) for n in names]
    if len(shown) > 8:
        shown = [*shown[:3], f"…({len(shown) - 5} more)", *shown[-2:]]
    return " -> ".join(shown)


def policy_path_dirs(policy_path: Iterable[str | os.PathLike[str]] | None = None) -> list[str]:
    """The directories a policy may extend files from besides its own: ``policy_path`` (the
    ``--policy-path`` options) and those in ``DATAREACH_POLICY_PATH`` (separated by
    ``os.pathsep``), symbolic links resolved."""
    dirs = [*(policy_path or ()), *(d for d in os.environ.get(POLICY_PATH_ENV, "").split(os.pathsep) if d)]
    out: list[str] = []
    for d in dirs:
        real = os.path.realpath(d)
        if real not in out:
            out.append(real)
    return out


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _no_such_policy(where: str, name: str) -> str:
    """The message for a policy that is neither a preset nor a file: the closest preset's name
    when ``name`` looks like a typo of one (``us-doj-bulk-dta``), else the presets."""
    import difflib

    stem = name[:-5] if name.lower().endswith(".toml") else name
    close = difflib.get_close_matches(stem.lower(), PRESETS, n=1, cutoff=0.6)
    if not close and len(stem) >= 3:  # (a preset's name cut short: eu-gdpr)
        close = [p for p in PRESETS if p.startswith(stem.lower())][:1]
    if close:
        return f"{where}: no such policy file or preset; did you mean {close[0]}? (presets: {', '.join(PRESETS)})"
    return f"{where}: no such policy file or preset (presets: {', '.join(PRESETS)}; `datareach policy list`)"


class _Loader:
    """One :func:`load_policy` call: each file read once however often it is extended (a
    diamond of extends loads in linear time), the chain being loaded kept to find cycles."""

    def __init__(self, policy_path: list[str]) -> None:
        self.policy_path = policy_path
        self.loaded: dict[str, Policy] = {}
        self.chain: list[str] = []  # keys of the policies being loaded, outermost first
        self.names: list[str] = []  # how they were named, for messages

    def top(self, name_or_path: str | os.PathLike[str]) -> Policy:
        text = str(name_or_path)
        if text in PRESETS and not _exists(text):
            preset = PRESET_DIR / f"{text}.toml"
            return self.load(f"preset:{text}", preset, preset, "preset", f"preset {text}", text, None)
        path = Path(name_or_path)
        where = _short(str(path), 300)
        try:
            real = os.path.realpath(path)
        except (OSError, ValueError) as exc:
            raise PolicyError(f"{where}: not a policy file: {exc}") from None
        return self.load(real, path, Path(real), str(path), where, text, None)

    def load(self, key: str, path: Path, real: Path, origin: str, where: str, name: str, at: str | None) -> Policy:
        """The policy at ``path`` (as named: ``extends`` are relative to it), read from ``real``
        (symbolic links resolved: what was checked is what is read). ``where`` names it in
        messages about its content, ``at`` the ``extends`` entry that names it (None for the
        policy asked for)."""
        if key in self.chain:
            cycle = [*self.names[self.chain.index(key):], name]
            raise PolicyError(f"{at} makes a cycle ({_chain(cycle)})" if at else f"{where}: `extends` makes a cycle")
        done = self.loaded.get(key)
        if done is not None:
            return done
        if len(self.chain) > MAX_EXTENDS_DEPTH:
            raise PolicyError(f"{at or where}: more than {MAX_EXTENDS_DEPTH} levels of `extends` "
                              f"({_chain([*self.names, name])})")
        self.chain.append(key)
        self.names.append(name)
        try:
            policy = self._read(path, real, origin, where, at)
        finally:
            self.chain.pop()
            self.names.pop()
        self.loaded[key] = policy
        return policy

    def _parent(self, parent_name: str, path: Path, origin: str, where: str) -> Policy:
        """An ``extends`` entry of the policy at ``path``: a preset, or a file under the
        policy's own directory or a ``--policy-path`` directory."""
        at = f"{where}: [policy] `extends`: {_short(parent_name)!r}"
        if parent_name in PRESETS:
            preset = PRESET_DIR / f"{parent_name}.toml"
            return self.load(f"preset:{parent_name}", preset, preset, "preset", f"preset {parent_name}", parent_name,
                             at)
        if origin == "preset":
            raise PolicyError(f"{at} is not a preset")
        named = path.parent / parent_name
        try:
            real = os.path.realpath(named)
        except (OSError, ValueError) as exc:
            raise PolicyError(f"{at} is not a file name: {exc}") from None
        roots = [os.path.realpath(path.parent), *self.policy_path]
        if not any(_within(real, root) for root in roots):
            raise PolicyError(
                f"{at} is {_short(real, 200)}, outside the directories policies may "
                f"extend files from ({', '.join(_short(r, 200) for r in roots)}); to allow it, give --policy-path "
                f"{_short(os.path.dirname(real), 200)} (or add that directory to {POLICY_PATH_ENV})")
        return self.load(real, named, Path(real), str(named), _short(str(named), 300), parent_name, at)

    def _read(self, path: Path, real: Path, origin: str, where: str, at: str | None) -> Policy:
        from datareach.files import ConfigFileError, parse_toml, read_config

        try:
            raw = read_config(real, at or where, "policy")
        except ConfigFileError as exc:
            if exc.missing:
                raise PolicyError(_no_such_policy(at or where, path.name)) from None
            raise PolicyError(str(exc)) from None
        try:
            doc = parse_toml(raw, where, "a policy")
        except ConfigFileError as exc:
            raise PolicyError(str(exc)) from None
        unknown = sorted(set(doc) - {"policy", "rule", "override", "allow"})
        if unknown:
            raise PolicyError(f"{where}: unknown table(s) {', '.join(_short(u) for u in unknown[:10])} "
                              "(expected [policy], [[rule]], [[override]], [[allow]])")
        head = _Table(doc.get("policy"), f"{where}: [policy]")
        pid = head.text("id", required=True) or ""
        if not _ID.fullmatch(pid):
            raise PolicyError(f"{head.where}: id {_short(pid)!r} must be lower case letters, digits, '-', '.', '_'")
        policy = Policy(
            id=pid, name=head.text("name", required=True) or "", origin=origin,
            sha256=hashlib.sha256(raw).hexdigest(), summary=head.text("summary"), as_of=_date(head, "as_of"),
            sources=list(head.texts("sources")), context=list(head.texts("context")),
            extends=list(head.texts("extends")),
        )
        head.done()
        if len(policy.extends) > MAX_EXTENDS:
            raise PolicyError(f"{head.where}: `extends` names {len(policy.extends)} policies; at most "
                              f"{MAX_EXTENDS}")
        tables = {key: _tables(doc, key, where) for key in ("rule", "override", "allow")}
        rules: list[Rule] = []
        allow: list[Allow] = []
        seen_rules: set[int] = set()
        seen_allow: set[int] = set()
        sources = dict.fromkeys(policy.sources)
        context = dict.fromkeys(policy.context)
        for parent_name in dict.fromkeys(policy.extends):  # a name given twice is extended once
            parent = self._parent(parent_name, path, origin, where)
            # the same rule object reached twice (a diamond of extends) is inherited once
            rules += [r for r in parent.rules if id(r) not in seen_rules]
            seen_rules.update(id(r) for r in parent.rules)
            allow += [a for a in parent.allow if id(a) not in seen_allow]
            seen_allow.update(id(a) for a in parent.allow)
            sources.update(dict.fromkeys(parent.sources))
            context.update(dict.fromkeys(parent.context))
            if len(rules) > MAX_RULES_TOTAL or len(allow) > MAX_RULES_TOTAL:
                raise PolicyError(f"{head.where}: `extends`: more than {MAX_RULES_TOTAL:,} rules or allow "
                                  "entries in all")
        policy.sources, policy.context = list(sources), list(context)
        # where each rule id is, first occurrence first (inherited rules may share an id)
        where_id: dict[str, list[int]] = {}
        for i, r in enumerate(rules):
            where_id.setdefault(r.id, []).append(i)
        for t in tables["rule"]:
            rule = _rule(t)
            if rule.id in where_id:
                raise PolicyError(f"{t.where}: a rule with id {rule.id!r} is already defined (use [[override]] "
                                  "to change an inherited rule)")
            where_id[rule.id] = [len(rules)]
            rules.append(rule)
        kept: list[Rule | None] = list(rules)
        for t in tables["override"]:
            rid = t.text("rule", required=True) or ""
            action = t.choice("action", (*ACTIONS, "off"), None)
            t.done()
            places = where_id.get(rid)
            if not places:
                known = [r.id for r in kept if r is not None]
                listed = ", ".join(known[:20]) + (f", … ({len(known) - 20} more)" if len(known) > 20 else "")
                raise PolicyError(f"{t.where}: no rule {_short(rid)!r} to override (rules: {listed or 'none'})")
            idx = places[0]
            old = kept[idx]
            assert old is not None
            if action == "off":
                kept[idx] = None
                del places[0]
            else:
                kept[idx] = replace(old, action=action)
        policy.rules = [r for r in kept if r is not None]
        policy.allow = allow + [_allow(t) for t in tables["allow"]]
        if len(policy.rules) > MAX_RULES_TOTAL or len(policy.allow) > MAX_RULES_TOTAL:
            raise PolicyError(f"{where}: more than {MAX_RULES_TOTAL:,} rules or allow entries with what it extends")
        if not policy.rules:
            raise PolicyError(f"{where}: the policy has no rules")
        return policy


def _exists(text: str) -> bool:
    try:
        return Path(text).exists()
    except (OSError, ValueError):
        return False


def load_policy(name_or_path: str | os.PathLike[str], *,
                policy_path: Iterable[str | os.PathLike[str]] | None = None) -> Policy:
    """A preset by name (``us-doj-bulk-data``...) or a policy file, with what it extends.

    The file itself may be anywhere; the files it extends (and they in turn) must be under the
    directory of the file that extends them or under a directory of ``policy_path`` or of the
    environment variable ``DATAREACH_POLICY_PATH``. The limits are in docs/policies.md
    (:data:`MAX_EXTENDS_DEPTH`, :data:`MAX_TABLES`, :data:`MAX_RULES_TOTAL`, and those of
    :func:`datareach.files.read_config`). Raises :class:`PolicyError` naming the file and
    the place at fault.
    """
    return _Loader(policy_path_dirs(policy_path)).top(name_or_path)
