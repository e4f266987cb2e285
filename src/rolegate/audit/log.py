"""`AuditLog`: the process's one writer of the audit chain.

Authorization decisions are queued (`record`, never blocking a request) and written in batches by
a background task, as usage records are (`accounting/recorder.py`); admin changes are queued the
same way but their caller waits until they are written (`commit`), so an admin API response
means the change is in the chain. Every append goes through the one task, so this process never
reads a head another of its appends is about to move. `stop()` drains the queue: a graceful
stop loses nothing. When the database is unavailable the entries wait, in order, for the next
wake-up. With a mirror file, each written entry is also appended there as one JSON line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from rolegate.audit.chain import AuditEntry, AuditEvent
from rolegate.audit.store import AuditStore
from rolegate.tasks import BatchFlusher

log = logging.getLogger("rolegate.audit")
MAX_PENDING = 100_000

_Pending = tuple[AuditEvent, "asyncio.Future[AuditEntry] | None"]


class AuditLog:
    """>>> audit.record("authz", {"issuer": ..., "subject": ...}, {"decision": "allow", ...})"""

    def __init__(self, store: AuditStore, *, flush_interval: float, batch_size: int,
                 mirror: Path | None = None, max_pending: int = MAX_PENDING,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._batch_size = batch_size
        self._mirror = mirror
        self._max_pending = max_pending
        self._clock = clock
        self._pending: list[_Pending] = []
        self._writing = asyncio.Lock()  # one append at a time: each reads the head it follows
        self._flusher = BatchFlusher(self.flush, interval=flush_interval)
        self.failed_writes = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, kind: str, actor: dict[str, Any] | None, data: dict[str, Any]) -> None:
        """Queue an entry; it is written with the next batch. While the database is down, past
        `max_pending` waiting entries new ones are dropped (counted in `dropped`, logged at the
        first and every 10,000th) rather than growing without bound; admin changes (`commit`)
        are never dropped."""
        if len(self._pending) >= self._max_pending:
            if self.dropped % 10_000 == 0:
                log.error("the audit queue is full (%d entries): %d entries dropped so far",
                          len(self._pending), self.dropped + 1)
            self.dropped += 1
            return
        self._pending.append((AuditEvent(self._clock(), kind, actor, data), None))
        if len(self._pending) >= self._batch_size:
            self._flusher.wake()

    async def commit(self, kind: str, actor: dict[str, Any] | None,
                     data: dict[str, Any]) -> AuditEntry:
        """Queue an entry and wait until it is written."""
        written: asyncio.Future[AuditEntry] = asyncio.get_running_loop().create_future()
        self._pending.append((AuditEvent(self._clock(), kind, actor, data), written))
        if not self._flusher.is_running:  # no writer running (a command, a test): write now
            await self.flush()
        else:
            self._flusher.wake()
        return await written

    async def start(self) -> None:
        await self._flusher.start()

    async def stop(self) -> None:
        if await self._flusher.stop():
            return
        log.error("%d audit entries could not be written at shutdown", len(self._pending))

    async def flush(self) -> bool:
        """Write what is queued, in batches; False when the database was unavailable (what was
        not written stays queued, in order)."""
        async with self._writing:
            return await self._flush()

    async def _flush(self) -> bool:
        while self._pending:
            batch = self._pending[:self._batch_size]
            try:
                entries = await self._store.append([event for event, _ in batch])
            except SQLAlchemyError as exc:
                self.failed_writes += 1
                log.error("writing audit entries failed (%s); %d wait for the next try",
                          type(exc).__name__, len(self._pending))
                return False
            del self._pending[:len(batch)]
            self._mirror_lines(entries)
            for (_, written), entry in zip(batch, entries, strict=True):
                if written is not None and not written.done():
                    written.set_result(entry)
        return True

    def _mirror_lines(self, entries: list[AuditEntry]) -> None:
        if self._mirror is None:
            return
        try:
            with self._mirror.open("a", encoding="ascii") as file:
                file.writelines(entry.to_json() + "\n" for entry in entries)
        except OSError as exc:
            log.error("the audit mirror %s could not be written (%s)", self._mirror,
                      type(exc).__name__)
