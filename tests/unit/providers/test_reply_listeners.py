"""`UpstreamReply.end()`: the connection is released, then every end-of-reply listener runs, in
the order registered, once, however often the reply is ended."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rolegate.providers.base import UpstreamReply


async def _chunks() -> AsyncIterator[bytes]:
    yield b"data: x\n\n"


async def test_ending_releases_then_tells_each_listener_once_in_order():
    seen: list[str] = []

    async def release() -> None:
        seen.append("release")

    async def metering() -> None:
        seen.append("metering")

    reply = UpstreamReply(200, b"text/event-stream", _chunks(), close=release)
    reply.on_end(lambda: seen.append("metrics") and None)
    reply.on_end(lambda: seen.append("deployment") and None)
    reply.on_end(metering)

    await reply.end()
    await reply.end()

    assert seen == ["release", "metrics", "deployment", "metering"]


async def test_listeners_run_even_when_releasing_the_connection_fails():
    seen: list[str] = []

    async def release() -> None:
        raise ConnectionResetError

    reply = UpstreamReply(200, b"application/json", _chunks(), close=release)
    reply.on_end(lambda: seen.append("metrics") and None)

    with pytest.raises(ConnectionResetError):
        await reply.end()
    assert seen == ["metrics"]
