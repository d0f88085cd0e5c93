"""Running cases: the clean-rejection rule, the memory and time bounds, findings and reproducers.

A case is one input handed to a harness's target. It passes when the target returns, or raises
one of the harness's documented clean rejections (``Harness.clean``). Anything else is a finding:

* ``crash`` -- any other exception (the target's own invariant checks raise :class:`Violation`);
* ``memory`` -- the case's tracemalloc peak went over ``Harness.memory_cap`` above what was
  allocated when it started (Python's allocators: bytes, lists, dicts, parser buffers; the
  work a hostile input can make the auditor do in memory), or the process's resident set
  reached a new high more than the cap above where the case started;
* ``timeout`` -- the case ran longer than ``Harness.timeout`` seconds (a ``SIGALRM`` raises
  :class:`CaseTimeout` where the code is; C code is interrupted when it returns).

Findings are deduplicated by kind, exception type and top frame (the innermost frame in
datareach's own code, else the innermost frame); the first few inputs of each are saved, with
the traceback, under the crashes directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

#: Reproducers saved per distinct finding (the rest are counted).
SAVE_PER_FINDING = 3
#: Where findings go unless told otherwise.
DEFAULT_CRASHES = Path("/tmp/fuzz-crashes")
_SRC = os.sep + "datareach" + os.sep


class Violation(Exception):
    """A harness's invariant does not hold (a finding, like a crash)."""


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that runs too long (a BaseException: product code that
    catches Exception must not swallow it)."""


@dataclass
class Harness:
    """One fuzz target: where its seeds come from, what it runs, what a clean rejection is."""

    name: str
    doc: str
    seeds: Callable[[], list[bytes]]
    #: runs one case; returns a behaviour signature (hashable), used to keep inputs that do
    #: something new in the corpus
    target: Callable[[bytes], Hashable]
    clean: tuple[type[BaseException], ...] = ()
    dictionary: tuple[bytes, ...] = ()
    max_len: int = 1 << 16
    memory_cap: int = 64 << 20
    timeout: float = 10.0
    #: trace only every n-th case with tracemalloc (the resident set of every case is checked):
    #: for targets whose many small allocations tracing slows down many times over
    memory_every: int = 1
    #: why the harness cannot run here (e.g. mitmproxy missing), or None
    unavailable: Callable[[], str | None] = lambda: None
    close: Callable[[], None] | None = None


@dataclass
class Finding:
    harness: str
    kind: str
    key: str
    summary: str
    detail: str
    data: bytes


@dataclass
class Outcome:
    finding: Finding | None
    signature: Hashable
    peak: int
    seconds: float


@dataclass
class Tally:
    """What one harness's run found."""

    harness: str
    cases: int = 0
    seconds: float = 0.0
    corpus: int = 0
    #: key -> (finding of the first occurrence, occurrences)
    findings: dict[str, list[Any]] = field(default_factory=dict)
    saved: list[Path] = field(default_factory=list)
    max_peak: int = 0
    slowest: float = 0.0

    def add(self, f: Finding) -> int:
        """Count a finding; how many times its key was seen (save the first few)."""
        entry = self.findings.get(f.key)
        if entry is None:
            self.findings[f.key] = [f, 1]
            return 1
        entry[1] += 1
        return int(entry[1])

    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f, _n in self.findings.values():
            out[f.kind] = out.get(f.kind, 0) + 1
        return out


# -- where ---------------------------------------------------------------------------------------


def _where(frame: FrameType | None, lineno: int | None = None) -> str:
    if frame is None:
        return "?"
    code = frame.f_code
    path = code.co_filename
    at = path.rfind(_SRC)
    short = path[at + 1:] if at >= 0 else os.path.basename(path)
    return f"{short}:{code.co_name}:{lineno if lineno is not None else frame.f_lineno}"


def top_frame(tb: TracebackType | None) -> str:
    """The innermost frame of ``tb`` in datareach's code, else the innermost frame."""
    ours: tuple[FrameType, int] | None = None
    last: tuple[FrameType, int] | None = None
    while tb is not None:
        last = (tb.tb_frame, tb.tb_lineno)
        if _SRC in tb.tb_frame.f_code.co_filename:
            ours = last
        tb = tb.tb_next
    pick = ours or last
    return _where(pick[0], pick[1]) if pick else "?"


def _stack_frame(frame: FrameType | None) -> str:
    """The innermost frame of a live stack in datareach's code, else the innermost."""
    f = frame
    while f is not None:
        if _SRC in f.f_code.co_filename:
            return _where(f)
        f = f.f_back
    return _where(frame)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text)[:90].strip("_")


# -- one case ------------------------------------------------------------------------------------


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise CaseTimeout()


class _Rss:
    """The process's resident set now and at its highest (cheap: one read of /proc per call)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        try:
            self.fd: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self.fd = None

    def now(self) -> int:
        if self.fd is None:
            return 0
        os.lseek(self.fd, 0, os.SEEK_SET)
        return int(os.read(self.fd, 128).split()[1]) * self.page

    @staticmethod
    def highest() -> int:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


_RSS = _Rss()


def run_case(h: Harness, data: bytes, *, measure: bool = True) -> Outcome:
    """Run ``h.target(data)`` under the bounds; never raises (but KeyboardInterrupt).

    Memory: with ``measure`` the case runs under tracemalloc (started and stopped around it,
    unless something else traces already) and its peak is checked against ``h.memory_cap``;
    every case's resident set is checked too (a new high of the process more than the cap over
    where the case started is a finding, found again under tracemalloc to say where). Tracing
    slows allocation-heavy code many times over: the runner may trace only every n-th case."""
    ours = measure and not tracemalloc.is_tracing()
    if ours:
        tracemalloc.start(1)
    traced = tracemalloc.is_tracing() and measure
    start_mem = 0
    if traced:
        tracemalloc.reset_peak()
        start_mem = tracemalloc.get_traced_memory()[0]
    rss0, high0 = _RSS.now(), _RSS.highest()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, h.timeout)
    t0 = time.perf_counter()
    finding: Finding | None = None
    signature: Hashable = None
    try:
        try:
            signature = h.target(data)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except h.clean as exc:
        signature = ("clean", type(exc).__name__)
    except CaseTimeout:
        where = top_frame(sys.exc_info()[2])
        finding = Finding(h.name, "timeout", f"timeout@{where}", f"over {h.timeout:g} s, at {where}",
                          traceback.format_exc(), data)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a finding, whatever it is (SystemExit, RecursionError too)
        where = top_frame(exc.__traceback__)
        what = type(exc).__name__
        if isinstance(exc, Violation):
            what += ": " + re.sub(r"\d+", "#", str(exc))[:80]
        finding = Finding(h.name, "crash", f"crash:{what}@{where}", f"{type(exc).__name__}: {str(exc)[:200]} at {where}",
                          traceback.format_exc(), data)
    finally:
        signal.signal(signal.SIGALRM, old)
        seconds = time.perf_counter() - t0
        peak = max(0, tracemalloc.get_traced_memory()[1] - start_mem) if traced else 0
        if ours:
            tracemalloc.stop()
    if finding is None:
        high = _RSS.highest()
        over = peak > h.memory_cap or (high > high0 and high - rss0 > h.memory_cap)
        if over:
            what = (f"tracemalloc peak {peak / 2**20:.0f} MiB" if peak > h.memory_cap
                    else f"resident set {(high - rss0) / 2**20:.0f} MiB up")
            where = locate_peak(h, data)
            finding = Finding(h.name, "memory", f"memory@{where}",
                              f"{what}, over the {h.memory_cap / 2**20:.0f} MiB cap; crossed at {where}", "", data)
    return Outcome(finding, signature, peak, seconds)


def locate_peak(h: Harness, data: bytes) -> str:
    """Run the case again under tracemalloc and name the frame that was running when its memory
    first went over the cap (checked at every call and return: slow, only for findings)."""
    ours = not tracemalloc.is_tracing()
    if ours:
        tracemalloc.start(1)
    tracemalloc.reset_peak()
    limit = tracemalloc.get_traced_memory()[0] + h.memory_cap
    where: list[str] = []

    def hook(frame: FrameType, event: str, arg: object) -> None:
        if not where and tracemalloc.get_traced_memory()[1] > limit:
            where.append(_stack_frame(frame))

    sys.setprofile(hook)
    try:
        h.target(data)
    except BaseException:
        pass
    finally:
        sys.setprofile(None)
        if ours:
            tracemalloc.stop()
    return where[0] if where else "? (not in Python's allocators)"


def save(f: Finding, crashes: Path) -> Path:
    """Write a finding's input (``.bin``) and what happened (``.txt``) under ``crashes/harness``."""
    digest = hashlib.sha1(f.data).hexdigest()[:12]
    out = crashes / f.harness
    out.mkdir(parents=True, exist_ok=True)
    base = f"{f.kind}-{_slug(f.key.split(':', 1)[-1])}-{digest}"
    data, note = out / (base + ".bin"), out / (base + ".txt")
    data.write_bytes(f.data)
    note.write_text(
        f"harness: {f.harness}\nkind: {f.kind}\nkey: {f.key}\n{f.summary}\n\n"
        f"replay: .venv/bin/python -m fuzz replay --harness {f.harness} {data}\n\n{f.detail}")
    return data
