"""The packet core compiled by mypyc (native) and its Python sources give the same results.

``setup.py`` compiles :data:`datareach._core.NATIVE_MODULES` when a C compiler is there;
``DATAREACH_NATIVE=0`` makes such an installation run their sources (:class:`datareach._core.PureFinder`).
These tests compare the two paths:

* the JSON report, byte for byte (but for its ``generated_at``), of the example capture, of every
  pcap/pcapng capture under tests/data and of small captures from
  benchmarks/generate_capture.py, each path in a subprocess of its own;
* the :class:`~datareach.dissect.packets.PacketDecoder` of each path (the sources loaded by
  path under other names) fed the same generated and mutated frames (hypothesis);
* a build without a C compiler installs the pure-Python package, which runs.

Where the native build is absent they are skipped, unless ``DATAREACH_EXPECT_NATIVE`` is set
(``make test`` sets it: there is a compiler there, so the build must have made the core).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datareach import _core
from datareach.schema import ConnectionBatch
from datareach.testing.builders import client_hello, dns_response
from datareach.testing.capture import TcpSession, UdpFlow, ethernet_frame

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"
PROFILE = ROOT / "examples" / "profile.toml"
GENERATOR = ROOT / "benchmarks" / "generate_capture.py"


def _extension(name: str) -> Path | None:
    """The compiled module of ``name`` beside its source, looked up past DATAREACH_NATIVE=0."""
    package = importlib.import_module(name.rpartition(".")[0])
    spec = importlib.machinery.PathFinder.find_spec(name, list(package.__path__))
    if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        return None
    return Path(str(spec.origin))


def _native_built() -> bool:
    built = [m for m in _core.NATIVE_MODULES if _extension(m) is not None]
    if len(built) == len(_core.NATIVE_MODULES):
        return True
    if os.environ.get("DATAREACH_EXPECT_NATIVE"):
        missing = sorted(set(_core.NATIVE_MODULES) - set(built))
        pytest.fail(f"DATAREACH_EXPECT_NATIVE is set but the packet core is not compiled: {missing} have no "
                    "extension module (build it with `pip install -e .` and a C compiler)")
    return False


@pytest.fixture(scope="module")
def native() -> None:
    if not _native_built():
        pytest.skip("the packet core is not compiled (no C compiler at build time, or not built)")


# -- the reports of both paths ----------------------------------------------------------------

_AUDIT_ALL = """
import sys
from datareach.cli import main
out, profile = sys.argv[1], sys.argv[2]
for i, path in enumerate(sys.argv[3:]):
    extra = ["--profile", profile] if path.endswith("mobile-app-session.pcapng") else []
    code = main(["audit", path, "--format", "json", "--no-progress", "-o", f"{out}/{i}.json", *extra])
    print(i, code, flush=True)
"""
_GENERATED_AT = re.compile(rb'"generated_at": ?"[^"]*"')


def _captures() -> list[Path]:
    data = ROOT / "tests" / "data"
    found = sorted(p for p in data.rglob("*") if p.is_file() and re.search(r"\.pcap(ng)?(\.gz)?$", p.name))
    return [EXAMPLE, *found]


def _reports(paths: list[Path], out: Path, native: bool, cache: Path) -> tuple[str, dict[int, bytes]]:
    out.mkdir()
    env = {**os.environ, "DATAREACH_NATIVE": "1" if native else "0", "DATAREACH_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("DATAREACH_WORKERS", None)
    run = subprocess.run([sys.executable, "-c", _AUDIT_ALL, str(out), str(PROFILE), *map(str, paths)],
                         env=env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    reports = {int(f.stem): _GENERATED_AT.sub(b'"generated_at":""', f.read_bytes()) for f in out.glob("*.json")}
    return run.stdout, reports


def _core_of_subprocess(native: bool) -> str:
    env = {**os.environ, "DATAREACH_NATIVE": "1" if native else "0"}
    run = subprocess.run([sys.executable, "-m", "datareach", "--version"], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    return run.stdout


def test_version_names_the_packet_core(native: None) -> None:
    assert "packet core: native (mypyc)" in _core_of_subprocess(True)
    assert "packet core: pure Python" in _core_of_subprocess(False)


def _assert_same(paths: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    codes_n, native_reports = _reports(paths, tmp_path / "native", True, cache)
    codes_p, pure_reports = _reports(paths, tmp_path / "pure", False, cache)
    assert codes_n == codes_p
    assert len(native_reports) == len(paths)
    for i, path in enumerate(paths):
        assert native_reports[i] == pure_reports[i], f"the reports of {path} differ between the two paths"
        assert b"mypyc" not in native_reports[i] and b"packet core" not in native_reports[i]


def test_reports_of_the_example_and_the_test_captures_are_identical(native: None, tmp_path: Path) -> None:
    paths = _captures()
    assert len(paths) > 50
    _assert_same(paths, tmp_path)


def _mixes() -> list[list[str]]:
    text = GENERATOR.read_text()
    mixes = [[]]
    if '"--mix"' in text and '"hard"' in text:
        mixes.append(["--mix", "hard"])
    return mixes


def test_reports_of_generated_captures_are_identical(native: None, tmp_path: Path) -> None:
    pytest.importorskip("dns")
    paths = []
    for i, mix in enumerate(_mixes()):
        path = tmp_path / f"gen{i}.pcap"
        subprocess.run([sys.executable, str(GENERATOR), "--size-mb", "3", "--out", str(path), "--seed", "5", *mix],
                       check=True, capture_output=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])})
        paths.append(path)
    _assert_same(paths, tmp_path)


# -- the decoder of both paths on generated and mutated frames --------------------------------

#: the compiled modules' sources, loaded in dependency order under names of their own
_ORDER = ("datareach.dissect.dns", "datareach.dissect.http1", "datareach.dissect.tls", "datareach.dissect.packets")


def _load_sources() -> dict[str, ModuleType]:
    """The Python sources of the dissect modules of the packet core, as modules named
    ``_pure_<name>`` that import each other (not the compiled modules)."""
    loaded: dict[str, ModuleType] = {}
    saved: list[tuple[str, ModuleType | None, ModuleType, ModuleType | None]] = []
    try:
        for name in _ORDER:
            parent_name, _, leaf = name.rpartition(".")
            parent = importlib.import_module(parent_name)
            alias = "_pure_" + name.replace(".", "_")
            spec = importlib.util.spec_from_file_location(alias, SRC / (name.replace(".", "/") + ".py"))
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[alias] = module
            spec.loader.exec_module(module)
            loaded[name] = module
            # while the next ones load, `from datareach.dissect import dns` names this one
            saved.append((name, sys.modules.get(name), parent, getattr(parent, leaf, None)))
            sys.modules[name] = module
            setattr(parent, leaf, module)
    finally:
        for name, before, parent, attr in reversed(saved):
            if before is not None:
                sys.modules[name] = before
            leaf = name.rpartition(".")[2]
            if attr is not None:
                setattr(parent, leaf, attr)
    return loaded


@pytest.fixture(scope="module")
def both() -> tuple[ModuleType, ModuleType]:
    if not _native_built():
        pytest.skip("the packet core is not compiled")
    from datareach.dissect import packets

    if not _core.is_compiled(packets):
        pytest.skip("this process runs the sources (DATAREACH_NATIVE=0)")
    pure = _load_sources()["datareach.dissect.packets"]
    assert not _core.is_compiled(pure) and pure.dns is not packets.dns
    return packets, pure


def _frames() -> list[tuple[float, bytes]]:
    """A few connections' frames: HTTP with a body, a TLS ClientHello, DNS over UDP and TCP."""
    out: list[tuple[float, bytes]] = []
    web = TcpSession("192.0.2.10", 40001, "198.51.100.80", 80, start=100.0)
    body = b'{"email":"a@example.com","id":"38400000-8cf0-11bd-b23e-10b96e4ef00d"}'
    out += web.handshake() + web.client_send(
        b"POST /v1/e?x=1 HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body, segments=(40, 60))
    out += web.server_send(b"HTTP/1.1 204 No Content\r\n\r\n") + web.close()
    tls = TcpSession("2001:db8::10", 40002, "2001:db8::443", 443, start=101.0)
    out += tls.handshake() + tls.client_send(client_hello("cdn.example.net", alpn=["h2"])) + tls.reset()
    dns = UdpFlow("192.0.2.10", 53000, "192.0.2.53", 53, start=102.0)
    out += [dns.send(dns_response("tracker.example.org.", [("tracker.example.org.", "A", "203.0.113.9")]),
                     from_client=False)]
    return [(ts, ethernet_frame(ip)) for ts, ip in out]


FRAMES = _frames()


def _decode(module: ModuleType, frames: list[tuple[float, bytes]]) -> list[Any]:
    dec = module.PacketDecoder(0, max_live=4)
    for ts, frame in frames:
        dec.packet(ts, frame, 1)
    dec.finish()
    out: list[Any] = []
    for r in dec.records:
        out.extend(map(repr, r.connections()) if isinstance(r, ConnectionBatch) else [repr(r)])
    counters = (dec.malformed, dec.cut, dec.http_holes, dec.http_bytes_skipped, dec.response_head_cuts,
                dec.retired, dec.revived, dec.retired_inspecting, dec.accounting.to_dict())
    return [*out, counters]


@st.composite
def _mutated(draw: st.DrawFn) -> list[tuple[float, bytes]]:
    order = draw(st.permutations(range(len(FRAMES))))
    keep = draw(st.integers(1, len(FRAMES)))
    frames = [FRAMES[i] for i in sorted(order[:keep])] if draw(st.booleans()) else [FRAMES[i] for i in order[:keep]]
    out = []
    for ts, frame in frames:
        data = bytearray(frame)
        for _ in range(draw(st.integers(0, 3))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] = draw(st.integers(0, 255))
        if draw(st.integers(0, 9)) == 0:
            data = data[: draw(st.integers(0, len(data)))]
        out.append((ts, bytes(data)))
    out += [(ts + 50.0, draw(st.binary(max_size=80))) for ts in draw(st.lists(st.floats(0, 10), max_size=2))]
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=_mutated())
def test_decoders_agree_on_generated_and_mutated_frames(both: tuple[ModuleType, ModuleType],
                                                         frames: list[tuple[float, bytes]]) -> None:
    native, pure = both
    assert _decode(native, frames) == _decode(pure, frames)


def test_decoders_agree_on_the_unmutated_frames(both: tuple[ModuleType, ModuleType]) -> None:
    native, pure = both
    got = _decode(native, FRAMES)
    assert got == _decode(pure, FRAMES)
    assert any("api.example.com" in r for r in got if isinstance(r, str))
    assert any("tracker.example.org" in r for r in got if isinstance(r, str))


# -- no compiler: the pure-Python package -----------------------------------------------------


def _copy_project(dest: Path) -> Path:
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE", "NOTICE"):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def test_without_a_compiler_the_package_installs_as_pure_python(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    project = _copy_project(tmp_path / "project")
    target = tmp_path / "target"
    # no compiler: CC names nothing, and PATH has no gcc/cc (only Python's own directory)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATAREACH_NATIVE")}
    env.update(CC="/nonexistent/cc", PATH=str(Path(sys.executable).parent), PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "--no-cache-dir", "-v", "--target", str(target), str(project)],
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "no working C compiler: installing the pure-Python packet core" in run.stdout + run.stderr
    installed = target / "datareach"
    assert (installed / "dissect" / "packets.py").is_file()
    assert not list(target.rglob("*.so")), "a pure-Python install has no extension module of ours"
    # it runs, from the target (the environment's other packages through PYTHONPATH)
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *site]),
           "DATAREACH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("DATAREACH_NATIVE", None)
    version = subprocess.run([sys.executable, "-m", "datareach", "--version"], env=env, capture_output=True,
                             text=True, timeout=60, check=True, cwd=tmp_path)
    assert "packet core: pure Python" in version.stdout
    where = subprocess.run([sys.executable, "-c", "import datareach.dissect.packets as p; print(p.__file__)"],
                           env=env, capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path)
    assert where.stdout.strip() == str(installed / "dissect" / "packets.py")
    audit = subprocess.run([sys.executable, "-m", "datareach", "audit", str(EXAMPLE), "--format", "json",
                            "--no-progress"], env=env, capture_output=True, timeout=300, check=False, cwd=tmp_path)
    assert audit.returncode in (0, 3), audit.stderr[-2000:]
    assert b'"destinations"' in audit.stdout


# -- the switch -------------------------------------------------------------------------------


def test_the_pure_finder_hands_out_the_sources_of_the_compiled_modules_only() -> None:
    finder = _core.PureFinder()
    from datareach import dissect

    spec = finder.find_spec("datareach.dissect.packets", list(dissect.__path__))
    assert spec is not None and spec.origin == str(SRC / "datareach" / "dissect" / "packets.py")
    assert isinstance(spec.loader, importlib.machinery.SourceFileLoader)
    assert finder.find_spec("datareach.dissect.quic", list(dissect.__path__)) is None
    assert finder.find_spec("datareach.dissect.packets", None) is None


def test_the_makefile_rebuilds_when_a_compiled_module_changes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    block = makefile.split("NATIVE_SRC :=", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"[\w/]+\.py", block.replace("\\\n", " ")))
    expected = {m.removeprefix("datareach.").replace(".", "/") + ".py" for m in _core.NATIVE_MODULES}
    assert expected <= listed | {p.removeprefix("src/datareach/") for p in listed}


def test_a_compiled_module_older_than_its_source_is_not_used(native: None, tmp_path: Path) -> None:
    """In a source tree (src/ with setup.py beside it) an edited source wins over its stale
    extension module, and --version says why."""
    tree = tmp_path / "tree"
    shutil.copytree(SRC, tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy2(ROOT / "setup.py", tree / "setup.py")
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "DATAREACH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("DATAREACH_NATIVE", None)

    def core() -> str:
        return subprocess.run([sys.executable, "-m", "datareach", "--version"], env=env, capture_output=True,
                              text=True, timeout=60, check=True, cwd=tmp_path).stdout

    assert "packet core: native (mypyc)" in core()
    source = tree / "src" / "datareach" / "dissect" / "tls.py"
    extension = _extension("datareach.dissect.tls")
    assert extension is not None
    later = extension.stat().st_mtime + 10
    os.utime(source, (later, later))
    assert "pure Python (the compiled packet core is older than its sources" in core()
