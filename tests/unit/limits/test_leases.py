"""`LeasedLimiter` on the real Redis: requests spent from local blocks without a round trip
each, the unused part given back, and exact limits kept by default."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from rolegate.config.model import LeaseConfig, LimitConfig, RateLimitsConfig
from rolegate.errors import RateLimited
from rolegate.limits.leases import LeasedLimiter
from rolegate.limits.limiter import Reservation
from rolegate.limits.quota import quotas_of
from rolegate.limits.redis import RedisLimiter
from tests.support.storage import REDIS_URL

NOW = 1_750_000_040.0  # 20 s into a minute


def leased(prefix: str, **lease: float) -> LeasedLimiter:
    exact = RedisLimiter(RateLimitsConfig(backend="redis", url=REDIS_URL, prefix=prefix))
    return LeasedLimiter(exact, LeaseConfig.model_validate(lease), lambda: NOW)


async def redis_value(command: str, key: str) -> float:
    client = Redis.from_url(REDIS_URL)
    try:
        return float(await client.execute_command(command, key) or 0)
    finally:
        await client.aclose()


async def test_requests_are_spent_from_a_block_without_a_round_trip_each(redis_prefix):
    limiter = leased(redis_prefix, requests=10)
    # Another principal's first block loads the script into Redis (one more trip when Redis
    # does not hold it yet, as after a SCRIPT FLUSH), so only the blocks below are counted.
    await limiter.acquire(quotas_of(LimitConfig(rpm=100), "warm-up", NOW), NOW)
    before = limiter._take_script.round_trips
    quotas = quotas_of(LimitConfig(rpm=100), "p", NOW)
    for i in range(25):
        await limiter.acquire(quotas, NOW + i / 100)

    trips = limiter._take_script.round_trips - before
    counted = await redis_value("ZCARD", f"{redis_prefix}:p:rpm")
    await limiter.close()
    after_close = await redis_value("ZCARD", f"{redis_prefix}:p:rpm")

    assert trips == 3            # blocks of 10, 10 and 10 for 25 requests
    assert counted == 30         # the third block is counted whole while it is held
    assert after_close == 25     # its 5 unused requests given back


async def test_a_spent_counter_refuses_locally_and_says_so(redis_prefix):
    limiter = leased(redis_prefix, requests=4)
    quotas = quotas_of(LimitConfig(rpm=6), "p", NOW)
    admitted = 0
    for _ in range(10):
        try:
            lease = await limiter.acquire(quotas, NOW)
            admitted += 1
        except RateLimited as refused:
            headers = dict(refused.headers())
    await limiter.close()

    assert admitted == 6
    assert headers[b"x-ratelimit-remaining-requests"] == b"0"
    assert dict(lease.headers())[b"x-ratelimit-limit-requests"] == b"6"


async def test_tokens_counted_are_the_real_usage_once_blocks_are_given_back(redis_prefix):
    limiter = leased(redis_prefix, tokens=500)
    quotas = quotas_of(LimitConfig(tpm=10_000), "p", NOW)
    for used in (70, 150, 20):
        lease = await limiter.acquire(quotas, NOW, Reservation(tokens=100))
        limiter.settle(lease, used, 0.0)
    await limiter.close()

    assert await redis_value("GET", f"{redis_prefix}:{quotas[0].counter}") == 240


async def test_a_block_spent_past_its_end_is_charged_to_the_counter(redis_prefix):
    limiter = leased(redis_prefix, tokens=150)
    quotas = quotas_of(LimitConfig(tpm=10_000), "p", NOW)
    for _ in range(2):  # 100 + 100 reserved from a block of 150: 50 past its end
        await limiter.acquire(quotas, NOW, Reservation(tokens=100))
    await limiter.acquire(quotas, NOW, Reservation(tokens=100))  # a new block: the 50 added
    counted = await redis_value("GET", f"{redis_prefix}:{quotas[0].counter}")
    await limiter.close()

    assert counted == 150 + 50 + 150


def test_leases_need_the_redis_backend():
    with pytest.raises(ValidationError, match=r"limits\.lease needs limits\.backend redis"):
        RateLimitsConfig(lease=LeaseConfig(requests=10))
    assert RateLimitsConfig(backend="redis", url=REDIS_URL).lease is None  # exact by default


async def test_requests_that_lose_fresh_blocks_to_others_are_checked_exactly(redis_prefix):
    # Spending from a block does not yield to the event loop, so a worker can spend a whole
    # fresh block while another waits to run again; that one must not be refused.
    limiter = leased(redis_prefix, requests=3)
    quotas = quotas_of(LimitConfig(rpm=100_000), "p", NOW)

    async def worker() -> int:
        for _ in range(60):
            await limiter.acquire(quotas, NOW)
        return 60

    admitted = await asyncio.gather(*(worker() for _ in range(8)))
    await limiter.close()

    assert sum(admitted) == 480
    assert await redis_value("ZCARD", f"{redis_prefix}:p:rpm") == 480
