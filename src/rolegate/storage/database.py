"""`Database`: the async engine for the configured URL, and schema migrations (Alembic).

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is used by URL. With
`database.schema`, every connection's `search_path` is that schema, so several deployments (or
test runs) can share one PostgreSQL database without seeing each other's tables.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from rolegate.config.model import DatabaseConfig

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaBehind(Exception):
    """The database's schema is not the one this version of rolegate needs."""

    def __init__(self, current: str | None, needed: str) -> None:
        self.current, self.needed = current, needed
        found = "has no rolegate tables" if current is None else f"is at revision {current}"
        super().__init__(f"The database schema {found} (this rolegate needs {needed})")


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

    async def upgrade(self, revision: str = "head") -> tuple[str | None, str | None]:
        """Bring the schema to `revision` (creating the PostgreSQL schema if it is missing);
        returns its revision before and after (None: no rolegate tables)."""
        async with self.engine.begin() as connection:
            if self.config.db_schema is not None and not self.config.is_sqlite:
                await connection.execute(
                    text(f'CREATE SCHEMA IF NOT EXISTS "{self.config.db_schema}"'))
            before = await connection.run_sync(_current_revision)
            await connection.run_sync(_run_upgrade, revision)
            return before, await connection.run_sync(_current_revision)

    async def revision(self) -> str | None:
        """The schema's revision; None when it has no rolegate tables."""
        async with self.engine.connect() as connection:
            return await connection.run_sync(_current_revision)

    async def verify_schema(self) -> None:
        """Raises `SchemaBehind` unless the schema is at the newest migration."""
        current, needed = await self.revision(), head_revision()
        if current != needed:
            raise SchemaBehind(current, needed)

    async def close(self) -> None:
        await self.engine.dispose()


def _engine(config: DatabaseConfig) -> AsyncEngine:
    assert config.url is not None
    # hide_parameters: an error's text (logged, or raised to a command) never carries the
    # statement's values: key hashes, subjects, model names.
    options: dict[str, Any] = {"pool_pre_ping": not config.is_sqlite, "hide_parameters": True}
    if config.is_sqlite:
        options["connect_args"] = {"timeout": 30}
    elif config.db_schema is not None:
        options["connect_args"] = {"server_settings": {"search_path": config.db_schema}}
    engine = create_async_engine(config.url, **options)
    event.listen(engine.sync_engine, "handle_error", _hide_values)
    if config.is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


# asyncpg quotes the value it could not encode: "invalid input for query argument $15: 10995…
# (value out of int32 range)".
_ARGUMENT = re.compile(r"(invalid input for query argument \$\d+): .*")


def _hide_values(context: ExceptionContext) -> None:
    """Take the statement's values out of a failed statement's error, as `hide_parameters`
    does for the parameters themselves: PostgreSQL quotes them in an error's DETAIL
    ("Key (key_hash)=(…) already exists") and asyncpg in its own messages. What is left: the
    error's class, its first line, and the statement."""
    error: BaseException | None = context.original_exception
    seen = 0
    while error is not None and seen < 5:  # the driver's error and the ones it chains
        if hasattr(error, "detail"):
            error.detail = None
        if error.args and isinstance(error.args[0], str):
            error.args = (_first_line(error.args[0]), *error.args[1:])
        error, seen = error.__cause__ or error.__context__, seen + 1
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.args and isinstance(wrapped.args[0], str):
        wrapped.args = (_first_line(wrapped.args[0]),)


def first_line(error: BaseException) -> str:
    """An error as one line, its class first: a driver's multi-line dump (DETAIL, the
    statement, a hint) never reaches a terminal or a log line."""
    text = str(error).strip().split("\n", 1)[0]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _first_line(message: str) -> str:
    return _ARGUMENT.sub(r"\1 (value hidden)", message.split("\n", 1)[0])


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets the usage writer and key lookups proceed side by side.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration's revision."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the migrations have one head"
    return head


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _run_upgrade(connection: Connection, revision: str) -> None:
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
