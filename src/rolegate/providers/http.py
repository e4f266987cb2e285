"""Sending a call to an HTTP upstream over the shared connection pool, and mapping its failures.

Failures leave here as gateway errors: a timeout is `UpstreamTimeout` (504), anything else on the
wire `UpstreamError` (502). Three clocks bound a call: `connect_timeout` for the connection,
`first_byte_timeout` until the first byte of the body, then `stream_idle_timeout` between chunks;
`timeout` bounds the whole exchange. They are one moving deadline on the connection
(`UpstreamConnection.deadline`), not a timer per read.

The upstream leg is plain HTTP/1.1 with keep-alive (`pool.py`, `connection.py`): the gateway sends
one POST and relays the reply byte for byte, so a general-purpose client's cookie, redirect and
decompression machinery would only cost time on every request. Identity-provider documents and
client-credentials tokens, fetched rarely, keep using aiohttp (`HttpClient.session`), through the
`egress` section's proxy and CA bundle (`HttpClient.egress_options(url)`).
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any
from datetime import UTC
from email.utils import parsedate_to_datetime

import aiohttp
import orjson

from rolegate.config.egress import Egress, proxy_for_url
from rolegate.config.load import ConfigError
from rolegate.config.model import DeploymentConfig, EgressConfig
from rolegate.errors import UpstreamError
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.providers.connection import UpstreamConnection
from rolegate.providers.pool import ConnectionPool, Endpoint

_PASSED_HEADERS = (b"openai-processing-ms", b"x-ratelimit-remaining-requests",
                   b"x-ratelimit-remaining-tokens")
_JSON = b"application/json"


class HttpClient:
    """Owns the upstream connection pool and one long-lived aiohttp session for the rest;
    `egress` is the proxy and CA bundle that session's requests use."""

    def __init__(self, egress: EgressConfig | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.pool = ConnectionPool()
        self._egress = egress or EgressConfig()
        self._tls: ssl.SSLContext | None = None
        if self._egress.ca_bundle_file is not None:
            try:
                self._tls = ssl.create_default_context(cafile=self._egress.ca_bundle_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError("egress", [f"egress.ca_bundle_file: cannot load it: {exc}"]) \
                    from None

    def egress_options(self, url: str) -> dict[str, Any]:
        """The aiohttp request options that send `url` out as `egress` says."""
        options: dict[str, Any] = {}
        proxy = proxy_for_url(url, self._egress)
        if proxy is not None:
            options["proxy"] = proxy if "://" in proxy else f"http://{proxy}"
        if self._tls is not None:
            options["ssl"] = self._tls
        return options

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
        await self.pool.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


async def post(client: HttpClient, url: str, call: UpstreamCall, headers: dict[str, str],
               limits: DeploymentConfig, egress: Egress | None = None) -> UpstreamReply:
    pool = client.pool
    endpoint = pool.endpoint(url, egress)
    body = call.raw_body if call.raw_body is not None else orjson.dumps(call.body)
    request = _request_bytes(endpoint, headers, call, body)
    time_left = call.time_left
    connection = await pool.acquire(endpoint.origin, connect_timeout=min(
        limits.connect_timeout, limits.first_byte_timeout, limits.timeout, time_left))
    now = connection.time()
    first_byte_at = now + min(limits.first_byte_timeout, time_left)
    # The caller's deadline ends a reply read whole; a stream that has started runs on.
    ends_at = now + (limits.timeout if call.is_stream else min(limits.timeout, time_left))
    try:
        connection.deadline = min(first_byte_at, ends_at)
        connection.send(request)
        await connection.drain()
        status = await connection.head()
    except BaseException:
        pool.discard(connection)
        raise
    response_headers = connection.headers
    passed = [(name, response_headers[name]) for name in _PASSED_HEADERS
              if name in response_headers]
    return UpstreamReply(status=status,
                         content_type=response_headers.get(b"content-type", _JSON),
                         chunks=_relay(connection, ends_at, limits.stream_idle_timeout),
                         close=_closer(pool, endpoint, connection), headers=passed,
                         retry_after=retry_after(response_headers))


def _request_bytes(endpoint: Endpoint, headers: dict[str, str], call: UpstreamCall,
                   body: bytes) -> bytes:
    lines = [f"{name}: {value}\r\n" for name, value in headers.items()]
    breaks = len(headers) + 4  # one per header line, three of ours, the blank line
    if call.traceparent is not None:  # W3C Trace Context: the attempt's span is the parent
        lines.append(f"traceparent: {call.traceparent}\r\n")
        breaks += 1
    lines.append(f"content-type: {call.content_type}\r\nx-request-id: {call.request_id}\r\n"
                 f"content-length: {len(body)}\r\n\r\n")
    head = "".join(lines)
    if head.count("\n") != breaks or head.count("\r") != breaks:
        # A header value must never smuggle a header or a second request (RFC 9110 §5.5).
        raise UpstreamError("A header for the upstream contains a line break.")
    return endpoint.head + head.encode("utf-8") + body


def retry_after(headers: Mapping[bytes, bytes], now: float | None = None) -> float | None:
    """Seconds the upstream asks us to wait: `retry-after-ms` (OpenAI, Azure), else
    `retry-after` in seconds or as an HTTP date (RFC 9110 §10.2.3), counted from `now`
    (the wall clock by default)."""
    for seconds in (_number(headers.get(b"retry-after-ms")) / 1000,
                    _seconds(headers.get(b"retry-after"), now)):
        if 0 <= seconds < math.inf:
            return seconds
    return None


def _number(value: bytes | None) -> float:
    """`value` as a number; NaN when absent or not a number."""
    try:
        return math.nan if value is None else float(value)
    except ValueError:
        return math.nan


def _seconds(value: bytes | None, now: float | None) -> float:
    """A `retry-after` value in seconds: a number, or the time from `now` to an HTTP date (0
    when it has passed); NaN when absent or unreadable."""
    seconds = _number(value)
    if value is None or not math.isnan(seconds):
        return seconds
    try:
        when = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError):
        return math.nan
    if when.tzinfo is None:  # asctime's form names no zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


async def _relay(connection: UpstreamConnection, ends_at: float,
                 idle: float) -> AsyncIterator[bytes]:
    while True:
        chunk = await connection.read()
        if not chunk:
            return
        connection.deadline = min(connection.time() + idle, ends_at)
        yield chunk


def _closer(pool: ConnectionPool, endpoint: Endpoint,
            connection: UpstreamConnection) -> Callable[[], Awaitable[None]]:
    is_closed = False

    async def close() -> None:
        nonlocal is_closed
        if not is_closed:
            is_closed = True
            pool.release(endpoint.origin, connection)
    return close
