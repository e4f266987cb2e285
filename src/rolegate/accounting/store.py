"""`UsageStore`: usage records in the database: written in batches, read as grouped totals; the
records the database refuses are set aside in `usage_dead_letters`.

A record whose `record_id` is already stored is skipped, not written again: replaying the spool
after a crash may offer the database records it had already committed.

Writing meets the driver's exceptions here and says what they mean for the records:
`RecordsRefused` (the data itself is refused, SQLSTATE classes 22 and 23, or cannot be turned
into a row: trying again cannot help) or `StoreUnavailable` (anything else: the database is
down, unreachable or not migrated; the same records can be written later).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from asyncpg import InterfaceError, PostgresError  # type: ignore[import-untyped]
from asyncpg import UniqueViolationError
from sqlalchemy import BigInteger, Insert, and_, case, cast, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rolegate.accounting.records import COLUMNS, UsageRecord
from rolegate.storage.tables import usage, usage_dead_letters, usage_dimensions

GROUPINGS: dict[str, tuple[str, ...]] = {
    "principal": ("issuer", "subject"),
    "client_id": ("client_id",),
    "key": ("key_id",),
    "end_user": ("end_user",),
    "model": ("model",),
    "day": ("day",),
}
FILTERS = ("issuer", "subject", "client_id", "key_id", "end_user", "model")


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Totals grouped `by` one of GROUPINGS, over [since, until), narrowed by `filters`."""

    by: str = "principal"
    since: float | None = None
    until: float | None = None
    filters: tuple[tuple[str, str], ...] = ()
    every: int | None = None  # seconds: totals also per time bucket (its start, `bucket`)


class StoreError(Exception):
    """A write failed. `reason` names the failure (exception classes, SQLSTATE) and never
    quotes a value: drivers' messages can (`invalid input for query argument $15: 1099…`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RecordsRefused(StoreError):
    """The database refuses these records' data: written again, they fail again."""


class StoreUnavailable(StoreError):
    """The write failed for a reason other than the data: try the same records later."""


# Python-side failures to turn a record into a row (NaN time, an int no column holds, text
# that cannot be encoded): as deterministic as the database refusing it.
_ROW_ERRORS = (ValueError, TypeError, OverflowError)
_DATA_SQLSTATE_CLASSES = ("22", "23")  # data exception, integrity constraint violation


def classify(exc: BaseException) -> StoreError:
    """What a failed write means for its records."""
    if isinstance(exc, _ROW_ERRORS):
        return RecordsRefused(type(exc).__name__)
    is_driver_own = isinstance(exc, PostgresError | InterfaceError)  # asyncpg's COPY raises
    orig = exc if is_driver_own else getattr(exc, "orig", None)
    state = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    names = type(exc).__name__ + (f" ({type(orig).__name__})"
                                  if orig is not None and not is_driver_own else "")
    reason = names + (f", SQLSTATE {state}" if state else "")
    if isinstance(exc, IntegrityError | DataError) or state[:2] in _DATA_SQLSTATE_CLASSES:
        return RecordsRefused(reason)
    if isinstance(exc, DBAPIError) and isinstance(orig, _ROW_ERRORS):
        return RecordsRefused(reason)
    return StoreUnavailable(reason)


class UsageStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._is_asyncpg = engine.dialect.driver == "asyncpg"

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        """Write the records in one transaction: all or none. `RecordsRefused` or
        `StoreUnavailable` when it fails."""
        if not records:
            return
        try:
            has_dimensions = any(record.dimensions for record in records)
            if not has_dimensions and self._is_asyncpg:
                await self._copy(records)
                return
            rows = [record.row() for record in records]
            async with self._engine.begin() as connection:
                if not has_dimensions:
                    await connection.execute(self._insert_new(), rows)
                    return
                # Only the rows written come back: a skipped record's dimensions are there.
                result = await connection.execute(
                    self._insert_new().returning(usage.c.record_id, usage.c.id), rows)
                written: dict[str, int] = {row[0]: row[1] for row in result}
                dimensions = [{"record_id": written[record.record_id], "name": name,
                               "value": value}
                              for record in records if record.record_id in written
                              for name, value in record.dimensions]
                if dimensions:
                    await connection.execute(insert(usage_dimensions), dimensions)
        except (SQLAlchemyError, OSError, PostgresError, InterfaceError, *_ROW_ERRORS) as exc:
            raise classify(exc) from None

    def _insert_new(self) -> Insert:
        """INSERT … ON CONFLICT (record_id) DO NOTHING, in the engine's dialect."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        statement: Insert = dialect.insert(usage).on_conflict_do_nothing(
            index_elements=[usage.c.record_id])
        return statement

    async def _copy(self, records: Sequence[UsageRecord]) -> None:
        """PostgreSQL: the rows in one COPY (binary), which costs this process a fraction of
        what a multi-row INSERT does (no statement to render, no parameters to bind); atomic
        like the INSERT: every row lands or none. A batch holding a record already stored (a
        spool replayed after a crash) is refused whole by the unique `record_id`, and written
        again with the INSERT that skips what is there."""
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            try:
                await driver.copy_records_to_table(
                    usage.name, columns=COLUMNS,
                    records=[record.values() for record in records])
            except UniqueViolationError:
                await connection.rollback()
                await connection.execute(self._insert_new(), [record.row() for record in records])
                await connection.commit()

    async def set_aside(self, record: UsageRecord, reason: str, now: float) -> None:
        """Keep a refused record in `usage_dead_letters`, as JSON text (ASCII: a NUL or a lone
        surrogate is escaped, so the text itself is always storable)."""
        row = {"ts": now, "request_id": json.dumps(record.request_id)[1:-1][:64],
               "reason": reason[:500], "record": dead_letter_json(record)}
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(usage_dead_letters), [row])
        except (SQLAlchemyError, OSError, *_ROW_ERRORS) as exc:
            raise classify(exc) from None

    async def dead_letters(self) -> list[dict[str, Any]]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(
                select(usage_dead_letters).order_by(usage_dead_letters.c.id))).mappings().all()
        return [dict(row) for row in rows]

    async def totals(self, query: UsageQuery) -> list[dict[str, Any]]:
        """Totals per group of `query.by`: a built-in grouping, or else a dimension's name (a
        record counts under each of its values; records without one under `value` None)."""
        source: Any = usage
        if query.by in GROUPINGS:
            keys = [usage.c[name] for name in GROUPINGS[query.by]]
        else:
            source = usage.outerjoin(usage_dimensions, and_(
                usage_dimensions.c.record_id == usage.c.id,
                usage_dimensions.c.name == query.by))
            keys = [usage_dimensions.c.value]
        if query.every is not None:
            keys.insert(0, _bucket(query.every))
        statement = select(
            *keys, func.count().label("requests"),
            func.coalesce(func.sum(usage.c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(usage.c.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(usage.c.total_tokens), 0).label("total_tokens"),
            func.coalesce(func.sum(usage.c.cost_usd), 0.0).label("cost_usd"),
            func.coalesce(func.sum(case((usage.c.estimated, 1), else_=0)), 0)
            .label("estimated_requests"),
        ).select_from(source).group_by(*keys).order_by(*keys)
        if query.since is not None:
            statement = statement.where(usage.c.ts >= query.since)
        if query.until is not None:
            statement = statement.where(usage.c.ts < query.until)
        for name, value in query.filters:
            statement = statement.where(usage.c[name] == value)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [_totals_row(query, row) for row in rows]

    async def activity(self, since: float, every: int) -> list[dict[str, Any]]:
        """Per time bucket of `every` seconds since `since`, and per model: requests, errors
        (status 400 or more) and the count of latencies (`latencies` gives them)."""
        bucket = _bucket(every)
        statement = select(
            bucket, usage.c.model, func.count().label("requests"),
            func.coalesce(func.sum(case((usage.c.status >= 400, 1), else_=0)), 0)
            .label("errors"),
        ).where(usage.c.ts >= since).group_by(bucket, usage.c.model).order_by(bucket)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [{"bucket": int(row["bucket"]) * every, "model": str(row["model"]),
                 "requests": int(row["requests"]), "errors": int(row["errors"])}
                for row in rows]

    async def latencies(self, since: float, *, limit: int) -> list[tuple[float, str, float]]:
        """(ts, model, latency_ms) of the newest `limit` requests since `since`."""
        statement = (select(usage.c.ts, usage.c.model, usage.c.latency_ms)
                     .where(usage.c.ts >= since).order_by(usage.c.ts.desc()).limit(limit))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [(float(ts), str(model), float(latency)) for ts, model, latency in rows]

    async def count(self) -> int:
        async with self._engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(usage)))
                       .scalar_one())


def columns_of(by: str) -> tuple[str, ...]:
    """The columns naming a group of `by`: a built-in grouping's, or `value` for a dimension."""
    return GROUPINGS.get(by, ("value",))


COST_DECIMALS = 6  # what a usage report gives a cost to (USD)


def _bucket(every: int) -> Any:
    """The time bucket of a record, as a whole number of `every` seconds since the epoch. The
    time's floor, written so both databases agree: casting to an integer truncates in SQLite
    but rounds in PostgreSQL, so one is taken off where the cast went above the time; then
    integer division, which both do alike."""
    whole = cast(usage.c.ts, BigInteger)
    floor = whole - case((whole > usage.c.ts, 1), else_=0)
    return (floor // every).label("bucket")


def _totals_row(query: UsageQuery, row: Any) -> dict[str, Any]:
    # Plain str keys and Python numbers: drivers return Decimal sums and str subclasses.
    totals: dict[str, Any] = {}
    if query.every is not None:
        totals["bucket"] = int(row["bucket"]) * query.every
    totals.update({name: row[name] for name in columns_of(query.by)})
    for name in ("requests", "prompt_tokens", "completion_tokens", "total_tokens",
                 "estimated_requests"):
        totals[name] = int(row[name])
    # Micro-dollars: a sum of per-request float costs carries float noise (0.30000000000000004).
    totals["cost_usd"] = round(float(row["cost_usd"]), COST_DECIMALS)
    return totals


def dead_letter_json(record: UsageRecord) -> str:
    """The record as one line of ASCII JSON (non-finite numbers as JSON's NaN/Infinity)."""
    return json.dumps(asdict(record), sort_keys=True)
