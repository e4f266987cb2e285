"""`Recorder`: usage records go into an asyncio queue and a background task writes them in
batches, so no request waits for the database.

The flusher wakes every `flush_interval` seconds, or as soon as `batch_size` records are waiting,
and writes what is queued in batches of at most `batch_size`. `stop()` (run at lifespan
shutdown, which uvicorn runs on SIGTERM after in-flight requests finish) lets a write in progress
finish and then drains the queue, so a graceful stop loses nothing; a crash loses at most the
records of the last interval. Past `max_pending` waiting records, new ones are dropped and
counted in `dropped`.

A failed write means one of two things (`accounting/store.py` tells them apart):

- the database is unavailable: the records wait (in order, none written twice) and the write is
  retried at the next wake-up; counted in `failed_writes`;
- the database refuses the data: the batch is split in halves, again and again, so the good
  records land and each record refused even alone is set aside in `usage_dead_letters` (or, if
  the table refuses it too, appended to `dead_letter_dir/usage-dead-letters.jsonl`), logged
  once at WARNING and counted in `dead_lettered`. One bad record never blocks those behind it.

`pending`, `dropped`, `failed_writes` and `dead_lettered` are exported as metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from rolegate.accounting.records import UsageRecord
from rolegate.accounting.store import (
    RecordsRefused, StoreUnavailable, UsageStore, dead_letter_json,
)
from rolegate.tasks import BatchFlusher

log = logging.getLogger("rolegate.accounting")
MAX_PENDING = 100_000
DEAD_LETTER_FILE = "usage-dead-letters.jsonl"


class Recorder:
    """>>> recorder.record(UsageRecord(...))   # never blocks, never raises"""

    def __init__(self, store: UsageStore, *, flush_interval: float, batch_size: int,
                 max_pending: int = MAX_PENDING, dead_letter_dir: Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._dead_letter_dir = dead_letter_dir
        self._clock = clock
        self._queue: asyncio.Queue[UsageRecord] = asyncio.Queue()
        self._failed: list[UsageRecord] = []
        self._flusher = BatchFlusher(self.flush, interval=flush_interval)
        self.dropped = 0
        self.failed_writes = 0
        self.dead_lettered = 0

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
            self._flusher.wake()

    async def start(self) -> None:
        await self._flusher.start()

    async def stop(self) -> None:
        """Let the flusher finish its write, then write everything still queued."""
        if await self._flusher.stop():
            return
        log.error("%d usage records could not be written at shutdown",
                  self._queue.qsize() + len(self._failed))

    async def flush(self) -> bool:
        """Write everything queued now, in batches; False when the database was unavailable
        (what was not written waits for the next flush)."""
        while self._failed or not self._queue.empty():
            batch = self._failed or self._take(self._batch_size)
            self._failed = []
            try:
                await self._write(batch)
            except StoreUnavailable as exc:
                log.error("writing usage records failed (%s); %d wait for the next try",
                          exc.reason, len(self._failed))
                self.failed_writes += 1
                return False
        return True

    async def _write(self, batch: list[UsageRecord]) -> None:
        """Write `batch`, splitting the parts the database refuses until each refused record
        is alone, and set aside. On `StoreUnavailable`, what is left unwritten (in order) is
        kept in `_failed` for the next flush."""
        parts = [batch]
        while parts:
            part = parts.pop()
            try:
                await self._store.insert_many(part)
            except RecordsRefused as exc:
                if len(part) > 1:
                    half = len(part) // 2
                    parts += (part[half:], part[:half])  # the first half is tried first
                    continue
                try:
                    await self._set_aside(part[0], exc.reason)
                except StoreUnavailable:
                    self._failed = [record for left in reversed([*parts, part])
                                    for record in left]
                    raise
            except StoreUnavailable:
                self._failed = [record for left in reversed([*parts, part]) for record in left]
                raise

    async def _set_aside(self, record: UsageRecord, reason: str) -> None:
        where = "usage_dead_letters"
        try:
            await self._store.set_aside(record, reason, self._clock())
        except RecordsRefused as exc:
            where = self._append_to_file(record, f"{reason}; table: {exc.reason}")
        self.dead_lettered += 1
        log.warning("usage record of request %s set aside in %s: the database refused it "
                    "(%s)", json.dumps(record.request_id), where, reason)

    def _append_to_file(self, record: UsageRecord, reason: str) -> str:
        line = json.dumps({"ts": self._clock(), "reason": reason,
                           "record": json.loads(dead_letter_json(record))}) + "\n"
        if self._dead_letter_dir is not None:
            path = self._dead_letter_dir / DEAD_LETTER_FILE
            try:
                self._dead_letter_dir.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="ascii") as file:
                    file.write(line)
                return str(path)
            except OSError as exc:
                log.error("%s could not be written (%s)", path, type(exc).__name__)
        # The last place left: the record itself, in the log, rather than losing it.
        log.error("usage record set aside nowhere else: %s", line.rstrip())
        return "the log"

    def _take(self, count: int) -> list[UsageRecord]:
        taken: list[UsageRecord] = []
        while len(taken) < count and not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken
