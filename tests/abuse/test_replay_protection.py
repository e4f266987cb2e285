"""`replay_protection: true` on an issuer: each token (by `jti`) is accepted once until it
expires. Off by default, where a token is reusable until it expires."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.authn.replay import ReplayCache
from rolegate.errors import ServiceUnavailable, Unauthenticated
from tests.support.clock import FakeClock
from tests.support.keys import KeyPair, claims, jwks
from tests.support.servers import RecordingUpstream

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
