"""Fixtures shared by the in-process integration tests: a recording upstream, a published key
set, the sample gateway, and callers holding given roles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rolegate.authn.dev_issuer import DevIssuer
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.gateways import bearer
from tests.support.keys import KeyPair, jwks
from tests.support.sample_gateway import JWKS_URL, sample_config, token_for
from tests.support.servers import RecordingUpstream


@pytest.fixture
async def upstream() -> AsyncIterator[RecordingUpstream]:
    async with RecordingUpstream() as server:
        yield server


@pytest.fixture
def admin(dev_issuer: DevIssuer) -> dict[str, str]:
    """Authorization headers of a caller holding the embedded admin role."""
    return bearer(dev_issuer.mint(subject="ops", roles=("rolegate.admin",)))


@pytest.fixture
def published(key_source: FakeKeySource, rsa_key: KeyPair) -> FakeKeySource:
    """The sample issuer's key set, served by the fake key source."""
    key_source.documents[JWKS_URL] = jwks(rsa_key)
    return key_source


@pytest.fixture
def gateway(client_for: Callable[..., httpx.AsyncClient], settings_from: Callable[..., Any],
            upstream: RecordingUpstream, published: FakeKeySource) -> httpx.AsyncClient:
    """The sample gateway (tests/support/sample_gateway.py) in front of the recording upstream."""
    return client_for(settings_from(sample_config(upstream.url)))


@pytest.fixture
def as_role(rsa_key: KeyPair, clock: FakeClock) -> Callable[..., dict[str, str]]:
    """Authorization headers of a sample-issuer token holding the given roles."""
    def headers(*roles: str, **extra: Any) -> dict[str, str]:
        return bearer(token_for(rsa_key, clock, roles=list(roles), **extra))
    return headers
