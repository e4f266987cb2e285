"""rolegate as real processes, as it is deployed: replicas sharing PostgreSQL see a revocation
within the key cache's TTL, replicas sharing Redis hold one rate limit between them, and a
SIGTERM in the middle of traffic loses no usage record."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.process import GatewayProcess, rolegate_command
from tests.support.storage import PEPPER, POSTGRES_URL, REDIS_URL

pytestmark = pytest.mark.e2e
ENV = {"RG_PEPPER": PEPPER}
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "one two"}]}


def config(database: str, *, limits: str = "", rule_limits: str = "",
           flush_interval: float = 0.2) -> str:
    return f"""
models:
  - {{name: echo, provider: mock}}
keys: {{enabled: true, pepper: "${{RG_PEPPER}}", cache_ttl: 1}}
database: {database}
{limits}
accounting: {{flush_interval: {flush_interval}, batch_size: 100000}}
policy:
  - name: services
    when: {{issuers: [apikey], roles: [svc]}}
    allow: {{routes: [inference, info], models: ["*"] {rule_limits}}}
  - name: admins
    when: {{issuers: [apikey], roles: [admin]}}
    allow: {{routes: [admin]}}
"""


async def rolegate(config_path: Path, *args: str) -> str:
    """Run a `rolegate` command against the config; its standard output."""
    return await rolegate_command(config_path, *args, env=ENV)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def postgres_database() -> Any:
    schema = f"rg_e2e_{os.getpid()}_{secrets.token_hex(3)}"
    yield f"{{url: '{POSTGRES_URL}', schema: {schema}}}"
    from rolegate.config.model import DatabaseConfig
    from tests.support.storage import _execute, run_apart
    run_apart(_execute(DatabaseConfig(url=POSTGRES_URL),
                       f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


async def test_a_key_revoked_on_one_replica_is_refused_by_the_other_within_seconds(
        tmp_path: Path, postgres_database: str):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    text = config(postgres_database)
    (tmp_path / "rolegate.yaml").write_text(text)
    await rolegate(tmp_path / "rolegate.yaml", "db", "upgrade")
    admin = await rolegate(tmp_path / "rolegate.yaml", "keys", "create", "--name", "ops",
                           "--owner", "ops", "--roles", "admin")
    async with GatewayProcess(text, tmp_path / "a", env=ENV) as first, \
            GatewayProcess(text, tmp_path / "b", env=ENV) as second, \
            httpx.AsyncClient(timeout=10) as client:
        created = (await client.post(f"{first.url}/admin/keys", headers=bearer(admin), json={
            "name": "svc", "owner": "team-a", "roles": ["svc"]})).json()
        assert (await client.post(f"{second.url}/v1/chat/completions", json=CHAT,
                                  headers=bearer(created["key"]))).status_code == 200

        revoked = await client.delete(f"{first.url}/admin/keys/{created['id']}",
                                      headers=bearer(admin))
        refused_after = await _seconds_until_refused(client, second.url, created["key"])
        logs = first.log() + second.log()

    assert revoked.status_code == 200
    assert refused_after is not None and refused_after < 10
    assert created["key"] not in logs and admin not in logs


async def _seconds_until_refused(client: httpx.AsyncClient, url: str, key: str) -> float | None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < 15:
        response = await client.post(f"{url}/v1/chat/completions", json=CHAT,
                                     headers=bearer(key))
        if response.status_code == 401:
            assert response.json()["error"]["code"] == "api_key_revoked"
            return loop.time() - started
        assert response.status_code == 200
        await asyncio.sleep(0.1)
    return None


async def test_two_replicas_sharing_redis_hold_one_60_rpm_limit(tmp_path: Path,
                                                                 redis_prefix: str):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    database = f"{{url: 'sqlite+aiosqlite:///{tmp_path / 'shared.db'}'}}"
    limits = (f"limits: {{backend: redis, url: '{REDIS_URL}', prefix: {redis_prefix}, "
              "timeout: 5}")
    text = config(database, limits=limits, rule_limits=", limits: {rpm: 60}")
    (tmp_path / "rolegate.yaml").write_text(text)
    key = await rolegate(tmp_path / "rolegate.yaml", "keys", "create", "--name", "svc",
                         "--owner", "team-a", "--roles", "svc")
    async with GatewayProcess(text, tmp_path / "a", env=ENV) as first, \
            GatewayProcess(text, tmp_path / "b", env=ENV) as second, \
            httpx.AsyncClient(timeout=20) as client:
        gate = asyncio.Semaphore(16)

        async def send(index: int) -> int:
            async with gate:
                url = (first if index % 2 else second).url
                response = await client.post(f"{url}/v1/chat/completions", json=CHAT,
                                             headers=bearer(key))
                return response.status_code
        statuses = await asyncio.gather(*(send(i) for i in range(120)))

    assert set(statuses) <= {200, 429}
    assert 60 <= statuses.count(200) <= 62


async def test_sigterm_mid_load_loses_no_usage_record(tmp_path: Path):
    database_file = tmp_path / "usage.db"
    # Nothing is written until shutdown: the rows counted below are the shutdown's flush.
    text = config(f"{{url: 'sqlite+aiosqlite:///{database_file}'}}", flush_interval=300)
    (tmp_path / "rolegate.yaml").write_text(text)
    key = await rolegate(tmp_path / "rolegate.yaml", "keys", "create", "--name", "svc",
                         "--owner", "team-a", "--roles", "svc")
    gateway = GatewayProcess(text, tmp_path, env=ENV)
    await gateway.__aenter__()
    assert gateway.process is not None
    ok = 0
    try:
        async with httpx.AsyncClient(timeout=20) as client:
            async def send(index: int) -> None:
                nonlocal ok
                body = {**CHAT, "stream": index % 3 == 0}
                try:
                    response = await client.post(f"{gateway.url}/v1/chat/completions",
                                                 json=body, headers=bearer(key))
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    ok += 1

            async def terminate_midway() -> None:
                while ok < 150:
                    await asyncio.sleep(0.005)
                gateway.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

            gate = asyncio.Semaphore(24)

            async def limited(index: int) -> None:
                async with gate:
                    await send(index)
            await asyncio.gather(terminate_midway(), *(limited(i) for i in range(600)))
        exit_code = await asyncio.wait_for(asyncio.to_thread(gateway.process.wait), 30)
    finally:
        await gateway.__aexit__(None, None, None)

    with sqlite3.connect(database_file) as connection:
        rows = connection.execute("SELECT count(*), count(DISTINCT request_id) "
                                  "FROM usage_records WHERE status = 200").fetchone()
    assert exit_code in (0, -signal.SIGTERM), gateway.log()  # uvicorn re-raises the signal
    assert 150 <= ok < 600
    assert rows == (ok, ok)
