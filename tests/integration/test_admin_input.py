"""Admin input at the door, on SQLite and on PostgreSQL: numbers beyond what storage holds,
non-finite numbers, control characters and `null` for a field that cannot be empty are a 400
naming the field, before anything is written; a listing stays readable whatever is stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from rolegate.config.model import DatabaseConfig
from rolegate.keys.material import KeyHasher
from rolegate.keys.store import KeyStore
from rolegate.storage.database import Database
from rolegate.storage.tables import api_keys
from tests.support.gateways import create_key, keyed_config
from tests.support.storage import PEPPER


@pytest.fixture
async def gateway(gateway_for, settings_from, database, upstream) -> Any:
    return await gateway_for(settings_from(keyed_config(database, upstream.url)))


async def key_count(gateway: Any, admin: dict[str, str]) -> int:
    response = await gateway.get("/admin/keys?include_revoked=true", headers=admin)
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


BASE = '"name": "n", "owner": "o"'


@pytest.mark.parametrize(("raw", "param"), [
    (f'{{{BASE}, "limits": {{"rpm": 1e30}}}}', "limits.rpm"),
    (f'{{{BASE}, "limits": {{"tpm": 9007199254740992}}}}', "limits.tpm"),
    (f'{{{BASE}, "limits": {{"monthly_budget_usd": 1e999}}}}', "limits.monthly_budget_usd"),
    (f'{{{BASE}, "limits": {{"rpm": "5"}}}}', "limits.rpm"),
    (f'{{{BASE}, "expires_in_days": 1e999}}', "expires_in_days"),
    ('{"name": "a\\u0000b", "owner": "o"}', "name"),
    ('{"name": "n", "owner": "team\\u001b[31m"}', "owner"),
    (f'{{{BASE}, "roles": ["svc", "\\u0000"]}}', "roles.1"),
    (f'{{{BASE}, "models": ["gpt-\\u0085"]}}', "models.0"),
    ('{"name": "' + "n" * 201 + '", "owner": "o"}', "name"),
    (f'{{{BASE}, "roles": null}}', "roles"),
    (f'{{{BASE}, "expires_at": "2030-01-01T00:00:00"}}', "expires_at"),
    (f'{{{BASE}, "expires_at": null, "expires_in_days": 3}}', None),
], ids=["rpm-1e30", "tpm-beyond-json-exact", "budget-infinite", "rpm-as-string",
        "days-infinite", "nul-in-name", "escape-in-owner", "nul-in-role", "c1-in-model",
        "name-beyond-column", "roles-null", "naive-expiry", "two-expiries-one-null"])
async def test_a_key_body_beyond_storage_is_a_400_and_writes_nothing(gateway, admin, raw, param):
    response = await gateway.post("/admin/keys", content=raw.encode(),
                                  headers={**admin, "content-type": "application/json"})

    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == param
    assert await key_count(gateway, admin) == 0


@pytest.mark.parametrize("field", ["name", "owner", "roles", "scopes"])
async def test_a_patch_setting_a_non_nullable_field_to_null_is_a_400(gateway, admin, field):
    created = await create_key(gateway, admin, scopes=["read"])

    response = await gateway.patch(f"/admin/keys/{created['id']}", json={field: None},
                                   headers=admin)
    listing = await gateway.get("/admin/keys", headers=admin)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == field
    assert listing.status_code == 200
    assert listing.json()["data"][0][field] == created[field]


async def test_a_patch_tells_a_left_out_field_from_a_null_one(gateway, admin):
    created = await create_key(gateway, admin, models=["gpt-4o"], limits={"rpm": 5})

    kept = await gateway.patch(f"/admin/keys/{created['id']}", json={"name": "renamed"},
                               headers=admin)
    cleared = await gateway.patch(f"/admin/keys/{created['id']}",
                                  json={"models": None, "limits": None}, headers=admin)

    assert kept.status_code == 200 and cleared.status_code == 200
    assert (kept.json()["models"], kept.json()["limits"]) == (["gpt-4o"], {"rpm": 5})
    assert (cleared.json()["models"], cleared.json()["limits"]) == (None, None)
    assert cleared.json()["name"] == "renamed"


async def test_a_whole_number_written_as_a_float_is_an_integer(gateway, admin):
    created = await create_key(gateway, admin, limits={"rpm": 60.0})

    assert created["limits"] == {"rpm": 60}


async def test_a_stored_null_list_does_not_break_the_listing(gateway, admin, database):
    """A key whose roles were saved as null (as an earlier version let a PATCH do) is listed
    with no roles rather than turning every listing into a 500."""
    created = await create_key(gateway, admin)
    storage = Database(DatabaseConfig.model_validate(database))
    async with storage.engine.begin() as connection:
        await connection.execute(update(api_keys).where(api_keys.c.id == created["id"])
                                 .values(roles=None, scopes=None))
    await storage.close()

    listing = await gateway.get("/admin/keys", headers=admin)
    fetched = await gateway.get(f"/admin/keys/{created['id']}", headers=admin)

    assert listing.status_code == 200 and fetched.status_code == 200
    assert (fetched.json()["roles"], fetched.json()["scopes"]) == ([], [])


async def test_the_key_store_refuses_null_for_a_field_that_cannot_be_empty(database):
    storage = Database(DatabaseConfig.model_validate(database))
    await storage.upgrade()
    store = KeyStore(storage.engine, KeyHasher(PEPPER.encode()))
    _, record = await store.create(name="n", owner="o", now=0.0, roles=("svc",))

    with pytest.raises(ValueError, match="roles cannot be null"):
        await store.update(record.id, {"roles": None})
    kept = await store.get(record.id)
    await storage.close()

    assert kept is not None and kept.roles == ("svc",)


@pytest.mark.parametrize(("query", "param"), [
    ("model=gpt%00x", "model"),
    ("subject=a%1Bb", "subject"),
    ("end_user=%C2%85", "end_user"),
    ("key_id=" + "k" * 33, "key_id"),
    ("model=", "model"),
    ("since=%207d", "since"),
    ("until=2025-02-30", "until"),
    ("by=nobody", "by"),
], ids=["nul", "escape", "c1-next-line", "beyond-column", "empty", "padded", "no-such-day",
        "unknown-grouping"])
async def test_a_usage_filter_with_a_control_character_or_beyond_bounds_is_a_400(
        gateway, admin, query, param):
    response = await gateway.get(f"/admin/usage?{query}", headers=admin)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == "invalid_query"


async def test_a_usage_filter_in_utf8_is_read_as_utf8(gateway, admin):
    response = await gateway.get("/admin/usage?by=model&model=mod%C3%A8le%C4%80", headers=admin)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("query", ["owner=team%00a", "owner=", "include_revoked=yes"])
async def test_a_bad_key_listing_query_is_a_400(gateway, admin, query):
    response = await gateway.get(f"/admin/keys?{query}", headers=admin)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == query.partition("=")[0]


@pytest.mark.parametrize("key_id", ["key_%00", "k" * 40])
async def test_a_key_id_no_key_can_have_is_a_404_without_a_lookup(gateway, admin, key_id):
    for method in ("GET", "PATCH", "DELETE"):
        response = await gateway.request(method, f"/admin/keys/{key_id}", headers=admin,
                                         json={} if method == "PATCH" else None)
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "key_not_found"
