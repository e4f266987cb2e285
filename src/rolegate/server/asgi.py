"""The thin ASGI layer: a `Request` read from the scope, and `Response`s sent back.

Kept to what the gateway needs, so the hot path has no framework between the server and the
handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson

from rolegate.errors import GatewayError, PayloadTooLarge, RequestTimeout, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
# In a scope's `extensions`: the server bounds the time the request body may take to arrive.
BODY_DEADLINE_EXTENSION = "rolegate.body_deadline"
# Set in a request's scope by the server when the caller disconnected before the response
# started; the request's task is then cancelled, and the app logs a 499 rather than an error.
CLIENT_LEFT = "rolegate.client_left"
CLIENT_CLOSED = 499  # the status logged for a caller that left before it was answered


class Stream(Protocol):
    """A response body sent as it comes; `aclose()` releases what it reads from, even when it
    was never iterated (the caller left before the first chunk)."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class ClientDisconnected(Exception):
    """The caller went away before its request body arrived."""


class Request:
    __slots__ = ("scope", "receive", "method", "path", "headers", "request_id", "state")

    def __init__(self, scope: Scope, receive: Receive, request_id: str) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            # A repeated header is joined, as HTTP allows; Authorization is never legitimately
            # repeated.
            self.headers[name] = (self.headers[name] + b"," + value if name in self.headers
                                  else value)
        self.request_id = request_id
        self.state: dict[str, Any] = {}

    @property
    def query_string(self) -> bytes:
        return bytes(self.scope.get("query_string", b""))

    def query_param(self, name: str) -> str | None:
        values = parse_qs(self.query_string.decode("latin-1")).get(name)
        return values[0] if values else None

    async def body(self, limit: int, timeout: float | None = None) -> bytes:
        """The whole body: at most `limit` bytes (else 413), within `timeout` seconds (else 408,
        so a client trickling its body cannot hold a connection and its buffer forever). A
        server that announces `rolegate.body_deadline` keeps that deadline itself."""
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        if timeout is None or BODY_DEADLINE_EXTENSION in self.scope.get("extensions", ()):
            return await self._read_body(limit)  # the server times the body (protocol.py)
        try:
            async with asyncio.timeout(timeout):
                return await self._read_body(limit)
        except TimeoutError:
            raise RequestTimeout(f"The request body did not arrive within {timeout:g} "
                                 "seconds.") from None

    async def _read_body(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_type: bytes = JSON
    stream: Stream | None = None

    async def send(self, send: Send) -> None:
        headers = [(b"content-type", self.content_type), *self.headers]
        if self.stream is None:
            headers.append((b"content-length", str(len(self.body)).encode()))
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            await send({"type": "http.response.body", "body": self.body})
            return
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        async for chunk in self.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status=status, body=orjson.dumps(value))


def error_response(error: GatewayError,
                   render: Callable[[GatewayError], bytes] = error_body) -> Response:
    return Response(status=error.status, body=render(error), headers=error.headers())


async def send_stream(response: Response, send: Send, receive: Receive) -> None:
    """Send a streaming response while watching for the caller to disconnect. However it ends,
    the stream is closed (`aclose`), which releases what it relays."""
    stream = response.stream
    pump = asyncio.ensure_future(response.send(send))
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, watcher):
            task.cancel()
        await asyncio.wait({pump, watcher})
        if stream is not None:
            await stream.aclose()
    if pump in done and not pump.cancelled():
        pump.result()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
