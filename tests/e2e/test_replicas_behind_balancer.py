"""Three `rolegate serve` replicas behind HAProxy, as `docs/deployment.md` deploys them: one
private Redis for the limits, one PostgreSQL schema (reached through a link the test can cut),
a recording upstream, and mixed load from concurrent clients with JWTs and API keys.

What holds, and within what bound:
- a shared rpm limit admits exactly `limit` requests across the replicas (the check and the
  count are one Lua script in Redis);
- a key revoked on one replica is refused by every replica within `keys.cache_ttl` (+0.5 s of
  polling);
- Redis stopped: requests that need a limit get 503 while it is down, and are served again once
  it is back, with no restart; requests without limits are served throughout;
- PostgreSQL cut off: JWT requests are served throughout, readiness says why each replica is not
  ready, and once the link is back every usage record is in the database, each once;
- one replica killed with SIGKILL under load: clients see at most the requests in flight on it
  fail (HAProxy retries connection failures elsewhere), and with `accounting.write_ahead` every
  2xx has its usage record (the restarted replica replays its spool); a record without a 2xx is
  possible only for a request cut in flight, so at most one per failure.

`LB_SOAK=1` runs the long version (more load, several kills); see docs/deployment.md.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from rolegate.config.model import DatabaseConfig
from rolegate.storage.database import Database
from tests.e2e.calls import bearer, chat, config_yaml, error_code, eventually, upstream_model
from tests.support.balancer import Balancer, haproxy_path
from tests.support.keys import KeyPair, claims
from tests.support.outage import PrivateRedis, TcpLink
from tests.support.process import GatewayProcess, rolegate_command
from tests.support.servers import LocalIdp, RecordingUpstream
from tests.support.storage import PEPPER, _execute

IS_SOAK = os.environ.get("LB_SOAK") == "1"
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.timeout(1200 if IS_SOAK else 60)]

AUDIENCE = "rolegate-e2e"
KEY = KeyPair.rsa("balanced-key")
POSTGRES_PORT = 5432
ENV = {"RG_PEPPER": PEPPER}
REPLICAS = 3
CACHE_TTL = 1.0
RPM = 30
LOAD = 4000 if IS_SOAK else 240  # requests per load phase
KILLS = 3 if IS_SOAK else 1
CONCURRENCY = 24


def rule(name: str, when: dict[str, Any], routes: list[str], rpm: int | None = None
         ) -> dict[str, Any]:
    allow: dict[str, Any] = {"routes": routes, "models": ["*"]}
    if rpm is not None:
        allow["limits"] = {"rpm": rpm}
    return {"name": name, "when": when, "allow": allow}


def cluster_config(idp: LocalIdp, upstream: RecordingUpstream, redis: PrivateRedis,
                   database_port: int, schema: str) -> str:
    return config_yaml(
        models=[upstream_model("gpt-test", upstream.url)],
        issuers=[{"name": "corp", "issuer": idp.issuer, "jwks_url": idp.jwks_url,
                  "audiences": [AUDIENCE]}],
        policy=[rule("users", {"roles": ["llm.user"]}, ["inference", "info"]),
                rule("services", {"issuers": ["apikey"], "roles": ["svc"]}, ["inference"],
                     rpm=1_000_000),
                rule("limited", {"issuers": ["apikey"], "roles": ["limited"]}, ["inference"],
                     rpm=RPM),
                rule("admins", {"issuers": ["apikey"], "roles": ["admin"]}, ["admin"])],
        keys={"enabled": True, "pepper": "${RG_PEPPER}", "cache_ttl": CACHE_TTL},
        database={"url": f"postgresql+asyncpg://postgres@127.0.0.1:{database_port}/test",
                  "schema": schema},
        limits={"backend": "redis", "url": redis.url, "timeout": 0.5, "fail_open": False},
        accounting={"flush_interval": 0.2, "write_ahead": True})


async def rolegate(config_path: Path, *args: str) -> str:
    """Run a `rolegate` command against the config; its standard output."""
    return await rolegate_command(config_path, *args, env=ENV)


@dataclass
class Cluster:
    balancer: Balancer
    replicas: list[GatewayProcess]
    redis: PrivateRedis
    link: TcpLink
    schema: str
    config: Path
    token: str
    keys: dict[str, str] = field(default_factory=dict)  # role -> API key
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=20))

    async def post(self, url: str, credential: str, request_id: str, *,
                   stream: bool = False) -> httpx.Response:
        return await self.client.post(f"{url}/v1/chat/completions",
                                      json=chat("gpt-test", stream=stream),
                                      headers={**bearer(credential), "x-request-id": request_id})

    async def stored(self, prefix: str) -> list[str]:
        """Request ids of the usage records stored whose id starts with `prefix`."""
        database = Database(DatabaseConfig.model_validate(
            {"url": f"postgresql+asyncpg://postgres@127.0.0.1:{POSTGRES_PORT}/test",
             "schema": self.schema}))
        try:
            async with database.engine.connect() as connection:
                rows = await connection.execute(text(
                    "SELECT request_id FROM usage_records WHERE request_id LIKE :prefix"),
                    {"prefix": f"{prefix}%"})
                return [row[0] for row in rows]
        finally:
            await database.close()

    async def restart(self, index: int) -> None:
        """Start replica `index` again on its port and state directory (its spool)."""
        old = self.replicas[index]
        replica = GatewayProcess(None, old.workdir, env=ENV, ready_path="/health/ready")
        replica.config, replica.port = old.config, old.port
        self.replicas[index] = await replica.__aenter__()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory, idp: LocalIdp,
                  shared_upstream: RecordingUpstream) -> AsyncIterator[Cluster]:
    haproxy_path()  # skip (or, with REQUIRE_LB=1, fail) before starting anything
    workdir = tmp_path_factory.mktemp("balanced")
    schema = f"rg_lb_{os.getpid()}_{secrets.token_hex(3)}"
    async with PrivateRedis(workdir) as redis, TcpLink(POSTGRES_PORT) as link:
        text_ = cluster_config(idp, shared_upstream, redis, link.port, schema)
        config = workdir / "rolegate.yaml"
        config.write_text(text_)
        await rolegate(config, "db", "upgrade")
        admin = await rolegate(config, "keys", "create", "--name", "admin", "--owner", "e2e",
                               "--roles", "admin")
        replicas = []
        for index in range(REPLICAS):
            (workdir / f"r{index}").mkdir()
            replicas.append(GatewayProcess(text_, workdir / f"r{index}", env=ENV,
                                           ready_path="/health/ready"))
        try:
            await asyncio.gather(*(replica.__aenter__() for replica in replicas))
            async with Balancer([replica.port for replica in replicas], workdir) as balancer:
                token = KEY.sign(claims(idp.issuer, AUDIENCE, roles=["llm.user"],
                                        exp_in=3600))
                cluster = Cluster(balancer, replicas, redis, link, schema, config, token)
                cluster.keys["admin"] = admin
                for role in ("svc", "limited"):  # through the admin API: no process to start
                    created = await cluster.client.post(
                        f"{balancer.url}/admin/keys", headers=bearer(admin),
                        json={"name": role, "owner": "e2e", "roles": [role]})
                    cluster.keys[role] = created.json()["key"]
                yield cluster
                await cluster.client.aclose()
        finally:
            for replica in replicas:
                if replica.process is not None:
                    await replica.__aexit__()
            await _execute(DatabaseConfig.model_validate(
                {"url": f"postgresql+asyncpg://postgres@127.0.0.1:{POSTGRES_PORT}/test"}),
                f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_a_shared_rpm_limit_admits_exactly_the_limit_across_replicas(
        cluster: Cluster) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def send(index: int) -> int:
        async with gate:
            response = await cluster.post(cluster.balancer.url, cluster.keys["limited"],
                                          f"rpm-{index}")
            return response.status_code
    statuses = await asyncio.gather(*(send(i) for i in range(2 * RPM)))

    assert sorted(set(statuses)) == [200, 429]
    assert statuses.count(200) == RPM


async def test_a_key_revoked_on_one_replica_is_refused_by_every_replica_within_the_cache_ttl(
        cluster: Cluster) -> None:
    admin = cluster.keys["admin"]
    first = cluster.replicas[0].url
    created = (await cluster.client.post(f"{first}/admin/keys", headers=bearer(admin), json={
        "name": "revoked", "owner": "e2e", "roles": ["svc"]})).json()
    for replica in cluster.replicas:  # every replica has it cached
        response = await cluster.post(replica.url, created["key"], "revoke-warm")
        assert response.status_code == 200, response.text

    revoked = await cluster.client.delete(f"{first}/admin/keys/{created['id']}",
                                          headers=bearer(admin))
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def refused_within(replica: GatewayProcess) -> float:
        while True:
            response = await cluster.post(replica.url, created["key"], "revoke-poll")
            if response.status_code == 401:
                assert error_code(response) == "api_key_revoked"
                return loop.time() - started
            assert response.status_code == 200
            await asyncio.sleep(0.05)
    delays = await asyncio.wait_for(asyncio.gather(*(refused_within(replica)
                                                     for replica in cluster.replicas)), 10)
    through_balancer = await cluster.post(cluster.balancer.url, created["key"], "revoke-lb")

    assert revoked.status_code == 200
    assert max(delays) <= CACHE_TTL + 0.5, delays
    assert through_balancer.status_code == 401


async def test_redis_stopped_refuses_limited_requests_with_503_and_recovers_without_restart(
        cluster: Cluster) -> None:
    lb = cluster.balancer.url
    assert (await cluster.post(lb, cluster.keys["svc"], "redis-up")).status_code == 200

    cluster.redis.stop()
    limited_down = [await cluster.post(lb, cluster.keys["svc"], f"redis-down-{i}")
                    for i in range(REPLICAS)]
    unlimited_down = await cluster.post(lb, cluster.token, "redis-down-jwt")

    async def every_replica_unready() -> bool:
        states = [(await cluster.client.get(f"{r.url}/health/ready")).status_code
                  for r in cluster.replicas]
        return states == [503] * REPLICAS
    assert await eventually(every_replica_unready, within=15)
    while_unready = await cluster.post(lb, cluster.keys["svc"], "redis-down-unready")

    await cluster.redis.start()

    async def served() -> bool:
        statuses = [(await cluster.post(lb, cluster.keys["svc"], "redis-back")).status_code
                    for _ in range(REPLICAS)]
        return statuses == [200] * REPLICAS
    assert await eventually(served, within=15)

    assert [r.status_code for r in limited_down] == [503] * REPLICAS
    assert {error_code(r) for r in limited_down} == {"rate_limiter_unavailable"}
    assert unlimited_down.status_code == 200
    # Every replica unready: HAProxy still sends to them (the unchecked backups), and the
    # caller gets the gateway's own 503, not HAProxy's "no server available".
    assert while_unready.status_code == 503
    assert error_code(while_unready) == "rate_limiter_unavailable"


async def test_postgres_cut_off_loses_no_usage_record_and_readiness_says_why(
        cluster: Cluster) -> None:
    lb = cluster.balancer.url
    cluster.link.cut()
    try:
        statuses = await mixed_load(cluster, "pgcut", LOAD // 2, keys=False)

        async def every_replica_unready() -> bool:
            bodies = [await cluster.client.get(f"{r.url}/health/ready")
                      for r in cluster.replicas]
            return all(b.status_code == 503 and "usage records" in b.json()["not_ready"]
                       for b in bodies)
        assert await eventually(every_replica_unready, within=15)
        with_key = await cluster.post(lb, cluster.keys["svc"], "pgcut-key")
        statuses.update(await mixed_load(cluster, "pgcut-late", LOAD // 4, keys=False))
    finally:
        cluster.link.restore()

    async def every_replica_ready() -> bool:
        states = [(await cluster.client.get(f"{r.url}/health/ready")).status_code
                  for r in cluster.replicas]
        return states == [200] * REPLICAS
    assert await eventually(every_replica_ready, within=20)
    ok = {request_id for request_id, status in statuses.items() if status == 200}

    async def all_stored() -> bool:
        return set(await cluster.stored("pgcut")) >= ok
    assert await eventually(all_stored, within=10)
    stored = await cluster.stored("pgcut")

    assert set(statuses.values()) == {200}
    # A key checked after its cache entry expired needs the database: 503, never 401 or 500.
    assert with_key.status_code in (200, 503)
    assert len(stored) == len(set(stored))
    assert set(stored) - {"pgcut-key"} == ok


async def test_a_replica_killed_under_load_fails_at_most_its_in_flight_requests_and_no_record_is_lost(  # noqa: E501
        cluster: Cluster) -> None:
    statuses: dict[str, int] = {}
    for kill in range(KILLS):
        victim = cluster.replicas[kill % REPLICAS]
        load = asyncio.ensure_future(mixed_load(cluster, f"kill{kill}", LOAD, keys=True))
        await asyncio.sleep(0.5 if not IS_SOAK else random.uniform(1, 5))
        assert victim.process is not None
        victim.process.kill()
        victim.process.wait()
        statuses.update(await load)
        await cluster.restart(kill % REPLICAS)
    ok = {request_id for request_id, status in statuses.items() if status == 200}
    failed = {request_id for request_id, status in statuses.items() if status != 200}

    async def all_stored() -> bool:
        return set(await cluster.stored("kill")) >= ok
    stored_in_time = await eventually(all_stored, within=15)
    stored = await cluster.stored("kill")

    assert len(failed) <= KILLS * CONCURRENCY, sorted(statuses.values())
    assert {statuses[request_id] for request_id in failed} <= {502, 503, -1}
    assert stored_in_time, f"{len(ok - set(stored))} records of 2xx responses missing"
    assert len(stored) == len(set(stored))  # none counted twice
    assert set(stored) - ok <= failed  # a record without a 2xx: only a request cut in flight


async def mixed_load(cluster: Cluster, prefix: str, count: int, *, keys: bool
                     ) -> dict[str, int]:
    """`count` requests through the balancer, `CONCURRENCY` at a time: JWTs and (`keys`)
    API keys in turn, every fourth streamed. Request id -> status (-1: no response)."""
    credentials = itertools.cycle([cluster.token, cluster.keys["svc"]] if keys
                                  else [cluster.token])
    gate = asyncio.Semaphore(CONCURRENCY)
    statuses: dict[str, int] = {}

    async def send(index: int, credential: str) -> None:
        request_id = f"{prefix}-{index}"
        async with gate:
            try:
                response = await cluster.post(cluster.balancer.url, credential, request_id,
                                              stream=index % 4 == 0)
                statuses[request_id] = response.status_code
            except httpx.TransportError:
                statuses[request_id] = -1
    await asyncio.gather(*(send(i, next(credentials)) for i in range(count)))
    return statuses
