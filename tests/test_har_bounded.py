"""The HAR reader's work is bounded by its input, however the JSON nests (issue 18).

ijson spells out a path string per nesting level for every event, so 80 KB of ``[`` used to cost
35 s and 4 GB in the format sniff and the header; long keys multiply the same way. The reader now
stops at :data:`~datareach.sources.har.MAX_NESTING` levels and at keys over
:data:`~datareach.sources.har.MAX_KEY_BYTES`, before the parser sees them. These tests bound the
work (bytes handed to the parser, tracemalloc peak), never the time.
"""

from __future__ import annotations

import json
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datareach.schema import Connection, Exchange, InputError
from datareach.sources import har
from datareach.sources.har import MAX_KEY_BYTES, MAX_NESTING, looks_like_har, read_har

DATA = Path(__file__).parent / "data" / "har"

ENTRY = {"startedDateTime": "2024-03-01T10:00:00.000Z", "time": 12,
         "request": {"method": "GET", "url": "https://a.example.com/x", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "accept", "value": "*/*"}]},
         "response": {"status": 200}}


class Counted:
    """The most bytes the JSON parser was handed in one pass over the file (the reader makes
    two: the header, then the entries)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.passes: dict[int, int] = {}
        original = har._CountingReader.read

        def read(reader: Any, size: int = -1) -> bytes:
            data = original(reader, size)
            self.passes[id(reader)] = self.passes.get(id(reader), 0) + len(data)
            return data

        monkeypatch.setattr(har._CountingReader, "read", read)

    @property
    def bytes(self) -> int:
        return max(self.passes.values(), default=0)


def bounded(records: Iterator[Any]) -> tuple[list[Any], int]:
    """The records, and the tracemalloc peak of reading them."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = list(records)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, peak


def write(tmp_path: Path, text: str, name: str = "x.har") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_deep_nesting_before_the_entries_costs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    depth = 100_000  # 200 KB
    head = '{"log": {"version": "1.2", "x": '
    path = write(tmp_path, head + "[" * depth + "]" * depth + ', "entries": []}}')
    counted = Counted(monkeypatch)
    records, peak = bounded(read_har(path, 0))
    # the 65th level is the 63rd '[' (the root object and log are levels 1 and 2)
    offset = len(head) + MAX_NESTING - 2
    assert records == [InputError(
        f"HAR file not read: JSON nested deeper than {MAX_NESTING} levels at byte {offset} "
        "(HAR files nest about 8 levels deep)", offset=offset, fatal=True)]
    assert counted.bytes <= offset  # the parser never saw the 65th level
    assert peak < 16 << 20  # the guard's arrays for one chunk; the parser's path strings took 25 GB


def test_the_format_sniff_reads_deep_heads_in_linear_work() -> None:
    deep = b'{"log": {"x": ' + b"[" * 65536
    tracemalloc.start()
    try:
        assert looks_like_har(deep[:65536])
        assert not looks_like_har(b'{"x": ' + b"[" * 65530)
        assert looks_like_har(b'{"x": ' + b"[" * 30000 + b"]" * 30000 + b', "log": {}}')
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # was 4 GB for 80 KB


@pytest.mark.parametrize("where", ["postData", "header value"])
def test_deep_value_inside_an_entry_stops_after_the_entries_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    depth = 100_000
    if where == "postData":
        deep = {"method": "POST", "url": "https://b.example.com/", "postData": {"mimeType": "x", "text": "@"}}
    else:
        deep = {"method": "GET", "url": "https://b.example.com/", "headers": [{"name": "x", "value": "@"}]}
    second = json.dumps({"request": deep}).replace('"@"', "[" * depth + "]" * depth)
    text = '{"log": {"entries": [' + json.dumps(ENTRY) + ", " + second + "]}}"
    path = write(tmp_path, text)
    counted = Counted(monkeypatch)
    records, peak = bounded(read_har(path, 0))
    assert [type(r) for r in records][:1] == [Exchange]
    error = records[-1]
    assert isinstance(error, InputError) and error.fatal
    at = text.index("[" * depth)
    # the entry is level 4; its request 5; the value's container 6 (postData) or 7 (headers, item)
    first_level = 7 if where == "postData" else 8
    assert error.offset == at + MAX_NESTING - first_level + 1
    assert error.message == (f"JSON nested deeper than {MAX_NESTING} levels at byte {error.offset}: "
                             "reading stopped after 1 entry")
    assert counted.bytes <= error.offset
    assert peak < 8 << 20


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    # the root object is level 1, log 2, entries 3, an entry 4: the arrays of "x" are 5 to 64
    value = "[" * (MAX_NESTING - 4) + "1" + "]" * (MAX_NESTING - 4)
    entry = json.dumps({**ENTRY, "x": "@"}).replace('"@"', value)
    records = list(read_har(write(tmp_path, '{"log": {"entries": [' + entry + "]}}"), 0))
    assert not [r for r in records if isinstance(r, InputError)]
    entry = json.dumps({**ENTRY, "x": "@"}).replace('"@"', "[" + value + "]")
    records = list(read_har(write(tmp_path, '{"log": {"entries": [' + entry + "]}}"), 0))
    assert isinstance(records[-1], InputError) and "nested deeper" in records[-1].message


def test_long_keys_stop_the_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nested = "".join(f'{{"{"k" * 200_000}{i:02d}": ' for i in range(40)) + "1" + "}" * 40
    text = '{"log": {"entries": [' + json.dumps(ENTRY) + ', {"request": ' + nested + "}]}}"
    path = write(tmp_path, text)
    counted = Counted(monkeypatch)
    records, peak = bounded(read_har(path, 0))
    key = text.index('"kkk')
    assert isinstance(records[0], Exchange)
    assert records[-1] == InputError(f"JSON object key longer than {MAX_KEY_BYTES} bytes at byte {key}: "
                                     "reading stopped after 1 entry", offset=key, fatal=True)
    assert counted.bytes <= key
    assert peak < 8 << 20  # 8 MB of keys took 700 MB of path strings
    # long strings that are values, and keys at the limit, are fine
    entry = {**ENTRY, "k" * MAX_KEY_BYTES: "v" * 100_000}
    records = list(read_har(write(tmp_path, json.dumps({"log": {"entries": [entry]}})), 0))
    assert not [r for r in records if isinstance(r, InputError)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_the_test_files_read_the_same_in_tiny_chunks(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    expected = {p.name: list(read_har(p, 0)) for p in sorted(DATA.glob("*.har"))}
    monkeypatch.setattr(har, "READ_SIZE", size)
    for p in sorted(DATA.glob("*.har")):
        assert list(read_har(p, 0)) == expected[p.name], p.name


def test_brackets_quotes_and_backslashes_inside_strings_do_not_count(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[[[{{{"\\\\\\"' * 200 + "\\\\" * 50  # brackets, quotes and backslash runs, in a body
    entry = {**ENTRY, "request": {**ENTRY["request"], "postData": {"mimeType": "text/plain", "text": text}}}  # type: ignore[dict-item]
    path = write(tmp_path, json.dumps({"log": {"entries": [entry] * 3}}))
    for size in (1 << 20, 5, 2):
        monkeypatch.setattr(har, "READ_SIZE", size)
        records = list(read_har(path, 0))
        assert [type(r).__name__ for r in records] == ["Exchange"] * 3 + ["Connection"]
        assert records[0].request_body == text.encode()


def _reference(data: bytes) -> tuple[int, str] | None:
    """Byte by byte: where the first level over the limit, or key over the limit, starts."""
    depth, in_str, esc, start = 0, False, False, -1
    for i, c in enumerate(data):
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:
                esc = True
            elif c == 0x22:
                in_str = False
                if i - start - 1 > MAX_KEY_BYTES:
                    j = i + 1
                    while j < len(data) and data[j] in b" \t\r\n":
                        j += 1
                    if j < len(data) and data[j] == 0x3A:
                        return start, "key"
            continue
        if c == 0x5C:  # outside strings: a syntax error for the parser; the guard's view
            esc = not esc
            continue
        if c == 0x22 and esc:
            esc = False
            continue
        esc = False
        if c == 0x22:
            in_str, start = True, i
        elif c in b"[{":
            depth += 1
            if depth > MAX_NESTING:
                return i, "depth"
        elif c in b"]}":
            depth -= 1
    return None


def test_the_guard_agrees_with_a_byte_by_byte_reading_however_chunked() -> None:
    rnd = random.Random(18)
    alphabet = [b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b" ", b":", b","]
    for _ in range(1500):
        parts = []
        for _ in range(rnd.randint(0, 300)):
            r = rnd.random()
            if r < 0.02:
                parts.append(b'"' + b"k" * (MAX_KEY_BYTES + rnd.choice((-1, 0, 1, 9))) + b'"'
                             + rnd.choice((b":", b" :", b",", b"")))
            elif r < 0.05:
                parts.append(b"[" * rnd.randint(1, 80))
            elif r < 0.08:
                parts.append(b"\\" * rnd.randint(1, 5))
            else:
                parts.append(rnd.choice(alphabet))
        data = b"".join(parts)
        cuts = sorted(rnd.randint(0, len(data)) for _ in range(rnd.randint(0, 6)))
        guard = har._JsonGuard(0)
        got = None
        pos = 0
        for end in [*cuts, len(data)]:
            problem = guard.check(data[pos:end])
            if problem is not None:
                got = (problem[1].offset, "depth" if "nested" in str(problem[1]) else "key")
                break
            pos = end
        assert got == _reference(data), (data[:200], cuts)


# ---------------------------------------------------------------------------------------------
# Compressed HAR files (mitmproxy's .zhar): a decompression bomb costs a bounded amount of memory


def _zhar(tmp_path: Path, text: bytes, name: str = "bomb.zhar") -> Path:
    import zlib

    path = tmp_path / name
    path.write_bytes(zlib.compress(text, 9))
    return path


def test_a_zhar_that_decompresses_to_a_huge_entry_stops_at_the_entry_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datareach.sources import read_input

    monkeypatch.setattr(har, "MAX_COMPRESSED_ENTRY", 4 << 20)
    huge = {"request": {"method": "POST", "url": "https://b.example.com/",
                        "postData": {"mimeType": "text/plain", "text": "@"}}}
    # 200 MB of body in a 200 KB file: the reader must not hold it to find the entry's end
    text = ('{"log": {"entries": [' + json.dumps(ENTRY) + ", " + json.dumps(huge) + "]}}").encode()
    before, after = text.split(b'"@"')
    import zlib

    path = tmp_path / "bomb.zhar"
    c = zlib.compressobj(9)
    with open(path, "wb") as f:
        f.write(c.compress(before + b'"'))
        block = b"A" * (1 << 20)
        for _ in range(200):
            f.write(c.compress(block))
        f.write(c.compress(b'"' + after) + c.flush())
    assert path.stat().st_size < 400_000
    records, peak = bounded(read_input(path, 0))
    assert [type(r) for r in records] == [Exchange, Connection, InputError]
    error = records[-1]
    assert isinstance(error, InputError) and error.fatal
    assert error.message.startswith("reading stopped after 1 entry: an entry decompresses to more than "
                                    "4,194,304 bytes (a decompression bomb?)")
    assert peak < 64 << 20


def test_a_zhar_of_many_entries_and_blanks_is_read_in_bounded_memory(tmp_path: Path) -> None:
    from datareach.sources import detect_format, read_input

    entries = ", ".join([json.dumps(ENTRY)] * 20_000)
    text = ('{"log": {"entries": [' + entries + "]" + " " * (100 << 20) + "}}").encode()  # 100 MB of blanks
    path = _zhar(tmp_path, text)
    del text, entries
    assert path.stat().st_size < 1 << 20
    assert detect_format(path) == "har+zlib"
    records, peak = bounded(read_input(path, 0))
    assert sum(isinstance(r, Exchange) for r in records) == 20_000
    assert not any(isinstance(r, InputError) for r in records)
    assert peak < 96 << 20  # the 20,000 exchanges themselves, not the 100 MB of text
