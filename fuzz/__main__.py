"""``python -m fuzz``: run the harnesses, replay reproducers, list what there is.

    python -m fuzz run [--harness NAME ...] [--cases N [--cases NAME=N ...] | --seconds S] [--seed K]
                       [--crashes DIR] [--engine builtin|atheris]
    python -m fuzz replay [--harness NAME] [FILE ...]      # default: fuzz/regressions/
    python -m fuzz promote --harness NAME FILE [--name NAME]
    python -m fuzz list

``--cases`` and ``--seconds`` are per harness; ``--cases NAME=N`` sets one harness's number (a
campaign gives the fast dissectors more cases than a whole audit). Exit status 1 when anything
was found.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from fuzz.engine import DEFAULT_CRASHES, Finding, Tally
from fuzz.harnesses import all_harnesses
from fuzz.runner import REGRESSIONS, fuzz_harness, regression_files, replay


def _row(t: Tally) -> str:
    kinds = t.kinds()
    rate = t.cases / t.seconds if t.seconds else 0.0
    return (f"{t.harness:<12} {t.cases:>9} {rate:>9.0f} {kinds.get('crash', 0):>6} {kinds.get('memory', 0):>6} "
            f"{kinds.get('timeout', 0):>7} {t.corpus:>6} {t.max_peak / 2**20:>8.1f} {t.slowest:>7.2f}")


_HEAD = (f"{'harness':<12} {'cases':>9} {'cases/s':>9} {'crash':>6} {'memory':>6} {'timeout':>7} {'corpus':>6} "
         f"{'peak MiB':>8} {'slowest':>7}")


def _report(tallies: list[Tally], crashes: Path) -> int:
    print(_HEAD)
    for t in tallies:
        print(_row(t))
    total = sum(t.cases for t in tallies)
    seconds = sum(t.seconds for t in tallies)
    found = [(t, f, n) for t in tallies for f, n in t.findings.values()]
    print(f"{'total':<12} {total:>9} {total / seconds if seconds else 0:>9.0f}   distinct findings: {len(found)}")
    for t, f, n in found:
        print(f"  [{t.harness}] {f.kind} x{n}: {f.summary}")
    saved = [p for t in tallies for p in t.saved]
    if saved:
        print(f"reproducers saved under {crashes}:")
        for p in saved:
            print(f"  {p}")
    return 1 if found else 0


def _case_counts(values: list[str] | None) -> tuple[int | None, dict[str, int]]:
    """``--cases`` values: a bare number is every harness's, ``NAME=N`` one harness's."""
    default: int | None = None
    per: dict[str, int] = {}
    for v in values or ():
        name, eq, n = v.rpartition("=")
        if eq:
            per[name] = int(n)
        else:
            default = int(n)
    if values and default is None:
        default = 1000
    return default, per


def _cmd_run(args: argparse.Namespace) -> int:
    harnesses = all_harnesses()
    names = args.harness or list(harnesses)
    default_cases, per_harness = _case_counts(args.cases)
    unknown = [n for n in per_harness if n not in harnesses]
    if unknown:
        print(f"unknown harness(es) in --cases: {', '.join(unknown)}", file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in harnesses]
    if unknown:
        print(f"unknown harness(es): {', '.join(unknown)} (python -m fuzz list)", file=sys.stderr)
        return 2
    crashes = Path(args.crashes)
    if args.engine == "atheris":
        from fuzz.atheris_engine import run_atheris

        ran = [run_atheris(n, seconds=args.seconds, cases=per_harness.get(n, default_cases), seed=args.seed,
                           crashes=crashes) for n in names]
        return _report([t for t in ran if t is not None], crashes)
    tallies: list[Tally] = []
    for name in names:
        h = harnesses[name]
        why = h.unavailable()
        if why is not None:
            print(f"{name}: skipped: {why}", file=sys.stderr)
            continue

        def show(f: Finding, first: bool) -> None:
            if first and not args.quiet:
                print(f"  [{f.harness}] {f.kind}: {f.summary}", file=sys.stderr, flush=True)

        started = time.strftime("%H:%M:%S")
        if not args.quiet:
            print(f"{started} {name}: {h.doc}", file=sys.stderr, flush=True)
        cases = per_harness.get(name, default_cases)
        tally = fuzz_harness(h, cases=cases, seconds=args.seconds, seed=args.seed, crashes=crashes,
                             memory_every=0 if args.no_memory else args.memory_every, on_finding=show)
        tallies.append(tally)
        if not args.quiet:
            print("  " + _row(tally), file=sys.stderr, flush=True)
    return _report(tallies, crashes)


def _cmd_replay(args: argparse.Namespace) -> int:
    harnesses = all_harnesses()
    if args.files:
        if not args.harness:
            print("replaying files needs --harness", file=sys.stderr)
            return 2
        groups = {args.harness: [Path(f) for f in args.files]}
    else:
        groups = {}
        for name, path in regression_files(args.harness):
            groups.setdefault(name, []).append(path)
    bad = 0
    for name, paths in groups.items():
        h = harnesses.get(name)
        if h is None:
            print(f"{name}: no such harness", file=sys.stderr)
            bad += 1
            continue
        why = h.unavailable()
        if why is not None:
            print(f"{name}: skipped: {why}")
            continue
        for path, finding in replay(h, paths, measure=not args.no_memory):
            status = "ok" if finding is None else f"{finding.kind}: {finding.summary}"
            print(f"{name:<12} {path.name}: {status}")
            if finding is not None:
                bad += 1
                if args.verbose and finding.detail:
                    print(finding.detail)
    return 1 if bad else 0


def _cmd_promote(args: argparse.Namespace) -> int:
    src = Path(args.file)
    dest_dir = REGRESSIONS / args.harness
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / (args.name or src.name)
    shutil.copyfile(src, dest)
    note = src.with_suffix(".txt")
    if note.exists() and dest.suffix != ".txt":
        shutil.copyfile(note, dest.with_suffix(".txt"))
    print(dest)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for name, h in all_harnesses().items():
        why = h.unavailable()
        print(f"{name:<12} {h.doc}" + (f" [unavailable: {why}]" if why else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n", 1)[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="fuzz harnesses")
    r.add_argument("--harness", action="append", help="a harness to run (repeatable; default: all)")
    amount = r.add_mutually_exclusive_group()
    amount.add_argument("--cases", action="append", metavar="N|NAME=N",
                        help="cases per harness (default 1000); NAME=N for one harness (repeatable)")
    amount.add_argument("--seconds", type=float, help="seconds per harness")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--crashes", default=str(DEFAULT_CRASHES), help=f"where findings go (default {DEFAULT_CRASHES})")
    r.add_argument("--engine", choices=("builtin", "atheris"), default="builtin",
                   help="builtin: the home-grown mutator; atheris: libFuzzer, coverage-guided (pip install atheris)")
    r.add_argument("--memory-every", type=int, default=1, metavar="N",
                   help="run every N-th case under tracemalloc (default 1: all; the resident set of every "
                        "case is checked anyway)")
    r.add_argument("--no-memory", action="store_true", help="no case under tracemalloc (faster)")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=_cmd_run)
    rp = sub.add_parser("replay", help="run reproducers (default: fuzz/regressions/)")
    rp.add_argument("--harness")
    rp.add_argument("files", nargs="*")
    rp.add_argument("--no-memory", action="store_true")
    rp.add_argument("-v", "--verbose", action="store_true")
    rp.set_defaults(func=_cmd_replay)
    pr = sub.add_parser("promote", help="keep a reproducer as a regression (fuzz/regressions/HARNESS/)")
    pr.add_argument("--harness", required=True)
    pr.add_argument("--name")
    pr.add_argument("file")
    pr.set_defaults(func=_cmd_promote)
    ls = sub.add_parser("list", help="the harnesses")
    ls.set_defaults(func=_cmd_list)
    args = p.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
