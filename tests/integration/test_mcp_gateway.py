"""The MCP gateway with the official `mcp` SDK on both sides: an SDK server (three tools, a
resource, a prompt) on loopback behind rolegate, and raw JSON-RPC or the SDK client through it.
Every denied call is checked not to have reached the server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from rolegate.app import build_app
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.providers.http import HttpClient
from tests.integration.test_identity_usage import dimension_rows
from tests.integration.test_usage_accounting import _settled_rows, usage_rows
from tests.support.gateways import bearer
from tests.support.mcp import (
    BASE, INIT, METADATA, RESOURCE, Served, Session, Upstream, config, token,
)


@pytest.fixture
def upstream(mcp_upstream: tuple[Upstream, str]) -> tuple[Upstream, str]:
    return mcp_upstream


@pytest.fixture
async def gateway(upstream: tuple[Upstream, str], settings_from: Callable[..., Any],
                  dev_issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    http = HttpClient()
    app = build_app(settings_from(config(upstream[1])), dev_issuer=dev_issuer, http=http)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client
    await http.close()


async def test_a_caller_without_a_token_is_told_where_the_metadata_is(gateway):
    response = await gateway.post("/mcp/forge", json={"jsonrpc": "2.0", "id": 1,
                                                      "method": "tools/list"})

    assert response.status_code == 401
    assert f'resource_metadata="{METADATA}"' in response.headers["www-authenticate"]
    metadata = (await gateway.get("/.well-known/oauth-protected-resource/mcp/forge")).json()
    assert metadata["resource"] == RESOURCE
    assert metadata["authorization_servers"] == [f"{BASE}/dev"]
    assert metadata["scopes_supported"] == ["forge.admin"]


async def test_a_token_for_another_audience_is_refused_on_the_server_and_vice_versa(
        gateway, dev_issuer, upstream):
    recorded, _ = upstream
    llm_token = dev_issuer.mint(subject="ana", roles=("searcher", "chatter"))
    response = await gateway.post("/mcp/forge", headers=bearer(llm_token),
                                  json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_audience"
    assert f'resource_metadata="{METADATA}"' in response.headers["www-authenticate"]

    mcp_token = token(dev_issuer, roles=("chatter",))
    response = await gateway.get("/v1/models", headers=bearer(mcp_token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_audience"
    assert recorded.seen == []


async def test_a_caller_granted_no_tool_of_the_server_gets_403_with_the_scope(gateway,
                                                                            dev_issuer,
                                                                            upstream):
    recorded, _ = upstream
    response = await Session(gateway, token(dev_issuer, roles=("chatter",))).post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="forge.admin"' in response.headers["www-authenticate"]
    assert recorded.seen == []


async def test_lists_are_filtered_per_caller_and_never_cacheable(gateway, dev_issuer):
    searcher = await Session(gateway, token(dev_issuer)).open()
    admin = await Session(gateway, dev_issuer.mint(
        subject="root", roles=(), scopes=("forge.admin",), extra={"aud": RESOURCE})).open()

    tools = (await searcher.call("tools/list"))["result"]["tools"]
    assert sorted(tool["name"] for tool in tools) == ["search_code", "search_issues"]
    every = (await admin.call("tools/list"))["result"]["tools"]
    assert sorted(tool["name"] for tool in every) == ["delete_repo", "search_code",
                                                      "search_issues"]
    resources = (await searcher.call("resources/list"))["result"]["resources"]
    assert [resource["uri"] for resource in resources] == ["docs://readme"]
    assert (await admin.call("resources/list"))["result"]["resources"] == []
    prompts = (await searcher.call("prompts/list"))["result"]["prompts"]
    assert [prompt["name"] for prompt in prompts] == ["review"]
    response = await searcher.post({"jsonrpc": "2.0", "id": 99, "method": "tools/list"})
    assert response.headers["cache-control"] == "private, no-store"


async def test_allowed_calls_reach_the_server_with_its_credential_not_the_callers(
        gateway, dev_issuer, upstream):
    recorded, _ = upstream
    caller = token(dev_issuer)
    session = await Session(gateway, caller).open()

    reply = await session.call("tools/call", {"name": "search_issues",
                                              "arguments": {"query": "bug"}})
    assert reply["result"]["content"][0]["text"] == "issues for bug"
    read = await session.call("resources/read", {"uri": "docs://readme"})
    assert read["result"]["contents"][0]["text"] == "read me"
    prompt = await session.call("prompts/get", {"name": "review", "arguments": {"topic": "x"}})
    assert "review x" in str(prompt["result"]["messages"])
    assert {headers["authorization"] for _, headers in recorded.seen} \
        == {"Bearer gateway-own-credential"}
    assert not any(caller in str(headers) for _, headers in recorded.seen)


async def test_a_denied_call_is_a_jsonrpc_error_logged_and_never_sent(gateway, dev_issuer,
                                                                     upstream, caplog):
    recorded, _ = upstream
    session = await Session(gateway, token(dev_issuer)).open()
    before = list(recorded.methods)

    with caplog.at_level(logging.INFO, logger="rolegate.decision"):
        reply = await session.call("tools/call", {"name": "delete_repo",
                                                  "arguments": {"repository": "acme/x"}})
        read = await session.call("resources/read", {"uri": "file:///etc/passwd"})

    assert reply["error"]["code"] == -32003
    assert reply["error"]["data"] == {"code": "mcp_not_allowed", "server": "forge",
                                      "tool": "delete_repo"}
    assert "tool 'delete_repo' of MCP server 'forge'" in reply["error"]["message"]
    assert "forge.admin" in reply["error"]["message"]
    assert read["error"]["data"]["resource"] == "file:///etc/passwd"
    assert recorded.methods == before
    denials = [r.getMessage() for r in caplog.records if r.name == "rolegate.decision"
               and '"deny"' in r.getMessage()]
    assert len(denials) == 2 and "delete_repo" in denials[0]


async def test_headers_that_disagree_with_the_body_are_refused(gateway, dev_issuer, upstream):
    recorded, _ = upstream
    session = await Session(gateway, token(dev_issuer)).open()
    before = list(recorded.methods)
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "delete_repo", "arguments": {}}}

    by_name = await session.post(call, **{"mcp-method": "tools/call",
                                          "mcp-name": "search_issues"})
    by_method = await session.post(call, **{"mcp-method": "tools/list"})
    agreeing = await session.post({**call, "params": {"name": "search_code",
                                                      "arguments": {"query": "q"}}},
                                  **{"mcp-method": "tools/call", "mcp-name": "search_code"})

    assert (by_name.status_code, by_name.json()["error"]["code"]) \
        == (400, "header_body_mismatch")
    assert by_method.status_code == 400
    assert agreeing.status_code == 200 and "result" in agreeing.json()
    assert recorded.methods == [*before, "tools/call"]


@pytest.mark.parametrize("message, code", [
    ([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}], "batch_refused"),
    ({"jsonrpc": "2.0", "id": 2**64, "method": "ping"}, "invalid_jsonrpc"),
    ({"jsonrpc": "2.0", "id": "x" * 500, "method": "ping"}, "invalid_jsonrpc"),
    ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, "invalid_jsonrpc"),
    ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 3}},
     "invalid_jsonrpc"),
    ({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
      "params": {"name": "search_code", "Name": "delete_repo"}}, "invalid_body"),
    ({"jsonrpc": "2.0", "id": 1, "method": "ping", "Method": "tools/call"}, "invalid_body"),
    ({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
      "params": {"name": "search_code", "nam\u0435": "x", "NAME": "delete_repo"}},
     "invalid_body"),
    ({"jsonrpc": "2.0", "id": 1, "method": 7}, "invalid_jsonrpc"),
    ({"jsonrpc": "2.0", "id": 1}, "invalid_jsonrpc"),
])
async def test_hostile_jsonrpc_is_refused_before_the_server(gateway, dev_issuer, upstream,
                                                            message, code):
    recorded, _ = upstream
    session = Session(gateway, token(dev_issuer))

    response = await session.post(message)

    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert recorded.seen == []


async def test_unknown_methods_and_unlisted_tools_are_answered_by_the_gateway(gateway,
                                                                            dev_issuer,
                                                                            upstream):
    recorded, _ = upstream
    session = await Session(gateway, token(dev_issuer)).open()
    before = list(recorded.methods)

    unknown = await session.call("admin/shutdown")
    hidden = await session.call("tools/call", {"name": "no_such_tool_anywhere"})

    assert unknown["error"]["code"] == -32601
    assert hidden["error"]["code"] == -32003
    assert recorded.methods == before


async def test_a_session_is_its_openers_only(gateway, dev_issuer, upstream):
    recorded, _ = upstream
    ana = await Session(gateway, token(dev_issuer)).open()
    bob = Session(gateway, token(dev_issuer, subject="bob"))
    bob.headers["mcp-session-id"] = ana.headers["mcp-session-id"]
    before = list(recorded.methods)

    response = await bob.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})

    assert (response.status_code, response.json()["error"]["code"]) \
        == (404, "unknown_mcp_session")
    assert recorded.methods == before


async def test_a_server_that_is_down_is_a_clear_502(settings_from, dev_issuer):
    http = HttpClient()
    app = build_app(settings_from(config("http://127.0.0.1:9/mcp")), dev_issuer=dev_issuer,
                    http=http)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        response = await Session(client, token(dev_issuer)).post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
    await http.close()

    assert (response.status_code, response.json()["error"]["code"]) \
        == (502, "mcp_server_unavailable")


@pytest.fixture
async def served_gateway(upstream: tuple[Upstream, str], settings_from: Callable[..., Any],
                         dev_issuer: DevIssuer) -> AsyncIterator[str]:
    http = HttpClient()
    app = build_app(settings_from(config(upstream[1])), dev_issuer=dev_issuer, http=http)
    async with Served(app) as url:
        yield url
    await http.close()


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28", "auto"])
async def test_the_sdk_client_through_the_gateway_sees_and_calls_only_what_it_is_granted(
        served_gateway, dev_issuer, upstream, mode):
    recorded, _ = upstream
    http = create_mcp_http_client(headers=bearer(token(dev_issuer)))
    transport = streamable_http_client(f"{served_gateway}/mcp/forge", http_client=http)
    async with Client(transport, mode=mode) as client:
        tools = await client.list_tools()
        called = await client.call_tool("search_code", {"query": "auth"})
        with pytest.raises(MCPError) as denied:
            await client.call_tool("delete_repo", {"repository": "acme/x"})
    await http.aclose()

    assert sorted(tool.name for tool in tools.tools) == ["search_code", "search_issues"]
    assert called.content[0].text == "code for auth"
    assert "tool 'delete_repo' of MCP server 'forge'" in str(denied.value)
    assert "forge.admin" in str(denied.value)
    versions = {headers.get("mcp-protocol-version") for _, headers in recorded.seen[1:]}
    if mode == "legacy":  # 2025-11-25: a session opened with initialize, closed with DELETE
        assert recorded.methods[:2] == ["initialize", "notifications/initialized"]
        assert versions == {"2025-11-25"}
    else:  # 2026-07-28: stateless, every request carrying its version and Mcp-Method
        assert "initialize" not in recorded.methods
        assert versions == {"2026-07-28"}
        assert all(headers["mcp-method"] == method for method, headers in recorded.seen
                   if method is not None)
    assert "delete_repo" not in str([headers for _, headers in recorded.seen])


async def test_each_allowed_tool_call_writes_one_usage_record_and_a_denied_one_none(
        gateway_for, settings_from, dev_issuer, upstream, tmp_path):
    database = {"url": f"sqlite+aiosqlite:///{tmp_path / 'rolegate.db'}",
                "migrate_on_start": True}
    gateway = await gateway_for(settings_from({**config(upstream[1]), "database": database,
                                               "accounting": {"flush_interval": 0.05}}))
    session = await Session(gateway, token(dev_issuer)).open()

    await session.call("tools/list")
    await session.call("tools/call", {"name": "search_code", "arguments": {"query": "q"}})
    await session.call("tools/call", {"name": "delete_repo", "arguments": {}})
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        rows = await usage_rows(database)
        if rows:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    rows = await usage_rows(database)

    assert [(row["provider"], row["deployment"], row["model"], row["operation"],
             row["subject"], row["rule"], row["status"]) for row in rows] == [
        ("mcp", "forge", "search_code", "tools/call", "ana", "searchers", 200)]
    assert rows[0]["latency_ms"] > 0


async def test_an_argument_constraint_lets_only_matching_calls_through(gateway, dev_issuer,
                                                                      upstream):
    recorded, _ = upstream
    session = await Session(gateway, token(dev_issuer, roles=("cleaner",))).open()

    listed = (await session.call("tools/list"))["result"]["tools"]
    allowed = await session.call("tools/call", {"name": "delete_repo",
                                                "arguments": {"repository": "acme/site"}})
    before = list(recorded.methods)
    refused = await session.call("tools/call", {"name": "delete_repo",
                                                "arguments": {"repository": "evil/site"}})

    assert [tool["name"] for tool in listed] == ["delete_repo"]
    assert allowed["result"]["content"][0]["text"] == "deleted acme/site"
    assert refused["error"]["data"]["code"] == "mcp_not_allowed"
    assert recorded.methods == before


@pytest.mark.parametrize("smuggled", ["Repository", "REPOSITORY", "repo\u017fitory"],
                         ids=["capitalised", "upper-case", "long-s"])
async def test_an_argument_named_twice_for_a_case_insensitive_server_is_refused(
        gateway, dev_issuer, upstream, smuggled):
    """The constraint allows `repository: acme/site`; a Go server decoding into a struct would
    take the look-alike that follows it."""
    recorded, _ = upstream
    session = await Session(gateway, token(dev_issuer, roles=("cleaner",))).open()
    before = list(recorded.methods)

    response = await session.post({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "delete_repo", "arguments": {"repository": "acme/site", smuggled: "evil/prod"}}})

    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_body")
    assert recorded.methods == before


async def test_a_tool_calls_usage_record_carries_the_callers_dimensions_as_a_models_does(
        gateway_for, settings_from, dev_issuer, upstream, tmp_path):
    """`accounting.dimensions` group MCP usage as they group model usage."""
    database = {"url": f"sqlite+aiosqlite:///{tmp_path / 'rolegate.db'}"}
    gateway = await gateway_for(settings_from({
        **config(upstream[1]), "database": database,
        "accounting": {"flush_interval": 0.05, "dimensions": ["department", "groups"]}}))
    caller = dev_issuer.mint(subject="ana", roles=("searcher",), extra={
        "aud": RESOURCE, "department": "Research", "groups": ["finance", "data"]})
    session = await Session(gateway, caller).open()

    await session.call("tools/call", {"name": "search_code", "arguments": {"query": "q"}})
    rows = await _settled_rows(database, 1)

    assert await dimension_rows(database) == [
        (rows[0]["id"], "department", "Research"), (rows[0]["id"], "groups", "data"),
        (rows[0]["id"], "groups", "finance")]
