"""The OTLP payload rolegate writes for its recorded spans is the one the OpenTelemetry SDK's own
encoder makes for the same spans: both are decoded and compared message by message."""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision
from rolegate.observability.otlp import OtlpEncoder
from rolegate.observability.spans import (
    CLIENT, HAS_IS_REMOTE, INTERNAL, IS_REMOTE, SERVER, SpanRecord, Trace,
)
from rolegate.observability.tracing import Tracing
from rolegate.providers.base import UpstreamCall, UpstreamReply

RESOURCE = Resource.create({"service.name": "edge", "deployment.environment": "test"})
KINDS = {INTERNAL: SpanKind.INTERNAL, SERVER: SpanKind.SERVER, CLIENT: SpanKind.CLIENT}
CALLER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7
REQUEST_SPAN = 0x1111111111111111


def sdk_spans(trace: Trace) -> list[ReadableSpan]:
    """The SDK's spans for `trace`, as its tracer would have made them."""
    trace_id, trace_state, records = trace
    state = TraceState.from_header([trace_state]) if trace_state else TraceState()
    spans = []
    for name, kind, span_id, parent_id, flags, start, end, attributes, is_error in records:
        parent = None
        if parent_id:
            parent = SpanContext(trace_id, parent_id, is_remote=bool(flags & IS_REMOTE),
                                 trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=state)
        spans.append(ReadableSpan(
            name, SpanContext(trace_id, span_id, is_remote=False,
                              trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=state),
            parent=parent, resource=RESOURCE, attributes=attributes, kind=KINDS[kind],
            status=Status(StatusCode.ERROR if is_error else StatusCode.UNSET),
            start_time=start, end_time=end,
            instrumentation_scope=InstrumentationScope("rolegate")))
    return spans


def request_trace(trace_id: int, trace_state: str, parent_id: int,
                  server_attributes: dict[str, Any]) -> Trace:
    root_flags = HAS_IS_REMOTE | IS_REMOTE if parent_id else HAS_IS_REMOTE
    children: list[SpanRecord] = [
        ("rolegate.authenticate", INTERNAL, 0x21, REQUEST_SPAN, HAS_IS_REMOTE,
         1_700_000_000_000_000_100, 1_700_000_000_000_090_000, {}, False),
        ("rolegate.authorize", INTERNAL, 0x22, REQUEST_SPAN, HAS_IS_REMOTE,
         1_700_000_000_000_095_000, 1_700_000_000_000_095_000,
         {"rolegate.route": "/v1/chat/completions", "rolegate.decision": "allow",
          "rolegate.rule": "analysts", "gen_ai.request.model": "gpt-4o"}, False),
        ("chat gpt-4o-2024-08-06", CLIENT, 0xFFFFFFFFFFFFFFFF, REQUEST_SPAN, HAS_IS_REMOTE,
         1_700_000_000_000_100_000, 1_700_000_000_900_000_000,
         {"gen_ai.operation.name": "chat", "http.response.status_code": 502,
          "error.type": "UpstreamError", "ratio": 0.25, "is_retry": True,
          "negative": -3}, True),
    ]
    server = ("POST /v1/chat/completions", SERVER, REQUEST_SPAN, parent_id, root_flags,
              1_700_000_000_000_000_000, 1_700_000_001_000_000_000, server_attributes, True)
    return trace_id, trace_state, (*children, server)


def test_a_batch_encodes_as_the_sdks_exporter_encodes_it():
    traces = [
        request_trace(CALLER_TRACE, "vendor=abc,other=1", CALLER_SPAN, {
            "http.request.method": "POST", "rolegate.request_id": "req-1",
            "http.response.status_code": 502, "gen_ai.usage.input_tokens": 0,
            "rolegate.subject": "ünïcode", "long": "x" * 300}),
        request_trace(1, "", 0, {"http.request.method": "POST",
                                 "rolegate.request_id": "req-2"}),
    ]
    encoder = OtlpEncoder(dict(RESOURCE.attributes), scope="rolegate",
                          uncached=frozenset({"rolegate.request_id"}))

    for _ in range(2):  # the second time from the attribute cache
        ours = ExportTraceServiceRequest.FromString(encoder.encode(traces))
        theirs = encode_spans([span for trace in traces for span in sdk_spans(trace)])
        assert ours == theirs


def test_an_empty_batch_still_names_the_resource():
    encoder = OtlpEncoder(dict(RESOURCE.attributes), scope="rolegate")

    decoded = ExportTraceServiceRequest.FromString(encoder.encode([]))

    [resource_spans] = decoded.resource_spans
    assert {item.key for item in resource_spans.resource.attributes} >= {
        "service.name", "deployment.environment", "telemetry.sdk.language"}
    assert [scope.scope.name for scope in resource_spans.scope_spans] == ["rolegate"]


@pytest.mark.parametrize("value", ["", "r", "req-1", "x" * 100, "x" * 127, "y" * 128, "z" * 300,
                                   "ünïcode-" * 40, 12, True, 0.5, None])
def test_an_uncached_attribute_is_encoded_as_a_cached_one(value):
    cached = OtlpEncoder({}, scope="rolegate")
    uncached = OtlpEncoder({}, scope="rolegate", uncached=frozenset({"rolegate.request_id"}))

    for _ in range(2):  # the second time with the prefix its key and length keep
        assert uncached.uncached_attribute("rolegate.request_id", value) == \
            cached.attributes({"rolegate.request_id": value})
        assert uncached.attributes({"rolegate.request_id": value}) == \
            cached.attributes({"rolegate.request_id": value})


def _as_trace(spans: list[Any]) -> Trace:
    """Decoded spans of one trace, as the `Trace` the SDK comparison takes."""
    def value(item: Any) -> Any:
        return getattr(item.value, item.value.WhichOneof("value"))
    records: list[SpanRecord] = [
        (span.name, span.kind, int.from_bytes(span.span_id, "big"),
         int.from_bytes(span.parent_span_id or bytes(8), "big"), span.flags,
         span.start_time_unix_nano, span.end_time_unix_nano,
         {item.key: value(item) for item in span.attributes}, span.status.code == 2)
        for span in spans]
    return int.from_bytes(spans[0].trace_id, "big"), spans[0].trace_state, tuple(records)


@pytest.mark.parametrize("traceparent", [None, f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"],
                         ids=["new-trace", "callers-trace"])
async def test_a_request_traced_on_the_request_path_encodes_as_the_sdk_would(traceparent):
    """The request path's encoding (children framed in one pass, the request's span from its
    kept blocks, ids in wire order) against the SDK's for the same spans, with attribute
    blocks long enough for two-byte lengths, a failed attempt and a served one."""
    encoder = OtlpEncoder(dict(RESOURCE.attributes), scope="rolegate",
                          uncached=frozenset({"rolegate.request_id"}))
    payloads: list[bytes] = []

    class Sink:
        def put(self, spans: bytes) -> None:
            payloads.append(encoder.payload([spans]))

    class Config:
        provider = "openai"

    class Upstream:
        config = Config
        fail = True

        async def open(self, call: UpstreamCall) -> UpstreamReply:
            if self.fail:
                raise TimeoutError
            return UpstreamReply(200, b"application/json", _nothing(),
                                 usage={"prompt_tokens": 300, "completion_tokens": 70_000})

    class Request:
        method, path, request_id = "POST", "/v1/chat/completions", "r" * 150

        def __init__(self) -> None:
            self.state: dict[str, Any] = {"route_group": "inference"}

    tracing = Tracing(Sink(), encoder, rng=random.Random(3))  # type: ignore[arg-type]
    upstream = Upstream()
    provider = tracing.traced(upstream, "east-" + "d" * 130, "gpt-4o")  # type: ignore[arg-type]
    request = Request()
    headers = {} if traceparent is None else {b"traceparent": traceparent.encode(),
                                              b"tracestate": b"vendor=abc"}
    token = tracing.start(request, headers)  # type: ignore[arg-type]
    tracing.authenticated(request, 1)  # type: ignore[arg-type]
    who = Principal(issuer="https://idp/" + "i" * 120, subject="alice", client_id="app")
    tracing.decided(request, who, Action("inference", "/v1/chat/completions", "gpt-4o"),  # type: ignore[arg-type]
                    Decision(True, "analysts", "allowed"))
    with pytest.raises(TimeoutError):
        await provider.open(UpstreamCall("chat/completions", {}, None, False, "r"))
    upstream.fail = False
    reply = await provider.open(UpstreamCall("chat/completions", {}, None, False, "r"))
    await reply.end()
    request.state.update(principal=who, model="gpt-4o", attempts=2, reply=reply)
    tracing.finish(request, 200, token)  # type: ignore[arg-type]

    [payload] = payloads
    ours = ExportTraceServiceRequest.FromString(payload)
    spans = list(ours.resource_spans[0].scope_spans[0].spans)
    assert [span.name for span in spans] == [
        "rolegate.authenticate", "rolegate.authorize", "chat gpt-4o", "chat gpt-4o",
        "POST /v1/chat/completions"]
    request_span = spans[-1]
    assert {span.parent_span_id for span in spans[:-1]} == {request_span.span_id}
    assert all(len(span.span_id) == 8 and any(span.span_id) for span in spans)
    if traceparent is None:
        assert request_span.parent_span_id == b""
        assert {span.trace_state for span in spans} == {""}
    else:
        assert request_span.parent_span_id == CALLER_SPAN.to_bytes(8, "big")
        assert request_span.trace_id == CALLER_TRACE.to_bytes(16, "big")
        assert {span.trace_state for span in spans} == {"vendor=abc"}
    assert [span.status.code for span in spans] == [0, 0, 2, 0, 0]
    assert ours == encode_spans(sdk_spans(_as_trace(spans)))


async def _nothing() -> Any:
    yield b""
