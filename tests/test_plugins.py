"""Plugins through entry points: a real third-party package, pip-installed, in real audits.

tests/data/plugin_pkg is a plugin as another project would write it: a source for a made-up
text format (ACME flow logs), a detector for a made-up identifier (ACME user ids) and a report
format (CSV). It is installed with pip into a temporary directory -- offline, with the venv's
own setuptools -- and ``datareach audit`` runs as a subprocess with that directory on
PYTHONPATH, exactly as after ``pip install datareach-acme``. Broken plugins (one that cannot
be imported, a ``sniff`` and a detector that raise) are installed as bare ``.dist-info``
metadata, which is all that entry-point discovery reads.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datareach import plugins
from datareach.detect.detector import BUILTIN_DETECTORS
from datareach.report.formats import BUILTIN_FORMATS
from datareach.sources.registry import BUILTIN_SOURCES

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PKG = ROOT / "tests" / "data" / "plugin_pkg"
HAR = ROOT / "tests" / "data" / "har" / "chrome.har"

ACME_LOG = """\
#acme-flowlog v1
# ts client_ip server_ip server_port host bytes_out bytes_in
1700000000.5 10.0.0.2 93.184.216.34 443 api.acme-tracker.example 1200 5400
> 1700000001.0 POST https://api.acme-tracker.example/v1/collect?uid=ACME-7F3K-92QX&v=2 {"ok":true}
1700000002.0 10.0.0.2 198.51.100.77 80 ingest.acme-metrics.example 300 90
> 1700000002.5 GET http://ingest.acme-metrics.example/px?x=1
"""

BROKEN_MODULE = '''\
class BadSniff:
    name = "bad-sniff"

    def sniff(self, head):
        raise ValueError("cannot make sense of it")

    def read(self, path, input_index, progress=None, **options):
        return iter(())


class Explodes:
    name = "explodes"

    def __init__(self, context):
        pass

    def detect(self, ex, layers):
        raise ZeroDivisionError("on purpose")
'''

BROKEN_ENTRY_POINTS = """\
[datareach.sources]
bad-sniff = broken_plugin_mod:BadSniff
ghost = no_such_module_anywhere:Source
har = broken_plugin_mod:BadSniff

[datareach.detectors]
explodes = broken_plugin_mod:Explodes
"""


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/data/plugin_pkg installed for real (built by setuptools, installed by pip) into a
    directory of its own. Built from a copy: setuptools writes build/ and *.egg-info next to
    the sources."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(PLUGIN_PKG, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert proc.returncode == 0, (
        "pip could not install tests/data/plugin_pkg offline (it builds with the venv's setuptools; "
        "setuptools < 70.1 also needs the wheel package):\n" + proc.stdout + proc.stderr)
    assert (site / "datareach_acme.py").is_file()
    assert any(site.glob("datareach_acme-0.1.0.dist-info/entry_points.txt"))
    return site


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'distribution' whose plugins are broken in every way, as bare installed metadata."""
    site = tmp_path_factory.mktemp("broken")
    (site / "broken_plugin_mod.py").write_text(BROKEN_MODULE, encoding="utf-8")
    info = site / "broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(BROKEN_ENTRY_POINTS, encoding="utf-8")
    return site


@pytest.fixture
def acme_log(tmp_path: Path) -> Path:
    path = tmp_path / "session.acme"
    path.write_text(ACME_LOG, encoding="utf-8")
    return path


def run_audit(*args: str | Path, sites: tuple[Path, ...] = (), tmp_path: Path,
              env: dict[str, str] | None = None) -> tuple[int, dict[str, Any] | None, str]:
    """``datareach audit ARGS --format json`` in a subprocess, with ``sites`` on PYTHONPATH:
    the exit status, the JSON document and standard error."""
    out = tmp_path / f"audit-{len(list(tmp_path.glob('audit-*.json')))}.json"
    paths = [str(s) for s in sites]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    full_env = {k: v for k, v in os.environ.items() if k != "DATAREACH_NO_PLUGINS"}
    full_env.update(PYTHONPATH=os.pathsep.join(paths), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "datareach", "audit", *map(str, args), "--no-progress", "--format", "json",
         "-o", str(out)],
        capture_output=True, text=True, timeout=300, env=full_env,
    )
    doc = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
    return proc.returncode, doc, proc.stderr


def _har_part(doc: dict[str, Any], hosts: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The destinations and findings of ``hosts``, without what depends on the input's index."""
    dests = sorted(({k: v for k, v in d.items() if k not in ("id", "inputs")} for d in doc["destinations"]
                    if d["host"] in hosts), key=lambda d: d["host"])
    finds = sorted(({k: v for k, v in f.items() if k not in ("id", "exchange", "uid")} for f in doc["findings"]
                    if f["host"] in hosts), key=lambda f: json.dumps(f, sort_keys=True))
    return dests, finds


# -- the built-ins --------------------------------------------------------------------------------


def test_builtins_are_declared_in_pyproject_as_in_the_code() -> None:
    """The entry-point tables of pyproject.toml list the built-ins the code uses, each naming
    the very object; the code's order is the order they are tried in."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
    code = {
        plugins.SOURCES: {s.name: s for s in BUILTIN_SOURCES},
        plugins.DETECTORS: dict(BUILTIN_DETECTORS),
        plugins.REPORTS: {f.name: f for f in BUILTIN_FORMATS},
    }
    for group, objects in code.items():
        declared = meta[group]
        assert list(declared) == list(objects) == plugins.builtin_names(group), group
        for name, value in declared.items():
            module, _, attr = value.partition(":")
            assert getattr(importlib.import_module(module), attr) is objects[name], (group, name)
    assert plugins.builtin_names(plugins.SOURCES) == ["pcap", "pcapng", "har", "mitmproxy"]


def test_builtin_inputs_and_help_read_no_plugin_metadata(tmp_path: Path) -> None:
    """Plugins are looked up only when needed: not by `datareach --help` or `audit --help`, not
    for a file a built-in source recognises (importlib.metadata alone costs ~15 ms)."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from datareach.cli import main\n"
        "main(['--help']); main(['audit', '--help'])\n"
        "assert 'importlib.metadata' not in sys.modules, 'help'\n"
        "from datareach.sources import detect_format, read_input\n"
        f"assert detect_format(Path({str(HAR)!r})) == 'har'\n"
        f"assert len(list(read_input(Path({str(HAR)!r}), 0))) > 0\n"
        "from datareach.report.formats import find\n"
        "find('json'); find('table')\n"
        "assert 'importlib.metadata' not in sys.modules, 'reading a built-in format'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# -- a real plugin, installed ---------------------------------------------------------------------


def test_plugin_source_and_detector_with_a_har_file(plugin_site: Path, acme_log: Path, tmp_path: Path) -> None:
    code, doc, err = run_audit(acme_log, HAR, sites=(plugin_site,), tmp_path=tmp_path)
    assert code == 0, err
    assert doc is not None
    assert [(i["format"], i["errors"]) for i in doc["inputs"]] == [("acme-flowlog", []), ("har", [])]
    assert doc["inputs"][0]["records_read"] == 4  # two connections, two requests

    # the plugin's connections are destinations like any other
    by_host = {d["host"]: d for d in doc["destinations"]}
    acme = by_host["api.acme-tracker.example"]
    assert (acme["bytes_out"], acme["bytes_in"], acme["ips"], acme["ports"], acme["inputs"]) == \
        (1200, 5400, ["93.184.216.34"], [443], [0])
    assert by_host["ingest.acme-metrics.example"]["bytes_out"] == 300

    # the plugin's detector found the made-up identifier where it was, once
    acme_findings = [f for f in doc["findings"] if f["data_type"] == "acme_user_id"]
    assert [(f["host"], f["location"], f["source"], f["value_redacted"]) for f in acme_findings] == \
        [("api.acme-tracker.example", "query uid", "pattern", "AC…QX (14 chars)")]
    assert acme_findings[0]["categories"] == ["gdpr:personal-data"]
    assert acme["data_types"] == ["acme_user_id"]
    # and like a built-in finding, it is redacted from the request's URL
    urls = [e["url"] for e in doc["exchanges"] if e["host"] == "api.acme-tracker.example"]
    assert urls == ["https://api.acme-tracker.example/v1/collect?uid=[redacted]&v=2"]
    assert "ACME-7F3K-92QX" not in json.dumps(doc)

    # the HAR file next to it gives what it gives without any plugin
    code, alone, err = run_audit(HAR, tmp_path=tmp_path, env={"DATAREACH_NO_PLUGINS": "1"})
    assert code == 0, err
    assert alone is not None
    har_hosts = {d["host"] for d in alone["destinations"]}
    assert har_hosts and not har_hosts & {"api.acme-tracker.example", "ingest.acme-metrics.example"}
    assert _har_part(doc, har_hosts) == _har_part(alone, har_hosts)
    assert set(by_host) == har_hosts | {"api.acme-tracker.example", "ingest.acme-metrics.example"}


def test_plugin_report_format(plugin_site: Path, acme_log: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_site),
                                                                    os.environ.get("PYTHONPATH")]))}
    env.pop("DATAREACH_NO_PLUGINS", None)
    proc = subprocess.run([sys.executable, "-m", "datareach", "audit", str(acme_log), "--format", "acme-csv"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "host,country,bytes_out,bytes_in"
    assert sorted(line.split(",")[0] for line in lines[1:]) == \
        ["api.acme-tracker.example", "ingest.acme-metrics.example"]
    # an unknown format is a usage error that lists the plugin's formats too
    proc = subprocess.run([sys.executable, "-m", "datareach", "audit", str(acme_log), "--format", "xml"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2
    assert "invalid choice: 'xml' (choose from table, json, md, html, sarif, junit, csv, acme-csv)" in proc.stderr


def test_a_plugin_source_that_raises_gives_an_input_error(plugin_site: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.acme"
    lines = ACME_LOG.splitlines()
    broken.write_text("\n".join([*lines[:4], "!boom", *lines[4:]]) + "\n", encoding="utf-8")
    code, doc, err = run_audit(broken, HAR, sites=(plugin_site,), tmp_path=tmp_path)
    assert code == 4  # an input error, not a crash
    assert "Traceback" not in err
    assert doc is not None
    first, har = doc["inputs"]
    assert first["format"] == "acme-flowlog"
    assert first["errors"] == [{
        "message": "source plugin 'acme-flowlog' (datareach-acme 0.1.0, datareach_acme:AcmeFlowLog) failed while "
                   "reading: RuntimeError: line 5: boom",
        "fatal": True,
    }]
    assert first["records_read"] == 2  # what came before the failure is kept
    assert "api.acme-tracker.example" in {d["host"] for d in doc["destinations"]}
    assert "ingest.acme-metrics.example" not in {d["host"] for d in doc["destinations"]}
    assert [f["data_type"] for f in doc["findings"] if f["host"] == "api.acme-tracker.example"] == ["acme_user_id"]
    assert (har["format"], har["errors"]) == ("har", [])
    assert f"datareach: {broken}: source plugin 'acme-flowlog'" in err


@pytest.mark.parametrize(("line", "problem"), [
    ("!bad-port", "Connection.client_port is str 'http', not int32"),
    ("!again", "two connections with the uid 'C0.0'"),
])
def test_a_plugin_record_that_does_not_fit_its_declaration_gives_an_input_error(
        plugin_site: Path, tmp_path: Path, line: str, problem: str) -> None:
    bad = tmp_path / "bad.acme"
    lines = ACME_LOG.splitlines()
    bad.write_text("\n".join([*lines[:4], line, *lines[4:]]) + "\n", encoding="utf-8")
    code, doc, err = run_audit(bad, HAR, sites=(plugin_site,), tmp_path=tmp_path)
    assert code == 4 and "Traceback" not in err and doc is not None
    first, har = doc["inputs"]
    assert first["errors"] == [{
        "message": "source plugin 'acme-flowlog' (datareach-acme 0.1.0, datareach_acme:AcmeFlowLog) yielded a "
                   f"bad record: {problem}",
        "fatal": True,
    }]
    assert first["records_read"] == 2  # what came before is kept
    assert (har["format"], har["errors"]) == ("har", [])


def test_broken_plugins_are_left_out_not_fatal(plugin_site: Path, broken_site: Path, acme_log: Path,
                                               tmp_path: Path) -> None:
    """A plugin that cannot be imported, a sniff that raises, a detector that raises on every
    request, a plugin taking a built-in's name: each is reported, and the audit goes on."""
    unknown = tmp_path / "notes.txt"
    unknown.write_text("nothing any source reads\n", encoding="utf-8")
    # a file no source reads is a wrong invocation (exit 2, before anything is read), and says why
    code, doc, err = run_audit(acme_log, HAR, unknown, sites=(broken_site, plugin_site), tmp_path=tmp_path)
    assert code == 2 and doc is None, err
    [line] = [x for x in err.splitlines() if "error:" in x]
    assert "unrecognised input format: not pcap, pcapng, HAR or a mitmproxy flow file, nor bad-sniff, " \
           "acme-flowlog (plugins)" in line
    assert ("source plugin 'bad-sniff' (broken-plugin 1.0, broken_plugin_mod:BadSniff) failed to check the "
            "file: ValueError: cannot make sense of it") in line
    code, doc, err = run_audit(acme_log, HAR, sites=(broken_site, plugin_site), tmp_path=tmp_path)
    assert code == 0, err
    assert "Traceback" not in err
    assert doc is not None
    acme, har = doc["inputs"]
    assert (acme["format"], acme["errors"], har["format"], har["errors"]) == ("acme-flowlog", [], "har", [])

    # each problem is on standard error, once
    assert err.count("datareach: warning: source plugin 'ghost' (broken-plugin 1.0, "
                     "no_such_module_anywhere:Source) cannot be loaded: ModuleNotFoundError") == 1
    assert err.count("datareach: warning: source plugin 'har' (broken-plugin 1.0, broken_plugin_mod:BadSniff) "
                     "is ignored: another source is called 'har'") == 1
    assert err.count("datareach: warning: detector plugin 'explodes' failed: ZeroDivisionError: on purpose") == 1

    # the detector that raises is named in every request it failed on; the others' findings stay
    assert all("detector plugin 'explodes' failed: ZeroDivisionError: on purpose" in e["decode_cuts"]
               for e in doc["exchanges"])
    assert [f["location"] for f in doc["findings"] if f["data_type"] == "acme_user_id"] == ["query uid"]


def test_plugins_can_be_turned_off(plugin_site: Path, acme_log: Path, tmp_path: Path) -> None:
    code, doc, err = run_audit(acme_log, sites=(plugin_site,), tmp_path=tmp_path, env={"DATAREACH_NO_PLUGINS": "1"})
    assert code == 2 and doc is None
    assert "unrecognised input format" in err and "acme-flowlog" not in err


# -- the registry in this process -----------------------------------------------------------------


@pytest.fixture
def on_path(plugin_site: Path, broken_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("DATAREACH_NO_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.syspath_prepend(str(broken_site))
    plugins.clear_caches()
    yield
    plugins.clear_caches()


@pytest.mark.usefixtures("on_path")
def test_installed_lists_plugins_in_the_order_they_are_tried() -> None:
    found = [(p.group, p.name, p.dist, p.problem is None) for p in plugins.installed()]
    assert found == [
        ("datareach.sources", "bad-sniff", "broken-plugin", True),
        ("datareach.sources", "ghost", "broken-plugin", False),
        ("datareach.sources", "har", "broken-plugin", False),
        ("datareach.sources", "acme-flowlog", "datareach-acme", True),
        ("datareach.detectors", "explodes", "broken-plugin", True),
        ("datareach.detectors", "acme-user-id", "datareach-acme", True),
        ("datareach.reports", "acme-csv", "datareach-acme", True),
    ]


@pytest.mark.usefixtures("on_path")
def test_the_api_uses_the_plugins(acme_log: Path) -> None:
    import datareach

    result = datareach.audit([acme_log])
    doc = result.to_dict()
    assert doc["inputs"][0]["format"] == "acme-flowlog"
    assert {d["host"] for d in doc["destinations"]} == {"api.acme-tracker.example", "ingest.acme-metrics.example"}
    assert [f["data_type"] for f in doc["findings"]] == ["acme_user_id"]


@pytest.mark.usefixtures("on_path")
def test_the_plugins_follow_the_protocols() -> None:
    from datareach.detect.detector import DetectContext
    from datareach.detect.types import Limits

    module = importlib.import_module("datareach_acme")
    source: plugins.Source = module.AcmeFlowLog()
    assert source.sniff(ACME_LOG.encode()) and not source.sniff(b"#acme-flowlog v2\n")
    detector: plugins.RequestDetector = module.AcmeUserIds(DetectContext(None, Limits()))
    report: plugins.ReportFormat = module.DestinationsCsv()
    assert (source.name, detector.name, report.name) == ("acme-flowlog", "acme-user-id", "acme-csv")


def test_a_plugin_connection_table_is_checked_like_its_rows() -> None:
    """A source may give its connections as an Arrow table (as the capture readers do): its
    schema must be Connection's, and its rows fit the declaration like row tuples."""
    import pyarrow as pa

    from datareach.schema import Connection, ConnectionBatch, arrow_schema, rows_table
    from datareach.sources.registry import _record_problem

    row = ("C0.0", "tcp", "10.0.0.2", 40000, "192.0.2.1", 443, 1.0, 2.0, 1, 10, 1, 20, "a.example", None, None,
           False, "tls", ("h2",), None, 0, 1, None)
    good = rows_table(Connection, [row])
    assert good.schema.equals(arrow_schema(Connection))
    assert _record_problem(ConnectionBatch(table=good), set()) is None
    assert ConnectionBatch(table=good).connections() == [Connection(*row)]
    assert _record_problem(ConnectionBatch(table=pa.table({"uid": ["C0.0"]})), set()) == (
        "a ConnectionBatch's table must be an Arrow table of arrow_schema(Connection)")
    assert _record_problem(ConnectionBatch(table=pa.concat_tables([good, good])), set()) == (
        "two connections with the uid 'C0.0'")
