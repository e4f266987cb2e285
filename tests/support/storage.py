"""Fixtures for the database, Redis and an in-process gateway whose lifespan runs.

Every test that takes `database` runs twice: on a fresh SQLite file and on PostgreSQL. The
PostgreSQL runs share one schema made for this test session (named after the process and a
random suffix, so parallel sessions on the same server never collide), emptied before each test
and dropped at the end. Redis keys get a prefix unique to the test and are deleted after it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from rolegate.app import build_app
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.config.model import DatabaseConfig, Settings
from rolegate.providers.http import HttpClient
from rolegate.storage.database import Database
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.lifespan import Lifespan

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
PEPPER = "test-pepper-0123456789abcdef"
DEV_ISSUER = "http://rolegate.test/dev"


def run_apart(coroutine: Any) -> Any:
    """Run a coroutine on a loop of its own, leaving the test's loop alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


async def _migrate(config: DatabaseConfig) -> None:
    database = Database(config)
    try:
        await database.upgrade()
    finally:
        await database.close()


async def _execute(config: DatabaseConfig, statement: str) -> None:
    database = Database(config)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await database.close()


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    schema = f"rg_test_{os.getpid()}_{secrets.token_hex(3)}"
    config = DatabaseConfig.model_validate({"url": POSTGRES_URL, "schema": schema})
    run_apart(_migrate(config))
    yield schema
    run_apart(_execute(DatabaseConfig(url=POSTGRES_URL),
                         f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The `database` section of a configuration, on SQLite or on PostgreSQL."""
    if request.param == "sqlite":
        return {"url": f"sqlite+aiosqlite:///{tmp_path / 'rolegate.db'}"}
    schema = request.getfixturevalue("postgres_schema")
    section = {"url": POSTGRES_URL, "schema": schema, "migrate_on_start": True}
    run_apart(_execute(DatabaseConfig.model_validate(section),
                         "TRUNCATE api_keys, usage_records, usage_dimensions, usage_dead_letters, "
                         "audit_log "
                         "RESTART IDENTITY"))
    return section


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"rg-test-{secrets.token_hex(6)}"
    yield prefix
    client = Redis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def limits_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Where limit counters live: this process, or the real Redis under a prefix of its own."""
    if request.param == "memory":
        return {"backend": "memory"}
    return {"backend": "redis", "url": REDIS_URL,
            "prefix": request.getfixturevalue("redis_prefix")}


@pytest.fixture
def dev_issuer() -> DevIssuer:
    return DevIssuer.generate(DEV_ISSUER, "rolegate")


@pytest.fixture
async def gateway_for(clock: FakeClock, key_source: FakeKeySource, dev_issuer: DevIssuer
                      ) -> AsyncIterator[Callable[[Settings], Any]]:
    """Builds the app for settings, runs its start-up, returns an httpx client speaking to it
    in-process; shuts it down (flushing usage) when the test ends, or on `await stop(client)`."""
    http = HttpClient()
    running: list[tuple[httpx.AsyncClient, Lifespan]] = []

    async def make(settings: Settings) -> httpx.AsyncClient:
        app = build_app(settings, clock=clock, fetch=key_source, http=http,
                        dev_issuer=dev_issuer)
        lifespan = Lifespan(app)
        await lifespan.startup()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://rolegate.test")
        running.append((client, lifespan))
        return client

    yield make
    for client, lifespan in running:
        await client.aclose()
        await lifespan.shutdown()
    await http.close()
