"""A caller hanging up, against rolegate as a real process: mid-upload, or while its reply is
pending on a slow upstream. Each is one access line with status 499, and never an ERROR or a
traceback in the log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_keys_and_limits_processes import ENV, rolegate
from tests.support.faulty import Fault, FaultyUpstream
from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e


def config(upstream: FaultyUpstream) -> str:
    return f"""
models:
  - {{name: slow, provider: openai-compatible, api_base: "{upstream.base}"}}
keys: {{enabled: true, pepper: "${{RG_PEPPER}}"}}
database: {{url: 'sqlite+aiosqlite:///rolegate.db'}}
policy:
  - name: services
    when: {{issuers: [apikey], roles: [svc]}}
    allow: {{routes: [inference], models: ["*"]}}
"""


def request_head(key: str, length: int) -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: rolegate\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


async def hang_up(port: int, data: bytes, *, until: Any = None) -> None:
    """Send `data`, wait for `until()` to be true (or a moment), and close the connection."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    for _ in range(200):
        if until is None or until():
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    writer.close()
    await writer.wait_closed()


def chat_lines(gateway: GatewayProcess) -> list[dict[str, Any]]:
    return [line for line in gateway.records("rolegate.access")
            if line["path"] == "/v1/chat/completions"]


async def access_lines(gateway: GatewayProcess) -> list[dict[str, Any]]:
    """The access lines of chat requests, once there is one (and a moment for a second)."""
    for _ in range(200):
        if chat_lines(gateway):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    return chat_lines(gateway)


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    async with FaultyUpstream() as upstream:
        upstream.default = Fault.stall(30.0)
        text = config(upstream)
        (tmp_path / "rolegate.yaml").write_text(text)
        await rolegate(tmp_path / "rolegate.yaml", "db", "upgrade")
        key = await rolegate(tmp_path / "rolegate.yaml", "keys", "create", "--name", "svc",
                             "--owner", "team", "--roles", "svc")
        async with GatewayProcess(text, tmp_path, env=ENV) as gateway:
            yield gateway, upstream, key


def assert_one_499_and_no_error(gateway: GatewayProcess, lines: list[dict[str, Any]]) -> None:
    log = gateway.log()
    assert [line["status"] for line in lines] == [499], log
    assert " ERROR " not in log and "Traceback" not in log, log


async def test_a_caller_hanging_up_mid_upload_is_one_499_line(served):
    gateway, upstream, key = served
    body = json.dumps({"model": "slow", "messages": [{"role": "user", "content": "x" * 900}]})

    await hang_up(gateway.port, request_head(key, len(body)) + body[:300].encode())
    lines = await access_lines(gateway)

    assert_one_499_and_no_error(gateway, lines)
    assert upstream.requests == []


async def test_a_caller_hanging_up_while_its_reply_is_pending_is_one_499_line(served):
    gateway, upstream, key = served
    body = json.dumps({"model": "slow", "messages": [{"role": "user", "content": "hi"}]})

    await hang_up(gateway.port, request_head(key, len(body)) + body.encode(),
                  until=lambda: len(upstream.requests) == 1)
    lines = await access_lines(gateway)

    assert_one_499_and_no_error(gateway, lines)
    assert len(upstream.requests) == 1
