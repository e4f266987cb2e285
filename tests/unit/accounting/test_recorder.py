"""`Recorder` writes usage in batches off the request path, keeps what it could not write, and
drains everything when stopped (real SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from rolegate.accounting.records import UsageRecord
from rolegate.accounting.recorder import Recorder
from rolegate.accounting.store import UsageQuery, UsageStore
from rolegate.config.model import DatabaseConfig
from rolegate.storage.database import Database
from tests.support.process import free_port
from tests.support.storage import POSTGRES_URL


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


async def open_store(database: dict[str, Any]) -> tuple[Database, UsageStore]:
    storage = Database(DatabaseConfig.model_validate(database))
    await storage.upgrade()
    return storage, UsageStore(storage.engine)


# Refused by both databases: no integer column holds 2**70; no day has a NaN time.
REFUSED_EVERYWHERE = {"r7": {"prompt_tokens": 2**70}, "r13": {"ts": float("nan")}}


def batch(count: int, bad: dict[str, dict[str, Any]]) -> list[UsageRecord]:
    made = [record(index) for index in range(count)]
    return [dataclasses.replace(one, **bad.get(one.request_id, {})) for one in made]


async def test_records_the_database_refuses_are_set_aside_and_the_rest_land(
        database: dict[str, Any], caplog: pytest.LogCaptureFixture):
    storage, usage = await open_store(database)
    recorder = Recorder(usage, flush_interval=60, batch_size=20, clock=lambda: 42.0)
    for one in batch(20, REFUSED_EVERYWHERE):
        recorder.record(one)

    with caplog.at_level(logging.WARNING, logger="rolegate.accounting"):
        written = await recorder.flush()
    count = await usage.count()
    letters = await usage.dead_letters()
    await storage.close()

    assert (written, count, recorder.dead_lettered, recorder.pending) == (True, 18, 2, 0)
    assert recorder.failed_writes == 0
    assert [letter["request_id"] for letter in letters] == ["r7", "r13"]
    assert json.loads(letters[0]["record"])["prompt_tokens"] == 2**70
    assert letters[0]["ts"] == 42.0
    warnings = [line for line in caplog.records if line.name == "rolegate.accounting"]
    assert len(warnings) == 2
    assert all(line.levelno == logging.WARNING and line.exc_info is None for line in warnings)
    assert str(2**70) not in caplog.text and "INSERT" not in caplog.text


async def test_a_nul_in_a_model_name_does_not_block_postgresql_accounting(
        postgres_schema: str):
    """PostgreSQL refuses NUL in text: once, such a record made its batch fail forever and
    every record queued behind it wait. It is set aside; the ones before and after it land."""
    database = {"url": POSTGRES_URL, "schema": postgres_schema}
    storage, usage = await open_store(database)
    async with storage.engine.begin() as connection:
        await connection.execute(text("TRUNCATE usage_records, usage_dead_letters"))
    recorder = Recorder(usage, flush_interval=60, batch_size=8)
    for one in batch(8, {"r3": {"model": "gpt\x00-4o"}}):
        recorder.record(one)

    first = await recorder.flush()
    for index in range(100, 110):
        recorder.record(record(index))
    later = await recorder.flush()
    count = await usage.count()
    letters = await usage.dead_letters()
    await storage.close()

    assert (first, later, count, recorder.dead_lettered) == (True, True, 17, 1)
    assert json.loads(letters[0]["record"])["model"] == "gpt\x00-4o"
    assert "SQLSTATE 22021" in letters[0]["reason"]


async def test_an_unreachable_database_keeps_every_record_and_sets_none_aside():
    unreachable = Database(DatabaseConfig(url=f"postgresql+asyncpg://postgres@127.0.0.1:"
                                              f"{free_port()}/test"))
    recorder = Recorder(UsageStore(unreachable.engine), flush_interval=60, batch_size=4)
    for one in batch(10, REFUSED_EVERYWHERE):
        recorder.record(one)

    written = await recorder.flush()
    await unreachable.close()

    assert (written, recorder.pending, recorder.dead_lettered) == (False, 10, 0)
    assert recorder.failed_writes == 1


async def test_a_record_even_the_dead_letter_table_refuses_goes_to_the_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    storage, usage = await open_store({"url": f"sqlite+aiosqlite:///{tmp_path / 'u.db'}"})
    async with storage.engine.begin() as connection:
        await connection.execute(text(
            "CREATE TRIGGER refuse BEFORE INSERT ON usage_dead_letters "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    recorder = Recorder(usage, flush_interval=60, batch_size=20,
                        dead_letter_dir=tmp_path / "letters")
    for one in batch(20, REFUSED_EVERYWHERE):
        recorder.record(one)

    written = await recorder.flush()
    count = await usage.count()
    await storage.close()
    lines = (tmp_path / "letters" / "usage-dead-letters.jsonl").read_text().splitlines()

    assert (written, count, recorder.dead_lettered) == (True, 18, 2)
    assert [json.loads(line)["record"]["request_id"] for line in lines] == ["r7", "r13"]
    assert "IntegrityError" in json.loads(lines[0])["reason"]


async def test_identities_longer_than_their_columns_land_shortened_and_distinct(
        database: dict[str, Any]):
    """A subject or end user from a token may be longer than its column: the record must still
    land (a refused record would go unpaid), and two such identities must keep apart totals."""
    store = Database(DatabaseConfig.model_validate(database))
    await store.upgrade()
    usage = UsageStore(store.engine)
    recorder = Recorder(usage, flush_interval=60, batch_size=10)
    long_subjects = ["s" * 300 + "-alice", "s" * 300 + "-bob"]
    for index, subject in enumerate(long_subjects):
        recorder.record(dataclasses.replace(record(index), subject=subject,
                                            end_user="u" * 500, issuer="i" * 250))

    await recorder.stop()
    totals = await usage.totals(UsageQuery(by="principal"))
    dead = await _dead_letters(store)
    await store.close()

    assert dead == 0
    assert len(totals) == 2
    assert all(len(row["subject"]) == 200 and len(row["issuer"]) == 200 for row in totals)
    assert totals[0]["subject"] != totals[1]["subject"]


async def _dead_letters(store: Database) -> int:
    async with store.engine.connect() as connection:
        return int((await connection.execute(
            text("SELECT count(*) FROM usage_dead_letters"))).scalar_one())


class ArrivalsDuringWrites(UsageStore):
    """A real store where requests keep finishing while each batch is written, as under load;
    it notes the size of every batch."""

    def __init__(self, store: UsageStore, recorder: list[Recorder], arrivals: int) -> None:
        super().__init__(store._engine)
        self.batches: list[int] = []
        self._recorder = recorder
        self._arrivals = arrivals

    async def insert_many(self, records: Any) -> None:
        self.batches.append(len(records))
        await super().insert_many(records)
        for index in range(self._arrivals):
            self._recorder[0].record(record(1000 + len(self.batches) * 100 + index))


async def test_records_arriving_during_a_write_wait_for_a_full_batch_or_the_next_flush(
        tmp_path: Path):
    store = Database(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'load.db'}"))
    await store.upgrade()
    holder: list[Recorder] = []
    usage = ArrivalsDuringWrites(UsageStore(store.engine), holder, arrivals=3)
    recorder = Recorder(usage, flush_interval=60, batch_size=10)
    holder.append(recorder)
    for index in range(25):
        recorder.record(record(index))

    await recorder.flush()
    pending_after_flush = recorder.pending
    batches = list(usage.batches)
    await store.close()

    # The 25 queued when it started, in batches of 10: the 9 that came meanwhile wait.
    assert batches == [10, 10, 5]
    assert pending_after_flush == 9
