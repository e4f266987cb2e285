"""`Metering`: around one forwarded request, the limits before it and the usage record after.

    async with metering.measure(request, who, decision, call) as meter:
        forwarded = await dispatcher.forward(call, is_allowed, trail)
        return await meter.attach(forwarded, response_for(forwarded, call.operation))

`measure` acquires the caller's quotas first (429 before anything reaches an upstream). `attach`
puts the `x-ratelimit-*` headers on the response and, once the reply has ended (at once for a
reply read whole; when a stream's relay ends the reply, the caller finished or gone), hands
exactly one `UsageRecord` to the recorder and settles the lease with the tokens and cost the
relay saw (`UsageMeter`: an estimate of what reached the caller when the upstream's usage
never came). If forwarding fails after an upstream was tried (every attempt failed), `measure`
records and settles with the error's status instead; a failure before any upstream was
contacted (an unknown model, no deployment able to serve) settles the lease but writes no
record: usage is what reached an upstream. A fallback model is admitted by
`Meter.fall_back`: the rule granting it is the one whose limits are acquired and which the
record names. With metrics on, a refusal by a limit and the tokens of each reply are counted too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from rolegate.accounting.pricing import cost_usd
from rolegate.accounting.records import Dimensions, TokenUsage, UsageRecord, dimension_values
from rolegate.authn.principal import Principal
from rolegate.authz.model import Decision
from rolegate.config.model import ModelConfig
from rolegate.errors import GatewayError, RateLimited, ServiceUnavailable
from rolegate.limits.limiter import NO_LEASE, Lease, Limiter
from rolegate.limits.quota import QuotaPlan
from rolegate.limits.reservation import Reserver
from rolegate.observability.metrics import GatewayMetrics
from rolegate.proxy.streaming import Relay
from rolegate.proxy.usage import UsageMeter
from rolegate.routing.dispatcher import Forwarded
from rolegate.routing.request import ClientRequest
from rolegate.server.asgi import CLIENT_CLOSED, Request, Response

log = logging.getLogger("rolegate.metering")


class UsageSink(Protocol):
    def record(self, record: UsageRecord) -> None: ...

    @property
    def is_accepting(self) -> bool:
        """False while a new record could not be kept (the usage spool is full)."""
        ...


class Metering:
    def __init__(self, plan: QuotaPlan, limiter: Limiter, recorder: UsageSink | None,
                 clock: Callable[[], float], models: Iterable[ModelConfig],
                 metrics: GatewayMetrics | None = None, *, reserver: Reserver,
                 usage: UsageMeter, dimensions: tuple[str, ...] = ()) -> None:
        self._plan = plan
        self._dimensions = dimensions
        self._reserver = reserver
        self.usage = usage
        self.metrics = metrics
        self.limiter = limiter
        self.recorder = recorder
        self.clock = clock
        self.models = {model.name: model for model in models}
        self.providers = {(model.name, model.deployment_id(index)): deployment.provider
                          for model in self.models.values()
                          for index, deployment in enumerate(model.deployments)}

    async def lease(self, rule: str | None, who: Principal, call: ClientRequest, model: str,
                    now: float) -> Lease:
        """The limits of `rule` (and of the caller's key) acquired for `call` served by
        `model`, with its reservation; RateLimited when one is spent. While its usage could
        not be recorded, no request is served: ServiceUnavailable."""
        if self.recorder is not None and not self.recorder.is_accepting:
            raise ServiceUnavailable("Usage cannot be recorded right now; try again later.",
                                     code="usage_unrecorded")
        if self._plan.is_empty:
            return NO_LEASE
        quotas = self._plan.quotas(rule, who, now)
        if not quotas:
            return NO_LEASE
        reservation = self._reserver.reservation(
            quotas, call.operation, call.body, 0 if call.is_form else len(call.raw_body), model)
        try:
            return await self.limiter.acquire(quotas, now, reservation)
        except RateLimited as refusal:
            if self.metrics is not None:
                self.metrics.count_rate_limited(refusal.code)
            raise

    def dimensions_of(self, who: Principal) -> Dimensions:
        """The caller's values of `accounting.dimensions`, bounded for storage (none when no
        dimension is configured)."""
        if not self._dimensions:
            return ()
        pairs: list[tuple[str, str]] = []
        for name in self._dimensions:
            values = who.groups if name == "groups" else who.attribute(name)
            pairs += [(name, value) for value in dimension_values(values)]
        return tuple(pairs)

    def measure(self, request: Request, who: Principal, decision: Decision,
                call: ClientRequest) -> Meter:
        """The async context manager around one request (see the module's docstring)."""
        return Meter(self, request.request_id, who, decision, call, NO_LEASE, self.clock())


class Meter:
    """One metered request; `finish` runs once, whichever way the request ends. As an async
    context manager it acquires the quotas on entry and, when the body raises, finishes with
    the error's status (CLIENT_CLOSED for anything but a `GatewayError`)."""

    __slots__ = ("_metering", "_request_id", "_who", "_decision", "_call", "_lease", "_started",
                 "_is_finished", "_has_reached_upstream")

    def __init__(self, metering: Metering, request_id: str, who: Principal, decision: Decision,
                 call: ClientRequest, lease: Lease, started: float) -> None:
        self._metering = metering
        self._request_id = request_id
        self._who = who
        self._decision = decision
        self._call = call
        self._lease = lease
        self._started = started
        self._is_finished = False
        self._has_reached_upstream = False

    def reach_upstream(self) -> None:
        """The request was sent upstream (the dispatcher's trail counts an attempt)."""
        self._has_reached_upstream = True

    async def __aenter__(self) -> Meter:
        self._lease = await self._metering.lease(self._decision.rule, self._who, self._call,
                                                 self._call.model, self._started)
        return self

    async def fall_back(self, decision: Decision, model: str) -> bool:
        """Whether fallback `model` may serve: `decision` (the policy on that model) allows it
        and its rule's limits admit it (a refusal skips the fallback; nothing is forwarded).
        From then on the request is counted, settled and recorded under that rule."""
        if not decision.allowed:
            return False
        if decision.rule == self._decision.rule:
            return True  # the same rule's limits already hold this request
        try:
            lease = await self._metering.lease(decision.rule, self._who, self._call, model,
                                               self._metering.clock())
        except RateLimited:
            return False
        if self._lease.standings:  # the first model's reservation is given back
            self._metering.limiter.settle(self._lease, 0, 0.0)
        self._decision, self._lease = decision, lease
        return True

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        _traceback: object) -> None:
        if error is None:
            return
        if not self._has_reached_upstream:  # nothing was used: the reservation is given back
            self._is_finished = True
            if self._lease.standings:
                self._metering.limiter.settle(self._lease, 0, 0.0)
            return
        status = error.status if isinstance(error, GatewayError) else CLIENT_CLOSED
        await self.finish(status, self._call.model, "", None)

    async def attach(self, forwarded: Forwarded, response: Response) -> Response:
        ours = self._lease.headers()
        if ours:
            response.headers = [h for h in response.headers
                                if not h[0].startswith(b"x-ratelimit-")] + ours
        reply = forwarded.reply
        if response.stream is None:
            await self.finish(response.status, forwarded.model, forwarded.deployment, reply.usage,
                              (response.body,))
            return response
        tap = response.stream.tap if isinstance(response.stream, Relay) else None

        async def finish() -> None:  # the relay ends the reply once the stream has ended
            await self.finish(response.status, forwarded.model, forwarded.deployment,
                              reply.usage, tap.relayed if tap is not None else None)
        reply.on_end(finish)
        return response

    async def finish(self, status: int, model: str, deployment: str,
                     usage: dict[str, object] | None,
                     relayed: Iterable[bytes] | None = None) -> None:
        if self._is_finished:
            return
        self._is_finished = True
        metering = self._metering
        call = self._call
        tokens, is_estimated = await metering.usage.read(usage, call.operation, call.body,
                                                         status, relayed)
        if metering.metrics is not None:
            metering.metrics.count_tokens(model, tokens.prompt_tokens, tokens.completion_tokens)
        config = metering.models.get(model)
        cost = cost_usd(config, tokens) if config is not None else 0.0
        if self._lease.standings:
            metering.limiter.settle(self._lease, tokens.total_tokens, cost)
        if metering.recorder is not None:
            metering.recorder.record(self._record(status, model, deployment, tokens, cost,
                                                  is_estimated))

    def _record(self, status: int, model: str, deployment: str, usage: TokenUsage,
                cost: float, is_estimated: bool) -> UsageRecord:
        who, call = self._who, self._call
        now = self._metering.clock()
        # Positional, in the order of the fields: matching 21 keywords cost more than making
        # the record itself, once per request.
        return UsageRecord(
            now, self._request_id,  # ts, request_id
            who.issuer, who.subject, who.client_id, who.key_id, who.end_user,
            self._decision.rule, model,  # rule, model
            self._metering.providers.get((model, deployment), ""), deployment,  # provider
            call.operation, call.is_stream,
            usage.prompt_tokens, usage.completion_tokens, usage.total_tokens,
            cost, status, max(0.0, (now - self._started) * 1000.0),  # cost_usd, …, latency_ms
            is_estimated, self._metering.dimensions_of(who))  # estimated, dimensions
