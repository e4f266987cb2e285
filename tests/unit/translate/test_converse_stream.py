"""ConverseStream frames translated into a chat-completions stream: decoded whatever the chunk
boundaries, tool calls streamed as deltas, an exception or a corrupt frame ending the stream
with one error event. The frames come from the test upstream's encoder, itself checked against
botocore's own event-stream parser for the ConverseStream output shape."""

from __future__ import annotations

import json
from typing import Any

from botocore.eventstream import EventStream
from botocore.parsers import EventStreamJSONParser

from rolegate.translate.converse_stream import ConverseChatStream
from tests.support import bedrock_wire

TOOLS = {"toolConfig": {"tools": [{"toolSpec": {"name": "get_weather"}}]}}


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self) -> Any:
        yield self._data


def _events(output: bytes) -> list[Any]:
    events = []
    for block in output.split(b"\n\n"):
        if block.startswith(b"data: ") and block != b"data: [DONE]":
            events.append(json.loads(block[6:]))
    return events


def _translate(frames: bytes, step: int, *, is_usage_sent: bool = True) -> bytes:
    stream = ConverseChatStream(model="nova", request_id="r1", is_usage_sent=is_usage_sent)
    out = [stream.feed(frames[start:start + step]) for start in range(0, len(frames), step)]
    return b"".join(out) + stream.finish()


def test_the_test_encoder_frames_what_botocore_parses_as_converse_stream_events():
    frames = b"".join(bedrock_wire.stream_frames(TOOLS))
    shape = (bedrock_wire.SERVICE_MODEL.operation_model("ConverseStream").output_shape
             .members["stream"])
    parsed = list(EventStream(_Raw(frames), shape, EventStreamJSONParser(), "ConverseStream"))

    assert [next(iter(event)) for event in parsed] == [
        "messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockDelta",
        "contentBlockStop", "messageStop", "metadata"]
    assert parsed[1]["contentBlockStart"]["start"]["toolUse"]["name"] == "get_weather"
    assert parsed[-1]["metadata"]["usage"]["cacheWriteInputTokens"] == bedrock_wire.CACHE_WRITE


def test_the_translation_is_the_same_whatever_the_chunk_boundaries():
    frames = b"".join(bedrock_wire.stream_frames({}))
    whole = _translate(frames, len(frames))

    for step in (1, 7, 50):
        assert _translate(frames, step) == whole
    events = _events(whole)
    assert "".join(event["choices"][0]["delta"].get("content", "") for event in events
                   if event["choices"]) == bedrock_wire.TEXT
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["usage"] == {
        "prompt_tokens": 10, "completion_tokens": bedrock_wire.OUTPUT_TOKENS,
        "total_tokens": 14, "prompt_tokens_details": {"cached_tokens": bedrock_wire.CACHE_READ}}
    assert whole.endswith(b"data: [DONE]\n\n")


def test_a_tool_call_streams_its_id_and_name_then_argument_deltas():
    events = _events(_translate(b"".join(bedrock_wire.stream_frames(TOOLS)), 13,
                                is_usage_sent=False))
    calls = [call for event in events for call in event["choices"][0]["delta"].get(
        "tool_calls", ())]

    assert calls[0] == {"index": 0, "id": "tooluse_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}
    assert json.loads("".join(call["function"]["arguments"] for call in calls)) == \
        bedrock_wire.TOOL_INPUT
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(event["choices"] for event in events)  # no usage chunk: not asked for


def test_an_exception_frame_ends_the_stream_with_one_error_event():
    frames = b"".join(bedrock_wire.stream_frames({}, is_throttled=True))
    output = _translate(frames, 9)

    assert _events(output)[-1] == {"error": {"message": "Too many requests.",
                                             "type": "rate_limit_error", "param": None,
                                             "code": "upstream_error"}}
    assert b"[DONE]" not in output


def test_a_frame_failing_its_checksum_ends_the_stream_with_an_error_event():
    frames = bytearray(b"".join(bedrock_wire.stream_frames({})))
    frames[-30] ^= 0xFF  # a bit flipped in the last frame's payload
    stream = ConverseChatStream(model="nova", request_id="r1", is_usage_sent=False)
    output = stream.feed(bytes(frames)) + stream.feed(b"more") + stream.finish()

    assert "corrupt" in _events(output)[-1]["error"]["message"]
    assert output.count(b'"error"') == 1 and b"[DONE]" not in output
