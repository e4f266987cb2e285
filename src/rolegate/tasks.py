"""`PeriodicTask`: runs an async function every few seconds in the background, and once more
when stopped, so work batched in memory (such as last-used times) is written at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("rolegate.tasks")


class PeriodicTask:
    """>>> task = PeriodicTask(verifier.flush_last_used, every=5.0); await task.start()"""

    def __init__(self, run: Callable[[], Awaitable[None]], *, every: float) -> None:
        self._run = run
        self._every = every
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._run()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self._every)
            except TimeoutError:
                await self._run()
