"""The public suffix list: registrable domains ("eTLD+1") of host names.

``www.example.co.uk`` -> ``example.co.uk``: the part of a name that somebody registered, one
label below a public suffix. The public suffix list is the one bundled in the
``publicsuffixlist`` wheel; it is never fetched, and :func:`list_source` says which list
(version and date) produced the answers. The knowledge base uses it to index its domains
(:mod:`datareach.kb.index`); the enrich stage applies it to whole columns of host names
(:func:`datareach.enrich.domains.registrable_domains`).

**The full list, PRIVATE section included.** The list has an ICANN section (``com``,
``co.uk``, ...) and a PRIVATE section in which companies declare suffixes under which *other
people* get names: ``appspot.com``, ``cloudfront.net``, ``blogspot.com``, ``github.io``,
``herokuapp.com`` ... This tool attributes traffic to whoever controls the destination, so it
uses both: ``d111abc.cloudfront.net`` is one CloudFront customer's distribution and
``foo.bar.appspot.com`` is the tenant ``bar``'s App Engine application, not "Amazon" or
"Google" as such. With the ICANN section only, every tenant of a platform would collapse into
the platform's own domain and the report would hide who the data actually went to. (Who runs
the platform is still visible: the server's AS, and the owner lookup, see the suffix.)

Null (no registrable domain) for: nulls, empty or malformed names (empty labels, a label over
63 characters, a name over 253, characters no host name has), IP literals (``192.0.2.1``,
``[2001:db8::1]``, ``2001:db8::1``), a bare public suffix (``co.uk``, ``appspot.com``),
single-label and unknown-TLD names (``localhost``, ``printer.lan``, ``nas.local``,
``x.internal``, ``foo.test``: names under top-level domains that are not in the list are not
on the public internet, so ``accept_unknown`` is off), and names under ``arpa`` (reverse-DNS
and ``home.arpa`` names belong to no registrant). Names are lowercased, one trailing dot (the
DNS root) is removed, and a ``:port`` suffix is dropped. IDNs come back in the form given:
punycode (``xn--...``) stays punycode, Unicode stays Unicode; the full-width and ideographic
full stops that IDNA maps to ``.`` are treated as dots.

The parsed list is kept in the user's cache directory (:mod:`datareach.cache`: by default
``~/.cache/datareach/public-suffix-list-*.bin``, moved with ``DATAREACH_CACHE_DIR``) so that a
run reads it in milliseconds instead of parsing the list again.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datareach.schema import DataSource


__all__ = [
    "list_source",
    "load",
    "private_suffixes",
    "psl_version",
    "registrable_domain",
    "registrable_domain_of_many",
    "suffix_rules",
]

_CACHE_MAX = 1 << 17

_psl: Any = None
_psl_lock = threading.Lock()
_cache: dict[str, str | None] = {}
_MISSING = object()

# Characters that IDNA (UTS #46) maps to U+002E FULL STOP.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# ASCII allowed in a host name label. Underscore is not valid in a host name, but occurs in
# real SNI and Host values (e.g. "_dmarc", some CDN names) and says nothing about ownership.
_ASCII_LABEL = re.compile(r"^[a-z0-9_-]+$")
_PORT = re.compile(r":\d{1,5}$")


# Bump when what is cached for the list (or how it is derived) changes.
_PSL_CACHE_FORMAT = 1
# What PublicSuffixList keeps after parsing: the rule set and the longest rule's label count.
_PSL_STATE = frozenset({"accept_unknown", "_publicsuffix", "_maxlabel"})


def _build_psl() -> Any:
    """The reference: parse the bundled list (a few hundred milliseconds)."""
    from publicsuffixlist import PublicSuffixList

    # Full list (ICANN + PRIVATE sections, see the module docstring); a TLD that is not in
    # the list is not public.
    return PublicSuffixList(only_icann=False, accept_unknown=False)


def _psl_cache_key() -> tuple[dict[str, object], Path]:
    import publicsuffixlist

    from datareach import cache

    key: dict[str, object] = {
        "what": "public-suffix-list",
        "format": _PSL_CACHE_FORMAT,
        "publicsuffixlist": _psl_version(),
        "source": cache.source_key(Path(publicsuffixlist.PSLFILE)),
        "only_icann": False,
    }
    return key, cache.cache_path("public-suffix-list", key)


def _load_cached_psl() -> Any:
    """The parsed list from the cache directory, compiling it there first when needed.

    The cache holds PublicSuffixList's own parsed state (its rule set, marshalled) and it is
    put back into an object made by the package's constructor, so every answer still comes
    from the package's own code. Should a new publicsuffixlist keep different state, the list
    is parsed as before and nothing is cached.
    """
    import marshal

    from publicsuffixlist import PublicSuffixList

    from datareach import cache

    try:
        key, path = _psl_cache_key()
    except (OSError, AttributeError):
        return _build_psl()
    empty = PublicSuffixList(source=[], only_icann=False, accept_unknown=False)
    if set(vars(empty)) != _PSL_STATE:
        return _build_psl()
    cached = cache.load(path, key)
    if cached is not None:
        try:
            state = marshal.loads(cached.section("state"))
            maxlabel, rules = state
            if isinstance(maxlabel, int) and isinstance(rules, frozenset) and rules:
                empty._publicsuffix = rules
                empty._maxlabel = maxlabel
                return empty
        except (KeyError, ValueError, EOFError, TypeError):
            pass
    psl = _build_psl()
    rules, maxlabel = psl._publicsuffix, psl._maxlabel
    if isinstance(rules, frozenset) and all(isinstance(r, str) for r in rules):
        cache.store(path, key, {"state": (marshal.dumps((maxlabel, rules)), None, None)})
    return psl


def _get_psl() -> Any:
    global _psl
    if _psl is None:
        with _psl_lock:
            if _psl is None:
                _psl = _load_cached_psl()
    return _psl


def load() -> None:
    """Load the public suffix list now rather than at the first look-up."""
    _get_psl()


def _normalise(host: str) -> str | None:
    """The lowercased, checked host name, or None when it cannot have a registrable domain."""
    h = host.strip()
    if not h or h.startswith("["):  # "[2001:db8::1]" or "[::1]:443"
        return None
    if ":" in h:
        m = _PORT.search(h)
        if m is None or h.count(":") != 1:  # an IPv6 literal or junk
            return None
        h = h[: m.start()]
    h = h.translate(_DOTS).lower()
    if h.endswith("."):
        h = h[:-1]
    if not h or len(h) > 253:
        return None
    labels = h.split(".")
    for label in labels:
        if not label or len(label) > 63:
            return None
        if label.isascii():
            if _ASCII_LABEL.match(label) is None:
                return None
        elif not all(ch.isalnum() or ch in "-_" or _is_idn_mark(ch) for ch in label):
            return None
    last = labels[-1]
    if len(labels) < 2 or last.isdigit() or last == "arpa":
        return None
    return h


def _is_idn_mark(ch: str) -> bool:
    # combining marks (e.g. Devanagari vowel signs) are parts of letters in IDN labels
    return unicodedata.category(ch) in ("Mn", "Mc", "Me")


def _registrable(host: str) -> str | None:
    h = _normalise(host)
    if h is None:
        return None
    try:
        result = _get_psl().privatesuffix(h)
    except (ValueError, UnicodeError):
        return None
    return result if isinstance(result, str) and result else None


def registrable_domain(host: str) -> str | None:
    """The registrable domain of one host name, or None (see the module docstring)."""
    if not isinstance(host, str):
        return None
    hit = _cache.get(host, _MISSING)
    if hit is not _MISSING:
        return hit  # type: ignore[return-value]
    result = _registrable(host)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[host] = result
    return result


def suffix_rules() -> frozenset[str]:
    """The public suffix list's rules as parsed (``*.`` wildcards and ``!`` exceptions kept)."""
    rules = getattr(_get_psl(), "_publicsuffix", None)
    return rules if isinstance(rules, frozenset) else frozenset()


def private_suffixes() -> dict[str, str]:
    """The PRIVATE section's suffixes, each with the organisation that declared it (the
    ``// Name : URL`` comment that opens its block), e.g. ``cloudfront.net`` -> ``Amazon
    CloudFront``. Wildcards (``*.compute.amazonaws.com``) give their base; exceptions are left
    out. Names *below* such a suffix are given to other people: a tenant's service on a shared
    platform (:mod:`datareach.enrich.ownership` makes the platform a host, not the owner).
    Parsed from the bundled list file (the knowledge base's compiled index keeps the result)."""
    import publicsuffixlist

    out: dict[str, str] = {}
    org = "?"
    in_private = False
    fresh_block = True
    with open(publicsuffixlist.PSLFILE, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if "===BEGIN PRIVATE DOMAINS===" in line:
                in_private = True
                continue
            if "===END PRIVATE DOMAINS===" in line:
                break
            if not in_private:
                continue
            if not line:
                fresh_block = True
                continue
            if line.startswith("//"):
                if fresh_block:
                    org = line[2:].split(" : ", 1)[0].strip() or "?"
                    fresh_block = False
                continue
            fresh_block = False
            rule = line.split()[0].lower()
            if rule.startswith("!"):
                continue
            rule = rule.removeprefix("*.")
            if rule and "*" not in rule:
                out.setdefault(rule, org)
    return out


def psl_version() -> str:
    """The version of the publicsuffixlist package whose list answers."""
    return _psl_version()


# The public suffix list's rules indexed for a walk from the right (:func:`_count_public`):
# every tail of a rule (``jp``, ``kobe.jp`` for ``*.kobe.jp``), and for each rule's name the
# three kinds of rule it has (exception, wildcard, exact). Built after _FAST_AFTER look-ups, so
# that a run with a few names does not pay for it.
_tails: frozenset[str] | None = None
_kinds: dict[str, tuple[bool, bool, bool]] = {}
_calls = 0
_FAST_AFTER = 256
_PLAIN_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)+[a-z0-9_-]{1,63}")


def _build_index() -> frozenset[str]:
    global _tails, _kinds
    rules = suffix_rules()
    names = {r.removeprefix("!").removeprefix("*.") for r in rules}
    tails: set[str] = set()
    for name in names:
        labels = name.split(".")
        for i in range(len(labels)):
            tails.add(".".join(labels[i:]))
    _kinds = {n: ("!" + n in rules, "*." + n in rules, n in rules) for n in names}
    _tails = frozenset(tails)
    return _tails


def _count_public(labels: list[str], tails: frozenset[str]) -> int:
    """How many labels at the right of a name are a public suffix (0: none), as
    ``PublicSuffixList._countpublic`` counts them (not accepting unknown top-level domains), but
    walking from the right: a name's tail that no rule ends with ends the walk, and the
    longest tail that is a rule's name decides (exception, then wildcard, then exact)."""
    n = len(labels)
    kinds = _kinds
    best = 0
    verdict: tuple[bool, bool, bool] | None = None
    suffix = ""
    for depth in range(1, n + 1):
        suffix = labels[n - depth] + ("." + suffix if suffix else "")
        if suffix not in tails:
            break
        k = kinds.get(suffix)
        if k is not None and (k[0] or k[1] or k[2]):
            best, verdict = depth, k
    if verdict is None:
        return 0
    if verdict[0]:
        return best - 1
    if verdict[1]:
        return best + 1 if best < n else best
    return best


def registrable_domain_of_many(host: str) -> str | None:
    """:func:`registrable_domain` for long lists of names (``explain``): after the first few
    hundred names, a plain lower-case ASCII name is answered by a walk from its right over the
    suffix list's rules (dictionary look-ups, a few per name); anything else by
    :func:`registrable_domain`. Same answers (tested over generated names and every rule).
    """
    global _calls
    tails = _tails
    if tails is None:
        _calls += 1
        if _calls < _FAST_AFTER:
            return registrable_domain(host)
        tails = _build_index()
    if len(host) > 253 or _PLAIN_NAME.fullmatch(host) is None:
        return registrable_domain(host)
    labels = host.split(".")
    last = labels[-1]
    if last.isdigit() or last == "arpa":
        return None
    count = _count_public(labels, tails)
    if not count or len(labels) < count + 1:
        return None
    return ".".join(labels[-(count + 1):])


def _psl_version() -> str:
    import publicsuffixlist

    version = getattr(publicsuffixlist, "__version__", None)
    if isinstance(version, str):  # the package says it itself: no need for importlib.metadata (60 ms)
        return version
    import importlib.metadata

    try:
        return importlib.metadata.version("publicsuffixlist")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _list_header(path: Path) -> dict[str, str]:
    """The ``// VERSION:`` and ``// COMMIT:`` lines at the top of the bundled list."""
    out: dict[str, str] = {}
    try:
        with path.open(encoding="utf-8") as f:
            for _, line in zip(range(40), f, strict=False):
                m = re.match(r"^//\s*(VERSION|COMMIT):\s*(\S+)", line)
                if m:
                    out[m.group(1)] = m.group(2)
    except OSError:
        pass
    return out


def list_source() -> DataSource:
    """Which public suffix list answers: the package version and the list's own date.

    The date is the list's ``// VERSION:`` header when present, else the date the
    ``publicsuffixlist`` version encodes (``1.1.2.20261023`` -> ``2026-10-23``).
    """
    import publicsuffixlist

    version = _psl_version()
    path = Path(publicsuffixlist.__file__).with_name("public_suffix_list.dat")
    header = _list_header(path) if path.is_file() else {}
    date: str | None = None
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})", header.get("VERSION", ""))
    if m:
        date = "-".join(m.groups())
    else:
        m = re.search(r"(?:^|\.)(\d{4})(\d{2})(\d{2})$", version)
        if m:
            date = "-".join(m.groups())
    list_version = header.get("VERSION")
    detail = f"publicsuffixlist {version}"
    if list_version:
        detail += f", list {list_version}"
    if header.get("COMMIT"):
        detail += f" (commit {header['COMMIT'][:12]})"
    from datareach.schema import DataSource

    return DataSource(
        name="Public Suffix List (ICANN and PRIVATE sections)",
        path=str(path) if path.is_file() else None,
        kind="public-suffix-list",
        version=detail,
        date=date,
        licence="MPL-2.0 (Public Suffix List, publicsuffix.org)",
        note=(
            "Bundled with the publicsuffixlist package, never fetched; unknown TLDs are not public."
        ),
    )
