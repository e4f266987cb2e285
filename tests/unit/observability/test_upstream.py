"""`MeasuredProvider`: each upstream attempt is counted once, with the outcome its reply had."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from rolegate.config.model import DeploymentConfig
from rolegate.errors import UpstreamError, UpstreamTimeout
from rolegate.observability.metrics import GatewayMetrics
from rolegate.observability.upstream import MeasuredProvider
from rolegate.providers.base import UpstreamCall, UpstreamReply
from tests.support.scrape import Scrape

CALL = UpstreamCall("chat/completions", {}, b"{}", is_stream=True, request_id="r-1")


class ScriptedProvider:
    """Answers `status` with `chunks`; an exception among them is raised when it is reached."""

    def __init__(self, status: int = 200, chunks: tuple[bytes | BaseException, ...] = (b"a",),
                 failure: BaseException | None = None) -> None:
        self.config = DeploymentConfig(provider="mock")
        self._status = status
        self._chunks = chunks
        self._failure = failure
        self.closed = 0

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        if self._failure is not None:
            raise self._failure

        async def close() -> None:
            self.closed += 1
        return UpstreamReply(self._status, b"text/event-stream", self._stream(), close=close)

    async def _stream(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk


def measured(provider: ScriptedProvider) -> tuple[MeasuredProvider, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry, models={"m": ["d"]})
    return MeasuredProvider(provider, metrics.deployment("m", "d")), registry


def attempts(registry: CollectorRegistry) -> dict[str, float]:
    scrape = Scrape(generate_latest(registry).decode())
    return {sample.labels["outcome"]: sample.value for sample in scrape.samples
            if sample.name == "rolegate_upstream_attempts_total" and sample.value}


async def read_all(reply: UpstreamReply) -> None:
    try:
        async for _ in reply.chunks:
            pass
    finally:
        await reply.end()


@pytest.mark.parametrize(("status", "outcome"), [
    (200, "success"), (400, "client_error"), (429, "rate_limited"), (503, "server_error"),
])
async def test_an_attempt_is_counted_by_its_status_once_its_reply_has_ended(status, outcome):
    provider = ScriptedProvider(status)
    wrapped, registry = measured(provider)

    reply = await wrapped.open(CALL)
    assert attempts(registry) == {}
    await read_all(reply)
    await reply.end()

    assert attempts(registry) == {outcome: 1}
    assert provider.closed == 1  # ending twice releases the connection once


@pytest.mark.parametrize(("failure", "outcome"), [
    (UpstreamTimeout("slow"), "timeout"), (UpstreamError("down"), "error"),
    (asyncio.CancelledError(), "cancelled"),
])
async def test_an_attempt_that_fails_to_open_is_counted_by_its_failure(failure, outcome):
    wrapped, registry = measured(ScriptedProvider(failure=failure))

    with pytest.raises(type(failure)):
        await wrapped.open(CALL)

    assert attempts(registry) == {outcome: 1}


async def test_a_reply_that_fails_while_being_read_counts_as_that_failure():
    wrapped, registry = measured(ScriptedProvider(chunks=(b"a", UpstreamTimeout("idle"))))

    reply = await wrapped.open(CALL)
    with pytest.raises(UpstreamTimeout):
        await read_all(reply)

    assert attempts(registry) == {"timeout": 1}
    scrape = Scrape(generate_latest(registry).decode())
    assert scrape.value("rolegate_upstream_first_byte_seconds_count", model="m",
                        deployment="d") == 1
    assert scrape.value("rolegate_upstream_latency_seconds_count", model="m",
                        deployment="d") == 1
