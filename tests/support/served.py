"""An ASGI app served by uvicorn on a real loopback socket, inside the test's event loop, so a
test can drop a connection the way a real client does and look at both ends."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn


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
