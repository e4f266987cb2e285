"""Connections under faults, over real sockets: a caller hanging up mid-stream closes the
upstream request, and a thousand failing requests leave no socket or task behind."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time

import aiohttp
import pytest
import httpx

from rolegate.app import build_app
from rolegate.server.gateway import Gateway
from rolegate.server.protocol import bounded_protocol
from rolegate.providers.http import HttpClient
from tests.integration.routing.conftest import deployment
from tests.support.faulty import Fault, FaultyUpstream, openai_error
from tests.support.served import ServedApp

STREAM = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def app_on(routing_settings, clock, key_source):
    """`app_on(upstream)`: the gateway with model gpt-4o on that upstream; its upstream
    connections are closed after the test."""
    clients: list[HttpClient] = []

    def make(upstream: FaultyUpstream) -> Gateway:
        clients.append(http := HttpClient())
        return build_app(routing_settings([{"name": "gpt-4o", **deployment(upstream)}]),
                         clock=clock, fetch=key_source, http=http)
    yield make
    for http in clients:
        await http.close()


async def test_caller_hanging_up_mid_stream_closes_the_upstream_request(
        upstreams, app_on, auth_for):
    (a,) = await upstreams("a")
    a.default = Fault.endless_stream(seconds=0.02)
    app = app_on(a)
    async with ServedApp(app) as url, aiohttp.ClientSession() as session:
        response = await session.post(f"{url}/v1/chat/completions", json=STREAM,
                                      headers=auth_for("user"))
        assert response.status == 200
        assert (await response.content.readany()).startswith(b"data: ")
        assert a.open_streams == 1
        response.close()  # drops the connection, as a caller going away does

        await asyncio.wait_for(a.stream_dropped.wait(), timeout=1.0)
        assert a.open_streams == 0


async def test_caller_hanging_up_before_its_reply_stops_the_upstream_call_and_logs_499(
        upstreams, app_on, auth_for, caplog):
    (a,) = await upstreams("a")
    a.default = Fault.stall(30.0)
    app = app_on(a)
    served = ServedApp(app, http=bounded_protocol(max_header_bytes=65536, header_timeout=10,
                                                  body_timeout=10))
    with caplog.at_level(logging.INFO, logger="rolegate"):
        async with served as url, aiohttp.ClientSession() as session:
            call = asyncio.ensure_future(session.post(
                f"{url}/v1/chat/completions", json=CHAT, headers=auth_for("user")))
            await settled(lambda: 1 - len(a.requests), 0)  # it reached the upstream
            call.cancel()  # the caller goes away, its connection with it

            await asyncio.wait_for(a.stall_dropped.wait(), timeout=2.0)
    [access] = [json.loads(r.getMessage()) for r in caplog.records
                if r.name == "rolegate.access"]
    assert access["status"] == 499


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled(measure, target: int, tries: int = 100) -> int:
    """`measure()` once it is back to `target` (or the last value after `tries` looks)."""
    value = measure()
    for _ in range(tries):
        if value <= target:
            return value
        await asyncio.sleep(0.02)
        value = measure()
    return value


CONCURRENCY = 50
FAULTS = [
    Fault.ok(), Fault.error(503), Fault.error(500), Fault.reset(),
    Fault.error(429, openai_error("rate_limit_exceeded"), {"retry-after-ms": "1"}),
    Fault.error(400, openai_error("invalid_value")), Fault.stall(1.0),
    Fault.stream_then_cut(1), Fault.stream_then_stall(1), Fault.stream_then_stall(0),
]


async def test_a_thousand_faulty_requests_leak_no_connections_or_tasks(
        upstreams, routing_settings, auth_for, clock, key_source):
    a, b = await upstreams("a", "b")
    rng = random.Random(7)
    timeouts = {"first_byte_timeout": 0.2, "stream_idle_timeout": 0.2}
    settings = routing_settings(
        [{"name": "gpt-4o", "deployments": [deployment(a, **timeouts),
                                             deployment(b, **timeouts)]}],
        health={"failures": 1000})
    http = HttpClient()
    # A real clock: rests after 429 and timeouts must pass as they would in production.
    app = build_app(settings, clock=time.time, fetch=key_source, http=http)
    headers = auth_for("user")
    tasks_before, fds_before = len(asyncio.all_tasks()), open_descriptors()
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://rolegate.test") as client:
        async def one(index: int) -> None:
            for server in (a, b):
                server.plan(rng.choice(FAULTS))
            body = STREAM if index % 2 else CHAT
            response = await client.post("/v1/chat/completions", json=body, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        for start in range(0, 1000, CONCURRENCY):
            await asyncio.gather(*(one(i) for i in range(start, start + CONCURRENCY)))
        assert sum(statuses.values()) == 1000
        assert set(statuses) <= {200, 400, 429, 502, 504}
        assert statuses.get(200, 0) > 200  # many requests were served, some after retries
        assert len(a.requests) + len(b.requests) > 1000
        # Only the keep-alive pool may remain: at most one connection per concurrent request
        # and upstream, each seen here from both ends.
        pooled = await settled(open_descriptors, fds_before + 2 * 2 * CONCURRENCY)
        assert pooled <= fds_before + 2 * 2 * CONCURRENCY

        await http.close()  # pooled keep-alive connections are closed with the client
        assert await settled(lambda: len(asyncio.all_tasks()), tasks_before) <= tasks_before
        assert await settled(open_descriptors, fds_before) <= fds_before


async def test_caller_leaving_before_the_first_chunk_was_sent_still_closes_the_upstream(
        upstreams, app_on, auth_for):
    (a,) = await upstreams("a")
    a.default = Fault.endless_stream(seconds=0.02)
    app = app_on(a)
    body = json.dumps(STREAM).encode()
    headers = [(k.lower().encode(), v.encode()) for k, v in
               {**auth_for("user"), "content-type": "application/json"}.items()]
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "headers": headers, "query_string": b""}
    messages = [{"type": "http.request", "body": body, "more_body": False},
                {"type": "http.disconnect"}]
    never = asyncio.Event()

    async def receive():
        if messages:
            return messages.pop(0)
        await never.wait()

    async def send(message):
        if message["type"] == "http.response.start":
            await never.wait()  # the caller is gone before the response could start

    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    await asyncio.wait_for(a.stream_dropped.wait(), timeout=1.0)
    assert a.open_streams == 0
