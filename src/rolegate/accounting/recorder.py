"""`Recorder`: usage records go into a queue in memory and a background task writes them in
batches, so no request waits for the database.

The flusher wakes every `flush_interval` seconds, or as soon as `batch_size` records are waiting,
and writes what is queued in batches of at most `batch_size`. `stop()` (run at lifespan
shutdown, which uvicorn runs on SIGTERM after in-flight requests finish) lets a write in progress
finish and then drains the queue, so a graceful stop loses nothing; a crash loses at most the
records of the last interval. Past `max_pending` waiting records, new ones are dropped and
counted in `dropped`.

A failed write means one of two things (`accounting/store.py` tells them apart):

- the database is unavailable: the records wait (in order, none written twice) and the write is
  retried at the next wake-up; counted in `failed_writes`. With a `spool` (`accounting/spool.py`)
  they wait on disk instead, fsync'd, so a crash loses none of them, and every record after them
  joins the spool too until it has been replayed (in order, before anything newer). A record
  replayed twice (the process died between the database's commit and the spool's clean-up) is
  stored once: the store skips a `record_id` it already holds. While the spool is full the
  recorder is not `is_accepting` (the gateway refuses paid requests) and what could not be
  spooled waits in memory;
- the database refuses the data: the batch is split in halves, again and again, so the good
  records land and each record refused even alone is set aside in `usage_dead_letters` (or, if
  the table refuses it too, appended to `dead_letter_dir/usage-dead-letters.jsonl`), logged
  once at WARNING and counted in `dead_lettered`. One bad record never blocks those behind it.

With `is_write_ahead` (`accounting.write_ahead`), `record` appends each record to the spool
itself, before the response ends, and the flusher writes the spool: a process killed outright
(SIGKILL, the OOM killer) loses no record either, at the cost of one file append per request.

`pending`, `spooled`, `dropped`, `failed_writes` and `dead_lettered` are exported as metrics;
`readiness()` says why the database is not taking records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from rolegate.accounting.records import UsageRecord
from rolegate.accounting.spool import Spool, SpoolFull
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
                 spool: Spool | None = None, is_write_ahead: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._dead_letter_dir = dead_letter_dir
        self._spool = spool
        self._is_write_ahead = is_write_ahead and spool is not None
        self._clock = clock
        # A plain list, swapped or sliced by the flusher: an asyncio.Queue's put and get cost
        # more per record, and no one ever waits on this one.
        self._queue: list[UsageRecord] = []
        self._failed: list[UsageRecord] = []
        self._flusher = BatchFlusher(self.flush, interval=flush_interval)
        self.dropped = 0
        self.failed_writes = 0
        self.dead_lettered = 0
        self.last_error: str | None = None  # why the last write failed; None: it succeeded
        self._is_spool_full = False

    @property
    def pending(self) -> int:
        """Records waiting to be written (queued, or kept from a failed write)."""
        return len(self._queue) + len(self._failed)

    @property
    def spooled(self) -> int:
        """Records waiting on disk (the spool's depth)."""
        return 0 if self._spool is None else self._spool.records

    @property
    def is_accepting(self) -> bool:
        """False while the spool is full: a new request's record could not be kept."""
        return not self._is_spool_full

    def readiness(self) -> str | None:
        """None when the last write succeeded; else why not, and what waits."""
        if self.last_error is None:
            return None
        return (f"usage records cannot be written ({self.last_error}); {self.pending} waiting "
                f"in memory, {self.spooled} spooled on disk")

    def record(self, record: UsageRecord) -> None:
        if self._is_write_ahead and not self._is_spool_full:
            assert self._spool is not None
            try:
                self._spool.append((record,), is_synced=False)
                return
            except (SpoolFull, OSError) as exc:  # this one waits in memory, as without a spool
                log.error("usage record of request %s kept in memory: the spool refused it "
                          "(%s)", json.dumps(record.request_id), exc)
        if len(self._queue) + len(self._failed) >= self._max_pending:
            self.dropped += 1
            return
        self._queue.append(record)
        if len(self._queue) >= self._batch_size:
            self._flusher.wake()

    async def start(self) -> None:
        if self._spool is not None and self._spool.slot is None:
            await asyncio.to_thread(self._spool.open)
        await self._flusher.start()

    async def stop(self) -> None:
        """Let the flusher finish its write, then write everything still queued."""
        if not await self._flusher.stop():
            where = "are spooled" if self._spool is not None and not self.pending else \
                "could not be written"
            log.error("%d usage records %s at shutdown", self.pending + self.spooled, where)
        if self._spool is not None:
            self._spool.close()

    async def flush(self) -> bool:
        """Write everything queued now, in batches, after what is spooled; False when the
        database was unavailable (what was not written waits for the next flush). Records
        queued while it writes wait for the next one, unless a full batch of them is
        waiting: under load, a flush that wrote until the queue was empty wrote a stream of
        batches of a few records each, each paying a transaction."""
        try:
            await self._replay()
            queued = len(self._queue)
            while self._failed or queued > 0 or len(self._queue) >= self._batch_size:
                if self._failed:
                    batch, self._failed = self._failed, []
                else:
                    batch = self._take(min(self._batch_size, queued) if queued > 0
                                       else self._batch_size)
                    queued -= len(batch)
                await self._write(batch)
        except StoreUnavailable as exc:
            self.failed_writes += 1
            self.last_error = exc.reason
            await self._spool_waiting()
            log.error("writing usage records failed (%s); %d wait in memory, %d in the spool",
                      exc.reason, self.pending, self.spooled)
            return False
        self.last_error = None
        self._is_spool_full = False
        return True

    async def _replay(self) -> None:
        """Write the spooled records, oldest segment first, removing each once written."""
        spool = self._spool
        while spool is not None and (oldest := await asyncio.to_thread(spool.oldest)):
            segment, records = oldest
            kept, self._failed = self._failed, []  # what waits in memory comes after these
            try:
                for start in range(0, len(records), self._batch_size):
                    await self._write(records[start:start + self._batch_size])
            finally:
                self._failed = kept  # what the failed write left is still in the segment
            await asyncio.to_thread(spool.remove, segment)
            if self.last_error is not None:  # not each write-ahead flush: after an outage
                log.info("%d spooled usage records written", len(records))

    async def _spool_waiting(self) -> None:
        """Move what waits in memory to the spool, in order (nothing happens without one)."""
        if self._spool is None:
            return
        waiting = self._failed + self._take(len(self._queue))
        try:
            await asyncio.to_thread(self._spool.append, waiting)
        except (SpoolFull, OSError) as exc:
            self._failed = waiting
            if not self._is_spool_full:
                log.error("usage records cannot be spooled (%s): paid requests are refused "
                          "until the database takes them", exc)
            self._is_spool_full = True
            return
        self._failed = []
        self._is_spool_full = False

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
        """The first `count` records queued (fewer when fewer are), in order."""
        queue = self._queue
        if count >= len(queue):
            self._queue = []
            return queue
        taken, self._queue = queue[:count], queue[count:]
        return taken
