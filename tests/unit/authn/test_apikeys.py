"""`ApiKeyVerifier` against an in-memory key store: the lookup cache and its bound, and what
happens when the store fails (a 503 for a lookup, a logged warning for last-used times)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from rolegate.authn.apikeys import MAX_CACHED, ApiKeyVerifier
from rolegate.authn.principal import Principal
from rolegate.config.model import LimitConfig
from rolegate.errors import ServiceUnavailable, Unauthenticated
from rolegate.keys.material import KeyHasher
from rolegate.keys.records import ApiKey
from tests.support.clock import FakeClock

KEY = "rg-" + "a" * 40


class MemoryKeys:
    """A key store in a dict; counts lookups; fails on cue like an unreachable database."""

    def __init__(self) -> None:
        self.hasher = KeyHasher(b"test-pepper-0123456789")
        self.records: dict[str, ApiKey] = {}
        self.finds: list[str] = []
        self.marked: list[dict[str, float]] = []
        self.failure: Exception | None = None
        self.gate: asyncio.Event | None = None  # when set, lookups wait for it

    def add(self, plaintext: str, **fields: Any) -> ApiKey:
        record = ApiKey(id=f"key-{len(self.records)}", key_hash=self.hasher.digest(plaintext),
                        hint=plaintext[-4:], name="svc", owner="team", **fields)
        self.records[plaintext] = record
        return record

    async def find(self, plaintext: str) -> ApiKey | None:
        self.finds.append(plaintext)
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return self.records.get(plaintext)

    async def mark_used(self, last_used: Mapping[str, float]) -> None:
        if self.failure is not None:
            raise self.failure
        self.marked.append(dict(last_used))


def database_down() -> OperationalError:
    return OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))


@pytest.fixture
def store() -> MemoryKeys:
    return MemoryKeys()


@pytest.fixture
def verifier(store: MemoryKeys, clock: FakeClock) -> ApiKeyVerifier:
    return ApiKeyVerifier(store, clock, cache_ttl=30)


async def test_a_known_key_resolves_to_its_owner_and_is_looked_up_once_within_the_ttl(
        verifier, store, clock):
    record = store.add(KEY, roles=("svc",))

    first = await verifier.verify(KEY)
    clock.advance(29)
    second = await verifier.verify(KEY)

    assert first == second
    assert (first.subject, first.key_id, first.roles) == ("team", record.id, frozenset({"svc"}))
    assert store.finds == [KEY]


@pytest.mark.parametrize("failure", [database_down(), OSError("network unreachable")],
                         ids=["database-error", "os-error"])
async def test_a_failing_key_store_is_a_503_not_an_unknown_key(verifier, store, failure,
                                                              caplog):
    store.failure = failure

    with pytest.raises(ServiceUnavailable) as caught, caplog.at_level(logging.ERROR):
        await verifier.verify(KEY)

    assert caught.value.status == 503
    assert caught.value.code == "key_store_unavailable"
    assert "API key lookup failed" in caplog.text
    # One line, without the statement: an operator's log never gets a driver's dump.
    assert [record.getMessage().count("\n") for record in caplog.records] == [0]
    assert "[SQL" not in caplog.text


async def test_a_lookup_that_failed_is_not_cached(verifier, store):
    store.add(KEY)
    store.failure = database_down()
    with pytest.raises(ServiceUnavailable):
        await verifier.verify(KEY)

    store.failure = None
    principal = await verifier.verify(KEY)

    assert principal.subject == "team"
    assert store.finds == [KEY, KEY]


async def test_last_used_times_are_written_in_one_batch(verifier, store, clock):
    record = store.add(KEY)
    await verifier.verify(KEY)
    clock.advance(5)
    await verifier.verify(KEY)

    await verifier.flush_last_used()
    await verifier.flush_last_used()

    assert store.marked == [{record.id: clock.now}, {}]


@pytest.mark.parametrize("failure", [database_down(), OSError("disk full")],
                         ids=["database-error", "os-error"])
async def test_last_used_times_that_cannot_be_written_are_logged_and_dropped(
        verifier, store, clock, failure, caplog):
    store.add(KEY)
    await verifier.verify(KEY)
    store.failure = failure

    with caplog.at_level(logging.WARNING, logger="rolegate.keys"):
        await verifier.flush_last_used()  # does not raise
    store.failure = None
    await verifier.flush_last_used()

    assert "could not write last-used times of 1 keys" in caplog.text
    assert "[SQL" not in caplog.text and "\n" not in caplog.records[0].getMessage()
    assert store.marked == [{}]


async def test_the_lookup_cache_holds_at_most_max_cached_keys_dropping_the_oldest(
        verifier, store):
    """An unknown key is cached too; a flood of random keys must not grow memory without
    bound, so the oldest lookups are dropped and asked for again."""
    keys = [f"rg-{n:040d}" for n in range(MAX_CACHED + 1)]
    for key in keys:
        with pytest.raises(Unauthenticated):
            await verifier.verify(key)
    assert len(store.finds) == MAX_CACHED + 1

    for kept in (keys[1], keys[-1]):  # still cached: not asked again
        with pytest.raises(Unauthenticated):
            await verifier.verify(kept)
    assert len(store.finds) == MAX_CACHED + 1
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(keys[0])  # dropped: asked again

    assert caught.value.code == "unknown_api_key"
    assert store.finds[-1] == keys[0]
    assert len(store.finds) == MAX_CACHED + 2


async def test_requests_that_find_a_key_uncached_together_share_one_lookup(verifier, store):
    store.add(KEY, roles=("svc",))

    principals = await asyncio.gather(*(verifier.verify(KEY) for _ in range(20)))

    assert store.finds == [KEY]
    assert all(principal is principals[0] for principal in principals)


async def test_a_caller_that_leaves_does_not_cancel_the_shared_lookup(verifier, store):
    store.add(KEY, roles=("svc",))
    store.gate = asyncio.Event()
    first = asyncio.ensure_future(verifier.verify(KEY))
    second = asyncio.ensure_future(verifier.verify(KEY))
    await asyncio.sleep(0.01)  # both wait on the one lookup, held at the gate
    first.cancel()
    store.gate.set()

    assert (await second).subject == "team"
    assert first.cancelled()
    assert store.finds == [KEY]


async def test_a_failed_shared_lookup_fails_every_waiting_caller_and_is_retried_later(
        verifier, store):
    store.add(KEY, roles=("svc",))
    store.failure = database_down()

    outcomes = await asyncio.gather(*(verifier.verify(KEY) for _ in range(3)),
                                    return_exceptions=True)
    store.failure = None

    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes)
    assert (await verifier.verify(KEY)).subject == "team"
    assert store.finds == [KEY, KEY]


# --- what a key resolves to, and each way it is refused ----------------------------------------

async def test_a_key_resolves_to_a_principal_with_its_grants_and_model_limit(verifier, store):
    record = store.add(KEY, roles=("svc", "ops"), scopes=("llm.invoke",),
                       models=("gpt-4o-mini",), limits=LimitConfig(rpm=5))

    principal = await verifier.verify(KEY)

    assert principal == Principal(issuer="apikey", subject="team", key_id=record.id,
                                  roles=frozenset({"svc", "ops"}),
                                  scopes=frozenset({"llm.invoke"}),
                                  allowed_models=("gpt-4o-mini",))
    assert verifier.limits_for(record.id) == LimitConfig(rpm=5)
    assert verifier.limits_for("key-unknown") is None


@pytest.mark.parametrize("key", ["rg-short", "rg-" + "a" * 126, "sk-" + "a" * 40,
                                 "rg-" + "a" * 39 + "!", "rg-" + "é" * 20],
                         ids=["too-short", "too-long", "other-prefix", "punctuation",
                              "not-ascii"])
async def test_a_malformed_key_is_refused_without_a_lookup(key, verifier, store):
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(key)
    assert (caught.value.code, str(caught.value)) == ("invalid_api_key",
                                                      "The API key is malformed.")
    assert store.finds == []


@pytest.mark.parametrize("length", [16, 125], ids=["shortest", "longest"])
async def test_keys_of_the_shortest_and_longest_form_are_looked_up(length, verifier, store):
    key = "rg-" + "A_-9" * 40
    key = key[:3 + length]
    store.add(key)
    assert (await verifier.verify(key)).subject == "team"


async def test_an_unknown_key_is_refused(verifier, store):
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(KEY)
    assert (caught.value.code, str(caught.value)) == ("unknown_api_key",
                                                      "The API key is not known.")


async def test_a_revoked_key_is_refused(verifier, store, clock):
    store.add(KEY, revoked_at=clock.now - 1)
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(KEY)
    assert (caught.value.code, str(caught.value)) == ("api_key_revoked",
                                                      "The API key has been revoked.")


async def test_a_key_is_refused_from_the_moment_it_expires(verifier, store, clock):
    store.add(KEY, expires_at=clock.now + 10)
    assert (await verifier.verify(KEY)).subject == "team"

    clock.advance(10)

    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(KEY)
    assert (caught.value.code, str(caught.value)) == ("api_key_expired",
                                                      "The API key has expired.")


async def test_a_cached_lookup_is_asked_again_once_exactly_the_ttl_has_passed(
        verifier, store, clock):
    store.add(KEY)
    await verifier.verify(KEY)
    clock.advance(29.5)
    await verifier.verify(KEY)
    assert store.finds == [KEY]

    clock.advance(0.5)
    await verifier.verify(KEY)
    assert store.finds == [KEY, KEY]


async def test_a_failing_key_store_is_logged_and_refused_with_a_message_naming_no_detail(
        verifier, store, caplog):
    store.failure = OSError("network unreachable")
    with pytest.raises(ServiceUnavailable) as caught, \
            caplog.at_level(logging.ERROR, logger="rolegate.keys"):
        await verifier.verify(KEY)
    assert str(caught.value) == "API keys cannot be checked right now."
    assert [r.getMessage() for r in caplog.records] == [
        "API key lookup failed: OSError: network unreachable"]


async def test_last_used_times_that_cannot_be_written_are_logged_with_the_reason(
        verifier, store, caplog):
    store.add(KEY)
    await verifier.verify(KEY)
    store.failure = OSError("disk full")
    with caplog.at_level(logging.WARNING, logger="rolegate.keys"):
        await verifier.flush_last_used()
    assert [r.getMessage() for r in caplog.records] == [
        "could not write last-used times of 1 keys: OSError: disk full"]
