"""DNS answers aggregated as they are read (engine/dnstally.py) give what the answers one by one
gave: the document's ``dns`` rows and the naming index; and the parallel readers hand their answers
on through a file, not a list held to the end of their range."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from datareach.engine.dnstally import DnsRows, DnsTally
from datareach.enrich.naming import DnsIndex
from datareach.schema import DnsAnswer
from datareach.timestamps import iso


def reference_rows(answers: Sequence[DnsAnswer]) -> list[dict[str, Any]]:
    """The document's dns rows as the local engine made them before the tally (every answer
    kept, then one dict per distinct answer)."""
    seen: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
    for a in answers:
        key = (a.qname, a.address, a.cname_chain)
        row = seen.get(key)
        if row is None:
            seen[key] = {"qname": a.qname, "rtype": a.rtype, "address": a.address,
                         "cname_chain": list(a.cname_chain), "ttl": a.ttl, "first_seen": a.ts, "answers": 1,
                         "input": a.input_index}
        else:
            row["answers"] += 1
            row["first_seen"] = min(row["first_seen"], a.ts)
    out = sorted(seen.values(), key=lambda r: (r["first_seen"], r["qname"], r["address"]))
    for r in out:
        r["first_seen"] = iso(r["first_seen"])
    return out


def answers(seed: int, n: int) -> list[DnsAnswer]:
    """Answers that repeat (a few names and addresses), with clocks out of order, CNAME chains
    that change, two inputs, and ties in time."""
    rng = random.Random(seed)
    names = [f"n{i}.example.com" for i in range(12)]
    addrs = [f"192.0.2.{i}" for i in range(8)] + ["2001:db8::1"]
    out = []
    for _ in range(n):
        q = rng.choice(names)
        chain = (q,) if rng.random() < 0.6 else (q, f"edge{rng.randrange(3)}.cdn.example.net")
        out.append(DnsAnswer(ts=1_700_000_000 + rng.choice((rng.uniform(0, 50), 10.0)), qname=q,
                             rtype=rng.choice(("A", "AAAA")), address=rng.choice(addrs), cname_chain=chain,
                             ttl=rng.choice((30, 300)), input_index=rng.choice((0, 0, 1)), uid=f"C0.{rng.randrange(9)}"))
    return out


@pytest.mark.parametrize("spill", [None, 1, 37])
@pytest.mark.parametrize("seed", range(6))
def test_rows_are_the_answers_one_by_one(seed: int, spill: int | None, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """In memory, and spilled to a file (every answer, or batches of 37) and aggregated by DuckDB;
    no file is left behind."""
    from datareach.engine import dnstally

    monkeypatch.setattr(dnstally, "_spill_dir", lambda: str(tmp_path))
    given = answers(seed, 400)
    tally = DnsTally(spill_rows=spill)
    for a in given:
        tally.add(a)
    assert len(tally) == len(given)
    assert tally.spilled == (spill is not None)
    rows = tally.rows()
    assert isinstance(rows, DnsRows)
    expected = reference_rows(given)
    assert list(rows) == expected
    assert rows == expected and rows[3] == expected[3] and rows[2:5] == expected[2:5]
    # written in batches, the same JSON text
    assert orjson.dumps([r for b in rows.batches(7) for r in b]) == orjson.dumps(expected)
    assert rows[-1] == expected[-1] and rows[-3:] == expected[-3:]
    # each distinct answer is one row, however often it was answered
    assert len(rows) == len({(a.qname, a.address, a.cname_chain) for a in given})
    tally.close()
    assert not list(tmp_path.iterdir())  # (the rows' own file is open, and already removed)
    assert list(rows) == expected


@pytest.mark.parametrize("spill", [None, 1, 37])
@pytest.mark.parametrize("seed", range(6))
def test_index_is_the_answers_one_by_one(seed: int, spill: int | None) -> None:
    """Every look-up naming makes (for the addresses and names it is asked about, when spilled)
    is what the index of every answer gives."""
    given = answers(seed, 400)
    tally = DnsTally(spill_rows=spill)
    for a in given:
        tally.add(a)
    rng = random.Random(seed)
    addresses = sorted({a.address for a in given})
    asked_addresses = set(rng.sample(addresses, 5)) | {"198.51.100.1"}
    asked_names = {"n1.example.com", "n7.example.com", "absent.example"}
    index = tally.index(asked_addresses, asked_names)
    reference = DnsIndex((a.ts, a.qname, a.address, a.cname_chain, a.input_index) for a in given)
    if spill is None:
        assert index.times == reference.times and index.answers == reference.answers
        assert index.chains == reference.chains
    else:  # (only what it was asked about)
        assert {addr for _, addr in index.times} == asked_addresses & set(addresses)
    for _ in range(300):
        idx, addr = rng.choice((0, 1, 2)), rng.choice(sorted(asked_addresses))
        ts = 1_700_000_000 + rng.uniform(-5, 60)
        assert index.latest_before(idx, addr, ts) == reference.latest_before(idx, addr, ts)
        assert index.names(idx, addr) == reference.names(idx, addr)
    named = {q for idx in (0, 1) for addr in asked_addresses for q in reference.names(idx, addr)}
    for q in named | asked_names:
        assert index.cname_chain(q) == reference.cname_chain(q)
    tally.close()


def test_parallel_readers_write_their_answers_to_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A range's result carries no DNS answers in memory: they are in its file, which the merge
    reads a batch at a time and removes."""
    from tests.test_parallel import _generator

    from datareach.sources import parallel

    path = tmp_path / "mix.pcap"
    _generator().generate(path, 6, seed=3)
    monkeypatch.setattr(parallel, "MIN_RANGE", 0)
    kept: list[Any] = []
    merge = parallel._merge

    def spy(results: Sequence[Any], input_index: int) -> Any:
        assert all(r.dns_spill and Path(r.dns_spill).stat().st_size for r in results)
        kept.extend(results)
        return merge(results, input_index)

    monkeypatch.setattr(parallel, "_merge", spy)
    records = parallel.read(path, 0, None, 2)
    assert records is not None
    assert len(kept) == 2
    assert all(r.dns == [] for r in kept)  # (the answers went through the files)
    assert sum(isinstance(r, DnsAnswer) for r in records) > 100
    assert all(r.dns_spill is None for r in kept)  # (read, then removed)
