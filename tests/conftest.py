"""Shared fixtures: keys, a fake clock, key sources, and the gateway app under test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rolegate.app import build_app
from rolegate.config.load import validate_settings
from rolegate.config.model import Settings
from rolegate.providers.http import HttpClient
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.keys import KeyPair

pytest_plugins = ["tests.support.storage", "tests.support.mcp"]


@pytest.fixture(scope="session")
def rsa_key() -> KeyPair:
    return KeyPair.rsa("rsa-1")


@pytest.fixture(scope="session")
def rsa_key_2() -> KeyPair:
    return KeyPair.rsa("rsa-2")


@pytest.fixture(scope="session")
def ec_key() -> KeyPair:
    return KeyPair.ec("ec-1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def key_source() -> FakeKeySource:
    return FakeKeySource()


@pytest.fixture
def settings_from() -> Callable[[dict[str, Any]], Settings]:
    def make(data: dict[str, Any]) -> Settings:
        return validate_settings(data, source="<test>")
    return make


@pytest.fixture
async def client_for(clock: FakeClock,
                     key_source: FakeKeySource) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Builds the app for settings and returns an httpx client speaking to it in-process."""
    clients: list[httpx.AsyncClient] = []
    http = HttpClient()

    def make(settings: Settings, **kwargs: Any) -> httpx.AsyncClient:
        app = build_app(settings, clock=clock, fetch=key_source, http=http, **kwargs)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://rolegate.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    await http.close()
