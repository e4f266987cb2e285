"""An OpenAI chat-completions stream, translated event by event into Anthropic's Messages stream
(`message_start`, `content_block_start|delta|stop`, `message_delta`, `message_stop`): nothing
is buffered beyond a partial SSE event.

    stream = MessagesStream(model="claude-x")
    for chunk in upstream_chunks:
        send(stream.feed(chunk))
    send(stream.finish())
"""

from __future__ import annotations

from typing import Any

import orjson

from rolegate.translate.chat_to_messages import anthropic_error
from rolegate.translate.events import EventTranslator
from rolegate.translate.messages_to_chat import STOP_REASONS, message_usage


def sse(name: str, value: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(value) + b"\n\n"


class MessagesStream(EventTranslator):
    """State across one translated stream: the open content block, the stop reason, usage."""

    def __init__(self, *, model: str) -> None:
        super().__init__()
        self._model = model
        self._is_started = False
        self._is_finished = False
        self._block: tuple[str, int] | None = None  # ("text", -1) or ("tool", call index)
        self._index = -1
        self._stop = "end_turn"
        self._usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}

    def finish(self) -> bytes:
        """The closing events (once), whether or not the upstream sent `[DONE]`."""
        if self._is_finished:
            return b""
        self._is_finished = True
        out = self._start() + self._close_block()
        out.append(sse("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": self._stop, "stop_sequence": None}, "usage": self._usage}))
        out.append(sse("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def _event(self, event: bytes) -> list[bytes]:
        for line in event.splitlines():
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                return [self.finish()]
            try:
                value = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return []
            return self._chunk(value) if isinstance(value, dict) else []
        return []

    def _chunk(self, value: dict[str, Any]) -> list[bytes]:
        if isinstance(value.get("error"), dict):  # the upstream's stream ends on its error
            self._is_finished = True
            return [sse("error", anthropic_error(value))]
        out = self._start(value.get("id"))
        if isinstance(value.get("usage"), dict):
            self._usage = message_usage(value["usage"])
        for choice in value.get("choices") or ():
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                out += self._open(("text", -1), {"type": "text", "text": ""})
                out.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self._stop = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        function = call.get("function") or {}
        key = ("tool", int(call.get("index", 0)))
        out: list[bytes] = []
        if self._block != key:
            out += self._open(key, {"type": "tool_use", "id": call.get("id"),
                                    "name": function.get("name"), "input": {}})
        if function.get("arguments"):
            out.append(self._delta({"type": "input_json_delta",
                                    "partial_json": function["arguments"]}))
        return out

    def _start(self, upstream_id: object = None) -> list[bytes]:
        if self._is_started:
            return []
        self._is_started = True
        return [sse("message_start", {"type": "message_start", "message": {
            "id": f"msg_{upstream_id or ''}", "type": "message", "role": "assistant",
            "model": self._model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}})]

    def _open(self, key: tuple[str, int], block: dict[str, Any]) -> list[bytes]:
        if self._block == key:
            return []
        out = self._close_block()
        self._block, self._index = key, self._index + 1
        out.append(sse("content_block_start", {"type": "content_block_start",
                                               "index": self._index, "content_block": block}))
        return out

    def _close_block(self) -> list[bytes]:
        if self._block is None:
            return []
        self._block = None
        return [sse("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return sse("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                           "delta": delta})
