"""An OpenAI chat-completions call served by a Gemini upstream: the request translated to a
`GenerateContentRequest` (`gemini_request`), and the reply back to a chat completion
(`chat_reply`). The stream is translated event by event in `chat_from_gemini_stream.py`.

    body = gemini_request(chat_body)           # 400 naming any field with no equivalent
    completion = chat_reply(response, model="gemini-x", request_id="req-1")

The end user the gateway sets (`user`) has no place in Gemini's request and is not sent.
"""

from __future__ import annotations

from typing import Any

import orjson

from rolegate.translate.chat_to_messages import CONTEXT_LENGTH_EXCEEDED
from rolegate.translate.untranslatable import untranslatable

GEMINI = "Gemini"
# Chat fields with a generationConfig counterpart: copied under Gemini's name.
_GENERATION = {"temperature": "temperature", "top_p": "topP", "max_tokens": "maxOutputTokens",
               "max_completion_tokens": "maxOutputTokens", "n": "candidateCount",
               "seed": "seed", "presence_penalty": "presencePenalty",
               "frequency_penalty": "frequencyPenalty"}
# `stream` and `stream_options` decide the upstream method (`streamGenerateContent`), the
# gateway's `user` has no counterpart (see above).
_HANDLED = frozenset({"model", "messages", "stop", "tools", "tool_choice", "response_format",
                      "stream", "stream_options", "user", *_GENERATION})
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                  "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
                  "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
                  "IMAGE_SAFETY": "content_filter"}
_GOOGLE_TYPES = {"INVALID_ARGUMENT": "invalid_request_error", "FAILED_PRECONDITION":
                 "invalid_request_error", "UNAUTHENTICATED": "authentication_error",
                 "PERMISSION_DENIED": "permission_error", "NOT_FOUND": "not_found_error",
                 "RESOURCE_EXHAUSTED": "rate_limit_error"}


def gemini_request(body: dict[str, Any]) -> dict[str, Any]:
    """The `GenerateContentRequest` for chat `body` (without `model`: it goes in the URL)."""
    for name in body:
        if name not in _HANDLED:
            raise untranslatable(name, GEMINI)
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the responses
    for index, message in enumerate(_list(body.get("messages"), "messages")):
        _add(message, f"messages[{index}]", system, contents, names)
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    config = {gemini: body[name] for name, gemini in _GENERATION.items() if name in body}
    if "stop" in body:
        stop = body["stop"]
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    if "response_format" in body:
        config.update(_response_format(body["response_format"]))
    if config:
        request["generationConfig"] = config
    if "tools" in body:
        request["tools"] = [{"functionDeclarations": [
            _declaration(tool, f"tools[{i}]") for i, tool in enumerate(_list(body["tools"],
                                                                              "tools"))]}]
    if "tool_choice" in body:
        request["toolConfig"] = {"functionCallingConfig": _calling(body["tool_choice"])}
    return request


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise untranslatable(field, GEMINI, "expected a list")
    return value


def _add(message: Any, field: str, system: list[dict[str, Any]],
         contents: list[dict[str, Any]], names: dict[str, str]) -> None:
    role = message.get("role") if isinstance(message, dict) else None
    if role in ("system", "developer"):
        system += [{"text": text} for text in _texts(message.get("content"), f"{field}.content")]
    elif role == "user":
        _append(contents, "user", _user_parts(message.get("content"), f"{field}.content"))
    elif role == "assistant":
        _append(contents, "model", _model_parts(message, field, names))
    elif role == "tool":
        call_id = str(message.get("tool_call_id"))
        text = "".join(_texts(message.get("content"), f"{field}.content"))
        _append(contents, "user", [{"functionResponse": {
            "id": call_id, "name": names.get(call_id, ""), "response": _response(text)}}])
    else:
        raise untranslatable(f"{field}.role", GEMINI, f"role {role!r}")


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    """Gemini wants turns to alternate: a message of the same role joins the turn before."""
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"] += parts
    else:
        contents.append({"role": role, "parts": parts})


def _texts(content: Any, field: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    texts = []
    for index, part in enumerate(_list(content, field)):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise untranslatable(f"{field}[{index}]", GEMINI, "only text parts")
        texts.append(str(part.get("text", "")))
    return texts


def _user_parts(content: Any, field: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    parts = []
    for index, part in enumerate(_list(content, field)):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), f"{field}[{index}]"))
        else:
            raise untranslatable(f"{field}[{index}]", GEMINI, f"part type {kind!r}")
    return parts


def _image(image: Any, field: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise untranslatable(f"{field}.image_url", GEMINI, "only base64 data: URLs")
    mime, _, data = url[5:].partition(";base64,")
    return {"inlineData": {"mimeType": mime, "data": data}}


def _model_parts(message: dict[str, Any], field: str,
                 names: dict[str, str]) -> list[dict[str, Any]]:
    content = message.get("content")
    parts: list[dict[str, Any]] = [{"text": text} for text in _texts(content,
                                                                     f"{field}.content")] \
        if content is not None else []
    for index, call in enumerate(message.get("tool_calls") or ()):
        if not isinstance(call, dict):
            raise untranslatable(f"{field}.tool_calls[{index}]", GEMINI, "expected an object")
        function = call.get("function") or {}
        names[str(call.get("id"))] = str(function.get("name", ""))
        parts.append({"functionCall": {"id": call.get("id"), "name": function.get("name"),
                                       "args": _object_of(function.get("arguments"))}})
    return parts


def _object_of(arguments: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _response(text: str) -> dict[str, Any]:
    """A tool's output as Gemini's `response` object: a JSON object as it is, anything else
    under `output`."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"output": text}
    return value if isinstance(value, dict) else {"output": value}


def _response_format(value: Any) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema" and isinstance(value.get("json_schema"), dict):
        return {"responseMimeType": "application/json",
                "responseJsonSchema": value["json_schema"].get("schema", {})}
    raise untranslatable("response_format", GEMINI)


def _declaration(tool: Any, field: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise untranslatable(field, GEMINI, "only function tools")
    function = tool.get("function") or {}
    declaration = {"name": function.get("name")}
    if "description" in function:
        declaration["description"] = function["description"]
    if "parameters" in function:
        declaration["parametersJsonSchema"] = function["parameters"]
    if function.get("strict") is True:
        raise untranslatable(f"{field}.function.strict", GEMINI)
    return declaration


def _calling(choice: Any) -> dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
    raise untranslatable("tool_choice", GEMINI)


def chat_reply(response: dict[str, Any], *, model: str, request_id: str) -> dict[str, Any]:
    """The chat completion for a `GenerateContentResponse`: a choice per candidate."""
    choices = []
    for position, candidate in enumerate(response.get("candidates") or ()):
        text, calls = candidate_content(candidate, position)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        choices.append({"index": candidate.get("index", position), "message": message,
                        "finish_reason": finish_reason(candidate, bool(calls))})
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": 0,
            "model": model, "choices": choices,
            "usage": chat_usage(response.get("usageMetadata"))}


def candidate_content(candidate: dict[str, Any],
                      position: int) -> tuple[str, list[dict[str, Any]]]:
    """A candidate's text (thoughts left out) and its function calls as chat tool calls."""
    content = candidate.get("content") or {}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, part in enumerate(content.get("parts") or ()):
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict):
            calls.append({"index": len(calls), "id": call.get("id") or f"call_{position}_{index}",
                          "type": "function", "function": {
                              "name": call.get("name"),
                              "arguments": orjson.dumps(call.get("args") or {}).decode()}})
    return "".join(texts), calls


def finish_reason(candidate: dict[str, Any], has_calls: bool) -> str | None:
    reason = candidate.get("finishReason")
    if reason is None:
        return None
    if has_calls and reason == "STOP":
        return "tool_calls"
    return FINISH_REASONS.get(str(reason), "stop")


def chat_usage(metadata: Any) -> dict[str, Any]:
    """OpenAI's usage for Gemini's `usageMetadata`: thinking tokens are output tokens (and
    OpenAI's reasoning tokens), cached prompt tokens OpenAI's `cached_tokens`."""
    metadata = metadata if isinstance(metadata, dict) else {}
    prompt = _count(metadata.get("promptTokenCount"))
    thoughts = _count(metadata.get("thoughtsTokenCount"))
    output = _count(metadata.get("candidatesTokenCount")) + thoughts
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": output,
                             "total_tokens": _count(metadata.get("totalTokenCount"))
                             or prompt + output}
    cached = _count(metadata.get("cachedContentTokenCount"))
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_error(body: dict[str, Any], *, is_context_overflow: bool = False) -> dict[str, Any]:
    """A Google error body `{"error": {"code", "message", "status"}}` in OpenAI's shape; a
    prompt too long for the model (as its provider read it) with OpenAI's code."""
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    status = str(error.get("status", ""))
    return {"error": {"message": str(error.get("message", "")),
                      "type": _GOOGLE_TYPES.get(status, "api_error"), "param": None,
                      "code": CONTEXT_LENGTH_EXCEEDED if is_context_overflow
                      else status.lower() or None}}
