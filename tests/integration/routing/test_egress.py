"""Egress as enterprises run it, over real sockets on loopback: upstream calls through a real
forward proxy (tinyproxy: CONNECT tunnels for https, absolute-form requests for http), upstreams
verified against a configured CA bundle (a clear 502 against an unknown CA), and a client
certificate per deployment for upstreams that demand mTLS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rolegate.authn.fetch import http_fetcher
from rolegate.config.load import ConfigError
from rolegate.config.model import EgressConfig, Settings
from rolegate.providers.http import HttpClient
from tests.integration.routing.conftest import deployment
from tests.support.egress import TestCa, Tinyproxy, TlsUpstream, tinyproxy_or_skip
from tests.support.faulty import FaultyUpstream
from tests.support.servers import LocalIdp

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    directory = tmp_path / "proxy"
    directory.mkdir()
    started = Tinyproxy(tinyproxy_or_skip(), directory)
    yield started
    started.stop()


@pytest.fixture
async def tls_upstream(ca: TestCa) -> AsyncIterator[Callable[..., Any]]:
    started: list[FaultyUpstream] = []

    async def start(**options: Any) -> TlsUpstream:
        server = await TlsUpstream(ca, **options).start()
        started.append(server)
        return server
    yield start
    for server in started:
        await server.stop()


@pytest.fixture
def gateway(routing_settings: Callable[..., Settings], client_for: Callable[..., Any],
            auth_for: Callable[..., dict[str, str]]) -> Callable[..., Any]:
    """`await gateway(upstream, egress={...}, **deployment_keys)` posts CHAT through a gateway
    whose model gpt-4o is that upstream."""
    async def call(upstream: FaultyUpstream, *, egress: dict[str, Any] | None = None,
                   times: int = 1, **extra: Any) -> list[httpx.Response]:
        settings = routing_settings([{"name": "gpt-4o", **deployment(upstream, **extra)}],
                                    retries={"max_attempts": 1})
        if egress is not None:
            settings = settings.model_copy(update={
                "egress": settings.egress.model_validate(egress)})
        client = client_for(settings)
        return [await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
                for _ in range(times)]
    return call


async def test_https_upstream_is_reached_through_the_proxys_connect_tunnel_and_verified_by_the_ca(
        gateway, tls_upstream, proxy, ca):
    upstream = await tls_upstream()
    await proxy.ready()

    replies = await gateway(upstream, times=3, egress={
        "https_proxy": proxy.url, "ca_bundle_file": str(ca.cert_file)})

    assert [reply.status_code for reply in replies] == [200, 200, 200]
    assert replies[0].json()["choices"][0]["message"]["content"] == "from tls"
    assert len(upstream.requests) == 3
    # One tunnel for three requests: CONNECT and TLS cost at connect time only.
    assert len(proxy.lines(f"CONNECT 127.0.0.1:{upstream.port} ")) == 1


async def test_an_upstream_signed_by_an_unknown_ca_is_a_502_that_says_so(
        gateway, tls_upstream, proxy, tmp_path):
    upstream = await tls_upstream()
    await proxy.ready()
    other_ca = TestCa(tmp_path, name="some other CA")

    (reply,) = await gateway(upstream, egress={
        "https_proxy": proxy.url, "ca_bundle_file": str(other_ca.cert_file)})

    assert reply.status_code == 502
    error = reply.json()["error"]
    assert "TLS certificate was not accepted" in error["message"]
    assert "certificate" in error["message"]
    assert len(proxy.lines(f"CONNECT 127.0.0.1:{upstream.port} ")) == 1
    assert upstream.requests == []


async def test_the_systems_trust_store_does_not_vouch_for_a_private_ca(gateway, tls_upstream):
    upstream = await tls_upstream()

    (reply,) = await gateway(upstream)

    assert reply.status_code == 502
    assert "TLS certificate was not accepted" in reply.json()["error"]["message"]


async def test_a_deployment_presents_its_client_certificate_to_an_upstream_that_demands_one(
        gateway, tls_upstream, proxy, ca):
    upstream = await tls_upstream(client_ca=ca)
    cert, key = ca.issue("rolegate-gateway", is_server=False)
    await proxy.ready()
    egress = {"https_proxy": proxy.url, "ca_bundle_file": str(ca.cert_file)}

    (without,) = await gateway(upstream, egress=egress)
    (with_cert,) = await gateway(upstream, egress=egress, client_cert_file=str(cert),
                                 client_key_file=str(key))

    assert without.status_code == 502
    assert with_cert.status_code == 200
    assert upstream.client_subjects == ["rolegate-gateway"]


async def test_a_deployments_own_proxy_and_ca_override_the_egress_section(
        gateway, tls_upstream, proxy, ca):
    upstream = await tls_upstream()
    await proxy.ready()

    (reply,) = await gateway(upstream, egress={"https_proxy": "http://127.0.0.1:9"},
                             proxy=proxy.url, ca_bundle_file=str(ca.cert_file))

    assert reply.status_code == 200
    assert len(proxy.lines(f"CONNECT 127.0.0.1:{upstream.port} ")) == 1


async def test_no_proxy_and_proxy_direct_send_a_deployment_straight_to_its_upstream(
        gateway, tls_upstream, proxy, ca):
    upstream = await tls_upstream()
    await proxy.ready()
    egress = {"https_proxy": proxy.url, "ca_bundle_file": str(ca.cert_file)}

    (bypassed,) = await gateway(upstream, egress={**egress, "no_proxy": "localhost,127.0.0.1"})
    (direct,) = await gateway(upstream, egress=egress, proxy="direct")

    assert (bypassed.status_code, direct.status_code) == (200, 200)
    assert proxy.lines("CONNECT 127.0.0.1") == []


async def test_a_plain_http_upstream_is_reached_through_the_proxy_by_its_absolute_url(
        gateway, upstreams, proxy):
    (upstream,) = await upstreams("plain")
    await proxy.ready()

    (reply,) = await gateway(upstream, egress={"http_proxy": proxy.url})

    assert reply.status_code == 200
    assert upstream.requests[0].path == "/v1/chat/completions"
    assert len(proxy.lines(f"POST http://127.0.0.1:{upstream.port}/v1/chat/completions ")) == 1


async def test_a_proxy_that_refuses_the_tunnel_is_a_502_naming_the_proxy_and_status(
        gateway, tls_upstream, tmp_path, ca):
    directory = tmp_path / "strict"
    directory.mkdir()
    strict = Tinyproxy(tinyproxy_or_skip(), directory, extra="ConnectPort 443\n")
    try:
        await strict.ready()
        upstream = await tls_upstream()
        (reply,) = await gateway(upstream, egress={"https_proxy": strict.url,
                                                   "ca_bundle_file": str(ca.cert_file)})
    finally:
        strict.stop()

    assert reply.status_code == 502
    message = reply.json()["error"]["message"]
    assert f"proxy 127.0.0.1:{strict.port} refused the tunnel" in message
    assert "status 403" in message


async def test_proxy_credentials_in_the_proxy_url_are_sent_as_proxy_authorization(
        gateway, tls_upstream, tmp_path, ca):
    directory = tmp_path / "authenticating"
    directory.mkdir()
    guarded = Tinyproxy(tinyproxy_or_skip(), directory, extra="BasicAuth gateway s3cret\n")
    try:
        await guarded.ready()
        upstream = await tls_upstream()
        trusted = {"ca_bundle_file": str(ca.cert_file)}
        (anonymous,) = await gateway(upstream, egress={**trusted, "https_proxy": guarded.url})
        (signed_in,) = await gateway(upstream, egress={
            **trusted, "https_proxy": f"http://gateway:s3cret@127.0.0.1:{guarded.port}"})
    finally:
        guarded.stop()

    assert anonymous.status_code == 502
    assert "status 407" in anonymous.json()["error"]["message"]
    assert signed_in.status_code == 200
    assert "s3cret" not in anonymous.text


async def test_a_ca_bundle_that_cannot_be_read_stops_the_gateway_at_start_up(
        routing_settings, client_for, tls_upstream, tmp_path):
    upstream = await tls_upstream()
    settings = routing_settings([{"name": "gpt-4o", **deployment(
        upstream, ca_bundle_file=str(tmp_path / "missing.pem"))}])

    with pytest.raises(ConfigError, match="cannot load its TLS files"):
        client_for(settings)
    with pytest.raises(ConfigError, match=r"egress\.ca_bundle_file: cannot load it"):
        HttpClient(EgressConfig(ca_bundle_file=str(tmp_path / "missing.pem")))


async def test_identity_provider_documents_are_fetched_through_the_proxy(proxy, rsa_key):
    await proxy.ready()
    client = HttpClient(EgressConfig(http_proxy=proxy.url))
    try:
        async with LocalIdp(rsa_key) as idp:
            document = json.loads(await http_fetcher(client)(idp.jwks_url))
    finally:
        await client.close()

    assert document["keys"][0]["kid"] == rsa_key.kid
    assert len(proxy.lines(f"GET {idp.jwks_url} ")) == 1


async def test_documents_over_tls_go_through_the_tunnel_and_trust_the_egress_ca_bundle(
        proxy, tls_upstream, ca):
    upstream = await tls_upstream()
    await proxy.ready()
    client = HttpClient(EgressConfig(https_proxy=proxy.url, ca_bundle_file=str(ca.cert_file)))
    try:
        document = json.loads(await http_fetcher(client)(f"{upstream.url}/keys"))
    finally:
        await client.close()
        # aiohttp closes a tunnel's TLS transport first and the socket under it only after
        # the TLS shutdown, a few loop turns later: let that finish before the loop ends.
        await asyncio.sleep(0.1)

    assert document["object"] == "chat.completion"
    assert len(proxy.lines(f"CONNECT 127.0.0.1:{upstream.port} ")) == 1
