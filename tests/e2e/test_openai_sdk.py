"""The official `openai` SDK against the real process, as users call it: the JWT is the API key.
Allowed calls (plain and streaming) succeed; a denied call raises `PermissionDeniedError` carrying
the gateway's explanation; a bad token raises `AuthenticationError`. Azure clients call
`/openai/deployments/{name}/…`, and the policy checks the deployment name as the model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import pytest_asyncio
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.calls import config_yaml, rule, upstream_model
from tests.support.keys import KeyPair, claims
from tests.support.process import GatewayProcess
from tests.support.servers import LocalIdp, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

KEY = KeyPair.rsa("sdk-key")
AUDIENCE = "rolegate-e2e"
API_VERSION = "2024-10-21"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


@dataclass
class Scene:
    idp: LocalIdp
    gateway: GatewayProcess

    def token(self, *roles: str) -> str:
        return KEY.sign(claims(self.idp.issuer, AUDIENCE, roles=list(roles)))

    def client(self, token: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.gateway.url}/v1", api_key=token,
                                  max_retries=0, timeout=15)

    def azure(self, token: str) -> openai.AsyncAzureOpenAI:
        return openai.AsyncAzureOpenAI(azure_endpoint=self.gateway.url, azure_ad_token=token,
                                       api_version=API_VERSION, max_retries=0, timeout=15)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scene(shared_upstream: RecordingUpstream, workdir: Path) -> AsyncIterator[Scene]:
    async with LocalIdp(KEY) as idp:
        config = config_yaml(
            models=[upstream_model("gpt-4o", shared_upstream.url),
                    upstream_model("gpt-4o-mini", shared_upstream.url),
                    {"name": "echo", "provider": "mock"}],
            issuers=[{"name": "corp", "issuer": idp.issuer, "jwks_url": idp.jwks_url,
                      "audiences": [AUDIENCE]}],
            policy=[rule("services", {"roles": ["LiteLLM.Admin"]}, ["inference", "info"], ["*"]),
                    rule("azure-callers", {"roles": ["azure.caller"]}, ["inference"],
                         ["gpt-4o"])])
        async with GatewayProcess(config, workdir) as gateway:
            yield Scene(idp, gateway)


async def test_allowed_chat_call_succeeds(scene: Scene) -> None:
    async with scene.client(scene.token("LiteLLM.Admin")) as client:
        completion = await client.chat.completions.create(model="echo", messages=MESSAGES)

    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.usage is not None and completion.usage.total_tokens == 5


async def test_allowed_call_reaches_the_upstream_without_the_callers_token(
        scene: Scene, upstream: RecordingUpstream) -> None:
    token = scene.token("LiteLLM.Admin")
    async with scene.client(token) as client:
        completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert completion.choices[0].message.content == "from upstream"
    assert len(upstream.requests) == 1
    assert token not in str(upstream.requests[0].headers)


async def test_streaming_chat_call_yields_every_delta(scene: Scene) -> None:
    async with scene.client(scene.token("LiteLLM.Admin")) as client:
        stream = await client.chat.completions.create(model="echo", messages=MESSAGES,
                                                      stream=True)
        deltas = [chunk.choices[0].delta.content async for chunk in stream
                  if chunk.choices and chunk.choices[0].delta.content]

    assert len(deltas) == 3
    assert "".join(deltas) == "echo: hello there"


async def test_model_list_shows_the_callers_models(scene: Scene) -> None:
    async with scene.client(scene.token("LiteLLM.Admin")) as client:
        models = [model.id async for model in client.models.list()]

    assert sorted(models) == ["echo", "gpt-4o", "gpt-4o-mini"]


async def test_denied_call_raises_permission_denied_with_the_explanation(
        scene: Scene, upstream: RecordingUpstream) -> None:
    async with scene.client(scene.token()) as client:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert denied.value.status_code == 403
    assert denied.value.code == "insufficient_scope"
    assert "It would be granted by" in str(denied.value)
    assert "LiteLLM.Admin" in str(denied.value)
    assert upstream.requests == []


@pytest.mark.parametrize("token", ["not-a-jwt", KeyPair.rsa("sdk-key").sign(
    {"iss": "https://nobody.example", "aud": AUDIENCE, "exp": 4_000_000_000})],
    ids=["garbage", "untrusted-issuer"])
async def test_bad_token_raises_authentication_error(token: str, scene: Scene,
                                                     upstream: RecordingUpstream) -> None:
    async with scene.client(token) as client:
        with pytest.raises(openai.AuthenticationError) as refused:
            await client.chat.completions.create(model="echo", messages=MESSAGES)

    assert refused.value.status_code == 401
    assert upstream.requests == []


async def test_synchronous_client_works_too(scene: Scene) -> None:
    def call() -> str | None:
        with openai.OpenAI(base_url=f"{scene.gateway.url}/v1", api_key=scene.token("LiteLLM.Admin"),
                           max_retries=0, timeout=15) as client:
            return client.chat.completions.create(model="echo",
                                                  messages=MESSAGES).choices[0].message.content

    # In a thread: the local IdP serving the key set runs in this test's event loop.
    assert await asyncio.to_thread(call) == "echo: hello there"


async def test_azure_client_is_allowed_the_deployment_its_role_grants(
        scene: Scene, upstream: RecordingUpstream) -> None:
    token = scene.token("azure.caller")
    async with scene.azure(token) as client:
        completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert completion.choices[0].message.content == "from upstream"
    assert [(r.path, r.json()["model"]) for r in upstream.requests] == [
        ("/v1/chat/completions", "gpt-4o")]
    assert token not in str(upstream.requests[0].headers)


async def test_azure_client_is_refused_a_deployment_its_role_does_not_grant(
        scene: Scene, upstream: RecordingUpstream) -> None:
    async with scene.azure(scene.token("azure.caller")) as client:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert denied.value.code == "model_not_allowed"
    assert "gpt-4o-mini" in str(denied.value)
    assert upstream.requests == []


async def test_synchronous_azure_client_applies_the_same_model_check(scene: Scene) -> None:
    def call(deployment: str) -> str:
        with openai.AzureOpenAI(azure_endpoint=scene.gateway.url,
                                azure_ad_token=scene.token("azure.caller"),
                                api_version=API_VERSION, max_retries=0, timeout=15) as client:
            try:
                client.chat.completions.create(model=deployment, messages=MESSAGES)
            except openai.PermissionDeniedError:
                return "denied"
            return "allowed"

    assert await asyncio.to_thread(call, "gpt-4o") == "allowed"
    assert await asyncio.to_thread(call, "gpt-4o-mini") == "denied"


async def test_azure_client_with_the_jwt_as_api_key_is_verified_like_a_bearer(
        scene: Scene, upstream: RecordingUpstream) -> None:
    """`AzureOpenAI(api_key=token)` sends the JWT in Azure's `api-key` header: it is verified
    exactly as a bearer token is (same issuer, audience, policy), and a forged one is a 401."""
    async with openai.AsyncAzureOpenAI(azure_endpoint=scene.gateway.url, max_retries=0,
                                       api_key=scene.token("azure.caller"),
                                       api_version=API_VERSION) as client:
        completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    forged = scene.token("azure.caller")[:-4] + "AAAA"
    async with openai.AsyncAzureOpenAI(azure_endpoint=scene.gateway.url, max_retries=0,
                                       api_key=forged, api_version=API_VERSION) as client:
        with pytest.raises(openai.AuthenticationError) as refused:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert completion.choices
    assert denied.value.code == "model_not_allowed"
    assert refused.value.code == "invalid_signature"
    assert len(upstream.requests) == 1
