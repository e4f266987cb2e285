"""Chat completions to Converse: every translated request is valid for botocore's own
`bedrock-runtime` model, fields with no counterpart are refused by name, and Bedrock's error
bodies keep their meaning in OpenAI's shape."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.errors import InvalidRequest
from rolegate.translate.chat_to_converse import chat_reply, converse_request, openai_error
from tests.support import bedrock_wire

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
REQUESTS: list[dict[str, Any]] = [
    {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    {"model": "m", "messages": [{"role": "developer", "content": [{"type": "text", "text": "x"}]},
                                {"role": "user", "content": "hi"}], "top_p": 0.5, "stop": "X"},
    {"model": "m", "tools": [TOOL], "tool_choice": {"type": "function",
                                                    "function": {"name": "f"}},
     "messages": [{"role": "user", "content": "hi"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "c1", "type": "function",
                       "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                  {"role": "user", "content": "and?"}]},
]


@pytest.mark.parametrize("body", REQUESTS, ids=["plain", "developer-and-options", "tools"])
def test_a_translated_request_is_valid_for_the_bedrock_service_model(body):
    converse = converse_request(body)

    assert bedrock_wire.validation_refusal("Converse", "m", converse, b"") is None


@pytest.mark.parametrize("invalid", [
    {"messages": [{"role": "robot", "content": [{"text": "hi"}]}]},
    {"messages": [{"role": "user", "contents": [{"text": "hi"}]}]},
    {"messages": [{"role": "user", "content": [{"text": "hi"}]}],
     "inferenceConfig": {"maxTokens": "64"}},
], ids=["unknown-role", "unknown-member", "wrong-type"])
def test_the_service_model_check_refuses_what_bedrock_refuses(invalid):
    refused = bedrock_wire.validation_refusal("Converse", "m", invalid, b"")

    assert refused is not None and refused.status == 400


def test_consecutive_tool_results_and_the_next_user_turn_are_one_converse_turn():
    converse = converse_request(REQUESTS[2])

    assert [message["role"] for message in converse["messages"]] == ["user", "assistant", "user"]
    assert converse["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "c1", "content": [{"text": "ok"}]}}, {"text": "and?"}]
    assert converse["toolConfig"]["toolChoice"] == {"tool": {"name": "f"}}


@pytest.mark.parametrize(("body", "field"), [
    ({"n": 2}, "n"),
    ({"seed": 1}, "seed"),
    ({"tools": [{"type": "function", "function": {"name": "f", "strict": True}}]},
     "tools[0].function.strict"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "messages[0].content[0]"),
], ids=["n", "seed", "strict-tool", "audio-part"])
def test_a_field_with_no_converse_counterpart_is_refused_by_name(body, field):
    with pytest.raises(InvalidRequest) as refused:
        converse_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})

    assert refused.value.param == field


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("guardrail_intervened", "content_filter"), ("model_context_window_exceeded", "length")])
def test_stop_reasons_become_finish_reasons(stop, finish):
    reply = chat_reply({"output": {"message": {"content": [{"text": "x"}]}},
                        "stopReason": stop}, model="m")

    assert reply["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(("status", "kind"), [
    (400, "invalid_request_error"), (429, "rate_limit_error"), (503, "api_error")])
def test_a_bedrock_error_body_keeps_its_message_and_its_kind_follows_the_status(status, kind):
    error = openai_error({"message": "Too many tokens"}, status=status)["error"]

    assert (error["message"], error["type"]) == ("Too many tokens", kind)
