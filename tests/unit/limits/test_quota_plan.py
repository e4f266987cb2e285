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


def per_plan(per: str, budgets: tuple[dict[str, object], ...] = (),
             rule_budgets: tuple[str, ...] = ()) -> QuotaPlan:
    settings = validate_settings({
        "models": [{"name": "m", "provider": "mock"}],
        "auth": {"dev_issuer": {"enabled": True}},
        "budgets": list(budgets),
        "policy": [{"name": name, "when": {"roles": [name]},
                    "allow": {"routes": ["inference"], "models": ["*"], "budgets": rule_budgets,
                              "limits": {"rpm": 5, "per": per}}} for name in ("one", "two")],
    }, source="<test>")
    return QuotaPlan(settings.policy, budgets=settings.budgets)


def with_claims(subject: str = "s", groups: tuple[str, ...] = (), **claims: tuple[str, ...]
                ) -> Principal:
    return Principal(issuer="idp", subject=subject, groups=frozenset(groups),
                     attributes=tuple(claims.items()))


def test_per_principal_keeps_the_counters_it_had_before_per_existed():
    who = with_claims("alice")

    assert counters(per_plan("principal"), "one", who) == [
        counter_base("r", ("one", "idp", "alice", None)) + ":rpm"]


def test_per_claim_counts_each_value_and_callers_without_it_share_one_counter():
    rules = per_plan("claims.tid")

    alice, bob = (counters(rules, "one", with_claims(name, tid=("t-1",))) for name in "ab")
    other = counters(rules, "one", with_claims("c", tid=("t-2",)))
    none, nobody = (counters(rules, "one", with_claims(name)) for name in "de")
    both = counters(rules, "one", with_claims("f", tid=("t-1", "t-2")))

    assert alice == bob != other
    assert none == nobody != alice
    assert both == alice + other


def test_per_groups_counts_each_group_and_per_rule_counts_everyone_together():
    by_group = per_plan("groups")
    per_rule = per_plan("rule")
    first, second = with_claims("a", groups=("x", "y")), with_claims("b", groups=("y",))

    assert len(counters(by_group, "one", first)) == 2
    assert counters(by_group, "one", second)[0] == counters(by_group, "one", first)[1]
    assert counters(per_rule, "one", first) == counters(per_rule, "one", second)
    assert counters(per_rule, "one", first) != counters(per_rule, "two", first)


def test_a_budget_counts_the_same_for_every_rule_drawing_on_it():
    rules = per_plan("principal", budgets=({"name": "shared", "daily_tokens": 9},),
                     rule_budgets=("shared",))
    who = with_claims("alice")

    one, two = counters(rules, "one", who), counters(rules, "two", who)

    assert len(one) == 2 and one[0] != two[0]  # each rule's own rpm
    assert one[1] == two[1] and one[1].startswith("{b:")  # the budget's tokens


@pytest.mark.parametrize("value", ["}", "a:b", "{r:x}", "x" * 100_000, "\ud800", "\x00"])
def test_a_claim_value_never_shapes_its_counter_key(value):
    counter = counters(per_plan("claims.team"), "one", with_claims(team=(value,)))[0]

    assert re.fullmatch(r"\{r:[0-9a-f]{32}\}:rpm", counter)


def test_a_principals_quotas_are_reused_within_a_minute_and_made_anew_in_the_next():
    """The plan remembers a principal's quotas for the current minute: the same counters again,
    the next minute's token window (and day, at midnight) once the clock passes it."""
    rules = plan({"rpm": 5, "tpm": 100, "daily_tokens": 1000})
    who = Principal(issuer="entra", subject="alice")
    midnight = 1_750_032_000.0  # 2025-06-16T00:00:00Z

    before = rules.quotas("limited", who, midnight - 1)
    again = rules.quotas("limited", who, midnight - 0.5)
    after = rules.quotas("limited", who, midnight)

    assert again == before
    assert [q.counter.rsplit(":", 1)[-1] for q in before] == ["rpm", "29167199", "2025-06-15"]
    assert [q.counter.rsplit(":", 1)[-1] for q in after] == ["rpm", "29167200", "2025-06-16"]
    assert after[1].reset_at == midnight + 60


def test_an_equal_principal_of_another_token_gets_the_same_counters():
    rules = plan({"rpm": 5})

    first = counters(rules, "limited", Principal(issuer="entra", subject="alice"))
    second = counters(rules, "limited", Principal(issuer="entra", subject="alice"))

    assert first == second
