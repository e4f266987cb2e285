"""The usage spool: records the database could not take wait on disk, are written in order once
it can, are counted once however often they are replayed, and outlive the process that spooled
them (real SQLite and PostgreSQL, real files)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from rolegate.accounting.recorder import Recorder
from rolegate.accounting.spool import Spool, spooled_line
from rolegate.accounting.store import UsageStore
from rolegate.config.model import DatabaseConfig
from rolegate.storage.database import Database
from rolegate.storage.tables import usage, usage_dead_letters, usage_dimensions
from tests.unit.accounting.test_recorder import record

MIB = 1 << 20


def opened(directory: Path, max_bytes: int = MIB) -> Spool:
    spool = Spool(directory, max_bytes=max_bytes)
    spool.open()
    return spool


async def stored_request_ids(database: Database) -> list[str]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(select(usage.c.request_id).order_by(usage.c.id))
        return [row[0] for row in rows]


async def test_records_spooled_while_the_database_is_down_are_written_first_when_it_is_back(
        tmp_path: Path):
    database = Database(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'late.db'}"))
    spool = opened(tmp_path / "spool")
    recorder = Recorder(UsageStore(database.engine), flush_interval=60, batch_size=2,
                        spool=spool)
    for index in range(5):
        recorder.record(record(index))

    assert await recorder.flush() is False  # no tables yet: the write fails
    spooled_on_disk = sum(len(path.read_bytes().splitlines())
                          for path in (tmp_path / "spool").rglob("*.jsonl"))
    down = (recorder.pending, recorder.spooled, recorder.readiness())
    recorder.record(record(5))  # arrives while down: goes behind the spooled ones
    assert await recorder.flush() is False
    await database.upgrade()
    recorder.record(record(6))
    assert await recorder.flush() is True
    ids = await stored_request_ids(database)
    await database.close()

    assert spooled_on_disk == 5
    assert down[:2] == (0, 5) and down[2] is not None and "5 spooled" in down[2]
    assert ids == [f"r{index}" for index in range(7)]
    assert (recorder.spooled, recorder.readiness()) == (0, None)
    assert list((tmp_path / "spool").rglob("*.jsonl")) == []


@pytest.mark.parametrize("has_dimensions", [True, False], ids=["dimensions", "plain"])
async def test_a_record_replayed_after_it_was_written_is_counted_once(
        database: dict[str, Any], tmp_path: Path, has_dimensions: bool):
    """The process died after the database committed a spooled batch but before the segment
    was removed: the next start replays it, and the store skips ids it holds (plain records go
    by COPY on PostgreSQL, which the duplicate refuses whole: written again, skipping it)."""
    storage = Database(DatabaseConfig.model_validate(database))
    await storage.upgrade()
    store = UsageStore(storage.engine)
    batch = [dataclasses.replace(record(index), dimensions=(("team", f"t{index}"),)
                                 if has_dimensions else ())
             for index in range(4)]
    await store.insert_many(batch[:2])
    spool = opened(tmp_path / "spool")
    spool.append(batch)
    recorder = Recorder(store, flush_interval=60, batch_size=3, spool=spool)

    assert await recorder.flush() is True
    ids = await stored_request_ids(storage)
    async with storage.engine.connect() as connection:
        dimensions = (await connection.execute(
            select(usage_dimensions.c.value).order_by(usage_dimensions.c.value))).scalars().all()
        set_aside = (await connection.execute(
            select(func.count()).select_from(usage_dead_letters))).scalar_one()
    await storage.close()

    assert ids == ["r0", "r1", "r2", "r3"]
    assert dimensions == (["t0", "t1", "t2", "t3"] if has_dimensions else [])
    assert set_aside == 0  # a record already stored is skipped, not refused


async def test_the_next_process_replays_the_spool_a_crashed_one_left(tmp_path: Path):
    database = Database(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'u.db'}"))
    first = opened(tmp_path / "spool")
    first.append([record(0), record(1)])
    running = opened(tmp_path / "spool")  # another live process: its own slot, nothing adopted
    held_elsewhere = running.records
    first.close()  # the process is gone: the kernel drops its lock
    await database.upgrade()
    recorder = Recorder(UsageStore(database.engine), flush_interval=60, batch_size=10,
                        spool=Spool(tmp_path / "spool", max_bytes=MIB))

    await recorder.start()
    adopted = recorder.spooled
    await recorder.stop()
    ids = await stored_request_ids(database)
    await database.close()
    running.close()

    assert (held_elsewhere, adopted) == (0, 2)
    assert ids == ["r0", "r1"]


async def test_a_full_spool_refuses_new_records_until_the_database_takes_them(tmp_path: Path):
    database = Database(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'u.db'}"))
    line = len(spooled_line(record(0)))
    spool = opened(tmp_path / "spool", max_bytes=3 * line)
    recorder = Recorder(UsageStore(database.engine), flush_interval=60, batch_size=10,
                        spool=spool)
    for index in range(3):
        recorder.record(record(index))
    await recorder.flush()
    accepting_at_the_bound = recorder.is_accepting
    recorder.record(record(3))
    await recorder.flush()  # one more line does not fit: it waits in memory
    full = (recorder.is_accepting, recorder.spooled, recorder.pending)
    await database.upgrade()
    await recorder.flush()
    ids = await stored_request_ids(database)
    await database.close()

    assert accepting_at_the_bound is True
    assert full == (False, 3, 1)
    assert recorder.is_accepting is True
    assert ids == ["r0", "r1", "r2", "r3"]


def test_a_half_written_last_line_is_skipped_and_the_rest_kept(tmp_path: Path):
    spool = opened(tmp_path / "spool")
    written = [record(0), dataclasses.replace(record(1), dimensions=(("team", "a"),))]
    spool.append(written)
    assert spool.slot is not None
    (segment,) = spool.slot.glob("*.jsonl")
    with segment.open("ab") as file:
        file.write(spooled_line(record(2))[:40])  # the process died mid-write
    spool.close()

    again = opened(tmp_path / "spool")
    oldest = again.oldest()

    assert oldest is not None
    assert oldest[1] == written
    assert again.records == 2


async def test_write_ahead_records_are_on_disk_before_any_flush_and_outlive_the_process(
        tmp_path: Path):
    database = Database(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'u.db'}"))
    await database.upgrade()
    spool = opened(tmp_path / "spool")
    killed = Recorder(UsageStore(database.engine), flush_interval=60, batch_size=10,
                      spool=spool, is_write_ahead=True)
    for index in range(3):
        killed.record(record(index))
    on_disk = sum(len(path.read_bytes().splitlines())
                  for path in (tmp_path / "spool").rglob("*.jsonl"))
    spool.close()  # the process is killed: no flush, no stop

    restarted = Recorder(UsageStore(database.engine), flush_interval=60, batch_size=10,
                         spool=Spool(tmp_path / "spool", max_bytes=MIB), is_write_ahead=True)
    await restarted.start()
    restarted.record(record(3))
    await restarted.stop()
    ids = await stored_request_ids(database)
    await database.close()

    assert (on_disk, killed.pending) == (3, 0)
    assert ids == ["r0", "r1", "r2", "r3"]
