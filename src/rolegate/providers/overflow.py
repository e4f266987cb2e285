"""Whether an upstream's 400 says the prompt is longer than the model's context window, read
where each API's error is met: by the provider that speaks that API, on the upstream's own
body, before any translation. The dispatcher then tries the model's `context_window_fallbacks`
whichever API the caller speaks.

    reply = await classified(reply, is_anthropic_overflow)   # 400s only: read whole

OpenAI's error says so with a code. Anthropic's, Google's and Bedrock's have none for it: their
only signal is the message, whose wording is the documented one (Anthropic: `prompt is too
long: N tokens > M maximum`; Gemini: `The input token count (N) exceeds the maximum number of
tokens allowed (M).`; Bedrock: `Input is too long for requested model.`, or Anthropic's
wording for its models).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rolegate.providers.base import UpstreamReply
from rolegate.providers.translating import parsed, read_whole, replaced
from rolegate.translate.chat_to_messages import CONTEXT_LENGTH_EXCEEDED
OverflowTest = Callable[[dict[str, Any]], bool]  # the parsed error body -> an overflow?


async def classified(reply: UpstreamReply, is_overflow: OverflowTest) -> UpstreamReply:
    """`reply`, a 400 read whole and marked when `is_overflow` says so; others untouched."""
    if reply.status != 400:
        return reply
    body = await read_whole(reply)
    value = parsed(body)
    result = replaced(reply, body)
    result.is_context_overflow = value is not None and is_overflow(value)
    return result


def _error(body: dict[str, Any]) -> dict[str, Any]:
    error = body.get("error")
    return error if isinstance(error, dict) else {}


def is_openai_overflow(body: dict[str, Any]) -> bool:
    return _error(body).get("code") == CONTEXT_LENGTH_EXCEEDED


def is_anthropic_overflow(body: dict[str, Any]) -> bool:
    error = _error(body)
    return (error.get("type") == "invalid_request_error"
            and str(error.get("message", "")).startswith("prompt is too long"))


def is_google_overflow(body: dict[str, Any]) -> bool:
    error = _error(body)
    message = str(error.get("message", ""))
    return (error.get("status") == "INVALID_ARGUMENT"
            and "exceeds the maximum number of tokens" in message)


def is_bedrock_overflow(body: dict[str, Any]) -> bool:
    message = str(body.get("message", body.get("Message", ""))).lower()
    return "input is too long" in message or "prompt is too long" in message
