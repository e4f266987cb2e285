"""Streams under faults: what the caller sees when the upstream breaks, stalls or is slow to
start, and the usage chunk the gateway asks for on the caller's behalf."""

from __future__ import annotations

import json

from tests.integration.routing.conftest import deployment
from tests.support.faulty import Fault

STREAM = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def events(text: str) -> list[str]:
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block]


async def test_stream_cut_midway_ends_with_an_error_event(
        upstreams, routing_settings, client_for, auth_for):
    (a,) = await upstreams("a")
    a.default = Fault.stream_then_cut(chunks=2)
    client = client_for(routing_settings([{"name": "gpt-4o", **deployment(a)}]))

    response = await client.post("/v1/chat/completions", json=STREAM, headers=auth_for("user"))

    assert response.status_code == 200
    received = events(response.text)
    assert [json.loads(e)["choices"][0]["delta"]["content"] for e in received[:2]] == \
        ["part0 ", "part1 "]
    assert json.loads(received[-1])["error"]["code"] == "upstream_error"
    assert len(received) == 3
    assert len(a.requests) == 1  # bytes had reached the caller: never retried


async def test_stalled_stream_is_cut_with_a_timeout_event(
        upstreams, routing_settings, client_for, auth_for):
    (a,) = await upstreams("a")
    a.default = Fault.stream_then_stall(chunks=1)
    settings = routing_settings([{"name": "gpt-4o",
                                  **deployment(a, stream_idle_timeout=0.5)}])
    client = client_for(settings)

    response = await client.post("/v1/chat/completions", json=STREAM, headers=auth_for("user"))

    received = events(response.text)
    assert json.loads(received[0])["choices"][0]["delta"]["content"] == "part0 "
    assert json.loads(received[-1]) == {"error": {
        "message": "The upstream stopped answering.", "type": "api_error", "param": None,
        "code": "upstream_timeout"}}


async def test_stream_that_never_starts_is_retried_on_another_deployment(
        upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.default = Fault.stream_then_stall(chunks=0)
    models = [{"name": "gpt-4o", "deployments": [deployment(a, first_byte_timeout=0.2),
                                                  deployment(b)]}]
    client = client_for(routing_settings(models))

    response = await client.post("/v1/chat/completions", json=STREAM, headers=auth_for("user"))

    assert response.status_code == 200
    assert response.headers["x-rolegate-deployment"] == "b"
    assert response.headers["x-rolegate-attempts"] == "2"
    assert events(response.text)[-1] == "[DONE]"


async def test_usage_is_asked_for_upstream_and_kept_from_a_caller_who_did_not_ask(
        upstreams, routing_settings, client_for, auth_for):
    (a,) = await upstreams("a")
    client = client_for(routing_settings([{"name": "gpt-4o", **deployment(a)}]))

    response = await client.post("/v1/chat/completions", json=STREAM, headers=auth_for("user"))

    assert a.requests[0].json()["stream_options"] == {"include_usage": True}
    received = events(response.text)
    assert received[-1] == "[DONE]"
    assert not any(json.loads(e).get("usage") for e in received[:-1])
    assert len(received) == 5  # three parts, the finish chunk, [DONE]


async def test_caller_who_asked_for_usage_gets_the_usage_chunk(
        upstreams, routing_settings, client_for, auth_for):
    (a,) = await upstreams("a")
    client = client_for(routing_settings([{"name": "gpt-4o", **deployment(a)}]))
    asking = {**STREAM, "stream_options": {"include_usage": True}}

    response = await client.post("/v1/chat/completions", json=asking, headers=auth_for("user"))

    received = events(response.text)
    assert json.loads(received[-2])["usage"]["total_tokens"] == 5


async def test_usage_is_not_asked_for_when_the_deployment_says_not_to(
        upstreams, routing_settings, client_for, auth_for):
    (a,) = await upstreams("a")
    client = client_for(routing_settings([{"name": "gpt-4o",
                                           **deployment(a, include_stream_usage=False)}]))

    await client.post("/v1/chat/completions", json=STREAM, headers=auth_for("user"))

    assert "stream_options" not in a.requests[0].json()
