"""Real HTTP servers on 127.0.0.1 for tests: an identity provider and a recording upstream.

They run in the test's event loop, so a gateway process started by the test talks to them over
real sockets while the test awaits.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from tests.support import anthropic_wire, bedrock_wire, gemini_wire
from tests.support.keys import KeyPair, jwks


class LocalServer:
    is_cancelling_handlers = False  # cancel a handler when its client goes away

    def __init__(self) -> None:
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> Self:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5,
                                     handler_cancellation=self.is_cancelling_handlers)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class LocalIdp(LocalServer):
    """Discovery and a JWKS whose keys a test can rotate; counts fetches; can go down (503).

    `issuer` is the IdP's own URL unless given (a path under it, as Keycloak and Okta use).
    """

    def __init__(self, *keys: KeyPair, issuer_path: str = "") -> None:
        super().__init__()
        self.keys = list(keys)
        self.issuer_path = issuer_path
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.is_down = False
        self.app.router.add_get("/.well-known/openid-configuration", self._discovery)
        self.app.router.add_get("/jwks", self._jwks)

    @property
    def issuer(self) -> str:
        return self.url + self.issuer_path

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def publish(self, *keys: KeyPair) -> None:
        """Replace the published key set (a rotation: keys not given are withdrawn)."""
        self.keys = list(keys)

    async def _discovery(self, request: web.Request) -> web.Response:
        self.discovery_fetches += 1
        if self.is_down:
            return web.Response(status=503)
        return web.json_response({"issuer": self.issuer, "jwks_uri": self.jwks_url,
                                  "token_endpoint": f"{self.url}/token"})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        if self.is_down:
            return web.Response(status=503)
        return web.Response(body=jwks(*self.keys), content_type="application/json")


class AttackerServer(LocalServer):
    """A server an attacker controls: answers every path with a key set of its own keys and
    counts the requests it gets, so a test can prove the gateway never called it."""

    def __init__(self, *keys: KeyPair) -> None:
        super().__init__()
        self.keys = list(keys)
        self.hits: list[str] = []
        self.app.router.add_route("*", "/{tail:.*}", self._answer)

    async def _answer(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(body=jwks(*self.keys), content_type="application/json")


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingUpstream(LocalServer):
    """An OpenAI-compatible upstream that records every request it receives; on
    `…/messages` and `…/messages/count_tokens` it speaks Anthropic's API (`anthropic_wire`), on
    `…/models/{model}:{method}` Google's Gemini API (`gemini_wire`), on `/model/…` Amazon
    Bedrock's (`bedrock_wire`).
    A chat request with `tools` is answered by a call of the first tool (streamed: its name,
    then its arguments in two pieces)."""

    requests: list[Recorded] = field(default_factory=list)
    stream_chunks: int = 3
    chunk_delay: float = 0.0
    pacer: asyncio.Queue[None] | None = None  # when set, each chunk after the first waits for it
    break_after: int | None = None  # when set, the connection drops after this many chunks
    is_ignoring_stream: bool = False  # when set, `"stream": true` gets one JSON reply too

    def __post_init__(self) -> None:
        LocalServer.__init__(self)
        self.app.router.add_route("*", "/{tail:.*}", self._answer)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path, request.query_string,
                                      dict(request.headers), body))
        if request.path.startswith("/model/"):
            return await bedrock_wire.answer(request, body)
        payload = json.loads(body) if body else {}
        if request.path.endswith(("/messages", "/messages/count_tokens")):
            return await anthropic_wire.answer(request, payload)
        if gemini_wire.method_of(request.path) is not None:
            return await gemini_wire.answer(request, payload)
        # Embeddings have no stream in OpenAI's API: `"stream": true` there is ignored.
        if (payload.get("stream") and not self.is_ignoring_stream
                and not request.path.endswith("/embeddings")):
            return await self._stream(request, payload)
        if request.path.endswith("/embeddings"):
            return web.json_response({"object": "list", "model": payload.get("model"), "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        if payload.get("tools"):
            return web.json_response(_tool_call_completion(payload))
        return web.json_response({
            "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1,
            "model": payload.get("model"), "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                                     "total_tokens": 5},
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "from upstream"}}]})

    async def _stream(self, request: web.Request, payload: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        if payload.get("tools"):
            for chunk in _tool_call_chunks(payload):
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        for index in range(self.stream_chunks):
            if index == self.break_after:
                assert request.transport is not None
                request.transport.close()  # the upstream dies mid-stream
                return response
            if index and self.pacer is not None:
                # Held until the test has seen the previous event: proves chunks are relayed
                # as they come, not buffered until the end.
                await asyncio.wait_for(self.pacer.get(), timeout=10)
            chunk = {"object": "chat.completion.chunk", "model": payload.get("model"),
                     "choices": [{"index": 0, "delta": {"content": f"part{index} "}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _tool_call_completion(payload: dict[str, Any]) -> dict[str, Any]:
    name = payload["tools"][0]["function"]["name"]
    return {"id": "chatcmpl-upstream", "object": "chat.completion", "created": 1,
            "model": payload.get("model"),
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None, "tool_calls": [{
                    "id": "call_1", "type": "function", "function": {
                        "name": name, "arguments": json.dumps(anthropic_wire.TOOL_INPUT)}}]}}]}


def _tool_call_chunks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """`_tool_call_completion` as OpenAI streams it: the call's id and name, then its
    arguments in pieces, then the finish reason."""
    name = payload["tools"][0]["function"]["name"]
    arguments = json.dumps(anthropic_wire.TOOL_INPUT)
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                              "function": {"name": name, "arguments": ""}}]},
        *({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
          for piece in (arguments[:5], arguments[5:]))]
    base = {"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1,
            "model": payload.get("model")}
    return [*({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
              for delta in deltas),
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
