"""`MemoryLimiter`: counters in this process. Right for one replica; use Redis for several.

Request windows are logs of admission times (nothing a caller sends is stored); token and cost
counters hold the settled usage plus the reservations of requests still running."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rolegate.limits.limiter import (
    NO_RESERVATION, Lease, Reservation, Standing, refuse, settled_amounts,
)
from rolegate.limits.quota import Quota

MAX_COUNTERS = 100_000


class MemoryLimiter:
    def __init__(self) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._totals: dict[str, tuple[float, float]] = {}  # counter -> (used, reset_at)

    async def acquire(self, quotas: Sequence[Quota], now: float,
                      reservation: Reservation = NO_RESERVATION) -> Lease:
        standings = [self._standing(quota, now) for quota in quotas]
        spent = next((s for s in standings if s.used >= s.quota.limit), None)
        if spent is not None:
            raise refuse(standings, spent)
        counted = []
        for standing in standings:
            quota = standing.quota
            if quota.kind == "requests":
                self._logs.setdefault(quota.counter, deque()).append(now)
                standing = Standing(quota, standing.used + 1, standing.reset_in)
            elif amount := reservation.amount(quota.kind):
                self._add(quota, amount)
            counted.append(standing)
        self._forget_expired(now)
        return Lease(tuple(counted), reservation)

    def settle(self, lease: Lease, tokens: int, cost: float) -> None:
        for standing, amount in settled_amounts(lease, tokens, cost):
            self._add(standing.quota, amount)

    def _add(self, quota: Quota, amount: float) -> None:
        used, _ = self._totals.get(quota.counter, (0.0, quota.reset_at))
        self._totals[quota.counter] = (used + amount, quota.reset_at)

    async def close(self) -> None:
        return None

    def _standing(self, quota: Quota, now: float) -> Standing:
        if quota.kind == "requests":
            log = self._logs.get(quota.counter)
            while log and log[0] <= now - quota.window:
                log.popleft()
            used = len(log) if log else 0
            reset_in = (log[0] + quota.window - now) if log else quota.window
            return Standing(quota, used, reset_in)
        spent, _ = self._totals.get(quota.counter, (0.0, quota.reset_at))
        return Standing(quota, spent, quota.reset_at - now)

    def _forget_expired(self, now: float) -> None:
        if len(self._totals) + len(self._logs) <= MAX_COUNTERS:
            return
        self._totals = {k: v for k, v in self._totals.items() if v[1] > now}
        self._logs = {k: v for k, v in self._logs.items() if v and v[-1] > now - 60}
