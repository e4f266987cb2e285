"""Fetching identity-provider documents (discovery, key sets) over HTTP, bounded in time and size.

Every failure becomes `KeySourceUnavailable`; redirects are not followed, so a key-set URL cannot
be bent towards another host.
"""

from __future__ import annotations

import aiohttp

from rolegate.authn.jwks import Fetch, KeySourceUnavailable
from rolegate.providers.http import HttpClient

MAX_DOCUMENT_BYTES = 512 * 1024


def http_fetcher(client: HttpClient, *, timeout: float = 5.0,
                 max_bytes: int = MAX_DOCUMENT_BYTES) -> Fetch:
    """A `Fetch` that GETs a URL with the shared client."""
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async def fetch(url: str) -> bytes:
        try:
            async with client.session.get(url, timeout=client_timeout, allow_redirects=False,
                                          headers={"accept": "application/json"},
                                          **client.egress_options(url)) as response:
                if response.status != 200:
                    raise KeySourceUnavailable(f"GET {url} answered {response.status}")
                body = await _read_at_most(response.content, max_bytes + 1)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise KeySourceUnavailable(f"GET {url} failed: {type(exc).__name__}") from None
        if len(body) > max_bytes:
            raise KeySourceUnavailable(f"GET {url} returned more than {max_bytes} bytes")
        return body

    return fetch


async def _read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to `limit` bytes of the body. `StreamReader.read(n)` returns what has arrived so far
    (as little as one network read), so it is called until the body ends or the limit is met."""
    body = bytearray()
    while len(body) < limit:
        piece = await stream.read(limit - len(body))
        if not piece:
            break
        body += piece
    return bytes(body)
