"""`Tracing`: OpenTelemetry spans for every request, exported over OTLP/HTTP.

Built by `app.py` only when `tracing.enabled`; this is the only module that imports
OpenTelemetry (the `otel` extra), so the gateway runs without it when tracing is off, and the
code on the request path then pays one `is None` test per step.

One trace per request (continuing the caller's W3C `traceparent`, W3C Trace Context §3):

- the request's SERVER span `POST /v1/chat/completions`, carrying the GenAI semantic
  conventions (`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.response.model`,
  `gen_ai.usage.input_tokens` / `output_tokens`, `gen_ai.provider.name`) and rolegate's own
  attributes (`rolegate.issuer`, `rolegate.subject`, `rolegate.rule`, `rolegate.decision`,
  `rolegate.deployment`, `rolegate.attempts`);
- `rolegate.authenticate` and one `rolegate.authorize` per decision beneath it;
- one CLIENT span per upstream attempt, `chat gpt-4o-mini` (operation and upstream model), whose
  context goes upstream as the attempt's `traceparent`.

Spans are batched and exported off the event loop by the SDK's `BatchSpanProcessor`. A request
whose trace is not sampled (`sample_ratio`, or the caller's `traceparent` flag) gets its server
span only, never recorded, and no child spans: what is left is passing the context upstream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision
from rolegate.config.model import DeploymentConfig, TracingConfig
from rolegate.observability.requests import Request
from rolegate.providers.base import Provider, UpstreamCall, UpstreamReply

# gen_ai.operation.name for each OpenAI operation (GenAI semantic conventions); others as named.
OPERATIONS = {"chat/completions": "chat", "completions": "text_completion",
              "embeddings": "embeddings", "responses": "chat", "messages": "chat",
              "generateContent": "generate_content", "embedContent": "embeddings",
              "batchEmbedContents": "embeddings"}
# gen_ai.provider.name for each provider kind (the conventions' well-known values).
PROVIDERS = {"openai": "openai", "azure": "azure.ai.openai", "openai-compatible": "openai",
             "anthropic": "anthropic", "gemini": "gcp.gemini", "vertex": "gcp.vertex_ai",
             "bedrock": "aws.bedrock", "mock": "rolegate.mock"}
_SPAN = "rolegate.span"
_SPAN_ID = (1 << 64) - 1


class Tracing:
    """>>> tracing = Tracing.export(settings.tracing)   # or Tracing(provider) in a test"""

    def __init__(self, provider: TracerProvider, *, sample_ratio: float = 1.0,
                 rng: random.Random | None = None) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("rolegate")
        self._propagator = TraceContextTextMapPropagator()
        self._sample_ratio = sample_ratio
        self._rng = rng or random.Random()
        # An unsampled request's traceparent for its upstream attempts. Such a request gets no
        # span object at all: deciding here, before the SDK, keeps the 1 - sample_ratio
        # share of requests at a few microseconds each.
        self._unsampled: ContextVar[str | None] = ContextVar("rolegate_unsampled",
                                                             default=None)

    @classmethod
    def export(cls, config: TracingConfig, exporter: SpanExporter | None = None) -> Tracing:
        # New traces are sampled in `start` (sample_ratio); what reaches the SDK is recorded.
        provider = TracerProvider(
            sampler=ParentBased(ALWAYS_ON),
            resource=Resource.create({"service.name": config.service_name}),
            shutdown_on_exit=False)
        exporter = exporter or OTLPSpanExporter(endpoint=config.endpoint,
                                                headers=dict(config.headers),
                                                timeout=config.export_timeout)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider, sample_ratio=config.sample_ratio)

    def close(self) -> None:
        """Export what is still queued, then stop (lifespan shutdown)."""
        self._provider.shutdown()

    def start(self, request: Request, headers: Mapping[bytes, bytes]) -> object:
        """The request's span, current until `finish`; returned as a token for `finish`. An
        unsampled request (the caller's `traceparent` says so, or `sample_ratio` for a new
        trace) gets none: only its context is passed on upstream."""
        traceparent = headers.get(b"traceparent")
        parent = None
        if traceparent is not None:
            carrier = {"traceparent": traceparent.decode("latin-1")}
            state = headers.get(b"tracestate")
            if state is not None:
                carrier["tracestate"] = state.decode("latin-1")
            parent = self._propagator.extract(carrier)
            context = trace.get_current_span(parent).get_span_context()
            if not context.is_valid:  # malformed: a new trace, as without the header
                parent = None
            elif not context.trace_flags.sampled:
                return self._unsampled.set(carrier["traceparent"])  # passed on as it came
        if parent is None and self._rng.random() >= self._sample_ratio:
            ids = self._rng.getrandbits(192) | 1 << 64 | 1  # neither id may be all zeros
            return self._unsampled.set(f"00-{ids >> 64:032x}-{ids & _SPAN_ID:016x}-00")
        span = self._tracer.start_span(request.method, context=parent,
                                       kind=SpanKind.SERVER, attributes={
                                           "http.request.method": request.method,
                                           "url.path": request.path,
                                           "rolegate.request_id": request.request_id})
        request.state[_SPAN] = span
        return otel_context.attach(trace.set_span_in_context(span, parent))

    def finish(self, request: Request, status: int, token: object) -> None:
        state = request.state
        span = state.get(_SPAN)
        if span is None:
            self._unsampled.reset(token)  # type: ignore[arg-type]
            return
        attributes: dict[str, Any] = {"http.response.status_code": status}
        who: Principal | None = state.get("principal")
        if who is not None:
            attributes.update({"rolegate.issuer": who.issuer, "rolegate.subject": who.subject})
        for name, key in (("model", "gen_ai.request.model"), ("deployment",
                          "rolegate.deployment"), ("attempts", "rolegate.attempts"),
                          ("code", "rolegate.error_code")):
            if state.get(name) is not None:
                attributes[key] = state[name]
        reply: UpstreamReply | None = state.get("reply")
        if reply is not None:  # its usage is known now, even a stream's
            attributes.update(_usage_attributes(reply.usage))
        span.set_attributes(attributes)
        if state.get("route_group") not in (None, "public"):  # a path the route table knows
            span.update_name(f"{request.method} {request.path}")
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]

    def is_recording(self, request: Request) -> bool:
        """Whether `request` is sampled: only then does it get child spans."""
        return _SPAN in request.state

    @contextmanager
    def authenticating(self) -> Iterator[None]:
        with self._tracer.start_as_current_span("rolegate.authenticate",
                                                record_exception=False,
                                                set_status_on_exception=False):
            yield

    def decided(self, request: Request, who: Principal, action: Action,
                decision: Decision) -> None:
        """A span for one authorization decision; the request's span takes its outcome."""
        span = request.state.get(_SPAN)
        if span is None:
            return
        attributes = {"rolegate.route": action.route,
                      "rolegate.decision": "allow" if decision.allowed else "deny"}
        if decision.rule is not None:
            attributes["rolegate.rule"] = decision.rule
        if action.model is not None:
            attributes["gen_ai.request.model"] = action.model
        self._tracer.start_span("rolegate.authorize", attributes=attributes).end()
        span.set_attributes(attributes)

    def traced(self, provider: Provider, model: str, deployment: str,
               upstream_model: str) -> Provider:
        """`provider`, with a span per attempt whose context goes upstream."""
        return _TracedProvider(self, provider, model, deployment, upstream_model)

    def unsampled(self) -> str | None:
        """The traceparent for the current request's attempts when it is not sampled."""
        return self._unsampled.get()

    def attempt(self, call: UpstreamCall, config: DeploymentConfig, deployment: str,
                upstream_model: str) -> tuple[trace.Span, UpstreamCall]:
        operation = OPERATIONS.get(call.operation, call.operation)
        span = self._tracer.start_span(f"{operation} {upstream_model}", kind=SpanKind.CLIENT,
                                       attributes={
                                           "gen_ai.operation.name": operation,
                                           "gen_ai.request.model": upstream_model,
                                           "gen_ai.provider.name": PROVIDERS.get(
                                               config.provider, config.provider),
                                           "rolegate.deployment": deployment})
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        return span, _with_traceparent(call, carrier.get("traceparent"))


class _TracedProvider:
    def __init__(self, tracing: Tracing, provider: Provider, model: str, deployment: str,
                 upstream_model: str) -> None:
        self.config: DeploymentConfig = provider.config
        self._tracing = tracing
        self._provider = provider
        self._model = model
        self._deployment = deployment
        self._upstream_model = upstream_model

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        unsampled = self._tracing.unsampled()
        if unsampled is not None:  # the trace goes on upstream, unrecorded
            return await self._provider.open(_with_traceparent(call, unsampled))
        request_span = trace.get_current_span()
        span, call = self._tracing.attempt(call, self.config, self._deployment,
                                           self._upstream_model)
        try:
            reply = await self._provider.open(call)
        except BaseException as error:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(Status(StatusCode.ERROR))
            span.end()
            raise

        def ended() -> None:
            attributes = _reply_attributes(reply, self._upstream_model)
            span.set_attributes(attributes)
            if reply.status >= 400:
                span.set_status(Status(StatusCode.ERROR))
            else:  # the request's span tells what served it
                request_span.set_attributes({
                    **attributes, "gen_ai.operation.name": OPERATIONS.get(
                        call.operation, call.operation),
                    "gen_ai.provider.name": PROVIDERS.get(self.config.provider,
                                                          self.config.provider)})
            span.end()
        reply.on_end(ended)
        return reply


def _with_traceparent(call: UpstreamCall, traceparent: str | None) -> UpstreamCall:
    # The fields spelled out: `dataclasses.replace` introspects the class on every call.
    return UpstreamCall(call.operation, call.body, call.raw_body, call.is_stream,
                        call.request_id, call.content_type, call.time_left, traceparent,
                        call.headers)


def _reply_attributes(reply: UpstreamReply, upstream_model: str) -> dict[str, Any]:
    return {"http.response.status_code": reply.status, "gen_ai.response.model": upstream_model,
            **_usage_attributes(reply.usage)}


def _usage_attributes(usage: dict[str, Any] | None) -> dict[str, int]:
    """The token counts, when known (a stream's when it has ended; a reply read whole's once
    the dispatcher has read them from its body, after the attempt's span has ended)."""
    attributes = {}
    for name, key in (("prompt_tokens", "gen_ai.usage.input_tokens"),
                      ("completion_tokens", "gen_ai.usage.output_tokens")):
        value = (usage or {}).get(name)
        if isinstance(value, int):
            attributes[key] = value
    return attributes
