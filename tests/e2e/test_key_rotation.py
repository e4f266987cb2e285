"""Key rotation and unknown-`kid` floods against the real process, each against its own local
IdP (each issuer has its own key cache and refresh budget):

- `rotating`: a long TTL; a token by the new key is accepted after exactly one re-fetch.
- `short-ttl`: `jwks_ttl: 1`; once the TTL passes, tokens by a withdrawn key are refused.
- `flooded`: 200 concurrent tokens naming random `kid`s cause at most the refresh budget
  (3 a minute) of fetches, and the gateway keeps serving.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.e2e.calls import bearer, config_yaml, error_code, eventually, rule
from tests.support.keys import KeyPair, claims
from tests.support.process import GatewayProcess
from tests.support.servers import LocalIdp

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

AUDIENCE = "rolegate-e2e"
REFRESH_BUDGET = 3


@dataclass
class Scene:
    rotating: LocalIdp
    short_ttl: LocalIdp
    flooded: LocalIdp
    gateway: GatewayProcess
    client: httpx.AsyncClient

    async def models(self, token: str) -> httpx.Response:
        return await self.client.get("/v1/models", headers=bearer(token))


def token(idp: LocalIdp, key: KeyPair) -> str:
    return key.sign(claims(idp.issuer, AUDIENCE, roles=["llm.user"]))


def issuer(name: str, idp: LocalIdp, **extra: object) -> dict[str, object]:
    return {"name": name, "issuer": idp.issuer, "jwks_url": idp.jwks_url,
            "audiences": [AUDIENCE], **extra}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scene(workdir: Path) -> AsyncIterator[Scene]:
    async with (LocalIdp(KeyPair.rsa("rotating-a")) as rotating,
                LocalIdp(KeyPair.rsa("short-a")) as short_ttl,
                LocalIdp(KeyPair.ec("flooded-ec")) as flooded):
        config = config_yaml(
            models=[{"name": "echo", "provider": "mock"}],
            issuers=[issuer("rotating", rotating), issuer("short-ttl", short_ttl, jwks_ttl=1),
                     issuer("flooded", flooded)],
            policy=[rule("users", {"roles": ["llm.user"]}, ["inference", "info"], ["*"])])
        async with (GatewayProcess(config, workdir, ready_path="/health/ready") as gateway,
                    httpx.AsyncClient(base_url=gateway.url, timeout=20) as client):
            yield Scene(rotating, short_ttl, flooded, gateway, client)


async def test_new_key_is_picked_up_with_exactly_one_refetch(scene: Scene) -> None:
    key_a, key_b = scene.rotating.keys[0], KeyPair.rsa("rotating-b")
    assert (await scene.models(token(scene.rotating, key_a))).status_code == 200
    fetches = scene.rotating.jwks_fetches

    scene.rotating.publish(key_b)
    by_b = await scene.models(token(scene.rotating, key_b))

    assert by_b.status_code == 200, by_b.text
    assert scene.rotating.jwks_fetches == fetches + 1
    again = await scene.models(token(scene.rotating, key_b))
    assert again.status_code == 200
    assert scene.rotating.jwks_fetches == fetches + 1


async def test_withdrawn_key_is_refused_once_the_ttl_has_passed(scene: Scene) -> None:
    key_a, key_b = scene.short_ttl.keys[0], KeyPair.rsa("short-b")
    by_a = token(scene.short_ttl, key_a)
    assert (await scene.models(by_a)).status_code == 200

    scene.short_ttl.publish(key_b)

    async def a_is_refused() -> bool:
        return (await scene.models(token(scene.short_ttl, key_a))).status_code == 401
    assert await eventually(a_is_refused, within=15)
    refused = await scene.models(by_a)  # the very token that was accepted before
    assert refused.status_code == 401
    assert error_code(refused) == "unknown_signing_key"
    assert (await scene.models(token(scene.short_ttl, key_b))).status_code == 200


async def test_flood_of_unknown_kids_costs_at_most_the_refresh_budget(scene: Scene) -> None:
    key = scene.flooded.keys[0]
    fetches = scene.flooded.jwks_fetches
    forged = [KeyPair(f"kid-{secrets.token_hex(8)}", key.alg, key.private_key)
              for _ in range(200)]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)

    async with httpx.AsyncClient(base_url=scene.gateway.url, timeout=30, limits=limits) as flood:
        responses = await asyncio.gather(*(
            flood.get("/v1/models", headers=bearer(token(scene.flooded, forger)))
            for forger in forged))

    assert [r.status_code for r in responses] == [401] * 200
    assert {error_code(r) for r in responses} == {"unknown_signing_key"}
    assert scene.flooded.jwks_fetches - fetches <= REFRESH_BUDGET
    assert (await scene.client.get("/health/ready")).status_code == 200
    assert (await scene.models(token(scene.flooded, key))).status_code == 200
