"""Each identity-provider preset against the real process, each IdP a local server with its own
keys: Entra v1/v2 (`roles`), Keycloak (realm and client roles), Okta (`scp` array, `groups`,
an EC key), Auth0 (`permissions`, `typ: at+jwt`) and a generic issuer found by OIDC discovery.
One allowed and at least one denied call each; a denied call never reaches the upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.e2e.calls import bearer, chat, config_yaml, error_code, rule, upstream_model
from tests.support.keys import (
    ENTRA_AUDIENCE, ENTRA_V1_ISSUER, ENTRA_V2_ISSUER, TENANT, KeyPair, claims, entra_app_claims,
)
from tests.support.process import GatewayProcess
from tests.support.servers import LocalIdp, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ENTRA_KEY = KeyPair.rsa("entra-1")
KEYCLOAK_KEY = KeyPair.rsa("keycloak-1")
OKTA_KEY = KeyPair.ec("okta-ec-1")
AUTH0_KEY = KeyPair.rsa("auth0-1")
PARTNER_KEY = KeyPair.rsa("partner-1", alg="PS256")

KEYCLOAK_CLIENT = "llm-gateway"
OKTA_AUDIENCE = "api://default"
AUTH0_AUDIENCE = "https://llm.example.com"


@dataclass
class Idps:
    entra: LocalIdp
    keycloak: LocalIdp
    okta: LocalIdp
    auth0: LocalIdp
    partner: LocalIdp


def issuers(idps: Idps) -> list[dict[str, Any]]:
    entra = {"preset": "entra", "jwks_url": idps.entra.jwks_url, "audiences": [ENTRA_AUDIENCE],
             "tenants": [TENANT]}
    return [
        {"name": "entra-v1", "issuer": ENTRA_V1_ISSUER, **entra},
        {"name": "entra-v2", "issuer": ENTRA_V2_ISSUER, **entra},
        {"name": "keycloak", "preset": "keycloak", "issuer": idps.keycloak.issuer,
         "jwks_url": idps.keycloak.jwks_url, "audiences": [KEYCLOAK_CLIENT],
         "resource_client": KEYCLOAK_CLIENT},
        {"name": "okta", "preset": "okta", "issuer": idps.okta.issuer,
         "jwks_url": idps.okta.jwks_url, "audiences": [OKTA_AUDIENCE]},
        {"name": "auth0", "preset": "auth0", "issuer": idps.auth0.issuer,
         "jwks_url": idps.auth0.jwks_url, "audiences": [AUTH0_AUDIENCE],
         "token_types": ["at+jwt"]},
        {"name": "partner", "preset": "generic", "issuer": idps.partner.issuer,
         "discovery_url": idps.partner.discovery_url, "audiences": ["rolegate"]},
    ]


POLICY = [
    rule("entra-services", {"issuers": ["entra-v1", "entra-v2"], "roles": ["LiteLLM.Admin"]},
         ["inference", "info"], ["*"]),
    rule("keycloak-llm-users", {"issuers": ["keycloak"], "roles": ["llm-user"]},
         ["inference"], ["gpt-4o-mini"]),
    rule("okta-invokers", {"issuers": ["okta"], "scopes": ["llm.invoke"]},
         ["inference"], ["gpt-4o-mini"]),
    rule("okta-data-science", {"issuers": ["okta"], "groups": ["Data Science"]},
         ["inference"], ["*"]),
    rule("auth0-invokers", {"issuers": ["auth0"], "scopes": ["invoke:models"]},
         ["inference"], ["gpt-4o-mini"]),
    rule("partner-users", {"issuers": ["partner"], "roles": ["llm.user"]},
         ["inference"], ["gpt-4o-mini"]),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def idps() -> AsyncIterator[Idps]:
    async with (LocalIdp(ENTRA_KEY) as entra,
                LocalIdp(KEYCLOAK_KEY, issuer_path="/realms/platform") as keycloak,
                LocalIdp(OKTA_KEY, issuer_path="/oauth2/default") as okta,
                LocalIdp(AUTH0_KEY, issuer_path="/") as auth0,
                LocalIdp(PARTNER_KEY) as partner):
        yield Idps(entra, keycloak, okta, auth0, partner)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(idps: Idps, shared_upstream: RecordingUpstream,
                 workdir: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = config_yaml(
        models=[upstream_model(name, shared_upstream.url) for name in ("gpt-4o", "gpt-4o-mini")],
        issuers=issuers(idps), policy=POLICY)
    async with (GatewayProcess(config, workdir) as gateway,
                httpx.AsyncClient(base_url=gateway.url, timeout=10) as http):
        yield http


async def call(client: httpx.AsyncClient, token: str, model: str = "gpt-4o-mini") -> httpx.Response:
    return await client.post("/v1/chat/completions", json=chat(model), headers=bearer(token))


def assert_allowed(response: httpx.Response, upstream: RecordingUpstream, model: str) -> None:
    assert response.status_code == 200, response.text
    assert [r.json()["model"] for r in upstream.requests] == [model]


def assert_denied(response: httpx.Response, upstream: RecordingUpstream, code: str) -> None:
    assert response.status_code == 403, response.text
    assert error_code(response) == code
    assert upstream.requests == []


@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
async def test_entra_app_role_allows_and_its_absence_denies(
        version: int, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    allowed = ENTRA_KEY.sign(entra_app_claims(version, roles=["LiteLLM.Admin"]), {"typ": "JWT"})
    denied = ENTRA_KEY.sign(entra_app_claims(version, scp="LiteLLM.Admin"), {"typ": "JWT"})

    assert_denied(await call(client, denied, "gpt-4o"), upstream, "insufficient_scope")
    assert_allowed(await call(client, allowed, "gpt-4o"), upstream, "gpt-4o")


def keycloak_claims(idps: Idps, *, realm: list[str], client_roles: dict[str, list[str]]
                    ) -> dict[str, Any]:
    return claims(idps.keycloak.issuer, [KEYCLOAK_CLIENT, "account"], typ="Bearer",
                  azp="batch-service", realm_access={"roles": realm},
                  resource_access={name: {"roles": roles} for name, roles in client_roles.items()})


@pytest.mark.parametrize("roles", [
    {"realm": ["llm-user", "offline_access"], "client_roles": {}},
    {"realm": ["offline_access"], "client_roles": {KEYCLOAK_CLIENT: ["llm-user"]}},
], ids=["realm-role", "client-role"])
async def test_keycloak_realm_or_gateway_client_role_allows(
        roles: dict[str, Any], idps: Idps, client: httpx.AsyncClient,
        upstream: RecordingUpstream) -> None:
    token = KEYCLOAK_KEY.sign(keycloak_claims(idps, **roles))

    assert_allowed(await call(client, token), upstream, "gpt-4o-mini")


async def test_keycloak_role_of_another_client_denies(
        idps: Idps, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    token = KEYCLOAK_KEY.sign(keycloak_claims(
        idps, realm=["offline_access"], client_roles={"reporting": ["llm-user"]}))

    assert_denied(await call(client, token), upstream, "insufficient_scope")


async def test_keycloak_role_does_not_grant_a_model_outside_its_rule(
        idps: Idps, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    token = KEYCLOAK_KEY.sign(keycloak_claims(idps, realm=["llm-user"], client_roles={}))

    assert_denied(await call(client, token, "gpt-4o"), upstream, "model_not_allowed")


def okta_token(idps: Idps, **extra: Any) -> str:
    return OKTA_KEY.sign(claims(idps.okta.issuer, OKTA_AUDIENCE, cid="0oa1service", **extra))


async def test_okta_scope_array_allows(idps: Idps, client: httpx.AsyncClient,
                                       upstream: RecordingUpstream) -> None:
    token = okta_token(idps, scp=["openid", "llm.invoke"])

    assert_allowed(await call(client, token), upstream, "gpt-4o-mini")


async def test_okta_group_allows_every_model(idps: Idps, client: httpx.AsyncClient,
                                             upstream: RecordingUpstream) -> None:
    token = okta_token(idps, scp=["openid"], groups=["Everyone", "Data Science"])

    assert_allowed(await call(client, token, "gpt-4o"), upstream, "gpt-4o")


async def test_okta_without_the_scope_or_group_denies(
        idps: Idps, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    token = okta_token(idps, scp=["openid", "profile"], groups=["Marketing"])

    assert_denied(await call(client, token), upstream, "insufficient_scope")


def auth0_token(idps: Idps, **extra: Any) -> str:
    body = claims(idps.auth0.issuer, [AUTH0_AUDIENCE, f"{idps.auth0.url}/userinfo"],
                  azp="auth0-client", scope="openid profile", **extra)
    return AUTH0_KEY.sign(body, {"typ": "at+jwt"})


async def test_auth0_permission_allows(idps: Idps, client: httpx.AsyncClient,
                                       upstream: RecordingUpstream) -> None:
    token = auth0_token(idps, permissions=["read:usage", "invoke:models"])

    assert_allowed(await call(client, token), upstream, "gpt-4o-mini")


async def test_auth0_without_the_permission_denies(
        idps: Idps, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    token = auth0_token(idps, permissions=["read:usage"])

    assert_denied(await call(client, token), upstream, "insufficient_scope")


async def test_auth0_token_of_plain_jwt_type_is_not_accepted(
        idps: Idps, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    body = claims(idps.auth0.issuer, AUTH0_AUDIENCE, permissions=["invoke:models"])

    response = await call(client, AUTH0_KEY.sign(body, {"typ": "JWT"}))

    assert response.status_code == 401
    assert error_code(response) == "invalid_token_type"
    assert upstream.requests == []


async def test_generic_issuer_found_by_discovery_allows_and_denies(
        idps: Idps, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    allowed = PARTNER_KEY.sign(claims(idps.partner.issuer, "rolegate", roles=["llm.user"]))
    denied = PARTNER_KEY.sign(claims(idps.partner.issuer, "rolegate", roles=["llm.viewer"]))

    assert_denied(await call(client, denied), upstream, "insufficient_scope")
    assert_allowed(await call(client, allowed), upstream, "gpt-4o-mini")
    assert idps.partner.discovery_fetches >= 1


async def test_a_token_of_one_idp_signed_with_anothers_key_is_refused(
        idps: Idps, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    forged = KeyPair(OKTA_KEY.kid, "RS256", KEYCLOAK_KEY.private_key).sign(
        claims(idps.okta.issuer, OKTA_AUDIENCE, scp=["llm.invoke"]))

    response = await call(client, forged)

    assert response.status_code == 401
    assert upstream.requests == []
