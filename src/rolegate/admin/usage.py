"""`UsageAdmin`: `/admin/usage`: usage totals grouped by principal, client id, key, end user,
model or day, over a period (`since`, `until`), narrowed by any of the grouping fields."""

from __future__ import annotations

from collections.abc import Callable

from rolegate.accounting.period import parse_instant
from rolegate.accounting.store import FILTERS, GROUPINGS, UsageQuery, UsageStore
from rolegate.api.routes import Route
from rolegate.authn.principal import Principal
from rolegate.errors import InvalidRequest, NotFound
from rolegate.server.asgi import Request, Response, json_response


class UsageAdmin:
    def __init__(self, store: UsageStore | None, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def report(self, request: Request, route: Route, who: Principal) -> Response:
        if self._store is None:
            raise NotFound("Usage accounting is not enabled on this gateway (database).",
                           code="usage_disabled")
        query = read_query(request.query_param, self._clock())
        rows = await self._store.totals(query)
        return json_response({"object": "usage_report", "by": query.by, "since": query.since,
                              "until": query.until, "data": rows})


def read_query(param: Callable[[str], str | None], now: float) -> UsageQuery:
    by = param("by") or "principal"
    if by not in GROUPINGS:
        raise InvalidRequest(f"by: {by!r} is not a grouping (use one of "
                             f"{', '.join(GROUPINGS)}).", code="invalid_query", param="by")
    since, until = (_instant(param, name, now) for name in ("since", "until"))
    filters = tuple((name, value) for name in FILTERS
                    if (value := param(name)) is not None)
    return UsageQuery(by=by, since=since, until=until, filters=filters)


def _instant(param: Callable[[str], str | None], name: str, now: float) -> float | None:
    text = param(name)
    if text is None:
        return None
    try:
        return parse_instant(text, now)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}", code="invalid_query", param=name) from None
