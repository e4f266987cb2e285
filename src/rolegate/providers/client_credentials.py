"""`ClientCredentials`: an upstream access token from an OAuth 2.0 token endpoint (RFC 6749 §4.4),
for upstreams that take a bearer token instead of an API key (Azure OpenAI with Entra ID).

The token is cached until shortly before it expires; when it must be renewed, one request fetches
it and every concurrent caller waits for that one.

>>> token = ClientCredentials(config.auth, http, clock)
>>> headers = {"authorization": f"Bearer {await token.access_token()}"}
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import orjson

from rolegate.config.model import UpstreamAuthConfig
from rolegate.errors import UpstreamError
from rolegate.providers.http import HttpClient

log = logging.getLogger("rolegate.providers")

REFRESH_MARGIN = 300.0  # seconds before expiry a token is renewed: requests in flight stay valid
FETCH_TIMEOUT = 10.0


class ClientCredentials:
    def __init__(self, config: UpstreamAuthConfig, client: HttpClient,
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
                self._token, lifetime = await self._fetch()
                margin = min(REFRESH_MARGIN, lifetime / 2)
                self._renew_at = self._clock() + lifetime - margin
        return self._token

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "client_id": self._config.client_id,
                "client_secret": self._config.client_secret.get_secret_value(),
                "scope": self._config.scope}
        try:
            async with self._client.session.post(
                    self._config.token_url, data=form, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT),
                    **self._client.egress_options(self._config.token_url)) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise UpstreamError(f"The upstream token endpoint could not be reached "
                                f"({type(exc).__name__}).", code="upstream_auth_failed") from None
        token, lifetime = _parse_token(status, body)
        if token is None:
            log.error("the upstream token endpoint refused the gateway (status %d)", status)
            raise UpstreamError("The gateway could not obtain a token for the upstream.",
                                code="upstream_auth_failed")
        return token, lifetime


def _parse_token(status: int, body: bytes) -> tuple[str | None, float]:
    if status != 200:
        return None, 0.0
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, 0.0
    if not isinstance(value, dict) or not isinstance(value.get("access_token"), str):
        return None, 0.0
    expires_in = value.get("expires_in", 3600)
    try:
        lifetime = float(expires_in)
    except (TypeError, ValueError):
        lifetime = 3600.0
    return value["access_token"], max(lifetime, 1.0)
