"""`ToolLimits`: the per-tool call limits of the rules granting MCP tools (`allow.mcp.limits`),
counted by the same limiter (memory or Redis) as the model limits.

Each tool of each server has its own counter per principal (or per `per`), so a caller
hammering one tool does not spend the calls of another. A spent limit raises `RateLimited`
before anything reaches the server.

>>> lease = await limits.acquire(decision.rule, who, "forge", "search_code")
"""

from __future__ import annotations

from collections.abc import Callable

from rolegate.authn.principal import Principal
from rolegate.errors import RateLimited
from rolegate.limits.limiter import NO_LEASE, Lease, Limiter
from rolegate.limits.quota import QuotaPlan
from rolegate.observability.metrics import GatewayMetrics


class ToolLimits:
    def __init__(self, plan: QuotaPlan, limiter: Limiter, clock: Callable[[], float],
                 metrics: GatewayMetrics | None = None) -> None:
        self._plan = plan
        self._limiter = limiter
        self._clock = clock
        self._metrics = metrics

    async def acquire(self, rule: str | None, who: Principal, server: str, tool: str) -> Lease:
        now = self._clock()
        quotas = self._plan.tool_quotas(rule, who, server, tool, now)
        if not quotas:
            return NO_LEASE
        try:
            return await self._limiter.acquire(quotas, now)
        except RateLimited as refusal:
            if self._metrics is not None:
                self._metrics.count_rate_limited(refusal.code)
            raise
