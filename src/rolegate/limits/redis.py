"""`RedisLimiter`: counters in Redis, so every replica enforces one shared limit.

Checking and counting happen in one Lua script (atomic on the server): a request is counted in
every sliding request log, and its reservation added to every token and cost counter, only if no
quota is spent. The request log's members are made here (this replica's random id and a
sequence number), never taken from the request, so every admitted request is its own member.
Settling adds tokens and cost (less the reservation) with
INCRBYFLOAT and lets each fixed window's counter expire when the window ends. Settled usage is
not sent on its own round trip: it waits in this process, summed per counter, and goes to Redis
at the start of the next `acquire` script (so this replica's next check always sees it), or after
at most SETTLE_DELAY seconds when no request comes (so other replicas see it within that bound).
The checks of the requests that arrive in one turn of the event loop go to Redis together, in
one pipeline (`script_batch.py`).
`close()` writes what is waiting. If Redis cannot be reached within `limits.timeout`, the request
is refused with 503 (`fail_open: false`, the default) or served without limits
(`fail_open: true`); either way it is logged.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rolegate.config.model import RateLimitsConfig
from rolegate.errors import RateLimited, ServiceUnavailable
from rolegate.limits.limiter import (
    NO_LEASE, NO_RESERVATION, Lease, Reservation, Standing, refuse, settled_amounts,
)
from rolegate.limits.quota import Quota
from rolegate.limits.script_batch import ScriptBatch

log = logging.getLogger("rolegate.limits")

# KEYS: the `settled` counters with usage waiting to be added (each with its amount and expiry
# in ARGV), then the quotas to check (each with its kind, limit, window, the amount it reserves
# and the expiry of its counter).
ACQUIRE = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local settled = tonumber(ARGV[3])
for i = 1, settled do
  redis.call('INCRBYFLOAT', KEYS[i], ARGV[2 * i + 2])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * i + 3])
end
local base = 3 + 2 * settled
local spent = 0
local out = {}
for q = 1, #KEYS - settled do
  local key = KEYS[settled + q]
  local kind = ARGV[base + 5 * q - 4]
  local limit = tonumber(ARGV[base + 5 * q - 3])
  local window = tonumber(ARGV[base + 5 * q - 2])
  local used = 0
  local reset = -1
  if kind == 'requests' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    used = redis.call('ZCARD', key)
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if oldest[2] then reset = tonumber(oldest[2]) + window - now else reset = window end
  else
    used = tonumber(redis.call('GET', key) or '0')
  end
  if used >= limit and spent == 0 then spent = q end
  out[#out + 1] = tostring(used)
  out[#out + 1] = tostring(reset)
end
if spent == 0 then
  for q = 1, #KEYS - settled do
    if ARGV[base + 5 * q - 4] == 'requests' then
      redis.call('ZADD', KEYS[settled + q], now, member)
      redis.call('PEXPIRE', KEYS[settled + q], math.ceil(tonumber(ARGV[base + 5 * q - 2])))
    elseif tonumber(ARGV[base + 5 * q - 1]) ~= 0 then
      redis.call('INCRBYFLOAT', KEYS[settled + q], ARGV[base + 5 * q - 1])
      redis.call('EXPIRE', KEYS[settled + q], ARGV[base + 5 * q])
    end
  end
end
out[#out + 1] = tostring(spent)
return out
"""

# Adds usage to each counter and lets it expire a minute after its window ends (for replicas
# whose clocks lag). One script call, atomic like a MULTI/EXEC block, in one round trip. Used
# when usage has waited SETTLE_DELAY with no `acquire` to carry it, and at `close()`.
SETTLE = """
for i = 1, #KEYS do
  redis.call('INCRBYFLOAT', KEYS[i], ARGV[2 * i - 1])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * i])
end
return #KEYS
"""

FAILURES = (RedisError, OSError, asyncio.TimeoutError)
SETTLE_DELAY = 0.05  # seconds settled usage may wait in this process when no request comes


class RedisLimiter:
    def __init__(self, config: RateLimitsConfig) -> None:
        assert config.url is not None
        # No socket_timeout: that arms a timer per reply read; the batch and the settling write
        # are bounded as a whole instead.
        self.redis: Redis = Redis.from_url(config.url, socket_connect_timeout=config.timeout)
        self.timeout = config.timeout
        self._prefix = config.prefix
        self._is_fail_open = config.fail_open
        self._acquire = ScriptBatch(self.redis, ACQUIRE, timeout=config.timeout)
        self._settle = self.redis.register_script(SETTLE)
        # counter key -> [usage to add, expiry in seconds], waiting for the next round trip
        self._waiting: dict[str, list[float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()
        # Why Redis could not be reached the last time it was tried (None: it could).
        self.last_error: str | None = None
        # Request-log members: unique across replicas (a random id each) and requests.
        self.replica = secrets.token_hex(8)
        self._sequence = itertools.count()

    async def acquire(self, quotas: Sequence[Quota], now: float,
                      reservation: Reservation = NO_RESERVATION) -> Lease:
        if not quotas:
            return NO_LEASE
        waiting = self.take_waiting()
        prefix = self._prefix
        keys = [*waiting, *[f"{prefix}:{quota.counter}" for quota in quotas]]
        args: list[str | float] = [now * 1000.0, f"{self.replica}:{next(self._sequence)}",
                                   len(waiting)]
        for amount, expiry in waiting.values():
            args += (amount, int(expiry))
        tokens, cost = reservation.tokens, reservation.cost
        for quota in quotas:
            kind = quota.kind
            if kind == "requests":
                args += (kind, quota.limit, quota.window * 1000.0, 0.0, 0)
            else:
                args += (kind, quota.limit, quota.window * 1000.0,
                         tokens if kind == "tokens" else cost, expiry_of(quota, now))
        try:
            out = await self._acquire.call(keys, args)
        except FAILURES as exc:
            if waiting:
                log.error("settling usage in Redis failed: %s", exc)
            return self.unavailable(exc)
        if int(out[-1]):
            raise self._refusal(quotas, out, now)
        # Counted: a request log holds this request too.
        return Lease(tuple([Standing(quota, float(out[2 * index]) + 1.0,
                                     float(out[2 * index + 1]) / 1000.0)
                            if quota.kind == "requests" else
                            Standing(quota, float(out[2 * index]), quota.reset_at - now)
                            for index, quota in enumerate(quotas)]), reservation)

    @staticmethod
    def _refusal(quotas: Sequence[Quota], out: Sequence[bytes], now: float) -> RateLimited:
        standings = []
        for index, quota in enumerate(quotas):
            used, reset = float(out[2 * index]), float(out[2 * index + 1])
            reset_in = reset / 1000.0 if quota.kind == "requests" else quota.reset_at - now
            standings.append(Standing(quota, used, reset_in))
        return refuse(standings, standings[int(out[-1]) - 1])

    def settle(self, lease: Lease, tokens: int, cost: float) -> None:
        """Adds the usage, less the reservation, to what waits for the next round trip (see the
        module's docstring)."""
        for standing, amount in settled_amounts(lease, tokens, cost):
            self.add_usage(standing.quota, amount, standing.reset_in)

    def add_usage(self, quota: Quota, amount: float, reset_in: float) -> None:
        """Add `amount` to a token or cost counter with the next round trip (within
        SETTLE_DELAY)."""
        waiting = self._waiting
        key = self.key(quota)
        expiry = math.ceil(reset_in) + 60
        entry = waiting.get(key)
        if entry is None:
            waiting[key] = [amount, expiry]
        else:
            entry[0] += amount
            entry[1] = expiry
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(SETTLE_DELAY, self._on_timer)

    async def flush(self) -> None:
        """Write the usage waiting in this process now, and wait for writes under way."""
        waiting = self.take_waiting()
        if waiting:
            await self._write(waiting)
        if self._writes:
            await asyncio.gather(*self._writes)

    def take_waiting(self) -> dict[str, list[float]]:
        """The usage waiting for the next round trip (counter key -> [amount, expiry]), which
        the caller now sends."""
        waiting = self._waiting
        if waiting:
            self._waiting = {}
        return waiting

    def _on_timer(self) -> None:
        self._timer = None
        waiting = self.take_waiting()
        if waiting:
            task = asyncio.ensure_future(self._write(waiting))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _write(self, waiting: dict[str, list[float]]) -> None:
        args: list[str | float] = []
        for amount, expiry in waiting.values():
            args += [amount, int(expiry)]
        try:
            async with asyncio.timeout(self.timeout):
                await self._settle(keys=list(waiting), args=args)
        except FAILURES as exc:
            log.error("settling usage in Redis failed: %s", exc)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.flush()
        await self.redis.aclose()

    async def probe(self) -> None:
        """Ping Redis, so readiness says why the gateway is not ready while it cannot be
        reached (run at start-up and every few seconds; requests never wait for it)."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.redis.ping()  # type: ignore[misc]  # redis-py types sync and async
        except FAILURES as exc:
            self.last_error = str(exc) or type(exc).__name__
        else:
            self.last_error = None

    def readiness(self) -> str | None:
        """None when ready. With `fail_open` a Redis that cannot be reached stops nothing (the
        requests are served without limits), so it does not hold readiness back."""
        if self.last_error is None or self._is_fail_open:
            return None
        return f"Redis unreachable, requests are refused: {self.last_error}"

    def key(self, quota: Quota) -> str:
        """The Redis key of `quota`'s counter."""
        return f"{self._prefix}:{quota.counter}"

    def unavailable(self, exc: BaseException) -> Lease:
        self.last_error = str(exc) or type(exc).__name__
        log.error("the rate limiter's Redis is unavailable: %s", self.last_error)
        if self._is_fail_open:
            return NO_LEASE
        raise ServiceUnavailable("Rate limits cannot be checked right now.",
                                 code="rate_limiter_unavailable")


def expiry_of(quota: Quota, now: float) -> int:
    """Seconds a token or cost counter lives: a minute past its window's end (for replicas whose
    clocks lag)."""
    return max(math.ceil(quota.reset_at - now), 0) + 60 if quota.kind != "requests" else 0
