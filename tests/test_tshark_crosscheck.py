"""Cross-check against Wireshark's dissectors (Debian's tshark, installed by `make test`).

tshark is an independent implementation of every protocol we parse: on the same captures, the
server names it finds in TLS and QUIC ClientHellos, the HTTP hosts and the DNS answers must be
the ones datareach finds.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from datareach.testing.builders import aioquic_initials, tls_session, write_pcap
from datareach.testing.capture import UdpFlow
from datareach.testing.records import read

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mobile-app-session.pcapng"

FIELDS = ["ip.dst", "ipv6.dst", "tls.handshake.extensions_server_name", "http.host",
          "dns.flags.response", "dns.qry.name", "dns.a", "dns.aaaa"]


def tshark(path: Path) -> list[list[str]]:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: `make test` installs it (apt-get install tshark)")
    cmd = [exe, "-n", "-o", "tcp.reassemble_out_of_order:TRUE", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def compare(path: Path) -> None:
    rows = tshark(path)
    sni = {(r[0] or r[1], r[2]) for r in rows if r[2]}
    http = {(r[0] or r[1], r[3].split(":")[0].lower()) for r in rows if r[3]}
    dns = {(r[5].lower(), a) for r in rows if r[4] == "1" for a in (r[6], r[7]) if a}
    ours = read(path)
    assert {(c.server_ip, c.sni or c.quic_sni) for c in ours.connections if c.sni or c.quic_sni} == sni
    assert {(c.server_ip, c.http_host) for c in ours.connections if c.http_host} == http
    # tshark shows the first answer of each kind per message (occurrence=f); ours must include them
    assert dns <= {(a.qname, a.address) for a in ours.dns}


def test_example_capture_matches_tshark() -> None:
    compare(EXAMPLE)


def test_naming_capture_matches_tshark(naming_pcap: Path) -> None:
    compare(naming_pcap)


def test_quic_and_split_hellos_match_tshark(tmp_path: Path) -> None:
    pkts = tls_session("split.example.com", segments=(7, 90), order=[1, 0, 2], start=1_700_000_100.0)
    u = UdpFlow("192.168.1.23", 51000, "142.250.185.99", 443, start=1_700_000_200.0)
    pkts += [u.send(d) for d in aioquic_initials("www.googleapis.com", big=True)]
    compare(write_pcap(tmp_path / "x.pcap", pkts))
