"""examples/service_client.py, run for real: Authlib gets client-credentials tokens from the
oidc-provider fixture and renews them before they expire; the official openai SDK calls a
rolegate process with them, streaming and not."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import openai
import pytest
import pytest_asyncio

from tests.interop.conftest import CLIENTS
from tests.support.clock import FakeClock

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "service_client.py"
MARGIN = 60.0


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("service_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("service_client", module)
    spec.loader.exec_module(module)
    return module


service_client = _load_example()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture(loop_scope="module")
async def credentials(issuer: str, clock: FakeClock) -> AsyncIterator[object]:
    made = service_client.ServiceCredentials(
        f"{issuer}/token", "svc-admin", CLIENTS["svc-admin"], scope="chat.invoke models.read",
        resource="api://rolegate", refresh_margin=MARGIN, clock=clock)
    yield made
    await made.aclose()


async def test_sdk_completes_a_chat_with_a_client_credentials_token(gateway, credentials):
    async with service_client.gateway_client(f"{gateway.url}/v1", credentials) as client:
        text = await service_client.ask(client, "echo", "hello there")
        models = await client.models.list()

    assert text == "echo: hello there"
    assert sorted(model.id for model in models.data) == ["echo", "gpt-4o"]
    assert credentials.fetch_count == 1


async def test_sdk_streams_a_chat_with_a_client_credentials_token(gateway, credentials):
    async with service_client.gateway_client(f"{gateway.url}/v1", credentials) as client:
        text = await service_client.ask(client, "echo", "stream me", stream=True)

    assert text == "echo: stream me"


async def test_token_is_renewed_shortly_before_it_expires_and_the_new_one_is_accepted(
        gateway, credentials, clock):
    async with service_client.gateway_client(f"{gateway.url}/v1", credentials) as client:
        await service_client.ask(client, "echo", "one")
        first = await credentials.access_token()
        expires_at = clock.now + 300  # the provider's access-token lifetime

        clock.now = expires_at - MARGIN - 1  # still comfortably valid: kept
        kept = await credentials.access_token()
        clock.now = expires_at - MARGIN + 1  # inside the margin: renewed before it expires
        text = await service_client.ask(client, "echo", "two")
        renewed = await credentials.access_token()

    assert kept == first
    assert renewed != first
    assert credentials.fetch_count == 2
    assert text == "echo: two"


async def test_sdk_raises_permission_denied_for_a_client_without_grants(issuer, gateway):
    credentials = service_client.ServiceCredentials(f"{issuer}/token", "svc-none",
                                                    CLIENTS["svc-none"])
    try:
        async with service_client.gateway_client(f"{gateway.url}/v1", credentials) as client:
            with pytest.raises(openai.PermissionDeniedError) as denied:
                await service_client.ask(client, "echo", "hello")
    finally:
        await credentials.aclose()

    assert denied.value.status_code == 403
    assert denied.value.code == "insufficient_scope"
