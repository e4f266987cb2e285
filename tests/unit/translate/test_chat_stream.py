"""An Anthropic Messages stream translated into an OpenAI chat-completions stream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rolegate.translate.chat_stream import ChatStream


def _event(value: dict[str, Any]) -> bytes:
    return f"event: {value['type']}\ndata: {json.dumps(value)}\n\n".encode()


SOURCE = b"".join(_event(value) for value in [
    {"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1,
                                                    "cache_read_input_tokens": 2}}},
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "t1", "name": "f", "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
                                                          "partial_json": '{"a": 1}'}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "signature_delta"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
     "usage": {"output_tokens": 3}},
    {"type": "message_stop"},
])


def _chunks(data: bytes) -> list[Any]:
    return [block.removeprefix("data: ") if block == "data: [DONE]"
            else json.loads(block.removeprefix("data: "))
            for block in data.decode().strip().split("\n\n")]


@pytest.mark.parametrize("is_usage_sent", [True, False])
def test_messages_events_become_chat_chunks_even_when_split_mid_event(is_usage_sent):
    stream = ChatStream(model="gpt", request_id="r1", is_usage_sent=is_usage_sent)
    out = b"".join(stream.feed(SOURCE[i:i + 9]) for i in range(0, len(SOURCE), 9))
    out += stream.finish()

    chunks = _chunks(out)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks[:5]]
    assert deltas == [
        {"role": "assistant", "content": ""}, {"content": "Hi"},
        {"tool_calls": [{"index": 0, "id": "t1", "type": "function",
                         "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]}, {}]
    assert chunks[4]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[0]["model"] == "gpt" and chunks[0]["id"] == "chatcmpl-r1"
    assert chunks[-1] == "[DONE]"
    if is_usage_sent:
        assert chunks[5]["choices"] == [] and chunks[5]["usage"]["prompt_tokens"] == 7
        assert chunks[5]["usage"]["completion_tokens"] == 3
    else:
        assert len(chunks) == 6


def test_an_error_event_ends_the_chat_stream_with_an_openai_error():
    stream = ChatStream(model="gpt", request_id="r1", is_usage_sent=True)
    out = stream.feed(b": comment\n\ndata: nope\n\n" + _event(
        {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}))
    assert _chunks(out) == [{"error": {"message": "busy", "type": "overloaded_error",
                                       "param": None, "code": None}}]
    assert stream.finish() == b""
