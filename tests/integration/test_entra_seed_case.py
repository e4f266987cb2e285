"""The case rolegate exists for: an Entra client-credentials token with no app role and no scope
must not reach the upstream; one that carries the app role does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fetch import FakeKeySource
from tests.support.keys import (
    ENTRA_AUDIENCE, ENTRA_V1_ISSUER, ENTRA_V2_ISSUER, OTHER_TENANT, TENANT, KeyPair,
    entra_app_claims, jwks,
)

JWKS_URL = f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def entra_settings(upstream_url: str, issuer: str, **issuer_extra: Any) -> dict[str, Any]:
    return {
        "models": [{"name": "gpt-4o", "provider": "openai-compatible",
                    "api_base": f"{upstream_url}/v1"}],
        "auth": {"issuers": [{"name": "entra", "preset": "entra", "issuer": issuer,
                              "jwks_url": JWKS_URL, "audiences": [ENTRA_AUDIENCE],
                              **issuer_extra}]},
        "policy": [{"name": "services", "when": {"roles": ["LiteLLM.Admin"]},
                    "allow": {"routes": ["inference", "info"], "models": ["*"]}}],
    }


@pytest.fixture
def entra_keys(key_source: FakeKeySource, rsa_key: KeyPair) -> KeyPair:
    key_source.documents[JWKS_URL] = jwks(rsa_key)
    return rsa_key


@pytest.mark.parametrize(("version", "issuer"), [(1, ENTRA_V1_ISSUER), (2, ENTRA_V2_ISSUER)],
                         ids=["entra-v1", "entra-v2"])
async def test_token_without_roles_or_scopes_is_refused_and_upstream_sees_nothing(
        version, issuer, upstream, entra_keys, client_for, settings_from):
    client = client_for(settings_from(entra_settings(upstream.url, issuer)))
    token = entra_keys.sign(entra_app_claims(version), {"typ": "JWT"})

    response = await client.post("/chat/completions", json=CHAT,
                                 headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert response.json()["error"]["type"] == "permission_error"
    assert "LiteLLM.Admin" in response.json()["error"]["message"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert upstream.requests == []


@pytest.mark.parametrize(("version", "issuer"), [(1, ENTRA_V1_ISSUER), (2, ENTRA_V2_ISSUER)],
                         ids=["entra-v1", "entra-v2"])
async def test_token_with_the_app_role_reaches_the_upstream(
        version, issuer, upstream, entra_keys, client_for, settings_from):
    client = client_for(settings_from(entra_settings(upstream.url, issuer)))
    token = entra_keys.sign(entra_app_claims(version, roles=["LiteLLM.Admin"]), {"typ": "JWT"})

    response = await client.post("/chat/completions", json=CHAT,
                                 headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "from upstream"
    assert [r.path for r in upstream.requests] == ["/v1/chat/completions"]
    assert upstream.requests[0].json()["model"] == "gpt-4o"
    assert "authorization" not in {h.lower() for h in upstream.requests[0].headers}


async def test_delegated_scope_alone_does_not_stand_in_for_the_app_role(
        upstream, entra_keys, client_for, settings_from):
    client = client_for(settings_from(entra_settings(upstream.url, ENTRA_V2_ISSUER)))
    token = entra_keys.sign(entra_app_claims(2, scp="LiteLLM.Admin user_impersonation"))

    response = await client.post("/v1/chat/completions", json=CHAT,
                                 headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert upstream.requests == []


async def test_token_of_another_tenant_signed_by_the_shared_key_is_refused(
        upstream, entra_keys, client_for, settings_from):
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    client = client_for(settings_from(entra_settings(upstream.url, template, tenants=[TENANT])))
    foreign = entra_keys.sign(entra_app_claims(2, roles=["LiteLLM.Admin"], tenant=OTHER_TENANT))
    own = entra_keys.sign(entra_app_claims(2, roles=["LiteLLM.Admin"]))

    refused = await client.post("/v1/chat/completions", json=CHAT,
                                headers={"Authorization": f"Bearer {foreign}"})
    accepted = await client.post("/v1/chat/completions", json=CHAT,
                                 headers={"Authorization": f"Bearer {own}"})

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_tenant"
    assert accepted.status_code == 200
    assert len(upstream.requests) == 1


async def test_iss_naming_one_tenant_with_tid_of_another_is_refused(
        upstream, entra_keys, client_for, settings_from):
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    client = client_for(settings_from(entra_settings(upstream.url, template, tenants=["*"])))
    mixed = entra_app_claims(2, roles=["LiteLLM.Admin"], tenant=OTHER_TENANT)
    mixed["tid"] = TENANT

    response = await client.post("/v1/chat/completions", json=CHAT,
                                 headers={"Authorization": f"Bearer {entra_keys.sign(mixed)}"})

    assert response.status_code == 401
    assert upstream.requests == []
