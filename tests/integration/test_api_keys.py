"""Virtual API keys end to end, in-process, on SQLite and on PostgreSQL: created through the
admin API, resolved to a principal the one policy decides, refused when unknown, expired or
revoked, and never stored in plaintext."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.support.gateways import CHAT, bearer, create_key, keyed_config


@pytest.fixture
async def gateway(gateway_for, settings_from, database, upstream) -> Any:
    return await gateway_for(settings_from(keyed_config(database, upstream.url)))


@pytest.mark.parametrize("header", ["authorization", "api-key", "x-api-key"])
async def test_a_created_key_reaches_the_upstream_in_each_header(gateway, admin, upstream,
                                                                 header):
    created = await create_key(gateway, admin)
    sent = (bearer(created["key"]) if header == "authorization"
            else {header: created["key"]})

    response = await gateway.post("/v1/chat/completions", json=CHAT, headers=sent)

    assert response.status_code == 200
    assert created["key"].startswith("rg-") and len(created["key"]) >= 3 + 43
    assert len(upstream.requests) == 1
    assert created["key"] not in str(upstream.requests[0].headers)


async def test_the_plaintext_is_shown_only_when_the_key_is_created(gateway, admin):
    created = await create_key(gateway, admin)

    listed = (await gateway.get("/admin/keys", headers=admin)).json()
    fetched = (await gateway.get(f"/admin/keys/{created['id']}", headers=admin)).json()

    assert [key["id"] for key in listed["data"]] == [created["id"]]
    for view in (listed["data"][0], fetched):
        assert "key" not in view and "key_hash" not in view
        assert created["key"] not in str(view)
        assert view["hint"] == "rg-..." + created["key"][-4:]


@pytest.mark.parametrize(("token", "code"), [
    ("rg-" + "A" * 43, "unknown_api_key"),
    ("rg-short", "invalid_api_key"),
    ("rg-" + "A" * 40 + "!!!", "invalid_api_key"),
], ids=["unknown", "too-short", "bad-characters"])
async def test_a_key_that_is_not_ours_is_refused_with_401(gateway, upstream, token, code):
    response = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(token))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["type"] == "authentication_error"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert upstream.requests == []


@pytest.mark.parametrize("header", ["api-key", "x-api-key"])
async def test_a_jwt_in_an_api_key_header_is_verified_like_a_bearer_token(gateway, upstream,
                                                                          dev_issuer, header):
    admin = await gateway.get("/admin/keys",
                              headers={header: dev_issuer.mint(roles=("rolegate.admin",))})
    # The same policy: the inference rule is for virtual keys (issuer apikey), not this JWT.
    denied = await gateway.post("/v1/chat/completions", json=CHAT,
                                headers={header: dev_issuer.mint(roles=("svc",))})
    expired = await gateway.post("/v1/chat/completions", json=CHAT,
                                 headers={header: dev_issuer.mint(roles=("svc",), ttl=-3600)})

    assert admin.status_code == 200
    assert denied.status_code == 403
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "token_expired"
    assert upstream.requests == []


async def test_an_empty_api_key_header_is_a_missing_credential(gateway, upstream):
    response = await gateway.post("/v1/chat/completions", json=CHAT, headers={"api-key": " "})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_token"
    assert upstream.requests == []


async def test_a_revoked_key_is_refused_once_the_lookup_cache_expires(gateway, admin, upstream,
                                                                      clock):
    created = await create_key(gateway, admin)
    assert (await gateway.post("/v1/chat/completions", json=CHAT,
                               headers=bearer(created["key"]))).status_code == 200

    revoked = await gateway.delete(f"/admin/keys/{created['id']}", headers=admin)
    clock.advance(3.1)
    response = await gateway.post("/v1/chat/completions", json=CHAT,
                                  headers=bearer(created["key"]))

    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_revoked"
    assert len(upstream.requests) == 1


async def test_an_expired_key_is_refused(gateway, admin, upstream, clock):
    created = await create_key(gateway, admin, expires_in_days=1)
    clock.advance(86400 + 1)

    response = await gateway.post("/v1/chat/completions", json=CHAT,
                                  headers=bearer(created["key"]))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_expired"
    assert upstream.requests == []


async def test_a_key_without_a_granted_role_is_refused_with_403(gateway, admin, upstream):
    created = await create_key(gateway, admin, roles=["reader"])

    response = await gateway.post("/v1/chat/completions", json=CHAT,
                                  headers=bearer(created["key"]))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert upstream.requests == []


async def test_a_keys_model_list_restricts_what_the_policy_grants(gateway, admin, upstream):
    created = await create_key(gateway, admin, models=["echo"])
    headers = bearer(created["key"])

    refused = await gateway.post("/v1/chat/completions", json=CHAT, headers=headers)
    allowed = await gateway.post("/v1/chat/completions", headers=headers,
                                 json={**CHAT, "model": "echo"})
    listed = await gateway.get("/v1/models", headers=headers)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    assert allowed.status_code == 200
    assert [model["id"] for model in listed.json()["data"]] == ["echo"]
    assert upstream.requests == []


async def test_a_rule_for_issuer_apikey_does_not_grant_a_jwt_with_the_same_role(
        gateway, upstream, dev_issuer):
    token = dev_issuer.mint(roles=("svc",))

    response = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(token))

    assert response.status_code == 403
    assert upstream.requests == []


async def test_updating_a_keys_roles_takes_effect_after_the_cache_ttl(gateway, admin, clock):
    created = await create_key(gateway, admin, roles=["reader"])

    updated = await gateway.patch(f"/admin/keys/{created['id']}", json={"roles": ["svc"]},
                                  headers=admin)
    clock.advance(3.1)
    response = await gateway.post("/v1/chat/completions", headers=bearer(created["key"]),
                                  json={**CHAT, "model": "echo"})

    assert updated.status_code == 200 and updated.json()["roles"] == ["svc"]
    assert updated.json()["name"] == "billing-service"
    assert response.status_code == 200


async def test_a_key_cannot_administer_keys_without_the_admin_grant(gateway, admin):
    created = await create_key(gateway, admin)

    response = await gateway.post("/admin/keys", json={"name": "x", "owner": "y"},
                                  headers=bearer(created["key"]))

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


@pytest.mark.parametrize(("body", "param"), [
    ({"owner": "o"}, "name"),
    ({"name": "n", "owner": "o", "colour": "blue"}, "colour"),
    ({"name": "n", "owner": "o", "limits": {"rpm": -1}}, "limits.rpm"),
    ({"name": "n", "owner": "o", "expires_in_days": 1, "expires_at": "2030-01-01T00:00:00Z"},
     None),
    ({"name": "", "owner": "o"}, "name"),
], ids=["missing-name", "unknown-field", "negative-rpm", "two-expiries", "empty-name"])
async def test_an_invalid_key_body_is_a_400_naming_the_field(gateway, admin, body, param):
    response = await gateway.post("/admin/keys", json=body, headers=admin)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == param


async def test_a_body_that_is_not_json_is_a_400(gateway, admin):
    response = await gateway.post("/admin/keys", content=b"{not json", headers=admin)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_an_unknown_key_id_is_a_404(gateway, admin):
    for method in ("GET", "PATCH", "DELETE"):
        response = await gateway.request(method, "/admin/keys/key_0000", headers=admin,
                                         json={} if method == "PATCH" else None)
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "key_not_found"


async def test_an_unsupported_method_on_keys_is_a_405(gateway, admin):
    response = await gateway.put("/admin/keys", json={}, headers=admin)

    assert response.status_code == 405


async def test_last_used_is_written_off_the_request_path(gateway_for, settings_from, database,
                                                         upstream, admin, clock):
    config = keyed_config(database, upstream.url)
    config["keys"]["last_used_interval"] = 0.05
    gateway = await gateway_for(settings_from(config))
    created = await create_key(gateway, admin)
    assert created["last_used_at"] is None

    await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(created["key"]))
    await _eventually(gateway, admin, created["id"])


async def _eventually(gateway: Any, admin: dict[str, str], key_id: str) -> None:
    import asyncio
    for _ in range(100):
        view = (await gateway.get(f"/admin/keys/{key_id}", headers=admin)).json()
        if view["last_used_at"] is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("last_used_at was never written")


async def test_the_database_holds_only_hashes(gateway_for, settings_from, tmp_path: Path,
                                              upstream, admin):
    database_file = tmp_path / "keys.db"
    gateway = await gateway_for(settings_from(keyed_config(
        {"url": f"sqlite+aiosqlite:///{database_file}"}, upstream.url)))
    created = await create_key(gateway, admin)
    await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(created["key"]))

    stored = b"".join(path.read_bytes() for path in tmp_path.glob("keys.db*"))

    assert created["id"].encode() in stored
    assert created["key"].encode() not in stored
    assert created["key"][3:].encode() not in stored


async def test_the_admin_openapi_document_is_valid_openapi_3_1(gateway, admin):
    response = await gateway.get("/admin/openapi.json", headers=admin)

    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert {"/admin/keys", "/admin/keys/{key_id}", "/admin/usage"} <= set(document["paths"])


async def test_the_openapi_document_needs_the_admin_grant(gateway):
    response = await gateway.get("/admin/openapi.json")

    assert response.status_code == 401
