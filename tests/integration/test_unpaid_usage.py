"""What reached the caller is charged: a stream abandoned or cut before its usage event is charged
an estimate (marked `estimated`), `"stream": true` on an operation without streaming is metered
from the reply's body, and a stream request answered with one JSON body is metered from it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rolegate.accounting.estimate import TokenEstimator
from rolegate.app import build_app
from tests.integration.test_usage_accounting import _settled_rows, make_key
from tests.support.gateways import CHAT, INPUT_PRICE, OUTPUT_PRICE, bearer, keyed_config
from tests.support.lifespan import Lifespan
from tests.support.servers import RecordingUpstream

STREAM = {**CHAT, "stream": True,
          "messages": [{"role": "user", "content": "tell me a long story about limits"}]}


@pytest.fixture
async def running(clock, key_source, dev_issuer) -> AsyncIterator[Callable[..., Any]]:
    """Builds and starts the app; returns (app, an httpx client speaking to it)."""
    started: list[tuple[httpx.AsyncClient, Lifespan]] = []

    async def start(settings: Any) -> tuple[Any, httpx.AsyncClient]:
        app = build_app(settings, clock=clock, fetch=key_source, dev_issuer=dev_issuer)
        lifespan = Lifespan(app)
        await lifespan.startup()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://rolegate.test")
        started.append((client, lifespan))
        return app, client

    yield start
    for client, lifespan in started:
        await client.aclose()
        await lifespan.shutdown()


async def leave_after_first_event(app: Any, key: str, body: dict[str, Any]) -> bytes:
    """Call the app as a server would, and disconnect once the first event has arrived."""
    raw = json.dumps(body).encode()
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "raw_path": b"/v1/chat/completions", "query_string": b"",
             "headers": [(b"authorization", f"Bearer {key}".encode()),
                         (b"content-type", b"application/json")]}
    first_event = asyncio.Event()
    received: list[bytes] = []
    requests = [{"type": "http.request", "body": raw, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop(0)
        await first_event.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            received.append(message["body"])
            first_event.set()

    await asyncio.wait_for(app(scope, receive, send), 10)
    return b"".join(received)


async def test_a_stream_the_caller_abandons_is_charged_for_what_it_received(
        running, settings_from, database, upstream, admin):
    upstream.pacer = asyncio.Queue()  # the upstream holds every event after the first
    app, client = await running(settings_from(keyed_config(database, upstream.url)))
    key = await make_key(client, admin)

    received = await leave_after_first_event(app, key, STREAM)
    rows = await _settled_rows(database, 1)

    assert b"part0" in received and b"part1" not in received
    estimator = TokenEstimator()
    prompt = estimator.prompt_tokens(STREAM)
    assert len(rows) == 1 and rows[0]["estimated"] is True
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (
        prompt, estimator.count("part0 "))
    assert prompt >= 7 and rows[0]["completion_tokens"] >= 1  # a real count, not zero
    assert rows[0]["cost_usd"] == pytest.approx(
        (prompt * INPUT_PRICE + rows[0]["completion_tokens"] * OUTPUT_PRICE) / 1000)


async def test_a_stream_the_upstream_cuts_is_charged_for_what_was_relayed(
        gateway_for, settings_from, database, admin):
    async with RecordingUpstream(stream_chunks=5, break_after=2) as cutting:
        gateway = await gateway_for(settings_from(keyed_config(database, cutting.url)))
        key = await make_key(gateway, admin)

        response = await gateway.post("/v1/chat/completions", json=STREAM, headers=bearer(key))
        rows = await _settled_rows(database, 1)

    assert b"part1" in response.content and b"part2" not in response.content
    estimator = TokenEstimator()
    assert rows[0]["estimated"] is True
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (
        estimator.prompt_tokens(STREAM), estimator.count("part0 part1 "))


async def test_a_stream_with_its_usage_chunk_is_not_estimated(
        gateway_for, settings_from, database, admin):
    gateway = await gateway_for(settings_from(keyed_config(database, "http://unused")))
    key = await make_key(gateway, admin)

    await gateway.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "echo", "stream": True, "messages": [{"role": "user", "content": "a b c"}]})
    rows = await _settled_rows(database, 1)

    assert rows[0]["estimated"] is False
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (3, 4)  # the mock's


async def test_stream_true_on_embeddings_is_metered_from_the_reply_body(
        gateway_for, settings_from, database, upstream, admin):
    gateway = await gateway_for(settings_from(keyed_config(database, upstream.url)))
    key = await make_key(gateway, admin)

    response = await gateway.post("/v1/embeddings", headers=bearer(key), json={
        "model": "gpt-4o", "input": "hello", "stream": True})
    rows = await _settled_rows(database, 1)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["usage"] == {"prompt_tokens": 1, "total_tokens": 1}
    assert (rows[0]["operation"], rows[0]["is_stream"], rows[0]["estimated"]) == (
        "embeddings", False, False)
    assert (rows[0]["prompt_tokens"], rows[0]["total_tokens"]) == (1, 1)


async def test_a_stream_request_answered_with_one_json_body_is_metered_from_it(
        gateway_for, settings_from, database, admin):
    async with RecordingUpstream(is_ignoring_stream=True) as plain:
        gateway = await gateway_for(settings_from(keyed_config(database, plain.url)))
        key = await make_key(gateway, admin)

        response = await gateway.post("/v1/chat/completions", json=STREAM, headers=bearer(key))
        rows = await _settled_rows(database, 1)

    assert response.status_code == 200 and response.json()["usage"]["total_tokens"] == 5
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (3, 2)
    assert rows[0]["estimated"] is False


async def test_the_usage_report_counts_estimated_records(
        gateway_for, settings_from, database, admin):
    async with RecordingUpstream(stream_chunks=3, break_after=1) as cutting:
        gateway = await gateway_for(settings_from(keyed_config(database, cutting.url)))
        key = await make_key(gateway, admin)
        await gateway.post("/v1/chat/completions", json=STREAM, headers=bearer(key))
        await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(key))
        await _settled_rows(database, 2)

        report = (await gateway.get("/admin/usage?by=principal", headers=admin)).json()

    assert [(row["requests"], row["estimated_requests"]) for row in report["data"]] == [(2, 1)]
