"""Principal: the caller as the rest of the gateway sees it, and how it describes itself."""

from __future__ import annotations

from rolegate.authn.principal import Principal


def test_a_principal_without_grants_holds_nothing():
    who = Principal(issuer="idp", subject="s")
    assert (who.roles, who.scopes, who.groups) == (frozenset(), frozenset(), frozenset())
    assert (who.client_id, who.tenant, who.end_user, who.key_id) == (None, None, None, None)
    assert who.allowed_models is None
    assert dict(who.claims) == {}


def test_the_description_lists_roles_scopes_and_groups_sorted():
    who = Principal(issuer="idp", subject="s", roles=frozenset({"b", "a"}),
                    scopes=frozenset({"z", "y"}), groups=frozenset({"g"}))
    assert who.describe() == "roles=['a', 'b'], scopes=['y', 'z'], groups=['g']"


def test_the_description_leaves_out_subject_claims_and_key():
    who = Principal(issuer="idp", subject="ada@example.com", key_id="key-1",
                    claims={"secret": "hunter2"}, tenant="t1", client_id="c1")
    assert who.describe() == "roles=[], scopes=[], groups=[]"



def test_an_attribute_is_the_values_read_for_that_claim_path():
    who = Principal(issuer="idp", subject="s",
                    attributes=(("department", ("sales",)), ("org.teams", ("a", "b"))))
    assert who.attribute("org.teams") == ("a", "b")
    assert who.attribute("department") == ("sales",)


def test_an_attribute_not_read_from_the_token_has_no_values():
    who = Principal(issuer="idp", subject="s", attributes=(("department", ("sales",)),))
    assert who.attribute("cost_center") == ()
    assert Principal(issuer="idp", subject="s").attribute("department") == ()
