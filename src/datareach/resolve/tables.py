"""Records to Arrow tables: the columns every function in :mod:`datareach.resolve` works on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from datareach.model import CONNECTION_FIELDS

CONNECTION_SCHEMA = pa.schema(
    [
        ("transport", pa.string()),
        ("client_ip", pa.string()),
        ("client_port", pa.int32()),
        ("server_ip", pa.string()),
        ("server_port", pa.int32()),
        ("first_seen", pa.float64()),
        ("last_seen", pa.float64()),
        ("packets_out", pa.int64()),
        ("bytes_out", pa.int64()),
        ("packets_in", pa.int64()),
        ("bytes_in", pa.int64()),
        ("sni", pa.string()),
        ("quic_sni", pa.string()),
        ("http_host", pa.string()),
        ("ech", pa.bool_()),
        ("protocol", pa.string()),
        ("app", pa.string()),
        ("input_index", pa.int32()),
        ("flows", pa.int64()),
    ]
)


def connections_table(rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Connection rows (:data:`~datareach.model.CONNECTION_FIELDS` order) as an Arrow table."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in CONNECTION_FIELDS]
    by_name = dict(zip(CONNECTION_FIELDS, columns, strict=True))
    return pa.table([pa.array(by_name[f.name], f.type) for f in CONNECTION_SCHEMA], schema=CONNECTION_SCHEMA)
