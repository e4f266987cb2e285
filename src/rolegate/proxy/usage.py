"""Reading token usage: the upstream's `usage` object (as the relay keeps it on the reply) to
`TokenUsage`. OpenAI's names (`prompt_tokens`, `completion_tokens`) and the Responses API's
(`input_tokens`, `output_tokens`) are both understood; anything unreadable counts as zero.

When a successful reply ends without the upstream's usage (a stream the caller abandoned or the
upstream cut; an upstream that reports none), `UsageMeter.read` charges an estimate instead: the
request's prompt and the text that was relayed to the caller (`relayed_text`), counted with the
`TokenEstimator`, and the record says it was estimated. A usage of all zeros is no usage: a
translated stream opens with zero counts before the upstream has reported any. Estimating runs
in a worker thread: the first one loads the tokenizer (about a second), and a long prompt takes
milliseconds to count, neither of which may stall the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from rolegate.accounting.estimate import TokenEstimator
from rolegate.accounting.records import TokenUsage

# Operations whose replies are priced in tokens: only these are estimated when usage is missing.
TOKEN_OPERATIONS = frozenset({"chat/completions", "completions", "responses", "embeddings",
                              "messages", "generateContent", "embedContent",
                              "batchEmbedContents"})


def token_usage(usage: Mapping[str, Any] | None) -> TokenUsage:
    if not isinstance(usage, Mapping):
        return TokenUsage()
    if "promptTokenCount" in usage or "totalTokenCount" in usage:  # Gemini's usageMetadata
        prompt = _count(usage, "promptTokenCount")
        # Thinking tokens are billed as output, and left out of `candidatesTokenCount`.
        completion = _count(usage, "candidatesTokenCount") + _count(usage, "thoughtsTokenCount")
    else:
        # Anthropic's `input_tokens` leaves out the prompt tokens read from or written to its
        # cache, which OpenAI's `prompt_tokens` includes: they are added, so both count the
        # whole prompt.
        prompt = (_count(usage, "prompt_tokens", "input_tokens")
                  + _count(usage, "cache_read_input_tokens")
                  + _count(usage, "cache_creation_input_tokens"))
        completion = _count(usage, "completion_tokens", "output_tokens")
    total = _count(usage, "total_tokens", "totalTokenCount") or prompt + completion
    return TokenUsage(prompt, completion, total)


def _count(usage: Mapping[str, Any], *names: str) -> int:
    for name in names:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return 0


class UsageMeter:
    """The tokens a finished reply is charged: the upstream's usage when it came, else an
    estimate of what reached the caller.

    >>> tokens, is_estimated = await UsageMeter(TokenEstimator()).read(
    ...     usage, "chat/completions", body, 200, relayed)
    """

    def __init__(self, estimator: TokenEstimator) -> None:
        self._estimator = estimator

    async def read(self, usage: Mapping[str, Any] | None, operation: str,
                   body: Mapping[str, Any], status: int,
                   relayed: Iterable[bytes] | None) -> tuple[TokenUsage, bool]:
        reported = token_usage(usage)
        # An all-zero usage is none: a translated stream opens with zero counts before the
        # upstream reports any (and a prompt is never zero tokens).
        if reported.total_tokens or status >= 400 or operation not in TOKEN_OPERATIONS:
            return reported, False
        return await asyncio.to_thread(self._estimate, body, relayed), True

    def _estimate(self, body: Mapping[str, Any], relayed: Iterable[bytes] | None) -> TokenUsage:
        text = relayed_text(relayed) if relayed is not None else ""
        return self._estimator.estimate(body, text)


def relayed_text(events: Iterable[bytes]) -> str:
    """The generated text in the SSE events relayed to a caller (chat and completion chunks,
    Responses API deltas), or in one JSON reply body read whole."""
    parts: list[str] = []
    for chunk in events:
        if chunk.lstrip().startswith(b"{"):
            _collect(_json(chunk), parts)
            continue
        for line in chunk.splitlines():
            if line.startswith(b"data:"):
                _collect(_json(line[5:]), parts)
    return "".join(parts)


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _collect(value: Any, parts: list[str]) -> None:
    if not isinstance(value, dict):
        return
    choices = value.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict):
                _choice_text(choice, parts)
        return
    delta = value.get("delta")
    if isinstance(delta, str) and str(value.get("type", "")).endswith(".delta"):
        parts.append(delta)  # Responses API: output text, function arguments, reasoning
        return
    if isinstance(delta, dict):  # Anthropic's content_block_delta: text, tool input JSON
        _content_text({"text": delta.get("text"), "arguments": delta.get("partial_json")},
                      parts)
        return
    candidates = value.get("candidates")
    if isinstance(candidates, list):  # Gemini: an event of a stream, or a reply read whole
        for candidate in candidates:
            if isinstance(candidate, dict):
                _content_text(candidate.get("content"), parts)
        return
    output = value.get("output")
    if isinstance(output, list):  # a Responses API object read whole
        for item in output:
            _content_text(item, parts)
    if value.get("type") == "message":  # an Anthropic Message read whole
        _content_text(value, parts)


def _choice_text(choice: dict[str, Any], parts: list[str]) -> None:
    text = choice.get("text")  # completions
    if isinstance(text, str):
        parts.append(text)
    for name in ("delta", "message"):  # chat: a stream's delta, or a reply's message
        message = choice.get(name)
        if isinstance(message, dict):
            _content_text(message, parts)


def _content_text(message: Any, parts: list[str]) -> None:
    if not isinstance(message, dict):
        return
    for name in ("content", "text", "refusal", "arguments", "parts"):  # `parts`: Gemini's
        value = message.get(name)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            for item in value:
                _content_text(item, parts)
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict):
                _content_text(call.get("function"), parts)
