"""A gateway with the console on (development issuer, keys in SQLite), and a browser-like
client that signs in through the development issuer's authorize page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.support.storage import PEPPER

AUTHORIZE_FIELDS = ("client_id", "redirect_uri", "state", "nonce", "code_challenge")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_config(database_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "models": [{"name": "echo", "provider": "mock"}],
        "auth": {"dev_issuer": {"enabled": True}},
        "database": {"url": database_url},
        "keys": {"enabled": True, "pepper": PEPPER, "cache_ttl": 0},
        "accounting": {"flush_interval": 0.05},
        "policy": [
            {"name": "users", "when": {"roles": ["rolegate.user"]},
             "allow": {"routes": ["inference", "info"], "models": ["*"]}},
            {"name": "viewers", "when": {"roles": ["viewer"]}, "allow": {"routes": ["console"]}},
            {"name": "admins", "when": {"roles": ["rolegate.admin"]},
             "allow": {"routes": ["admin", "console"]}},
        ],
        **extra,
    }


def local(url: str) -> str:
    """The path and query of `url`: the in-process client reaches the gateway by path."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Browser:
    client: httpx.AsyncClient
    prefix: str = "/console"  # console.path

    async def authorize(self, roles: str = "rolegate.admin", subject: str = "ops",
                        **tamper: str) -> tuple[dict[str, str], httpx.Response]:
        """Starts a sign-in and submits the development issuer's form: the authorize request's
        parameters and the issuer's redirect back to the callback."""
        start = await self.client.get(f"{self.prefix}/login")
        assert start.status_code == 303, start.text
        params = dict(parse_qsl(urlsplit(start.headers["location"]).query))
        form = await self.client.get(local(start.headers["location"]))
        assert form.status_code == 200, form.text
        fields = {name: params[name] for name in AUTHORIZE_FIELDS}
        back = await self.client.post("/dev/authorize", data={
            **fields, **tamper, "subject": subject, "roles": roles})
        assert back.status_code == 303, back.text
        return params, back

    async def sign_in(self, roles: str = "rolegate.admin", subject: str = "ops") -> str:
        """Signs in; the CSRF token of the new session."""
        _, back = await self.authorize(roles, subject)
        done = await self.client.get(local(back.headers["location"]))
        assert (done.status_code, done.headers["location"]) == (303, self.prefix), done.text
        return self.csrf(await self.client.get(f"{self.prefix}/keys"))

    async def until_shown(self, path: str, text: str, **params: str) -> httpx.Response:
        """`path` once it shows `text`: the recorder writes usage in the background, every
        50 ms."""
        for _ in range(100):
            page = await self.client.get(path, params=params)
            if text in page.text:
                return page
            await asyncio.sleep(0.02)
        raise AssertionError(f"{path} never showed {text!r}")

    @staticmethod
    def csrf(page: httpx.Response) -> str:
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found is not None
        return found.group(1)


@pytest.fixture
def console_settings(settings_from: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    def make(**extra: Any) -> Any:
        return settings_from(console_config(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                                            **extra))
    return make


@pytest.fixture
async def open_browser(gateway_for: Callable[..., Awaitable[httpx.AsyncClient]],
                       console_settings: Callable[..., Any]
                       ) -> Callable[..., Awaitable[Browser]]:
    async def make(**extra: Any) -> Browser:
        settings = console_settings(**extra)
        return Browser(await gateway_for(settings), settings.console.path)
    return make


@pytest.fixture
async def browser(open_browser: Callable[..., Awaitable[Browser]]) -> Browser:
    return await open_browser()
