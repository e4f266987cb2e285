"""An OpenAI chat-completions call served by an Anthropic Messages upstream: the request
translated to a Messages request (`messages_request`), the Message back to a chat completion
(`chat_reply`), and an Anthropic error body to OpenAI's shape (`openai_error`).

    body = messages_request(chat_body)          # 400 naming any field with no equivalent
    completion = chat_reply(message, model="gpt-name")
"""

from __future__ import annotations

from typing import Any

import orjson

from rolegate.translate.chat_turns import append_turn, listed, text_of
from rolegate.translate.untranslatable import untranslatable

ANTHROPIC = "Anthropic Messages"
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"  # OpenAI's code for a prompt too long
# Anthropic requires `max_tokens`; a chat request that names none gets this many.
DEFAULT_MAX_TOKENS = 4096
_RENAMED = {"temperature": "temperature", "top_p": "top_p", "stream": "stream"}
_HANDLED = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "stop",
                      "tools", "tool_choice", "user", "stream_options", "n", *_RENAMED})
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                  "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop"}


def messages_request(body: dict[str, Any]) -> dict[str, Any]:
    """The Anthropic Messages body for chat-completions `body`."""
    for name in body:
        if name not in _HANDLED:
            raise untranslatable(name, ANTHROPIC)
    if body.get("n", 1) != 1:
        raise untranslatable("n", ANTHROPIC, "one choice only")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(listed(body.get("messages"), "messages", ANTHROPIC)):
        _add(message, f"messages[{index}]", system, messages)
    result: dict[str, Any] = {"model": body.get("model"), "messages": messages,
                              "max_tokens": body.get("max_completion_tokens",
                                                     body.get("max_tokens", DEFAULT_MAX_TOKENS))}
    if system:
        result["system"] = "\n".join(system)
    for name, new_name in _RENAMED.items():
        if name in body:
            result[new_name] = body[name]
    stop = body.get("stop")
    if stop is not None:
        result["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if "tools" in body:
        result["tools"] = [_tool(tool, f"tools[{i}]")
                           for i, tool in enumerate(listed(body["tools"], "tools", ANTHROPIC))]
    if "tool_choice" in body:
        result["tool_choice"] = _tool_choice(body["tool_choice"])
    if isinstance(body.get("user"), str):
        result["metadata"] = {"user_id": body["user"]}
    return result



def _add(message: Any, field: str, system: list[str], messages: list[dict[str, Any]]) -> None:
    role = message.get("role") if isinstance(message, dict) else None
    if role in ("system", "developer"):
        system.append(text_of(message.get("content"), f"{field}.content", ANTHROPIC))
    elif role == "user":
        append_turn(messages, "user", _user_blocks(message.get("content"), f"{field}.content"))
    elif role == "assistant":
        append_turn(messages, "assistant", _assistant_blocks(message, field))
    elif role == "tool":
        append_turn(messages, "user", [{
            "type": "tool_result", "tool_use_id": message.get("tool_call_id"),
            "content": text_of(message.get("content"), f"{field}.content", ANTHROPIC)}])
    else:
        raise untranslatable(f"{field}.role", ANTHROPIC)




def _user_blocks(content: Any, field: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for index, part in enumerate(listed(content, field, ANTHROPIC)):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            blocks.append(_image(str(part["image_url"].get("url", ""))))
        else:
            raise untranslatable(f"{field}[{index}]", ANTHROPIC, f"part type {kind!r}")
    return blocks


def _image(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[5:].partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: dict[str, Any], field: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if content:
        blocks.append({"type": "text", "text": text_of(content, f"{field}.content", ANTHROPIC)})
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise untranslatable(f"{field}.tool_calls[{index}]", ANTHROPIC)
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise untranslatable(f"{field}.tool_calls[{index}].function.arguments", ANTHROPIC,
                                 "not a JSON object") from None
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                       "input": arguments})
    return blocks


def _tool(tool: Any, field: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function":
        raise untranslatable(field, ANTHROPIC, "only function tools")
    result = {"name": function.get("name"),
              "input_schema": function.get("parameters") or {"type": "object"}}
    if "description" in function:
        result["description"] = function["description"]
    return result


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict):
        return {"type": "tool", "name": function.get("name")}
    raise untranslatable("tool_choice", ANTHROPIC)


def chat_reply(message: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The chat completion for an Anthropic Message."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"),
                "arguments": orjson.dumps(block.get("input", {})).decode()}})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        reply["tool_calls"] = calls
    return {"id": f"chatcmpl-{message.get('id', '')}", "object": "chat.completion",
            "created": 0, "model": model, "usage": chat_usage(message.get("usage")),
            "choices": [{"index": 0, "message": reply, "finish_reason": FINISH_REASONS.get(
                str(message.get("stop_reason")), "stop")}]}


def chat_usage(usage: Any) -> dict[str, Any]:
    """OpenAI's usage for Anthropic's: the prompt counts cache reads and writes too."""
    if not isinstance(usage, dict):
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    cached = _count(usage.get("cache_read_input_tokens"))
    prompt = (_count(usage.get("input_tokens")) + cached
              + _count(usage.get("cache_creation_input_tokens")))
    completion = _count(usage.get("output_tokens"))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_error(body: dict[str, Any], *, is_context_overflow: bool = False) -> dict[str, Any]:
    """An Anthropic error body `{"type": "error", "error": {"type", "message"}}` in OpenAI's
    shape; a prompt too long for the model (as its provider read it) with OpenAI's code."""
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    return {"error": {"message": error.get("message", ""), "type": error.get("type",
                      "api_error"), "param": None,
                      "code": CONTEXT_LENGTH_EXCEEDED if is_context_overflow else None}}


def anthropic_error(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI error body in Anthropic's shape."""
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    return {"type": "error", "error": {"type": error.get("type") or "api_error",
                                       "message": error.get("message", "")}}
