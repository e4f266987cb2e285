"""CONNECT tunnels against proxies that misbehave: each failure is a 502 that names the proxy and
what it did, and nothing is sent to the upstream through a tunnel that was not opened."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from rolegate.config.egress import Proxy
from rolegate.errors import UpstreamError
from rolegate.providers.tunnel import open_tunnel


@dataclass
class FakeProxy:
    """Reads one request head, writes `answer` (nothing: just closes), and keeps the heads."""

    answer: bytes = b""
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests.append(await reader.readuntil(b"\r\n\r\n"))
        if self.answer:
            writer.write(self.answer)
            await writer.drain()
        writer.close()


@pytest.fixture
async def fake_proxy() -> AsyncIterator[FakeProxy]:
    proxy = FakeProxy()
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    yield proxy
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(("answer", "message"), [
    (b"HTTP/1.1 200 Connection established\r\n\r\nearly", "sent bytes after its answer"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "is not an HTTP answer"),
    (b"", "closed the connection before answering"),
    (b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n",
     "refused the tunnel to api.example:443 (status 407: it wants credentials"),
], ids=["bytes-before-tls", "not-http", "closed", "needs-credentials"])
async def test_a_proxy_that_does_not_open_the_tunnel_is_an_upstream_error_naming_it(
        fake_proxy, answer, message):
    fake_proxy.answer = answer
    port = fake_proxy.port
    proxy = Proxy("127.0.0.1", port, authorization="Basic Zm9vOmJhcg==")

    with pytest.raises(UpstreamError, match=f"proxy 127.0.0.1:{port} .*{re.escape(message)}"):
        await open_tunnel(asyncio.get_running_loop(), proxy, "api.example", 443,
                          ssl.create_default_context())

    assert fake_proxy.requests == [b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n"
                        b"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n\r\n"]
