"""Command line: a thin layer over :func:`datareach.audit`, :func:`datareach.explain` and the
knowledge base (:mod:`datareach.kb`).

Exit status: 0 success; 1 an internal error (a bug: one line says so, ``--debug`` or
``DATAREACH_DEBUG=1`` shows the traceback); 2 usage error (also a malformed knowledge-base,
policy or profile file, an output file that cannot be written, a directory or a device given as
an input, or a wrong file given to an importer); 3 a ``deny`` rule of a policy is violated
(``--policy``; ``--fail-on warn``: a deny or a warn rule; ``--fail-on never``: never; takes
precedence over 4); 4 an input was unreadable or corrupt (everything that
could be read is still reported); 130 interrupted (Ctrl-C).

Every message that echoes something the user gave (file names, values) is made printable with
:func:`datareach.report.terminal.safe`; files are checked (inputs exist and are regular files,
the output file can be written) before anything is read.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datareach._version import __version__
from datareach.report.junit import FAIL_ON, fails
from datareach.report.terminal import safe

if TYPE_CHECKING:
    from datareach.enrich.ownership import ReachOptions

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_POLICY = 3
EXIT_INPUT_ERROR = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
#: Set (to anything but 0) to get the traceback of an internal error, as ``--debug`` does.
DEBUG_ENV = "DATAREACH_DEBUG"
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
  datareach audit app.pcap --policy us-doj-bulk-data --fail-on warn --format sarif,junit,json -o out/datareach
  datareach audit app.pcap --policy eu-gdpr-transfers -o report.sarif -o report.csv   # formats by extension

policies: us-doj-bulk-data (28 CFR 202), us-padfa (15 U.S.C. 9901), eu-gdpr-transfers (GDPR
chapter V), or your own file (`datareach policy show NAME` prints a preset to start from).

inputs are regular files: a directory, a device or a FIFO (named pipe) is refused; save a
stream to a file first. Compressed captures (.gz, .zst, ...) must be decompressed first.

exit status: 0 success, 1 internal error (a bug; --debug shows the traceback), 2 usage error,
3 a deny rule of a policy is violated (--fail-on warn: a deny or a warn rule; --fail-on never:
never; the reports are still written), 4 an input was unreadable
or corrupt (the rest of the input is still reported, and the JSON lists each error with its file
offset), 130 interrupted.
"""


EXPLAIN_EPILOG = """\
examples:
  datareach explain api16-normal-c-useast1a.tiktokv.com a1.tuyaeu.com
  datareach explain log.byteoversea.com --at 2025-06-01 --json
  datareach explain https://d3k8x0qj2abcd.cloudfront.net/v1/e 157.240.0.35
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


class _Version(argparse.Action):
    """--version: the version and which packet core runs (never in a report: the JSON of both
    paths is the same byte for byte)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from datareach._core import packet_core

        print(f"datareach {__version__}\npacket core: {packet_core()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datareach", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and the packet core, and exit")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an internal error (also {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    a = sub.add_parser(
        "audit", help="report where the traffic in capture files went",
        description="Report every destination in one or more capture files.",
        epilog=AUDIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="pcap, pcapng (also gzip, bzip2, xz or zstd compressed), HAR or mitmproxy flow file (the "
                        "format is detected from the content); a PiRogue output folder; '-' reads standard input")
    a.add_argument("--format", type=_report_format, action="append", default=[], metavar="FORMAT[,FORMAT...]",
                   help="table (terminal, default), json (the contract in docs/json-output.md), md (Markdown "
                        "for pull-request comments), html (one self-contained file that works offline), sarif "
                        "(SARIF 2.1.0, for GitHub code scanning), junit (JUnit XML, one test case per policy rule), "
                        "csv (destinations, and findings in a second file), or a format an installed plugin adds "
                        "(docs/plugins.md). Several in one run: --format json,sarif -o out/report writes "
                        "out/report.json and out/report.sarif; or repeat --format F -o FILE; or give -o files "
                        "only and let their extensions choose (docs/ci.md)")
    a.add_argument("--policy", metavar="NAME|FILE", action="append", default=[],
                   help="judge the result against a policy: a preset (us-doj-bulk-data, us-padfa, "
                        "eu-gdpr-transfers) or a policy file; repeatable. Exit status 3 when a deny rule "
                        "is violated")
    a.add_argument("--policy-path", metavar="DIR", action="append", default=[],
                   help="a directory whose policy files the policies may extend (besides each policy's own "
                        "directory); repeatable; also DATAREACH_POLICY_PATH")
    a.add_argument("-o", "--output", metavar="FILE", action="append", default=[],
                   help="write the report to FILE instead of standard output; repeatable (one per --format, "
                        "or by extension: .json, .sarif, .xml (junit), .csv, .md, .html, .txt); with several "
                        "formats and one -o, a base name each format's extension is added to")
    a.add_argument("--fail-on", choices=FAIL_ON, default="deny",
                   help="the policy verdict that makes the exit status 3: deny (default: a deny rule is "
                        "violated), warn (a deny or a warn rule is violated), never (report only)")
    a.add_argument("--geo-db", metavar="FILE", action="append", default=[],
                   help="MaxMind-format .mmdb (GeoLite2, DB-IP or IPinfo layout) to use instead of the "
                        "shipped geo data; repeat for a separate country and ASN file")
    a.add_argument("--profile", metavar="FILE",
                   help="the test device's own values (TOML; `datareach profile init` writes a template) "
                        "to find in every request, in any encoding or hash")
    a.add_argument("--reveal", action="store_true",
                   help="show found values in full (by default reports redact them)")
    a.add_argument("--no-detect", action="store_true", help="do not look for personal data in requests")
    a.add_argument("--keylog", metavar="FILE", action="append", default=[],
                   help="a TLS key log (SSLKEYLOGFILE format: browsers, curl, PCAPdroid, PiRogue, mitmproxy): "
                        "TLS connections it has secrets for are decrypted and their requests read "
                        "(repeatable; keys inside a pcapng are read without it)")
    a.add_argument("--engine", choices=("auto", "local", "duckdb", "spark", "hyperscan", "portable"), default="auto",
                   help="what runs the audit: local (captures, HAR, flows: this machine's cores), duckdb (Zeek "
                        "and Suricata logs, out of core: the default for logs), spark (logs on a Spark "
                        "cluster, --master); auto picks by the inputs' content")
    a.add_argument("--matcher", choices=("auto", "hyperscan", "portable"), default="auto",
                   help=argparse.SUPPRESS)
    a.add_argument("--master", metavar="URL",
                   help="with --engine spark: the Spark master (spark://host:7077, yarn, k8s://...; "
                        "default local[2])")
    a.add_argument("--since", metavar="TIME",
                   help="logs: read rows from TIME on (ISO 8601 date or time, UTC unless it says; or epoch seconds)")
    a.add_argument("--until", metavar="TIME", help="logs: read rows before TIME")
    a.add_argument("--memory-limit", metavar="SIZE",
                   help="logs, duckdb engine: DuckDB's memory limit (e.g. 2GB; default 1GB); past it, DuckDB "
                        "spills to disk in the cache directory")
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
    pcheck.add_argument("--policy-path", metavar="DIR", action="append", default=[],
                        help="a directory whose policy files the policies may extend; repeatable")

    e = sub.add_parser(
        "explain", help="who owns these hosts and which states' laws reach them (no capture needed)",
        description="Owner, ultimate parent and legal reach of host names, from the knowledge base, with who "
                    "hosts them (a shared platform such as CloudFront, or an address's network: a host, never "
                    "the owner) and the SDK or service they belong to. The JSON has the shape of an audit's "
                    "destinations.",
        epilog=EXPLAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("hosts", nargs="+", metavar="HOST",
                   help="host names, URLs or IP addresses; '-' reads one per line from standard input")
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
    from datareach.completion import add_completion_parser
    from datareach.config import add_config_parser

    add_config_parser(sub)
    add_completion_parser(sub)
    k = sub.add_parser("kb", help="the knowledge base: status, check, import datasets",
                       description="The curated knowledge base ships with datareach; datasets you "
                                   "already have can be imported into your data directory.",
                       epilog=KB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ksub = k.add_subparsers(dest="kb_command", metavar="ACTION")
    st = ksub.add_parser("status", help="every source in use, with its date and counts")
    st.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
    st.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")
    ck = ksub.add_parser("check", help="check a directory of KB files (default: the shipped one)",
                         description="Load errors fail (exit 2). Modelling gaps (a note naming a controller "
                                     "with no parent link, voting control recorded as a minority equity share, "
                                     "a leaf company with no domains, a domain a dataset gives to another group) "
                                     "are warnings for review; those accepted in DIR/gaps-allow.toml, each with "
                                     "its reason, are counted but not shown. --strict fails (exit 3) on any "
                                     "other warning.")
    ck.add_argument("path", nargs="?", metavar="DIR")
    ck.add_argument("--strict", action="store_true", help="fail (exit 3) on warnings not in the allow-list")
    ck.add_argument("--dataset", action="append", default=[], metavar="FILE",
                    help="also compare the owners an imported dataset (its JSON, as `kb import` stores it) "
                         "gives to domains with the KB's (repeatable; shipped datasets are always compared)")
    ck.add_argument("--all", action="store_true", dest="show_all", help="show accepted gaps too")
    ck.add_argument("--json", action="store_true", help="the gaps as JSON")
    imp = ksub.add_parser("import", help="import a dataset into your data directory")
    imp.add_argument("kind", choices=("tracker-radar", "disconnect", "xray", "domains", "mmdb", "ddg-app",
                                      "adguard-companiesdb", "ghostery-trackerdb", "exodus"),
                     help="tracker-radar: DuckDuckGo Tracker Radar entity files (a file, entities/ or the "
                          "repository); disconnect: Disconnect entities.json; xray: X-Ray owner list (JSON); "
                          "domains: a plain domain list for one entity (--entity); mmdb: a MaxMind-format .mmdb; "
                          "ddg-app: DuckDuckGo's app tracker list (app/android-tds.json or the tracker-blocklists "
                          "repository); adguard-companiesdb: the AdGuard companiesdb repository or its "
                          "dist/trackers.json; ghostery-trackerdb: the Ghostery trackerdb repository or its JSON "
                          "export; exodus: Exodus Privacy's tracker list (JSON of its /api/trackers)")
    imp.add_argument("path", metavar="PATH")
    imp.add_argument("--entity", metavar="ID_OR_NAME", help="for 'domains': the entity (a KB id or a new name)")
    imp.add_argument("--name", help="for 'domains': the entity's name, when new")
    imp.add_argument("--country", help="for 'domains': the entity's headquarters country (ISO code), when new")
    imp.add_argument("--licence-note", metavar="TEXT", help="the dataset's licence, recorded with it")
    imp.add_argument("--prefer", action="store_true",
                     help="let this dataset win over curated records where they disagree (default: curated wins)")
    rm = ksub.add_parser("remove", help="remove an imported dataset")
    rm.add_argument("id", metavar="ID", help="the dataset id, as `kb status` shows it")
    _debug_everywhere(parser)
    return parser


def _debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--debug`` after a command too (``datareach audit --debug X``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if not any("--debug" in a.option_strings for a in sub._actions):
                    sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
                _debug_everywhere(sub)


def _error(message: object) -> None:
    """``datareach: error: MESSAGE`` on standard error, printable and on one line."""
    print(f"datareach: error: {safe(message)}", file=sys.stderr)


def output_problem(path: str) -> str | None:
    """Why the report cannot be written to ``path`` (None when it can): checked before any
    input is read, so that a long audit is not lost to a typo."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(path) or "."
        try:
            parent_mode = os.stat(parent).st_mode
        except FileNotFoundError:
            return f"cannot write {path}: the directory {parent} does not exist"
        except OSError as e:
            return f"cannot write {path}: {e.strerror or e}"
        if not stat.S_ISDIR(parent_mode):
            return f"cannot write {path}: {parent} is not a directory"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"cannot write {path}: no permission to create files in {parent}"
        return None
    except OSError as e:
        return f"cannot write {path}: {e.strerror or e}"
    except ValueError as e:
        return f"cannot write {path}: {e}"
    if stat.S_ISDIR(st.st_mode):
        return f"{path} is a directory; give the name of a file to write (e.g. {os.path.join(path, 'report')})"
    if not os.access(path, os.W_OK):
        return f"cannot write {path}: permission denied"
    return None  # a regular file, or a device or FIFO (/dev/stdout) that can be written


def input_problem(path: str, what: str = "capture", label: str = "input") -> str | None:
    """Why ``path`` cannot be read as an input (None when it can be tried): it does not exist,
    or it is a directory, a device, a FIFO or a socket."""
    from datareach.files import not_regular

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{label} not found: {path}"
    except OSError as e:
        return f"cannot read {path}: {e.strerror or e}"
    except ValueError as e:
        return f"cannot read {path}: {e}"
    problem = not_regular(mode, what)
    return f"{path} {problem}" if problem else None


def _input_format_problem(path: str, stdin_spool: str | None = None) -> str | None:
    """Why a regular file given to ``audit`` is no input at all (empty, or in no format read),
    with what to do; None when a reader takes it. A file that is read but corrupt is an input
    error (exit 4) found while reading, not this."""
    from datareach.sources import format_problem

    try:
        problem = format_problem(Path(path))
    except OSError as e:
        return f"cannot read {path}: {e.strerror or e}"
    if problem is None:
        return None
    name = "standard input" if path == stdin_spool else path
    if problem == "the file is empty":
        return f"{name}: the file is empty: give a capture (pcap, pcapng), a HAR or a mitmproxy flow file"
    return f"{name}: {problem}"


def _write_json(path: str | None, result: Any) -> bool:
    """The audit's JSON document, streamed to ``path`` (standard output when None); False (with
    the error printed) when that fails."""
    from datareach.report.json_report import write_json

    if path is None:
        write_json(result.document(), sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return True
    try:
        with open(path, "wb") as f:
            write_json(result.document(), f)
    except OSError as e:
        _error(f"cannot write {safe(path)}: {e.strerror or e}")
        return False
    return True


def _write_output(path: str, text: str) -> bool:
    """Write the report; False (with the error printed) when that fails."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        _error(f"cannot write {path}: {e.strerror or e}")
        return False
    return True


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
    from datareach.files import not_regular
    from datareach.report.diff import AuditDocumentError, diff_exit_status

    problem = args.output and output_problem(args.output)
    for p in (args.old, args.new):  # a FIFO or a device would be read for ever
        try:
            mode = os.stat(p).st_mode
        except (OSError, ValueError):
            continue  # the reader says why
        problem = problem or (f"{p}: {why}" if (why := not_regular(mode, "audit JSON")) else None)
    if problem:
        _error(problem)
        return EXIT_USAGE
    try:
        d = diff(args.old, args.new)
    except AuditDocumentError as exc:
        _error(exc)
        return EXIT_USAGE
    if args.format == "json":
        from datareach.report.json_report import render_json

        text = render_json(d)
    elif args.format == "md":
        from datareach.report.diff import render_diff_markdown

        text = render_diff_markdown(d)
    else:
        from datareach.report.diff import render_diff_table

        text = render_diff_table(d, color=args.output is None and sys.stdout.isatty())
    if args.output:
        if not _write_output(args.output, text):
            return EXIT_USAGE
    else:
        sys.stdout.write(text)
    status = diff_exit_status(d)
    if status:
        print(f"datareach: policy regression: {d['summary']['regressions']} deny violation(s) in "
              f"{safe(args.new)} that {safe(args.old)} does not have", file=sys.stderr)
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
    """``audit``: with ``-`` among the inputs, standard input is first written to a temporary
    file (an input is read more than once: its format is found from its head, then it is read,
    then hashed), which is removed after."""
    args.stdin_spool = None
    if "-" not in args.inputs:
        return _audit_inputs(args)
    if sys.stdin is None or sys.stdin.isatty():
        _error("`-` reads a capture from standard input: pipe one in (e.g. `tcpdump -w - ... | datareach audit -`)")
        return EXIT_USAGE
    import shutil
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="datareach-stdin-", delete=False) as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
    args.stdin_spool = spool.name
    args.inputs = [spool.name if p == "-" else p for p in args.inputs]
    try:
        return _audit_inputs(args)
    finally:
        os.unlink(spool.name)


def _is_log_input(path: str) -> bool:
    from datareach.api import is_log_input

    return is_log_input(path)


def _output_plan(formats: list[str], outputs: list[str]) -> list[tuple[str, str | None]] | None:
    """Each report asked for with where it goes, every output path checked before anything is
    read (a typo there must not cost the reading of the inputs); None when one is wrong (said)."""
    from datareach.report.formats import plan_outputs

    try:
        plan = plan_outputs(formats, outputs)
    except ValueError as exc:
        _error(exc)
        return None
    for _name, out_path in plan:
        problem = out_path and output_problem(out_path)
        if problem:
            _error(problem)
            return None
    return plan


def _load_profile(args: argparse.Namespace) -> tuple[Any] | None:
    """(the --profile, or None), its warnings said; None when it cannot be read (said too)."""
    if not args.profile:
        return (None,)
    from datareach.detect.profile import ProfileError, load_profile

    try:
        profile = load_profile(Path(args.profile))
    except ProfileError as exc:
        _error(exc)
        return None
    for warning in profile.warnings:
        print(f"datareach: warning: {safe(warning)}", file=sys.stderr)
    return (profile,)


def _log_time(text: str | None, flag: str) -> float | None:
    """A --since/--until value as epoch seconds (ValueError with the flag's name when unreadable)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{flag} {text!r}: give an ISO 8601 date or time (2026-12-01, 2026-12-01T08:00) "
                         f"or epoch seconds") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def _audit_logs(args: argparse.Namespace) -> int:
    """An audit of sensor logs (Zeek, Suricata EVE) on the DuckDB or Spark engine."""
    from datareach.api import audit
    from datareach.assess import PolicyError, load_policy
    from datareach.report.formats import find as find_format
    from datareach.schema.entrypoints import PluginError

    try:
        since, until = _log_time(args.since, "--since"), _log_time(args.until, "--until")
    except ValueError as exc:
        _error(exc)
        return EXIT_USAGE
    if since is not None and until is not None and until <= since:
        _error(f"--until ({args.until}) is not after --since ({args.since})")
        return EXIT_USAGE
    # -o DIR/ (or an existing directory): the Parquet tables and report.json go there
    out_dir = None
    outputs = []
    for o in args.output:
        if o.endswith(("/", os.sep)) or os.path.isdir(o):
            out_dir = o
        else:
            outputs.append(o)
    if out_dir is not None:
        try:
            os.makedirs(out_dir, exist_ok=True)
        except OSError as exc:
            _error(f"cannot make the output directory {out_dir}: {exc.strerror or exc}")
            return EXIT_USAGE
        if not outputs and not args.format:
            outputs = [os.path.join(out_dir, "report.json")]
    plan = _output_plan(args.format, outputs)
    if plan is None:
        return EXIT_USAGE
    try:
        report_formats = [(find_format(name), out_path) for name, out_path in plan]
    except PluginError as exc:  # (a format problem: said before reading)
        _error(exc)
        return EXIT_USAGE
    for p in args.inputs:
        if not os.path.exists(p):
            _error(f"{p}: no such file or directory")
            return EXIT_USAGE
    policy_path = _policy_path(args.policy_path)
    if policy_path is None:
        return EXIT_USAGE
    try:
        policies = [load_policy(p, policy_path=policy_path) for p in args.policy]
    except PolicyError as exc:
        _error(exc)
        return EXIT_USAGE
    loaded = _load_profile(args)
    if loaded is None:
        return EXIT_USAGE
    profile = loaded[0]
    show = not args.no_progress and sys.stderr.isatty()
    started = time.perf_counter()

    def progress(phase: str, rows: int, expected: int) -> None:
        if show:
            rate = rows / max(time.perf_counter() - started, 1e-6)
            print(f"\r\033[Kdatareach: {phase}: {rows:,} rows ({rate:,.0f} rows/s)", end="", file=sys.stderr,
                  flush=True)

    engine = args.engine if args.engine in ("duckdb", "spark") else "duckdb"
    from datareach.engine import EngineLimitError
    from datareach.enrich.geo import GeoDatabaseError
    from datareach.kb import KBError

    try:
        result = audit(args.inputs, geo_db=args.geo_db, profile=profile, policies=policies, reveal=args.reveal,
                       detect=not args.no_detect, engine=engine, matcher=args.matcher,
                       reach_options=_reach_options(args), since=since, until=until, output_dir=out_dir,
                       master=args.master, memory_limit=args.memory_limit, log_progress=progress)
    except (GeoDatabaseError, KBError, PolicyError, ImportError) as exc:
        _error(exc)
        return EXIT_USAGE
    except EngineLimitError as exc:  # (the logs could not be read within the limits given)
        _error(exc)
        return EXIT_INPUT_ERROR
    finally:
        if show:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
    skipped = (result.organisation or {}).get("skipped") or {}
    if skipped.get("files"):
        listed = [s["path"] for s in skipped["listed"][:5]]
        more = skipped["files"] - len(listed)
        print(f"datareach: note: {skipped['files']} files in the inputs were skipped (not a Zeek or Suricata log "
              f"datareach reads, or outside --since/--until; listed in the report's organisation.skipped): "
              f"{', '.join(safe(p) for p in listed)}" + (f" and {more} more" if more > 0 else ""), file=sys.stderr)
    rows = (result.organisation or {}).get("rows", {}).get("conn", 0)
    took = time.perf_counter() - started
    if not args.no_progress:
        print(f"datareach: {rows:,} connections read in {took:.1f} s ({rows / max(took, 1e-6):,.0f} rows/s)"
              + (f"; Parquet tables in {out_dir}" if out_dir else ""), file=sys.stderr)
    return _write_reports(args, result, report_formats)


def _audit_inputs(args: argparse.Namespace) -> int:
    from datareach.sources.folders import expand_inputs

    if args.engine in ("hyperscan", "portable"):  # (before 0.2, --engine named the matcher)
        args.matcher, args.engine = args.engine, "auto"
    if args.engine in ("duckdb", "spark") or (
            args.engine == "auto" and args.inputs and args.stdin_spool is None
            and all(_is_log_input(p) for p in args.inputs)):
        return _audit_logs(args)

    # a PiRogue output folder is its capture and its key log; another folder, the files in it
    skipped: list[str] = []
    inputs: list[Any] = []
    folder_keys: list[Path] = []
    for given in args.inputs:
        found, keys = expand_inputs([given], skipped)
        if found == [given] and os.path.isdir(given):
            _error(f"{given} holds no capture, HAR or flow file (the content of every file below it was looked at)")
            return EXIT_USAGE
        inputs += found
        folder_keys += keys
    args.inputs = inputs
    if skipped:
        shown = ", ".join(safe(s) for s in skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        print(f"datareach: note: {len(skipped)} files in the folders given are not in a format datareach reads, "
              f"and were skipped: {shown}", file=sys.stderr)
    args.keylog = [*args.keylog, *(str(k) for k in folder_keys)]
    # everything given is checked before anything is read (the outputs first: a typo there must
    # not cost the reading of the inputs' heads)
    plan = _output_plan(args.format, args.output)
    if plan is None:
        return EXIT_USAGE
    for p in args.inputs:
        problem = input_problem(p) or _input_format_problem(p, args.stdin_spool)
        if problem:
            _error(problem)
            return EXIT_USAGE
    for p in args.geo_db:
        problem = input_problem(p, ".mmdb", "--geo-db file")
        if problem:
            _error(problem)
            return EXIT_USAGE
    for p in args.keylog:
        problem = input_problem(p, "key log", "--keylog file")
        if problem:
            _error(problem)
            return EXIT_USAGE
    policy_path = _policy_path(args.policy_path)
    if policy_path is None:
        return EXIT_USAGE
    from datareach.report.formats import find as find_format
    from datareach.schema.entrypoints import PluginError

    try:
        report_formats = [(find_format(name), out_path) for name, out_path in plan]
    except PluginError as exc:  # before the audit, which may take a while
        _error(exc)
        return EXIT_USAGE
    loaded = _load_profile(args)
    if loaded is None:
        return EXIT_USAGE
    profile = loaded[0]
    from datareach.api import audit
    from datareach.assess import PolicyError, load_policy

    try:
        policies = [load_policy(p, policy_path=policy_path) for p in args.policy]
    except PolicyError as exc:
        _error(exc)
        return EXIT_USAGE
    options = {"profile": profile, "policies": policies, "reveal": args.reveal, "detect": not args.no_detect, "matcher": args.matcher,
               "reach_options": _reach_options(args), "keylog": args.keylog}
    from datareach.memory import pyarrow_without_pandas

    pyarrow_without_pandas()  # (this process is the command's own: see datareach.memory)
    sizes = [os.path.getsize(p) if os.path.isfile(p) else 0 for p in args.inputs]
    show_progress = not args.no_progress and sys.stderr.isatty() and sum(sizes) > PROGRESS_MIN_BYTES
    from datareach.dissect.keylog import KeyLogError
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
    except (GeoDatabaseError, KBError, PolicyError, MitmproxyNotFound, KeyLogError) as exc:
        _error(exc)
        return EXIT_USAGE
    for rep in result.inputs:  # (standard input is reported as "-", not as the file it was written to)
        if args.stdin_spool is not None and rep.path == args.stdin_spool:
            rep.path = "-"
    return _write_reports(args, result, report_formats)


def _write_reports(args: argparse.Namespace, result: Any, report_formats: list[tuple[Any, str | None]]) -> int:
    """Every report asked for, from the one result; then the verdict and the exit status."""
    from datareach.report.formats import BUILTIN_FORMATS, CSV, JSON, JUNIT

    if [f for f, _ in report_formats] == [JSON]:  # written as it is made: the rows are read a batch at a time
        if not _write_json(report_formats[0][1], result):
            return EXIT_USAGE
        return _finish_audit(result, result.summary(), args.fail_on)
    doc = result.to_dict()
    for report_format, out_path in report_formats:
        files: list[tuple[str | None, str]] = []
        render_terminal = getattr(report_format, "render_terminal", None) if out_path is None else None
        try:
            if render_terminal is not None:
                files.append((None, render_terminal(doc, color=sys.stdout.isatty())))
            elif report_format is JUNIT:
                from datareach.report.junit import render_junit

                files.append((out_path, render_junit(doc, args.fail_on)))
            else:
                files.append((out_path, report_format.render(doc)))
            if report_format is CSV and out_path is not None:
                from datareach.report.csv_report import extra_tables

                files += extra_tables(doc, out_path)
        except Exception as exc:
            if any(report_format is f for f in BUILTIN_FORMATS):
                raise
            _error(f"the report format {report_format.name!r} (a plugin) failed: {type(exc).__name__}: {exc}")
            return 1
        for path, text in files:
            if path is None:
                sys.stdout.write(text)
            elif not _write_output(path, text):
                return EXIT_USAGE
    return _finish_audit(result, doc["summary"], args.fail_on)


def _finish_audit(result: Any, summary: dict[str, Any], fail_on: str = "deny") -> int:
    """What is said on standard error after the report (input errors, the policy verdict), and
    the exit status."""
    if result.has_errors:
        for inp in result.inputs:
            for e in inp.errors:
                where = f" (offset {e.offset})" if e.offset is not None else ""
                where += f" ({safe(e.json_path)})" if e.json_path else ""
                print(f"datareach: {safe(inp.path)}{where}: {safe(e.message)}", file=sys.stderr)
    if result.policies:
        counts = summary["violations"]
        print(f"datareach: policy verdict: {summary['verdict']} ({counts['deny']} deny, {counts['warn']} warn, "
              f"{counts['allowed']} allowed)" + ("" if fail_on == "deny" else f"; --fail-on {fail_on}"), file=sys.stderr)
    if any(v["allowed"] is None and fails(v["action"], fail_on) for v in result.violations):
        return EXIT_POLICY  # (the rule the JUnit report's failures follow too)
    if result.organisation is not None:
        from datareach.report.junit import bulk_fails

        if bulk_fails({"policies": result.policies, "organisation": result.organisation}, fail_on):
            return EXIT_POLICY  # (a bulk-data count above its threshold, with us-doj-bulk-data judged)
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
    path = args.path
    problem = None if os.path.lexists(path) else output_problem(path)
    if problem:
        _error(problem)
        return EXIT_USAGE
    try:
        with open(path, "x", encoding="utf-8") as f:  # never over an existing file
            f.write(TEMPLATE)
    except FileExistsError:
        _error(f"{path} exists; not overwriting it")
        return EXIT_USAGE
    except OSError as e:
        _error(f"cannot write {path}: {e.strerror or e}")
        return EXIT_USAGE
    print(f"wrote {safe(path)}: fill in the test device's values, then "
          f"`datareach audit CAPTURE --profile {safe(path)}`", file=sys.stderr)
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
            name = args.name if len(args.name) <= 80 else args.name[:60] + "…"
            _error(f"no preset {name!r} (presets: {', '.join(PRESETS)})")
            return EXIT_USAGE
        sys.stdout.write((PRESET_DIR / f"{args.name}.toml").read_text(encoding="utf-8"))
        return EXIT_OK
    if args.policy_command == "check":
        from datareach.api import check_policy

        policy_path = _policy_path(args.policy_path)
        if policy_path is None:
            return EXIT_USAGE
        status = EXIT_OK
        for path in args.paths:
            try:
                p = check_policy(path, policy_path=policy_path)
            except PolicyError as exc:
                _error(exc)
                status = EXIT_USAGE
                continue
            print(safe(f"{path}: OK: policy {p.id}, {len(p.rules)} rules, {len(p.allow)} allow entries"
                       + (f", extends {', '.join(p.extends)}" if p.extends else "")))
        return status
    parser.parse_args(["policy", "--help"])
    return EXIT_USAGE


def _policy_path(dirs: list[str]) -> list[str] | None:
    """The ``--policy-path`` directories, or None (with the error printed) if one is not one."""
    for d in dirs:
        if not os.path.isdir(d):
            _error(f"--policy-path {d} is not a directory")
            return None
    return dirs


def _reach_options(args: argparse.Namespace) -> ReachOptions:
    from datareach.enrich.ownership import ReachOptions

    return ReachOptions(control_threshold=args.control_threshold, golden_share_controls=args.golden_share_controls)


def _explain(args: argparse.Namespace) -> int:
    from datareach.enrich.ownership import OwnershipResolver, cited_laws
    from datareach.explainer import explain_iter, explain_json_chunks
    from datareach.kb import KBError, knowledge_base

    date = args.at or datetime.now(UTC).date().isoformat()
    try:
        datetime.strptime(date, "%Y-%m-%d")
    except ValueError:
        _error(f"--at wants a date YYYY-MM-DD, not {date[:40]!r}")
        return EXIT_USAGE
    if not 0 < args.control_threshold <= 1:
        _error("--control-threshold is a share in (0, 1]")
        return EXIT_USAGE
    problem = args.output and output_problem(args.output)
    if problem:
        _error(problem)
        return EXIT_USAGE
    try:
        kb = knowledge_base()
    except KBError as exc:
        _error(exc)
        return EXIT_USAGE
    resolver = OwnershipResolver(kb, _reach_options(args))
    # The knowledge base is a few hundred thousand long-lived objects: keep the collector from
    # walking them again and again while hundreds of thousands of answers are made.
    gc.collect()
    gc.freeze()

    def hosts() -> Iterator[str]:
        for h in args.hosts:
            if h == "-":  # (lines read a block at a time; a comment after # is dropped)
                while lines := sys.stdin.readlines(1 << 16):
                    yield from [x.split("#", 1)[0] if "#" in x else x for x in lines]
            else:
                yield h

    try:
        out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    except OSError as e:
        _error(f"cannot write {args.output}: {e.strerror or e}")
        return EXIT_USAGE
    try:
        # (the entries come inert, as inert_json writes them)
        if args.format == "jsonl":
            for chunk in explain_json_chunks(hosts(), resolver, date, inert=True):
                out.write(chunk)
        elif args.format == "json":
            import orjson

            reach_lists: dict[Any, list[dict[str, Any]]] = {}
            out.write(b'{"schema_version":"1.0","date":' + orjson.dumps(date)
                      + b',"data_sources":' + orjson.dumps(kb.data_sources()) + b',"hosts":[\n')
            first = True
            for chunk in explain_json_chunks(hosts(), resolver, date, reach_lists, inert=True, sep=b",\n"):
                if chunk:
                    if not first:
                        out.write(b",\n")
                    out.write(memoryview(chunk)[:-2])  # (the separator after the last entry)
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


def _kb(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from datareach.kb import KBError

    try:
        if args.kb_command == "status":
            return _kb_status(args)
        if args.kb_command == "check":
            return _kb_check(args)
        if args.kb_command == "import":
            return _kb_import(args)
        if args.kb_command == "remove":
            from datareach.kb import reset, store

            if not store.remove_import(args.id):
                _error(f"no imported dataset {args.id!r} (see `datareach kb status`)")
                return EXIT_USAGE
            reset()
            print(f"removed {args.id}")
            return EXIT_OK
    except KBError as exc:
        _error(exc)
        return EXIT_USAGE
    parser.parse_args(["kb", "--help"])
    return EXIT_USAGE


def _kb_check(args: argparse.Namespace) -> int:
    """``kb check``: load errors fail; modelling gaps are warnings (``--strict``: failures)."""
    import orjson

    from datareach.kb.gaps import (
        ALLOW_FILE,
        find_gaps,
        load_allow,
        load_dataset_file,
        mapping_keys,
        shipped_datasets,
    )
    from datareach.kb.index import DATA_DIR
    from datareach.kb.load import read_kb
    from datareach.kb.mappings import read_mappings

    root = Path(args.path) if args.path else DATA_DIR
    raw = read_kb(root)
    cmap = read_mappings(root, raw.entities)
    datasets = shipped_datasets(root)
    shipped = len(datasets)
    for name in args.dataset:
        try:
            datasets.append(load_dataset_file(Path(name)))
        except ValueError as exc:
            _error(exc)
            return EXIT_USAGE
    allow = load_allow(root / ALLOW_FILE)
    gaps = find_gaps(raw, datasets=datasets, mappings=mapping_keys(cmap))
    open_gaps = [g for g in gaps if g.key not in allow]
    accepted = [g for g in gaps if g.key in allow]
    stale = sorted(set(allow) - {g.key for g in gaps})
    if args.json:
        doc = {"path": str(root), "ok": True, "gaps": [g.to_json() for g in open_gaps],
               "accepted": [{**g.to_json(), "reason": allow[g.key]} for g in accepted],
               "stale_allow_entries": [{"check": c, "entity": e, "target": t} for c, e, t in stale]}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        domains = sum(len(e.get("domains", [])) for e in raw.entities.values())
        asns = sum(len(a.get("numbers", [])) for a in raw.autonomous_systems)
        print(f"{safe(str(root))}: OK: {len(raw.entities)} entities, {domains} domains, {asns} AS numbers, "
              f"{len(raw.jurisdictions)} jurisdictions, {len(raw.lists)} lists, {len(raw.services)} services, {len(raw.sources)} sources, "
              f"{len(cmap)} company mappings, {shipped} shipped datasets")
        counts: dict[str, int] = {}
        for g in open_gaps:
            counts[g.check] = counts.get(g.check, 0) + 1
        summary = ", ".join(f"{n} {c}" for c, n in counts.items()) or "none"
        print(f"modelling gaps for review: {len(open_gaps)} ({summary}); {len(accepted)} accepted in {ALLOW_FILE}"
              + (f"; {len(datasets)} dataset(s) compared" if datasets else ""))
        for g in open_gaps:
            print(f"  warning: {safe(str(g))}")
        if args.show_all:
            for g in accepted:
                print(f"  accepted: {safe(str(g))} -- {safe(allow[g.key])}")
        for c, e, t in stale:
            print(f"  warning: {ALLOW_FILE}: accepted gap {c} {e} {t} no longer occurs: remove it")
    if args.strict and (open_gaps or stale):
        return EXIT_POLICY
    return EXIT_OK


def _kb_import(args: argparse.Namespace) -> int:
    from datareach.api import import_dataset
    from datareach.kb.importers import KBImportError

    path = Path(args.path)
    if not path.exists():
        _error(f"not found: {path}")
        return EXIT_USAGE
    if args.kind == "domains" and not args.entity:
        _error("`kb import domains` needs --entity")
        return EXIT_USAGE
    try:
        ds = import_dataset(args.kind, path, licence_note=args.licence_note, prefer=args.prefer,
                            entity=args.entity, name=args.name, country=args.country)
    except KBImportError as exc:
        _error(f"{exc} (nothing was changed)")
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
                           "sources": kb.data_sources(), "shipped": kb.shipped, "imports": kb.imports,
                           "problems": problems}
    if args.format == "json":
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return EXIT_OK
    c = doc["counts"]
    print(f"curated knowledge base (datareach {__version__}): {c['entities']} entities, {c['domains']} domains, "
          f"{c['autonomous_systems']} AS numbers and {c['as_names']} AS names, {c['jurisdictions']} "
          f"jurisdictions, {c['laws']} laws, {c['lists']} lists, {c['sources']} cited sources")
    if doc["as_of"]:
        print(f"  records checked between {doc['as_of'][0]} and {doc['as_of'][1]}")
    shipped = kb.shipped
    if shipped:
        print("shipped datasets (separately licensed; curated records win):")
    for imp in shipped:
        print(f"  {imp['id']}: {imp['kind']} {imp['file']}, data of {imp['dataset_date'] or 'unknown date'}; "
              f"licence: {imp['licence_note']}; {imp['entities_added']} new entities "
              f"({imp.get('entities_without_country', 0)} without country), {imp.get('companies_mapped', 0)} "
              f"companies mapped to curated entities, {imp['domains_lost_to_curated']} domains kept by curated")
    user = kb.imports
    print(f"imported datasets (in {doc['data_dir']}):")
    if not user:
        print("  none (see `datareach kb import --help`)")
    for imp in user:
        rule = "wins over curated records" if imp["prefer"] else "curated records win"
        print(f"  {imp['id']}: {imp['kind']} {imp['file']} (sha256 {imp['sha256'][:12]}…), "
              f"data of {imp['dataset_date'] or 'unknown date'}, imported {imp['imported_at']}; "
              f"licence: {imp['licence_note'] or 'not stated'}; {rule}; "
              f"{imp['entities_added']} new entities, {imp['domains_lost_to_curated']} domains kept by curated, "
              f"{imp['domains_won_over_curated']} taken over, {imp.get('companies_mapped', 0)} companies mapped, "
              f"{imp.get('entities_without_country', 0)} new entities without country (flagged)")
    for p in problems:
        print(f"  warning: {p}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status. An unexpected exception is one line
    (``datareach: internal error: ...``, status 1) unless ``--debug`` or ``DATAREACH_DEBUG=1``
    asks for the traceback; Ctrl-C is status 130."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    options = args_list[:args_list.index("--")] if "--" in args_list else args_list
    debug = "--debug" in options or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return _main(args_list)
    except KeyboardInterrupt:
        if debug:
            raise
        print("datareach: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of standard output went away (`| head`)
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if debug:
            raise
        print(f"datareach: internal error: {type(exc).__name__}: {_one_line(exc)} (run with --debug for the "
              "traceback; please report)", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(exc: BaseException, limit: int = 300) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__
        text = "(no message)"
    text = text.strip().splitlines()[0] if text.strip() else "(no message)"
    if len(text) > limit:
        text = text[:limit] + "…"
    return safe(text)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return int(e.code or 0)
    if args.command == "audit":
        from datareach.config import ConfigError, apply_to_audit

        try:  # the configuration files' defaults (datareach.toml): the command line wins
            args = apply_to_audit(parser, argv)
        except ConfigError as exc:
            _error(exc)
            return EXIT_USAGE
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
    if args.command in ("config", "completion"):
        from datareach.completion import run_completion
        from datareach.config import run_config

        return run_config(args) if args.command == "config" else run_completion(args, parser)
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
