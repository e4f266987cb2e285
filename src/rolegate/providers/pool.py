"""`ConnectionPool`: the keep-alive connections to every upstream origin, and how a request's
bytes are laid out for one (`Endpoint`).

    endpoint = pool.endpoint("https://api.openai.com/v1/chat/completions")
    connection = await pool.acquire(endpoint.origin, connect_timeout=10)
    ...
    pool.release(endpoint.origin, connection)   # back to the idle list, or closed

Connections are opened on demand, reused most-recently-idle first (the one least likely to have
been closed by the other side), and closed when their response was not read to the end, when
either side asked for `Connection: close`, or when the pool is closed.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from rolegate.errors import UpstreamError, UpstreamTimeout
from rolegate.providers.connection import NO_ANSWER, UpstreamConnection

MAX_IDLE_PER_ORIGIN = 256
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL prepared once: its origin and the start of every request line sent to it."""

    origin: Origin
    head: bytes  # b"POST /v1/chat/completions HTTP/1.1\r\nHost: example.com\r\n"

    @classmethod
    def post(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        authority = host if port == _DEFAULT_PORTS[parts.scheme] else f"{host}:{port}"
        target = quote(parts.path or "/", safe=_SAFE_PATH)
        if parts.query:
            target += "?" + quote(parts.query, safe=_SAFE_QUERY)
        head = f"POST {target} HTTP/1.1\r\nHost: {authority}\r\n".encode("ascii")
        return cls(Origin(parts.scheme, parts.hostname, port), head)


class ConnectionPool:
    def __init__(self, *, max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN) -> None:
        self._max_idle = max_idle_per_origin
        self._idle: dict[Origin, list[UpstreamConnection]] = {}
        self._open: set[UpstreamConnection] = set()
        self._endpoints: dict[str, Endpoint] = {}
        self._tls: ssl.SSLContext | None = None

    def endpoint(self, url: str) -> Endpoint:
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            endpoint = self._endpoints[url] = Endpoint.post(url)
        return endpoint

    async def acquire(self, origin: Origin, *, connect_timeout: float) -> UpstreamConnection:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.is_closed:
                return connection
            self._open.discard(connection)
        return await self._connect(origin, connect_timeout)

    def release(self, origin: Origin, connection: UpstreamConnection) -> None:
        idle = self._idle.setdefault(origin, [])
        if connection.is_reusable and len(idle) < self._max_idle:
            idle.append(connection)
            return
        connection.close()
        self._open.discard(connection)

    def discard(self, connection: UpstreamConnection) -> None:
        connection.abort()
        self._open.discard(connection)

    async def close(self) -> None:
        for connection in self._open:
            connection.abort()
        self._open.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing

    async def _connect(self, origin: Origin, timeout: float) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: UpstreamConnection(loop), origin.host, origin.port, ssl=tls,
                    server_hostname=origin.host if tls is not None else None)
        except TimeoutError:
            raise UpstreamTimeout(NO_ANSWER) from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(
                f"The upstream could not be reached ({type(exc).__name__}).") from None
        self._open.add(connection)
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls
