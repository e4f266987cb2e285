"""`request_token`: one POST to an OAuth 2.0 token endpoint (RFC 6749 §3.2), the access token and
its lifetime out of the answer; shared by the client credentials and token exchange grants.

Nothing of the answer is logged but its status: the body of a refusal may echo what was sent.
"""

from __future__ import annotations

import logging
from typing import Protocol

import aiohttp
import orjson
from pydantic import SecretStr

from rolegate.errors import UpstreamError
from rolegate.providers.http import HttpClient

log = logging.getLogger("rolegate.providers")

FETCH_TIMEOUT = 10.0
DEFAULT_LIFETIME = 3600.0  # RFC 6749 §5.1: expires_in is RECOMMENDED, not required


class ClientSecret(Protocol):
    """How the gateway authenticates itself at a token endpoint (`client_secret_post`)."""

    @property
    def token_url(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def client_secret(self) -> SecretStr: ...


async def request_token(client: HttpClient, config: ClientSecret,
                        form: dict[str, str]) -> tuple[str, float]:
    """The access token granted for `form` (with the client's id and secret added), and its
    lifetime in seconds; UpstreamError (502) when the endpoint is unreachable or refuses."""
    body = {**form, "client_id": config.client_id,
            "client_secret": config.client_secret.get_secret_value()}
    try:
        async with client.session.post(
                config.token_url, data=body, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT),
                **client.egress_options(config.token_url)) as response:
            status, payload = response.status, await response.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise UpstreamError(f"The upstream token endpoint could not be reached "
                            f"({type(exc).__name__}).", code="upstream_auth_failed") from None
    token, lifetime = _parse_token(status, payload)
    if token is None:
        log.error("the upstream token endpoint refused the gateway (status %d, grant %s)",
                  status, form.get("grant_type"))
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
    expires_in = value.get("expires_in", DEFAULT_LIFETIME)
    try:
        lifetime = float(expires_in)
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME
    return value["access_token"], max(lifetime, 1.0)
