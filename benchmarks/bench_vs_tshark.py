"""datareach against tshark on the two benchmark mixes: wall time, CPU time and peak tree memory.

    python benchmarks/bench_vs_tshark.py [--size-mb 300] [--runs 5] [--large-mb 3000] [--conns 1000000]
                                         [--capture-dir benchmarks/out] [--other DATAREACH] [--json OUT]

1. For each mix of ``benchmarks/generate_capture.py`` (``web``: the first mix, TLS-heavy; ``hard``:
   request-heavy plain HTTP with identifiers in many encodings, DNS answers that rarely repeat,
   many short connections), a capture of ``--size-mb`` MB is generated once (seed 1) and cached
   in ``--capture-dir`` as ``MIX-SIZE.pcap``. After one unmeasured warm-up of each command,
   ``--runs`` rounds run ``datareach audit FILE --format json -o OUT`` and ``tshark -r FILE -T
   fields -e ip.dst -e tls.handshake.extensions_server_name -e dns.qry.name -e http.host``, the
   order reversed every other round (datareach, tshark / tshark, datareach ...). Printed per mix:
   the median wall time of each with its range, the median of the per-round ratios (tshark wall /
   datareach wall) with their range, CPU seconds (user + sys of the whole process tree, from
   ``os.wait4``), and peak memory of the whole process tree (the sum of VmRSS over the tree,
   sampled every 20 ms from /proc), median and max.
2. ``--large-mb`` (default 3000; 0 skips it): the hard mix at that size, datareach only (tshark
   takes minutes there), ``--large-runs`` times: median wall, MB/s, CPU, peak tree memory and the
   linearity (wall time per MB at the large size) / (wall time per MB at ``--size-mb``).
   ``--mixes web,hard,hard-issue`` adds the hard mix's ``--shape issue`` (fewer, larger requests:
   the counts of issue 16's independent generator).
3. ``--conns`` (default 1,000,000; 0 skips it): a capture of that many short TCP connections
   (``--mix conns``), datareach only: peak tree memory.

With ``--other DATAREACH`` (a command: another checkout's ``.venv/bin/datareach``, or e.g.
``"env PYTHONPATH=/other/src python -m datareach"``), that command runs in every round too,
before and after a change in the same run. The machine is usually shared: only the ratios and
the CPU times within one run of this script mean something, and the medians, never the best run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TSHARK_FIELDS = ["ip.dst", "tls.handshake.extensions_server_name", "dns.qry.name", "http.host"]
SEED = 1


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + sys seconds of the process tree
    peak_kib: int  # peak of the summed resident memory of the tree


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def run(cmd: list[str]) -> Run:
    """Wall time, CPU time of the tree (children the command waited for included) and peak tree RSS."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.DEVNULL)
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed with exit status {proc.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, max(peak, usage.ru_maxrss))


def capture(directory: Path, mix: str, size_mb: int | None = None, connections: int | None = None) -> Path:
    """The cached capture of a mix, generated (seed 1, written to .tmp then renamed) if missing."""
    if mix == "conns":
        assert connections is not None
        label = f"{connections // 1_000_000}m" if connections % 1_000_000 == 0 else str(connections)
        path = directory / f"conns-{label}.pcap"
        extra = ["--connections", str(connections)]
    elif mix == "hard-issue":  # the hard mix at issue 16's independent generator's counts
        path = directory / f"{mix}-{size_mb}.pcap"
        mix, extra = "hard", ["--shape", "issue", "--size-mb", str(size_mb)]
    else:
        path = directory / f"{mix}-{size_mb}.pcap"
        extra = ["--size-mb", str(size_mb)]
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(HERE / "generate_capture.py"), "--mix", mix, *extra, "--seed", str(SEED),
               "--out", str(path)]
        print(f"generating {path}: {shlex.join(cmd)}", flush=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"),
                                                                      os.environ.get("PYTHONPATH")) if p)}
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return path


def span(values: list[float], fmt: str = ".2f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def machine() -> list[str]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return [f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, {mem} RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
            f"load average at start: {load} (other work on the machine makes every wall time noisy)"]


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.splitlines()[0].strip() if out.strip() else "?"


def git_head(cmd: list[str]) -> str:
    """Where the datareach that a command runs comes from, and that tree's commit (best effort)."""
    if cmd[-2:] == ["-m", "datareach"]:
        python = cmd[:-2]
    else:
        try:
            with open(cmd[0], "rb") as script:
                first = script.readline()
        except OSError:
            return ""
        if not first.startswith(b"#!"):
            return ""
        python = [first[2:].decode(errors="replace").strip()]
    try:
        where = subprocess.run([*python, "-c", "import datareach;print(datareach.__file__)"], capture_output=True,
                               text=True, timeout=60).stdout.strip()
        head = subprocess.run(["git", "-C", str(Path(where).parent), "log", "-1", "--format=%h %s"],
                              capture_output=True, text=True, timeout=60).stdout.strip() if where else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return f"(imports {Path(where).parent}{', commit ' + head[:80] if head else ''})" if where else ""


def report_summary(path: Path) -> str:
    """The counts of a datareach JSON report (its summary comes before the large arrays)."""
    import ijson  # a dependency of datareach; streams, so a report of hundreds of MB is not loaded

    try:
        with open(path, "rb") as f:
            summary = next(ijson.items(f, "summary"), None)
    except (OSError, ijson.JSONError):
        return "no report"
    if not isinstance(summary, dict):
        return "no summary"
    return ", ".join(f"{summary.get(k, '?'):,} {k}" for k in ("connections", "exchanges", "destinations", "findings"))


def pairs(name: str, cap: Path, commands: dict[str, list[str]], runs: int) -> dict[str, object]:
    size_mb = cap.stat().st_size / 1e6
    print(f"\n== {name}: {cap} ({size_mb:.0f} MB) ==", flush=True)
    for label, cmd in commands.items():  # warm-up: caches (geo, public suffixes), page cache
        run(cmd)
        print(f"warm-up {label} done" + (f": {report_summary(Path(cmd[-1]))}" if label != "tshark" else ""),
              flush=True)
    results: dict[str, list[Run]] = {label: [] for label in commands}
    for i in range(runs):
        order = list(commands) if i % 2 == 0 else list(reversed(commands))
        for label in order:
            results[label].append(run(commands[label]))
        print(f"round {i + 1} ({', '.join(order)}): "
              + ", ".join(f"{label} {results[label][-1].wall:.2f} s / {results[label][-1].cpu:.1f} s CPU / "
                          f"{results[label][-1].peak_kib / 1024:.0f} MiB" for label in order), flush=True)
    print()
    print("| command | median wall s (range) | CPU s user+sys (range) | peak tree MiB median / max |")
    print("|---|---|---|---|")
    for label, rs in results.items():
        mems = [r.peak_kib / 1024 for r in rs]
        print(f"| {label} | {span([r.wall for r in rs])} | {span([r.cpu for r in rs], '.1f')} | "
              f"{statistics.median(mems):.0f} / {max(mems):.0f} |")
    ratios: dict[str, list[float]] = {}
    for label in commands:
        if label == "tshark":
            continue
        ratios[label] = [t.wall / d.wall for t, d in zip(results["tshark"], results[label], strict=True)]
        cpu_ratio = statistics.median(t.cpu for t in results["tshark"]) / statistics.median(
            d.cpu for d in results[label])
        wall = statistics.median(r.wall for r in results[label])
        print(f"{name}: {label} is {statistics.median(ratios[label]):.2f}x tshark (median of {runs} per-round "
              f"ratios, range {min(ratios[label]):.2f}-{max(ratios[label]):.2f}; {cpu_ratio:.2f}x in CPU); "
              f"{size_mb / wall:.0f} MB/s")
    return {"capture": str(cap), "mb": size_mb, "runs": {k: [asdict(r) for r in v] for k, v in results.items()},
            "ratios": ratios}


def alone(name: str, cap: Path, cmd: list[str], runs: int) -> list[Run]:
    size_mb = cap.stat().st_size / 1e6
    print(f"\n== {name}: {cap} ({size_mb:.0f} MB), datareach only ==", flush=True)
    out: list[Run] = []
    for i in range(runs):
        out.append(run(cmd))
        print(f"run {i + 1}: {out[-1].wall:.2f} s, {out[-1].cpu:.1f} s CPU, {out[-1].peak_kib / 1024:.0f} MiB",
              flush=True)
    mems = [r.peak_kib / 1024 for r in out]
    wall = statistics.median(r.wall for r in out)
    print(f"{name}: median wall {span([r.wall for r in out])} s, {size_mb / wall:.0f} MB/s, CPU "
          f"{span([r.cpu for r in out], '.1f')} s, peak tree memory median {statistics.median(mems):.0f} MiB, "
          f"max {max(mems):.0f} MiB")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=300, help="size of each mix's capture (default 300)")
    ap.add_argument("--runs", type=int, default=5, help="alternating rounds per mix (default 5)")
    ap.add_argument("--mixes", default="web,hard",
                    help="comma-separated: web, hard, hard-issue (the hard mix shaped like issue 16's independent "
                         "generator: --mix hard --shape issue); default web,hard")
    ap.add_argument("--large-mb", type=int, default=3000, help="the hard mix at this size, datareach only; 0 skips")
    ap.add_argument("--large-runs", type=int, default=3)
    ap.add_argument("--conns", type=int, default=1_000_000,
                    help="peak memory on a capture of this many TCP connections, datareach only; 0 skips")
    ap.add_argument("--conns-runs", type=int, default=1)
    ap.add_argument("--capture-dir", type=Path, default=HERE / "out",
                    help="where captures are generated once and reused (default benchmarks/out, gitignored)")
    ap.add_argument("--capture", type=Path, help="benchmark this one capture against tshark instead of the mixes")
    ap.add_argument("--datareach", help="the datareach command (default: the one beside this Python)")
    ap.add_argument("--other", metavar="DATAREACH", help="another datareach command to run in every round")
    ap.add_argument("--json", type=Path, help="also write every measurement to this file")
    args = ap.parse_args()

    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: as root, run `apt-get install tshark` (Debian package), "
                         "then run this script again")
    if args.datareach:
        datareach = shlex.split(args.datareach)
    else:
        exe = shutil.which("datareach", path=str(Path(sys.executable).parent))
        datareach = [exe] if exe else [sys.executable, "-m", "datareach"]
    other = shlex.split(args.other) if args.other else None

    for line in machine():
        print(line)
    print(f"tshark: {version([tshark, '--version'])}")
    print(f"datareach: {shlex.join(datareach)} {git_head(datareach)}".rstrip())
    if other:
        print(f"other: {shlex.join(other)} {git_head(other)}".rstrip())
    workers = os.environ.get("DATAREACH_WORKERS")
    if workers:
        print(f"DATAREACH_WORKERS={workers}")
    report: dict[str, object] = {"machine": machine(), "tshark": version([tshark, "--version"]),
                                 "datareach": shlex.join(datareach), "other": shlex.join(other) if other else None}

    with tempfile.TemporaryDirectory() as tmp:
        def audit(cmd: list[str], cap: Path, out: str) -> list[str]:
            return [*cmd, "audit", str(cap), "--format", "json", "-o", str(Path(tmp) / out)]

        tshark_cmd = [tshark, "-r", "FILE", "-T", "fields"]
        for field in TSHARK_FIELDS:
            tshark_cmd += ["-e", field]
        print(f"commands: {shlex.join(audit(datareach, Path('FILE'), 'a.json'))}")
        print(f"          {shlex.join(tshark_cmd)} > /dev/null")
        if other:
            print(f"          {shlex.join(audit(other, Path('FILE'), 'b.json'))}")

        targets = [("custom", args.capture)] if args.capture else [
            (mix, capture(args.capture_dir, mix, args.size_mb)) for mix in args.mixes.split(",") if mix]
        per_mb: dict[str, float] = {}
        for name, cap in targets:
            commands = {"datareach": audit(datareach, cap, "a.json")}
            if other:
                commands["other"] = audit(other, cap, "b.json")
            commands["tshark"] = [tshark if c == tshark else str(cap) if c == "FILE" else c for c in tshark_cmd]
            result = pairs(f"{name} mix" if name != "custom" else str(cap), cap, commands, args.runs)
            report[name] = result
            walls = [r["wall"] for r in result["runs"]["datareach"]]  # type: ignore[index]
            per_mb[name] = statistics.median(walls) / (cap.stat().st_size / 1e6)

        if args.large_mb and not args.capture:
            cap = capture(args.capture_dir, "hard", args.large_mb)
            note = f"\n(tshark is not run at {args.large_mb} MB: it takes minutes at 3 GB"
            if "hard" in report:
                t_walls = [r["wall"] for r in report["hard"]["runs"]["tshark"]]  # type: ignore[index]
                note += f"; about {statistics.median(t_walls) * args.large_mb / args.size_mb:.0f} s here by its " \
                        f"time at {args.size_mb} MB"
            print(note + ")")
            big = alone(f"hard mix, {args.large_mb} MB", cap, audit(datareach, cap, "a.json"), args.large_runs)
            big_per_mb = statistics.median(r.wall for r in big) / (cap.stat().st_size / 1e6)
            report["large"] = {"capture": str(cap), "runs": [asdict(r) for r in big]}
            if "hard" in per_mb:
                lin = big_per_mb / per_mb["hard"]
                report["linearity"] = lin
                print(f"linearity: wall time per MB at {args.large_mb} MB / at {args.size_mb} MB = {lin:.2f} "
                      f"(1.00 is linear; the issue's bound is 1.10)")
        if args.conns and not args.capture:
            cap = capture(args.capture_dir, "conns", connections=args.conns)
            conns = alone(f"{args.conns:,} TCP connections", cap, audit(datareach, cap, "a.json"), args.conns_runs)
            report["conns"] = {"capture": str(cap), "connections": args.conns, "runs": [asdict(r) for r in conns]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nmeasurements: {args.json}")


if __name__ == "__main__":
    main()
