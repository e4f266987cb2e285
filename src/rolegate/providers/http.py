"""Sending a call to an HTTP upstream with the shared client, and mapping its failures.

aiohttp's exceptions stop here: a timeout becomes `UpstreamTimeout` (504), anything else on the
wire `UpstreamError` (502). Three clocks bound a call: `connect_timeout` for the connection,
`first_byte_timeout` until the first byte of the body, then `stream_idle_timeout` between chunks;
`timeout` bounds the whole exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from rolegate.config.model import DeploymentConfig
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


async def post(client: HttpClient, url: str, call: UpstreamCall, headers: dict[str, str],
               limits: DeploymentConfig) -> UpstreamReply:
    body = call.raw_body if call.raw_body is not None else orjson.dumps(call.body)
    headers = {**headers, "content-type": call.content_type, "x-request-id": call.request_id}
    loop = asyncio.get_running_loop()
    first_byte_at = loop.time() + limits.first_byte_timeout
    timeout = aiohttp.ClientTimeout(total=limits.timeout, sock_connect=limits.connect_timeout)
    try:
        async with asyncio.timeout_at(first_byte_at):
            response = await client.session.post(url, data=body, headers=headers,
                                                 allow_redirects=False, timeout=timeout)
    except TimeoutError:
        raise UpstreamTimeout("The upstream did not answer in time.") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(f"The upstream could not be reached ({type(exc).__name__}).") from None
    content_type = response.headers.get("content-type", "application/json").encode("latin-1")
    passed = [(name, response.headers[name.decode()].encode("latin-1"))
              for name in _PASSED_HEADERS if name.decode() in response.headers]
    return UpstreamReply(status=response.status, content_type=content_type,
                         chunks=_relay(response, first_byte_at, limits.stream_idle_timeout),
                         close=_closer(response), headers=passed,
                         retry_after=retry_after(response.headers))


def retry_after(headers: CIMultiDictProxy[str]) -> float | None:
    """Seconds the upstream asks us to wait: `retry-after-ms` (OpenAI, Azure), else
    `retry-after` in seconds (RFC 9110 §10.2.3; the HTTP-date form is not used by these APIs)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if 0 <= seconds < float("inf"):
            return seconds
    return None


async def _relay(response: aiohttp.ClientResponse, first_byte_at: float,
                 idle: float) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    deadline = first_byte_at
    try:
        while True:
            async with asyncio.timeout_at(deadline):
                chunk = await response.content.readany()
            if not chunk:
                return
            yield chunk
            deadline = loop.time() + idle
    except TimeoutError:
        raise UpstreamTimeout("The upstream stopped answering.") from None
    except (aiohttp.ClientError, OSError):
        raise UpstreamError("The upstream connection failed mid-response.") from None


def _closer(response: aiohttp.ClientResponse) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        response.release() if response.content.at_eof() else response.close()
    return close
