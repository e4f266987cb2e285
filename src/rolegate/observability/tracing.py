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
when it ends, its name, kind, status and constant attributes one block encoded once (per
decision for an authorization, per deployment and operation for an attempt, which adds its
status and token counts). The request's span keeps what its attributes are made of while the
request runs (the last decision, the attempt that served it), not the attributes themselves;
when it ends they are one block encoded once per combination of those and the request's
state (principal, model, deployment), followed by what changes with each request (its id,
status and token counts). The trace is then framed as OTLP protobuf in one pass (one call
for the children, one for the request's span: a call costs about half a microsecond on a
busy gateway). A trace's bytes go, when the request's span ends, to `SpanExport`, whose
thread sends them in batches. Whether a trace is sampled is decided once, when the request
starts: a caller's `traceparent` decides for the trace it continues (parent-based),
`sample_ratio` for a new one. An unsampled request gets no span at all: what is left is
passing the context upstream.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
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
_MOST_DECISIONS = 4096
_MOST_REQUEST_BLOCKS = 4096
# The request span's attributes whose values seldom repeat from one request to the next.
_REQUEST_ID, _STATUS = "rolegate.request_id", "http.response.status_code"
_INPUT_TOKENS, _OUTPUT_TOKENS = "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"
_OUTCOME = (_STATUS, _INPUT_TOKENS, _OUTPUT_TOKENS)  # a reply's attributes: status, tokens
_LOW_64 = (1 << 64) - 1
# Request state -> the request span's attribute, when set.
_STATE_ATTRIBUTES = (("model", "gen_ai.request.model"), ("deployment", "rolegate.deployment"),
                     ("attempts", "rolegate.attempts"), ("code", "rolegate.error_code"))
_UNROUTED = (None, "public")  # route groups whose span is named by the method alone
_NOBODY = SimpleNamespace(issuer=None, subject=None)  # no principal (authentication failed)


class Tracing:
    """>>> tracing = Tracing.export(settings.tracing)   # or Tracing(export, encoder) in a test"""

    def __init__(self, export: SpanExport, encoder: OtlpEncoder, *, sample_ratio: float = 1.0,
                 rng: random.Random | None = None) -> None:
        self._export = export
        self.encoder = encoder
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
        # What a request span's name, status and attributes but its id, status and token
        # counts are made of (`_request_key`) -> them encoded.
        self._request_blocks: dict[tuple[Any, ...], bytes] = {}
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
        if parent is None:  # a new trace (a malformed traceparent is read as none)
            ids = self._bits(192)  # the trace's id and its span's, in one draw
            trace_id, span_id = ids >> 64, ids & _LOW_64
            if not trace_id or not span_id:  # neither may be all zeros (W3C §3.2.2)
                trace_id, span_id = self._trace_id(), self._span_id()
            if self._sample_ratio < 1.0 and self._random() >= self._sample_ratio:
                ids_hex = (trace_id << 64 | span_id).to_bytes(24, "big").hex()
                return self._set_current(f"00-{ids_hex[:32]}-{ids_hex[32:]}-00")
            span = RequestSpan(trace_id, span_id, 0, self.encoder.head(trace_id, ""),
                               HAS_IS_REMOTE, time_ns())
        else:
            span = RequestSpan(parent.trace_id, self._span_id(), wire_id(parent.span_id),
                               self.encoder.head(parent.trace_id, parent.trace_state),
                               HAS_IS_REMOTE | IS_REMOTE, time_ns())
        request.state[_SPAN] = span
        return self._set_current(span)

    def finish(self, request: Request, status: int, token: object) -> None:
        self._current.pop(token, None)  # type: ignore[call-overload]
        state = request.state
        span: RequestSpan | None = state.get(_SPAN)
        if span is None:
            return
        span.end = time_ns()
        key = self._request_key(request, status, span)
        block = self._request_blocks.get(key)
        if block is None:
            block = self._request_block(key, span)
        reply: UpstreamReply | None = state.get("reply")
        # Its usage is known now, even a stream's; else the serving attempt's, if it said.
        tokens_in, tokens_out = _token_counts(reply.usage if reply is not None else None)
        _, served_in, served_out = span.outcome[0]
        outcome = (status, served_in if tokens_in is None else tokens_in,
                   served_out if tokens_out is None else tokens_out)
        encoder = self.encoder
        span.block = b"".join((block, encoder.uncached_attribute(_REQUEST_ID, request.request_id),
                               span.outcome[1] if span.outcome[0] == outcome
                               else encoder.attribute_items(zip(_OUTCOME, outcome, strict=True))))
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
        now = time_ns()
        span.children.append((known[1], 0, now, now))
        if not span.end:
            span.decision = known

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
            request_span = RequestSpan(trace_id, 0, 0, self.encoder.head(trace_id, ""),
                                       HAS_IS_REMOTE, 0)
        else:
            request_span.open += 1
        return _Attempt(self, request_span, kind, self._span_id(), time_ns())

    def ended(self, attempt: _Attempt, block: bytes) -> None:
        """`attempt` has ended: `block` is its name, kind, status and attributes, encoded."""
        request_span = attempt.request_span
        child: ChildSpan = (block, attempt.span_id, attempt.start, time_ns())
        if not request_span.span_id:  # an attempt outside any request: a trace of its own
            self._export.put(self.encoder.children(request_span.head, 0, (child,)))
            return
        request_span.children.append(child)
        request_span.open -= 1
        if request_span.end and not request_span.open:  # the request ended first
            self._export.put(self._encoded(request_span))

    def attempt_kind(self, operation: str, provider: str, deployment: str,
                     upstream_model: str) -> _AttemptKind:
        """What every attempt of `operation` on a deployment shares (encoded once)."""
        encoder = self.encoder
        operation = OPERATIONS.get(operation, operation)
        served = {"gen_ai.response.model": upstream_model, "gen_ai.operation.name": operation,
                  "gen_ai.provider.name": PROVIDERS.get(provider, provider)}
        constant = encoder.attributes({
            "gen_ai.operation.name": operation, "gen_ai.request.model": upstream_model,
            "gen_ai.provider.name": served["gen_ai.provider.name"],
            "rolegate.deployment": deployment})
        name = f"{operation} {upstream_model}"
        replied = constant + encoder.attributes({"gen_ai.response.model": upstream_model})
        return _AttemptKind(name, constant, encoder.child_block(name, CLIENT, False, replied),
                            encoder.child_block(name, CLIENT, True, replied), served)

    def _request_key(self, request: Request, status: int, span: RequestSpan) -> tuple[Any, ...]:
        """What the request span's name, status and attributes, but its id, status and token
        counts, are made of."""
        state = request.state
        who = state.get("principal") or _NOBODY
        decision = span.decision
        return (request.method, request.path, state.get("route_group") not in _UNROUTED,
                span.flags | (status >= 500), None if decision is None else decision[1],
                span.served, who.issuer, who.subject, state.get("model"),
                state.get("deployment"), state.get("attempts"), state.get("code"))

    def _request_block(self, key: tuple[Any, ...], span: RequestSpan) -> bytes:
        """The request span's tail and constant attributes, for its `_request_key`."""
        (method, path, is_routed, flags, _, served, issuer, subject, *values) = key
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": path}
        if span.decision is not None:
            attributes.update(span.decision[0])
        if served is not None:
            attributes.update(served.served)
        if issuer is not None:
            attributes["rolegate.issuer"] = issuer
            attributes["rolegate.subject"] = subject
        for (_, name), value in zip(_STATE_ATTRIBUTES, values, strict=True):
            if value is not None:
                attributes[name] = value
        encoder = self.encoder
        if len(self._request_blocks) >= _MOST_REQUEST_BLOCKS:  # callers name models, paths
            self._request_blocks.clear()
        block = self._request_blocks[key] = encoder.tail(
            f"{method} {path}" if is_routed else method, SERVER, flags & ~1, bool(flags & 1)
        ) + encoder.attributes(attributes)
        return block

    def _encoded(self, span: RequestSpan) -> bytes:
        """An ended trace: its children, in the order they ended, then the request's span."""
        encoder = self.encoder
        return encoder.children(span.head, span.span_id, span.children) + encoder.framed(
            span.head, span.parent_id, span.span_id, span.start, span.end, span.block)

    def _decision(self, route: str, allowed: bool, rule: str | None,
                  model: str | None) -> tuple[dict[str, Any], bytes]:
        if len(self._decisions) >= _MOST_DECISIONS:  # models are named by callers
            self._decisions.clear()
        attributes = {"rolegate.route": route, "rolegate.decision": "allow" if allowed else "deny"}
        if rule is not None:
            attributes["rolegate.rule"] = rule
        if model is not None:
            attributes["gen_ai.request.model"] = model
        return attributes, self.encoder.child_block("rolegate.authorize", INTERNAL, False,
                                                     self.encoder.attributes(attributes))

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


@dataclass(frozen=True, slots=True, eq=False)
class _AttemptKind:
    """The attempts of one operation on one deployment: their span's name, their attributes
    encoded, their child blocks once a reply came (it names the response's model) when it
    succeeded and when it did not, and what the request's span takes from the attempt that
    served it. Compared, and hashed, by identity."""

    name: str
    attributes: bytes
    replied: bytes
    replied_error: bytes
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
        status = reply.status
        outcome = (status, *_token_counts(reply.usage))
        tracing = self.tracing
        encoded = tracing.encoder.attribute_items(zip(_OUTCOME, outcome, strict=True))
        is_error = status >= 400
        request_span = self.request_span
        if not is_error and not request_span.end:
            request_span.served = self.kind
            request_span.outcome = (outcome, encoded)  # the request's own, most often
        tracing.ended(self, (self.kind.replied_error if is_error else self.kind.replied)
                      + encoded)

    def failed(self, error: BaseException) -> None:
        """No reply came: the attempt ends with `error`."""
        tracing = self.tracing
        encoder = tracing.encoder
        tracing.ended(self, encoder.child_block(
            self.kind.name, CLIENT, True,
            self.kind.attributes + encoder.attributes({"error.type": type(error).__name__})))


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
            attempt.failed(error)
            raise
        attempt.reply = reply
        reply.on_end(attempt)
        return reply


def _token_counts(usage: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """A reply's input and output token counts, each None unless it is known (a stream's when
    it has ended, a reply read whole's when the dispatcher has read its body)."""
    if not usage:
        return None, None
    tokens_in = usage.get("prompt_tokens")
    tokens_out = usage.get("completion_tokens")
    return (tokens_in if isinstance(tokens_in, int) else None,
            tokens_out if isinstance(tokens_out, int) else None)
