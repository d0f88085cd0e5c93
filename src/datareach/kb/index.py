"""The compiled knowledge base: the curated TOML files plus the user's imports, as look-up tables.

:func:`knowledge_base` returns the process-wide :class:`KnowledgeBase`. The first run compiles
the TOML files (:mod:`.load`) and the imported datasets (:mod:`.store`) into plain dicts and
keeps them, marshalled, in the user's cache directory (:mod:`datareach.cache`); later runs load
that file in a few milliseconds. The cache key is every source file's path, size and mtime, so
editing a file or importing a dataset recompiles.

Conflicts between curated and imported records: curated records win (a domain the curated KB
gives to one owner keeps that owner), unless the dataset was imported with ``prefer``; the
number of domains each import lost or won is reported by ``kb status``.
"""

from __future__ import annotations

import marshal
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach import cache
from datareach.kb.load import KBError, RawKB, data_files, is_domain, read_kb

if TYPE_CHECKING:
    from datareach.schema import DataSource

__all__ = ["DATA_DIR", "KnowledgeBase", "knowledge_base", "reset"]

DATA_DIR = Path(__file__).parent / "data"
_FORMAT = 9  # bump when the compiled layout changes (6: shipped datasets, company mappings; 7: platforms; 8: services; 9: tenants of curated platforms)
_LEGAL_SUFFIX = re.compile(
    r"\b(inc|incorporated|ltd|limited|llc|l\.l\.c|corp|corporation|co|company|gmbh|ag|sa|s\.a|sas|bv|b\.v|nv|n\.v|plc|"
    r"pte|pty|ab|oy|as|spa|srl|kk|group|holdings?|technology|technologies)\b\.?"
)


def name_key(name: str) -> str:
    """A company name reduced for matching: case, punctuation and legal suffixes dropped."""
    s = _LEGAL_SUFFIX.sub(" ", name.casefold())
    return " ".join(re.sub(r"[^\w]+", " ", s).split())


class KnowledgeBase:
    """Look-ups over the compiled knowledge base. Build with :func:`knowledge_base`."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.entities: dict[str, dict[str, Any]] = data["entities"]
        self.domains: dict[str, str] = data["domains"]
        self.domain_origin: dict[str, str] = data["domain_origin"]
        self.as_numbers: dict[int, str] = data["as_numbers"]
        self.as_names: dict[str, str] = data["as_names"]
        self.jurisdictions: dict[str, dict[str, Any]] = data["jurisdictions"]
        self.lists: dict[str, dict[str, Any]] = data["lists"]
        self.sources: dict[str, dict[str, Any]] = data["sources"]
        self.imports: list[dict[str, Any]] = data["imports"]
        #: the datasets shipped with datareach (``data/datasets/``), in the shape of ``imports``
        self.shipped: list[dict[str, Any]] = data.get("shipped", [])
        self.meta: dict[str, Any] = data["meta"]
        self.mmdb_paths: list[str] = data["mmdb_paths"]
        # the longest name in the table bounds how many labels a look-up tries
        self._max_labels: int = data["max_labels"]
        #: KB domains that are registrable domains with no public suffix below them: every name
        #: under such a domain has it as its registrable domain (saves a suffix-list look-up)
        self.registrable: frozenset[str] = frozenset(data["registrable"])
        #: shared platforms by suffix (:func:`_platforms`)
        self.platforms: dict[str, dict[str, Any]] = data["platforms"]
        self._platform_labels: int = data["platform_labels"]
        #: the last two labels of every platform suffix: a name whose last two are not here is
        #: below none
        self._platform_tails: frozenset[str] = frozenset(".".join(d.split(".")[-2:]) for d in self.platforms)
        #: KB domains that are whole top-level domains (brand TLDs such as ``yandex``)
        self._tld_domains: frozenset[str] = frozenset(d for d in self.domains if "." not in d)
        #: ``[[service]]`` records by id, and their domains (suffix match: :meth:`service_of_name`)
        self.services: dict[str, dict[str, Any]] = data["services"]
        self.service_domains: dict[str, str] = data["service_domains"]
        #: every tail of a service domain (``crashlytics.com`` and ``firebase-settings.crashlytics.com``
        #: for the latter): a name whose tail is not here is under no service domain
        self.service_tails: frozenset[str] = frozenset(data["service_tails"])
        #: what the cache directory keys this knowledge base by (None: not from the cache's key)
        self.cache_key: str | None = None

    def owner_of_name(self, host: str) -> tuple[str, str] | None:
        """(entity id, the KB domain that matched) for a host name, most specific first."""
        domains = self.domains
        hit = domains.get(host)
        if hit is not None:
            return hit, host
        labels = host.split(".")
        n = len(labels)
        for i in range(max(1, n - self._max_labels), n - 1):
            suffix = ".".join(labels[i:])
            hit = domains.get(suffix)
            if hit is not None:
                return hit, suffix
        # least specific: a brand top-level domain (``yandex``) that is itself a KB domain
        if n > 1 and labels[-1] in self._tld_domains:
            return domains[labels[-1]], labels[-1]
        return None

    def platform_of(self, host: str) -> tuple[str, dict[str, Any]] | None:
        """(suffix, platform) when ``host`` is a name strictly *below* a shared platform's
        suffix (a tenant's service), the most specific suffix first; None otherwise."""
        platforms = self.platforms
        dot = host.rfind(".", 0, host.rfind("."))
        if host[dot + 1:] not in self._platform_tails:  # (most names: one look-up, nothing below a platform)
            return None
        suffix = platform_suffix(platforms, host, self._platform_labels)
        return None if suffix is None else (suffix, platforms[suffix])

    def service_of_name(self, host: str) -> tuple[str, str] | None:
        """(service id, the service domain that matched) for a host name, the most specific
        service domain first. A suffix walk over dictionaries, from the host's last two labels
        up, that stops at the first tail no service domain has (most names: one look-up)."""
        tails = self.service_tails
        rest, dot, last = host.rpartition(".")
        if not dot or rest.rpartition(".")[2] + dot + last not in tails:
            return None  # (most names: their last two labels are no service domain's tail)
        labels = host.split(".")
        n = len(labels)
        found: tuple[str, str] | None = None
        domains = self.service_domains
        suffix = labels[-1]
        for i in range(n - 2, -1, -1):
            suffix = f"{labels[i]}.{suffix}"
            if suffix not in tails:
                break
            hit = domains.get(suffix)
            if hit is not None:
                found = (hit, suffix)
        return found

    def service_possible(self, domain: str) -> bool:
        """Whether a name under ``domain`` (a knowledge-base domain an owner was matched by) can
        be a service's: a service domain is ``domain``, above it or below it."""
        return domain in self.service_tails or self.service_of_name(domain) is not None

    def owner_of_as(self, asn: int | None, as_org: str | None) -> tuple[str, str] | None:
        """(entity id, "AS<n>" or the AS organisation name) for a server's autonomous system."""
        if asn is not None:
            hit = self.as_numbers.get(asn)
            if hit is not None:
                return hit, f"AS{asn}"
        if as_org:
            hit = self.as_names.get(as_org.casefold())
            if hit is not None:
                return hit, as_org
        return None

    def source_urls(self, ids: Iterable[str]) -> list[str]:
        return [self.sources[s]["url"] for s in ids if s in self.sources]

    def cite(self, refs: Iterable[str]) -> list[str]:
        """URLs for references that are knowledge-base source ids or URLs (kept as given)."""
        return [self.sources[r]["url"] if r in self.sources else r for r in refs]

    def counts(self) -> dict[str, int]:
        return dict(self.meta["counts"])

    def data_sources(self) -> list[dict[str, Any]]:
        """``data_sources`` entries (audit JSON) for the knowledge base and each imported dataset."""
        from datareach._version import __version__
        from datareach.schema import DataSource

        counts = self.counts()
        as_of = self.meta.get("as_of")
        out: list[DataSource] = [DataSource(
            name="datareach knowledge base",
            kind="knowledge-base",
            path=None,
            version=__version__,
            date=as_of[1] if as_of else None,
            licence="Apache-2.0 (curated records; each cites its sources)",
            note=(f"{counts['entities']} entities, {counts['domains']} domains, "
                  f"{counts['autonomous_systems']} AS numbers, {counts['jurisdictions']} jurisdictions, "
                  f"{counts['laws']} laws, {counts.get('services', 0)} SDK and product services; "
                  f"records checked {as_of[0]} to {as_of[1]}" if as_of else None),
        )]
        for imp in [*self.shipped, *self.imports]:
            if imp.get("shipped"):
                out.append(DataSource(
                    name=f"shipped dataset {imp['kind']}: {imp['file']}",
                    kind="kb-dataset",
                    path=None,
                    version=imp["sha256"][:16],
                    date=imp["dataset_date"] or imp["imported_at"][:10],
                    licence=imp["licence_note"],
                    note=f"shipped with datareach as a separately licensed file; yields to curated records; "
                         f"{imp.get('companies_mapped', 0)} companies mapped to curated entities",
                ))
                continue
            out.append(DataSource(
                name=f"imported {imp['kind']}: {imp['file']}",
                kind="kb-import",
                path=None,
                version=imp["sha256"][:16],
                date=imp["dataset_date"] or imp["imported_at"][:10],
                licence=imp["licence_note"],
                note=f"imported {imp['imported_at']}; {'wins' if imp['prefer'] else 'yields to'} curated records",
            ))
        return [s.to_json() for s in out]


def _compile(raw: RawKB, imports: Sequence[Any], company_map: Any = None, shipped: Sequence[Any] = ()) -> dict[str, Any]:
    """Plain, marshal-able dicts from checked records, shipped datasets (``shipped``, which come
    first) and imported datasets; ``company_map`` (:class:`~datareach.kb.mappings.CompanyMap`)
    maps the datasets' companies to entities."""
    from datareach.kb.mappings import resolve_company

    entities: dict[str, dict[str, Any]] = {}
    domains: dict[str, str] = {}
    origin: dict[str, str] = {}
    for eid, rec in raw.entities.items():
        entities[eid] = {
            "id": eid,
            "name": rec["name"],
            "aliases": list(rec.get("aliases", [])),
            "kind": rec.get("kind", "company"),
            "hq": rec["hq"],
            "incorporated": rec.get("incorporated"),
            "operates_in": list(rec.get("operates_in", [])),
            "roles": list(rec.get("roles", [])),
            "parents": [
                {
                    "entity": p["entity"], "share": float(p["share"]) if "share" in p else None,
                    "control": p["control"], "since": p.get("since"), "until": p.get("until"),
                    "sources": list(p["sources"]), "note": p.get("note"),
                }
                for p in rec.get("parent", [])
            ],
            "listings": [
                {"list": li["list"], "since": li.get("since"), "until": li.get("until"),
                 "sources": list(li["sources"]), "note": li.get("note")}
                for li in rec.get("listing", [])
            ],
            "sources": list(rec["sources"]),
            "as_of": rec["as_of"],
            "unverified": rec.get("unverified"),
            "origin": "curated",
        }
        for d in rec.get("domains", []):
            domains[d] = eid
            origin[d] = "curated"
    as_numbers: dict[int, str] = {}
    as_names: dict[str, str] = {}
    for a in raw.autonomous_systems:
        for n in a.get("numbers", []):
            as_numbers[n] = a["entity"]
        for name in a.get("names", []):
            as_names[name.casefold()] = a["entity"]
        entities[a["entity"]].setdefault("as_sources", []).extend(a["sources"])

    platforms = _platforms(raw, domains)
    by_name: dict[str, str] = {}
    for eid, e in entities.items():
        for n in [e["name"], *e["aliases"]]:
            by_name.setdefault(name_key(n), eid)
    sources = dict(raw.sources)
    import_docs: list[dict[str, Any]] = []
    shipped_docs: list[dict[str, Any]] = []
    mmdb_paths: list[str] = []
    shipped_ids = {ds.id for ds in shipped}
    for ds in [*shipped, *imports]:
        is_shipped = ds.id in shipped_ids
        tag = "shipped" if is_shipped else "import"
        sid = f"{tag}-{ds.id}"
        sources[sid] = {
            "url": f"file:{ds.file}",
            "title": f"{ds.kind} dataset {'shipped with datareach' if is_shipped else 'imported by the user'} ({ds.file})",
            "seen": ds.imported_at[:10], "licence": ds.licence_note, "note": f"sha256 {ds.sha256}",
        }
        won = lost = added = mapped = no_country = under_curated = 0
        local: dict[str, str] = {}
        pending_parents: list[tuple[str, str]] = []
        for item in ds.entities:
            name = str(item.get("name") or "")
            given = item.get("entity_id")
            found: str | None = given if isinstance(given, str) and given in entities else None
            rule = resolve_company(company_map, ds.kind, name, [str(a) for a in item.get("aliases") or []])
            if found is None and rule is not None and rule.entity in entities:
                found = rule.entity
                mapped += 1
            if found is None:
                found = by_name.get(name_key(name)) or local.get(name_key(name))
            if found is not None:
                eid = found
            else:
                slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:40] or "entity"
                eid = f"{tag}-{ds.id}-{slug}"
                n = 2
                while eid in entities:
                    eid, n = f"{tag}-{ds.id}-{slug}-{n}", n + 1
                country = item.get("country") or (rule.country if rule is not None else None)
                if not (isinstance(country, str) and len(country) == 2):
                    no_country += 1
                entities[eid] = {
                    "id": eid, "name": name or eid, "aliases": list(item.get("aliases") or []), "kind": "company",
                    "hq": country if isinstance(country, str) and len(country) == 2 else None,
                    "incorporated": None, "operates_in": [], "roles": [], "parents": [], "listings": [],
                    "sources": [sid], "as_of": (ds.dataset_date or ds.imported_at[:10]), "unverified":
                    "from an imported dataset: owner country and parents as the dataset gives them",
                    "origin": f"{tag}:{ds.id}",
                }
                local[name_key(name)] = eid
                for alias in item.get("aliases") or []:
                    local.setdefault(name_key(str(alias)), eid)
                added += 1
            if item.get("parent"):
                pending_parents.append((eid, str(item["parent"])))
            for d in item.get("domains") or []:
                if not is_domain(d):
                    continue
                if is_shipped and _under_curated(domains, origin, d, platforms):
                    under_curated += 1
                    continue
                current = domains.get(d)
                if current is None or (ds.prefer and current != eid):
                    if current is not None:
                        won += 1
                    domains[d] = eid
                    origin[d] = f"{tag}:{ds.id}"
                elif current != eid:
                    lost += 1
        for eid, parent_name in pending_parents:
            pid = local.get(name_key(parent_name)) or by_name.get(name_key(parent_name))
            if pid and pid != eid and entities[eid]["origin"] != "curated" and not entities[eid]["parents"]:
                entities[eid]["parents"].append({
                    "entity": pid, "share": None, "control": "controlling", "since": None, "until": None,
                    "sources": [sid], "note": "parent as named by the imported dataset",
                })
        if ds.mmdb:
            mmdb_paths.append(str(ds.mmdb_path))
        (shipped_docs if is_shipped else import_docs).append({
            "id": ds.id, "kind": ds.kind, "file": ds.file, "sha256": ds.sha256, "imported_at": ds.imported_at,
            "dataset_date": ds.dataset_date, "licence_note": ds.licence_note, "prefer": ds.prefer,
            "entities_added": added, "domains_lost_to_curated": lost, "domains_won_over_curated": won,
            "counts": dict(ds.counts), "shipped": is_shipped, "companies_mapped": mapped,
            "entities_without_country": no_country, "domains_under_curated": under_curated,
        })
    _break_import_cycles(entities)
    services, service_domains = _compile_services(raw)
    curated_domains = sum(1 for o in origin.values() if o == "curated")
    as_of = sorted(e["as_of"] for e in entities.values() if e["origin"] == "curated")
    return {
        "entities": entities,
        "domains": domains,
        "domain_origin": origin,
        "as_numbers": as_numbers,
        "as_names": as_names,
        "jurisdictions": raw.jurisdictions,
        "lists": raw.lists,
        "sources": sources,
        "imports": import_docs,
        "shipped": shipped_docs,
        "mmdb_paths": mmdb_paths,
        "max_labels": max((d.count(".") + 1 for d in domains), default=2),
        "platforms": platforms,
        "platform_labels": max((d.count(".") + 1 for d in platforms), default=2),
        "registrable": _registrable_kb_domains(domains),
        "services": services,
        "service_domains": service_domains,
        "service_tails": sorted({".".join(d.split(".")[i:]) for d in service_domains
                                 for i in range(d.count("."))}),
        "meta": {
            "counts": {
                "entities": sum(1 for e in entities.values() if e["origin"] == "curated"),
                "domains": curated_domains,
                "autonomous_systems": len(as_numbers),
                "as_names": len(as_names),
                "jurisdictions": len(raw.jurisdictions),
                "laws": sum(len(j["law"]) for j in raw.jurisdictions.values()),
                "lists": len(raw.lists),
                "services": len(services),
                "service_domains": len(service_domains),
                "sources": len(raw.sources),
                "imported_entities": sum(1 for e in entities.values() if e["origin"] != "curated"),
                "imported_domains": len(domains) - curated_domains,
                "imported_without_country": sum(1 for e in entities.values() if e["origin"] != "curated" and not e["hq"]),
                "company_mappings": len(company_map) if company_map is not None else 0,
            },
            "as_of": [as_of[0], as_of[-1]] if as_of else None,
        },
    }


def platform_suffix(platforms: Mapping[str, Any], host: str, max_labels: int | None = None) -> str | None:
    """The most specific suffix of ``platforms`` that ``host`` is strictly below (a tenant's name
    under a shared platform), or None. ``max_labels``: the longest suffix's label count, if known."""
    labels = host.split(".")
    n = len(labels)
    for i in range(1 if max_labels is None else max(1, n - max_labels), n - 1):
        suffix = ".".join(labels[i:])
        if suffix in platforms:
            return suffix
    return None


def _platforms(raw: RawKB, domains: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Shared platforms by suffix: names *below* one are a tenant's service, which the platform's
    operator hosts (``host`` evidence) but does not own.

    From the public suffix list's PRIVATE section (the suffixes companies declare for names they
    give to other people: ``cloudfront.net``, ``appspot.com``, ``herokuapp.com`` ...; the operator
    is the knowledge-base entity of the suffix's domain, and the list's own name for it) and from
    the curated ``[[platform]]`` records, which add what the list lacks (``amazonaws.com``,
    ``firebaseio.com``, ``aliyuncs.com``, CDN CNAME targets ...) and take out, with
    ``tenants = false``, suffixes whose names are the operator's own services
    (``googleapis.com``)."""
    from datareach.kb import psl

    out: dict[str, dict[str, Any]] = {}
    for suffix, org in psl.private_suffixes().items():
        entity = _domain_owner(domains, suffix)
        out[suffix] = {"name": org, "entity": entity, "origin": "public-suffix-list", "kind": None}
    for rec in raw.platforms:
        for d in rec["domains"]:
            if rec.get("tenants", True) is False:
                out.pop(d, None)
                continue
            out[d] = {"name": rec["name"], "entity": rec["entity"], "origin": "curated",
                      "kind": rec.get("kind", "hosting"), "sources": list(rec["sources"])}
    return out


def _domain_owner(domains: Mapping[str, str], name: str) -> str | None:
    labels = name.split(".")
    for i in range(len(labels) - 1):
        hit = domains.get(".".join(labels[i:]))
        if hit is not None:
            return hit
    return None


def _under_curated(domains: Mapping[str, str], origin: Mapping[str, str], name: str,
                   platforms: Mapping[str, Any] | None = None) -> bool:
    """``name`` is below a curated domain that holds its registrable domain: the curated record
    decides that name (a shipped dataset may add a tenant's name below a shared platform's
    suffix, such as ``d1234.cloudfront.net`` or, for a curated ``[[platform]]`` whose suffix is
    also the operator's domain, ``app.onelink.me``; not a name inside a company's own domain)."""
    from datareach.kb import psl

    labels = name.split(".")
    for i in range(1, len(labels) - 1):
        parent = ".".join(labels[i:])
        if platforms and parent in platforms:
            return False  # a tenant below a shared platform: the dataset may name its owner
        if parent in domains and origin.get(parent) == "curated":
            reg = psl.registrable_domain(name)
            return reg is None or not reg.endswith("." + parent)
    return False


def _compile_services(raw: RawKB) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The ``[[service]]`` records as plain dicts (sources as URLs), and their domains -> id."""
    services: dict[str, dict[str, Any]] = {}
    by_domain: dict[str, str] = {}
    for sid, rec in raw.services.items():
        services[sid] = {
            "id": sid, "name": rec["name"], "vendor": rec["vendor"], "purpose": rec["purpose"],
            "purposes": list(dict.fromkeys([rec["purpose"], *rec.get("also", [])])),
            "domains": list(rec["domains"]),
            "sources": [raw.sources[s]["url"] for s in rec["sources"] if s in raw.sources],
            "as_of": rec["as_of"], "unverified": rec.get("unverified"),
        }
        for d in rec["domains"]:
            by_domain[d] = sid
    return services, by_domain


def _registrable_kb_domains(domains: Iterable[str]) -> list[str]:
    from datareach.kb import psl

    rules = psl.suffix_rules()
    below: set[str] = set()
    for rule in rules:
        labels = rule.lstrip("!").removeprefix("*.").split(".")
        for i in range(1, len(labels)):
            below.add(".".join(labels[i:]))
    return sorted(d for d in domains if d not in below and psl.registrable_domain(d) == d)


def _break_import_cycles(entities: dict[str, dict[str, Any]]) -> None:
    """Parents named by imports may loop (A's parent B, B's parent A): drop the closing edge."""
    for eid, e in entities.items():
        if e["origin"] == "curated" or not e["parents"]:
            continue
        seen, cur = {eid}, e["parents"][0]["entity"]
        while cur is not None:
            if cur in seen:
                e["parents"] = []
                break
            seen.add(cur)
            ps = entities[cur]["parents"]
            cur = ps[0]["entity"] if ps else None


_lock = threading.Lock()
_loaded: dict[str, KnowledgeBase] = {}


def _imports() -> list[Any]:
    from datareach.kb import store

    return list(store.list_imports())


def _imports_key() -> list[list[object]]:
    from datareach.kb import store

    folder = store.data_dir() / "imports"
    try:
        return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in folder.iterdir())
    except OSError:
        return []


def knowledge_base(root: Path | None = None, *, use_imports: bool = True, use_cache: bool = True) -> KnowledgeBase:
    """The knowledge base (compiled once per process and kept in the cache directory).

    ``root``: a directory of KB files instead of the shipped one (for tests and for checking a
    contribution). Raises :class:`~datareach.kb.load.KBError` when a file is malformed.
    """
    base = root or DATA_DIR
    from datareach.kb import mappings

    files = [*data_files(base), *mappings.mapping_files(base), *mappings.dataset_files(base)]
    from datareach.kb.psl import psl_version

    key = {
        "format": _FORMAT,
        "psl": psl_version(),
        "files": [cache.source_key(p) for p in files],
        "imports": _imports_key() if use_imports else None,
    }
    memo = repr(key)
    with _lock:
        hit = _loaded.get(memo)
        if hit is not None:
            return hit
        path = cache.cache_path("knowledge-base", key)
        data = None
        if use_cache:
            cached = cache.load(path, key)
            if cached is not None:
                try:
                    data = marshal.loads(cached.section("kb"))
                except (ValueError, EOFError, TypeError, KeyError):
                    data = None
        if data is None:
            raw = read_kb(base)
            company_map = mappings.read_mappings(base, raw.entities)
            data = _compile(raw, _imports() if use_imports else [], company_map, mappings.shipped_datasets(base))
            if use_cache:
                cache.store(path, key, {"kb": (marshal.dumps(data), None, None)})
        kb = KnowledgeBase(data)
        kb.cache_key = memo if use_cache else None
        _loaded[memo] = kb
        return kb


def reset() -> None:
    """Forget the knowledge bases loaded in this process (after an import, in tests)."""
    with _lock:
        _loaded.clear()


__all__ += ["KBError", "name_key"]
