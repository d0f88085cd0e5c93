"""Small MaxMind-format ``.mmdb`` files in the vendors' layouts, written with mmdb-writer.

mmdb-writer and netaddr are test dependencies (the ``test`` extra).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Final

from mmdb_writer import MMDBWriter
from netaddr import IPSet

__all__ = ["EPOCH_2024_05_01", "MmdbWriter", "write_mmdb"]

#: The default build time written into the files' metadata.
EPOCH_2024_05_01: Final = int(dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC).timestamp())


class MmdbWriter(MMDBWriter):
    """MMDBWriter with a fixed build time, so that the source date can be checked."""

    def __init__(self, *args: Any, build_epoch: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch = build_epoch

    def _build_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = super()._build_meta()
        meta["build_epoch"] = self._epoch
        return meta


def write_mmdb(
    path: Path,
    database_type: str,
    records: dict[str, dict[str, Any]],
    *,
    build_epoch: int = EPOCH_2024_05_01,
    description: str = "test data",
) -> Path:
    """An IPv6 database (IPv4 mapped in) of type ``database_type`` with one record per CIDR."""
    writer = MmdbWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description=description,
        build_epoch=build_epoch,
    )
    for cidr, record in records.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path
