"""A chat-completions call as a Gemini `generateContent` call and back: system and developer
messages, alternating turns, images, tools and their results, generation settings, response
formats, finish reasons and usage (cached and thinking tokens); whatever Gemini cannot express
is a 400 naming it."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.errors import InvalidRequest
from rolegate.translate.chat_to_gemini import chat_reply, gemini_request, openai_error

PNG = "data:image/png;base64,iVBORw0KGgo="


def test_system_prompts_become_the_system_instruction_and_turns_alternate():
    request = gemini_request({"model": "m", "user": "alice", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": [{"type": "text", "text": "be kind"}]},
        {"role": "user", "content": "look"},
        {"role": "user", "content": [{"type": "text", "text": "at this"},
                                     {"type": "image_url", "image_url": {"url": PNG}}]},
        {"role": "assistant", "content": "a pixel"}]})

    assert request == {
        "systemInstruction": {"parts": [{"text": "be brief"}, {"text": "be kind"}]},
        "contents": [
            {"role": "user", "parts": [  # two user messages: one turn
                {"text": "look"}, {"text": "at this"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]},
            {"role": "model", "parts": [{"text": "a pixel"}]}]}  # no model, no end user


def test_tool_calls_and_results_become_function_calls_and_responses_named_by_their_call():
    request = gemini_request({"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {
                "name": "weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {
                "name": "clock", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "rain"}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "9 o'clock"}],
        "tools": [{"type": "function", "function": {
            "name": "weather", "description": "Weather", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}}})

    assert request["contents"][1:] == [
        {"role": "model", "parts": [
            {"functionCall": {"id": "call_1", "name": "weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"id": "call_2", "name": "clock", "args": {}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "call_1", "name": "weather",
                                  "response": {"sky": "rain"}}},
            {"functionResponse": {"id": "call_2", "name": "clock",
                                  "response": {"output": "9 o'clock"}}}]}]
    assert request["tools"] == [{"functionDeclarations": [{
        "name": "weather", "description": "Weather", "parametersJsonSchema": {"type": "object"}}]}]
    assert request["toolConfig"] == {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["weather"]}}


@pytest.mark.parametrize(("choice", "mode"), [("auto", "AUTO"), ("none", "NONE"),
                                              ("required", "ANY")])
def test_tool_choice_becomes_the_function_calling_mode(choice, mode):
    request = gemini_request({"messages": [], "tool_choice": choice})
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_generation_settings_and_response_formats_become_generation_config():
    schema = {"type": "object"}
    settings = {"temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 64, "n": 2,
                "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.3, "stop": "END"}
    config = gemini_request({"messages": [], **settings, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})

    assert config["generationConfig"] == {
        "temperature": 0.2, "topP": 0.9, "maxOutputTokens": 64, "candidateCount": 2,
        "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": 0.3, "stopSequences": ["END"],
        "responseMimeType": "application/json", "responseJsonSchema": schema}
    assert gemini_request({"messages": [], "response_format": {"type": "json_object"}})[
        "generationConfig"] == {"responseMimeType": "application/json"}
    assert "generationConfig" not in gemini_request({"messages": [], "response_format": {
        "type": "text"}})


@pytest.mark.parametrize(("body", "field"), [
    ({"messages": [], "logprobs": True}, "logprobs"),
    ({"messages": [], "logit_bias": {}}, "logit_bias"),
    ({"messages": [], "parallel_tool_calls": False}, "parallel_tool_calls"),
    ({"messages": [], "reasoning_effort": "low"}, "reasoning_effort"),
    ({"messages": [], "response_format": {"type": "grammar"}}, "response_format"),
    ({"messages": [], "tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
    ({"messages": [], "tools": [{"type": "custom", "custom": {}}]}, "tools[0]"),
    ({"messages": [], "tools": [{"type": "function", "function": {
        "name": "f", "strict": True}}]}, "tools[0].function.strict"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "https://example.com/cat.png"}}]}]}, "messages[0].content[0].image_url"),
    ({"messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "assistant", "tool_calls": ["call"]}]},
     "messages[0].tool_calls[0]"),
    ({"messages": "hi"}, "messages"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_what_gemini_cannot_express_is_a_400_naming_it(body, field):
    with pytest.raises(InvalidRequest) as refused:
        gemini_request(body)

    assert (refused.value.code, refused.value.param) == ("untranslatable_field", field)


def response(parts: list[dict[str, Any]], finish: str | None = "STOP",
             usage: Any = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage}


def test_a_response_becomes_a_chat_completion_without_the_thoughts():
    completion = chat_reply(response([{"text": "hmm", "thought": True}, {"text": "Hello"},
                                      {"text": " there"}]), model="m", request_id="r1")

    assert completion["id"] == "chatcmpl-r1" and completion["model"] == "m"
    assert completion["choices"] == [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Hello there"}}]


def test_function_calls_become_tool_calls_and_finish_as_such():
    completion = chat_reply(response([
        {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
        {"functionCall": {"id": "given", "name": "clock"}}]), model="m", request_id="r")

    message = completion["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"index": 0, "id": "call_0_0", "type": "function",
         "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
        {"index": 1, "id": "given", "type": "function",
         "function": {"name": "clock", "arguments": "{}"}}]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(("reason", "finish"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "stop"), (None, None)])
def test_finish_reasons_become_chat_ones(reason, finish):
    completion = chat_reply(response([{"text": "x"}], reason), model="m", request_id="r")
    assert completion["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(("metadata", "usage"), [
    ({"promptTokenCount": 6, "candidatesTokenCount": 3, "thoughtsTokenCount": 2,
      "cachedContentTokenCount": 4, "totalTokenCount": 11},
     {"prompt_tokens": 6, "completion_tokens": 5, "total_tokens": 11,
      "prompt_tokens_details": {"cached_tokens": 4},
      "completion_tokens_details": {"reasoning_tokens": 2}}),
    ({"promptTokenCount": 6, "candidatesTokenCount": 3},
     {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}),
    ({"promptTokenCount": True, "candidatesTokenCount": "3"},
     {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
    (None, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
], ids=["cached-and-thinking", "no-total", "unreadable", "missing"])
def test_usage_metadata_becomes_usage(metadata, usage):
    assert chat_reply(response([], usage=metadata), model="m", request_id="r")[
        "usage"] == usage


@pytest.mark.parametrize(("status", "kind"), [
    ("INVALID_ARGUMENT", "invalid_request_error"), ("UNAUTHENTICATED", "authentication_error"),
    ("PERMISSION_DENIED", "permission_error"), ("NOT_FOUND", "not_found_error"),
    ("RESOURCE_EXHAUSTED", "rate_limit_error"), ("INTERNAL", "api_error")])
def test_google_errors_become_openai_shaped(status, kind):
    assert openai_error({"error": {"code": 400, "message": "no", "status": status}}) == {
        "error": {"message": "no", "type": kind, "param": None, "code": status.lower()}}
