"""The case rolegate exists for, against the real process: Entra client-credentials tokens
(v1 and v2 shapes) for `api://LiteLLM_Proxy-dev`, a policy that requires app role
`LiteLLM.Admin`. Without it: 403 and the upstream sees nothing; with it: exactly one upstream call.

The IdP is local, so its key set is not at login.microsoftonline.com; the gateway matches `iss`
to the configuration, not to the host serving the keys, so the real Entra issuer strings apply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.e2e.calls import bearer, chat, config_yaml, error_code, rule, upstream_model
from tests.support.keys import (
    ENTRA_AUDIENCE, ENTRA_V1_ISSUER, ENTRA_V2_ISSUER, TENANT, KeyPair, entra_app_claims,
)
from tests.support.process import GatewayProcess
from tests.support.servers import LocalIdp, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ENTRA_KEY = KeyPair.rsa("entra-signing-key-1")
VERSIONS = pytest.mark.parametrize("version", [1, 2], ids=["entra-v1", "entra-v2"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(shared_upstream: RecordingUpstream,
                  workdir: Path) -> AsyncIterator[GatewayProcess]:
    async with LocalIdp(ENTRA_KEY) as idp:
        entra = {"preset": "entra", "jwks_url": idp.jwks_url, "audiences": [ENTRA_AUDIENCE],
                 "tenants": [TENANT]}
        config = config_yaml(
            models=[upstream_model("gpt-4o", shared_upstream.url)],
            issuers=[{"name": "entra-v1", "issuer": ENTRA_V1_ISSUER, **entra},
                     {"name": "entra-v2", "issuer": ENTRA_V2_ISSUER, **entra}],
            policy=[rule("services", {"roles": ["LiteLLM.Admin"]}, ["inference", "info"], ["*"])])
        async with GatewayProcess(config, workdir) as process:
            yield process


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        yield http


def entra_token(version: int, **extra: Any) -> str:
    return ENTRA_KEY.sign(entra_app_claims(version, **extra), {"typ": "JWT"})


@VERSIONS
async def test_app_token_without_roles_or_scopes_gets_403_and_upstream_sees_nothing(
        version: int, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    response = await client.post("/chat/completions", json=chat("gpt-4o"),
                                 headers=bearer(entra_token(version)))

    assert response.status_code == 403
    assert error_code(response) == "insufficient_scope"
    assert response.json()["error"]["type"] == "permission_error"
    assert "LiteLLM.Admin" in response.json()["error"]["message"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert upstream.requests == []


@VERSIONS
async def test_app_token_with_the_admin_role_reaches_the_upstream_exactly_once(
        version: int, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    token = entra_token(version, roles=["LiteLLM.Admin"])

    response = await client.post("/chat/completions", json=chat("gpt-4o"), headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "from upstream"
    assert [(r.method, r.path) for r in upstream.requests] == [("POST", "/v1/chat/completions")]
    sent = upstream.requests[0]
    assert sent.json() == chat("gpt-4o")
    assert token not in str(sent.headers)


@VERSIONS
async def test_app_token_with_another_role_only_is_refused(
        version: int, client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    response = await client.post("/v1/chat/completions", json=chat("gpt-4o"),
                                 headers=bearer(entra_token(version, roles=["LiteLLM.Reader"])))

    assert response.status_code == 403
    assert upstream.requests == []


async def test_v1_token_presented_with_the_v2_issuer_is_refused(
        client: httpx.AsyncClient, upstream: RecordingUpstream) -> None:
    claims = entra_app_claims(1, roles=["LiteLLM.Admin"])
    claims["iss"] = f"https://login.microsoftonline.com/{TENANT}/"  # v1 host, no /v2.0

    response = await client.post("/v1/chat/completions", json=chat("gpt-4o"),
                                 headers=bearer(ENTRA_KEY.sign(claims, {"typ": "JWT"})))

    assert response.status_code == 401
    assert error_code(response) == "unknown_issuer"
    assert upstream.requests == []
