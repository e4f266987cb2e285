"""Running an ASGI app's lifespan in-process: start-up before a test, shutdown after it, as
uvicorn does around serving."""

from __future__ import annotations

import asyncio
from typing import Any


class Lifespan:
    def __init__(self, app: Any) -> None:
        self._app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self._task = asyncio.ensure_future(
            self._app({"type": "lifespan"}, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "lifespan.startup"})
        message = await asyncio.wait_for(self._outbox.get(), 20)
        assert message["type"] == "lifespan.startup.complete", message

    async def shutdown(self) -> None:
        assert self._task is not None
        await self._inbox.put({"type": "lifespan.shutdown"})
        message = await asyncio.wait_for(self._outbox.get(), 20)
        assert message["type"] == "lifespan.shutdown.complete", message
        await self._task
