"""Rate limits and budgets in-process: set in policy rules and on keys, answered with 429 and
OpenAI's headers, present on successful replies too, and refused requests reach no upstream."""

from __future__ import annotations

import asyncio
import json
from typing import Any


from tests.integration.test_usage_accounting import _settled_rows
from tests.support.gateways import CHAT, bearer, keyed_config


async def make_key(gateway: Any, admin: dict[str, str], **fields: Any) -> str:
    response = await gateway.post("/admin/keys", headers=admin, json={
        "name": "svc", "owner": "team-a", "roles": ["svc"], **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def test_over_the_rule_rpm_is_a_429_with_openai_headers(
        gateway_for, settings_from, tmp_path, upstream, admin, limits_backend, clock):
    gateway = await gateway_for(settings_from(keyed_config(
        {"url": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}, upstream.url,
        service_limits={"rpm": 3}, limits=limits_backend)))
    key = await make_key(gateway, admin)

    replies = []
    for _ in range(4):
        replies.append(await gateway.post("/v1/chat/completions", json=CHAT,
                                          headers=bearer(key)))
        clock.advance(5)

    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in replies] == ["2", "1", "0", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "3" for r in replies)
    refused = replies[-1]
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.json()["error"]["code"] == "requests_per_minute"
    assert refused.headers["retry-after"] == "45"  # the first request leaves the window then
    assert refused.headers["x-ratelimit-reset-requests"] == "45s"
    assert len(upstream.requests) == 3
    clock.advance(41)
    again = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(key))
    assert again.status_code == 200


async def test_a_token_budget_stops_a_principal_once_its_tokens_are_spent(
        gateway_for, settings_from, tmp_path, upstream, admin, limits_backend):
    gateway = await gateway_for(settings_from(keyed_config(
        {"url": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}, upstream.url,
        service_limits={"daily_tokens": 12}, limits=limits_backend)))
    key = await make_key(gateway, admin)

    statuses, remaining = [], []
    for _ in range(4):  # the upstream reports 5 tokens a call: 5, 10, 15 -> spent
        reply = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(key))
        statuses.append(reply.status_code)
        remaining.append(reply.headers.get("x-ratelimit-remaining-tokens"))

    assert statuses == [200, 200, 200, 429]
    assert remaining == ["12", "7", "2", "0"]
    assert len(upstream.requests) == 3


async def test_a_monthly_budget_in_usd_stops_a_key(gateway_for, settings_from, tmp_path,
                                                   upstream, admin):
    gateway = await gateway_for(settings_from(keyed_config(
        {"url": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}, upstream.url)))
    # one call: 3 prompt + 2 completion tokens = 0.0045 USD at the test prices
    key = await make_key(gateway, admin, limits={"monthly_budget_usd": 0.008})

    statuses = [(await gateway.post("/v1/chat/completions", json=CHAT,
                                    headers=bearer(key))).status_code for _ in range(3)]
    refused = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(key))

    assert statuses == [200, 200, 429]
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert len(upstream.requests) == 2


async def test_a_keys_own_rpm_counts_on_the_key(gateway_for, settings_from, tmp_path,
                                                upstream, admin):
    gateway = await gateway_for(settings_from(keyed_config(
        {"url": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}, upstream.url)))
    limited = await make_key(gateway, admin, limits={"rpm": 1})
    other = await make_key(gateway, admin)

    first = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(limited))
    second = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(limited))
    unaffected = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(other))

    assert (first.status_code, second.status_code, unaffected.status_code) == (200, 429, 200)


async def test_redis_down_refuses_with_503_before_the_upstream(gateway_for, settings_from,
                                                               tmp_path, upstream, admin):
    gateway = await gateway_for(settings_from(keyed_config(
        {"url": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}, upstream.url,
        service_limits={"rpm": 5},
        limits={"backend": "redis", "url": "redis://127.0.0.1:1/0", "timeout": 0.5})))
    key = await make_key(gateway, admin)

    reply = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(key))

    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "rate_limiter_unavailable"
    assert upstream.requests == []


async def test_a_constant_request_id_still_counts_every_request(
        gateway_for, settings_from, tmp_path, upstream, admin, limits_backend):
    gateway = await gateway_for(settings_from(keyed_config(
        {"url": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}, upstream.url,
        service_limits={"rpm": 3}, limits=limits_backend)))
    key = await make_key(gateway, admin)
    headers = {**bearer(key), "x-request-id": "same-id-every-time"}

    statuses = [(await gateway.post("/v1/chat/completions", json=CHAT, headers=headers))
                .status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 429, 429]
    assert len(upstream.requests) == 3


async def test_a_fallback_is_limited_and_recorded_by_the_rule_that_grants_it(
        gateway_for, settings_from, tmp_path, upstream, admin, limits_backend):
    database = {"url": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}
    config = keyed_config(database, upstream.url, limits=limits_backend,
                          routing={"retries": {"max_attempts": 1}})
    config["models"] = [
        {"name": "m1", "provider": "openai-compatible", "api_base": "http://127.0.0.1:1/v1",
         "fallbacks": ["m2"]},
        {"name": "m2", "provider": "openai-compatible", "api_base": f"{upstream.url}/v1"}]
    config["policy"] = [
        {"name": "generous", "when": {"issuers": ["apikey"], "roles": ["svc"]},
         "allow": {"routes": ["inference"], "models": ["m1"], "limits": {"rpm": 100}}},
        {"name": "strict", "when": {"issuers": ["apikey"], "roles": ["svc"]},
         "allow": {"routes": ["inference"], "models": ["m2"], "limits": {"rpm": 1}}},
        *config["policy"][1:]]
    gateway = await gateway_for(settings_from(config))
    key = await make_key(gateway, admin)
    ask = {**CHAT, "model": "m1"}

    served = await gateway.post("/v1/chat/completions", json=ask, headers=bearer(key))
    refused = await gateway.post("/v1/chat/completions", json=ask, headers=bearer(key))
    rows = await _settled_rows(database, 2)

    assert served.status_code == 200 and served.headers["x-rolegate-model"] == "m2"
    assert served.headers["x-ratelimit-limit-requests"] == "1"  # the fallback rule's limits
    assert refused.status_code == 502  # m2's rule is spent: m2 is skipped, m1's error stands
    assert len(upstream.requests) == 1
    assert [(row["rule"], row["model"], row["status"]) for row in rows] == [
        ("strict", "m2", 200), ("generous", "m1", 502)]


async def test_fifty_requests_at_once_spend_a_token_budget_once(
        gateway_for, settings_from, tmp_path, upstream, admin, limits_backend):
    gateway = await gateway_for(settings_from(keyed_config(
        {"url": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}, upstream.url,
        service_limits={"daily_tokens": 100}, limits=limits_backend)))
    key = await make_key(gateway, admin)
    body = {**CHAT, "max_tokens": 20}
    reserved = len(json.dumps(body, separators=(",", ":"))) // 4 + 20

    replies = await asyncio.gather(*(
        gateway.post("/v1/chat/completions", json=body, headers=bearer(key)) for _ in range(50)))

    admitted = sum(reply.status_code == 200 for reply in replies)
    assert {reply.status_code for reply in replies} == {200, 429}
    assert len(upstream.requests) == admitted
    assert admitted == -(-100 // reserved)  # admitted while reservations left room
    assert admitted * 5 <= 100 + reserved
