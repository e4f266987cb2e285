"""Claim presets and dotted paths: how each identity provider's token becomes a Principal."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rolegate.authn.claims import (
    MAX_ATTRIBUTE_VALUES, MISSING, ClaimMapping, attribute_values, claim_at, claim_values,
)
from rolegate.authn.principal import Principal
from rolegate.config.model import IssuerConfig


def principal_of(token_claims: dict[str, Any], /, **issuer: Any) -> Principal:
    config = IssuerConfig.model_validate({
        "name": "idp", "issuer": "https://idp.example.com", "jwks_url": "https://idp/keys",
        "audiences": ["aud"], **issuer})
    return ClaimMapping.for_issuer(config).to_principal(token_claims)


# --- dotted paths ------------------------------------------------------------------------------

@pytest.mark.parametrize(("claims", "path", "expected"), [
    ({"roles": ["a"]}, "roles", ["a"]),
    ({"realm_access": {"roles": ["a"]}}, "realm_access.roles", ["a"]),
    ({"a": {"b": {"c": "deep"}}}, "a.b.c", "deep"),
    ({"https://example.com/roles": ["ns"]}, "https://example.com/roles", ["ns"]),
    ({"a.b": "literal", "a": {"b": "nested"}}, "a.b", "literal"),
    ({"a": {"b": 1}}, "a.c", MISSING),
    ({"a": ["b"]}, "a.b", MISSING),
    ({"a": "string"}, "a.b", MISSING),
    ({}, "roles", MISSING),
], ids=["top-level", "nested", "three-deep", "namespaced-with-dots", "literal-key-first",
        "missing-leaf", "through-a-list", "through-a-string", "empty"])
def test_claim_at_reads_literal_keys_then_dotted_paths(claims, path, expected):
    assert claim_at(claims, path) is expected if expected is MISSING else \
        claim_at(claims, path) == expected


@pytest.mark.parametrize(("value", "split", "expected"), [
    ("a b  c", True, ["a", "b", "c"]),
    ("a b", False, ["a b"]),
    (["a", 1, None, "b", {"c": 1}], False, ["a", "b"]),
    (7, True, []),
    ({"a": 1}, True, []),
    (None, True, []),
    (True, False, []),
])
def test_claim_values_keeps_only_strings(value, split, expected):
    assert claim_values(value, split_spaces=split) == expected


# --- entra -------------------------------------------------------------------------------------

def test_entra_app_token_reads_roles_azp_oid_and_tid():
    who = principal_of({"roles": ["LiteLLM.Admin", "Reader"], "azp": "client-app",
                        "oid": "object-id", "sub": "pairwise-sub", "tid": "tenant-1",
                        "scp": "User.Read  Mail.Send"}, preset="entra")
    assert who.roles == frozenset({"LiteLLM.Admin", "Reader"})
    assert who.scopes == frozenset({"User.Read", "Mail.Send"})
    assert who.client_id == "client-app"
    assert who.subject == "object-id"
    assert who.tenant == "tenant-1"
    assert who.issuer == "idp"


def test_entra_v1_token_reads_appid_when_azp_is_absent():
    who = principal_of({"appid": "v1-client", "sub": "s"}, preset="entra")
    assert who.client_id == "v1-client"
    assert who.subject == "s"


def test_entra_groups_are_read_when_present():
    who = principal_of({"groups": ["g-1", "g-2"], "oid": "o"}, preset="entra")
    assert who.groups == frozenset({"g-1", "g-2"})


def test_entra_groups_overage_means_no_groups_and_logs_a_warning(caplog):
    claims = {"oid": "o", "_claim_names": {"groups": "src1"},
              "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/x/getMemberObjects"}}}
    with caplog.at_level(logging.WARNING, logger="rolegate.authn"):
        who = principal_of(claims, preset="entra")
    assert who.groups == frozenset()
    assert "groups overage" in caplog.text


def test_entra_roles_string_is_one_role_not_split():
    assert principal_of({"roles": "Admin Reader"}, preset="entra").roles == \
        frozenset({"Admin Reader"})


# --- keycloak ----------------------------------------------------------------------------------

KEYCLOAK_CLAIMS = {
    "sub": "user-1", "azp": "frontend", "scope": "openid profile",
    "realm_access": {"roles": ["offline_access", "llm-user"]},
    "resource_access": {"llm-gateway": {"roles": ["gateway-admin"]},
                        "other-client": {"roles": ["llm-superuser", "gateway-root"]}},
    "groups": ["/engineering"],
}


def test_keycloak_reads_realm_roles_and_the_configured_clients_roles():
    who = principal_of(KEYCLOAK_CLAIMS, preset="keycloak", resource_client="llm-gateway")
    assert who.roles == frozenset({"offline_access", "llm-user", "gateway-admin"})
    assert who.scopes == frozenset({"openid", "profile"})
    assert who.client_id == "frontend"
    assert who.groups == frozenset({"/engineering"})
    assert who.tenant is None


def test_keycloak_roles_of_other_clients_do_not_count():
    who = principal_of(KEYCLOAK_CLAIMS, preset="keycloak", resource_client="llm-gateway")
    assert "llm-superuser" not in who.roles
    assert "gateway-root" not in who.roles


def test_keycloak_without_resource_client_counts_realm_roles_only():
    who = principal_of(KEYCLOAK_CLAIMS, preset="keycloak")
    assert who.roles == frozenset({"offline_access", "llm-user"})


# --- okta, auth0, generic ----------------------------------------------------------------------

def test_okta_reads_scp_array_groups_and_cid():
    who = principal_of({"sub": "u@example.com", "cid": "0oa-client",
                        "scp": ["openid", "llm.invoke"], "groups": ["Data Science", "Everyone"],
                        "roles": ["r"]}, preset="okta")
    assert who.scopes == frozenset({"openid", "llm.invoke"})
    assert who.groups == frozenset({"Data Science", "Everyone"})
    assert who.client_id == "0oa-client"
    assert who.roles == frozenset({"r"})
    assert who.subject == "u@example.com"


def test_auth0_reads_permissions_and_scope_as_scopes_and_no_roles():
    who = principal_of({"sub": "auth0|1", "azp": "spa", "scope": "openid invoke:models",
                        "permissions": ["read:models", "invoke:models"], "roles": ["ignored"],
                        "groups": ["ignored"]}, preset="auth0")
    assert who.scopes == frozenset({"openid", "invoke:models", "read:models"})
    assert who.roles == frozenset()
    assert who.groups == frozenset()
    assert who.client_id == "spa"


def test_generic_reads_scope_and_scp_together():
    who = principal_of({"sub": "s", "scope": "a b", "scp": ["c"], "client_id": "c1"})
    assert who.scopes == frozenset({"a", "b", "c"})
    assert who.client_id == "c1"


def test_generic_with_custom_dotted_paths():
    who = principal_of({"sub": "s", "app_metadata": {"roles": ["gold"], "team": "ml"},
                        "ext": {"client": "svc"}, "roles": ["not-this-one"]},
                       claims={"roles": ["app_metadata.roles"], "groups": "app_metadata.team",
                               "client_id": ["ext.client"]})
    assert who.roles == frozenset({"gold"})
    assert who.groups == frozenset({"ml"})
    assert who.client_id == "svc"


def test_generic_with_namespaced_claim_names_containing_dots():
    who = principal_of({"sub": "s", "https://example.com/roles": ["ns-admin"],
                        "https://example.com/groups": ["ns-group"]},
                       claims={"roles": ["https://example.com/roles"],
                               "groups": ["https://example.com/groups"]})
    assert who.roles == frozenset({"ns-admin"})
    assert who.groups == frozenset({"ns-group"})


def test_override_paths_are_all_read_and_joined():
    who = principal_of({"sub": "s", "a": ["x"], "b": {"c": ["y"]}},
                       claims={"roles": ["a", "b.c", "missing"]})
    assert who.roles == frozenset({"x", "y"})


def test_first_present_path_wins_for_single_values():
    who = principal_of({"oid": "", "sub": "from-sub"}, preset="entra")
    assert who.subject == "from-sub"
    assert principal_of({}, preset="entra").subject == ""


@pytest.mark.parametrize("value", [7, ["a"], {"x": 1}, None, True])
def test_single_valued_claim_of_the_wrong_type_is_ignored(value):
    who = principal_of({"sub": value, "azp": value, "tid": value}, preset="entra")
    assert who.subject == "" and who.client_id is None and who.tenant is None


def test_end_user_claim_is_read_when_configured():
    assert principal_of({"sub": "s", "email": "ada@example.com"},
                        end_user_claim="email").end_user == "ada@example.com"
    assert principal_of({"sub": "s", "ext": {"user": "u1"}},
                        end_user_claim="ext.user").end_user == "u1"
    assert principal_of({"sub": "s", "email": "ada@example.com"}).end_user is None
    assert principal_of({"sub": "s"}, end_user_claim="email").end_user is None


def test_principal_keeps_a_read_only_copy_of_the_claims():
    original = {"sub": "s", "roles": ["a"]}
    who = principal_of(original)
    original["roles"] = ["changed"]
    assert who.claims["roles"] == ["a"]
    with pytest.raises(TypeError):
        who.claims["sub"] = "other"  # type: ignore[index]


def test_principal_description_names_what_it_holds_and_no_claim_values():
    who = principal_of({"sub": "s", "roles": ["b", "a"], "scope": "x", "secret": "hunter2"})
    assert who.describe() == "roles=['a', 'b'], scopes=['x'], groups=[]"


def test_keycloak_client_id_containing_dots_still_finds_its_roles():
    claims = {"realm_access": {"roles": []},
              "resource_access": {"com.example.gateway": {"roles": ["llm-user"]},
                                  "com.example": {"roles": ["not-ours"]}}}
    who = principal_of(claims, preset="keycloak", resource_client="com.example.gateway")
    assert who.roles == frozenset({"llm-user"})


# --- attributes: the claims limits and usage dimensions read ----------------------------------

def test_the_configured_claim_paths_are_carried_on_the_principal_and_nothing_else():
    config = IssuerConfig.model_validate({
        "name": "idp", "preset": "entra", "issuer": "https://idp.example.com",
        "jwks_url": "https://idp/keys", "audiences": ["aud"]})
    mapping = ClaimMapping.for_issuer(config, ("tid", "org.department", "absent"))

    principal = mapping.to_principal({
        "oid": "o-1", "sub": "pairwise", "uti": "token-id", "tid": "t-1",
        "org": {"department": "Research"}, "title": "unread"})

    assert principal.subject == "o-1"  # the stable id, never the token's own id
    assert principal.attributes == (("tid", ("t-1",)), ("org.department", ("Research",)),
                                    ("absent", ()))
    assert principal.attribute("org.department") == ("Research",)
    assert principal.attribute("title") == ()


@pytest.mark.parametrize(("value", "expected"), [
    ("one", ("one",)),
    (["b", "a", "b"], ("a", "b")),
    (42, ("42",)),
    ([True, None, {"x": 1}, 1.5, "", "ok", 3], ("3", "ok")),
    (False, ()),
    (MISSING, ()),
], ids=["string", "list-sorted-distinct", "integer", "only-strings-and-integers", "bool",
        "missing"])
def test_attribute_values_keep_strings_and_integers(value, expected):
    assert attribute_values(value) == expected


def test_attribute_values_are_bounded_in_number():
    values = attribute_values([f"g{n:04d}" for n in range(MAX_ATTRIBUTE_VALUES + 10)])

    assert len(values) == MAX_ATTRIBUTE_VALUES and values[0] == "g0000"


# --- groups sent as one string -----------------------------------------------------------------

@pytest.mark.parametrize("preset", ["entra", "keycloak", "okta", "generic"])
def test_a_groups_claim_sent_as_one_string_is_one_group_not_split_on_spaces(preset):
    """Group names may contain spaces (Okta's "Data Science"): unlike `scope` (RFC 8693), a
    string `groups` claim is never read as a space-delimited list."""
    who = principal_of({"sub": "s", "groups": "Data Science"}, preset=preset)
    assert who.groups == frozenset({"Data Science"})


def test_a_groups_array_keeps_names_with_spaces_whole():
    who = principal_of({"sub": "s", "groups": ["Data Science", "ml ops"]}, preset="okta")
    assert who.groups == frozenset({"Data Science", "ml ops"})


def test_a_scope_string_is_split_on_any_whitespace_but_a_roles_string_is_not():
    who = principal_of({"sub": "s", "scope": "a\tb\nc", "roles": "x y"})
    assert who.scopes == frozenset({"a", "b", "c"})
    assert who.roles == frozenset({"x y"})


# --- paths that need a second try, and settings that belong to one preset ----------------------

def test_a_dotted_key_that_leads_nowhere_falls_back_to_plain_nesting():
    claims = {"a.b": {"other": 1}, "a": {"b": {"c": "nested"}}}
    assert claim_at(claims, "a.b.c") == "nested"


def test_a_path_through_a_literal_dotted_key_in_the_middle():
    assert claim_at({"x": {"y.z": {"w": "found"}}}, "x.y.z.w") == "found"


def test_a_claim_whose_value_is_null_is_present_but_holds_no_values():
    who = principal_of({"sub": "s", "roles": None, "scp": None}, preset="entra")
    assert who.roles == frozenset() and who.scopes == frozenset()


@pytest.mark.parametrize("preset", ["entra", "okta", "auth0", "generic"])
def test_resource_client_counts_only_for_keycloak(preset):
    who = principal_of({"sub": "s", "resource_access": {"app": {"roles": ["leaked"]}},
                        "realm_access": {"roles": ["realm"]}}, preset=preset,
                       resource_client="app")
    assert "leaked" not in who.roles


def test_keycloak_roles_override_replaces_the_preset_paths():
    who = principal_of({"sub": "s", "realm_access": {"roles": ["realm"]}, "custom": ["c"]},
                       preset="keycloak", claims={"roles": ["custom"]})
    assert who.roles == frozenset({"c"})


def test_groups_overage_warning_names_the_issuer(caplog):
    claims = {"oid": "o", "_claim_names": {"groups": "src1"}}
    with caplog.at_level(logging.WARNING, logger="rolegate.authn"):
        principal_of(claims, preset="entra")
    assert [record.getMessage() for record in caplog.records] == [
        "token of idp has a groups overage; treating it as no groups"]


@pytest.mark.parametrize("claims", [
    {"oid": "o", "groups": ["g"], "_claim_names": {"groups": "src1"}},
    {"oid": "o", "_claim_names": {"roles": "src1"}},
    {"oid": "o", "_claim_names": "groups"},
], ids=["groups-present", "other-claim-overage", "claim-names-not-an-object"])
def test_no_overage_warning_without_a_groups_overage(claims, caplog):
    with caplog.at_level(logging.WARNING, logger="rolegate.authn"):
        principal_of(claims, preset="entra")
    assert caplog.records == []



# --- audiences: what the MCP resource check reads ----------------------------------------------

@pytest.mark.parametrize(("aud", "expected"), [
    ("https://gw.example/mcp/forge", {"https://gw.example/mcp/forge"}),
    (["api://gateway", "https://gw.example/mcp/forge"],
     {"api://gateway", "https://gw.example/mcp/forge"}),
    ("api://a api://b", {"api://a api://b"}),  # one string is one audience (RFC 7519 §4.1.3)
], ids=["string", "list", "string-with-a-space"])
def test_the_tokens_audiences_are_carried_on_the_principal(aud, expected):
    assert principal_of({"sub": "s", "aud": aud}).audiences == frozenset(expected)


def test_a_token_without_aud_has_no_audiences():
    assert principal_of({"sub": "s", "AUD": "x"}).audiences == frozenset()
