"""A Gemini `generateContent` call as a chat completion and back: system instruction, turns,
images, function declarations (Gemini `Schema` and JSON Schema), calls paired with their
responses, generation settings, finish reasons and usage; whatever has no chat counterpart is
a 400 naming it."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.errors import InvalidRequest
from rolegate.translate.gemini_to_chat import chat_request, gemini_error, gemini_reply

IMAGE = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def test_a_conversation_becomes_chat_messages_with_the_system_instruction_first():
    chat = chat_request({"model": "m", "systemInstruction": {"parts": [
        {"text": "be brief"}, {"text": "be kind"}]}, "contents": [
        user({"text": "what is this?"}, IMAGE),
        {"role": "model", "parts": [{"text": "a pixel"}]},
        {"parts": [{"text": "thanks"}]}]}, is_stream=False)  # a turn's role defaults to user

    assert chat == {"model": "m", "messages": [
        {"role": "system", "content": "be brief\nbe kind"},
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": "a pixel"},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]}]}


def test_generation_settings_become_chat_fields():
    chat = chat_request({"contents": [], "generationConfig": {
        "temperature": 0.2, "topP": 0.9, "maxOutputTokens": 64, "stopSequences": ["END"],
        "candidateCount": 2, "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": 0.3,
        "responseMimeType": "application/json"}}, is_stream=False)

    assert {name: value for name, value in chat.items() if name not in ("model", "messages")} \
        == {"temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "stop": ["END"], "n": 2,
            "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.3,
            "response_format": {"type": "json_object"}}


def test_a_response_schema_becomes_a_json_schema_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    chat = chat_request({"contents": [], "generationConfig": {
        "responseMimeType": "application/json", "responseJsonSchema": schema}}, is_stream=False)

    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "response", "schema": schema}}


def test_a_stream_asks_the_chat_upstream_for_its_usage():
    chat = chat_request({"contents": []}, is_stream=True)
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(("declaration", "parameters"), [
    ({"name": "f", "parameters": {"type": "OBJECT", "properties": {
        "city": {"type": "STRING"}, "days": {"type": "ARRAY", "items": {"type": "INTEGER"}}}}},
     {"type": "object", "properties": {"city": {"type": "string"}, "days": {
         "type": "array", "items": {"type": "integer"}}}}),
    ({"name": "f", "parametersJsonSchema": {"type": "object"}}, {"type": "object"}),
    ({"name": "f", "parameters_json_schema": {"type": "object"}}, {"type": "object"}),
], ids=["gemini-schema", "json-schema", "json-schema-snake-case"])
def test_function_declarations_become_tools_with_json_schema(declaration, parameters):
    chat = chat_request({"contents": [], "tools": [{"functionDeclarations": [
        {**declaration, "description": "weather"}]}]}, is_stream=False)

    assert chat["tools"] == [{"type": "function", "function": {
        "name": "f", "description": "weather", "parameters": parameters}}]


@pytest.mark.parametrize(("config", "choice"), [
    ({"mode": "AUTO"}, "auto"), ({"mode": "NONE"}, "none"), ({"mode": "ANY"}, "required"),
    ({"mode": "any", "allowedFunctionNames": ["f"]},
     {"type": "function", "function": {"name": "f"}}),
])
def test_the_function_calling_mode_becomes_the_tool_choice(config, choice):
    chat = chat_request({"contents": [], "toolConfig": {"functionCallingConfig": config}},
                        is_stream=False)
    assert chat["tool_choice"] == choice


def test_calls_and_their_responses_are_paired_by_id_else_by_name_in_order():
    chat = chat_request({"contents": [
        user({"text": "weather?"}),
        {"role": "model", "parts": [
            {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
            {"functionCall": {"id": "given", "name": "time", "args": {}}}]},
        user({"functionResponse": {"id": "given", "name": "time", "response": {"t": 9}}},
             {"functionResponse": {"name": "weather", "response": {"output": "rain"}}},
             {"functionResponse": {"name": "weather", "response": {"sky": "sun"}}},
             {"text": "and so?"})]}, is_stream=False)

    calls = chat["messages"][1]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [
        ("call_1_0", '{"city":"Oslo"}'), ("call_1_1", '{"city":"Rome"}'), ("given", "{}")]
    assert chat["messages"][2:] == [
        {"role": "tool", "tool_call_id": "given", "content": '{"t":9}'},
        {"role": "tool", "tool_call_id": "call_1_0", "content": "rain"},  # `output`: its text
        {"role": "tool", "tool_call_id": "call_1_1", "content": '{"sky":"sun"}'},
        {"role": "user", "content": [{"type": "text", "text": "and so?"}]}]


@pytest.mark.parametrize(("body", "field"), [
    ({"contents": [], "safetySettings": []}, "safetySettings"),
    ({"contents": [], "cachedContent": "c/1"}, "cachedContent"),
    ({"contents": [], "generationConfig": {"topK": 3}}, "generationConfig.topK"),
    ({"contents": [], "generationConfig": {"thinkingConfig": {}}},
     "generationConfig.thinkingConfig"),
    ({"contents": [], "generationConfig": {"responseMimeType": "text/x.enum"}},
     "generationConfig.responseMimeType"),
    ({"contents": [], "tools": [{"googleSearch": {}}]}, "tools[0].googleSearch"),
    ({"contents": [], "tools": [{"functionDeclarations": [{"name": "f", "response": {}}]}]},
     "tools[0].functionDeclarations[0].response"),
    ({"contents": [], "tools": [{"functionDeclarations": [
        {"name": "f", "parameters": {}, "parametersJsonSchema": {}}]}]},
     "tools[0].functionDeclarations[0].parameters"),
    ({"contents": [], "toolConfig": {"retrievalConfig": {}}}, "toolConfig"),
    ({"contents": [], "toolConfig": {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["a", "b"]}}},
     "toolConfig.functionCallingConfig"),
    ({"contents": [user({"fileData": {"fileUri": "gs://x"}})]}, "contents[0].parts[0]"),
    ({"contents": [user({"inlineData": {"mimeType": "audio/wav", "data": ""}})]},
     "contents[0].parts[0].inlineData"),
    ({"contents": [{"role": "model", "parts": [{"executableCode": {}}]}]},
     "contents[0].parts[0]"),
    ({"contents": [{"role": "function", "parts": []}]}, "contents[0].role"),
    ({"contents": [user({"functionResponse": {"name": "f", "response": {}}})]},
     "contents[0].parts[0].functionResponse"),
    ({"contents": [], "systemInstruction": {"parts": [IMAGE]}}, "systemInstruction.parts[0]"),
    ({"contents": {"parts": []}}, "contents"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_what_chat_cannot_express_is_a_400_naming_it(body, field):
    with pytest.raises(InvalidRequest) as refused:
        chat_request(body, is_stream=False)

    assert (refused.value.code, refused.value.param) == ("untranslatable_field", field)
    assert f"`{field}`" in refused.value.message


def completion(message: dict[str, Any], finish: str, usage: Any = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "choices": [{"index": 0, "message": message,
                                             "finish_reason": finish}], "usage": usage}


@pytest.mark.parametrize(("finish", "reason"), [
    ("stop", "STOP"), ("length", "MAX_TOKENS"), ("tool_calls", "STOP"),
    ("content_filter", "SAFETY"), ("something_new", "OTHER"), (None, "STOP")])
def test_finish_reasons_become_gemini_ones(finish, reason):
    reply = gemini_reply(completion({"content": "hi"}, finish), model="m")
    assert reply["candidates"][0]["finishReason"] == reason


def test_a_reply_with_tool_calls_becomes_function_call_parts():
    reply = gemini_reply(completion({"content": "let me look", "tool_calls": [
        {"id": "call_9", "type": "function", "function": {
            "name": "weather", "arguments": '{"city": "Oslo"}'}},
        {"id": "call_10", "type": "function", "function": {
            "name": "weather", "arguments": "not json"}}]}, "tool_calls"), model="m")

    assert reply["candidates"][0]["content"] == {"role": "model", "parts": [
        {"text": "let me look"},
        {"functionCall": {"id": "call_9", "name": "weather", "args": {"city": "Oslo"}}},
        {"functionCall": {"id": "call_10", "name": "weather", "args": {}}}]}
    assert reply["modelVersion"] == "m" and reply["responseId"] == "chatcmpl-1"


@pytest.mark.parametrize(("usage", "metadata"), [
    ({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
     {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}),
    ({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
      "prompt_tokens_details": {"cached_tokens": 4},
      "completion_tokens_details": {"reasoning_tokens": 3}},
     {"promptTokenCount": 10, "candidatesTokenCount": 2, "totalTokenCount": 15,
      "cachedContentTokenCount": 4, "thoughtsTokenCount": 3}),
    ({"prompt_tokens": "ten", "completion_tokens": -1},
     {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0}),
    (None, {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0}),
], ids=["plain", "cached-and-reasoning", "unreadable", "missing"])
def test_usage_becomes_usage_metadata(usage, metadata):
    assert gemini_reply(completion({"content": "x"}, "stop", usage),
                        model="m")["usageMetadata"] == metadata


@pytest.mark.parametrize(("kind", "code", "status"), [
    ("invalid_request_error", 400, "INVALID_ARGUMENT"),
    ("authentication_error", 401, "UNAUTHENTICATED"),
    ("permission_error", 403, "PERMISSION_DENIED"), ("not_found_error", 404, "NOT_FOUND"),
    ("rate_limit_error", 429, "RESOURCE_EXHAUSTED"), ("server_error", 500, "INTERNAL")])
def test_openai_errors_become_google_shaped(kind, code, status):
    assert gemini_error({"error": {"message": "no", "type": kind}}) == {
        "error": {"code": code, "message": "no", "status": status}}
