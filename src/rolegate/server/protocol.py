"""`BoundedHttpProtocol`: uvicorn's httptools HTTP/1.1 protocol with the bounds it lacks, kept
by one timer per connection.

uvicorn with httptools accepts request headers of any size and waits forever for a client that
connects and sends nothing, or sends its headers a byte at a time (slowloris). Both happen before
the ASGI app sees the request, so they are bounded here, per connection:

- the request line plus headers may be at most `max_header_bytes`; beyond that the client gets
  `431 Request Header Fields Too Large` (RFC 6585 §5) and the connection is closed;
- the headers of a request must arrive within `header_timeout` seconds of the connection opening
  or of the request's first byte; otherwise the connection is closed (with `408` when part of a
  request had arrived);
- the body must arrive within `body_timeout` seconds of the headers (`408`, code
  `body_timeout`); the app learns from the scope's `rolegate.body_deadline` extension that
  it need not time the body itself;
- an idle keep-alive connection is closed after `keep_alive_timeout` seconds;
- a caller that disconnects before its response has started has its request's task cancelled,
  so the work for it (an upstream call) stops.

These deadlines share one watchdog timer per connection: moving a deadline later costs an
attribute write, and the timer re-arms itself when it fires early, so a request on a busy
connection arms no timer of its own. The body size is bounded by the app (`Request.body`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from rolegate.server.asgi import BODY_DEADLINE_EXTENSION, CLIENT_LEFT

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application

_EXTENSIONS: dict[str, dict[object, object]] = {BODY_DEADLINE_EXTENSION: {}}
_CLOSE_HEADERS = (b"content-type: application/json\r\ncontent-length: %d\r\n"
                  b"connection: close\r\n\r\n")
_BODIES = {
    (431, "headers_too_large"): b'{"error":{"message":"The request headers are too large.",'
                                b'"type":"invalid_request_error","param":null,'
                                b'"code":"headers_too_large"}}',
    (408, "header_timeout"): b'{"error":{"message":"The request headers did not arrive in '
                             b'time.","type":"invalid_request_error","param":null,'
                             b'"code":"header_timeout"}}',
    (408, "body_timeout"): b'{"error":{"message":"The request body did not arrive in time.",'
                           b'"type":"invalid_request_error","param":null,'
                           b'"code":"body_timeout"}}',
}
_REASONS = {431: b"Request Header Fields Too Large", 408: b"Request Timeout"}
_TOO_LARGE = (431, "headers_too_large")


class Phase(Enum):
    """Where a connection is, as far as its deadlines go."""

    IDLE = "idle"      # between requests (or new): closed silently at the deadline
    HEAD = "head"      # a request's head is arriving: 408 header_timeout
    BODY = "body"      # its body is arriving: 408 body_timeout
    SERVING = "serving"  # the whole request is in: the app's time, no deadline here


class HeadersTooLarge(Exception):
    """Raised inside a parser callback to stop parsing an oversized request head."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """Use `bounded_protocol(…)` for uvicorn's `http=`."""

    def __init__(self, *args: Any, max_header_bytes: int, header_timeout: float,
                 body_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self._head_bytes = 0
        self._phase = Phase.IDLE
        self._deadline = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = math.inf
        self._rejected_with: tuple[int, str] | None = None
        self._serving: tuple[RequestResponseCycle, asyncio.Task[None]] | None = None

    # -- the watchdog -------------------------------------------------------------------------

    def _watch(self, phase: Phase, seconds: float | None) -> None:
        self._phase = phase
        if seconds is None:
            self._deadline = math.inf
            return
        at = self._deadline = self.loop.time() + seconds
        if at < self._armed_at:  # later deadlines are picked up when the timer fires
            if self._timer is not None:
                self._timer.cancel()
            self._armed_at = at
            self._timer = self.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._armed_at = math.inf
        if self._deadline == math.inf or self.transport.is_closing():
            return
        if self.loop.time() < self._deadline:  # moved later since it was armed
            self._armed_at = self._deadline
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
            return
        if self._phase is Phase.HEAD:
            self._reject((408, "header_timeout"))
        elif self._phase is Phase.BODY:
            self._reject((408, "body_timeout"))
        else:  # idle: a keep-alive connection, or one that never sent a byte, gets no answer
            self.transport.close()

    def _stop_watching(self) -> None:
        self._deadline = math.inf
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_at = math.inf

    # -- uvicorn's protocol, with the deadlines -----------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch(Phase.IDLE, self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_watching()
        super().connection_lost(exc)
        # A caller that leaves before its answer has started stops the work done for it (the
        # upstream call among it): the app sees its task cancelled, logs and meters the request
        # as 499 and closes the upstream connection. A started response (a stream) notices the
        # disconnect itself.
        if self._serving is not None:
            cycle, task = self._serving
            self._serving = None
            if not cycle.response_started and not task.done():
                cast(dict[str, Any], cycle.scope)[CLIENT_LEFT] = True  # a key of our own
                task.cancel()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # As uvicorn's, remembering the task of the request being served.
        context = (contextvars.Context() if getattr(self.config, "reset_contextvars", False)
                   else None)
        task = self.loop.create_task(cycle.run_asgi(app), context=context)
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)
        self._serving = (cycle, task)

    def data_received(self, data: bytes) -> None:
        # As uvicorn's, but a request refused for its size is answered 431 without a warning
        # about an invalid request, and the keep-alive timer is the watchdog.
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._rejected_with is not None:
                self._reject(self._rejected_with)
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = _EXTENSIONS
        self._head_bytes = 0
        self._watch(Phase.HEAD, self.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._watch(Phase.BODY, self.body_timeout)
        super().on_headers_complete()
        cycle = self.cycle  # the request's response cycle, created just now, not yet running
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = HeadJoiningTransport(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self._watch(Phase.SERVING, None)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # As uvicorn's, with the watchdog keeping the keep-alive deadline instead of a timer
        # armed for each response.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._phase is Phase.SERVING:  # not while a next request is arriving
            self._watch(Phase.IDLE, self.timeout_keep_alive)

    def send_400_response(self, msg: str) -> None:
        # A callback's exception reaches uvicorn as a parser error; answer with the real reason.
        if self._rejected_with is not None:
            self._reject(self._rejected_with)
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._rejected_with = _TOO_LARGE
            raise HeadersTooLarge

    def _reject(self, reason: tuple[int, str]) -> None:
        self._stop_watching()
        if self.transport.is_closing():
            return
        status = reason[0]
        body = _BODIES[reason]
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


def bounded_protocol(*, max_header_bytes: int, header_timeout: float,
                     body_timeout: float) -> Callable[..., BoundedHttpProtocol]:
    """A `BoundedHttpProtocol` factory with these bounds, for `uvicorn.run(http=…)`. A partial
    of an importable class, so that it pickles into `--workers` processes."""
    return functools.partial(BoundedHttpProtocol, max_header_bytes=max_header_bytes,
                             header_timeout=header_timeout, body_timeout=body_timeout)
