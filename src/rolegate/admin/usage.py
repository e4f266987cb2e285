"""`UsageAdmin`: `/admin/usage`: usage totals grouped by principal, client id, key, end user,
model, day or a configured dimension (`accounting.dimensions`), over a period (`since`,
`until`), narrowed by any of the grouping fields."""

from __future__ import annotations

from collections.abc import Callable

from rolegate.accounting.period import parse_instant
from rolegate.accounting.store import FILTERS, GROUPINGS, UsageQuery, UsageStore
from rolegate.admin.schemas import UsageParams, read_params
from rolegate.api.routes import Route
from rolegate.authn.principal import Principal
from rolegate.errors import InvalidRequest, NotFound
from rolegate.server.asgi import Request, Response, json_response


class UsageAdmin:
    def __init__(self, store: UsageStore | None, clock: Callable[[], float], *,
                 dimensions: tuple[str, ...] = ()) -> None:
        self._store = store
        self._clock = clock
        self._dimensions = dimensions

    async def report(self, request: Request, route: Route, who: Principal) -> Response:
        if self._store is None:
            raise NotFound("Usage accounting is not enabled on this gateway (database).",
                           code="usage_disabled")
        query = read_query(request.query_string, self._clock())
        if query.by not in GROUPINGS and query.by not in self._dimensions:
            known = ", ".join((*GROUPINGS, *self._dimensions))
            raise InvalidRequest(f"by: unknown grouping {query.by!r} (known: {known})",
                                 code="invalid_query", param="by")
        rows = await self._store.totals(query)
        return json_response({"object": "usage_report", "by": query.by, "since": query.since,
                              "until": query.until, "data": rows})


def read_query(query_string: bytes, now: float) -> UsageQuery:
    """The report `/admin/usage?…` asks for; `InvalidRequest` (400) naming a bad parameter."""
    params = read_params(UsageParams, query_string)
    since, until = (_instant(params, name, now) for name in ("since", "until"))
    filters = tuple((name, value) for name in FILTERS
                    if (value := getattr(params, name)) is not None)
    return UsageQuery(by=params.by, since=since, until=until, filters=filters)


def _instant(params: UsageParams, name: str, now: float) -> float | None:
    text = getattr(params, name)
    if text is None:
        return None
    try:
        return parse_instant(text, now)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}", code="invalid_query", param=name) from None
