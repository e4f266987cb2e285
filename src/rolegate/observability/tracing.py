"""`Tracing`: OpenTelemetry spans for every request, exported over OTLP/HTTP.

Built by `app.py` only when `tracing.enabled`; it and the modules it uses (`spans.py`,
`otlp.py`, `span_export.py`) are the only ones that import OpenTelemetry (the `otel` extra), so
the gateway runs without it when tracing is off, and the code on the request path then pays
one `is None` test per step.

One trace per request (continuing the caller's W3C `traceparent`, W3C Trace Context §3):

- the request's SERVER span `POST /v1/chat/completions`, carrying the GenAI semantic
  conventions (`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.response.model`,
  `gen_ai.usage.input_tokens` / `output_tokens`, `gen_ai.provider.name`) and rolegate's own
  attributes (`rolegate.issuer`, `rolegate.subject`, `rolegate.rule`, `rolegate.decision`,
  `rolegate.deployment`, `rolegate.attempts`);
- `rolegate.authenticate` and one `rolegate.authorize` per decision beneath it;
- one CLIENT span per upstream attempt, `chat gpt-4o-mini` (operation and upstream model), whose
  context goes upstream as the attempt's `traceparent`.

Spans are recorded as plain data (the SDK's per-span objects, locks, contexts and span
processors cost about 25 us a span, more than a tenth of a request): each child as a tuple
when it ends, the whole trace encoded as OTLP protobuf in one pass when it has ended (one
call for the children, one for the request's span: a call costs about half a microsecond on
a busy gateway), most of it from blocks encoded once: an attempt's constant attributes
per deployment and operation, an authorization's per decision, the request's own but its id,
status and token counts per combination of their values. A trace's bytes go, when the
request's span ends, to `SpanExport`, whose thread sends them in batches. Whether a trace is
sampled is decided once, when the request starts: a caller's `traceparent` decides for the
trace it continues (parent-based), `sample_ratio` for a new one. An unsampled request gets no
span at all: what is left is passing the context upstream.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from time import time_ns
from typing import Any

from opentelemetry.sdk.resources import Resource

from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision
from rolegate.config.model import DeploymentConfig, TracingConfig
from rolegate.observability.otlp import OtlpEncoder, wire_id
from rolegate.observability.requests import Request
from rolegate.observability.span_export import OtlpHttpSender, SpanExport
from rolegate.observability.spans import (
    CLIENT, HAS_IS_REMOTE, INTERNAL, IS_REMOTE, SERVER, ChildSpan, RequestSpan, remote_parent,
)
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
_SCOPE = "rolegate"  # the instrumentation scope's name
# Request state -> the request span's attribute, when set.
_USAGE = (("prompt_tokens", "gen_ai.usage.input_tokens"),
          ("completion_tokens", "gen_ai.usage.output_tokens"))
_MOST_DECISIONS = 4096
_MOST_REQUEST_BLOCKS = 4096
# The request span's attributes whose values seldom repeat from one request to the next.
_REQUEST_ID, _STATUS = "rolegate.request_id", "http.response.status_code"
_INPUT_TOKENS, _OUTPUT_TOKENS = "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"
_LOW_64 = (1 << 64) - 1
_STATE_ATTRIBUTES = (("model", "gen_ai.request.model"), ("deployment", "rolegate.deployment"),
                     ("attempts", "rolegate.attempts"), ("code", "rolegate.error_code"))


class Tracing:
    """>>> tracing = Tracing.export(settings.tracing)   # or Tracing(export, encoder) in a test"""

    def __init__(self, export: SpanExport, encoder: OtlpEncoder, *, sample_ratio: float = 1.0,
                 rng: random.Random | None = None) -> None:
        self._export = export
        self._encoder = encoder
        self._sample_ratio = sample_ratio
        rng = rng or random.Random()
        self._random = rng.random
        self._bits = rng.getrandbits
        # Each request's task -> its span when it is sampled, or the traceparent its upstream
        # attempts pass on when it is not. Not a context variable: every timer or task made
        # during a request keeps a copy of its context, some for as long as a keep-alive
        # timeout, and setting a variable per request would keep its context's nodes alive
        # with them (into the collector's oldest generation, making its full collections,
        # which walk the whole heap, more frequent).
        self._current: dict[asyncio.Task[Any] | None, RequestSpan | str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # The request span's attributes but its id, status and token counts -> encoded.
        self._request_blocks: dict[tuple[tuple[str, Any], ...], bytes] = {}
        # (route, allowed, rule, model) -> an authorization span's attributes, and encoded.
        self._decisions: dict[tuple[str, bool, str | None, str | None],
                              tuple[dict[str, Any], bytes]] = {}
        self._authenticate = encoder.child_block("rolegate.authenticate", INTERNAL, False, b"")

    @classmethod
    def export(cls, config: TracingConfig) -> Tracing:
        # The SDK's resource: `service.name`, the `telemetry.sdk.*` attributes and
        # OTEL_RESOURCE_ATTRIBUTES, as its exporter would send them.
        resource = Resource.create({"service.name": config.service_name})
        encoder = OtlpEncoder(dict(resource.attributes), scope=_SCOPE,
                              resource_schema_url=resource.schema_url,
                              uncached=frozenset({_REQUEST_ID}))
        sender = OtlpHttpSender(config.endpoint, config.headers, timeout=config.export_timeout)
        return cls(SpanExport(encoder, sender), encoder, sample_ratio=config.sample_ratio)

    def close(self) -> None:
        """Export what is still queued, then stop (lifespan shutdown; blocking)."""
        self._export.close()

    def start(self, request: Request, headers: Mapping[bytes, bytes]) -> object:
        """The request's span, current until `finish`; returned as a token for `finish`. An
        unsampled request (the caller's `traceparent` says so, or `sample_ratio` for a new
        trace) gets none: only its context is passed on upstream."""
        traceparent = headers.get(b"traceparent")
        parent = None
        if traceparent is not None:
            parent = remote_parent(traceparent, headers.get(b"tracestate"))
            if parent is not None and not parent.is_sampled:
                return self._set_current(parent.traceparent)  # passed on as it came
        attributes = {"http.request.method": request.method, "url.path": request.path,
                      _REQUEST_ID: request.request_id}
        if parent is None:  # a new trace (a malformed traceparent is read as none)
            ids = self._bits(192)  # the trace's id and its span's, in one draw
            trace_id, span_id = ids >> 64, ids & _LOW_64
            if not trace_id or not span_id:  # neither may be all zeros (W3C §3.2.2)
                trace_id, span_id = self._trace_id(), self._span_id()
            if self._sample_ratio < 1.0 and self._random() >= self._sample_ratio:
                return self._set_current(f"00-{trace_id:032x}-{span_id:016x}-00")
            span = RequestSpan(request.method, trace_id, span_id, 0,
                               self._encoder.head(trace_id, ""), HAS_IS_REMOTE, time_ns(),
                               attributes)
        else:
            span = RequestSpan(request.method, parent.trace_id, self._span_id(),
                               wire_id(parent.span_id),
                               self._encoder.head(parent.trace_id, parent.trace_state),
                               HAS_IS_REMOTE | IS_REMOTE, time_ns(), attributes)
        request.state[_SPAN] = span
        return self._set_current(span)

    def finish(self, request: Request, status: int, token: object) -> None:
        self._current.pop(token, None)  # type: ignore[call-overload]
        state = request.state
        span: RequestSpan | None = state.get(_SPAN)
        if span is None:
            return
        attributes = span.attributes
        attributes[_STATUS] = status
        who: Principal | None = state.get("principal")
        if who is not None:
            attributes["rolegate.issuer"] = who.issuer
            attributes["rolegate.subject"] = who.subject
        for name, key in _STATE_ATTRIBUTES:
            value = state.get(name)
            if value is not None:
                attributes[key] = value
        reply: UpstreamReply | None = state.get("reply")
        if reply is not None:  # its usage is known now, even a stream's
            _add_usage(attributes, reply.usage)
        if state.get("route_group") not in (None, "public"):  # a path the route table knows
            span.name = f"{request.method} {request.path}"
        span.is_error = status >= 500
        span.end = time_ns()
        if not span.open:  # otherwise the last attempt to end hands the trace over
            self._export.put(self._encoded(span))

    def is_recording(self, request: Request) -> bool:
        """Whether `request` is sampled: only then does it get child spans."""
        return _SPAN in request.state

    def authenticated(self, request: Request, started: int) -> None:
        """A span for authenticating `request` (a sampled one), from `started` (`time_ns()`)
        until now. A failed authentication is the request's outcome, told by its span."""
        request.state[_SPAN].children.append((self._authenticate, 0, started, time_ns()))

    def decided(self, request: Request, who: Principal, action: Action,
                decision: Decision) -> None:
        """A span for one authorization decision; the request's span takes its outcome."""
        span: RequestSpan | None = request.state.get(_SPAN)
        if span is None:
            return
        key = (action.route, decision.allowed, decision.rule, action.model)
        known = self._decisions.get(key)
        if known is None:
            known = self._decisions[key] = self._decision(*key)
        attributes, block = known
        now = time_ns()
        span.children.append((block, 0, now, now))
        if not span.end:
            span.attributes.update(attributes)

    def traced(self, provider: Provider, deployment: str, upstream_model: str) -> Provider:
        """`provider`, with a span per attempt whose context goes upstream."""
        return _TracedProvider(self, provider, deployment, upstream_model)

    def current(self) -> RequestSpan | str | None:
        """The current request's span, or the traceparent its attempts pass on when it is
        not sampled (None outside a request)."""
        return self._current.get(self._task())

    def attempt(self, request_span: RequestSpan | None, kind: _AttemptKind) -> _Attempt:
        """A CLIENT span for one upstream attempt, open until `ended`. Outside any request
        it starts a trace of its own."""
        if request_span is None:
            trace_id = self._trace_id()
            request_span = RequestSpan("", trace_id, 0, 0, self._encoder.head(trace_id, ""),
                                       HAS_IS_REMOTE, 0, {})
        else:
            request_span.open += 1
        return _Attempt(self, request_span, kind, self._span_id(), time_ns())

    def ended(self, attempt: _Attempt, shared: bytes, attributes: dict[str, Any],
              is_error: bool) -> None:
        """`attempt` has ended: its attributes are `shared` (encoded, its kind's) and these."""
        request_span = attempt.request_span
        encoder = self._encoder
        child: ChildSpan = (encoder.child_block(attempt.kind.name, CLIENT, is_error,
                                                shared + encoder.attributes(attributes)),
                            attempt.span_id, attempt.start, time_ns())
        if not request_span.span_id:  # an attempt outside any request: a trace of its own
            self._export.put(self._encoder.children(request_span.head, 0, (child,)))
            return
        request_span.children.append(child)
        request_span.open -= 1
        if request_span.end and not request_span.open:  # the request ended first
            self._export.put(self._encoded(request_span))

    def attempt_kind(self, operation: str, provider: str, deployment: str,
                     upstream_model: str) -> _AttemptKind:
        """What every attempt of `operation` on a deployment shares (encoded once)."""
        operation = OPERATIONS.get(operation, operation)
        served = {"gen_ai.response.model": upstream_model, "gen_ai.operation.name": operation,
                  "gen_ai.provider.name": PROVIDERS.get(provider, provider)}
        constant = self._encoder.attributes({
            "gen_ai.operation.name": operation, "gen_ai.request.model": upstream_model,
            "gen_ai.provider.name": served["gen_ai.provider.name"],
            "rolegate.deployment": deployment})
        return _AttemptKind(f"{operation} {upstream_model}", constant,
                            constant + self._encoder.attributes(
                                {"gen_ai.response.model": upstream_model}), served)

    def _encoded(self, span: RequestSpan) -> bytes:
        """An ended trace: its children, in the order they ended, then the request's span."""
        encoder = self._encoder
        attributes = span.attributes
        # What changes from request to request is encoded apart; the rest (issuer, subject,
        # rule, decision, models, deployment, route...) is one block encoded once for each
        # combination of its values.
        pop = attributes.pop  # (an attribute valued None is encoded as none)
        request_id = encoder.uncached_attribute(_REQUEST_ID, pop(_REQUEST_ID, None))
        varying = ((_STATUS, pop(_STATUS, None)), (_INPUT_TOKENS, pop(_INPUT_TOKENS, None)),
                   (_OUTPUT_TOKENS, pop(_OUTPUT_TOKENS, None)))
        constant = tuple(attributes.items())
        block = self._request_blocks.get(constant)
        if block is None:
            if len(self._request_blocks) >= _MOST_REQUEST_BLOCKS:  # callers name models, paths
                self._request_blocks.clear()
            block = self._request_blocks[constant] = encoder.attributes(attributes)
        return encoder.children(span.head, span.span_id, span.children) + encoder.span(
            span.head, span.name, SERVER, span.span_id, span.parent_id, span.flags, span.start,
            span.end, block + request_id + encoder.attribute_items(varying), span.is_error)

    def _decision(self, route: str, allowed: bool, rule: str | None,
                  model: str | None) -> tuple[dict[str, Any], bytes]:
        if len(self._decisions) >= _MOST_DECISIONS:  # models are named by callers
            self._decisions.clear()
        attributes = {"rolegate.route": route, "rolegate.decision": "allow" if allowed else "deny"}
        if rule is not None:
            attributes["rolegate.rule"] = rule
        if model is not None:
            attributes["gen_ai.request.model"] = model
        return attributes, self._encoder.child_block("rolegate.authorize", INTERNAL, False,
                                                     self._encoder.attributes(attributes))

    def _set_current(self, current: RequestSpan | str) -> object:
        task = self._task()
        self._current[task] = current
        return task

    def _task(self) -> asyncio.Task[Any] | None:
        # The loop passed in: without it, Python 3.11's lookup of the running loop makes a
        # getpid() system call each time.
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        return asyncio.current_task(loop)

    def _trace_id(self) -> int:
        trace_id = self._bits(128)
        while not trace_id:  # neither id may be all zeros (W3C Trace Context §3.2.2)
            trace_id = self._bits(128)
        return trace_id

    def _span_id(self) -> int:
        span_id = self._bits(64)
        while not span_id:
            span_id = self._bits(64)
        return span_id


@dataclass(frozen=True, slots=True)
class _AttemptKind:
    """The attempts of one operation on one deployment: their span's name, their attributes
    encoded (and with the response's model, once a reply came), and what the request's span
    takes from the attempt that served it."""

    name: str
    attributes: bytes
    replied: bytes
    served: dict[str, Any]


class _Attempt:
    """An upstream attempt's CLIENT span while it is open; ends it when its reply ends."""

    __slots__ = ("kind", "reply", "request_span", "span_id", "start", "tracing")

    def __init__(self, tracing: Tracing, request_span: RequestSpan, kind: _AttemptKind,
                 span_id: int, start: int) -> None:
        self.tracing = tracing
        self.request_span = request_span
        self.kind = kind
        self.span_id = span_id
        self.start = start
        self.reply: UpstreamReply | None = None

    @property
    def traceparent(self) -> str:
        return self.request_span.traceparent(self.span_id)

    def __call__(self) -> None:
        reply = self.reply
        assert reply is not None, "listens to the reply it was given"
        self.reply = None  # no cycle through the reply's listeners
        attributes: dict[str, Any] = {_STATUS: reply.status}
        _add_usage(attributes, reply.usage)
        is_error = reply.status >= 400
        request_span = self.request_span
        if not is_error and not request_span.end:
            request_span.attributes.update(attributes)
            request_span.attributes.update(self.kind.served)
        self.tracing.ended(self, self.kind.replied, attributes, is_error)


class _TracedProvider:
    def __init__(self, tracing: Tracing, provider: Provider, deployment: str,
                 upstream_model: str) -> None:
        self.config: DeploymentConfig = provider.config
        self._tracing = tracing
        self._provider = provider
        self._deployment = deployment
        self._upstream_model = upstream_model
        self._kinds: dict[str, _AttemptKind] = {}  # by operation (a few: the API's)

    def open(self, call: UpstreamCall) -> Coroutine[Any, Any, UpstreamReply]:
        """The inner provider's own coroutine when the request is not sampled (no frame of
        ours in between), else `_open_traced`'s."""
        current = self._tracing.current()
        if isinstance(current, str):  # the trace goes on upstream, unrecorded
            call.traceparent = current
            return self._provider.open(call)
        return self._open_traced(call, current)

    async def _open_traced(self, call: UpstreamCall,
                           current: RequestSpan | None) -> UpstreamReply:
        tracing = self._tracing
        kind = self._kinds.get(call.operation)
        if kind is None:
            kind = self._kinds[call.operation] = tracing.attempt_kind(
                call.operation, self.config.provider, self._deployment, self._upstream_model)
        attempt = tracing.attempt(current, kind)
        call.traceparent = attempt.traceparent
        try:
            reply = await self._provider.open(call)
        except BaseException as error:
            tracing.ended(attempt, kind.attributes, {"error.type": type(error).__name__}, True)
            raise
        attempt.reply = reply
        reply.on_end(attempt)
        return reply


def _add_usage(attributes: dict[str, Any], usage: dict[str, Any] | None) -> None:
    """The token counts, when known (a stream's when it has ended; a reply read whole's once
    the dispatcher has read them from its body, after the attempt's span has ended)."""
    if usage:
        for name, key in _USAGE:
            value = usage.get(name)
            if isinstance(value, int):
                attributes[key] = value
