"""``datareach proxy``: mitmdump with datareach's addon, loopback and a report path by default."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROXY_EPILOG = """\
examples:
  datareach proxy --profile profile.toml                      proxy on 127.0.0.1:8080
  datareach proxy --listen-host 0.0.0.0 --report phone-audit  a phone on the same network
  datareach proxy --mode wireguard --policy us-doj-bulk-data  WireGuard: no proxy settings on the device
  datareach proxy --geo-db GeoLite2-City.mmdb --geo-db GeoLite2-ASN.mmdb   your geo data, live and in the report
  datareach proxy -- --set upstream_cert=false                anything after -- goes to mitmdump

Stop with Ctrl-C: the reports (REPORT.json, REPORT.html) are written then; the flows are kept
in REPORT.mitm (`datareach audit REPORT.mitm` audits them again).
"""


def add_proxy_parser(sub: Any) -> None:
    """Add the ``proxy`` subcommand to the CLI's subparsers."""
    p = sub.add_parser(
        "proxy", help="audit live traffic: run mitmproxy (mitmdump) with datareach's addon",
        description="Starts mitmdump with datareach's addon: one line per new destination and per new "
                    "finding while traffic flows, the JSON and HTML reports when it stops.",
        epilog=PROXY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen-host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--listen-port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--mode", default="regular",
                   help="mitmproxy mode: regular (default), transparent, wireguard, socks5, upstream:URL, ...")
    p.add_argument("--profile", metavar="FILE", help="the test device's values (TOML) to find in every request")
    p.add_argument("--policy", metavar="POLICY", action="append", default=[],
                   help="policy preset or file to judge the traffic against (repeatable)")
    p.add_argument("--geo-db", metavar="FILE", action="append", default=[],
                   help="MaxMind-format .mmdb file (GeoLite2, DB-IP, IPinfo) to use instead of the shipped geo data, "
                        "for the live lines and the report alike (repeatable)")
    p.add_argument("--report", metavar="PATH",
                   help="report path without extension (default: datareach-live-DATE-TIME in this directory)")
    p.add_argument("--confdir", metavar="DIR", help="mitmproxy's configuration directory, where its CA is "
                                                    "(default ~/.mitmproxy)")
    p.add_argument("--show-flows", action="store_true", help="let mitmdump print every flow too")
    p.add_argument("--addon-path", action="store_true",
                   help="print the addon file for your own mitmproxy and exit: "
                        'mitmdump -s "$(datareach proxy --addon-path)" --set datareach_profile=profile.toml')
    p.add_argument("mitmdump_args", nargs=argparse.REMAINDER, metavar="-- MITMDUMP_ARGS",
                   help="further arguments for mitmdump, after --")


def _instructions(args: ProxyOptions, confdir: Path, report: Path) -> str:
    host, port = args.listen_host, args.listen_port
    ca = confdir / "mitmproxy-ca-cert.pem"
    lines = [f"datareach proxy: mitmdump on {host}:{port}, mode {args.mode}"]
    if args.mode.startswith("wireguard"):
        lines.append("  the device: import the WireGuard configuration mitmdump prints (UDP port "
                     f"{port if args.listen_port != 8080 else 51820}); no proxy setting needed")
    elif args.mode.startswith("transparent"):
        lines.append(f"  the device: route its traffic through this machine and redirect ports 80/443 to {port}")
    else:
        where = "this computer's LAN address" if host in ("0.0.0.0", "::") else host
        lines.append(f"  a browser: HTTP and HTTPS proxy {where}:{port} (e.g. chromium --proxy-server=http://{where}:{port})")
        if host in ("127.0.0.1", "::1", "localhost"):
            lines.append("  a phone: start with --listen-host 0.0.0.0 and set the Wi-Fi proxy to this computer's "
                         f"LAN address, port {port} (or: adb reverse tcp:{port} tcp:{port}, proxy 127.0.0.1:{port})")
        else:
            lines.append(f"  a phone: Wi-Fi settings -> proxy manual -> this computer's LAN address, port {port}")
    lines.append(f"  trust mitmproxy's CA on the device: open http://mitm.it through the proxy, or install {ca}"
                 " (created on the first start)")
    lines.append(f"  reports when you stop it (Ctrl-C): {report}.json, {report}.html; flows saved in {report}.mitm")
    return "\n".join(lines)


class ProxyError(ValueError):
    """An option of :func:`proxy` that cannot work (the message says which and why)."""


@dataclass(frozen=True)
class ProxyOptions:
    """What ``datareach proxy`` takes (see its ``--help``)."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    mode: str = "regular"
    profile: str | None = None
    policy: Sequence[str] = ()
    geo_db: Sequence[str] = ()
    #: the reports' path without extension (default: datareach-live-DATE-TIME here)
    report: str | None = None
    confdir: str | None = None
    show_flows: bool = False
    mitmdump_args: Sequence[str] = ()


def proxy(options: ProxyOptions) -> int:
    """Run mitmdump with datareach's addon until it stops (Ctrl-C and SIGTERM are passed on to
    it); returns mitmdump's exit status (0 for a stop by Ctrl-C). Raises :class:`ProxyError` for
    options that cannot work, before anything starts: ``datareach proxy``."""
    from datareach.mitm import ADDON_PATH, mitmdump_command
    from datareach.sources.mitm import MitmproxyNotFound, find_mitmproxy_python

    if options.profile:
        from datareach.detect.profile import ProfileError, load_profile

        try:
            load_profile(Path(options.profile))
        except (ProfileError, OSError) as exc:
            raise ProxyError(str(exc)) from exc
    geo_db = [str(Path(p).absolute()) for p in options.geo_db]
    if geo_db:  # opened now, as `datareach audit` does: a wrong file is an error before the proxy starts
        from datareach.enrich.geo import GeoDatabaseError, GeoResolver

        for p in geo_db:
            if not os.path.isfile(p):
                raise ProxyError(f"--geo-db file not found: {p}")
        try:
            GeoResolver([Path(p) for p in geo_db])
        except GeoDatabaseError as exc:
            raise ProxyError(str(exc)) from exc
    if not 0 < options.listen_port < 65536:
        raise ProxyError("--listen-port must be 1-65535")
    try:
        python = find_mitmproxy_python()
    except MitmproxyNotFound as exc:
        raise ProxyError(str(exc)) from exc
    report = Path(options.report or time.strftime("datareach-live-%Y%m%d-%H%M%S")).absolute()
    confdir = Path(options.confdir).expanduser().absolute() if options.confdir else Path.home() / ".mitmproxy"
    extra = list(options.mitmdump_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    cmd = [*mitmdump_command(python), "--listen-host", options.listen_host, "--listen-port",
           str(options.listen_port), "--mode", options.mode, "--set", f"confdir={confdir}", "-s", str(ADDON_PATH),
           "--set", f"datareach_python={sys.executable}", "--set", f"datareach_report={report}"]
    if options.profile:
        cmd += ["--set", f"datareach_profile={Path(options.profile).absolute()}"]
    if options.policy:
        policies = [p if not os.path.exists(p) else str(Path(p).absolute()) for p in options.policy]
        cmd += ["--set", f"datareach_policy={','.join(policies)}"]
    if geo_db:
        cmd += ["--set", f"datareach_geo_db={os.pathsep.join(geo_db)}"]
    if not options.show_flows:
        cmd.append("-q")
    cmd += extra
    print(_instructions(options, confdir, report), flush=True)
    # mitmdump gets a session of its own, so that one Ctrl-C reaches it exactly once (from us)
    proc = subprocess.Popen(cmd, start_new_session=True)

    def forward(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    old_int = signal.signal(signal.SIGINT, forward)
    old_term = signal.signal(signal.SIGTERM, forward)
    try:
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    return 0 if code in (0, -signal.SIGINT, 130) else code


def run_proxy(args: argparse.Namespace) -> int:
    """``datareach proxy``: :func:`proxy` with the command line's options (exit 2 for bad ones)."""
    if getattr(args, "addon_path", False):
        from datareach.mitm import addon_path

        print(addon_path())
        return 0
    options = ProxyOptions(
        listen_host=args.listen_host, listen_port=args.listen_port, mode=args.mode, profile=args.profile,
        policy=tuple(args.policy), geo_db=tuple(args.geo_db), report=args.report, confdir=args.confdir,
        show_flows=args.show_flows, mitmdump_args=tuple(args.mitmdump_args))
    try:
        return proxy(options)
    except ProxyError as exc:
        print(f"datareach: error: {exc}", file=sys.stderr)
        return 2
