"""Bad request bodies are 400/413 with a code, never 500; upstream failures are 502 with a code,
and OpenAI-shaped upstream 4xx bodies pass through unchanged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.support.clock import FakeClock
from tests.support.keys import KeyPair
from tests.support.process import free_port
from tests.support.sample_gateway import (
    CHAT, assert_openai_error, bearer, sample_config, token_for,
)
from tests.support.servers import LocalServer


class ScriptedUpstream(LocalServer):
    """Answers every request with the status and body a test sets; counts the requests."""

    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.body: bytes = b"{}"
        self.content_type = "application/json"
        self.hits = 0
        self.app.router.add_route("*", "/{tail:.*}", self._answer)

    async def _answer(self, request: web.Request) -> web.Response:
        self.hits += 1
        await request.read()
        return web.Response(status=self.status, body=self.body, content_type=self.content_type)


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def power(rsa_key: KeyPair, clock: FakeClock) -> dict[str, str]:
    return bearer(token_for(rsa_key, clock, roles=["power"]))


# --- request bodies ----------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "code", "param"), [
    (b"{not json", "invalid_json", None),
    (b"", "invalid_json", None),
    (b"\xff\xfe\xfd", "invalid_json", None),
    (b'[{"model": "gpt-4o"}]', "invalid_body", None),
    (b'"gpt-4o"', "invalid_body", None),
    (b'{"messages": []}', "missing_model", "model"),
    (b'{"model": 4}', "invalid_model", "model"),
    (b'{"model": {"name": "gpt-4o"}}', "invalid_model", "model"),
    (b'{"model": "gpt-4o", "stream": "true"}', "invalid_stream", "stream"),
    (b'{"model": "gpt-4o", "stream": 0}', "invalid_stream", "stream"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "invalid_json", None),
], ids=["broken-json", "empty", "not-utf8", "array", "string", "missing-model", "model-number",
        "model-object", "stream-string", "stream-number", "deeply-nested"])
async def test_malformed_body_is_400_with_a_code_and_reaches_no_upstream(
        content, code, param, client_for, settings_from, upstream, published, power):
    gateway = client_for(settings_from(sample_config(upstream.url)))
    response = await gateway.post("/v1/chat/completions", content=content,
                                  headers={**power, "content-type": "application/json"})
    assert response.status_code == 400
    assert_openai_error(response.json(), code)
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == param
    assert upstream.requests == []


async def test_body_over_the_limit_is_413(client_for, settings_from, upstream, published, power):
    gateway = client_for(settings_from(sample_config(upstream.url, max_body_bytes=1024)))
    big = {**CHAT, "model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 2000}]}
    response = await gateway.post("/v1/chat/completions", json=big, headers=power)
    assert response.status_code == 413
    assert_openai_error(response.json(), "body_too_large")
    assert upstream.requests == []


async def test_body_over_the_limit_without_content_length_is_413(
        client_for, settings_from, upstream, published, power):
    gateway = client_for(settings_from(sample_config(upstream.url, max_body_bytes=1024)))

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}]}'

    response = await gateway.post("/v1/chat/completions", content=chunks(), headers=power)
    assert response.status_code == 413
    assert upstream.requests == []


async def test_body_at_the_limit_is_accepted(client_for, settings_from, upstream, published,
                                             power):
    body = json.dumps({**CHAT, "model": "gpt-4o"}).encode()
    gateway = client_for(settings_from(sample_config(upstream.url, max_body_bytes=len(body))))
    response = await gateway.post("/v1/chat/completions", content=body, headers=power)
    assert response.status_code == 200


async def test_unauthenticated_oversized_body_is_401_not_413(client_for, settings_from, upstream,
                                                             published):
    gateway = client_for(settings_from(sample_config(upstream.url, max_body_bytes=16)))
    response = await gateway.post("/v1/chat/completions", content=b"x" * 100)
    assert response.status_code == 401


# --- upstream failures -------------------------------------------------------------------------

async def call(client_for, settings_from, upstream_url: str, power: dict[str, str],
               **body: Any) -> httpx.Response:
    gateway = client_for(settings_from(sample_config(upstream_url)))
    return await gateway.post("/v1/chat/completions",
                              json={**CHAT, "model": "gpt-4o", **body}, headers=power)


@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize("is_stream", [False, True], ids=["buffered", "stream"])
async def test_upstream_server_error_is_502(status, is_stream, client_for, settings_from,
                                            scripted, published, power):
    scripted.status = status
    scripted.body = b'{"error": {"message": "internal details", "type": "server_error"}}'
    response = await call(client_for, settings_from, scripted.url, power, stream=is_stream)
    assert response.status_code == 502
    assert_openai_error(response.json(), "upstream_error")
    assert "internal details" not in response.text


@pytest.mark.parametrize("status", [400, 404, 422, 429])
async def test_upstream_openai_shaped_4xx_passes_through_unchanged(
        status, client_for, settings_from, scripted, published, power):
    scripted.status = status
    scripted.body = json.dumps({"error": {"message": "max_tokens is too large",
                                          "type": "invalid_request_error",
                                          "param": "max_tokens", "code": None}}).encode()
    response = await call(client_for, settings_from, scripted.url, power)
    assert response.status_code == status
    assert response.content == scripted.body


@pytest.mark.parametrize("body", [b"<html>Bad Request</html>", b'{"detail": "nope"}', b""])
async def test_upstream_4xx_that_is_not_openai_shaped_is_502(body, client_for, settings_from,
                                                            scripted, published, power):
    scripted.status, scripted.body = 400, body
    response = await call(client_for, settings_from, scripted.url, power)
    assert response.status_code == 502
    assert_openai_error(response.json(), "upstream_error")


@pytest.mark.parametrize("status", [401, 403])
async def test_upstream_refusing_the_gateways_credential_is_502_upstream_auth_failed(
        status, client_for, settings_from, scripted, published, power):
    scripted.status = status
    scripted.body = b'{"error": {"message": "Incorrect API key provided: sk-up***", "type": "x"}}'
    response = await call(client_for, settings_from, scripted.url, power)
    assert response.status_code == 502
    assert_openai_error(response.json(), "upstream_auth_failed")
    assert "sk-up" not in response.text
    assert "www-authenticate" not in response.headers


async def test_unreachable_upstream_is_502(client_for, settings_from, published, power):
    closed = f"http://127.0.0.1:{free_port()}"
    response = await call(client_for, settings_from, closed, power)
    assert response.status_code == 502
    assert_openai_error(response.json(), "upstream_error")


async def test_unreachable_upstream_while_streaming_is_502(client_for, settings_from, published,
                                                          power):
    closed = f"http://127.0.0.1:{free_port()}"
    response = await call(client_for, settings_from, closed, power, stream=True)
    assert response.status_code == 502
