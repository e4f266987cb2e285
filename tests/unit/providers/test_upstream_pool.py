"""The upstream connection pool against a raw socket server that answers with exact bytes:
body framings, keep-alive reuse, interim responses, malformed replies, deadlines, back-pressure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from rolegate.config.model import DeploymentConfig
from rolegate.errors import UpstreamError, UpstreamTimeout
from rolegate.providers.base import UpstreamCall
from rolegate.providers.http import HttpClient, post, retry_after
from rolegate.providers.pool import Endpoint

OK_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"


class RawUpstream:
    """Reads one request at a time (head plus content-length body) and lets `answer` reply."""

    def __init__(self, answer: Callable[[bytes, asyncio.StreamWriter], object]) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                result = self.answer(request, writer)
                if asyncio.iscoroutine(result):
                    await result
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._handlers.discard(handler)


def limits(**overrides: float) -> DeploymentConfig:
    return DeploymentConfig(provider="openai-compatible", api_base="http://127.0.0.1/v1",
                            **overrides)


def call(body: bytes = b'{"model":"m"}') -> UpstreamCall:
    return UpstreamCall("chat/completions", {}, body, False, "req-1")


async def exchange(client: HttpClient, url: str, **overrides: float) -> tuple[int, bytes]:
    reply = await post(client, url, call(), {"authorization": "Bearer k"}, limits(**overrides))
    try:
        return reply.status, b"".join([chunk async for chunk in reply.chunks])
    finally:
        await reply.close()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient()
    yield http
    await http.close()


def content_length(body: bytes) -> Callable[[bytes, asyncio.StreamWriter], None]:
    return lambda request, writer: writer.write(
        OK_HEAD + b"content-length: %d\r\n\r\n" % len(body) + body)


async def test_request_carries_host_headers_length_and_body_and_connection_is_reused(client):
    async with RawUpstream(content_length(b'{"ok":true}')) as upstream:
        assert await exchange(client, upstream.url) == (200, b'{"ok":true}')
        assert await exchange(client, upstream.url) == (200, b'{"ok":true}')

    assert upstream.connections == 1
    head, _, body = upstream.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert set(lines[1:]) == {b"Host: 127.0.0.1:%d" % upstream.port, b"authorization: Bearer k",
                              b"content-type: application/json", b"x-request-id: req-1",
                              b"content-length: 13"}
    assert body == b'{"model":"m"}'


async def test_chunked_body_is_decoded_and_its_pieces_relayed(client):
    def chunked(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK_HEAD + b"transfer-encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    async with RawUpstream(chunked) as upstream:
        assert await exchange(client, upstream.url) == (200, b"hello world")
        assert await exchange(client, upstream.url) == (200, b"hello world")
    assert upstream.connections == 1


async def test_body_delimited_by_close_is_read_to_the_end_and_not_reused(client):
    def until_close(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        writer.close()
    async with RawUpstream(until_close) as upstream:
        assert await exchange(client, upstream.url) == (200, b"all of it")
        assert await exchange(client, upstream.url) == (200, b"all of it")
    assert upstream.connections == 2


async def test_connection_close_answer_is_not_reused(client):
    def closing(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK_HEAD + b"connection: close\r\ncontent-length: 2\r\n\r\n{}")
    async with RawUpstream(closing) as upstream:
        for _ in range(2):
            assert await exchange(client, upstream.url) == (200, b"{}")
    assert upstream.connections == 2


async def test_interim_100_continue_is_skipped(client):
    def interim(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK_HEAD + b"content-length: 2\r\n\r\n{}")
    async with RawUpstream(interim) as upstream:
        assert await exchange(client, upstream.url) == (200, b"{}")


async def test_reply_headers_status_and_retry_after_are_read(client):
    def limited(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                     b"Retry-After-Ms: 1500\r\nX-RateLimit-Remaining-Requests: 0\r\n"
                     b"content-length: 2\r\n\r\n{}")
    async with RawUpstream(limited) as upstream:
        reply = await post(client, upstream.url, call(), {}, limits())
        await reply.close()
    assert reply.status == 429
    assert reply.content_type == b"application/json"
    assert reply.retry_after == 1.5
    assert reply.headers == [(b"x-ratelimit-remaining-requests", b"0")]


@pytest.mark.parametrize(("headers", "expected"), [
    ({b"retry-after": b"2"}, 2.0), ({b"retry-after-ms": b"250", b"retry-after": b"9"}, 0.25),
    ({b"retry-after": b"soon"}, None), ({b"retry-after": b"-1"}, None), ({}, None),
], ids=["seconds", "milliseconds-first", "unreadable", "negative", "absent"])
def test_retry_after_reads_milliseconds_then_seconds(headers, expected):
    assert retry_after(headers) == expected


NOW = 1_750_000_000.0  # Sun, 15 Jun 2025 15:06:40 GMT


@pytest.mark.parametrize(("value", "expected"), [
    (b"Sun, 15 Jun 2025 15:06:47 GMT", 7.0), (b"Sun, 15 Jun 2025 15:00:00 GMT", 0.0),
    (b"Sunday, 15-Jun-25 15:06:50 GMT", 10.0), (b"Sun Jun 15 15:06:42 2025", 2.0),
    (b"Someday, 99 Foo 2025", None), (b"", None),
], ids=["imf-fixdate", "passed", "rfc850", "asctime", "garbage", "empty"])
def test_retry_after_as_an_http_date_counts_from_now(value, expected):
    assert retry_after({b"retry-after": value}, now=NOW) == expected


async def test_malformed_reply_is_upstream_error_and_connection_dropped(client):
    def garbage(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    async with RawUpstream(garbage) as upstream:
        with pytest.raises(UpstreamError):
            await exchange(client, upstream.url)


async def test_connection_dropped_before_answer_is_upstream_error(client):
    def drop(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()
    async with RawUpstream(drop) as upstream:
        with pytest.raises(UpstreamError, match="could not be reached"):
            await exchange(client, upstream.url)


async def test_body_cut_short_is_upstream_error_mid_response(client):
    def cut(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK_HEAD + b"content-length: 100\r\n\r\npartial")
        writer.transport.abort()
    async with RawUpstream(cut) as upstream:
        with pytest.raises(UpstreamError, match="mid-response"):
            await exchange(client, upstream.url)


async def test_refused_connection_is_upstream_error(client):
    async with RawUpstream(content_length(b"")) as upstream:
        url = upstream.url
    with pytest.raises(UpstreamError, match="could not be reached"):
        await exchange(client, url)


async def test_no_answer_before_first_byte_deadline_is_timeout(client):
    async def silent(request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
    async with RawUpstream(silent) as upstream:
        with pytest.raises(UpstreamTimeout, match="did not answer in time"):
            await exchange(client, upstream.url, first_byte_timeout=0.1)


async def test_idle_deadline_is_rearmed_by_each_chunk_and_fires_on_a_stall(client):
    async def trickle(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK_HEAD + b"transfer-encoding: chunked\r\n\r\n")
        for _ in range(6):  # 6 x 0.25 s: longer than one idle period, never idle for one
            await asyncio.sleep(0.25)
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
        await asyncio.sleep(10)
    async with RawUpstream(trickle) as upstream:
        # Wide margins: a loaded machine can stall the loop for a few hundred milliseconds.
        reply = await post(client, upstream.url, call(), {},
                           limits(connect_timeout=5, first_byte_timeout=1.0,
                                  stream_idle_timeout=1.0))
        received = b""
        with pytest.raises(UpstreamTimeout, match="stopped answering"):
            async for chunk in reply.chunks:
                received += chunk
        await reply.close()
    assert received == b"xxxxxx"


async def test_total_timeout_bounds_a_stream_that_keeps_trickling(client):
    async def endless(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK_HEAD + b"transfer-encoding: chunked\r\n\r\n")
        while True:
            await asyncio.sleep(0.02)
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
    async with RawUpstream(endless) as upstream:
        with pytest.raises(UpstreamTimeout):
            await exchange(client, upstream.url, timeout=0.2, stream_idle_timeout=5)


async def test_large_body_is_relayed_whole_with_reading_paused_in_between(client):
    body = bytes(range(256)) * 8192  # 2 MiB, well past the read-pause threshold
    async with RawUpstream(content_length(body)) as upstream:
        reply = await post(client, upstream.url, call(), {}, limits())
        pieces = []
        async for chunk in reply.chunks:
            pieces.append(chunk)
            await asyncio.sleep(0)  # a slow reader
        await reply.close()
        assert b"".join(pieces) == body
        assert await exchange(client, upstream.url) == (200, body)
    assert upstream.connections == 1


async def test_reply_closed_before_its_end_closes_the_connection(client):
    async def endless(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK_HEAD + b"transfer-encoding: chunked\r\n\r\n1\r\nx\r\n")
        await asyncio.sleep(5)
    async with RawUpstream(endless) as upstream:
        reply = await post(client, upstream.url, call(), {}, limits())
        assert await anext(reply.chunks) == b"x"
        await reply.close()
        await reply.close()  # closing twice is harmless
        upstream.answer = content_length(b"{}")
        assert await exchange(client, upstream.url) == (200, b"{}")
    assert upstream.connections == 2


async def test_header_value_with_a_line_break_is_refused_before_sending(client):
    async with RawUpstream(content_length(b"{}")) as upstream:
        with pytest.raises(UpstreamError, match="line break"):
            await post(client, upstream.url, call(), {"authorization": "k\r\nx-evil: 1"},
                       limits())
    assert upstream.requests == []


@pytest.mark.parametrize(("url", "origin", "head"), [
    ("https://api.example.com/v1/chat/completions", ("https", "api.example.com", 443),
     b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\n"),
    ("http://[::1]:8080/openai/deployments/a%20b/embeddings?api-version=2024-10-21",
     ("http", "::1", 8080),
     b"POST /openai/deployments/a%20b/embeddings?api-version=2024-10-21 HTTP/1.1\r\n"
     b"Host: [::1]:8080\r\n"),
], ids=["https-default-port", "ipv6-port-query"])
def test_endpoint_prepares_origin_and_request_line(url, origin, head):
    endpoint = Endpoint.post(url)
    assert (endpoint.origin.scheme, endpoint.origin.host, endpoint.origin.port) == origin
    assert endpoint.head == head
