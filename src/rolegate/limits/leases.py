"""`LeasedLimiter`: Redis counters spent locally, a block at a time (`limits.lease`).

Exact limits (the default, `redis.py`) cost every request a Redis round trip. With a lease, a
process takes a block of a counter's allowance in one script call (`requests` members added to a
request log at once, or `tokens` / `usd` added to a token or cost counter) and admits requests
from it without Redis until the block is spent or `ttl` seconds old; then the unused part is given
back (its log members removed, or the amount taken off the counter) and a new block is taken.
A block is never more than what the counter has left, and a counter with nothing left gives an
empty block, which refuses locally until it expires. Settled usage (the real tokens, less the
reservation) still goes to Redis as with exact limits, so the counters hold the real usage.

What that costs in exactness, with R processes sharing a counter:

- requests: the members of a block carry the time it was taken, not each request's, so at the
  edge of the 60-second window a block taken just before it is still being spent: within any
  window at most `limit + R x requests` are admitted;
- tokens and cost: each process may start a request while its block still has something left,
  so the counter passes the limit by at most one reservation per process (one in all when exact);
- under-admission: allowance another process holds and has not spent is not available until it
  is given back (at most `ttl` later; a process that dies without `close()` leaves its blocks
  counted until the window ends, like a reservation).

Kinds whose size is 0 stay exact: a request with such a quota also makes the exact check.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rolegate.config.model import LeaseConfig
from rolegate.limits.limiter import NO_LEASE, NO_RESERVATION, Lease, Reservation, Standing, refuse
from rolegate.limits.quota import Quota
from rolegate.limits.redis import FAILURES, RedisLimiter, expiry_of
from rolegate.limits.script_batch import ScriptBatch

log = logging.getLogger("rolegate.limits")

# KEYS: the counters with settled usage waiting (as in redis.py's ACQUIRE: each with its amount
# and expiry in ARGV), then the counters to take blocks of; per counter in ARGV: kind, limit,
# window (ms), block size, expiry (s, token and cost counters) and the members' prefix (request
# logs). Returns per counter: its use before the block, the reset (ms, request logs) and the
# block granted.
TAKE = """
local now = tonumber(ARGV[1])
local settled = tonumber(ARGV[2])
for i = 1, settled do
  redis.call('INCRBYFLOAT', KEYS[i], ARGV[2 * i + 1])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * i + 2])
end
local base = 2 + 2 * settled
local out = {}
for q = 1, #KEYS - settled do
  local key = KEYS[settled + q]
  local kind = ARGV[base + 6 * q - 5]
  local limit = tonumber(ARGV[base + 6 * q - 4])
  local window = tonumber(ARGV[base + 6 * q - 3])
  local size = tonumber(ARGV[base + 6 * q - 2])
  local used = 0
  local reset = -1
  local granted = 0
  if kind == 'requests' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    used = redis.call('ZCARD', key)
    granted = math.max(0, math.min(size, limit - used))
    local prefix = ARGV[base + 6 * q]
    for i = 1, granted do redis.call('ZADD', key, now, prefix .. i) end
    if granted > 0 then redis.call('PEXPIRE', key, math.ceil(window)) end
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if oldest[2] then reset = tonumber(oldest[2]) + window - now else reset = window end
  else
    used = tonumber(redis.call('GET', key) or '0')
    granted = math.max(0, math.min(size, limit - used))
    if granted > 0 then
      redis.call('INCRBYFLOAT', key, granted)
      redis.call('EXPIRE', key, ARGV[base + 6 * q - 1])
    end
  end
  out[#out + 1] = tostring(used)
  out[#out + 1] = tostring(reset)
  out[#out + 1] = tostring(granted)
end
return out
"""

# Gives back the unused members of request blocks: per key in ARGV, the members' prefix and the
# first and last unused index.
RETURN = """
for q = 1, #KEYS do
  local prefix = ARGV[3 * q - 2]
  for i = tonumber(ARGV[3 * q - 1]), tonumber(ARGV[3 * q]) do
    redis.call('ZREM', KEYS[q], prefix .. i)
  end
end
return #KEYS
"""


@dataclass(slots=True)
class Block:
    """Allowance of one counter held by this process."""

    quota: Quota
    granted: float
    left: float
    used_before: float  # the counter's use when the block was taken
    reset_in: float     # seconds until the counter frees up (the oldest member leaves, or
    # the fixed window ends), when the block was taken
    taken_at: float
    expires_at: float
    members: str        # request logs: the prefix of this block's members

    def share(self, reservation: Reservation) -> float:
        """What one request takes from this block: itself from a request log, its reservation
        from a token or cost counter."""
        kind = self.quota.kind
        return 1.0 if kind == "requests" else reservation.amount(kind)

    def is_usable(self, now: float) -> bool:
        """Spendable now, or empty and still refusing (the counter had nothing left)."""
        return now < self.expires_at and (self.left > 0 or self.granted == 0)

    def standing(self, now: float) -> Standing:
        quota = self.quota
        reset_in = self.reset_in - (now - self.taken_at)
        return Standing(quota, self.used_before + self.granted - self.left, max(reset_in, 0.0))


class LeasedLimiter:
    def __init__(self, exact: RedisLimiter, config: LeaseConfig,
                 clock: Callable[[], float]) -> None:
        self._exact = exact
        self._config = config
        self._clock = clock
        self._take_script = ScriptBatch(exact.redis, TAKE, timeout=exact.timeout)
        self._return_script = exact.redis.register_script(RETURN)
        self._blocks: dict[str, Block] = {}
        self._taking: dict[str, asyncio.Future[None]] = {}
        self._numbers = itertools.count()
        self._sweeper: asyncio.TimerHandle | None = None
        self._returns: set[asyncio.Task[None]] = set()

    @property
    def last_error(self) -> str | None:
        return self._exact.last_error

    def readiness(self) -> str | None:
        return self._exact.readiness()

    async def probe(self) -> None:
        await self._exact.probe()

    async def acquire(self, quotas: Sequence[Quota], now: float,
                      reservation: Reservation = NO_RESERVATION) -> Lease:
        lease = self._spend_held(quotas, now, reservation)
        if lease is not None:
            return lease
        config = self._config
        leased = [quota for quota in quotas if config.size(quota.kind)]
        if not leased:
            return await self._exact.acquire(quotas, now, reservation)
        blocks = await self._blocks_for(leased, now)
        if blocks is None:  # Redis unavailable and fail_open: served without limits
            return NO_LEASE
        if not blocks:  # others spent each fresh block first: this one is checked exactly
            return await self._exact.acquire(quotas, now, reservation)
        if any(block.left <= 0 for block in blocks):
            standings = [block.standing(now) for block in blocks]
            raise refuse(standings, next(standing for standing, block in zip(
                standings, blocks, strict=True) if block.left <= 0))
        for block in blocks:  # spent before any await: no other request sees it unspent
            block.left -= block.share(reservation)
        exact = [quota for quota in quotas if not config.size(quota.kind)]
        try:
            others = await self._exact.acquire(exact, now, reservation) if exact else NO_LEASE
        except BaseException:
            for block in blocks:  # refused elsewhere: nothing was spent here
                block.left += block.share(reservation)
            raise
        return Lease((*(block.standing(now) for block in blocks), *others.standings),
                     reservation)

    def _spend_held(self, quotas: Sequence[Quota], now: float,
                    reservation: Reservation) -> Lease | None:
        """The common case, without an await: every quota has a block here with something left
        (only leased quotas have blocks), so the request is spent from them. None otherwise:
        `acquire` takes blocks, refuses, or checks exactly."""
        blocks = self._blocks
        key = self._exact.key
        held = []
        for quota in quotas:
            block = blocks.get(key(quota))
            if block is None or block.left <= 0 or now >= block.expires_at:
                return None
            held.append(block)
        for block in held:
            block.left -= block.share(reservation)
        return Lease(tuple([block.standing(now) for block in held]), reservation)

    def settle(self, lease: Lease, tokens: int, cost: float) -> None:
        self._exact.settle(lease, tokens, cost)

    async def _blocks_for(self, quotas: list[Quota], now: float) -> list[Block] | None:
        """The usable blocks of `quotas`, taken when needed; None when Redis failed and
        `fail_open` serves without limits; empty when other requests spent every fresh block
        before this one ran again, three times."""
        for attempt in range(4):
            stale = [quota for quota in quotas if not self._is_usable(quota, now)]
            if not stale:
                break
            if attempt == 3:
                return []
            if not await self._take(stale, now):
                return None
        blocks = [self._blocks.get(self._exact.key(quota)) for quota in quotas]
        if None in blocks:  # the take this request waited for failed
            self._exact.unavailable(TimeoutError("no block of allowance could be taken"))
            return None
        return blocks  # type: ignore[return-value]  # none is None

    def _is_usable(self, quota: Quota, now: float) -> bool:
        block = self._blocks.get(self._exact.key(quota))
        return block is not None and block.is_usable(now)

    async def _take(self, quotas: list[Quota], now: float) -> bool:
        """Take new blocks for `quotas` (one script call; a counter already being taken is
        waited for). False when Redis failed and `fail_open` serves without limits."""
        keys = [self._exact.key(quota) for quota in quotas]
        waits = [self._taking[key] for key in keys if key in self._taking]
        mine = [(key, quota) for key, quota in zip(keys, quotas, strict=True)
                if key not in self._taking]
        if mine:
            done = asyncio.get_running_loop().create_future()
            for key, _ in mine:
                self._taking[key] = done
            try:
                await self._take_now(mine, now)
            except FAILURES as exc:
                self._exact.unavailable(exc)  # raises unless fail_open
                return False
            finally:
                for key, _ in mine:
                    del self._taking[key]
                done.set_result(None)
        for wait in waits:
            await wait
        return True

    async def _take_now(self, taken: list[tuple[str, Quota]], now: float) -> None:
        for key, _ in taken:  # what the old block left or overspent goes with this call
            old = self._blocks.pop(key, None)
            if old is not None:
                self._give_back(old)
        waiting = self._exact.take_waiting()
        args: list[str | float] = [now * 1000.0, len(waiting)]
        for amount, expiry in waiting.values():
            args += [amount, int(expiry)]
        prefixes = []
        for _, quota in taken:
            prefix = f"{self._exact.replica}:b{next(self._numbers)}:"
            prefixes.append(prefix)
            args += [quota.kind, quota.limit, quota.window * 1000.0,
                     self._config.size(quota.kind), expiry_of(quota, now), prefix]
        try:
            out = await self._take_script.call([*waiting, *(key for key, _ in taken)], args)
        except FAILURES as exc:
            if waiting:
                log.error("settling usage in Redis failed: %s", exc)
            raise
        ttl = self._config.ttl
        for index, ((key, quota), prefix) in enumerate(zip(taken, prefixes, strict=True)):
            used, reset, granted = (float(value) for value in out[3 * index:3 * index + 3])
            reset_in = reset / 1000.0 if quota.kind == "requests" else quota.reset_at - now
            # An empty block refuses until the counter may have room again, within `ttl`.
            lasts = ttl if granted else min(ttl, max(reset_in, 0.001))
            self._blocks[key] = Block(quota, granted, granted, used, reset_in, now,
                                      now + lasts, prefix)
        self._arm_sweeper()

    def _give_back(self, block: Block) -> None:
        """Return what `block` did not spend (members removed, or the amount taken off), or
        add what requests reserved past its end (a token or cost block spent below zero)."""
        if block.quota.kind != "requests":
            if block.left:
                self._exact.add_usage(block.quota, -block.left,
                                      block.quota.reset_at - block.taken_at)
            block.left = 0
            return
        if block.left <= 0:
            return
        first = int(block.granted - block.left) + 1
        task = asyncio.ensure_future(self._return_members(
            [(self._exact.key(block.quota), block.members, first, int(block.granted))]))
        self._returns.add(task)
        task.add_done_callback(self._returns.discard)
        block.left = 0

    async def _return_members(self, unused: list[tuple[str, str, int, int]]) -> None:
        args: list[str | int] = []
        for _, prefix, first, last in unused:
            args += [prefix, first, last]
        try:
            async with asyncio.timeout(self._exact.timeout):
                await self._return_script(keys=[key for key, *_ in unused], args=args)
        except FAILURES as exc:
            log.error("giving back unused requests to Redis failed: %s", exc)

    def _arm_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self._config.ttl, self._sweep)

    def _sweep(self) -> None:
        """Give back the blocks past their `ttl` that no request came to replace."""
        self._sweeper = None
        now = self._clock()
        for key, block in list(self._blocks.items()):
            if now >= block.expires_at and key not in self._taking:
                self._give_back(block)
                del self._blocks[key]
        if self._blocks:
            self._arm_sweeper()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for block in self._blocks.values():
            self._give_back(block)
        self._blocks.clear()
        if self._returns:
            await asyncio.gather(*self._returns)
        await self._exact.close()
