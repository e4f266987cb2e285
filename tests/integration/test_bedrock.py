"""The bedrock provider with the official `openai` and `anthropic` SDKs as clients and the
gateway on a loopback socket, over a Bedrock upstream that checks each request's SigV4
signature and validates it against botocore's service model (`tests/support/bedrock_wire.py`):
Converse and ConverseStream (text, tool calls, images, cache usage), Titan and Cohere
embeddings, and Bedrock's errors in each caller's API."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from botocore.session import Session

from rolegate.authn.dev_issuer import DevIssuer
from rolegate.providers.base import UpstreamCall
from rolegate.providers.bedrock import BedrockProvider
from rolegate.providers.http import HttpClient
from tests.support import bedrock_wire
from tests.support.served import served_gateway
from tests.support.servers import RecordingUpstream

HELLO: list[Any] = [{"role": "user", "content": "hello there"}]
WEATHER_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                            "parameters": WEATHER_PARAMETERS}}
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n-not-a-real-image").decode()


def _bedrock(name: str, model: str, upstream_url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": "bedrock", "api_base": upstream_url, "model": model,
            "region": bedrock_wire.REGION, "aws_access_key_id": bedrock_wire.ACCESS_KEY,
            "aws_secret_access_key": bedrock_wire.SECRET_KEY, **extra}


def bedrock_config(upstream_url: str) -> dict[str, Any]:
    return {
        "models": [
            _bedrock("nova", "amazon.nova-pro-v1:0", upstream_url),
            _bedrock("broken", bedrock_wire.FAIL_MODEL, upstream_url),
            _bedrock("throttled", bedrock_wire.THROTTLED_MODEL, upstream_url),
            _bedrock("titan", "amazon.titan-embed-text-v2:0", upstream_url),
            _bedrock("cohere", "cohere.embed-english-v3", upstream_url),
            _bedrock("wrong-key", "amazon.nova-pro-v1:0", upstream_url,
                     aws_secret_access_key="not-the-secret"),
        ],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [{"name": "users", "when": {"roles": ["user"]},
                    "allow": {"routes": ["inference"], "models": ["*"]}}],
    }


@pytest.fixture
async def served(settings_from, dev_issuer: DevIssuer, upstream: RecordingUpstream
                 ) -> AsyncIterator[str]:
    async with served_gateway(settings_from(bedrock_config(upstream.url)),
                              dev_issuer=dev_issuer) as url:
        yield url


@pytest.fixture
async def gpt(served: str, dev_issuer: DevIssuer) -> AsyncIterator[openai.AsyncOpenAI]:
    token = dev_issuer.mint(subject="svc", roles=("user",))
    async with openai.AsyncOpenAI(base_url=f"{served}/v1", api_key=token,
                                  max_retries=0) as client:
        yield client


@pytest.fixture
async def claude(served: str, dev_issuer: DevIssuer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    token = dev_issuer.mint(subject="svc", roles=("user",))
    client = anthropic.AsyncAnthropic(base_url=served, api_key=token, max_retries=0)
    yield client
    await client.close()


async def test_a_chat_completion_is_a_signed_converse_call(gpt, upstream):
    completion = await gpt.chat.completions.create(
        model="nova", user="end-user-1", max_tokens=64, temperature=0.5, stop=["END"],
        messages=[{"role": "system", "content": "be brief"}, *HELLO,
                  {"role": "assistant", "content": "hi"},
                  {"role": "user", "content": [
                      {"type": "text", "text": "what is this?"},
                      {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}}
                  ]}])

    assert completion.choices[0].message.content == bedrock_wire.TEXT
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    prompt = bedrock_wire.INPUT_TOKENS + bedrock_wire.CACHE_READ + bedrock_wire.CACHE_WRITE
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, bedrock_wire.OUTPUT_TOKENS)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == bedrock_wire.CACHE_READ
    sent = upstream.requests[-1]
    assert sent.path == "/model/amazon.nova-pro-v1:0/converse"
    assert sent.headers["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={bedrock_wire.ACCESS_KEY}/")
    body = sent.json()
    assert body["system"] == [{"text": "be brief"}]
    assert [message["role"] for message in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"][1] == {"image": {"format": "png",
                                                           "source": {"bytes": PIXEL}}}
    assert body["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.5,
                                       "stopSequences": ["END"]}
    assert body["requestMetadata"] == {"user": "end-user-1"}


async def test_a_tool_call_round_trip_goes_through_tool_config(gpt, upstream):
    called = await gpt.chat.completions.create(model="nova", messages=HELLO, tools=[WEATHER],
                                               tool_choice="required")
    call = called.choices[0].message.tool_calls
    assert call is not None and call[0].type == "function"
    assert call[0].function.name == "get_weather"
    assert json.loads(call[0].function.arguments) == bedrock_wire.TOOL_INPUT
    assert called.choices[0].finish_reason == "tool_calls"
    answered = await gpt.chat.completions.create(model="nova", tools=[WEATHER], messages=[
        *HELLO, called.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call[0].id, "content": "rain"}])

    assert answered.choices[0].message.tool_calls is not None
    first, second = (request.json() for request in upstream.requests)
    assert first["toolConfig"] == {"tools": [{"toolSpec": {
        "name": "get_weather", "description": "Weather",
        "inputSchema": {"json": WEATHER_PARAMETERS}}}], "toolChoice": {"any": {}}}
    assert second["messages"][1]["content"] == [{"toolUse": {
        "toolUseId": "tooluse_1", "name": "get_weather", "input": bedrock_wire.TOOL_INPUT}}]
    assert second["messages"][2]["content"] == [{"toolResult": {
        "toolUseId": "tooluse_1", "content": [{"text": "rain"}]}}]


async def test_a_chat_stream_is_decoded_from_event_stream_frames(gpt, upstream):
    stream = await gpt.chat.completions.create(model="nova", messages=HELLO, stream=True,
                                               stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    tools = await gpt.chat.completions.create(model="nova", messages=HELLO, stream=True,
                                              tools=[WEATHER])
    tool_chunks = [chunk async for chunk in tools]

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks
                   if chunk.choices) == bedrock_wire.TEXT
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == bedrock_wire.OUTPUT_TOKENS
    calls = [call for chunk in tool_chunks if chunk.choices
             for call in chunk.choices[0].delta.tool_calls or ()]
    assert calls[0].id == "tooluse_1"
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    assert json.loads("".join(call.function.arguments or "" for call in calls
                              if call.function)) == bedrock_wire.TOOL_INPUT
    assert tool_chunks[-1].usage is None  # the caller did not ask for it
    assert [request.path for request in upstream.requests] == [
        "/model/amazon.nova-pro-v1:0/converse-stream"] * 2


async def test_the_anthropic_surface_is_served_plain_and_streamed_with_tools(claude, upstream):
    message = await claude.messages.create(model="nova", max_tokens=32, system="be brief",
                                           messages=HELLO)
    called = await claude.messages.create(
        model="nova", max_tokens=32, messages=HELLO, tools=[{
            "name": "get_weather", "input_schema": WEATHER_PARAMETERS}])
    async with claude.messages.stream(model="nova", max_tokens=32, messages=HELLO) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert message.content[0].type == "text" and message.content[0].text == bedrock_wire.TEXT
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == bedrock_wire.OUTPUT_TOKENS
    assert message.usage.cache_read_input_tokens == bedrock_wire.CACHE_READ
    block = called.content[0]
    assert block.type == "tool_use" and block.input == bedrock_wire.TOOL_INPUT
    assert called.stop_reason == "tool_use"
    assert "".join(texts) == bedrock_wire.TEXT and final.stop_reason == "end_turn"
    assert upstream.requests[0].json()["system"] == [{"text": "be brief"}]


async def test_embeddings_go_to_titan_text_by_text_and_to_cohere_at_once(gpt, upstream):
    titan = await gpt.embeddings.create(model="titan", input=["one two", "three"],
                                        dimensions=2)
    cohere = await gpt.embeddings.create(model="cohere", input=["one", "two"])

    assert [item.embedding for item in titan.data] == [bedrock_wire.EMBEDDING[:2]] * 2
    assert titan.usage.prompt_tokens == 3
    assert [item.index for item in cohere.data] == [0, 1]
    assert cohere.data[1].embedding == bedrock_wire.EMBEDDING
    assert [request.json() for request in upstream.requests] == [
        {"inputText": "one two", "dimensions": 2}, {"inputText": "three", "dimensions": 2},
        {"texts": ["one", "two"], "input_type": "search_document"}]
    assert upstream.requests[0].path == "/model/amazon.titan-embed-text-v2:0/invoke"


async def test_bedrock_errors_reach_each_caller_in_its_own_shape(gpt, claude, upstream):
    with pytest.raises(openai.BadRequestError) as chat_error:
        await gpt.chat.completions.create(model="broken", messages=HELLO)
    with pytest.raises(anthropic.BadRequestError) as message_error:
        await claude.messages.create(model="broken", max_tokens=8, messages=HELLO)
    with pytest.raises(openai.APIStatusError) as refused:
        await gpt.chat.completions.create(model="wrong-key", messages=HELLO)

    assert "model identifier is invalid" in chat_error.value.message
    assert chat_error.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert message_error.value.body["type"] == "error"  # type: ignore[index]
    assert "model identifier is invalid" in message_error.value.body["error"]["message"]  # type: ignore[index]
    # A signature AWS refuses is the gateway's fault, never passed off as the caller's 403.
    assert refused.value.status_code == 502
    assert refused.value.body["code"] == "upstream_auth_failed"  # type: ignore[index]
    assert len(upstream.requests) == 3


async def test_a_throttle_mid_stream_ends_the_stream_with_an_error_event(served, dev_issuer):
    token = dev_issuer.mint(subject="svc", roles=("user",))
    async with openai.AsyncOpenAI(base_url=f"{served}/v1", api_key=token,
                                  max_retries=0) as client:
        stream = await client.chat.completions.create(model="throttled", messages=HELLO,
                                                      stream=True)
        with pytest.raises(openai.APIError) as failed:
            async for _ in stream:
                pass

    assert "Too many requests" in failed.value.message


@pytest.mark.parametrize(("extra", "field"), [
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"tool_choice": "none", "tools": [WEATHER]}, "tool_choice"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "https://example.com/cat.png"}}]}]}, "messages[0].content[0].image_url.url"),
], ids=["response-format", "tool-choice-none", "image-by-url"])
async def test_an_untranslatable_field_is_refused_naming_it_before_the_upstream(
        gpt, upstream, extra, field):
    with pytest.raises(openai.BadRequestError) as refused:
        await gpt.chat.completions.create(**{"model": "nova", "messages": HELLO, **extra})

    assert refused.value.body["param"] == field  # type: ignore[index]
    assert refused.value.body["code"] == "untranslatable_field"  # type: ignore[index]
    assert upstream.requests == []


async def test_the_mock_refuses_an_unsigned_or_missigned_request_as_aws_does(upstream):
    url = f"{upstream.url}/model/amazon.nova-pro-v1:0/converse"
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    async with httpx.AsyncClient() as raw:
        unsigned = await raw.post(url, json=body)
        forged = await raw.post(url, json=body, headers={
            "authorization": f"AWS4-HMAC-SHA256 Credential={bedrock_wire.ACCESS_KEY}/20250101/"
                             f"{bedrock_wire.REGION}/bedrock/aws4_request, "
                             f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}",
            "x-amz-date": "20250101T000000Z"})

    assert (unsigned.status_code, forged.status_code) == (403, 403)
    assert "signature" in forged.json()["message"]


async def test_credentials_come_from_the_shared_credentials_file_of_the_chain(
        settings_from, upstream, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[team]\naws_access_key_id = {bedrock_wire.ACCESS_KEY}\n"
                           f"aws_secret_access_key = {bedrock_wire.SECRET_KEY}\n")
    session = Session(profile="team")
    session.set_config_variable("credentials_file", str(credentials))
    session.set_config_variable("config_file", str(tmp_path / "no-config"))
    config = settings_from({"models": [{"name": "nova", "provider": "bedrock",
                                        "api_base": upstream.url, "model": "amazon.nova-pro-v1:0",
                                        "region": bedrock_wire.REGION, "aws_profile": "team"}],
                            "auth": {"dev_issuer": {"enabled": True}}}).models[0].deployments[0]
    http = HttpClient()
    provider = BedrockProvider(config, http, None, session)

    reply = await provider.open(UpstreamCall("chat/completions", {
        "model": "amazon.nova-pro-v1:0", "messages": HELLO}, None, False, "req-1"))
    body = json.loads(b"".join([chunk async for chunk in reply.chunks]))
    await reply.end()
    await http.close()

    assert reply.status == 200 and body["choices"][0]["message"]["content"] == bedrock_wire.TEXT
