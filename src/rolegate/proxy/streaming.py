"""Turning routing's `Forwarded` into the caller's response (`response_for`), relaying a
stream, and what happens when either side fails.

Once a stream has started, its status cannot change: a failure after the first byte becomes one
SSE event `data: {"error": …}` and the stream ends. When the caller disconnects, the relay is
cancelled and the upstream connection closed at once, so no upstream work runs for nobody.

Chunks are forwarded as they arrive. For chat and completion streams the relay also reads the
events as they pass (`SseUsageTap`): it keeps the usage the upstream reports on the reply
(`reply.usage`), and, when the gateway asked for that usage chunk on the caller's behalf, keeps
the chunk itself from the caller. A tap also keeps the events it let through (`relayed`, up to
MAX_RELAYED bytes, not parsed on the way), so a stream that ends without its usage can still be
charged for what reached the caller.

A Gemini stream asked for without `alt=sse` goes to the caller as Google's API sends it then:
one JSON array, `[` first, each event's object as it comes (`,` between them), `]` once the
upstream has ended (`JsonArrayFraming`); an error after the start is its last element.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from rolegate.errors import (
    GatewayError, anthropic_error_body, error_body, google_error_body, internal_error,
)
from rolegate.providers.base import UpstreamReply
from rolegate.routing.dispatcher import Forwarded
from rolegate.routing.request import GENERATE_CONTENT, MESSAGES, USAGE_STREAM_OPERATIONS
from rolegate.server.asgi import Response

log = logging.getLogger("rolegate.proxy")

_EVENT_END = re.compile(rb"\r?\n\r?\n")
JSON = b"application/json"
_NULL_USAGE = (b'"usage":null', b'"usage": null')
MAX_RELAYED = 8 << 20  # bytes of relayed events a tap keeps for estimating usage


def response_for(forwarded: Forwarded, operation: str, *,
                 is_json_array: bool = False) -> Response:
    """The caller's response: a reply read whole as it came (upstream failures were already
    raised as gateway errors), or a started stream relayed as it comes; `is_json_array`: a
    Gemini stream framed as one JSON array."""
    reply = forwarded.reply
    headers = [*reply.headers, *forwarded.headers]
    if forwarded.body is not None:
        body = forwarded.body
        if is_json_array and reply.status == 200:  # a stream that came as one object
            body = b"[" + body + b"]"
        return Response(status=reply.status, body=body, content_type=reply.content_type,
                        headers=headers)
    tap = usage_tap(operation, is_stripping=forwarded.is_usage_added)
    return Response(status=200, content_type=JSON if is_json_array else reply.content_type,
                    headers=headers, stream=Relay(reply, forwarded.first, tap,
                                                  JsonArrayFraming() if is_json_array else None))


def usage_tap(operation: str, *, is_stripping: bool) -> UsageTap:
    """What reads the token usage off a stream of `operation`, for accounting and limits (and
    keeps what it relays, for an estimate when that usage never comes)."""
    if operation in USAGE_STREAM_OPERATIONS:
        return SseUsageTap(is_stripping=is_stripping)
    if operation == MESSAGES:
        return MessagesUsageTap()
    if operation == GENERATE_CONTENT:
        return GeminiUsageTap()
    return ResponsesUsageTap()


class Relay:
    """The stream of a started reply. `aclose()` releases the upstream even when the stream was
    never iterated (the caller left before the first chunk was sent)."""

    __slots__ = ("_reply", "_events", "_chunks", "tap")

    def __init__(self, reply: UpstreamReply, first: bytes, tap: UsageTap | None,
                 framing: JsonArrayFraming | None = None) -> None:
        self._reply = reply
        self._events = _relay(reply, first, tap)
        self._chunks = self._events if framing is None else _framed(self._events, framing)
        self.tap = tap

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> bytes:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await self._chunks.aclose()
        if self._chunks is not self._events:
            await self._events.aclose()
        await self._reply.end()


class JsonArrayFraming:
    """Server-sent events re-framed as one JSON array: each event's `data` an element. Whole
    events only (the usage taps forward nothing else); Gemini's `data` is one line."""

    __slots__ = ("_is_open",)

    def __init__(self) -> None:
        self._is_open = False

    def feed(self, events: bytes) -> bytes:
        elements = []
        for line in events.splitlines():
            if line.startswith(b"data:"):
                elements.append((b",\r\n" if self._is_open else b"[") + line[5:].strip())
                self._is_open = True
        return b"".join(elements)

    def finish(self) -> bytes:
        return b"]" if self._is_open else b"[]"


async def _framed(events: AsyncIterator[bytes],
                  framing: JsonArrayFraming) -> AsyncGenerator[bytes, None]:
    async for chunk in events:
        if framed := framing.feed(chunk):
            yield framed
    yield framing.finish()


async def _relay(reply: UpstreamReply, first: bytes,
                 tap: UsageTap | None) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in _chunks(first, reply.chunks):
            if tap is not None:
                chunk = tap.feed(chunk)
            if chunk:
                yield chunk
        if tap is not None and (rest := tap.flush()):
            yield rest
    except GatewayError as error:
        yield _error_event(error, tap)
    except Exception:  # the relay's final guard: the stream has started, so it must end well-formed
        log.exception("relaying an upstream stream failed")
        yield _error_event(internal_error(), tap)
    finally:
        if tap is not None:
            reply.usage = tap.usage
        await reply.end()  # once: the connection released, then the end-of-reply listeners


def _error_event(error: GatewayError, tap: UsageTap | None) -> bytes:
    """The one event that ends a failed stream, in its API's shape (Anthropic's is a named
    `error` event)."""
    if isinstance(tap, MessagesUsageTap):
        return b"event: error\ndata: " + anthropic_error_body(error) + b"\n\n"
    if isinstance(tap, GeminiUsageTap):
        return b"data: " + google_error_body(error) + b"\n\n"
    return b"data: " + error_body(error) + b"\n\n"


async def _chunks(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


class UsageTap:
    """Reads a stream's SSE events as they pass, keeping the token `usage` it reports. Only whole
    events are forwarded, so a chunk holding part of an event waits for the rest of it; each
    kind of stream says in `_keeps` where its usage is and whether an event goes on."""

    __slots__ = ("usage", "relayed", "_pending", "_room")

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None
        self.relayed: list[bytes] = []
        self._pending = b""
        self._room = MAX_RELAYED

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk if self._pending else chunk
        out: list[bytes] = []
        start = 0
        for match in _EVENT_END.finditer(data):
            event = data[start:match.end()]
            start = match.end()
            if b'"usage"' not in event or self._keeps(event):
                out.append(event)
        self._pending = data[start:]
        kept = b"".join(out) if len(out) != 1 else out[0]
        if kept and self._room > 0:
            self.relayed.append(kept)
            self._room -= len(kept)
        return kept

    def flush(self) -> bytes:
        pending, self._pending = self._pending, b""
        return pending

    def _keeps(self, event: bytes) -> bool:
        raise NotImplementedError


class SseUsageTap(UsageTap):
    """Chat and text completions: `usage` on a chunk of its own at the end (asked for with
    `stream_options.include_usage`), dropped when `is_stripping` (the caller never asked)."""

    __slots__ = ("is_stripping",)

    def __init__(self, *, is_stripping: bool) -> None:
        super().__init__()
        self.is_stripping = is_stripping

    def _keeps(self, event: bytes) -> bool:
        if any(null in event for null in _NULL_USAGE):
            return True
        value = _event_data(event)
        if value is None or not isinstance(value.get("usage"), dict):
            return True
        self.usage = value["usage"]
        return not self.is_stripping or bool(value.get("choices"))


class ResponsesUsageTap(UsageTap):
    """The Responses API: `usage` inside the `response` of its closing event
    (`response.completed`, or `response.incomplete` / `response.failed`); other streams (audio
    transcriptions, images): `usage` on their closing event itself. Every event goes on."""

    __slots__ = ()

    def _keeps(self, event: bytes) -> bool:
        value = _event_data(event)
        if value is None:
            return True
        response = value.get("response")
        if isinstance(response, dict) and isinstance(response.get("usage"), dict):
            self.usage = response["usage"]
        elif isinstance(value.get("usage"), dict):
            self.usage = value["usage"]
        return True


class MessagesUsageTap(UsageTap):
    """Anthropic Messages: the prompt's usage in `message_start`'s message, the output's (and,
    from some upstreams, the final input counts) in `message_delta`; later values win. Every
    event goes on."""

    __slots__ = ()

    def _keeps(self, event: bytes) -> bool:
        value = _event_data(event)
        if value is None:
            return True
        message = value.get("message")
        usage = message.get("usage") if isinstance(message, dict) else value.get("usage")
        if isinstance(usage, dict):
            counts = {name: count for name, count in usage.items() if isinstance(count, int)}
            self.usage = {**(self.usage or {}), **counts}
        return True


class GeminiUsageTap(UsageTap):
    """Gemini's stream: every event carries the `usageMetadata` so far; the last wins. Every
    event goes on."""

    __slots__ = ()

    def _keeps(self, event: bytes) -> bool:
        if b'"usageMetadata"' in event:
            value = _event_data(event)
            usage = value.get("usageMetadata") if value is not None else None
            if isinstance(usage, dict):
                self.usage = usage
        return True


def _event_data(event: bytes) -> dict[str, Any] | None:
    """The JSON object on an event's `data:` line (one line, as OpenAI sends), if any."""
    for line in event.splitlines():
        if line.startswith(b"data:"):
            try:
                value = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None
