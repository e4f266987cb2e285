"""Remembered decisions: asking again gives the same answer, for the same principal object only."""

from __future__ import annotations

from rolegate.authn.principal import Principal
from rolegate.authz.model import Action
from rolegate.authz.policy import RolePolicy
from rolegate.config.load import validate_settings

SETTINGS = validate_settings({
    "models": [{"name": "small", "provider": "mock"}, {"name": "large", "provider": "mock"}],
    "auth": {"dev_issuer": {"enabled": True}},
    "policy": [{"name": "users", "when": {"roles": ["user"]},
                "allow": {"routes": ["inference"], "models": ["small"]}}],
}, source="<test>")
SMALL = Action("inference", "/v1/chat/completions", "small")
LARGE = Action("inference", "/v1/chat/completions", "large")


def test_repeated_questions_get_the_first_answer() -> None:
    policy = RolePolicy.compile(SETTINGS.policy)
    user = Principal(issuer="idp", subject="u", roles=frozenset({"user"}))
    first = policy.decide(user, SMALL)
    assert first.allowed and policy.decide(user, SMALL) is first
    denied = policy.decide(user, LARGE)
    assert not denied.allowed and denied.code == "model_not_allowed"
    assert policy.decide(user, LARGE) is denied


def test_another_principal_is_decided_on_its_own() -> None:
    policy = RolePolicy.compile(SETTINGS.policy)
    assert policy.decide(Principal(issuer="idp", subject="u", roles=frozenset({"user"})),
                         SMALL).allowed
    for _ in range(50):  # fresh objects, possibly at a reused address
        stranger = Principal(issuer="idp", subject="s", roles=frozenset({"guest"}))
        assert not policy.decide(stranger, SMALL).allowed


def test_memory_is_bounded() -> None:
    policy = RolePolicy(RolePolicy.compile(SETTINGS.policy).rules, max_remembered=3)
    principals = [Principal(issuer="idp", subject=str(i), roles=frozenset({"user"}))
                  for i in range(10)]
    for who in principals:
        assert policy.decide(who, SMALL).allowed
    assert len(policy._decided) == 3
