"""`TokenExchange`: a token that acts for the caller at one upstream, obtained with OAuth 2.0
Token Exchange (RFC 8693) from the caller's own validated token.

The caller's token (`subject_token`) is sent to the configured token endpoint only, never to
the upstream. The exchanged token names the upstream as its `resource` (RFC 8707), so it is good
there and nowhere else. It is cached per caller token until shortly before it expires, and
never past the caller's token's own `exp`: a shorter-lived caller token is never extended by the
exchange. Concurrent requests of one caller wait for one exchange.

>>> exchange = TokenExchange(config, resource="https://tools.example/mcp", client=http, clock=clock)
>>> token = await exchange.access_token(subject_token, expires_at=claims["exp"])
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from rolegate.providers.client_credentials import renewal_time
from rolegate.providers.http import HttpClient
from rolegate.providers.token_endpoint import ClientSecret, request_token

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # RFC 8693 §3
MAX_CACHED = 10_000


class ExchangeClient(ClientSecret, Protocol):
    @property
    def scope(self) -> str | None: ...

    @property
    def audience(self) -> str | None: ...


class TokenExchange:
    def __init__(self, config: ExchangeClient, *, resource: str, client: HttpClient,
                 clock: Callable[[], float]) -> None:
        self._config = config
        self._resource = resource
        self._client = client
        self._clock = clock
        # digest of the caller's token -> (exchanged token, when it is renewed)
        self._cache: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[tuple[str, float]]] = {}

    async def access_token(self, subject_token: str, *, expires_at: float | None) -> str:
        key = hashlib.sha256(subject_token.encode()).digest()
        cached = self._cache.get(key)
        if cached is not None and self._clock() < cached[1]:
            return cached[0]
        pending = self._pending.get(key)
        if pending is None:  # single flight per caller token
            pending = asyncio.ensure_future(self._exchange(subject_token, expires_at))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        token, renew_at = await asyncio.shield(pending)
        self._cache[key] = (token, renew_at)
        self._cache.move_to_end(key)
        if len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
        return token

    async def _exchange(self, subject_token: str, expires_at: float | None) -> tuple[str, float]:
        form = {"grant_type": GRANT_TYPE, "subject_token": subject_token,
                "subject_token_type": ACCESS_TOKEN_TYPE,
                "requested_token_type": ACCESS_TOKEN_TYPE, "resource": self._resource}
        if self._config.audience:
            form["audience"] = self._config.audience
        if self._config.scope:
            form["scope"] = self._config.scope
        token, lifetime = await request_token(self._client, self._config, form)
        renew_at = renewal_time(self._clock(), lifetime)
        if expires_at is not None:
            renew_at = min(renew_at, expires_at)
        return token, renew_at
