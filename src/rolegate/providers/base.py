"""What every provider offers: `open(call)` sends one request upstream and returns its reply,
whose body is relayed to the caller chunk by chunk."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rolegate.config.model import DeploymentConfig

JSON_CONTENT = "application/json"


@dataclass(slots=True)
class UpstreamCall:
    """One request for an upstream: the OpenAI operation (`chat/completions`, `embeddings`, …),
    the body to send (already rewritten for this upstream) and whether it streams.

    `body` is the parsed JSON object (for a multipart form: its text fields); `raw_body`, when
    set, is sent as is with `content_type`. `time_left` bounds the attempt: until the reply's
    head, and for a reply that does not stream until its end. `traceparent` is sent upstream as
    the W3C header of that name: the traced provider writes it just before the attempt (each
    attempt has a call of its own), so tracing copies no call. Nothing else changes a call."""

    operation: str
    body: dict[str, Any]
    raw_body: bytes | None
    is_stream: bool
    request_id: str
    content_type: str = JSON_CONTENT
    time_left: float = math.inf
    traceparent: str | None = None  # the attempt's W3C trace context, when tracing is on
    headers: tuple[tuple[str, str], ...] = ()  # the caller's API headers (`anthropic-version`)


async def _nothing() -> None:
    return None


# Told that a reply has ended. May return an awaitable (the usage record, the limiter's
# settlement) or nothing (a counter, a deployment's health), so the cheap ones cost no coroutine.
EndListener = Callable[[], Awaitable[None] | None]


@dataclass(slots=True)
class UpstreamReply:
    """The upstream's answer. `retry_after` is what it asked for (seconds) on 429/503;
    `usage` is filled in by the relay once the reply's token usage has been seen.

    `close` is the provider's own: it releases the upstream connection. Everyone else who cares
    when the reply ends (the attempt's metrics, the deployment's health, metering) registers with
    `on_end`, and whoever consumed the reply calls `end()`: the dispatcher for a reply read
    whole, the relay's `finally` for a stream. `end()` runs once, however often it is called.
    """

    status: int
    content_type: bytes
    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]] = field(default=_nothing)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    retry_after: float | None = None
    usage: dict[str, Any] | None = None
    # The upstream said the prompt does not fit the model's context window: read by the
    # provider, which knows its API's error (`overflow.py`), for the context-window fallbacks.
    is_context_overflow: bool = False
    # Most replies get two or three listeners: the list is made by the first.
    _listeners: list[EndListener] | None = field(default=None, init=False, repr=False)
    _is_ended: bool = field(default=False, init=False, repr=False)

    def on_end(self, listener: EndListener) -> None:
        """Call `listener` when the reply ends, after the connection is released, after the
        listeners registered before it."""
        if self._listeners is None:
            self._listeners = [listener]
        else:
            self._listeners.append(listener)

    async def end(self) -> None:
        if self._is_ended:
            return
        self._is_ended = True
        try:
            await self.close()
        finally:
            for listener in self._listeners or ():
                pending = listener()
                if pending is not None:
                    await pending


def usage_in(reply: Mapping[str, Any]) -> dict[str, Any] | None:
    """The token usage of a JSON reply object: its `usage` (OpenAI, Anthropic), else its
    `usageMetadata` (Gemini); None when it has neither as an object."""
    usage = reply.get("usage")
    if usage is None:
        usage = reply.get("usageMetadata")
    return usage if isinstance(usage, dict) else None


class OneChunk:
    """The chunks of a body already whole, as `UpstreamReply.chunks`: a plain iterator rather
    than an async generator, which the event loop would track from its first step to its end."""

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body

    def __aiter__(self) -> OneChunk:
        return self

    async def __anext__(self) -> bytes:
        body = self._body
        if body is None:
            raise StopAsyncIteration
        self._body = None
        return body


class Provider(Protocol):
    config: DeploymentConfig

    async def open(self, call: UpstreamCall) -> UpstreamReply: ...


class PromptCounter(Protocol):
    """Counts a chat request's prompt tokens offline: the gateway's estimate, for a count asked
    of a deployment whose API has no counting method (`accounting.estimate.TokenEstimator`)."""

    def prompt_tokens(self, body: Mapping[str, Any]) -> int: ...
