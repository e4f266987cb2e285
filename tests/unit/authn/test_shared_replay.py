"""`RedisReplaySet` against the real Redis: a jti is accepted once across every set sharing the
Redis (two `SharedReplay`s here, as two processes), kept under a hashed, namespaced key until
its token expires; Redis unreachable is 503, or this process's own set with `fail_open`."""

from __future__ import annotations

import asyncio
import hashlib
import logging

import pytest
from redis.asyncio import Redis

from rolegate.authn.shared_replay import SharedReplay
from rolegate.errors import ServiceUnavailable, Unauthenticated
from tests.support.clock import FakeClock
from tests.support.storage import REDIS_URL

ISSUER = "https://idp.example.test"
START = 1_000.0


def shared(redis_url: str, prefix: str, clock: FakeClock, *, fail_open: bool = False
           ) -> SharedReplay:
    return SharedReplay(Redis.from_url(redis_url, socket_connect_timeout=0.5), prefix=prefix,
                        timeout=0.5, is_fail_open=fail_open, clock=clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture
async def redis():
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_a_jti_accepted_by_one_process_is_refused_by_another(redis_prefix, clock):
    one, other = shared(REDIS_URL, redis_prefix, clock), shared(REDIS_URL, redis_prefix, clock)
    try:
        await one.for_issuer(ISSUER).claim_once("j-1", expires=START + 60)
        with pytest.raises(Unauthenticated) as caught:
            await other.for_issuer(ISSUER).claim_once("j-1", expires=START + 60)
        await other.for_issuer(ISSUER).claim_once("j-2", expires=START + 60)
        await other.for_issuer("https://other-idp.test").claim_once("j-1", expires=START + 60)
    finally:
        await one.close()
        await other.close()

    assert caught.value.code == "token_replayed"


async def test_the_key_is_a_hash_under_the_prefix_and_lives_until_the_token_expires(
        redis_prefix, redis, clock):
    replay = shared(REDIS_URL, redis_prefix, clock)
    try:
        await replay.for_issuer(ISSUER).claim_once("plain-jti", expires=START + 90.5)
    finally:
        await replay.close()

    digest = hashlib.sha256(f"{ISSUER}\0plain-jti".encode()).hexdigest()
    key = f"{redis_prefix}:jti:{digest}"
    assert [k.decode() async for k in redis.scan_iter(match=f"{redis_prefix}:*")] == [key]
    assert await redis.get(key) == b"1"
    assert 90_000 < await redis.pttl(key) <= 90_501


@pytest.mark.parametrize("jti", [None, "", 7, "x" * 257], ids=repr)
async def test_an_unusable_jti_is_refused_before_redis_is_asked(jti, redis_prefix, redis,
                                                                clock):
    replay = shared(REDIS_URL, redis_prefix, clock)
    try:
        with pytest.raises(Unauthenticated) as caught:
            await replay.for_issuer(ISSUER).claim_once(jti, expires=START + 60)
    finally:
        await replay.close()

    assert caught.value.code == "missing_claim"
    assert [k async for k in redis.scan_iter(match=f"{redis_prefix}:*")] == []


async def test_a_jti_with_a_lone_surrogate_is_kept_like_any_other(redis_prefix, clock):
    """A token's JSON may carry `"\\ud800"`: it is hashed (as UTF-8 with surrogates passed
    through), never refused with a 500."""
    replay = shared(REDIS_URL, redis_prefix, clock)
    try:
        await replay.for_issuer(ISSUER).claim_once("a\ud800", expires=START + 60)
        with pytest.raises(Unauthenticated) as caught:
            await replay.for_issuer(ISSUER).claim_once("a\ud800", expires=START + 60)
        await replay.for_issuer(ISSUER).claim_once("a\ud801", expires=START + 60)
    finally:
        await replay.close()

    assert caught.value.code == "token_replayed"


async def test_redis_unreachable_refuses_with_503_and_logs_why(clock, caplog):
    replay = shared("redis://127.0.0.1:1/0", "rg-down", clock)
    try:
        with caplog.at_level(logging.ERROR, logger="rolegate.authn"), \
                pytest.raises(ServiceUnavailable) as caught:
            await replay.for_issuer(ISSUER).claim_once("j", expires=START + 60)
    finally:
        await replay.close()

    assert caught.value.code == "replay_check_unavailable"
    assert str(caught.value) == "One-time tokens cannot be checked for replay right now."
    [record] = caplog.records
    assert record.getMessage().startswith("the replay set's Redis is unavailable: Error ")
    assert "127.0.0.1:1" in record.getMessage()


async def test_redis_that_never_answers_is_given_up_after_the_timeout(clock, caplog):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, reads, never answers
        writer.close()
    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    replay = shared(f"redis://127.0.0.1:{port}/0", "rg-silent", clock)
    try:
        with caplog.at_level(logging.ERROR, logger="rolegate.authn"), \
                pytest.raises(ServiceUnavailable) as caught:
            await asyncio.wait_for(replay.for_issuer(ISSUER).claim_once("j", START + 60), 5)
    finally:
        await replay.close()
        server.close()

    assert caught.value.code == "replay_check_unavailable"
    assert [r.getMessage() for r in caplog.records] == [
        "the replay set's Redis is unavailable: TimeoutError"]


async def test_redis_unreachable_with_fail_open_uses_this_process_set(clock):
    replay = shared("redis://127.0.0.1:1/0", "rg-down", clock, fail_open=True)
    issuer = replay.for_issuer(ISSUER)
    try:
        await issuer.claim_once("j", expires=START + 60)
        with pytest.raises(Unauthenticated) as caught:
            await issuer.claim_once("j", expires=START + 60)
        clock.advance(61)
        await issuer.claim_once("j", expires=START + 200)  # forgotten once its token expired
    finally:
        await replay.close()

    assert caught.value.code == "token_replayed"
