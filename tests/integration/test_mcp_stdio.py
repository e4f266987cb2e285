"""stdio MCP servers (`mcp.servers[].command`): run by rolegate as a child process (the
official SDK's stdio server here), shared by every caller under the same authorization and
filtering, restarted when it exits, stopped on shutdown."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from rolegate.config.load import ConfigError
from tests.support.mcp import Session, config, token

SERVER = Path(__file__).resolve().parents[1] / "support" / "stdio" / "forge_server.py"


def stdio_config(calls: Path) -> dict[str, Any]:
    settings = config("http://unused")
    settings["mcp"]["servers"] = [{"name": "forge", "command": [sys.executable, str(SERVER)],
                                   "env": {"CALLS_FILE": str(calls)}, "timeout": 20}]
    return settings


def calls_in(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_a_stdio_server_is_authorized_filtered_and_shared_by_callers(
        gateway_for, settings_from, dev_issuer, tmp_path):
    calls = tmp_path / "calls"
    gateway = await gateway_for(settings_from(stdio_config(calls)))
    ana = await Session(gateway, token(dev_issuer)).open()
    bob = await Session(gateway, token(dev_issuer, subject="bob")).open()

    tools = await ana.call("tools/list")
    found = await ana.call("tools/call", {"name": "search_code", "arguments": {"query": "q"}})
    denied = await ana.call("tools/call", {"name": "delete_repo",
                                           "arguments": {"repository": "acme/x"}})
    ana_pid = await ana.call("tools/call", {"name": "search_pid", "arguments": {}})
    bob_pid = await bob.call("tools/call", {"name": "search_pid", "arguments": {}})

    assert sorted(tool["name"] for tool in tools["result"]["tools"]) == [
        "search_code", "search_crash", "search_pid"]
    assert found["id"] == 2 and found["result"]["content"][0]["text"] == "code for q"
    assert denied["error"]["data"]["code"] == "mcp_not_allowed"
    assert ana_pid["result"]["content"] == bob_pid["result"]["content"]  # one process
    assert calls_in(calls) == ["search_code", "search_pid", "search_pid"]


async def test_a_stdio_server_that_exits_is_restarted_and_stopped_on_shutdown(
        gateway_for, settings_from, dev_issuer, tmp_path):
    calls = tmp_path / "calls"
    gateway = await gateway_for(settings_from(stdio_config(calls)))
    session = await Session(gateway, token(dev_issuer)).open()
    first = await session.call("tools/call", {"name": "search_pid", "arguments": {}})

    crashed = await session.post({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                                  "params": {"name": "search_crash", "arguments": {}}})
    again = await session.call("tools/call", {"name": "search_pid", "arguments": {}})

    assert (crashed.status_code, crashed.json()["error"]["code"]) \
        == (502, "mcp_server_unavailable")
    before, after = (int(reply["result"]["content"][0]["text"]) for reply in (first, again))
    assert before != after
    with pytest.raises(ProcessLookupError):  # the first run is gone
        os.kill(before, 0)
    await gateway.aclose()


def test_a_server_needs_exactly_one_of_url_and_command(settings_from):
    settings = stdio_config(Path("calls"))
    settings["mcp"]["servers"][0]["url"] = "http://127.0.0.1:1/mcp"
    with pytest.raises(ConfigError, match="exactly one of url"):
        settings_from(settings)
