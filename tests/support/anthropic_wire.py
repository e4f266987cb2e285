"""Anthropic's Messages API as an upstream speaks it, for `RecordingUpstream`: requests checked
as the API checks them (`x-api-key`, `anthropic-version`, `max_tokens`), replies and stream
events built with the `anthropic` SDK's own types, so what they hold is what the SDK parses.

A request with `tools` is answered by a call of its first tool (`TOOL_INPUT`), else by
`TEXT`. Usage: `INPUT_TOKENS` in, `OUTPUT_TOKENS` out, `CACHE_READ` read from the cache.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from anthropic.types import (
    InputJSONDelta, Message, RawContentBlockDeltaEvent, RawContentBlockStartEvent,
    RawContentBlockStopEvent, RawMessageDeltaEvent, RawMessageStartEvent, RawMessageStopEvent,
    TextBlock, TextDelta, ToolUseBlock, Usage,
)
from anthropic.types.message_delta_usage import MessageDeltaUsage
from anthropic.types.raw_message_delta_event import Delta

TEXT = "from anthropic upstream"
TOOL_INPUT = {"city": "Paris"}
INPUT_TOKENS, OUTPUT_TOKENS, CACHE_READ = 7, 4, 2


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}},
                             status=status)


def refusal(request: web.Request, payload: dict[str, Any]) -> web.Response | None:
    if not request.headers.get("x-api-key"):
        return _error(401, "authentication_error", "x-api-key header is required")
    if not request.headers.get("anthropic-version"):
        return _error(400, "invalid_request_error", "anthropic-version header is required")
    if not request.path.endswith("/count_tokens") and not isinstance(payload.get("max_tokens"),
                                                                      int):
        return _error(400, "invalid_request_error", "max_tokens: Field required")
    if "user" in payload:
        return _error(400, "invalid_request_error", "user: Extra inputs are not permitted")
    return None


def message(payload: dict[str, Any]) -> Message:
    tools = payload.get("tools") or []
    content: list[Any]
    if tools:
        content = [ToolUseBlock(type="tool_use", id="toolu_1", name=tools[0]["name"],
                                input=TOOL_INPUT)]
    else:
        content = [TextBlock(type="text", text=TEXT)]
    return Message(id="msg_upstream", type="message", role="assistant",
                   model=payload.get("model", ""), content=content,
                   stop_reason="tool_use" if tools else "end_turn", stop_sequence=None,
                   usage=Usage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS,
                               cache_read_input_tokens=CACHE_READ))


async def answer(request: web.Request, payload: dict[str, Any]) -> web.StreamResponse:
    refused = refusal(request, payload)
    if refused is not None:
        return refused
    if request.path.endswith("/count_tokens"):
        return web.json_response({"input_tokens": INPUT_TOKENS})
    if payload.get("stream"):
        return await _stream(request, message(payload))
    return web.json_response(message(payload).model_dump(mode="json", exclude_none=True))


def _events(whole: Message) -> list[Any]:
    start = whole.model_copy(update={"content": [], "stop_reason": None, "usage": Usage(
        input_tokens=INPUT_TOKENS, output_tokens=1, cache_read_input_tokens=CACHE_READ)})
    events: list[Any] = [RawMessageStartEvent(type="message_start", message=start)]
    block = whole.content[0]
    if isinstance(block, TextBlock):
        events += [RawContentBlockStartEvent(type="content_block_start", index=0,
                                             content_block=TextBlock(type="text", text="")),
                   *[RawContentBlockDeltaEvent(type="content_block_delta", index=0,
                                               delta=TextDelta(type="text_delta", text=piece))
                     for piece in ("from ", "anthropic ", "upstream")]]
    else:
        assert isinstance(block, ToolUseBlock)
        events += [RawContentBlockStartEvent(type="content_block_start", index=0,
                                             content_block=block.model_copy(
                                                 update={"input": {}})),
                   RawContentBlockDeltaEvent(type="content_block_delta", index=0,
                                             delta=InputJSONDelta(type="input_json_delta",
                                             partial_json=json.dumps(TOOL_INPUT)))]
    events += [RawContentBlockStopEvent(type="content_block_stop", index=0),
               RawMessageDeltaEvent(type="message_delta", delta=Delta(
                   stop_reason=whole.stop_reason, stop_sequence=None),
                   usage=MessageDeltaUsage(output_tokens=OUTPUT_TOKENS)),
               RawMessageStopEvent(type="message_stop")]
    return events


async def _stream(request: web.Request, whole: Message) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for event in _events(whole):
        data = json.dumps(event.model_dump(mode="json", exclude_none=True))
        await response.write(f"event: {event.type}\ndata: {data}\n\n".encode())
    await response.write_eof()
    return response
