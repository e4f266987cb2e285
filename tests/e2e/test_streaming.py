"""Streaming through the real process: SSE from an OpenAI-compatible upstream is relayed event by
event as it arrives (the upstream holds each next chunk until the client has seen the previous
one, so a buffering gateway would hang), and the built-in `echo` model streams too."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.e2e.calls import bearer, chat, config_yaml, error_code, rule, upstream_model
from tests.support.keys import KeyPair, claims
from tests.support.process import GatewayProcess
from tests.support.servers import LocalIdp, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

KEY = KeyPair.rsa("stream-key")
AUDIENCE = "rolegate-e2e"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(idp: LocalIdp, shared_upstream: RecordingUpstream,
                 workdir: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = config_yaml(
        models=[upstream_model("gpt-4o", shared_upstream.url),
                {"name": "echo", "provider": "mock"}],
        issuers=[{"name": "corp", "issuer": idp.issuer, "jwks_url": idp.jwks_url,
                  "audiences": [AUDIENCE]}],
        policy=[rule("users", {"roles": ["llm.user"]}, ["inference"], ["*"])])
    async with (GatewayProcess(config, workdir) as gateway,
                httpx.AsyncClient(base_url=gateway.url, timeout=15) as http):
        yield http


def token(idp: LocalIdp, roles: list[str]) -> str:
    return KEY.sign(claims(idp.issuer, AUDIENCE, roles=roles))


async def sse_events(response: httpx.Response) -> AsyncIterator[str]:
    """The `data:` payload of each server-sent event, as soon as the event is complete."""
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        while "\n\n" in buffer:
            event, buffer = buffer.split("\n\n", 1)
            assert event.startswith("data: "), event
            yield event.removeprefix("data: ")


def content_of(event: str) -> str:
    return "".join(choice["delta"].get("content", "") for choice in json.loads(event)["choices"])


async def test_upstream_chunks_reach_the_client_one_by_one_in_order(
        idp: LocalIdp, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    upstream.stream_chunks = 4
    upstream.pacer = asyncio.Queue()
    seen: list[str] = []

    async with client.stream("POST", "/v1/chat/completions", json=chat("gpt-4o", stream=True),
                             headers=bearer(token(idp, ["llm.user"]))) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event in sse_events(response):
            seen.append(event)
            upstream.pacer.put_nowait(None)  # only now may the upstream send the next chunk

    assert [content_of(e) for e in seen[:-1]] == ["part0 ", "part1 ", "part2 ", "part3 "]
    assert seen[-1] == "[DONE]"
    assert len(upstream.requests) == 1
    # The gateway asks for the usage chunk (for accounting) and keeps it from this caller.
    assert upstream.requests[0].json() == {**chat("gpt-4o", stream=True),
                                           "stream_options": {"include_usage": True}}


async def test_echo_model_streams_each_word_then_usage_then_done(
        idp: LocalIdp, client: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {**chat("echo", stream=True, content="one two three"),
                            "stream_options": {"include_usage": True}}

    async with client.stream("POST", "/v1/chat/completions", json=body,
                             headers=bearer(token(idp, ["llm.user"]))) as response:
        assert response.status_code == 200
        events = [event async for event in sse_events(response)]

    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert "".join(content_of(e) for e in events[:-1]) == "echo: one two three"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4,
                                   "total_tokens": 7}


async def test_denied_stream_is_a_plain_403_and_the_upstream_sees_nothing(
        idp: LocalIdp, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    response = await client.post("/v1/chat/completions", json=chat("gpt-4o", stream=True),
                                 headers=bearer(token(idp, ["someone.else"])))

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/json")
    assert error_code(response) == "insufficient_scope"
    assert upstream.requests == []


async def test_upstream_dying_mid_stream_ends_the_stream_with_one_error_event(
        idp: LocalIdp, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    """Once a stream has started its status cannot change: the failure is one SSE error event."""
    upstream.stream_chunks, upstream.break_after = 5, 2

    async with client.stream("POST", "/v1/chat/completions", json=chat("gpt-4o", stream=True),
                             headers=bearer(token(idp, ["llm.user"]))) as response:
        assert response.status_code == 200
        events = [event async for event in sse_events(response)]

    assert [content_of(e) for e in events[:2]] == ["part0 ", "part1 "]
    assert len(events) == 3
    error = json.loads(events[2])["error"]
    assert error["type"] == "api_error"
    assert error["code"] == "upstream_error"
