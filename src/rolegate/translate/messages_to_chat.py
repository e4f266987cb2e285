"""An Anthropic Messages call served by an OpenAI chat-completions upstream: the request
translated to a chat request (`chat_request`), and the chat reply back to a Message
(`message_reply`). The stream is translated event by event in `messages_stream.py`.

    chat = chat_request(messages_body)          # 400 naming any field with no equivalent
    message = message_reply(chat_completion, model="claude-x")
"""

from __future__ import annotations

from typing import Any

import orjson

from rolegate.translate.untranslatable import untranslatable

OPENAI = "OpenAI chat completions"
# Anthropic's request fields with a chat counterpart: copied under the chat name.
_RENAMED = {"max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p",
            "stop_sequences": "stop", "stream": "stream"}
_HANDLED = frozenset({"model", "messages", "system", "tools", "tool_choice", "metadata",
                      *_RENAMED})
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body for Anthropic Messages `body`."""
    for name in body:
        if name not in _HANDLED:
            raise untranslatable(name, OPENAI)
    chat: dict[str, Any] = {"model": body.get("model")}
    messages: list[dict[str, Any]] = []
    if "system" in body:
        messages.append({"role": "system", "content": _text_of(body["system"], "system")})
    for index, message in enumerate(_list(body.get("messages"), "messages")):
        messages += _chat_messages(message, f"messages[{index}]")
    chat["messages"] = messages
    for name, chat_name in _RENAMED.items():
        if name in body:
            chat[chat_name] = body[name]
    if "tools" in body:
        chat["tools"] = [_chat_tool(tool, f"tools[{i}]")
                         for i, tool in enumerate(_list(body["tools"], "tools"))]
    if "tool_choice" in body:
        chat["tool_choice"] = _chat_tool_choice(body["tool_choice"])
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        for name in metadata:
            if name != "user_id":
                raise untranslatable(f"metadata.{name}", OPENAI)
        if isinstance(metadata.get("user_id"), str):
            chat["user"] = metadata["user_id"]
    if body.get("stream") is True:
        chat["stream_options"] = {"include_usage": True}  # the usage Anthropic's stream ends with
    return chat


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise untranslatable(field, OPENAI, "expected a list")
    return value


def _text_of(value: Any, field: str) -> str:
    """A string, or text blocks joined (cache_control is a caching hint: no text is lost)."""
    if isinstance(value, str):
        return value
    parts = []
    for index, block in enumerate(_list(value, field)):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise untranslatable(f"{field}[{index}]", OPENAI, "only text blocks are translated")
        parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def _chat_messages(message: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise untranslatable(f"{field}.role", OPENAI, "user or assistant")
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = _list(content, f"{field}.content")
    if role == "assistant":
        return [_assistant_message(blocks, f"{field}.content")]
    results = [_tool_message(block, f"{field}.content[{i}]") for i, block in enumerate(blocks)
               if isinstance(block, dict) and block.get("type") == "tool_result"]
    parts = [_user_part(block, f"{field}.content[{i}]") for i, block in enumerate(blocks)
             if not (isinstance(block, dict) and block.get("type") == "tool_result")]
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _assistant_message(blocks: list[Any], field: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"), "arguments": orjson.dumps(block.get("input", {}))
                .decode()}})
        else:
            raise untranslatable(f"{field}[{index}]", OPENAI, f"block type {kind!r}")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_message(block: dict[str, Any], field: str) -> dict[str, Any]:
    if block.get("is_error") is True:
        raise untranslatable(f"{field}.is_error", OPENAI)
    content = block.get("content", "")
    return {"role": "tool", "tool_call_id": block.get("tool_use_id"),
            "content": _text_of(content, f"{field}.content")}


def _user_part(block: Any, field: str) -> dict[str, Any]:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image" and isinstance(block.get("source"), dict):
        source = block["source"]
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
            return {"type": "image_url", "image_url": {"url": url}}
        if source.get("type") == "url":
            return {"type": "image_url", "image_url": {"url": source.get("url")}}
    raise untranslatable(field, OPENAI, f"block type {kind!r}")


def _chat_tool(tool: Any, field: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
        raise untranslatable(field, OPENAI, "only custom tools with an input_schema")
    function = {"name": tool.get("name"), "parameters": tool.get("input_schema", {})}
    if "description" in tool:
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: Any) -> Any:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True:
        raise untranslatable("tool_choice.disable_parallel_tool_use", OPENAI)
    if kind in ("auto", "none"):
        return kind
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise untranslatable("tool_choice", OPENAI)


def message_reply(chat: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The Anthropic Message for a chat completion (its first choice)."""
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": _arguments(function.get("arguments"))})
    return {"id": f"msg_{chat.get('id', '')}", "type": "message", "role": "assistant",
            "model": model, "content": content,
            "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
            "stop_sequence": None, "usage": message_usage(chat.get("usage"))}


def _arguments(arguments: Any) -> Any:
    try:
        value = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def message_usage(usage: Any) -> dict[str, int]:
    """Anthropic's usage for OpenAI's: cached prompt tokens become `cache_read_input_tokens`
    (Anthropic's `input_tokens` excludes them), so the sum is the same prompt."""
    if not isinstance(usage, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    prompt = _count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    result = {"input_tokens": prompt - cached, "output_tokens":
              _count(usage.get("completion_tokens"))}
    if cached:
        result["cache_read_input_tokens"] = cached
    return result


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
