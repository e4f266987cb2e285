"""Usage accounting in-process, on SQLite and PostgreSQL: one record per request that reached an
upstream, with tokens (from JSON and from streams), cost, principal and status; none for denied
requests; reports grouped by principal, model and day through the admin API."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from sqlalchemy import select

from rolegate.config.model import DatabaseConfig
from rolegate.storage.database import Database
from rolegate.storage.tables import usage
from tests.support.gateways import CHAT, INPUT_PRICE, OUTPUT_PRICE, bearer, keyed_config


async def usage_rows(database: dict[str, Any]) -> list[dict[str, Any]]:
    store = Database(DatabaseConfig.model_validate(database))
    try:
        async with store.engine.connect() as connection:
            rows = (await connection.execute(select(usage).order_by(usage.c.id))).mappings()
            return [dict(row) for row in rows]
    finally:
        await store.close()


async def make_key(gateway: Any, admin: dict[str, str], owner: str = "team-a",
                   **fields: Any) -> str:
    response = await gateway.post("/admin/keys", headers=admin, json={
        "name": "svc", "owner": owner, "roles": ["svc"], **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def test_a_json_reply_writes_one_record_with_tokens_cost_and_principal(
        gateway_for, settings_from, database, upstream, admin):
    gateway = await gateway_for(settings_from(keyed_config(database, upstream.url)))
    key = await make_key(gateway, admin)

    response = await gateway.post("/v1/chat/completions", json={**CHAT, "user": "u-1"},
                                  headers=bearer(key))
    rows = await _settled_rows(database, 1)

    assert response.status_code == 200
    row = rows[0]
    assert (row["issuer"], row["subject"], row["model"], row["status"]) == (
        "apikey", "team-a", "gpt-4o", 200)
    assert row["key_id"].startswith("key_")
    assert row["request_id"] == response.headers["x-request-id"]
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (3, 2, 5)
    assert row["cost_usd"] == pytest.approx((3 * INPUT_PRICE + 2 * OUTPUT_PRICE) / 1000)
    assert row["provider"] == "openai-compatible" and row["operation"] == "chat/completions"
    assert row["rule"] == "services" and row["is_stream"] is False


async def test_a_stream_is_counted_from_its_usage_chunk_the_gateway_asked_for(
        gateway_for, settings_from, database, admin):
    gateway = await gateway_for(settings_from(keyed_config(database, "http://unused")))
    key = await make_key(gateway, admin)

    async with gateway.stream("POST", "/v1/chat/completions", headers=bearer(key), json={
            "model": "echo", "stream": True,
            "messages": [{"role": "user", "content": "one two three"}]}) as response:
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    rows = await _settled_rows(database, 1)

    assert response.status_code == 200 and body.endswith(b"data: [DONE]\n\n")
    assert b'"usage"' not in body  # the caller did not ask for the usage chunk
    assert rows[0]["is_stream"] is True
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (3, 4)


async def test_a_caller_that_asks_for_stream_usage_still_gets_it(gateway_for, settings_from,
                                                                 database, admin):
    gateway = await gateway_for(settings_from(keyed_config(database, "http://unused")))
    key = await make_key(gateway, admin)

    response = await gateway.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "echo", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "one two three"}]})
    rows = await _settled_rows(database, 1)

    assert b'"usage":{"prompt_tokens":3' in response.content
    assert rows[0]["total_tokens"] == 7


async def test_a_responses_api_stream_is_counted_from_its_closing_event(
        gateway_for, settings_from, database, admin):
    gateway = await gateway_for(settings_from(keyed_config(database, "http://unused")))
    key = await make_key(gateway, admin)

    async with gateway.stream("POST", "/v1/responses", headers=bearer(key), json={
            "model": "echo", "stream": True, "input": "one two three"}) as response:
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    rows = await _settled_rows(database, 1)

    assert response.status_code == 200
    assert body.count(b"event: response.output_text.delta") == 4  # "echo: one two three"
    assert b'"usage":{"input_tokens":3,"output_tokens":4' in body  # passed on unchanged
    assert rows[0]["operation"] == "responses" and rows[0]["is_stream"] is True
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (3, 4)


async def test_denied_and_unauthenticated_requests_write_no_record(
        gateway_for, settings_from, database, upstream, admin, dev_issuer):
    gateway = await gateway_for(settings_from(keyed_config(database, upstream.url)))
    reader = await make_key(gateway, admin, roles=["reader"])

    statuses = [
        (await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(reader))).status_code,
        (await gateway.post("/v1/chat/completions", json=CHAT)).status_code,
        (await gateway.post("/v1/chat/completions", json=CHAT,
                            headers=bearer(dev_issuer.mint(roles=("svc",))))).status_code,
    ]
    await asyncio.sleep(0.2)

    assert statuses == [403, 401, 403]
    assert await usage_rows(database) == []
    assert upstream.requests == []


async def test_a_request_that_reached_no_upstream_writes_no_record(
        gateway_for, settings_from, database, upstream, admin):
    """An unknown model is refused before any upstream is contacted: no usage, and not the
    caller's string recorded as a model name."""
    gateway = await gateway_for(settings_from(keyed_config(database, upstream.url)))
    key = await make_key(gateway, admin)

    unknown = await gateway.post("/v1/chat/completions", headers=bearer(key),
                                 json={**CHAT, "model": "no-such-model"})
    served = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(key))
    rows = await _settled_rows(database, 1)
    await asyncio.sleep(0.2)

    assert (unknown.status_code, served.status_code) == (404, 200)
    assert [row["model"] for row in await usage_rows(database)] == ["gpt-4o"]
    assert rows[0]["status"] == 200


async def test_an_upstream_failure_is_recorded_with_its_status(gateway_for, settings_from,
                                                               database, admin):
    gateway = await gateway_for(settings_from(keyed_config(database, "http://127.0.0.1:1")))
    key = await make_key(gateway, admin)

    response = await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(key))
    rows = await _settled_rows(database, 1)

    assert response.status_code == 502
    assert rows[0]["status"] == 502 and rows[0]["total_tokens"] == 0


async def test_the_usage_report_groups_by_principal_model_and_day(
        gateway_for, settings_from, database, upstream, admin):
    gateway = await gateway_for(settings_from(keyed_config(database, upstream.url)))
    alice, bob = await make_key(gateway, admin, "alice"), await make_key(gateway, admin, "bob")
    for key, model, times in ((alice, "gpt-4o", 2), (alice, "echo", 1), (bob, "gpt-4o", 3)):
        for _ in range(times):
            await gateway.post("/v1/chat/completions", headers=bearer(key),
                               json={**CHAT, "model": model})
    await _settled_rows(database, 6)

    by_principal = (await gateway.get("/admin/usage?by=principal&since=1d",
                                      headers=admin)).json()
    by_model = (await gateway.get("/admin/usage?by=model&subject=bob", headers=admin)).json()
    by_day = (await gateway.get("/admin/usage?by=day", headers=admin)).json()
    future = (await gateway.get("/admin/usage?since=2999-01-01", headers=admin)).json()

    assert [(r["subject"], r["requests"]) for r in by_principal["data"]] == [
        ("alice", 3), ("bob", 3)]
    assert by_principal["data"][1]["total_tokens"] == 15
    assert [(r["model"], r["requests"]) for r in by_model["data"]] == [("gpt-4o", 3)]
    assert len(by_day["data"]) == 1 and by_day["data"][0]["requests"] == 6
    assert future["data"] == []


@pytest.mark.parametrize(("query", "param"), [("by=colour", "by"), ("since=yesterday", "since"),
                                              ("until=nan", "until")])
async def test_a_bad_usage_query_is_a_400_naming_the_parameter(
        gateway_for, settings_from, database, upstream, admin, query, param):
    gateway = await gateway_for(settings_from(keyed_config(database, upstream.url)))

    response = await gateway.get(f"/admin/usage?{query}", headers=admin)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_records_equal_allowed_requests_after_1000_mixed_concurrent_requests(
        gateway_for, settings_from, database, admin):
    config = keyed_config(database, "http://unused")
    gateway = await gateway_for(settings_from(config))
    allowed_key = await make_key(gateway, admin)
    denied_key = await make_key(gateway, admin, roles=["reader"])
    plan = random.Random(7).choices(["json", "stream", "denied", "unknown"], k=1000)
    gate = asyncio.Semaphore(50)

    async def send(kind: str) -> int:
        key = {"denied": denied_key, "unknown": "rg-" + "Z" * 43}.get(kind, allowed_key)
        body = {"model": "echo", "stream": kind == "stream",
                "messages": [{"role": "user", "content": "a b"}]}
        async with gate, gateway.stream("POST", "/v1/chat/completions", json=body,
                                        headers=bearer(key)) as response:
            await response.aread()
            return response.status_code

    statuses = await asyncio.gather(*(send(kind) for kind in plan))
    allowed = statuses.count(200)
    rows = await _settled_rows(database, allowed)

    assert allowed == plan.count("json") + plan.count("stream")
    assert statuses.count(403) == plan.count("denied")
    assert statuses.count(401) == plan.count("unknown")
    assert len(rows) == allowed
    assert sum(row["is_stream"] for row in rows) == plan.count("stream")
    assert len({row["request_id"] for row in rows}) == allowed


async def _settled_rows(database: dict[str, Any], expected: int) -> list[dict[str, Any]]:
    """The usage rows once `expected` have been written (the recorder flushes every 50 ms)."""
    rows: list[dict[str, Any]] = []
    for _ in range(200):
        rows = await usage_rows(database)
        if len(rows) >= expected:
            await asyncio.sleep(0.1)  # anything beyond `expected` would show up now
            return await usage_rows(database)
        await asyncio.sleep(0.05)
    return rows
