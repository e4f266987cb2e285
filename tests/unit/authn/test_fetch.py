"""`http_fetcher`: how a key document is fetched over HTTP from a local server, and each way
the fetch fails as `KeySourceUnavailable` (which the key cache turns into a 503)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from rolegate.authn.fetch import _read_at_most, http_fetcher
from rolegate.authn.jwks import KeySourceUnavailable, parse_key_set
from rolegate.config.model import EgressConfig
from rolegate.providers.http import HttpClient
from tests.support.keys import KeyPair, jwks
from tests.support.servers import LocalServer
from tests.support.process import free_port

LIMIT = 4096


class DocumentServer(LocalServer):
    """Serves `body` at /doc with `status`, written in pieces of `piece` bytes."""

    def __init__(self, body: bytes, *, status: int = 200, piece: int = 0) -> None:
        super().__init__()
        self.body, self.status, self.piece = body, status, piece
        self.app.router.add_get("/doc", self._doc)

    async def _doc(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=self.status)
        response.content_type = "application/json"
        await response.prepare(request)
        piece = self.piece or len(self.body) or 1
        for start in range(0, len(self.body), piece):
            await response.write(self.body[start:start + piece])
            await asyncio.sleep(0.001)  # each piece in a network read of its own
        await response.write_eof()
        return response


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    yield client
    await client.close()


async def fetch_error(http: HttpClient, url: str) -> str:
    with pytest.raises(KeySourceUnavailable) as caught:
        await http_fetcher(http, max_bytes=LIMIT)(url)
    return str(caught.value)


async def test_a_key_set_sent_in_small_pieces_is_read_whole(http, rsa_key: KeyPair):
    document = json.dumps({"keys": [rsa_key.public_jwk()] * 3}).encode()
    assert len(document) > 1024
    async with DocumentServer(document, piece=100) as server:
        body = await http_fetcher(http, max_bytes=LIMIT)(f"{server.url}/doc")

    assert body == document
    assert [key.kid for key in parse_key_set(body)] == [rsa_key.kid] * 3


async def test_a_document_of_exactly_the_limit_is_accepted(http):
    document = b" " * (LIMIT - 2) + b"{}"
    async with DocumentServer(document, piece=512) as server:
        body = await http_fetcher(http, max_bytes=LIMIT)(f"{server.url}/doc")

    assert body == document


async def test_a_document_over_the_limit_is_refused_even_in_small_pieces(http, rsa_key):
    document = jwks(rsa_key) + b" " * LIMIT
    async with DocumentServer(document, piece=256) as server:
        message = await fetch_error(http, f"{server.url}/doc")

    assert message == f"GET {server.url}/doc returned more than {LIMIT} bytes"


async def test_a_status_other_than_200_is_a_failed_fetch(http, rsa_key):
    async with DocumentServer(jwks(rsa_key), status=500) as server:
        message = await fetch_error(http, f"{server.url}/doc")

    assert message == f"GET {server.url}/doc answered 500"


async def test_a_refused_connection_is_a_failed_fetch_named_by_its_error_type(http):
    url = f"http://127.0.0.1:{free_port()}/doc"  # nothing listens there

    message = await fetch_error(http, url)

    assert message == f"GET {url} failed: ClientConnectorError"


class StallingServer(LocalServer):
    """Answers /doc only after `delay` seconds; records the headers of each request."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.app.router.add_get("/doc", self._doc)

    async def _doc(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return web.json_response({"keys": []})


class RedirectingServer(LocalServer):
    """Redirects /doc to /elsewhere, which serves a key set; remembers the Accept header."""

    def __init__(self, document: bytes) -> None:
        super().__init__()
        self.document = document
        self.accept: list[str | None] = []
        self.app.router.add_get("/doc", self._doc)
        self.app.router.add_get("/elsewhere", self._elsewhere)

    async def _doc(self, request: web.Request) -> web.Response:
        self.accept.append(request.headers.get("Accept"))
        raise web.HTTPFound("/elsewhere")

    async def _elsewhere(self, request: web.Request) -> web.Response:
        self.accept.append(request.headers.get("Accept"))
        return web.Response(body=self.document, content_type="application/json")


async def test_a_key_server_slower_than_the_timeout_is_a_failed_fetch(http):
    async with StallingServer(delay=2.0) as server:
        with pytest.raises(KeySourceUnavailable) as caught:
            await http_fetcher(http, timeout=0.2)(f"{server.url}/doc")

    assert str(caught.value) == f"GET {server.url}/doc failed: TimeoutError"


async def test_a_redirect_is_not_followed(http, rsa_key):
    async with RedirectingServer(jwks(rsa_key)) as server:
        message = await fetch_error(http, f"{server.url}/doc")

    assert message == f"GET {server.url}/doc answered 302"
    assert len(server.accept) == 1  # /elsewhere was never asked for


async def test_the_fetch_asks_for_json(http, rsa_key):
    async with DocumentServer(jwks(rsa_key)) as server, RedirectingServer(b"{}") as recorder:
        await http_fetcher(http)(f"{server.url}/doc")
        await fetch_error(http, f"{recorder.url}/doc")

    assert recorder.accept == ["application/json"]


class ForwardProxy(LocalServer):
    """A plain-http forward proxy that answers every request itself with `document`, recording
    the host each one was meant for."""

    def __init__(self, document: bytes) -> None:
        super().__init__()
        self.document = document
        self.hosts: list[str] = []
        self.app.router.add_get("/{path:.*}", self._any)

    async def _any(self, request: web.Request) -> web.Response:
        self.hosts.append(request.host)
        return web.Response(body=self.document, content_type="application/json")


async def test_a_key_set_is_fetched_through_the_egress_proxy(rsa_key):
    """`keys.example` resolves nowhere: only the proxy can answer for it."""
    async with ForwardProxy(jwks(rsa_key)) as proxy:
        client = HttpClient(EgressConfig(http_proxy=proxy.url))
        try:
            body = await http_fetcher(client)("http://keys.example/jwks")
        finally:
            await client.close()

    assert body == jwks(rsa_key)
    assert proxy.hosts == ["keys.example"]


class Pieces:
    """A body stream that hands out at most `size` bytes per read, counting what it was asked."""

    def __init__(self, body: bytes, size: int) -> None:
        self.body, self.size = body, size
        self.asked: list[int] = []

    async def read(self, n: int) -> bytes:
        self.asked.append(n)
        piece, self.body = self.body[:min(n, self.size)], self.body[min(n, self.size):]
        return piece


async def test_reading_stops_at_the_limit_and_never_asks_for_more_than_is_left():
    stream = Pieces(b"abcdefghij", size=3)

    body = await _read_at_most(stream, 4)  # type: ignore[arg-type]

    assert body == b"abcd"
    assert stream.asked == [4, 1]


async def test_reading_a_body_shorter_than_the_limit_returns_all_of_it():
    assert await _read_at_most(Pieces(b"abc", size=2), 10) == b"abc"  # type: ignore[arg-type]
