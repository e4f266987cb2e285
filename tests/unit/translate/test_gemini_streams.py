"""Streams between Gemini's events and OpenAI's chat chunks, both ways, fed in pieces that cut
events anywhere: text as it comes, function calls whole, the finish reason, the usage (cached
and thinking tokens), an upstream error ending the stream, and the end sent once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rolegate.translate.chat_from_gemini_stream import GeminiChatStream
from rolegate.translate.gemini_stream import GeminiStream


def sse(value: dict[str, Any], end: str = "\n\n") -> bytes:
    return f"data: {json.dumps(value)}{end}".encode()


def fed(stream: Any, source: bytes, size: int = 7) -> bytes:
    out = b"".join(stream.feed(source[i:i + size]) for i in range(0, len(source), size))
    return out + stream.finish()


def events(data: bytes) -> list[Any]:
    blocks = data.decode().replace("\r\n", "\n").strip().split("\n\n")
    return [block[6:] if block == "data: [DONE]" else json.loads(block[6:]) for block in blocks]


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]}


CHAT_USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
              "prompt_tokens_details": {"cached_tokens": 4},
              "completion_tokens_details": {"reasoning_tokens": 2}}
CHAT_SOURCE = b"".join([
    sse(chunk({"role": "assistant", "content": ""})), sse(chunk({"content": "Hel"})),
    sse(chunk({"content": "lo"})),
    sse(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "weather", "arguments": ""}}]})),
    sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]})),
    sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]})),
    sse(chunk({}, "tool_calls")),
    sse({"object": "chat.completion.chunk", "choices": [], "usage": CHAT_USAGE}),
    b"data: [DONE]\n\n"])


@pytest.mark.parametrize("size", [1, 7, len(CHAT_SOURCE)])
def test_a_chat_stream_becomes_gemini_events_with_the_call_whole_at_the_end(size):
    out = events(fed(GeminiStream(model="gemini-x"), CHAT_SOURCE, size))

    assert [event["candidates"][0]["content"]["parts"] for event in out] == [
        [{"text": "Hel"}], [{"text": "lo"}],
        [{"functionCall": {"id": "call_1", "name": "weather", "args": {"city": "Oslo"}}}]]
    assert "finishReason" not in out[0]["candidates"][0]
    assert out[-1]["candidates"][0]["finishReason"] == "STOP"
    assert out[-1]["usageMetadata"] == {
        "promptTokenCount": 10, "candidatesTokenCount": 3, "totalTokenCount": 15,
        "cachedContentTokenCount": 4, "thoughtsTokenCount": 2}
    assert {event["modelVersion"] for event in out} == {"gemini-x"}


@pytest.mark.parametrize(("finish", "reason"), [("length", "MAX_TOKENS"),
                                                ("content_filter", "SAFETY"),
                                                (None, "STOP")])
def test_a_chat_stream_without_usage_finishes_at_its_end_with_its_reason(finish, reason):
    stream = GeminiStream(model="m")
    source = sse(chunk({"content": "x"}, finish))  # no usage chunk, no [DONE]: the end
    out = events(fed(stream, source))

    assert out[-1]["candidates"][0]["finishReason"] == reason
    assert out[-1]["usageMetadata"]["totalTokenCount"] == 0
    assert stream.finish() == b""  # once


def test_an_error_in_a_chat_stream_ends_the_gemini_stream_in_googles_shape():
    stream = GeminiStream(model="m")
    out = events(fed(stream, sse(chunk({"content": "x"})) + sse(
        {"error": {"message": "overloaded", "type": "rate_limit_error"}}) + sse(
        chunk({"content": "late"}))))

    assert out[-1] == {"error": {"code": 429, "message": "overloaded",
                                 "status": "RESOURCE_EXHAUSTED"}}
    assert len(out) == 2  # nothing after the error, no finishing event


def gemini_event(parts: list[dict[str, Any]], finish: str | None = None,
                 usage: dict[str, Any] | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage or {}}


GEMINI_SOURCE = b"".join([
    sse(gemini_event([{"text": "thinking", "thought": True}]), "\r\n\r\n"),
    sse(gemini_event([{"text": "Hel"}], usage={"promptTokenCount": 6}), "\r\n\r\n"),
    sse(gemini_event([{"text": "lo"}, {"functionCall": {"name": "weather",
                                                        "args": {"city": "Oslo"}}}],
                     "STOP", {"promptTokenCount": 6, "candidatesTokenCount": 3,
                              "thoughtsTokenCount": 2, "cachedContentTokenCount": 1,
                              "totalTokenCount": 11}), "\r\n\r\n")])


@pytest.mark.parametrize("is_usage_sent", [True, False])
@pytest.mark.parametrize("size", [1, 5, len(GEMINI_SOURCE)])
def test_gemini_events_become_chat_chunks(is_usage_sent, size):
    stream = GeminiChatStream(model="gpt-x", request_id="r1", is_usage_sent=is_usage_sent)
    out = events(fed(stream, GEMINI_SOURCE, size))

    assert [c["choices"][0]["delta"] for c in out[:3]] == [
        {"role": "assistant", "content": ""}, {"content": "Hel"},
        {"content": "lo", "tool_calls": [{"index": 0, "id": "call_0_1", "type": "function",
                                          "function": {"name": "weather",
                                                       "arguments": '{"city":"Oslo"}'}}]}]
    assert [c["choices"][0]["finish_reason"] for c in out[:3]] == [None, None, "tool_calls"]
    assert out[0]["id"] == "chatcmpl-r1" and out[0]["model"] == "gpt-x"
    assert out[-1] == "[DONE]"
    if is_usage_sent:
        assert out[3]["choices"] == [] and out[3]["usage"] == {
            "prompt_tokens": 6, "completion_tokens": 5, "total_tokens": 11,
            "prompt_tokens_details": {"cached_tokens": 1},
            "completion_tokens_details": {"reasoning_tokens": 2}}
    else:
        assert len(out) == 4


def test_an_error_in_a_gemini_stream_ends_the_chat_stream_with_an_openai_error():
    stream = GeminiChatStream(model="m", request_id="r", is_usage_sent=False)
    out = events(fed(stream, sse(gemini_event([{"text": "x"}])) + sse(
        {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}})))

    assert out[-1] == {"error": {"message": "busy", "type": "api_error", "param": None,
                                 "code": "unavailable"}}
    assert stream.finish() == b""  # the error ended it: no [DONE] after
