"""`UsageStore`: usage records in the database: written in batches, read as grouped totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from rolegate.accounting.records import UsageRecord
from rolegate.storage.tables import usage

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


class UsageStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        async with self._engine.begin() as connection:
            await connection.execute(insert(usage), [record.row() for record in records])

    async def totals(self, query: UsageQuery) -> list[dict[str, Any]]:
        keys = [usage.c[name] for name in GROUPINGS[query.by]]
        statement = select(
            *keys, func.count().label("requests"),
            func.coalesce(func.sum(usage.c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(usage.c.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(usage.c.total_tokens), 0).label("total_tokens"),
            func.coalesce(func.sum(usage.c.cost_usd), 0.0).label("cost_usd"),
            func.coalesce(func.sum(case((usage.c.estimated, 1), else_=0)), 0)
            .label("estimated_requests"),
        ).group_by(*keys).order_by(*keys)
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


def _totals_row(by: str, row: Any) -> dict[str, Any]:
    # Plain str keys and Python numbers: drivers return Decimal sums and str subclasses.
    totals: dict[str, Any] = {name: row[name] for name in GROUPINGS[by]}
    for name in ("requests", "prompt_tokens", "completion_tokens", "total_tokens",
                 "estimated_requests"):
        totals[name] = int(row[name])
    totals["cost_usd"] = float(row["cost_usd"])
    return totals
