"""An OpenAI chat-completions call served by Amazon Bedrock's Converse API: the request
translated to a Converse request (`converse_request`; the model goes in the URL, not the body),
the Converse reply back to a chat completion (`chat_reply`), and Bedrock's error body
(`{"message": …}`) to OpenAI's shape (`openai_error`).

    body = converse_request(chat_body)          # 400 naming any field with no equivalent
    completion = chat_reply(converse_reply, model="amazon.nova-pro-v1:0")

Converse has no image URLs (only bytes, base64 in its JSON), and no `tool_choice: none`.
"""

from __future__ import annotations

from typing import Any

import orjson

from rolegate.translate.chat_to_messages import CONTEXT_LENGTH_EXCEEDED, chat_usage
from rolegate.translate.chat_turns import append_turn, listed, text_of
from rolegate.translate.untranslatable import untranslatable

BEDROCK = "Amazon Bedrock Converse"
_INFERENCE = {"max_completion_tokens": "maxTokens", "max_tokens": "maxTokens",
              "temperature": "temperature", "top_p": "topP"}
_HANDLED = frozenset({"model", "messages", "stop", "tools", "tool_choice", "user",
                      "stream", "stream_options", "n", *_INFERENCE})
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                  "model_context_window_exceeded": "length", "tool_use": "tool_calls",
                  "guardrail_intervened": "content_filter", "content_filtered": "content_filter"}
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                  "image/gif": "gif", "image/webp": "webp"}


def converse_request(body: dict[str, Any]) -> dict[str, Any]:
    """The Converse body for chat-completions `body`."""
    for name in body:
        if name not in _HANDLED:
            raise untranslatable(name, BEDROCK)
    if body.get("n", 1) != 1:
        raise untranslatable("n", BEDROCK, "one choice only")
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(listed(body.get("messages"), "messages", BEDROCK)):
        _add(message, f"messages[{index}]", system, messages)
    result: dict[str, Any] = {"messages": messages}
    if system:
        result["system"] = system
    inference = {name: body[chat_name] for chat_name, name in _INFERENCE.items()
                 if chat_name in body}
    stop = body.get("stop")
    if stop is not None:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else stop
    if inference:
        result["inferenceConfig"] = inference
    if "tools" in body:
        result["toolConfig"] = _tool_config(body)
    if isinstance(body.get("user"), str):
        result["requestMetadata"] = {"user": body["user"]}
    return result



def _add(message: Any, field: str, system: list[dict[str, Any]],
         messages: list[dict[str, Any]]) -> None:
    role = message.get("role") if isinstance(message, dict) else None
    if role in ("system", "developer"):
        system.append({"text": text_of(message.get("content"), f"{field}.content", BEDROCK)})
    elif role == "user":
        append_turn(messages, "user", _user_blocks(message.get("content"), f"{field}.content"))
    elif role == "assistant":
        append_turn(messages, "assistant", _assistant_blocks(message, field))
    elif role == "tool":
        append_turn(messages, "user", [{"toolResult": {
            "toolUseId": message.get("tool_call_id"),
            "content": [{"text": text_of(message.get("content"), f"{field}.content",
                                         BEDROCK)}]}}])
    else:
        raise untranslatable(f"{field}.role", BEDROCK)




def _user_blocks(content: Any, field: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    blocks = []
    for index, part in enumerate(listed(content, field, BEDROCK)):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"text": str(part.get("text", ""))})
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            blocks.append(_image(str(part["image_url"].get("url", "")), f"{field}[{index}]"))
        else:
            raise untranslatable(f"{field}[{index}]", BEDROCK, f"part type {kind!r}")
    return blocks


def _image(url: str, field: str) -> dict[str, Any]:
    media_type, is_base64, data = url.removeprefix("data:").partition(";base64,")
    image_format = _IMAGE_FORMATS.get(media_type.lower())
    if not url.startswith("data:") or not is_base64 or image_format is None:
        raise untranslatable(f"{field}.image_url.url", BEDROCK, "images go as base64 data: "
                             "URLs of PNG, JPEG, GIF or WebP")
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _assistant_blocks(message: dict[str, Any], field: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if content:
        blocks.append({"text": text_of(content, f"{field}.content", BEDROCK)})
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise untranslatable(f"{field}.tool_calls[{index}]", BEDROCK)
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise untranslatable(f"{field}.tool_calls[{index}].function.arguments", BEDROCK,
                                 "not a JSON object") from None
        blocks.append({"toolUse": {"toolUseId": call.get("id"), "name": function.get("name"),
                                   "input": arguments}})
    return blocks


def _tool_config(body: dict[str, Any]) -> dict[str, Any]:
    tools = listed(body["tools"], "tools", BEDROCK)
    config: dict[str, Any] = {"tools": [_tool(tool, f"tools[{i}]")
                                        for i, tool in enumerate(tools)]}
    choice = body.get("tool_choice", "auto")
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config["toolChoice"] = {"tool": {"name": choice["function"].get("name")}}
    else:
        raise untranslatable("tool_choice", BEDROCK, "auto, required or a named function")
    return config


def _tool(tool: Any, field: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function":
        raise untranslatable(field, BEDROCK, "only function tools")
    for name in function:
        if name not in ("name", "description", "parameters"):
            raise untranslatable(f"{field}.function.{name}", BEDROCK)
    spec: dict[str, Any] = {"name": function.get("name"), "inputSchema": {
        "json": function.get("parameters") or {"type": "object"}}}
    if "description" in function:
        spec["description"] = function["description"]
    return {"toolSpec": spec}


def chat_reply(reply: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The chat completion for a Converse reply."""
    output = reply.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in (message or {}).get("content") or ():
        if "text" in block:
            texts.append(str(block["text"]))
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            calls.append({"id": use.get("toolUseId"), "type": "function", "function": {
                "name": use.get("name"), "arguments": orjson.dumps(use.get("input", {}))
                .decode()}})
    answer: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        answer["tool_calls"] = calls
    return {"id": "chatcmpl-bedrock", "object": "chat.completion", "created": 0,
            "model": model, "usage": usage(reply.get("usage")),
            "choices": [{"index": 0, "message": answer, "finish_reason": FINISH_REASONS.get(
                str(reply.get("stopReason")), "stop")}]}


def usage(value: Any) -> dict[str, Any]:
    """OpenAI's usage for Converse's `TokenUsage`: Bedrock counts cache reads and writes apart
    from `inputTokens`, as Anthropic does, so the prompt is their sum."""
    if not isinstance(value, dict):
        return chat_usage(None)
    return chat_usage({"input_tokens": value.get("inputTokens"),
                       "output_tokens": value.get("outputTokens"),
                       "cache_read_input_tokens": value.get("cacheReadInputTokens"),
                       "cache_creation_input_tokens": value.get("cacheWriteInputTokens")})


def openai_error(body: dict[str, Any], *, status: int,
                 is_context_overflow: bool = False) -> dict[str, Any]:
    """Bedrock's error body (`{"message": …}`, `Message` in some services) in OpenAI's shape;
    the kind follows the status, which the caller keeps; a prompt too long for the model (as
    its provider read it) with OpenAI's code."""
    message = body.get("message", body.get("Message", ""))
    kind = "rate_limit_error" if status == 429 else ("invalid_request_error" if status < 500
                                                     else "api_error")
    return {"error": {"message": str(message), "type": kind, "param": None,
                      "code": CONTEXT_LENGTH_EXCEEDED if is_context_overflow
                      else "upstream_error"}}
