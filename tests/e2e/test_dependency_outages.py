"""One gateway process losing its dependencies and getting them back, with no restart: a
network cut to a real PostgreSQL (usage records wait in the spool, readiness says why, none is
lost), and a private Redis stopped and started again (`fail_open: false`: 503 while it is down,
served again once it is back)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from rolegate.config.model import DatabaseConfig
from rolegate.storage.database import Database
from tests.e2e.calls import bearer, chat, config_yaml, error_code, eventually, rule, upstream_model
from tests.support.keys import KeyPair, claims
from tests.support.outage import PrivateRedis, TcpLink
from tests.support.process import GatewayProcess
from tests.support.servers import LocalIdp, RecordingUpstream
from tests.support.storage import _execute, run_apart

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

AUDIENCE = "rolegate-e2e"
KEY = KeyPair.rsa("outage-key")
POSTGRES_PORT = 5432


def token(issuer: str) -> str:
    return KEY.sign(claims(issuer, AUDIENCE, roles=["llm.user"]))


def gateway_config(idp: LocalIdp, upstream: RecordingUpstream, **sections: Any) -> str:
    return config_yaml(
        models=[upstream_model("gpt-test", upstream.url)],
        issuers=[{"name": "corp", "issuer": idp.issuer, "jwks_url": idp.jwks_url,
                  "audiences": [AUDIENCE]}],
        policy=[rule("users", {"roles": ["llm.user"]}, ["inference", "info"], ["*"])],
        **sections)


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"rg_outage_{os.getpid()}_{secrets.token_hex(3)}"
    yield name
    run_apart(_execute(DatabaseConfig(url=postgres_url(POSTGRES_PORT)),
                       f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def postgres_url(port: int) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test"


async def stored_request_ids(schema: str) -> list[str]:
    database = Database(DatabaseConfig.model_validate(
        {"url": postgres_url(POSTGRES_PORT), "schema": schema}))
    try:
        async with database.engine.connect() as connection:
            rows = await connection.execute(text("SELECT request_id FROM usage_records"))
            return [row[0] for row in rows]
    finally:
        await database.close()


async def send(client: httpx.AsyncClient, credential: str, request_id: str) -> httpx.Response:
    return await client.post("/v1/chat/completions", json=chat("gpt-test"),
                             headers={**bearer(credential), "x-request-id": request_id})


async def test_usage_written_while_postgres_is_cut_off_is_spooled_and_lands_once_it_is_back(
        tmp_path: Path, idp: LocalIdp, upstream: RecordingUpstream, schema: str) -> None:
    async with TcpLink(POSTGRES_PORT) as link:
        database = {"url": postgres_url(link.port), "schema": schema, "migrate_on_start": True}
        config = gateway_config(idp, upstream, database=database,
                                accounting={"flush_interval": 0.2})
        async with (
            GatewayProcess(config, tmp_path, ready_path="/health/ready") as gateway,
            httpx.AsyncClient(base_url=gateway.url, timeout=10) as client,
        ):
            credential = token(idp.issuer)
            before = [await send(client, credential, f"before-{i}") for i in range(10)]

            link.cut()
            during = await asyncio.gather(*(send(client, credential, f"during-{i}")
                                            for i in range(40)))

            async def unready() -> bool:
                return (await client.get("/health/ready")).status_code == 503
            assert await eventually(unready, within=10)
            readiness = (await client.get("/health/ready")).json()

            async def spooling() -> bool:  # readiness turns as the write fails; the spool follows
                text = (await client.get("/metrics")).text
                return "rolegate_usage_records_spooled 0.0" not in text
            assert await eventually(spooling, within=10)
            metrics_down = (await client.get("/metrics")).text
            spooled = list((tmp_path / "state" / "usage-spool").rglob("*.jsonl"))
            during += [await send(client, credential, f"late-{i}") for i in range(5)]

            link.restore()

            async def ready() -> bool:
                return (await client.get("/health/ready")).status_code == 200
            assert await eventually(ready, within=15)
            metrics = (await client.get("/metrics")).text
        stored = await stored_request_ids(schema)

    assert [response.status_code for response in before + during] == [200] * 55
    assert "usage records" in readiness["not_ready"]
    assert "spooled on disk" in readiness["not_ready"]["usage records"]
    assert spooled, "the records waited on disk"
    expected = {response.headers["x-request-id"] for response in before + during}
    assert sorted(stored) == sorted(expected)  # each record once: none lost, none doubled
    assert "rolegate_usage_database_up 0.0" in metrics_down
    assert "rolegate_usage_records_spooled 0.0" not in metrics_down
    assert "rolegate_usage_records_spooled 0.0" in metrics
    assert "rolegate_usage_database_up 1.0" in metrics
    assert "Traceback" not in gateway.log()


async def test_a_full_spool_refuses_requests_with_503_until_postgres_takes_the_records(
        tmp_path: Path, idp: LocalIdp, upstream: RecordingUpstream, schema: str) -> None:
    """Past `spool_max_bytes`, a request whose usage could not be kept is refused before it
    reaches the upstream, rather than served unbilled."""
    async with TcpLink(POSTGRES_PORT) as link:
        database = {"url": postgres_url(link.port), "schema": schema, "migrate_on_start": True}
        config = gateway_config(idp, upstream, database=database, accounting={
            "flush_interval": 0.1, "spool_max_bytes": 2000})  # four or so records
        async with (
            GatewayProcess(config, tmp_path, ready_path="/health/ready") as gateway,
            httpx.AsyncClient(base_url=gateway.url, timeout=10) as client,
        ):
            credential = token(idp.issuer)
            link.cut()
            responses: list[httpx.Response] = []

            async def refused() -> bool:
                responses.append(await send(client, credential, f"cut-{len(responses)}"))
                return responses[-1].status_code == 503
            assert await eventually(refused, within=15, every=0.05)
            forwarded_while_full = len(upstream.requests)
            again = await send(client, credential, "while-full")
            forwarded_after_refusal = len(upstream.requests)
            link.restore()

            async def served() -> bool:
                responses.append(await send(client, credential, f"back-{len(responses)}"))
                return responses[-1].status_code == 200
            assert await eventually(served, within=15)
        stored = await stored_request_ids(schema)

    assert again.status_code == 503 and error_code(again) == "usage_unrecorded"
    assert forwarded_after_refusal == forwarded_while_full  # the refused one never left
    statuses = {response.headers["x-request-id"]: response.status_code
                for response in [*responses, again]}
    assert set(statuses.values()) == {200, 503}
    assert sorted(stored) == sorted(rid for rid, status in statuses.items() if status == 200)


async def test_redis_stopped_then_started_gets_503_then_serves_again_without_a_restart(
        tmp_path: Path, idp: LocalIdp, upstream: RecordingUpstream) -> None:
    async with PrivateRedis(tmp_path) as redis:
        limits = {"backend": "redis", "url": redis.url, "timeout": 0.5, "fail_open": False}
        policy_limits = config_yaml(
            models=[upstream_model("gpt-test", upstream.url)],
            issuers=[{"name": "corp", "issuer": idp.issuer, "jwks_url": idp.jwks_url,
                      "audiences": [AUDIENCE]}],
            policy=[{"name": "users", "when": {"roles": ["llm.user"]},
                     "allow": {"routes": ["inference", "info"], "models": ["*"],
                               "limits": {"rpm": 10000}}}],
            limits=limits, accounting={"enabled": False})
        async with (
            GatewayProcess(policy_limits, tmp_path, ready_path="/health/ready") as gateway,
            httpx.AsyncClient(base_url=gateway.url, timeout=10) as client,
        ):
            credential = token(idp.issuer)
            assert (await send(client, credential, "up")).status_code == 200

            redis.stop()
            down = await send(client, credential, "down")
            await asyncio.sleep(0)

            async def unready() -> bool:
                return (await client.get("/health/ready")).status_code == 503
            assert await eventually(unready, within=15)
            readiness = (await client.get("/health/ready")).json()

            await redis.start()

            async def served() -> bool:
                return (await send(client, credential, "back")).status_code == 200
            assert await eventually(served, within=15)

            async def ready() -> bool:
                return (await client.get("/health/ready")).status_code == 200
            assert await eventually(ready, within=15)

    assert down.status_code == 503
    assert error_code(down) == "rate_limiter_unavailable"
    assert "Redis unreachable" in readiness["not_ready"]["rate limits"]
    assert "Traceback" not in gateway.log()
