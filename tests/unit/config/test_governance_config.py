"""Configuration of identity-keyed limits, named budgets and usage dimensions: what each accepts,
what it refuses with a message naming the fix, and the claim paths the gateway must read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rolegate.config.load import ConfigError, validate_settings


def config(limits: dict[str, Any] | None = None, draws: tuple[str, ...] = (),
           **extra: Any) -> dict[str, Any]:
    allow: dict[str, Any] = {"routes": ["inference"], "models": ["*"], "budgets": draws}
    if limits is not None:
        allow["limits"] = limits
    return {"models": [{"name": "echo", "provider": "mock"}],
            "auth": {"dev_issuer": {"enabled": True}},
            "policy": [{"name": "users", "when": {"authenticated": True}, "allow": allow}],
            **extra}


def problems(data: dict[str, Any]) -> list[str]:
    try:
        validate_settings(data, source="<test>")
    except ConfigError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize("per", ["principal", "rule", "groups", "claims.tid",
                                 "claims.https://example.com/dept"])
def test_a_rules_limits_may_count_per_principal_rule_group_or_claim(per):
    assert problems(config({"rpm": 1, "per": per})) == []


@pytest.mark.parametrize(("per", "hint"), [
    ("budget", "per: rule"), ("tenant", "pattern"), ("claims.", "pattern"),
    ("claims.a b", "pattern")])
def test_a_rules_per_is_refused_unless_it_names_what_to_count_on(per, hint):
    found = problems(config({"rpm": 1, "per": per}))

    assert len(found) == 1 and "per" in found[0] and hint in found[0]


def test_budgets_must_be_named_set_and_known_to_the_rules_drawing_on_them():
    found = problems(config(draws=("team", "missing"), budgets=[
        {"name": "team", "rpm": 1}, {"name": "team", "daily_tokens": 5}, {"name": "empty"}]))

    assert sorted(found) == sorted([
        "budgets: the name 'team' is used 2 times (names must be unique)",
        "budgets[2] (empty): no limit is set (give rpm, tpm, daily_tokens or "
        "monthly_budget_usd)",
        "policy[0] (users).allow.budgets: unknown budget 'missing' (known: team, team, empty)"])


def test_a_budget_is_not_per_rule():
    found = problems(config(budgets=[{"name": "b", "rpm": 1, "per": "rule"}]))

    assert len(found) == 1 and "per: budget" in found[0]


@pytest.mark.parametrize(("dimensions", "hint"), [
    (["model"], "built-in grouping"), (["a b"], "printable"), (["tid", "tid"], "twice"),
    (["x" * 101], "printable")])
def test_a_dimension_is_refused_when_it_cannot_name_a_claim(dimensions, hint):
    found = problems(config(accounting={"dimensions": dimensions}))

    assert len(found) == 1 and hint in found[0]


def test_the_gateway_reads_exactly_the_claim_paths_limits_and_dimensions_name():
    settings = validate_settings(config(
        {"rpm": 1, "per": "claims.tid"}, draws=("org",),
        budgets=[{"name": "org", "rpm": 5, "per": "claims.org.id"},
                 {"name": "spare", "rpm": 5, "per": "groups"}],
        accounting={"dimensions": ["groups", "department", "tid"]}), source="<test>")

    assert settings.claim_paths == ("tid", "org.id", "department")


def test_without_the_features_no_claim_is_read():
    assert validate_settings(config({"rpm": 1}), source="<test>").claim_paths == ()


def test_the_readmes_governance_example_is_a_valid_configuration():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme[readme.index("## Governance"):]
    example = section[section.index("```yaml") + len("```yaml"):]
    example = yaml.safe_load(example[:example.index("```")])

    settings = validate_settings({**example, "models": [{"name": "gpt-4o", "provider": "mock"}]},
                                 source="README.md")

    assert settings.claim_paths == ("tid", "department")
    assert [budget.name for budget in settings.budgets] == ["data-science"]
