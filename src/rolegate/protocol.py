"""`BoundedHttpProtocol`: uvicorn's httptools HTTP/1.1 protocol with the two bounds it lacks.

uvicorn with httptools accepts request headers of any size and waits forever for a client that
connects and sends nothing, or sends its headers a byte at a time (slowloris). Both happen before
the ASGI app sees the request, so they are bounded here, per connection:

- the request line plus headers may be at most `max_header_bytes`; beyond that the client gets
  `431 Request Header Fields Too Large` (RFC 6585 §5) and the connection is closed;
- the headers of a request must arrive within `header_timeout` seconds of the connection opening
  or of the request's first byte; otherwise the connection is closed (with `408` when part of a
  request had arrived).

The body is bounded by the app (`Request.body`: size and `body_timeout`); an idle keep-alive
connection by uvicorn's `timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_CLOSE_HEADERS = (b"content-type: application/json\r\ncontent-length: %d\r\n"
                  b"connection: close\r\n\r\n")
_BODIES = {
    431: b'{"error":{"message":"The request headers are too large.","type":'
         b'"invalid_request_error","param":null,"code":"headers_too_large"}}',
    408: b'{"error":{"message":"The request headers did not arrive in time.","type":'
         b'"invalid_request_error","param":null,"code":"header_timeout"}}',
}
_REASONS = {431: b"Request Header Fields Too Large", 408: b"Request Timeout"}


class HeadersTooLarge(Exception):
    """Raised inside a parser callback to stop parsing an oversized request head."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """Use `bounded_protocol(max_header_bytes=…, header_timeout=…)` for uvicorn's `http=`."""

    def __init__(self, *args: Any, max_header_bytes: int, header_timeout: float,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self._head_bytes = 0
        self._has_begun = False
        self._is_head_complete = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._rejected_with: int | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._has_begun = True
        self._is_head_complete = False
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._is_head_complete = True
        self._cancel_head_timer()
        super().on_headers_complete()
        cycle = self.cycle  # the request's response cycle, created just now, not yet running
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = HeadJoiningTransport(self.transport, self.loop)  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        # A callback's exception reaches uvicorn as a parser error; answer with the real reason.
        if self._rejected_with is not None:
            self._reject(self._rejected_with)
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._rejected_with = 431
            raise HeadersTooLarge

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._on_head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        if self._is_head_complete or self.transport.is_closing():
            return
        if self._has_begun:
            self._reject(408)
        else:  # a connection that never sent a byte gets no answer
            self.transport.close()

    def _reject(self, status: int) -> None:
        if self.transport.is_closing():
            return
        body = _BODIES[status]
        self.transport.write(b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
                             + _CLOSE_HEADERS % len(body) + body)
        self.transport.close()


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HeadJoiningTransport:
    """The transport as one response cycle writes to it: the response's status line and headers
    are held back until the body's first part, and leave with it in one system call (a reply
    read whole: one write rather than two, and one packet for the caller to wake up for). A
    head with no body written in the same turn of the event loop (a stream whose first chunk
    is not ready yet) leaves at the start of the next turn."""

    __slots__ = ("_transport", "_loop", "_head", "_is_head_expected")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._is_head_expected = True

    def write(self, data: bytes) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.writelines((head, data))
        elif self._is_head_expected and data != CONTINUE:  # a cycle's first write is its head
            self._is_head_expected = False
            self._head = data
            self._loop.call_soon(self._write_head)
        else:
            self._transport.write(data)

    def _write_head(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._write_head()
        self._transport.close()


def bounded_protocol(*, max_header_bytes: int,
                     header_timeout: float) -> Callable[..., BoundedHttpProtocol]:
    """A `BoundedHttpProtocol` factory with these bounds, for `uvicorn.run(http=…)`. A partial
    of an importable class, so that it pickles into `--workers` processes."""
    return functools.partial(BoundedHttpProtocol, max_header_bytes=max_header_bytes,
                             header_timeout=header_timeout)
