"""Context-window fallbacks whichever API the caller speaks and whichever its first deployment
speaks: each provider reads its own API's "prompt too long" 400 (OpenAI's
`context_length_exceeded` code, Anthropic's `prompt is too long` message, Google's
`INVALID_ARGUMENT` token-limit message, Bedrock's `Input is too long`), so the call is served
by the larger model even when it was translated on the way; any other 400 is the caller's
answer, never a fallback. An OpenAI caller left with the 400 reads OpenAI's code for it,
whichever API the upstream spoke."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.routing.conftest import deployment
from tests.support import bedrock_wire
from tests.support.faulty import Fault, FaultyUpstream, openai_error

PROMPT = "a very long prompt"
# How each surface asks: its path and body for a model.
SURFACES = {
    "openai": lambda model: ("/v1/chat/completions", {
        "model": model, "messages": [{"role": "user", "content": PROMPT}]}),
    "anthropic": lambda model: ("/v1/messages", {
        "model": model, "max_tokens": 16, "messages": [{"role": "user", "content": PROMPT}]}),
    "gemini": lambda model: (f"/v1beta/models/{model}:generateContent", {
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}),
}


def anthropic_error(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def google_error(message: str) -> dict[str, Any]:
    return {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}


# Each provider: its deployment on a server, the 400 it answers a prompt too long with, and
# a 400 of another kind.
PROVIDERS: dict[str, tuple[Any, dict[str, Any], dict[str, Any]]] = {
    "openai-compatible": (
        deployment,
        openai_error("context_length_exceeded", "This model's maximum context length is 128000 "
                     "tokens. However, your messages resulted in 130000 tokens."),
        openai_error("invalid_value", "temperature must be at most 2")),
    "anthropic": (
        lambda server: {"id": server.name, "provider": "anthropic", "api_base": server.base,
                        "api_key": "sk-ant"},
        anthropic_error("prompt is too long: 210000 tokens > 200000 maximum"),
        anthropic_error("messages.0.content: Field required")),
    "gemini": (
        lambda server: {"id": server.name, "provider": "gemini", "api_base": f"{server.url}/v1beta",
                        "api_key": "AIza-upstream"},
        google_error("The input token count (1200000) exceeds the maximum number of tokens "
                     "allowed (1048576)."),
        google_error('Invalid JSON payload received. Unknown name "temprature"')),
    "bedrock": (
        lambda server: {"id": server.name, "provider": "bedrock", "api_base": server.url,
                        "model": "amazon.nova-lite-v1:0", "region": bedrock_wire.REGION,
                        "aws_access_key_id": bedrock_wire.ACCESS_KEY,
                        "aws_secret_access_key": bedrock_wire.SECRET_KEY},
        {"message": "Input is too long for requested model."},
        {"message": "The provided model identifier is invalid."}),
}


async def serve(upstreams, routing_settings, client_for, provider: str,
                answer: dict[str, Any]) -> tuple[FaultyUpstream, FaultyUpstream, Any]:
    small, large = await upstreams("small", "large")
    small.default = Fault.error(400, answer)
    models = [{"name": "small", **PROVIDERS[provider][0](small),
               "context_window_fallbacks": ["large"]},
              {"name": "large", **deployment(large)}]
    return small, large, client_for(routing_settings(models))


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("surface", list(SURFACES))
async def test_a_prompt_too_long_for_the_first_deployment_falls_back_whatever_the_apis(
        upstreams, routing_settings, client_for, auth_for, surface, provider):
    small, large, client = await serve(upstreams, routing_settings, client_for, provider,
                                       PROVIDERS[provider][1])
    path, body = SURFACES[surface]("small")

    response = await client.post(path, json=body, headers=auth_for("user"))

    assert response.status_code == 200, response.text
    assert response.headers["x-rolegate-model"] == "large"
    assert len(small.requests) == 1  # a 400 is never retried on the same model
    assert PROMPT in large.requests[0].body.decode()


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("surface", list(SURFACES))
async def test_another_400_of_the_first_deployment_is_the_callers_answer(
        upstreams, routing_settings, client_for, auth_for, surface, provider):
    small, large, client = await serve(upstreams, routing_settings, client_for, provider,
                                       PROVIDERS[provider][2])
    path, body = SURFACES[surface]("small")

    response = await client.post(path, json=body, headers=auth_for("user"))

    assert response.status_code == 400
    assert len(small.requests) == 1 and large.requests == []


@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_without_a_permitted_fallback_an_openai_caller_reads_openais_code(
        upstreams, routing_settings, client_for, auth_for, provider):
    small, large = await upstreams("small", "large")
    small.default = Fault.error(400, PROVIDERS[provider][1])
    models = [{"name": "small", **PROVIDERS[provider][0](small),
               "context_window_fallbacks": ["large"]},
              {"name": "large", **deployment(large)}]
    policy = [{"name": "small-only", "when": {"roles": ["user"]},
               "allow": {"routes": ["inference"], "models": ["small"]}}]
    client = client_for(routing_settings(models, policy=policy))
    path, body = SURFACES["openai"]("small")

    response = await client.post(path, json=body, headers=auth_for("user"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert large.requests == []
