"""`ConnectionPool`: the keep-alive connections to every upstream origin, and how a request's
bytes are laid out for one (`Endpoint`).

    endpoint = pool.endpoint("https://api.openai.com/v1/chat/completions")
    connection = await pool.acquire(endpoint.origin, connect_timeout=10)
    ...
    pool.release(endpoint.origin, connection)   # back to the idle list, or closed

Connections are opened on demand, reused most-recently-idle first (the one least likely to have
been closed by the other side), and closed when their response was not read to the end, when
either side asked for `Connection: close`, or when the pool is closed.

A deployment with an `Egress` (config/egress.py) has origins of its own: through a proxy, an
https connection is a CONNECT tunnel with TLS inside it (`tunnel.py`) and a plain-http request
names its absolute URL; a CA bundle or client certificate gets its own TLS context. All of that
happens when a connection opens: a request on a pooled connection costs the same either way.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from rolegate.config.egress import Egress
from rolegate.errors import UpstreamError, UpstreamTimeout
from rolegate.providers.connection import NO_ANSWER, UpstreamConnection
from rolegate.providers.tunnel import open_tunnel, tls_failure

MAX_IDLE_PER_ORIGIN = 256
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    egress: Egress | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL prepared once: its origin and the start of every request line sent to it."""

    origin: Origin
    head: bytes  # b"POST /v1/chat/completions HTTP/1.1\r\nHost: example.com\r\n"

    @classmethod
    def post(cls, url: str, egress: Egress | None = None) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        authority = host if port == _DEFAULT_PORTS[parts.scheme] else f"{host}:{port}"
        target = quote(parts.path or "/", safe=_SAFE_PATH)
        if parts.query:
            target += "?" + quote(parts.query, safe=_SAFE_QUERY)
        proxy = egress.proxy if egress is not None else None
        if proxy is not None and parts.scheme == "http":
            # Through a proxy, a plain-http request names its absolute URL (RFC 9112 §3.2.2).
            target = f"http://{authority}{target}"
            if proxy.authorization is not None:
                authority += f"\r\nProxy-Authorization: {proxy.authorization}"
        head = f"POST {target} HTTP/1.1\r\nHost: {authority}\r\n".encode("ascii")
        return cls(Origin(parts.scheme, parts.hostname, port, egress), head)


class ConnectionPool:
    def __init__(self, *, max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN) -> None:
        self._max_idle = max_idle_per_origin
        self._idle: dict[Origin, list[UpstreamConnection]] = {}
        self._open: set[UpstreamConnection] = set()
        self._endpoints: dict[str, Endpoint] = {}
        self._routed: dict[tuple[str, Egress], Endpoint] = {}
        self._tls: dict[Egress | None, ssl.SSLContext] = {}

    def endpoint(self, url: str, egress: Egress | None = None) -> Endpoint:
        if egress is not None:
            return self._routed_endpoint(url, egress)
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            endpoint = self._endpoints[url] = Endpoint.post(url)
        return endpoint

    def _routed_endpoint(self, url: str, egress: Egress) -> Endpoint:
        endpoint = self._routed.get((url, egress))
        if endpoint is None:
            endpoint = self._routed[url, egress] = Endpoint.post(url, egress)
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
        tls = self.tls_context(origin.egress) if origin.scheme == "https" else None
        proxy = origin.egress.proxy if origin.egress is not None else None
        try:
            async with asyncio.timeout(timeout):
                if proxy is not None and tls is not None:
                    connection = await open_tunnel(loop, proxy, origin.host, origin.port, tls)
                else:
                    host, port = (origin.host, origin.port) if proxy is None else \
                        (proxy.host, proxy.port)
                    _, connection = await loop.create_connection(
                        lambda: UpstreamConnection(loop), host, port, ssl=tls,
                        server_hostname=origin.host if tls is not None else None)
        except TimeoutError:
            raise UpstreamTimeout(NO_ANSWER) from None
        except ssl.SSLCertVerificationError as exc:
            raise tls_failure(exc) from None
        except (OSError, ssl.SSLError) as exc:
            via = "" if proxy is None else f" through the proxy {proxy.host}:{proxy.port}"
            raise UpstreamError(
                f"The upstream could not be reached{via} ({type(exc).__name__}).") from None
        self._open.add(connection)
        return connection

    def tls_context(self, egress: Egress | None) -> ssl.SSLContext:
        """The TLS context for `egress`'s connections, made once (raises OSError or
        ssl.SSLError when its files cannot be read: build it at start-up)."""
        key = egress if egress is not None and egress.has_tls_material else None
        context = self._tls.get(key)
        if context is None:
            context = self._tls[key] = _new_tls_context(key)
        return context


def _new_tls_context(egress: Egress | None) -> ssl.SSLContext:
    if egress is None:
        return ssl.create_default_context()
    context = ssl.create_default_context(cafile=egress.ca_bundle_file)
    if egress.client_cert_file is not None:
        context.load_cert_chain(egress.client_cert_file, egress.client_key_file)
    return context
