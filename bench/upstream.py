"""A minimal mock upstream (OpenAI-compatible, plus Anthropic's and Gemini's generation
routes) on raw asyncio protocols (uvloop when present).

It must never be the bottleneck of a benchmark, so it does as little as possible: canned
responses, HTTP/1.1 keep-alive, Content-Length bodies only. Run it with
`python -m bench.upstream --port P`; it prints `READY <port>` once listening.

Besides the OpenAI routes it answers Anthropic's `POST /v1/messages` (JSON or SSE) and
Gemini's `POST /v1beta/models/<model>:generateContent` as those vendors do, with the same text
and token counts, so translated and passed-through calls can be compared. It also serves
`GET /jwks/<name>.json` from `--jwks-dir`, so a benchmark can point a gateway's JWKS URL at key
sets it generated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
CREATED = int(time.time())


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _chat_completion() -> bytes:
    return _dumps({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": CREATED, "model": "echo",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hello from the mock."}}],
        "usage": USAGE,
    })


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    chunk = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED,
             "model": "echo", "choices": choices}
    if usage:
        chunk["usage"] = usage
    return chunk


def _sse_events() -> list[bytes]:
    """Five content chunks, a usage chunk and [DONE], each event as its own HTTP chunk."""
    words = ["Hello", " from", " the", " mock", "."]
    events = [_chunk({"role": "assistant", "content": words[0]})]
    events += [_chunk({"content": w}) for w in words[1:-1]]
    events.append(_chunk({"content": words[-1]}, finish="stop"))
    events.append(_chunk({}, usage=USAGE))
    return [b"data: " + _dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def _message() -> bytes:
    return _dumps({
        "id": "msg_mock", "type": "message", "role": "assistant", "model": "echo",
        "content": [{"type": "text", "text": "Hello from the mock."}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5}})


def _message_events() -> list[bytes]:
    """Anthropic's stream of the same answer: one text block in five deltas."""
    words = ["Hello", " from", " the", " mock", "."]
    events = [("message_start", {"type": "message_start", "message": {
        "id": "msg_mock", "type": "message", "role": "assistant", "model": "echo",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": w}})
               for w in words]
    events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {
                   "stop_reason": "end_turn", "stop_sequence": None},
                   "usage": {"output_tokens": 5}}),
               ("message_stop", {"type": "message_stop"})]
    return [b"event: %s\ndata: %s\n\n" % (name.encode(), _dumps(e)) for name, e in events]


def _generate_content() -> bytes:
    return _dumps({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello from the mock."}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                          "totalTokenCount": 15},
        "modelVersion": "echo", "responseId": "mock"})


def _chunked_sse(payloads: list[bytes]) -> bytes:
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    return head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in payloads) + b"0\r\n\r\n"


def _response(status: str, body: bytes, ctype: bytes = b"application/json") -> bytes:
    head = b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
    return head % (status.encode(), ctype, len(body)) + body


def _not_found() -> bytes:
    return _response("404 Not Found", _dumps(
        {"error": {"message": "not found", "type": "invalid_request_error", "code": 404}}))


CHAT = _response("200 OK", _chat_completion())
STREAM = _chunked_sse(_sse_events())
MESSAGE = _response("200 OK", _message())
MESSAGE_STREAM = _chunked_sse(_message_events())
GENERATED = _response("200 OK", _generate_content())
EMBEDDINGS = _response("200 OK", _dumps({
    "object": "list", "model": "embed",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3, 0.4]}],
    "usage": {"prompt_tokens": 3, "total_tokens": 3}}))
MODELS = _response("200 OK", _dumps({"object": "list", "data": [
    {"id": m, "object": "model", "created": CREATED, "owned_by": "mock"}
    for m in ("echo", "embed")]}))
NOT_FOUND = _not_found()
BAD_REQUEST = _response("400 Bad Request", b'{"error":{"message":"bad request"}}')
# The OTLP/HTTP trace sink of `jwt-rs256-otel`: an empty ExportTraceServiceResponse.
TRACES_ACCEPTED = _response("200 OK", b"", b"application/x-protobuf")
ROUTES = {
    (b"GET", b"/v1/models"): MODELS, (b"GET", b"/models"): MODELS,
    (b"POST", b"/v1/traces"): TRACES_ACCEPTED,
    (b"POST", b"/v1/embeddings"): EMBEDDINGS, (b"POST", b"/embeddings"): EMBEDDINGS,
}
CHAT_PATHS = (b"/v1/chat/completions", b"/chat/completions")
MESSAGES_PATH = b"/v1/messages"
GEMINI_MODELS, GENERATE = b"/v1beta/models/", b":generateContent"


def respond(method: bytes, path: bytes, body: bytes, jwks_dir: str | None) -> bytes:
    path = path.split(b"?", 1)[0]
    if method == b"POST" and path in CHAT_PATHS:
        return STREAM if STREAM_RE.search(body) else CHAT
    if method == b"POST" and path == MESSAGES_PATH:
        return MESSAGE_STREAM if STREAM_RE.search(body) else MESSAGE
    if method == b"POST" and path.startswith(GEMINI_MODELS) and path.endswith(GENERATE):
        return GENERATED
    if method == b"GET" and path.startswith(b"/jwks/") and jwks_dir:
        return _jwks(jwks_dir, path[len(b"/jwks/"):].decode("latin-1"))
    return ROUTES.get((method, path), NOT_FOUND)


def _jwks(jwks_dir: str, name: str) -> bytes:
    if "/" in name or name.startswith(".") or not name.endswith(".json"):
        return NOT_FOUND
    try:
        with open(os.path.join(jwks_dir, name), "rb") as f:
            return _response("200 OK", f.read())
    except OSError:
        return NOT_FOUND


def _parse_head(head: bytes) -> tuple[bytes, bytes, int, bool]:
    """Request line and the two headers we care about: (method, path, length, keep_alive)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise ValueError("bad request line")
    length, keep_alive = 0, parts[2] != b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection":
            token = value.strip().lower()
            keep_alive = token == b"keep-alive" or (keep_alive and token != b"close")
        elif name == b"transfer-encoding":
            raise ValueError("chunked request bodies are not supported")
    if not 0 <= length <= MAX_BODY_BYTES:
        raise ValueError("bad content-length")
    return parts[0], parts[1], length, keep_alive


class MockProtocol(asyncio.Protocol):
    """One connection: buffer bytes, answer every complete request, keep the rest."""

    def __init__(self, jwks_dir: str | None) -> None:
        self.jwks_dir = jwks_dir
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out, close = self._drain()
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()

    def _drain(self) -> tuple[list[bytes], bool]:
        out: list[bytes] = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return out, len(self.buf) > MAX_HEADER_BYTES
            try:
                method, path, length, keep_alive = _parse_head(bytes(self.buf[:end]))
            except ValueError:
                return [*out, BAD_REQUEST], True
            total = end + 4 + length
            if len(self.buf) < total:
                return out, False
            body = bytes(self.buf[end + 4:total])
            del self.buf[:total]
            out.append(respond(method, path, body, self.jwks_dir))
            if not keep_alive:
                return out, True


async def serve(host: str, port: int, jwks_dir: str | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: MockProtocol(jwks_dir), host, port,
                                      backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument("--jwks-dir", default=None, help="serve GET /jwks/<name>.json from here")
    args = parser.parse_args(argv)
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(serve(args.host, args.port, args.jwks_dir))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
