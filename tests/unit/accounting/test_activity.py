"""The usage store's time buckets (`activity`, `latencies`, `totals(every=...)`) on real SQLite
and PostgreSQL: a record lands in the bucket its time falls in, on either database, even just
before a bucket's end (where PostgreSQL's rounding cast could have moved it)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from rolegate.accounting.store import UsageQuery, UsageStore
from rolegate.config.model import DatabaseConfig
from rolegate.console.overview import percentile
from rolegate.storage.database import Database
from tests.unit.accounting.test_recorder import record

START = 1_750_000_000.0 - 1_750_000_000.0 % 3600  # a whole hour
MINUTE = 60


@pytest.fixture
async def usage(database: dict[str, Any]):
    storage = Database(DatabaseConfig.model_validate(database))
    await storage.upgrade()
    yield UsageStore(storage.engine)
    await storage.close()


def at(ts: float, **fields: Any):
    return dataclasses.replace(record(int(ts)), ts=ts, request_id=f"r{ts}", **fields)


async def test_activity_counts_requests_and_errors_per_bucket_and_model(usage: UsageStore):
    await usage.insert_many([
        at(START + 1, model="a"), at(START + 59.6, model="a", status=502),
        at(START + 60.2, model="a"), at(START + 61, model="b", status=429),
        at(START - 1, model="a"),  # before the period asked for
    ])

    rows = await usage.activity(START, MINUTE)

    assert rows == [
        {"bucket": START, "model": "a", "requests": 2, "errors": 1},
        {"bucket": START + 60, "model": "a", "requests": 1, "errors": 0},
        {"bucket": START + 60, "model": "b", "requests": 1, "errors": 1},
    ]


async def test_latencies_are_the_newest_first_and_bounded(usage: UsageStore):
    await usage.insert_many([at(START + index, latency_ms=float(index)) for index in range(10)])

    newest = await usage.latencies(START + 2, limit=3)

    assert newest == [(START + 9, "echo", 9.0), (START + 8, "echo", 8.0),
                      (START + 7, "echo", 7.0)]
    assert percentile([latency for _, _, latency in newest], 0.5) == 8.0


async def test_totals_per_bucket_name_each_bucket_by_its_start(usage: UsageStore):
    await usage.insert_many([at(START + 10, model="a"), at(START + 3599.6, model="a"),
                             at(START + 3600, model="a")])

    rows = await usage.totals(UsageQuery(by="model", since=START, every=3600))

    assert [(row["bucket"], row["model"], row["requests"]) for row in rows] == [
        (START, "a", 2), (START + 3600, "a", 1)]
