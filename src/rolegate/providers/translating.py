"""Serving one API's call on an upstream that speaks another: the reply read whole and
replaced by its translation, or a stream translated chunk by chunk. The translations
themselves are pure functions in `rolegate.translate`.

`MessagesOverChat` wraps a provider that speaks OpenAI chat completions (`openai`, `azure`,
`openai-compatible`, `mock`) so that it also serves Anthropic Messages calls.

A count of tokens asked of a deployment whose API has no counting method is the gateway's own
estimate (`estimated_count`): the request translated to chat, its prompt counted with the
packaged BPE vocabulary, the reply marked `x-rolegate-token-count: estimated`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol

import orjson

from rolegate.providers.base import (
    OneChunk, PromptCounter, Provider, UpstreamCall, UpstreamReply, usage_in,
)
from rolegate.translate.chat_to_messages import anthropic_error
from rolegate.translate.messages_stream import MessagesStream
from rolegate.translate.messages_to_chat import chat_request, message_reply

JSON = b"application/json"
ESTIMATED = [(b"x-rolegate-token-count", b"estimated")]


async def read_whole(reply: UpstreamReply) -> bytes:
    """The reply's body; a reply that fails (or is cancelled) while read is ended first."""
    try:
        return b"".join([chunk async for chunk in reply.chunks])
    except BaseException:
        await reply.end()
        raise


def json_reply(value: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> UpstreamReply:
    """A 200 answered by the gateway itself, without an upstream."""
    return UpstreamReply(200, JSON, OneChunk(orjson.dumps(value)), headers=headers)


async def estimated_count(counter: PromptCounter, chat: dict[str, Any],
                          field: str) -> UpstreamReply:
    """`{field: n}`, n the prompt tokens of `chat` as the gateway counts them (in a worker
    thread: a long prompt takes milliseconds, the first count loads the vocabulary)."""
    tokens = await asyncio.to_thread(counter.prompt_tokens, chat)
    return json_reply({field: tokens}, ESTIMATED)


def replaced(reply: UpstreamReply, body: bytes,
             usage: dict[str, Any] | None = None) -> UpstreamReply:
    """`reply` with `body` (read whole) in place of its own; closing it closes the original.
    `usage`: the token usage of `body`, when known, so that it is not read from it again."""
    return UpstreamReply(reply.status, JSON, OneChunk(body), reply.close, reply.headers,
                         reply.retry_after, usage, is_context_overflow=reply.is_context_overflow)


def parsed(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def has_error_object(value: dict[str, Any]) -> bool:
    """Whether a JSON body is an error in OpenAI's or Anthropic's shape (`{"error": {…}}`)."""
    return isinstance(value.get("error"), dict)


async def translated(reply: UpstreamReply, *, is_stream: bool,
                     success: Callable[[dict[str, Any]], dict[str, Any]],
                     failure: Callable[[dict[str, Any]], dict[str, Any]],
                     is_error: Callable[[dict[str, Any]], bool] = has_error_object
                     ) -> UpstreamReply:
    """A reply read whole, translated: `success` for a 200 JSON body, `failure` for an error
    body in the upstream's shape (`is_error`); anything else (a 5xx page) as it came, for
    routing to judge. A started stream is left to the caller."""
    if is_stream and reply.status == 200 and not reply.content_type.startswith(JSON):
        return reply
    body = await read_whole(reply)
    value = parsed(body)
    if value is None or reply.status >= 500:
        return replaced(reply, body)
    if reply.status == 200:
        answer = success(value)
        return replaced(reply, orjson.dumps(answer), usage_in(answer))
    if is_error(value):
        return replaced(reply, orjson.dumps(failure(value)))
    return replaced(reply, body)


class MessagesOverChat:
    """An OpenAI-speaking provider that also serves Anthropic Messages calls, translated."""

    def __init__(self, inner: Provider, counter: PromptCounter) -> None:
        self._inner = inner
        self._counter = counter
        self.config = inner.config

    def open(self, call: UpstreamCall) -> Coroutine[Any, Any, UpstreamReply]:
        # Not a coroutine itself: an OpenAI call costs no extra frame on its way through.
        if call.operation == "messages":
            return self._messages(call)
        if call.operation == "messages/count_tokens" and self.config.provider != "mock":
            return estimated_count(self._counter, chat_request(call.body), "input_tokens")
        return self._inner.open(call)

    async def _messages(self, call: UpstreamCall) -> UpstreamReply:
        body = chat_request(call.body)
        model = str(call.body.get("model"))
        chat = UpstreamCall("chat/completions", body, None, call.is_stream, call.request_id,
                            time_left=call.time_left, traceparent=call.traceparent)
        reply = await self._inner.open(chat)
        result = await translated(reply, is_stream=call.is_stream,
                                  success=lambda value: message_reply(value, model=model),
                                  failure=anthropic_error)
        if result is reply:  # a started stream: translated event by event
            result.chunks = translated_stream(reply.chunks, MessagesStream(model=model))
            result.content_type = b"text/event-stream"
        return result


class StreamTranslator(Protocol):
    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes: ...


async def translated_stream(chunks: AsyncIterator[bytes],
                            stream: StreamTranslator) -> AsyncIterator[bytes]:
    """`chunks` translated as they come; the closing events once the upstream has ended."""
    async for chunk in chunks:
        out = stream.feed(chunk)
        if out:
            yield out
    rest = stream.finish()
    if rest:
        yield rest
