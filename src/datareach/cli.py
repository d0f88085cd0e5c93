"""Command line: a thin layer over :func:`datareach.audit`, :func:`datareach.explain` and the
knowledge base (:mod:`datareach.kb`).

Exit status: 0 success; 2 usage error (also a malformed knowledge-base or policy file, or a
wrong file given to an importer); 3 a ``deny`` rule of a policy is violated (``--policy``; takes
precedence over 4); 4 an input was unreadable or corrupt (everything that could be read is
still reported).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach._version import __version__
from datareach.report.json_report import render_json

if TYPE_CHECKING:
    from datareach.enrich.ownership import ReachOptions

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_POLICY = 3
EXIT_INPUT_ERROR = 4
PROGRESS_MIN_BYTES = 4 << 20

DESCRIPTION = """\
Find out where the traffic of an app, a device or a network went.

datareach reads captures you already have -- pcap or pcapng (tcpdump, Wireshark, PCAPdroid),
HAR (browsers, mitmproxy, HTTP Toolkit, PCAPdroid) and mitmproxy flow files, or audits live
through mitmproxy (`datareach proxy`) -- and lists every destination: its host
name and how it was learned (TLS SNI, QUIC, HTTP Host, DNS, or the bare IP), the registrable
domain, the server's country and network operator (autonomous system), and the bytes sent and
received. For each destination it names the owner up to the ultimate parent and the states
whose laws can reach the data (through the owner, the network host, or the server's location),
each with the path that justifies it. It looks into every request it can read (plain HTTP, HAR,
mitmproxy flows) for personal data: the test device's own values from a profile, in any
encoding or hash, and likely personal data by pattern. With `--policy` it judges the result
against the US DOJ bulk-data rule, PADFA, GDPR transfer rules or your own policy (exit status 3
on a violation), and reports as a table, JSON, Markdown or an offline HTML page; `datareach
diff` compares two audits. Nothing is looked up on the network: all data ships with the tool
(datasets you already have can be imported with `datareach kb import`).
"""

AUDIT_EPILOG = """\
examples:
  datareach audit capture.pcapng                 table in the terminal
  datareach audit app.har --format json -o out.json
  datareach audit a.pcap b.har --geo-db GeoLite2-City.mmdb --geo-db GeoLite2-ASN.mmdb
  datareach profile init profile.toml && datareach audit app.pcap --profile profile.toml
  datareach audit app.har --policy us-doj-bulk-data --policy eu-gdpr-transfers --format html -o report.html
  datareach audit app.pcap --policy our-release-gate.toml --format md > comment.md   # in CI

policies: us-doj-bulk-data (28 CFR 202), us-padfa (15 U.S.C. 9901), eu-gdpr-transfers (GDPR
chapter V), or your own file (`datareach policy show NAME` prints a preset to start from).

exit status: 0 success, 2 usage error, 3 a deny rule of a policy is violated (the report is
still written), 4 an input was unreadable or corrupt (the rest of the input is still reported,
and the JSON lists each error with its file offset).
"""


EXPLAIN_EPILOG = """\
examples:
  datareach explain api16-normal-c-useast1a.tiktokv.com a1.tuyaeu.com
  datareach explain log.byteoversea.com --at 2025-06-01 --json
  cut -f1 hosts.tsv | datareach explain - --format jsonl > owners.jsonl
"""

KB_EPILOG = """\
examples:
  datareach kb status
  datareach kb import tracker-radar ~/src/tracker-radar --licence-note "CC BY-NC-SA 4.0"
  datareach kb import disconnect entities.json
  datareach kb import domains our-vendors.txt --entity "Acme Analytics" --country DE
  datareach kb import mmdb GeoLite2-ASN.mmdb
  datareach kb check src/datareach/kb/data
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datareach", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"datareach {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    a = sub.add_parser(
        "audit", help="report where the traffic in capture files went",
        description="Report every destination in one or more capture files.",
        epilog=AUDIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="pcap, pcapng, HAR or mitmproxy flow file (the format is detected from the content)")
    a.add_argument("--format", type=_report_format, default="table", metavar="FORMAT",
                   help="table (terminal, default), json (the contract in docs/json-output.md), md (Markdown "
                        "for pull-request comments), html (one self-contained file that works offline), or a "
                        "format an installed plugin adds (docs/plugins.md)")
    a.add_argument("--policy", metavar="NAME|FILE", action="append", default=[],
                   help="judge the result against a policy: a preset (us-doj-bulk-data, us-padfa, "
                        "eu-gdpr-transfers) or a policy file; repeatable. Exit status 3 when a deny rule "
                        "is violated")
    a.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of standard output")
    a.add_argument("--geo-db", metavar="FILE", action="append", default=[],
                   help="MaxMind-format .mmdb (GeoLite2, DB-IP or IPinfo layout) to use instead of the "
                        "shipped geo data; repeat for a separate country and ASN file")
    a.add_argument("--profile", metavar="FILE",
                   help="the test device's own values (TOML; `datareach profile init` writes a template) "
                        "to find in every request, in any encoding or hash")
    a.add_argument("--reveal", action="store_true",
                   help="show found values in full (by default reports redact them)")
    a.add_argument("--no-detect", action="store_true", help="do not look for personal data in requests")
    a.add_argument("--engine", choices=("auto", "hyperscan", "portable"), default="auto",
                   help=argparse.SUPPRESS)
    a.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p = sub.add_parser("profile", help="write a profile template (the values to look for)",
                       description="Profiles list the test device's and account's values so that "
                                   "datareach can find them in traffic.")
    psub = p.add_subparsers(dest="profile_command", metavar="ACTION")
    init = psub.add_parser("init", help="write a commented profile template")
    init.add_argument("path", nargs="?", metavar="FILE", help="where to write it (default: standard output)")

    pol = sub.add_parser("policy", help="the policy presets, and checking your own policy files",
                         description="Policies judge an audit (`datareach audit --policy NAME|FILE`). The format "
                                     "is described in docs/policies.md; a preset printed by `show` is a "
                                     "working example to start from.")
    polsub = pol.add_subparsers(dest="policy_command", metavar="ACTION")
    polsub.add_parser("list", help="the presets, with what they implement")
    show = polsub.add_parser("show", help="print a preset's file (to read its rules or start your own)")
    show.add_argument("name", metavar="PRESET")
    pcheck = polsub.add_parser("check", help="check policy files (exit 2 with the place at fault)")
    pcheck.add_argument("paths", nargs="+", metavar="FILE")

    e = sub.add_parser(
        "explain", help="who owns these hosts and which states' laws reach them (no capture needed)",
        description="Owner, ultimate parent and legal reach of host names, from the knowledge base. "
                    "The JSON has the shape of an audit's destinations.",
        epilog=EXPLAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("hosts", nargs="+", metavar="HOST", help="host names; '-' reads one per line from standard input")
    e.add_argument("--format", choices=("table", "json", "jsonl"), default="table",
                   help="table (default), one JSON document, or JSON Lines (one host per line)")
    e.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")
    e.add_argument("--at", metavar="DATE", help="apply the ownership facts of this date (YYYY-MM-DD; default today)")
    e.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    _reach_args(e)
    _reach_args(a)

    df = sub.add_parser(
        "diff", help="what changed between two audits (e.g. app version N and N+1)",
        description="Compare two audit JSON documents (`datareach audit --format json`): destinations, "
                    "owners, jurisdictions, data types, findings and policy violations added or removed.",
        epilog=DIFF_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    df.add_argument("old", metavar="OLD.json", help="the earlier audit (JSON)")
    df.add_argument("new", metavar="NEW.json", help="the later audit (JSON)")
    df.add_argument("--format", choices=("table", "json", "md"), default="table",
                    help="table (terminal, default), json, or md (Markdown for pull-request comments)")
    df.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")

    from datareach.mitm.proxy import add_proxy_parser

    add_proxy_parser(sub)
    k = sub.add_parser("kb", help="the knowledge base: status, check, import datasets",
                       description="The curated knowledge base ships with datareach; datasets you "
                                   "already have can be imported into your data directory.",
                       epilog=KB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ksub = k.add_subparsers(dest="kb_command", metavar="ACTION")
    st = ksub.add_parser("status", help="every source in use, with its date and counts")
    st.add_argument("--json", action="store_true", help="as JSON")
    ck = ksub.add_parser("check", help="check a directory of KB files (default: the shipped one)")
    ck.add_argument("path", nargs="?", metavar="DIR")
    imp = ksub.add_parser("import", help="import a dataset into your data directory")
    imp.add_argument("kind", choices=("tracker-radar", "disconnect", "xray", "domains", "mmdb"),
                     help="tracker-radar: DuckDuckGo Tracker Radar entity files (a file, entities/ or the "
                          "repository); disconnect: Disconnect entities.json; xray: X-Ray owner list (JSON); "
                          "domains: a plain domain list for one entity (--entity); mmdb: a MaxMind-format .mmdb")
    imp.add_argument("path", metavar="PATH")
    imp.add_argument("--entity", metavar="ID_OR_NAME", help="for 'domains': the entity (a KB id or a new name)")
    imp.add_argument("--name", help="for 'domains': the entity's name, when new")
    imp.add_argument("--country", help="for 'domains': the entity's headquarters country (ISO code), when new")
    imp.add_argument("--licence-note", metavar="TEXT", help="the dataset's licence, recorded with it")
    imp.add_argument("--prefer", action="store_true",
                     help="let this dataset win over curated records where they disagree (default: curated wins)")
    rm = ksub.add_parser("remove", help="remove an imported dataset")
    rm.add_argument("id", metavar="ID", help="the dataset id, as `kb status` shows it")
    return parser


DIFF_EPILOG = """\
examples:
  datareach audit v1.pcapng --policy us-doj-bulk-data --format json -o v1.json
  datareach audit v2.pcapng --policy us-doj-bulk-data --format json -o v2.json
  datareach diff v1.json v2.json
  datareach diff v1.json v2.json --format md -o comment.md

exit status: 0 no policy regression, 2 a file is not an audit JSON document (or of another major
schema version), 3 NEW has a deny violation (not allowed) that OLD does not have.
"""


def _diff(args: argparse.Namespace) -> int:
    from datareach.api import diff
    from datareach.report.diff import AuditDocumentError, diff_exit_status

    try:
        d = diff(args.old, args.new)
    except AuditDocumentError as exc:
        print(f"datareach: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        text = render_json(d)
    elif args.format == "md":
        from datareach.report.diff import render_diff_markdown

        text = render_diff_markdown(d)
    else:
        from datareach.report.diff import render_diff_table

        text = render_diff_table(d, color=args.output is None and sys.stdout.isatty())
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    status = diff_exit_status(d)
    if status:
        print(f"datareach: policy regression: {d['summary']['regressions']} deny violation(s) in "
              f"{args.new} that {args.old} does not have", file=sys.stderr)
    return status


def _report_format(value: str) -> str:
    """``audit --format``: a built-in format or a plugin's (imported only when parsing one)."""
    from datareach.report.formats import argument

    return argument(value)


def _reach_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--control-threshold", type=float, default=0.5, metavar="SHARE",
                   help="equity or voting share from which a parent controls a company (default 0.5)")
    p.add_argument("--golden-share-controls", action="store_true",
                   help="count golden shares (special rights with a token stake) as control")


def _audit(args: argparse.Namespace) -> int:
    for p in args.inputs:
        if not os.path.exists(p):
            print(f"datareach: error: input not found: {p}", file=sys.stderr)
            return EXIT_USAGE
    for p in args.geo_db:
        if not os.path.isfile(p):
            print(f"datareach: error: --geo-db file not found: {p}", file=sys.stderr)
            return EXIT_USAGE
    from datareach.report.formats import find as find_format
    from datareach.schema.entrypoints import PluginError

    try:
        report_format = find_format(args.format)
    except PluginError as exc:  # before the audit, which may take a while
        print(f"datareach: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    profile = None
    if args.profile:
        from datareach.detect.profile import ProfileError, load_profile

        try:
            profile = load_profile(Path(args.profile))
        except ProfileError as exc:
            print(f"datareach: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    from datareach.api import audit
    from datareach.assess import PolicyError, load_policy

    try:
        policies = [load_policy(p) for p in args.policy]
    except PolicyError as exc:
        print(f"datareach: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options = {"profile": profile, "policies": policies, "reveal": args.reveal, "detect": not args.no_detect, "engine": args.engine,
               "reach_options": _reach_options(args)}
    sizes = [os.path.getsize(p) if os.path.isfile(p) else 0 for p in args.inputs]
    show_progress = not args.no_progress and sys.stderr.isatty() and sum(sizes) > PROGRESS_MIN_BYTES
    from datareach.enrich.geo import GeoDatabaseError
    from datareach.kb import KBError
    from datareach.sources.mitm import MitmproxyNotFound

    try:
        if show_progress:
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                          TimeRemainingColumn(), transient=True) as bar:
                tasks = [bar.add_task(Path(p).name, total=s) for p, s in zip(args.inputs, sizes, strict=True)]
                result = audit(args.inputs, geo_db=args.geo_db,
                               progress=lambda i, n: bar.update(tasks[i], completed=n), **options)
        else:
            result = audit(args.inputs, geo_db=args.geo_db, **options)
    except (GeoDatabaseError, KBError, PolicyError, MitmproxyNotFound) as exc:
        print(f"datareach: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    doc = result.to_dict()
    render_terminal = getattr(report_format, "render_terminal", None) if args.output is None else None
    try:
        if render_terminal is not None:
            text = render_terminal(doc, color=sys.stdout.isatty())
        else:
            text = report_format.render(doc)
    except Exception as exc:
        from datareach.report.formats import BUILTIN_FORMATS

        if any(report_format is f for f in BUILTIN_FORMATS):
            raise
        print(f"datareach: error: the report format {args.format!r} (a plugin) failed: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if result.has_errors:
        for inp in result.inputs:
            for e in inp.errors:
                where = f" (offset {e.offset})" if e.offset is not None else ""
                where += f" ({e.json_path})" if e.json_path else ""
                print(f"datareach: {inp.path}{where}: {e.message}", file=sys.stderr)
    if result.policies:
        counts = doc["summary"]["violations"]
        print(f"datareach: policy verdict: {doc['summary']['verdict']} ({counts['deny']} deny, {counts['warn']} warn, "
              f"{counts['allowed']} allowed)", file=sys.stderr)
    if result.failed:
        return EXIT_POLICY
    if result.has_errors:
        return EXIT_INPUT_ERROR
    return EXIT_OK


def _profile(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from datareach.detect.profile import TEMPLATE

    if args.profile_command != "init":
        parser.parse_args(["profile", "--help"])
        return EXIT_USAGE
    if args.path is None:
        sys.stdout.write(TEMPLATE)
        return EXIT_OK
    path = Path(args.path)
    if path.exists():
        print(f"datareach: error: {path} exists; not overwriting it", file=sys.stderr)
        return EXIT_USAGE
    path.write_text(TEMPLATE, encoding="utf-8")
    print(f"wrote {path}: fill in the test device's values, then "
          f"`datareach audit CAPTURE --profile {path}`", file=sys.stderr)
    return EXIT_OK


def _policy(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from datareach.assess import PRESETS, PolicyError, load_policy
    from datareach.assess.policy import PRESET_DIR

    if args.policy_command == "list":
        for name in PRESETS:
            p = load_policy(name)
            print(f"{name}: {p.name} (as of {p.as_of}; {len(p.rules)} rules: "
                  f"{', '.join(f'{r.id} [{r.action}]' for r in p.rules)})")
        return EXIT_OK
    if args.policy_command == "show":
        if args.name not in PRESETS:
            print(f"datareach: error: no preset {args.name!r} (presets: {', '.join(PRESETS)})", file=sys.stderr)
            return EXIT_USAGE
        sys.stdout.write((PRESET_DIR / f"{args.name}.toml").read_text(encoding="utf-8"))
        return EXIT_OK
    if args.policy_command == "check":
        from datareach.api import check_policy

        status = EXIT_OK
        for path in args.paths:
            try:
                p = check_policy(path)
            except PolicyError as exc:
                print(f"datareach: error: {exc}", file=sys.stderr)
                status = EXIT_USAGE
                continue
            print(f"{path}: OK: policy {p.id}, {len(p.rules)} rules, {len(p.allow)} allow entries"
                  + (f", extends {', '.join(p.extends)}" if p.extends else ""))
        return status
    parser.parse_args(["policy", "--help"])
    return EXIT_USAGE


def _reach_options(args: argparse.Namespace) -> ReachOptions:
    from datareach.enrich.ownership import ReachOptions

    return ReachOptions(control_threshold=args.control_threshold, golden_share_controls=args.golden_share_controls)


def _explain(args: argparse.Namespace) -> int:
    import orjson

    from datareach.enrich.ownership import OwnershipResolver, cited_laws
    from datareach.explainer import explain_iter, explain_json_lines
    from datareach.kb import KBError, knowledge_base

    date = args.at or datetime.now(UTC).date().isoformat()
    try:
        datetime.strptime(date, "%Y-%m-%d")
    except ValueError:
        print(f"datareach: error: --at wants a date YYYY-MM-DD, not {date!r}", file=sys.stderr)
        return EXIT_USAGE
    if not 0 < args.control_threshold <= 1:
        print("datareach: error: --control-threshold is a share in (0, 1]", file=sys.stderr)
        return EXIT_USAGE
    try:
        kb = knowledge_base()
    except KBError as exc:
        print(f"datareach: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    resolver = OwnershipResolver(kb, _reach_options(args))
    # The knowledge base is a few hundred thousand long-lived objects: keep the collector from
    # walking them again and again while hundreds of thousands of answers are made.
    gc.collect()
    gc.freeze()

    def hosts() -> Iterator[str]:
        for h in args.hosts:
            if h == "-":
                for line in sys.stdin:
                    yield line.split("#", 1)[0]
            else:
                yield h

    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    try:
        if args.format == "jsonl":
            for chunk in _chunks(explain_json_lines(hosts(), resolver, date), 4000):
                out.write(b"\n".join(chunk) + b"\n")
        elif args.format == "json":
            reach_lists: dict[Any, list[dict[str, Any]]] = {}
            out.write(b'{"schema_version":"1.0","date":' + orjson.dumps(date)
                      + b',"data_sources":' + orjson.dumps(kb.data_sources()) + b',"hosts":[\n')
            first = True
            for chunk in _chunks(explain_json_lines(hosts(), resolver, date, reach_lists), 4000):
                out.write((b"" if first else b",\n") + b",\n".join(chunk))
                first = False
            laws = cited_laws(kb, (x for rl in reach_lists.values() for x in rl))
            out.write(b'\n],"laws":' + orjson.dumps(laws) + b"}\n")
        else:
            from datareach.report.table import render_explain

            docs = list(explain_iter(hosts(), resolver, date))
            color = args.output is None and sys.stdout.isatty()
            out.write(render_explain(docs, date, color=color).encode())
    finally:
        if args.output:
            out.close()
        else:
            out.flush()
    return EXIT_OK


def _chunks(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _kb(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from datareach.kb import KBError

    try:
        if args.kb_command == "status":
            return _kb_status(args)
        if args.kb_command == "check":
            from datareach.kb.index import DATA_DIR
            from datareach.kb.load import read_kb

            root = Path(args.path) if args.path else DATA_DIR
            raw = read_kb(root)
            domains = sum(len(e.get("domains", [])) for e in raw.entities.values())
            asns = sum(len(a.get("numbers", [])) for a in raw.autonomous_systems)
            print(f"{root}: OK: {len(raw.entities)} entities, {domains} domains, {asns} AS numbers, "
                  f"{len(raw.jurisdictions)} jurisdictions, {len(raw.lists)} lists, {len(raw.sources)} sources")
            return EXIT_OK
        if args.kb_command == "import":
            return _kb_import(args)
        if args.kb_command == "remove":
            from datareach.kb import reset, store

            if not store.remove_import(args.id):
                print(f"datareach: error: no imported dataset {args.id!r} (see `datareach kb status`)",
                      file=sys.stderr)
                return EXIT_USAGE
            reset()
            print(f"removed {args.id}")
            return EXIT_OK
    except KBError as exc:
        print(f"datareach: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    parser.parse_args(["kb", "--help"])
    return EXIT_USAGE


def _kb_import(args: argparse.Namespace) -> int:
    from datareach.api import import_dataset
    from datareach.kb.importers import KBImportError

    path = Path(args.path)
    if not path.exists():
        print(f"datareach: error: not found: {path}", file=sys.stderr)
        return EXIT_USAGE
    if args.kind == "domains" and not args.entity:
        print("datareach: error: `kb import domains` needs --entity", file=sys.stderr)
        return EXIT_USAGE
    try:
        ds = import_dataset(args.kind, path, licence_note=args.licence_note, prefer=args.prefer,
                            entity=args.entity, name=args.name, country=args.country)
    except KBImportError as exc:
        print(f"datareach: error: {exc} (nothing was changed)", file=sys.stderr)
        return EXIT_USAGE
    counts = ", ".join(f"{v} {k}" for k, v in ds.counts.items())
    print(f"imported {ds.kind} {ds.file} as {ds.id}" + (f": {counts}" if counts else ""))
    return EXIT_OK


def _kb_status(args: argparse.Namespace) -> int:
    import orjson

    from datareach.kb import knowledge_base, store

    kb = knowledge_base()
    problems: list[str] = []
    store.list_imports(problems)  # files in the data directory that are not valid datasets
    doc: dict[str, Any] = {"data_dir": str(store.data_dir()), "counts": kb.counts(), "as_of": kb.meta.get("as_of"),
                           "sources": kb.data_sources(), "imports": kb.imports, "problems": problems}
    if args.json:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return EXIT_OK
    c = doc["counts"]
    print(f"curated knowledge base (datareach {__version__}): {c['entities']} entities, {c['domains']} domains, "
          f"{c['autonomous_systems']} AS numbers and {c['as_names']} AS names, {c['jurisdictions']} "
          f"jurisdictions, {c['laws']} laws, {c['lists']} lists, {c['sources']} cited sources")
    if doc["as_of"]:
        print(f"  records checked between {doc['as_of'][0]} and {doc['as_of'][1]}")
    print(f"imported datasets (in {doc['data_dir']}):")
    if not kb.imports:
        print("  none (see `datareach kb import --help`)")
    for imp in kb.imports:
        rule = "wins over curated records" if imp["prefer"] else "curated records win"
        print(f"  {imp['id']}: {imp['kind']} {imp['file']} (sha256 {imp['sha256'][:12]}…), "
              f"data of {imp['dataset_date'] or 'unknown date'}, imported {imp['imported_at']}; "
              f"licence: {imp['licence_note'] or 'not stated'}; {rule}; "
              f"{imp['entities_added']} new entities, {imp['domains_lost_to_curated']} domains kept by curated, "
              f"{imp['domains_won_over_curated']} taken over")
    for p in problems:
        print(f"  warning: {p}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return int(e.code or 0)
    if args.command == "audit":
        return _audit(args)
    if args.command == "profile":
        return _profile(args, parser)
    if args.command == "policy":
        return _policy(args, parser)
    if args.command == "explain":
        return _explain(args)
    if args.command == "kb":
        return _kb(args, parser)
    if args.command == "diff":
        return _diff(args)
    if args.command == "proxy":
        from datareach.mitm.proxy import run_proxy

        return run_proxy(args)
    parser.print_help()
    return EXIT_USAGE


def run() -> None:
    """The console entry point: :func:`main`, then a quick exit.

    A large audit leaves hundreds of thousands of objects; freeing them one by one at
    interpreter exit takes a noticeable fraction of the run, so once the report is written and
    the streams are flushed, the process ends at once.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
