"""How `Tracing` hands traces over: once the request's span and every attempt have ended, in
the order they ended; an attempt made outside any request is a trace of its own."""

from __future__ import annotations

import random
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision
from rolegate.observability.otlp import OtlpEncoder
from rolegate.observability.tracing import Tracing
from rolegate.providers.base import UpstreamCall, UpstreamReply

ENCODER = OtlpEncoder({}, scope="rolegate")
CALL = UpstreamCall("chat/completions", {}, None, False, "req-1")


class Captured:
    def __init__(self) -> None:
        self.traces: list[list[Span]] = []

    def put(self, spans: bytes) -> None:
        [resource] = ExportTraceServiceRequest.FromString(
            ENCODER.payload([spans])).resource_spans
        self.traces.append([span for scope in resource.scope_spans for span in scope.spans])

    def close(self) -> None:
        pass


class Request:
    method = "POST"
    path = "/v1/chat/completions"
    request_id = "req-1"

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"route_group": "inference"}


class Config:
    provider = "openai"


class Upstream:
    """A provider whose replies are ended by the test, as a relayed stream's would be."""

    config = Config

    def __init__(self) -> None:
        self.calls: list[UpstreamCall] = []

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        self.calls.append(call)
        return UpstreamReply(200, b"application/json", _no_chunks())


async def _no_chunks() -> Any:
    yield b""


def attributes(span: Span) -> dict[str, Any]:
    return {item.key: getattr(item.value, item.value.WhichOneof("value"))
            for item in span.attributes}


def tracing() -> tuple[Tracing, Captured]:
    captured = Captured()
    return Tracing(captured, ENCODER, rng=random.Random(7)), captured  # type: ignore[arg-type]


async def test_an_attempt_ending_after_its_request_holds_the_trace_back_until_then():
    traced, captured = tracing()
    upstream = Upstream()
    provider = traced.traced(upstream, "gpt-4o-0", "gpt-4o-2024-08-06")  # type: ignore[arg-type]
    request = Request()
    token = traced.start(request, {})
    reply = await provider.open(CALL)

    traced.finish(request, 200, token)
    assert captured.traces == []  # the stream is still being relayed

    reply.usage = {"prompt_tokens": 3, "completion_tokens": 2}
    await reply.end()
    [[attempt_span, request_span]] = captured.traces
    assert (attempt_span.name, attempt_span.kind) == ("chat gpt-4o-2024-08-06",
                                                      Span.SPAN_KIND_CLIENT)
    assert (request_span.name, request_span.kind) == ("POST /v1/chat/completions",
                                                      Span.SPAN_KIND_SERVER)
    assert attempt_span.trace_id == request_span.trace_id
    assert attempt_span.parent_span_id == request_span.span_id
    [sent] = upstream.calls
    assert sent.traceparent == (f"00-{attempt_span.trace_id.hex()}-"
                                f"{attempt_span.span_id.hex()}-01")
    assert attributes(attempt_span) == {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-2024-08-06",
        "gen_ai.provider.name": "openai", "rolegate.deployment": "gpt-4o-0",
        "gen_ai.response.model": "gpt-4o-2024-08-06", "http.response.status_code": 200,
        "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2}
    # the request's span had ended: what served it is not added afterwards
    assert "gen_ai.provider.name" not in attributes(request_span)
    assert traced.current() is None


async def test_an_attempt_outside_any_request_is_a_trace_of_its_own():
    traced, captured = tracing()
    upstream = Upstream()
    provider = traced.traced(upstream, "gpt-4o-0", "gpt-4o-2024-08-06")  # type: ignore[arg-type]

    reply = await provider.open(CALL)
    await reply.end()

    [[span]] = captured.traces
    assert span.kind == Span.SPAN_KIND_CLIENT and span.parent_span_id == b""  # a root span
    assert upstream.calls[0].traceparent == f"00-{span.trace_id.hex()}-{span.span_id.hex()}-01"
    assert span.trace_state == ""


async def test_the_request_span_takes_what_the_request_state_says_over_its_steps():
    """The last decision's attributes, the serving attempt's and the request's own state: the
    state's model over the decision's, the request's status over the attempt's, the final
    reply's token counts over the attempt's, and the attempt's where the reply has none."""
    traced, captured = tracing()
    upstream = Upstream()
    provider = traced.traced(upstream, "gpt-4o-0", "gpt-4o-2024-08-06")  # type: ignore[arg-type]
    request = Request()
    who = Principal(issuer="https://idp", subject="alice", client_id="app")
    token = traced.start(request, {})
    traced.decided(request, who, Action("inference", "/v1/chat/completions", "alias"),  # type: ignore[arg-type]
                   Decision(False, None, "no rule"))
    traced.decided(request, who, Action("inference", "/v1/chat/completions", "alias"),  # type: ignore[arg-type]
                   Decision(True, "analysts", "allowed"))
    reply = await provider.open(CALL)
    reply.usage = {"prompt_tokens": 3, "completion_tokens": 2}
    await reply.end()
    final = UpstreamReply(200, b"application/json", _no_chunks(),
                          usage={"prompt_tokens": 7, "completion_tokens": "many"})
    request.state.update(principal=who, model="gpt-4o", deployment="gpt-4o-0", attempts=1,
                         reply=final)

    traced.finish(request, 502, token)

    [spans] = captured.traces
    request_span = spans[-1]
    assert request_span.status.code == request_span.status.STATUS_CODE_ERROR
    assert attributes(request_span) == {
        "http.request.method": "POST", "url.path": "/v1/chat/completions",
        "rolegate.request_id": "req-1", "rolegate.route": "inference",
        "rolegate.decision": "allow", "rolegate.rule": "analysts",
        "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "rolegate.issuer": "https://idp", "rolegate.subject": "alice",
        "rolegate.deployment": "gpt-4o-0", "rolegate.attempts": 1,
        "http.response.status_code": 502, "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 2}
    assert request_span.name == "POST /v1/chat/completions"
    assert [span.name for span in spans] == [
        "rolegate.authorize", "rolegate.authorize", "chat gpt-4o-2024-08-06",
        "POST /v1/chat/completions"]


async def test_a_request_left_unrouted_is_named_by_its_method_and_has_no_principal():
    traced, captured = tracing()
    request = Request()
    request.state["route_group"] = "public"
    token = traced.start(request, {})

    traced.finish(request, 401, token)

    [[span]] = captured.traces
    assert span.name == "POST"
    assert span.status.code == span.status.STATUS_CODE_UNSET
    assert attributes(span) == {"http.request.method": "POST",
                                "url.path": "/v1/chat/completions",
                                "rolegate.request_id": "req-1", "http.response.status_code": 401}
