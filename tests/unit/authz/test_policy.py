"""RolePolicy: who (`when`) may use which routes and models (`allow`); no rule, no access."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, McpTarget
from rolegate.authz.policy import RolePolicy
from rolegate.config.model import RuleConfig

CHAT = "/v1/chat/completions"


def policy_of(*rules: dict[str, Any]) -> RolePolicy:
    return RolePolicy.compile(RuleConfig.model_validate(rule) for rule in rules)


def rule(name: str = "r", routes: Any = ("inference",), models: Any = ("*",),
         **when: Any) -> dict[str, Any]:
    return {"name": name, "when": when, "allow": {"routes": list(routes), "models": list(models)}}


def who(**fields: Any) -> Principal:
    fields.setdefault("issuer", "idp")
    fields.setdefault("subject", "s")
    for name in ("roles", "scopes", "groups"):
        fields[name] = frozenset(fields.get(name, ()))
    return Principal(**fields)


def invoke(model: str = "gpt-4o", path: str = CHAT) -> Action:
    return Action("inference", path, model)


@pytest.mark.parametrize(("when", "principal", "allowed"), [
    ({"roles": ["a", "b"]}, who(roles={"b"}), True),
    ({"roles": ["a", "b"]}, who(roles={"c"}), False),
    ({"roles": ["a"]}, who(), False),
    ({"roles": ["a"], "scopes": ["s"]}, who(roles={"a"}, scopes={"s"}), True),
    ({"roles": ["a"], "scopes": ["s"]}, who(roles={"a"}), False),
    ({"roles": ["a"], "scopes": ["s"]}, who(scopes={"s"}), False),
    ({"scopes": ["s"]}, who(roles={"s"}), False),
    ({"roles": ["a"]}, who(scopes={"a"}, groups={"a"}), False),
    ({"groups": ["g1", "g2"]}, who(groups={"g2", "g9"}), True),
    ({"groups": ["g1"]}, who(groups={"G1"}), False),
    ({"clients": ["svc"]}, who(client_id="svc"), True),
    ({"clients": ["svc"]}, who(client_id="other"), False),
    ({"clients": ["svc"]}, who(), False),
    ({"subjects": ["s"]}, who(subject="s"), True),
    ({"subjects": ["s"]}, who(subject="t"), False),
    ({"issuers": ["entra"]}, who(issuer="entra"), True),
    ({"issuers": ["entra"]}, who(issuer="okta"), False),
    ({"tenants": ["t1"]}, who(tenant="t1"), True),
    ({"tenants": ["t1"]}, who(tenant="t2"), False),
    ({"tenants": ["t1"]}, who(), False),
    ({"issuers": ["entra"], "tenants": ["t1"], "roles": ["a"]},
     who(issuer="entra", tenant="t1", roles={"a"}), True),
    ({"issuers": ["entra"], "tenants": ["t1"], "roles": ["a"]},
     who(issuer="entra", tenant="t2", roles={"a"}), False),
    ({"authenticated": True}, who(), True),
    ({"authenticated": True, "roles": ["a"]}, who(), False),
    ({"authenticated": True, "roles": ["a"]}, who(roles={"a"}), True),
], ids=[
    "roles-any-of", "roles-none-held", "roles-empty-principal", "all-of-both-held",
    "all-of-scope-missing", "all-of-role-missing", "scope-is-not-a-role", "role-only-in-roles",
    "groups-any-of", "groups-case-sensitive", "client-match", "client-other", "client-absent",
    "subject-match", "subject-other", "issuer-match", "issuer-other", "tenant-match",
    "tenant-other", "tenant-absent", "three-keys-all-held", "three-keys-one-missing",
    "authenticated-everyone", "authenticated-plus-role-missing", "authenticated-plus-role-held",
])
def test_lists_are_any_of_and_keys_are_all_of(when, principal, allowed):
    decision = policy_of(rule(**when)).decide(principal, invoke())
    assert decision.allowed is allowed
    assert decision.rule == ("r" if allowed else None)


@pytest.mark.parametrize(("claims", "accepted", "allowed"), [
    ({"tier": "gold"}, ["gold"], True),
    ({"tier": "golden"}, ["gold"], False),
    ({"tier": "Gold"}, ["gold"], False),
    ({"tier": "silver gold"}, ["gold"], True),
    ({"tier": "silver gold"}, ["silver gold"], True),
    ({"tier": ["bronze", "gold"]}, ["gold"], True),
    ({"tier": ["bronze"]}, ["gold"], False),
    ({"tier": [["gold"]]}, ["gold"], False),
    ({"tier": [1, "gold"]}, ["gold"], True),
    ({"tier": {"gold": True}}, ["gold"], False),
    ({"tier": 5}, ["5"], False),
    ({"tier": True}, ["true", "True"], False),
    ({"tier": None}, ["gold"], False),
    ({}, ["gold"], False),
], ids=["string-equal", "string-prefix", "string-case", "space-delimited", "whole-string",
        "array-contains", "array-without", "nested-array", "mixed-array", "object",
        "number-is-not-a-string", "bool-is-not-a-string", "null", "missing"])
def test_claim_conditions(claims, accepted, allowed):
    policy = policy_of(rule(claims={"tier": accepted}))
    assert policy.decide(who(claims=claims), invoke()).allowed is allowed


def test_claim_condition_reads_a_dotted_path():
    policy = policy_of(rule(claims={"app_metadata.tier": ["gold"]}))
    assert policy.decide(who(claims={"app_metadata": {"tier": "gold"}}), invoke()).allowed
    assert not policy.decide(who(claims={"app_metadata": {"tier": "tin"}}), invoke()).allowed


def test_every_claim_condition_must_hold():
    policy = policy_of(rule(claims={"tier": ["gold"], "dept": ["ml"]}))
    assert policy.decide(who(claims={"tier": "gold", "dept": "ml"}), invoke()).allowed
    assert not policy.decide(who(claims={"tier": "gold", "dept": "hr"}), invoke()).allowed


@pytest.mark.parametrize(("pattern", "model", "allowed"), [
    ("*", "anything", True),
    ("gpt-4o*", "gpt-4o", True),
    ("gpt-4o*", "gpt-4o-mini", True),
    ("gpt-4o*", "gpt-4", False),
    ("gpt-4o", "gpt-4o-mini", False),
    ("gpt-4o", "xgpt-4o", False),
    ("gpt-*", "GPT-4o", False),
    ("llama-?-8b", "llama-3-8b", True),
    ("llama-?-8b", "llama-31-8b", False),
    ("[eg]*", "echo", True),
    ("[eg]*", "llama", False),
    ("org/*", "org/model", True),
])
def test_model_globs(pattern, model, allowed):
    assert policy_of(rule(roles=["a"], models=[pattern])).decide(
        who(roles={"a"}), invoke(model)).allowed is allowed


def test_rule_without_models_grants_routes_that_name_no_model_only():
    policy = policy_of(rule(roles=["a"], routes=["inference", "admin"], models=[]))
    assert not policy.decide(who(roles={"a"}), invoke("gpt-4o")).allowed
    assert policy.decide(who(roles={"a"}), Action("admin", "/admin/policy")).allowed


@pytest.mark.parametrize(("routes", "action", "allowed"), [
    (["/v1/audio/*"], Action("audio", "/v1/audio/speech"), True),
    (["/v1/audio/*"], Action("audio", "/v1/audio/a/b"), True),
    (["/v1/audio/*"], Action("audio", "/v1/audiox"), False),
    (["/admin/policy"], Action("admin", "/admin/policy"), True),
    (["/admin/policy"], Action("admin", "/admin/policy/x"), False),
    (["/admin/policy"], Action("admin", "/admin/other"), False),
    (["info"], Action("info", "/v1/models"), True),
    (["info"], Action("inference", CHAT, "gpt-4o"), False),
    (["inference"], Action("info", "/v1/models"), False),
    (["admin"], Action("inference", CHAT, "gpt-4o"), False),
], ids=["glob", "glob-deep", "glob-prefix-only", "literal", "literal-not-prefix",
        "literal-other", "group", "info-is-not-inference", "inference-is-not-info",
        "admin-is-not-inference"])
def test_route_groups_and_path_patterns(routes, action, allowed):
    policy = policy_of(rule(roles=["a"], routes=routes, models=["*"]))
    assert policy.decide(who(roles={"a"}), action).allowed is allowed


def test_no_rule_for_the_route_is_insufficient_scope():
    policy = policy_of(rule(roles=["a"], routes=["info"]))
    decision = policy.decide(who(roles={"a"}), invoke())
    assert (decision.allowed, decision.code) == (False, "insufficient_scope")


def test_caller_not_matching_any_rule_is_insufficient_scope():
    decision = policy_of(rule(roles=["a"])).decide(who(roles={"b"}), invoke())
    assert decision.code == "insufficient_scope"


def test_route_granted_but_model_not_is_model_not_allowed():
    policy = policy_of(rule(roles=["a"], models=["gpt-4o-mini"]))
    decision = policy.decide(who(roles={"a"}), invoke("gpt-4o"))
    assert (decision.allowed, decision.code) == (False, "model_not_allowed")


def test_model_not_allowed_only_counts_rules_the_caller_matches():
    policy = policy_of(rule("mini", roles=["a"], models=["gpt-4o-mini"]),
                       rule("big", roles=["b"], models=["gpt-4o"]))
    decision = policy.decide(who(roles={"a"}), invoke("gpt-4o"))
    assert decision.code == "model_not_allowed"
    assert "rule 'big' needs roles any of ['b']" in decision.reason


def test_denial_message_names_the_rule_and_conditions_that_would_grant_it():
    policy = policy_of(rule("services", roles=["LiteLLM.Admin"]),
                       rule("tenant-users", scopes=["llm.invoke"], tenants=["t1"]),
                       rule("readers", roles=["Reader"], routes=["info"]))
    decision = policy.decide(who(roles={"Nobody"}, tenant="t2"), invoke())

    assert "model 'gpt-4o' on route group 'inference'" in decision.reason
    assert "roles=['Nobody'], scopes=[], groups=[]" in decision.reason
    assert "rule 'services' needs roles any of ['LiteLLM.Admin']" in decision.reason
    assert "rule 'tenant-users' needs scopes any of ['llm.invoke']; tenant one of ['t1']" \
        in decision.reason
    assert "readers" not in decision.reason


def test_denial_message_says_when_no_rule_grants_it_to_anyone():
    decision = policy_of(rule(roles=["a"], routes=["info"])).decide(who(), invoke())
    assert "No rule grants it to anyone." in decision.reason


def test_denial_message_contains_no_claim_values():
    principal = who(claims={"email": "ada@example.com", "secret": "hunter2"})
    decision = policy_of(rule(claims={"tier": ["gold"]})).decide(principal, invoke())
    assert "hunter2" not in decision.reason and "ada@example.com" not in decision.reason
    assert "claim tier containing one of ['gold']" in decision.reason


def test_first_granting_rule_is_named_in_the_decision():
    policy = policy_of(rule("narrow", roles=["a"], models=["gpt-4o-mini"]),
                       rule("wide", roles=["a"], models=["*"]))
    assert policy.decide(who(roles={"a"}), invoke("gpt-4o")).rule == "wide"
    assert policy.decide(who(roles={"a"}), invoke("gpt-4o-mini")).rule == "narrow"


def test_allow_is_granted_by_one_rule_not_pieced_together_from_two():
    """Route from one rule and model from another must not combine into an allow."""
    policy = policy_of(rule("info-all", roles=["a"], routes=["info"], models=["*"]),
                       rule("chat-mini", roles=["a"], routes=["inference"],
                            models=["gpt-4o-mini"]))
    assert not policy.decide(who(roles={"a"}), invoke("gpt-4o")).allowed


def test_allowed_models_lists_only_models_some_rule_grants():
    policy = policy_of(rule("mini", roles=["a"], routes=["info"], models=["gpt-4o-mini"]),
                       rule("llama", groups=["ml"], routes=["info"], models=["llama-*"]),
                       rule("chat", roles=["a"], routes=["inference"], models=["*"]))
    models = ["gpt-4o", "gpt-4o-mini", "llama-3-8b", "echo"]

    assert policy.allowed_models(who(roles={"a"}), "info", "/v1/models", models) == \
        ["gpt-4o-mini"]
    assert policy.allowed_models(who(roles={"a"}, groups={"ml"}), "info", "/v1/models",
                                 models) == ["gpt-4o-mini", "llama-3-8b"]
    assert policy.allowed_models(who(), "info", "/v1/models", models) == []


def test_empty_policy_denies_everything():
    policy = policy_of()
    for action in (invoke(), Action("info", "/v1/models"), Action("admin", "/admin/policy")):
        decision = policy.decide(who(roles={"admin"}), action)
        assert not decision.allowed
        assert decision.code == "insufficient_scope"


# --- groups from a claim sent as one string ----------------------------------------------------

def test_a_group_name_with_spaces_matches_only_as_a_whole():
    """`groups: "Data Science"` in a token is one group (see test_claims.py): a rule for the
    group `Data` must not match it, a rule for `Data Science` must."""
    token_groups = {"Data Science"}
    assert policy_of(rule(groups=["Data Science"])).decide(
        who(groups=token_groups), invoke()).allowed
    assert not policy_of(rule(groups=["Data"])).decide(who(groups=token_groups), invoke()).allowed
    assert not policy_of(rule(groups=["Science"])).decide(
        who(groups=token_groups), invoke()).allowed


# --- rules with several model globs ------------------------------------------------------------

MODELS = ["gpt-4o-mini", "llama-*-8b", "org/*"]


@pytest.mark.parametrize(("model", "allowed"), [
    ("gpt-4o-mini", True),
    ("llama-3-8b", True),
    ("llama-3.1-8b", True),
    ("org/model", True),
    ("gpt-4o", False),
    ("gpt-4o-mini-2024", False),
    ("xgpt-4o-mini", False),
    ("llama-3-70b", False),
    ("other/org/model", False),
    ("", False),
], ids=["first-glob", "second-glob", "second-glob-with-dot", "third-glob", "none-of-them",
        "first-glob-prefix-only", "first-glob-suffix-only", "second-glob-other-size",
        "third-glob-not-at-start", "empty"])
def test_a_rule_with_several_model_globs_grants_a_model_matching_any_one_in_full(
        model, allowed):
    policy = policy_of(rule(roles=["a"], models=MODELS))
    decision = policy.decide(who(roles={"a"}), invoke(model))
    assert decision.allowed is allowed
    assert decision.code == ("allowed" if allowed else "model_not_allowed")


def test_several_model_globs_keep_their_own_anchors():
    """Joined into one pattern, `a|b` must not let `a` match only a prefix and `b` a suffix."""
    policy = policy_of(rule(roles=["a"], models=["gpt-4o", "mini"]))
    assert not policy.decide(who(roles={"a"}), invoke("gpt-4o-mini")).allowed
    assert not policy.decide(who(roles={"a"}), invoke("gpt-4omini")).allowed
    assert policy.decide(who(roles={"a"}), invoke("mini")).allowed


@pytest.mark.parametrize(("path", "allowed"), [
    ("/v1/audio/speech", True), ("/admin/policy", True), ("/admin/policy/x", False),
    ("/v1/audiox", False), ("/v1/images", False),
])
def test_a_rule_with_several_route_paths_grants_a_path_matching_any_one(path, allowed):
    policy = policy_of(rule(roles=["a"], routes=["/v1/audio/*", "/admin/policy"]))
    assert policy.decide(who(roles={"a"}), Action("other", path)).allowed is allowed


def test_models_of_one_rule_do_not_leak_into_another_rule():
    policy = policy_of(rule("mini", roles=["a"], models=["gpt-4o-mini", "echo"]),
                       rule("llama", roles=["b"], models=["llama-*", "mistral-*"]))
    assert policy.decide(who(roles={"a"}), invoke("echo")).allowed
    assert not policy.decide(who(roles={"a"}), invoke("llama-3-8b")).allowed
    assert policy.decide(who(roles={"b"}), invoke("mistral-7b")).rule == "llama"
    assert not policy.decide(who(roles={"b"}), invoke("gpt-4o-mini")).allowed


# --- a credential limited to some models (an API key's `models`) -------------------------------

@pytest.mark.parametrize(("limit", "model", "allowed"), [
    (("gpt-4o-mini",), "gpt-4o-mini", True),
    (("gpt-4o-mini",), "gpt-4o", False),
    (("gpt-4o-mini", "llama-*"), "llama-3-8b", True),
    (("gpt-4o-mini", "llama-*"), "echo", False),
    ((), "gpt-4o", False),
    (None, "gpt-4o", True),
], ids=["listed", "not-listed", "second-glob", "none-of-the-globs", "empty-limit", "no-limit"])
def test_a_credential_limited_to_models_gets_only_those_even_when_a_rule_grants_more(
        limit, model, allowed):
    policy = policy_of(rule(roles=["a"], models=["*"]))
    decision = policy.decide(who(roles={"a"}, allowed_models=limit), invoke(model))
    assert decision.allowed is allowed
    assert decision.code == ("allowed" if allowed else "model_not_allowed")


def test_a_credential_limit_does_not_grant_what_no_rule_grants():
    policy = policy_of(rule(roles=["a"], models=["gpt-4o-mini"]))
    decision = policy.decide(who(roles={"a"}, allowed_models=("gpt-4o",)), invoke("gpt-4o"))
    assert not decision.allowed


def test_a_credential_limited_to_models_may_still_use_routes_without_a_model():
    policy = policy_of(rule(roles=["a"], routes=["info"], models=[]))
    assert policy.decide(who(roles={"a"}, allowed_models=("gpt-4o",)),
                         Action("info", "/v1/models")).allowed


def test_a_credential_limit_refusal_names_the_models_it_is_limited_to():
    decision = policy_of(rule(roles=["a"])).decide(
        who(roles={"a"}, allowed_models=("gpt-4o-mini", "echo")), invoke("gpt-4o"))
    assert (decision.allowed, decision.rule) == (False, None)
    assert decision.reason == ("This credential is limited to models ['gpt-4o-mini', 'echo']; "
                               "model 'gpt-4o' on route group 'inference' "
                               "(/v1/chat/completions) is not among them.")


# --- what a denial says ------------------------------------------------------------------------

def test_a_denial_names_each_unmet_condition_of_a_granting_rule():
    policy = policy_of(rule("all", roles=["r"], scopes=["s"], groups=["g"], clients=["c"],
                            subjects=["u"], issuers=["i"], tenants=["t"],
                            claims={"tier": ["gold"]}))
    decision = policy.decide(who(), invoke())
    assert decision.reason == (
        "Access to model 'gpt-4o' on route group 'inference' (/v1/chat/completions) is not "
        "granted to this caller (roles=[], scopes=[], groups=[]). It would be granted by: "
        "rule 'all' needs roles any of ['r']; scopes any of ['s']; groups any of ['g']; "
        "client one of ['c']; subject one of ['u']; issuer one of ['i']; tenant one of ['t']; "
        "claim tier containing one of ['gold'].")


def test_a_denial_names_only_the_conditions_the_caller_fails():
    policy = policy_of(rule("two", roles=["r"], scopes=["s"]))
    decision = policy.decide(who(roles={"r"}), invoke())
    assert decision.reason.endswith("It would be granted by: rule 'two' needs scopes any of "
                                    "['s'].")


def test_a_denial_names_at_most_three_rules_joined_by_bars():
    policy = policy_of(*(rule(f"r{n}", roles=[f"role{n}"]) for n in range(5)))
    reason = policy.decide(who(), invoke()).reason
    assert "It would be granted by: rule 'r0' needs roles any of ['role0'] | rule 'r1' needs " \
        "roles any of ['role1'] | rule 'r2' needs roles any of ['role2']." in reason
    assert "r3" not in reason


def test_a_denial_with_no_granting_rule_says_so():
    decision = policy_of(rule(roles=["a"], routes=["info"])).decide(who(roles={"a"}), invoke())
    assert decision.reason == (
        "Access to model 'gpt-4o' on route group 'inference' (/v1/chat/completions) is not "
        "granted to this caller (roles=['a'], scopes=[], groups=[]). No rule grants it to "
        "anyone.")


def test_an_allow_names_its_rule_in_the_reason():
    decision = policy_of(rule("users", roles=["a"])).decide(who(roles={"a"}), invoke())
    assert (decision.allowed, decision.rule, decision.reason, decision.code) == (
        True, "users", "granted by rule 'users'", "allowed")


def test_model_not_allowed_needs_a_rule_the_caller_matches_that_grants_the_route():
    policy = policy_of(rule("other-route", roles=["a"], routes=["info"], models=["x"]),
                       rule("not-matching", roles=["b"], models=["*"]))
    assert policy.decide(who(roles={"a"}), invoke()).code == "insufficient_scope"


def test_a_denial_hints_only_rules_that_grant_the_model_asked_for():
    policy = policy_of(rule("mini", roles=["a"], models=["gpt-4o-mini"]),
                       rule("big", roles=["b"], models=["gpt-4o"]))
    reason = policy.decide(who(), invoke("gpt-4o")).reason
    assert "rule 'big' needs roles any of ['b']" in reason
    assert "mini" not in reason
    assert policy.decide(who(), invoke("llama")).reason.endswith("No rule grants it to anyone.")


def mcp_rule(name: str, grant: dict[str, Any] | None, **when: Any) -> dict[str, Any]:
    allow: dict[str, Any] = {"routes": ["mcp"]}
    if grant is not None:
        allow["mcp"] = grant
    return {"name": name, "when": when, "allow": allow}


def on_mcp(server: str, kind: str = "server", name: str | None = None) -> Action:
    return Action("mcp", f"/mcp/{server}", mcp=McpTarget(server, kind, name))


MCP_POLICY = (mcp_rule("search", {"servers": ["forge*"], "tools": ["search_*"],
                                  "resources": ["docs://*"]}, roles=["dev"]),
              mcp_rule("bare", None, roles=["bare"]),
              mcp_rule("admin", {"servers": ["forge"], "tools": ["*"]}, scopes=["forge.admin"]),
              mcp_rule("writer", {"servers": ["forge"], "prompts": ["review*"]},
                       roles=["writer"]))


@pytest.mark.parametrize("roles, action, allowed", [
    (["dev"], on_mcp("forge"), True),
    (["dev"], on_mcp("forge-eu"), True),
    (["dev"], on_mcp("billing"), False),
    (["dev"], on_mcp("forge", "tool", "search_code"), True),
    (["dev"], on_mcp("forge", "tool", "delete_repo"), False),
    (["dev"], on_mcp("forge", "resource", "docs://readme"), True),
    (["dev"], on_mcp("forge", "prompt", "review"), False),  # no prompts granted
    (["writer"], on_mcp("forge", "prompt", "review-pr"), True),
    (["writer"], on_mcp("forge", "prompt", "summarize"), False),
    (["writer"], on_mcp("forge", "tool", "review-pr"), False),  # a prompt grant is no tool's
    (["dev"], on_mcp("forge", "widget", "x"), False),       # a kind no grant names
    (["bare"], on_mcp("forge"), False),                      # group mcp, no server
])
def test_mcp_grants_name_servers_and_their_tools_resources_and_prompts(roles, action, allowed):
    assert policy_of(*MCP_POLICY).decide(who(roles=roles), action).allowed is allowed


def test_a_refused_tool_names_what_is_missing_and_the_scope_that_would_grant_it():
    policy = policy_of(*MCP_POLICY)
    action = on_mcp("forge", "tool", "delete_repo")

    decision = policy.decide(who(roles=["dev"]), action)

    assert decision.code == "mcp_not_allowed"
    assert decision.reason.startswith("Access to tool 'delete_repo' of MCP server 'forge' on "
                                      "route group 'mcp'")
    assert policy.scopes_granting(action) == ["forge.admin"]
    assert policy.scopes_granting(on_mcp("billing")) == []
    assert policy.decide(who(roles=["x"]), action).code == "insufficient_scope"


def test_a_model_action_is_not_granted_by_an_mcp_grant():
    assert not policy_of(*MCP_POLICY).decide(who(roles=["dev"]), invoke()).allowed


def call(tool: str, arguments: dict[str, Any] | None, kind: str = "tool") -> Action:
    passed = None if arguments is None else tuple(arguments.items())
    return Action("mcp", "/mcp/forge", mcp=McpTarget("forge", kind, tool, passed))


@pytest.mark.parametrize("action, allowed", [
    (call("delete_repo", {"repository": "acme/site", "force": None}), True),
    (call("delete_repo", {"repository": "evil/site"}), False),
    (call("delete_repo", {}), False),                        # the constrained one is missing
    (call("delete_repo", {"repository": None}), False),      # not a string
    (call("delete_repo", None), True),                       # listing: constraints don't narrow
    (call("docs://x", {"repository": "evil/x"}, "resource"), False),  # no resource granted
])
def test_argument_constraints_narrow_the_tool_calls_a_rule_grants(action, allowed):
    policy = policy_of(mcp_rule("cleaners", {"servers": ["forge"], "tools": ["delete_*"],
                                             "arguments": {"repository": ["acme/*"]}},
                                roles=["cleaner"]))
    assert policy.decide(who(roles=["cleaner"]), action).allowed is allowed


@pytest.mark.parametrize(("globs", "value", "allowed"), [
    (["acme/*"], "acme/site", True),
    (["acme/*"], "acme/site/deeper", False),       # `*` stays within one segment
    (["acme/*"], "acme/../evil", False),           # a dot segment names another place
    (["acme/*"], "acme/..", False),
    (["acme/*"], "acme/.", False),
    (["acme/*"], "acme/%2E%2e", False),            # percent-encoded dots
    (["acme/*"], "acme/x%2f..%2fevil", False),     # percent-encoded separators
    (["acme/*"], "acme/x\\..\\evil", False),       # backslashes as separators
    (["acme/*"], "acme/a\\b", False),              # `*` does not cross a backslash either
    (["acme/*"], "acme/site\n", False),            # nor a control character
    (["acme/*"], "evil/acme/site", False),         # anchored at both ends
    (["acme/*"], "acme/v1.2...x", True),           # dots inside a segment are its own
    (["acme/**"], "acme/a/b/c", True),             # `**` spans segments
    (["acme/**"], "acme/a/../../evil", False),
    (["re?o"], "repo", True),
    (["re?o"], "re/o", False),
    (["a.b"], "axb", False),                       # every other character is itself
    (["acme/*", "beta/*"], "beta/x", True),
    ([], "anything", False),                       # no pattern: nothing holds
])
def test_argument_globs_read_values_as_paths(globs, value, allowed):
    policy = policy_of(mcp_rule("cleaners", {"servers": ["forge"], "tools": ["delete_*"],
                                             "arguments": {"repository": globs}},
                                roles=["cleaner"]))
    action = call("delete_repo", {"repository": value})
    assert policy.decide(who(roles=["cleaner"]), action).allowed is allowed


def test_a_rule_without_argument_constraints_grants_any_arguments_and_resources_ignore_them():
    policy = policy_of(mcp_rule("any", {"servers": ["forge"], "tools": ["*"],
                                        "resources": ["*"]}, roles=["x"]))
    assert policy.decide(who(roles=["x"]), call("delete_repo", {"repository": "z"})).allowed
    assert policy.decide(who(roles=["x"]), call("docs://a", {"q": "z"}, "resource")).allowed
