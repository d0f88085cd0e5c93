"""How much of what tshark finds in real third-party captures datareach also finds, per kind.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_corpus.py [--mirror-zeek GITDIR]
        [--mirror-tcpdump GITDIR] [--dir DIR ...] [--jobs 2] [--limit N] [--only PATTERN]
        [--timeout 120] [--json OUT] [--no-cli] [--tshark-two-pass | --check-two-pass]

The corpus: the capture files of two public, BSD-licensed test suites, taken from bare git
mirrors (the blobs of the mirror's HEAD, read with ``git cat-file``, written once to
``benchmarks/out/corpus/``; blobs a partial mirror lacks are named and skipped):
Zeek's ``testing/btest/Traces/`` and tcpdump's ``tests/``; or any directory of captures given
with ``--dir`` (then the mirrors are not used unless given too). A file is taken when it starts
with a pcap or pcapng magic number, is gzip-compressed with one inside, or has a capture's file
name (.pcap, .pcapng, .cap, .trace, .dmp and their .gz): tshark then decides whether it can be
read. Files tshark cannot read at all (it exits with an error having read no frame) are left
out of the corpus and counted by reason; every other file counts, also one with none of the
kinds (it still counts for the undecoded-frames check).

The reference, for each file (Debian's tshark 4.0; its results are cached under
``benchmarks/out/corpus-tshark/`` by the file's SHA-256, so a second run only runs datareach)::

    tshark -n -o tcp.desegment_tcp_streams:TRUE -r FILE -T fields -E separator=/t \\
        -e frame.number -e frame.len -e frame.protocols
    tshark -n -o tcp.desegment_tcp_streams:TRUE -r FILE \\
        -Y 'dns.flags.response == 1 || http.request || tls.handshake.type == 1' \\
        -T json --no-duplicate-keys -J 'frame ip ipv6 tcp udp dns mdns llmnr http tls quic'

(``--tshark-two-pass`` adds ``-2`` to both, cached apart, to check that the one-pass results
are the same.) No ``-d``: tshark's own port table and heuristics decide what is TLS, HTTP or
DNS. The first command counts frames, bytes and the frames that carry IP or IPv6 at any depth
(and which of those are tunnelled); the second gives the items, from the protocol tree, so that
a DNS answer's name stays paired with its address:

``tls_sni``
    ``tls.handshake.extensions_server_name`` of ClientHellos in a top-level ``tls`` layer (TLS
    over TCP, at any encapsulation depth; DTLS is not counted).
``quic_sni``
    the same field inside the ``quic`` layer: tshark 4.0 decrypts QUIC Initials itself and puts
    the ClientHello of the CRYPTO frames under ``quic.frame``.
``http_host``
    ``http.host`` of HTTP/1.x requests (the ``http`` layer; HTTP/2 is ``http2``).
``dns``
    (``dns.resp.name``, ``dns.a`` / ``dns.aaaa``) of each A/AAAA record in the Answers section
    of a response in a ``dns`` layer (DNS on tshark's DNS ports: 53, and 853/5353/5355 are other
    layers); authority and additional records are not answers.
``http_request``
    (``http.request.method``, ``http.host`` or '' without one, path of ``http.request.uri``
    without query or fragment, an absolute-form URI's scheme and authority taken off).

``mdns`` (the same pairs in ``mdns`` and ``llmnr`` layers) is reported on its own line and is
not one of the five. Names are lower-cased without a trailing dot, Host without its port,
addresses in canonical form (IPv6 compressed).

Items tshark reads from inside an ICMP error (the quoted header of the packet that failed) are
not counted: nobody received that DNS answer or sent that request; they are counted and printed
as excluded. So are HTTP requests tshark finds over UDP (SSDP and similar), which are not
requests to a destination, the HTTP/2 connection preface (``PRI * HTTP/2.0``, which tshark's
HTTP/1 dissector reads as a request), and a "request" whose line has no target (Zeek's
``http/methods.pcap`` sends ``OPTIONS`` alone on a line: tshark makes it a request with an empty
URI; no server would). Checked: ``-2`` (two passes) gives the same items as one pass on the 303
files of the HTTP, TLS, QUIC, DNS and tunnel traces (``--check-two-pass``).

The frame census lists a frame under "tunnel" when tshark sees two IP layers in it; "icmp" and
"pim" there are ICMP errors quoting a packet and PIM Register messages, not tunnels.

datareach's side, for each file, in a child process (``--measure FILE``, with the same timeout):
the records of ``datareach.sources.read_input`` -- what the audit reads: the connection
table's ``sni``, ``quic_sni`` and ``http_host`` columns; each ``Exchange``'s method, Host header
and target (the Host of every request joins ``http_host``, as it names a destination in the
audit too); each ``DnsAnswer``'s (last name of ``cname_chain``, ``address``). Recall of a kind
is |datareach & tshark| / |tshark| over the file's sets, summed over the corpus; a file is
"under 98%" when its own recall of that kind is below 0.98.

The whole CLI also runs on every file (``python -m datareach --debug audit FILE --format json
--no-detect --no-progress -o OUT``): its exit status, any Python traceback, its wall time, the
document's ``inputs[0].errors`` and, when the report has it, ``inputs[0].packets`` (frames
decoded and not decoded, by reason), next to tshark's count of frames carrying IP.

Per-file details (up to 20 missed items per kind, with tshark's frame numbers, protocol path,
ports and flags) go to ``--json`` (default ``benchmarks/out/corpus-results.json``).
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
MIRRORS = {
    "zeek": (Path("/work/.mirror/zeek+zeek/repo"), "testing/btest/Traces"),
    "tcpdump": (Path("/work/.mirror/the-tcpdump-group+tcpdump/repo"), "tests"),
}
KINDS = ("tls_sni", "quic_sni", "http_host", "dns", "http_request")
EXTRA_KINDS = ("mdns",)
#: Bump when the way tshark's output is read changes: the cache is keyed by it too.
PARSER_VERSION = "4"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".trace", ".dmp", ".pcap.gz", ".pcapng.gz", ".trace.gz")
MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")
TSHARK_OPTS = ["-n", "-o", "tcp.desegment_tcp_streams:TRUE"]
TSHARK_FILTER = "dns.flags.response == 1 || http.request || tls.handshake.type == 1"
TSHARK_LAYERS = "frame ip ipv6 tcp udp dns mdns llmnr http tls quic"
#: Protocols that carry IP inside IP (or inside UDP): an IP layer after one of them is tunnelled.
TUNNELS = ("gre", "erspan", "vxlan", "geneve", "gtp", "teredo", "ayiya", "l2tp", "pptp", "ipip", "6in4", "mpls",
           "pwach", "pweth", "nsh", "etherip", "ppp", "pppoes", "ieee8021ah", "vlan")
EXAMPLES = 20
THRESHOLD = 0.98


# -- the corpus ---------------------------------------------------------------------------------


def is_capture(name: str, head: bytes) -> bool:
    """A capture by its content (pcap/pcapng magic, or gzip of one) or by its file name."""
    if head[:4] in MAGICS:
        return True
    if head[:2] == b"\x1f\x8b":
        try:
            inner = gzip.decompress(head) if len(head) < 4096 else _gunzip_head(head)
        except (OSError, EOFError, ValueError):
            inner = b""
        if inner[:4] in MAGICS:
            return True
    return name.lower().endswith(CAPTURE_SUFFIXES)


def _gunzip_head(data: bytes) -> bytes:
    import zlib

    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, 64)


def extract_mirror(label: str, git_dir: Path, subdir: str, cache: Path) -> list[Path]:
    """The captures under ``subdir`` of the mirror's HEAD, written once under ``cache/label``.
    Blobs the mirror lacks (a partial clone) are skipped and named."""
    git = ["git", "--git-dir", str(git_dir)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    dest = cache / label
    stamp = dest / ".commit"
    if stamp.exists() and stamp.read_text().strip() == commit:
        return sorted(p for p in dest.rglob("*") if p.is_file() and not p.name.startswith("."))
    print(f"extracting {label} captures from {git_dir} ({commit[:12]}) to {dest} ...", flush=True)
    listing = subprocess.run([*git, "ls-tree", "-r", "-z", commit, "--", subdir], check=True,
                             capture_output=True).stdout.decode()
    blobs = []
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, name = entry.split("\t", 1)
        mode, kind, oid = meta.split()
        if kind == "blob" and mode != "120000":
            blobs.append((oid, name))
    proc = subprocess.Popen([*git, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    out: list[Path] = []
    missing: list[str] = []
    for oid, name in blobs:
        proc.stdin.write(oid.encode() + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline().decode().split()
        if len(header) < 3 or header[1] == "missing":
            missing.append(name)
            continue
        data = proc.stdout.read(int(header[2]))
        proc.stdout.read(1)
        rel = Path(name).relative_to(subdir)
        if not is_capture(rel.name, data[:4096]):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        out.append(target)
    proc.stdin.close()
    proc.wait()
    if missing:
        print(f"  {len(missing)} files are missing from the mirror (not in the corpus): "
              + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    (dest / ".missing").write_text("".join(m + "\n" for m in missing))
    stamp.write_text(commit + "\n")
    return sorted(out)


def directory_captures(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            with open(p, "rb") as f:
                head = f.read(4096)
            if is_capture(p.name, head):
                out.append(p)
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- normalisation ------------------------------------------------------------------------------


def norm_name(name: str) -> str:
    n = name.strip().rstrip(".").lower()
    return "" if n == "<root>" else n  # (tshark's name for the root)


def norm_host(host: str) -> str:
    """A Host header's name, lower case, without port or trailing dot."""
    h = host.strip()
    if h.startswith("["):
        end = h.find("]")
        return norm_addr(h[1:end]) if end > 0 else h.lower()
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return norm_name(h)


def norm_addr(addr: str) -> str:
    try:
        return ipaddress.ip_address(addr.strip()).compressed
    except ValueError:
        return addr.strip().lower()


def uri_path(uri: str) -> str:
    """The path of a request target: no query or fragment; an absolute URI's scheme and authority off."""
    u = uri.strip()
    scheme = u.find("://")
    if 0 < scheme < 12 and u[:scheme].isalpha():
        slash = u.find("/", scheme + 3)
        u = u[slash:] if slash >= 0 else "/"
    for sep in ("?", "#"):
        u = u.split(sep, 1)[0]
    return u


# -- tshark -------------------------------------------------------------------------------------


def tshark_commands(path: Path, two_pass: bool) -> tuple[list[str], list[str]]:
    base = ["tshark", *TSHARK_OPTS, *(["-2"] if two_pass else []), "-r", str(path)]
    frames = [*base, "-T", "fields", "-E", "separator=/t", "-e", "frame.number", "-e", "frame.len",
              "-e", "frame.protocols"]
    items = [*base, "-Y", TSHARK_FILTER, "-T", "json", "--no-duplicate-keys", "-J", TSHARK_LAYERS]
    return frames, items


def _stderr_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and "Running as user" not in ln]


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _walk(node: Any, key: str) -> Iterator[Any]:
    """Every value of ``key`` anywhere under ``node``."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield from _as_list(v)
            elif isinstance(v, dict | list):
                yield from _walk(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)


def _first(node: Any, key: str) -> str | None:
    return next((str(v) for v in _walk(node, key)), None)


def _has_key(node: Any, pred: Any, depth: int = 2) -> bool:
    if depth < 0:
        return False
    if isinstance(node, dict):
        return any(pred(k) or _has_key(v, pred, depth - 1) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_key(v, pred, depth) for v in node)
    return False


def protocol_shape(protocols: list[str]) -> tuple[str, str]:
    """(the link-layer path before the first IP layer, the tunnel between the first and last IP
    layer: '' when not tunnelled) of a frame's ``frame.protocols``."""
    ips = [i for i, p in enumerate(protocols) if p in ("ip", "ipv6")]
    if not ips:
        return ":".join(protocols[:4]), ""
    outer = ":".join(protocols[: ips[0]])
    if len(ips) == 1:
        return outer, ""
    between = [p for p in protocols[ips[0] + 1 : ips[-1]] if p not in ("ethertype", "ip", "ipv6")]
    return outer, ":".join(between) or "ip-in-ip"


def frame_stats(text: str) -> dict[str, Any]:
    frames = nbytes = ip_frames = tunnelled = 0
    shapes: Counter[str] = Counter()
    non_ip: Counter[str] = Counter()
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        frames += 1
        if parts[1].isdigit():
            nbytes += int(parts[1])
        protos = parts[2].split(":")
        outer, tunnel = protocol_shape(protos)
        if "ip" in protos or "ipv6" in protos:
            ip_frames += 1
            if tunnel and not _in_icmp(protos):
                tunnelled += 1
            shapes[outer + (f" | tunnel {tunnel}" if tunnel else "")] += 1
        else:
            non_ip[outer] += 1
    return {"frames": frames, "bytes": nbytes, "ip_frames": ip_frames, "tunnelled_ip_frames": tunnelled,
            "ip_shapes": dict(shapes.most_common(8)), "non_ip": dict(non_ip.most_common(8))}


def _in_icmp(protos: list[str]) -> bool:
    """The frame is an ICMP error quoting a packet (tshark dissects the quoted packet)."""
    return "icmp" in protos or "icmpv6" in protos


@dataclass
class Item:
    kind: str
    key: tuple[str, ...]
    frame: int
    path: str
    ports: str
    flags: list[str]
    excluded: str | None = None


def _ports(layers: dict[str, Any]) -> str:
    for proto in ("tcp", "udp"):
        layer = _as_list(layers.get(proto))
        if layer:
            last = layer[-1]
            if isinstance(last, dict):
                return f"{proto} {last.get(proto + '.srcport')}->{last.get(proto + '.dstport')}"
    return ""


def frame_items(pkt: dict[str, Any]) -> Iterator[Item]:
    """The items of one frame of tshark's JSON."""
    layers = pkt.get("_source", {}).get("layers", {})
    frame = layers.get("frame", {})
    number = int(frame.get("frame.number", 0))
    protos = str(frame.get("frame.protocols", "")).split(":")
    path = ":".join(protos)
    ports = _ports(layers)
    flags = []
    if frame.get("frame.cap_len") != frame.get("frame.len"):
        flags.append("snapped")
    if any(_has_key(ip, lambda k: k in ("ip.fragments", "ipv6.fragments", "ip.reassembled_in"))
           for ip in _as_list(layers.get("ip")) + _as_list(layers.get("ipv6"))) or "ip.fragments" in layers \
            or "ipv6.fragments" in layers:
        flags.append("ip-reassembled")
    if "tcp.segments" in layers or any(isinstance(t, dict) and "tcp.segments" in t
                                       for t in _as_list(layers.get("tcp"))):
        flags.append("tcp-reassembled")
    tunnel = protocol_shape(protos)[1]
    if tunnel:
        flags.append(f"tunnel:{tunnel}")
    icmp = "inside an ICMP error (quoted packet)" if _in_icmp(protos) else None

    def item(kind: str, key: tuple[str, ...], excluded: str | None = None) -> Item:
        return Item(kind, key, number, path, ports, flags, excluded or icmp)

    for tls in _as_list(layers.get("tls")):
        for name in _walk(tls, "tls.handshake.extensions_server_name"):
            if name:
                yield item("tls_sni", (norm_name(str(name)),))
    for quic in _as_list(layers.get("quic")):
        for name in _walk(quic, "tls.handshake.extensions_server_name"):
            if name:
                yield item("quic_sni", (norm_name(str(name)),))
    for http in _as_list(layers.get("http")):
        method = _first(http, "http.request.method")
        if method is None:
            continue
        uri = _first(http, "http.request.uri") or ""
        host = _first(http, "http.host")
        version = _first(http, "http.request.version") or ""
        why = None
        if "udp" in protos and "tcp" not in protos:
            why = "HTTP over UDP (SSDP and the like)"
        elif method == "PRI" and version.upper().startswith("HTTP/2"):
            why = "the HTTP/2 connection preface"
        elif not uri:
            why = "a request line without a target (not a valid HTTP/1.x request)"
        h = norm_host(host) if host else ""
        if h:
            yield item("http_host", (h,), why)
        yield item("http_request", (method, h, uri_path(uri)), why)
    for layer, kind in (("dns", "dns"), ("mdns", "mdns"), ("llmnr", "mdns")):
        for msg in _as_list(layers.get(layer)):
            if not isinstance(msg, dict) or _first(msg.get("dns.flags_tree", {}), "dns.flags.response") != "1":
                continue
            for answers in _as_list(msg.get("Answers")):
                if not isinstance(answers, dict):
                    continue
                for rrs in answers.values():
                    for rr in _as_list(rrs):
                        if not isinstance(rr, dict):
                            continue
                        addr = rr.get("dns.a") or rr.get("dns.aaaa")
                        name = rr.get("dns.resp.name")
                        if isinstance(addr, str) and isinstance(name, str):
                            yield item(kind, (norm_name(name), norm_addr(addr)))


def run_tshark(path: Path, timeout: float, two_pass: bool) -> dict[str, Any]:
    """tshark's reference for one file: status, frame counts and the items of each kind."""
    frames_cmd, items_cmd = tshark_commands(path, two_pass)
    start = time.perf_counter()
    try:
        rc1, out1, err1 = run_killable(frames_cmd, timeout)
    except TimeoutError:
        return {"status": "excluded", "reason": f"tshark timed out after {timeout:.0f} s", "frames": 0}
    stats = frame_stats(out1)
    errors = _stderr_lines(err1)
    if rc1 != 0 and stats["frames"] == 0:
        reason = errors[0] if errors else f"tshark exit status {rc1}"
        return {"status": "excluded", "reason": _reason_class(reason), "detail": reason, "frames": 0}
    try:
        rc2, out2, err2 = run_killable(items_cmd, timeout)
        errors += _stderr_lines(err2)
    except TimeoutError:
        return {"status": "excluded", "reason": f"tshark timed out after {timeout:.0f} s", "frames": stats["frames"]}
    try:
        packets = json.loads(out2) if out2.strip() else []
    except json.JSONDecodeError as e:
        # (tshark stops mid-document when the file ends inside a record: keep the frames before)
        packets = _salvage_json(out2)
        errors.append(f"tshark's JSON was cut ({e.msg}); {len(packets)} frames read from it")
    items: dict[str, dict[str, Any]] = {k: {} for k in (*KINDS, *EXTRA_KINDS)}
    excluded: Counter[str] = Counter()
    for pkt in packets:
        for it in frame_items(pkt):
            if it.excluded:
                excluded[f"{it.kind}: {it.excluded}"] += 1
                continue
            key = "\x1f".join(it.key)
            entry = items[it.kind].get(key)
            if entry is None:
                items[it.kind][key] = {"frames": [it.frame], "path": it.path, "ports": it.ports, "flags": it.flags}
            elif len(entry["frames"]) < 3:
                entry["frames"].append(it.frame)
    return {"status": "partial" if rc1 or rc2 else "ok", "errors": errors[:5], "seconds": time.perf_counter() - start,
            **stats, "items": items, "excluded": dict(excluded)}


def _reason_class(text: str) -> str:
    """A tshark error reduced to its kind (without the file name)."""
    import re

    t = re.sub(r'"[^"]*"', "FILE", text.split("\n")[0]).replace("tshark: ", "")
    return "tshark: " + re.sub(r"\d+", "N", t)[:110]


def _salvage_json(text: str) -> list[Any]:
    out: list[Any] = []
    dec = json.JSONDecoder()
    pos = text.find("{")
    while pos >= 0:
        try:
            obj, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        out.append(obj)
        pos = text.find("{", end)
    return out


def run_killable(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a command in its own process group; on timeout kill that group (its children too)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimeoutError from None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def tshark_cached(path: Path, digest: str, timeout: float, two_pass: bool, cache: Path) -> dict[str, Any]:
    frames_cmd, items_cmd = tshark_commands(Path("FILE"), two_pass)
    tag = hashlib.sha256(json.dumps([frames_cmd, items_cmd, PARSER_VERSION]).encode()).hexdigest()[:10]
    cached = cache / f"{digest}-{tag}.json"
    if cached.exists():
        result: dict[str, Any] = json.loads(cached.read_text())
        return result
    result = run_tshark(path, timeout, two_pass)
    if "timed out" not in str(result.get("reason", "")):
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(cached)
    return result


# -- datareach ----------------------------------------------------------------------------------


def measure(path: Path) -> dict[str, Any]:
    """What datareach's reading path (read_input, as the audit reads) gives for one file."""
    from datareach.schema import Connection, ConnectionBatch, DnsAnswer, Exchange, InputError
    from datareach.sources import read_input

    start = time.perf_counter()
    sets: dict[str, set[tuple[str, ...]]] = {k: set() for k in KINDS}
    errors: list[str] = []
    conn_rows: list[tuple[Any, ...]] = []
    counts: Counter[str] = Counter()
    answers: list[DnsAnswer] = []
    for rec in read_input(path, 0, keep_bodies=False):
        counts[type(rec).__name__] += 1
        if isinstance(rec, ConnectionBatch):
            conn_rows.extend(rec.row_tuples())
        elif isinstance(rec, Connection):
            conn_rows.append(tuple(getattr(rec, f) for f in ("uid", "sni", "quic_sni", "http_host")))
        elif isinstance(rec, Exchange):
            if rec.scheme != "http":
                continue
            host_header = next((v for k, v in rec.request_headers if k.lower() == "host"), "")
            h = norm_host(host_header) if host_header else ""
            sets["http_request"].add((rec.method, h, uri_path(rec.target)))
            if h:
                sets["http_host"].add((h,))
        elif isinstance(rec, DnsAnswer):
            answers.append(rec)
        elif isinstance(rec, InputError):
            errors.append(("fatal: " if rec.fatal else "") + rec.message)
    from datareach.schema import CONNECTION_FIELDS

    idx = {name: CONNECTION_FIELDS.index(name) for name in ("sni", "quic_sni", "http_host")}
    for row in conn_rows:
        if len(row) == 4:  # (from a Connection record)
            _, sni, quic_sni, http_host = row
        else:
            sni, quic_sni, http_host = row[idx["sni"]], row[idx["quic_sni"]], row[idx["http_host"]]
        if sni:
            sets["tls_sni"].add((norm_name(sni),))
        if quic_sni:
            sets["quic_sni"].add((norm_name(quic_sni),))
        if http_host:
            sets["http_host"].add((norm_host(http_host),))
    for a in answers:
        owner = a.cname_chain[-1] if a.cname_chain else a.qname
        sets["dns"].add((norm_name(owner), norm_addr(a.address)))
    return {"sets": {k: sorted("\x1f".join(t) for t in v) for k, v in sets.items()}, "errors": errors[:20],
            "records": dict(counts), "connections": len(conn_rows), "seconds": time.perf_counter() - start}


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    if src not in env.get("PYTHONPATH", "").split(os.pathsep):
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_measure(path: Path, timeout: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        rc, out, err = run_killable([sys.executable, str(Path(__file__).resolve()), "--measure", str(path)],
                                    timeout, child_env())
    except TimeoutError:
        return {"status": "timeout", "seconds": timeout}
    wall = time.perf_counter() - start
    if rc != 0:
        return {"status": "crash", "rc": rc, "traceback": err[-4000:], "seconds": wall}
    result: dict[str, Any] = json.loads(out)
    result["status"] = "ok"
    result["wall"] = wall
    return result


def run_cli(path: Path, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        doc_path = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "datareach", "--debug", "audit", str(path), "--format", "json", "--no-detect",
               "--no-progress", "-o", str(doc_path)]
        start = time.perf_counter()
        try:
            rc, _, err = run_killable(cmd, timeout, child_env())
        except TimeoutError:
            return {"rc": None, "timeout": True, "seconds": timeout}
        wall = time.perf_counter() - start
        out: dict[str, Any] = {"rc": rc, "timeout": False, "seconds": wall}
        if "Traceback (most recent call last)" in err:
            out["traceback"] = err[err.find("Traceback (most recent call last)"):][-4000:]
        elif rc not in (0, 4) and err.strip():
            out["stderr"] = err[-2000:]
        try:
            doc = json.loads(doc_path.read_text())
        except (OSError, json.JSONDecodeError):
            out["document"] = False
            return out
        out["document"] = True
        inputs = doc.get("inputs") or [{}]
        out["errors"] = [e.get("message", "") + (" (fatal)" if e.get("fatal") else "")
                         for e in inputs[0].get("errors", [])][:20]
        if "packets" in inputs[0]:
            out["packets"] = inputs[0]["packets"]
        return out


# -- one file, the corpus, the table ------------------------------------------------------------


@dataclass
class FileResult:
    label: str
    path: str
    sha256: str
    size: int
    tshark: dict[str, Any]
    datareach: dict[str, Any] = field(default_factory=dict)
    cli: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        t = {k: v for k, v in self.tshark.items() if k != "items"}
        d = {k: v for k, v in self.datareach.items() if k != "sets"}
        return {"file": self.label, "path": self.path, "sha256": self.sha256, "size": self.size, "tshark": t,
                "datareach": d, "cli": self.cli, "kinds": self.kinds}


def compare(tshark: dict[str, Any], datareach: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    dsets = {k: set(v) for k, v in datareach.get("sets", {}).items()}
    for kind in (*KINDS, *EXTRA_KINDS):
        ref: dict[str, Any] = tshark["items"].get(kind, {})
        mine = dsets.get("dns" if kind == "mdns" else kind, set())
        if not ref and not (mine and kind in KINDS):
            continue
        missed = [k for k in ref if k not in mine]
        found = len(ref) - len(missed)
        others = set()
        if kind in KINDS:
            others = set(ref) | (set(tshark["items"].get("mdns", {})) if kind == "dns" else set())
        extra = sorted(mine - others) if kind in KINDS else []
        out[kind] = {
            "tshark": len(ref), "found": found,
            "missed": [{"item": k.split("\x1f"), **ref[k]} for k in missed[:EXAMPLES]],
            "missed_total": len(missed),
            "datareach_only": len(extra), "datareach_only_examples": [e.split("\x1f") for e in extra[:5]],
        }
    return out


def run_file(label: str, path: Path, args: argparse.Namespace, cache: Path) -> FileResult:
    digest = sha256(path)
    tshark = tshark_cached(path, digest, args.timeout, args.tshark_two_pass, cache)
    res = FileResult(label, str(path), digest, path.stat().st_size, tshark)
    if tshark["status"] == "excluded":
        return res
    res.datareach = run_measure(path, args.timeout)
    if not args.no_cli:
        res.cli = run_cli(path, args.timeout)
    if res.datareach.get("status") == "ok":
        res.kinds = compare(tshark, res.datareach)
    return res


def select(args: argparse.Namespace) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    cache = args.cache
    for label, git_dir, subdir in (("zeek", args.mirror_zeek, MIRRORS["zeek"][1]),
                                   ("tcpdump", args.mirror_tcpdump, MIRRORS["tcpdump"][1])):
        if git_dir is None:
            continue
        for p in extract_mirror(label, git_dir, subdir, cache):
            files.append((f"{label}/{p.relative_to(cache / label)}", p))
    for d in args.dir or []:
        for p in directory_captures(d):
            files.append((f"{d.name}/{p.relative_to(d)}", p))
    if args.only:
        pat = args.only
        glob = any(c in pat for c in "*?[")
        files = [(lab, p) for lab, p in files if (fnmatch.fnmatch(lab, pat) if glob else pat in lab)]
    if args.limit:
        files = files[: args.limit]
    return files


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "-"


def report(results: list[FileResult], seconds: float) -> None:
    read = [r for r in results if r.tshark["status"] != "excluded"]
    excluded = Counter(r.tshark.get("reason", "?") for r in results if r.tshark["status"] == "excluded")
    print()
    print(f"corpus: {len(results)} files; {len(read)} read by tshark "
          f"({sum(1 for r in read if r.tshark['status'] == 'partial')} only in part); "
          f"{len(results) - len(read)} excluded; {seconds:.0f} s")
    for reason, n in excluded.most_common():
        names = [r.label for r in results if r.tshark.get("reason") == reason]
        print(f"  excluded, {reason}: {n} ({', '.join(names[:6])}{' ...' if n > 6 else ''})")
    print()
    print("| kind | files with the kind | tshark items | found by datareach | recall | files under 98% "
          "| datareach-only items |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    measured = [r for r in read if r.kinds is not None and r.datareach.get("status") == "ok"]
    for kind in (*KINDS, *EXTRA_KINDS):
        files = [r for r in measured if r.kinds.get(kind, {}).get("tshark")]
        total = sum(r.kinds[kind]["tshark"] for r in files)
        found = sum(r.kinds[kind]["found"] for r in files)
        under = sum(1 for r in files if r.kinds[kind]["found"] < THRESHOLD * r.kinds[kind]["tshark"])
        extra = sum(r.kinds.get(kind, {}).get("datareach_only", 0) for r in measured)
        name = kind if kind in KINDS else f"{kind} (mDNS+LLMNR, not one of the five)"
        print(f"| {name} | {len(files)} | {total} | {found} | {pct(found, total)} | {under} | "
              f"{extra if kind in KINDS else '-'} |")
    print()
    excl: Counter[str] = Counter()
    for r in read:
        excl.update(r.tshark.get("excluded", {}))
    if excl:
        print("tshark items not counted (see the docstring for why):")
        for why, n in excl.most_common():
            print(f"  {why}: {n}")
        print()
    m_status = Counter(r.datareach.get("status", "?") for r in read)
    print(f"datareach read_input (child process per file): {dict(m_status)}")
    for r in read:
        if r.datareach.get("status") in ("crash", "timeout"):
            tb = str(r.datareach.get("traceback", "")).strip().splitlines()
            print(f"  {r.datareach['status']}: {r.label}: {tb[-1] if tb else ''}")
    cli = [r for r in read if r.cli]
    if cli:
        rcs = Counter(str(r.cli.get("rc")) for r in cli if not r.cli.get("timeout"))
        tbs = [r for r in cli if r.cli.get("traceback")]
        touts = [r for r in cli if r.cli.get("timeout")]
        times = sorted(r.cli.get("seconds", 0.0) for r in cli)
        print(f"datareach audit CLI: {len(cli)} runs; exit status {dict(sorted(rcs.items()))}; "
              f"{len(tbs)} with a traceback; {len(touts)} timeouts; wall time median "
              f"{times[len(times) // 2]:.2f} s, max {times[-1]:.1f} s")
        for r in tbs:
            print(f"  traceback: {r.label}: {r.cli['traceback'].strip().splitlines()[-1]}")
        for r in touts:
            print(f"  timeout: {r.label}")
        for r in cli:
            if r.cli.get("rc") not in (0, 4, None) and not r.cli.get("traceback"):
                print(f"  exit {r.cli.get('rc')}: {r.label}: {str(r.cli.get('stderr', '')).strip()[-200:]}")
        errs: Counter[str] = Counter()
        for r in cli:
            for e in r.cli.get("errors", []):
                errs[_error_class(e)] += 1
        if errs:
            print("inputs[].errors of the reports, by kind (files):")
            for e, n in errs.most_common(15):
                print(f"  {n:4} {e}")
        with_packets = [r for r in cli if isinstance(r.cli.get("packets"), dict)]
        print(f"inputs[].packets present in {len(with_packets)} of {len(cli)} reports")
    undecoded_frames(read)
    frames = sum(r.tshark.get("frames", 0) for r in read)
    ip = sum(r.tshark.get("ip_frames", 0) for r in read)
    tun = sum(r.tshark.get("tunnelled_ip_frames", 0) for r in read)
    print(f"frames (tshark): {frames}; carrying IP: {ip} ({pct(ip, frames)}); of those tunnelled: {tun}; "
          f"files where most frames carry no IP: "
          f"{sum(1 for r in read if r.tshark.get('frames') and r.tshark['ip_frames'] * 2 < r.tshark['frames'])}")


def undecoded_frames(read: list[FileResult]) -> None:
    """Where tshark sees IP that datareach cannot reach: link types datareach refuses, tunnels,
    and (when the report has ``inputs[].packets``) its decoded frames against tshark's IP frames."""
    import re

    by_link: dict[str, list[int]] = {}
    for r in read:
        text = " ".join(r.datareach.get("errors", []) + r.cli.get("errors", []))
        for lt in sorted(set(re.findall(r"link type (\d+)(?: is| which is) not supported", text))):
            entry = by_link.setdefault(lt, [0, 0, 0])
            entry[0] += 1
            entry[1] += r.tshark.get("ip_frames", 0)
            entry[2] += sum(r.kinds.get(k, {}).get("tshark", 0) for k in KINDS)
    if by_link:
        print("link types datareach does not read (files; frames tshark sees carrying IP in them; items of the "
              "five kinds in them):")
        for lt, (n, ip, items) in sorted(by_link.items(), key=lambda kv: -kv[1][1]):
            print(f"  link type {lt}: {n} files, {ip} IP frames, {items} items")
    tunnels: Counter[str] = Counter()
    tunnel_files: Counter[str] = Counter()
    for r in read:
        for shape, n in r.tshark.get("ip_shapes", {}).items():
            if "| tunnel " in shape:
                t = shape.split("| tunnel ", 1)[1]
                tunnels[t] += n
                tunnel_files[t] += 1
    if tunnels:
        print("tunnelled IP frames (tshark), by tunnel: " + "; ".join(
            f"{t} {n} frames/{tunnel_files[t]} files" for t, n in tunnels.most_common(12)))
    acc = [r for r in read if isinstance(r.cli.get("packets"), dict)]
    short = []
    for r in acc:
        decoded = int(r.cli["packets"].get("decoded", {}).get("frames", 0))
        ip = int(r.tshark.get("ip_frames", 0))
        if decoded < THRESHOLD * ip:
            short.append((ip - decoded, r.label, decoded, ip))
    if acc:
        print(f"inputs[].packets: {len(short)} of {len(acc)} files decode fewer frames than tshark sees carrying IP"
              + "".join(f"\n  {lab}: decoded {d} of {ip} IP frames" for _, lab, d, ip in sorted(short)[::-1][:15]))
    # the bar: no input has more than half its IP frames undecoded without the report saying so
    # (a warning in inputs[].packets, or an input error)
    silent = [r.label for r in read
              if int((r.cli.get("packets") or {}).get("decoded", {}).get("frames", 0)) * 2 < int(r.tshark.get("ip_frames", 0))
              and not (r.cli.get("packets") or {}).get("warning") and not r.cli.get("errors")]
    print(f"files with more than half their IP frames undecoded and neither a warning nor an error in the report: "
          f"{len(silent)}" + "".join(f"\n  {lab}" for lab in silent[:15]))


def check_two_pass(files: list[tuple[str, Path]], args: argparse.Namespace) -> None:
    """Whether tshark's two-pass analysis (-2) changes the reference items of any file."""

    def both(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        digest = sha256(path)
        return (tshark_cached(path, digest, args.timeout, False, args.tshark_cache),
                tshark_cached(path, digest, args.timeout, True, args.tshark_cache))

    differ: Counter[str] = Counter()
    compared = 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for (label, _), (one, two) in zip(files, pool.map(lambda f: both(f[1]), files), strict=True):
            if one["status"] == "excluded" or two["status"] == "excluded":
                continue
            compared += 1
            for kind in (*KINDS, *EXTRA_KINDS):
                a, b = set(one["items"].get(kind, {})), set(two["items"].get(kind, {}))
                if a != b:
                    differ[kind] += 1
                    print(f"  {label} {kind}: only one-pass {sorted(a - b)[:3]}, only -2 {sorted(b - a)[:3]}")
    print(f"tshark -2 against one pass: {compared} files compared; files whose items differ, by kind: "
          f"{dict(differ) or 'none'}")


def _error_class(message: str) -> str:
    import re

    return re.sub(r"\d[\d,]*", "N", message)[:110]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror-zeek", type=Path, default=MIRRORS["zeek"][0], help="bare git mirror of zeek/zeek")
    ap.add_argument("--mirror-tcpdump", type=Path, default=MIRRORS["tcpdump"][0],
                    help="bare git mirror of the-tcpdump-group/tcpdump")
    ap.add_argument("--no-mirrors", action="store_true", help="only the --dir directories")
    ap.add_argument("--dir", type=Path, action="append", help="a directory of captures (repeatable)")
    ap.add_argument("--cache", type=Path, default=OUT / "corpus", help="where the mirrors' captures are written")
    ap.add_argument("--tshark-cache", type=Path, default=OUT / "corpus-tshark")
    ap.add_argument("--jobs", type=int, default=2, help="files at once (each runs one process at a time)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files")
    ap.add_argument("--only", help="only files whose label contains this (or matches it, a glob)")
    ap.add_argument("--timeout", type=float, default=120.0, help="per file and command, seconds")
    ap.add_argument("--json", type=Path, default=OUT / "corpus-results.json", help="per-file details")
    ap.add_argument("--no-cli", action="store_true", help="do not run the datareach audit CLI")
    ap.add_argument("--tshark-two-pass", action="store_true", help="the reference is tshark with -2")
    ap.add_argument("--check-two-pass", action="store_true",
                    help="only compare tshark's items with and without -2 on the selected files (no datareach)")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.measure is not None:
        json.dump(measure(args.measure), sys.stdout)
        return
    if args.no_mirrors or (args.dir and "--mirror-zeek" not in sys.argv and "--mirror-tcpdump" not in sys.argv):
        args.mirror_zeek = args.mirror_tcpdump = None
    files = select(args)
    if not files:
        raise SystemExit("no capture files selected")
    if args.check_two_pass:
        check_two_pass(files, args)
        return
    start = time.perf_counter()
    results: list[FileResult] = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_file, label, path, args, args.tshark_cache): label for label, path in files}
        for i, fut in enumerate(as_completed(futures), 1):
            results.append(fut.result())
            if i % 50 == 0 or i == len(files):
                print(f"  {i}/{len(files)} files ({time.perf_counter() - start:.0f} s)", flush=True)
    results.sort(key=lambda r: r.label)
    report(results, time.perf_counter() - start)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "tshark": " ".join(tshark_commands(Path("FILE"), args.tshark_two_pass)[1]),
        "files": [r.to_json() for r in results]}, indent=1))
    print(f"per-file details: {args.json}")


if __name__ == "__main__":
    main()
