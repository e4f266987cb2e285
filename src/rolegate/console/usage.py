"""`UsagePages`: the console's Usage page, totals grouped by principal, client, key, model or
day over a period, and the same totals as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from rolegate.accounting.period import parse_instant
from rolegate.accounting.store import GROUPINGS, UsageQuery, UsageStore
from rolegate.api.routes import Route
from rolegate.authn.principal import Principal
from rolegate.errors import InvalidRequest, NotFound
from rolegate.server.asgi import Request, Response

Page = Callable[..., Response]


class UsagePages:
    def __init__(self, store: UsageStore | None, clock: Callable[[], float],
                 page: Page) -> None:
        self._store = store
        self._clock = clock
        self._page = page

    async def report(self, request: Request, route: Route, who: Principal) -> Response:
        by, since, rows = await self._totals(request)
        return self._page(request, who, "usage.html", page="usage", by=by, since=since,
                          groupings=sorted(GROUPINGS), rows=rows,
                          columns=list(rows[0]) if rows else [])

    async def download(self, request: Request, route: Route, who: Principal) -> Response:
        by, _, rows = await self._totals(request)
        out = io.StringIO()
        writer = csv.writer(out)
        if rows:
            writer.writerow(rows[0])
            writer.writerows([_cell(value) for value in row.values()] for row in rows)
        return Response(body=out.getvalue().encode(), content_type=b"text/csv; charset=utf-8",
                        headers=[(b"content-disposition",
                                  f'attachment; filename="usage-by-{by}.csv"'.encode()),
                                 (b"cache-control", b"no-store")])

    async def _totals(self, request: Request) -> tuple[str, str, list[dict[str, Any]]]:
        if self._store is None:
            raise NotFound("Usage accounting is not enabled on this gateway (database).",
                           code="usage_disabled")
        by = request.query_param("by") or "model"
        since = request.query_param("since") or "7d"
        if by not in GROUPINGS:
            raise InvalidRequest(f"by: unknown grouping {by!r} (known: "
                                 f"{', '.join(sorted(GROUPINGS))})", code="invalid_query")
        try:
            start = parse_instant(since, self._clock())
        except ValueError as exc:
            raise InvalidRequest(f"since: {exc}", code="invalid_query") from None
        return by, since, await self._store.totals(UsageQuery(by=by, since=start))


def _cell(value: Any) -> Any:
    """A spreadsheet must not run a cell as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
