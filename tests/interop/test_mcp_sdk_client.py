"""The official `mcp` SDK client through rolegate (a real process) to an SDK server, with tokens
from oidc-provider: the client discovers the authorization server from rolegate's 401 challenge
and its RFC 9728 document, gets a client-credentials token for the server's resource (RFC 8707)
from the provider, then lists (filtered) and calls tools. Nothing denied reaches the server,
nor does the caller's token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp.shared.exceptions import MCPError

from tests.interop.conftest import CLIENTS
from tests.support.mcp import Served, Upstream
from tests.support.process import GatewayProcess


class MemoryTokens:
    """The SDK's token storage, in memory; keeps every token it was given."""

    def __init__(self) -> None:
        self.tokens: list[OAuthToken] = []
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens[-1] if self.tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def mcp_config(issuer: str, port: int, server_url: str) -> str:
    return f"""
server: {{public_base_url: "http://127.0.0.1:{port}"}}
auth:
  issuers:
    - name: oidc
      issuer: "{issuer}"
      discovery_url: "{issuer}/.well-known/openid-configuration"
      audiences: ["api://rolegate"]
      token_types: [at+jwt]
mcp:
  servers:
    - name: forge
      url: "{server_url}"
      headers: {{Authorization: "Bearer gateway-own-credential"}}
policy:
  - name: gateway-users
    when: {{roles: [Gateway.User]}}
    allow: {{routes: [mcp], mcp: {{servers: [forge], tools: ["search_*"]}}}}
"""


@pytest.fixture
async def mcp_server() -> AsyncIterator[tuple[Upstream, str]]:
    recorded = Upstream()
    async with Served(recorded) as url:
        yield recorded, f"{url}/mcp"


@pytest.fixture
async def mcp_gateway(issuer: str, mcp_server: tuple[Upstream, str],
                      tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    process = GatewayProcess("{}", tmp_path, ready_path="/health/ready")
    assert process.config is not None
    process.config.write_text(mcp_config(issuer, process.port, mcp_server[1]))
    async with process:
        yield process


async def test_the_sdk_client_discovers_gets_a_token_and_sees_only_its_tools(
        issuer, mcp_gateway, mcp_server):
    recorded, _ = mcp_server
    server_url = f"{mcp_gateway.url}/mcp/forge"
    async with httpx.AsyncClient() as plain:
        challenge = await plain.post(server_url, json={"jsonrpc": "2.0", "id": 1,
                                                       "method": "ping"})
        metadata = (await plain.get(f"{mcp_gateway.url}/.well-known/oauth-protected-resource"
                                    "/mcp/forge")).json()
    storage = MemoryTokens()
    auth = ClientCredentialsOAuthProvider(server_url, storage, "svc-admin", CLIENTS["svc-admin"],
                                          issuer=issuer)
    http = create_mcp_http_client(auth=auth)
    async with Client(streamable_http_client(server_url, http_client=http)) as client:
        tools = await client.list_tools()
        called = await client.call_tool("search_code", {"query": "auth"})
        with pytest.raises(MCPError) as denied:
            await client.call_tool("delete_repo", {"repository": "acme/x"})
    await http.aclose()

    assert challenge.status_code == 401
    assert "resource_metadata=" in challenge.headers["www-authenticate"]
    assert metadata["resource"] == server_url and metadata["authorization_servers"] == [issuer]
    assert len(storage.tokens) == 1  # from the provider, for this server's resource
    assert sorted(tool.name for tool in tools.tools) == ["search_code", "search_issues"]
    assert called.content[0].text == "code for auth"
    assert "tool 'delete_repo' of MCP server 'forge'" in str(denied.value)
    assert "delete_repo" not in str(recorded.seen)
    token = storage.tokens[0].access_token
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == server_url
    assert {headers.get("authorization") for _, headers in recorded.seen} \
        == {"Bearer gateway-own-credential"}
    assert token not in str(recorded.seen)
