"""`FaultyUpstream`: an OpenAI-compatible server on 127.0.0.1 that fails on cue.

Each request takes the next `Fault` from its plan (`upstream.plan(Fault.status(503), ...)`), or
the default (`Fault.ok()`) once the plan is used up. It records every request and notices when a
caller drops a stream it was writing.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.servers import LocalServer, Recorded

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: int = 3
    seconds: float = 0.0

    @classmethod
    def ok(cls) -> Fault:
        return cls("ok")

    @classmethod
    def error(cls, status: int, body: Any = None, headers: dict[str, str] | None = None,
              ) -> Fault:
        return cls("status", status=status, body=body, headers=headers or {})

    @classmethod
    def stall(cls, seconds: float = 30.0) -> Fault:
        """Wait before answering at all."""
        return cls("stall", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Drop the connection without a response."""
        return cls("reset")

    @classmethod
    def stream_then_stall(cls, chunks: int = 2) -> Fault:
        return cls("stream_then_stall", chunks=chunks)

    @classmethod
    def stream_then_cut(cls, chunks: int = 2) -> Fault:
        """Send some chunks, then drop the connection mid-stream."""
        return cls("stream_then_cut", chunks=chunks)

    @classmethod
    def endless_stream(cls, seconds: float = 0.02) -> Fault:
        """Stream a chunk every `seconds` until the caller goes away."""
        return cls("endless_stream", seconds=seconds)


def openai_error(code: str, message: str = "upstream says no",
                 kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class FaultyUpstream(LocalServer):
    is_cancelling_handlers = True

    def __init__(self, name: str = "upstream") -> None:
        super().__init__()
        self.name = name
        self.requests: list[Recorded] = []
        self.default = Fault.ok()
        self._plan: deque[Fault] = deque()
        self.stream_dropped = asyncio.Event()
        self.stall_dropped = asyncio.Event()  # a stalled request's caller went away
        self.open_streams = 0
        self.app.router.add_route("*", "/{tail:.*}", self._answer)

    def plan(self, *faults: Fault) -> FaultyUpstream:
        self._plan.extend(faults)
        return self

    @property
    def base(self) -> str:
        return f"{self.url}/v1"

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path, request.query_string,
                                      dict(request.headers), body))
        fault = self._plan.popleft() if self._plan else self.default
        payload = _json_or_empty(body)
        if fault.kind == "status":
            return web.json_response(fault.body if fault.body is not None else
                                     openai_error("upstream_failure", kind="server_error"),
                                     status=fault.status, headers=fault.headers)
        if fault.kind == "stall":
            try:
                await asyncio.sleep(fault.seconds)
            except asyncio.CancelledError:
                self.stall_dropped.set()
                raise
        if fault.kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if payload.get("stream") or fault.kind.endswith("stream") or "_then_" in fault.kind:
            return await self._stream(request, payload, fault)
        return web.json_response(self._completion(request, payload))

    def _completion(self, request: web.Request, payload: dict[str, Any]) -> dict[str, Any]:
        if request.path.endswith("/embeddings"):
            return {"object": "list", "model": payload.get("model"), "usage": USAGE, "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]}
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                "model": payload.get("model"), "usage": USAGE,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": f"from {self.name}"}}]}

    async def _stream(self, request: web.Request, payload: dict[str, Any],
                      fault: Fault) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        self.open_streams += 1
        try:
            if fault.kind == "endless_stream":
                await self._write_until_dropped(response, payload, fault.seconds)
                return response
            for index in range(fault.chunks):
                await response.write(_chunk(payload, f"part{index} "))
            if fault.kind == "stream_then_stall":
                await asyncio.sleep(3600)
            if fault.kind == "stream_then_cut":
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write(_chunk(payload, None, finish="stop"))
            if (payload.get("stream_options") or {}).get("include_usage"):
                await response.write(_event({"object": "chat.completion.chunk", "choices": [],
                                             "model": payload.get("model"), "usage": USAGE}))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        finally:
            self.open_streams -= 1

    async def _write_until_dropped(self, response: web.StreamResponse, payload: dict[str, Any],
                                   every: float) -> None:
        try:
            while True:
                await response.write(_chunk(payload, "tick "))
                await asyncio.sleep(every)
        except (ConnectionError, RuntimeError):
            self.stream_dropped.set()
        except asyncio.CancelledError:
            self.stream_dropped.set()
            raise


def _json_or_empty(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _chunk(payload: dict[str, Any], text: str | None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text is not None else {}
    value: dict[str, Any] = {"object": "chat.completion.chunk", "model": payload.get("model"),
                             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if (payload.get("stream_options") or {}).get("include_usage"):
        value["usage"] = None
    return _event(value)


def _event(value: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(value)}\n\n".encode()
