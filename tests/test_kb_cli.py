"""``datareach explain`` and ``datareach kb``: the command line over the knowledge base."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

import datareach
from datareach.cli import main
from datareach.kb import reset


@pytest.fixture(autouse=True)
def user_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATAREACH_CACHE_DIR", str(tmp_path / "cache"))
    reset()
    yield
    reset()


def run(argv: list[str], capsys, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_explain_json_has_the_shape_of_a_destination(capsys, tmp_path):
    out_file = tmp_path / "out.json"
    code, _, _ = run(["explain", "log.byteoversea.com", "nothing-known.example", "--json", "--at", "2026-03-01",
                      "-o", str(out_file)], capsys)
    assert code == 0
    doc = json.loads(out_file.read_text())
    assert doc["date"] == "2026-03-01"
    first, unknown = doc["hosts"]
    assert first["host"] == "log.byteoversea.com" and first["registrable_domain"] == "byteoversea.com"
    assert first["owner"]["ultimate_parent"]["entity"] == "bytedance"
    assert {"entity", "name", "ultimate_parent", "chain", "hq_country", "basis"} <= set(first["owner"])
    assert all({"jurisdiction", "basis", "path", "laws"} <= set(r) for r in first["reach"])
    assert unknown["owner"] is None and unknown["reach"] == []
    cited = {law["id"] for r in first["reach"] for law in r["laws"]}
    assert cited and cited <= set(doc["laws"])
    # the Python API gives the same entries
    api = datareach.explain(["log.byteoversea.com"], at="2026-03-01")
    assert json.loads(json.dumps(api[0])) == first


def test_explain_reads_hosts_from_standard_input(capsys, monkeypatch):
    hosts = "graph.facebook.com\n\n# a comment\nMC.Yandex.RU.\n"
    code, out, _ = run(["explain", "-", "--format", "jsonl"], capsys, hosts, monkeypatch)
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["host"] for x in lines] == ["graph.facebook.com", "mc.yandex.ru"]
    assert lines[1]["owner"]["hq_country"] == "RU"


def test_explain_table_and_bad_arguments(capsys):
    code, out, _ = run(["explain", "sdk.appsflyer.com"], capsys)
    assert code == 0 and "AppsFlyer" in out and "IL (owner)" in out
    assert run(["explain", "x.example", "--at", "yesterday"], capsys)[0] == 2
    assert run(["explain", "x.example", "--control-threshold", "0"], capsys)[0] == 2


def test_kb_status_and_check(capsys):
    code, out, _ = run(["kb", "status"], capsys)
    assert code == 0 and "curated knowledge base" in out and "imported datasets" in out and "none" in out
    code, out, _ = run(["kb", "status", "--json"], capsys)
    doc = json.loads(out)
    assert doc["counts"]["entities"] >= 500 and doc["imports"] == []
    code, out, _ = run(["kb", "check"], capsys)
    assert code == 0 and "OK" in out


def test_an_imported_domain_list_attributes_new_domains_but_curated_records_win(capsys, tmp_path):
    lst = tmp_path / "vendor.txt"
    lst.write_text("# our analytics vendor\nacme-analytics.example\nfacebook.com\n")
    code, out, err = run(["kb", "import", "domains", str(lst), "--entity", "Acme Analytics", "--country", "DE",
                          "--licence-note", "our own list"], capsys)
    assert code == 0, err
    code, out, _ = run(["explain", "t.acme-analytics.example", "graph.facebook.com", "--format", "jsonl"], capsys)
    acme, fb = (json.loads(x) for x in out.splitlines())
    assert acme["owner"]["name"] == "Acme Analytics" and acme["owner"]["origin"].startswith("import:")
    assert [(r["jurisdiction"], r["basis"]) for r in acme["reach"]] == [("DE", "owner")]
    assert fb["owner"]["ultimate_parent"]["entity"] == "meta"  # the curated owner wins
    code, out, _ = run(["kb", "status", "--json"], capsys)
    imp = json.loads(out)["imports"][0]
    assert imp["kind"] == "domain-list" and imp["licence_note"] == "our own list"
    assert imp["domains_lost_to_curated"] == 1
    # with --prefer the imported list wins
    run(["kb", "remove", imp["id"]], capsys)
    assert run(["kb", "import", "domains", str(lst), "--entity", "Acme Analytics", "--prefer"], capsys)[0] == 0
    code, out, _ = run(["explain", "graph.facebook.com", "--format", "jsonl"], capsys)
    assert json.loads(out)["owner"]["name"] == "Acme Analytics"


def test_an_importer_given_the_wrong_file_says_so_and_changes_nothing(capsys, tmp_path):
    har = tmp_path / "capture.har"
    har.write_text(json.dumps({"log": {"entries": []}}))
    code, _, err = run(["kb", "import", "disconnect", str(har)], capsys)
    assert code == 2 and "nothing was changed" in err
    assert not (tmp_path / "data" / "imports").exists() or not list((tmp_path / "data" / "imports").iterdir())


def test_explain_in_a_subprocess_streams_many_hosts(tmp_path):
    hosts = "".join(f"h{i}.tiktokv.com\n" for i in range(3000))
    env_cmd = [sys.executable, "-m", "datareach", "explain", "-", "--format", "jsonl"]
    p = subprocess.run(env_cmd, input=hosts.encode(), capture_output=True, check=True,
                       env={**__import__("os").environ, "DATAREACH_CACHE_DIR": str(tmp_path / "c")})
    lines = p.stdout.splitlines()
    assert len(lines) == 3000 and json.loads(lines[-1])["owner"]["entity"] == "tiktok-pte"


def test_the_fast_json_lines_are_the_same_bytes_as_the_entries():
    import orjson

    from datareach.enrich.ownership import OwnershipResolver
    from datareach.explainer import explain_iter, explain_json_lines
    from datareach.kb import knowledge_base

    hosts = ["a.tiktokv.com", "b.tiktokv.com", "graph.facebook.com", "unknown.example", "10.0.0.1", "Temu.com."]
    resolver = OwnershipResolver(knowledge_base())
    slow = [orjson.dumps(d) for d in explain_iter(hosts, resolver, "2026-03-01")]
    fast = list(explain_json_lines(hosts, OwnershipResolver(knowledge_base()), "2026-03-01"))
    assert fast == slow


def test_an_imported_asn_database_adds_as_numbers_to_an_audit(capsys, tmp_path):
    """An imported ASN .mmdb gives the AS numbers (and keeps the shipped countries), and the
    network's operator is then found by its number."""
    from datareach.testing.builders import CLIENT, write_pcap
    from datareach.testing.capture import TcpSession
    from datareach.testing.mmdb import write_mmdb

    mmdb = write_mmdb(tmp_path / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", {
        "47.88.0.0/16": {"autonomous_system_number": 45102, "autonomous_system_organization": "ALIBABA-CN-NET"},
    })
    assert run(["kb", "import", "mmdb", str(mmdb)], capsys)[0] == 0
    s = TcpSession(CLIENT, 42000, "47.88.1.1", 8883, start=1_772_000_000.0)
    pcap = write_pcap(tmp_path / "one.pcap", s.handshake() + s.client_send(b"\x10\x00") + s.close())
    d = datareach.audit([pcap]).to_dict()["destinations"][0]
    assert d["asn"] == 45102 and d["servers"][0]["asn"] == 45102
    assert d["country"] == "US"  # from the shipped data: the import adds, it does not replace
    # the network's operator is its host, not its owner (owner is not host)
    assert d["owner"] is None
    assert [(h["entity"], h["basis"], h["matched"]) for h in d["hosting"]] == [("alibaba-cloud", "as", "AS45102")]
