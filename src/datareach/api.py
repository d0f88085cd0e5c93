"""The public Python API: ``datareach.audit(...)``.

:func:`audit` builds the pipeline (:class:`~datareach.engine.Pipeline`: the detect stage run on
each request, the enrich stages of :mod:`datareach.enrich.stages`, the policies of the assess
stage) and hands it to an engine (:class:`~datareach.engine.local.LocalEngine`), which returns
an :class:`Audit`: the same content as the JSON document, which :mod:`datareach.report` renders.
docs/architecture.md tells the whole story.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach.assess import Policy, load_policy
from datareach.engine import AuditOptions, Pipeline
from datareach.engine.local import LocalEngine, prepare
from datareach.engine.result import SCHEMA_VERSION, Audit
from datareach.schema import Exchange, InputReport

if TYPE_CHECKING:
    from datareach.detect import Profile
    from datareach.enrich.ownership import ReachOptions

__all__ = ["DATASET_KINDS", "SCHEMA_VERSION", "Audit", "InputReport", "audit", "build_pipeline", "check_policy", "diff",
           "import_dataset", "prepare"]


def build_pipeline(options: AuditOptions) -> Pipeline:
    """The stages an audit with these options runs (policies are loaded here: a policy that
    cannot be read raises :class:`~datareach.assess.PolicyError` before anything is read)."""
    from datareach.enrich.stages import CONNECTION_STAGES, DESTINATION_STAGES

    judged = [p if isinstance(p, Policy) else load_policy(p) for p in options.policies]
    keys = None
    if options.keylogs:  # (read now: a key log that cannot be read is reported before any input)
        from datareach.dissect.keylog import KeyStore, read_keylog_file

        keys = KeyStore()
        for path in options.keylogs:
            read_keylog_file(keys, os.fspath(path))
    detector = None
    if options.detect:
        from datareach.detect.detector import Detector
        from datareach.detect.profile import load_profile

        profile = options.profile
        prof = load_profile(Path(profile)) if isinstance(profile, str | os.PathLike) else profile
        detector = Detector(prof, engine=options.matcher)
    keep_bodies = options.keep_bodies

    def on_request(ex: Exchange) -> None:
        # runs where the request is read (a parallel reader's own process), so that the
        # detectors use every core and request bodies need not travel between processes
        if detector is not None:
            ex.findings, ex.decode_cuts = detector.detect(ex)
        if not keep_bodies and ex.request_body:
            ex.request_body_size = len(ex.request_body)
            ex.request_body = b""

    return Pipeline(
        per_request=on_request,
        read_bodies=keep_bodies or detector is not None,
        connection_stages=CONNECTION_STAGES,
        destination_stages=DESTINATION_STAGES,
        keys=keys,
        policies=judged,
        detection={
            "enabled": detector is not None,
            "profile": detector is not None and detector.profile is not None,
            "engine": detector.engine if detector is not None else None,
        },
    )


def audit(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    geo_db: Sequence[str | os.PathLike[str]] | None = None,
    keep_bodies: bool = False,
    progress: Callable[[int, int], None] | None = None,
    profile: Profile | str | os.PathLike[str] | None = None,
    reveal: bool = False,
    detect: bool = True,
    engine: str = "auto",
    reach_options: ReachOptions | None = None,
    policies: Sequence[str | os.PathLike[str] | Policy] | str | os.PathLike[str] | Policy = (),
    keylog: Sequence[str | os.PathLike[str]] | str | os.PathLike[str] = (),
    matcher: str = "auto",
    since: float | None = None,
    until: float | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    master: str | None = None,
    memory_limit: str | None = None,
    log_progress: Callable[[str, int, int], None] | None = None,
) -> Audit:
    """Audit capture files (pcap, pcapng, HAR, mitmproxy flows) or sensor logs (Zeek, Suricata
    EVE; files or directories of rotated logs), each detected from its content.

    ``engine``: "local" (captures: this machine's cores), "duckdb" (logs: out of core, the
    default for logs), "spark" (logs, on a Spark cluster at ``master``; ``local[2]`` without
    one), or "auto" (duckdb for logs, local otherwise). For logs: ``since``/``until`` (epoch
    seconds) bound the rows read; ``output_dir`` receives the Parquet tables (connections,
    destinations, owners, clients, bulk); ``memory_limit`` is DuckDB's (e.g. "2GB");
    ``log_progress(phase, rows, rows_expected)`` is called while the engine reads.

    ``geo_db``: MaxMind-format .mmdb files to use instead of the shipped geo data.
    ``keep_bodies``: keep request headers and bodies in :attr:`Audit.raw_exchanges`.
    ``progress(input_index, bytes_done)`` is called while large inputs are read.
    ``profile``: the test device's values (a :class:`~datareach.detect.Profile` or a TOML file)
    to find in every request, in any encoding; personal data is also found by pattern unless
    ``detect=False``. Found values are redacted in the result unless ``reveal``. ``engine``
    picks the matcher ("auto", "hyperscan", "portable"). ``reach_options`` sets the
    ownership walk's control threshold (:class:`~datareach.enrich.ownership.ReachOptions`).
    ``policies``: presets (``us-doj-bulk-data``, ``us-padfa``, ``eu-gdpr-transfers``), policy
    files or :class:`~datareach.assess.Policy` objects to judge the result against: they fill
    :attr:`Audit.violations` (a policy that cannot be read raises
    :class:`~datareach.assess.PolicyError` before anything is read).
    ``keylog``: TLS key log files (the ``SSLKEYLOGFILE`` format browsers, curl, OpenSSL,
    PCAPdroid, PiRogue and mitmproxy write): the TLS and QUIC connections they hold secrets for
    are decrypted and the HTTP/1.x, HTTP/2 and HTTP/3 requests inside read like plain HTTP
    (pcapng Decryption Secrets Blocks are read without being asked; an input that is a PiRogue
    output folder is its ``traffic.pcap`` with its ``sslkeylog.txt``; any other folder is the files
    below it whose content datareach reads, in sorted order). A key log that cannot be read raises
    :class:`~datareach.dissect.keylog.KeyLogError` before anything is read.
    """
    from datareach.sources.folders import expand_inputs

    given = _paths(inputs, "inputs")
    if engine in MATCHERS[1:]:  # (before 0.2, ``engine`` named the matcher)
        import warnings

        warnings.warn(f"audit(engine={engine!r}) names a matcher: use matcher={engine!r}", DeprecationWarning,
                      stacklevel=2)
        engine, matcher = "auto", engine
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if matcher not in MATCHERS:
        raise ValueError(f"matcher must be one of {', '.join(MATCHERS)}, not {matcher!r}")
    logs = engine in ("duckdb", "spark") or (engine == "auto" and bool(given) and all(is_log_input(p) for p in given))
    skipped: list[str] = []  # (a folder's files in no format datareach reads: reported as such, not left out)
    folder_keys: list[Path] = []
    if logs:
        inputs = list(given)
    else:
        inputs, folder_keys = expand_inputs(given, skipped)  # (a PiRogue folder: capture and key log)
        inputs += [p for p in skipped if os.path.isfile(p)]
    geo_db = _paths(geo_db or (), "geo_db")
    if isinstance(policies, str | os.PathLike | Policy):  # one policy given on its own
        policies = [policies]
    else:
        policies = list(policies)
        for p in policies:
            if not isinstance(p, str | os.PathLike | Policy):
                raise TypeError(f"policies: {type(p).__name__} is not a preset name, a policy file or a Policy")
    if profile is not None and not isinstance(profile, str | os.PathLike):
        from datareach.detect import Profile as ProfileClass

        if not isinstance(profile, ProfileClass):
            raise TypeError(f"profile: {type(profile).__name__} is not a Profile or a profile file")
    options = AuditOptions(geo_db=geo_db, keep_bodies=keep_bodies, progress=progress, profile=profile,
                           reveal=reveal, detect=detect, matcher=matcher, reach_options=reach_options,
                           policies=policies, keylogs=[*_paths(keylog, "keylog"), *folder_keys],
                           since=since, until=until, output_dir=output_dir, master=master,
                           log_progress=log_progress)
    if not logs:
        return LocalEngine().run(inputs, build_pipeline(options), options)
    if engine == "spark":
        from datareach.engine.spark import SparkEngine

        return SparkEngine(master=master).run(inputs, build_pipeline(options), options)
    from datareach.engine.duckdb import DuckDBEngine

    return DuckDBEngine(memory_limit=memory_limit).run(inputs, build_pipeline(options), options)


#: The engines ``audit(engine=...)`` takes.
ENGINES = ("auto", "local", "duckdb", "spark")
#: The known-value matchers ``audit(matcher=...)`` takes.
MATCHERS = ("auto", "hyperscan", "portable")


def is_log_input(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Zeek or Suricata log, or a directory with one below it (and no
    capture: a folder of captures goes to the local engine)."""
    from datareach.sources.logs import read_head, sniff_log

    p = Path(path)
    if p.is_file():
        try:
            head, _ = read_head(p)
        except OSError:
            return False
        return sniff_log(head, p.name) is not None
    if p.is_dir():
        for root, _dirs, files in os.walk(p):
            for name in sorted(files)[:64]:
                if is_log_input(Path(root) / name):
                    return True
    return False


def _paths(value: Any, name: str) -> list[str | os.PathLike[str]]:
    """``value`` as a list of paths: one path on its own is a list of one (a string is not
    taken for a sequence of one-letter file names)."""
    if isinstance(value, str | os.PathLike):
        return [value]
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name}: expected a list of file paths, not {type(value).__name__}")
    items = list(value)
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise TypeError(f"{name}: {type(item).__name__} is not a file path")
    return items


def diff(old: str | os.PathLike[str] | dict[str, Any], new: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    """What changed between two audits (JSON files or documents): ``datareach diff``.

    Raises :class:`~datareach.report.diff.AuditDocumentError` when a file is not an audit document
    this version reads (schema 1.x or 2.x). Policy regressions: :func:`diff_exit_status`.
    """
    from datareach.report.diff import check_audit, diff_audits, load_audit

    docs, names = [], []
    for which, item in (("OLD", old), ("NEW", new)):
        docs.append(check_audit(item, which) if isinstance(item, dict) else load_audit(item))
        names.append(which if isinstance(item, dict) else str(item))
    return diff_audits(docs[0], docs[1], old_name=names[0], new_name=names[1])


def check_policy(path: str | os.PathLike[str], *,
                 policy_path: Sequence[str | os.PathLike[str]] | None = None) -> Policy:
    """Load a policy file and check that every jurisdiction and list it names is known:
    ``datareach policy check``. Raises :class:`~datareach.assess.PolicyError` naming the place.
    ``policy_path``: directories the policy may extend files from besides its own (as
    ``--policy-path``; ``DATAREACH_POLICY_PATH`` counts too)."""
    from datareach.assess.evaluate import country_set
    from datareach.kb import knowledge_base

    policy = load_policy(path, policy_path=policy_path)
    kb = knowledge_base()
    for r in policy.rules:
        country_set(kb, r.jurisdictions, r.lists, f"{path}: rule {r.id}")
        country_set(kb, r.except_jurisdictions, r.except_lists, f"{path}: rule {r.id}")
    return policy


#: The dataset kinds ``import_dataset`` (``datareach kb import``) takes.
DATASET_KINDS = ("tracker-radar", "disconnect", "xray", "domains", "mmdb", "ddg-app", "adguard-companiesdb",
                 "ghostery-trackerdb", "exodus")


def import_dataset(kind: str, path: str | os.PathLike[str], *, licence_note: str | None = None,
                   prefer: bool = False, entity: str | None = None, name: str | None = None,
                   country: str | None = None) -> Any:
    """Import a dataset into the user's data directory: ``datareach kb import``.

    ``kind`` is one of :data:`DATASET_KINDS`; ``domains`` needs ``entity`` (and takes ``name``,
    ``country``). Returns the import's record; raises
    :class:`~datareach.kb.importers.KBImportError` (nothing changed) on a bad file.
    """
    from datareach.kb import importers, reset

    p = Path(path)
    common: dict[str, Any] = {"licence_note": licence_note, "prefer": prefer}
    if kind == "tracker-radar":
        ds = importers.import_tracker_radar(p, **common)
    elif kind == "disconnect":
        ds = importers.import_disconnect(p, **common)
    elif kind == "xray":
        ds = importers.import_xray(p, **common)
    elif kind == "domains":
        if not entity:
            raise importers.KBImportError("a domain list needs the entity it belongs to (--entity)")
        ds = importers.import_domain_list(p, entity=entity, name=name, country=country, **common)
    elif kind == "mmdb":
        ds = importers.import_mmdb(p, **common)
    elif kind == "ddg-app":
        ds = importers.import_ddg_app(p, **common)
    elif kind == "adguard-companiesdb":
        ds = importers.import_adguard_companiesdb(p, **common)
    elif kind == "ghostery-trackerdb":
        ds = importers.import_ghostery_trackerdb(p, **common)
    elif kind == "exodus":
        ds = importers.import_exodus(p, **common)
    else:
        raise importers.KBImportError(f"unknown dataset kind {kind!r} (kinds: {', '.join(DATASET_KINDS)})")
    reset()
    return ds
