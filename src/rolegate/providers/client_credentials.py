"""`ClientCredentials`: an upstream access token from an OAuth 2.0 token endpoint (RFC 6749 §4.4),
for upstreams that take a bearer token instead of an API key (Azure OpenAI with Entra ID, an
MCP server).

The token is cached until shortly before it expires; when it must be renewed, one request fetches
it and every concurrent caller waits for that one.

>>> token = ClientCredentials(config.auth, http, clock)
>>> headers = {"authorization": f"Bearer {await token.access_token()}"}
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from rolegate.providers.http import HttpClient
from rolegate.providers.token_endpoint import ClientSecret, request_token

REFRESH_MARGIN = 300.0  # seconds before expiry a token is renewed: requests in flight stay valid


class ScopedClient(ClientSecret, Protocol):
    @property
    def scope(self) -> str | None: ...


def renewal_time(now: float, lifetime: float) -> float:
    """When a token of `lifetime` seconds obtained at `now` is renewed."""
    return now + lifetime - min(REFRESH_MARGIN, lifetime / 2)


class ClientCredentials:
    def __init__(self, config: ScopedClient, client: HttpClient,
                 clock: Callable[[], float]) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def access_token(self) -> str:
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        async with self._lock:  # single flight: whoever waited here finds the fresh token
            if self._token is None or self._clock() >= self._renew_at:
                form = {"grant_type": "client_credentials"}
                if self._config.scope:
                    form["scope"] = self._config.scope
                self._token, lifetime = await request_token(self._client, self._config, form)
                self._renew_at = renewal_time(self._clock(), lifetime)
        return self._token
