"""A call translated for an upstream of the other API: its reply read whole and replaced, an
error body carried into the caller's shape, a failure page left for routing to judge; and the
Anthropic stream's usage read as it passes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from rolegate.config.model import DeploymentConfig
from rolegate.errors import InvalidRequest
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.providers.gemini_over_chat import GeminiOverChat
from rolegate.providers.translating import MessagesOverChat
from rolegate.proxy.streaming import MessagesUsageTap
from rolegate.proxy.usage import relayed_text


class FixedProvider:
    """An OpenAI-speaking provider that answers every call with one reply."""

    def __init__(self, status: int, body: bytes, provider: str = "openai") -> None:
        self.config = DeploymentConfig(provider=provider, api_base="http://upstream/v1")
        self.status, self.body = status, body
        self.calls: list[UpstreamCall] = []
        self.closed = 0

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        self.calls.append(call)

        async def chunks() -> AsyncIterator[bytes]:
            yield self.body

        async def close() -> None:
            self.closed += 1
        return UpstreamReply(self.status, b"application/json", chunks(), close)


class WordCounter:
    """Counts a chat prompt in words: the estimate's stand-in, whose counts a test can predict."""

    def __init__(self) -> None:
        self.counted: list[Any] = []

    def prompt_tokens(self, body: Any) -> int:
        self.counted.append(body)
        return sum(len(text.split()) for m in body["messages"] for text in (
            [m["content"]] if isinstance(m["content"], str)
            else [part["text"] for part in m["content"]]))


def over_chat(inner: FixedProvider) -> MessagesOverChat:
    return MessagesOverChat(inner, WordCounter())


def messages_call(**body: Any) -> UpstreamCall:
    return UpstreamCall("messages", {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"}], **body}, None, False, "req-1")


async def read(reply: UpstreamReply) -> tuple[int, Any]:
    body = b"".join([chunk async for chunk in reply.chunks])
    await reply.end()
    return reply.status, orjson.loads(body) if body.startswith(b"{") else body


async def test_an_upstream_error_reaches_an_anthropic_caller_in_anthropics_shape():
    inner = FixedProvider(400, orjson.dumps({"error": {"message": "bad", "type":
                                                       "invalid_request_error", "code": "x"}}))
    status, body = await read(await over_chat(inner).open(messages_call()))

    assert (status, body) == (400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "bad"}})
    assert inner.calls[0].operation == "chat/completions" and inner.closed == 1


@pytest.mark.parametrize(("status", "body"), [(502, b'{"error": {}}'), (400, b"<html>"),
                                              (404, b'{"detail": "no"}')])
async def test_what_is_not_an_error_body_of_the_upstream_goes_on_as_it_came(status, body):
    got = await read(await over_chat(FixedProvider(status, body)).open(messages_call()))
    assert got[0] == status and (got[1] == body or orjson.dumps(got[1]) == orjson.dumps(
        orjson.loads(body)))


async def test_other_operations_go_to_the_inner_provider_untouched():
    inner = FixedProvider(200, b"{}")
    call = UpstreamCall("embeddings", {"model": "m", "input": "x"}, b"{}", False, "r")
    await over_chat(inner).open(call)
    assert inner.calls == [call]


async def test_tokens_counted_for_an_openai_deployment_are_the_gateways_estimate():
    inner, counter = FixedProvider(200, b"{}"), WordCounter()
    reply = await MessagesOverChat(inner, counter).open(UpstreamCall(
        "messages/count_tokens", {"model": "m", "system": "be brief", "messages": [
            {"role": "user", "content": "three words here"}]}, None, False, "r"))

    assert await read(reply) == (200, {"input_tokens": 5})
    assert reply.headers == [(b"x-rolegate-token-count", b"estimated")]
    assert counter.counted[0]["messages"][0] == {"role": "system", "content": "be brief"}
    assert inner.calls == []  # nothing to ask the upstream


@pytest.mark.parametrize("body", [
    {"contents": [{"role": "user", "parts": [{"text": "three words here"}]}]},
    {"generateContentRequest": {"contents": [{"parts": [{"text": "three words here"}]}],
                                "systemInstruction": {"parts": [{"text": "be brief"}]}}},
], ids=["contents", "generate-content-request"])
async def test_gemini_tokens_counted_for_an_openai_deployment_are_the_gateways_estimate(body):
    inner = FixedProvider(200, b"{}")
    reply = await GeminiOverChat(inner, WordCounter()).open(UpstreamCall(
        "countTokens", {"model": "m", **body}, None, False, "r"))

    expected = 5 if "generateContentRequest" in body else 3
    assert await read(reply) == (200, {"totalTokens": expected})
    assert reply.headers == [(b"x-rolegate-token-count", b"estimated")] and inner.calls == []


async def test_a_count_of_what_cannot_be_translated_is_refused_naming_it():
    with pytest.raises(InvalidRequest) as caught:
        await over_chat(FixedProvider(200, b"{}")).open(UpstreamCall(
            "messages/count_tokens", {"model": "m", "thinking": {}, "messages": []}, None,
            False, "r"))
    assert (caught.value.code, caught.value.param) == ("untranslatable_field", "thinking")


def test_the_messages_tap_keeps_the_start_counts_and_the_final_output():
    tap = MessagesUsageTap()
    start = {"type": "message_start", "message": {"usage": {
        "input_tokens": 7, "output_tokens": 1, "cache_read_input_tokens": 2}}}
    delta = {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "hello"}}
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
           "usage": {"output_tokens": 4}}
    stream = b"".join(b"event: x\ndata: " + orjson.dumps(event) + b"\n\n"
                      for event in (start, delta, end))
    relayed = tap.feed(stream[:40]) + tap.feed(stream[40:])

    assert relayed == stream
    assert tap.usage == {"input_tokens": 7, "output_tokens": 4, "cache_read_input_tokens": 2}
    assert relayed_text(tap.relayed) == "hello"


def test_the_text_of_an_anthropic_message_read_whole_is_found_for_an_estimate():
    message = {"type": "message", "content": [{"type": "text", "text": "a b"}]}
    assert relayed_text([orjson.dumps(message)]) == "a b"


CHAT_REPLY = orjson.dumps({
    "id": "c-1", "object": "chat.completion", "model": "m",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hi there"}}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})


async def test_a_translated_reply_carries_the_usage_of_its_translation():
    """Read once: the usage is the translated body's own (what reading it again would give)."""
    gemini = await GeminiOverChat(FixedProvider(200, CHAT_REPLY), WordCounter()).open(
        UpstreamCall("generateContent", {"model": "m", "contents": [
            {"role": "user", "parts": [{"text": "hi"}]}]}, None, False, "r-1"))
    body = b"".join([chunk async for chunk in gemini.chunks])
    assert gemini.usage == orjson.loads(body)["usageMetadata"] == {
        "promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10}
    message = await over_chat(FixedProvider(200, CHAT_REPLY)).open(messages_call())
    body = b"".join([chunk async for chunk in message.chunks])
    assert message.usage == orjson.loads(body)["usage"]
    assert message.usage["input_tokens"] == 7 and message.usage["output_tokens"] == 3
    assert b"".join([chunk async for chunk in message.chunks]) == b""  # one chunk, once


async def test_an_error_reply_translated_carries_no_usage():
    error = orjson.dumps({"error": {"type": "invalid_request_error", "message": "no"}})
    reply = await over_chat(FixedProvider(400, error)).open(messages_call())
    assert reply.usage is None
