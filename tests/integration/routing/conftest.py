"""Fixtures for routing tests: a trusted test issuer, tokens with roles, faulty upstreams, and
settings built from a list of models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from rolegate.config.model import Settings
from tests.support.clock import FakeClock
from tests.support.faulty import FaultyUpstream
from tests.support.fetch import FakeKeySource
from tests.support.keys import KeyPair, claims, jwks

ISSUER = "https://idp.routing.test"
JWKS_URL = f"{ISSUER}/jwks"
AUDIENCE = "rolegate"

# Fast retries: back-off pauses are real sleeps in these tests unless a test injects `sleep`.
FAST_RETRIES = {"backoff_initial": 0.0, "backoff_max": 0.0, "max_retry_after": 0.0}


@pytest.fixture
def trusted_key(key_source: FakeKeySource, rsa_key: KeyPair) -> KeyPair:
    key_source.documents[JWKS_URL] = jwks(rsa_key)
    return rsa_key


@pytest.fixture
def auth_for(trusted_key: KeyPair, clock: FakeClock) -> Callable[..., dict[str, str]]:
    def make(*roles: str) -> dict[str, str]:
        token = trusted_key.sign(claims(ISSUER, AUDIENCE, now=clock(), roles=list(roles)))
        return {"Authorization": f"Bearer {token}"}
    return make


@pytest.fixture
def routing_settings(settings_from: Callable[[dict[str, Any]], Settings]
                     ) -> Callable[..., Settings]:
    def make(models: list[dict[str, Any]], *, policy: list[dict[str, Any]] | None = None,
             retries: dict[str, Any] | None = None,
             health: dict[str, Any] | None = None) -> Settings:
        return settings_from({
            "models": models,
            "routing": {"retries": {**FAST_RETRIES, **(retries or {})}, "health": health or {}},
            "auth": {"issuers": [{"name": "test", "issuer": ISSUER, "jwks_url": JWKS_URL,
                                  "audiences": [AUDIENCE]}]},
            "policy": policy or [{"name": "users", "when": {"roles": ["user"]},
                                  "allow": {"routes": ["inference", "info"], "models": ["*"]}}],
        })
    return make


StartUpstreams = Callable[..., Awaitable[list[FaultyUpstream]]]


@pytest.fixture
async def upstreams() -> AsyncIterator[StartUpstreams]:
    """`a, b = await upstreams("a", "b")` starts faulty upstreams; all stop after the test."""
    started: list[FaultyUpstream] = []

    async def start(*names: str) -> list[FaultyUpstream]:
        servers = [FaultyUpstream(name) for name in names]
        for server in servers:
            await server.start()
            started.append(server)
        return servers

    yield start
    for server in started:
        await server.stop()


def deployment(server: FaultyUpstream, **extra: Any) -> dict[str, Any]:
    return {"id": server.name, "provider": "openai-compatible", "api_base": server.base, **extra}
