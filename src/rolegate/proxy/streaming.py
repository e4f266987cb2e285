"""Relaying an upstream reply to the caller, and what happens when either side fails.

Once a stream has started, its status cannot change: a failure after the first byte becomes one
SSE event `data: {"error": …}` and the stream ends. When the caller disconnects, the relay is
cancelled and the upstream connection closed at once, so no upstream work runs for nobody.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson

from rolegate.asgi import Receive, Response, Send
from rolegate.errors import GatewayError, UpstreamError, error_body, internal_error
from rolegate.providers.base import UpstreamReply

log = logging.getLogger("rolegate.proxy")


async def buffered_response(reply: UpstreamReply) -> Response:
    """A non-streaming reply, read whole; upstream failures become gateway errors."""
    try:
        body = b"".join([chunk async for chunk in reply.chunks])
    finally:
        await reply.close()
    _raise_for_upstream_status(reply.status, body)
    return Response(status=reply.status, body=body, content_type=reply.content_type,
                    headers=reply.headers)


async def streaming_response(reply: UpstreamReply) -> Response:
    """A streaming reply: errors before the first byte keep their status, later ones are events."""
    if reply.status != 200:
        return await buffered_response(reply)
    return Response(status=200, content_type=reply.content_type, headers=reply.headers,
                    stream=_relay(reply))


async def _relay(reply: UpstreamReply) -> AsyncIterator[bytes]:
    try:
        async for chunk in reply.chunks:
            yield chunk
    except GatewayError as error:
        yield b"data: " + error_body(error) + b"\n\n"
    except Exception:  # the relay's final guard: the stream has started, so it must end well-formed
        log.exception("relaying an upstream stream failed")
        yield b"data: " + error_body(internal_error()) + b"\n\n"
    finally:
        await reply.close()


async def send_stream(response: Response, send: Send, receive: Receive) -> None:
    """Send a streaming response while watching for the caller to disconnect."""
    pump = asyncio.ensure_future(response.send(send))
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, watcher):
            task.cancel()
    if pump in done and not pump.cancelled():
        pump.result()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _raise_for_upstream_status(status: int, body: bytes) -> None:
    """OpenAI-shaped 4xx bodies pass through; the upstream refusing our credential, any 5xx
    and anything unreadable become 502."""
    if status < 400:
        return
    if status in (401, 403):
        log.error("the upstream refused the gateway's credential (status %d)", status)
        raise UpstreamError("The upstream refused the gateway's credential.",
                            code="upstream_auth_failed")
    if status >= 500 or not _is_openai_error(body):
        raise UpstreamError(f"The upstream failed with status {status}.")


def _is_openai_error(body: bytes) -> bool:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) and isinstance(value.get("error"), dict)
