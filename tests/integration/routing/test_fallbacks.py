"""Fallbacks to other models: tried in order when a model cannot serve, and only those the
caller's policy grants."""

from __future__ import annotations

from tests.integration.routing.conftest import deployment
from tests.support.faulty import Fault, openai_error

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
POLICY = [
    {"name": "basic", "when": {"roles": ["basic"]},
     "allow": {"routes": ["inference"], "models": ["gpt-4o", "gpt-4o-mini"]}},
    {"name": "premium", "when": {"roles": ["premium"]},
     "allow": {"routes": ["inference"], "models": ["*"]}},
]


async def fallback_setup(upstreams, routing_settings, client_for, **primary):
    big, premium, mini = await upstreams("big", "premium", "mini")
    models = [
        {"name": "gpt-4o", **deployment(big),
         "fallbacks": ["gpt-4o-premium", "gpt-4o-mini"], **primary},
        {"name": "gpt-4o-premium", **deployment(premium)},
        {"name": "gpt-4o-mini", **deployment(mini)},
    ]
    return big, premium, mini, client_for(routing_settings(models, policy=POLICY))


async def test_fallback_skips_models_the_caller_may_not_use(
        upstreams, routing_settings, client_for, auth_for):
    big, premium, mini, client = await fallback_setup(upstreams, routing_settings, client_for)
    big.default = Fault.error(503)

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("basic"))

    assert response.status_code == 200
    assert response.headers["x-rolegate-model"] == "gpt-4o-mini"
    assert response.headers["x-rolegate-deployment"] == "mini"
    assert mini.requests[0].json()["model"] == "gpt-4o-mini"
    assert premium.requests == []


async def test_fallback_goes_in_order_for_a_caller_granted_everything(
        upstreams, routing_settings, client_for, auth_for):
    big, _premium, mini, client = await fallback_setup(upstreams, routing_settings, client_for)
    big.default = Fault.error(503)

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("premium"))

    assert response.headers["x-rolegate-model"] == "gpt-4o-premium"
    assert mini.requests == []


async def test_no_permitted_fallback_leaves_the_primary_error(
        upstreams, routing_settings, client_for, auth_for):
    big, premium, mini, client = await fallback_setup(upstreams, routing_settings, client_for)
    big.default = mini.default = Fault.error(503)

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("basic"))

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    assert premium.requests == []


async def test_caller_denied_the_primary_gets_403_and_no_fallback(
        upstreams, routing_settings, client_for, auth_for):
    big, premium, mini, client = await fallback_setup(upstreams, routing_settings, client_for)

    response = await client.post("/v1/chat/completions", json=CHAT,
                                 headers=auth_for("nobody"))

    assert response.status_code == 403
    assert big.requests == premium.requests == mini.requests == []


async def test_client_error_does_not_fall_back(
        upstreams, routing_settings, client_for, auth_for):
    big, premium, mini, client = await fallback_setup(upstreams, routing_settings, client_for)
    big.default = Fault.error(400, openai_error("invalid_value"))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("premium"))

    assert response.status_code == 400
    assert premium.requests == mini.requests == []


async def test_prompt_too_long_falls_back_to_a_larger_context_model(
        upstreams, routing_settings, client_for, auth_for):
    small, large = await upstreams("small", "large")
    small.default = Fault.error(400, openai_error("context_length_exceeded"))
    models = [{"name": "gpt-4o", **deployment(small), "context_window_fallbacks": ["gpt-4o-1m"]},
              {"name": "gpt-4o-1m", **deployment(large)}]
    client = client_for(routing_settings(models))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 200
    assert response.headers["x-rolegate-model"] == "gpt-4o-1m"
    assert len(small.requests) == 1  # a 400 is never retried on the same model


async def test_prompt_too_long_without_a_permitted_fallback_passes_the_400_through(
        upstreams, routing_settings, client_for, auth_for):
    small, large = await upstreams("small", "large")
    small.default = Fault.error(400, openai_error("context_length_exceeded", "too long"))
    models = [{"name": "gpt-4o", **deployment(small), "context_window_fallbacks": ["gpt-4o-1m"]},
              {"name": "gpt-4o-1m", **deployment(large)}]
    policy = [{"name": "small-only", "when": {"roles": ["user"]},
               "allow": {"routes": ["inference"], "models": ["gpt-4o"]}}]
    client = client_for(routing_settings(models, policy=policy))

    response = await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert response.status_code == 400
    assert response.json()["error"] == {"message": "too long", "type": "invalid_request_error",
                                        "param": None, "code": "context_length_exceeded"}
    assert large.requests == []
