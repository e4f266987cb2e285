"""Sending a call to an HTTP upstream with the shared client, and mapping its failures.

aiohttp's exceptions stop here: a timeout becomes `UpstreamTimeout` (504), anything else on the
wire `UpstreamError` (502).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import orjson

from rolegate.errors import UpstreamError, UpstreamTimeout
from rolegate.providers.base import UpstreamCall, UpstreamReply

_PASSED_HEADERS = (b"openai-processing-ms", b"x-ratelimit-remaining-requests",
                   b"x-ratelimit-remaining-tokens")


class HttpClient:
    """Owns the one long-lived, pooled `aiohttp.ClientSession` for every upstream and key set."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, ttl_dns_cache=300)
            # No cookie jar: the session is shared by every caller, so a cookie one upstream
            # reply set must never ride along on another caller's request.
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  cookie_jar=aiohttp.DummyCookieJar(),
                                                  skip_auto_headers=("User-Agent",))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def post_json(client: HttpClient, url: str, call: UpstreamCall,
                    headers: dict[str, str], timeout: float) -> UpstreamReply:
    body = call.raw_body if call.raw_body is not None else orjson.dumps(call.body)
    headers = {**headers, "content-type": "application/json", "x-request-id": call.request_id}
    try:
        response = await client.session.post(
            url, data=body, headers=headers, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout))
    except asyncio.TimeoutError:
        raise UpstreamTimeout("The upstream did not answer in time.") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(f"The upstream could not be reached ({type(exc).__name__}).") from None
    content_type = response.headers.get("content-type", "application/json").encode("latin-1")
    passed = [(name, response.headers[name.decode()].encode("latin-1"))
              for name in _PASSED_HEADERS if name.decode() in response.headers]
    return UpstreamReply(status=response.status, content_type=content_type,
                         chunks=_relay(response), close=_closer(response), headers=passed)


async def _relay(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except asyncio.TimeoutError:
        raise UpstreamTimeout("The upstream stopped answering.") from None
    except (aiohttp.ClientError, OSError):
        raise UpstreamError("The upstream connection failed mid-response.") from None


def _closer(response: aiohttp.ClientResponse):  # type: ignore[no-untyped-def]
    async def close() -> None:
        response.release() if response.content.at_eof() else response.close()
    return close
