"""Anthropic Messages requests to chat completions, and chat replies and streams back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rolegate.errors import InvalidRequest
from rolegate.translate.messages_stream import MessagesStream
from rolegate.translate.messages_to_chat import chat_request, message_reply, message_usage

BASE: dict[str, Any] = {"model": "m", "max_tokens": 10,
                        "messages": [{"role": "user", "content": "hi"}]}


def test_system_blocks_images_and_stop_sequences_are_translated():
    chat = chat_request({**BASE, "system": [{"type": "text", "text": "a"},
                                            {"type": "text", "text": "b"}],
                         "stop_sequences": ["END"], "temperature": 0.5,
                         "metadata": {"user_id": "u-1"}, "messages": [{"role": "user", "content": [
                             {"type": "text", "text": "look"},
                             {"type": "image", "source": {"type": "base64",
                                                          "media_type": "image/png",
                                                          "data": "AAA"}},
                             {"type": "image", "source": {"type": "url",
                                                          "url": "https://x/y.png"}}]}]})

    assert chat["messages"] == [
        {"role": "system", "content": "a\nb"},
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    assert (chat["stop"], chat["temperature"], chat["user"], chat["max_tokens"]) == (
        ["END"], 0.5, "u-1", 10)
    assert "stream_options" not in chat


def test_a_stream_asks_the_chat_upstream_for_its_usage():
    assert chat_request({**BASE, "stream": True})["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "none"}, "none"), ({"type": "any"}, "required"),
    ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
])
def test_tool_choice_is_translated(choice, expected):
    assert chat_request({**BASE, "tool_choice": choice})["tool_choice"] == expected


@pytest.mark.parametrize(("change", "field"), [
    ({"top_k": 5}, "top_k"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
    ({"metadata": {"user_id": "u", "other": 1}}, "metadata.other"),
    ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
     "tool_choice.disable_parallel_tool_use"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ({"system": [{"type": "image"}]}, "system[0]"),
    ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "document"}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "assistant", "content": [{"type": "thinking"}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                 "is_error": True, "content": "x"}]}]},
     "messages[0].content[0].is_error"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_a_field_with_no_chat_equivalent_is_400_naming_it(change, field):
    with pytest.raises(InvalidRequest) as caught:
        chat_request({**BASE, **change})
    assert (caught.value.status, caught.value.code, caught.value.param) == (
        400, "untranslatable_field", field)
    assert f"`{field}`" in caught.value.message


def test_tool_use_and_results_become_tool_calls_and_tool_messages():
    chat = chat_request({**BASE, "tools": [{"name": "f", "description": "d",
                                            "input_schema": {"type": "object"}}],
                         "messages": [
        {"role": "assistant", "content": [{"type": "text", "text": "calling"},
                                          {"type": "tool_use", "id": "t1", "name": "f",
                                           "input": {"a": 1}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1",
             "content": [{"type": "text", "text": "done"}]},
            {"type": "text", "text": "thanks"}]}]})

    assert chat["tools"] == [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object"}, "description": "d"}}]
    assert chat["messages"] == [
        {"role": "assistant", "content": "calling", "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f",
                                                          "arguments": '{"a":1}'}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "done"},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]}]


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
    ("content_filter", "refusal"), (None, "end_turn")])
def test_a_chat_reply_becomes_a_message_with_its_stop_reason(finish, stop):
    message = message_reply({"id": "c1", "choices": [{"finish_reason": finish, "message": {
        "content": "hi", "tool_calls": [{"id": "k", "function": {
            "name": "f", "arguments": '{"x": 2}'}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3,
                  "prompt_tokens_details": {"cached_tokens": 4}}}, model="claude")

    assert message["stop_reason"] == stop and message["model"] == "claude"
    assert message["content"] == [{"type": "text", "text": "hi"},
                                  {"type": "tool_use", "id": "k", "name": "f",
                                   "input": {"x": 2}}]
    assert message["usage"] == {"input_tokens": 6, "output_tokens": 3,
                                "cache_read_input_tokens": 4}


def test_unreadable_usage_and_arguments_count_as_nothing():
    message = message_reply({"choices": [{"message": {"tool_calls": [
        {"id": "k", "function": {"name": "f", "arguments": "not json"}}]}}]}, model="m")
    assert message["content"][0]["input"] == {}
    assert message_usage(None) == {"input_tokens": 0, "output_tokens": 0}


def _events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in data.decode().strip().split("\n\n"):
        name, payload = block.split("\n")
        events.append((name.removeprefix("event: "), json.loads(payload.removeprefix("data: "))))
    return events


def _chunk(**delta: Any) -> bytes:
    finish = delta.pop("finish", None)
    return b"data: " + json.dumps({"id": "c1", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]}).encode() + b"\n\n"


def test_a_chat_stream_becomes_messages_events_even_when_split_mid_event():
    stream = MessagesStream(model="claude")
    source = (_chunk(role="assistant", content="Hel") + _chunk(content="lo")
              + _chunk(tool_calls=[{"index": 0, "id": "k", "function": {
                  "name": "f", "arguments": '{"a"'}}])
              + _chunk(tool_calls=[{"index": 0, "function": {"arguments": ": 1}"}}])
              + _chunk(finish="tool_calls")
              + b'data: {"id": "c1", "choices": [], "usage": {"prompt_tokens": 5, '
                b'"completion_tokens": 2}}\n\n' + b"data: [DONE]\n\n")
    out = b"".join(stream.feed(source[i:i + 7]) for i in range(0, len(source), 7))
    out += stream.finish()

    names = [name for name, _ in _events(out)]
    assert names == ["message_start", "content_block_start", "content_block_delta",
                     "content_block_delta", "content_block_stop", "content_block_start",
                     "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    events = _events(out)
    assert events[0][1]["message"]["model"] == "claude"
    assert events[5][1]["content_block"] == {"type": "tool_use", "id": "k", "name": "f",
                                             "input": {}}
    assert events[7][1]["delta"] == {"type": "input_json_delta", "partial_json": ": 1}"}
    assert events[9][1]["delta"]["stop_reason"] == "tool_use"
    assert events[9][1]["usage"] == {"input_tokens": 5, "output_tokens": 2}


def test_a_stream_that_ends_without_done_is_still_closed_once():
    stream = MessagesStream(model="m")
    out = stream.feed(_chunk(content="hi") + b": comment\n\ndata: not json\n\n")
    closing = stream.finish()
    assert [name for name, _ in _events(out + closing)][-2:] == ["message_delta",
                                                                  "message_stop"]
    assert stream.finish() == b""


def test_an_error_in_the_chat_stream_ends_the_messages_stream_with_an_error_event():
    stream = MessagesStream(model="m")
    out = stream.feed(_chunk(content="hi") + b'data: {"error": {"message": "cut", "type": '
                      b'"api_error"}}\n\n')
    assert _events(out)[-1] == ("error", {"type": "error", "error": {"type": "api_error",
                                                                     "message": "cut"}})
    assert stream.finish() == b""
