"""What rolegate presents to an MCP server: its own client credentials token, or a token acting
for the caller obtained by token exchange (RFC 8693). The caller's token goes to the token
endpoint only; the server never sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from rolegate.config.load import ConfigError
from tests.support.mcp import INIT, Served, Session, Upstream, config, token
from tests.support.token_endpoint import ACCESS_TOKEN, EXCHANGE, TokenEndpoint

ACCEPT = "application/json, text/event-stream"


@pytest.fixture
async def token_endpoint() -> AsyncIterator[tuple[TokenEndpoint, str]]:
    endpoint = TokenEndpoint()
    async with Served(endpoint) as url:
        yield endpoint, f"{url}/token"


def with_auth(url: str, auth: dict[str, Any]) -> dict[str, Any]:
    settings = config(url)
    server = settings["mcp"]["servers"][0]
    del server["headers"]
    server["auth"] = {"client_id": "rolegate", "client_secret": "s3cret", **auth}
    return settings


def authorizations(recorded: Upstream) -> list[str]:
    return [headers.get("authorization", "") for _, headers in recorded.seen]


async def test_the_server_sees_a_token_exchanged_for_the_caller_never_the_callers_own(
        mcp_gateway_for, dev_issuer, mcp_upstream, token_endpoint):
    recorded, url = mcp_upstream
    endpoint, token_url = token_endpoint
    gateway = mcp_gateway_for(with_auth(url, {"type": "token_exchange", "token_url": token_url,
                                           "scope": "issues.read"}))
    ana_token, bob_token = token(dev_issuer), token(dev_issuer, subject="bob")
    ana = await Session(gateway, ana_token).open()
    await ana.call("tools/call", {"name": "search_code", "arguments": {"query": "q"}})
    bob = await Session(gateway, bob_token).open()
    reply = await bob.call("tools/call", {"name": "search_code", "arguments": {"query": "q"}})

    assert reply["result"]["content"][0]["text"] == "code for q"
    assert [(form["grant_type"], form["subject_token"], form["subject_token_type"],
             form["resource"], form["scope"]) for form in endpoint.forms] == [
        (EXCHANGE, ana_token, ACCESS_TOKEN, url, "issues.read"),
        (EXCHANGE, bob_token, ACCESS_TOKEN, url, "issues.read")]  # one exchange per caller
    assert set(authorizations(recorded)) == {"Bearer acting-1", "Bearer acting-2"}
    assert authorizations(recorded).count("Bearer acting-1") == 3  # ana's three requests
    seen = str(recorded.seen)
    assert ana_token not in seen and bob_token not in seen
    assert "s3cret" not in seen


async def test_the_server_sees_rolegates_own_client_credentials_token(
        mcp_gateway_for, dev_issuer, mcp_upstream, token_endpoint):
    recorded, url = mcp_upstream
    endpoint, token_url = token_endpoint
    gateway = mcp_gateway_for(with_auth(url, {"type": "client_credentials",
                                           "token_url": token_url}))
    caller = token(dev_issuer)
    session = await Session(gateway, caller).open()
    await session.call("tools/list")

    assert [form["grant_type"] for form in endpoint.forms] == ["client_credentials"]
    assert set(authorizations(recorded)) == {"Bearer own-1"}
    assert caller not in str(recorded.seen)
    assert all(caller not in str(form) for form in endpoint.forms)


async def test_a_refused_exchange_is_a_502_and_nothing_reaches_the_server(
        mcp_gateway_for, dev_issuer, mcp_upstream, token_endpoint):
    recorded, url = mcp_upstream
    _, token_url = token_endpoint
    gateway = mcp_gateway_for(with_auth(url, {"type": "token_exchange", "token_url": token_url,
                                           "client_secret": "wrong"}))

    response = await Session(gateway, token(dev_issuer)).post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})

    assert (response.status_code, response.json()["error"]["code"]) \
        == (502, "upstream_auth_failed")
    assert recorded.seen == []


def test_a_server_with_both_a_static_authorization_and_auth_is_refused(settings_from):
    settings = with_auth("http://127.0.0.1:1/mcp", {"type": "client_credentials",
                                                     "token_url": "http://127.0.0.1:1/t"})
    settings["mcp"]["servers"][0]["headers"] = {"Authorization": "Bearer x"}

    with pytest.raises(ConfigError, match=r"headers\.Authorization or auth"):
        settings_from(settings)


def exchanging(url: str, token_url: str) -> dict[str, Any]:
    """A server reached by token exchange."""
    return with_auth(url, {"type": "token_exchange", "token_url": token_url})


async def test_a_jwt_sent_as_x_api_key_is_the_one_exchanged(
        gateway_for, settings_from, dev_issuer, mcp_upstream, token_endpoint):
    """The exchange reads the credential the caller was authenticated with, from whichever
    header carried it."""
    recorded, url = mcp_upstream
    endpoint, token_url = token_endpoint
    gateway = await gateway_for(settings_from(exchanging(url, token_url)))
    caller = token(dev_issuer)

    response = await gateway.post("/mcp/forge", json={"jsonrpc": "2.0", "id": 1,
                                                      "method": "initialize", "params": INIT},
                                  headers={"x-api-key": caller, "accept": ACCEPT})

    assert response.status_code == 200, response.text
    assert [form["subject_token"] for form in endpoint.forms] == [caller]
    assert authorizations(recorded) == ["Bearer acting-1"]

