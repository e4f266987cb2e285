"""`GeminiOverChat` wraps a provider that speaks OpenAI's API (chat completions, embeddings) so
that it also serves Gemini calls, translated (`rolegate.translate.gemini_to_chat`,
`gemini_stream`, `gemini_embeddings`): the Gemini surface works on every deployment. Its
`countTokens` is the gateway's estimate there (but for the mock, which counts in words)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from rolegate.providers.base import PromptCounter, Provider, UpstreamCall, UpstreamReply
from rolegate.providers.translating import estimated_count, translated, translated_stream
from rolegate.translate.gemini_embeddings import embeddings_request, gemini_embeddings
from rolegate.translate.gemini_stream import GeminiStream
from rolegate.translate.gemini_to_chat import chat_request, gemini_error, gemini_reply

_EMBEDDINGS = ("embedContent", "batchEmbedContents")


class GeminiOverChat:
    """An OpenAI-speaking provider that also serves Gemini calls, translated."""

    def __init__(self, inner: Provider, counter: PromptCounter) -> None:
        self._inner = inner
        self._counter = counter
        self.config = inner.config

    def open(self, call: UpstreamCall) -> Coroutine[Any, Any, UpstreamReply]:
        # Not a coroutine itself: an OpenAI call costs no extra frame on its way through.
        if call.operation == "generateContent":
            return self._generate(call)
        if call.operation in _EMBEDDINGS:
            return self._embed(call)
        if call.operation == "countTokens" and self.config.provider != "mock":
            return estimated_count(self._counter, _counted_request(call.body), "totalTokens")
        return self._inner.open(call)

    async def _generate(self, call: UpstreamCall) -> UpstreamReply:
        model = str(call.body.get("model"))
        chat = UpstreamCall("chat/completions", chat_request(call.body, is_stream=call.is_stream),
                            None, call.is_stream, call.request_id, time_left=call.time_left,
                            traceparent=call.traceparent)
        reply = await self._inner.open(chat)
        result = await translated(reply, is_stream=call.is_stream, failure=gemini_error,
                                  success=lambda value: gemini_reply(value, model=model))
        if result is reply:  # a started stream: translated event by event
            result.chunks = translated_stream(reply.chunks, GeminiStream(model=model))
            result.content_type = b"text/event-stream"
        return result

    async def _embed(self, call: UpstreamCall) -> UpstreamReply:
        body = embeddings_request(call.body, operation=call.operation)
        reply = await self._inner.open(UpstreamCall(
            "embeddings", body, None, False, call.request_id, time_left=call.time_left,
            traceparent=call.traceparent))
        return await translated(reply, is_stream=False, failure=gemini_error,
                                success=lambda value: gemini_embeddings(
                                    value, operation=call.operation))


def _counted_request(body: dict[str, Any]) -> dict[str, Any]:
    """The chat request whose prompt a `countTokens` body counts: its `contents`, or the whole
    `generateContentRequest` it may hold instead (with its system instruction and tools)."""
    request = body.get("generateContentRequest")
    if isinstance(request, dict) and set(body) <= {"model", "generateContentRequest"}:
        return chat_request({**request, "model": body.get("model")}, is_stream=False)
    return chat_request(body, is_stream=False)
