"""A Gemini `generateContent` call served by an OpenAI chat-completions upstream: the request
translated to a chat request (`chat_request`), and the chat reply back to a
`GenerateContentResponse` (`gemini_reply`). The stream is translated event by event in
`gemini_stream.py`.

    chat = chat_request(gemini_body, is_stream=False)   # 400 naming any field with no equivalent
    response = gemini_reply(chat_completion, model="gemini-x")

Gemini's function calls carry no id unless the caller gave one: a call is named
`call_<turn>_<index>` here, and a `functionResponse` is paired with the earliest unanswered call
of the same name, as Gemini itself pairs them.
"""

from __future__ import annotations

from typing import Any

import orjson

from rolegate.errors import GOOGLE_STATUSES
from rolegate.translate.untranslatable import untranslatable

OPENAI = "OpenAI chat completions"
# generationConfig's fields with a chat counterpart: copied under the chat name.
_GENERATION = {"temperature": "temperature", "topP": "top_p", "maxOutputTokens": "max_tokens",
               "stopSequences": "stop", "candidateCount": "n", "seed": "seed",
               "presencePenalty": "presence_penalty", "frequencyPenalty": "frequency_penalty"}
# `model` is the gateway's own: the deployment's model name, from the path.
_HANDLED = frozenset({"model", "contents", "systemInstruction", "generationConfig", "tools",
                      "toolConfig"})
FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP",
                  "function_call": "STOP", "content_filter": "SAFETY"}
_MODES = {"AUTO": "auto", "NONE": "none", "ANY": "required"}
# A declaration's JSON Schema, under either name: Google's parser reads a field's snake_case
# name as its camelCase one (proto3 JSON), and the google-genai SDK sends the snake_case one.
_JSON_SCHEMA = ("parametersJsonSchema", "parameters_json_schema")
_DECLARATION = frozenset({"name", "description", "parameters", *_JSON_SCHEMA})


def chat_request(body: dict[str, Any], *, is_stream: bool) -> dict[str, Any]:
    """The chat-completions body for Gemini `body` (`GenerateContentRequest`)."""
    for name in body:
        if name not in _HANDLED:
            raise untranslatable(name, OPENAI)
    messages: list[dict[str, Any]] = []
    if "systemInstruction" in body:
        messages.append({"role": "system", "content": _text(body["systemInstruction"],
                                                            "systemInstruction")})
    pending: list[tuple[str, str]] = []  # (id, name) of calls not yet answered
    for turn, content in enumerate(_list(body.get("contents"), "contents")):
        messages += _messages(content, f"contents[{turn}]", turn, pending)
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    chat.update(_generation(body.get("generationConfig")))
    if "tools" in body:
        chat["tools"] = [tool for index, entry in enumerate(_list(body["tools"], "tools"))
                         for tool in _tools(entry, f"tools[{index}]")]
    if "toolConfig" in body:
        chat["tool_choice"] = _tool_choice(body["toolConfig"])
    if is_stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # Gemini's chunks carry usage
    return chat


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise untranslatable(field, OPENAI, "expected a list")
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise untranslatable(field, OPENAI, "expected an object")
    return value


def _text(content: Any, field: str) -> str:
    """The text parts of a `Content` (a system instruction), joined."""
    content = _object(content, field)
    texts = []
    for index, part in enumerate(_list(content.get("parts"), f"{field}.parts")):
        if not isinstance(part, dict) or set(part) - {"text"}:
            raise untranslatable(f"{field}.parts[{index}]", OPENAI, "only text parts")
        texts.append(str(part.get("text", "")))
    return "\n".join(texts)


def _messages(content: Any, field: str, turn: int,
              pending: list[tuple[str, str]]) -> list[dict[str, Any]]:
    content = _object(content, field)
    role = content.get("role", "user")
    if role not in ("user", "model") or set(content) - {"role", "parts"}:
        raise untranslatable(f"{field}.role", OPENAI, "user or model, with parts")
    parts = _list(content.get("parts"), f"{field}.parts")
    if role == "model":
        return [_assistant(parts, f"{field}.parts", turn, pending)]
    results: list[dict[str, Any]] = []
    user: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        if isinstance(part, dict) and "functionResponse" in part:
            results.append(_tool_result(part["functionResponse"], f"{field}.parts[{index}]",
                                        pending))
        elif isinstance(part, dict) and len(part) == 1 and "text" in part:  # the usual part
            user.append({"type": "text", "text": str(part["text"])})
        else:
            user.append(_user_part(part, f"{field}.parts[{index}]"))
    return results + ([{"role": "user", "content": user}] if user else [])


def _assistant(parts: list[Any], field: str, turn: int,
               pending: list[tuple[str, str]]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        where = f"{field}[{index}]"
        if isinstance(part, dict) and set(part) == {"text"}:
            texts.append(str(part["text"]))
        elif isinstance(part, dict) and set(part) == {"functionCall"}:
            call = _object(part["functionCall"], f"{where}.functionCall")
            call_id = str(call.get("id") or f"call_{turn}_{index}")
            name = str(call.get("name", ""))
            pending.append((call_id, name))
            calls.append({"id": call_id, "type": "function", "function": {
                "name": name, "arguments": orjson.dumps(call.get("args") or {}).decode()}})
        else:
            raise untranslatable(where, OPENAI, "only text and functionCall parts")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_result(response: Any, field: str, pending: list[tuple[str, str]]) -> dict[str, Any]:
    response = _object(response, f"{field}.functionResponse")
    name, given = response.get("name"), response.get("id")
    match = next((entry for entry in pending
                  if (entry[0] == given if given else entry[1] == name)), None)
    if match is None:
        raise untranslatable(f"{field}.functionResponse", OPENAI,
                             "it answers no earlier functionCall")
    pending.remove(match)
    return {"role": "tool", "tool_call_id": match[0],
            "content": _tool_output(response.get("response", {}))}


def _tool_output(response: Any) -> str:
    """A function's `response` as a tool message's text: the text itself when it is only
    `{"output": text}` (the key Gemini's documentation gives a function's output), else its
    JSON."""
    if isinstance(response, dict) and set(response) == {"output"} and isinstance(
            response["output"], str):
        return response["output"]
    return orjson.dumps(response).decode()


def _user_part(part: Any, field: str) -> dict[str, Any]:
    if isinstance(part, dict) and set(part) == {"text"}:
        return {"type": "text", "text": str(part["text"])}
    if isinstance(part, dict) and set(part) == {"inlineData"}:
        data = _object(part["inlineData"], f"{field}.inlineData")
        mime = str(data.get("mimeType", ""))
        if not mime.startswith("image/"):
            raise untranslatable(f"{field}.inlineData", OPENAI, "only images")
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,"
                                                          f"{data.get('data', '')}"}}
    kind = next(iter(part), None) if isinstance(part, dict) else None
    raise untranslatable(field, OPENAI, f"part {kind!r}")


def _generation(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    config = _object(config, "generationConfig")
    chat: dict[str, Any] = {}
    for name, value in config.items():
        if name in _GENERATION:
            chat[_GENERATION[name]] = value
        elif name == "responseMimeType" and value in ("application/json", "text/plain"):
            if value == "application/json" and "responseJsonSchema" not in config:
                chat["response_format"] = {"type": "json_object"}
        elif name == "responseJsonSchema" and config.get("responseMimeType") == (
                "application/json"):
            chat["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "response", "schema": value}}
        else:
            raise untranslatable(f"generationConfig.{name}", OPENAI)
    return chat


def _tools(entry: Any, field: str) -> list[dict[str, Any]]:
    entry = _object(entry, field)
    for name in entry:
        if name != "functionDeclarations":
            raise untranslatable(f"{field}.{name}", OPENAI, "only functionDeclarations")
    tools = []
    for index, declaration in enumerate(_list(entry.get("functionDeclarations"),
                                              f"{field}.functionDeclarations")):
        where = f"{field}.functionDeclarations[{index}]"
        declaration = _object(declaration, where)
        function: dict[str, Any] = {"name": declaration.get("name")}
        if "description" in declaration:
            function["description"] = declaration["description"]
        schemas = [name for name in _JSON_SCHEMA if name in declaration]
        if schemas:
            function["parameters"] = declaration[schemas[0]]
        elif "parameters" in declaration:
            function["parameters"] = json_schema(declaration["parameters"])
        extra = set(declaration) - _DECLARATION
        if len(schemas) > 1 or (schemas and "parameters" in declaration):
            extra = {"parameters"}  # two schemas: which one the caller meant is not ours to pick
        if extra:
            raise untranslatable(f"{where}.{sorted(extra)[0]}", OPENAI)
        tools.append({"type": "function", "function": function})
    return tools


def json_schema(schema: Any) -> Any:
    """A Gemini `Schema` (OpenAPI's subset, types in capitals: `OBJECT`) as JSON Schema."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for name, value in schema.items():
        if name == "type" and isinstance(value, str):
            result[name] = value.lower()
        elif name == "properties" and isinstance(value, dict):
            result[name] = {key: json_schema(item) for key, item in value.items()}
        else:
            result[name] = json_schema(value) if name in ("items", "anyOf") else value
    return result


def _tool_choice(config: Any) -> Any:
    config = _object(config, "toolConfig")
    if set(config) - {"functionCallingConfig"}:
        raise untranslatable("toolConfig", OPENAI, "only functionCallingConfig")
    calling = _object(config.get("functionCallingConfig"), "toolConfig.functionCallingConfig")
    mode = str(calling.get("mode", "AUTO")).upper()
    names = calling.get("allowedFunctionNames")
    if mode == "ANY" and isinstance(names, list) and len(names) == 1:
        return {"type": "function", "function": {"name": names[0]}}
    if names or mode not in _MODES:
        raise untranslatable("toolConfig.functionCallingConfig", OPENAI,
                             "modes AUTO, NONE, ANY with at most one allowed function")
    return _MODES[mode]


def gemini_reply(chat: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The `GenerateContentResponse` for a chat completion: one candidate per choice."""
    candidates = []
    for choice in chat.get("choices") or ():
        message = choice.get("message") or {}
        parts: list[dict[str, Any]] = []
        if isinstance(message.get("content"), str) and message["content"]:
            parts.append({"text": message["content"]})
        parts += [function_call(call) for call in message.get("tool_calls") or ()]
        candidates.append({"content": {"role": "model", "parts": parts},
                           "finishReason": FINISH_REASONS.get(choice.get("finish_reason")
                                                              or "stop", "OTHER"),
                           "index": choice.get("index", 0)})
    return {"candidates": candidates, "usageMetadata": usage_metadata(chat.get("usage")),
            "modelVersion": model, "responseId": str(chat.get("id", ""))}


def function_call(call: dict[str, Any]) -> dict[str, Any]:
    """A chat tool call as a Gemini `functionCall` part (its arguments parsed)."""
    function = call.get("function") or {}
    try:
        args = orjson.loads(function.get("arguments") or "{}")
    except (orjson.JSONDecodeError, TypeError):
        args = {}
    return {"functionCall": {"id": call.get("id"), "name": function.get("name"),
                             "args": args if isinstance(args, dict) else {}}}


def usage_metadata(usage: Any) -> dict[str, int]:
    """Gemini's `usageMetadata` for OpenAI's `usage`. Both count cached prompt tokens in the
    prompt (Gemini names them `cachedContentTokenCount`); OpenAI counts reasoning in the
    completion, Gemini apart from it (`thoughtsTokenCount`)."""
    usage = usage if isinstance(usage, dict) else {}
    prompt, output = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
    thoughts = min(_detail(usage, "completion_tokens_details", "reasoning_tokens"), output)
    metadata = {"promptTokenCount": prompt, "candidatesTokenCount": output - thoughts,
                "totalTokenCount": _count(usage.get("total_tokens")) or prompt + output}
    if cached:
        metadata["cachedContentTokenCount"] = cached
    if thoughts:
        metadata["thoughtsTokenCount"] = thoughts
    return metadata


def _detail(usage: dict[str, Any], details: str, name: str) -> int:
    value = usage.get(details)
    return _count(value.get(name)) if isinstance(value, dict) else 0


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# OpenAI's error `type` -> the HTTP status Google's error body names for it.
_OPENAI_TYPES = {"invalid_request_error": 400, "authentication_error": 401,
                 "permission_error": 403, "not_found_error": 404, "rate_limit_error": 429}


def gemini_error(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI error body in Google's shape: `{"error": {"code", "message", "status"}}`."""
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    code = _OPENAI_TYPES.get(str(error.get("type")), 500)
    return {"error": {"code": code, "message": str(error.get("message", "")),
                      "status": GOOGLE_STATUSES.get(code, "INTERNAL")}}
