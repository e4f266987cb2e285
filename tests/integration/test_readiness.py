"""`/health/ready` names each dependency that holds the gateway back: here the Redis of the rate
limits (the issuers' keys and the database have their own tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from rolegate.app import build_app
from rolegate.config.model import Settings
from tests.support.storage import REDIS_URL


async def ready_after_start(settings: Settings) -> httpx.Response:
    app = build_app(settings)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await asyncio.wait_for(outbox.get(), 20))["type"] == "lifespan.startup.complete"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway") as client:
        for _ in range(100):  # the first probe runs in the background at start-up
            response = await client.get("/health/ready")
            if response.status_code == 503:
                break
            await asyncio.sleep(0.02)
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(lifespan, 20)
    return response


def redis_settings(url: str) -> Settings:
    return Settings.model_validate({
        "models": [{"name": "echo", "provider": "mock"}], "policy": [],
        "auth": {"dev_issuer": {"enabled": False}},
        "keys": {"enabled": False},
        "limits": {"backend": "redis", "url": url, "timeout": 0.5}})


async def test_readiness_names_the_rate_limits_redis_when_it_cannot_be_reached():
    response = await ready_after_start(redis_settings("redis://127.0.0.1:1/0"))

    assert response.status_code == 503
    reason = response.json()["not_ready"]["rate limits"]
    assert reason.startswith("Redis unreachable, requests are refused: ")


async def test_a_reachable_redis_keeps_the_gateway_ready():
    response = await ready_after_start(redis_settings(REDIS_URL))

    assert response.status_code == 200, response.text
