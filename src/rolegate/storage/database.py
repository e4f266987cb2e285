"""`Database`: the async engine for the configured URL, and schema migrations (Alembic).

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is used by URL. With
`database.schema`, every connection's `search_path` is that schema, so several deployments (or
test runs) can share one PostgreSQL database without seeing each other's tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from rolegate.config.model import DatabaseConfig

MIGRATIONS = Path(__file__).parent / "migrations"


class Database:
    """Owns the engine. `await database.upgrade()` applies migrations; `close()` disposes it.

    >>> database = Database(DatabaseConfig(url="sqlite+aiosqlite:///rolegate.db"))
    """

    def __init__(self, config: DatabaseConfig) -> None:
        if config.url is None:
            raise ValueError("database.url is not set")
        self.config = config
        self.engine: AsyncEngine = _engine(config)

    @property
    def migrates_on_start(self) -> bool:
        if self.config.migrate_on_start is not None:
            return self.config.migrate_on_start
        return self.config.is_sqlite

    async def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to `revision` (creating the PostgreSQL schema if it is missing)."""
        async with self.engine.begin() as connection:
            if self.config.db_schema is not None and not self.config.is_sqlite:
                await connection.execute(
                    text(f'CREATE SCHEMA IF NOT EXISTS "{self.config.db_schema}"'))
            await connection.run_sync(_run_upgrade, revision)

    async def close(self) -> None:
        await self.engine.dispose()


def _engine(config: DatabaseConfig) -> AsyncEngine:
    assert config.url is not None
    options: dict[str, Any] = {"pool_pre_ping": not config.is_sqlite}
    if config.is_sqlite:
        options["connect_args"] = {"timeout": 30}
    elif config.db_schema is not None:
        options["connect_args"] = {"server_settings": {"search_path": config.db_schema}}
    engine = create_async_engine(config.url, **options)
    if config.is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets the usage writer and key lookups proceed side by side.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _run_upgrade(connection: Connection, revision: str) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
