"""`Recorder`: usage records go into an asyncio queue and a background task writes them in
batches, so no request waits for the database.

The flusher wakes every `flush_interval` seconds, or as soon as `batch_size` records are waiting,
and writes what is queued in batches of at most `batch_size`. `stop()` (run at lifespan
shutdown, which uvicorn runs on SIGTERM after in-flight requests finish) lets a write in progress
finish and then drains the queue, so a graceful stop loses nothing; a crash loses at most the
records of the last interval. A failed write is logged and retried at the next wake-up; past
`max_pending` waiting records, new ones are dropped and counted in `dropped`. `pending`,
`dropped` and `failed_writes` are exported as metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from rolegate.accounting.records import UsageRecord
from rolegate.accounting.store import UsageStore

log = logging.getLogger("rolegate.accounting")
MAX_PENDING = 100_000
STOP_ATTEMPTS = 3


class Recorder:
    """>>> recorder.record(UsageRecord(...))   # never blocks, never raises"""

    def __init__(self, store: UsageStore, *, flush_interval: float, batch_size: int,
                 max_pending: int = MAX_PENDING) -> None:
        self._store = store
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._queue: asyncio.Queue[UsageRecord] = asyncio.Queue()
        self._failed: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._is_stopping = False
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.failed_writes = 0

    @property
    def pending(self) -> int:
        """Records waiting to be written (queued, or kept from a failed write)."""
        return self._queue.qsize() + len(self._failed)

    def record(self, record: UsageRecord) -> None:
        if self._queue.qsize() + len(self._failed) >= self._max_pending:
            self.dropped += 1
            return
        self._queue.put_nowait(record)
        if self._queue.qsize() >= self._batch_size:
            self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._is_stopping = False
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Let the flusher finish its write, then write everything still queued."""
        self._is_stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        for _ in range(STOP_ATTEMPTS):
            if await self.flush():
                return
        log.error("%d usage records could not be written at shutdown",
                  self._queue.qsize() + len(self._failed))

    async def flush(self) -> bool:
        """Write everything queued now, in batches; False when a write failed."""
        while self._failed or not self._queue.empty():
            batch = self._failed or self._take(self._batch_size)
            self._failed = []
            try:
                await self._store.insert_many(batch)
            except (SQLAlchemyError, OSError) as exc:
                log.error("writing %d usage records failed (will retry): %s", len(batch), exc)
                self.failed_writes += 1
                self._failed = batch
                return False
        return True

    async def _run(self) -> None:
        while not self._is_stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            await self.flush()

    def _take(self, count: int) -> list[UsageRecord]:
        taken: list[UsageRecord] = []
        while len(taken) < count and not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken
