"""The JSON document (its contract is docs/json-output.md)."""

from __future__ import annotations

from typing import Any

import orjson


def render_json(doc: dict[str, Any]) -> str:
    """The document as indented UTF-8 JSON text, fields in contract order."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode("utf-8")
