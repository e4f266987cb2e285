"""`http_fetcher`: how a key document is fetched over HTTP from a local server, and each way
the fetch fails as `KeySourceUnavailable` (which the key cache turns into a 503)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from rolegate.authn.fetch import http_fetcher
from rolegate.authn.jwks import KeySourceUnavailable, parse_key_set
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
