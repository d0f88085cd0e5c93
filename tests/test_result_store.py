"""The result's rows kept as JSON text, spilled to disk past a budget, and the JSON report
written from them a batch at a time: the same bytes as the document rendered whole."""

from __future__ import annotations

import dataclasses
import gc
import io
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datareach
from datareach.engine import store as store_module
from datareach.engine.store import DocumentStore
from datareach.report.json_report import render_json, write_json
from datareach.testing.capture import distinct_destinations_pcap as syn_capture

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"
PROFILE = ROOT / "examples" / "profile.toml"


def rows(n: int) -> list[dict[str, object]]:
    return [{"id": "", "n": i, "text": f"row {i} \u00e9", "nested": {"list": [i, None, True]}} for i in range(n)]


@pytest.mark.parametrize("budget", [1 << 30, 200])
def test_a_store_gives_back_what_it_was_given_in_memory_or_spilled(budget: int) -> None:
    s = DocumentStore(budget=budget)
    s.extend(rows(1000))
    assert (s.spilled_bytes > 0) == (budget == 200)
    v = s.view()
    assert len(v) == 1000
    assert list(v) == rows(1000)
    assert v[0] == rows(1)[0] and v[-1]["n"] == 999 and v[10:13] == rows(13)[10:13]
    with pytest.raises(IndexError):
        v[1000]
    assert [len(b) for b in v.batches(300)] == [300, 300, 300, 100]
    s.close()


def test_a_view_reads_in_the_order_given_and_completes_each_row() -> None:
    s = DocumentStore(budget=500)
    s.extend(rows(50))
    order = list(range(49, -1, -1))

    def complete(k: int, row: dict[str, object]) -> None:
        row["id"] = f"X{k}"

    v = s.view(order, complete)
    got = list(v)
    assert [r["n"] for r in got] == order
    assert [r["id"] for r in got] == [f"X{k}" for k in range(50)]
    assert list(got[0]) == ["id", "n", "text", "nested"]  # the id keeps its place
    assert v[3] == got[3]
    assert v == got and v != got[:-1]


@given(order=st.permutations(range(300)), budget=st.sampled_from([1 << 30, 500]), size=st.integers(1, 300))
@settings(max_examples=60, deadline=None)
def test_a_batch_of_rows_in_any_order_is_read_as_the_rows_one_by_one(order: list[int], budget: int,
                                                                    size: int) -> None:
    """A view's batch reads its rows at once when they lie close together in the store, else
    one by one: the same texts either way, in memory or spilled, and the same rows."""
    s = DocumentStore(budget=budget)
    s.extend(rows(300))
    for start in range(0, 300, size):
        part = order[start:start + size]
        assert s.raw_rows(part) == [s.raw(i) for i in part]
    near = sorted(order[:size])
    assert s.raw_rows(near) == [s.raw(i) for i in near]
    assert list(s.view(order)) == [rows(300)[i] for i in order]
    s.close()


def test_the_streamed_json_is_the_rendered_json_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MEMORY_BUDGET", 256)  # every store spills to disk
    result = datareach.audit([EXAMPLE], profile=PROFILE, policies=["us-doj-bulk-data"])
    assert len(result.findings) > 0 and len(result.exchanges) > 0
    # the engine counted the summary as it made the rows: the same as counting them afterwards
    assert result.counts is not None
    assert dataclasses.replace(result, counts=None).summary() == result.summary()
    out = io.BytesIO()
    write_json(result.document(), out)
    assert out.getvalue() == render_json(result.to_dict()).encode("utf-8")
    for d in ({}, {"a": []}, {"a": [1, {"b": [1, 2]}], "c": {"x": {}}}):
        out = io.BytesIO()
        write_json(d, out)
        assert out.getvalue() == render_json(d).encode("utf-8")


@given(texts=st.lists(st.text(st.characters(codec="utf-8"), max_size=12), min_size=1, max_size=40))
@settings(max_examples=80, deadline=None)
def test_rows_written_a_batch_at_a_time_are_inert_as_the_whole_document(texts: list[str]) -> None:
    """The writer makes a batch of rows inert and indents it at once: the bytes of the whole
    document rendered at once, with controls, bidi and format characters and line breaks in the
    strings, whatever the rows around them."""
    s = DocumentStore()
    s.extend({"text": t, "lines": [t, "\n" + t]} for t in texts)
    out = io.BytesIO()
    write_json({"rows": s.view(), "after": texts[:2]}, out)
    assert out.getvalue() == render_json({"rows": list(s.view()), "after": texts[:2]}).encode("utf-8")


def test_the_result_of_many_destinations_holds_little_memory(tmp_path: Path) -> None:
    """Each destination of a result costs an offset in memory, its row is on disk: bounded by
    what Python holds once the audit is done, 20,000 destinations (no duration asserted)."""
    n = 20_000
    cap = tmp_path / "syn.pcap"
    syn_capture(cap, n)
    datareach.audit([EXAMPLE])  # the knowledge base and the geo data loaded, as they stay
    store_module.MEMORY_BUDGET, budget = 1 << 20, store_module.MEMORY_BUDGET
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = datareach.audit([cap])
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        store_module.MEMORY_BUDGET = budget
    assert len(result.destinations) == n
    assert result.summary()["destinations"] == n
    # the rows themselves (about 1.5 KB of JSON each) are not what the result holds
    assert held < n * 400, f"{held / n:.0f} bytes per destination"
    assert result.destinations[n - 1]["id"] == f"D{n - 1}"


def test_destinations_judged_a_chunk_at_a_time_give_the_result_of_all_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine makes, enriches and judges destinations a chunk at a time: with chunks of 3,
    the document (destinations, violations in their order deny-warn-allowed by destination,
    the findings they name) is the one a single chunk gives."""
    from datareach.enrich import stages

    policy = tmp_path / "order.toml"
    policy.write_text('[policy]\nid = "order"\nname = "order"\nas_of = "2026-12-07"\n\n'
                      '[[rule]]\nid = "every"\naction = "warn"\ntitle = "every destination"\nhosts = ["*"]\n\n'
                      '[[rule]]\nid = "some"\naction = "deny"\ntitle = "some"\nhosts = ["*.com"]\n', encoding="utf-8")
    policies = [str(policy), "us-doj-bulk-data", "eu-gdpr-transfers"]
    whole = datareach.audit([EXAMPLE], profile=PROFILE, policies=policies).to_dict()
    monkeypatch.setattr(stages, "CHUNK", 3)
    chunked = datareach.audit([EXAMPLE], profile=PROFILE, policies=policies).to_dict()
    assert len(whole["destinations"]) > 3 * 3
    actions = [v["action"] for v in whole["violations"]]
    assert "deny" in actions and "warn" in actions and any(v["findings"] for v in whole["violations"])
    chunked["generated_at"] = whole["generated_at"]
    assert chunked == whole
