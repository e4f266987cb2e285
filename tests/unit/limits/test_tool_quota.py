"""`QuotaPlan.tool_quotas`: each tool of each server its own counter, per what `per` names."""

from __future__ import annotations

from rolegate.authn.principal import Principal
from rolegate.config.load import validate_settings
from rolegate.limits.quota import QuotaPlan


def plan_for(per: str) -> tuple[QuotaPlan, tuple[str, ...]]:
    settings = validate_settings({
        "auth": {"dev_issuer": {"enabled": True}},
        "mcp": {"servers": [{"name": "forge", "url": "http://127.0.0.1:1/mcp"}]},
        "policy": [{"name": "tools", "when": {"authenticated": True},
                    "allow": {"routes": ["mcp"], "mcp": {"servers": ["forge"], "tools": ["*"],
                                                         "limits": {"rpm": 5, "per": per}}}}],
    }, source="<test>")
    return QuotaPlan(settings.policy), settings.claim_paths


def test_each_tool_and_each_principal_count_apart():
    plan, _ = plan_for("principal")
    ana, bob = Principal("iss", "ana"), Principal("iss", "bob")

    counters = {(who.subject, tool): plan.tool_quotas("tools", who, "forge", tool, 0.0)[0]
                for who in (ana, bob) for tool in ("a", "b")}

    assert len({quota.counter for quota in counters.values()}) == 4
    assert all(quota.limit == 5 and quota.kind == "requests" for quota in counters.values())
    assert plan.tool_quotas("other-rule", ana, "forge", "a", 0.0) == []


def test_a_claim_per_is_read_from_the_token_and_counts_per_value():
    plan, paths = plan_for("claims.tid")
    tenant = (("tid", ("t1",)),)

    one = plan.tool_quotas("tools", Principal("iss", "ana", attributes=tenant), "forge", "a", 0.0)
    two = plan.tool_quotas("tools", Principal("iss", "bob", attributes=tenant), "forge", "a", 0.0)

    assert "tid" in paths
    assert one[0].counter == two[0].counter  # one tenant, one counter
