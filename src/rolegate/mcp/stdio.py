"""`StdioServer`: an MCP server rolegate runs as a child process (`mcp.servers[].command`),
speaking newline-delimited JSON-RPC on its stdin and stdout (MCP's stdio transport).

One process per server, shared by every caller: rolegate itself is its one client. It runs the
`initialize` handshake once per process and answers callers' `initialize` from that result;
each caller's request goes on under an id of rolegate's own (so two callers' ids cannot collide
or answer each other), and the server's response comes back under the caller's id. Requests
the server sends (sampling, roots) are refused: there is no caller to route them to.
Notifications from the server are dropped. When the process exits, requests waiting on it fail
(502) and it is started again after a back-off that doubles up to `MAX_BACKOFF`; a process that
stayed up `STABLE_AFTER` seconds resets it. `stop()` ends it (SIGTERM, then SIGKILL).

>>> server = StdioServer(config, sleep=asyncio.sleep)
>>> await server.start()
>>> reply = await server.request({"jsonrpc": "2.0", "id": 7, "method": "tools/list"})
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from rolegate.config.model import McpServerConfig
from rolegate.errors import UpstreamError, UpstreamTimeout

log = logging.getLogger("rolegate.mcp")

PROTOCOL_VERSION = "2025-11-25"
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0
STOP_GRACE = 5.0
LINE_LIMIT = 16 * 1024 * 1024  # the longest message read from the server
NOT_SUPPORTED = -32601
# What the child inherits of rolegate's environment besides `env` (as the MCP SDK's stdio client
# does): enough to find programs and a home, none of rolegate's own secrets.
INHERITED = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "TMPDIR")


class StdioServer:
    def __init__(self, config: McpServerConfig, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        assert config.command is not None
        self._config = config
        self._sleep = sleep
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self.initialized: dict[str, Any] = {}  # the server's `initialize` result
        self.starts = 0

    async def start(self) -> None:
        self._supervisor = asyncio.ensure_future(self._supervise())

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._end_process()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """The server's response to `message`, under the caller's id."""
        timeout = self._config.timeout
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            reply = await asyncio.wait_for(self._send(message), timeout)
        except TimeoutError:
            raise UpstreamTimeout(f"MCP server {self._config.name!r} did not answer within "
                                  f"{timeout:g} seconds.") from None
        return {**reply, "id": message.get("id")}

    async def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        process = self._process
        if process is None or process.stdin is None:
            raise _down(self._config.name)
        own = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[own] = future
        try:
            process.stdin.write(orjson.dumps({**message, "id": own}) + b"\n")
            await process.stdin.drain()
            return await future
        except (ConnectionError, RuntimeError):
            raise _down(self._config.name) from None
        finally:
            self._pending.pop(own, None)

    async def _supervise(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            started = time.monotonic()
            try:
                await self._run_once()
            except (OSError, ValueError) as exc:  # cannot start, or a broken handshake
                log.error("MCP server %r could not run: %s: %s", self._config.name,
                      type(exc).__name__, exc)
            if time.monotonic() - started > STABLE_AFTER:
                backoff = FIRST_BACKOFF
            log.warning("MCP server %r exited; starting it again in %.1f s",
                        self._config.name, backoff)
            await self._sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _run_once(self) -> None:
        command = self._config.command or ()
        self._process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=_child_environment(self._config.env), limit=LINE_LIMIT)
        self.starts += 1
        reader = asyncio.ensure_future(self._read(self._process))
        try:
            await self._handshake()
            await self._process.wait()
        finally:
            self._ready.clear()
            reader.cancel()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(_down(self._config.name))
            await self._end_process()

    async def _handshake(self) -> None:
        reply = await asyncio.wait_for(self._send({
            "jsonrpc": "2.0", "method": "initialize", "params": {
                "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                "clientInfo": {"name": "rolegate", "version": "1"}}}), self._config.timeout)
        result = reply.get("result")
        if not isinstance(result, dict):
            raise ValueError(f"initialize failed: {reply.get('error')}")
        self.initialized = result
        await self._notify({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self._ready.set()

    async def _notify(self, message: dict[str, Any]) -> None:
        process = self._process
        if process is not None and process.stdin is not None:
            process.stdin.write(orjson.dumps(message) + b"\n")
            await process.stdin.drain()

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("MCP server %r wrote a line that is not JSON", self._config.name)
                continue
            if isinstance(value, dict):
                await self._route(value)

    async def _route(self, value: dict[str, Any]) -> None:
        identifier = value.get("id")
        if "method" not in value:
            future = self._pending.get(identifier) if isinstance(identifier, int) else None
            if future is not None and not future.done():
                future.set_result(value)
        elif identifier is not None:  # the server's own request: nobody to route it to
            await self._notify({"jsonrpc": "2.0", "id": identifier, "error": {
                "code": NOT_SUPPORTED, "message": "Not available through the gateway."}})

    async def _end_process(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            process.kill()
            await process.wait()


def _down(name: str) -> UpstreamError:
    return UpstreamError(f"MCP server {name!r} is not running; it is being restarted.",
                         code="mcp_server_unavailable")


def _child_environment(extra: dict[str, str]) -> dict[str, str]:
    inherited = {name: value for name in INHERITED if (value := os.environ.get(name))}
    return {**inherited, **extra}
