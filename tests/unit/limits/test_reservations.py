"""Reservations: token and cost limits hold what a request may use from admission until its usage
is known, so requests running at the same time cannot all spend the same budget. Measured on
both backends: N requests at once against a small budget overshoot it by less than one
reservation (README, "Rate limits and budgets")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rolegate.config.model import LimitConfig, ModelConfig, RateLimitsConfig
from rolegate.errors import RateLimited
from rolegate.limits.limiter import NO_RESERVATION, Limiter, Reservation
from rolegate.limits.memory import MemoryLimiter
from rolegate.limits.quota import quotas_of
from rolegate.limits.redis import RedisLimiter
from rolegate.limits.reservation import Reserver
from tests.support.storage import REDIS_URL

NOW = 1_750_000_040.0
BASE = "{p}"
N = 50


@pytest.fixture(params=["memory", "redis"])
async def replicas(request: pytest.FixtureRequest,
                   redis_prefix: str) -> AsyncIterator[list[Limiter]]:
    """Two limiters sharing counters: one process's memory, or two replicas on one Redis."""
    if request.param == "memory":
        shared = MemoryLimiter()
        yield [shared, shared]
        return
    config = RateLimitsConfig(backend="redis", url=REDIS_URL, prefix=redis_prefix)
    limiters: list[Limiter] = [RedisLimiter(config), RedisLimiter(config)]
    yield limiters
    for limiter in limiters:
        await limiter.close()


async def used(replicas: list[Limiter], limits: LimitConfig) -> float:
    """What a token counter holds (settled usage and open reservations), read through a quota
    on the same counter with room to spare, once every replica has written its settled usage."""
    for limiter in replicas:
        if isinstance(limiter, RedisLimiter):
            await limiter.flush()
    roomy = LimitConfig(daily_tokens=10**12) if limits.daily_tokens else \
        LimitConfig(monthly_budget_usd=10.0**12)
    lease = await replicas[0].acquire(quotas_of(roomy, BASE, NOW), NOW)
    return lease.standings[0].used


async def spend_at_once(replicas: list[Limiter], limits: LimitConfig, reservation: Reservation,
                        tokens: int, cost: float) -> int:
    """N requests at once: each admitted one waits for its 'upstream', then settles what it
    used. Returns how many were admitted."""
    quotas = quotas_of(limits, BASE, NOW)

    async def one(index: int) -> bool:
        limiter = replicas[index % 2]
        try:
            lease = await limiter.acquire(quotas, NOW, reservation)
        except RateLimited:
            return False
        await asyncio.sleep(0.02)  # the upstream call: every request is admitted before any ends
        limiter.settle(lease, tokens, cost)
        return True

    return sum(await asyncio.gather(*(one(i) for i in range(N))))


@pytest.mark.parametrize(("limit", "reserved"), [(1000, 100), (950, 100), (50, 400)],
                         ids=["limit-a-multiple", "limit-between-multiples", "reservation-over"])
async def test_concurrent_requests_overshoot_a_token_budget_by_less_than_one_reservation(
        replicas, limit, reserved):
    limits = LimitConfig(daily_tokens=limit)

    admitted = await spend_at_once(replicas, limits, Reservation(tokens=reserved), reserved, 0.0)
    spent = await used(replicas, limits)

    # Each admitted request used all it reserved (the worst case for the bound).
    assert spent == admitted * reserved
    assert spent - limit < reserved
    assert admitted == -(-limit // reserved)  # ceil: admitted while the counter was under
    assert admitted < N  # without reservations all N would be admitted at once


async def test_without_reservations_every_concurrent_request_is_admitted(replicas):
    """What reservations prevent: the counter only moves when replies end."""
    limits = LimitConfig(daily_tokens=100)

    admitted = await spend_at_once(replicas, limits, NO_RESERVATION, 100, 0.0)

    assert admitted == N
    assert await used(replicas, limits) == N * 100


async def test_settling_replaces_the_reservation_with_the_real_usage(replicas):
    limits = LimitConfig(daily_tokens=500)
    quotas = quotas_of(limits, BASE, NOW)
    lease = await replicas[0].acquire(quotas, NOW, Reservation(tokens=600))

    held = await used(replicas, limits)
    with pytest.raises(RateLimited):  # the other replica sees the reservation at once
        await replicas[1].acquire(quotas, NOW, Reservation(tokens=10))
    replicas[0].settle(lease, 30, 0.0)
    settled = await used(replicas, limits)
    again = await replicas[1].acquire(quotas, NOW, Reservation(tokens=10))

    assert (held, settled) == (600, 30)
    assert dict(again.headers())[b"x-ratelimit-remaining-tokens"] == b"470"


async def test_a_budget_in_usd_reserves_cost(replicas):
    limits = LimitConfig(monthly_budget_usd=1.0)

    admitted = await spend_at_once(replicas, limits, Reservation(tokens=10, cost=0.3), 10, 0.3)

    assert admitted == 4  # 0, 0.3, 0.6, 0.9 are under 1.0
    assert await used(replicas, limits) == pytest.approx(1.2)


def test_a_reservation_is_the_stated_output_and_the_prompt_at_the_models_prices():
    model = ModelConfig.model_validate({"name": "m", "provider": "mock",
                                        "input_cost_per_1k": 1.0, "output_cost_per_1k": 2.0})
    reserver = Reserver([model], default_tokens=256)
    tokens = quotas_of(LimitConfig(tpm=10), BASE, NOW)
    body = {"max_completion_tokens": 100, "n": 2}

    stated = reserver.reservation(tokens, "chat/completions", body, 400, "m")
    default = reserver.reservation(tokens, "chat/completions", {}, 0, "m")
    embeddings = reserver.reservation(tokens, "embeddings", {"max_tokens": 9}, 40, "m")
    only_requests = reserver.reservation(quotas_of(LimitConfig(rpm=1), BASE, NOW),
                                         "chat/completions", body, 400, "m")

    assert stated == Reservation(tokens=100 + 200, cost=(100 * 1.0 + 200 * 2.0) / 1000)
    assert default.tokens == 256
    assert embeddings.tokens == 10
    assert only_requests == NO_RESERVATION
