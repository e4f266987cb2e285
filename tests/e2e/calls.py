"""What end-to-end tests send and how they configure the gateway process: request bodies,
headers, and config files written as YAML from plain dicts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import yaml

HOUR = 3600


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def chat(model: str, *, stream: bool = False, content: str = "hello there") -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        body["stream"] = True
    return body


def upstream_model(name: str, upstream_url: str) -> dict[str, Any]:
    """A model served by the recording upstream, spoken to as an OpenAI-compatible server."""
    return {"name": name, "provider": "openai-compatible", "api_base": f"{upstream_url}/v1"}


def config_yaml(*, models: list[dict[str, Any]], issuers: list[dict[str, Any]],
                policy: list[dict[str, Any]], **sections: Any) -> str:
    return yaml.safe_dump({"models": models, "auth": {"issuers": issuers}, "policy": policy,
                           "logging": {"level": "warning"}, **sections}, sort_keys=False)


def rule(name: str, when: dict[str, Any], routes: list[str],
         models: list[str] | None = None) -> dict[str, Any]:
    allow: dict[str, Any] = {"routes": routes}
    if models is not None:
        allow["models"] = models
    return {"name": name, "when": when, "allow": allow}


async def eventually(probe: Callable[[], Awaitable[bool]], *, within: float = 20.0,
                     every: float = 0.1) -> bool:
    """Whether `probe()` comes true within `within` seconds (a real process moves on its own
    clock, so tests poll it instead of sleeping a fixed time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await probe():
            return True
        await asyncio.sleep(every)
    return False


def error_code(response: httpx.Response) -> str | None:
    """The OpenAI-shaped error's `code`, after checking the body has that shape."""
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error["code"]
