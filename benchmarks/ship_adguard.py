"""Rebuild the shipped AdGuard companiesdb dataset (src/datareach/kb/data/datasets/adguard-companiesdb/).

    PYTHONPATH=src python benchmarks/ship_adguard.py DIR

DIR: a checkout of https://github.com/AdguardTeam/companiesdb (or the ``fetch`` tool's bare
mirror ``.../AdguardTeam+companiesdb/repo``). The dataset is CC BY-SA 4.0: it ships as a
separately licensed file with its LICENSE and a README naming the commit; only company names
and their tracker domains are kept.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "datareach" / "kb" / "data" / "datasets" / "adguard-companiesdb"


def _git(git_dir: Path | None, cwd: Path | None, *args: str) -> str:
    base = ["git", f"--git-dir={git_dir}"] if git_dir else ["git", "-C", str(cwd)]
    return subprocess.run([*base, *args], capture_output=True, text=True, check=True).stdout


def main(argv: list[str]) -> int:
    from datareach.kb.importers import build_adguard_companiesdb

    src = Path(argv[0])
    bare = (src / "HEAD").is_file() and (src / "objects").is_dir()
    commit, date = _git(src if bare else None, None if bare else src, "log", "-1", "--format=%H %cI").split()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("dist/trackers.json", "dist/companies.json", "LICENSE"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            data = subprocess.run(
                ["git", f"--git-dir={src}", "show", f"HEAD:{name}"] if bare else ["cat", str(src / name)],
                capture_output=True, check=True).stdout
            (root / name).write_bytes(data)
        ds = build_adguard_companiesdb(root, save=False)
        licence = (root / "LICENSE").read_text("utf-8")
    ds = dataclasses.replace(ds, file=f"AdguardTeam/companiesdb@{commit[:12]}", imported_at=f"{date[:10]}T00:00:00Z")
    doc = ds.to_json()
    OUT.mkdir(parents=True, exist_ok=True)
    entities = doc.pop("entities")
    head = json.dumps(doc, ensure_ascii=False)[:-1]
    lines = ",\n".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in entities)
    (OUT / "dataset.json").write_text(f'{head}, "entities": [\n{lines}\n]}}\n', "utf-8")
    (OUT / "LICENSE").write_text(licence, "utf-8")
    (OUT / "README.md").write_text(f"""# AdGuard companiesdb (shipped extract)

- Source: https://github.com/AdguardTeam/companiesdb, files `dist/trackers.json` (tracker domains)
  and `dist/companies.json` (company names), commit {commit}, of {date}
  (the data's own `timeUpdated`: {ds.dataset_date}).
- Licence: Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0), the text in
  `LICENSE` beside this file. This extract is licensed under the same licence; it is not covered
  by datareach's own licence.
- Credit: AdGuard Software Ltd. and the contributors of AdguardTeam/companiesdb; their database
  was first built on the WhoTracks.me (Cliqz/Ghostery) tracker database.
- Changes: only company names and their tracker domains are kept, in datareach's import format
  (`datareach/kb/store.py`); descriptions, URLs and categories are left out. Trackers without a
  company are listed under the tracker's name.
- Use: loaded at first use like `datareach kb import adguard-companiesdb`, yielding to curated
  records; its companies are mapped to knowledge-base entities by `../../mappings/*.toml`.
- Rebuild: `PYTHONPATH=src python benchmarks/ship_adguard.py <checkout of AdguardTeam/companiesdb>`.
""", "utf-8")
    print(f"{OUT}: {len(entities)} companies, {sum(len(e['domains']) for e in entities)} domains, commit {commit[:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
