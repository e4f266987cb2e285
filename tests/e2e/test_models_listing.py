"""`/v1/models` through the real process lists, for each caller, exactly the models the policy
lets that caller use; `/v1/models/{id}` answers for those and refuses the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.e2e.calls import bearer, config_yaml, error_code, rule, upstream_model
from tests.support.keys import KeyPair, claims
from tests.support.process import GatewayProcess
from tests.support.servers import LocalIdp, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

KEY = KeyPair.rsa("models-key")
AUDIENCE = "rolegate-e2e"
MODELS = ["gpt-4o", "gpt-4o-mini", "llama-3-8b", "echo"]
POLICY = [
    rule("analysts", {"roles": ["analyst"]}, ["inference", "info"], ["gpt-4o-mini", "echo"]),
    rule("engineers", {"roles": ["engineer"]}, ["inference", "info"], ["gpt-4o*"]),
    rule("admins", {"roles": ["admin"]}, ["inference", "info"], ["*"]),
    rule("batch", {"roles": ["batch"]}, ["inference"], ["*"]),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(idp: LocalIdp, shared_upstream: RecordingUpstream,
                 workdir: Path) -> AsyncIterator[httpx.AsyncClient]:
    models = [upstream_model(name, shared_upstream.url) for name in MODELS[:-1]]
    config = config_yaml(
        models=[*models, {"name": "echo", "provider": "mock"}],
        issuers=[{"name": "corp", "issuer": idp.issuer, "jwks_url": idp.jwks_url,
                  "audiences": [AUDIENCE]}],
        policy=POLICY)
    async with (GatewayProcess(config, workdir) as gateway,
                httpx.AsyncClient(base_url=gateway.url, timeout=10) as http):
        yield http


def token(idp: LocalIdp, *roles: str) -> str:
    return KEY.sign(claims(idp.issuer, AUDIENCE, roles=list(roles)))


@pytest.mark.parametrize(("roles", "visible"), [
    (("analyst",), {"gpt-4o-mini", "echo"}),
    (("engineer",), {"gpt-4o", "gpt-4o-mini"}),
    (("analyst", "engineer"), {"gpt-4o", "gpt-4o-mini", "echo"}),
    (("admin",), set(MODELS)),
], ids=["analyst", "engineer", "analyst-and-engineer", "admin"])
async def test_model_list_shows_exactly_the_models_the_caller_may_use(
        roles: tuple[str, ...], visible: set[str], idp: LocalIdp, client: httpx.AsyncClient,
        upstream: RecordingUpstream) -> None:
    for path in ("/v1/models", "/models"):
        response = await client.get(path, headers=bearer(token(idp, *roles)))

        assert response.status_code == 200, response.text
        assert response.json()["object"] == "list"
        assert {card["id"] for card in response.json()["data"]} == visible
    assert upstream.requests == []


@pytest.mark.parametrize("roles", [("batch",), ("nobody",), ()], ids=["inference-only",
                                                                      "unknown-role", "no-role"])
async def test_caller_without_the_info_route_cannot_list_models(
        roles: tuple[str, ...], idp: LocalIdp, client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models", headers=bearer(token(idp, *roles)))

    assert response.status_code == 403
    assert error_code(response) == "insufficient_scope"


async def test_single_model_answers_only_for_a_model_the_caller_may_use(
        idp: LocalIdp, client: httpx.AsyncClient) -> None:
    analyst = bearer(token(idp, "analyst"))

    visible = await client.get("/v1/models/gpt-4o-mini", headers=analyst)
    hidden = await client.get("/v1/models/gpt-4o", headers=analyst)
    unknown = await client.get("/v1/models/no-such-model", headers=bearer(token(idp, "admin")))

    assert visible.status_code == 200
    assert visible.json()["id"] == "gpt-4o-mini"
    assert hidden.status_code == 403
    assert error_code(hidden) == "model_not_allowed"
    assert unknown.status_code == 404
    assert error_code(unknown) == "model_not_found"


async def test_model_list_without_a_credential_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")

    assert response.status_code == 401
    assert error_code(response) == "missing_token"
