"""Every API surface over every kind of upstream: a question with a tool is answered by a call of
that tool, the tool's result sent back is answered in text, whole and streamed, each answer read
by the surface's own SDK (`openai`, `anthropic`, `google-genai`). The call is passed through
where the upstream speaks the surface's API and translated (once or twice) where it does not.
Tokens are counted on the surfaces that count (Anthropic's and Gemini's) for every upstream:
by the upstream where it speaks that API, else by the gateway's estimate, marked as such.

Adding a provider is one entry in `UPSTREAMS`. The gateway, the upstream and the clients are
shared by every case of the module."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import bpe_openai
import httpx
import openai
import pytest
import pytest_asyncio
from google import genai
from google.genai import types

from rolegate.accounting.estimate import MESSAGE_OVERHEAD, REPLY_PRIMING
from rolegate.app import build_app
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.config.load import validate_settings
from rolegate.providers.http import HttpClient
from tests.support import anthropic_wire, bedrock_wire, gemini_wire
from tests.support.google_token import TokenEndpoint
from tests.support.lifespan import Lifespan
from tests.support.served import ServedApp
from tests.support.servers import RecordingUpstream
from tests.support.storage import DEV_ISSUER

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUESTION = "weather in Paris?"
RESULT = "sunny, 22 degrees"
TOOL_ARGS = {"city": "Paris"}  # what every upstream of tests/support calls the tool with
# A tool call the client made up: the mock answers in text, never by calling a tool.
MADE_UP_CALL = ("call_made_up", "get_weather", TOOL_ARGS)


@dataclass(frozen=True)
class Upstream:
    """One provider: its deployment (from the upstream's URL and a service-account file) and
    the text it answers a question with, whole and streamed."""

    deployment: Callable[[str, Path], dict[str, Any]]
    text: str
    streamed_text: str
    is_calling_tools: bool = True
    counts: dict[str, int] = field(default_factory=dict)  # surface -> its own count of QUESTION


UPSTREAMS = {
    "openai-compatible": Upstream(lambda url, _: {"provider": "openai-compatible",
                                                  "api_base": f"{url}/v1"},
                                  "from upstream", "part0 part1 part2 "),
    "anthropic": Upstream(lambda url, _: {"provider": "anthropic", "api_base": f"{url}/v1",
                                          "api_key": "sk-ant-upstream"},
                          anthropic_wire.TEXT, anthropic_wire.TEXT,
                          counts={"anthropic": anthropic_wire.INPUT_TOKENS}),
    "gemini": Upstream(lambda url, _: {"provider": "gemini", "api_base": f"{url}/v1beta",
                                       "api_key": "AIza-upstream"},
                       gemini_wire.TEXT, gemini_wire.TEXT,
                       counts={"gemini": gemini_wire.PROMPT_TOKENS}),
    "vertex": Upstream(lambda url, account: {
        "provider": "vertex", "api_base": f"{url}/v1", "project": "proj",
        "location": "europe-west4", "credentials_file": str(account)},
        gemini_wire.TEXT, gemini_wire.TEXT, counts={"gemini": gemini_wire.PROMPT_TOKENS}),
    "bedrock": Upstream(lambda url, _: {
        "provider": "bedrock", "api_base": url, "model": "amazon.nova-lite-v1:0",
        "region": bedrock_wire.REGION, "aws_access_key_id": bedrock_wire.ACCESS_KEY,
        "aws_secret_access_key": bedrock_wire.SECRET_KEY},
        bedrock_wire.TEXT, bedrock_wire.TEXT),
    "mock": Upstream(lambda *_: {"provider": "mock"}, f"echo: {QUESTION}", f"echo: {QUESTION}",
                     is_calling_tools=False,  # counts in words, on both surfaces
                     counts={"anthropic": 3, "gemini": 3}),
}


@dataclass
class Answer:
    """What the SDK read: the text, and the tool calls as (id, name, arguments)."""

    text: str = ""
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


Call = tuple[str, str, dict[str, Any]]
# A surface: (client, model, is_stream, tool call to answer or None) -> the SDK's answer.
Ask = Callable[[Any, str, bool, "Call | None"], Awaitable[Answer]]

OPENAI_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


async def ask_openai(client: openai.AsyncOpenAI, model: str, is_stream: bool,
                     call: Call | None) -> Answer:
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    if call is not None:
        messages += [{"role": "assistant", "content": None, "tool_calls": [{
            "id": call[0], "type": "function",
            "function": {"name": call[1], "arguments": json.dumps(call[2])}}]},
            {"role": "tool", "tool_call_id": call[0], "content": RESULT}]
    tools: Any = [] if call is not None else [OPENAI_TOOL]
    if is_stream:
        async with client.chat.completions.stream(model=model, messages=messages,
                                                  tools=tools or openai.omit) as stream:
            completion = await stream.get_final_completion()
    else:
        completion = await client.chat.completions.create(model=model, messages=messages,
                                                          tools=tools or openai.omit)
    message = completion.choices[0].message
    return Answer(message.content or "", [
        (c.id, c.function.name, json.loads(c.function.arguments))
        for c in message.tool_calls or () if c.type == "function"])


async def ask_anthropic(client: anthropic.AsyncAnthropic, model: str, is_stream: bool,
                        call: Call | None) -> Answer:
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    if call is not None:
        messages += [{"role": "assistant", "content": [
            {"type": "tool_use", "id": call[0], "name": call[1], "input": call[2]}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call[0], "content": RESULT}]}]
    tools: Any = anthropic.omit if call is not None else [{
        "name": "get_weather", "description": "Weather in a city",
        "input_schema": OPENAI_TOOL["function"]["parameters"]}]  # type: ignore[index]
    if is_stream:
        async with client.messages.stream(model=model, max_tokens=64, messages=messages,
                                          tools=tools) as stream:
            message = await stream.get_final_message()
    else:
        message = await client.messages.create(model=model, max_tokens=64, messages=messages,
                                               tools=tools)
    return Answer("".join(b.text for b in message.content if b.type == "text"), [
        (b.id, b.name, dict(b.input)) for b in message.content  # type: ignore[call-overload]
        if b.type == "tool_use"])


async def ask_gemini(client: genai.Client, model: str, is_stream: bool,
                     call: Call | None) -> Answer:
    contents = [types.Content(role="user", parts=[types.Part(text=QUESTION)])]
    config = types.GenerateContentConfig(
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    if call is not None:
        contents += [
            types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(
                id=call[0], name=call[1], args=call[2]))]),
            types.Content(role="user", parts=[types.Part(
                function_response=types.FunctionResponse(id=call[0], name=call[1],
                                                         response={"forecast": RESULT}))])]
    else:
        config.tools = [types.Tool(function_declarations=[types.FunctionDeclaration(
            name="get_weather", description="Weather in a city",
            parameters_json_schema=OPENAI_TOOL["function"]["parameters"])])]  # type: ignore[index]
    models = client.aio.models
    if is_stream:
        chunks = [chunk async for chunk in await models.generate_content_stream(
            model=model, contents=contents, config=config)]
    else:
        chunks = [await models.generate_content(model=model, contents=contents, config=config)]
    answer = Answer()
    for chunk in chunks:
        for part in (chunk.candidates or [])[0].content.parts or ():  # type: ignore[union-attr]
            answer.text += part.text or ""
            if part.function_call is not None:
                answer.calls.append((part.function_call.id or "", part.function_call.name or "",
                                     dict(part.function_call.args or {})))
    return answer


SURFACES: dict[str, Ask] = {"openai": ask_openai, "anthropic": ask_anthropic,
                            "gemini": ask_gemini}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream() -> AsyncIterator[RecordingUpstream]:
    async with RecordingUpstream() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clients(upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[dict[str, Any]]:
    """One client per surface, each the surface's SDK, on a gateway serving every upstream."""
    dev_issuer = DevIssuer.generate(DEV_ISSUER, "rolegate")
    async with TokenEndpoint() as token_endpoint:
        account = token_endpoint.service_account(tmp_path_factory.mktemp("vertex"))
        settings = validate_settings({
            "models": [{"name": name, **kind.deployment(upstream.url, account)}
                       for name, kind in UPSTREAMS.items()],
            "auth": {"dev_issuer": {"enabled": True}},
            "accounting": {"enabled": False},
            "policy": [{"name": "users", "when": {"roles": ["user"]},
                        "allow": {"routes": ["inference"], "models": list(UPSTREAMS)}}],
        }, source="<test>")
        http = HttpClient()
        app = build_app(settings, http=http, dev_issuer=dev_issuer)
        lifespan = Lifespan(app)
        await lifespan.startup()
        token = dev_issuer.mint(subject="svc", roles=("user",))
        async with (ServedApp(app) as url, httpx.AsyncClient(timeout=30) as transport,
                    openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=token,
                                       max_retries=0) as openai_client,
                    anthropic.AsyncAnthropic(base_url=url, api_key=token,
                                             max_retries=0) as anthropic_client):
            yield {
                "openai": openai_client, "anthropic": anthropic_client,
                # The SDK's httpx transport, given: its aiohttp one subclasses a class aiohttp
                # warns on.
                "gemini": genai.Client(api_key=token, http_options=types.HttpOptions(
                    base_url=url, api_version="v1beta", httpx_async_client=transport)),
            }
        await lifespan.shutdown()
        await http.close()


@pytest.mark.parametrize("is_stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("provider", list(UPSTREAMS))
@pytest.mark.parametrize("surface", list(SURFACES))
async def test_a_tool_call_round_trip_on_every_surface_over_every_upstream(
        clients, upstream, surface, provider, is_stream):
    ask, client, kind = SURFACES[surface], clients[surface], UPSTREAMS[provider]

    asked = await ask(client, provider, is_stream, None)
    if kind.is_calling_tools:
        assert [(name, args) for _, name, args in asked.calls] == [("get_weather", TOOL_ARGS)]
        call = asked.calls[0]
    else:
        assert asked.calls == [] and asked.text == kind.text
        call = MADE_UP_CALL
    seen = len(upstream.requests)
    answered = await ask(client, provider, is_stream, call)

    assert answered.calls == []
    assert answered.text == (kind.streamed_text if is_stream else kind.text)
    if provider != "mock":  # the tool's result reached the upstream, in its own API's shape
        assert len(upstream.requests) == seen + 1
        assert RESULT in upstream.requests[-1].body.decode()


async def count_anthropic(client: anthropic.AsyncAnthropic, model: str) -> tuple[int, str | None]:
    raw = await client.messages.with_raw_response.count_tokens(
        model=model, messages=[{"role": "user", "content": QUESTION}])
    return (await raw.parse()).input_tokens, raw.headers.get("x-rolegate-token-count")


async def count_gemini(client: genai.Client, model: str) -> tuple[int, str | None]:
    counted = await client.aio.models.count_tokens(model=model, contents=QUESTION)
    assert counted.sdk_http_response is not None
    return counted.total_tokens or 0, (counted.sdk_http_response.headers or {}).get(
        "x-rolegate-token-count")


COUNTERS = {"anthropic": count_anthropic, "gemini": count_gemini}
# The estimate of QUESTION as one user message, counted here with the vocabulary itself.
ESTIMATE = (len(bpe_openai.get_encoding("o200k_base").encode(QUESTION))
            + MESSAGE_OVERHEAD + REPLY_PRIMING)


@pytest.mark.parametrize("provider", list(UPSTREAMS))
@pytest.mark.parametrize("surface", list(COUNTERS))
async def test_tokens_are_counted_on_every_counting_surface_for_every_upstream(
        clients, upstream, surface, provider):
    kind = UPSTREAMS[provider]
    seen = len(upstream.requests)

    tokens, marker = await COUNTERS[surface](clients[surface], provider)

    if surface in kind.counts:  # the upstream speaks the surface's API: its own count
        assert (tokens, marker) == (kind.counts[surface], None)
    else:
        assert (tokens, marker) == (ESTIMATE, "estimated")
        assert len(upstream.requests) == seen  # nothing asked of an upstream that cannot count
