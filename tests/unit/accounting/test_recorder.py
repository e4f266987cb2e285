"""`Recorder` writes usage in batches off the request path, keeps what it could not write, and
drains everything when stopped (real SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rolegate.accounting.records import UsageRecord
from rolegate.accounting.recorder import Recorder
from rolegate.accounting.store import UsageStore
from rolegate.config.model import DatabaseConfig
from rolegate.storage.database import Database


def record(index: int) -> UsageRecord:
    return UsageRecord(ts=1_750_000_000.0 + index, request_id=f"r{index}", issuer="apikey",
                       subject="team-a", client_id=None, key_id="key_1", end_user=None,
                       rule="services", model="echo", provider="mock", deployment="echo",
                       operation="chat/completions", is_stream=False, prompt_tokens=1,
                       completion_tokens=2, total_tokens=3, cost_usd=0.001, status=200,
                       latency_ms=1.0)


async def test_stop_writes_every_queued_record_in_batches(database: dict[str, Any]):
    store = Database(DatabaseConfig.model_validate(database))
    await store.upgrade()
    usage = UsageStore(store.engine)
    recorder = Recorder(usage, flush_interval=60, batch_size=7)
    await recorder.start()
    for index in range(50):
        recorder.record(record(index))

    await recorder.stop()
    count = await usage.count()
    await store.close()

    assert count == 50


async def test_records_that_failed_to_write_are_written_once_the_database_is_back(
        tmp_path: Path):
    store = Database(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'late.db'}"))
    usage = UsageStore(store.engine)
    recorder = Recorder(usage, flush_interval=60, batch_size=100)
    for index in range(5):
        recorder.record(record(index))

    failed = await recorder.flush()   # no tables yet: the write fails, the records stay
    await store.upgrade()
    written = await recorder.flush()
    count = await usage.count()
    await store.close()

    assert (failed, written, count) == (False, True, 5)


async def test_past_the_pending_bound_records_are_dropped_and_counted(tmp_path: Path):
    store = Database(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'u.db'}"))
    recorder = Recorder(UsageStore(store.engine), flush_interval=60, batch_size=100,
                        max_pending=3)

    for index in range(5):
        recorder.record(record(index))
    await store.close()

    assert recorder.dropped == 2
