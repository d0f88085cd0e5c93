"""Throughput of the known-value matcher: Hyperscan against the portable (Aho-Corasick) engine.

5,000 needles of 16-40 characters (hex, base64 and e-mail-like, as the hashes and encodings of
:func:`datareach.detect.known.profile_forms` are) are looked for in ~200 MB of decoded-payload-
like layers -- JSON text, base64 text and random bytes, 64 KB to 1 MB each -- with hits planted
in them. Both engines must give the same (layer, form) pairs and find every planted hit.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_matcher.py [--mb 200] [--patterns 5000]

Layers are scanned whole: one engine call costs about a microsecond, so scanning tiny pieces
would measure the call, not the engine (the last lines show it with 4 KB layers).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from datareach.detect.known import Form
from datareach.detect.matcher import HAVE_HYPERSCAN, Matcher
from datareach.detect.types import Layer

TARGET_MBPS = 500


def make_needles(rng: random.Random, n: int) -> list[bytes]:
    needles: set[bytes] = set()
    i = 0
    while len(needles) < n:
        size = rng.randint(16, 40)
        raw = rng.randbytes(size)
        kind = i % 3
        if kind == 0:
            needle = raw.hex()[:size]
        elif kind == 1:
            needle = base64.b64encode(raw).decode()[:size]
        else:
            needle = f"{raw.hex()[:6]}.user{i}@mail{i % 97}.example.com"[:size]
        needles.add(needle.encode())
        i += 1
    return sorted(needles)


def make_json_pool(rng: random.Random, size: int) -> bytes:
    records = []
    total = 0
    while total < size:
        record = {
            "event": rng.choice(["screen_view", "click", "purchase", "session_start", "ad_impression"]),
            "ts": 1_700_000_000_000 + rng.randint(0, 10**9),
            "session": rng.randbytes(16).hex(),
            "user": {"id": rng.randint(1, 10**9), "locale": rng.choice(["en_GB", "fr_FR", "de_DE"])},
            "device": {"model": rng.choice(["Pixel 7", "SM-G991B", "iPhone14,2"]), "os": "14",
                       "screen": [1080, 2400], "battery": round(rng.random(), 3)},
            "params": {f"p{k}": rng.choice([rng.randint(0, 9999), rng.random(), "value-" + str(k)])
                       for k in range(rng.randint(2, 12))},
            "token": base64.b64encode(rng.randbytes(rng.randint(12, 48))).decode(),
        }
        text = json.dumps(record)
        records.append(text)
        total += len(text) + 1
    return ("\n".join(records)).encode()


def make_layers(
    rng: random.Random, total_mb: int, needles: list[bytes]
) -> tuple[list[Layer], set[tuple[int, int]]]:
    """The layers, and the (layer, needle) index pairs planted in them."""
    json_pool = make_json_pool(rng, 8 << 20)
    layers: list[Layer] = []
    total = 0
    planted: set[tuple[int, int]] = set()
    while total < total_mb << 20:
        size = rng.randint(64 << 10, 1 << 20)
        kind = rng.randrange(3)
        if kind == 0:
            start = rng.randrange(len(json_pool) - size) if len(json_pool) > size else 0
            data = bytearray(json_pool[start:start + size])
            name = "body(json)"
        elif kind == 1:
            data = bytearray(base64.b64encode(rng.randbytes(size * 3 // 4)))
            name = "body(base64)"
        else:
            data = bytearray(rng.randbytes(size))
            name = "body(binary)"
        spots = []
        for _ in range(rng.randint(0, 4)):  # planted hits, delimited so the boundary rule passes
            k = rng.randrange(len(needles))
            quoted = b'"' + needles[k] + b'"'
            at = rng.randrange(len(data) - len(quoted))
            data[at:at + len(quoted)] = quoted
            spots.append((k, at, quoted))
        for k, at, quoted in spots:  # the ones a later one did not overwrite
            if data[at:at + len(quoted)] == quoted:
                planted.add((len(layers), k))
        layers.append(Layer(name, (name,), None, bytes(data)))
        total += len(data)
    return layers, planted


def run(matcher: Matcher, layers: list[Layer], repeats: int) -> tuple[float, list[tuple[Layer, Form]]]:
    best = float("inf")
    found: list[tuple[Layer, Form]] = []
    for _ in range(repeats):
        t = time.perf_counter()
        found = matcher.scan_layers(layers)
        best = min(best, time.perf_counter() - t)
    return best, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="MB of layers to scan (default 200)")
    parser.add_argument("--patterns", type=int, default=5000, help="needles (default 5000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    t = time.perf_counter()
    needles = make_needles(rng, args.patterns)
    forms = [Form(n, "bench", f"needle {i}") for i, n in enumerate(needles)]
    layers, planted = make_layers(rng, args.mb, needles)
    size = sum(len(layer.value) for layer in layers)
    mb = size / 1e6
    print(f"data      : {mb:,.1f} MB in {len(layers)} layers (JSON text, base64 text, random bytes), "
          f"{len(planted)} planted hits, {len(needles):,} needles of 16-40 bytes "
          f"(made in {time.perf_counter() - t:.1f} s)")

    engines = ["hyperscan", "portable"] if HAVE_HYPERSCAN else ["portable"]
    speeds: dict[str, float] = {}
    results: dict[str, list[tuple[int, int]]] = {}
    for engine in engines:
        t = time.perf_counter()
        matcher = Matcher(forms, engine)
        compile_s = time.perf_counter() - t
        seconds, found = run(matcher, layers, repeats=3 if engine == "hyperscan" else 1)
        speeds[engine] = mb / seconds
        index = {id(layer): i for i, layer in enumerate(layers)}
        number = {form.needle: i for i, form in enumerate(forms)}
        results[engine] = sorted((index[id(layer)], number[form.needle]) for layer, form in found)
        print(f"{engine:<10}: compile {compile_s * 1000:7.1f} ms   scan {seconds:6.2f} s   "
              f"{speeds[engine]:8,.0f} MB/s   {len(found)} (layer, form) pairs")

    ok = True
    if len({tuple(r) for r in results.values()}) != 1:
        print("MISMATCH  : the engines disagree")
        ok = False
    else:
        print("agreement : both engines found the same (layer, form) pairs" if len(engines) > 1
              else "agreement : one engine only (hyperscan is not installed)")
    missed = planted - set(next(iter(results.values())))
    print(f"planted   : {len(planted) - len(missed)} of {len(planted)} planted hits found")
    ok = ok and not missed
    if HAVE_HYPERSCAN:
        ratio = speeds["hyperscan"] / speeds["portable"]
        verdict = "OK" if speeds["hyperscan"] >= TARGET_MBPS else "BELOW TARGET"
        print(f"ratio     : hyperscan is {ratio:.1f}x the portable engine; "
              f"target >= {TARGET_MBPS} MB/s on the hyperscan path: {verdict}")
        ok = ok and speeds["hyperscan"] >= TARGET_MBPS

        # the per-call overhead, for the record: the same data cut into 4 KB layers
        small = [Layer("piece", (), None, layer.value[i:i + 4096])
                 for layer in layers[:40] for i in range(0, len(layer.value), 4096)]
        small_mb = sum(len(x.value) for x in small) / 1e6
        for engine in engines:
            seconds, _ = run(Matcher(forms, engine), small, repeats=1)
            print(f"4 KB layers: {engine:<10}{small_mb / seconds:8,.0f} MB/s "
                  f"({seconds / len(small) * 1e6:.1f} µs per layer)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
