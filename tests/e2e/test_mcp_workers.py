"""`rolegate serve --workers 2` in front of an MCP server: a 2025-11-25 session opened through
one worker is its opener's on every worker (each request on a new connection, so the kernel
spreads them), and another caller presenting its id is refused by whichever worker gets it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rolegate.authn.dev_issuer import DevIssuer
from tests.support.mcp import INIT, Upstream
from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e

CONFIG = """
auth:
  dev_issuer: {{enabled: true}}
mcp:
  servers: [{{name: forge, url: "{url}"}}]
policy:
  - name: searchers
    when: {{roles: [searcher]}}
    allow: {{routes: [mcp], mcp: {{servers: [forge], tools: ["search_*"]}}}}
"""


class WorkersProcess(GatewayProcess):
    def command(self) -> list[str]:
        return [*super().command(), "--workers", "2"]


async def post(base: str, token: str, message: dict[str, object],
               session: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "mcp-protocol-version": "2025-11-25",
               "accept": "application/json, text/event-stream"}
    if session is not None:
        headers["mcp-session-id"] = session
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:  # a new connection
        return await client.post("/mcp/forge", json=message, headers=headers)


async def test_a_session_is_its_openers_on_every_worker(tmp_path: Path,
                                                        mcp_upstream: tuple[Upstream, str]):
    recorded, url = mcp_upstream
    process = WorkersProcess(CONFIG.format(url=url), tmp_path)
    async with process as gateway:
        issuer = DevIssuer.load(tmp_path / "state")
        resource = f"{gateway.url}/mcp/forge"
        ana = issuer.mint(subject="ana", roles=("searcher",), extra={"aud": resource})
        bob = issuer.mint(subject="bob", roles=("searcher",), extra={"aud": resource})
        opened = await post(gateway.url, ana, {"jsonrpc": "2.0", "id": 0,
                                               "method": "initialize", "params": INIT})
        session = opened.headers["mcp-session-id"]
        await post(gateway.url, ana, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                   session)
        listed = [await post(gateway.url, ana, {"jsonrpc": "2.0", "id": n,
                                                "method": "tools/list"}, session)
                  for n in range(1, 13)]
        before = len(recorded.seen)
        hijacks = [await post(gateway.url, bob, {"jsonrpc": "2.0", "id": 1,
                                                 "method": "tools/list"}, session)
                   for _ in range(6)]

    assert [response.status_code for response in listed] == [200] * 12
    assert all(len(response.json()["result"]["tools"]) == 2 for response in listed)
    assert [response.status_code for response in hijacks] == [404] * 6
    assert len(recorded.seen) == before
