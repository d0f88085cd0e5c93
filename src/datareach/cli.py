"""Command line: a thin layer over :func:`datareach.audit`.

Exit status: 0 success; 2 usage error; 4 an input was unreadable or corrupt (everything that
could be read is still reported).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from datareach import __version__
from datareach.api import audit
from datareach.report.json_report import render_json

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INPUT_ERROR = 4
PROGRESS_MIN_BYTES = 4 << 20

DESCRIPTION = """\
Find out where the traffic of an app, a device or a network went.

datareach reads captures you already have -- pcap or pcapng (tcpdump, Wireshark, PCAPdroid)
and HAR (browsers, mitmproxy, HTTP Toolkit, PCAPdroid) -- and lists every destination: its host
name and how it was learned (TLS SNI, QUIC, HTTP Host, DNS, or the bare IP), the registrable
domain, the server's country and network operator (autonomous system), and the bytes sent and
received. It looks into every request it can read (plain HTTP, HAR) for personal data:
the test device's own values from a profile, in any encoding or hash, and likely personal
data by pattern. Nothing is looked up on the network: all data ships with the tool.
"""

AUDIT_EPILOG = """\
examples:
  datareach audit capture.pcapng                 table in the terminal
  datareach audit app.har --format json -o out.json
  datareach audit a.pcap b.har --geo-db GeoLite2-City.mmdb --geo-db GeoLite2-ASN.mmdb
  datareach profile init profile.toml && datareach audit app.pcap --profile profile.toml

exit status: 0 success, 2 usage error, 4 an input was unreadable or corrupt (the rest of
the input is still reported, and the JSON lists each error with its file offset).
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
                   help="pcap, pcapng or HAR file (the format is detected from the content)")
    a.add_argument("--format", choices=("table", "json"), default="table",
                   help="output format (default: table)")
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
    return parser


def _audit(args: argparse.Namespace) -> int:
    for p in args.inputs:
        if not os.path.exists(p):
            print(f"datareach: error: input not found: {p}", file=sys.stderr)
            return EXIT_USAGE
    for p in args.geo_db:
        if not os.path.isfile(p):
            print(f"datareach: error: --geo-db file not found: {p}", file=sys.stderr)
            return EXIT_USAGE
    profile = None
    if args.profile:
        from datareach.detect.profile import ProfileError, load_profile

        try:
            profile = load_profile(Path(args.profile))
        except ProfileError as exc:
            print(f"datareach: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    options = {"profile": profile, "reveal": args.reveal, "detect": not args.no_detect, "engine": args.engine}
    sizes = [os.path.getsize(p) if os.path.isfile(p) else 0 for p in args.inputs]
    show_progress = not args.no_progress and sys.stderr.isatty() and sum(sizes) > PROGRESS_MIN_BYTES
    from datareach.resolve.geo import GeoDatabaseError

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
    except GeoDatabaseError as exc:
        print(f"datareach: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    doc = result.to_dict()
    if args.format == "json":
        text = render_json(doc)
    else:
        from datareach.report.table import render_table  # rich is only imported for tables

        color = args.output is None and sys.stdout.isatty()
        text = render_table(doc, color=color)
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
