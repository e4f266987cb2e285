"""A service calling rolegate the way production services do.

It gets an OAuth 2.0 client-credentials token from its identity provider with Authlib, renews it
shortly before it expires, and calls rolegate with the official `openai` SDK, which asks for the
current token before every request.

    python examples/service_client.py --token-url https://idp.example.com/token \
        --client-id svc-admin --client-secret "$SECRET" --scope "chat.invoke models.read" \
        --resource api://rolegate --gateway http://127.0.0.1:8080/v1 --model echo

Needs `authlib` and `openai` (both in rolegate's `test` extras).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from authlib.integrations.httpx_client import AsyncOAuth2Client
from openai import AsyncOpenAI


class ServiceCredentials:
    """Client-credentials access tokens, fetched on first use and renewed `refresh_margin`
    seconds before they expire (RFC 6749 §4.4).

    >>> credentials = ServiceCredentials(token_url, "svc-admin", secret, scope="chat.invoke")
    >>> token = await credentials.access_token()
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, *,
                 scope: str | None = None, resource: str | None = None,
                 refresh_margin: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self._token_url = token_url
        self._resource = resource
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._oauth = AsyncOAuth2Client(client_id, client_secret, scope=scope,
                                        token_endpoint_auth_method="client_secret_basic")
        self._lock = asyncio.Lock()
        self._expires_at: float | None = None
        self.fetch_count = 0

    async def access_token(self) -> str:
        """A token valid for at least `refresh_margin` more seconds."""
        async with self._lock:  # concurrent calls share one token request
            if self._expires_at is None or self._clock() >= self._expires_at - self._refresh_margin:
                await self._fetch()
            return str(self._oauth.token["access_token"])

    async def _fetch(self) -> None:
        extra = {"resource": self._resource} if self._resource else {}
        requested_at = self._clock()
        token = await self._oauth.fetch_token(self._token_url, grant_type="client_credentials",
                                              **extra)
        # Counted from the request, on our clock: a token without expires_in is used once.
        self._expires_at = requested_at + float(token.get("expires_in") or 0)
        self.fetch_count += 1

    async def aclose(self) -> None:
        await self._oauth.aclose()


def gateway_client(base_url: str, credentials: ServiceCredentials) -> AsyncOpenAI:
    """An OpenAI SDK client for rolegate that sends a current token with every request."""
    return AsyncOpenAI(base_url=base_url, api_key=credentials.access_token, max_retries=0)


async def ask(client: AsyncOpenAI, model: str, prompt: str, *, stream: bool = False) -> str:
    """One chat completion's text; with `stream`, the streamed deltas joined."""
    messages = [{"role": "user", "content": prompt}]
    if not stream:
        completion = await client.chat.completions.create(model=model, messages=messages)
        return completion.choices[0].message.content or ""
    parts = []
    async for chunk in await client.chat.completions.create(model=model, messages=messages,
                                                             stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("token-url", "client-id", "client-secret", "gateway", "model"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--scope")
    parser.add_argument("--resource")
    parser.add_argument("--prompt", default="hello")
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    credentials = ServiceCredentials(args.token_url, args.client_id, args.client_secret,
                                     scope=args.scope, resource=args.resource)
    try:
        async with gateway_client(args.gateway, credentials) as client:
            print(await ask(client, args.model, args.prompt, stream=args.stream))
    finally:
        await credentials.aclose()


if __name__ == "__main__":
    asyncio.run(main())
