"""Write the committed mitmproxy flow-file fixtures of tests/data/mitm/.

    python tests/data/mitm/make_fixtures.py [--python MITMPROXY_PYTHON ...]

For each mitmproxy installation given (default: the one datareach finds), a real mitmdump
records (``-w``) the same four requests, sent with curl through it to a loopback test server
(see harness.py; the redirect addon keeps the names the client used), and the dump is written
to ``flows-<mitmproxy version>.mitm``. The older versions were installed in throw-away
virtualenvs (``python -m venv /tmp/mitm-7.0.4 && /tmp/mitm-7.0.4/bin/pip install
mitmproxy==7.0.4``, likewise 8.1.1, 9.0.1, 10.1.6), so each fixture is in the flow format
version that release writes; the current mitmproxy reads them through its migrations.

``kinds-<version>.mitm`` holds the flow kinds a loopback HTTP/1.1 test cannot produce -- an
HTTP/2 request, a WebSocket with messages, a TCP, a UDP and a DNS flow -- made with mitmproxy's
own test-flow constructors (``mitmproxy.test.tflow``) and written with its ``FlowWriter``.

``tests/data/har/savehar-<version>.zhar`` is the same four requests saved by mitmproxy's own
SaveHar addon as a compressed HAR (``--set hardump=....zhar``: ``zlib.compress(har, 9)``), with
the last request's form body turned into an e-mail address (:data:`EMAIL`).

The requests carry the values of examples/profile.toml (a fictional device) in several encodings.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

AID = "a3e3fce2-78b0-4105-ada0-748f79470c71"
EMAIL = "Tester.WeatherApp@example.org"


def requests() -> list[tuple[str, bytes | None, dict[str, str]]]:
    """(url, body, headers) of the requests every fixture records."""
    aid_b64 = base64.urlsafe_b64encode(AID.encode()).decode().rstrip("=")
    email_sha = hashlib.sha256(EMAIL.lower().encode()).hexdigest()
    return [
        (f"https://graph.facebook.com/v1/activities?advertiser_id={AID}", None, {}),
        (f"http://t.appsflyer.com/api/v4?x={aid_b64}", None, {}),
        ("https://api16-normal-c-useast1a.tiktokv.com/service/2/app_log/",
         json.dumps({"header": {"eh": email_sha}}).encode(), {"Content-Type": "application/json"}),
        ("http://collector.example.net/geo", b"lat=52.516274&lon=13.377704",
         {"Content-Type": "application/x-www-form-urlencoded"}),
    ]


def _version(python: str) -> str:
    return subprocess.run([python, "-c", "from mitmproxy.version import VERSION; print(VERSION)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def _send(proxy: harness.Mitmdump, up: harness.Upstream,
          reqs: list[tuple[str, bytes | None, dict[str, str]]]) -> None:
    """The requests through the proxy (each must get a 200), then the proxy and upstream stop."""
    try:
        for url, body, headers in reqs:
            status, _ = harness.curl(proxy.proxy, proxy.ca, url, data=body, headers=headers)
            if status != 200:
                raise RuntimeError(f"{url}: status {status}: {proxy.stderr()[-2000:]}")
    finally:
        proxy.stop()
        up.close()


def record(python: str, out_dir: Path) -> Path:
    version = _version(python)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        up = harness.Upstream(work)
        dump = work / "flows.mitm"
        proxy = harness.Mitmdump(python, work, up, extra=["-w", str(dump)])
        _send(proxy, up, requests())
        target = out_dir / f"flows-{version}.mitm"
        target.write_bytes(dump.read_bytes())
    return target


def zhar(python: str, har_dir: Path) -> Path:
    """The requests, through a real mitmdump that saves them as ``.zhar`` when it stops."""
    version = _version(python)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        up = harness.Upstream(work)
        out = work / "flows.zhar"
        proxy = harness.Mitmdump(python, work, up, options={"hardump": str(out)})
        reqs = requests()
        url, _, headers = reqs[-1]
        reqs[-1] = (url, f"email={EMAIL}&lat=52.516274".encode(), headers)
        _send(proxy, up, reqs)
        target = har_dir / f"savehar-{version}.zhar"
        target.write_bytes(out.read_bytes())
    return target


KINDS_SCRIPT = r"""
import sys
from mitmproxy import io
from mitmproxy.test import tflow, tutils
flows = []
h2 = tflow.tflow(resp=True)
h2.request.http_version = "HTTP/2.0"
h2.request.scheme = "https"
h2.request.host = "graph.facebook.com"
h2.request.port = 443
h2.request.authority = "graph.facebook.com"
h2.request.path = "/v1/h2?advertiser_id=a3e3fce2-78b0-4105-ada0-748f79470c71"
flows.append(h2)
ws = tflow.twebsocketflow()
ws.request.host = "ws.example.net"
ws.request.headers["Host"] = "ws.example.net"
flows.append(ws)
flows.append(tflow.ttcpflow())
if hasattr(tflow, "tudpflow"):
    flows.append(tflow.tudpflow())
if hasattr(tflow, "tdnsflow"):
    flows.append(tflow.tdnsflow(resp=True))
# tflow's connections all say "address": give each flow a server of its own
servers = [("graph.facebook.com", "157.240.0.35", 443), ("ws.example.net", "192.0.2.10", 443),
           ("chat.example.net", "192.0.2.20", 5222), ("quic.example.net", "192.0.2.30", 443),
           (None, "192.0.2.53", 53)]
for fl, (sni, ip, port) in zip(flows, servers):
    fl.server_conn = fl.server_conn.copy()  # a new id
    fl.server_conn.address = (sni or ip, port)
    fl.server_conn.peername = (ip, port)
    fl.server_conn.sni = sni
with open(sys.argv[1], "wb") as f:
    w = io.FlowWriter(f)
    for fl in flows:
        w.add(fl)
"""


def kinds(python: str, out_dir: Path) -> Path:
    version = subprocess.run([python, "-c", "from mitmproxy.version import VERSION; print(VERSION)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    target = out_dir / f"kinds-{version}.mitm"
    subprocess.run([python, "-c", KINDS_SCRIPT, str(target)], check=True)
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", action="append", default=[], help="a Python with mitmproxy (repeatable)")
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    pythons = args.python or [harness.mitmproxy_python()]
    out = Path(args.out)
    for py in pythons:
        if py is None:
            print("mitmproxy not found", file=sys.stderr)
            return 1
        print("wrote", record(py, out))
    print("wrote", kinds(pythons[-1], out))
    print("wrote", zhar(pythons[-1], HERE.parent / "har"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
