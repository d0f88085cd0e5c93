"""Engines: what runs the pipeline's stages over the inputs.

The pipeline (:class:`Pipeline`) is data: the stage run on each HTTP request where it is read
(detection), the connection-level and destination-level enrich stages
(:mod:`datareach.enrich.stages`), and the policies of the assess stage. An engine decides where
and how those stages run:

* :class:`~datareach.engine.local.LocalEngine` (the default) reads each input in this process or
  with parallel reader processes (handing them the per-request stage explicitly), then runs
  the enrich stages on Arrow tables in this process;
* a DuckDB or Spark engine reads its rows elsewhere (a Zeek ``conn.log`` as a table, say), does
  the group-by in SQL, and hands record batches to the same stage functions (for Spark,
  through ``mapInArrow``): the stages never know which engine runs them.

Every engine returns an :class:`~datareach.engine.result.Audit`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datareach.assess import Policy
    from datareach.detect import Profile
    from datareach.engine.result import Audit
    from datareach.enrich.ownership import ReachOptions
    from datareach.enrich.stages import Stage
    from datareach.schema import Exchange

__all__ = ["AuditOptions", "Engine", "EngineLimitError", "Pipeline"]


class EngineLimitError(RuntimeError):
    """An engine ran out of what it was given (DuckDB's memory limit): the message says which
    limit, where, and what to change."""


@dataclass
class AuditOptions:
    """What ``datareach.audit`` was asked for (see its docstring)."""

    geo_db: Sequence[str | os.PathLike[str]] = ()
    keep_bodies: bool = False
    progress: Callable[[int, int], None] | None = None
    profile: Profile | str | os.PathLike[str] | None = None
    reveal: bool = False
    detect: bool = True
    #: the known-value matcher: "auto", "hyperscan" or "portable"
    matcher: str = "auto"
    reach_options: ReachOptions | None = None
    policies: Sequence[str | os.PathLike[str] | Policy] = ()
    #: TLS key log files (NSS SSLKEYLOGFILE format): connections they have secrets for are decrypted
    keylogs: Sequence[str | os.PathLike[str]] = ()
    #: log audits: the rows (and rotated files) to read, epoch seconds, [since, until)
    since: float | None = None
    until: float | None = None
    #: log audits: where the Parquet tables go (None: none written)
    output_dir: str | os.PathLike[str] | None = None
    #: log audits: called with (phase, rows done, rows expected) while the engine reads
    log_progress: Callable[[str, int, int], None] | None = None
    #: the Spark engine's master URL (local[2] when None)
    master: str | None = None


@dataclass
class Pipeline:
    """The stages an engine runs, in order."""

    #: Run on every HTTP request where it is read (a parallel reader's own process): detection.
    per_request: Callable[[Exchange], None] | None = None
    #: Whether readers keep request bodies (the per-request stage may drop them once done).
    read_bodies: bool = True
    connection_stages: Sequence[Stage] = ()
    destination_stages: Sequence[Stage] = ()
    policies: Sequence[Policy] = ()
    #: What detection ran with (reported in the document's ``detection``).
    detection: dict[str, object] = field(default_factory=dict)
    #: The key logs' secrets (a :class:`~datareach.dissect.keylog.KeyStore`), handed to the readers.
    keys: Any = None


class Engine(Protocol):
    """Runs a pipeline over inputs."""

    name: str

    def run(self, inputs: Sequence[str | os.PathLike[str]], pipeline: Pipeline, options: AuditOptions) -> Audit: ...
