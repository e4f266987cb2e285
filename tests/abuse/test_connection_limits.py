"""Slow and oversized clients against rolegate as a real process (uvicorn + the bounded httptools
protocol): each is cut with a clean 4xx or a closed connection, never a crash, and the gateway
keeps serving. Timeouts are configured small; the tests only check what happens, not when."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from tests.support.keys import KeyPair, claims
from tests.support.process import GatewayProcess
from tests.support.rawhttp import exchange, request
from tests.support.servers import LocalIdp, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

AUDIENCE = "api://rolegate"
BODY = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'


def _config(idp: LocalIdp, upstream: RecordingUpstream) -> str:
    return f"""
server: {{max_header_bytes: 8192, header_timeout: 0.5, body_timeout: 0.5, keep_alive_timeout: 0.5,
          max_body_bytes: 4096}}
models:
  - {{name: gpt-4o, provider: openai-compatible, api_base: "{upstream.url}/v1"}}
auth:
  issuers:
    - {{name: idp, issuer: "{idp.issuer}", jwks_url: "{idp.url}/jwks", audiences: ["{AUDIENCE}"]}}
policy:
  - {{name: users, when: {{roles: [user]}}, allow: {{routes: [inference], models: ["*"]}}}}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple]:
    key = KeyPair.rsa("limits-key")
    async with (
        LocalIdp(key) as idp,
        RecordingUpstream() as upstream,
        GatewayProcess(_config(idp, upstream), tmp_path_factory.mktemp("limits"),
                       ready_path="/health/ready") as gateway,
    ):
        token = key.sign(claims(idp.issuer, AUDIENCE, now=time.time(), roles=["user"]))
        yield gateway, upstream, {"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"}


async def _still_serves(gateway: GatewayProcess, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        response = await client.post("/v1/chat/completions", content=BODY, headers=headers)
    assert response.status_code == 200, response.text
    assert gateway.process is not None and gateway.process.poll() is None


@pytest.mark.parametrize("head", [
    {"X-Big": "a" * 9000},
    {f"X-Many-{n}": "v" for n in range(2000)},
    {"Authorization": "Bearer " + "a" * 2_000_000},
], ids=["one-huge-header", "many-headers", "two-megabyte-authorization"])
async def test_oversized_request_head_gets_431_and_a_closed_connection(served, head):
    gateway, upstream, headers = served
    before = len(upstream.requests)

    reply = await exchange(gateway.port, request("POST", b"/v1/chat/completions", body=BODY,
                                                 headers={**headers, **head}))

    assert reply.status == 431
    assert b'"code":"headers_too_large"' in reply.body
    assert len(upstream.requests) == before
    assert "Invalid HTTP request" not in gateway.log()  # a refusal, not a parse failure
    await _still_serves(gateway, headers)


async def test_oversized_request_target_gets_431(served):
    gateway, _, headers = served

    reply = await exchange(gateway.port, request("GET", b"/v1/models?" + b"q" * 20_000))

    assert reply.status == 431
    await _still_serves(gateway, headers)


async def test_connection_that_never_sends_a_request_is_closed(served):
    gateway, _, headers = served

    reply = await exchange(gateway.port, b"")

    assert (reply.status, reply.head, reply.body) == (None, b"", b"")
    await _still_serves(gateway, headers)


async def test_request_head_trickled_byte_by_byte_gets_408(served):
    gateway, upstream, headers = served
    before = len(upstream.requests)
    whole = request("POST", b"/v1/chat/completions", body=BODY, headers=headers)

    reply = await exchange(gateway.port, whole[:20],
                           trickle=[(0.2, whole[i:i + 1]) for i in range(20, 60)])

    assert reply.status == 408
    assert b'"code":"header_timeout"' in reply.body
    assert len(upstream.requests) == before


async def test_body_trickled_after_the_headers_gets_408_and_is_not_forwarded(served):
    gateway, upstream, headers = served
    before = len(upstream.requests)
    whole = request("POST", b"/v1/chat/completions", body=BODY, headers=headers)
    head_end = whole.index(b"\r\n\r\n") + 4

    reply = await exchange(gateway.port, whole[:head_end + 5],
                           trickle=[(0.2, whole[i:i + 1]) for i in range(head_end + 5, len(whole))])

    assert reply.status == 408
    assert b'"code":"body_timeout"' in reply.body
    assert len(upstream.requests) == before
    await _still_serves(gateway, headers)


async def test_body_over_the_limit_gets_413_without_being_read(served):
    gateway, upstream, headers = served
    before = len(upstream.requests)

    reply = await exchange(gateway.port, request("POST", b"/v1/chat/completions",
                                                 body=b"x" * 5000, headers=headers))

    assert reply.status == 413
    assert len(upstream.requests) == before


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return int(head.split(b" ")[1]), await reader.readexactly(length)


async def test_each_request_on_a_kept_alive_connection_is_timed_from_its_own_start(served):
    """Three requests 0.3 s apart on one connection: together longer than every deadline,
    each within them. Then the idle connection is closed after keep_alive_timeout."""
    gateway, _, headers = served
    keep_alive = request("POST", b"/v1/chat/completions", body=BODY, headers=headers).replace(
        b"Connection: close", b"Connection: keep-alive")
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        for _ in range(3):
            writer.write(keep_alive)
            async with asyncio.timeout(10):
                status, _body = await _read_response(reader)
            assert status == 200
            await asyncio.sleep(0.3)
        async with asyncio.timeout(10):  # bound against a hang, not a timing assertion
            assert await reader.read() == b""  # closed by the gateway, without an answer
    finally:
        writer.close()


async def test_a_stream_outlives_the_header_and_body_deadlines(served):
    """Once the request is in, the deadlines are the upstream's: a stream of 1.2 s (timeouts
    are 0.5 s) arrives whole."""
    gateway, upstream, headers = served
    upstream.chunk_delay, upstream.stream_chunks = 0.3, 4
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            body = BODY[:-1] + b', "stream": true}'
            async with client.stream("POST", "/v1/chat/completions", content=body,
                                     headers=headers) as response:
                events = [line async for line in response.aiter_lines() if line]
    finally:
        upstream.chunk_delay, upstream.stream_chunks = 0.0, 3
    assert response.status_code == 200
    assert sum("part" in event for event in events) == 4
    assert events[-1] == "data: [DONE]"


async def _read_response_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = dict(line.split(b": ", 1) for line in lines[1:] if b": " in line)
    await reader.readexactly(int(fields[b"content-length"]))
    return int(lines[0].split(b" ")[1]), {k.lower(): v for k, v in fields.items()}


async def test_pipelined_requests_are_answered_in_order(served):
    """Three requests in one write on one connection: three answers, in their order."""
    gateway, _, headers = served
    requests = b"".join(
        request("POST", b"/v1/chat/completions", body=BODY,
                headers={**headers, "X-Request-Id": f"pipelined-{n}"}).replace(
            b"Connection: close", b"Connection: keep-alive")
        for n in range(3))
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(requests)
        async with asyncio.timeout(10):
            answers = [await _read_response_head(reader) for _ in range(3)]
    finally:
        writer.close()
    assert [status for status, _ in answers] == [200, 200, 200]
    assert [fields[b"x-request-id"] for _, fields in answers] == [
        b"pipelined-0", b"pipelined-1", b"pipelined-2"]
