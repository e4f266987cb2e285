"""rolegate against an OpenID provider it did not write: oidc-provider (a certified
implementation) issuing RFC 9068 `at+jwt` access tokens by client credentials, trusted through
discovery only. Denied requests must leave the recording upstream untouched."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from tests.interop.conftest import gateway_config, token
from tests.interop.idp import run_provider, write_rsa_jwks
from tests.support.process import GatewayProcess, free_port
from tests.support.servers import RecordingUpstream

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
KEYS_LOADED = "loaded 1 signing key(s) for issuer oidc"


async def chat(base: str, bearer: str, model: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        return await client.post("/v1/chat/completions", json={"model": model, **CHAT},
                                 headers={"Authorization": f"Bearer {bearer}"})


async def test_role_from_the_provider_grants_every_model_and_the_model_list(
        issuer, gateway, upstream):
    bearer = await token(issuer, "svc-admin", scope="chat.invoke models.read")
    before = len(upstream.requests)

    upstream_reply = await chat(gateway.url, bearer, "gpt-4o")
    mock_reply = await chat(gateway.url, bearer, "echo")
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        listed = await client.get("/v1/models", headers={"Authorization": f"Bearer {bearer}"})

    assert upstream_reply.status_code == 200, upstream_reply.text
    assert mock_reply.status_code == 200
    assert mock_reply.json()["choices"][0]["message"]["content"] == "echo: hi"
    assert len(upstream.requests) == before + 1
    assert "authorization" not in {name.lower() for name in upstream.requests[-1].headers}
    assert sorted(m["id"] for m in listed.json()["data"]) == ["echo", "gpt-4o"]


async def test_scope_from_the_provider_grants_only_its_model(issuer, gateway, upstream):
    bearer = await token(issuer, "svc-scoped", scope="chat.invoke")
    before = len(upstream.requests)

    allowed = await chat(gateway.url, bearer, "echo")
    other_model = await chat(gateway.url, bearer, "gpt-4o")
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        listing = await client.get("/v1/models", headers={"Authorization": f"Bearer {bearer}"})

    assert allowed.status_code == 200
    assert other_model.status_code == 403
    assert other_model.json()["error"]["code"] == "model_not_allowed"
    assert listing.status_code == 403
    assert len(upstream.requests) == before


@pytest.mark.parametrize(("client", "scope"), [("svc-none", None), ("svc-scoped", None)],
                         ids=["client-without-roles-or-scopes", "scope-not-requested"])
async def test_token_without_role_or_scope_is_refused_with_403(
        client, scope, issuer, gateway, upstream):
    bearer = await token(issuer, client, scope=scope)
    before = len(upstream.requests)

    responses = [await chat(gateway.url, bearer, model) for model in ("echo", "gpt-4o")]

    assert [r.status_code for r in responses] == [403, 403]
    assert responses[0].json()["error"]["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in responses[0].headers["www-authenticate"]
    assert len(upstream.requests) == before


async def test_token_for_another_resource_is_refused_with_401(issuer, gateway, upstream):
    bearer = await token(issuer, "svc-admin", scope="chat.invoke models.read",
                         resource="api://other")
    before = len(upstream.requests)

    response = await chat(gateway.url, bearer, "gpt-4o")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_audience"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert len(upstream.requests) == before


async def test_rotated_provider_key_is_picked_up_with_one_refetch_and_old_tokens_stop(
        tmp_path: Path):
    """The provider restarts with a new signing key. The first token of the new key causes
    exactly one key-set fetch and is accepted; the old key is no longer published, so a token
    of it (accepted before, and cached) is refused from then on."""
    port, k1, k2 = free_port(), tmp_path / "k1.json", tmp_path / "k2.json"
    write_rsa_jwks(k1, kid="k1")
    write_rsa_jwks(k2, kid="k2")
    async with RecordingUpstream() as upstream, contextlib.AsyncExitStack() as stack:
        with run_provider(port, k1, timeout=60) as issuer:
            old = await token(issuer, "svc-admin", scope="chat.invoke")
            gateway = await stack.enter_async_context(GatewayProcess(
                gateway_config(issuer, upstream.url), tmp_path, ready_path="/health/ready"))
            assert (await chat(gateway.url, old, "echo")).status_code == 200
        with run_provider(port, k2, timeout=60) as issuer:
            new = await token(issuer, "svc-admin", scope="chat.invoke")
            loads_before = gateway.log().count(KEYS_LOADED)
            new_reply = await chat(gateway.url, new, "echo")
            loads_after = gateway.log().count(KEYS_LOADED)
            old_reply = await chat(gateway.url, old, "echo")

    assert (loads_before, new_reply.status_code, loads_after) == (1, 200, 2)
    assert old_reply.status_code == 401
    assert old_reply.json()["error"]["code"] == "unknown_signing_key"


async def test_token_of_a_removed_key_is_refused_once_the_key_cache_expires(tmp_path: Path):
    """No token of the new key arrives; the old key's cached tokens keep working only until the
    key set's TTL passes and the refreshed set no longer has the key."""
    port, k1, k2 = free_port(), tmp_path / "k1.json", tmp_path / "k2.json"
    write_rsa_jwks(k1, kid="k1")
    write_rsa_jwks(k2, kid="k2")
    async with RecordingUpstream() as upstream, contextlib.AsyncExitStack() as stack:
        with run_provider(port, k1, timeout=60) as issuer:
            old = await token(issuer, "svc-admin", scope="chat.invoke")
            gateway = await stack.enter_async_context(GatewayProcess(
                gateway_config(issuer, upstream.url, jwks_ttl=1), tmp_path,
                ready_path="/health/ready"))
            first = await chat(gateway.url, old, "echo")
        with run_provider(port, k2, timeout=60):
            refused = await _first_refusal(gateway.url, old, attempts=150)

    assert first.status_code == 200
    assert refused is not None, "the old key's token was still accepted after its key went"
    assert refused.json()["error"]["code"] == "unknown_signing_key"


async def _first_refusal(base: str, bearer: str, *, attempts: int) -> httpx.Response | None:
    """Polls (real time: the gateway is another process) until a request is refused."""
    for _ in range(attempts):
        response = await chat(base, bearer, "echo")
        if response.status_code != 200:
            return response
        await asyncio.sleep(0.1)
    return None


async def test_gateway_log_never_contains_a_token(issuer, gateway):
    bearer = await token(issuer, "svc-admin", scope="chat.invoke models.read")
    header, payload, signature = bearer.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"

    statuses = [(await chat(gateway.url, b, "echo")).status_code for b in (bearer, tampered)]

    log = gateway.log()
    assert statuses == [200, 401]
    assert "decision" in log or "authz" in log  # decisions are logged, by identifiers only
    assert signature not in log and signature[::-1] not in log and payload not in log
