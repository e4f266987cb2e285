"""MCP sessions (2025-11-25) across the workers of `serve --workers N` (apps built with one
session key): a session opened on one worker is its opener's on every worker, and nobody
else's; the server's own id never reaches the client."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.mcp import Session, Upstream, config, token

KEY = b"k" * 32


@pytest.fixture
def workers(mcp_upstream: tuple[Upstream, str], mcp_gateway_for: Callable[..., httpx.AsyncClient]
            ) -> Callable[[bytes], httpx.AsyncClient]:
    def worker(key: bytes) -> httpx.AsyncClient:
        return mcp_gateway_for(config(mcp_upstream[1]), mcp_session_key=key)
    return worker


def on(client: httpx.AsyncClient, opened: Session, caller: str) -> Session:
    session = Session(client, caller)
    session.headers["mcp-session-id"] = opened.headers["mcp-session-id"]
    return session


async def test_a_session_opened_on_one_worker_is_its_openers_on_another(workers, dev_issuer,
                                                                       mcp_upstream):
    recorded, _ = mcp_upstream
    first, second = workers(KEY), workers(KEY)
    ana = token(dev_issuer)
    opened = await Session(first, ana).open()

    tools = await on(second, opened, ana).call("tools/list")

    assert sorted(tool["name"] for tool in tools["result"]["tools"]) == ["search_code",
                                                                         "search_issues"]
    server_ids = {headers.get("mcp-session-id") for _, headers in recorded.seen[1:]}
    assert len(server_ids) == 1
    assert opened.headers["mcp-session-id"] not in server_ids  # the client holds a bound id
    assert opened.headers["mcp-session-id"].startswith(f"{server_ids.pop()}.")


@pytest.mark.parametrize("attack", ["other-caller", "other-key", "tampered", "server-id"])
async def test_a_session_id_presented_by_anyone_else_is_unknown_on_every_worker(
        workers, dev_issuer, mcp_upstream, attack):
    recorded, _ = mcp_upstream
    first = workers(KEY)
    ana, bob = token(dev_issuer), token(dev_issuer, subject="bob")
    opened = await Session(first, ana).open()
    bound = opened.headers["mcp-session-id"]
    server_id = bound.rpartition(".")[0]
    client, caller, presented = {
        "other-caller": (workers(KEY), bob, bound),
        "other-key": (workers(b"x" * 32), ana, bound),
        "tampered": (workers(KEY), ana, bound[:-2] + ("AA" if bound[-2:] != "AA" else "BB")),
        "server-id": (workers(KEY), ana, server_id),
    }[attack]
    before = list(recorded.methods)
    session = Session(client, caller)
    session.headers["mcp-session-id"] = presented

    response = await session.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                   "params": {"name": "search_code",
                                              "arguments": {"query": "q"}}})

    assert (response.status_code, response.json()["error"]["code"]) \
        == (404, "unknown_mcp_session")
    assert recorded.methods == before
