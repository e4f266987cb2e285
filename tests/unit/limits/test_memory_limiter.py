"""Limits in memory: a sliding request window, token and budget windows, OpenAI's headers."""

from __future__ import annotations

import pytest

from rolegate.config.model import LimitConfig
from rolegate.errors import RateLimited
from rolegate.limits.limiter import duration, duration_bytes
from rolegate.limits.memory import MemoryLimiter
from rolegate.limits.quota import quotas_of

NOW = 1_750_000_040.0  # 20 s into a minute


async def test_rpm_allows_the_limit_in_any_60_seconds_then_refuses_with_retry_after():
    limiter = MemoryLimiter()
    quotas = quotas_of(LimitConfig(rpm=3), "p", NOW)
    for offset in (0, 10, 20):
        await limiter.acquire(quotas, NOW + offset)

    with pytest.raises(RateLimited) as refused:
        await limiter.acquire(quotas, NOW + 30)

    assert refused.value.code == "requests_per_minute"
    assert refused.value.retry_after == pytest.approx(30.0)
    headers = dict(refused.value.headers())
    assert headers[b"retry-after"] == b"30"
    assert headers[b"x-ratelimit-remaining-requests"] == b"0"
    lease = await limiter.acquire(quotas, NOW + 60)  # the first request left the window
    assert dict(lease.headers())[b"x-ratelimit-remaining-requests"] == b"0"


async def test_a_refused_request_is_not_counted():
    limiter = MemoryLimiter()
    quotas = quotas_of(LimitConfig(rpm=1), "p", NOW)
    await limiter.acquire(quotas, NOW)
    for attempt in range(5):
        with pytest.raises(RateLimited):
            await limiter.acquire(quotas, NOW + 1 + attempt)

    await limiter.acquire(quotas, NOW + 60.5)


async def test_tokens_per_minute_refuse_once_spent_and_reset_with_the_next_minute():
    limiter = MemoryLimiter()
    lease = await limiter.acquire(quotas_of(LimitConfig(tpm=100), "p", NOW), NOW)
    limiter.settle(lease, 100, 0.0)

    with pytest.raises(RateLimited) as refused:
        await limiter.acquire(quotas_of(LimitConfig(tpm=100), "p", NOW + 1), NOW + 1)

    assert refused.value.code == "tokens_per_minute"
    assert refused.value.retry_after == pytest.approx(39.0)
    later = NOW + 40
    lease = await limiter.acquire(quotas_of(LimitConfig(tpm=100), "p", later), later)
    assert dict(lease.headers())[b"x-ratelimit-remaining-tokens"] == b"100"


async def test_a_monthly_budget_refuses_once_the_cost_is_spent():
    limiter = MemoryLimiter()
    limits = LimitConfig(monthly_budget_usd=0.01)
    lease = await limiter.acquire(quotas_of(limits, "p", NOW), NOW)
    limiter.settle(lease, 10, 0.004)
    lease = await limiter.acquire(quotas_of(limits, "p", NOW + 1), NOW + 1)
    limiter.settle(lease, 10, 0.007)

    with pytest.raises(RateLimited) as refused:
        await limiter.acquire(quotas_of(limits, "p", NOW + 2), NOW + 2)

    assert refused.value.code == "budget_exceeded"


async def test_counters_of_different_principals_are_apart():
    limiter = MemoryLimiter()
    await limiter.acquire(quotas_of(LimitConfig(rpm=1), "alice", NOW), NOW)

    await limiter.acquire(quotas_of(LimitConfig(rpm=1), "bob", NOW), NOW)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.02, "20ms"), (1.0, "1s"), (59.6, "1m0s"), (360, "6m0s"), (3723, "1h2m3s")])
def test_reset_durations_are_written_as_openai_writes_them(seconds, text):
    assert duration(seconds) == text
    assert duration_bytes(seconds) == duration_bytes(seconds) == text.encode()  # made, then kept
