"""`replay_protection: true` on an issuer: each token (by `jti`) is accepted once until it
expires. Off by default, where a token is reusable until it expires.

With Redis configured the accepted `jti`s are shared, so a one-time token accepted by one gateway
instance is refused by another (each instance here is its own app, with its own verified-token
cache and key cache, as two processes or replicas would be). Redis that cannot be reached
follows the limits' `fail_open`."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from redis.asyncio import Redis

from rolegate.authn.replay import ReplayCache
from rolegate.errors import ServiceUnavailable, Unauthenticated
from tests.support.clock import FakeClock
from tests.support.keys import KeyPair, claims, jwks
from tests.support.servers import RecordingUpstream
from tests.support.storage import REDIS_URL

ISSUER = "https://idp.replay.test"
JWKS_URL = f"{ISSUER}/keys"
AUDIENCE = "api://rolegate"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def replay_settings(upstream_url: str, *, replay_protection: bool) -> dict[str, Any]:
    return {
        "models": [{"name": "gpt-4o", "provider": "openai-compatible",
                    "api_base": f"{upstream_url}/v1"}],
        "auth": {"issuers": [{"name": "one-time", "issuer": ISSUER, "jwks_url": JWKS_URL,
                              "audiences": [AUDIENCE], "replay_protection": replay_protection}]},
        "policy": [{"name": "users", "when": {"roles": ["user"]},
                    "allow": {"routes": ["inference"], "models": ["*"]}}],
    }


@pytest.fixture
async def upstream() -> Any:
    async with RecordingUpstream() as server:
        yield server


@pytest.fixture
def sign(key_source, rsa_key: KeyPair, clock: FakeClock):
    key_source.documents[JWKS_URL] = jwks(rsa_key)

    def make(**extra: Any) -> str:
        return rsa_key.sign(claims(ISSUER, AUDIENCE, now=clock.now, exp_in=300, roles=["user"],
                                   **extra))
    return make


async def post(client, token: str):
    return await client.post("/v1/chat/completions", json=CHAT,
                             headers={"Authorization": f"Bearer {token}"})


async def test_second_use_of_a_token_is_refused_as_replayed_and_never_forwarded(
        client_for, settings_from, upstream, sign):
    client = client_for(settings_from(replay_settings(upstream.url, replay_protection=True)))
    token = sign(jti="once-1")

    first, second = await post(client, token), await post(client, token)

    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json()["error"]["code"] == "token_replayed"
    assert 'error="invalid_token"' in second.headers["www-authenticate"]
    assert len(upstream.requests) == 1


async def test_replay_spelled_differently_is_still_caught_by_its_jti(
        client_for, settings_from, upstream, sign):
    """Base64 padding on the signature decodes to the same bytes, so the signature verifies,
    but the string differs and misses the verified-token cache: the jti seen-set catches it."""
    client = client_for(settings_from(replay_settings(upstream.url, replay_protection=True)))
    token = sign(jti="once-2")
    padded = token + "=" * (-len(token.rsplit(".", 1)[1]) % 4)
    assert padded != token  # a 256-byte RS256 signature needs base64 padding

    first, respelled = await post(client, token), await post(client, padded)

    assert first.status_code == 200
    assert respelled.status_code == 401
    assert respelled.json()["error"]["code"] == "token_replayed"
    assert len(upstream.requests) == 1


async def test_token_without_jti_is_refused_when_replay_protection_is_on(
        client_for, settings_from, upstream, sign):
    client = client_for(settings_from(replay_settings(upstream.url, replay_protection=True)))

    response = await post(client, sign())

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_claim"
    assert "jti" in response.json()["error"]["message"]
    assert upstream.requests == []


async def test_tokens_with_different_jtis_are_each_accepted_once(
        client_for, settings_from, upstream, sign):
    client = client_for(settings_from(replay_settings(upstream.url, replay_protection=True)))

    statuses = [(await post(client, sign(jti=f"distinct-{n}"))).status_code for n in range(3)]

    assert statuses == [200, 200, 200]


async def test_without_replay_protection_a_token_is_reusable_until_it_expires(
        client_for, settings_from, upstream, sign):
    client = client_for(settings_from(replay_settings(upstream.url, replay_protection=False)))
    token = sign(jti="reusable")

    statuses = [(await post(client, token)).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert len(upstream.requests) == 3


def test_seen_jtis_are_forgotten_once_their_tokens_have_expired() -> None:
    clock = FakeClock(start=1_000.0)
    replay = ReplayCache(clock)
    replay.claim("a", expires=1_100.0)
    replay.claim("b", expires=2_000.0)

    clock.advance(200)          # past a's expiry: swept on the next claim
    replay.claim("c", expires=3_000.0)

    assert len(replay) == 2
    with pytest.raises(Unauthenticated) as replayed:
        replay.claim("b", expires=2_000.0)
    assert replayed.value.code == "token_replayed"


def test_full_replay_cache_refuses_new_tokens_rather_than_forgetting_old_ones() -> None:
    replay = ReplayCache(FakeClock(start=0.0), max_entries=2)
    replay.claim("a", expires=100.0)
    replay.claim("b", expires=100.0)

    with pytest.raises(ServiceUnavailable) as full:
        replay.claim("c", expires=100.0)
    with pytest.raises(Unauthenticated):
        replay.claim("a", expires=100.0)

    assert full.value.code == "replay_cache_full"


@pytest.mark.parametrize("jti", [None, "", 7, ["a"], "x" * 257], ids=repr)
def test_unusable_jti_is_refused(jti: object) -> None:
    with pytest.raises(Unauthenticated) as refused:
        ReplayCache(FakeClock()).claim(jti, expires=1e12)

    assert refused.value.code == "missing_claim"


UNREACHABLE = "redis://127.0.0.1:1/0"


def shared_settings(upstream_url: str, redis_url: str, prefix: str,
                    fail_open: bool = False) -> dict[str, Any]:
    return {**replay_settings(upstream_url, replay_protection=True),
            "limits": {"backend": "redis", "url": redis_url, "prefix": prefix,
                       "fail_open": fail_open, "timeout": 0.5}}


@pytest.fixture
async def redis() -> Any:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_a_token_accepted_by_one_instance_is_refused_by_another(
        gateway_for, settings_from, upstream, sign, redis_prefix):
    settings = settings_from(shared_settings(upstream.url, REDIS_URL, redis_prefix))
    one, other = await gateway_for(settings), await gateway_for(settings)
    token = sign(jti="cross-instance")

    first, replayed = await post(one, token), await post(other, token)

    assert first.status_code == 200
    assert replayed.status_code == 401
    assert replayed.json()["error"]["code"] == "token_replayed"
    assert len(upstream.requests) == 1


async def test_each_distinct_token_is_accepted_once_across_instances(
        gateway_for, settings_from, upstream, sign, redis_prefix):
    settings = settings_from(shared_settings(upstream.url, REDIS_URL, redis_prefix))
    instances = [await gateway_for(settings), await gateway_for(settings)]
    tokens = [sign(jti=f"many-{n}") for n in range(4)]

    firsts = [(await post(instances[n % 2], token)).status_code
              for n, token in enumerate(tokens)]
    seconds = [(await post(instances[(n + 1) % 2], token)).status_code
               for n, token in enumerate(tokens)]

    assert firsts == [200] * 4
    assert seconds == [401] * 4
    assert len(upstream.requests) == 4


async def test_the_key_is_namespaced_hashed_and_expires_with_the_token(
        gateway_for, settings_from, upstream, sign, redis_prefix, redis, clock):
    gateway = await gateway_for(settings_from(shared_settings(upstream.url, REDIS_URL,
                                                              redis_prefix)))
    jti = "visible-jti-text"

    assert (await post(gateway, sign(jti=jti))).status_code == 200

    keys = [key.decode() async for key in redis.scan_iter(match=f"{redis_prefix}:*")]
    digest = hashlib.sha256(f"{ISSUER}\0{jti}".encode()).hexdigest()
    assert keys == [f"{redis_prefix}:jti:{digest}"]
    ttl_ms = await redis.pttl(keys[0])
    # exp is 300 s away, plus the issuer's default leeway of 60 s
    assert 359_000 < ttl_ms <= 360_001


async def test_a_token_without_jti_is_refused_before_redis_is_asked(
        gateway_for, settings_from, upstream, sign, redis_prefix, redis):
    gateway = await gateway_for(settings_from(shared_settings(upstream.url, REDIS_URL,
                                                              redis_prefix)))

    response = await post(gateway, sign())

    assert response.json()["error"]["code"] == "missing_claim"
    assert [key async for key in redis.scan_iter(match=f"{redis_prefix}:*")] == []
    assert upstream.requests == []


async def test_redis_down_refuses_one_time_tokens_with_503_by_default(
        client_for, settings_from, upstream, sign):
    client = client_for(settings_from(shared_settings(upstream.url, UNREACHABLE, "rg-down")))

    response = await post(client, sign(jti="while-down"))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "replay_check_unavailable"
    assert upstream.requests == []


async def test_redis_down_with_fail_open_still_refuses_a_replay_to_the_same_instance(
        client_for, settings_from, upstream, sign):
    client = client_for(settings_from(shared_settings(upstream.url, UNREACHABLE, "rg-down",
                                                      fail_open=True)))
    token = sign(jti="fail-open")
    padded = token + "=" * (-len(token.rsplit(".", 1)[1]) % 4)  # misses the verified cache

    first, replayed = await post(client, token), await post(client, padded)

    assert first.status_code == 200
    assert replayed.status_code == 401
    assert replayed.json()["error"]["code"] == "token_replayed"
    assert len(upstream.requests) == 1
