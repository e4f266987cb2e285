"""The OTLP payload rolegate writes for its recorded spans is the one the OpenTelemetry SDK's own
encoder makes for the same spans: both are decoded and compared message by message."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from rolegate.observability.otlp import OtlpEncoder
from rolegate.observability.spans import (
    CLIENT, HAS_IS_REMOTE, INTERNAL, IS_REMOTE, SERVER, SpanRecord, Trace,
)

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
