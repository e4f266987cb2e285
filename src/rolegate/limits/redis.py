"""`RedisLimiter`: counters in Redis, so every replica enforces one shared limit.

Checking and counting happen in one Lua script (atomic on the server): a request is counted in
every sliding request log only if no quota is spent. Settling adds tokens and cost with
INCRBYFLOAT and lets each fixed window's counter expire when the window ends. If Redis cannot be
reached within `limits.timeout`, the request is refused with 503 (`fail_open: false`, the
default) or served without limits (`fail_open: true`); either way it is logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rolegate.config.model import RateLimitsConfig
from rolegate.errors import ServiceUnavailable
from rolegate.limits.limiter import NO_LEASE, Lease, Standing, refuse
from rolegate.limits.quota import Quota

log = logging.getLogger("rolegate.limits")

ACQUIRE = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local spent = 0
local out = {}
for i = 1, #KEYS do
  local kind = ARGV[3 * i]
  local limit = tonumber(ARGV[3 * i + 1])
  local window = tonumber(ARGV[3 * i + 2])
  local used = 0
  local reset = -1
  if kind == 'requests' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
    used = redis.call('ZCARD', KEYS[i])
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    if oldest[2] then reset = tonumber(oldest[2]) + window - now else reset = window end
  else
    used = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  if used >= limit and spent == 0 then spent = i end
  out[#out + 1] = tostring(used)
  out[#out + 1] = tostring(reset)
end
if spent == 0 then
  for i = 1, #KEYS do
    if ARGV[3 * i] == 'requests' then
      redis.call('ZADD', KEYS[i], now, member)
      redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[3 * i + 2])))
    end
  end
end
out[#out + 1] = tostring(spent)
return out
"""

# Adds usage to each counter and lets it expire a minute after its window ends (for replicas
# whose clocks lag). One script call, atomic like a MULTI/EXEC block, in one round trip.
SETTLE = """
for i = 1, #KEYS do
  redis.call('INCRBYFLOAT', KEYS[i], ARGV[2 * i - 1])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * i])
end
return #KEYS
"""

_FAILURES = (RedisError, OSError, asyncio.TimeoutError)


class RedisLimiter:
    def __init__(self, config: RateLimitsConfig) -> None:
        assert config.url is not None
        self._redis: Redis = Redis.from_url(config.url, socket_timeout=config.timeout,
                                            socket_connect_timeout=config.timeout)
        self._prefix = config.prefix
        self._is_fail_open = config.fail_open
        self._acquire = self._redis.register_script(ACQUIRE)
        self._settle = self._redis.register_script(SETTLE)

    async def acquire(self, quotas: Sequence[Quota], now: float, member: str) -> Lease:
        if not quotas:
            return NO_LEASE
        keys = [self._key(quota) for quota in quotas]
        args: list[str | float] = [now * 1000.0, member]
        for quota in quotas:
            args += [quota.kind, quota.limit, quota.window * 1000.0]
        try:
            out = await self._acquire(keys=keys, args=args)
        except _FAILURES as exc:
            return self._unavailable(exc)
        standings = []
        for index, quota in enumerate(quotas):
            used, reset = float(out[2 * index]), float(out[2 * index + 1])
            reset_in = reset / 1000.0 if quota.kind == "requests" else quota.reset_at - now
            standings.append(Standing(quota, used, reset_in))
        spent = int(out[-1])
        if spent:
            raise refuse(standings, standings[spent - 1])
        return Lease(tuple(Standing(s.quota, s.used + 1, s.reset_in)
                           if s.quota.kind == "requests" else s for s in standings))

    async def settle(self, lease: Lease, tokens: int, cost: float) -> None:
        standings = [s for s in lease.standings
                     if {"tokens": tokens, "cost": cost}.get(s.quota.kind)]
        if not standings:
            return
        keys = [self._key(standing.quota) for standing in standings]
        args: list[str | float] = []
        for standing in standings:
            args += [tokens if standing.quota.kind == "tokens" else cost,
                     math.ceil(standing.reset_in) + 60]
        try:
            await self._settle(keys=keys, args=args)
        except _FAILURES as exc:
            log.error("settling usage in Redis failed: %s", exc)

    async def close(self) -> None:
        await self._redis.aclose()

    def _key(self, quota: Quota) -> str:
        return f"{self._prefix}:{quota.counter}"

    def _unavailable(self, exc: BaseException) -> Lease:
        log.error("the rate limiter's Redis is unavailable: %s", exc or type(exc).__name__)
        if self._is_fail_open:
            return NO_LEASE
        raise ServiceUnavailable("Rate limits cannot be checked right now.",
                                 code="rate_limiter_unavailable")
