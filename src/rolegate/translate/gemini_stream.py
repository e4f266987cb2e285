"""An OpenAI chat-completions stream, translated event by event into Gemini's
`streamGenerateContent?alt=sse` stream: one `data: <GenerateContentResponse>` event per text
delta as it comes.

A tool call's arguments arrive in fragments, while Gemini sends each `functionCall` whole: the
fragments are joined and the call sent with the finishing event. That event (finish reason,
tool calls, `usageMetadata`) waits for the usage chunk that follows the finish reason in
OpenAI's stream, or for its end.

    stream = GeminiStream(model="gemini-x")
    for chunk in upstream_chunks:
        send(stream.feed(chunk))
    send(stream.finish())
"""

from __future__ import annotations

from typing import Any

import orjson

from rolegate.translate.events import EventTranslator, event_data
from rolegate.translate.gemini_to_chat import (
    FINISH_REASONS, function_call, gemini_error, usage_metadata,
)


def sse(value: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(value) + b"\r\n\r\n"


class GeminiStream(EventTranslator):
    """State across one translated stream: the tool calls being joined, the finish, usage."""

    def __init__(self, *, model: str) -> None:
        super().__init__()
        self._model = model
        self._calls: dict[int, dict[str, Any]] = {}  # tool call index -> the call so far
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._is_finished = False

    def finish(self) -> bytes:
        """The finishing event (once), whether or not the upstream sent `[DONE]`."""
        if self._is_finished:
            return b""
        self._is_finished = True
        parts = [function_call(call) for _, call in sorted(self._calls.items())]
        return sse(self._response(parts, finish=FINISH_REASONS.get(self._finish or "stop",
                                                                   "OTHER"),
                                  usage=usage_metadata(self._usage)))

    def _event(self, event: bytes) -> list[bytes]:
        if event.startswith(b"data: [DONE]"):
            return [self.finish()]
        value = event_data(event)
        if value is None or self._is_finished:
            return []
        if isinstance(value.get("error"), dict):  # the upstream's stream ends on its error
            self._is_finished = True
            return [sse(gemini_error(value))]
        if isinstance(value.get("usage"), dict):
            self._usage = value["usage"]
        out = []
        for choice in value.get("choices") or ():
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                out.append(sse(self._response([{"text": delta["content"]}])))
            for call in delta.get("tool_calls") or ():
                self._join(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        if self._usage is not None and self._finish is not None:
            out.append(self.finish())
        return out

    def _join(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index", 0)
        function = fragment.get("function") or {}
        call = self._calls.setdefault(index if isinstance(index, int) else 0,
                                      {"id": None, "function": {"name": "", "arguments": ""}})
        if fragment.get("id"):
            call["id"] = fragment["id"]
        if function.get("name"):
            call["function"]["name"] += function["name"]
        if function.get("arguments"):
            call["function"]["arguments"] += function["arguments"]

    def _response(self, parts: list[dict[str, Any]], *, finish: str | None = None,
                  usage: dict[str, int] | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
        response: dict[str, Any] = {"candidates": [candidate], "modelVersion": self._model}
        if usage is not None:
            response["usageMetadata"] = usage
        return response
