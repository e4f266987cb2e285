"""`Metering`: around one upstream call, the limits before it and the usage record after it.

    async with metering.measure(request, who, decision, model, call) as meter:
        reply = meter.watch(await provider.open(meter.call))

`measure` acquires the caller's quotas first (429 before anything reaches the upstream). The
reply's body is then watched by a `UsageTap`; when the reply is closed (its body was relayed,
the caller went away, or the upstream failed mid-way) exactly one `UsageRecord` is handed to the
recorder and the lease is settled with the real tokens and cost. If the call fails before a
reply exists, `measure` records and settles with the error's status instead.

`meter.call` is the call to send: a metered stream asks the upstream for its usage
(`stream_options.include_usage`); when the caller had not asked for it, the usage-only event
is taken out of the stream again, so the caller sees the stream it asked for.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from rolegate.accounting.pricing import cost_usd
from rolegate.accounting.records import TokenUsage, UsageRecord
from rolegate.asgi import Request
from rolegate.authn.principal import Principal
from rolegate.authz.model import Decision
from rolegate.config.model import ModelConfig
from rolegate.errors import GatewayError
from rolegate.limits.limiter import NO_LEASE, Lease, Limiter
from rolegate.limits.quota import QuotaPlan
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.proxy.usage import UsageTap, with_stream_usage, without_usage_events

log = logging.getLogger("rolegate.metering")
CLIENT_CLOSED = 499
STREAM_USAGE_OPS = ("chat/completions", "completions")


class UsageSink(Protocol):
    def record(self, record: UsageRecord) -> None: ...


class Metering:
    def __init__(self, plan: QuotaPlan, limiter: Limiter, recorder: UsageSink | None,
                 clock: Callable[[], float], *, ask_stream_usage: bool = True) -> None:
        self._plan = plan
        self._limiter = limiter
        self._recorder = recorder
        self._clock = clock
        self._ask_stream_usage = ask_stream_usage and (recorder is not None or not plan.is_empty)

    def _asking_for_usage(self, call: UpstreamCall) -> UpstreamCall | None:
        """The call asking a streaming upstream for its usage, if streams are metered and the
        caller did not decide that itself."""
        if not (call.is_stream and self._ask_stream_usage and call.operation in STREAM_USAGE_OPS):
            return None
        asking = with_stream_usage(call.body)
        return None if asking is None else dataclasses.replace(call, body=asking, raw_body=None)

    @asynccontextmanager
    async def measure(self, request: Request, who: Principal, decision: Decision,
                      model: ModelConfig, call: UpstreamCall) -> AsyncIterator[Meter]:
        now = self._clock()
        lease = NO_LEASE
        if not self._plan.is_empty:
            quotas = self._plan.quotas(decision.rule, who, now)
            if quotas:
                lease = await self._limiter.acquire(quotas, now, request.request_id)
        asking = self._asking_for_usage(call)
        meter = Meter(self, request, who, decision, model, asking or call, lease, now,
                      is_usage_added=asking is not None)
        try:
            yield meter
        except GatewayError as error:
            await meter.finish(error.status, None)
            raise
        except BaseException:
            await meter.finish(CLIENT_CLOSED, None)
            raise


class Meter:
    """One metered upstream call; `finish` runs once, whichever way the call ends."""

    def __init__(self, metering: Metering, request: Request, who: Principal, decision: Decision,
                 model: ModelConfig, call: UpstreamCall, lease: Lease, started: float, *,
                 is_usage_added: bool = False) -> None:
        self._metering = metering
        self._request = request
        self._who = who
        self._decision = decision
        self._model = model
        self.call = call
        self._is_usage_added = is_usage_added
        self._lease = lease
        self._started = started
        self._is_finished = False

    def watch(self, reply: UpstreamReply) -> UpstreamReply:
        """The same reply, its body tapped for usage, our rate-limit headers on it."""
        tap = UsageTap(is_stream=reply.content_type.startswith(b"text/event-stream"))
        upstream_close = reply.close

        async def close() -> None:
            try:
                await upstream_close()
            finally:
                status = reply.status if tap.is_complete else (tap.failed_status or CLIENT_CLOSED)
                await self.finish(status, tap)

        headers = reply.headers
        ours = self._lease.headers()
        if ours:
            headers = [h for h in headers if not h[0].startswith(b"x-ratelimit-")] + ours
        chunks = tap.watch(reply.chunks)
        if self._is_usage_added and tap.is_stream:
            chunks = without_usage_events(chunks)
        return dataclasses.replace(reply, chunks=chunks, close=close, headers=headers)

    async def finish(self, status: int, tap: UsageTap | None) -> None:
        if self._is_finished:
            return
        self._is_finished = True
        metering = self._metering
        usage = TokenUsage()
        if tap is not None:
            tap.finish()
            usage = tap.usage
        cost = cost_usd(self._model, usage)
        if self._lease.standings:
            await metering._limiter.settle(self._lease, usage.total_tokens, cost)
        if metering._recorder is not None:
            metering._recorder.record(self._record(status, usage, cost))

    def _record(self, status: int, usage: TokenUsage, cost: float) -> UsageRecord:
        who, call, model = self._who, self.call, self._model
        now = self._metering._clock()
        return UsageRecord(
            ts=now, request_id=self._request.request_id, issuer=who.issuer,
            subject=who.subject, client_id=who.client_id, key_id=who.key_id,
            end_user=who.end_user, rule=self._decision.rule, model=model.name,
            provider=model.provider, deployment=model.deployment or model.upstream_model,
            operation=call.operation, is_stream=call.is_stream,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens, cost_usd=cost, status=status,
            latency_ms=max(0.0, (now - self._started) * 1000.0))
