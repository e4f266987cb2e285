"""Start-up warming of a key cache: it keeps retrying until a key set is loaded, so readiness
recovers after an IdP outage without waiting for traffic."""

from __future__ import annotations

import asyncio
import logging

import pytest

from rolegate.authn.jwks import JwksCache
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.keys import KeyPair, jwks

URL = "https://idp.test/keys"


async def test_warming_retries_until_the_key_set_can_be_fetched(rsa_key: KeyPair) -> None:
    source = FakeKeySource({URL: jwks(rsa_key)})
    source.is_down = True
    cache = JwksCache("corp", fetch=source, clock=FakeClock(), jwks_url=URL)

    warming = asyncio.ensure_future(cache.warm_until_loaded(retry_every=0))
    while len(source.fetches) < 3:
        await asyncio.sleep(0)
    assert not cache.is_loaded
    source.is_down = False
    await asyncio.wait_for(warming, timeout=5)

    assert cache.is_loaded
    assert (await cache.key_for(rsa_key.kid, "RS256")).kid == rsa_key.kid


async def test_warming_fetches_once_when_the_idp_is_up(rsa_key: KeyPair) -> None:
    source = FakeKeySource({URL: jwks(rsa_key)})
    cache = JwksCache("corp", fetch=source, clock=FakeClock(), jwks_url=URL)

    await asyncio.wait_for(cache.warm_until_loaded(retry_every=0), timeout=5)

    assert cache.is_loaded
    assert source.fetches == [URL]


async def test_keys_loaded_by_a_request_while_warming_waits_are_not_fetched_again(
        rsa_key: KeyPair) -> None:
    source = FakeKeySource({URL: jwks(rsa_key)})
    source.is_down = True
    cache = JwksCache("corp", fetch=source, clock=FakeClock(), jwks_url=URL)
    warming = asyncio.ensure_future(cache.warm_until_loaded(retry_every=0.5))
    while not source.fetches:
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # the first fetch has failed; warming waits to retry

    source.is_down = False
    await cache.refresh()  # as a request's unknown-kid refresh would
    await asyncio.wait_for(warming, timeout=5)

    assert cache.is_loaded
    assert source.fetches == [URL, URL]


async def test_a_key_fetch_cancelled_midway_does_not_block_the_next_refresh(
        rsa_key: KeyPair) -> None:
    """At shutdown the event loop cancels a fetch in flight; the cache must not keep waiting on
    the cancelled fetch, nor report it as an unretrieved error."""
    source = FakeKeySource({URL: jwks(rsa_key)}, delay=30)
    cache = JwksCache("corp", fetch=source, clock=FakeClock(), jwks_url=URL)
    waiting = asyncio.ensure_future(cache.refresh())
    while not source.fetches:
        await asyncio.sleep(0)
    (fetching,) = [task for task in asyncio.all_tasks()
                   if task.get_coro().__qualname__ == "JwksCache._fetch_and_store"]

    fetching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    source.delay = 0
    await asyncio.wait_for(cache.refresh(), timeout=5)

    assert cache.is_loaded
    assert source.fetches == [URL, URL]


async def test_an_issuer_that_stays_down_is_retried_and_logged_ever_more_slowly(
        rsa_key: KeyPair, caplog: pytest.LogCaptureFixture) -> None:
    source = FakeKeySource({URL: jwks(rsa_key)})
    source.is_down = True
    cache = JwksCache("corp", fetch=source, clock=FakeClock(), jwks_url=URL)
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 9:  # the tenth fetch finds the issuer back
            source.is_down = False

    with caplog.at_level(logging.INFO, logger="rolegate.jwks"):
        await asyncio.wait_for(cache.warm_until_loaded(retry_every=5, max_interval=60,
                                                       sleep=sleep), timeout=5)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert pauses == [5, 10, 20, 40, 60, 60, 60, 60, 60]
    assert len(source.fetches) == 10 and cache.is_loaded
    assert [w.split("(")[1].split(" time")[0] for w in warnings[:-1]] == ["1", "2", "4", "8"]
    assert warnings[-1] == ("the keys of issuer corp can be fetched again, after 9 failure(s) "
                            "in a row")
    assert cache.failures_in_a_row == 0 and cache.last_error is None


async def test_the_last_failed_fetch_says_why_until_a_fetch_succeeds(rsa_key: KeyPair) -> None:
    """Readiness reports it: `signing keys unavailable: <why>`, or `not fetched yet`."""
    source = FakeKeySource({URL: jwks(rsa_key)})
    source.is_down = True
    cache = JwksCache("corp", fetch=source, clock=FakeClock(), jwks_url=URL)
    assert cache.last_error is None  # nothing fetched yet, so nothing failed

    async def sleep(seconds: float) -> None:
        assert cache.last_error == f"GET {URL} failed"
        source.is_down = False

    await asyncio.wait_for(cache.warm_until_loaded(sleep=sleep), timeout=5)

    assert cache.is_loaded and cache.last_error is None
