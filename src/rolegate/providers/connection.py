"""`UpstreamConnection`: one keep-alive HTTP/1.1 connection to an upstream, its responses parsed
with httptools (the parser uvicorn uses for the caller's side).

One exchange at a time: `send(data)` writes a whole request, `head()` waits for the status line
and headers, `read()` returns the body as it arrives (b"" once it has ended). A single watchdog
timer per connection enforces `deadline`, which the caller moves as the exchange progresses:
moving it later costs an attribute write, the timer re-arms itself when it fires early, and it
stays armed across exchanges, so a request on a pooled connection arms no timer of its own. Any
failure is raised as `UpstreamError` or `UpstreamTimeout`; the connection is then closed and
never reused.

    connection.deadline = loop.time() + 30
    connection.send(request_bytes)
    status = await connection.head()
    while chunk := await connection.read(): ...
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import cast

import httptools

from rolegate.errors import GatewayError, UpstreamError, UpstreamTimeout

NO_ANSWER = "The upstream did not answer in time."
STOPPED = "The upstream stopped answering."
CUT = "The upstream connection failed mid-response."
# Past this many unread body bytes the socket stops being read until the caller catches up.
HIGH_WATER = 256 * 1024
_NO_BODY_STATUSES = (204, 304)


class UpstreamConnection(asyncio.Protocol):
    __slots__ = ("status", "headers", "is_closed", "_loop", "_transport", "_parser", "_chunks",
                 "_buffered", "_is_reading_paused", "_is_writing_paused", "_has_head",
                 "_is_complete", "_is_keep_alive", "_is_busy", "_is_eof_body",
                 "_is_informational", "_error", "_waiter", "_deadline", "_timer", "_armed_at",
                 "_header_name")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.is_closed = False
        self._is_writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = math.inf
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._is_reading_paused = False
        self._has_head = False
        self._is_complete = False
        self._is_keep_alive = False
        self._is_busy = False
        self._is_eof_body = False
        self._is_informational = False
        self._error: GatewayError | None = None
        self._header_name = b""

    # -- the exchange, as the caller drives it ------------------------------------------------

    def time(self) -> float:
        """The event loop's clock, which `deadline` is on. (Cheaper than looking the running
        loop up, which on Python 3.11 costs a system call.)"""
        return self._loop.time()

    @property
    def deadline(self) -> float:
        return self._deadline

    @deadline.setter
    def deadline(self, at: float) -> None:
        self._deadline = at
        if at < self._armed_at:  # later deadlines are picked up when the timer fires
            if self._timer is not None:
                self._timer.cancel()
            self._armed_at = at
            self._timer = self._loop.call_at(at, self._on_timer)

    @property
    def is_reusable(self) -> bool:
        """The last response was read to its end and both sides keep the connection open."""
        return self._is_complete and self._is_keep_alive and not self.is_closed

    def send(self, data: bytes) -> None:
        assert self._transport is not None
        self._reset()
        self._is_busy = True
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait while the socket's send buffer is full (a large request body)."""
        while self._is_writing_paused and self._error is None:
            await self._wait()
        if self._error is not None:
            raise self._error

    async def head(self) -> int:
        """The response status, once the status line and headers have arrived."""
        while not self._has_head and self._error is None:
            await self._wait()
        if not self._has_head:
            assert self._error is not None
            raise self._error
        return self.status

    async def read(self) -> bytes:
        """The body bytes that have arrived since the last call; b"" at the end of the body."""
        while not self._chunks and not self._is_complete and self._error is None:
            await self._wait()
        if self._chunks:
            chunks = self._chunks
            data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self._buffered = 0
            if self._is_reading_paused and self._transport is not None:
                self._is_reading_paused = False
                self._transport.resume_reading()
            return data
        if self._is_complete:
            self._is_busy = False  # the timer stays armed for the next exchange's deadline
            return b""
        assert self._error is not None
        raise self._error

    def close(self) -> None:
        """Close the connection (gracefully; unread response bytes are dropped)."""
        self._disarm()
        self.is_closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self._disarm()
        self.is_closed = True
        if self._transport is not None:
            self._transport.abort()

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: GatewayError) -> None:
        if self._error is None:
            self._error = error
        self.abort()
        self._wake()

    def _on_timer(self) -> None:
        self._timer = None
        self._armed_at = math.inf
        if not self._is_busy:
            return
        if self._loop.time() < self._deadline:
            self.deadline = self._deadline  # moved later since it was armed: wait until then
            return
        self._fail(UpstreamTimeout(STOPPED if self._has_head else NO_ANSWER))

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_at = math.inf

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if not self._is_busy:  # nothing was asked: an idle connection must stay silent
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(UpstreamError("The upstream sent a malformed response."))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_closed = True
        self._disarm()
        if not self._is_busy or self._error is not None:
            self._wake()
            return
        if self._has_head and self._is_eof_body and not self._is_complete:
            self._is_complete = True  # the body was delimited by the close (RFC 9112 §6.3)
            self._wake()
            return
        if not self._is_complete:
            name = type(exc).__name__ if exc is not None else "ServerDisconnected"
            self._fail(UpstreamError(CUT) if self._has_head else
                       UpstreamError(f"The upstream could not be reached ({name})."))

    def pause_writing(self) -> None:
        self._is_writing_paused = True

    def resume_writing(self) -> None:
        self._is_writing_paused = False
        self._wake()

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        headers = self.headers
        headers[key] = headers[key] + b", " + value if key in headers else value

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim response: the real one follows
            self._is_informational = True
            self.headers = {}
            return
        self.status = status
        headers = self.headers
        self._is_eof_body = (status not in _NO_BODY_STATUSES and b"content-length" not in headers
                             and b"chunked" not in headers.get(b"transfer-encoding", b"").lower())
        self._has_head = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._is_reading_paused:
            assert self._transport is not None
            self._is_reading_paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._is_informational:
            self._is_informational = False
            return
        self._is_complete = True
        self._is_keep_alive = self._parser.should_keep_alive()
        self._wake()
