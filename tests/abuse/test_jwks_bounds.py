"""Bounds on what an issuer's key endpoint (or someone impersonating it) can make rolegate do:
document size, key count, redirects, concurrent refreshes, and refetches forced by unknown `kid`s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from rolegate.app import build_app
from rolegate.authn.fetch import MAX_DOCUMENT_BYTES
from rolegate.authn.jwks import MAX_KEYS
from rolegate.config.load import validate_settings
from rolegate.providers.http import HttpClient
from tests.support.keys import KeyPair, claims, jwks
from tests.support.servers import LocalServer

ISSUER = "https://idp.bounds.test"
AUDIENCE = "api://rolegate"
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


def bounds_settings(jwks_url: str) -> Any:
    return validate_settings({
        "models": [{"name": "echo", "provider": "mock"}],
        "auth": {"issuers": [{"name": "bounds", "issuer": ISSUER, "jwks_url": jwks_url,
                              "audiences": [AUDIENCE], "jwks_max_stale": 0}]},
        "policy": [{"name": "all", "when": {"authenticated": True},
                    "allow": {"routes": ["inference"], "models": ["*"]}}],
    }, source="<test>")


def token_of(key: KeyPair, now: float, **headers: Any) -> str:
    return key.sign(claims(ISSUER, AUDIENCE, now=now), headers or None)


async def post(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/chat/completions", json=CHAT,
                             headers={"Authorization": f"Bearer {token}"})


class KeyServer(LocalServer):
    """Serves a fixed answer at /jwks, counting requests."""

    def __init__(self, answer: web.Response) -> None:
        super().__init__()
        self.answer = answer
        self.hits = 0
        self.app.router.add_get("/jwks", self._jwks)
        self.app.router.add_get("/real", self._real)
        self.real = b""

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        return self.answer

    async def _real(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.real, content_type="application/json")


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    yield client
    await client.close()


async def _app_client(jwks_url: str, clock: Any, http: HttpClient) -> httpx.AsyncClient:
    app = build_app(bounds_settings(jwks_url), clock=clock, http=http)  # the real HTTP fetcher
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rg.test")


async def test_key_set_larger_than_the_document_limit_is_not_used(clock, http, rsa_key):
    keys = json.loads(jwks(rsa_key))
    keys["padding"] = "x" * (MAX_DOCUMENT_BYTES + 1)
    async with KeyServer(web.json_response(keys)) as server:
        async with await _app_client(f"{server.url}/jwks", clock, http) as client:
            response = await post(client, token_of(rsa_key, clock.now))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "jwks_unavailable"


async def test_redirect_from_the_key_endpoint_is_not_followed(clock, http, rsa_key):
    async with KeyServer(web.Response(status=302)) as server:
        server.real = jwks(rsa_key)
        server.answer = web.Response(status=302, headers={"Location": f"{server.url}/real"})
        async with await _app_client(f"{server.url}/jwks", clock, http) as client:
            response = await post(client, token_of(rsa_key, clock.now))

    assert response.status_code == 503
    assert server.hits >= 1


async def test_only_the_first_max_keys_of_a_key_set_are_used(client_for, settings_from,
                                                             key_source, clock):
    keys = [KeyPair.ec(f"k{n}") for n in range(MAX_KEYS + 1)]
    key_source.documents["https://idp.bounds.test/keys"] = jwks(*keys)
    client = client_for(bounds_settings("https://idp.bounds.test/keys"))

    first = await post(client, token_of(keys[0], clock.now))
    beyond = await post(client, token_of(keys[MAX_KEYS], clock.now))

    assert first.status_code == 200
    assert beyond.status_code == 401
    assert beyond.json()["error"]["code"] == "unknown_signing_key"


async def test_concurrent_requests_on_a_cold_cache_share_one_key_set_fetch(
        client_for, key_source, clock, rsa_key):
    key_source.documents["https://idp.bounds.test/keys"] = jwks(rsa_key)
    key_source.delay = 0.05  # the fetch is slow, so all requests arrive while it runs
    client = client_for(bounds_settings("https://idp.bounds.test/keys"))
    tokens = [rsa_key.sign(claims(ISSUER, AUDIENCE, now=clock.now, jti=str(n)))
              for n in range(50)]

    responses = await asyncio.gather(*(post(client, token) for token in tokens))

    assert [r.status_code for r in responses] == [200] * 50
    assert len(key_source.fetches) == 1


async def test_flood_of_unknown_kids_causes_a_bounded_number_of_fetches(
        client_for, key_source, clock, rsa_key):
    key_source.documents["https://idp.bounds.test/keys"] = jwks(rsa_key)
    client = client_for(bounds_settings("https://idp.bounds.test/keys"))
    stranger = KeyPair.rsa("stranger")
    await post(client, token_of(rsa_key, clock.now))  # keys loaded: one fetch
    forged = [stranger.sign(claims(ISSUER, AUDIENCE, now=clock.now), {"kid": f"kid-{n}"})
              for n in range(200)]

    responses = await asyncio.gather(*(post(client, token) for token in forged))
    fetches_in_the_first_minute = len(key_source.fetches)
    clock.advance(60)
    await asyncio.gather(*(post(client, token) for token in forged[:50]))

    assert {r.status_code for r in responses} == {401}
    assert fetches_in_the_first_minute <= 1 + 3  # the initial load + refreshes_per_minute
    assert len(key_source.fetches) <= fetches_in_the_first_minute + 4  # refilled, still bounded
