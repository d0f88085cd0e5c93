"""The fuzz loop (home-grown mutator, behaviour-guided corpus) and the replay of reproducers.

:func:`fuzz_harness` runs one harness: every seed once, then mutations of corpus entries until
``cases`` or ``seconds`` is reached. An input whose run gives a behaviour signature not seen
before (records made, error message shapes, findings: see :mod:`fuzz.harnesses`) joins the
corpus, so that mutations build on inputs that reach further. A fixed ``seed`` gives the same
cases in the same order (time limits aside).
"""

from __future__ import annotations

import gzip
import random
import time
from collections.abc import Callable, Hashable
from pathlib import Path

from fuzz.engine import SAVE_PER_FINDING, Finding, Harness, Tally, run_case, save
from fuzz.mutate import Mutator

#: Largest corpus kept per harness (seeds are never dropped).
MAX_CORPUS = 2048
#: A run's slowest case is kept (``crashes/<harness>/slowest.bin``) when it took longer than this.
SLOW = 1.0
REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def fuzz_harness(h: Harness, *, cases: int | None = None, seconds: float | None = None, seed: int = 0,
                 crashes: Path | None = None, memory_every: int = 1,
                 on_finding: Callable[[Finding, bool], None] | None = None) -> Tally:
    """Fuzz one harness; findings are saved under ``crashes`` (when given) and counted.

    Every ``memory_every``-th case runs under tracemalloc (0: none); every case's resident set
    is checked (:func:`fuzz.engine.run_case`)."""
    if cases is None and seconds is None:
        cases = 1000
    tally = Tally(h.name)
    rng = random.Random(f"{seed}:{h.name}")
    seeds = [s[:h.max_len] for s in h.seeds()]
    warm_up(h, seeds)
    corpus: list[bytes] = list(seeds)
    mutator = Mutator(rng, h.dictionary, h.max_len)
    signatures: set[Hashable] = set()
    slowest = b""
    t0 = time.perf_counter()
    deadline = t0 + seconds if seconds is not None else None
    i = 0
    try:
        while True:
            if cases is not None and i >= cases:
                break
            if deadline is not None and time.perf_counter() >= deadline:
                break
            if i < len(seeds):
                data = seeds[i]
            else:
                # recent additions are where the new behaviour is: favour them a little
                parent = corpus[-1 - min(int(rng.expovariate(0.05)), len(corpus) - 1)] if rng.random() < 0.3 \
                    else rng.choice(corpus)
                data = mutator.mutate(parent, corpus)
            out = run_case(h, data, measure=bool(memory_every) and i % (memory_every * h.memory_every) == 0)
            i += 1
            tally.max_peak = max(tally.max_peak, out.peak)
            if out.seconds > tally.slowest:
                tally.slowest, slowest = out.seconds, data
            if out.finding is not None:
                seen = tally.add(out.finding)
                if seen <= SAVE_PER_FINDING and crashes is not None:
                    tally.saved.append(save(out.finding, crashes))
                if on_finding is not None:
                    on_finding(out.finding, seen == 1)
                continue
            try:
                new = out.signature not in signatures
            except TypeError:  # an unhashable signature: a harness bug, not the input's
                new = False
            if new and i > len(seeds):
                signatures.add(out.signature)
                if len(corpus) < MAX_CORPUS:
                    corpus.append(data)
                else:
                    corpus[rng.randrange(len(seeds), MAX_CORPUS)] = data
            elif new:
                signatures.add(out.signature)
    finally:
        tally.cases = i
        tally.seconds = time.perf_counter() - t0
        tally.corpus = len(corpus)
        if h.close is not None:
            h.close()
    if crashes is not None and tally.slowest > SLOW:
        # not a finding (under the timeout), but worth a look: where the work is
        where = crashes / h.name
        where.mkdir(parents=True, exist_ok=True)
        (where / "slowest.bin").write_bytes(slowest)
        (where / "slowest.txt").write_text(f"the slowest case of the last run: {tally.slowest:.2f} s\n")
    return tally


def warm_up(h: Harness, seeds: list[bytes]) -> None:
    """Run the first seed once, unmeasured: what the first run loads and keeps (the knowledge
    base, geo data, compiled matchers) is not the case's memory."""
    if seeds:
        run_case(h, seeds[0], measure=False)


def regression_files(harness: str | None = None) -> list[tuple[str, Path]]:
    """The committed reproducers: ``fuzz/regressions/<harness>/*`` (not the ``.txt`` notes)."""
    out: list[tuple[str, Path]] = []
    if not REGRESSIONS.is_dir():
        return out
    for d in sorted(REGRESSIONS.iterdir()):
        if d.is_dir() and (harness is None or d.name == harness):
            out += [(d.name, p) for p in sorted(d.iterdir()) if p.is_file() and p.suffix != ".txt"]
    return out


def reproducer(path: Path) -> bytes:
    """A reproducer's bytes (``.gz`` files are kept compressed: some are megabytes of one byte)."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def replay(h: Harness, paths: list[Path], *, measure: bool = True) -> list[tuple[Path, Finding | None]]:
    """Run each file through ``h`` once; the finding each gives (None: it passes)."""
    try:
        warm_up(h, h.seeds()[:1])
        return [(p, run_case(h, reproducer(p), measure=measure).finding) for p in paths]
    finally:
        if h.close is not None:
            h.close()
