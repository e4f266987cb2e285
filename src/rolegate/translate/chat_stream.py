"""An Anthropic Messages stream, translated event by event into an OpenAI chat-completions
stream (`chat.completion.chunk` events, then `data: [DONE]`): text and tool-call deltas as they
come, the stop reason on the last choice chunk, and the usage on a chunk of its own when the
request asked for it (`stream_options.include_usage`).

    stream = ChatStream(model="gpt-name", request_id="req-1", is_usage_sent=True)
    for chunk in upstream_chunks:
        send(stream.feed(chunk))
    send(stream.finish())
"""

from __future__ import annotations

from typing import Any

import orjson

from rolegate.translate.chat_to_messages import FINISH_REASONS, chat_usage, openai_error
from rolegate.translate.events import EventTranslator


class ChatChunks:
    """The `chat.completion.chunk` events of one translated stream, whatever it is translated
    from, and its ending: the usage chunk when asked for, then `[DONE]`, once."""

    def __init__(self, *, model: str, request_id: str, is_usage_sent: bool) -> None:
        self._base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk",
                      "created": 0, "model": model}
        self._is_usage_sent = is_usage_sent
        self.is_finished = False

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return data({**self._base, "choices": [{"index": 0, "delta": delta,
                                                "finish_reason": finish}]})

    def tool_call(self, index: int, *, arguments: str, call_id: object = None,
                  name: object = None) -> bytes:
        """A tool call's first chunk (with its id and name) or one of its argument deltas."""
        function: dict[str, Any] = {"arguments": arguments}
        call: dict[str, Any] = {"index": index, "function": function}
        if name is not None:
            call.update(id=call_id, type="function")
            function["name"] = name
        return self.chunk({"tool_calls": [call]})

    def ending(self, usage: dict[str, Any]) -> bytes:
        if self.is_finished:
            return b""
        self.is_finished = True
        out = []
        if self._is_usage_sent:
            out.append(data({**self._base, "choices": [], "usage": usage}))
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)


class ChatStream(EventTranslator):
    """State across one translated stream: which content block is which tool call, usage."""

    def __init__(self, *, model: str, request_id: str, is_usage_sent: bool) -> None:
        super().__init__()
        self._out = ChatChunks(model=model, request_id=request_id, is_usage_sent=is_usage_sent)
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._usage: dict[str, Any] = {}

    def finish(self) -> bytes:
        """The usage chunk (when asked for) and `[DONE]`, once."""
        return self._out.ending(chat_usage(self._usage))

    def _event(self, event: bytes) -> list[bytes]:
        for line in event.splitlines():
            if line.startswith(b"data:"):
                try:
                    value = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    return []
                return self._translate(value) if isinstance(value, dict) else []
        return []

    def _translate(self, value: dict[str, Any]) -> list[bytes]:
        kind = value.get("type")
        if kind == "message_start":
            message = value.get("message") or {}
            self._count(message.get("usage"))
            return [self._out.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(value)
        if kind == "content_block_delta":
            return self._block_delta(value)
        if kind == "message_delta":
            self._count(value.get("usage"))
            reason = (value.get("delta") or {}).get("stop_reason")
            return [self._out.chunk({}, FINISH_REASONS.get(str(reason), "stop"))]
        if kind == "message_stop":
            return [self.finish()]
        if kind == "error":
            self._out.is_finished = True  # the stream ends on its error, as OpenAI's does
            return [data(openai_error(value))]
        return []  # ping, content_block_stop

    def _block_start(self, value: dict[str, Any]) -> list[bytes]:
        block = value.get("content_block") or {}
        if block.get("type") != "tool_use":
            return []
        index = self._tools.setdefault(int(value.get("index", 0)), len(self._tools))
        return [self._out.tool_call(index, arguments="", call_id=block.get("id"),
                                    name=block.get("name"))]

    def _block_delta(self, value: dict[str, Any]) -> list[bytes]:
        delta = value.get("delta") or {}
        if delta.get("type") == "text_delta":
            return [self._out.chunk({"content": delta.get("text", "")})]
        if delta.get("type") == "input_json_delta":
            index = self._tools.get(int(value.get("index", 0)), 0)
            return [self._out.tool_call(index, arguments=delta.get("partial_json", ""))]
        return []

    def _count(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({name: count for name, count in usage.items()
                                if isinstance(count, int)})



def data(value: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(value) + b"\n\n"
