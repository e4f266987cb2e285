"""`MeasuredProvider`: a provider wrapped so each upstream attempt is counted and timed.

Wrapping the provider keeps routing free of metrics: the dispatcher sees a provider like any
other. An attempt is counted once, when its reply ends (an end-of-reply listener: the dispatcher
ends every reply it read whole, and a stream's relay ends it when the stream is over), with the
outcome the reply had:

- `success` (status below 400), `client_error` (other 4xx), `rate_limited` (429),
  `server_error` (5xx);
- `timeout` and `error` when the upstream timed out or failed, before or during the reply;
- `cancelled` when the gateway stopped waiting (its deadline, or the caller went away).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from rolegate.config.model import DeploymentConfig
from rolegate.errors import UpstreamTimeout
from rolegate.observability.metrics import DeploymentMetrics
from rolegate.providers.base import Provider, UpstreamCall, UpstreamReply


def outcome_of(status: int) -> str:
    if status < 400:
        return "success"
    if status == 429:
        return "rate_limited"
    return "client_error" if status < 500 else "server_error"


def outcome_of_failure(error: BaseException) -> str:
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        return "cancelled"
    return "error"


class MeasuredProvider:
    """>>> provider = MeasuredProvider(build_provider(...), metrics.deployment("gpt-4o", "a"))"""

    def __init__(self, provider: Provider, metrics: DeploymentMetrics,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.config: DeploymentConfig = provider.config
        self._provider = provider
        self._metrics = metrics
        self._timer = timer

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        started = self._timer()
        try:
            reply = await self._provider.open(call)
        except BaseException as error:
            self._metrics.count_attempt(outcome_of_failure(error))
            raise
        attempt = _Attempt(self._metrics, self._timer, started, reply, call.is_stream)
        reply.chunks = attempt
        reply.on_end(attempt.ended)
        return reply


class _Attempt:
    """The reply's chunks, watched: the first one's arrival, and a failure while reading."""

    __slots__ = ("_metrics", "_timer", "_started", "_chunks", "_outcome", "_is_stream",
                 "_is_first")

    def __init__(self, metrics: DeploymentMetrics, timer: Callable[[], float], started: float,
                 reply: UpstreamReply, is_stream: bool) -> None:
        self._metrics = metrics
        self._timer = timer
        self._started = started
        self._chunks: AsyncIterator[bytes] = reply.chunks
        self._outcome = outcome_of(reply.status)
        self._is_stream = is_stream
        self._is_first = True

    def __aiter__(self) -> _Attempt:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            raise
        except BaseException as error:
            self._outcome = outcome_of_failure(error)
            raise
        if self._is_first:
            self._is_first = False
            if self._is_stream:
                self._metrics.first_byte.observe(self._timer() - self._started)
        return chunk

    def ended(self) -> None:
        """The reply's end-of-reply listener (`UpstreamReply.end` calls it once)."""
        self._metrics.count_attempt(self._outcome)
        self._metrics.latency.observe(self._timer() - self._started)
