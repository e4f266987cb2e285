"""`UsagePages`: the console's Usage page, totals grouped by principal, client, key, end user,
model, day or a configured dimension (`accounting.dimensions`) over a period, charted over time
(the groups with the most tokens, the rest summed as "other"), and the same totals as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rolegate.accounting.period import parse_instant
from rolegate.accounting.store import GROUPINGS, UsageQuery, UsageStore, columns_of
from rolegate.api.routes import Route
from rolegate.authn.principal import Principal
from rolegate.console.charts import Chart, line_chart
from rolegate.errors import InvalidRequest, NotFound
from rolegate.server.asgi import Request, Response

Page = Callable[..., Response]
HOUR, DAY = 3600, 86400
MAX_BUCKETS = 200
CHARTED = 6  # groups drawn one by one; the others are summed as one line
OTHER = "(other)"
NONE = "(none)"


class UsagePages:
    def __init__(self, store: UsageStore | None, clock: Callable[[], float], page: Page, *,
                 dimensions: tuple[str, ...] = ()) -> None:
        self._store = store
        self._clock = clock
        self._page = page
        self._groupings = (*sorted(GROUPINGS), *dimensions)

    async def report(self, request: Request, route: Route, who: Principal) -> Response:
        by, since, start = self._query(request)
        rows = await self._totals(UsageQuery(by=by, since=start))
        now = self._clock()
        every = bucket_width(now - start)
        first = start // every * every
        buckets = [first + index * every for index in range(int((now - first) // every) + 1)]
        series = await self._totals(UsageQuery(by=by, since=start, every=every))
        charts = [usage_chart(name, title, unit, by, buckets, every, series)
                  for name, title, unit in (("usage-tokens", "Tokens", "tokens"),
                                            ("usage-requests", "Requests", "requests"))]
        return self._page(request, who, "usage.html", page="usage", by=by, since=since,
                          groupings=self._groupings, rows=rows, charts=charts,
                          columns=list(rows[0]) if rows else [])

    async def download(self, request: Request, route: Route, who: Principal) -> Response:
        by, _, start = self._query(request)
        rows = await self._totals(UsageQuery(by=by, since=start))
        out = io.StringIO()
        writer = csv.writer(out)
        if rows:
            writer.writerow(rows[0])
            writer.writerows([_cell(value) for value in row.values()] for row in rows)
        return Response(body=out.getvalue().encode(), content_type=b"text/csv; charset=utf-8",
                        headers=[(b"content-disposition",
                                  f'attachment; filename="usage-by-{by}.csv"'.encode()),
                                 (b"cache-control", b"no-store")])

    def _query(self, request: Request) -> tuple[str, str, float]:
        if self._store is None:
            raise NotFound("Usage accounting is not enabled on this gateway (database).",
                           code="usage_disabled")
        by = request.query_param("by") or "model"
        since = request.query_param("since") or "7d"
        if by not in self._groupings:
            raise InvalidRequest(f"by: unknown grouping {by!r} (known: "
                                 f"{', '.join(self._groupings)})", code="invalid_query")
        try:
            start = parse_instant(since, self._clock())
        except ValueError as exc:
            raise InvalidRequest(f"since: {exc}", code="invalid_query") from None
        return by, since, start

    async def _totals(self, query: UsageQuery) -> list[dict[str, Any]]:
        """The store's totals, a dimension's values under the dimension's name (the store
        calls them `value`)."""
        assert self._store is not None
        rows = await self._store.totals(query)
        if query.by in GROUPINGS:
            return rows
        return [{query.by if name == "value" else name: value for name, value in row.items()}
                for row in rows]


def bucket_width(span: float) -> int:
    """Hours over two days at most, else days, and never more than MAX_BUCKETS of them."""
    if span <= 2 * DAY:
        return HOUR
    return max(DAY, int(span // MAX_BUCKETS // DAY + 1) * DAY)


def usage_chart(name: str, title: str, unit: str, by: str, buckets: list[float], every: int,
                rows: list[dict[str, Any]]) -> Chart:
    """`unit` (tokens or requests) per bucket for the CHARTED groups with the most tokens."""
    column = "total_tokens" if unit == "tokens" else "requests"
    names = columns_of(by) if by in GROUPINGS else (by,)
    ranked: dict[str, int] = {}
    for row in rows:
        group = group_label(row, names)
        ranked[group] = ranked.get(group, 0) + int(row["total_tokens"])
    shown = sorted(ranked, key=lambda group: -ranked[group])[:CHARTED]
    series: dict[str, list[float | None]] = {}
    for row in rows:
        index = int((row["bucket"] - buckets[0]) // every)
        if not 0 <= index < len(buckets):
            continue
        group = group_label(row, names)
        values = series.setdefault(group if group in shown else OTHER, [0.0] * len(buckets))
        values[index] = (values[index] or 0.0) + float(row[column])
    pattern = "%m-%d %H:%M" if every < DAY else "%Y-%m-%d"
    return line_chart(name, f"{title} by {by}", unit, buckets,
                      dict(sorted(series.items(), key=lambda item: item[0] == OTHER)),
                      label=lambda at: datetime.fromtimestamp(at, UTC).strftime(pattern))


def group_label(row: dict[str, Any], names: tuple[str, ...]) -> str:
    return "/".join(NONE if row[name] is None else str(row[name]) for name in names)


def _cell(value: Any) -> Any:
    """A spreadsheet must not run a cell as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
