"""`UsageStore`: usage records in the database: written in batches, read as grouped totals; the
records the database refuses are set aside in `usage_dead_letters`.

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
from sqlalchemy import and_, case, func, insert, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rolegate.accounting.records import UsageRecord
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
_COPY_COLUMNS = [column.name for column in usage.columns if column.name != "id"]


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
            rows = [record.row() for record in records]
            has_dimensions = any(record.dimensions for record in records)
            if not has_dimensions and self._is_asyncpg:
                await self._copy(rows)
                return
            async with self._engine.begin() as connection:
                if not has_dimensions:
                    await connection.execute(insert(usage), rows)
                    return
                ids = (await connection.execute(
                    insert(usage).returning(usage.c.id, sort_by_parameter_order=True), rows,
                )).scalars().all()
                dimensions = [{"record_id": record_id, "name": name, "value": value}
                              for record_id, record in zip(ids, records, strict=True)
                              for name, value in record.dimensions]
                await connection.execute(insert(usage_dimensions), dimensions)
        except (SQLAlchemyError, OSError, PostgresError, InterfaceError, *_ROW_ERRORS) as exc:
            raise classify(exc) from None

    async def _copy(self, rows: list[dict[str, Any]]) -> None:
        """PostgreSQL: the rows in one COPY (binary), which costs this process a fraction of
        what a multi-row INSERT does (no statement to render, no parameters to bind); atomic
        like the INSERT: every row lands or none."""
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.copy_records_to_table(
                usage.name, columns=_COPY_COLUMNS,
                records=[tuple(row[name] for name in _COPY_COLUMNS) for row in rows])

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
        return [_totals_row(query.by, row) for row in rows]

    async def count(self) -> int:
        async with self._engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(usage)))
                       .scalar_one())


def columns_of(by: str) -> tuple[str, ...]:
    """The columns naming a group of `by`: a built-in grouping's, or `value` for a dimension."""
    return GROUPINGS.get(by, ("value",))


COST_DECIMALS = 6  # what a usage report gives a cost to (USD)


def _totals_row(by: str, row: Any) -> dict[str, Any]:
    # Plain str keys and Python numbers: drivers return Decimal sums and str subclasses.
    totals: dict[str, Any] = {name: row[name] for name in columns_of(by)}
    for name in ("requests", "prompt_tokens", "completion_tokens", "total_tokens",
                 "estimated_requests"):
        totals[name] = int(row[name])
    # Micro-dollars: a sum of per-request float costs carries float noise (0.30000000000000004).
    totals["cost_usd"] = round(float(row["cost_usd"]), COST_DECIMALS)
    return totals


def dead_letter_json(record: UsageRecord) -> str:
    """The record as one line of ASCII JSON (non-finite numbers as JSON's NaN/Infinity)."""
    return json.dumps(asdict(record), sort_keys=True)
