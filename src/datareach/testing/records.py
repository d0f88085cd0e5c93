"""An input file read back into records, sorted by kind, for the tests' assertions."""

from __future__ import annotations

from pathlib import Path

from datareach.schema import (
    Connection,
    ConnectionBatch,
    DnsAnswer,
    Exchange,
    InputError,
    PacketAccounting,
    Record,
)
from datareach.sources import read_input

__all__ = ["Records", "read"]


class Records:
    """The records of one input: every record, and each kind on its own (connection batches
    unrolled into connections)."""

    def __init__(self, records: list[Record]) -> None:
        self.all = records
        self.connections = [r for r in records if isinstance(r, Connection)] + [
            c for r in records if isinstance(r, ConnectionBatch) for c in r.connections()]
        self.dns = [r for r in records if isinstance(r, DnsAnswer)]
        self.exchanges = [r for r in records if isinstance(r, Exchange)]
        self.errors = [r for r in records if isinstance(r, InputError)]
        #: what became of a capture's frames (None for other inputs)
        self.packets = next((r.to_dict() for r in records if isinstance(r, PacketAccounting)), None)

    def conn(self, server_port: int | None = None, server_ip: str | None = None) -> Connection:
        """The one connection to ``server_port`` / ``server_ip`` (an assertion error unless exactly one)."""
        found = [c for c in self.connections
                 if (server_port is None or c.server_port == server_port)
                 and (server_ip is None or c.server_ip == server_ip)]
        assert len(found) == 1, found
        return found[0]


def read(path: Path) -> Records:
    """Every record of the input file at ``path`` (any format :func:`read_input` knows)."""
    return Records(list(read_input(path, 0)))
