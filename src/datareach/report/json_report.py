"""The JSON document (its contract is docs/json-output.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, BinaryIO

import orjson

from datareach.report.terminal import inert_json


def render_json(doc: dict[str, Any]) -> str:
    """The document as indented UTF-8 JSON text, fields in contract order. Characters a terminal
    could act on (DEL, C1 controls, bidi and other format characters; orjson escapes C0 itself)
    are written as ``\\uXXXX`` escapes (:func:`~datareach.report.terminal.inert_json`): the same
    JSON value, safe to ``cat``."""
    return inert_json(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)).decode("utf-8")


def write_json(doc: dict[str, Any], out: BinaryIO) -> None:
    """:func:`render_json`'s bytes written to ``out`` as they are made: the rows of the
    document's sequences (a result's destinations, exchanges and findings, which it may hold on
    disk: :class:`~datareach.engine.store.DocumentView`) a batch at a time, so that writing a
    report of a million rows holds one batch of them, never the whole text."""
    import gc

    dumps, indent = orjson.dumps, orjson.OPT_INDENT_2
    collecting = gc.isenabled()
    gc.disable()  # the rows are acyclic: nothing for the collector to find, and much to walk
    try:
        _write(doc, out, dumps, indent)
    finally:
        if collecting:
            gc.enable()


def _write(doc: dict[str, Any], out: BinaryIO, dumps: Any, indent: int) -> None:
    out.write(b"{")
    for n, (key, value) in enumerate(doc.items()):
        out.write(b"," if n else b"")
        out.write(b"\n  " + dumps(key) + b": ")
        if isinstance(value, Sequence) and not isinstance(value, str | bytes) and len(value):
            out.write(b"[")
            batches = value.batches() if hasattr(value, "batches") else (value,)
            first = True
            for batch in batches:
                if batch:
                    # (a batch's rows joined, then made inert and indented at once: the same bytes
                    # as row by row, since both act on single characters and the joint is ",\n")
                    text = inert_json(b",\n".join([dumps(row, option=indent) for row in batch]))
                    out.write((b"" if first else b",") + b"\n    " + text.replace(b"\n", b"\n    "))
                    first = False
            out.write(b"\n  ]")
        else:
            value = [] if hasattr(value, "batches") else value  # (an empty store's view)
            out.write(inert_json(dumps(value, option=indent)).replace(b"\n", b"\n  "))
    out.write(b"\n}\n" if doc else b"}\n")
