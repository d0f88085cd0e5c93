"""Owner is not host: golden cases, end to end through a capture and every report format.

Who controls a service and who runs the network or platform it sits on are different facts.
An app's own back end on AWS has an unknown owner and Amazon as its host; a CloudFront tenant
likewise; a Yandex host served through CloudFront stays Yandex's, with Amazon as its host. The
report says "owner unknown, hosted by ..." in every format, and the host basis of reach carries
the host's states, never the owner basis.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

import datareach
from datareach.enrich.ownership import OwnershipResolver
from datareach.kb import knowledge_base
from datareach.report.formats import find
from datareach.testing.builders import CLIENT, client_hello, dns_query, dns_response, write_pcap
from datareach.testing.capture import TcpSession, UdpFlow

T0 = 1_772_000_000.0  # 2026-02-25
#: AWS addresses (us-east-1 EC2 and a CloudFront edge) in AS16509
AWS_EC2 = "52.94.236.248"
CLOUDFRONT = "13.224.103.12"


def bases(reach: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(r["jurisdiction"], r["basis"]) for r in reach}


@pytest.fixture(scope="module")
def resolver() -> OwnershipResolver:
    return OwnershipResolver(knowledge_base())


def _tls(ip: str, port: int, name: str, t: float) -> list[Any]:
    s = TcpSession(CLIENT, port, ip, 443, start=t)
    return s.handshake() + s.client_send(client_hello(name)) + s.close()


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pkts: list[Any] = []
    u = UdpFlow(CLIENT, 40000, "8.8.8.8", 53, start=T0)
    pkts += u.exchange(dns_query("api.weatherly-app.example"), dns_response("api.weatherly-app.example.", [
        ("api.weatherly-app.example.", "A", AWS_EC2)]))
    u2 = UdpFlow(CLIENT, 40001, "8.8.8.8", 53, start=T0 + 0.5)
    pkts += u2.exchange(dns_query("mc.yandex.ru"), dns_response("mc.yandex.ru.", [
        ("mc.yandex.ru.", "CNAME", "d2n0rq8d9qv6qq.cloudfront.net."),
        ("d2n0rq8d9qv6qq.cloudfront.net.", "A", CLOUDFRONT)]))
    pkts += _tls(AWS_EC2, 41000, "api.weatherly-app.example", T0 + 1)
    pkts += _tls(CLOUDFRONT, 41001, "d3k8x0qj2abcd.cloudfront.net", T0 + 2)
    pkts += _tls(CLOUDFRONT, 41002, "mc.yandex.ru", T0 + 3)
    path = write_pcap(tmp_path_factory.mktemp("owner-not-host") / "aws.pcap", pkts)
    return datareach.audit([path], policies=["eu-gdpr-transfers"]).to_dict()


def _dest(doc: dict[str, Any], host: str) -> dict[str, Any]:
    return next(d for d in doc["destinations"] if d["host"] == host)


def test_an_apps_own_back_end_on_aws_has_no_owner_and_amazon_as_host(doc: dict[str, Any]) -> None:
    d = _dest(doc, "api.weatherly-app.example")
    assert d["owner"] is None
    [aws] = d["hosting"]
    assert (aws["entity"], aws["basis"]) == ("aws", "as")
    assert aws["ultimate_parent"]["entity"] == "amazon"
    assert ("US", "host") in bases(d["reach"])
    assert not any(r["basis"] == "owner" for r in d["reach"])


def test_a_cloudfront_tenant_is_hosted_by_amazon_not_owned(doc: dict[str, Any]) -> None:
    d = _dest(doc, "d3k8x0qj2abcd.cloudfront.net")
    assert d["owner"] is None
    platform = d["hosting"][0]
    assert (platform["entity"], platform["basis"], platform["matched"]) == ("aws", "platform", "cloudfront.net")
    assert platform["platform"] == "Amazon CloudFront"
    assert not any(r["basis"] == "owner" for r in d["reach"])


def test_a_yandex_host_on_cloudfront_stays_yandexs_with_amazon_as_host(doc: dict[str, Any]) -> None:
    d = _dest(doc, "mc.yandex.ru")
    assert d["owner"]["entity"].startswith("yandex") and d["owner"]["basis"] == "domain"
    assert ("RU", "owner") in bases(d["reach"]) and ("US", "host") in bases(d["reach"])
    assert ("US", "owner") not in bases(d["reach"])
    hosts = {(h["entity"], h["basis"]) for h in d["hosting"]}
    assert ("aws", "platform") in hosts  # the CNAME to d2n0rq8d9qv6qq.cloudfront.net


@pytest.mark.parametrize("fmt", ["table", "md", "html", "csv", "sarif"])
def test_every_format_says_owner_unknown_hosted_by(doc: dict[str, Any], fmt: str) -> None:
    if fmt == "table":  # wide enough that the owner cell is one line
        from datareach.report.table import render_table

        text = render_table(doc, width=400)
    else:
        text = find(fmt).render(doc)
    if fmt == "sarif":  # the violations' messages: this audit has none, the properties are checked in test_ci_outputs
        return
    if fmt == "md":
        text = text.replace("\\", "")
    if fmt == "html":  # the destinations table is drawn by the page's script (tests/test_report_browser.py);
        # its data and its wording are in the file
        assert '"hosting":[{"entity":"aws"' in text.replace(" ", "") and "owner unknown, hosted by " in text
        return
    if fmt == "csv":  # the owner's columns stay empty; who hosts it has its own column
        rows = {r["host"]: r for r in csv.DictReader(io.StringIO(text))}
        assert rows["api.weatherly-app.example"]["owner"] == ""
        assert rows["api.weatherly-app.example"]["hosted_by"] == "Amazon Web Services, Inc. (US; network)"
        return
    assert "owner unknown, hosted by Amazon Web Services, Inc. (US; network)" in text
    assert "owner unknown, hosted by Amazon Web Services, Inc. (US; shared platform Amazon CloudFront)" in text


def test_explain_gives_the_same_split_for_names_and_addresses(resolver: OwnershipResolver) -> None:
    from datareach.explainer import explain_iter

    docs = {d["host"]: d for d in explain_iter(
        ["https://d3k8x0qj2abcd.cloudfront.net/v1/e?x=1", "myapp.herokuapp.com", AWS_EC2, "mc.yandex.ru"],
        resolver, "2026-12-07")}
    assert docs["d3k8x0qj2abcd.cloudfront.net"]["owner"] is None
    assert docs["d3k8x0qj2abcd.cloudfront.net"]["hosting"][0]["platform"] == "Amazon CloudFront"
    assert docs["myapp.herokuapp.com"]["owner"] is None
    assert docs["myapp.herokuapp.com"]["hosting"][0]["basis"] == "platform"
    assert docs[AWS_EC2]["owner"] is None and docs[AWS_EC2]["hosting"][0]["entity"] == "aws"
    assert docs["mc.yandex.ru"]["owner"] is not None


def test_the_knowledge_base_can_still_name_a_tenants_owner(tmp_path: Path, resolver: OwnershipResolver) -> None:
    """A domain more specific than the platform's suffix names the tenant's owner (the platform
    stays its host)."""
    kb = resolver.kb
    plat = kb.platform_of("x.appspot.com")
    assert plat is not None and plat[0] == "appspot.com"
    assert resolver.attribute("x.appspot.com") is None
    # the operator's own name is its own (the suffix itself is not a tenant)
    assert resolver.attribute("appspot.com") is not None
    # a suffix the list names but whose names are the operator's own services
    assert kb.platform_of("fcm.googleapis.com") is None
    assert resolver.attribute("fcm.googleapis.com") is not None


def test_a_tenant_name_that_embeds_its_own_host_name_is_evidence_of_its_owner(resolver: OwnershipResolver) -> None:
    """Cloudflare, Akamai and S3 name a customer's service after the customer's own host name
    (``api.ring.com.cdn.cloudflare.net``, seen in Mon(IoT)r's captures): the embedded name is
    evidence about the service; the platform stays its host."""
    owner, hosting, _reach = resolver.resolve_all("api.ring.com.cdn.cloudflare.net", "2026-12-07")
    assert owner is not None and owner["matched"] == "ring.com"
    assert owner["evidence"] == ["api.ring.com.cdn.cloudflare.net", "api.ring.com"]
    assert owner["ultimate_parent"]["entity"] == "amazon"
    assert [(h["entity"], h["basis"]) for h in hosting] == [("cloudflare", "platform")]
    # a random distribution name embeds nothing
    assert resolver.attribute("d3k8x0qj2abcd.cloudfront.net") is None
    # nor does a bare label in front of the suffix
    assert resolver.attribute("com.cdn.cloudflare.net") is None
