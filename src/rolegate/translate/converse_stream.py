"""A Bedrock ConverseStream reply (AWS event-stream binary framing, RFC-less but specified by
AWS: prelude, headers, JSON payload, CRC32s), decoded with botocore's `EventStreamBuffer` as the
bytes come and translated event by event into an OpenAI chat-completions stream.

    stream = ConverseChatStream(model="amazon.nova-pro-v1:0", request_id="req-1",
                                is_usage_sent=True)
    for chunk in upstream_chunks:
        send(stream.feed(chunk))
    send(stream.finish())

Events: `messageStart`, `contentBlockStart` (a tool call's id and name), `contentBlockDelta`
(text, or a tool call's input as partial JSON), `contentBlockStop`, `messageStop` (the stop
reason), `metadata` (usage, after the stop). An exception message (`:message-type: exception`,
e.g. `throttlingException` mid-stream) or a frame that fails its checksum ends the stream with
one OpenAI error event, as OpenAI's own streams end.
"""

from __future__ import annotations

from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError

from rolegate.translate.chat_stream import ChatChunks, data
from rolegate.translate.chat_to_converse import FINISH_REASONS, usage


class ConverseChatStream:
    """State across one translated stream: the frame buffer, which block is which tool call."""

    def __init__(self, *, model: str, request_id: str, is_usage_sent: bool) -> None:
        self._buffer = EventStreamBuffer()
        self._out = ChatChunks(model=model, request_id=request_id, is_usage_sent=is_usage_sent)
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._usage: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> bytes:
        if self._out.is_finished:
            return b""
        self._buffer.add_data(chunk)
        out: list[bytes] = []
        try:
            for message in self._buffer:
                out += self._message(message)
                if self._out.is_finished:
                    break
        except ParserError as exc:  # a corrupt frame: nothing after it can be trusted
            out.append(self._error("api_error", f"The upstream stream was corrupt "
                                   f"({type(exc).__name__})."))
        return b"".join(out)

    def finish(self) -> bytes:
        """The usage chunk (when asked for) and `[DONE]`, once."""
        return self._out.ending(usage(self._usage))

    def _message(self, message: EventStreamMessage) -> list[bytes]:
        headers = message.headers
        try:
            payload = orjson.loads(message.payload) if message.payload else {}
        except orjson.JSONDecodeError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if headers.get(":message-type") != "event":
            kind = str(headers.get(":exception-type", headers.get(":error-code", "error")))
            return [self._error("rate_limit_error" if kind == "throttlingException"
                                else "api_error",
                                str(payload.get("message", headers.get(":error-message", kind))))]
        return self._event(str(headers.get(":event-type")), payload)

    def _event(self, kind: str, value: dict[str, Any]) -> list[bytes]:
        if kind == "messageStart":
            return [self._out.chunk({"role": "assistant", "content": ""})]
        if kind == "contentBlockStart":
            use = (value.get("start") or {}).get("toolUse")
            if not isinstance(use, dict):
                return []
            index = self._tools.setdefault(int(value.get("contentBlockIndex", 0)),
                                           len(self._tools))
            return [self._out.tool_call(index, arguments="", call_id=use.get("toolUseId"),
                                        name=use.get("name"))]
        if kind == "contentBlockDelta":
            return self._delta(value)
        if kind == "messageStop":
            return [self._out.chunk({}, FINISH_REASONS.get(str(value.get("stopReason")),
                                                           "stop"))]
        if kind == "metadata" and isinstance(value.get("usage"), dict):
            self._usage = value["usage"]
        return []  # contentBlockStop; reasoning and citations have no chat counterpart

    def _delta(self, value: dict[str, Any]) -> list[bytes]:
        delta = value.get("delta") or {}
        if isinstance(delta.get("text"), str):
            return [self._out.chunk({"content": delta["text"]})]
        use = delta.get("toolUse")
        if isinstance(use, dict):
            index = self._tools.get(int(value.get("contentBlockIndex", 0)), 0)
            return [self._out.tool_call(index, arguments=str(use.get("input", "")))]
        return []

    def _error(self, kind: str, message: str) -> bytes:
        self._out.is_finished = True
        return data({"error": {"message": message, "type": kind, "param": None,
                               "code": "upstream_error"}})
