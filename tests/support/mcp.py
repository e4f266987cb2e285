"""The MCP side of the tests: the official SDK's server (three tools, a resource, a prompt)
recording what reached it, served on loopback; the gateway's configuration in front of it; raw
JSON-RPC sessions through the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from mcp.server.mcpserver import MCPServer

from rolegate.app import build_app
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.providers.http import HttpClient
from tests.support.gateways import bearer
from tests.support.served import ServedApp

BASE = "http://rolegate.test"
RESOURCE = f"{BASE}/mcp/forge"
METADATA = f"{BASE}/.well-known/oauth-protected-resource/mcp/forge"
INIT = {"protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}


class Upstream:
    """The SDK server, and what reached it: each request's JSON-RPC method and headers."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, dict[str, str]]] = []
        server = MCPServer("forge")

        @server.tool()
        def search_issues(query: str) -> str:
            return f"issues for {query}"

        @server.tool()
        def search_code(query: str) -> str:
            return f"code for {query}"

        @server.tool()
        def delete_repo(repository: str) -> str:
            return f"deleted {repository}"

        @server.resource("docs://readme")
        def readme() -> str:
            return "read me"

        @server.prompt()
        def review(topic: str) -> str:
            return f"review {topic}"

        self.app = server.streamable_http_app(json_response=True)

    @property
    def methods(self) -> list[str | None]:
        return [method for method, _ in self.seen]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        method = orjson.loads(body).get("method") if body else None
        self.seen.append((method, {k.decode(): v.decode() for k, v in scope["headers"]}))
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay, send)


class Served(ServedApp):
    """An MCP app on loopback, its lifespan run: the SDK's server starts its session manager
    there."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, lifespan="on")


def config(url: str) -> dict[str, Any]:
    return {
        "server": {"public_base_url": BASE},
        "auth": {"dev_issuer": {"enabled": True}},
        "mcp": {"servers": [{"name": "forge", "url": url,
                             "headers": {"Authorization": "Bearer gateway-own-credential"}}]},
        "policy": [
            {"name": "searchers", "when": {"roles": ["searcher"]},
             "allow": {"routes": ["mcp"], "mcp": {"servers": ["forge"],
                                                  "tools": ["search_*"],
                                                  "resources": ["docs://*"],
                                                  "prompts": ["review"]}}},
            {"name": "maintainers", "when": {"scopes": ["forge.admin"]},
             "allow": {"routes": ["mcp"], "mcp": {"servers": ["forge"], "tools": ["*"]}}},
            {"name": "chat", "when": {"roles": ["chatter"]}, "allow": {"routes": ["info"]}},
            {"name": "acme-cleaners", "when": {"roles": ["cleaner"]},
             "allow": {"routes": ["mcp"], "mcp": {"servers": ["forge"], "tools": ["delete_repo"],
                                                  "arguments": {"repository": ["acme/*"]}}}},
        ],
    }


@pytest.fixture
async def mcp_gateway_for(settings_from: Callable[..., Any], dev_issuer: DevIssuer
                          ) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """`mcp_gateway_for(settings_dict, **build_app_options)`: an in-process client of the app
    built from the settings (several apps sharing options stand for several workers)."""
    http = HttpClient()
    clients: list[httpx.AsyncClient] = []

    def make(settings: dict[str, Any], **options: Any) -> httpx.AsyncClient:
        app = build_app(settings_from(settings), dev_issuer=dev_issuer, http=http, **options)
        clients.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE))
        return clients[-1]
    yield make
    for client in clients:
        await client.aclose()
    await http.close()


@pytest.fixture
async def mcp_upstream() -> AsyncIterator[tuple[Upstream, str]]:
    recorded = Upstream()
    async with Served(recorded) as url:
        yield recorded, f"{url}/mcp"


def token(dev_issuer: DevIssuer, *, roles: tuple[str, ...] = ("searcher",),
          audience: str = RESOURCE, subject: str = "ana") -> str:
    return dev_issuer.mint(subject=subject, roles=roles, extra={"aud": audience})


class Session:
    """A 2025-11-25 session opened through the gateway with raw JSON-RPC."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = {**bearer(token), "accept": "application/json, text/event-stream",
                        "mcp-protocol-version": "2025-11-25"}
        self.next_id = 0

    async def open(self) -> Session:
        response = await self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                                    "params": INIT})
        assert response.status_code == 200, response.text
        if "mcp-session-id" in response.headers:  # a stdio server behind rolegate has none
            self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self

    async def post(self, message: Any, **headers: str) -> httpx.Response:
        return await self.client.post("/mcp/forge", json=message,
                                      headers={**self.headers, **headers})

    async def call(self, method: str, params: dict[str, Any] | None = None,
                   **headers: str) -> dict[str, Any]:
        self.next_id += 1
        response = await self.post({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                    "params": params or {}}, **headers)
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply
