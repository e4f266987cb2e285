"""An ASGI app served by uvicorn on a real loopback socket, inside the test's event loop, so a
test can drop a connection the way a real client does and look at both ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from rolegate.app import build_app
from rolegate.config.model import Settings
from rolegate.providers.http import HttpClient
from tests.support.lifespan import Lifespan


class ServedApp:
    """`async with ServedApp(app) as url:` -> `http://127.0.0.1:<port>`."""

    def __init__(self, app: Any, http: Any = "auto", lifespan: str = "off") -> None:
        """`http`: uvicorn's HTTP protocol (rolegate serves with `protocol.bounded_protocol`);
        `lifespan`: "on" for an app that starts work at start-up."""
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan=lifespan, http=http)
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> str:
        self._task = asyncio.ensure_future(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self._task is not None
        await self._task


@asynccontextmanager
async def served_gateway(settings: Settings, **options: Any) -> AsyncIterator[str]:
    """The gateway for `settings` (built with `options`, e.g. `dev_issuer`), started, on a
    loopback socket: `async with served_gateway(settings) as url:`."""
    http = HttpClient()
    app = build_app(settings, http=http, **options)
    lifespan = Lifespan(app)
    await lifespan.startup()
    try:
        async with ServedApp(app) as url:
            yield url
    finally:
        await lifespan.shutdown()
        await http.close()
