"""`Dispatcher.forward`: the one routing entry point. It picks a deployment, retries on another
when an attempt fails before anything reached the caller, falls back to other models when a
model cannot serve, and returns the outcome as a transport-neutral `Forwarded`: the upstream's
reply (read whole, or a started stream), routing's own headers and who served it. The HTTP layer
(`proxy/streaming.py`) turns it into a response.

>>> forwarded = await dispatcher.forward(request, is_allowed=lambda model: ...)
>>> forwarded.headers  # x-rolegate-deployment / x-rolegate-attempts / x-rolegate-model

Outcomes the caller sees, besides the upstream's own reply: 429 `all_deployments_rate_limited`
or `upstream_rate_limited` (with Retry-After), 503 `no_healthy_deployment`, 504
`upstream_timeout`, 502 `upstream_error`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from rolegate.config.model import RetryConfig
from rolegate.errors import (
    GatewayError, RateLimited, ServiceUnavailable, UpstreamError, UpstreamTimeout,
)
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.routing.deployment import Deployment
from rolegate.routing.replies import (
    is_openai_error, raise_for_upstream_status, usage_of,
)
from rolegate.routing.request import ClientRequest
from rolegate.routing.retry import RATE_LIMITED, RETRYABLE_STATUSES, Backoff
from rolegate.routing.table import ModelRoute, RouteTable

Sleep = Callable[[float], Awaitable[None]]
# Whether a fallback model may serve this request: decided by the rule that grants that model,
# whose limits it is then counted on (False: skip it).
IsAllowed = Callable[[str], Awaitable[bool]]
# Told each time a request is sent to an upstream (usage is recorded only for such requests).


@dataclass(slots=True)
class Forwarded:
    """What the caller gets, before any transport, and what produced it.

    `body` is the reply read whole, or None for a started stream, whose first chunk is `first`
    and the rest `reply.chunks`; whoever relays it ends the reply (`reply.end()`), which tells
    the end-of-reply listeners. `headers` are routing's own (deployment, attempts, model).
    `reply.usage` holds the token usage once it is known (for a stream: when it has ended).
    `is_usage_added`: the gateway asked for a stream's usage chunk on the caller's behalf."""

    reply: UpstreamReply
    body: bytes | None
    headers: list[tuple[bytes, bytes]]
    model: str
    deployment: str
    attempts: int
    first: bytes = b""
    is_usage_added: bool = False


@dataclass(slots=True)
class Trail:
    """What forwarding tried, filled in as it goes so that it can be read when forwarding
    failed (the access line): the attempts made, the deployment of the last one, and why the
    last failed attempt failed (None when none did)."""

    attempts: int = 0
    deployment: str | None = None
    cause: str | None = None


@dataclass(slots=True)
class _Budget:
    deadline: float
    trail: Trail = field(default_factory=Trail)

    @property
    def attempts(self) -> int:
        return self.trail.attempts


class _Retry(Exception):
    def __init__(self, error: GatewayError, rejection: bytes | None = None) -> None:
        self.error = error
        self.rejection = rejection  # an upstream's OpenAI-shaped 429 body, passed on if last


class _Exhausted(Exception):
    """Every attempt on one model failed: its fallbacks may serve. `forwarded`, when set, is
    what the caller gets if none does (the upstream's own 429); else `error`."""

    def __init__(self, error: GatewayError, forwarded: Forwarded | None = None) -> None:
        self.error = error
        self.forwarded = forwarded


class _ContextTooLong(Exception):
    def __init__(self, forwarded: Forwarded) -> None:
        self.forwarded = forwarded


class Dispatcher:
    def __init__(self, table: RouteTable, retries: RetryConfig, *, clock: Callable[[], float],
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> None:
        self._table = table
        self._retries = retries
        self._clock = clock
        self._sleep = sleep
        self._backoff = Backoff(retries, rng or random.Random())

    async def forward(self, request: ClientRequest, is_allowed: IsAllowed,
                      trail: Trail | None = None) -> Forwarded:
        """Serve `request` on its model, else on the model's fallbacks the caller may use;
        `trail` records what was tried, whatever the outcome."""
        budget = _Budget(self._clock() + self._retries.deadline, trail or Trail())
        primary = self._table.route(request.model)
        try:
            return await self._serve(primary, request, budget)
        except _ContextTooLong as too_long:
            return await self._fall_back(primary.config.context_window_fallbacks, request,
                                         is_allowed, budget, too_long)
        except _Exhausted as exhausted:
            return await self._fall_back(primary.config.fallbacks, request, is_allowed,
                                         budget, exhausted)

    async def _fall_back(self, names: tuple[str, ...], request: ClientRequest,
                         is_allowed: IsAllowed, budget: _Budget,
                         cause: _ContextTooLong | _Exhausted) -> Forwarded:
        for name in names:
            if self._clock() >= budget.deadline:
                break
            if not await is_allowed(name):  # never a model the caller may not use
                continue
            try:
                return await self._serve(self._table.route(name), request, budget)
            except (_ContextTooLong, _Exhausted):
                continue
        if cause.forwarded is not None:
            return cause.forwarded
        raise cause.error

    async def _serve(self, route: ModelRoute, request: ClientRequest,
                     budget: _Budget) -> Forwarded:
        tried: set[str] = set()
        last: GatewayError | None = None
        rejection: bytes | None = None
        attempts = waits = 0
        while attempts < self._retries.max_attempts:
            now = self._clock()
            pick = route.pick(now, tried)
            if pick is None:
                wait = self._capacity_wait(route, now, budget)
                if wait is None or waits >= self._retries.max_attempts:
                    raise self._unavailable(route, now, last, rejection, budget)
                waits += 1
                await self._sleep(wait)
                continue
            if pick.is_repeat:  # a fresh deployment is tried at once; the same one after a pause
                delay = self._backoff.delay(attempts)
                if now + delay >= budget.deadline:
                    break
                await self._sleep(delay)
            attempts += 1
            tried.add(pick.deployment.id)
            try:
                return await self._attempt(route, pick.deployment, request, budget)
            except _Retry as retry:
                last, rejection = retry.error, retry.rejection
            if self._clock() >= budget.deadline:
                break
        raise self._unavailable(route, self._clock(), last, rejection, budget)

    def _capacity_wait(self, route: ModelRoute, now: float, budget: _Budget) -> float | None:
        """How long to wait for a rate-limited deployment to take requests again, when that is
        soon enough (`max_retry_after`, and within the deadline); else None."""
        if not route.is_rate_limited(now) or not route.is_wait_advised(now):
            return None
        wait = route.rate_limit_free_at(now) - now
        if wait > self._retries.max_retry_after or now + wait >= budget.deadline:
            return None
        return max(wait, 0.001)

    def _unavailable(self, route: ModelRoute, now: float, last: GatewayError | None,
                     rejection: bytes | None, budget: _Budget) -> _Exhausted:
        if route.is_rate_limited(now):
            retry_after = route.rate_limit_free_at(now) - now
            code = "upstream_rate_limited" if isinstance(last, RateLimited) else \
                "all_deployments_rate_limited"
            error = RateLimited(f"Every deployment of model {route.name!r} is rate-limited; "
                                "retry later.", retry_after=retry_after, code=code)
            if rejection is None:
                return _Exhausted(error)
            # The upstream's own OpenAI-shaped 429 passes through, as its other 4xx do.
            headers = [*error.headers(), (b"x-rolegate-attempts", str(budget.attempts).encode())]
            reply = UpstreamReply(RATE_LIMITED, b"application/json", _no_chunks())
            return _Exhausted(error, Forwarded(reply, rejection, headers, route.name, "",
                                               budget.attempts))
        if last is not None:
            return _Exhausted(last)
        free_at = route.breaker_free_at(now)
        return _Exhausted(ServiceUnavailable(
            f"No healthy deployment can serve model {route.name!r} right now.",
            code="no_healthy_deployment",
            retry_after=None if free_at is None else max(free_at - now, 1.0)))

    async def _attempt(self, route: ModelRoute, deployment: Deployment,
                       request: ClientRequest, budget: _Budget) -> Forwarded:
        started = self._clock()
        call = request.upstream_call(deployment.upstream_model,
                                     include_stream_usage=deployment.config.include_stream_usage,
                                     time_left=max(budget.deadline - started, 0.0))
        deployment.begin(started)
        trail = budget.trail
        trail.attempts += 1
        trail.deployment = deployment.id
        try:
            reply, first, body = await self._open(deployment, request, call)
        except (UpstreamError, UpstreamTimeout) as error:
            deployment.record_failure(self._clock())
            deployment.end(self._clock())
            trail.cause = error.message
            raise _Retry(error) from None
        except BaseException:
            deployment.record_neutral()
            deployment.end(self._clock())
            raise
        now = self._clock()
        if reply.status == RATE_LIMITED or reply.status in RETRYABLE_STATUSES:
            deployment.end(now)
            trail.cause = f"the upstream answered {reply.status}"
            if reply.status == RATE_LIMITED:
                deployment.record_rate_limit(now, reply.retry_after)
                raise _Retry(RateLimited("The upstream is rate-limited.",
                                         code="upstream_rate_limited",
                                         retry_after=reply.retry_after or 1.0),
                             body if body is not None and is_openai_error(body) else None)
            deployment.record_failure(now)
            raise _Retry(UpstreamError(f"The upstream failed with status {reply.status}."))
        if reply.status < 400:
            deployment.record_success(now - started)
        else:
            deployment.record_neutral()
        headers = [(b"x-rolegate-deployment", deployment.id.encode()),
                   (b"x-rolegate-attempts", str(budget.attempts).encode()),
                   (b"x-rolegate-model", route.name.encode())]
        if body is None:  # a started stream: the deployment is busy until it ends
            reply.on_end(self._ending(reply, deployment))
            return Forwarded(reply, None, headers, route.name, deployment.id, budget.attempts,
                             first, request.is_usage_added(
                                 deployment.config.include_stream_usage))
        try:  # upstream failures become gateway errors, the rest passes through
            raise_for_upstream_status(reply.status, body)
        except GatewayError as error:
            trail.cause = error.message
            raise
        finally:
            deployment.end(now, reply.usage)
        forwarded = Forwarded(reply, body, headers, route.name, deployment.id, budget.attempts)
        if reply.is_context_overflow:  # as its provider read the upstream's own error
            raise _ContextTooLong(forwarded)
        return forwarded

    async def _open(self, deployment: Deployment, request: ClientRequest,
                    call: UpstreamCall) -> tuple[UpstreamReply, bytes, bytes | None]:
        """Send the call and read up to the point of no return: the first chunk of a stream,
        or the whole body otherwise. Nothing has reached the caller yet, so failing here is
        still retryable. The provider bounds this by `call.time_left` (the deadline), which
        costs no timer of its own. Returns (reply, first chunk, whole body or None for a
        stream)."""
        reply = await deployment.provider.open(call)
        # An upstream that answers a stream request with one JSON body is read whole (and
        # metered from that body's usage), like any reply that does not stream.
        is_started_stream = (request.is_stream and reply.status == 200
                             and not reply.content_type.startswith(b"application/json"))
        try:
            if is_started_stream:
                return reply, await anext(reply.chunks, b""), None
            body = b"".join([chunk async for chunk in reply.chunks])
        except BaseException:
            await reply.end()
            raise
        if reply.usage is None and reply.status == 200:  # known when the reply ends
            reply.usage = usage_of(body)
        await reply.end()
        return reply, b"", body

    def _ending(self, reply: UpstreamReply, deployment: Deployment) -> Callable[[], None]:
        """The end-of-reply listener of a started stream: the deployment is free again, and
        learns the tokens it served."""
        def end() -> None:
            deployment.end(self._clock(), reply.usage)
        return end


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator
