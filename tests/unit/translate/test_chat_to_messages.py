"""Chat-completions requests to Anthropic Messages, and Messages replies and errors back."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.errors import InvalidRequest
from rolegate.translate.chat_to_messages import (
    DEFAULT_MAX_TOKENS, anthropic_error, chat_reply, chat_usage, messages_request, openai_error,
)

BASE: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_system_and_developer_messages_become_the_system_prompt():
    body = messages_request({**BASE, "messages": [
        {"role": "system", "content": "a"}, {"role": "developer",
                                             "content": [{"type": "text", "text": "b"}]},
        {"role": "user", "content": "hi"}], "stop": "END", "user": "u-1", "temperature": 0})

    assert body == {"model": "m", "system": "a\nb", "max_tokens": DEFAULT_MAX_TOKENS,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                    "stop_sequences": ["END"], "metadata": {"user_id": "u-1"},
                    "temperature": 0}


def test_max_completion_tokens_wins_over_max_tokens():
    assert messages_request({**BASE, "max_tokens": 5, "max_completion_tokens": 7})[
        "max_tokens"] == 7


def test_tool_calls_and_consecutive_tool_results_make_alternating_turns():
    body = messages_request({**BASE, "tools": [{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object"}}}],
        "tool_choice": "required", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "go"}, {
                "type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "f",
                                                             "arguments": '{"x": 1}'}}]},
            {"role": "tool", "tool_call_id": "a", "content": "one"},
            {"role": "tool", "tool_call_id": "b", "content": "two"}]})

    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object"},
                              "description": "d"}]
    assert body["tool_choice"] == {"type": "any"}
    assert [message["role"] for message in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"][1] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "AAA"}}
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "a", "name": "f", "input": {}},
        {"type": "tool_use", "id": "b", "name": "f", "input": {"x": 1}}]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "a", "content": "one"},
        {"type": "tool_result", "tool_use_id": "b", "content": "two"}]


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"})])
def test_tool_choice_is_translated(choice, expected):
    assert messages_request({**BASE, "tool_choice": choice})["tool_choice"] == expected


@pytest.mark.parametrize(("change", "field"), [
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"logprobs": True}, "logprobs"),
    ({"n": 2}, "n"),
    ({"tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
    ({"tools": [{"type": "custom", "custom": {}}]}, "tools[0]"),
    ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": "a"}]}]},
     "messages[0].tool_calls[0]"),
    ({"messages": [{"role": "assistant", "tool_calls": [
        {"id": "a", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_a_field_with_no_messages_equivalent_is_400_naming_it(change, field):
    with pytest.raises(InvalidRequest) as caught:
        messages_request({**BASE, **change})
    assert (caught.value.code, caught.value.param) == ("untranslatable_field", field)


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter")])
def test_a_message_becomes_a_chat_completion(stop, finish):
    reply = chat_reply({"id": "msg_1", "stop_reason": stop, "content": [
        {"type": "text", "text": "a"}, {"type": "thinking", "thinking": "..."},
        {"type": "tool_use", "id": "t", "name": "f", "input": {"x": 1}}],
        "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 4,
                  "cache_creation_input_tokens": 5}}, model="gpt")

    choice = reply["choices"][0]
    assert choice["finish_reason"] == finish and reply["model"] == "gpt"
    assert choice["message"]["content"] == "a"
    assert choice["message"]["tool_calls"] == [{"id": "t", "type": "function", "function": {
        "name": "f", "arguments": '{"x":1}'}}]
    assert reply["usage"] == {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14,
                              "prompt_tokens_details": {"cached_tokens": 4}}


def test_usage_that_cannot_be_read_counts_as_nothing():
    assert chat_usage("x")["total_tokens"] == 0


def test_errors_are_carried_between_the_two_shapes():
    anthropic = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}
    assert openai_error(anthropic) == {"error": {"message": "bad",
                                                 "type": "invalid_request_error",
                                                 "param": None, "code": None}}
    assert anthropic_error({"error": {"message": "slow down", "type": "rate_limit_error",
                                      "code": "x"}}) == {
        "type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    assert anthropic_error({"error": "text"})["error"]["type"] == "api_error"
    assert openai_error({"error": None})["error"]["type"] == "api_error"
