"""Retries across deployments, the circuit breaker, Retry-After and timeouts, against real
fault-injecting upstreams on 127.0.0.1."""

from __future__ import annotations

import pytest

from tests.integration.routing.conftest import deployment
from tests.support.faulty import Fault, openai_error

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def two_deployments(a, b, **model):
    return [{"name": "gpt-4o", "deployments": [deployment(a), deployment(b)], **model}]


async def test_429_on_one_deployment_is_retried_on_the_next(
        upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.plan(Fault.error(429, openai_error("rate_limit_exceeded"), {"retry-after": "20"}))
    client = client_for(routing_settings(two_deployments(a, b)))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "from b"
    assert response.headers["x-rolegate-deployment"] == "b"
    assert response.headers["x-rolegate-attempts"] == "2"
    assert (len(a.requests), len(b.requests)) == (1, 1)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried_on_another_deployment(
        status, upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.default = Fault.error(status)
    b.default = Fault.error(status)
    (a if status % 2 else b).default = Fault.ok()
    client = client_for(routing_settings(two_deployments(a, b)))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 200
    assert int(response.headers["x-rolegate-attempts"]) <= 2


async def test_connection_reset_is_retried_on_another_deployment(
        upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.default = Fault.reset()
    client = client_for(routing_settings(two_deployments(a, b)))

    responses = [await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
                 for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert {r.headers["x-rolegate-deployment"] for r in responses} == {"b"}


async def test_unreachable_deployment_is_retried_on_another(
        upstreams, routing_settings, client_for, auth_for):
    (b,) = await upstreams("b")
    dead = {"id": "dead", "provider": "openai-compatible", "api_base": "http://127.0.0.1:9/v1"}
    client = client_for(routing_settings([{"name": "gpt-4o",
                                           "deployments": [dead, deployment(b)]}]))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 200
    assert response.headers["x-rolegate-deployment"] == "b"


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_client_errors_pass_through_unretried_with_the_upstream_body(
        status, upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.default = b.default = Fault.error(status, openai_error("bad_thing", "your request is bad"))
    client = client_for(routing_settings(two_deployments(a, b)))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == status
    assert response.json()["error"]["code"] == "bad_thing"
    assert response.json()["error"]["message"] == "your request is bad"
    assert len(a.requests) + len(b.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_upstream_refusing_the_gateway_is_502_and_not_retried(
        status, upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.default = b.default = Fault.error(status, openai_error("invalid_api_key"))
    client = client_for(routing_settings(two_deployments(a, b)))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_auth_failed"
    assert len(a.requests) + len(b.requests) == 1


async def test_503_storm_cools_the_deployment_down_and_a_probe_brings_it_back(
        upstreams, routing_settings, client_for, auth_for, clock):
    a, b = await upstreams("a", "b")
    a.default = Fault.error(503)
    settings = routing_settings(two_deployments(a, b), health={"failures": 3, "cooldown": 30})
    client = client_for(settings)

    for _ in range(10):
        response = await client.post("/v1/chat/completions", json=CHAT,
                                     headers=auth_for("user"))
        assert response.status_code == 200
    assert len(a.requests) == 3  # opened after three failures; no traffic while cooling down

    a.default = Fault.ok()
    clock.advance(31)
    served = [(await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
               ).headers["x-rolegate-deployment"] for _ in range(4)]

    assert len(a.requests) >= 4  # the probe succeeded and a takes its share again
    assert served.count("a") == 2 and served.count("b") == 2


async def test_failed_probe_keeps_the_deployment_cooling_down(
        upstreams, routing_settings, client_for, auth_for, clock):
    a, b = await upstreams("a", "b")
    a.default = Fault.error(503)
    client = client_for(routing_settings(two_deployments(a, b),
                                         health={"failures": 2, "cooldown": 30}))
    for _ in range(4):
        await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
    seen = len(a.requests)

    clock.advance(31)
    for _ in range(4):
        await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert len(a.requests) == seen + 1  # exactly one probe, which failed


async def test_every_deployment_cooling_down_is_503_no_healthy_deployment(
        upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.default = b.default = Fault.error(503)
    client = client_for(routing_settings(two_deployments(a, b),
                                         health={"failures": 1, "cooldown": 30}))

    first = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
    second = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert first.status_code == 502
    assert first.json()["error"]["code"] == "upstream_error"
    assert second.status_code == 503
    assert second.json()["error"]["code"] == "no_healthy_deployment"
    assert int(second.headers["retry-after"]) == 30
    assert len(a.requests) + len(b.requests) == 2


async def test_retry_after_is_waited_for_before_retrying_the_same_deployment(
        upstreams, routing_settings, client_for, auth_for, clock):
    (a,) = await upstreams("a")
    a.plan(Fault.error(429, openai_error("rate_limit_exceeded"), {"retry-after": "2"}))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)
    settings = routing_settings([{"name": "gpt-4o", **deployment(a)}],
                                retries={"max_retry_after": 10})
    client = client_for(settings, sleep=sleep)

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 200
    assert response.headers["x-rolegate-attempts"] == "2"
    assert sum(waits) >= 2.0


async def test_retry_after_ms_is_honoured(upstreams, routing_settings, client_for, auth_for,
                                          clock):
    (a,) = await upstreams("a")
    a.plan(Fault.error(429, openai_error("rate_limit_exceeded"), {"retry-after-ms": "1500"}))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)
    client = client_for(routing_settings([{"name": "gpt-4o", **deployment(a)}],
                                         retries={"max_retry_after": 10}), sleep=sleep)

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 200
    assert 1.5 <= sum(waits) < 2.0


async def test_retry_after_longer_than_allowed_passes_the_upstream_429_on_with_retry_after(
        upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.default = b.default = Fault.error(429, openai_error("rate_limit_exceeded", "slow down"),
                                        {"retry-after": "40"})
    client = client_for(routing_settings(two_deployments(a, b)))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
    again = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 429
    assert response.json() == openai_error("rate_limit_exceeded", "slow down")
    assert int(response.headers["retry-after"]) == 40
    assert response.headers["x-rolegate-attempts"] == "2"
    assert again.status_code == 429
    assert again.json()["error"]["type"] == "rate_limit_error"
    assert again.json()["error"]["code"] == "all_deployments_rate_limited"
    assert len(a.requests) + len(b.requests) == 2  # resting deployments get nothing


async def test_rpm_budget_spreads_load_then_answers_429(
        upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    models = [{"name": "gpt-4o", "deployments": [deployment(a, rpm=2), deployment(b, rpm=1)]}]
    client = client_for(routing_settings(models))

    responses = [await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
                 for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[3].json()["error"]["code"] == "all_deployments_rate_limited"
    assert responses[3].headers["retry-after"] == "60"
    assert (len(a.requests), len(b.requests)) == (2, 1)


async def test_spent_rpm_budget_is_waited_for_when_it_frees_soon_enough(
        upstreams, routing_settings, client_for, auth_for, clock):
    (a,) = await upstreams("a")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)
    settings = routing_settings([{"name": "gpt-4o", **deployment(a, rpm=1)}],
                                retries={"max_retry_after": 60})
    client = client_for(settings, sleep=sleep)

    first = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
    clock.advance(50)
    second = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert (first.status_code, second.status_code) == (200, 200)
    assert waits == [pytest.approx(10)]
    assert second.headers["x-rolegate-attempts"] == "1"  # a wait is not an attempt


async def test_first_byte_timeout_is_504_upstream_timeout(
        upstreams, routing_settings, client_for, auth_for):
    (a,) = await upstreams("a")
    a.default = Fault.stall(5)
    settings = routing_settings([{"name": "gpt-4o", **deployment(a, first_byte_timeout=0.2)}],
                                retries={"max_attempts": 1})
    client = client_for(settings)

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 504
    assert response.json()["error"] == {"message": "The upstream did not answer in time.",
                                        "type": "api_error", "param": None,
                                        "code": "upstream_timeout"}


async def test_total_deadline_bounds_all_attempts(
        upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.default = b.default = Fault.stall(5)
    settings = routing_settings(two_deployments(a, b), retries={"deadline": 0.3,
                                                                "max_attempts": 2})
    client = client_for(settings)

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


async def test_timed_out_deployment_is_retried_on_the_next(
        upstreams, routing_settings, client_for, auth_for):
    a, b = await upstreams("a", "b")
    a.default = Fault.stall(5)
    models = [{"name": "gpt-4o", "deployments": [deployment(a, first_byte_timeout=0.2),
                                                  deployment(b)]}]
    client = client_for(routing_settings(models))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 200
    assert response.headers["x-rolegate-deployment"] == "b"


async def test_upstream_429_that_is_not_openai_shaped_becomes_the_gateways_429(
        upstreams, routing_settings, client_for, auth_for):
    (a,) = await upstreams("a")
    a.default = Fault.error(429, {"detail": "busy"}, {"retry-after": "30"})
    client = client_for(routing_settings([{"name": "gpt-4o", **deployment(a)}]))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "upstream_rate_limited"
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "30"


async def test_429_without_retry_after_is_not_waited_for(
        upstreams, routing_settings, client_for, auth_for, clock):
    (a,) = await upstreams("a")
    a.default = Fault.error(429, openai_error("rate_limit_exceeded"))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)
    client = client_for(routing_settings([{"name": "gpt-4o", **deployment(a)}],
                                         retries={"max_retry_after": 60},
                                         health={"rate_limit_cooldown": 10}), sleep=sleep)

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "10"  # the deployment rests that long
    assert waits == []
    assert len(a.requests) == 1
