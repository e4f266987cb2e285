"""The Anthropic Messages surface, with the official `anthropic` SDK as the client and the
gateway on a loopback socket: `/v1/messages` (plain and streamed) and `/v1/messages/count_tokens`
over an upstream speaking Anthropic's API (`tests/support/anthropic_wire.py`), translated over
an OpenAI-compatible upstream and the mock; the OpenAI surface over the Anthropic upstream; and
errors in Anthropic's shape, raised by the SDK as its own error types."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from rolegate.authn.dev_issuer import DevIssuer
from tests.support import anthropic_wire
from tests.support.served import served_gateway
from tests.support.servers import RecordingUpstream

UPSTREAM_KEY = "sk-ant-upstream"
HELLO: list[Any] = [{"role": "user", "content": "hello there"}]
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def surface_config(upstream_url: str) -> dict[str, Any]:
    return {
        "models": [
            {"name": "claude", "provider": "anthropic", "api_base": f"{upstream_url}/v1",
             "api_key": UPSTREAM_KEY, "model": "claude-upstream"},
            {"name": "gpt-4o", "provider": "openai-compatible",
             "api_base": f"{upstream_url}/v1"},
            {"name": "echo", "provider": "mock"},
        ],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [
            {"name": "users", "when": {"roles": ["user"]},
             "allow": {"routes": ["inference"], "models": ["claude", "gpt-4o", "echo"]}},
            {"name": "small", "when": {"roles": ["small"]},
             "allow": {"routes": ["inference"], "models": ["echo"]}},
        ],
    }


@pytest.fixture
async def served(settings_from, dev_issuer: DevIssuer, upstream: RecordingUpstream
                 ) -> AsyncIterator[str]:
    async with served_gateway(settings_from(surface_config(upstream.url)),
                              dev_issuer=dev_issuer) as url:
        yield url


@pytest.fixture
async def claude(served: str, dev_issuer: DevIssuer
                 ) -> AsyncIterator[Callable[..., anthropic.AsyncAnthropic]]:
    clients: list[anthropic.AsyncAnthropic] = []

    def make(*roles: str, as_bearer: bool = False, **options: Any) -> anthropic.AsyncAnthropic:
        token = dev_issuer.mint(subject="svc", roles=roles or ("user",))
        credential = {"auth_token": token} if as_bearer else {"api_key": token}
        client = anthropic.AsyncAnthropic(base_url=served, max_retries=0, **credential,
                                          **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_a_message_over_an_anthropic_upstream_is_passed_through(claude, upstream):
    client = claude(default_headers={"anthropic-version": "2023-01-01"})
    message = await client.messages.create(model="claude", max_tokens=64, messages=HELLO,
                                           system="be brief")

    assert message.content[0].type == "text" and message.content[0].text == anthropic_wire.TEXT
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (
        anthropic_wire.INPUT_TOKENS, anthropic_wire.OUTPUT_TOKENS)
    sent = upstream.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.json()["model"] == "claude-upstream" and sent.json()["system"] == "be brief"
    # The gateway's own credential goes upstream, never the caller's token.
    assert sent.headers["x-api-key"] == UPSTREAM_KEY and "Authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-01-01"  # the caller's, passed on


async def test_the_caller_may_sign_in_with_a_bearer_token_and_its_beta_header_is_passed_on(
        claude, upstream):
    client = claude(as_bearer=True, default_headers={"anthropic-beta": "tools-2024-04-04"})
    message = await client.messages.create(model="claude", max_tokens=8, messages=HELLO)

    assert message.content[0].type == "text"
    assert upstream.requests[-1].headers["anthropic-beta"] == "tools-2024-04-04"


async def test_a_stream_over_an_anthropic_upstream_arrives_as_anthropic_events(claude):
    async with claude().messages.stream(model="claude", max_tokens=64,
                                        messages=HELLO) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert "".join(texts) == anthropic_wire.TEXT
    assert final.usage.output_tokens == anthropic_wire.OUTPUT_TOKENS


async def test_a_message_over_an_openai_upstream_is_translated_with_its_tools(claude, upstream):
    message = await claude().messages.create(
        model="gpt-4o", max_tokens=64, system="you call tools", tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"}, messages=[
            *HELLO, {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_0", "name": "get_weather",
                 "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0",
                                          "content": "rain"}]}])

    block = message.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == anthropic_wire.TOOL_INPUT and message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 2)
    sent = upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    chat = sent.json()
    assert chat["messages"][0] == {"role": "system", "content": "you call tools"}
    assert chat["messages"][2]["tool_calls"][0]["function"] == {
        "name": "get_weather", "arguments": '{"city":"Oslo"}'}
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "toolu_0", "content": "rain"}
    assert chat["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["max_tokens"] == 64


async def test_a_stream_over_an_openai_upstream_is_translated_event_by_event(claude):
    async with claude().messages.stream(model="gpt-4o", max_tokens=64,
                                        messages=HELLO) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert "".join(texts) == "part0 part1 part2 "
    assert final.stop_reason == "end_turn"


async def test_the_mock_model_answers_the_anthropic_surface_plain_and_streamed(claude):
    client = claude()
    message = await client.messages.create(model="echo", max_tokens=8, messages=HELLO)
    async with client.messages.stream(model="echo", max_tokens=8, messages=HELLO) as stream:
        final = await stream.get_final_message()
    counted = await client.messages.count_tokens(model="echo", messages=HELLO)

    assert message.content[0].type == "text" and message.content[0].text == "echo: hello there"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 3)
    assert final.content[0].type == "text" and final.content[0].text == "echo: hello there"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 3)
    assert counted.input_tokens == 2


async def test_count_tokens_is_passed_to_an_anthropic_upstream(claude, upstream):
    counted = await claude().messages.count_tokens(model="claude", messages=HELLO)

    assert counted.input_tokens == anthropic_wire.INPUT_TOKENS
    assert upstream.requests[-1].path == "/v1/messages/count_tokens"


async def test_the_openai_surface_is_translated_over_an_anthropic_upstream(served, dev_issuer,
                                                                           upstream):
    token = dev_issuer.mint(subject="svc", roles=("user",))
    async with openai.AsyncOpenAI(base_url=f"{served}/v1", api_key=token,
                                  max_retries=0) as client:
        completion = await client.chat.completions.create(
            model="claude", user="end-user-1", messages=[
                {"role": "system", "content": "be brief"}, *HELLO])
        called = await client.chat.completions.create(
            model="claude", messages=HELLO, tools=[{"type": "function", "function": {
                "name": "get_weather", "parameters": WEATHER["input_schema"]}}])

    assert completion.choices[0].message.content == anthropic_wire.TEXT
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (
        anthropic_wire.INPUT_TOKENS + anthropic_wire.CACHE_READ, anthropic_wire.OUTPUT_TOKENS)
    call = called.choices[0].message.tool_calls
    assert call is not None and call[0].function.name == "get_weather"
    assert called.choices[0].finish_reason == "tool_calls"
    sent = [request.json() for request in upstream.requests]
    assert sent[0]["system"] == "be brief" and sent[0]["max_tokens"] == 4096
    assert sent[0]["metadata"] == {"user_id": "end-user-1"}
    assert sent[1]["tools"][0]["input_schema"] == WEATHER["input_schema"]


async def test_a_chat_stream_over_an_anthropic_upstream_is_translated_event_by_event(
        served, dev_issuer, upstream):
    token = dev_issuer.mint(subject="svc", roles=("user",))
    async with openai.AsyncOpenAI(base_url=f"{served}/v1", api_key=token,
                                  max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="claude", messages=HELLO, stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        tools = await client.chat.completions.create(
            model="claude", messages=HELLO, stream=True, tools=[{
                "type": "function", "function": {"name": "get_weather",
                                                 "parameters": WEATHER["input_schema"]}}])
        tool_chunks = [chunk async for chunk in tools]

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == anthropic_wire.TEXT
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens == (anthropic_wire.INPUT_TOKENS
                                                         + anthropic_wire.CACHE_READ)
    calls = [call for chunk in tool_chunks if chunk.choices
             for call in chunk.choices[0].delta.tool_calls or ()]
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    assert "".join(call.function.arguments or "" for call in calls if call.function) == \
        '{"city": "Paris"}'
    assert tool_chunks[-1].choices[0].finish_reason == "tool_calls"
    assert upstream.requests[-1].json()["stream"] is True


async def test_errors_are_in_anthropics_shape_and_refused_calls_reach_no_upstream(
        claude, served, upstream):
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        await claude("small").messages.create(model="claude", max_tokens=8, messages=HELLO)
    with pytest.raises(anthropic.BadRequestError) as untranslatable:
        await claude().messages.create(model="gpt-4o", max_tokens=8, messages=HELLO,
                                       extra_body={"top_k": 5})
    async with httpx.AsyncClient(base_url=served) as raw:
        anonymous = await raw.post("/v1/messages", json={"model": "claude", "max_tokens": 8,
                                                         "messages": HELLO})

    assert denied.value.status_code == 403
    assert denied.value.body == {"type": "error", "error": {
        "type": "permission_error", "message": denied.value.body["error"]["message"]}}
    assert "model 'claude'" in denied.value.body["error"]["message"]
    assert untranslatable.value.status_code == 400
    assert untranslatable.value.body["error"]["type"] == "invalid_request_error"
    assert "`top_k`" in untranslatable.value.body["error"]["message"]
    assert anonymous.status_code == 401 and anonymous.json()["type"] == "error"
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert upstream.requests == []
