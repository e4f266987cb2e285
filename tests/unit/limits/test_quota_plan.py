"""`QuotaPlan` finds a request's quotas by the granting rule, the principal and the key."""

from __future__ import annotations

import re

import pytest

from rolegate.authn.principal import Principal
from rolegate.config.load import validate_settings
from rolegate.config.model import LimitConfig
from rolegate.limits.quota import QuotaPlan, counter_base

NOW = 1_750_000_040.0


def plan(limits: dict[str, object], key_limits: LimitConfig | None = None) -> QuotaPlan:
    settings = validate_settings({
        "models": [{"name": "m", "provider": "mock"}],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [{"name": "limited", "when": {"roles": ["r"]},
                    "allow": {"routes": ["inference"], "models": ["*"], "limits": limits}},
                   {"name": "free", "when": {"roles": ["f"]}, "allow": {"routes": ["info"]}}],
    }, source="<test>")
    return QuotaPlan(settings.policy, lambda key_id: key_limits)


def counters(found: QuotaPlan, rule: str | None, who: Principal) -> list[str]:
    return [quota.counter for quota in found.quotas(rule, who, NOW)]


def test_each_principal_has_its_own_counter_under_a_rule():
    rules = plan({"rpm": 5})

    alice = counters(rules, "limited", Principal(issuer="entra", subject="alice"))
    bob = counters(rules, "limited", Principal(issuer="entra", subject="bob"))

    assert len(alice) == 1 and alice != bob


def test_per_end_user_splits_a_principals_counter_by_its_verified_end_user():
    rules = plan({"rpm": 5, "per_end_user": True})
    app = Principal(issuer="entra", subject="app")

    first = counters(rules, "limited", Principal(issuer="entra", subject="app", end_user="u1"))
    second = counters(rules, "limited", Principal(issuer="entra", subject="app", end_user="u2"))

    assert first != second != counters(rules, "limited", app)


def test_a_rule_without_limits_and_a_key_without_limits_have_no_quotas():
    rules = plan({"rpm": 5})

    assert counters(rules, "free", Principal(issuer="apikey", subject="o", key_id="k1")) == []
    assert counters(rules, None, Principal(issuer="entra", subject="x")) == []


def test_a_keys_limits_add_quotas_counted_on_the_key():
    rules = plan({"rpm": 5}, key_limits=LimitConfig(rpm=1, daily_tokens=100))

    found = counters(rules, "limited", Principal(issuer="apikey", subject="o", key_id="k1"))

    assert len(found) == 3
    key_base = counter_base("k", ("k1", None))
    assert sum(counter.startswith(key_base + ":") for counter in found) == 2


@pytest.mark.parametrize(("first", "second"), [
    (Principal(issuer="entra", subject="app", end_user="a:user:b"),
     Principal(issuer="entra", subject="app:user:a", end_user="b")),
    (Principal(issuer="entra", subject="app", end_user="x}:rpm"),
     Principal(issuer="entra", subject="app", end_user="x")),
    (Principal(issuer="entra", subject="app", end_user="u"),
     Principal(issuer="entra", subject="app", end_user=None)),
    (Principal(issuer="entra:x", subject="y"), Principal(issuer="entra", subject="x:y")),
], ids=["separator-in-end-user", "brace-closing-the-tag", "end-user-or-none",
        "separator-between-issuer-and-subject"])
def test_crafted_identities_never_share_a_counter(first, second):
    rules = plan({"rpm": 5, "daily_tokens": 10, "per_end_user": True})

    assert set(counters(rules, "limited", first)).isdisjoint(counters(rules, "limited", second))


@pytest.mark.parametrize("end_user", ["}", "{", "a}{b", "x" * 100_000, "\n\r\x00 ünï", ":"])
def test_a_counter_key_has_one_shape_whatever_the_caller_sends(end_user):
    rules = plan({"rpm": 5, "tpm": 10, "per_end_user": True})
    who = Principal(issuer="entra", subject=f"s}}{end_user}{{", end_user=end_user)

    found = counters(rules, "limited", who)

    assert len(found) == 2
    for counter in found:
        assert re.fullmatch(r"\{r:[0-9a-f]{32}\}:(rpm|tpm:\d+)", counter), counter
