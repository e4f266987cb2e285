"""Background tasks that write what was batched in memory.

`PeriodicTask` runs an async function every few seconds, and once more when stopped, so work
batched in memory (such as last-used times) is written at shutdown. `BatchFlusher` is the
lifecycle of a batch writer's queue (usage records, audit entries): a flush every interval or as
soon as a batch is full, and at stop a drain that loses nothing a flush can write.
"""

from __future__ import annotations

import asyncio
import contextlib
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


class BatchFlusher:
    """Runs a writer's `flush` in the background: every `interval` seconds, or as soon as the
    writer calls `wake` (a batch is full). `flush` writes what is queued and returns False when
    it could not (the database is unavailable), leaving the rest queued for the next one.

    >>> flusher = BatchFlusher(recorder.flush, interval=1.0); await flusher.start()
    """

    def __init__(self, flush: Callable[[], Awaitable[bool]], *, interval: float,
                 stop_attempts: int = 3) -> None:
        self._flush = flush
        self._interval = interval
        self._stop_attempts = stop_attempts
        self._wake = asyncio.Event()
        self._is_stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def is_running(self) -> bool:
        return self._task is not None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._is_stopping = False
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> bool:
        """Let a flush in progress finish, then flush what is still queued (up to
        `stop_attempts` times); False when something could not be written."""
        self._is_stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        for _ in range(self._stop_attempts):
            if await self._flush():
                return True
        return False

    async def _run(self) -> None:
        while not self._is_stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self._flush()
