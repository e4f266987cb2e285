"""`AuditLog`, the process's one writer: entries wait in order while the database is down and
land once it is back, a stop drains the queue, and a full queue drops new decisions, never
admin changes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError

from rolegate.audit.chain import AuditEntry, AuditEvent, first_break, link
from rolegate.audit.log import AuditLog


class FakeStore:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self.is_down = False

    async def append(self, events: Sequence[AuditEvent]) -> list[AuditEntry]:
        if self.is_down:
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        head = (self.entries[-1].seq, self.entries[-1].hash) if self.entries else None
        written = link(head, events)
        self.entries += written
        return written


def audit_log(store: FakeStore, **options: int) -> AuditLog:
    return AuditLog(store, flush_interval=3600, batch_size=2,  # type: ignore[arg-type]
                    clock=lambda: 1000.0, **options)


async def test_entries_wait_in_order_while_the_database_is_down_and_land_after():
    store = FakeStore()
    audit = audit_log(store)
    store.is_down = True
    for index in range(5):
        audit.record("authz", None, {"n": index})

    assert await audit.flush() is False
    store.is_down = False
    assert await audit.flush() is True

    assert [entry.data["n"] for entry in store.entries] == [0, 1, 2, 3, 4]
    assert first_break(store.entries) is None
    assert audit.failed_writes == 1 and audit.pending == 0


async def test_stop_writes_everything_still_queued():
    store = FakeStore()
    audit = audit_log(store)
    await audit.start()
    audit.record("authz", None, {"n": 1})
    committed = asyncio.ensure_future(audit.commit("key.revoke", {"issuer": "i", "subject": "s"},
                                                   {"key": {"id": "k"}}))
    await asyncio.sleep(0)  # the commit is queued
    audit.record("authz", None, {"n": 2})

    await audit.stop()

    assert (await committed).kind == "key.revoke"
    assert [entry.kind for entry in store.entries] == ["authz", "key.revoke", "authz"]


async def test_a_full_queue_drops_new_decisions_but_not_admin_changes():
    store = FakeStore()
    audit = audit_log(store, max_pending=3)
    store.is_down = True
    for index in range(5):
        audit.record("authz", None, {"n": index})
    change = asyncio.ensure_future(audit.commit("key.create", None, {"key": {"id": "k"}}))
    await asyncio.sleep(0)
    store.is_down = False
    await audit.flush()

    assert audit.dropped == 2
    assert (await change).seq == 4
    assert [entry.data.get("n") for entry in store.entries] == [0, 1, 2, None]
