"""`explain()`: the gateway's own verifier and policy, step by step, for one token."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.config.load import validate_settings
from rolegate.config.model import Settings
from rolegate.errors import NotFound
from rolegate.explain import explain, explain_key
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.keys import (
    ENTRA_AUDIENCE, ENTRA_V2_ISSUER, TENANT, KeyPair, entra_app_claims, jwks,
)

JWKS_URL = f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
CHAT = "/v1/chat/completions"


def seed_settings() -> Settings:
    return validate_settings({
        "models": [{"name": "gpt-4o", "provider": "mock"}],
        "auth": {"issuers": [{"name": "entra", "preset": "entra", "issuer": ENTRA_V2_ISSUER,
                              "jwks_url": JWKS_URL, "audiences": [ENTRA_AUDIENCE],
                              "tenants": [TENANT]}]},
        "policy": [{"name": "services", "when": {"roles": ["LiteLLM.Admin"]},
                    "allow": {"routes": ["inference", "info"], "models": ["*"]}}],
    }, source="<test>")


@pytest.fixture
def local_jwks(key_source: FakeKeySource, rsa_key: KeyPair) -> FakeKeySource:
    key_source.documents[JWKS_URL] = jwks(rsa_key)
    return key_source


async def explain_token(token: str, fetch: FakeKeySource, clock: FakeClock,
                        route: str = CHAT, model: str | None = "gpt-4o") -> Any:
    settings = seed_settings()
    return await explain(settings, list(settings.auth.issuers), token, route, model, fetch,
                         clock)


async def test_seed_token_without_roles_is_explained_as_a_403(local_jwks, rsa_key, clock):
    token = rsa_key.sign(entra_app_claims(2, now=clock.now), {"typ": "JWT"})

    report = await explain_token(token, local_jwks, clock)

    assert report.allowed is False
    assert report.status == 403
    assert report.is_verified
    assert "insufficient_scope" in report.summary
    assert "rule 'services' needs roles any of ['LiteLLM.Admin']" in report.summary
    assert [(name, ok) for name, ok, _ in report.steps] == [
        ("decode", True), ("issuer", True), ("verification", True)]
    assert [(r.name, r.unmet, r.grants_route, r.grants_model) for r in report.rules] == [
        ("services", ["roles any of ['LiteLLM.Admin']"], True, True)]
    assert report.principal is not None and report.principal.subject == "9f2b7c1e-app-object-id"


async def test_seed_token_with_the_role_is_explained_as_allowed(local_jwks, rsa_key, clock):
    token = rsa_key.sign(entra_app_claims(2, roles=["LiteLLM.Admin"], now=clock.now))

    report = await explain_token(token, local_jwks, clock)

    assert report.allowed is True
    assert report.status == 200
    assert report.summary.startswith("ALLOW")
    assert report.rules[0].is_granting


async def test_expired_token_fails_verification_and_the_policy_runs_on_unverified_claims(
        local_jwks, rsa_key, clock):
    token = rsa_key.sign(entra_app_claims(2, roles=["LiteLLM.Admin"], now=clock.now - 7200))

    report = await explain_token(token, local_jwks, clock)

    assert report.allowed is False
    assert report.status == 401
    assert report.is_verified is False
    verification = next(step for step in report.steps if step[0] == "verification")
    assert verification[1] is False and verification[2].startswith("token_expired")
    assert report.rules and report.rules[0].unmet == []
    assert "evaluated on unverified claims" in report.summary


async def test_model_listing_route_is_explained_without_a_model(local_jwks, rsa_key, clock):
    token = rsa_key.sign(entra_app_claims(2, roles=["LiteLLM.Admin"], now=clock.now))
    report = await explain_token(token, local_jwks, clock, route="/v1/models", model=None)
    assert report.action is not None and report.action.route == "info"
    assert report.allowed


async def test_azure_route_takes_the_model_from_the_path(local_jwks, rsa_key, clock):
    token = rsa_key.sign(entra_app_claims(2, roles=["LiteLLM.Admin"], now=clock.now))
    report = await explain_token(token, local_jwks, clock,
                                 route="/openai/deployments/gpt-4o/chat/completions", model=None)
    assert report.action is not None and report.action.model == "gpt-4o"


async def test_route_group_name_is_accepted_in_place_of_a_path(local_jwks, rsa_key, clock):
    token = rsa_key.sign(entra_app_claims(2, now=clock.now))
    report = await explain_token(token, local_jwks, clock, route="admin", model=None)
    assert report.status == 403
    assert report.rules[0].grants_route is False


async def test_token_of_an_unknown_issuer_is_explained(local_jwks, rsa_key, clock):
    body = entra_app_claims(2, now=clock.now)
    body["iss"] = "https://evil.example/"
    report = await explain_token(rsa_key.sign(body), local_jwks, clock)
    assert report.status == 401
    assert ("issuer", False) in [(name, ok) for name, ok, _ in report.steps]
    assert report.rules == []


async def test_garbage_token_is_explained_as_not_a_jwt(local_jwks, clock):
    report = await explain_token("not-a-jwt", local_jwks, clock)
    assert report.status == 401 and not report.allowed
    assert "not a well-formed JWT" in report.summary


async def test_unknown_route_path_is_a_not_found(local_jwks, rsa_key, clock):
    token = rsa_key.sign(entra_app_claims(2, now=clock.now))
    with pytest.raises(NotFound):
        await explain_token(token, local_jwks, clock, route="/v1/nothing")


@pytest.mark.parametrize(("route", "described"), [
    (CHAT, "model 'gpt-4o' on route group 'inference' (/v1/chat/completions)"),
    ("/v1/models/gpt-4o", "model 'gpt-4o' on route group 'info' (/v1/models/gpt-4o)"),
])
async def test_a_path_is_explained_with_the_name_of_its_route_group(route, described):
    report = await explain_key(seed_settings(), None, "rg-not-looked-up", route, "gpt-4o")
    assert report.action is not None and report.action.describe() == described


async def test_explain_shows_the_counters_a_rules_limits_and_budgets_use_for_the_caller(
        local_jwks, rsa_key, clock):
    settings = validate_settings({
        **seed_settings().model_dump(exclude_defaults=True, exclude={"policy", "budgets"}),
        "policy": [{"name": "services", "when": {"roles": ["LiteLLM.Admin"]},
                    "allow": {"routes": ["inference"], "models": ["*"], "budgets": ["org"],
                              "limits": {"daily_tokens": 200000, "per": "claims.tid"}}}],
        "budgets": [{"name": "org", "monthly_budget_usd": 2000, "per": "groups"}],
    }, source="<test>")
    token = rsa_key.sign(entra_app_claims(2, roles=["LiteLLM.Admin"], now=clock.now))

    report = await explain(settings, list(settings.auth.issuers), token, CHAT, "gpt-4o",
                           local_jwks, clock)
    limits = {name: detail for name, _, detail in report.steps if name.startswith("limits")}

    assert list(limits) == ["limits (rule services)", "limits (budget org)"]
    assert limits["limits (rule services)"].startswith(
        f"daily_tokens 200000 per claims.tid = {TENANT}; counters {{r:")
    assert limits["limits (budget org)"].startswith(
        "monthly_budget_usd 2000 per groups (none: shared by callers without one); counters {b:")


async def test_an_allowed_unknown_model_is_explained_as_the_gateways_404(local_jwks, rsa_key,
                                                                        clock):
    token = rsa_key.sign(entra_app_claims(2, roles=["LiteLLM.Admin"], now=clock.now))

    report = await explain_token(token, local_jwks, clock, model="gpt-5")

    assert report.allowed is False
    assert report.status == 404
    assert report.summary.startswith("404 model_not_found: The model 'gpt-5' does not exist.")
    assert "configured models: gpt-4o" in report.summary


async def test_a_wrong_audience_shows_the_tokens_aud_and_the_accepted_ones(local_jwks, rsa_key,
                                                                          clock):
    claims = entra_app_claims(2, roles=["LiteLLM.Admin"], now=clock.now)
    token = rsa_key.sign({**claims, "aud": "api://someone-else"})

    report = await explain_token(token, local_jwks, clock)

    assert report.status == 401
    name, is_ok, detail = report.steps[-1]
    assert (name, is_ok) == ("verification", False)
    assert detail.startswith("invalid_audience: ")
    assert detail.endswith(f"(the token's aud: 'api://someone-else'; "
                           f"accepted: {ENTRA_AUDIENCE!r})")


async def test_the_report_as_data_carries_the_decision_steps_and_rules(local_jwks, rsa_key,
                                                                       clock):
    token = rsa_key.sign(entra_app_claims(2, roles=["LiteLLM.Admin"], now=clock.now))

    data = (await explain_token(token, local_jwks, clock)).to_dict()

    assert (data["allowed"], data["status"]) == (True, 200)
    assert [step["name"] for step in data["steps"]] == ["decode", "issuer", "verification"]
    assert data["principal"]["roles"] == ["LiteLLM.Admin"]
    assert data["action"] == {"route": "inference", "path": CHAT, "model": "gpt-4o"}
    assert data["rules"] == [{"name": "services", "unmet": [], "grants_route": True,
                              "grants_model": True, "grants": True}]
    assert token not in str(data)
