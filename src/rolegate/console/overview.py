"""`OverviewPage`: the console's home, charts of the last hour, day or week per model:
requests, errors and latency (p50, p95) from the usage records in the database, and denials
(401, 403) from the decision log's recent refusals, kept in this process's memory.

Latency percentiles are taken over the newest `MAX_LATENCIES` requests of the period, so a busy
week costs a bounded read; counts are summed by the database over every request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from rolegate.accounting.store import UsageStore
from rolegate.api.routes import Route
from rolegate.authn.principal import Principal
from rolegate.console.charts import Chart, line_chart
from rolegate.errors import InvalidRequest
from rolegate.server.asgi import Request, Response

Page = Callable[..., Response]
# window -> (seconds shown, seconds per bucket, how a bucket's start is labelled)
WINDOWS: dict[str, tuple[int, int, str]] = {
    "hour": (3600, 60, "%H:%M"),
    "day": (86400, 1800, "%H:%M"),
    "week": (604800, 10800, "%m-%d %H:%M"),
}
MAX_LATENCIES = 20_000
NOT_AUTHENTICATED = "(not authenticated)"
NO_MODEL = "(no model)"
Series = dict[str, list[float | None]]


class OverviewPage:
    def __init__(self, store: UsageStore | None, denials: Iterable[dict[str, Any]],
                 clock: Callable[[], float], page: Page) -> None:
        self._store = store
        self._denials = denials
        self._clock = clock
        self._page = page

    async def show(self, request: Request, route: Route, who: Principal) -> Response:
        window = request.query_param("window") or "day"
        if window not in WINDOWS:
            raise InvalidRequest(f"window: unknown window {window!r} (known: "
                                 f"{', '.join(WINDOWS)})", code="invalid_query")
        span, every, pattern = WINDOWS[window]
        first = (self._clock() // every + 1) * every - span
        buckets = [first + index * every for index in range(span // every)]
        charts = await self._charts(buckets, every, pattern)
        return self._page(request, who, "home.html", page="home", window=window,
                          windows=list(WINDOWS), charts=charts,
                          has_usage=self._store is not None)

    async def _charts(self, buckets: list[float], every: int, pattern: str) -> list[Chart]:
        def label(at: float) -> str:
            return datetime.fromtimestamp(at, UTC).strftime(pattern)

        def chart(name: str, title: str, unit: str, series: Series) -> Chart:
            return line_chart(name, title, unit, buckets, series, label=label)

        charts = []
        if self._store is not None:
            requests, errors = await self._counts(buckets, every)
            p50, p95 = await self._latency(buckets, every)
            charts += [chart("requests", "Requests", "requests", requests),
                       chart("errors", "Errors (status 400 or more)", "requests", errors),
                       chart("latency-p50", "Latency, median (p50)", "ms", p50),
                       chart("latency-p95", "Latency, 95th percentile (p95)", "ms", p95)]
        charts.append(chart("denials", "Denials (401 and 403)", "requests",
                            self._denied(buckets, every)))
        return charts

    async def _counts(self, buckets: list[float], every: int) -> tuple[Series, Series]:
        assert self._store is not None
        requests: Series = {}
        errors: Series = {}
        for row in await self._store.activity(buckets[0], every):
            index = _index(row["bucket"], buckets, every)
            if index is None:
                continue
            for series, value in ((requests, row["requests"]), (errors, row["errors"])):
                series.setdefault(row["model"], [0.0] * len(buckets))[index] = value
        return requests, errors

    async def _latency(self, buckets: list[float], every: int) -> tuple[Series, Series]:
        assert self._store is not None
        samples: dict[str, list[list[float]]] = {}
        for ts, model, latency in await self._store.latencies(buckets[0], limit=MAX_LATENCIES):
            index = _index(ts, buckets, every)
            if index is not None:
                samples.setdefault(model, [[] for _ in buckets])[index].append(latency)
        return ({model: [percentile(values, 0.5) for values in per] for model, per in
                 sorted(samples.items())},
                {model: [percentile(values, 0.95) for values in per] for model, per in
                 sorted(samples.items())})

    def _denied(self, buckets: list[float], every: int) -> Series:
        series: Series = {}
        for denial in list(self._denials):
            index = _index(float(denial.get("at", 0.0)), buckets, every)
            if index is None:
                continue
            name = (NOT_AUTHENTICATED if denial.get("event") == "authn"
                    else str(denial.get("model") or NO_MODEL))
            counts = series.setdefault(name, [0.0] * len(buckets))
            counts[index] = (counts[index] or 0.0) + 1
        return dict(sorted(series.items()))


def _index(at: float, buckets: list[float], every: int) -> int | None:
    index = int((at - buckets[0]) // every)
    return index if 0 <= index < len(buckets) else None


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
