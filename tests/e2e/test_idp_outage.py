"""The identity provider going down, against the real process. With `jwks_max_stale: 0` the
gateway fails closed: once the TTL passes and the key set cannot be fetched, valid tokens get
503 `jwks_unavailable` (never 200, never 401: the caller's token may be fine). A gateway started
while its IdP is unreachable is not ready and refuses requests until the IdP is back."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.calls import bearer, config_yaml, error_code, eventually, rule
from tests.support.keys import KeyPair, claims
from tests.support.process import GatewayProcess, free_port
from tests.support.servers import LocalIdp

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

AUDIENCE = "rolegate-e2e"
KEY = KeyPair.rsa("outage-key")


def config(issuer: str, jwks_url: str) -> str:
    return config_yaml(
        models=[{"name": "echo", "provider": "mock"}],
        issuers=[{"name": "fragile", "issuer": issuer, "jwks_url": jwks_url,
                  "audiences": [AUDIENCE], "jwks_ttl": 1, "jwks_max_stale": 0}],
        policy=[rule("users", {"roles": ["llm.user"]}, ["inference", "info"], ["*"])])


def token(issuer: str) -> str:
    return KEY.sign(claims(issuer, AUDIENCE, roles=["llm.user"]))


async def test_valid_tokens_get_503_once_the_ttl_passes_with_the_idp_down(
        tmp_path: Path) -> None:
    async with (
        LocalIdp(KEY) as idp,
        GatewayProcess(config(idp.issuer, idp.jwks_url), tmp_path,
                       ready_path="/health/ready") as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=10) as client,
    ):
        remembered = token(idp.issuer)  # accepted once, so the gateway knows it
        assert (await client.get("/v1/models", headers=bearer(remembered))).status_code == 200

        idp.is_down = True
        statuses: list[int] = []

        async def refused() -> bool:
            response = await client.get("/v1/models", headers=bearer(token(idp.issuer)))
            statuses.append(response.status_code)
            return response.status_code == 503
        assert await eventually(refused, within=15)
        assert set(statuses) <= {200, 503}

        for credential in (remembered, token(idp.issuer)):
            response = await client.get("/v1/models", headers=bearer(credential))
            assert response.status_code == 503
            assert error_code(response) == "jwks_unavailable"
            assert response.json()["error"]["type"] == "api_error"


async def test_gateway_started_while_the_idp_is_unreachable_refuses_until_it_is_back(
        tmp_path: Path) -> None:
    """Readiness recovers on its own once the IdP is back: an orchestrator sends no traffic to
    an unready gateway, so the key set cannot wait for a request to be fetched."""
    idp = LocalIdp(KEY)
    port = free_port()  # nothing listens here yet: connection refused, not a 503
    issuer = f"http://127.0.0.1:{port}"
    async with (
        GatewayProcess(config(issuer, f"{issuer}/jwks"), tmp_path) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=10) as client,
    ):
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/health/ready")).status_code == 503
        response = await client.get("/v1/models", headers=bearer(token(issuer)))
        assert response.status_code == 503
        assert error_code(response) == "jwks_unavailable"
        assert (await client.get("/v1/models")).status_code == 401

        await idp.start(port)
        try:
            async def ready() -> bool:
                return (await client.get("/health/ready")).status_code == 200
            assert await eventually(ready, within=20)
            assert idp.jwks_fetches >= 1
            response = await client.get("/v1/models", headers=bearer(token(issuer)))
            assert response.status_code == 200, response.text
        finally:
            await idp.stop()
    assert "Traceback" not in gateway.log()
