"""Properties of RolePolicy against an independent oracle: for random rules, principals and
actions, the policy allows exactly when some rule's conditions all hold and that same rule grants
both the route and the model; an empty policy allows nothing.

Set ROLEGATE_HYPOTHESIS_EXAMPLES to run more examples (default 150 per property).
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolegate.authn.principal import Principal
from rolegate.authz.model import Action
from rolegate.authz.policy import RolePolicy
from rolegate.config.model import RuleConfig

EXAMPLES = int(os.environ.get("ROLEGATE_HYPOTHESIS_EXAMPLES", "150"))
PROFILE = settings(max_examples=EXAMPLES, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

NAMES = ["a", "b", "c", "d"]
MODELS = ["gpt-4o", "gpt-4o-mini", "llama-3-8b", "echo", "GPT-4o"]
GLOBS = ["*", "gpt-*", "gpt-4o", "gpt-4o*", "llama-?-8b", "e?ho", "[eg]*", "none-such"]
ROUTE_GROUPS = ["inference", "info", "admin"]
ROUTE_PATHS = ["/v1/audio/*", "/v1/models", "/admin/*"]
ACTIONS = [("inference", "/v1/chat/completions"), ("inference", "/v1/embeddings"),
           ("info", "/v1/models"), ("info", "/v1/models/x"), ("admin", "/admin/policy"),
           ("audio", "/v1/audio/speech")]
CLAIM_NAMES = ["tier", "dept"]

names = st.lists(st.sampled_from(NAMES), max_size=3, unique=True)
claim_value = st.one_of(
    st.sampled_from(NAMES),
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(" ".join),
    st.lists(st.one_of(st.sampled_from(NAMES), st.integers(0, 3), st.none(),
                       st.lists(st.sampled_from(NAMES), max_size=2)), max_size=4),
    st.integers(0, 3), st.booleans(), st.none(),
    st.dictionaries(st.sampled_from(NAMES), st.sampled_from(NAMES), max_size=2),
)


@st.composite
def when_conditions(draw: st.DrawFn) -> dict[str, Any]:
    when: dict[str, Any] = {}
    for key in ("roles", "scopes", "groups", "clients", "subjects", "issuers", "tenants"):
        values = draw(names)
        if values:
            when[key] = values
    claims = draw(st.dictionaries(
        st.sampled_from(CLAIM_NAMES),
        st.lists(st.one_of(st.sampled_from(NAMES), st.just("a b")), min_size=1, max_size=2),
        max_size=2))
    if claims:
        when["claims"] = claims
    if not when or draw(st.booleans()):
        when["authenticated"] = True
    return when


@st.composite
def rules(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(0, 4))
    return [{
        "name": f"rule-{index}",
        "when": draw(when_conditions()),
        "allow": {"routes": draw(st.lists(st.sampled_from(ROUTE_GROUPS + ROUTE_PATHS),
                                          min_size=1, max_size=3, unique=True)),
                  "models": draw(st.lists(st.sampled_from(GLOBS), max_size=3, unique=True))},
    } for index in range(count)]


@st.composite
def principals(draw: st.DrawFn) -> Principal:
    optional = st.one_of(st.none(), st.sampled_from(NAMES))
    return Principal(
        issuer=draw(st.sampled_from(NAMES)), subject=draw(st.sampled_from(NAMES)),
        client_id=draw(optional), tenant=draw(optional),
        roles=frozenset(draw(names)), scopes=frozenset(draw(names)),
        groups=frozenset(draw(names)),
        claims=draw(st.dictionaries(st.sampled_from(CLAIM_NAMES), claim_value, max_size=2)),
    )


@st.composite
def actions(draw: st.DrawFn) -> Action:
    route, path = draw(st.sampled_from(ACTIONS))
    model = draw(st.one_of(st.none(), st.sampled_from(MODELS)))
    return Action(route, path, model)


# --- the oracle: written from the README's words, sharing no code with the policy ---------------

def claim_holds(claims: dict[str, Any], name: str, accepted: list[str]) -> bool:
    if name not in claims:
        return False
    value = claims[name]
    if isinstance(value, str):
        return value in accepted or any(part in accepted for part in value.split())
    if isinstance(value, list):
        return any(isinstance(item, str) and item in accepted for item in value)
    return False


def caller_matches(when: dict[str, Any], who: Principal) -> bool:
    for key, held in (("roles", who.roles), ("scopes", who.scopes), ("groups", who.groups)):
        if when.get(key) and not any(value in held for value in when[key]):
            return False
    for key, value in (("clients", who.client_id), ("subjects", who.subject),
                       ("issuers", who.issuer), ("tenants", who.tenant)):
        if when.get(key) and value not in when[key]:
            return False
    return all(claim_holds(dict(who.claims), name, accepted)
               for name, accepted in when.get("claims", {}).items())


def grants_route(allow: dict[str, Any], action: Action) -> bool:
    return any(route == action.route if not route.startswith("/")
               else fnmatchcase(action.path, route) for route in allow["routes"])


def grants_model(allow: dict[str, Any], model: str | None) -> bool:
    return model is None or any(fnmatchcase(model, glob) for glob in allow["models"])


def oracle(rule_data: list[dict[str, Any]], who: Principal, action: Action) -> tuple[bool, str]:
    matching = [r for r in rule_data if caller_matches(r["when"], who)]
    if any(grants_route(r["allow"], action) and grants_model(r["allow"], action.model)
           for r in matching):
        return True, "allowed"
    if any(grants_route(r["allow"], action) for r in matching):
        return False, "model_not_allowed"
    return False, "insufficient_scope"


def compile_policy(rule_data: list[dict[str, Any]]) -> RolePolicy:
    return RolePolicy.compile(RuleConfig.model_validate(r) for r in rule_data)


@PROFILE
@given(rule_data=rules(), who=principals(), action=actions())
def test_policy_allows_exactly_when_one_matching_rule_grants_route_and_model(rule_data, who,
                                                                             action):
    decision = compile_policy(rule_data).decide(who, action)
    assert (decision.allowed, decision.code) == oracle(rule_data, who, action)
    if decision.allowed:
        granting = next(r for r in rule_data if r["name"] == decision.rule)
        assert caller_matches(granting["when"], who)
        assert grants_route(granting["allow"], action)
        assert grants_model(granting["allow"], action.model)


@PROFILE
@given(rule_data=rules(), who=principals(), route=st.sampled_from(ACTIONS))
def test_allowed_models_are_exactly_the_models_the_oracle_allows(rule_data, who, route):
    group, path = route
    listed = compile_policy(rule_data).allowed_models(who, group, path, MODELS)
    assert listed == [m for m in MODELS if oracle(rule_data, who, Action(group, path, m))[0]]


@PROFILE
@given(who=principals(), action=actions())
def test_empty_policy_denies_every_principal_every_action(who, action):
    decision = RolePolicy.compile([]).decide(who, action)
    assert not decision.allowed
    assert decision.rule is None
    assert decision.code == "insufficient_scope"
