"""A Gemini `streamGenerateContent?alt=sse` stream, translated event by event into an OpenAI
chat-completions stream (`chat.completion.chunk` events, then `data: [DONE]`): text and whole
function calls as they come, the finish reason on its candidate's chunk, and the usage (each
Gemini event carries the running `usageMetadata`; the last is kept) on a chunk of its own when
the request asked for it (`stream_options.include_usage`).

    stream = GeminiChatStream(model="gpt-name", request_id="req-1", is_usage_sent=True)
    for chunk in upstream_chunks:
        send(stream.feed(chunk))
    send(stream.finish())
"""

from __future__ import annotations

from typing import Any

from rolegate.translate.chat_to_gemini import (
    candidate_content, chat_usage, finish_reason, openai_error,
)
from rolegate.translate.chat_stream import data
from rolegate.translate.events import EventTranslator, event_data


class GeminiChatStream(EventTranslator):
    """State across one translated stream: whether the role was sent, calls so far, usage."""

    def __init__(self, *, model: str, request_id: str, is_usage_sent: bool) -> None:
        super().__init__()
        self._base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk",
                      "created": 0, "model": model}
        self._is_usage_sent = is_usage_sent
        self._usage: Any = None
        self._calls = 0  # tool calls sent so far: the next one's index
        self._is_started = False
        self._is_finished = False

    def finish(self) -> bytes:
        """The usage chunk (when asked for) and `[DONE]`, once."""
        if self._is_finished:
            return b""
        self._is_finished = True
        out = []
        if self._is_usage_sent:
            out.append(data({**self._base, "choices": [], "usage": chat_usage(self._usage)}))
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)

    def _event(self, event: bytes) -> list[bytes]:
        value = event_data(event)
        if value is None or self._is_finished:
            return []
        if isinstance(value.get("error"), dict):  # the upstream's stream ends on its error
            self._is_finished = True
            return [data(openai_error(value))]
        if isinstance(value.get("usageMetadata"), dict):
            self._usage = value["usageMetadata"]
        return [data({**self._base, "choices": [self._choice(candidate, position)]})
                for position, candidate in enumerate(value.get("candidates") or ())]

    def _choice(self, candidate: dict[str, Any], position: int) -> dict[str, Any]:
        text, calls = candidate_content(candidate, position)
        delta: dict[str, Any] = {"content": text} if text else {}
        if not self._is_started:
            self._is_started = True
            delta = {"role": "assistant", "content": text}
        if calls:
            for call in calls:
                call["index"] = self._calls
                self._calls += 1
            delta["tool_calls"] = calls
        return {"index": candidate.get("index", position), "delta": delta,
                "finish_reason": finish_reason(candidate, self._calls > 0)}
