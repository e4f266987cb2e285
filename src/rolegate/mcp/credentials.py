"""`ServerCredential`: the headers rolegate sends an MCP server as its own credential, for one
request: the configured static headers, and with `auth` a bearer token from a token endpoint:
rolegate's own (client credentials) or one acting for the caller (token exchange, RFC 8693).

The caller's token never goes to the server: the exchange sends it to the token endpoint only.

>>> headers = await credential.headers(request, who)
"""

from __future__ import annotations

from collections.abc import Callable

from rolegate.authn.extract import credential
from rolegate.authn.principal import Principal
from rolegate.config.model import McpServerConfig
from rolegate.providers.client_credentials import ClientCredentials
from rolegate.providers.http import HttpClient
from rolegate.providers.token_exchange import TokenExchange
from rolegate.server.asgi import Request


class ServerCredential:
    def __init__(self, config: McpServerConfig, http: HttpClient, clock: Callable[[], float],
                 *, max_header_bytes: int) -> None:
        self._static = dict(config.headers)
        self._max_header_bytes = max_header_bytes
        self._own: ClientCredentials | None = None
        self._exchange: TokenExchange | None = None
        auth = config.auth
        if auth is not None and auth.type == "client_credentials":
            self._own = ClientCredentials(auth, http, clock)
        elif auth is not None and config.url is not None:  # auth needs a url (config/model.py)
            self._exchange = TokenExchange(auth, resource=config.url, client=http, clock=clock)

    async def headers(self, request: Request, who: Principal) -> dict[str, str]:
        headers = dict(self._static)
        if self._own is not None:
            headers["authorization"] = f"Bearer {await self._own.access_token()}"
        elif self._exchange is not None:
            # The credential the caller was authenticated with, read as the authenticator
            # reads it (whichever header carried it).
            caller = credential(request.headers, max_bytes=self._max_header_bytes)
            expiry = who.claims.get("exp")
            token = await self._exchange.access_token(
                caller, expires_at=float(expiry) if isinstance(expiry, int | float) else None)
            headers["authorization"] = f"Bearer {token}"
        return headers
