"""Opening an upstream connection through an HTTP forward proxy: a CONNECT tunnel (RFC 9110
§9.3.6) with TLS to the upstream inside it, and the failures of doing so as gateway errors.

    connection = await open_tunnel(loop, proxy, "api.openai.com", 443, tls_context)

The proxy's answer is read by a small protocol of its own; once it says 2xx, TLS starts on the
same socket and the `UpstreamConnection` takes the encrypted transport over, exactly as if it
had connected directly.
"""

from __future__ import annotations

import asyncio
import re
import ssl

from rolegate.config.egress import Proxy
from rolegate.errors import UpstreamError
from rolegate.providers.connection import UpstreamConnection

MAX_PROXY_HEAD = 16 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})[ \r]")


class ProxyRefused(UpstreamError):
    """The proxy answered CONNECT with something other than 2xx (a 502 to the caller)."""


class _ConnectReply(asyncio.Protocol):
    """Collects the proxy's answer to CONNECT, up to its blank line."""

    def __init__(self, loop: asyncio.AbstractEventLoop, where: str) -> None:
        self.status: asyncio.Future[int] = loop.create_future()
        self._where = where
        self._head = b""

    def data_received(self, data: bytes) -> None:
        if self.status.done():
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_PROXY_HEAD:
                self._refuse("sent an answer too long to be one")
            return
        match = _STATUS_LINE.match(self._head)
        if match is None:
            self._refuse("sent something that is not an HTTP answer")
            return
        status = int(match.group(1))
        if 200 <= status < 300 and end + 4 != len(self._head):
            # Nothing may follow a tunnel's answer before our TLS ClientHello: the upstream
            # speaks second in TLS, so early bytes mean a proxy that is not tunnelling.
            self._refuse("sent bytes after its answer, before TLS started")
        else:
            self.status.set_result(status)  # a refusal's body is not read

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self._refuse("closed the connection before answering")

    def _refuse(self, what: str) -> None:
        if not self.status.done():
            self.status.set_exception(ProxyRefused(f"The proxy {self._where} {what}."))


async def open_tunnel(loop: asyncio.AbstractEventLoop, proxy: Proxy, host: str, port: int,
                      tls: ssl.SSLContext) -> UpstreamConnection:
    """A connection to `host:port` through `proxy`, TLS verified against `tls`."""
    where = f"{proxy.host}:{proxy.port}"
    transport, reply = await loop.create_connection(
        lambda: _ConnectReply(loop, where), proxy.host, proxy.port)
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        request = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        if proxy.authorization is not None:
            request += f"Proxy-Authorization: {proxy.authorization}\r\n"
        transport.write((request + "\r\n").encode("ascii"))
        status = await reply.status
        if not 200 <= status < 300:
            raise ProxyRefused(f"The proxy {where} refused the tunnel to {authority} "
                               f"(status {status}{_HINTS.get(status, '')}).")
        encrypted = await loop.start_tls(transport, reply, tls, server_hostname=host)
    except BaseException:
        transport.abort()
        raise
    assert encrypted is not None
    connection = UpstreamConnection(loop)
    encrypted.set_protocol(connection)
    connection.connection_made(encrypted)
    return connection


_HINTS = {407: ": it wants credentials, give them in the proxy URL",
          403: ": its rules forbid this destination"}


def tls_failure(error: ssl.SSLCertVerificationError) -> UpstreamError:
    """A certificate the configured CAs do not vouch for: say so, and what to configure."""
    reason = error.verify_message or error.reason or "verification failed"
    return UpstreamError(f"The upstream's TLS certificate was not accepted ({reason}); behind "
                         "a TLS-intercepting proxy set egress.ca_bundle_file to its CA.")
