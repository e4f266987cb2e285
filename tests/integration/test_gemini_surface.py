"""The Gemini surface, with Google's `google-genai` SDK as the client and the gateway on a
loopback socket: `generateContent` (plain and streamed with `alt=sse`), `countTokens`,
embeddings and `models.list` over an upstream speaking the Gemini API
(`tests/support/gemini_wire.py`), over Vertex AI (a service-account key made here, its token
signed by google-auth and fetched from a local token endpoint), translated over an
OpenAI-compatible upstream and the mock; the OpenAI and Anthropic surfaces over the Gemini
upstream; and errors in Google's shape, raised by the SDK as its own error types."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors, types

from rolegate.app import build_app
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.providers.http import HttpClient
from tests.support import gemini_wire
from tests.support.lifespan import Lifespan
from tests.support.served import ServedApp
from tests.support.google_token import TokenEndpoint
from tests.support.servers import RecordingUpstream

UPSTREAM_KEY = "AIza-upstream"
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Weather in a city",
    parameters=types.Schema(type=types.Type.OBJECT,
                            properties={"city": types.Schema(type=types.Type.STRING)}))


@pytest.fixture
async def token_endpoint(tmp_path: Path) -> AsyncIterator[tuple[TokenEndpoint, Path]]:
    async with TokenEndpoint() as server:
        yield server, server.service_account(tmp_path)


def surface_config(upstream_url: str, account: Path) -> dict[str, Any]:
    return {
        "models": [
            {"name": "gemini", "provider": "gemini", "api_base": f"{upstream_url}/v1beta",
             "api_key": UPSTREAM_KEY, "model": "gemini-upstream"},
            {"name": "vertex", "provider": "vertex", "api_base": f"{upstream_url}/v1",
             "project": "proj", "location": "europe-west4", "credentials_file": str(account),
             "model": "gemini-vertex"},
            {"name": "gpt-4o", "provider": "openai-compatible",
             "api_base": f"{upstream_url}/v1"},
            {"name": "echo", "provider": "mock"},
        ],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [
            {"name": "users", "when": {"roles": ["user"]},
             "allow": {"routes": ["inference", "info"],
                       "models": ["gemini", "vertex", "gpt-4o", "echo"]}},
            {"name": "small", "when": {"roles": ["small"]},
             "allow": {"routes": ["inference", "info"], "models": ["echo"]}},
        ],
    }


@pytest.fixture
async def served(settings_from, dev_issuer: DevIssuer, upstream: RecordingUpstream,
                 token_endpoint: tuple[TokenEndpoint, Path]) -> AsyncIterator[str]:
    http = HttpClient()
    app = build_app(settings_from(surface_config(upstream.url, token_endpoint[1])), http=http,
                    dev_issuer=dev_issuer)
    lifespan = Lifespan(app)
    await lifespan.startup()
    async with ServedApp(app) as url:
        yield url
    await lifespan.shutdown()
    await http.close()


@pytest.fixture
async def gemini(served: str, dev_issuer: DevIssuer
                 ) -> AsyncIterator[Callable[..., genai.Client]]:
    transports: list[httpx.AsyncClient] = []

    def make(*roles: str) -> genai.Client:
        token = dev_issuer.mint(subject="svc", roles=roles or ("user",))
        # The SDK's httpx transport, given: its aiohttp one subclasses a class aiohttp warns on.
        transports.append(httpx.AsyncClient(timeout=30))
        return genai.Client(api_key=token, http_options=types.HttpOptions(
            base_url=served, api_version="v1beta", httpx_async_client=transports[-1]))
    yield make
    for transport in transports:
        await transport.aclose()


async def test_content_over_a_gemini_upstream_is_passed_through(gemini, upstream):
    response = await gemini().aio.models.generate_content(
        model="gemini", contents="hello there",
        config=types.GenerateContentConfig(system_instruction="be brief", max_output_tokens=64))

    assert response.text == gemini_wire.TEXT
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == gemini_wire.PROMPT_TOKENS
    sent = upstream.requests[-1]
    assert sent.path == "/v1beta/models/gemini-upstream:generateContent"
    assert "model" not in sent.json()
    assert sent.json()["systemInstruction"]["parts"] == [{"text": "be brief"}]
    # The gateway's own credential goes upstream, never the caller's token.
    assert sent.headers["x-goog-api-key"] == UPSTREAM_KEY and "Authorization" not in sent.headers


async def test_a_stream_over_a_gemini_upstream_arrives_as_sse_events(gemini, upstream):
    texts = [chunk.text async for chunk in await gemini().aio.models.generate_content_stream(
        model="gemini", contents="hello there")]

    assert texts == ["from ", "gemini ", "upstream"]
    assert upstream.requests[-1].path == "/v1beta/models/gemini-upstream:streamGenerateContent"
    assert upstream.requests[-1].query == "alt=sse"


async def test_vertex_is_called_with_a_service_account_token_fetched_once(
        gemini, upstream, token_endpoint):
    endpoint, _ = token_endpoint
    client = gemini()
    first = await client.aio.models.generate_content(model="vertex", contents="hello")
    texts = [chunk.text async for chunk in await client.aio.models.generate_content_stream(
        model="vertex", contents="hello")]

    assert first.text == gemini_wire.TEXT and "".join(texts) == gemini_wire.TEXT
    sent = upstream.requests[-1]
    assert sent.path == ("/v1/projects/proj/locations/europe-west4/publishers/google/models/"
                         "gemini-vertex:streamGenerateContent")
    assert sent.headers["Authorization"] == "Bearer ya29.token-1"
    assert "x-goog-api-key" not in sent.headers
    assert len(endpoint.granted) == 1  # cached until shortly before it expires
    assert endpoint.granted[0]["iss"] == "gateway@proj.iam.gserviceaccount.com"


async def test_a_vertex_token_about_to_expire_is_refreshed_before_use(gemini, upstream,
                                                                      token_endpoint):
    endpoint, _ = token_endpoint
    endpoint.expires_in = 60  # inside google-auth's refresh margin: stale at once
    client = gemini()
    for _ in range(2):
        await client.aio.models.generate_content(model="vertex", contents="hello")

    assert len(endpoint.granted) == 2
    assert upstream.requests[-1].headers["Authorization"] == "Bearer ya29.token-2"


async def test_content_over_an_openai_upstream_is_translated_with_its_tools(gemini, upstream):
    response = await gemini().aio.models.generate_content(
        model="gpt-4o", contents=[
            types.Content(role="user", parts=[types.Part(text="weather in Oslo?")]),
            types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(
                name="get_weather", args={"city": "Oslo"}))]),
            types.Content(role="user", parts=[types.Part(
                function_response=types.FunctionResponse(name="get_weather",
                                                         response={"sky": "rain"}))])],
        config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[WEATHER])],
            tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"])),
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)))

    assert response.function_calls is not None
    call = response.function_calls[0]
    assert call.name == "get_weather" and call.args == gemini_wire.TOOL_ARGS
    assert response.usage_metadata is not None
    assert response.usage_metadata.total_token_count == 5
    chat = upstream.requests[-1].json()
    assert upstream.requests[-1].path == "/v1/chat/completions"
    call_id = chat["messages"][1]["tool_calls"][0]["id"]
    assert chat["messages"][1]["tool_calls"][0]["function"] == {
        "name": "get_weather", "arguments": '{"city":"Oslo"}'}
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": call_id,
                                   "content": '{"sky":"rain"}'}
    assert chat["tools"][0]["function"]["parameters"] == {
        "type": "object", "properties": {"city": {"type": "string"}}}
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


async def test_a_stream_over_an_openai_upstream_is_translated_chunk_by_chunk(gemini, upstream):
    chunks = [chunk async for chunk in await gemini().aio.models.generate_content_stream(
        model="gpt-4o", contents="hello")]

    assert "".join(chunk.text or "" for chunk in chunks) == "part0 part1 part2 "
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == "STOP"
    assert upstream.requests[-1].json()["stream"] is True


@pytest.mark.parametrize("is_stream", [False, True], ids=["whole", "streamed"])
async def test_the_mock_answers_on_the_gemini_surface(gemini, is_stream):
    models = gemini().aio.models
    if is_stream:
        text = "".join([chunk.text or "" async for chunk in
                        await models.generate_content_stream(model="echo",
                                                             contents="hello there")])
    else:
        text = (await models.generate_content(model="echo", contents="hello there")).text or ""

    assert text == "echo: hello there"


async def test_tokens_are_counted_by_the_gemini_upstream_and_the_mock(gemini):
    models = gemini().aio.models
    upstream = await models.count_tokens(model="gemini", contents="hello there")
    mock = await models.count_tokens(model="echo", contents="one two three")

    assert upstream.total_tokens == gemini_wire.PROMPT_TOKENS and mock.total_tokens == 3


@pytest.mark.parametrize(("model", "path"), [
    ("gemini", "/v1beta/models/gemini-upstream:batchEmbedContents"),
    ("gpt-4o", "/v1/embeddings"),
], ids=["gemini-upstream", "openai-upstream-translated"])
async def test_contents_are_embedded(gemini, upstream, model, path):
    result = await gemini().aio.models.embed_content(model=model, contents=["a", "b"])

    assert result.embeddings is not None and result.embeddings[0].values
    assert upstream.requests[-1].path == path
    if model == "gemini":
        assert [r["model"] for r in upstream.requests[-1].json()["requests"]] == [
            "models/gemini-upstream"] * 2


async def test_models_lists_what_the_caller_is_granted(gemini):
    names = [model.name async for model in await gemini("small").aio.models.list()]

    assert names == ["models/echo"]


async def test_models_get_answers_for_a_granted_model_only(gemini, upstream):
    """`models.get` is decided as on the OpenAI surface: granted and configured, or refused."""
    model = await gemini("small").aio.models.get(model="echo")
    with pytest.raises(errors.ClientError) as denied:
        await gemini("small").aio.models.get(model="gemini")
    with pytest.raises(errors.ClientError) as unknown:
        await gemini("user").aio.models.get(model="no-such-model")

    assert model.name == "models/echo"
    assert (denied.value.code, denied.value.status) == (403, "PERMISSION_DENIED")
    assert unknown.value.code in (403, 404)  # never granted: refused before any lookup
    assert upstream.requests == []


async def test_the_openai_surface_is_served_by_a_gemini_upstream(served, dev_issuer, upstream):
    client = openai.AsyncOpenAI(base_url=f"{served}/v1", max_retries=0,
                                api_key=dev_issuer.mint(subject="svc", roles=("user",)))
    completion = await client.chat.completions.create(
        model="gemini", messages=[{"role": "system", "content": "brief"},
                                  {"role": "user", "content": "hi"}])
    stream = await client.chat.completions.create(
        model="gemini", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    embedded = await client.embeddings.create(model="gemini", input="hi")
    await client.close()

    assert completion.choices[0].message.content == gemini_wire.TEXT
    assert completion.usage is not None and completion.usage.completion_tokens == (
        gemini_wire.OUTPUT_TOKENS + gemini_wire.THOUGHT_TOKENS)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        gemini_wire.TEXT
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == \
        gemini_wire.PROMPT_TOKENS
    assert embedded.data[0].embedding == gemini_wire.VECTOR


async def test_the_anthropic_surface_is_served_by_a_gemini_upstream(served, dev_issuer):
    client = anthropic.AsyncAnthropic(base_url=served, max_retries=0,
                                      api_key=dev_issuer.mint(subject="svc", roles=("user",)))
    message = await client.messages.create(model="gemini", max_tokens=32,
                                           messages=[{"role": "user", "content": "hi"}])
    await client.close()

    assert message.content[0].type == "text" and message.content[0].text == gemini_wire.TEXT


async def test_a_denied_model_is_a_google_shaped_403_that_reaches_no_upstream(gemini, upstream):
    with pytest.raises(errors.ClientError) as raised:
        await gemini("small").aio.models.generate_content(model="gemini", contents="hi")

    assert raised.value.code == 403 and raised.value.status == "PERMISSION_DENIED"
    assert upstream.requests == []


def _raw(served: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=served)


def _texts(elements: list[dict[str, Any]]) -> str:
    return "".join(part.get("text", "") for element in elements
                   for part in element["candidates"][0]["content"]["parts"])


@pytest.mark.parametrize("query", ["", "?alt=json"], ids=["no-alt", "alt-json"])
@pytest.mark.parametrize(("model", "text"), [("gemini", gemini_wire.TEXT),
                                             ("gpt-4o", "part0 part1 part2 "),
                                             ("echo", "echo: hello there")],
                         ids=["gemini-upstream", "openai-upstream", "mock"])
async def test_a_stream_without_alt_sse_is_one_json_array(served, dev_issuer, upstream, query,
                                                          model, text):
    token = dev_issuer.mint(subject="svc", roles=("user",))
    async with _raw(served) as client:
        response = await client.post(f"/v1beta/models/{model}:streamGenerateContent{query}",
                                     headers={"x-goog-api-key": token},
                                     json={"contents": [{"parts": [{"text": "hello there"}]}]})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    elements = json.loads(response.content)
    assert isinstance(elements, list) and len(elements) > 1
    assert _texts(elements) == text
    assert elements[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in elements[-1]
    if model == "gemini":  # upstream, the stream is asked for as events
        assert upstream.requests[-1].query == "alt=sse"


async def test_each_element_of_a_json_array_stream_is_sent_as_it_comes(served, dev_issuer,
                                                                       upstream):
    upstream.pacer = asyncio.Queue()  # the upstream holds every event after the first
    token = dev_issuer.mint(subject="svc", roles=("user",))
    async with _raw(served) as client, client.stream(
            "POST", "/v1beta/models/gpt-4o:streamGenerateContent",
            headers={"x-goog-api-key": token},
            json={"contents": [{"parts": [{"text": "hello"}]}]}) as response:
        chunks = response.aiter_raw()
        first = await anext(chunks)
        assert first.startswith(b"[")  # the first element, before the upstream sent more
        assert _texts([json.loads(first[1:])]) == "part0 "
        for _ in range(upstream.stream_chunks):
            upstream.pacer.put_nowait(None)
        rest = b"".join([chunk async for chunk in chunks])

    assert _texts(json.loads(first + rest)) == "part0 part1 part2 "


async def test_a_json_array_stream_cut_by_the_upstream_ends_with_an_error_element(
        served, dev_issuer, upstream):
    upstream.break_after = 2
    token = dev_issuer.mint(subject="svc", roles=("user",))
    async with _raw(served) as client:
        response = await client.post("/v1beta/models/gpt-4o:streamGenerateContent",
                                     headers={"x-goog-api-key": token},
                                     json={"contents": [{"parts": [{"text": "hello"}]}]})

    elements = json.loads(response.content)
    assert _texts(elements[:-1]) == "part0 part1 "
    assert elements[-1]["error"]["code"] >= 500


@pytest.mark.parametrize(("headers", "url", "status", "google_status"), [
    ({}, "/v1beta/models/echo:generateContent", 401, "UNAUTHENTICATED"),
    ({}, "/v1beta/models/echo:generateContent?key=TOKEN", 401, "UNAUTHENTICATED"),
    ({"x-goog-api-key": "TOKEN"}, "/v1beta/models/nope:generateContent", 403,
     "PERMISSION_DENIED"),
    ({"x-goog-api-key": "TOKEN"}, "/v1beta/models/echo:GenerateContent", 404, "NOT_FOUND"),
    ({"x-goog-api-key": "TOKEN"}, "/v1beta/models/echo:streamGenerateContent?alt=media", 400,
     "INVALID_ARGUMENT"),
], ids=["no-credential", "key-in-url-refused", "ungranted-model", "method-case-variant",
        "stream-in-an-unknown-form"])
async def test_errors_are_google_shaped(served, dev_issuer, upstream, headers, url, status,
                                        google_status):
    token = dev_issuer.mint(subject="svc", roles=("small",))
    headers = {name: value.replace("TOKEN", token) for name, value in headers.items()}
    async with _raw(served) as client:
        response = await client.post(url.replace("TOKEN", token), headers=headers,
                                     json={"contents": [{"parts": [{"text": "hi"}]}]})

    error = response.json()["error"]
    assert (response.status_code, error["code"], error["status"]) == (status, status,
                                                                        google_status)
    assert upstream.requests == []


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "gemini", "contents": []}, "model"),
    ({"contents": [], "generation_config": {}}, "generation_config"),
    ({"contents": [], "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT",
                                          "threshold": "BLOCK_NONE"}]}, "safetySettings"),
], ids=["model-in-body", "snake-case-field", "untranslatable-field"])
async def test_a_body_read_two_ways_or_not_translatable_is_refused_naming_the_field(
        served, dev_issuer, upstream, body, param):
    token = dev_issuer.mint(subject="svc", roles=("user",))
    async with _raw(served) as client:
        response = await client.post("/v1beta/models/gpt-4o:generateContent", json=body,
                                     headers={"x-goog-api-key": token})

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert f"`{param}`" in response.json()["error"]["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("model", ["gemini", "vertex"])
@pytest.mark.parametrize(("body", "param"), [
    ({"contents": [{"parts": [{"fileData": {"fileUri": "gs://payroll/2026.csv",
                                            "mimeType": "text/csv"}}]}]},
     "contents[0].parts[0].fileData"),
    ({"contents": [{"parts": [{"text": "hi"}]}], "cachedContent": "cachedContents/other"},
     "cachedContent"),
], ids=["gcs-file", "cached-content"])
async def test_content_held_by_the_gateways_credential_is_refused_before_any_upstream(
        served, dev_issuer, upstream, model, body, param):
    """Passed through as it was, the upstream would read it with the gateway's key or service
    account, which no caller is granted."""
    token = dev_issuer.mint(subject="svc", roles=("user",))
    async with _raw(served) as client:
        response = await client.post(f"/v1beta/models/{model}:generateContent", json=body,
                                     headers={"x-goog-api-key": token})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["status"], error["details"][0]["reason"]) == ("INVALID_ARGUMENT",
                                                                "stored_content_refused")
    assert f"`{param}`" in error["message"]
    assert upstream.requests == []


async def test_a_count_request_inside_count_tokens_reaches_the_upstream_naming_its_model(
        served, dev_issuer, upstream):
    """The deployment's model, as in the URL; a body naming another one is refused."""
    token = dev_issuer.mint(subject="svc", roles=("user",))
    inner = {"contents": [{"parts": [{"text": "hi"}]}]}
    async with _raw(served) as client:
        other = await client.post("/v1beta/models/gemini:countTokens", headers={
            "x-goog-api-key": token}, json={"generateContentRequest": {
                **inner, "model": "models/tuned-secret"}})
        assert upstream.requests == []
        counted = await client.post("/v1beta/models/gemini:countTokens", headers={
            "x-goog-api-key": token}, json={"generateContentRequest": {
                **inner, "model": "models/gemini"}})

    assert other.status_code == 400
    assert other.json()["error"]["details"][0]["reason"] == "invalid_body"
    assert counted.status_code == 200
    assert [(request.path, request.json()) for request in upstream.requests] == [
        ("/v1beta/models/gemini-upstream:countTokens", {"generateContentRequest": {
            **inner, "model": "models/gemini-upstream"}})]
