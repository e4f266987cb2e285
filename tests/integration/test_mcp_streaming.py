"""SSE from MCP servers relayed event by event as it arrives, each message screened: progress
from the official SDK's server reaches the caller while the tool still runs; list results in a
stream are filtered; resource notifications the caller may not read, and data that is not one
JSON object, never reach it, on a reply's stream or on the standing GET stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from mcp.server.mcpserver import Context, MCPServer

from rolegate.app import build_app
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.providers.http import HttpClient
from tests.support.gateways import bearer
from tests.support.mcp import INIT, Served, config, token

SSE_HEADERS = {"accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-11-25"}


@pytest.fixture
def serve_gateway(settings_from: Callable[..., Any], dev_issuer: DevIssuer
                  ) -> Callable[[str], Any]:
    def serve(url: str) -> Any:
        http = HttpClient()
        return _ServedGateway(build_app(settings_from(config(url)), dev_issuer=dev_issuer,
                                        http=http), http)
    return serve


class _ServedGateway:
    def __init__(self, app: Any, http: HttpClient) -> None:
        self.served = Served(app)
        self.http = http

    async def __aenter__(self) -> httpx.AsyncClient:
        url = await self.served.__aenter__()
        self.client = httpx.AsyncClient(base_url=url, timeout=10)
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.served.__aexit__(*exc)
        await self.http.close()


async def events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            yield orjson.loads(line[5:])


@pytest.fixture
async def slow_server() -> AsyncIterator[tuple[asyncio.Event, str]]:
    released = asyncio.Event()
    server = MCPServer("slow")

    @server.tool()
    async def long_job(ctx: Context) -> str:
        await ctx.report_progress(1, 2, "half way")
        await released.wait()  # the test releases it once the progress reached the caller
        return "done"

    async with Served(server.streamable_http_app(json_response=False)) as url:
        yield released, f"{url}/mcp"


async def test_progress_reaches_the_caller_while_the_tool_still_runs(slow_server, settings_from,
                                                                    dev_issuer, serve_gateway):
    released, url = slow_server
    settings = config(url)
    settings["policy"][0]["allow"]["mcp"]["tools"] = ["long_*"]
    http = HttpClient()
    gateway = _ServedGateway(build_app(settings_from(settings), dev_issuer=dev_issuer,
                                       http=http), http)
    headers = {**bearer(token(dev_issuer)), **SSE_HEADERS}
    async with gateway as client:
        opened = await client.post("/mcp/forge", headers=headers, json={
            "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
        headers["mcp-session-id"] = opened.headers["mcp-session-id"]
        await client.post("/mcp/forge", headers=headers,
                          json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "long_job", "arguments": {}, "_meta": {"progressToken": "p"}}}
        async with client.stream("POST", "/mcp/forge", headers=headers, json=call) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            received = events(response)
            progress = await asyncio.wait_for(anext(received), 5)  # buffered: never arrives
            released.set()
            result = await asyncio.wait_for(anext(received), 5)

    assert progress["method"] == "notifications/progress"
    assert progress["params"]["progressToken"] == "p"
    assert progress["params"]["message"] == "half way"
    assert result["id"] == 1 and result["result"]["content"][0]["text"] == "done"


class StreamingServer:
    """Answers every request with an SSE stream naming allowed and refused things."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    @staticmethod
    def stream(message_id: Any) -> bytes:
        updated = [{"jsonrpc": "2.0", "method": "notifications/resources/updated",
                    "params": {"uri": uri}} for uri in ("docs://readme", "file:///etc/passwd")]
        parts = [b": keep-alive\n\n", b"id: 1\ndata: " + orjson.dumps(updated[1]) + b"\n\n",
                 b"data: not json\n\n", b"id: 2\ndata: " + orjson.dumps(updated[0]) + b"\n\n",
                 b"data: " + orjson.dumps({"jsonrpc": "2.0",
                                           "method": "notifications/tools/list_changed"})
                 + b"\n\n"]
        if message_id is not None:
            tools = [{"name": name, "inputSchema": {"type": "object"}}
                     for name in ("search_code", "delete_repo", "search_issues")]
            parts.append(b"data: " + orjson.dumps({"jsonrpc": "2.0", "id": message_id,
                                                   "result": {"tools": tools}}) + b"\n\n")
        return b"".join(parts)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = (await receive()).get("body", b"")
        message = orjson.loads(body) if body else {}
        self.methods.append(scope["method"])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        payload = self.stream(message.get("id") if message else None)
        for part in payload.split(b"\n\n")[:-1]:  # event by event, as a server writes them
            await send({"type": "http.response.body", "body": part + b"\n\n",
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def streaming_server() -> AsyncIterator[tuple[StreamingServer, str]]:
    server = StreamingServer()
    async with Served(server) as url:
        yield server, url


async def read_all(client: httpx.AsyncClient, method: str, **kwargs: Any) -> tuple[
        httpx.Response, list[dict[str, Any]], str]:
    async with client.stream(method, "/mcp/forge", **kwargs) as response:
        text = (await response.aread()).decode()
    messages = [orjson.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    return response, messages, text


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_every_message_of_a_stream_is_screened_for_the_caller(streaming_server,
                                                                   serve_gateway, dev_issuer,
                                                                   method):
    server, url = streaming_server
    headers = {**bearer(token(dev_issuer)), **SSE_HEADERS}
    request: dict[str, Any] = {"headers": headers}
    if method == "POST":
        request["json"] = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}
    async with serve_gateway(url) as client:
        response, messages, text = await read_all(client, method, **request)

    assert response.status_code == 200 and server.methods == [method]
    assert response.headers["cache-control"] == "private, no-store"
    kinds = [message.get("method") or "response" for message in messages]
    expected = ["notifications/resources/updated", "notifications/tools/list_changed"]
    assert kinds == ([*expected, "response"] if method == "POST" else expected)
    assert messages[0]["params"]["uri"] == "docs://readme"
    assert "passwd" not in text and "not json" not in text
    assert "id: 2" in text and ": keep-alive" in text
    if method == "POST":
        assert [tool["name"] for tool in messages[-1]["result"]["tools"]] \
            == ["search_code", "search_issues"]
