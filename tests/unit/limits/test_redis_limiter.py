"""Limits in Redis (the real server): shared by limiters in different replicas, atomic, and
failing closed (503) or open, as configured, when Redis cannot be reached."""

from __future__ import annotations

import asyncio
import re

import pytest
from redis.asyncio import Redis

from rolegate.authn.principal import Principal
from rolegate.config.load import validate_settings
from rolegate.config.model import LimitConfig, RateLimitsConfig
from rolegate.errors import RateLimited, ServiceUnavailable
from rolegate.limits.quota import QuotaPlan, quotas_of
from rolegate.limits.redis import SETTLE_DELAY, RedisLimiter
from tests.support.storage import REDIS_URL

NOW = 1_750_000_040.0  # 20 s into a minute
UNREACHABLE = "redis://127.0.0.1:1/0"


def limiter(prefix: str, url: str = REDIS_URL, **options: object) -> RedisLimiter:
    return RedisLimiter(RateLimitsConfig(backend="redis", url=url, prefix=prefix,
                                         **options))  # type: ignore[arg-type]


async def test_two_replicas_share_one_request_window(redis_prefix):
    first, second = limiter(redis_prefix), limiter(redis_prefix)
    quotas = quotas_of(LimitConfig(rpm=10), "p", NOW)
    outcomes = await asyncio.gather(*(
        (first if i % 2 else second).acquire(quotas, NOW + i / 100) for i in range(25)),
        return_exceptions=True)
    await first.close()
    await second.close()

    assert sum(not isinstance(o, Exception) for o in outcomes) == 10
    assert all(isinstance(o, RateLimited) for o in outcomes if isinstance(o, Exception))


async def test_settled_tokens_are_seen_by_the_other_replica(redis_prefix):
    first, second = limiter(redis_prefix), limiter(redis_prefix)
    limits = LimitConfig(daily_tokens=50)
    lease = await first.acquire(quotas_of(limits, "p", NOW), NOW)
    first.settle(lease, 50, 0.0)
    await asyncio.sleep(SETTLE_DELAY * 4)  # settled usage reaches Redis within SETTLE_DELAY

    with pytest.raises(RateLimited) as refused:
        await second.acquire(quotas_of(limits, "p", NOW + 1), NOW + 1)
    await first.close()
    await second.close()

    assert refused.value.code == "tokens_per_day"
    headers = dict(refused.value.headers())
    assert headers[b"x-ratelimit-limit-tokens"] == b"50"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"0"


async def test_settled_tokens_are_seen_by_the_same_replicas_next_request_at_once(redis_prefix):
    first, second = limiter(redis_prefix), limiter(redis_prefix)
    limits = LimitConfig(daily_tokens=50)
    lease = await first.acquire(quotas_of(limits, "p", NOW), NOW)
    first.settle(lease, 30, 0.0)
    first.settle(lease, 20, 0.0)

    with pytest.raises(RateLimited) as refused:
        await first.acquire(quotas_of(limits, "p", NOW + 1), NOW + 1)
    with pytest.raises(RateLimited):  # carried by that request's round trip: shared already
        await second.acquire(quotas_of(limits, "p", NOW + 1), NOW + 1)
    await first.close()
    await second.close()

    assert refused.value.code == "tokens_per_day"


async def test_usage_waiting_at_close_is_written(redis_prefix):
    first, second = limiter(redis_prefix), limiter(redis_prefix)
    limits = LimitConfig(daily_tokens=50)
    lease = await first.acquire(quotas_of(limits, "p", NOW), NOW)
    first.settle(lease, 50, 0.0)
    await first.close()

    with pytest.raises(RateLimited):
        await second.acquire(quotas_of(limits, "p", NOW + 1), NOW + 1)
    await second.close()


async def test_an_unreachable_redis_fails_closed_with_503_by_default(redis_prefix):
    closed = limiter(redis_prefix, UNREACHABLE, timeout=0.5)

    with pytest.raises(ServiceUnavailable) as refused:
        await closed.acquire(quotas_of(LimitConfig(rpm=1), "p", NOW), NOW)
    await closed.close()

    assert refused.value.code == "rate_limiter_unavailable"


async def test_an_unreachable_redis_serves_without_limits_when_fail_open(redis_prefix):
    open_ = limiter(redis_prefix, UNREACHABLE, timeout=0.5, fail_open=True)

    lease = await open_.acquire(quotas_of(LimitConfig(rpm=1), "p", NOW), NOW)
    open_.settle(lease, 10, 0.1)
    await open_.close()

    assert lease.headers() == []


async def test_a_redis_that_accepts_but_never_answers_fails_closed_within_the_timeout(
        redis_prefix, caplog):
    """The timeout bounds each batch of checks as a whole (the client has no per-read timer)."""
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read(-1)  # reads everything, answers nothing
    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    stalled = limiter(redis_prefix, f"redis://127.0.0.1:{port}/0", timeout=0.3)
    live = limiter(redis_prefix, timeout=5)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        outcomes = await asyncio.gather(*(
            stalled.acquire(quotas_of(LimitConfig(rpm=5), "p", NOW), NOW)
            for n in range(3)), return_exceptions=True)
        waited = loop.time() - started
        lease = await live.acquire(quotas_of(LimitConfig(rpm=5), "p", NOW), NOW)
    finally:
        await stalled.close()
        await live.close()
        silent.close()
        for writer in accepted:
            writer.close()
        await asyncio.sleep(0.01)
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes)
    assert waited < 5  # bounded by the timeout (0.3 s), with room for a loaded machine
    assert lease.standings
    # The log names what went wrong even when the exception's text is empty (a timeout).
    assert "the rate limiter's Redis is unavailable: TimeoutError" in caplog.text


async def test_every_admitted_request_is_its_own_member_of_the_request_log(redis_prefix):
    """The log's members are made by the limiter: nothing the caller sends can merge two."""
    first, second = limiter(redis_prefix), limiter(redis_prefix)
    quotas = quotas_of(LimitConfig(rpm=100), "{p}", NOW)
    for n in range(10):
        await (first if n % 2 else second).acquire(quotas, NOW)  # the same instant, too
    client = Redis.from_url(REDIS_URL)
    members = await client.zrange(f"{redis_prefix}:{{p}}:rpm", 0, -1)
    await client.aclose()
    await first.close()
    await second.close()

    assert len(members) == len(set(members)) == 10


async def test_crafted_end_users_keep_their_own_counters_in_redis(redis_prefix):
    plan = QuotaPlan(validate_settings({
        "models": [{"name": "m", "provider": "mock"}],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [{"name": "r", "when": {"roles": ["r"]}, "allow": {
            "routes": ["inference"], "models": ["*"],
            "limits": {"rpm": 1, "per_end_user": True}}}]}, source="<test>").policy)
    shared = limiter(redis_prefix)
    victim = Principal(issuer="entra", subject="app", end_user="victim")
    await shared.acquire(plan.quotas("r", victim, NOW), NOW)
    crafted = ["victim}", "{victim", "victim:rpm", "victim\x00", "}:user:victim", "v" * 50_000]

    outcomes = [await shared.acquire(plan.quotas(
        "r", Principal(issuer="entra", subject="app", end_user=name), NOW), NOW)
        for name in crafted]
    client = Redis.from_url(REDIS_URL)
    keys = [key.decode() async for key in client.scan_iter(f"{redis_prefix}:*")]
    await client.aclose()
    with pytest.raises(RateLimited):  # the victim's own counter is still spent
        await shared.acquire(plan.quotas("r", victim, NOW), NOW)
    await shared.close()

    assert all(outcome.headers() for outcome in outcomes)  # each admitted on its own counter
    assert len(keys) == len(crafted) + 1
    assert all(re.fullmatch(re.escape(redis_prefix) + r":\{r:[0-9a-f]{32}\}:rpm", key)
               for key in keys)



async def test_readiness_names_an_unreachable_redis_until_a_probe_reaches_it(redis_prefix):
    """Readiness says why the gateway is not ready while its limits' Redis cannot be reached,
    and recovers by itself: a load balancer sends no request to an unready replica, so only a
    probe can clear it."""
    down, up = limiter(redis_prefix, UNREACHABLE, timeout=0.5), limiter(redis_prefix)
    await down.probe()
    up.last_error = "Connection refused"  # as a failed request left it, before Redis came back
    was_unready = up.readiness()
    await up.probe()
    await down.close()
    await up.close()

    assert (down.readiness() or "").startswith("Redis unreachable, requests are refused: ")
    assert was_unready is not None
    assert up.readiness() is None


async def test_an_unreachable_redis_does_not_hold_readiness_back_when_fail_open(redis_prefix):
    open_ = limiter(redis_prefix, UNREACHABLE, timeout=0.5, fail_open=True)
    await open_.probe()
    await open_.close()

    assert open_.last_error is not None
    assert open_.readiness() is None


async def test_a_refused_request_marks_redis_unready_at_once(redis_prefix):
    closed = limiter(redis_prefix, UNREACHABLE, timeout=0.5)
    with pytest.raises(ServiceUnavailable):
        await closed.acquire(quotas_of(LimitConfig(rpm=1), "p", NOW), NOW)
    await closed.close()

    assert closed.readiness() is not None
