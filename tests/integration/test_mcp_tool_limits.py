"""Per-tool call limits on MCP servers (`allow.mcp.limits`), in memory and in Redis: a call
over its limit is a 429 carrying a JSON-RPC error, never reaches the server, and is recorded."""

from __future__ import annotations

import asyncio
from typing import Any


from tests.integration.test_usage_accounting import usage_rows
from tests.support.mcp import Session, config, token


def limited_config(url: str, limits: dict[str, Any], database: dict[str, Any]) -> dict[str, Any]:
    settings = config(url)
    searchers = settings["policy"][0]["allow"]["mcp"]
    searchers["limits"] = {"rpm": 2}
    return {**settings, "limits": limits, "database": database,
            "accounting": {"flush_interval": 0.05}}


async def test_a_tool_over_its_rpm_is_a_429_jsonrpc_error_that_never_reaches_the_server(
        gateway_for, settings_from, dev_issuer, mcp_upstream, limits_backend, tmp_path):
    recorded, url = mcp_upstream
    database = {"url": f"sqlite+aiosqlite:///{tmp_path / 'rolegate.db'}",
                "migrate_on_start": True}
    gateway = await gateway_for(settings_from(limited_config(url, limits_backend, database)))
    ana = await Session(gateway, token(dev_issuer)).open()
    bob = await Session(gateway, token(dev_issuer, subject="bob")).open()
    search = {"name": "search_code", "arguments": {"query": "q"}}

    first = await ana.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": search})
    await ana.call("tools/call", search)
    calls_before = recorded.methods.count("tools/call")
    refused = await ana.post({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                              "params": search})
    other_tool = await ana.call("tools/call", {"name": "search_issues",
                                               "arguments": {"query": "q"}})
    other_caller = await bob.call("tools/call", search)

    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    error = refused.json()
    assert error["id"] == 7
    assert error["error"]["code"] == -32029
    assert error["error"]["data"]["code"] == "requests_per_minute"
    assert error["error"]["data"]["tool"] == "search_code"
    assert "result" in other_tool and "result" in other_caller
    assert recorded.methods.count("tools/call") == calls_before + 2  # not the refused one
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        rows = await usage_rows(database)
        if len(rows) >= 5:
            break
        await asyncio.sleep(0.05)
    statuses = sorted((row["subject"], row["model"], row["status"]) for row in rows)
    assert statuses == [("ana", "search_code", 200), ("ana", "search_code", 200),
                        ("ana", "search_code", 429), ("ana", "search_issues", 200),
                        ("bob", "search_code", 200)]
