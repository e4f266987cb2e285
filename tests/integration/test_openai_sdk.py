"""The official `openai` SDK as the client: allowed calls work (plain and streamed), denied calls
raise the SDK's own error types carrying the gateway's message and code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import openai
import pytest

from rolegate.app import build_app
from rolegate.providers.http import HttpClient
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.keys import KeyPair, jwks
from tests.support.sample_gateway import JWKS_URL, sample_config, token_for

BASE = "http://rolegate.test"
MESSAGES: list[Any] = [{"role": "user", "content": "hello from the sdk"}]


@pytest.fixture
async def transport(settings_from, key_source: FakeKeySource, rsa_key: KeyPair,
                    clock: FakeClock) -> AsyncIterator[httpx.ASGITransport]:
    key_source.documents[JWKS_URL] = jwks(rsa_key)
    http = HttpClient()
    app = build_app(settings_from(sample_config("http://127.0.0.1:9")), clock=clock,
                    fetch=key_source, http=http)
    yield httpx.ASGITransport(app=app)
    await http.close()


@pytest.fixture
async def sdk(transport, rsa_key: KeyPair, clock: FakeClock
              ) -> AsyncIterator[Callable[..., openai.AsyncOpenAI]]:
    clients: list[openai.AsyncOpenAI] = []

    def make(api_key: str | None = None, **claims: Any) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(
            base_url=f"{BASE}/v1", api_key=api_key or token_for(rsa_key, clock, **claims),
            max_retries=0, http_client=httpx.AsyncClient(transport=transport, base_url=BASE))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_allowed_chat_completion(sdk):
    client = sdk(roles=["user"])
    completion = await client.chat.completions.create(model="echo", messages=MESSAGES)
    assert completion.choices[0].message.content == "echo: hello from the sdk"
    assert completion.usage is not None and completion.usage.prompt_tokens == 4


async def test_allowed_streamed_chat_completion(sdk):
    client = sdk(roles=["user"])
    stream = await client.chat.completions.create(
        model="echo", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    pieces, usage = [], None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == "echo: hello from the sdk"
    assert usage is not None and usage.total_tokens == 4 + 5


async def test_model_list_through_the_sdk_shows_only_permitted_models(sdk):
    page = await sdk(scope="models.read").models.list()
    assert [model.id for model in page.data] == ["echo"]


async def test_denied_model_raises_permission_denied_with_the_gateways_reason(sdk):
    client = sdk(roles=["user"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.status_code == 403
    assert caught.value.code == "model_not_allowed"
    assert "rule 'power' needs roles any of ['power']" in caught.value.message


async def test_caller_without_any_grant_raises_permission_denied(sdk):
    client = sdk(roles=["reporting.reader"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.chat.completions.create(model="echo", messages=MESSAGES)
    assert caught.value.code == "insufficient_scope"
    assert "roles=['reporting.reader']" in caught.value.message


async def test_denied_stream_raises_before_any_chunk(sdk):
    client = sdk(roles=["nobody"])
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="echo", messages=MESSAGES, stream=True)


async def test_invalid_credential_raises_authentication_error(sdk):
    client = sdk(api_key="sk-not-a-jwt")
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.chat.completions.create(model="echo", messages=MESSAGES)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_token"
    assert "sk-not-a-jwt" not in caught.value.message


async def test_expired_credential_raises_authentication_error(sdk):
    client = sdk(roles=["user"], exp_in=-3600)
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.models.list()
    assert caught.value.code == "token_expired"


async def test_unknown_model_raises_not_found(sdk):
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk(roles=["power"]).chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert caught.value.code == "model_not_found"


async def test_bad_request_raises_bad_request_error(sdk):
    client = sdk(roles=["user"])
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="echo", messages=MESSAGES,
                                             extra_body={"stream": "sometimes"})
    assert caught.value.code == "invalid_stream"


async def test_azure_client_with_an_entra_token_uses_the_deployment_route(transport, rsa_key,
                                                                         clock):
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=BASE, api_version="2024-10-21", max_retries=0,
        azure_ad_token=token_for(rsa_key, clock, roles=["user"]),
        http_client=httpx.AsyncClient(transport=transport))
    try:
        completion = await client.chat.completions.create(model="echo", messages=MESSAGES)
        assert completion.choices[0].message.content == "echo: hello from the sdk"
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert caught.value.code == "model_not_allowed"
    finally:
        await client.close()


async def test_azure_client_with_a_jwt_as_api_key_is_verified_like_a_bearer(transport, rsa_key,
                                                                            clock):
    """`AzureOpenAI(api_key=token)` sends the JWT in `api-key`: it is verified exactly as a
    bearer token is, with the same policy."""
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=BASE, api_version="2024-10-21", max_retries=0,
        api_key=token_for(rsa_key, clock, roles=["user"]),
        http_client=httpx.AsyncClient(transport=transport))
    try:
        completion = await client.chat.completions.create(model="echo", messages=MESSAGES)
        assert completion.choices[0].message.content == "echo: hello from the sdk"
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert denied.value.code == "model_not_allowed"
    finally:
        await client.close()


@pytest.mark.parametrize(("api_key", "code"), [
    ("azure-style-key", "invalid_token"),
    ("rg-" + "A" * 43, "invalid_api_key"),
], ids=["not-a-jwt", "virtual-key-while-keys-are-off"])
async def test_azure_client_with_a_bad_api_key_header_is_unauthenticated(transport, api_key,
                                                                         code):
    client = openai.AsyncAzureOpenAI(azure_endpoint=BASE, api_version="2024-10-21",
                                     api_key=api_key, max_retries=0,
                                     http_client=httpx.AsyncClient(transport=transport))
    try:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="echo", messages=MESSAGES)
        assert caught.value.code == code
    finally:
        await client.close()
