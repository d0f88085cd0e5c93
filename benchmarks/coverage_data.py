"""Public tracker datasets as (domain, dataset, company, country) rows, for the coverage benchmark.

The datasets are NOT shipped with datareach (most forbid it); bring them with ``fetch`` (the tool
of this project's sessions: bare git mirrors under ``/work/.mirror/<owner>+<name>/repo``) or with
``git clone``::

    git clone https://github.com/duckduckgo/tracker-blocklists
    git clone https://github.com/AdguardTeam/companiesdb
    git clone https://github.com/ghostery/trackerdb
    git clone https://github.com/disconnectme/disconnect-tracking-protection
    git clone https://github.com/sociam/xray
    # Exodus Privacy: a JSON export of https://reports.exodus-privacy.eu.org/api/trackers
    # saved as exodus-trackers.json in DIR, else the 2020 copy bundled in the Warden app:
    git clone https://github.com/whyorean/Warden

``DIR`` may hold either layout: ``DIR/<name>/`` (a checkout) or ``DIR/<owner>+<name>/repo``
(a bare mirror, read with ``git show HEAD:path``).

Countries: Ghostery's organisations and X-Ray's companies carry one; the other datasets do not,
so a company gets the country of a company with the same name key in another dataset, else the
most common country of the companies other datasets give its domains to. An offshore holding
country (KY, VG, BM) yields to a more specific country from another source (ByteDance: KY in
Ghostery, CN in X-Ray and in its own description).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (short dataset name, repository owner, repository name)
REPOS: dict[str, tuple[str, str]] = {
    "tracker-blocklists": ("duckduckgo", "tracker-blocklists"),
    "companiesdb": ("AdguardTeam", "companiesdb"),
    "trackerdb": ("ghostery", "trackerdb"),
    "disconnect-tracking-protection": ("disconnectme", "disconnect-tracking-protection"),
    "xray": ("sociam", "xray"),
    "exodus": ("Exodus-Privacy", "exodus"),
    "warden": ("whyorean", "Warden"),
}

DATASETS = ("ddg-app", "ddg-tds", "adguard", "ghostery", "disconnect", "xray", "exodus")
OFFSHORE = frozenset({"KY", "VG", "BM"})
CN_GROUP = frozenset({"CN", "HK", "MO"})
_CHINA_WORDS = re.compile(r"\b(chin(a|ese)|beijing|shanghai|shenzhen|hangzhou|guangzhou)\b", re.I)
_RUSSIA_WORDS = re.compile(r"\b(russia|russian|moscow|st\.? petersburg)\b", re.I)


@dataclass(frozen=True)
class Row:
    domain: str
    dataset: str
    company: str
    country: str  # "" when unknown
    country_from: str  # "dataset", "name:<dataset>", "domains", "description", ""


class Repo:
    """A dataset repository in DIR: a checkout or a bare mirror."""

    def __init__(self, root: Path, key: str) -> None:
        owner, name = REPOS[key]
        self.checkout: Path | None = None
        self.git_dir: Path | None = None
        for cand in (root / name, root / f"{owner}+{name}"):
            if (cand / ".git").is_dir() or (cand.is_dir() and not (cand / "repo").exists() and any(cand.iterdir())):
                self.checkout = cand
                break
            for g in (cand / "repo", cand / "repo" / ".git"):
                if (g / "HEAD").is_file() and (g / "objects").is_dir():
                    self.git_dir = g
                    break
            if self.git_dir:
                break

    @property
    def present(self) -> bool:
        return self.checkout is not None or self.git_dir is not None

    def read(self, path: str) -> bytes | None:
        if self.checkout is not None:
            p = self.checkout / path
            return p.read_bytes() if p.is_file() else None
        if self.git_dir is not None:
            r = subprocess.run(["git", f"--git-dir={self.git_dir}", "show", f"HEAD:{path}"],
                               capture_output=True, check=False)
            return r.stdout if r.returncode == 0 else None
        return None

    def list(self, prefix: str) -> list[str]:
        if self.checkout is not None:
            base = self.checkout / prefix
            return sorted(str(p.relative_to(self.checkout)) for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        if self.git_dir is not None:
            r = subprocess.run(["git", f"--git-dir={self.git_dir}", "ls-tree", "-r", "--name-only", "HEAD", prefix],
                               capture_output=True, text=True, check=False)
            return r.stdout.split() if r.returncode == 0 else []
        return []

    def commit(self) -> str:
        if self.git_dir is not None:
            args = ["git", f"--git-dir={self.git_dir}"]
        elif self.checkout is not None:
            args = ["git", "-C", str(self.checkout)]
        else:
            return ""
        r = subprocess.run([*args, "log", "-1", "--format=%H %cI"], capture_output=True, text=True, check=False)
        return r.stdout.strip()


def _json(repo: Repo, path: str) -> Any:
    data = repo.read(path)
    return json.loads(data) if data else None


def _clean(domain: object) -> str | None:
    if not isinstance(domain, str):
        return None
    d = domain.strip().lower().rstrip(".")
    if d.startswith("*."):
        d = d[2:]
    if not d or "." not in d or "/" in d or " " in d or d.replace(".", "").isdigit():
        return None
    return d


# --- one reader per dataset: yields (domain, company, country or "", description or "") ---------

Raw = Iterator[tuple[str, str, str, str]]


def read_ddg_app(root: Path) -> Raw:
    obj = _json(Repo(root, "tracker-blocklists"), "app/android-tds.json") or {}
    for dom, t in (obj.get("trackers") or {}).items():
        owner = (t or {}).get("owner") or {}
        d = _clean(dom)
        if d:
            yield d, str(owner.get("name") or ""), "", ""


def read_ddg_tds(root: Path) -> Raw:
    """The web TDS's entity -> domains table (built from Tracker Radar, whose full repository is
    too large to mirror here)."""
    obj = _json(Repo(root, "tracker-blocklists"), "web/v6/extension-tds.json") or {}
    for dom, ent in (obj.get("domains") or {}).items():
        d = _clean(dom)
        if d and isinstance(ent, str):
            yield d, ent, "", ""


def read_adguard(root: Path) -> Raw:
    repo = Repo(root, "companiesdb")
    trackers = _json(repo, "dist/trackers.json") or {}
    companies = (_json(repo, "dist/companies.json") or {}).get("companies") or {}
    tmap = trackers.get("trackers") or {}
    for dom, tid in (trackers.get("trackerDomains") or {}).items():
        t = tmap.get(tid) or {}
        cid = t.get("companyId")
        c = companies.get(cid) or {} if cid else {}
        name = str(c.get("name") or t.get("name") or tid)
        d = _clean(dom)
        if d:
            yield d, name, "", str(c.get("description") or "")


_ENO_FIELD = re.compile(r"^([a-z_]+):\s*(.*)$")


def _eno(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    fields: dict[str, str] = {}
    blocks: dict[str, list[str]] = {}
    cur: str | None = None
    for line in text.splitlines():
        if line.startswith("--- "):
            name = line[4:].strip()
            cur = None if cur == name else name
            if cur:
                blocks.setdefault(cur, [])
            continue
        if cur is not None:
            if line.strip():
                blocks[cur].append(line.strip())
            continue
        m = _ENO_FIELD.match(line)
        if m:
            fields[m.group(1)] = m.group(2).strip()
    return fields, blocks


def read_ghostery(root: Path) -> Raw:
    repo = Repo(root, "trackerdb")
    orgs: dict[str, dict[str, str]] = {}
    for path in repo.list("db/organizations"):
        if path.endswith(".eno"):
            f, _ = _eno((repo.read(path) or b"").decode("utf-8", "replace"))
            orgs[Path(path).stem] = f
    for path in repo.list("db/patterns"):
        if not path.endswith(".eno"):
            continue
        f, blocks = _eno((repo.read(path) or b"").decode("utf-8", "replace"))
        org = orgs.get(f.get("organization", ""))
        name = org.get("name", "") if org else ""
        country = (org.get("country", "") if org else "").upper()
        country = {"UK": "GB"}.get(country, country)
        desc = org.get("description", "") if org else ""
        if not name:
            continue
        for dom in blocks.get("domains", []):
            d = _clean(dom)
            if d:
                yield d, name, country, desc


def read_disconnect(root: Path) -> Raw:
    repo = Repo(root, "disconnect-tracking-protection")
    seen: set[tuple[str, str]] = set()
    ent = _json(repo, "entities.json") or {}
    ent = ent.get("entities", ent)
    for name, rec in ent.items():
        if not isinstance(rec, dict):
            continue
        for dom in [*(rec.get("properties") or []), *(rec.get("resources") or [])]:
            d = _clean(dom)
            if d and (d, name) not in seen:
                seen.add((d, name))
                yield d, name, "", ""
    svc = _json(repo, "services.json") or {}
    for entries in (svc.get("categories") or {}).values():
        for item in entries:
            for name, urls in (item or {}).items():
                for doms in (urls or {}).values():
                    if not isinstance(doms, list):
                        continue
                    for dom in doms:
                        d = _clean(dom)
                        if d and (d, name) not in seen:
                            seen.add((d, name))
                            yield d, name, "", ""


def read_xray(root: Path) -> Raw:
    repo = Repo(root, "xray")
    data = _json(repo, "analysis/companyData/company_data_list_9_4_2018.json") or []
    for rec in data:
        if not isinstance(rec, dict):
            continue
        name = str(rec.get("owner_name") or "")
        country = str(rec.get("country") or "").upper()
        for dom in rec.get("doms") or []:
            d = _clean(dom)
            if d and name:
                country = {"UK": "GB"}.get(country, country)
                yield d, name, country if len(country) == 2 else "", ""


_SIG_HOST = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")


def exodus_domains(signature: str) -> list[str]:
    """Literal host names in an Exodus network signature (a regular expression: ``a\\.com|b\\.net``)."""
    out = []
    for part in signature.split("|"):
        s = part.strip().replace("\\.", ".").lstrip("^").rstrip("$").lstrip(".")
        s = s.split("/")[0]
        if _SIG_HOST.match(s.lower()) and not s.replace(".", "").isdigit():
            out.append(s.lower())
    return out


def read_exodus(root: Path) -> Raw:
    """Exodus Privacy's tracker list: ``DIR/exodus-trackers.json`` (the JSON of
    https://reports.exodus-privacy.eu.org/api/trackers), else the copy bundled in the Warden app
    (github.com/whyorean/Warden, app/src/main/assets/trackers.json, a 2020 snapshot)."""
    p = root / "exodus-trackers.json"
    if p.is_file():
        data: bytes | None = p.read_bytes()
    else:
        data = Repo(root, "warden").read("app/src/main/assets/trackers.json")
    if not data:
        return
    obj = json.loads(data)
    trackers = obj.get("trackers", obj) if isinstance(obj, dict) else {}
    for t in trackers.values():
        if not isinstance(t, dict):
            continue
        name = str(t.get("name") or "")
        for d in exodus_domains(str(t.get("network_signature") or "")):
            yield d, name, "", ""


READERS = {
    "ddg-app": read_ddg_app, "ddg-tds": read_ddg_tds, "adguard": read_adguard, "ghostery": read_ghostery,
    "disconnect": read_disconnect, "xray": read_xray, "exodus": read_exodus,
}


_SUFFIX = re.compile(
    r"\b(inc|incorporated|ltd|limited|llc|corp|corporation|co|company|gmbh|ag|sa|sas|bv|nv|plc|pte|pty|ab|oy|"
    r"spa|srl|kk|group|holdings?|technology|technologies|international|network|networks|the)\b"
)


def name_key(name: str) -> str:
    s = re.sub(r"[^\w]+", " ", name.casefold())
    return " ".join(_SUFFIX.sub(" ", s).split())


def registrable(domain: str) -> str:
    parts = domain.split(".")
    if len(parts) >= 3 and (parts[-2] in {"co", "com", "net", "org", "gov", "edu", "ac", "or", "ne"} and len(parts[-1]) == 2):
        return ".".join(parts[-3:])
    return ".".join(parts[-2:])


def load_rows(root: Path, datasets: tuple[str, ...] = DATASETS) -> list[Row]:
    """Every dataset row, with the company's country filled in where another dataset knows it."""
    raw: list[tuple[str, str, str, str, str]] = []  # domain, dataset, company, country, description
    for ds in datasets:
        for d, company, country, desc in READERS[ds](root):
            if company:
                raw.append((d, ds, company, country, desc))
    # countries known per company name key and per registrable domain
    by_name: dict[str, Counter[str]] = defaultdict(Counter)
    by_dom: dict[str, Counter[str]] = defaultdict(Counter)
    described: dict[tuple[str, str], str] = {}
    for d, ds, company, country, desc in raw:
        if country:
            by_name[name_key(company)][country] += 1
            by_dom[registrable(d)][country] += 1
        if desc:
            described[(ds, company)] = desc

    def pick(counts: Counter[str], avoid: str = "") -> str:
        for c, _ in counts.most_common():
            if c != avoid and c not in OFFSHORE:
                return c
        return ""

    rows: list[Row] = []
    memo: dict[tuple[str, str, str], tuple[str, str]] = {}
    for d, ds, company, country, _desc in raw:
        key = (ds, company, country)
        found = memo.get(key)
        if found is None:
            c, how = country, "dataset" if country else ""
            if not c or c in OFFSHORE:
                other = pick(by_name.get(name_key(company), Counter()), avoid=c)
                if other:
                    c, how = other, "name"
            if not c or c in OFFSHORE:
                text = described.get((ds, company), "")
                if (_CHINA_WORDS.search(text) and not c) or (c in OFFSHORE and _CHINA_WORDS.search(text)):
                    c, how = "CN", "description"
                elif c in OFFSHORE and _RUSSIA_WORDS.search(text):
                    c, how = "RU", "description"
            found = (c, how)
            memo[key] = found
        c, how = found
        if not c:
            other = pick(by_dom.get(registrable(d), Counter()))
            if other:
                c, how = other, "domains"
        rows.append(Row(d, ds, company, c, how))
    return rows
