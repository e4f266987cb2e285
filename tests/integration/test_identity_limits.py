"""Limits and budgets keyed on identity: per claim value, per group, per rule, and named budgets
several rules draw on; on both backends, and shared by two replicas over one Redis. Refused
requests never reach the upstream."""

from __future__ import annotations

import asyncio
from typing import Any


from rolegate.authn.dev_issuer import DevIssuer
from rolegate.limits.redis import SETTLE_DELAY
from tests.support.gateways import CHAT, bearer
from tests.support.storage import REDIS_URL


def identity_config(upstream_url: str, rules: list[dict[str, Any]], **extra: Any
                    ) -> dict[str, Any]:
    """The recording upstream behind `gpt-4o` (5 tokens and 0.0045 USD a call), callers from the
    development issuer, and `rules`."""
    return {
        "models": [{"name": "gpt-4o", "provider": "openai-compatible",
                    "api_base": f"{upstream_url}/v1", "input_cost_per_1k": 0.5,
                    "output_cost_per_1k": 1.5}],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": rules, **extra}


def rule(name: str, role: str, **allow: Any) -> dict[str, Any]:
    return {"name": name, "when": {"roles": [role]},
            "allow": {"routes": ["inference"], "models": ["*"], **allow}}


def caller(dev_issuer: DevIssuer, subject: str, role: str = "user", **claims: Any
           ) -> dict[str, str]:
    return bearer(dev_issuer.mint(subject=subject, roles=(role,), extra=claims))


async def statuses(gateway: Any, *callers: dict[str, str]) -> list[int]:
    return [(await gateway.post("/v1/chat/completions", json=CHAT, headers=headers)).status_code
            for headers in callers]


async def test_every_user_of_a_tenant_shares_the_tenants_daily_tokens(
        gateway_for, settings_from, upstream, dev_issuer, limits_backend):
    gateway = await gateway_for(settings_from(identity_config(upstream.url, [
        rule("tenants", "user", limits={"daily_tokens": 12, "per": "claims.tid"})],
        limits=limits_backend)))
    alice, bob = (caller(dev_issuer, name, tid="tenant-a") for name in ("alice", "bob"))
    carol = caller(dev_issuer, "carol", tid="tenant-b")

    spent = await statuses(gateway, alice, alice, bob, bob)  # 5 tokens each: 5, 10, 15
    other_tenant = await statuses(gateway, carol)
    refused = await gateway.post("/v1/chat/completions", json=CHAT, headers=alice)

    assert spent == [200, 200, 200, 429]
    assert other_tenant == [200]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "tokens_per_day"
    assert refused.headers["x-ratelimit-limit-tokens"] == "12"
    assert len(upstream.requests) == 4


async def test_a_caller_counts_against_each_of_its_groups_all_or_nothing(
        gateway_for, settings_from, upstream, dev_issuer, limits_backend):
    gateway = await gateway_for(settings_from(identity_config(upstream.url, [
        rule("groups", "user", limits={"rpm": 2, "per": "groups"})], limits=limits_backend)))
    both = caller(dev_issuer, "u1", groups=["data-science", "finance"])
    finance = caller(dev_issuer, "u2", groups=["finance"])
    legal = caller(dev_issuer, "u3", groups=["legal"])
    finance_and_legal = caller(dev_issuer, "u4", groups=["finance", "legal"])

    assert await statuses(gateway, both, both) == [200, 200]
    assert await statuses(gateway, finance) == [429]  # finance spent by u1
    assert await statuses(gateway, legal) == [200]
    # refused on finance, so legal is not counted: legal still has one request left
    assert await statuses(gateway, finance_and_legal) == [429]
    assert await statuses(gateway, legal, legal) == [200, 429]
    assert len(upstream.requests) == 4


async def test_per_rule_limits_are_shared_by_everyone_the_rule_grants(
        gateway_for, settings_from, upstream, dev_issuer, limits_backend):
    gateway = await gateway_for(settings_from(identity_config(upstream.url, [
        rule("shared", "user", limits={"rpm": 2, "per": "rule"})], limits=limits_backend)))

    served = await statuses(gateway, *(caller(dev_issuer, name) for name in ("a", "b", "c")))

    assert served == [200, 200, 429]
    assert len(upstream.requests) == 2


async def test_two_rules_draw_on_one_named_budget(
        gateway_for, settings_from, upstream, dev_issuer, limits_backend):
    gateway = await gateway_for(settings_from(identity_config(upstream.url, [
        rule("ds-interactive", "ds", budgets=["data-science"]),
        rule("ds-batch", "batch", budgets=["data-science"], limits={"rpm": 100})],
        budgets=[{"name": "data-science", "monthly_budget_usd": 0.008}],
        limits=limits_backend)))
    analyst = caller(dev_issuer, "analyst", role="ds")
    pipeline = caller(dev_issuer, "pipeline", role="batch")

    served = await statuses(gateway, analyst, pipeline)  # 0.0045 USD each: 0.009 spent
    refused = [await gateway.post("/v1/chat/completions", json=CHAT, headers=headers)
               for headers in (analyst, pipeline)]

    assert served == [200, 200]
    assert [r.status_code for r in refused] == [429, 429]
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exceeded"}
    assert len(upstream.requests) == 2


async def test_a_budget_per_claim_value_is_shared_across_its_rules_but_not_across_values(
        gateway_for, settings_from, upstream, dev_issuer, limits_backend):
    gateway = await gateway_for(settings_from(identity_config(upstream.url, [
        rule("chat", "user", budgets=["per-tenant"]),
        rule("batch", "batch", budgets=["per-tenant"])],
        budgets=[{"name": "per-tenant", "rpm": 2, "per": "claims.tid"}],
        limits=limits_backend)))
    tenant_a = [caller(dev_issuer, "a1", tid="a"), caller(dev_issuer, "a2", "batch", tid="a")]
    tenant_b = caller(dev_issuer, "b1", "batch", tid="b")

    assert await statuses(gateway, *tenant_a, tenant_a[0]) == [200, 200, 429]
    assert await statuses(gateway, tenant_b) == [200]


async def test_two_replicas_share_a_per_claim_limit_and_a_budget_in_redis(
        gateway_for, settings_from, upstream, dev_issuer, redis_prefix):
    settings = settings_from(identity_config(upstream.url, [
        rule("tenants", "user", limits={"daily_tokens": 12, "per": "claims.tid"},
             budgets=["company"])],
        budgets=[{"name": "company", "rpm": 5}],
        limits={"backend": "redis", "url": REDIS_URL, "prefix": redis_prefix}))
    first, second = await gateway_for(settings), await gateway_for(settings)
    replicas = [first, second, first, second]
    a_users = [caller(dev_issuer, f"a{n}", tid="tenant-a") for n in range(4)]

    tenant_a = []
    for replica, headers in zip(replicas, a_users, strict=True):  # 5 tokens each: 5, 10, 15
        tenant_a += await statuses(replica, headers)
        await asyncio.sleep(SETTLE_DELAY * 4)  # settled usage reaches Redis within SETTLE_DELAY
    tenant_b = await statuses(second, *(caller(dev_issuer, f"b{n}", tid="tenant-b")
                                         for n in range(2)))
    budget_spent = await statuses(first, caller(dev_issuer, "b9", tid="tenant-b"))

    assert tenant_a == [200, 200, 200, 429]  # the tenant's tokens, counted by both replicas
    assert tenant_b == [200, 200]            # another tenant's counter
    assert budget_spent == [429]             # the shared budget: 5 requests admitted in all
    assert len(upstream.requests) == 5


async def test_odd_claim_values_count_on_their_own_counters(
        gateway_for, settings_from, upstream, dev_issuer, limits_backend):
    gateway = await gateway_for(settings_from(identity_config(upstream.url, [
        rule("groups", "user", limits={"rpm": 1, "per": "claims.team"})],
        limits=limits_backend)))
    odd = ["\ud800", "}:{", "x" * 4000, 7]
    callers = [caller(dev_issuer, f"u{n}", team=value) for n, value in enumerate(odd)]

    first = await statuses(gateway, *callers)
    again = await statuses(gateway, *callers)

    assert first == [200] * 4 and again == [429] * 4
    assert len(upstream.requests) == 4
