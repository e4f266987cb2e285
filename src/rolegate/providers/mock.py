"""The built-in `mock` model: deterministic completions, embeddings and SSE streams with usage,
answered in-process, so everything runs without a cloud account. It speaks OpenAI's API (and
counts tokens for Anthropic's and Gemini's); the registry wraps it so that the Anthropic and
Gemini surfaces are served by translation, as on any OpenAI-speaking upstream.

The reply echoes the last user message; token counts are word counts, so tests can predict them.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from rolegate.config.model import DeploymentConfig
from rolegate.errors import InvalidRequest
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.translate.chat_stream import data

CREATED = 1_700_000_000


class MockProvider:
    def __init__(self, config: DeploymentConfig) -> None:
        self.config = config

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        if call.operation == "embeddings":
            return _json_reply(self._embeddings(call.body))
        if call.operation == "messages/count_tokens":  # as its replies count: in words
            return _json_reply({"input_tokens": len(_prompt_text(call.body).split())})
        if call.operation == "countTokens":  # Gemini's: every text part of the contents
            return _json_reply({"totalTokens": len(_parts_text(call.body).split())})
        if call.operation not in ("chat/completions", "completions", "responses"):
            raise InvalidRequest(f"The mock model does not serve {call.operation}.",
                                 code="unsupported_operation")
        prompt = _prompt_text(call.body)
        text = f"echo: {prompt}" if prompt else "echo"
        usage = _usage(prompt, text)
        if call.is_stream and call.operation == "responses":
            return UpstreamReply(200, b"text/event-stream", _responses_sse(call, text, usage))
        if call.is_stream:
            include_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
            return UpstreamReply(200, b"text/event-stream",
                                 _sse(call, text, usage if include_usage else None))
        return _json_reply(self._completion(call, text, usage))

    def _completion(self, call: UpstreamCall, text: str, usage: dict[str, int]) -> dict[str, Any]:
        name = call.body.get("model")
        if call.operation == "completions":
            return {"id": f"cmpl-{call.request_id}", "object": "text_completion",
                    "created": CREATED, "model": name, "usage": usage,
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]}
        if call.operation == "responses":
            return _response_completed(call, text, usage)
        return {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion",
                "created": CREATED, "model": name, "usage": usage,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}]}

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [{"object": "embedding", "index": i, "embedding": _vector(str(item))}
                for i, item in enumerate(items)]
        tokens = sum(len(str(item).split()) for item in items)
        return {"object": "list", "data": data, "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _response_begun(call: UpstreamCall) -> dict[str, Any]:
    """A Responses API `response` as its stream's first event shows it."""
    return {"id": f"resp_{call.request_id}", "object": "response", "created_at": CREATED,
            "model": call.body.get("model"), "status": "in_progress", "output": []}


def _response_completed(call: UpstreamCall, text: str, usage: dict[str, int]) -> dict[str, Any]:
    return {**_response_begun(call), "status": "completed",
            "output": [{"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": text}]}],
            "usage": {"input_tokens": usage["prompt_tokens"],
                      "output_tokens": usage["completion_tokens"],
                      "total_tokens": usage["total_tokens"]}}


def _prompt_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):  # parts: their text
                    return " ".join(str(part.get("text", "")) for part in content
                                    if isinstance(part, dict) and part.get("type") == "text")
                return content if isinstance(content, str) else ""
    for key in ("prompt", "input"):
        if isinstance(body.get(key), str):
            return str(body[key])
    return ""


def _parts_text(value: Any) -> str:
    """The text parts anywhere in a Gemini request, joined by spaces."""
    if isinstance(value, dict):
        text = value.get("text")
        return text if isinstance(text, str) else " ".join(map(_parts_text, value.values()))
    if isinstance(value, list):
        return " ".join(map(_parts_text, value))
    return ""


def _usage(prompt: str, text: str) -> dict[str, int]:
    prompt_tokens, completion_tokens = len(prompt.split()), len(text.split())
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(byte / 255, 4) for byte in digest[:8]]


def _json_reply(value: dict[str, Any]) -> UpstreamReply:
    body = orjson.dumps(value)

    async def chunks() -> AsyncIterator[bytes]:
        yield body
    return UpstreamReply(200, b"application/json", chunks())


async def _sse(call: UpstreamCall, text: str, usage: dict[str, int] | None) -> AsyncIterator[bytes]:
    base = {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion.chunk",
            "created": CREATED, "model": call.body.get("model")}
    words = text.split(" ")
    for index, word in enumerate(words):
        piece = word if index == 0 else f" {word}"
        delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
        yield data({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    yield data({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage is not None:
        yield data({**base, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


async def _responses_sse(call: UpstreamCall, text: str,
                         usage: dict[str, int]) -> AsyncIterator[bytes]:
    """The Responses API's stream: named events, the usage in `response.completed`."""
    yield _named("response.created", {"type": "response.created",
                                      "response": _response_begun(call)})
    for index, word in enumerate(text.split(" ")):
        yield _named("response.output_text.delta", {
            "type": "response.output_text.delta", "item_id": f"msg_{call.request_id}",
            "output_index": 0, "content_index": 0, "delta": word if index == 0 else f" {word}"})
    yield _named("response.completed", {"type": "response.completed",
                                        "response": _response_completed(call, text, usage)})


def _named(name: str, value: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(value) + b"\n\n"
