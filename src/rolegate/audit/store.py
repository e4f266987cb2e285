"""`AuditStore`: the audit log's table. Appending reads the chain's head and inserts after it in
one transaction.

Two writers must never both append after the same head (the chain would fork). In one process
`AuditLog` is the only writer. Across processes and replicas: on PostgreSQL each append first
takes a transaction-level advisory lock, so appends run one at a time; on any database `seq` is
the primary key, so an append that lost a race fails on the key and is retried on the new head.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rolegate.audit.chain import AuditEntry, AuditEvent, canonical, link
from rolegate.storage.tables import audit_log

# pg_advisory_xact_lock's key: any constant the gateway's other locks don't use.
LOCK_KEY = 0x726F6C6567617465  # "rolegate"
RACE_ATTEMPTS = 20
PAGE = 1000


class AuditStore:
    """>>> entries = await AuditStore(engine).append([AuditEvent(...)])"""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._is_postgres = engine.dialect.name == "postgresql"

    async def append(self, events: Sequence[AuditEvent]) -> list[AuditEntry]:
        """Append `events` after the current head; the entries as stored."""
        for attempt in range(RACE_ATTEMPTS):
            try:
                async with self._engine.begin() as connection:
                    return await self._append(connection, events)
            except (IntegrityError, OperationalError):
                # Another process appended after the head read here (the seq key), or held
                # SQLite's write lock past its timeout: read the new head and try again.
                if attempt == RACE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _append(self, connection: AsyncConnection,
                      events: Sequence[AuditEvent]) -> list[AuditEntry]:
        if self._is_postgres:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": LOCK_KEY})
        head = (await connection.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc())
            .limit(1))).first()
        entries = link(None if head is None else (int(head.seq), str(head.hash)), events)
        await connection.execute(insert(audit_log), [_row(entry) for entry in entries])
        return entries

    async def entries(self, *, since: float | None = None) -> AsyncIterator[AuditEntry]:
        """Every entry in seq order (from the first with `ts >= since`, when given), read in
        pages."""
        after = 0
        while True:
            query = select(audit_log).where(audit_log.c.seq > after)
            if since is not None:
                query = query.where(audit_log.c.ts >= since)
            async with self._engine.connect() as connection:
                rows = (await connection.execute(
                    query.order_by(audit_log.c.seq).limit(PAGE))).all()
            for row in rows:
                yield AuditEntry(seq=int(row.seq), ts=float(row.ts), kind=row.kind,
                                 actor=None if row.actor is None else json.loads(row.actor),
                                 data=json.loads(row.data), prev_hash=row.prev_hash,
                                 hash=row.hash)
            if len(rows) < PAGE:
                return
            after = int(rows[-1].seq)

    async def count(self) -> int:
        async with self._engine.connect() as connection:
            return int((await connection.execute(
                select(func.count()).select_from(audit_log))).scalar_one())


def _row(entry: AuditEntry) -> dict[str, object]:
    return {"seq": entry.seq, "ts": entry.ts, "kind": entry.kind,
            "actor": None if entry.actor is None else canonical(entry.actor),
            "data": canonical(entry.data), "prev_hash": entry.prev_hash, "hash": entry.hash}
